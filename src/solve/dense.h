/* Internal to src/solve: a dense symmetric n x n matrix distributed over the
 * ranks with ScaLAPACK, for the second-order solvers (Gauss-Newton and
 * Newton with an explicit Hessian, full-matrix BFGS).
 *
 * Layout: 2-D block-cyclic with square nb x nb blocks on a near-square
 * pr x pc BLACS grid over comm, pr * pc = P and pr >= pc (P = 2: 2 x 1,
 * 3: 3 x 1, 4: 2 x 2, 6: 3 x 2), row-major rank order (rank r is grid
 * process (r / pc, r % pc)). Rank (myrow, mycol) keeps the loc_rows x
 * loc_cols entries of its blocks, column-major with leading dimension lld:
 * local (i, j) is global (grow[i], gcol[j]) (ScaLAPACK's INDXL2G). Both
 * triangles are kept valid (full storage), so every operation can read
 * either and products need no symmetric special case.
 *
 * Vectors (g, d, s, y, x) are plain replicated arrays of n dpt_real,
 * identical on every rank; results that are vectors come back replicated
 * and bit-identical on every rank.
 *
 * "Collective" means every rank of comm must call the function, with the
 * same scalar arguments and replicated vectors. A collective function that
 * fails on one rank (an allocation) fails on every rank (DPT_ERR_REMOTE on
 * the others), so no rank is left waiting in a collective. "Local" means no
 * communication. */
#ifndef DPT_SOLVE_DENSE_H
#define DPT_SOLVE_DENSE_H

#include <mpi.h>
#include <stddef.h>

#include "dpt/error.h"
#include "dpt/real.h"

#define DPT_DENSE_DEFAULT_NB 64

typedef struct dpt_dense {
    MPI_Comm comm;
    int P, rank;
    int ctx;                        /* BLACS context of the pr x pc grid, -1 when closed */
    int ctx_row;                    /* a 1 x P grid on the same ranks: dpt_dense_syrk_rows' input */
    int nprow, npcol, myrow, mycol; /* grid shape and this rank's place in it */
    int n, nb;                      /* global order, block size */
    int loc_rows, loc_cols, lld;    /* local block: loc_rows x loc_cols, lld = max(1, loc_rows) */
    int desc[9];                    /* ScaLAPACK descriptor of the matrix */
    int desc_vec[9];                /* an n x 1 column vector aligned with the rows of the matrix */
    int *grow, *gcol;               /* [loc_rows], [loc_cols] global index of each local row, column */
    dpt_real *a;                    /* [loc_cols][lld] local block, column-major */
    dpt_real *work_a;               /* [loc_cols][lld] copy for factorization and transposes, lazily */
    dpt_real *vec_x, *vec_y;        /* [lld] local parts of distributed vectors */
} dpt_dense;

/* Opens the pr x pc grid (and the 1 x P one) on comm and allocates this
 * rank's block of an n x n matrix, set to zero. nb = 0 picks
 * DPT_DENSE_DEFAULT_NB (ScaLAPACK's usual 32..128 range; smaller blocks
 * balance small matrices better, larger ones run the local BLAS faster).
 * n >= 1, nb >= 0, or DPT_ERR_ARG. comm must outlive A. Collective. On
 * failure nothing is left open or allocated. */
dpt_status dpt_dense_create(dpt_dense *A, MPI_Comm comm, int n, int nb);

/* Frees the blocks and exits the grids. Collective (BLACS grid exit).
 * Safe after a failed dpt_dense_create and after dpt_dense_destroy (not on
 * a merely zeroed struct: context 0 may be someone else's grid). */
void dpt_dense_destroy(dpt_dense *A);

/* Bytes of this rank's block of the matrix, lld * loc_cols * sizeof(dpt_real):
 * about n^2 / P; the lazily allocated factorization copy doubles it. Local. */
size_t dpt_dense_local_bytes(const dpt_dense *A);

/* A = s I (the initial inverse Hessian of BFGS, N&W eq. 6.20). Local. */
void dpt_dense_set_scaled_identity(dpt_dense *A, double s);

/* A += diag(diag[0..n-1]), diag replicated (e.g. the L2 regularization term
 * of a Gauss-Newton matrix). Local. */
void dpt_dense_add_diag(dpt_dense *A, const dpt_real *diag);

