"""The denoising embedding autoencoder: noisy item vectors in, clean ones reconstructed."""

from __future__ import annotations

import keras

from keras_recae.checks import check_non_negative, check_rate
from keras_recae.distribute import as_global_batch
from keras_recae.models.embedding_autoencoder import EmbeddingAutoencoder


@keras.saving.register_keras_serializable(package="keras_recae")
class DenoisingEmbeddingAutoencoder(EmbeddingAutoencoder):
    """An `EmbeddingAutoencoder` trained to reconstruct clean vectors from corrupted ones.

    In training the normalised input gets Gaussian noise of `noise_stddev` times each
    dimension's standard deviation over the catalogue, then dropout at rate `dropout`;
    the loss compares the reconstruction with the clean normalised vector. At inference
    nothing is corrupted, so `refine` is deterministic. Under a `tf.distribute` strategy
    the noise and the dropout mask are drawn for the global batch, each replica taking
    its rows, so training equals that on one device (see `EmbeddingRefiner.fit`).

    Args:
        latent_dim: int. The dimension of the refined vectors. Defaults to `64`.
        hidden_dims: list of int. Encoder widths between the input and the code; the
            decoder mirrors them. Defaults to `(512,)`.
        activation: str. Activation of the hidden layers. Defaults to `"gelu"`.
        normalization: str. `"none"`, `"l2"` or `"standardize"`. Defaults to `"l2"`.
        reconstruction: str. `"mse"` or `"cosine"`. Defaults to `"mse"`.
        center: bool. Whether refined vectors are centred on the catalogue's mean code.
            Defaults to `True`.
        noise_stddev: float. Standard deviation of the input noise, as a multiple of each
            dimension's standard deviation. Defaults to `1.0`.
        dropout: float. Dropout rate on the input, in [0, 1). Defaults to `0.0`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the noise and the dropout. Defaults to `None`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_recae.models import DenoisingEmbeddingAutoencoder

    vectors = np.random.default_rng(0).normal(size=(500, 32)).astype("float32")
    model = DenoisingEmbeddingAutoencoder(latent_dim=8, noise_stddev=0.5, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(vectors, batch_size=64, epochs=2)
    refined = model.refine(vectors)
    ```

    References:
        Vincent, Larochelle, Bengio, Manzagol. Extracting and Composing Robust Features
        with Denoising Autoencoders. ICML 2008.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        hidden_dims=(512,),
        activation: str = "gelu",
        normalization: str = "l2",
        reconstruction: str = "mse",
        center: bool = True,
        noise_stddev: float = 1.0,
        dropout: float = 0.0,
        l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            activation=activation,
            normalization=normalization,
            reconstruction=reconstruction,
            center=center,
            l2=l2,
            seed=seed,
            **kwargs,
        )
        self.noise_stddev = check_non_negative("noise_stddev", noise_stddev)
        self.dropout = check_rate("dropout", dropout)
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.input_dropout = keras.layers.Dropout(
            self.dropout, seed=None if seed is None else seed + 1, name="input_dropout"
        )

    def corrupt(self, normalized, training=False):
        if not training or not (self.noise_stddev or self.dropout):
            return normalized
        # Under a strategy the draws are made for the rows of the whole global batch.
        return as_global_batch(self._corrupt_rows, normalized)

    def _corrupt_rows(self, normalized):
        if self.noise_stddev:
            noise = keras.random.normal(
                keras.ops.shape(normalized), dtype=normalized.dtype, seed=self.noise_seed
            )
            normalized = normalized + noise * (self.noise_stddev * self.spread)
        return self.input_dropout(normalized, training=True)

    def get_config(self):
        config = super().get_config()
        config.update({"noise_stddev": self.noise_stddev, "dropout": self.dropout})
        return config
