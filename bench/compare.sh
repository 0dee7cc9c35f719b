#!/usr/bin/env bash
# dptrain against its peers on the same machine and the same work (issue 9),
# and against the hardware limit. A benchmark: it prints numbers, ratios and
# whether each target is met; it exits 0 either way (1 if a run fails).
#
#   bash bench/compare.sh [--quick] [--only mlp,cnn,softmax,gemm] [--commit REV] [--save DIR]
#
# Measures, each run timed alone (see "Timing" below):
#   mlp      the default MLP (784-512-256-10 ReLU, softmax cross-entropy,
#            Nesterov lr 0.05 linear decay, weight decay 1e-4, batch 64 per
#            rank, float32; configs/default.ini): training samples/s of
#            dptrain at 1 rank x 1 thread and 2 ranks x 1 thread (the final
#            metrics record of MLP_STEPS = 2000 steps, steps only), and of
#            PyTorch (bench/peers/torch_mlp.py: 1 process x 1 thread,
#            1 process x 2 threads, DistributedDataParallel with gloo on
#            2 processes x 1 thread; 1000 timed steps after 50 of warm-up;
#            the training set in memory as float32 tensors, no DataLoader).
#   cnn      configs/fashion-cnn.ini: dptrain 2 x 1 (CNN_STEPS = 300 steps)
#            and PyTorch DDP gloo 2 x 1 (bench/peers/torch_cnn.py, the same
#            layers; 150 timed steps after 10).
#   softmax  softmax regression on the 60000 training images, float64,
#            mean cross-entropy + (1e-4/2)|W|^2 (configs/fashion-softmax-*.ini),
#            from zero to |g|_inf <= 1e-5: seconds, iterations, evaluations of
#            dptrain lbfgs (m = 10) and newton_cg (double build) at 2 x 1 and
#            1 x 2, against SciPy L-BFGS-B (maxcor 10; bench/peers/scipy_softmax.py)
#            and scikit-learn newton-cg (C and tol matched;
#            bench/peers/sklearn_softmax.py), the peers with 2 OpenBLAS threads
#            (the same 2 cores). Before timing, the peers' objectives are
#            checked against dptrain's f at a point dptrain reached (5 L-BFGS
#            iterations, exported) and at zero; after, the final gradient of
#            every method is recomputed in NumPy (dptrain's from its exported
#            checkpoint, first repeat).
#   gemm     bench/gemm_peak.c (built here against the same OpenBLAS with the
#            build's flags): cblas_sgemm/dgemm on exactly the 8 GEMMs of one
#            MLP step per rank (src/nn/dense.c's shapes and transposes),
#            1 thread, medians over 2000 repetitions; the SGEMM-bound ideal of
#            one rank is 64 / (their summed time); for 2 ranks x 1 thread it
#            is twice that (assumed: each rank alone on its core, GEMMs at the
#            1-core speed, nothing else in the step, no communication). Two
#            copies run at once, one per core, are measured too, to show what
#            the assumption ignores (shared caches and memory bandwidth). And
#            the GFLOP/s of a 2048^3 SGEMM/DGEMM for context. With it
#            (also for mlp), bench/step_bound.c at 1 and 2 ranks: the MLP
#            step with its GEMMs skipped, and the update and the exchange
#            alone; the table adds the GEMMs at the ideal's speed to them:
#            the share of the ideal a step could reach at most, and the
#            least time outside BLAS it could have.
#
# Repeats: REPEATS (default 5) runs of each throughput configuration,
# interleaved (run 1 of every configuration, then run 2, ...), and
# SOLVE_REPEATS (default 3) of each softmax solve; the table shows medians,
# every run is printed with the load average before it. --quick: 3 and 1
# repeats, shorter runs (600 / 100 dptrain steps, 300 / 50 PyTorch steps)
# and the softmax problem on the first 10000 samples only (same objective).
#
# Timing: every timed run holds /tmp/dpt-bench.lock (flock), shared with the
# other benchmark users of this machine, so timed runs never overlap; the
# lock is taken per run, so others can measure in between. The 1-minute load
# average printed before each run includes this script's previous run.
# Builds: build/compare-single and build/compare-double (Release, no tests),
# from the working tree; the commit, and how many files of the tree differ
# from it, is printed.
# Needs the peers: bash launch/install-deps.sh --bench (run here if missing).
# --commit REV measures the sources of commit REV instead (git archive into a
# temporary directory, built there; the working tree is left alone).
# --save DIR keeps the raw records (runs.jsonl) and the table (table.md).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
quick=0 only="mlp,cnn,softmax,gemm" save="" rev=""
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --only) only=${2:?--only needs a list}; shift ;;
    --save) save=${2:?--save needs a directory}; shift ;;
    --commit) rev=${2:?--commit needs a revision}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (--quick, --only LIST, --save DIR, --commit REV)" >&2; exit 2 ;;
  esac
  shift
done
want() { [[ ",$only," == *",$1,"* ]]; }
if ((quick)); then
  repeats=${REPEATS:-3} solve_repeats=${SOLVE_REPEATS:-1}
  mlp_steps=600 torch_mlp_steps=300 cnn_steps=100 torch_cnn_steps=50 solve_n=10000 gemm_reps=500
else
  repeats=${REPEATS:-5} solve_repeats=${SOLVE_REPEATS:-3}
  mlp_steps=${MLP_STEPS:-2000} torch_mlp_steps=1000 cnn_steps=${CNN_STEPS:-300} torch_cnn_steps=150
  solve_n=0 gemm_reps=2000
