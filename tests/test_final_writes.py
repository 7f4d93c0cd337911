"""A run killed while it writes its final files (model, metrics, per-user files, backup removal)
is finished by the same command, to the files of a run never killed."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_recae import runs

# Runs `keras-recae ARGS` and kills itself (SIGKILL: no clean-up) at one point of the final
# writes: just before or just after a file is renamed into place, or half-way through the
# removal of the backup directory.
DRIVER = r"""
import os, shutil, signal, sys
point, name, *args = sys.argv[1:]
real_replace, real_rmtree = os.replace, shutil.rmtree

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(source, target, *rest, **options):
    if point == "before" and os.path.basename(target) == name:
        die()
    real_replace(source, target, *rest, **options)
    if point == "after" and os.path.basename(target) == name:
        die()

def rmtree(path, *rest, **options):
    if point == "removing" and "backup" in os.path.basename(str(path)):
        files = sorted(
            os.path.join(root, file) for root, _, names in os.walk(path) for file in names
        )
        # The epochs' weights first, the commit record last: the worst order for a reader.
        files.sort(key=lambda file: file.endswith("training_metadata.json"))
        for file in files[: max(1, len(files) // 2)]:
            os.remove(file)
        die()
    real_rmtree(path, *rest, **options)

os.replace, shutil.rmtree = replace, rmtree
from keras_recae import cli
sys.exit(cli.main(args))
"""

TIMINGS = {"seconds_per_epoch", "train_seconds", "peak_rss_mb"}


def killed_run(point: str, name: str, args: list) -> None:
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, point, name, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]


def finished_run(args: list, code: int = 0) -> str:
    """Runs `keras-recae ARGS` to its end; its standard error."""
    process = subprocess.run(
        [sys.executable, "-m", "keras_recae.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert process.returncode == code, process.stderr[-2000:]
    return process.stderr


def summary(run_dir: Path) -> dict:
    content = json.loads((run_dir / runs.METRICS_FILE).read_text(encoding="utf-8"))
    return {key: value for key, value in content.items() if key not in TIMINGS}


def history(run_dir: Path) -> list[dict]:
    path = run_dir / runs.HISTORY_FILE
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def assert_same_run(run_dir: Path, reference: Path) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert summary(run_dir) == summary(reference)
    assert history(run_dir) == history(reference)
    for got, expected in zip(
        runs.load_run_model(run_dir).get_weights(),
        runs.load_run_model(reference).get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(got, expected)


NEURAL = [
    "train", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[16]",
    "--batch-size", "100", "--metrics", "ndcg@20,recall@20",
]  # fmt: skip
COMMANDS = {
    # Early stopping after a few epochs: the kill comes after the stop, before the files.
    "stopping": [*NEURAL, "--epochs", "40", "--lr", "0.05", "--patience", "1"],
    # Every epoch run: the kill comes after the last.
    "all-epochs": [*NEURAL, "--epochs", "3"],
    "ease": ["train", "ease", "--data", "synthetic"],
}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    base = tmp_path_factory.mktemp("whole")
    for label, args in COMMANDS.items():
        finished_run([*args, "--out", base / label])
    return {label: base / label for label in COMMANDS}


@pytest.mark.parametrize(
    "command, point, name",
    [
        ("stopping", "after", runs.MODEL_FILE),
        ("stopping", "before", runs.METRICS_FILE),
        ("stopping", "after", "test_users.csv.gz"),
        ("stopping", "removing", ""),
        ("all-epochs", "after", runs.MODEL_FILE),
    ],
)
def test_a_neural_run_killed_in_its_final_writes_ends_as_one_never_killed(
    tmp_path, references, command, point, name
):
    args = COMMANDS[command]
    out = tmp_path / "run"
    killed_run(point, name, [*args, "--out", out])
    if (out / runs.METRICS_FILE).exists():
        # Past the commit (metrics.json): the run is whole; the same command says so and
        # removes what the killed process left of its backup.
        assert point == "removing"
        assert [p.name for p in out.glob(".backup.*.removed")]
        stderr = finished_run([*args, "--out", out], code=2)
        assert f"{out} already holds a finished run (metrics.json)" in stderr
    else:
        finished_run([*args, "--out", out])
    if command == "stopping":
        assert summary(references[command])["epochs_run"] < 40  # it did stop early
    assert_same_run(out, references[command])


def test_a_closed_form_run_killed_between_model_and_metrics_is_finished_by_a_rerun(
    tmp_path, references
):
    args = [*COMMANDS["ease"], "--out", tmp_path / "run"]
    killed_run("after", runs.MODEL_FILE, args)
    assert not (tmp_path / "run" / runs.METRICS_FILE).exists()
    finished_run(args)
    assert_same_run(tmp_path / "run", references["ease"])
