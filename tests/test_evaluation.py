import gc
import math
import weakref

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from keras_recae.data.split import EvalSet
from keras_recae.evaluation import (
    evaluate_ranking,
    evaluate_ranking_users,
    evaluate_ranking_variants,
    top_k_items,
    top_k_of_scores,
)
from keras_recae.models import Recommender


class ItemItemScorerFixture(Recommender):
    """Test fixture: scores = sparse history x fixed item-item matrix.

    Records the static input shape at each trace, to check the batching.
    """

    def __init__(self, item_item, **kwargs):
        super().__init__(**kwargs)
        self.item_item = tf.constant(item_item, tf.float32)
        self.traced_shapes = []

    def call(self, x, training=False):
        self.traced_shapes.append(tuple(x.shape))
        return tf.sparse.sparse_dense_matmul(x, self.item_item)


class WrongWidthFixture(Recommender):
    """Test fixture: returns one column too many."""

    def call(self, x, training=False):
        return tf.zeros([tf.shape(x)[0], x.shape[1] + 1])


def random_inputs(rng, n_users, n_items, min_items=1, max_items=8):
    dense = np.zeros((n_users, n_items), np.float32)
    for user in range(n_users):
        size = rng.integers(min_items, max_items + 1)
        dense[user, rng.choice(n_items, size, replace=False)] = rng.integers(1, 6, size)
    return sp.csr_matrix(dense)


def integer_scorer(rng, n_items):
    # Integer weights keep the float32 scores exact, so the model and numpy rank alike.
    return rng.integers(0, 2**16, (n_items, n_items)).astype(np.float32)


def brute_force_rankings(inputs, item_item, exclude_inputs=True):
    """Per user: all items not in the input, sorted by the dense score, best first."""
    dense_inputs = inputs.toarray().astype(np.float64)
    scores = dense_inputs @ item_item.astype(np.float64)
    rankings = []
    for user in range(dense_inputs.shape[0]):
        seen = set(np.flatnonzero(dense_inputs[user])) if exclude_inputs else set()
        candidates = [item for item in range(scores.shape[1]) if item not in seen]
        user_scores = [scores[user, item] for item in candidates]
        # The check below makes the ranking unambiguous.
        assert len(set(user_scores)) == len(user_scores), "tied scores in the fixture data"
        rankings.append(sorted(candidates, key=lambda item: -scores[user, item]))
    return rankings


@pytest.mark.parametrize("exclude_inputs", [True, False])
def test_top_k_items_matches_brute_force(exclude_inputs):
    rng = np.random.default_rng(0)
    n_users, n_items, k, batch_size = 23, 40, 7, 5
    inputs = random_inputs(rng, n_users, n_items)
    item_item = integer_scorer(rng, n_items)
    model = ItemItemScorerFixture(item_item)

    top = top_k_items(model, inputs, k, batch_size=batch_size, exclude_inputs=exclude_inputs)

    expected = [ranking[:k] for ranking in brute_force_rankings(inputs, item_item, exclude_inputs)]
    assert top.shape == (n_users, k)
    np.testing.assert_array_equal(top, np.array(expected))
    # Every batch, the padded last one included, has the static batch shape: traced once.
    assert model.traced_shapes == [(batch_size, n_items)]


def test_repeated_calls_reuse_one_traced_function_without_keeping_the_model_alive():
    rng = np.random.default_rng(2)
    inputs = random_inputs(rng, 9, 12)
    model = ItemItemScorerFixture(integer_scorer(rng, 12))
    first = top_k_items(model, inputs, 4, batch_size=4)
    np.testing.assert_array_equal(top_k_items(model, inputs, 4, batch_size=4), first)
    assert model.traced_shapes == [(4, 12)]
    top_k_items(model, inputs, 4, batch_size=5)
    assert model.traced_shapes == [(4, 12), (5, 12)]

    model_ref = weakref.ref(model)
    del model
    gc.collect()
    assert model_ref() is None


