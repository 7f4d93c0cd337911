#!/usr/bin/env bash
# Mult-VAE at scale on synthetic data (benchmarks/scale.py, one thread, one run at a time):
# the MovieLens-20M size, the scale issue's acceptance run (200k users, 1M items, 10M
# interactions, sampled softmax of 4,096, [200, 64]) with row-sparse and with dense updates,
# one million users and items with 100M interactions, and a grid of three sizes on each axis
# around 100k users x 100k items x 5M interactions. A finished run (its JSON) is skipped, so
# the script resumes. Usage: bash benchmarks/scale.sh   (writes benchmarks/runs/scale/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="$here/runs/scale"
mkdir -p "$runs"
run() {
  local name=$1; shift
  [ -f "$runs/$name.json" ] || python "$here/scale.py" "$@" --out "$runs/$name.json"
}
sampled=(--sampled 4096 --hidden 200,64 --sparse-updates)
run ml20m-size-full --users 136000 --items 20000 --interactions 10000000 --hidden 200 --export
run 200k-1m-10m-sampled4096-sparse --users 200000 --items 1000000 --interactions 10000000 "${sampled[@]}"
run 200k-1m-10m-sampled4096-dense --users 200000 --items 1000000 --interactions 10000000 --sampled 4096 --hidden 200,64
run 1m-1m-100m-sampled4096-sparse --users 1000000 --items 1000000 --interactions 100000000 "${sampled[@]}" --export
# How each cost grows: one axis at a time around the centre.
for size in "50000 100000 5000000" "100000 100000 5000000" "200000 100000 5000000" \
            "100000 30000 5000000" "100000 300000 5000000" \
            "100000 100000 2500000" "100000 100000 10000000"; do
  read -r users items interactions <<< "$size"
  run "grid-${users}u-${items}i-${interactions}n" --users "$users" --items "$items" \
    --interactions "$interactions" --eval-users 5000 "${sampled[@]}"
done
# The data phase alone of the largest run, after `strong` of synthetic data stopped building a
# frame of the pairs (2026-12-07, evening).
run 1m-1m-100m-data --users 1000000 --items 1000000 --interactions 100000000 --data-only
