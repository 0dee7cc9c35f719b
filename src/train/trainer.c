/* The data-parallel step and parallel evaluation. */
#include "dpt/train.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpt/rng.h"
#include "dpt/watchdog.h"
#include "diagnose.h"
#include "update.h"

/* Every data label must have a head label inside the head's output width. */
static dpt_status check_labels(const dpt_model *m, const dpt_dataset *set)
{
    int seen[DPT_LABELS] = {0};
    for (size_t i = 0; i < set->n_samples; i++) seen[set->labels[i]] = 1;
    for (int h = 0; h < m->n_heads; h++) {
        const dpt_head *head = &m->heads[h];
        int binary = head->spec.loss == DPT_LOSS_SIGMOID_BCE && head->outputs == 1;
        int limit = binary ? 2 : head->outputs, largest = -1;
        for (int y = 0; y < DPT_LABELS; y++) {
            if (!seen[y]) continue;
            int k = dpt_model_head_label(m, h, y);
            if (k < 0)
                return DPT_FAIL(DPT_ERR_SHAPE, "data label %d is in no group of [head.%s] labels",
                                y, head->spec.name);
            if (k > largest) largest = k;
        }
        if (largest >= limit)
            return DPT_FAIL(DPT_ERR_SHAPE, "the training labels go up to %d but head '%s' ends "
                            "in %d outputs; make its last layer %d wide", largest, head->spec.name,
                            head->outputs, largest + 1);
    }
    return DPT_OK;
}

static long count_total_steps(const dpt_config *cfg, const dpt_batch_plan *plan)
{
    long total = (long)cfg->train.epochs * (long)plan->steps_per_epoch;
    if (cfg->train.max_steps > 0 && cfg->train.max_steps < total) total = cfg->train.max_steps;
    return total;
}

static dpt_status create_model(dpt_trainer *t, const dpt_config *cfg, const dpt_dataset *set)
{
    dpt_shape input = {set->shape[0], set->shape[1], set->shape[2]};
    dpt_status st = dpt_model_create(&t->model, input, &cfg->model.spec, t->eval_batch);
    if (st == DPT_OK) st = check_labels(&t->model, set);
    if (st != DPT_OK) return st;
    long counts[DPT_LABELS] = {0};
    for (size_t i = 0; i < set->n_samples; i++) counts[set->labels[i]]++;
    for (int i = 0; i < t->model.n_layers; i++)
        if (t->model.layers[i].spec.kind == DPT_LAYER_BATCHNORM && !t->model.layers[i].spec.sync)
            t->bn_unsynced = 1;
    return dpt_model_init_params(&t->model, cfg->train.seed, counts);
}

static dpt_status create_local(dpt_trainer *t, const dpt_config *cfg, const dpt_dataset *train_set)
{
    dpt_status st = dpt_batch_plan_init(&t->plan, train_set->n_samples, (size_t)cfg->train.batch_size,
                                        cfg->train.drop_last, t->comm.rank, t->comm.size);
    if (st != DPT_OK) return st;
    t->total_steps = count_total_steps(cfg, &t->plan);
    /* evaluation runs in larger chunks than training: forward only, no
     * gradient, so bigger GEMMs are cheaper per sample */
    t->eval_batch = cfg->train.batch_size > 256 ? cfg->train.batch_size : 256;
    st = create_model(t, cfg, train_set);
    if (st == DPT_OK) st = dpt_update_setup(t);
    if (st == DPT_OK) st = dpt_diagnose_setup(t);
    if (st != DPT_OK) return st;
    dpt_optim_params optim = cfg->optim;
    if (optim.decay_steps == 0) optim.decay_steps = t->total_steps - optim.warmup_steps;
    if (optim.decay_steps < 1) optim.decay_steps = 1;
    if (cfg->update.lr_scaling) { /* Goyal et al. 2017: lr proportional to the global batch */
        double scale = (double)t->plan.global_batch / cfg->update.reference_batch;
        optim.lr *= scale;
        optim.lr_final *= scale;
    }
    /* second-order methods run through src/solve (dpt_trainer_solve) */
    if (!dpt_optim_is_second_order(optim.method)) {
        st = dpt_optimizer_create(&t->opt, &optim, t->sharded ? t->slice_n : t->model.n_params);
        if (st != DPT_OK) return st;
    }
    size_t outputs = 0;
    for (int h = 0; h < t->model.n_heads; h++) outputs += (size_t)t->model.heads[h].outputs;
    t->perm = malloc(sizeof(uint32_t) * train_set->n_samples);
    t->batch_x = malloc(sizeof(dpt_real) * (size_t)t->eval_batch * train_set->n_features);
    t->batch_y = malloc((size_t)t->eval_batch);
    t->eval_index = malloc(sizeof(uint32_t) * (size_t)t->eval_batch);
    t->mc_probs = malloc(sizeof(dpt_real) * (size_t)t->eval_batch * outputs);
    if (!t->perm || !t->batch_x || !t->batch_y || !t->eval_index || !t->mc_probs)
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for batch buffers");
    return DPT_OK;
}

