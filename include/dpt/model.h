/* dpt/model.h - a model: a shared trunk of layers and one or more heads.
 *
 * Each head has its own layers, loss, loss weight and label source (the data
 * set's labels, or a map of them), and reads the trunk's output; the total
 * loss is the weighted sum of the heads' losses (multi-task learning,
 * Goodfellow et al. 7.7). A spec without heads (n_heads == 0) is a
 * single-task model: the trunk and one implicit head "output" without
 * layers, with the spec's loss and the data set's labels.
 *
 * All parameters live in one allocation `params`, all gradients in `grads`
 * with the same layout, and the non-trained state (batch-norm running
 * averages) in `state`; a layer holds offsets into them (llm.c style).
 * No MPI here: synchronized batch normalization calls the reduction the
 * caller passes in the forward context.
 */
#ifndef DPT_MODEL_H
#define DPT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/layers.h"
#include "dpt/nn.h"
#include "dpt/real.h"

#define DPT_MAX_LAYERS 64      /* trunk layers, and layers of one head */
#define DPT_MAX_HEADS 8
#define DPT_HEAD_NAME_MAX 32
#define DPT_LABELS 256         /* labels are bytes */

typedef enum dpt_layer_kind {
    DPT_LAYER_DENSE = 0,
    DPT_LAYER_CONV2D,
    DPT_LAYER_LOCAL,      /* locally connected (unshared) */
    DPT_LAYER_TILED,      /* tiled convolution */
    DPT_LAYER_MAXPOOL,
    DPT_LAYER_AVGPOOL,
    DPT_LAYER_GAP,        /* global average pooling */
    DPT_LAYER_FLATTEN,
    DPT_LAYER_ACTIVATION,
    DPT_LAYER_DROPOUT,
    DPT_LAYER_BATCHNORM,
    DPT_LAYER_KIND_COUNT_
} dpt_layer_kind;

/* What the configuration says about one layer. */
typedef struct dpt_layer_spec {
    dpt_layer_kind kind;
    int units;            /* dense: outputs; conv, local, tiled: filters */
    int kh, kw;           /* kernel or pooling window */
    int stride, dilation;
    dpt_padding pad;
    int tiles;            /* tiled: t (t x t kernel sets) */
    dpt_activation act;   /* activation layers */
    double keep;          /* dropout: keep probability */
    int sync;             /* batch norm: 1 synchronized statistics, 0 per rank, -1 model default */
    double momentum, eps; /* batch norm running-average momentum and epsilon */
    dpt_init_spec init;   /* weights (AUTO: He before ReLU, Glorot otherwise) */
    double bias;          /* initial bias */
    int bias_prior;       /* 1: bias = log of the head's class frequencies */
} dpt_layer_spec;

const char *dpt_layer_kind_name(dpt_layer_kind kind);
/* VALUE of init=NAME without ":VALUE": uniform/normal 0.05, orthogonal
 * gain 1, sparse 15 weights per unit, otherwise 0. */
double dpt_init_default_value(dpt_init_kind kind);

/* Parses a layer list such as
 *   "conv 32 3 pad=same, batchnorm, relu, maxpool 2, flatten, dropout 0.5, 10"
 * (grammar in src/nn/spec.c and `dptrain --help`) into layers[0..*n).
 * "512 relu" is short for "dense 512, relu". On error returns DPT_ERR_CONFIG
 * and writes a one-line reason (naming the item) into why. */
dpt_status dpt_layer_list_parse(const char *text, dpt_layer_spec *layers, int max_layers, int *n,
                                char *why, size_t why_size);
/* Writes the list back in a form dpt_layer_list_parse reads; returns the
 * length it needed (as snprintf). */
size_t dpt_layer_list_format(const dpt_layer_spec *layers, int n, char *buf, size_t size);
/* One line describing the grammar, for messages and --help. */
const char *dpt_layer_list_grammar(void);

typedef struct dpt_head_spec {
    char name[DPT_HEAD_NAME_MAX];
    int n_layers;
    dpt_layer_spec layers[DPT_MAX_LAYERS];
    dpt_loss_kind loss;
    double weight;             /* loss weight */
    int has_map;               /* 0: the data set's labels as they are */
    int16_t map[DPT_LABELS];   /* data label -> head label, -1 if unmapped */
} dpt_head_spec;

