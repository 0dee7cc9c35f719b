#!/usr/bin/env bash
# The scaling model of dptrain (bench/scaling_model.py): measure the
# constants on this machine, then predict samples/s and efficiency for 1..64
# nodes at 10 and 100 Gbit/s, draw bench/results/scaling-model.png and write
# bench/results/scaling-model.md (the README's section on scaling).
#
#   bash bench/scaling.sh [--measure|--model-only]
#
# --measure (default) measures, writes bench/results/scaling-constants.json
# (and the raw records, scaling-constants-raw.jsonl), then runs the model,
# the plot and the markdown. --model-only does the last three from the
# committed constants (Python 3 with NumPy, gnuplot for the plot). It needs root (network namespaces); as
# another user, or where namespaces cannot be made, it says so and uses the
# committed constants, as --model-only does. What it measures:
#   1. compute: samples/s of the default MLP (784-512-256-10) and of
#      configs/fashion-cnn.ini, 1 rank x 1 OpenBLAS thread, batch 64, 256 and
#      1024 (dptrain's final metrics record, median of 3 runs), the same at
#      batch 64 with 2 ranks on this machine (shared memory), and when each
#      layer's gradient is ready in the backward pass (bench/step_timeline.c);
#      MPI_Reduce_local's seconds per byte (the arithmetic of a reduction);
#   2. network: 3 simulated hosts (network namespaces on a bridge,
#      tests/netns/hosts.sh, TCP between them), unshaped and rate-limited
#      with tbf to 10 Gbit/s, 1 Gbit/s and 200 Mbit/s: one-way bandwidth and
#      latency between two hosts, and MPI_Allreduce (Open MPI's default
#      algorithm and ring) on 2 and 3 hosts, MPI_Iallreduce on 2, for 32 B,
#      4 KiB..64 MiB and the MLP's and CNN's gradients (bench/allreduce_bench.c);
#   3. dptrain itself on 2 simulated hosts, unshaped, at 1 Gbit/s and 200
#      Mbit/s, MLP and CNN, overlap off and on: the runs the model's
#      prediction is checked against;
#   4. the gradient noise scale B_simple (McCandlish et al. 2018) at the end
#      of a 2-rank MLP run of 3 epochs and a CNN run of 1 epoch.
# It takes about 20 minutes on a quiet machine. Every timed run holds
# /tmp/dpt-bench.lock (flock), waits (the lock released meanwhile) until
# the CPU is idle but for it (SCALING_QUIET_BUSY, default 0.15 busy over a
# second; at most SCALING_QUIET_WAIT = 300 s a run and SCALING_QUIET_BUDGET
# = 3600 s in all), and records /proc/loadavg and that busy share; every
# mpirun on the simulated hosts runs under `timeout -k 10`; the namespaces
# (prefix dptscale<PID>) are destroyed on exit.
#
# Environment: SCALING_CONSTANTS (default bench/results/scaling-constants.json),
# SCALING_PNG (default bench/results/scaling-model.png) and SCALING_MD
# (default bench/results/scaling-model.md) name the outputs;
# SCALING_QUICK=1 measures fewer sizes and shorter runs (a smoke test);
# SCALING_REPEATS (default 3) and SCALING_VAL_REPEATS (default 3) are the
# runs of each compute measurement and of each dptrain run on the
# simulated hosts (fewer: a busy machine, where each run waits for the lock);
# SCALING_SHAPES (default "none 10gbit 1gbit 200mbit") the links of part 2
# (the model needs none, and 1gbit or 200mbit; 10gbit is only shown).
# SCALING_PARTS="compute net hosts noise" (the default: all) measures only
# the parts named (1, 2, 3, 4 above) and keeps the other parts' records from
# the raw file of the last measurement (SCALING_CONSTANTS with -raw.jsonl
# for .json), e.g. to measure the network again on a quieter machine.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=measure
case ${1:-} in
  ""|--measure) ;;
  --model-only) mode=model ;;
  -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "scaling.sh: unknown option $1 (--measure or --model-only)" >&2; exit 2 ;;
