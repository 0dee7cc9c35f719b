/* The ScaLAPACK dense symmetric matrix (src/solve/dense.c) against serial
 * references computed redundantly on every rank in double with plain loops
 * and LAPACK dsyev: on the first P ranks of the world for every P up to the
 * world size (grids 1 x 1, 2 x 1, 3 x 1, 2 x 2 at np 4), with n = 13,
 * nb = 4 and n = 37, nb = 5 (real block-cyclicity, n not a multiple of nb),
 * n = 37 with the default nb (everything on rank 0, empty blocks elsewhere)
 * and n = 150 with the default nb (three blocks dealt cyclically):
 *   - layout: the local blocks tile the matrix exactly once;
 *   - scaled identity and add_diag, set_column (exact copies);
 *   - syrk_rows: different row counts per rank, one rank with none, two
 *     chunks (beta = 0 over old contents, then beta = 1), a call in which
 *     no rank has rows (only the scaling); both triangles, exactly symmetric;
 *   - symmetrize = (M + M^T) / 2; gemv (also in place), y bit-identical
 *     on every rank;
 *   - damped_solve on an SPD matrix (alpha_used == alpha0, small backward
 *     error, A unchanged) and an indefinite one (alpha raised along the
 *     documented schedule to the first value above -lambda_min, where
 *     (A + alpha I) d = -g holds); bad alpha0 and NaN entries fail;
 *   - eigenvalues against dsyev;
 *   - bfgs_update against (I - rho s y^T) H (I - rho y s^T) + rho s s^T
 *     from dense serial products, the secant equation H y = s, rho <= 0
 *     rejected.
 * Errors are relative to the reference's largest entry. Run under mpirun
 * with 1, 2, 3 and 4 ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/solve/dense.h"
#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define TOL 1e-10
#else
#define TOL 1e-4
#endif

void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

static int world_rank, world_size;

/* the worst relative error seen per operation, printed at the end */
enum { E_SYRK, E_SYM, E_GEMV, E_SOLVE_SPD, E_SOLVE_INDEF, E_EIG, E_BFGS, E_SECANT, E_COUNT };
static const char *const error_names[E_COUNT] = {"syrk_rows", "symmetrize", "gemv", "damped_solve SPD",
                                                 "damped_solve indefinite", "eigenvalues", "bfgs_update",
                                                 "secant H y = s"};
static double worst[E_COUNT];

static const struct { int n, nb; } shapes[] = {{13, 4}, {37, 5}, {37, 0}, {150, 0}};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static MPI_Comm first_ranks(int P)
{
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank < P ? 0 : MPI_UNDEFINED, world_rank, &comm);
    return comm;
}

static double *dalloc(size_t len)
{
    double *p = calloc(len ? len : 1, sizeof(double));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static dpt_real *ralloc(size_t len)
{
    dpt_real *p = calloc(len ? len : 1, sizeof(dpt_real));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

/* uniform in [-1, 1], rounded to dpt_real so the reference sees the same input */
static double rnd(dpt_rng *rng) { return (double)(dpt_real)(2 * dpt_rng_uniform(rng) - 1); }

/* max |a - b| / max |b| over len entries (INFINITY for a NaN) */
static double rel_err(const double *a, const double *b, size_t len)
{
    double diff = 0, scale = 0;
    for (size_t k = 0; k < len; k++) {
        double e = fabs(a[k] - b[k]);
        diff = isnan(e) ? INFINITY : fmax(diff, e);
        scale = fmax(scale, fabs(b[k]));
    }
    return diff / (scale > 0 ? scale : 1);
}

static void note(int which, double err, int *ok)
{
    worst[which] = fmax(worst[which], err);
    *ok &= err < TOL;
}

/* the whole matrix, column-major n x n in double, on every rank */
static void gather(const dpt_dense *A, double *M)
{
    const size_t n = (size_t)A->n;
    memset(M, 0, sizeof(double) * n * n);
    for (int j = 0; j < A->loc_cols; j++)
        for (int i = 0; i < A->loc_rows; i++)
            M[(size_t)A->grow[i] + n * (size_t)A->gcol[j]] = (double)A->a[i + (size_t)A->lld * j];
    MPI_Allreduce(MPI_IN_PLACE, M, (int)(n * n), MPI_DOUBLE, MPI_SUM, A->comm);
}

/* A = M through dpt_dense_set_column */
static void load(dpt_dense *A, const double *M)
{
    const int n = A->n;
    dpt_real *col = ralloc((size_t)n);
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) col[i] = (dpt_real)M[i + (size_t)n * j];
        dpt_dense_set_column(A, j, col);
    }
    free(col);
}

