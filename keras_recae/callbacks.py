"""Callbacks for training recommenders with `model.fit`."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence

import keras
import numpy as np

from keras_recae.checks import check_positive_int
from keras_recae.data.split import EvalSet
from keras_recae.evaluation import (
    DEFAULT_METRICS,
    combined_ranking,
    evaluate_ranking,
    evaluate_ratings,
)
from keras_recae.keras_overrides import resume_fit_at
from keras_recae.metrics import parse_metric_names
from keras_recae.models.recommender import Recommender
from keras_recae.runs import ensure_room, write_json_atomic


class _ModelSelection(keras.callbacks.Callback):
    """Evaluation every few epochs that keeps the best epoch, stops early and can resume.

    Subclasses set `metrics` before calling `__init__` and implement `measure()`, returning a
    dict of metric values; `lower_is_better` says how to compare, `state_file` and
    `weights_file` where the state goes in `state_dir`.
    """

    lower_is_better = False
    state_file = "ranking_evaluation.json"
    weights_file = "best_weights.npz"

    def __init__(
        self,
        eval_set,
        monitor,
        every,
        patience,
        restore_best_weights,
        batch_size,
        verbose,
        state_dir,
    ):
        super().__init__()
        check_positive_int("every", every)
        check_positive_int("patience", patience, allow_none=True)
        check_positive_int("batch_size", batch_size)
        self.eval_set = eval_set
        self.monitor = monitor
        self.every = int(every)
        self.patience = None if patience is None else int(patience)
        self.restore_best_weights = restore_best_weights
        self.batch_size = batch_size
        self.verbose = verbose
        self.state_dir = state_dir
        self._reset()

    def measure(self) -> dict:
        raise NotImplementedError

    def _reset(self):
        self.best_epoch = None
        self.best_value = np.inf if self.lower_is_better else -np.inf
        self.best_metrics = {}
        self.best_weights = None
        self.latest_metrics = {name: float("nan") for name in self.metrics}
        self.wait = 0
        self.stopped_epoch = None

    def _improves(self, value) -> bool:
        return value < self.best_value if self.lower_is_better else value > self.best_value

    def on_train_begin(self, logs=None):
        self._reset()
        if self.state_dir is not None:
            self.load_state(self.state_dir)

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every == 0 or epoch + 1 == last_epoch:
            self._evaluate(epoch)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in self.latest_metrics.items()})

    def _evaluate(self, epoch):
        self.latest_metrics = self.measure()
        value = self.latest_metrics[self.monitor]
        if self._improves(value):
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: val_{self.monitor} improved from "
                    f"{self.best_value:.5f} to {value:.5f}"
                )
            self.best_epoch = epoch + 1
            self.best_value = value
            self.best_metrics = dict(self.latest_metrics)
            self.best_weights = self.model.get_weights()
            self.wait = 0
            if self.state_dir is not None:
                self.save_state(self.state_dir)
            return
        self.wait += 1
        if self.state_dir is not None:
            self.save_state(self.state_dir)
        if self.patience is not None and self.wait >= self.patience:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: early stopping, val_{self.monitor} has not improved "
                    f"for {self.wait} evaluations (best {self.best_value:.5f} at epoch "
                    f"{self.best_epoch})"
                )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch}")
            self.model.set_weights(self.best_weights)

    def _state_paths(self, directory):
        return (
            os.path.join(directory, self.state_file),
            os.path.join(directory, self.weights_file),
        )

    def save_state(self, directory, previous=None) -> None:
        """Writes the selection state (best epoch and value, metrics, patience count) and
        the best weights into `directory`, each file by temporary file and rename.

        Args:
            directory: str. Where the files go.
            previous: str | None. A directory holding an earlier state: when its best epoch
                is this one's, its weights file is linked instead of written again.
        """
        os.makedirs(directory, exist_ok=True)
        state_path, weights_path = self._state_paths(directory)
        if self.best_weights is not None and not self._same_best(directory):
            temporary = weights_path + ".tmp.npz"
            old_weights = self._state_paths(previous)[1] if previous else None
            linked = False
            if previous and self._same_best(previous) and os.path.exists(old_weights):
                try:
                    os.link(old_weights, temporary)
                    linked = True
                except OSError:  # a file system without hard links: write the copy
                    pass
            if not linked:
                np.savez(temporary, *self.best_weights)
            os.replace(temporary, weights_path)
        state = {
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "best_metrics": self.best_metrics,
            "latest_metrics": self.latest_metrics,
            "wait": self.wait,
        }
        with open(state_path + ".tmp", "w", encoding="utf-8") as file:
            json.dump(state, file)
        os.replace(state_path + ".tmp", state_path)

    def _same_best(self, directory) -> bool:
        """Whether `directory` holds best weights of this state's best epoch."""
        state_path, weights_path = self._state_paths(directory)
        if not (os.path.exists(state_path) and os.path.exists(weights_path)):
            return False
        with open(state_path, encoding="utf-8") as file:
            return json.load(file).get("best_epoch") == self.best_epoch

    def load_state(self, directory) -> None:
        """Takes up the state `save_state` wrote into `directory`, if it is there."""
        state_path, weights_path = self._state_paths(directory)
        if not (os.path.exists(state_path) and os.path.exists(weights_path)):
            return
        with open(state_path, encoding="utf-8") as file:
            state = json.load(file)
        with np.load(weights_path) as arrays:
            self.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        self.best_epoch = state["best_epoch"]
        self.best_value = state["best_value"]
        self.best_metrics = state["best_metrics"]
        self.latest_metrics = state["latest_metrics"]
        self.wait = state["wait"]


