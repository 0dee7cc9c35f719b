/* The data-parallel update: gradient reduction (blocking, bucketed and
 * overlapped, or reduce-scatter for sharded optimizer state), the agreed
 * non-finite guard, clipping, the optimizer step, per-layer statistics. */
#include "update.h"

#include "../core/vec.h"
#include "diagnose.h"
#include "dpt/watchdog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void inject_fault(dpt_trainer *t);

/* ---------------------------------------------------------------- setup */

/* Layers with parameters, last first: the order backward completes them.
 * Plans r's buckets over m->grads; comm may be NULL to plan only (the
 * planner makes no MPI call). segment_of_layer: NULL, or [m->n_layers]
 * filled with each layer's segment index or -1. */
static dpt_status plan_reducer(dpt_reducer *r, const dpt_comm *comm, const dpt_model *m,
                               double bucket_mb, int *segment_of_layer)
{
    size_t *begin = malloc(sizeof(size_t) * (size_t)m->n_layers);
    size_t *len = malloc(sizeof(size_t) * (size_t)m->n_layers);
    int *segment = malloc(sizeof(int) * (size_t)m->n_layers);
    if (!begin || !len || !segment) {
        free(begin), free(len), free(segment);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory planning gradient buckets");
    }
    /* the completion order: each head's layers from last to first, heads in
     * order, then the trunk from last to first (src/nn/forward.c) */
    int n = 0;
    for (int h = 0; h < m->n_heads; h++)
        for (int i = m->heads[h].first + m->heads[h].n - 1; i >= m->heads[h].first; i--)
            segment[n++] = i;
    for (int i = m->n_trunk - 1; i >= 0; i--) segment[n++] = i;
    int k = 0;
    for (int j = 0; j < n; j++) {
        const dpt_layer *l = &m->layers[segment[j]];
        if (l->n_weights + l->n_bias == 0) continue;
        begin[k] = l->param_offset;
        len[k] = l->n_weights + l->n_bias;
        segment[k++] = segment[j];
    }
    size_t bytes = (size_t)(bucket_mb * 1024 * 1024);
    dpt_status st = dpt_reducer_create(r, comm, m->grads, begin, len, k, bytes, bytes / 4);
    if (st == DPT_OK && segment_of_layer) {
        for (int i = 0; i < m->n_layers; i++) segment_of_layer[i] = -1;
        for (int j = 0; j < k; j++) segment_of_layer[segment[j]] = j;
    }
    free(begin), free(len), free(segment);
    return st;
}

dpt_status dpt_update_choose(const dpt_model *m, const dpt_config *cfg, int ranks, int *sharded,
                             int *overlapped)
{
    const int shard = cfg->update.shard_state, overlap = cfg->update.overlap;
    int over = ranks > 1 && overlap != DPT_OVERLAP_OFF && shard != DPT_SHARD_ON;
    if (over && overlap == DPT_OVERLAP_AUTO) {
        /* auto: the last bucket leaves only when backward is over, so it
         * cannot overlap anything; if it is most of the gradient (an MLP's
         * first layer) the blocking reduction, faster than Open MPI's
         * non-blocking allreduce, wins */
        dpt_reducer plan;
        dpt_status st = plan_reducer(&plan, NULL, m, cfg->update.bucket_mb, NULL);
        if (st != DPT_OK) return st;
        over = plan.n_buckets > 0 && 2 * plan.bucket_len[plan.n_buckets - 1] <= m->n_params;
        dpt_reducer_destroy(&plan);
    }
    /* auto: a blocking reduction on 2+ ranks is done as reduce-scatter +
     * all-gather of the parameters, the same bytes as a ring allreduce,
     * and each rank then updates only its 1/P of the parameters (the
     * optimizer pass is 7.5% of the default MLP's step on 2 ranks):
     * 56,300 vs 47,900 samples/s at 2 ranks (bench/blas_share.sh runs of
     * bench/hotpath.c, medians of 5 interleaved pairs) */
    *overlapped = over;
    *sharded = shard == DPT_SHARD_ON || (shard == DPT_SHARD_AUTO && ranks > 1 && !over);
    return DPT_OK;
}

