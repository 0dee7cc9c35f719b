/* What rank 0 shows of the diagnostics (diagnose.h): one JSON object per
 * diagnostics step, warnings for vanishing or exploding layer gradients,
 * and the end-of-run summary with the advice the numbers imply. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diagnose.h"

static void emit(dpt_diagnostics *d, cJSON *record)
{
    if (!record) return;
    if (d->file) {
        char *text = cJSON_PrintUnformatted(record);
        if (text) {
            fprintf(d->file, "%s\n", text);
            fflush(d->file);
            cJSON_free(text);
        }
    }
    cJSON_Delete(record);
}

/* cJSON writes non-finite numbers as null; say so explicitly */
static void add_number(cJSON *obj, const char *name, double value)
{
    if (isfinite(value)) cJSON_AddNumberToObject(obj, name, value);
    else cJSON_AddNullToObject(obj, name);
}

static void layer_label(const dpt_model *m, int i, char *out, size_t size)
{
    char spec[120];
    dpt_layer_list_format(&m->layers[i].spec, 1, spec, sizeof spec);
    snprintf(out, size, "layer %d (%s)", i + 1, spec);
}

/* Checks every layer with parameters; warns on stderr the first time a
 * layer turns vanishing or exploding; adds the layers to rec. */
static void check_layers(dpt_trainer *t, cJSON *rec, int console)
{
    dpt_diagnostics *d = t->diag;
    const dpt_config *cfg = t->cfg;
    cJSON *layers = cJSON_AddArrayToObject(rec, "layers");
    for (int i = 0; i < t->model.n_layers; i++) {
        const dpt_layer *l = &t->model.layers[i];
        if (l->n_weights + l->n_bias == 0) continue;
        const dpt_layer_stat *s = &t->layer_stats[i];
        double ratio;
        dpt_grad_health h = dpt_grad_health_check(s->grad_norm, s->weight_norm, cfg->diag.grad_ratio_min,
                                                  cfg->diag.grad_ratio_max, &ratio);
        cJSON *one = cJSON_CreateObject();
        cJSON_AddNumberToObject(one, "layer", i + 1);
        cJSON_AddStringToObject(one, "kind", dpt_layer_kind_name(l->spec.kind));
        add_number(one, "grad_norm", s->grad_norm);
        add_number(one, "weight_norm", s->weight_norm);
        add_number(one, "grad_weight_ratio", ratio);
        cJSON_AddStringToObject(one, "health", dpt_grad_health_name(h));
        cJSON_AddItemToArray(layers, one);
        if (h == DPT_GRAD_OK) continue;
        dpt_layer_warning *w = &d->warnings[i];
        int vanishing = h == DPT_GRAD_VANISHING;
        if (w->count[h]++ == 0) {
            w->first_step[h] = t->step;
            w->worst_ratio[h] = ratio;
            char name[160];
            layer_label(&t->model, i, name, sizeof name);
            if (console)
                fprintf(stderr, "dptrain: warning: step %ld: %s gradient in %s: |g|/|w| = %.3g %s "
                        "[diagnostics] %s = %g\n", t->step, vanishing ? "vanishing" : "exploding", name,
                        ratio, vanishing ? "<" : ">", vanishing ? "grad_ratio_min" : "grad_ratio_max",
                        vanishing ? cfg->diag.grad_ratio_min : cfg->diag.grad_ratio_max);
        } else if (vanishing ? ratio < w->worst_ratio[h] : !(ratio <= w->worst_ratio[h])) {
            w->worst_ratio[h] = ratio;
        }
    }
}

static void add_probe(cJSON *rec, const dpt_curvature_probe *p)
{
    cJSON *c = cJSON_AddObjectToObject(rec, "curvature");
    add_number(c, "gTg", p->gtg);
    add_number(c, "gTHg", p->gthg);
    add_number(c, "lr", p->eps);
    add_number(c, "first_order", p->first_order);
    add_number(c, "second_order", p->second_order);
    cJSON_AddBoolToObject(c, "ill_conditioned", p->ill_conditioned);
    add_number(c, "eps_star", p->eps_star);
}

static void add_lanczos(cJSON *rec, const dpt_diagnostics *d)
{
    const dpt_lanczos_result *r = &d->lanczos;
    cJSON *c = cJSON_AddObjectToObject(rec, "lanczos");
    cJSON_AddNumberToObject(c, "steps", r->steps);
    add_number(c, "lambda_min", r->lambda_min);
    add_number(c, "lambda_max", r->lambda_max);
    add_number(c, "residual_min", r->residual_min);
    add_number(c, "residual_max", r->residual_max);
    add_number(c, "rayleigh_min", r->rayleigh_min);
    cJSON_AddBoolToObject(c, "negative_curvature", d->neg_layer >= 0);
    if (d->neg_layer >= 0) {
        cJSON_AddNumberToObject(c, "direction_layer", d->neg_layer + 1);
        add_number(c, "direction_layer_share", d->neg_layer_share);
    }
}

