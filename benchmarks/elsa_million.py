"""ELSA on a catalogue of a million items: seconds per epoch and peak memory.

EASE's item-item matrix for a million items would take 4 TB in float32; ELSA keeps
`n_items x rank` weights and computes its loss without the `[batch, n_items]` output. This
script generates clustered, popularity-skewed interactions of the given size (vectorised:
each user draws 80% of their items from their own cluster's, by popularity, the rest from
the whole catalogue), trains ELSA with `model.fit` on the library's sparse pipeline, and
writes one JSON line of figures: generation and training CPU seconds (one thread), peak
RSS, the loss of each epoch, and the top-20 hit rate of one held-out item per user for
`--eval-users` users against the most popular items (that the model learned something).

Usage:
  python benchmarks/elsa_million.py OUT.json [--users 100000] [--items 1000000]
      [--per-user 50] [--rank 64] [--epochs 1] [--batch-size 500] [--lr 1e-2]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def generate(n_users: int, n_items: int, per_user: int, n_clusters: int, seed: int):
    """A users x items CSR matrix of ones and one held-out item per user."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_order = rng.permutation(n_items)  # item_order[k]: the item of popularity rank k
    user_cluster = rng.integers(0, n_clusters, n_users)
    draws = per_user + 1
    in_cluster = rng.random((n_users, draws)) < 0.8
    # Global draws: a popularity rank by inverse CDF over the whole catalogue.
    global_cdf = np.cumsum(popularity) / popularity.sum()
    ranks = np.searchsorted(global_cdf, rng.random((n_users, draws)))
    # Cluster draws: the ranks of cluster c are c, c + C, c + 2C, ...
    cluster_popularity = popularity[::n_clusters]
    cluster_cdf = np.cumsum(cluster_popularity) / cluster_popularity.sum()
    within = np.searchsorted(cluster_cdf, rng.random((n_users, draws)))
    cluster_ranks = np.minimum(within * n_clusters + user_cluster[:, None], n_items - 1)
    ranks = np.where(in_cluster, cluster_ranks, ranks)
    items = item_order[np.minimum(ranks, n_items - 1)]
    held_out = items[:, -1]
    rows = np.repeat(np.arange(n_users), per_user)
    matrix = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, items[:, :-1].ravel())),
        shape=(n_users, n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix, held_out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--eval-users", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from keras_recae.training import configure_threads

    configure_threads(1)
    import keras
    import numpy as np

    from keras_recae.data import sparse_batches, to_sparse_tensor
    from keras_recae.models import ELSA
    from keras_recae.optimizers import FusedAdam

    started = time.process_time()
    matrix, held_out = generate(args.users, args.items, args.per_user, args.clusters, args.seed)
    generate_seconds = time.process_time() - started
    rss_after_data = peak_rss_mb()

    keras.utils.set_random_seed(args.seed)
    model = ELSA(rank=args.rank, seed=args.seed)
    model.compile(optimizer=FusedAdam(args.lr))
    batches = sparse_batches(matrix, args.batch_size, shuffle=True, seed=args.seed)
    epoch_seconds, losses = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.process_time() - self.start)
            losses.append(float(logs["loss"]))

    model.fit(batches, epochs=args.epochs, verbose=0, shuffle=False, callbacks=[Clock()])
    rss_after_training = peak_rss_mb()

    users = np.arange(min(args.eval_users, args.users))
    popular = np.argsort(-np.asarray(matrix.sum(axis=0)).ravel())[: 20 + args.per_user]
    hits, popular_hits = 0, 0
    scoring = time.process_time()
    for start in range(0, len(users), 200):
        rows = users[start : start + 200]
        history = matrix[rows]
        top, _ = model.recommend(to_sparse_tensor(history), k=20)
        hits += int(np.sum(np.any(top.numpy() == held_out[rows, None], axis=1)))
        for row, user in enumerate(rows):
            seen = set(history[row].indices)
            ranked = [item for item in popular if item not in seen][:20]
            popular_hits += int(held_out[user] in ranked)
    scoring_seconds = time.process_time() - scoring

    figures = {
        "users": args.users,
        "items": args.items,
        "interactions": int(matrix.nnz),
        "rank": args.rank,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": 1,
        "generate_cpu_seconds": round(generate_seconds, 1),
        "epoch_cpu_seconds": [round(s, 1) for s in epoch_seconds],
        "losses": [round(v, 5) for v in losses],
        "peak_rss_mb_after_data": round(rss_after_data),
        "peak_rss_mb": round(rss_after_training),
        "weights_mb": round(args.items * args.rank * 4 / 2**20),
        "eval_users": len(users),
        "hit_rate@20": hits / len(users),
        "popularity_hit_rate@20": popular_hits / len(users),
        "scoring_cpu_seconds": round(scoring_seconds, 1),
    }
    out = Path(args.out)
    partial = out.with_name(f".{out.name}.tmp")
    partial.write_text(json.dumps(figures, indent=1) + "\n")
    partial.replace(out)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
