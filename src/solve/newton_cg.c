/* Hessian-free Newton-CG (Martens, "Deep learning via Hessian-free
 * optimization", ICML 2010, cited as M10 with the section).
 *
 * Each step solves (C + lambda I) d = -g by truncated linear CG (Nocedal &
 * Wright algorithm 5.2) with curvature products from the oracle (C: the
 * Gauss-Newton matrix or the Hessian, plus its L2 term), warm-started from
 * the previous solution decayed by warm_decay (M10 section 4.5) and stopped
 * by the relative-progress rule of M10 section 4.4. The step is then
 * Armijo backtracking from alpha = 1, and lambda follows the
 * Levenberg-Marquardt rule of M10 section 4.1 on the reduction ratio
 * rho = (f(x + d) - f(x)) / q(d), q(d) = g.d + d.C d / 2 (undamped model).
 *
 * On a convex objective (cg_forcing, dpt/solve.h) CG also stops by the
 * residual rule of inexact Newton (Nocedal & Wright algorithm 7.1, eq.
 * 7.3; Dembo, Eisenstat & Steihaug 1982): |r| <= eta |g| with
 * eta = min(0.5, sqrt(|g|)), loose far from the minimum and tightening as
 * g falls (superlinear convergence), or once the undamped residual
 * -g - C d, which is the gradient after the full step to first order, is
 * within half the gradient tolerance: solving further would only overshoot
 * the stopping test. Martens' progress rule, made for damped nonconvex
 * problems, asks for the same relative progress at every step, which on
 * softmax regression costs about twice the products.
 *
 * Optionally CG is preconditioned by Martens' diagonal (M10 section 4.7)
 * M = (diag(sum_i g_i g_i) / N + lambda)^0.75, the empirical Fisher's
 * diagonal over the curvature subsample, recomputed every step.
 *
 * Work vectors: w1 = r (residual), w2 = p (CG direction), w3 = A p,
 * w4 = the previous CG solution, w5 = z = M^-1 r, w6 = M^-1. The CG objective
 *     phi(d) = g.d + d.A d / 2 = d.(g - r) / 2   (since r = -g - A d)
 * costs no product. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* out = (C + lambda I) v at x */
static dpt_status apply(dpt_solve_ctx *c, const dpt_real *v, dpt_real *out, double lambda)
{
    dpt_status st = dpt_oracle_curvature(c->o, c->x, v, out, c->p.curvature);
    if (st == DPT_OK && lambda != 0) dpt_axpy((int)c->n, (dpt_real)lambda, v, 1, out, 1);
    return st;
}

static double cg_phi(const dpt_solve_ctx *c, const dpt_real *r)
{
    double dg = dpt_dot_acc((int)c->n, c->d, c->g), dr = dpt_dot_acc((int)c->n, c->d, r);
    return 0.5 * (dg - dr);
}

/* d0 = warm_decay d_prev and r = -g - A d0 if that gives phi(d0) < 0,
 * else d0 = 0 and r = -g (M10 section 4.5). Returns phi(d0) in *phi. */
static dpt_status cg_start(dpt_solve_ctx *c, double *phi)
{
    const size_t n = c->n;
    dpt_real *r = c->w1, *ad = c->w3;
    *phi = 0;
    if (c->have_warm && c->p.warm_decay > 0) {
        for (size_t i = 0; i < n; i++) c->d[i] = (dpt_real)c->p.warm_decay * c->w4[i];
        dpt_status st = apply(c, c->d, ad, c->lambda);
        if (st != DPT_OK) return st;
        for (size_t i = 0; i < n; i++) r[i] = -c->g[i] - ad[i];
        *phi = cg_phi(c, r);
        if (*phi < 0) return DPT_OK;
        *phi = 0;
    }
    memset(c->d, 0, sizeof(dpt_real) * n);
    for (size_t i = 0; i < n; i++) r[i] = -c->g[i];
    return DPT_OK;
}

/* M10 section 4.4: stop at iteration i once i > k = max(10, 0.1 i) and
 * (phi_i - phi_{i-k}) / phi_i < k eps (phi < 0 and decreasing). */
static int progress_stalled(const double *phi_hist, int i, double eps)
{
    int k = (int)fmax(10.0, 0.1 * i);
    if (i <= k || !(phi_hist[i] < 0)) return 0;
    return (phi_hist[i] - phi_hist[i - k]) / phi_hist[i] < k * eps;
}

/* M^-1 into w6: Martens' diagonal, or the identity */
static dpt_status preconditioner(dpt_solve_ctx *c)
{
    dpt_real *minv = c->w6;
    if (!c->p.cg_precondition) {
        for (size_t j = 0; j < c->n; j++) minv[j] = 1;
        return DPT_OK;
    }
    dpt_status st = dpt_oracle_grad_sq(c->o, c->x, minv);
    if (st != DPT_OK) return st;
    for (size_t j = 0; j < c->n; j++) {
        double wd = c->o->is_weight[j] ? c->o->l2 : 0; /* the L2 term's curvature */
        double base = (double)minv[j] + wd + c->lambda; /* 0 for a never-active input with no damping */
        minv[j] = (dpt_real)(base > 0 ? 1.0 / pow(base, 0.75) : 1.0);
    }
    return DPT_OK;
}

/* The objective is convex in theta when the model is one dense layer: its
 * outputs are linear in theta and softmax cross-entropy, MSE and sigmoid
 * cross-entropy are convex in the outputs (the L2 term too). */
static int convex_objective(const dpt_solve_ctx *c)
{
    const dpt_model *m = c->o->model;
    return m->n_layers == 1 && m->layers[0].spec.kind == DPT_LAYER_DENSE;
}

