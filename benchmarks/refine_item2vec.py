"""Refining item2vec vectors: raw vs PCA vs the three refiners, on Gowalla and ML-1M.

Item2vec: gensim Word2Vec, skip-gram with negative sampling, over the users' train items
("sentences"), at d = 128 and 300. Then, for each refined set at d' (32, 64):

(a) Retrieval for users: a user's query is the mean of the L2-normalised vectors of their
    train items; every item is scored by its cosine with the query, train items excluded;
    Recall@20 and NDCG@20 (keras_recae.metrics definitions: recall = hits / |test|, NDCG
    with binary gains and IDCG over min(20, |test|)) over the test items, computed by
    `keras_recae.evaluation.evaluate_ranking`. Test items without a vector count in the
    denominators and are never hit. Users: all of ML-1M's; a fixed random sample of
    `--max-users` (5,000) of Gowalla's 29,858, to fit the time budget. "raw-centred" (the
    raw vectors minus their mean) is a reference: word2vec vectors share a common
    direction, which dominates the cosine of mean queries; PCA and the refiners centre.
(b) Robustness: Gaussian noise of sigma times each dimension's standard deviation is added
    to the raw vectors; the noisy vectors are evaluated as they are, through PCA, and
    through the refiners trained on them; besides (a), overlap@10 is the share of each
    item's 10 nearest neighbours (cosine, itself excluded) that are also among its 10
    nearest under the clean raw vectors, over a fixed sample of items.

Data:
- Gowalla (LightGCN split): the lines of train.txt are the sentences and the users'
  queries, test.txt the targets. Items within a line are in ascending id order, not time
  order, so each sentence is shuffled again at every word2vec epoch (the item2vec
  treatment of baskets as sets).
- ML-1M, users 1..2999 (ratings_users0001-2999.dat, every rating is an interaction): each
  user's items sorted by timestamp, the first 80% are train (sentence, in time order, and
  query), the last 20% test: a temporal hold-out per user.

Word2vec runs on 2 threads (`--workers`), so its vectors are not bit-reproducible; they are
cached. The refiners train for `--steps` updates of 256 rows with Adam (1e-3), rounded to
whole epochs: 1,000 (72 epochs on ML-1M, 6 on Gowalla) to fit the time budget.

Usage:
    python benchmarks/refine_item2vec.py [--datasets ml-1m gowalla] [--dims 128 300]
        [--latent 32 64] [--noise 0 0.5 1.0] [--noise-latent 64] [--steps 1000]
        [--max-users 5000] [--out ~/keras-recae-bench/refine]
    python benchmarks/refine_item2vec.py --report ~/keras-recae-bench/refine/results.json

Writes OUT/results.json (every figure, rewritten after each one) and caches the word2vec
vectors in OUT/vectors/ (gensim KeyedVectors files) for reruns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATA = Path(__file__).resolve().parents[2] / "shared/data"
OVERLAP_SAMPLE = 2000
OVERLAP_K = 10
K = 20

WORD2VEC = dict(sg=1, window=10, negative=5, min_count=1, sample=1e-3, alpha=0.025)
WORD2VEC_EPOCHS = {"gowalla": 5, "ml-1m": 5}

# The refiners run with the library's defaults (L2-normalised input, squared loss, codes
# centred; the AE linear, the DAE and VAE with one GELU layer of 512), chosen on ML-1M d=128
# validation targets that exclude this script's test items (benchmarks/refine_select.py).
REFINERS = {
    "ae": ("EmbeddingAutoencoder", {}),
    "dae": ("DenoisingEmbeddingAutoencoder", {}),
    "vae": ("EmbeddingVAE", {}),
}


# ---------------------------------------------------------------------------------------
# Data


def load_gowalla(root: Path):
    """(sentences, train lists, test lists) of the LightGCN split, ids as strings."""

    def lines(name):
        result = {}
        with open(root / name) as file:
            for line in file:
                parts = line.split()
                if parts:
                    result[parts[0]] = parts[1:]
        return result

    train, test = lines("train.txt"), lines("test.txt")
    users = sorted(set(train) | set(test), key=int)
    train_lists = [train.get(u, []) for u in users]
    test_lists = [test.get(u, []) for u in users]
    return [s for s in train_lists if s], train_lists, test_lists


def load_ml1m(path: Path, train_fraction: float = 0.8):
    """Per user, items by time: the first 80% train, the rest test."""
    import pandas as pd

    frame = pd.read_csv(
        path, sep="::", engine="python", names=["user", "item", "rating", "timestamp"]
    )
    frame = frame.sort_values(["user", "timestamp", "item"], kind="stable")
    train_lists, test_lists = [], []
    for _, items in frame.groupby("user", sort=True)["item"]:
        items = items.astype(str).tolist()
        cut = int(np.ceil(train_fraction * len(items)))
        train_lists.append(items[:cut])
        test_lists.append(items[cut:])
    return [s for s in train_lists if s], train_lists, test_lists


class ShuffledSentences:
    """A corpus that shuffles each sentence anew at every pass (word2vec epoch)."""

    def __init__(self, sentences, seed: int):
        self.sentences = sentences
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        for sentence in self.sentences:
            yield [sentence[i] for i in self.rng.permutation(len(sentence))]


def train_item2vec(dataset, sentences, dim, seed, cache: Path, workers: int):
    """Word2Vec vectors (keys, float32 matrix), cached as a gensim KeyedVectors file."""
    from gensim.models import Word2Vec

    from keras_recae.data.vectors import read_vectors, write_vectors

    epochs = WORD2VEC_EPOCHS[dataset]
    path = cache / f"{dataset}-d{dim}-e{epochs}-s{seed}.kv"
    if path.is_file():
        keys, vectors = read_vectors(path)
        return keys, vectors, {"cached": str(path)}
    corpus = ShuffledSentences(sentences, seed) if dataset == "gowalla" else sentences
    started, cpu = time.perf_counter(), time.process_time()
    model = Word2Vec(vector_size=dim, seed=seed, workers=workers, epochs=epochs, **WORD2VEC)
    model.build_vocab(corpus)
    model.train(corpus, total_examples=model.corpus_count, epochs=epochs)
    timing = {
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "epochs": epochs,
        "workers": workers,
    }
    keys = np.array(model.wv.index_to_key, dtype=object)
    vectors = model.wv.vectors.astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    write_vectors(path, keys, vectors, overwrite=True)
    return keys, vectors, timing


def eval_set(keys, train_lists, test_lists):
    """The users with a train item that has a vector and a test item, over the vocabulary."""
    from keras_recae.data.split import EvalSet

    index = {key: i for i, key in enumerate(keys.tolist())}

    def matrix(lists):
        rows, cols, extra = [], [], []
        for row, items in enumerate(lists):
            known = sorted({index[i] for i in items if i in index})
            rows.extend([row] * len(known))
            cols.extend(known)
            extra.append(len(set(items)) - len(known))
        data = np.ones(len(rows), np.float32)
        shape = (len(lists), len(keys))
        return sp.csr_matrix((data, (rows, cols)), shape=shape), np.array(extra, np.int64)

    inputs, _ = matrix(train_lists)
    targets, extra = matrix(test_lists)
    keep = (np.diff(inputs.indptr) > 0) & ((np.diff(targets.indptr) + extra) > 0)
    users = np.flatnonzero(keep)
    return EvalSet(inputs[users], targets[users], users, extra[users])


# ---------------------------------------------------------------------------------------
# Scoring


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class CosineScorer:
    """Scores every item by its cosine with the mean of a user's unit item vectors."""

    def __init__(self, vectors: np.ndarray):
        import tensorflow as tf

        self.unit = tf.constant(unit_rows(vectors))

    def __call__(self, inputs, training=False):
        import tensorflow as tf

        query = tf.sparse.sparse_dense_matmul(inputs, self.unit)
        query = tf.math.l2_normalize(query, axis=1)
        return tf.matmul(query, self.unit, transpose_b=True)


