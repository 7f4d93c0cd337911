"""Ranking and rating metrics as numpy functions, defined as in the papers the results cite.

Ranking metrics take each user's top items in rank order and the held-out items:

- `recall@k`: hits in the top k / |relevant| (LightGCN, BARS, RecBole).
- `truncated_recall@k`: hits / min(k, |relevant|) (Liang et al. 2018, RecVAE and EASE call it
  Recall@k).
- `ndcg@k`: binary gains, DCG = sum over ranks r = 1..k of hit_r / log2(r + 1), normalised by
  the DCG of min(k, |relevant|) hits at the top.
- `precision@k`: hits / k.
- `mrr@k`: 1 / rank of the first hit in the top k, 0 without a hit.
- `hit_rate@k`: 1 when the top k hold a hit, else 0 (the share of users with a hit).
- `map@k`: average precision, the sum over ranks i <= k of precision@i x hit_i, divided by
  min(k, |relevant|).

They are averaged over the users whose target is non-empty. |relevant| may include held-out
items outside the item vocabulary (`target_counts`): they count in the denominators but can
never be hit.

Beyond accuracy, over the top-k lists of the same users:

- `coverage@k`: distinct items in any list / catalogue size.
- `gini@k`: Gini index of how often each catalogue item is recommended, every item counted
  (zeros too): with the counts c_1 <= ... <= c_n, sum_i (2i - n - 1) c_i / (n sum_i c_i).
  0 when every item is recommended equally often, towards 1 when a few items take every slot.
- `novelty@k`: the mean over a user's recommended items of -log2(training users of the item /
  training users), averaged over the users (an item no training user has counts as one user).
- `popularity@k`: the mean over a user's recommended items of their number of training users
  (each user-item pair counted once), averaged over the users.

`coverage` and `gini` describe all the lists together and have no per-user value; `novelty`
and `popularity` need the training interactions (`train`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

ACCURACY_METRICS = ("recall", "truncated_recall", "ndcg", "precision", "mrr", "hit_rate", "map")
# Computed from the lists alone; they have no per-user value.
LIST_METRICS = ("coverage", "gini")
# Need the training interactions: how many training users each item has.
POPULARITY_METRICS = ("novelty", "popularity")
RANKING_METRICS = ACCURACY_METRICS + LIST_METRICS + POPULARITY_METRICS
PER_USER_METRICS = ACCURACY_METRICS + POPULARITY_METRICS
RATING_METRICS = ("rmse", "mae")


def parse_metric_names(names: str | Iterable[str]) -> list[tuple[str, int]]:
    """Splits ranking metric names such as `"ndcg@100"` into `(name, k)` pairs.

    Duplicates are dropped; the order of first appearance is kept.

    Args:
        names: str or iterable of str. Metric names of the form `<metric>@<k>`, where
            `<metric>` is one of `RANKING_METRICS` (`recall`, `ndcg`, `mrr`, `coverage`,
            ...) and `k` is a positive integer.

    Returns:
        A list of `(name, k)` tuples.

    Raises:
        ValueError: for a name that is not a ranking metric at a positive cutoff.
    """
    if isinstance(names, str):
        names = [names]
    expected = (
        f"Expected `<metric>@<k>` with <metric> one of {', '.join(RANKING_METRICS)} and k a "
        "positive integer, e.g. 'ndcg@100'."
    )
    parsed = []
    for full_name in names:
        if not isinstance(full_name, str):
            raise ValueError(f"Metric names should be strings. Received: {full_name!r}")
        name, at, k = full_name.strip().lower().partition("@")
        if name in RATING_METRICS:
            raise ValueError(
                f"'{full_name}' is a rating metric, not a ranking metric: use "
                f"`rating_metrics` for it. {expected}"
            )
        if name not in RANKING_METRICS:
            raise ValueError(f"Unknown metric '{full_name}'. {expected}")
        if not at or not k.isdigit() or int(k) < 1:
            raise ValueError(f"Metric '{full_name}' has no valid cutoff k. {expected}")
        pair = (name, int(k))
        if pair not in parsed:
            parsed.append(pair)
    if not parsed:
        raise ValueError(f"No metric names were given. {expected}")
    return parsed


def ranking_metrics(
    top_items: np.ndarray,
    targets: sp.spmatrix,
    ks: Sequence[int] = (20,),
    names: Sequence[str] = ("recall", "truncated_recall", "ndcg", "precision"),
    target_counts: np.ndarray | None = None,
    per_user: bool = False,
    train: sp.spmatrix | None = None,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Ranking metrics of top-k lists against held-out items.

    Args:
        top_items: int array of shape `[n_users, K]`. Each user's recommended item indices,
            best first. Entries of -1 mark empty slots (fewer items left than K) and are
            never hits. K should be at least the largest k.
        targets: scipy sparse matrix of shape `[n_users, n_items]`. The held-out items: every
            stored entry is relevant, whatever its value. Its width is the catalogue size
            of `coverage` and `gini`.
        ks: sequence of int. The cutoffs. Defaults to `(20,)`.
        names: sequence of str. Metrics among `RANKING_METRICS`. Defaults to `recall`,
            `truncated_recall`, `ndcg` and `precision`.
        target_counts: int array of shape `[n_users]` | None. |relevant| per user, at least
            the row's number of stored entries (more when held-out items fall outside the
            vocabulary, see `EvalSet.target_counts`). None counts the stored entries.
        per_user: bool. Return each user's values instead of the averages; `coverage` and
            `gini` have none and are not allowed then. Defaults to False.
        train: scipy sparse matrix of shape `[n_train_users, n_items]` | None. The training
            interactions, needed by `novelty` and `popularity` only. Defaults to None.

    Returns:
        A dict keyed by `"<name>@<k>"` of averages over the users with |relevant| > 0, or,
        with `per_user=True`, of float arrays of shape `[n_users]` holding NaN for the users
        with an empty target.

    Raises:
        ValueError: for mismatched shapes, a k larger than K, an unknown metric name, a
            popularity metric without `train`, a list metric with `per_user`, or when no
            user has a non-empty target.
    """
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.dtype.kind not in "iu":
        raise ValueError(
            "`top_items` should be a 2D integer array of item indices. "
            f"Received: dtype={top_items.dtype}, shape={top_items.shape}"
        )
    targets = sp.csr_matrix(targets)
    n_users, n_items = targets.shape
    if top_items.shape[0] != n_users:
        raise ValueError(
            f"`top_items` should have one row per row of `targets` ({n_users}). "
            f"Received: {top_items.shape[0]} rows."
        )
    if top_items.size and (top_items.min() < -1 or top_items.max() >= n_items):
        raise ValueError(
            f"`top_items` should hold item indices in [0, {n_items}) or -1 for an empty "
            f"slot. Received values in [{top_items.min()}, {top_items.max()}]."
        )
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"`ks` should be positive integers. Received: ks={ks}")
    if ks[-1] > top_items.shape[1]:
        raise ValueError(
            f"`top_items` has {top_items.shape[1]} columns, fewer than k={ks[-1]}: rank at "
            "least max(ks) items per user (pad with -1 when there are fewer items)."
        )
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in RANKING_METRICS:
            raise ValueError(f"Unknown metric '{name}'. Expected one of {RANKING_METRICS}.")
        if per_user and name in LIST_METRICS:
            raise ValueError(
                f"'{name}' describes the lists of all users together and has no per-user "
                f"value. Per-user metrics: {PER_USER_METRICS}."
            )
    item_users = None
    if any(name in POPULARITY_METRICS for name in names):
        item_users, n_train_users = _item_users(train, n_items)
    row_nnz = np.diff(targets.indptr).astype(np.int64)
    if target_counts is None:
        counts = row_nnz
    else:
        counts = np.asarray(target_counts, dtype=np.int64)
        if counts.shape != (n_users,) or np.any(counts < row_nnz):
            raise ValueError(
                f"`target_counts` should hold, for each of the {n_users} users, at least the "
                f"number of stored targets. Received: shape {counts.shape}."
            )
    evaluated = counts > 0
    if not evaluated.any():
        raise ValueError("No user has a non-empty target: there is nothing to evaluate.")

    top_items = top_items[evaluated, : ks[-1]]
    hits = _hits(top_items, targets[evaluated])
    counts = counts[evaluated]
    ranks = np.arange(1, ks[-1] + 1)
    discounts = 1.0 / np.log2(ranks + 1.0)
    cumulative_hits = np.cumsum(hits, axis=1)
    cumulative_dcg = np.cumsum(hits * discounts, axis=1)
    ideal_dcg = np.concatenate([[0.0], np.cumsum(discounts)])
    # Precision at each hit's rank, summed up to each rank: average precision's numerator.
    cumulative_precision = np.cumsum(hits * cumulative_hits / ranks, axis=1)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, ks[-1] + 1)
    valid = top_items >= 0
    if item_users is not None:
        recommended = np.where(valid, top_items, 0)
        slot_users = item_users[recommended].astype(np.float64)
        slot_novelty = -np.log2(np.maximum(slot_users, 1.0) / n_train_users)
        cumulative_valid = np.cumsum(valid, axis=1)
        cumulative_users = np.cumsum(np.where(valid, slot_users, 0.0), axis=1)
        cumulative_novelty = np.cumsum(np.where(valid, slot_novelty, 0.0), axis=1)

    results = {}
    for k in ks:
        n_hits = cumulative_hits[:, k - 1].astype(np.float64)
        values = {
            "recall": lambda: n_hits / counts,
            "truncated_recall": lambda: n_hits / np.minimum(k, counts),
            "ndcg": lambda: cumulative_dcg[:, k - 1] / ideal_dcg[np.minimum(k, counts)],
            "precision": lambda: n_hits / k,
            "mrr": lambda: np.where(first_hit <= k, 1.0 / first_hit, 0.0),
            "hit_rate": lambda: (n_hits > 0).astype(np.float64),
            "map": lambda: cumulative_precision[:, k - 1] / np.minimum(k, counts),
            "novelty": lambda: _mean_over_slots(cumulative_novelty, cumulative_valid, k),
            "popularity": lambda: _mean_over_slots(cumulative_users, cumulative_valid, k),
            "coverage": lambda: _coverage(top_items[:, :k], n_items),
            "gini": lambda: _gini(top_items[:, :k], n_items),
        }
        for name in names:
            value = values[name]()
            if name in LIST_METRICS:
                results[f"{name}@{k}"] = value
            elif per_user:
                column = np.full(n_users, np.nan)
                column[evaluated] = value
                results[f"{name}@{k}"] = column
            else:
                # A user with no item at all in the top k has no novelty or popularity.
                results[f"{name}@{k}"] = float(np.nanmean(value)) if len(value) else np.nan
    return results


