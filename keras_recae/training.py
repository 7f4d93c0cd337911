"""The runner: one training run from a typed config to a run directory.

`train(config)` is what `keras-recae train` does, callable in process (the tuner, the
benchmarks and the notebooks call it): it reads and splits the data (`DataSpec`), chooses
the epoch on the validation part with early stopping, optionally retrains on the full train
lines for that many epochs, resumes an interrupted run from its backup, stops on a NaN loss,
evaluates the test part once, and writes the run directory (`keras_recae.runs`).

Example:

```python
from keras_recae.data.spec import DataSpec
from keras_recae.training import RunConfig, train

result = train(
    RunConfig(
        "mult-vae",
        DataSpec("synthetic"),
        settings={"hidden_dims": [32, 8]},
        epochs=3,
        out="runs/mult-vae",
    )
)
print(result.test["ndcg@100"])
```
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from keras_recae.data.spec import DEFAULT_VALIDATION_FRACTION, DataSpec, load_split
from keras_recae.errors import ConfigError, TrainingDiverged
from keras_recae.evaluation import DEFAULT_METRICS as RANKING_METRICS
from keras_recae.evaluation import (
    combined_ranking,
    evaluate_ranking_users,
    evaluate_ranking_variants,
    evaluate_ratings,
)
from keras_recae.metrics import parse_metric_names
from keras_recae.models.registry import check_settings, model_class, takes_seed
from keras_recae.runs import (
    BACKUP_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    USERS_FILE,
    configure_threads,
    discard_backup,
    epoch_seconds,
    load_run,
    peak_rss_mb,
    process_gone,
    remove_dead_leftovers,
    save_model_atomic,
    write_json_atomic,
    write_users_atomic,
)

# The metrics of a run's summary when the config names none: the evaluation's, and P@20.
DEFAULT_METRICS = (*RANKING_METRICS, "precision@20")
# Rows per evaluation batch when `batch_size` is 0 (full-batch training).
EVAL_BATCH_SIZE = 500
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# In a run's backup: the model selection's outcome once it is over, and the backup of the
# retraining on the full train lines that follows it.
SELECTION_FILE = "selection.json"
RETRAIN_DIR = "retrain"
# Where a non-chief worker writes its copy of a multi-worker run: a temporary directory
# `WORKER_SCRATCH.PID.XXXX`, removed afterwards (or, once its process is gone, by the next).
WORKER_SCRATCH = "keras-recae-worker"


@dataclasses.dataclass
class RunConfig:
    """One training run: the model, its data, how it is fitted and where it goes.

    Args:
        model: str. The model's name (`keras_recae.models.registry.model_classes`).
        data: DataSpec. The data and its split. Its `seed`, when None, is `seed`.
        settings: dict. Constructor arguments of the model; `seed` defaults to the run's.
            Defaults to `{}`.
        out: str | None. The run directory; None means `runs/<model>`. Defaults to None.
        epochs: int. The most epochs of the selection phase. Defaults to 200.
        lr: float | None. Adam's learning rate; None means the model's `default_lr`
            (`1e-3` for most). Defaults to None.
        lr_decay: float | None. Multiply the learning rate by this after each epoch.
            Defaults to None.
        batch_size: int | None. Rows per batch (users, or items for the item-based
            AutoRec); 0 trains on full batches; None means the model's
            `default_batch_size` (500 for most). Defaults to None.
        metrics: sequence of str. Metrics of the summary (ranking models). Defaults to
            `DEFAULT_METRICS`.
        monitor: str. The validation metric choosing the epoch (`rmse` for rating models
            unless `mae`). Defaults to `"ndcg@100"`.
        eval_every: int. Evaluate the validation part every this many epochs. Defaults to 1.
        patience: int | None. Stop after this many evaluations without improvement.
            Defaults to None.
        retrain: bool. Under `given`, retrain a new model on the full train lines for the
            chosen epoch count, and report that one. Defaults to False.
        select: bool. False when the epoch count is already known (`epochs`, e.g. a
            tuning study's best): with `retrain` and a validation part carved from the
            train lines, the selection phase is skipped and the model is trained on the
            full train lines for `epochs` epochs (the summary then has no validation
            figures, and the run no `history.csv`). No effect otherwise. Defaults to True.
        precision: str. `float32`, `mixed_float16` or `mixed_bfloat16`. Defaults to
            `"float32"`.
        jit_compile: bool | str. XLA for the train step; `"auto"` leaves it to Keras (on
            for GPUs). Defaults to `"auto"`.
        distribute: str. `none`, `mirrored` or `multi-worker`. Defaults to `"none"`.
        devices: str | None. Comma-separated devices of the mirrored strategy. Defaults
            to None.
        shard_users: bool. Under `distribute="multi-worker"` on a `given` split: worker
            `w` of `W` reads the files by chunks and keeps only the users whose id hashes
            to `w` (`keras_recae.data.shards`); each global batch is the workers' batches
            of `batch_size / W` of their own users, and the validation and test figures
            are combined over the workers. Implicit models not conditioned on the user,
            per-user metrics only; no per-user files. Defaults to False.
        threads: int | None. CPU threads of TensorFlow and BLAS. Defaults to None.
        seed: int. Seed of the model, the shuffle and (by default) the data. Defaults to 0.
        verbose: int. 0 is silent; 1 prints the run's steps and the validation
            improvements; 2 also gives Keras's line per epoch. Defaults to 2.
        tensorboard: str | None. A log directory for Keras's `TensorBoard` callback: the
            loss and its parts, the learning rate, the epoch seconds and the validation
            metrics, per epoch (a retraining logs into its `retrain` subdirectory).
            Defaults to None.
        user_metrics: bool. Also write each evaluated user's metrics of the reported model
            into the run directory (`validation_users.csv.gz`, `test_users.csv.gz`), for
            `keras-recae compare`. Defaults to True.
    """

    model: str
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    settings: dict = dataclasses.field(default_factory=dict)
    out: str | None = None
    epochs: int = 200
    lr: float | None = None
    lr_decay: float | None = None
    batch_size: int | None = None
    metrics: tuple = DEFAULT_METRICS
    monitor: str = "ndcg@100"
    eval_every: int = 1
    patience: int | None = None
    retrain: bool = False
    select: bool = True
    precision: str = "float32"
    jit_compile: bool | str = "auto"
    distribute: str = "none"
    devices: str | None = None
    shard_users: bool = False
    threads: int | None = None
    seed: int = 0
    verbose: int = 2
    tensorboard: str | None = None
    user_metrics: bool = True


@dataclasses.dataclass
class RunResult:
    """What a run produced.

    Attributes:
        out: Path. The run directory.
        model: Recommender. The reported model (retrained, or the best validation epoch).
        summary: dict. The content of `metrics.json`.
    """

    out: Path
    model: object
    summary: dict

    @property
    def validation(self) -> dict:
        return self.summary["validation"]

    @property
    def test(self) -> dict:
        return self.summary["test"]


def train(
    config: RunConfig, split=None, full_train=None, callbacks=(), read_test: bool = True
) -> RunResult:
    """Runs `config`: selection on validation, optional retraining, test evaluation.

    A run directory holding `backup/` is resumed: the same config continues from the last
    epoch the interrupted process finished, with its best epoch, patience count and
    random states and the row order of its next epoch, so that it ends on the weights an
    uninterrupted run ends on.
    A finished run (its `model.keras` exists) is refused.

    Args:
        config: RunConfig. The run.
        split: Split | None. An in-memory split to use instead of reading `config.data`
            (e.g. a benchmark's own hold-out); `config.data` is then only recorded.
            Defaults to None.
        full_train: Interactions | None. With `split`: what `retrain` fits on.
            Defaults to None.
        callbacks: sequence of keras.callbacks.Callback. Added last to the selection
            phase's fit, so they see its `val_` logs (the tuner's pruning) after the
            epoch is backed up and logged. Defaults to `()`.
        read_test: bool. False leaves the test part out (see `load_split`): the summary's
            `test` is empty. Defaults to True.

    Raises:
        ConfigError: a setting that cannot work, before training starts.
        TrainingDiverged: the loss became NaN; no model is written.
    """
    _check_run(config)
    configure_threads(config.threads)
    config = with_model_defaults(config)
    # Before anything else runs on TensorFlow: the strategy may split the CPU.
    strategy = make_strategy(config)
    import keras

    # `precision` sets Keras's global policy; put it back for in-process callers.
    previous_policy = keras.config.dtype_policy()
    try:
        if strategy is None:
            return _run(config, split, full_train, callbacks, read_test)
        return _run_distributed(config, split, full_train, callbacks, read_test, strategy)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def with_model_defaults(
    config: RunConfig, n_rows: int | None = None, replicas: int = 1
) -> RunConfig:
    """`config` with the run settings it leaves to the model (`lr`, `batch_size`) filled in.

    The batch size left to a model that declares `min_updates_per_epoch` depends on the
    data: it stays None until `n_rows` (the training rows of one pass) is known, and is
    then `default_batch_size`, or less so that a pass takes at least that many updates,
    rounded down to a multiple of `replicas` (a global batch under a strategy).
    """
    cls = model_class(config.model)
    batch_size = config.batch_size
    if batch_size is None and (cls.min_updates_per_epoch is None or n_rows is not None):
        batch_size = cls.default_batch_size
        if cls.min_updates_per_epoch is not None:
            batch_size = min(batch_size, math.ceil(n_rows / cls.min_updates_per_epoch))
            batch_size = max(replicas, batch_size // replicas * replicas)
    return dataclasses.replace(
        config, lr=cls.default_lr if config.lr is None else config.lr, batch_size=batch_size
    )


def make_strategy(config: RunConfig):
    """The `tf.distribute` strategy of `distribute` and `devices`; None for one device."""
    if config.shard_users and config.distribute != "multi-worker":
        raise ConfigError(
            "--shard-users splits the users among the workers of --distribute multi-worker"
        )
    if config.distribute == "none":
        if config.devices:
            raise ConfigError("--devices needs --distribute mirrored")
        return None
    from keras_recae import distribute

    if model_class(config.model).closed_form:
        raise ConfigError(
            f"{config.model} is solved in closed form on one host; it has no gradient steps "
            "to distribute: leave out --distribute"
        )
    if config.jit_compile is True:
        # Keras wraps the whole replicated step in one XLA function, which TensorFlow
        # cannot place on several devices ("auto" keeps XLA off under a strategy).
        raise ConfigError("--jit-compile true does not work with --distribute; leave it at auto")
    if config.batch_size == 0:
        raise ConfigError(
            "--batch-size 0 (full batches) does not work with --distribute: give the "
            "global batch as a multiple of the number of replicas"
        )
    if config.shard_users:
        _check_shards(config)
    try:
        strategy = distribute.make_strategy(config.distribute, config.devices)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"--distribute {config.distribute}: {error}") from None
    replicas = strategy.num_replicas_in_sync
    # None: the model's batch size, which follows the data and the replicas.
    if config.batch_size is not None and config.batch_size % replicas:
        raise ConfigError(
            f"--batch-size ({config.batch_size}) is the global batch: it should be a multiple "
            f"of the number of replicas ({replicas})"
        )
    per_replica = "the model's" if config.batch_size is None else config.batch_size // replicas
    _say(
        config,
        f"distribute: {config.distribute}, {replicas} replica{'s' if replicas > 1 else ''}, "
        f"{per_replica} users per replica and step",
    )
    return strategy


def _run_distributed(
    config: RunConfig, split, full_train, callbacks, read_test, strategy
) -> RunResult:
    """`_run` under the strategy's scope; only the chief worker writes the run."""
    from keras_recae import distribute

    shards = None
    if config.shard_users:
        if split is not None:
            raise ConfigError("--shard-users reads the data itself: pass no in-memory split")
        shards = _Shards(strategy, *distribute.worker_position(strategy))
    out = Path(config.out or f"runs/{config.model}")
    _check_workers_resume_alike(strategy, out)
    if distribute.is_chief(strategy):
        with strategy.scope():
            return _run(config, split, full_train, callbacks, read_test, shards)
    # The other workers train alongside the chief and write their copy of the run (model,
    # backups) to a directory of their own that is removed afterwards. A killed run resumes
    # on every worker from the chief's backup: the workers' weights, optimizer and noise
    # states are the same after every step, and each worker's batches follow the epoch.
    _remove_dead_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{WORKER_SCRATCH}.{os.getpid()}.") as scratch:
        with strategy.scope():
            scratch_config = dataclasses.replace(config, out=scratch)
            return _run(scratch_config, split, full_train, callbacks, read_test, shards, out)


def _remove_dead_scratch() -> None:
    """Removes the scratch directories of non-chief workers that were killed."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKER_SCRATCH}.*.*"):
        pid = path.name.split(".")[1]
        if pid.isdigit() and process_gone(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _backup_state(out: Path) -> list[int]:
    """What a rerun in `out` would resume from: [finished, epochs backed up, stopped
    early, selection done, retraining epochs backed up]."""
    from keras_recae.callbacks import RunBackup

    backup = out / BACKUP_DIR
    return [
        int((out / METRICS_FILE).exists()),
        RunBackup.committed_epoch(backup),
        int(RunBackup.committed_stop(backup)),
        int((backup / SELECTION_FILE).is_file()),
        RunBackup.committed_epoch(backup / RETRAIN_DIR),
    ]


def _check_workers_resume_alike(strategy, out: Path) -> None:
    """Refuses a multi-worker run whose workers do not see the chief's run directory alike.

    Every worker resumes from the chief's backup in `out`, so each must see what the chief
    sees there (a directory they share); a worker that sees another state (no backup, an
    older one) would train from other weights. A collective: every worker calls it.
    """
    import numpy as np

    from keras_recae import distribute

    index, count = distribute.worker_position(strategy)
    states = np.zeros((count, 5))
    states[index] = _backup_state(out)
    states = distribute.sum_over_workers(strategy, states).astype(int).tolist()
    if states[0][0] and index:
        raise ConfigError(f"{out} already holds a finished run ({METRICS_FILE}) of the chief")
    for worker, state in enumerate(states[1:], start=1):
        if state != states[0]:
            raise ConfigError(
                f"--out {out}: worker {worker} of {count} sees {_describe_backup(state)} "
                f"where the chief sees {_describe_backup(states[0])}. A multi-worker run "
                "resumes every worker from the chief's backup: give every worker the "
                "chief's --out, on storage they share"
            )


def _describe_backup(state: list[int]) -> str:
    finished, epochs, _, selected, retrained = state
    if finished:
        return "a finished run"
    if selected:
        return f"a backup after model selection, {retrained} epochs retrained"
    return f"a backup of {epochs} epochs" if epochs else "no backup"


def _check_shards(config: RunConfig) -> None:
    """What `shard_users` cannot do, refused before anything is read."""
    from keras_recae.evaluation import not_per_user

    cls = model_class(config.model)
    if cls.explicit:
        raise ConfigError(
            f"--shard-users: {config.model} predicts ratings from statistics of all the "
            "ratings (item means, the rating range); train it without --shard-users"
        )
    if cls.user_conditioned:
        raise ConfigError(
            f"--shard-users: {config.model} keeps a node per training user, which every "
            "worker would hold; train it without --shard-users"
        )
    monitor, _ = selection_monitor(cls, config.monitor)
    for name in [*(config.metrics or DEFAULT_METRICS), monitor]:
        try:
            refused = not_per_user(name)
        except ValueError as error:
            raise ConfigError(f"--metrics / --monitor: {error}") from None
        if refused:
            raise ConfigError(
                f"--shard-users: {name} is not an average over users of their own lists (it "
                "needs every worker's lists or training interactions); leave it out"
            )


@dataclasses.dataclass
class _Shards:
    """A worker's shard of the users (`shard_users`), and sums over the workers.

    Attributes:
        strategy: the multi-worker strategy.
        index: int. This worker's shard.
        count: int. The workers.
        info: ShardInfo | None. Every shard's users, once the data is read.
    """

    strategy: object
    index: int
    count: int
    info: object = None

    def combine(self, values):
        """The sum of `values` (an array) over the workers: a collective."""
        from keras_recae import distribute

        return distribute.sum_over_workers(self.strategy, values)

    def padded(self, matrix, local_batch: int):
        """`matrix` with empty rows, as many batches of `local_batch` as the largest shard's."""
        import scipy.sparse as sp

        steps = max(math.ceil(users / local_batch) for users in self.info.users)
        extra = sp.csr_matrix((steps * local_batch - matrix.shape[0], matrix.shape[1]))
        return sp.vstack([matrix, extra.astype(matrix.dtype)], format="csr")


@dataclasses.dataclass
class _OpenRun:
    """A run past its checks: its model class and settings, data and directory."""

    cls: type
    settings: dict
    spec: object
    out: Path
    split: object
    full_train: object
    metrics: list


def _open_run(config: RunConfig, split, full_train, read_test, shards=None) -> _OpenRun:
    """Checks a run, loads its data and writes its `run.json`: what every run starts with.

    A directory holding a finished run (`metrics.json`) is refused; the data are read
    before anything is written, so that data and flags that do not fit leave nothing.
    """
    import keras

    cls = model_class(config.model)
    settings = check_settings(cls, dict(config.settings))
    if config.precision not in PRECISIONS:
        raise ConfigError(
            f"--precision should be one of {', '.join(PRECISIONS)}. Received: {config.precision}"
        )
    spec = config.data if config.data.seed is not None else config.data.updated(seed=config.seed)
    out = Path(config.out or f"runs/{config.model}")
    remove_dead_leftovers(out)
    # metrics.json, written last, is the commit: a directory with it holds a finished run
    # (a backup beside it was being removed when its process was killed); without it, the
    # run is finished by resuming from its backup or, for a closed form, by fitting again.
    if (out / METRICS_FILE).exists():
        discard_backup(out)
        raise ConfigError(
            f"{out} already holds a finished run ({METRICS_FILE}); choose another --out or "
            "remove it"
        )
    if (out / MODEL_FILE).exists() and not (out / RUN_FILE).exists():
        raise ConfigError(
            f"{out} holds a {MODEL_FILE} that no run wrote (no {RUN_FILE}); choose another "
            "--out or remove it"
        )
    metrics = list(config.metrics or DEFAULT_METRICS)
    if not cls.explicit:
        # Before any training: a misspelt name would otherwise fail at the first evaluation.
        try:
            parse_metric_names(metrics)
            parse_metric_names([selection_monitor(cls, config.monitor)[0]])
        except ValueError as error:
            raise ConfigError(f"--metrics / --monitor: {error}") from None
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'keras-recae[tensorboard]'"
        )
    # The data before any file: data and flags that do not fit leave nothing written.
    if split is not None and not read_test:
        split = dataclasses.replace(split, test=None)
    if shards is not None:
        from keras_recae.data.shards import load_shard

        split, full_train, shards.info = load_shard(
            spec, shards.index, shards.count, DEFAULT_VALIDATION_FRACTION, read_test
        )
    elif split is None:
        split, full_train = load_split(
            spec,
            explicit=cls.explicit,
            default_validation=0.0 if cls.closed_form else DEFAULT_VALIDATION_FRACTION,
            read_test=read_test,
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / RUN_FILE,
        {"model": config.model, "settings": settings, **spec.to_dict(), "run": run_flags(config)},
    )

    keras.utils.set_random_seed(config.seed)
    if config.precision != "float32":
        keras.config.set_dtype_policy(config.precision)
    _say(
        config,
        f"data: {split.train.n_users} train users, {split.train.n_items} items, "
        f"{split.train.nnz} train interactions; protocol {split.protocol}; "
        f"validation users {split.validation.n_users if split.validation else 0}, "
        f"test users {split.test.n_users if split.test else 0}",
    )
    if shards is not None:
        _say(
            config,
            f"shard {shards.index} of {shards.count}: {split.train.n_users} users, "
            f"{(split.train if full_train is None else full_train).nnz} train lines (users "
            "per shard: "
            f"{', '.join(map(str, shards.info.users))})",
        )
    return _OpenRun(cls, settings, spec, out, split, full_train, metrics)


