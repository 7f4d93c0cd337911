"""The refine runner: pre-trained item vectors in, refined vectors (and a run) out.

`refine(config)` is what `keras-recae refine` does, callable in process: it reads word2vec,
gensim or numpy vectors, fits an embedding refiner on them, writes the refined vectors in
the input's format and, with `run_dir`, keeps the model for `keras-recae export`.

Example:

```python
from keras_recae.refining import RefineConfig, refine

result = refine(RefineConfig("vectors.txt", out="refined.txt", model="vae", dim=32))
print(result.summary["loss"])
```
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from keras_recae.errors import ConfigError, TrainingDiverged
from keras_recae.models.registry import check_settings, refiner_class
from keras_recae.runs import (
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    configure_threads,
    save_model_atomic,
    write_json_atomic,
)


@dataclasses.dataclass
class RefineConfig:
    """One refinement of item vectors.

    Args:
        vectors: str. word2vec text or binary, gensim KeyedVectors, `.npy` (+ id list) or
            `.npz`.
        out: str. The refined vectors, written in the input's format.
        model: str. `ae`, `dae` or `vae`, or a refiner's full name. Defaults to `"ae"`.
        dim: int. The refined dimension (the refiner's `latent_dim` unless `settings`
            gives one). Defaults to 64.
        format: str | None. The input's format; detected when None. Defaults to None.
        ids: str | None. `.npy` input: its id list (default `NAME.ids.txt`). Defaults to
            None.
        epochs: int. Defaults to 30.
        batch_size: int. Vectors per batch. Defaults to 256.
        lr: float. Adam's learning rate. Defaults to `1e-3`.
        settings: dict. Constructor arguments of the refiner. Defaults to `{}`.
        run_dir: str | None. Where to keep the model (`model.keras`, `run.json`,
            `metrics.json`, `history.csv`) for `export`. Defaults to None.
        seed: int. Seed of the refiner and the shuffle. Defaults to 0.
        threads: int | None. CPU threads of TensorFlow and BLAS. Defaults to None.
        verbose: int. 0 is silent; 2 gives Keras's line per epoch. Defaults to 2.
    """

    vectors: str
    out: str
    model: str = "ae"
    dim: int = 64
    format: str | None = None
    ids: str | None = None
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    settings: dict = dataclasses.field(default_factory=dict)
    run_dir: str | None = None
    seed: int = 0
    threads: int | None = None
    verbose: int = 2


@dataclasses.dataclass
class RefineResult:
    """What a refinement produced.

    Attributes:
        model: EmbeddingRefiner. The fitted refiner.
        keys: np.ndarray. The vectors' ids, in file order.
        refined: np.ndarray. The refined vectors, `[len(keys), dim]`.
        summary: dict. The content of `metrics.json`.
    """

    model: object
    keys: object
    refined: object
    summary: dict


def refine(config: RefineConfig) -> RefineResult:
    """Fits a refiner on `config.vectors` and writes the refined vectors to `config.out`.

    Raises:
        ConfigError: a setting, input file or output path that cannot work; nothing is
            written.
        TrainingDiverged: the loss became NaN; nothing is written.
    """
    configure_threads(config.threads)
    import keras
    import numpy as np

    from keras_recae.data.vectors import (
        VectorFormatError,
        default_ids_path,
        detect_format,
        read_vectors,
        write_vectors,
    )

    cls = refiner_class(config.model)
    settings = dict(config.settings)
    settings.setdefault("latent_dim", config.dim)
    settings.setdefault("seed", config.seed)
    check_settings(cls, settings)
    try:
        format = detect_format(config.vectors) if config.format is None else config.format
        keys, vectors = read_vectors(config.vectors, format, ids=config.ids)
    except (VectorFormatError, ValueError) as error:
        raise ConfigError(str(error)) from None
    out = Path(config.out)
    targets = [out] + ([default_ids_path(out)] if format == "npy" else [])
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise ConfigError(f"{', '.join(existing)} exists; choose another --out or remove it")
    run_dir = Path(config.run_dir) if config.run_dir else None
    if run_dir is not None and (run_dir / MODEL_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a model ({MODEL_FILE}); choose another")
    if len(vectors) < 2:
        raise ConfigError(f"{config.vectors}: {len(vectors)} vector(s); a refiner needs more")
    if config.verbose:
        print(
            f"vectors: {len(vectors)} x {vectors.shape[1]} ({format}); {cls.__name__} to "
            f"{settings['latent_dim']} dimensions",
            flush=True,
        )
    keras.utils.set_random_seed(config.seed)
    model = cls(**settings)
    model.compile(optimizer=keras.optimizers.Adam(config.lr))
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            run_dir / RUN_FILE,
            {
                "command": "refine",
                "model": config.model,
                "settings": settings,
                "vectors": config.vectors,
                "format": format,
                "out": config.out,
            },
        )
        callbacks.append(keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE)))
    started = time.perf_counter()
    history = model.fit(
        vectors,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=config.verbose if config.verbose > 1 else 0,
    )
    losses = history.history.get("loss", [])
    if not losses or not np.isfinite(losses[-1]):
        raise TrainingDiverged(
            "the loss became NaN; nothing was written. Lower the learning rate (--lr)."
        )
    refined = model.refine(vectors)
    write_vectors(out, keys, refined, format=format)
    summary = {
        "model": config.model,
        "config": model.get_config(),
        "n_vectors": len(vectors),
        "input_dim": int(vectors.shape[1]),
        "epochs": len(losses),
        "loss": {name: values[-1] for name, values in history.history.items()},
        "train_seconds": time.perf_counter() - started,
        "out": str(out),
    }
    if run_dir is not None:
        model.set_items(keys, vectors)
        save_model_atomic(model, run_dir / MODEL_FILE)
        write_json_atomic(run_dir / METRICS_FILE, summary)
    return RefineResult(model, keys, refined, summary)
