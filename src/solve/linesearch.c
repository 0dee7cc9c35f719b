/* Line searches on phi(alpha) = f(x + alpha d): the algorithm of More &
 * Thuente, "Line search algorithms with guaranteed sufficient decrease",
 * ACM TOMS 20(3), 1994 (cited as MT with the section), and Armijo
 * backtracking as a fallback.
 *
 * MT in brief. The search keeps an interval of uncertainty I with ends
 * alpha_l (the best point so far: lowest value of the working function,
 * derivative pointing into I) and alpha_u, chooses each trial alpha_t by
 * safeguarded interpolation (section 4) and updates I from the trial
 * (section 2). The working function is the auxiliary psi(alpha) =
 * phi(alpha) - phi0 - mu alpha dphi0 (section 2) in stage 1, which ends
 * when a trial has psi <= 0 and phi' >= 0; then phi itself (section 3; see
 * mt_next for when stage 1 uses psi). It stops at a point meeting eqs. 1.1
 * and 1.2 (sufficient decrease, strong curvature).
 *
 * Every decision below is a function of the parameters and of the values
 * the callback returned, taken in a fixed order and with no other state, so
 * ranks that receive the same reduced values stay in lockstep. */
#include "dpt/linesearch.h"

#include <math.h>
#include <stddef.h>

/* MT section 4: case 3 keeps a bracketed trial within MT_DELTA of the way
 * from alpha_t to alpha_u, and a bisection step is taken when two trials
 * did not shrink the interval to MT_DELTA of its length. */
#define MT_DELTA 0.66
/* MT section 4: before a minimizer is bracketed the next trial lies in
 * [alpha_t + XTRAP_MIN (alpha_t - alpha_l), alpha_t + XTRAP_MAX (alpha_t - alpha_l)]. */
#define MT_XTRAP_MIN 1.1
#define MT_XTRAP_MAX 4.0

void dpt_linesearch_params_init(dpt_linesearch_params *params)
{
    params->c1 = 1e-4;
    params->c2 = 0.9;
    params->alpha_min = 1e-20;
    params->alpha_max = 1e20;
    params->xtol = 1e-12;
    params->max_evals = 40;
    params->backtrack_factor = 0.5;
}

/* ================================================================ common */

typedef struct ls_point {
    double a, f, g; /* alpha, a function value and its derivative there */
} ls_point;

typedef struct ls_search {
    dpt_phi_fn fn;
    void *user;
    double phi0, dphi0;
    dpt_linesearch_params p;
    int evals;           /* callback calls so far */
    int callback_failed; /* the callback returned a failure: stop, no fallback */
    ls_point best;       /* the best point seen (see dpt/linesearch.h) */
    int best_sd;         /* best has sufficient decrease */
    double min_fail;     /* shortest step without sufficient decrease; +inf if none */
} ls_search;

/* MT eq. 1.1, sufficient decrease (only for a step, never alpha = 0). */
static int sufficient(const ls_search *s, const ls_point *t)
{
    return t->a > 0 && t->f <= s->phi0 + s->p.c1 * t->a * s->dphi0;
}

/* MT eq. 1.2, strong curvature. */
static int curvature(const ls_search *s, double g) { return fabs(g) <= s->p.c2 * -s->dphi0; }

static dpt_status check_params(const dpt_linesearch_params *p)
{
    /* written as !(valid) tests so that NaN fails them too */
    if (!(p->c1 > 0 && p->c1 < 1 && p->c2 > 0 && p->c2 < 1))
        return DPT_FAIL(DPT_ERR_ARG, "line search: c1 = %g and c2 = %g must lie in (0, 1)",
                        p->c1, p->c2);
    if (!(p->alpha_min >= 0 && p->alpha_max >= p->alpha_min))
        return DPT_FAIL(DPT_ERR_ARG, "line search: need 0 <= alpha_min (%g) <= alpha_max (%g)",
                        p->alpha_min, p->alpha_max);
    if (!(p->xtol >= 0) || p->max_evals < 1 ||
        !(p->backtrack_factor > 0 && p->backtrack_factor < 1))
        return DPT_FAIL(DPT_ERR_ARG, "line search: need xtol (%g) >= 0, max_evals (%d) >= 1 and "
                        "backtrack_factor (%g) in (0, 1)", p->xtol, p->max_evals,
                        p->backtrack_factor);
    return DPT_OK;
}

