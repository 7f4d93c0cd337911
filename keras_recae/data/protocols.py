"""The evaluation protocols: `given`, `strong`, `random`, `temporal` and `leave-last-out`.

Each takes frames with `user`, `item` and (optionally) `rating` and `timestamp` columns, as
the readers return them, and returns a `Split`. `strong`, `temporal` and `leave-last-out` also
split a streamed file's lines, arrays of positions in its sorted vocabularies
(`split_strong_lines`, `split_temporal_lines`, `split_leave_last_out_lines`); their frame
functions convert the frame to those and call them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp

from keras_recae.data.ids import parse_ids
from keras_recae.data.interactions import Interactions
from keras_recae.data.split import EvalSet, Split
from keras_recae.data.streaming import TimedLines, vocabulary

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
    item_ids=None,
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
        item_ids: array | None. The items to use instead of the frames' union, holding
            every item of both (a worker's shard of the users is split over the items of
            all: `keras_recae.data.shards`). Defaults to None.

    Returns:
        A `Split` with protocol `given`.

    Example:

    ```python
    from keras_recae.data.protocols import split_given
    from keras_recae.data.readers import read_given

    split = split_given(*read_given("gowalla"))
    ```
    """
    full, test_matrix = _given_matrices(train, test, binarize_threshold, item_ids)
    return split_given_interactions(full, test_matrix, validation_fraction, seed)


def split_given_interactions(
    full: Interactions, test_matrix: sp.csr_matrix, validation_fraction: float, seed: int
) -> Split:
    """`split_given` of matrices already built: the full train part and the test matrix.

    Args:
        full: Interactions. Every train pair, over the users and items of both files.
        test_matrix: scipy sparse matrix. The test pairs, the same rows and columns.
        validation_fraction, seed: as in `split_given`.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` should be in [0, 1). Received: "
            f"validation_fraction={validation_fraction}"
        )
    test_matrix = sp.csr_matrix(test_matrix)
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
    item_ids=None,
) -> Interactions:
    """All the train pairs of a `given` split, over the users and items `split_given` uses.

    Args:
        train: DataFrame. The train pairs.
        test: DataFrame. The test pairs (they define part of the vocabularies).
        binarize_threshold: float | None. As in `split_given`.
        item_ids: array | None. As in `split_given`.

    Returns:
        `Interactions` with the same `user_ids` and `item_ids` as `split_given(...).train`.
    """
    full, _ = _given_matrices(train, test, binarize_threshold, item_ids)
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
    ratings = None
    if threshold is not None:
        if "rating" not in frame:
            raise ValueError("`frame` has no `rating` column: pass `threshold=None`.")
        ratings = frame["rating"].to_numpy()
    user_ids, users = _ids_and_positions(frame["user"])
    item_ids, items = _ids_and_positions(frame["item"])
    return split_strong_lines(
        users,
        items,
        ratings,
        user_ids,
        item_ids,
        n_heldout_users=n_heldout_users,
        threshold=threshold,
        min_user_interactions=min_user_interactions,
        seed=seed,
        test_fraction=test_fraction,
    )


def split_strong_lines(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray | None,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    n_heldout_users: int,
    threshold: float | None = 3.5,
    min_user_interactions: int = 5,
    seed: int = 98765,
    test_fraction: float = 0.2,
) -> Split:
    """`split_strong` of the lines, in file order, as positions in sorted vocabularies.

    `users` and `items` are each line's positions in `user_ids` and `item_ids`, the sorted
    ids (what a streamed file gives: 4 bytes an id). Positions sort as their ids do, so
    the split is the one of the ids; besides the arrays it takes a few bytes a line and
    the matrices. `ratings` may be None when `threshold` is None.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` should be in (0, 1). Received: {test_fraction}")
    if threshold is not None:
        keep = ratings > threshold
        users, items = users[keep], items[keep]
        del keep
    counts = np.bincount(users, minlength=len(user_ids))
    kept_users = np.flatnonzero(counts >= min_user_interactions)
    n_users = len(kept_users)
    if not 0 < 2 * n_heldout_users < n_users:
        raise ValueError(
            f"`n_heldout_users` should be positive and leave train users: twice it must be "
            f"less than the {n_users} users kept. Received: n_heldout_users={n_heldout_users}"
        )
    permuted = kept_users[np.random.RandomState(seed).permutation(n_users)]
    n_train = n_users - 2 * n_heldout_users
    # Each user's part: 0 train, 1 validation, 2 test, -1 dropped (too few lines).
    part_of_user = np.full(len(user_ids), -1, dtype=np.int8)
    part_of_user[permuted[:n_train]] = 0
    part_of_user[permuted[n_train : n_users - n_heldout_users]] = 1
    part_of_user[permuted[n_users - n_heldout_users :]] = 2
    part = part_of_user[users]

    in_train = part == 0
    train_users = np.sort(permuted[:n_train])
    train_items = np.flatnonzero(np.bincount(items[in_train], minlength=len(item_ids)))
    matrix = _pattern(users[in_train], items[in_train], train_users, train_items)
    del in_train
    train = Interactions(matrix, user_ids[train_users], item_ids[train_items])
    known_item = np.zeros(len(item_ids), dtype=bool)
    known_item[train_items] = True
    evaluation = []
    for heldout in (1, 2):
        rows = (part == heldout) & known_item[items]
        fold_in = _fold_in(
            users[rows], items[rows], train_items, seed=seed, test_fraction=test_fraction
        )
        # Positions back to the ids they stand for.
        evaluation.append(dataclasses.replace(fold_in, user_ids=user_ids[fold_in.user_ids]))
    return Split(train, evaluation[0], evaluation[1], "strong")


def _pattern(rows: np.ndarray, columns: np.ndarray, row_ids, column_ids) -> sp.csr_matrix:
    """The 0/1 matrix of (row, column) pairs over the sorted positions `row_ids` and
    `column_ids` (each pair's row and column among them); a pair given twice is one."""
    row_index = np.full(int(row_ids.max(initial=-1)) + 1, -1, dtype=np.int32)
    row_index[row_ids] = np.arange(len(row_ids))
    column_index = np.full(int(column_ids.max(initial=-1)) + 1, -1, dtype=np.int32)
    column_index[column_ids] = np.arange(len(column_ids))
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (row_index[rows], column_index[columns])),
        shape=(len(row_ids), len(column_ids)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


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
    return split_random_interactions(
        Interactions.from_frame(frame),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def split_random_interactions(
    data: Interactions,
    *,
    test_fraction: float = 0.1,
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """`split_random` of the interactions a file gives (a pair given twice: its last line),
    such as a streamed file's (`streaming.given_interactions`): the same split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` should be in (0, 1). Received: {test_fraction}")
    if not 0 <= validation_fraction < 1 - test_fraction:
        raise ValueError(
            f"`validation_fraction` should be in [0, 1 - test_fraction). Received: "
            f"validation_fraction={validation_fraction}, test_fraction={test_fraction}"
        )
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


