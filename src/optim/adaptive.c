/* Algorithms with adaptive learning rates (Goodfellow et al., Deep
 * Learning, section 8.5): AdaGrad, RMSProp, RMSProp with Nesterov momentum,
 * Adam, and Adam with decoupled weight decay. Square roots and divisions
 * in dpt_real; the bias corrections of Adam in double. */
#include <math.h>

#include "rules.h"

#include "../core/clones.h"

/* The gradient grad[i] gs (rules.h) with L2 weight decay: the gradient of
 * (lambda / 2) |theta|^2 added to it. */
static dpt_real decayed(const dpt_optimizer *opt, const dpt_real *theta, const dpt_real *grad,
                        dpt_real gs, size_t i)
{
    return grad[i] * gs + (dpt_real)opt->params.weight_decay * theta[i];
}

/* 8.4: r <- r + g . g;  theta <- theta - eps / (delta + sqrt(r)) . g */
DPT_CLONES void dpt_rule_adagrad(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                      dpt_real gs, dpt_real eps)
{
    const dpt_real delta = (dpt_real)dpt_optim_delta(&opt->params);
    dpt_real *restrict r = opt->second;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = decayed(opt, theta, grad, gs, i);
        r[i] += g * g;
        theta[i] -= eps * g / (delta + dpt_sqrt(r[i]));
    }
}

/* 8.5: r <- rho r + (1 - rho) g . g;  theta <- theta - eps / sqrt(delta + r) . g */
DPT_CLONES void dpt_rule_rmsprop(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                      dpt_real gs, dpt_real eps)
{
    const dpt_real rho = (dpt_real)opt->params.rho, delta = (dpt_real)dpt_optim_delta(&opt->params);
    const dpt_real one_minus = (dpt_real)(1 - opt->params.rho);
    dpt_real *restrict r = opt->second;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = decayed(opt, theta, grad, gs, i);
        r[i] = rho * r[i] + one_minus * g * g;
        theta[i] -= eps * g / dpt_sqrt(delta + r[i]);
    }
}

/* 8.6: g at the interim point theta + alpha v; r <- rho r + (1 - rho) g . g;
 * v <- alpha v - eps / sqrt(r) . g; theta <- theta + v. As for Nesterov
 * (sgd.c) we store phi = theta + alpha v, which moves by alpha v' - u with
 * u = eps g / sqrt(r). The book divides by sqrt(r) alone; we use
 * sqrt(delta + r) as in 8.5, so that a zero gradient cannot divide by zero. */
DPT_CLONES void dpt_rule_rmsprop_nesterov(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                               dpt_real gs, dpt_real eps)
{
    const dpt_real rho = (dpt_real)opt->params.rho, alpha = (dpt_real)opt->params.momentum;
    const dpt_real delta = (dpt_real)dpt_optim_delta(&opt->params);
    const dpt_real one_minus = (dpt_real)(1 - opt->params.rho);
    dpt_real *restrict v = opt->first, *restrict r = opt->second;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = decayed(opt, theta, grad, gs, i);
        r[i] = rho * r[i] + one_minus * g * g;
        dpt_real u = eps * g / dpt_sqrt(delta + r[i]);
        v[i] = alpha * v[i] - u;
        theta[i] += alpha * v[i] - u;
    }
}

/* 8.7: t <- t + 1; s <- rho1 s + (1 - rho1) g; r <- rho2 r + (1 - rho2) g . g;
 * s_hat = s / (1 - rho1^t); r_hat = r / (1 - rho2^t);
 * theta <- theta - eps s_hat / (sqrt(r_hat) + delta).
 * adamw: the gradient carries no L2 term; instead theta <- theta - eps
 * lambda theta at the same step (decoupled weight decay, Loshchilov &
 * Hutter 2019, with the schedule's eps as their eta_t alpha). */
DPT_CLONES void dpt_rule_adam(dpt_optimizer *opt, dpt_real *restrict theta, const dpt_real *restrict grad,
                   dpt_real gs, dpt_real eps)
{
    const dpt_optim_params *p = &opt->params;
    const int decoupled = p->method == DPT_OPTIM_ADAMW;
    /* 1 - rho in double, then rounded: (1 - (float)rho2) loses the digits
     * that the bias correction (computed in double) relies on */
    const dpt_real rho1 = (dpt_real)p->beta1, rho2 = (dpt_real)p->beta2;
    const dpt_real one_minus1 = (dpt_real)(1 - p->beta1), one_minus2 = (dpt_real)(1 - p->beta2);
    const dpt_real delta = (dpt_real)dpt_optim_delta(p), lambda = (dpt_real)p->weight_decay;
    const double t = (double)(opt->step + 1);
    const dpt_real correct1 = (dpt_real)(1.0 / (1.0 - pow(p->beta1, t)));
    const dpt_real correct2 = (dpt_real)(1.0 / (1.0 - pow(p->beta2, t)));
    dpt_real *restrict s = opt->first, *restrict r = opt->second;
    for (size_t i = 0; i < opt->n; i++) {
        dpt_real g = decoupled ? grad[i] * gs : grad[i] * gs + lambda * theta[i];
        s[i] = rho1 * s[i] + one_minus1 * g;
        r[i] = rho2 * r[i] + one_minus2 * g * g;
        dpt_real step = eps * (s[i] * correct1) / (dpt_sqrt(r[i] * correct2) + delta);
        theta[i] -= step + (decoupled ? eps * lambda * theta[i] : 0);
    }
}
