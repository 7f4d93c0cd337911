"""The three evaluation protocols: `given`, `strong` and `random`.

Each takes frames with `user`, `item` and (optionally) `rating` columns, as the readers
return them, and returns a `Split`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from keras_recae.data.ids import parse_ids
from keras_recae.data.interactions import Interactions
from keras_recae.data.split import EvalSet, Split

# vae_cf holds out targets only for users with at least this many rows, whatever the
# filtering threshold was.
_MIN_FOLD_IN_ROWS = 5


def split_given(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    binarize_threshold: float | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """The `given` protocol: train and test files are given (LightGCN splits, `u1.base`).

    Items are the sorted union of the train and test items, as LightGCN's evaluation scores
    every item id of either file; users are those of either frame. Each test user's input is
    the full train row, whose items are excluded from the ranking.

    For model selection, `validation_fraction` of the train items of each user with at least
    two are held out at random (at least one, never all): `Split.train` is the rest, and
    `Split.validation` asks for the held-out items given the rest. `given_full_train` returns
    all the train pairs, for a final fit.

    Args:
        train: DataFrame. The train pairs: `user`, `item` and optionally `rating`.
        test: DataFrame. The test pairs, same columns.
        binarize_threshold: float | None. If set, only pairs rated above it are kept, with
            the value 1.0. Defaults to None: ratings are kept as they are.
        validation_fraction: float. The share of each user's train items held out for
            validation, in [0, 1). 0 gives no validation set and the full train. Defaults to
            0.1.
        seed: int. Seed of the validation hold-out. Defaults to 0.

    Returns:
        A `Split` with protocol `given`.

    Example:

    ```python
    from keras_recae.data.protocols import split_given
    from keras_recae.data.readers import read_given

    split = split_given(*read_given("gowalla"))
    ```
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` should be in [0, 1). Received: "
            f"validation_fraction={validation_fraction}"
        )
    full, test_matrix = _given_matrices(train, test, binarize_threshold)
    test_rows = np.flatnonzero(np.diff(test_matrix.indptr))
    test_set = EvalSet(full.matrix[test_rows], test_matrix[test_rows], full.user_ids[test_rows])
    if validation_fraction == 0:
        return Split(full, None, test_set, "given")
    rng = np.random.default_rng(seed)
    kept, held = _hold_out_per_user(full.matrix, validation_fraction, rng)
    rows = np.flatnonzero(np.diff(held.indptr))
    validation = EvalSet(kept[rows], held[rows], full.user_ids[rows])
    return Split(Interactions(kept, full.user_ids, full.item_ids), validation, test_set, "given")


def given_full_train(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    binarize_threshold: float | None = None,
) -> Interactions:
    """All the train pairs of a `given` split, over the users and items `split_given` uses.

    Args:
        train: DataFrame. The train pairs.
        test: DataFrame. The test pairs (they define part of the vocabularies).
        binarize_threshold: float | None. As in `split_given`.

    Returns:
        `Interactions` with the same `user_ids` and `item_ids` as `split_given(...).train`.
    """
    full, _ = _given_matrices(train, test, binarize_threshold)
    return full


def split_strong(
    frame: pd.DataFrame,
    *,
    n_heldout_users: int,
    threshold: float | None = 3.5,
    min_user_interactions: int = 5,
    seed: int = 98765,
    test_fraction: float = 0.2,
) -> Split:
    """The `strong` protocol: held-out users with fold-in, exactly as Liang et al.'s vae_cf.

    Keeps the rows rated above `threshold` and the users with at least
    `min_user_interactions` of them, permutes the users (ascending ids) with
    `np.random.seed(seed); np.random.permutation`, and takes the last `n_heldout_users` as
    test users, the `n_heldout_users` before them as validation users and the rest as train
    users. Items are those of the train users' rows. Each held-out user with at least five
    rows over these items has `int(test_fraction * n)` of them (drawn with
    `np.random.choice` after reseeding, users in ascending id order, rows in file order) as
    targets and the rest as the fold-in input; users with fewer rows only have inputs.

    Args:
        frame: DataFrame. Rows with `user`, `item` and `rating` (unless `threshold` is None).
        n_heldout_users: int. The number of validation users, and of test users.
        threshold: float | None. Keep rows rated above it. Defaults to 3.5; None keeps all.
        min_user_interactions: int. Keep users with at least this many rows. Defaults to 5.
        seed: int. Seed of the permutation and of the target draws. Defaults to 98765.
        test_fraction: float. The share of a held-out user's rows used as targets. Defaults
            to 0.2.

    Returns:
        A `Split` with protocol `strong` and values 1.0. The evaluation sets hold every
        held-out user with a row over the train items, in ascending id order.

    Example:

    ```python
    from keras_recae.data.protocols import split_strong
    from keras_recae.data.readers import read_ratings

    split = split_strong(read_ratings("ml-20m"), n_heldout_users=10_000)
    ```

    References:
        - [Liang et al., 2018. Variational Autoencoders for Collaborative Filtering](
          https://arxiv.org/abs/1802.05814), preprocessing of github.com/dawenl/vae_cf.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` should be in (0, 1). Received: {test_fraction}")
    users = parse_ids(frame["user"].to_numpy())
    items = parse_ids(frame["item"].to_numpy())
    if threshold is not None:
        if "rating" not in frame:
            raise ValueError("`frame` has no `rating` column: pass `threshold=None`.")
        keep = frame["rating"].to_numpy() > threshold
        users, items = users[keep], items[keep]
    unique_users, counts = np.unique(users, return_counts=True)
    kept_users = unique_users[counts >= min_user_interactions]
    keep = np.isin(users, kept_users)
    users, items = users[keep], items[keep]

    n_users = len(kept_users)
    if not 0 < 2 * n_heldout_users < n_users:
        raise ValueError(
            f"`n_heldout_users` should be positive and leave train users: twice it must be "
            f"less than the {n_users} users kept. Received: n_heldout_users={n_heldout_users}"
        )
    permuted = kept_users[np.random.RandomState(seed).permutation(n_users)]
    train_users = permuted[: n_users - 2 * n_heldout_users]
    validation_users = permuted[n_users - 2 * n_heldout_users : n_users - n_heldout_users]
    test_users = permuted[n_users - n_heldout_users :]

    in_train = np.isin(users, train_users)
    item_ids = np.unique(items[in_train])
    train = Interactions.from_pairs(users[in_train], items[in_train], item_ids=item_ids)
    known_item = np.isin(items, item_ids)
    evaluation = []
    for heldout in (validation_users, test_users):
        rows = np.isin(users, heldout) & known_item
        evaluation.append(
            _fold_in(users[rows], items[rows], item_ids, seed=seed, test_fraction=test_fraction)
        )
    return Split(train, evaluation[0], evaluation[1], "strong")


