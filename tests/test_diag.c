/* Unit tests of dpt/diag.h: the curvature probe on explicit quadratics
 * (where the second-order Taylor model is exact), Lanczos against matrices
 * of known spectrum, and the layer gradient check. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_util.h"
#include "dpt/diag.h"
#include "dpt/rng.h"

#define N 40

/* A dense symmetric matrix for the Hv callback, with a product counter. */
typedef struct matrix_op {
    int n;
    double *a; /* [n][n] */
    int products;
    int poison; /* return NaN from this product on (1-based), 0: never */
} matrix_op;

static dpt_status matrix_hv(void *user, const dpt_real *v, dpt_real *out)
{
    matrix_op *op = user;
    op->products++;
    for (int i = 0; i < op->n; i++) {
        double sum = 0;
        for (int j = 0; j < op->n; j++) sum += op->a[i * op->n + j] * v[j];
        out[i] = (dpt_real)sum;
    }
    if (op->poison && op->products >= op->poison) out[0] = (dpt_real)NAN;
    return DPT_OK;
}

/* H = Q diag(eigs) Q with Q = I - 2 u u' / u'u, a random Householder
 * reflection: symmetric, with exactly the eigenvalues eigs. */
static void known_spectrum(double *a, const double *eigs, int n, uint64_t seed)
{
    double u[N], uu = 0;
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_TEST, 0, 7);
    for (int i = 0; i < n; i++) u[i] = dpt_rng_normal(&rng), uu += u[i] * u[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            /* (Q D Q)_ij = sum_k Q_ik d_k Q_kj */
            double sum = 0;
            for (int k = 0; k < n; k++) {
                double qik = (i == k) - 2 * u[i] * u[k] / uu, qkj = (k == j) - 2 * u[k] * u[j] / uu;
                sum += qik * eigs[k] * qkj;
            }
            a[i * n + j] = sum;
        }
}

static double quadratic(const double *a, const double *b, const double *x, int n)
{
    double f = 0;
    for (int i = 0; i < n; i++) {
        double hx = 0;
        for (int j = 0; j < n; j++) hx += a[i * n + j] * x[j];
        f += 0.5 * x[i] * hx - b[i] * x[i];
    }
    return f;
}

/* f(x) = x'Hx/2 - b'x: the Taylor model along -g is exact, so the probe's
 * predicted change must equal f(x - eps g) - f(x), eps* must be the line
 * minimizer, and the flag must say whether the step went uphill. */
static void check_probe_on(const double *eigs, int n, double eps)
{
    double *a = malloc(sizeof(double) * n * n), b[N], x[N], g[N], hg[N], x_new[N];
    known_spectrum(a, eigs, n, 3);
    dpt_rng rng;
    dpt_rng_init(&rng, 11, DPT_STREAM_TEST, 0, 1);
    for (int i = 0; i < n; i++) b[i] = dpt_rng_normal(&rng), x[i] = dpt_rng_normal(&rng);
    double gtg = 0, gthg = 0;
    for (int i = 0; i < n; i++) {
        g[i] = -b[i];
        for (int j = 0; j < n; j++) g[i] += a[i * n + j] * x[j];
    }
    for (int i = 0; i < n; i++) {
        hg[i] = 0;
        for (int j = 0; j < n; j++) hg[i] += a[i * n + j] * g[j];
        gtg += g[i] * g[i], gthg += g[i] * hg[i];
    }
    dpt_curvature_probe p;
    dpt_curvature_probe_eval(&p, gtg, gthg, eps);
    CU_ASSERT_DOUBLE_EQUAL(p.first_order, eps * gtg, 1e-12 * gtg);
    CU_ASSERT_DOUBLE_EQUAL(p.second_order, 0.5 * eps * eps * gthg, 1e-12 * fabs(gthg) + 1e-300);
    for (int i = 0; i < n; i++) x_new[i] = x[i] - eps * g[i];
    double change = quadratic(a, b, x_new, n) - quadratic(a, b, x, n);
    CU_ASSERT_DOUBLE_EQUAL(p.predicted_change, change, 1e-9 * (fabs(change) + p.first_order));
    CU_ASSERT_EQUAL(p.ill_conditioned, change > 0);
    if (gthg > 0) {
        CU_ASSERT_DOUBLE_EQUAL(p.eps_star, gtg / gthg, 1e-12 * p.eps_star);
        /* eps* minimizes f along -g: a little more or less is worse */
        for (int side = -1; side <= 1; side += 2) {
            double best[N], near[N];
            for (int i = 0; i < n; i++)
                best[i] = x[i] - p.eps_star * g[i], near[i] = x[i] - p.eps_star * (1 + side * 1e-3) * g[i];
            CU_ASSERT(quadratic(a, b, best, n) < quadratic(a, b, near, n));
        }
    } else {
        CU_ASSERT_EQUAL(p.eps_star, 0);
    }
    free(a);
}

