import numpy as np
import pandas as pd
import pytest

from keras_recae.data.interactions import Interactions
from keras_recae.data.protocols import split_strong
from keras_recae.data.synthetic import (
    _generate,
    synthetic_frame,
    synthetic_interactions,
    synthetic_matrix,
)


def test_shape_ids_and_minimum_counts():
    data = synthetic_interactions(n_users=300, n_items=120, density=0.02, seed=1)
    assert isinstance(data, Interactions)
    assert (data.n_users, data.n_items) == (300, 120)
    np.testing.assert_array_equal(data.user_ids, np.arange(1, 301))
    np.testing.assert_array_equal(data.item_ids, np.arange(1, 121))
    assert np.diff(data.matrix.indptr).min() >= 5
    assert np.bincount(data.matrix.indices, minlength=data.n_items).min() >= 1
    assert set(data.matrix.data) == {1.0}


def test_every_item_is_covered_even_with_few_users():
    data = synthetic_interactions(n_users=3, n_items=200, n_clusters=4, seed=0)
    assert np.bincount(data.matrix.indices, minlength=200).min() >= 1


def test_density_is_close_to_the_target():
    data = synthetic_interactions(n_users=2000, n_items=500, density=0.04, seed=0)
    assert data.nnz / (data.n_users * data.n_items) == pytest.approx(0.04, rel=0.1)


def test_deterministic_by_seed():
    first = synthetic_frame(n_users=100, n_items=60, seed=3, explicit=True)
    again = synthetic_frame(n_users=100, n_items=60, seed=3, explicit=True)
    other = synthetic_frame(n_users=100, n_items=60, seed=4, explicit=True)
    assert first.equals(again)
    assert not first.equals(other)


def test_frame_matches_interactions_and_looks_like_a_log():
    frame = synthetic_frame(n_users=100, n_items=60, seed=2, explicit=True)
    data = synthetic_interactions(n_users=100, n_items=60, seed=2, explicit=True)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert not frame.duplicated(["user", "item"]).any()
    assert (np.diff(frame["timestamp"].to_numpy()) > 0).all()
    # Users interleave rather than come in blocks.
    assert not (np.diff(frame["user"].to_numpy()) >= 0).all()
    rows = data.user_index(frame["user"])
    cols = data.item_index(frame["item"])
    np.testing.assert_array_equal(np.asarray(data.matrix[rows, cols]).ravel(), frame["rating"])
    assert data.nnz == len(frame)


def test_items_co_occur_within_clusters():
    frame, _, item_cluster = _generate(600, 200, 6, 0.05, 0, False)
    data = Interactions.from_frame(frame, item_ids=np.arange(1, 201))
    matrix = data.matrix.astype(np.float64)
    co_occurrence = (matrix.T @ matrix).toarray()
    same = item_cluster[:, None] == item_cluster[None, :]
    off_diagonal = ~np.eye(200, dtype=bool)
    within = co_occurrence[same & off_diagonal].mean()
    across = co_occurrence[~same].mean()
    assert within > 4 * across


def test_users_of_a_cluster_concentrate_on_its_items():
    frame, user_cluster, item_cluster = _generate(400, 160, 8, 0.05, 5, False)
    in_cluster = user_cluster[frame["user"] - 1] == item_cluster[frame["item"] - 1]
    # 80% of the sampling weight; drawing without replacement from 20 items lowers it a bit.
    # Unstructured data would give 1/8.
    assert 0.6 < in_cluster.mean() < 0.85


