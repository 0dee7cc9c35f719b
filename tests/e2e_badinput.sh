#!/usr/bin/env bash
# End to end: bad input of every kind, on 2 ranks. Each case must give
#   - exit status 2 (bad input),
#   - exactly one "dptrain: error:" line, naming the file (config, data file,
#     checkpoint, directory) and the problem,
#   - every rank gone within 5 s (the whole mpirun, timed; no live dptrain
#     process afterwards),
#   - no partial output: no metrics, diagnostics or checkpoint file and no
#     *.tmp.* file made by the failed run.
# Cases: config (unknown section and key, typos, bad numbers, out of range,
# missing required key, duplicate key, empty file, binary garbage, huge
# numbers, layers that do not fit the data); data (missing file, wrong magic,
# truncated, corrupt gzip, image/label count mismatch, data that does not fit
# the model); checkpoint for --resume (missing, not a checkpoint, truncated,
# one flipped bit, other precision, other model); unwritable checkpoint
# directory, metrics and diagnostics files; a file-size limit while writing a
# checkpoint (the previous checkpoint stays intact).
# (e2e_cli.sh has the first bad-input checks: a key typo, [trian], a missing
# lr, --set out of range, a missing config or data file, a cut gzip, 5
# outputs for 10 classes; they are not repeated here.)
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

fm=/usr/share/datasets/fashion-mnist
if [[ ! -f $fm/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $fm missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
DPTRAIN=$(readlink -f "$DPTRAIN")
export DPTRAIN
# a rank must fail a write past a file-size limit, not die of SIGXFSZ: dptrain
# ignores it; mpirun must not run under the limit (Open MPI's shared memory
# would hit it), so the limit is set by a wrapper around dptrain alone
limit_blocks=64 # KiB: a run's metrics fit, a checkpoint of the model below does not

# ---------------------------------------------------------------- inputs
D=$WORK/data C=$WORK/cfg K=$WORK/ckpts L=$WORK/logs RUN=$WORK/run
mkdir -p "$D" "$C" "$K" "$L"

be32() { # N -> 4 bytes, big-endian
  printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))"
  printf "\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"
}
# idx_images SRC.gz N ROWS COLS OUT: the first N images of SRC (28 x 28),
# the first ROWS*COLS bytes of each block, as an IDX file of N x ROWS x COLS
idx_images() {
  { printf '\x00\x00\x08\x03'; be32 "$2"; be32 "$3"; be32 "$4"
    zcat "$1" 2>/dev/null | tail -c +17 | head -c $(($2 * $3 * $4)); } >"$5"
}
idx_labels() { # SRC.gz N OUT
  { printf '\x00\x00\x08\x01'; be32 "$2"; zcat "$1" 2>/dev/null | tail -c +9 | head -c "$2"; } >"$3"
}
idx_images "$fm/train-images-idx3-ubyte.gz" 512 28 28 "$D/train-images"
gzip -n -c "$D/train-images" >"$D/train-images.gz"
idx_labels "$fm/train-labels-idx1-ubyte.gz" 512 "$D/train-labels"
idx_images "$fm/t10k-images-idx3-ubyte.gz" 256 28 28 "$D/test-images"
idx_labels "$fm/t10k-labels-idx1-ubyte.gz" 256 "$D/test-labels"
if [[ $(stat -c %s "$D/train-images") -ne $((16 + 512 * 784)) || $(stat -c %s "$D/test-labels") -ne $((8 + 256)) ]]; then
  echo "FAIL - could not make the small IDX files"; exit 1
fi

