"""Mult-VAE at scale on synthetic data, phase by phase: generating and splitting the data,
one training epoch, full-ranking evaluation of the held-out users, and (optionally) the
exported SavedModel's size and top-100 latency at batch 1.

Each phase's wall and CPU seconds, the process's peak RSS after it (`ru_maxrss`, which only
grows: the figure after training is the peak of loading and training) and the largest
resident memory sampled during the phase go to a JSON file. One thread (`--threads`).

Usage:
    python benchmarks/scale.py --users 200000 --items 1000000 --interactions 10000000 \
        --sampled 4096 --hidden 200,64 --sparse-updates --out benchmarks/runs/scale/NAME.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from serving_load import rss_mb  # benchmarks/ is the script's directory

from keras_recae.runs import peak_rss_mb


class Phase:
    """Wall and CPU seconds of a block, the process's peak RSS after it, and the largest
    resident memory seen during it (sampled every 0.2 s), into `record[name]`."""

    def __init__(self, record: dict, name: str):
        self.record, self.name = record, name

    def _sample(self):
        while not self.done.wait(0.2):
            self.largest = max(self.largest, rss_mb())

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.largest, self.done = rss_mb(), threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.sampler.join()
        if exc[0] is None:
            self.record[self.name] = {
                "wall_seconds": round(time.perf_counter() - self.wall, 2),
                "cpu_seconds": round(time.process_time() - self.cpu, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "largest_rss_during_mb": round(max(self.largest, rss_mb()), 1),
            }
            print(self.name, self.record[self.name], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--hidden", default="200", help="hidden_dims, comma-separated")
    parser.add_argument("--sampled", type=int, default=0, help="sampled_softmax (0: full)")
    parser.add_argument("--sparse-updates", action="store_true")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--eval-users", type=int, default=10000, help="strong: held-out users")
    parser.add_argument("--eval-batch", type=int, default=100, help="users scored at once")
    parser.add_argument("--export", action="store_true", help="export and time top-100")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-only", action="store_true", help="stop after the data phase")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from keras_recae.runs import configure_threads

    configure_threads(args.threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_recae.data.spec import DataSpec, load_split
    from keras_recae.evaluation import evaluate_ranking
    from keras_recae.models import MultVAE
    from keras_recae.optimizers import FusedAdam

    record = {"arguments": vars(args)}
    with Phase(record, "data"):
        spec = DataSpec(
            data="synthetic",
            protocol="strong",
            heldout_users=args.eval_users,
            synthetic_users=args.users,
            synthetic_items=args.items,
            synthetic_interactions=args.interactions,
            seed=0,
        )
        split, _ = load_split(spec, explicit=False, default_validation=0.0, read_test=True)
        train = split.train.matrix
    record["train"] = {"users": train.shape[0], "items": train.shape[1], "nnz": int(train.nnz)}
    print(record["train"], flush=True)
    if args.data_only:
        write_record(record, Path(args.out))
        return

    keras.utils.set_random_seed(0)
    model = MultVAE(
        hidden_dims=[int(width) for width in args.hidden.split(",")],
        seed=0,
        sampled_softmax=args.sampled,
        sparse_updates=args.sparse_updates,
    )
    model.set_item_ids(split.item_ids)
    model.compile(optimizer=FusedAdam(MultVAE.default_lr, sparse_updates=args.sparse_updates))
    model.adapt(train)
    batches = model.training_batches(train, args.batch_size, shuffle=True, seed=0)
    steps = int(batches.cardinality())
    with Phase(record, "epoch"):
        model.fit(batches, epochs=1, verbose=0)
    record["parameters"] = int(sum(np.prod(w.shape) for w in model.weights))
    record["steps"] = steps
    record["epoch"]["seconds_per_step"] = round(record["epoch"]["wall_seconds"] / steps, 4)

    with Phase(record, "evaluation"):
        metrics = evaluate_ranking(
            model, split.test, metrics=["recall@20", "ndcg@20"], batch_size=args.eval_batch
        )
    record["evaluation"]["users"] = int(split.test.n_users)
    record["evaluation"]["metrics"] = metrics

    if args.export:
        from keras_recae.serving import export

        base = Path(tempfile.mkdtemp(prefix="scale-export-"))
        try:
            with Phase(record, "export"):
                path = export(model, base / "rec", k=100, warmup=False)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            record["export"]["bytes"] = size
            signature = tf.saved_model.load(str(path)).signatures["serving_default"]
            history = np.asarray([[-1, *split.item_ids[:50].tolist()]], dtype=np.int64)
            signature(item_ids=tf.constant(history))  # first call traces
            latencies = []
            for _ in range(30):
                start = time.perf_counter()
                signature(item_ids=tf.constant(history))["item_ids"].numpy()
                latencies.append(time.perf_counter() - start)
            record["export"]["top100_ms_p50"] = round(1000 * float(np.median(latencies)), 2)
            record["export"]["top100_ms_max"] = round(1000 * float(np.max(latencies)), 2)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    write_record(record, Path(args.out))


def write_record(record: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(out)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
