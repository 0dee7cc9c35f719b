#!/usr/bin/python3
"""Peer of bench/compare.sh: scikit-learn's newton-cg on dptrain's
softmax-regression problem (configs/fashion-softmax-newton_cg.ini):
multinomial logistic regression on the first N (default all 60000)
Fashion-MNIST training images in [0, 1], float64, from zero.

The objective is matched to dptrain's. scikit-learn 1.2's newton-cg
minimizes  sum_i CE_i + (1/(2C)) ||W||^2  (bias not penalized; the sample
weights are 1, not normalized, for this solver), which is N times dptrain's
mean CE + (wd/2) ||W||^2 when C = 1 / (N wd). Its gradient is N times
dptrain's too, and newton-cg stops when max|g_i| <= tol, so tol = N gtol
stops it at dptrain's |g|_inf <= gtol (1e-5). `--check` verifies this
scaling on scikit-learn's own loss function at dptrain's exported weights.

MEASURES the wall time of LogisticRegression(solver='newton-cg',
multi_class='multinomial', C=1/(N wd), tol=N gtol, max_iter=1000).fit(X, y)
with X already in memory as a C-ordered float64 array (what a user calls;
the input checks do not copy it). Threads: OpenBLAS's (OPENBLAS_NUM_THREADS);
scikit-learn's own loss code runs 1 thread in 1.2. Afterwards it recomputes
the gradient of dptrain's objective at the result in NumPy
(softmax_objective.py) and reports its max-norm, with the Newton
iterations, the loss and gradient evaluations and the Hessian-vector
products (counted by wrapping scikit-learn's LinearModelLoss methods; the
wrappers cost one Python call each). One JSON line on stdout.

    /usr/bin/python3 bench/peers/sklearn_softmax.py [--n N] [--gtol 1e-5] [--wd 1e-4]
    /usr/bin/python3 bench/peers/sklearn_softmax.py --check DIR --f F [--n N]
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from softmax_objective import Softmax, blas_info, load_dptrain_export  # noqa: E402


def count_calls():
    """Counts of scikit-learn's loss, gradient and Hessian-vector product calls."""
    from sklearn.linear_model import _linear_loss
    cls = _linear_loss.LinearModelLoss
    counts = {"loss": 0, "gradient": 0, "hessp": 0}
    loss, gradient, ghp = cls.loss, cls.gradient, cls.gradient_hessian_product

    def counted_loss(self, *a, **k):
        counts["loss"] += 1
        return loss(self, *a, **k)

    def counted_gradient(self, *a, **k):
        counts["gradient"] += 1
        return gradient(self, *a, **k)

    def counted_ghp(self, *a, **k):
        counts["gradient"] += 1
        g, hessp = ghp(self, *a, **k)

        def counted_hessp(s):
            counts["hessp"] += 1
            return hessp(s)
        return g, counted_hessp

    cls.loss, cls.gradient, cls.gradient_hessian_product = counted_loss, counted_gradient, counted_ghp
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=0, help="first N training samples (0: all)")
    ap.add_argument("--gtol", type=float, default=1e-5)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--check", metavar="DIR")
    ap.add_argument("--f", type=float, help="dptrain's f at the exported point (with --check)")
    a = ap.parse_args()

    X, y = fmnist.train(np.float64, a.n or None)
    N = len(y)
    C = 1.0 / (N * a.wd)
    obj = Softmax(X, y, a.wd)

    if a.check:
        from sklearn._loss.loss import HalfMultinomialLoss
        from sklearn.linear_model._linear_loss import LinearModelLoss
        theta = load_dptrain_export(a.check)
        W, b = obj.split(theta)
        lml = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=10), fit_intercept=True)
        coef = np.hstack([W, b[:, None]]).ravel(order="F")  # how _logistic.py lays it out
        sw = np.ones(N)
        f_sk, g_sk = lml.loss_gradient(coef, X, y.astype(np.float64), sw, l2_reg_strength=1.0 / C)
        f_np, g_np = obj.value_grad(theta)
        g_sk = g_sk.reshape((10, -1), order="F")  # (classes, features + 1), as it was raveled
        g_np2 = np.hstack([obj.split(g_np)[0], obj.split(g_np)[1][:, None]])
        print(json.dumps({"f_sklearn_over_N": f_sk / N, "f_dptrain": a.f,
                          "rel_diff": abs(f_sk / N - a.f) / abs(a.f) if a.f else None,
                          "grad_rel_diff": float(np.abs(g_sk / N - g_np2).max() / np.abs(g_np2).max())}))
        return

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    counts = count_calls()
    model = LogisticRegression(solver="newton-cg", multi_class="multinomial", C=C, tol=N * a.gtol,
                               max_iter=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    theta = np.concatenate([model.coef_.ravel(), model.intercept_])
    f, g = obj.value_grad(theta)
    print(json.dumps({"peer": "scikit-learn newton-cg", "seconds": seconds, "iterations": int(model.n_iter_[0]),
                      "evals": counts["loss"] + counts["gradient"], "loss_calls": counts["loss"],
                      "gradient_calls": counts["gradient"], "products": counts["hessp"], "f": f,
                      "grad_inf": float(np.abs(g).max()), "converged": bool(np.abs(g).max() <= a.gtol),
                      "C": C, "tol": N * a.gtol, "warnings": [str(w.message) for w in caught],
                      "samples": N, "blas": blas_info()}))


if __name__ == "__main__":
    main()
