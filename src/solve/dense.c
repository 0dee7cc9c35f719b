/* A dense symmetric matrix distributed 2-D block-cyclically with ScaLAPACK
 * (the layout and the contract of every function are in dense.h).
 *
 * Replicated vectors enter the grid as an n x 1 column vector on process
 * column 0, laid out like the matrix rows (desc_vec), so that PBLAS and
 * p?potrs need no redistribution; they leave it through one MPI_Allreduce
 * SUM in which every entry has exactly one non-zero contribution (its
 * owner's), so the result is exact and bit-identical on every rank.
 *
 * The Fortran routines (p?potrf, p?potrs, p?syevd) get the hidden
 * character-length arguments gfortran passes after the others; the PBLAS
 * and the redistribution routines are written in C and take none. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blacs.h"
#include "dense.h"


/* one prototype per routine, in dpt_real; the name picks the precision */
#ifdef DPT_DOUBLE
#define dense_pgemr2d pdgemr2d_
#define dense_psyrk pdsyrk_
#define dense_ptran pdtran_
#define dense_pgemv pdgemv_
#define dense_ppotrf pdpotrf_
#define dense_ppotrs pdpotrs_
#define dense_psyevd pdsyevd_
#else
#define dense_pgemr2d psgemr2d_
#define dense_psyrk pssyrk_
#define dense_ptran pstran_
#define dense_pgemv psgemv_
#define dense_ppotrf pspotrf_
#define dense_ppotrs pspotrs_
#define dense_psyevd pssyevd_
#endif
void dense_pgemr2d(const int *m, const int *n, const dpt_real *a, const int *ia, const int *ja,
                   const int *desca, dpt_real *b, const int *ib, const int *jb, const int *descb,
                   const int *ctx);
void dense_psyrk(const char *uplo, const char *trans, const int *n, const int *k, const dpt_real *alpha,
                 const dpt_real *a, const int *ia, const int *ja, const int *desca, const dpt_real *beta,
                 dpt_real *c, const int *ic, const int *jc, const int *descc);
void dense_ptran(const int *m, const int *n, const dpt_real *alpha, const dpt_real *a, const int *ia,
                 const int *ja, const int *desca, const dpt_real *beta, dpt_real *c, const int *ic,
                 const int *jc, const int *descc);
void dense_pgemv(const char *trans, const int *m, const int *n, const dpt_real *alpha, const dpt_real *a,
                 const int *ia, const int *ja, const int *desca, const dpt_real *x, const int *ix,
                 const int *jx, const int *descx, const int *incx, const dpt_real *beta, dpt_real *y,
                 const int *iy, const int *jy, const int *descy, const int *incy);
void dense_ppotrf(const char *uplo, const int *n, dpt_real *a, const int *ia, const int *ja, const int *desca,
                  int *info, size_t uplo_len);
void dense_ppotrs(const char *uplo, const int *n, const int *nrhs, const dpt_real *a, const int *ia,
                  const int *ja, const int *desca, dpt_real *b, const int *ib, const int *jb,
                  const int *descb, int *info, size_t uplo_len);
void dense_psyevd(const char *jobz, const char *uplo, const int *n, dpt_real *a, const int *ia, const int *ja,
                  const int *desca, dpt_real *w, dpt_real *z, const int *iz, const int *jz, const int *descz,
                  dpt_real *work, const int *lwork, int *iwork, const int *liwork, int *info,
                  size_t jobz_len, size_t uplo_len);

static const int ONE_I = 1, ZERO_I = 0;

/* damped solve: factorizations before giving up; 1e-8 max|a_ij| is the
 * first shift worth trying, 1e-30 the floor for a zero matrix (a normal
 * float, so the shift survives the cast to dpt_real) */
#define DENSE_MAX_FACTORIZATIONS 60
#define DENSE_SHIFT_REL 1e-8
#define DENSE_SHIFT_TINY 1e-30

/* ---------------------------------------------------------------- layout */

