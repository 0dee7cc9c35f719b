/* Unit tests of the optimizers (src/optim/optimizer.c, sgd.c, adaptive.c)
 * and learning-rate schedules (src/optim/schedule.c) against values worked
 * out by hand, or by running the textbook algorithm independently in double
 * precision.
 *
 * References: Goodfellow, Bengio, Courville, Deep Learning (2016),
 * algorithms 8.1 (SGD), 8.2 (momentum), 8.3 (Nesterov momentum), 8.4
 * (AdaGrad), 8.5 (RMSProp), 8.6 (RMSProp with Nesterov momentum), 8.7
 * (Adam) and equation 8.14 (linear decay of the learning rate);
 * Loshchilov & Hutter, Decoupled Weight Decay Regularization (2019), for
 * AdamW; Loshchilov & Hutter, SGDR (2017), for the cosine schedule; Goyal
 * et al., Accurate, Large Minibatch SGD (2017), for the linear warmup. */
#include "cunit_util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/optim.h"

#include "../src/core/vec.h" /* the separate norm pass the fused one must equal */

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

/* Plain SGD keeps no state; the gradient array must not be modified. */
static void test_sgd_no_velocity_const_grad(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 0.1, 0.9, 0.5);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    CU_ASSERT_PTR_NULL(opt.first);
    CU_ASSERT_PTR_NULL(opt.second);
    CU_ASSERT_EQUAL(dpt_optimizer_state_bytes(&opt), 0);
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
    CU_ASSERT_PTR_NOT_NULL_FATAL(opt.first);
    assert_vec3(opt.first, 0, 0, 0); /* v0 = 0 */
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g1[3] = {1, -1, 0.5}, g3[3] = {0, 2, -1};
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(opt.first, -0.1, 0.1, -0.05);
    assert_vec3(theta, 0.9, -1.9, 0.45);
    dpt_optimizer_step(&opt, theta, g1);
    assert_vec3(opt.first, -0.19, 0.19, -0.095);
    assert_vec3(theta, 0.71, -1.71, 0.355);
    dpt_optimizer_step(&opt, theta, g3);
    assert_vec3(opt.first, -0.171, -0.029, 0.0145);
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
    assert_vec3(opt.first, -0.1079, 0.1268, -0.05395);
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
    assert_vec3(opt.first, -0.1, 0.1, -0.1);
    dpt_optimizer_destroy(&opt);
}

/* ================================================================ the book's algorithms (8.1-8.7) */

/* Every method against an independent double-precision implementation of
 * the book's algorithm on f(theta) = 1/2 sum_i a_i theta_i^2 (+ the L2 term
 * lambda/2 |theta|^2, except for AdamW). Five coordinates: curvatures
 * spread over a factor 30, and one coordinate at the minimum already
 * (gradient exactly 0: no division by zero may leak a NaN). */
enum { BN = 5, BOOK_STEPS = 10 };
static const double book_a[BN] = {1.0, 0.5, 2.0, 0.1, 3.0};
static const double book_theta0[BN] = {1.0, -2.0, 0.5, 4.0, 0.0};

/* Hyperparameters all different from each other and from the defaults, so
 * that a rule reading the wrong one (rho for beta1, ...) shows. */
#define BOOK_ALPHA 0.7
#define BOOK_RHO 0.8
#define BOOK_BETA1 0.85
#define BOOK_BETA2 0.99

/* A learning rate per method at which 10 steps move far but stay stable. */
static double book_lr(dpt_optim_method m)
{
    switch (m) {
    case DPT_OPTIM_ADAGRAD: return 0.3;
    case DPT_OPTIM_RMSPROP: return 0.02;
    case DPT_OPTIM_RMSPROP_NESTEROV: return 0.01;
    case DPT_OPTIM_ADAM: case DPT_OPTIM_ADAMW: return 0.05;
    default: return 0.1;
    }
}

/* The book's delta (written out here, not taken from the library):
 * AdaGrad 1e-7 (8.4), RMSProp 1e-6 (8.5, 8.6), Adam 1e-8 (8.7). */
static double book_delta(dpt_optim_method m, double given)
{
    if (given > 0) return given;
    if (m == DPT_OPTIM_ADAGRAD) return 1e-7;
    if (m == DPT_OPTIM_RMSPROP || m == DPT_OPTIM_RMSPROP_NESTEROV) return 1e-6;
    return 1e-8;
}

static int is_nesterov(dpt_optim_method m)
{
    return m == DPT_OPTIM_NESTEROV || m == DPT_OPTIM_RMSPROP_NESTEROV;
}

typedef struct book {
    dpt_optim_method method;
    double alpha, rho, rho1, rho2, delta, lambda;
    double theta[BN], v[BN], s[BN], r[BN]; /* v: velocity; s, r: first and second moments */
    long t;                                /* Adam's time step */
} book;

static void book_init(book *b, const dpt_optim_params *p)
{
    memset(b, 0, sizeof *b);
    b->method = p->method;
    b->alpha = p->momentum;
    b->rho = p->rho;
    b->rho1 = p->beta1;
    b->rho2 = p->beta2;
    b->delta = book_delta(p->method, p->delta);
    b->lambda = p->weight_decay;
    memcpy(b->theta, book_theta0, sizeof b->theta);
}

/* The gradient of the objective at x: a_i x_i plus the L2 term lambda x_i
 * (AdamW: none, its decay is decoupled). */
static void book_grad(const book *b, const double *x, double *g)
{
    const double l2 = b->method == DPT_OPTIM_ADAMW ? 0 : b->lambda;
    for (int i = 0; i < BN; i++) g[i] = (book_a[i] + l2) * x[i];
}

/* The interim point of 8.3 and 8.6: theta~ = theta + alpha v. */
static void book_interim(const book *b, double *x)
{
    for (int i = 0; i < BN; i++) x[i] = b->theta[i] + b->alpha * b->v[i];
}

/* Algorithm 8.1 (SGD): theta <- theta - eps g. */
static void book_sgd(book *b, double eps)
{
    double g[BN];
    book_grad(b, b->theta, g);
    for (int i = 0; i < BN; i++) b->theta[i] -= eps * g[i];
}

/* Algorithm 8.2 (momentum): v <- alpha v - eps g; theta <- theta + v. */
static void book_momentum(book *b, double eps)
{
    double g[BN];
    book_grad(b, b->theta, g);
    for (int i = 0; i < BN; i++) {
        b->v[i] = b->alpha * b->v[i] - eps * g[i];
        b->theta[i] += b->v[i];
    }
}