static void set_result(const ls_search *s, const ls_point *t, int sd, dpt_linesearch_result *out)
{
    out->alpha = t->a;
    out->phi = t->f;
    out->dphi = t->g;
    out->evals = s->evals;
    out->sufficient_decrease = sd;
    out->strong_wolfe = sd && curvature(s, t->g);
}

/* Sets up the search and *out (the zero step) and checks the arguments. */
static dpt_status begin(ls_search *s, dpt_phi_fn fn, void *user, double phi0, double dphi0,
                        double alpha_init, const dpt_linesearch_params *params,
                        dpt_linesearch_result *out)
{
    *s = (ls_search){.fn = fn, .user = user, .phi0 = phi0, .dphi0 = dphi0,
                     .best = {0, phi0, dphi0}, .min_fail = INFINITY};
    if (params) s->p = *params;
    else dpt_linesearch_params_init(&s->p);
    if (out) {
        *out = (dpt_linesearch_result){0};
        set_result(s, &s->best, 0, out);
    }
    if (!fn || !out) return DPT_FAIL(DPT_ERR_ARG, "line search: NULL callback or result");
    if (!isfinite(phi0) || !isfinite(dphi0))
        return DPT_FAIL(DPT_ERR_ARG, "line search: phi(0) = %g or phi'(0) = %g is not finite",
                        phi0, dphi0);
    if (!(dphi0 < 0))
        return DPT_FAIL(DPT_ERR_ARG, "line search: not a descent direction, phi'(0) = %g >= 0",
                        dphi0);
    dpt_status st = check_params(&s->p);
    if (st != DPT_OK) return st;
    if (!(alpha_init > 0 && alpha_init >= s->p.alpha_min && alpha_init <= s->p.alpha_max))
        return DPT_FAIL(DPT_ERR_ARG, "line search: initial step %g is not in (0, %g] or below "
                        "alpha_min %g", alpha_init, s->p.alpha_max, s->p.alpha_min);
    return DPT_OK;
}

/* One callback call at alpha into *t; *finite says whether both values are.
 * Keeps the best point and the shortest failing step up to date. */
static dpt_status evaluate(ls_search *s, double alpha, ls_point *t, int *finite)
{
    *t = (ls_point){alpha, NAN, NAN};
    dpt_status st = s->fn(s->user, alpha, &t->f, &t->g);
    s->evals++;
    if (st != DPT_OK) {
        s->callback_failed = 1;
        return st;
    }
    *finite = isfinite(t->f) && isfinite(t->g);
    const int sd = *finite && sufficient(s, t);
    if (!sd && alpha < s->min_fail) s->min_fail = alpha;
    if (*finite && (sd > s->best_sd || (sd == s->best_sd && t->f < s->best.f))) {
        s->best = *t;
        s->best_sd = sd;
    }
    return DPT_OK;
}

/* *out from the outcome of a search: the accepted point, else the best. */
static dpt_status finish(const ls_search *s, dpt_status st, const ls_point *found,
                         dpt_linesearch_result *out)
{
    if (st == DPT_OK) set_result(s, found, 1, out);
    else set_result(s, &s->best, s->best_sd, out);
    return st;
}

/* ======================================== More-Thuente: trial values (MT 4) */

/* The cubic through (o.a, o.f, o.g) and (e.a, e.f, e.g), in the variable
 * u = (alpha - o.a) / h, h = e.a - o.a:
 *     c(u) = o.f + p u + a u^2 + b u^3,
 *     p = o.g h,  q = e.g h,  D = e.f - o.f - p,  a = 3 D - (q - p),  b = (q - p) - 2 D,
 * so that c(1) = e.f and c'(1) = q. All coefficients are function values. */