def _run(
    config: RunConfig, split, full_train, callbacks, read_test, shards=None, chief_out=None
) -> RunResult:
    """One run into `config.out`; a non-chief worker resumes from `chief_out`'s backup."""
    import keras
    import numpy as np

    opened = _open_run(config, split, full_train, read_test, shards)
    cls, settings, spec, out = opened.cls, opened.settings, opened.spec, opened.out
    split, full_train, metrics = opened.split, opened.full_train, opened.metrics
    backup = out / BACKUP_DIR
    # The backup a killed run resumes from: its own, or on a non-chief worker the chief's.
    restore = backup if chief_out is None else Path(chief_out) / BACKUP_DIR
    resuming = restore.is_dir()
    if takes_seed(cls):
        settings.setdefault("seed", config.seed)
    model = _new_model(cls, settings, split)
    n_rows = model.n_training_rows(split.train.matrix) if shards is None else shards.info.n_users
    config = with_model_defaults(config, n_rows=n_rows, replicas=_replicas())

    summary = {
        "model": config.model,
        "config": None,
        "data": spec.data,
        "test_data": spec.test,
        "protocol": split.protocol,
        "n_users": split.train.n_users if shards is None else shards.info.n_users,
        "n_items": split.train.n_items,
        "run": {
            "lr": config.lr,
            "lr_decay": config.lr_decay,
            "batch_size": config.batch_size,
            "seed": config.seed,
        },
        "threads": config.threads,
        "precision": config.precision,
        "distribute": config.distribute,
    }
    if shards is not None:
        summary["shards"] = {"workers": shards.count, "users": list(shards.info.users)}
    validation_metrics = {}
    # The interactions the reported model learnt from: the reference of novelty@k and
    # popularity@k.
    reported_train = split.train.matrix

    def evaluate_reported(part: str) -> dict:
        """The reported model's metrics on a part, its users' values written beside."""
        return evaluate_part(
            model,
            getattr(split, part),
            metrics,
            train=reported_train,
            users_file=_users_file(config, out, part),
            combine=None if shards is None else shards.combine,
        )

    started = time.perf_counter()
    if cls.closed_form:
        model.fit(split.train)
        train_seconds = time.perf_counter() - started
        epochs_run, best_epoch, seconds_per_epoch = 0, None, train_seconds
        if split.validation is not None:
            validation_metrics = evaluate_reported("validation")
    else:
        _compile(model, config)
        if not config.select and config.retrain and full_train is not None:
            selection = {"epochs_run": 0, "best_epoch": config.epochs, "validation": {}}
        elif (restore / SELECTION_FILE).is_file():
            # A rerun after the selection phase finished goes straight to the retraining.
            with open(restore / SELECTION_FILE, encoding="utf-8") as file:
                selection = json.load(file)
        else:
            history, evaluation, timer = fit(
                model,
                split.train.matrix,
                split.validation,
                config,
                backup,
                out,
                resuming,
                metrics=metrics,
                extra_callbacks=callbacks,
                shards=shards,
                restore=restore,
            )
            losses = history.history.get("loss", [])
            if timer.stopped_on_nan or any(not np.isfinite(v) for v in losses):
                # A rerun must start afresh, not resume from the diverged weights.
                discard_backup(out)
                raise TrainingDiverged(
                    f"the loss became NaN at epoch {timer.last_epoch}; no model was written. "
                    "Lower the learning rate (--lr) or check the data."
                )
            selection = {
                "epochs_run": timer.last_epoch,
                "best_epoch": evaluation.best_epoch if evaluation else timer.last_epoch,
                "validation": dict(evaluation.best_metrics) if evaluation else {},
            }
        epochs_run, best_epoch = selection["epochs_run"], selection["best_epoch"]
        validation_metrics = selection["validation"]
        # history.csv holds every epoch, also those of an earlier, interrupted process.
        seconds = epoch_seconds(out / HISTORY_FILE)
        seconds_per_epoch = float(np.mean(seconds)) if seconds else None
        train_seconds = float(np.sum(seconds))
        if config.retrain and full_train is not None and best_epoch:
            backup.mkdir(parents=True, exist_ok=True)
            write_json_atomic(backup / SELECTION_FILE, selection)
            _say(config, f"retraining on the full train lines for {best_epoch} epochs")
            keras.utils.set_random_seed(config.seed)
            model = _new_model(cls, settings, split)
            _compile(model, config)
            retrain_config = dataclasses.replace(config, epochs=best_epoch)
            _, _, retrain_timer = fit(
                model,
                full_train.matrix,
                None,
                retrain_config,
                backup / RETRAIN_DIR,
                None,
                shards=shards,
                restore=restore / RETRAIN_DIR,
            )
            train_seconds += float(np.sum(retrain_timer.seconds))
        retrained = config.retrain and full_train is not None
        summary["reported_model"] = (
            "retrained on the full train lines for the best epoch count"
            if retrained
            else "best validation epoch"
        )
        if retrained:
            reported_train = full_train.matrix
        elif split.validation is not None and _users_file(config, out, "validation"):
            # The reported model is the selected epoch's: its validation users, for paired
            # comparisons on the validation part (the averages are the selection's). Tuning
            # trials skip this second evaluation.
            evaluate_reported("validation")
    test_metrics = {}
    if split.test:
        test_metrics = evaluate_reported("test")
    summary.update(
        {
            "config": model.get_config(),
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "seconds_per_epoch": seconds_per_epoch,
            "train_seconds": train_seconds,
            "peak_rss_mb": peak_rss_mb(),
            "validation": validation_metrics,
            "test": test_metrics,
            # Which users and items each part held: `compare` pairs only runs that agree
            # (a worker's shard holds part of them: none).
            "split_digests": {
                part: getattr(split, part).digest()
                for part in ("validation", "test")
                if getattr(split, part) is not None and shards is None
            },
        }
    )
    save_model_atomic(model, out / MODEL_FILE)
    write_json_atomic(out / METRICS_FILE, summary)
    discard_backup(out)
    return RunResult(out, model, summary)


