#!/usr/bin/env bash
# The command line's property-based test with 2,000 command lines of `train` (one to three
# flags, each with a value drawn from sensible and senseless text) instead of the suite's 60:
# every line runs until training would begin or is refused with a usage error naming a flag.
# Counts per flag go to benchmarks/runs/fuzz/flags.json. Usage: bash benchmarks/fuzz_flags.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/runs/fuzz"
cd "$here/.."
start=$(date +%s)
KERAS_RECAE_FUZZ=long KERAS_RECAE_FUZZ_STATS="$here/runs/fuzz/flags.json" \
  python -m pytest -q -p no:cacheprovider tests/test_flag_fuzz.py
echo "fuzzed in $(( $(date +%s) - start )) s"