def test_top_k_items_marks_missing_items_with_minus_one():
    inputs = sp.csr_matrix(np.array([[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 1]], np.float32))
    item_item = np.diag(np.arange(1, 7, dtype=np.float32)) + np.arange(6, dtype=np.float32)
    top = top_k_items(ItemItemScorerFixture(item_item), inputs, k=8, batch_size=4)
    assert top.shape == (2, 8)
    assert sorted(top[0, :2]) == [2, 4] and (top[0, 2:] == -1).all()
    assert set(top[1, :5]) == {0, 1, 2, 3, 4} and (top[1, 5:] == -1).all()


def test_top_k_items_rejects_scores_of_the_wrong_shape():
    inputs = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"scores of shape \[batch, 3\]"):
        top_k_items(WrongWidthFixture(), inputs, k=2)


def brute_force_metrics(rankings, targets, counts, metrics):
    """Averages of each metric over users with a non-empty target, user by user."""
    sums = {name: 0.0 for name in metrics}
    n_evaluated = 0
    for user, ranking in enumerate(rankings):
        if counts[user] == 0:
            continue
        n_evaluated += 1
        relevant = set(targets[user].indices)
        for full_name in metrics:
            name, k = full_name.split("@")
            k = int(k)
            hit_ranks = [r for r, item in enumerate(ranking[:k], 1) if item in relevant]
            n_relevant = counts[user]
            if name == "recall":
                value = len(hit_ranks) / n_relevant
            elif name == "truncated_recall":
                value = len(hit_ranks) / min(k, n_relevant)
            elif name == "precision":
                value = len(hit_ranks) / k
            else:
                dcg = sum(1 / math.log2(r + 1) for r in hit_ranks)
                idcg = sum(1 / math.log2(r + 1) for r in range(1, min(k, n_relevant) + 1))
                value = dcg / idcg
            sums[full_name] += value
    return {name: total / n_evaluated for name, total in sums.items()}


def test_evaluate_ranking_matches_brute_force():
    rng = np.random.default_rng(1)
    n_users, n_items, batch_size = 31, 60, 8
    inputs = random_inputs(rng, n_users, n_items, max_items=10)
    dense_targets = np.zeros((n_users, n_items), np.float32)
    for user in range(n_users):
        free = np.setdiff1d(np.arange(n_items), inputs[user].indices)
        # Empty targets every seventh user; otherwise from 1 item to more than k=20.
        size = 0 if user % 7 == 3 else rng.integers(1, 30)
        dense_targets[user, rng.choice(free, size, replace=False)] = 1.0
    extra = np.where(rng.random(n_users) < 0.3, rng.integers(1, 4, n_users), 0)
    extra[3] = 0
    extra[10] = 2
    eval_set = EvalSet(inputs, sp.csr_matrix(dense_targets), np.arange(n_users), extra)
    item_item = integer_scorer(rng, n_items)
    metrics = ["ndcg@20", "recall@5", "truncated_recall@20", "precision@10", "ndcg@50"]

    results = evaluate_ranking(
        ItemItemScorerFixture(item_item), eval_set, metrics=metrics, batch_size=batch_size
    )

    rankings = brute_force_rankings(inputs, item_item)
    expected = brute_force_metrics(rankings, eval_set.targets, eval_set.target_counts(), metrics)
    assert list(results) == metrics
    for name in metrics:
        assert results[name] == pytest.approx(expected[name], abs=1e-12), name


def test_evaluate_ranking_ignores_the_padded_rows_of_the_last_batch():
    # Seven users in batches of three: two padded rows, which would score no hit. Every real
    # user's only target is its top item, so the means are 1 only if the padding is dropped.
    n_items = 5
    inputs = sp.csr_matrix(np.ones((7, 1), np.float32) * np.eye(1, n_items, 4, np.float32))
    targets = sp.csr_matrix(np.ones((7, 1), np.float32) * np.eye(1, n_items, 0, np.float32))
    item_item = np.tile(np.arange(n_items, 0, -1, dtype=np.float32), (n_items, 1))
    results = evaluate_ranking(
        ItemItemScorerFixture(item_item),
        EvalSet(inputs, targets, np.arange(7)),
        metrics=["ndcg@1", "recall@1"],
        batch_size=3,
    )
    assert results == {"ndcg@1": 1.0, "recall@1": 1.0}


