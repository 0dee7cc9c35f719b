/* What a dptrain checkpoint holds, and how a run continues from one
 * (dpt/train.h; the file format is dpt/checkpoint.h).
 *
 * Tensors: "params" and "bn_state" (batch-norm running statistics) as the
 * model holds them; "optim.first" and "optim.second" (the optimizer's
 * moments over the whole parameter vector, gathered from the ranks' slices
 * when the state is sharded, so that any rank count can resume). Metadata:
 * the position (step, epoch, epoch_step, epoch_sample: where in the epoch's
 * permutation), counters, the seed, the precision, the rank count and
 * batch sizes, the model's description, the resolved configuration and its
 * hash. The random streams are counter-based (dpt/rng.h): the shuffle is
 * keyed by (seed, epoch), dropout by (seed, rank, step, layer), so seed,
 * step and epoch are their whole state. Rank 0 writes the file; every
 * outcome is agreed over ranks. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/checkpoint.h"
#include "dpt/train.h"
#include "dpt/watchdog.h"

#define FORMAT_NAME "dptrain-checkpoint-1"

/* The model's identity: its layers, heads and parameter count, so that a
 * checkpoint of another model is refused by name, not by a size clash. */
static void describe_model(const dpt_trainer *t, char *out, size_t size)
{
    const dpt_model_spec *spec = &t->cfg->model.spec;
    char layers[2048];
    dpt_layer_list_format(spec->trunk, spec->n_trunk, layers, sizeof layers);
    int used = snprintf(out, size, "%zu parameters; %dx%dx%d input; trunk: %s", t->model.n_params,
                        t->model.input.c, t->model.input.h, t->model.input.w, layers);
    for (int h = 0; h < t->model.n_heads && used > 0 && (size_t)used < size; h++) {
        const dpt_head *head = &t->model.heads[h];
        dpt_layer_list_format(spec->n_heads ? spec->heads[h].layers : NULL,
                              spec->n_heads ? spec->heads[h].n_layers : 0, layers, sizeof layers);
        used += snprintf(out + used, size - (size_t)used, "; head %s: %s (%d outputs)", head->spec.name,
                         layers, head->outputs);
    }
}

/* The resolved configuration as text (malloc'd), or NULL. */
static char *config_text(const dpt_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return NULL;
    dpt_config_write(cfg, out);
    fclose(out);
    return text;
}

/* The optimizer moment `which` (0 first, 1 second) over the whole vector
 * on rank 0: its own when replicated, else gathered from the slices.
 * *full is NULL when the method has no such moment. Collective. */
static dpt_status gather_moment(dpt_trainer *t, int which, dpt_real **full)
{
    const dpt_real *mine = which == 0 ? t->opt.first : t->opt.second;
    *full = NULL;
    if (!mine) return DPT_OK;
    if (!t->sharded || t->comm.size == 1) {
        *full = (dpt_real *)mine;
        return DPT_OK;
    }
    size_t n = t->model.n_params;
    int ranks = t->comm.size, count = (int)t->slice_n, lo = (int)t->slice_lo;
    int *counts = malloc(sizeof(int) * (size_t)ranks), *displs = malloc(sizeof(int) * (size_t)ranks);
    dpt_real *buf = t->comm.rank == 0 ? malloc(sizeof(dpt_real) * (n ? n : 1)) : NULL;
    int ok = counts && displs && (t->comm.rank != 0 || buf) && n <= (size_t)INT32_MAX;
    dpt_status st = dpt_agree_status(&t->comm, ok ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM,
                                     "out of memory gathering the optimizer state"), NULL);
    if (st == DPT_OK &&
        (MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, t->comm.comm) != MPI_SUCCESS ||
         MPI_Gather(&lo, 1, MPI_INT, displs, 1, MPI_INT, 0, t->comm.comm) != MPI_SUCCESS ||
         MPI_Gatherv(mine, count, DPT_MPI_REAL, buf, counts, displs, DPT_MPI_REAL, 0, t->comm.comm) !=
             MPI_SUCCESS))
        st = DPT_FAIL(DPT_ERR_MPI, "gathering the sharded optimizer state failed");
    free(counts), free(displs);
    if (st != DPT_OK) free(buf);
    else *full = buf;
    return st;
}

