#!/usr/bin/env bash
# Runs every unit test (ctest label "unit") of a build under valgrind
# memcheck, with the command, environment and working directory ctest would
# use. A memory error or a definite leak fails the test.
#
#   bash tests/sanitizer/valgrind-unit.sh BUILD_DIR [ctest -R regex]
#
# Use a normal (not -DDPT_SANITIZE) build: valgrind and ASan do not mix.
# Logs: BUILD_DIR/valgrind/<test>.log. Exit status 1 if any test fails.
set -euo pipefail
build=${1:?usage: valgrind-unit.sh BUILD_DIR [regex]}
regex=${2:-.}
command -v valgrind >/dev/null || { echo "valgrind-unit: valgrind not found (Debian package valgrind)" >&2; exit 1; }
command -v jq >/dev/null || { echo "valgrind-unit: jq not found (Debian package jq)" >&2; exit 1; }
build=$(cd "$build" && pwd)
logs=$build/valgrind
mkdir -p "$logs"

# one line per test: name, then a NUL-free JSON object with the rest
tests=$(cd "$build" && ctest -L unit -R "$regex" --show-only=json-v1 | jq -c '.tests[] | {name,
  command, env: ([.properties[]? | select(.name == "ENVIRONMENT") | .value[]]),
  dir: ([.properties[]? | select(.name == "WORKING_DIRECTORY") | .value] + ["."])[0]}')
[[ -n "$tests" ]] || { echo "valgrind-unit: no unit tests in $build" >&2; exit 1; }

failed=() passed=0
while IFS= read -r test; do
  name=$(jq -r .name <<<"$test")
  mapfile -t cmd < <(jq -r '.command[]' <<<"$test")
  mapfile -t env < <(jq -r '.env[]' <<<"$test")
  dir=$(jq -r .dir <<<"$test")
  start=$SECONDS
  if (cd "$dir" && env "${env[@]}" valgrind -q --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite "${cmd[@]}") >"$logs/$name.log" 2>&1; then
    echo "valgrind-unit: $name passed ($((SECONDS - start)) s)"
    passed=$((passed + 1))
  else
    echo "valgrind-unit: $name FAILED ($((SECONDS - start)) s); valgrind's report:" >&2
    grep -E '^==[0-9]+==' "$logs/$name.log" | head -60 >&2 || tail -40 "$logs/$name.log" >&2
    failed+=("$name")
  fi
done <<<"$tests"

echo "memcheck: $passed passed, ${#failed[@]} failed"
if (( ${#failed[@]} )); then
  echo "valgrind-unit: FAILED: ${failed[*]} (logs in $logs)" >&2
  exit 1
fi
