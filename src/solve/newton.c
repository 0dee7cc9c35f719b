/* Damped Newton on an explicit curvature matrix (Nocedal & Wright,
 * Numerical Optimization, 2nd ed., section 3.4: Newton's method with
 * Hessian modification, and section 7.1: inexact Newton by CG).
 *
 * Each step assembles C, the curvature of the objective at x plus its L2
 * term, as a 2-D block-cyclic ScaLAPACK matrix (dense.h):
 *   Gauss-Newton  C = (1 / N_c) A^T A + l2 I_W, A the factored Jacobian rows
 *                 of the curvature subsample (dpt_model_gn_rows; for
 *                 softmax regression C is the exact Hessian), accumulated
 *                 chunk by chunk with p?syrk: O(N_c R n^2 / P) per rank;
 *   Hessian       column j = C e_j by the oracle's Hv product: n products,
 *                 for small models only.
 * It then solves (C + alpha I) d = -g, by Cholesky with alpha raised until
 * the factorization succeeds (N&W algorithm 3.3) or by truncated CG on
 * p?gemv products (N&W algorithm 7.1, forcing term eq. 7.3, stopping at
 * negative curvature), and takes a strong-Wolfe line search from alpha = 1.
 * The alpha tried first follows the Levenberg-Marquardt rule on the
 * reduction ratio rho = (f(x + d) - f(x)) / q(d) of the full step,
 * q(d) = g.d + d.C d / 2: rho < 1/4 multiplies it by 4, rho > 3/4 divides it
 * by 3 (the thresholds of N&W algorithm 4.1; the factors are ours). A C from a small subsample
 * underestimates the curvature along features the subsample lacks, and the
 * damping keeps those steps from overshooting.
 * The gradient is always the exact one of the whole batch, so the
 * minimiser is the true one even when C comes from a subsample.
 *
 * Work vectors for CG: w1 = r, w2 = p, w3 = A p, w4 = z (PCG). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* samples per assembly chunk: a row buffer of about 32 MiB, at least one sample */
size_t dpt_solve_newton_chunk(const dpt_oracle *o)
{
    size_t row_bytes = sizeof(dpt_real) * (size_t)dpt_model_gn_rows_per_sample(o->model) * o->model->n_params;
    size_t chunk = ((size_t)32 << 20) / (row_bytes ? row_bytes : 1);
    if (chunk > (size_t)o->model->max_batch) chunk = (size_t)o->model->max_batch;
    return chunk ? chunk : 1;
}

/* C = (1 / N_a) sum over ranks of A_r^T A_r, A_r the rows of the first
 * newton_fraction of the rank's curvature samples (N_a of them in all):
 * every rank calls the p?syrk
 * the same number of times (the largest share's chunk count), passing no
 * rows once its own share is done. */
