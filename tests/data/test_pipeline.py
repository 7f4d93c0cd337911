import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data.pipeline import sparse_batches, to_sparse_tensor

N_ROWS, N_COLUMNS, BATCH = 23, 11, 5


@pytest.fixture(scope="module")
def matrix():
    """A CSR matrix whose row r holds r + 1 in column 0, so every row is recognisable."""
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((N_ROWS, N_COLUMNS)) < 0.3, rng.random((N_ROWS, N_COLUMNS)), 0.0)
    dense[:, 0] = np.arange(1, N_ROWS + 1)
    dense[7, 1:] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def to_dense(batch: tf.SparseTensor) -> np.ndarray:
    return tf.sparse.to_dense(batch).numpy()


def epoch(dataset) -> list[np.ndarray]:
    return [to_dense(batch) for batch in dataset]


def row_ids(batches) -> list[int]:
    """The row number of each non-padding row, read from column 0."""
    rows = np.concatenate(batches)
    return [int(value) - 1 for value in rows[:, 0] if value > 0]


def test_static_shape_and_padding(matrix):
    dataset = sparse_batches(matrix, BATCH)
    assert dataset.element_spec.shape.as_list() == [BATCH, N_COLUMNS]
    batches = list(dataset)
    assert len(batches) == -(-N_ROWS // BATCH)
    for batch in batches:
        assert batch.shape.as_list() == [BATCH, N_COLUMNS]
        assert batch.dense_shape.numpy().tolist() == [BATCH, N_COLUMNS]
    padding = N_ROWS % BATCH
    last_rows = batches[-1].indices.numpy()[:, 0]
    assert set(last_rows) == set(range(padding))
    np.testing.assert_array_equal(to_dense(batches[-1])[padding:], 0.0)


def test_batches_in_order_reconstruct_the_matrix(matrix):
    rows = np.concatenate(epoch(sparse_batches(matrix, BATCH)))
    np.testing.assert_array_equal(rows[:N_ROWS], matrix.toarray())
    np.testing.assert_array_equal(rows[N_ROWS:], 0.0)


def test_entries_come_in_canonical_order(matrix):
    for batch in sparse_batches(matrix, BATCH):
        indices = batch.indices.numpy()
        np.testing.assert_array_equal(indices, tf.sparse.reorder(batch).indices.numpy())
        assert batch.values.dtype == tf.float32


def test_shuffled_epochs_hold_every_row_once_in_new_orders(matrix):
    dataset = sparse_batches(matrix, BATCH, shuffle=True, seed=3)
    orders = []
    for _ in range(3):
        batches = epoch(dataset)
        order = row_ids(batches)
        assert sorted(order) == list(range(N_ROWS))
        np.testing.assert_array_equal(
            np.concatenate(batches)[:N_ROWS][np.argsort(order)], matrix.toarray()
        )
        orders.append(order)
    assert orders[0] != list(range(N_ROWS))
    assert orders[0] != orders[1] and orders[1] != orders[2]
    # A new pipeline with the same seed repeats the same sequence of orders.
    again = sparse_batches(matrix, BATCH, shuffle=True, seed=3)
    assert [row_ids(epoch(again)) for _ in range(2)] == orders[:2]
    other = sparse_batches(matrix, BATCH, shuffle=True, seed=4)
    assert row_ids(epoch(other)) != orders[0]


def test_a_pipeline_from_a_later_pass_gives_that_pass_order(matrix):
    orders = [row_ids(epoch(d)) for d in [sparse_batches(matrix, BATCH, shuffle=True, seed=3)] * 5]
    resumed = sparse_batches(matrix, BATCH, shuffle=True, seed=3, initial_pass=3)
    assert [row_ids(epoch(resumed)) for _ in range(2)] == orders[3:]
    with pytest.raises(ValueError, match="`initial_pass` should be a non-negative integer"):
        sparse_batches(matrix, BATCH, shuffle=True, seed=3, initial_pass=-1)


def test_shuffled_batches_are_padded_at_the_end_only(matrix):
    batches = epoch(sparse_batches(matrix, BATCH, shuffle=True, seed=1))
    present = np.concatenate(batches)[:, 0] > 0
    assert present[:N_ROWS].all() and not present[N_ROWS:].any()


def test_targets_are_aligned_row_by_row(matrix):
    # Row r of the targets holds 100 + r in column r % N_COLUMNS.
    rows = np.arange(N_ROWS)
    targets = sp.csr_matrix(
        (100.0 + rows, (rows, rows % N_COLUMNS)), shape=(N_ROWS, N_COLUMNS), dtype=np.float64
    )
    seen = 0
    for inputs, batch_targets in sparse_batches(matrix, BATCH, targets=targets, shuffle=True):
        assert batch_targets.shape.as_list() == [BATCH, N_COLUMNS]
        inputs, batch_targets = to_dense(inputs), to_dense(batch_targets)
        for input_row, target_row in zip(inputs, batch_targets):
            if input_row[0] == 0:
                np.testing.assert_array_equal(target_row, 0.0)
                continue
            row = int(input_row[0]) - 1
            expected = np.zeros(N_COLUMNS, np.float32)
            expected[row % N_COLUMNS] = 100.0 + row
            np.testing.assert_array_equal(target_row, expected)
            seen += 1
    assert seen == N_ROWS


def test_with_rows_yields_the_row_index_of_each_batch_row(matrix):
    dataset = sparse_batches(matrix, BATCH, shuffle=True, seed=2, with_rows=True)
    x_spec, rows_spec = dataset.element_spec
    assert x_spec.shape.as_list() == [BATCH, N_COLUMNS]
    assert rows_spec.shape.as_list() == [BATCH] and rows_spec.dtype == tf.int64
    seen = []
    for x, rows in dataset:
        dense, rows = to_dense(x), rows.numpy()
        for row, index in zip(dense, rows):
            # Column 0 holds r + 1 for row r, zero for the padding rows.
            assert index == int(row[0]) - 1
        seen += [int(r) for r in rows if r >= 0]
    assert sorted(seen) == list(range(N_ROWS))
    assert (rows[N_ROWS % BATCH :] == -1).all()


def test_with_rows_and_targets_come_as_a_triple(matrix):
    dataset = sparse_batches(matrix, BATCH, targets=matrix, with_rows=True)
    x, targets, rows = next(iter(dataset))
    np.testing.assert_array_equal(to_dense(x), to_dense(targets))
    np.testing.assert_array_equal(rows.numpy(), np.arange(BATCH))


def test_duplicates_are_summed_and_the_callers_matrix_is_not_changed():
    data = np.array([3.0, 1.0, 2.0, 4.0])
    indices = np.array([4, 1, 4, 0], dtype=np.int32)
    indptr = np.array([0, 3, 3, 4], dtype=np.int32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(3, 6))
    assert not matrix.has_canonical_format
    copies = [matrix.data.copy(), matrix.indices.copy(), matrix.indptr.copy()]
    rows = np.concatenate(epoch(sparse_batches(matrix, 2, shuffle=True, seed=0)))
    rows = rows[np.argsort(-rows.sum(axis=1), kind="stable")]
    expected = np.zeros((3, 6), np.float32)
    expected[0, [1, 4]] = [1.0, 5.0]
    expected[2, 0] = 4.0
    np.testing.assert_array_equal(rows[[0, 1]], expected[[0, 2]])
    np.testing.assert_array_equal(rows[2:], 0.0)
    for array, copy in zip((matrix.data, matrix.indices, matrix.indptr), copies):
        np.testing.assert_array_equal(array, copy)
    assert matrix.dtype == np.float64


def test_accepts_other_sparse_formats(matrix):
    rows = np.concatenate(epoch(sparse_batches(matrix.tocoo(), BATCH)))
    np.testing.assert_array_equal(rows[:N_ROWS], matrix.toarray())


def test_rejects_bad_arguments(matrix):
    with pytest.raises(ValueError, match="`batch_size` should be a positive integer. Received: 0"):
        sparse_batches(matrix, 0)
    with pytest.raises(
        ValueError, match=r"`targets` should have one row per row of `matrix` \(23\). Received: 4"
    ):
        sparse_batches(matrix, BATCH, targets=matrix[:4])


def test_to_sparse_tensor_is_canonical_float32():
    matrix = sp.coo_matrix(
        ([2.0, 1.0, 3.0], ([1, 0, 1], [2, 3, 0])), shape=(2, 4), dtype=np.float64
    )
    tensor = to_sparse_tensor(matrix)
    assert tensor.dtype == tf.float32
    assert tensor.indices.numpy().tolist() == [[0, 3], [1, 0], [1, 2]]
    assert tensor.values.numpy().tolist() == [1.0, 3.0, 2.0]
    assert tensor.dense_shape.numpy().tolist() == [2, 4]
