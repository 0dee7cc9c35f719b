#!/usr/bin/env bash
# End to end for [diagnostics]: the JSON-lines records and the summary of a
# real run, the plot script, the ill-conditioning flag and an exploding
# gradient on a badly initialized deep ReLU net, a vanishing gradient in a
# deep sigmoid net, the noise scale's need for two ranks, a model without
# Hessian-vector products, and an unwritable diagnostics file.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
command -v jq >/dev/null || { echo "FAIL - jq missing (bash launch/install-deps.sh)"; exit 1; }

quiet=(--set log.progress=lines --set log.metrics="$WORK/metrics.jsonl")

# ---- a real run: every record, the summary, the plot
diag="$WORK/diag.jsonl"
run_ranks 2 "$WORK/mlp" train --set train.max_steps=120 --set diagnostics.every=40 \
  --set diagnostics.lanczos_steps=8 --set diagnostics.file="$diag" --set log.every=1000 "${quiet[@]}"
expect_status "MLP with diagnostics" 0 "$WORK/mlp"
sed -n '/^diagnostics summary/,$p' "$WORK/mlp"
expect_grep "console line per diagnostics step" "^diagnostics, step 40: g'g [0-9.e+-]+ g'Hg [0-9.e+-]+ eps\* " "$WORK/mlp"
expect_grep "summary: curvature along g" "^  curvature along g: g'Hg/g'g in \[" "$WORK/mlp"
expect_grep "summary: Lanczos" "^  Hessian \(Lanczos, 8 products\): lambda_max in" "$WORK/mlp"
expect_grep "summary: noise scale with advice" "^  gradient noise scale: B_simple = [0-9.e+]+ .*: the global batch 128 is" "$WORK/mlp"
if [[ $(jq -r .type "$diag" | head -1) == run && $(jq -r 'select(.type == "diag") | .step' "$diag" | tr '\n' ' ') == "40 80 120 " \
      && $(jq -r .type "$diag" | tail -1) == summary ]]; then
  ok "diagnostics file: run record, diag at steps 40 80 120, summary"
else
  fail "diagnostics file records" "$diag"
