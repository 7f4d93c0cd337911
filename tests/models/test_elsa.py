"""ELSA's scores and loss against numpy, and its training."""

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data import sparse_batches, synthetic_interactions, to_sparse_tensor
from keras_recae.models import ELSA


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(n_users=150, n_items=30, n_clusters=3, density=0.2, seed=2)


def built(n_items, rank=5, seed=0):
    model = ELSA(rank=rank, seed=seed)
    model.build((None, n_items))
    return model


def numpy_factors(model):
    factors = model.item_factors.numpy().astype(np.float64)
    return factors / np.linalg.norm(factors, axis=1, keepdims=True)


def test_scores_are_the_history_through_normalised_factors_minus_itself(data):
    model = built(data.n_items)
    history = data.matrix[:20]
    factors = numpy_factors(model)
    expected = history.toarray() @ factors @ factors.T - history.toarray()
    np.testing.assert_allclose(model(to_sparse_tensor(history)).numpy(), expected, atol=1e-5)


def test_the_item_item_matrix_has_a_zero_diagonal():
    model = built(12, rank=3)
    # One item per row: row j of the scores is row j of A_n A_n^T - I.
    scores = model(to_sparse_tensor(sp.identity(12, format="csr", dtype=np.float32))).numpy()
    np.testing.assert_allclose(np.diag(scores), 0.0, atol=1e-6)
    assert np.abs(scores - np.diag(np.diag(scores))).max() > 0.1


@pytest.mark.parametrize("rank", [4, 40], ids=["gram", "output"])
def test_loss_is_the_distance_of_the_normalised_output_and_input(data, rank):
    # 25 users: a rank of 4 takes the Gram-matrix path, 40 the output path.
    model = built(data.n_items, rank=rank, seed=3)
    assert model.output_is_cheaper(25, data.n_items) == (rank > 25)
    # Counts, not only ones, and an empty row (left out of the mean).
    matrix = data.matrix[:25].toarray()
    matrix[3] = 0.0
    matrix[5] *= 2.0
    factors = numpy_factors(model)
    output = matrix @ factors @ factors.T - matrix
    users = matrix.sum(axis=1) > 0

    def unit(rows):
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    expected = np.sum((unit(output[users]) - unit(matrix[users])) ** 2, axis=1).mean()
    batch = to_sparse_tensor(sp.csr_matrix(matrix))
    loss = model.loss_parts(batch, training=True)["loss"]
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # A pipeline's batches have no static size: the same path is chosen when the step runs.
    assert bool(model.output_is_cheaper(tf.constant(25), data.n_items)) == (rank > 25)
    spec = tf.SparseTensorSpec([None, data.n_items], tf.float32)
    step = tf.function(lambda x: model.loss_parts(x, training=True)["loss"], input_signature=[spec])
    np.testing.assert_allclose(float(step(batch)), expected, rtol=1e-5)
    # ... and not fixed at tracing, when the Gram path would be taken at every rank.
    graph = step.get_concrete_function().graph
    assert {"If", "StatelessIf"} & {op.type for op in graph.get_operations()}


def test_fit_lowers_the_loss(data):
    keras.utils.set_random_seed(0)
    model = ELSA(rank=8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(5e-2))
    batches = sparse_batches(data.matrix, 50, shuffle=True, seed=0)
    history = model.fit(batches, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0]


def test_config_round_trip_and_bad_rank():
    model = ELSA(rank=7, seed=4)
    restored = ELSA.from_config(model.get_config())
    assert (restored.rank, restored.seed) == (7, 4)
    with pytest.raises(ValueError, match=r"`rank` should be a positive integer. Received: rank=0"):
        ELSA(rank=0)


def test_item_side_normalisation_scales_the_item_item_matrix(data, tmp_path):
    model = ELSA(rank=5, alpha=0.3, seed=0)
    model.adapt(data.matrix)
    counts = np.maximum(np.bincount(data.matrix.indices, minlength=data.n_items), 1.0)
    factors = numpy_factors(model)
    scale = counts**0.3
    weights = scale[:, None] * (factors @ factors.T - np.eye(data.n_items)) / scale[None, :]
    history = data.matrix[:20]
    expected = history.toarray() @ weights
    np.testing.assert_allclose(model(to_sparse_tensor(history)).numpy(), expected, atol=1e-4)
    # The same factors without alpha score as before; the file keeps the scales.
    plain = built(data.n_items)
    plain.item_factors.assign(model.item_factors)
    assert not np.allclose(plain(to_sparse_tensor(history)).numpy(), expected, atol=1e-3)
    model.save(tmp_path / "elsa.keras")
    loaded = keras.saving.load_model(tmp_path / "elsa.keras")
    assert loaded.alpha == 0.3
    np.testing.assert_allclose(loaded.item_scales.numpy(), scale, rtol=1e-6)
    with pytest.raises(ValueError, match="`alpha` should be"):
        ELSA(alpha=-0.1)


@pytest.mark.parametrize("rank", [4, 40], ids=["gram", "output"])
def test_dropout_compares_the_output_of_the_kept_entries_with_the_whole_history(data, rank):
    model = ELSA(rank=rank, dropout=0.4, seed=3)
    model.build((None, data.n_items))
    inputs = to_sparse_tensor(data.matrix[:25])
    # The masks the loss draws: the masking layer's own, from the same seed state.
    state = model.masking.seed_generator.state.numpy()
    loss = model.loss_parts(inputs, training=True)["loss"]
    model.masking.seed_generator.state.assign(state)
    kept = model.masking(inputs, training=True)
    kept = sp.csr_matrix(tf.sparse.to_dense(kept).numpy())
    history = data.matrix[:25].toarray()
    assert 0 < kept.nnz < data.matrix[:25].nnz
    factors = numpy_factors(model)
    output = kept.toarray() @ factors @ factors.T - kept.toarray()

    def unit(rows):
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    expected = np.sum((unit(output) - unit(history)) ** 2, axis=1).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # Outside training nothing is dropped: the loss of the paper's ELSA, and its scores.
    plain = ELSA(rank=rank, seed=3)
    plain.build((None, data.n_items))
    plain.item_factors.assign(model.item_factors)
    np.testing.assert_allclose(
        float(model.loss_parts(inputs, training=False)["loss"]),
        float(plain.loss_parts(inputs, training=False)["loss"]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(model(inputs).numpy(), plain(inputs).numpy(), atol=1e-6)
    assert ELSA.from_config(model.get_config()).dropout == 0.4
