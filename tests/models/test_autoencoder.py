import keras
import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import Autoencoder

N_ITEMS = 40
BATCH = 40


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small model fitted for one epoch of 6 steps, with the evaluated loss around it."""
    keras.utils.set_random_seed(0)
    model = Autoencoder(hidden_dims=(16, 4), dropout=0.2, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    batches = sparse_batches(data.matrix, BATCH // 2, shuffle=True, seed=0)
    history = model.fit(batches, epochs=1, verbose=0)
    after = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    model.set_item_ids(data.item_ids)
    return model, before["loss"], after["loss"], history.history


def numpy_outputs(model, dense):
    activation = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}[model.activation]
    h = dense.astype(np.float64)
    for layer in model.encoder_layers + model.decoder_layers:
        h = activation(h @ layer.kernel.numpy() + layer.bias.numpy())
    return h @ model.output_layer.kernel.numpy() + model.output_layer.bias.numpy()


def per_user_loss(outputs, dense, loss):
    if loss == "multinomial":
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -(dense * log_softmax).sum(axis=1)
    if loss == "logistic":
        p = 1.0 / (1.0 + np.exp(-outputs))
        return -(dense * np.log(p) + (1 - dense) * np.log(1 - p)).sum(axis=1)
    return ((dense - outputs) ** 2).sum(axis=1)


def test_one_epoch_lowers_the_loss(trained):
    _, before, after, history = trained
    assert np.isfinite(history["loss"]).all()
    assert after < before - 0.5


@pytest.mark.parametrize("loss", ["multinomial", "logistic", "squared"])
def test_loss_matches_numpy_over_non_empty_rows_plus_the_penalty(loss):
    # Seven users, one empty, a value of 2, and three padding rows in the batch.
    rng = np.random.default_rng(5)
    dense = (rng.random((7, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[4] = 0.0
    dense[1, 3] = 2.0
    model = Autoencoder(hidden_dims=(16, 4), activation="relu", loss=loss, l2=1e-3, seed=0)
    model.compile(optimizer="adam")
    results = model.evaluate(sparse_batches(sp.csr_matrix(dense), 10), return_dict=True, verbose=0)
    present = dense.sum(axis=1) > 0
    reconstruction = per_user_loss(numpy_outputs(model, dense), dense, loss)[present].mean()
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 4
    penalty = 1e-3 * sum(np.sum(kernel.astype(np.float64) ** 2) for kernel in kernels)
    assert results["reconstruction"] == pytest.approx(reconstruction, rel=1e-5)
    assert results["loss"] == pytest.approx(reconstruction + penalty, rel=1e-5)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_output_biases_start_at_the_best_constant_prediction(data, loss):
    # Padding rows (120 users in batches of 50) stay out of the share of observed entries.
    model = Autoencoder(hidden_dims=(4,), loss=loss, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.fit(sparse_batches(sp.csr_matrix(data.matrix[100:]), 50), epochs=1, verbose=0)
    density = data.matrix[100:].sum() / (20 * N_ITEMS)
    expected = np.log(density / (1 - density)) if loss == "logistic" else density
    np.testing.assert_allclose(model.output_layer.bias.numpy(), expected, rtol=1e-5)


def test_inference_is_deterministic_and_matches_numpy(trained, data):
    model = trained[0]
    x = to_sparse_tensor(data.matrix[:10])
    scores = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    expected = numpy_outputs(model, data.matrix[:10].toarray())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert model.encode(x).shape == (10, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.0}, "`dropout` should be in [0, 1). Received: dropout=1.0"),
        ({"hidden_dims": []}, "`hidden_dims` should be a non-empty list of positive integers."),
        ({"loss": "hinge"}, "`loss` should be one of ['multinomial', 'logistic', 'squared']."),
        ({"activation": "nope"}, "`activation` should be the name of a Keras activation."),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        Autoencoder(**kwargs)
    assert message in str(error.value)
