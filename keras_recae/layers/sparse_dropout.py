"""Dropout on the stored entries of a sparse input."""

from __future__ import annotations

import keras

from keras_recae.checks import check_rate
from keras_recae.distribute import as_global_batch
from keras_recae.sparse_ops import with_values


@keras.saving.register_keras_serializable(package="keras_recae")
class SparseDropout(keras.layers.Layer):
    """Drops stored entries of a `tf.SparseTensor` during training.

    Each stored entry is zeroed with probability `rate` and the rest are
    scaled by `1 / (1 - rate)`, as inverted dropout on the dense input would
    do; the sparsity pattern is kept so shapes stay static. At inference the
    input passes unchanged. Under a `tf.distribute` strategy the mask is drawn for the
    entries of the whole global batch, each replica taking its own.

    Args:
        rate: float. Fraction of entries to drop, in [0, 1). Defaults to `0.5`.
        seed: int | None. Seed of the dropout masks. Defaults to `None`.

    Example:

    ```python
    import tensorflow as tf
    from keras_recae.layers import SparseDropout

    x = tf.sparse.from_dense(tf.ones((2, 5)))
    y = SparseDropout(0.5, seed=1)(x, training=True)
    ```
    """

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        values = as_global_batch(
            lambda v: keras.random.dropout(v, self.rate, seed=self.seed_generator), inputs.values
        )
        return with_values(inputs, values)

    def compute_output_spec(self, inputs, training=False):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype, sparse=True)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
