"""What the rating benchmarks share: choose the epoch count on validation, then refit.

`select_and_refit` is the protocol of `keras-recae train --retrain` for explicit-rating
models (fit on the train part, evaluate the validation ratings after each epoch, keep the
best epoch count, refit a new model on every train rating for that many epochs), with the
Adam learning rate decaying exponentially per epoch (`decay`, the command line's
`--lr-decay`) and full batches (`batch_size` None, `--batch-size 0`). Full-batch Adam at
a constant 1e-2 makes the validation RMSE of I-AutoRec alternate between two values each
epoch (0.888 and 0.900 on u1), so the refit ends on either; the decay lets training settle
(RESULTS.md, "Rating prediction").
"""

from __future__ import annotations

import math
import time


def learning_rate(fit: dict, steps_per_epoch: int):
    """`fit["lr"]`, multiplied by `fit["decay"]` after each epoch when it is set."""
    import keras

    decay = fit.get("decay")
    if not decay:
        return fit["lr"]
    return keras.optimizers.schedules.ExponentialDecay(
        fit["lr"], decay_steps=steps_per_epoch, decay_rate=decay, staircase=True
    )


def fitted(cls, settings: dict, fit: dict, data, epochs: int, seed: int, callbacks=()):
    """A new `cls(**settings)` fitted on `data` (Interactions) for `epochs` epochs."""
    import keras

    from keras_recae.optimizers import FusedAdam

    keras.utils.set_random_seed(seed)
    model = cls(seed=seed, **settings)
    # batch_size None: full batches of the training rows (items for I-AutoRec).
    rows = model.training_rows(data).shape[0]
    batch_size = fit["batch_size"] or rows
    model.compile(optimizer=FusedAdam(learning_rate(fit, math.ceil(rows / batch_size))))
    model.fit(data, batch_size=batch_size, epochs=epochs, callbacks=list(callbacks), verbose=0)
    return model


def select_and_refit(cls, settings: dict, fit: dict, seed: int, train_part, validation, train):
    """Chooses the epoch count on `validation` (fitting on `train_part`), refits on `train`.

    `fit` holds `lr`, `decay` (None: constant), `batch_size` (None: full batches),
    `epochs` (the most), `every` and `patience` (evaluations without improvement).
    Returns the refitted model and what the selection found, with CPU and wall seconds.
    """
    from keras_recae.callbacks import EpochTimer, RatingEvaluation

    started, cpu_started = time.perf_counter(), time.process_time()
    evaluation = RatingEvaluation(validation, every=fit["every"], patience=fit["patience"])
    timer = EpochTimer()
    fitted(cls, settings, fit, train_part, fit["epochs"], seed, [evaluation, timer])
    model = fitted(cls, settings, fit, train, evaluation.best_epoch, seed)
    info = {
        "epochs_run": timer.last_epoch,
        "best_epoch": evaluation.best_epoch,
        "validation": dict(evaluation.best_metrics),
        "cpu_seconds": time.process_time() - cpu_started,
        "wall_seconds": time.perf_counter() - started,
    }
    return model, info
