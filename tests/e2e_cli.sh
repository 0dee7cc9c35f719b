#!/usr/bin/env bash
# End to end: the dptrain command line, bad configs, bad data. Every error
# must be one message, the right exit status on every rank, and no hang.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

"$DPTRAIN" --version >"$WORK/out" 2>&1; status=$?
expect_status "--version" 0 "$WORK/out"
expect_grep "--version names the version and precision" '^dptrain [0-9]+\.[0-9]+\.[0-9]+ \((single|double) precision\)' "$WORK/out"

"$DPTRAIN" --help >"$WORK/out" 2>&1; status=$?
expect_status "--help" 0 "$WORK/out"
for command in train eval predict inspect export help; do
  expect_grep "--help lists $command" "^  dptrain $command " "$WORK/out"
done
"$DPTRAIN" help config >"$WORK/out" 2>&1; status=$?
expect_status "help config" 0 "$WORK/out"
expect_grep "help config lists config keys" 'batch_size' "$WORK/out"

"$DPTRAIN" >"$WORK/out" 2>&1; status=$?
expect_status "no command is a usage error" 2 "$WORK/out"
"$DPTRAIN" train --frobnicate >"$WORK/out" 2>&1; status=$?
expect_status "unknown option is a usage error" 2 "$WORK/out"

# the built-in default config is configs/default.ini, byte for byte: writing
# the resolved config of both must give the same text
cmp_default() {
  run_ranks 1 "$WORK/a" train "$TOP/configs/default.ini" --set train.max_steps=1 --set log.metrics=
  run_ranks 1 "$WORK/b" train --set train.max_steps=1 --set log.metrics=
  grep -v "samples/s\|s total\|step" "$WORK/a" >"$WORK/a2"; grep -v "samples/s\|s total\|step" "$WORK/b" >"$WORK/b2"
  if cmp -s "$WORK/a2" "$WORK/b2"; then ok "embedded default equals configs/default.ini"
  else fail "embedded default differs from configs/default.ini" "$WORK/b"; fi
}
cmp_default

# a typo in a key: one message from rank 0 with file, line, key, suggestion
printf '[data]\n[model]\nlayers = 32 relu, 10\n[train]\nepochs = 1\nbatch_szie = 32\n[optim]\nlr = 0.1\n' >"$WORK/typo.ini"
run_ranks 2 "$WORK/out" train "$WORK/typo.ini"
expect_status "typo in a key, 2 ranks" 2 "$WORK/out"
expect_grep "typo message names file, line, key and suggestion" "typo\.ini:6:.*batch_szie.*did you mean 'batch_size'" "$WORK/out"
expect_count "typo reported once" '^dptrain: error:' "$WORK/out" 1

printf '[model]\nlayers = 32 relu, 10\n[trian]\nepochs = 1\n[optim]\nlr = 0.1\n' >"$WORK/section.ini"
run_ranks 3 "$WORK/out" train "$WORK/section.ini"
expect_status "unknown section, 3 ranks (oversubscribed)" 2 "$WORK/out"
expect_grep "unknown section suggests [train]" "section\.ini:3:.*trian.*train" "$WORK/out"

printf '[model]\nlayers = 32 relu, 10\n[train]\nepochs = 1\n' >"$WORK/missing.ini"
run_ranks 2 "$WORK/out" train "$WORK/missing.ini"
expect_status "missing required key" 2 "$WORK/out"
expect_grep "missing key named" "missing\.ini.*\[optim\] lr" "$WORK/out"

run_ranks 2 "$WORK/out" train --set optim.momentum=1.5
expect_status "--set out of range" 2 "$WORK/out"
expect_grep "--set message names the argument and range" "optim\.momentum=1\.5.*momentum" "$WORK/out"
expect_count "--set error reported once" '^dptrain: error:' "$WORK/out" 1

run_ranks 2 "$WORK/out" train "$WORK/does-not-exist.ini"
expect_status "missing config file" 2 "$WORK/out"
expect_grep "missing config file named" "does-not-exist\.ini" "$WORK/out"

# bad data: a missing file and a corrupt gzip, named in one message, exit 1
run_ranks 2 "$WORK/out" train --set data.dir="$WORK" --set train.epochs=1
expect_status "missing data file (bad input)" 2 "$WORK/out"
expect_grep "missing data file named" "$WORK/train-images-idx3-ubyte\.gz" "$WORK/out"
expect_count "missing data reported once" '^dptrain: error:' "$WORK/out" 1

head -c 3000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz >"$WORK/cut.gz" 2>/dev/null ||
  printf '\037\213garbage' >"$WORK/cut.gz"
run_ranks 2 "$WORK/out" train --set data.train_images="$WORK/cut.gz" --set train.epochs=1
expect_status "truncated gzip data (bad input)" 2 "$WORK/out"
expect_grep "truncated gzip named" "cut\.gz.*(truncated|corrupt)" "$WORK/out"

# a model whose output is narrower than the label range
run_ranks 2 "$WORK/out" train --set "model.layers=32 relu, 5" --set train.epochs=1
expect_status "model output narrower than the classes" 2 "$WORK/out"
expect_grep "shape message says what to change" "labels go up to 9.*5 outputs" "$WORK/out"

# a NaN injected into one rank's gradient: every rank stops with one message
# naming the step and layer (abort), or every rank skips the step (skip)
DPTRAIN_INJECT_NAN=5:1:3 run_ranks 2 "$WORK/out" train --set train.max_steps=20 --set log.metrics= \
  --set log.progress=none
expect_status "NaN on rank 1, nonfinite = abort" 1 "$WORK/out"
expect_grep "abort names step and layer" "error: step 5: the gradient is not finite \(first in layer 3 \(dense 256\)\)" "$WORK/out"
expect_count "abort reported once" '^dptrain: error:' "$WORK/out" 1
DPTRAIN_INJECT_NAN=5:1:3 run_ranks 2 "$WORK/out" train --set train.max_steps=20 --set log.metrics= \
  --set log.progress=none --set optim.nonfinite=skip
expect_status "NaN on rank 1, nonfinite = skip" 0 "$WORK/out"
expect_grep "skip warns" "warning: step 5 skipped: non-finite gradient first in layer 3 \(dense\) \(1 skipped so far\)" "$WORK/out"

# per-layer statistics every 10 steps, in the metrics file and on stderr
run_ranks 2 "$WORK/out" train --set train.max_steps=20 --set log.layer_stats=10 \
  --set log.metrics="$WORK/stats.jsonl" --set log.progress=lines
expect_status "layer statistics run" 0 "$WORK/out"
expect_count "two layer_stats records" '^\{"type":"layer_stats","step":(10|20),' "$WORK/stats.jsonl" 2
expect_grep "each layer has its norms and update ratio" \
  '"layers":\[\{"layer":1,"kind":"dense","grad_norm":[0-9.e-]+,"weight_norm":[0-9.e-]+,"update_ratio":[0-9.e-]+' \
  "$WORK/stats.jsonl"
expect_grep "layer statistics on stderr" '^layer stats, step 10 ' "$WORK/out"

finish