static dpt_status add_scalars(dpt_ckpt_writer *w, const dpt_trainer *t, const char *reason)
{
    const struct { const char *key; int64_t value; } ints[] = {
        {"step", t->step}, {"epoch", t->epoch}, {"epoch_step", (int64_t)t->epoch_step},
        {"epoch_sample", (int64_t)(t->epoch_step * t->plan.global_batch)},
        {"skipped_steps", t->skipped_steps}, {"optim_step", t->opt.step},
        {"ranks", t->comm.size}, {"global_batch", (int64_t)t->plan.global_batch},
        {"local_batch", t->cfg->train.batch_size}, {"n_params", (int64_t)t->model.n_params},
        {"n_state", (int64_t)t->model.n_state}};
    dpt_status st = DPT_OK;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && st == DPT_OK; i++)
        st = dpt_ckpt_add_meta_int(w, ints[i].key, ints[i].value);
    char text[64];
    snprintf(text, sizeof text, "%" PRIu64, t->cfg->train.seed);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "seed", text);
    snprintf(text, sizeof text, "%.17g", t->samples_seen);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "samples_seen", text);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "format", FORMAT_NAME);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "precision", DPT_REAL_NAME);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "reason", reason);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(w, "optimizer", dpt_optim_method_name(t->cfg->optim.method));
    if (st == DPT_OK)
        st = dpt_ckpt_add_meta(w, "rng", "Philox4x32-10 streams keyed by (seed, stream, rank, step or "
                               "epoch): seed, step and epoch are their state");
    return st;
}

/* Batch norm without synchronization keeps statistics per rank: rank 0
 * receives them all ([ranks][n_state]), so that the same rank count
 * resumes each rank's own. NULL when the statistics are shared. */
static dpt_status gather_bn_state(dpt_trainer *t, dpt_real **all)
{
    *all = NULL;
    size_t ns = t->model.n_state;
    if (!t->bn_unsynced || t->comm.size == 1 || ns == 0) return DPT_OK;
    int ok = ns <= (size_t)INT32_MAX;
    if (ok && t->comm.rank == 0) ok = (*all = malloc(sizeof(dpt_real) * ns * (size_t)t->comm.size)) != NULL;
    dpt_status st = dpt_agree_status(&t->comm, ok ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM,
                                     "out of memory gathering batch-norm statistics"), NULL);
    if (st == DPT_OK && MPI_Gather(t->model.state, (int)ns, DPT_MPI_REAL, *all, (int)ns, DPT_MPI_REAL, 0,
                                   t->comm.comm) != MPI_SUCCESS)
        st = DPT_FAIL(DPT_ERR_MPI, "gathering the batch-norm statistics failed");
    if (st != DPT_OK) free(*all), *all = NULL;
    return st;
}

