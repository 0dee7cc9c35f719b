/* Curvature-vector products (src/nn/curvature.c) against references:
 * Hv against central differences of the gradient, the explicit Hessian
 * (Hv on every basis vector) against its finite-difference counterpart and
 * its own transpose, the Gauss-Newton matrix symmetric and positive
 * semi-definite, and equal to the Hessian for softmax regression (a convex
 * model whose network is linear in its parameters). Double build: relative
 * errors < 1e-6. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_util.h"
#include "dpt/model.h"
#include "fd_util.h"

#ifdef DPT_DOUBLE
#define EPS 1e-5
#define MAX_REL_ERR 1e-6
#define REL_FLOOR 1e-4
#define SYM_TOL 1e-10
#else
/* float gradients differenced: ~10% noise through several layers; gross
 * errors still show as O(1). The double build is the real check. */
#define EPS 1e-2
#define MAX_REL_ERR 0.25
#define REL_FLOOR 1e-2
#define SYM_TOL 1e-4
#endif
#define B 6

typedef struct fixture {
    dpt_model m;
    dpt_curvature_ws ws;
    dpt_real x[B * 64];
    uint8_t y[B];
} fixture;

static void setup(fixture *f, const char *trunk, dpt_shape input, dpt_loss_kind loss, int n_heads)
{
    dpt_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.loss = loss;
    char why[256];
    CU_ASSERT_FATAL(dpt_layer_list_parse(trunk, spec.trunk, DPT_MAX_LAYERS, &spec.n_trunk, why,
                                         sizeof why) == DPT_OK);
    for (int h = 0; h < n_heads; h++) { /* heads of 3 outputs, the second with weight 0.5 */
        dpt_head_spec *hs = &spec.heads[spec.n_heads++];
        snprintf(hs->name, sizeof hs->name, "h%d", h);
        CU_ASSERT_FATAL(dpt_layer_list_parse(h ? "3" : "4 tanh, 3", hs->layers, DPT_MAX_LAYERS,
                                             &hs->n_layers, why, sizeof why) == DPT_OK);
        hs->loss = h ? DPT_LOSS_MSE : DPT_LOSS_SOFTMAX_XENT;
        hs->weight = h ? 0.5 : 1.0;
    }
    CU_ASSERT_FATAL(dpt_model_create(&f->m, input, &spec, B) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_init_params(&f->m, 17, NULL) == DPT_OK);
    for (size_t p = 0; p < f->m.n_params; p++) f->m.params[p] += (dpt_real)(0.1 * sin(1.7 * p));
    CU_ASSERT_FATAL(dpt_curvature_ws_create(&f->ws, &f->m) == DPT_OK);
    CU_ASSERT_FATAL(dpt_shape_size(input) * B <= sizeof f->x / sizeof f->x[0]);
    dpt_fd_fill_uniform(f->x, dpt_shape_size(input) * B, -1, 1, 3);
    for (int b = 0; b < B; b++) f->y[b] = (uint8_t)(b % 3);
}

static void teardown(fixture *f)
{
    dpt_curvature_ws_destroy(&f->ws);
    dpt_model_destroy(&f->m);
}

/* g = gradient of the loss sum at the current parameters */
static void gradient(fixture *f, dpt_real *g)
{
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0};
    dpt_batch_metrics metrics;
    memset(&metrics, 0, sizeof metrics);
    memset(f->m.grads, 0, sizeof(dpt_real) * f->m.n_params);
    dpt_model_forward_backward(&f->m, f->x, f->y, B, &ctx, &metrics);
    memcpy(g, f->m.grads, sizeof(dpt_real) * f->m.n_params);
}

static void product(fixture *f, const dpt_real *v, dpt_real *out, dpt_curvature_kind kind)
{
    memset(out, 0, sizeof(dpt_real) * f->m.n_params);
    CU_ASSERT_FATAL(dpt_model_curvature_product(&f->m, &f->ws, f->x, f->y, B, v, out, kind) == DPT_OK);
}

/* (g(theta + eps v) - g(theta - eps v)) / (2 eps) */
static void hv_by_differences(fixture *f, const dpt_real *v, dpt_real *out)
{
    size_t n = f->m.n_params;
    dpt_real *theta = malloc(sizeof(dpt_real) * n), *plus = malloc(sizeof(dpt_real) * n);
    memcpy(theta, f->m.params, sizeof(dpt_real) * n);
    for (size_t p = 0; p < n; p++) f->m.params[p] = theta[p] + (dpt_real)EPS * v[p];
    gradient(f, plus);
    for (size_t p = 0; p < n; p++) f->m.params[p] = theta[p] - (dpt_real)EPS * v[p];
    gradient(f, out);
    for (size_t p = 0; p < n; p++) out[p] = (dpt_real)((plus[p] - out[p]) / (2 * EPS));
    memcpy(f->m.params, theta, sizeof(dpt_real) * n);
    free(theta), free(plus);
}

