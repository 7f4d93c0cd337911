"""Chunked reading and a worker's shard of the users (`--shard-users`)."""

import zlib

import numpy as np
import pandas as pd
import pytest

from keras_recae.data.readers import DataFormatError, iter_ratings, read_ratings
from keras_recae.data.shards import load_shard, user_shards
from keras_recae.data.spec import DataSpec, load_split
from keras_recae.data.split import EvalSet
from keras_recae.errors import ConfigError
from keras_recae.evaluation import combined_ranking, evaluate_ranking
from keras_recae.training import RunConfig, train


def write_lightgcn(directory, n_users=40, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(exist_ok=True)
    for name, count in (("train", 6), ("test", 2)):
        rows = [
            f"{user} " + " ".join(map(str, rng.choice(n_items, count, replace=False)))
            for user in range(n_users)
        ]
        (directory / f"{name}.txt").write_text("\n".join(rows) + "\n")
    return directory


def rating_table(n_rows=300, seed=0):
    """String users, integer items, ratings 1-5."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 17, n_rows)],
            "item": rng.integers(0, 50, n_rows),
            "rating": rng.integers(1, 6, n_rows).astype(float),
        }
    )


@pytest.mark.parametrize("suffix", ["txt", "csv", "parquet"])
def test_chunks_put_together_are_the_whole_file(tmp_path, suffix):
    if suffix == "txt":
        path = write_lightgcn(tmp_path / "data") / "train.txt"
    else:
        path = tmp_path / f"ratings.{suffix}"
        table = rating_table()
        table.to_csv(path, index=False) if suffix == "csv" else table.to_parquet(path)
    chunks = list(iter_ratings(path, chunk_rows=7))
    assert len(chunks) > 5
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_ratings(path))


def test_a_bad_field_in_a_later_chunk_is_named_by_its_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n" + "1,2,3\n" * 20 + "1,2,five\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv, line 22: .*'five'"):
        list(iter_ratings(path, chunk_rows=4))
    parquet = tmp_path / "ratings.parquet"
    frame = pd.DataFrame({"user": [1] * 20 + [None], "item": range(21)})
    frame.to_parquet(parquet)
    with pytest.raises(DataFormatError, match=r"ratings\.parquet, row 21: .*user id"):
        list(iter_ratings(parquet, chunk_rows=4))


def test_the_shard_of_a_user_is_crc32_of_its_text():
    ids = np.array([0, 1, 7, 12345, 99999999999], dtype=np.int64)
    expected = [zlib.crc32(str(i).encode()) % 3 for i in ids]
    assert user_shards(ids, 3).tolist() == expected
    # The same id read as text lands on the same shard.
    assert user_shards(np.array([str(i) for i in ids], dtype=object), 3).tolist() == expected
    with pytest.raises(ValueError, match="n_shards"):
        user_shards(ids, 0)


@pytest.mark.parametrize("n_shards", [1, 2, 3])
def test_the_shards_are_the_unsharded_split_divided_by_user(tmp_path, n_shards):
    spec = DataSpec(str(write_lightgcn(tmp_path / "data")), validation_fraction=0.0)
    whole, _ = load_split(spec)
    rows = {user: whole.train.matrix[i] for i, user in enumerate(whole.train.user_ids)}
    seen = []
    for shard in range(n_shards):
        split, _, info = load_shard(spec, shard, n_shards, 0.1)
        np.testing.assert_array_equal(split.item_ids, whole.item_ids)
        assert info.users[shard] == split.train.n_users and info.n_users == whole.train.n_users
        for i, user in enumerate(split.train.user_ids):
            assert zlib.crc32(str(user).encode()) % n_shards == shard
            assert (split.train.matrix[i] != rows[user]).nnz == 0
        seen.extend(split.train.user_ids)
    assert sorted(seen) == sorted(whole.train.user_ids)


def test_a_shard_of_rated_tables_keeps_the_items_above_the_threshold_of_all(tmp_path):
    table = rating_table(400)
    table.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    table.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    spec = DataSpec(str(tmp_path / "train.csv"), test=str(tmp_path / "test.csv"))
    whole, whole_full = load_split(spec.updated(validation_fraction=0.2))
    for shard in range(2):
        split, full, info = load_shard(spec.updated(validation_fraction=0.2), shard, 2, 0.1)
        # Binarised at the default 3.5: the items of the kept ratings of both files.
        np.testing.assert_array_equal(split.item_ids, whole.item_ids)
        assert set(np.unique(full.matrix.data)) == {1.0}
        by_user = dict(zip(whole_full.user_ids, whole_full.matrix))
        for i, user in enumerate(full.user_ids):
            assert (full.matrix[i] != by_user[user]).nnz == 0
        assert split.validation is not None and split.test is not None


def test_only_given_splits_are_sharded(tmp_path):
    with pytest.raises(ConfigError, match="--shard-users splits the users of a given split"):
        load_shard(DataSpec("synthetic"), 0, 2, 0.1)
    path = tmp_path / "ratings.csv"
    rating_table().to_csv(path, index=False)
    with pytest.raises(ConfigError, match="pass --test"):
        load_shard(DataSpec(str(path)), 0, 2, 0.1)


@pytest.mark.parametrize(
    ("model", "changes", "message"),
    [
        ("mult-vae", {"distribute": "none"}, "splits the users among the workers of"),
        ("mult-vae", {"distribute": "mirrored"}, "splits the users among the workers of"),
        ("deep-rec", {}, "deep-rec predicts ratings from statistics of all the ratings"),
        ("cdae", {}, "cdae keeps a node per training user"),
        ("mult-vae", {"metrics": ("coverage@20",)}, "coverage@20 is not an average over users"),
        ("mult-vae", {"monitor": "novelty@10"}, "novelty@10 is not an average over users"),
    ],
)
def test_what_shard_users_cannot_do_is_refused_before_reading(tmp_path, model, changes, message):
    options = {"distribute": "multi-worker", "out": str(tmp_path / "run"), **changes}
    config = RunConfig(model, DataSpec("synthetic"), shard_users=True, verbose=0, **options)
    with pytest.raises(ConfigError, match=message):
        train(config)
    assert not (tmp_path / "run").exists()


def test_sharded_figures_are_the_averages_over_every_workers_users(tmp_path):
    from keras_recae.models import EASE

    spec = DataSpec(str(write_lightgcn(tmp_path / "data", n_users=60)), validation_fraction=0.0)
    whole, _ = load_split(spec)
    model = EASE(l2=10.0)
    model.fit(whole.train)
    metrics = ["recall@5", "ndcg@5", "mrr@5"]
    halves = [whole.test.inputs[:25], whole.test.inputs[25:]]
    targets = [whole.test.targets[:25], whole.test.targets[25:]]
    ids = [whole.test.user_ids[:25], whole.test.user_ids[25:]]
    parts = [EvalSet(a, b, c) for a, b, c in zip(halves, targets, ids)]
    # Two workers simulated: the first half's totals are added to the second's.
    first = combined_ranking(model, parts[0], metrics, lambda totals: totals)
    kept = {}
    combined_ranking(model, parts[0], metrics, lambda totals: kept.setdefault("t", totals))
    both = combined_ranking(model, parts[1], metrics, lambda totals: totals + kept["t"])
    assert both == pytest.approx(evaluate_ranking(model, whole.test, metrics), abs=1e-12)
    assert first == pytest.approx(evaluate_ranking(model, parts[0], metrics), abs=1e-12)
    with pytest.raises(ValueError, match="coverage@5 is not an average of per-user values"):
        combined_ranking(model, parts[0], ["coverage@5"], lambda totals: totals)
