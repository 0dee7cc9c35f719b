/* SGD, momentum and Nesterov momentum (Goodfellow et al., Deep Learning,
 * algorithms 8.1-8.3), with L2 weight decay folded into the gradient. */
#include "rules.h"

/* 8.1: theta <- theta - eps g */
void dpt_rule_sgd(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real eps)
{
    const dpt_real lambda = (dpt_real)opt->params.weight_decay;
    for (size_t i = 0; i < opt->n; i++) theta[i] -= eps * (grad[i] + lambda * theta[i]);
}

/* 8.2: v <- alpha v - eps g; theta <- theta + v */
void dpt_rule_momentum(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real eps)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *v = opt->first;
    for (size_t i = 0; i < opt->n; i++) {
        v[i] = alpha * v[i] - eps * (grad[i] + lambda * theta[i]);
        theta[i] += v[i];
    }
}

/* 8.3 evaluates the gradient at the interim point theta + alpha v. We
 * store that point itself, phi = theta + alpha v, so the trainer always
 * takes gradients at the stored parameters (Bengio, Boulanger-Lewandowski,
 * Pascanu 2013, eq. 7). From v' = alpha v - eps g(phi) and theta' = theta + v'
 * follows phi' = phi + alpha v' - eps g(phi): the same trajectory. */
void dpt_rule_nesterov(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real eps)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *v = opt->first;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = grad[i] + lambda * theta[i];
        v[i] = alpha * v[i] - eps * g;
        theta[i] += alpha * v[i] - eps * g;
    }
}
