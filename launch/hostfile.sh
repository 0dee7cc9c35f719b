#!/usr/bin/env bash
# Runs dptrain on several hosts without a scheduler: Open MPI's mpirun
# starts its daemon (orted) on every host of a hostfile over ssh, the daemons
# start the ranks, and the ranks talk over TCP.
#
#   launch/hostfile.sh --hostfile FILE [-n RANKS] [--ranks-per-host K]
#                      [--net CIDR|IFACE] [--cores-per-host C] [--bind auto|core|none]
#                      [--transport tcp|ucx|auto] [--rsh-agent CMD] [--dry-run]
#                      [--] train CONFIG [--set ...] [--resume auto|PATH]
#   e.g. launch/hostfile.sh --hostfile hosts --net 10.1.0.0/16 --ranks-per-host 4 \
#            train configs/default.ini --set checkpoint.dir=/shared/ck --resume auto
#
# The hostfile is Open MPI's: one host a line, optionally `slots=N`; `#`
# starts a comment. It prints the command it runs (with --dry-run, only that,
# on stdout: a command you can paste).
#
# What it needs:
# - Password-less ssh from this machine to every host (and nothing else: the
#   daemons are started from here, not in a tree, plm_rsh_no_tree_spawn=1).
#   Another agent than ssh: --rsh-agent CMD, or OMPI_MCA_plm_rsh_agent in
#   the environment (the tests use tests/netns/rsh-agent.sh).
# - Open MPI at the same path on every host (on the PATH of a non-interactive
#   ssh shell; with MPIRUN=/opt/ompi/bin/mpirun, mpirun by an absolute path
#   tells the hosts that prefix too), and the same dptrain: $DPTRAIN or
#   build/dptrain of this repository, by its absolute path, so the binary,
#   the config, the data and the checkpoint directory must be on a file
#   system every host sees at the same path (NFS, Lustre, ...). mpirun starts
#   the ranks in the current directory (it must exist on every host), so
#   relative paths in the config resolve alike everywhere; rank 0 writes the
#   checkpoints and metrics.
#
# Placement: --ranks-per-host K maps K ranks to each host (ppr:K:node) and
# RANKS defaults to hosts x K; without it ranks go round-robin over the hosts
# (map by node) and RANKS defaults to one per host. Cores per host: --cores-
# per-host, else the smallest slots= of the hostfile when every line has
# one, else this machine's physical cores (hosts alike). Each rank gets
# OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) = cores / ranks per host, at
# least 1, unless you set them. Binding (--bind auto): when ranks x threads
# fit the cores, every rank is bound to its own cores (--map-by ...:PE=T
# --bind-to core): its BLAS threads stay on those cores and its memory near
# them, and ranks never migrate onto each other's cores; when they do not fit
# (more ranks than cores), binding would stack ranks on the same cores, so
# --bind-to none (and --oversubscribe beyond the cores).
#
# Transport (--transport):
# - tcp (default): pml ob1 with btl tcp,self,vader: TCP between hosts,
#   shared memory (vader) within a host. This forces TCP even when the hosts
#   have InfiniBand (otherwise UCX may take the traffic).
# - ucx: pml ucx (InfiniBand/RoCE through UCX; the job fails at start if UCX
#   finds no usable device). Pick the device with UCX_NET_DEVICES=mlx5_0:1
#   and transports with UCX_TLS; every UCX_* variable set here is passed on.
# - auto: Open MPI chooses (UCX when it finds a device, else ob1 over TCP).
# --net restricts both the MPI traffic (btl_tcp_if_include) and the
# daemons' own connections (oob_tcp_if_include) to one network, given as a
# CIDR (10.1.0.0/16) or interface names (eth1): needed whenever hosts have
# several interfaces (docker0, virbr0, a management network), which otherwise
# make Open MPI try an unreachable address and hang.
#
# A lost host aborts the job: TCP keepalive on the daemons' connections
# (oob_tcp_keepalive_time=4 s idle, then probes every 2 s, 3 unanswered =
# dead: about 10 s) makes mpirun notice a host that vanished without
# closing its connections (power, network) and end every rank, instead of
# hanging; a crashed daemon or rank ends the job at once. Resume with
# --resume auto from the newest checkpoint.
#
# Every setting is passed once, as an OMPI_MCA_* environment variable (a
# parameter given twice on the command line is fatal in Open MPI 4.1); mpirun
# forwards them to the daemons. Any OMPI_MCA_* you set yourself wins over
# the defaults here. Passed to the ranks (-x): OPENBLAS_NUM_THREADS,
# OMP_NUM_THREADS and every DPTRAIN_* and UCX_* variable set here.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=hostfile.sh
usage() { # the header above, without the comment signs
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
  exit "${1:-0}"
}
die() { echo "$me: $*" >&2; exit 2; }