/* a random symmetric n x n matrix (entries in [-1, 1]) plus shift I */
static void random_symmetric(dpt_rng *rng, int n, double shift, double *M)
{
    for (int j = 0; j < n; j++)
        for (int i = j; i < n; i++) M[i + (size_t)n * j] = M[j + (size_t)n * i] = rnd(rng);
    for (int i = 0; i < n; i++) M[i + (size_t)n * i] = (double)(dpt_real)(M[i + (size_t)n * i] + shift);
}

static int exactly_symmetric(const double *M, int n)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < j; i++)
            if (M[i + (size_t)n * j] != M[j + (size_t)n * i]) return 0;
    return 1;
}

/* y = M x, all double */
static void matvec(const double *M, int n, const double *x, double *y)
{
    for (int i = 0; i < n; i++) {
        double acc = 0;
        for (int j = 0; j < n; j++) acc += M[i + (size_t)n * j] * x[j];
        y[i] = acc;
    }
}

/* eigenvalues of the symmetric M (ascending) by LAPACK dsyev */
static void serial_eigenvalues(const double *M, int n, double *w)
{
    double *a = dalloc((size_t)n * n), wq = 0;
    memcpy(a, M, sizeof(double) * (size_t)n * n);
    int info = 0, lwork = -1;
    dsyev_("N", "L", &n, a, &n, w, &wq, &lwork, &info, 1, 1);
    lwork = (int)wq;
    double *work = dalloc((size_t)lwork);
    dsyev_("N", "L", &n, a, &n, w, work, &lwork, &info, 1, 1);
    CU_ASSERT_FATAL(info == 0);
    free(a), free(work);
}

/* 1 if v[n] is bit-identical on every rank of comm */
static int same_on_ranks(MPI_Comm comm, const dpt_real *v, int n)
{
    dpt_real *lo = ralloc((size_t)n), *hi = ralloc((size_t)n);
    MPI_Allreduce(v, lo, n, DPT_MPI_REAL, MPI_MIN, comm);
    MPI_Allreduce(v, hi, n, DPT_MPI_REAL, MPI_MAX, comm);
    int same = memcmp(lo, hi, sizeof(dpt_real) * (size_t)n) == 0;
    free(lo), free(hi);
    return same;
}

/* ---------------------------------------------------------------- the checks */

/* the blocks tile the matrix once; identity, add_diag and set_column are exact */
static int check_layout_and_local(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    int ok = dpt_dense_local_bytes(A) == (size_t)A->lld * A->loc_cols * sizeof(dpt_real);
    long mine = (long)A->loc_rows * A->loc_cols, total = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_LONG, MPI_SUM, A->comm);
    ok &= total == (long)n * n && A->nprow * A->npcol == A->P && A->nprow >= A->npcol;
    double *M = dalloc((size_t)n * n), *R = dalloc((size_t)n * n);
    dpt_real *diag = ralloc((size_t)n);
    for (int i = 0; i < n; i++) diag[i] = (dpt_real)rnd(rng);
    dpt_dense_set_scaled_identity(A, 2.5);
    dpt_dense_add_diag(A, diag);
    gather(A, M);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            ok &= M[i + (size_t)n * j] == (i == j ? (double)((dpt_real)2.5 + diag[i]) : 0.0);
    for (size_t k = 0; k < (size_t)n * n; k++) R[k] = rnd(rng); /* not symmetric */
    load(A, R);
    gather(A, M);
    ok &= memcmp(M, R, sizeof(double) * (size_t)n * n) == 0;
    free(M), free(R), free(diag);
    return ok;
}

