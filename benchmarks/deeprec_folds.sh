#!/usr/bin/env bash
# DeepRec on the five given MovieLens-100K folds, each tuned on its own base: a study per fold
# on uK.base's validation ratings (the test file is never read while tuning; a study per fold
# because uK.base holds the test lines of the other folds), the winner retrained on all of
# uK.base for its epoch count and evaluated once on uK.test; then the mean and standard
# deviation of the five test RMSEs (the goal: under SVD++'s 0.919). Studies resume from their
# journals (benchmarks/studies/ml100k-uK-deep-rec); a finished fold's run is kept.
# The user-based DeepRec (the paper's, `--set kind=user`) by default; KIND=item: the
# item-based DeepRec (`--set kind=item`: rows are items), with `l2` searched up to 1e-2,
# studies ml100k-uK-deep-rec-item, runs ml100k-deeprec-item-folds.
# Run from anywhere; paths are relative to the repository (../shared holds the data).
# Usage: bash benchmarks/deeprec_folds.sh   (FOLDS="1 2" for some; KIND=item)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/ml-100k
suffix="" runs=benchmarks/runs/ml100k-deeprec-folds kind=(--set kind=user) space=()
if [ "${KIND:-user}" = item ]; then
  suffix=-item runs=benchmarks/runs/ml100k-deeprec-item-folds
  kind=(--set kind=item) space=(--space l2=1e-6:1e-2:log)
fi
for fold in ${FOLDS:-1 2 3 4 5}; do
  files=(--data "$data/u$fold.base" --test "$data/u$fold.test")
  study=benchmarks/studies/ml100k-u$fold-deep-rec$suffix
  keras-recae tune deep-rec "${files[@]}" --threads 1 --monitor rmse --epochs 300 \
    --eval-every 5 --patience 6 --trials "${TRIALS:-40}" --seed 0 \
    --space batch_size=32,64,128,256 "${kind[@]}" "${space[@]}" --study "$study" \
    --no-figures > /dev/null
  [ -f "$runs/u$fold/metrics.json" ] || keras-recae train deep-rec "${files[@]}" \
    --params "$study/best.json" "${kind[@]}" --retrain --threads 1 --out "$runs/u$fold" \
    > /dev/null
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