hostfile= ranks= per_host= net= cores= bind=auto transport=tcp dry=0
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive number, not '$2'"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --hostfile) [[ $# -ge 2 ]] || die "--hostfile needs a file"; hostfile=$2; shift 2 ;;
    -n|-np) [[ $# -ge 2 ]] || die "$1 needs a number"; posint "$1" "$2"; ranks=$2; shift 2 ;;
    --ranks-per-host) [[ $# -ge 2 ]] || die "$1 needs a number"; posint "$1" "$2"; per_host=$2; shift 2 ;;
    --cores-per-host) [[ $# -ge 2 ]] || die "$1 needs a number"; posint "$1" "$2"; cores=$2; shift 2 ;;
    --net) [[ $# -ge 2 && -n "$2" ]] || die "--net needs a CIDR or interface"; net=$2; shift 2 ;;
    --bind) [[ "${2:-}" =~ ^(auto|core|none)$ ]] || die "--bind is auto, core or none"; bind=$2; shift 2 ;;
    --transport) [[ "${2:-}" =~ ^(tcp|ucx|auto)$ ]] || die "--transport is tcp, ucx or auto"; transport=$2; shift 2 ;;
    --rsh-agent) [[ $# -ge 2 && -n "$2" ]] || die "--rsh-agent needs a command"; export OMPI_MCA_plm_rsh_agent=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ -n "$hostfile" ]] || die "--hostfile FILE is required (see --help)"
[[ -r "$hostfile" ]] || die "cannot read hostfile $hostfile"
[[ $# -gt 0 ]] || die "no dptrain arguments (e.g. train CONFIG)"
hostfile=$(readlink -f "$hostfile")

# hosts (unique, in order) and their slots
mapfile -t hosts < <(sed 's/#.*//' "$hostfile" | awk 'NF && !seen[$1]++ { print $1 }')
nhosts=${#hosts[@]}
(( nhosts > 0 )) || die "no host in $hostfile"
min_slots=$(sed 's/#.*//' "$hostfile" | awk 'NF {
    s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^slots=[0-9]+$/) s = substr($i, 7) + 0
    if (s == 0) { none = 1 } else if (min == "" || s < min) min = s }
  END { if (!none) print min }')

if [[ -z "$cores" ]]; then
  if [[ -n "$min_slots" ]]; then
    cores=$min_slots cores_from="slots= in the hostfile"
  else
    # physical cores (Open MPI binds and counts PE= in cores, not hardware threads)
    cores=$( (lscpu -p=core,socket 2>/dev/null || true) | { grep -v '^#' || true; } | sort -u | wc -l)
    (( cores > 0 )) || cores=$(nproc)
    cores_from="this machine's cores"
  fi
else
  cores_from="--cores-per-host"
fi

# ranks and ranks on the busiest host
if [[ -n "$per_host" ]]; then
  : "${ranks:=$((nhosts * per_host))}"
  (( ranks <= nhosts * per_host )) || die "-n $ranks is more than $nhosts hosts x $per_host ranks per host"
  busiest=$per_host
  map="ppr:$per_host:node"
else
  : "${ranks:=$nhosts}"
  busiest=$(( (ranks + nhosts - 1) / nhosts ))
  map=node
fi

threads_set=1
if [[ -z "${OPENBLAS_NUM_THREADS:-}" ]]; then
  threads_set=0
  OPENBLAS_NUM_THREADS=$(( cores / busiest )); (( OPENBLAS_NUM_THREADS >= 1 )) || OPENBLAS_NUM_THREADS=1
fi
: "${OMP_NUM_THREADS:=$OPENBLAS_NUM_THREADS}"
export OPENBLAS_NUM_THREADS OMP_NUM_THREADS

mpi_args=(--hostfile "$hostfile" -n "$ranks")
if [[ $bind == auto ]]; then
  if (( busiest * OPENBLAS_NUM_THREADS <= cores )); then bind=core; else bind=none; fi
fi
if [[ $bind == core ]]; then
  mpi_args+=(--map-by "$map:PE=$OPENBLAS_NUM_THREADS" --bind-to core)
else
  mpi_args+=(--map-by "$map" --bind-to none)
fi
if (( busiest > cores )); then mpi_args+=(--oversubscribe); fi

# environment for the ranks
mpi_args+=(-x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)
for name in $(compgen -e); do
  if [[ "$name" =~ ^(DPTRAIN|UCX)_ ]]; then mpi_args+=(-x "$name"); fi
done

# MCA settings: defaults for what the user has not set, once each, as env vars
mca_names=()
mca() { # NAME VALUE
  local var="OMPI_MCA_$1"
  if [[ -z "${!var+x}" ]]; then export "$var=$2"; fi
  mca_names+=("$var")
}
mca plm rsh
mca plm_rsh_no_tree_spawn 1
case $transport in
  tcp) mca pml ob1; mca btl tcp,self,vader ;;
  ucx) mca pml ucx ;;
  auto) ;;
esac
if [[ -n "$net" ]]; then
  mca btl_tcp_if_include "$net"
  mca oob_tcp_if_include "$net"
elif [[ -z "${OMPI_MCA_btl_tcp_if_include:-}${OMPI_MCA_oob_tcp_if_include:-}" ]]; then
  echo "$me: note: no --net: Open MPI may try every interface of the hosts (give the cluster network, e.g. --net 10.1.0.0/16)" >&2
fi
mca oob_tcp_keepalive_time 4
mca oob_tcp_keepalive_intvl 2
mca oob_tcp_keepalive_probes 3
# any other OMPI_MCA_* the user set: shown in the printed command too
for name in $(compgen -e); do
  if [[ "$name" == OMPI_MCA_* && " ${mca_names[*]} " != *" $name "* ]]; then mca_names+=("$name"); fi
done

if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

dptrain=${DPTRAIN:-$top/build/dptrain}
dptrain=$(readlink -f "$dptrain" 2>/dev/null || echo "$dptrain")
mpirun=${MPIRUN:-mpirun}

cmd=(env)
for var in "${mca_names[@]}"; do cmd+=("$var=${!var}"); done
cmd+=("$mpirun" "${mpi_args[@]}" "$dptrain" "$@")
printed=
for word in "${cmd[@]}"; do # shell quoting, only where needed
  if [[ "$word" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then printed+=" $word"; else printed+=" '${word//\'/\'\\\'\'}'"; fi
done
printed=${printed# }

if (( dry )); then
  echo "$printed"
  exit 0
fi
[[ -x "$dptrain" ]] || die "$dptrain not found; build first (bash launch/build.sh); it must be at this path on every host"
echo "$me: $nhosts hosts, $ranks ranks ($busiest per host at most), BLAS threads per rank: $OPENBLAS_NUM_THREADS$( ((threads_set)) && echo " (set by you)" ), cores per host: $cores ($cores_from), bind $bind, transport $transport" >&2
echo "$me: running: $printed" >&2
exec "${cmd[@]}"