#define SHARD_PIECE_ELEMS (1u << 20) /* 4 MiB of floats per reduce-scatter piece */

dpt_status dpt_update_setup(dpt_trainer *t)
{
    t->layer_stats = calloc((size_t)t->model.n_layers + 1, sizeof(dpt_layer_stat));
    t->layer_sums = calloc(3 * (size_t)t->model.n_layers + 1, sizeof(double));
    if (!t->layer_stats || !t->layer_sums)
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for layer statistics");
    dpt_status st = dpt_sharder_create(&t->sharder, &t->comm, t->model.n_params, SHARD_PIECE_ELEMS);
    if (st != DPT_OK) return st;
    t->slice_lo = t->sharder.lo;
    t->slice_n = t->sharder.len;
    if (t->cfg->log.layer_stats > 0 || t->cfg->diag.every > 0) {
        t->slice_buf = malloc(sizeof(dpt_real) * (t->slice_n ? t->slice_n : 1));
        if (!t->slice_buf) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for layer statistics");
    }
    st = dpt_update_choose(&t->model, t->cfg, t->comm.size, &t->sharded, &t->overlapped);
    if (st != DPT_OK) return st;
    t->last_bad_layer = -1;
    t->fault.step = -1;
    if (!t->overlapped) return DPT_OK;
    t->reducer_segment_of_layer = calloc((size_t)t->model.n_layers, sizeof(int));
    if (!t->reducer_segment_of_layer) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory");
    return plan_reducer(&t->reducer, &t->comm, &t->model, t->cfg->update.bucket_mb,
                        t->reducer_segment_of_layer);
}

/* Sharded on one node: parameters and gradients into the sharder's shared
 * window (dpt_sharder_share). Collective: after the ranks agreed that the
 * trainer was built everywhere. */
dpt_status dpt_update_share(dpt_trainer *t)
{
    if (!t->sharded || t->comm.size == 1 || !t->cfg->update.shared_window) return DPT_OK;
    return dpt_sharder_share(&t->sharder, &t->model.params, &t->model.grads);
}

void dpt_update_teardown(dpt_trainer *t)
{
    dpt_reducer_destroy(&t->reducer);
    dpt_sharder_unshare(&t->sharder, &t->model.params, &t->model.grads);
    dpt_sharder_destroy(&t->sharder);
    free(t->slice_buf), free(t->layer_stats), free(t->layer_sums), free(t->reducer_segment_of_layer);
    t->slice_buf = NULL;
    t->layer_stats = NULL;
    t->layer_sums = NULL;
    t->reducer_segment_of_layer = NULL;
}

void dpt_update_layer_done(int layer, void *user)
{
    dpt_trainer *t = user;
    if (t->fault.layer == layer) inject_fault(t); /* before its bucket leaves */
    const dpt_layer *l = &t->model.layers[layer];
    dpt_diagnose_local_norm(t, l->param_offset, l->n_weights + l->n_bias); /* ditto */
    /* a failing MPI call here cannot be agreed on mid-pass: abort */
    if (dpt_reducer_segment_done(&t->reducer, t->reducer_segment_of_layer[layer]) != DPT_OK)
        dpt_abort(&t->comm, 1);
}

void dpt_update_progress(void *user)
{
    dpt_trainer *t = user;
    dpt_reducer_progress(&t->reducer);
}

/* ---------------------------------------------------------------- checks */

/* The first layer with a NaN or Inf in [lo, lo + n) of values (the
 * gradient, or the parameters an update moved along it), or -1. Only
 * called once a step is known to be bad. */
static int first_nonfinite_layer(const dpt_model *m, const dpt_real *values, size_t lo, size_t n)
{
    for (size_t k = lo; k < lo + n; k++) {
        if (isfinite(values[k])) continue;
        for (int i = 0; i < m->n_layers; i++)
            if (k >= m->layers[i].param_offset &&
                k < m->layers[i].param_offset + m->layers[i].n_weights + m->layers[i].n_bias)
                return i;
    }
    return -1;
}