esac
constants=${SCALING_CONSTANTS:-$here/results/scaling-constants.json}
png=${SCALING_PNG:-$here/results/scaling-model.png}
md=${SCALING_MD:-$here/results/scaling-model.md}
# Debian's python3 (NumPy is a Debian package); the first python3 on PATH
# may be another one without it
py=/usr/bin/python3
model() {
  local plot=(--png "$png")
  # without gnuplot: the tables and the markdown, not the plot
  command -v gnuplot >/dev/null || { echo "scaling.sh: no gnuplot: not drawing $png" >&2; plot+=(--table-only); }
  "$py" "$here/scaling_model.py" predict "$constants" "${plot[@]}" --markdown "$md"
}

if [[ $mode == measure ]]; then
  if ! why=$(bash "$here/../tests/netns/hosts.sh" check 2>&1); then
    echo "scaling.sh: cannot measure here (simulated hosts need network namespaces: $why);" \
         "using the committed constants in $constants" >&2
    mode=model
  fi
fi
if [[ $mode == model ]]; then
  [[ -r "$constants" ]] || { echo "scaling.sh: no constants file $constants" >&2; exit 2; }
  model
  exit
fi

# ---------------------------------------------------------------- measuring
source "$here/lib.sh" # builds build/bench-single; $top, $build, $DPTRAIN, $work, median, field
hosts_sh="$top/tests/netns/hosts.sh"
prefix="dptscale$$"
net=10.78.0
trap 'bash "$hosts_sh" destroy "$prefix" >/dev/null 2>&1; rm -rf "$work"' EXIT
trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP # the EXIT trap then runs too
lock=/tmp/dpt-bench.lock
raw="$work/raw.jsonl"
log() { echo "scaling.sh: $*" >&2; }
quick=${SCALING_QUICK:-0}
parts=" ${SCALING_PARTS:-compute net hosts noise} "
want() { [[ $parts == *" $1 "* ]]; }
old_raw="${constants%.json}-raw.jsonl"
: >"$raw"
if ! want compute || ! want net || ! want hosts || ! want noise; then
  [[ -r "$old_raw" ]] || { echo "scaling.sh: SCALING_PARTS needs the raw records of the other parts in $old_raw" >&2; exit 2; }
  keep='[]'
  want compute || keep=$(jq -nc "$keep + [\"compute\", \"timeline\", \"reduce_local\"]")
  want net || keep=$(jq -nc "$keep + [\"net\"]")
  want hosts || keep=$(jq -nc "$keep + [\"dptrain_hosts\"]")
  want noise || keep=$(jq -nc "$keep + [\"noise\"]")
  jq -c --argjson keep "$keep" 'select(.kind as $k | $keep | index($k))' "$old_raw" >"$raw"
  log "measuring only:$parts; kept $(wc -l <"$raw") records of the other parts from $old_raw"
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

libs=$(pkg-config --libs openblas scalapack-openmpi zlib inih libcjson)
mpicc -O2 -o "$work/allreduce_bench" "$top/bench/allreduce_bench.c"
mpicc -O2 -I"$top/include" -I"$build/generated/include" "$top/bench/step_timeline.c" \
  "$build/libdptrain.a" $libs -lpthread -lm -o "$work/step_timeline"

