/* Curvature-vector products by the R-operator (Pearlmutter 1994):
 * R{.} = d/dr (.)(theta + r v) at r = 0. The R-forward pass propagates
 * R{a} through the layers; the exact Hessian product is then R{gradient},
 * computed by a backward pass that carries the gradient d and R{d}
 * together; the Gauss-Newton product drops the terms of the network's own
 * second derivatives (Schraudolph 2002), leaving J^T H_L J v. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/model.h"

static dpt_real *out_of(const dpt_model *m, const dpt_layer *l) { return m->acts + l->out_offset; }

static size_t widest(const dpt_model *m)
{
    size_t w = dpt_shape_size(m->input);
    for (int i = 0; i < m->n_layers; i++)
        if (dpt_shape_size(m->layers[i].out) > w) w = dpt_shape_size(m->layers[i].out);
    return w;
}

dpt_status dpt_curvature_ws_create(dpt_curvature_ws *ws, const dpt_model *m)
{
    memset(ws, 0, sizeof *ws);
    size_t n_acts = 0, batch = (size_t)m->max_batch, wide = batch * widest(m);
    for (int i = 0; i < m->n_layers; i++) {
        size_t end = m->layers[i].out_offset + batch * dpt_shape_size(m->layers[i].out);
        if (end > n_acts) n_acts = end;
    }
    ws->racts = calloc(n_acts + 1, sizeof(dpt_real));
    dpt_real **bufs[] = {&ws->d[0], &ws->d[1], &ws->rd[0], &ws->rd[1], &ws->tmp, &ws->trunk_d, &ws->trunk_rd};
    /* tmp also holds a zero bias in front of a batch of outputs: twice the room */
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        *bufs[i] = calloc((bufs[i] == &ws->tmp ? 2 * wide : wide) + 1, sizeof(dpt_real));
    int ok = ws->racts != NULL;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ok &= *bufs[i] != NULL;
    if (!ok) {
        dpt_curvature_ws_destroy(ws);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for curvature products");
    }
    return DPT_OK;
}

void dpt_curvature_ws_destroy(dpt_curvature_ws *ws)
{
    void *bufs[] = {ws->racts, ws->d[0], ws->d[1], ws->rd[0], ws->rd[1], ws->tmp, ws->trunk_d, ws->trunk_rd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(ws, 0, sizeof *ws);
}

/* f'(z) and f''(z) written through y = f(z) */
static dpt_real act_d1(dpt_activation a, dpt_real y)
{
    switch (a) {
    case DPT_ACT_RELU: return y > 0;
    case DPT_ACT_TANH: return 1 - y * y;
    case DPT_ACT_SIGMOID: return y * (1 - y);
    default: return 1;
    }
}

static dpt_real act_d2(dpt_activation a, dpt_real y)
{
    switch (a) {
    case DPT_ACT_TANH: return -2 * y * (1 - y * y);
    case DPT_ACT_SIGMOID: return y * (1 - y) * (1 - 2 * y);
    default: return 0; /* identity; relu almost everywhere */
    }
}

/* ---------------------------------------------------------------- R-forward */

/* rout = R{out} of layer l from rin = R{in} (NULL: the input does not
 * depend on theta) and the direction's view v of the parameters. */
static void r_forward(dpt_model *m, dpt_curvature_ws *ws, const dpt_layer *l, dpt_real *rout,
                      const dpt_real *rin, const dpt_real *in, const dpt_real *v, int B)
{
    const dpt_real *w = m->params + l->param_offset, *vw = v + l->param_offset, *vb = vw + l->n_weights;
    size_t n_out = (size_t)B * dpt_shape_size(l->out);
    int n_in = (int)dpt_shape_size(l->in), units = l->spec.units;
    switch (l->spec.kind) {
    case DPT_LAYER_DENSE: /* R{z} = V x + v_b + W R{x} */
        dpt_dense_forward(rout, in, vw, vb, B, n_in, units);
        if (rin) dpt_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, units, n_in, 1, rin, n_in, w,
                          n_in, 1, rout, units);
        break;
    case DPT_LAYER_CONV2D:
        dpt_conv2d_forward(rout, m->cols, in, vw, vb, B, &l->conv);
        if (rin) {
            memset(ws->tmp, 0, sizeof(dpt_real) * (size_t)units); /* a zero bias */
            dpt_conv2d_forward(ws->tmp + units, m->cols, rin, w, ws->tmp, B, &l->conv);
            for (size_t i = 0; i < n_out; i++) rout[i] += ws->tmp[units + i];
        }
        break;
    case DPT_LAYER_ACTIVATION: { /* R{y} = f'(z) R{z} */
        const dpt_real *y = out_of(m, l);
        for (size_t i = 0; i < n_out; i++) rout[i] = rin ? act_d1(l->spec.act, y[i]) * rin[i] : 0;
        break;
    }
    default: /* flatten */
        if (rin) memcpy(rout, rin, sizeof(dpt_real) * n_out);
        else memset(rout, 0, sizeof(dpt_real) * n_out);
    }
}

