import math

import numpy as np
import pytest
import scipy.sparse as sp

from keras_recae.metrics import parse_metric_names, ranking_metrics, rating_metrics


def brute_force_user(ranking, relevant, n_relevant, k):
    """Each definition of DESIGN.md for one user, written out rank by rank."""
    hits = 0
    dcg = 0.0
    for rank, item in enumerate(ranking[:k], start=1):
        if item in relevant:
            hits += 1
            dcg += 1.0 / math.log2(rank + 1)
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    return {
        "recall": hits / n_relevant,
        "truncated_recall": hits / min(k, n_relevant),
        "ndcg": dcg / idcg,
        "precision": hits / k,
    }


def random_case(seed, n_users=40, n_items=30, top=30):
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        # Target sizes from empty to most items, so some users have fewer than k and some more.
        size = int(rng.integers(0, n_items)) if user % 5 else 0
        rows.append(rng.choice(n_items, size, replace=False))
    targets = sp.lil_matrix((n_users, n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        targets[user, items] = rng.integers(1, 6, len(items))
    extra = rng.integers(0, 3, n_users) * (rng.random(n_users) < 0.3)
    top_items = np.stack([rng.permutation(n_items)[:top] for _ in range(n_users)])
    return top_items, targets.tocsr(), extra, rows


@pytest.mark.parametrize("use_extra", [False, True])
def test_ranking_metrics_match_brute_force(use_extra):
    top_items, targets, extra, rows = random_case(seed=3)
    counts = np.array([len(items) for items in rows]) + (extra if use_extra else 0)
    ks = (1, 5, 10, 30)
    results = ranking_metrics(
        top_items, targets, ks=ks, target_counts=counts if use_extra else None
    )
    per_user = ranking_metrics(
        top_items, targets, ks=ks, target_counts=counts if use_extra else None, per_user=True
    )
    assert (counts == 0).any() and ((counts > 0) & (counts < 5)).any()
    for k in ks:
        expected = {name: [] for name in ("recall", "truncated_recall", "ndcg", "precision")}
        for user, items in enumerate(rows):
            if counts[user] == 0:
                for name in expected:
                    assert np.isnan(per_user[f"{name}@{k}"][user])
                continue
            values = brute_force_user(list(top_items[user]), set(items), counts[user], k)
            for name, value in values.items():
                expected[name].append(value)
                assert per_user[f"{name}@{k}"][user] == pytest.approx(value)
        for name, values in expected.items():
            assert results[f"{name}@{k}"] == pytest.approx(np.mean(values), abs=1e-12)


def test_ranking_metrics_hand_computed_values():
    # One user: ranking [4, 2, 7], relevant {2, 9} plus one item outside the vocabulary.
    targets = sp.csr_matrix(([1.0, 1.0], ([0, 0], [2, 9])), shape=(1, 10))
    results = ranking_metrics(
        np.array([[4, 2, 7]]), targets, ks=(1, 3), target_counts=np.array([3])
    )
    assert results["recall@1"] == 0.0
    assert results["recall@3"] == pytest.approx(1 / 3)
    assert results["truncated_recall@3"] == pytest.approx(1 / 3)
    assert results["precision@3"] == pytest.approx(1 / 3)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert results["ndcg@3"] == pytest.approx((1 / math.log2(3)) / idcg)


def test_truncated_recall_and_ndcg_reach_one_with_few_relevant_items():
    targets = sp.csr_matrix(([1.0, 1.0], ([0, 0], [3, 1])), shape=(1, 6))
    results = ranking_metrics(np.array([[1, 3, 0, 2, 4, 5]]), targets, ks=(5,))
    assert results["truncated_recall@5"] == 1.0
    assert results["recall@5"] == 1.0
    assert results["ndcg@5"] == pytest.approx(1.0)
    assert results["precision@5"] == pytest.approx(0.4)


def test_empty_slots_are_never_hits():
    targets = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 3))
    results = ranking_metrics(np.array([[-1, -1, 0]]), targets, ks=(2, 3), names=("recall",))
    assert results == {"recall@2": 0.0, "recall@3": 1.0}


def test_users_with_only_out_of_vocabulary_targets_count_as_misses():
    targets = sp.csr_matrix((2, 4), dtype=np.float32)
    results = ranking_metrics(
        np.array([[0, 1], [2, 3]]), targets, ks=(2,), target_counts=np.array([2, 0])
    )
    assert results["recall@2"] == 0.0 and results["ndcg@2"] == 0.0


