#!/usr/bin/env bash
# Training throughput of configs/fashion-cnn.ini at 1 and 2 ranks (one BLAS
# thread per rank, and 1 rank x 2 threads), and the share of CPU time spent
# inside GEMM (OpenBLAS), measured by sampling with `perf record`.
# A benchmark, not a test: it reports numbers and asserts nothing.
#
#   bash bench/cnn_throughput.sh [STEPS] [REPEATS]     (defaults 300 and 3)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
steps=${1:-300}
repeats=${2:-3}
common=(train "$top/configs/fashion-cnn.ini" --set train.epochs=1000 --set train.max_steps="$steps"
        --set eval.mc_samples=0 --set log.progress=none --set log.every=1000000)

run_once() { # ranks threads -> samples/s
  local metrics="$work/m.jsonl"
  OPENBLAS_NUM_THREADS=$2 bash "$top/launch/local.sh" -n "$1" "${common[@]}" \
    --set log.metrics="$metrics" >/dev/null
  sed -n 's/.*"type":"final".*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$metrics"
}


printf '%-22s %18s   %s\n' "configuration" "median samples/s" "all runs"
for config in "1 1" "1 2" "2 1"; do
  read -r ranks threads <<<"$config"
  runs=()
  for ((i = 0; i < repeats; i++)); do runs+=("$(run_once "$ranks" "$threads")"); done
  printf '%-22s %18.0f   %s\n' "$ranks rank x $threads thread" "$(printf '%s\n' "${runs[@]}" | median)" \
    "$(printf '%.0f ' "${runs[@]}")"
done

# GEMM share: CPU-clock samples of one rank, 1 thread. Data loading
# (gzip inflate, in libz) is left out of the total: it is not step time.
if command -v perf >/dev/null 2>&1; then
  OPENBLAS_NUM_THREADS=1 perf record -q -F 499 -o "$work/perf.data" "$DPTRAIN" "${common[@]}" \
    --set log.metrics= >/dev/null 2>&1 || true
  perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null |
    awk '/%/ && $1 ~ /%$/ { p = $1; sub("%", "", p); total += p;
                            if ($2 ~ /openblas/) gemm += p; if ($2 ~ /libz/) load += p }
         END { if (total - load > 0)
                 printf "GEMM (OpenBLAS) share of step time: %.1f%% (of %.1f%% non-loading samples)\n",
                        100 * gemm / (total - load), total - load }'
else
  echo "perf not found: GEMM share not measured (apt-get install linux-perf)"
fi
echo "($steps steps of configs/fashion-cnn.ini, batch 64 per rank, single precision, $(nproc) cores)"
