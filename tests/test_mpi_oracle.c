/* The distributed oracle: with P ranks it returns what one process
 * returns for the whole batch (value, gradient, Hessian and Gauss-Newton
 * products, with the L2 term on weights only), and its gradient is the
 * derivative of its value (central differences). Run under mpirun with 1,
 * 2 and 3 ranks on 103 samples (uneven shares). */
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
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
