/* dpt/optim.h - first-order optimizers and learning-rate schedules.
 *
 * An optimizer updates a flat parameter vector from the flat, already
 * averaged gradient. Every rank calls it with the same inputs, so every rank
 * stays identical without further communication.
 */
#ifndef DPT_OPTIM_H
#define DPT_OPTIM_H

#include <stddef.h>

#include "dpt/error.h"
#include "dpt/real.h"

typedef enum dpt_optim_method {
    DPT_OPTIM_SGD = 0,  /* Goodfellow et al., Deep Learning, algorithm 8.1 */
    DPT_OPTIM_MOMENTUM, /* algorithm 8.2 */
    DPT_OPTIM_NESTEROV  /* algorithm 8.3 */
} dpt_optim_method;

typedef enum dpt_schedule_kind {
    DPT_SCHED_CONSTANT = 0,
    DPT_SCHED_LINEAR /* eps_k = (1 - k/tau) eps_0 + (k/tau) eps_tau, then eps_tau (eq. 8.14) */
} dpt_schedule_kind;

const char *dpt_optim_method_name(dpt_optim_method method);
const char *dpt_schedule_name(dpt_schedule_kind kind);

typedef struct dpt_optim_params {
    dpt_optim_method method;
    double lr;             /* eps_0 */
    double momentum;       /* alpha, in [0, 1) */
    double weight_decay;   /* lambda: adds lambda * theta to the gradient (L2 penalty lambda/2 |theta|^2) */
    dpt_schedule_kind schedule;
    double lr_final;       /* eps_tau for the linear schedule */
    long decay_steps;      /* tau, in steps; > 0 */
} dpt_optim_params;

/* Defaults: SGD, lr 0.01, momentum 0.9, no weight decay, constant schedule,
 * lr_final = lr / 100, decay_steps 1. */
void dpt_optim_params_init(dpt_optim_params *params);

/* The learning rate of step k (k = 0 for the first step). */
double dpt_schedule_lr(const dpt_optim_params *params, long step);

typedef struct dpt_optimizer {
    dpt_optim_params params;
    size_t n;
    dpt_real *velocity; /* [n], NULL for plain SGD */
    long step;          /* steps taken so far */
} dpt_optimizer;

dpt_status dpt_optimizer_create(dpt_optimizer *opt, const dpt_optim_params *params, size_t n);
void dpt_optimizer_destroy(dpt_optimizer *opt);

/* One update of theta[n] with the gradient of the mean loss grad[n]
 * (weight decay is added here). Returns the learning rate it used. */
double dpt_optimizer_step(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad);

#endif /* DPT_OPTIM_H */
