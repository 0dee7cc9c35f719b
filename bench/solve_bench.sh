#!/usr/bin/env bash
# The second-order path, measured (a benchmark: it asserts nothing).
# Softmax regression on the 60000 Fashion-MNIST training images (7850
# parameters, L2 1e-4 on the weights, from zero; configs/fashion-softmax-*.ini),
# double build, 2 ranks: every method run to its stopping rule
# (|g|_inf <= 3e-7), with f, |g|_inf, iterations, oracle calls, seconds and
# the curvature memory per rank; then each f against the lowest one.
#
#   bash bench/solve_bench.sh [METHOD...]      (default: lbfgs cg newton_cg newton bfgs)
#
# For scale, on this machine (the issue's figures): SciPy's L-BFGS-B with a
# NumPy objective needs about 800-1000 iterations and 65-90 s to reach
# |g|_inf ~ 1e-5; scikit-learn's newton-cg 19 iterations and 45-65 s.
bench_precision=double
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
methods=("$@")
[[ ${#methods[@]} -gt 0 ]] || methods=(lbfgs cg newton_cg newton bfgs)
ranks=${RANKS:-2}

printf '%-10s %6s %7s %8s %18s %9s %8s %10s %9s\n' method iters evals products f "|g|inf" seconds \
  "MiB/rank" "test acc"
for method in "${methods[@]}"; do
  log="$work/$method.log"
  bash "$top/launch/local.sh" -n "$ranks" train "$top/configs/fashion-softmax-$method.ini" \
    --set log.progress=none --set log.metrics="$work/$method.jsonl" >"$log" 2>&1 || {
    echo "$method: dptrain failed:"; tail -n 5 "$log"; continue; }
  solved=$(grep '"type":"solved"' "$work/$method.jsonl")
  final=$(grep '"type":"final"' "$work/$method.jsonl")
  f=$(field f <<<"$solved")
  echo "$method $f" >>"$work/fs"
  printf '%-10s %6s %7s %8s %18.12f %9.2e %8.1f %10.2f %9.4f\n' "$method" \
    "$(field iterations <<<"$solved")" "$(field evals <<<"$solved")" "$(field products <<<"$solved")" \
    "$f" "$(field grad_inf <<<"$solved")" "$(field train_s <<<"$final")" \
    "$(awk -v b="$(field state_bytes_per_rank <<<"$solved")" 'BEGIN { print b / 1048576 }')" \
    "$(field test_accuracy <<<"$final")"
done

echo
echo "relative difference of f from the lowest f:"
awk '{ m[$1] = $2; if (NR == 1 || $2 < lo) lo = $2 }
     END { for (k in m) printf "  %-10s %.2e\n", k, (m[k] - lo) / lo }' "$work/fs"