fi
# the probe's Taylor terms are consistent with its own g'g, g'Hg and lr
bad=$(jq -r 'select(.type == "diag") | .curvature
  | select((.first_order - .lr * .gTg | fabs) > 1e-9 * .first_order
           or (.second_order - 0.5 * .lr * .lr * .gTHg | fabs) > 1e-9 * (.second_order | fabs)
           or (.eps_star - .gTg / .gTHg | fabs) > 1e-9 * .eps_star
           or .ill_conditioned != (.second_order > .first_order))' "$diag")
if [[ -z "$bad" ]]; then ok "Taylor terms consistent in every record"; else fail "Taylor terms: $bad"; fi
n=$(jq -r 'select(.type == "diag") | select(.lanczos.steps == 8 and .lanczos.lambda_max > 0
      and .noise.B_simple > 0 and (.layers | length) == 3) | .step' "$diag" | wc -l)
if [[ $n -eq 3 ]]; then ok "every record has Lanczos, noise scale and 3 layers"; else fail "record contents ($n of 3)" "$diag"; fi
if bash "$TOP/launch/plot-diagnostics.sh" "$diag" "$WORK/diag.png" >"$WORK/plot" 2>&1 &&
   [[ $(head -c 8 "$WORK/diag.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]]; then
  ok "plot-diagnostics.sh draws a PNG ($(stat -c %s "$WORK/diag.png") bytes)"
else
  fail "plot-diagnostics.sh" "$WORK/plot"
fi

# ---- a badly initialized deep ReLU net: uphill steps and exploding gradients
relu="256 relu init=normal:0.3"
run_ranks 2 "$WORK/explode" train --set "model.layers=$relu, $relu, $relu, $relu, $relu, $relu, 10" \
  --set train.max_steps=2 --set diagnostics.every=1 --set diagnostics.lanczos_steps=0 \
  --set optim.nonfinite=skip --set diagnostics.file="$WORK/explode.jsonl" "${quiet[@]}"
expect_status "exploding run" 0 "$WORK/explode"
expect_grep "ill-conditioning flagged" "diagnostics, step 1: .*ILL-CONDITIONED: the step is uphill" "$WORK/explode"
expect_grep "exploding gradient named" "^dptrain: warning: step 1: exploding gradient in layer 13 \(dense 10\): \|g\|/\|w\| = [0-9.]+ > \[diagnostics\] grad_ratio_max = 10" "$WORK/explode"
if [[ $(jq -r 'select(.type == "diag" and .step == 1) | .curvature.ill_conditioned' "$WORK/explode.jsonl") == true ]]; then
  ok "ill_conditioned recorded"
else
  fail "ill_conditioned not recorded" "$WORK/explode.jsonl"
fi

# ---- a deep sigmoid net with small weights: the first layers' gradients vanish
sig="64 sigmoid init=normal:0.05"
run_ranks 2 "$WORK/vanish" train --set "model.layers=$sig, $sig, $sig, $sig, $sig, $sig, 10" \
  --set train.max_steps=20 --set diagnostics.every=20 --set diagnostics.lanczos_steps=0 \
  --set diagnostics.file="$WORK/vanish.jsonl" "${quiet[@]}"
expect_status "vanishing run" 0 "$WORK/vanish"
expect_grep "vanishing gradient named" "^dptrain: warning: step 20: vanishing gradient in layer 1 \(dense 64 init=normal:0.05\): \|g\|/\|w\| = [0-9.e-]+ < \[diagnostics\] grad_ratio_min = 1e-05" "$WORK/vanish"
expect_grep "summary lists it" "^  vanishing gradient in layer 1 \(dense 64 init=normal:0.05\) at 1 checks \(first at step 20" "$WORK/vanish"
expect_count "the healthy last layer is not flagged" "gradient in layer 13" "$WORK/vanish" 0

# ---- one rank: no second batch size, so no noise scale (said, not faked)
run_ranks 1 "$WORK/one" train --set train.max_steps=10 --set diagnostics.every=5 \
  --set diagnostics.lanczos_steps=3 --set diagnostics.file="$WORK/one.jsonl" "${quiet[@]}"
expect_status "one rank" 0 "$WORK/one"
expect_grep "noise scale needs two ranks" "^  gradient noise scale: needs at least 2 ranks" "$WORK/one"

# ---- a model with max pooling: no Hessian products, the rest still works
run_ranks 2 "$WORK/pool" train --set "model.layers=conv 4 3 relu, maxpool 2, flatten, 10" \
  --set train.max_steps=10 --set diagnostics.every=5 --set diagnostics.file="$WORK/pool.jsonl" "${quiet[@]}"
expect_status "CNN with pooling" 0 "$WORK/pool"
expect_grep "curvature unavailable, with the reason" "^  curvature: not available \(layer 3 is maxpool" "$WORK/pool"
expect_grep "noise scale still reported" "^  gradient noise scale: B_simple" "$WORK/pool"

# ---- an unwritable diagnostics file: one clear error, bad-input status
run_ranks 2 "$WORK/unwritable" train --set train.max_steps=5 --set diagnostics.every=1 \
  --set diagnostics.file=/nonexistent-dir/diag.jsonl "${quiet[@]}"
expect_status "unwritable diagnostics file (bad input)" 2 "$WORK/unwritable"
expect_count "one message naming the file" "cannot write the diagnostics file /nonexistent-dir/diag.jsonl" "$WORK/unwritable" 1

# ---- off by default: no file, no summary
DPTRAIN=$(readlink -f "$DPTRAIN")
pushd "$WORK" >/dev/null
run_ranks 2 "$WORK/off" train --set train.max_steps=5 "${quiet[@]}"
popd >/dev/null
expect_status "diagnostics off" 0 "$WORK/off"
if [[ ! -e "$WORK/dptrain-diagnostics.jsonl" ]] && ! grep -q "diagnostics summary" "$WORK/off"; then
  ok "no diagnostics unless asked for"
else
  fail "diagnostics written although off" "$WORK/off"
fi

finish
