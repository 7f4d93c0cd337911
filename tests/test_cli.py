import contextlib
import csv
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_recae import cli, runs, training
from keras_recae.errors import ConfigError
from keras_recae.models import EASE, MultDAE, MultVAE, registry

TINY_VAE = ["--set", "hidden_dims=[32,8]", "--batch-size", "100"]
TEST_METRICS = {"recall@20", "ndcg@20", "ndcg@100", "truncated_recall@50"}
SUMMARY_KEYS = {
    "model",
    "data",
    "protocol",
    "epochs_run",
    "best_epoch",
    "seconds_per_epoch",
    "train_seconds",
    "validation",
    "test",
}


def run(*args) -> tuple[int, str, str]:
    """`keras-recae ARGS` in this process: the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mult-vae"
    code, stdout, stderr = run(
        "train", "mult-vae", "--data", "synthetic", *TINY_VAE, "--epochs", 3, "--out", out
    )
    assert code == 0, stderr
    return out


def test_train_writes_the_model_history_and_metrics(vae_run):
    names = {path.name for path in vae_run.iterdir()}
    assert {"history.csv", "metrics.json", "model.keras", "run.json"} <= names
    assert "backup" not in names
    summary = read_json(vae_run / "metrics.json")
    assert SUMMARY_KEYS <= set(summary)
    assert (summary["model"], summary["data"], summary["protocol"]) == (
        "mult-vae",
        "synthetic",
        "strong",
    )
    assert summary["epochs_run"] == 3
    assert summary["train_seconds"] == pytest.approx(3 * summary["seconds_per_epoch"])
    assert TEST_METRICS <= set(summary["test"])
    assert all(0.0 <= value <= 1.0 for value in summary["test"].values())
    assert summary["config"]["hidden_dims"] == [32, 8]

    history = read_history(vae_run)
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    assert all(math.isfinite(float(row["loss"])) for row in history)
    # The reported model is the epoch with the best validation NDCG@100.
    ndcg = [float(row["val_ndcg@100"]) for row in history]
    assert summary["best_epoch"] == int(np.argmax(ndcg)) + 1
    best = history[summary["best_epoch"] - 1]
    for name, value in summary["validation"].items():
        assert float(best[f"val_{name}"]) == pytest.approx(value)

    model = keras.saving.load_model(vae_run / "model.keras")
    assert type(model) is MultVAE
    assert model.get_config() == summary["config"]
    assert model.n_items == summary["n_items"] == len(model.item_ids)
    assert model.item_ids.dtype == np.int64
    assert read_json(vae_run / "run.json")["settings"]["hidden_dims"] == [32, 8]


def test_evaluate_prints_the_metrics_of_the_run(vae_run, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(vae_run)]) == 0
    results = json.loads(capsys.readouterr().out)
    summary = read_json(vae_run / "metrics.json")
    assert results["protocol"] == "strong"
    assert results["test"] == pytest.approx(summary["test"])
    assert results["validation"] == pytest.approx(summary["validation"])


def test_refuses_to_overwrite_a_finished_run(vae_run):
    before = {name: (vae_run / name).read_bytes() for name in ("model.keras", "metrics.json")}
    code, _, stderr = run("train", "mult-vae", "--data", "synthetic", "--out", vae_run)
    assert code == 2
    assert (
        f"keras-recae train: error: {vae_run} already holds a finished run (metrics.json); "
        "choose another --out or remove it"
    ) in stderr
    assert {name: (vae_run / name).read_bytes() for name in before} == before


def test_unknown_model(tmp_path):
    code, _, stderr = run("train", "mult-foo", "--data", "synthetic", "--out", tmp_path / "run")
    assert code == 2
    assert "keras-recae train: error: unknown model 'mult-foo'. Models: " in stderr
    assert all(name in stderr for name in ("mult-vae", "mult-dae", "ease"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setting, message",
    [
        ("dropuot=0.1", "--set dropuot: MultVAE has no argument 'dropuot'. Its arguments: "),
        ("hidden_dims", "--set expects name=value. Received: 'hidden_dims'"),
    ],
)
def test_bad_set_names(tmp_path, setting, message):
    out = tmp_path / "run"
    code, _, stderr = run(
        "train", "mult-vae", "--data", "synthetic", "--set", setting, "--out", out
    )
    assert code == 2
    assert f"keras-recae train: error: {message}" in stderr
    assert not out.exists()


def test_bad_set_values_are_reported_without_a_traceback(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = run(
        "train", "mult-vae", "--data", "synthetic", "--set", "dropout=1.5", "--out", out
    )
    assert code == 2
    assert "`dropout` should be in [0, 1). Received: dropout=1.5" in stderr
    assert not (out / "model.keras").exists()


def test_train_ease(tmp_path):
    out = tmp_path / "ease"
    code, _, stderr = run("train", "ease", "--data", "synthetic", "--set", "l2=10", "--out", out)
    assert code == 0, stderr
    summary = read_json(out / "metrics.json")
    assert SUMMARY_KEYS <= set(summary)
    assert (summary["model"], summary["protocol"]) == ("ease", "strong")
    assert summary["epochs_run"] == 0 and summary["best_epoch"] is None
    assert TEST_METRICS <= set(summary["test"]) and TEST_METRICS <= set(summary["validation"])
    model = keras.saving.load_model(out / "model.keras")
    assert type(model) is EASE and model.l2 == 10.0
    assert summary["config"]["l2"] == 10.0


def independent_test_metrics(model, train_pairs, test_pairs, k=20):
    """Recall@k and NDCG@k of a given split, computed from the pairs and the model's scores.

    Every user's input is their whole train row, whose items are left out of the ranking.
    """
    column = {item: index for index, item in enumerate(model.item_ids.tolist())}
    users = sorted({user for user, _ in test_pairs})
    history = np.zeros((len(users), len(column)), np.float32)
    row = {user: index for index, user in enumerate(users)}
    for user, item in train_pairs:
        if user in row:
            history[row[user], column[item]] = 1.0
    scores = model(tf.sparse.from_dense(history), training=False).numpy().astype(np.float64)
    scores[history > 0] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    recalls, ndcgs = [], []
    for user in users:
        relevant = {column[item] for u, item in test_pairs if u == user}
        hits = [int(item) in relevant for item in top[row[user]]]
        recalls.append(sum(hits) / len(relevant))
        dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
        ndcgs.append(dcg / ideal)
    return {"recall@20": np.mean(recalls), "ndcg@20": np.mean(ndcgs)}


def test_given_split_from_a_lightgcn_directory(tmp_path):
    rng = np.random.default_rng(0)
    train_pairs, test_pairs = [], []
    lines = {"train.txt": [], "test.txt": []}
    for user in range(30):
        items = rng.choice(40, size=11, replace=False)
        train_pairs += [(user, int(item)) for item in items[:8]]
        test_pairs += [(user, int(item)) for item in items[8:]]
        lines["train.txt"].append(" ".join(map(str, [user, *items[:8]])))
        lines["test.txt"].append(" ".join(map(str, [user, *items[8:]])))
    data = tmp_path / "split"
    data.mkdir()
    for name, content in lines.items():
        (data / name).write_text("\n".join(content) + "\n")
    out = tmp_path / "run"
    code, _, stderr = run(
        "train",
        "mult-dae",
        "--data",
        data,
        "--set",
        "hidden_dims=[16]",
        "--epochs",
        2,
        "--batch-size",
        16,
        "--out",
        out,
    )
    assert code == 0, stderr
    summary = read_json(out / "metrics.json")
    assert summary["protocol"] == "given"
    assert (summary["n_users"], summary["n_items"]) == (30, 40)
    assert summary["epochs_run"] == 2 and len(read_history(out)) == 2
    model = keras.saving.load_model(out / "model.keras")
    assert type(model) is MultDAE
    assert model.item_ids.tolist() == sorted({item for _, item in train_pairs + test_pairs})
    expected = independent_test_metrics(model, train_pairs, test_pairs)
    assert summary["test"]["recall@20"] == pytest.approx(expected["recall@20"])
    assert summary["test"]["ndcg@20"] == pytest.approx(expected["ndcg@20"])


def test_given_split_from_movielens_base_and_test_files(tmp_path):
    rng = np.random.default_rng(1)
    rows = {"u1.base": [], "u1.test": []}
    for user in range(1, 26):
        items = rng.choice(np.arange(1, 61), size=16, replace=False)
        ratings = rng.integers(1, 6, size=16)
        for position, (item, rating) in enumerate(zip(items, ratings)):
            name = "u1.base" if position < 12 else "u1.test"
            rows[name].append((user, int(item), int(rating)))
    for name, content in rows.items():
        text = "".join(f"{u}\t{i}\t{r}\t{880000000 + n}\n" for n, (u, i, r) in enumerate(content))
        (tmp_path / name).write_text(text)
    out = tmp_path / "run"
    code, _, stderr = run(
        "train",
        "ease",
        "--data",
        tmp_path / "u1.base",
        "--test",
        tmp_path / "u1.test",
        "--set",
        "l2=10",
        "--out",
        out,
    )
    assert code == 0, stderr
    summary = read_json(out / "metrics.json")
    assert summary["protocol"] == "given"
    # Implicit models keep the ratings above 3.5.
    train_pairs = [(u, i) for u, i, r in rows["u1.base"] if r > 3.5]
    test_pairs = [(u, i) for u, i, r in rows["u1.test"] if r > 3.5]
    model = keras.saving.load_model(out / "model.keras")
    assert model.item_ids.tolist() == sorted({item for _, item in train_pairs + test_pairs})
    expected = independent_test_metrics(model, train_pairs, test_pairs)
    assert summary["test"]["recall@20"] == pytest.approx(expected["recall@20"])
    assert summary["test"]["ndcg@20"] == pytest.approx(expected["ndcg@20"])


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["train", "mult-vae", "--data", "synthetic", *TINY_VAE, "--out", out]
    # Simulate a run killed after its second epoch: the backup survives, no model is written.
    monkeypatch.setattr(training, "discard_backup", lambda run_dir: None)
    code, _, stderr = run(*args, "--epochs", 2)
    assert code == 0, stderr
    monkeypatch.undo()
    assert (out / "backup").is_dir()
    (out / "model.keras").unlink()
    (out / "metrics.json").unlink()
    first_epochs = read_history(out)

    code, _, stderr = run(*args, "--epochs", 4)
    assert code == 0, stderr
    history = read_history(out)
    assert [int(row["epoch"]) for row in history] == [0, 1, 2, 3]
    assert history[:2] == first_epochs

    # It ends where the same run never interrupted ends: each epoch's row order, dropout
    # and sampling are functions of the seed and the epoch, not of when the process began.
    whole = tmp_path / "whole"
    code, _, stderr = run(*args[:-1], whole, "--epochs", 4)
    assert code == 0, stderr
    for resumed_row, whole_row in zip(history, read_history(whole)):
        assert {k: v for k, v in resumed_row.items() if k != "seconds"} == {
            k: v for k, v in whole_row.items() if k != "seconds"
        }
    resumed_weights = keras.saving.load_model(out / "model.keras").get_weights()
    whole_weights = keras.saving.load_model(whole / "model.keras").get_weights()
    for resumed_array, whole_array in zip(resumed_weights, whole_weights, strict=True):
        np.testing.assert_array_equal(resumed_array, whole_array)
    summary = read_json(out / "metrics.json")
    assert summary["epochs_run"] == 4
    assert not (out / "backup").exists()

    # The optimizer's step counter carried on: the annealed beta of epoch e averages
    # min(0.2, step / 200000) over its steps, which the restarted counter would not give.
    steps = math.ceil(summary["n_users"] / 100)
    for epoch, row in enumerate(history):
        expected = np.mean(np.arange(epoch * steps, (epoch + 1) * steps)) / 200_000
        assert float(row["beta"]) == pytest.approx(expected, rel=1e-5)
    model = keras.saving.load_model(out / "model.keras")
    assert int(model.optimizer.iterations) == 4 * steps
    # The best epoch is chosen over the four epochs, the two of the first run included.
    ndcg = [float(row["val_ndcg@100"]) for row in history]
    assert summary["best_epoch"] == int(np.argmax(ndcg)) + 1
    assert summary["validation"]["ndcg@100"] == pytest.approx(max(ndcg))


def test_a_run_killed_with_sigkill_resumes_to_the_weights_of_one_never_killed(tmp_path):
    args = [
        "train", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[16]",
        "--batch-size", "100", "--epochs", "8",
    ]  # fmt: skip
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_recae.cli", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    # Killed in its third epoch or later, wherever it is: training, evaluating, backing up.
    history = killed / "history.csv"
    deadline = time.monotonic() + 240
    while not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (killed / "model.keras").exists() and not (killed / "metrics.json").exists()

    code, _, stderr = run(*args, "--out", killed)
    assert code == 0, stderr
    code, _, stderr = run(*args, "--out", tmp_path / "whole")
    assert code == 0, stderr

    def figures(run_dir):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(run_dir)]

    assert figures(killed) == figures(tmp_path / "whole")
    resumed = runs.load_run_model(killed).get_weights()
    whole = runs.load_run_model(tmp_path / "whole").get_weights()
    for resumed_array, whole_array in zip(resumed, whole, strict=True):
        np.testing.assert_array_equal(resumed_array, whole_array)
    assert (
        read_json(killed / "metrics.json")["validation"]
        == read_json(tmp_path / "whole" / "metrics.json")["validation"]
    )


def test_a_nan_loss_fails_without_writing_a_model_and_can_be_rerun(tmp_path):
    out = tmp_path / "run"
    args = ["train", "mult-vae", "--data", "synthetic", *TINY_VAE, "--epochs", 1, "--out", out]
    # Adam moves every weight by about the learning rate at the first step: 1e38 overflows.
    code, _, stderr = run(*args, "--lr", "1e38")
    assert code == 1
    assert (
        "error: the loss became NaN at epoch 1; no model was written. Lower the learning "
        "rate (--lr) or check the data."
    ) in stderr
    assert not (out / "model.keras").exists()
    assert not (out / "metrics.json").exists()

    # Following the advice, the same command with a sane learning rate trains from scratch.
    code, _, stderr = run(*args, "--lr", "1e-3")
    assert code == 0, stderr
    history = read_history(out)
    assert len(history) == 1 and math.isfinite(float(history[0]["loss"]))
    assert read_json(out / "metrics.json")["epochs_run"] == 1
    model = keras.saving.load_model(out / "model.keras")
    assert all(np.isfinite(weight).all() for weight in model.get_weights())


def test_evaluate_needs_a_model_and_the_data(vae_run, tmp_path):
    code, _, stderr = run("evaluate", tmp_path)
    assert code == 2
    assert f"keras-recae evaluate: error: {tmp_path}: no model.keras here" in stderr
    shutil.copy(vae_run / "model.keras", tmp_path / "model.keras")
    code, _, stderr = run("evaluate", tmp_path)
    assert code == 2
    assert f"--data is needed: {tmp_path} has no run.json naming the data" in stderr


def test_a_missing_data_file_is_named(tmp_path):
    missing = tmp_path / "ratings.csv"
    code, _, stderr = run("train", "ease", "--data", missing, "--out", tmp_path / "run")
    assert code == 2
    assert f"keras-recae train: error: {missing}: no such file or directory." in stderr


def test_mult_vae_with_a_fixed_beta(tmp_path):
    out = tmp_path / "beta-vae"
    code, _, stderr = run(
        "train",
        "mult-vae",
        "--data",
        "synthetic",
        *TINY_VAE,
        "--set",
        "beta=0.3",
        "--epochs",
        2,
        "--out",
        out,
    )
    assert code == 0, stderr
    history = read_history(out)
    assert [float(row["beta"]) for row in history] == pytest.approx([0.3, 0.3])
    for row in history:
        expected = float(row["nll"]) + 0.3 * float(row["kl"])
        assert float(row["loss"]) == pytest.approx(expected, rel=1e-5)
    assert read_json(out / "metrics.json")["config"]["beta"] == 0.3


def test_the_implicit_zoo_is_on_the_command_line():
    from keras_recae.models import CDAE, Autoencoder, DenoisingAutoencoder, RecVAE

    classes = registry.model_classes()
    assert classes["rec-vae"] is RecVAE and classes["cdae"] is CDAE
    assert classes["autoencoder"] is Autoencoder
    assert classes["denoising-autoencoder"] is DenoisingAutoencoder


def test_train_rec_vae_alternates_its_passes_within_each_epoch(tmp_path):
    from keras_recae.models import RecVAE

    out = tmp_path / "rec-vae"
    tiny = ["--set", "hidden_dim=32", "--set", "latent_dim=8", "--set", "n_layers=2"]
    code, _, stderr = run(
        "train",
        "rec-vae",
        "--data",
        "synthetic",
        *tiny,
        "--batch-size",
        400,
        "--epochs",
        2,
        "--out",
        out,
    )
    assert code == 0, stderr
    summary = read_json(out / "metrics.json")
    assert summary["n_users"] == 800 and summary["epochs_run"] == 2
    assert TEST_METRICS <= set(summary["test"])
    history = read_history(out)
    assert len(history) == 2 and {"loss", "nll", "kl"} <= set(history[0])
    model = keras.saving.load_model(out / "model.keras")
    assert type(model) is RecVAE and model.hidden_dim == 32
    # 800 users in batches of 400 make 2 steps a pass; an epoch is 3 encoder passes and
    # 1 decoder pass.
    assert int(model.optimizer.iterations) == 2 * 2 * 3
    assert int(model.decoder_optimizer.iterations) == 2 * 2 * 1


def test_train_cdae_learns_a_node_per_training_user(tmp_path):
    from keras_recae.models import CDAE

    out = tmp_path / "cdae"
    code, _, stderr = run(
        "train",
        "cdae",
        "--data",
        "synthetic",
        "--set",
        "hidden_dim=16",
        "--set",
        "negative_ratio=3",
        "--epochs",
        1,
        "--out",
        out,
    )
    assert code == 0, stderr
    summary = read_json(out / "metrics.json")
    assert TEST_METRICS <= set(summary["test"])
    model = keras.saving.load_model(out / "model.keras")
    assert type(model) is CDAE and model.negative_ratio == 3
    assert model.n_users == len(model.user_ids) == summary["n_users"] == 800
    assert model.user_ids.dtype == np.int64
    assert np.all(np.diff(model.user_ids) > 0) and set(model.user_ids) <= set(range(1, 1001))


def test_full_batches_take_one_step_an_epoch(tmp_path):
    out = tmp_path / "full"
    code, _, stderr = run(
        "train", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[16]",
        "--batch-size", 0, "--epochs", 2, "--lr-decay", 0.9, "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    model = runs.load_run_model(out)
    assert int(model.optimizer.iterations.numpy()) == 2
    rates = [float(row["learning_rate"]) for row in read_history(out)]
    assert rates == pytest.approx([MultDAE.default_lr, 0.9 * MultDAE.default_lr])


def test_a_resumed_run_starts_at_the_epoch_of_its_backup(tmp_path):
    assert training.resumed_epoch(tmp_path) == 0
    (tmp_path / "training_metadata.json").write_text('{"epoch": 2}')
    assert training.resumed_epoch(tmp_path) == 2


def test_history_rows_of_uncommitted_epochs_are_dropped(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n")
    training.keep_history_rows(history, 2)
    assert history.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"
    training.keep_history_rows(history, 0)
    assert history.read_text() == "epoch,loss\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_a_misspelt_metric_is_a_usage_error_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ease", "--data", "synthetic", "--metrics", "ndcg@20,mmr@20",
                  "--out", str(tmp_path / "run")])  # fmt: skip
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --metrics: Unknown metric 'mmr@20'" in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "-1"], "argument --lr: expected a number > 0"),
        (["--epochs", "0"], "argument --epochs: expected a whole number >= 1"),
        (["--patience", "0"], "argument --patience: expected a whole number >= 1"),
        (["--threads", "-2"], "argument --threads: expected a whole number >= 1"),
        (["--heldout-users", "-5"], "argument --heldout-users: expected a whole number >= 1"),
        (["--validation-fraction", "2"], "argument --validation-fraction: expected a share"),
        (["--heldout-users", "100000"], "--heldout-users should be positive and leave train"),
        (["--seed", "-1"], "argument --seed: expected a whole number in [0, 2**32)"),
        (["--format", "xml"], "argument --format: expected one of ml-100k, ml-1m"),
        (["--threshold", "3"], "--threshold 3: no rating of synthetic is above it"),
        (["--time-cut", "0.5"], "--time-cut is for --protocol temporal; this run's protocol"),
        (
            [
                "--synthetic-users",
                "60",
                "--synthetic-items",
                "40",
                "--synthetic-interactions",
                "600",
                "--threshold",
                "3",
            ],
            "--threshold 3: synthetic has no ratings to compare with it",
        ),  # fmt: skip
        (
            ["--set", "dropout=high"],
            "--set: `dropout` should be a number. Received: dropout='high'",
        ),
    ],
)
def test_wrong_numbers_are_usage_errors_naming_the_flag(tmp_path, capsys, flags, message):
    argv = ["train", "mult-dae", "--data", "synthetic", *flags, "--out", str(tmp_path / "run")]
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def test_a_model_file_that_would_run_code_is_refused(tmp_path, capsys):
    """Keras's safe mode: a `.keras` file with a Lambda layer's bytecode does not load."""
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    run_dir = tmp_path / "downloaded"
    run_dir.mkdir()
    keras.Model(inputs, outputs).save(run_dir / "model.keras")
    with pytest.raises(ConfigError, match="cannot be loaded as a keras-recae model: .*safe_mode"):
        runs.load_run_model(run_dir)
    assert cli.main(["export", str(run_dir), "--to", str(tmp_path / "export")]) == 2
    assert "safe_mode" in capsys.readouterr().err
    (run_dir / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be loaded as a keras-recae model"):
        runs.load_run_model(run_dir)