typedef struct dpt_model_spec {
    int n_trunk;
    dpt_layer_spec trunk[DPT_MAX_LAYERS];
    int n_heads;
    dpt_head_spec heads[DPT_MAX_HEADS];
    int bn_sync;               /* default of batch-norm layers' sync (1: synchronized) */
    dpt_loss_kind loss;        /* loss of the implicit single head when n_heads == 0 */
    dpt_init_kind init;        /* initialization of layers whose init is AUTO */
} dpt_model_spec;

/* Per-sample tensor shape (dense features: c = n, h = w = 1). */
typedef struct dpt_shape {
    int c, h, w;
} dpt_shape;

static inline size_t dpt_shape_size(dpt_shape s) { return (size_t)s.c * s.h * s.w; }

typedef struct dpt_layer {
    dpt_layer_spec spec;
    dpt_shape in, out;
    size_t n_weights, n_bias;   /* trained: weights then biases (gamma, beta for batch norm) */
    size_t param_offset;        /* into params and grads */
    size_t n_state, state_offset; /* batch norm: running mean then running variance */
    size_t out_offset;          /* into acts: [max_batch][out size] */
    size_t aux_offset, n_aux;   /* into aux: per-sample reals (dropout mask, batch-norm xhat) */
    size_t iaux_offset, n_iaux; /* into iaux: per-sample ints (max-pool argmax) */
    dpt_conv_geom conv;
    dpt_pool_geom pool;
    double flops;               /* forward multiply-adds x 2 per sample */
    double bn_count;            /* batch norm: global count of the last training forward */
    int id;                     /* position in the model, for RNG substreams */
} dpt_layer;

typedef struct dpt_head {
    dpt_head_spec spec;
    int first, n;               /* its layers: model->layers[first .. first + n) */
    int outputs;                /* width of its output */
} dpt_head;

typedef struct dpt_model {
    dpt_shape input;
    dpt_init_kind default_init; /* for layers whose init is AUTO */
    int n_layers;               /* trunk layers first, then each head's */
    int n_trunk;
    dpt_layer layers[DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1)];
    int n_heads;
    dpt_head heads[DPT_MAX_HEADS];
    size_t n_params;
    dpt_real *params, *grads;
    size_t n_state;
    dpt_real *state;
    int max_batch;
    dpt_real *acts, *aux;
    int32_t *iaux;
    dpt_real *delta[2];         /* ping-pong gradient buffers [max_batch][widest] */
    dpt_real *trunk_delta;      /* gradient at the trunk output, summed over heads */
    dpt_real *cols, *dcols;     /* im2col workspaces (largest conv layer) */
    double *bn_scratch;
    dpt_real *bn_plane;         /* [2 x widest batch-norm plane]: one plane and its pooling,
                                   for a max pooling fused behind (src/nn/forward.c) */
    uint8_t *head_labels;       /* [max_batch] labels after a head's map */
    size_t bytes;               /* all of the above: parameters, gradients, activations,
                                   workspaces (what a rank holds for the model) */
    int unfused;                /* 1: no fused layers (tests compare the two) */
} dpt_model;

/* How a forward pass runs. */
typedef struct dpt_forward_ctx {
    int batch_stats;            /* 1: batch norm uses batch statistics (training) */
    int dropout;                /* 1: dropout masks are drawn (training, MC dropout) */
    uint64_t seed;              /* dropout stream: (seed, DPT_STREAM_DROPOUT, rank) */
    uint32_t rank;
    uint64_t pass;              /* distinct for every stochastic pass (the step) */
    dpt_reduce_fn reduce;       /* sums over the data-parallel group (synchronized BN) */
    void *reduce_user;
    /* called after the backward pass of every layer with parameters, when
     * its gradient is final (to start reducing it); may be NULL */
    void (*layer_done)(int layer, void *user);
    void *layer_done_user;
    /* called between pieces of long backward work (with layer_done_user),
     * so that communication in flight can progress; may be NULL */
    void (*progress)(void *user);
} dpt_forward_ctx;

/* Loss sums and hits of one batch, per head and in total. */
typedef struct dpt_batch_metrics {
    double loss[DPT_MAX_HEADS];    /* per-head loss sums (unweighted) */
    long correct[DPT_MAX_HEADS];
    double total;                  /* sum over heads of weight x loss */
} dpt_batch_metrics;

/* Builds the layers for per-sample input shape `input`: shapes, parameter
 * and workspace layout, allocations. Errors (a conv on a flat input, an
 * empty output, a head's output narrower than its labels) are
 * DPT_ERR_SHAPE with a message naming the layer. */
dpt_status dpt_model_create(dpt_model *model, dpt_shape input, const dpt_model_spec *spec,
                            int max_batch);