def test_ranking_metrics_errors():
    targets = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 4))
    with pytest.raises(ValueError, match="fewer than k=3"):
        ranking_metrics(np.array([[0, 1]]), targets, ks=(3,))
    with pytest.raises(ValueError, match="Unknown metric 'hitrate'"):
        ranking_metrics(np.array([[0, 1]]), targets, ks=(2,), names=("hitrate",))
    with pytest.raises(ValueError, match=r"item indices in \[0, 4\)"):
        ranking_metrics(np.array([[0, 4]]), targets, ks=(2,))
    with pytest.raises(ValueError, match="one row per row"):
        ranking_metrics(np.array([[0, 1], [1, 2]]), targets, ks=(2,))
    with pytest.raises(ValueError, match="non-empty target"):
        ranking_metrics(np.array([[0, 1]]), sp.csr_matrix((1, 4)), ks=(2,))


def test_parse_metric_names():
    assert parse_metric_names(["ndcg@100", "Recall@20", "ndcg@100", "truncated_recall@50"]) == [
        ("ndcg", 100),
        ("recall", 20),
        ("truncated_recall", 50),
    ]
    assert parse_metric_names("precision@5") == [("precision", 5)]
    assert parse_metric_names(["MRR@20", "hit_rate@5", "gini@100"]) == [
        ("mrr", 20),
        ("hit_rate", 5),
        ("gini", 100),
    ]


@pytest.mark.parametrize(
    "name, message",
    [
        ("hitrate@10", "Unknown metric 'hitrate@10'. Expected `<metric>@<k>` with <metric> one of"),
        ("ndcg", "Metric 'ndcg' has no valid cutoff k"),
        ("ndcg@0", "Metric 'ndcg@0' has no valid cutoff k"),
        ("recall@ten", "Metric 'recall@ten' has no valid cutoff k"),
        ("rmse", "'rmse' is a rating metric"),
    ],
)
def test_parse_metric_names_errors(name, message):
    with pytest.raises(ValueError, match=message):
        parse_metric_names([name])


