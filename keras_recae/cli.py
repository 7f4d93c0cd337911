"""The `keras-recae` command line: argparse and thin handlers over the runners.

`train` and `evaluate` call `keras_recae.training`, `tune` `keras_recae.tuning`, `compare`
`keras_recae.comparing`, `report` `keras_recae.reporting`, `refine` `keras_recae.refining`,
`export` and `recommend` `keras_recae.serving`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

from keras_recae.data import ids
from keras_recae.data.readers import DataFormatError
from keras_recae.data.spec import PROTOCOLS, DataSpec
from keras_recae.distribute import STRATEGIES
from keras_recae.errors import ConfigError, TrainingDiverged
from keras_recae.runs import METRICS_FILE, MODEL_FILE, load_run_model
from keras_recae.training import PRECISIONS
from keras_recae.tuning import PRUNERS

UsageError = ConfigError  # a command-line mistake: one line, no traceback


def parse_settings(pairs: list[str] | None) -> dict:
    """`--set name=value` pairs as constructor arguments, values read as JSON when they parse.

    The names are checked against the model by the runner (`registry.check_settings`).
    """
    settings = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects name=value. Received: {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


def data_spec(args) -> DataSpec:
    """The data flags of `train`, `tune` and `evaluate`."""
    return from_flags(DataSpec, args)


# ---------------------------------------------------------------------------------------
# train, evaluate


def from_flags(config_class, args, **values):
    """A config dataclass of the flags named after its fields (None leaves a default)."""
    names = {field.name for field in dataclasses.fields(config_class)} - set(values)
    flags = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return config_class(**flags, **values)


def run_config(args, **changes):
    """The `RunConfig` of the flags `train` and `tune` share."""
    from keras_recae.training import RunConfig

    namespace = argparse.Namespace(**{**vars(args), **changes})
    return from_flags(RunConfig, namespace, data=data_spec(args), settings=parse_settings(args.set))


def train(args) -> int:
    from keras_recae.training import train as run_training

    config = run_config(args)
    if args.params:
        from keras_recae.search_space import RUN_PARAMETERS
        from keras_recae.tuning import with_best

        # The flags given on the command line win over the study's.
        given = {name for name in RUN_PARAMETERS if getattr(args, name) is not None}
        config = with_best(config, args.params, given)
    try:
        result = run_training(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"validation": result.validation, "test": result.test}, indent=2))
    print(f"wrote {result.out / MODEL_FILE} and {result.out / METRICS_FILE}")
    return 0


def tune(args) -> int:
    from keras_recae import tuning
    from keras_recae.models.registry import model_class
    from keras_recae.search_space import RUN_PARAMETERS, choice, parse_space

    cls = model_class(args.model)
    space = parse_space(args.space, tuning.setting_kinds(cls))
    # A run flag given on the command line is fixed: a one-value choice.
    for name in set(cls.search_space) & set(RUN_PARAMETERS) - set(space):
        if getattr(args, name) is not None:
            space[name] = choice(getattr(args, name))
    config = from_flags(
        tuning.TuneConfig,
        args,
        run=run_config(args, threads=args.threads or 1),
        study_dir=args.study or f"studies/{args.model}",
        space=space,
        figures=not args.no_figures,
    )
    result = tuning.tune(config)
    best_file = result.study_dir / tuning.BEST_FILE
    if not result.best:
        print(f"no trial has completed yet: no {best_file}")
        return 0
    print(json.dumps(result.best, indent=2))
    print(f"wrote {best_file}; keras-recae train {args.model} --params {best_file} trains it")
    return 0


def evaluate(args) -> int:
    from keras_recae.training import evaluate_run

    results = evaluate_run(
        args.run_dir,
        data_spec(args),
        metrics=args.metrics,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    print(json.dumps(results, indent=2))
    return 0


def compare(args) -> int:
    from keras_recae.comparing import compare_runs, format_comparison

    result = compare_runs(
        args.run_a,
        args.run_b,
        metric=args.metric,
        part=args.part,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
    )
    print(json.dumps(result, indent=2) if args.json else format_comparison(result))
    return 0


def report(args) -> int:
    from keras_recae.reporting import report as write_report

    result = write_report(
        args.runs,
        out=args.out,
        metric=args.metric,
        max_k=args.max_k,
        at_k=not args.no_at_k,
        threads=args.threads,
    )
    if result.out is None:
        print(result.markdown, end="")
    else:
        written = [str(result.out), *(str(figure) for figure in result.figures)]
        print(f"wrote {', '.join(written)}")
    return 0


def data_command(args) -> int:
    from keras_recae.data.fetch import DATASETS, fetch, is_cached

    if args.action == "list":
        for name, dataset in DATASETS.items():
            cached = "cached" if is_cached(name, args.cache_dir) else "not cached"
            print(f"{name}\t{dataset.description} ({cached})")
        return 0
    print(fetch(args.name, cache_dir=args.cache_dir))
    return 0


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
    numbers = ids.integer_ids(values) if dtype == "int64" else values
    if numbers is None:
        raise UsageError(f"{flag}: this model's ids are integers. Received: {text!r}")
    return list(numbers)


def recommend(args) -> int:
    from keras_recae.serving import (
        MISSING_SCORE,
        RECOMMEND_FOR_USER,
        SERVING_DEFAULT,
        ServingError,
        open_client,
    )

    signature = SERVING_DEFAULT if args.user is None else RECOMMEND_FOR_USER
    try:
        client = open_client(args.export_dir, args.url, args.grpc, args.model, args.version)
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


def refine(args) -> int:
    from keras_recae.refining import RefineConfig
    from keras_recae.refining import refine as run_refine

    config = from_flags(RefineConfig, args, settings=parse_settings(args.set))
    try:
        result = run_refine(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.run_dir:
        print(
            f"wrote {Path(args.run_dir) / MODEL_FILE}; export it: keras-recae export "
            f"{args.run_dir} --to DIR"
        )
    print(f"wrote {args.out} ({len(result.refined)} x {result.refined.shape[1]})")
    return 0


# ---------------------------------------------------------------------------------------
# main


def _checked(convert, valid, expected: str):
    """An argparse type: `convert(text)` where `valid` accepts it, else the expected form."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _metric_names(text: str) -> tuple:
    """An argparse type: comma-separated ranking metric names, each checked."""
    from keras_recae.metrics import parse_metric_names

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        parse_metric_names(names)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return names