static void inject_fault(dpt_trainer *t)
{
    const dpt_fault *f = &t->fault;
    if (f->step != t->step || f->rank != t->comm.rank) return;
    if (f->layer < 0 || f->layer >= t->model.n_layers) return;
    const dpt_layer *l = &t->model.layers[f->layer];
    if (l->n_weights + l->n_bias > 0) t->model.grads[l->param_offset] = (dpt_real)NAN;
}

/* ---------------------------------------------------------------- reduction */

/* Sums the gradients over ranks into [lo, lo + n) of model->grads (the
 * whole vector unless sharded); counts waiting time as communication. */
static dpt_status reduce(dpt_trainer *t, size_t *lo, size_t *n)
{
    double begin = MPI_Wtime();
    dpt_status st;
    if (t->sharded && t->comm.size > 1) {
        st = dpt_sharder_reduce_scatter(&t->sharder, t->model.grads);
        *lo = t->slice_lo, *n = t->slice_n;
    } else {
        st = t->overlapped ? dpt_reducer_finish(&t->reducer)
                           : dpt_allreduce_sum_real(&t->comm, t->model.grads, t->model.n_params);
        *lo = 0, *n = t->model.n_params;
    }
    t->comm_seconds += MPI_Wtime() - begin;
    return st;
}

/* One agreed verdict from the reduced gradient: a NaN or Inf on any rank
 * survives the sum over ranks (NaN + x = NaN, Inf - Inf = NaN), so the
 * global norm, summed from the ranks' slices, is finite exactly when every
 * rank's gradient was. On a bad step *bad is the first layer with a
 * non-finite value over all ranks' slices; -1 when all is finite. The same
 * reduction carries each rank's |local mean gradient|^2 for the noise
 * scale: *local_sq_sum is their sum over ranks. The averaged gradient is
 * the reduced one times grad_scale (1 once scaled in place); slice_sumsq,
 * if not NULL, is its squared norm over this rank's slice, already summed
 * by the update's pass. A non-finite value is looked for in scanned: the
 * gradient, or, where the update has cleared it, the parameters it moved
 * (a NaN or Inf in g makes theta - eps g one too). */
static dpt_status agree_on_gradient(dpt_trainer *t, int *bad, double *local_sq_sum, dpt_real grad_scale,
                                    const double *slice_sumsq, const dpt_real *scanned)
{
    /* and whether any rank was asked to stop (dpt_request_stop) */
    /* and whether [checkpoint] every_seconds has passed on any rank (the
     * ranks' clocks differ: one verdict for all) */
    double every = t->cfg->checkpoint.every_seconds;
    const dpt_real *slice = t->model.grads + t->slice_lo;
    double sums[4] = {slice_sumsq ? *slice_sumsq : dpt_vec_sumsq_scaled(slice, t->slice_n, grad_scale),
                      local_sq_sum[0],
                      dpt_stop_requested() ? 1 : 0,
                      every > 0 && MPI_Wtime() - t->checkpoint_clock >= every ? 1 : 0};
    dpt_status st = dpt_allreduce_sum_acc(&t->comm, sums, 4);
    if (st != DPT_OK) return st;
    double sumsq = sums[0];
    *local_sq_sum = sums[1];
    t->stop_agreed = sums[2] > 0;
    t->checkpoint_due = sums[3] > 0;
    t->grad_norm = sqrt(sumsq);
    *bad = -1;
    if (isfinite(sumsq)) return DPT_OK;
    int mine = first_nonfinite_layer(&t->model, scanned, t->slice_lo, t->slice_n), first;
    if (mine < 0) mine = t->model.n_layers; /* only the norm overflowed */
    first = mine;
    if (t->comm.size > 1 && MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "MPI_Allreduce of the non-finite layer failed");
    *bad = first;
    return DPT_OK;
}

