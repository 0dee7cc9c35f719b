#!/usr/bin/env bash
# End to end for the layer zoo: `dptrain inspect` shows what parameter
# sharing saves; a short multi-task CNN run reports both tasks; dropout runs
# are reproducible for a fixed rank count; Monte Carlo dropout is reported.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi

# ---- inspect: the same 24x24x32 feature map by conv, locally connected, dense
total_params() { awk '$1 == "total" { print $2 }' "$1"; }
for kind in conv local dense; do
  case $kind in
    conv)  layers="conv 32 5, relu, flatten, 10" ;;
    local) layers="local 32 5, relu, flatten, 10" ;;
    dense) layers="18432, relu, 10" ;;
  esac
  "$DPTRAIN" inspect --set "model.layers=$layers" >"$WORK/inspect-$kind" 2>&1; status=$?
  expect_status "inspect $kind" 0 "$WORK/inspect-$kind"
done
cat "$WORK/inspect-conv"
conv=$(total_params "$WORK/inspect-conv"); local_=$(total_params "$WORK/inspect-local")
dense=$(total_params "$WORK/inspect-dense")
# the classifier on top is the same in all three: 18432 x 10 + 10
head=$((18432 * 10 + 10))
want_conv=$((32 * 25 + 32 + head)) want_local=$((576 * (32 * 25 + 32) + head))
want_dense=$((784 * 18432 + 18432 + head))
if [[ "$conv" == "$want_conv" && "$local_" == "$want_local" && "$dense" == "$want_dense" ]]; then
  ok "parameters: conv $conv < locally connected $local_ < dense $dense"
else
  fail "parameters: conv '$conv' local '$local_' dense '$dense'" "$WORK/inspect-local"
fi
expect_grep "inspect shows shapes and FLOPs" '^trunk +conv 32 5 +32x24x24 +832 +[0-9.]+ KiB +921600$' "$WORK/inspect-conv"

# ---- a short multi-task run: both tasks reported, the coarse one learns fast
run_ranks 2 "$WORK/mt" train "$TOP/configs/fashion-multitask.ini" --set train.max_steps=150 \
  --set log.metrics="$WORK/mt.jsonl" --set log.progress=none
cat "$WORK/mt"
expect_status "multi-task CNN, 2 ranks, 150 steps" 0 "$WORK/mt"
item=$(awk '$1 == "item" { a = $6 } END { print a }' "$WORK/mt")
group=$(awk '$1 == "group" { a = $6 } END { print a }' "$WORK/mt")
if awk -v i="$item" -v g="$group" 'BEGIN { exit !(i >= 0.70 && g >= 0.93) }'; then
  ok "multi-task accuracies after 150 steps: item $item, group $group"
else
  fail "multi-task accuracies item '$item' (>= 0.70) group '$group' (>= 0.93)" "$WORK/mt"
fi
expect_grep "metrics file has per-head accuracies" '"test_heads":\{"item":\{"loss":[0-9.e-]+,"accuracy"' "$WORK/mt.jsonl"

# ---- dropout: the same run twice gives the same numbers; MC dropout reported
dropout_run() {
  run_ranks 2 "$1" train --set "model.layers=256 relu, dropout 0.5, 10" --set train.max_steps=60 \
    --set eval.mc_samples=4 --set log.metrics= --set log.progress=none
}
dropout_run "$WORK/d1"; dropout_run "$WORK/d2"
expect_status "dropout run" 0 "$WORK/d2"
grep '^final' "$WORK/d1" | sed 's/ ([0-9]* steps.*//' >"$WORK/f1"
grep '^final' "$WORK/d2" | sed 's/ ([0-9]* steps.*//' >"$WORK/f2"
if [[ -s "$WORK/f1" ]] && cmp -s "$WORK/f1" "$WORK/f2"; then ok "dropout run reproducible: $(cat "$WORK/f1")"
else fail "dropout runs differ" "$WORK/d2"; fi
expect_grep "Monte Carlo dropout accuracy reported" 'Monte Carlo dropout, 4 passes: acc 0\.[0-9]+' "$WORK/d1"
finish
