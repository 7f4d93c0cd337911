"""Run directories: their layout, atomic writes, reading a run back, and thread limits.

A run directory written by `keras_recae.training.train` holds `run.json` (the model name,
its settings and the data options), `model.keras`, `metrics.json` (the summary) and
`history.csv` (one row per epoch); `backup/` exists only while a run is unfinished, and a
rerun of the same command resumes from it.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import os
import resource
import shutil
import warnings
from pathlib import Path

from keras_recae.errors import ConfigError

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
# Each evaluated user's metrics of a part (`validation` or `test`), gzip-compressed CSV.
USERS_FILE = "{part}_users.csv.gz"


def write_json_atomic(path, content: dict) -> None:
    """Writes `content` as indented JSON to a temporary file, then renames it to `path`."""
    path = Path(path)
    # Named after the process: several processes may write one file (a study's workers).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2, default=_json_default)
        file.write("\n")
    os.replace(temporary, path)


def write_users_atomic(users, path) -> None:
    """Writes per-user metrics (a DataFrame) as gzip-compressed CSV, by temporary file and
    rename; ids keep their text, metrics their full precision."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    users.to_csv(temporary, index=False, compression="gzip", float_format="%.17g")
    os.replace(temporary, path)


def discard_backup(run_dir) -> None:
    """Removes a run's `backup/` in one step: it is renamed out of the way first, so that a
    process killed while deleting it leaves no half backup that a rerun would resume from."""
    backup = Path(run_dir) / BACKUP_DIR
    if not backup.is_dir():
        return
    doomed = backup.with_name(f".{BACKUP_DIR}.{os.getpid()}.removed")
    os.replace(backup, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def process_gone(pid: int) -> bool:
    """Whether no process of this machine runs with `pid` (one of another user counts as
    running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_dead_leftovers(run_dir) -> list[Path]:
    """Removes what killed processes left in a run directory: the temporary files of the
    atomic writes above (`.NAME.PID.tmp...`) and backups being discarded
    (`.backup.PID.removed`), of processes no longer running."""
    removed = []
    for path in Path(run_dir).glob(".*"):
        parts = path.name.split(".")
        pids = [
            int(part)
            for part, after in zip(parts, parts[1:])
            if part.isdigit() and after in ("tmp", "removed")
        ]
        if pids and process_gone(pids[0]):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _json_default(value):
    # numpy scalars (np.float32 metrics, np.int64 counts) carry their Python value.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path) -> dict:
    """A JSON file of a run directory, with the file named in the error when it is broken."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


def save_model_atomic(model, path) -> None:
    """Saves a `.keras` file next to `path`, then renames it into place."""
    import numpy as np

    path = Path(path)
    temporary = str(path.with_name(f".{path.name}.{os.getpid()}.tmp.keras"))
    weights = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)
    ensure_room(path.parent, weights)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_run_model(run_dir):
    """The model of a run directory (or of a `.keras` file given directly)."""
    import keras

    import keras_recae.models  # noqa: F401  (registers the classes for deserialisation)

    run_dir = Path(run_dir)
    path = run_dir / MODEL_FILE if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {MODEL_FILE} here; pass a run directory of `train`")
    try:
        # Keras's safe mode (its default, stated): a file that would run code of its own, a
        # Lambda layer's bytecode, is refused.
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as error:
        if out_of_space(error):
            raise  # not the file's fault: the command line reports it as such
        raise ConfigError(f"{path}: cannot be loaded as a keras-recae model: {error}") from None


def ensure_room(directory, nbytes: int, margin: float = 1.1) -> None:
    """Reserves `nbytes` (times `margin`, plus 64 KiB of headers) in `directory`, then gives
    them back.

    Raises the OSError of a full disk (ENOSPC), a quota or a file-size limit (EFBIG) before
    a writer that cannot fail cleanly, HDF5's, meets it. `posix_fallocate` where the file
    system has it; elsewhere nothing is checked.
    """
    size = int(nbytes * margin) + (64 << 10)
    path = os.path.join(directory, f".room.{os.getpid()}")
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(descriptor, 0, size)
            except OSError as error:
                if error.errno not in _NO_ROOM_ERRNOS:
                    return  # a file system without fallocate (EOPNOTSUPP): unchecked
                raise OSError(
                    error.errno, f"{os.strerror(error.errno)}: {size} bytes for {directory}"
                ) from None
    finally:
        os.close(descriptor)
        os.remove(path)


# What a full disk, a quota or a file-size limit makes a write fail with (errno or, from
# TensorFlow's and HDF5's own writers, the message).
_NO_ROOM_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NO_ROOM_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded")


def out_of_space(error: BaseException) -> bool:
    """Whether an error, or one it was raised from, is a write refused for lack of room."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_ROOM_ERRNOS:
            return True
        if any(text in str(error) for text in _NO_ROOM_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


@dataclasses.dataclass
class Run:
    """A finished run read back from its directory.

    Attributes:
        path: Path. The run directory.
        model: keras.Model. The model of `model.keras`.
        options: dict. `run.json`: model name, settings and data options ({} if absent).
        summary: dict. `metrics.json` ({} if absent).
    """

    path: Path
    model: object
    options: dict
    summary: dict


def load_run(run_dir) -> Run:
    """Reads a run directory written by `keras_recae.training.train` (or `refine`)."""
    run_dir = Path(run_dir)
    model = load_run_model(run_dir)
    options = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    summary = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}
    return Run(run_dir, model, options, summary)


def configure_threads(threads: int | None) -> None:
    """Caps TensorFlow's and BLAS's threads.

    TensorFlow sizes its thread pools once, when it starts working: in a process where it
    already runs (a notebook, a test session, an in-process tuner) they keep their size, with
    a warning, and only BLAS is capped.
    """
    if not threads:
        return
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        warnings.warn(
            f"threads={threads}: TensorFlow already runs in this process with "
            f"{current or 'its default'} threads, which it keeps; BLAS is capped at {threads}.",
            stacklevel=2,
        )


def epoch_seconds(history_path) -> list[float]:
    """The `seconds` column of a history.csv; empty when there is none."""
    history_path = Path(history_path)
    if not history_path.is_file():
        return []
    with open(history_path, encoding="utf-8", newline="") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file) if row.get("seconds")]


def tensorboard_scalars(log_dir) -> dict:
    """Every scalar of the TensorBoard event files under `log_dir`: `{tag: {step: value}}`
    (a run's `--tensorboard` directory, or its `train` or `validation` part)."""
    import tensorflow as tf

    values = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = (
                    tf.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else value.simple_value
                )
                values.setdefault(value.tag, {})[event.step] = float(number)
    return values


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
