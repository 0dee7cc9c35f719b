#!/usr/bin/env bash
# End to end for launch/plot-metrics.sh: a short real run on 2 ranks with
# metrics and diagnostics, drawn into PNGs (the diagnostics found next to the
# metrics through the run record's config, given with -d, or left out);
# a live file's unfinished last line; clear errors for a missing, an empty
# and a non-metrics file.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || { echo "FAIL - $tool missing (bash launch/install-deps.sh)"; exit 1; }
done
plot=$TOP/launch/plot-metrics.sh

# is_png NAME FILE MIN_BYTES: PNG signature, `file` agrees, at least MIN_BYTES
is_png() {
  local size; size=$(stat -c %s "$2" 2>/dev/null || echo 0)
  if [[ $(head -c 8 "$2" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] && (( size >= $3 )) &&
     { ! command -v file >/dev/null || file -b "$2" | grep -q '^PNG image data'; }; then
    ok "$1 ($size bytes$(command -v file >/dev/null && file -b "$2" | grep -o ', [0-9]* x [0-9]*'))"
  else
    fail "$1: not a PNG of at least $3 bytes ($size bytes)"
  fi
}

# ---- a short run: 2 epochs of 117 steps, relative output names (run in $WORK)
(cd "$WORK" && run_ranks 2 "$WORK/run" train --set train.epochs=2 --set train.batch_size=256 \
   --set log.every=10 --set log.progress=lines --set log.metrics=metrics.jsonl \
   --set diagnostics.every=50 --set diagnostics.lanczos_steps=5 --set diagnostics.file=diag.jsonl \
   --set checkpoint.dir= ; exit $status)
status=$?
expect_status "2 ranks, 2 epochs with metrics and diagnostics" 0 "$WORK/run"
m=$WORK/metrics.jsonl
if [[ $(jq -r 'select(.type == "step") | .step' "$m" | wc -l) -ge 20 &&
      $(jq -r 'select(.type == "epoch") | select(.elapsed_s > 0) | .epoch' "$m" | tr '\n' ' ') == "1 2 " ]]; then
  ok "metrics: step records, and epoch records with elapsed_s"
else
  fail "metrics records" "$m"
fi

# ---- drawn from another directory: the diagnostics are found next to the metrics
out=$WORK/plots/run.png
mkdir -p "$WORK/plots"
start=$(date +%s.%N)
(cd / && bash "$plot" "$m" "$out") >"$WORK/plot" 2>&1
status=$?
seconds=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
expect_status "plot-metrics.sh METRICS OUT (${seconds} s)" 0 "$WORK/plot"
expect_grep "it says what it drew" "^plot-metrics: wrote $out \([0-9]+ step records, 2 epoch records\)$" "$WORK/plot"
is_png "metrics PNG" "$out" 40000
expect_grep "the run's diagnostics file found next to the metrics" \
  "^plot-metrics: wrote $WORK/plots/run-diagnostics.png \(diagnostics of $WORK/diag.jsonl\)$" "$WORK/plot"
is_png "diagnostics PNG" "$WORK/plots/run-diagnostics.png" 20000

# default output name; -d; --no-diagnostics
cp "$WORK/diag.jsonl" "$WORK/other-diag.jsonl"
bash "$plot" --no-diagnostics "$m" >"$WORK/plot2" 2>&1
status=$?
expect_status "--no-diagnostics, default output name" 0 "$WORK/plot2"
is_png "METRICS.png by default" "$WORK/metrics.png" 40000
expect_count "no diagnostics drawn" "diagnostics" "$WORK/plot2" 0
bash "$plot" -d "$WORK/other-diag.jsonl" "$m" "$WORK/d.png" >"$WORK/plot3" 2>&1
status=$?
expect_status "-d DIAGNOSTICS" 0 "$WORK/plot3"
expect_grep "-d's file drawn" "wrote $WORK/d-diagnostics.png \(diagnostics of $WORK/other-diag.jsonl\)" "$WORK/plot3"

# a file still being written: its unfinished last line is skipped with a warning
{ cat "$m"; printf '{"type":"step","epoch":3,"st'; } >"$WORK/live.jsonl"
bash "$plot" --no-diagnostics "$WORK/live.jsonl" >"$WORK/plot4" 2>&1
status=$?
expect_status "unfinished last line" 0 "$WORK/plot4"
expect_grep "warned about" "warning: 1 of [0-9]+ lines of .*live.jsonl are not JSON records; skipped" "$WORK/plot4"

# a resumed run appended to the file: the records after the resumed step are
# replaced by the resumed run's (same count), its clock continues
n=$(jq -r 'select(.type == "step") | .step' "$m" | wc -l)
{ jq -c 'select(.type != "final" and (.step // 0) <= 150)' "$m"
  jq -c 'select(.type == "run") | . + {resumed_at_step: 100}' "$m"
  jq -c 'select(.type == "final" or (.step // 0) > 100) | if .elapsed_s then .elapsed_s -= 2 else . end' "$m"
} >"$WORK/resumed.jsonl"
bash "$plot" --no-diagnostics "$WORK/resumed.jsonl" >"$WORK/plot5" 2>&1
status=$?
expect_status "a resumed run's file" 0 "$WORK/plot5"
expect_grep "the replaced records dropped" "wrote .*resumed.png \($n step records, 2 epoch records\)" "$WORK/plot5"

# ---- errors: exit 2 (bad input) or 1 (nothing to draw), one clear message, no PNG
check_error() { # name want_status pattern args...
  local name=$1 want=$2 pattern=$3; shift 3
  bash "$plot" "$@" >"$WORK/err" 2>&1
  status=$?
  expect_status "$name" "$want" "$WORK/err"
  expect_grep "$name: message" "$pattern" "$WORK/err"
}
check_error "missing file" 2 "^plot-metrics: $WORK/nope.jsonl does not exist" "$WORK/nope.jsonl" "$WORK/nope.png"
: >"$WORK/empty.jsonl"
check_error "empty file" 2 "^plot-metrics: $WORK/empty.jsonl is empty" "$WORK/empty.jsonl"
printf 'epoch 1/2 loss 0.5\n' >"$WORK/text.jsonl"
check_error "not JSON" 2 "holds no JSON records: not a dptrain metrics file" "$WORK/text.jsonl"
check_error "a diagnostics file as the metrics" 1 "has no step or epoch records, only: [0-9]+ x diag, 1 x run" \
  "$WORK/diag.jsonl" "$WORK/wrong.png"
check_error "-d with a missing file" 2 "cannot read the diagnostics file" -d "$WORK/nope.jsonl" "$m"
check_error "no arguments" 2 "^usage: "
check_error "an unwritable output directory" 2 "cannot write $WORK/no/such/dir/x.png" "$m" "$WORK/no/such/dir/x.png"
if [[ ! -e $WORK/nope.png && ! -e $WORK/empty.png && ! -e $WORK/wrong.png ]]; then
  ok "no PNG left by a failure"
else
  fail "a failure left a PNG"
fi

finish
