#!/usr/bin/env bash
# End to end: data formats beyond IDX, on 2 ranks. A Fashion-MNIST subset
# (6000 training, 1000 test samples) is written by NumPy as IDX, as .npy
# (uint8 images; float32 features x/255 with int64 labels) and as CSV (a
# header and the label first in the training file; gzipped without a header
# in the test file), and trained for 300 steps from each:
#   - every run works: the training loss falls, test accuracy >= 0.70
#     (chance: 0.10);
#   - the .npy uint8 run prints exactly the IDX run's final test loss and
#     accuracy (uint8 .npy data is scaled to [0, 1] like IDX);
#   - in a single-precision build the CSV run (9 significant digits, which
#     round-trip float32) prints exactly the .npy float32 run's;
#   - format = npy reads .npy files with other names;
#   - bad files (truncated, Fortran order, big-endian, integer features, a
#     label of -1, one label short, not .npy at all, a bad CSV cell) exit 2
#     with one "dptrain: error:" line naming the file and the problem.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

fm=/usr/share/datasets/fashion-mnist
if [[ ! -f $fm/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $fm missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "skipped: NumPy missing (apt-get install python3-numpy)"; exit 77
fi
D=$WORK/data
mkdir -p "$D"

# ---------------------------------------------------------------- the files
"$PY" - "$fm" "$D" <<'EOF' || { echo "FAIL - NumPy could not write the data files"; exit 1; }
import gzip, sys, numpy as np
src, out = sys.argv[1], sys.argv[2]
def idx(name):
    b = gzip.open(f'{src}/{name}').read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
def write_idx(path, a):
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, 8, a.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in a.shape))
        f.write(a.tobytes())
def write_csv(path, x, y, header, opener=open):
    with opener(path, 'wt') as f:
        if header:
            f.write('label,' + ','.join(f'pixel{i}' for i in range(x.shape[1])) + '\n')
        for xi, yi in zip(x, y):
            f.write(f'{yi},' + ','.join('%.9g' % v for v in xi.tolist()) + '\n')
for split, n, images, labels in [('train', 6000, 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
                                 ('test', 1000, 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')]:
    x, y = idx(images)[:n], idx(labels)[:n]
    write_idx(f'{out}/{split}-images.idx', x)
    write_idx(f'{out}/{split}-labels.idx', y)
    np.save(f'{out}/{split}-u8.npy', x)
    f32 = (x.reshape(n, -1) / np.float32(255)).astype('<f4')
    np.save(f'{out}/{split}-f32.npy', f32)
    np.save(f'{out}/{split}-y.npy', y.astype('<i8'))
    if split == 'train':
        write_csv(f'{out}/train.csv', f32, y, header=True)
    else:
        write_csv(f'{out}/test.csv.gz', f32, y, header=False, opener=gzip.open)
# bad files
a = np.load(f'{out}/test-f32.npy')
np.save(f'{out}/fortran.npy', np.asfortranarray(a))
np.save(f'{out}/bigendian.npy', a.astype('>f4'))
np.save(f'{out}/int-features.npy', (a * 255).astype('<i4'))
y = np.load(f'{out}/test-y.npy')
neg = y.copy(); neg[700] = -1
np.save(f'{out}/negative-label.npy', neg)
np.save(f'{out}/short-labels.npy', y[:-1])
raw = open(f'{out}/test-f32.npy', 'rb').read()
open(f'{out}/truncated.npy', 'wb').write(raw[:-100])
open(f'{out}/garbage.npy', 'wb').write(b'P6\n28 28\n255\n' + raw[200:400])
lines = gzip.open(f'{out}/test.csv.gz', 'rt').read().splitlines()
cells = lines[41].split(','); cells[5] = '0.5x'; lines[41] = ','.join(cells)
open(f'{out}/bad-cell.csv', 'w').write('\n'.join(lines) + '\n')
EOF
cp "$D/train-u8.npy" "$D/train-u8.bin"; cp "$D/train-y.npy" "$D/train-y.bin"
cp "$D/test-u8.npy" "$D/test-u8.bin"; cp "$D/test-y.npy" "$D/test-y.bin"

# ---------------------------------------------------------------- training runs
common=(--set data.dir="$D" --set train.epochs=10 --set train.max_steps=300 --set log.every=100
        --set log.progress=lines --set log.metrics= --set checkpoint.dir= --set train.seed=7)

# train NAME TRAIN_X TRAIN_Y TEST_X TEST_Y [more --set ...]
train() {
  local name=$1; shift
  run_ranks 2 "$WORK/$name.out" train "${common[@]}" --set data.train_images="$1" \
    --set data.train_labels="$2" --set data.test_images="$3" --set data.test_labels="$4" "${@:5}"
  expect_status "$name: 300 steps on 2 ranks" 0 "$WORK/$name.out"
  local first last accuracy
  first=$(sed -n 's/^epoch 1\/[0-9]*: train loss \([0-9.]*\).*/\1/p' "$WORK/$name.out")
  last=$(sed -n 's/^epoch [0-9]*\/[0-9]*: train loss \([0-9.]*\).*/\1/p' "$WORK/$name.out" | tail -n 1)
  accuracy=$(sed -n 's/^final test accuracy \([0-9.]*\).*/\1/p' "$WORK/$name.out")
  if [[ -n $first && -n $last ]] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }'; then
    ok "$name: the training loss falls ($first -> $last)"
  else fail "$name: the training loss does not fall ('$first' -> '$last')" "$WORK/$name.out"; fi
  if [[ -n $accuracy ]] && awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.70) }'; then
    ok "$name: test accuracy $accuracy >= 0.70"
  else fail "$name: test accuracy '$accuracy' below 0.70" "$WORK/$name.out"; fi
}
final_line() { grep '^final test accuracy' "$WORK/$1.out" | sed 's/ (.*//'; }

