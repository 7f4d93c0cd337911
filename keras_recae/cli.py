"""The `keras-recae` command line: train, evaluate, export, recommend, refine."""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
# Rows per evaluation batch when --batch-size is 0 (full-batch training).
EVAL_BATCH_SIZE = 500
DEFAULT_METRICS = (
    "recall@20",
    "ndcg@20",
    "ndcg@100",
    "truncated_recall@20",
    "truncated_recall@50",
    "precision@20",
)


class UsageError(Exception):
    """A command-line mistake, reported as one line without a traceback."""


def kebab_case(name: str) -> str:
    """`MultVAE` -> `mult-vae`, `EASE` -> `ease`, `AutoRec` -> `auto-rec`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def model_classes() -> dict:
    """The trainable models by their command-line names."""
    from keras_recae import models

    classes = {}
    for name in models.__all__:
        cls = getattr(models, name)
        # The embedding refiners take item vectors, not users' histories: see `refine`.
        if issubclass(cls, models.Recommender) and cls is not models.Recommender:
            classes[kebab_case(name)] = cls
    aliases = {"autorec": "auto-rec"}
    for alias, name in aliases.items():
        if name in classes:
            classes[alias] = classes[name]
    return classes


def parse_settings(pairs: list[str], cls) -> dict:
    """`--set name=value` pairs as constructor arguments, values read as JSON when they parse."""
    accepted = [
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")
    ]
    settings = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects name=value. Received: {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in accepted:
            raise UsageError(
                f"--set {key}: {cls.__name__} has no argument {key!r}. "
                f"Its arguments: {', '.join(accepted)}"
            )
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


def write_json_atomic(path: Path, content: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2, default=_json_default)
        file.write("\n")
    os.replace(temporary, path)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_model_atomic(model, path: Path) -> None:
    """Saves a `.keras` file next to `path`, then renames it into place."""
    temporary = str(path.with_name(f".{path.name}.{os.getpid()}.tmp.keras"))
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def configure_threads(threads: int | None) -> None:
    """Caps TensorFlow's and BLAS's threads; must run before TensorFlow starts working."""
    if not threads:
        return
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    threadpool_limits(threads)


def epoch_seconds(history_path: Path) -> list[float]:
    """The `seconds` column of a history.csv; empty when there is none."""
    if not history_path.is_file():
        return []
    with open(history_path, encoding="utf-8", newline="") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file) if row.get("seconds")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------
# Data


def data_options(args) -> dict:
    """The arguments that define the data and its split, as stored in run.json."""
    return {
        "data": args.data,
        "test": args.test,
        "format": args.format,
        "protocol": args.protocol,
        "heldout_users": args.heldout_users,
        "threshold": args.threshold,
        "validation_fraction": args.validation_fraction,
        "user_col": args.user_col,
        "item_col": args.item_col,
        "rating_col": args.rating_col,
        "seed": args.seed,
    }


def load_split(options: dict, explicit: bool = False, default_validation: float = 0.1):
    """Reads the data and applies the protocol; returns the split and the full train.

    The full train is the train part with the validation users' or items' interactions
    put back, for `--retrain` under `given`; None where it equals `split.train`.
    """
    from keras_recae.data.protocols import (
        given_full_train,
        split_given,
        split_random,
        split_strong,
    )
    from keras_recae.data.readers import read_given, read_ratings
    from keras_recae.data.synthetic import synthetic_frame

    columns = {
        "user_col": options.get("user_col") or "user",
        "item_col": options.get("item_col") or "item",
        "rating_col": options.get("rating_col"),
    }
    data, test = options["data"], options.get("test")
    protocol = options.get("protocol")
    seed = options.get("seed") or 0
    validation_fraction = options.get("validation_fraction")
    if validation_fraction is None:
        validation_fraction = default_validation
    if data == "synthetic":
        train_frame = synthetic_frame(seed=seed, explicit=explicit)
        test_frame = None
    elif test is not None or (
        Path(data).is_dir() and (Path(data) / "train.txt").is_file() and protocol != "strong"
    ):
        train_frame, test_frame = read_given(data, test, options.get("format"), **columns)
    else:
        train_frame = read_ratings(data, options.get("format"), **columns)
        test_frame = None
    if protocol is None:
        protocol = "given" if test_frame is not None else ("random" if explicit else "strong")
    threshold = options.get("threshold")
    has_ratings = "rating" in train_frame and not (train_frame["rating"] == 1.0).all()
    if threshold is None and has_ratings and not explicit:
        threshold = 3.5
    if protocol == "given":
        if test_frame is None:
            raise UsageError(
                "--protocol given needs a test file (--test) or a train/test directory"
            )
        binarize = None if explicit else threshold
        split = split_given(
            train_frame,
            test_frame,
            binarize_threshold=binarize,
            validation_fraction=validation_fraction,
            seed=seed,
        )
        full = None
        if validation_fraction:
            full = given_full_train(train_frame, test_frame, binarize_threshold=binarize)
        return split, full, protocol
    if test_frame is not None:
        raise UsageError(f"--protocol {protocol} splits one file; --test is only for given")
    if protocol == "strong":
        heldout = options.get("heldout_users")
        if heldout is None:
            heldout = max(1, train_frame["user"].nunique() // 10)
        split = split_strong(train_frame, n_heldout_users=heldout, threshold=threshold)
        return split, None, protocol
    if protocol == "random":
        split = split_random(
            train_frame, test_fraction=0.1, validation_fraction=validation_fraction, seed=seed
        )
        return split, None, protocol
    raise UsageError(f"--protocol should be given, strong or random. Received: {protocol}")


# ---------------------------------------------------------------------------------------
# train


def train(args) -> int:
    configure_threads(args.threads)
    # Before anything else runs on TensorFlow: the strategy may split the CPU.
    strategy = make_train_strategy(args)
    import keras

    # --precision sets Keras's global policy; put it back for in-process callers.
    previous_policy = keras.config.dtype_policy()
    try:
        if strategy is None:
            return _train(args)
        return _train_distributed(args, strategy)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def make_train_strategy(args):
    """The `tf.distribute` strategy of `--distribute` and `--devices`; None for one device."""
    distribute_kind = getattr(args, "distribute", "none") or "none"
    devices = getattr(args, "devices", None)
    if distribute_kind == "none":
        if devices:
            raise UsageError("--devices needs --distribute mirrored")
        return None
    from keras_recae import distribute
    from keras_recae.models import EASE

    if model_classes().get(args.model) is EASE:
        raise UsageError(
            "ease is solved in closed form on one host; it has no gradient steps to "
            "distribute: leave out --distribute"
        )
    if getattr(args, "jit_compile", "auto") is True:
        # Keras wraps the whole replicated step in one XLA function, which TensorFlow
        # cannot place on several devices ("auto" keeps XLA off under a strategy).
        raise UsageError("--jit-compile true does not work with --distribute; leave it at auto")
    if not args.batch_size:
        raise UsageError(
            "--batch-size 0 (full batches) does not work with --distribute: give the "
            "global batch as a multiple of the number of replicas"
        )
    try:
        strategy = distribute.make_strategy(distribute_kind, devices)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--distribute {distribute_kind}: {error}") from None
    replicas = strategy.num_replicas_in_sync
    if args.batch_size % replicas:
        raise UsageError(
            f"--batch-size ({args.batch_size}) is the global batch: it should be a multiple "
            f"of the number of replicas ({replicas})"
        )
    print(
        f"distribute: {distribute_kind}, {replicas} replica{'s' if replicas > 1 else ''}, "
        f"{args.batch_size // replicas} users per replica and step",
        flush=True,
    )
    return strategy


def _train_distributed(args, strategy) -> int:
    """`_train` under the strategy's scope; only the chief worker writes the run."""
    import tempfile

    from keras_recae import distribute

    if distribute.is_chief(strategy):
        with strategy.scope():
            return _train(args)
    # The other workers train alongside the chief and write their copy of the run (model,
    # backups) to a directory of their own that is removed afterwards.
    with tempfile.TemporaryDirectory(prefix="keras-recae-worker-") as scratch:
        worker_args = argparse.Namespace(**{**vars(args), "out": scratch})
        with strategy.scope():
            return _train(worker_args)


