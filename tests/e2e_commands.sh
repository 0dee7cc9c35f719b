#!/usr/bin/env bash
# End to end for the subcommands around training:
#   - train --dry-run checks and prints the plan, exits 0, writes nothing;
#     a bad config or model still exits 2;
#   - eval of the final checkpoint gives the training run's own final test
#     loss and accuracy, on 1 and 3 ranks alike, with a confusion matrix
#     whose rows sum to the class counts;
#   - predict writes probabilities (.npy and CSV) that NumPy reproduces from
#     the weights export wrote (a forward pass in NumPy), and export's
#     safetensors file holds the same tensors;
#   - inspect --ranks N divides a sharded optimizer state by N;
#   - the README's config reference equals `dptrain help config --markdown`;
#   - bad uses exit 2 with one message.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
  echo "skipped: NumPy missing (bash launch/install-deps.sh --tests installs python3-numpy)"; exit 77
fi
DPTRAIN=$(readlink -f "$DPTRAIN")
export DPTRAIN
cd "$WORK" || exit 1

# ---------------------------------------------------------------- dry run
run_ranks 2 dry.out train --dry-run --set train.max_steps=50 --set checkpoint.dir=dryck
expect_status "train --dry-run" 0 dry.out
expect_grep "dry run prints the steps" "optimizer +nesterov.*: 50 steps" dry.out
expect_grep "dry run prints the global batch" "2 ranks x batch 64 = global batch 128" dry.out
expect_grep "dry run prints the memory per rank" "^  in all +[0-9.]+ MiB" dry.out
if [[ ! -e dryck && ! -e dptrain-metrics.jsonl ]]; then ok "dry run writes nothing"
else fail "dry run left files: $(ls)"; fi
run_ranks 2 drybad.out train --dry-run --set "model.layers=32 relu, 5"
expect_status "dry run of a model that does not fit" 2 drybad.out
expect_count "dry run error reported once" '^dptrain: error:' drybad.out 1

# ---------------------------------------------------------------- a model to use
run_ranks 2 train.out train --set train.max_steps=200 --set log.progress=none --set log.metrics= \
  --set checkpoint.dir=ck --set checkpoint.at_end=true --set checkpoint.every_seconds=0
