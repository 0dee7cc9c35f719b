/* The solver driver: parameters, work vectors, the line-search callback
 * shared by the methods, and the stopping rules. The methods' iterations
 * are in lbfgs.c, ncg.c and newton_cg.c.
 *
 * Determinism: every branch below depends only on the parameters and on
 * oracle outputs (identical on every rank) and arithmetic on them. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stop_names[] = {
    [DPT_SOLVE_STOP_NONE] = "not stopped",
    [DPT_SOLVE_STOP_GTOL] = "gradient tolerance",
    [DPT_SOLVE_STOP_FTOL] = "relative decrease of f below ftol",
    [DPT_SOLVE_STOP_MAX_ITER] = "iteration limit",
    [DPT_SOLVE_STOP_MAX_EVALS] = "oracle call limit",
    [DPT_SOLVE_STOP_LINESEARCH] = "line search found no decrease",
    [DPT_SOLVE_STOP_REQUESTED] = "stop requested (signal)",
};

const char *dpt_solve_stop_name(dpt_solve_stop stop)
{
    if ((unsigned)stop >= sizeof stop_names / sizeof stop_names[0]) return "unknown";
    return stop_names[stop];
}

void dpt_solve_params_init(dpt_solve_params *p)
{
    memset(p, 0, sizeof *p);
    p->method = DPT_SOLVE_LBFGS;
    p->max_iter = 1000;
    p->max_evals = 100000;
    p->gtol = 1e-5;
    p->ftol = 10 * DPT_REAL_EPS;
    dpt_linesearch_params_init(&p->ls);
    p->lbfgs_m = 10;
    p->cg_max_iter = 250;
    p->lambda0 = 1.0;
    p->cg_eps = 5e-4;
    p->warm_decay = 0.95;
    p->curvature = DPT_CURV_GAUSS_NEWTON;
    p->newton_fraction = 1;
    p->newton_refresh = 1;
}

/* ================================================================ helpers */

