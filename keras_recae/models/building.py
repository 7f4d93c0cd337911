"""Layer builders and training helpers shared by the models."""

from __future__ import annotations

import keras

from keras_recae.distribute import global_sum
from keras_recae.layers.sparse_dense import SparseDense
from keras_recae.sparse_ops import row_counts


def start_output_bias(layer, inputs, kind: str, iterations) -> None:
    """Before the first update, sets the output biases to the best constant prediction.

    For the logistic loss that is the log-odds of the batch's share of observed entries,
    for the squared loss their mean value (the multinomial loss ignores a constant). A
    prior-probability start, as RetinaNet's: from zero biases the sigmoid or squared
    outputs must first learn a large negative offset, which the hidden units provide by
    saturating, and training stalls at the popularity ranking.

    Under a `tf.distribute` strategy the batch is the global one: every replica assigns
    the same value to its copy of the bias.
    """
    if kind not in ("logistic", "squared"):
        return
    # Summed over the replicas out of the cond, whose branches cannot synchronise them.
    present, total = global_sum(
        (
            keras.ops.sum(keras.ops.cast(row_counts(inputs) > 0, "float32")),
            keras.ops.sum(keras.ops.cast(inputs.values, "float32")),
        )
    )

    def assign():
        mean = total / keras.ops.maximum(present * inputs.shape[-1], 1.0)
        if kind == "logistic":
            mean = keras.ops.clip(mean, 1e-6, 1.0 - 1e-6)
            mean = keras.ops.log(mean / (1.0 - mean))
        layer.bias.assign(keras.ops.full(layer.bias.shape, mean, layer.bias.dtype))
        return keras.ops.convert_to_tensor(True)

    keras.ops.cond(iterations == 0, assign, lambda: keras.ops.convert_to_tensor(False))


def features(data):
    """The input of a batch given as `x` or as a tuple `(x, ...)`."""
    return data[0] if isinstance(data, (tuple, list)) else data


def vae_cf_dense(
    units: int,
    activation,
    name: str,
    l2: float = 0.0,
    sparse: bool = False,
    row_gradients: bool = False,
):
    """A layer initialised as in Liang et al.'s code: Glorot kernels, N(0, 0.001) biases.

    `sparse=True` gives the first layer, which takes the sparse input;
    `row_gradients=True` there makes its kernel's gradient a set of rows (see `SparseDense`).
    """
    options = {"row_gradients": True} if row_gradients else {}
    layer_cls = SparseDense if sparse else keras.layers.Dense
    return layer_cls(
        units,
        activation=activation,
        kernel_initializer="glorot_uniform",
        bias_initializer=keras.initializers.TruncatedNormal(stddev=0.001),
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        name=name,
        **options,
    )


def build_stack(layers, input_dim: int) -> int:
    """Builds layers in sequence from `input_dim`; returns the last width."""
    for layer in layers:
        layer.build((None, input_dim))
        input_dim = layer.units
    return input_dim
