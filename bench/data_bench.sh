#!/usr/bin/env bash
# How long the training set of Fashion-MNIST (60000 x 784) takes to load,
# per format, on 1 and 2 ranks: IDX (gzip, every rank reads it), .npy uint8
# and float32 (each rank reads its share with MPI-IO, then MPI_Allgatherv),
# the same float32 file read whole by every rank (--naive: the design the
# shares replace), and CSV (rank 0 parses, then a broadcast). Each time is
# the slowest rank's, the median of REPEATS, with the files in the page
# cache (warm) and evicted from it first (cold: posix_fadvise DONTNEED on
# these files only). A benchmark, not a test: it reports numbers and
# asserts nothing (every line says whether the ranks hold the same bytes).
#
#   bash bench/data_bench.sh [REPEATS]     (default 3)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repeats=${1:-3}
repeats_one=1 # loads per process: each repeat is a fresh job
fm=/usr/share/datasets/fashion-mnist
py=/usr/bin/python3

# the helper program, against the library just built
mpicc -O2 -I"$top/include" -I"$build/generated/include" "$top/bench/data_load.c" "$build/libdptrain.a" \
  $(pkg-config --libs openblas scalapack-openmpi zlib inih libcjson) -lpthread -lm -o "$work/data_load"

"$py" - "$fm" "$work" <<'PY'
import gzip, sys, numpy as np
src, out = sys.argv[1], sys.argv[2]
def idx(name):
    b = gzip.open(f'{src}/{name}').read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
x, y = idx('train-images-idx3-ubyte.gz'), idx('train-labels-idx1-ubyte.gz')
np.save(f'{out}/x-u8.npy', x)
f32 = (x.reshape(len(x), -1) / np.float32(255)).astype('<f4')
np.save(f'{out}/x-f32.npy', f32)
np.save(f'{out}/y.npy', y.astype('<i8'))
with open(f'{out}/train.csv', 'w') as f:
    for xi, yi in zip(x.reshape(len(x), -1), y):  # bytes as text: what Kaggle's CSV holds
        f.write(f'{yi},' + ','.join(map(str, xi.tolist())) + '\n')
PY

evict() { # files... : out of the page cache
  "$py" -c 'import os, sys
for p in sys.argv[1:]:
    if not os.path.isfile(p): continue
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}
measure() { # ranks cold(0/1) args... -> "median s | last line"
  local ranks=$1 cold=$2; shift 2
  local times=() line=""
  for ((r = 0; r < repeats; r++)); do
    if [[ $cold == 1 ]]; then evict "$@" 2>/dev/null || true; fi
    line=$(DPTRAIN="$work/data_load" bash "$top/launch/local.sh" -n "$ranks" "$@" "$repeats_one" 2>&1 |
           tail -n 1) || true
    times+=("${line%% s *}")
  done
  printf '%s s  (%s)\n' "$(printf '%s\n' "${times[@]}" | median)" "${line#* s  }"
}

printf '%-26s %-6s %-5s %s\n' format cache ranks "load time (slowest rank, median of $repeats)"
for cold in 0 1; do
  cache=$([[ $cold == 1 ]] && echo cold || echo warm)
  for ranks in 1 2; do
    printf '%-26s %-6s %-5s %s\n' "IDX gzip" "$cache" "$ranks" \
      "$(measure "$ranks" "$cold" "$fm/train-images-idx3-ubyte.gz" "$fm/train-labels-idx1-ubyte.gz")"
    printf '%-26s %-6s %-5s %s\n' ".npy uint8" "$cache" "$ranks" "$(measure "$ranks" "$cold" "$work/x-u8.npy" "$work/y.npy")"
    printf '%-26s %-6s %-5s %s\n' ".npy float32" "$cache" "$ranks" "$(measure "$ranks" "$cold" "$work/x-f32.npy" "$work/y.npy")"
    printf '%-26s %-6s %-5s %s\n' ".npy float32, whole/rank" "$cache" "$ranks" \
      "$(measure "$ranks" "$cold" --naive "$work/x-f32.npy" "$work/y.npy")"
    printf '%-26s %-6s %-5s %s\n' "CSV" "$cache" "$ranks" "$(measure "$ranks" "$cold" "$work/train.csv" -)"
  done
done
