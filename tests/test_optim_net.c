/* The adaptive optimizers on a real (tiny) network: a dense 4 -> 3 tanh -> 2
 * model with softmax cross-entropy, trained for a few steps on a fixed batch
 * by the library optimizer, against an independent double-precision
 * implementation of the book's algorithm on a copy of the parameter vector
 * whose gradients come from the same model at the reference's parameters.
 *
 * References: Goodfellow, Bengio, Courville, Deep Learning (2016),
 * algorithms 8.6 (RMSProp with Nesterov momentum) and 8.7 (Adam);
 * Loshchilov & Hutter, Decoupled Weight Decay Regularization (2019). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cunit_util.h"
#include "dpt/model.h"
#include "dpt/optim.h"

/* The reference's parameters are rounded to dpt_real before every gradient
 * (the model computes in dpt_real), so the two runs differ by the rounding
 * of the updates only, carried through 5 steps of the network. */
#ifdef DPT_DOUBLE
#define REL_TOL 1e-12
#else
#define REL_TOL 1e-5
#endif
#define PARAM_FLOOR 0.1 /* parameters are O(0.1 - 1) */

enum { B = 6, IN = 4, NP_MAX = 64, STEPS = 5 };

/* ================================================================ the model */

static dpt_model model; /* large (fixed-size layer tables): not on the stack */
static dpt_model_spec spec;

/* A fixed batch: inputs sin(1.3 b + 0.7 j), labels by the sign of x0 + x1. */
static dpt_real batch_x[B][IN];
static uint8_t batch_y[B];

static void make_batch(void)
{
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < IN; j++) batch_x[b][j] = (dpt_real)sin(1.3 * b + 0.7 * j);
        batch_y[b] = batch_x[b][0] + batch_x[b][1] > 0;
    }
}

/* "3 tanh, 2" (dense 3, tanh, dense 2), softmax cross-entropy, input {4,1,1}. */
static int make_model(void)
{
    char why[256];
    memset(&spec, 0, sizeof spec);
    spec.loss = DPT_LOSS_SOFTMAX_XENT;
    spec.bn_sync = 1;
    if (dpt_layer_list_parse("3 tanh, 2", spec.trunk, DPT_MAX_LAYERS, &spec.n_trunk, why,
                             sizeof why) != DPT_OK) {
        printf("\n  parse: %s\n", why);
        return -1;
    }
    const dpt_shape input = {IN, 1, 1};
    if (dpt_model_create(&model, input, &spec, B) != DPT_OK) return -1;
    if (dpt_model_init_params(&model, 20240607, NULL) != DPT_OK) return -1;
    make_batch();
    return 0;
}

/* The gradient of the MEAN loss over the batch at parameters `at`: copied
 * into the model, forward and backward (which sums over samples), scaled by
 * 1/B. Returns the mean loss. */
static double mean_grad(const dpt_real *at, dpt_real *grad)
{
    dpt_forward_ctx ctx; /* all zero: no batch statistics, no dropout, no reduction, no hooks */
    memset(&ctx, 0, sizeof ctx);
    dpt_batch_metrics m;
    memset(&m, 0, sizeof m);
    memcpy(model.params, at, model.n_params * sizeof *at);
    memset(model.grads, 0, model.n_params * sizeof *model.grads);
    dpt_model_forward_backward(&model, &batch_x[0][0], batch_y, B, &ctx, &m);
    for (size_t i = 0; i < model.n_params; i++) grad[i] = model.grads[i] / (dpt_real)B;
    return m.total / B;
}

/* ================================================================ the reference, in double */

typedef struct ref {
    size_t n;
    double alpha, rho, rho1, rho2, delta, lambda;
    int decoupled;                          /* AdamW */
    double theta[NP_MAX], v[NP_MAX], s[NP_MAX], r[NP_MAX];
    long t;
} ref;

static void ref_init(ref *q, const dpt_optim_params *p, const dpt_real *theta0, size_t n)
{
    memset(q, 0, sizeof *q);
    q->n = n;
    q->alpha = p->momentum;
    q->rho = p->rho;
    q->rho1 = p->beta1;
    q->rho2 = p->beta2;
    q->delta = p->method == DPT_OPTIM_RMSPROP_NESTEROV ? 1e-6 : 1e-8; /* the book's (8.6, 8.7) */
    q->lambda = p->weight_decay;
    q->decoupled = p->method == DPT_OPTIM_ADAMW;
    for (size_t i = 0; i < n; i++) q->theta[i] = theta0[i];
}

/* The model's mean-loss gradient at x (double, rounded to dpt_real for the
 * model), plus the L2 term lambda x unless the decay is decoupled. */
static void ref_grad(const ref *q, const double *x, double *g)
{
    dpt_real at[NP_MAX], gr[NP_MAX];
    for (size_t i = 0; i < q->n; i++) at[i] = (dpt_real)x[i];
    mean_grad(at, gr);
    const double l2 = q->decoupled ? 0 : q->lambda;
    for (size_t i = 0; i < q->n; i++) g[i] = gr[i] + l2 * x[i];
}

/* Algorithm 8.7 (Adam): t <- t + 1; s <- rho1 s + (1 - rho1) g;
 * r <- rho2 r + (1 - rho2) g.g; s^ <- s / (1 - rho1^t); r^ <- r / (1 - rho2^t);
 * theta <- theta - eps s^ / (sqrt(r^) + delta)
 * (AdamW: g without L2, and - eps lambda theta as well). */
