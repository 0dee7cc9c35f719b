/* Unit tests of the optimizers (src/optim/sgd.c) and learning-rate
 * schedules (src/optim/schedule.c) against values worked out by hand, or by
 * running the textbook algorithm independently in double precision.
 *
 * References: Goodfellow, Bengio, Courville, Deep Learning (2016),
 * algorithms 8.1 (SGD), 8.2 (momentum), 8.3 (Nesterov momentum) and
 * equation 8.14 (linear decay of the learning rate). */
#include "cunit_util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/optim.h"

/* Relative tolerance of a few dpt_real roundings. */
#ifdef DPT_DOUBLE
#define REL_TOL 1e-12
#else
#define REL_TOL 1e-5
#endif

/* Asserts |got - want| <= REL_TOL max(|want|, floor). The floor keeps
 * values that are zero by hand (or pass near zero) from demanding an
 * absolute accuracy far below the rounding of the O(1) terms they came
 * from. */
#define ASSERT_REL(got, want, floor)                                                            \
    CU_ASSERT_DOUBLE_EQUAL((got), (want), REL_TOL * fmax(fabs((double)(want)), (floor)))

/* ================================================================ helpers */

static dpt_optim_params make_params(dpt_optim_method method, double lr, double momentum,
                                    double weight_decay)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.method = method;
    p.lr = lr;
    p.momentum = momentum;
    p.weight_decay = weight_decay;
    p.schedule = DPT_SCHED_CONSTANT;
    return p;
}

static void assert_vec3(const dpt_real *got, double w0, double w1, double w2)
{
    ASSERT_REL(got[0], w0, 1.0);
    ASSERT_REL(got[1], w1, 1.0);
    ASSERT_REL(got[2], w2, 1.0);
}

/* The quadratic f(theta) = 1/2 sum_i a_i theta_i^2 has gradient a_i theta_i
 * and its minimum at 0. Curvatures spread over a factor 4. */
enum { QN = 3 };
static const double quad_a[QN] = {1.0, 0.5, 2.0};
static const double quad_theta0[QN] = {1.0, -2.0, 0.5};

static void quad_grad(const dpt_real *theta, dpt_real *grad)
{
    for (int i = 0; i < QN; i++) grad[i] = (dpt_real)(quad_a[i] * theta[i]);
}

/* ================================================================ SGD (8.1) */

/* theta <- theta - eps g, eps = 0.1, theta0 = (1, -2, 0.5):
 *   g1 = (0.5, -1, 2): theta1 = (1 - 0.05, -2 + 0.1, 0.5 - 0.2) = (0.95, -1.9, 0.3)
 *   g2 = (1, 0, -1):   theta2 = (0.95 - 0.1, -1.9, 0.3 + 0.1) = (0.85, -1.9, 0.4)
 *   g3 = (-2, 4, 0.5): theta3 = (0.85 + 0.2, -1.9 - 0.4, 0.4 - 0.05) = (1.05, -2.3, 0.35) */
static void test_sgd_plain(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 0.1, 0.9, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g1[3] = {0.5, -1, 2}, g2[3] = {1, 0, -1}, g3[3] = {-2, 4, 0.5};
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(theta, 0.95, -1.9, 0.3);
    dpt_optimizer_step(&opt, theta, g2);
    assert_vec3(theta, 0.85, -1.9, 0.4);
    dpt_optimizer_step(&opt, theta, g3);
    assert_vec3(theta, 1.05, -2.3, 0.35);
    dpt_optimizer_destroy(&opt);
}

/* Weight decay lambda = 0.5 adds lambda theta to the gradient
 * (g_eff = g + lambda theta), eps = 0.1, theta0 = (1, -2, 0.5):
 *   g1 = (0.5, -1, 2): g_eff = (0.5 + 0.5, -1 - 1, 2 + 0.25) = (1, -2, 2.25)
 *                      theta1 = (1 - 0.1, -2 + 0.2, 0.5 - 0.225) = (0.9, -1.8, 0.275)
 *   g2 = (1, 0, -1):   g_eff = (1 + 0.45, 0 - 0.9, -1 + 0.1375) = (1.45, -0.9, -0.8625)
 *                      theta2 = (0.9 - 0.145, -1.8 + 0.09, 0.275 + 0.08625)
 *                             = (0.755, -1.71, 0.36125) */
static void test_sgd_weight_decay(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 0.1, 0.0, 0.5);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g1[3] = {0.5, -1, 2}, g2[3] = {1, 0, -1};
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(theta, 0.9, -1.8, 0.275);
    dpt_optimizer_step(&opt, theta, g2);
    assert_vec3(theta, 0.755, -1.71, 0.36125);
    dpt_optimizer_destroy(&opt);
}

