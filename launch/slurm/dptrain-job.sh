#!/usr/bin/env bash
# The body of the dptrain Slurm batch scripts: dptrain-1node.sbatch and
# dptrain-multinode.sbatch hold only the #SBATCH lines and exec this file
# (exec keeps the batch shell's PID, so `--signal=B:USR1@...` reaches it).
#
#   sbatch launch/slurm/dptrain-1node.sbatch [CONFIG] [dptrain train arguments...]
#
# What it does, in order:
#   1. runs `dptrain train CONFIG --set checkpoint.dir=DIR ARGS... --resume auto`
#      as one job step (srun --mpi=pmix, or mpirun with DPT_LAUNCHER=mpirun),
#      in the background, and waits for it;
#   2. on SIGUSR1 (Slurm's warning before the time limit, --signal=B:USR1@120,
#      or a preemption by `scancel --signal=USR1 --batch JOBID`) forwards the
#      signal to the step: every rank checkpoints at the next step and the step
#      exits with status 3;
#   3. on status 3 requeues the job (`scontrol requeue`): it runs again with
#      the same job id, so the same DIR, and `--resume auto` continues from
#      the newest checkpoint that verifies (bit for bit, same rank count);
#   4. on SIGTERM (scancel JOBID, or the time limit itself) forwards nothing:
#      Slurm signals the ranks itself and they checkpoint; the job is not
#      requeued (a cancelled job stays cancelled).
# A fresh job with no checkpoint in DIR starts from scratch, so the same
# command serves the first run and every rerun.
#
# Environment (sbatch passes the submitting shell's environment on):
#   DPT_REPO         the repository, read by the .sbatch files (Slurm runs a
#                    copy of them from its spool directory); default: the
#                    submit directory or the nearest parent holding launch/slurm
#   DPTRAIN          the binary (default: build/dptrain of this repository;
#                    on several nodes it must be on a shared file system)
#   DPT_LAUNCHER     srun (default) or mpirun
#   DPT_CKPT_DIR     checkpoint directory (default: $SLURM_SUBMIT_DIR/checkpoints/JOB,
#                    JOB = the job id, or ARRAYJOB_TASK for an array task);
#                    on several nodes: a shared file system. Point a new job at
#                    an old job's directory to continue that run.
#   DPT_SRUN_ARGS    extra srun arguments (word-split), e.g. "--cpu-bind=cores"
#   DPT_MPIRUN_ARGS  extra mpirun arguments (word-split), e.g. "--mca btl ^openib"
#   DPT_REQUEUE      1 (default): requeue after a stop; 0: only exit 3
#   DPT_STOP_TIMEOUT seconds to wait for the checkpoint after forwarding the
#                    signal (default 90, below the 120 s of --signal) before the
#                    step is ended by force and the job requeued anyway (the
#                    newest checkpoint that verifies is used on resume)
#   OPENBLAS_NUM_THREADS is set to SLURM_CPUS_PER_TASK (1 if not given).
# Log lines of this script start with "dptrain-slurm:" and go to stderr,
# interleaved with dptrain's own output in the job's output file.
#
# Exit status: the step's (0 done, 1 runtime failure, 2 bad input, 3 stopped
# after a checkpoint; 3 also when requeued), or 2 for a bad use of this script.
set -uo pipefail

restart=${SLURM_RESTART_COUNT:-0}
log() { echo "dptrain-slurm: $(date '+%F %T') job ${SLURM_JOB_ID:-?} (restart $restart): $*" >&2; }
die() { log "error: $*"; exit 2; }

