/* Forward and backward passes over the trunk and the heads. */
#include <string.h>

#include "dpt/model.h"
#include "dpt/rng.h"

#include "../core/vec.h"

static dpt_real *layer_out(const dpt_model *m, const dpt_layer *l)
{
    return m->acts + l->out_offset;
}

static dpt_batchnorm_ctx bn_ctx(const dpt_model *m, const dpt_layer *l, const dpt_forward_ctx *ctx)
{
    dpt_batchnorm_ctx bn = {.momentum = l->spec.momentum, .eps = l->spec.eps, .scratch = m->bn_scratch};
    if (l->spec.sync) {
        bn.reduce = ctx->reduce;
        bn.reduce_user = ctx->reduce_user;
    }
    return bn;
}

static void dropout_forward(dpt_model *m, dpt_layer *l, dpt_real *out, const dpt_real *in, int B,
                            const dpt_forward_ctx *ctx)
{
    size_t n = (size_t)B * dpt_shape_size(l->in);
    if (!ctx->dropout) { /* inverted dropout: evaluation uses the layer unchanged */
        memcpy(out, in, sizeof(dpt_real) * n);
        return;
    }
    /* a stream per (rank, pass, layer): reproducible whatever runs when */
    dpt_rng rng;
    dpt_rng_init(&rng, ctx->seed, DPT_STREAM_DROPOUT, ctx->rank, ctx->pass << 12 | (uint64_t)l->id);
    dpt_real *mask = m->aux + l->aux_offset;
    dpt_dropout_mask(mask, n, l->spec.keep, &rng);
    dpt_dropout_apply(out, in, mask, n);
}

/* Layer i is a batch norm in training mode followed, within layers
 * [.., last], by a ReLU: the pair runs as one pass forward and one backward
 * (the ReLU's activations and gradients are over L2-sized: each pass over
 * them was 1.5% of the CNN config's step). The batch norm's own output is
 * then never written; nothing reads it (the ReLU's backward uses its own
 * output). In evaluation mode the layers run one by one. */
static int fused_bn_relu(const dpt_model *m, int i, int last, const dpt_forward_ctx *ctx)
{
    return !m->unfused && ctx->batch_stats && i < last && m->layers[i].spec.kind == DPT_LAYER_BATCHNORM &&
           m->layers[i + 1].spec.kind == DPT_LAYER_ACTIVATION && m->layers[i + 1].spec.act == DPT_ACT_RELU;
}

/* ... and, within [.., last], the ReLU is followed by a max pooling: the
 * three run as one, the pooling fed each plane of the ReLU's output while it
 * is in L1. Neither the ReLU's output nor the pooling's input gradient is
 * then written: on the CNN config those were four passes over activations
 * larger than L2 (bit for bit the layers one by one: test_model). */
static int fused_bn_relu_pool(const dpt_model *m, int i, int last, const dpt_forward_ctx *ctx)
{
    return fused_bn_relu(m, i, last, ctx) && i + 1 < last &&
           m->layers[i + 2].spec.kind == DPT_LAYER_MAXPOOL;
}

/* Layer i is a batch norm in training mode after a conv or dense layer in
 * [first, ..]: it saves xhat over its input, that layer's output, which
 * nothing reads afterwards (their backward passes read their inputs), and
 * reads it from there backward: one buffer as large as the activations
 * fewer in cache. */
static int bn_xhat_in_place(const dpt_model *m, int i, int first, const dpt_forward_ctx *ctx)
{
    if (m->unfused || !ctx->batch_stats || i <= first || m->layers[i].spec.kind != DPT_LAYER_BATCHNORM)
        return 0;
    dpt_layer_kind before = m->layers[i - 1].spec.kind;
    return before == DPT_LAYER_CONV2D || before == DPT_LAYER_DENSE;
}

