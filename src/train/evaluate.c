/* Parallel evaluation: each rank its share of the set, sums reduced. Two
 * inference rules for dropout: the weight-scaling rule (dropout off; with
 * inverted dropout the network is used as it is) and, optionally, Monte
 * Carlo dropout (the average of K stochastic passes; Gal & Ghahramani 2016;
 * Goodfellow et al. 7.12 on approximating the ensemble's prediction). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/ensemble.h"
#include "dpt/train.h"

/* Per-rank batch-norm statistics: evaluate with their average over ranks,
 * so that every rank evaluates the same network. */
static dpt_status average_bn_state(dpt_trainer *t)
{
    size_t n = t->model.n_state;
    if (!t->bn_unsynced || n == 0 || t->comm.size == 1) return DPT_OK;
    double *sums = malloc(sizeof(double) * n);
    if (!sums) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory averaging batch-norm statistics");
    for (size_t i = 0; i < n; i++) sums[i] = t->model.state[i];
    dpt_status st = dpt_allreduce_sum_acc(&t->comm, sums, (int)n);
    for (size_t i = 0; i < n && st == DPT_OK; i++) t->model.state[i] = (dpt_real)(sums[i] / t->comm.size);
    free(sums);
    return st;
}

static int has_dropout(const dpt_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].spec.kind == DPT_LAYER_DROPOUT && m->layers[i].spec.keep < 1) return 1;
    return 0;
}

/* One output row's normalizer: its maximum and, for softmax, the sum of
 * exp(z - max) (subtracting the maximum keeps exp from overflowing). */
static void row_norm(const dpt_real *z, int K, dpt_loss_kind loss, double *top, double *norm)
{
    *top = z[0];
    *norm = 0;
    for (int k = 1; k < K; k++) *top = fmax(*top, z[k]);
    for (int k = 0; k < K && loss == DPT_LOSS_SOFTMAX_XENT; k++) *norm += exp(z[k] - *top);
}

/* Output zk as a class probability: softmax, sigmoid, or as it is (mse). */
static double class_probability(double zk, double top, double norm, dpt_loss_kind loss)
{
    if (loss == DPT_LOSS_SOFTMAX_XENT) return exp(zk - top) / norm;
    if (loss == DPT_LOSS_SIGMOID_BCE) return 1 / (1 + exp(-zk));
    return zk;
}

/* Samples [first, first + count) of set into the batch buffers
 * (count <= eval_batch). */
static void gather_range(dpt_trainer *t, const dpt_dataset *set, size_t first, size_t count)
{
    for (size_t i = 0; i < count; i++) t->eval_index[i] = (uint32_t)(first + i);
    dpt_dataset_gather(set, t->eval_index, count, t->batch_x, t->batch_y);
}

/* Adds the head's output turned into class probabilities to probs[B][K]. */
static void add_probabilities(dpt_real *probs, const dpt_real *out, int B, int K, dpt_loss_kind loss)
{
    for (int i = 0; i < B; i++) {
        const dpt_real *z = out + (size_t)i * K;
        dpt_real *p = probs + (size_t)i * K;
        double top, norm;
        row_norm(z, K, loss, &top, &norm);
        for (int k = 0; k < K; k++) p[k] += (dpt_real)class_probability(z[k], top, norm, loss);
    }
}

/* Hits of averaged predictions probs[B][K] against the head's labels. */
static long count_hits(const dpt_model *m, int h, const dpt_real *probs, const uint8_t *labels,
                       int B, int passes)
{
    const dpt_head *head = &m->heads[h];
    int K = head->outputs;
    long hits = 0;
    for (int i = 0; i < B; i++) {
        const dpt_real *p = probs + (size_t)i * K;
        int label = dpt_model_head_label(m, h, labels[i]), best = 0;
        for (int k = 1; k < K; k++)
            if (p[k] > p[best]) best = k;
        if (K == 1 && head->spec.loss == DPT_LOSS_SIGMOID_BCE) best = p[0] > 0.5 * passes;
        hits += best == label;
    }
    return hits;
}

/* K stochastic passes over one chunk; adds each head's hits to hits[]. */
static void mc_chunk(dpt_trainer *t, int B, uint64_t chunk_id, double *hits)
{
    dpt_model *m = &t->model;
    int K = t->cfg->eval.mc_samples;
    size_t offset[DPT_MAX_HEADS], total = 0;
    for (int h = 0; h < m->n_heads; h++) offset[h] = total, total += (size_t)B * m->heads[h].outputs;
    memset(t->mc_probs, 0, sizeof(dpt_real) * total);
    for (int k = 0; k < K; k++) {
        /* passes keyed far above any training step, distinct per chunk and k */
        dpt_forward_ctx ctx = {.dropout = 1, .seed = t->cfg->train.seed, .rank = (uint32_t)t->comm.rank,
                               .pass = (1ull << 40) + chunk_id * (uint64_t)K + (uint64_t)k};
        dpt_batch_metrics unused;
        memset(&unused, 0, sizeof unused);
        dpt_model_forward(m, t->batch_x, t->batch_y, B, &ctx, &unused);
        for (int h = 0; h < m->n_heads; h++)
            add_probabilities(t->mc_probs + offset[h], dpt_model_head_output(m, h), B,
                              m->heads[h].outputs, m->heads[h].spec.loss);
    }
    for (int h = 0; h < m->n_heads; h++)
        hits[h] += (double)count_hits(m, h, t->mc_probs + offset[h], t->batch_y, B, K);
}

