"""Mult-VAE with a sampled softmax: the loss against numpy, exactness with every item
sampled, and a model that trains on samples and serves the full catalogue."""

import math

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import sparse_batches, synthetic_interactions
from keras_recae.losses import multinomial_nll, sampled_multinomial_nll
from keras_recae.models import Autoencoder, DenoisingAutoencoder, MultDAE, MultVAE, RecVAE


def sparse(matrix: sp.csr_matrix) -> tf.SparseTensor:
    coo = matrix.tocoo()
    return tf.SparseTensor(
        np.stack([coo.row, coo.col], 1).astype(np.int64), coo.data.astype(np.float32), coo.shape
    )


def random_case(seed=0, batch=6, d=4, n_items=15):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(batch, d)).astype(np.float32)
    kernel = rng.normal(size=(d, n_items)).astype(np.float32)
    bias = rng.normal(size=n_items).astype(np.float32)
    targets = sp.random(batch, n_items, density=0.25, random_state=seed, format="csr")
    targets.data = rng.integers(1, 4, targets.nnz).astype(np.float32)
    targets[batch - 1] = 0  # an empty row
    targets.eliminate_zeros()
    return hidden, kernel, bias, targets


def numpy_sampled_nll(hidden, kernel, bias, targets, sampled, log_expected):
    """The definition, row by row: own targets and the sampled items, the latter corrected."""
    logits = hidden @ kernel + bias
    # An item drawn c times: its expected count over c (the sum then runs over the draws).
    correction = {}
    for item, value in zip(sampled, log_expected):
        correction.setdefault(int(item), float(value))
    for item in correction:
        correction[item] -= math.log(int(np.sum(sampled == item)))
    nll = []
    for row in range(targets.shape[0]):
        own = set(targets.indices[targets.indptr[row] : targets.indptr[row + 1]].tolist())
        terms = [logits[row, item] for item in own]
        terms += [logits[row, item] - c for item, c in correction.items() if item not in own]
        normalizer = np.log(np.sum(np.exp(np.asarray(terms, np.float64)))) if terms else 0.0
        counts = targets[row].toarray().ravel()
        nll.append(counts.sum() * normalizer - counts @ logits[row])
    return np.asarray(nll)


def test_the_sampled_loss_matches_its_definition():
    hidden, kernel, bias, targets = random_case()
    rng = np.random.default_rng(1)
    sampled = rng.integers(0, kernel.shape[1], 9)  # repeats, and hits of some rows' targets
    log_expected = rng.normal(size=9).astype(np.float32)
    log_expected = np.array([log_expected[list(sampled).index(i)] for i in sampled], np.float32)
    expected = numpy_sampled_nll(hidden, kernel, bias, targets, sampled, log_expected)
    actual = sampled_multinomial_nll(hidden, kernel, bias, sparse(targets), sampled, log_expected)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_the_sampled_partition_function_is_unbiased():
    """Averaged over samples from a skewed proposal, the exponentiated normaliser is the
    full one (the log-Q correction with repeated draws counted)."""
    rng = np.random.default_rng(3)
    n_items, n_sampled = 200, 50
    hidden, kernel, bias, _ = random_case(seed=4, batch=1, n_items=n_items)
    targets = sp.csr_matrix(([1.0], ([0], [5])), shape=(1, n_items))
    logits = (hidden @ kernel + bias)[0].astype(np.float64)
    proposal = rng.random(n_items) ** 3 + 1e-3
    proposal /= proposal.sum()
    estimates = []
    for _ in range(2000):
        sampled = rng.choice(n_items, n_sampled, p=proposal)
        log_expected = np.log(n_sampled * proposal[sampled]).astype(np.float32)
        nll = sampled_multinomial_nll(hidden, kernel, bias, sparse(targets), sampled, log_expected)
        estimates.append(np.exp(float(nll.numpy()[0]) + logits[5]))
    full = np.exp(logits).sum()
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - full) < 4 * standard_error


def test_every_item_sampled_once_gives_the_full_multinomial_loss():
    hidden, kernel, bias, targets = random_case(seed=2)
    n_items = kernel.shape[1]
    full = multinomial_nll(hidden @ kernel + bias, sparse(targets))
    sampled = sampled_multinomial_nll(
        hidden, kernel, bias, sparse(targets), np.arange(n_items), np.zeros(n_items, np.float32)
    )
    np.testing.assert_allclose(sampled.numpy(), full.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [MultVAE, MultDAE, Autoencoder, DenoisingAutoencoder])