def split_temporal(
    frame: pd.DataFrame,
    *,
    cut: float | str = 0.8,
    validation_fraction: float = 0.1,
    threshold: float | None = None,
) -> tuple[Split, Interactions]:
    """The `temporal` protocol: one global time cut, as a deployed system meets its data.

    The interactions before the cut are the train part, those at or after it the test part.
    A test user is a user with interactions on both sides: their earlier items are the input
    (excluded from the ranking), their later items the targets. Users who appear only after
    the cut have no history to recommend from and are left out; a later item the train part
    never saw stays a target (it counts in the denominators) but can never be recommended. A
    target the user already had before the cut is dropped: input items are never
    recommended.

    Validation is carved the same way from the train part: its last `validation_fraction` of
    the interactions, by time, are the validation part, and what precedes them is
    `Split.train`, the data of model selection.

    Args:
        frame: DataFrame. Rows with `user`, `item`, `timestamp` and optionally `rating`.
        cut: float | str. A fraction in (0, 1): the train part is that share of the
            interactions, the earliest; or a date or time (`"2000-12-01"`, ISO 8601, UTC
            unless it names a zone), compared with the timestamps as seconds since 1970.
            Defaults to 0.8.
        validation_fraction: float. The share of the train part, its latest, held out for
            model selection, in [0, 1). 0 gives no validation part. Defaults to 0.1.
        threshold: float | None. If set, only rows rated above it are kept, with the value
            1.0 (implicit models). Defaults to None: ratings kept.

    Returns:
        `(split, full_train)`: the split (protocol `temporal`), and all the interactions
        before the cut over the same users and items (what a final fit uses).

    Raises:
        ValueError: for a frame without timestamps, a cut outside the data, or a fraction
            outside (0, 1).

    Example:

    ```python
    from keras_recae.data.protocols import split_temporal
    from keras_recae.data.readers import read_ratings

    split, full_train = split_temporal(read_ratings("ml-100k/u.data"), cut="1998-03-01")
    ```
    """
    return split_temporal_lines(
        _frame_lines(frame, "temporal"),
        cut=cut,
        validation_fraction=validation_fraction,
        threshold=threshold,
    )


