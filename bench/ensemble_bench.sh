#!/usr/bin/env bash
# Dropout vs bagging (Goodfellow et al., Deep Learning, 7.11 and 7.12) on
# Fashion-MNIST, the same MLP (784-512-256-10) and the same training (global
# batch 64, the same epochs and learning rates), on 2 ranks:
#   bagging   configs/fashion-bagging.ini: k members without dropout, one
#             rank each, each on its own bootstrap resample; the ensemble
#             averages their class probabilities;
#   dropout   configs/fashion-dropout.ini: one network with dropout, 2 ranks
#             data-parallel, evaluated with the weight-scaling rule and by
#             Monte Carlo averaging of [eval] mc_samples passes;
#   baseline  one network without dropout on the whole training set, 2 ranks
#             (the bagging config with members = 1 and batch 32 per rank).
# A benchmark, not a test: it prints one table and asserts nothing.
#
#   bash bench/ensemble_bench.sh [EPOCHS] [MEMBERS]
# EPOCHS defaults to the configs' (10), MEMBERS to 2; with MEMBERS > 2 the
# bagging run takes MEMBERS ranks, one per member (oversubscribed beyond the
# cores, so its training time grows with the members it trains).
#
# Costs: parameters stored (k x n for the ensemble) and training time (time
# in training steps, without evaluation; the members train at the same time
# on their own ranks, so the ensemble's time is its slowest member's).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ranks=2
epochs_args=()
[[ -n "${1:-}" ]] && epochs_args=(--set train.epochs="$1")
members=${2:-2}
bag_ranks=$(( members > ranks ? members : ranks ))
(( bag_ranks % members == 0 )) || { echo "ensemble_bench: MEMBERS must divide $bag_ranks" >&2; exit 2; }

# Open MPI as root, one BLAS thread per rank (ranks fill the cores);
# launch/local.sh adds --oversubscribe when ranks exceed the cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

# train NAME RANKS CONFIG ARGS... : one run, metrics in $work/NAME.jsonl, output in $work/NAME.out
train() {
  local name=$1 n=$2 config=$3; shift 3
  echo "running $name ($config, $n ranks) ..." >&2
  if ! bash "$top/launch/local.sh" -n "$n" train "$top/$config" "${epochs_args[@]}" "$@" \
      --set log.progress=none --set log.metrics="$work/$name.jsonl" >"$work/$name.out" 2>&1; then
    cat "$work/$name.out" >&2
    echo "ensemble_bench: the $name run failed" >&2
    exit 1
  fi
}
# a value from the last record of a given type: record TYPE FILE JQ-EXPRESSION
record() { jq -rs "map(select(.type == \"$1\")) | last | $3" "$2"; }
err() { awk -v a="$1" 'BEGIN { printf "%.4f", 1 - a }'; } # error from accuracy

train bagging "$bag_ranks" configs/fashion-bagging.ini --set ensemble.members="$members" \
  --set train.batch_size=$(( 64 * members / bag_ranks ))
train dropout "$ranks" configs/fashion-dropout.ini
train baseline "$ranks" configs/fashion-bagging.ini --set ensemble.members=1 --set train.batch_size=32

bag="$work/bagging.jsonl" drop="$work/dropout.jsonl" base="$work/baseline.jsonl"
mc_samples=$(record run "$drop" '.config' | sed -n 's/^mc_samples *= *\([0-9]*\).*/\1/p')
epochs=$(record run "$work/bagging.member0.jsonl" '.config' | sed -n 's/^epochs *= *\([0-9]*\).*/\1/p')

printf '\n%-24s %7s %11s %9s %13s %12s %12s %9s\n' model members "parameters" "train s" \
  "error (w.s.)" "error (MC)" "mean member" ensemble
printf '%-24s %7s %11s %9.1f %13s %12s %12.4f %9.4f\n' "bagging, no dropout" \
  "$(record ensemble "$bag" .members)" "$(record ensemble "$bag" .parameters_stored)" \
  "$(record ensemble "$bag" .train_s)" - - \
  "$(record ensemble "$bag" .mean_member_error)" "$(record ensemble "$bag" .ensemble_error)"
printf '%-24s %7s %11s %9.1f %13s %12s %12s %9s\n' "dropout" 1 "$(record run "$drop" .parameters)" \
  "$(record final "$drop" .train_s)" "$(err "$(record final "$drop" .test_accuracy)")" \
  "$(err "$(record final "$drop" '.test_heads.output.mc_accuracy')")" - -
printf '%-24s %7s %11s %9.1f %13s %12s %12s %9s\n' "single net, no dropout" 1 \
  "$(record run "$base" .parameters)" "$(record final "$base" .train_s)" \
  "$(err "$(record final "$base" .test_accuracy)")" - - -
echo
echo "test errors on the 10,000 Fashion-MNIST test images; $epochs epochs, global batch 64 everywhere;"
echo "w.s. = weight-scaling rule (dropout off at test time), MC = average of $mc_samples dropout passes;"
echo "bagging: $(record ensemble "$bag" .ranks_per_member) rank per member, members in parallel;" \
  "members' test losses $(record ensemble "$bag" '[.member[].test_loss | . * 10000 | round / 10000] | join(", ")')," \
  "ensemble's $(record ensemble "$bag" '.ensemble_loss * 10000 | round / 10000');" \
  "distinct samples per resample $(record ensemble "$bag" '[.member[].distinct_fraction | . * 1000 | round / 1000] | join(", ")')"
echo "dropout test loss (w.s.) $(record final "$drop" '.test_loss * 10000 | round / 10000')," \
  "single net's $(record final "$base" '.test_loss * 10000 | round / 10000');" \
  "$DPTRAIN, $(nproc) cores, $ranks ranks x 1 BLAS thread ($bag_ranks for bagging)"
