import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import Interactions, synthetic_interactions, to_sparse_tensor
from keras_recae.data.pipeline import sparse_batches
from keras_recae.models import AutoRec

N_USERS = 60
N_ITEMS = 30


@pytest.fixture(scope="module")
def data():
    """Ratings 1..5 with item 0 and user 0 left without training ratings."""
    ratings = synthetic_interactions(N_USERS, N_ITEMS, n_clusters=3, density=0.3, explicit=True)
    matrix = ratings.matrix.tolil()
    matrix[:, 0] = 0
    matrix[0, :] = 0
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    return Interactions(matrix, ratings.user_ids, ratings.item_ids)


def train(data, kind, epochs=3, batch_size=16, lr=1e-2, **kwargs):
    keras.utils.set_random_seed(0)
    model = AutoRec(kind=kind, hidden_units=8, seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    history = model.fit(data, batch_size=batch_size, epochs=epochs, verbose=0)
    return model, history.history


@pytest.fixture(scope="module")
def item_model(data):
    return train(data, "item", l2=2.0)[0]


@pytest.fixture(scope="module")
def user_model(data):
    return train(data, "user")[0]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def weights(model):
    return [
        np.asarray(w, np.float64)
        for w in (
            model.encoder.kernel,
            model.encoder.bias,
            model.decoder.kernel,
            model.decoder.bias,
        )
    ]


def clip(model, predictions):
    return np.clip(predictions, float(model.rating_min), float(model.rating_max))


def numpy_codes(model, matrix):
    v, mu, _, _ = weights(model)
    return sigmoid(matrix.T.toarray() @ v + mu)


def test_masked_loss_against_numpy(data):
    l2 = 3.0
    model = AutoRec(kind="item", hidden_units=8, l2=l2, seed=0)
    model.adapt(data)
    model.compile(optimizer="adam")
    rows = model.training_rows(data)[:10]
    results = model.evaluate(sparse_batches(rows, 16), return_dict=True, verbose=0)

    v, mu, w, b = weights(model)
    dense = rows.toarray().astype(np.float64)
    observed = dense != 0
    assert not observed[0].any() and observed.sum() > 20
    reconstruction = sigmoid(dense @ v + mu) @ w + b
    mse = np.sum(((reconstruction - dense) * observed) ** 2) / observed.sum()
    penalty = l2 / 2 * (np.sum(v**2) + np.sum(w**2)) / data.nnz
    assert results["mse"] == pytest.approx(mse, rel=1e-5)
    assert results["loss"] == pytest.approx(mse + penalty, rel=1e-5)


def test_fit_lowers_the_loss_and_beats_the_item_means(data):
    for kind in ("item", "user"):
        model, history = train(data, kind, epochs=20, batch_size=4, lr=3e-2, l2=1.0)
        assert history["loss"][-1] < history["loss"][0] / 3, kind
        x = to_sparse_tensor(data.matrix)
        if kind == "item":
            predictions = model.score_users(x, tf.range(N_USERS, dtype=tf.int64)).numpy()
        else:
            predictions = model(x).numpy()
        rows, columns = data.matrix.nonzero()
        errors = predictions[rows, columns] - data.matrix.data
        baseline = np.asarray(model.item_means)[columns] - data.matrix.data
        assert np.sqrt(np.mean(errors**2)) < np.sqrt(np.mean(baseline**2)), kind


def test_item_based_predicts_training_users_from_their_weights(item_model, data):
    x = to_sparse_tensor(data.matrix[:12])
    users = tf.constant(np.arange(12), tf.int64)
    scores = item_model.score_users(x, users).numpy()
    _, _, w, b = weights(item_model)
    expected = numpy_codes(item_model, data.matrix) @ w[:, :12] + b[:12]
    expected = expected.T
    # Item 0 has no training ratings: the user's mean rating; user 0 none: the item means.
    row_means = np.asarray(data.matrix[:12].sum(axis=1)).ravel() / np.maximum(
        data.matrix[:12].getnnz(axis=1), 1
    )
    row_means[0] = float(item_model.global_mean)
    expected[:, 0] = row_means
    expected[0, 1:] = np.asarray(item_model.item_means)[1:]
    np.testing.assert_allclose(scores, clip(item_model, expected), rtol=1e-4, atol=1e-4)
    # The known-user path does not read the history.
    empty = to_sparse_tensor(sp.csr_matrix((12, N_ITEMS), dtype=np.float32))
    np.testing.assert_allclose(
        item_model.score_users(empty, users).numpy()[1:, 1:], scores[1:, 1:], atol=1e-6
    )


def test_item_based_fold_in_is_the_ridge_regression(item_model, data):
    history = sp.csr_matrix(
        ([5.0, 1.0, 4.0, 2.0, 3.0], ([0, 0, 0, 1, 1], [3, 7, 12, 5, 20])), shape=(2, N_ITEMS)
    )
    scores = item_model(to_sparse_tensor(history)).numpy()
    design = np.hstack([numpy_codes(item_model, data.matrix), np.ones((N_ITEMS, 1))])
    penalty = np.diag([item_model.l2 / 2] * 8 + [1e-4])
    expected = []
    for row in range(2):
        columns = history[row].indices
        rated = design[columns]
        solution = np.linalg.solve(rated.T @ rated + penalty, rated.T @ history[row].data)
        expected.append(design @ solution)
    expected = np.array(expected)
    expected[:, 0] = [10 / 3, 2.5]
    np.testing.assert_allclose(scores, clip(item_model, expected), rtol=1e-3, atol=1e-3)
    # An unknown user index folds the history in the same way.
    unknown = item_model.score_users(to_sparse_tensor(history), tf.constant([-1, -1], tf.int64))
    np.testing.assert_allclose(unknown.numpy(), scores, atol=1e-4)


def test_user_based_reconstructs_the_history(user_model, data):
    assert not user_model.user_conditioned and user_model.user_ids is None
    with pytest.raises(NotImplementedError, match="not conditioned on users"):
        user_model.score_users(to_sparse_tensor(data.matrix[:2]), tf.constant([0, 1]))
    rows = data.matrix[:12]
    scores = user_model(to_sparse_tensor(rows)).numpy()
    v, mu, w, b = weights(user_model)
    expected = sigmoid(rows.toarray() @ v + mu) @ w + b
    row_means = np.asarray(rows.sum(axis=1)).ravel() / np.maximum(rows.getnnz(axis=1), 1)
    row_means[0] = float(user_model.global_mean)
    expected[:, 0] = row_means
    expected[0, 1:] = np.asarray(user_model.item_means)[1:]
    np.testing.assert_allclose(scores, clip(user_model, expected), rtol=1e-4, atol=1e-4)


def test_fallback_and_clipping(item_model, user_model, data):
    ratings = data.matrix.data
    for model in (item_model, user_model):
        assert float(model.rating_min) == ratings.min() == 1.0
        assert float(model.rating_max) == ratings.max() == 5.0
        assert float(model.global_mean) == pytest.approx(ratings.mean(), rel=1e-6)
        extreme = sp.csr_matrix(np.full((1, N_ITEMS), 5.0, np.float32))
        scores = model(to_sparse_tensor(extreme)).numpy()
        assert scores.min() >= 1.0 and scores.max() <= 5.0
        # Item 0 has no training ratings: it gets the mean of the given ratings.
        history = sp.csr_matrix(([2.0, 3.0], ([0, 0], [4, 9])), shape=(2, N_ITEMS))
        scores = model(to_sparse_tensor(history)).numpy()
        assert scores[0, 0] == pytest.approx(2.5)
        # An empty history gets the item means, the training mean for item 0.
        means = data.matrix.sum(axis=0).A1 / np.maximum(data.matrix.getnnz(axis=0), 1)
        means[0] = ratings.mean()
        np.testing.assert_allclose(scores[1], means, rtol=1e-5)


def test_fit_on_a_dataset_needs_adapt(data):
    model = AutoRec(kind="user", hidden_units=4)
    model.compile(optimizer="adam")
    batches = sparse_batches(data.matrix, 16)
    with pytest.raises(ValueError, match=r"call `adapt\(train\)` before `fit` on a dataset"):
        model.fit(batches, epochs=1, verbose=0)
    model.adapt(data)
    model.fit(batches, epochs=1, verbose=0)
    assert model.is_trained()


def test_item_based_is_built_by_adapt(data):
    model = AutoRec(kind="item", hidden_units=4)
    with pytest.raises(ValueError, match="built by `adapt"):
        model.build((None, N_ITEMS))
    model.adapt(data.matrix)
    np.testing.assert_array_equal(model.user_ids, np.arange(N_USERS))
    assert model.encoder.kernel.shape == (N_USERS, 4)
    assert model.decoder.kernel.shape == (4, N_USERS)
    with pytest.raises(ValueError, match="create a new model"):
        model.adapt(data.matrix[1:])


def test_is_trained_after_an_optimizer_step(item_model, data):
    model = AutoRec(kind="item", hidden_units=4)
    model.adapt(data)
    assert not model.is_trained()
    assert item_model.is_trained()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "items"}, "`kind` should be 'item' or 'user'. Received: kind='items'"),
        (
            {"hidden_units": 0},
            "`hidden_units` should be a positive integer. Received: hidden_units=0",
        ),
        ({"hidden_units": 2.5}, "Received: hidden_units=2.5"),
        ({"l2": -1.0}, "`l2` should be >= 0. Received: l2=-1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        AutoRec(**kwargs)
    assert message in str(error.value)
