"""In-process latency of an export's `serving_default`, loaded as TF Serving loads it.

Exports a model (a run directory's `model.keras`, or a MultVAE of `--items` items trained
for one step, whose weights are as costly to serve as trained ones) with
`keras_recae.serving.export`, loads the SavedModel with `tf.saved_model.load`, and times
`serving_default` on random histories at batch 1 and batch 64: p50 and p99 over
`--requests` calls, after a warm-up. Reports the SavedModel's size on disk. No HTTP or
gRPC: this is the model's share of a TF Serving request.

    python benchmarks/serving_latency.py --items 41000          # MultVAE 600-200, k=100
    python benchmarks/serving_latency.py --run-dir runs/mult-vae --out latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="a run directory of `keras-recae train`")
    parser.add_argument("--items", type=int, default=41000, help="catalogue size (no run dir)")
    parser.add_argument("--hidden", default="600,200", help="MultVAE widths (no run dir)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200, help="timed calls per batch size")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--history", type=int, default=20, help="items per user history")
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--threads", type=int, help="TensorFlow intra/inter-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def one_step_mult_vae(n_items: int, hidden: tuple, seed: int):
    """A MultVAE trained for one step on random histories: served like a trained one."""
    import keras
    import tensorflow as tf

    from keras_recae.models import MultVAE

    keras.utils.set_random_seed(seed)
    model = MultVAE(hidden_dims=hidden, seed=seed)
    model.build((None, n_items))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(seed)
    per_user = min(10, n_items)
    columns = [np.sort(rng.choice(n_items, per_user, replace=False)) for _ in range(32)]
    indices = np.stack([np.repeat(np.arange(32), per_user), np.concatenate(columns)], axis=1)
    batch = tf.SparseTensor(indices, np.ones(len(indices), np.float32), [32, n_items])
    model.train_on_batch(batch)
    model.set_item_ids(np.arange(1, n_items + 1))
    return model


def directory_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def time_calls(function, inputs, requests: int, warmup: int) -> dict:
    for _ in range(warmup):
        function(**inputs)
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        outputs = function(**inputs)
        outputs["item_ids"].numpy()
        seconds.append(time.perf_counter() - started)
    ms = np.array(seconds) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "requests": requests,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from keras_recae.serving import export

    started = time.perf_counter()
    if args.run_dir:
        from keras_recae.runs import load_run_model

        model = load_run_model(Path(args.run_dir))
        source = str(args.run_dir)
    else:
        hidden = tuple(int(h) for h in args.hidden.split(","))
        model = one_step_mult_vae(args.items, hidden, args.seed)
        source = f"MultVAE{hidden}, one training step"
    build_seconds = time.perf_counter() - started
    vocabulary = np.asarray(model.item_ids if model.item_ids is not None else [])
    if vocabulary.size == 0:
        vocabulary = np.arange(model.n_items)

    with tempfile.TemporaryDirectory() as temporary:
        started = time.perf_counter()
        path = export(model, Path(temporary) / "model", k=args.k)
        export_seconds = time.perf_counter() - started
        size = directory_megabytes(path)
        started = time.perf_counter()
        function = tf.saved_model.load(str(path)).signatures["serving_default"]
        load_seconds = time.perf_counter() - started

        rng = np.random.default_rng(args.seed)
        padding = -1 if vocabulary.dtype.kind in "iu" else ""
        results = {
            "source": source,
            "n_items": int(model.n_items),
            "k": args.k,
            "history_length": args.history,
            "saved_model_mb": round(size, 2),
            "build_seconds": round(build_seconds, 2),
            "export_seconds": round(export_seconds, 2),
            "load_seconds": round(load_seconds, 2),
            "threads": args.threads,
        }
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            histories = rng.choice(vocabulary, size=(batch_size, args.history))
            lead = np.full((batch_size, 1), padding, dtype=histories.dtype)
            inputs = {"item_ids": tf.constant(np.concatenate([lead, histories], axis=1))}
            results[f"batch_{batch_size}"] = time_calls(
                function, inputs, args.requests, args.warmup
            )
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
