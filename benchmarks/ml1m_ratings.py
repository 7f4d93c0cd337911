"""MovieLens-1M ratings of users 1..2999: random 90/10 hold-out, RMSE of I-AutoRec and DeepRec.

No published figure exists for this subset (the rest of ratings.dat is not available here),
so a plain biased matrix factorisation, fitted by this script on the same splits, is the
reference. For each seed: `split_random` holds out 10% of the ratings for test; 5% of the
remaining train ratings are held out to choose the epoch count (MF: the rank-free
regularisation and the sweep count) on validation RMSE; the model is then refitted on the
whole 90% for that many epochs and evaluated on the test ratings.

Usage:
    python benchmarks/ml1m_ratings.py [--seeds 0 1 2]
        [--models mf i-autorec deep-rec deep-rec-no-refeed] [--threads 1]
        [--runs $HOME/keras-recae-bench/ml1m-ratings]
        [--out $HOME/keras-recae-bench/ml1m-ratings.json]

A finished (seed, model) run, its JSON file in `--runs`, is read back instead of rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared/data/ml-1m/ratings_users0001-2999.dat"
VALIDATION_FRACTION = 0.05

# The settings chosen on ML-100K's validation ratings (RESULTS.md, "Rating prediction").
# `patience` counts evaluations, made every `every` epochs; batch_size None: full batches;
# `decay`: the Adam learning rate's factor per epoch (benchmarks/_ratings.py).
I_AUTOREC = dict(kind="item", hidden_units=500, l2=100.0)
I_AUTOREC_FIT = dict(lr=2e-2, decay=0.99, batch_size=None, epochs=1000, every=2, patience=15)
DEEP_REC = dict(hidden_dims=(256, 256, 512), dropout=0.8, refeed_steps=1, l2=0.0)
DEEP_REC_FIT = dict(lr=2e-4, decay=None, batch_size=128, epochs=400, every=1, patience=20)
MF_RANK = 50
MF_L2_GRID = (0.02, 0.05, 0.1, 0.2)
MF_SWEEPS = 30


def hold_out(matrix, fraction, seed):
    """Splits a CSR matrix's entries at random: (kept, held out)."""
    import numpy as np
    import scipy.sparse as sp

    coo = matrix.tocoo()
    held = np.random.default_rng(seed).random(matrix.nnz) < fraction

    def part(mask):
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape)

    return part(~held), part(held)


def split_for_seed(frame, seed):
    """The test hold-out, the train ratings, and a validation hold-out inside them."""
    import numpy as np

    from keras_recae.data import EvalSet, Interactions, split_random

    split = split_random(frame, test_fraction=0.1, seed=seed)
    kept, held = hold_out(split.train.matrix, VALIDATION_FRACTION, seed + 1000)
    rows = np.flatnonzero(np.diff(held.indptr))
    validation = EvalSet(kept[rows], held[rows], split.train.user_ids[rows])
    train_part = Interactions(kept, split.train.user_ids, split.train.item_ids)
    return split.train, split.test, train_part, validation


def fit_keras(name, seed, train, test, train_part, validation, out):
    """Chooses the epoch count on `validation`, refits on all of `train`, evaluates `test`."""
    from _ratings import select_and_refit

    from keras_recae.data import Split

    if name == "i-autorec":
        model_name, settings, fit = "auto-rec", I_AUTOREC, I_AUTOREC_FIT
    else:
        model_name, settings, fit = "deep-rec", DEEP_REC, DEEP_REC_FIT
        if name == "deep-rec-no-refeed":
            settings = {**settings, "refeed_steps": 0}
    split = Split(train_part, validation, test, "random")
    return select_and_refit(model_name, settings, fit, seed, split, train, out)


class BiasedMF:
    """`r_ui = mu + b_u + b_i + p_u . q_i`, fitted by alternating least squares.

    Each sweep solves every user's `(p_u, b_u)` and then every item's `(q_i, b_i)` in
    closed form, with the penalty `l2 * n * (||p||^2 + b^2)` for a row of `n` ratings
    (weighted-lambda regularisation, Zhou et al. 2008). Predictions are clipped to the
    training range; unknown users or items keep zero factors and biases.
    """

    def __init__(self, rank: int, l2: float, seed: int):
        self.rank, self.l2, self.seed = rank, l2, seed

    def fit(self, matrix, sweeps: int, callback=None):
        import numpy as np

        rng = np.random.default_rng(self.seed)
        n_users, n_items = matrix.shape
        self.mu = float(matrix.data.mean())
        self.low, self.high = float(matrix.data.min()), float(matrix.data.max())
        self.users = np.zeros((n_users, self.rank + 1))
        self.items = np.hstack([rng.normal(0, 0.1, (n_items, self.rank)), np.zeros((n_items, 1))])
        by_user, by_item = matrix.tocsr(), matrix.T.tocsr()
        for sweep in range(sweeps):
            self._solve(by_user, self.users, self.items)
            self._solve(by_item, self.items, self.users)
            if callback is not None and callback(sweep + 1, self):
                break
        return self

    def _solve(self, rows, own, other):
        """Updates `own[r] = (factors, bias)` given `other`'s, for every row of `rows`."""
        import numpy as np

        rank = self.rank
        for r in range(rows.shape[0]):
            start, stop = rows.indptr[r], rows.indptr[r + 1]
            if start == stop:
                continue
            columns = rows.indices[start:stop]
            design = np.hstack([other[columns, :rank], np.ones((stop - start, 1))])
            target = rows.data[start:stop] - self.mu - other[columns, rank]
            gram = design.T @ design + self.l2 * (stop - start) * np.eye(rank + 1)
            own[r] = np.linalg.solve(gram, design.T @ target)

    def predict(self, users, items):
        import numpy as np

        rank = self.rank
        values = (
            self.mu
            + self.users[users, rank]
            + self.items[items, rank]
            + np.sum(self.users[users, :rank] * self.items[items, :rank], axis=1)
        )
        return np.clip(values, self.low, self.high)


