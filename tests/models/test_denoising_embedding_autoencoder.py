import keras
import numpy as np
import pytest

from keras_recae.models import DenoisingEmbeddingAutoencoder

N, DIM = 200, 8


def vectors(seed: int = 0, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 3)) @ rng.normal(size=(3, DIM))
    return (factors + 0.2 * rng.normal(size=(n, DIM)) + 1.0).astype(np.float32)


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = DenoisingEmbeddingAutoencoder(latent_dim=3, hidden_dims=(16,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(vectors(), batch_size=50, epochs=10, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


def test_noise_is_scaled_by_each_dimensions_spread():
    model = DenoisingEmbeddingAutoencoder(
        latent_dim=3, normalization="none", noise_stddev=0.7, dropout=0.0, seed=0
    )
    x = vectors()
    x[:, 0] *= 10.0
    model.adapt(x)
    zeros = np.zeros((20000, DIM), np.float32)
    noise = model.corrupt(zeros, training=True).numpy()
    np.testing.assert_allclose(noise.std(axis=0), 0.7 * x.std(axis=0), rtol=0.03)
    assert (np.abs(noise.mean(axis=0)) < 0.03 * x.std(axis=0)).all()
    np.testing.assert_array_equal(np.asarray(model.corrupt(zeros[:5], training=False)), 0.0)


def test_dropout_zeroes_inputs_and_rescales_the_rest():
    model = DenoisingEmbeddingAutoencoder(latent_dim=3, noise_stddev=0.0, dropout=0.4, seed=0)
    model.adapt(vectors())
    ones = np.ones((5000, DIM), np.float32)
    corrupted = model.corrupt(ones, training=True).numpy()
    dropped = corrupted == 0.0
    assert abs(dropped.mean() - 0.4) < 0.02
    np.testing.assert_allclose(corrupted[~dropped], 1.0 / 0.6, rtol=1e-6)


def test_corruption_only_in_training():
    keras.utils.set_random_seed(0)
    model = DenoisingEmbeddingAutoencoder(latent_dim=3, hidden_dims=(16,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(vectors(), batch_size=50, epochs=2, verbose=0)
    x = vectors(seed=1, n=10)
    inference = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x, training=False).numpy(), inference)
    assert np.any(model(x, training=True).numpy() != inference)
    np.testing.assert_array_equal(model.refine(x), model.refine(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise_stddev": -0.1}, r"`noise_stddev` should be >= 0. Received: noise_stddev=-0.1"),
        ({"dropout": 1.0}, r"`dropout` should be in \[0, 1\). Received: dropout=1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DenoisingEmbeddingAutoencoder(**kwargs)
