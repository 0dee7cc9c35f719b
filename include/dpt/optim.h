/* dpt/optim.h - first-order optimizers and learning-rate schedules.
 *
 * An optimizer updates a flat parameter vector from the flat, already
 * averaged gradient. Every update rule here is element-wise, so the same
 * optimizer can run on the whole vector (every rank identical) or on one
 * rank's slice of it with only that slice's state (sharded optimizer state,
 * like ZeRO stage 1): create it for the slice length and pass pointers into
 * the slice.
 */
#ifndef DPT_OPTIM_H
#define DPT_OPTIM_H

#include <stddef.h>

#include "dpt/error.h"
#include "dpt/real.h"

/* Goodfellow, Bengio, Courville, Deep Learning (2016), chapter 8. */
typedef enum dpt_optim_method {
    DPT_OPTIM_SGD = 0,          /* algorithm 8.1 */
    DPT_OPTIM_MOMENTUM,         /* algorithm 8.2 */
    DPT_OPTIM_NESTEROV,         /* algorithm 8.3 */
    DPT_OPTIM_ADAGRAD,          /* algorithm 8.4 */
    DPT_OPTIM_RMSPROP,          /* algorithm 8.5 */
    DPT_OPTIM_RMSPROP_NESTEROV, /* algorithm 8.6 */
    DPT_OPTIM_ADAM,             /* algorithm 8.7 */
    DPT_OPTIM_ADAMW,            /* 8.7 with decoupled weight decay (Loshchilov & Hutter 2019) */
    /* second-order, full batch: run by the trainer through src/solve, not
     * by dpt_optimizer_step (which refuses them) */
    DPT_OPTIM_LBFGS,            /* Nocedal & Wright algorithm 7.5 */
    DPT_OPTIM_CG,               /* nonlinear CG, Polak-Ribiere+ */
    DPT_OPTIM_CG_FR,            /* nonlinear CG, Fletcher-Reeves */
    DPT_OPTIM_NEWTON_CG,        /* Hessian-free Newton-CG (Martens 2010) */
    DPT_OPTIM_NEWTON,           /* damped Newton on an explicit ScaLAPACK curvature matrix */
    DPT_OPTIM_BFGS,             /* BFGS, dense distributed inverse Hessian (N&W algorithm 6.1) */
    DPT_OPTIM_COUNT_
} dpt_optim_method;

typedef enum dpt_schedule_kind {
    DPT_SCHED_CONSTANT = 0,
    DPT_SCHED_LINEAR,      /* eq. 8.14: (1 - k/tau) eps_0 + (k/tau) eps_tau, then eps_tau */
    DPT_SCHED_STEP,        /* eps_0 gamma^floor(k / step_size) */
    DPT_SCHED_EXPONENTIAL, /* eps_0 (eps_tau / eps_0)^(k / tau), then eps_tau; with
                              eps_tau = 0 (no geometric path to 0) linear to 0 */
    DPT_SCHED_COSINE,      /* eps_tau + (eps_0 - eps_tau)(1 + cos(pi k / tau)) / 2, then eps_tau */
    DPT_SCHED_COUNT_
} dpt_schedule_kind;

const char *dpt_optim_method_name(dpt_optim_method method);
/* 1 for the full-batch second-order methods (lbfgs, cg, cg_fr, newton_cg, newton, bfgs). */
int dpt_optim_is_second_order(dpt_optim_method method);
/* Vectors of the parameters' size a first-order method keeps (0: SGD, 1:
 * momentum, Nesterov, AdaGrad, RMSProp; 2: Adam, RMSProp with Nesterov). */
int dpt_optim_state_vectors(dpt_optim_method method);
const char *dpt_schedule_name(dpt_schedule_kind kind);

typedef struct dpt_optim_params {
    dpt_optim_method method;
    double lr;             /* eps_0 (after the linear scaling rule, if any) */
    double momentum;       /* alpha, in [0, 1): momentum, nesterov, rmsprop_nesterov */
    double rho;            /* decay rate of RMSProp's squared-gradient average */
    double beta1, beta2;   /* Adam's rho_1, rho_2 */
    double delta;          /* small constant; 0: the book's (AdaGrad 1e-7, RMSProp 1e-6, Adam 1e-8) */
    double weight_decay;   /* lambda: L2 (adds lambda theta to the gradient), decoupled for adamw */
    dpt_schedule_kind schedule;
    double lr_final;       /* eps_tau of linear, exponential, cosine */
    long decay_steps;      /* tau, in steps after the warmup; > 0 */
    long step_size;        /* step schedule: steps between decays */
    double gamma;          /* step schedule: factor per decay */
    long warmup_steps;     /* linear warmup from eps_0 / warmup_steps to eps_0 first; 0: none */
} dpt_optim_params;

/* Defaults: SGD, lr 0.01, momentum 0.9, rho 0.9, beta1 0.9, beta2 0.999,
 * delta 0 (the book's per method), no weight decay, constant schedule,
 * lr_final = lr / 100, decay_steps 1, step_size 1, gamma 0.1, no warmup. */
void dpt_optim_params_init(dpt_optim_params *params);

/* The learning rate of update k (k = 0 for the first one). */
double dpt_schedule_lr(const dpt_optim_params *params, long step);

/* The delta a method uses: params->delta if set, else the book's. */
double dpt_optim_delta(const dpt_optim_params *params);

typedef struct dpt_optimizer {
    dpt_optim_params params;
    size_t n;
    dpt_real *first;  /* [n] velocity v (momentum family) or Adam's s; NULL if unused */
    dpt_real *second; /* [n] accumulated squared gradient r; NULL if unused */
    long step;        /* updates made so far */
} dpt_optimizer;

dpt_status dpt_optimizer_create(dpt_optimizer *opt, const dpt_optim_params *params, size_t n);
void dpt_optimizer_destroy(dpt_optimizer *opt);

/* Bytes of optimizer state this optimizer holds (its slice's moments). */
size_t dpt_optimizer_state_bytes(const dpt_optimizer *opt);

/* One update of theta[n] with the gradient of the mean loss grad[n] (weight
 * decay is applied here). Returns the learning rate it used. */
double dpt_optimizer_step(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad);
/* The same with the gradient given as grad[i] grad_scale (each product
 * rounded to dpt_real, as if grad had been scaled in place first): the
 * trainer passes the gradient summed over samples and 1 / count, sparing a
 * pass that would write the average back. theta, grad and the state must
 * not overlap. */
double dpt_optimizer_step_scaled(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad,
                                 dpt_real grad_scale);
/* The same, and *grad_sumsq = sum_i (grad[i] grad_scale)^2 in double, the
 * squared norm of the gradient the update used, equal bit for bit to a
 * separate sum over grad before the update. SGD, momentum and Nesterov
 * form it in the update's own pass (one read of the gradient instead of
 * two); the adaptive methods in a pass before theirs. grad_sumsq NULL:
 * as dpt_optimizer_step_scaled. */
double dpt_optimizer_step_sumsq(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad,
                                dpt_real grad_scale, double *grad_sumsq);
/* The same, and grad[n] is zero afterwards, ready for the next backward
 * pass to accumulate into: SGD, momentum and Nesterov zero each element
 * in their pass once they have read it (no memset of its own later). */
double dpt_optimizer_step_clear(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real grad_scale,
                                double *grad_sumsq);

#endif /* DPT_OPTIM_H */
