"""`temporal` and `leave-last-out`: splits by time, checked row by row against pandas."""

import numpy as np
import pandas as pd
import pytest

from keras_recae.data.protocols import split_leave_last_out, split_temporal
from keras_recae.data.spec import DataSpec, load_split
from keras_recae.errors import ConfigError


def log_frame(seed=0, n_users=40, n_items=30, n_rows=600):
    """A log: users and items at random, times increasing with ties, some repeated pairs."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user": rng.integers(1, n_users + 1, n_rows),
            "item": rng.integers(1, n_items + 1, n_rows),
            "rating": rng.integers(1, 6, n_rows).astype(np.float32),
            "timestamp": np.sort(rng.integers(10**9, 10**9 + 10**6, n_rows)),
        }
    )
    # Rows out of time order in the file, as real logs have.
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def pairs_of(eval_set, item_ids, part):
    """{user id: set of item ids} of an evaluation set's inputs or targets."""
    matrix = getattr(eval_set, part).tocsr()
    return {
        user: {item_ids[c] for c in matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]}
        for r, user in enumerate(eval_set.user_ids)
    }


def test_temporal_cut_by_share_matches_a_pandas_split():
    frame = log_frame()
    split, full = split_temporal(frame, cut=0.7, validation_fraction=0.2)
    times = np.sort(frame["timestamp"].to_numpy())
    cut = times[int(round(0.7 * len(times)))]
    before, after = frame[frame["timestamp"] < cut], frame[frame["timestamp"] >= cut]
    item_ids = list(full.item_ids)
    assert set(item_ids) == set(before["item"])
    assert full.nnz == len(before.drop_duplicates(["user", "item"]))
    # A pair given twice keeps the rating of its last line in the file.
    last = before.drop_duplicates(["user", "item"], keep="last")
    rows = np.searchsorted(full.user_ids, last["user"].to_numpy())
    columns = np.searchsorted(full.item_ids, last["item"].to_numpy())
    np.testing.assert_array_equal(np.asarray(full.matrix[rows, columns]).ravel(), last["rating"])
    # Test users: those with rows on both sides; input = before, targets = after - before.
    test_inputs = pairs_of(split.test, item_ids, "inputs")
    test_targets = pairs_of(split.test, item_ids, "targets")
    for user, rows in after.groupby("user"):
        history = set(before.loc[before["user"] == user, "item"])
        if not history:
            assert user not in test_inputs  # appears only after the cut: cold, left out
            continue
        later = set(rows["item"]) - history
        known = later & set(item_ids)
        if not later:
            assert user not in test_inputs
            continue
        assert test_inputs[user] == history
        assert test_targets[user] == known
        position = list(split.test.user_ids).index(user)
        assert split.test.extra_targets[position] == len(rows[~rows["item"].isin(item_ids)])
    # Validation: the latest 20% of the train part, inputs the rows before its own cut.
    train_times = np.sort(before["timestamp"].to_numpy())
    validation_cut = train_times[int(round(0.8 * len(train_times)))]
    selection = before[before["timestamp"] < validation_cut]
    assert split.train.nnz == len(selection.drop_duplicates(["user", "item"]))
    validation_inputs = pairs_of(split.validation, item_ids, "inputs")
    for user in split.validation.user_ids:
        assert validation_inputs[user] == set(selection.loc[selection["user"] == user, "item"])
    assert split.protocol == "temporal"


def test_temporal_cut_by_date_and_errors():
    frame = log_frame()
    middle = pd.Timestamp(int(frame["timestamp"].median()), unit="s", tz="UTC")
    split, full = split_temporal(frame, cut=middle.isoformat(), validation_fraction=0.0)
    assert split.validation is None and split.train.nnz == full.nnz
    assert full.nnz == len(
        frame[frame["timestamp"] < int(middle.timestamp())].drop_duplicates(["user", "item"])
    )
    with pytest.raises(ValueError, match="leaves no interaction on one side"):
        split_temporal(frame, cut="1990-01-01")
    with pytest.raises(ValueError, match="a fraction in \\(0, 1\\) or a date"):
        split_temporal(frame, cut="soon")
    with pytest.raises(ValueError, match="`cut` should be in \\(0, 1\\)"):
        split_temporal(frame, cut=1.5)
    with pytest.raises(ValueError, match="this data has no timestamps"):
        split_temporal(frame.drop(columns="timestamp"))


@pytest.mark.parametrize("n", [1, 2])
def test_leave_last_out_matches_a_pandas_split(n):
    frame = log_frame(seed=3).drop_duplicates(["user", "item"], keep="last")
    split, full = split_leave_last_out(frame, n=n)
    item_ids = list(full.item_ids)
    # Stable order by time, then file order: the last n per user are the test rows.
    ordered = frame.reset_index().sort_values(["timestamp", "index"], kind="stable")
    test_inputs = pairs_of(split.test, item_ids, "inputs")
    test_targets = pairs_of(split.test, item_ids, "targets")
    validation_inputs = pairs_of(split.validation, item_ids, "inputs")
    validation_targets = pairs_of(split.validation, item_ids, "targets")
    for user, rows in ordered.groupby("user", sort=False):
        items = list(rows["item"])
        if len(items) <= n:
            assert user not in test_inputs and user not in validation_inputs
            continue
        assert test_inputs[user] == set(items[:-n])
        assert test_targets[user] == set(items[-n:]) & set(item_ids)
        if len(items) <= 2 * n:
            assert user not in validation_inputs
            continue
        assert validation_inputs[user] == set(items[: -2 * n])
        assert validation_targets[user] == set(items[-2 * n : -n])
    assert split.train.nnz == full.nnz - sum(len(v) for v in validation_targets.values())


def test_time_protocols_from_a_file_and_their_errors(tmp_path):
    path = tmp_path / "log.csv"
    log_frame().to_csv(path, index=False)
    split, full = load_split(DataSpec(str(path), protocol="leave-last-out", last_n=2))
    assert split.protocol == "leave-last-out" and full is not None
    assert set(np.diff(split.test.targets.indptr)) <= {1, 2}
    split, _ = load_split(DataSpec(str(path), protocol="temporal", time_cut="0.5"))
    assert split.protocol == "temporal"
    untimed = tmp_path / "untimed.csv"
    log_frame().drop(columns="timestamp").to_csv(untimed, index=False)
    with pytest.raises(ConfigError, match=f"{untimed}: --protocol temporal orders"):
        load_split(DataSpec(str(untimed), protocol="temporal"))
    with pytest.raises(ConfigError, match="--time-cut is for --protocol temporal"):
        DataSpec(str(path), protocol="strong", time_cut="0.5")


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            DataSpec("synthetic", time_cut="0.5"),
            "--time-cut is for --protocol temporal; this run's protocol is strong",
        ),
        (
            DataSpec("synthetic", last_n=2),
            "--last-n is for --protocol leave-last-out; this run's protocol is strong",
        ),
    ],
)
def test_a_flag_of_another_protocol_is_refused_once_the_protocol_is_known(spec, message):
    """Left out, `--protocol` is known only from the data: a flag of another protocol is an
    error then too, not a flag silently ignored."""
    with pytest.raises(ConfigError, match=message):
        load_split(spec)