dpt_status dpt_trainer_create(dpt_trainer *t, const dpt_config *cfg, MPI_Comm comm,
                              const dpt_dataset *train_set)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->train_set = train_set;
    dpt_status st = dpt_comm_wrap(&t->comm, comm);
    if (st != DPT_OK) return st;
    st = create_local(t, cfg, train_set);
    /* agree before the first collective on parameters, so that a failure on
     * one rank (say, out of memory) stops all of them instead of hanging */
    dpt_status agreed = dpt_agree_status(&t->comm, st, NULL);
    /* every rank initialized from the same seed; rank 0's values are sent
     * anyway, since LAPACK (orthogonal init) may round differently on
     * nodes with different CPUs. The hash then proves the replicas equal. */
    if (agreed == DPT_OK) agreed = dpt_broadcast_real(&t->comm, t->model.params, t->model.n_params);
    if (agreed == DPT_OK) agreed = dpt_broadcast_real(&t->comm, t->model.state, t->model.n_state);
    if (agreed == DPT_OK)
        agreed = dpt_check_replicas(&t->comm, t->model.params,
                                    sizeof(dpt_real) * t->model.n_params, NULL);
    if (agreed == DPT_OK) agreed = dpt_agree_status(&t->comm, dpt_update_share(t), NULL);
    if (agreed != DPT_OK) dpt_trainer_destroy(t);
    return agreed;
}

void dpt_trainer_destroy(dpt_trainer *t)
{
    dpt_diagnose_teardown(t);
    dpt_update_teardown(t);
    dpt_model_destroy(&t->model);
    dpt_optimizer_destroy(&t->opt);
    void *buffers[] = {t->perm, t->batch_x, t->batch_y, t->eval_index, t->mc_probs};
    /* (the update's buffers went with dpt_update_teardown) */
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(buffers[i]);
    t->perm = NULL;
    t->batch_x = NULL;
    t->batch_y = NULL;
    t->eval_index = NULL;
    t->mc_probs = NULL;
}

/* Synchronized batch norm: the model's sums go through this allreduce. A
 * failure here cannot be agreed on (the ranks are mid-pass): abort. */
static void reduce_over_ranks(double *sums, int n, void *user)
{
    const dpt_comm *comm = user;
    if (dpt_allreduce_sum_acc(comm, sums, n) != DPT_OK) dpt_abort(comm, 1);
}

static dpt_forward_ctx forward_ctx(dpt_trainer *t, int training)
{
    dpt_forward_ctx ctx = {.batch_stats = training, .dropout = training,
                           .seed = t->cfg->train.seed, .rank = (uint32_t)t->comm.rank,
                           .pass = (uint64_t)t->step, .reduce = reduce_over_ranks,
                           .reduce_user = &t->comm};
    if (training && t->overlapped) {
        ctx.layer_done = dpt_update_layer_done;
        ctx.progress = dpt_update_progress;
        ctx.layer_done_user = t;
    }
    return ctx;
}

static void start_epoch(dpt_trainer *t)
{
    /* the same permutation on every rank: keyed by seed and epoch, not rank */
    dpt_rng rng;
    dpt_rng_init(&rng, t->cfg->train.seed, DPT_STREAM_SHUFFLE, 0, (uint64_t)t->epoch);
    dpt_rng_permutation(&rng, t->perm, (uint32_t)t->train_set->n_samples);
    /* bagging: a permutation of the resample's positions, mapped to samples */
    if (t->sample_map)
        for (size_t i = 0; i < t->train_set->n_samples; i++) t->perm[i] = t->sample_map[t->perm[i]];
    memset(t->epoch_sums, 0, sizeof t->epoch_sums);
}

void dpt_trainer_seek(dpt_trainer *t, long step, long epoch, size_t epoch_step)
{
    t->step = step;
    t->epoch = epoch;
    t->epoch_step = epoch_step < t->plan.steps_per_epoch ? epoch_step : 0;
    if (epoch_step >= t->plan.steps_per_epoch) t->epoch++;
    if (t->epoch_step > 0) start_epoch(t); /* else the next step starts the epoch */
}

static void add_metrics(double *sums, const dpt_batch_metrics *m, int n_heads, size_t count)
{
    sums[0] += m->total;
    sums[1] += (double)count;
    for (int h = 0; h < n_heads; h++) {
        sums[DPT_SUM_LOSS(h)] += m->loss[h];
        sums[DPT_SUM_HITS(h)] += (double)m->correct[h];
    }
}

/* Test faults (dpt_fault): a stalled rank before the reduction, a
 * corrupted replica after the update. */
