/* The trainer's diagnostics (diagnose.h): curvature along the gradient,
 * Lanczos extreme eigenvalues, gradient noise scale, layer gradient checks. */
#include "diagnose.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- setup */

/* The model's layers all have R-operators (dpt_model_curvature_check);
 * else why not, in why. */
static int model_has_curvature(const dpt_model *m, char *why, size_t size)
{
    if (dpt_model_curvature_check(m) == DPT_OK) return 1;
    snprintf(why, size, "%s", dpt_error_message());
    return 0;
}

static dpt_status allocate(dpt_trainer *t, dpt_diagnostics *d)
{
    size_t n = t->model.n_params ? t->model.n_params : 1;
    d->warnings = calloc((size_t)t->model.n_layers + 1, sizeof *d->warnings);
    d->g = malloc(sizeof(dpt_real) * n);
    d->hv_out = malloc(sizeof(dpt_real) * n);
    d->neg_dir = malloc(sizeof(dpt_real) * n);
    if (!d->warnings || !d->g || !d->hv_out || !d->neg_dir)
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for diagnostics");
    if (d->curvature_ok) return dpt_curvature_ws_create(&d->ws, &t->model);
    return DPT_OK;
}

static dpt_status open_file(dpt_trainer *t, dpt_diagnostics *d)
{
    const char *path = t->cfg->diag.file;
    if (t->comm.rank != 0 || path[0] == '\0') return DPT_OK;
    /* "a": checks that the file can be written without emptying it yet;
     * dpt_diagnose_header empties it unless the run resumes */
    d->file = fopen(path, "a");
    if (!d->file)
        return DPT_FAIL(DPT_ERR_IO, "cannot write the diagnostics file %s ([diagnostics] file): %s",
                        path, strerror(errno));
    return DPT_OK;
}

dpt_status dpt_diagnose_setup(dpt_trainer *t)
{
    const dpt_config *cfg = t->cfg;
    if (cfg->diag.every <= 0 || dpt_optim_is_second_order(cfg->optim.method)) return DPT_OK;
    dpt_diagnostics *d = calloc(1, sizeof *d);
    if (!d) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for diagnostics");
    t->diag = d;
    d->every = cfg->diag.every;
    d->lanczos_steps = cfg->diag.lanczos_steps;
    d->curvature_ok = model_has_curvature(&t->model, d->curvature_why, sizeof d->curvature_why);
    d->noise_on = cfg->diag.noise_scale && t->comm.size > 1;
    d->neg_layer = -1;
    d->ratio_min = d->lmin_min = d->lmax_min = INFINITY;
    d->ratio_max = d->lmin_max = d->lmax_max = -INFINITY;
    dpt_status st = dpt_noise_scale_init(&d->noise, cfg->diag.noise_decay);
    if (st == DPT_OK) st = allocate(t, d);
    if (st == DPT_OK) st = open_file(t, d);
    return st;
}

void dpt_diagnose_teardown(dpt_trainer *t)
{
    dpt_diagnostics *d = t->diag;
    if (!d) return;
    if (d->file) fclose(d->file);
    if (d->curvature_ok) dpt_curvature_ws_destroy(&d->ws);
    free(d->warnings), free(d->g), free(d->hv_out), free(d->neg_dir), free(d);
    t->diag = NULL;
}

int dpt_diagnose_due(const dpt_trainer *t)
{
    return t->diag && (t->step + 1) % t->diag->every == 0;
}

/* x . y in double, vectorized (this runs every step for the noise scale) */
static double dot(const dpt_real *x, const dpt_real *y, size_t n) { return dpt_dot_acc_long(x, y, n); }

/* ---------------------------------------------------------------- gradient noise scale */

void dpt_diagnose_begin_step(dpt_trainer *t)
{
    if (!t->diag) return;
    t->diag->local_sumsq = 0;
    t->diag->have_noise = 0;
}

void dpt_diagnose_local_norm(dpt_trainer *t, size_t lo, size_t n)
{
    dpt_diagnostics *d = t->diag;
    if (!d || !d->noise_on) return;
    d->local_sumsq += dot(t->model.grads + lo, t->model.grads + lo, n);
}

double dpt_diagnose_local_sq(dpt_trainer *t)
{
    dpt_diagnostics *d = t->diag;
    if (!d || !d->noise_on || t->local_count == 0) return 0;
    double b = (double)t->local_count;
    return d->local_sumsq / (b * b); /* |G_small|^2: the local sum is of b per-sample gradients */
}

