#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what is missing, builds
# the single- and double-precision variants, and runs every test (unit, MPI,
# end-to-end) through ctest. Exit status non-zero if anything fails.
#
#   bash tests/run.sh            # both precisions
#   DPT_PRECISIONS=double bash tests/run.sh
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$top/launch/install-deps.sh" --tests

precisions=${DPT_PRECISIONS:-"single double"}
failed=()
for precision in $precisions; do
  build="$top/build/test-$precision"
  echo "== $precision precision: building in $build"
  bash "$top/launch/build.sh" "$build" -DDPT_PRECISION="$precision"
  if grep -q "warning:" "$build/make.log"; then
    echo "tests: the $precision build has compiler warnings (see above)" >&2
    failed+=("$precision:warnings")
  fi
  echo "== $precision precision: running tests"
  if ! (cd "$build" && ctest --output-on-failure --timeout 900 -j 1); then
    failed+=("$precision")
  fi
done

if (( ${#failed[@]} )); then
  echo "tests: FAILED (${failed[*]})" >&2
  exit 1
fi
echo "tests: all passed ($precisions)"
