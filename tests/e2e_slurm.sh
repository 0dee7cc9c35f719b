#!/usr/bin/env bash
# End to end through a REAL Slurm scheduler (a private single-node cluster,
# tests/slurm/cluster.sh): the project's own batch scripts in launch/slurm/
# are submitted with sbatch, preempted, requeued and resumed.
#   - two jobs of 2 tasks: dptrain-1node.sbatch with srun --mpi=pmix, and
#     dptrain-multinode.sbatch (--nodes=1 here) with DPT_LAUNCHER=mpirun;
#   - each is preempted after its first logged steps by
#     `scancel --signal=USR1 --batch JOBID` (what --signal=B:USR1@120 does
#     before the time limit); the batch script forwards the signal, the ranks
#     checkpoint and exit 3, the script requeues the job;
#   - the job ran twice (Restarts=1, SLURM_RESTART_COUNT=1 in its log lines),
#     resumed from the checkpoint written at the stop, and completed (exit 0);
#     both runs appended to one output file (dptrain-%j.out, --open-mode=append);
#     its checkpoints are in checkpoints/JOBID of the submit directory;
#   - the final parameters and optimizer state equal those of an uninterrupted
#     2-rank run outside Slurm byte for byte (the checkpoints' tensors; their
#     metadata too, except the checkpoint directory in the stored config);
#   - after teardown no slurmctld, slurmd, slurmstepd, munged or dptrain
#     process of the test is left.
# Skipped (exit 77) only where the daemons cannot run: not root, the Slurm or
# munge packages missing (bash launch/install-deps.sh --tests), or ports
# 6817/6818 taken by another cluster; or without the Fashion-MNIST data.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi
DPTRAIN=$(readlink -f "$DPTRAIN")
export DPTRAIN
export OPENBLAS_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
pyexe=/usr/bin/python3   # the system one has NumPy (python3 on PATH may be a shim)

cluster=$TOP/tests/slurm/cluster.sh
BASE=$WORK/cluster
t_start=$(date +%s.%N)
elapsed() { printf %.1f "$(echo "$(date +%s.%N) - $t_start" | bc)"; }

# slurm and munge processes that were there before (another user's, zombies):
# the final check looks only at new ones
daemon_names='^(slurmctld|slurmd|slurmstepd|munged)$'
before=$(ps -eo pid=,comm= | awk -v re="$daemon_names" '$2 ~ re { print $1 }' | tr '\n' ' ')

ref_pid=
teardown() {
  # the reference run, if still going: its `timeout` ends mpirun and the ranks
  [[ -n "$ref_pid" ]] && kill -0 "$ref_pid" 2>/dev/null && pkill -TERM -P "$ref_pid"
  [[ -f "$BASE/slurm.conf" ]] && bash "$cluster" stop "$BASE" >"$WORK/stop.out" 2>&1
}
# always tear down: on any exit, and on the signals a timeout sends
trap 'teardown; rm -rf "$WORK"' EXIT
trap 'echo "e2e_slurm: interrupted"; exit 1' TERM INT HUP

bash "$cluster" start "$BASE" >"$WORK/start.out" 2>&1
rc=$?
if (( rc == 77 )); then
  echo "skipped: a Slurm cluster cannot run here: $(sed 's/^cluster: //' "$WORK/start.out" | tail -1)"
  exit 77
fi
if (( rc != 0 )); then fail "the test cluster starts" "$WORK/start.out"; finish; exit 1; fi
ok "a private Slurm cluster is up in $(elapsed) s ($(tail -1 "$WORK/start.out" | sed 's/^cluster: //'))"
export SLURM_CONF=$BASE/slurm.conf

steps=400
config=$TOP/configs/default.ini
args=(--set "train.max_steps=$steps" --set train.batch_size=32 --set log.progress=lines --set log.every=10
      --set log.metrics= --set checkpoint.every_seconds=0 --set checkpoint.at_end=true)
final=$(printf 'ckpt-%012d.safetensors' $steps)