/* ---------------------------------------------------------------- loss */

/* d = weight dL/dz and rd = weight H_L R{z} for one head's outputs. */
static void loss_r(dpt_real *d, dpt_real *rd, const dpt_real *z, const dpt_real *rz, const uint8_t *y,
                   int B, int K, dpt_loss_kind loss, double weight)
{
    dpt_loss_forward_backward(d, NULL, z, y, B, K, loss);
    for (int b = 0; b < B; b++) {
        const dpt_real *zb = z + (size_t)b * K, *rb = rz ? rz + (size_t)b * K : NULL;
        dpt_real *db = d + (size_t)b * K, *out = rd + (size_t)b * K;
        if (loss == DPT_LOSS_SOFTMAX_XENT) { /* H_L = diag(p) - p p^T, p = softmax(z) = d + onehot */
            double dot = 0;
            for (int k = 0; k < K; k++) {
                double p = db[k] + (k == y[b]);
                dot += p * (rb ? rb[k] : 0);
            }
            for (int k = 0; k < K; k++) out[k] = (dpt_real)((db[k] + (k == y[b])) * ((rb ? rb[k] : 0) - dot));
        } else if (loss == DPT_LOSS_MSE) { /* H_L = (2 / K) I */
            for (int k = 0; k < K; k++) out[k] = rb ? (dpt_real)(2.0 / K) * rb[k] : 0;
        } else { /* sigmoid BCE: H_L = diag(s (1 - s)) */
            for (int k = 0; k < K; k++) {
                dpt_real s = 1 / (1 + dpt_exp(-zb[k]));
                out[k] = rb ? s * (1 - s) * rb[k] : 0;
            }
        }
        for (int k = 0; k < K; k++) db[k] *= (dpt_real)weight, out[k] *= (dpt_real)weight;
    }
}

/* ---------------------------------------------------------------- R-backward */

/* One layer backward. In: d = dL/d(out), rd = R{d}; rin = R{in} (or NULL).
 * Out: din, rdin (din may be NULL when not needed); the parameter part of
 * R{gradient} is added to hv. gn: the Gauss-Newton product, which keeps
 * only rd's ordinary backward pass (no d terms). */
static void r_backward(dpt_model *m, dpt_curvature_ws *ws, const dpt_layer *l, dpt_real *din,
                       dpt_real *rdin, const dpt_real *d, const dpt_real *rd, const dpt_real *in,
                       const dpt_real *rin, const dpt_real *v, dpt_real *hv, int B, int gn)
{
    const dpt_real *w = m->params + l->param_offset, *vw = v + l->param_offset;
    dpt_real *hw = hv + l->param_offset, *hb = hw + l->n_weights;
    size_t n_in = (size_t)B * dpt_shape_size(l->in);
    int in_dim = (int)dpt_shape_size(l->in), units = l->spec.units;
    switch (l->spec.kind) {
    case DPT_LAYER_DENSE: /* R{dW} = R{dz}^T x + dz^T R{x};  R{dx} = R{dz} W + dz V */
        dpt_dense_backward(rdin, hw, hb, rd, in, w, B, in_dim, units);
        if (gn) break;
        if (rin) dpt_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, units, in_dim, B, 1, d, units,
                          rin, in_dim, 1, hw, in_dim);
        dpt_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in_dim, units, 1, d, units, vw, in_dim,
                 1, rdin, in_dim);
        if (din) dpt_dense_backward_input(din, d, w, B, in_dim, units);
        break;
    case DPT_LAYER_CONV2D:
        dpt_conv2d_backward(rdin, hw, hb, m->cols, m->dcols, rd, in, w, B, &l->conv);
        if (gn) break;
        if (rin) { /* dz correlated with R{x}; its bias part goes to a scratch sum */
            memset(ws->tmp, 0, sizeof(dpt_real) * (size_t)units);
            dpt_conv2d_backward(NULL, hw, ws->tmp, m->cols, m->dcols, d, rin, w, B, &l->conv);
        }
        dpt_conv2d_backward_input(ws->tmp, m->dcols, d, vw, B, &l->conv);
        for (size_t i = 0; i < n_in; i++) rdin[i] += ws->tmp[i];
        if (din) dpt_conv2d_backward_input(din, m->dcols, d, w, B, &l->conv);
        break;
    case DPT_LAYER_ACTIVATION: { /* R{dz} = f'(z) R{dy} + f''(z) R{z} dy */
        const dpt_real *y = out_of(m, l);
        for (size_t i = 0; i < n_in; i++) {
            rdin[i] = act_d1(l->spec.act, y[i]) * rd[i];
            if (!gn && rin) rdin[i] += act_d2(l->spec.act, y[i]) * rin[i] * d[i];
            if (din) din[i] = act_d1(l->spec.act, y[i]) * d[i];
        }
        break;
    }
    default: /* flatten */
        memcpy(rdin, rd, sizeof(dpt_real) * n_in);
        if (din) memcpy(din, d, sizeof(dpt_real) * n_in);
    }
}

