"""Reports of finished runs: `keras-recae report RUN ... [--out report.md]`.

A Markdown table of the runs' validation and test metrics, and PNG figures beside it (with
matplotlib): the validation curve of each run per epoch (`history.csv`), and a test metric at
every cutoff k = 1..K, computed once from the run's model and data (`evaluate_run`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from keras_recae.errors import ConfigError
from keras_recae.metrics import LIST_METRICS, parse_metric_names
from keras_recae.runs import HISTORY_FILE, METRICS_FILE, RUN_FILE, configure_threads, read_json

CURVE_FIGURE = "validation_curves.png"
AT_K_FIGURE = "test_at_k.png"


@dataclasses.dataclass
class ReportResult:
    """What `report` wrote.

    Attributes:
        markdown: str. The report's text.
        out: Path | None. The Markdown file (None when only the text was asked for).
        figures: list of Path. The PNG files written.
    """

    markdown: str
    out: Path | None
    figures: list


def report(
    runs,
    out=None,
    metric: str | None = None,
    max_k: int = 100,
    at_k: bool = True,
    threads: int | None = None,
) -> ReportResult:
    """A Markdown table of runs and their figures.

    Args:
        runs: sequence of paths. Finished run directories of `train`.
        out: path | None. The Markdown file; the figures go beside it. None returns the text
            and writes no figure. Defaults to None.
        metric: str | None. The metric of the figures, e.g. `"ndcg@20"`: its validation
            values per epoch, and its name at k = 1..`max_k` on the test users. None takes
            the first validation metric of the first run. Defaults to None.
        max_k: int. The largest cutoff of the test figure. Defaults to 100.
        at_k: bool. Draw the test figure: each run's model is loaded and scored on its test
            users once (the run's data must be at hand). Defaults to True.
        threads: int | None. CPU threads while scoring. Defaults to None.

    Returns:
        A `ReportResult`.

    Raises:
        ConfigError: for a directory that is not a finished run, or a metric that is not a
            ranking metric.

    Example:

    ```python
    from keras_recae.reporting import report

    report(["runs/ease", "runs/mult-vae"], out="report.md", metric="ndcg@20")
    ```
    """
    runs = [Path(run) for run in runs]
    if not runs:
        raise ConfigError("report needs at least one run directory")
    summaries = [_summary(run) for run in runs]
    metric = metric or _first_metric(summaries)
    name = None
    if metric is not None:
        try:
            ((name, _),) = parse_metric_names([metric])
        except ValueError as error:
            raise ConfigError(f"--metric: {error}") from None
        if name in LIST_METRICS:
            raise ConfigError(f"--metric {metric}: the figures need a per-user metric")
    figures = []
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
    if out is not None and name is not None:
        figure = _validation_curves(runs, metric, out.parent / CURVE_FIGURE)
        if figure:
            figures.append(figure)
        if at_k and any(_ranked_test(summary) for summary in summaries):
            configure_threads(threads)
            figures.append(_test_at_k(runs, summaries, name, max_k, out.parent / AT_K_FIGURE))
    markdown = _markdown(runs, summaries, figures, out)
    if out is not None:
        temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        temporary.write_text(markdown, encoding="utf-8")
        os.replace(temporary, out)
    return ReportResult(markdown, out, figures)


def _summary(run: Path) -> dict:
    path = run / METRICS_FILE
    if not path.is_file():
        raise ConfigError(f"{run} is not a finished run directory: it has no {METRICS_FILE}")
    summary = read_json(path)
    run_file = run / RUN_FILE
    summary["settings"] = read_json(run_file).get("settings", {}) if run_file.is_file() else {}
    return summary


def _first_metric(summaries) -> str | None:
    for summary in summaries:
        for part in ("validation", "test"):
            for name in summary.get(part) or {}:
                if name not in ("rmse", "mae"):
                    return name
    return None


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _markdown(runs, summaries, figures, out) -> str:
    names = {part: [] for part in ("validation", "test")}
    for summary in summaries:
        for part, columns in names.items():
            for name in summary.get(part) or {}:
                if name not in columns:
                    columns.append(name)
    header = ["run", "model", "data", "protocol", "best epoch"]
    header += [f"val {name}" for name in names["validation"]]
    header += [f"test {name}" for name in names["test"]]
    lines = ["# Runs", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run, summary in zip(runs, summaries):
        row = [
            f"`{run}`",
            summary.get("model", "-"),
            f"`{summary.get('data', '-')}`",
            summary.get("protocol", "-"),
            _format(summary.get("best_epoch")),
        ]
        for part, columns in names.items():
            values = summary.get(part) or {}
            row += [_format(values.get(name)) for name in columns]
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    lines += ["", "## Settings", ""]
    for run, summary in zip(runs, summaries):
        settings = ", ".join(f"`{k}={v}`" for k, v in sorted(summary["settings"].items()))
        timing = summary.get("seconds_per_epoch")
        timing = f"; {timing:.1f} s an epoch" if timing else ""
        lines.append(f"- `{run}`: {settings or 'defaults'}{timing}")
    if figures:
        lines += ["", "## Figures", ""]
        for figure in figures:
            target = os.path.relpath(figure, Path(out).parent)
            lines.append(f"![{figure.stem}]({target})")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _validation_curves(runs, metric: str, path: Path) -> Path | None:
    import pandas as pd

    column = f"val_{metric}"
    curves = []
    for run in runs:
        history = run / HISTORY_FILE
        if history.is_file():
            frame = pd.read_csv(history)
            if column in frame.columns:
                curves.append((run, frame["epoch"] + 1, frame[column]))
    if not curves:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run, epochs, values in curves:
        axes.plot(epochs, values, marker=".", label=run.name)
    return _finish(
        plt, figure, axes, path, "epoch", f"validation {metric}", f"Validation {metric} per epoch"
    )


def _ranked_test(summary: dict) -> bool:
    """Whether a run has test figures of ranking metrics (rating models have RMSE)."""
    test = summary.get("test") or {}
    return bool(test) and "rmse" not in test


def _test_at_k(runs, summaries, name: str, max_k: int, path: Path) -> Path:
    from keras_recae.training import evaluate_run

    metrics = [f"{name}@{k}" for k in range(1, max_k + 1)]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run, summary in zip(runs, summaries):
        if not _ranked_test(summary):
            continue
        results = evaluate_run(run, metrics=metrics)["test"]
        axes.plot(range(1, max_k + 1), [results[m] for m in metrics], label=run.name)
    return _finish(plt, figure, axes, path, "k", f"test {name}@k", f"Test {name}@k, k = 1..{max_k}")


def _finish(plt, figure, axes, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Labels the figure and writes it by temporary file and rename."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    figure.savefig(temporary, dpi=120, bbox_inches="tight")
    os.replace(temporary, path)
    plt.close(figure)
    return path