@pytest.mark.parametrize("proposal", ["popularity", "uniform"])
def test_a_model_trains_on_samples_and_scores_the_whole_catalogue(tmp_path, proposal, cls):
    data = synthetic_interactions(seed=0)
    loss = {"loss": "multinomial"} if cls in (Autoencoder, DenoisingAutoencoder) else {}
    model = cls(hidden_dims=(16,), seed=0, sampled_softmax=64, sampled_proposal=proposal, **loss)
    model.adapt(data.matrix)
    if proposal == "popularity":
        users = np.bincount(data.matrix.indices, minlength=data.n_items) + 1.0
        np.testing.assert_allclose(
            model.log_proposal.numpy(), np.log(users / users.sum()), rtol=1e-5
        )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(sparse_batches(data.matrix, 100, shuffle=True, seed=0), epochs=4, verbose=0)
    losses = history.history["nll" if cls is MultVAE else "loss"]
    assert losses[-1] < losses[0]
    batch = next(iter(sparse_batches(data.matrix[:8], 8)))
    assert model(batch, training=False).shape == (8, data.n_items)
    # The full-softmax NLL of the trained model is below an untrained one's.
    untrained = cls(hidden_dims=(16,), seed=0, **loss)
    trained_nll = float(np.mean(multinomial_nll(model(batch), batch)))
    untrained_nll = float(np.mean(multinomial_nll(untrained(batch), batch)))
    assert trained_nll < untrained_nll
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["sampled_softmax"] == 64
    np.testing.assert_allclose(loaded(batch).numpy(), model(batch).numpy(), rtol=1e-5)
    assert math.isfinite(trained_nll)


@pytest.mark.parametrize("cls", [MultVAE, MultDAE, RecVAE, Autoencoder, DenoisingAutoencoder])
def test_settings_are_checked(cls):
    loss = {"loss": "multinomial"} if cls in (Autoencoder, DenoisingAutoencoder) else {}
    with pytest.raises(ValueError, match="`sampled_softmax` should be a non-negative integer"):
        cls(sampled_softmax=-1, **loss)
    with pytest.raises(ValueError, match="`sampled_proposal` should be one of"):
        cls(sampled_softmax=10, sampled_proposal="zipf", **loss)


def test_rec_vae_trains_both_halves_on_samples_and_scores_the_whole_catalogue(tmp_path):
    data = synthetic_interactions(seed=0)
    settings = {"hidden_dim": 16, "latent_dim": 8, "n_layers": 2, "seed": 0}
    model = RecVAE(**settings, sampled_softmax=64)
    model.adapt(data.matrix)
    users = np.bincount(data.matrix.indices, minlength=data.n_items) + 1.0
    np.testing.assert_allclose(model.log_proposal.numpy(), np.log(users / users.sum()), rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(model.training_batches(data.matrix, 100, seed=0), epochs=4, verbose=0)
    assert history.history["nll"][-1] < history.history["nll"][0]
    batch = next(iter(sparse_batches(data.matrix[:8], 8)))
    untrained = RecVAE(**settings)
    trained_nll = float(np.mean(multinomial_nll(model(batch), batch)))
    assert trained_nll < float(np.mean(multinomial_nll(untrained(batch), batch)))
    # In evaluation the loss is the full one.
    full = model.loss_parts(batch, training=False)["nll"]
    assert float(full) == pytest.approx(trained_nll, rel=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_config()["sampled_softmax"] == 64
    np.testing.assert_allclose(loaded(batch).numpy(), model(batch).numpy(), rtol=1e-5)


def test_the_output_penalty_is_counted_once_in_a_sampled_step():
    # Keras puts a weight's regularizer in `model.losses` whether its layer ran or not: the
    # sampled NLL, which does not call the output layer, must not add it again.
    data = synthetic_interactions(seed=0)
    batch = next(iter(sparse_batches(data.matrix[:6], 6)))
    plain, penalised = (
        MultDAE(hidden_dims=(8,), l2=l2, seed=0, sampled_softmax=16) for l2 in (0.0, 1e-2)
    )
    plain(batch)
    penalised(batch)
    penalised.set_weights(plain.get_weights())
    nlls = []
    for model in (plain, penalised):
        hidden = model(batch, training=True)
        nlls.append(model.output_nll(hidden, batch, training=True).numpy())
    np.testing.assert_allclose(nlls[1], nlls[0], rtol=1e-6)
    kernels = [layer.kernel for layer in (penalised.encoder_layers[0], penalised.output_layer)]
    expected = 1e-2 * sum(float(np.sum(kernel.numpy() ** 2)) for kernel in kernels)
    assert sum(float(loss) for loss in penalised.losses) == pytest.approx(expected, rel=1e-5)
