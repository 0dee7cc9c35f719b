/* Model construction: shapes, the flat parameter/state/workspace layout,
 * and deterministic initialization. The passes are in src/nn/forward.c. */
#include "dpt/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"
#include "dpt/rng.h"

/* Sizes of one layer for input shape `in`; fills l->out, parameter and
 * workspace counts, FLOPs. */
static dpt_status conv_shapes(dpt_layer *l, const char *where)
{
    const dpt_layer_spec *s = &l->spec;
    if (l->in.h * l->in.w == 1 && l->in.c > 1 && s->kh * s->kw > 1)
        return DPT_FAIL(DPT_ERR_SHAPE, "%s: %s needs an image input (C x H x W), got a flat %d-vector",
                        where, dpt_layer_kind_name(s->kind), l->in.c);
    dpt_status st = dpt_conv_geom_init(&l->conv, l->in.c, l->in.h, l->in.w, s->units, s->kh, s->kw,
                                       s->stride, s->dilation, s->pad);
    if (st != DPT_OK)
        return DPT_FAIL(DPT_ERR_SHAPE, "%s: %s", where, dpt_error_message());
    size_t rows = (size_t)dpt_conv_rows(&l->conv), cols = (size_t)dpt_conv_cols(&l->conv);
    size_t sets = s->kind == DPT_LAYER_CONV2D ? 1 : (size_t)dpt_unshared_sets(&l->conv, s->kind == DPT_LAYER_TILED ? s->tiles : 0);
    l->out = (dpt_shape){s->units, l->conv.out_h, l->conv.out_w};
    l->n_weights = sets * (size_t)s->units * rows;
    l->n_bias = sets * (size_t)s->units;
    l->flops = 2.0 * s->units * (double)rows * (double)cols;
    return DPT_OK;
}

static dpt_status pool_shapes(dpt_layer *l, const char *where)
{
    const dpt_layer_spec *s = &l->spec;
    dpt_status st = dpt_pool_geom_init(&l->pool, l->in.c, l->in.h, l->in.w, s->kh, s->kw, s->stride);
    if (st != DPT_OK) return DPT_FAIL(DPT_ERR_SHAPE, "%s: %s", where, dpt_error_message());
    l->out = (dpt_shape){l->in.c, l->pool.out_h, l->pool.out_w};
    if (s->kind == DPT_LAYER_MAXPOOL) l->n_iaux = dpt_shape_size(l->out);
    l->flops = (double)s->kh * s->kw * (double)dpt_shape_size(l->out);
    return DPT_OK;
}

static dpt_status layer_shapes(dpt_layer *l, const char *where)
{
    const dpt_layer_spec *s = &l->spec;
    size_t in_size = dpt_shape_size(l->in);
    l->out = l->in;
    switch (s->kind) {
    case DPT_LAYER_DENSE:
        l->out = (dpt_shape){s->units, 1, 1};
        l->n_weights = (size_t)s->units * in_size;
        l->n_bias = (size_t)s->units;
        l->flops = 2.0 * s->units * (double)in_size;
        return DPT_OK;
    case DPT_LAYER_CONV2D: case DPT_LAYER_LOCAL: case DPT_LAYER_TILED:
        return conv_shapes(l, where);
    case DPT_LAYER_MAXPOOL: case DPT_LAYER_AVGPOOL:
        return pool_shapes(l, where);
    case DPT_LAYER_GAP:
        l->out = (dpt_shape){l->in.c, 1, 1};
        l->flops = (double)in_size;
        return DPT_OK;
    case DPT_LAYER_FLATTEN:
        l->out = (dpt_shape){(int)in_size, 1, 1};
        return DPT_OK;
    case DPT_LAYER_DROPOUT:
        l->n_aux = in_size;
        l->flops = (double)in_size;
        return DPT_OK;
    case DPT_LAYER_BATCHNORM:
        l->n_weights = l->n_bias = (size_t)l->in.c; /* gamma, beta per channel */
        l->n_state = 2 * (size_t)l->in.c;           /* running mean, running variance */
        l->n_aux = in_size;                         /* xhat */
        l->flops = 4.0 * (double)in_size;
        return DPT_OK;
    case DPT_LAYER_ACTIVATION:
        l->flops = (double)in_size;
        return DPT_OK;
    default:
        return DPT_FAIL(DPT_ERR_ARG, "%s: unknown layer kind %d", where, (int)s->kind);
    }
}

