/* Output losses. Each returns the SUM of per-sample losses and, optionally,
 * the gradient of that sum with respect to the network output. */
#include "dpt/nn.h"

#include <math.h>

const char *dpt_loss_name(dpt_loss_kind loss)
{
    switch (loss) {
    case DPT_LOSS_SOFTMAX_XENT: return "softmax_cross_entropy";
    case DPT_LOSS_MSE: return "mse";
    case DPT_LOSS_SIGMOID_BCE: return "sigmoid_bce";
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

/* Binary cross-entropy of s(z) = 1 / (1 + e^-z) against t, written with
 * softplus(u) = log(1 + e^u) so that no exp overflows:
 *   -t log s(z) - (1 - t) log(1 - s(z)) = softplus(z) - t z,  d/dz = s(z) - t. */
static dpt_acc sigmoid_bce_row(dpt_real *grad, const dpt_real *z, int label, int K, int *hit)
{
    dpt_acc sum = 0;
    for (int k = 0; k < K; k++) {
        double zk = (double)z[k], t = K == 1 ? (double)label : (double)(k == label);
        double softplus = zk > 0 ? zk + log1p(exp(-zk)) : log1p(exp(zk));
        sum += softplus - t * zk;
        if (grad) grad[k] = (dpt_real)(1.0 / (1.0 + exp(-zk)) - t);
    }
    *hit = K == 1 ? (z[0] > 0) == (label != 0) : arg_max(z, K) == label;
    return sum;
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
        int hit = arg_max(z, K) == labels[i];
        switch (loss) {
        case DPT_LOSS_MSE: total += mse_row(grad, z, labels[i], K); break;
        case DPT_LOSS_SIGMOID_BCE: total += sigmoid_bce_row(grad, z, labels[i], K, &hit); break;
        default: total += softmax_xent_row(grad, z, labels[i], K); break;
        }
        hits += hit;
    }
    if (correct) *correct += hits;
    return total;
}
