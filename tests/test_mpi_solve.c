/* The second-order solvers on the distributed oracle: on softmax regression
 * (strictly convex with L2) L-BFGS, nonlinear CG (PR+ and FR) and
 * Newton-CG reach the same minimum; f decreases at every iteration; a
 * P-rank run follows the 1-rank run (MPI_COMM_SELF) iterate for iterate;
 * every rank ends with the same theta, bit for bit; L-BFGS with its history
 * sharded over P ranks follows serial two-loop L-BFGS in one process. On a small tanh MLP
 * (nonconvex) L-BFGS and Newton-CG lower the loss without NaN. Run under
 * mpirun with 1, 2 and 3 ranks on 103 samples (uneven shares). */
#include <math.h>
#include <string.h>

#include "dpt/solve.h"
#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define GTOL 1e-8
#define F_REL_TOL 1e-7
#define G_TOL 1e-5
#define SERIAL_TOL 1e-10
#define PREFIX 20
#define PREFIX_NEWTON 5
#else
#define GTOL 1e-8
#define F_REL_TOL 1e-4
#define G_TOL 1e-3
#define PREFIX 10
#define PREFIX_NEWTON 3
#endif

#define MAX_PARAMS 512
#define MAX_TRACE 64

static int world_rank, world_size;

static void make_model(dpt_model *m, const char *layers)
{
    fixture_model(m, layers);
    CU_ASSERT_FATAL(m->n_params <= MAX_PARAMS);
}

/* what the per-iteration callback saw */
typedef struct trace {
    double f_start, f_last;
    int calls, monotone, finite, last_iter;
    double fs[MAX_TRACE]; /* f after each iteration */
} trace;

static void on_iter(const dpt_solve_iter *it, void *user)
{
    trace *t = user;
    if (!(it->f <= t->f_last)) t->monotone = 0;
    if (!isfinite(it->f) || !isfinite(it->gnorm_inf)) t->finite = 0;
    if (it->iter != t->last_iter + 1) t->monotone = 0;
    t->f_last = it->f, t->last_iter = it->iter;
    if (t->calls < MAX_TRACE) t->fs[t->calls] = it->f;
    t->calls++;
}

typedef struct run_result {
    dpt_status status;
    dpt_solve_report report;
    trace tr;
    double f0;
    size_t n;
    dpt_real theta[MAX_PARAMS];
} run_result;

/* One solve on `comm` from zero (zero_start) or from the model's random
 * initialisation. */
static void run(run_result *out, MPI_Comm comm, const char *layers, int zero_start,
                dpt_solve_params *p)
{
    static dpt_model m;
    static dpt_oracle o;
    static dpt_real g[MAX_PARAMS];
    dpt_dataset set;
    fixture_dataset(&set, 103);
    make_model(&m, layers);
    CU_ASSERT_FATAL(dpt_oracle_create(&o, comm, &m, &set, 0, 103, 1.0, 1e-3) == DPT_OK);
    out->n = m.n_params;
    memcpy(out->theta, m.params, sizeof(dpt_real) * out->n);
    if (zero_start) memset(out->theta, 0, sizeof(dpt_real) * out->n);
    CU_ASSERT_FATAL(dpt_oracle_value_grad(&o, out->theta, &out->f0, g) == DPT_OK);
    out->tr = (trace){.f_start = out->f0, .f_last = out->f0, .monotone = 1, .finite = 1};
    out->status = dpt_solve(&o, out->theta, p, &out->report, on_iter, &out->tr);
    if (out->status != DPT_OK && world_rank == 0) printf("\n  solve: %s", dpt_error_message());
    dpt_oracle_destroy(&o);
    dpt_model_destroy(&m);
    dpt_dataset_free(&set);
}

