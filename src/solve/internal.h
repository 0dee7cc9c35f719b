/* Internal to src/solve: the state and steps shared by the solvers
 * (solve.c drives; lbfgs.c, ncg.c and newton_cg.c each make one step). */
#ifndef DPT_SOLVE_INTERNAL_H
#define DPT_SOLVE_INTERNAL_H

#include "dpt/solve.h"


/* L-BFGS history: ring buffer of m pairs (s_i, y_i), rho_i = 1 / (y_i . s_i). */
typedef struct dpt_lbfgs_mem {
    size_t n;
    int m, count, head;   /* head: slot of the next pair to store */
    dpt_real *s, *y;      /* [m][n] */
    double *rho, *alpha;  /* [m] */
} dpt_lbfgs_mem;

/* d = -H g, H the L-BFGS inverse-Hessian approximation with H0 = gamma I,
 * gamma = s.y / y.y of the newest pair (N&W algorithm 7.4, eq. 7.20); with
 * no pairs, d = -g. g and d must not alias. */
void dpt_lbfgs_two_loop(dpt_lbfgs_mem *mem, const dpt_real *g, dpt_real *d);

/* The solver state of one dpt_solve call; all vectors are allocated once. */
typedef struct dpt_solve_ctx {
    dpt_oracle *o;
    dpt_solve_params p;       /* a copy, adjusted by the driver (CG c2) */
    size_t n;
    dpt_real *x, *g;          /* current iterate and gradient */
    dpt_real *xt, *gt;        /* trial point and its gradient (line search) */
    dpt_real *d;              /* search direction */
    dpt_real *w1, *w2, *w3, *w4; /* method work vectors (Newton-CG: r, p, Ap, d_prev) */
    double *phi_hist;         /* Newton-CG: [cg_max_iter + 1] CG objective values */
    dpt_lbfgs_mem mem;
    double f;
    int iter;                 /* accepted iterations so far */
    /* set by the step functions for the callback */
    double step, lambda;
    int cg_iters;
    /* method state */
    int restart_count;        /* CG: iterations since the last restart */
    double prev_alpha, prev_dphi0; /* CG initial step, N&W eq. 3.60 */
    int have_warm;            /* Newton-CG: d_prev holds a direction */
    /* line-search callback state */
    double ls_last_alpha, ls_first_phi;
    int ls_calls;
    char detail[256];         /* why the last line search failed */
} dpt_solve_ctx;

/* One iteration of a method: moves (x, f, g) to an accepted point and sets
 * ctx->step; or leaves them and sets *stop (DPT_SOLVE_STOP_LINESEARCH).
 * Returns a failure status only for oracle or internal errors. */
dpt_status dpt_solve_lbfgs_step(dpt_solve_ctx *c, dpt_solve_stop *stop);
dpt_status dpt_solve_ncg_step(dpt_solve_ctx *c, dpt_solve_stop *stop);
dpt_status dpt_solve_newton_cg_step(dpt_solve_ctx *c, dpt_solve_stop *stop);

/* The line-search callback phi(alpha) = f(x + alpha d) on ctx (user = ctx):
 * writes xt, gt. */
dpt_status dpt_solve_phi(void *user, double alpha, double *phi, double *dphi);
/* After a search that returned `res`: makes (xt, gt) the point at res->alpha
 * (re-evaluating if the last call was elsewhere), then accepts it: swaps it
 * into (x, g), sets f and ctx->step. */
dpt_status dpt_solve_accept(dpt_solve_ctx *c, const dpt_linesearch_result *res);
/* Runs `search` along ctx->d from (x, f, g) with alpha_init (clamped into
 * the parameters' range). *ok = 1 when a step with sufficient decrease was
 * found; DPT_ERR_NUMERIC of the search is mapped to *ok = 0 and DPT_OK, the
 * message kept in ctx->detail. Fails for callback (oracle) errors
 * or a non-descent direction (DPT_ERR_ARG). */
typedef dpt_status (*dpt_solve_search_fn)(dpt_phi_fn, void *, double, double, double,
                                          const dpt_linesearch_params *, dpt_linesearch_result *);
dpt_status dpt_solve_search(dpt_solve_ctx *c, dpt_solve_search_fn search, double dphi0,
                            double alpha_init, dpt_linesearch_result *res, int *ok);

/* ||v||_inf and ||v||_2 (double accumulation) */
double dpt_solve_norm_inf(const dpt_real *v, size_t n);
double dpt_solve_norm2(const dpt_real *v, size_t n);

#endif /* DPT_SOLVE_INTERNAL_H */
