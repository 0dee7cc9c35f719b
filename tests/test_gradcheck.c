/* Gradient checks: the dense layer, every activation and every loss
 * against central finite differences
 *     df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h).
 * In the double build the maximum relative error must be < 1e-6 (the
 * issue's bound); in the single build float rounding allows only ~1e-2. */
#include "cunit_util.h"
#include "fd_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/nn.h"
#include "dpt/rng.h"

/* Error measure |a - n| / max(|a|, |n|, REL_FLOOR): the floor keeps
 * gradients that are zero up to rounding from dividing by nothing. Float
 * forward passes make the difference quotient itself noisy at ~1e-3, hence
 * the coarse single-precision bounds; the double build is the real check. */
#ifdef DPT_DOUBLE
#define FD_STEP 1e-5
#define MAX_REL_ERR 1e-6
#define REL_FLOOR 1e-4
#else
#define FD_STEP 1e-3
#define MAX_REL_ERR 2e-2
#define REL_FLOOR 1e-2
#endif

static double rel_err(double a, double n) { return dpt_fd_rel_err(a, n, REL_FLOOR); }

static void fill_uniform(dpt_real *x, size_t n, double lo, double hi, uint64_t seed)
{
    dpt_fd_fill_uniform(x, n, lo, hi, seed);
}

/* Keeps inputs away from ReLU's kink so that the difference quotient never
 * straddles it. */
static void push_off_zero(dpt_real *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) < 0.1) x[i] = x[i] < 0 ? -0.1 - x[i] : 0.1 + x[i];
}

/* ---------------------------------------------------------------- activations */

/* f(x) = sum_i r_i act(x_i): a scalar whose gradient is r_i act'(x_i). */
static double act_objective(const dpt_real *x, const dpt_real *r, size_t n, dpt_activation act)
{
    dpt_real *y = malloc(sizeof(dpt_real) * n);
    dpt_activation_forward(y, x, n, act);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)r[i] * y[i];
    free(y);
    return sum;
}

static void check_activation(dpt_activation act)
{
    enum { N = 40 };
    dpt_real x[N], r[N], y[N], dx[N];
    fill_uniform(x, N, -3, 3, 11 + act);
    fill_uniform(r, N, -1, 1, 12);
    push_off_zero(x, N);
    dpt_activation_forward(y, x, N, act);
    dpt_activation_backward(dx, r, y, N, act);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        dpt_real keep = x[i];
        x[i] = keep + (dpt_real)FD_STEP;
        double plus = act_objective(x, r, N, act);
        x[i] = keep - (dpt_real)FD_STEP;
        double minus = act_objective(x, r, N, act);
        x[i] = keep;
        worst = fmax(worst, rel_err(dx[i], (plus - minus) / (2 * FD_STEP)));
    }
    if (worst >= MAX_REL_ERR) printf("\n  %s: max rel err %.3g\n", dpt_activation_name(act), worst);
    CU_ASSERT(worst < MAX_REL_ERR);
}

static void test_activations(void)
{
    check_activation(DPT_ACT_IDENTITY);
    check_activation(DPT_ACT_RELU);
    check_activation(DPT_ACT_TANH);
    check_activation(DPT_ACT_SIGMOID);
}

/* ---------------------------------------------------------------- dense layer */

enum { DB = 3, DIN = 5, DOUT = 4 };

static double dense_objective(const dpt_real *in, const dpt_real *w, const dpt_real *b,
                              const dpt_real *r)
{
    dpt_real out[DB * DOUT];
    dpt_dense_forward(out, in, w, b, DB, DIN, DOUT);
    double sum = 0;
    for (int i = 0; i < DB * DOUT; i++) sum += (double)r[i] * out[i];
    return sum;
}

/* Perturbs v[i] both ways and returns the central difference of the dense objective. */
static double dense_fd(dpt_real *v, int i, const dpt_real *in, const dpt_real *w,
                       const dpt_real *b, const dpt_real *r)
{
    dpt_real keep = v[i];
    v[i] = keep + (dpt_real)FD_STEP;
    double plus = dense_objective(in, w, b, r);
    v[i] = keep - (dpt_real)FD_STEP;
    double minus = dense_objective(in, w, b, r);
    v[i] = keep;
    return (plus - minus) / (2 * FD_STEP);
}

