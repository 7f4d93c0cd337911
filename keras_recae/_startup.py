"""A quiet TensorFlow start for the command line.

On a machine without a GPU, importing TensorFlow and listing its devices writes a dozen lines
to the process's stderr from C++ (absl) before Python sees anything: "All log messages before
absl::InitializeLog()", oneDNN and CPU-feature notes, "Could not find cuda drivers", and
"E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)", which reads like a failure. The
command line imports TensorFlow and probes the devices once, with the stderr file descriptor
captured, and passes on every captured line except those, unless `--verbose` is given or
`KERAS_RECAE_TF_LOGS=1` is set. A library user who imports keras_recae keeps TensorFlow's
output as it is.

This module imports nothing heavy: the package's `__init__` calls it before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# TensorFlow's start-up lines on a CPU-only machine: informational, not failures.
STARTUP_NOISE = re.compile(
    r"absl::InitializeLog\(\)"
    r"|cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|cuda_diagnostics\.cc"
    r"|failed call to cuInit|Could not find cuda drivers"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|port\.cc:\d+\] oneDNN custom operations"
    r"|cpu_feature_guard\.cc|To enable the following instructions"
    r"|TF-TRT Warning"
    r"|computation_placer\.cc"
)
COMMAND_NAME = "keras-recae"
MODULE_NAME = "keras_recae.cli"


def is_quiet_command_line(argv: list[str] | None = None) -> bool:
    """Whether this process is the `keras-recae` command (or `python -m keras_recae.cli`)
    without `--verbose`.

    Args:
        argv: list of str | None. The interpreter's command line as `sys.orig_argv` holds
            it (while a package imports under `-m`, `sys.argv[0]` is only "-m"). None reads
            `sys.orig_argv`.
    """
    argv = list(sys.orig_argv if argv is None else argv)
    if os.environ.get("KERAS_RECAE_TF_LOGS", "") not in ("", "0"):
        return False
    # The interpreter, its options, then the script, `-m module` or `-c code`.
    position = 1
    while position < len(argv):
        word = argv[position]
        if word in ("-X", "-W", "--check-hash-based-pycs"):
            position += 2  # an option and its value
        elif word == "-m":
            module = argv[position + 1 : position + 2]
            return module == [MODULE_NAME] and "--verbose" not in argv[position + 2 :]
        elif word.startswith("-") and word != "-":
            if word == "-c":
                return False
            position += 1
        else:
            return (
                os.path.basename(word) == COMMAND_NAME and "--verbose" not in argv[position + 1 :]
            )
    return False


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern = STARTUP_NOISE):
    """Captures what is written to file descriptor 2 (C++ included) inside the block, then
    writes the lines that do not match `noise` to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not noise.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_tensorflow_start(argv: list[str] | None = None) -> None:
    """On the quiet command line, imports TensorFlow and lists its devices with the start-up
    noise filtered out; elsewhere does nothing."""
    if not is_quiet_command_line(argv) or "tensorflow" in sys.modules:
        return
    with filtered_stderr():
        import tensorflow as tf

        # The CUDA probe (cuInit) runs here; the runtime stays configurable (threads).
        tf.config.list_physical_devices()
