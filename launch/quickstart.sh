#!/usr/bin/env bash
# From a fresh clone: install what is missing, build, and train the default
# model (an MLP on Fashion-MNIST) with 2 MPI ranks. Extra arguments go to
# `dptrain train`, e.g. --set train.epochs=5
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$top/launch/install-deps.sh"
bash "$top/launch/build.sh" "$top/build"
cd "$top"
exec bash "$top/launch/local.sh" -n 2 train "$@"