/* Algorithm 8.3 (Nesterov): theta~ <- theta + alpha v; g at theta~;
 * v <- alpha v - eps g; theta <- theta + v. */
static void book_nesterov(book *b, double eps)
{
    double x[BN], g[BN];
    book_interim(b, x);
    book_grad(b, x, g);
    for (int i = 0; i < BN; i++) {
        b->v[i] = b->alpha * b->v[i] - eps * g[i];
        b->theta[i] += b->v[i];
    }
}

/* Algorithm 8.4 (AdaGrad): r <- r + g.g; dtheta <- -eps / (delta + sqrt(r)) . g;
 * theta <- theta + dtheta. */
static void book_adagrad(book *b, double eps)
{
    double g[BN];
    book_grad(b, b->theta, g);
    for (int i = 0; i < BN; i++) {
        b->r[i] += g[i] * g[i];
        b->theta[i] += -eps / (b->delta + sqrt(b->r[i])) * g[i];
    }
}

/* Algorithm 8.5 (RMSProp): r <- rho r + (1 - rho) g.g;
 * dtheta <- -eps / sqrt(delta + r) . g; theta <- theta + dtheta. */
static void book_rmsprop(book *b, double eps)
{
    double g[BN];
    book_grad(b, b->theta, g);
    for (int i = 0; i < BN; i++) {
        b->r[i] = b->rho * b->r[i] + (1 - b->rho) * g[i] * g[i];
        b->theta[i] += -eps / sqrt(b->delta + b->r[i]) * g[i];
    }
}

/* Algorithm 8.6 (RMSProp with Nesterov momentum): theta~ <- theta + alpha v;
 * g at theta~; r <- rho r + (1 - rho) g.g; v <- alpha v - eps / sqrt(r) . g;
 * theta <- theta + v. The library divides by sqrt(delta + r) instead of
 * sqrt(r) (its documented deviation, adaptive.c); mirrored here. */
static void book_rmsprop_nesterov(book *b, double eps)
{
    double x[BN], g[BN];
    book_interim(b, x);
    book_grad(b, x, g);
    for (int i = 0; i < BN; i++) {
        b->r[i] = b->rho * b->r[i] + (1 - b->rho) * g[i] * g[i];
        b->v[i] = b->alpha * b->v[i] - eps / sqrt(b->delta + b->r[i]) * g[i];
        b->theta[i] += b->v[i];
    }
}

/* Algorithm 8.7 (Adam): t <- t + 1; s <- rho1 s + (1 - rho1) g;
 * r <- rho2 r + (1 - rho2) g.g; s^ <- s / (1 - rho1^t); r^ <- r / (1 - rho2^t);
 * dtheta <- -eps s^ / (sqrt(r^) + delta); theta <- theta + dtheta.
 * AdamW (Loshchilov & Hutter 2019, algorithm 2): g without the L2 term, and
 * theta <- theta - eps s^ / (sqrt(r^) + delta) - eps lambda theta. */
static void book_adam(book *b, double eps)
{
    double g[BN];
    book_grad(b, b->theta, g);
    b->t++;
    const double decoupled = b->method == DPT_OPTIM_ADAMW ? b->lambda : 0;
    for (int i = 0; i < BN; i++) {
        b->s[i] = b->rho1 * b->s[i] + (1 - b->rho1) * g[i];
        b->r[i] = b->rho2 * b->r[i] + (1 - b->rho2) * g[i] * g[i];
        double s_hat = b->s[i] / (1 - pow(b->rho1, (double)b->t));
        double r_hat = b->r[i] / (1 - pow(b->rho2, (double)b->t));
        b->theta[i] += -eps * s_hat / (sqrt(r_hat) + b->delta) - eps * decoupled * b->theta[i];
    }
}

static void book_step(book *b, double eps)
{
    switch (b->method) {
    case DPT_OPTIM_SGD: book_sgd(b, eps); break;
    case DPT_OPTIM_MOMENTUM: book_momentum(b, eps); break;
    case DPT_OPTIM_NESTEROV: book_nesterov(b, eps); break;
    case DPT_OPTIM_ADAGRAD: book_adagrad(b, eps); break;
    case DPT_OPTIM_RMSPROP: book_rmsprop(b, eps); break;
    case DPT_OPTIM_RMSPROP_NESTEROV: book_rmsprop_nesterov(b, eps); break;
    default: book_adam(b, eps); break;
    }
}

/* What the library stores: the look-ahead point phi = theta + alpha v for
 * the Nesterov methods (sgd.c, adaptive.c), theta itself otherwise. */
static double book_stored(const book *b, int i)
{
    return is_nesterov(b->method) ? b->theta[i] + b->alpha * b->v[i] : b->theta[i];
}

/* The library's `first` holds v (8.2, 8.3, 8.6) or s (8.7), `second` r (8.4-8.7). */
static const double *book_first(const book *b)
{
    switch (b->method) {
    case DPT_OPTIM_SGD: case DPT_OPTIM_ADAGRAD: case DPT_OPTIM_RMSPROP: return NULL;
    case DPT_OPTIM_ADAM: case DPT_OPTIM_ADAMW: return b->s;
    default: return b->v;
    }
}

static const double *book_second(const book *b)
{
    return b->method >= DPT_OPTIM_ADAGRAD ? b->r : NULL;
}

/* The rate of update k, worked out here: eps_0 (k + 1) / W during the
 * warmup, eps_0 after it (constant schedule). */
static double book_schedule(double eps0, long warmup, long k)
{
    return k < warmup ? eps0 * (double)(k + 1) / (double)warmup : eps0;
}

/* The library's gradient: a_i x_i at its stored parameters (the L2 term is
 * the optimizer's job), computed in double and rounded once. */
static void book_quad_grad(const dpt_real *x, dpt_real *g)
{
    for (int i = 0; i < BN; i++) g[i] = (dpt_real)(book_a[i] * (double)x[i]);
}

/* got[n] (dpt_real) against want[n] (double); NULL must match NULL. */
static void assert_vec_rel(const dpt_real *got, const double *want, int n, double floor)
{
    CU_ASSERT_FATAL((got == NULL) == (want == NULL));
    for (int i = 0; want && i < n; i++) ASSERT_REL(got[i], want[i], floor);
}

