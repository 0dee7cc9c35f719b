#!/usr/bin/env bash
# Configures and builds dptrain with CMake.
#   bash launch/build.sh [BUILD_DIR] [extra cmake arguments, e.g. -DDPT_PRECISION=double]
# BUILD_DIR defaults to build/ at the top of the repository.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$top/build}
shift || true
mkdir -p "$build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >"$build/cmake.log" 2>&1 || {
  cat "$build/cmake.log" >&2; echo "build: cmake configure failed (log: $build/cmake.log)" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" -- --no-print-directory >"$build/make.log" 2>&1 || {
  cat "$build/make.log" >&2; echo "build: compile failed (log: $build/make.log)" >&2; exit 1; }
if grep -q "warning:" "$build/make.log"; then
  grep "warning:" "$build/make.log" >&2
fi
echo "build: $build/dptrain ($(grep -o 'precision [a-z]*' "$build/cmake.log" | head -1))"
