#!/usr/bin/env bash
# The readers' property-based tests with 3,000 inputs per test instead of the suite's 80; the
# counts of inputs parsed and refused (with the file named) go to
# benchmarks/runs/fuzz/readers.json. Usage: bash benchmarks/fuzz_readers.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/runs/fuzz"
cd "$here/.."
start=$(date +%s)
KERAS_RECAE_FUZZ=long KERAS_RECAE_FUZZ_STATS="$here/runs/fuzz/readers.json" \
  python -m pytest -q -p no:cacheprovider tests/data/test_reader_fuzz.py
echo "fuzzed in $(( $(date +%s) - start )) s"