static void test_probe_quadratic(void)
{
    double eigs[N];
    for (int i = 0; i < N; i++) eigs[i] = 0.5 + 9.5 * i / (N - 1); /* SPD, condition 20 */
    check_probe_on(eigs, N, 0.01); /* small step: downhill */
    check_probe_on(eigs, N, 0.5);  /* eps >> 2 / lambda_max: uphill, flagged */
    for (int i = 0; i < N; i++) eigs[i] = -3.0 + 8.0 * i / (N - 1); /* indefinite */
    check_probe_on(eigs, N, 0.05);
    for (int i = 0; i < N; i++) eigs[i] = -1.0 - i; /* negative definite: g'Hg < 0, no eps* */
    check_probe_on(eigs, N, 0.05);
}

static void test_probe_edges(void)
{
    dpt_curvature_probe p;
    dpt_curvature_probe_eval(&p, 4, 8, 1); /* first 4, second 4: not more, so not flagged */
    CU_ASSERT_EQUAL(p.ill_conditioned, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.eps_star, 0.5, 1e-15);
    dpt_curvature_probe_eval(&p, 4, 8.0001, 1);
    CU_ASSERT_EQUAL(p.ill_conditioned, 1);
    dpt_curvature_probe_eval(&p, 0, 0, 0.1); /* zero gradient */
    CU_ASSERT_EQUAL(p.ill_conditioned, 0);
    CU_ASSERT_EQUAL(p.eps_star, 0);
}

static double run_lanczos(matrix_op *op, int steps, dpt_lanczos_result *r, dpt_real *vec)
{
    dpt_lanczos_params p;
    dpt_lanczos_params_init(&p);
    p.steps = steps;
    op->products = 0;
    dpt_status st = dpt_lanczos_extremes(matrix_hv, op, (size_t)op->n, &p, r, vec);
    CU_ASSERT_EQUAL(st, DPT_OK);
    return st == DPT_OK;
}

static void test_lanczos_known_spectrum(void)
{
    double eigs[N], *a = malloc(sizeof(double) * N * N);
    /* isolated extremes, a dense middle: the extremes converge fast */
    for (int i = 0; i < N; i++) eigs[i] = -1.0 + 4.0 * i / (N - 1);
    eigs[0] = -2.5;
    eigs[N - 1] = 12.0;
    known_spectrum(a, eigs, N, 5);
    matrix_op op = {.n = N, .a = a};
    dpt_lanczos_result r;
    dpt_real y[N], hy[N];
    const double tol_full = DPT_REAL_EPS > 1e-10 ? 1e-4 : 1e-10;
    /* k = n: the Krylov space is everything; exact up to rounding */
    CU_ASSERT_FATAL(run_lanczos(&op, N, &r, y));
    CU_ASSERT_EQUAL(r.steps, N);
    CU_ASSERT_DOUBLE_EQUAL(r.lambda_max, 12.0, tol_full * 12);
    CU_ASSERT_DOUBLE_EQUAL(r.lambda_min, -2.5, tol_full * 12);
    CU_ASSERT_EQUAL(op.products, N + 1); /* k products and the Rayleigh quotient */
    /* k = 15 < n: within 1% already, from inside the spectrum */
    CU_ASSERT_FATAL(run_lanczos(&op, 15, &r, y));
    CU_ASSERT_EQUAL(r.steps, 15);
    CU_ASSERT(fabs(r.lambda_max - 12.0) <= 0.01 * 12.0);
    CU_ASSERT(fabs(r.lambda_min + 2.5) <= 0.01 * 2.5);
    CU_ASSERT(r.lambda_max <= 12.0 * (1 + 10 * DPT_REAL_EPS));
    CU_ASSERT(r.lambda_min >= -2.5 * (1 + 10 * DPT_REAL_EPS));
    /* the Ritz vector: unit, Rayleigh quotient = lambda_min, and its true
     * residual |Hy - lambda y| matches the cheap estimate */
    matrix_hv(&op, y, hy);
    double yy = 0, res = 0;
    for (int i = 0; i < N; i++) yy += (double)y[i] * y[i], res += pow(hy[i] - r.lambda_min * y[i], 2);
    CU_ASSERT_DOUBLE_EQUAL(yy, 1.0, 100 * DPT_REAL_EPS);
    CU_ASSERT_DOUBLE_EQUAL(r.rayleigh_min, r.lambda_min, 1e-3 * 2.5);
    CU_ASSERT_DOUBLE_EQUAL(sqrt(res), r.residual_min, 0.05 * r.residual_min + 1e-3);
    free(a);
}