train idx train-images.idx train-labels.idx test-images.idx test-labels.idx
train npy-u8 train-u8.npy train-y.npy test-u8.npy test-y.npy
train npy-f32 train-f32.npy train-y.npy test-f32.npy test-y.npy --set checkpoint.dir="$WORK/ck-f32" \
  --set checkpoint.at_end=true
train csv train.csv "" test.csv.gz ""
if [[ -n $(final_line idx) && $(final_line idx) == "$(final_line npy-u8)" ]]; then
  ok ".npy uint8 equals IDX exactly ($(final_line idx))"
else fail ".npy uint8 ('$(final_line npy-u8)') differs from IDX ('$(final_line idx)')" "$WORK/npy-u8.out"; fi
if "$DPTRAIN" --version | grep -q 'single precision'; then
  if [[ -n $(final_line csv) && $(final_line csv) == "$(final_line npy-f32)" ]]; then
    ok "CSV equals .npy float32 exactly ($(final_line csv))"
  else fail "CSV ('$(final_line csv)') differs from .npy float32 ('$(final_line npy-f32)')" "$WORK/csv.out"; fi
fi
# the CSV test file has no header, the training file has one: both read
expect_grep "csv: 6000 training samples (47 steps per epoch)" ' step [0-9]+/47 ' "$WORK/csv.out"

run_ranks 2 "$WORK/forced.out" train "${common[@]}" --set train.max_steps=5 --set data.format=npy \
  --set data.train_images=train-u8.bin --set data.train_labels=train-y.bin \
  --set data.test_images=test-u8.bin --set data.test_labels=test-y.bin
expect_status "format = npy reads .bin names" 0 "$WORK/forced.out"