static void test_dense(void)
{
    dpt_real in[DB * DIN], w[DOUT * DIN], b[DOUT], r[DB * DOUT];
    dpt_real din[DB * DIN], dw[DOUT * DIN], db[DOUT];
    fill_uniform(in, DB * DIN, -1, 1, 1);
    fill_uniform(w, DOUT * DIN, -1, 1, 2);
    fill_uniform(b, DOUT, -1, 1, 3);
    fill_uniform(r, DB * DOUT, -1, 1, 4);
    /* backward accumulates: start dw, db at known values and subtract them */
    for (int i = 0; i < DOUT * DIN; i++) dw[i] = 0.5;
    for (int i = 0; i < DOUT; i++) db[i] = -0.25;
    dpt_dense_backward(din, dw, db, r, in, w, DB, DIN, DOUT);
    double worst = 0;
    for (int i = 0; i < DOUT * DIN; i++)
        worst = fmax(worst, rel_err(dw[i] - 0.5, dense_fd(w, i, in, w, b, r)));
    for (int i = 0; i < DOUT; i++)
        worst = fmax(worst, rel_err(db[i] + 0.25, dense_fd(b, i, in, w, b, r)));
    for (int i = 0; i < DB * DIN; i++)
        worst = fmax(worst, rel_err(din[i], dense_fd(in, i, in, w, b, r)));
    CU_ASSERT(worst < MAX_REL_ERR);
    /* forward against a direct triple loop */
    dpt_real out[DB * DOUT];
    dpt_dense_forward(out, in, w, b, DB, DIN, DOUT);
    for (int n = 0; n < DB; n++)
        for (int o = 0; o < DOUT; o++) {
            double expect = b[o];
            for (int i = 0; i < DIN; i++) expect += (double)in[n * DIN + i] * w[o * DIN + i];
            CU_ASSERT_DOUBLE_EQUAL(out[n * DOUT + o], expect, 1e-5);
        }
}

/* ---------------------------------------------------------------- losses */

static void check_loss(dpt_loss_kind kind)
{
    enum { B = 4, K = 5 };
    dpt_real z[B * K], dz[B * K];
    uint8_t labels[B] = {0, 3, 4, 1};
    fill_uniform(z, B * K, -2, 2, 21 + kind);
    long correct = 0;
    dpt_loss_forward_backward(dz, &correct, z, labels, B, K, kind);
    double worst = 0;
    for (int i = 0; i < B * K; i++) {
        dpt_real keep = z[i];
        z[i] = keep + (dpt_real)FD_STEP;
        double plus = dpt_loss_forward_backward(NULL, NULL, z, labels, B, K, kind);
        z[i] = keep - (dpt_real)FD_STEP;
        double minus = dpt_loss_forward_backward(NULL, NULL, z, labels, B, K, kind);
        z[i] = keep;
        worst = fmax(worst, rel_err(dz[i], (plus - minus) / (2 * FD_STEP)));
    }
    if (worst >= MAX_REL_ERR) printf("\n  %s: max rel err %.3g\n", dpt_loss_name(kind), worst);
    CU_ASSERT(worst < MAX_REL_ERR);
}

static void test_losses(void)
{
    check_loss(DPT_LOSS_SOFTMAX_XENT);
    check_loss(DPT_LOSS_MSE);
    check_loss(DPT_LOSS_SIGMOID_BCE);
}

static void test_loss_values(void)
{
    /* uniform logits: softmax = 1/K, loss = log K per sample */
    dpt_real z[2 * 4] = {0};
    uint8_t labels[2] = {1, 2};
    double loss = dpt_loss_forward_backward(NULL, NULL, z, labels, 2, 4, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_DOUBLE_EQUAL(loss, 2 * log(4.0), 1e-6);
    /* huge logits must not overflow */
    dpt_real big[3] = {1000, -1000, 999};
    uint8_t label = 2;
    loss = dpt_loss_forward_backward(NULL, NULL, big, &label, 1, 3, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_DOUBLE_EQUAL(loss, 1 + log(1 + exp(-1.0)), 1e-5);
    /* mse: z = (0.5, 0, 0), label 0: ((0.5-1)^2) / 3 */
    dpt_real m[3] = {0.5, 0, 0};
    label = 0;
    long correct = 0;
    loss = dpt_loss_forward_backward(NULL, &correct, m, &label, 1, 3, DPT_LOSS_MSE);
    CU_ASSERT_DOUBLE_EQUAL(loss, 0.25 / 3, 1e-7);
    CU_ASSERT_EQUAL(correct, 1);
    /* sigmoid BCE, one output: z = 0 gives log 2 whatever the label;
     * z = 2, label 1: log(1 + e^-2); a hit when z > 0 matches the label */
    dpt_real z1[2] = {0, 2};
    uint8_t y1[2] = {0, 1};
    correct = 0;
    loss = dpt_loss_forward_backward(NULL, &correct, z1, y1, 2, 1, DPT_LOSS_SIGMOID_BCE);
    CU_ASSERT_DOUBLE_EQUAL(loss, log(2.0) + log(1 + exp(-2.0)), 1e-6);
    CU_ASSERT_EQUAL(correct, 2); /* z = 0 predicts 0 (not > 0) for label 0; z = 2 predicts 1 */
}

int main(void)
{
    static const dpt_test tests[] = {
        {"activations vs finite differences", test_activations},
        {"dense layer vs finite differences", test_dense},
        {"losses vs finite differences", test_losses},
        {"loss values", test_loss_values},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("gradcheck", tests), CU_BRM_VERBOSE);
}