static dpt_optim_params book_params(dpt_optim_method m, double lambda, double delta, long warmup)
{
    dpt_optim_params p = make_params(m, book_lr(m), BOOK_ALPHA, lambda);
    p.rho = BOOK_RHO;
    p.beta1 = BOOK_BETA1;
    p.beta2 = BOOK_BETA2;
    p.delta = delta;
    p.warmup_steps = warmup;
    return p;
}

/* BOOK_STEPS updates of the library and the book side by side; after each,
 * the stored parameters, both state vectors and the rate used must agree.
 * Floors: theta is O(1), v and s O(0.1), r is a sum of squares (relative). */
static void check_against_book(dpt_optim_method m, double lambda, double delta, long warmup)
{
    dpt_optim_params p = book_params(m, lambda, delta, warmup);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, BN), DPT_OK);
    book b;
    book_init(&b, &p);
    dpt_real x[BN], g[BN];
    for (int i = 0; i < BN; i++) x[i] = (dpt_real)book_theta0[i]; /* v0 = 0: phi0 = theta0 */
    for (long k = 0; k < BOOK_STEPS; k++) {
        const double eps = book_schedule(p.lr, warmup, k);
        book_step(&b, eps);
        book_quad_grad(x, g);
        CU_ASSERT_DOUBLE_EQUAL(dpt_optimizer_step(&opt, x, g), eps, 1e-15);
        for (int i = 0; i < BN; i++) ASSERT_REL(x[i], book_stored(&b, i), 0.1);
        assert_vec_rel(opt.first, book_first(&b), BN, 1e-2);
        assert_vec_rel(opt.second, book_second(&b), BN, 1e-12);
    }
    CU_ASSERT(x[BN - 1] == 0); /* zero gradient, zero start: stays exactly 0 */
    dpt_optimizer_destroy(&opt);
}

/* Without and with (L2 or decoupled) weight decay, with a delta large
 * enough to matter (the book's are invisible next to |g| ~ 1), and behind
 * a 3-step warmup that changes the rate but not Adam's bias correction t. */
static void check_method(dpt_optim_method m)
{
    check_against_book(m, 0.0, 0.0, 0);
    check_against_book(m, 0.1, 0.0, 0);
    check_against_book(m, 0.1, 0.05, 0);
    check_against_book(m, 0.1, 0.0, 3);
}

static void test_book_sgd(void) { check_method(DPT_OPTIM_SGD); }
static void test_book_momentum(void) { check_method(DPT_OPTIM_MOMENTUM); }
static void test_book_nesterov(void) { check_method(DPT_OPTIM_NESTEROV); }
static void test_book_adagrad(void) { check_method(DPT_OPTIM_ADAGRAD); }
static void test_book_rmsprop(void) { check_method(DPT_OPTIM_RMSPROP); }
static void test_book_rmsprop_nesterov(void) { check_method(DPT_OPTIM_RMSPROP_NESTEROV); }
static void test_book_adam(void) { check_method(DPT_OPTIM_ADAM); }
static void test_book_adamw(void) { check_method(DPT_OPTIM_ADAMW); }

/* dpt_optim_delta: the book's default per method, or the one given. */
static void test_default_deltas(void)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    CU_ASSERT_EQUAL(p.delta, 0.0);
    p.method = DPT_OPTIM_ADAGRAD;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 1e-7);
    p.method = DPT_OPTIM_RMSPROP;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 1e-6);
    p.method = DPT_OPTIM_RMSPROP_NESTEROV;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 1e-6);
    p.method = DPT_OPTIM_ADAM;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 1e-8);
    p.method = DPT_OPTIM_ADAMW;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 1e-8);
    p.delta = 0.25;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 0.25);
    p.method = DPT_OPTIM_ADAGRAD;
    CU_ASSERT_EQUAL(dpt_optim_delta(&p), 0.25);
}

/* ================================================================ first steps by hand (8.4-8.7) */

static void assert_vec3d(const dpt_real *got, const double want[3])
{
    assert_vec3(got, want[0], want[1], want[2]);
}

/* Algorithm 8.4, eps = 0.1, delta = 1e-7, theta0 = (1, -2, 0.5), g = (0.5, -1, 2):
 *   r1 = g.g = (0.25, 1, 4), sqrt(r1) = |g|
 *   theta1 = theta0 - 0.1 g / (1e-7 + |g|)
 *          = (1 - 0.05 / 0.5000001, -2 + 0.1 / 1.0000001, 0.5 - 0.2 / 2.0000001)
 *          ~ (0.9, -1.9, 0.4): every coordinate moves by eps, whatever |g|.
 * The same g again: r2 = 2 g.g, the step shrinks to eps / sqrt(2):
 *   theta2 = theta1 - 0.1 g / (1e-7 + sqrt(2) |g|). */
static void test_adagrad_first_steps_by_hand(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_ADAGRAD, 0.1, 0.0, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g[3] = {0.5, -1, 2};
    const double t1[3] = {1 - 0.05 / 0.5000001, -2 + 0.1 / 1.0000001, 0.5 - 0.2 / 2.0000001};
    dpt_optimizer_step(&opt, theta, g);
    assert_vec3d(theta, t1);
    assert_vec3(opt.second, 0.25, 1, 4);
    dpt_optimizer_step(&opt, theta, g);
    assert_vec3(theta, t1[0] - 0.05 / (1e-7 + sqrt(2) * 0.5), t1[1] + 0.1 / (1e-7 + sqrt(2)),
                t1[2] - 0.2 / (1e-7 + sqrt(2) * 2));
    assert_vec3(opt.second, 0.5, 2, 8);
    dpt_optimizer_destroy(&opt);
}

/* Algorithm 8.5, eps = 0.01, rho = 0.9, delta = 1e-6, theta0 = (1, -2, 0.5),
 * g = (1, -1, 2):
 *   r1 = 0.1 g.g = (0.1, 0.1, 0.4)
 *   theta1 = theta0 - 0.01 g / sqrt(1e-6 + r1)
 *          = (1 - 0.01 / sqrt(0.100001), -2 + 0.01 / sqrt(0.100001), 0.5 - 0.02 / sqrt(0.400001))
 *          ~ (0.968377, -1.968377, 0.468377): about eps / sqrt(1 - rho) each. */