/* rows of a chunk: rank r gets count(r) rows, the last rank (P > 1) none */
static int chunk_rows(int r, int P, int chunk) { return (P > 1 && r == P - 1) ? 0 : (3 * r + 2 + chunk * 5) % 7 + 1; }

/* A = alpha R^T R + beta A for one chunk, the reference G updated alike */
static int syrk_chunk(dpt_dense *A, dpt_rng *rng, int chunk, double alpha, double beta, double *G)
{
    const int n = A->n, P = A->P;
    int total = 0, first = 0;
    for (int r = 0; r < P; r++) total += chunk_rows(r, P, chunk);
    for (int r = 0; r < A->rank; r++) first += chunk_rows(r, P, chunk);
    dpt_real *rows = ralloc((size_t)total * n); /* every rank draws all rows, passes its own */
    for (size_t k = 0; k < (size_t)total * n; k++) rows[k] = (dpt_real)rnd(rng);
    for (size_t k = 0; k < (size_t)n * n; k++) G[k] *= beta;
    for (int t = 0; t < total; t++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
                G[i + (size_t)n * j] += alpha * (double)rows[(size_t)t * n + i] * (double)rows[(size_t)t * n + j];
    int mine = chunk_rows(A->rank, P, chunk);
    dpt_status st = dpt_dense_syrk_rows(A, mine ? rows + (size_t)first * n : NULL, mine, alpha, beta);
    free(rows);
    return st == DPT_OK;
}

static int check_syrk(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    double *G = dalloc((size_t)n * n), *M = dalloc((size_t)n * n);
    dpt_dense_set_scaled_identity(A, 5); /* beta = 0 must drop it */
    int ok = syrk_chunk(A, rng, 0, 0.7, 0, G) && syrk_chunk(A, rng, 1, 1.3, 1, G);
    gather(A, M);
    note(E_SYRK, rel_err(M, G, (size_t)n * n), &ok);
    ok &= exactly_symmetric(M, n);
    ok &= dpt_dense_syrk_rows(A, NULL, 0, 1, 0.5) == DPT_OK; /* no rows anywhere: A = 0.5 A */
    for (size_t k = 0; k < (size_t)n * n; k++) G[k] *= 0.5;
    gather(A, M);
    note(E_SYRK, rel_err(M, G, (size_t)n * n), &ok);
    int bad = A->rank == 0 ? -1 : 0; /* one bad rank: every rank fails, none hangs */
    ok &= dpt_dense_syrk_rows(A, NULL, bad, 1, 1) == DPT_ERR_ARG;
    free(G), free(M);
    return ok;
}

static int check_symmetrize_gemv(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    double *R = dalloc((size_t)n * n), *S = dalloc((size_t)n * n), *M = dalloc((size_t)n * n);
    double *x = dalloc((size_t)n), *y = dalloc((size_t)n), *yd = dalloc((size_t)n);
    dpt_real *xr = ralloc((size_t)n), *yr = ralloc((size_t)n);
    for (size_t k = 0; k < (size_t)n * n; k++) R[k] = rnd(rng);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) S[i + (size_t)n * j] = 0.5 * (R[i + (size_t)n * j] + R[j + (size_t)n * i]);
    load(A, R);
    int ok = dpt_dense_symmetrize(A) == DPT_OK;
    gather(A, M);
    note(E_SYM, rel_err(M, S, (size_t)n * n), &ok);
    ok &= exactly_symmetric(M, n);
    for (int i = 0; i < n; i++) xr[i] = (dpt_real)(x[i] = rnd(rng));
    matvec(M, n, x, y);
    ok &= dpt_dense_gemv(A, xr, yr) == DPT_OK;
    for (int i = 0; i < n; i++) yd[i] = (double)yr[i];
    note(E_GEMV, rel_err(yd, y, (size_t)n), &ok);
    ok &= same_on_ranks(A->comm, yr, n);
    ok &= dpt_dense_gemv(A, xr, xr) == DPT_OK && memcmp(xr, yr, sizeof(dpt_real) * (size_t)n) == 0;
    free(R), free(S), free(M), free(x), free(y), free(yd), free(xr), free(yr);
    return ok;
}