/* A multiple of the identity: the first step spans an invariant subspace;
 * Lanczos stops at once with the exact eigenvalue. */
static void test_lanczos_breakdown(void)
{
    double *a = calloc(N * N, sizeof(double));
    for (int i = 0; i < N; i++) a[i * N + i] = 3.0;
    matrix_op op = {.n = N, .a = a};
    dpt_lanczos_result r;
    CU_ASSERT_FATAL(run_lanczos(&op, 10, &r, NULL));
    CU_ASSERT_EQUAL(r.steps, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.lambda_min, 3.0, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(r.lambda_max, 3.0, 1e-5);
    CU_ASSERT_EQUAL(op.products, 1);
    /* more steps than the dimension: capped at n */
    op.n = 3;
    CU_ASSERT_FATAL(run_lanczos(&op, 10, &r, NULL));
    CU_ASSERT(r.steps <= 3);
    free(a);
}

static void test_lanczos_errors(void)
{
    double a[4] = {1, 0, 0, 2};
    matrix_op op = {.n = 2, .a = a};
    dpt_lanczos_params p;
    dpt_lanczos_params_init(&p);
    dpt_lanczos_result r;
    p.steps = 0;
    CU_ASSERT_EQUAL(dpt_lanczos_extremes(matrix_hv, &op, 2, &p, &r, NULL), DPT_ERR_ARG);
    p.steps = 2;
    CU_ASSERT_EQUAL(dpt_lanczos_extremes(matrix_hv, &op, 0, &p, &r, NULL), DPT_ERR_ARG);
    op.poison = 1;
    CU_ASSERT_EQUAL(dpt_lanczos_extremes(matrix_hv, &op, 2, &p, &r, NULL), DPT_ERR_NUMERIC);
}

static void test_grad_health(void)
{
    double ratio;
    CU_ASSERT_EQUAL(dpt_grad_health_check(1e-3, 10, 1e-5, 10, &ratio), DPT_GRAD_OK);
    CU_ASSERT_DOUBLE_EQUAL(ratio, 1e-4, 1e-18);
    CU_ASSERT_EQUAL(dpt_grad_health_check(1e-7, 10, 1e-5, 10, &ratio), DPT_GRAD_VANISHING);
    CU_ASSERT_EQUAL(dpt_grad_health_check(200, 10, 1e-5, 10, &ratio), DPT_GRAD_EXPLODING);
    CU_ASSERT_EQUAL(dpt_grad_health_check(NAN, 10, 1e-5, 10, &ratio), DPT_GRAD_EXPLODING);
    /* zero weights with a gradient: large, not vanishing; zero and zero: vanishing */
    CU_ASSERT_EQUAL(dpt_grad_health_check(1e-3, 0, 1e-5, 10, &ratio), DPT_GRAD_EXPLODING);
    CU_ASSERT_EQUAL(dpt_grad_health_check(0, 0, 1e-5, 10, &ratio), DPT_GRAD_VANISHING);
    CU_ASSERT_STRING_EQUAL(dpt_grad_health_name(DPT_GRAD_VANISHING), "vanishing");
    CU_ASSERT_STRING_EQUAL(dpt_grad_health_name(DPT_GRAD_EXPLODING), "exploding");
}

int main(void)
{
    static const dpt_test tests[] = {
        {"probe on quadratics of known H", test_probe_quadratic},
        {"probe edge cases", test_probe_edges},
        {"Lanczos on a known spectrum", test_lanczos_known_spectrum},
        {"Lanczos breakdown and small n", test_lanczos_breakdown},
        {"Lanczos errors", test_lanczos_errors},
        {"layer gradient health", test_grad_health},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("diag", tests), CU_BRM_VERBOSE);
}