static void test_rmsprop_first_step_by_hand(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_RMSPROP, 0.01, 0.0, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g[3] = {1, -1, 2};
    dpt_optimizer_step(&opt, theta, g);
    assert_vec3(theta, 1 - 0.01 / sqrt(0.100001), -2 + 0.01 / sqrt(0.100001),
                0.5 - 0.02 / sqrt(0.400001));
    assert_vec3(opt.second, 0.1, 0.1, 0.4);
    dpt_optimizer_destroy(&opt);
}

/* Algorithm 8.6, eps = 0.01, alpha = 0.5, rho = 0.9, delta = 1e-6, v0 = 0,
 * phi0 = theta0 = (1, -2, 0.5), g = a phi0 = (1, -1, 1):
 *   r1 = 0.1 g.g = (0.1, 0.1, 0.1)
 *   u = 0.01 g / sqrt(0.100001);  v1 = -u;  theta1 = theta0 - u
 *   phi1 = theta1 + alpha v1 = phi0 - 1.5 u
 *        = (1 - 0.015 / sqrt(0.100001), -2 + 0.015 / sqrt(0.100001), 0.5 - 0.015 / sqrt(0.100001)) */
static void test_rmsprop_nesterov_first_step_by_hand(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_RMSPROP_NESTEROV, 0.01, 0.5, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, QN), DPT_OK);
    dpt_real phi[QN] = {1, -2, 0.5}, g[QN];
    quad_grad(phi, g);
    dpt_optimizer_step(&opt, phi, g);
    const double u = 0.01 / sqrt(0.100001);
    assert_vec3(phi, 1 - 1.5 * u, -2 + 1.5 * u, 0.5 - 1.5 * u);
    assert_vec3(opt.first, -u, u, -u);
    assert_vec3(opt.second, 0.1, 0.1, 0.1);
    dpt_optimizer_destroy(&opt);
}

/* Algorithm 8.7, eps = 0.01, rho1 = 0.9, rho2 = 0.999, delta = 1e-8, t = 1:
 *   s1 = 0.1 g, s^ = s1 / (1 - 0.9) = g;  r1 = 0.001 g.g, r^ = r1 / (1 - 0.999) = g.g
 *   theta1 = theta0 - eps g / (|g| + 1e-8) ~ theta0 - eps sign(g)
 * whatever the scale of g. theta0 = (1, -2, 0.5), g = (1e-3, -50, 2):
 *   theta1 = (1 - 0.01 / (1 + 1e-5), -2 + 0.01 / (1 + 2e-10), 0.5 - 0.01 / (1 + 5e-9))
 *   s1 = (1e-4, -5, 0.2), r1 = (1e-9, 2.5, 0.004) */
static void test_adam_first_step_by_hand(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_ADAM, 0.01, 0.0, 0.0);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    const dpt_real g[3] = {1e-3, -50, 2};
    dpt_optimizer_step(&opt, theta, g);
    assert_vec3(theta, 1 - 0.01 / (1 + 1e-5), -2 + 0.01 / (1 + 2e-10), 0.5 - 0.01 / (1 + 5e-9));
    ASSERT_REL(opt.first[0], 1e-4, 0);
    ASSERT_REL(opt.first[1], -5, 0);
    ASSERT_REL(opt.first[2], 0.2, 0);
    dpt_optimizer_destroy(&opt);
}

/* The same from theta0 = 0, so that theta1 is the step itself and must be
 * -eps g / (|g| + delta) to the relative tolerance: eps = 0.01,
 * g = (1, -4, 0.25), beta2 = 0.9999 (Adam's r^ = r1 / (1 - 0.9999) = g.g
 * only if r1 and the bias correction use the same 1 - rho2):
 *   theta1 = (-0.01 / (1 + 1e-8), 0.01 / (1 + 2.5e-9), -0.01 / (1 + 4e-8))
 *   r1 = 1e-4 g.g = (1e-4, 1.6e-3, 6.25e-6)
 * In single precision 1 - (float)0.9999 = 1.00017e-4 (cancellation), while
 * the bias correction 1 / (1 - 0.9999) is taken in double: r1 and every
 * step come out 1.7e-4 and 8e-5 off. */
static void test_adam_first_step_is_eps(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_ADAM, 0.01, 0.0, 0.0);
    p.beta2 = 0.9999;
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {0, 0, 0};
    const dpt_real g[3] = {1, -4, 0.25};
    dpt_optimizer_step(&opt, theta, g);
    ASSERT_REL(theta[0], -0.01 / (1 + 1e-8), 0);
    ASSERT_REL(theta[1], 0.01 / (1 + 2.5e-9), 0);
    ASSERT_REL(theta[2], -0.01 / (1 + 4e-8), 0);
    ASSERT_REL(opt.second[0], 1e-4, 0);
    ASSERT_REL(opt.second[1], 1.6e-3, 0);
    ASSERT_REL(opt.second[2], 6.25e-6, 0);
    dpt_optimizer_destroy(&opt);
}

/* L2 decay inside Adam is normalized away on the first step, decoupled
 * decay is not. eps = 0.01, lambda = 0.5, theta0 = (1, -2, 0.5), g = (1, -1, 1):
 *   adam:  g' = g + 0.5 theta0 = (1.5, -2, 1.25) (same signs as g), s1 = 0.1 g'
 *          theta1 = theta0 - 0.01 g' / (|g'| + 1e-8)
 *                 = (1 - 0.01 / (1 + 1e-8 / 1.5), -2 + 0.01 / (1 + 5e-9), 0.5 - 0.01 / (1 + 8e-9))
 *   adamw: s1 = 0.1 g; theta1 = theta0 - 0.01 g / (|g| + 1e-8) - 0.01 * 0.5 theta0
 *                 = (1 - 0.01 / (1 + 1e-8) - 0.005, -2 + 0.01 / (1 + 1e-8) + 0.01,
 *                    0.5 - 0.01 / (1 + 1e-8) - 0.0025) */
