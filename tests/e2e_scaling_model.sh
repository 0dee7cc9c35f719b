#!/usr/bin/env bash
# The scaling model (bench/scaling_model.py) on the committed measurement
# (bench/results/scaling-constants*.json*), so that neither rots unseen:
# the fit of the committed raw records gives the committed constants, the
# model runs on them and regenerates the committed README section
# (bench/results/scaling-model.md) word for word, and draws the PNG where
# gnuplot is installed. It measures nothing (bench/scaling.sh does): a few
# seconds. 77: skipped without Debian's python3 with NumPy.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

py=/usr/bin/python3
if ! "$py" -c 'import numpy' 2>/dev/null; then
  echo "skipped: $py with NumPy missing (bash launch/install-deps.sh --tests)"; exit 77
fi
model=$TOP/bench/scaling_model.py
res=$TOP/bench/results
constants=$res/scaling-constants.json

# ---- the fit: the committed raw records give the committed constants
machine=$("$py" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["machine"]))' "$constants")
if "$py" "$model" fit "$res/scaling-constants-raw.jsonl" --machine "$machine" -o "$WORK/c.json" >"$WORK/fit.txt" 2>&1 &&
   "$py" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
     "$WORK/c.json" "$constants"; then
  ok "fit of the committed raw records = the committed constants"
else
  fail "fit of bench/results/scaling-constants-raw.jsonl differs from scaling-constants.json (run bench/scaling.sh --model-only after changing the fit?)" "$WORK/fit.txt"
fi

# ---- the tables and the markdown, without the plot
if "$py" "$model" predict "$constants" --table-only --png "$res/scaling-model.png" \
     --markdown "$WORK/scaling-model.md" >"$WORK/tables.txt" 2>&1; then
  ok "predict --table-only"
else
  fail "predict --table-only failed" "$WORK/tables.txt"
fi
expect_grep "tables: predicted vs measured on 2 simulated hosts" '^## predicted vs measured' "$WORK/tables.txt"
expect_grep "tables: efficiency at 100 Gbit/s" '^mlp .*100 Gbit/s, alpha' "$WORK/tables.txt"
expect_grep "tables: where overlap stops helping" '^## where overlap stops helping' "$WORK/tables.txt"
expect_grep "tables: where larger batches stop helping" '^## where larger batches stop helping' "$WORK/tables.txt"
if diff -u "$res/scaling-model.md" "$WORK/scaling-model.md" >"$WORK/md.diff"; then
  ok "the committed scaling-model.md is what the model writes"
else
  fail "bench/results/scaling-model.md is stale: run bash bench/scaling.sh --model-only" "$WORK/md.diff"
fi

# ---- the plot, where gnuplot is installed
if command -v gnuplot >/dev/null; then
  if "$py" "$model" predict "$constants" --png "$WORK/s.png" >"$WORK/plot.txt" 2>&1 &&
     [[ $(head -c 8 "$WORK/s.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]]; then
    ok "plot: a PNG of $(stat -c %s "$WORK/s.png") bytes"
  else
    fail "plot failed" "$WORK/plot.txt"
  fi
else
  echo "skip - no gnuplot: the plot is not checked"
fi
finish
