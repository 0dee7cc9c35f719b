#!/usr/bin/python3
"""Peer of bench/compare.sh: PyTorch on the CNN of configs/fashion-cnn.ini.

dptrain's layers, reproduced one for one (dptrain's `dropout KEEP` is a keep
probability, PyTorch's Dropout(p) a drop probability):
  conv 32 3 pad=same   -> Conv2d(1, 32, 3, padding=1)     (with bias: 320 parameters, as dptrain)
  batchnorm            -> BatchNorm2d(32)
  relu, maxpool 2      -> ReLU, MaxPool2d(2)
  conv 64 3 pad=same   -> Conv2d(32, 64, 3, padding=1)
  batchnorm, relu, maxpool 2
  flatten              -> Flatten                         (64 x 7 x 7 = 3136)
  dropout 0.75         -> Dropout(p=0.25)
  dense 128            -> Linear(3136, 128)
  batchnorm            -> BatchNorm1d(128)
  relu, dropout 0.5    -> ReLU, Dropout(p=0.5)
  dense 10             -> Linear(128, 10)
422,090 parameters, as `dptrain inspect configs/fashion-cnn.ini` counts.
Softmax cross-entropy, float32, SGD with Nesterov momentum 0.9, lr 0.05
decaying linearly to 0.0005, weight decay 5e-4, batch 64 per process.

One difference, in the peer's favour: the config has bn_sync = true (dptrain
sums the batch-norm statistics over ranks), but PyTorch 1.13's SyncBatchNorm
runs on CUDA only, so under DDP each process normalizes with its own batch's
statistics (no extra allreduce).

MEASURES training samples/s over --steps timed steps (default 150) after
--warmup steps (default 10), single process or DDP gloo, as torch_mlp.py
(the loop is torch_common.py). One JSON line on stdout.

    /usr/bin/python3 bench/peers/torch_cnn.py --procs 2 --threads 1
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common  # noqa: E402


def model():
    import torch.nn as nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(p=0.25),
        nn.Linear(3136, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(128, 10))


SPEC = {"model": model, "input_shape": (1, 28, 28), "lr": 0.05, "lr_final": 0.0005,
        "weight_decay": 5e-4}

if __name__ == "__main__":
    args = torch_common.parse(__doc__, steps=150, warmup=10)
    torch_common.run(args, SPEC, "torch cnn")
