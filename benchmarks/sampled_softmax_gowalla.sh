#!/usr/bin/env bash
# Mult-VAE on Gowalla (`given`, 40,981 items) with the full softmax against 4,096 sampled items
# (popularity proposal), dense and row-sparse (lazy Adam) updates, the defaults for 10 epochs,
# validation Recall@20 / NDCG@20 every 5 epochs, one thread. The full-softmax run is
# benchmarks/runs/precision/gowalla-mult-vae-float32 (the same command without --set).
# Then the same at the Gowalla Mult-VAE study's settings (benchmarks/studies/gowalla-mult-vae,
# its selection: up to 30 epochs, validation every 2, patience 3): full softmax against 4,096
# sampled items, dense and row-sparse updates; the validation figure of each run's chosen epoch
# is the comparison (its test figure is computed once, at the end, as in every run).
# Usage: bash benchmarks/sampled_softmax_gowalla.sh   (writes benchmarks/runs/sampled-softmax/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$(cd "$here/../.." && pwd)/shared/data/gowalla"
runs="$here/runs/sampled-softmax"
common=(--data "$data" --threads 1 --epochs 10 --eval-every 5 --metrics recall@20,ndcg@20 --monitor ndcg@20)
train() {
  local out="$runs/$1"; shift
  [ -f "$out/metrics.json" ] || keras-recae train mult-vae "${common[@]}" "$@" --out "$out"
}
train gowalla-popularity4096 --set sampled_softmax=4096
train gowalla-popularity4096-sparse-lr1e-2 --set sampled_softmax=4096 --set sparse_updates=true --lr 1e-2
train gowalla-popularity4096-sparse --set sampled_softmax=4096 --set sparse_updates=true
tuned=(--params "$here/studies/gowalla-mult-vae/best.json" --data "$data" --threads 1 --epochs 30
  --eval-every 2 --patience 3 --metrics recall@20,ndcg@20 --monitor ndcg@20)
train_tuned() {
  local out="$runs/$1"; shift
  [ -f "$out/metrics.json" ] || keras-recae train mult-vae "${tuned[@]}" "$@" --out "$out"
}
train_tuned gowalla-tuned-full
train_tuned gowalla-tuned-popularity4096 --set sampled_softmax=4096
train_tuned gowalla-tuned-popularity4096-sparse --set sampled_softmax=4096 --set sparse_updates=true
# The sampled model at a rate of its own (twice the study's), row-sparse updates.
train_tuned gowalla-tuned-popularity4096-sparse-lr4e-3 --set sampled_softmax=4096 \
  --set sparse_updates=true --lr 4e-3
# At the study's later choice (trial 26), up to 50 epochs (70 for the last): popularity and
# uniform proposals of 4,096 and 8,192 items, and a faster rate for the sampled model.
tuned26=(--params "$here/studies/gowalla-mult-vae/best.json" --data "$data" --threads 1
  --eval-every 2 --patience 3 --metrics recall@20,ndcg@20 --monitor ndcg@20)
train_tuned26() {
  local out="$runs/$1"; shift
  [ -f "$out/metrics.json" ] || keras-recae train mult-vae "${tuned26[@]}" "$@" --out "$out"
}
train_tuned26 gowalla-tuned26-popularity4096 --epochs 50 --set sampled_softmax=4096
train_tuned26 gowalla-tuned26-popularity8192 --epochs 50 --set sampled_softmax=8192
train_tuned26 gowalla-tuned26-popularity4096-lr1.5e-3 --epochs 50 --set sampled_softmax=4096 --lr 1.5e-3
train_tuned26 gowalla-tuned26-uniform4096 --epochs 50 --set sampled_softmax=4096 --set sampled_proposal=uniform
train_tuned26 gowalla-tuned26-uniform8192 --epochs 70 --set sampled_softmax=8192 --set sampled_proposal=uniform
