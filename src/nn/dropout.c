/* Inverted dropout (Srivastava et al. 2014; Goodfellow et al. 7.12). */
#include "dpt/layers.h"

/* Keeps unit i when a uniform draw in [0, 1) falls below keep. Exactly one
 * draw is consumed per unit whatever keep is, also for keep = 1 (all ones),
 * so that the stream's position after the call depends on n alone and a
 * change of keep never shifts the masks drawn afterwards. keep <= 0 gives
 * all zeros (no draw is below it) and never stores 1 / keep; callers
 * validate keep in (0, 1]. */
void dpt_dropout_mask(dpt_real *mask, size_t n, double keep, dpt_rng *rng)
{
    const dpt_real scale = keep > 0 ? (dpt_real)(1.0 / keep) : 0;
    dpt_rng_mask_below(rng, mask, n, keep, scale); /* the draws of dpt_rng_uniform, in bulk */
}

/* Forward (out = x mask) and backward (dx = dout mask) are the same map. */
void dpt_dropout_apply(dpt_real *out, const dpt_real *x, const dpt_real *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = x[i] * mask[i];
}
