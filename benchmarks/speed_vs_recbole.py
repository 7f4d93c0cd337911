"""Mult-VAE training speed: keras-recae against RecBole 1.2.1's MultiVAE, at the same threads.

Both train the vae_cf architecture (encoder n -> 600 -> 2 x 200, decoder 200 -> 600 -> n,
tanh, input dropout 0.5, KL annealed to 0.2 over 200,000 steps) with Adam at 1e-3 on batches
of 500 users, over every user of the Gowalla train file (LightGCN split), and report each
epoch's wall-clock seconds; reading and preparing the data is outside the epochs.

- RecBole runs in its own virtual environment (default `$HOME/recbole-venv`, created and
  filled on first use: torch 2.13.0, recbole 1.2.1, numpy < 2 and pandas < 3, as RecBole 1.2.1
  still uses `np.float_`), on an atomic copy of train.txt (default `$HOME/recbole-data`), with
  RecBole's own data loading, model and trainer: see `recbole_multivae_epoch.py`. keras-recae
  depends on neither torch nor recbole.
- keras-recae runs in a subprocess of this Python: `MultVAE(hidden_dims=(600, 200))` fitted
  on `sparse_batches`, timed by `EpochTimer`. It runs one epoch more than RecBole (default
  3): its first epoch traces and compiles the training step.

Each side caps its threads before its framework starts (torch.set_num_threads; TensorFlow's
intra- and inter-op pools; OMP/MKL/OpenBLAS and threadpoolctl). The load average before and
after each run is kept in the JSON: on a busy machine the times are not comparable.

Usage:
    python benchmarks/speed_vs_recbole.py [--threads 1] [--epochs 2] [--max-users N]
        [--only recbole|keras-recae] [--out $HOME/keras-recae-bench/speed_vs_recbole.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "gowalla"
HOME = Path.home()
RECBOLE_REQUIREMENTS = ["torch==2.13.0", "recbole==1.2.1", "numpy<2", "pandas<3"]
RECBOLE_CHECK = """
import numpy, recbole, torch
from recbole.model.general_recommender.multivae import MultiVAE
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert recbole.__version__ == "1.2.1", recbole.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
"""
FRAMEWORKS = ("recbole", "keras-recae")
HIDDEN, LATENT, BATCH_SIZE = 600, 200, 500


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each framework")
    parser.add_argument("--epochs", type=int, default=2, help="RecBole epochs to time")
    parser.add_argument(
        "--keras-epochs", type=int, help="keras-recae epochs to time (default: --epochs + 1)"
    )
    parser.add_argument("--only", choices=FRAMEWORKS, help="run one framework only")
    parser.add_argument("--max-users", type=int, help="only the first N users of train.txt")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LightGCN directory")
    parser.add_argument(
        "--out", type=Path, default=HOME / "keras-recae-bench" / "speed_vs_recbole.json"
    )
    parser.add_argument("--venv", type=Path, default=HOME / "recbole-venv")
    parser.add_argument("--recbole-data", type=Path, default=HOME / "recbole-data")
    # Internal: the keras-recae measurement, run in a fresh process.
    parser.add_argument("--worker", choices=["keras-recae"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.epochs < 1:
        parser.error("--threads and --epochs should be positive")
    if args.max_users is not None and args.max_users < 1:
        parser.error("--max-users should be positive")
    if args.keras_epochs is None:
        args.keras_epochs = args.epochs + 1
    return args


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


# ---------------------------------------------------------------------------------------
# RecBole


def ensure_recbole_venv(venv: Path) -> Path:
    """Creates the RecBole virtual environment if needed; returns its Python."""
    python = venv / "bin" / "python"
    if python.exists() and _venv_ready(python):
        return python
    if not python.exists():
        base = sys.executable if sys.version_info[:2] == (3, 11) else shutil.which("python3.11")
        if base is None:
            raise SystemExit("The RecBole environment needs Python 3.11 (torch 2.13.0's wheel).")
        print(f"Creating {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    print(f"Installing {' '.join(RECBOLE_REQUIREMENTS)} into {venv} ...", file=sys.stderr)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *RECBOLE_REQUIREMENTS], check=True
    )
    if not _venv_ready(python):
        raise SystemExit(f"{venv}: RecBole's MultiVAE still does not import; see above.")
    return python


def _venv_ready(python: Path) -> bool:
    check = subprocess.run([str(python), "-c", RECBOLE_CHECK], capture_output=True, text=True)
    return check.returncode == 0


def write_atomic_files(train_file: Path, root: Path, max_users: int | None) -> str:
    """Writes train.txt as RecBole's `NAME/NAME.inter`; returns the data set NAME."""
    name = train_file.parent.name + (f"-u{max_users}" if max_users else "")
    target = root / name / f"{name}.inter"
    if target.exists() and target.stat().st_mtime >= train_file.stat().st_mtime:
        return name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".inter.tmp")
    with open(train_file, encoding="utf-8") as source, open(temporary, "w") as out:
        out.write("user_id:token\titem_id:token\n")
        users = 0
        for line in source:
            fields = line.split()
            if not fields:
                continue
            if max_users is not None and users >= max_users:
                break
            users += 1
            out.writelines(f"{fields[0]}\t{item}\n" for item in fields[1:])
    os.replace(temporary, target)
    return name


