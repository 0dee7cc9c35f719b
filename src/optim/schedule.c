/* Learning-rate schedules, with an optional linear warmup in front. */
#include <math.h>

#include "dpt/optim.h"

static const char *const schedule_names[DPT_SCHED_COUNT_] = {
    [DPT_SCHED_CONSTANT] = "constant", [DPT_SCHED_LINEAR] = "linear", [DPT_SCHED_STEP] = "step",
    [DPT_SCHED_EXPONENTIAL] = "exponential", [DPT_SCHED_COSINE] = "cosine"};

const char *dpt_schedule_name(dpt_schedule_kind kind)
{
    return (unsigned)kind < DPT_SCHED_COUNT_ ? schedule_names[kind] : "?";
}

/* The schedule itself, k counted from the end of the warmup. */
static double decayed_lr(const dpt_optim_params *p, long k)
{
    const double eps0 = p->lr, eps_tau = p->lr_final;
    const long tau = p->decay_steps > 0 ? p->decay_steps : 1;
    const double frac = k >= tau ? 1.0 : (double)k / (double)tau;
    switch (p->schedule) {
    case DPT_SCHED_LINEAR: /* Goodfellow et al., Deep Learning, eq. 8.14 */
        return (1 - frac) * eps0 + frac * eps_tau;
    case DPT_SCHED_STEP:
        return eps0 * pow(p->gamma, (double)(k / (p->step_size > 0 ? p->step_size : 1)));
    case DPT_SCHED_EXPONENTIAL: /* geometric from eps_0 to eps_tau over tau steps */
        return eps_tau > 0 ? eps0 * pow(eps_tau / eps0, frac) : eps0 * (1 - frac);
    case DPT_SCHED_COSINE: /* Loshchilov & Hutter 2017, one cycle without restarts */
        return eps_tau + (eps0 - eps_tau) * 0.5 * (1 + cos(M_PI * frac));
    default:
        return eps0;
    }
}

double dpt_schedule_lr(const dpt_optim_params *p, long step)
{
    /* linear warmup (Goyal et al. 2017, section 2.2, "gradual warmup"):
     * eps_0 (k + 1) / W for the first W updates */
    if (step < p->warmup_steps) return p->lr * (double)(step + 1) / (double)p->warmup_steps;
    return decayed_lr(p, step - p->warmup_steps);
}
