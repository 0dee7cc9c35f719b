/* L-BFGS: Nocedal & Wright, Numerical Optimization (2nd ed.), algorithm 7.5,
 * with the two-loop recursion (algorithm 7.4), H0 = gamma I (eq. 7.20) and a
 * strong-Wolfe line search (More-Thuente, dpt/linesearch.h).
 *
 * The history is a ring buffer of m pairs s_i = x_{i+1} - x_i,
 * y_i = g_{i+1} - g_i. By default it is sharded over the ranks, 2 m n / P
 * reals each, and the direction is the vector-free two-loop recursion
 * (lbfgs_vf.c); with p.lbfgs_replicated every rank keeps all 2 m n reals
 * and runs the serial two-loop (dpt_lbfgs_two_loop). Both give the same H,
 * so the same iterates up to rounding (tests/test_mpi_solve.c). */
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

/* s = x_new - x_old, y = g_new - g_old into s[n], y[n]; returns
 * rho = 1 / (s.y), or 0 when s.y <= 1e-10 |s| |y|: then the pair is skipped,
 * as the update would not keep H positive definite (N&W section 6.1, 7.2). */
static double make_pair(size_t n, dpt_real *s, dpt_real *y, const dpt_real *x_new, const dpt_real *x_old,
                        const dpt_real *g_new, const dpt_real *g_old)
{
    for (size_t i = 0; i < n; i++) s[i] = x_new[i] - x_old[i], y[i] = g_new[i] - g_old[i];
    double sy = dpt_dot_acc((int)n, s, y);
    double ss = dpt_dot_acc((int)n, s, s), yy = dpt_dot_acc((int)n, y, y);
    return sy > 1e-10 * sqrt(ss) * sqrt(yy) ? 1.0 / sy : 0;
}

/* Stores the newest pair: in place in the replicated ring, or this rank's
 * slices of it (formed in the work vectors w1, w2) in the sharded one. */
static void store_pair(dpt_solve_ctx *c, const dpt_real *x_new, const dpt_real *x_old,
                       const dpt_real *g_new, const dpt_real *g_old)
{
    if (!c->p.lbfgs_replicated) {
        double rho = make_pair(c->n, c->w1, c->w2, x_new, x_old, g_new, g_old);
        if (rho > 0) dpt_lbfgs_vf_push(&c->vf, c->w1, c->w2, rho);
        return;
    }
    dpt_lbfgs_mem *mem = &c->mem;
    double rho = make_pair(mem->n, mem->s + (size_t)mem->head * mem->n, mem->y + (size_t)mem->head * mem->n,
                           x_new, x_old, g_new, g_old);
    if (!(rho > 0)) return;
    mem->rho[mem->head] = rho;
    mem->head = (mem->head + 1) % mem->m;
    if (mem->count < mem->m) mem->count++;
}

static int history_count(const dpt_solve_ctx *c) { return c->p.lbfgs_replicated ? c->mem.count : c->vf.count; }

static void history_reset(dpt_solve_ctx *c)
{
    c->mem.count = 0, c->mem.head = 0;
    dpt_lbfgs_vf_reset(&c->vf);
}

/* Direction and first trial step: -H g with alpha 1, or steepest descent
 * with alpha 1/|g| (no history, or -H g not a descent direction). */
static dpt_status direction(dpt_solve_ctx *c, double *dphi0, double *alpha0)
{
    const int n = (int)c->n;
    if (history_count(c) > 0) {
        if (c->p.lbfgs_replicated) {
            dpt_lbfgs_two_loop(&c->mem, c->g, c->d);
        } else {
            dpt_status st = dpt_lbfgs_vf_direction(&c->vf, c->g, c->d);
            if (st != DPT_OK) return st;
        }
        *dphi0 = dpt_dot_acc(n, c->g, c->d);
        *alpha0 = 1.0;
        if (*dphi0 < 0 && isfinite(*dphi0)) return DPT_OK;
        history_reset(c); /* lost positive definiteness: restart */
    }
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i];
    *dphi0 = -dpt_dot_acc(n, c->g, c->g);
    *alpha0 = 1.0 / sqrt(-*dphi0);
    return DPT_OK;
}

static dpt_status update(dpt_solve_ctx *c)
{
    store_pair(c, c->x, c->xt, c->g, c->gt);
    return DPT_OK;
}

dpt_status dpt_solve_lbfgs_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    static const dpt_solve_quasi_newton lbfgs = {direction, history_count, history_reset, update};
    return dpt_solve_quasi_newton_step(c, &lbfgs, stop);
}