def mf_metrics(model, train, eval_set):
    """RMSE and MAE of the MF at an EvalSet's targets."""
    from keras_recae.metrics import rating_metrics

    coo = eval_set.targets.tocoo()
    users = train.user_index(eval_set.user_ids)[coo.row]
    return rating_metrics(model.predict(users, coo.col), coo.data)


def fit_mf(seed, train, train_part, validation):
    """Chooses `l2` and the sweep count on `validation`, then refits on all of `train`."""
    import numpy as np

    best = (np.inf, None, None)
    for l2 in MF_L2_GRID:
        scores = []

        def record(sweep, model, scores=scores):
            scores.append(mf_metrics(model, train_part, validation)["rmse"])
            return len(scores) > 3 and scores[-1] > min(scores[:-3])

        BiasedMF(MF_RANK, l2, seed).fit(train_part.matrix, MF_SWEEPS, record)
        sweeps = int(np.argmin(scores)) + 1
        if scores[sweeps - 1] < best[0]:
            best = (scores[sweeps - 1], l2, sweeps)
    model = BiasedMF(MF_RANK, best[1], seed).fit(train.matrix, best[2])
    return model, {"l2": best[1], "sweeps": best[2], "validation": {"rmse": best[0]}}


def run_seed(frame, seed, models, runs: Path):
    """Each model's result on one seed's split; a result already in `runs` is read back."""
    results, split = {}, None
    for name in models:
        path = runs / f"seed{seed}-{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
            continue
        if split is None:
            split = split_for_seed(frame, seed)
        train, test, train_part, validation = split
        started, cpu_started = time.perf_counter(), time.process_time()
        if name == "mf":
            model, info = fit_mf(seed, train, train_part, validation)
            metrics = mf_metrics(model, train, test)
        else:
            out = runs / f"seed{seed}-{name}"
            summary, info = fit_keras(name, seed, train, test, train_part, validation, out)
            metrics = summary["test"]
        results[name] = {
            **info,
            "test": metrics,
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started,
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(results[name], indent=2))
        os.replace(temporary, path)
        print(json.dumps({"seed": seed, "model": name, **results[name]}), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    choices = ["mf", "i-autorec", "deep-rec", "deep-rec-no-refeed"]
    parser.add_argument("--models", nargs="+", default=choices, choices=choices)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(DATA))
    bench = Path.home() / "keras-recae-bench"
    parser.add_argument("--runs", default=str(bench / "ml1m-ratings"))
    parser.add_argument("--out", default=str(bench / "ml1m-ratings.json"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from keras_recae.runs import configure_threads

    configure_threads(args.threads)
    import numpy as np

    from keras_recae.data import read_ratings

    frame = read_ratings(args.data)
    print(f"{len(frame)} ratings, {frame['user'].nunique()} users, {frame['item'].nunique()} items")
    run_dir = Path(args.runs)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs = {seed: run_seed(frame, seed, args.models, run_dir) for seed in args.seeds}
    summary = {}
    for name in args.models:
        rmse = np.array([runs[seed][name]["test"]["rmse"] for seed in args.seeds])
        mae = np.array([runs[seed][name]["test"]["mae"] for seed in args.seeds])
        summary[name] = {
            "rmse_mean": float(rmse.mean()),
            "rmse_std": float(rmse.std(ddof=1)) if len(rmse) > 1 else 0.0,
            "mae_mean": float(mae.mean()),
            "seconds": float(np.mean([runs[seed][name]["seconds"] for seed in args.seeds])),
            "cpu_seconds": float(np.mean([runs[seed][name]["cpu_seconds"] for seed in args.seeds])),
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(
        json.dumps({"seeds": args.seeds, "runs": runs, "summary": summary}, indent=2)
    )
    os.replace(temporary, out)
    print(
        "| model | " + " | ".join(f"seed {seed}" for seed in args.seeds) + " | RMSE mean +- std"
        " | MAE mean | CPU s per seed | wall s per seed |"
    )
    print("|---|" + "---|" * (len(args.seeds) + 4))
    for name, values in summary.items():
        cells = " | ".join(f"{runs[seed][name]['test']['rmse']:.4f}" for seed in args.seeds)
        print(
            f"| {name} | {cells} | {values['rmse_mean']:.4f} +- {values['rmse_std']:.4f} | "
            f"{values['mae_mean']:.4f} | {values['cpu_seconds']:.0f} | {values['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