fi
gtol=1e-5 cores=$(nproc)

# --- set-up (not timed) -------------------------------------------------------
bash "$top/launch/install-deps.sh" >/dev/null
if ! "$py" -c 'import torch, scipy, sklearn, numpy' 2>/dev/null; then
  bash "$top/launch/install-deps.sh" --bench >/dev/null
fi
work=$(mktemp -d /tmp/dpt-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [[ -n $rev ]]; then # the sources of one commit, without touching the working tree
  src="$work/src" single="$work/build-single" double="$work/build-double"
  mkdir "$src"
  git -C "$top" archive "$rev" | tar -x -C "$src"
  commit="$(git -C "$top" rev-parse --short "$rev") (git archive, working tree not used)"
else
  src=$top single="$top/build/compare-single" double="$top/build/compare-double"
  dirty=$(git -C "$top" status --porcelain -- src include CMakeLists.txt cmake configs 2>/dev/null | wc -l)
  commit="$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree$( ((dirty)) &&
           echo ", with $dirty uncommitted or new files in src/ include/ cmake/ configs/" || true))"
fi
bash "$src/launch/build.sh" "$single" -DDPT_PRECISION=single -DDPT_BUILD_TESTS=OFF >/dev/null
want softmax && bash "$src/launch/build.sh" "$double" -DDPT_PRECISION=double -DDPT_BUILD_TESTS=OFF >/dev/null
cflags=$(sed -n 's/^CMAKE_C_FLAGS:STRING=//p; s/^CMAKE_C_FLAGS_RELEASE:STRING=//p' "$single/CMakeCache.txt" | tr '\n' ' ')
gemm_peak="$single/gemm_peak"
# shellcheck disable=SC2086,SC2046  # word splitting of the flags is intended
cc $cflags -fno-math-errno -Wall -Wextra "$top/bench/gemm_peak.c" $(pkg-config --cflags --libs openblas) -lm \
  -o "$gemm_peak"
step_bound="$single/step_bound"
if want gemm || want mlp; then
  # shellcheck disable=SC2086,SC2046
  mpicc $cflags -I"$src/include" -I"$single/generated/include" "$top/bench/step_bound.c" "$single/libdptrain.a" \
    $(pkg-config --cflags --libs openblas scalapack-openmpi zlib inih libcjson) -ldl -lpthread -lm -o "$step_bound"
fi
core_latency="$single/core_latency"
cc -O2 -Wall -Wextra -pthread "$top/bench/core_latency.c" -o "$core_latency"
runs="$work/runs.jsonl"
: >"$runs"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# --- the machine and the versions ---------------------------------------------
versions=$("$py" -c 'import sys, numpy, scipy, sklearn, torch
print("Python %s, NumPy %s, SciPy %s, scikit-learn %s, PyTorch %s" % (sys.version.split()[0],
      numpy.__version__, scipy.__version__, sklearn.__version__, torch.__version__))')
openblas=$(OPENBLAS_NUM_THREADS=1 "$gemm_peak" --reps 1 --square 0 --only x | sed -n 's/^OpenBLAS: \(.*\), [0-9]* thread.*/\1/p')
lscpu_field() { lscpu | sed -n "s/^$1: *//p" | head -1; }
machine="$(lscpu_field 'Model name') (family $(lscpu_field 'CPU family'), model $(lscpu_field Model)$(
  [[ -n $(lscpu_field 'Hypervisor vendor') ]] && echo ", under $(lscpu_field 'Hypervisor vendor')")$(
  grep -qw avx512f /proc/cpuinfo && echo ", AVX-512")), $cores cores ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread per core), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
{
  echo "machine:  $machine"
  echo "dptrain:  $("$single/dptrain" --version 2>&1 | head -1), commit $commit, built in $single$(want softmax && echo " and $double")"
  echo "compiler: $(cc --version | head -1); flags $cflags"
  echo "MPI:      $(mpirun --version 2>&1 | head -1)"
  echo "BLAS:     $openblas"
  echo "peers:    $versions"
  echo "mode:     $( ((quick)) && echo quick || echo full): $repeats repeats of each throughput run ($mlp_steps/$cnn_steps dptrain steps, $torch_mlp_steps/$torch_cnn_steps PyTorch steps), $solve_repeats of each solve ($( ((solve_n)) && echo "first $solve_n samples" || echo "60000 samples"))"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC'), load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$work/header.txt"
echo

# --- one timed run --------------------------------------------------------------
# timed KEY LABEL COMMAND...: runs COMMAND holding the benchmark lock, with the
# load average read right before; COMMAND prints one JSON object (its result)
# on its last stdout line; appends {"key", "load", "others", "steal",
# "kept", "result"} to $runs. "others": the cores that processes other than
# this run kept busy during it, on average (/proc/stat's busy time of all
# CPUs minus the CPU time of the run's own processes, over its wall time);
# "steal": the cores the hypervisor took. A run is disturbed when others
# exceed DISTURBED (default 0.25 cores), also a run on one core: the other
# processes are not bound to the idle core and take turns on the run's;
# it is then repeated, at most RETRIES (default 1) more times, and the
# table uses the last attempt ("kept"); every attempt is printed.
disturbed=${DISTURBED:-0.25} retries=${RETRIES:-1}
# The round trip of a cache line between CPUs 0 and 1 (bench/core_latency.c),
# before and after each run ("c2c", ns): on the development VM the
# hypervisor places the two vCPUs on one L3 (about 60-80 ns) or on two (over
# 300 ns), and 2-process runs are much slower in the second case (the data
# the ranks exchange crosses between the L3s). The table adds the medians of
# the runs with both values under C2C_ONE_L3 (default 150 ns). null: not
# measured (one CPU). That split is for AMD's core complexes (an L3 each);
# an Intel socket has one L3 for all its cores, whose round trips over the
# mesh (130-250 ns on an Intel VM here) say nothing about it: there the
# split is off (C2C_ONE_L3=0) unless asked for.
c2c_ns() { ((cores >= 2)) && "$core_latency" 0 1 100000 | sed -n 's/.*"c2c_ns":\([0-9.]*\).*/\1/p' || echo null; }
if grep -q -m1 'vendor_id.*AuthenticAMD' /proc/cpuinfo; then one_l3=${C2C_ONE_L3:-150}; else one_l3=${C2C_ONE_L3:-0}; fi
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9; exit }' /proc/stat; }
# user + system seconds of this shell's waited-for descendants, from the output
# of the builtin `times` (run in this shell: a subshell would count its own)
children_cpu() { tail -n 1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
                                         printf "%.3f\n", t }'; }
