/* Rank 0's progress display and JSON-lines metrics. */
#include "report.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define BAR_REDRAW_SECONDS 0.1

dpt_status dpt_reporter_open(dpt_reporter *rep, const dpt_trainer *t)
{
    memset(rep, 0, sizeof *rep);
    rep->active = t->comm.rank == 0;
    rep->model = &t->model;
    if (!rep->active) return DPT_OK;
    dpt_progress_mode mode = t->cfg->log.progress;
    rep->console = !t->console_off;
    rep->quiet = mode == DPT_PROGRESS_NONE || !rep->console;
    rep->bar = mode == DPT_PROGRESS_BAR || (mode == DPT_PROGRESS_AUTO && isatty(STDERR_FILENO));
    const char *path = t->cfg->log.metrics;
    if (path[0] != '\0') {
        /* a resumed run (a requeued batch job) continues the file of the run
         * it resumes; a run from step 0 starts it afresh */
        rep->metrics = fopen(path, t->step > 0 ? "a" : "w");
        if (!rep->metrics)
            return DPT_FAIL(DPT_ERR_IO, "cannot write the metrics file %s ([log] metrics): %s",
                            path, strerror(errno));
    }
    return DPT_OK;
}

void dpt_reporter_close(dpt_reporter *rep)
{
    if (rep->metrics) fclose(rep->metrics);
    rep->metrics = NULL;
}

/* Writes one JSON object as a line and frees it. */
static void emit(dpt_reporter *rep, cJSON *record)
{
    if (!record) return;
    if (rep->metrics) {
        char *text = cJSON_PrintUnformatted(record);
        if (text) {
            fprintf(rep->metrics, "%s\n", text);
            fflush(rep->metrics);
            cJSON_free(text);
        }
    }
    cJSON_Delete(record);
}

static void format_duration(char *out, size_t size, double seconds)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(out, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
}

/* "784 -> trunk 5 layers -> output(10)" style one-liner. */
static void describe_model(char *out, size_t size, const dpt_model *m)
{
    int used = snprintf(out, size, "%dx%dx%d input, %d trunk layers", m->input.c, m->input.h,
                        m->input.w, m->n_trunk);
    for (int h = 0; h < m->n_heads && used > 0 && (size_t)used < size; h++)
        used += snprintf(out + used, size - (size_t)used, ", head %s (%d layers, %d outputs, %s)",
                         m->heads[h].spec.name, m->heads[h].n, m->heads[h].outputs,
                         dpt_loss_name(m->heads[h].spec.loss));
}

dpt_status dpt_report_begin(dpt_reporter *rep, dpt_trainer *t, const dpt_dataset *test_set)
{
    dpt_status st = dpt_agree_status(&t->comm, dpt_reporter_open(rep, t), NULL);
    if (st != DPT_OK) {
        dpt_reporter_close(rep);
        t->agreed_failure = 1; /* every rank returns it: no abort needed */
        return st;
    }
    dpt_report_start(rep, t, test_set);
    return DPT_OK;
}

static void print_first_order(const dpt_trainer *t)
{
    printf("optimizer: %s, lr %g (%s schedule", dpt_optim_method_name(t->opt.params.method),
           t->opt.params.lr, dpt_schedule_name(t->opt.params.schedule));
    if (t->opt.params.warmup_steps) printf(", %ld warmup steps", t->opt.params.warmup_steps);
    printf("), state %.2f MiB per rank%s\n", dpt_optimizer_state_bytes(&t->opt) / 1048576.0,
           t->sharded ? " (sharded)" : "");
    if (t->comm.size > 1)
        printf("gradient reduction: %s\n", t->sharded ? "reduce-scatter + all-gather of parameters"
               : t->overlapped ? "bucketed, overlapping the backward pass" : "one blocking allreduce");
}