double dpt_solve_norm_inf(const dpt_real *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

double dpt_solve_norm2(const dpt_real *v, size_t n) { return sqrt(dpt_dot_acc((int)n, v, v)); }

/* phi(alpha) = f(x + alpha d), phi'(alpha) = g(x + alpha d) . d */
dpt_status dpt_solve_phi(void *user, double alpha, double *phi, double *dphi)
{
    dpt_solve_ctx *c = user;
    const dpt_real a = (dpt_real)alpha;
    for (size_t i = 0; i < c->n; i++) c->xt[i] = c->x[i] + a * c->d[i];
    dpt_status st = dpt_oracle_value_grad(c->o, c->xt, phi, c->gt);
    if (st != DPT_OK) return st;
    *dphi = dpt_dot_acc((int)c->n, c->gt, c->d);
    if (c->ls_calls++ == 0) c->ls_first_phi = *phi;
    c->ls_last_alpha = alpha;
    return DPT_OK;
}

static void swap_vec(dpt_real **a, dpt_real **b)
{
    dpt_real *t = *a;
    *a = *b, *b = t;
}

dpt_status dpt_solve_accept(dpt_solve_ctx *c, const dpt_linesearch_result *res)
{
    if (res->alpha != c->ls_last_alpha) { /* the search ended on an earlier trial */
        double phi, dphi;
        dpt_status st = dpt_solve_phi(c, res->alpha, &phi, &dphi);
        if (st != DPT_OK) return st;
    }
    swap_vec(&c->x, &c->xt);
    swap_vec(&c->g, &c->gt);
    c->f = res->phi;
    c->step = res->alpha;
    return DPT_OK;
}

dpt_status dpt_solve_search(dpt_solve_ctx *c, dpt_solve_search_fn search, double dphi0,
                            double alpha_init, dpt_linesearch_result *res, int *ok)
{
    const dpt_linesearch_params *lp = &c->p.ls;
    if (!(dphi0 < 0))
        return DPT_FAIL(DPT_ERR_ARG, "solve: not a descent direction (g.d = %g)", dphi0);
    double a0 = fmin(fmax(alpha_init, lp->alpha_min), lp->alpha_max);
    if (!(a0 > 0) || !isfinite(a0)) a0 = 1;
    c->ls_calls = 0;
    c->ls_last_alpha = -1;
    dpt_status st = search(dpt_solve_phi, c, c->f, dphi0, a0, lp, res);
    *ok = st == DPT_OK && res->alpha > 0;
    if (st == DPT_ERR_NUMERIC) {
        snprintf(c->detail, sizeof c->detail, "%s", dpt_error_message());
        return DPT_OK;
    }
    return st;
}

dpt_status dpt_solve_quasi_newton_step(dpt_solve_ctx *c, const dpt_solve_quasi_newton *qn,
                                       dpt_solve_stop *stop)
{
    double dphi0, a0;
    dpt_linesearch_result res;
    int ok = 0;
    dpt_status st = qn->direction(c, &dphi0, &a0);
    if (st == DPT_OK) st = dpt_solve_search(c, dpt_linesearch, dphi0, a0, &res, &ok);
    if (st == DPT_OK && !ok && qn->has_curvature(c)) { /* retry once along -g */
        qn->forget(c);
        st = qn->direction(c, &dphi0, &a0);
        if (st == DPT_OK) st = dpt_solve_search(c, dpt_linesearch, dphi0, a0, &res, &ok);
    }
    if (st != DPT_OK) return st;
    if (!ok) {
        *stop = DPT_SOLVE_STOP_LINESEARCH;
        return DPT_OK;
    }
    st = dpt_solve_accept(c, &res); /* (x, g) <- new point, (xt, gt) <- old */
    return st == DPT_OK ? qn->update(c) : st;
}

/* ================================================================ driver */

static dpt_status check_params(const dpt_solve_params *p)
{
    if ((unsigned)p->method > DPT_SOLVE_BFGS)
        return DPT_FAIL(DPT_ERR_ARG, "solve: unknown method %d", (int)p->method);
    if (p->max_iter < 0 || p->max_evals < 1)
        return DPT_FAIL(DPT_ERR_ARG, "solve: max_iter %d and max_evals %ld must be >= 0 and >= 1",
                        p->max_iter, p->max_evals);
    if (!(p->gtol >= 0) || !(p->ftol >= 0))
        return DPT_FAIL(DPT_ERR_ARG, "solve: gtol %g and ftol %g must be >= 0", p->gtol, p->ftol);
    if (p->method == DPT_SOLVE_LBFGS && p->lbfgs_m < 1)
        return DPT_FAIL(DPT_ERR_ARG, "solve: lbfgs memory %d must be >= 1", p->lbfgs_m);
    if (p->method == DPT_SOLVE_NEWTON_CG &&
        (p->cg_max_iter < 1 || !(p->lambda0 >= 0) || !(p->cg_eps > 0) ||
         !(p->warm_decay >= 0 && p->warm_decay <= 1) || (unsigned)p->cg_forcing > DPT_CG_FORCING_RESIDUAL ||
         (p->curvature != DPT_CURV_HESSIAN && p->curvature != DPT_CURV_GAUSS_NEWTON)))
        return DPT_FAIL(DPT_ERR_ARG,
                        "solve: Newton-CG needs cg_max_iter >= 1 (%d), lambda0 >= 0 (%g), "
                        "cg_eps > 0 (%g), warm_decay in [0, 1] (%g), a known CG forcing and curvature kind",
                        p->cg_max_iter, p->lambda0, p->cg_eps, p->warm_decay);
    if (p->method == DPT_SOLVE_NEWTON &&
        (!(p->newton_alpha0 >= 0) || p->cg_max_iter < 1 ||
         (unsigned)p->newton_solver > DPT_NEWTON_PCG || !(p->newton_fraction > 0 && p->newton_fraction <= 1) ||
         p->newton_refresh < 1 || (p->newton_refresh > 1 && p->newton_solver != DPT_NEWTON_PCG) ||
         (p->curvature != DPT_CURV_HESSIAN && p->curvature != DPT_CURV_GAUSS_NEWTON)))
        return DPT_FAIL(DPT_ERR_ARG, "solve: Newton needs damping >= 0 (%g), cg_max_iter >= 1 (%d), "
                        "a known linear solver and curvature kind, newton_fraction in (0, 1] (%g), newton_refresh "
                        ">= 1 (%d; > 1 only with pcg)", p->newton_alpha0, p->cg_max_iter, p->newton_fraction,
                        p->newton_refresh);
    return DPT_OK;
}

/* The explicit matrix of Newton (the curvature) or BFGS (the inverse
 * Hessian), and Newton's row buffer and eigenvalues. */
static dpt_status alloc_dense(dpt_solve_ctx *c)
{
    if (c->n > 46340) /* n^2 must fit ScaLAPACK's int sizes; far beyond "small" anyway */
        return DPT_FAIL(DPT_ERR_ARG, "solve: %s keeps an n x n matrix; n = %zu parameters is too many "
                        "(use lbfgs or newton_cg)", c->p.method == DPT_SOLVE_BFGS ? "bfgs" : "newton", c->n);
    dpt_status st = dpt_dense_create(&c->dense, c->o->comm.comm, (int)c->n, 0);
    if (st != DPT_OK) return st;
    if (c->p.method == DPT_SOLVE_BFGS) {
        dpt_dense_set_scaled_identity(&c->dense, 1.0);
        c->bfgs_fresh = 1;
        return DPT_OK;
    }
    if (c->p.curvature == DPT_CURV_GAUSS_NEWTON) {
        c->rows_chunk = dpt_solve_newton_chunk(c->o);
        c->rows = malloc(sizeof(dpt_real) * c->rows_chunk * (size_t)dpt_model_gn_rows_per_sample(c->o->model) * c->n);
    }
    if (c->p.spectrum) c->eig = malloc(sizeof(double) * c->n);
    int ok = (c->rows || c->p.curvature != DPT_CURV_GAUSS_NEWTON) && (c->eig || !c->p.spectrum);
    st = ok ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "newton: out of memory for the Jacobian rows or eigenvalues");
    return dpt_agree_status(&c->o->comm, st, NULL);
}