# flip_bit FILE OFFSET: xor one byte with 0x04 in place
flip_bit() {
  local byte; byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((byte ^ 4)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# data damage
{ printf '\x89PNG'; tail -c +5 "$D/train-images"; } >"$D/magic-images"                  # wrong magic
head -c $((16 + 300 * 784 + 100)) "$D/train-images" >"$D/cut-images"                     # truncated
size=$(stat -c %s "$D/train-images.gz")
cp "$D/train-images.gz" "$D/flip-images.gz"; flip_bit "$D/flip-images.gz" $((size / 2))  # in the deflate data
cp "$D/train-images.gz" "$D/crc-images.gz"; flip_bit "$D/crc-images.gz" $((size - 8))    # in gzip's CRC-32
idx_images "$fm/t10k-images-idx3-ubyte.gz" 256 14 14 "$D/test-images-14x14"              # another image size
{ head -c 8 "$D/train-labels"; printf '\x0c'; tail -c +10 "$D/train-labels"; } >"$D/labels-up-to-12"

# the base config: every output inside $RUN, diagnostics on (their file is
# opened at the start), a checkpoint every 40 steps and at the end
cat >"$C/base.ini" <<EOF
[data]
dir          = $D
train_images = train-images.gz
train_labels = train-labels
test_images  = test-images
test_labels  = test-labels
[model]
layers = 32 relu, 10
[train]
epochs     = 5
batch_size = 16
[optim]
method = momentum
lr     = 0.05
[diagnostics]
every = 1000
file  = $RUN/diagnostics.jsonl
[checkpoint]
dir   = $RUN/ck
every = 40
[log]
progress = lines
every    = 1000
metrics  = $RUN/metrics.jsonl
EOF

# variant NAME SED-SCRIPT: $C/NAME.ini from the base config
variant() { sed -e "$2" "$C/base.ini" >"$C/$1.ini"; }

# ---------------------------------------------------------------- the check
# this test's dptrain processes that still live (every run's arguments name a
# file under $WORK; other jobs may run the same binary on the machine)
live_ranks() { ps -eo stat=,args= | awk -v bin="$DPTRAIN" -v w="$WORK/" '$1 !~ /^Z/ && $2 == bin && index($0, w)' | wc -l; }

# bad NAME PATTERN ARGS... : dptrain ARGS on 2 ranks in an empty $RUN must fail
# as bad input with one message matching PATTERN, quickly, leaving nothing
bad() {
  local name=$1 pattern=$2; shift 2
  local out="$L/${name//[^A-Za-z0-9_.-]/_}" problems=() t0 t1 ms n left
  rm -rf "$RUN"; mkdir -p "$RUN"
  pushd "$RUN" >/dev/null
  t0=$(date +%s%N)
  run_ranks 2 "$out" "$@"
  t1=$(date +%s%N)
  popd >/dev/null
  ms=$(((t1 - t0) / 1000000))
  [[ $status -eq 2 ]] || problems+=("exit $status, wanted 2")
  n=$(grep -c '^dptrain: error:' "$out")
  [[ $n -eq 1 ]] || problems+=("$n error lines, wanted 1")
  grep -Eq -- "^dptrain: error: .*$pattern" "$out" || problems+=("no error line matches /$pattern/")
  ((ms < 5000)) || problems+=("took $ms ms, wanted < 5000")
  n=$(live_ranks)
  [[ $n -eq 0 ]] || problems+=("$n dptrain processes still running")
  left=$(cd "$RUN" && find . -mindepth 1 | sort | tr '\n' ' ')
  [[ -z $left ]] || problems+=("left behind: $left")
  left=$(find "$WORK" -name '*.tmp.*' | tr '\n' ' ')
  [[ -z $left ]] || problems+=("temporary files: $left")
  if ((${#problems[@]} == 0)); then
    ok "$name (exit 2, one message, $(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10))) s, nothing left)"
  else
    local IFS=';'
    fail "$name: ${problems[*]}" "$out"
  fi
}

base=("$C/base.ini")

# ---------------------------------------------------------------- config
variant unknown-section 's/^\[log\]/[scheduler]\nkind = cosine\n[log]/'
bad "config: unknown section" "unknown-section\.ini:[0-9]+: section \[scheduler\] is unknown" train "$C/unknown-section.ini"
variant unknown-key 's/^batch_size = 16/batch_size = 16\ncolour = blue/'
bad "config: unknown key" "unknown-key\.ini:[0-9]+: \[train\] key 'colour' is unknown; keys of \[train\]" train "$C/unknown-key.ini"
variant typo-section 's/^\[log\]/[lgo]/'
bad "config: typo in a section name" "typo-section\.ini:[0-9]+: section \[lgo\] is unknown; did you mean \[log\]\?" train "$C/typo-section.ini"
variant typo-value 's/^method = momentum/method = momentun/'
bad "config: typo in a value" "typo-value\.ini:[0-9]+: \[optim\] method = momentun: not an allowed value.*did you mean 'momentum'" train "$C/typo-value.ini"
variant bad-real 's/^lr     = 0.05/lr     = 0.0.5/'
bad "config: bad real number" "bad-real\.ini:[0-9]+: \[optim\] lr = 0\.0\.5: not a real number" train "$C/bad-real.ini"
variant bad-integer 's/^batch_size = 16/batch_size = 16x/'
bad "config: bad integer" "bad-integer\.ini:[0-9]+: \[train\] batch_size = 16x: not an integer" train "$C/bad-integer.ini"
variant out-of-range 's/^batch_size = 16/batch_size = 0/'
bad "config: out of range" "out-of-range\.ini:[0-9]+: \[train\] batch_size = 0: out of range; allowed: an integer in 1\.\." train "$C/out-of-range.ini"
variant missing-layers '/^layers = /d'
bad "config: missing required key" "missing-layers\.ini: required key \[model\] layers is missing" train "$C/missing-layers.ini"
variant duplicate 's/^lr     = 0.05/lr = 0.05\nlr = 0.1/'
bad "config: duplicate key" "duplicate\.ini:[0-9]+: \[optim\] lr is given twice \(lines [0-9]+ and [0-9]+\)" train "$C/duplicate.ini"
: >"$C/empty.ini"
bad "config: empty file" "empty\.ini.* empty" train "$C/empty.ini"
printf '\n  \n\t\n' >"$C/blank.ini"
bad "config: only blank lines" "blank\.ini.* empty" train "$C/blank.ini"
head -c 4096 "$fm/train-images-idx3-ubyte.gz" >"$C/garbage.ini"
bad "config: binary garbage (gzip bytes)" "garbage\.ini.* not a text file" train "$C/garbage.ini"
bad "config: a data file given as the config" "train-labels.* not a text file" train "$D/train-labels"
variant huge-integer 's/^epochs     = 5/epochs = 99999999999999999999999/'
bad "config: huge integer" "huge-integer\.ini:[0-9]+: \[train\] epochs = 99999999999999999999999: out of range" train "$C/huge-integer.ini"
variant huge-real 's/^lr     = 0.05/lr = 1e999/'
bad "config: huge real" "huge-real\.ini:[0-9]+: \[optim\] lr = 1e999: not a finite number" train "$C/huge-real.ini"
variant huge-layer 's/^layers = .*/layers = 4000000000 relu, 10/'
bad "config: huge layer width" "huge-layer\.ini:[0-9]+: \[model\] layers = .*units '4000000000' is not an integer in 1\.\." train "$C/huge-layer.ini"
variant big-kernel 's/^layers = .*/layers = conv 8 30 relu, 10/'
bad "config: conv kernel larger than the images" \
  "big-kernel\.ini: \[model\] layers do not fit the data.*train-images\.gz.*1x28x28.*kernel height 30 .*exceeds input height 28" \
  train "$C/big-kernel.ini"
variant big-pool 's/^layers = .*/layers = conv 4 3 relu, maxpool 27, 10/'
bad "config: pooling window larger than the feature map" \
  "big-pool\.ini: \[model\] layers do not fit the data.*train-images\.gz.*window height 27 exceeds input height 26" \
  train "$C/big-pool.ini"
variant nine-outputs 's/^layers = .*/layers = 32 relu, 9/'
bad "config: a head with fewer outputs than the classes" \
  "nine-outputs\.ini: \[model\] layers do not fit the data.*train-labels.*labels go up to 9 .*9 outputs" \
  train "$C/nine-outputs.ini"

# ---------------------------------------------------------------- data
bad "data: missing file" "cannot open $D/no-such-labels: No such file or directory" \
  train "${base[@]}" --set data.test_labels=no-such-labels
bad "data: wrong magic" "$D/magic-images: not an IDX file \(magic 89 50 4e 47" \
  train "${base[@]}" --set data.train_images=magic-images
bad "data: truncated IDX" "$D/cut-images: truncated: the header declares 401408 elements, the file holds 235300" \
  train "${base[@]}" --set data.train_images=cut-images
bad "data: corrupt gzip (a flipped bit in the deflate data)" "$D/flip-images\.gz: corrupt gzip data" \
  train "${base[@]}" --set data.train_images=flip-images.gz
bad "data: corrupt gzip (a flipped bit in its CRC-32)" "$D/crc-images\.gz: corrupt gzip data \(incorrect data check\)" \
  train "${base[@]}" --set data.train_images=crc-images.gz
bad "data: image/label count mismatch" "$D/train-images\.gz holds 512 images but $D/test-labels holds 256 labels" \
  train "${base[@]}" --set data.train_labels=test-labels
bad "data: test images of another size than the training images" \
  "$D/test-images-14x14.*1x14x14.*$D/train-images\.gz.*1x28x28" \
  train "${base[@]}" --set data.test_images=test-images-14x14
bad "data: labels beyond the model's outputs" \
  "base\.ini: \[model\] layers do not fit the data.*labels-up-to-12.*labels go up to 12 .*10 outputs" \
  train "${base[@]}" --set data.train_labels=labels-up-to-12

# ---------------------------------------------------------------- checkpoints
# a good checkpoint at step 40 (the run ends there)
rm -rf "$RUN"; mkdir -p "$RUN"
run_ranks 2 "$L/make-checkpoint" train "${base[@]}" --set train.max_steps=40
good="$RUN/ck/ckpt-000000000040.safetensors"
if [[ $status -eq 0 && -f $good ]]; then ok "a good checkpoint at step 40"; else fail "making a checkpoint: exit $status" "$L/make-checkpoint"; fi
cp "$good" "$K/good.safetensors"
size=$(stat -c %s "$K/good.safetensors")
head -c $((size - 1000)) "$K/good.safetensors" >"$K/truncated.safetensors"
cp "$K/good.safetensors" "$K/flipped.safetensors"; flip_bit "$K/flipped.safetensors" $((size - 1000))
cp "$C/base.ini" "$K/not-a-checkpoint.safetensors"

bad "checkpoint: missing" "checkpoint $K/missing\.safetensors: cannot open: No such file or directory" \
  train "${base[@]}" --resume "$K/missing.safetensors"
bad "checkpoint: not a checkpoint" "checkpoint $K/not-a-checkpoint\.safetensors: not a checkpoint" \
  train "${base[@]}" --resume "$K/not-a-checkpoint.safetensors"
bad "checkpoint: truncated" "checkpoint $K/truncated\.safetensors: truncated: the header describes $size bytes, the file has $((size - 1000))" \
  train "${base[@]}" --resume "$K/truncated.safetensors"
bad "checkpoint: one flipped bit" "checkpoint $K/flipped\.safetensors: CRC mismatch in tensor '[a-z._]+'" \
  train "${base[@]}" --resume "$K/flipped.safetensors"
bad "checkpoint: another model" "checkpoint $K/good\.safetensors is of another model: it holds .*dense 32.*the config builds .*dense 16" \
  train "${base[@]}" --set "model.layers=16 relu, 10" --resume "$K/good.safetensors"

# another precision: DPT_OTHER_PRECISION_DPTRAIN, else the sibling build
# (build/test-single <-> build/test-double, as tests/run.sh makes them)
mine=$("$DPTRAIN" --version | grep -Eo '(single|double) precision' | cut -d' ' -f1)
other_precision=$([[ $mine == single ]] && echo double || echo single)
other=${DPT_OTHER_PRECISION_DPTRAIN:-}
if [[ -z $other ]]; then
  dir=$(dirname "$DPTRAIN")
  other="$(dirname "$dir")/$(basename "$dir" | sed "s/$mine/$other_precision/")/dptrain"
fi
if [[ -x $other ]] && "$other" --version 2>/dev/null | grep -q "($other_precision precision)"; then
  rm -rf "$RUN"; mkdir -p "$RUN"
  DPTRAIN=$(readlink -f "$other") run_ranks 2 "$L/make-other" train "${base[@]}" --set train.max_steps=40
  cp "$good" "$K/other-precision.safetensors" 2>/dev/null
  if [[ $status -eq 0 && -f $K/other-precision.safetensors ]]; then
    bad "checkpoint: $other_precision precision" \
      "checkpoint $K/other-precision\.safetensors holds $other_precision precision; this dptrain is built for $mine" \
      train "${base[@]}" --resume "$K/other-precision.safetensors"
  else
    fail "making a $other_precision-precision checkpoint with $other: exit $status" "$L/make-other"
  fi
else
  echo "skip - checkpoint of the other precision: no $other_precision-precision dptrain (tried $other; set DPT_OTHER_PRECISION_DPTRAIN)"
fi

# ---------------------------------------------------------------- outputs that cannot be written
# (as root, permissions do not stop writes: a directory under a regular
# file, or under /proc, fails for everyone)
: >"$WORK/afile"
bad "checkpoint dir under a regular file" "$WORK/afile/ck.*\[checkpoint\] dir.*Not a directory" \
  train "${base[@]}" --set checkpoint.dir="$WORK/afile/ck"
bad "checkpoint dir is a regular file" "cannot write checkpoints into $WORK/afile \(\[checkpoint\] dir\): it is not a directory" \
  train "${base[@]}" --set checkpoint.dir="$WORK/afile"
bad "checkpoint dir under /proc" "/proc/dptrain-ck-$$.*\[checkpoint\] dir" \
  train "${base[@]}" --set checkpoint.dir="/proc/dptrain-ck-$$"
bad "checkpoint dir whose parent does not exist" "$RUN/no/ck \(\[checkpoint\] dir\): cannot create the directory: No such file or directory \(dptrain creates the last level only; $RUN/no does not exist\)" \
  train "${base[@]}" --set checkpoint.dir="$RUN/no/ck"
bad "metrics file under a regular file" "cannot write the metrics file $WORK/afile/metrics\.jsonl \(\[log\] metrics\): Not a directory" \
  train "${base[@]}" --set log.metrics="$WORK/afile/metrics.jsonl"
bad "metrics file under /proc" "cannot write the metrics file /proc/dptrain-metrics-$$\.jsonl \(\[log\] metrics\)" \
  train "${base[@]}" --set log.metrics="/proc/dptrain-metrics-$$.jsonl"
bad "diagnostics file under a regular file" "cannot write the diagnostics file $WORK/afile/diagnostics\.jsonl \(\[diagnostics\] file\): Not a directory" \
  train "${base[@]}" --set diagnostics.file="$WORK/afile/diagnostics.jsonl"

# ---------------------------------------------------------------- a full disk
# resume from the step-40 checkpoint under a file-size limit smaller than a
# checkpoint: the one at step 80 cannot be written
cat >"$WORK/dptrain-limited" <<EOF
#!/usr/bin/env bash
ulimit -f $limit_blocks || exit 1
exec "$DPTRAIN" "\$@"
EOF
chmod +x "$WORK/dptrain-limited"
rm -rf "$RUN"; mkdir -p "$RUN/ck"
cp "$K/good.safetensors" "$RUN/ck/ckpt-000000000040.safetensors"
t0=$(date +%s%N)
# (TCP between the ranks: Open MPI's shared-memory segments would meet the limit too)
(cd "$RUN" && DPTRAIN=$WORK/dptrain-limited OMPI_MCA_btl=self,tcp run_ranks 2 "$L/disk-full" train "${base[@]}" \
  --set train.max_steps=80 --resume auto; exit $status)
status=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_status "file-size limit during a checkpoint" 2 "$L/disk-full"
expect_count "one message" '^dptrain: error:' "$L/disk-full" 1
expect_grep "it names the checkpoint and the file-size limit" \
  "^dptrain: error: checkpoint $RUN/ck/ckpt-000000000080\.safetensors not written: .*(file size limit|disk full).*previous checkpoint.* intact" "$L/disk-full"
if ((ms < 5000)); then ok "the job ended in $ms ms (40 steps of training included)"; else fail "the job took $ms ms" "$L/disk-full"; fi
[[ $(live_ranks) -eq 0 ]] && ok "no dptrain process left" || fail "dptrain processes left"
if cmp -s "$K/good.safetensors" "$RUN/ck/ckpt-000000000040.safetensors"; then
  ok "the step-40 checkpoint is intact (byte for byte)"
else
  fail "the step-40 checkpoint changed"
fi
left=$(find "$RUN" -name '*.tmp.*' -o -name 'ckpt-000000000080*' | tr '\n' ' ')
[[ -z $left ]] && ok "no temporary or partial checkpoint left" || fail "left behind: $left"
# the metrics file of the resumed run records the steps it trained: whole lines only
if [[ ! -f $RUN/metrics.jsonl ]] || ! grep -qv '^{.*}$' "$RUN/metrics.jsonl"; then
  ok "the metrics file holds whole records only"
else
  fail "the metrics file has a partial line" "$RUN/metrics.jsonl"
fi
(cd "$RUN" && run_ranks 2 "$L/after-full" train "${base[@]}" --set train.max_steps=80 --resume auto; exit $status)
status=$?
expect_status "without the limit, the same resume succeeds" 0 "$L/after-full"
expect_grep "from the intact step-40 checkpoint" "resuming from $RUN/ck/ckpt-000000000040\.safetensors at step 40" "$L/after-full"

finish
