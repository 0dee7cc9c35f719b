/* dpt/diag.h - what the optimizer sees: curvature along the gradient,
 * extreme Hessian eigenvalues by Lanczos, and the health of each layer's
 * gradient (Goodfellow, Bengio, Courville, Deep Learning, 2016: 4.3.1 and
 * 8.2.1 on ill-conditioning, 8.2.3 on saddle points, 8.2.5 on vanishing and
 * exploding gradients).
 *
 * The functions here are plain numerics on replicated vectors: they know
 * nothing of MPI or of the model. A Hessian-vector product is a callback
 * (in dptrain, the R-operator product on the current minibatch, summed over
 * ranks), so that every rank that calls them with identical inputs gets
 * bit-identical results and takes the same decisions. The trainer's glue is
 * src/train/diagnose.c.
 */
#ifndef DPT_DIAG_H
#define DPT_DIAG_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/real.h"

/* ---------------------------------------------------------------- curvature along the gradient
 * The second-order Taylor model of a gradient step of size eps
 * (Goodfellow et al. eq. 4.9):
 *     f(x - eps g) ~ f(x) - eps g'g + (1/2) eps^2 g'Hg.
 * When the second-order term exceeds the first-order improvement eps g'g
 * the step goes uphill on the model: the learning rate is too large for the
 * curvature along g (ill-conditioning, eq. 8.10). With g'Hg > 0 the best
 * step on the model is eps* = g'g / g'Hg (eq. 4.10). */
typedef struct dpt_curvature_probe {
    double gtg;             /* g'g */
    double gthg;            /* g'Hg */
    double eps;             /* the step size the probe was evaluated for (the learning rate) */
    double first_order;     /* eps g'g: the predicted improvement */
    double second_order;    /* (1/2) eps^2 g'Hg: the curvature's correction */
    int ill_conditioned;    /* second_order > first_order: the step is uphill on the model */
    double eps_star;        /* g'g / g'Hg when g'Hg > 0, else 0 (no finite optimum along -g) */
    double predicted_change;/* second_order - first_order: the model's f(x - eps g) - f(x) */
} dpt_curvature_probe;

/* Fills *out from g'g, g'Hg and eps (>= 0). Pure. */
void dpt_curvature_probe_eval(dpt_curvature_probe *out, double gtg, double gthg, double eps);

/* ---------------------------------------------------------------- Lanczos
 * Extreme eigenvalues of a symmetric operator H from k products (Golub &
 * Van Loan, Matrix Computations, 4th ed., algorithm 10.1.1), with full
 * reorthogonalization against the stored Lanczos vectors (section 10.3.1),
 * so that k steps cost k products plus O(k^2 n) and (k + 1) n reals of
 * memory. The extreme Ritz values of the tridiagonal T_k converge first,
 * from inside: lambda_max from below, lambda_min from above. A negative
 * lambda_min means a direction of negative curvature: a saddle point or a
 * non-convex region (Goodfellow et al. 8.2.3); its Ritz vector is returned
 * when asked for, with its Rayleigh quotient as a check. */

/* out = H v. Must be deterministic and identical on every rank. */
typedef dpt_status (*dpt_hv_fn)(void *user, const dpt_real *v, dpt_real *out);

typedef struct dpt_lanczos_params {
    int steps;          /* k: products (and the size of T_k); >= 1 */
    uint64_t seed;      /* the random start vector (the same on every rank) */
    double breakdown;   /* stop when beta_j <= breakdown * |T| (an invariant subspace) */
} dpt_lanczos_params;

void dpt_lanczos_params_init(dpt_lanczos_params *p);

typedef struct dpt_lanczos_result {
    int steps;               /* products taken (< k on breakdown or when k > n) */
    double lambda_min, lambda_max;   /* extreme Ritz values */
    double residual_min, residual_max; /* |beta_k s_k|: |H y - lambda y| of their Ritz vectors */
    double rayleigh_min;     /* y'Hy of lambda_min's Ritz vector (only when min_vector was asked for) */
} dpt_lanczos_result;

/* Runs k = p->steps Lanczos steps on H (n x n) through hv. min_vector
 * [n] (may be NULL) receives the unit Ritz vector of lambda_min; it costs
 * one more product (its Rayleigh quotient). DPT_ERR_ARG for bad sizes,
 * DPT_ERR_NOMEM, DPT_ERR_NUMERIC for a non-finite product, or whatever hv
 * returns. Collective exactly as hv is. */
dpt_status dpt_lanczos_extremes(dpt_hv_fn hv, void *user, size_t n, const dpt_lanczos_params *p,
                                dpt_lanczos_result *out, dpt_real *min_vector);

/* ---------------------------------------------------------------- layer gradient health
 * A layer whose gradient is tiny next to its weights learns nothing
 * (vanishing); one whose gradient dwarfs them is about to blow up
 * (exploding). The ratio |g_l| / |w_l| is scale-free, so one pair of bounds
 * fits every layer. */
typedef enum dpt_grad_health {
    DPT_GRAD_OK = 0,
    DPT_GRAD_VANISHING,   /* ratio < ratio_min */
    DPT_GRAD_EXPLODING    /* ratio > ratio_max, or not finite */
} dpt_grad_health;

/* The verdict for one layer; *ratio = |g| / |w| (|g| / tiny when |w| = 0,
 * so a layer of zeros with a gradient counts as large, not as vanishing). */
dpt_grad_health dpt_grad_health_check(double grad_norm, double weight_norm, double ratio_min,
                                      double ratio_max, double *ratio);
const char *dpt_grad_health_name(dpt_grad_health h);

#endif /* DPT_DIAG_H */
