#!/usr/bin/env bash
# The first-order training path, measured (a benchmark: it asserts nothing).
#   1. samples/s of every optimizer on the default MLP and on the CNN, 2 ranks;
#   2. exposed gradient-communication time per step (what the step waits
#      for), blocking vs bucketed-overlapped reduction, over Open MPI's TCP
#      transport (--mca btl tcp,self) where communication costs enough;
#   3. peak memory and optimizer-state bytes per rank with and without
#      sharded optimizer state (Adam, a 20M-parameter MLP).
#
#   bash bench/optim_bench.sh [MLP_STEPS] [CNN_STEPS]     (defaults 1000 and 100)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mlp_steps=${1:-1000}
cnn_steps=${2:-100}

# run RANKS ARGS... -> the final metrics record on stdout
run() {
  local ranks=$1; shift
  bash "$top/launch/local.sh" -n "$ranks" train "$@" --set train.epochs=1000 --set log.progress=none \
    --set log.every=1000000 --set eval.mc_samples=0 --set log.metrics="$work/m.jsonl" >/dev/null
  grep '"type":"final"' "$work/m.jsonl"
}

lr_of() { case $1 in adagrad|rmsprop|rmsprop_nesterov|adam|adamw) echo 0.001 ;; *) echo 0.05 ;; esac; }

echo "== samples/s per optimizer (2 ranks x 1 BLAS thread, batch 64 per rank)"
printf '%-18s %12s %12s\n' optimizer "MLP" "CNN"
for method in sgd momentum nesterov adagrad rmsprop rmsprop_nesterov adam adamw; do
  lr=$(lr_of "$method")
  mlp=$(run 2 --set optim.method="$method" --set optim.lr="$lr" --set train.max_steps="$mlp_steps" |
        field samples_per_s)
  cnn=$(run 2 "$top/configs/fashion-cnn.ini" --set optim.method="$method" --set optim.lr="$lr" \
        --set train.max_steps="$cnn_steps" | field samples_per_s)
  printf '%-18s %12.0f %12.0f\n' "$method" "$mlp" "$cnn"
done

echo
echo "== exposed gradient communication per step over TCP (OMPI_MCA_btl=tcp,self), 2 ranks"
printf '%-8s %-10s %14s %12s\n' model reduction "wait ms/step" "samples/s"
for model in MLP CNN; do
  for overlap in false true; do
    if [[ $model == MLP ]]; then args=(--set train.max_steps="$mlp_steps")
    else args=("$top/configs/fashion-cnn.ini" --set train.max_steps="$cnn_steps"); fi
    rec=$(OMPI_MCA_btl=tcp,self run 2 "${args[@]}" --set optim.overlap="$overlap")
    printf '%-8s %-10s %14.3f %12.0f\n' "$model" "$([[ $overlap == true ]] && echo overlapped || echo blocking)" \
      "$(field comm_ms_per_step <<<"$rec")" "$(field samples_per_s <<<"$rec")"
  done
done

echo
echo "== memory per rank, Adam, MLP 784-4096-4096-10 (20.0M parameters), 2 ranks"
printf '%-10s %22s %18s\n' state "optimizer state MiB" "peak RSS MiB"
for shard in false true; do
  rec=$(run 2 --set "model.layers=4096 relu, 4096 relu, 10" --set optim.method=adam \
        --set optim.lr=0.001 --set train.max_steps=10 --set optim.shard_state="$shard")
  mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
  printf '%-10s %22s %18s\n' "$([[ $shard == true ]] && echo sharded || echo replicated)" \
    "$(mib "$(field optimizer_state_bytes <<<"$rec")")" "$(mib "$(field peak_rss_bytes <<<"$rec")")"
done
echo "(rank 0's numbers; single precision; $(nproc) cores)"