/* The heads to build: the spec's, or the implicit single one. */
static void resolve_heads(dpt_model *m, const dpt_model_spec *spec)
{
    m->n_heads = spec->n_heads > 0 ? spec->n_heads : 1;
    for (int h = 0; h < m->n_heads; h++) {
        dpt_head *head = &m->heads[h];
        memset(head, 0, sizeof *head);
        if (spec->n_heads > 0) {
            head->spec = spec->heads[h];
        } else {
            strcpy(head->spec.name, "output");
            head->spec.loss = spec->loss;
            head->spec.weight = 1;
        }
    }
}

/* Appends layers[0..n) reading shape *shape; advances it to their output. */
static dpt_status add_layers(dpt_model *m, const dpt_layer_spec *specs, int n, int bn_sync,
                             dpt_shape *shape, const char *part)
{
    for (int i = 0; i < n; i++) {
        dpt_layer *l = &m->layers[m->n_layers];
        memset(l, 0, sizeof *l);
        l->spec = specs[i];
        if (l->spec.kind == DPT_LAYER_BATCHNORM && l->spec.sync < 0) l->spec.sync = bn_sync;
        l->in = *shape;
        l->id = m->n_layers;
        char where[96];
        snprintf(where, sizeof where, "%s layer %d (%s)", part, i + 1, dpt_layer_kind_name(l->spec.kind));
        dpt_status st = layer_shapes(l, where);
        if (st != DPT_OK) return st;
        *shape = l->out;
        m->n_layers++;
    }
    return DPT_OK;
}

static dpt_status build_layers(dpt_model *m, const dpt_model_spec *spec)
{
    dpt_shape shape = m->input;
    dpt_status st = add_layers(m, spec->trunk, spec->n_trunk, spec->bn_sync, &shape, "trunk");
    if (st != DPT_OK) return st;
    m->n_trunk = m->n_layers;
    const dpt_shape trunk_out = shape;
    for (int h = 0; h < m->n_heads; h++) {
        dpt_head *head = &m->heads[h];
        char part[64];
        snprintf(part, sizeof part, "head '%s'", head->spec.name);
        shape = trunk_out;
        head->first = m->n_layers;
        st = add_layers(m, head->spec.layers, head->spec.n_layers, spec->bn_sync, &shape, part);
        if (st != DPT_OK) return st;
        head->n = m->n_layers - head->first;
        head->outputs = (int)dpt_shape_size(shape);
    }
    return DPT_OK;
}

/* Offsets of every layer's views; returns the widest tensor (per sample). */
static size_t lay_out(dpt_model *m, size_t *n_acts, size_t *n_aux, size_t *n_iaux, size_t *n_cols,
                      int *max_channels)
{
    size_t widest = dpt_shape_size(m->input);
    *n_acts = *n_aux = *n_iaux = *n_cols = 0;
    *max_channels = 1;
    m->n_params = m->n_state = 0;
    for (int i = 0; i < m->n_layers; i++) {
        dpt_layer *l = &m->layers[i];
        size_t out = dpt_shape_size(l->out);
        l->param_offset = m->n_params;
        m->n_params += l->n_weights + l->n_bias;
        l->state_offset = m->n_state;
        m->n_state += l->n_state;
        l->out_offset = *n_acts;
        *n_acts += (size_t)m->max_batch * out;
        l->aux_offset = *n_aux;
        *n_aux += (size_t)m->max_batch * l->n_aux + (size_t)(l->spec.kind == DPT_LAYER_BATCHNORM ? l->in.c : 0);
        l->iaux_offset = *n_iaux;
        *n_iaux += (size_t)m->max_batch * l->n_iaux;
        if (l->spec.kind >= DPT_LAYER_CONV2D && l->spec.kind <= DPT_LAYER_TILED) {
            size_t cols = dpt_conv_work_size(&l->conv);
            if (cols > *n_cols) *n_cols = cols;
        }
        if (l->spec.kind == DPT_LAYER_BATCHNORM && l->in.c > *max_channels) *max_channels = l->in.c;
        if (out > widest) widest = out;
    }
    return widest;
}

/* Values in the widest channel plane a batch norm normalizes. */
static size_t widest_bn_plane(const dpt_model *m)
{
    size_t widest = 1;
    for (int i = 0; i < m->n_layers; i++) {
        const dpt_layer *l = &m->layers[i];
        size_t plane = (size_t)l->in.h * l->in.w;
        if (l->spec.kind == DPT_LAYER_BATCHNORM && plane > widest) widest = plane;
    }
    return widest;
}

