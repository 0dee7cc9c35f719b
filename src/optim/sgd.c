/* SGD, momentum and Nesterov momentum (Goodfellow et al., Deep Learning,
 * algorithms 8.1-8.3), with L2 weight decay folded into the gradient. The
 * gradient is grad[i] gs (rules.h). These loops are bound by memory (a
 * read of the gradient, a read and a write of theta and of the velocity
 * per element), so they are written to be one pass each: restrict tells
 * the compiler the arrays are distinct, which spares it the overlap checks
 * before its vector loop. */
#include "rules.h"

#include "../core/clones.h"

/* 8.1: theta <- theta - eps g */
DPT_CLONES void dpt_rule_sgd(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                  dpt_real gs, dpt_real eps)
{
    const dpt_real lambda = (dpt_real)opt->params.weight_decay;
    for (size_t i = 0; i < opt->n; i++) theta[i] -= eps * (grad[i] * gs + lambda * theta[i]);
}

/* 8.2: v <- alpha v - eps g; theta <- theta + v */
DPT_CLONES void dpt_rule_momentum(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                       dpt_real gs, dpt_real eps)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *restrict v = opt->first;
    for (size_t i = 0; i < opt->n; i++) {
        v[i] = alpha * v[i] - eps * (grad[i] * gs + lambda * theta[i]);
        theta[i] += v[i];
    }
}

/* 8.3 evaluates the gradient at the interim point theta + alpha v. We
 * store that point itself, phi = theta + alpha v, so the trainer always
 * takes gradients at the stored parameters (Bengio, Boulanger-Lewandowski,
 * Pascanu 2013, eq. 7). From v' = alpha v - eps g(phi) and theta' = theta + v'
 * follows phi' = phi + alpha v' - eps g(phi): the same trajectory. */
DPT_CLONES void dpt_rule_nesterov(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                       dpt_real gs, dpt_real eps)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *restrict v = opt->first;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = grad[i] * gs + lambda * theta[i];
        v[i] = alpha * v[i] - eps * g;
        theta[i] += alpha * v[i] - eps * g;
    }
}