# cpu_busy: the share of all CPU time not idle over the next second
cpu_busy() {
  local a b
  read -r _ a < /proc/stat; sleep 1; read -r _ b < /proc/stat
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0
    for (i = 1; i <= 8; i++) t += y[i] - x[i]
    idle = (y[4] - x[4]) + (y[5] - x[5]); printf "%.3f\n", (t > 0 ? 1 - idle / t : 0) }'
}
export -f cpu_busy
# locked OUT TAGS_JSON CMD... : runs CMD holding the benchmark lock, once
# the machine is quiet: with the lock held, the CPU must be at most
# $quiet_busy busy for a second (work of others that does not take the
# lock), else the lock is released for 10 s and it tries again, for at most
# $quiet_wait seconds per run and $quiet_budget in all (then it runs
# anyway). /proc/loadavg and that busy
# share are read as it starts; each JSON line of CMD's stdout (in OUT) is
# appended to $raw merged with TAGS, the load and the busy share.
quiet_busy=${SCALING_QUIET_BUSY:-0.15}
quiet_wait=${SCALING_QUIET_WAIT:-300}
quiet_budget=${SCALING_QUIET_BUDGET:-3600}
quiet_spent=0
locked() {
  local out=$1 tags=$2 waited=0 rc; shift 2
  while :; do
    rc=0
    flock "$lock" bash -c 'busy=$(cpu_busy)
      if awk -v b="$busy" -v q="$1" "BEGIN { exit !(b > q) }" && [[ $2 == retry ]]; then exit 75; fi
      echo "$(cut -d" " -f1 /proc/loadavg) $busy" >"$0"; shift 2; "$@"' \
      "$work/load" "$quiet_busy" "$( ((waited < quiet_wait && quiet_spent < quiet_budget)) && echo retry || echo run)" "$@" \
      >"$out" 2>"$out.err" || rc=$?
    ((rc == 75)) || break
    sleep 10; waited=$((waited + 11)) quiet_spent=$((quiet_spent + 11))
  done
  if ((rc != 0)); then
    echo "scaling.sh: failed: $*" >&2
    tail -n 20 "$out.err" "$out" >&2
    exit 1
  fi
  local load busy; read -r load busy <"$work/load"
  grep '^{' "$out" | jq -c --argjson t "$tags" --argjson load "$load" --argjson busy "$busy" \
    '$t + . + {loadavg: $load, cpu_busy_before: $busy}' >>"$raw" || true
}

# with_final METRICS CMD... : runs CMD (its output dropped), then prints the
# final record of the metrics file METRICS
with_final() {
  bash -c 'm=$1; shift; rm -f "$m"; "$@" >"$m.log" 2>&1 || { cat "$m.log" >&2; exit 1; }
           grep "\"type\":\"final\"" "$m" | tail -1' _ "$@"
}
export -f with_final # run by locked's child shell

train_args=(--set train.epochs=1000 --set log.progress=none --set log.every=1000000
            --set eval.mc_samples=0 --set checkpoint.dir= --set diagnostics.every=0)
cnn_ini="$top/configs/fashion-cnn.ini"

# ---- 1. compute
if want compute; then
  repeats=${SCALING_REPEATS:-3}; batches=(64 256 1024)
  ((quick)) && { repeats=1; batches=(64 1024); }
  # on_one RANKS NAME BATCH SAMPLES [CONFIG]: RANKS ranks x 1 thread on this
  # machine (shared memory), about SAMPLES samples per rank, REPEATS times
  on_one() {
    local ranks=$1 name=$2 b=$3 samples=$4 r; shift 4
    local steps=$(( samples / b )); (( steps >= 5 )) || steps=5
    for ((r = 0; r < repeats; r++)); do
      locked "$work/out" "{\"kind\":\"compute\",\"model\":\"$name\",\"ranks\":$ranks,\"batch\":$b}" \
        with_final "$work/m.jsonl" bash "$top/launch/local.sh" -n "$ranks" train "$@" "${train_args[@]}" \
        --set train.batch_size="$b" --set train.max_steps="$steps" --set log.metrics="$work/m.jsonl"
    done
  }
  log "compute: 1 rank x 1 thread"
  for b in "${batches[@]}"; do
    on_one 1 mlp "$b" $((quick ? 16000 : 96000))
    on_one 1 cnn "$b" $((quick ? 1024 : b >= 256 ? 12288 : 6144)) "$cnn_ini"
  done
  log "compute: 2 ranks on this machine (shared memory), batch 64"
  on_one 2 mlp 64 $((quick ? 16000 : 96000))
  on_one 2 cnn 64 $((quick ? 1024 : 6144)) "$cnn_ini"
  log "compute: when each layer's gradient is ready"
  for b in "${batches[@]}"; do
    locked "$work/out" '{"kind":"timeline","model":"mlp"}' "$work/step_timeline" "$top/configs/default.ini" "$b" 50
    locked "$work/out" '{"kind":"timeline","model":"cnn"}' "$work/step_timeline" "$cnn_ini" "$b" \
      $(( b >= 1024 ? 3 : b >= 256 ? 5 : 15 ))
  done
  locked "$work/out" '{"kind":"reduce_local"}' mpirun -n 1 "$work/allreduce_bench" --reduce-local --seconds 0.3 \
    4k 64k 1m 4m 16m 64m
