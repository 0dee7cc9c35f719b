#!/usr/bin/env bash
# End to end on real data: 2 ranks, 1 epoch of the default MLP on
# Fashion-MNIST must reach test accuracy >= 0.83, with progress lines on
# stderr and a JSON-lines metrics file.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi

metrics="$WORK/metrics.jsonl"
run_ranks 2 "$WORK/out" train --set train.epochs=1 --set log.every=100 --set log.progress=lines \
  --set log.metrics="$metrics"
cat "$WORK/out"
expect_status "1 epoch on Fashion-MNIST with 2 ranks" 0 "$WORK/out"
expect_grep "progress line with loss, lr, samples/s and ETA" \
  '^epoch 1/1 step 100/469 .*loss [0-9.]+ acc [0-9.]+ lr [0-9.e-]+ [0-9]+ samples/s ETA' "$WORK/out"

accuracy=$(sed -n 's/^final test accuracy \([0-9.]*\).*/\1/p' "$WORK/out")
if [[ -n "$accuracy" ]] && awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.83) }'; then
  ok "test accuracy $accuracy >= 0.83"
else
  fail "test accuracy '${accuracy}' below 0.83" "$WORK/out"
fi

expect_count "metrics: one run record" '^\{"type":"run"' "$metrics" 1
expect_count "metrics: a step record every 100 steps (+ the last)" '^\{"type":"step"' "$metrics" 5
expect_count "metrics: one epoch record" '^\{"type":"epoch".*"test_accuracy":' "$metrics" 1
final=$(sed -n 's/^{"type":"final","test_accuracy":\([0-9.e-]*\),.*/\1/p' "$metrics")
if [[ -n "$final" ]] && awk -v a="$accuracy" -v b="$final" 'BEGIN { d = a - b; exit !(d < 6e-5 && d > -6e-5) }'; then
  ok "metrics: final record has the printed accuracy ($final)"
else
  fail "metrics: final record accuracy '$final' differs from '$accuracy'" "$metrics"
fi
finish