expect_status "a short training run" 0 train.out
ckpt=$(ls ck/*.safetensors 2>/dev/null | tail -1)
read -r train_acc train_loss < <(sed -n 's/^final test accuracy \([0-9.]*\), test loss \([0-9.]*\).*/\1 \2/p' train.out)

# ---------------------------------------------------------------- eval
for ranks in 1 3; do
  run_ranks $ranks eval$ranks.out eval "$ckpt"
  expect_status "eval on $ranks rank(s)" 0 eval$ranks.out
  expect_grep "eval on $ranks rank(s) equals the run's final test numbers" \
    "^loss ${train_loss}[0-9]* +accuracy ${train_acc}" eval$ranks.out
done
run_ranks 2 eval.json eval "$ckpt" --json
expect_status "eval --json" 0 eval.json
if $PY - "$data" <<'EOF' >confusion.out 2>&1
import gzip, json, sys
import numpy as np
ev = json.loads(open("eval.json").read().strip().splitlines()[-1])
c = np.array(ev["confusion"])
labels = np.frombuffer(gzip.open(sys.argv[1] + "/t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
assert c.shape == (10, 10), c.shape
assert (c.sum(1) == np.bincount(labels, minlength=10)).all(), "rows are not the class counts"
assert abs(np.trace(c) / c.sum() - ev["accuracy"]) < 1e-12, "diagonal is not the accuracy"
print("confusion ok")
EOF
then ok "confusion matrix rows are the class counts, its diagonal the accuracy"
else fail "confusion matrix check" confusion.out; fi

# ---------------------------------------------------------------- predict + export vs NumPy
run_ranks 3 pred.out predict "$ckpt" --output probs.npy
expect_status "predict to .npy on 3 ranks" 0 pred.out
run_ranks 1 predcsv.out predict "$ckpt" --output probs.csv
expect_status "predict to CSV" 0 predcsv.out
"$DPTRAIN" export "$ckpt" --output weights >export.out 2>&1; status=$?
expect_status "export to .npy files" 0 export.out
"$DPTRAIN" export "$ckpt" --output weights.safetensors >export2.out 2>&1; status=$?
expect_status "export to safetensors" 0 export2.out
if $PY - "$data" <<'EOF' >numpy.out 2>&1
import gzip, json, struct, sys
import numpy as np
m = json.load(open("weights/manifest.json"))
w = {t["name"]: np.load("weights/" + t["file"]) for t in m["tensors"]}
for t in m["tensors"]:
    assert list(w[t["name"]].shape) == t["shape"], (t["name"], w[t["name"]].shape)
assert w["trunk.0.dense.weight"].shape == (512, 784) and w["trunk.4.dense.bias"].shape == (10,)
x = np.frombuffer(gzip.open(sys.argv[1] + "/t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
x = x.reshape(-1, 784).astype(np.float64) / 255
h = np.maximum(x @ w["trunk.0.dense.weight"].T + w["trunk.0.dense.bias"], 0)
h = np.maximum(h @ w["trunk.2.dense.weight"].T + w["trunk.2.dense.bias"], 0)
z = h @ w["trunk.4.dense.weight"].T + w["trunk.4.dense.bias"]
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
q = np.load("probs.npy")
tol = 1e-10 if q.dtype == np.float64 else 2e-5
assert q.shape == (10000, 10), q.shape
err = np.abs(p - q).max()
assert err < tol, f"NumPy forward pass differs from predict by {err}"
c = np.loadtxt("probs.csv", delimiter=",", skiprows=1)
assert (c[:, 0] == q.argmax(1)).all() and np.abs(c[:, 1:] - q).max() < 1e-6
# safetensors: 8-byte header length, JSON header, then the tensors
raw = open("weights.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
for name, t in header.items():
    if name == "__metadata__":
        continue
    dt = {"F32": np.float32, "F64": np.float64}[t["dtype"]]
    a, b = t["data_offsets"]
    arr = np.frombuffer(raw[8 + n + a:8 + n + b], dt).reshape(t["shape"])
    assert (arr == w[name]).all(), name
print(f"numpy ok: max |p - q| = {err:.3g}, {len(header) - 1} safetensors tensors equal")
EOF
then ok "exported weights load in NumPy with the right shapes; a NumPy forward pass reproduces predict ($(tail -1 numpy.out))"
else fail "NumPy check of export and predict" numpy.out; fi

# ---------------------------------------------------------------- inspect
"$DPTRAIN" inspect --ranks 4 --set optim.method=adam --set optim.shard_state=true >inspect4.out 2>&1
"$DPTRAIN" inspect --ranks 1 --set optim.method=adam --set optim.shard_state=true >inspect1.out 2>&1; status=$?
expect_status "inspect --ranks" 0 inspect1.out
opt1=$(sed -n 's/^  optimizer: adam.* \([0-9.]*\) MiB$/\1/p' inspect1.out)
opt4=$(sed -n 's/^  optimizer: adam.* \([0-9.]*\) MiB$/\1/p' inspect4.out)
if awk -v a="$opt1" -v b="$opt4" 'BEGIN { exit !(a > 0 && b > 0 && b < a / 2) }'; then
  ok "inspect: sharded Adam state shrinks with the ranks ($opt1 MiB on 1 rank, $opt4 MiB each on 4)"
else fail "inspect optimizer memory: '$opt1' on 1 rank, '$opt4' on 4" inspect4.out; fi

# ---------------------------------------------------------------- the README's config reference
"$DPTRAIN" help config --markdown >keys.md 2>&1
sed -n '/<!-- config-reference:begin -->/,/<!-- config-reference:end -->/p' "$TOP/README.md" |
  sed '1d;$d' >readme-keys.md
if [[ -s readme-keys.md ]] && diff -u readme-keys.md keys.md >keys.diff; then
  ok "README's config reference equals dptrain help config --markdown"
else fail "README's config reference is stale: regenerate it with launch/update-readme-config.sh" keys.diff; fi

# ---------------------------------------------------------------- bad uses
run_ranks 2 bad1.out predict "$ckpt" --output probs.txt
expect_status "predict to an unknown format" 2 bad1.out
expect_count "unknown format reported once" '^dptrain: error:' bad1.out 1
run_ranks 2 bad2.out eval "$ckpt" --set "model.layers=64 relu, 10"
expect_status "eval with another model" 2 bad2.out
expect_grep "another model is named" "another model" bad2.out
run_ranks 2 bad3.out eval missing.safetensors
expect_status "eval of a missing checkpoint" 2 bad3.out
run_ranks 2 bad4.out eval "$ckpt" --head nosuch
expect_status "eval of a missing head" 2 bad4.out
expect_grep "heads are listed" "no such head \(heads: output\)" bad4.out
"$DPTRAIN" export "$ckpt" >bad5.out 2>&1; status=$?
expect_status "export without --output" 2 bad5.out
"$DPTRAIN" inspect --resume auto >bad6.out 2>&1; status=$?
expect_status "an option of another command" 2 bad6.out
expect_grep "the option is named" "option --resume does not apply to inspect" bad6.out

finish
