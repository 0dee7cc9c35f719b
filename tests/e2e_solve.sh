#!/usr/bin/env bash
# End to end for the second-order path, on real data (Fashion-MNIST):
#  - softmax regression on the full training set with lbfgs and newton_cg on
#    2 ranks: every iteration logged, f decreases, test accuracy reported;
#  - newton (explicit ScaLAPACK matrix, spectrum) and bfgs run and log;
#  - double build: on the first 2000 training samples all five methods reach
#    the same minimum (f within 1e-7 relative, |g|_inf < 1e-5), and lbfgs
#    iterates agree at P = 1, 2 and 3;
#  - the default MLP (nonconvex) trained by lbfgs and newton_cg on a large
#    batch: lower training loss, no NaN, test accuracy reported.
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
# ---- newton and bfgs: they run, log damping and the spectrum, report memory
# (the spectrum on a 517-parameter model: p?syevd of softmax regression's
# 7850 x 7850 matrix takes minutes per iteration on 2 busy cores, and the
# same-minimum runs below cover that model)
run_ranks 2 "$WORK/newton" train "$TOP/configs/fashion-softmax-newton.ini" --set optim.max_iter=3 \
  --set "model.layers=conv 1 4 stride=4, flatten, 10" --set model.init=auto \
  --set optim.solve_samples=1000 --set optim.newton_fraction=0.2 --set optim.newton_refresh=1 \
  --set optim.newton_solver=cholesky --set diagnostics.spectrum=true \
  --set log.metrics="$WORK/newton.jsonl" --set log.progress=lines
expect_status "newton, 3 iterations, 2 ranks" 0 "$WORK/newton"
expect_grep "damping and spectrum logged" \
  '^iter 3: f [0-9.e+-]+ .* damping [0-9.e+-]+ \| eigenvalues \[[0-9.e+-]+, [0-9.e+-]+\] condition [0-9.e+-]+ negative 0$' \
  "$WORK/newton"
expect_count "spectrum in the metrics" '"eig_min":' "$WORK/newton.jsonl" 3
f1=$(first_f "$WORK/newton") f3=$(last_f "$WORK/newton")
if awk -v a="$f1" -v b="$f3" 'BEGIN { exit !(b < a) }'; then ok "newton: f $f1 -> $f3"
else fail "newton: f '$f1' -> '$f3'" "$WORK/newton"; fi
run_ranks 3 "$WORK/bfgs" train "$TOP/configs/fashion-softmax-bfgs.ini" --set optim.max_iter=5 \
  --set optim.solve_samples=1000 --set log.metrics= --set log.progress=lines
expect_status "bfgs, 5 iterations, 3 ranks" 0 "$WORK/bfgs"
expect_grep "bfgs memory per rank reported" 'curvature memory [0-9.]+ MiB per rank' "$WORK/bfgs"

# ---- double build: the same minimum by every method, iterates across P
if "$DPTRAIN" --version | grep -q double; then
  small=(--set optim.solve_samples=2000 --set optim.gtol=1e-7 --set log.progress=lines)
  for method in lbfgs cg newton_cg newton bfgs; do
    extra=()
    [[ $method == newton ]] && extra=(--set optim.newton_fraction=0.25)
    run_ranks 2 "$WORK/same-$method" train "$TOP/configs/fashion-softmax-$method.ini" "${small[@]}" \
      "${extra[@]}" --set log.metrics="$WORK/same-$method.jsonl"
    expect_status "$method to |g|inf <= 1e-7 on 2000 samples" 0 "$WORK/same-$method"
    sed -n 's/.*"type":"solved".*"f":\([0-9.e+-]*\),"grad_inf":\([0-9.e+-]*\).*/\1 \2/p' \
      "$WORK/same-$method.jsonl" | sed "s/^/$method /" >>"$WORK/minima"
  done
  if awk '{ f[NR] = $2; g[NR] = $3; if (NR == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2
            if ($3 + 0 >= 1e-5) bad = 1 }
          END { exit !(NR == 5 && !bad && (hi - lo) / lo < 1e-7) }' "$WORK/minima"; then
    ok "same minimum: $(awk '{ printf "%s %s |g| %s; ", $1, $2, $3 }' "$WORK/minima")"
  else
    fail "the five minima differ by >= 1e-7 relative or |g|inf >= 1e-5" "$WORK/minima"
  fi
  for np in 1 2 3; do
    run_ranks $np "$WORK/p$np" train "$TOP/configs/fashion-softmax-lbfgs.ini" "${small[@]}" \
      --set optim.max_iter=20 --set log.metrics="$WORK/p$np.jsonl"
    grep '"type":"iter"' "$WORK/p$np.jsonl" | sed -n 's/.*"f":\([0-9.e+-]*\),.*/\1/p' >"$WORK/f$np"
  done
  if paste "$WORK/f1" "$WORK/f2" "$WORK/f3" | awk '{ n++; for (i = 2; i <= 3; i++) {
        d = ($i - $1) / $1; if (d < 0) d = -d; if (d > worst) worst = d } }
        END { printf "%.2g\n", worst; exit !(n == 20 && worst < 1e-12) }' >"$WORK/pdiff"; then
    ok "lbfgs iterates at P = 1, 2, 3 agree: max relative f difference $(cat "$WORK/pdiff") over 20 iterations"
  else
    fail "lbfgs f at P = 1, 2, 3 differ ($(cat "$WORK/pdiff"))" "$WORK/p3"
  fi
fi

# ---- nonconvex: the default MLP on a large batch
for method in lbfgs newton_cg; do
  run_ranks 2 "$WORK/mlp-$method" train --set optim.method=$method --set optim.solve_samples=4096 \
    --set optim.max_iter=8 --set optim.cg_max_iter=20 --set optim.curvature_fraction=0.25 \
    --set optim.damping=1 --set log.metrics= --set log.progress=lines
  expect_status "default MLP by $method, batch 4096, 2 ranks" 0 "$WORK/mlp-$method"
  f1=$(first_f "$WORK/mlp-$method") fl=$(last_f "$WORK/mlp-$method")
  acc=$(sed -n 's/^final test accuracy \([0-9.]*\).*/\1/p' "$WORK/mlp-$method")
  if ! grep -qi nan "$WORK/mlp-$method" && awk -v a="$f1" -v b="$fl" -v c="$acc" \
       'BEGIN { exit !(b < a && c > 0.5) }'; then
    ok "MLP $method: f $f1 -> $fl, test accuracy $acc"
  else
    fail "MLP $method: f '$f1' -> '$fl', accuracy '$acc'" "$WORK/mlp-$method"
  fi
done
finish
