"""Trains and evaluates RecBole's MultiVAE on a given train / valid / test split.

Runs inside the RecBole virtual environment that `benchmarks/speed_vs_recbole.py` creates
(torch and recbole are not dependencies of keras-recae); it imports nothing from keras-recae.
`benchmarks/recbole_gowalla.py` writes the three atomic files and starts it.

RecBole's own `Config`, `create_dataset`, `data_preparation`, model and `Trainer.fit` are
used: evaluation on the valid file every `--eval-step` epochs by full ranking, early stop after
`--stopping-step` evaluations without a better NDCG@20, and the best model evaluated once on
the test file. RecBole ranks every item but those of the user's train and valid rows, and its
Recall@k (hits / test items) and NDCG@k are LightGCN's.

Usage: python recbole_multivae_fit.py --data-path DIR --dataset NAME --out RESULT.json
    --run-dir DIR [--threads 1] [--epochs 100] [--eval-step 5] [--stopping-step 4] [--dropout 0.5]
    [--total-anneal-steps 20000] [--anneal-cap 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import recbole_multivae_epoch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="directory holding DATASET/")
    parser.add_argument("--dataset", required=True, help="RecBole data set name")
    parser.add_argument("--out", required=True, help="where to write the result as JSON")
    parser.add_argument("--run-dir", required=True, help="checkpoints, for resuming")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--eval-step", type=int, default=5)
    parser.add_argument("--stopping-step", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[600])
    parser.add_argument("--latent", type=int, default=200, help="latent space dimensions")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--anneal-cap", type=float, default=0.2)
    parser.add_argument("--total-anneal-steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=2020)
    return parser.parse_args(argv)


def recbole_config(args: argparse.Namespace) -> dict:
    """The timing script's settings, with the three files, the evaluation and the KL schedule."""
    return {
        **recbole_multivae_epoch.recbole_config(args),
        "benchmark_filename": ["train", "valid", "test"],
        "checkpoint_dir": os.path.abspath(args.run_dir),
        "state": "INFO",
        "eval_args": {"order": "RO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "NDCG@20",
        "eval_step": args.eval_step,
        "stopping_step": args.stopping_step,
        "eval_batch_size": 4096,
        "metric_decimal_place": 6,
        "dropout_prob": args.dropout,
        "anneal_cap": args.anneal_cap,
        "total_anneal_steps": args.total_anneal_steps,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    _, (train_data, valid_data, test_data), model, trainer = recbole_multivae_epoch.prepare(
        args, recbole_config(args)
    )

    import recbole
    import torch

    # Resumable across sessions: `RUN_DIR/last.pth` holds the state after the last finished
    # epoch (and its evaluation), written before each new epoch; `RUN_DIR/best.pth` the best
    # model so far. MultiVAE's KL step counter (`update`) is kept with both, else a resumed run
    # would restart the annealing. Resumed epochs draw fresh dropout and shuffle randomness.
    run_dir = os.path.abspath(args.run_dir)
    os.makedirs(run_dir, exist_ok=True)
    last_file = os.path.join(run_dir, "last.pth")
    trainer.saved_model_file = os.path.join(run_dir, "best.pth")
    model.other_parameter_name = ["update"]
    # Each training epoch's wall seconds as `Trainer.fit` measures them, and each evaluation's
    # validation figures.
    progress = {"epoch_seconds": [], "evaluations": [], "best_valid_result": None}
    if os.path.exists(last_file):
        state = torch.load(last_file, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        model.load_other_parameter(state["other_parameter"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.start_epoch = state["epoch"] + 1
        trainer.cur_step = state["cur_step"]
        trainer.best_valid_score = state["best_valid_score"]
        progress = state["progress"]
        trainer.best_valid_result = progress["best_valid_result"]
        print(f"resuming after epoch {trainer.start_epoch}", file=sys.stderr, flush=True)
    epoch_seconds, evaluations = progress["epoch_seconds"], progress["evaluations"]
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train_epoch(train_data, epoch_idx, *a, **kw):
        if epoch_idx > trainer.start_epoch:
            progress["best_valid_result"] = trainer.best_valid_result
            trainer._save_checkpoint(epoch_idx - 1, verbose=False, saved_model_file=last_file)
            # `_save_checkpoint` keeps no extra fields: add the progress to the file.
            state = torch.load(last_file, map_location="cpu", weights_only=False)
            state["progress"] = progress
            torch.save(state, last_file + ".tmp")
            os.replace(last_file + ".tmp", last_file)
        start = time.perf_counter()
        loss = train_epoch(train_data, epoch_idx, *a, **kw)
        epoch_seconds.append(time.perf_counter() - start)
        return loss

    def logged_valid_epoch(*a, **kw):
        score, figures = valid_epoch(*a, **kw)
        evaluations.append({"epoch": len(epoch_seconds), **_floats(figures)})
        return score, figures

    trainer._train_epoch, trainer._valid_epoch = timed_train_epoch, logged_valid_epoch
    started = time.perf_counter()
    _, best_valid = trainer.fit(train_data, valid_data, saved=True)
    # RecBole's own `load_best_model=True` calls torch.load with torch >= 2.6's default
    # weights_only=True, which refuses RecBole's checkpoint (it holds the config): load it here.
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    test = trainer.evaluate(test_data, load_best_model=False)
    result = {
        "framework": "RecBole",
        "version": recbole.__version__,
        "model": "MultiVAE",
        "threads": torch.get_num_threads(),
        "users": train_data._dataset.user_num - 1,  # RecBole keeps a padding id 0
        "items": train_data._dataset.item_num - 1,
        "train_interactions": len(train_data._dataset.inter_feat),
        "epochs_run": len(epoch_seconds),
        # The checkpoint is written at each better validation; its epoch counts from 0.
        "best_epoch": checkpoint["epoch"] + 1,
        "seconds_per_epoch": sum(epoch_seconds) / max(len(epoch_seconds), 1),
        "epoch_seconds": epoch_seconds,
        "total_seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "validation": _floats(best_valid),
        "test": _floats(test),
        "evaluations": evaluations,
        "config": {
            key: recbole_config(args)[key]
            for key in (
                "mlp_hidden_size",
                "latent_dimension",
                "dropout_prob",
                "anneal_cap",
                "total_anneal_steps",
                "train_batch_size",
                "learning_rate",
                "eval_step",
                "stopping_step",
                "valid_metric",
            )
        },
    }
    with open(args.out + ".tmp", "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2, default=str)
    os.replace(args.out + ".tmp", args.out)
    return 0


def _floats(figures) -> dict:
    return {key: float(value) for key, value in figures.items()}


if __name__ == "__main__":
    sys.exit(main())