def fit_variants(config: RunConfig, variants, read_test: bool = False) -> dict:
    """A closed-form run scored on its validation part at several variants, from one fit.

    The linear autoencoders' inverse `C` does not depend on their `variant_settings`
    (`alpha`; RDLAE's `xi`): one factorisation scores every variant, each as a run with
    those settings would score (`LinearAutoencoder.variant_scores`). No model is written:
    this is how the tuner scores a grid of them per fit (`--variants`). The run directory
    gets `run.json` and, last, `metrics.json`: the summary, whose `validation` is the
    run's own settings' and whose `variants` lists each variant's settings and figures.

    Args:
        config: RunConfig. A closed-form linear autoencoder with a validation part.
        variants: sequence of dict. Changed `variant_settings`; `{}` is the run's own.
        read_test: bool. Load the test part too (it is not evaluated). Defaults to False.

    Returns:
        The summary written to `metrics.json`.
    """
    _check_run(config)
    configure_threads(config.threads)
    cls = model_class(config.model)
    if not getattr(cls, "variant_settings", ()):
        raise ConfigError(
            f"{config.model} has no settings to score as variants of one fit (the "
            "closed-form linear autoencoders do)"
        )
    opened = _open_run(config, None, None, read_test)
    split = opened.split
    if split.validation is None:
        raise ConfigError(
            "variants are scored on the validation part: give --validation-fraction (or "
            "--heldout-users)"
        )
    import numpy as np
    import scipy.sparse as sp

    model = _new_model(cls, opened.settings, split)
    variants = [dict(changes) for changes in variants]
    try:
        for changes in variants:
            model.variant(**changes)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    model.check_memory(split.train.n_items, matrices=1)
    started = time.perf_counter()
    inverse = model.solve_inverse(sp.csr_matrix(split.train.matrix, dtype=np.float32))
    inverse_seconds = time.perf_counter() - started
    results = evaluate_ranking_variants(
        lambda inputs, batch_size: model.variant_scores(inverse, inputs, variants, batch_size),
        split.validation,
        opened.metrics,
        train=split.train.matrix,
    )
    own = next((index for index, changes in enumerate(variants) if not changes), None)
    summary = {
        "model": config.model,
        "config": model.get_config(),
        "data": opened.spec.data,
        "protocol": split.protocol,
        "n_users": split.train.n_users,
        "n_items": split.train.n_items,
        "threads": config.threads,
        "epochs_run": 0,
        "best_epoch": None,
        "train_seconds": inverse_seconds,
        "variant_seconds": time.perf_counter() - started - inverse_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "validation": {} if own is None else results[own].metrics,
        "variants": [
            {"settings": changes, "validation": result.metrics}
            for changes, result in zip(variants, results)
        ],
        "split_digests": {"validation": split.validation.digest()},
    }
    write_json_atomic(opened.out / METRICS_FILE, summary)
    return summary