fi

# ---- simulated hosts
# shape RATE|none: tbf on both ends of every host's link (each direction
# passes one host egress and one bridge-port egress). tbf lets `burst`
# bytes pass at the veth's own speed after an idle spell: 32 KiB keeps
# medium messages from travelling free (with 256 KiB a 1 MiB allreduce at
# 1 Gbit/s took 20% less time than with 32 KiB) and still gives 90-96% of the
# rate as TCP goodput; 10 Gbit/s needs 256 KiB to reach 95%.
shape() {
  local i burst=32kb
  [[ $1 == 10gbit ]] && burst=256kb
  for i in 1 2 3; do
    if [[ $1 == none ]]; then
      tc -n "$prefix-node$i" qdisc del dev eth0 root 2>/dev/null || true
      tc -n "$prefix-head" qdisc del dev "n$i" root 2>/dev/null || true
    else
      tc -n "$prefix-node$i" qdisc replace dev eth0 root tbf rate "$1" burst "$burst" latency 50ms
      tc -n "$prefix-head" qdisc replace dev "n$i" root tbf rate "$1" burst "$burst" latency 50ms
    fi
  done
}
# hosts_cmd N T PROGRAM: sets hcmd to the command that runs PROGRAM (then
# "-- ARGS...") on the first N hosts, one rank each: launch/hostfile.sh with
# mpirun in the head namespace, under timeout -k 10 T, as tests/e2e_multihost.sh
hosts_cmd() {
  head -n "$1" "$work/hosts.all" >"$work/hostfile.$1"
  hcmd=(env DPTRAIN="$3" OMPI_MCA_mpi_yield_when_idle=1 OMPI_MCA_orte_tmpdir_base="$work"
        ip netns exec "$prefix-head" timeout -k 10 "$2" bash "$top/launch/hostfile.sh"
        --hostfile "$work/hostfile.$1" --net "$net.0/24" --bind none
        --rsh-agent "$top/tests/netns/rsh-agent.sh")
}
if want net || want hosts; then
  log "creating 3 simulated hosts ($prefix-*)"
  bash "$hosts_sh" create "$prefix" 3 "$net" >"$work/hosts.all"
fi

# ---- 2. network
if want net; then
  sizes=(32 4k 16k 64k 256k 1m 4m 16m 64m 535818f 422090f)
  ((quick)) && sizes=(32 4k 1m 4m 535818f 422090f)
  for s in ${SCALING_SHAPES:-none 10gbit 1gbit 200mbit}; do
    shape "$s"
    log "network: $s"
    # 64 MiB at 200 Mbit/s: a minute per algorithm on 3 hosts; the sizes up
    # to 16 MiB fix the line as well
    sz=(); for x in "${sizes[@]}"; do [[ $s == 200mbit && $x == 64m ]] || sz+=("$x"); done
    hosts_cmd 2 120 "$work/allreduce_bench"
    locked "$work/out" "{\"kind\":\"net\",\"shape\":\"$s\",\"alg\":\"p2p\"}" \
      "${hcmd[@]}" -- --p2p --seconds 1 4 64k 4m
    for p in 2 3; do
      for alg in default ring iallreduce; do
        [[ $alg == iallreduce && $p == 3 ]] && continue
        extra=() mode_arg=--allreduce
        [[ $alg == ring ]] && extra=(OMPI_MCA_coll_tuned_use_dynamic_rules=1 OMPI_MCA_coll_tuned_allreduce_algorithm=4)
        [[ $alg == iallreduce ]] && mode_arg=--iallreduce
        hosts_cmd "$p" 400 "$work/allreduce_bench"
        locked "$work/out" "{\"kind\":\"net\",\"shape\":\"$s\",\"alg\":\"$alg\"}" \
          env "${extra[@]}" "${hcmd[@]}" -- "$mode_arg" --seconds $((quick ? 0 : 1)) "${sz[@]}"
      done
    done
  done
