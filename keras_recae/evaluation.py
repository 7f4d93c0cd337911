"""Full-ranking evaluation: users scored in batches, input items excluded, top-k kept."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.checks import check_positive_int
from keras_recae.data.interactions import Interactions
from keras_recae.data.pipeline import sparse_batches
from keras_recae.data.split import EvalSet
from keras_recae.metrics import (
    LIST_METRICS,
    POPULARITY_METRICS,
    parse_metric_names,
    ranking_metrics,
    rating_metrics,
)
from keras_recae.models.recommender import Recommender

DEFAULT_METRICS = (
    "recall@20",
    "ndcg@20",
    "ndcg@100",
    "truncated_recall@20",
    "truncated_recall@50",
)


def top_k_items(
    model: Recommender,
    inputs: sp.spmatrix,
    k: int,
    batch_size: int = 500,
    exclude_inputs: bool = True,
    user_indices: np.ndarray | None = None,
) -> np.ndarray:
    """Each user's k best-scored items, scored in batches.

    The model is called as `model(x, training=False)` on `tf.SparseTensor` batches of the
    users' histories, or as `model.score_users(x, rows)` when `user_indices` is given, and
    should return dense scores of shape `[batch, n_items]`, higher being better. Only the
    top-k indices of each batch leave the graph: the full users x items score matrix never
    exists.

    Args:
        model: Recommender. The scorer.
        inputs: scipy sparse matrix of shape `[n_users, n_items]`. The users' histories.
        k: int. Number of items per user.
        batch_size: int. Users scored at once. Defaults to 500.
        exclude_inputs: bool. Never rank a user's own input items. Defaults to True.
        user_indices: optional int array of shape `[n_users]`. Each user's row among the
            model's training users (-1 for a user it never saw), for models conditioned on
            the user such as CDAE. Defaults to None: the model sees only the histories.

    Returns:
        An int64 array of shape `[n_users, k]` of item indices, best first. Slots with no
        item left (k larger than the number of items not excluded) hold -1, as do items
        scored -inf by the model.
    """
    check_positive_int("k", k)
    check_positive_int("batch_size", batch_size)
    n_users, n_items = inputs.shape
    if n_users == 0:
        return np.zeros((0, k), dtype=np.int64)
    ranked = min(int(k), n_items)
    by_user = user_indices is not None
    if by_user and len(user_indices) != n_users:
        raise ValueError(
            f"`user_indices` should hold one row per user of `inputs` ({n_users}). "
            f"Received: {len(user_indices)}"
        )
    top_indices = _top_indices_function(model, batch_size, n_items, ranked, exclude_inputs, by_user)
    batches = []
    for number, x in enumerate(sparse_batches(inputs, batch_size, prefetch=False)):
        if not by_user:
            batches.append(top_indices(x).numpy())
            continue
        rows = _batch_rows(user_indices, number, batch_size)
        batches.append(top_indices(x, rows).numpy())
    top = np.concatenate(batches, axis=0)[:n_users]
    if ranked < k:
        top = np.pad(top, ((0, 0), (0, k - ranked)), constant_values=-1)
    return top


# Per model, the compiled top-k functions by (batch_size, n_items, k, exclude_inputs), so that
# evaluating after every epoch traces once and not at each call. The graphs read the model's
# variables, so they see weight updates; scoring must not hang on Python state (STYLE.md 8).
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _batch_rows(user_indices, number: int, batch_size: int) -> tf.Tensor:
    """The user rows of batch `number`, the padded tail of the last batch unknown (-1)."""
    rows = np.asarray(user_indices[number * batch_size : (number + 1) * batch_size])
    rows = np.pad(rows, (0, batch_size - len(rows)), constant_values=-1)
    return tf.constant(rows, tf.int64)


def _top_indices_function(model, batch_size, n_items, k, exclude_inputs, by_user=False):
    key = (batch_size, n_items, k, exclude_inputs, by_user)
    functions = _FUNCTIONS.setdefault(model, {})
    if key in functions:
        return functions[key]
    # A weak reference: the cached function must not keep its model (the cache key) alive.
    model_ref = weakref.ref(model)

    # Traced once: every batch, the padded last one included, has the same static shape.
    @tf.function(reduce_retracing=True, autograph=False)
    def top_indices(x, user_indices=None):
        if user_indices is None:
            scores = model_ref()(x, training=False)
        else:
            scores = model_ref().score_users(x, user_indices)
        scores = tf.cast(scores, tf.float32)
        if scores.shape.rank != 2 or scores.shape[1] not in (None, n_items):
            raise ValueError(
                f"The model should return scores of shape [batch, {n_items}] for a "
                f"SparseTensor input of shape {x.shape}. Received: {scores.shape}"
            )
        if exclude_inputs:
            masked = tf.fill(tf.shape(x.values), tf.constant(-np.inf, tf.float32))
            scores = tf.tensor_scatter_nd_update(scores, x.indices, masked)
        values, indices = tf.math.top_k(scores, k=k)
        return tf.where(values > -np.inf, tf.cast(indices, tf.int64), tf.constant(-1, tf.int64))

    functions[key] = top_indices
    return top_indices


@dataclasses.dataclass(frozen=True)
class RankingResults:
    """The ranking metrics of one evaluation: averages, and each evaluated user's values.

    Attributes:
        metrics: dict. Each metric name, in the order asked, to its average over the
            evaluated users (`coverage` and `gini` over all their lists).
        users: pandas DataFrame. One row per evaluated user (non-empty target), in the
            evaluation set's order: `user_id`, then a column per metric that has a per-user
            value (all but `coverage` and `gini`).
    """

    metrics: dict
    users: pd.DataFrame


def evaluate_ranking(
    model: Recommender | Callable,
    eval_set: EvalSet,
    metrics: Iterable[str] = DEFAULT_METRICS,
    batch_size: int = 500,
    train: sp.spmatrix | None = None,
) -> dict[str, float]:
    """Full-ranking metrics of a model on an evaluation set.

    Each user's input items are given to the model and excluded from its ranking; a model
    conditioned on its training users (`model.user_conditioned`, such as CDAE) also gets
    each user's row in its `user_ids`, -1 for a user it never saw. The
    metrics (see `keras_recae.metrics`) are averaged over the users with a non-empty target,
    held-out items outside the vocabulary (`eval_set.extra_targets`) included in their
    denominators. Users with an empty target are not scored.

    Args:
        model: Recommender, or any callable scorer. Called as `model(x, training=False)`
            on `tf.SparseTensor` batches, returning dense scores `[batch, n_items]`.
        eval_set: EvalSet. The users, their inputs and their targets.
        metrics: iterable of str. Names such as `"ndcg@100"` or `"coverage@20"`. Defaults
            to recall@20, ndcg@20, ndcg@100, truncated_recall@20 and truncated_recall@50.
        batch_size: int. Users scored at once. Defaults to 500.
        train: scipy sparse matrix of shape `[n_train_users, n_items]` | None. The training
            interactions, needed by `novelty@k` and `popularity@k`. Defaults to None.

    Returns:
        A dict from each metric name, in the order given, to its average.

    Example:

    ```python
    from keras_recae.evaluation import evaluate_ranking

    results = evaluate_ranking(model, split.test, metrics=["recall@20", "ndcg@100"])
    ```
    """
    return evaluate_ranking_users(model, eval_set, metrics, batch_size, train).metrics


def evaluate_ranking_users(
    model: Recommender | Callable,
    eval_set: EvalSet,
    metrics: Iterable[str] = DEFAULT_METRICS,
    batch_size: int = 500,
    train: sp.spmatrix | None = None,
) -> RankingResults:
    """`evaluate_ranking` with each evaluated user's values as well.

    The arguments are those of `evaluate_ranking`. The per-user values are what paired
    comparisons of two models need (`keras-recae compare`): the same users, matched by id.

    Returns:
        A `RankingResults`: `metrics`, the averages, and `users`, a DataFrame of `user_id`
        and the per-user values.

    Example:

    ```python
    from keras_recae.evaluation import evaluate_ranking_users

    results = evaluate_ranking_users(model, split.test, metrics=["ndcg@20", "mrr@20"])
    results.users.sort_values("ndcg@20").head()
    ```
    """
    metrics = list(metrics)
    users = evaluated_users(eval_set)
    inputs = sp.csr_matrix(eval_set.inputs)[users]
    max_k = max(k for _, k in parse_metric_names(metrics))
    user_indices = training_user_rows(model, np.asarray(eval_set.user_ids)[users])
    top = top_k_items(model, inputs, max_k, batch_size=batch_size, user_indices=user_indices)
    return results_of_lists(top, eval_set, users, metrics, train)


def combined_ranking(
    model: Recommender,
    eval_set: EvalSet,
    metrics: Iterable[str],
    combine: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 500,
) -> dict[str, float]:
    """`evaluate_ranking` over users held apart: each worker of a run scores its own.

    Each worker ranks the users of its `eval_set` (its shard of the users, `--shard-users`)
    and `combine` sums each metric's total and count of users over the workers (a
    collective, `keras_recae.distribute.sum_over_workers`): the averages are those of one
    evaluation of every worker's users. The metrics are per-user ones: `coverage` and
    `gini` (over all lists) and `novelty` and `popularity` (over the training
    interactions of all workers) are refused.

    Args:
        model: Recommender. The scorer.
        eval_set: EvalSet. This worker's users; it may have no user with a target.
        metrics: iterable of str. Per-user metric names such as `"ndcg@20"`.
        combine: callable. Sums an array over the workers.
        batch_size: int. Users scored at once. Defaults to 500.

    Returns:
        A dict from each metric name, in the order given, to its average over the users
        with a non-empty target of every worker.
    """
    # The names as the averages are keyed (`NDCG@20` is `ndcg@20`).
    metrics = [f"{name}@{k}" for name, k in parse_metric_names(list(metrics))]
    refused = [name for name in metrics if not_per_user(name)]
    if refused:
        raise ValueError(
            f"{refused[0]} is not an average of per-user values (or needs the training "
            "interactions of every worker): it cannot be combined over sharded users"
        )
    totals = np.zeros((2, len(metrics)), dtype=np.float64)
    if np.any(eval_set.target_counts() > 0):
        users = evaluate_ranking_users(model, eval_set, metrics, batch_size=batch_size).users
        for column, name in enumerate(metrics):
            values = users[name].to_numpy(np.float64)
            present = ~np.isnan(values)
            totals[:, column] = values[present].sum(), present.sum()
    totals = combine(totals)
    if not np.all(totals[1] > 0):
        raise ValueError("No user of any worker has a non-empty target: nothing to evaluate.")
    return {name: float(totals[0, i] / totals[1, i]) for i, name in enumerate(metrics)}


def not_per_user(name: str) -> bool:
    """Whether a ranking metric is not an average of per-user values of the lists alone."""
    ((metric, _),) = parse_metric_names([name])
    return metric in LIST_METRICS or metric in POPULARITY_METRICS


def evaluate_ranking_variants(
    score_batches: Callable[[sp.csr_matrix, int], Iterable[list[np.ndarray]]],
    eval_set: EvalSet,
    metrics: Iterable[str] = DEFAULT_METRICS,
    batch_size: int = 500,
    train: sp.spmatrix | None = None,
) -> list[RankingResults]:
    """`evaluate_ranking_users` of several scorers whose scores come out together.

    For models that score several variants of themselves at once, sharing the work (the
    linear autoencoders' `variant_scores`): the users are scored batch by batch, each
    batch's scores of every variant ranked with the users' input items excluded, as
    `evaluate_ranking_users` ranks a model's.

    Args:
        score_batches: callable. Called as `score_batches(inputs, batch_size)` with the
            evaluated users' histories (a CSR matrix); yields, per batch of `batch_size`
            users in order, a list of dense `[batch, n_items]` score arrays, one per
            variant, the same number each time.
        eval_set, metrics, batch_size, train: as for `evaluate_ranking_users`.

    Returns:
        A `RankingResults` per variant, in the order of the lists.
    """
    check_positive_int("batch_size", batch_size)
    metrics = list(metrics)
    users = evaluated_users(eval_set)
    inputs = sp.csr_matrix(eval_set.inputs)[users]
    max_k = max(k for _, k in parse_metric_names(metrics))
    tops = []
    for number, scores in enumerate(score_batches(inputs, batch_size)):
        batch = inputs[number * batch_size : (number + 1) * batch_size]
        if not tops:
            tops = [[] for _ in scores]
        if len(scores) != len(tops):
            raise ValueError(
                f"`score_batches` gave {len(scores)} score arrays for batch {number} and "
                f"{len(tops)} for the first; every batch needs one per variant"
            )
        for lists, variant_scores in zip(tops, scores):
            lists.append(top_k_of_scores(variant_scores, batch, max_k))
    return [
        results_of_lists(np.concatenate(lists)[: len(users)], eval_set, users, metrics, train)
        for lists in tops
    ]


def top_k_of_scores(scores: np.ndarray, inputs: sp.spmatrix, k: int) -> np.ndarray:
    """Each row's k best-scored items with the row's input items excluded, in numpy.

    As `top_k_items` ranks: best first, equal scores by item index, and -1 in the slots
    past the items left (k larger than the items not excluded) or for items scored -inf.
    (Of items tied at the k-th place, which one makes the list is not defined.)

    Args:
        scores: float array `[n_users, n_items]`.
        inputs: scipy sparse matrix `[n_users, n_items]`. The items to exclude.
        k: int. Items a row.
    """
    scores = np.array(scores, dtype=np.float32)
    inputs = sp.csr_matrix(inputs)
    rows = np.repeat(np.arange(inputs.shape[0]), np.diff(inputs.indptr))
    scores[rows, inputs.indices] = -np.inf
    ranked = min(k, scores.shape[1])
    part = np.argpartition(-scores, ranked - 1, axis=1)[:, :ranked]
    # Best first, equal scores by item index as `tf.math.top_k` orders them.
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    top = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top[np.take_along_axis(scores, top, axis=1) == -np.inf] = -1
    if ranked < k:
        top = np.pad(top, ((0, 0), (0, k - ranked)), constant_values=-1)
    return top


def evaluated_users(eval_set: EvalSet) -> np.ndarray:
    """The rows of `eval_set` an evaluation scores: those with a non-empty target."""
    if eval_set.inputs.shape != eval_set.targets.shape:
        raise ValueError(
            "`eval_set.inputs` and `eval_set.targets` should have the same shape. "
            f"Received: {eval_set.inputs.shape} and {eval_set.targets.shape}"
        )
    users = np.flatnonzero(eval_set.target_counts() > 0)
    if len(users) == 0:
        raise ValueError("No user of `eval_set` has a non-empty target: nothing to evaluate.")
    return users


def results_of_lists(
    top: np.ndarray,
    eval_set: EvalSet,
    users: np.ndarray,
    metrics: Iterable[str],
    train: sp.spmatrix | None = None,
) -> RankingResults:
    """The metrics of the ranked lists `top` (`[len(users), k]`) of the rows `users`."""
    parsed = parse_metric_names(metrics)
    counts = eval_set.target_counts()
    targets = sp.csr_matrix(eval_set.targets)[users]
    user_ids = np.asarray(eval_set.user_ids)[users]
    ks = sorted({k for _, k in parsed})
    names = sorted({name for name, _ in parsed})
    common = {"ks": ks, "target_counts": counts[users], "train": train}
    list_names = [name for name in names if name in LIST_METRICS]
    user_names = [name for name in names if name not in LIST_METRICS]
    values = {}
    if list_names:
        values.update(ranking_metrics(top, targets, names=list_names, **common))
    if user_names:
        values.update(ranking_metrics(top, targets, names=user_names, per_user=True, **common))
    averages, columns = {}, {"user_id": user_ids}
    for name, k in parsed:
        key = f"{name}@{k}"
        if name in LIST_METRICS:
            averages[key] = values[key]
        else:
            columns[key] = values[key]
            # A user with no ranked item at all has no novelty or popularity (NaN).
            averages[key] = float(np.nanmean(values[key]))
    return RankingResults(averages, pd.DataFrame(columns))


def evaluate_ratings(
    model: Recommender, eval_set: EvalSet, batch_size: int = 500
) -> dict[str, float]:
    """RMSE and MAE of an explicit-rating model at the held-out ratings of an evaluation set.

    The users with held-out ratings are predicted in batches from their inputs, with
    `model(x, training=False)`, or, for a model conditioned on users
    (`model.user_conditioned`, such as the item-based AutoRec), with
    `model.score_users(x, user_indices)`, each user's raw id looked up in
    `model.user_ids` (-1 when unknown). Only the predictions at the held-out entries leave
    the graph: the full users x items matrix of predictions never exists. The model
    applies its own fallback and clipping.

    Args:
        model: Recommender. Returns predicted ratings of shape `[batch, n_items]` for a
            `tf.SparseTensor` of given ratings.
        eval_set: EvalSet. The users, their given ratings and their held-out ratings.
        batch_size: int. Users predicted at once. Defaults to 500.

    Returns:
        `{"rmse": ..., "mae": ...}` over every held-out rating.

    Example:

    ```python
    from keras_recae.evaluation import evaluate_ratings

    results = evaluate_ratings(model, split.test)
    ```
    """
    check_positive_int("batch_size", batch_size)
    if eval_set.inputs.shape != eval_set.targets.shape:
        raise ValueError(
            "`eval_set.inputs` and `eval_set.targets` should have the same shape. "
            f"Received: {eval_set.inputs.shape} and {eval_set.targets.shape}"
        )
    targets = sp.csr_matrix(eval_set.targets, dtype=np.float32, copy=True)
    targets.sum_duplicates()
    targets.sort_indices()
    users = np.flatnonzero(np.diff(targets.indptr))
    if len(users) == 0:
        raise ValueError("No user of `eval_set` has a held-out rating: nothing to evaluate.")
    inputs = sp.csr_matrix(eval_set.inputs, dtype=np.float32)[users]
    targets = targets[users]
    user_indices = training_user_rows(model, np.asarray(eval_set.user_ids)[users])
    predict = _rating_function(model, batch_size, inputs.shape[1], user_indices is not None)
    batches = sparse_batches(inputs, batch_size, targets=targets, prefetch=False)
    predicted = []
    for number, (x, held_out) in enumerate(batches):
        if user_indices is None:
            predicted.append(predict(x, held_out).numpy())
            continue
        rows = _batch_rows(user_indices, number, batch_size)
        predicted.append(predict(x, held_out, rows).numpy())
    return rating_metrics(np.concatenate(predicted), targets.data)


def training_user_rows(model, user_ids: np.ndarray) -> np.ndarray | None:
    """Rows of the model's training users for raw ids; None for a model without users.

    A scorer that is not a `Recommender` (any callable from sparse histories to scores)
    declares nothing and is scored without users.
    """
    if not isinstance(model, Recommender) or not model.user_conditioned:
        return None
    if model.user_ids is None:
        return None
    known_ids = np.asarray(model.user_ids)
    reference = Interactions(sp.csr_matrix((len(known_ids), 0)), known_ids, [])
    return reference.user_index(user_ids)


# Per model, the compiled rating functions by (batch_size, n_items, by_user), as for top-k.
_RATING_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _rating_function(model, batch_size, n_items, by_user):
    key = (batch_size, n_items, by_user)
    functions = _RATING_FUNCTIONS.setdefault(model, {})
    if key in functions:
        return functions[key]
    model_ref = weakref.ref(model)

    @tf.function(reduce_retracing=True, autograph=False)
    def predict(x, held_out, user_indices=None):
        if user_indices is None:
            predictions = model_ref()(x, training=False)
        else:
            predictions = model_ref().score_users(x, user_indices)
        predictions = tf.cast(predictions, tf.float32)
        if predictions.shape.rank != 2 or predictions.shape[1] not in (None, n_items):
            raise ValueError(
                f"The model should predict ratings of shape [batch, {n_items}] for a "
                f"SparseTensor input of shape {x.shape}. Received: {predictions.shape}"
            )
        return tf.gather_nd(predictions, held_out.indices)

    functions[key] = predict
    return predict
