/* Output losses. Each returns the SUM of per-sample losses and, optionally,
 * the gradient of that sum with respect to the network output. */
#include "dpt/nn.h"

#include <math.h>

const char *dpt_loss_name(dpt_loss_kind loss)
{
    switch (loss) {
    case DPT_LOSS_SOFTMAX_XENT: return "softmax_cross_entropy";
    case DPT_LOSS_MSE: return "mse";
    }
    return "?";
}

static int arg_max(const dpt_real *row, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

/* -log softmax(z)_y = logsumexp(z) - z_y, computed after subtracting max(z)
 * so that exp never overflows; d/dz = softmax(z) - onehot(y). */
static dpt_acc softmax_xent_row(dpt_real *grad, const dpt_real *z, int label, int K)
{
    dpt_real z_max = z[arg_max(z, K)];
    dpt_acc sum_exp = 0;
    for (int k = 0; k < K; k++) sum_exp += exp((dpt_acc)(z[k] - z_max));
    dpt_acc log_sum = log(sum_exp);
    if (grad) {
        for (int k = 0; k < K; k++)
            grad[k] = (dpt_real)(exp((dpt_acc)(z[k] - z_max) - log_sum));
        grad[label] -= 1;
    }
    return log_sum - (dpt_acc)(z[label] - z_max);
}

/* (1/K) sum_k (z_k - t_k)^2 with t = onehot(y); d/dz_k = 2 (z_k - t_k) / K. */
static dpt_acc mse_row(dpt_real *grad, const dpt_real *z, int label, int K)
{
    dpt_acc sum = 0;
    for (int k = 0; k < K; k++) {
        dpt_acc diff = (dpt_acc)z[k] - (k == label ? 1.0 : 0.0);
        sum += diff * diff;
        if (grad) grad[k] = (dpt_real)(2.0 * diff / K);
    }
    return sum / K;
}

dpt_acc dpt_loss_forward_backward(dpt_real *dlogits, long *correct,
                                  const dpt_real *logits, const uint8_t *labels,
                                  int B, int K, dpt_loss_kind loss)
{
    dpt_acc total = 0;
    long hits = 0;
    for (int i = 0; i < B; i++) {
        const dpt_real *z = logits + (size_t)i * K;
        dpt_real *grad = dlogits ? dlogits + (size_t)i * K : NULL;
        total += loss == DPT_LOSS_MSE ? mse_row(grad, z, labels[i], K)
                                      : softmax_xent_row(grad, z, labels[i], K);
        hits += arg_max(z, K) == labels[i];
    }
    if (correct) *correct += hits;
    return total;
}