static void test_adam_vs_adamw_first_step(void)
{
    const dpt_real g[3] = {1, -1, 1};
    dpt_optim_params p = make_params(DPT_OPTIM_ADAM, 0.01, 0.0, 0.5);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real theta[3] = {1, -2, 0.5};
    dpt_optimizer_step(&opt, theta, g);
    assert_vec3(theta, 1 - 0.01 / (1 + 1e-8 / 1.5), -2 + 0.01 / (1 + 5e-9), 0.5 - 0.01 / (1 + 8e-9));
    assert_vec3(opt.first, 0.15, -0.2, 0.125);
    dpt_optimizer_destroy(&opt);

    p.method = DPT_OPTIM_ADAMW;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 3), DPT_OK);
    dpt_real w[3] = {1, -2, 0.5};
    dpt_optimizer_step(&opt, w, g);
    const double d = 0.01 / (1 + 1e-8);
    assert_vec3(w, 1 - d - 0.005, -2 + d + 0.01, 0.5 - d - 0.0025);
    assert_vec3(opt.first, 0.1, -0.1, 0.1);
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

static dpt_optim_params sched_params(dpt_schedule_kind kind, double lr, double lr_final, long tau)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.schedule = kind;
    p.lr = lr;
    p.lr_final = lr_final;
    p.decay_steps = tau;
    return p;
}

/* eps_0 gamma^floor(k / step_size), eps_0 = 0.1, gamma = 0.5, step_size = 3
 * (powers of 2 scale exactly, so equality is exact):
 *   k = 0, 1, 2: 0.1;  k = 3, 5: 0.05;  k = 6: 0.025;  k = 9: 0.0125
 *   k = 30: 0.1 / 2^10 = 0.1 / 1024 (no floor: decay_steps plays no part) */
static void test_step_schedule(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_STEP, 0.1, 0.001, 4);
    p.gamma = 0.5;
    p.step_size = 3;
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 0), 0.1);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 2), 0.1);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 3), 0.05);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 5), 0.05);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 6), 0.025);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 9), 0.0125);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 30), 0.1 / 1024);
    /* the default gamma 0.1 and step_size 1: 0.1, 0.01, 0.001 */
    dpt_optim_params q = sched_params(DPT_SCHED_STEP, 0.1, 0.0, 1);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&q, 0), 0.1, 1e-17);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&q, 1), 0.01, 1e-17);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&q, 2), 0.001, 1e-18);
}

/* eps_0 (eps_tau / eps_0)^(k / tau), then eps_tau; eps_0 = 1, eps_tau = 0.01,
 * tau = 4: the ratio per step is 0.01^(1/4) = sqrt(0.1) = 0.316227766...
 *   k = 0: 1;  k = 1: sqrt(0.1);  k = 2: 0.1;  k = 3: 0.1 sqrt(0.1)
 *   k = 4, 5, 1000: 0.01 */
static void test_exponential_schedule(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_EXPONENTIAL, 1.0, 0.01, 4);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 0), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1), 0.31622776601683794, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 2), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 3), 0.031622776601683794, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 4), 0.01, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 5), 0.01, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1000), 0.01, 1e-16);
}

/* eps_tau + (eps_0 - eps_tau)(1 + cos(pi k / tau)) / 2, then eps_tau;
 * eps_0 = 0.1, eps_tau = 0.001, tau = 4, cos(pi / 4) = sqrt(2) / 2:
 *   k = 0: 0.1
 *   k = 1: 0.001 + 0.099 (1 + 0.70710678) / 2 = 0.001 + 0.0845017857 = 0.0855017857
 *   k = 2: 0.001 + 0.099 / 2 = 0.0505
 *   k = 3: 0.001 + 0.099 (1 - 0.70710678) / 2 = 0.001 + 0.0144982143 = 0.0154982143
 *   k = 4, 7, 10^6: 0.001 */
static void test_cosine_schedule(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_COSINE, 0.1, 0.001, 4);
    const double h = 0.099 * (1 + sqrt(0.5)) / 2, l = 0.099 * (1 - sqrt(0.5)) / 2;
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 0), 0.1, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1), 0.001 + h, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1), 0.0855017857, 1e-10);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 2), 0.0505, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 3), 0.001 + l, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 3), 0.0154982143, 1e-10);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 4), 0.001, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 7), 0.001, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1000000), 0.001, 1e-16);
}

/* Warmup W = 4 before a constant 0.1: eps_0 (k + 1) / W for k < W, then eps_0:
 *   k = 0: 0.025;  k = 1: 0.05;  k = 2: 0.075;  k = 3: 0.1;  k = 4, 100: 0.1 */
static void test_warmup_constant(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_CONSTANT, 0.1, 0.001, 1);
    p.warmup_steps = 4;
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 0), 0.025, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 1), 0.05, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 2), 0.075, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 3), 0.1, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 4), 0.1, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, 100), 0.1, 1e-16);
}

/* Warmup W = 2 before linear (eps_0 = 1, eps_tau = 0.5, tau = 8, counted
 * after the warmup) and before step (gamma 0.5, step_size 3):
 *   linear: k = 0: 0.5;  1: 1;  2: schedule(0) = 1;  6: schedule(4) = 0.75;
 *           10: schedule(8) = 0.5;  9: schedule(7) = 0.5625
 *   step:   k = 0: 0.5;  1: 1;  2, 4: 1;  5: 0.5;  8: 0.25 */
static void test_warmup_linear_and_step(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_LINEAR, 1.0, 0.5, 8);
    p.warmup_steps = 2;
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 0), 0.5);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 1), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 2), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 6), 0.75);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 9), 0.5625);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 10), 0.5);
    p.schedule = DPT_SCHED_STEP;
    p.gamma = 0.5;
    p.step_size = 3;
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 0), 0.5);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 1), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 2), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 4), 1.0);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 5), 0.5);
    CU_ASSERT_EQUAL(dpt_schedule_lr(&p, 8), 0.25);
}

/* Warmup W = 3 in front of cosine (eps_0 = 0.1, eps_tau = 0.001, tau = 4):
 *   k = 0: 0.1 / 3;  1: 0.2 / 3;  2: 0.1 (end of warmup);  3: cosine(0) = 0.1;
 *   4: cosine(1) = 0.001 + h;  5: cosine(2) = 0.0505;  6: cosine(3) = 0.001 + l;
 *   7, 50: 0.001   (h, l as in the cosine test) */
static void test_warmup_cosine(void)
{
    dpt_optim_params p = sched_params(DPT_SCHED_COSINE, 0.1, 0.001, 4);
    p.warmup_steps = 3;
    const double h = 0.099 * (1 + sqrt(0.5)) / 2, l = 0.099 * (1 - sqrt(0.5)) / 2;
    static const long ks[] = {0, 1, 2, 3, 4, 5, 6, 7, 50};
    const double want[] = {0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.001 + h, 0.0505, 0.001 + l, 0.001, 0.001};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        CU_ASSERT_DOUBLE_EQUAL(dpt_schedule_lr(&p, ks[i]), want[i], 1e-16);
}