/* One block for every vector of the run: x, g, xt, gt, d, and per method
 * four work vectors (Newton-CG), two (L-BFGS: s and y before they are
 * sliced into the sharded history) or the replicated history 2 m n. The
 * sharded history is allocated, and its BLACS grid opened, once per run. */
static dpt_status alloc_ctx(dpt_solve_ctx *c)
{
    size_t n = c->n, nvec = 5, m = 0;
    int sharded = c->p.method == DPT_SOLVE_LBFGS && !c->p.lbfgs_replicated;
    if (c->p.method == DPT_SOLVE_NEWTON_CG || c->p.method == DPT_SOLVE_NEWTON) nvec += 4;
    if (c->p.method == DPT_SOLVE_NEWTON_CG) nvec += 2;
    if (sharded || c->p.method == DPT_SOLVE_BFGS) nvec += 2;
    if (c->p.method == DPT_SOLVE_LBFGS && !sharded) m = (size_t)c->p.lbfgs_m;
    dpt_real *block = calloc(n * (nvec + 2 * m) + 1, sizeof(dpt_real));
    double *dbl = malloc(sizeof(double) * (2 * m + (size_t)c->p.cg_max_iter + 1));
    dpt_status st = DPT_OK;
    if (!block || !dbl) {
        free(block), free(dbl);
        block = NULL, dbl = NULL;
        st = DPT_FAIL(DPT_ERR_NOMEM, "solve: out of memory for %zu vectors of %zu parameters",
                      nvec + 2 * m, n);
    }
    st = dpt_agree_status(&c->o->comm, st, NULL); /* before any collective set-up below */
    if (st != DPT_OK) {
        free(block), free(dbl);
        return st;
    }
    dpt_real **vec[] = {&c->x, &c->g, &c->xt, &c->gt, &c->d, &c->w1, &c->w2, &c->w3, &c->w4, &c->w5, &c->w6};
    for (size_t i = 0; i < nvec; i++) *vec[i] = block + i * n;
    c->mem = (dpt_lbfgs_mem){.n = n, .m = (int)m, .s = block + nvec * n,
                             .y = block + (nvec + m) * n, .rho = dbl, .alpha = dbl + m};
    c->phi_hist = dbl + 2 * m;
    if (c->p.method == DPT_SOLVE_NEWTON || c->p.method == DPT_SOLVE_BFGS) return alloc_dense(c);
    if (!sharded) return DPT_OK;
    st = dpt_lbfgs_vf_create(&c->vf, c->o->comm.comm, n, c->p.lbfgs_m, NULL, 0, NULL);
    st = dpt_agree_status(&c->o->comm, st, NULL); /* no rank may open the grid alone */
    if (st == DPT_OK) st = dpt_agree_status(&c->o->comm, dpt_lbfgs_vf_grid_open(&c->vf), NULL);
    return st;
}