def split_temporal_lines(
    lines: TimedLines,
    *,
    cut: float | str = 0.8,
    validation_fraction: float = 0.1,
    threshold: float | None = None,
) -> tuple[Split, Interactions]:
    """`split_temporal` of a log's lines as positions in its sorted vocabularies (what a
    streamed file gives, `streaming.timed_lines`): the same split, computed on arrays of a
    few bytes a line instead of frames of the ids."""
    users, items, ratings, times = _kept_lines(lines, threshold, "temporal")
    test_cut = _cut_time(times, cut, "cut")
    before = times < test_cut
    if not before.any() or before.all():
        raise ValueError(
            f"The cut {cut!r} leaves no interaction on one side: the timestamps run from "
            f"{_date(times.min())} to {_date(times.max())}."
        )
    validation_cut = None
    if validation_fraction:
        _check_fraction("validation_fraction", validation_fraction, allow_zero=True)
        validation_cut = _cut_time(times[before], 1.0 - validation_fraction, "validation cut")
    part = _TrainPart(lines, users, items, ratings, before)
    fit = full = part.interactions(before)
    validation = None
    if validation_cut is not None:
        later = times >= validation_cut
        fit = part.interactions(before & ~later)
        validation = part.later_targets(fit, before & later)
    test_set = part.later_targets(full, ~before)
    return Split(fit, validation, test_set, "temporal"), full


def split_leave_last_out(
    frame: pd.DataFrame,
    *,
    n: int = 1,
    validation: bool = True,
    threshold: float | None = None,
) -> tuple[Split, Interactions]:
    """The `leave-last-out` protocol: each user's last `n` interactions are the test targets.

    Each user's rows are ordered by timestamp (rows of one time keep their file order). A user
    with more than `n` rows has the last `n` as test targets and the rest as input; with
    `validation`, a user with more than `2 n` rows also has the `n` before those as
    validation targets, with the rows before them as input, and `Split.train` holds every
    row that is neither a test nor a validation target. Users with `n` rows or fewer only
    train. Items are those of the rows outside the test targets; a test target outside them
    counts in the denominators but can never be recommended.

    Args:
        frame: DataFrame. Rows with `user`, `item`, `timestamp` and optionally `rating`.
        n: int. Targets per user. Defaults to 1.
        validation: bool. Hold out the `n` before the test targets for model selection.
            Defaults to True.
        threshold: float | None. If set, only rows rated above it are kept, with the value
            1.0 (implicit models). Defaults to None: ratings kept.

    Returns:
        `(split, full_train)`: the split (protocol `leave-last-out`), and every row but the
        test targets over the same users and items (what a final fit uses).

    Example:

    ```python
    from keras_recae.data.protocols import split_leave_last_out
    from keras_recae.data.readers import read_ratings

    split, full_train = split_leave_last_out(read_ratings("ml-100k/u.data"), n=1)
    ```
    """
    return split_leave_last_out_lines(
        _frame_lines(frame, "leave-last-out"), n=n, validation=validation, threshold=threshold
    )