static dpt_status assemble_gauss_newton(dpt_solve_ctx *c)
{
    dpt_oracle *o = c->o;
    const int R = dpt_model_gn_rows_per_sample(o->model);
    size_t assembled = (size_t)((double)o->curv_count * c->p.newton_fraction + 0.5);
    if (assembled == 0 && o->curv_count > 0) assembled = 1;
    unsigned long own[2] = {assembled, assembled}, most[2] = {0, 0};
    if (MPI_Allreduce(own, most, 1, MPI_UNSIGNED_LONG, MPI_MAX, o->comm.comm) != MPI_SUCCESS ||
        MPI_Allreduce(own + 1, most + 1, 1, MPI_UNSIGNED_LONG, MPI_SUM, o->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "newton: reduction of the curvature sample counts failed");
    const double scale = 1.0 / (double)(most[1] ? most[1] : 1);
    size_t chunks = (most[0] + c->rows_chunk - 1) / c->rows_chunk;
    if (chunks == 0) chunks = 1; /* one call with beta = 0 clears C */
    for (size_t k = 0; k < chunks; k++) {
        size_t first = k * c->rows_chunk, count = 0;
        if (first < assembled) count = assembled - first < c->rows_chunk ? assembled - first : c->rows_chunk;
        dpt_status st = dpt_oracle_gn_rows(o, c->x, first, count, c->rows);
        st = dpt_agree_status(&o->comm, st, NULL); /* before the collective p?syrk */
        if (st == DPT_OK)
            st = dpt_dense_syrk_rows(&c->dense, c->rows, (int)(count * (size_t)R), scale, k ? 1.0 : 0.0);
        if (st != DPT_OK) return st;
    }
    for (size_t i = 0; i < c->n; i++) c->w1[i] = o->is_weight[i] ? (dpt_real)o->l2 : 0;
    dpt_dense_add_diag(&c->dense, c->w1);
    return DPT_OK;
}

/* C column by column from exact Hessian-vector products (which include
 * the L2 term), then (C + C^T) / 2 against rounding. */
static dpt_status assemble_hessian(dpt_solve_ctx *c)
{
    dpt_real *e = c->w1, *col = c->w2;
    memset(e, 0, sizeof(dpt_real) * c->n);
    for (size_t j = 0; j < c->n; j++) {
        e[j] = 1;
        dpt_status st = dpt_oracle_curvature(c->o, c->x, e, col, DPT_CURV_HESSIAN);
        e[j] = 0;
        if (st != DPT_OK) return st;
        dpt_dense_set_column(&c->dense, (int)j, col);
    }
    return dpt_dense_symmetrize(&c->dense);
}

/* Extreme eigenvalues, condition number and negative count of C. An
 * eigenvalue counts as negative below -sqrt(eps) max|lambda|: p?syevd's
 * error is about n eps |C|, and rounding alone makes a zero eigenvalue
 * (softmax's bias shift) come out as +-1e-17. */
static dpt_status spectrum(dpt_solve_ctx *c)
{
    dpt_status st = dpt_dense_eigenvalues(&c->dense, c->eig);
    if (st != DPT_OK) return st;
    c->has_spectrum = 1;
    c->eig_min = c->eig[0], c->eig_max = c->eig[c->n - 1];
    const double tol = sqrt(DPT_REAL_EPS) * fmax(fabs(c->eig_min), fabs(c->eig_max));
    c->negative = 0;
    for (size_t i = 0; i < c->n; i++) c->negative += c->eig[i] < -tol;
    return DPT_OK;
}

/* out = C v by p?gemv on the assembled matrix */
static dpt_status dense_product(dpt_solve_ctx *c, const dpt_real *v, dpt_real *out)
{
    return dpt_dense_gemv(&c->dense, v, out);
}

/* out = H v by the oracle's exact product over the curvature batch */
static dpt_status exact_product(dpt_solve_ctx *c, const dpt_real *v, dpt_real *out)
{
    return dpt_oracle_curvature(c->o, c->x, v, out, c->p.curvature);
}

/* Truncated (preconditioned) CG on (A + alpha I) d = -g from d = 0 (N&W
 * algorithm 7.1, with algorithm 5.3's preconditioning): stops when
 * |r| <= min(0.5, sqrt|g|) |g| (eq. 7.3: superlinear convergence), at
 * cg_max_iter, or at a direction of non-positive curvature (then d so far,
 * or the preconditioned -g on the first iteration, as Steihaug).
 *   newton_solver = cg:  A = C by p?gemv, alpha = alpha_floor, no preconditioner;
 *   newton_solver = pcg: A = the oracle's exact H over the whole curvature
 *     batch (one product per iteration, cheap next to assembly), alpha only
 *     the sqrt(eps) floor (newton_damping applies to the preconditioner),
 *     preconditioned by the Cholesky factor of the assembled C + alpha I. A C
 *     from a subsample, or from an earlier iterate (newton_refresh), is a
 *     good preconditioner long after it stops being a good Newton matrix,
 *     so Newton keeps its fast local convergence for a few products. */
static dpt_status truncated_cg(dpt_solve_ctx *c)
{
    const int n = (int)c->n, precondition = c->p.newton_solver == DPT_NEWTON_PCG;
    dpt_status (*product)(dpt_solve_ctx *, const dpt_real *, dpt_real *) =
        precondition ? exact_product : dense_product;
    dpt_real *r = c->w1, *p = c->w2, *ap = c->w3, *z = precondition ? c->w4 : c->w1;
    const double alpha = precondition ? c->system_floor : c->alpha_floor;
    const double gnorm = sqrt(dpt_dot_acc(n, c->g, c->g)), tol = fmin(0.5, sqrt(gnorm)) * gnorm;
    memset(c->d, 0, sizeof(dpt_real) * c->n);
    for (int i = 0; i < n; i++) r[i] = -c->g[i];
    dpt_status st = precondition ? dpt_dense_factor_apply(&c->dense, r, z) : DPT_OK;
    if (st != DPT_OK) return st;
    memcpy(p, z, sizeof(dpt_real) * c->n);
    double rz = dpt_dot_acc(n, r, z), rr = dpt_dot_acc(n, r, r);
    if (!precondition) c->lambda = alpha;
    for (int k = 0; k < c->p.cg_max_iter && sqrt(rr) > tol; k++) {
        if ((st = product(c, p, ap)) != DPT_OK) return st;
        if (alpha != 0) dpt_axpy(n, (dpt_real)alpha, p, 1, ap, 1);
        double pap = dpt_dot_acc(n, p, ap);
        c->cg_iters = k + 1;
        if (!(pap > 1e-14 * dpt_dot_acc(n, p, p))) { /* negative curvature: stop */
            if (k == 0) memcpy(c->d, z, sizeof(dpt_real) * c->n);
            return DPT_OK;
        }
        double a = rz / pap;
        dpt_axpy(n, (dpt_real)a, p, 1, c->d, 1);
        dpt_axpy(n, (dpt_real)-a, ap, 1, r, 1);
        rr = dpt_dot_acc(n, r, r);
        if (precondition && (st = dpt_dense_factor_apply(&c->dense, r, z)) != DPT_OK) return st;
        double rz_new = precondition ? dpt_dot_acc(n, r, z) : rr;
        for (int i = 0; i < n; i++) p[i] = z[i] + (dpt_real)(rz_new / rz) * p[i];
        rz = rz_new;
    }
    return DPT_OK;
}

/* Assembles C (and its spectrum) and factors C + alpha I for the PCG
 * preconditioner, or for the Cholesky solve: *d_ok = 0 when no damping
 * made it positive definite. */
static dpt_status assemble(dpt_solve_ctx *c)
{
    dpt_status st = c->p.curvature == DPT_CURV_HESSIAN ? assemble_hessian(c) : assemble_gauss_newton(c);
    if (st == DPT_OK && c->p.spectrum) st = spectrum(c);
    if (st != DPT_OK) return st;
    /* damping of at least sqrt(eps) max|c_ij|: a singular C (softmax is
     * invariant to a shift of all biases) would otherwise factor with a
     * rounding-sized pivot, and the step would run off along the null
     * direction by rounding error / pivot */
    double max_abs = 0;
    st = dpt_dense_max_abs(&c->dense, &max_abs);
    if (st != DPT_OK) return st;
    c->system_floor = sqrt(DPT_REAL_EPS) * max_abs;
    c->alpha_floor = fmax(c->newton_lm, c->system_floor);
    c->assembled_at = c->iter;
    return DPT_OK;
}

/* The Newton direction into c->d (or steepest descent if it is not a
 * descent direction); *alpha_init the first trial step. */
static dpt_status direction(dpt_solve_ctx *c, double *dphi0, double *alpha_init)
{
    const int n = (int)c->n;
    dpt_status st = DPT_OK;
    int fresh = c->assembled_at < 0 || c->iter - c->assembled_at >= c->p.newton_refresh;
    if (fresh && (st = assemble(c)) != DPT_OK) return st;
    if (c->p.newton_solver == DPT_NEWTON_CG) {
        st = truncated_cg(c);
    } else if (c->p.newton_solver == DPT_NEWTON_PCG) {
        if (fresh) { /* factor C + alpha I; its step is PCG's start, discarded */
            st = dpt_dense_damped_solve(&c->dense, c->g, c->alpha_floor, c->d, &c->lambda);
            if (st == DPT_ERR_NUMERIC) return DPT_FAIL(DPT_ERR_NUMERIC, "newton: no damping made the "
                                                       "preconditioner positive definite");
        }
        if (st == DPT_OK) st = truncated_cg(c);
    } else {
        st = dpt_dense_damped_solve(&c->dense, c->g, c->alpha_floor, c->d, &c->lambda);
        if (st == DPT_ERR_NUMERIC) { /* no damping helped (d not written): steepest descent */
            st = DPT_OK;
            memset(c->d, 0, sizeof(dpt_real) * c->n);
        }
    }
    if (st != DPT_OK) return st;
    *dphi0 = dpt_dot_acc(n, c->g, c->d); /* 0 after the failure above: falls through to -g */
    *alpha_init = 1.0;
    if (*dphi0 < 0 && isfinite(*dphi0)) return DPT_OK;
    for (int i = 0; i < n; i++) c->d[i] = -c->g[i];
    *dphi0 = -dpt_dot_acc(n, c->g, c->g);
    *alpha_init = 1.0 / sqrt(-*dphi0);
    return DPT_OK;
}

/* q(d) = g.d + d.C d / 2, the undamped quadratic model (one p?gemv) */
static dpt_status model_decrease(dpt_solve_ctx *c, double *q)
{
    dpt_status st = dpt_dense_gemv(&c->dense, c->d, c->w3);
    if (st != DPT_OK) return st;
    *q = dpt_dot_acc((int)c->n, c->g, c->d) + 0.5 * dpt_dot_acc((int)c->n, c->d, c->w3);
    return DPT_OK;
}

dpt_status dpt_solve_newton_step(dpt_solve_ctx *c, dpt_solve_stop *stop)
{
    double dphi0 = 0, a0 = 1, q = 0, f0 = c->f;
    dpt_linesearch_result res;
    int ok = 0;
    c->has_spectrum = 0;
    dpt_status st = direction(c, &dphi0, &a0);
    /* the Levenberg-Marquardt rule judges the assembled C as a model; with
     * PCG the step solves the exact system and C only preconditions */
    int newton_direction = a0 == 1.0 && c->p.newton_solver != DPT_NEWTON_PCG && dphi0 != 0;
    if (st == DPT_OK && newton_direction) st = model_decrease(c, &q);
    if (st == DPT_OK) st = dpt_solve_search(c, dpt_linesearch, dphi0, a0, &res, &ok);
    if (st != DPT_OK) return st;
    if (newton_direction) { /* phi(1) = f(x + d) was the search's first trial */
        double rho = q < 0 ? (c->ls_first_phi - f0) / q : -1, used = c->p.newton_solver == DPT_NEWTON_CG
                                                                      ? c->alpha_floor : c->lambda;
        c->newton_lm = !(rho >= 0.25) ? 4 * used : rho > 0.75 ? used / 3 : used;
    }
    if (!ok) {
        *stop = DPT_SOLVE_STOP_LINESEARCH;
        return DPT_OK;
    }
    return dpt_solve_accept(c, &res);
}
