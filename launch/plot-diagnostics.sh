#!/usr/bin/env bash
# Draws a diagnostics JSON-lines file ([diagnostics] file) as one PNG of
# four panels against the training step:
#   1. curvature along the gradient: g'Hg / g'g, and the optimal step
#      eps* = g'g / g'Hg next to the learning rate (steps where lr > 2 eps*
#      are uphill on the quadratic model: marked);
#   2. Lanczos extreme eigenvalues lambda_max and lambda_min of the Hessian;
#   3. the gradient noise scale B_simple and the global batch;
#   4. every layer's |g| / |w| with the vanishing and exploding bounds.
#
#   launch/plot-diagnostics.sh dptrain-diagnostics.jsonl [diagnostics.png]
#
# Needs jq and gnuplot (Debian: jq, gnuplot-nox; launch/install-deps.sh).
set -euo pipefail

usage() { echo "usage: $0 DIAGNOSTICS.jsonl [OUT.png]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
in=$1
out=${2:-${in%.jsonl}.png}
[[ -r "$in" ]] || { echo "plot-diagnostics: cannot read $in" >&2; exit 2; }
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || { echo "plot-diagnostics: $tool is missing (bash launch/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one whitespace-separated table per panel; "NaN" where a value is absent
jq -r 'select(.type == "diag" and .curvature != null) | .curvature as $c
       | [.step, (if $c.gTg > 0 then $c.gTHg / $c.gTg else "NaN" end),
          ($c.eps_star // "NaN"), $c.lr, (if $c.ill_conditioned then $c.lr else "NaN" end)] | @tsv' \
  "$in" >"$work/curvature.tsv"
jq -r 'select(.type == "diag" and .lanczos != null)
       | [.step, .lanczos.lambda_max, .lanczos.lambda_min] | @tsv' "$in" >"$work/lanczos.tsv"
jq -r 'select(.type == "diag" and .noise != null) | [.step, (.noise.B_simple // "NaN")] | @tsv' \
  "$in" >"$work/noise.tsv"
jq -r 'select(.type == "diag") | .step as $s | (.layers // [])[]
       | [.layer, $s, (.grad_weight_ratio // "NaN")] | @tsv' "$in" | sort -k1,1n -k2,2n >"$work/layers.tsv"
layers=$(cut -f1 "$work/layers.tsv" | sort -un | tr '\n' ' ')
[[ -s "$work/curvature.tsv" || -s "$work/noise.tsv" || -s "$work/layers.tsv" ]] ||
  { echo "plot-diagnostics: no diagnostics records in $in ([diagnostics] every > 0?)" >&2; exit 1; }

# the run record (the file's first line): the global batch and the bounds
batch=$(jq -r 'select(.type == "run") | .global_batch // empty' "$in" | head -1)
ratio_min=$(jq -r 'select(.type == "run") | .grad_ratio_min // empty' "$in" | head -1)
ratio_max=$(jq -r 'select(.type == "run") | .grad_ratio_max // empty' "$in" | head -1)

# gnuplot cannot plot an empty file: a panel without data says so instead
panel() { # file plot-command
  if [[ -s "$1" ]]; then echo "$2"; else echo "set label 1 'no data' at graph 0.4, 0.5; plot NaN notitle; unset label 1"; fi
}
layer_plot="plot"
sep=""
for l in $layers; do
  layer_plot+="$sep '$work/layers.tsv' using (\$1 == $l ? \$2 : NaN):3 with linespoints title 'layer $l'"
  sep=","
done
[[ -n "$ratio_min" ]] && layer_plot+=", $ratio_min with lines dt 2 lc 'gray' title 'grad\\_ratio\\_min'"
[[ -n "$ratio_max" ]] && layer_plot+=", $ratio_max with lines dt 2 lc 'black' title 'grad\\_ratio\\_max'"
batch_line=""
[[ -n "$batch" ]] && batch_line=", $batch with lines dt 2 lc 'black' title 'global batch'"

gnuplot <<EOF
set terminal pngcairo size 1400,1000 font ',10'
set output '$out'
set multiplot layout 2,2 title 'dptrain diagnostics: $(basename "$in")'
set key top right
set grid
set format y '%g'
set xlabel 'step'

set title "curvature along the gradient"
set logscale y
set ylabel "g'Hg/g'g, step sizes"
$(panel "$work/curvature.tsv" "plot '$work/curvature.tsv' using 1:2 with linespoints title \"g'Hg/g'g\", '' using 1:3 with linespoints title 'eps* = g''g/g''Hg', '' using 1:4 with lines title 'lr', '' using 1:5 with points pt 7 ps 1.5 lc 'red' title 'uphill (ill-conditioned)'")

set title 'Hessian extreme eigenvalues (Lanczos)'
unset logscale y
set ylabel 'eigenvalue'
$(panel "$work/lanczos.tsv" "plot '$work/lanczos.tsv' using 1:2 with linespoints title 'lambda\\_max', '' using 1:3 with linespoints title 'lambda\\_min', 0 with lines lc 'gray' notitle")

set title 'gradient noise scale'
set logscale y
set ylabel 'samples'
$(panel "$work/noise.tsv" "plot '$work/noise.tsv' using 1:2 with linespoints title 'B\\_simple'$batch_line")

set title 'layer gradients |g| / |w|'
set ylabel '|g| / |w|'
$(if [[ -s "$work/layers.tsv" ]]; then echo "$layer_plot"; else panel /dev/null ""; fi)
unset multiplot
EOF
echo "plot-diagnostics: wrote $out"
