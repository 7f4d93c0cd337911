import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import synthetic_interactions, to_sparse_tensor
from keras_recae.data.pipeline import sparse_batches
from keras_recae.models import DeepRec

N_USERS = 60
N_ITEMS = 30
BATCH = 16


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(N_USERS, N_ITEMS, n_clusters=3, density=0.3, explicit=True)


@pytest.fixture(scope="module")
def trained(data):
    keras.utils.set_random_seed(0)
    model = DeepRec(hidden_dims=(16, 8), dropout=0.2, seed=0, kind="user")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, batch_size=BATCH, epochs=15, verbose=0)
    return model, history.history


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return scale * np.where(x > 0, x, alpha * (np.exp(x) - 1))


def numpy_forward(model, dense):
    """f(x) at inference (no dropout), before the fallback and clipping."""
    h = dense.astype(np.float64)
    for layer in model.encoder_layers + model.decoder_layers:
        h = selu(h @ np.asarray(layer.kernel) + np.asarray(layer.bias))
    return h @ np.asarray(model.output_layer.kernel) + np.asarray(model.output_layer.bias)


def test_fit_lowers_the_masked_mse(trained):
    _, history = trained
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["refeed_mse"]).all()
    assert history["mse"][-1] < history["mse"][0] / 3


def test_masked_mse_is_normalised_by_the_observed_ratings(data):
    model = DeepRec(hidden_dims=(16, 8), dropout=0.5, l2=0.0, seed=0, kind="user")
    model.adapt(data)
    model.compile(optimizer="adam")
    rows = data.matrix[:10].tolil()
    rows[3] = 0
    rows = sp.csr_matrix(rows)
    rows.eliminate_zeros()
    results = model.evaluate(sparse_batches(rows, BATCH), return_dict=True, verbose=0)
    dense = rows.toarray()
    observed = dense != 0
    errors = (numpy_forward(model, dense) - dense) * observed
    assert results["mse"] == pytest.approx(np.sum(errors**2) / observed.sum(), rel=1e-5)
    assert results["loss"] == pytest.approx(results["mse"])