/* Where the batch norm at i saved xhat. */
static dpt_real *bn_xhat(dpt_model *m, int i, int first, const dpt_forward_ctx *ctx)
{
    const dpt_layer *l = &m->layers[i];
    return bn_xhat_in_place(m, i, first, ctx) ? layer_out(m, l - 1) : m->aux + l->aux_offset;
}

/* Layer i is a conv followed by a batch norm in training mode: the conv
 * sums the batch norm's moments over each sample's output right after
 * computing it, while it is in L2, which spares the batch norm a pass over
 * activations larger than L2 (the same sums in the same order). */
static int fused_conv_moments(const dpt_model *m, int i, int last, const dpt_forward_ctx *ctx)
{
    return !m->unfused && ctx->batch_stats && i < last && m->layers[i].spec.kind == DPT_LAYER_CONV2D &&
           m->layers[i + 1].spec.kind == DPT_LAYER_BATCHNORM;
}

typedef struct moments_sink {
    double *sum, *sumsq; /* [C] each */
    int C, spatial;
} moments_sink;

static void add_moments(int sample, const dpt_real *out, void *user)
{
    (void)sample;
    const moments_sink *ms = user;
    dpt_batchnorm_moments_add(ms->sum, ms->sumsq, out, ms->C, ms->spatial);
}

/* The conv layer l, the moments of its output summed into bn_scratch. */
static void conv_forward_moments(dpt_model *m, const dpt_layer *l, const dpt_real *in, int B)
{
    const dpt_real *w = m->params + l->param_offset, *b = w + l->n_weights;
    moments_sink ms = {m->bn_scratch, m->bn_scratch + l->out.c, l->out.c, l->out.h * l->out.w};
    memset(m->bn_scratch, 0, sizeof(double) * 2 * (size_t)l->out.c);
    dpt_sample_hook after = {add_moments, &ms};
    dpt_conv2d_forward_each(layer_out(m, l), m->cols, in, w, b, B, &l->conv, &after);
}

/* The pooling of one plane q (sample b, channel c) of its input. */
typedef struct plane_pool {
    dpt_pool_geom geom;    /* the pooling's, for one plane (c = 1) */
    dpt_real *out, *dout;  /* the pooling's output and its gradient */
    int32_t *argmax;
    dpt_real *masked;      /* [one output plane] */
} plane_pool;

static size_t pooled_plane(const plane_pool *pp) { return (size_t)pp->geom.out_h * pp->geom.out_w; }

static void pool_plane_forward(size_t q, const dpt_real *plane, void *user)
{
    plane_pool *pp = user;
    size_t at = q * pooled_plane(pp);
    dpt_maxpool_forward(pp->out + at, pp->argmax + at, plane, 1, &pp->geom);
}

/* The ReLU's output gradient on plane q: the pooling's gradient routed to
 * each window's maximum, kept where the ReLU's output there (the pooled
 * value) is positive. Masking before routing gives the same values as after
 * (a pixel no window takes is +0 either way). */
static const dpt_real *pool_plane_backward(size_t q, dpt_real *plane, void *user)
{
    plane_pool *pp = user;
    size_t n = pooled_plane(pp), at = q * n;
    for (size_t o = 0; o < n; o++) pp->masked[o] = dpt_relu_keep(pp->dout[at + o], pp->out[at + o]);
    dpt_maxpool_backward(plane, pp->masked, pp->argmax + at, 1, &pp->geom);
    return plane;
}

/* Hands the batch norm's planes to the pooling `pool` and back (dout: the
 * pooling's output gradient, NULL forward); pp holds what the callbacks
 * read and must outlive the batch norm's call. */
static void fuse_pool(dpt_batchnorm_ctx *bn, plane_pool *pp, dpt_model *m, const dpt_layer *pool,
                      const dpt_real *dout)
{
    *pp = (plane_pool){pool->pool, m->acts + pool->out_offset, (dpt_real *)dout, m->iaux + pool->iaux_offset,
                       m->bn_plane + (size_t)pool->in.h * pool->in.w};
    pp->geom.c = 1;
    bn->plane_out = pool_plane_forward;
    bn->plane_dout = pool_plane_backward;
    bn->relu_out = NULL; /* backward: the planes come masked */
    bn->plane = m->bn_plane;
    bn->plane_user = pp;
}