timed() {
  local key=$1 label=$2; shift 2
  local attempt
  for ((attempt = 0; attempt <= retries; attempt++)); do
    timed_once "$key" "$label$( ((attempt)) && echo " (again: disturbed)")" $((attempt == retries)) "$@" && return 0
  done
}
timed_once() { # KEY LABEL LAST COMMAND...: status 1 if disturbed and not LAST
  local key=$1 label=$2 last=$3; shift 3
  local out="$work/out.txt" load status=0 busy0 steal0 busy1 steal1 own0 own1 t0 t1 c2c0 c2c1
  exec 9>>/tmp/dpt-bench.lock
  flock 9
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  c2c0=$(c2c_ns)
  times >"$work/times0"
  read -r busy0 steal0 < <(cpu_jiffies)
  t0=$(date +%s.%N)
  "$@" >"$out" 2>"$work/err.txt" 9>&- || status=$?
  t1=$(date +%s.%N)
  read -r busy1 steal1 < <(cpu_jiffies)
  times >"$work/times1"
  c2c1=$(c2c_ns)
  flock -u 9
  exec 9>&-
  own0=$(children_cpu "$work/times0") own1=$(children_cpu "$work/times1")
  local others steal kept=true
  others=$(awk -v b="$((busy1 - busy0))" -v o0="$own0" -v o1="$own1" -v t0="$t0" -v t1="$t1" \
    'BEGIN { v = (b / 100 - (o1 - o0)) / (t1 - t0); printf "%.2f", v < 0 ? 0 : v }')
  steal=$(awk -v s="$((steal1 - steal0))" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", s / 100 / (t1 - t0) }')
  local result
  result=$(tail -n 1 "$out")
  if ((status != 0)) || [[ $result != "{"* ]]; then
    echo "  [load $load] $label: FAILED (exit $status)"; tail -n 5 "$work/err.txt" "$out" | sed 's/^/    /'
    failures=$((failures + 1))
    return 0
  fi
  local again=0
  if ((!last)) && awk -v o="$others" -v d="$disturbed" 'BEGIN { exit !(o > d) }'; then again=1 kept=false; fi
  printf '{"key":"%s","load":"%s","others":%s,"steal":%s,"c2c":[%s,%s],"kept":%s,"result":%s}\n' "$key" "$load" \
    "$others" "$steal" "$c2c0" "$c2c1" "$kept" "$result" >>"$runs"
  "$py" - "$label" "$load" "$others" "$steal" "$result" "$c2c0" "$c2c1" <<'EOF'
import json, sys
label, load, others, steal, r = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
c2c = f"; CPU 0-1 {float(sys.argv[6]):.0f}/{float(sys.argv[7]):.0f} ns" if sys.argv[6] != "null" else ""
if "samples_per_s" in r:
    s = f"{r['samples_per_s']:,.0f} samples/s"
elif "step_no_gemm_us" in r:
    s = (f"step {r['step_us']:.0f} us, without its GEMMs {r['step_no_gemm_us']:.0f} us; update pass "
         f"{r['update_us']:.0f} us" + (f", reduce-scatter {r['reduce_scatter_us']:.0f} us, all-gather "
                                        f"{r['allgather_us']:.0f} us" if r["ranks"] > 1 else ""))
elif "s_ideal_per_rank" in r:
    s = (f"SGEMM step {r['s_step_us']:.0f} us -> ideal {r['s_ideal_per_rank']:,.0f} samples/s per rank"
         + (f"; DGEMM step {r['d_step_us']:.0f} us" if "d_step_us" in r else ""))
else:
    s = (f"{r['seconds']:.2f} s, {r.get('iterations')} iterations, {r.get('evals')} evaluations"
         + (f", {r['products']} products" if r.get("products") else "")
         + f", f {r['f']:.12f}, |g|inf {r['grad_inf']:.2e}")
print(f"  [load {load}; others {others}, steal {steal} cores{c2c}] {label}: {s}")
EOF
  return $((again))
}
failures=0
plural() { if (($1 == 1)); then echo "$1 $2"; else echo "$1 ${2}s"; fi; }

# dptrain train, printing its result as JSON: samples/s (and the solve record)
dpt_run() { # BUILD RANKS THREADS [dptrain train arguments]
  local build=$1 ranks=$2 threads=$3; shift 3
  local metrics="$work/metrics.jsonl"
  rm -f "$metrics"
  # throughput runs (train.max_steps set, no solve): a progress record every
  # WARMUP steps, and the rate from the first record to the last (train_s:
  # time inside the steps, no evaluation), as the peers time theirs after
  # their warm-up steps (first-touch page faults and caches filling are in
  # the first steps, of dptrain as of PyTorch)
  local every=1000000
  [[ " $* " == *" train.max_steps="* ]] && every=$warmup
  OPENBLAS_NUM_THREADS=$threads DPTRAIN="$build/dptrain" bash "$top/launch/local.sh" -n "$ranks" train "$@" \
    --set log.progress=none --set log.every="$every" --set log.metrics="$metrics" \
    --set checkpoint.dir="$work/ckpt" >"$work/dptrain.log" 2>&1 || { cat "$work/dptrain.log" >&2; return 1; }
  local final solved
  final=$(grep '"type":"final"' "$metrics")
  solved=$(grep '"type":"solved"' "$metrics" || echo null)
  "$py" -c 'import json, sys
f, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
steps = [r for r in map(json.loads, open(sys.argv[3])) if r.get("type") == "step"]
r = {"samples_per_s": f["samples_per_s"], "train_s": f["train_s"], "steps": f["steps"]}
if len(steps) >= 2 and "train_s" in steps[0]:  # after the warm-up window (older builds: no train_s)
    per_step = f["samples_per_s"] * f["train_s"] / f["steps"]
    a, b = steps[0], steps[-1]
    r["samples_per_s_all"] = r["samples_per_s"]
    r["samples_per_s"] = (b["step"] - a["step"]) * per_step / (b["train_s"] - a["train_s"])
    r["warmup_steps"] = a["step"]
if s:
    r = {"seconds": f["train_s"], "iterations": s["iterations"], "evals": s["evals"], "products": s["products"],
         "f": s["f"], "grad_inf": s["grad_inf"], "reason": s["reason"]}
print(json.dumps(r))' "$final" "$solved" "$metrics"
}

# gemm_peak on one core, or two copies at once (one per core): RESULT lines as JSON
gemm_run() { # COPIES
  if (($1 == 1)); then
    OPENBLAS_NUM_THREADS=1 taskset -c 0 "$gemm_peak" --reps "$gemm_reps" >"$work/gemm.txt"
    sed -n 's/^RESULT //p' "$work/gemm.txt"
  else
    for c in 0 1; do
      OPENBLAS_NUM_THREADS=1 taskset -c "$c" "$gemm_peak" --reps "$gemm_reps" --square 0 --only s >"$work/gemm2.$c" &
    done
    wait
    grep -v RESULT "$work/gemm2.0" >"$work/gemm.txt"
    sed -n 's/^RESULT //p' "$work/gemm2.0" "$work/gemm2.1" | awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }'
  fi | "$py" -c 'import json, sys
print(json.dumps({k: float(v) for k, v in (l.split() for l in sys.stdin)}))'
}

