#!/usr/bin/env bash
# MovieLens-100K, the five given folds u1..u5: test RMSE and MAE of I-AutoRec, U-AutoRec,
# DeepRec with and without dense re-feeding, and a biased MF, as mean +- std over the folds.
# The runs are in benchmarks/ml100k_ratings.py: the AutoRecs need a decaying learning rate,
# which `keras-recae train` has no flag for (RESULTS.md, "Rating prediction").
# Usage: bash benchmarks/ml100k_ratings.sh [RUNS_DIR]
#        (default: $HOME/keras-recae-bench/ml100k-ratings; FOLDS="u1 u2" and THREADS=1 apply)
set -euo pipefail
runs="${1:-$HOME/keras-recae-bench/ml100k-ratings}"
# shellcheck disable=SC2086
exec python "$(dirname "$0")/ml100k_ratings.py" --runs "$runs" --threads "${THREADS:-1}" \
  --folds ${FOLDS:-u1 u2 u3 u4 u5}
