"""The command line starts TensorFlow without its CUDA and CPU-feature lines."""

import os
import subprocess
import sys

import pytest

from keras_recae._startup import STARTUP_NOISE, filtered_stderr, is_quiet_command_line

# What TensorFlow 2.21 writes at start-up on a machine without a GPU (timestamps shortened).
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:17.59 23389 port.cc:153] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:17.59 23389 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
    "I0000 00:00:17.66 23389 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow",
    "E0000 00:00:17.05 23389 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error:"
    " Failed call to cuInit: UNKNOWN ERROR (303)",
]


@pytest.mark.parametrize("line", NOISE)
def test_the_start_up_lines_are_recognised(line):
    assert STARTUP_NOISE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "E0000 00:00:17.05 23389 op_kernel.cc:1830] OP_REQUIRES failed: OOM when allocating",
        "keras-recae train: error: --data: no such file",
        "W0000 00:00:17.05 23389 bfc_allocator.cc:497] Allocator ran out of memory",
    ],
)
def test_other_lines_are_kept(line):
    assert not STARTUP_NOISE.search(line)


@pytest.mark.parametrize(
    "argv, quiet",
    [
        (["python", "/venv/bin/keras-recae", "train", "ease"], True),
        (["python", "/venv/bin/keras-recae", "train", "ease", "--verbose"], False),
        (["python", "-X", "dev", "-m", "keras_recae.cli", "evaluate", "run"], True),
        (["python", "-m", "keras_recae.cli", "evaluate", "run", "--verbose"], False),
        (["python", "-m", "pytest", "tests"], False),
        (["python", "-c", "import keras_recae", "keras-recae"], False),
        (["python", "notebook.py", "keras-recae"], False),
    ],
)
def test_only_the_command_line_is_quiet(argv, quiet, monkeypatch):
    monkeypatch.delenv("KERAS_RECAE_TF_LOGS", raising=False)
    assert is_quiet_command_line(argv) is quiet
    monkeypatch.setenv("KERAS_RECAE_TF_LOGS", "1")
    assert is_quiet_command_line(argv) is False


def test_filtered_stderr_drops_the_noise_written_to_the_descriptor_and_keeps_the_rest(capfd):
    with filtered_stderr():
        # Written to file descriptor 2 directly, as TensorFlow's C++ does.
        os.write(2, ("\n".join(NOISE) + "\nreal trouble: disk full\n").encode())
    captured = capfd.readouterr()
    assert captured.err == "real trouble: disk full\n"


def test_the_command_prints_no_tensorflow_start_up_lines():
    run = subprocess.run(
        [sys.executable, "-m", "keras_recae.cli", "train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_RECAE_TF_LOGS": ""},
        check=True,
    )
    assert "usage: keras-recae train" in run.stdout
    assert run.stderr == ""