/* Global index of local index l when blocks of nb are dealt round-robin to
 * nprocs processes starting at process 0 (ScaLAPACK INDXL2G). */
static int local_to_global(int l, int nb, int iproc, int nprocs)
{
    return (l / nb) * nb * nprocs + iproc * nb + l % nb;
}

/* Local index of global index g on process iproc, or -1 if another process
 * owns it (ScaLAPACK INDXG2P and INDXG2L). */
static int global_to_local(int g, int nb, int iproc, int nprocs)
{
    if ((g / nb) % nprocs != iproc) return -1;
    return (g / (nb * nprocs)) * nb + g % nb;
}

/* The most nearly square pr x pc = P with pr >= pc: pc is the largest
 * divisor of P not above sqrt(P). Square-ish grids minimize the
 * communication volume of the factorizations (ScaLAPACK Users' Guide,
 * section 5.2); pr >= pc favours the column-oriented Cholesky panel. */
static void grid_shape(int P, int *nprow, int *npcol)
{
    int pc = 1;
    for (int c = 1; c * c <= P; c++)
        if (P % c == 0) pc = c;
    *npcol = pc, *nprow = P / pc;
}

/* reals in a local block, at least one so that malloc never sees 0 */
static size_t block_len(const dpt_dense *A)
{
    return (size_t)A->lld * (size_t)(A->loc_cols > 0 ? A->loc_cols : 1);
}

/* The diagonal entry in local column j of the block buf (laid out like A's
 * block), NULL if another process row owns it. */
static dpt_real *diag_entry(const dpt_dense *A, dpt_real *buf, int j)
{
    int i = global_to_local(A->gcol[j], A->nb, A->myrow, A->nprow);
    return i < 0 ? NULL : buf + i + (size_t)A->lld * (size_t)j;
}

/* Every rank's outcome of local work that precedes collective work: this
 * rank's failure, DPT_ERR_REMOTE if only another rank failed (that rank
 * recorded the cause), DPT_OK if none did. No rank enters a collective
 * alone, and every rank returns the same success or failure. */
static dpt_status agree(const dpt_dense *A, dpt_status local)
{
    int mine = local == DPT_OK ? A->P : A->rank, lowest = mine;
    if (MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, A->comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "dense: status all-reduce failed");
    if (lowest == A->P) return DPT_OK;
    if (local != DPT_OK) return local;
    return DPT_FAIL(DPT_ERR_REMOTE, "dense: rank %d failed", lowest);
}

/* the factorization / transpose copy, allocated on first use; local */
static dpt_status ensure_work(dpt_dense *A)
{
    if (A->work_a) return DPT_OK;
    A->work_a = malloc(sizeof(dpt_real) * block_len(A));
    if (!A->work_a)
        return DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for a %zu-real work block", block_len(A));
    return DPT_OK;
}

/* ---------------------------------------------------------------- create, destroy */

/* a BLACS grid over comm in row-major rank order; the context or -1 */
static int open_grid(MPI_Comm comm, int nprow, int npcol)
{
    int handle = Csys2blacs_handle(comm), ctx = handle;
    Cblacs_gridinit(&ctx, "R", nprow, npcol); /* makes its own communicators */
    Cfree_blacs_system_handle(handle);
    return ctx;
}

/* Opens both grids and checks that rank r sits where row-major order puts
 * it (the layout in dense.h depends on it). */
static dpt_status open_grids(dpt_dense *A)
{
    A->ctx = open_grid(A->comm, A->nprow, A->npcol);
    A->ctx_row = open_grid(A->comm, 1, A->P);
    int pr = 0, pc = 0, r = -1, c = -1, pr1 = 0, pc1 = 0, r1 = -1, c1 = -1;
    if (A->ctx >= 0) Cblacs_gridinfo(A->ctx, &pr, &pc, &r, &c);
    if (A->ctx_row >= 0) Cblacs_gridinfo(A->ctx_row, &pr1, &pc1, &r1, &c1);
    if (pr != A->nprow || pc != A->npcol || r != A->rank / A->npcol || c != A->rank % A->npcol ||
        pr1 != 1 || pc1 != A->P || r1 != 0 || c1 != A->rank)
        return DPT_FAIL(DPT_ERR_MPI, "dense: BLACS grids %d x %d and 1 x %d not set up for rank %d "
                        "(got %d x %d at (%d, %d), 1 x %d at %d)", A->nprow, A->npcol, A->P, A->rank,
                        pr, pc, r, c, pc1, c1);
    A->myrow = r, A->mycol = c;
    return DPT_OK;
}