typedef struct cubic {
    double h, p, a, b;
} cubic;

static cubic cubic_fit(const ls_point *o, const ls_point *e)
{
    cubic c;
    c.h = e->a - o->a;
    c.p = o->g * c.h;
    const double q = e->g * c.h, d = e->f - o->f - c.p;
    c.a = 3 * d - (q - c.p);
    c.b = (q - c.p) - 2 * d;
    return c;
}

/* The local minimizer of the cubic, o.a + u* h with c'(u*) = 0 and
 * c''(u*) = 2 r >= 0, r = sqrt(a^2 - 3 b p):
 *     u* = -p / (a + r) = (r - a) / (3 b),
 * the first form for a >= 0 and the second for a < 0, so that neither
 * cancels. The discriminant is scaled against overflow and taken as 0 if
 * rounding made it negative (in cases 1, 2 and 4 a minimizer exists in
 * exact arithmetic). Non-finite if the cubic has no minimizer. */
static double cubic_argmin(const cubic *c, const ls_point *o)
{
    const double s = fmax(fabs(c->a), fmax(fabs(c->b), fabs(c->p)));
    if (s == 0) return NAN;
    const double as = c->a / s, disc = as * as - 3 * (c->b / s) * (c->p / s);
    const double r = s * sqrt(fmax(disc, 0));
    const double u = c->a >= 0 ? -c->p / (c->a + r) : (r - c->a) / (3 * c->b);
    return o->a + u * c->h;
}

/* The secant step alpha_s: the minimizer of the quadratic that interpolates
 * the two derivatives, i.e. the zero of the secant of phi' (or psi'). */
static double secant_step(const ls_point *l, const ls_point *t)
{
    return t->a + t->g / (t->g - l->g) * (l->a - t->a);
}

/* Case 1, f_t > f_l: a minimizer lies between alpha_l and alpha_t. alpha_c
 * minimizes the cubic through f_l, f_l', f_t, f_t' and alpha_q the
 * quadratic through f_l, f_l', f_t; take alpha_c if it is the closer to
 * alpha_l, otherwise the midpoint of alpha_c and alpha_q. */
static double trial_case1(const ls_point *l, const ls_point *t)
{
    const cubic c = cubic_fit(l, t);
    /* quadratic f_l + p u + d u^2 in the cubic's u; d > 0 since f_t > f_l and p < 0 */
    const double d = t->f - l->f - c.p;
    const double aq = d > 0 ? l->a + (-c.p / (2 * d)) * c.h : 0.5 * (l->a + t->a);
    double ac = cubic_argmin(&c, l);
    if (!isfinite(ac)) ac = aq;
    return fabs(ac - l->a) < fabs(aq - l->a) ? ac : ac + 0.5 * (aq - ac);
}

/* Case 2, f_t <= f_l and f_t' f_l' < 0: a minimizer lies between alpha_l
 * and alpha_t. Take the cubic step alpha_c if it is at least as far from
 * alpha_t as the secant step alpha_s, else alpha_s. */
static double trial_case2(const ls_point *l, const ls_point *t)
{
    const cubic c = cubic_fit(l, t);
    const double ac = cubic_argmin(&c, l), as = secant_step(l, t);
    return fabs(ac - t->a) >= fabs(as - t->a) ? ac : as; /* a NaN alpha_c gives alpha_s */
}

/* Case 3, f_t <= f_l, same signs, |f_t'| < |f_l'| (strictly: alpha_s needs
 * f_t' != f_l'): the derivative decreases in magnitude. The cubic step is
 * used only if the cubic tends to +infinity in the direction of the step
 * and its minimizer lies beyond alpha_t; otherwise alpha_c is the far bound
 * (hi or lo). Bracketed: the step closer to alpha_t, kept within MT_DELTA of
 * the way to alpha_u; not bracketed: the step farther from alpha_t, kept in
 * the extrapolation bounds [lo, hi]. */