# The fields of a run's config that decide its result: run.json keeps them, so that
# `train --config RUN_DIR/run.json` repeats the run (threads, output and verbosity aside).
RUN_FLAGS = (
    "epochs",
    "lr",
    "lr_decay",
    "batch_size",
    "metrics",
    "monitor",
    "eval_every",
    "patience",
    "retrain",
    "precision",
    "jit_compile",
    "distribute",
    "devices",
    "shard_users",
    "seed",
)


def run_flags(config: RunConfig) -> dict:
    """The fit flags of a run, as `run.json` keeps them under `run`."""
    flags = {name: getattr(config, name) for name in RUN_FLAGS}
    flags["metrics"] = list(flags["metrics"] or DEFAULT_METRICS)
    return flags


def _check_run(config: RunConfig) -> None:
    """The run's numbers, checked before anything is read or written."""
    import numbers

    def whole(value) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    checks = [
        ("--epochs", config.epochs, whole(config.epochs) and config.epochs >= 1, ">= 1"),
        (
            "--eval-every",
            config.eval_every,
            whole(config.eval_every) and config.eval_every >= 1,
            ">= 1",
        ),
        (
            "--patience",
            config.patience,
            config.patience is None or (whole(config.patience) and config.patience >= 1),
            ">= 1 or None",
        ),
        (
            "--threads",
            config.threads,
            config.threads is None or (whole(config.threads) and config.threads >= 1),
            ">= 1 or None",
        ),
        (
            "--batch-size",
            config.batch_size,
            config.batch_size is None or (whole(config.batch_size) and config.batch_size >= 0),
            ">= 0 or None",
        ),
        (
            "--lr",
            config.lr,
            config.lr is None
            or (isinstance(config.lr, numbers.Real) and 0 < config.lr < float("inf")),
            "> 0 or None",
        ),
        ("--seed", config.seed, whole(config.seed) and 0 <= config.seed < 2**32, "in [0, 2**32)"),
        (
            "--lr-decay",
            config.lr_decay,
            config.lr_decay is None
            or (isinstance(config.lr_decay, numbers.Real) and 0 < config.lr_decay <= 1),
            "in (0, 1] or None",
        ),
    ]
    for flag, value, valid, expected in checks:
        if not valid:
            raise ConfigError(f"{flag} should be {expected}. Received: {value!r}")


