#!/usr/bin/env bash
# Mult-VAE on Gowalla (`given`), one thread: float32 against mixed_bfloat16 for the same 10
# epochs, validation Recall@20 / NDCG@20 after epochs 5 and 10, with the default encoder
# (hidden_dims [200]) and with the paper's (600-200). CPU seconds and peak RSS of each whole
# command (GNU time) go to cpu.txt beside the run's metrics.json/history.csv.
# Usage: bash benchmarks/precision.sh   (writes benchmarks/runs/precision/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$(cd "$here/../.." && pwd)/shared/data/gowalla"
runs="$here/runs/precision"
mkdir -p "$runs"
for dims in default 600-200; do
  for precision in float32 mixed_bfloat16; do
    out="$runs/gowalla-mult-vae-$precision" settings=()
    if [ "$dims" != default ]; then
      out="$runs/gowalla-mult-vae-$dims-$precision" settings=(--set "hidden_dims=[${dims/-/,}]")
    fi
    [ -f "$out/metrics.json" ] && continue
    /usr/bin/time -f "user_seconds %U\nsystem_seconds %S\nwall_seconds %e\nmax_rss_kb %M" \
      -o "$runs/$precision.cpu.txt" \
      keras-recae train mult-vae --data "$data" --threads 1 --epochs 10 --eval-every 5 \
        --metrics recall@20,ndcg@20 --monitor ndcg@20 --precision "$precision" \
        "${settings[@]}" --out "$out"
    mv "$runs/$precision.cpu.txt" "$out/cpu.txt"
  done
done
