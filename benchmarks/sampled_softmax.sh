#!/usr/bin/env bash
# Mult-VAE with the full softmax against a sampled one (1,000 of ML-1M's 3,533 items, uniform or
# popularity proposal): validation NDCG@100 every 5 epochs, ML-1M positives `strong` 600/600,
# one thread. The defaults for 20 epochs, then the 40-trial study's settings to early stopping.
# Then the lazy Adam of row-sparse updates (`sparse_updates=true`) against the dense update at
# the defaults' 20 epochs, at the default learning rate and at larger ones.
# Usage: bash benchmarks/sampled_softmax.sh   (writes benchmarks/runs/sampled-softmax/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$(cd "$here/../.." && pwd)/shared/data/ml-1m/positives_ge4.tsv"
runs="$here/runs/sampled-softmax"
common=(--data "$data" --protocol strong --heldout-users 600 --threads 1 --eval-every 5 --metrics ndcg@100,ndcg@20,recall@20)
train() {
  local out="$runs/$1"; shift
  [ -f "$out/metrics.json" ] || keras-recae train mult-vae "${common[@]}" "$@" --out "$out"
}
train defaults-full --epochs 20
train defaults-uniform1000 --epochs 20 --set sampled_softmax=1000 --set sampled_proposal=uniform
train defaults-popularity1000 --epochs 20 --set sampled_softmax=1000 --set sampled_proposal=popularity
best="$here/studies/ml1m-strong-mult-vae/best.json"
train tuned-popularity1000 --epochs 200 --patience 6 --params "$best" --set sampled_softmax=1000
train tuned-uniform1000 --epochs 200 --patience 6 --params "$best" --set sampled_softmax=1000 --set sampled_proposal=uniform
train defaults-popularity1000-sparse --epochs 20 --set sampled_softmax=1000 --set sparse_updates=true
train defaults-popularity1000-sparse-lr1e-2 --epochs 20 --set sampled_softmax=1000 --set sparse_updates=true --lr 1e-2
train defaults-popularity1000-sparse-lr3e-2 --epochs 20 --set sampled_softmax=1000 --set sparse_updates=true --lr 3e-2
# The study's later winner (trial 45, lr 1.96e-3, batches of 484): the full softmax and a uniform
# sample of 1,000 and 2,000 items, each to early stopping with the same flags.
train tuned45-full --epochs 200 --patience 6 --params "$best"
train tuned45-uniform1000 --epochs 200 --patience 6 --params "$best" --set sampled_softmax=1000 --set sampled_proposal=uniform
train tuned45-uniform2000 --epochs 200 --patience 6 --params "$best" --set sampled_softmax=2000 --set sampled_proposal=uniform