/* normwise backward error of (M + alpha I) d = -g */
static double backward_error(const double *M, int n, double alpha, const dpt_real *d, const double *g)
{
    double res = 0, norm_m = 0, norm_d = 0, norm_g = 0;
    for (int i = 0; i < n; i++) {
        double r = g[i] + alpha * (double)d[i], row = fabs(alpha);
        for (int j = 0; j < n; j++) r += M[i + (size_t)n * j] * (double)d[j], row += fabs(M[i + (size_t)n * j]);
        res = fmax(res, fabs(r)), norm_m = fmax(norm_m, row);
        norm_d = fmax(norm_d, fabs((double)d[i])), norm_g = fmax(norm_g, fabs(g[i]));
    }
    return res / (norm_m * norm_d + norm_g);
}

/* The alpha the documented schedule succeeds with, in exact arithmetic:
 * alpha0 if it exceeds -lambda_min, else the first of
 * max(10 alpha0, floor, -min a_ii + floor) x 10^k that does. */
static double expected_alpha(const double *M, int n, double alpha0, double lambda_min)
{
    if (alpha0 > -lambda_min) return alpha0;
    double max_abs = 0, min_diag = INFINITY;
    for (size_t k = 0; k < (size_t)n * n; k++) max_abs = fmax(max_abs, fabs(M[k]));
    for (int i = 0; i < n; i++) min_diag = fmin(min_diag, M[i + (size_t)n * i]);
    double floor = fmax(1e-8 * max_abs, 1e-30);
    double alpha = fmax(fmax(10 * alpha0, floor), -min_diag + floor);
    while (alpha <= -lambda_min) alpha *= 10;
    return alpha;
}

/* one damped solve on M: d, alpha against the schedule, the backward error */
static int solve_case(dpt_dense *A, dpt_rng *rng, const double *M, double alpha0, int which)
{
    const int n = A->n;
    double *g = dalloc((size_t)n), *w = dalloc((size_t)n), *after = dalloc((size_t)n * n), alpha = -1;
    dpt_real *gr = ralloc((size_t)n), *d = ralloc((size_t)n);
    for (int i = 0; i < n; i++) gr[i] = (dpt_real)(g[i] = rnd(rng));
    serial_eigenvalues(M, n, w);
    load(A, M);
    int ok = dpt_dense_damped_solve(A, gr, alpha0, d, &alpha) == DPT_OK;
    double want = expected_alpha(M, n, alpha0, w[0]);
    /* exactly the schedule's value, unless -lambda_min is within rounding of a step */
    ok &= alpha == want || fabs(want / 10 + w[0]) < 1e-3 * fabs(w[0]) || fabs(want + w[0]) < 1e-3 * fabs(w[0]);
    ok &= alpha + w[0] > 0 && (which == E_SOLVE_SPD ? alpha == alpha0 : alpha > alpha0);
    note(which, backward_error(M, n, alpha, d, g), &ok);
    ok &= same_on_ranks(A->comm, d, n);
    gather(A, after);
    ok &= memcmp(after, M, sizeof(double) * (size_t)n * n) == 0; /* A unchanged */
    if (!ok && A->rank == 0)
        printf("\n    solve n %d: alpha %g (want %g, lambda_min %g)", n, alpha, want, w[0]);
    free(g), free(w), free(after), free(gr), free(d);
    return ok;
}

static int check_damped_solve(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    double *M = dalloc((size_t)n * n);
    dpt_real *g = ralloc((size_t)n), *d = ralloc((size_t)n);
    random_symmetric(rng, n, n, M); /* diagonally dominant: SPD */
    int ok = solve_case(A, rng, M, 0, E_SOLVE_SPD) && solve_case(A, rng, M, 0.3, E_SOLVE_SPD);
    random_symmetric(rng, n, -1, M); /* eigenvalues of both signs */
    ok &= solve_case(A, rng, M, 0, E_SOLVE_INDEF) && solve_case(A, rng, M, 1e-3, E_SOLVE_INDEF);
    ok &= dpt_dense_damped_solve(A, g, -1, d, NULL) == DPT_ERR_ARG;
    g[n / 2] = (dpt_real)NAN; /* a NaN entry in the last column */
    dpt_dense_set_column(A, n - 1, g);
    ok &= dpt_dense_damped_solve(A, g, 0, d, NULL) == DPT_ERR_NUMERIC;
    free(M), free(g), free(d);
    return ok;
}