def test_evaluate_ranking_rejects_unknown_metrics_before_scoring():
    inputs = sp.csr_matrix(np.eye(3, dtype=np.float32))
    model = ItemItemScorerFixture(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="Unknown metric 'hitrate@10'"):
        evaluate_ranking(model, EvalSet(inputs, inputs, np.arange(3)), metrics=["hitrate@10"])
    assert model.traced_shapes == []


class PlainScorer:
    """Not a Recommender: a callable from sparse histories to scores, declaring nothing."""

    def __init__(self, item_item):
        self.item_item = tf.constant(item_item, tf.float32)

    def __call__(self, x, training=False):
        return tf.sparse.sparse_dense_matmul(x, self.item_item)


def test_any_callable_scorer_is_evaluated_as_the_model_it_mirrors():
    rng = np.random.default_rng(5)
    inputs = random_inputs(rng, 20, 15)
    targets = random_inputs(rng, 20, 15, max_items=3)
    eval_set = EvalSet(inputs, targets, np.arange(20))
    item_item = integer_scorer(rng, 15)
    metrics = ["ndcg@5", "recall@5"]
    expected = evaluate_ranking(ItemItemScorerFixture(item_item), eval_set, metrics, batch_size=8)
    assert evaluate_ranking(PlainScorer(item_item), eval_set, metrics, batch_size=8) == expected


def test_top_k_of_scores_ranks_as_top_k_items():
    rng = np.random.default_rng(6)
    inputs = random_inputs(rng, 13, 9, max_items=7)
    # Few distinct scores: ties, ordered by item index by both.
    item_item = integer_scorer(rng, 9) % 4
    scores = np.asarray(inputs @ item_item, dtype=np.float32)
    expected = top_k_items(ItemItemScorerFixture(item_item), inputs, k=11)
    np.testing.assert_array_equal(top_k_of_scores(scores, inputs, k=11), expected)


def test_top_k_of_scores_leaves_out_items_scored_minus_infinity():
    scores = np.array([[1.0, -np.inf, 3.0, 2.0]], np.float32)
    inputs = sp.csr_matrix(np.array([[0, 0, 0, 1]], np.float32))
    np.testing.assert_array_equal(top_k_of_scores(scores, inputs, k=3), [[2, 0, -1]])


def test_variants_scored_together_are_evaluated_as_each_model_alone():
    rng = np.random.default_rng(7)
    inputs = random_inputs(rng, 22, 16)
    targets = random_inputs(rng, 22, 16, max_items=3).toarray()
    targets[4] = 0.0  # a user with an empty target is not scored
    eval_set = EvalSet(inputs, sp.csr_matrix(targets), np.arange(22) + 100)
    matrices = [integer_scorer(rng, 16) for _ in range(3)]
    metrics = ["ndcg@5", "recall@3", "coverage@5"]

    def score_batches(histories, batch_size):
        for start in range(0, histories.shape[0], batch_size):
            batch = histories[start : start + batch_size]
            yield [np.asarray(batch @ matrix, dtype=np.float32) for matrix in matrices]

    results = evaluate_ranking_variants(score_batches, eval_set, metrics, batch_size=5)
    assert len(results) == 3
    for matrix, result in zip(matrices, results):
        expected = evaluate_ranking_users(ItemItemScorerFixture(matrix), eval_set, metrics)
        assert result.metrics == pytest.approx(expected.metrics, abs=1e-12)
        assert list(result.users["user_id"]) == list(expected.users["user_id"])


def test_variants_need_the_same_number_of_scores_each_batch():
    inputs = sp.csr_matrix(np.eye(4, dtype=np.float32))
    eval_set = EvalSet(inputs, inputs, np.arange(4))

    def uneven(histories, batch_size):
        yield [np.zeros((2, 4), np.float32)] * 2
        yield [np.zeros((2, 4), np.float32)]

    with pytest.raises(ValueError, match="gave 1 score arrays for batch 1 and 2 for the first"):
        evaluate_ranking_variants(uneven, eval_set, ["ndcg@2"], batch_size=2)
