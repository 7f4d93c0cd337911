"""Writes refused for lack of room (a file-size limit stands in for a full disk): the command
says so in one line, and what was written before stays intact."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keras_recae.runs import out_of_space
from keras_recae.serving.versions import SAVED_MODEL_FILE, version_numbers

REPOSITORY = Path(__file__).resolve().parents[1]


def command(args, limit_bytes=None):
    def limit():
        # Past the limit a write fails with EFBIG, as on a full disk with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "keras_recae.cli", *map(str, args)],
        preexec_fn=limit if limit_bytes else None,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        timeout=600,
    )


TRAIN = [
    "train", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[8]", "--epochs", "2",
    "--batch-size", "200",
]  # fmt: skip


def test_training_without_room_says_so_and_resumes_once_there_is_room(tmp_path):
    run = tmp_path / "run"
    full = command([*TRAIN, "--out", run], limit_bytes=20_000)
    assert full.returncode == 1
    assert "error: no room to write (a full disk, a quota or a file-size limit)" in full.stderr
    assert "Traceback" not in full.stderr
    assert json.loads((run / "run.json").read_text())["model"] == "mult-dae"
    assert not (run / "model.keras").exists() and not (run / "metrics.json").exists()
    # With room again, the same command finishes the run.
    again = command([*TRAIN, "--out", run])
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2


def test_an_export_without_room_leaves_the_earlier_versions_intact(tmp_path):
    run = tmp_path / "run"
    assert command([*TRAIN, "--out", run]).returncode == 0
    base = tmp_path / "models" / "recommender"
    assert command(["export", run, "--to", base]).returncode == 0
    before = {p.name: p.read_bytes() for p in (base / "1").rglob("*") if p.is_file()}
    largest = max(len(content) for content in before.values())
    # Room for the model file it reads, not for the SavedModel's largest file.
    full = command(["export", run, "--to", base], limit_bytes=largest - 1)
    assert full.returncode == 1, full.stderr
    assert "no room to write" in full.stderr and "Traceback" not in full.stderr
    assert version_numbers(base) == [1]
    after = {p.name: p.read_bytes() for p in (base / "1").rglob("*") if p.is_file()}
    assert after == before and (base / "1" / SAVED_MODEL_FILE).is_file()


@pytest.mark.parametrize(
    "error, expected",
    [
        (OSError(28, "No space left on device"), True),
        (OSError(27, "File too large"), True),
        (RuntimeError("write failed: Disk quota exceeded"), True),
        (OSError(2, "No such file or directory"), False),
        (ValueError("bad value"), False),
    ],
)
def test_out_of_space_errors_are_recognised_through_their_causes(error, expected):
    assert out_of_space(error) is expected
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        assert out_of_space(outer) is expected


def test_a_study_cut_short_by_a_full_disk_goes_on_once_there_is_room(tmp_path):
    study = tmp_path / "study"
    tune = ["tune", "mult-dae", "--data", "synthetic", "--set", "hidden_dims=[8]", "--epochs",
            "1", "--batch-size", "200", "--trials", "1", "--no-figures",
            "--study", study]  # fmt: skip
    full = command(tune, limit_bytes=300)
    assert full.returncode == 1 and "no room to write" in full.stderr
    assert not (study / "study.journal").read_bytes().endswith(b"\n")  # a record cut short
    again = command(tune)
    assert again.returncode == 0, again.stderr
    assert "was cut short (a full disk?) and was removed" in again.stderr
    rows = (study / "trials.csv").read_text().splitlines()
    assert len(rows) == 2 and ",complete," in rows[1]


def test_repair_journal_cuts_back_to_the_last_whole_line(tmp_path):
    from keras_recae.tuning import repair_journal

    journal = tmp_path / "study.journal"
    journal.write_bytes(b'{"op_code":0}\n{"op_code":4,"worker')
    with pytest.warns(UserWarning, match="cut short"):
        assert repair_journal(journal)
    assert journal.read_bytes() == b'{"op_code":0}\n'
    assert not repair_journal(journal)  # whole lines: left as they are
    journal.write_bytes(b'{"op_code":0')  # no whole line at all
    with pytest.warns(UserWarning):
        assert repair_journal(journal)
    assert journal.read_bytes() == b""
