/* Optimizer state and the dispatch to the update rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/vec.h"
#include "rules.h"

static const char *const method_names[DPT_OPTIM_COUNT_] = {
    [DPT_OPTIM_SGD] = "sgd", [DPT_OPTIM_MOMENTUM] = "momentum", [DPT_OPTIM_NESTEROV] = "nesterov",
    [DPT_OPTIM_ADAGRAD] = "adagrad", [DPT_OPTIM_RMSPROP] = "rmsprop",
    [DPT_OPTIM_RMSPROP_NESTEROV] = "rmsprop_nesterov", [DPT_OPTIM_ADAM] = "adam",
    [DPT_OPTIM_ADAMW] = "adamw", [DPT_OPTIM_LBFGS] = "lbfgs", [DPT_OPTIM_CG] = "cg",
    [DPT_OPTIM_CG_FR] = "cg_fr", [DPT_OPTIM_NEWTON_CG] = "newton_cg",
    [DPT_OPTIM_NEWTON] = "newton", [DPT_OPTIM_BFGS] = "bfgs"};

int dpt_optim_is_second_order(dpt_optim_method method)
{
    return method >= DPT_OPTIM_LBFGS && method < DPT_OPTIM_COUNT_;
}

const char *dpt_optim_method_name(dpt_optim_method method)
{
    return (unsigned)method < DPT_OPTIM_COUNT_ ? method_names[method] : "?";
}

void dpt_optim_params_init(dpt_optim_params *params)
{
    memset(params, 0, sizeof *params);
    params->method = DPT_OPTIM_SGD;
    params->lr = 0.01;
    params->momentum = 0.9;
    params->rho = 0.9;
    params->beta1 = 0.9;
    params->beta2 = 0.999;
    params->schedule = DPT_SCHED_CONSTANT;
    params->lr_final = params->lr / 100;
    params->decay_steps = 1;
    params->step_size = 1;
    params->gamma = 0.1;
}

double dpt_optim_delta(const dpt_optim_params *params)
{
    if (params->delta > 0) return params->delta;
    switch (params->method) {
    case DPT_OPTIM_ADAGRAD: return 1e-7;                                 /* algorithm 8.4 */
    case DPT_OPTIM_RMSPROP: case DPT_OPTIM_RMSPROP_NESTEROV: return 1e-6; /* 8.5 */
    default: return 1e-8;                                                /* 8.7 */
    }
}

/* Which state vectors a method keeps. */
static void state_needs(dpt_optim_method m, int *first, int *second)
{
    *first = m == DPT_OPTIM_MOMENTUM || m == DPT_OPTIM_NESTEROV || m == DPT_OPTIM_RMSPROP_NESTEROV ||
             m == DPT_OPTIM_ADAM || m == DPT_OPTIM_ADAMW;
    *second = m >= DPT_OPTIM_ADAGRAD;
}

int dpt_optim_state_vectors(dpt_optim_method method)
{
    int first, second;
    state_needs(method, &first, &second);
    return first + second;
}

static int valid(const dpt_optim_params *p)
{
    /* written as !(valid) tests so that NaN fails them too */
    return (unsigned)p->method < DPT_OPTIM_COUNT_ && (unsigned)p->schedule < DPT_SCHED_COUNT_ &&
           p->lr > 0 && isfinite(p->lr) && isfinite(p->lr_final) && isfinite(p->gamma) &&
           isfinite(p->weight_decay) && isfinite(p->delta) && p->momentum >= 0 && p->momentum < 1 && p->rho >= 0 && p->rho < 1 &&
           p->beta1 >= 0 && p->beta1 < 1 && p->beta2 >= 0 && p->beta2 < 1 && p->delta >= 0 &&
           p->weight_decay >= 0 && p->lr_final >= 0 && p->decay_steps >= 1 && p->step_size >= 1 &&
           p->gamma > 0 && p->warmup_steps >= 0;
}

