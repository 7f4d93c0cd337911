#!/usr/bin/env bash
# Gowalla (LightGCN split), protocol `given`: Recall@20 / NDCG@20 over all items not in the
# user's train line. EASE at lambda = 80 on the full train lines; every other model (mult-vae,
# mult-dae, rec-vae, cdae, autoencoder, denoising-autoencoder) chooses its epoch on 10% of each
# user's train items, then retrains on all train lines (--retrain).
# Usage: bash benchmarks/gowalla.sh [RUNS_DIR] [MODEL ...]   (default: $HOME/keras-recae-bench)
# A run that is stopped resumes from its last finished epoch when run again.
set -euo pipefail
data="$(cd "$(dirname "$0")/../.." && pwd)/shared/data/gowalla"
runs="${1:-$HOME/keras-recae-bench}"
shift || true
models=("${@:-ease mult-vae mult-dae}")
threads="${THREADS:-2}"
metrics="recall@20,ndcg@20,precision@20,truncated_recall@20"
common=(--data "$data" --threads "$threads" --metrics "$metrics")
for model in ${models[*]}; do
  # A finished run (its metrics.json exists) is skipped; an interrupted one resumes.
  [ -f "$runs/gowalla-$model/metrics.json" ] && continue
  if [ "$model" = ease ]; then
    keras-recae train ease "${common[@]}" --set l2=80 --out "$runs/gowalla-ease"
    continue
  fi
  # 60 batches an epoch: anneal over 20k steps so that beta reaches its cap of 0.2.
  # RecVAE: the paper's learning rate; an epoch is 3 encoder passes and 1 decoder pass.
  # CDAE: 1e-2, as on ML-1M (RESULTS.md); with its user nodes, one per Gowalla user.
  extra=()
  case "$model" in
    mult-vae) extra=(--set total_anneal_steps=20000) ;;
    rec-vae) extra=(--lr 5e-4) ;;
    cdae) extra=(--lr 1e-2) ;;
  esac
  keras-recae train "$model" "${common[@]}" "${extra[@]}" --epochs "${EPOCHS:-100}" \
    --eval-every 5 --monitor ndcg@20 --patience 4 --retrain --out "$runs/gowalla-$model"
done