static void inject_stall(const dpt_trainer *t)
{
    const dpt_fault *f = &t->fault;
    if (f->signal_step == t->step + 1 && f->signal_rank == t->comm.rank) raise(f->signal_number);
    if (f->stall_step != t->step + 1 || f->stall_rank != t->comm.rank) return;
    struct timespec pause = {(time_t)f->stall_seconds,
                             (long)((f->stall_seconds - (double)(time_t)f->stall_seconds) * 1e9)};
    while (nanosleep(&pause, &pause) != 0) continue;
}

static void inject_corruption(dpt_trainer *t)
{
    const dpt_fault *f = &t->fault;
    if (f->corrupt_step == t->step + 1 && f->corrupt_rank == t->comm.rank && t->model.n_params > 0)
        t->model.params[0] += (dpt_real)1;
}

/* Every [reliability] replica_check steps: the parameters' hash, compared
 * over ranks. A difference (a bit flip, a bug that broke the identical
 * update) stops every rank with the step named. */
static dpt_status check_replicas(dpt_trainer *t)
{
    long every = t->cfg->reliability.replica_check;
    if (every <= 0 || t->step % every != 0) return DPT_OK;
    dpt_watchdog_phase("the replica check", t->step);
    dpt_status st = dpt_check_replicas(&t->comm, t->model.params, sizeof(dpt_real) * t->model.n_params, NULL);
    if (st == DPT_ERR_DIVERGED) { /* every rank sees the same MIN and MAX: agreed */
        t->agreed_failure = 1;
        char why[512];
        snprintf(why, sizeof why, "%s", dpt_error_message());
        return DPT_FAIL(DPT_ERR_DIVERGED, "step %ld: replica check failed: %s", t->step, why);
    }
    return st;
}

/* The gradient to zero for backward to accumulate into, except what the
 * last update cleared in its own pass (t->clear_lo, t->clear_n). */
static void clear_gradient(dpt_trainer *t)
{
    dpt_real *g = t->model.grads;
    size_t n = t->model.n_params, lo = t->clear_n ? t->clear_lo : n, hi = t->clear_n ? lo + t->clear_n : n;
    memset(g, 0, sizeof(dpt_real) * lo);
    memset(g + hi, 0, sizeof(dpt_real) * (n - hi));
    t->clear_n = 0;
}

dpt_status dpt_trainer_step(dpt_trainer *t)
{
    if (t->epoch_step == 0) start_epoch(t);
    size_t begin, count, global_count;
    dpt_batch_slice(&t->plan, t->epoch_step, &begin, &count, &global_count);
    dpt_model *model = &t->model;
    clear_gradient(t);
    /* a rank with no samples in a ragged last batch still runs the pass:
     * synchronized batch norm makes collective calls inside it */
    dpt_batch_metrics metrics;
    memset(&metrics, 0, sizeof metrics);
    dpt_dataset_gather(t->train_set, t->perm + begin, count, t->batch_x, t->batch_y);
    t->local_count = count;
    dpt_diagnose_begin_step(t);
    dpt_forward_ctx ctx = forward_ctx(t, 1);
    if (t->overlapped) dpt_reducer_begin(&t->reducer);
    dpt_model_forward_backward(model, t->batch_x, t->batch_y, (int)count, &ctx, &metrics);
    add_metrics(t->window, &metrics, model->n_heads, count);
    add_metrics(t->epoch_sums, &metrics, model->n_heads, count);
    inject_stall(t);
    dpt_status st = dpt_update_apply(t, global_count);
    if (st != DPT_OK) return st;
    inject_corruption(t);
    t->step++;
    t->samples_seen += (double)global_count;
    if (++t->epoch_step == t->plan.steps_per_epoch) {
        t->epoch_step = 0;
        t->epoch++;
    }
    return check_replicas(t);
}

dpt_status dpt_trainer_reduce_window(dpt_trainer *t, double window[DPT_SUMS], dpt_eval *out)
{
    double sums[DPT_SUMS];
    memcpy(sums, window, sizeof sums);
    dpt_status st = dpt_allreduce_sum_acc(&t->comm, sums, DPT_SUMS);
    if (st != DPT_OK) return st;
    memset(out, 0, sizeof *out);
    double n = sums[1];
    out->samples = (long)n;
    out->n_heads = t->model.n_heads;
    out->loss = n > 0 ? sums[0] / n : 0;
    for (int h = 0; h < t->model.n_heads; h++) {
        out->head_loss[h] = n > 0 ? sums[DPT_SUM_LOSS(h)] / n : 0;
        out->head_accuracy[h] = n > 0 ? sums[DPT_SUM_HITS(h)] / n : 0;
    }
    out->accuracy = out->head_accuracy[0];
    memset(window, 0, sizeof(double) * DPT_SUMS);
    return DPT_OK;
}