/* What runs fused with a batch norm in training mode. */
typedef struct bn_fusion {
    dpt_real *xhat;        /* where to save xhat (bn_xhat) */
    int relu;              /* the ReLU after it */
    const dpt_layer *pool; /* and the max pooling after that (NULL: none) */
    int moments_ready;     /* the conv before it summed the moments (bn_scratch) */
} bn_fusion;

/* The fusion of the batch norm at i within layers [first, last], the same
 * forward and backward. */
static bn_fusion bn_fusion_at(dpt_model *m, int i, int first, int last, const dpt_forward_ctx *ctx)
{
    bn_fusion f = {bn_xhat(m, i, first, ctx), fused_bn_relu(m, i, last, ctx), NULL,
                   i > first && fused_conv_moments(m, i - 1, last, ctx)};
    if (fused_bn_relu_pool(m, i, last, ctx)) f.pool = &m->layers[i + 2];
    return f;
}

static void batchnorm_forward(dpt_model *m, dpt_layer *l, dpt_real *out, const dpt_real *in, int B,
                              const dpt_forward_ctx *ctx, const bn_fusion *fused)
{
    int C = l->in.c, spatial = l->in.h * l->in.w;
    const dpt_real *gamma = m->params + l->param_offset, *beta = gamma + C;
    dpt_real *mean = m->state + l->state_offset, *var = mean + C;
    if (!ctx->batch_stats) {
        dpt_batchnorm_forward_eval(out, in, gamma, beta, mean, var, B, C, spatial, l->spec.eps);
        return;
    }
    dpt_real *inv_std = m->aux + l->aux_offset + (size_t)m->max_batch * l->n_aux;
    dpt_real *xhat = fused->xhat ? fused->xhat : m->aux + l->aux_offset;
    dpt_batchnorm_ctx bn = bn_ctx(m, l, ctx);
    bn.relu = fused->relu;
    bn.moments_ready = fused->moments_ready;
    plane_pool pp;
    if (fused->pool) fuse_pool(&bn, &pp, m, fused->pool, NULL);
    l->bn_count = dpt_batchnorm_forward_train(out, xhat, inv_std, mean, var, in, gamma, beta, B, C,
                                              spatial, &bn);
}

static void layer_forward(dpt_model *m, dpt_layer *l, const dpt_real *in, int B,
                          const dpt_forward_ctx *ctx)
{
    dpt_real *out = layer_out(m, l);
    const dpt_real *w = m->params + l->param_offset, *b = w + l->n_weights;
    size_t n_in = (size_t)B * dpt_shape_size(l->in);
    switch (l->spec.kind) {
    case DPT_LAYER_DENSE:
        dpt_dense_forward(out, in, w, b, B, (int)dpt_shape_size(l->in), l->spec.units);
        break;
    case DPT_LAYER_CONV2D: dpt_conv2d_forward(out, m->cols, in, w, b, B, &l->conv); break;
    case DPT_LAYER_LOCAL: dpt_unshared_forward(out, m->cols, in, w, b, B, &l->conv, 0); break;
    case DPT_LAYER_TILED: dpt_unshared_forward(out, m->cols, in, w, b, B, &l->conv, l->spec.tiles); break;
    case DPT_LAYER_MAXPOOL:
        dpt_maxpool_forward(out, m->iaux + l->iaux_offset, in, B, &l->pool);
        break;
    case DPT_LAYER_AVGPOOL: dpt_avgpool_forward(out, in, B, &l->pool); break;
    case DPT_LAYER_GAP: dpt_gap_forward(out, in, B, l->in.c, l->in.h * l->in.w); break;
    case DPT_LAYER_FLATTEN: memcpy(out, in, sizeof(dpt_real) * n_in); break;
    case DPT_LAYER_ACTIVATION: dpt_activation_forward(out, in, n_in, l->spec.act); break;
    case DPT_LAYER_DROPOUT: dropout_forward(m, l, out, in, B, ctx); break;
    case DPT_LAYER_BATCHNORM: batchnorm_forward(m, l, out, in, B, ctx, &(bn_fusion){0}); break;
    default: break;
    }
}