static double trial_case3(const ls_point *l, const ls_point *t, const ls_point *u,
                          int bracketed, double lo, double hi)
{
    /* fitted from alpha_t towards alpha_l: the direction of the step is u < 0,
     * p > 0 by descent, and c -> +inf as u -> -inf iff b < 0 (or b = 0 < a);
     * then r > |a| and u* = -p / (a + r) < 0 lies beyond alpha_t */
    const cubic c = cubic_fit(t, l);
    const int use_cubic = c.p > 0 && (c.b < 0 || (c.b == 0 && c.a > 0));
    const double ac = use_cubic ? cubic_argmin(&c, t) : (t->a > l->a ? hi : lo);
    const double as = secant_step(l, t);
    if (!bracketed) {
        const double step = fabs(ac - t->a) > fabs(as - t->a) ? ac : as;
        return fmin(fmax(step, lo), hi);
    }
    const double step = fabs(ac - t->a) < fabs(as - t->a) ? ac : as;
    const double cap = t->a + MT_DELTA * (u->a - t->a);
    return t->a > l->a ? fmin(cap, step) : fmax(cap, step);
}

/* Case 4, f_t <= f_l, same signs, |f_t'| >= |f_l'|: the derivative does not
 * decrease. Bracketed: the minimizer of the cubic through f_t, f_t', f_u,
 * f_u'; not bracketed: the extrapolation bound in the direction of the step. */
static double trial_case4(const ls_point *l, const ls_point *t, const ls_point *u,
                          int bracketed, double lo, double hi)
{
    if (!bracketed) return t->a > l->a ? hi : lo;
    const cubic c = cubic_fit(t, u);
    return cubic_argmin(&c, t);
}

/* MT section 4: the next trial from the working-function values at the
 * ends alpha_l, alpha_u (u only once bracketed) and the trial alpha_t. */
static double trial_value(const ls_point *l, const ls_point *t, const ls_point *u,
                          int bracketed, double lo, double hi)
{
    if (t->f > l->f) return trial_case1(l, t);
    if ((t->g < 0 && l->g > 0) || (t->g > 0 && l->g < 0)) return trial_case2(l, t);
    if (fabs(t->g) < fabs(l->g)) return trial_case3(l, t, u, bracketed, lo, hi);
    return trial_case4(l, t, u, bracketed, lo, hi);
}

/* ================================ More-Thuente: the search (MT 2, 3) */

typedef struct mt_state {
    ls_point l, u;     /* ends of the interval of uncertainty, phi values */
    int bracketed;     /* a minimizer lies between l and u (after U1 or U3) */
    int stage;         /* 1: psi may be used, 2: phi only (MT 3) */
    double width;      /* |alpha_u - alpha_l| after the last trial */
    double width_prev; /* ... and after the one before */
} mt_state;

/* The working function at a point: psi(alpha) = phi(alpha) - phi0 -
 * mu dphi0 alpha (MT 2) if `psi`, else phi. */
static ls_point working(const ls_search *s, int psi, const ls_point *pt)
{
    ls_point w = *pt;
    if (psi) {
        w.f -= s->phi0 + s->p.c1 * s->dphi0 * pt->a;
        w.g -= s->p.c1 * s->dphi0;
    }
    return w;
}

/* MT section 2, updating algorithm, on working values wl, wt (t holds phi):
 *   U1: f_t > f_l                           -> alpha_u = alpha_t
 *   U2: f_t <= f_l, f_t' (alpha_l - alpha_t) > 0 -> alpha_l = alpha_t
 *   U3: f_t <= f_l, f_t' (alpha_l - alpha_t) < 0 -> alpha_u = alpha_l, alpha_l = alpha_t
 * (f_t' = 0 is taken as U2). U1 and U3 bracket a minimizer. */
static void update_interval(mt_state *m, const ls_point *wl, const ls_point *wt,
                            const ls_point *t)
{
    if (wt->f > wl->f) {
        m->u = *t;
        m->bracketed = 1;
        return;
    }
    if (wt->g * (wl->a - wt->a) < 0) {
        m->u = m->l;
        m->bracketed = 1;
    }
    m->l = *t;
}

