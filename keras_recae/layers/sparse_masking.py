"""Masking noise on the stored entries of a sparse input."""

from __future__ import annotations

import keras

from keras_recae.checks import check_rate
from keras_recae.distribute import as_global_batch
from keras_recae.sparse_ops import with_values


@keras.saving.register_keras_serializable(package="keras_recae")
class SparseMasking(keras.layers.Layer):
    """Sets stored entries of a `tf.SparseTensor` to zero during training, unscaled.

    The masking noise of denoising autoencoders: each stored entry (an observed
    interaction) is zeroed with probability `rate` and the others keep their value;
    unobserved entries are zero already and stay so. The sparsity pattern is kept so
    shapes stay static. At inference the input passes unchanged. Under a `tf.distribute`
    strategy the masks are drawn for the entries of the whole global batch, each replica
    taking its own.

    Args:
        rate: float. Fraction of entries to mask, in [0, 1). Defaults to `0.2`.
        seed: int | None. Seed of the masks. Defaults to `None`.

    Example:

    ```python
    import tensorflow as tf
    from keras_recae.layers import SparseMasking

    x = tf.sparse.from_dense(tf.ones((2, 5)))
    y = SparseMasking(0.2, seed=1)(x, training=True)
    ```

    References:
        Vincent, Larochelle, Bengio, Manzagol. Extracting and Composing Robust
        Features with Denoising Autoencoders. ICML 2008.
    """

    def __init__(self, rate: float = 0.2, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        noise = as_global_batch(
            lambda v: keras.random.uniform(
                keras.ops.shape(v), dtype="float32", seed=self.seed_generator
            ),
            inputs.values,
        )
        keep = keras.ops.cast(noise >= self.rate, inputs.values.dtype)
        return with_values(inputs, inputs.values * keep)

    def compute_output_spec(self, inputs, training=False):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype, sparse=True)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
