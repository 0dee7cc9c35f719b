/* Internal to src/solve: the state and steps shared by the solvers
 * (solve.c drives; lbfgs.c, ncg.c, newton_cg.c, newton.c and bfgs.c each
 * make one step; dense.h is the ScaLAPACK matrix of newton and bfgs). */
#ifndef DPT_SOLVE_INTERNAL_H
#define DPT_SOLVE_INTERNAL_H

#include <mpi.h>

#include "dense.h"
#include "dpt/solve.h"


/* ---------------------------------------------------------------- vector-free L-BFGS
 * Chen, Wang, Zhou, "Large-scale L-BFGS using MapReduce", NIPS 2014. The
 * history is sharded by rows: with P ranks and mb = ceil(n / P), rank r
 * keeps rows [r mb, min(n, (r + 1) mb)) of S = [s_1..s_m] and Y = [y_1..y_m]
 * (a ScaLAPACK block-row distribution on a P x 1 BLACS grid; trailing ranks
 * may own fewer rows, or none when n is small). Rank r's local block is
 * B_r = [S_r Y_r g_r], column-major with leading dimension lld: columns
 * 0..m-1 the s slots, m..2m-1 the y slots, 2m the gradient slice. The
 * direction takes one p?gemm (the (2m+1)^2 Gram matrix B^T B, reduced to
 * rank 0 and broadcast), the two-loop recursion on the 2m+1 coefficients
 * of d in the basis {s, y, g} using Gram entries only, a local gemv for this
 * rank's slice of d, and an MPI_Allgatherv.
 * Tested equal to dpt_lbfgs_two_loop (tests/test_mpi_lbfgs_vf.c); the
 * solver's L-BFGS uses it unless p.lbfgs_replicated is set. */
typedef struct dpt_lbfgs_vf {
    MPI_Comm comm;
    int P, rank;
    int n, m, count, head;  /* ring as in dpt_lbfgs_mem; slot j = columns j and m + j */
    int mb, lo, rows, lld;  /* layout: this rank's rows [lo, lo + rows), lld = max(1, rows) */
    dpt_real *b;            /* [2m + 1][lld] local block (column-major) */
    double *rho;            /* [m] 1 / (s.y) of each slot */
    int ctx;                /* BLACS context of the P x 1 grid, -1 when not open */
    int own_storage;
} dpt_lbfgs_vf;

/* Sets up the layout on comm (collective only through MPI_Comm_size/rank).
 * With storage == NULL the block and rho are allocated; otherwise the block
 * lives in storage[storage_len] (at least dpt_lbfgs_vf_block_len) and rho
 * in rho_storage[m], both borrowed (DPT_ERR_ARG if too small). The block is
 * zeroed. Opens no BLACS grid. */
dpt_status dpt_lbfgs_vf_create(dpt_lbfgs_vf *vf, MPI_Comm comm, size_t n, int m,
                               dpt_real *storage, size_t storage_len, double *rho_storage);
/* reals the largest local block needs, (2m + 1) mb: the same on every rank */
size_t dpt_lbfgs_vf_block_len(MPI_Comm comm, size_t n, int m);
/* Opens (closes) the P x 1 BLACS grid on comm. Collective. With the grid
 * closed, dpt_lbfgs_vf_direction opens and closes one for the call. */
dpt_status dpt_lbfgs_vf_grid_open(dpt_lbfgs_vf *vf);
void dpt_lbfgs_vf_grid_close(dpt_lbfgs_vf *vf);
/* Closes the grid and frees what create allocated. */
void dpt_lbfgs_vf_destroy(dpt_lbfgs_vf *vf);
/* Forgets every pair. */
void dpt_lbfgs_vf_reset(dpt_lbfgs_vf *vf);
/* Stores this rank's slices of the full (replicated) s[n] and y[n] as the
 * newest pair, rho = 1 / (s.y) (the caller checked s.y > 0). Local. */
void dpt_lbfgs_vf_push(dpt_lbfgs_vf *vf, const dpt_real *s, const dpt_real *y, double rho);
/* Bytes of S and Y history on this rank: rows 2m sizeof(dpt_real). */
size_t dpt_lbfgs_vf_history_bytes(const dpt_lbfgs_vf *vf);
/* d[n] (full, identical on every rank) = -H g for the full replicated g[n];
 * the same H as dpt_lbfgs_two_loop. Collective. g and d must not alias. */
dpt_status dpt_lbfgs_vf_direction(dpt_lbfgs_vf *vf, const dpt_real *g, dpt_real *d);

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
    dpt_real *w5, *w6;        /* Newton-CG: z = M^-1 r and M^-1 (the diagonal preconditioner) */
    double *phi_hist;         /* Newton-CG: [cg_max_iter + 1] CG objective values */
    dpt_lbfgs_mem mem;        /* L-BFGS, replicated history (p.lbfgs_replicated) */
    dpt_lbfgs_vf vf;          /* L-BFGS, history sharded over the ranks (the default) */
    dpt_dense dense;          /* Newton: the curvature matrix; BFGS: the inverse Hessian */
    dpt_real *rows;           /* Newton, Gauss-Newton: factored Jacobian rows of one chunk */
    size_t rows_chunk;        /* samples per chunk of rows */
    double *eig;              /* Newton with spectrum: [n] eigenvalues */
    int bfgs_fresh;           /* BFGS: H is the identity, no pair stored yet */
    double alpha_floor;       /* Newton: the damping tried first this step */
    double system_floor;      /* Newton: sqrt(eps) max|c_ij| of the last assembled C */
    double newton_lm;         /* Newton: Levenberg-Marquardt damping for the next step */
    int assembled_at;         /* Newton: iteration of the last assembly (-1: none yet) */
    int has_spectrum, negative; /* Newton with spectrum, this step: see dpt_solve_iter */
    double eig_min, eig_max;
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
dpt_status dpt_solve_newton_step(dpt_solve_ctx *c, dpt_solve_stop *stop);
dpt_status dpt_solve_bfgs_step(dpt_solve_ctx *c, dpt_solve_stop *stop);

/* Newton: samples per chunk of factored Jacobian rows (a buffer of about
 * 32 MiB, at most the model's batch). */
size_t dpt_solve_newton_chunk(const dpt_oracle *o);

/* The step shared by L-BFGS and BFGS: direction (-H g, or -g with a
 * 1 / |g| first trial when there is no curvature information), a
 * strong-Wolfe search, one retry along -g after forgetting the curvature
 * information if the search failed, acceptance, then the update from the
 * new (x, g) and the old point left in (xt, gt). */
typedef struct dpt_solve_quasi_newton {
    dpt_status (*direction)(dpt_solve_ctx *c, double *dphi0, double *alpha_init);
    int (*has_curvature)(const dpt_solve_ctx *c);
    void (*forget)(dpt_solve_ctx *c);
    dpt_status (*update)(dpt_solve_ctx *c);
} dpt_solve_quasi_newton;
dpt_status dpt_solve_quasi_newton_step(dpt_solve_ctx *c, const dpt_solve_quasi_newton *qn,
                                       dpt_solve_stop *stop);

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

/* The bound of the gradient test, gtol or gtol max(1, |x|_inf). */
double dpt_solve_gtol_bound(const dpt_solve_ctx *c);

/* ||v||_inf and ||v||_2 (double accumulation) */
double dpt_solve_norm_inf(const dpt_real *v, size_t n);
double dpt_solve_norm2(const dpt_real *v, size_t n);

#endif /* DPT_SOLVE_INTERNAL_H */
