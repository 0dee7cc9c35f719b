#!/usr/bin/env bash
# How close `dptrain inspect --ranks N` comes to a real rank's peak memory:
# for a few models, the estimate of dptrain's own arrays next to the peak
# resident set (VmHWM) of each rank of a short 2-rank run. The difference
# is what MPI, OpenBLAS's GEMM buffers and the C library add.
#
#   bash bench/memory_bench.sh            # single precision
#   bench_precision=double bash bench/memory_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
# the peak VmHWM of one rank, sampled while it runs (the rank is the child)
cat >hwm.sh <<'SH'
"$@" >/dev/null 2>&1 & pid=$!; peak=0
while kill -0 $pid 2>/dev/null; do
  v=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null); [[ -n $v ]] && peak=$v; sleep 0.02
done
wait $pid; echo "$peak"
SH
ranks=2
printf '%-44s %12s %12s %10s\n' "model" "estimate MiB" "peak MiB" "extra MiB"
for model in "512 relu, 256 relu, 10|nesterov|false" "2048 relu, 2048 relu, 10|adam|false" \
             "2048 relu, 2048 relu, 10|adam|true" "conv 32 3 pad=same, relu, maxpool 2, conv 64 3 pad=same, relu, maxpool 2, 128 relu, 10|adam|false"; do
  IFS='|' read -r layers method shard <<<"$model"
  set_args=(--set "model.layers=$layers" --set optim.method=$method --set optim.shard_state=$shard)
  estimate=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$DPTRAIN" inspect --ranks $ranks \
             "${set_args[@]}" | sed -n 's/^  in all *\([0-9.]*\) \([KMG]\)iB$/\1 \2/p')
  estimate=$(awk -v v="${estimate% *}" -v u="${estimate#* }" 'BEGIN { f = u == "K" ? 1/1024 : u == "G" ? 1024 : 1; printf "%.1f", v * f }')
  peaks=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 timeout -k 10 600 \
          mpirun -n $ranks --oversubscribe -x OPENBLAS_NUM_THREADS bash hwm.sh "$DPTRAIN" train "${set_args[@]}" \
          --set train.max_steps=60 --set log.progress=none --set log.metrics= --set checkpoint.dir= 2>/dev/null | sort -n | tail -1)
  peak=$(awk -v k="$peaks" 'BEGIN { printf "%.1f", k / 1024 }')
  suffix=""; [[ $shard == true ]] && suffix=", sharded"
  label="$layers ($method$suffix)"
  printf '%-44.44s %12s %12s %10s\n' "$label" "$estimate" "$peak" "$(awk -v a="$peak" -v b="$estimate" 'BEGIN { printf "%+.1f", a - b }')"
done