/* descriptors, the zeroed block, the vector parts and the index maps */
static dpt_status alloc_blocks(dpt_dense *A)
{
    A->loc_rows = numroc_(&A->n, &A->nb, &A->myrow, &ZERO_I, &A->nprow);
    A->loc_cols = numroc_(&A->n, &A->nb, &A->mycol, &ZERO_I, &A->npcol);
    A->lld = A->loc_rows > 0 ? A->loc_rows : 1;
    int info = 0, info_vec = 0;
    descinit_(A->desc, &A->n, &A->n, &A->nb, &A->nb, &ZERO_I, &ZERO_I, &A->ctx, &A->lld, &info);
    descinit_(A->desc_vec, &A->n, &ONE_I, &A->nb, &A->nb, &ZERO_I, &ZERO_I, &A->ctx, &A->lld, &info_vec);
    if (info != 0 || info_vec != 0)
        return DPT_FAIL(DPT_ERR_ARG, "dense: descinit failed (info %d, %d) for n %d, nb %d", info, info_vec,
                        A->n, A->nb);
    A->a = calloc(block_len(A), sizeof(dpt_real));
    A->vec_x = malloc(sizeof(dpt_real) * 2 * (size_t)A->lld);
    A->grow = malloc(sizeof(int) * ((size_t)A->loc_rows + (size_t)A->loc_cols + 1));
    if (!A->a || !A->vec_x || !A->grow)
        return DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for a %d x %d local block", A->loc_rows,
                        A->loc_cols);
    A->vec_y = A->vec_x + A->lld;
    A->gcol = A->grow + A->loc_rows;
    for (int i = 0; i < A->loc_rows; i++) A->grow[i] = local_to_global(i, A->nb, A->myrow, A->nprow);
    for (int j = 0; j < A->loc_cols; j++) A->gcol[j] = local_to_global(j, A->nb, A->mycol, A->npcol);
    return DPT_OK;
}

dpt_status dpt_dense_create(dpt_dense *A, MPI_Comm comm, int n, int nb)
{
    memset(A, 0, sizeof *A);
    A->ctx = A->ctx_row = -1;
    if (n < 1 || nb < 0)
        return DPT_FAIL(DPT_ERR_ARG, "dense: need n >= 1 (%d) and nb >= 0 (%d)", n, nb);
    A->comm = comm;
    MPI_Comm_size(comm, &A->P);
    MPI_Comm_rank(comm, &A->rank);
    A->n = n, A->nb = nb > 0 ? nb : DPT_DENSE_DEFAULT_NB;
    grid_shape(A->P, &A->nprow, &A->npcol);
    dpt_status st = open_grids(A);
    if (st == DPT_OK) st = alloc_blocks(A);
    st = agree(A, st);
    if (st != DPT_OK) dpt_dense_destroy(A); /* every rank gets here: the grid exit is collective */
    return st;
}

void dpt_dense_destroy(dpt_dense *A)
{
    if (A->ctx >= 0) Cblacs_gridexit(A->ctx);
    if (A->ctx_row >= 0) Cblacs_gridexit(A->ctx_row);
    free(A->a), free(A->work_a), free(A->vec_x), free(A->grow);
    memset(A, 0, sizeof *A);
    A->ctx = A->ctx_row = -1;
}

size_t dpt_dense_local_bytes(const dpt_dense *A)
{
    return (size_t)A->lld * (size_t)A->loc_cols * sizeof(dpt_real);
}

/* ---------------------------------------------------------------- local updates */