dpt_status dpt_trainer_evaluate(dpt_trainer *t, const dpt_dataset *set, dpt_eval *out)
{
    if (set->n_features != dpt_shape_size(t->model.input))
        return DPT_FAIL(DPT_ERR_SHAPE, "evaluation data has %zu features, the model takes %zu",
                        set->n_features, dpt_shape_size(t->model.input));
    dpt_status st = average_bn_state(t);
    if (st != DPT_OK) return st;
    int mc = t->cfg->eval.mc_samples > 0 && has_dropout(&t->model);
    size_t begin, count;
    dpt_split_range(set->n_samples, t->comm.size, t->comm.rank, &begin, &count);
    double sums[DPT_SUMS] = {0}, mc_hits[DPT_MAX_HEADS] = {0};
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0}; /* running statistics, no dropout */
    for (size_t done = 0; done < count;) {
        size_t chunk = count - done < (size_t)t->eval_batch ? count - done : (size_t)t->eval_batch;
        gather_range(t, set, begin + done, chunk);
        dpt_batch_metrics metrics;
        memset(&metrics, 0, sizeof metrics);
        dpt_model_forward(&t->model, t->batch_x, t->batch_y, (int)chunk, &ctx, &metrics);
        sums[0] += metrics.total;
        sums[1] += (double)chunk;
        for (int h = 0; h < t->model.n_heads; h++) {
            sums[DPT_SUM_LOSS(h)] += metrics.loss[h];
            sums[DPT_SUM_HITS(h)] += (double)metrics.correct[h];
        }
        if (mc) mc_chunk(t, (int)chunk, (uint64_t)(begin + done), mc_hits);
        done += chunk;
    }
    st = dpt_trainer_reduce_window(t, sums, out);
    if (st != DPT_OK || !mc) return st;
    st = dpt_allreduce_sum_acc(&t->comm, mc_hits, DPT_MAX_HEADS);
    out->mc_samples = t->cfg->eval.mc_samples;
    for (int h = 0; h < t->model.n_heads; h++)
        out->head_mc_accuracy[h] = out->samples > 0 ? mc_hits[h] / (double)out->samples : 0;
    return st;
}

/* In double, so that bagging (dpt/ensemble.h), which averages members'
 * probabilities, does not round a member's tiny probability of the true
 * class to 0 in single precision before -log is taken of the average. */
dpt_status dpt_trainer_head_probabilities(dpt_trainer *t, int h, const dpt_dataset *set, size_t lo,
                                          size_t count, double *probs)
{
    if (set->n_features != dpt_shape_size(t->model.input))
        return DPT_FAIL(DPT_ERR_SHAPE, "evaluation data has %zu features, the model takes %zu",
                        set->n_features, dpt_shape_size(t->model.input));
    if (lo > set->n_samples || count > set->n_samples - lo)
        return DPT_FAIL(DPT_ERR_ARG, "samples [%zu, %zu) are outside the set of %zu", lo, lo + count,
                        set->n_samples);
    if (h < 0 || h >= t->model.n_heads)
        return DPT_FAIL(DPT_ERR_ARG, "head %d of a model with %d heads", h, t->model.n_heads);
    const dpt_head *head = &t->model.heads[h];
    int K = head->outputs;
    dpt_forward_ctx ctx = {.batch_stats = 0, .dropout = 0}; /* running statistics, no dropout */
    for (size_t done = 0; done < count;) {
        size_t chunk = count - done < (size_t)t->eval_batch ? count - done : (size_t)t->eval_batch;
        gather_range(t, set, lo + done, chunk);
        dpt_batch_metrics unused;
        memset(&unused, 0, sizeof unused);
        dpt_model_forward(&t->model, t->batch_x, t->batch_y, (int)chunk, &ctx, &unused);
        const dpt_real *out = dpt_model_head_output(&t->model, h);
        for (size_t i = 0; i < chunk; i++) {
            const dpt_real *z = out + i * (size_t)K;
            double *p = probs + (done + i) * (size_t)K, top, norm;
            row_norm(z, K, head->spec.loss, &top, &norm);
            for (int k = 0; k < K; k++) p[k] = class_probability(z[k], top, norm, head->spec.loss);
        }
        done += chunk;
    }
    return DPT_OK;
}
