# Shared set-up of the benchmark scripts (sourced): installs what is
# missing, builds the single-precision binary into build/bench-single,
# exports DPTRAIN for launch/local.sh, and gives a scratch directory $work.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$top/build/bench-single"
bash "$top/launch/install-deps.sh" >/dev/null
bash "$top/launch/build.sh" "$build" -DDPT_PRECISION=single -DDPT_BUILD_TESTS=OFF >/dev/null
export DPTRAIN="$build/dptrain"
work=$(mktemp -d /tmp/dpt-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the median of numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# a numeric field of a JSON record on stdin
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