static int check_eigenvalues(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    double *M = dalloc((size_t)n * n), *after = dalloc((size_t)n * n), *w = dalloc((size_t)n);
    double *w_ref = dalloc((size_t)n);
    random_symmetric(rng, n, 0.25, M);
    load(A, M);
    int ok = dpt_dense_eigenvalues(A, w) == DPT_OK;
    serial_eigenvalues(M, n, w_ref);
    note(E_EIG, rel_err(w, w_ref, (size_t)n), &ok);
    gather(A, after);
    ok &= memcmp(after, M, sizeof(double) * (size_t)n * n) == 0;
    free(M), free(after), free(w), free(w_ref);
    return ok;
}

/* H = (I - rho s y^T) H (I - rho y s^T) + rho s s^T, as dense products */
static void bfgs_reference(double *H, int n, const double *s, const double *y, double rho)
{
    double *V = dalloc((size_t)n * n), *T = dalloc((size_t)n * n); /* V = I - rho y s^T */
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) V[i + (size_t)n * j] = (i == j) - rho * y[i] * s[j];
    for (int j = 0; j < n; j++) /* T = H V */
        for (int i = 0; i < n; i++) {
            double acc = 0;
            for (int k = 0; k < n; k++) acc += H[i + (size_t)n * k] * V[k + (size_t)n * j];
            T[i + (size_t)n * j] = acc;
        }
    for (int j = 0; j < n; j++) /* H = V^T T + rho s s^T */
        for (int i = 0; i < n; i++) {
            double acc = rho * s[i] * s[j];
            for (int k = 0; k < n; k++) acc += V[k + (size_t)n * i] * T[k + (size_t)n * j];
            H[i + (size_t)n * j] = acc;
        }
    free(V), free(T);
}

/* two updates from H0 = 0.8 I: the matrix, the secant equation, symmetry */
static int check_bfgs(dpt_dense *A, dpt_rng *rng)
{
    const int n = A->n;
    double *H = dalloc((size_t)n * n), *M = dalloc((size_t)n * n), *s = dalloc((size_t)n);
    double *y = dalloc((size_t)n), *hy = dalloc((size_t)n);
    dpt_real *sr = ralloc((size_t)n), *yr = ralloc((size_t)n), *hyr = ralloc((size_t)n);
    dpt_dense_set_scaled_identity(A, 0.8);
    for (int i = 0; i < n; i++) H[i + (size_t)n * i] = (double)(dpt_real)0.8;
    int ok = 1;
    for (int update = 0; update < 2; update++) {
        for (int i = 0; i < n; i++) { /* y = D s + noise, D in [1, 3]: s.y > 0 */
            sr[i] = (dpt_real)(s[i] = rnd(rng));
            yr[i] = (dpt_real)(y[i] = (double)(dpt_real)((2 + rnd(rng)) * s[i] + 0.1 * rnd(rng)));
        }
        double sy = 0;
        for (int i = 0; i < n; i++) sy += s[i] * y[i];
        ok &= sy > 0 && dpt_dense_bfgs_update(A, sr, yr, 1 / sy) == DPT_OK;
        bfgs_reference(H, n, s, y, 1 / sy);
        gather(A, M);
        note(E_BFGS, rel_err(M, H, (size_t)n * n), &ok);
        ok &= exactly_symmetric(M, n);
        ok &= dpt_dense_gemv(A, yr, hyr) == DPT_OK;
        for (int i = 0; i < n; i++) hy[i] = (double)hyr[i];
        note(E_SECANT, rel_err(hy, s, (size_t)n), &ok);
    }
    ok &= dpt_dense_bfgs_update(A, sr, yr, -1) == DPT_ERR_ARG;
    gather(A, H); /* unchanged by the rejected update */
    ok &= memcmp(H, M, sizeof(double) * (size_t)n * n) == 0;
    free(H), free(M), free(s), free(y), free(hy), free(sr), free(yr), free(hyr);
    return ok;
}

