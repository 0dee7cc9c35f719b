#!/usr/bin/env bash
# A private single-node Slurm cluster (munged + slurmctld + slurmd) under one
# directory, for tests that submit the project's real batch scripts.
#
#   bash tests/slurm/cluster.sh start  BASE   # exit 0 up, 77 cannot run here, 1 failed
#   bash tests/slurm/cluster.sh status BASE   # exit 0 if all three daemons answer
#   bash tests/slurm/cluster.sh stop   BASE   # cancel jobs, stop daemons, kill leftovers
#   bash tests/slurm/cluster.sh env    BASE   # prints: export SLURM_CONF=BASE/slurm.conf
#   bash tests/slurm/cluster.sh pids   BASE   # live processes of this cluster and its jobs
#
# Clients find the cluster through SLURM_CONF=BASE/slurm.conf (and the munge
# socket named in it). Everything lives in BASE: the munge key and socket,
# the controller's state, slurmd's spool, logs (BASE/log), pid files, PMIx's
# temporary directories. Recipe and measurements:
# /work/shared/notes/slurm-on-one-machine.md. Needs root (SlurmUser=root,
# munged as root), the Debian packages slurmctld slurmd slurm-client munge
# (bash launch/install-deps.sh --tests), and the default ports 6817/6818
# free (clients and daemons would otherwise talk to another cluster).
#
# `stop` finds leftovers by marks of this cluster only (see cluster_pids),
# so it never touches another cluster's or another user's processes;
# `pids BASE` lists them (the tests check that none is left).
set -uo pipefail

cmd=${1:-} base=${2:-}
if [[ -z "$cmd" || -z "$base" ]]; then
  echo "usage: $0 start|stop|status|env|pids BASE" >&2; exit 2
fi
mkdir -p "$base" && base=$(cd "$base" && pwd) || { echo "cluster: cannot create $base" >&2; exit 1; }
conf=$base/slurm.conf
sock=$base/munge/munge.socket
ctld_port=6817 slurmd_port=6818
export SLURM_CONF=$conf
host=$(hostname -s)

say() { echo "cluster: $*"; }

# cluster_pids daemons|all : live (not zombie) processes of this cluster,
# never this script or its ancestors. daemons: munged, slurmctld, slurmd
# (DPT_SLURM_BASE=BASE in their environment) and slurmstepd (it overwrites
# its environment with its process title, so: by name and by its working
# directory, slurmd's BASE/log). all: also job processes (the batch shell,
# srun, mpirun, ranks), which carry SLURM_CONF=BASE/slurm.conf and SLURM_JOB_ID.
cluster_pids() {
  local p mine=" " q=$$ env comm cwd
  while [[ -n "$q" && "$q" != 0 ]]; do mine+="$q "; q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null); done
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ "$mine" == *" $p "* ]] && continue
    [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) == [RSDT] ]] || continue
    comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null)
    if [[ "$comm" =~ ^(slurmstepd|slurmd|slurmctld)$ && "$cwd/" == "$base/"* ]]; then echo "$p"; continue; fi
    env=$( { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null) || continue
    if grep -qx "DPT_SLURM_BASE=$base" <<<"$env"; then echo "$p"; continue; fi
    if [[ "$1" == all ]] && grep -qx "SLURM_CONF=$conf" <<<"$env" && grep -q "^SLURM_JOB_ID=" <<<"$env"; then
      echo "$p"
    fi
  done
}

