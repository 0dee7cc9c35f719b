#!/usr/bin/env bash
# Runs dptrain as several MPI processes on this machine.
#
#   launch/local.sh -n RANKS [dptrain arguments...]
#   e.g. launch/local.sh -n 2 train configs/default.ini --set train.epochs=5
#
# Sets what Open MPI needs here: the root-override variables when run as
# root, --oversubscribe when RANKS exceeds the cores, and
# OPENBLAS_NUM_THREADS = cores / RANKS (at least 1) so that ranks x BLAS
# threads fit the cores (unless you set OPENBLAS_NUM_THREADS yourself).
# The binary is $DPTRAIN, or build/dptrain of this repository.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ranks=2
if [[ "${1:-}" == "-n" || "${1:-}" == "-np" ]]; then
  [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "local.sh: -n needs a positive number" >&2; exit 2; }
  ranks=$2; shift 2
fi
dptrain=${DPTRAIN:-$top/build/dptrain}
[[ -x "$dptrain" ]] || { echo "local.sh: $dptrain not found; build first (bash launch/build.sh)" >&2; exit 2; }

cores=$(nproc)
mpi_args=(-n "$ranks")
(( ranks > cores )) && mpi_args+=(--oversubscribe)
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if [[ -z "${OPENBLAS_NUM_THREADS:-}" ]]; then
  threads=$(( cores / ranks )); (( threads < 1 )) && threads=1
  export OPENBLAS_NUM_THREADS=$threads
fi
# Give every rank its threads' cores; "none" when ranks share cores.
if (( ranks * OPENBLAS_NUM_THREADS <= cores )); then
  mpi_args+=(--map-by "slot:PE=$OPENBLAS_NUM_THREADS" --bind-to core)
else
  mpi_args+=(--bind-to none)
fi
exec mpirun "${mpi_args[@]}" -x OPENBLAS_NUM_THREADS "$dptrain" "$@"