# ---- signals. The step runs in the background and this shell waits for it:
# bash runs a trap only between commands, and `wait` is the one command a
# trap interrupts.
stopping() { # send the stop signal to the step, and watch that it stops
  kill -"$stop_signal" "$step_pid" 2>/dev/null
  [[ -n "$watcher" || "$stop_timeout" -eq 0 ]] && return
  # dptrain ignores SIGUSR1 until training has begun (data loading): the
  # signal is sent again every 5 s while the step runs (a repeated one only
  # repeats the request); a step still running after DPT_STOP_TIMEOUT is
  # ended by force, so that the job can still requeue before the time limit
  (
    s=
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    waited=0
    while (( waited < stop_timeout )); do
      sleep 5 & s=$!; wait "$s"; waited=$((waited + 5))
      kill -0 "$step_pid" 2>/dev/null || exit 0
      (( waited < stop_timeout )) || break
      log "the step is still running ${waited} s after $stop_signal: sending it again"
      kill -"$stop_signal" "$step_pid" 2>/dev/null
    done
    log "the step has not stopped ${stop_timeout} s after $stop_signal: ending it (SIGTERM, SIGKILL after 10 s)"
    kill -TERM "$step_pid" 2>/dev/null
    sleep 10 & s=$!; wait "$s"
    kill -KILL "$step_pid" 2>/dev/null
  ) &
  watcher=$!
}
on_usr1() {
  trapped=1
  if [[ -n "$stop_signal" ]]; then
    log "USR1 again: still waiting for the step to checkpoint and stop"
    return
  fi
  stop_signal=USR1
  if [[ -n "$step_pid" ]]; then
    log "USR1 received (time limit near or preemption): forwarding to the step; every rank checkpoints at its next step and exits with 3"
    stopping
  else
    log "USR1 received (time limit near or preemption) before the step started"
  fi
}
on_term() {
  trapped=1 cancelled=1
  log "SIGTERM received (job cancelled or at its time limit): the ranks checkpoint on their own SIGTERM; not requeueing"
}

# USR1: time limit near (--signal=B:USR1@120) or preemption: stop, requeue.
# TERM: the job is being cancelled or is at its time limit: Slurm signals
# the step's tasks itself, so nothing is forwarded (a second SIGTERM would
# end dptrain before its checkpoint), and the job is not requeued.
# Installed first: a signal before the step starts is remembered.
step_pid='' stop_signal='' watcher='' trapped=0 cancelled=0
trap on_usr1 USR1
trap on_term TERM

[[ -n "${SLURM_JOB_ID:-}" ]] || die "not inside a Slurm job (submit with sbatch; on one machine use launch/local.sh)"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ---- arguments: [CONFIG] then dptrain train arguments
config=()
if [[ $# -gt 0 && "$1" != -* ]]; then
  [[ -f "$1" ]] || die "config file '$1' not found (relative paths are relative to $PWD)"
  config=("$1"); shift
fi
args=("$@")
prev=
for a in "${args[@]}"; do
  # the script owns these two: a requeued job must find its own checkpoints
  case "$a" in
    --resume|--resume=*) die "do not pass --resume: every run uses --resume auto on DPT_CKPT_DIR (point DPT_CKPT_DIR at another job's directory to continue it)" ;;
    checkpoint.dir=*|--set=checkpoint.dir=*)
      [[ "$prev" == --set || "$a" == --set=* ]] && die "do not set checkpoint.dir: use DPT_CKPT_DIR (a requeued job must find its own checkpoints)" ;;
  esac
  prev=$a
done

dptrain=${DPTRAIN:-$repo/build/dptrain}
[[ -x "$dptrain" ]] || die "$dptrain is not an executable (build with bash launch/build.sh, or set DPTRAIN)"
launcher=${DPT_LAUNCHER:-srun}
[[ "$launcher" == srun || "$launcher" == mpirun ]] || die "DPT_LAUNCHER must be srun or mpirun, not '$launcher'"
command -v "$launcher" >/dev/null || die "$launcher not found"
key=$SLURM_JOB_ID
[[ -n "${SLURM_ARRAY_JOB_ID:-}" && -n "${SLURM_ARRAY_TASK_ID:-}" ]] && key=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
ckdir=${DPT_CKPT_DIR:-${SLURM_SUBMIT_DIR:-$PWD}/checkpoints/$key}
[[ -n "$ckdir" ]] || die "DPT_CKPT_DIR is empty: without checkpoints a stopped job cannot resume"
stop_timeout=${DPT_STOP_TIMEOUT:-90}
[[ "$stop_timeout" =~ ^[0-9]+$ ]] || die "DPT_STOP_TIMEOUT must be a number of seconds"

# ---- environment of the ranks
cpus=${SLURM_CPUS_PER_TASK:-1}
# one BLAS thread per CPU Slurm gave the task: more would oversubscribe the
# task's cores, fewer would leave them idle
export OPENBLAS_NUM_THREADS=$cpus OMP_NUM_THREADS=$cpus
# Open MPI refuses root without these (test clusters run as root)
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