_batch_size = _checked(int, lambda value: value >= 0, "a whole number >= 0")
_count = _checked(int, lambda value: value >= 1, "a whole number >= 1")
_positive = _checked(float, lambda value: 0 < value < float("inf"), "a number > 0")
_fraction = _checked(float, lambda value: 0.0 <= value < 1.0, "a share in [0, 1)")
_level = _checked(float, lambda value: 0.0 < value < 1.0, "a level in (0, 1)")
_decay = _checked(float, lambda value: 0.0 < value <= 1.0, "a factor in (0, 1]")
_finite = _checked(float, math.isfinite, "a finite number")


def _format(text: str) -> str:
    """An argparse type: a reader format, checked before any file is opened."""
    from keras_recae.data.readers import FORMAT_ALIASES, FORMATS

    if text.lower() not in FORMATS and text.lower() not in FORMAT_ALIASES:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(FORMATS)} (or {', '.join(FORMAT_ALIASES)}), got {text!r}"
        )
    return text


# NumPy's and Keras's seeds are 32-bit.
_seed = _checked(int, lambda value: 0 <= value < 2**32, "a whole number in [0, 2**32)")
# The data flags of `train`, `tune` and `evaluate`: the fields of `DataSpec`.
DATA_FLAGS = {
    "--test": (str, "the test file of a given split (e.g. u1.test)"),
    "--format": (
        _format,
        "ml-100k, ml-1m, ml-20m, lightgcn, csv, tsv or parquet (default: detected)",
    ),
    "--heldout-users": (_count, "strong: validation users, and test users"),
    "--threshold": (_finite, "implicit models keep ratings above it (default 3.5)"),
    "--validation-fraction": (
        _fraction,
        "given/random/temporal: train share held out for model selection (temporal: the "
        "latest; leave-last-out: 0 turns its validation off)",
    ),
    "--time-cut": (str, "temporal: share of the interactions before the cut (0.8) or a date"),
    "--synthetic-users": (_count, "--data synthetic: users of a generated set of this size"),
    "--synthetic-items": (_count, "--data synthetic: its items"),
    "--synthetic-interactions": (_count, "--data synthetic: its interactions (about)"),
    "--last-n": (_count, "leave-last-out: each user's last N interactions are the test targets"),
    "--user-col": (str, "table formats: the user column"),
    "--item-col": (str, "table formats: the item column"),
    "--rating-col": (str, "table formats: the rating column"),
}


