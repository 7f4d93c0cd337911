"""Do the zoo's defaults transfer? Every implicit model with no settings, 30 epochs, against EASE.

Each model is trained by the runner exactly as `keras-recae train MODEL --data ... --epochs 30`
would train it with no other flag, except that the epoch is chosen on NDCG@20 (the figure
compared) and the run stops after `--epochs`. EASE is trained with its default `l2` and, as a
stronger reference, with the `l2` of {50, 100, 200, 500, 1000, 2000} (`--ease-l2`) best on
the validation part. Every figure is a validation figure: the test lines are not read
(`read_test=False`), so this can choose defaults.

Usage:
  python benchmarks/defaults_transfer.py OUT --data FILE [--test FILE] [--protocol P]
      [--heldout-users N] [--models mult-vae,...] [--epochs 30] [--threads 1]

A finished run (its metrics.json exists) is skipped; `OUT/summary.csv` gathers every run's
best validation NDCG@20, its epoch and its share of EASE's.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

MODELS = ("mult-vae", "mult-dae", "rec-vae", "cdae", "autoencoder", "denoising-autoencoder")
EASE_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
METRIC = "ndcg@20"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--data", required=True)
    parser.add_argument("--test")
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--heldout-users", type=int, default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL:NAME=VALUE",
        help="a setting for one model (to try a candidate default)",
    )
    parser.add_argument("--lr", type=float, help="a learning rate for every model (candidate)")
    parser.add_argument("--batch-size", type=int, help="a batch size for every model (candidate)")
    parser.add_argument(
        "--ease-l2",
        default=",".join(f"{l2:g}" for l2 in EASE_GRID),
        help="the l2 values of EASE to train (comma-separated)",
    )
    parser.add_argument("--tag", default="", help="suffix of the run directories")
    args = parser.parse_args()

    from keras_recae.cli import parse_settings
    from keras_recae.data.spec import DataSpec, load_split
    from keras_recae.training import RunConfig, train

    spec = DataSpec(
        args.data,
        test=args.test,
        protocol=args.protocol,
        heldout_users=args.heldout_users,
        threshold=args.threshold,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split, full_train = load_split(spec, explicit=False, read_test=False)
    pairs = {}
    for item in args.set:
        model, _, assignment = item.partition(":")
        pairs.setdefault(model, []).append(assignment)
    settings = {model: parse_settings(assignments) for model, assignments in pairs.items()}

    def run(name, model, model_settings, epochs, **run_args):
        run_dir = out / name
        metrics_path = run_dir / "metrics.json"
        if not metrics_path.is_file():
            config = RunConfig(
                model,
                spec,
                settings=model_settings,
                out=str(run_dir),
                epochs=epochs,
                metrics=(METRIC, "recall@20", "ndcg@100"),
                monitor=METRIC,
                threads=args.threads,
                eval_every=args.eval_every,
                verbose=1,
                **run_args,
            )
            train(config, split=split, full_train=full_train, read_test=False)
        return json.loads(metrics_path.read_text())

    grid = [float(l2) for l2 in args.ease_l2.split(",")]
    ease = {l2: run(f"ease-l2-{l2:g}", "ease", {"l2": l2}, 1) for l2 in grid}
    from keras_recae.models.ease import EASE

    default_l2 = EASE().l2
    ease_default = ease[default_l2]["validation"][METRIC] if default_l2 in ease else None
    best_l2 = max(ease, key=lambda l2: ease[l2]["validation"][METRIC])
    ease_best = ease[best_l2]["validation"][METRIC]
    rows = []
    for model in args.models.split(","):
        name = model + (f"-{args.tag}" if args.tag else "")
        candidate = {"lr": args.lr, "batch_size": args.batch_size}
        candidate = {key: value for key, value in candidate.items() if value is not None}
        summary = run(name, model, settings.get(model, {}), args.epochs, **candidate)
        value = summary["validation"][METRIC]
        rows.append(
            {
                "model": name,
                "settings": json.dumps({**settings.get(model, {}), **candidate}),
                METRIC: f"{value:.4f}",
                "best_epoch": summary.get("best_epoch"),
                "epochs_run": summary.get("epochs_run"),
                "seconds_per_epoch": f"{summary.get('seconds_per_epoch') or 0:.1f}",
                "share_of_ease_default": f"{value / ease_default:.3f}" if ease_default else "",
                "share_of_ease_best": f"{value / ease_best:.3f}",
            }
        )
        print(rows[-1], flush=True)
    summary_path = out / "summary.csv"
    previous = []
    if summary_path.is_file():
        with summary_path.open() as handle:
            previous = [
                r
                for r in csv.DictReader(handle)
                if r["model"] not in {row["model"] for row in rows}
            ]
    partial = summary_path.with_name(f".{summary_path.name}.tmp")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(previous + rows)
    partial.replace(summary_path)
    print(
        f"EASE {METRIC}: l2={default_l2:g} (default) {ease_default}, best l2={best_l2:g} "
        f"{ease_best:.4f}"
    )


if __name__ == "__main__":
    main()