train=("$dptrain" train "${config[@]}" --set "checkpoint.dir=$ckdir" "${args[@]}" --resume auto)
if [[ "$launcher" == srun ]]; then
  # --cpus-per-task again: since Slurm 22.05 srun does not inherit it from
  # sbatch. --kill-on-bad-exit: a rank that dies takes the step down at once
  # instead of leaving the others blocked in a collective.
  # shellcheck disable=SC2206
  cmd=(srun --mpi=pmix --kill-on-bad-exit=1 --cpus-per-task="$cpus" ${DPT_SRUN_ARGS:-} "${train[@]}")
else
  # mpirun reads the allocation (nodes, tasks per node) from Slurm's
  # variables and starts its daemons on the other nodes through srun;
  # PE=cpus gives each rank its BLAS threads' cores
  mpi=(-n "${SLURM_NTASKS:-1}" -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)
  (( cpus > 1 )) && mpi+=(--map-by "slot:PE=$cpus" --bind-to core)
  # shellcheck disable=SC2206
  cmd=(mpirun "${mpi[@]}" ${DPT_MPIRUN_ARGS:-} "${train[@]}")
fi

mkdir -p "$ckdir" || die "cannot create the checkpoint directory $ckdir"
log "start on ${SLURM_JOB_NODELIST:-?}: ${SLURM_NTASKS:-?} tasks x $cpus CPUs (OPENBLAS_NUM_THREADS=$cpus), launcher $launcher, $dptrain, config ${config[*]:-(built-in default)}"
# the newest checkpoint file's name (ckpt-<step>.safetensors sorts by step), or none
newest_now() {
  local f
  f=$(ls -1 "$ckdir"/ckpt-*.safetensors 2>/dev/null | sort | tail -1)
  if [[ -n "$f" ]]; then basename "$f"; else echo none; fi
}
newest=$(newest_now)
if [[ "$newest" != none ]]; then
  log "resuming: checkpoints in $ckdir, newest $newest (--resume auto takes the newest that verifies)"
elif (( restart > 0 )); then
  log "warning: rerun $restart but no checkpoint in $ckdir: starting from scratch"
else
  log "first run: no checkpoint in $ckdir yet, starting from scratch"
fi

if (( cancelled )); then log "cancelled before the step started: not starting it"; exit 143; fi
"${cmd[@]}" &
step_pid=$!
log "step started (pid $step_pid): ${cmd[*]}"
if [[ -n "$stop_signal" ]]; then
  log "forwarding the $stop_signal that came before the step started"
  stopping
fi

# wait until the step has really ended: a trap cuts `wait` short with
# 128 + the signal while the step runs on (its status not yet collected),
# so wait again; if the step ended just before the trap, its status was
# collected and the next `wait` says 127
status='' last=''
while :; do
  wait "$step_pid" 2>/dev/null; status=$?
  if (( status == 127 )) && [[ -n "$last" ]]; then status=$last; break; fi
  if (( status > 128 && trapped )); then trapped=0; last=$status; continue; fi
  break
done
if [[ -n "$watcher" ]]; then kill -TERM "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; fi

if (( status == 0 )); then log "training finished (step exit 0)"; exit 0; fi
if (( cancelled )); then
  # srun passes the ranks' 3 on; mpirun says 1 when its ranks were signalled
  log "the step ended with exit $status after SIGTERM: not requeueing a cancelled or timed-out job (newest checkpoint: $(newest_now)); to continue: sbatch again with DPT_CKPT_DIR=$ckdir"
  exit "$status"
fi
if (( status == 3 )); then
  log "the step stopped after writing a checkpoint (exit 3)"
elif [[ -z "$stop_signal" ]]; then
  log "the step failed with exit $status (1 runtime failure, 2 bad input; see above): not requeueing"
  exit "$status"
else
  # a rank still starting up dies of SIGUSR1 (its default action), or the
  # step was ended by force after DPT_STOP_TIMEOUT
  log "the step ended with exit $status after $stop_signal, without its own checkpoint: requeueing anyway (the rerun resumes from the newest checkpoint that verifies: $(newest_now))"
fi

if [[ "${DPT_REQUEUE:-1}" == 0 ]]; then
  log "DPT_REQUEUE=0: not requeueing; to continue: sbatch again with DPT_CKPT_DIR=$ckdir"
  exit 3
fi
log "requeueing job $SLURM_JOB_ID (scontrol requeue): it resumes from $ckdir when it runs again"
if out=$(scontrol requeue "$SLURM_JOB_ID" 2>&1); then
  log "requeued"
else
  log "error: scontrol requeue failed: $out; to continue: sbatch again with DPT_CKPT_DIR=$ckdir"
fi
exit 3