fi

# ---- 3. dptrain on 2 simulated hosts: the runs the model is checked against
if want hosts; then
  val_repeats=${SCALING_VAL_REPEATS:-3}; ((quick)) && val_repeats=1
  for s in none 1gbit 200mbit; do
    shape "$s"
    for name in mlp cnn; do
      if [[ $name == mlp ]]; then
        args=()
        case $s in none) steps=1500 ;; 1gbit) steps=300 ;; *) steps=100 ;; esac
      else
        args=("$cnn_ini")
        case $s in none) steps=80 ;; 1gbit) steps=60 ;; *) steps=40 ;; esac
      fi
      ((quick)) && steps=$((steps / 4 + 5))
      for overlap in false true; do
        log "dptrain on 2 hosts: $s, $name, overlap $overlap"
        hosts_cmd 2 300 "$DPTRAIN"
        for ((r = 0; r < val_repeats; r++)); do
          locked "$work/out" \
            "{\"kind\":\"dptrain_hosts\",\"shape\":\"$s\",\"model\":\"$name\",\"overlap\":$overlap,\"ranks\":2,\"batch\":64}" \
            with_final "$work/v.jsonl" "${hcmd[@]}" -- train "${args[@]}" "${train_args[@]}" \
            --set train.batch_size=64 --set train.max_steps="$steps" --set optim.overlap="$overlap" \
            --set log.metrics="$work/v.jsonl"
        done
      done
    done
  done
fi
if want net || want hosts; then
  bash "$hosts_sh" destroy "$prefix"
fi

# ---- 4. the gradient noise scale at the end of short runs (2 ranks, not timed)
if want noise; then
  log "gradient noise scale (2 ranks)"
  for name in mlp cnn; do
    if [[ $name == mlp ]]; then args=(--set train.epochs=$((quick ? 1 : 3)))
    else args=("$cnn_ini" --set train.epochs=1); fi
    ((quick)) && args+=(--set train.max_steps=100)
    flock "$lock" bash "$top/launch/local.sh" -n 2 train "${args[@]}" --set log.progress=none \
      --set log.every=1000000 --set eval.mc_samples=0 --set checkpoint.dir= --set log.metrics= \
      --set diagnostics.every=1000000 --set diagnostics.lanczos_steps=0 \
      --set diagnostics.file="$work/d.jsonl" >/dev/null
    grep '"type":"summary"' "$work/d.jsonl" | tail -1 |
      jq -c --arg m "$name" '{kind: "noise", model: $m, step: .step, B_simple: .noise.B_simple, global_batch: 128}' >>"$raw"
  done
fi

# ---- constants, model, plot
machine=$(jq -nc --arg cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" --argjson cores "$(getconf _NPROCESSORS_ONLN)" \
  --arg kernel "$(uname -r)" --arg mpi "$(mpirun --version | head -1)" \
  --arg commit "$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" \
  '{cpu: $cpu, cores: $cores, kernel: $kernel, mpi: $mpi, commit: $commit, date: $date}')
cp "$raw" "${constants%.json}-raw.jsonl"
"$py" "$here/scaling_model.py" fit "$raw" --machine "$machine" -o "$constants"
log "constants written to $constants (raw records: ${constants%.json}-raw.jsonl)"
model
