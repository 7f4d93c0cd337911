import keras
import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import MultDAE

N_ITEMS = 40
BATCH = 40


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small Mult-DAE fitted for 10 epochs of 3 steps, with the data's item ids."""
    keras.utils.set_random_seed(0)
    model = MultDAE(hidden_dims=(16,), dropout=0.5, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    batches = sparse_batches(data.matrix, BATCH, shuffle=True, seed=0)
    history = model.fit(batches, epochs=10, verbose=0)
    model.set_item_ids(data.item_ids)
    return model, history.history


def batch(data, rows=slice(0, 10)):
    return to_sparse_tensor(data.matrix[rows])


def numpy_logits(model, dense):
    """The logits at inference, computed in numpy."""
    dense = dense.astype(np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    h = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    for layer in model.encoder_layers + model.decoder_layers:
        h = np.tanh(h @ layer.kernel.numpy() + layer.bias.numpy())
    return h @ model.output_layer.kernel.numpy() + model.output_layer.bias.numpy()


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_fit_lowers_the_loss(trained):
    _, history = trained
    losses = history["loss"]
    assert len(losses) == 10 and np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.5


def test_inference_is_deterministic_and_matches_numpy(trained, data):
    model, _ = trained
    x = batch(data)
    scores = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    expected = numpy_logits(model, data.matrix[:10].toarray())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_loss_is_the_mean_nll_of_non_empty_rows_plus_the_l2_penalty():
    rng = np.random.default_rng(5)
    dense = (rng.random((7, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[4] = 0.0
    dense[1, 3] = 2.0
    l2 = 0.01
    model = MultDAE(hidden_dims=(16, 4), l2=l2, seed=0)
    model.compile(optimizer="adam")
    batches = sparse_batches(sp.csr_matrix(dense), 10)
    results = model.evaluate(batches, return_dict=True, verbose=0)

    logits = numpy_logits(model, dense)
    present = dense.sum(axis=1) > 0
    nll = -(dense * log_softmax(logits)).sum(axis=1)[present].mean()
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 4
    penalty = l2 * sum(np.sum(kernel.astype(np.float64) ** 2) for kernel in kernels)
    assert penalty > 0.01 * nll
    assert results["loss"] == pytest.approx(nll + penalty, rel=1e-5)


def test_is_trained_after_an_optimizer_step(trained):
    model = MultDAE(hidden_dims=(8,), seed=0)
    model.build((None, N_ITEMS))
    assert not model.is_trained()
    model.compile(optimizer="adam")
    assert not model.is_trained()
    assert trained[0].is_trained()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.5}, "`dropout` should be in [0, 1). Received: dropout=1.5"),
        ({"dropout": 1.0}, "`dropout` should be in [0, 1). Received: dropout=1.0"),
        ({"hidden_dims": []}, "`hidden_dims` should be a non-empty list of positive integers."),
        ({"hidden_dims": [-4]}, "Received: hidden_dims=[-4]"),
        ({"hidden_dims": 200}, "Received: hidden_dims=200"),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        MultDAE(**kwargs)
    assert message in str(error.value)
