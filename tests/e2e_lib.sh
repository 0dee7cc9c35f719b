# Shared helpers of the end-to-end test scripts (sourced, not run).
# Every mpirun goes through launch/local.sh under `timeout`, so a hang fails
# the test instead of stalling CI.
set -uo pipefail
DPTRAIN=${1:?usage: $0 path/to/dptrain}
export DPTRAIN
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/dpt-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0

ok()   { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; [[ -n "${2:-}" ]] && sed 's/^/       | /' "$2"; }

# run_ranks N OUT ARGS... : dptrain with N ranks, stdout+stderr to OUT; sets $status
run_ranks() {
  local ranks=$1 out=$2; shift 2
  timeout -k 10 300 bash "$TOP/launch/local.sh" -n "$ranks" "$@" >"$out" 2>&1
  status=$?
}

# expect_status NAME WANT OUT
expect_status() {
  if [[ $status -eq $2 ]]; then ok "$1 (exit $status)"; else fail "$1: exit $status, wanted $2" "$3"; fi
}

# expect_grep NAME PATTERN FILE
expect_grep() {
  if grep -Eq -- "$2" "$3"; then ok "$1"; else fail "$1: no line matches /$2/" "$3"; fi
}

# expect_count NAME PATTERN FILE N : exactly N matching lines
expect_count() {
  local n; n=$(grep -Ec -- "$2" "$3")
  if [[ $n -eq $4 ]]; then ok "$1"; else fail "$1: $n lines match /$2/, wanted $4" "$3"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