# ---------------------------------------------------------------- the .npy-trained model back in NumPy
# export writes the weights as .npy files; NumPy loads them, checks their
# shapes against the layers, and its own forward pass on test-f32.npy gives
# the test loss dptrain's eval prints for the same checkpoint
ckpt=$(ls "$WORK"/ck-f32/*.safetensors 2>/dev/null | tail -n 1)
"$DPTRAIN" export "$ckpt" --output "$WORK/weights" >"$WORK/export.out" 2>&1; status=$?
expect_status "export of the .npy-trained model" 0 "$WORK/export.out"
run_ranks 2 "$WORK/eval.json" eval "$ckpt" --features "$D/test-f32.npy" --labels "$D/test-y.npy" --json
expect_status "eval on test-f32.npy" 0 "$WORK/eval.json"
if "$PY" - "$WORK" "$D" >"$WORK/numpy.out" 2>&1 <<'EOF'
import json, sys, numpy as np
work, data = sys.argv[1], sys.argv[2]
m = json.load(open(f'{work}/weights/manifest.json'))
w = {t['name']: np.load(f"{work}/weights/{t['file']}") for t in m['tensors']}
want = {'trunk.0.dense.weight': (512, 784), 'trunk.0.dense.bias': (512,), 'trunk.2.dense.weight': (256, 512),
        'trunk.4.dense.weight': (10, 256), 'trunk.4.dense.bias': (10,)}
for name, shape in want.items():
    assert w[name].shape == shape, (name, w[name].shape)
x, y = np.load(f'{data}/test-f32.npy').astype(np.float64), np.load(f'{data}/test-y.npy')
h = np.maximum(x @ w['trunk.0.dense.weight'].T + w['trunk.0.dense.bias'], 0)
h = np.maximum(h @ w['trunk.2.dense.weight'].T + w['trunk.2.dense.bias'], 0)
z = h @ w['trunk.4.dense.weight'].T + w['trunk.4.dense.bias']
z -= z.max(1, keepdims=True)
loss = float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))
ev = json.loads(open(f'{work}/eval.json').read().strip().splitlines()[-1])
assert abs(loss - ev['loss']) < 1e-4 * abs(ev['loss']), (loss, ev['loss'])
print(f'NumPy loss {loss:.6f}, dptrain eval {ev["loss"]:.6f}')
EOF
then ok "exported weights load in NumPy with the layers' shapes; NumPy's test loss equals eval's ($(tail -n 1 "$WORK/numpy.out"))"
else fail "NumPy check of the exported weights" "$WORK/numpy.out"; fi

# ---------------------------------------------------------------- bad files
# bad NAME TRAIN_X TRAIN_Y PATTERN [more --set ...]: exit 2, one error line
# naming the file and matching PATTERN
bad() {
  local name=$1 x=$2 y=$3 pattern=$4; shift 4
  run_ranks 2 "$WORK/bad-$name.out" train "${common[@]}" --set data.train_images="$x" \
    --set data.train_labels="$y" --set data.test_images=test-f32.npy --set data.test_labels=test-y.npy "$@"
  expect_status "bad $name: exit 2" 2 "$WORK/bad-$name.out"
  expect_count "bad $name: one error line" '^dptrain: error:' "$WORK/bad-$name.out" 1
  expect_grep "bad $name: names the file and the problem" "^dptrain: error: .*$pattern" "$WORK/bad-$name.out"
}
bad truncated truncated.npy test-y.npy "$D/truncated.npy: truncated: the .npy header declares 784000 elements"
bad fortran fortran.npy test-y.npy "$D/fortran.npy: .*Fortran order"
bad big-endian bigendian.npy test-y.npy "$D/bigendian.npy: big-endian"
bad int-features int-features.npy test-y.npy "$D/int-features.npy: features of dtype '<i4' are not supported"
bad negative-label test-f32.npy negative-label.npy "$D/negative-label.npy: label -1 of sample 700"
bad short-labels test-f32.npy short-labels.npy "test-f32.npy holds 1000 samples but $D/short-labels.npy holds 999 labels"
bad garbage garbage.npy test-y.npy "$D/garbage.npy: not a .npy file"
bad missing no-such-file.npy test-y.npy "cannot open $D/no-such-file.npy"
bad csv-cell bad-cell.csv "" "$D/bad-cell.csv:42: column 6: '0.5x' is not a finite number"
bad csv-two-labels train.csv train-y.npy "$D/train.csv: a CSV file with a label column .* one source of labels"
bad csv-label-name train.csv "" "label_column = target: no such column" --set data.label_column=target
finish
