"""Draws the scalars a `--tensorboard LOG_DIR` run wrote, as TensorBoard's Scalars tab shows
them, into one PNG (for the README; this machine has no browser for a screenshot).

Usage: python benchmarks/tensorboard_figure.py LOG_DIR OUT.png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def scalars(log_dir: Path) -> dict:
    """{tag: {step: value}} of every event file under `log_dir`."""
    import tensorflow as tf

    values = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = (
                    tf.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else value.simple_value
                )
                values.setdefault(value.tag, {})[event.step] = float(number)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = scalars(args.log_dir / "train")
    validation = scalars(args.log_dir / "validation")
    panels = [(f"train/{tag}", train[tag]) for tag in sorted(train) if tag != "epoch_seconds"]
    panels += [(f"validation/{tag}", validation[tag]) for tag in sorted(validation)]
    columns = 4
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for axis, (name, series) in zip(axes.flat, panels):
        steps = sorted(series)
        axis.plot(steps, [series[step] for step in steps], color="#e8710a", linewidth=1.5)
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(args.out, dpi=80)
    print(f"wrote {args.out} ({len(panels)} scalars)")


if __name__ == "__main__":
    main()