/* Plain SGD keeps no velocity; the gradient array must not be modified. */
static void test_sgd_no_velocity_const_grad(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 0.1, 0.9, 0.5);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    CU_ASSERT_PTR_NULL(opt.velocity);
    CU_ASSERT_EQUAL(opt.n, 3);
    dpt_real theta[3] = {1, -2, 0.5}, g[3] = {0.5, -1, 2};
    dpt_optimizer_step(&opt, theta, g);
    CU_ASSERT(g[0] == (dpt_real)0.5 && g[1] == (dpt_real)-1 && g[2] == (dpt_real)2);
    dpt_optimizer_destroy(&opt);
}

/* ================================================================ momentum (8.2) */

/* v <- alpha v - eps g; theta <- theta + v, alpha = 0.9, eps = 0.1,
 * v0 = 0, theta0 = (1, -2, 0.5):
 *   g1 = (1, -1, 0.5): v1 = (-0.1, 0.1, -0.05)
 *                      theta1 = (0.9, -1.9, 0.45)
 *   g2 = (1, -1, 0.5): v2 = (-0.09 - 0.1, 0.09 + 0.1, -0.045 - 0.05) = (-0.19, 0.19, -0.095)
 *                      theta2 = (0.71, -1.71, 0.355)
 *   g3 = (0, 2, -1):   v3 = (-0.171 - 0, 0.171 - 0.2, -0.0855 + 0.1) = (-0.171, -0.029, 0.0145)
 *                      theta3 = (0.539, -1.739, 0.3695) */
static void test_momentum_three_steps(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_MOMENTUM, 0.1, 0.9, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(opt.velocity);
    assert_vec3(opt.velocity, 0, 0, 0); /* v0 = 0 */
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g1[3] = {1, -1, 0.5}, g3[3] = {0, 2, -1};
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(opt.velocity, -0.1, 0.1, -0.05);
    assert_vec3(theta, 0.9, -1.9, 0.45);
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(opt.velocity, -0.19, 0.19, -0.095);
    assert_vec3(theta, 0.71, -1.71, 0.355);
    dpt_optimizer_step(&opt, theta, g3);
    assert_vec3(opt.velocity, -0.171, -0.029, 0.0145);
    assert_vec3(theta, 0.539, -1.739, 0.3695);
    dpt_optimizer_destroy(&opt);
}

/* Momentum with weight decay lambda = 0.1, alpha = 0.9, eps = 0.1,
 * theta0 = (1, -2, 0.5):
 *   g1 = (1, -1, 0.5): g_eff = (1.1, -1.2, 0.55); v1 = (-0.11, 0.12, -0.055)
 *                      theta1 = (0.89, -1.88, 0.445)
 *   g2 = (0, 0, 0):    g_eff = 0.1 theta1 = (0.089, -0.188, 0.0445)
 *                      v2 = (-0.099 - 0.0089, 0.108 + 0.0188, -0.0495 - 0.00445)
 *                         = (-0.1079, 0.1268, -0.05395)
 *                      theta2 = (0.7821, -1.7532, 0.39105) */
static void test_momentum_weight_decay(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_MOMENTUM, 0.1, 0.9, 0.1);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g1[3] = {1, -1, 0.5}, zero[3] = {0, 0, 0};
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(theta, 0.89, -1.88, 0.445);
    dpt_optimizer_step(&opt, theta, zero);
    assert_vec3(opt.velocity, -0.1079, 0.1268, -0.05395);
    assert_vec3(theta, 0.7821, -1.7532, 0.39105);
    dpt_optimizer_destroy(&opt);
}

/* With alpha = 0 momentum is plain SGD: v = -eps g, theta += v. */
static void test_momentum_zero_is_sgd(void)
{
    dpt_optim_params pm = make_params(DPT_OPTIM_MOMENTUM, 0.05, 0.0, 0.01);
    dpt_optim_params ps = make_params(DPT_OPTIM_SGD, 0.05, 0.0, 0.01);
    dpt_optimizer om, os;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&om, &pm, QN), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&os, &ps, QN), DPT_OK);
    dpt_real tm[QN], ts[QN], gm[QN], gs[QN];
    for (int i = 0; i < QN; i++) tm[i] = ts[i] = (dpt_real)quad_theta0[i];
    for (int k = 0; k < 20; k++) {
        quad_grad(tm, gm);
        quad_grad(ts, gs);
        dpt_optimizer_step(&om, tm, gm);
        dpt_optimizer_step(&os, ts, gs);
    }
    for (int i = 0; i < QN; i++) ASSERT_REL(tm[i], ts[i], 1e-3);
    dpt_optimizer_destroy(&om);
    dpt_optimizer_destroy(&os);
}

