#!/usr/bin/env bash
# End to end for checkpoints and what a shared cluster does to a job:
#   - exact resume: a run stopped by a signal at step s and resumed with
#     --resume auto ends with the same bytes (parameters, optimizer state,
#     batch-norm statistics) as an uninterrupted run, for SGD, Adam with
#     sharded state, dropout and batch norm;
#   - resuming on another rank count works and warns;
#   - --resume auto skips a corrupt newest checkpoint, saying so;
#   - SIGTERM to one rank and SIGUSR1 to mpirun stop every rank with a
#     checkpoint (exit 3); a storm of signals during the checkpoint does not
#     corrupt it;
#   - kill -9 of one rank ends the job within 10 s, leaves no process, and
#     the newest checkpoint verifies and resumes;
#   - a second-order solve (L-BFGS) stops on SIGTERM between iterations with
#     a checkpoint of its iterate and resumes from it;
#   - the stall watchdog and the replica check abort with the phase and step.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
DPTRAIN=$(readlink -f "$DPTRAIN")
export DPTRAIN

steps=160
base=(--set train.max_steps=$steps --set train.batch_size=32 --set log.progress=lines --set log.every=1000
      --set log.metrics= --set checkpoint.every_seconds=0 --set checkpoint.dir=ck)

# in_dir DIR RANKS OUT ARGS... : run_ranks with DIR as the working directory
# (the same relative checkpoint dir in every run keeps the configs, and so
# the checkpoint files, byte-comparable)
in_dir() {
  local dir=$1; shift
  mkdir -p "$dir"
  pushd "$dir" >/dev/null
  run_ranks "$@"
  popd >/dev/null
}

final="ck/ckpt-000000000$steps.safetensors"

# ---- exact resume, four configurations
config_args() { # NAME -> extra=(...)
  case $1 in
    sgd) extra=(--set "model.layers=128 relu, 10" --set optim.method=sgd --set optim.lr=0.1) ;;
    adam_sharded) extra=(--set "model.layers=128 relu, 10" --set optim.method=adam --set optim.lr=0.001
                         --set optim.shard_state=true) ;;
    dropout) extra=(--set "model.layers=128 relu, dropout 0.7, 64 relu, dropout 0.8, 10") ;;
    batchnorm) extra=(--set "model.layers=128, batchnorm, relu, 10" --set model.bn_sync=false) ;;
  esac
}
for name in sgd adam_sharded dropout batchnorm; do
  config_args "$name"
  in_dir "$WORK/$name/whole" 2 "$WORK/$name.whole" train "${base[@]}" "${extra[@]}"
  expect_status "$name: uninterrupted run" 0 "$WORK/$name.whole"
  DPTRAIN_INJECT_SIGNAL=70:1:15 in_dir "$WORK/$name/split" 2 "$WORK/$name.first" train "${base[@]}" "${extra[@]}"
  expect_status "$name: SIGTERM on rank 1 at step 70 stops the job" 3 "$WORK/$name.first"
  expect_grep "$name: checkpoint at the stop" "checkpoint at step 70 \(signal\)" "$WORK/$name.first"
  in_dir "$WORK/$name/split" 2 "$WORK/$name.second" train "${base[@]}" "${extra[@]}" --resume auto
  expect_status "$name: resumed run" 0 "$WORK/$name.second"
  expect_grep "$name: resumed at step 70" "resuming from ck/ckpt-000000000070.safetensors at step 70" "$WORK/$name.second"
  if cmp -s "$WORK/$name/whole/$final" "$WORK/$name/split/$final"; then
    ok "$name: stopped and resumed = uninterrupted, bitwise (whole checkpoint file)"
  else
    fail "$name: final checkpoints differ" "$WORK/$name.second"
  fi
done

# ---- another rank count: the sharded Adam state is repartitioned, with a warning
cp -r "$WORK/adam_sharded/split" "$WORK/three"
rm -f "$WORK/three/$final"
extra=(--set "model.layers=128 relu, 10" --set optim.method=adam --set optim.lr=0.001 --set optim.shard_state=true)
in_dir "$WORK/three" 3 "$WORK/three.out" train "${base[@]}" "${extra[@]}" --resume ck/ckpt-000000000070.safetensors
expect_status "resume a 2-rank checkpoint on 3 ranks" 0 "$WORK/three.out"
expect_grep "warns that the trajectory differs" "written by 2 ranks and this run has 3: .*trajectory.* differs" "$WORK/three.out"