def _users_file(config: RunConfig, out: Path, part: str) -> Path | None:
    # A worker holding a shard of the users has its own users only.
    if not config.user_metrics or config.shard_users:
        return None
    return out / USERS_FILE.format(part=part)


def _replicas() -> int:
    """The replicas of the strategy in scope (1 outside any)."""
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _new_model(cls, settings: dict, split):
    model = cls(**settings)
    model.set_item_ids(split.item_ids)
    if model.user_conditioned:
        model.set_user_ids(split.train.user_ids)
    return model


def _compile(model, config: RunConfig) -> None:
    from keras_recae.optimizers import FusedAdam

    # A model that asks for row-sparse updates (`sparse_updates`) gets the lazy Adam.
    optimizer = FusedAdam(config.lr, sparse_updates=getattr(model, "sparse_updates", False))
    model.compile(optimizer=optimizer, jit_compile=config.jit_compile)


def fit(
    model,
    matrix,
    validation,
    config: RunConfig,
    backup: Path,
    out: Path | None,
    resuming: bool = False,
    metrics=None,
    extra_callbacks=(),
    shards=None,
    restore: Path | None = None,
):
    """`model.fit` with validation, resumable backups and per-epoch timing.

    The one fit path of ranking and rating models: the model prepares itself for `matrix`
    (`adapt`), gives its batches (`training_batches`), and the validation part is
    evaluated with ranking metrics, or RMSE and MAE for rating models.

    With `shards` (`shard_users`), `matrix` is this worker's users: the model adapts to
    the item counts of all workers, the worker's batches hold `batch_size / workers` of
    its users (padded with empty rows to as many batches as the largest shard's), and the
    validation figures are combined over the workers. The fit resumes from the backup in
    `restore` (default `backup`, where each epoch's backup is written).

    Returns:
        `(history, evaluation, timer)`: Keras's `History`, the model-selection callback
        (None without `validation`) and the `EpochTimer`.
    """
    from keras_recae.callbacks import EpochTimer, RunBackup

    n_rows = model.n_training_rows(matrix) if shards is None else shards.info.n_users
    config = with_model_defaults(config, n_rows=n_rows, replicas=_replicas())
    restore = backup if restore is None else restore
    start = resumed_epoch(restore)
    # A fit that stopped early before its process was killed trains no further epoch: its
    # backup's weights and selection are taken up, and the best epoch's weights restored.
    epochs = start if RunBackup.committed_stop(restore) else config.epochs
    if start:
        _say(config, f"resuming at epoch {start + 1} from the backup in {restore}")
    timer = EpochTimer(initial_epoch=start)
    evaluation = None
    if validation is not None:
        evaluation = _selection_callback(model, validation, config, backup, metrics, matrix)
        if shards is not None:
            evaluation.combine = shards.combine
    callbacks = _callbacks(timer, evaluation, config, backup, out, resuming, restore)
    # Last: they see the validation logs, and the epoch is backed up and logged first.
    callbacks += list(extra_callbacks)
    # 0: one batch of every training row (items for the item-based models).
    batch_size = config.batch_size or model.n_training_rows(matrix)
    if shards is None:
        model.adapt(matrix)
    else:
        model.adapt(matrix, combine=shards.combine)
        batch_size //= shards.count
        matrix = shards.padded(matrix, batch_size)
    dataset = model.training_batches(
        matrix, batch_size, shuffle=True, seed=config.seed, initial_epoch=start
    )
    # One iterator over all the epochs of this process, each epoch a further pass: Keras
    # opens a new iterator per epoch of a finite dataset (two, in Keras 3.15), which would
    # tie the passes' orders to how Keras iterates rather than to the epoch.
    steps = int(dataset.cardinality())
    if steps < 1:
        raise ValueError(
            f"{type(model).__name__}.training_batches should give a known, non-zero number of "
            f"batches a pass (tf.data cardinality {steps})"
        )
    batches = dataset.repeat()
    if shards is not None:
        from keras_recae import distribute

        batches, _ = distribute.distribute_batches(shards.strategy, dataset, per_worker=True)
    history = model.fit(
        batches,
        steps_per_epoch=steps,
        epochs=epochs,
        callbacks=callbacks,
        verbose=config.verbose if config.verbose > 1 else 0,
        shuffle=False,
    )
    return history, evaluation, timer


