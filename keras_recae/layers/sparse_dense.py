"""A dense layer whose input may be a `tf.SparseTensor`."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_recae.checks import check_positive_int
from keras_recae.sparse_ops import batch_size_of, sparse_matmul


@keras.saving.register_keras_serializable(package="keras_recae")
class SparseDense(keras.layers.Layer):
    """A densely connected layer that multiplies a sparse input without densifying it.

    For a `tf.SparseTensor` input the product is computed as a gather of the
    kernel rows at the non-zero columns, scaled by the values and summed per
    row, so the cost is proportional to the number of non-zeros, and the op
    compiles with XLA when the batch size is static. Dense inputs take the
    ordinary matrix product.

    Args:
        units: int. Output dimension.
        activation: str | callable | None. Activation. Defaults to `None`.
        use_bias: bool. Whether to add a bias. Defaults to `True`.
        kernel_initializer: str | initializer. Defaults to `"glorot_uniform"`.
        bias_initializer: str | initializer. Defaults to `"zeros"`.
        kernel_regularizer: str | regularizer | None. Defaults to `None`.
        row_gradients: bool. For a sparse input, gather the kernel's rows at the batch's
            columns straight from the variable, so that the kernel's gradient is a
            `tf.IndexedSlices` of those rows only: with `FusedAdam(sparse_updates=True)`
            a step then touches the rows of the batch's items, not the catalogue's. False
            uses TensorFlow's sparse matmul kernel (faster on CPU at a few thousand items;
            its gradient is dense). Defaults to `False`.

    Example:

    ```python
    import tensorflow as tf
    from keras_recae.layers import SparseDense

    x = tf.sparse.from_dense(tf.constant([[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]]))
    h = SparseDense(4, activation="tanh")(x)  # shape (2, 4)
    ```
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        row_gradients: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.row_gradients = bool(row_gradients)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the input of `{self.name}` should be known. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )

    def call(self, inputs):
        if isinstance(inputs, tf.SparseTensor) and self.row_gradients:
            # Gathered from the variable itself: the gradient stays a set of rows.
            rows = tf.gather(self.kernel.value, inputs.indices[:, 1])
            rows = keras.ops.cast(rows, self.compute_dtype)
            values = keras.ops.cast(inputs.values, self.compute_dtype)
            outputs = tf.math.unsorted_segment_sum(
                rows * values[:, None], inputs.indices[:, 0], batch_size_of(inputs)
            )
        elif isinstance(inputs, tf.SparseTensor):
            outputs = sparse_matmul(inputs, keras.ops.cast(self.kernel, self.compute_dtype))
        else:
            kernel = keras.ops.cast(self.kernel, self.compute_dtype)
            outputs = keras.ops.matmul(keras.ops.cast(inputs, self.compute_dtype), kernel)
        if self.bias is not None:
            outputs = outputs + keras.ops.cast(self.bias, self.compute_dtype)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "row_gradients": self.row_gradients,
            }
        )
        return config
