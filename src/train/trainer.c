/* The data-parallel step and parallel evaluation. */
#include "dpt/train.h"

#include <stdlib.h>
#include <string.h>

#include "dpt/rng.h"

static dpt_status check_shapes(const dpt_config *cfg, const dpt_dataset *set)
{
    int outputs = cfg->model.layers[cfg->model.n_layers - 1].units;
    if (set->n_classes > outputs)
        return DPT_FAIL(DPT_ERR_SHAPE, "the training labels go up to %d but [model] layers ends "
                        "in %d outputs; make the last layer %d wide", set->n_classes - 1, outputs,
                        set->n_classes);
    if (set->n_features > (size_t)1 << 30)
        return DPT_FAIL(DPT_ERR_SHAPE, "%zu features per sample is more than supported",
                        set->n_features);
    return DPT_OK;
}

static long count_total_steps(const dpt_config *cfg, const dpt_batch_plan *plan)
{
    long total = (long)cfg->train.epochs * (long)plan->steps_per_epoch;
    if (cfg->train.max_steps > 0 && cfg->train.max_steps < total) total = cfg->train.max_steps;
    return total;
}

static dpt_status create_local(dpt_trainer *t, const dpt_config *cfg, const dpt_dataset *train_set)
{
    dpt_status st = check_shapes(cfg, train_set);
    if (st != DPT_OK) return st;
    st = dpt_batch_plan_init(&t->plan, train_set->n_samples, (size_t)cfg->train.batch_size,
                             cfg->train.drop_last, t->comm.rank, t->comm.size);
    if (st != DPT_OK) return st;
    t->total_steps = count_total_steps(cfg, &t->plan);
    /* evaluation runs in larger chunks than training: forward only, no
     * gradient, so bigger GEMMs are cheaper per sample */
    t->eval_batch = cfg->train.batch_size > 256 ? cfg->train.batch_size : 256;
    st = dpt_model_create(&t->model, (int)train_set->n_features, cfg->model.layers,
                          cfg->model.n_layers, cfg->model.loss, t->eval_batch);
    if (st != DPT_OK) return st;
    dpt_model_init_params(&t->model, cfg->model.init, cfg->train.seed);
    dpt_optim_params optim = cfg->optim;
    if (optim.decay_steps == 0) optim.decay_steps = t->total_steps;
    st = dpt_optimizer_create(&t->opt, &optim, t->model.n_params);
    if (st != DPT_OK) return st;
    t->perm = malloc(sizeof(uint32_t) * train_set->n_samples);
    t->batch_x = malloc(sizeof(dpt_real) * (size_t)t->eval_batch * train_set->n_features);
    t->batch_y = malloc((size_t)t->eval_batch);
    t->eval_index = malloc(sizeof(uint32_t) * (size_t)t->eval_batch);
    if (!t->perm || !t->batch_x || !t->batch_y || !t->eval_index)
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
    if (agreed == DPT_OK)
        agreed = dpt_check_replicas(&t->comm, t->model.params,
                                    sizeof(dpt_real) * t->model.n_params, NULL);
    if (agreed != DPT_OK) dpt_trainer_destroy(t);
    return agreed;
}

void dpt_trainer_destroy(dpt_trainer *t)
{
    dpt_model_destroy(&t->model);
    dpt_optimizer_destroy(&t->opt);
    free(t->perm);
    free(t->batch_x);
    free(t->batch_y);
    free(t->eval_index);
    t->eval_index = NULL;
    t->perm = NULL;
    t->batch_x = NULL;
    t->batch_y = NULL;
}

static void start_epoch(dpt_trainer *t)
{
    /* the same permutation on every rank: keyed by seed and epoch, not rank */
    dpt_rng rng;
    dpt_rng_init(&rng, t->cfg->train.seed, DPT_STREAM_SHUFFLE, 0, (uint64_t)t->epoch);
    dpt_rng_permutation(&rng, t->perm, (uint32_t)t->train_set->n_samples);
    t->epoch_sums[0] = t->epoch_sums[1] = t->epoch_sums[2] = 0;
}

dpt_status dpt_trainer_step(dpt_trainer *t)
{
    if (t->epoch_step == 0) start_epoch(t);
    size_t begin, count, global_count;
    dpt_batch_slice(&t->plan, t->epoch_step, &begin, &count, &global_count);
    dpt_model *model = &t->model;
    memset(model->grads, 0, sizeof(dpt_real) * model->n_params);
    if (count > 0) {
        long correct = 0;
        dpt_dataset_gather(t->train_set, t->perm + begin, count, t->batch_x, t->batch_y);
        double loss = dpt_model_forward_backward(model, t->batch_x, t->batch_y, (int)count, &correct);
        double sums[3] = {loss, (double)correct, (double)count};
        for (int i = 0; i < 3; i++) {
            t->window[i] += sums[i];
            t->epoch_sums[i] += sums[i];
        }
    }
    /* gradient of the mean loss over the global batch = (sum over ranks of
     * the local sums) / global count: exactly what one process would get */
    dpt_status st = dpt_allreduce_sum_real(&t->comm, model->grads, model->n_params);
    if (st != DPT_OK) return st;
    const dpt_real inv_count = (dpt_real)(1.0 / (double)global_count);
    for (size_t i = 0; i < model->n_params; i++) model->grads[i] *= inv_count;
    t->last_lr = dpt_optimizer_step(&t->opt, model->params, model->grads);
    t->step++;
    t->samples_seen += (double)global_count;
    if (++t->epoch_step == t->plan.steps_per_epoch) {
        t->epoch_step = 0;
        t->epoch++;
    }
    return DPT_OK;
}

dpt_status dpt_trainer_reduce_window(dpt_trainer *t, double window[3], dpt_eval *out)
{
    double sums[3] = {window[0], window[1], window[2]};
    dpt_status st = dpt_allreduce_sum_acc(&t->comm, sums, 3);
    if (st != DPT_OK) return st;
    out->samples = (long)sums[2];
    out->loss = sums[2] > 0 ? sums[0] / sums[2] : 0;
    out->accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0;
    window[0] = window[1] = window[2] = 0;
    return DPT_OK;
}

dpt_status dpt_trainer_evaluate(dpt_trainer *t, const dpt_dataset *set, dpt_eval *out)
{
    if (set->n_features != (size_t)t->model.in_dim)
        return DPT_FAIL(DPT_ERR_SHAPE, "evaluation data has %zu features, the model takes %d",
                        set->n_features, t->model.in_dim);
    size_t begin, count;
    dpt_split_range(set->n_samples, t->comm.size, t->comm.rank, &begin, &count);
    double sums[3] = {0, 0, (double)count};
    for (size_t done = 0; done < count;) {
        size_t chunk = count - done < (size_t)t->eval_batch ? count - done : (size_t)t->eval_batch;
        for (size_t i = 0; i < chunk; i++) t->eval_index[i] = (uint32_t)(begin + done + i);
        dpt_dataset_gather(set, t->eval_index, chunk, t->batch_x, t->batch_y);
        long correct = 0;
        sums[0] += dpt_model_evaluate(&t->model, t->batch_x, t->batch_y, (int)chunk, &correct);
        sums[1] += (double)correct;
        done += chunk;
    }
    return dpt_trainer_reduce_window(t, sums, out);
}
