"""Paired comparison of two runs on the same users: `keras-recae compare RUN_A RUN_B`.

Each run directory of `train` holds its evaluated users' metrics (`test_users.csv.gz`,
`validation_users.csv.gz`) and, in `metrics.json`, a digest of each part's users, inputs and
targets. Two runs of one split are compared user by user: the difference B - A of a metric,
its mean, a paired t-test, a Wilcoxon signed-rank test and a bootstrap confidence interval of
the mean difference (scipy.stats). Runs on different splits are refused: their users, or
what the users were given and asked for, differ, and a paired test would mean nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_recae.errors import ConfigError
from keras_recae.runs import METRICS_FILE, USERS_FILE, read_json

PARTS = ("test", "validation")


def compare_runs(
    run_a,
    run_b,
    metric: str = "ndcg@20",
    part: str = "test",
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """The paired difference of one metric between two runs of the same split.

    Args:
        run_a: path. The reference run directory.
        run_b: path. The run compared with it: differences are B - A.
        metric: str. A per-user metric both runs evaluated, e.g. `"ndcg@20"`. Defaults to
            `"ndcg@20"`.
        part: str. `test` or `validation` (comparing on validation keeps the test lines for
            the end). Defaults to `"test"`.
        resamples: int. Bootstrap resamples of the users. Defaults to 10,000.
        confidence: float. Level of the bootstrap interval. Defaults to 0.95.
        seed: int. Seed of the bootstrap. Defaults to 0.

    Returns:
        A dict: `metric`, `part`, `users`, `mean_a`, `mean_b`, `difference` (mean of B - A),
        `relative` (difference / mean_a), `t_statistic` and `t_pvalue` (paired t-test),
        `wilcoxon_statistic` and `wilcoxon_pvalue` (signed-rank test, zero differences
        dropped), `ci_low` and `ci_high` (percentile bootstrap interval of the mean
        difference), `confidence`, `resamples`.

    Raises:
        ConfigError: for a run directory without per-user results or split digest, runs of
            different splits, or a metric one of them did not evaluate.

    Example:

    ```python
    from keras_recae.comparing import compare_runs

    result = compare_runs("runs/ease", "runs/rdlae", metric="ndcg@20")
    print(result["difference"], result["ci_low"], result["ci_high"], result["t_pvalue"])
    ```
    """
    from scipy import stats

    if part not in PARTS:
        raise ConfigError(f"--part should be one of {', '.join(PARTS)}. Received: {part!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"--confidence should be in (0, 1). Received: {confidence}")
    if resamples < 1:
        raise ConfigError(f"--resamples should be a positive number. Received: {resamples}")
    metric = metric.strip().lower()
    first, second = Path(run_a), Path(run_b)
    digests = [_split_digest(run, part) for run in (first, second)]
    if digests[0] != digests[1]:
        raise ConfigError(
            f"{first} and {second} were evaluated on different {part} splits (their "
            f"{METRICS_FILE} split digests differ): other users, or other inputs or held-out "
            "items for them. Compare runs of the same data, protocol, seed and held-out users."
        )
    a = _user_values(first, part, metric)
    b = _user_values(second, part, metric)
    if set(a.index) != set(b.index):
        raise ConfigError(
            f"{first} and {second} evaluated different {part} users for {metric} "
            f"({len(a)} and {len(b)} users); a paired comparison needs the same users"
        )
    b = b.loc[a.index]
    values_a = a.to_numpy(np.float64)
    values_b = b.to_numpy(np.float64)
    differences = values_b - values_a
    t_test = stats.ttest_rel(values_b, values_a)
    if np.any(differences != 0):
        wilcoxon = stats.wilcoxon(differences, zero_method="wilcox")
        wilcoxon_statistic, wilcoxon_pvalue = float(wilcoxon.statistic), float(wilcoxon.pvalue)
    else:
        # Identical rankings for every user: no difference to test.
        wilcoxon_statistic, wilcoxon_pvalue = 0.0, 1.0
    interval = stats.bootstrap(
        (differences,),
        np.mean,
        n_resamples=int(resamples),
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=max(1, 20_000_000 // max(len(differences), 1)),
        rng=np.random.default_rng(seed),
    ).confidence_interval
    mean_a = float(values_a.mean())
    difference = float(differences.mean())
    return {
        "metric": metric,
        "part": part,
        "run_a": str(first),
        "run_b": str(second),
        "users": len(differences),
        "mean_a": mean_a,
        "mean_b": float(values_b.mean()),
        "difference": difference,
        "relative": difference / mean_a if mean_a else float("nan"),
        "t_statistic": float(t_test.statistic) if np.isfinite(t_test.statistic) else 0.0,
        "t_pvalue": float(t_test.pvalue) if np.isfinite(t_test.pvalue) else 1.0,
        "wilcoxon_statistic": wilcoxon_statistic,
        "wilcoxon_pvalue": wilcoxon_pvalue,
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "confidence": confidence,
        "resamples": int(resamples),
    }


def format_comparison(result: dict) -> str:
    """The comparison as a few lines of text, for the command line."""
    level = f"{result['confidence']:.0%}"
    return "\n".join(
        [
            f"{result['metric']} on {result['users']} {result['part']} users",
            f"  A {result['run_a']}: {result['mean_a']:.5f}",
            f"  B {result['run_b']}: {result['mean_b']:.5f}",
            f"  B - A: {result['difference']:+.5f} ({result['relative']:+.2%}), {level} "
            f"bootstrap interval [{result['ci_low']:+.5f}, {result['ci_high']:+.5f}] "
            f"({result['resamples']} resamples)",
            f"  paired t-test: t = {result['t_statistic']:.3f}, p = {result['t_pvalue']:.3g}",
            f"  Wilcoxon signed-rank: W = {result['wilcoxon_statistic']:.1f}, "
            f"p = {result['wilcoxon_pvalue']:.3g}",
        ]
    )


def _split_digest(run: Path, part: str) -> str:
    summary_path = run / METRICS_FILE
    if not summary_path.is_file():
        raise ConfigError(f"{run} is not a finished run directory: it has no {METRICS_FILE}")
    digests = read_json(summary_path).get("split_digests") or {}
    if part not in digests:
        raise ConfigError(
            f"{summary_path} has no digest of a {part} part: the run had no {part} users, or "
            "it was written before runs recorded their splits (train it again to compare it)"
        )
    return digests[part]


def _user_values(run: Path, part: str, metric: str):
    import pandas as pd

    path = run / USERS_FILE.format(part=part)
    if not path.is_file():
        raise ConfigError(
            f"{run} has no per-user results of its {part} users ({path.name}); runs write "
            "them unless they are tuning trials or rating models"
        )
    # Ids as text, as the data had them: "007" and "7" stay two users.
    users = pd.read_csv(path, dtype={"user_id": str}, keep_default_na=False)
    if metric not in users.columns:
        available = ", ".join(column for column in users.columns if column != "user_id")
        raise ConfigError(f"{path} has no '{metric}' column. Its metrics: {available}")
    if users["user_id"].duplicated().any():
        raise ConfigError(f"{path}: a user id appears twice; the file is not a run's output")
    values = pd.to_numeric(users[metric], errors="coerce")
    values.index = users["user_id"]
    # Users without a value (no recommended item for novelty or popularity) are left out.
    return values.dropna()