def split_random(
    frame: pd.DataFrame,
    *,
    test_fraction: float = 0.1,
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """The `random` protocol: a per-rating random hold-out, for explicit ratings.

    The (user, item) pairs (a repeated pair keeps its last rating) are permuted with
    `np.random.default_rng(seed)`: the first `test_fraction` of them are test ratings, the
    next `validation_fraction` validation ratings, the rest train ratings. Users and items
    are all those of `frame`, so no held-out rating is dropped; a model predicts an item or
    user without train ratings from its fallback. A test user's input is every rating of
    theirs outside the test part; a validation user's input is their train ratings.

    Args:
        frame: DataFrame. Rows with `user`, `item` and `rating`.
        test_fraction: float. The share of ratings held out for test, in (0, 1). Defaults to
            0.1.
        validation_fraction: float. The share of all ratings held out for validation, in
            [0, 1 - test_fraction). Defaults to 0: no validation set.
        seed: int. Seed of the permutation. Defaults to 0.

    Returns:
        A `Split` with protocol `random`; the evaluation targets hold the ratings.

    Example:

    ```python
    from keras_recae.data.protocols import split_random
    from keras_recae.data.readers import read_ratings

    split = split_random(read_ratings("ml-1m"), test_fraction=0.1)
    ```
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` should be in (0, 1). Received: {test_fraction}")
    if not 0 <= validation_fraction < 1 - test_fraction:
        raise ValueError(
            f"`validation_fraction` should be in [0, 1 - test_fraction). Received: "
            f"validation_fraction={validation_fraction}, test_fraction={test_fraction}"
        )
    data = Interactions.from_frame(frame)
    coo = data.matrix.tocoo()
    order = np.random.default_rng(seed).permutation(data.nnz)
    n_test = int(round(test_fraction * data.nnz))
    n_validation = int(round(validation_fraction * data.nnz))
    part = np.zeros(data.nnz, dtype=np.int8)
    part[order[:n_test]] = 1
    part[order[n_test : n_test + n_validation]] = 2

    def matrix(mask):
        return sp.csr_matrix(
            (coo.data[mask], (coo.row[mask], coo.col[mask])), shape=data.matrix.shape
        )

    train = matrix(part == 0)
    test_targets = matrix(part == 1)
    rows = np.flatnonzero(np.diff(test_targets.indptr))
    test_set = EvalSet(matrix(part != 1)[rows], test_targets[rows], data.user_ids[rows])
    validation = None
    if n_validation:
        validation_targets = matrix(part == 2)
        rows = np.flatnonzero(np.diff(validation_targets.indptr))
        validation = EvalSet(train[rows], validation_targets[rows], data.user_ids[rows])
    return Split(Interactions(train, data.user_ids, data.item_ids), validation, test_set, "random")


def _given_matrices(
    train: pd.DataFrame, test: pd.DataFrame, threshold: float | None
) -> tuple[Interactions, sp.csr_matrix]:
    """The full train `Interactions` and the test matrix over the shared vocabularies."""
    train, test = _binarize(train, threshold, "train"), _binarize(test, threshold, "test")
    user_ids = _union_ids(train["user"], test["user"])
    item_ids = _union_ids(train["item"], test["item"])
    full = Interactions.from_frame(train, user_ids=user_ids, item_ids=item_ids)
    test_matrix = Interactions.from_frame(test, user_ids=user_ids, item_ids=item_ids).matrix
    return full, test_matrix


def _union_ids(first: pd.Series, second: pd.Series) -> np.ndarray:
    """The sorted union of two id columns, int64 only if every id of both is an integer."""
    first = np.unique(parse_ids(first.to_numpy()))
    second = np.unique(parse_ids(second.to_numpy()))
    if first.dtype.kind != second.dtype.kind:
        # An integer id of one frame and its string form in the other are the same id.
        first, second = first.astype(str).astype(object), second.astype(str).astype(object)
    return np.union1d(first, second)


def _binarize(frame: pd.DataFrame, threshold: float | None, name: str) -> pd.DataFrame:
    if threshold is None:
        return frame
    if "rating" not in frame:
        raise ValueError(f"The {name} frame has no `rating` column to binarize.")
    kept = frame.loc[frame["rating"] > threshold, ["user", "item"]]
    return kept.assign(rating=np.float32(1.0))


def _hold_out_per_user(
    matrix: sp.csr_matrix, fraction: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Splits each row of at least two entries: `fraction` of it (at least one, not all) held."""
    counts = np.diff(matrix.indptr)
    # The small epsilon keeps e.g. 0.29 * 100 from flooring to 28.
    n_held = np.clip(np.floor(fraction * counts + 1e-9), 1, np.maximum(counts - 1, 1))
    n_held = np.where(counts >= 2, n_held, 0).astype(np.int64)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((rng.random(matrix.nnz), rows))
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    held = rank < n_held[rows]
    coo = matrix.tocoo()

    def part(mask):
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape)

    return part(~held), part(held)


def _fold_in(
    users: np.ndarray, items: np.ndarray, item_ids: np.ndarray, *, seed: int, test_fraction: float
) -> EvalSet:
    """vae_cf's `split_train_test_proportion`: per user, a random share of rows as targets."""
    random_state = np.random.RandomState(seed)
    # A stable sort keeps file order within a user, as pandas' groupby does.
    order = np.argsort(users, kind="stable")
    user_ids, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
    is_target = np.zeros(len(users), dtype=bool)
    for start, count in zip(starts, counts):
        if count >= _MIN_FOLD_IN_ROWS:
            picked = random_state.choice(count, size=int(test_fraction * count), replace=False)
            is_target[order[start + picked]] = True
    inputs = Interactions.from_pairs(
        users[~is_target], items[~is_target], user_ids=user_ids, item_ids=item_ids
    )
    targets = Interactions.from_pairs(
        users[is_target], items[is_target], user_ids=user_ids, item_ids=item_ids
    )
    return EvalSet(inputs.matrix, targets.matrix, user_ids)
