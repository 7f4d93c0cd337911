#!/usr/bin/env bash
# Reading a large given split (benchmarks/streaming_read.py, one process per read, one at a
# time): synthetic Parquet splits of 10M and 100M interactions (1M users, 1M items; written
# once to SCRATCH, default ~/keras-recae-bench/streaming), each read streamed into CSR, as
# whole frames (the path it replaced) and as worker 0 of 2 (--shard-users); then the train file
# alone under --protocol strong, streamed and as a whole frame; then a split written with
# timestamps under random, temporal and leave-last-out. A finished read (its JSON) is
# skipped. Usage: bash benchmarks/streaming_read.sh
#   (writes benchmarks/runs/streaming-read/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="$here/runs/streaming-read"
scratch="${SCRATCH:-$HOME/keras-recae-bench/streaming}"
mkdir -p "$runs"
for size in 10000000 100000000; do
  data="$scratch/$size"
  [ -f "$data/test.parquet" ] || python "$here/streaming_read.py" write "$data" \
    --users 1000000 --items 1000000 --interactions "$size"
  for mode in streamed frames shard0of2 strong-streamed strong-frames; do
    out="$runs/$size-$mode.json"
    [ -f "$out" ] || python "$here/streaming_read.py" read "$data" --mode "$mode" --out "$out"
  done
done
# The 100M split as CSV files (header `user,item`), read streamed and as whole frames.
data="$scratch/100000000"
[ -f "$data/test.csv" ] || python "$here/streaming_read.py" write-csv "$data"
for mode in streamed frames; do
  out="$runs/100000000-csv-$mode.json"
  [ -f "$out" ] || python "$here/streaming_read.py" read "$data" --mode "$mode" --files csv --out "$out"
done
# The train file of a split written with timestamps, under random, temporal and leave-last-out:
# streamed (20 bytes a line with the timestamps) and as a whole frame.
for size in 10000000 100000000; do
  data="$scratch/timed-$size"
  [ -f "$data/test.parquet" ] || python "$here/streaming_read.py" write "$data" \
    --users 1000000 --items 1000000 --interactions "$size" --timestamps
  for protocol in random temporal leave-last-out; do
    for way in streamed frames; do
      out="$runs/timed-$size-$protocol-$way.json"
      [ -f "$out" ] || python "$here/streaming_read.py" read "$data" --mode "$protocol-$way" --out "$out"
    done
  done
done