def _train(args) -> int:
    import keras
    import numpy as np

    from keras_recae.evaluation import evaluate_ranking
    from keras_recae.models import EASE
    from keras_recae.optimizers import FusedAdam

    classes = model_classes()
    if args.model not in classes:
        raise UsageError(f"unknown model {args.model!r}. Models: {', '.join(sorted(classes))}")
    cls = classes[args.model]
    settings = parse_settings(args.set, cls)
    try:
        cls(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--set: {error}") from None
    out = Path(args.out or f"runs/{args.model}")
    backup = out / BACKUP_DIR
    resuming = backup.is_dir()
    if (out / MODEL_FILE).exists() and not resuming:
        raise UsageError(
            f"{out} already holds a finished run ({MODEL_FILE}); choose another --out or remove it"
        )
    out.mkdir(parents=True, exist_ok=True)
    metrics = args.metrics.split(",") if args.metrics else list(DEFAULT_METRICS)
    is_ease = cls is EASE
    options = data_options(args)
    write_json_atomic(out / RUN_FILE, {"model": args.model, "settings": settings, **options})

    keras.utils.set_random_seed(args.seed)
    if args.precision != "float32":
        keras.config.set_dtype_policy(args.precision)
    split, full_train, protocol = load_split(
        options, explicit=cls.explicit, default_validation=0.0 if is_ease else 0.1
    )
    print(
        f"data: {split.train.n_users} train users, {split.train.n_items} items, "
        f"{split.train.nnz} train interactions; protocol {protocol}; "
        f"validation users {split.validation.n_users if split.validation else 0}, "
        f"test users {split.test.n_users if split.test else 0}",
        flush=True,
    )
    if "seed" in inspect.signature(cls.__init__).parameters:
        settings.setdefault("seed", args.seed)
    model = cls(**settings)
    model.set_item_ids(split.item_ids)
    _set_user_ids(model, split.train.user_ids)

    summary = {
        "model": args.model,
        "config": None,
        "data": args.data,
        "test_data": args.test,
        "protocol": protocol,
        "n_users": split.train.n_users,
        "n_items": split.train.n_items,
        "threads": args.threads,
        "precision": args.precision,
        "distribute": getattr(args, "distribute", "none"),
    }
    validation_metrics = {}
    started = time.perf_counter()
    if is_ease:
        model.fit(split.train)
        train_seconds = time.perf_counter() - started
        epochs_run, best_epoch, seconds_per_epoch = 0, None, train_seconds
        if split.validation is not None:
            validation_metrics = evaluate_ranking(model, split.validation, metrics)
    else:
        model.compile(
            optimizer=FusedAdam(args.lr),
            jit_compile=args.jit_compile if args.jit_compile != "auto" else "auto",
        )
        selection_file = backup / "selection.json"
        if selection_file.is_file():
            # A rerun after the selection phase finished goes straight to the retraining.
            with open(selection_file, encoding="utf-8") as file:
                selection = json.load(file)
        else:
            history, evaluation, timer = _fit(
                model, split.train.matrix, split.validation, args, metrics, backup, out, resuming
            )
            losses = history.history.get("loss", [])
            if timer.stopped_on_nan or any(not np.isfinite(v) for v in losses):
                print(
                    f"error: the loss became NaN at epoch {timer.last_epoch}; no model was "
                    "written. Lower the learning rate (--lr) or check the data.",
                    file=sys.stderr,
                )
                # A rerun must start afresh, not resume from the diverged weights.
                shutil.rmtree(backup, ignore_errors=True)
                return 1
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
        if args.retrain and full_train is not None and best_epoch:
            write_json_atomic(selection_file, selection)
            print(f"retraining on the full train lines for {best_epoch} epochs", flush=True)
            keras.utils.set_random_seed(args.seed)
            model = cls(**settings)
            model.set_item_ids(split.item_ids)
            _set_user_ids(model, split.train.user_ids)
            model.compile(optimizer=FusedAdam(args.lr))
            retrain_args = argparse.Namespace(**{**vars(args), "epochs": best_epoch})
            _, _, retrain_timer = _fit(
                model, full_train.matrix, None, retrain_args, metrics, backup / "retrain", None
            )
            train_seconds += float(np.sum(retrain_timer.seconds))
        summary["reported_model"] = (
            "retrained on the full train lines for the best epoch count"
            if args.retrain and full_train is not None
            else "best validation epoch"
        )
    test_metrics = _evaluate_part(model, split.test, metrics) if split.test else {}
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
        }
    )
    save_model_atomic(model, out / MODEL_FILE)
    write_json_atomic(out / METRICS_FILE, summary)
    shutil.rmtree(backup, ignore_errors=True)
    print(json.dumps({"validation": validation_metrics, "test": test_metrics}, indent=2))
    print(f"wrote {out / MODEL_FILE} and {out / METRICS_FILE}")
    return 0