def split_leave_last_out_lines(
    lines: TimedLines,
    *,
    n: int = 1,
    validation: bool = True,
    threshold: float | None = None,
) -> tuple[Split, Interactions]:
    """`split_leave_last_out` of a log's lines as positions in its sorted vocabularies
    (`streaming.timed_lines`): the same split, on arrays of a few bytes a line."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` should be a positive integer. Received: n={n!r}")
    users, items, ratings, times = _kept_lines(lines, threshold, "leave-last-out")
    from_end, count = _places_from_end(users, times, len(lines.user_ids))
    is_test = (from_end < n) & (count > n)
    is_validation = (from_end >= n) & (from_end < 2 * n) & (count > 2 * n) & validation
    del from_end, count
    part = _TrainPart(lines, users, items, ratings, ~is_test)
    full = part.interactions(~is_test)
    fit = part.interactions(~is_test & ~is_validation)
    test_set = part.later_targets(full, is_test)
    validation_set = None
    if validation:
        if not is_validation.any():
            raise ValueError(
                f"No user has more than {2 * n} interactions: there is nothing to hold out "
                "for validation. Pass validation=False (--validation-fraction 0)."
            )
        validation_set = part.later_targets(fit, is_validation)
    return Split(fit, validation_set, test_set, "leave-last-out"), full


def _places_from_end(users: np.ndarray, times: np.ndarray, n_users: int) -> tuple:
    """Each line's place among its user's lines counted from the last by time (0: the
    last; lines of one time in file order), and its user's number of lines."""
    # Stable sorts: by time, then by user, so a user's lines of one time keep file order.
    order = np.argsort(times, kind="stable")
    order = order[np.argsort(users[order], kind="stable")]
    counts = np.bincount(users, minlength=n_users)
    ends = np.cumsum(counts)
    from_end = np.empty(len(users), dtype=np.int32)
    from_end[order] = ends[users[order]] - 1 - np.arange(len(users))
    return from_end, counts.astype(np.int32)[users]


def _frame_lines(frame: pd.DataFrame, protocol: str) -> TimedLines:
    """A frame's rows, in order, as the lines the time-based protocols split."""
    if "timestamp" not in frame:
        raise ValueError(_untimed(protocol))
    user_ids, users = _ids_and_positions(frame["user"])
    item_ids, items = _ids_and_positions(frame["item"])
    return TimedLines(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        ratings=frame["rating"].to_numpy(np.float32) if "rating" in frame else None,
        times=frame["timestamp"].to_numpy(np.int64),
        user_ids=user_ids,
        item_ids=item_ids,
    )