static void ref_adam(ref *q, double eps)
{
    double g[NP_MAX];
    ref_grad(q, q->theta, g);
    q->t++;
    const double c1 = 1 - pow(q->rho1, (double)q->t), c2 = 1 - pow(q->rho2, (double)q->t);
    const double decay = q->decoupled ? q->lambda : 0;
    for (size_t i = 0; i < q->n; i++) {
        q->s[i] = q->rho1 * q->s[i] + (1 - q->rho1) * g[i];
        q->r[i] = q->rho2 * q->r[i] + (1 - q->rho2) * g[i] * g[i];
        double step = eps * (q->s[i] / c1) / (sqrt(q->r[i] / c2) + q->delta);
        q->theta[i] -= step + eps * decay * q->theta[i];
    }
}

/* Algorithm 8.6 (RMSProp with Nesterov momentum): theta~ <- theta + alpha v;
 * g at theta~; r <- rho r + (1 - rho) g.g; v <- alpha v - eps / sqrt(r) . g;
 * theta <- theta + v; with sqrt(delta + r) for sqrt(r) as the library
 * documents (adaptive.c). */
static void ref_rmsprop_nesterov(ref *q, double eps)
{
    double x[NP_MAX], g[NP_MAX];
    for (size_t i = 0; i < q->n; i++) x[i] = q->theta[i] + q->alpha * q->v[i];
    ref_grad(q, x, g);
    for (size_t i = 0; i < q->n; i++) {
        q->r[i] = q->rho * q->r[i] + (1 - q->rho) * g[i] * g[i];
        q->v[i] = q->alpha * q->v[i] - eps / sqrt(q->delta + q->r[i]) * g[i];
        q->theta[i] += q->v[i];
    }
}

/* ================================================================ the comparison */

/* STEPS updates by the library (gradient at its stored parameters, which
 * for rmsprop_nesterov are the look-ahead point phi = theta + alpha v) and
 * by the reference; then phi (or theta) must agree, and training on the
 * fixed batch must have lowered its loss. */
static void check_on_network(dpt_optim_params p)
{
    const size_t n = model.n_params;
    CU_ASSERT_FATAL(n > 0 && n <= NP_MAX);
    dpt_real lib[NP_MAX], start[NP_MAX], grad[NP_MAX];
    memcpy(start, model.params, n * sizeof *start);
    memcpy(lib, start, n * sizeof *lib);
    ref q;
    ref_init(&q, &p, lib, n);
    dpt_optimizer opt;
    CU_ASSERT_EQUAL_FATAL(dpt_optimizer_create(&opt, &p, n), DPT_OK);
    const double loss0 = mean_grad(lib, grad);
    for (int k = 0; k < STEPS; k++) {
        mean_grad(lib, grad);
        dpt_optimizer_step(&opt, lib, grad);
        if (p.method == DPT_OPTIM_RMSPROP_NESTEROV) ref_rmsprop_nesterov(&q, p.lr);
        else ref_adam(&q, p.lr);
    }
    const int nesterov = p.method == DPT_OPTIM_RMSPROP_NESTEROV;
    double moved = 0;
    for (size_t i = 0; i < n; i++) {
        const double want = q.theta[i] + (nesterov ? q.alpha * q.v[i] : 0);
        CU_ASSERT_DOUBLE_EQUAL(lib[i], want, REL_TOL * fmax(fabs(want), PARAM_FLOOR));
        moved = fmax(moved, fabs(lib[i] - start[i]));
    }
    CU_ASSERT(moved > p.lr); /* the comparison is not of two unmoved vectors */
    CU_ASSERT(mean_grad(lib, grad) < loss0);
    memcpy(model.params, start, n * sizeof *lib); /* the next test starts from the same point */
    dpt_optimizer_destroy(&opt);
}

static dpt_optim_params net_params(dpt_optim_method method, double lr, double weight_decay)
{
    dpt_optim_params p;
    dpt_optim_params_init(&p);
    p.method = method;
    p.lr = lr;
    p.weight_decay = weight_decay;
    return p;
}

/* Adam (8.7) with the defaults rho1 0.9, rho2 0.999, and with L2 decay. */
static void test_adam(void)
{
    check_on_network(net_params(DPT_OPTIM_ADAM, 0.05, 0.0));
    check_on_network(net_params(DPT_OPTIM_ADAM, 0.05, 0.01));
}

/* AdamW: 8.7 with decoupled weight decay. */
static void test_adamw(void)
{
    check_on_network(net_params(DPT_OPTIM_ADAMW, 0.05, 0.1));
}

/* RMSProp with Nesterov momentum (8.6), alpha 0.9, rho 0.9, with and
 * without L2 decay. */
static void test_rmsprop_nesterov(void)
{
    check_on_network(net_params(DPT_OPTIM_RMSPROP_NESTEROV, 0.01, 0.0));
    check_on_network(net_params(DPT_OPTIM_RMSPROP_NESTEROV, 0.01, 0.01));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    if (make_model() != 0) {
        fprintf(stderr, "test_optim_net: cannot build the model\n");
        CU_cleanup_registry();
        return 1;
    }
    static const dpt_test tests[] = {
        {"Adam on a network matches 8.7", test_adam},
        {"AdamW on a network matches 8.7 + decoupled decay", test_adamw},
        {"RMSProp-Nesterov on a network matches 8.6", test_rmsprop_nesterov},
    };
    int status = dpt_test_run(DPT_ADD_SUITE("optimizers on a network", tests), CU_BRM_VERBOSE);
    dpt_model_destroy(&model);
    return status;
}