static void check_hv(const char *trunk, dpt_shape input, dpt_loss_kind loss, int heads, const char *what)
{
    static fixture f;
    setup(&f, trunk, input, loss, heads);
    size_t n = f.m.n_params;
    dpt_real *v = malloc(sizeof(dpt_real) * n), *hv = malloc(sizeof(dpt_real) * n);
    dpt_real *fd = malloc(sizeof(dpt_real) * n);
    dpt_fd_fill_uniform(v, n, -1, 1, 9);
    product(&f, v, hv, DPT_CURV_HESSIAN);
    hv_by_differences(&f, v, fd);
    double worst = 0;
    for (size_t p = 0; p < n; p++) worst = fmax(worst, dpt_fd_rel_err(hv[p], fd[p], REL_FLOOR));
    printf("\n  %s: Hv vs differences of gradients, max rel err %.3g (%zu parameters)", what, worst, n);
    CU_ASSERT(worst < MAX_REL_ERR);
    free(v), free(hv), free(fd);
    teardown(&f);
}

static void test_hv_mlp(void)
{
    check_hv("5 tanh, 4 sigmoid, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 0, "MLP, softmax");
    check_hv("5 tanh, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_MSE, 0, "MLP, mse");
    check_hv("5 sigmoid, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_SIGMOID_BCE, 0, "MLP, sigmoid bce");
}

static void test_hv_conv(void)
{
    check_hv("conv 2 3 pad=same, tanh, conv 3 2 stride=2, sigmoid, flatten, 3", (dpt_shape){1, 5, 5},
             DPT_LOSS_SOFTMAX_XENT, 0, "CNN");
}

static void test_hv_heads(void)
{
    check_hv("conv 2 3 pad=same, tanh, flatten, 5 tanh", (dpt_shape){1, 3, 3}, DPT_LOSS_SOFTMAX_XENT, 2,
             "two heads (softmax, weight 1; mse, weight 0.5)");
}

/* The matrix with columns M e_i. */
static dpt_real *explicit_matrix(fixture *f, dpt_curvature_kind kind)
{
    size_t n = f->m.n_params;
    dpt_real *mat = malloc(sizeof(dpt_real) * n * n), *e = calloc(n, sizeof(dpt_real));
    for (size_t i = 0; i < n; i++) {
        e[i] = 1;
        product(f, e, mat + i * n, kind); /* column i, stored as row i */
        e[i] = 0;
    }
    free(e);
    return mat;
}

static double asymmetry(const dpt_real *mat, size_t n)
{
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n * n; i++) scale = fmax(scale, fabs(mat[i]));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) worst = fmax(worst, fabs(mat[i * n + j] - mat[j * n + i]));
    return worst / scale;
}

static void test_explicit_matrices(void)
{
    static fixture f;
    setup(&f, "3 tanh, 3", (dpt_shape){2, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 0);
    size_t n = f.m.n_params;
    dpt_real *h = explicit_matrix(&f, DPT_CURV_HESSIAN), *g = explicit_matrix(&f, DPT_CURV_GAUSS_NEWTON);
    dpt_real *col = malloc(sizeof(dpt_real) * n), *e = calloc(n, sizeof(dpt_real));
    double worst = 0;
    for (size_t i = 0; i < n; i++) { /* every column against differences of gradients */
        e[i] = 1;
        hv_by_differences(&f, e, col);
        e[i] = 0;
        for (size_t j = 0; j < n; j++) worst = fmax(worst, dpt_fd_rel_err(h[i * n + j], col[j], REL_FLOOR));
    }
    printf("\n  explicit %zu x %zu Hessian: vs differences %.3g, asymmetry %.3g; Gauss-Newton asymmetry %.3g",
           n, n, worst, asymmetry(h, n), asymmetry(g, n));
    CU_ASSERT(worst < MAX_REL_ERR);
    CU_ASSERT(asymmetry(h, n) < SYM_TOL);
    CU_ASSERT(asymmetry(g, n) < SYM_TOL);
    /* G = J^T H_L J is positive semi-definite: v^T G v >= 0 */
    dpt_real v[64];
    double lowest = INFINITY;
    for (int trial = 0; trial < 100 && n <= 64; trial++) {
        dpt_fd_fill_uniform(v, n, -1, 1, 100 + (uint64_t)trial);
        double q = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) q += (double)v[i] * g[i * n + j] * v[j];
        lowest = fmin(lowest, q);
    }
    CU_ASSERT(lowest >= -SYM_TOL);
    free(h), free(g), free(col), free(e);
    teardown(&f);
}

static void test_softmax_regression_gn_is_hessian(void)
{
    static fixture f;
    setup(&f, "4", (dpt_shape){5, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 0);
    size_t n = f.m.n_params;
    dpt_real *h = explicit_matrix(&f, DPT_CURV_HESSIAN), *g = explicit_matrix(&f, DPT_CURV_GAUSS_NEWTON);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n * n; i++) worst = fmax(worst, fabs(h[i] - g[i])), scale = fmax(scale, fabs(h[i]));
    printf("\n  softmax regression: |H - G| / |H| = %.3g", worst / scale);
    CU_ASSERT(worst / scale < SYM_TOL);
    free(h), free(g);
    teardown(&f);
}

/* G assembled from the factored rows, A^T A, equals the explicit G of the
 * products: an MLP, a CNN and two weighted heads (softmax and MSE). */
static void check_gn_rows(const char *trunk, dpt_shape input, dpt_loss_kind loss, int heads, const char *what)
{
    static fixture f;
    setup(&f, trunk, input, loss, heads);
    size_t n = f.m.n_params;
    int R = dpt_model_gn_rows_per_sample(&f.m);
    dpt_real *g = explicit_matrix(&f, DPT_CURV_GAUSS_NEWTON);
    dpt_real *rows = malloc(sizeof(dpt_real) * (size_t)B * R * n);
    CU_ASSERT_FATAL(rows != NULL);
    CU_ASSERT_FATAL(dpt_model_gn_rows(&f.m, &f.ws, f.x, f.y, B, rows) == DPT_OK);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double ata = 0;
            for (size_t r = 0; r < (size_t)B * R; r++) ata += (double)rows[r * n + i] * rows[r * n + j];
            worst = fmax(worst, fabs(ata - g[i * n + j]));
            scale = fmax(scale, fabs(g[i * n + j]));
        }
    printf("\n  %s: %d rows per sample, |A^T A - G| / |G| = %.3g", what, R, worst / scale);
    CU_ASSERT(worst / scale < SYM_TOL);
    free(g), free(rows);
    teardown(&f);
}

