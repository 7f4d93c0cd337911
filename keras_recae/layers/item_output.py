"""An output layer over the catalogue whose weights are one row per item."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_recae.checks import check_positive_int


@keras.saving.register_keras_serializable(package="keras_recae")
class ItemOutput(keras.layers.Layer):
    """Logits over the items, `h @ item_vectors^T + item_bias`, with each item's weights a row.

    The weights of `keras.layers.Dense(n_items)` with its kernel transposed: an item is a
    row of `item_vectors` (`[n_items, input_dim]`), so a loss that needs the logits of a few
    items (a sampled softmax) gathers their rows, and the gradient is a `tf.IndexedSlices`
    of those rows; with `FusedAdam(sparse_updates=True)` an update then touches the
    sampled items only. The full logits (evaluation, serving) are one matrix product.

    Args:
        units: int. The number of items.
        kernel_initializer: str | initializer. Of `item_vectors`, drawn as a Dense kernel's
            `[input_dim, units]` would be (Glorot's limits are symmetric in the two
            dimensions). Defaults to `"glorot_uniform"`.
        bias_initializer: str | initializer. Defaults to `"zeros"`.

    Example:

    ```python
    import numpy as np
    from keras_recae.layers import ItemOutput

    layer = ItemOutput(1000)
    logits = layer(np.ones((2, 64), "float32"))  # shape (2, 1000)
    rows = layer.item_vectors  # shape (1000, 64)
    ```
    """

    def __init__(
        self, units: int, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.item_vectors = self.add_weight(
            name="item_vectors",
            shape=(self.units, input_shape[-1]),
            initializer=self.kernel_initializer,
        )
        self.item_bias = self.add_weight(
            name="item_bias", shape=(self.units,), initializer=self.bias_initializer
        )

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        vectors = keras.ops.cast(self.item_vectors, self.compute_dtype)
        logits = tf.matmul(inputs, vectors, transpose_b=True)
        return logits + keras.ops.cast(self.item_bias, self.compute_dtype)

    def gather(self, items):
        """The rows and biases of `items` (an int tensor), read from the variables directly so
        that their gradients are `tf.IndexedSlices`."""
        return tf.gather(self.item_vectors.value, items), tf.gather(self.item_bias.value, items)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