mlp_common=(--set train.epochs=1000 --set train.max_steps="$mlp_steps" --set train.batch_size=64
            --set checkpoint.at_end=false)
# bn_sync=false: per-rank batch statistics, as the peer computes them (PyTorch
# 1.13's SyncBatchNorm runs on CUDA only): the same work on both sides
cnn_common=("$src/configs/fashion-cnn.ini" --set train.epochs=1000 --set train.max_steps="$cnn_steps"
            --set eval.mc_samples=0 --set checkpoint.at_end=false --set model.bn_sync=false)
# warm-up steps left out of every throughput rate, dptrain's and the peers'
mlp_warmup=50 cnn_warmup=10
solve_common() { # METHOD
  echo "$src/configs/fashion-softmax-$1.ini" --set optim.gtol=$gtol --set optim.gtol_absolute=true \
    --set optim.ftol=0 --set optim.max_iter=100000 --set checkpoint.at_end=true
  ((solve_n)) && echo --set optim.solve_samples=$solve_n
  return 0
}
peer_n=(); ((solve_n)) && peer_n=(--n "$solve_n")

# --- gemm -------------------------------------------------------------------------
if want gemm || want mlp; then
  echo "== GEMM limit (bench/gemm_peak.c, 1 thread) =="
  timed gemm.1 "gemm_peak, 1 copy on core 0" gemm_run 1
  grep -v RESULT "$work/gemm.txt" | sed 's/^/    /'
  timed gemm.2 "gemm_peak, 2 copies at once (one per core), SGEMM step" gemm_run 2
  grep "sum of the medians" "$work/gemm.txt" | sed 's/^ */    the copy on core 0: /'
  echo
  echo "== the MLP step without its GEMMs (bench/step_bound.c, default config, $gemm_reps repetitions) =="
  for ranks in 1 2; do
    timed "bound.${ranks}x1" "step_bound, $ranks rank(s) x 1 thread" \
      env OPENBLAS_NUM_THREADS=1 DPTRAIN="$step_bound" bash "$top/launch/local.sh" -n "$ranks" - "$gemm_reps"
  done
  echo
fi

