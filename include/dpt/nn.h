/* dpt/nn.h - layers, activations, losses and the model (no MPI here).
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
#include "dpt/real.h"

typedef enum dpt_activation {
    DPT_ACT_IDENTITY = 0,
    DPT_ACT_RELU,
    DPT_ACT_TANH,
    DPT_ACT_SIGMOID
} dpt_activation;

typedef enum dpt_loss_kind {
    DPT_LOSS_SOFTMAX_XENT = 0, /* softmax + cross-entropy on integer labels */
    DPT_LOSS_MSE               /* mean over outputs of (y - onehot)^2 */
} dpt_loss_kind;

typedef enum dpt_init_kind {
    DPT_INIT_AUTO = 0,     /* He for ReLU layers, Glorot otherwise */
    DPT_INIT_HE_NORMAL,    /* N(0, 2/fan_in): He et al. 2015 */
    DPT_INIT_GLOROT_UNIFORM /* U(-a, a), a = sqrt(6/(fan_in+fan_out)): Glorot & Bengio 2010 */
} dpt_init_kind;

const char *dpt_activation_name(dpt_activation act);
const char *dpt_loss_name(dpt_loss_kind loss);
const char *dpt_init_name(dpt_init_kind init);

/* ---------------------------------------------------------------- layers */

/* out[B][out_dim] = in[B][in_dim] . w[out_dim][in_dim]^T + b[out_dim] */
void dpt_dense_forward(dpt_real *out, const dpt_real *in, const dpt_real *w,
                       const dpt_real *b, int B, int in_dim, int out_dim);

/* dw[out_dim][in_dim] += dout^T . in;  db[out_dim] += sum_batch dout;
 * din[B][in_dim] = dout . w  (din may be NULL: no input gradient needed). */
void dpt_dense_backward(dpt_real *din, dpt_real *dw, dpt_real *db,
                        const dpt_real *dout, const dpt_real *in,
                        const dpt_real *w, int B, int in_dim, int out_dim);

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
 *   mse:          l = (1/K) sum_k (z_k - [k == label])^2                   */
dpt_acc dpt_loss_forward_backward(dpt_real *dlogits, long *correct,
                                  const dpt_real *logits, const uint8_t *labels,
                                  int B, int K, dpt_loss_kind loss);

/* ---------------------------------------------------------------- the model */

#define DPT_MAX_LAYERS 64

typedef struct dpt_layer_spec {
    int units;          /* output width of the dense layer */
    dpt_activation act; /* applied after it */
} dpt_layer_spec;

/* A stack of dense layers. All parameters live in one allocation `params`
 * and all gradients in one `grads` of the same layout; the layer views are
 * offsets into them: layer l's weights w[units][fan_in] at w_offset[l], then
 * its bias b[units] at b_offset[l]. */
typedef struct dpt_model {
    int in_dim;
    int n_layers;
    dpt_layer_spec layers[DPT_MAX_LAYERS];
    dpt_loss_kind loss;
    size_t n_params;
    size_t w_offset[DPT_MAX_LAYERS];
    size_t b_offset[DPT_MAX_LAYERS];
    dpt_real *params; /* [n_params] */
    dpt_real *grads;  /* [n_params], sums over samples */
    /* workspace, sized for max_batch rows */
    int max_batch;
    dpt_real *acts;   /* every layer's output, layer l at act_offset[l] */
    size_t act_offset[DPT_MAX_LAYERS];
    dpt_real *delta[2]; /* two ping-pong buffers [max_batch][widest layer] */
} dpt_model;

/* Builds the model and its workspace; parameters are zero until
 * dpt_model_init_params. */
dpt_status dpt_model_create(dpt_model *model, int in_dim, const dpt_layer_spec *layers,
                            int n_layers, dpt_loss_kind loss, int max_batch);
void dpt_model_destroy(dpt_model *model);

/* Deterministic initialization from `seed` (the same on every rank):
 * weights by `init`, biases zero. */
void dpt_model_init_params(dpt_model *model, dpt_init_kind init, uint64_t seed);

/* Forward only. x[B][in_dim] -> returns loss sum; *correct += hits. B <= max_batch. */
dpt_acc dpt_model_evaluate(dpt_model *model, const dpt_real *x, const uint8_t *labels,
                           int B, long *correct);

/* Forward and backward. Adds the gradient SUM over the B samples to
 * model->grads (the caller zeroes it once per step). Returns the loss sum. */
dpt_acc dpt_model_forward_backward(dpt_model *model, const dpt_real *x,
                                   const uint8_t *labels, int B, long *correct);

/* The network's output [B][K] of the last evaluate/forward_backward call. */
const dpt_real *dpt_model_output(const dpt_model *model);

/* Forward FLOPs per sample (2 per multiply-add). */
double dpt_model_flops_per_sample(const dpt_model *model);

#endif /* DPT_NN_H */