@pytest.mark.parametrize("refeed_steps", [0, 2])
def test_each_batch_makes_one_update_plus_one_per_refeed_step(data, refeed_steps):
    model = DeepRec(hidden_dims=(4,), refeed_steps=refeed_steps, seed=0, kind="user")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(data, batch_size=BATCH, epochs=2, verbose=0)
    batches = -(-N_USERS // BATCH)
    assert int(model.optimizer.iterations) == 2 * batches * (1 + refeed_steps)


def test_refeeding_fits_f_of_y_to_the_dense_output_y(data):
    # With a zero learning rate the weights stay put: the re-feeding loss is then the
    # dense MSE of f(f(x)) against f(x) over the non-empty rows.
    model = DeepRec(hidden_dims=(8, 4), dropout=0.0, refeed_steps=1, l2=0.0, seed=0, kind="user")
    model.adapt(data)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    rows = data.matrix[:BATCH].tolil()
    rows[5] = 0
    rows = sp.csr_matrix(rows)
    rows.eliminate_zeros()
    logs = model.train_on_batch(to_sparse_tensor(rows), return_dict=True)
    outputs = numpy_forward(model, rows.toarray())
    present = rows.getnnz(axis=1) > 0
    expected = np.mean((numpy_forward(model, outputs) - outputs)[present] ** 2)
    assert logs["refeed_mse"] == pytest.approx(expected, rel=1e-4)
    assert int(model.optimizer.iterations) == 2


def test_inference_is_deterministic_clipped_and_matches_numpy(trained, data):
    model, _ = trained
    x = to_sparse_tensor(data.matrix[:10])
    scores = model(x).numpy()
    np.testing.assert_array_equal(model(x).numpy(), scores)
    assert np.any(model(x, training=True).numpy() != scores)
    expected = np.clip(numpy_forward(model, data.matrix[:10].toarray()), 1.0, 5.0)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert scores.min() >= 1.0 and scores.max() <= 5.0
    assert model.encode(x).shape == (10, 8)


def test_fallback_for_empty_histories(trained, data):
    model, _ = trained
    empty = to_sparse_tensor(sp.csr_matrix((2, N_ITEMS), dtype=np.float32))
    means = data.matrix.sum(axis=0).A1 / np.maximum(data.matrix.getnnz(axis=0), 1)
    np.testing.assert_allclose(model(empty).numpy(), np.stack([means, means]), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.0}, "`dropout` should be in [0, 1). Received: dropout=1.0"),
        ({"hidden_dims": []}, "`hidden_dims` should be a non-empty list of positive integers."),
        ({"refeed_steps": -1}, "`refeed_steps` should be a non-negative integer."),
        ({"refeed_steps": 1.5}, "Received: refeed_steps=1.5"),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
        ({"kind": "items"}, "`kind` should be 'item' or 'user'. Received: kind='items'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        DeepRec(**kwargs)
    assert message in str(error.value)


def test_mixed_precision_fit_keeps_float32_statistics_and_predictions(data, dtype_policy):
    dtype_policy("mixed_float16")
    model = DeepRec(hidden_dims=(8, 4), seed=0, kind="user")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(data, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    scores = model(to_sparse_tensor(data.matrix[:5]))
    assert scores.dtype == "float32"
    means = data.matrix.sum(axis=0).A1 / data.matrix.getnnz(axis=0)
    np.testing.assert_allclose(model.item_means.numpy(), means, rtol=1e-6)


@pytest.fixture(scope="module")
def item_based(data):
    keras.utils.set_random_seed(0)
    model = DeepRec(hidden_dims=(16, 8), dropout=0.2, l2=1e-3, seed=0, kind="item")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, batch_size=8, epochs=15, verbose=0)
    return model, history.history


def numpy_codes(model, matrix):
    """Each item's input of the output layer, from its training ratings (no dropout)."""
    h = matrix.T.toarray().astype(np.float64)
    for layer in model.encoder_layers + model.decoder_layers:
        h = selu(h @ np.asarray(layer.kernel) + np.asarray(layer.bias))
    return h


def test_item_based_rows_are_items_and_the_output_has_a_column_per_user(item_based, data):
    model, history = item_based
    assert model.item_based and model.user_conditioned and model.n_items == N_ITEMS
    assert model.output_layer.kernel.shape == (16, N_USERS)
    assert model.encoder_layers[0].kernel.shape == (N_USERS, 16)
    assert history["mse"][-1] < history["mse"][0] / 3
    np.testing.assert_array_equal(model.user_ids, data.user_ids)


def test_item_based_scores_training_users_from_their_output_column(item_based, data):
    model, _ = item_based
    users = np.arange(12)
    scores = model.score_users(to_sparse_tensor(data.matrix[:12]), tf.constant(users)).numpy()
    kernel, bias = np.asarray(model.output_layer.kernel), np.asarray(model.output_layer.bias)
    expected = (numpy_codes(model, data.matrix) @ kernel[:, users] + bias[users]).T
    clipped = np.clip(expected, float(model.rating_min), float(model.rating_max))
    np.testing.assert_allclose(scores, clipped, rtol=1e-4, atol=1e-4)


def test_item_based_folds_a_new_user_in_by_ridge_regression(item_based, data):
    model, _ = item_based
    history = sp.csr_matrix(
        ([5.0, 1.0, 4.0, 2.0, 3.0], ([0, 0, 0, 1, 1], [3, 7, 12, 5, 20])), shape=(2, N_ITEMS)
    )
    scores = model(to_sparse_tensor(history)).numpy()
    design = np.hstack([numpy_codes(model, data.matrix), np.ones((N_ITEMS, 1))])
    # The training objective at a full batch: `l2` times the number of training ratings.
    penalty = np.diag([1e-3 * data.nnz] * 16 + [1e-4])
    expected = []
    for row in range(2):
        rated = design[history[row].indices]
        solution = np.linalg.solve(rated.T @ rated + penalty, rated.T @ history[row].data)
        expected.append(design @ solution)
    clipped = np.clip(np.array(expected), float(model.rating_min), float(model.rating_max))
    np.testing.assert_allclose(scores, clipped, rtol=1e-3, atol=1e-3)


def test_item_based_survives_saving(item_based, data, tmp_path):
    model, _ = item_based
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.kind == "item"
    x, users = to_sparse_tensor(data.matrix[:5]), tf.constant(np.arange(5))
    np.testing.assert_allclose(
        loaded.score_users(x, users).numpy(), model.score_users(x, users).numpy(), atol=1e-6
    )
