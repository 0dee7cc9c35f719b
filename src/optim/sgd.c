/* SGD, momentum and Nesterov momentum (Goodfellow et al., Deep Learning,
 * algorithms 8.1-8.3), with L2 weight decay folded into the gradient. The
 * gradient is grad[i] gs (rules.h). These loops are bound by memory (a
 * read of the gradient, a read and a write of theta and of the velocity
 * per element), so they are written to be one pass each: restrict tells
 * the compiler the arrays are distinct, which spares it the overlap checks
 * before its vector loop. */
#include "rules.h"

#include "../core/clones.h"

/* The loop of each rule here: ELEMENT for every j < n, with g = grad[j] gs
 * rounded to dpt_real. When sumsq is not NULL the same pass sums g^2 in
 * double into *sumsq, in eight lanes added up at the end as
 * dpt_vec_sumsq_scaled adds them: the gradient's norm bit for bit as that
 * separate pass gives it, without reading the gradient twice (on the
 * default MLP the separate pass took a third as long as the update). When
 * clear is set it also zeroes grad[j] once read, for the next step's
 * backward to accumulate into: the line is in the cache already, where a
 * memset of its own at the start of the next step cost 4.7% of a 1-rank
 * step of the default MLP (0.071 ms of 1.50). RULE_EXPAND writes the loop
 * four times, with sumsq a constant NULL or not and clear a constant 0 or
 * 1, so that no copy tests them per element. */
#define RULE_LANES 8
#define RULE_LOOP(n, grad, gs, sumsq, clear, ELEMENT)                         \
    do {                                                                      \
        double part_[RULE_LANES] = {0}, sum_ = 0;                             \
        size_t i_ = 0;                                                        \
        for (; i_ + RULE_LANES <= (n); i_ += RULE_LANES)                      \
            for (int k_ = 0; k_ < RULE_LANES; k_++) {                         \
                const size_t j = i_ + (size_t)k_;                             \
                const dpt_real g = (grad)[j] * (gs);                          \
                if (sumsq) part_[k_] += (double)g * (double)g;                \
                ELEMENT;                                                      \
                if (clear) (grad)[j] = 0;                                     \
            }                                                                 \
        for (; i_ < (n); i_++) {                                              \
            const size_t j = i_;                                              \
            const dpt_real g = (grad)[j] * (gs);                              \
            if (sumsq) sum_ += (double)g * (double)g;                         \
            ELEMENT;                                                          \
            if (clear) (grad)[j] = 0;                                         \
        }                                                                     \
        if (sumsq) {                                                          \
            for (int k_ = 0; k_ < RULE_LANES; k_++) sum_ += part_[k_];        \
            *(sumsq) = sum_;                                                  \
        }                                                                     \
    } while (0)
#define RULE_EXPAND(n, grad, gs, sumsq, clear, ELEMENT)                 \
    do {                                                                \
        double *const no_sum_ = NULL;                                   \
        if (sumsq && clear) RULE_LOOP(n, grad, gs, sumsq, 1, ELEMENT);  \
        else if (sumsq) RULE_LOOP(n, grad, gs, sumsq, 0, ELEMENT);      \
        else if (clear) RULE_LOOP(n, grad, gs, no_sum_, 1, ELEMENT);    \
        else RULE_LOOP(n, grad, gs, no_sum_, 0, ELEMENT);               \
    } while (0)

/* 8.1: theta <- theta - eps g */
DPT_CLONES void dpt_rule_sgd(dpt_optimizer *opt, dpt_real *restrict theta, dpt_real *restrict grad,
                             dpt_real gs, dpt_real eps, double *sumsq, int clear)
{
    const dpt_real lambda = (dpt_real)opt->params.weight_decay;
#define SGD_ELEMENT theta[j] -= eps * (g + lambda * theta[j])
    RULE_EXPAND(opt->n, grad, gs, sumsq, clear, SGD_ELEMENT);
#undef SGD_ELEMENT
}

/* 8.2: v <- alpha v - eps g; theta <- theta + v */
DPT_CLONES void dpt_rule_momentum(dpt_optimizer *opt, dpt_real *restrict theta, dpt_real *restrict grad,
                                  dpt_real gs, dpt_real eps, double *sumsq, int clear)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *restrict v = opt->first;
#define MOMENTUM_ELEMENT                                   \
    do {                                                   \
        v[j] = alpha * v[j] - eps * (g + lambda * theta[j]); \
        theta[j] += v[j];                                  \
    } while (0)
    RULE_EXPAND(opt->n, grad, gs, sumsq, clear, MOMENTUM_ELEMENT);
#undef MOMENTUM_ELEMENT
}

/* 8.3 evaluates the gradient at the interim point theta + alpha v. We
 * store that point itself, phi = theta + alpha v, so the trainer always
 * takes gradients at the stored parameters (Bengio, Boulanger-Lewandowski,
 * Pascanu 2013, eq. 7). From v' = alpha v - eps g(phi) and theta' = theta + v'
 * follows phi' = phi + alpha v' - eps g(phi): the same trajectory. */
DPT_CLONES void dpt_rule_nesterov(dpt_optimizer *opt, dpt_real *restrict theta, dpt_real *restrict grad,
                                  dpt_real gs, dpt_real eps, double *sumsq, int clear)
{
    const dpt_real alpha = (dpt_real)opt->params.momentum, lambda = (dpt_real)opt->params.weight_decay;
    dpt_real *restrict v = opt->first;
#define NESTEROV_ELEMENT                              \
    do {                                              \
        const dpt_real decayed = g + lambda * theta[j]; \
        v[j] = alpha * v[j] - eps * decayed;          \
        theta[j] += alpha * v[j] - eps * decayed;     \
    } while (0)
    RULE_EXPAND(opt->n, grad, gs, sumsq, clear, NESTEROV_ELEMENT);
#undef NESTEROV_ELEMENT
}