class RankingEvaluation(_ModelSelection):
    """Full-ranking evaluation during training, with model selection and early stopping.

    Every `every` epochs, and at the last epoch, the model ranks all items for the users of
    `eval_set` (see `keras_recae.evaluation.evaluate_ranking`). Each metric is written into
    the epoch logs as `val_<metric>` at every epoch, holding the latest evaluation (NaN
    before the first), so `History`, the progress bar and `CSVLogger` see the same columns at
    every epoch; list `CSVLogger` and other log readers after this callback. The epoch with
    the best `monitor` value (higher is better) is kept with a copy of its weights.

    Args:
        eval_set: EvalSet. The validation users.
        metrics: sequence of str. Metric names such as `"ndcg@100"`. Defaults to recall@20,
            ndcg@20, ndcg@100, truncated_recall@20 and truncated_recall@50.
        monitor: str. The metric that selects the best epoch, with or without the `val_`
            prefix; evaluated even when not in `metrics`. Defaults to `"ndcg@100"`.
        every: int. Evaluate every this many epochs. Defaults to 1.
        patience: int | None. Stop training after this many evaluations in a row without
            improvement of `monitor`. None never stops. Defaults to None.
        restore_best_weights: bool. At the end of training, set the weights of the best
            evaluation. Defaults to True.
        batch_size: int. Users scored at once. Defaults to 500.
        verbose: int. 1 prints improvements, early stopping and restoring. Defaults to 0.
        state_dir: str | None. A directory where the best weights and the evaluation state
            are kept after each evaluation and read back at the start of training, so that
            a run resumed with `keras.callbacks.BackupAndRestore` keeps its best epoch and
            its patience count. Defaults to None.
        train: scipy sparse matrix | None. The training interactions, needed by
            `novelty@k` and `popularity@k`. Defaults to None.
        combine: callable | None. Under `--shard-users`: sums an array over the workers,
            each evaluating its own users (`keras_recae.evaluation.combined_ranking`).
            Defaults to None.

    Attributes:
        best_epoch: int | None. 1-based epoch of the best evaluation.
        best_value: float. Its `monitor` value (-inf before any evaluation).
        best_metrics: dict. All its metrics, keyed by metric name.
        best_weights: list of np.ndarray | None. Its weights, from `model.get_weights()`.

    Example:

    ```python
    from keras_recae.callbacks import RankingEvaluation

    evaluation = RankingEvaluation(split.validation, metrics=["ndcg@100"], patience=10)
    model.fit(train_batches, epochs=200, callbacks=[evaluation])
    print(evaluation.best_epoch, evaluation.best_metrics)
    ```
    """

    def __init__(
        self,
        eval_set: EvalSet,
        metrics: Sequence[str] = DEFAULT_METRICS,
        monitor: str = "ndcg@100",
        every: int = 1,
        patience: int | None = None,
        restore_best_weights: bool = True,
        batch_size: int = 500,
        verbose: int = 0,
        state_dir: str | None = None,
        train=None,
        combine=None,
    ):
        self.train = train
        self.combine = combine
        if monitor.startswith("val_"):
            monitor = monitor[len("val_") :]
        (monitor_pair,) = parse_metric_names([monitor])
        pairs = parse_metric_names(metrics)
        if monitor_pair not in pairs:
            pairs.append(monitor_pair)
        self.metrics = [f"{name}@{k}" for name, k in pairs]
        super().__init__(
            eval_set,
            "{}@{}".format(*monitor_pair),
            every,
            patience,
            restore_best_weights,
            batch_size,
            verbose,
            state_dir,
        )

    def measure(self) -> dict:
        if self.combine is not None:
            return combined_ranking(
                self.model, self.eval_set, self.metrics, self.combine, self.batch_size
            )
        return evaluate_ranking(
            self.model,
            self.eval_set,
            metrics=self.metrics,
            batch_size=self.batch_size,
            train=self.train,
        )


