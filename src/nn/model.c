/* A stack of dense layers over one flat parameter and gradient buffer. */
#include "dpt/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/rng.h"

const char *dpt_init_name(dpt_init_kind init)
{
    switch (init) {
    case DPT_INIT_AUTO: return "auto";
    case DPT_INIT_HE_NORMAL: return "he_normal";
    case DPT_INIT_GLOROT_UNIFORM: return "glorot_uniform";
    }
    return "?";
}

static int fan_in(const dpt_model *model, int layer)
{
    return layer == 0 ? model->in_dim : model->layers[layer - 1].units;
}

dpt_status dpt_model_create(dpt_model *model, int in_dim, const dpt_layer_spec *layers,
                            int n_layers, dpt_loss_kind loss, int max_batch)
{
    memset(model, 0, sizeof *model);
    if (in_dim < 1 || n_layers < 1 || n_layers > DPT_MAX_LAYERS || max_batch < 1)
        return DPT_FAIL(DPT_ERR_ARG, "bad model shape (input %d, %d layers, batch %d)",
                        in_dim, n_layers, max_batch);
    model->in_dim = in_dim;
    model->n_layers = n_layers;
    model->loss = loss;
    model->max_batch = max_batch;
    size_t n_params = 0, n_acts = 0;
    int widest = in_dim;
    for (int l = 0; l < n_layers; l++) {
        if (layers[l].units < 1)
            return DPT_FAIL(DPT_ERR_ARG, "layer %d has %d units", l + 1, layers[l].units);
        model->layers[l] = layers[l];
        model->w_offset[l] = n_params;
        n_params += (size_t)layers[l].units * fan_in(model, l);
        model->b_offset[l] = n_params;
        n_params += (size_t)layers[l].units;
        model->act_offset[l] = n_acts;
        n_acts += (size_t)max_batch * layers[l].units;
        if (layers[l].units > widest) widest = layers[l].units;
    }
    model->n_params = n_params;
    size_t delta_len = (size_t)max_batch * widest;
    model->params = calloc(n_params, sizeof(dpt_real));
    model->grads = calloc(n_params, sizeof(dpt_real));
    model->acts = calloc(n_acts, sizeof(dpt_real));
    model->delta[0] = calloc(delta_len, sizeof(dpt_real));
    model->delta[1] = calloc(delta_len, sizeof(dpt_real));
    if (!model->params || !model->grads || !model->acts || !model->delta[0] || !model->delta[1]) {
        dpt_model_destroy(model);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for a model of %zu parameters", n_params);
    }
    return DPT_OK;
}

void dpt_model_destroy(dpt_model *model)
{
    free(model->params);
    free(model->grads);
    free(model->acts);
    free(model->delta[0]);
    free(model->delta[1]);
    memset(model, 0, sizeof *model);
}

void dpt_model_init_params(dpt_model *model, dpt_init_kind init, uint64_t seed)
{
    for (int l = 0; l < model->n_layers; l++) {
        int n_in = fan_in(model, l), n_out = model->layers[l].units;
        dpt_init_kind kind = init;
        if (kind == DPT_INIT_AUTO)
            kind = model->layers[l].act == DPT_ACT_RELU ? DPT_INIT_HE_NORMAL : DPT_INIT_GLOROT_UNIFORM;
        /* one substream per layer: a layer's values do not depend on the others' sizes */
        dpt_rng rng;
        dpt_rng_init(&rng, seed, DPT_STREAM_INIT, 0, (uint64_t)l);
        dpt_real *w = model->params + model->w_offset[l];
        size_t n_w = (size_t)n_in * n_out;
        if (kind == DPT_INIT_HE_NORMAL) {
            double std = sqrt(2.0 / n_in);
            for (size_t i = 0; i < n_w; i++) w[i] = (dpt_real)(std * dpt_rng_normal(&rng));
        } else {
            double limit = sqrt(6.0 / (n_in + n_out));
            for (size_t i = 0; i < n_w; i++)
                w[i] = (dpt_real)(limit * (2 * dpt_rng_uniform(&rng) - 1));
        }
        memset(model->params + model->b_offset[l], 0, sizeof(dpt_real) * n_out);
    }
}

static dpt_real *layer_output(const dpt_model *model, int l)
{
    return model->acts + model->act_offset[l];
}

static void forward(dpt_model *model, const dpt_real *x, int B)
{
    for (int l = 0; l < model->n_layers; l++) {
        const dpt_real *in = l == 0 ? x : layer_output(model, l - 1);
        dpt_real *out = layer_output(model, l);
        int n_out = model->layers[l].units;
        dpt_dense_forward(out, in, model->params + model->w_offset[l],
                          model->params + model->b_offset[l], B, fan_in(model, l), n_out);
        dpt_activation_forward(out, out, (size_t)B * n_out, model->layers[l].act);
    }
}

dpt_acc dpt_model_evaluate(dpt_model *model, const dpt_real *x, const uint8_t *labels,
                           int B, long *correct)
{
    forward(model, x, B);
    int last = model->n_layers - 1;
    return dpt_loss_forward_backward(NULL, correct, layer_output(model, last), labels, B,
                                     model->layers[last].units, model->loss);
}

dpt_acc dpt_model_forward_backward(dpt_model *model, const dpt_real *x,
                                   const uint8_t *labels, int B, long *correct)
{
    forward(model, x, B);
    int last = model->n_layers - 1;
    dpt_real *delta = model->delta[0], *delta_in = model->delta[1];
    dpt_acc loss = dpt_loss_forward_backward(delta, correct, layer_output(model, last), labels, B,
                                             model->layers[last].units, model->loss);
    for (int l = last; l >= 0; l--) {
        int n_out = model->layers[l].units;
        const dpt_real *in = l == 0 ? x : layer_output(model, l - 1);
        dpt_activation_backward(delta, delta, layer_output(model, l), (size_t)B * n_out,
                                model->layers[l].act);
        dpt_dense_backward(l == 0 ? NULL : delta_in, model->grads + model->w_offset[l],
                           model->grads + model->b_offset[l], delta, in,
                           model->params + model->w_offset[l], B, fan_in(model, l), n_out);
        dpt_real *swap = delta;
        delta = delta_in;
        delta_in = swap;
    }
    return loss;
}

const dpt_real *dpt_model_output(const dpt_model *model)
{
    return layer_output(model, model->n_layers - 1);
}

double dpt_model_flops_per_sample(const dpt_model *model)
{
    double flops = 0;
    for (int l = 0; l < model->n_layers; l++)
        flops += 2.0 * fan_in(model, l) * model->layers[l].units;
    return flops;
}