static void test_gn_rows(void)
{
    check_gn_rows("5 tanh, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 0, "MLP, softmax");
    check_gn_rows("5 tanh, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_MSE, 0, "MLP, mse");
    check_gn_rows("5 sigmoid, 3", (dpt_shape){4, 1, 1}, DPT_LOSS_SIGMOID_BCE, 0, "MLP, sigmoid bce");
    check_gn_rows("conv 2 3 pad=same, tanh, flatten, 3", (dpt_shape){1, 4, 4}, DPT_LOSS_SOFTMAX_XENT, 0, "CNN");
    check_gn_rows("4 sigmoid", (dpt_shape){3, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 2, "two weighted heads");
}

static void test_unsupported(void)
{
    static fixture f;
    setup(&f, "4, batchnorm, 3", (dpt_shape){5, 1, 1}, DPT_LOSS_SOFTMAX_XENT, 0);
    dpt_real v[64] = {0}, out[64];
    CU_ASSERT(f.m.n_params <= 64);
    CU_ASSERT(dpt_model_curvature_product(&f.m, &f.ws, f.x, f.y, B, v, out, DPT_CURV_HESSIAN) == DPT_ERR_ARG);
    teardown(&f);
}

int main(void)
{
    static const dpt_test tests[] = {
        {"Hv of MLPs vs differences of gradients", test_hv_mlp},
        {"Hv of a CNN vs differences of gradients", test_hv_conv},
        {"Hv with two weighted heads", test_hv_heads},
        {"explicit Hessian and Gauss-Newton matrices", test_explicit_matrices},
        {"softmax regression: Gauss-Newton = Hessian", test_softmax_regression_gn_is_hessian},
        {"Gauss-Newton from factored Jacobian rows = explicit G", test_gn_rows},
        {"unsupported layers are refused", test_unsupported},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("curvature", tests), CU_BRM_VERBOSE);
}