def selection_monitor(cls, monitor: str) -> tuple[str, str]:
    """The validation metric that chooses the epoch, and whether to maximize or minimize it.

    Ranking models: `monitor` without its `val_` prefix, in lower case; rating models:
    `rmse`, or `mae` when asked.
    """
    from keras_recae.callbacks import RatingEvaluation

    monitor = monitor.lower().removeprefix("val_")
    if cls.explicit:
        return (monitor if monitor in RatingEvaluation.METRICS else "rmse"), "minimize"
    return monitor, "maximize"


def _selection_callback(model, validation, config: RunConfig, backup: Path, metrics, train):
    from keras_recae.callbacks import RankingEvaluation, RatingEvaluation

    common = {
        "every": config.eval_every,
        "patience": config.patience,
        "batch_size": config.batch_size or EVAL_BATCH_SIZE,
        "verbose": 1 if config.verbose else 0,
        # Its state goes with each epoch's backup (`RunBackup`), not to files of its own.
        "state_dir": None,
    }
    if model.explicit:
        monitor, _ = selection_monitor(type(model), config.monitor)
        return RatingEvaluation(validation, monitor=monitor, **common)
    metrics = list(metrics or config.metrics or DEFAULT_METRICS)
    return RankingEvaluation(
        validation, metrics=metrics, monitor=config.monitor, train=train, **common
    )


