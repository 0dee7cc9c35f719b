/* Weight initialization: fixed values, scaled uniform and normal draws
 * (Glorot & Bengio 2010, He et al. 2015, LeCun et al. 1998), random
 * orthogonal matrices (Saxe et al. 2014) and sparse initialization
 * (Martens 2010). Every draw comes from the caller's rng, so a layer's
 * weights are a pure function of (seed, stream, substream). */
#include "dpt/layers.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* LAPACK (Fortran symbols, exported by OpenBLAS): QR factorization and the
 * explicit Q of its Householder reflectors. Column-major storage. */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
             const float *tau, float *work, const int *lwork, int *info);
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
             const double *tau, double *work, const int *lwork, int *info);

#ifdef DPT_DOUBLE
#define lapack_geqrf dgeqrf_
#define lapack_orgqr dorgqr_
#else
#define lapack_geqrf sgeqrf_
#define lapack_orgqr sorgqr_
#endif

static const char *const init_names[DPT_INIT_COUNT_] = {
    [DPT_INIT_AUTO] = "auto",
    [DPT_INIT_ZEROS] = "zeros",
    [DPT_INIT_CONSTANT] = "constant",
    [DPT_INIT_UNIFORM] = "uniform",
    [DPT_INIT_NORMAL] = "normal",
    [DPT_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [DPT_INIT_GLOROT_NORMAL] = "glorot_normal",
    [DPT_INIT_HE_UNIFORM] = "he_uniform",
    [DPT_INIT_HE_NORMAL] = "he_normal",
    [DPT_INIT_LECUN_NORMAL] = "lecun_normal",
    [DPT_INIT_ORTHOGONAL] = "orthogonal",
    [DPT_INIT_SPARSE] = "sparse",
};

const char *dpt_init_name(dpt_init_kind kind)
{
    if ((unsigned)kind >= DPT_INIT_COUNT_ || !init_names[kind]) return "?";
    return init_names[kind];
}

/* ---------------------------------------------------------------- scaled random draws */

/* The uniform limit or normal standard deviation of the scaled kinds, from
 * the formulas in layers.h; *uniform tells which distribution. */
static dpt_status random_scale(double *scale, int *uniform, const dpt_init_spec *init,
                               int fan_in, int fan_out)
{
    dpt_init_kind kind = init->kind;
    int glorot = kind == DPT_INIT_GLOROT_UNIFORM || kind == DPT_INIT_GLOROT_NORMAL;
    int by_fan = glorot || kind == DPT_INIT_HE_UNIFORM || kind == DPT_INIT_HE_NORMAL
                 || kind == DPT_INIT_LECUN_NORMAL;
    if (by_fan && (fan_in < 1 || (glorot && fan_out < 1)))
        return DPT_FAIL(DPT_ERR_ARG, "%s initialization needs positive fans (fan_in %d, fan_out %d)",
                        dpt_init_name(kind), fan_in, fan_out);
    if (!by_fan && init->value < 0)
        return DPT_FAIL(DPT_ERR_ARG, "%s initialization needs a scale >= 0, not %g",
                        dpt_init_name(kind), init->value);
    double fans = (double)fan_in + fan_out;
    *uniform = kind == DPT_INIT_UNIFORM || kind == DPT_INIT_GLOROT_UNIFORM
               || kind == DPT_INIT_HE_UNIFORM;
    switch (kind) {
    case DPT_INIT_GLOROT_UNIFORM: *scale = sqrt(6.0 / fans); break;
    case DPT_INIT_GLOROT_NORMAL: *scale = sqrt(2.0 / fans); break;
    case DPT_INIT_HE_UNIFORM: *scale = sqrt(6.0 / fan_in); break;
    case DPT_INIT_HE_NORMAL: *scale = sqrt(2.0 / fan_in); break;
    case DPT_INIT_LECUN_NORMAL: *scale = sqrt(1.0 / fan_in); break;
    default: *scale = init->value; break; /* uniform limit, normal std */
    }
    return DPT_OK;
}

static dpt_status init_random(dpt_real *w, size_t n, int fan_in, int fan_out,
                              const dpt_init_spec *init, dpt_rng *rng)
{
    double scale = 0;
    int uniform = 0;
    dpt_status status = random_scale(&scale, &uniform, init, fan_in, fan_out);
    if (status != DPT_OK) return status;
    if (uniform)
        for (size_t i = 0; i < n; i++) w[i] = (dpt_real)(scale * (2 * dpt_rng_uniform(rng) - 1));
    else
        for (size_t i = 0; i < n; i++) w[i] = (dpt_real)(scale * dpt_rng_normal(rng));
    return DPT_OK;
}

/* ---------------------------------------------------------------- orthogonal */

/* The optimal workspace of both LAPACK calls (lwork = -1 queries). */
static int qr_workspace(int m, int n, dpt_real *a, dpt_real *tau)
{
    int query = -1, info = 0;
    dpt_real geqrf = 0, orgqr = 0;
    lapack_geqrf(&m, &n, a, &m, tau, &geqrf, &query, &info);
    lapack_orgqr(&m, &n, &n, a, &m, tau, &orgqr, &query, &info);
    double best = fmax(fmax(ceil((double)geqrf), ceil((double)orgqr)), n);
    return best < INT_MAX ? (int)best : INT_MAX;
}

/* Overwrites a (m x n column-major, m >= n) by the Q of a = Q R, with
 * column j multiplied by sign(R_jj). Householder QR leaves those signs to
 * the data (LAPACK makes R_11 = -sign(a_11) |a_1|), which biases Q; fixing
 * them makes R's diagonal positive, the decomposition unique and Q Haar
 * (uniformly) distributed when a is Gaussian: Mezzadri 2007, section 5. */
static dpt_status haar_q(dpt_real *a, int m, int n)
{
    dpt_real *tau = malloc(sizeof(dpt_real) * 2 * (size_t)n);
    if (!tau) return DPT_FAIL(DPT_ERR_NOMEM, "orthogonal init: no memory for %d reflectors", n);
    dpt_real *sign = tau + n;
    int lwork = qr_workspace(m, n, a, tau), info = 0;
    dpt_real *work = malloc(sizeof(dpt_real) * (size_t)lwork);
    if (!work) {
        free(tau);
        return DPT_FAIL(DPT_ERR_NOMEM, "orthogonal init: no memory for a workspace of %d", lwork);
    }
    lapack_geqrf(&m, &n, a, &m, tau, work, &lwork, &info);
    if (info == 0) {
        for (int j = 0; j < n; j++) sign[j] = a[(size_t)j * m + j] < 0 ? -1 : 1;
        lapack_orgqr(&m, &n, &n, a, &m, tau, work, &lwork, &info);
    }
    if (info == 0)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) a[(size_t)j * m + i] *= sign[j];
    free(work);
    free(tau);
    if (info != 0) return DPT_FAIL(DPT_ERR_NUMERIC, "orthogonal init: LAPACK QR info %d", info);
    return DPT_OK;
}