class EpochTimer(keras.callbacks.Callback):
    """Writes each epoch's wall-clock seconds into the logs as `seconds`, and notes NaN losses.

    Attributes:
        seconds: list of float. The duration of each epoch of this `fit` call.
        last_epoch: int. The 1-based number of the last finished epoch (`initial_epoch`, the
            epochs an earlier process finished, before this call's first).
        stopped_on_nan: bool. Whether a batch reported a NaN or infinite loss.

    Example:

    ```python
    from keras_recae.callbacks import EpochTimer

    timer = EpochTimer()
    model.fit(batches, epochs=3, callbacks=[timer])
    print(sum(timer.seconds) / len(timer.seconds))
    ```
    """

    def __init__(self, initial_epoch: int = 0):
        super().__init__()
        self.seconds = []
        self.last_epoch = int(initial_epoch)
        self.stopped_on_nan = False
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.seconds.append(elapsed)
        self.last_epoch = epoch + 1
        if logs is not None:
            logs["seconds"] = elapsed

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_on_nan = True


class LearningRateDecay(keras.callbacks.Callback):
    """Multiplies the learning rate by `decay` after each epoch: `learning_rate * decay**epoch`.

    The rate of an epoch follows from its number alone, so a `fit` resumed by
    `keras.callbacks.BackupAndRestore` continues the schedule where it stopped. Every
    optimizer of the model is set: those of `Recommender.training_optimizers()` (two for
    RecVAE), else the compiled one. The effect equals
    `keras.optimizers.schedules.ExponentialDecay` with `staircase=True` and `decay_steps`
    the batches of an epoch, without knowing that number.

    Args:
        learning_rate: float. The rate of the first epoch (epoch 0).
        decay: float in (0, 1]. The factor applied after each epoch.

    Example:

    ```python
    from keras_recae.callbacks import LearningRateDecay
    from keras_recae.models import AutoRec

    model = AutoRec(kind="item", l2=100.0)
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    model.fit(train, batch_size=1682, epochs=100, callbacks=[LearningRateDecay(2e-2, 0.99)])
    ```
    """

    def __init__(self, learning_rate: float, decay: float):
        super().__init__()
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if not learning_rate > 0.0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self.decay = float(decay)

    def rate(self, epoch: int) -> float:
        """The learning rate of 0-based `epoch`."""
        return self.learning_rate * self.decay**epoch

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.rate(epoch)
        if isinstance(self.model, Recommender):
            optimizers = self.model.training_optimizers()
        else:
            optimizers = [self.model.optimizer]
        for optimizer in optimizers:
            optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.rate(epoch)


class RandomStateBackup(keras.callbacks.Callback):
    """Keeps the model's random state with a `keras.callbacks.BackupAndRestore` backup.

    Keras leaves the states of the layers' `keras.random.SeedGenerator`s (dropout masks,
    sampling noise) out of weight files, so a run resumed from a backup would draw the
    noise of its first epochs again. This callback writes those states to
    `directory/random_state.npz` at the end of each epoch (a temporary file, then a rename)
    and puts them back when training begins, if the file is there and matches the model.

    Args:
        directory: str. Where the file goes, e.g. the backup directory.

    Example:

    ```python
    from keras_recae.callbacks import RandomStateBackup

    callbacks = [
        keras.callbacks.BackupAndRestore("backup"),
        RandomStateBackup("backup"),
    ]
    model.fit(batches, epochs=100, callbacks=callbacks)
    ```
    """

    FILE = "random_state.npz"

    def __init__(self, directory: str):
        super().__init__()
        self.directory = str(directory)

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.FILE)

    def on_train_begin(self, logs=None):
        if os.path.exists(self.path):
            load_random_states(self.model, self.path)

    def on_epoch_end(self, epoch, logs=None):
        save_random_states(self.model, self.path)