def _fit(model, matrix, validation, args, metrics, backup: Path, out: Path | None, resuming=False):
    """`model.fit` with ranking evaluation, resumable backups and per-epoch timing."""
    if getattr(model, "explicit", False):
        return _fit_ratings(model, matrix, validation, args, backup, out, resuming)

    from keras_recae.callbacks import EpochTimer, RankingEvaluation
    from keras_recae.data.pipeline import sparse_batches

    timer = EpochTimer()
    evaluation = None
    if validation is not None:
        evaluation = RankingEvaluation(
            validation,
            metrics=metrics,
            monitor=args.monitor,
            every=args.eval_every,
            patience=args.patience,
            batch_size=args.batch_size or EVAL_BATCH_SIZE,
            verbose=1,
            state_dir=str(backup),
        )
    callbacks = _training_callbacks(timer, evaluation, args, backup, out, resuming)
    if not model.built:
        model.build((None, matrix.shape[1]))
    batch_size = args.batch_size or matrix.shape[0]
    seed = shuffle_seed(args.seed, backup)
    if hasattr(model, "training_batches"):
        # Models whose batches carry more than the rows (RecVAE's phases, CDAE's users).
        dataset = model.training_batches(matrix, batch_size, shuffle=True, seed=seed)
    else:
        dataset = sparse_batches(matrix, batch_size, shuffle=True, seed=seed)
    history = model.fit(dataset, epochs=args.epochs, callbacks=callbacks, verbose=2, shuffle=False)
    return history, evaluation, timer


