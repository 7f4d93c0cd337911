import keras
import numpy as np
import pytest
from scipy.special import erf

from keras_recae.models import EmbeddingVAE

N, DIM, LATENT = 160, 8, 3


def vectors(seed: int = 0, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 3)) @ rng.normal(size=(3, DIM))
    return (factors + 0.2 * rng.normal(size=(n, DIM)) + 1.0).astype(np.float32)


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def numpy_posterior(model, x):
    h = x.astype(np.float64)
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
    for layer in model.encoder_layers:
        h = gelu(h @ layer.kernel.numpy() + layer.bias.numpy())
    out = h @ model.code_layer.kernel.numpy() + model.code_layer.bias.numpy()
    return out[:, :LATENT], out[:, LATENT:]


def numpy_decode(model, z):
    h = z
    for layer in model.decoder_layers:
        h = gelu(h @ layer.kernel.numpy() + layer.bias.numpy())
    return h @ model.output_layer.kernel.numpy() + model.output_layer.bias.numpy()


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = EmbeddingVAE(latent_dim=LATENT, hidden_dims=(16,), beta=0.01, anneal_steps=0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(vectors(), batch_size=40, epochs=15, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["reconstruction"][-1] < history["reconstruction"][0]


def test_evaluate_reports_the_kl_of_numpy():
    x = vectors(seed=1)
    beta = 0.3
    model = EmbeddingVAE(latent_dim=LATENT, hidden_dims=(16,), beta=beta, anneal_steps=0, seed=0)
    model.adapt(x)
    model.compile(optimizer="adam")
    results = model.evaluate(x, batch_size=N, return_dict=True, verbose=0)
    mean, log_var = numpy_posterior(model, x)
    kl = np.mean(0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1))
    assert kl > 0.01
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    errors = (numpy_decode(model, mean) - unit) / model.spread.numpy()
    reconstruction = np.mean(np.mean(errors**2, axis=1))
    assert results["kl"] == pytest.approx(kl, rel=1e-5)
    assert results["reconstruction"] == pytest.approx(reconstruction, rel=1e-5)
    assert results["beta"] == pytest.approx(beta)
    assert results["loss"] == pytest.approx(reconstruction + beta * kl, rel=1e-5)


def test_beta_grows_with_the_optimizer_steps():
    # One batch per epoch: the update of epoch e reads step e - 1.
    model = EmbeddingVAE(latent_dim=LATENT, hidden_dims=(8,), beta=0.5, anneal_steps=4, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    betas = model.fit(vectors(), batch_size=N, epochs=6, verbose=0).history["beta"]
    np.testing.assert_allclose(betas, [0.0, 0.125, 0.25, 0.375, 0.5, 0.5], atol=1e-7)
    assert float(model.current_beta()) == pytest.approx(0.5)


def test_refine_is_the_posterior_mean_and_training_samples():
    keras.utils.set_random_seed(0)
    model = EmbeddingVAE(latent_dim=LATENT, hidden_dims=(16,), beta=0.01, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(vectors(), batch_size=40, epochs=3, verbose=0)
    x = vectors(seed=2, n=9)
    mean, _ = numpy_posterior(model, x)
    np.testing.assert_allclose(
        model.refine(x), mean - model.code_center.numpy(), rtol=1e-4, atol=1e-5
    )
    inference = model(x, training=False).numpy()
    np.testing.assert_allclose(inference, numpy_decode(model, mean), rtol=1e-4, atol=1e-5)
    assert np.any(model(x, training=True).numpy() != inference)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, r"`beta` should be >= 0. Received: beta=-1.0"),
        ({"anneal_steps": -1}, "`anneal_steps` should be a non-negative integer"),
        ({"anneal_steps": 2.5}, "anneal_steps=2.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingVAE(**kwargs)
