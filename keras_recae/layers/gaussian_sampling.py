"""Reparameterised sampling from a diagonal Gaussian."""

from __future__ import annotations

import keras

from keras_recae.distribute import as_global_batch


@keras.saving.register_keras_serializable(package="keras_recae")
class GaussianSampling(keras.layers.Layer):
    """Draws `z = mean + eps * exp(log_var / 2)` in training, returns `mean` otherwise.

    Under a `tf.distribute` strategy `eps` is drawn for the rows of the whole global
    batch, each replica taking its own rows.

    Args:
        seed: int | None. Seed of the noise. Defaults to `None`.

    Example:

    ```python
    import numpy as np
    from keras_recae.layers import GaussianSampling

    z = GaussianSampling(seed=0)([np.zeros((2, 3)), np.zeros((2, 3))], training=True)
    ```
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        mean, log_var = inputs
        if not training:
            return mean
        noise = as_global_batch(
            lambda m: keras.random.normal(
                keras.ops.shape(m), dtype=m.dtype, seed=self.seed_generator
            ),
            mean,
            equal_parts=True,
        )
        return mean + noise * keras.ops.exp(0.5 * log_var)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
