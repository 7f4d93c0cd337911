#!/usr/bin/env bash
# The property-based tests of one target with many more examples than the suite's, and their
# counts (inputs by outcome) written to benchmarks/runs/fuzz/TARGET.json:
#   readers  rating files of four formats, 3,000 a test (tests/data/test_reader_fuzz.py)
#   flags    `train` command lines, 2,000 (tests/test_flag_fuzz.py)
#   serving  requests in process, over REST and gRPC, 1,500 a test
#            (tests/serving/test_serving_fuzz.py)
# Usage: bash benchmarks/fuzz.sh readers|flags|serving
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
  readers) tests=tests/data/test_reader_fuzz.py ;;
  flags) tests=tests/test_flag_fuzz.py ;;
  serving) tests=tests/serving/test_serving_fuzz.py ;;
  *) echo "usage: bash benchmarks/fuzz.sh readers|flags|serving" >&2; exit 2 ;;
esac
mkdir -p "$here/runs/fuzz"
cd "$here/.."
start=$(date +%s)
KERAS_RECAE_FUZZ=long KERAS_RECAE_FUZZ_STATS="$here/runs/fuzz/$1.json" \
  python -m pytest -q -p no:cacheprovider "$tests"
echo "fuzzed in $(( $(date +%s) - start )) s"