void dpt_model_destroy(dpt_model *model);

/* Deterministic initialization from seed, the same on every rank; the
 * data-set label counts[DPT_LABELS] are used by bias=prior (may be NULL). */
dpt_status dpt_model_init_params(dpt_model *model, uint64_t seed, const long *label_counts);

/* Forward pass of B <= max_batch samples x[B][input]; adds loss sums and hits to *m. */
void dpt_model_forward(dpt_model *model, const dpt_real *x, const uint8_t *labels, int B,
                       const dpt_forward_ctx *ctx, dpt_batch_metrics *m);
/* Forward and backward: adds the gradient of the weighted loss SUM over the
 * B samples to model->grads (the caller zeroes it once per step). */
void dpt_model_forward_backward(dpt_model *model, const dpt_real *x, const uint8_t *labels,
                                int B, const dpt_forward_ctx *ctx, dpt_batch_metrics *m);

/* Output [B][outputs] of head h after the last forward pass. */
const dpt_real *dpt_model_head_output(const dpt_model *model, int h);
/* The label of head h for a data-set label (-1 if the head's map lacks it). */
int dpt_model_head_label(const dpt_model *model, int h, int data_label);

/* ---------------------------------------------------------------- curvature
 * Products of a vector v[n_params] with the curvature of the weighted loss
 * SUM over a batch (the same sum the gradient is of):
 *   DPT_CURV_HESSIAN       Hv, the exact Hessian, by Pearlmutter's (1994)
 *                          R-operator: an R-forward pass, then a backward
 *                          pass of the gradient and its R-derivative;
 *   DPT_CURV_GAUSS_NEWTON  Gv = J^T H_L J v (Schraudolph 2002), positive
 *                          semi-definite: R-forward to J v at the outputs,
 *                          the loss Hessian H_L, an ordinary backward pass.
 * Layers supported: dense, conv, activations, flatten (others give
 * DPT_ERR_ARG). No MPI: a distributed oracle sums the products over ranks. */
typedef enum dpt_curvature_kind { DPT_CURV_HESSIAN = 0, DPT_CURV_GAUSS_NEWTON } dpt_curvature_kind;

typedef struct dpt_curvature_ws {
    dpt_real *racts;      /* R{layer outputs}, laid out like model->acts */
    dpt_real *d[2], *rd[2]; /* gradient and its R-derivative, ping-pong [max_batch][widest] */
    dpt_real *tmp;        /* [max_batch][widest] */
    dpt_real *trunk_d, *trunk_rd; /* summed over heads at the trunk output */
} dpt_curvature_ws;

dpt_status dpt_curvature_ws_create(dpt_curvature_ws *ws, const dpt_model *model);
/* DPT_OK when every layer has an R-operator, else DPT_ERR_ARG naming the
 * first layer that has none. */
dpt_status dpt_model_curvature_check(const dpt_model *model);
void dpt_curvature_ws_destroy(dpt_curvature_ws *ws);

/* out[n_params] += (H or G) v for the batch x[B], labels[B]; B <= max_batch.
 * Also runs the forward pass (running batch-norm statistics, no dropout). */
dpt_status dpt_model_curvature_product(dpt_model *model, dpt_curvature_ws *ws, const dpt_real *x,
                                       const uint8_t *labels, int B, const dpt_real *v,
                                       dpt_real *out, dpt_curvature_kind kind);

/* Factored Gauss-Newton rows, for assembling G explicitly (the damped
 * Newton solver): for every sample b and every row f of a square root F of
 * its weighted loss Hessian (H_L = F^T F; for softmax cross-entropy the rows
 * sqrt(p_c) (e_c - p)), the row a = J_b^T f, so that
 *     G = sum_b J_b^T H_L J_b = sum_b sum_c a_{b,c} a_{b,c}^T = A^T A.
 * rows[B * R][n_params] (row-major), R = dpt_model_gn_rows_per_sample (the
 * sum of the heads' outputs); sample b's rows come first, head by head.
 * Costs one forward and R backward passes per sample. Same layers as the
 * products (others give DPT_ERR_ARG). */
int dpt_model_gn_rows_per_sample(const dpt_model *model);
dpt_status dpt_model_gn_rows(dpt_model *model, dpt_curvature_ws *ws, const dpt_real *x,
                             const uint8_t *labels, int B, dpt_real *rows);

/* Forward FLOPs per sample of the whole model. */
double dpt_model_flops_per_sample(const dpt_model *model);

#endif /* DPT_MODEL_H */