/* The optimizer feeds its own update count to the schedule: SGD with g = 1
 * from theta = 0 behind warmup 2 + step (gamma 0.5, step_size 1), eps_0 = 1:
 * rates 0.5, 1, 1, 0.5, 0.25 - theta = -0.5, -1.5, -2.5, -3, -3.25 */
static void test_optimizer_follows_warmup(void)
{
    static const double rate[5] = {0.5, 1, 1, 0.5, 0.25}, theta_k[5] = {-0.5, -1.5, -2.5, -3, -3.25};
    dpt_optim_params p = make_params(DPT_OPTIM_SGD, 1.0, 0.0, 0.0);
    p.schedule = DPT_SCHED_STEP;
    p.gamma = 0.5;
    p.warmup_steps = 2;
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 1), DPT_OK);
    dpt_real theta[1] = {0};
    const dpt_real g[1] = {1};
    for (int k = 0; k < 5; k++) {
        CU_ASSERT_EQUAL(dpt_optimizer_step(&opt, theta, g), rate[k]);
        CU_ASSERT_EQUAL(theta[0], (dpt_real)theta_k[k]);
    }
    dpt_optimizer_destroy(&opt);
}

/* ================================================================ state and slices */

/* Moment vectors per method: sgd none; momentum, nesterov: v; adagrad,
 * rmsprop: r; rmsprop_nesterov: v and r; adam, adamw: s and r. */
static const int n_first[DPT_OPTIM_LBFGS] = {0, 1, 1, 0, 0, 1, 1, 1};
static const int n_second[DPT_OPTIM_LBFGS] = {0, 0, 0, 1, 1, 1, 1, 1};

/* dpt_optimizer_state_bytes = (vectors kept) x n x sizeof(dpt_real), and
 * the vectors kept start at zero; an empty slice holds no state. */
static void test_state_bytes(void)
{
    for (int m = 0; m < DPT_OPTIM_LBFGS; m++) { /* the first-order methods */
        dpt_optim_params p = make_params((dpt_optim_method)m, 0.1, 0.9, 0.0);
        dpt_optimizer opt;
        CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 10), DPT_OK);
        const size_t want = (size_t)(n_first[m] + n_second[m]) * 10 * sizeof(dpt_real);
        CU_ASSERT_EQUAL(dpt_optimizer_state_bytes(&opt), want);
        CU_ASSERT_EQUAL(opt.first != NULL, n_first[m]);
        CU_ASSERT_EQUAL(opt.second != NULL, n_second[m]);
        for (int i = 0; i < 10; i++) {
            if (opt.first) CU_ASSERT_EQUAL(opt.first[i], 0);
            if (opt.second) CU_ASSERT_EQUAL(opt.second[i], 0);
        }
        dpt_optimizer_destroy(&opt);
        CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, 0), DPT_OK);
        CU_ASSERT_EQUAL(dpt_optimizer_state_bytes(&opt), 0);
        dpt_optimizer_destroy(&opt);
    }
}

enum { SN = 10, SCUT = 3, SSTEPS = 12 };

/* A gradient that changes sign and scale over steps and coordinates:
 * a_i theta_i + 0.3 sin(k + 2 i), a_i = 0.2 + 0.3 i. */
static void slice_grad(const dpt_real *theta, long k, dpt_real *g)
{
    for (int i = 0; i < SN; i++)
        g[i] = (dpt_real)((0.2 + 0.3 * i) * (double)theta[i] + 0.3 * sin((double)(k + 2 * i)));
}

/* Both slices' state laid out like the whole one's, or all of it is 0. */
static void assert_state_split(const dpt_real *whole, const dpt_real *a, const dpt_real *b)
{
    CU_ASSERT_FATAL((whole == NULL) == (a == NULL) && (a == NULL) == (b == NULL));
    if (!whole) return;
    CU_ASSERT(memcmp(whole, a, SCUT * sizeof *a) == 0);
    CU_ASSERT(memcmp(whole + SCUT, b, (SN - SCUT) * sizeof *b) == 0);
}

/* One optimizer on theta[0..10) against two created for [0, 3) and [3, 10)
 * stepping the same vector through pointers into it: the rules are
 * element-wise, so parameters and state must agree bit for bit (sharded
 * optimizer state relies on it). Weight decay, warmup and a cosine decay
 * on, so that every term of every rule takes part. */
static void check_slices(dpt_optim_method m)
{
    dpt_optim_params p = book_params(m, 0.05, 0.0, 2);
    p.schedule = DPT_SCHED_COSINE;
    p.decay_steps = 8;
    dpt_optimizer whole, lo, hi;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&whole, &p, SN), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&lo, &p, SCUT), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&hi, &p, SN - SCUT), DPT_OK);
    CU_ASSERT_EQUAL(dpt_optimizer_state_bytes(&lo) + dpt_optimizer_state_bytes(&hi),
                    dpt_optimizer_state_bytes(&whole));
    dpt_real tw[SN], ts[SN], gw[SN], gs[SN];
    for (int i = 0; i < SN; i++) tw[i] = ts[i] = (dpt_real)(1.5 - 0.4 * i);
    for (long k = 0; k < SSTEPS; k++) {
        slice_grad(tw, k, gw);
        slice_grad(ts, k, gs);
        double lr = dpt_optimizer_step(&whole, tw, gw);
        CU_ASSERT_EQUAL(dpt_optimizer_step(&lo, ts, gs), lr);
        CU_ASSERT_EQUAL(dpt_optimizer_step(&hi, ts + SCUT, gs + SCUT), lr);
    }
    CU_ASSERT(memcmp(tw, ts, sizeof tw) == 0);
    assert_state_split(whole.first, lo.first, hi.first);
    assert_state_split(whole.second, lo.second, hi.second);
    dpt_optimizer_destroy(&whole);
    dpt_optimizer_destroy(&lo);
    dpt_optimizer_destroy(&hi);
}

static void test_slices_equal_whole(void)
{
    for (int m = 0; m < DPT_OPTIM_LBFGS; m++) check_slices((dpt_optim_method)m);
}

