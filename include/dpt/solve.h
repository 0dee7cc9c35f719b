/* dpt/solve.h - second-order (full-batch) solvers on the distributed oracle.
 *
 * dpt_solve minimises the oracle's objective f(theta) (dpt/oracle.h) with
 *   L-BFGS           Nocedal & Wright, Numerical Optimization (2nd ed.),
 *                    algorithm 7.5 with the two-loop recursion 7.4;
 *   nonlinear CG     Polak-Ribiere+ or Fletcher-Reeves (N&W section 5.2,
 *                    eqs. 5.41a, 5.44, restarts eq. 5.52);
 *   Newton-CG        Hessian-free with Levenberg-Marquardt damping (Martens,
 *                    "Deep learning via Hessian-free optimization", ICML 2010);
 *   Newton           damped (regularized) Newton on the curvature matrix
 *                    assembled explicitly as a 2-D block-cyclic ScaLAPACK
 *                    matrix: (C + alpha I) d = -g by Cholesky (p?potrf), alpha
 *                    raised until C + alpha I is positive definite, or by
 *                    truncated CG on p?gemv products (N&W section 3.4, 7.1);
 *   BFGS             the dense inverse-Hessian approximation as a distributed
 *                    matrix (N&W algorithm 6.1, update eq. 6.17, H0 eq. 6.20).
 *
 * Iterates and gradients are full n_params vectors, replicated on every
 * rank; the L-BFGS history is sharded over the ranks (a ScaLAPACK block-row
 * layout, see lbfgs_replicated). The
 * oracle returns identical reduced values on every rank, and the solvers
 * branch only on those values and on deterministic arithmetic on them, so
 * all ranks take the same steps. Every call of dpt_solve is collective.
 */
#ifndef DPT_SOLVE_H
#define DPT_SOLVE_H

#include "dpt/linesearch.h"
#include "dpt/oracle.h"

typedef enum dpt_solve_method {
    DPT_SOLVE_LBFGS = 0,
    DPT_SOLVE_CG_PR,     /* nonlinear CG, Polak-Ribiere+ */
    DPT_SOLVE_CG_FR,     /* nonlinear CG, Fletcher-Reeves */
    DPT_SOLVE_NEWTON_CG, /* Hessian-free truncated Newton */
    DPT_SOLVE_NEWTON,    /* damped Newton, explicit ScaLAPACK curvature matrix */
    DPT_SOLVE_BFGS       /* BFGS, dense distributed inverse Hessian */
} dpt_solve_method;

/* How the damped Newton method solves (C + alpha I) d = -g. */
typedef enum dpt_newton_solver {
    DPT_NEWTON_CHOLESKY = 0, /* p?potrf/p?potrs, alpha raised until the factorization succeeds */
    DPT_NEWTON_CG,           /* truncated linear CG on p?gemv products (stops at negative curvature) */
    DPT_NEWTON_PCG           /* truncated CG on the oracle's exact products over the curvature
                                batch, preconditioned by the Cholesky factor of the assembled
                                (possibly subsampled, possibly stale) matrix */
} dpt_newton_solver;

/* When Newton-CG's linear CG stops (besides cg_max_iter, a zero residual
 * and non-positive curvature). */
typedef enum dpt_cg_forcing {
    DPT_CG_FORCING_AUTO = 0,  /* residual for a convex objective (a model of one dense layer:
                                 the logits are linear in theta, every loss is convex in them),
                                 progress otherwise */
    DPT_CG_FORCING_PROGRESS,  /* Martens' relative-progress rule (M10 section 4.4) */
    DPT_CG_FORCING_RESIDUAL   /* the progress rule, and the inexact-Newton residual rule
                                 (Nocedal & Wright algorithm 7.1): |r|_2 <= eta |g|_2 with
                                 eta = min(0.5, sqrt(|g|_2)), or the undamped residual
                                 -g - C d (the first-order gradient after the full step)
                                 within half the gradient tolerance in the inf-norm */
} dpt_cg_forcing;

typedef enum dpt_solve_stop {
    DPT_SOLVE_STOP_NONE = 0,   /* not stopped (or an error status was returned) */
    DPT_SOLVE_STOP_GTOL,       /* ||g||_inf <= gtol max(1, ||x||_inf), or <= gtol (gtol_absolute) */
    DPT_SOLVE_STOP_FTOL,       /* (f_prev - f) <= ftol max(1, |f_prev|) */
    DPT_SOLVE_STOP_MAX_ITER,
    DPT_SOLVE_STOP_MAX_EVALS,  /* oracle calls (evals + products) >= max_evals */
    DPT_SOLVE_STOP_LINESEARCH, /* no step along the (steepest-descent) direction decreased f */
    DPT_SOLVE_STOP_REQUESTED   /* stop_requested() was non-zero on some rank (a signal) */
} dpt_solve_stop;

/* Fixed name of a stopping reason, e.g. "gradient tolerance". */
const char *dpt_solve_stop_name(dpt_solve_stop stop);

