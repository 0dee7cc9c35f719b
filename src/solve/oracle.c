/* The distributed oracle: loss, gradient and curvature products of the
 * mean loss over one batch, each rank its share, sums reduced. */
#include "dpt/oracle.h"

#include <stdlib.h>
#include <string.h>

#include "oracle_softmax.h"

dpt_status dpt_oracle_create(dpt_oracle *o, MPI_Comm comm, dpt_model *model, const dpt_dataset *set,
                             size_t batch_lo, size_t batch_n, double curvature_fraction, double l2)
{
    memset(o, 0, sizeof *o);
    dpt_status st = dpt_comm_wrap(&o->comm, comm);
    if (st != DPT_OK) return st;
    if (batch_lo + batch_n > set->n_samples || batch_n == 0 || !(curvature_fraction > 0) ||
        curvature_fraction > 1 || !(l2 >= 0))
        return DPT_FAIL(DPT_ERR_ARG, "oracle: batch [%zu, +%zu) of %zu samples, curvature fraction %g, "
                        "l2 %g", batch_lo, batch_n, set->n_samples, curvature_fraction, l2);
    o->model = model;
    o->set = set;
    o->l2 = l2;
    dpt_split_range(batch_n, o->comm.size, o->comm.rank, &o->lo, &o->count);
    o->lo += batch_lo;
    o->curv_count = (size_t)((double)o->count * curvature_fraction + 0.5);
    double counts[2] = {(double)o->count, (double)o->curv_count};
    st = dpt_allreduce_sum_acc(&o->comm, counts, 2);
    if (st != DPT_OK) return st;
    o->n_total = counts[0];
    o->n_curv = counts[1];
    size_t batch = (size_t)model->max_batch, n = model->n_params;
    o->is_weight = calloc(n + 1, 1);
    o->batch_x = malloc(sizeof(dpt_real) * batch * set->n_features);
    o->batch_y = malloc(batch);
    o->index = malloc(sizeof(uint32_t) * batch);
    if (!o->is_weight || !o->batch_x || !o->batch_y || !o->index) {
        dpt_oracle_destroy(o);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the oracle");
    }
    for (int i = 0; i < model->n_layers; i++) { /* the penalty is on weights, not biases */
        const dpt_layer *l = &model->layers[i];
        if (l->spec.kind != DPT_LAYER_BATCHNORM) memset(o->is_weight + l->param_offset, 1, l->n_weights);
    }
    st = dpt_curvature_ws_create(&o->ws, model);
    if (st == DPT_OK) st = dpt_softmax_oracle_create(&o->fast, o);
    if (st != DPT_OK) dpt_oracle_destroy(o);
    return st;
}

void dpt_oracle_use_general_path(dpt_oracle *o)
{
    dpt_softmax_oracle_destroy(o->fast);
    o->fast = NULL;
}

void dpt_oracle_destroy(dpt_oracle *o)
{
    dpt_oracle_use_general_path(o);
    dpt_curvature_ws_destroy(&o->ws);
    free(o->is_weight), free(o->batch_x), free(o->batch_y), free(o->index);
    memset(o, 0, sizeof *o);
}

static void set_point(dpt_oracle *o, const dpt_real *theta)
{
    if (theta != o->model->params)
        memcpy(o->model->params, theta, sizeof(dpt_real) * o->model->n_params);
}

/* Samples [o->lo + done, + n) into the batch buffers. */
static void gather(dpt_oracle *o, size_t done, size_t n)
{
    for (size_t i = 0; i < n; i++) o->index[i] = (uint32_t)(o->lo + done + i);
    dpt_dataset_gather(o->set, o->index, n, o->batch_x, o->batch_y);
}

/* The fast path's gradient sums in sums[n] and *loss, summed over ranks:
 * in one reduction when the loss fits a real without loss (a double build;
 * sums has room for n + 1: the model's gradient buffer). */
static dpt_status reduce_fast(dpt_oracle *o, dpt_real *sums, double *loss)
{
    size_t n = o->model->n_params;
    if (sizeof(dpt_real) < sizeof(double)) {
        dpt_status st = dpt_allreduce_sum_acc(&o->comm, loss, 1);
        return st == DPT_OK ? dpt_allreduce_sum_real(&o->comm, sums, n) : st;
    }
    sums[n] = (dpt_real)*loss;
    dpt_status st = dpt_allreduce_sum_real(&o->comm, sums, n + 1);
    *loss = (double)sums[n];
    return st;
}

