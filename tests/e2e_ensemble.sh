#!/usr/bin/env bash
# End to end for bagging ([ensemble] members = k) on a Fashion-MNIST subset
# (the first 10,000 training and 2,000 test images, 2 epochs):
#   - 4 ranks, k = 2 (2 ranks per member): the ensemble errs no more than
#     its mean member, and its log loss is no larger (Jensen's inequality:
#     -log of an average of probabilities is at most the average of the
#     -logs, so this one holds for any members); one member file each;
#     the resamples hold ~63% distinct images and the members differ;
#   - 3 ranks, k = 2: exit status 2 and one message naming [ensemble]
#     members and the rank count, before any training;
#   - 3 ranks, k = 3 (one rank per member) trains;
#   - k = 1 is plain training: the same final line as without [ensemble];
#   - bootstrap = false: every member sees every image (distinct 1).
source "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "skipped: $data missing (apt-get install dataset-fashion-mnist)"; exit 77
fi

# ---- the subset: the first N items of each IDX file, its count rewritten
be32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
  $(($1 >> 8 & 255)) $(($1 & 255)))"; }
# idx_head SRC.gz DST N HEADER_BYTES ITEM_BYTES
idx_head() {
  { zcat "$1" | head -c 4; be32 "$3"; zcat "$1" | head -c "$4" | tail -c +9
    zcat "$1" | tail -c +$(($4 + 1)) | head -c $(($3 * $5)); } >"$2" 2>/dev/null
}
mkdir -p "$WORK/data"
idx_head $data/train-images-idx3-ubyte.gz "$WORK/data/train-images" 10000 16 784
idx_head $data/train-labels-idx1-ubyte.gz "$WORK/data/train-labels" 10000 8 1
idx_head $data/t10k-images-idx3-ubyte.gz "$WORK/data/test-images" 2000 16 784
idx_head $data/t10k-labels-idx1-ubyte.gz "$WORK/data/test-labels" 2000 8 1
if [[ $(stat -c %s "$WORK/data/train-images") -eq $((16 + 10000 * 784)) &&
      $(stat -c %s "$WORK/data/test-labels") -eq $((8 + 2000)) ]]; then
  ok "Fashion-MNIST subset: 10000 training, 2000 test images"
else
  fail "could not cut the Fashion-MNIST subset"; finish; exit
fi
common=(--set data.dir="$WORK/data" --set data.train_images=train-images
        --set data.train_labels=train-labels --set data.test_images=test-images
        --set data.test_labels=test-labels --set train.epochs=2 --set log.every=50
        --set log.progress=lines)

# ensemble_field METRICS JQ-EXPRESSION: from the ensemble record
ensemble_field() { jq -r 'select(.type == "ensemble") | '"$2" "$1" 2>/dev/null; }
# leq NAME A B: A <= B
leq() {
  if [[ -n "$2" && -n "$3" ]] && awk -v a="$2" -v b="$3" 'BEGIN { exit !(a <= b) }'; then ok "$1: $2 <= $3"
  else fail "$1: '$2' is not <= '$3'" "${4:-/dev/null}"; fi
}

# ---- 4 ranks, 2 members of 2 ranks
m="$WORK/k2.jsonl"
run_ranks 4 "$WORK/k2" train "${common[@]}" --set ensemble.members=2 --set log.metrics="$m"
cat "$WORK/k2"
expect_status "4 ranks, members = 2" 0 "$WORK/k2"
expect_grep "table: the ensemble row" '^ensemble +0\.[0-9]{4} +[0-9.]+$' "$WORK/k2"
expect_grep "table: parameters stored 2 x n" '^parameters stored: 2 x 535818 = 1071636; training time' "$WORK/k2"
expect_count "only member 0 prints its progress" '^final test accuracy' "$WORK/k2" 1
expect_count "one ensemble record in the base metrics file" '^\{"type":"ensemble"' "$m" 1
leq "ensemble error <= mean member error" "$(ensemble_field "$m" .ensemble_error)" \
  "$(ensemble_field "$m" .mean_member_error)" "$m"
