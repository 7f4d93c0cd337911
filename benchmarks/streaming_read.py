"""Reading a large given split: streamed into CSR against whole frames, and a worker's shard.

`python benchmarks/streaming_read.py write DIR --interactions N` writes a synthetic given
split (`synthetic_matrix`, 10% of each user's items in the test file) as Parquet files of
row groups of 1M lines, chunk by chunk; `python benchmarks/streaming_read.py read DIR
--mode M --out OUT.json [--files csv]` reads it (or the CSV copies `write-csv DIR` makes of
it) in this process one way and writes its seconds, CPU seconds and peak RSS:

- `streamed`: `load_split` (the files read by chunks straight into CSR);
- `frames`: the frame path it replaced (`read_given`, then `split_given` and
  `given_full_train`);
- `shard0of2`: `load_shard` for worker 0 of 2 (`--shard-users`);
- `strong-streamed`: `load_split` of the train file alone under `--protocol strong` with
  10,000 validation and 10,000 test users (read by chunks into arrays of 12 bytes a line);
- `strong-frames`: the train file as a whole frame (`read_ratings`, then `split_strong`);
- `random-streamed` / `random-frames`, `temporal-streamed` / `temporal-frames` and
  `leave-last-out-streamed` / `leave-last-out-frames`: the same for the train file under
  those protocols (`split_random`, `split_temporal`, `split_leave_last_out` of the frame);
  the time-based ones need a split written with `--timestamps`.

Each given read is the validation split of a run (10% of each user's train items held out).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def write(
    directory: Path, n_users: int, n_items: int, n_interactions: int, timestamps: bool = False
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keras_recae.data.synthetic import synthetic_matrix

    directory.mkdir(parents=True, exist_ok=True)
    data = synthetic_matrix(n_users, n_items, n_interactions, seed=0)
    matrix = data.matrix
    rng = np.random.default_rng(0)
    fields = [("user", pa.int64()), ("item", pa.int64())]
    if timestamps:
        # Seconds within about three years, at random: ties and lines out of time order.
        fields.append(("timestamp", pa.int64()))
    schema = pa.schema(fields)
    writers = {
        name: pq.ParquetWriter(directory / f"{name}.parquet", schema) for name in ("train", "test")
    }
    chunk = 100_000
    for start in range(0, n_users, chunk):
        rows = matrix[start : start + chunk]
        users = np.repeat(data.user_ids[start : start + chunk], np.diff(rows.indptr))
        items = data.item_ids[rows.indices]
        test = rng.random(len(users)) < 0.1
        for name, mask in (("train", ~test), ("test", test)):
            columns = {"user": users[mask], "item": items[mask]}
            if timestamps:
                columns["timestamp"] = rng.integers(10**9, 10**9 + 10**8, int(mask.sum()))
            table = pa.table(columns, schema=schema)
            writers[name].write_table(table, row_group_size=1_000_000)
    for writer in writers.values():
        writer.close()
    print(json.dumps({"users": n_users, "items": n_items, "interactions": int(matrix.nnz)}))


def write_csv(directory: Path) -> None:
    """`DIR/train.csv` and `DIR/test.csv` (header `user,item`) from the Parquet files, by
    row groups."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    for name in ("train", "test"):
        source = pq.ParquetFile(directory / f"{name}.parquet")
        temporary = directory / f".{name}.csv.tmp"
        with pv.CSVWriter(temporary, source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=1_000_000):
                writer.write_batch(batch)
        temporary.replace(directory / f"{name}.csv")


def read(directory: Path, mode: str, suffix: str = "parquet") -> dict:
    from keras_recae.data.protocols import (
        given_full_train,
        split_given,
        split_leave_last_out,
        split_random,
        split_strong,
        split_temporal,
    )
    from keras_recae.data.readers import read_given, read_ratings
    from keras_recae.data.shards import load_shard
    from keras_recae.data.spec import DataSpec, load_split

    train, test = str(directory / f"train.{suffix}"), str(directory / f"test.{suffix}")
    spec = DataSpec(train, test=test)
    strong = DataSpec(train, protocol="strong", heldout_users=10_000)
    # The modules' own memory (TensorFlow's among them), before any line is read.
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "streamed":
        split, full = load_split(spec)
    elif mode == "frames":
        frames = read_given(spec.data, spec.test)
        split = split_given(*frames, validation_fraction=0.1, seed=0)
        full = given_full_train(*frames)
    elif mode == "shard0of2":
        split, full, _ = load_shard(spec, 0, 2, 0.1)
    elif mode == "strong-streamed":
        split, _ = load_split(strong)
    elif mode == "strong-frames":
        frame = read_ratings(strong.data)
        split = split_strong(frame, n_heldout_users=10_000, threshold=None)
    elif mode.endswith("-streamed"):
        protocol = mode.removesuffix("-streamed")
        split, _ = load_split(DataSpec(train, protocol=protocol, validation_fraction=0.1))
    else:
        frame = read_ratings(train)
        if mode == "random-frames":
            split = split_random(frame, test_fraction=0.1, validation_fraction=0.1, seed=0)
        elif mode == "temporal-frames":
            split, _ = split_temporal(frame, cut=0.8, validation_fraction=0.1)
        else:
            split, _ = split_leave_last_out(frame, n=1)
    heldout = split.test.targets.nnz
    if not mode.startswith(("streamed", "frames", "shard")):
        # One file split: the train part's lines (and under `strong` the held-out users').
        full = split.train.matrix
        if mode.startswith("strong"):
            heldout += split.test.inputs.nnz
    return {
        "mode": mode,
        "files": suffix,
        "baseline_rss_mb": baseline,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_users": int(split.train.n_users),
        "items": int(split.train.n_items),
        "train_interactions": int(full.nnz),
        "test_interactions": int(heldout),
        "digests": {part: getattr(split, part).digest() for part in ("validation", "test")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    writer = commands.add_parser("write")
    writer.add_argument("dir", type=Path)
    writer.add_argument("--users", type=int, default=1_000_000)
    writer.add_argument("--items", type=int, default=1_000_000)
    writer.add_argument("--interactions", type=int, default=100_000_000)
    writer.add_argument("--timestamps", action="store_true", help="a timestamp column too")
    reader = commands.add_parser("read")
    reader.add_argument("dir", type=Path)
    reader.add_argument(
        "--mode",
        choices=["streamed", "frames", "shard0of2"]
        + [
            f"{protocol}-{way}"
            for protocol in ("strong", "random", "temporal", "leave-last-out")
            for way in ("streamed", "frames")
        ],
        required=True,
    )
    reader.add_argument("--out", type=Path, required=True)
    reader.add_argument("--files", choices=["parquet", "csv"], default="parquet")
    csv_writer = commands.add_parser("write-csv")
    csv_writer.add_argument("dir", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.dir, args.users, args.items, args.interactions, args.timestamps)
        return
    if args.command == "write-csv":
        write_csv(args.dir)
        return
    result = read(args.dir, args.mode, args.files)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