def run_recbole(args: argparse.Namespace) -> dict:
    python = ensure_recbole_venv(args.venv)
    dataset = write_atomic_files(args.data / "train.txt", args.recbole_data, args.max_users)
    work = args.recbole_data / "work"  # RecBole writes log_tensorboard/ and saved/ here
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "recbole.json"
        command = [
            str(python),
            str(HERE / "recbole_multivae_epoch.py"),
            "--data-path",
            str(args.recbole_data),
            "--dataset",
            dataset,
            "--out",
            str(out),
            "--threads",
            str(args.threads),
            "--epochs",
            str(args.epochs),
            "--hidden",
            str(HIDDEN),
            "--latent",
            str(LATENT),
            "--batch-size",
            str(BATCH_SIZE),
        ]
        env = thread_env(args.threads)
        env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")  # RecBole on pandas 2.x
        return _timed_run(command, out, env, cwd=work)


# ---------------------------------------------------------------------------------------
# keras-recae


def run_keras_recae(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "keras-recae.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "keras-recae",
            "--worker-out",
            str(out),
            "--threads",
            str(args.threads),
            "--keras-epochs",
            str(args.keras_epochs),
            "--data",
            str(args.data),
        ]
        if args.max_users:
            command += ["--max-users", str(args.max_users)]
        env = thread_env(args.threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return _timed_run(command, out, env)


def keras_recae_worker(args: argparse.Namespace) -> None:
    from keras_recae.runs import configure_threads

    configure_threads(args.threads)  # before TensorFlow runs anything

    import keras
    import pandas as pd
    import tensorflow as tf

    import keras_recae
    from keras_recae.callbacks import EpochTimer
    from keras_recae.data import read_given, sparse_batches, split_given
    from keras_recae.models import MultVAE
    from keras_recae.optimizers import FusedAdam

    started = time.perf_counter()
    train, test = read_given(args.data)
    if args.max_users:
        # The same users as RecBole's subset: the first lines of train.txt, and the same
        # items, those of their train lines.
        users = pd.unique(train["user"])[: args.max_users]
        train = train[train["user"].isin(users)]
        test = test[test["user"].isin(users) & test["item"].isin(train["item"])]
    split = split_given(train, test, validation_fraction=0)
    matrix = split.train.matrix
    model = MultVAE(hidden_dims=(HIDDEN, LATENT), seed=0)
    # The optimizer `keras-recae train` uses: Adam with TensorFlow's fused update.
    model.compile(optimizer=FusedAdam(1e-3))
    batches = sparse_batches(matrix, BATCH_SIZE, shuffle=True, seed=0)
    setup_seconds = time.perf_counter() - started

    class CpuTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.process_time() - self.start)

    timer, cpu_timer = EpochTimer(), CpuTimer()
    history = model.fit(
        batches,
        epochs=args.keras_epochs,
        verbose=0,
        shuffle=False,
        callbacks=[timer, cpu_timer],
    )
    result = {
        "framework": "keras-recae",
        "version": keras_recae.__version__,
        "backend": f"tensorflow {tf.__version__}, keras {keras.__version__}",
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "interop_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "epoch_seconds": timer.seconds,
        "epoch_cpu_seconds": cpu_timer.seconds,
        "epoch_mean_losses": [float(loss) for loss in history.history.get("loss", [])],
        "setup_seconds": setup_seconds,
        "users": matrix.shape[0],
        "items": matrix.shape[1],
        "interactions": int(matrix.nnz),
        "rows_per_epoch": matrix.shape[0],
        "batches_per_epoch": -(-matrix.shape[0] // BATCH_SIZE),
        "batch_size": BATCH_SIZE,
        "architecture": {w.path: list(w.shape) for w in model.trainable_weights},
        "parameters": model.count_params(),
    }
    args.worker_out.write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------------------------------
# Running and reporting


def _timed_run(command: list, out: Path, env: dict, cwd: Path | None = None) -> dict:
    before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=cwd)
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    result["load_average_before"] = before
    result["load_average_after"] = os.getloadavg()
    return result


