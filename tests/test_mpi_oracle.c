/* The distributed oracle: with P ranks it returns what one process
 * returns for the whole batch (value, gradient, Hessian and Gauss-Newton
 * products, with the L2 term on weights only), and its gradient is the
 * derivative of its value (central differences). Run under mpirun with 1,
 * 2 and 3 ranks on 103 samples (uneven shares). The softmax-regression fast
 * path returns what the general path returns (byte and float features, a
 * curvature subsample, 1-3 threads, its cached probabilities reused and
 * recomputed), and only that model takes it. */
#include <math.h>
#include <string.h>

#include "dpt/oracle.h"
#include "fd_util.h"
#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define REL_TOL 1e-12
#define FD_EPS 1e-5
#define FD_TOL 1e-6
#else
#define REL_TOL 1e-5
#define FD_EPS 1e-2
#define FD_TOL 2e-2
#endif

static int world_rank, world_size;

static void make_model(dpt_model *m, const char *layers)
{
    fixture_model(m, layers);
    for (size_t p = 0; p < m->n_params; p++) m->params[p] += (dpt_real)(0.05 * cos(0.7 * p));
}

static double max_rel(const dpt_real *a, const dpt_real *b, size_t n)
{
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst / scale;
}

static void check_against_serial(const char *layers)
{
    static dpt_model dm, sm;
    static dpt_oracle dist, serial;
    static dpt_real x[512], g1[512], g2[512], v[512], h1[512], h2[512];
    dpt_dataset set;
    fixture_dataset(&set, 103);
    make_model(&dm, layers);
    make_model(&sm, layers);
    size_t n = dm.n_params;
    CU_ASSERT_FATAL(n <= 512);
    CU_ASSERT_FATAL(dpt_oracle_create(&dist, MPI_COMM_WORLD, &dm, &set, 0, 103, 1.0, 1e-3) == DPT_OK);
    CU_ASSERT_FATAL(dpt_oracle_create(&serial, MPI_COMM_SELF, &sm, &set, 0, 103, 1.0, 1e-3) == DPT_OK);
    memcpy(x, dm.params, sizeof(dpt_real) * n);
    double f1, f2;
    CU_ASSERT_FATAL(dpt_oracle_value_grad(&dist, x, &f1, g1) == DPT_OK);
    CU_ASSERT_FATAL(dpt_oracle_value_grad(&serial, x, &f2, g2) == DPT_OK);
    dpt_fd_fill_uniform(v, n, -1, 1, 4);
    double eg = max_rel(g1, g2, n), eh, egn;
    CU_ASSERT_FATAL(dpt_oracle_curvature(&dist, x, v, h1, DPT_CURV_HESSIAN) == DPT_OK);
    CU_ASSERT_FATAL(dpt_oracle_curvature(&serial, x, v, h2, DPT_CURV_HESSIAN) == DPT_OK);
    eh = max_rel(h1, h2, n);
    CU_ASSERT_FATAL(dpt_oracle_curvature(&dist, x, v, h1, DPT_CURV_GAUSS_NEWTON) == DPT_OK);
    CU_ASSERT_FATAL(dpt_oracle_curvature(&serial, x, v, h2, DPT_CURV_GAUSS_NEWTON) == DPT_OK);
    egn = max_rel(h1, h2, n);
    if (world_rank == 0)
        printf("\n  %s, %d ranks: |f - f_serial| / f %.2g, gradient %.2g, Hv %.2g, Gv %.2g", layers,
               world_size, fabs(f1 - f2) / f2, eg, eh, egn);
    CU_ASSERT(fixture_all_ranks(fabs(f1 - f2) <= REL_TOL * fabs(f2) && eg <= REL_TOL * 10 &&
                                eh <= REL_TOL * 10 && egn <= REL_TOL * 10));
    CU_ASSERT_EQUAL(dist.n_total, 103);
    dpt_oracle_destroy(&dist), dpt_oracle_destroy(&serial);
    dpt_model_destroy(&dm), dpt_model_destroy(&sm);
    dpt_dataset_free(&set);
}

static void test_softmax_regression(void) { check_against_serial("4"); }
static void test_mlp(void) { check_against_serial("6 tanh, 4"); }

/* ---------------------------------------------------------------- softmax fast path */

#define FAST_SAMPLES 397 /* several blocks of 64 per rank and ragged ends at 1-3 ranks */
#define FAST_FEATURES 23

/* FAST_SAMPLES x FAST_FEATURES features as bytes or as floats, 5 classes */
static void fast_dataset(dpt_dataset *set, int floats)
{
    static uint8_t bytes[FAST_SAMPLES * FAST_FEATURES], labels[FAST_SAMPLES];
    static float reals[FAST_SAMPLES * FAST_FEATURES];
    dpt_rng rng;
    dpt_rng_init(&rng, 7, DPT_STREAM_TEST, 0, 1);
    for (size_t i = 0; i < FAST_SAMPLES * FAST_FEATURES; i++) {
        bytes[i] = (uint8_t)dpt_rng_below(&rng, 256);
        reals[i] = (float)(bytes[i] / 97.0 - 1.0);
    }
    for (size_t i = 0; i < FAST_SAMPLES; i++)
        labels[i] = (uint8_t)((bytes[i * FAST_FEATURES] + bytes[i * FAST_FEATURES + 1]) % 5);
    dpt_status st = floats ? dpt_dataset_from_floats(set, reals, labels, FAST_SAMPLES, FAST_FEATURES)
                           : dpt_dataset_from_arrays(set, bytes, labels, FAST_SAMPLES, FAST_FEATURES);
    CU_ASSERT_FATAL(st == DPT_OK);
}

