#!/usr/bin/env bash
# 2-rank throughput against where the two CPUs sit: before and after each
# run of bench/hotpath.c (RUNS runs of STEPS training steps, 2 ranks x 1
# thread, the default MLP unless CONFIG), bench/core_latency.c times a cache
# line's round trip between CPUs 0 and 1 (about 60-80 ns on one L3 of the
# host, over 300 ns across two). A benchmark: it prints, asserts nothing.
#
#   bash bench/placement.sh [RUNS] [STEPS] [CONFIG|-] [section.key=value ...]
#                                                     defaults: 12 3000 -
#
# One line a run: round trip before / after (ns), samples/s, reduction ms
# per step, and the share of steps in which the ranks evicted what they
# read from each other's part of the shared window (dpt_evict_tuner);
# then the runs grouped by placement (both short, both long, mixed).
# optim.shared_window=false times the exchange by messages instead.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
runs=${1:-12} steps=${2:-3000} config=${3:--}
overrides=("${@:4}")
[[ "$config" == "-" || "$config" = /* ]] || config="$PWD/$config"
mpicc -O2 -I"$top/include" -I"$build/generated/include" "$top/bench/hotpath.c" "$build/libdptrain.a" \
  $(pkg-config --libs openblas scalapack-openmpi zlib inih libcjson) -lpthread -lm -o "$work/hotpath"
cc -O2 -pthread "$top/bench/core_latency.c" -o "$work/core_latency"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
c2c() { "$work/core_latency" 0 1 100000 | sed -n 's/.*"c2c_ns":\([0-9]*\).*/\1/p'; }
for ((i = 1; i <= runs; i++)); do
  exec 9>>/tmp/dpt-bench.lock
  flock 9
  before=$(c2c)
  out=$(mpirun -n 2 --bind-to core "$work/hotpath" "$config" "$steps" 50 "${overrides[@]}" 2>&1 9>&- | grep samples_per_s)
  after=$(c2c)
  flock -u 9
  exec 9>&-
  rate=$(sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' <<<"$out")
  comm=$(sed -n 's/.*comm_ms_per_step=\([0-9.]*\).*/\1/p' <<<"$out")
  evict=$(sed -n 's/.*evict_share=\([0-9.]*\).*/\1/p' <<<"$out")
  printf 'run %2d: CPU 0-1 %4s / %4s ns  %9.0f samples/s  reduction %s ms/step  evicting %s\n' "$i" "$before" \
    "$after" "$rate" "$comm" "$evict"
  echo "$before $after $rate" >>"$work/runs.txt"
done
awk '{ k = ($1 < 150 && $2 < 150) ? "both short (one L3)" : ($1 >= 150 && $2 >= 150) ? "both long (two L3s)" : "mixed (moved)"
       if (!(k in n) || $3 < lo[k]) lo[k] = $3
       if (!(k in n) || $3 > hi[k]) hi[k] = $3
       n[k]++ }
     END { for (k in n) printf "%-22s %2d runs, %.0f-%.0f samples/s\n", k ":", n[k], lo[k], hi[k] }' "$work/runs.txt"
