/* The gradient noise scale estimator (dpt/noise.h) on a synthetic problem
 * whose answer is known: per-sample gradients g_i = G + sigma (.) z_i,
 * z_i standard normal, so |G|^2 and tr(Sigma) = sum sigma_j^2 are known and
 * B_simple = tr(Sigma) / |G|^2. P = 4 simulated ranks with 8 samples each
 * (B_small = 8, B_big = 32); the estimates, averaged by the EMA over
 * thousands of steps, must land within a few percent. */
#include <math.h>
#include <string.h>

#include "cunit_util.h"
#include "dpt/noise.h"
#include "dpt/rng.h"

#define DIM 16
#define RANKS 4
#define LOCAL 8
#define STEPS 20000

static void test_known_noise_scale(void)
{
    double G[DIM], sigma[DIM], g2_true = 0, tr_true = 0;
    for (int j = 0; j < DIM; j++) {
        G[j] = 0.1 * (j % 3 - 1) + 0.05;
        sigma[j] = 0.2 + 0.05 * j;
        g2_true += G[j] * G[j];
        tr_true += sigma[j] * sigma[j];
    }
    dpt_noise_scale ns;
    CU_ASSERT_FATAL(dpt_noise_scale_init(&ns, 0.9995) == DPT_OK);
    dpt_rng rng;
    dpt_rng_init(&rng, 7, DPT_STREAM_TEST, 0, 0);
    for (int step = 0; step < STEPS; step++) {
        double big[DIM] = {0}, small_sq = 0;
        for (int r = 0; r < RANKS; r++) {
            double local[DIM] = {0}, sq = 0;
            for (int i = 0; i < LOCAL; i++)
                for (int j = 0; j < DIM; j++) local[j] += (G[j] + sigma[j] * dpt_rng_normal(&rng)) / LOCAL;
            for (int j = 0; j < DIM; j++) sq += local[j] * local[j], big[j] += local[j] / RANKS;
            small_sq += sq / RANKS;
        }
        double big_sq = 0;
        for (int j = 0; j < DIM; j++) big_sq += big[j] * big[j];
        CU_ASSERT_FATAL(dpt_noise_scale_update(&ns, small_sq, big_sq, LOCAL, LOCAL * RANKS) == DPT_OK);
    }
    double b_true = tr_true / g2_true;
    printf("\n  |G|^2 %.4f (true %.4f), S %.4f (true %.4f), B_simple %.1f (true %.1f)", ns.ema_g2, g2_true,
           ns.ema_s, tr_true, ns.b_simple, b_true);
    CU_ASSERT(fabs(ns.ema_g2 - g2_true) < 0.05 * g2_true);
    CU_ASSERT(fabs(ns.ema_s - tr_true) < 0.05 * tr_true);
    CU_ASSERT(fabs(ns.b_simple - b_true) < 0.08 * b_true);
    CU_ASSERT_EQUAL(ns.steps, STEPS);
}

static void test_bad_arguments(void)
{
    dpt_noise_scale ns;
    CU_ASSERT_EQUAL(dpt_noise_scale_init(&ns, 1.0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_noise_scale_init(&ns, 0.9), DPT_OK);
    CU_ASSERT_EQUAL(dpt_noise_scale_update(&ns, 1, 1, 8, 8), DPT_ERR_ARG); /* one rank */
    CU_ASSERT_EQUAL(dpt_noise_scale_update(&ns, NAN, 1, 8, 16), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(ns.steps, 0);
    /* one exact step: |G_small|^2 = 2, |G_big|^2 = 1.5 at B = 8, 16:
     * |G|^2 = (16 * 1.5 - 8 * 2) / 8 = 1, S = 0.5 / (1/8 - 1/16) = 8 */
    CU_ASSERT_EQUAL(dpt_noise_scale_update(&ns, 2, 1.5, 8, 16), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(ns.g2, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(ns.s, 8.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(ns.b_simple, 8.0, 1e-12); /* bias-corrected: the first EMA is the value */
}

int main(void)
{
    static const dpt_test tests[] = {
        {"noise scale of a known gradient distribution", test_known_noise_scale},
        {"bad arguments and one exact step", test_bad_arguments},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("noise", tests), CU_BRM_VERBOSE);
}