/* layers as the trunk (head_weight 0) or as the layers of one explicit
 * head with that loss weight and no trunk */
static void fast_model(dpt_model *m, const char *layers, dpt_loss_kind loss, double head_weight)
{
    static dpt_model_spec spec;
    memset(&spec, 0, sizeof spec);
    char why[256];
    dpt_head_spec *head = &spec.heads[0];
    CU_ASSERT_FATAL(dpt_layer_list_parse(layers, head_weight > 0 ? head->layers : spec.trunk, DPT_MAX_LAYERS,
                                         head_weight > 0 ? &head->n_layers : &spec.n_trunk, why,
                                         sizeof why) == DPT_OK);
    spec.loss = loss;
    if (head_weight > 0) {
        spec.n_heads = 1;
        strcpy(head->name, "task");
        head->loss = loss;
        head->weight = head_weight;
    }
    CU_ASSERT_FATAL(dpt_model_create(m, (dpt_shape){FAST_FEATURES, 1, 1}, &spec, 16) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_init_params(m, 5, NULL) == DPT_OK);
    for (size_t p = 0; p < m->n_params; p++) m->params[p] += (dpt_real)(0.3 * cos(0.7 * p));
}

/* f, g and both curvature products of the fast path against the general
 * path at three points, in an order that makes the fast path recompute its
 * probabilities (a product at a point that was not evaluated) and reuse
 * them (products after an evaluation at the same point). */
static void check_fast_path(int floats, double curv_fraction, int threads, double head_weight)
{
    static dpt_model fm, gm;
    static dpt_oracle fast, general;
    static dpt_real x[3][512], g1[512], g2[512], v[512], h1[512], h2[512];
    dpt_dataset set;
    fast_dataset(&set, floats);
    fast_model(&fm, "5", DPT_LOSS_SOFTMAX_XENT, head_weight);
    fast_model(&gm, "5", DPT_LOSS_SOFTMAX_XENT, head_weight);
    const size_t n = fm.n_params;
    CU_ASSERT_FATAL(n <= 512);
    int keep_threads = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    CU_ASSERT_FATAL(dpt_oracle_create(&fast, MPI_COMM_WORLD, &fm, &set, 3, FAST_SAMPLES - 3, curv_fraction,
                                      1e-3) == DPT_OK);
    openblas_set_num_threads(keep_threads);
    CU_ASSERT_FATAL(dpt_oracle_create(&general, MPI_COMM_WORLD, &gm, &set, 3, FAST_SAMPLES - 3, curv_fraction,
                                      1e-3) == DPT_OK);
    CU_ASSERT_FATAL(fast.fast != NULL);
    dpt_oracle_use_general_path(&general);
    CU_ASSERT_FATAL(general.fast == NULL);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < n; i++) x[p][i] = fm.params[i] * (dpt_real)(1 + 0.5 * p) + (dpt_real)(0.1 * p);
    double worst_f = 0, worst_g = 0, worst_h = 0;
    /* (point of the evaluation, point of the products): -1 = no evaluation */
    static const int order[][2] = {{-1, 0}, {1, 1}, {1, 1}, {2, 0}, {0, 0}};
    for (size_t step = 0; step < sizeof order / sizeof order[0]; step++) {
        int pe = order[step][0], pc = order[step][1];
        if (pe >= 0) {
            double f1, f2;
            CU_ASSERT_FATAL(dpt_oracle_value_grad(&fast, x[pe], &f1, g1) == DPT_OK);
            CU_ASSERT_FATAL(dpt_oracle_value_grad(&general, x[pe], &f2, g2) == DPT_OK);
            worst_f = fmax(worst_f, fabs(f1 - f2) / fabs(f2));
            worst_g = fmax(worst_g, max_rel(g1, g2, n));
        }
        dpt_fd_fill_uniform(v, n, -1, 1, 10 + step);
        for (int kind = 0; kind < 2; kind++) {
            dpt_curvature_kind k = kind ? DPT_CURV_GAUSS_NEWTON : DPT_CURV_HESSIAN;
            CU_ASSERT_FATAL(dpt_oracle_curvature(&fast, x[pc], v, h1, k) == DPT_OK);
            CU_ASSERT_FATAL(dpt_oracle_curvature(&general, x[pc], v, h2, k) == DPT_OK);
            worst_h = fmax(worst_h, max_rel(h1, h2, n));
        }
    }
    if (world_rank == 0)
        printf("\n  fast path (%s features, curvature fraction %g, %d threads, head weight %g), %d ranks: "
               "f %.2g, gradient %.2g, Hv and Gv %.2g", floats ? "float" : "byte", curv_fraction, threads,
               head_weight, world_size, worst_f, worst_g, worst_h);
    CU_ASSERT(fixture_all_ranks(worst_f <= REL_TOL && worst_g <= REL_TOL * 10 && worst_h <= REL_TOL * 10));
    CU_ASSERT_EQUAL(fast.evals, general.evals);
    CU_ASSERT_EQUAL(fast.products, general.products);
    dpt_oracle_destroy(&fast), dpt_oracle_destroy(&general);
    dpt_model_destroy(&fm), dpt_model_destroy(&gm);
    dpt_dataset_free(&set);
}

