"""The embedding autoencoder: item vectors through a dense bottleneck and back."""

from __future__ import annotations

import keras

from keras_recae.models.embedding_refiner import EmbeddingRefiner


@keras.saving.register_keras_serializable(package="keras_recae")
class EmbeddingAutoencoder(EmbeddingRefiner):
    """Refines pre-trained item vectors through a dense autoencoder.

    Each item vector (word2vec or item2vec output, text embeddings) is normalised,
    encoded by dense `hidden_dims` layers into a linear `latent_dim` code, and decoded
    back; the code, centred on the catalogue's mean code, is the refined vector
    (`refine`). With no hidden layer (the default) and the `"mse"` loss the code spans the
    principal subspace of the normalised vectors, as PCA's does (PCA of unit vectors,
    for the default `"l2"` normalisation); hidden layers let it bend, and on item2vec
    vectors made retrieval worse (benchmarks/RESULTS.md). See `EmbeddingRefiner` for
    the normalisations and losses.

    Args:
        latent_dim: int. The dimension of the refined vectors. Defaults to `64`.
        hidden_dims: list of int. Encoder widths between the input and the code; the
            decoder mirrors them. Defaults to `()`: linear.
        activation: str. Activation of the hidden layers. Defaults to `"gelu"`.
        normalization: str. `"none"`, `"l2"` (unit rows) or `"standardize"` (per
            dimension, with the catalogue's mean and standard deviation). Defaults to
            `"l2"`.
        reconstruction: str. `"mse"` (squared error in units of each dimension's standard
            deviation) or `"cosine"` (one minus the cosine). Defaults to `"mse"`.
        center: bool. Whether refined vectors are centred on the catalogue's mean code.
            Defaults to `True`.
        l2: float. L2 penalty on the kernels. Defaults to `0.0`.
        seed: int | None. Seed of the model's randomness. Defaults to `None`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_recae.models import EmbeddingAutoencoder

    vectors = np.random.default_rng(0).normal(size=(500, 32)).astype("float32")
    model = EmbeddingAutoencoder(latent_dim=8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(vectors, batch_size=64, epochs=2)
    refined = model.refine(vectors)  # (500, 8)
    ```

    References:
        Hinton, Salakhutdinov. Reducing the Dimensionality of Data with Neural
        Networks. Science 2006.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        hidden_dims=(),
        activation: str = "gelu",
        normalization: str = "l2",
        reconstruction: str = "mse",
        center: bool = True,
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