/* Chooses the next trial after the trial t (phi values, sufficient
 * decrease sd) and updates I.
 *
 * Which function the trial selection and the update work on: MT 3 works on
 * psi in stage 1 and on phi in stage 2. Psi matters when a trial lowered
 * phi below phi(alpha_l) without sufficient decrease: on phi the search
 * would settle around that point; on psi it keeps looking for sufficient
 * decrease. Like the authors' implementation (MINPACK-2 dcsrch), with which
 * the paper's Tables 1-6 were computed, stage 1 uses psi exactly in that
 * situation and phi otherwise. This reproduces all 24 evaluation counts of
 * the Tables; psi in every stage-1 step changes 5 of them by 1 or 2. */
static double mt_next(const ls_search *s, mt_state *m, const ls_point *t, int sd)
{
    const int psi = m->stage == 1 && t->f <= m->l.f && !sd;
    const ls_point wl = working(s, psi, &m->l), wu = working(s, psi, &m->u);
    const ls_point wt = working(s, psi, t);
    double lo, hi; /* where the trial may go: I, or the extrapolation range */
    if (m->bracketed) {
        lo = fmin(m->l.a, m->u.a);
        hi = fmax(m->l.a, m->u.a);
    } else {
        lo = t->a + MT_XTRAP_MIN * (t->a - m->l.a);
        hi = t->a + MT_XTRAP_MAX * (t->a - m->l.a);
    }
    double next = trial_value(&wl, &wt, &wu, m->bracketed, lo, hi);
    update_interval(m, &wl, &wt, t);
    if (m->bracketed) {
        /* MT 4: bisect if the last two trials did not shrink I to MT_DELTA */
        const double w = fabs(m->u.a - m->l.a);
        if (w >= MT_DELTA * m->width_prev || !isfinite(next))
            next = m->l.a + 0.5 * (m->u.a - m->l.a);
        m->width_prev = m->width;
        m->width = w;
    } else if (!isfinite(next)) {
        next = hi;
    }
    return fmin(fmax(next, s->p.alpha_min), s->p.alpha_max);
}

/* Stops that depend on the trial just evaluated (which is not a Wolfe point). */
static dpt_status mt_check_trial(const ls_search *s, const ls_point *t, int sd)
{
    const double gtest = s->p.c1 * s->dphi0; /* psi'(alpha) = phi'(alpha) - gtest */
    if (t->a >= s->p.alpha_max && sd && t->g <= gtest)
        return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: the step reached alpha_max "
                        "= %g with psi still decreasing (phi'(alpha) = %g)", t->a, t->g);
    if (t->a <= s->p.alpha_min && (!sd || t->g >= gtest))
        return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: the step reached alpha_min "
                        "= %g without %s", t->a, sd ? "psi decreasing" : "sufficient decrease");
    if (s->evals >= s->p.max_evals)
        return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: no strong Wolfe step within "
                        "%d evaluations (last step %g)", s->evals, t->a);
    return DPT_OK;
}

/* Stops that depend on the interval and the next trial (before evaluating it). */
static dpt_status mt_check_progress(const ls_search *s, const mt_state *m, double next)
{
    if (!m->bracketed) return DPT_OK;
    const double lo = fmin(m->l.a, m->u.a), hi = fmax(m->l.a, m->u.a);
    if (hi - lo <= s->p.xtol * hi)
        return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: the interval of uncertainty "
                        "[%.17g, %.17g] is narrower than xtol = %g", lo, hi, s->p.xtol);
    if (next <= lo || next >= hi)
        return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: rounding errors prevent "
                        "progress (trial %.17g outside (%.17g, %.17g))", next, lo, hi);
    return DPT_OK;
}