/* A step that also sums the gradient's squared norm; clears: it leaves
 * the gradient zero (dpt_optimizer_step_clear). */
typedef double (*step_with_norm_fn)(dpt_optimizer *, dpt_real *, dpt_real *, dpt_real, double *);

static double step_keeping_gradient(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real gs,
                                    double *sumsq)
{
    return dpt_optimizer_step_sumsq(opt, theta, grad, gs, sumsq);
}

/* step against dpt_optimizer_step_scaled followed by the trainer's former
 * separate norm pass: the same parameters and state bit for bit, and the
 * same squared norm bit for bit (SGD, momentum and Nesterov sum it inside
 * their update loop, in eight lanes: lengths below, at and past a multiple
 * of eight), and that norm close to a plain sum in long double; if it
 * clears, the gradient zero afterwards (the adaptive methods clear it after
 * their rule). Weight decay on, so that theta enters every rule. */
static void check_step_with_norm(step_with_norm_fn step, int clears)
{
    enum { MAXN = 37 };
    static const size_t lengths[] = {5, 8, MAXN};
    const dpt_real scale = (dpt_real)0.25;
    for (int m = 0; m < DPT_OPTIM_LBFGS; m++)
        for (size_t c = 0; c < sizeof lengths / sizeof *lengths; c++) {
            const size_t n = lengths[c];
            dpt_optim_params p = book_params((dpt_optim_method)m, 0.05, 0.0, 0);
            dpt_optimizer plain, fused;
            CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&plain, &p, n), DPT_OK);
            CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&fused, &p, n), DPT_OK);
            dpt_real tp[MAXN], tf[MAXN], g[MAXN], gf[MAXN];
            for (size_t i = 0; i < n; i++) tp[i] = tf[i] = (dpt_real)(1.5 - 0.1 * (double)i);
            int all_zero = 1;
            for (long k = 0; k < 4; k++) {
                long double plain_sum = 0;
                for (size_t i = 0; i < n; i++) {
                    g[i] = gf[i] = (dpt_real)(3 * sin((double)k + 0.7 * (double)i));
                    long double v = (long double)(g[i] * scale);
                    plain_sum += v * v;
                }
                double separate = dpt_vec_sumsq_scaled(g, n, scale), sumsq = -1;
                double lr = dpt_optimizer_step_scaled(&plain, tp, g, scale);
                CU_ASSERT_EQUAL(step(&fused, tf, gf, scale, &sumsq), lr);
                CU_ASSERT_EQUAL(sumsq, separate);
                CU_ASSERT_DOUBLE_EQUAL(sumsq, (double)plain_sum, 1e-12 * (double)plain_sum);
                for (size_t i = 0; i < n; i++) all_zero &= gf[i] == 0;
            }
            if (clears) CU_ASSERT(all_zero);
            CU_ASSERT(memcmp(tp, tf, n * sizeof *tp) == 0);
            if (plain.first) CU_ASSERT(memcmp(plain.first, fused.first, n * sizeof *tp) == 0);
            if (plain.second) CU_ASSERT(memcmp(plain.second, fused.second, n * sizeof *tp) == 0);
            dpt_optimizer_destroy(&plain);
            dpt_optimizer_destroy(&fused);
        }
}

static void test_step_sumsq_matches_separate(void)
{
    check_step_with_norm(step_keeping_gradient, 0);
}

