/* dpt/noise.h - the gradient noise scale and the critical batch size
 * (McCandlish, Kaplan, Amodei et al., "An Empirical Model of Large-Batch
 * Training", 2018, appendix A.1), free in data parallelism.
 *
 * With B_small = the local batch of one rank and B_big = the global batch,
 * every step already has the local gradients G_small (one per rank) and
 * their reduced mean G_big. The unbiased estimates
 *     |G|^2 = (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
 *     S     = (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)
 * (|G_small|^2 the mean over ranks of the local squared norms: one extra
 * scalar reduction) are noisy, so they are smoothed separately by
 * exponential moving averages before the ratio
 *     B_simple = EMA(S) / EMA(|G|^2),
 * the batch size beyond which a larger batch (more ranks) stops buying
 * proportionally fewer steps. S estimates tr(Sigma), the trace of the
 * per-sample gradient covariance; |G|^2 the squared norm of the true
 * gradient.
 */
#ifndef DPT_NOISE_H
#define DPT_NOISE_H

#include "dpt/error.h"

typedef struct dpt_noise_scale {
    double decay;        /* EMA weight of the past, in [0, 1) */
    long steps;          /* updates so far */
    double g2, s;        /* the last step's raw estimates of |G|^2 and S */
    double ema_g2, ema_s; /* bias-corrected moving averages */
    double b_simple;     /* EMA(S) / EMA(|G|^2); 0 until EMA(|G|^2) > 0 */
    double raw_g2, raw_s, weight; /* the uncorrected sums behind the EMAs */
} dpt_noise_scale;

/* decay in [0, 1): 0.99 averages over about 100 steps. DPT_ERR_ARG otherwise. */
dpt_status dpt_noise_scale_init(dpt_noise_scale *ns, double decay);

/* One step: small_sq = the mean over ranks of |G_small|^2 (the local mean
 * gradients' squared norms), big_sq = |G_big|^2 of the global mean
 * gradient, b_small < b_big the local and global batch sizes (samples).
 * DPT_ERR_ARG when b_small >= b_big (one rank: no second batch size) or a
 * value is not finite; the state is then unchanged. */
dpt_status dpt_noise_scale_update(dpt_noise_scale *ns, double small_sq, double big_sq, double b_small,
                                  double b_big);

#endif /* DPT_NOISE_H */
