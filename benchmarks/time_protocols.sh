#!/usr/bin/env bash
# The time-based protocols on MovieLens: `temporal` (one global cut, 80% of the interactions
# before it; validation = the latest 10% of the train part) and `leave-last-out` (each
# user's last interaction as test, the one before as validation), implicit (ratings > 3.5).
# EASE: l2 chosen by a 12-trial study on the validation part, then fitted on all train lines.
# Mult-VAE: the settings of the ML-1M `strong` study (benchmarks/studies/ml1m-strong-mult-vae),
# its epoch chosen on the validation part. Data: ML-100K `u.data`, and the ML-1M ratings of
# users 1-2999 (the part of ML-1M with timestamps in ../shared/data).
# Usage: bash benchmarks/time_protocols.sh   (writes benchmarks/runs/time-protocols/, resumes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="$(cd "$here/../.." && pwd)/shared/data"
runs="$here/runs/time-protocols"
studies="$here/studies/time-protocols"
metrics="recall@20,ndcg@20,hit_rate@10,ndcg@10,mrr@10,coverage@10,novelty@10"
declare -A data=([ml100k]="$shared/ml-100k/u.data" [ml1m-users1-2999]="$shared/ml-1m/ratings_users0001-2999.dat")
for name in ml100k ml1m-users1-2999; do
  for protocol in temporal leave-last-out; do
    monitor=ndcg@20
    [ "$protocol" = leave-last-out ] && monitor=ndcg@10
    common=(--data "${data[$name]}" --protocol "$protocol" --threads 1 --metrics "$metrics" --monitor "$monitor")
    study="$studies/$name-$protocol-ease"
    keras-recae tune ease "${common[@]}" --trials 12 --seed 0 --study "$study" --space l2=1:5000:log --no-figures
    out="$runs/$name-$protocol-ease"
    [ -f "$out/metrics.json" ] || keras-recae train ease "${common[@]}" --params "$study/best.json" --out "$out"
    out="$runs/$name-$protocol-mult-vae"
    [ -f "$out/metrics.json" ] || keras-recae train mult-vae "${common[@]}" \
      --params "$here/studies/ml1m-strong-mult-vae/best.json" --epochs 200 --eval-every 5 --patience 6 --out "$out"
  done
done