def _fit_ratings(model, matrix, validation, args, backup: Path, out: Path | None, resuming):
    """`_fit` for explicit-rating models: the model batches its own rows; RMSE selects."""

    from keras_recae.callbacks import EpochTimer, RatingEvaluation

    timer = EpochTimer()
    evaluation = None
    if validation is not None:
        monitor = args.monitor.removeprefix("val_")
        evaluation = RatingEvaluation(
            validation,
            monitor=monitor if monitor in RatingEvaluation.METRICS else "rmse",
            every=args.eval_every,
            patience=args.patience,
            batch_size=args.batch_size or EVAL_BATCH_SIZE,
            verbose=1,
            state_dir=str(backup),
        )
    callbacks = _training_callbacks(timer, evaluation, args, backup, out, resuming)
    model.adapt(matrix)
    # 0: one batch of every training row (items for the item-based AutoRec).
    batch_size = args.batch_size or model.training_rows(matrix).shape[0]
    seed = shuffle_seed(args.seed, backup)
    dataset = model.training_batches(matrix, batch_size, shuffle=True, seed=seed)
    history = model.fit(dataset, epochs=args.epochs, callbacks=callbacks, verbose=2, shuffle=False)
    return history, evaluation, timer


def _training_callbacks(timer, evaluation, args, backup: Path, out: Path | None, resuming):
    """The callbacks of every CLI fit: timing, NaN stop, evaluation, resume, history, decay."""
    import keras

    from keras_recae.callbacks import LearningRateDecay, RandomStateBackup

    callbacks = [timer, keras.callbacks.TerminateOnNaN()]
    if evaluation is not None:
        callbacks.append(evaluation)
    callbacks.append(
        keras.callbacks.BackupAndRestore(str(backup / "keras"), delete_checkpoint=False)
    )
    callbacks.append(RandomStateBackup(str(backup)))
    if out is not None:
        callbacks.append(keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=resuming))
    if args.lr_decay:
        # First, so that the history file sees the epoch's `learning_rate`.
        callbacks.insert(0, LearningRateDecay(args.lr, args.lr_decay))
    return callbacks


