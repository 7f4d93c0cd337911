"""Kill a training run with SIGKILL at random moments, resume it, compare with one never killed.

The reliability check of the runner: `keras-recae train ... --out DIR` is started, killed
with SIGKILL after a random number of seconds, started again with the same command (which
resumes from `DIR/backup`), and so on until it finishes. Its `model.keras` must then hold the
same weights, bit for bit, as the same command run once without interruption, and its
`history.csv` the same figures epoch by epoch. One JSON line per trial goes to OUT.jsonl
(kills, the epochs they landed after, whether the weights and the history matched).

Usage:
  python benchmarks/kill_resume.py OUT.jsonl [--trials 5] [--kills 2] [--seed 0]
      -- train mult-dae --data ... --epochs 10
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_to_completion(
    command: list[str], out: Path, rng: random.Random, max_wait: float, max_kills: int
):
    """Runs `command --out out`, killed at random moments (`max_kills` times at most),
    then again until it finishes."""
    kills = []
    while True:
        process = subprocess.Popen(
            [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = rng.uniform(1.0, max_wait) if len(kills) < max_kills else None
        try:
            _, stderr = process.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            finished = (out / "model.keras").is_file() and (out / "metrics.json").is_file()
            kills.append(
                {
                    "after_seconds": round(deadline, 1),
                    "epochs_done": epochs_done(out),
                    "after_the_run_was_written": finished,
                }
            )
            if finished:
                return kills
            continue
        if process.returncode != 0:
            raise RuntimeError(f"{command} failed: {stderr.decode()[-2000:]}")
        return kills


def epochs_done(out: Path) -> int:
    path = out / "history.csv"
    if not path.is_file():
        return 0
    with path.open() as file:
        return max(0, sum(1 for _ in file) - 1)


def history(out: Path) -> list[dict]:
    with (out / "history.csv").open(newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def weights(out: Path) -> list:
    from keras_recae.runs import load_run_model

    return load_run_model(out).get_weights()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=2, help="kills per trial at most")
    parser.add_argument("--max-wait", type=float, default=None, help="seconds (default: the run's)")
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("give the keras-recae command after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = ["keras-recae", *argv[split + 1 :]]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    try:
        started = time.perf_counter()
        subprocess.run([*command, "--out", str(work / "whole")], check=True, capture_output=True)
        whole_seconds = time.perf_counter() - started
        reference_history, reference_weights = history(work / "whole"), weights(work / "whole")
        import numpy as np

        for trial in range(args.trials):
            out = work / f"killed-{trial}"
            kills = run_to_completion(command, out, rng, args.max_wait or whole_seconds, args.kills)
            same_history = history(out) == reference_history
            same_weights = all(
                np.array_equal(a, b) for a, b in zip(weights(out), reference_weights, strict=True)
            )
            line = {
                "trial": trial,
                "command": " ".join(command),
                "kills": kills,
                "same_history": same_history,
                "same_weights": same_weights,
            }
            with open(args.out, "a", encoding="utf-8") as file:
                file.write(json.dumps(line) + "\n")
            print(json.dumps(line), flush=True)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
