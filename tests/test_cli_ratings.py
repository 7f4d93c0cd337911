"""The command line with explicit-rating models: RMSE and MAE instead of ranking metrics."""

import contextlib
import csv
import io
import json
import math

import numpy as np
import pytest

from keras_recae import cli, runs
from keras_recae.data import synthetic_frame

TINY = ["--epochs", 2, "--batch-size", 64]


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def given_files(tmp_path_factory):
    """A MovieLens-format `base`/`test` pair: ratings 1..5, 10% of them held out."""
    frame = synthetic_frame(n_users=150, n_items=60, density=0.15, seed=3, explicit=True)
    rng = np.random.default_rng(0)
    held = rng.random(len(frame)) < 0.1
    root = tmp_path_factory.mktemp("ml")
    for name, part in (("u1.base", frame[~held]), ("u1.test", frame[held])):
        lines = [
            f"{u}\t{i}\t{int(r)}\t{t}\n"
            for u, i, r, t in part[["user", "item", "rating", "timestamp"]].itertuples(False)
        ]
        (root / name).write_text("".join(lines))
    return root / "u1.base", root / "u1.test"


@pytest.mark.parametrize(
    "model, settings",
    [
        ("autorec", ["--set", "hidden_units=8"]),
        ("auto-rec", ["--set", "hidden_units=8", "--set", "kind=user"]),
        ("deep-rec", ["--set", "hidden_dims=[8,4]", "--set", "dropout=0.5"]),
        ("deep-rec", ["--set", "hidden_dims=[8,4]", "--set", "kind=user"]),
    ],
)
def test_train_on_given_files_reports_rmse_and_mae(given_files, tmp_path, model, settings):
    base, test = given_files
    out = tmp_path / f"{model}-{len(settings)}-{settings[-1]}"
    code, stdout, stderr = run(
        "train", model, "--data", base, "--test", test, *settings, *TINY, "--out", out
    )
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["protocol"] == "given"
    for part in ("validation", "test"):
        assert set(summary[part]) == {"rmse", "mae"}, part
        assert 0 < summary[part]["mae"] <= summary[part]["rmse"] < 4.0, part
    with open(out / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and {"loss", "mse", "val_rmse", "val_mae"} <= set(rows[0])
    assert summary["validation"]["rmse"] == pytest.approx(
        min(float(row["val_rmse"]) for row in rows)
    )

    code, stdout, stderr = run("evaluate", out)
    assert code == 0, stderr
    results = json.loads(stdout)
    assert results["test"] == pytest.approx(summary["test"], rel=1e-5)


def test_random_protocol_export_and_recommend(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = run(
        "train", "autorec", "--data", "synthetic", "--set", "hidden_units=8", *TINY, "--out", out
    )
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["protocol"] == "random"
    assert math.isfinite(summary["test"]["rmse"])

    code, stdout, stderr = run("export", out, "--to", tmp_path / "export", "--k", 5)
    assert code == 0, stderr
    code, stdout, stderr = run(
        "recommend", tmp_path / "export", "--items", "1,2,3", "--ratings", "5,4,1", "--json"
    )
    assert code == 0, stderr
    top = json.loads(stdout)
    assert len(top["item_ids"]) == 5 and not {1, 2, 3} & set(top["item_ids"])
    assert all(1.0 <= score <= 5.0 for score in top["scores"])
    code, _, stderr = run("recommend", tmp_path / "export", "--items", "1,2,3")
    assert code == 2 and "--ratings" in stderr


def test_given_retrain_uses_every_train_rating(given_files, tmp_path):
    base, test = given_files
    out = tmp_path / "retrained"
    code, _, stderr = run(
        "train", "autorec", "--data", base, "--test", test, "--set", "hidden_units=8",
        *TINY, "--retrain", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["reported_model"].startswith("retrained")
    n_train = sum(1 for _ in open(base))
    assert summary["config"]["kind"] == "item"
    model = runs.load_run_model(out)
    assert int(model.n_ratings.numpy()) == n_train
    assert len(model.user_ids) == model.decoder.kernel.shape[1]


def test_full_batches_and_a_decaying_learning_rate(given_files, tmp_path):
    base, test = given_files
    out = tmp_path / "decayed"
    code, _, stderr = run(
        "train", "autorec", "--data", base, "--test", test, "--set", "hidden_units=8",
        "--epochs", 3, "--batch-size", 0, "--lr", 0.02, "--lr-decay", 0.5, "--retrain",
        "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    with open(out / "history.csv", newline="") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    assert rates == pytest.approx([0.02, 0.01, 0.005])
    model = runs.load_run_model(out)
    epochs = json.loads((out / "metrics.json").read_text())["best_epoch"]
    # Full batches of the items: the retrained model took one step an epoch.
    assert int(model.optimizer.iterations.numpy()) == epochs
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02 * 0.5 ** (epochs - 1))


@pytest.mark.parametrize(
    "option, message",
    [
        (["--batch-size", -1], "--batch-size: expected a whole number >= 0, got '-1'"),
        (["--lr-decay", 1.5], "--lr-decay: expected a factor in (0, 1], got '1.5'"),
        (["--lr-decay", "fast"], "--lr-decay: expected a factor in (0, 1], got 'fast'"),
    ],
)
def test_training_options_are_checked(tmp_path, option, message):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stopped:
        cli.main(["train", "autorec", "--data", "synthetic", *map(str, option)])
    assert stopped.value.code == 2 and f"argument {message}" in err.getvalue()