void dpt_dense_set_scaled_identity(dpt_dense *A, double s)
{
    memset(A->a, 0, sizeof(dpt_real) * block_len(A));
    for (int j = 0; j < A->loc_cols; j++) {
        dpt_real *d = diag_entry(A, A->a, j);
        if (d) *d = (dpt_real)s;
    }
}

void dpt_dense_add_diag(dpt_dense *A, const dpt_real *diag)
{
    for (int j = 0; j < A->loc_cols; j++) {
        dpt_real *d = diag_entry(A, A->a, j);
        if (d) *d += diag[A->gcol[j]];
    }
}

void dpt_dense_set_column(dpt_dense *A, int j, const dpt_real *col)
{
    if (j < 0 || j >= A->n) return;
    int lj = global_to_local(j, A->nb, A->mycol, A->npcol);
    if (lj < 0) return;
    dpt_real *c = A->a + (size_t)A->lld * (size_t)lj;
    for (int i = 0; i < A->loc_rows; i++) c[i] = col[A->grow[i]];
}

/* A = beta A on this rank's block; beta = 0 clears (also NaN), as BLAS does */
static void scale_local(dpt_dense *A, double beta)
{
    const size_t len = block_len(A);
    if (beta == 0) {
        memset(A->a, 0, sizeof(dpt_real) * len);
    } else if (beta != 1) {
        for (size_t k = 0; k < len; k++) A->a[k] = (dpt_real)(beta * A->a[k]);
    }
}

/* ---------------------------------------------------------------- transposes */

/* A = beta A + alpha A^T, through work_a (p?tran cannot work in place).
 * Collective; work_a allocated. */
static void add_transpose(dpt_dense *A, double alpha, double beta)
{
    const dpt_real al = (dpt_real)alpha, be = (dpt_real)beta;
    memcpy(A->work_a, A->a, sizeof(dpt_real) * block_len(A));
    dense_ptran(&A->n, &A->n, &al, A->work_a, &ONE_I, &ONE_I, A->desc, &be, A->a, &ONE_I, &ONE_I, A->desc);
}

/* Makes A symmetric from its lower triangle (all p?syrk writes): with L the
 * strict lower part plus half the diagonal, A = L + L^T (halving and
 * doubling are exact). Collective; work_a allocated. */
static void mirror_lower(dpt_dense *A)
{
    for (int j = 0; j < A->loc_cols; j++) {
        dpt_real *c = A->a + (size_t)A->lld * (size_t)j;
        const int gj = A->gcol[j];
        for (int i = 0; i < A->loc_rows; i++) {
            if (A->grow[i] < gj) c[i] = 0;
            else if (A->grow[i] == gj) c[i] *= (dpt_real)0.5;
        }
    }
    add_transpose(A, 1, 1);
}

dpt_status dpt_dense_symmetrize(dpt_dense *A)
{
    dpt_status st = agree(A, ensure_work(A));
    if (st != DPT_OK) return st;
    add_transpose(A, 0.5, 0.5);
    return DPT_OK;
}

/* ---------------------------------------------------------------- Gauss-Newton assembly */

/* Moves the rows to the grid: B1 (n x P kb on the 1 x P grid, rank r's
 * column block of width kb = the widest rank's rows holds R_r^T, padded
 * with zero columns, which add nothing to B B^T) to B2 (the same matrix in
 * nb x nb blocks on A's grid), by p?gemr2d. Collective; B2 is
 * A->loc_rows x numroc(P kb) with leading dimension A->lld. */