/* Rank 0: the file, from the model and the gathered moments. */
static dpt_status write_file(dpt_trainer *t, const char *reason, dpt_real *first, dpt_real *second,
                             const dpt_real *bn_all, char *path, size_t path_size)
{
    dpt_ckpt_writer w;
    dpt_ckpt_writer_init(&w);
    size_t n[1] = {t->model.n_params}, ns[1] = {t->model.n_state};
    char model[4096], hash[17];
    char *config = config_text(t->cfg);
    describe_model(t, model, sizeof model);
    dpt_status st = config ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the checkpoint's config");
    if (st == DPT_OK) st = dpt_ckpt_add_tensor(&w, "params", DPT_CKPT_REAL, n, 1, t->model.params);
    if (st == DPT_OK && ns[0]) st = dpt_ckpt_add_tensor(&w, "bn_state", DPT_CKPT_REAL, ns, 1, t->model.state);
    size_t per_rank[2] = {(size_t)t->comm.size, t->model.n_state};
    if (st == DPT_OK && bn_all)
        st = dpt_ckpt_add_tensor(&w, "bn_state_per_rank", DPT_CKPT_REAL, per_rank, 2, bn_all);
    if (st == DPT_OK && first) st = dpt_ckpt_add_tensor(&w, "optim.first", DPT_CKPT_REAL, n, 1, first);
    if (st == DPT_OK && second) st = dpt_ckpt_add_tensor(&w, "optim.second", DPT_CKPT_REAL, n, 1, second);
    if (st == DPT_OK) st = add_scalars(&w, t, reason);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(&w, "model", model);
    if (st == DPT_OK) {
        dpt_ckpt_hash_text(config, hash);
        st = dpt_ckpt_add_meta(&w, "config", config);
    }
    if (st == DPT_OK) st = dpt_ckpt_add_meta(&w, "config_hash", hash);
    if (st == DPT_OK)
        st = dpt_ckpt_save(&w, t->cfg->checkpoint.dir, t->step, t->cfg->checkpoint.keep, path, path_size);
    dpt_ckpt_writer_free(&w);
    free(config);
    return st;
}