/* The residual rule (see the top): eta |g|_2 and half the gradient bound;
 * both < 0 when the rule is off. */
typedef struct residual_rule {
    double r2_max, inf_max;
} residual_rule;

static residual_rule residual_rule_of(const dpt_solve_ctx *c)
{
    dpt_cg_forcing forcing = c->p.cg_forcing;
    if (forcing == DPT_CG_FORCING_AUTO)
        forcing = convex_objective(c) ? DPT_CG_FORCING_RESIDUAL : DPT_CG_FORCING_PROGRESS;
    if (forcing != DPT_CG_FORCING_RESIDUAL) return (residual_rule){-1, -1};
    const double g2 = dpt_solve_norm2(c->g, c->n);
    return (residual_rule){fmin(0.5, sqrt(g2)) * g2, 0.5 * dpt_solve_gtol_bound(c)};
}

/* 1 when r (the damped residual -g - (C + lambda I) d) meets the rule */
static int residual_small(const dpt_solve_ctx *c, const residual_rule *rule, const dpt_real *r)
{
    if (rule->r2_max < 0) return 0;
    if (dpt_solve_norm2(r, c->n) <= rule->r2_max) return 1;
    double undamped = 0; /* |r + lambda d|_inf */
    for (size_t j = 0; j < c->n; j++)
        undamped = fmax(undamped, fabs((double)r[j] + c->lambda * (double)c->d[j]));
    return undamped <= rule->inf_max;
}

/* Preconditioned truncated CG for (C + lambda I) d = -g (N&W algorithm
 * 5.3); ends on the
 * progress rule, the residual rule (on a convex objective), cg_max_iter,
 * r = 0 or non-positive curvature p.A p <= 0
 * (d stays the last iterate). *phi: the CG objective at d. */
static dpt_status linear_cg(dpt_solve_ctx *c, double *phi)
{
    const int n = (int)c->n;
    dpt_real *r = c->w1, *p = c->w2, *ap = c->w3, *z = c->w5, *minv = c->w6;
    const residual_rule rule = residual_rule_of(c);
    dpt_status st = cg_start(c, phi);
    if (st != DPT_OK) return st;
    c->phi_hist[0] = *phi;
    for (int j = 0; j < n; j++) z[j] = minv[j] * r[j];
    memcpy(p, z, sizeof(dpt_real) * c->n);
    double rz = dpt_dot_acc(n, r, z);
    for (int i = 1; i <= c->p.cg_max_iter && rz > 0; i++) {
        if ((st = apply(c, p, ap, c->lambda)) != DPT_OK) return st;
        double pap = dpt_dot_acc(n, p, ap);
        if (!(pap > 0)) break;
        double a = rz / pap; /* eq. 5.24a (algorithm 5.3 with the preconditioner) */
        dpt_axpy(n, (dpt_real)a, p, 1, c->d, 1);
        dpt_axpy(n, (dpt_real)-a, ap, 1, r, 1);
        c->cg_iters = i;
        c->phi_hist[i] = *phi = cg_phi(c, r);
        if (progress_stalled(c->phi_hist, i, c->p.cg_eps) || residual_small(c, &rule, r)) break;
        for (int j = 0; j < n; j++) z[j] = minv[j] * r[j];
        double rz_new = dpt_dot_acc(n, r, z);
        for (int j = 0; j < n; j++) p[j] = z[j] + (dpt_real)(rz_new / rz) * p[j]; /* 5.24d-e */
        rz = rz_new;
    }
    return DPT_OK;
}

/* The direction d and the undamped model q(d) = phi(d) - lambda |d|^2 / 2;
 * if CG gave no descent direction, d = -g and q is computed with one
 * product. */
static dpt_status direction(dpt_solve_ctx *c, double *q, double *gd)
{
    const int n = (int)c->n;
    double phi;
    dpt_status st = preconditioner(c);
    if (st == DPT_OK) st = linear_cg(c, &phi);
    if (st != DPT_OK) return st;
    *gd = dpt_dot_acc(n, c->g, c->d);
    if (*gd < 0 && phi < 0) {
        *q = phi - 0.5 * c->lambda * dpt_dot_acc(n, c->d, c->d);
        return DPT_OK;
    }
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i];
    if ((st = apply(c, c->d, c->w3, 0)) != DPT_OK) return st;
    *gd = -dpt_dot_acc(n, c->g, c->g);
    *q = *gd + 0.5 * dpt_dot_acc(n, c->d, c->w3);
    return DPT_OK;
}

/* M10 section 4.1: rho < 1/4: lambda *= 3/2; rho > 3/4: lambda *= 2/3 */
static void update_lambda(dpt_solve_ctx *c, double rho)
{
    if (!(rho >= 0.25)) c->lambda *= 1.5;
    else if (rho > 0.75) c->lambda *= 2.0 / 3.0;
}

dpt_status dpt_solve_newton_cg_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    double q, gd;
    dpt_status st = direction(c, &q, &gd);
    if (st != DPT_OK) return st;
    memcpy(c->w4, c->d, sizeof(dpt_real) * c->n); /* the next warm start */
    c->have_warm = 1;
    dpt_linesearch_result res;
    int ok;
    const double f0 = c->f;
    st = dpt_solve_search(c, dpt_linesearch_armijo, gd, 1.0, &res, &ok);
    if (st != DPT_OK) return st;
    update_lambda(c, q < 0 ? (c->ls_first_phi - f0) / q : -1); /* phi(1) = f(x + d) */
    if (!ok) {
        *stop = DPT_SOLVE_STOP_LINESEARCH;
        return DPT_OK;
    }
    return dpt_solve_accept(c, &res);
}