def _item_users(train, n_items: int) -> tuple[np.ndarray, int]:
    """Each item's number of training users, and the number of training users."""
    if train is None:
        raise ValueError(
            f"{', '.join(POPULARITY_METRICS)} need the training interactions: pass `train`, "
            "the users x items matrix the model was trained on."
        )
    train = sp.csr_matrix(train)
    if train.shape[1] != n_items:
        raise ValueError(
            f"`train` should have one column per item ({n_items}). Received: {train.shape}"
        )
    train = train.copy()
    train.sum_duplicates()
    train.eliminate_zeros()
    n_train_users = int(np.count_nonzero(np.diff(train.indptr)))
    if n_train_users == 0:
        raise ValueError("`train` holds no interaction: novelty and popularity are undefined.")
    return np.bincount(train.indices, minlength=n_items), n_train_users


def _mean_over_slots(cumulative_sums: np.ndarray, cumulative_valid: np.ndarray, k: int):
    """Per user, the mean over the filled slots of the top k; NaN for a user with none."""
    filled = cumulative_valid[:, k - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(filled > 0, cumulative_sums[:, k - 1] / filled, np.nan)


def _recommendation_counts(top_items: np.ndarray, n_items: int) -> np.ndarray:
    items = top_items[top_items >= 0]
    return np.bincount(items, minlength=n_items)


def _coverage(top_items: np.ndarray, n_items: int) -> float:
    return float(np.count_nonzero(_recommendation_counts(top_items, n_items)) / n_items)


def _gini(top_items: np.ndarray, n_items: int) -> float:
    counts = np.sort(_recommendation_counts(top_items, n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    positions = np.arange(1, n_items + 1)
    return float(np.sum((2 * positions - n_items - 1) * counts) / (n_items * total))


def rating_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Root mean squared error and mean absolute error of rating predictions.

    Args:
        predicted: float array. Predicted ratings.
        true: float array of the same shape. True ratings.

    Returns:
        `{"rmse": ..., "mae": ...}`.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if predicted.shape != true.shape:
        raise ValueError(
            "`predicted` and `true` should have the same shape. "
            f"Received: {predicted.shape} and {true.shape}"
        )
    if predicted.size == 0:
        raise ValueError("There are no ratings to evaluate: `predicted` and `true` are empty.")
    errors = predicted - true
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
    }


def _hits(top_items: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    """A boolean array, True where `top_items[u, r]` is a stored entry of `targets` row u."""
    n_users, n_items = targets.shape
    # Encode (user, item) pairs as single int64 keys so one sorted search tests them all.
    target_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(targets.indptr))
    target_keys = np.sort(target_rows * n_items + targets.indices.astype(np.int64))
    items = top_items.astype(np.int64)
    valid = items >= 0
    if len(target_keys) == 0:
        return np.zeros(items.shape, dtype=bool)
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, items, 0)
    positions = np.minimum(np.searchsorted(target_keys, keys), len(target_keys) - 1)
    return valid & (target_keys[positions] == keys)
