"""A killed multi-worker run resumes on every worker from the chief's backup.

Two workers on localhost ports train Mult-VAE (dropout and sampling noise, so the noise
states must resume too); both are killed with SIGKILL after the chief has backed up an
epoch, and the same command then finishes the run. It must end where a run never killed
ends. A worker that does not see the chief's backup is refused before anything trains.
"""

import csv
import json
import time

import keras
import numpy as np
import pytest

from keras_recae.callbacks import RunBackup
from keras_recae.runs import BACKUP_DIR

EPOCHS = 12
ARGS = [
    "train",
    "mult-vae",
    "--data",
    "synthetic",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "60",
    "--set",
    "hidden_dims=[16,4]",
    "--seed",
    "0",
    "--distribute",
    "multi-worker",
]


def kill_after_backup(workers, root, scratch, out, epochs: int = 2) -> int:
    """Starts the workers on `out` and SIGKILLs both once the chief's backup holds
    `epochs` epochs; returns the epochs it holds then."""
    processes = workers.start([*ARGS, "--out", str(out)], root, scratch)
    deadline = time.monotonic() + 300
    try:
        while RunBackup.committed_epoch(out / BACKUP_DIR) < epochs:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                log = (root / "worker0.log").read_text()[-3000:]
                pytest.fail(f"no backup of {epochs} epochs in {out}:\n{log}")
            time.sleep(0.02)
    finally:
        workers.kill(processes)
    return RunBackup.committed_epoch(out / BACKUP_DIR)


def history_without_seconds(run) -> list[dict]:
    with open(run / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_workers, workers):
    root = tmp_path_factory.mktemp("multi_worker_resume")
    scratch = root / "tmp"
    scratch.mkdir()
    run_workers([*ARGS, "--out", str(root / "whole")], root, scratch)
    killed = root / "killed"
    epochs = kill_after_backup(workers, root, scratch, killed)
    assert 2 <= epochs < EPOCHS and not (killed / "metrics.json").exists()
    # Worker 1 told another --out than the chief's: it sees no backup, and both stop.
    codes, refused = workers.finish(
        workers.start(
            [*ARGS, "--out", str(killed)], root, scratch, extra=[[], ["--out", str(root / "x")]]
        ),
        root,
    )
    assert RunBackup.committed_epoch(killed / BACKUP_DIR) == epochs
    outputs = run_workers([*ARGS, "--out", str(killed)], root, scratch)
    return root, epochs, codes, refused, outputs


def test_a_killed_run_resumes_to_the_run_never_killed(runs):
    root, epochs, _, _, outputs = runs
    whole, killed = root / "whole", root / "killed"
    assert f"resuming at epoch {epochs + 1}" in outputs[0]
    # Two runs of two worker processes can differ in the last bits of a weight (seen: 2
    # float32 ulps in 3% of one kernel's entries, on a machine busy with other jobs), so
    # the comparison allows round-off; a resume from the wrong state differs by far more.
    history = history_without_seconds(killed)
    assert len(history) == EPOCHS
    assert history == [
        pytest.approx(row, rel=1e-5, nan_ok=True) for row in history_without_seconds(whole)
    ]
    for part in ("validation", "test"):
        expected = json.loads((whole / "metrics.json").read_text())[part]
        assert json.loads((killed / "metrics.json").read_text())[part] == pytest.approx(
            expected, rel=1e-5
        )
    resumed = keras.saving.load_model(killed / "model.keras").get_weights()
    uninterrupted = keras.saving.load_model(whole / "model.keras").get_weights()
    assert len(resumed) == len(uninterrupted) > 0
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not (killed / BACKUP_DIR).exists()
    # (TensorFlow's autograph leaves files of the killed processes there.)
    assert not list((root / "tmp").glob("keras-recae-*"))


def test_a_worker_that_does_not_see_the_chiefs_backup_is_refused(runs):
    root, epochs, codes, refused, _ = runs
    assert codes[0] != 0 and codes[1] != 0 and None not in codes
    message = f"worker 1 of 2 sees no backup where the chief sees a backup of {epochs} epochs"
    assert message in refused[0] and message in refused[1]
    assert not (root / "x").exists()
