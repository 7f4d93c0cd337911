import keras
import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import MultVAE

N_ITEMS = 40
BATCH = 40


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small Mult-VAE fitted for 10 epochs of 3 steps, with the data's item ids."""
    keras.utils.set_random_seed(0)
    model = MultVAE(hidden_dims=(16, 4), dropout=0.5, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(
        sparse_batches(data.matrix, BATCH, shuffle=True, seed=0), epochs=10, verbose=0
    )
    model.set_item_ids(data.item_ids)
    return model, history.history


def batch(data, rows=slice(0, 10)):
    return to_sparse_tensor(data.matrix[rows])


def dense_layer(layer, inputs, activation=None):
    outputs = inputs @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()
    return activation(outputs) if activation else outputs


def numpy_forward(model, dense):
    """Posterior mean, log-variance and logits at inference, computed in numpy."""
    dense = dense.astype(np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    h = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    for layer in model.encoder_layers:
        h = dense_layer(layer, h, np.tanh)
    posterior = dense_layer(model.posterior, h)
    latent = model.hidden_dims[-1]
    mean, log_var = posterior[:, :latent], posterior[:, latent:]
    z = mean
    for layer in model.decoder_layers:
        z = dense_layer(layer, z, np.tanh)
    return mean, log_var, dense_layer(model.output_layer, z)


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_fit_lowers_the_loss(trained):
    _, history = trained
    losses = history["loss"]
    assert len(losses) == 10 and np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.5
    assert history["nll"][-1] < history["nll"][0]


def test_inference_is_deterministic_and_decodes_the_posterior_mean(trained, data):
    model, _ = trained
    x = batch(data)
    scores = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x, training=False).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    mean, _, logits = numpy_forward(model, data.matrix[:10].toarray())
    np.testing.assert_allclose(model.encode(x).numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores, logits, rtol=1e-4, atol=1e-4)


def test_evaluate_tracks_the_loss_parts_of_an_independent_computation():
    # Seven users, one of them empty, a count of 2, and three padding rows in the batch:
    # the empty and padding rows must stay out of the means.
    rng = np.random.default_rng(5)
    dense = (rng.random((7, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[4] = 0.0
    dense[1, 3] = 2.0
    beta, l2 = 0.3, 1e-3
    model = MultVAE(hidden_dims=(16, 4), beta=beta, l2=l2, seed=0)
    model.compile(optimizer="adam")
    results = model.evaluate(sparse_batches(sp.csr_matrix(dense), 10), return_dict=True, verbose=0)

    mean, log_var, logits = numpy_forward(model, dense)
    present = dense.sum(axis=1) > 0
    nll = -(dense * log_softmax(logits)).sum(axis=1)[present].mean()
    variance = np.exp(log_var)
    kl = (0.5 * (variance + mean**2 - 1.0 - log_var)).sum(axis=1)[present].mean()
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 4
    penalty = l2 * sum(np.sum(kernel.astype(np.float64) ** 2) for kernel in kernels)
    assert penalty > 1e-3
    assert results["nll"] == pytest.approx(nll, rel=1e-5)
    assert results["kl"] == pytest.approx(kl, rel=1e-4)
    assert results["beta"] == pytest.approx(beta)
    assert results["loss"] == pytest.approx(nll + beta * kl + penalty, rel=1e-5)


def test_annealed_beta_follows_the_optimizer_steps(data):
    # One batch per epoch: epoch e is step e, with beta = min(cap, e / total).
    model = MultVAE(hidden_dims=(8, 4), beta_cap=0.6, total_anneal_steps=4, dropout=0.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(sparse_batches(data.matrix, data.n_users), epochs=6, verbose=0).history
    assert history["beta"] == pytest.approx([0.0, 0.25, 0.5, 0.6, 0.6, 0.6])
    expected = np.array(history["nll"]) + np.array(history["beta"]) * np.array(history["kl"])
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-6)
    assert int(model.optimizer.iterations) == 6
    assert float(model.current_beta()) == pytest.approx(0.6)


def test_annealed_beta_is_averaged_over_the_steps_of_an_epoch(data):
    model = MultVAE(hidden_dims=(8, 4), beta_cap=1.0, total_anneal_steps=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(sparse_batches(data.matrix, BATCH), epochs=4, verbose=0).history
    # Steps 3e, 3e + 1, 3e + 2 in epoch e.
    expected = [np.mean([min(1.0, s / 10) for s in range(3 * e, 3 * e + 3)]) for e in range(4)]
    assert history["beta"] == pytest.approx(expected)


def test_fixed_beta_holds(data):
    model = MultVAE(hidden_dims=(8, 4), beta=0.3, total_anneal_steps=1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(sparse_batches(data.matrix, BATCH), epochs=2, verbose=0).history
    assert history["beta"] == pytest.approx([0.3, 0.3])
    expected = np.array(history["nll"]) + 0.3 * np.array(history["kl"])
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-6)


def test_is_trained_after_an_optimizer_step(trained):
    model = MultVAE(hidden_dims=(8, 4), seed=0)
    model.build((None, N_ITEMS))
    assert not model.is_trained()
    model.compile(optimizer="adam")
    assert not model.is_trained()
    assert trained[0].is_trained()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.5}, "`dropout` should be in [0, 1). Received: dropout=1.5"),
        ({"dropout": -0.1}, "`dropout` should be in [0, 1). Received: dropout=-0.1"),
        ({"hidden_dims": []}, "`hidden_dims` should be a non-empty list of positive integers."),
        ({"hidden_dims": [8, 0]}, "Received: hidden_dims=[8, 0]"),
        ({"hidden_dims": 200}, "Received: hidden_dims=200"),
        ({"beta_cap": -0.2}, "`beta_cap` should be >= 0. Received: beta_cap=-0.2"),
        ({"beta": -1.0}, "`beta` should be >= 0. Received: beta=-1.0"),
        ({"l2": -1e-3}, "`l2` should be >= 0. Received: l2=-0.001"),
        (
            {"total_anneal_steps": 0},
            "`total_anneal_steps` should be a positive integer. Received: total_anneal_steps=0",
        ),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        MultVAE(**kwargs)
    assert message in str(error.value)