static void add_noise(cJSON *rec, const dpt_noise_scale *ns)
{
    cJSON *c = cJSON_AddObjectToObject(rec, "noise");
    add_number(c, "G2", ns->g2);
    add_number(c, "S", ns->s);
    add_number(c, "ema_G2", ns->ema_g2);
    add_number(c, "ema_S", ns->ema_s);
    add_number(c, "B_simple", ns->b_simple);
}

static void print_line(const dpt_trainer *t, const dpt_diagnostics *d)
{
    fprintf(stderr, "diagnostics, step %ld:", t->step);
    if (d->have_probe) {
        const dpt_curvature_probe *p = &d->probe;
        fprintf(stderr, " g'g %.3g g'Hg %.3g eps* %.3g (lr %.3g)%s", p->gtg, p->gthg, p->eps_star, p->eps,
                p->ill_conditioned ? " ILL-CONDITIONED: the step is uphill on the quadratic model" : "");
    }
    if (d->have_lanczos)
        fprintf(stderr, " | lambda [%.4g, %.4g]%s", d->lanczos.lambda_min, d->lanczos.lambda_max,
                d->neg_layer >= 0 ? " negative curvature" : "");
    if (d->noise.steps > 0) fprintf(stderr, " | B_simple %.4g", d->noise.b_simple);
    fprintf(stderr, "\n");
}

void dpt_diagnose_report(dpt_trainer *t, int console)
{
    dpt_diagnostics *d = t->diag;
    if (!d || t->comm.rank != 0) return;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "diag");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    cJSON_AddNumberToObject(rec, "epoch", (double)t->epoch + (t->epoch_step ? 1 : 0));
    add_number(rec, "grad_norm", t->grad_norm);
    if (d->have_probe) add_probe(rec, &d->probe);
    if (d->have_lanczos) add_lanczos(rec, d);
    if (d->noise.steps > 0) add_noise(rec, &d->noise);
    if (t->stats_ready) check_layers(t, rec, console);
    if (console && t->cfg->log.progress != DPT_PROGRESS_NONE) print_line(t, d);
    emit(d, rec);
}

void dpt_diagnose_header(dpt_trainer *t)
{
    dpt_diagnostics *d = t->diag;
    if (!d || !d->file) return;
    /* a run from step 0 starts the file afresh; a resumed one continues it
     * (the file was opened for appending, so writes follow the truncation) */
    if (t->step == 0 && ftruncate(fileno(d->file), 0) != 0)
        fprintf(stderr, "dptrain: warning: cannot empty the diagnostics file %s: %s\n", t->cfg->diag.file,
                strerror(errno));
    const dpt_config *cfg = t->cfg;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "run");
    if (t->step > 0) cJSON_AddNumberToObject(rec, "resumed_at_step", (double)t->step);
    cJSON_AddNumberToObject(rec, "ranks", t->comm.size);
    cJSON_AddNumberToObject(rec, "parameters", (double)t->model.n_params);
    cJSON_AddNumberToObject(rec, "local_batch", cfg->train.batch_size);
    cJSON_AddNumberToObject(rec, "global_batch", (double)t->plan.global_batch);
    cJSON_AddNumberToObject(rec, "every", cfg->diag.every);
    cJSON_AddNumberToObject(rec, "lanczos_steps", cfg->diag.lanczos_steps);
    cJSON_AddBoolToObject(rec, "noise_scale", d->noise_on);
    cJSON_AddNumberToObject(rec, "noise_decay", cfg->diag.noise_decay);
    cJSON_AddNumberToObject(rec, "grad_ratio_min", cfg->diag.grad_ratio_min);
    cJSON_AddNumberToObject(rec, "grad_ratio_max", cfg->diag.grad_ratio_max);
    if (!d->curvature_ok) cJSON_AddStringToObject(rec, "curvature_unavailable", d->curvature_why);
    emit(d, rec);
}

/* ---------------------------------------------------------------- summary */

/* McCandlish et al. (2018) eq. 2.11: steps S = S_min (1 + B_noise / B), so
 * doubling the global batch B (twice the ranks) divides the steps by
 * (1 + B_noise / B) / (1 + B_noise / 2B): nearly 2 below B_noise, nearly 1
 * above it. */
static double doubling_speedup(double b_noise, double batch)
{
    return (1 + b_noise / batch) / (1 + b_noise / (2 * batch));
}

static void noise_advice(const dpt_trainer *t, const dpt_noise_scale *ns, char *out, size_t size)
{
    double batch = (double)t->plan.global_batch, local = (double)t->cfg->train.batch_size;
    double b = ns->b_simple, speedup = doubling_speedup(b, batch);
    if (!(b > 0)) {
        snprintf(out, size, "no estimate yet (|G|^2 not positive: the gradient is dominated by noise)");
    } else if (batch < 0.5 * b) {
        snprintf(out, size, "the global batch %.0f is below B_simple: more ranks still pay off; twice "
                 "the ranks would cut the steps %.2fx (ideal 2x); beyond about %.0f ranks at %.0f "
                 "samples per rank they stop paying off", batch, speedup, ceil(b / local), local);
    } else if (batch > 2 * b) {
        snprintf(out, size, "the global batch %.0f is above B_simple: more ranks buy little (twice the "
                 "ranks: %.2fx fewer steps); about %.0f ranks at %.0f samples per rank, or a smaller "
                 "batch per rank, give nearly the same progress per step", batch, speedup,
                 fmax(1, ceil(b / local)), local);
    } else {
        snprintf(out, size, "the global batch %.0f is near B_simple (the critical batch size): twice the "
                 "ranks would cut the steps %.2fx", batch, speedup);
    }
}

