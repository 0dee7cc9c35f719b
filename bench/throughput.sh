#!/usr/bin/env bash
# Training throughput of the default MLP (784-512-256-10, batch 64 per rank,
# float32) on Fashion-MNIST: 1 rank x 1 BLAS thread, 1 rank x 2 threads and
# 2 ranks x 1 thread, and the scaling efficiency from 1 x 1 to 2 x 1 at the
# same batch per rank (2 x 1 samples/s over twice 1 x 1's).
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
    --set log.progress=none --set log.every=1000000 --set log.metrics="$metrics" \
    --set checkpoint.dir= >/dev/null
  sed -n 's/.*"type":"final".*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$metrics"
}


load=$(cut -d' ' -f1-3 /proc/loadavg)
printf '%-22s %18s   %s\n' "configuration" "median samples/s" "all runs"
# the configurations take turns, so that a change of the machine's load
# during the benchmark falls on all of them alike
configs=("1 1" "1 2" "2 1")
declare -A runs_of median_of
for ((i = 0; i < repeats; i++)); do
  for config in "${configs[@]}"; do runs_of[$config]+="$(run_once $config) "; done
done
for config in "${configs[@]}"; do
  read -r ranks threads <<<"$config"
  read -r -a runs <<<"${runs_of[$config]}"
  best=$(printf '%s\n' "${runs[@]}" | median)
  median_of[$ranks.$threads]=$best
  printf '%-22s %18.0f   %s\n' "$ranks rank x $threads thread" "$best" "$(printf '%.0f ' "${runs[@]}")"
done
awk -v one="${median_of[1.1]}" -v two="${median_of[2.1]}" \
  'BEGIN { printf "scaling 1 x 1 -> 2 x 1 at 64 samples per rank: %.1f%% efficiency\n", 100 * two / (2 * one) }'
echo "($steps steps of the default MLP, batch 64 per rank, single precision, $(nproc) cores," \
     "load average before: $load)"