static void print_header(const dpt_trainer *t, const dpt_dataset *test_set, const char *model)
{
    printf("dptrain %s: %d rank%s, %s precision, %zu parameters, %.3g MFLOP per sample forward\n",
           DPT_VERSION_STRING, t->comm.size, t->comm.size > 1 ? "s" : "", DPT_REAL_NAME,
           t->model.n_params, dpt_model_flops_per_sample(&t->model) / 1e6);
    printf("model: %s\n", model);
    printf("data: %zu training samples, %zu test samples; global batch %zu (%d per rank), "
           "%zu steps per epoch, %ld steps\n", t->train_set->n_samples, test_set->n_samples,
           t->plan.global_batch, t->cfg->train.batch_size, t->plan.steps_per_epoch, t->total_steps);
    if (dpt_optim_is_second_order(t->cfg->optim.method)) {
        const dpt_solve_params *s = &t->cfg->solve;
        printf("optimizer: %s on the full batch of %zu samples (L2 %g on weights, gtol %g%s, ftol %g, "
               "at most %d iterations)\n", dpt_optim_method_name(t->cfg->optim.method),
               dpt_trainer_solve_batch(t),
               t->cfg->optim.weight_decay, s->gtol, s->gtol_absolute ? " absolute" : " x max(1, |x|inf)",
               s->ftol, s->max_iter);
    } else {
        print_first_order(t);
    }
    fflush(stdout);
}

void dpt_report_start(dpt_reporter *rep, const dpt_trainer *t, const dpt_dataset *test_set)
{
    if (!rep->active) return;
    char model[1024];
    describe_model(model, sizeof model, &t->model);
    if (rep->console) print_header(t, test_set, model);

    cJSON *run = cJSON_CreateObject();
    cJSON_AddStringToObject(run, "type", "run");
    cJSON_AddStringToObject(run, "version", DPT_VERSION_STRING);
    cJSON_AddStringToObject(run, "precision", DPT_REAL_NAME);
    cJSON_AddNumberToObject(run, "ranks", t->comm.size);
    cJSON_AddStringToObject(run, "model", model);
    cJSON_AddNumberToObject(run, "parameters", (double)t->model.n_params);
    cJSON_AddNumberToObject(run, "global_batch", (double)t->plan.global_batch);
    cJSON_AddNumberToObject(run, "steps", (double)t->total_steps);
    if (t->step > 0) cJSON_AddNumberToObject(run, "resumed_at_step", (double)t->step);
    /* the resolved configuration, so that a metrics file says how to rerun it */
    char *config_text = NULL;
    size_t config_len = 0;
    FILE *config_out = open_memstream(&config_text, &config_len);
    if (config_out) {
        dpt_config_write(t->cfg, config_out);
        fclose(config_out);
        cJSON_AddStringToObject(run, "config", config_text);
        free(config_text);
    }
    emit(rep, run);
}

static void draw_bar(dpt_reporter *rep, const dpt_progress *p)
{
    int filled = p->epoch_steps > 0 ? (int)(BAR_WIDTH * p->epoch_step / p->epoch_steps) : 0;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char eta[32];
    format_duration(eta, sizeof eta, p->eta_seconds);
    fprintf(stderr, "\r\033[Kepoch %ld/%ld [%s] %ld/%ld loss %.4f acc %.4f lr %.3g %.0f samples/s ETA %s",
            p->epoch, p->epochs, bar, p->epoch_step, p->epoch_steps, p->window.loss,
            p->window.accuracy, p->lr, p->samples_per_second, eta);
    fflush(stderr);
    rep->bar_drawn = 1;
    rep->last_draw = MPI_Wtime();
}

static void end_bar(dpt_reporter *rep)
{
    if (rep->bar_drawn) fputs("\r\033[K", stderr);
    rep->bar_drawn = 0;
}

void dpt_report_tick(dpt_reporter *rep, const dpt_progress *p)
{
    if (!rep->active || rep->quiet || !rep->bar || p->window.samples == 0) return;
    if (MPI_Wtime() - rep->last_draw >= BAR_REDRAW_SECONDS) draw_bar(rep, p);
}