def test_explicit_ratings_follow_cluster_affinity():
    frame, user_cluster, item_cluster = _generate(500, 150, 5, 0.05, 0, True)
    ratings = frame["rating"].to_numpy()
    assert set(np.unique(ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    in_cluster = user_cluster[frame["user"] - 1] == item_cluster[frame["item"] - 1]
    assert ratings[in_cluster].mean() > ratings[~in_cluster].mean() + 1.0


def test_protocols_run_on_the_frame():
    frame = synthetic_frame(n_users=300, n_items=100, seed=0, explicit=True)
    split = split_strong(frame, n_heldout_users=30)
    assert split.test.n_users > 0 and split.train.n_items > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_users": 0}, "`n_users` should be at least 1"),
        ({"n_items": 4}, "`n_items` should be at least 5"),
        ({"n_clusters": 0}, r"`n_clusters` should be in \[1, n_items\]"),
        ({"density": 0.0}, r"`density` should be in \(0, 1\]"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_interactions(**kwargs)


def test_synthetic_frame_returns_the_planted_clusters_on_request():
    frame, user_cluster, item_cluster = synthetic_frame(300, 90, 6, 0.05, 2, return_clusters=True)
    expected = _generate(300, 90, 6, 0.05, 2, False)
    pd.testing.assert_frame_equal(frame, expected[0])
    pd.testing.assert_frame_equal(frame, synthetic_frame(300, 90, 6, 0.05, 2))
    np.testing.assert_array_equal(user_cluster, expected[1])
    np.testing.assert_array_equal(item_cluster, expected[2])
    assert user_cluster.shape == (300,) and item_cluster.shape == (90,)


def test_synthetic_matrix_of_a_given_size_is_deterministic_and_chunk_free():
    from keras_recae.data.synthetic import synthetic_matrix

    data = synthetic_matrix(3000, 4000, 60_000, seed=4)
    again = synthetic_matrix(3000, 4000, 60_000, seed=4, chunk_users=700)
    assert data.matrix.shape == (3000, 4000)
    assert (data.matrix != again.matrix).nnz == 0
    assert synthetic_matrix(3000, 4000, 60_000, seed=5).matrix.nnz != data.nnz
    rows = np.diff(data.matrix.indptr)
    assert rows.min() >= 1 and 0.85 * 60_000 <= data.nnz <= 60_000 * 1.02
    assert set(np.unique(data.matrix.data)) == {1.0}
    # Popularity is skewed: the top 1% of items take far more than 1% of the interactions.
    users_per_item = np.sort(np.bincount(data.matrix.indices, minlength=4000))[::-1]
    assert users_per_item[:40].sum() > 0.05 * data.nnz


def test_synthetic_matrix_plants_taste_clusters():
    """Users of one cluster share far more items than users of two clusters."""
    from keras_recae.data.synthetic import synthetic_matrix

    matrix = synthetic_matrix(800, 1000, 40_000, n_clusters=4, seed=0).matrix.astype(np.float64)
    overlap = (matrix @ matrix.T).toarray()
    np.fill_diagonal(overlap, 0)
    # Users are dealt into clusters by a permutation: group them by their best partners.
    best = overlap.max(axis=1)
    assert np.median(best) > 2 * np.median(overlap[overlap > 0])


def test_synthetic_data_of_a_size_from_the_data_spec():
    from keras_recae.data.spec import DataSpec, load_split
    from keras_recae.errors import ConfigError

    split, _ = load_split(
        DataSpec(
            "synthetic",
            heldout_users=100,
            synthetic_users=1000,
            synthetic_items=700,
            synthetic_interactions=30_000,
        )
    )
    assert split.train.n_users == 800 and split.test.n_users == 100
    with pytest.raises(ConfigError, match="needs --synthetic-users, --synthetic-items and"):
        load_split(DataSpec("synthetic", synthetic_users=10))
    with pytest.raises(ConfigError, match="at least 5 per user"):
        load_split(
            DataSpec(
                "synthetic", synthetic_users=100, synthetic_items=50, synthetic_interactions=10
            )
        )


def test_the_strong_split_of_synthetic_data_is_the_split_of_its_pairs():
    from keras_recae.data.spec import DataSpec, load_split

    spec = DataSpec(
        "synthetic",
        heldout_users=200,
        synthetic_users=2000,
        synthetic_items=3000,
        synthetic_interactions=20_000,
    )
    split, _ = load_split(spec)
    # Split as the matrix's entries, without a frame; `split_strong` of them as a frame.
    data = synthetic_matrix(2000, 3000, 20_000, seed=0)
    matrix = data.matrix
    # Users left with fewer than five items and items nobody drew are part of the check.
    assert np.diff(matrix.indptr).min() < 5
    assert np.bincount(matrix.indices, minlength=data.n_items).min() == 0
    frame = pd.DataFrame(
        {
            "user": np.repeat(data.user_ids, np.diff(matrix.indptr)),
            "item": data.item_ids[matrix.indices],
        }
    )
    expected = split_strong(frame, n_heldout_users=200, threshold=None)
    assert (split.train.matrix != expected.train.matrix).nnz == 0
    np.testing.assert_array_equal(split.train.user_ids, expected.train.user_ids)
    np.testing.assert_array_equal(split.item_ids, expected.item_ids)
    for part in ("validation", "test"):
        assert getattr(split, part).digest() == getattr(expected, part).digest()
