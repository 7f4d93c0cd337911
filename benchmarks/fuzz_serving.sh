#!/usr/bin/env bash
# The serving signatures' property-based tests with 1,500 requests per test instead of the
# suite's 40: in process, and through the stand-in server's REST and gRPC. The counts of
# requests answered and refused with INVALID_ARGUMENT go to benchmarks/runs/fuzz/serving.json.
# Usage: bash benchmarks/fuzz_serving.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/runs/fuzz"
cd "$here/.."
start=$(date +%s)
KERAS_RECAE_FUZZ=long KERAS_RECAE_FUZZ_STATS="$here/runs/fuzz/serving.json" \
  python -m pytest -q -p no:cacheprovider tests/serving/test_serving_fuzz.py
echo "fuzzed in $(( $(date +%s) - start )) s"