double dpt_solve_gtol_bound(const dpt_solve_ctx *c)
{
    return c->p.gtol * (c->p.gtol_absolute ? 1.0 : fmax(1.0, dpt_solve_norm_inf(c->x, c->n)));
}

static dpt_solve_stop check_stop(const dpt_solve_ctx *c, double f_prev, long calls)
{
    if (dpt_solve_norm_inf(c->g, c->n) <= dpt_solve_gtol_bound(c)) return DPT_SOLVE_STOP_GTOL;
    if (c->iter > 0 && f_prev - c->f <= c->p.ftol * fmax(1.0, fabs(f_prev)))
        return DPT_SOLVE_STOP_FTOL;
    if (c->iter >= c->p.max_iter) return DPT_SOLVE_STOP_MAX_ITER;
    if (calls >= c->p.max_evals) return DPT_SOLVE_STOP_MAX_EVALS;
    return DPT_SOLVE_STOP_NONE;
}

/* A stop asked for on any rank (the callback reads a signal flag), agreed
 * by one MAX reduction so that every rank leaves the loop together. */
static dpt_status stop_agreed(const dpt_solve_ctx *c, int *stop)
{
    *stop = 0;
    if (!c->p.stop_requested) return DPT_OK;
    int mine = c->p.stop_requested() != 0;
    if (MPI_Allreduce(&mine, stop, 1, MPI_INT, MPI_MAX, c->o->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "solve: the stop agreement's MPI_Allreduce failed");
    return DPT_OK;
}

static dpt_status method_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    switch (c->p.method) {
    case DPT_SOLVE_LBFGS: return dpt_solve_lbfgs_step(c, stop);
    case DPT_SOLVE_NEWTON_CG: return dpt_solve_newton_cg_step(c, stop);
    case DPT_SOLVE_NEWTON: return dpt_solve_newton_step(c, stop);
    case DPT_SOLVE_BFGS: return dpt_solve_bfgs_step(c, stop);
    default: return dpt_solve_ncg_step(c, stop);
    }
}

static long calls_since(const dpt_oracle *o, long e0, long p0) { return o->evals - e0 + o->products - p0; }

/* The iteration loop: stopping rules (checked before each iteration), one
 * method step, the callback. */
static dpt_status run(dpt_solve_ctx *c, dpt_solve_stop *stop, dpt_solve_iter_fn on_iter, void *user)
{
    const long e0 = c->o->evals, p0 = c->o->products;
    dpt_status st = dpt_oracle_value_grad(c->o, c->x, &c->f, c->g);
    if (st != DPT_OK) return st;
    if (!isfinite(c->f) || !isfinite(dpt_solve_norm_inf(c->g, c->n)))
        return DPT_FAIL(DPT_ERR_NUMERIC, "solve: non-finite f (%g) or gradient at the start", c->f);
    double f_prev = c->f;
    while ((*stop = check_stop(c, f_prev, calls_since(c->o, e0, p0))) == DPT_SOLVE_STOP_NONE) {
        int requested;
        st = stop_agreed(c, &requested);
        if (st != DPT_OK) return st;
        if (requested) {
            *stop = DPT_SOLVE_STOP_REQUESTED;
            return DPT_OK;
        }
        f_prev = c->f;
        c->cg_iters = 0;
        st = method_step(c, stop);
        if (st != DPT_OK || *stop != DPT_SOLVE_STOP_NONE) return st;
        c->iter++;
        if (on_iter) {
            dpt_solve_iter it = {.iter = c->iter, .f = c->f, .gnorm_inf = dpt_solve_norm_inf(c->g, c->n),
                                 .step = c->step, .oracle_calls = calls_since(c->o, e0, p0),
                                 .lambda = c->lambda, .cg_iters = c->cg_iters,
                                 .has_spectrum = c->has_spectrum, .eig_min = c->eig_min,
                                 .eig_max = c->eig_max, .negative = c->negative,
                                 .condition = fabs(c->eig_max) / fabs(c->eig_min)};
            on_iter(&it, user);
        }
    }
    return DPT_OK;
}

