#!/usr/bin/env bash
# End to end for the second-order path: softmax regression on the full
# Fashion-MNIST training set with lbfgs and newton_cg on 2 ranks; every
# iteration is logged, f decreases, the test accuracy is reported.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi

# first_f / last_f OUT: f of the first and the last logged iteration
first_f() { sed -n 's/^iter 1: f \([0-9.e+-]*\).*/\1/p' "$1"; }
last_f() { sed -n 's/^iter [0-9]*: f \([0-9.e+-]*\).*/\1/p' "$1" | tail -n 1; }

run_ranks 2 "$WORK/lbfgs" train "$TOP/configs/fashion-softmax-lbfgs.ini" --set optim.max_iter=30 \
  --set log.metrics="$WORK/lbfgs.jsonl" --set log.progress=lines
expect_status "lbfgs, 30 iterations, 2 ranks" 0 "$WORK/lbfgs"
expect_count "every iteration logged" '^iter [0-9]+: f [0-9.e+-]+ \|g\|inf' "$WORK/lbfgs" 30
expect_grep "stopping rule reported" '^solver stopped \(iteration limit\) after 30 iterations' "$WORK/lbfgs"
expect_count "iteration records in the metrics" '^\{"type":"iter"' "$WORK/lbfgs.jsonl" 30
f1=$(first_f "$WORK/lbfgs") f30=$(last_f "$WORK/lbfgs")
acc=$(sed -n 's/^final test accuracy \([0-9.]*\).*/\1/p' "$WORK/lbfgs")
if awk -v a="$f1" -v b="$f30" -v c="$acc" 'BEGIN { exit !(b < a && c >= 0.80) }'; then
  ok "lbfgs: f $f1 -> $f30, test accuracy $acc"
else
  fail "lbfgs: f '$f1' -> '$f30', accuracy '$acc' (>= 0.80)" "$WORK/lbfgs"
fi

run_ranks 2 "$WORK/ncg" train "$TOP/configs/fashion-softmax-newton_cg.ini" --set optim.max_iter=3 \
  --set log.metrics= --set log.progress=lines
expect_status "newton_cg, 3 iterations, 2 ranks" 0 "$WORK/ncg"
expect_grep "damping and CG iterations logged" '^iter 3: f [0-9.e+-]+ .* damping [0-9.e+-]+ cg [0-9]+' "$WORK/ncg"
f1=$(first_f "$WORK/ncg") f3=$(last_f "$WORK/ncg")
if awk -v a="$f1" -v b="$f3" 'BEGIN { exit !(b < a) }'; then ok "newton_cg: f $f1 -> $f3"
else fail "newton_cg: f '$f1' -> '$f3'" "$WORK/ncg"; fi
finish