def retrieval(vectors, users) -> dict:
    from keras_recae.evaluation import evaluate_ranking

    return evaluate_ranking(
        CosineScorer(vectors), users, [f"recall@{K}", f"ndcg@{K}"], batch_size=1024
    )


def neighbours(vectors: np.ndarray, sample: np.ndarray, k: int = OVERLAP_K) -> np.ndarray:
    unit = unit_rows(vectors)
    similarities = unit[sample] @ unit.T
    similarities[np.arange(len(sample)), sample] = -np.inf
    top = np.argpartition(-similarities, k, axis=1)[:, :k]
    return top


def overlap(top: np.ndarray, reference: np.ndarray) -> float:
    shared = [len(set(a) & set(b)) for a, b in zip(top.tolist(), reference.tolist())]
    return float(np.mean(shared) / top.shape[1])


def pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Centred PCA projection onto the top `dim` components (numpy SVD)."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:dim].T).astype(np.float32)


def train_refiner(name, vectors, latent, steps, batch_size, lr, seed):
    import keras

    from keras_recae import models

    class_name, settings = REFINERS[name]
    keras.utils.set_random_seed(seed)
    model = getattr(models, class_name)(latent_dim=latent, seed=seed, **settings)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    epochs = max(1, round(steps * batch_size / len(vectors)))
    started, cpu = time.perf_counter(), time.process_time()
    history = model.fit(
        vectors, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0
    ).history
    timing = {
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "epochs": epochs,
        "final_loss": float(history["loss"][-1]),
        "first_loss": float(history["loss"][0]),
    }
    return model.refine(vectors), timing, model.get_config()


