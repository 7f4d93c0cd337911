"""`tf.data` pipelines that batch sparse rows straight from a CSR matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.checks import check_non_negative_int


def sparse_batches(
    matrix: sp.spmatrix,
    batch_size: int,
    *,
    targets: sp.spmatrix | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    prefetch: bool = True,
    with_rows: bool = False,
    initial_pass: int = 0,
) -> tf.data.Dataset:
    """Batches the rows of a CSR matrix as `tf.SparseTensor`s of static shape.

    Each element is a `tf.SparseTensor` of dense shape `[batch_size, n_columns]`
    (a pair of them when `targets` is given), gathered in the graph from the
    CSR arrays, so no dense rows are built on the host. The last batch is
    padded with empty rows to `batch_size`: the static shape lets XLA compile
    the sparse first layer, and models leave empty rows out of their losses.

    Args:
        matrix: scipy sparse matrix. Rows to batch (users, or items for
            item-based models).
        batch_size: int. Rows per batch.
        targets: scipy sparse matrix | None. Rows aligned with `matrix`,
            batched alongside it (held-out items for evaluation).
        shuffle: bool. Reshuffle the row order on each pass.
        seed: int | None. Seed of the shuffle.
        prefetch: bool. Prefetch batches in the background.
        with_rows: bool. Also yield the row index of each batch row, an int64 tensor
            of shape `[batch_size]` holding -1 for the padding rows (for models with a
            per-user parameter). Elements become `(x, rows)`, or `(x, targets, rows)`.
        initial_pass: int. With `shuffle` and a `seed`, the pass the first iteration
            gives the order of: the row order of pass `p` is a function of the seed and
            `p`, so a run resumed at pass `p` in a new process (`initial_pass=p`) sees the
            orders an uninterrupted one sees from its pass `p` on. Defaults to 0.

    Returns:
        A `tf.data.Dataset`.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` should be a positive integer. Received: {batch_size}")
    initial_pass = check_non_negative_int("initial_pass", initial_pass)
    sources = [_CsrTensors(matrix)]
    if targets is not None:
        if targets.shape[0] != matrix.shape[0]:
            raise ValueError(
                f"`targets` should have one row per row of `matrix` ({matrix.shape[0]}). "
                f"Received: {targets.shape[0]} rows."
            )
        sources.append(_CsrTensors(targets))
    dataset = tf.data.Dataset.range(matrix.shape[0])
    if shuffle:
        dataset = dataset.shuffle(matrix.shape[0], seed=seed, reshuffle_each_iteration=True)
        # Every iteration of the shuffle (one pass) draws its order's seeds from one seed
        # generator, which the datasets built on it share: opening an iterator per skipped
        # pass, without reading it, moves the generator to pass `initial_pass`.
        for _ in range(initial_pass):
            iter(dataset)
    dataset = dataset.batch(batch_size)

    def gather(rows):
        batches = tuple(source.gather_rows(rows, batch_size) for source in sources)
        if with_rows:
            padded = tf.pad(rows, [[0, batch_size - tf.size(rows)]], constant_values=-1)
            batches += (tf.ensure_shape(padded, [batch_size]),)
        return batches if len(batches) > 1 else batches[0]

    # Plain graph code: AutoGraph has nothing to convert and warns about the closure.
    gather = tf.autograph.experimental.do_not_convert(gather)
    dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def to_sparse_tensor(matrix: sp.spmatrix) -> tf.SparseTensor:
    """A scipy sparse matrix as a float32 `tf.SparseTensor` in canonical order."""
    coo = sp.coo_matrix(matrix)
    order = np.lexsort((coo.col, coo.row))
    indices = np.stack([coo.row[order], coo.col[order]], axis=1).astype(np.int64)
    return tf.SparseTensor(indices, coo.data[order].astype(np.float32), coo.shape)


class _CsrTensors:
    """The three CSR arrays as tensors, and a graph function gathering rows of them."""

    def __init__(self, matrix):
        matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        matrix.sum_duplicates()
        matrix.sort_indices()
        self.n_columns = matrix.shape[1]
        self.indptr = tf.constant(matrix.indptr.astype(np.int64))
        self.indices = tf.constant(matrix.indices.astype(np.int64))
        self.values = tf.constant(matrix.data)

    def gather_rows(self, rows: tf.Tensor, batch_size: int) -> tf.SparseTensor:
        starts = tf.gather(self.indptr, rows)
        ends = tf.gather(self.indptr, rows + 1)
        positions = tf.ragged.range(starts, ends)
        flat = positions.flat_values
        indices = tf.stack([positions.value_rowids(), tf.gather(self.indices, flat)], axis=1)
        return tf.SparseTensor(
            indices,
            tf.gather(self.values, flat),
            tf.constant([batch_size, self.n_columns], tf.int64),
        )
