"""Splits of files streamed by chunks (given, `strong`, `random`, time-based) equal the
splits of whole frames."""

import numpy as np
import pandas as pd
import pytest

from keras_recae.data import streaming
from keras_recae.data.protocols import (
    given_full_train,
    split_given,
    split_leave_last_out,
    split_random,
    split_strong,
    split_temporal,
)
from keras_recae.data.readers import read_given, read_ratings
from keras_recae.data.spec import DataSpec, load_split
from keras_recae.errors import ConfigError


def write_tables(directory, suffix):
    """String users, integer items, ratings 1-5, pairs given twice, a test file."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 30, 500)],
            "item": rng.integers(0, 40, 500),
            "rating": rng.integers(1, 6, 500).astype(float),
        }
    )
    assert frame.duplicated(["user", "item"]).any()
    paths = []
    for name, part in (("train", frame.iloc[:400]), ("test", frame.iloc[400:])):
        path = directory / f"{name}.{suffix}"
        part.to_csv(path, index=False) if suffix == "csv" else part.to_parquet(path)
        paths.append(str(path))
    return paths


def write_log(path, seed, users, items, lines, every, timestamps=False):
    """A CSV or Parquet log (by `path`'s suffix): user ids of both kinds (every `every`-th
    user a string), ratings 1-5, optionally timestamps with ties; pairs given twice."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, lines)
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" if u % every == 0 else str(u) for u in user],
            "item": rng.integers(0, items, lines),
            "rating": rng.integers(1, 6, lines).astype(float),
        }
    )
    if timestamps:
        frame["timestamp"] = rng.integers(0, 300, lines) * 1000
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


def assert_same_split(split, expected):
    """The same ids, train matrix and held-out users (each part non-empty)."""
    np.testing.assert_array_equal(split.item_ids, expected.item_ids)
    np.testing.assert_array_equal(split.train.user_ids, expected.train.user_ids)
    assert (split.train.matrix != expected.train.matrix).nnz == 0
    for part in ("validation", "test"):
        assert getattr(split, part).n_users > 0
        assert getattr(split, part).digest() == getattr(expected, part).digest()


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 lines: ids of a user and a pair's two lines fall in different chunks."""
    chunked = streaming.iter_ratings

    def read(*args, **kwargs):
        return chunked(*args, **{**kwargs, "chunk_rows": 7})

    monkeypatch.setattr(streaming, "iter_ratings", read)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("explicit", [False, True])
def test_a_streamed_given_split_is_the_split_of_the_whole_frames(
    tmp_path, small_chunks, suffix, explicit
):
    train, test = write_tables(tmp_path, suffix)
    split, full = load_split(DataSpec(train, test=test, seed=3), explicit=explicit)
    frames = read_given(train, test)
    threshold = None if explicit else 3.5
    expected = split_given(*frames, binarize_threshold=threshold, validation_fraction=0.1, seed=3)
    np.testing.assert_array_equal(split.item_ids, expected.item_ids)
    np.testing.assert_array_equal(split.train.user_ids, expected.train.user_ids)
    assert (split.train.matrix != expected.train.matrix).nnz == 0
    for part in ("validation", "test"):
        assert getattr(split, part).digest() == getattr(expected, part).digest()
    whole = given_full_train(*frames, binarize_threshold=threshold)
    assert (full.matrix != whole.matrix).nnz == 0
    # Ratings of implicit models are binarised to 1.
    assert set(np.unique(full.matrix.data)) <= ({1.0} if not explicit else {1, 2, 3, 4, 5})


def test_ids_of_both_kinds_across_chunks_make_one_vocabulary():
    parts = [np.array([12, 3]), np.array(["012", "a"], dtype=object), np.array([7])]
    vocabulary = streaming.vocabulary(parts)
    assert list(vocabulary) == sorted(["12", "3", "012", "a", "7"])
    assert streaming.vocabulary([np.array(["12", "3"], dtype=object), np.array([5])]).tolist() == [
        3,
        5,
        12,
    ]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("threshold", [None, 2.5])
def test_a_streamed_strong_split_is_the_split_of_the_whole_frame(
    tmp_path, small_chunks, suffix, threshold
):
    # Users of both kinds of ids (chunks of integers only, and of strings), pairs twice.
    path = write_log(tmp_path / f"ratings.{suffix}", 4, users=60, items=50, lines=1500, every=3)
    spec = DataSpec(str(path), protocol="strong", heldout_users=8, threshold=threshold)
    split, full = load_split(spec)
    assert full is None
    expected = split_strong(read_ratings(str(path)), n_heldout_users=8, threshold=threshold or 3.5)
    assert_same_split(split, expected)
    # The ids are the file's: strings and integers in one string vocabulary.
    assert {"u3", "1"} <= set(split.train.user_ids) | set(split.test.user_ids)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("explicit", [False, True])
def test_a_streamed_random_split_is_the_split_of_the_whole_frame(
    tmp_path, small_chunks, suffix, explicit
):
    train, _ = write_tables(tmp_path, suffix)
    spec = DataSpec(train, protocol="random", validation_fraction=0.2, seed=5)
    split, full = load_split(spec, explicit=explicit)
    assert full is None
    frame = read_ratings(train)
    if not explicit:
        # An implicit model keeps the lines rated above 3.5, as 1.0.
        frame = frame[frame["rating"] > 3.5].assign(rating=1.0)
    expected = split_random(frame, test_fraction=0.1, validation_fraction=0.2, seed=5)
    assert_same_split(split, expected)
    values = set(np.unique(split.train.matrix.data))
    assert values == ({1.0} if not explicit else {1, 2, 3, 4, 5})


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("protocol", ["temporal", "leave-last-out"])
@pytest.mark.parametrize("explicit", [False, True])
def test_a_streamed_time_split_is_the_split_of_the_whole_frame(
    tmp_path, small_chunks, suffix, protocol, explicit
):
    # Ids of both kinds, timestamps with ties and out of file order, pairs given twice.
    path = write_log(
        tmp_path / f"log.{suffix}", 6, users=40, items=60, lines=1200, every=4, timestamps=True
    )
    split, full = load_split(DataSpec(str(path), protocol=protocol), explicit=explicit)
    whole = read_ratings(str(path))
    threshold = None if explicit else 3.5
    if protocol == "temporal":
        expected, expected_full = split_temporal(
            whole, cut=0.8, validation_fraction=0.1, threshold=threshold
        )
    else:
        expected, expected_full = split_leave_last_out(whole, n=1, threshold=threshold)
    assert_same_split(split, expected)
    np.testing.assert_array_equal(full.user_ids, expected_full.user_ids)
    assert (full.matrix != expected_full.matrix).nnz == 0
    assert {"u4", "1"} <= set(split.train.user_ids)


def test_a_streamed_file_without_timestamps_is_refused_by_name(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"user": [1, 2, 3], "item": [4, 5, 6], "rating": [5.0, 4.0, 3.0]}).to_csv(
        path, index=False
    )
    with pytest.raises(
        ConfigError, match=r"pairs\.csv: --protocol temporal orders .* no timestamps"
    ):
        load_split(DataSpec(str(path), protocol="temporal"))
