"""Hyperparameter search on Optuna, over the runner.

Each trial is one `keras_recae.training.train` run with settings drawn from the model's
search space (`Recommender.search_space`, overridden or extended by `TuneConfig.space`).
Its objective is the validation figure of the runner's model selection (`monitor`, at the
epoch the run's early stopping keeps: epochs are not searched); every evaluation is reported
to the trial, so that the pruner stops weak trials early. The test lines are never read:
the runner loads the data without them (`read_test=False`).

A study lives in a directory:

- `study.journal`: Optuna's journal storage, one JSON line per event: small text that goes
  into git. Or any Optuna storage URL (`TuneConfig.storage`, e.g. PostgreSQL), which is how
  machines share a study.
- `trials/NNNNN/`: each trial's run (`run.json`, `history.csv`, `metrics.json`), without
  its weights.
- `best.json` (the winner: settings, learning rate, epoch count, value), `trials.csv` (one
  row per trial) and, at the end, `history.png`, `importances.png` and `curves.png`.

A study that is killed resumes where it stopped when the same tuning runs again: trials
left running by a dead process are marked failed and queued again with the same settings,
and their runs resume from their backups, so the study ends as an uninterrupted one would.
Several processes can work on one study at once (`workers`, or the same command started
twice).

Example:

```python
from keras_recae.data.spec import DataSpec
from keras_recae.training import RunConfig
from keras_recae.tuning import TuneConfig, tune

result = tune(
    TuneConfig(
        RunConfig("mult-vae", DataSpec("synthetic"), epochs=20, monitor="ndcg@100"),
        study_dir="studies/mult-vae",
        trials=20,
    )
)
print(result.best["value"], result.best["settings"])
```
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import inspect
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path

from keras_recae.errors import ConfigError, TrainingDiverged
from keras_recae.models.registry import constructor_arguments, model_class
from keras_recae.runs import (
    BACKUP_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    discard_backup,
    read_json,
    write_json_atomic,
)
from keras_recae.search_space import RUN_PARAMETERS, Dimension, parse_space
from keras_recae.training import (
    RunConfig,
    fit_variants,
    selection_monitor,
    train,
    with_model_defaults,
)

STUDY_FILE = "study.journal"
BEST_FILE = "best.json"
# What `write_best` puts in best.json.
BEST_KEYS = frozenset(
    {
        "model",
        "study",
        "trial",
        "monitor",
        "direction",
        "value",
        "best_epoch",
        "epochs_run",
        "settings",
        "run",
        "selection",
        "data",
        "trials",
        "train_seconds",
    }
)
TRIALS_FILE = "trials.csv"
TRIALS_DIR = "trials"
PRUNERS = ("median", "hyperband", "none")
# The trial whose run a retried trial continues (its directory under `trials/`).
RUN_NUMBER = "run_number"
# The run (trial directory) whose fit scored a variant trial.
VARIANT_OF = "variant_of"
WORKER = "worker"
MAX_FAILURES = 5


@dataclasses.dataclass
class TuneConfig:
    """A tuning study.

    Args:
        run: RunConfig. The template of every trial's run: model, data, epochs (the most;
            early stopping chooses), `monitor` (the objective), `eval_every`, `patience`,
            seed, threads. Its `retrain` and `out` are ignored.
        study_dir: str. The study's directory.
        trials: int. The study's total of finished trials (complete or pruned): running
            the same study again with a larger number adds trials. Defaults to 20.
        timeout: float | None. Start no new trial after this many seconds. Defaults to None.
        space: dict. Dimensions (`keras_recae.search_space`, or their command-line
            strings) that replace or add to the model's default space; a setting in
            `run.settings` is fixed and leaves the default space, and a one-value choice
            fixes a run parameter (`{"lr": "0.001"}`). Defaults to `{}`.
        pruner: str | optuna.pruners.BasePruner. `"median"` (stop a trial whose figure is
            below the median of earlier trials at the same epoch), `"hyperband"`, `"none"`,
            or an Optuna pruner. Defaults to `"median"`.
        storage: str | None. An Optuna storage URL (`postgresql://...`, `mysql://...`,
            `sqlite:///...`); None keeps the study in `study_dir/study.journal`.
            Defaults to None.
        study_name: str | None. The study's name in the storage; None means the model's
            name. Defaults to None.
        workers: int. Trial processes working on the study at once, each on
            `run.threads` threads. Defaults to 1.
        seed: int. Seed of the sampler: with one worker, the same seed gives the same
            trials. Defaults to 0.
        figures: bool. Write the PNG figures at the end (they need matplotlib).
            Defaults to True.
        verbose: int. 0 is silent; 1 prints a line per trial. Defaults to 1.
        variants: int. For the closed-form linear autoencoders: each fit also scores this
            many evenly spaced values (log-spaced on a log dimension, every value of a
            choice) of each searched setting its inverse does not depend on (`alpha`,
            RDLAE's `xi`; `variant_settings`), every combination recorded as a finished
            trial of its own, at the cost of one scoring pass on the validation part and
            no factorisation. 0 scores only the sampled settings. Defaults to 0.
    """

    run: RunConfig
    study_dir: str
    trials: int = 20
    timeout: float | None = None
    space: dict = dataclasses.field(default_factory=dict)
    pruner: object = "median"
    storage: str | None = None
    study_name: str | None = None
    workers: int = 1
    seed: int = 0
    figures: bool = True
    verbose: int = 1
    variants: int = 0


@dataclasses.dataclass
class TuneResult:
    """A finished tuning: the Optuna study, its `best.json` content and its directory."""

    study: object
    best: dict
    study_dir: Path


def setting_kinds(cls) -> dict:
    """The Python type (`int` or `float`) of each numeric setting, from its default."""
    kinds = dict(RUN_PARAMETERS)
    parameters = inspect.signature(cls.__init__).parameters
    for name in constructor_arguments(cls):
        default = parameters[name].default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            kinds[name] = type(default)
    return kinds


def search_space(cls, overrides: dict | None = None) -> dict:
    """The model's default space with `overrides` (dimensions or `--space` strings) applied.

    Raises:
        ConfigError: for a name that is neither a constructor argument of the model nor a
            run setting (`lr`, `lr_decay`, `batch_size`), or an empty space.
    """
    overrides = dict(overrides or {})
    texts = [f"{name}={value}" for name, value in overrides.items() if isinstance(value, str)]
    space = {**cls.search_space, **{n: d for n, d in overrides.items() if not isinstance(d, str)}}
    space.update(parse_space(texts, setting_kinds(cls)))
    accepted = set(constructor_arguments(cls)) - {"seed"}
    for name, dimension in space.items():
        if name not in accepted and name not in RUN_PARAMETERS:
            raise ConfigError(
                f"--space {name}: {cls.__name__} has no setting {name!r}. Its settings: "
                f"{', '.join(sorted(accepted | set(RUN_PARAMETERS)))}"
            )
        if not isinstance(dimension, Dimension):
            raise ConfigError(f"--space {name}: expected a Dimension. Received: {dimension!r}")
    if not space:
        raise ConfigError(f"{cls.__name__} declares no search space: give one with --space")
    return space


def study_space(config: TuneConfig) -> dict:
    """The space of a study: settings the run fixes are not searched, unless `space` says."""
    space = search_space(model_class(config.run.model), config.space)
    fixed = set(config.run.settings) - set(config.space)
    return {name: dimension for name, dimension in space.items() if name not in fixed}


def objective_of(config: RunConfig) -> tuple[str, str]:
    """The validation metric a study optimises and its direction: the run's `monitor`."""
    return selection_monitor(model_class(config.model), config.monitor)


def tune(config: TuneConfig) -> TuneResult:
    """Runs (or continues) a study until it holds `config.trials` finished trials.

    Raises:
        ConfigError: a setting that cannot work, before any trial starts.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # `best.json` names the learning rate its trials used, also when the model chose it.
    config = dataclasses.replace(config, run=with_model_defaults(config.run))
    space = study_space(config)
    if config.trials < 1 or config.workers < 1:
        raise ConfigError("--trials and --workers should be positive integers")
    variant_grid(config, space)
    _pruner(config.pruner, config.run.eval_every)
    study_dir = Path(config.study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    study = load_study(config)
    if config.storage is None:
        with _ask_lock(config):
            _recover_stale_trials(study)
    started = time.monotonic()
    if config.workers == 1:
        _work(config, space, 0, started)
    else:
        import multiprocessing

        # TensorFlow does not survive a fork: each worker is a fresh interpreter.
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(target=_work, args=(config, space, index, started))
            for index in range(config.workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [index for index, process in enumerate(processes) if process.exitcode]
        if failed:
            raise RuntimeError(
                f"tuning workers {failed} stopped with an error (see their output above); "
                "the study keeps what they finished: run the same tuning again to go on"
            )
    study = load_study(config)
    best = write_outputs(study, config)
    if config.figures:
        write_figures(study, study_dir, objective_of(config.run)[0])
    return TuneResult(study, best, study_dir)


def load_study(config: TuneConfig):
    """The study of `config`, created when new."""
    import optuna

    study_dir = Path(config.study_dir)
    if config.storage is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        journal = study_dir / STUDY_FILE
        repair_journal(journal)
        storage = JournalStorage(JournalFileBackend(str(journal)))
    else:
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

        try:
            # Each running trial beats a heartbeat; one silent for longer than the grace
            # period (its machine died) is failed and queued again, up to three times.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    config.storage,
                    heartbeat_interval=60,
                    grace_period=180,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except Exception as error:  # sqlalchemy's errors for a URL it cannot use
            raise ConfigError(f"--storage {config.storage}: {error}") from None
    _, direction = objective_of(config.run)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=config.study_name or config.run.model,
            direction=direction,
            pruner=_pruner(config.pruner, config.run.eval_every),
            load_if_exists=True,
        )
    except ValueError as error:
        raise ConfigError(f"--storage {config.storage}: {error}") from None
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"{study_dir}: the study {study.study_name!r} {study.direction.name.lower()}s "
            f"its objective; {config.run.monitor} is to {direction}: use another --study"
        )
    return study


def _pruner(pruner, eval_every: int):
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        # Two finished trials before any pruning, and never before the third evaluation
        # (steps are epochs, evaluated every `eval_every`).
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3 * eval_every)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner should be one of {', '.join(PRUNERS)}. Received: {pruner!r}")


def _sampler(seed: int, worker: int, finished: int):
    import optuna

    # Seeded from the history's length, so that a resumed study draws what an
    # uninterrupted one would have drawn (TPE reads only the finished trials).
    return optuna.samplers.TPESampler(
        seed=seed + 1_000_003 * worker + finished, n_startup_trials=5, constant_liar=True
    )


def _work(config: TuneConfig, space: dict, worker: int, started: float) -> None:
    """One process's share of the study: trials until the study has enough or time is up.

    Stops after `MAX_FAILURES` trials in a row failed (their loss diverged): a space whose
    every point fails would otherwise never fill the study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(config)
    failures = 0
    while failures < MAX_FAILURES:
        if config.timeout is not None and time.monotonic() - started > config.timeout:
            return
        if config.storage is None:
            with _ask_lock(config):
                trial = _next_trial(study, config, worker)
            if trial is None:
                return
            state = _run_trial(study, trial, config, space)
        else:
            # Trials of machines whose heartbeat stopped are failed and queued again first.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            finished = _finished_count(study, config)
            if finished is None:
                return
            # Optuna's own loop beats the trials' heartbeats in a shared database.
            study.sampler = _sampler(config.seed, worker, finished)
            study.optimize(
                lambda trial: _objective(trial, config, space),
                n_trials=1,
                catch=(TrainingDiverged,),
                callbacks=[lambda study, trial: _after_trial(study, trial, config)],
            )
            state = study.trials[-1].state.name
        failures = failures + 1 if state == "FAIL" else 0
    print(f"stopped: {MAX_FAILURES} trials in a row failed; see `error` in {TRIALS_FILE}")


def _finished_count(study, config: TuneConfig) -> int | None:
    """The study's finished trials, or None when it has its total and none is queued."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if not waiting and finished + running >= config.trials:
        return None
    return finished


def _next_trial(study, config: TuneConfig, worker: int):
    """A new trial (a queued one first), or None when the study has its total."""
    finished = _finished_count(study, config)
    if finished is None:
        return None
    study.sampler = _sampler(config.seed, worker, finished)
    trial = study.ask()
    # Recorded at once, so that a later process can tell whether this one is still alive.
    trial.set_user_attr(WORKER, _worker_id())
    return trial


def repair_journal(path) -> bool:
    """Cuts a study journal back to its last whole line, under Optuna's own lock.

    Optuna appends each event as one line; a write cut short (a full disk, a file-size
    limit, a killed process) leaves a partial line, onto which the next append would write,
    and the study would no longer load. The partial event never happened: it goes. Returns
    whether anything was cut.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    # The lock `JournalFileBackend` takes for each append (blocking).
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb+") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 1))
            if file.read(1) == b"\n":
                return False
            # Back to the last newline, reading the tail in blocks.
            end = size
            while end > 0:
                start = max(0, end - (1 << 16))
                file.seek(start)
                block = file.read(end - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    file.truncate(start + newline + 1)
                    break
                end = start
            else:
                file.truncate(0)
            file.flush()
            os.fsync(file.fileno())
    finally:
        lock.release()
    warnings.warn(f"{path}: its last event was cut short (a full disk?) and was removed")
    return True


@contextlib.contextmanager
def _ask_lock(config: TuneConfig):
    """Holds the journal's lock file while a process counts the trials and asks for one.

    With the journal file all workers are on this machine: the lock makes the count and
    the new trial one step, so that two workers never start one trial too many. (Machines
    sharing a database share no lock: a trial more than the total may then run when two
    of them ask at the same moment.)
    """
    import fcntl

    with open(Path(config.study_dir) / ".ask.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_trial(study, trial, config: TuneConfig, space: dict) -> str:
    """Runs a trial and records its end; returns its state's name."""
    import optuna
    from optuna.trial import TrialState

    try:
        value = _objective(trial, config, space)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    except TrainingDiverged as error:
        trial.set_user_attr("error", str(error))
        frozen = study.tell(trial, state=TrialState.FAIL)
    except BaseException:
        # An error, or an interrupt in a notebook whose kernel lives on: the trial fails,
        # and its settings are queued to run again from its backup.
        study.tell(trial, state=TrialState.FAIL)
        _requeue(study, study.trials[trial.number])
        raise
    else:
        frozen = study.tell(trial, value)
    _after_trial(study, frozen, config)
    return frozen.state.name


def suggest(trial, space: dict) -> dict:
    """The settings of a trial, drawn from `space`."""
    params = {}
    for name, dimension in space.items():
        if dimension.kind == "float":
            params[name] = trial.suggest_float(
                name, dimension.low, dimension.high, log=dimension.log
            )
        elif dimension.kind == "int":
            params[name] = trial.suggest_int(name, dimension.low, dimension.high, log=dimension.log)
        elif all(_is_primitive(value) for value in dimension.values):
            params[name] = trial.suggest_categorical(name, list(dimension.values))
        else:
            # Optuna's choices are numbers, strings or None: lists go in as their JSON.
            texts = [json.dumps(value) for value in dimension.values]
            params[name] = json.loads(trial.suggest_categorical(name, texts))
    return params


def _is_primitive(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def trial_config(template: RunConfig, params: dict, out: Path) -> RunConfig:
    """The run of one trial: the template with the trial's settings and directory."""
    run_fields = {name: value for name, value in params.items() if name in RUN_PARAMETERS}
    settings = {name: value for name, value in params.items() if name not in RUN_PARAMETERS}
    data = template.data
    if model_class(template.model).closed_form and data.validation_fraction is None:
        # Closed-form models fit without a validation part by default; a study needs one.
        data = data.updated(validation_fraction=0.1)
    return dataclasses.replace(
        template,
        data=data,
        settings={**template.settings, **settings},
        out=str(out),
        retrain=False,
        select=True,
        verbose=0,
        # Trials are compared by their averages; per-user files are for reported runs.
        user_metrics=False,
        tensorboard=str(Path(template.tensorboard) / out.name) if template.tensorboard else None,
        **run_fields,
    )


def pruning_callback(trial, monitor: str, every: int):
    """A Keras callback reporting `val_<monitor>` at each evaluation epoch to `trial`.

    On the pruner's advice it raises `optuna.TrialPruned`, which ends the run's `fit` after
    the epoch was logged.
    """
    import keras
    import optuna

    class _Pruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            step = epoch + 1
            value = (logs or {}).get(f"val_{monitor}")
            if step % every or value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {step}")

    return _Pruning()


def _objective(trial, config: TuneConfig, space: dict) -> float:
    params = suggest(trial, space)
    number = trial.user_attrs.get(RUN_NUMBER, trial.number)
    trial.set_user_attr(RUN_NUMBER, number)
    out = Path(config.study_dir) / TRIALS_DIR / f"{number:05d}"
    run = trial_config(config.run, params, out)
    monitor, _ = objective_of(config.run)
    if (out / METRICS_FILE).is_file():
        # The run finished, but its process died before the study recorded it.
        summary = read_json(out / METRICS_FILE)
    else:
        import optuna

        if (out / BACKUP_DIR).is_dir():
            # A run resumed from its backup: its evaluations so far go to this trial too,
            # so that the pruner decides as it would have in the uninterrupted trial.
            for step, value in zip(*_validation_curve(out, monitor)):
                if step % run.eval_every == 0:
                    trial.report(value, step)
        callback = pruning_callback(trial, monitor, run.eval_every)
        try:
            if model_class(run.model).closed_form:
                summary = _train_in_child(run, [{}, *variant_grid(config, space)])
            else:
                summary = train(run, callbacks=[callback], read_test=False).summary
        except optuna.TrialPruned:
            _drop_weights(out)
            trial.set_user_attr("epochs_run", _history_length(out))
            raise
    _drop_weights(out)
    _record_variants(trial, summary, monitor, number)
    trial.set_user_attr("best_epoch", summary["best_epoch"])
    trial.set_user_attr("epochs_run", summary["epochs_run"])
    trial.set_user_attr("train_seconds", summary["train_seconds"])
    value = summary["validation"].get(monitor)
    if value is None:
        raise ConfigError(
            f"the runs of this study have no validation figure {monitor!r}: the protocol "
            "needs a validation part (--validation-fraction, --heldout-users)"
        )
    return float(value)


def variant_grid(config: TuneConfig, space: dict) -> list[dict]:
    """The variants each fit of the study scores besides its own settings (`variants`).

    Raises:
        ConfigError: `variants` for a model or space without variant settings, or below 2.
    """
    if not config.variants:
        return []
    import itertools

    import numpy as np

    cls = model_class(config.run.model)
    names = [name for name in getattr(cls, "variant_settings", ()) if name in space]
    if config.variants < 2 or not names:
        searched = getattr(cls, "variant_settings", ())
        raise ConfigError(
            f"--variants should be 2 or more, for a model whose searched settings include "
            f"some a fit's inverse does not depend on; {config.run.model}'s are "
            f"{', '.join(searched) or 'none'}. Received: {config.variants}"
        )
    axes = []
    for name in names:
        dimension = space[name]
        if dimension.kind == "choice":
            axes.append(list(dimension.values))
            continue
        if dimension.log:
            values = np.geomspace(dimension.low, dimension.high, config.variants)
        else:
            values = np.linspace(dimension.low, dimension.high, config.variants)
        values = np.clip(values, dimension.low, dimension.high)
        if dimension.kind == "int":
            values = np.unique(np.round(values)).astype(int)
        axes.append([value.item() for value in values])
    return [dict(zip(names, point)) for point in itertools.product(*axes)]


def _record_variants(trial, summary: dict, monitor: str, number: int) -> None:
    """Adds each variant a fit scored as a finished trial of the study, once."""
    import optuna

    study = trial.study
    # By the run directory, which a trial requeued after its process died keeps.
    recorded = {
        json.dumps(t.params, sort_keys=True)
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(VARIANT_OF) == number
    }
    for variant in summary.get("variants", []):
        if not variant["settings"]:
            continue  # the trial's own settings: its value
        params = {**trial.params, **variant["settings"]}
        if json.dumps(params, sort_keys=True) in recorded:
            continue
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=_containing(trial.distributions, params),
                value=float(variant["validation"][monitor]),
                user_attrs={
                    RUN_NUMBER: number,
                    VARIANT_OF: number,
                    "best_epoch": None,
                    "epochs_run": 0,
                    "train_seconds": 0.0,
                },
            )
        )


def _containing(distributions: dict, params: dict) -> dict:
    """The distributions widened to hold the params: a queued trial's fixed value may lie
    outside its dimension (Optuna warns and runs it), which `create_trial` would refuse."""
    import optuna

    widened = dict(distributions)
    for name, value in params.items():
        distribution = distributions[name]
        if (
            isinstance(
                distribution,
                (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution),
            )
            and not distribution.low <= value <= distribution.high
        ):
            widened[name] = type(distribution)(
                min(distribution.low, value),
                max(distribution.high, value),
                log=distribution.log,
                step=distribution.step,
            )
    return widened


def _train_in_child(run: RunConfig, variants=()) -> dict:
    """`train(run, read_test=False)` in a new process; its summary.

    A closed-form model's `n_items x n_items` weights go through TensorFlow's CPU allocator,
    which keeps freed memory for the process: fitted in the study's process, the next trial's
    memory check would find that memory taken. A process of its own gives it back. With
    more `variants` than the run's own (`{}`), the child scores them all from one fit
    (`fit_variants`) instead.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_train, args=(run, list(variants), sender, os.getpid()))
    child.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        child.join()
        outcome = ("error", "exit", f"the process died with exit code {child.exitcode}")
    child.join()
    if outcome[0] == "ok":
        return outcome[1]
    _, kind, message = outcome
    errors = {
        "ConfigError": ConfigError,
        "TrainingDiverged": TrainingDiverged,
        "MemoryError": MemoryError,
    }
    if kind in errors:
        raise errors[kind](message)
    raise RuntimeError(f"the trial's process failed: {kind}: {message}")


def _die_with_parent(parent: int) -> None:
    """Asks Linux to kill this process when its parent (the study's) dies, however it dies:
    a trial left running after its study was stopped would hold the memory of the next."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the study's own exit handling is all there is
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _child_train(run: RunConfig, variants: list, sender, parent: int) -> None:
    _die_with_parent(parent)
    try:
        if len(variants) > 1:
            sender.send(("ok", fit_variants(run, variants)))
        else:
            sender.send(("ok", train(run, read_test=False).summary))
    except Exception as error:  # reported to the study's process, which raises it
        sender.send(("error", type(error).__name__, str(error)))
    finally:
        sender.close()


def _drop_weights(out: Path) -> None:
    """Removes a trial's weights (the model and the backup); its logs stay."""
    discard_backup(out)
    if (out / MODEL_FILE).exists():
        (out / MODEL_FILE).unlink()


def _history_length(out: Path) -> int:
    if not (out / HISTORY_FILE).is_file():
        return 0
    with open(out / HISTORY_FILE, encoding="utf-8", newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


def _worker_id() -> dict:
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid()}


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as file:
            return file.read().strip()
    except OSError:
        return ""


def _is_stale(trial) -> bool:
    """Whether a running trial of the study's journal file was left by a dead process.

    A journal file is written only by processes of this machine: a trial of another machine
    or boot, or of a process that is gone, is stale. (A shared database has Optuna's
    heartbeats instead.)
    """
    worker = trial.user_attrs.get(WORKER)
    if worker is None:
        # Between its creation and `_objective`'s first lines, which record the process.
        started = trial.datetime_start
        return started is None or time.time() - started.timestamp() > 60
    same_machine = worker.get("host") == socket.gethostname() and worker.get("boot") == _boot_id()
    if not same_machine:
        return True
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _recover_stale_trials(study) -> None:
    """Marks trials whose process died as failed and queues their settings again.

    Called under the journal's lock: two commands started at once recover a trial once.
    """
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_stale(trial):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        _requeue(study, trial)


def _requeue(study, trial) -> None:
    """Queues a failed trial's settings again, to run in the same run directory."""
    number = trial.user_attrs.get(RUN_NUMBER, trial.number)
    study.enqueue_trial(trial.params, user_attrs={RUN_NUMBER: number})


def _after_trial(study, trial, config: TuneConfig) -> None:
    write_outputs(study, config)
    if not config.verbose:
        return
    monitor, _ = objective_of(config.run)
    state = trial.state.name.lower()
    if trial.state.name == "COMPLETE":
        epoch = trial.user_attrs.get("best_epoch")
        figure = f"{monitor} {trial.value:.4f}" + ("" if epoch is None else f" at epoch {epoch}")
    elif trial.state.name == "PRUNED":
        last = trial.last_step
        value = trial.intermediate_values.get(last)
        figure = f"{monitor} {value:.4f} at epoch {last}" if last is not None else ""
    else:
        figure = "failed"
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no finished trial yet"
    seconds = (trial.duration.total_seconds()) if trial.duration else 0.0
    settings = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    print(f"trial {trial.number} {state}: {figure} in {seconds:.0f} s; {best}; {settings}")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_outputs(study, config: TuneConfig) -> dict:
    """Writes `best.json` and `trials.csv` (atomically); returns the best one's content."""
    from optuna.trial import TrialState

    study_dir = Path(config.study_dir)
    trials = study.get_trials(deepcopy=False)
    _write_trials_csv(trials, study_dir / TRIALS_FILE)
    monitor, direction = objective_of(config.run)
    counts = {
        state.name.lower(): sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return {}
    best = study.best_trial
    space = study_space(config)
    run_params = {k: v for k, v in _decoded(best.params, space).items() if k in RUN_PARAMETERS}
    settings = {k: v for k, v in _decoded(best.params, space).items() if k not in RUN_PARAMETERS}
    run = {**{name: getattr(config.run, name) for name in RUN_PARAMETERS}, **run_params}
    if run["batch_size"] is None:
        # The model sized the batch to the data: the winner's run names the size it trained
        # with, so that `train --params` repeats it whatever the model's rule becomes.
        run["batch_size"] = _trial_batch_size(study_dir, best)
    content = {
        "model": config.run.model,
        "study": study.study_name,
        "trial": best.number,
        "monitor": monitor,
        "direction": direction,
        "value": best.value,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "epochs_run": best.user_attrs.get("epochs_run"),
        "settings": {**config.run.settings, **settings},
        "run": run,
        # How the trials chose their epochs, for reading the value; `with_best` uses `run`.
        "selection": {
            "epochs": config.run.epochs,
            "eval_every": config.run.eval_every,
            "patience": config.run.patience,
            "precision": config.run.precision,
            "seed": config.run.seed,
        },
        "data": dataclasses.asdict(_seeded(config.run)),
        "trials": counts,
        "train_seconds": sum(t.user_attrs.get("train_seconds") or 0.0 for t in trials),
    }
    write_json_atomic(study_dir / BEST_FILE, content)
    return content


def _decoded(params: dict, space: dict) -> dict:
    """Trial params as settings: choices stored as JSON text read back."""
    decoded = {}
    for name, value in params.items():
        dimension = space.get(name)
        if (
            dimension is not None
            and dimension.kind == "choice"
            and isinstance(value, str)
            and not all(_is_primitive(v) for v in dimension.values)
        ):
            value = json.loads(value)
        decoded[name] = value
    return decoded


def _trial_batch_size(study_dir: Path, trial) -> int | None:
    """The batch size a trial's run trained with (its `metrics.json`; None without it)."""
    number = trial.user_attrs.get(RUN_NUMBER, trial.number)
    path = study_dir / TRIALS_DIR / f"{number:05d}" / METRICS_FILE
    if not path.is_file():
        return None
    return read_json(path).get("run", {}).get("batch_size")


def _write_trials_csv(trials, path: Path) -> None:
    names = sorted({name for trial in trials for name in trial.params})
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["number", "state", "value", *names, "best_epoch", "epochs_run", "seconds", "run"]
        )
        for trial in trials:
            seconds = trial.duration.total_seconds() if trial.duration else ""
            writer.writerow(
                [
                    trial.number,
                    trial.state.name.lower(),
                    "" if trial.value is None else trial.value,
                    *[trial.params.get(name, "") for name in names],
                    trial.user_attrs.get("best_epoch", ""),
                    trial.user_attrs.get("epochs_run", ""),
                    seconds,
                    trial.user_attrs.get(RUN_NUMBER, ""),
                ]
            )
    os.replace(temporary, path)


def write_figures(study, study_dir: Path, monitor: str, top: int = 5) -> list[Path]:
    """`history.png`, `importances.png` and `curves.png` of a study; returns those written.

    The importances need two finished trials or more with more than one searched setting;
    the curves are the validation figures, epoch by epoch, of the `top` best trials.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    written = []
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return written
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = optuna.visualization.matplotlib.plot_optimization_history(study)
        written.append(_save(axes.figure, Path(study_dir) / "history.png"))
        if len(complete) > 1 and len(complete[0].params) > 1:
            try:
                axes = optuna.visualization.matplotlib.plot_param_importances(
                    study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
                )
                written.append(_save(axes.figure, Path(study_dir) / "importances.png"))
            except (ValueError, RuntimeError):
                # Too few trials for the evaluator to tell the settings apart.
                pass
    reverse = study.direction.name == "MAXIMIZE"
    best = sorted(complete, key=lambda t: t.value, reverse=reverse)[:top]
    figure, axes = plt.subplots(figsize=(7, 4))
    for trial in best:
        number = trial.user_attrs.get(RUN_NUMBER, trial.number)
        epochs, values = _validation_curve(Path(study_dir) / TRIALS_DIR / f"{number:05d}", monitor)
        axes.plot(epochs, values, marker=".", label=f"trial {trial.number} ({trial.value:.4f})")
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"validation {monitor}")
    axes.set_title(f"The {len(best)} best trials")
    axes.legend()
    written.append(_save(figure, Path(study_dir) / "curves.png"))
    plt.close("all")
    return written


def _validation_curve(run_dir: Path, monitor: str) -> tuple[list, list]:
    """The evaluations of a run's history: epochs (1-based) and `val_<monitor>` values."""
    epochs, values, last = [], [], None
    if not (run_dir / HISTORY_FILE).is_file():
        return epochs, values
    with open(run_dir / HISTORY_FILE, encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            value = row.get(f"val_{monitor}")
            # Between evaluations the logs repeat the latest figure: keep the changes.
            if value and value != last and math.isfinite(float(value)):
                epochs.append(int(row["epoch"]) + 1)
                values.append(float(value))
                last = value
    return epochs, values


def _save(figure, path: Path) -> Path:
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    figure.tight_layout()
    figure.savefig(temporary, dpi=100)
    os.replace(temporary, path)
    return path


def with_best(config: RunConfig, best_path, given=frozenset()) -> RunConfig:
    """A run of a study's winner: its settings and run parameters, and its epoch count.

    Args:
        config: RunConfig. The run; its settings win over the study's.
        best_path: path. A study's `best.json`, or the study directory.
        given: set of str. Run parameters (`lr`, `lr_decay`, `batch_size`) the caller set,
            which win over the study's.

    Returns:
        The run with the study's settings and run parameters. With `retrain` on the data
        of the study (same `DataSpec`), the run trains for the study's best epoch count
        without a selection phase where the split has a full train part (`given`); on
        other data it chooses its epoch on its own validation part.
    """
    best = read_best(best_path)
    if best["model"] != config.model:
        raise ConfigError(f"--params {best_path}: a study of {best['model']}, not {config.model}")
    run = {name: value for name, value in best["run"].items() if name not in given}
    config = dataclasses.replace(config, settings={**best["settings"], **config.settings}, **run)
    same_data = best.get("data") == dataclasses.asdict(_seeded(config))
    if config.retrain and same_data and best.get("best_epoch"):
        config = dataclasses.replace(config, epochs=best["best_epoch"], select=False)
    return config


def _seeded(run: RunConfig):
    """The run's data spec with the seed the runner gives it."""
    return run.data if run.data.seed is not None else run.data.updated(seed=run.seed)


def read_best(path) -> dict:
    """A study's `best.json` (or the study directory holding it), checked."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; pass a study's best.json")
    content = read_json(path)
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a study's best.json, a JSON object")
    for key in ("model", "settings", "run"):
        if key not in content:
            raise ConfigError(f"{path}: expected a study's best.json, with {key!r}")
    unknown = sorted(set(content) - BEST_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; a study's best.json holds "
            f"{', '.join(sorted(BEST_KEYS))}"
        )
    for key in ("settings", "run"):
        if not isinstance(content[key], dict):
            raise ConfigError(f"{path}: {key!r} should be an object of names and values")
    for name, value in content["run"].items():
        if name not in RUN_PARAMETERS:
            raise ConfigError(
                f"{path}: run.{name} is not a run parameter ({', '.join(RUN_PARAMETERS)})"
            )
        kind = RUN_PARAMETERS[name]
        valid = value is None or (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and (kind is float or float(value).is_integer())
        )
        if not valid:
            raise ConfigError(
                f"{path}: run.{name} should be a number ({kind.__name__}) or null. "
                f"Received: {value!r}"
            )
    return content
