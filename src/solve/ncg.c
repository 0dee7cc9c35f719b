/* Nonlinear conjugate gradients: Nocedal & Wright, Numerical Optimization
 * (2nd ed.), algorithm 5.4 (Fletcher-Reeves, beta eq. 5.41a) and the
 * Polak-Ribiere+ variant (eq. 5.44, beta = max(0, beta_PR)), with restarts
 * (beta = 0) every n iterations, when |g_{k+1}.g_k| >= 0.2 |g_{k+1}|^2
 * (Powell, eq. 5.52), or when the new direction is not a descent direction.
 * The line search is strong Wolfe with c2 = 0.1 by default (lemma 5.6 needs
 * c2 < 1/2 for FR); the first trial step follows eq. 3.60. */
#include <math.h>

#include "internal.h"

static void steepest(dpt_solve_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) c->d[i] = -c->g[i];
    c->restart_count = 0;
}

/* eq. 3.60: alpha_0 = alpha_{k-1} g_{k-1}.d_{k-1} / g_k.d_k; first: 1/|g| */
static double first_trial(const dpt_solve_ctx *c, double dphi0)
{
    if (c->prev_alpha > 0) return c->prev_alpha * c->prev_dphi0 / dphi0;
    return 1.0 / dpt_solve_norm2(c->g, c->n);
}

/* After the step: (x, g) is the new point, gt the old gradient (xt free).
 * d <- -g + beta d. */
static void next_direction(dpt_solve_ctx *c)
{
    const int n = (int)c->n;
    dpt_real *y = c->xt;
    for (int i = 0; i < n; i++) y[i] = c->g[i] - c->gt[i];
    double gg_old = dpt_dot_acc(n, c->gt, c->gt), gg = dpt_dot_acc(n, c->g, c->g);
    double beta = c->p.method == DPT_SOLVE_CG_FR ? gg / gg_old                            /* 5.41a */
                                                 : fmax(0.0, dpt_dot_acc(n, c->g, y) / gg_old); /* 5.44 */
    int restart = ++c->restart_count >= n || fabs(dpt_dot_acc(n, c->g, c->gt)) >= 0.2 * gg ||
                  !isfinite(beta);
    if (restart) {
        steepest(c);
        return;
    }
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i] + (dpt_real)beta * c->d[i];
    if (!(dpt_dot_acc(n, c->g, c->d) < 0)) steepest(c);
}

dpt_status dpt_solve_ncg_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    if (c->iter == 0) steepest(c);
    double dphi0 = dpt_dot_acc((int)c->n, c->g, c->d);
    dpt_linesearch_result res;
    int ok;
    dpt_status st = dpt_solve_search(c, dpt_linesearch, dphi0, first_trial(c, dphi0), &res, &ok);
    if (st == DPT_OK && !ok && c->restart_count > 0) { /* retry once along -g */
        steepest(c);
        dphi0 = dpt_dot_acc((int)c->n, c->g, c->d);
        st = dpt_solve_search(c, dpt_linesearch, dphi0, first_trial(c, dphi0), &res, &ok);
    }
    if (st != DPT_OK) return st;
    if (!ok) {
        *stop = DPT_SOLVE_STOP_LINESEARCH;
        return DPT_OK;
    }
    c->prev_alpha = res.alpha, c->prev_dphi0 = dphi0;
    st = dpt_solve_accept(c, &res);
    if (st != DPT_OK) return st;
    next_direction(c);
    return DPT_OK;
}