# --- mlp, cnn ------------------------------------------------------------------------
if want mlp; then
  echo "== default MLP, samples/s =="
  for ((i = 1; i <= repeats; i++)); do
    warmup=$mlp_warmup
    timed mlp.dpt.1x1 "dptrain 1 rank x 1 thread, run $i" dpt_run "$single" 1 1 "${mlp_common[@]}"
    timed mlp.dpt.2x1 "dptrain 2 ranks x 1 thread, run $i" dpt_run "$single" 2 1 "${mlp_common[@]}"
    timed mlp.torch.1x1 "PyTorch 1 process x 1 thread, run $i" \
      "$py" "$top/bench/peers/torch_mlp.py" --procs 1 --threads 1 --steps "$torch_mlp_steps" --warmup "$mlp_warmup" --max-seconds 20
    timed mlp.torch.1x2 "PyTorch 1 process x 2 threads, run $i" \
      "$py" "$top/bench/peers/torch_mlp.py" --procs 1 --threads 2 --steps "$torch_mlp_steps" --warmup "$mlp_warmup" --max-seconds 20
    timed mlp.torch.1x2b "PyTorch 1 process x 2 threads, OpenBLAS 1 thread, run $i" \
      "$py" "$top/bench/peers/torch_mlp.py" --procs 1 --threads 2 --blas-threads 1 --steps "$torch_mlp_steps" --warmup "$mlp_warmup" --max-seconds 20
    timed mlp.ddp.2x1 "PyTorch DDP gloo 2 processes x 1 thread, run $i" \
      "$py" "$top/bench/peers/torch_mlp.py" --procs 2 --threads 1 --steps "$torch_mlp_steps" --warmup "$mlp_warmup"
  done
  echo
fi
if want cnn; then
  echo "== CNN (configs/fashion-cnn.ini), samples/s =="
  for ((i = 1; i <= repeats; i++)); do
    warmup=$cnn_warmup
    timed cnn.dpt.2x1 "dptrain 2 ranks x 1 thread, run $i" dpt_run "$single" 2 1 "${cnn_common[@]}"
    timed cnn.ddp.2x1 "PyTorch DDP gloo 2 processes x 1 thread, run $i" \
      "$py" "$top/bench/peers/torch_cnn.py" --procs 2 --threads 1 --steps "$torch_cnn_steps" --warmup "$cnn_warmup"
  done
  echo
fi

# --- softmax ------------------------------------------------------------------------
check_point() { # DIR F: the peers' objectives at dptrain's point, one JSON line
  local s k
  s=$("$py" "$top/bench/peers/scipy_softmax.py" "${peer_n[@]}" --check "$1" --f "$2")
  k=$("$py" "$top/bench/peers/sklearn_softmax.py" "${peer_n[@]}" --check "$1" --f "$2")
  echo "{\"scipy\":$s,\"sklearn\":$k}"
}
if want softmax; then
  echo "== softmax regression to |g|_inf <= $gtol, seconds =="
  # the objectives: 5 L-BFGS iterations of dptrain, exported, evaluated by both peers
  # shellcheck disable=SC2046
  dpt_run "$double" 2 1 $(solve_common lbfgs) --set optim.max_iter=5 >"$work/probe.json"
  probe_f=$("$py" -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["f"]))' "$work/probe.json")
  "$double/dptrain" export "$(ls "$work"/ckpt/*.safetensors | tail -1)" --output "$work/probe" >/dev/null
  check_point "$work/probe" "$probe_f" >"$work/objective.json"
  "$py" - "$work/objective.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