# ---------------------------------------------------------------------------------------
# Report


def report(results: dict) -> str:
    """Markdown tables of a results.json: retrieval, robustness, and the goal's verdicts."""
    rows = results["rows"]
    lines = []
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    dims = sorted({r["dim"] for r in rows})

    def find(dataset, dim, noise, method, latent):
        for r in rows:
            if (r["dataset"], r["dim"], r["noise"], r["method"]) == (dataset, dim, noise, method):
                if method.startswith("raw") or r["latent"] == latent:
                    return r
        return None

    def cell(r, key="recall@20"):
        return f"{r[key]:.4f}" if r else "-"

    names = {
        "raw": "raw",
        "raw-centred": "raw, centred",
        "pca": "PCA",
        "ae": "AE",
        "dae": "DAE",
        "vae": "VAE",
    }
    lines.append("#### (a) Retrieval for users (no noise)\n")
    header = "| data | method | d' |"
    rule = "|---|---|---|"
    for dim in dims:
        header += f" R@20 (d={dim}) | N@20 (d={dim}) | % raw R@20 (d={dim}) |"
        rule += "---|---|---|"
    lines += [header, rule]
    verdicts = []
    for dataset in datasets:
        latents = sorted(
            {
                r["latent"]
                for r in rows
                if r["dataset"] == dataset and r["noise"] == 0 and not r["method"].startswith("raw")
            }
        )
        entries = [("raw", None), ("raw-centred", None)]
        entries += [(m, lat) for lat in latents for m in ("pca", "ae", "dae", "vae")]
        for method, latent in entries:
            shown = [find(dataset, dim, 0.0, method, latent) for dim in dims]
            if not any(shown):
                continue
            line = f"| {dataset} | {names[method]} | {latent or 'd'} |"
            for dim, r in zip(dims, shown):
                raw = find(dataset, dim, 0.0, "raw", None)
                share = f"{100 * r['recall@20'] / raw['recall@20']:.0f}%" if r and raw else "-"
                line += f" {cell(r)} | {cell(r, 'ndcg@20')} | {share} |"
            lines.append(line)
        for dim in dims:
            raw = find(dataset, dim, 0.0, "raw", None)
            for latent in latents:
                refiners = [find(dataset, dim, 0.0, m, latent) for m in ("ae", "dae", "vae")]
                refiners = [r for r in refiners if r]
                pca_row = find(dataset, dim, 0.0, "pca", latent)
                if not refiners or not pca_row or not raw:
                    continue
                best = max(refiners, key=lambda r: r["recall@20"])
                beats = best["recall@20"] > pca_row["recall@20"]
                text = (
                    f"- {dataset}, d={dim}, d'={latent}: best refiner "
                    f"{names[best['method']]} R@20 {best['recall@20']:.4f} vs PCA "
                    f"{pca_row['recall@20']:.4f}: {'beats' if beats else 'does NOT beat'} PCA"
                )
                if latent == 64:
                    share = best["recall@20"] / raw["recall@20"]
                    text += (
                        f"; {100 * share:.0f}% of raw R@20 ({raw['recall@20']:.4f}): "
                        f"{'meets' if share >= 0.95 else 'does NOT meet'} the 95% goal"
                    )
                verdicts.append(text)
    lines.append("")
    lines += verdicts
    lines.append("")
    lines.append("#### (b) Robustness: noise sigma x per-dimension std added to the raw vectors\n")
    noises = sorted({r["noise"] for r in rows})
    noisy_latents = sorted(
        {r["latent"] for r in rows if r["noise"] > 0 and not r["method"].startswith("raw")}
    )
    for latent in noisy_latents:
        header = f"| data | d | sigma | raw R@20 | PCA-{latent} | AE-{latent} | DAE-{latent} |"
        header += f" VAE-{latent} | raw ov@10 | PCA ov@10 | AE ov@10 | DAE ov@10 | VAE ov@10 |"
        lines += [header, "|" + "---|" * 13]
        for dataset in datasets:
            for dim in dims:
                for noise in noises:
                    found = [
                        find(dataset, dim, noise, m, latent)
                        for m in ("raw", "pca", "ae", "dae", "vae")
                    ]
                    if not any(found):
                        continue
                    line = f"| {dataset} | {dim} | {noise:g} |"
                    line += "".join(f" {cell(r)} |" for r in found)
                    line += "".join(f" {cell(r, 'overlap@10')} |" for r in found)
                    lines.append(line)
    lines.append("")
    lines.append(
        "R@20 = Recall@20; ov@10 = overlap of each item's 10 nearest neighbours with those "
        "under the clean raw vectors."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "gowalla"])
    parser.add_argument("--dims", nargs="+", type=int, default=[128, 300])
    parser.add_argument("--latent", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.5, 1.0])
    parser.add_argument(
        "--noise-latent",
        nargs="+",
        type=int,
        default=[64],
        help="latent dimensions evaluated at the non-zero noise levels",
    )
    parser.add_argument("--refiners", nargs="+", default=list(REFINERS))
    parser.add_argument(
        "--steps", type=int, default=1000, help="refiner updates (rounded to whole epochs)"
    )
    parser.add_argument(
        "--max-users",
        type=int,
        default=5000,
        help="users evaluated per data set: a fixed random sample when there are more",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="word2vec threads")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow and BLAS threads")
    parser.add_argument("--out", type=Path, default=Path.home() / "keras-recae-bench" / "refine")
    parser.add_argument("--report", type=Path, help="print the tables of a results.json")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_recae.runs import configure_threads

    configure_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = {
        "command": "python benchmarks/refine_item2vec.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
        ),
        "word2vec": {**WORD2VEC, "epochs": WORD2VEC_EPOCHS},
        "refiners": {k: v[0] for k, v in REFINERS.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": [],
        "word2vec_runs": [],
    }
    started = time.perf_counter()

    def save():
        results["elapsed_seconds"] = time.perf_counter() - started
        results["load_average"] = os.getloadavg()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        results["cpu_seconds"] = usage.ru_utime + usage.ru_stime
        temporary = results_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(results, indent=1, default=float))
        os.replace(temporary, results_path)

    def log(text):
        print(
            f"[{time.perf_counter() - started:7.0f}s load {os.getloadavg()[0]:.1f}] {text}",
            flush=True,
        )

    for dataset in args.datasets:
        if dataset == "gowalla":
            sentences, train_lists, test_lists = load_gowalla(DATA / "gowalla")
        elif dataset == "ml-1m":
            sentences, train_lists, test_lists = load_ml1m(
                DATA / "ml-1m" / "ratings_users0001-2999.dat"
            )
        else:
            raise SystemExit(f"unknown dataset {dataset}")
        log(f"{dataset}: {len(sentences)} sentences, {sum(map(len, sentences))} tokens")
        for dim in args.dims:
            keys, raw, timing = train_item2vec(
                dataset, sentences, dim, args.seed, args.out / "vectors", args.workers
            )
            results["word2vec_runs"].append({"dataset": dataset, "dim": dim, **timing})
            users = eval_set(keys, train_lists, test_lists)
            if users.n_users > args.max_users:
                rows = np.sort(
                    np.random.default_rng(args.seed).choice(
                        users.n_users, args.max_users, replace=False
                    )
                )
                users = type(users)(
                    users.inputs[rows],
                    users.targets[rows],
                    users.user_ids[rows],
                    users.extra_targets[rows],
                )
            log(f"{dataset} d={dim}: {len(keys)} vectors, {users.n_users} users; {timing}")
            sample = np.random.default_rng(args.seed).choice(
                len(keys), size=min(OVERLAP_SAMPLE, len(keys)), replace=False
            )
            clean_top = neighbours(raw, sample)
            spread = raw.std(axis=0)
            for sigma in args.noise:
                noise_rng = np.random.default_rng(args.seed + 1000)
                noisy = raw + (sigma * spread * noise_rng.standard_normal(raw.shape)).astype(
                    np.float32
                )
                latents = args.latent if sigma == 0 else args.noise_latent
                candidates = [("raw", dim, None)]
                if sigma == 0:
                    candidates.append(("raw-centred", dim, None))
                candidates += [("pca", latent, None) for latent in latents]
                candidates += [(r, latent, r) for latent in latents for r in args.refiners]
                for method, latent, refiner in candidates:
                    timing, config = {}, None
                    if method == "raw":
                        refined = noisy
                    elif method == "raw-centred":
                        refined = noisy - noisy.mean(axis=0)
                    elif method == "pca":
                        tick = time.perf_counter()
                        refined = pca(noisy, latent)
                        timing = {"wall_seconds": time.perf_counter() - tick}
                    else:
                        refined, timing, config = train_refiner(
                            refiner,
                            noisy,
                            latent,
                            args.steps,
                            args.batch_size,
                            args.lr,
                            args.seed,
                        )
                    tick = time.perf_counter()
                    row = {
                        "dataset": dataset,
                        "dim": dim,
                        "noise": sigma,
                        "method": method,
                        "latent": latent,
                        **retrieval(refined, users),
                        f"overlap@{OVERLAP_K}": overlap(neighbours(refined, sample), clean_top),
                        "users": users.n_users,
                        "timing": timing,
                        "eval_seconds": time.perf_counter() - tick,
                        "config": config,
                    }
                    results["rows"].append(row)
                    save()
                    log(
                        f"{dataset} d={dim} noise={sigma} {method}@{latent}: "
                        f"R@20 {row['recall@20']:.4f} N@20 {row['ndcg@20']:.4f} "
                        f"overlap {row['overlap@10']:.3f} {timing}"
                    )
    save()
    log(f"done: {results_path}")


if __name__ == "__main__":
    main()