static dpt_status allocate(dpt_model *m)
{
    size_t n_acts, n_aux, n_iaux, n_cols;
    int max_channels;
    size_t widest = lay_out(m, &n_acts, &n_aux, &n_iaux, &n_cols, &max_channels);
    size_t trunk_out = m->n_trunk ? dpt_shape_size(m->layers[m->n_trunk - 1].out) : dpt_shape_size(m->input);
    size_t batch = (size_t)m->max_batch;
    /* the arrays every step walks through: on huge pages where large */
    m->params = dpt_calloc_large(m->n_params + 1, sizeof(dpt_real));
    m->grads = dpt_calloc_large(m->n_params + 1, sizeof(dpt_real));
    m->state = calloc(m->n_state + 1, sizeof(dpt_real));
    m->acts = dpt_calloc_large(n_acts + 1, sizeof(dpt_real));
    m->aux = dpt_calloc_large(n_aux + 1, sizeof(dpt_real));
    m->iaux = dpt_calloc_large(n_iaux + 1, sizeof(int32_t));
    m->delta[0] = dpt_calloc_large(batch * widest, sizeof(dpt_real));
    m->delta[1] = dpt_calloc_large(batch * widest, sizeof(dpt_real));
    m->trunk_delta = dpt_calloc_large(batch * trunk_out, sizeof(dpt_real));
    m->cols = dpt_calloc_large(n_cols + 1, sizeof(dpt_real));
    m->dcols = dpt_calloc_large(n_cols + 1, sizeof(dpt_real));
    m->bn_scratch = calloc(3 * (size_t)max_channels + 1, sizeof(double));
    size_t bn_plane = widest_bn_plane(m);
    m->bn_plane = calloc(2 * bn_plane, sizeof(dpt_real));
    m->head_labels = calloc(batch, 1);
    /* what dptrain inspect and --dry-run count as the model's memory */
    m->bytes = sizeof(dpt_real) * (2 * (m->n_params + 1) + m->n_state + 1 + n_acts + 1 + n_aux + 1 +
                                   2 * batch * widest + batch * trunk_out + 2 * (n_cols + 1) + 2 * bn_plane) +
               sizeof(int32_t) * (n_iaux + 1) + sizeof(double) * (3 * (size_t)max_channels + 1) + batch;
    if (!m->params || !m->grads || !m->state || !m->acts || !m->aux || !m->iaux || !m->delta[0] ||
        !m->delta[1] || !m->trunk_delta || !m->cols || !m->dcols || !m->bn_scratch || !m->bn_plane || !m->head_labels)
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for a model of %zu parameters (batch %d)",
                        m->n_params, m->max_batch);
    return DPT_OK;
}

dpt_status dpt_model_create(dpt_model *m, dpt_shape input, const dpt_model_spec *spec, int max_batch)
{
    memset(m, 0, sizeof *m);
    if (input.c < 1 || input.h < 1 || input.w < 1 || max_batch < 1 || spec->n_heads > DPT_MAX_HEADS)
        return DPT_FAIL(DPT_ERR_ARG, "bad model input %dx%dx%d, batch %d, %d heads", input.c,
                        input.h, input.w, max_batch, spec->n_heads);
    m->input = input;
    m->max_batch = max_batch;
    m->default_init = spec->init;
    resolve_heads(m, spec);
    dpt_status st = build_layers(m, spec);
    if (st == DPT_OK) st = allocate(m);
    if (st != DPT_OK) dpt_model_destroy(m);
    return st;
}

