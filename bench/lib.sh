# Shared set-up of the benchmark scripts (sourced): installs what is
# missing, builds the binary into build/bench-PRECISION (single, or
# bench_precision=double set before sourcing; or $DPT_BENCH_BUILD),
# exports DPTRAIN for launch/local.sh, and gives a scratch directory $work.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_precision=${bench_precision:-single}
# DPT_BENCH_BUILD: another build directory (a benchmark run that must not
# share build/bench-* with someone rebuilding it meanwhile)
build=${DPT_BENCH_BUILD:-"$top/build/bench-$bench_precision"}
bash "$top/launch/install-deps.sh" >/dev/null
bash "$top/launch/build.sh" "$build" -DDPT_PRECISION="$bench_precision" -DDPT_BUILD_TESTS=OFF >/dev/null
export DPTRAIN="$build/dptrain"
work=$(mktemp -d /tmp/dpt-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the median of numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# a numeric field of a JSON record on stdin
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
