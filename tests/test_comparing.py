"""`keras-recae compare`: paired tests of two runs' per-user metrics."""

import contextlib
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from keras_recae import cli
from keras_recae.comparing import compare_runs
from keras_recae.data.spec import DataSpec
from keras_recae.errors import ConfigError
from keras_recae.training import RunConfig, train


def fake_run(directory, users, values, digest="same", metric="ndcg@20"):
    """A run directory as `train` leaves it, as far as `compare` reads it."""
    directory.mkdir(parents=True)
    (directory / "metrics.json").write_text(json.dumps({"split_digests": {"test": digest}}))
    frame = pd.DataFrame({"user_id": users, metric: values})
    frame.to_csv(directory / "test_users.csv.gz", index=False, compression="gzip")
    return directory


def test_users_are_paired_by_id_and_the_tests_match_their_definitions(tmp_path):
    rng = np.random.default_rng(0)
    users = np.array([f"{n:03d}" for n in range(300)])
    a = rng.random(300)
    b = a + 0.05 + rng.normal(0.0, 0.1, 300)
    order = rng.permutation(300)  # B lists its users in another order
    run_a = fake_run(tmp_path / "a", users, a)
    run_b = fake_run(tmp_path / "b", users[order], b[order])
    result = compare_runs(run_a, run_b, resamples=2000)
    differences = b - a
    n = len(differences)
    assert result["users"] == n
    assert result["difference"] == pytest.approx(differences.mean())
    assert result["relative"] == pytest.approx(differences.mean() / a.mean())
    # The paired t statistic from its formula.
    t = differences.mean() / (differences.std(ddof=1) / math.sqrt(n))
    assert result["t_statistic"] == pytest.approx(t)
    # The signed-rank statistic: the smaller of the positive and negative rank sums.
    ranks = pd.Series(np.abs(differences)).rank().to_numpy()
    expected_w = min(ranks[differences > 0].sum(), ranks[differences < 0].sum())
    assert result["wilcoxon_statistic"] == pytest.approx(expected_w)
    assert result["t_pvalue"] < 1e-6 and result["wilcoxon_pvalue"] < 1e-6
    # The interval holds the mean difference and has about the normal width.
    half_width = 1.96 * differences.std(ddof=1) / math.sqrt(n)
    assert result["ci_low"] < differences.mean() < result["ci_high"]
    assert result["ci_high"] - result["ci_low"] == pytest.approx(2 * half_width, rel=0.15)
    # Users are matched by id, not by line: a mismatched pairing gives another difference.
    assert compare_runs(run_b, run_a, resamples=100)["difference"] == pytest.approx(
        -differences.mean()
    )


def test_identical_runs_show_no_difference(tmp_path):
    users = [str(n) for n in range(20)]
    values = np.linspace(0.0, 1.0, 20)
    result = compare_runs(
        fake_run(tmp_path / "a", users, values), fake_run(tmp_path / "b", users, values)
    )
    assert result["difference"] == 0.0 and result["wilcoxon_pvalue"] == 1.0
    assert result["ci_low"] == result["ci_high"] == 0.0


def test_runs_of_different_splits_are_refused(tmp_path):
    run_a = fake_run(tmp_path / "a", ["1", "2"], [0.1, 0.2], digest="one split")
    run_b = fake_run(tmp_path / "b", ["1", "2"], [0.3, 0.2], digest="another split")
    with pytest.raises(ConfigError, match="evaluated on different test splits"):
        compare_runs(run_a, run_b)


def test_errors_name_the_file_and_what_is_missing(tmp_path):
    run_a = fake_run(tmp_path / "a", ["1", "2"], [0.1, 0.2])
    run_b = fake_run(tmp_path / "b", ["1", "3"], [0.3, 0.2])
    with pytest.raises(ConfigError, match="has no 'mrr@20' column. Its metrics: ndcg@20"):
        compare_runs(run_a, run_b, metric="mrr@20")
    with pytest.raises(ConfigError, match="different test users"):
        compare_runs(run_a, run_b)
    with pytest.raises(ConfigError, match="no digest of a validation part"):
        compare_runs(run_a, run_b, part="validation")
    with pytest.raises(ConfigError, match="not a finished run directory"):
        compare_runs(tmp_path / "a", tmp_path / "nowhere")


def test_compare_two_trained_runs_from_the_command_line(tmp_path):
    """Two EASE runs of one split: their files pair up, and the CLI prints the tests."""
    for name, l2 in (("weak", 1e4), ("strong", 10.0)):
        with contextlib.redirect_stdout(io.StringIO()):
            train(
                RunConfig(
                    "ease",
                    DataSpec("synthetic"),
                    {"l2": l2},
                    out=str(tmp_path / name),
                    metrics=("ndcg@20", "mrr@20", "coverage@20", "novelty@20"),
                    verbose=0,
                )
            )
    users = pd.read_csv(tmp_path / "strong" / "test_users.csv.gz")
    summary = json.loads((tmp_path / "strong" / "metrics.json").read_text())
    # The per-user file averages to the summary; coverage has no per-user value.
    assert list(users.columns) == ["user_id", "ndcg@20", "mrr@20", "novelty@20"]
    for metric in ("ndcg@20", "mrr@20", "novelty@20"):
        assert users[metric].mean() == pytest.approx(summary["test"][metric])
    assert 0.0 < summary["test"]["coverage@20"] <= 1.0
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = cli.main(
            ["compare", str(tmp_path / "weak"), str(tmp_path / "strong"), "--metric", "mrr@20",
             "--resamples", "500", "--json"]
        )  # fmt: skip
    assert code == 0
    result = json.loads(output.getvalue())
    assert result["users"] == len(users)
    assert result["mean_b"] == pytest.approx(summary["test"]["mrr@20"])
    # Another data seed is another split: refused with a one-line error.
    with contextlib.redirect_stdout(io.StringIO()):
        train(
            RunConfig(
                "ease",
                DataSpec("synthetic", seed=5),
                {"l2": 10.0},
                out=str(tmp_path / "other"),
                verbose=0,
            )
        )
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = cli.main(["compare", str(tmp_path / "weak"), str(tmp_path / "other")])
    assert code != 0 and "different test splits" in errors.getvalue()