def test_rating_metrics():
    predicted = np.array([3.5, 4.0, 1.0, 5.0])
    true = np.array([4.0, 4.0, 2.0, 3.0])
    errors = [-0.5, 0.0, -1.0, 2.0]
    results = rating_metrics(predicted, true)
    assert results["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 4))
    assert results["mae"] == pytest.approx(sum(abs(e) for e in errors) / 4)
    with pytest.raises(ValueError, match="same shape"):
        rating_metrics(predicted, true[:3])
    with pytest.raises(ValueError, match="empty"):
        rating_metrics([], [])


def brute_force_beyond(ranking, relevant, n_relevant, k, item_users, n_train_users):
    """mrr, hit_rate, map, novelty and popularity of one user, written out slot by slot."""
    reciprocal_rank, hits, precisions = 0.0, 0, 0.0
    users_of_items, novelties = [], []
    for rank, item in enumerate(ranking[:k], start=1):
        if item < 0:
            continue
        users_of_items.append(item_users[item])
        novelties.append(-math.log2(max(item_users[item], 1) / n_train_users))
        if item in relevant:
            hits += 1
            precisions += hits / rank
            if reciprocal_rank == 0.0:
                reciprocal_rank = 1.0 / rank
    return {
        "mrr": reciprocal_rank,
        "hit_rate": 1.0 if hits else 0.0,
        "map": precisions / min(k, n_relevant),
        "novelty": sum(novelties) / len(novelties) if novelties else math.nan,
        "popularity": sum(users_of_items) / len(users_of_items) if users_of_items else math.nan,
    }


def brute_force_gini(counts):
    """The Gini index from its mean-absolute-difference definition, not the sorted sum."""
    counts = [float(c) for c in counts]
    n, total = len(counts), sum(counts)
    differences = sum(abs(a - b) for a in counts for b in counts)
    return differences / (2 * n * total)


def random_train(seed, n_users=25, n_items=30):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < rng.random(n_items) * 0.6
    dense[:, 3] = False  # an item no training user has
    dense[4] = False  # an empty training row: not a training user
    values = dense * rng.integers(1, 4, dense.shape)  # counts, not ones: users are counted
    return sp.csr_matrix(values.astype(np.float32)), dense


def test_new_ranking_metrics_match_brute_force():
    top_items, targets, extra, rows = random_case(seed=11)
    top_items[2, 3:6] = -1  # empty slots are neither hits nor recommended items
    top_items[7, :] = -1  # no item at all: novelty and popularity are undefined
    counts = np.array([len(items) for items in rows]) + extra
    train, dense = random_train(seed=12)
    item_users = dense.sum(axis=0)
    n_train_users = int(dense.any(axis=1).sum())
    ks = (1, 5, 30)
    names = ("mrr", "hit_rate", "map", "novelty", "popularity")
    common = {"ks": ks, "names": names, "target_counts": counts, "train": train}
    results = ranking_metrics(top_items, targets, **common)
    per_user = ranking_metrics(top_items, targets, per_user=True, **common)
    for k in ks:
        expected = {name: [] for name in names}
        for user, items in enumerate(rows):
            if counts[user] == 0:
                continue
            values = brute_force_beyond(
                list(top_items[user]), set(items), counts[user], k, item_users, n_train_users
            )
            for name, value in values.items():
                expected[name].append(value)
                assert per_user[f"{name}@{k}"][user] == pytest.approx(value, nan_ok=True)
        for name, values in expected.items():
            assert results[f"{name}@{k}"] == pytest.approx(np.nanmean(values), abs=1e-12)


def test_coverage_and_gini_match_brute_force():
    top_items, targets, _, rows = random_case(seed=5, n_items=50, top=10)
    top_items[1, 4:] = -1
    results = ranking_metrics(top_items, targets, ks=(3, 10), names=("coverage", "gini"))
    evaluated = [user for user, items in enumerate(rows) if len(items)]
    for k in (3, 10):
        recommended = [item for user in evaluated for item in top_items[user, :k] if item >= 0]
        times = [recommended.count(item) for item in range(50)]
        assert results[f"coverage@{k}"] == pytest.approx(len(set(recommended)) / 50)
        assert results[f"gini@{k}"] == pytest.approx(brute_force_gini(times))


def test_gini_extremes():
    targets = sp.csr_matrix(np.ones((4, 4), dtype=np.float32))
    each_item_once = np.array([[0], [1], [2], [3]])
    one_item_only = np.zeros((4, 1), dtype=np.int64)
    assert ranking_metrics(each_item_once, targets, ks=(1,), names=("gini",))["gini@1"] == 0.0
    gini = ranking_metrics(one_item_only, targets, ks=(1,), names=("gini",))["gini@1"]
    assert gini == pytest.approx(3 / 4)  # (n - 1) / n: one item takes every slot
    coverage = ranking_metrics(one_item_only, targets, ks=(1,), names=("coverage",))
    assert coverage == {"coverage@1": 0.25}


def test_beyond_accuracy_errors():
    targets = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 4))
    with pytest.raises(ValueError, match="novelty, popularity need the training interactions"):
        ranking_metrics(np.array([[0, 1]]), targets, ks=(2,), names=("novelty",))
    with pytest.raises(ValueError, match="one column per item"):
        ranking_metrics(
            np.array([[0, 1]]), targets, ks=(2,), names=("popularity",), train=sp.eye(3)
        )
    with pytest.raises(ValueError, match="'coverage' describes the lists of all users"):
        ranking_metrics(np.array([[0, 1]]), targets, ks=(2,), names=("coverage",), per_user=True)


def test_accuracy_metrics_agree_with_keras_rs():
    """Where keras-rs defines the same quantity (every user with at most k relevant items,
    input items masked out of the ranking), its metrics equal ours."""
    keras_rs = pytest.importorskip("keras_rs")
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 25, 10
    scores = rng.random((n_users, n_items)).astype(np.float32)
    inputs = rng.random((n_users, n_items)) < 0.2
    labels = np.zeros((n_users, n_items), dtype=np.float32)
    for user in range(n_users):
        candidates = np.flatnonzero(~inputs[user])
        labels[user, rng.choice(candidates, rng.integers(1, k + 1), replace=False)] = 1.0
    ranked = np.where(inputs, -np.inf, scores)
    top_items = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    ours = ranking_metrics(
        top_items,
        sp.csr_matrix(labels),
        ks=(k,),
        names=("recall", "precision", "ndcg", "mrr", "map"),
    )
    y_true = {"labels": labels, "mask": ~inputs}
    theirs = {
        "recall": keras_rs.metrics.RecallAtK(k=k),
        "precision": keras_rs.metrics.PrecisionAtK(k=k),
        "ndcg": keras_rs.metrics.NDCG(k=k),
        "mrr": keras_rs.metrics.MeanReciprocalRank(k=k),
        "map": keras_rs.metrics.MeanAveragePrecision(k=k),
    }
    for name, metric in theirs.items():
        metric.update_state(y_true, scores)
        assert ours[f"{name}@{k}"] == pytest.approx(float(metric.result()), rel=1e-5), name
