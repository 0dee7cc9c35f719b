#!/usr/bin/python3
"""Peer of bench/compare.sh: PyTorch on the default MLP of configs/default.ini.

Model 784-512-256-10 (nn.Linear with bias, ReLU), softmax cross-entropy
(nn.CrossEntropyLoss, mean over the batch), float32, SGD with Nesterov
momentum 0.9, lr 0.05 decaying linearly to 0.0005 over the run, weight decay
1e-4, batch 64 per process, Fashion-MNIST's 60000 training images in memory.

MEASURES training samples/s over --steps timed steps (default 1000) after
--warmup steps (default 50): single process with --threads T
(torch.set_num_threads, OpenBLAS threads), or DistributedDataParallel with
gloo over localhost TCP on --procs P processes (spawned with
torch.multiprocessing, no torchrun), 1 thread each. The loop is
torch_common.py. One JSON line on stdout.

    /usr/bin/python3 bench/peers/torch_mlp.py --procs 1 --threads 1
    /usr/bin/python3 bench/peers/torch_mlp.py --procs 1 --threads 2
    /usr/bin/python3 bench/peers/torch_mlp.py --procs 2 --threads 1
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common  # noqa: E402


def model():
    import torch.nn as nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


SPEC = {"model": model, "input_shape": (784,), "lr": 0.05, "lr_final": 0.0005,
        "weight_decay": 1e-4}

if __name__ == "__main__":
    args = torch_common.parse(__doc__, steps=1000, warmup=50)
    torch_common.run(args, SPEC, "torch mlp")
