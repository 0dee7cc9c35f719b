/* SGD, momentum and Nesterov momentum (Goodfellow et al., Deep Learning,
 * algorithms 8.1-8.3), with L2 weight decay folded into the gradient. */
#include "dpt/optim.h"

#include <stdlib.h>
#include <string.h>

const char *dpt_optim_method_name(dpt_optim_method method)
{
    switch (method) {
    case DPT_OPTIM_SGD: return "sgd";
    case DPT_OPTIM_MOMENTUM: return "momentum";
    case DPT_OPTIM_NESTEROV: return "nesterov";
    }
    return "?";
}

void dpt_optim_params_init(dpt_optim_params *params)
{
    params->method = DPT_OPTIM_SGD;
    params->lr = 0.01;
    params->momentum = 0.9;
    params->weight_decay = 0;
    params->schedule = DPT_SCHED_CONSTANT;
    params->lr_final = params->lr / 100;
    params->decay_steps = 1;
}

dpt_status dpt_optimizer_create(dpt_optimizer *opt, const dpt_optim_params *params, size_t n)
{
    memset(opt, 0, sizeof *opt);
    /* written as !(valid) so that NaN is rejected too */
    if (!(params->lr > 0) || !(params->momentum >= 0 && params->momentum < 1) ||
        !(params->weight_decay >= 0) || !(params->lr_final >= 0) || params->decay_steps < 1)
        return DPT_FAIL(DPT_ERR_ARG, "bad optimizer parameters (lr %g, momentum %g, weight decay %g, "
                        "lr_final %g, decay_steps %ld)", params->lr, params->momentum,
                        params->weight_decay, params->lr_final, params->decay_steps);
    opt->params = *params;
    opt->n = n;
    if (params->method != DPT_OPTIM_SGD) {
        opt->velocity = calloc(n, sizeof(dpt_real));
        if (!opt->velocity)
            return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for %zu velocities", n);
    }
    return DPT_OK;
}

void dpt_optimizer_destroy(dpt_optimizer *opt)
{
    free(opt->velocity);
    memset(opt, 0, sizeof *opt);
}

double dpt_optimizer_step(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad)
{
    const double lr_now = dpt_schedule_lr(&opt->params, opt->step);
    const dpt_real eps = (dpt_real)lr_now;
    const dpt_real alpha = (dpt_real)opt->params.momentum;
    const dpt_real lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *v = opt->velocity;
    const size_t n = opt->n;
    switch (opt->params.method) {
    case DPT_OPTIM_SGD: /* 8.1: theta <- theta - eps g */
        for (size_t i = 0; i < n; i++) theta[i] -= eps * (grad[i] + lambda * theta[i]);
        break;
    case DPT_OPTIM_MOMENTUM: /* 8.2: v <- alpha v - eps g; theta <- theta + v */
        for (size_t i = 0; i < n; i++) {
            v[i] = alpha * v[i] - eps * (grad[i] + lambda * theta[i]);
            theta[i] += v[i];
        }
        break;
    case DPT_OPTIM_NESTEROV:
        /* 8.3 evaluates the gradient at the interim point theta + alpha v.
         * We store that point itself, phi = theta + alpha v, so the trainer
         * always takes gradients at the stored parameters (Bengio,
         * Boulanger-Lewandowski, Pascanu 2013, eq. 7). From
         * v' = alpha v - eps g(phi) and theta' = theta + v' follows
         * phi' = phi + alpha v' - eps g(phi): the same trajectory. */
        for (size_t i = 0; i < n; i++) {
            dpt_real g = grad[i] + lambda * theta[i];
            v[i] = alpha * v[i] - eps * g;
            theta[i] += alpha * v[i] - eps * g;
        }
        break;
    }
    opt->step++;
    return lr_now;
}