/* A = beta A + alpha sum_r R_r^T R_r, where rank r passes its own rows
 * R_r = rows[rows_local][n] (row-major; rows_local may differ between ranks
 * and may be 0, then rows may be NULL). This is the Gauss-Newton matrix
 * G = J^T H J = sum_r R_r^T R_r from the per-rank factored Jacobian rows
 * R = H^(1/2) J (N&W section 10.3). The rows are moved to the grid with
 * p?gemr2d and multiplied with one p?syrk. Large row counts: call it
 * repeatedly on chunks with beta = 1 (the work space is about
 * n * max rows_local / P reals per rank for each call). Collective. */
dpt_status dpt_dense_syrk_rows(dpt_dense *A, const dpt_real *rows, int rows_local, double alpha,
                               double beta);

/* Sets column j (0-based) of A to the replicated col[n], each rank writing
 * the entries it owns; the rest of A is untouched, so after this A may not
 * be symmetric. For a Hessian assembled column by column from
 * Hessian-vector products; finish with dpt_dense_symmetrize. Local. */
void dpt_dense_set_column(dpt_dense *A, int j, const dpt_real *col);

/* A = (A + A^T) / 2: the symmetric part, the nearest symmetric matrix in
 * the Frobenius norm to a Hessian assembled from finite or rounded
 * Hessian-vector products. Collective. */
dpt_status dpt_dense_symmetrize(dpt_dense *A);

/* y[n] = A x[n], x replicated; y replicated and bit-identical on every rank
 * on return. x and y may alias. Collective. */
dpt_status dpt_dense_gemv(dpt_dense *A, const dpt_real *x, dpt_real *y);

/* The regularized (Levenberg-Marquardt-like) Newton step: solves
 * (A + alpha I) d = -g by Cholesky (p?potrf, p?potrs) on a copy, A unchanged.
 * Tries alpha = alpha0 (>= 0) first; while A + alpha I is not positive
 * definite raises alpha as in N&W algorithm 3.3 (Cholesky with added
 * multiple of the identity): the first retry at
 * max(10 alpha0, -min_i a_ii + floor, floor), floor = max(1e-8 max|a_ij|,
 * 1e-30), then times 10, at most 60 factorizations (then
 * DPT_ERR_NUMERIC). *alpha_used is the alpha that succeeded (may be NULL).
 * g and d replicated, may alias; d is bit-identical on every rank.
 * DPT_ERR_NUMERIC also for a non-finite d. Collective. */
dpt_status dpt_dense_damped_solve(dpt_dense *A, const dpt_real *g, double alpha0, dpt_real *d,
                                  double *alpha_used);

/* z = (A + alpha I)^-1 r with the Cholesky factor of the last successful
 * dpt_dense_damped_solve (it stays until the next call of damped_solve,
 * eigenvalues, symmetrize or syrk_rows, which reuse the work copy): a preconditioner.
 * r and z replicated, must not alias. Collective. */
dpt_status dpt_dense_factor_apply(dpt_dense *A, const dpt_real *r, dpt_real *z);

/* *max_abs = max |a_ij| over the whole matrix (replicated); DPT_ERR_NUMERIC
 * for a non-finite entry. Collective. */
dpt_status dpt_dense_max_abs(dpt_dense *A, double *max_abs);

/* All n eigenvalues of A in ascending order into w[n] (replicated and
 * bit-identical), by p?syevd on a copy (A unchanged); p?syevd computes the
 * eigenvectors too (its JOBZ = 'N' is not implemented), so the call
 * needs about 3 n^2 / P reals beyond A's block. For checking curvature
 * (lambda_min < 0: a saddle; lambda_max / lambda_min: the conditioning).
 * Collective. */
dpt_status dpt_dense_eigenvalues(dpt_dense *A, double *w);

/* The BFGS update of the inverse Hessian approximation H (N&W eq. 6.17):
 *   H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T,  rho = 1 / (y^T s),
 * which makes H y = s (the secant equation for H, N&W section 6.1). Expanded
 * with h = H y (one dpt_dense_gemv):
 *   H <- H - rho (h s^T + s h^T) + (rho^2 y^T h + rho) s s^T,
 * applied entry by entry on each rank's block: O(n^2 / P) and no
 * communication beyond the gemv. s and y replicated; rho > 0 and finite
 * (the caller checked the curvature condition y^T s > 0, N&W eq. 6.7),
 * otherwise DPT_ERR_ARG and H unchanged. Keeps H exactly symmetric.
 * Collective. */
dpt_status dpt_dense_bfgs_update(dpt_dense *H, const dpt_real *s, const dpt_real *y, double rho);

#endif /* DPT_SOLVE_DENSE_H */