def _random_states(model) -> list:
    # In model order, which is the same in every process that builds the same model.
    return [v for v in model.variables if v.name == "seed_generator_state"]


def save_random_states(model, path: str) -> None:
    """Writes the states of `model`'s seed generators to `path` (`.npz`), atomically."""
    values = {f"state_{i}": np.asarray(v) for i, v in enumerate(_random_states(model))}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(temporary, **values)
    os.replace(temporary, path)


def load_random_states(model, path: str) -> None:
    """Puts back the seed generator states `save_random_states` wrote for the same model."""
    states = _random_states(model)
    with np.load(path) as stored:
        values = [stored[f"state_{i}"] for i in range(len(stored.files))]
    if [tuple(value.shape) for value in values] != [tuple(v.shape) for v in states]:
        raise ValueError(
            f"{path} holds {len(values)} random states that do not fit this model's "
            f"{len(states)} seed generators; it belongs to another model"
        )
    for variable, value in zip(states, values):
        variable.assign(value)


class RunBackup(keras.callbacks.Callback):
    """Backs a fit up after every epoch, in one step, so that a killed fit resumes exactly.

    After epoch `E` (counting from one) it writes `directory/epoch-E/`: the model's weights
    with the optimizer's (`model.weights.h5`), the states of its seed generators (dropout,
    sampling; `random_state.npz`) and the state of each of `stateful` (callbacks with
    `save_state(directory, previous)` and `load_state(directory)`, such as the model
    selection of `RankingEvaluation`). The directory is written under a temporary name and
    renamed, and only then is `directory/training_metadata.json` replaced by one naming `E`:
    that replacement is the commit. A process killed at any moment leaves the last committed
    epoch whole. When training begins, the committed epoch's files are loaded and `fit`
    continues at the next epoch; files of other epochs (a half-written one) are removed.

    Everything a resumed epoch depends on then matches the uninterrupted run: weights,
    optimizer, noise and, with a pipeline whose order follows the epoch (`sparse_batches`'
    `initial_pass`), the batches. List this callback after the `stateful` ones (their
    `on_train_begin` resets them, and this one then loads their state) and after writers of
    per-epoch files (`CSVLogger`), whose rows of uncommitted epochs are dropped on resuming.

    Args:
        directory: str. The backup directory.
        stateful: sequence. Callbacks whose state goes with each epoch's backup.
        restore_from: str | None. The backup to resume from when it is not `directory`'s
            own, read only: a non-chief worker of a multi-worker run resumes from the
            chief's backup (every worker's weights, optimizer and noise states are alike),
            and writes its own. None means `directory`. Defaults to None.
    """

    METADATA = "training_metadata.json"
    WEIGHTS = "model.weights.h5"
    RANDOM_STATE = "random_state.npz"

    def __init__(self, directory: str, stateful: Sequence = (), restore_from=None):
        super().__init__()
        self.directory = str(directory)
        self.stateful = list(stateful)
        self.restore_from = self.directory if restore_from is None else str(restore_from)

    @classmethod
    def committed_epoch(cls, directory) -> int:
        """The epochs a backup in `directory` holds (0 when there is none)."""
        path = os.path.join(str(directory), cls.METADATA)
        if not os.path.exists(path):
            return 0
        with open(path, encoding="utf-8") as file:
            return int(json.load(file)["epoch"])

    @classmethod
    def committed_stop(cls, directory) -> bool:
        """Whether training stopped early at the epoch a backup in `directory` holds."""
        path = os.path.join(str(directory), cls.METADATA)
        if not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as file:
            return bool(json.load(file).get("stopped", False))

    def _epoch_dir(self, epoch: int, directory: str | None = None) -> str:
        return os.path.join(directory or self.directory, f"epoch-{epoch}")

    def _remove_all_but(self, epoch: int) -> None:
        if not os.path.isdir(self.directory):
            return
        keep = os.path.basename(self._epoch_dir(epoch))
        for name in os.listdir(self.directory):
            if name.startswith("epoch-") and name != keep:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def on_train_begin(self, logs=None):
        if self.restore_from == self.directory:
            epoch = self.committed_epoch(self.directory)
            self._remove_all_but(epoch)
        else:
            epoch = self.committed_epoch(self.restore_from)
        if not epoch:
            return
        saved = self._epoch_dir(epoch, self.restore_from)
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            # The optimizer's variables must exist for its state to be loaded into them.
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(saved, self.WEIGHTS))
        load_random_states(self.model, os.path.join(saved, self.RANDOM_STATE))
        for callback in self.stateful:
            callback.load_state(saved)
        resume_fit_at(self.model, epoch)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        final = self._epoch_dir(done)
        partial = final + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        # HDF5 can crash the process on a write refused for lack of room: ask for the room
        # first, so that a full disk is an OSError here.
        variables = [*self.model.weights, *self.model.optimizer.variables]
        ensure_room(
            partial, sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
        )
        self.model.save_weights(os.path.join(partial, self.WEIGHTS))
        save_random_states(self.model, os.path.join(partial, self.RANDOM_STATE))
        previous = self._epoch_dir(epoch)
        for callback in self.stateful:
            callback.save_state(partial, previous=previous if os.path.isdir(previous) else None)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        # Whether training stopped here (early stopping): a resumed fit then trains no more.
        stopped = bool(self.model.stop_training)
        write_json_atomic(
            os.path.join(self.directory, self.METADATA), {"epoch": done, "stopped": stopped}
        )
        self._remove_all_but(done)