dpt_status dpt_oracle_value_grad(dpt_oracle *o, const dpt_real *theta, double *f, dpt_real *g)
{
    dpt_model *m = o->model;
    size_t n = m->n_params, chunk = (size_t)m->max_batch;
    set_point(o, theta);
    double loss;
    dpt_status st;
    if (o->fast) {
        dpt_softmax_oracle_value_grad(o->fast, m->params, &loss, m->grads);
        st = reduce_fast(o, m->grads, &loss);
    } else {
        memset(m->grads, 0, sizeof(dpt_real) * n);
        dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0};
        dpt_batch_metrics metrics;
        memset(&metrics, 0, sizeof metrics);
        for (size_t done = 0; done < o->count; done += chunk) {
            size_t b = o->count - done < chunk ? o->count - done : chunk;
            gather(o, done, b);
            dpt_model_forward_backward(m, o->batch_x, o->batch_y, (int)b, &ctx, &metrics);
        }
        loss = metrics.total;
        st = dpt_allreduce_sum_acc(&o->comm, &loss, 1);
        if (st == DPT_OK) st = dpt_allreduce_sum_real(&o->comm, m->grads, n);
    }
    if (st != DPT_OK) return st;
    double penalty = 0;
    const dpt_real inv = (dpt_real)(1.0 / o->n_total), l2 = (dpt_real)o->l2;
    for (size_t i = 0; i < n; i++) {
        dpt_real w = o->is_weight[i] ? m->params[i] : 0;
        penalty += (double)w * w;
        g[i] = m->grads[i] * inv + l2 * w;
    }
    *f = loss / o->n_total + 0.5 * o->l2 * penalty;
    o->evals++;
    return DPT_OK;
}

dpt_status dpt_oracle_curvature(dpt_oracle *o, const dpt_real *theta, const dpt_real *v,
                                dpt_real *out, dpt_curvature_kind kind)
{
    dpt_model *m = o->model;
    size_t n = m->n_params, chunk = (size_t)m->max_batch;
    set_point(o, theta);
    if (o->fast) {
        dpt_softmax_oracle_curvature(o->fast, m->params, v, out);
    } else {
        memset(out, 0, sizeof(dpt_real) * n);
        for (size_t done = 0; done < o->curv_count; done += chunk) {
            size_t b = o->curv_count - done < chunk ? o->curv_count - done : chunk;
            gather(o, done, b);
            dpt_status st = dpt_model_curvature_product(m, &o->ws, o->batch_x, o->batch_y, (int)b, v, out, kind);
            if (st != DPT_OK) return st;
        }
    }
    dpt_status st = dpt_allreduce_sum_real(&o->comm, out, n);
    if (st != DPT_OK) return st;
    const dpt_real inv = (dpt_real)(1.0 / o->n_curv), l2 = (dpt_real)o->l2;
    for (size_t i = 0; i < n; i++) out[i] = out[i] * inv + (o->is_weight[i] ? l2 * v[i] : 0);
    o->products++;
    return DPT_OK;
}

dpt_status dpt_oracle_gn_rows(dpt_oracle *o, const dpt_real *theta, size_t first, size_t count,
                              dpt_real *rows)
{
    if (first + count > o->curv_count || count > (size_t)o->model->max_batch)
        return DPT_FAIL(DPT_ERR_ARG, "oracle: rows of samples [%zu, +%zu) of %zu (batch at most %d)",
                        first, count, o->curv_count, o->model->max_batch);
    if (count == 0) return DPT_OK;
    set_point(o, theta);
    gather(o, first, count);
    return dpt_model_gn_rows(o->model, &o->ws, o->batch_x, o->batch_y, (int)count, rows);
}

dpt_status dpt_oracle_grad_sq(dpt_oracle *o, const dpt_real *theta, dpt_real *out)
{
    dpt_model *m = o->model;
    const size_t n = m->n_params, in_size = o->set->n_features, chunk = (size_t)m->max_batch;
    set_point(o, theta);
    memset(out, 0, sizeof(dpt_real) * n);
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0};
    dpt_batch_metrics unused;
    for (size_t done = 0; done < o->curv_count; done += chunk) {
        size_t b = o->curv_count - done < chunk ? o->curv_count - done : chunk;
        gather(o, done, b);
        for (size_t i = 0; i < b; i++) { /* one sample at a time: its own gradient */
            memset(m->grads, 0, sizeof(dpt_real) * n);
            memset(&unused, 0, sizeof unused);
            dpt_model_forward_backward(m, o->batch_x + i * in_size, o->batch_y + i, 1, &ctx, &unused);
            for (size_t j = 0; j < n; j++) out[j] += m->grads[j] * m->grads[j];
        }
    }
    dpt_status st = dpt_allreduce_sum_real(&o->comm, out, n);
    if (st != DPT_OK) return st;
    const dpt_real inv = (dpt_real)(1.0 / o->n_curv);
    for (size_t j = 0; j < n; j++) out[j] *= inv;
    return DPT_OK;
}
