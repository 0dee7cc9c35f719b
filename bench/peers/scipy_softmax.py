#!/usr/bin/python3
"""Peer of bench/compare.sh: SciPy's L-BFGS-B on dptrain's softmax-regression
problem (configs/fashion-softmax-lbfgs.ini): multinomial logistic regression
on the first N (default all 60000) Fashion-MNIST training images in [0, 1],
float64, f = mean cross-entropy + (wd/2) ||W||^2 (bias not penalized,
wd = 1e-4; softmax_objective.py, the same f as dptrain's to rounding), from
zero.

MEASURES the wall time of scipy.optimize.minimize(method='L-BFGS-B',
jac=True) alone (data already in memory as a float64 array), with memory
maxcor = m (10, dptrain's lbfgs_memory), stopping at max|g_i| <= gtol
(1e-5; without bounds the projected gradient is the gradient), ftol = 0
(no stop on the decrease of f, like dptrain's ftol = 0), maxiter and
maxfun 100000. Threads: OpenBLAS's (OPENBLAS_NUM_THREADS; NumPy's matmul
is where the time goes). Afterwards it recomputes the gradient at the
result in NumPy and reports its max-norm (grad_inf), the iterations, the
function evaluations and f. One JSON line on stdout.

    /usr/bin/python3 bench/peers/scipy_softmax.py [--n N] [--gtol 1e-5] [--m 10] [--wd 1e-4]
    /usr/bin/python3 bench/peers/scipy_softmax.py --check DIR --f F [--n N]
        (no solve: f and |g|_inf at the weights dptrain exported to DIR, and
         their relative difference from dptrain's F; also f at zero vs log 10)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from softmax_objective import Softmax, blas_info, load_dptrain_export  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=0, help="first N training samples (0: all)")
    ap.add_argument("--gtol", type=float, default=1e-5)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--check", metavar="DIR")
    ap.add_argument("--f", type=float, help="dptrain's f at the exported point (with --check)")
    a = ap.parse_args()

    X, y = fmnist.train(np.float64, a.n or None)
    obj = Softmax(X, y, a.wd)
    n = obj.K * obj.D + obj.K

    if a.check:
        theta = load_dptrain_export(a.check)
        f, g = obj.value_grad(theta)
        f0, g0 = obj.value_grad(np.zeros(n))
        out = {"f_numpy": f, "f_dptrain": a.f, "rel_diff": abs(f - a.f) / abs(a.f) if a.f else None,
               "grad_inf_numpy": float(np.abs(g).max()),
               "f0_numpy": f0, "f0_rel_diff_log10": abs(f0 - math.log(10)) / math.log(10)}
        print(json.dumps(out))
        return

    from scipy.optimize import minimize
    start = time.perf_counter()
    res = minimize(obj.value_grad, np.zeros(n), jac=True, method="L-BFGS-B",
                   options={"maxcor": a.m, "gtol": a.gtol, "ftol": 0.0, "maxiter": 100000, "maxfun": 100000})
    seconds = time.perf_counter() - start
    f, g = obj.value_grad(res.x)
    print(json.dumps({"peer": "scipy L-BFGS-B", "seconds": seconds, "iterations": int(res.nit),
                      "evals": int(res.nfev), "f": f, "grad_inf": float(np.abs(g).max()),
                      "converged": bool(np.abs(g).max() <= a.gtol), "message": str(res.message),
                      "samples": int(obj.N), "blas": blas_info()}))


if __name__ == "__main__":
    main()
