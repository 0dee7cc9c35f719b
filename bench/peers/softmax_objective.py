"""dptrain's softmax-regression objective in NumPy, for the peers of
bench/compare.sh (scipy_softmax.py, sklearn_softmax.py).

dptrain (src/solve/oracle.c, src/nn/loss.c), model `layers = 10` with
softmax cross-entropy, optim.weight_decay = wd:

    f(W, b) = (1/N) sum_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + (wd/2) ||W||_F^2

W is 10 x 784, b (10) is not penalized; gradient
    dW = (1/N) (P - Y)^T X + wd W,   db = (1/N) sum_i (p_i - y_i).
The parameter vector is [W row-major, b], dptrain's own order
(trunk.0.dense.weight, then trunk.0.dense.bias).
"""
import numpy as np


class Softmax:
    """f and gradient on (X, y) in X's dtype; counts evaluations in .evals."""

    def __init__(self, X, y, wd, classes=10):
        self.X, self.y, self.wd, self.K = X, y, wd, classes
        self.N, self.D = X.shape
        self.rows = np.arange(self.N)
        self.Z = np.empty((self.N, self.K), dtype=X.dtype)  # reused: logits, then P - Y
        self.evals = 0

    def split(self, theta):
        K, D = self.K, self.D
        return theta[:K * D].reshape(K, D), theta[K * D:]

    def value_grad(self, theta):
        self.evals += 1
        W, b = self.split(theta)
        Z = self.Z
        np.matmul(self.X, W.T, out=Z)
        Z += b
        Z -= Z.max(axis=1, keepdims=True)
        z_y = Z[self.rows, self.y]
        np.exp(Z, out=Z)
        s = Z.sum(axis=1)
        f = (np.log(s).sum() - z_y.sum()) / self.N + 0.5 * self.wd * np.dot(W.ravel(), W.ravel())
        Z /= s[:, None]                # P
        Z[self.rows, self.y] -= 1.0    # P - Y
        Z *= 1.0 / self.N
        g = np.empty_like(theta)
        gW, gb = self.split(g)
        np.matmul(Z.T, self.X, out=gW)
        gW += self.wd * W
        gb[:] = Z.sum(axis=0)
        return f, g


def load_dptrain_export(directory):
    """theta = [W, b] from `dptrain export CKPT --output DIR` of the softmax model."""
    W = np.load(f"{directory}/trunk.0.dense.weight.npy")
    b = np.load(f"{directory}/trunk.0.dense.bias.npy")
    return np.concatenate([W.ravel(), b]).astype(np.float64)


def blas_info():
    """'openblas 0.3.21 (2 threads)' or what threadpoolctl sees."""
    try:
        from threadpoolctl import threadpool_info
        return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"
