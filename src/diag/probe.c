/* The curvature probe along the gradient and the layer gradient check
 * (dpt/diag.h). */
#include <float.h>
#include <math.h>

#include "dpt/diag.h"

void dpt_curvature_probe_eval(dpt_curvature_probe *out, double gtg, double gthg, double eps)
{
    out->gtg = gtg;
    out->gthg = gthg;
    out->eps = eps;
    out->first_order = eps * gtg;                  /* Goodfellow et al. eq. 4.9 */
    out->second_order = 0.5 * eps * eps * gthg;
    out->ill_conditioned = out->second_order > out->first_order;
    out->eps_star = gthg > 0 ? gtg / gthg : 0;     /* eq. 4.10 */
    out->predicted_change = out->second_order - out->first_order;
}

dpt_grad_health dpt_grad_health_check(double grad_norm, double weight_norm, double ratio_min,
                                      double ratio_max, double *ratio)
{
    *ratio = grad_norm / (weight_norm > 0 ? weight_norm : DBL_MIN);
    if (!isfinite(*ratio) || *ratio > ratio_max) return DPT_GRAD_EXPLODING;
    if (*ratio < ratio_min) return DPT_GRAD_VANISHING;
    return DPT_GRAD_OK;
}

const char *dpt_grad_health_name(dpt_grad_health h)
{
    switch (h) {
    case DPT_GRAD_VANISHING: return "vanishing";
    case DPT_GRAD_EXPLODING: return "exploding";
    default: return "ok";
    }
}
