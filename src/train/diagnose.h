/* Internal to src/train: the trainer's [diagnostics] (dpt/diag.h numerics,
 * dpt/noise.h estimator) on the current minibatch of the data-parallel step.
 *
 * On a diagnostics step (every [diagnostics] every steps) the reduced mean
 * gradient g, before clipping, is probed before the update: g'g and g'Hg by
 * one Hessian-vector product on the step's minibatch (each rank its own
 * samples, summed over ranks: the Hessian of the same mean loss g is the
 * gradient of), the Taylor terms of dpt_curvature_probe, then k Lanczos
 * products for lambda_min and lambda_max. Every step with [diagnostics]
 * noise_scale on and more than one rank, each rank's |local mean gradient|^2
 * rides along in the reduction of the gradient norm (no extra message) and
 * feeds the gradient noise scale. Per-layer statistics on diagnostics steps
 * give the vanishing/exploding warnings.
 *
 * Rank 0 writes one JSON object per diagnostics step to [diagnostics] file
 * and a summary at the end. The Hessian here is that of the network without
 * dropout (dropout off, batch-norm running statistics) at the current
 * parameters, without weight decay: the loss surface the optimizer walks. */
#ifndef DPT_TRAIN_DIAGNOSE_H
#define DPT_TRAIN_DIAGNOSE_H

#include <stdio.h>

#include "dpt/diag.h"
#include "dpt/noise.h"
#include "dpt/train.h"

typedef struct dpt_layer_warning {
    long count[3];          /* per dpt_grad_health: checks that gave it */
    long first_step[3];
    double worst_ratio[3];  /* the smallest (vanishing) or largest (exploding) ratio seen */
} dpt_layer_warning;

typedef struct dpt_diagnostics {
    int every, lanczos_steps;
    int curvature_ok;        /* the model supports Hessian-vector products */
    char curvature_why[200]; /* why not */
    int noise_on;            /* noise scale estimated (noise_scale and 2+ ranks) */
    dpt_noise_scale noise;
    double local_sumsq;      /* this step: |this rank's gradient sum|^2 before the reduction */
    int local_norm_done;     /* local_sumsq is complete (overlapped: accumulated per layer) */
    dpt_curvature_ws ws;
    dpt_real *g, *hv_out;    /* [n] the full mean gradient, a product's result */
    dpt_real *neg_dir;       /* [n] lambda_min's Ritz vector */
    size_t global_count;     /* samples of the step being probed */
    /* this step's results */
    int have_probe, have_lanczos, have_noise;
    dpt_curvature_probe probe;
    dpt_lanczos_result lanczos;
    int neg_layer;           /* layer holding most of the negative-curvature direction, -1 */
    double neg_layer_share;
    /* the run so far (summary) */
    long probes, ill_steps, lanczos_runs, negative_runs;
    double ratio_min, ratio_max;   /* of g'Hg / g'g (curvature along g) */
    double eps_star_first, eps_star_last, lr_last;
    double lmin_min, lmin_max, lmax_min, lmax_max;
    dpt_layer_warning *warnings;   /* [model layers] */
    FILE *file;                    /* rank 0's JSON-lines file, or NULL */
} dpt_diagnostics;

/* Allocates t->diag when [diagnostics] every > 0 and the method is
 * first-order; rank 0 opens the file. Not collective (the caller agrees). */
dpt_status dpt_diagnose_setup(dpt_trainer *t);
void dpt_diagnose_teardown(dpt_trainer *t);

/* The step about to run (t->step + 1) is a diagnostics step. */
int dpt_diagnose_due(const dpt_trainer *t);

/* Before the reduction: adds |grads[lo, lo + n)|^2 of this rank's local
 * gradient sum (all of it, or one layer's range when overlapped). */
void dpt_diagnose_local_norm(dpt_trainer *t, size_t lo, size_t n);
/* Starts a step: clears the local norm. */
void dpt_diagnose_begin_step(dpt_trainer *t);
/* This rank's |local mean gradient|^2 for the reduction (0 when off). */
double dpt_diagnose_local_sq(dpt_trainer *t);
/* After the reduction: sum over ranks of the local squared norms, and
 * |G_big|^2 = the reduced mean gradient's squared norm. */
void dpt_diagnose_noise(dpt_trainer *t, double local_sq_sum, double big_sq, size_t global_count);

/* On a due step, before clipping and the update: the curvature probe and
 * Lanczos at the current parameters on the step's minibatch. The mean
 * gradient is t->model.grads[lo, lo + n) (the whole vector, or this rank's
 * slice when sharded). Collective. */
dpt_status dpt_diagnose_curvature(dpt_trainer *t, size_t lo, size_t n, size_t global_count);

/* The run record: batch sizes and bounds. Called when the run starts (after
 * any resume): a run from step 0 empties the file first, a resumed run
 * appends to the file of the run it continues. */
void dpt_diagnose_header(dpt_trainer *t);
/* After the update (layer statistics ready): layer checks, the record, the
 * console line. Rank 0 writes; all ranks may call. */
void dpt_diagnose_report(dpt_trainer *t, int console);
/* The end of training: the summary on stdout and as a record. */
void dpt_diagnose_summary(dpt_trainer *t, int console);

#endif /* DPT_TRAIN_DIAGNOSE_H */