static void test_fast_path(void)
{
    check_fast_path(0, 1.0, 1, 0);
    check_fast_path(1, 1.0, 1, 0);
    check_fast_path(0, 0.4, 1, 0);
    check_fast_path(0, 1.0, 2, 0);
    check_fast_path(1, 0.6, 3, 0.7);
}

/* Only softmax regression takes the fast path. */
static void test_fast_path_selection(void)
{
    static const struct {
        const char *layers;
        dpt_loss_kind loss;
        int fast;
    } cases[] = {{"5", DPT_LOSS_SOFTMAX_XENT, 1}, {"5", DPT_LOSS_MSE, 0},
                 {"6 tanh, 5", DPT_LOSS_SOFTMAX_XENT, 0}, {"5, relu", DPT_LOSS_SOFTMAX_XENT, 0}};
    dpt_dataset set;
    fast_dataset(&set, 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        static dpt_model m;
        static dpt_oracle o;
        fast_model(&m, cases[c].layers, cases[c].loss, 0);
        CU_ASSERT_FATAL(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &set, 0, FAST_SAMPLES, 1.0, 0) == DPT_OK);
        CU_ASSERT_EQUAL(o.fast != NULL, cases[c].fast);
        dpt_oracle_destroy(&o);
        dpt_model_destroy(&m);
    }
    dpt_dataset_free(&set);
}

/* The gradient is the derivative of the value, L2 term included. */
static void test_gradient_of_value(void)
{
    static dpt_model m;
    static dpt_oracle o;
    static dpt_real x[512], g[512], scratch[512];
    dpt_dataset set;
    fixture_dataset(&set, 103);
    make_model(&m, "5 sigmoid, 4");
    size_t n = m.n_params;
    CU_ASSERT_FATAL(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &set, 0, 103, 1.0, 0.01) == DPT_OK);
    memcpy(x, m.params, sizeof(dpt_real) * n);
    double f, plus, minus, worst = 0;
    CU_ASSERT_FATAL(dpt_oracle_value_grad(&o, x, &f, g) == DPT_OK);
    for (size_t i = 0; i < n; i++) {
        dpt_real keep = x[i];
        x[i] = keep + (dpt_real)FD_EPS;
        dpt_oracle_value_grad(&o, x, &plus, scratch);
        x[i] = keep - (dpt_real)FD_EPS;
        dpt_oracle_value_grad(&o, x, &minus, scratch);
        x[i] = keep;
        worst = fmax(worst, dpt_fd_rel_err(g[i], (plus - minus) / (2 * FD_EPS), 1e-3));
    }
    if (world_rank == 0) printf("\n  oracle gradient vs differences of its value: %.2g", worst);
    CU_ASSERT(worst < FD_TOL);
    CU_ASSERT_EQUAL(o.evals, 1 + 2 * (long)n);
    dpt_oracle_destroy(&o);
    dpt_model_destroy(&m);
    dpt_dataset_free(&set);
}

static void test_curvature_subsample(void)
{
    static dpt_model m;
    static dpt_oracle o;
    dpt_dataset set;
    fixture_dataset(&set, 103);
    make_model(&m, "4");
    CU_ASSERT_FATAL(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &set, 0, 103, 0.25, 0) == DPT_OK);
    double expect = 0;
    for (int r = 0; r < world_size; r++) {
        size_t lo, count;
        dpt_split_range(103, world_size, r, &lo, &count);
        expect += (double)(size_t)((double)count * 0.25 + 0.5);
    }
    CU_ASSERT_DOUBLE_EQUAL(o.n_curv, expect, 0);
    dpt_oracle_destroy(&o);
    CU_ASSERT(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &set, 0, 104, 1.0, 0) == DPT_ERR_ARG);
    dpt_oracle_destroy(&o);
    dpt_model_destroy(&m);
    dpt_dataset_free(&set);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("oracle", NULL, NULL);
    CU_add_test(suite, "softmax regression: P ranks = one process", test_softmax_regression);
    CU_add_test(suite, "MLP: P ranks = one process", test_mlp);
    CU_add_test(suite, "gradient = derivative of the value", test_gradient_of_value);
    CU_add_test(suite, "curvature subsample", test_curvature_subsample);
    CU_add_test(suite, "softmax fast path = general path", test_fast_path);
    CU_add_test(suite, "only softmax regression takes the fast path", test_fast_path_selection);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