def _ids_and_positions(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A frame column's sorted ids (`parse_ids`) and each row's position among them."""
    ids, positions = np.unique(parse_ids(column.to_numpy()), return_inverse=True)
    return ids, positions.reshape(-1)


def _untimed(protocol: str) -> str:
    return (
        f"--protocol {protocol} orders interactions by time, and this data has no "
        "timestamps (a `timestamp` column, or the fourth field of MovieLens files)."
    )


def _kept_lines(lines: TimedLines, threshold: float | None, protocol: str) -> tuple:
    """The lines a time-based protocol splits: `(users, items, ratings, times)`, those rated
    above `threshold` when given (their ratings None: each is 1.0)."""
    if lines.times is None:
        raise ValueError(_untimed(protocol))
    users, items, ratings, times = lines.users, lines.items, lines.ratings, lines.times
    if threshold is not None:
        if ratings is None:
            raise ValueError("The data has no ratings to binarize.")
        keep = ratings > threshold
        users, items, ratings, times = users[keep], items[keep], None, times[keep]
    if len(users) == 0:
        raise ValueError(f"No interaction is left to split (threshold {threshold}).")
    return users, items, ratings, times


class _TrainPart:
    """The users and items of a time-based split's train lines, and the matrices and
    evaluation sets of chosen lines over them."""

    def __init__(self, lines: TimedLines, users, items, ratings, train: np.ndarray):
        user_positions = np.flatnonzero(np.bincount(users[train], minlength=len(lines.user_ids)))
        item_positions = np.flatnonzero(np.bincount(items[train], minlength=len(lines.item_ids)))
        self.user_ids = lines.user_ids[user_positions]
        self.item_ids = lines.item_ids[item_positions]
        # Each line's row and column over them (-1: a user or item outside the train lines).
        self.rows = _places(user_positions, len(lines.user_ids))[users]
        self.columns = _places(item_positions, len(lines.item_ids))[items]
        self.ratings = ratings

    def _last_of_each_pair(self, lines: np.ndarray) -> tuple:
        """`(rows, columns, values)` of the chosen lines (indices, in file order), a
        repeated pair keeping its last line."""
        rows, columns = self.rows[lines], self.columns[lines]
        key = rows.astype(np.int64) * len(self.item_ids) + columns
        _, last = np.unique(key[::-1], return_index=True)
        last = len(key) - 1 - last
        if self.ratings is None:
            return rows[last], columns[last], np.ones(len(last), np.float32)
        return rows[last], columns[last], self.ratings[lines[last]]

    def interactions(self, chosen: np.ndarray) -> Interactions:
        """The matrix of the chosen lines (a mask of train lines)."""
        rows, columns, values = self._last_of_each_pair(np.flatnonzero(chosen))
        matrix = sp.csr_matrix(
            (values, (rows, columns)), shape=(len(self.user_ids), len(self.item_ids))
        )
        return Interactions(matrix, self.user_ids, self.item_ids)

    def later_targets(self, history: Interactions, chosen: np.ndarray) -> EvalSet:
        """The users of `history` with chosen lines: their history as input, those lines
        as targets (items outside the train items counted in `extra_targets`, items already
        in the input dropped, a repeated pair keeping its last rating)."""
        lines = np.flatnonzero(chosen & (self.rows >= 0))
        unknown_item = self.columns[lines] < 0
        extra = np.bincount(self.rows[lines[unknown_item]], minlength=history.n_users)
        rows, columns, values = self._last_of_each_pair(lines[~unknown_item])
        inputs = history.matrix
        new = np.asarray(inputs[rows, columns]).ravel() == 0
        targets = sp.csr_matrix(
            (values[new], (rows[new], columns[new])), shape=inputs.shape, dtype=np.float32
        )
        evaluated = np.flatnonzero((np.diff(targets.indptr) + extra) > 0)
        return EvalSet(
            inputs[evaluated],
            targets[evaluated],
            history.user_ids[evaluated],
            extra[evaluated].astype(np.int64),
        )


def _places(positions: np.ndarray, size: int) -> np.ndarray:
    """The place of each of `size` vocabulary positions among sorted `positions`, -1 if
    absent."""
    places = np.full(size, -1, dtype=np.int32)
    places[positions] = np.arange(len(positions), dtype=np.int32)
    return places


def _check_fraction(name: str, value: float, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"`{name}` should be in {interval}. Received: {value}")


def _cut_time(times: np.ndarray, cut: float | str, name: str) -> int:
    """The first timestamp after the cut: a share of the interactions, or a date."""
    if isinstance(cut, str):
        try:
            cut = float(cut)
        except ValueError:
            return _parse_time(cut, name)
    _check_fraction(name, cut)
    # The share `cut` of the interactions, the earliest, falls before the cut.
    position = min(max(int(round(cut * len(times))), 1), len(times) - 1)
    return int(np.partition(times, position)[position])


def _parse_time(text: str, name: str) -> int:
    try:
        timestamp = pd.Timestamp(text)
    except ValueError:
        timestamp = None
    if timestamp is None or pd.isna(timestamp):
        raise ValueError(
            f"The {name} should be a fraction in (0, 1) or a date such as 2000-12-01. "
            f"Received: {text!r}"
        )
    if timestamp.tzinfo is None:
        timestamp = timestamp.tz_localize("UTC")
    return int(timestamp.timestamp())


def _date(seconds) -> str:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()


def _given_matrices(
    train: pd.DataFrame, test: pd.DataFrame, threshold: float | None, item_ids=None
) -> tuple[Interactions, sp.csr_matrix]:
    """The full train `Interactions` and the test matrix over the shared vocabularies."""
    train, test = _binarize(train, threshold, "train"), _binarize(test, threshold, "test")
    user_ids = _union_ids(train["user"], test["user"])
    if item_ids is None:
        item_ids = _union_ids(train["item"], test["item"])
    full = Interactions.from_frame(train, user_ids=user_ids, item_ids=item_ids)
    test_matrix = Interactions.from_frame(test, user_ids=user_ids, item_ids=item_ids).matrix
    return full, test_matrix


def _union_ids(*columns) -> np.ndarray:
    """The sorted union of id columns, int64 only if every id of all is an integer."""
    return vocabulary([parse_ids(np.asarray(column)) for column in columns])


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
