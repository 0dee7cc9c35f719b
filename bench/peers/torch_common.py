"""The training loop shared by torch_mlp.py and torch_cnn.py (bench/compare.sh).

Work per step, as dptrain does it (src/train, "What a step computes" in the
README): every epoch a seeded permutation of the 60000 training samples, the
same on every process; global batch k is the next procs x batch samples of
it and process r takes the r-th piece of `batch`; the piece is gathered from
the float32 tensor of the whole training set already in memory (no
DataLoader, no conversion in the loop); forward, mean cross-entropy over the
piece, backward, the gradient averaged over processes (DistributedDataParallel
with gloo: allreduce), SGD with Nesterov momentum and weight decay, and the
learning rate of dptrain's linear schedule set every step.

Timing: `warmup` steps, a barrier, then `steps` steps timed with
time.perf_counter on every process (from after a barrier to after the last
step's update and a final barrier); samples/s = procs x batch x steps /
rank 0's time. A single process stops early after --max-seconds (the steps
done are reported). Process r is pinned to core r when procs x threads fit the
cores and threads = 1 (dptrain's launch/local.sh binds its ranks the same
way); OMP_NUM_THREADS and torch.set_num_threads are set to `threads`, and
OPENBLAS_NUM_THREADS (Debian's PyTorch calls OpenBLAS for its matrix
products) to `blas_threads` (default: `threads`), before torch is imported.
"""
import argparse
import collections
import json
import os
import socket
import sys
import time


def parse(description, batch=64, steps=1000, warmup=50):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--procs", type=int, default=1, help="1: one process; >1: DDP gloo on localhost")
    ap.add_argument("--threads", type=int, default=1, help="threads per process")
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OpenBLAS threads per process, if not --threads (PyTorch's OpenMP threads and "
                         "OpenBLAS's each spin on the same cores)")
    ap.add_argument("--batch", type=int, default=batch, help="per process")
    ap.add_argument("--steps", type=int, default=steps, help="timed steps")
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="one process only: stop the timed steps after this long (0: no limit)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.blas_threads = a.blas_threads or a.threads
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads)
    return a


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, a, spec, port, queue):
    import numpy as np
    import torch
    import torch.distributed as dist
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fmnist

    cores = os.cpu_count() or 1
    if a.threads == 1 and a.procs <= cores:
        os.sched_setaffinity(0, {rank})
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if a.procs > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.procs)

    x, y = fmnist.train(np.float32)
    X = torch.from_numpy(x).reshape((len(x),) + spec["input_shape"])
    Y = torch.from_numpy(y)
    torch.manual_seed(a.seed)
    model = spec["model"]()
    if a.procs > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=0.9, nesterov=True,
                          weight_decay=spec["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    n, global_batch = len(X), a.procs * a.batch
    per_epoch = -(-n // global_batch)
    total = a.warmup + a.steps
    gen = torch.Generator().manual_seed(a.seed)
    perm, losses = None, collections.deque(maxlen=100)

    def step(k):
        nonlocal perm
        pos = k % per_epoch
        if pos == 0:
            perm = torch.randperm(n, generator=gen)
        lo = pos * global_batch
        hi = min(lo + global_batch, n)
        mine = perm[lo:hi].tensor_split(a.procs)[rank]
        xb, yb = X.index_select(0, mine), Y.index_select(0, mine)
        lr = spec["lr"] + (spec["lr_final"] - spec["lr"]) * k / total  # dptrain's linear schedule
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    for k in range(a.warmup):
        step(k)
    if a.procs > 1:
        dist.barrier()
    start = time.perf_counter()
    done = 0
    for k in range(a.warmup, total):
        loss = step(k)
        done += 1
        losses.append(float(loss))
        if a.procs == 1 and a.max_seconds > 0 and time.perf_counter() - start > a.max_seconds:
            break
    if a.procs > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        queue.put({"seconds": seconds, "steps": done, "loss_last100": sum(losses) / len(losses)})
    if a.procs > 1:
        dist.destroy_process_group()


def run(a, spec, name):
    """Runs the measurement and prints one JSON line."""
    import torch
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    if a.procs == 1:
        _worker(0, a, spec, port, queue)
    else:
        mp.spawn(_worker, args=(a, spec, port, queue), nprocs=a.procs, join=True)
    r = queue.get()
    print(json.dumps({"peer": name, "procs": a.procs, "threads": a.threads, "blas_threads": a.blas_threads,
                      "batch_per_proc": a.batch,
                      "steps": r["steps"], "warmup": a.warmup, "seconds": r["seconds"],
                      "samples_per_s": a.procs * a.batch * r["steps"] / r["seconds"],
                      "loss_last100": r["loss_last100"], "torch": torch.__version__,
                      "backend": "gloo" if a.procs > 1 else "none"}))