# submit NAME SCRIPT [sbatch options...] : from $WORK/NAME as the submit
# directory (the batch script finds the repository through DPT_REPO); sets $jid
submit() {
  local name=$1 script=$2; shift 2
  mkdir -p "$WORK/$name"
  jid=$(cd "$WORK/$name" && DPT_REPO=$TOP timeout 20 sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 \
          --time=10 "$@" "$TOP/launch/slurm/$script" "$config" "${args[@]}" 2>"$WORK/$name.sbatch.err")
  if [[ "$jid" =~ ^[0-9]+$ ]]; then ok "$name: sbatch $script accepted (job $jid)"
  else fail "$name: sbatch $script" "$WORK/$name.sbatch.err"; jid=; fi
}
job_field() { # JOBID FIELD -> value from scontrol show job
  timeout 10 scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
# wait_steps NAME JOBID : until the job's output shows step 20 (training has
# begun, and the end is far: the signal takes ~0.15 s, 20-25 steps on a quiet
# machine, and 380 steps take >= 1.5 s); 60 s at most
wait_steps() {
  local out=$WORK/$1/dptrain-$2.out
  for _ in $(seq 600); do
    grep -Eq "step 20/[0-9]+ \(20/$steps\)" "$out" 2>/dev/null && return 0
    [[ $(job_field "$2" JobState) =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]] && return 1
    sleep 0.1
  done
  return 1
}
# wait_done JOBID : until the job has ended for good (after its requeue); 150 s at most
wait_done() {
  local state
  for _ in $(seq 1500); do
    state=$(job_field "$1" JobState)
    [[ "$state" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)$ ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---- two jobs at once (4 CPUs advertised): srun, and mpirun through the multi-node script
submit srun dptrain-1node.sbatch
job_srun=$jid
submit mpirun dptrain-multinode.sbatch --nodes=1 --export=ALL,DPT_LAUNCHER=mpirun
job_mpirun=$jid

for name in srun mpirun; do
  [[ $name == srun ]] && jid=$job_srun || jid=$job_mpirun
  [[ -n "$jid" ]] || continue
  out=$WORK/$name/dptrain-$jid.out
  if wait_steps "$name" "$jid"; then
    ok "$name: job $jid is running and has trained 20 steps ($(elapsed) s)"
  else
    fail "$name: job $jid did not reach step 20 (state $(job_field "$jid" JobState))" "$out"; continue
  fi
  if timeout 10 scancel --signal=USR1 --batch "$jid"; then ok "$name: preempted: scancel --signal=USR1 --batch $jid"
  else fail "$name: scancel --signal=USR1 --batch $jid"; fi
done

# the uninterrupted reference, outside Slurm, while the jobs wait for their requeue
mkdir -p "$WORK/ref"
(cd "$WORK/ref" && run_ranks 2 "$WORK/ref.out" train "$config" "${args[@]}" --set checkpoint.dir=ck; exit $status) &
ref_pid=$!

for name in srun mpirun; do
  [[ $name == srun ]] && jid=$job_srun || jid=$job_mpirun
  [[ -n "$jid" ]] || continue
  out=$WORK/$name/dptrain-$jid.out
  if wait_done "$jid"; then :; else fail "$name: job $jid not finished after 150 s (state $(job_field "$jid" JobState))" "$out"; continue; fi
  state=$(job_field "$jid" JobState) restarts=$(job_field "$jid" Restarts) exitcode=$(job_field "$jid" ExitCode)
  if [[ "$state" == COMPLETED && "$exitcode" == 0:0 ]]; then ok "$name: job $jid completed, exit 0 ($(elapsed) s)"
  else fail "$name: job $jid ended $state, exit code $exitcode" "$out"; fi
  if [[ "$restarts" == 1 ]]; then ok "$name: requeued once (scontrol: Restarts=1)"
  else fail "$name: Restarts=$restarts, wanted 1" "$out"; fi
  expect_grep "$name: the batch shell got USR1 and forwarded it" "job $jid \(restart 0\): USR1 received .*forwarding to the step" "$out"
  expect_grep "$name: the ranks checkpointed at the stop" "^checkpoint at step [0-9]+ \(signal\)" "$out"
  expect_grep "$name: the step exited with 3" "job $jid \(restart 0\): the step stopped after writing a checkpoint \(exit 3\)" "$out"
  expect_grep "$name: the script requeued the job" "job $jid \(restart 0\): requeueing job $jid \(scontrol requeue\)" "$out"
  expect_grep "$name: the rerun saw SLURM_RESTART_COUNT=1 and a checkpoint" "job $jid \(restart 1\): resuming: checkpoints in $WORK/$name/checkpoints/$jid, newest ckpt-" "$out"
  stop=$(sed -n 's/^checkpoint at step \([0-9]*\) (signal).*/\1/p' "$out" | head -1)
  if [[ -n "$stop" ]] && (( stop < steps )) &&
     grep -q "^resuming from $WORK/$name/checkpoints/$jid/$(printf 'ckpt-%012d' "$stop").safetensors at step $stop\$" "$out"; then
    ok "$name: resumed from the checkpoint of the stop (step $stop of $steps)"
  else
    fail "$name: no resume from the stop's checkpoint (step '$stop')" "$out"
  fi
  expect_grep "$name: the rerun finished" "job $jid \(restart 1\): training finished \(step exit 0\)" "$out"
  expect_count "$name: both runs in one output file (--open-mode=append)" "job $jid \(restart [01]\): start on " "$out" 2
  if [[ -f "$WORK/$name/checkpoints/$jid/$final" ]]; then ok "$name: final checkpoint in checkpoints/$jid (keyed by the job id)"
  else fail "$name: no $final in checkpoints/$jid" "$out"; fi
done

wait $ref_pid; status=$?   # bounded: run_ranks runs under timeout
ref_pid=
expect_status "uninterrupted reference run (2 ranks, mpirun, no Slurm)" 0 "$WORK/ref.out"

# same_checkpoint A B : every tensor byte for byte, and the metadata, except
# the header CRC, the config's checkpoint directory and so the config's hash
cat >"$WORK/compare.py" <<'EOF'
import json, struct, sys
import numpy as np

def read(path):
    blob = open(path, "rb").read()
    n, = struct.unpack_from("<Q", blob, 0)
    tensors = json.loads(blob[8:8 + n])
    meta = tensors.pop("__metadata__")
    data = blob[8 + n:]
    arrays = {}
    for name, t in tensors.items():
        b, e = t["data_offsets"]
        arrays[name] = (t["dtype"], t["shape"], data[b:e])
    return meta, arrays

(ma, ta), (mb, tb) = read(sys.argv[1]), read(sys.argv[2])
problems = []
if sorted(ta) != sorted(tb):
    problems.append("tensors %s vs %s" % (sorted(ta), sorted(tb)))
for name in sorted(set(ta) & set(tb)):
    (da, sa, ra), (db, sb, rb) = ta[name], tb[name]
    if (da, sa) != (db, sb):
        problems.append("%s: %s %s vs %s %s" % (name, da, sa, db, sb))
    elif ra != rb:
        x = np.frombuffer(ra, {"F64": "<f8", "F32": "<f4"}[da])
        y = np.frombuffer(rb, {"F64": "<f8", "F32": "<f4"}[db])
        problems.append("%s differs: %d of %d values, max |diff| %.3g"
                        % (name, int(np.sum(x != y)), x.size, float(np.max(np.abs(x - y)))))
def config_without_dir(text):
    out, section = [], ""
    for line in text.split("\n"):
        if line.startswith("["):
            section = line
        if not (section == "[checkpoint]" and line.startswith("dir =")):
            out.append(line)
    return out
skip = {"crc32.header", "config", "config_hash"}
for key in sorted(set(ma) | set(mb)):
    if key not in skip and ma.get(key) != mb.get(key):
        problems.append("metadata %s: %r vs %r" % (key, ma.get(key), mb.get(key)))
if config_without_dir(ma.get("config", "")) != config_without_dir(mb.get("config", "")):
    problems.append("the stored configs differ beyond checkpoint.dir")
for p in problems:
    print(p)
n = sum(np.frombuffer(r, {"F64": "<f8", "F32": "<f4"}[d]).size for d, s, r in ta.values())
print("%s: %d tensors, %d values" % ("equal" if not problems else "DIFFERENT", len(ta), n))
sys.exit(1 if problems else 0)
EOF
for name in srun mpirun; do
  [[ $name == srun ]] && jid=$job_srun || jid=$job_mpirun
  a=$WORK/ref/ck/$final b=$WORK/$name/checkpoints/$jid/$final
  if [[ -n "$jid" && -f "$a" && -f "$b" ]] && "$pyexe" "$WORK/compare.py" "$a" "$b" >"$WORK/$name.cmp" 2>&1; then
    ok "$name: preempted + requeued + resumed = uninterrupted, bit for bit ($(tail -1 "$WORK/$name.cmp"))"
  else
    [[ -f "$WORK/$name.cmp" ]] || echo "missing $a or $b" >"$WORK/$name.cmp"
    fail "$name: final checkpoint differs from the uninterrupted run" "$WORK/$name.cmp"
  fi
done

# ---- a plain scancel: the ranks checkpoint on Slurm's SIGTERM, and the job
# is NOT requeued (a cancelled job stays cancelled)
submit cancel dptrain-1node.sbatch
if [[ -n "$jid" ]]; then
  out=$WORK/cancel/dptrain-$jid.out
  if wait_steps cancel "$jid" && timeout 10 scancel "$jid" && wait_done "$jid"; then
    state=$(job_field "$jid" JobState) restarts=$(job_field "$jid" Restarts)
    if [[ "$state" == CANCELLED && "$restarts" == 0 ]]; then ok "cancel: scancel $jid leaves it CANCELLED, not requeued"
    else fail "cancel: job $jid is $state with Restarts=$restarts" "$out"; fi
    expect_grep "cancel: the batch shell logged the SIGTERM" "job $jid \(restart 0\): SIGTERM received .*not requeueing" "$out"
    expect_grep "cancel: the ranks checkpointed at the cancel" "^checkpoint at step [0-9]+ \(signal\)" "$out"
    expect_grep "cancel: the script says how to continue" "not requeueing a cancelled or timed-out job \(newest checkpoint: ckpt-[0-9]+.safetensors\); to continue: sbatch again with DPT_CKPT_DIR=$WORK/cancel/checkpoints/$jid" "$out"
  else
    fail "cancel: job $jid (state $(job_field "$jid" JobState))" "$out"
  fi
fi

# ---- teardown: nothing of the cluster or its jobs may be left
bash "$cluster" stop "$BASE" >"$WORK/stop.out" 2>&1
ok "cluster stopped ($(elapsed) s in all)"
sleep 0.5
left=$(bash "$cluster" pids "$BASE")
# by name too: any new slurm/munge process, any dptrain of this test (its
# arguments name $WORK); zombies (state Z) are gone already, only unreaped
new=$(ps -eo pid=,stat=,comm= | awk -v re="$daemon_names" -v before=" $before" \
        '$3 ~ re && $2 !~ /^Z/ && index(before, " " $1 " ") == 0 { print $1 }')
ours=$(ps -eo pid=,stat=,args= | awk -v w="$WORK" '$2 !~ /^Z/ && index($0, w) && $3 ~ /(dptrain|mpirun|srun|prted|orted)/ { print $1 }')
if [[ -z "$left$new$ours" ]]; then
  ok "no slurmctld, slurmd, slurmstepd, munged or dptrain process left"
else
  ps -o pid,stat,args -p $left $new $ours >"$WORK/left.out" 2>&1
  fail "processes left after teardown" "$WORK/left.out"
fi

finish
