/* Lanczos with full reorthogonalization for the extreme eigenvalues of a
 * symmetric operator given by products (dpt/diag.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/diag.h"
#include "dpt/rng.h"

/* LAPACK (OpenBLAS exports it): eigenvalues and vectors of a symmetric
 * tridiagonal matrix. T is at most a few hundred wide: always in double. */
void dstev_(const char *jobz, const int *n, double *d, double *e, double *z, const int *ldz,
            double *work, int *info);

/* The start vector's own stream id ("LANC"), apart from dpt/rng.h's. */
#define LANCZOS_STREAM 0x4c414e43u

void dpt_lanczos_params_init(dpt_lanczos_params *p)
{
    p->steps = 20;
    p->seed = 1;
    p->breakdown = 100 * DPT_REAL_EPS; /* beta below rounding level: an invariant subspace */
}

/* BLAS-1 on vectors of n <= INT_MAX (dpt_lanczos_extremes checks) */
static double dot(const dpt_real *x, const dpt_real *y, size_t n)
{
    return dpt_dot_acc((int)n, x, y); /* accumulated in double */
}

/* y -= a x */
static void sub_scaled(dpt_real *y, double a, const dpt_real *x, size_t n)
{
    dpt_axpy((int)n, (dpt_real)-a, x, 1, y, 1);
}

static void scale(dpt_real *x, double a, size_t n)
{
    dpt_scal((int)n, (dpt_real)a, x, 1);
}

/* w -= V_j (V_j' w) with V_j the first j rows of V[.][n]: classical
 * Gram-Schmidt as two matrix-vector products (BLAS-2, one pass over V
 * each); run twice it is as accurate as modified Gram-Schmidt ("twice is
 * enough": Giraud, Langou, Rozloznik 2005). */
static void orthogonalize(dpt_real *w, const dpt_real *V, int j, size_t n, dpt_real *coef)
{
    dpt_gemv(CblasRowMajor, CblasNoTrans, j, (int)n, 1, V, (int)n, w, 1, 0, coef, 1);
    dpt_gemv(CblasRowMajor, CblasTrans, j, (int)n, -1, V, (int)n, coef, 1, 1, w, 1);
}

