#!/usr/bin/env bash
# DeepRec on the five given MovieLens-100K folds at the settings of one study on u1.base's
# validation ratings (benchmarks/studies/ml100k-u1-deep-rec; the test file is never read while
# tuning). Fold 1: the winner retrained on all of u1.base for the study's epoch count. Folds
# 2-5: the winner's settings on uK.base, the epoch count chosen on that fold's own validation
# ratings (10% of each user's base ratings), then retrained on all of uK.base for it; each
# model is evaluated once on uK.test. Then the mean and standard deviation of the five test
# RMSEs (the goal: under SVD++'s 0.919). A finished fold's run is kept.
# KIND=item: the same for the item-based DeepRec (`--set kind=item`: rows are items), its
# own study (benchmarks/studies/ml100k-u1-deep-rec-item, `l2` searched up to 1e-2) and runs.
# Run from anywhere; paths are relative to the repository (../shared holds the data).
# Usage: bash benchmarks/deeprec_folds.sh   (FOLDS="1 2" for some; KIND=item)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/ml-100k
study=benchmarks/studies/ml100k-u1-deep-rec
runs=benchmarks/runs/ml100k-deeprec-folds
kind=()
if [ "${KIND:-user}" = item ]; then
  study=$study-item runs=benchmarks/runs/ml100k-deeprec-item-folds
  kind=(--set kind=item --space l2=1e-6:1e-2:log)
fi
keras-recae tune deep-rec --data "$data/u1.base" --test "$data/u1.test" --threads 1 --monitor rmse \
  --epochs 300 --eval-every 5 --patience 6 --trials "${TRIALS:-40}" --seed 0 \
  --space batch_size=32,64,128,256 "${kind[@]}" --study "$study" --no-figures > /dev/null
for fold in ${FOLDS:-1 2 3 4 5}; do
  [ -f "$runs/u$fold/metrics.json" ] || keras-recae train deep-rec --data "$data/u$fold.base" \
    --test "$data/u$fold.test" --params "$study/best.json" --epochs 300 --eval-every 5 \
    --patience 6 --retrain --threads 1 --out "$runs/u$fold" > /dev/null
done
python - "$runs" <<'PY'
import json, statistics, sys
from pathlib import Path
runs = Path(sys.argv[1])
folds = sorted(runs.glob("u*/metrics.json"))
rmse = {path.parent.name: json.loads(path.read_text())["test"]["rmse"] for path in folds}
summary = {"test_rmse": rmse}
if len(rmse) > 1:
    summary["mean"] = statistics.mean(rmse.values())
    summary["std"] = statistics.stdev(rmse.values())
(runs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PY