/* ================================================================ Nesterov (8.3) */

/* The book's algorithm 8.3 in double on the quadratic (plus the L2 term
 * lambda/2 |theta|^2), one step:
 *   interim  theta~ = theta + alpha v
 *   gradient g = (a_i + lambda) theta~_i
 *   v <- alpha v - eps g;  theta <- theta + v */
static void book_nesterov_step(double *theta, double *v, double eps, double alpha, double lambda)
{
    for (int i = 0; i < QN; i++) {
        double interim = theta[i] + alpha * v[i];
        double g = (quad_a[i] + lambda) * interim;
        v[i] = alpha * v[i] - eps * g;
        theta[i] += v[i];
    }
}

/* The implementation stores phi = theta + alpha v (Bengio et al. 2013) and
 * takes the gradient at its stored parameters, so it is fed a_i phi_i and
 * must track phi_k = theta_k + alpha v_k of the book at every step. */
static void check_nesterov_against_book(double eps, double alpha, double lambda, int steps)
{
    dpt_optim_params p = make_params(DPT_OPTIM_NESTEROV, eps, alpha, lambda);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, QN), DPT_OK);
    double theta[QN], v[QN] = {0};
    dpt_real phi[QN], grad[QN];
    for (int i = 0; i < QN; i++) phi[i] = (dpt_real)(theta[i] = quad_theta0[i]); /* v0 = 0 */
    double worst = 0;
    for (int k = 1; k <= steps; k++) {
        book_nesterov_step(theta, v, eps, alpha, lambda);
        quad_grad(phi, grad); /* weight decay is the optimizer's job */
        dpt_optimizer_step(&opt, phi, grad);
        for (int i = 0; i < QN; i++) {
            double want = theta[i] + alpha * v[i];
            double err = fabs(phi[i] - want) / fmax(fabs(want), 1e-2);
            worst = fmax(worst, err);
            ASSERT_REL(phi[i], want, 1e-2);
        }
    }
    if (worst > REL_TOL) printf("\n  nesterov: worst relative error %.3g\n", worst);
    dpt_optimizer_destroy(&opt);
}

static void test_nesterov_matches_book(void)
{
    check_nesterov_against_book(0.1, 0.9, 0.0, 10);
    check_nesterov_against_book(0.3, 0.5, 0.0, 10);
}

static void test_nesterov_weight_decay_matches_book(void)
{
    check_nesterov_against_book(0.1, 0.9, 0.2, 10);
}

/* The first step by hand (v0 = 0, so phi0 = theta0): g = a theta0,
 * v1 = -eps g, theta1 = theta0 + v1, phi1 = theta1 + alpha v1
 *    = theta0 - (1 + alpha) eps a theta0.
 * With eps = 0.1, alpha = 0.9, a = (1, 0.5, 2), theta0 = (1, -2, 0.5):
 *   phi1 = (1 - 0.19, -2 + 0.19, 0.5 - 0.19) = (0.81, -1.81, 0.31)
 * and the stored velocity is v1 = (-0.1, 0.1, -0.1). */
static void test_nesterov_first_step_by_hand(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_NESTEROV, 0.1, 0.9, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, QN), DPT_OK);
    dpt_real phi[QN] = {1, -2, 0.5}, grad[QN];
    quad_grad(phi, grad);
    dpt_optimizer_step(&opt, phi, grad);
    assert_vec3(phi, 0.81, -1.81, 0.31);
    assert_vec3(opt.velocity, -0.1, 0.1, -0.1);
    dpt_optimizer_destroy(&opt);
}

/* ================================================================ convergence */

/* Runs `steps` steps on the quadratic from quad_theta0 with the gradient at
 * the stored parameters; returns max_i |theta_i|. */
static double run_on_quadratic(dpt_optim_method method, double eps, double alpha, int steps)
{
    dpt_optim_params p = make_params(method, eps, alpha, 0.0);
    dpt_optimizer opt;
    if (dpt_optimizer_create(&opt, &p, QN) != DPT_OK) return INFINITY;
    dpt_real theta[QN], grad[QN];
    for (int i = 0; i < QN; i++) theta[i] = (dpt_real)quad_theta0[i];
    for (int k = 0; k < steps; k++) {
        quad_grad(theta, grad);
        dpt_optimizer_step(&opt, theta, grad);
    }
    dpt_optimizer_destroy(&opt);
    double largest = 0;
    for (int i = 0; i < QN; i++) largest = fmax(largest, fabs(theta[i]));
    return largest;
}