void dpt_report_progress(dpt_reporter *rep, const dpt_progress *p)
{
    if (!rep->active) return;
    if (!rep->quiet && rep->bar) {
        draw_bar(rep, p);
    } else if (!rep->quiet) {
        char eta[32];
        format_duration(eta, sizeof eta, p->eta_seconds);
        fprintf(stderr, "epoch %ld/%ld step %ld/%ld (%ld/%ld) loss %.4f acc %.4f lr %.4g "
                "%.0f samples/s ETA %s\n", p->epoch, p->epochs, p->epoch_step, p->epoch_steps,
                p->step, p->total_steps, p->window.loss, p->window.accuracy, p->lr,
                p->samples_per_second, eta);
        fflush(stderr);
    }
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "step");
    cJSON_AddNumberToObject(rec, "epoch", (double)p->epoch);
    cJSON_AddNumberToObject(rec, "step", (double)p->step);
    cJSON_AddNumberToObject(rec, "loss", p->window.loss);
    cJSON_AddNumberToObject(rec, "accuracy", p->window.accuracy);
    cJSON_AddNumberToObject(rec, "lr", p->lr);
    cJSON_AddNumberToObject(rec, "samples_per_s", p->samples_per_second);
    cJSON_AddNumberToObject(rec, "eta_s", p->eta_seconds);
    cJSON_AddNumberToObject(rec, "elapsed_s", p->elapsed_seconds);
    cJSON_AddNumberToObject(rec, "train_s", p->train_seconds);
    emit(rep, rec);
}

/* Adds per-head (and Monte Carlo dropout) accuracies to a JSON record. */
static void add_heads(cJSON *rec, const char *prefix, const dpt_model *m, const dpt_eval *e)
{
    if (e->n_heads < 2 && e->mc_samples == 0) return;
    cJSON *heads = cJSON_AddObjectToObject(rec, prefix);
    for (int h = 0; heads && h < e->n_heads; h++) {
        cJSON *one = cJSON_AddObjectToObject(heads, m->heads[h].spec.name);
        cJSON_AddNumberToObject(one, "loss", e->head_loss[h]);
        cJSON_AddNumberToObject(one, "accuracy", e->head_accuracy[h]);
        if (e->mc_samples) cJSON_AddNumberToObject(one, "mc_accuracy", e->head_mc_accuracy[h]);
    }
}

/* " | item acc 0.9120 (MC 0.9131) | group acc 0.9950" for several heads or MC dropout. */
static void print_heads(const dpt_model *m, const dpt_eval *e)
{
    if (e->n_heads < 2 && e->mc_samples == 0) return;
    for (int h = 0; h < e->n_heads; h++) {
        printf("\n    %-12s test loss %.4f acc %.4f", m->heads[h].spec.name, e->head_loss[h],
               e->head_accuracy[h]);
        if (e->mc_samples)
            printf("  (Monte Carlo dropout, %d passes: acc %.4f)", e->mc_samples, e->head_mc_accuracy[h]);
    }
}

static void print_epoch(const dpt_reporter *rep, const dpt_progress *p, const dpt_eval *train,
                        const dpt_eval *test, double epoch_seconds, double samples_per_second)
{
    printf("epoch %ld/%ld: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s, %.0f samples/s",
           p->epoch, p->epochs, train->loss, train->accuracy, test->loss, test->accuracy,
           epoch_seconds, samples_per_second);
    print_heads(rep->model, test);
    printf("\n");
    fflush(stdout);
}

void dpt_report_epoch(dpt_reporter *rep, const dpt_progress *p, const dpt_eval *train,
                      const dpt_eval *test, double epoch_seconds, double samples_per_second)
{
    if (!rep->active) return;
    end_bar(rep);
    if (rep->console) print_epoch(rep, p, train, test, epoch_seconds, samples_per_second);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "epoch");
    cJSON_AddNumberToObject(rec, "epoch", (double)p->epoch);
    cJSON_AddNumberToObject(rec, "step", (double)p->step);
    cJSON_AddNumberToObject(rec, "train_loss", train->loss);
    cJSON_AddNumberToObject(rec, "train_accuracy", train->accuracy);
    cJSON_AddNumberToObject(rec, "test_loss", test->loss);
    cJSON_AddNumberToObject(rec, "test_accuracy", test->accuracy);
    cJSON_AddNumberToObject(rec, "lr", p->lr);
    cJSON_AddNumberToObject(rec, "epoch_s", epoch_seconds);
    cJSON_AddNumberToObject(rec, "elapsed_s", p->elapsed_seconds); /* as in step records */
    cJSON_AddNumberToObject(rec, "samples_per_s", samples_per_second);
    add_heads(rec, "test_heads", rep->model, test);
    emit(rep, rec);
}