/* ---------------------------------------------------------------- drivers */

typedef int (*dense_check)(dpt_dense *, dpt_rng *);

/* Runs `check` on the first P ranks for every shape and P; asserts on
 * every rank of the world. */
static void run_check(const char *what, dense_check check)
{
    for (int P = 1; P <= world_size; P++) {
        MPI_Comm comm = first_ranks(P);
        for (int s = 0; s < N_SHAPES; s++) {
            int ok = 1;
            if (comm != MPI_COMM_NULL) {
                dpt_dense A;
                dpt_status st = dpt_dense_create(&A, comm, shapes[s].n, shapes[s].nb);
                ok = st == DPT_OK;
                if (ok) {
                    dpt_rng rng;
                    dpt_rng_init(&rng, 1000 + 31 * (uint64_t)s, DPT_STREAM_TEST, 0, 0); /* same on all ranks */
                    ok = check(&A, &rng);
                    dpt_dense_destroy(&A);
                }
            }
            ok = fixture_all_ranks(ok);
            if (!ok && world_rank == 0)
                printf("\n  %s FAILED: P %d, n %d, nb %d", what, P, shapes[s].n, shapes[s].nb);
            CU_ASSERT(ok);
        }
        if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    }
}

static void test_layout(void) { run_check("layout", check_layout_and_local); }
static void test_syrk(void) { run_check("syrk_rows", check_syrk); }
static void test_symmetrize_gemv(void) { run_check("symmetrize/gemv", check_symmetrize_gemv); }
static void test_damped_solve(void) { run_check("damped_solve", check_damped_solve); }
static void test_eigenvalues(void) { run_check("eigenvalues", check_eigenvalues); }
static void test_bfgs(void) { run_check("bfgs_update", check_bfgs); }

/* grid shapes and bad arguments to create */
static void test_create(void)
{
    dpt_dense A;
    int ok = dpt_dense_create(&A, MPI_COMM_WORLD, 0, 4) == DPT_ERR_ARG;
    ok &= dpt_dense_create(&A, MPI_COMM_WORLD, 5, -1) == DPT_ERR_ARG;
    ok &= dpt_dense_create(&A, MPI_COMM_WORLD, 5, 0) == DPT_OK;
    const int want_rows[] = {0, 1, 2, 3, 2}, want_cols[] = {0, 1, 1, 1, 2};
    if (ok && world_size <= 4) ok &= A.nprow == want_rows[world_size] && A.npcol == want_cols[world_size];
    ok &= A.nb == DPT_DENSE_DEFAULT_NB && A.myrow == world_rank / A.npcol && A.mycol == world_rank % A.npcol;
    dpt_dense_destroy(&A);
    CU_ASSERT(fixture_all_ranks(ok));
}

static void test_report(void)
{
    if (world_rank != 0) return;
    printf("\n  worst relative errors (tolerance %g):", TOL);
    for (int k = 0; k < E_COUNT; k++) printf("\n    %-24s %.3g", error_names[k], worst[k]);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("dense", NULL, NULL);
    CU_add_test(suite, "create: grid shape, bad arguments", test_create);
    CU_add_test(suite, "layout, identity, add_diag, set_column", test_layout);
    CU_add_test(suite, "syrk_rows = sum of R_r^T R_r in chunks", test_syrk);
    CU_add_test(suite, "symmetrize and gemv", test_symmetrize_gemv);
    CU_add_test(suite, "damped_solve: SPD and indefinite", test_damped_solve);
    CU_add_test(suite, "eigenvalues = dsyev", test_eigenvalues);
    CU_add_test(suite, "bfgs_update = N&W 6.17, secant equation", test_bfgs);
    CU_add_test(suite, "report", test_report);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
