"""CPU seconds of a training epoch: the full softmax against sampled ones, in one process.

The same model settings (a study's `best.json`) and the same split; each variant trains
`--rounds` epochs, the variants taking turns epoch by epoch so that whatever else runs on
the machine weighs on each alike. One thread; the figure is the CPU time of `model.fit`
(`time.process_time`), the mean over the rounds.

Usage:
    python benchmarks/sampled_speed.py --params benchmarks/studies/gowalla-mult-vae/best.json \
        --data ../shared/data/gowalla --variants full,uniform8192,popularity4096 \
        --out benchmarks/runs/sampled-softmax/gowalla-speed.json
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from scale import write_record  # benchmarks/ is the script's directory


def variant_settings(name: str) -> dict:
    """`full`, or PROPOSAL + N (`uniform8192`, `popularity4096`), as model settings."""
    if name == "full":
        return {"sampled_softmax": 0}
    match = re.fullmatch(r"(uniform|popularity)(\d+)", name)
    if not match:
        raise SystemExit(f"{name!r}: expected full, uniformN or popularityN")
    return {"sampled_softmax": int(match.group(2)), "sampled_proposal": match.group(1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="a study's best.json")
    parser.add_argument("--data", required=True)
    parser.add_argument("--variants", default="full,uniform8192")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from keras_recae.runs import configure_threads

    configure_threads(1)
    import keras

    from keras_recae.data.spec import DataSpec, load_split
    from keras_recae.models import registry
    from keras_recae.optimizers import FusedAdam
    from keras_recae.training import RunConfig, with_model_defaults
    from keras_recae.tuning import read_best

    best = read_best(args.params)
    split, _ = load_split(DataSpec(args.data), read_test=False)
    train = split.train.matrix
    cls = registry.model_class(best["model"])
    # The rate and batch `train --params` would use (the batch by the model's rule if unnamed).
    run = with_model_defaults(
        RunConfig(best["model"], lr=best["run"]["lr"], batch_size=best["run"].get("batch_size")),
        n_rows=train.shape[0],
    )
    lr, batch_size = run.lr, run.batch_size
    models = {}
    for name in args.variants.split(","):
        keras.utils.set_random_seed(0)
        model = cls(**best["settings"], **variant_settings(name), seed=0)
        model.set_item_ids(split.item_ids)
        model.compile(optimizer=FusedAdam(lr))
        model.adapt(train)
        models[name] = model
    cpu = {name: [] for name in models}
    for round_ in range(args.rounds):
        for name, model in models.items():
            batches = model.training_batches(train, batch_size, shuffle=True, seed=round_)
            started = time.process_time()
            model.fit(batches, epochs=1, verbose=0)
            cpu[name].append(time.process_time() - started)
            print(name, round_, round(cpu[name][-1], 1), flush=True)
    record = {
        "params": args.params,
        "data": args.data,
        "threads": 1,
        "batch_size": batch_size,
        "cpu_seconds_per_epoch": {name: sum(v) / len(v) for name, v in cpu.items()},
        "cpu_seconds": cpu,
    }
    write_record(record, Path(args.out))


if __name__ == "__main__":
    main()
