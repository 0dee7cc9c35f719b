#!/usr/bin/env bash
# Installs what dptrain needs to build, test and train, if it is missing.
#
#   bash launch/install-deps.sh [--no-data] [--tests] [--bench] [--checkers]
#
# --tests adds what only the test suite needs (tests/run.sh passes it): a
# real Slurm scheduler (slurmctld, slurmd, slurm-client, munge), network
# namespaces (iproute2) and NumPy (python3-numpy) to check .npy files.
# --bench adds the peers bench/compare.sh measures dptrain against (PyTorch,
# SciPy, scikit-learn from Debian: python3-torch, python3-scipy,
# python3-sklearn) and perf (linux-perf) for profiles.
# --checkers adds the tools of CI's checking stages (.ci/run): clang with
# libFuzzer (clang, libclang-rt-14-dev) and valgrind.
#
# As root on Debian/Ubuntu: apt-get installs the missing packages (nothing is
# done when all are present). Elsewhere (a cluster without root or apt): it
# checks the libraries with pkg-config, names each missing one, and says how
# to point CMake at a copy installed elsewhere; exit status 1 if any is missing.
set -euo pipefail

want_data=1 want_checkers=0 want_tests=0 want_bench=0
for arg in "$@"; do
  case "$arg" in
    --no-data) want_data=0 ;;
    --tests) want_tests=1 ;;
    --bench) want_bench=1 ;;
    --checkers) want_checkers=1 ;;
    *) echo "install-deps: unknown option $arg (use --no-data, --tests, --bench, --checkers)" >&2; exit 2 ;;
  esac
done

# Debian package -> what it provides (pkg-config name or command)
packages=(
  "cmake:cmd:cmake" "make:cmd:make" "gcc:cmd:gcc" "pkg-config:cmd:pkg-config"
  "openmpi-bin:cmd:mpirun" "libopenmpi-dev:cmd:mpicc"
  "libopenblas-dev:pc:openblas" "libscalapack-openmpi-dev:pc:scalapack-openmpi"
  "libcunit1-dev:pc:cunit" "zlib1g-dev:pc:zlib" "libinih-dev:pc:inih" "libcjson-dev:pc:libcjson"
  "gnuplot-nox:cmd:gnuplot" "jq:cmd:jq"
)
if (( want_tests )); then
  packages+=(
    "slurmctld:cmd:slurmctld" "slurmd:cmd:slurmd" "slurm-client:cmd:sbatch" "munge:cmd:munged"
    "iproute2:cmd:ip" "python3-numpy:file:/usr/lib/python3/dist-packages/numpy/__init__.py"
  )
fi
if (( want_bench )); then
  py=/usr/lib/python3/dist-packages
  packages+=("python3-numpy:file:$py/numpy/__init__.py" "python3-torch:file:$py/torch/__init__.py"
    "python3-scipy:file:$py/scipy/__init__.py" "python3-sklearn:file:$py/sklearn/__init__.py"
    "linux-perf:cmd:perf")
fi
# clang's libFuzzer runtime is only recommended by clang, so it is named here
if (( want_checkers )); then
  packages+=("clang:cmd:clang" "valgrind:cmd:valgrind"
    "libclang-rt-14-dev:file:/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a")
fi
data_dir=/usr/share/datasets/fashion-mnist

have() { # kind name
  case "$1" in
    cmd) command -v "$2" >/dev/null 2>&1 ;;
    pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$2" ;;
    file) compgen -G "$2" >/dev/null ;;
  esac
}

missing_pkgs=() missing_what=()
for entry in "${packages[@]}"; do
  IFS=: read -r pkg kind name <<<"$entry"
  if ! have "$kind" "$name"; then missing_pkgs+=("$pkg"); missing_what+=("$name ($pkg)"); fi
done
if (( want_data )) && [[ ! -f "$data_dir/train-images-idx3-ubyte.gz" ]]; then
  missing_pkgs+=(dataset-fashion-mnist); missing_what+=("Fashion-MNIST in $data_dir (dataset-fashion-mnist)")
fi

if (( ${#missing_pkgs[@]} == 0 )); then
  echo "install-deps: all dependencies present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: installing ${missing_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
  echo "install-deps: done"
  exit 0
fi

{
  echo "install-deps: missing (and no root/apt-get to install them here):"
  for what in "${missing_what[@]}"; do echo "  - $what"; done
  cat <<'MSG'
On a cluster, load the site's modules (e.g. module load openmpi openblas scalapack)
or install the libraries into a prefix, then point the build at them:
  export PKG_CONFIG_PATH=<prefix>/lib/pkgconfig:$PKG_CONFIG_PATH
  cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix> -DMPI_C_COMPILER=<path/to/mpicc>
Fashion-MNIST can live anywhere: set [data] dir (or --set data.dir=<dir>).
On Debian as root:
  apt-get install libopenmpi-dev openmpi-bin libscalapack-openmpi-dev libopenblas-dev \
    libcunit1-dev zlib1g-dev libinih-dev libcjson-dev pkg-config cmake dataset-fashion-mnist
  (with --tests also: slurmctld slurmd slurm-client munge iproute2 python3-numpy;
   with --bench also: python3-torch python3-scipy python3-sklearn linux-perf;
   with --checkers also: clang libclang-rt-14-dev valgrind)
MSG
} >&2
exit 1