/* The search from the first trial alpha; DPT_OK with *found a Wolfe point. */
static dpt_status mt_run(ls_search *s, double alpha, ls_point *found)
{
    mt_state m = {.l = {0, s->phi0, s->dphi0}, .u = {0, s->phi0, s->dphi0}, .stage = 1,
                  .width = s->p.alpha_max - s->p.alpha_min};
    m.width_prev = 2 * m.width;
    for (;;) {
        int finite;
        dpt_status st = evaluate(s, alpha, found, &finite);
        if (st != DPT_OK) return st;
        if (!finite)
            return DPT_FAIL(DPT_ERR_NUMERIC, "More-Thuente line search: phi = %g, phi' = %g at "
                            "alpha = %g", found->f, found->g, alpha);
        const int sd = sufficient(s, found);
        if (sd && curvature(s, found->g)) return DPT_OK;
        if ((st = mt_check_trial(s, found, sd)) != DPT_OK) return st;
        /* MT 3: once psi(alpha) <= 0 and phi'(alpha) >= 0, work on phi */
        if (m.stage == 1 && sd && found->g >= 0) m.stage = 2;
        alpha = mt_next(s, &m, found, sd);
        if ((st = mt_check_progress(s, &m, alpha)) != DPT_OK) return st;
    }
}

/* ================================================ Armijo backtracking */

/* Backtracking from alpha; DPT_OK with *found the first step with
 * sufficient decrease (a non-finite value counts as a failure). */
static dpt_status armijo_run(ls_search *s, double alpha, ls_point *found)
{
    double last = alpha;
    for (int n = 0; n < s->p.max_evals; n++) {
        if (alpha < s->p.alpha_min)
            return DPT_FAIL(DPT_ERR_NUMERIC, "Armijo backtracking: the step fell below alpha_min "
                            "= %g without sufficient decrease", s->p.alpha_min);
        int finite;
        dpt_status st = evaluate(s, alpha, found, &finite);
        if (st != DPT_OK) return st;
        if (finite && sufficient(s, found)) return DPT_OK;
        last = alpha;
        alpha *= s->p.backtrack_factor;
    }
    return DPT_FAIL(DPT_ERR_NUMERIC, "Armijo backtracking: no sufficient decrease within %d "
                    "evaluations (last step %g)", s->p.max_evals, last);
}

/* ================================================ public */

typedef dpt_status (*ls_run_fn)(ls_search *s, double alpha_init, ls_point *found);

/* begin, one search, finish: the two plain searches differ only in `run` */
static dpt_status search_with(ls_run_fn run, dpt_phi_fn phi, void *user, double phi0, double dphi0,
                              double alpha_init, const dpt_linesearch_params *params,
                              dpt_linesearch_result *out)
{
    ls_search s;
    ls_point found;
    dpt_status st = begin(&s, phi, user, phi0, dphi0, alpha_init, params, out);
    if (st != DPT_OK) return st;
    return finish(&s, run(&s, alpha_init, &found), &found, out);
}

dpt_status dpt_linesearch_more_thuente(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                                       double alpha_init, const dpt_linesearch_params *params,
                                       dpt_linesearch_result *out)
{
    return search_with(mt_run, phi, user, phi0, dphi0, alpha_init, params, out);
}

dpt_status dpt_linesearch_armijo(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                                 double alpha_init, const dpt_linesearch_params *params,
                                 dpt_linesearch_result *out)
{
    return search_with(armijo_run, phi, user, phi0, dphi0, alpha_init, params, out);
}

dpt_status dpt_linesearch(dpt_phi_fn phi, void *user, double phi0, double dphi0,
                          double alpha_init, const dpt_linesearch_params *params,
                          dpt_linesearch_result *out)
{
    ls_search s;
    ls_point found;
    dpt_status st = begin(&s, phi, user, phi0, dphi0, alpha_init, params, out);
    if (st != DPT_OK) return st;
    st = mt_run(&s, alpha_init, &found);
    if (st == DPT_OK || s.callback_failed) return finish(&s, st, &found, out);
    if (s.best_sd) { /* no Wolfe point, but the best one has sufficient decrease: usable */
        finish(&s, st, &found, out);
        return DPT_OK;
    }
    /* no sufficient decrease anywhere: backtrack below the shortest step tried */
    st = armijo_run(&s, s.min_fail * s.p.backtrack_factor, &found);
    finish(&s, st, &found, out);
    out->used_fallback = 1;
    return st;
}
