/* Learning-rate schedules. */
#include "dpt/optim.h"

const char *dpt_schedule_name(dpt_schedule_kind kind)
{
    switch (kind) {
    case DPT_SCHED_CONSTANT: return "constant";
    case DPT_SCHED_LINEAR: return "linear";
    }
    return "?";
}

double dpt_schedule_lr(const dpt_optim_params *params, long step)
{
    if (params->schedule == DPT_SCHED_CONSTANT) return params->lr;
    /* Goodfellow et al., Deep Learning, eq. 8.14: with alpha = k / tau,
     * eps_k = (1 - alpha) eps_0 + alpha eps_tau for k < tau, eps_tau after. */
    long tau = params->decay_steps > 0 ? params->decay_steps : 1;
    if (step >= tau) return params->lr_final;
    double alpha = (double)step / (double)tau;
    return (1 - alpha) * params->lr + alpha * params->lr_final;
}