/* SGD contracts each coordinate by |1 - eps a_i| <= 0.95 per step; heavy
 * ball momentum with alpha = 0.9 by about sqrt(alpha) ~ 0.95. After 500
 * steps both are below 1e-9 of the start in exact arithmetic; 1e-6 leaves
 * room for float rounding. */
static void test_convergence(void)
{
    CU_ASSERT(run_on_quadratic(DPT_OPTIM_SGD, 0.1, 0.0, 500) < 1e-6);
    CU_ASSERT(run_on_quadratic(DPT_OPTIM_MOMENTUM, 0.1, 0.9, 500) < 1e-6);
    CU_ASSERT(run_on_quadratic(DPT_OPTIM_NESTEROV, 0.1, 0.9, 500) < 1e-6);
    /* eps = 1.1 > 2 / max a = 1 makes SGD diverge on the a = 2 coordinate
     * (factor |1 - 2.2| = 1.2): the test above can tell the difference. */
    CU_ASSERT(run_on_quadratic(DPT_OPTIM_SGD, 1.1, 0.0, 50) > 1.0);
}

/* ================================================================ schedules */

/* eq. 8.14 with eps_0 = 0.1, eps_tau = 0.001, tau = 100:
 *   k = 0:   0.1
 *   k = 25:  0.75 * 0.1 + 0.25 * 0.001 = 0.075 + 0.00025 = 0.07525
 *   k = 50:  0.5 * 0.1 + 0.5 * 0.001 = 0.05 + 0.0005 = 0.0505
 *   k = 99:  0.01 * 0.1 + 0.99 * 0.001 = 0.001 + 0.00099 = 0.00199
 *   k = 100, 200, and far beyond: eps_tau = 0.001 */
static void test_linear_schedule(void)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.schedule = DPT_SCHED_LINEAR;
    p.lr = 0.1;
    p.lr_final = 0.001;
    p.decay_steps = 100;
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 0), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 25), 0.07525, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 50), 0.0505, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 99), 0.00199, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 100), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 200), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1000000), 0.001, 1e-15);
}

/* Binary fractions make every product exact, so equality is exact too:
 * eps_0 = 1, eps_tau = 0.5, tau = 8:
 *   k = 0: 1;  k = 2: 0.75 + 0.125 = 0.875;  k = 4: 0.5 + 0.25 = 0.75;
 *   k = 8: 0.5;  k = 16: 0.5 */
static void test_linear_schedule_exact(void)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.schedule = DPT_SCHED_LINEAR;
    p.lr = 1.0;
    p.lr_final = 0.5;
    p.decay_steps = 8;
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 0), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 2), 0.875);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 4), 0.75);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 8), 0.5);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 16), 0.5);
}

/* The constant schedule ignores lr_final and decay_steps. */
static void test_constant_schedule(void)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.schedule = DPT_SCHED_CONSTANT;
    p.lr = 0.3;
    p.lr_final = 0.001;
    p.decay_steps = 10;
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 0), 0.3);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 5), 0.3);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 10), 0.3);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 1000000), 0.3);
}

/* Each step returns the rate it used and advances opt.step, which feeds the
 * schedule. Linear, eps_0 = 0.1, eps_tau = 0.001, tau = 4:
 *   k = 0: 0.1;  k = 1: 0.075 + 0.00025 = 0.07525;  k = 2: 0.05 + 0.0005 = 0.0505
 *   k = 3: 0.025 + 0.00075 = 0.02575;  k = 4, 5: 0.001
 * With SGD and gradient 1 on theta0 = 0 (no decay), theta after step k is
 * minus the sum of those rates. */
static void test_step_returns_lr_and_counts(void)
{
    static const double want[6] = {0.1, 0.07525, 0.0505, 0.02575, 0.001, 0.001};
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 0.1, 0.0, 0.0);
    p.schedule = DPT_SCHED_LINEAR;
    p.lr_final = 0.001;
    p.decay_steps = 4;
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 1), DPT_OK);
    CU_ASSERT_EQUAL(opt.step, 0);
    dpt_real theta[1] = {0};
    const dpt_real g[1] = {1};
    double sum = 0;
    for (int k = 0; k < 6; k++) {
        CU_ASSERT_DOUBLE_EQUAL(dpt_optimizer_step(&opt, theta, g), want[k], 1e-15);
        CU_ASSERT_EQUAL(opt.step, k + 1);
        sum += want[k];
        ASSERT_REL(theta[0], -sum, 1.0);
    }
    dpt_optimizer_destroy(&opt);
}

