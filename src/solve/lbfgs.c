/* L-BFGS: Nocedal & Wright, Numerical Optimization (2nd ed.), algorithm 7.5,
 * with the two-loop recursion (algorithm 7.4), H0 = gamma I (eq. 7.20) and a
 * strong-Wolfe line search (More-Thuente, dpt/linesearch.h).
 *
 * The history is a ring buffer of m pairs s_i = x_{i+1} - x_i,
 * y_i = g_{i+1} - g_i (2 m n reals), replicated on every rank.
 * dpt_lbfgs_two_loop is the only function that reads it, so that a sharded
 * version can replace it. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* slot of the k-th newest pair, k = 0 the newest */
static int slot(const dpt_lbfgs_mem *mem, int k) { return (mem->head - 1 - k + 2 * mem->m) % mem->m; }

void dpt_lbfgs_two_loop(dpt_lbfgs_mem *mem, const dpt_real *g, dpt_real *d)
{
    const int n = (int)mem->n;
    memcpy(d, g, sizeof(dpt_real) * mem->n); /* q <- g */
    for (int k = 0; k < mem->count; k++) {   /* newest to oldest */
        int j = slot(mem, k);
        const dpt_real *s = mem->s + (size_t)j * mem->n, *y = mem->y + (size_t)j * mem->n;
        mem->alpha[j] = mem->rho[j] * dpt_dot_acc(n, s, d);
        dpt_axpy(n, (dpt_real)-mem->alpha[j], y, 1, d, 1); /* q <- q - alpha_i y_i */
    }
    if (mem->count > 0) { /* r <- H0 q, gamma_k = s.y / y.y (eq. 7.20) */
        int j = slot(mem, 0);
        const dpt_real *y = mem->y + (size_t)j * mem->n;
        double gamma = 1.0 / (mem->rho[j] * dpt_dot_acc(n, y, y));
        dpt_scal(n, (dpt_real)gamma, d, 1);
    }
    for (int k = mem->count - 1; k >= 0; k--) { /* oldest to newest */
        int j = slot(mem, k);
        const dpt_real *s = mem->s + (size_t)j * mem->n, *y = mem->y + (size_t)j * mem->n;
        double beta = mem->rho[j] * dpt_dot_acc(n, y, d);
        dpt_axpy(n, (dpt_real)(mem->alpha[j] - beta), s, 1, d, 1); /* r <- r + s_i (alpha_i - beta) */
    }
    dpt_scal(n, (dpt_real)-1, d, 1);
}

/* Stores s = x_new - x_old, y = g_new - g_old if s.y > 1e-10 |s| |y|
 * (otherwise the pair is skipped: the update would not keep H positive
 * definite, N&W section 6.1 / 7.2). */
static void store_pair(dpt_lbfgs_mem *mem, const dpt_real *x_new, const dpt_real *x_old,
                       const dpt_real *g_new, const dpt_real *g_old)
{
    const size_t n = mem->n;
    dpt_real *s = mem->s + (size_t)mem->head * n, *y = mem->y + (size_t)mem->head * n;
    for (size_t i = 0; i < n; i++) s[i] = x_new[i] - x_old[i], y[i] = g_new[i] - g_old[i];
    double sy = dpt_dot_acc((int)n, s, y);
    double ss = dpt_dot_acc((int)n, s, s), yy = dpt_dot_acc((int)n, y, y);
    if (!(sy > 1e-10 * sqrt(ss) * sqrt(yy))) return;
    mem->rho[mem->head] = 1.0 / sy;
    mem->head = (mem->head + 1) % mem->m;
    if (mem->count < mem->m) mem->count++;
}

/* Direction and first trial step: -H g with alpha 1, or steepest descent
 * with alpha 1/|g| (no history, or -H g not a descent direction). */
static double direction(dpt_solve_ctx *c, double *dphi0)
{
    const int n = (int)c->n;
    if (c->mem.count > 0) {
        dpt_lbfgs_two_loop(&c->mem, c->g, c->d);
        *dphi0 = dpt_dot_acc(n, c->g, c->d);
        if (*dphi0 < 0 && isfinite(*dphi0)) return 1.0;
        c->mem.count = 0, c->mem.head = 0; /* lost positive definiteness: restart */
    }
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i];
    *dphi0 = -dpt_dot_acc(n, c->g, c->g);
    return 1.0 / sqrt(-*dphi0);
}

dpt_status dpt_solve_lbfgs_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    double dphi0;
    double a0 = direction(c, &dphi0);
    dpt_linesearch_result res;
    int ok;
    dpt_status st = dpt_solve_search(c, dpt_linesearch, dphi0, a0, &res, &ok);
    if (st == DPT_OK && !ok && c->mem.count > 0) { /* retry once along -g */
        c->mem.count = 0, c->mem.head = 0;
        a0 = direction(c, &dphi0);
        st = dpt_solve_search(c, dpt_linesearch, dphi0, a0, &res, &ok);
    }
    if (st != DPT_OK) return st;
    if (!ok) {
        *stop = DPT_SOLVE_STOP_LINESEARCH;
        return DPT_OK;
    }
    st = dpt_solve_accept(c, &res); /* (x, g) <- new point, (xt, gt) <- old */
    if (st != DPT_OK) return st;
    store_pair(&c->mem, c->x, c->xt, c->g, c->gt);
    return DPT_OK;
}