def _callbacks(
    timer, evaluation, config: RunConfig, backup: Path, out: Path | None, resuming, restore: Path
):
    """Timing, NaN stop, evaluation, history, TensorBoard, resume (from `restore`) and decay,
    in the order they need."""
    import keras

    from keras_recae.callbacks import LearningRateDecay, RunBackup

    callbacks = [timer, keras.callbacks.TerminateOnNaN()]
    if evaluation is not None:
        callbacks.append(evaluation)
    if out is not None:
        history = out / HISTORY_FILE
        if resuming:
            # Rows of epochs after the backup's were written by a process killed before it
            # committed them: the resumed epochs write them again.
            keep_history_rows(history, RunBackup.committed_epoch(restore))
        callbacks.append(keras.callbacks.CSVLogger(str(history), append=resuming))
    if config.tensorboard:
        # After the evaluation: its `val_` metrics are in the logs TensorBoard writes.
        log_dir = Path(config.tensorboard) / ("retrain" if out is None else "")
        callbacks.append(keras.callbacks.TensorBoard(str(log_dir), write_graph=False))
    # Last: the epoch's files above are written before its backup commits it.
    callbacks.append(
        RunBackup(str(backup), stateful=[evaluation] if evaluation else [], restore_from=restore)
    )
    if config.lr_decay:
        # First, so that the history file sees the epoch's `learning_rate`.
        callbacks.insert(0, LearningRateDecay(config.lr, config.lr_decay))
    return callbacks


