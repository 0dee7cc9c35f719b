/* The gradient noise scale estimator of dpt/noise.h (McCandlish et al.
 * 2018, eqs. A.2-A.3 with separately smoothed numerator and denominator). */
#include "dpt/noise.h"

#include <math.h>
#include <string.h>

dpt_status dpt_noise_scale_init(dpt_noise_scale *ns, double decay)
{
    memset(ns, 0, sizeof *ns);
    if (!(decay >= 0 && decay < 1))
        return DPT_FAIL(DPT_ERR_ARG, "noise scale: EMA decay %g must be in [0, 1)", decay);
    ns->decay = decay;
    return DPT_OK;
}

dpt_status dpt_noise_scale_update(dpt_noise_scale *ns, double small_sq, double big_sq, double b_small,
                                  double b_big)
{
    if (!(b_small >= 1 && b_big > b_small) || !isfinite(small_sq) || !isfinite(big_sq) || !isfinite(b_big))
        return DPT_FAIL(DPT_ERR_ARG, "noise scale: needs finite norms and 1 <= B_small (%g) < B_big (%g)",
                        b_small, b_big);
    ns->g2 = (b_big * big_sq - b_small * small_sq) / (b_big - b_small);
    ns->s = (small_sq - big_sq) / (1 / b_small - 1 / b_big);
    /* EMAs started from zero and divided by the weight they have gathered
     * (the bias correction of Adam, Kingma & Ba 2015, section 3) */
    ns->raw_g2 = ns->decay * ns->raw_g2 + (1 - ns->decay) * ns->g2;
    ns->raw_s = ns->decay * ns->raw_s + (1 - ns->decay) * ns->s;
    ns->weight = ns->decay * ns->weight + (1 - ns->decay);
    ns->ema_g2 = ns->raw_g2 / ns->weight;
    ns->ema_s = ns->raw_s / ns->weight;
    ns->b_simple = ns->ema_g2 > 0 ? ns->ema_s / ns->ema_g2 : 0;
    ns->steps++;
    return DPT_OK;
}