static void test_step_clear_matches_sumsq(void)
{
    check_step_with_norm(dpt_optimizer_step_clear, 1);
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

static dpt_status create_status(const dpt_optim_params *p)
{
    dpt_optimizer opt;
    dpt_status st = dpt_optimizer_create(&opt, p, 4);
    if (st == DPT_OK) dpt_optimizer_destroy(&opt);
    return st;
}

/* Sets one field of a valid Adam configuration and expects `want`. */
#define EXPECT_CREATE(field, value, want)                      \
    do {                                                       \
        dpt_optim_params p_ = base;                            \
        p_.field = (value);                                    \
        CU_ASSERT_EQUAL(create_status(&p_), (want));           \
    } while (0)

/* The new parameters: rho, beta1, beta2 in [0, 1); delta, lr_final >= 0;
 * step_size, decay_steps >= 1; gamma > 0; warmup >= 0; method and schedule
 * known; NaN rejected everywhere. */
static void test_create_checks_new_params(void)
{
    const dpt_optim_params base = make_params(DPT_OPTIM_ADAM, 0.01, 0.9, 0.0);
    CU_ASSERT_EQUAL(create_status(&base), DPT_OK);
    static const double bad_unit[] = {1.0, 1.5, -0.1, NAN};
    for (size_t i = 0; i < sizeof bad_unit / sizeof bad_unit[0]; i++) {
        EXPECT_CREATE(rho, bad_unit[i], DPT_ERR_ARG);
        EXPECT_CREATE(beta1, bad_unit[i], DPT_ERR_ARG);
        EXPECT_CREATE(beta2, bad_unit[i], DPT_ERR_ARG);
    }
    EXPECT_CREATE(delta, -1e-9, DPT_ERR_ARG);
    EXPECT_CREATE(delta, NAN, DPT_ERR_ARG);
    EXPECT_CREATE(weight_decay, NAN, DPT_ERR_ARG);
    EXPECT_CREATE(lr_final, -1e-3, DPT_ERR_ARG);
    EXPECT_CREATE(lr_final, NAN, DPT_ERR_ARG);
    EXPECT_CREATE(decay_steps, 0, DPT_ERR_ARG);
    EXPECT_CREATE(step_size, 0, DPT_ERR_ARG);
    EXPECT_CREATE(step_size, -3, DPT_ERR_ARG);
    EXPECT_CREATE(gamma, 0.0, DPT_ERR_ARG);
    EXPECT_CREATE(gamma, -0.5, DPT_ERR_ARG);
    EXPECT_CREATE(gamma, NAN, DPT_ERR_ARG);
    EXPECT_CREATE(warmup_steps, -1, DPT_ERR_ARG);
    EXPECT_CREATE(method, DPT_OPTIM_COUNT_, DPT_ERR_ARG);
    EXPECT_CREATE(method, (dpt_optim_method)-1, DPT_ERR_ARG);
    EXPECT_CREATE(schedule, DPT_SCHED_COUNT_, DPT_ERR_ARG);
}

/* The edges of the valid ranges are accepted. */
static void test_create_accepts_edges(void)
{
    const dpt_optim_params base = make_params(DPT_OPTIM_ADAM, 0.01, 0.9, 0.0);
    EXPECT_CREATE(rho, 0.0, DPT_OK);
    EXPECT_CREATE(beta1, 0.0, DPT_OK);
    EXPECT_CREATE(beta2, 0.0, DPT_OK);
    EXPECT_CREATE(beta2, 0.9999, DPT_OK);
    EXPECT_CREATE(delta, 0.0, DPT_OK);
    EXPECT_CREATE(delta, 1.0, DPT_OK);
    EXPECT_CREATE(lr_final, 0.0, DPT_OK);
    EXPECT_CREATE(step_size, 1, DPT_OK);
    EXPECT_CREATE(gamma, 1e-6, DPT_OK);
    EXPECT_CREATE(warmup_steps, 0, DPT_OK);
    EXPECT_CREATE(warmup_steps, 1000, DPT_OK);
    EXPECT_CREATE(method, DPT_OPTIM_ADAMW, DPT_OK);
    EXPECT_CREATE(schedule, DPT_SCHED_COSINE, DPT_OK);
}

/* A rejection records a message; the optimizer is left empty, so that
 * destroying it is harmless. */
static void test_create_failure_state(void)
{
    dpt_optim_params p = make_params(DPT_OPTIM_ADAM, 0.01, 0.9, 0.0);
    p.beta2 = 1.0;
    dpt_optimizer opt;
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_optimizer_create(&opt, &p, 4), DPT_ERR_ARG);
    CU_ASSERT(strlen(dpt_error_message()) > 0);
    CU_ASSERT_PTR_NULL(opt.first);
    CU_ASSERT_PTR_NULL(opt.second);
    CU_ASSERT_EQUAL(opt.n, 0);
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
    CU_ASSERT_EQUAL(p.rho, 0.9);
    CU_ASSERT_EQUAL(p.beta1, 0.9);
    CU_ASSERT_EQUAL(p.beta2, 0.999);
    CU_ASSERT_EQUAL(p.delta, 0.0);
    CU_ASSERT_EQUAL(p.step_size, 1);
    CU_ASSERT_EQUAL(p.gamma, 0.1);
    CU_ASSERT_EQUAL(p.warmup_steps, 0);
    static const char *const methods[DPT_OPTIM_COUNT_] = {
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adam", "adamw",
        "lbfgs", "cg", "cg_fr", "newton_cg", "newton", "bfgs"};
    for (int m = 0; m < DPT_OPTIM_COUNT_; m++) {
        CU_ASSERT_STRING_EQUAL(dpt_optim_method_name((dpt_optim_method)m), methods[m]);
        CU_ASSERT_EQUAL(dpt_optim_is_second_order((dpt_optim_method)m), m >= DPT_OPTIM_LBFGS);
    }
    /* second-order methods are not step rules: the optimizer refuses them */
    dpt_optim_params second = p;
    second.method = DPT_OPTIM_LBFGS;
    dpt_optimizer refused;
    CU_ASSERT_EQUAL(dpt_optimizer_create(&refused, &second, 4), DPT_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(dpt_optim_method_name(DPT_OPTIM_COUNT_), "?");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_STEP), "step");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_EXPONENTIAL), "exponential");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_COSINE), "cosine");
    CU_ASSERT_STRING_EQUAL(dpt_schedule_name(DPT_SCHED_COUNT_), "?");
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
        {"Nesterov first step by hand", test_nesterov_first_step_by_hand},
        {"convergence on a quadratic", test_convergence},
    };
    static const dpt_test book[] = {
        {"SGD matches algorithm 8.1", test_book_sgd},
        {"momentum matches algorithm 8.2", test_book_momentum},
        {"Nesterov matches algorithm 8.3", test_book_nesterov},
        {"AdaGrad matches algorithm 8.4", test_book_adagrad},
        {"RMSProp matches algorithm 8.5", test_book_rmsprop},
        {"RMSProp-Nesterov matches algorithm 8.6", test_book_rmsprop_nesterov},
        {"Adam matches algorithm 8.7", test_book_adam},
        {"AdamW matches 8.7 + decoupled decay", test_book_adamw},
        {"default deltas", test_default_deltas},
        {"AdaGrad first steps by hand", test_adagrad_first_steps_by_hand},
        {"RMSProp first step by hand", test_rmsprop_first_step_by_hand},
        {"RMSProp-Nesterov first step by hand", test_rmsprop_nesterov_first_step_by_hand},
        {"Adam first step by hand", test_adam_first_step_by_hand},
        {"Adam first step is eps (beta2 0.9999)", test_adam_first_step_is_eps},
        {"Adam vs AdamW first step with decay", test_adam_vs_adamw_first_step},
    };
    static const dpt_test schedules[] = {
        {"linear (eq. 8.14)", test_linear_schedule},
        {"linear, exact binary values", test_linear_schedule_exact},
        {"constant", test_constant_schedule},
        {"step returns lr and counts", test_step_returns_lr_and_counts},
        {"step", test_step_schedule},
        {"exponential", test_exponential_schedule},
        {"cosine", test_cosine_schedule},
        {"warmup, constant", test_warmup_constant},
        {"warmup, linear and step", test_warmup_linear_and_step},
        {"warmup, cosine", test_warmup_cosine},
        {"optimizer follows warmup", test_optimizer_follows_warmup},
    };
    static const dpt_test state[] = {
        {"state bytes per method", test_state_bytes},
        {"slices equal the whole", test_slices_equal_whole},
        {"step with its norm equals step, then norm", test_step_sumsq_matches_separate},
        {"step that clears the gradient equals step, then memset", test_step_clear_matches_sumsq},
    };
    static const dpt_test params[] = {
        {"create rejects bad parameters", test_create_rejects_bad_params},
        {"create checks the new parameters", test_create_checks_new_params},
        {"create accepts the edges", test_create_accepts_edges},
        {"failed create leaves it empty", test_create_failure_state},
        {"defaults and names", test_params_defaults_and_names},
    };
    return DPT_ADD_SUITE("updates", updates) ||
           DPT_ADD_SUITE("book", book) ||
           DPT_ADD_SUITE("schedules", schedules) ||
           DPT_ADD_SUITE("state", state) ||
           DPT_ADD_SUITE("parameters", params);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(register_suites(), CU_BRM_VERBOSE);
}