# ---- --resume auto skips a corrupt newest checkpoint
mkdir -p "$WORK/corrupt"
in_dir "$WORK/corrupt" 2 "$WORK/corrupt.make" train "${base[@]}" --set checkpoint.every=40 \
  --set "model.layers=64 relu, 10"
expect_status "checkpoints every 40 steps" 0 "$WORK/corrupt.make"
newest="$WORK/corrupt/$final"
size=$(stat -c %s "$newest")
printf '\xff' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc status=none
in_dir "$WORK/corrupt" 2 "$WORK/corrupt.resume" train "${base[@]}" --set "model.layers=64 relu, 10" \
  --set train.max_steps=200 --resume auto
expect_status "resume past a corrupt checkpoint" 0 "$WORK/corrupt.resume"
expect_grep "the corrupt one is named" "warning: checkpoint ck/ckpt-000000000160.safetensors: .*(CRC|corrupt).*previous" "$WORK/corrupt.resume"
expect_grep "the previous one is used" "resuming from ck/ckpt-000000000120.safetensors at step 120" "$WORK/corrupt.resume"

# ---- real signals: SIGTERM to one rank, SIGUSR1 to mpirun; a storm during the checkpoint
long=(--set train.max_steps=100000 --set train.batch_size=32 --set log.progress=none --set log.metrics=
      --set checkpoint.every_seconds=0 --set checkpoint.dir=ck --set "model.layers=256 relu, 10")
# start_bg DIR : dptrain on 2 ranks in the background in DIR; sets $pid (mpirun)
start_bg() {
  mkdir -p "$1"
  (cd "$1" && exec timeout -k 10 120 bash "$TOP/launch/local.sh" -n 2 train "${long[@]}") >"$1.out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "gradient reduction" "$1.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
}
# this job's ranks only (other jobs may run on the machine): the children of
# its mpirun, itself the child of timeout ($pid)
rank_pids() { local m; m=$(pgrep -P "$pid" -x mpirun) && pgrep -P "$m" -x dptrain; }

start_bg "$WORK/term"
kill -TERM "$(rank_pids | tail -1)" || fail "no rank found to signal"
wait "$pid"; status=$?
expect_status "SIGTERM to one rank" 3 "$WORK/term.out"
expect_grep "every rank stopped at one step with a checkpoint" "^stopped by a signal after step [0-9]+" "$WORK/term.out"

start_bg "$WORK/usr1"
for ((i = 0; i < 40; i++)); do kill -USR1 "$(pgrep -P "$pid" -x mpirun)" 2>/dev/null; sleep 0.05; done
wait "$pid"; status=$?
expect_status "SIGUSR1 storm to mpirun" 3 "$WORK/usr1.out"
in_dir "$WORK/usr1" 2 "$WORK/usr1.check" train "${long[@]}" --set train.max_steps=1 --resume auto
if grep -Eq "resuming from ck/ckpt-[0-9]+.safetensors" "$WORK/usr1.check" && ! grep -q "warning: checkpoint" "$WORK/usr1.check"; then
  ok "the checkpoint written under a signal storm verifies"
else
  fail "checkpoint after a signal storm" "$WORK/usr1.check"
fi

# ---- kill -9 of one rank: the job ends within 10 s, no process is left, the checkpoint survives
long+=(--set checkpoint.every=200)
start_bg "$WORK/kill"
for _ in $(seq 100); do ls "$WORK/kill/ck/"ckpt-*.safetensors >/dev/null 2>&1 && break; sleep 0.1; done
ranks=$(rank_pids)
victim=$(echo "$ranks" | tail -1)
t0=$(date +%s.%N)
kill -KILL "$victim"
wait "$pid"; status=$?
elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
if [[ $status -ne 0 ]] && (( $(echo "$elapsed < 10" | bc) )); then
  ok "kill -9 of a rank ends the job in $(printf %.1f "$elapsed") s (exit $status)"
else
  fail "kill -9: exit $status after $elapsed s" "$WORK/kill.out"