/* Backward over layers [first, first + n) from d = ws->d[0], rd = ws->rd[0];
 * returns the index (0 or 1) of the buffers holding the result at the input. */
static int r_back_layers(dpt_model *m, dpt_curvature_ws *ws, int first, int n, const dpt_real *input,
                         const dpt_real *rinput, const dpt_real *v, dpt_real *hv, int B, int gn)
{
    int cur = 0;
    for (int i = first + n - 1; i >= first; i--) {
        const dpt_layer *l = &m->layers[i];
        const dpt_real *in = i == first ? input : out_of(m, &m->layers[i - 1]);
        const dpt_real *rin = i == first ? rinput : ws->racts + m->layers[i - 1].out_offset;
        r_backward(m, ws, l, gn ? NULL : ws->d[1 - cur], ws->rd[1 - cur], ws->d[cur], ws->rd[cur], in,
                   rin, v, hv, B, gn);
        cur = 1 - cur;
    }
    return cur;
}

dpt_status dpt_model_curvature_check(const dpt_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        dpt_layer_kind k = m->layers[i].spec.kind;
        if (k != DPT_LAYER_DENSE && k != DPT_LAYER_CONV2D && k != DPT_LAYER_ACTIVATION &&
            k != DPT_LAYER_FLATTEN)
            return DPT_FAIL(DPT_ERR_ARG, "layer %d is %s; curvature (Hessian-vector) products "
                            "support dense, conv, activation and flatten layers", i + 1,
                            dpt_layer_kind_name(k));
    }
    return DPT_OK;
}

/* R-forward over every layer; returns R{trunk output} (NULL: no trunk). */
static const dpt_real *r_forward_all(dpt_model *m, dpt_curvature_ws *ws, const dpt_real *x,
                                     const dpt_real *v, int B)
{
    const dpt_real *rin = NULL, *in = x;
    for (int i = 0; i < m->n_trunk; i++) {
        dpt_real *rout = ws->racts + m->layers[i].out_offset;
        r_forward(m, ws, &m->layers[i], rout, rin, in, v, B);
        rin = rout;
        in = out_of(m, &m->layers[i]);
    }
    const dpt_real *rtrunk = rin, *trunk_out = in;
    for (int h = 0; h < m->n_heads; h++) {
        rin = rtrunk, in = trunk_out;
        for (int i = m->heads[h].first; i < m->heads[h].first + m->heads[h].n; i++) {
            dpt_real *rout = ws->racts + m->layers[i].out_offset;
            r_forward(m, ws, &m->layers[i], rout, rin, in, v, B);
            rin = rout;
            in = out_of(m, &m->layers[i]);
        }
    }
    return rtrunk;
}

dpt_status dpt_model_curvature_product(dpt_model *m, dpt_curvature_ws *ws, const dpt_real *x,
                                       const uint8_t *labels, int B, const dpt_real *v,
                                       dpt_real *hv, dpt_curvature_kind kind)
{
    dpt_status st = dpt_model_curvature_check(m);
    if (st != DPT_OK) return st;
    int gn = kind == DPT_CURV_GAUSS_NEWTON;
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0};
    dpt_batch_metrics unused;
    memset(&unused, 0, sizeof unused);
    dpt_model_forward(m, x, labels, B, &ctx, &unused);
    const dpt_real *rtrunk = r_forward_all(m, ws, x, v, B);
    const dpt_real *trunk_out = m->n_trunk ? out_of(m, &m->layers[m->n_trunk - 1]) : x;
    size_t trunk_size = (size_t)B * dpt_shape_size(m->n_trunk ? m->layers[m->n_trunk - 1].out : m->input);
    for (int h = 0; h < m->n_heads; h++) {
        const dpt_head *head = &m->heads[h];
        int last = head->first + head->n - 1;
        const dpt_real *z = dpt_model_head_output(m, h);
        const dpt_real *rz = head->n ? ws->racts + m->layers[last].out_offset : rtrunk;
        uint8_t y[B > 0 ? B : 1];
        for (int b = 0; b < B; b++) y[b] = (uint8_t)dpt_model_head_label(m, h, labels[b]);
        loss_r(ws->d[0], ws->rd[0], z, rz, y, B, head->outputs, head->spec.loss, head->spec.weight);
        int cur = r_back_layers(m, ws, head->first, head->n, trunk_out, rtrunk, v, hv, B, gn);
        /* every head's d and R{d} flow into the shared trunk: sum them */
        for (size_t i = 0; i < trunk_size; i++) {
            ws->trunk_d[i] = (h ? ws->trunk_d[i] : 0) + (gn ? 0 : ws->d[cur][i]);
            ws->trunk_rd[i] = (h ? ws->trunk_rd[i] : 0) + ws->rd[cur][i];
        }
    }
    if (m->n_trunk == 0) return DPT_OK;
    memcpy(ws->d[0], ws->trunk_d, sizeof(dpt_real) * trunk_size);
    memcpy(ws->rd[0], ws->trunk_rd, sizeof(dpt_real) * trunk_size);
    r_back_layers(m, ws, 0, m->n_trunk, x, NULL, v, hv, B, gn);
    return DPT_OK;
}

