"""The parts of a protocol split: the training matrix and the evaluation sets."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import scipy.sparse as sp

from keras_recae.data.interactions import Interactions


@dataclasses.dataclass
class EvalSet:
    """Users to evaluate: what the model is given and what it should find.

    Both matrices share the item columns of the training `Interactions`.

    Args:
        inputs: csr_matrix. Each user's history: the model's input, and the
            items excluded from the ranking.
        targets: csr_matrix. The held-out items (ratings for explicit data).
        user_ids: np.ndarray. The raw id of each row.
        extra_targets: np.ndarray | None. Per user, the number of held-out
            items outside the item vocabulary: they count in the denominators
            of recall and NDCG but can never be hit. None means zero.
    """

    inputs: sp.csr_matrix
    targets: sp.csr_matrix
    user_ids: np.ndarray
    extra_targets: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return self.inputs.shape[0]

    def digest(self) -> str:
        """A SHA-256 of the users, their inputs and their targets: equal digests, equal
        evaluation sets (the values of the entries aside)."""
        hasher = hashlib.sha256()
        hasher.update("\x1f".join(str(user) for user in self.user_ids).encode("utf-8"))
        for matrix in (self.inputs, self.targets):
            matrix = sp.csr_matrix(matrix).sorted_indices()
            hasher.update(np.asarray(matrix.shape, np.int64).tobytes())
            hasher.update(matrix.indptr.astype(np.int64).tobytes())
            hasher.update(matrix.indices.astype(np.int64).tobytes())
        hasher.update(np.asarray(self.target_counts(), np.int64).tobytes())
        return hasher.hexdigest()

    def target_counts(self) -> np.ndarray:
        """Number of relevant items per user, including those outside the vocabulary."""
        counts = np.diff(self.targets.indptr).astype(np.int64)
        if self.extra_targets is not None:
            counts = counts + self.extra_targets
        return counts


@dataclasses.dataclass
class Split:
    """A protocol's split of a data set.

    Args:
        train: Interactions. What the model is fitted on.
        validation: EvalSet | None. Users for model selection.
        test: EvalSet | None. Users for the reported figures.
        protocol: str. `given`, `strong` or `random`.
    """

    train: Interactions
    validation: EvalSet | None
    test: EvalSet | None
    protocol: str

    @property
    def item_ids(self) -> np.ndarray:
        return self.train.item_ids


def align_eval_set(eval_set: EvalSet, item_ids, model_item_ids) -> EvalSet:
    """The same users over a model's item columns.

    Input items the model does not know are dropped; target items it does not know are
    counted in `extra_targets`, since they stay relevant but can never be recommended.

    Args:
        eval_set: EvalSet. Over the columns `item_ids`.
        item_ids: array-like. The raw id of each column of `eval_set`.
        model_item_ids: array-like. The raw id of each column of the model.
    """
    item_ids = np.asarray(item_ids)
    model_item_ids = np.asarray(model_item_ids)
    if len(item_ids) == len(model_item_ids) and np.array_equal(item_ids, model_item_ids):
        return eval_set
    reference = Interactions(sp.csr_matrix((0, len(model_item_ids))), [], model_item_ids)
    columns = reference.item_index(item_ids)

    def remap(matrix):
        coo = sp.coo_matrix(matrix)
        new_columns = columns[coo.col]
        keep = new_columns >= 0
        remapped = sp.csr_matrix(
            (coo.data[keep], (coo.row[keep], new_columns[keep])),
            shape=(matrix.shape[0], len(model_item_ids)),
            dtype=np.float32,
        )
        return remapped, np.bincount(coo.row[~keep], minlength=matrix.shape[0])

    inputs, _ = remap(eval_set.inputs)
    targets, lost = remap(eval_set.targets)
    extra = lost if eval_set.extra_targets is None else eval_set.extra_targets + lost
    return EvalSet(inputs, targets, eval_set.user_ids, extra.astype(np.int64))