def shuffle_seed(seed: int, backup: Path) -> int:
    """The seed of the training data's shuffle: `seed`, or one of its own after a resume.

    tf.data reshuffles with a counter that starts again in a new process, so a run resumed
    from `backup` with the same seed would see the batch orders of its first epochs again.
    Resumed at epoch e (from Keras's `BackupAndRestore` metadata), the seed becomes
    `seed + 1_000_003 * e`.
    """
    metadata = backup / "keras" / "training_metadata.json"
    if not metadata.is_file():
        return seed
    with open(metadata, encoding="utf-8") as file:
        epoch = int(json.load(file).get("epoch") or 0)
    return seed + 1_000_003 * epoch


def _set_user_ids(model, user_ids) -> None:
    """Gives a model conditioned on users (the item-based AutoRec) the training users' ids."""
    if hasattr(model, "set_user_ids"):
        model.set_user_ids(user_ids)


def _evaluate_part(model, eval_set, metrics, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Ranking metrics, or RMSE and MAE for explicit-rating models."""
    from keras_recae.evaluation import evaluate_ranking, evaluate_ratings

    if getattr(model, "explicit", False):
        return evaluate_ratings(model, eval_set, batch_size=batch_size)
    return evaluate_ranking(model, eval_set, metrics, batch_size=batch_size)


# ---------------------------------------------------------------------------------------
# evaluate


def load_run_model(run_dir: Path):
    import keras

    import keras_recae.models  # noqa: F401  (registers the classes for deserialisation)

    path = run_dir / MODEL_FILE if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise UsageError(f"{run_dir}: no {MODEL_FILE} here; pass a run directory of `train`")
    return keras.saving.load_model(path)


def evaluate(args) -> int:
    configure_threads(args.threads)
    from keras_recae.data.split import align_eval_set

    run_dir = Path(args.run_dir)
    model = load_run_model(run_dir)
    stored = {}
    if (run_dir / RUN_FILE).is_file():
        with open(run_dir / RUN_FILE, encoding="utf-8") as file:
            stored = json.load(file)
    options = {key: stored.get(key) for key in data_options(_empty_data_args())}
    for key, value in data_options(args).items():
        if value is not None:
            options[key] = value
    if options.get("data") is None:
        raise UsageError(f"--data is needed: {run_dir} has no {RUN_FILE} naming the data")
    split, _, protocol = load_split(options, explicit=getattr(model, "explicit", False))
    metrics = args.metrics.split(",") if args.metrics else list(DEFAULT_METRICS)
    results = {"protocol": protocol}
    for part in ("validation", "test"):
        eval_set = getattr(split, part)
        if eval_set is None:
            continue
        if model.item_ids is not None:
            eval_set = align_eval_set(eval_set, split.item_ids, model.item_ids)
        results[part] = _evaluate_part(
            model, eval_set, metrics, batch_size=args.batch_size or EVAL_BATCH_SIZE
        )
    print(json.dumps(results, indent=2))
    return 0


def _empty_data_args():
    return argparse.Namespace(
        data=None,
        test=None,
        format=None,
        protocol=None,
        heldout_users=None,
        threshold=None,
        validation_fraction=None,
        user_col=None,
        item_col=None,
        rating_col=None,
        seed=None,
    )


# ---------------------------------------------------------------------------------------
# export, recommend


def export_model(args) -> int:
    from keras_recae.serving import export

    model = load_run_model(Path(args.run_dir))
    try:
        # TF Serving's --model_name is usually the base directory's name (models/NAME/1).
        model_name = args.model_name or Path(args.to).resolve().name
        path = export(model, args.to, version=args.version, k=args.k, model_name=model_name)
    except (ValueError, FileExistsError) as error:
        raise UsageError(str(error)) from None
    print(path)
    return 0


def parse_ids(text: str, dtype: str, flag: str) -> list:
    """Comma-separated raw ids, as integers for int64 models."""
    values = [value.strip() for value in text.split(",") if value.strip()]
    if dtype != "int64":
        return values
    try:
        return [int(value) for value in values]
    except ValueError:
        raise UsageError(f"{flag}: this model's ids are integers. Received: {text!r}") from None


def recommend(args) -> int:
    from keras_recae.serving import (
        RECOMMEND_FOR_USER,
        SERVING_DEFAULT,
        GrpcClient,
        RestClient,
        SavedModelClient,
        ServingError,
    )

    sources = [source for source in (args.export_dir, args.url, args.grpc) if source]
    if len(sources) != 1:
        raise UsageError("give one model: EXPORT_DIR, --url URL or --grpc HOST:PORT")
    signature = SERVING_DEFAULT if args.user is None else RECOMMEND_FOR_USER
    try:
        if args.export_dir:
            client = SavedModelClient(args.export_dir, version=args.version)
        elif args.url:
            client = RestClient(args.url, args.model, version=args.version)
        else:
            client = GrpcClient(args.grpc, args.model, version=args.version)
        with client:
            dtypes = client.input_dtypes(signature)
            items = parse_ids(args.items, dtypes["item_ids"], "--items")
            ratings = None
            if "ratings" in dtypes:
                if args.ratings is None:
                    raise UsageError("this model takes ratings: --ratings 5,3,4 (one per item)")
                ratings = [[float(r) for r in args.ratings.split(",") if r.strip()]]
            elif args.ratings is not None:
                raise UsageError("this model takes no ratings; leave out --ratings")
            users = None
            if args.user is not None:
                users = parse_ids(args.user, dtypes["user_id"], "--user")
            top = client.recommend([items], ratings=ratings, k=args.k, user_ids=users)
    except (ServingError, ValueError) as error:
        raise UsageError(str(error)) from None
    from keras_recae.serving import MISSING_SCORE

    rows = [
        (item, float(score))
        for item, score in zip(top["item_ids"][0].tolist(), top["scores"][0].tolist())
        if score > MISSING_SCORE
    ]
    if args.json:
        print(json.dumps({"item_ids": [r[0] for r in rows], "scores": [r[1] for r in rows]}))
    else:
        print("rank\titem_id\tscore")
        for rank, (item, score) in enumerate(rows, start=1):
            print(f"{rank}\t{item}\t{score:.6g}")
    return 0


# ---------------------------------------------------------------------------------------
# refine


def refiner_classes() -> dict:
    """The embedding refiners by their command-line names."""
    from keras_recae import models

    classes = {
        "ae": models.EmbeddingAutoencoder,
        "dae": models.DenoisingEmbeddingAutoencoder,
        "vae": models.EmbeddingVAE,
    }
    classes.update({kebab_case(cls.__name__): cls for cls in list(classes.values())})
    return classes


def refine(args) -> int:
    configure_threads(args.threads)
    import keras
    import numpy as np

    from keras_recae.data.vectors import (
        VectorFormatError,
        default_ids_path,
        detect_format,
        read_vectors,
        write_vectors,
    )

    classes = refiner_classes()
    if args.model not in classes:
        raise UsageError(f"unknown refiner {args.model!r}. Refiners: {', '.join(classes)}")
    cls = classes[args.model]
    settings = parse_settings(args.set, cls)
    settings.setdefault("latent_dim", args.dim)
    settings.setdefault("seed", args.seed)
    try:
        cls(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--set: {error}") from None
    try:
        format = detect_format(args.vectors) if args.format is None else args.format
        keys, vectors = read_vectors(args.vectors, format, ids=args.ids)
    except (VectorFormatError, ValueError) as error:
        raise UsageError(str(error)) from None
    out = Path(args.out)
    targets = [out] + ([default_ids_path(out)] if format == "npy" else [])
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise UsageError(f"{', '.join(existing)} exists; choose another --out or remove it")
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir is not None and (run_dir / MODEL_FILE).exists():
        raise UsageError(f"{run_dir} already holds a model ({MODEL_FILE}); choose another")
    if len(vectors) < 2:
        raise UsageError(f"{args.vectors}: {len(vectors)} vector(s); a refiner needs more")
    print(
        f"vectors: {len(vectors)} x {vectors.shape[1]} ({format}); {cls.__name__} to "
        f"{settings['latent_dim']} dimensions",
        flush=True,
    )
    keras.utils.set_random_seed(args.seed)
    model = cls(**settings)
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            run_dir / RUN_FILE,
            {
                "command": "refine",
                "model": args.model,
                "settings": settings,
                "vectors": args.vectors,
                "format": format,
                "out": args.out,
            },
        )
        callbacks.append(keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE)))
    started = time.perf_counter()
    history = model.fit(
        vectors,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=2,
    )
    losses = history.history.get("loss", [])
    if not losses or not np.isfinite(losses[-1]):
        print(
            "error: the loss became NaN; nothing was written. Lower the learning rate (--lr).",
            file=sys.stderr,
        )
        return 1
    refined = model.refine(vectors)
    write_vectors(out, keys, refined, format=format)
    summary = {
        "model": args.model,
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
        print(f"wrote {run_dir / MODEL_FILE}; export it: keras-recae export {run_dir} --to DIR")
    print(f"wrote {out} ({len(refined)} x {refined.shape[1]})")
    return 0


# ---------------------------------------------------------------------------------------
# main


def _batch_size(text: str) -> int:
    """`--batch-size`: a whole number of rows, 0 for full batches."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _decay(text: str) -> float:
    """`--lr-decay`: a factor in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a factor in (0, 1], got {text!r}")
    return value


def add_data_arguments(parser, required: bool) -> None:
    parser.add_argument(
        "--data", required=required, help="a ratings file or directory, or 'synthetic'"
    )
    parser.add_argument("--test", help="the test file of a given split (e.g. u1.test)")
    parser.add_argument(
        "--format",
        help="ml-100k, ml-1m, ml-20m, lightgcn, csv, tsv or parquet (default: detected)",
    )
    parser.add_argument("--protocol", choices=["given", "strong", "random"])
    parser.add_argument(
        "--heldout-users", type=int, help="strong: validation users, and test users"
    )
    parser.add_argument(
        "--threshold", type=float, help="implicit models keep ratings above it (default 3.5)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        help="given/random: share of train interactions held out for model selection",
    )
    parser.add_argument("--user-col", help="table formats: the user column")
    parser.add_argument("--item-col", help="table formats: the item column")
    parser.add_argument("--rating-col", help="table formats: the rating column")
    parser.add_argument("--seed", type=int, default=None if not required else 0)
    parser.add_argument("--metrics", help="comma-separated, e.g. recall@20,ndcg@100")
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        help="rows per batch: users, or items for the item-based AutoRec (default 500); "
        "train: 0 trains on full batches, all rows at once (evaluation goes 500 at a time)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads for TensorFlow and BLAS")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-recae", description="Autoencoder recommenders for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train a model and evaluate it")
    train_parser.add_argument("model", help="mult-vae, mult-dae, ease, ...")
    add_data_arguments(train_parser, required=True)
    train_parser.add_argument("--epochs", type=int, default=200)
    train_parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    train_parser.add_argument(
        "--lr-decay",
        type=_decay,
        metavar="FACTOR",
        help="multiply the learning rate by FACTOR after each epoch (e.g. 0.99)",
    )
    train_parser.add_argument("--out", help="run directory (default runs/MODEL)")
    train_parser.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="a constructor argument"
    )
    train_parser.add_argument("--monitor", default="ndcg@100", help="metric choosing the epoch")
    train_parser.add_argument("--eval-every", type=int, default=1)
    train_parser.add_argument("--patience", type=int, help="evaluations without improvement")
    train_parser.add_argument(
        "--retrain",
        action="store_true",
        help="given: retrain on all train lines for the chosen epoch count",
    )
    train_parser.add_argument(
        "--precision", choices=["float32", "mixed_float16", "mixed_bfloat16"], default="float32"
    )
    train_parser.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="XLA for the train step (auto: on where Keras turns it on, i.e. on GPUs)",
    )
    train_parser.add_argument(
        "--distribute",
        choices=["none", "mirrored", "multi-worker"],
        default="none",
        help="tf.distribute strategy: mirrored (MirroredStrategy over the visible GPUs or "
        "--devices) or multi-worker (MultiWorkerMirroredStrategy, the cluster from TF_CONFIG); "
        "--batch-size is the global batch",
    )
    train_parser.add_argument(
        "--devices",
        help="--distribute mirrored: comma-separated devices, e.g. gpu:0,gpu:1; "
        "cpu:0,cpu:1 splits the CPU into logical devices",
    )
    train_parser.set_defaults(handler=train)

    evaluate_parser = commands.add_parser("evaluate", help="evaluate a trained model")
    evaluate_parser.add_argument("run_dir", help="a run directory written by train")
    add_data_arguments(evaluate_parser, required=False)
    evaluate_parser.set_defaults(handler=evaluate)

    export_parser = commands.add_parser(
        "export", help="export a trained model as a SavedModel version for TF Serving"
    )
    export_parser.add_argument("run_dir", help="a run directory written by train")
    export_parser.add_argument(
        "--to", required=True, metavar="BASE_DIR", help="the model's base directory"
    )
    export_parser.add_argument(
        "--version", type=int, help="the version number (default: the next free one)"
    )
    export_parser.add_argument(
        "--k", type=int, default=100, help="items per recommendation (default 100)"
    )
    export_parser.add_argument(
        "--model-name",
        help="model name of the warm-up requests (default: the name of BASE_DIR)",
    )
    export_parser.set_defaults(handler=export_model)

    recommend_parser = commands.add_parser(
        "recommend", help="recommend items from an export or a TF Serving server"
    )
    recommend_parser.add_argument(
        "export_dir", nargs="?", help="an export base directory or version directory"
    )
    recommend_parser.add_argument("--url", help="TF Serving REST root, e.g. http://localhost:8501")
    recommend_parser.add_argument("--grpc", metavar="HOST:PORT", help="TF Serving gRPC address")
    recommend_parser.add_argument(
        "--model", default="recommender", help="model name on the server (default recommender)"
    )
    recommend_parser.add_argument("--version", type=int, help="a fixed model version")
    recommend_parser.add_argument(
        "--items", required=True, help="the user's history: comma-separated raw item ids"
    )
    recommend_parser.add_argument(
        "--ratings", help="explicit-rating models: comma-separated ratings, one per item"
    )
    recommend_parser.add_argument("--user", help="a raw user id (models conditioned on users)")
    recommend_parser.add_argument(
        "-k", type=int, help="items to show (default: all the export returns)"
    )
    recommend_parser.add_argument("--json", action="store_true", help="print JSON")
    recommend_parser.set_defaults(handler=recommend)

    refine_parser = commands.add_parser(
        "refine", help="compress and de-noise pre-trained item vectors with an autoencoder"
    )
    refine_parser.add_argument(
        "vectors", help="word2vec text/binary, gensim KeyedVectors, .npy (+ id list) or .npz"
    )
    refine_parser.add_argument(
        "--model", default="ae", help="ae, dae or vae (autoencoder, denoising, variational)"
    )
    refine_parser.add_argument("--dim", type=int, default=64, help="refined dimension")
    refine_parser.add_argument(
        "--out", required=True, help="the refined vectors, in the input's format"
    )
    refine_parser.add_argument("--format", help="the input's format (default: detected)")
    refine_parser.add_argument("--ids", help=".npy input: its id list (default NAME.ids.txt)")
    refine_parser.add_argument("--epochs", type=int, default=30)
    refine_parser.add_argument("--batch-size", type=int, default=256)
    refine_parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    refine_parser.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="a constructor argument"
    )
    refine_parser.add_argument(
        "--run-dir", help="also keep the model here (model.keras, run.json) for `export`"
    )
    refine_parser.add_argument("--seed", type=int, default=0)
    refine_parser.add_argument("--threads", type=int, help="CPU threads for TensorFlow and BLAS")
    refine_parser.set_defaults(handler=refine)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "jit_compile", None) in ("true", "false"):
        args.jit_compile = args.jit_compile == "true"
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"keras-recae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as error:
        if type(error).__name__ == "DataFormatError" or isinstance(error, FileNotFoundError):
            print(f"keras-recae {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