static void summary_layers(const dpt_trainer *t, cJSON *rec, int console)
{
    const dpt_diagnostics *d = t->diag;
    cJSON *list = cJSON_AddArrayToObject(rec, "layer_warnings");
    for (int i = 0; i < t->model.n_layers; i++) {
        for (int h = DPT_GRAD_VANISHING; h <= DPT_GRAD_EXPLODING; h++) {
            const dpt_layer_warning *w = &d->warnings[i];
            if (w->count[h] == 0) continue;
            char name[160];
            layer_label(&t->model, i, name, sizeof name);
            if (console)
                printf("  %s gradient in %s at %ld checks (first at step %ld, |g|/|w| %s %.3g)\n",
                       dpt_grad_health_name((dpt_grad_health)h), name, w->count[h], w->first_step[h],
                       h == DPT_GRAD_VANISHING ? "down to" : "up to", w->worst_ratio[h]);
            cJSON *one = cJSON_CreateObject();
            cJSON_AddNumberToObject(one, "layer", i + 1);
            cJSON_AddStringToObject(one, "health", dpt_grad_health_name((dpt_grad_health)h));
            cJSON_AddNumberToObject(one, "checks", (double)w->count[h]);
            cJSON_AddNumberToObject(one, "first_step", (double)w->first_step[h]);
            add_number(one, "worst_ratio", w->worst_ratio[h]);
            cJSON_AddItemToArray(list, one);
        }
    }
}

static void summary_curvature(const dpt_diagnostics *d, cJSON *rec, int console)
{
    if (!d->curvature_ok) {
        if (console) printf("  curvature: not available (%s)\n", d->curvature_why);
        cJSON_AddStringToObject(rec, "curvature_unavailable", d->curvature_why);
        return;
    }
    if (d->probes == 0) return;
    if (console)
        printf("  curvature along g: g'Hg/g'g in [%.4g, %.4g]; the lr step was uphill on the quadratic "
               "model at %ld of %ld probes; eps* = g'g/g'Hg %.3g at the first probe, %.3g at the last "
               "(lr %.3g)\n", d->ratio_min, d->ratio_max, d->ill_steps, d->probes, d->eps_star_first,
               d->eps_star_last, d->lr_last);
    cJSON_AddNumberToObject(rec, "probes", (double)d->probes);
    cJSON_AddNumberToObject(rec, "ill_conditioned_probes", (double)d->ill_steps);
    add_number(rec, "curvature_ratio_min", d->ratio_min);
    add_number(rec, "curvature_ratio_max", d->ratio_max);
    add_number(rec, "eps_star_last", d->eps_star_last);
    if (d->lanczos_runs == 0) return;
    if (console)
        printf("  Hessian (Lanczos, %d products): lambda_max in [%.4g, %.4g], lambda_min in [%.4g, %.4g]; "
               "negative curvature (a saddle or non-convex region) at %ld of %ld runs\n",
               d->lanczos_steps, d->lmax_min, d->lmax_max, d->lmin_min, d->lmin_max, d->negative_runs,
               d->lanczos_runs);
    cJSON_AddNumberToObject(rec, "lanczos_runs", (double)d->lanczos_runs);
    cJSON_AddNumberToObject(rec, "negative_curvature_runs", (double)d->negative_runs);
    add_number(rec, "lambda_max_max", d->lmax_max);
    add_number(rec, "lambda_min_min", d->lmin_min);
}

void dpt_diagnose_summary(dpt_trainer *t, int console)
{
    dpt_diagnostics *d = t->diag;
    if (!d || t->comm.rank != 0) return;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "summary");
    cJSON_AddNumberToObject(rec, "step", (double)t->step);
    if (console) printf("diagnostics summary:\n");
    summary_curvature(d, rec, console);
    if (d->noise_on && d->noise.steps > 0) {
        char advice[512];
        noise_advice(t, &d->noise, advice, sizeof advice);
        if (console)
            printf("  gradient noise scale: B_simple = %.4g (EMA |G|^2 %.4g, tr(Sigma) %.4g over %ld steps):"
                   " %s\n", d->noise.b_simple, d->noise.ema_g2, d->noise.ema_s, d->noise.steps, advice);
        add_noise(rec, &d->noise);
        cJSON_AddStringToObject(rec, "noise_advice", advice);
    } else if (console && t->cfg->diag.noise_scale) {
        printf("  gradient noise scale: needs at least 2 ranks (local and global batch differ)\n");
    }
    summary_layers(t, rec, console);
    if (console) fflush(stdout);
    emit(d, rec);
}