void dpt_diagnose_noise(dpt_trainer *t, double local_sq_sum, double big_sq, size_t global_count)
{
    dpt_diagnostics *d = t->diag;
    if (!d || !d->noise_on) return;
    /* B_small must be the same on every rank: only full steps (a ragged
     * last batch of an epoch gives ranks different counts) */
    if (global_count != t->plan.global_batch) return;
    double b_small = (double)t->cfg->train.batch_size, b_big = (double)global_count;
    double small_sq = local_sq_sum / t->comm.size;
    d->have_noise = dpt_noise_scale_update(&d->noise, small_sq, big_sq, b_small, b_big) == DPT_OK;
}

/* ---------------------------------------------------------------- curvature */

/* out = H v of the step's mean minibatch loss: each rank's sum over its
 * samples, summed over ranks, over the global count. */
static dpt_status minibatch_hv(void *user, const dpt_real *v, dpt_real *out)
{
    dpt_trainer *t = user;
    dpt_diagnostics *d = t->diag;
    size_t n = t->model.n_params;
    memset(out, 0, sizeof(dpt_real) * n);
    dpt_status st = DPT_OK;
    if (t->local_count > 0)
        st = dpt_model_curvature_product(&t->model, &d->ws, t->batch_x, t->batch_y,
                                         (int)t->local_count, v, out, DPT_CURV_HESSIAN);
    st = dpt_agree_status(&t->comm, st, NULL);
    if (st == DPT_OK) st = dpt_allreduce_sum_real(&t->comm, out, n);
    if (st != DPT_OK) return st;
    const dpt_real inv = (dpt_real)(1.0 / (double)d->global_count);
    for (size_t i = 0; i < n; i++) out[i] *= inv;
    return DPT_OK;
}


/* The layer holding the largest share of the unit vector y. */
static void locate_direction(const dpt_model *m, const dpt_real *y, int *layer, double *share)
{
    *layer = -1, *share = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const dpt_layer *l = &m->layers[i];
        size_t len = l->n_weights + l->n_bias;
        if (len == 0) continue;
        double part = dot(y + l->param_offset, y + l->param_offset, len);
        if (part > *share) *layer = i, *share = part;
    }
}

static void record_curvature(dpt_diagnostics *d, double lr)
{
    const dpt_curvature_probe *p = &d->probe;
    d->probes++;
    d->ill_steps += p->ill_conditioned;
    if (p->gtg > 0) {
        double ratio = p->gthg / p->gtg;
        d->ratio_min = fmin(d->ratio_min, ratio);
        d->ratio_max = fmax(d->ratio_max, ratio);
    }
    if (d->probes == 1) d->eps_star_first = p->eps_star;
    d->eps_star_last = p->eps_star;
    d->lr_last = lr;
}

static dpt_status run_lanczos(dpt_trainer *t, dpt_diagnostics *d)
{
    dpt_lanczos_params lp;
    dpt_lanczos_params_init(&lp);
    lp.steps = d->lanczos_steps;
    lp.seed = t->cfg->train.seed ^ (uint64_t)t->step; /* a fresh start vector per probe */
    dpt_status st = dpt_lanczos_extremes(minibatch_hv, t, t->model.n_params, &lp, &d->lanczos, d->neg_dir);
    if (st != DPT_OK) return st;
    d->have_lanczos = 1;
    d->lanczos_runs++;
    const dpt_lanczos_result *r = &d->lanczos;
    d->lmin_min = fmin(d->lmin_min, r->lambda_min), d->lmin_max = fmax(d->lmin_max, r->lambda_min);
    d->lmax_min = fmin(d->lmax_min, r->lambda_max), d->lmax_max = fmax(d->lmax_max, r->lambda_max);
    d->neg_layer = -1;
    if (r->lambda_min < 0 && r->rayleigh_min < 0) {
        d->negative_runs++;
        locate_direction(&t->model, d->neg_dir, &d->neg_layer, &d->neg_layer_share);
    }
    return DPT_OK;
}

dpt_status dpt_diagnose_curvature(dpt_trainer *t, size_t lo, size_t n, size_t global_count)
{
    dpt_diagnostics *d = t->diag;
    d->have_probe = d->have_lanczos = 0;
    if (!d->curvature_ok) return DPT_OK;
    d->global_count = global_count;
    size_t total = t->model.n_params;
    memcpy(d->g + lo, t->model.grads + lo, sizeof(dpt_real) * n);
    if (n < total) { /* sharded: every rank's slice of g, to every rank */
        dpt_status st = dpt_sharder_allgather(&t->sharder, d->g);
        if (st != DPT_OK) return st;
    }
    dpt_status st = minibatch_hv(t, d->g, d->hv_out);
    if (st != DPT_OK) return st;
    double lr = dpt_schedule_lr(&t->opt.params, t->opt.step); /* the rate this update will use */
    dpt_curvature_probe_eval(&d->probe, dot(d->g, d->g, total), dot(d->g, d->hv_out, total), lr);
    d->have_probe = 1;
    record_curvature(d, lr);
    return d->lanczos_steps > 0 ? run_lanczos(t, d) : DPT_OK;
}