static void batchnorm_backward(dpt_model *m, dpt_layer *l, dpt_real *din, const dpt_real *dout, int B,
                               const dpt_forward_ctx *ctx, const bn_fusion *fused)
{
    const dpt_real *gamma = m->params + l->param_offset;
    dpt_real *dgamma = m->grads + l->param_offset, *dbeta = dgamma + l->n_weights;
    const dpt_real *inv_std = m->aux + l->aux_offset + (size_t)m->max_batch * l->n_aux;
    dpt_batchnorm_ctx bn = bn_ctx(m, l, ctx);
    bn.relu_out = fused->relu ? layer_out(m, l + 1) : NULL;
    plane_pool pp;
    if (fused->pool) fuse_pool(&bn, &pp, m, fused->pool, dout);
    dpt_batchnorm_backward(din, dgamma, dbeta, dout, fused->xhat, inv_std, gamma, B, l->in.c,
                           l->in.h * l->in.w, l->bn_count, &bn);
}

/* din = d(loss)/d(input of l) from dout; parameter gradients accumulate.
 * din is NULL for the model's first layer when its input gradient is not
 * needed (only weighted layers can skip it). */
static void layer_backward(dpt_model *m, dpt_layer *l, dpt_real *din, const dpt_real *dout,
                           const dpt_real *in, int B, const dpt_forward_ctx *ctx, const bn_fusion *fused)
{
    const dpt_real *w = m->params + l->param_offset, *out = layer_out(m, l);
    dpt_real *dw = m->grads + l->param_offset, *db = dw + l->n_weights;
    size_t n_in = (size_t)B * dpt_shape_size(l->in);
    switch (l->spec.kind) {
    case DPT_LAYER_DENSE:
        dpt_dense_backward(din, dw, db, dout, in, w, B, (int)dpt_shape_size(l->in), l->spec.units);
        break;
    case DPT_LAYER_CONV2D: dpt_conv2d_backward(din, dw, db, m->cols, m->dcols, dout, in, w, B, &l->conv); break;
    case DPT_LAYER_LOCAL: dpt_unshared_backward(din, dw, db, m->cols, m->dcols, dout, in, w, B, &l->conv, 0); break;
    case DPT_LAYER_TILED:
        dpt_unshared_backward(din, dw, db, m->cols, m->dcols, dout, in, w, B, &l->conv, l->spec.tiles);
        break;
    case DPT_LAYER_MAXPOOL: dpt_maxpool_backward(din, dout, m->iaux + l->iaux_offset, B, &l->pool); break;
    case DPT_LAYER_AVGPOOL: dpt_avgpool_backward(din, dout, B, &l->pool); break;
    case DPT_LAYER_GAP: dpt_gap_backward(din, dout, B, l->in.c, l->in.h * l->in.w); break;
    case DPT_LAYER_FLATTEN: memcpy(din, dout, sizeof(dpt_real) * n_in); break;
    case DPT_LAYER_ACTIVATION: dpt_activation_backward(din, dout, out, n_in, l->spec.act); break;
    case DPT_LAYER_DROPOUT:
        if (ctx->dropout) dpt_dropout_apply(din, dout, m->aux + l->aux_offset, n_in);
        else memcpy(din, dout, sizeof(dpt_real) * n_in);
        break;
    case DPT_LAYER_BATCHNORM: batchnorm_backward(m, l, din, dout, B, ctx, fused); break;
    default: break;
    }
}

