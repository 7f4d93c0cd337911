"""SavedModel export of a `Recommender` in TF Serving's layout, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_recae.serving.versions import next_version

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
    """Exports a trained `Recommender` as `base_dir/<version>/`, ready for TF Serving.

    An `EmbeddingRefiner` goes to `export_refiner` (signatures `refine` and
    `similar_items`), under the same layout and rules.

    The SavedModel takes and returns raw item ids (int64 when every training id is an
    integer, else string; the column indices when the model has no `item_ids`), padded
    to a rectangle with -1 or "". Its signatures (see `ServingModule`) are
    `serving_default` and `recommend` (history -> top-`k` `item_ids` and `scores`, the
    history never recommended), `score` (history and `candidate_ids` -> `scores`;
    unknown candidates score `MISSING_SCORE`), `encode` (history -> `embedding`, where
    the model has `encode`) and, for models with `user_ids` and `score_users`,
    `recommend_for_user`. Explicit-rating models (`explicit = True`) take `ratings`
    beside `item_ids`. An empty or all-unknown history gets the model's prediction for
    an empty input. Everything lives in the graph: it runs where only TensorFlow is
    installed. Requests should start every row with one padding id, which keeps TF
    Serving's batching (`pad_variable_length_inputs`) from adding a user's first item
    to the other users of a request; the clients of this package do so.

    The SavedModel is written to a hidden temporary directory of `base_dir` (TF Serving
    only loads integer-named ones) and renamed into place, so a running server never
    sees half a version. `assets.extra/tf_serving_warmup_requests` holds one
    `PredictionLog` per signature, replayed by TF Serving when it loads the model.

    Args:
        model: Recommender. A trained model (`model.is_trained()`).
        base_dir: path. The model's base directory, created if missing.
        version: int | None. The version number; the next free one by default. An
            existing version is never overwritten. Defaults to `None`.
        k: int. Items per recommendation, at most the catalogue size. Defaults to `100`.
        model_name: str. The model name written in the warm-up requests. Defaults to
            `"recommender"`, the name used by `export/models.config`.
        warmup: bool. Whether to write the warm-up records (they need the
            `tensorflow-serving-api` package). Defaults to `True`.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: for a model never trained, or `k` outside [1, n_items].
        FileExistsError: when `version` is given and exists.

    Example:

    ```python
    from keras_recae.serving import export

    path = export(model, "export/models/recommender", k=100)
    ```
    """
    import tensorflow as tf

    from keras_recae.models.embedding_refiner import EmbeddingRefiner
    from keras_recae.serving.serving_module import ServingModule
    from keras_recae.serving.warmup import warmup_inputs, write_warmup_requests

    if isinstance(model, EmbeddingRefiner):
        from keras_recae.serving.refiner_export import export_refiner

        return export_refiner(
            model, base_dir, version=version, k=k, model_name=model_name, warmup=warmup
        )
    trained = getattr(model, "is_trained", None)
    if trained is None or not trained():
        raise ValueError(
            f"This {type(model).__name__} was never trained (no optimizer step, or EASE not "
            "fitted): exporting it would serve random scores. Train it first."
        )
    check_version(base_dir, version)
    module = ServingModule(model, k)
    signatures = module.signatures()

    def write(temporary: Path) -> None:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        if warmup:
            requests = warmup_inputs(
                list(signatures), module.item_ids, module.explicit, module.user_ids
            )
            write_warmup_requests(temporary, model_name, requests)

    return save_version(base_dir, version, write)


def check_version(base_dir, version: int | None) -> None:
    """Refuses a version that is not a positive integer, or that exists under `base_dir`."""
    if version is not None and (
        not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version < 1
    ):
        raise ValueError(f"`version` should be a positive integer. Received: version={version}")
    target = Path(base_dir) / str(version)
    if version is not None and target.exists():
        raise FileExistsError(f"{target} exists; versions are never overwritten")


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
    check_version(base_dir, version)
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{version or 'next'}-", dir=base))
    try:
        write(temporary)
        return _rename_into_place(temporary, base, version)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


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
