"""Fashion-MNIST for the peer scripts of bench/compare.sh, read the way
dptrain reads it: the IDX files of the Debian package dataset-fashion-mnist
(gzip + NumPy), pixels scaled to [0, 1] by multiplying with 1/255 in the
working precision (src/data/dataset.c does the same), labels as integers.

    images, labels = fmnist.train(np.float32)        # (60000, 784), (60000,)
"""
import gzip
import os

import numpy as np

DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train(dtype=np.float32, n=None, directory=DIR):
    """(images N x 784 in dtype, scaled to [0, 1]; labels N int64). n: the first n samples."""
    x = _idx(os.path.join(directory, "train-images-idx3-ubyte.gz"))
    y = _idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"))
    if n:
        x, y = x[:n], y[:n]
    scale = dtype(1.0 / 255.0)
    images = x.reshape(len(x), -1).astype(dtype) * scale
    return np.ascontiguousarray(images, dtype=dtype), y.astype(np.int64)