s, k = c["scipy"], c["sklearn"]
print(f"  objective check at dptrain's iterate after 5 L-BFGS iterations (f = {s['f_dptrain']:.15f}):")
print(f"    SciPy's (NumPy) f: relative difference {s['rel_diff']:.1e}; at zero vs log 10: {s['f0_rel_diff_log10']:.1e}")
print(f"    scikit-learn's f / N: relative difference {k['rel_diff']:.1e}; gradient / N vs NumPy's: {k['grad_rel_diff']:.1e}")
bad = max(s["rel_diff"], k["rel_diff"], s["f0_rel_diff_log10"]) > 1e-12 or k["grad_rel_diff"] > 1e-10
print("    " + ("MISMATCH: the peers do not solve dptrain's problem" if bad else "identical to rounding (<= 1e-12)"))
EOF
  rm -rf "$work/ckpt" "$work/probe"
  for ((i = 1; i <= solve_repeats; i++)); do
    for method in lbfgs newton_cg; do
      for config in "2 1" "1 2"; do
        read -r ranks threads <<<"$config"
        # shellcheck disable=SC2046
        timed "softmax.dpt.$method.${ranks}x$threads" "dptrain $method $(plural "$ranks" rank) x $(plural "$threads" thread), run $i" \
          dpt_run "$double" "$ranks" "$threads" $(solve_common "$method")
        if ((i == 1)) && [[ -f $(ls "$work"/ckpt/*.safetensors 2>/dev/null | tail -1) ]]; then
          "$double/dptrain" export "$(ls "$work"/ckpt/*.safetensors | tail -1)" --output "$work/final" >/dev/null
          verified=$("$py" "$top/bench/peers/scipy_softmax.py" "${peer_n[@]}" --check "$work/final" --f 1)
          "$py" -c 'import json, sys; r = json.loads(sys.argv[1])
print("    |g|_inf of its result recomputed in NumPy: %.3e (f %.12f)" % (r["grad_inf_numpy"], r["f_numpy"]))' \
            "$verified"
          printf '{"key":"softmax.dpt.%s.%sx%s.verified","load":"","result":%s}\n' "$method" "$ranks" "$threads" \
            "$verified" >>"$runs"
        fi
        rm -rf "$work/ckpt" "$work/final"
      done
      if [[ $method == lbfgs ]]; then
        timed softmax.scipy "SciPy L-BFGS-B, 2 OpenBLAS threads, run $i" \
          env OPENBLAS_NUM_THREADS=2 "$py" "$top/bench/peers/scipy_softmax.py" "${peer_n[@]}" --gtol "$gtol"
      else
        timed softmax.sklearn "scikit-learn newton-cg, 2 OpenBLAS threads, run $i" \
          env OPENBLAS_NUM_THREADS=2 "$py" "$top/bench/peers/sklearn_softmax.py" "${peer_n[@]}" --gtol "$gtol"
      fi
    done
  done
  echo
fi

# --- the table -------------------------------------------------------------------------
"$py" - "$runs" "$gtol" "$solve_n" "$work/objective.json" "$one_l3" <<'EOF' | tee "$work/table.md"
import json, os, statistics, sys
runs_file, gtol, solve_n, objective = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
one_l3 = float(sys.argv[5])
runs, dropped = {}, {}
for line in open(runs_file):
    r = json.loads(line)
    (runs if r.get("kept", True) else dropped).setdefault(r["key"], []).append(r)

def same_l3(r):
    c = r.get("c2c") or [None]
    return all(x is not None and x < one_l3 for x in c)

def med(key, field, l3=False):
    v = [r["result"][field] for r in runs.get(key, []) if field in r["result"] and (not l3 or same_l3(r))]
    return statistics.median(v) if v else None

def n_l3(key):
    return sum(same_l3(r) for r in runs.get(key, []))

def loads(*keys):
    v = [float(r["load"].split()[0]) for k in keys for r in runs.get(k, []) if r["load"]]
    o = [r["others"] for k in keys for r in runs.get(k, []) if "others" in r]
    return (f"{min(v):.2f}-{max(v):.2f}" if v else "-") + (f"; {min(o):.2f}-{max(o):.2f}" if o else "")

def n_runs(key):
    return len(runs.get(key, []))

rows = []
def row(item, dpt, peer, ratio, target, met, load):
    rows.append((item, dpt, peer, ratio, target, met, load))

def fmt(x, unit=""):
    return "-" if x is None else (f"{x:,.0f}{unit}" if abs(x) >= 100 else f"{x:.2f}{unit}")

def verdict(ok, margin):
    return "-" if ok is None else ("met" if ok else "NOT met") + f" ({margin})"

g1 = runs.get("gemm.1", [{}])[0].get("result", {})
g2 = runs.get("gemm.2", [{}])[0].get("result", {})
ideal1 = g1.get("s_ideal_per_rank")
d11, d21 = med("mlp.dpt.1x1", "samples_per_s"), med("mlp.dpt.2x1", "samples_per_s")
t11, t12, t12b, ddp = (med(k, "samples_per_s") for k in ("mlp.torch.1x1", "mlp.torch.1x2", "mlp.torch.1x2b",
                                                         "mlp.ddp.2x1"))
mload = loads("mlp.dpt.1x1", "mlp.dpt.2x1", "mlp.torch.1x1", "mlp.torch.1x2", "mlp.torch.1x2b", "mlp.ddp.2x1")
if d21 and ddp:
    r = d21 / ddp
    row("MLP samples/s: dptrain 2x1 / PyTorch DDP gloo 2x1", fmt(d21), fmt(ddp), f"{r:.2f}x", ">= 3x",
        verdict(r >= 3, f"{r / 3:.2f} of the target"), mload)
if d21 and ideal1:
    r = d21 / (2 * ideal1)
    row("MLP samples/s: dptrain 2x1 / SGEMM-bound ideal 2x1 (2 x 1-core ideal)", fmt(d21), fmt(2 * ideal1),
        f"{100 * r:.1f}%", ">= 85%", verdict(r >= 0.85, f"{100 * r - 85:+.1f} points"), mload)
if d11 and ideal1:
    r = d11 / ideal1
    row("MLP samples/s: dptrain 1x1 / SGEMM-bound ideal 1x1", fmt(d11), fmt(ideal1), f"{100 * r:.1f}%", "-", "-", mload)
if d21 and g2.get("s_ideal_per_rank"):
    i2 = 2 * g2["s_ideal_per_rank"]
    row("MLP samples/s: dptrain 2x1 / ideal from 2 concurrent gemm_peak copies", fmt(d21), fmt(i2),
        f"{100 * d21 / i2:.1f}%", "-", "-", mload)
if d11 and t11:
    row("MLP samples/s: dptrain 1x1 / PyTorch 1 process x 1 thread", fmt(d11), fmt(t11), f"{d11 / t11:.2f}x", "-", "-", mload)
if d21 and t12:
    row("MLP samples/s: dptrain 2x1 / PyTorch 1 process x 2 threads", fmt(d21), fmt(t12), f"{d21 / t12:.2f}x", "-", "-", mload)
if d21 and t12b:
    row("MLP samples/s: dptrain 2x1 / PyTorch 1 process x 2 threads, OpenBLAS 1 thread", fmt(d21), fmt(t12b),
        f"{d21 / t12b:.2f}x", "-", "-", mload)
if d11 and d21:
    e = d21 / (2 * d11)
    row("scaling: dptrain samples/s(2x1) / (2 x samples/s(1x1)), batch 64 per rank", fmt(d21), fmt(2 * d11),
        f"{100 * e:.1f}%", ">= 90%", verdict(e >= 0.9, f"{100 * e - 90:+.1f} points"), loads("mlp.dpt.1x1", "mlp.dpt.2x1"))
# Bounds at batch 64 (bench/step_bound.c): the GEMMs at their 1-core speed
# (the ideal's time per step) plus what the step does besides them, timed
# without the GEMMs; and, as a floor for any implementation, the update's
# pass at 16 of its 24 bytes a parameter (theta and v read and written; the
# gradient read and cleared as well now) plus the exchange as timed.
b1, b2 = (runs.get(f"bound.{k}", [{}])[-1].get("result") for k in ("1x1", "2x1"))
gemm_us = 64e6 / ideal1 if ideal1 else None
for label, b in (("1x1", b1), ("2x1", b2)):
    if not (b and gemm_us):
        continue
    rest = b["step_no_gemm_us"]
    r = gemm_us / (gemm_us + rest)
    row(f"MLP {label} bound: GEMMs at the ideal ({gemm_us:.0f} us) + the step without its GEMMs ({rest:.0f} us),"
        " share of the ideal", f"{rest:.0f} us", f"{gemm_us:.0f} us", f"<= {100 * r:.1f}%",
        ">= 85%" if label == "2x1" else "-", ("reachable" if r >= 0.85 else "NOT reachable by this step") if label == "2x1" else "-",
        loads(f"bound.{label}"))
    exchange = b["reduce_scatter_us"] + b["allgather_us"]
    floor = b["update_us"] * 16 / 24 + exchange
    r = gemm_us / (gemm_us + floor)
    row(f"MLP {label} floor: GEMMs at the ideal + the update at 16 bytes a parameter ({b['update_us'] * 16 / 24:.0f} us)"
        + (f" + the exchange ({exchange:.0f} us)" if exchange else "") + ", nothing else; share of the ideal",
        f"{floor:.0f} us", f"{gemm_us:.0f} us", f"<= {100 * r:.1f}%", "-", "-", loads(f"bound.{label}"))
    outside_floor = b["update_us"] * 16 / 24 + b["allgather_us"]
    r = outside_floor / (gemm_us + floor)
    row(f"MLP {label} floor outside BLAS: (the update at 16 bytes a parameter"
        + (" + the all-gather" if b["allgather_us"] else "") + ") / (GEMMs at the ideal + the floor above)",
        f"{outside_floor:.0f} us", f"{gemm_us + floor:.0f} us", f">= {100 * r:.1f}%", "-", "-", loads(f"bound.{label}"))
    # outside BLAS: all of the step without GEMMs but the reduce-scatter (its saxpy is BLAS)
    outside = rest - b["reduce_scatter_us"]
    r = outside / (gemm_us + rest)
    row(f"MLP {label} outside BLAS at least: (step without GEMMs - reduce-scatter) / (GEMMs at the ideal + step"
        " without GEMMs)", f"{outside:.0f} us", f"{gemm_us + rest:.0f} us", f">= {100 * r:.1f}%", "<= 10%",
        "reachable" if r <= 0.10 else "NOT reachable by this step", loads(f"bound.{label}"))
c21, cddp = med("cnn.dpt.2x1", "samples_per_s"), med("cnn.ddp.2x1", "samples_per_s")
if c21 and cddp:
    r = c21 / cddp
    row("CNN samples/s: dptrain 2x1 / PyTorch DDP gloo 2x1", fmt(c21), fmt(cddp), f"{r:.2f}x", ">= 2x",
        verdict(r >= 2, f"{r / 2:.2f} of the target"), loads("cnn.dpt.2x1", "cnn.ddp.2x1"))
# the 2-process runs again, only those with CPUs 0 and 1 on one L3 (c2c)
def l3_note(*keys):
    return " (" + ", ".join(f"{n_l3(k)} of {n_runs(k)}" for k in keys) + " runs)"
d21l, ddpl, c21l, cddpl = (med(k, "samples_per_s", True) for k in ("mlp.dpt.2x1", "mlp.ddp.2x1", "cnn.dpt.2x1",
                                                                  "cnn.ddp.2x1"))
if one_l3 <= 0: # not split (see C2C_ONE_L3)
    d21l = ddpl = c21l = cddpl = None
if d21l and ddpl:
    r = d21l / ddpl
    row("one L3: MLP dptrain 2x1 / PyTorch DDP gloo 2x1" + l3_note("mlp.dpt.2x1", "mlp.ddp.2x1"), fmt(d21l),
        fmt(ddpl), f"{r:.2f}x", ">= 3x", verdict(r >= 3, f"{r / 3:.2f} of the target"), mload)
if d21l and ideal1:
    r = d21l / (2 * ideal1)
    row("one L3: MLP dptrain 2x1 / SGEMM-bound ideal 2x1" + l3_note("mlp.dpt.2x1"), fmt(d21l), fmt(2 * ideal1),
        f"{100 * r:.1f}%", ">= 85%", verdict(r >= 0.85, f"{100 * r - 85:+.1f} points"), mload)
if d21l and d11:
    e = d21l / (2 * d11)
    row("one L3: scaling 1x1 -> 2x1" + l3_note("mlp.dpt.2x1"), fmt(d21l), fmt(2 * d11), f"{100 * e:.1f}%", ">= 90%",
        verdict(e >= 0.9, f"{100 * e - 90:+.1f} points"), loads("mlp.dpt.1x1", "mlp.dpt.2x1"))
if c21l and cddpl:
    r = c21l / cddpl
    row("one L3: CNN dptrain 2x1 / PyTorch DDP gloo 2x1" + l3_note("cnn.dpt.2x1", "cnn.ddp.2x1"), fmt(c21l),
        fmt(cddpl), f"{r:.2f}x", ">= 2x", verdict(r >= 2, f"{r / 2:.2f} of the target"),
        loads("cnn.dpt.2x1", "cnn.ddp.2x1"))
what = f"first {solve_n} samples" if solve_n else "60000 samples"
for method, peer_key, peer_name in (("lbfgs", "softmax.scipy", "SciPy L-BFGS-B"),
                                    ("newton_cg", "softmax.sklearn", "scikit-learn newton-cg")):
    p = med(peer_key, "seconds")
    for cfg in ("2x1", "1x2"):
        d = med(f"softmax.dpt.{method}.{cfg}", "seconds")
        if d and p:
            r = d / p
            main = cfg == "2x1"
            row(f"softmax ({what}) to max-norm of g <= {gtol:g}, seconds: dptrain {method} {cfg} / {peer_name} (2 threads)",
                f"{d:.2f} s", f"{p:.2f} s", f"{r:.2f}x", "<= 0.4x" if main else "-",
                verdict(r <= 0.4, f"{0.4 / r:.2f} of the target") if main else "-",
                loads(f"softmax.dpt.{method}.{cfg}", peer_key))

print("## dptrain against its peers and the hardware limit (medians)\n")
print("| work item | dptrain | peer / limit | ratio | target | met? | load; others' cores |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")

print("\nruns per configuration (and repeated because disturbed): "
      + ", ".join(f"{k} {n_runs(k)}" + (f" (+{len(dropped[k])})" if k in dropped else "")
                  for k in sorted(runs) if not k.endswith("verified")))
print("load: the 1-minute load average before each run (this script's previous run included); others' cores:"
      " the CPU that other processes used during each run, in cores (0 = the run had the machine to itself)")
if one_l3 > 0:
    print(f"one L3: the medians over the 2-process runs with a cache-line round trip between CPUs 0 and 1 under"
          f" {one_l3:g} ns before and after the run (bench/core_latency.c): both vCPUs on one L3 of the host")
else:
    print("no one-L3 rows: not an AMD CPU (one L3 per socket; C2C_ONE_L3=NS splits the runs anyway)")

sol = [k for k in runs if k.startswith("softmax.") and not k.endswith("verified")]
if sol:
    print(f"\n### softmax regression ({what}, float64, L2 1e-4 on W), to max-norm of the gradient <= {gtol:g} (medians)\n")
    print("| solver | seconds | iterations | f/g evaluations | Hessian-vector products | f | max-norm of g (NumPy) |")
    print("|---|---|---|---|---|---|---|")
    names = {"softmax.dpt.lbfgs.2x1": "dptrain lbfgs m=10, 2 ranks x 1 thread",
             "softmax.dpt.lbfgs.1x2": "dptrain lbfgs m=10, 1 rank x 2 threads",
             "softmax.scipy": "SciPy L-BFGS-B maxcor=10, 2 threads",
             "softmax.dpt.newton_cg.2x1": "dptrain newton_cg (Hessian), 2 ranks x 1 thread",
             "softmax.dpt.newton_cg.1x2": "dptrain newton_cg (Hessian), 1 rank x 2 threads",
             "softmax.sklearn": "scikit-learn newton-cg, 2 threads"}
    for k, name in names.items():
        if k not in runs:
            continue
        rs = [r["result"] for r in runs[k]]
        v = runs.get(k + ".verified")
        ginf = v[0]["result"]["grad_inf_numpy"] if v else statistics.median(r["grad_inf"] for r in rs)
        prods = med(k, "products")
        evals = f"{med(k, 'evals'):.0f}"
        if "loss_calls" in rs[0]:
            evals += f" ({med(k, 'loss_calls'):.0f} f, {med(k, 'gradient_calls'):.0f} g)"
        print(f"| {name} | {med(k, 'seconds'):.2f} | {med(k, 'iterations'):.0f} | {evals} | "
              f"{'-' if prods is None else f'{prods:.0f}'} | {rs[0]['f']:.12f} | {ginf:.2e} |")
    if os.path.exists(objective):
        c = json.load(open(objective))
        print(f"\nobjectives identical: at dptrain's iterate after 5 L-BFGS iterations SciPy's f differs by "
              f"{c['scipy']['rel_diff']:.1e} relative, scikit-learn's (sum, / N) by {c['sklearn']['rel_diff']:.1e}, "
              f"its gradient by {c['sklearn']['grad_rel_diff']:.1e}; f(0) = log 10 to {c['scipy']['f0_rel_diff_log10']:.1e}")

if g1:
    print("\n### GEMM limit (OpenBLAS, 1 thread, bench/gemm_peak.c)\n")
    print(f"- SGEMM, the 8 GEMMs of one MLP step at batch 64: {g1['s_step_us']:.0f} us "
          f"({g1['s_step_gflops']:.1f} GFLOP/s) -> ideal {g1['s_ideal_per_rank']:,.0f} samples/s per rank"
          + (f"; two copies at once: {g2['s_step_us']:.0f} us each -> {g2['s_ideal_per_rank']:,.0f}" if g2 else ""))
    print(f"- DGEMM, the same step: {g1['d_step_us']:.0f} us ({g1['d_step_gflops']:.1f} GFLOP/s) -> "
          f"{g1['d_ideal_per_rank']:,.0f} samples/s per rank")
    print(f"- 2048^3: SGEMM {g1['s_square_gflops']:.1f} GFLOP/s, DGEMM {g1['d_square_gflops']:.1f} GFLOP/s per core")
EOF
if [[ -n $save ]]; then
  mkdir -p "$save"
  cp "$runs" "$save/runs.jsonl"
  cat "$work/header.txt" "$work/table.md" >"$save/table.md"
  echo "saved: $save/runs.jsonl, $save/table.md"
fi
((failures == 0)) || { echo "compare.sh: $failures run(s) failed" >&2; exit 1; }