static void print_final(const dpt_reporter *rep, const dpt_run_report *r)
{
    printf("final test accuracy %.4f, test loss %.4f (%ld steps, %.1f s training, %.0f samples/s, "
           "%.1f s total)", r->final_test.accuracy, r->final_test.loss, r->steps, r->train_seconds,
           r->samples_per_second, r->total_seconds);
    print_heads(rep->model, &r->final_test);
    printf("\n");
    fflush(stdout);
}

void dpt_report_final(dpt_reporter *rep, const dpt_run_report *r)
{
    if (!rep->active) return;
    end_bar(rep);
    if (rep->console) print_final(rep, r);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "final");
    cJSON_AddNumberToObject(rec, "test_accuracy", r->final_test.accuracy);
    cJSON_AddNumberToObject(rec, "test_loss", r->final_test.loss);
    cJSON_AddNumberToObject(rec, "steps", (double)r->steps);
    cJSON_AddNumberToObject(rec, "train_s", r->train_seconds);
    cJSON_AddNumberToObject(rec, "total_s", r->total_seconds);
    cJSON_AddNumberToObject(rec, "samples_per_s", r->samples_per_second);
    cJSON_AddNumberToObject(rec, "skipped_steps", (double)r->skipped_steps);
    cJSON_AddNumberToObject(rec, "comm_ms_per_step", r->comm_ms_per_step);
    cJSON_AddNumberToObject(rec, "optimizer_state_bytes", (double)r->optimizer_state_bytes);
    cJSON_AddNumberToObject(rec, "peak_rss_bytes", (double)r->peak_rss_bytes);
    add_heads(rec, "test_heads", rep->model, &r->final_test);
    emit(rep, rec);
}

void dpt_report_skip(dpt_reporter *rep, const dpt_trainer *t)
{
    if (!rep->active) return;
    end_bar(rep);
    char where[96] = "";
    if (t->last_bad_layer >= 0)
        snprintf(where, sizeof where, " first in layer %d (%s)", t->last_bad_layer + 1,
                 dpt_layer_kind_name(t->model.layers[t->last_bad_layer].spec.kind));
    fprintf(stderr, "dptrain: warning: step %ld skipped: non-finite gradient%s (%ld skipped so far)\n",
            t->step, where, t->skipped_steps);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "skip");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    cJSON_AddNumberToObject(rec, "layer", t->last_bad_layer >= 0 ? t->last_bad_layer + 1 : -1);
    cJSON_AddNumberToObject(rec, "skipped_steps", (double)t->skipped_steps);
    emit(rep, rec);
}

void dpt_report_layer_stats(dpt_reporter *rep, const dpt_trainer *t)
{
    if (!rep->active) return;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "layer_stats");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    cJSON_AddNumberToObject(rec, "grad_norm", t->grad_norm);
    cJSON *layers = cJSON_AddArrayToObject(rec, "layers");
    if (!rep->quiet) fprintf(stderr, "layer stats, step %ld (|g| |w| |dw|/|w|):", t->step);
    for (int i = 0; layers && i < t->model.n_layers; i++) {
        const dpt_layer *l = &t->model.layers[i];
        if (l->n_weights + l->n_bias == 0) continue;
        const dpt_layer_stat *s = &t->layer_stats[i];
        cJSON *one = cJSON_CreateObject();
        cJSON_AddNumberToObject(one, "layer", i + 1);
        cJSON_AddStringToObject(one, "kind", dpt_layer_kind_name(l->spec.kind));
        cJSON_AddNumberToObject(one, "grad_norm", s->grad_norm);
        cJSON_AddNumberToObject(one, "weight_norm", s->weight_norm);
        cJSON_AddNumberToObject(one, "update_ratio", s->update_ratio);
        cJSON_AddItemToArray(layers, one);
        if (!rep->quiet)
            fprintf(stderr, "  %d:%s %.2e %.2e %.2e", i + 1, dpt_layer_kind_name(l->spec.kind),
                    s->grad_norm, s->weight_norm, s->update_ratio);
    }
    if (!rep->quiet) fprintf(stderr, "\n");
    emit(rep, rec);
}