dpt_status dpt_optimizer_create(dpt_optimizer *opt, const dpt_optim_params *params, size_t n)
{
    memset(opt, 0, sizeof *opt);
    if (!valid(params))
        return DPT_FAIL(DPT_ERR_ARG, "bad optimizer parameters (%s: lr %g, momentum %g, rho %g, "
                        "beta1 %g, beta2 %g, delta %g, weight decay %g, lr_final %g, decay_steps %ld, "
                        "step_size %ld, gamma %g, warmup %ld)", dpt_optim_method_name(params->method),
                        params->lr, params->momentum, params->rho, params->beta1, params->beta2,
                        params->delta, params->weight_decay, params->lr_final, params->decay_steps,
                        params->step_size, params->gamma, params->warmup_steps);
    if (dpt_optim_is_second_order(params->method))
        return DPT_FAIL(DPT_ERR_ARG, "%s is a full-batch second-order method: the trainer runs it "
                        "through the solvers (src/solve), not as a step rule",
                        dpt_optim_method_name(params->method));
    opt->params = *params;
    opt->n = n;
    int first, second;
    state_needs(params->method, &first, &second);
    /* walked through at every step, like the parameters: huge pages */
    if (first) opt->first = dpt_calloc_large(n ? n : 1, sizeof(dpt_real));
    if (second) opt->second = dpt_calloc_large(n ? n : 1, sizeof(dpt_real));
    if ((first && !opt->first) || (second && !opt->second)) {
        dpt_optimizer_destroy(opt);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the optimizer state of %zu parameters", n);
    }
    return DPT_OK;
}

void dpt_optimizer_destroy(dpt_optimizer *opt)
{
    free(opt->first);
    free(opt->second);
    memset(opt, 0, sizeof *opt);
}

size_t dpt_optimizer_state_bytes(const dpt_optimizer *opt)
{
    return ((opt->first != NULL) + (opt->second != NULL)) * opt->n * sizeof(dpt_real);
}

/* One update; clear: leave grad zero (in the pass of SGD, momentum and
 * Nesterov, after the adaptive rules by a pass of its own). */
static double update(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real grad_scale,
                     double *grad_sumsq, int clear)
{
    const double lr = dpt_schedule_lr(&opt->params, opt->step);
    const dpt_real eps = (dpt_real)lr, gs = grad_scale;
    const dpt_optim_method method = opt->params.method;
    /* the adaptive rules have no fused sum: a pass of its own over the
     * gradient before they run */
    int fused = method == DPT_OPTIM_SGD || method == DPT_OPTIM_MOMENTUM || method == DPT_OPTIM_NESTEROV;
    if (grad_sumsq && !fused) *grad_sumsq = dpt_vec_sumsq_scaled(grad, opt->n, gs);
    switch (method) {
    case DPT_OPTIM_SGD: dpt_rule_sgd(opt, theta, grad, gs, eps, grad_sumsq, clear); break;
    case DPT_OPTIM_MOMENTUM: dpt_rule_momentum(opt, theta, grad, gs, eps, grad_sumsq, clear); break;
    case DPT_OPTIM_NESTEROV: dpt_rule_nesterov(opt, theta, grad, gs, eps, grad_sumsq, clear); break;
    case DPT_OPTIM_ADAGRAD: dpt_rule_adagrad(opt, theta, grad, gs, eps); break;
    case DPT_OPTIM_RMSPROP: dpt_rule_rmsprop(opt, theta, grad, gs, eps); break;
    case DPT_OPTIM_RMSPROP_NESTEROV: dpt_rule_rmsprop_nesterov(opt, theta, grad, gs, eps); break;
    case DPT_OPTIM_ADAM: case DPT_OPTIM_ADAMW: dpt_rule_adam(opt, theta, grad, gs, eps); break;
    default: break;
    }
    if (clear && !fused) memset(grad, 0, sizeof(dpt_real) * opt->n);
    opt->step++;
    return lr;
}

double dpt_optimizer_step(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad)
{
    return dpt_optimizer_step_scaled(opt, theta, grad, 1);
}

double dpt_optimizer_step_scaled(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad,
                                 dpt_real grad_scale)
{
    return dpt_optimizer_step_sumsq(opt, theta, grad, grad_scale, NULL);
}

double dpt_optimizer_step_sumsq(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad,
                                dpt_real grad_scale, double *grad_sumsq)
{
    /* clear 0: the rules only read grad */
    return update(opt, theta, (dpt_real *)grad, grad_scale, grad_sumsq, 0);
}

double dpt_optimizer_step_clear(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real grad_scale,
                                double *grad_sumsq)
{
    return update(opt, theta, grad, grad_scale, grad_sumsq, 1);
}