def steady_epoch(seconds: list) -> float:
    """Mean epoch time without the first epoch (which includes warm-up), if there are more."""
    rest = seconds[1:] or seconds
    return sum(rest) / len(rest)


def markdown_table(results: list) -> str:
    epochs = max(len(r["epoch_seconds"]) for r in results)
    header = ["framework", "version", "threads"]
    header += [f"epoch {i + 1} s" for i in range(epochs)]
    header += ["CPU/wall", "users", "items", "interactions", "load avg before/after"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        times = [f"{s:.1f}" for s in r["epoch_seconds"]]
        times += [""] * (epochs - len(times))
        load = f"{r['load_average_before'][0]:.2f} / {r['load_average_after'][0]:.2f}"
        # CPU seconds per wall second over the epochs: the cores the process kept busy.
        cores = sum(r["epoch_cpu_seconds"]) / sum(r["epoch_seconds"])
        row = [r["framework"], r["version"], str(r["threads"]), *times, f"{cores:.2f}"]
        row += [str(r["users"]), str(r["items"]), str(r["interactions"]), load]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "keras-recae":
        keras_recae_worker(args)
        return 0
    runners = {"recbole": run_recbole, "keras-recae": run_keras_recae}
    results = [runners[name](args) for name in FRAMEWORKS if args.only in (None, name)]
    report = {
        "threads": args.threads,
        "max_users": args.max_users,
        "data": str(args.data),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "results": results,
    }
    print(markdown_table(results))
    if len(results) == 2:
        recbole, keras_recae = results
        ratio = steady_epoch(recbole["epoch_seconds"]) / steady_epoch(keras_recae["epoch_seconds"])
        cpu_ratio = steady_epoch(recbole["epoch_cpu_seconds"]) / steady_epoch(
            keras_recae["epoch_cpu_seconds"]
        )
        report["speedup"] = ratio
        report["cpu_speedup"] = cpu_ratio
        print(
            f"\nSteady epoch (mean after the first), RecBole / keras-recae at {args.threads} "
            f"thread(s): {ratio:.2f}x wall-clock, {cpu_ratio:.2f}x CPU seconds"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    temporary.write_text(json.dumps(report, indent=2))
    os.replace(temporary, args.out)
    print(f"\nWritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
