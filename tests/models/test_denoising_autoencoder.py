import keras
import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import DenoisingAutoencoder

N_ITEMS = 40
BATCH = 40
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=120, n_items=N_ITEMS, n_clusters=4, density=0.15)


@pytest.fixture(scope="module")
def trained(data):
    """A small model fitted for one epoch of 6 steps, with the evaluated loss around it."""
    keras.utils.set_random_seed(0)
    model = DenoisingAutoencoder(hidden_dims=(16, 4), corruption=0.3, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    batches = sparse_batches(data.matrix, BATCH // 2, shuffle=True, seed=0)
    history = model.fit(batches, epochs=1, verbose=0)
    after = model.evaluate(sparse_batches(data.matrix, BATCH), return_dict=True, verbose=0)
    model.set_item_ids(data.item_ids)
    return model, before["loss"], after["loss"], history.history


def selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(np.minimum(x, 0)) - 1))


def numpy_outputs(model, dense):
    h = dense.astype(np.float64)
    for layer in model.encoder_layers + model.decoder_layers:
        h = selu(h @ layer.kernel.numpy() + layer.bias.numpy())
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
    rng = np.random.default_rng(5)
    dense = (rng.random((7, N_ITEMS)) < 0.2).astype(np.float32)
    dense[:, 0] = 1.0
    dense[4] = 0.0
    dense[1, 3] = 2.0
    model = DenoisingAutoencoder(hidden_dims=(16, 4), loss=loss, l2=1e-3, seed=0)
    model.compile(optimizer="adam")
    results = model.evaluate(sparse_batches(sp.csr_matrix(dense), 10), return_dict=True, verbose=0)
    present = dense.sum(axis=1) > 0
    reconstruction = per_user_loss(numpy_outputs(model, dense), dense, loss)[present].mean()
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 4
    penalty = 1e-3 * sum(np.sum(kernel.astype(np.float64) ** 2) for kernel in kernels)
    assert results["reconstruction"] == pytest.approx(reconstruction, rel=1e-5)
    assert results["loss"] == pytest.approx(reconstruction + penalty, rel=1e-5)


def test_training_masks_observed_entries_without_rescaling(data):
    model = DenoisingAutoencoder(hidden_dims=(8,), corruption=0.5, seed=0)
    x = to_sparse_tensor(data.matrix)
    corrupted = model.corrupt(x, training=True)
    values = corrupted.values.numpy()
    np.testing.assert_array_equal(corrupted.indices.numpy(), x.indices.numpy())
    assert set(np.unique(values)) == {0.0, 1.0}
    assert np.mean(values == 0.0) == pytest.approx(0.5, abs=0.05)
    assert model.corrupt(x, training=False) is x


def test_inference_is_deterministic_and_matches_numpy(trained, data):
    model = trained[0]
    x = to_sparse_tensor(data.matrix[:10])
    scores = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    expected = numpy_outputs(model, data.matrix[:10].toarray())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert model.encode(x).shape == (10, 4)


def test_layers_are_selu_with_lecun_normal_kernels():
    model = DenoisingAutoencoder(hidden_dims=(300, 100))
    model.build((None, 2000))
    for layer in model.encoder_layers + model.decoder_layers:
        assert layer.activation is keras.activations.selu
    kernel = model.encoder_layers[0].kernel.numpy()
    assert np.std(kernel) == pytest.approx(1 / np.sqrt(2000), rel=0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corruption": 1.0}, "`corruption` should be in [0, 1). Received: corruption=1.0"),
        ({"hidden_dims": [4, 0]}, "Received: hidden_dims=[4, 0]"),
        ({"loss": "hinge"}, "`loss` should be one of ['multinomial', 'logistic', 'squared']."),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        DenoisingAutoencoder(**kwargs)
    assert message in str(error.value)