def add_data_arguments(parser, required: bool) -> None:
    parser.add_argument(
        "--data",
        help="a ratings file or directory, or 'synthetic'"
        + ("" if not required else " (or `data` in --config)"),
    )
    parser.add_argument("--protocol", choices=PROTOCOLS)
    for flag, (kind, text) in DATA_FLAGS.items():
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument("--seed", type=_seed, default=None if not required else 0)
    parser.add_argument(
        "--metrics", type=_metric_names, help="e.g. recall@20,ndcg@100,mrr@20,coverage@20"
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        help="rows per batch: users, or items for the item-based AutoRec (default: the "
        "model's, 500 for most; Mult-VAE's, Mult-DAE's, CDAE's and the autoencoders' shrink to "
        "give at least 50 updates a pass); "
        "train: 0 trains on full batches, all rows at once (evaluation goes 500 at a time)",
    )
    parser.add_argument("--threads", type=_count, help="CPU threads for TensorFlow and BLAS")


def add_fit_arguments(parser) -> None:
    """The training flags of `train` and `tune`."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help='a TOML file of the same keys as the flags (data = "...", epochs = 50, '
        "[set] for --set), or a run directory's run.json; flags given here win",
    )
    parser.add_argument("--epochs", type=_count, default=200)
    parser.add_argument("--lr", type=_positive, help="Adam learning rate (default: the model's)")
    parser.add_argument(
        "--lr-decay",
        type=_decay,
        metavar="FACTOR",
        help="multiply the learning rate by FACTOR after each epoch (e.g. 0.99)",
    )
    parser.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="a constructor argument"
    )
    parser.add_argument("--monitor", default="ndcg@100", help="metric choosing the epoch")
    parser.add_argument("--eval-every", type=_count, default=1)
    parser.add_argument("--patience", type=_count, help="evaluations without improvement")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument(
        "--tensorboard",
        metavar="LOG_DIR",
        help="write TensorBoard logs (loss parts, learning rate, validation metrics) there; "
        "tune: a subdirectory per trial",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-recae", description="Autoencoder recommenders for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train a model and evaluate it")
    train_parser.add_argument(
        "model", nargs="?", help="mult-vae, mult-dae, ease, ... (or `model` in --config)"
    )
    add_data_arguments(train_parser, required=True)
    add_fit_arguments(train_parser)
    train_parser.add_argument("--out", help="run directory (default runs/MODEL)")
    train_parser.add_argument(
        "--retrain",
        action="store_true",
        help="given: retrain on all train lines for the chosen epoch count",
    )
    train_parser.add_argument(
        "--params", metavar="BEST_JSON", help="a study's best.json (keras-recae tune)"
    )
    train_parser.add_argument(
        "--jit-compile",
        choices=["auto", "true", "false"],
        default="auto",
        help="XLA for the train step (auto: on where Keras turns it on, i.e. on GPUs)",
    )
    train_parser.add_argument(
        "--distribute",
        choices=STRATEGIES,
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
    train_parser.add_argument(
        "--shard-users",
        action="store_true",
        help="--distribute multi-worker on a given split: each worker reads the files by "
        "chunks and keeps only its shard of the users (a hash of the user id), so no worker "
        "holds the whole matrix",
    )
    train_parser.set_defaults(handler=train)

    tune_parser = commands.add_parser("tune", help="search a model's settings (Optuna)")
    tune_parser.add_argument(
        "model", nargs="?", help="mult-vae, cdae, ease, ... (or `model` in --config)"
    )
    add_data_arguments(tune_parser, required=True)
    add_fit_arguments(tune_parser)
    tune_parser.add_argument("--trials", type=_count, default=20, help="the study's total")
    tune_parser.add_argument("--timeout", type=_positive, help="start no trial after S seconds")
    tune_parser.add_argument("--study", metavar="DIR", help="default studies/MODEL")
    tune_parser.add_argument(
        "--space", action="append", metavar="NAME=LOW:HIGH[:log]|A,B,C", help="a dimension"
    )
    tune_parser.add_argument("--pruner", choices=PRUNERS, default="median")
    tune_parser.add_argument("--storage", help="an Optuna storage URL shared by machines")
    tune_parser.add_argument("--study-name", help="the study's name (default MODEL)")
    tune_parser.add_argument("--workers", type=_count, default=1, help="trial processes")
    tune_parser.add_argument(
        "--variants",
        type=_count,
        default=0,
        metavar="K",
        help="closed-form linear autoencoders: each fit also scores K values of each searched "
        "setting its inverse does not depend on (alpha; xi for rdlae), each combination a "
        "trial",
    )
    tune_parser.add_argument("--no-figures", action="store_true", help="no PNG figures")
    tune_parser.set_defaults(handler=tune)

    evaluate_parser = commands.add_parser("evaluate", help="evaluate a trained model")
    evaluate_parser.add_argument("run_dir", help="a run directory written by train")
    add_data_arguments(evaluate_parser, required=False)
    evaluate_parser.set_defaults(handler=evaluate)

    compare_parser = commands.add_parser(
        "compare", help="paired significance of two runs' per-user metrics"
    )
    compare_parser.add_argument("run_a", help="the reference run directory")
    compare_parser.add_argument("run_b", help="the run compared with it (differences B - A)")
    compare_parser.add_argument("--metric", default="ndcg@20", help="a per-user metric")
    compare_parser.add_argument(
        "--part", choices=["test", "validation"], default="test", help="which users"
    )
    compare_parser.add_argument(
        "--resamples", type=_count, default=10_000, help="bootstrap resamples of the users"
    )
    compare_parser.add_argument(
        "--confidence", type=_level, default=0.95, help="level of the bootstrap interval"
    )
    compare_parser.add_argument("--seed", type=_seed, default=0, help="seed of the bootstrap")
    compare_parser.add_argument("--json", action="store_true", help="print JSON")
    compare_parser.set_defaults(handler=compare)

    report_parser = commands.add_parser(
        "report", help="a Markdown table of runs and their figures (PNG)"
    )
    report_parser.add_argument("runs", nargs="+", help="run directories written by train")
    report_parser.add_argument(
        "--out", help="the Markdown file, figures beside it (default: print the table only)"
    )
    report_parser.add_argument(
        "--metric", help="the figures' metric, e.g. ndcg@20 (default: the first of the runs)"
    )
    report_parser.add_argument(
        "--max-k", type=_count, default=100, help="the test figure's largest cutoff k"
    )
    report_parser.add_argument(
        "--no-at-k",
        action="store_true",
        help="no test figure over k (it loads each run's model and data and scores them)",
    )
    report_parser.add_argument("--threads", type=_count, help="CPU threads while scoring")
    report_parser.set_defaults(handler=report)

    data_parser = commands.add_parser(
        "data", help="public data sets by name: list them, fetch one into the Keras cache"
    )
    data_parser.add_argument("action", choices=["fetch", "list"])
    data_parser.add_argument("name", nargs="?", help="fetch: ml-100k, ml-1m, gowalla, ...")
    data_parser.add_argument(
        "--cache-dir", help="the cache's root (default: Keras's, ~/.keras or $KERAS_HOME)"
    )
    data_parser.set_defaults(handler=data_command)

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
        "--k", type=_count, default=100, help="items per recommendation (default 100)"
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
    refine_parser.add_argument("--dim", type=_count, default=64, help="refined dimension")
    refine_parser.add_argument(
        "--out", required=True, help="the refined vectors, in the input's format"
    )
    refine_parser.add_argument("--format", help="the input's format (default: detected)")
    refine_parser.add_argument("--ids", help=".npy input: its id list (default NAME.ids.txt)")
    refine_parser.add_argument("--epochs", type=_count, default=30)
    refine_parser.add_argument("--batch-size", type=int, default=256)
    refine_parser.add_argument("--lr", type=_positive, default=1e-3, help="Adam learning rate")
    refine_parser.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="a constructor argument"
    )
    refine_parser.add_argument(
        "--run-dir", help="also keep the model here (model.keras, run.json) for `export`"
    )
    refine_parser.add_argument("--seed", type=_seed, default=0)
    refine_parser.add_argument("--threads", type=_count, help="CPU threads for TensorFlow and BLAS")
    refine_parser.set_defaults(handler=refine)
    for command in commands.choices.values():
        # Read from sys.argv before TensorFlow loads (keras_recae._startup). Not `verbose`:
        # that is a field of the run's config.
        command.add_argument(
            "--verbose",
            dest="tensorflow_logs",
            action="store_true",
            help="show TensorFlow's start-up lines (CUDA probing, CPU features), hidden otherwise",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None):
            from keras_recae.run_files import read_run_config

            subparser = _subparser(parser, args.command)
            given = set(vars(_given_flags(argv)))
            for dest, value in read_run_config(args.config, subparser).items():
                if dest == "set" and args.set:
                    # Settings merge by name, the command line's last.
                    args.set = [*value, *args.set]
                elif dest not in given:
                    setattr(args, dest, value)
        if args.command == "data" and args.action == "fetch" and args.name is None:
            raise UsageError("name the data set: keras-recae data fetch NAME (data list)")
        if args.command in ("train", "tune"):
            if args.model is None:
                raise UsageError(
                    f"name the model: keras-recae {args.command} MODEL (or `model` in --config)"
                )
            if args.data is None:
                raise UsageError("--data is needed: a ratings file or directory, or 'synthetic'")
        if getattr(args, "jit_compile", None) in ("true", "false"):
            args.jit_compile = args.jit_compile == "true"
        return args.handler(args)
    except (UsageError, DataFormatError, FileNotFoundError) as error:
        print(f"keras-recae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from keras_recae.runs import out_of_space

        if not out_of_space(error):
            raise
        # Every file is written by temporary file and rename: what was there is intact.
        print(
            f"keras-recae {args.command}: error: no room to write (a full disk, a quota or a "
            f"file-size limit): {_first_line(error)}. Files written before are intact; free "
            "some space and run the same command again.",
            file=sys.stderr,
        )
        return 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _subparser(parser, command: str) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions:
        if command in action.choices:
            return action.choices[command]
    raise KeyError(command)


def _given_flags(argv: list[str]) -> argparse.Namespace:
    """The flags and arguments given on the command line, without any default."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:
        for subparser in action.choices.values():
            for sub_action in subparser._actions:
                sub_action.default = argparse.SUPPRESS
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
