#!/usr/bin/env bash
# Where the training step spends its time: the share of CPU samples inside
# OpenBLAS (GEMM, and the rest of BLAS) against everything else, per
# function, over the timed steps only. bench/hotpath.c runs the steps (data
# loaded, trainer built and WARMUP steps taken before the clock starts; no
# evaluation, reports or checkpoints), each rank under its own
# `perf record -k CLOCK_MONOTONIC`, and `perf report --time` keeps the
# samples between the timestamps hotpath prints. Open MPI polls while it
# waits, so a rank's waiting shows as samples in MPI (and the kernel's
# process_vm_readv copies): communication counts as step time, as it should.
# A benchmark, not a test: it reports numbers and asserts nothing.
#
#   bash bench/blas_share.sh [CONFIG|-] [STEPS] [RANKS...] [-- section.key=value ...]
#     defaults: - (the default MLP), 2000 steps, ranks 1 and 2 (1 BLAS thread each)
#   e.g. bash bench/blas_share.sh configs/fashion-cnn.ini 200 2
#
# Prints per configuration: samples/s of the sampled run, the shares
# (GEMM, other BLAS, outside BLAS; mean over ranks), the outside-BLAS time
# by group and the 15 largest functions outside BLAS.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
config=${1:--}
steps=${2:-2000}
shift $(( $# > 2 ? 2 : $# ))
rank_list=()
while (( $# )) && [[ "$1" != "--" ]]; do rank_list+=("$1"); shift; done
(( $# )) && shift
(( ${#rank_list[@]} )) || rank_list=(1 2)
[[ "$config" == "-" || "$config" = /* ]] || config="$PWD/$config"
command -v perf >/dev/null || { echo "blas_share: perf not found (apt-get install linux-perf)" >&2; exit 2; }

mpicc -O2 -I"$top/include" -I"$build/generated/include" "$top/bench/hotpath.c" "$build/libdptrain.a" \
  $(pkg-config --libs openblas scalapack-openmpi zlib inih libcjson) -lpthread -lm -o "$work/hotpath"
cat >"$work/perf-rank.sh" <<'EOF'
#!/usr/bin/env bash
exec perf record -q -k CLOCK_MONOTONIC -e cpu-clock -F 4999 -o "$PERF_OUT.$OMPI_COMM_WORLD_RANK" -- "$@"
EOF
chmod +x "$work/perf-rank.sh"

# dso, symbol and percentage of every sample group of one rank's window
samples() { # perf.data begin end
  perf report -i "$1" --time "$2,$3" --no-children --sort dso,sym --stdio -F overhead,dso,sym \
    --percent-limit 0 2>/dev/null | awk '$1 ~ /%$/ { p = $1; sub("%", "", p); sym = $4;
      for (i = 5; i <= NF; i++) sym = sym " " $i; print p "\t" $2 "\t" sym }'
}

# Groups outside BLAS: by symbol for our code, by library for the rest.
classify='
function group(dso, sym) {
  sub(/\.(avx2|default)$/, "", sym); # the instruction-set copies of src/core/clones.h
  if (dso ~ /openblas/) return sym ~ /gemm/ ? "BLAS: GEMM" : "BLAS: other (" sym ")";
  if (sym ~ /^dpt_rule_|^dpt_optimizer/) return "optimizer update";
  if (sym ~ /^dpt_update_apply|clip|agree|sumsq|^dpt_dot_acc/) return "update: scale, norm, checks";
  if (sym ~ /activation|relu|bias/) return "activations, bias";
  if (sym ~ /loss|softmax|exp|log/ || dso ~ /libm[.-]/) return "loss (softmax, exp, log)";
  if (sym ~ /gather|^row_(u8|f32|f64)/) return "batch gather (uint8 -> real)";
  if (sym ~ /im2col|col2im/) return "im2col / col2im";
  if (sym ~ /pool/) return "pooling";
  if (sym ~ /batchnorm/) return "batch norm";
  if (sym ~ /dropout|philox|rng/) return "dropout mask";
  if (sym ~ /dense|conv/) return "dense/conv glue";
  if (dso ~ /libmpi|open-pal|open-rte|mca_|libucx|libucs|libuct|libucp/ || dso ~ /kernel/)
    return "MPI and the kernel (copies, polling)";
  if (sym ~ /mem(set|move|cpy)/) return "memset / memcpy";
  return "other";
}'

for ranks in "${rank_list[@]}"; do
  out="$work/perf-$ranks"
  loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
  PERF_OUT="$out" OPENBLAS_NUM_THREADS=1 DPTRAIN="$work/perf-rank.sh" \
    bash "$top/launch/local.sh" -n "$ranks" "$work/hotpath" "$config" "$steps" 20 "$@" >"$work/run.txt"
  for ((r = 0; r < ranks; r++)); do
    read -r begin end < <(sed -n "s/^window rank=$r begin=\([0-9.]*\) end=\([0-9.]*\)/\1 \2/p" "$work/run.txt")
    samples "$out.$r" "$begin" "$end"
  done >"$work/samples.txt"
  echo "== $ranks rank(s) x 1 thread, ${config##*/}, $steps steps (load average before: $loadavg)"
  sed -n 's/^samples_per_s=\([0-9.]*\) ms_per_step=\([0-9.]*\) comm_ms_per_step=\([0-9.]*\).*/   \1 samples\/s, \2 ms per step, reduction (rank 0) \3 ms per step/p' "$work/run.txt"
  awk -F'\t' -v ranks="$ranks" "$classify"'
    { g = group($2, $3); share[g] += $1 / ranks; fn[$2 "\t" $3] += $1 / ranks; total += $1 / ranks
      if ($2 ~ /openblas/) blas += $1 / ranks; if ($2 ~ /openblas/ && $3 ~ /gemm/) gemm += $1 / ranks }
    END {
      printf "   GEMM %.1f%%, other BLAS %.1f%%, outside BLAS %.1f%% (of %.1f%% of samples in the window)\n",
             100 * gemm / total, 100 * (blas - gemm) / total, 100 * (total - blas) / total, total
      print "   outside BLAS by group (% of step time):"
      for (g in share) if (g !~ /^BLAS: GEMM/) printf "     %6.2f%%  %s\n", 100 * share[g] / total, g | "sort -rn"
      close("sort -rn")
      print "   largest functions outside BLAS:"
      for (f in fn) { split(f, a, "\t"); if (a[1] !~ /openblas/) printf "     %6.2f%%  %s  (%s)\n", 100 * fn[f] / total, a[2], a[1] | "sort -rn | head -15" }
      close("sort -rn | head -15")
    }' "$work/samples.txt"
done
echo "(perf cpu-clock samples at 4999 Hz per rank; shares are of the samples inside each rank's timed window, averaged over ranks; $(nproc) cores)"