static void fill_report(const dpt_solve_ctx *c, dpt_solve_stop stop, long e0, long p0,
                        dpt_solve_report *r)
{
    if (!r) return;
    memset(r, 0, sizeof *r);
    r->iterations = c->iter;
    r->evals = c->o->evals - e0;
    r->products = c->o->products - p0;
    r->f = c->f;
    r->gnorm_inf = c->g ? dpt_solve_norm_inf(c->g, c->n) : NAN;
    r->reason = stop;
    r->reason_name = dpt_solve_stop_name(stop);
    if (c->p.method == DPT_SOLVE_LBFGS)
        r->state_bytes = c->p.lbfgs_replicated ? 2 * (size_t)c->p.lbfgs_m * c->n * sizeof(dpt_real)
                                               : dpt_lbfgs_vf_history_bytes(&c->vf);
    else if (c->p.method == DPT_SOLVE_NEWTON || c->p.method == DPT_SOLVE_BFGS)
        r->state_bytes = dpt_dense_local_bytes(&c->dense);
    snprintf(r->detail, sizeof r->detail, "%s", c->detail);
}

dpt_status dpt_solve(dpt_oracle *o, dpt_real *theta, const dpt_solve_params *p,
                     dpt_solve_report *report, dpt_solve_iter_fn on_iter, void *user)
{
    if (!o || !o->model || !theta || !p) return DPT_FAIL(DPT_ERR_ARG, "solve: NULL argument");
    dpt_status st = check_params(p);
    if (st != DPT_OK) return st;
    dpt_solve_ctx c;
    memset(&c, 0, sizeof c);
    c.vf.ctx = -1; /* no grid open */
    c.dense.ctx = -1, c.dense.ctx_row = -1;
    c.o = o;
    c.p = *p;
    c.n = o->model->n_params;
    c.lambda = p->method == DPT_SOLVE_NEWTON_CG ? p->lambda0 : 0;
    c.newton_lm = p->newton_alpha0;
    c.assembled_at = -1;
    /* CG needs a more accurate line search (N&W section 5.2: c2 = 0.1) */
    if ((p->method == DPT_SOLVE_CG_PR || p->method == DPT_SOLVE_CG_FR) && p->ls.c2 == 0.9) c.p.ls.c2 = 0.1;
    const long e0 = o->evals, p0 = o->products;
    dpt_solve_stop stop = DPT_SOLVE_STOP_NONE;
    dpt_real *block = NULL;
    st = alloc_ctx(&c);
    block = c.x; /* NULL if its allocation failed; the swaps below permute the pointers inside it */
    if (st != DPT_OK) goto cleanup;
    memcpy(c.x, theta, sizeof(dpt_real) * c.n);
    st = run(&c, &stop, on_iter, user);
    if (st == DPT_OK) memcpy(theta, c.x, sizeof(dpt_real) * c.n);
    fill_report(&c, st == DPT_OK ? stop : DPT_SOLVE_STOP_NONE, e0, p0, report);
cleanup:
    dpt_lbfgs_vf_destroy(&c.vf);
    dpt_dense_destroy(&c.dense);
    free(c.rows), free(c.eig);
    free(block);
    free(c.mem.rho);
    return st;
}
