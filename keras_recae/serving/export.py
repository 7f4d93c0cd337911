"""SavedModel export of a model in TF Serving's layout, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

import keras_recae.serving.warmup as warmup_records
from keras_recae.checks import check_positive_int
from keras_recae.models import EmbeddingRefiner, Recommender
from keras_recae.runs import process_gone
from keras_recae.serving.refiner_module import RefinerModule
from keras_recae.serving.serving_module import ServingModule
from keras_recae.serving.versions import next_version

# The model name of the warm-up requests, for both kinds of models: the name
# `export/models.config` serves. `keras-recae export` passes the base directory's name.
DEFAULT_MODEL_NAME = "recommender"


def export(
    model,
    base_dir,
    version: int | None = None,
    k: int = 100,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    warmup: bool = True,
) -> Path:
    """Exports a trained model as `base_dir/<version>/`, ready for TF Serving.

    A `Recommender` is served by a `ServingModule`, an `EmbeddingRefiner` by a
    `RefinerModule` (see them for the signatures); both take and return raw item ids
    (int64 when every training id is an integer, else string; the column indices when a
    recommender has no `item_ids`), padded to a rectangle with -1 or "".

    For a recommender: `serving_default` and `recommend` (history -> top-`k` `item_ids`
    and `scores`, the history never recommended), `score` (history and `candidate_ids`
    -> `scores`; unknown candidates score `MISSING_SCORE`), `encode` (history ->
    `embedding`, for models with an encoder, `model.has_encoder`) and, for models
    conditioned on users (`model.user_conditioned`), `recommend_for_user`.
    Explicit-rating models (`model.explicit`) take `ratings` beside `item_ids`. An empty
    or all-unknown history gets the model's prediction for an empty input. For a refiner:
    `refine` (vectors -> refined vectors) and `similar_items` (ids -> top-`k` ids by
    cosine), also `serving_default`. Everything lives in the graph: it runs where only
    TensorFlow is installed. Requests should start every row with one padding id, which
    keeps TF Serving's batching (`pad_variable_length_inputs`) from adding a user's first
    item to the other users of a request; the clients of this package do so.

    The SavedModel is written to a hidden temporary directory of `base_dir` (TF Serving
    only loads integer-named ones) and renamed into place, so a running server never
    sees half a version. `assets.extra/tf_serving_warmup_requests` holds one
    `PredictionLog` per signature, replayed by TF Serving when it loads the model.

    Args:
        model: Recommender | EmbeddingRefiner. A trained model (`model.is_trained()`);
            a refiner with its catalogue (`set_items`).
        base_dir: path. The model's base directory, created if missing.
        version: int | None. The version number; the next free one by default. An
            existing version is never overwritten. Defaults to `None`.
        k: int. Items per recommendation (per `similar_items` answer), at most the
            catalogue size. Defaults to `100`.
        model_name: str. The model name written in the warm-up requests. Defaults to
            `"recommender"`, the name used by `export/models.config`.
        warmup: bool. Whether to write the warm-up records (they need the
            `tensorflow-serving-api` package). Defaults to `True`.

    Returns:
        The path of the new version directory.

    Raises:
        TypeError: for a model that is neither a `Recommender` nor an `EmbeddingRefiner`.
        ValueError: for a model never trained, a refiner without a catalogue, or `k`
            outside [1, n_items].
        FileExistsError: when `version` is given and exists.

    Example:

    ```python
    from keras_recae.serving import export

    path = export(model, "export/models/recommender", k=100)
    ```
    """
    module_class = module_class_for(model)
    module_class.check_trained(model)
    version = check_version(base_dir, version)
    module = module_class(model, k)
    signatures = module.signatures()

    def write(temporary: Path) -> None:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        if warmup:
            requests = module.warmup_inputs(list(signatures))
            warmup_records.write_warmup_requests(temporary, model_name, requests)

    return save_version(base_dir, version, write)


def module_class_for(model) -> type:
    """The serving module of a model: `RefinerModule` for refiners, else `ServingModule`."""
    if isinstance(model, EmbeddingRefiner):
        return RefinerModule
    if isinstance(model, Recommender):
        return ServingModule
    raise TypeError(
        f"`model` should be a Recommender or an EmbeddingRefiner. Received: {type(model).__name__}"
    )


def check_version(base_dir, version: int | None) -> int | None:
    """`version` as an int; refuses one that is not positive, or that exists under `base_dir`."""
    if version is None:
        return None
    version = check_positive_int("version", version)
    target = Path(base_dir) / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; versions are never overwritten")
    return version


def save_version(base_dir, version: int | None, write) -> Path:
    """Runs `write(directory)` in a hidden temporary directory, then renames it a version.

    TF Serving only loads integer-named directories, so it never sees half a version; a
    failed `write` leaves nothing behind.

    Args:
        base_dir: path. The model's base directory, created if missing.
        version: int | None. The version number; the next free one when None.
        write: callable. Writes the SavedModel (and its assets.extra) into the directory.

    Returns:
        The path of the new version directory.
    """
    version = check_version(base_dir, version)
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(base)
    # Named after the writing process, so that a later export can tell a killed one's.
    prefix = f".tmp-{version or 'next'}-{os.getpid()}-"
    temporary = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        write(temporary)
        return _rename_into_place(temporary, base, version)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def remove_stale_temporaries(base: Path) -> list[Path]:
    """Removes the temporary directories of exports whose process is gone (killed).

    Only directories named `.tmp-<version>-<pid>-...` by a process of this machine that no
    longer runs are removed; those of a running export are left to it.
    """
    removed = []
    for path in base.glob(".tmp-*-*-*"):
        parts = path.name.split("-")
        if len(parts) < 4 or not parts[2].isdigit() or not path.is_dir():
            continue
        if process_gone(int(parts[2])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _rename_into_place(temporary: Path, base: Path, version: int | None) -> Path:
    """Renames the finished SavedModel to its version; retries the next free one on races."""
    while True:
        target = base / str(version if version is not None else next_version(base))
        if target.exists():
            if version is not None:
                raise FileExistsError(f"{target} exists; versions are never overwritten")
            continue
        try:
            # mkdtemp's directory is private (0700); a server running as another user
            # must read the version.
            os.chmod(temporary, 0o755)
            os.rename(temporary, target)
            return target
        except OSError:
            # Another export took this version between the check and the rename.
            if version is not None or not target.exists():
                raise