class RatingEvaluation(_ModelSelection):
    """Rating evaluation during training, with model selection and early stopping.

    The rating counterpart of `RankingEvaluation`: every `every` epochs, and at the last
    epoch, the model predicts the held-out ratings of `eval_set` (see
    `keras_recae.evaluation.evaluate_ratings`); `val_rmse` and `val_mae` go into the
    epoch logs at every epoch (NaN before the first evaluation). The epoch with the
    lowest `monitor` value is kept with a copy of its weights.

    Args:
        eval_set: EvalSet. The validation users and their held-out ratings.
        monitor: str. `"rmse"` or `"mae"`, with or without the `val_` prefix: lower is
            better. Defaults to `"rmse"`.
        every: int. Evaluate every this many epochs. Defaults to 1.
        patience: int | None. Stop training after this many evaluations in a row without
            improvement. None never stops. Defaults to None.
        restore_best_weights: bool. At the end of training, set the weights of the best
            evaluation. Defaults to True.
        batch_size: int. Users predicted at once. Defaults to 500.
        verbose: int. 1 prints improvements, early stopping and restoring. Defaults to 0.
        state_dir: str | None. A directory where the best weights and the evaluation state
            are kept after each evaluation and read back at the start of training, so that
            a run resumed with `keras.callbacks.BackupAndRestore` keeps its best epoch and
            its patience count. Defaults to None.

    Attributes:
        best_epoch: int | None. 1-based epoch of the best evaluation.
        best_value: float. Its `monitor` value (inf before any evaluation).
        best_metrics: dict. Its `rmse` and `mae`.
        best_weights: list of np.ndarray | None. Its weights, from `model.get_weights()`.

    Example:

    ```python
    from keras_recae.callbacks import RatingEvaluation

    evaluation = RatingEvaluation(split.validation, patience=10)
    model.fit(split.train, batch_size=128, epochs=200, callbacks=[evaluation])
    print(evaluation.best_epoch, evaluation.best_metrics)
    ```
    """

    METRICS = ("rmse", "mae")
    lower_is_better = True
    state_file = "rating_evaluation.json"
    weights_file = "best_rating_weights.npz"

    def __init__(
        self,
        eval_set: EvalSet,
        monitor: str = "rmse",
        every: int = 1,
        patience: int | None = None,
        restore_best_weights: bool = True,
        batch_size: int = 500,
        verbose: int = 0,
        state_dir: str | None = None,
    ):
        if monitor.startswith("val_"):
            monitor = monitor[len("val_") :]
        if monitor not in self.METRICS:
            raise ValueError(f"`monitor` should be 'rmse' or 'mae'. Received: monitor={monitor!r}")
        self.metrics = list(self.METRICS)
        super().__init__(
            eval_set, monitor, every, patience, restore_best_weights, batch_size, verbose, state_dir
        )

    def measure(self) -> dict:
        return evaluate_ratings(self.model, self.eval_set, batch_size=self.batch_size)
