/* dpt/nn.h - dense layers, activations and losses (no MPI here).
 *
 * Conventions (after karpathy/llm.c): every layer is a pair of plain
 * functions, outputs first, shapes in the comment; tensors are row-major with
 * the batch as the leading dimension. Backward functions ACCUMULATE (+=) into
 * parameter gradients, so that a gradient buffer holds the SUM of per-sample
 * gradients over everything passed through since it was zeroed; losses return
 * sums over the batch as well (see ARCHITECTURE.md: sums, not means).
 */
#ifndef DPT_NN_H
#define DPT_NN_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/layers.h"
#include "dpt/real.h"

typedef enum dpt_activation {
    DPT_ACT_IDENTITY = 0,
    DPT_ACT_RELU,
    DPT_ACT_TANH,
    DPT_ACT_SIGMOID
} dpt_activation;

typedef enum dpt_loss_kind {
    DPT_LOSS_SOFTMAX_XENT = 0, /* softmax + cross-entropy on integer labels */
    DPT_LOSS_MSE,              /* mean over outputs of (y - onehot)^2 */
    DPT_LOSS_SIGMOID_BCE       /* binary cross-entropy of sigmoid(z) per output */
} dpt_loss_kind;

const char *dpt_activation_name(dpt_activation act);
const char *dpt_loss_name(dpt_loss_kind loss);

/* ---------------------------------------------------------------- layers */

/* out[B][out_dim] = in[B][in_dim] . w[out_dim][in_dim]^T + b[out_dim] */
void dpt_dense_forward(dpt_real *out, const dpt_real *in, const dpt_real *w,
                       const dpt_real *b, int B, int in_dim, int out_dim);

/* dw[out_dim][in_dim] += dout^T . in;  db[out_dim] += sum_batch dout;
 * din[B][in_dim] = dout . w  (din may be NULL: no input gradient needed). */
void dpt_dense_backward(dpt_real *din, dpt_real *dw, dpt_real *db,
                        const dpt_real *dout, const dpt_real *in,
                        const dpt_real *w, int B, int in_dim, int out_dim);

/* din[B][in_dim] = dout . w alone (the input part of dpt_dense_backward),
 * so that a caller can hand dw on before computing it. */
void dpt_dense_backward_input(dpt_real *din, const dpt_real *dout, const dpt_real *w, int B,
                              int in_dim, int out_dim);

/* y[n] = f(x[n]); y may alias x. */
void dpt_activation_forward(dpt_real *y, const dpt_real *x, size_t n, dpt_activation act);

/* dx[n] = dy[n] * f'(x), with f' written through the OUTPUT y (relu: y > 0,
 * tanh: 1 - y^2, sigmoid: y (1 - y)); dx may alias dy. */
void dpt_activation_backward(dpt_real *dx, const dpt_real *dy, const dpt_real *y,
                             size_t n, dpt_activation act);

/* Loss over a batch of B rows of K outputs, integer labels in [0, K).
 * Returns the SUM over samples of the per-sample loss; if dlogits is not
 * NULL it receives d(sum)/d(logits) [B][K]; if correct is not NULL the
 * number of rows whose arg-max equals the label is ADDED to *correct.
 *   softmax_xent: l = -log softmax(z)_label          (Goodfellow et al. 6.2.2.3)
 *   mse:          l = (1/K) sum_k (z_k - [k == label])^2
 *   sigmoid_bce:  l = sum_k -t_k log s(z_k) - (1 - t_k) log(1 - s(z_k)), with
 *                 t_k = [k == label] for K > 1 outputs, t = label for K = 1
 *                 (Goodfellow et al. 6.2.2.2); a hit is s(z) > 1/2 == label
 *                 for K = 1, the arg-max otherwise.                        */
dpt_acc dpt_loss_forward_backward(dpt_real *dlogits, long *correct,
                                  const dpt_real *logits, const uint8_t *labels,
                                  int B, int K, dpt_loss_kind loss);

#endif /* DPT_NN_H */
