"""RecVAE's encoder: densely connected swish layers with layer normalisation."""

from __future__ import annotations

import math

import keras

from keras_recae.checks import check_positive, check_positive_int
from keras_recae.layers.sparse_dense import SparseDense


def torch_linear_initializers(fan_in: int) -> dict:
    """PyTorch's default `nn.Linear` initialisation, U(+-1/sqrt(fan_in)) for kernel and bias,
    as the reference code of RecVAE has it."""
    bound = 1.0 / math.sqrt(fan_in)
    return {
        "kernel_initializer": keras.initializers.VarianceScaling(
            scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
        ),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
    }


@keras.saving.register_keras_serializable(package="keras_recae")
class RecVAEEncoder(keras.layers.Layer):
    """The Gaussian posterior of RecVAE: a dense stack whose layers see all earlier outputs.

    Layer `i` computes `h_i = LayerNorm(swish(W_i h_{i-1} + b_i + h_1 + ... + h_{i-1}))`
    (the first layer takes the input, which may be a `tf.SparseTensor`), and two linear
    heads map the last `h` to the posterior mean and log-variance. Kernels and biases are
    initialised as PyTorch's `nn.Linear`, as in the reference code.

    Args:
        hidden_dim: int. Width of every hidden layer. Defaults to `600`.
        latent_dim: int. Dimension of the posterior. Defaults to `200`.
        n_layers: int. Number of hidden layers. Defaults to `5`.
        epsilon: float. Epsilon of the layer normalisation. Defaults to `0.1`.
        row_gradients: bool. The first layer's kernel gradient as the batch's rows (see
            `SparseDense`), for updates that touch only them. Defaults to `False`.

    Example:

    ```python
    import tensorflow as tf
    from keras_recae.layers import RecVAEEncoder

    x = tf.sparse.from_dense(tf.constant([[0.0, 1.0, 0.0, 1.0]]))
    mean, log_var = RecVAEEncoder(hidden_dim=8, latent_dim=2)(x)
    ```

    References:
        Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko. RecVAE: a New Variational
        Autoencoder for Top-N Recommendations with Implicit Feedback. WSDM 2020.
    """

    def __init__(
        self,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        n_layers: int = 5,
        epsilon: float = 0.1,
        row_gradients: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.epsilon = check_positive("epsilon", epsilon)
        self.row_gradients = bool(row_gradients)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        # Only when asked: the first layer's config stays that of earlier versions.
        rows = {"row_gradients": True} if self.row_gradients else {}
        self.dense_layers = [
            (SparseDense if i == 0 else keras.layers.Dense)(
                self.hidden_dim,
                name=f"fc_{i + 1}",
                **torch_linear_initializers(input_dim if i == 0 else self.hidden_dim),
                **(rows if i == 0 else {}),
            )
            for i in range(self.n_layers)
        ]
        self.norm_layers = [
            keras.layers.LayerNormalization(epsilon=self.epsilon, name=f"ln_{i + 1}")
            for i in range(self.n_layers)
        ]
        for i, (dense, norm) in enumerate(zip(self.dense_layers, self.norm_layers)):
            dense.build((None, input_dim if i == 0 else self.hidden_dim))
            norm.build((None, self.hidden_dim))
        heads = torch_linear_initializers(self.hidden_dim)
        self.mean_layer = keras.layers.Dense(self.latent_dim, name="fc_mu", **heads)
        self.log_var_layer = keras.layers.Dense(self.latent_dim, name="fc_logvar", **heads)
        self.mean_layer.build((None, self.hidden_dim))
        self.log_var_layer.build((None, self.hidden_dim))

    def call(self, inputs):
        h = inputs
        total = None
        for dense, norm in zip(self.dense_layers, self.norm_layers):
            pre = dense(h) if total is None else dense(h) + total
            h = norm(keras.activations.silu(pre))
            total = h if total is None else total + h
        return self.mean_layer(h), self.log_var_layer(h)

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape[:-1]) + (self.latent_dim,)
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape, dtype=self.compute_dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "latent_dim": self.latent_dim,
                "n_layers": self.n_layers,
                "epsilon": self.epsilon,
                "row_gradients": self.row_gradients,
            }
        )
        return config