typedef struct dpt_solve_params {
    dpt_solve_method method;
    int max_iter;             /* iterations, >= 0 (default 1000) */
    long max_evals;           /* oracle calls, evals + products, >= 1 (default 100000);
                                 checked between iterations */
    double gtol;              /* default 1e-5 */
    int gtol_absolute;        /* 0 (default): gtol is relative to max(1, ||x||_inf); 1: absolute */
    double ftol;              /* default 10 DPT_REAL_EPS; 0 stops only when f does not decrease */
    dpt_linesearch_params ls; /* dpt_linesearch_params_init; for CG the driver uses c2 = 0.1
                                 when c2 is left at the default 0.9 */
    /* L-BFGS */
    int lbfgs_m;              /* stored pairs, >= 1 (default 10) */
    int lbfgs_replicated;     /* 0 (default): the history is sharded by rows over the ranks
                                 (vector-free two-loop, Chen et al. 2014: 2 m n / P reals per
                                 rank); 1: every rank keeps all 2 m n (the serial two-loop) */
    /* Newton-CG */
    int cg_max_iter;          /* linear CG iterations per step, >= 1 (default 250) */
    double lambda0;           /* initial damping, >= 0 (default 1.0) */
    double cg_eps;            /* Martens' relative-progress tolerance (default 5e-4) */
    double warm_decay;        /* warm start d0 = warm_decay d_prev, in [0, 1] (default 0.95) */
    int cg_precondition;      /* 1: Martens' diagonal preconditioner
                                 M = (diag(empirical Fisher) + lambda)^0.75 (default 0) */
    dpt_cg_forcing cg_forcing; /* default DPT_CG_FORCING_AUTO */
    dpt_curvature_kind curvature; /* Newton-CG and Newton: default DPT_CURV_GAUSS_NEWTON; Newton
                                     assembles G from factored Jacobian rows with p?syrk and the
                                     exact Hessian column by column from Hv products (n products:
                                     for small models) */
    /* Newton */
    double newton_alpha0;     /* damping tried first in (C + alpha I) d = -g, >= 0 (default 0) */
    dpt_newton_solver newton_solver; /* default DPT_NEWTON_CHOLESKY */
    int spectrum;             /* 1: eigenvalues of C (p?syevd) whenever it is assembled (default 0) */
    double newton_fraction;   /* share of each rank's curvature samples assembled into C,
                                 (0, 1] (default 1): O(samples n^2) assembly */
    int newton_refresh;       /* assemble C every this many iterations, >= 1 (default 1; > 1
                                 only with DPT_NEWTON_PCG, where C is a preconditioner) */
    /* NULL, or asked between iterations on every rank (e.g. "a stop signal
     * arrived"); non-zero on any rank (agreed by one reduction) ends the run
     * with DPT_SOLVE_STOP_REQUESTED at the last accepted iterate */
    int (*stop_requested)(void);
} dpt_solve_params;

void dpt_solve_params_init(dpt_solve_params *p);

/* What the per-iteration callback sees (after each accepted iteration). */
typedef struct dpt_solve_iter {
    int iter;            /* 1, 2, ... */
    double f;            /* objective after the iteration */
    double gnorm_inf;    /* ||g||_inf after the iteration */
    double step;         /* line-search step length alpha */
    long oracle_calls;   /* evals + products so far in this dpt_solve call */
    double lambda;       /* Newton-CG: damping after this step's LM update; Newton: the damping
                            alpha its factorization used (0 otherwise) */
    int cg_iters;        /* Newton-CG linear CG iterations of this step (0 otherwise) */
    /* Newton with spectrum = 1: eigenvalues of the curvature matrix C (with
     * the L2 term) assembled at the start of this step; has_spectrum 0
     * otherwise */
    int has_spectrum;
    double eig_min, eig_max; /* extreme eigenvalues */
    double condition;        /* |eig_max| / |eig_min| (inf when eig_min = 0) */
    int negative;            /* eigenvalues < 0: a saddle point or a non-convex region */
} dpt_solve_iter;

typedef struct dpt_solve_report {
    int iterations;
    long evals, products;     /* oracle calls made by this dpt_solve call */
    double f, gnorm_inf;      /* at the returned theta */
    dpt_solve_stop reason;
    const char *reason_name;  /* dpt_solve_stop_name(reason) */
    size_t state_bytes;       /* this rank's curvature memory: the L-BFGS history, the
                                 BFGS or Newton matrix block (0 for CG and Newton-CG) */
    char detail[256];         /* e.g. the line search's message when it failed */
} dpt_solve_report;

typedef void (*dpt_solve_iter_fn)(const dpt_solve_iter *it, void *user);

/* Minimises f from theta[n_params] (in: start, out: the last accepted
 * iterate, also on a stopping rule or a line-search failure). Collective.
 * DPT_OK when a stopping rule ended the run (report->reason says which);
 * DPT_ERR_ARG for bad parameters; DPT_ERR_NOMEM; DPT_ERR_NUMERIC for a
 * non-finite f or gradient at the start; an oracle status passed on.
 * report and on_iter may be NULL. */
dpt_status dpt_solve(dpt_oracle *o, dpt_real *theta, const dpt_solve_params *p,
                     dpt_solve_report *report, dpt_solve_iter_fn on_iter, void *user);

#endif /* DPT_SOLVE_H */
