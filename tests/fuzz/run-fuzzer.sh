#!/usr/bin/env bash
# One fuzz test (ctest -L fuzz): first every input of regressions/NAME/ (crashes
# found before, minimized) once, then libFuzzer for SECONDS seconds from the
# seeds of corpus/NAME/ (read only) plus what earlier runs in this build
# directory found (WORK/corpus). A crash, a leak, a timeout (10 s per input)
# or more than 2 GiB of memory fails the test and leaves the input in WORK.
#
#   bash tests/fuzz/run-fuzzer.sh FUZZER NAME SECONDS WORK
set -euo pipefail
fuzzer=$1 name=$2 seconds=$3 work=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seeds=$here/corpus/$name regressions=$here/regressions/$name dict=$here/$name.dict
mkdir -p "$work/corpus"
limits=(-timeout=10 -rss_limit_mb=2048)

shopt -s nullglob
known=("$regressions"/*)
if (( ${#known[@]} )); then
  echo "== $name: ${#known[@]} regression input(s) from ${regressions#"$here/"}"
  "$fuzzer" "${limits[@]}" "${known[@]}" >"$work/regressions.log" 2>&1 || {
    cat "$work/regressions.log" >&2
    echo "fuzz: $name fails on a regression input (above)" >&2
    exit 1; }
fi

args=("${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/")
[[ -f "$dict" ]] && args+=(-dict="$dict")
echo "== $name: fuzzing for $seconds s (seeds: ${seeds#"$here/"})"
if ! "$fuzzer" "${args[@]}" "$work/corpus" "$seeds" >"$work/fuzz.log" 2>&1; then
  tail -n 80 "$work/fuzz.log" >&2
  found=("$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*)
  echo "fuzz: $name found a failing input: ${found[*]:-(see the log above)}" >&2
  echo "  minimize it:  $fuzzer -minimize_crash=1 -runs=10000 INPUT" >&2
  echo "  then add the minimized input to tests/fuzz/regressions/$name/ and fix the bug" >&2
  exit 1
fi
grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb' "$work/fuzz.log" || true
echo "fuzz: $name ok ($(ls "$work/corpus" | wc -l) inputs in the working corpus)"