dpt_status dpt_trainer_checkpoint(dpt_trainer *t, const char *reason, char *path, size_t path_size)
{
    path[0] = '\0';
    dpt_watchdog_phase("the checkpoint", t->step);
    dpt_real *first = NULL, *second = NULL, *bn_all = NULL;
    dpt_status st = gather_moment(t, 0, &first);
    if (st == DPT_OK) st = gather_moment(t, 1, &second);
    if (st == DPT_OK) st = gather_bn_state(t, &bn_all);
    dpt_status mine = st == DPT_OK && t->comm.rank == 0
                          ? write_file(t, reason, first, second, bn_all, path, path_size) : DPT_OK;
    if (first != t->opt.first) free(first);
    if (second != t->opt.second) free(second);
    free(bn_all);
    if (st != DPT_OK) return st; /* agreed where it failed */
    st = dpt_agree_status(&t->comm, mine, NULL);
    if (st == DPT_OK && t->comm.size > 1 &&
        MPI_Bcast(path, (int)path_size, MPI_CHAR, 0, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "broadcast of the checkpoint's path failed");
    if (st != DPT_OK) t->agreed_failure = 1;
    return st;
}

/* ---------------------------------------------------------------- resume */

enum { POS_FOUND, POS_STEP, POS_EPOCH, POS_EPOCH_SAMPLE, POS_SKIPPED, POS_OPTIM_STEP, POS_RANKS,
       POS_COUNT };

static void report_corrupt(void *user, const char *path, const char *message)
{
    (void)user;
    fprintf(stderr, "dptrain: warning: %s; trying the previous checkpoint\n", message);
    (void)path;
}

/* Rank 0: the checkpoint to resume from, checked against this run. *ck
 * is empty and pos[POS_FOUND] = 0 when `spec` is auto and there is none. */
static dpt_status open_checkpoint(const dpt_trainer *t, const char *spec, dpt_ckpt *ck, char *path,
                                  size_t path_size)
{
    if (strcmp(spec, "auto") == 0) {
        if (t->cfg->checkpoint.dir[0] == '\0')
            return DPT_FAIL(DPT_ERR_CONFIG, "--resume auto needs a [checkpoint] dir");
        return dpt_ckpt_newest_valid(t->cfg->checkpoint.dir, ck, path, path_size, report_corrupt, NULL);
    }
    snprintf(path, path_size, "%s", spec);
    return dpt_ckpt_read_file(spec, ck);
}

/* Rank 0: is ck a checkpoint of this model and precision? */
static dpt_status check_model(const dpt_trainer *t, const dpt_ckpt *ck, const char *path)
{
    const char *format = dpt_ckpt_meta(ck, "format"), *precision = dpt_ckpt_meta(ck, "precision");
    const char *model = dpt_ckpt_meta(ck, "model");
    char mine[4096];
    describe_model(t, mine, sizeof mine);
    if (!format || strcmp(format, FORMAT_NAME) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s: not a dptrain checkpoint (format '%s')", path,
                        format ? format : "none");
    if (!precision || strcmp(precision, DPT_REAL_NAME) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s holds %s precision; this dptrain is built for %s "
                        "(-DDPT_PRECISION)", path, precision ? precision : "an unknown", DPT_REAL_NAME);
    if (!model || strcmp(model, mine) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s is of another model: it holds '%s', the config "
                        "builds '%s'", path, model ? model : "?", mine);
    return DPT_OK;
}

/* Rank 0: ... and of this optimizer? */
static dpt_status check_compatible(const dpt_trainer *t, const dpt_ckpt *ck, const char *path)
{
    dpt_status st = check_model(t, ck, path);
    if (st != DPT_OK) return st;
    const char *optimizer = dpt_ckpt_meta(ck, "optimizer");
    const char *method = dpt_optim_method_name(t->cfg->optim.method);
    if (!optimizer || strcmp(optimizer, method) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s was written by optimizer %s; the config asks for "
                        "%s (its state would not fit)", path, optimizer ? optimizer : "?", method);
    return DPT_OK;
}

/* Rank 0: the tensors into the model and the full moments, the position
 * into pos[]. */
static dpt_status load_state(dpt_trainer *t, const dpt_ckpt *ck, dpt_real *first, dpt_real *second,
                             int64_t *pos, double *samples_seen)
{
    size_t n = t->model.n_params;
    dpt_status st = dpt_ckpt_get_tensor(ck, "params", DPT_CKPT_REAL, n, t->model.params);
    if (st == DPT_OK && t->model.n_state)
        st = dpt_ckpt_get_tensor(ck, "bn_state", DPT_CKPT_REAL, t->model.n_state, t->model.state);
    if (st == DPT_OK && first) st = dpt_ckpt_get_tensor(ck, "optim.first", DPT_CKPT_REAL, n, first);
    if (st == DPT_OK && second) st = dpt_ckpt_get_tensor(ck, "optim.second", DPT_CKPT_REAL, n, second);
    const char *keys[POS_COUNT] = {NULL, "step", "epoch", "epoch_sample", "skipped_steps", "optim_step",
                                   "ranks"};
    for (int i = 1; i < POS_COUNT && st == DPT_OK; i++) st = dpt_ckpt_get_meta_int(ck, keys[i], &pos[i]);
    const char *seen = dpt_ckpt_meta(ck, "samples_seen");
    *samples_seen = seen ? strtod(seen, NULL) : 0;
    if (st == DPT_OK && (pos[POS_STEP] < 0 || pos[POS_EPOCH] < 0 || pos[POS_EPOCH_SAMPLE] < 0))
        st = DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s: a negative step or epoch", ck->source);
    return st;
}

static void warn_differences(const dpt_trainer *t, const dpt_ckpt *ck, const int64_t *pos)
{
    if (pos[POS_RANKS] != t->comm.size)
        fprintf(stderr, "dptrain: warning: the checkpoint was written by %" PRId64 " ranks and this run "
                "has %d: the optimizer state is repartitioned, but the global batch, and so the "
                "trajectory, differs from an uninterrupted run\n", pos[POS_RANKS], t->comm.size);
    char *config = config_text(t->cfg), hash[17];
    const char *stored = dpt_ckpt_meta(ck, "config_hash");
    if (config) {
        dpt_ckpt_hash_text(config, hash);
        if (!stored || strcmp(stored, hash) != 0)
            fprintf(stderr, "dptrain: warning: the config differs from the checkpoint's (hash %s, now "
                    "%s); continuing with this one\n", stored ? stored : "none", hash);
    }
    free(config);
}

/* Every rank: the moment from rank 0's full vector into its slice. */
static dpt_status spread_moment(dpt_trainer *t, dpt_real *mine, dpt_real *full)
{
    if (!mine) return DPT_OK;
    dpt_status st = dpt_broadcast_real(&t->comm, full, t->model.n_params);
    if (st != DPT_OK) return st;
    size_t lo = t->sharded ? t->slice_lo : 0, n = t->sharded ? t->slice_n : t->model.n_params;
    memcpy(mine, full + lo, sizeof(dpt_real) * n);
    return DPT_OK;
}

/* Each rank's own batch-norm statistics when the checkpoint has them for
 * this rank count (bn_state_per_rank), else rank 0's bn_state (already
 * broadcast). Rank 0 reads the file; the others receive their row. */
static dpt_status scatter_bn_state(dpt_trainer *t, const dpt_real *per_rank, int have)
{
    if (MPI_Bcast(&have, 1, MPI_INT, 0, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "broadcast of the batch-norm layout failed");
    if (!have) return DPT_OK;
    int ns = (int)t->model.n_state;
    if (MPI_Scatter(per_rank, ns, DPT_MPI_REAL, t->model.state, ns, DPT_MPI_REAL, 0, t->comm.comm) !=
        MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "scattering the batch-norm statistics failed");
    return DPT_OK;
}

static dpt_status broadcast_state(dpt_trainer *t, dpt_real *first, dpt_real *second, int64_t *pos,
                                  double *samples_seen)
{
    if (MPI_Bcast(pos, POS_COUNT, MPI_INT64_T, 0, t->comm.comm) != MPI_SUCCESS ||
        MPI_Bcast(samples_seen, 1, MPI_DOUBLE, 0, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "broadcast of the checkpoint's position failed");
    if (!pos[POS_FOUND]) return DPT_OK;
    dpt_status st = dpt_broadcast_real(&t->comm, t->model.params, t->model.n_params);
    if (st == DPT_OK) st = dpt_broadcast_real(&t->comm, t->model.state, t->model.n_state);
    if (st == DPT_OK) st = spread_moment(t, t->opt.first, first);
    if (st == DPT_OK) st = spread_moment(t, t->opt.second, second);
    return st;
}

dpt_status dpt_trainer_resume(dpt_trainer *t, const char *spec, char *path, size_t path_size)
{
    path[0] = '\0';
    dpt_watchdog_phase("resuming from a checkpoint", 0);
    size_t n = t->model.n_params ? t->model.n_params : 1;
    dpt_real *first = t->opt.first ? malloc(sizeof(dpt_real) * n) : NULL;
    dpt_real *second = t->opt.second ? malloc(sizeof(dpt_real) * n) : NULL;
    int64_t pos[POS_COUNT] = {0};
    double samples_seen = 0;
    dpt_ckpt ck;
    memset(&ck, 0, sizeof ck);
    dpt_status st = (t->opt.first && !first) || (t->opt.second && !second)
                        ? DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the optimizer state") : DPT_OK;
    if (st == DPT_OK && t->comm.rank == 0) {
        st = open_checkpoint(t, spec, &ck, path, path_size);
        pos[POS_FOUND] = st == DPT_OK && path[0] != '\0';
        if (st == DPT_OK && pos[POS_FOUND]) st = check_compatible(t, &ck, path);
        if (st == DPT_OK && pos[POS_FOUND]) st = load_state(t, &ck, first, second, pos, &samples_seen);
        if (st == DPT_OK && pos[POS_FOUND]) warn_differences(t, &ck, pos);
    }
    /* per-rank batch-norm statistics, for the same rank count only */
    const dpt_ckpt_tensor *bn = st == DPT_OK && pos[POS_FOUND] ? dpt_ckpt_find(&ck, "bn_state_per_rank") : NULL;
    int bn_rows = bn && t->bn_unsynced && bn->ndim == 2 && bn->shape[0] == (size_t)t->comm.size &&
                  bn->shape[1] == t->model.n_state && bn->dtype == DPT_CKPT_REAL;
    st = dpt_agree_status(&t->comm, st, NULL);
    if (st == DPT_OK) st = broadcast_state(t, first, second, pos, &samples_seen);
    if (st == DPT_OK && pos[POS_FOUND] && t->bn_unsynced && t->comm.size > 1 && t->model.n_state)
        st = scatter_bn_state(t, bn_rows ? bn->data : NULL, bn_rows);
    dpt_ckpt_free(&ck);
    free(first), free(second);
    if (st != DPT_OK) {
        t->agreed_failure = 1;
        return st;
    }
    if (!pos[POS_FOUND]) return DPT_OK;
    if (t->comm.size > 1 && MPI_Bcast(path, (int)path_size, MPI_CHAR, 0, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "broadcast of the checkpoint's path failed");
    t->opt.step = (long)pos[POS_OPTIM_STEP];
    t->skipped_steps = (long)pos[POS_SKIPPED];
    t->samples_seen = samples_seen;
    /* the same place in the same epoch's permutation; with another rank
     * count, the global step that starts at or before that sample */
    dpt_trainer_seek(t, (long)pos[POS_STEP], (long)pos[POS_EPOCH],
                     (size_t)pos[POS_EPOCH_SAMPLE] / t->plan.global_batch);
    return DPT_OK;
}

/* ---------------------------------------------------------------- weights only */

dpt_status dpt_model_read_checkpoint(dpt_model *m, const dpt_ckpt *ck, long *step)
{
    size_t n = m->n_params, ns = m->n_state;
    const char *precision = dpt_ckpt_meta(ck, "precision");
    if (!precision || strcmp(precision, DPT_REAL_NAME) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s holds %s precision; this dptrain is built for %s "
                        "(-DDPT_PRECISION)", ck->source, precision ? precision : "an unknown", DPT_REAL_NAME);
    dpt_status st = dpt_ckpt_get_tensor(ck, "params", DPT_CKPT_REAL, n, m->params);
    const dpt_ckpt_tensor *per_rank = dpt_ckpt_find(ck, "bn_state_per_rank");
    if (st == DPT_OK && ns && per_rank && per_rank->ndim == 2 && per_rank->shape[1] == ns &&
        per_rank->shape[0] > 0) {
        size_t ranks = per_rank->shape[0];
        dpt_real *all = malloc(sizeof(dpt_real) * ranks * ns);
        if (!all) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the batch-norm statistics");
        st = dpt_ckpt_get_tensor(ck, "bn_state_per_rank", DPT_CKPT_REAL, ranks * ns, all);
        for (size_t i = 0; i < ns && st == DPT_OK; i++) {
            double sum = 0;
            for (size_t r = 0; r < ranks; r++) sum += all[r * ns + i];
            m->state[i] = (dpt_real)(sum / (double)ranks);
        }
        free(all);
    } else if (st == DPT_OK && ns) {
        st = dpt_ckpt_get_tensor(ck, "bn_state", DPT_CKPT_REAL, ns, m->state);
    }
    int64_t at = 0;
    if (st == DPT_OK) st = dpt_ckpt_get_meta_int(ck, "step", &at);
    *step = (long)at;
    return st;
}

dpt_status dpt_trainer_load_weights(dpt_trainer *t, const char *path, long *step)
{
    dpt_status st = DPT_OK;
    *step = 0;
    if (t->comm.rank == 0) {
        dpt_ckpt ck;
        memset(&ck, 0, sizeof ck);
        st = dpt_ckpt_read_file(path, &ck);
        if (st == DPT_OK) st = check_model(t, &ck, path);
        if (st == DPT_OK) st = dpt_model_read_checkpoint(&t->model, &ck, step);
        dpt_ckpt_free(&ck);
    }
    st = dpt_agree_status(&t->comm, st, NULL);
    if (st != DPT_OK) return st;
    long at = *step;
    if (MPI_Bcast(&at, 1, MPI_LONG, 0, t->comm.comm) != MPI_SUCCESS)
        return DPT_FAIL(DPT_ERR_MPI, "broadcast of the checkpoint's step failed");
    *step = at;
    st = dpt_broadcast_real(&t->comm, t->model.params, t->model.n_params);
    if (st == DPT_OK) st = dpt_broadcast_real(&t->comm, t->model.state, t->model.n_state);
    return st;
}