static int all_finite(const dpt_real *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* A unit random start vector, identical on every rank (same seed). */
static void start_vector(dpt_real *v, size_t n, uint64_t seed)
{
    dpt_rng rng;
    dpt_rng_init(&rng, seed, LANCZOS_STREAM, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = (dpt_real)dpt_rng_normal(&rng);
    scale(v, 1 / sqrt(dot(v, v, n)), n);
}

/* The Lanczos recurrence H V_m = V_m T_m + beta_m v_{m+1} e_m' (Golub & Van
 * Loan eq. 10.1.3). alpha[m], beta[m] (beta[j] couples v_j and v_{j+1};
 * beta[m-1] is the residual coupling). Returns the steps taken in *m. */
static dpt_status recurrence(dpt_hv_fn hv, void *user, size_t n, const dpt_lanczos_params *p,
                             dpt_real *V, dpt_real *w, dpt_real *coef, double *alpha, double *beta, int *m)
{
    int k = p->steps;
    double tnorm = 0;
    *m = 0;
    for (int j = 0; j < k; j++) {
        dpt_real *v = V + (size_t)j * n;
        dpt_status st = hv(user, v, w);
        if (st != DPT_OK) return st;
        if (!all_finite(w, n))
            return DPT_FAIL(DPT_ERR_NUMERIC, "Lanczos: the Hessian-vector product %d is not finite", j + 1);
        alpha[j] = dot(w, v, n);
        sub_scaled(w, alpha[j], v, n);
        if (j > 0) sub_scaled(w, beta[j - 1], V + (size_t)(j - 1) * n, n);
        /* full reorthogonalization, twice ("twice is enough": Parlett),
         * keeps the Ritz values free of spurious copies */
        for (int pass = 0; pass < 2; pass++) orthogonalize(w, V, j + 1, n, coef);
        beta[j] = sqrt(dot(w, w, n));
        *m = j + 1;
        tnorm = fmax(tnorm, fabs(alpha[j]) + beta[j] + (j > 0 ? beta[j - 1] : 0));
        /* an invariant subspace (exact eigenvalues), or no room for more vectors */
        if (beta[j] <= p->breakdown * tnorm || (size_t)(j + 1) >= n) break;
        if (j + 1 < k) {
            memcpy(V + (size_t)(j + 1) * n, w, sizeof(dpt_real) * n);
            scale(V + (size_t)(j + 1) * n, 1 / beta[j], n);
        }
    }
    return DPT_OK;
}

/* Eigen-decomposition of T_m: d[m] ascending, z[m][m] (column i is the
 * eigenvector of d[i]). */
static dpt_status tridiagonal_eigen(const double *alpha, const double *beta, int m, double *d, double *z)
{
    double *e = malloc(sizeof(double) * (size_t)(m > 1 ? m - 1 : 1));
    double *work = malloc(sizeof(double) * (size_t)(m > 1 ? 2 * m - 2 : 1));
    if (!e || !work) {
        free(e), free(work);
        return DPT_FAIL(DPT_ERR_NOMEM, "Lanczos: out of memory for T");
    }
    memcpy(d, alpha, sizeof(double) * (size_t)m);
    for (int j = 0; j + 1 < m; j++) e[j] = beta[j];
    int info = 0;
    dstev_("V", &m, d, e, z, &m, work, &info);
    free(e), free(work);
    return info == 0 ? DPT_OK : DPT_FAIL(DPT_ERR_NUMERIC, "Lanczos: dstev failed (info %d)", info);
}

/* The unit Ritz vector y = V_m s of T's first eigenvector, and y'Hy. */
static dpt_status ritz_min(dpt_hv_fn hv, void *user, size_t n, const dpt_real *V, const double *s, int m,
                           dpt_real *y, dpt_real *w, double *rayleigh)
{
    memset(y, 0, sizeof(dpt_real) * n);
    for (int j = 0; j < m; j++) sub_scaled(y, -s[j], V + (size_t)j * n, n);
    scale(y, 1 / sqrt(dot(y, y, n)), n);
    dpt_status st = hv(user, y, w);
    if (st == DPT_OK) *rayleigh = dot(y, w, n);
    return st;
}

dpt_status dpt_lanczos_extremes(dpt_hv_fn hv, void *user, size_t n, const dpt_lanczos_params *p,
                                dpt_lanczos_result *out, dpt_real *min_vector)
{
    memset(out, 0, sizeof *out);
    if (!hv || n == 0 || n > INT_MAX || !p || p->steps < 1 || !(p->breakdown >= 0))
        return DPT_FAIL(DPT_ERR_ARG, "Lanczos: needs a product, 1 <= n <= INT_MAX (%zu) and steps >= 1", n);
    int k = (size_t)p->steps < n ? p->steps : (int)n, m = 0;
    dpt_lanczos_params run = *p;
    run.steps = k;
    dpt_real *V = malloc(sizeof(dpt_real) * n * (size_t)k);
    dpt_real *w = malloc(sizeof(dpt_real) * n);
    double *alpha = malloc(sizeof(double) * (size_t)k), *beta = malloc(sizeof(double) * (size_t)k);
    double *d = malloc(sizeof(double) * (size_t)k), *z = malloc(sizeof(double) * (size_t)k * k);
    dpt_real *coef = malloc(sizeof(dpt_real) * (size_t)k);
    dpt_status st = DPT_OK;
    if (!V || !w || !alpha || !beta || !d || !z || !coef) {
        st = DPT_FAIL(DPT_ERR_NOMEM, "Lanczos: out of memory for %d vectors of %zu", k, n);
        goto cleanup;
    }
    start_vector(V, n, p->seed);
    st = recurrence(hv, user, n, &run, V, w, coef, alpha, beta, &m);
    if (st == DPT_OK) st = tridiagonal_eigen(alpha, beta, m, d, z);
    if (st != DPT_OK) goto cleanup;
    out->steps = m;
    out->lambda_min = d[0];
    out->lambda_max = d[m - 1];
    /* |H y_i - theta_i y_i| = beta_m |s_i(m)| (Golub & Van Loan eq. 10.1.8) */
    out->residual_min = fabs(beta[m - 1] * z[(size_t)0 * m + (m - 1)]);
    out->residual_max = fabs(beta[m - 1] * z[(size_t)(m - 1) * m + (m - 1)]);
    if (min_vector) st = ritz_min(hv, user, n, V, z, m, min_vector, w, &out->rayleigh_min);
cleanup:
    free(V), free(w), free(alpha), free(beta), free(d), free(z), free(coef);
    return st;
}
