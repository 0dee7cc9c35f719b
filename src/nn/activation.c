/* Element-wise activations. Derivatives are written through the output y,
 * so backward needs only the stored layer output, not its input. */
#include "dpt/nn.h"

#include <math.h>

#include "../core/clones.h"

const char *dpt_activation_name(dpt_activation act)
{
    switch (act) {
    case DPT_ACT_IDENTITY: return "identity";
    case DPT_ACT_RELU: return "relu";
    case DPT_ACT_TANH: return "tanh";
    case DPT_ACT_SIGMOID: return "sigmoid";
    }
    return "?";
}

static dpt_real sigmoid(dpt_real x)
{
    /* the two branches avoid exp overflow for large |x| */
    if (x >= 0) return 1 / (1 + dpt_exp(-x));
    dpt_real e = dpt_exp(x);
    return e / (1 + e);
}

DPT_CLONES void dpt_activation_forward(dpt_real *y, const dpt_real *x, size_t n, dpt_activation act)
{
    switch (act) {
    case DPT_ACT_IDENTITY:
        if (y != x) for (size_t i = 0; i < n; i++) y[i] = x[i];
        break;
    case DPT_ACT_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
        break;
    case DPT_ACT_TANH:
        for (size_t i = 0; i < n; i++) y[i] = dpt_tanh(x[i]);
        break;
    case DPT_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoid(x[i]);
        break;
    }
}

DPT_CLONES void dpt_activation_backward(dpt_real *dx, const dpt_real *dy, const dpt_real *y,
                             size_t n, dpt_activation act)
{
    switch (act) {
    case DPT_ACT_IDENTITY:
        if (dx != dy) for (size_t i = 0; i < n; i++) dx[i] = dy[i];
        break;
    case DPT_ACT_RELU:
        /* dy[i] loaded whatever the sign: a conditional load is a branch per
         * element (mispredicted half the time on ReLU's random signs), an
         * unconditional one lets the compiler select with a vector mask */
        for (size_t i = 0; i < n; i++) {
            dpt_real g = dy[i];
            dx[i] = y[i] > 0 ? g : 0;
        }
        break;
    case DPT_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
        break;
    case DPT_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
        break;
    }
}
