#!/usr/bin/env bash
# Training throughput of the default MLP (784-512-256-10, batch 64 per rank,
# float32) on Fashion-MNIST: 1 rank x 2 BLAS threads and 2 ranks x 1 thread.
# A benchmark, not a test: it reports numbers and asserts nothing.
#
#   bash bench/throughput.sh [STEPS] [REPEATS]     (defaults 2000 and 5)
#
# Each run trains STEPS steps (no evaluation in the timed part) and reads the
# training samples/s from the run's final metrics record; the median of
# REPEATS runs is reported.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
steps=${1:-2000}
repeats=${2:-5}

run_once() { # ranks threads -> samples/s
  local metrics="$work/m.jsonl"
  OPENBLAS_NUM_THREADS=$2 bash "$top/launch/local.sh" -n "$1" train \
    --set train.epochs=1000 --set train.max_steps="$steps" --set train.batch_size=64 \
    --set log.progress=none --set log.every=1000000 --set log.metrics="$metrics" >/dev/null
  sed -n 's/.*"type":"final".*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$metrics"
}


printf '%-22s %18s   %s\n' "configuration" "median samples/s" "all runs"
for config in "1 2" "2 1"; do
  read -r ranks threads <<<"$config"
  runs=()
  for ((i = 0; i < repeats; i++)); do runs+=("$(run_once "$ranks" "$threads")"); done
  best=$(printf '%s\n' "${runs[@]}" | median)
  printf '%-22s %18.0f   %s\n' "$ranks rank x $threads thread" "$best" "$(printf '%.0f ' "${runs[@]}")"
done
echo "($steps steps of the default MLP, batch 64 per rank, single precision, $(nproc) cores)"