static dpt_status rows_to_grid(dpt_dense *A, const dpt_real *rows, int rows_local, int kb, dpt_real *B1,
                               dpt_real *B2, int *desc2)
{
    const int n = A->n, K = kb * A->P;
    int desc1[9], info1 = 0, info2 = 0;
    if (rows_local > 0) memcpy(B1, rows, sizeof(dpt_real) * (size_t)n * (size_t)rows_local);
    memset(B1 + (size_t)n * (size_t)rows_local, 0, sizeof(dpt_real) * (size_t)n * (size_t)(kb - rows_local));
    descinit_(desc1, &n, &K, &n, &kb, &ZERO_I, &ZERO_I, &A->ctx_row, &n, &info1);
    descinit_(desc2, &n, &K, &A->nb, &A->nb, &ZERO_I, &ZERO_I, &A->ctx, &A->lld, &info2);
    if (info1 != 0 || info2 != 0) /* depends on n, kb, nb and P only: the same on every rank */
        return DPT_FAIL(DPT_ERR_ARG, "dense: descinit failed for the %d x %d rows (info %d, %d)", n, K,
                        info1, info2);
    dense_pgemr2d(&n, &K, B1, &ONE_I, &ONE_I, desc1, B2, &ONE_I, &ONE_I, desc2, &A->ctx);
    return DPT_OK;
}

dpt_status dpt_dense_syrk_rows(dpt_dense *A, const dpt_real *rows, int rows_local, double alpha,
                               double beta)
{
    int mine[2] = {rows_local, rows_local < 0 || (rows_local > 0 && !rows)}, all[2] = {0, 0};
    if (MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, A->comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "dense: all-reduce of the row counts failed");
    if (all[1] || (long)all[0] * A->P > INT_MAX)
        return DPT_FAIL(DPT_ERR_ARG, "dense: bad rows on some rank (here %d rows at %p; at most %d per rank)",
                        rows_local, (const void *)rows, INT_MAX / A->P);
    const int kb = all[0], K = kb * A->P;
    if (kb == 0) { /* no rank has rows: only the scaling */
        scale_local(A, beta);
        return DPT_OK;
    }
    const int loc_cols2 = numroc_(&K, &A->nb, &A->mycol, &ZERO_I, &A->npcol);
    dpt_real *B1 = malloc(sizeof(dpt_real) * (size_t)A->n * (size_t)kb);
    dpt_real *B2 = malloc(sizeof(dpt_real) * (size_t)A->lld * (size_t)(loc_cols2 > 0 ? loc_cols2 : 1));
    dpt_status st = ensure_work(A);
    if (st == DPT_OK && (!B1 || !B2))
        st = DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for %d rows of %d", kb, A->n);
    st = agree(A, st);
    if (st != DPT_OK) goto cleanup;
    int desc2[9];
    st = rows_to_grid(A, rows, rows_local, kb, B1, B2, desc2);
    if (st != DPT_OK) goto cleanup;
    const dpt_real al = (dpt_real)alpha, be = (dpt_real)beta;
    dense_psyrk("L", "N", &A->n, &K, &al, B2, &ONE_I, &ONE_I, desc2, &be, A->a, &ONE_I, &ONE_I, A->desc);
    mirror_lower(A);
cleanup:
    free(B1), free(B2);
    return st;
}

/* ---------------------------------------------------------------- vectors, gemv */

/* this rank's part of the distributed vector from the replicated v[n] */
static void vec_scatter(const dpt_dense *A, const dpt_real *v, dpt_real *part)
{
    if (A->mycol != 0) return; /* the vector lives on process column 0 */
    for (int i = 0; i < A->loc_rows; i++) part[i] = v[A->grow[i]];
}

/* the replicated v[n] from the parts: each entry has one owner, whose value
 * plus zeros from the other ranks is exact. Collective. */
