"""Mult-VAE on Gowalla by an independent implementation: RecBole 1.2.1's MultiVAE.

Tells an implementation difference from a tuning one: RecBole trains the vae_cf model on
exactly the split keras-recae's Gowalla runs use (`split_given` with its default 10% of each
user's train items, seed 0, held out for validation), chooses its epoch by validation NDCG@20
(evaluated every 5 epochs, stop after 4 evaluations without a better one, as
`benchmarks/gowalla.sh`) and evaluates that model on LightGCN's test lines.

This script writes the three atomic files (`NAME/NAME.train.inter`, `.valid.inter`,
`.test.inter`, raw user and item ids) and runs `recbole_multivae_fit.py` in the RecBole
virtual environment of `speed_vs_recbole.py` (created on first use). A stopped run resumes
from its last finished epoch when run again; a finished one (its `--out` exists) is skipped.
The one difference from keras-recae's `RETRAIN=0` runs: RecBole scores a test user from their
90% train row, keras-recae from the full train line; both rank every item outside the full
train line.

Usage:
    python benchmarks/recbole_gowalla.py [--threads 1] [--dropout 0.5] [--max-users N]
        [--out $HOME/keras-recae-bench/recbole-gowalla-mult-vae.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from speed_vs_recbole import DEFAULT_DATA, HERE, HOME, _timed_run, ensure_recbole_venv, thread_env

from keras_recae.data.protocols import split_given
from keras_recae.data.readers import read_given


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LightGCN directory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--eval-step", type=int, default=5, help="epochs between evaluations")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--total-anneal-steps", type=int, default=20000)
    parser.add_argument("--max-users", type=int, help="only the first N users (a smoke test)")
    parser.add_argument(
        "--out", type=Path, default=HOME / "keras-recae-bench" / "recbole-gowalla-mult-vae.json"
    )
    parser.add_argument("--venv", type=Path, default=HOME / "recbole-venv")
    parser.add_argument("--recbole-data", type=Path, default=HOME / "recbole-data")
    return parser.parse_args(argv)


def write_split(data: Path, root: Path, max_users: int | None) -> str:
    """Writes keras-recae's Gowalla split as RecBole atomic files; returns the data set NAME."""
    split = split_given(*read_given(data))
    name = f"{data.name}-given" + (f"-u{max_users}" if max_users else "")
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    item_ids = split.train.item_ids
    kept = set(split.train.user_ids[:max_users] if max_users else split.train.user_ids)
    parts = {
        "train": (split.train.user_ids, split.train.matrix),
        "valid": (split.validation.user_ids, split.validation.targets),
        "test": (split.test.user_ids, split.test.targets),
    }
    for part, (users, matrix) in parts.items():
        target = folder / f"{name}.{part}.inter"
        temporary = target.with_suffix(".inter.tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            out.write("user_id:token\titem_id:token\n")
            for row, user in enumerate(users):
                if user in kept:
                    items = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
                    out.writelines(f"{user}\t{item_ids[item]}\n" for item in items)
        os.replace(temporary, target)
    return name


def main(argv=None) -> int:
    args = parse_args(argv)
    python = ensure_recbole_venv(args.venv)
    dataset = write_split(args.data, args.recbole_data, args.max_users)
    if args.out.exists():
        print(f"{args.out} exists: the run is finished", file=sys.stderr)
        return 0
    work = args.recbole_data / "work"  # RecBole writes log/ and log_tensorboard/ here
    # The checkpoints, from which a stopped run resumes when run again.
    run_dir = work / f"{dataset}-mult-vae-dropout{args.dropout}-anneal{args.total_anneal_steps}"
    work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "recbole.json"
        command = [
            str(python), str(HERE / "recbole_multivae_fit.py"),
            "--data-path", str(args.recbole_data), "--dataset", dataset, "--out", str(out),
            "--run-dir", str(run_dir),
            "--threads", str(args.threads), "--epochs", str(args.epochs),
            "--eval-step", str(args.eval_step),
            "--dropout", str(args.dropout), "--total-anneal-steps", str(args.total_anneal_steps),
        ]  # fmt: skip
        env = thread_env(args.threads)
        env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")  # RecBole on pandas 2.x
        result = _timed_run(command, out, env, cwd=work)
    result["data"] = str(args.data)
    result["split"] = "split_given(validation_fraction=0.1, seed=0)"
    temporary = args.out.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, indent=2))
    os.replace(temporary, args.out)
    print(f"validation {result['validation']}\ntest {result['test']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