static dpt_status nonfinite(dpt_trainer *t, int bad)
{
    char where[160] = "its norm overflowed";
    if (bad < t->model.n_layers) {
        char spec[120];
        dpt_layer_list_format(&t->model.layers[bad].spec, 1, spec, sizeof spec);
        snprintf(where, sizeof where, "first in layer %d (%s)", bad + 1, spec);
    }
    t->last_skipped = 1;
    t->last_bad_layer = bad < t->model.n_layers ? bad : -1;
    if (t->cfg->update.nonfinite == DPT_NONFINITE_ABORT)
        return DPT_FAIL(DPT_ERR_NUMERIC, "step %ld: the gradient is not finite (%s); "
                        "[optim] nonfinite = skip would skip such steps", t->step + 1, where);
    t->skipped_steps++;
    return DPT_OK;
}

/* ---------------------------------------------------------------- clipping and stats */

static void clip(dpt_trainer *t, dpt_real *g, size_t n)
{
    double max_norm = t->cfg->update.clip_norm, max_value = t->cfg->update.clip_value;
    if (max_norm > 0 && t->grad_norm > max_norm) { /* Goodfellow et al. eq. 10.48 */
        const dpt_real scale = (dpt_real)(max_norm / t->grad_norm);
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    if (max_value > 0) {
        const dpt_real c = (dpt_real)max_value;
        for (size_t i = 0; i < n; i++) g[i] = g[i] > c ? c : g[i] < -c ? -c : g[i];
    }
}

static int stats_due(const dpt_trainer *t)
{
    int every = t->cfg->log.layer_stats;
    return (every > 0 && (t->step + 1) % every == 0) || dpt_diagnose_due(t);
}

/* Per-layer sums over this rank's slice, reduced: |g|^2, |w|^2, |dw|^2. */
static dpt_status layer_stats(dpt_trainer *t, const dpt_real *before)
{
    const dpt_model *m = &t->model;
    size_t lo = t->slice_lo, hi = lo + t->slice_n;
    double *sums = t->layer_sums;
    memset(sums, 0, sizeof(double) * 3 * (size_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const dpt_layer *l = &m->layers[i];
        size_t a = l->param_offset, b = a + l->n_weights + l->n_bias;
        for (size_t k = a > lo ? a : lo; k < (b < hi ? b : hi); k++) {
            double g = m->grads[k], w = m->params[k], dw = w - before[k - lo];
            sums[3 * i] += g * g, sums[3 * i + 1] += w * w, sums[3 * i + 2] += dw * dw;
        }
    }
    dpt_status st = dpt_allreduce_sum_acc(&t->comm, sums, 3 * m->n_layers);
    for (int i = 0; st == DPT_OK && i < m->n_layers; i++) {
        dpt_layer_stat *s = &t->layer_stats[i];
        s->grad_norm = sqrt(sums[3 * i]);
        s->weight_norm = sqrt(sums[3 * i + 1]);
        s->update_ratio = s->weight_norm > 0 ? sqrt(sums[3 * i + 2]) / s->weight_norm : 0;
    }
    t->stats_ready = st == DPT_OK;
    return st;
}

/* ---------------------------------------------------------------- the update */

/* The verdict on the reduced gradient (agree_on_gradient; a non-finite one
 * fails the step or marks it skipped in t->last_skipped) and the noise
 * scale's update from its norm. */
static dpt_status check_gradient(dpt_trainer *t, double local_sq, dpt_real grad_scale,
                                 const double *slice_sumsq, const dpt_real *scanned, size_t global_count)
{
    int bad;
    dpt_status st = agree_on_gradient(t, &bad, &local_sq, grad_scale, slice_sumsq, scanned);
    if (st != DPT_OK) return st;
    if (bad >= 0) return nonfinite(t, bad);
    dpt_diagnose_noise(t, local_sq, t->grad_norm * t->grad_norm, global_count);
    return DPT_OK;
}

/* Sharded: every rank's updated slice to every rank. */
static dpt_status gather_params(dpt_trainer *t)
{
    if (!t->sharded || t->comm.size == 1) return DPT_OK;
    return dpt_sharder_allgather(&t->sharder, t->model.params);
}

/* The update when nothing reads the averaged gradient before it (no
 * clipping, layer statistics or diagnostics) and a non-finite gradient
 * ends the run: the optimizer's pass also sums the squared norm, and the
 * verdict on it comes after the update instead of before, which spares a
 * read of the whole gradient slice per step. A non-finite gradient then
 * reaches this rank's parameters before the run stops with
 * DPT_ERR_NUMERIC, with the same message; nothing is saved after that
 * error, and the parameters are not all-gathered. */
static dpt_status update_then_check(dpt_trainer *t, size_t lo, size_t n, dpt_real grad_scale, double local_sq,
                                    size_t global_count)
{
    dpt_model *m = &t->model;
    double slice_sumsq;
    /* the norm is summed over the ranks' slices: the update's own range is
     * that slice when sharded or alone; a replicated update on several
     * ranks covers every slice and sums its own after the update */
    double *summed = lo == t->slice_lo && n == t->slice_n ? &slice_sumsq : NULL;
    /* with its norm summed in the pass, the pass also clears the gradient
     * for the next step (dpt_trainer_step zeroes only the rest) */
    dpt_status st;
    if (summed) {
        t->last_lr = dpt_optimizer_step_clear(&t->opt, m->params + lo, m->grads + lo, grad_scale, summed);
        st = check_gradient(t, local_sq, grad_scale, summed, m->params, global_count);
        t->clear_lo = lo, t->clear_n = n;
    } else {
        t->last_lr = dpt_optimizer_step_sumsq(&t->opt, m->params + lo, m->grads + lo, grad_scale, NULL);
        st = check_gradient(t, local_sq, grad_scale, NULL, m->grads, global_count);
    }
    return st == DPT_OK ? gather_params(t) : st;
}

dpt_status dpt_update_apply(dpt_trainer *t, size_t global_count)
{
    dpt_model *m = &t->model;
    t->last_skipped = 0;
    t->clear_n = 0;
    t->stats_ready = 0;
    t->diag_ready = 0;
    if (!t->overlapped) { /* overlapped: from the layer_done hook */
        inject_fault(t);
        dpt_diagnose_local_norm(t, 0, m->n_params);
    }
    double local_sq = dpt_diagnose_local_sq(t);
    size_t lo, n;
    dpt_watchdog_phase("the gradient reduction", t->step + 1);
    dpt_status st = reduce(t, &lo, &n);
    if (st != DPT_OK) return st;
    /* gradient of the mean loss = (sum over ranks of the local sums) / global
     * count. Written back only for what reads the average itself (clipping,
     * statistics, diagnostics); otherwise the norm and the optimizer apply
     * the factor as they read the sum, which spares a read and a write of
     * the whole gradient. Either way every element is rounded alike. */
    const dpt_real inv_count = (dpt_real)(1.0 / (double)global_count);
    int diagnose = dpt_diagnose_due(t), stats = stats_due(t);
    dpt_real grad_scale = inv_count;
    if (diagnose || stats || t->cfg->update.clip_norm > 0 || t->cfg->update.clip_value > 0) {
        for (size_t i = lo; i < lo + n; i++) m->grads[i] *= inv_count;
        grad_scale = 1;
    } else if (t->cfg->update.nonfinite == DPT_NONFINITE_ABORT) {
        return update_then_check(t, lo, n, grad_scale, local_sq, global_count);
    }
    st = check_gradient(t, local_sq, grad_scale, NULL, m->grads, global_count);
    if (st != DPT_OK || t->last_skipped) return st;
    if (diagnose) { /* before clipping and the update: the gradient and point the step starts from */
        st = dpt_diagnose_curvature(t, lo, n, global_count);
        if (st != DPT_OK) return st;
    }
    clip(t, m->grads + lo, n);
    if (stats) memcpy(t->slice_buf, m->params + t->slice_lo, sizeof(dpt_real) * t->slice_n);
    t->last_lr = dpt_optimizer_step_scaled(&t->opt, m->params + lo, m->grads + lo, grad_scale);
    st = gather_params(t);
    if (st != DPT_OK) return st;
    t->diag_ready = diagnose;
    return stats ? layer_stats(t, t->slice_buf) : DPT_OK;
}
