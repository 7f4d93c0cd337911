"""What the rating benchmarks share: the runner's `retrain` protocol on their own splits.

`select_and_refit` is `keras-recae train --retrain` for explicit-rating models, called in
process (`keras_recae.training.train`) on a split the benchmark made: fit on the train part,
evaluate the validation ratings after each epoch, keep the best epoch count, refit a new
model on every train rating for that many epochs. The Adam learning rate decays
exponentially per epoch (`decay`, the command line's `--lr-decay`) and `batch_size` None
means full batches (`--batch-size 0`). Full-batch Adam at a constant 1e-2 makes the
validation RMSE of I-AutoRec alternate between two values each epoch (0.888 and 0.900 on
u1), so the refit ends on either; the decay lets training settle (RESULTS.md, "Rating
prediction").
"""

from __future__ import annotations

import time
from pathlib import Path


def select_and_refit(name: str, settings: dict, fit: dict, seed: int, split, full_train, out):
    """Chooses the epoch count on `split.validation`, refits on `full_train`.

    Args:
        name: str. The model's name (`keras-recae train NAME`).
        settings: dict. Its constructor arguments.
        fit: dict. `lr`, `decay` (None: constant), `batch_size` (None: full batches),
            `epochs` (the most), `every` and `patience` (evaluations without improvement).
        seed: int. The run's seed.
        split: Split. Train part, validation and test ratings.
        full_train: Interactions. Every train rating, for the refit.
        out: path. The run directory (kept: `metrics.json`, `history.csv`, `model.keras`).

    Returns:
        `(summary, info)`: the run's `metrics.json` content and what the selection found,
        with CPU and wall seconds.
    """
    from keras_recae.runs import METRICS_FILE, read_json
    from keras_recae.training import RunConfig, train

    out = Path(out)
    started, cpu_started = time.perf_counter(), time.process_time()
    seconds = {}
    if (out / METRICS_FILE).is_file():
        # Finished by an earlier process: its seconds are not known here.
        summary = read_json(out / METRICS_FILE)
        seconds = {"cpu_seconds": None, "wall_seconds": None}
    else:
        config = RunConfig(
            name,
            settings=dict(settings),
            out=str(out),
            epochs=fit["epochs"],
            lr=fit["lr"],
            lr_decay=fit["decay"],
            batch_size=fit["batch_size"] or 0,
            eval_every=fit["every"],
            patience=fit["patience"],
            retrain=True,
            seed=seed,
            verbose=0,
        )
        summary = train(config, split=split, full_train=full_train).summary
    info = {
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "validation": summary["validation"],
        "cpu_seconds": time.process_time() - cpu_started,
        "wall_seconds": time.perf_counter() - started,
        **seconds,
    }
    return summary, info
