#!/usr/bin/env bash
# Draws a metrics JSON-lines file ([log] metrics) as one PNG of six panels:
#   loss and accuracy against the step, and against the wall time since the
#   first step: the training window's values from the step records (every
#   [log] every steps), the epoch's training and test values from the epoch
#   records; the learning rate; the throughput (samples/s).
# With diagnostics - a file given by -d, or the run's own [diagnostics] file
# (named in the run record's config, looked for next to the metrics file)
# when [diagnostics] every > 0 - launch/plot-diagnostics.sh also draws them
# into OUT-diagnostics.png.
#
#   launch/plot-metrics.sh [-d DIAGNOSTICS.jsonl | --no-diagnostics] METRICS.jsonl [OUT.png]
#
# OUT.png defaults to METRICS.png. A file still being written (a live run)
# can be drawn: an unfinished last line is skipped. Needs jq and gnuplot
# (Debian: jq, gnuplot-nox; launch/install-deps.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { echo "usage: $0 [-d DIAGNOSTICS.jsonl | --no-diagnostics] METRICS.jsonl [OUT.png]" >&2; exit 2; }
die() { echo "plot-metrics: $1" >&2; exit "${2:-2}"; }
diag="" diag_mode=auto
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -d|--diagnostics) [[ $# -ge 2 ]] || usage; diag=$2 diag_mode=given; shift 2 ;;
    --diagnostics=*) diag=${1#*=} diag_mode=given; shift ;;
    --no-diagnostics) diag_mode=off; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 && ${#args[@]} -le 2 ]] || usage
in=${args[0]}
out=${args[1]:-${in%.jsonl}.png}
[[ $out == *.png ]] || die "the output file must end in .png: $out"
[[ -d $(dirname "$out") && -w $(dirname "$out") ]] || die "cannot write $out: $(dirname "$out") is not a writable directory"
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || die "$tool is missing (bash launch/install-deps.sh)" 1
done
[[ -e "$in" ]] || die "$in does not exist (a metrics file is written by dptrain train: [log] metrics, default dptrain-metrics.jsonl)"
[[ -f "$in" && -r "$in" ]] || die "cannot read $in"
[[ -s "$in" ]] || die "$in is empty (did the run stop before its first record?)"
if [[ $diag_mode == given ]]; then
  [[ -s "$diag" && -r "$diag" ]] || die "cannot read the diagnostics file $diag (missing or empty)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the JSON objects, one per line; anything else (an unfinished last line) skipped
jq -cR 'fromjson? | select(type == "object")' "$in" >"$work/records" 2>/dev/null ||
  die "$in could not be read by jq"
lines=$(grep -c . "$in" || true)
records=$(wc -l <"$work/records")
(( records > 0 )) || die "$in holds no JSON records: not a dptrain metrics file"
(( records == lines )) || echo "plot-metrics: warning: $((lines - records)) of $lines lines of $in are not JSON records; skipped" >&2

# The step and epoch records with a time t since the first step. A resumed
# run (a run record with resumed_at_step R, appended to the same file)
# replaces the records after step R, and its clock continues from the last
# record kept. Epoch records without elapsed_s (older files) sum epoch_s,
# which leaves out the evaluations.
jq -cs 'reduce .[] as $r ({out: [], offset: 0, sum: 0};
    if $r.type == "run" then
      if ($r.resumed_at_step // 0) > 0 then
        .out |= map(select(.step <= $r.resumed_at_step))
        | .offset = ([.out[].t | numbers] | max // 0) | .sum = 0
      else . end
    elif $r.type == "step" and ($r.step | type) == "number" then
      .out += [$r + {t: (if ($r.elapsed_s | type) == "number" then .offset + $r.elapsed_s else null end)}]
    elif $r.type == "epoch" and ($r.step | type) == "number" then
      .sum += ($r.epoch_s // 0)
      | .out += [$r + {t: (.offset + ($r.elapsed_s // .sum))}]
    else . end) | .out[]' "$work/records" >"$work/series"
# steps: step t loss accuracy lr samples_per_s
jq -r 'select(.type == "step") | [.step, .t, .loss, .accuracy, .lr, .samples_per_s]
       | map(. // "NaN") | @tsv' "$work/series" >"$work/steps.tsv"
# epochs: step t train_loss train_accuracy test_loss test_accuracy lr samples_per_s
jq -r 'select(.type == "epoch") | [.step, .t, .train_loss, .train_accuracy, .test_loss, .test_accuracy,
       .lr, .samples_per_s] | map(. // "NaN") | @tsv' "$work/series" >"$work/epochs.tsv"
if [[ ! -s "$work/steps.tsv" && ! -s "$work/epochs.tsv" ]]; then
  kinds=$(jq -r '.type // "?"' "$work/records" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep=", "}')
  hint=""
  grep -q '"type":"iter"' "$work/records" && hint=" (a second-order run logs iter records, not steps)"
  grep -q '"type":"ensemble"' "$work/records" && hint=" (an ensemble's base file: draw a member's metrics file, named in its member list)"
  die "$in has no step or epoch records, only: $kinds$hint" 1
fi
n_steps=$(grep -c . "$work/steps.tsv" || true)
n_epochs=$(grep -c . "$work/epochs.tsv" || true)

# the title from the run and final records (quotes dropped: gnuplot strings)
run_info=$(jq -r 'select(.type == "run") | "dptrain \(.version // "?"), \(.ranks // "?") ranks, \(.precision // "?") precision, \(.parameters // "?") parameters, global batch \(.global_batch // "?")"' \
  "$work/records" | head -1 | tr -d "'\"")
model=$(jq -r 'select(.type == "run") | .model // empty' "$work/records" | head -1 | tr -d "'\"")
final=$(jq -r 'select(.type == "final") | try "final test accuracy \(.test_accuracy * 10000 | round / 10000), test loss \(.test_loss * 10000 | round / 10000), \(.steps) steps, \(.total_s | round) s" catch empty' \
  "$work/records" | tail -1)
resumed=$(jq -r 'select(.type == "run" and (.resumed_at_step // 0) > 0) | .resumed_at_step' "$work/records" | paste -sd, -)
title="$(basename "$in"): ${run_info:-no run record}${resumed:+, resumed at step $resumed}${final:+\\n$final}${model:+\\n$model}"

# one panel: a plot command over the series that have data, or 'no data'
panel() { # ylabel then 'file|using|style|title' series...
  local ylabel=$1 cmd="" sep=""
  shift
  for series in "$@"; do
    IFS='|' read -r file using style name <<<"$series"
    [[ -s "$file" ]] || continue
    cmd+="$sep'$file' using $using with $style title '$name'"
    sep=", "
  done
  echo "set ylabel '$ylabel'"
  if [[ -n $cmd ]]; then echo "plot $cmd"; else echo "set label 1 'no data' at graph 0.45, 0.5; plot NaN notitle; unset label 1"; fi
}
S=$work/steps.tsv E=$work/epochs.tsv
train_window="lines lw 1.5 lc rgb '#1f77b4'"
train_epoch="linespoints pt 7 ps 0.8 lw 2 lc rgb '#ff7f0e'"
test_epoch="linespoints pt 5 ps 0.8 lw 2 lc rgb '#2ca02c'"

gnuplot <<EOF
set terminal pngcairo size 1500,1350 font ',10' noenhanced
set output '$out'
set multiplot layout 3,2 title "$title" font ',11'
set key top right
set grid
set format y '%g'

set xlabel 'step'
set title 'loss'
$(panel "loss" "$S|1:3|$train_window|train (window)" "$E|1:3|$train_epoch|train (epoch)" "$E|1:5|$test_epoch|test")
set title 'accuracy'
set key bottom right
$(panel "accuracy" "$S|1:4|$train_window|train (window)" "$E|1:4|$train_epoch|train (epoch)" "$E|1:6|$test_epoch|test")

set xlabel 'time since the first step (s)'
set title 'loss against time'
set key top right
$(panel "loss" "$S|2:3|$train_window|train (window)" "$E|2:3|$train_epoch|train (epoch)" "$E|2:5|$test_epoch|test")
set title 'accuracy against time'
set key bottom right
$(panel "accuracy" "$S|2:4|$train_window|train (window)" "$E|2:4|$train_epoch|train (epoch)" "$E|2:6|$test_epoch|test")

set xlabel 'step'
set title 'learning rate'
set key top right
$(panel "lr" "$S|1:5|lines lw 1.5 lc rgb '#9467bd'|lr (step records)" "$E|1:7|points pt 7 ps 0.8 lc rgb '#ff7f0e'|lr (end of epoch)")
set title 'throughput'
set yrange [0:*]
$(panel "samples/s" "$S|1:6|lines lw 1.5 lc rgb '#1f77b4'|window" "$E|1:8|linespoints pt 7 ps 0.8 lc rgb '#ff7f0e'|epoch")
unset multiplot
EOF
[[ -s "$out" ]] || die "gnuplot wrote no $out" 1
echo "plot-metrics: wrote $out ($n_steps step records, $n_epochs epoch records)"

# ---- diagnostics
if [[ $diag_mode == auto ]]; then
  # the run's [diagnostics] every and file, from the config in its run record
  read -r every file < <(jq -r 'select(.type == "run") | .config // empty' "$work/records" | head -c 1000000 |
    awk -F' *= *' '/^\[/ { section = $0; next }
                   section == "[diagnostics]" && $1 == "every" { every = $2 }
                   section == "[diagnostics]" && $1 == "file" { file = $2 }
                   END { print (every == "" ? 0 : every), file }') || true
  if [[ ${every:-0} -gt 0 && -n ${file:-} ]]; then
    # a relative name was relative to the run's directory: the metrics file's
    dir=$(dirname "$in")
    if [[ $file == /* ]]; then candidates=("$file"); else candidates=("$dir/$file" "$dir/$(basename "$file")"); fi
    for candidate in "${candidates[@]}"; do
      if [[ -s $candidate ]]; then diag=$candidate; break; fi
    done
    [[ -n $diag ]] || echo "plot-metrics: the run wrote diagnostics to $file, which is not next to $in: give it with -d" >&2
  fi
fi
if [[ -n $diag ]]; then
  diag_out=${out%.png}-diagnostics.png
  if bash "$here/plot-diagnostics.sh" "$diag" "$diag_out" >"$work/diag.log" 2>&1; then
    echo "plot-metrics: wrote $diag_out (diagnostics of $diag)"
  else
    sed 's/^/plot-metrics: /' "$work/diag.log" >&2
    [[ $diag_mode == given ]] && exit 1
    echo "plot-metrics: warning: the diagnostics of $diag were not drawn" >&2
  fi
fi
