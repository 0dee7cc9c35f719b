/* BFGS with the dense inverse-Hessian approximation H as a distributed
 * ScaLAPACK matrix (Nocedal & Wright, Numerical Optimization, 2nd ed.,
 * algorithm 6.1): d = -H g by p?gemv, a strong-Wolfe line search, then the
 * update of eq. 6.17 (dpt_dense_bfgs_update). H starts as the identity,
 * with the first step 1 / |g|; before the first update it is rescaled to
 * (y.s / y.y) I (eq. 6.20). n^2 / P reals per rank against L-BFGS's
 * 2 m n / P: for small models, and to compare the two.
 *
 * Work vectors: w1 = s, w2 = y. */
#include <math.h>
#include <string.h>

#include "internal.h"

static void reset(dpt_solve_ctx *c)
{
    dpt_dense_set_scaled_identity(&c->dense, 1.0);
    c->bfgs_fresh = 1;
}

/* d = -H g (alpha 1), or -g with alpha 1 / |g| while H is the identity or
 * when -H g is not a descent direction (then H is reset). */
static dpt_status direction(dpt_solve_ctx *c, double *dphi0, double *alpha_init)
{
    const int n = (int)c->n;
    if (!c->bfgs_fresh) {
        dpt_status st = dpt_dense_gemv(&c->dense, c->g, c->d);
        if (st != DPT_OK) return st;
        dpt_scal(n, (dpt_real)-1, c->d, 1);
        *dphi0 = dpt_dot_acc(n, c->g, c->d);
        *alpha_init = 1.0;
        if (*dphi0 < 0 && isfinite(*dphi0)) return DPT_OK;
        reset(c);
    }
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i];
    *dphi0 = -dpt_dot_acc(n, c->g, c->g);
    *alpha_init = 1.0 / sqrt(-*dphi0);
    return DPT_OK;
}

/* The update with s = x_new - x_old, y = g_new - g_old, skipped when
 * s.y <= 1e-10 |s| |y| (H would lose positive definiteness, eq. 6.7). */
static dpt_status update(dpt_solve_ctx *c)
{
    const int n = (int)c->n;
    dpt_real *s = c->w1, *y = c->w2;
    for (int i = 0; i < n; i++) s[i] = c->x[i] - c->xt[i], y[i] = c->g[i] - c->gt[i];
    double sy = dpt_dot_acc(n, s, y), ss = dpt_dot_acc(n, s, s), yy = dpt_dot_acc(n, y, y);
    if (!(sy > 1e-10 * sqrt(ss) * sqrt(yy))) return DPT_OK;
    if (c->bfgs_fresh) dpt_dense_set_scaled_identity(&c->dense, sy / yy); /* eq. 6.20 */
    c->bfgs_fresh = 0;
    return dpt_dense_bfgs_update(&c->dense, s, y, 1.0 / sy);
}

static int has_curvature(const dpt_solve_ctx *c) { return !c->bfgs_fresh; }

dpt_status dpt_solve_bfgs_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    static const dpt_solve_quasi_newton bfgs = {direction, has_curvature, reset, update};
    return dpt_solve_quasi_newton_step(c, &bfgs, stop);
}