#define PROGRESS_SAMPLES 8 /* samples of input gradient between progress calls */

/* Dense and conv layers when gradients are reduced during backward: the
 * parameter gradient first, announced at once, then the input gradient in
 * pieces with progress calls, so that the layer's bucket travels while the
 * rest of the backward pass computes. */
static void split_backward(dpt_model *m, dpt_layer *l, int i, dpt_real *din, const dpt_real *dout,
                           const dpt_real *in, int B, const dpt_forward_ctx *ctx)
{
    const dpt_real *w = m->params + l->param_offset;
    dpt_real *dw = m->grads + l->param_offset, *db = dw + l->n_weights;
    int in_size = (int)dpt_shape_size(l->in), out_size = (int)dpt_shape_size(l->out);
    if (l->spec.kind == DPT_LAYER_DENSE)
        dpt_dense_backward(NULL, dw, db, dout, in, w, B, in_size, l->spec.units);
    else
        dpt_conv2d_backward(NULL, dw, db, m->cols, m->dcols, dout, in, w, B, &l->conv);
    ctx->layer_done(i, ctx->layer_done_user);
    if (!din) return;
    /* dense: one GEMM keeps its efficiency; conv works per sample anyway */
    int piece = l->spec.kind == DPT_LAYER_DENSE ? B : PROGRESS_SAMPLES;
    for (int s = 0; s < B; s += piece) {
        int n = B - s < piece ? B - s : piece;
        const dpt_real *d = dout + (size_t)s * out_size;
        if (l->spec.kind == DPT_LAYER_DENSE)
            dpt_dense_backward_input(din + (size_t)s * in_size, d, w, n, in_size, l->spec.units);
        else
            dpt_conv2d_backward_input(din + (size_t)s * in_size, m->dcols, d, w, n, &l->conv);
        if (ctx->progress) ctx->progress(ctx->layer_done_user);
    }
}

/* Runs layers [first, first + n) on `in`; returns the output. */
static const dpt_real *run_layers(dpt_model *m, int first, int n, const dpt_real *in, int B,
                                  const dpt_forward_ctx *ctx)
{
    const int last = first + n - 1;
    for (int i = first; i <= last; i++) {
        dpt_layer *l = &m->layers[i];
        if (l->spec.kind == DPT_LAYER_BATCHNORM && ctx->batch_stats) {
            bn_fusion fused = bn_fusion_at(m, i, first, last, ctx);
            batchnorm_forward(m, l, layer_out(m, l + fused.relu), in, B, ctx, &fused);
            i += fused.relu + (fused.pool != NULL); /* the ReLU and the pooling are done */
        } else if (fused_conv_moments(m, i, last, ctx)) {
            conv_forward_moments(m, l, in, B);
        } else {
            layer_forward(m, l, in, B, ctx);
        }
        in = layer_out(m, &m->layers[i]);
    }
    return in;
}

/* Backward over layers [first, first + n) from dout (in delta[0] or the
 * trunk delta); returns the buffer holding d(input of layer first), or NULL
 * when `need_input_grad` is 0 and the first layer could skip it. */
static dpt_real *back_layers(dpt_model *m, int first, int n, const dpt_real *input, dpt_real *dout,
                             int B, const dpt_forward_ctx *ctx, int need_input_grad)
{
    for (int i = first + n - 1; i >= first; i--) {
        dpt_layer *l = &m->layers[i];
        /* a ReLU (and a pooling) fused into the batch norm before: that one's backward does all */
        int last = first + n - 1;
        if (i > first && fused_bn_relu(m, i - 1, last, ctx)) continue;
        if (i > first + 1 && fused_bn_relu_pool(m, i - 2, last, ctx)) continue;
        bn_fusion fused = bn_fusion_at(m, i, first, last, ctx);
        const dpt_real *in = i == first ? input : layer_out(m, &m->layers[i - 1]);
        dpt_real *din = dout == m->delta[0] ? m->delta[1] : m->delta[0];
        int weighted = l->spec.kind <= DPT_LAYER_TILED;
        if (i == first && !need_input_grad && weighted) din = NULL;
        if (ctx->layer_done && (l->spec.kind == DPT_LAYER_DENSE || l->spec.kind == DPT_LAYER_CONV2D)) {
            split_backward(m, l, i, din, dout, in, B, ctx);
        } else {
            layer_backward(m, l, din, dout, in, B, ctx, &fused);
            if (ctx->layer_done && l->n_weights + l->n_bias > 0) ctx->layer_done(i, ctx->layer_done_user);
        }
        dout = din;
    }
    return dout;
}

