/* dpt/linesearch.h - line searches along a descent direction.
 *
 * A line search chooses a step alpha > 0 along a direction d from a point x
 * by looking only at the one-dimensional function
 *
 *     phi(alpha) = f(x + alpha d),   phi'(alpha) = g(x + alpha d) . d,
 *
 * which a callback evaluates. With phi0 = phi(0) and dphi0 = phi'(0) < 0:
 *
 *     sufficient decrease (Armijo):  phi(alpha) <= phi0 + c1 alpha dphi0
 *     strong curvature:              |phi'(alpha)| <= c2 |dphi0|
 *
 * and both together are the strong Wolfe conditions (More & Thuente 1994,
 * eqs. 1.1 and 1.2, with mu = c1 and eta = c2).
 *
 * Determinism: in the trainer every evaluation is a collective oracle call
 * whose values are already reduced over the ranks. The searches here are
 * pure functions of the parameters and of the values the callback returns
 * (no randomness, no clock, no state kept between calls), so every rank
 * that receives the same values evaluates the same steps in the same order
 * and returns the same result, bit for bit (given the same binary).
 *
 * Status contract, common to the searches:
 *   DPT_OK           the search met its goal (see each function);
 *   DPT_ERR_ARG      bad arguments, nothing evaluated: dphi0 >= 0 (not a
 *                    descent direction), non-finite phi0 or dphi0,
 *                    alpha_init outside [alpha_min, alpha_max] or <= 0,
 *                    invalid parameters, NULL callback or result;
 *   DPT_ERR_NUMERIC  the search stopped without meeting its goal (too many
 *                    evaluations, interval narrower than xtol, step stuck at
 *                    alpha_min or alpha_max, rounding errors prevent
 *                    progress, a non-finite phi or phi'); the message says
 *                    which;
 *   anything else    a status the callback returned, passed on unchanged
 *                    (the callback records its own message); no further
 *                    evaluation is made.
 * Whatever the status, *out (if not NULL) holds a usable result: on success
 * the accepted step, otherwise the best point seen (below); `evals` always
 * counts every callback call, the failed one included.
 *
 * The best point seen: among alpha = 0 (phi0, dphi0) and every evaluated
 * step with finite values, a step with sufficient decrease beats one
 * without, then the lower phi wins, then the earlier. alpha = 0 in a result
 * therefore means "no step decreased phi: do not move".
 */
#ifndef DPT_LINESEARCH_H
#define DPT_LINESEARCH_H

#include "dpt/error.h"

/* Evaluates phi(alpha) and phi'(alpha) into *phi and *dphi. Returns DPT_OK,
 * or a failure status (after DPT_FAIL) which the search passes on. Non-finite
 * values are allowed: More-Thuente stops at one (DPT_ERR_NUMERIC), Armijo
 * backtracking, also as the fallback of dpt_linesearch, treats it as a step
 * without sufficient decrease (too long). */
typedef dpt_status (*dpt_phi_fn)(void *user, double alpha, double *phi, double *dphi);

typedef struct dpt_linesearch_params {
    double c1;               /* mu: sufficient decrease, in (0, 1) */
    double c2;               /* eta: strong curvature, in (0, 1) (c2 < c1 allowed,
                                the search may then end without a Wolfe point) */
    double alpha_min;        /* smallest step, >= 0 */
    double alpha_max;        /* largest step, >= alpha_min */
    double xtol;             /* More-Thuente stops once its interval of uncertainty
                                is narrower than xtol times its right end, >= 0 */
    int max_evals;           /* callback calls per search (and again for the
                                fallback of dpt_linesearch), >= 1 */
    double backtrack_factor; /* Armijo: alpha <- factor alpha, in (0, 1) */
} dpt_linesearch_params;

/* Defaults: c1 1e-4, c2 0.9 (quasi-Newton), alpha_min 1e-20, alpha_max 1e20,
 * xtol 1e-12, max_evals 40, backtrack_factor 0.5. */
void dpt_linesearch_params_init(dpt_linesearch_params *params);

typedef struct dpt_linesearch_result {
    double alpha;            /* the step (0: no step decreased phi) */
    double phi, dphi;        /* phi(alpha) and phi'(alpha) */
    int evals;               /* callback calls made, fallback included */
    int sufficient_decrease; /* 1 if phi(alpha) <= phi0 + c1 alpha dphi0, alpha > 0 */
    int strong_wolfe;        /* 1 if, in addition, |phi'(alpha)| <= c2 |dphi0| */
    int used_fallback;       /* 1 if dpt_linesearch ran Armijo backtracking */
} dpt_linesearch_result;

/* More & Thuente, "Line search algorithms with guaranteed sufficient
 * decrease", ACM TOMS 20(3), 1994: safeguarded cubic/quadratic
 * interpolation on an interval of uncertainty, first on the auxiliary
 * function psi(alpha) = phi(alpha) - phi0 - c1 alpha dphi0, then on phi.
 * The first trial is alpha_init; `params` may be NULL for the defaults.
 * DPT_OK: the returned step satisfies both strong Wolfe conditions.
 * DPT_ERR_NUMERIC: *out is the best point seen (see above). */
dpt_status dpt_linesearch_more_thuente(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                                       double alpha_init, const dpt_linesearch_params *params,
                                       dpt_linesearch_result *out);

/* Backtracking: alpha_init, then alpha <- backtrack_factor alpha while the
 * sufficient decrease condition fails or a value is non-finite. DPT_OK: the
 * first step with sufficient decrease (strong_wolfe says whether the
 * curvature condition happens to hold). DPT_ERR_NUMERIC after max_evals
 * calls, or once the step would fall below alpha_min. */
dpt_status dpt_linesearch_armijo(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                                 double alpha_init, const dpt_linesearch_params *params,
                                 dpt_linesearch_result *out);

/* More-Thuente, then, if it ended without a step with sufficient decrease,
 * Armijo backtracking (used_fallback = 1, up to max_evals more calls)
 * starting one backtrack_factor below the shortest step More-Thuente found
 * without sufficient decrease. DPT_OK: the returned step has sufficient
 * decrease; check strong_wolfe before using it for a quasi-Newton update
 * (if it is 0, dpt_error_message() still says why More-Thuente stopped).
 * DPT_ERR_NUMERIC: no step with sufficient decrease was found; *out is the
 * best point seen. Callback errors end the search at once, no fallback. */
dpt_status dpt_linesearch(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                          double alpha_init, const dpt_linesearch_params *params,
                          dpt_linesearch_result *out);

#endif /* DPT_LINESEARCH_H */