fi
sleep 1
# (a killed rank may stay a zombie when PID 1 of a container does not reap
# orphans: it is gone, only its exit status waits; live ones are not)
live=$(for r in $ranks; do ps -p "$r" -o pid=,stat= 2>/dev/null; done | awk '$2 !~ /^Z/ { print $1 }')
if [[ -n "$ranks" && -z "$live" ]]; then ok "no rank of the job left ($(echo $ranks))"; else fail "ranks left after kill -9: '$live' of '$ranks'"; fi
in_dir "$WORK/kill" 2 "$WORK/kill.resume" train "${long[@]}" --set train.max_steps=1 --resume auto
if grep -Eq "resuming from ck/ckpt-[0-9]+.safetensors" "$WORK/kill.resume" && ! grep -q "warning: checkpoint" "$WORK/kill.resume"; then
  ok "the newest checkpoint is intact and resumes"
else
  fail "resume after kill -9" "$WORK/kill.resume"
fi

# ---- a second-order solve: SIGTERM between iterations, checkpoint, resume from the iterate
mkdir -p "$WORK/solve"
(cd "$WORK/solve" && exec timeout -k 10 120 bash "$TOP/launch/local.sh" -n 2 train \
   "$TOP/configs/fashion-softmax-lbfgs.ini" --set checkpoint.dir=ck --set log.metrics= \
   --set log.progress=lines) >"$WORK/solve.out" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "^iter 5:" "$WORK/solve.out" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$(rank_pids | head -1)" || fail "no solver rank found to signal"
wait "$pid"; status=$?
expect_status "lbfgs stopped by SIGTERM on rank 0" 3 "$WORK/solve.out"
stopped_at=$(sed -n 's/^stopped by a signal after solver iteration \([0-9]*\) .*/\1/p' "$WORK/solve.out")
last_f=$(sed -n 's/^iter [0-9]*: f \([0-9.e+-]*\) .*/\1/p' "$WORK/solve.out" | tail -1)
in_dir "$WORK/solve" 2 "$WORK/solve.resume" train "$TOP/configs/fashion-softmax-lbfgs.ini" \
  --set checkpoint.dir=ck --set log.metrics= --set log.progress=lines --set optim.max_iter=2 --resume auto
expect_status "lbfgs resumed" 0 "$WORK/solve.resume"
first_f=$(sed -n 's/^iter 1: f \([0-9.e+-]*\) .*/\1/p' "$WORK/solve.resume")
if [[ -n "$stopped_at" ]] && grep -q "resuming from ck/ckpt-0*$stopped_at.safetensors at step $stopped_at" "$WORK/solve.resume" &&
   awk -v a="$first_f" -v b="$last_f" 'BEGIN { exit !(a != "" && a <= b) }'; then
  ok "the solve resumes from its iterate (step $stopped_at, f $last_f -> $first_f)"
else
  fail "solve resume: stopped at '$stopped_at', f '$last_f' then '$first_f'" "$WORK/solve.resume"
fi

# ---- the stall watchdog and the replica check
t0=$(date +%s)
DPTRAIN_INJECT_STALL=30:1:60 run_ranks 2 "$WORK/stall" train "${base[@]}" --set checkpoint.dir= \
  --set reliability.watchdog_seconds=3
elapsed=$(( $(date +%s) - t0 ))
if [[ $status -ne 0 && $elapsed -lt 30 ]]; then ok "a stalled rank ends the job in ${elapsed} s (exit $status)"; else fail "stall: exit $status after $elapsed s" "$WORK/stall"; fi
expect_grep "the watchdog names the phase and step" "error: rank 0: no progress for [0-9]+ s in the gradient reduction at step 30 \(\[reliability\] watchdog_seconds = 3\)" "$WORK/stall"
# replicated update: a sharded one all-gathers every parameter each step,
# which makes a corrupted replica equal to the others again
DPTRAIN_INJECT_CORRUPT=25:1 run_ranks 2 "$WORK/replica" train "${base[@]}" --set checkpoint.dir= \
  --set reliability.replica_check=20 --set optim.shard_state=false
expect_status "a corrupted replica" 1 "$WORK/replica"
expect_count "one message naming the step" "error: step 40: replica check failed: parameters differ across ranks" "$WORK/replica" 1

finish
