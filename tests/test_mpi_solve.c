/* The second-order solvers on the distributed oracle: on softmax regression
 * (strictly convex with L2) L-BFGS, nonlinear CG (PR+ and FR) and
 * Newton-CG reach the same minimum; f decreases at every iteration; a
 * P-rank run follows the 1-rank run (MPI_COMM_SELF) iterate for iterate;
 * every rank ends with the same theta, bit for bit; L-BFGS with its history
 * sharded over P ranks follows serial two-loop L-BFGS in one process. On a small tanh MLP
 * (nonconvex) L-BFGS and Newton-CG lower the loss without NaN. Newton-CG's
 * CG forcing is the residual rule on the convex problem and Martens' rule on
 * the MLP. Run under
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
#define SERIAL_TOL_ANY 1e-12
#else
#define GTOL 1e-8
#define F_REL_TOL 1e-4
#define G_TOL 1e-3
#define PREFIX 10
#define PREFIX_NEWTON 3
#define SERIAL_TOL_ANY 1e-4
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
    int spectra, first_negative; /* iterations with a spectrum; negative eigenvalues at the first */
    double first_eig_min, first_eig_max;
    double fs[MAX_TRACE]; /* f after each iteration */
} trace;

static void on_iter(const dpt_solve_iter *it, void *user)
{
    trace *t = user;
    if (!(it->f <= t->f_last)) t->monotone = 0;
    if (!isfinite(it->f) || !isfinite(it->gnorm_inf)) t->finite = 0;
    if (it->iter != t->last_iter + 1) t->monotone = 0;
    t->f_last = it->f, t->last_iter = it->iter;
    if (it->has_spectrum && t->spectra++ == 0)
        t->first_negative = it->negative, t->first_eig_min = it->eig_min, t->first_eig_max = it->eig_max;
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
    static const char *const names[] = {"lbfgs", "cg-pr+", "cg-fr", "newton-cg", "newton", "bfgs"};
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

/* max |theta_a - theta_b| of two softmax-regression runs (model "4": the
 * 4 biases last), up to a shift of all biases: softmax is invariant to it,
 * f and g do not see it, and the Newton step's component along it is
 * rounding error over the damping (about 1e-8 in double). */
static double softmax_theta_diff(const run_result *a, const run_result *b)
{
    const size_t n = a->n, K = 4;
    double shift = 0, diff = 0;
    for (size_t i = n - K; i < n; i++) shift += ((double)a->theta[i] - b->theta[i]) / K;
    for (size_t i = 0; i < n; i++)
        diff = fmax(diff, fabs((double)a->theta[i] - b->theta[i] - (i >= n - K ? shift : 0)));
    return diff;
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
    q.max_iter = p->method == DPT_SOLVE_NEWTON_CG || p->method == DPT_SOLVE_NEWTON ? PREFIX_NEWTON : PREFIX;
    run(&a, MPI_COMM_WORLD, "4", 1, &q);
    /* the reference is plain serial L-BFGS: the replicated two-loop in one
     * process, against the history sharded over P ranks */
    dpt_solve_params q_serial = q;
    q_serial.lbfgs_replicated = 1;
    run(&b, MPI_COMM_SELF, "4", 1, &q_serial);
    double diff = softmax_theta_diff(&a, &b), fdiff = 0;
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
    static run_result dist[6];
    for (int k = 0; k < 6; k++) {
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
        if (k == DPT_SOLVE_NEWTON) CU_ASSERT(r->report.iterations <= 15); /* quadratic convergence */
        if (k == DPT_SOLVE_BFGS || k == DPT_SOLVE_NEWTON) CU_ASSERT(r->report.state_bytes > 0);

        compare_with_serial(r, &p);
    }
}

/* Newton on softmax regression, where G = H: the matrix assembled from
 * factored Jacobian rows (p?syrk) and the one assembled column by column
 * from Hv products give the same iterates; the Cholesky and the truncated
 * CG linear solvers reach the same minimum; the spectrum is reported. */
static void test_newton_variants(void)
{
    static run_result hess, gn, cg, pcg, hf;
    dpt_solve_params p;
    softmax_params(&p, DPT_SOLVE_NEWTON);
    p.max_iter = 3;
    run(&hess, MPI_COMM_WORLD, "4", 1, &p);
    p.curvature = DPT_CURV_GAUSS_NEWTON;
    run(&gn, MPI_COMM_WORLD, "4", 1, &p);
    double diff = softmax_theta_diff(&gn, &hess);
    if (world_rank == 0) printf("\n  newton, 3 iterations: |theta_GN - theta_H| %.2g", diff);
    CU_ASSERT(fixture_all_ranks(hess.status == DPT_OK && gn.status == DPT_OK));
    CU_ASSERT(diff < SERIAL_TOL_ANY);
    CU_ASSERT(hess.report.products >= 3 * (long)hess.n && gn.report.products == 0);

    softmax_params(&p, DPT_SOLVE_NEWTON);
    p.curvature = DPT_CURV_GAUSS_NEWTON;
    p.newton_solver = DPT_NEWTON_CG;
    p.spectrum = 1;
    run(&cg, MPI_COMM_WORLD, "4", 1, &p);
    /* PCG on exact products, preconditioned by a matrix assembled from half
     * of the samples every third iteration */
    softmax_params(&p, DPT_SOLVE_NEWTON);
    p.curvature = DPT_CURV_GAUSS_NEWTON;
    p.newton_solver = DPT_NEWTON_PCG;
    p.newton_fraction = 0.5;
    p.newton_refresh = 3;
    p.newton_alpha0 = 1e-3;
    run(&pcg, MPI_COMM_WORLD, "4", 1, &p);
    print_run("newton-pcg", &pcg);
    CU_ASSERT(fixture_all_ranks(pcg.status == DPT_OK));
    CU_ASSERT(pcg.report.gnorm_inf < G_TOL && pcg.report.iterations <= 20 && pcg.report.products > 0);
    CU_ASSERT(same_on_all_ranks(pcg.theta, pcg.n));
    /* Hessian-free Newton-CG with Martens' diagonal preconditioner */
    softmax_params(&p, DPT_SOLVE_NEWTON_CG);
    p.cg_precondition = 1;
    run(&hf, MPI_COMM_WORLD, "4", 1, &p);
    print_run("newton-cg, diagonal preconditioner", &hf);
    CU_ASSERT(fixture_all_ranks(hf.status == DPT_OK));
    CU_ASSERT(hf.report.gnorm_inf < G_TOL);
    CU_ASSERT(same_on_all_ranks(hf.theta, hf.n));
    softmax_params(&p, DPT_SOLVE_LBFGS);
    run(&gn, MPI_COMM_WORLD, "4", 1, &p);
    CU_ASSERT(fabs(pcg.report.f - gn.report.f) <= F_REL_TOL * fabs(gn.report.f));
    CU_ASSERT(fabs(hf.report.f - gn.report.f) <= F_REL_TOL * fabs(gn.report.f));
    print_run("newton-cg (dense)", &cg);
    CU_ASSERT(fixture_all_ranks(cg.status == DPT_OK));
    CU_ASSERT(cg.report.gnorm_inf < G_TOL);
    /* convex: no negative eigenvalue; lambda_min is the bias shift's 0 */
    CU_ASSERT(cg.tr.spectra == cg.report.iterations && cg.tr.first_negative == 0);
    CU_ASSERT(cg.tr.first_eig_max > 0 && fabs(cg.tr.first_eig_min) < 1e-6 * cg.tr.first_eig_max);
    CU_ASSERT(fabs(cg.report.f - gn.report.f) <= F_REL_TOL * fabs(gn.report.f));
    CU_ASSERT(same_on_all_ranks(cg.theta, cg.n));
}

/* A tanh MLP (nonconvex): L-BFGS, Newton-CG and Newton (Gauss-Newton and
 * Hessian; the Hessian is indefinite away from a minimum, so the damping
 * is raised) and BFGS lower f without NaN. */
static void test_mlp_nonconvex(void)
{
    static run_result r;
    const dpt_solve_method methods[] = {DPT_SOLVE_LBFGS, DPT_SOLVE_NEWTON_CG, DPT_SOLVE_NEWTON_CG,
                                        DPT_SOLVE_NEWTON, DPT_SOLVE_NEWTON, DPT_SOLVE_BFGS};
    const dpt_curvature_kind kinds[] = {DPT_CURV_GAUSS_NEWTON, DPT_CURV_GAUSS_NEWTON, DPT_CURV_HESSIAN,
                                        DPT_CURV_GAUSS_NEWTON, DPT_CURV_HESSIAN, DPT_CURV_GAUSS_NEWTON};
    for (int k = 0; k < 6; k++) {
        dpt_solve_params p;
        dpt_solve_params_init(&p);
        p.method = methods[k];
        p.curvature = kinds[k];
        p.max_iter = 30;
        p.spectrum = methods[k] == DPT_SOLVE_NEWTON;
        run(&r, MPI_COMM_WORLD, "6 tanh, 4", 0, &p);
        if (world_rank == 0)
            printf("\n  MLP %s%s: f %.6g -> %.6g in %d iterations (%ld evals, %ld products, %s)",
                   method_name(p.method), kinds[k] == DPT_CURV_HESSIAN ? " (Hessian)" : k == 1 || k == 3 ? " (GN)" : "", r.f0,
                   r.report.f, r.report.iterations, r.report.evals, r.report.products,
                   r.report.reason_name);
        CU_ASSERT(fixture_all_ranks(r.status == DPT_OK));
        CU_ASSERT(isfinite(r.report.f) && r.report.f < 0.9 * r.f0);
        CU_ASSERT(r.tr.monotone && r.tr.finite);
        int finite = 1;
        for (size_t i = 0; i < r.n; i++) finite &= isfinite((double)r.theta[i]);
        CU_ASSERT(finite);
        CU_ASSERT(same_on_all_ranks(r.theta, r.n));
        if (methods[k] == DPT_SOLVE_NEWTON && world_rank == 0)
            printf(" eigenvalues at the start [%.3g, %.3g], %d negative", r.tr.first_eig_min,
                   r.tr.first_eig_max, r.tr.first_negative);
        /* G is PSD; the Hessian of the tanh MLP at its start is indefinite */
        if (methods[k] == DPT_SOLVE_NEWTON)
            CU_ASSERT(kinds[k] == DPT_CURV_HESSIAN ? r.tr.first_negative > 0 : r.tr.first_negative == 0);
    }
}

/* Newton-CG's CG forcing: on softmax regression (convex) the default picks
 * the residual rule and on the tanh MLP the progress rule (the same
 * iterates as asking for them); both rules reach the softmax minimum, and
 * damping 0 with the residual rule needs no more products than Martens'
 * rule. */
static void test_newton_cg_forcing(void)
{
    static run_result aut, res, prog, mlp_auto, mlp_prog;
    dpt_solve_params p;
    softmax_params(&p, DPT_SOLVE_NEWTON_CG);
    p.lambda0 = 0;
    run(&aut, MPI_COMM_WORLD, "4", 1, &p);
    p.cg_forcing = DPT_CG_FORCING_RESIDUAL;
    run(&res, MPI_COMM_WORLD, "4", 1, &p);
    p.cg_forcing = DPT_CG_FORCING_PROGRESS;
    run(&prog, MPI_COMM_WORLD, "4", 1, &p);
    print_run("newton-cg, damping 0, residual rule", &res);
    print_run("newton-cg, damping 0, progress rule", &prog);
    CU_ASSERT(fixture_all_ranks(aut.status == DPT_OK && res.status == DPT_OK && prog.status == DPT_OK));
    CU_ASSERT(aut.report.products == res.report.products && aut.report.f == res.report.f);
    CU_ASSERT(memcmp(aut.theta, res.theta, sizeof(dpt_real) * res.n) == 0);
    CU_ASSERT(res.report.gnorm_inf < G_TOL && prog.report.gnorm_inf < G_TOL);
    CU_ASSERT(fabs(res.report.f - prog.report.f) <= F_REL_TOL * fabs(prog.report.f));
    CU_ASSERT(res.report.products <= prog.report.products);
    CU_ASSERT(same_on_all_ranks(res.theta, res.n));

    dpt_solve_params_init(&p);
    p.method = DPT_SOLVE_NEWTON_CG;
    p.max_iter = 10;
    run(&mlp_auto, MPI_COMM_WORLD, "6 tanh, 4", 0, &p);
    p.cg_forcing = DPT_CG_FORCING_PROGRESS;
    run(&mlp_prog, MPI_COMM_WORLD, "6 tanh, 4", 0, &p);
    CU_ASSERT(fixture_all_ranks(mlp_auto.status == DPT_OK && mlp_prog.status == DPT_OK));
    CU_ASSERT(mlp_auto.report.products == mlp_prog.report.products && mlp_auto.report.f == mlp_prog.report.f);
    p.cg_forcing = (dpt_cg_forcing)7;
    run(&mlp_prog, MPI_COMM_WORLD, "6 tanh, 4", 0, &p);
    CU_ASSERT_EQUAL(mlp_prog.status, DPT_ERR_ARG);
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
    softmax_params(&p, DPT_SOLVE_NEWTON); /* refresh > 1 needs pcg */
    p.newton_refresh = 2;
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
    CU_add_test(suite, "newton: syrk and column assembly agree, CG and Cholesky solves",
                test_newton_variants);
    CU_add_test(suite, "tanh MLP: L-BFGS and Newton-CG lower f", test_mlp_nonconvex);
    CU_add_test(suite, "newton-cg: CG forcing by convexity", test_newton_cg_forcing);
    CU_add_test(suite, "limits and bad parameters", test_limits_and_args);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