/* w[rows][cols] = gain Q^T if rows < cols (orthonormal rows), gain Q
 * otherwise (orthonormal columns), q being max x min column-major. */
static void write_orthogonal(dpt_real *w, const dpt_real *q, int rows, int cols, double gain)
{
    size_t n = (size_t)rows * cols;
    if (rows < cols) {
        /* column j of a column-major Q is row j of a row-major Q^T: same storage */
        for (size_t i = 0; i < n; i++) w[i] = (dpt_real)(gain * q[i]);
        return;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            w[(size_t)r * cols + c] = (dpt_real)(gain * q[(size_t)c * rows + r]);
}

/* value is the gain; value <= 0 means gain 1 (an unset value keeps the
 * plain orthogonal matrix rather than a zero one). */
static dpt_status init_orthogonal(dpt_real *w, int rows, int cols, double value, dpt_rng *rng)
{
    int m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    if ((size_t)m * n > INT_MAX)
        return DPT_FAIL(DPT_ERR_ARG, "orthogonal init: %d x %d exceeds LAPACK's int indexing",
                        rows, cols);
    dpt_real *a = malloc(sizeof(dpt_real) * (size_t)m * n);
    if (!a) return DPT_FAIL(DPT_ERR_NOMEM, "orthogonal init: no memory for %d x %d", m, n);
    for (size_t i = 0; i < (size_t)m * n; i++) a[i] = (dpt_real)dpt_rng_normal(rng);
    dpt_status status = haar_q(a, m, n);
    if (status == DPT_OK) write_orthogonal(w, a, rows, cols, value > 0 ? value : 1);
    free(a);
    return status;
}

/* ---------------------------------------------------------------- sparse */

/* Each row (unit) gets k = (int)value incoming N(0, 1) weights, k clamped to
 * cols, at k distinct columns: the first k steps of a Fisher-Yates shuffle
 * of the column indices. The index array is not reset between rows: a
 * partial shuffle draws a uniform k-subset whatever order it starts from. */
static dpt_status init_sparse(dpt_real *w, int rows, int cols, double value, dpt_rng *rng)
{
    if (!(value >= 1))
        return DPT_FAIL(DPT_ERR_ARG, "sparse init needs at least 1 non-zero weight per unit, not %g",
                        value);
    int k = value >= cols ? cols : (int)value;
    uint32_t *col = malloc(sizeof(uint32_t) * (size_t)cols);
    if (!col) return DPT_FAIL(DPT_ERR_NOMEM, "sparse init: no memory for %d indices", cols);
    for (int c = 0; c < cols; c++) col[c] = (uint32_t)c;
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = 0;
    for (int r = 0; r < rows; r++) {
        dpt_real *row = w + (size_t)r * cols;
        for (int j = 0; j < k; j++) {
            uint32_t t = (uint32_t)j + (uint32_t)dpt_rng_below(rng, (uint64_t)(cols - j));
            uint32_t pick = col[t];
            col[t] = col[j];
            col[j] = pick;
            row[pick] = (dpt_real)dpt_rng_normal(rng);
        }
    }
    free(col);
    return DPT_OK;
}

/* ---------------------------------------------------------------- dispatch */

dpt_status dpt_init_weights(dpt_real *w, int rows, int cols, int fan_in, int fan_out,
                            const dpt_init_spec *init, dpt_rng *rng)
{
    if (!w || !init || !rng) return DPT_FAIL(DPT_ERR_ARG, "init: NULL argument");
    if ((unsigned)init->kind >= DPT_INIT_COUNT_)
        return DPT_FAIL(DPT_ERR_ARG, "init: unknown kind %d", (int)init->kind);
    if (init->kind == DPT_INIT_AUTO)
        return DPT_FAIL(DPT_ERR_ARG, "init: 'auto' must be resolved by the caller "
                                     "(he_normal before ReLU, glorot_uniform otherwise)");
    if (rows < 1 || cols < 1)
        return DPT_FAIL(DPT_ERR_ARG, "init: empty weight matrix %d x %d", rows, cols);
    if (!isfinite(init->value))
        return DPT_FAIL(DPT_ERR_ARG, "init: non-finite value for %s", dpt_init_name(init->kind));
    size_t n = (size_t)rows * cols;
    switch (init->kind) {
    case DPT_INIT_ZEROS:
    case DPT_INIT_CONSTANT: {
        dpt_real v = init->kind == DPT_INIT_ZEROS ? 0 : (dpt_real)init->value;
        for (size_t i = 0; i < n; i++) w[i] = v;
        return DPT_OK;
    }
    case DPT_INIT_ORTHOGONAL: return init_orthogonal(w, rows, cols, init->value, rng);
    case DPT_INIT_SPARSE: return init_sparse(w, rows, cols, init->value, rng);
    default: return init_random(w, n, fan_in, fan_out, init, rng);
    }
}