static dpt_status vec_gather(const dpt_dense *A, const dpt_real *part, dpt_real *v)
{
    memset(v, 0, sizeof(dpt_real) * (size_t)A->n);
    if (A->mycol == 0)
        for (int i = 0; i < A->loc_rows; i++) v[A->grow[i]] = part[i];
    if (MPI_Allreduce(MPI_IN_PLACE, v, A->n, DPT_MPI_REAL, MPI_SUM, A->comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "dense: all-reduce of a %d-vector failed", A->n);
    return DPT_OK;
}

dpt_status dpt_dense_gemv(dpt_dense *A, const dpt_real *x, dpt_real *y)
{
    const dpt_real one = 1, zero = 0;
    vec_scatter(A, x, A->vec_x);
    dense_pgemv("N", &A->n, &A->n, &one, A->a, &ONE_I, &ONE_I, A->desc, A->vec_x, &ONE_I, &ONE_I,
                A->desc_vec, &ONE_I, &zero, A->vec_y, &ONE_I, &ONE_I, A->desc_vec, &ONE_I);
    return vec_gather(A, A->vec_y, y);
}

/* ---------------------------------------------------------------- damped Newton solve */

/* max |a_ij| and min a_ii over the whole matrix, and whether any entry is
 * not finite (then the others are meaningless). Collective. */
static dpt_status matrix_range(const dpt_dense *A, double *max_abs, double *min_diag, int *finite)
{
    double mine[3] = {0, -INFINITY, 0}, all[3]; /* max |a|, max -a_ii, any non-finite */
    for (int j = 0; j < A->loc_cols; j++) {
        const dpt_real *c = A->a + (size_t)A->lld * (size_t)j;
        for (int i = 0; i < A->loc_rows; i++) {
            if (!isfinite((double)c[i])) mine[2] = 1;
            else mine[0] = fmax(mine[0], fabs((double)c[i]));
            if (A->grow[i] == A->gcol[j]) mine[1] = fmax(mine[1], -(double)c[i]);
        }
    }
    if (MPI_Allreduce(mine, all, 3, MPI_DOUBLE, MPI_MAX, A->comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "dense: all-reduce of the matrix range failed");
    *max_abs = all[0], *min_diag = -all[1], *finite = all[2] == 0;
    return DPT_OK;
}

dpt_status dpt_dense_max_abs(dpt_dense *A, double *max_abs)
{
    double min_diag = 0;
    int finite = 1;
    dpt_status st = matrix_range(A, max_abs, &min_diag, &finite);
    if (st == DPT_OK && !finite) return DPT_FAIL(DPT_ERR_NUMERIC, "dense: the matrix has non-finite entries");
    return st;
}

/* work_a = Cholesky factor of A + alpha I (lower), *not_pd = the order of
 * the first non-positive leading minor, 0 if it is positive definite, the
 * same on every rank (reduced, not assumed). Collective. */
static dpt_status factor_shifted(dpt_dense *A, double alpha, int *not_pd)
{
    memcpy(A->work_a, A->a, sizeof(dpt_real) * block_len(A));
    for (int j = 0; j < A->loc_cols; j++) {
        dpt_real *d = diag_entry(A, A->work_a, j);
        if (d) *d += (dpt_real)alpha;
    }
    int info = 0;
    dense_ppotrf("L", &A->n, A->work_a, &ONE_I, &ONE_I, A->desc, &info, 1);
    int mine[2] = {info > 0 ? info : 0, info < 0 ? -info : 0}, all[2] = {0, 0};
    if (MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, A->comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "dense: all-reduce of the p?potrf status failed");
    if (all[1]) return DPT_FAIL(DPT_ERR_ARG, "dense: p?potrf rejected argument %d", all[1]);
    *not_pd = all[0];
    return DPT_OK;
}

/* d = -(L L^T)^-1 g with the factor in work_a (p?potrs); d replicated and
 * checked finite. Collective. */
static dpt_status solve_factored(dpt_dense *A, const dpt_real *g, dpt_real *d)
{
    vec_scatter(A, g, A->vec_x);
    if (A->mycol == 0)
        for (int i = 0; i < A->loc_rows; i++) A->vec_x[i] = -A->vec_x[i];
    int info = 0;
    dense_ppotrs("L", &A->n, &ONE_I, A->work_a, &ONE_I, &ONE_I, A->desc, A->vec_x, &ONE_I, &ONE_I,
                 A->desc_vec, &info, 1);
    dpt_status st = vec_gather(A, A->vec_x, d);
    if (st != DPT_OK) return st;
    if (info != 0) return DPT_FAIL(DPT_ERR_ARG, "dense: p?potrs rejected argument %d", -info);
    for (int i = 0; i < A->n; i++) /* d is the same everywhere: so is this verdict */
        if (!isfinite((double)d[i]))
            return DPT_FAIL(DPT_ERR_NUMERIC, "dense: the damped Newton step is not finite (d[%d])", i);
    return DPT_OK;
}

dpt_status dpt_dense_damped_solve(dpt_dense *A, const dpt_real *g, double alpha0, dpt_real *d,
                                  double *alpha_used)
{
    if (!(alpha0 >= 0) || !isfinite(alpha0))
        return DPT_FAIL(DPT_ERR_ARG, "dense: damping alpha0 must be finite and >= 0 (%g)", alpha0);
    dpt_status st = agree(A, ensure_work(A));
    double max_abs = 0, min_diag = 0;
    int finite = 1;
    if (st == DPT_OK) st = matrix_range(A, &max_abs, &min_diag, &finite);
    if (st != DPT_OK) return st;
    if (!finite) return DPT_FAIL(DPT_ERR_NUMERIC, "dense: the matrix has non-finite entries");
    /* N&W algorithm 3.3: a_ii + alpha > 0 is necessary for positive
     * definiteness, so the first retry jumps past -min a_ii; then x 10 */
    const double floor = fmax(DENSE_SHIFT_REL * max_abs, DENSE_SHIFT_TINY);
    double alpha = alpha0;
    for (int tries = 1;; tries++) {
        int not_pd = 0;
        st = factor_shifted(A, alpha, &not_pd);
        if (st != DPT_OK) return st;
        if (not_pd == 0) break;
        if (tries == DENSE_MAX_FACTORIZATIONS)
            return DPT_FAIL(DPT_ERR_NUMERIC, "dense: A + alpha I not positive definite for alpha up to %g "
                            "(%d Cholesky factorizations)", alpha, tries);
        alpha = tries == 1 ? fmax(fmax(10 * alpha0, floor), -min_diag + floor) : 10 * alpha;
    }
    if (alpha_used) *alpha_used = alpha;
    return solve_factored(A, g, d);
}

dpt_status dpt_dense_factor_apply(dpt_dense *A, const dpt_real *r, dpt_real *z)
{
    dpt_status st = solve_factored(A, r, z); /* z = -(L L^T)^-1 r */
    for (int i = 0; i < A->n; i++) z[i] = -z[i];
    return st;
}

/* ---------------------------------------------------------------- eigenvalues */

/* p?syevd on work_a with the eigenvectors in z, eigenvalues into wr[n];
 * *info its status. work and iwork as the routine asks (a query, never
 * below the documented minimum). Collective. */
static dpt_status syevd_on_copy(dpt_dense *A, dpt_real *z, dpt_real *wr, int *info)
{
    const int n = A->n, query = -1;
    dpt_real work_query = 0;
    int iwork_query = 0, lwork, liwork;
    memcpy(A->work_a, A->a, sizeof(dpt_real) * block_len(A));
    dense_psyevd("V", "L", &n, A->work_a, &ONE_I, &ONE_I, A->desc, wr, z, &ONE_I, &ONE_I, A->desc,
                 &work_query, &query, &iwork_query, &query, info, 1, 1);
    /* The documented LWORK minimum of p?syevd (what the query returns) is
     * short of what its last step, p?ormtr, checks for (given all of WORK
     * past the first 2n) when nb is large against the local blocks, e.g.
     * n = 37, nb = 64: p?ormtr then rejects LWORK and p?syevd ignores that.
     * So also the p?ormtr minimum (SIDE = 'L'), with a block of slack on
     * its local counts (they are taken from row 2 on). */
    const double nb = A->nb, trilwmin = 3.0 * n + fmax(nb * (A->loc_rows + 1), 3 * nb);
    const double lwmin = fmax(1 + 6.0 * n + 2.0 * A->loc_rows * A->loc_cols, trilwmin) + 2.0 * n;
    const double ormtr = 2.0 * n + fmax(nb * (nb - 1) / 2, (A->loc_rows + A->loc_cols + 2 * nb) * nb) + nb * nb;
    const double lw = fmax(ceil((double)work_query), fmax(lwmin, ormtr));
    if (lw > INT_MAX) return DPT_FAIL(DPT_ERR_ARG, "dense: p?syevd work space of %.0f reals too big", lw);
    lwork = (int)lw;
    liwork = iwork_query > 7 * n + 8 * A->npcol + 2 ? iwork_query : 7 * n + 8 * A->npcol + 2;
    dpt_real *work = malloc(sizeof(dpt_real) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    dpt_status st = agree(A, work && iwork ? DPT_OK
                                           : DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for p?syevd work"));
    if (st == DPT_OK)
        dense_psyevd("V", "L", &n, A->work_a, &ONE_I, &ONE_I, A->desc, wr, z, &ONE_I, &ONE_I, A->desc, work,
                     &lwork, iwork, &liwork, info, 1, 1);
    free(work), free(iwork);
    return st;
}

dpt_status dpt_dense_eigenvalues(dpt_dense *A, double *w)
{
    dpt_real *z = malloc(sizeof(dpt_real) * block_len(A)), *wr = malloc(sizeof(dpt_real) * (size_t)A->n);
    dpt_status st = ensure_work(A);
    if (st == DPT_OK && (!z || !wr))
        st = DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for the eigenvectors of a %d x %d matrix", A->n, A->n);
    st = agree(A, st);
    int info = 0;
    if (st == DPT_OK) st = syevd_on_copy(A, z, wr, &info);
    if (st != DPT_OK) goto cleanup;
    int mine[2] = {info > 0 ? info : 0, info < 0 ? -info : 0}, all[2] = {0, 0};
    if (MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, A->comm) != MPI_SUCCESS) {
        st = DPT_FAIL(DPT_ERR_MPI, "dense: all-reduce of the p?syevd status failed");
    } else if (all[1] || all[0]) {
        st = DPT_FAIL(all[1] ? DPT_ERR_ARG : DPT_ERR_NUMERIC, "dense: p?syevd failed (info %d)",
                      all[1] ? -all[1] : all[0]);
    } else if (MPI_Bcast(wr, A->n, DPT_MPI_REAL, 0, A->comm) != MPI_SUCCESS) { /* bit-identical everywhere */
        st = DPT_FAIL(DPT_ERR_MPI, "dense: broadcast of the eigenvalues failed");
    } else {
        for (int i = 0; i < A->n; i++) w[i] = (double)wr[i];
    }
cleanup:
    free(z), free(wr);
    return st;
}

/* ---------------------------------------------------------------- BFGS */

dpt_status dpt_dense_bfgs_update(dpt_dense *H, const dpt_real *s, const dpt_real *y, double rho)
{
    if (!(rho > 0) || !isfinite(rho))
        return DPT_FAIL(DPT_ERR_ARG, "dense: BFGS needs rho = 1 / y.s > 0 and finite (%g)", rho);
    dpt_real *h = malloc(sizeof(dpt_real) * (size_t)H->n);
    dpt_status st = agree(H, h ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "dense: out of memory for H y"));
    if (st == DPT_OK) st = dpt_dense_gemv(H, y, h);
    if (st != DPT_OK) goto cleanup;
    const double c = rho * rho * dpt_dot_acc(H->n, y, h) + rho; /* coefficient of s s^T */
    for (int j = 0; j < H->loc_cols; j++) {
        dpt_real *col = H->a + (size_t)H->lld * (size_t)j;
        const double sj = (double)s[H->gcol[j]], hj = (double)h[H->gcol[j]];
        for (int i = 0; i < H->loc_rows; i++) {
            const double si = (double)s[H->grow[i]], hi = (double)h[H->grow[i]];
            /* h_i s_j + s_i h_j and c (s_i s_j) round the same for (i, j) and
             * (j, i): H stays exactly symmetric */
            col[i] = (dpt_real)((double)col[i] - rho * (hi * sj + si * hj) + c * (si * sj));
        }
    }
cleanup:
    free(h);
    return st;
}