/* ================================================================ parameters */

static dpt_status try_create(double lr, double momentum, double weight_decay)
{
    dpt_optim_params p = make_params(DPT_OPTIM_MOMENTUM, lr, momentum, weight_decay);
    dpt_optimizer opt;
    dpt_status st = dpt_optimizer_create(&opt, &p, 4);
    if (st == DPT_OK) dpt_optimizer_destroy(&opt);
    return st;
}

static void test_create_rejects_bad_params(void)
{
    CU_ASSERT_EQUAL(try_create(0.0, 0.9, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(-0.1, 0.9, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(NAN, 0.9, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(0.1, 1.0, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(0.1, 1.5, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(0.1, -0.1, 0.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(try_create(0.1, 0.9, -1e-4), DPT_ERR_ARG);
    /* The edges of the valid ranges are accepted. */
    CU_ASSERT_EQUAL(try_create(1e-9, 0.0, 0.0), DPT_OK);
    CU_ASSERT_EQUAL(try_create(0.1, 0.999, 10.0), DPT_OK);
}

/* A rejection records a message; the optimizer is left empty, so that
 * destroying it is harmless. */
static void test_create_failure_state(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_NESTEROV, -1.0, 0.9, 0.0);
    dpt_optimizer opt;
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_optimizer_create(&opt, &p, 4), DPT_ERR_ARG);
    CU_ASSERT(strlen(dpt_error_message()) > 0);
    CU_ASSERT_PTR_NULL(opt.velocity);
    dpt_optimizer_destroy(&opt);
}

/* Defaults as documented in optim.h. */
static void test_params_defaults_and_names(void)
{
    dpt_optim_params p;
    memset(&p, 0xff, sizeof p);
    dpt_optim_params_init(&p);
    CU_ASSERT_EQUAL(p.method, DPT_OPTIM_SGD);
    CU_ASSERT_DOUBLE_EQUAL(p.lr, 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(p.momentum, 0.9, 1e-15);
    CU_ASSERT_EQUAL(p.weight_decay, 0.0);
    CU_ASSERT_EQUAL(p.schedule, DPT_SCHED_CONSTANT);
    CU_ASSERT_DOUBLE_EQUAL(p.lr_final, 0.0001, 1e-15);
    CU_ASSERT_EQUAL(p.decay_steps, 1);
    CU_ASSERT_STRING_EQUAL(dpt_optim_method_name(DPT_OPTIM_SGD), "sgd");
    CU_ASSERT_STRING_EQUAL(dpt_optim_method_name(DPT_OPTIM_MOMENTUM), "momentum");
    CU_ASSERT_STRING_EQUAL(dpt_optim_method_name(DPT_OPTIM_NESTEROV), "nesterov");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_CONSTANT), "constant");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_LINEAR), "linear");
}

/* ================================================================ main */

static int register_suites(void)
{
    static const dpt_test updates[] = {
        {"SGD", test_sgd_plain},
        {"SGD with weight decay", test_sgd_weight_decay},
        {"SGD: no velocity, gradient untouched", test_sgd_no_velocity_const_grad},
        {"momentum, 3 steps", test_momentum_three_steps},
        {"momentum with weight decay", test_momentum_weight_decay},
        {"momentum 0 is SGD", test_momentum_zero_is_sgd},
        {"Nesterov matches algorithm 8.3", test_nesterov_matches_book},
        {"Nesterov with weight decay matches 8.3", test_nesterov_weight_decay_matches_book},
        {"Nesterov first step by hand", test_nesterov_first_step_by_hand},
        {"convergence on a quadratic", test_convergence},
    };
    static const dpt_test schedules[] = {
        {"linear (eq. 8.14)", test_linear_schedule},
        {"linear, exact binary values", test_linear_schedule_exact},
        {"constant", test_constant_schedule},
        {"step returns lr and counts", test_step_returns_lr_and_counts},
    };
    static const dpt_test params[] = {
        {"create rejects bad parameters", test_create_rejects_bad_params},
        {"failed create leaves it empty", test_create_failure_state},
        {"defaults and names", test_params_defaults_and_names},
    };
    return DPT_ADD_SUITE("updates", updates) ||
           DPT_ADD_SUITE("schedules", schedules) ||
           DPT_ADD_SUITE("parameters", params);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(register_suites(), CU_BRM_VERBOSE);
}