def resumed_epoch(backup: Path) -> int:
    """The epoch a run resumes at from `backup` (the epochs its `RunBackup` holds); 0."""
    from keras_recae.callbacks import RunBackup

    return RunBackup.committed_epoch(backup)


def keep_history_rows(path: Path, epochs: int) -> None:
    """Keeps the header and the first `epochs` rows of a history file (rewritten atomically)."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = lines[: epochs + 1]
    if len(kept) == len(lines):
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(kept), encoding="utf-8")
    temporary.replace(path)


def evaluate_part(
    model,
    eval_set,
    metrics,
    batch_size: int = EVAL_BATCH_SIZE,
    train=None,
    users_file: Path | None = None,
    combine=None,
) -> dict:
    """Ranking metrics of an evaluation set, or RMSE and MAE for rating models.

    Args:
        train: scipy sparse matrix | None. The model's training interactions, for
            `novelty@k` and `popularity@k`.
        users_file: Path | None. Where a ranking evaluation also writes each evaluated
            user's metrics (see `runs.write_users_atomic`). Defaults to None.
        combine: callable | None. Under `shard_users`: sums an array over the workers,
            each evaluating its own users (`evaluation.combined_ranking`). Defaults to None.
    """
    if model.explicit:
        return evaluate_ratings(model, eval_set, batch_size=batch_size)
    if combine is not None:
        return combined_ranking(model, eval_set, metrics, combine, batch_size=batch_size)
    results = evaluate_ranking_users(model, eval_set, metrics, batch_size=batch_size, train=train)
    if users_file is not None:
        write_users_atomic(results.users, users_file)
    return results.metrics


def evaluate_run(
    run_dir,
    data: DataSpec | None = None,
    metrics=None,
    batch_size: int = EVAL_BATCH_SIZE,
    threads: int | None = None,
) -> dict:
    """Evaluates a run's model on the validation and test parts of its data.

    Args:
        run_dir: path. A run directory of `train` (or a `.keras` file).
        data: DataSpec | None. Fields that are not None replace those of the run's
            `run.json`; needed in full when the run has none. Defaults to None.
        metrics: sequence of str | None. Ranking metrics; `DEFAULT_METRICS` when None.
        batch_size: int. Users scored at once; 0 means 500. Defaults to 500.
        threads: int | None. CPU threads of TensorFlow and BLAS. Defaults to None.

    Returns:
        `{"protocol": ..., "validation": {...}, "test": {...}}`, a part present when the
        split has it.
    """
    from keras_recae.data.split import EvalSet, align_eval_set

    configure_threads(threads)
    run = load_run(run_dir)
    spec = DataSpec.from_dict(run.options)
    if data is not None:
        spec = spec.updated(**data.to_dict())
    if spec.data is None:
        raise ConfigError(f"--data is needed: {run_dir} has no {RUN_FILE} naming the data")
    split, _ = load_split(spec, explicit=run.model.explicit)
    metrics = list(metrics or DEFAULT_METRICS)
    results = {"protocol": split.protocol}
    train = split.train.matrix
    if run.model.item_ids is not None:
        # The training interactions over the model's columns, for novelty and popularity.
        train_users = EvalSet(train, train, split.train.user_ids)
        train = align_eval_set(train_users, split.item_ids, run.model.item_ids).inputs
    for part in ("validation", "test"):
        eval_set = getattr(split, part)
        if eval_set is None:
            continue
        if run.model.item_ids is not None:
            eval_set = align_eval_set(eval_set, split.item_ids, run.model.item_ids)
        results[part] = evaluate_part(
            run.model, eval_set, metrics, batch_size=batch_size or EVAL_BATCH_SIZE, train=train
        )
    return results


def _say(config: RunConfig, message: str) -> None:
    if config.verbose:
        print(message, flush=True)