/* 1 if theta is bit-identical on every rank of the world */
static int same_on_all_ranks(const dpt_real *theta, size_t n)
{
    static dpt_real lo[MAX_PARAMS], hi[MAX_PARAMS];
    MPI_Allreduce(theta, lo, (int)n, DPT_MPI_REAL, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(theta, hi, (int)n, DPT_MPI_REAL, MPI_MAX, MPI_COMM_WORLD);
    return memcmp(lo, hi, sizeof(dpt_real) * n) == 0;
}

static const char *method_name(dpt_solve_method m)
{
    static const char *const names[] = {"lbfgs", "cg-pr+", "cg-fr", "newton-cg"};
    return names[m];
}

static void softmax_params(dpt_solve_params *p, dpt_solve_method method)
{
    dpt_solve_params_init(p);
    p->method = method;
    p->gtol = GTOL;
    p->ftol = 0;
    p->max_iter = 5000;
    p->curvature = DPT_CURV_HESSIAN;
}

static void print_run(const char *what, const run_result *r)
{
    if (world_rank != 0) return;
    printf("\n  %-10s %s: %4d iterations, %5ld evals, %5ld products, f %.15g, |g|_inf %.2g (%s)",
           what, world_size > 1 ? "P ranks" : "1 rank ", r->report.iterations, r->report.evals,
           r->report.products, r->report.f, r->report.gnorm_inf, r->report.reason_name);
}

/* P ranks against one process (MPI_COMM_SELF). Sums reduced over ranks
 * differ from the serial sums in the last bit, and the methods' discrete
 * decisions (line-search branches, the CG stopping rule) amplify that near
 * convergence, so iterates are compared over a fixed prefix of iterations
 * (identical counts by construction, f after every iteration and the final
 * theta within SERIAL_TOL); the converged runs are compared by f. */
static void compare_with_serial(const run_result *conv, dpt_solve_params *p)
{
    static run_result a, b, serial;
    dpt_solve_params q = *p;
    q.max_iter = p->method == DPT_SOLVE_NEWTON_CG ? PREFIX_NEWTON : PREFIX;
    run(&a, MPI_COMM_WORLD, "4", 1, &q);
    /* the reference is plain serial L-BFGS: the replicated two-loop in one
     * process, against the history sharded over P ranks */
    dpt_solve_params q_serial = q;
    q_serial.lbfgs_replicated = 1;
    run(&b, MPI_COMM_SELF, "4", 1, &q_serial);
    double diff = 0, fdiff = 0;
    for (size_t i = 0; i < a.n; i++) diff = fmax(diff, fabs((double)a.theta[i] - b.theta[i]));
    for (int i = 0; i < a.tr.calls && i < MAX_TRACE; i++)
        fdiff = fmax(fdiff, fabs(a.tr.fs[i] - b.tr.fs[i]) / fabs(b.tr.fs[i]));
    run(&serial, MPI_COMM_SELF, "4", 1, p);
    if (world_rank == 0)
        printf("\n  %-10s after %d iterations: max |theta_P - theta_1| %.2g, f rel %.2g; converged "
               "1 rank: %d iterations, f %.15g",
               "", q.max_iter, diff, fdiff, serial.report.iterations, serial.report.f);
    CU_ASSERT(fixture_all_ranks(a.status == DPT_OK && b.status == DPT_OK && serial.status == DPT_OK));
    CU_ASSERT(fixture_all_ranks(a.report.iterations == q.max_iter && b.report.iterations == q.max_iter));
    CU_ASSERT(fixture_all_ranks(a.tr.calls == b.tr.calls));
#ifdef DPT_DOUBLE
    CU_ASSERT(fixture_all_ranks(diff < SERIAL_TOL && fdiff < 1e-13));
#else
    if (world_rank == 0 && p->method == DPT_SOLVE_LBFGS)
        printf("\n  (single precision: prefix iterates compared with a loose tolerance only)");
    CU_ASSERT(fixture_all_ranks(fdiff < 1e-5));
#endif
    CU_ASSERT(fixture_all_ranks(fabs(serial.report.f - conv->report.f) <= F_REL_TOL * fabs(conv->report.f)));
    CU_ASSERT(serial.report.gnorm_inf < G_TOL);
}

/* All methods on softmax regression from zero: same f, small gradient,
 * monotone f, P ranks = 1 rank. */
static void test_softmax_methods(void)
{
    static run_result dist[4];
    for (int k = 0; k < 4; k++) {
        dpt_solve_params p;
        softmax_params(&p, (dpt_solve_method)k);
        run(&dist[k], MPI_COMM_WORLD, "4", 1, &p);
        print_run(method_name((dpt_solve_method)k), &dist[k]);
        const run_result *r = &dist[k];
        CU_ASSERT(fixture_all_ranks(r->status == DPT_OK));
        CU_ASSERT(r->report.gnorm_inf < G_TOL);
        CU_ASSERT(r->report.reason == DPT_SOLVE_STOP_GTOL || r->report.reason == DPT_SOLVE_STOP_FTOL ||
                  r->report.reason == DPT_SOLVE_STOP_LINESEARCH);
        CU_ASSERT(r->tr.monotone && r->tr.finite);
        CU_ASSERT_EQUAL(r->tr.calls, r->report.iterations);
        CU_ASSERT(r->report.f < r->f0);
        CU_ASSERT(fabs(r->report.f - dist[0].report.f) <= F_REL_TOL * fabs(dist[0].report.f));
        CU_ASSERT(same_on_all_ranks(r->theta, r->n));
        if (k == DPT_SOLVE_NEWTON_CG) CU_ASSERT(r->report.products > 0);

        compare_with_serial(r, &p);
    }
}

/* A tanh MLP: L-BFGS and Newton-CG (Gauss-Newton and Hessian) lower f. */
static void test_mlp_nonconvex(void)
{
    static run_result r;
    const dpt_solve_method methods[] = {DPT_SOLVE_LBFGS, DPT_SOLVE_NEWTON_CG, DPT_SOLVE_NEWTON_CG};
    const dpt_curvature_kind kinds[] = {DPT_CURV_GAUSS_NEWTON, DPT_CURV_GAUSS_NEWTON, DPT_CURV_HESSIAN};
    for (int k = 0; k < 3; k++) {
        dpt_solve_params p;
        dpt_solve_params_init(&p);
        p.method = methods[k];
        p.curvature = kinds[k];
        p.max_iter = 30;
        run(&r, MPI_COMM_WORLD, "6 tanh, 4", 0, &p);
        if (world_rank == 0)
            printf("\n  MLP %s%s: f %.6g -> %.6g in %d iterations (%ld evals, %ld products, %s)",
                   method_name(p.method), k == 2 ? " (Hessian)" : k == 1 ? " (GN)" : "", r.f0,
                   r.report.f, r.report.iterations, r.report.evals, r.report.products,
                   r.report.reason_name);
        CU_ASSERT(fixture_all_ranks(r.status == DPT_OK));
        CU_ASSERT(isfinite(r.report.f) && r.report.f < 0.9 * r.f0);
        CU_ASSERT(r.tr.monotone && r.tr.finite);
        int finite = 1;
        for (size_t i = 0; i < r.n; i++) finite &= isfinite((double)r.theta[i]);
        CU_ASSERT(finite);
        CU_ASSERT(same_on_all_ranks(r.theta, r.n));
    }
}

/* Limits and bad parameters. */
static void test_limits_and_args(void)
{
    static run_result r;
    dpt_solve_params p;
    softmax_params(&p, DPT_SOLVE_LBFGS);
    p.max_iter = 3;
    run(&r, MPI_COMM_WORLD, "4", 1, &p);
    CU_ASSERT(r.status == DPT_OK && r.report.reason == DPT_SOLVE_STOP_MAX_ITER);
    CU_ASSERT_EQUAL(r.report.iterations, 3);
    softmax_params(&p, DPT_SOLVE_CG_PR);
    p.max_evals = 5;
    run(&r, MPI_COMM_WORLD, "4", 1, &p);
    CU_ASSERT(r.status == DPT_OK && r.report.reason == DPT_SOLVE_STOP_MAX_EVALS);
    CU_ASSERT(r.report.evals >= 5);
    softmax_params(&p, DPT_SOLVE_LBFGS);
    p.lbfgs_m = 0;
    run(&r, MPI_COMM_WORLD, "4", 1, &p);
    CU_ASSERT_EQUAL(r.status, DPT_ERR_ARG);
    softmax_params(&p, DPT_SOLVE_NEWTON_CG);
    p.lambda0 = -1;
    run(&r, MPI_COMM_WORLD, "4", 1, &p);
    CU_ASSERT_EQUAL(r.status, DPT_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dpt_solve_stop_name(DPT_SOLVE_STOP_GTOL), "gradient tolerance");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("solve", NULL, NULL);
    CU_add_test(suite, "softmax regression: all methods, same minimum, P ranks = 1 rank",
                test_softmax_methods);
    CU_add_test(suite, "tanh MLP: L-BFGS and Newton-CG lower f", test_mlp_nonconvex);
    CU_add_test(suite, "limits and bad parameters", test_limits_and_args);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