static const uint8_t *head_labels(dpt_model *m, int h, const uint8_t *labels, int B)
{
    if (!m->heads[h].spec.has_map) return labels;
    for (int i = 0; i < B; i++) {
        int k = dpt_model_head_label(m, h, labels[i]);
        m->head_labels[i] = (uint8_t)(k < 0 ? 0 : k); /* the trainer rejects unmapped labels */
    }
    return m->head_labels;
}

const dpt_real *dpt_model_head_output(const dpt_model *m, int h)
{
    const dpt_head *head = &m->heads[h];
    if (head->n) return layer_out(m, &m->layers[head->first + head->n - 1]);
    return m->n_trunk ? layer_out(m, &m->layers[m->n_trunk - 1]) : NULL;
}

/* Forward over everything; if `backward`, the gradient of sum_h weight_h
 * loss_h too. */
static void pass(dpt_model *m, const dpt_real *x, const uint8_t *labels, int B,
                 const dpt_forward_ctx *ctx, dpt_batch_metrics *metrics, int backward)
{
    const dpt_real *trunk_out = run_layers(m, 0, m->n_trunk, x, B, ctx);
    size_t trunk_size = (size_t)B * (m->n_trunk ? dpt_shape_size(m->layers[m->n_trunk - 1].out)
                                                : dpt_shape_size(m->input));
    for (int h = 0; h < m->n_heads; h++) {
        dpt_head *head = &m->heads[h];
        const dpt_real *logits = run_layers(m, head->first, head->n, trunk_out, B, ctx);
        const uint8_t *y = head_labels(m, h, labels, B);
        dpt_real *dlogits = backward ? m->delta[0] : NULL;
        double loss = dpt_loss_forward_backward(dlogits, &metrics->correct[h], logits, y, B,
                                                head->outputs, head->spec.loss);
        metrics->loss[h] += loss;
        metrics->total += head->spec.weight * loss;
        if (!backward) continue;
        size_t n_out = (size_t)B * head->outputs;
        if (head->spec.weight != 1)
            for (size_t i = 0; i < n_out; i++) dlogits[i] *= (dpt_real)head->spec.weight;
        const dpt_real *dtrunk = back_layers(m, head->first, head->n, trunk_out, dlogits, B, ctx, 1);
        /* every head's gradient flows into the shared trunk: sum them */
        if (h == 0) memcpy(m->trunk_delta, dtrunk, sizeof(dpt_real) * trunk_size);
        else for (size_t i = 0; i < trunk_size; i++) m->trunk_delta[i] += dtrunk[i];
    }
    if (backward && m->n_trunk) back_layers(m, 0, m->n_trunk, x, m->trunk_delta, B, ctx, 0);
}

void dpt_model_forward(dpt_model *m, const dpt_real *x, const uint8_t *labels, int B,
                       const dpt_forward_ctx *ctx, dpt_batch_metrics *metrics)
{
    pass(m, x, labels, B, ctx, metrics, 0);
}

void dpt_model_forward_backward(dpt_model *m, const dpt_real *x, const uint8_t *labels, int B,
                                const dpt_forward_ctx *ctx, dpt_batch_metrics *metrics)
{
    pass(m, x, labels, B, ctx, metrics, 1);
}