void dpt_report_iteration(dpt_reporter *rep, const dpt_solve_iter *it)
{
    if (!rep->active) return;
    if (!rep->quiet) {
        fprintf(stderr, "iter %d: f %.10g |g|inf %.3g step %.3g oracle calls %ld", it->iter, it->f,
                it->gnorm_inf, it->step, it->oracle_calls);
        if (it->cg_iters) fprintf(stderr, " damping %.3g cg %d", it->lambda, it->cg_iters);
        else if (it->lambda > 0) fprintf(stderr, " damping %.3g", it->lambda);
        if (it->has_spectrum)
            fprintf(stderr, " | eigenvalues [%.4g, %.4g] condition %.3g negative %d", it->eig_min,
                    it->eig_max, it->condition, it->negative);
        fprintf(stderr, "\n");
    }
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "iter");
    cJSON_AddNumberToObject(rec, "iter", it->iter);
    cJSON_AddNumberToObject(rec, "f", it->f);
    cJSON_AddNumberToObject(rec, "grad_inf", it->gnorm_inf);
    cJSON_AddNumberToObject(rec, "step", it->step);
    cJSON_AddNumberToObject(rec, "oracle_calls", (double)it->oracle_calls);
    cJSON_AddNumberToObject(rec, "damping", it->lambda);
    cJSON_AddNumberToObject(rec, "cg_iters", it->cg_iters);
    if (it->has_spectrum) {
        cJSON_AddNumberToObject(rec, "eig_min", it->eig_min);
        cJSON_AddNumberToObject(rec, "eig_max", it->eig_max);
        cJSON_AddNumberToObject(rec, "condition", isfinite(it->condition) ? it->condition : -1);
        cJSON_AddNumberToObject(rec, "negative_eigenvalues", it->negative);
    }
    emit(rep, rec);
}

void dpt_report_solved(dpt_reporter *rep, const dpt_solve_report *r)
{
    if (!rep->active) return;
    printf("solver stopped (%s%s%s) after %d iterations, %ld evaluations and %ld curvature "
           "products: f %.12g, |g|inf %.3g, curvature memory %.2f MiB per rank\n",
           r->reason_name ? r->reason_name : "?", r->detail[0] ? ": " : "", r->detail, r->iterations,
           r->evals, r->products, r->f, r->gnorm_inf, (double)r->state_bytes / (1 << 20));
    fflush(stdout);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "solved");
    cJSON_AddStringToObject(rec, "reason", r->reason_name ? r->reason_name : "?");
    cJSON_AddNumberToObject(rec, "iterations", r->iterations);
    cJSON_AddNumberToObject(rec, "evals", (double)r->evals);
    cJSON_AddNumberToObject(rec, "products", (double)r->products);
    cJSON_AddNumberToObject(rec, "f", r->f);
    cJSON_AddNumberToObject(rec, "grad_inf", r->gnorm_inf);
    cJSON_AddNumberToObject(rec, "state_bytes_per_rank", (double)r->state_bytes);
    emit(rep, rec);
}

void dpt_report_checkpoint(dpt_reporter *rep, const dpt_trainer *t, const char *reason, const char *path,
                           double seconds)
{
    if (!rep->active) return;
    if (rep->console) {
        end_bar(rep);
        fprintf(stderr, "checkpoint at step %ld (%s): %s (%.2f s)\n", t->step, reason, path, seconds);
    }
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "checkpoint");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    cJSON_AddStringToObject(rec, "reason", reason);
    cJSON_AddStringToObject(rec, "path", path);
    cJSON_AddNumberToObject(rec, "seconds", seconds);
    emit(rep, rec);
}

void dpt_report_stopped(dpt_reporter *rep, const dpt_trainer *t)
{
    if (!rep->active) return;
    end_bar(rep);
    if (rep->console)
        printf("stopped by a signal after %s %ld of %ld%s\n",
               dpt_optim_is_second_order(t->cfg->optim.method) ? "solver iteration" : "step", t->step,
               dpt_optim_is_second_order(t->cfg->optim.method) ? (long)t->cfg->solve.max_iter : t->total_steps,
               t->cfg->checkpoint.dir[0] ? "; resume with --resume auto" : " (no checkpoint: [checkpoint] dir is empty)");
    fflush(stdout);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "stopped");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    emit(rep, rec);
}
