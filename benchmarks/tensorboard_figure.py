"""Draws the scalars a `--tensorboard LOG_DIR` run wrote, as TensorBoard's Scalars tab shows
them, into one PNG (for the README; this machine has no browser for a screenshot).

Usage: python benchmarks/tensorboard_figure.py LOG_DIR OUT.png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_recae.runs import tensorboard_scalars

    train = tensorboard_scalars(args.log_dir / "train")
    validation = tensorboard_scalars(args.log_dir / "validation")
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
