"""MovieLens-100K, the given folds u1..u5: test RMSE and MAE of the explicit-rating models.

I-AutoRec, U-AutoRec, DeepRec with and without dense re-feeding, and a biased matrix
factorisation for reference, each as mean +- std over the folds. The protocol is that of
`keras-recae train --data uK.base --test uK.test --retrain` (`split_given`, seed 0): 10% of
each user's base ratings are held out to choose the epoch count on validation RMSE, then a
new model is fitted on every base rating for that many epochs and evaluated on uK.test. The
AutoRecs train on full batches with an Adam learning rate decaying by `decay` per epoch
(benchmarks/_ratings.py says why). A finished run (its JSON file exists) is skipped.

Usage:
    python benchmarks/ml100k_ratings.py [--folds u1 u2 u3 u4 u5]
        [--models i-autorec u-autorec deep-rec deep-rec-no-refeed mf] [--threads 1]
        [--runs $HOME/keras-recae-bench/ml100k-ratings]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared/data/ml-100k"
SEED = 0

# Chosen on u1's validation ratings (RESULTS.md, "Rating prediction"). batch_size None:
# full batches; `patience` counts evaluations, made every `every` epochs.
MODELS = {
    "i-autorec": (
        "auto-rec",
        dict(kind="item", hidden_units=500, l2=100.0),
        dict(lr=2e-2, decay=0.99, batch_size=None, epochs=1000, every=1, patience=30),
    ),
    "u-autorec": (
        "auto-rec",
        dict(kind="user", hidden_units=500, l2=100.0),
        dict(lr=1e-2, decay=0.99, batch_size=None, epochs=1000, every=1, patience=30),
    ),
    # Half the paper's widths (512-512-1024 overfits 943 users).
    "deep-rec": (
        "deep-rec",
        dict(hidden_dims=(256, 256, 512), dropout=0.8, refeed_steps=1, l2=0.0),
        dict(lr=2e-4, decay=None, batch_size=128, epochs=400, every=1, patience=20),
    ),
    "deep-rec-no-refeed": (
        "deep-rec",
        dict(hidden_dims=(256, 256, 512), dropout=0.8, refeed_steps=0, l2=0.0),
        dict(lr=2e-4, decay=None, batch_size=128, epochs=400, every=1, patience=20),
    ),
}


def run(name: str, fold: str, data: Path, runs: Path) -> dict:
    from keras_recae.data.protocols import given_full_train, split_given
    from keras_recae.data.readers import read_given

    train_frame, test_frame = read_given(data / f"{fold}.base", data / f"{fold}.test")
    split = split_given(train_frame, test_frame, validation_fraction=0.1, seed=SEED)
    train = given_full_train(train_frame, test_frame)
    if name == "mf":
        from ml1m_ratings import fit_mf, mf_metrics

        started, cpu_started = time.perf_counter(), time.process_time()
        model, info = fit_mf(SEED, train, split.train, split.validation)
        info["cpu_seconds"] = time.process_time() - cpu_started
        info["wall_seconds"] = time.perf_counter() - started
        return {**info, "test": mf_metrics(model, train, split.test)}
    from _ratings import select_and_refit

    model_name, settings, fit = MODELS[name]
    out = runs / f"{fold}-{name}"
    summary, info = select_and_refit(model_name, settings, fit, SEED, split, train, out)
    return {"settings": settings, "fit": fit, **info, "test": summary["test"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="+", default=["u1", "u2", "u3", "u4", "u5"])
    parser.add_argument("--models", nargs="+", default=[*MODELS, "mf"], choices=[*MODELS, "mf"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--runs", default=str(Path.home() / "keras-recae-bench" / "ml100k-ratings"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from keras_recae.runs import configure_threads

    configure_threads(args.threads)
    import numpy as np

    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    results = {}
    for fold in args.folds:
        for name in args.models:
            path = runs / f"{fold}-{name}.json"
            if not path.exists():
                result = {"fold": fold, "model": name, **run(name, fold, Path(args.data), runs)}
                temporary = path.with_name(path.name + ".tmp")
                temporary.write_text(json.dumps(result, indent=2))
                os.replace(temporary, path)
                print(json.dumps(result), flush=True)
            results[fold, name] = json.loads(path.read_text())
    print(
        "| model | " + " | ".join(args.folds) + " | RMSE mean +- std | MAE mean | "
        "epochs (mean) | CPU s per run |"
    )
    print("|---|" + "---|" * (len(args.folds) + 4))
    for name in args.models:
        rows = [results[fold, name] for fold in args.folds]
        rmse = np.array([r["test"]["rmse"] for r in rows])
        mae = np.array([r["test"]["mae"] for r in rows])
        std = rmse.std(ddof=1) if len(rmse) > 1 else 0.0
        epochs = np.mean([r.get("best_epoch") or r.get("sweeps") for r in rows])
        cpu = np.mean([r["cpu_seconds"] for r in rows])
        cells = " | ".join(f"{v:.4f}" for v in rmse)
        print(
            f"| {name} | {cells} | {rmse.mean():.4f} +- {std:.4f} | {mae.mean():.4f} | "
            f"{epochs:.0f} | {cpu:.0f} |"
        )


if __name__ == "__main__":
    main()