/* ---------------------------------------------------------------- factored Gauss-Newton rows */

int dpt_model_gn_rows_per_sample(const dpt_model *m)
{
    int rows = 0;
    for (int h = 0; h < m->n_heads; h++) rows += m->heads[h].outputs;
    return rows;
}

/* Row c of a square root F of the weighted loss Hessian, H_L = F^T F, at
 * the outputs z[K] of one sample:
 *   softmax cross-entropy  H_L = diag(p) - p p^T = sum_c p_c (e_c - p)(e_c - p)^T,
 *                          so row c = sqrt(p_c) (e_c - p);
 *   MSE                    H_L = (2 / K) I;   sigmoid BCE  H_L = diag(s (1 - s)). */
static void loss_factor_row(dpt_real *row, const dpt_real *z, int K, int c, dpt_loss_kind loss, double weight)
{
    if (loss == DPT_LOSS_SOFTMAX_XENT) {
        double zmax = z[0], sum = 0;
        for (int k = 1; k < K; k++) zmax = fmax(zmax, (double)z[k]);
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - zmax);
        double pc = exp((double)z[c] - zmax) / sum, scale = sqrt(weight * pc);
        for (int k = 0; k < K; k++) row[k] = (dpt_real)(scale * ((k == c) - exp((double)z[k] - zmax) / sum));
        return;
    }
    for (int k = 0; k < K; k++) row[k] = 0;
    if (loss == DPT_LOSS_MSE) {
        row[c] = (dpt_real)sqrt(weight * 2.0 / K);
    } else {
        double sc = 1 / (1 + exp(-(double)z[c]));
        row[c] = (dpt_real)sqrt(weight * sc * (1 - sc));
    }
}

/* One factored row: rows_out[n_params] = J^T f for one sample whose forward
 * pass is in the model, f = ws->rd[0] at head h's output (an ordinary
 * backward pass, as in the Gauss-Newton product). */
static void factor_row_backward(dpt_model *m, dpt_curvature_ws *ws, int h, const dpt_real *x, dpt_real *row)
{
    const dpt_head *head = &m->heads[h];
    const dpt_real *trunk_out = m->n_trunk ? out_of(m, &m->layers[m->n_trunk - 1]) : x;
    memset(row, 0, sizeof(dpt_real) * m->n_params);
    int cur = r_back_layers(m, ws, head->first, head->n, trunk_out, NULL, m->params, row, 1, 1);
    if (m->n_trunk == 0) return;
    if (cur != 0) {
        size_t trunk_size = dpt_shape_size(m->layers[m->n_trunk - 1].out);
        memcpy(ws->rd[0], ws->rd[cur], sizeof(dpt_real) * trunk_size);
    }
    r_back_layers(m, ws, 0, m->n_trunk, x, NULL, m->params, row, 1, 1);
}

dpt_status dpt_model_gn_rows(dpt_model *m, dpt_curvature_ws *ws, const dpt_real *x, const uint8_t *labels,
                             int B, dpt_real *rows)
{
    dpt_status st = dpt_model_curvature_check(m);
    if (st != DPT_OK) return st;
    const size_t in_size = dpt_shape_size(m->input), n = m->n_params;
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0};
    dpt_batch_metrics unused;
    for (int b = 0; b < B; b++) { /* one sample at a time: each row is that sample's alone */
        const dpt_real *xb = x + (size_t)b * in_size;
        memset(&unused, 0, sizeof unused);
        dpt_model_forward(m, xb, labels + b, 1, &ctx, &unused);
        for (int h = 0; h < m->n_heads; h++) {
            const dpt_head *head = &m->heads[h];
            const dpt_real *z = dpt_model_head_output(m, h);
            for (int c = 0; c < head->outputs; c++, rows += n) {
                loss_factor_row(ws->rd[0], z, head->outputs, c, head->spec.loss, head->spec.weight);
                factor_row_backward(m, ws, h, xb, rows);
            }
        }
    }
    return DPT_OK;
}