leq "ensemble log loss <= mean member log loss (Jensen)" "$(ensemble_field "$m" .ensemble_loss)" \
  "$(ensemble_field "$m" .mean_member_loss)" "$m"
for k in 0 1; do
  f="$WORK/k2.member$k.jsonl"
  if [[ -f "$f" ]] && grep -q '^{"type":"final"' "$f"; then ok "member $k wrote $(basename "$f")"
  else fail "member $k's metrics file $f is missing or has no final record"; fi
done
distinct=$(ensemble_field "$m" '[.member[].distinct_fraction] | map(tostring) | join(" ")')
if [[ -n "$distinct" ]] && awk -v d="$distinct" 'BEGIN { n = split(d, v, " "); if (n != 2) exit 1
     for (i = 1; i <= n; i++) if (v[i] < 0.61 || v[i] > 0.65) exit 1 }'; then
  ok "bootstrap resamples hold ~1 - 1/e distinct images ($distinct)"
else
  fail "distinct fractions '$distinct' not near 0.632" "$m"
fi
members=$(ensemble_field "$m" '[.member[] | "\(.seed) \(.test_error) \(.test_loss)"] | unique | length')
if [[ "$members" == 2 ]]; then ok "the two members differ (seeds, errors, losses)"
else fail "the members are not distinct ($members)" "$m"; fi

# ---- 3 ranks cannot hold 2 equal groups
run_ranks 3 "$WORK/k2r3" train "${common[@]}" --set ensemble.members=2 --set log.metrics=
expect_status "3 ranks, members = 2 is a configuration error" 2 "$WORK/k2r3"
expect_count "one message naming [ensemble] members and the rank count" \
  '^dptrain: error: \[ensemble\] members = 2 needs a rank count divisible by 2; this job has 3 ranks' \
  "$WORK/k2r3" 1
expect_count "no training started" '^(epoch|dptrain [0-9])' "$WORK/k2r3" 0

# ---- 3 ranks, 3 members of 1 rank
m3="$WORK/k3.jsonl"
run_ranks 3 "$WORK/k3" train "${common[@]}" --set ensemble.members=3 --set log.metrics="$m3"
expect_status "3 ranks, members = 3" 0 "$WORK/k3"
expect_count "table: three member rows" '^[0-2] +0\.[0-9]{4} +[0-9.]+ +0\.6[0-9]{2} ' "$WORK/k3" 3
leq "3 members: ensemble log loss <= mean member log loss" "$(ensemble_field "$m3" .ensemble_loss)" \
  "$(ensemble_field "$m3" .mean_member_loss)" "$m3"
if [[ -f "$WORK/k3.member2.jsonl" ]]; then ok "member 2 wrote its metrics file"
else fail "no $WORK/k3.member2.jsonl" "$WORK/k3"; fi

# ---- members = 1 is plain training
final_line() { grep '^final test accuracy' "$1" | sed 's/ ([0-9]* steps.*//'; }
run_ranks 2 "$WORK/plain" train "${common[@]}" --set log.metrics=
run_ranks 2 "$WORK/k1" train "${common[@]}" --set ensemble.members=1 --set log.metrics=
expect_status "members = 1" 0 "$WORK/k1"
if [[ -n "$(final_line "$WORK/plain")" && "$(final_line "$WORK/plain")" == "$(final_line "$WORK/k1")" ]]; then
  ok "members = 1 is plain training: $(final_line "$WORK/k1")"
else
  fail "members = 1 '$(final_line "$WORK/k1")' differs from plain '$(final_line "$WORK/plain")'" "$WORK/k1"
fi

# ---- bootstrap = false: the members differ only by their seeds
mb="$WORK/nb.jsonl"
run_ranks 2 "$WORK/nb" train "${common[@]}" --set ensemble.members=2 --set ensemble.bootstrap=false \
  --set log.metrics="$mb"
expect_status "members = 2, bootstrap = false" 0 "$WORK/nb"
distinct=$(ensemble_field "$mb" '[.member[].distinct_fraction] | map(tostring) | join(" ")')
if [[ "$distinct" == "1 1" ]]; then ok "without bootstrap every member sees every image"
else fail "distinct fractions without bootstrap: '$distinct'" "$mb"; fi
finish
