"""User-item interactions: a CSR matrix plus the raw ids of its rows and columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from keras_recae.data.ids import as_strings, parse_ids


class Interactions:
    """A users x items matrix in CSR form with the raw ids of its rows and columns.

    Rows are users, columns are items. `user_ids[i]` is the raw id of row `i`
    and `item_ids[j]` the raw id of column `j`, as the data had them: int64
    when every id is an integer, else strings. Values are float32 (ratings,
    or 1.0 for implicit feedback).

    Args:
        matrix: scipy sparse matrix. The interactions, shape `(n_users, n_items)`.
        user_ids: array-like. Raw user ids, one per row.
        item_ids: array-like. Raw item ids, one per column.

    Example:

    ```python
    from keras_recae.data import Interactions

    data = Interactions.from_pairs(["u1", "u1", "u2"], [10, 20, 10], [5, 3, 4])
    implicit = data.binarize(3.5)
    ```
    """

    def __init__(self, matrix, user_ids, item_ids):
        matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        matrix.sum_duplicates()
        matrix.sort_indices()
        user_ids = parse_ids(user_ids)
        item_ids = parse_ids(item_ids)
        if matrix.shape != (len(user_ids), len(item_ids)):
            raise ValueError(
                f"`matrix` has shape {matrix.shape} but there are {len(user_ids)} user ids "
                f"and {len(item_ids)} item ids."
            )
        if len(np.unique(item_ids)) != len(item_ids):
            raise ValueError("`item_ids` should be unique.")
        self.matrix = matrix
        self.user_ids = user_ids
        self.item_ids = item_ids

    @classmethod
    def from_pairs(
        cls,
        users,
        items,
        ratings=None,
        user_ids=None,
        item_ids=None,
    ) -> Interactions:
        """Builds interactions from parallel arrays of raw user and item ids.

        Vocabularies are the sorted unique ids unless `user_ids` / `item_ids`
        are given, in which case pairs whose id is not in them are dropped.
        A repeated (user, item) pair keeps its last rating.
        """
        users = parse_ids(users)
        items = parse_ids(items)
        if ratings is None:
            ratings = np.ones(len(users), dtype=np.float32)
        ratings = np.asarray(ratings, dtype=np.float32)
        if not (len(users) == len(items) == len(ratings)):
            raise ValueError(
                f"`users`, `items` and `ratings` should have the same length. Received: "
                f"{len(users)}, {len(items)}, {len(ratings)}."
            )
        user_vocab = np.unique(users) if user_ids is None else parse_ids(user_ids)
        item_vocab = np.unique(items) if item_ids is None else parse_ids(item_ids)
        rows = lookup(user_vocab, users)
        cols = lookup(item_vocab, items)
        keep = (rows >= 0) & (cols >= 0)
        rows, cols, ratings = rows[keep], cols[keep], ratings[keep]
        # Last occurrence wins for a repeated pair, as a later rating replaces an earlier one.
        key = rows.astype(np.int64) * len(item_vocab) + cols
        _, last = np.unique(key[::-1], return_index=True)
        last = len(key) - 1 - last
        matrix = sp.csr_matrix(
            (ratings[last], (rows[last], cols[last])),
            shape=(len(user_vocab), len(item_vocab)),
            dtype=np.float32,
        )
        return cls(matrix, user_vocab, item_vocab)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, user_ids=None, item_ids=None) -> Interactions:
        """Builds interactions from a frame with `user`, `item` and optional `rating` columns."""
        ratings = frame["rating"].to_numpy() if "rating" in frame else None
        return cls.from_pairs(
            frame["user"].to_numpy(),
            frame["item"].to_numpy(),
            ratings,
            user_ids=user_ids,
            item_ids=item_ids,
        )

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def __repr__(self) -> str:
        return f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz})"

    def binarize(self, threshold: float = 3.5) -> Interactions:
        """Keeps the entries whose value is above `threshold`, set to 1.0."""
        matrix = self.matrix.copy()
        matrix.data = (matrix.data > threshold).astype(np.float32)
        matrix.eliminate_zeros()
        return Interactions(matrix, self.user_ids, self.item_ids)

    def filter(
        self, min_user_interactions: int = 1, min_item_interactions: int = 0
    ) -> Interactions:
        """Drops users and items with fewer interactions than given, until both hold."""
        data = self
        while True:
            user_counts = np.diff(data.matrix.indptr)
            item_counts = np.bincount(data.matrix.indices, minlength=data.n_items)
            keep_users = user_counts >= min_user_interactions
            keep_items = item_counts >= min_item_interactions
            if keep_users.all() and keep_items.all():
                return data
            data = Interactions(
                data.matrix[keep_users][:, keep_items],
                data.user_ids[keep_users],
                data.item_ids[keep_items],
            )

    def select_users(self, rows) -> Interactions:
        """The interactions of the users at `rows` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        return Interactions(self.matrix[rows], self.user_ids[rows], self.item_ids)

    def with_item_ids(self, item_ids) -> Interactions:
        """The same interactions over another item vocabulary; items not in it are dropped."""
        item_ids = parse_ids(item_ids)
        coo = self.matrix.tocoo()
        cols = lookup(item_ids, self.item_ids)[coo.col]
        keep = cols >= 0
        matrix = sp.csr_matrix(
            (coo.data[keep], (coo.row[keep], cols[keep])),
            shape=(self.n_users, len(item_ids)),
            dtype=np.float32,
        )
        return Interactions(matrix, self.user_ids, item_ids)

    def item_index(self, raw_ids) -> np.ndarray:
        """Column indices of raw item ids; -1 for ids not in the vocabulary."""
        return lookup(self.item_ids, parse_ids(raw_ids))

    def user_index(self, raw_ids) -> np.ndarray:
        """Row indices of raw user ids; -1 for ids not in the vocabulary."""
        return lookup(self.user_ids, parse_ids(raw_ids))


def lookup(vocabulary: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in `vocabulary` (any order), -1 where absent; ids of the two kinds
    are compared as text."""
    values = np.asarray(values)
    if len(vocabulary) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    if vocabulary.dtype.kind != values.dtype.kind:
        vocabulary = as_strings(vocabulary)
        values = as_strings(values)
    order = np.argsort(vocabulary, kind="stable")
    sorted_vocab = vocabulary[order]
    position = np.searchsorted(sorted_vocab, values)
    position = np.clip(position, 0, len(sorted_vocab) - 1)
    found = sorted_vocab[position] == values
    return np.where(found, order[position], -1).astype(np.int64)
