/* Internal to src/optim: the update rules, one function per algorithm.
 * Each takes the learning rate of this update and the gradient of the mean
 * loss as grad[i] gs (gs = 1: grad is that gradient; the trainer passes the
 * sum over samples and 1 / count, so that the average is never written
 * back), and updates theta[n] and its own state in place. theta, grad and
 * the state vectors are distinct arrays. The rules of sgd.c also take
 * sumsq: when not NULL they set it to sum_i (grad[i] gs)^2, from the same
 * pass (dpt_optimizer_step_sumsq), and clear: when set they zero grad in
 * that pass (dpt_optimizer_step_clear). */
#ifndef DPT_OPTIM_RULES_H
#define DPT_OPTIM_RULES_H

#include "dpt/optim.h"

void dpt_rule_sgd(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real gs,
                  dpt_real lr, double *sumsq, int clear);
void dpt_rule_momentum(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real gs,
                       dpt_real lr, double *sumsq, int clear);
void dpt_rule_nesterov(dpt_optimizer *opt, dpt_real *theta, dpt_real *grad, dpt_real gs,
                       dpt_real lr, double *sumsq, int clear);
void dpt_rule_adagrad(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real gs,
                      dpt_real lr);
void dpt_rule_rmsprop(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real gs,
                      dpt_real lr);
void dpt_rule_rmsprop_nesterov(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real gs,
                               dpt_real lr);
void dpt_rule_adam(dpt_optimizer *opt, dpt_real *theta, const dpt_real *grad, dpt_real gs,
                   dpt_real lr);

#endif /* DPT_OPTIM_RULES_H */
