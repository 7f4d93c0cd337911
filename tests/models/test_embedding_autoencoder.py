import keras
import numpy as np
import pytest

from keras_recae.models import EmbeddingAutoencoder

N, DIM = 200, 8


def low_rank_vectors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(N, 3)) @ rng.normal(size=(3, DIM))
    return (factors + 0.2 * rng.normal(size=(N, DIM)) + 1.0).astype(np.float32)


@pytest.mark.parametrize("reconstruction", ["mse", "cosine"])
def test_fit_lowers_the_loss(reconstruction):
    keras.utils.set_random_seed(0)
    model = EmbeddingAutoencoder(
        latent_dim=3, hidden_dims=(16,), reconstruction=reconstruction, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(low_rank_vectors(), batch_size=50, epochs=10, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]


def test_a_linear_autoencoder_reaches_the_pca_reconstruction_error():
    # With no hidden layer and the squared loss on standardised vectors, the best code
    # spans the top principal components: the error is the discarded variance.
    x = low_rank_vectors()
    keras.utils.set_random_seed(0)
    model = EmbeddingAutoencoder(latent_dim=2, hidden_dims=(), normalization="standardize", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    # 600 full-batch steps in one epoch: the same updates as 600 epochs of one batch.
    model.fit(np.tile(x, (600, 1)), batch_size=N, shuffle=False, verbose=0)
    error = model.evaluate(x, batch_size=N, return_dict=True, verbose=0)["reconstruction"]
    standardized = (x - x.mean(0)) / x.std(0)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(standardized.T, bias=True)))
    optimum = eigenvalues[:-2].sum() / DIM
    assert optimum > 0.05
    assert optimum * 0.999 <= error <= optimum * 1.05


def test_inference_is_deterministic_and_reconstructs_the_normalised_input():
    x = low_rank_vectors()
    model = EmbeddingAutoencoder(latent_dim=3, hidden_dims=(16,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=50, epochs=30, verbose=0)
    outputs = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x, training=True).numpy(), outputs)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.mean((outputs - unit) ** 2) < 0.1 * np.mean((unit - unit.mean(0)) ** 2)