daemon_pid() { # NAME -> pid from its pid file if alive
  local f=$base/run/$1.pid p
  [[ -f "$f" ]] || return 1
  p=$(cat "$f" 2>/dev/null)
  [[ "$p" =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}

port_taken() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

status() {
  local ok=1 d
  for d in munged slurmctld slurmd; do
    if p=$(daemon_pid "$d"); then say "$d running (pid $p)"; else say "$d not running"; ok=0; fi
  done
  (( ok )) || return 1
  timeout 10 sinfo -h -o "%N %T %c cpus" 2>&1 | sed 's/^/cluster: node /'
  timeout 10 squeue -h -o "job %i %T %j" 2>&1 | sed 's/^/cluster: /'
  [[ $(timeout 10 sinfo -h -o %T 2>/dev/null) =~ ^(idle|mixed|allocated) ]]
}

start() {
  # --- can the daemons run here at all? (77: the caller skips)
  if [[ $(id -u) -ne 0 ]]; then say "needs root (SlurmUser=root, munged as root)"; return 77; fi
  local c missing=()
  for c in munged mungekey munge unmunge slurmctld slurmd sbatch srun scontrol sinfo squeue scancel ss; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  if (( ${#missing[@]} )); then
    say "missing ${missing[*]} (bash launch/install-deps.sh --tests: slurmctld slurmd slurm-client munge iproute2)"
    return 77
  fi
  if [[ -n "$(cluster_pids daemons)" ]]; then
    say "a cluster under $base is already running (stop it first)"; return 1
  fi
  for c in $ctld_port $slurmd_port; do
    if port_taken "$c"; then
      say "port $c is taken (another Slurm cluster on this machine?): not starting a second one"
      return 77
    fi
  done

  # --- directories: the key persists, everything else starts empty
  rm -rf "$base"/{ctld,spool,log,run,pmix}
  mkdir -p "$base"/{munge,munge-key,ctld,spool,log,run,pmix} || return 1
  chmod 755 "$base/munge"; chmod 700 "$base/munge-key"
  if [[ ! -s "$base/munge-key/munge.key" ]]; then
    mungekey -c -k "$base/munge-key/munge.key" || { say "mungekey failed"; return 1; }
  fi
  chmod 400 "$base/munge-key/munge.key"

  # --- munged, checked with a credential round trip
  DPT_SLURM_BASE=$base munged -f --key-file="$base/munge-key/munge.key" --socket="$sock" \
    --pid-file="$base/run/munged.pid" --log-file="$base/log/munged.log" \
    --seed-file="$base/munge-key/munged.seed" || { say "munged failed to start (log: $base/log/munged.log)"; return 1; }
  local i munge_ok=0
  for i in $(seq 50); do
    timeout 5 munge -S "$sock" -n 2>/dev/null | timeout 5 unmunge -S "$sock" >/dev/null 2>&1 && { munge_ok=1; break; }
    sleep 0.1
  done
  if (( !munge_ok )); then say "munge credential round trip fails (log: $base/log/munged.log)"; return 1; fi

  # --- configuration
  local mem
  mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  cat >"$conf" <<EOF
# written by tests/slurm/cluster.sh: a private single-node test cluster
ClusterName=dpttest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=10: a requeued job can start again after ~11 s (default ~127 s)
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$base/ctld
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
PlugStackConfig=$base/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=pmix
ReturnToService=2
# fast scheduling: a submitted or requeued job starts within a second or two
SchedulerParameters=bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# an impossible request fails at submission instead of pending forever
EnforcePartLimits=ALL
# teardown: SIGKILL 5 s after SIGTERM (default 30 s)
KillWait=5
# 4 CPUs advertised on a 2-core machine, so that 2-3 one-CPU tasks fit
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=4 RealMemory=${mem:-1024} State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$base/plugstack.conf"
  # without it a killed step leaves /tmp/spmix_appdir_* behind and the next
  # fresh cluster's job 1 fails
  echo "PMIxCliTmpDirBase=$base/pmix" >"$base/mpi.conf"

  # --- the controller and the node daemon
  DPT_SLURM_BASE=$base slurmctld -f "$conf" -i || { say "slurmctld failed (log: $base/log/slurmctld.log)"; return 1; }
  DPT_SLURM_BASE=$base slurmd -f "$conf" || { say "slurmd failed (log: $base/log/slurmd.log)"; return 1; }
  local state=
  for _ in $(seq 150); do
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null)
    [[ "$state" == idle ]] && break
    sleep 0.2
  done
  if [[ "$state" != idle ]]; then
    say "node not idle after 30 s (state '$state'; logs in $base/log)"
    tail -5 "$base/log/slurmctld.log" "$base/log/slurmd.log" 2>/dev/null | sed 's/^/cluster: | /'
    return 1
  fi
  say "up: SLURM_CONF=$conf ($host, 4 CPUs advertised, ports $ctld_port/$slurmd_port)"
}

stop() {
  # jobs first, while the daemons can still end them cleanly
  if daemon_pid slurmctld >/dev/null; then
    timeout 10 scancel --full --quiet --signal=KILL -u root >/dev/null 2>&1
    timeout 10 scancel --quiet -u root >/dev/null 2>&1
    for _ in $(seq 100); do
      [[ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.2
    done
  fi
  local d p pids=()
  for d in slurmd slurmctld munged; do
    p=$(daemon_pid "$d") && { kill -TERM "$p" 2>/dev/null; pids+=("$p"); }
  done
  # daemons the pid files missed (a crash between fork and pid file)
  for p in $(cluster_pids daemons); do
    [[ " ${pids[*]} " == *" $p "* ]] || { kill -TERM "$p" 2>/dev/null; pids+=("$p"); }
  done
  for _ in $(seq 100); do
    local alive=0
    for p in "${pids[@]}"; do
      [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) == [RSDT] ]] && alive=1
    done
    (( alive )) || break
    sleep 0.1
  done
  # anything left: daemons, slurmstepd, job processes (ranks, srun, mpirun)
  local left
  left=$(cluster_pids all)
  if [[ -n "$left" ]]; then
    say "killing leftover processes: $(echo $left)"
    kill -KILL $left 2>/dev/null
    sleep 0.5
  fi
  rm -f "$base/run/"*.pid "$sock"
  say "stopped"
}

case "$cmd" in
  start) start; rc=$?; if (( rc != 0 && rc != 77 )); then stop >/dev/null; fi; exit $rc ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  pids) cluster_pids all ;;
  *) echo "usage: $0 start|stop|status|env|pids BASE" >&2; exit 2 ;;
esac
