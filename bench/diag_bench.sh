#!/usr/bin/env bash
# What the diagnostics cost: the default MLP (784-512-256-10, batch 64 per
# rank, float32) on 2 ranks x 1 thread, trained STEPS steps
#   off          no [diagnostics]
#   noise only   the gradient noise scale every step (curvature once, at the end)
#   every 500    + g'Hg and 20 Lanczos products every 500 steps
#   every 100    the same every 100 steps
# A benchmark, not a test: it reports numbers and asserts nothing.
#
#   bash bench/diag_bench.sh [STEPS] [REPEATS]     (defaults 2000 and 3)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
steps=${1:-2000}
repeats=${2:-3}

run_once() { # extra --set arguments... -> samples/s
  local metrics="$work/m.jsonl"
  bash "$top/launch/local.sh" -n 2 train --set train.epochs=1000 --set train.max_steps="$steps" \
    --set log.progress=none --set log.every=1000000 --set log.metrics="$metrics" \
    --set diagnostics.file="$work/d.jsonl" "$@" >"$work/out"
  grep '"type":"final"' "$metrics" | field samples_per_s
}

export OPENBLAS_NUM_THREADS=1
printf '%-14s %18s %10s   %s\n' "diagnostics" "median samples/s" "vs off" "all runs"
base=
for mode in off noise every500 every100; do
  case $mode in
    off) args=() ;;
    noise) args=(--set diagnostics.every="$steps" --set diagnostics.lanczos_steps=0) ;;
    every500) args=(--set diagnostics.every=500 --set diagnostics.lanczos_steps=20) ;;
    every100) args=(--set diagnostics.every=100 --set diagnostics.lanczos_steps=20) ;;
  esac
  runs=()
  for ((i = 0; i < repeats; i++)); do runs+=("$(run_once "${args[@]}")"); done
  med=$(printf '%s\n' "${runs[@]}" | median)
  [[ -z "$base" ]] && base=$med
  printf '%-14s %18.0f %9.1f%%   %s\n' "$mode" "$med" "$(echo "100 * $med / $base" | bc -l)" \
    "$(printf '%.0f ' "${runs[@]}")"
done
echo "($steps steps, 2 ranks x 1 thread, single precision, $(nproc) cores; last run's summary:)"
sed -n '/^diagnostics summary/,$p' "$work/out"