void dpt_model_destroy(dpt_model *m)
{
    void *buffers[] = {m->params, m->grads, m->state, m->acts, m->aux, m->iaux, m->delta[0],
                       m->delta[1], m->trunk_delta, m->cols, m->dcols, m->bn_scratch, m->bn_plane, m->head_labels};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(buffers[i]);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- initialization */

/* He before a ReLU (looking past batch norm and dropout), Glorot otherwise. */
static dpt_init_kind auto_init(const dpt_model *m, int i, dpt_init_kind model_default)
{
    if (model_default != DPT_INIT_AUTO) return model_default;
    for (int j = i + 1; j < m->n_layers; j++) {
        dpt_layer_kind k = m->layers[j].spec.kind;
        if (k == DPT_LAYER_BATCHNORM || k == DPT_LAYER_DROPOUT) continue;
        if (k == DPT_LAYER_ACTIVATION && m->layers[j].spec.act == DPT_ACT_RELU) return DPT_INIT_HE_NORMAL;
        break;
    }
    return DPT_INIT_GLOROT_UNIFORM;
}

/* The last layer with weights (not batch norm) in [from, to), or -1. */
static int last_weighted(const dpt_model *m, int from, int to)
{
    for (int j = to - 1; j >= from; j--)
        if (m->layers[j].n_weights && m->layers[j].spec.kind != DPT_LAYER_BATCHNORM) return j;
    return -1;
}

/* The head whose output layer is layer i, or -1. */
static int head_of_output(const dpt_model *m, int i)
{
    for (int h = 0; h < m->n_heads; h++) {
        int j = last_weighted(m, m->heads[h].first, m->heads[h].first + m->heads[h].n);
        if (j < 0) j = last_weighted(m, 0, m->n_trunk);
        if (j == i) return h;
    }
    return -1;
}

/* bias_k = log p_k of the head's label frequencies (add-one smoothed), so
 * that the untrained network already predicts the class prior. */
static dpt_status prior_bias(const dpt_model *m, int i, const long *counts, dpt_real *b)
{
    const dpt_layer *l = &m->layers[i];
    int h = head_of_output(m, i);
    if (h < 0 || !counts || l->n_bias != (size_t)m->heads[h].outputs)
        return DPT_FAIL(DPT_ERR_SHAPE, "layer %d: bias=prior needs the output layer of a head "
                        "and the training labels", i + 1);
    double per_class[DPT_LABELS] = {0}, total = 0;
    for (int y = 0; y < DPT_LABELS; y++) {
        int k = dpt_model_head_label(m, h, y);
        if (k >= 0 && k < (int)l->n_bias) per_class[k] += (double)counts[y], total += (double)counts[y];
    }
    for (size_t k = 0; k < l->n_bias; k++)
        b[k] = (dpt_real)log((per_class[k] + 1) / (total + (double)l->n_bias));
    return DPT_OK;
}

static dpt_status init_layer(dpt_model *m, int i, uint64_t seed, dpt_init_kind model_default,
                             const long *counts)
{
    dpt_layer *l = &m->layers[i];
    dpt_real *w = m->params + l->param_offset, *b = w + l->n_weights;
    if (l->spec.kind == DPT_LAYER_BATCHNORM) {
        for (size_t c = 0; c < l->n_weights; c++) w[c] = 1; /* gamma = 1, beta = 0 */
        dpt_real *var = m->state + l->state_offset + l->in.c;
        for (int c = 0; c < l->in.c; c++) var[c] = 1;
        return DPT_OK;
    }
    if (l->n_weights == 0) return DPT_OK;
    dpt_init_spec init = l->spec.init;
    if (init.kind == DPT_INIT_AUTO) {
        init.kind = auto_init(m, i, model_default);
        init.value = dpt_init_default_value(init.kind);
    }
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_INIT, 0, (uint64_t)i); /* one substream per layer */
    int filters = l->spec.units;
    int cols = (int)(l->n_weights / l->n_bias);        /* fan-in of one unit */
    int receptive = l->spec.kind == DPT_LAYER_DENSE ? 1 : l->spec.kh * l->spec.kw;
    size_t sets = l->n_bias / (size_t)filters;          /* unshared kernel sets */
    for (size_t s = 0; s < sets; s++) {
        dpt_status st = dpt_init_weights(w + s * (size_t)filters * cols, filters, cols, cols,
                                         filters * receptive, &init, &rng);
        if (st != DPT_OK) return st;
    }
    for (size_t k = 0; k < l->n_bias; k++) b[k] = (dpt_real)l->spec.bias;
    return l->spec.bias_prior ? prior_bias(m, i, counts, b) : DPT_OK;
}

dpt_status dpt_model_init_params(dpt_model *m, uint64_t seed, const long *label_counts)
{
    memset(m->state, 0, sizeof(dpt_real) * m->n_state);
    for (int i = 0; i < m->n_layers; i++) {
        dpt_status st = init_layer(m, i, seed, m->default_init, label_counts);
        if (st != DPT_OK) return st;
    }
    return DPT_OK;
}

int dpt_model_head_label(const dpt_model *m, int h, int data_label)
{
    if (data_label < 0 || data_label >= DPT_LABELS) return -1;
    const dpt_head_spec *spec = &m->heads[h].spec;
    return spec->has_map ? spec->map[data_label] : data_label;
}

double dpt_model_flops_per_sample(const dpt_model *m)
{
    double flops = 0;
    for (int i = 0; i < m->n_layers; i++) flops += m->layers[i].flops;
    return flops;
}
