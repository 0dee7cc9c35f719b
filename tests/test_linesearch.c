/* Unit tests of the line searches (src/solve/linesearch.c).
 *
 * Reference: More & Thuente, "Line search algorithms with guaranteed
 * sufficient decrease", ACM TOMS 20(3), 1994, section 5: six test
 * functions, each searched from alpha0 = 1e-3, 1e-1, 1e1, 1e3. Every
 * returned step is checked against the strong Wolfe conditions recomputed
 * here, and the evaluation counts are printed next to the paper's. */
#include "cunit_util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/linesearch.h"

/* ================================================================ helpers */

typedef void (*fn1d)(double alpha, double *f, double *g);

enum { TRACE_MAX = 128 };

/* What the callback sees: a function, and a record of the calls. */
typedef struct problem {
    fn1d fn;
    int calls;
    int fail_at;       /* 1-based call that returns fail_status; 0: never */
    dpt_status fail_status;
    double trace[TRACE_MAX]; /* the steps asked for, in order */
} problem;

static dpt_status phi_cb(void *user, double alpha, double *phi, double *dphi)
{
    problem *pb = user;
    if (pb->calls < TRACE_MAX) pb->trace[pb->calls] = alpha;
    pb->calls++;
    if (pb->calls == pb->fail_at) return DPT_FAIL(pb->fail_status, "oracle failed on purpose");
    pb->fn(alpha, phi, dphi);
    return DPT_OK;
}

static problem make_problem(fn1d fn)
{
    problem pb;
    memset(&pb, 0, sizeof pb);
    pb.fn = fn;
    return pb;
}

static dpt_linesearch_params make_params(double c1, double c2)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    p.c1 = c1;
    p.c2 = c2;
    return p;
}

/* Asserts the strong Wolfe conditions at out->alpha, recomputing phi there. */
static void assert_strong_wolfe(fn1d fn, const dpt_linesearch_params *p,
                                const dpt_linesearch_result *out)
{
    double f0, g0, f, g;
    fn(0, &f0, &g0);
    fn(out->alpha, &f, &g);
    CU_ASSERT(out->alpha > 0);
    CU_ASSERT(f <= f0 + p->c1 * out->alpha * g0);
    CU_ASSERT(fabs(g) <= p->c2 * fabs(g0));
    CU_ASSERT_EQUAL(f, out->phi);
    CU_ASSERT_EQUAL(g, out->dphi);
    CU_ASSERT_EQUAL(out->strong_wolfe, 1);
    CU_ASSERT_EQUAL(out->sufficient_decrease, 1);
}

/* ================================================ the functions of MT 5 */

/* (5.1) phi(alpha) = -alpha / (alpha^2 + beta), beta = 2 */
static void mt_f1(double a, double *f, double *g)
{
    const double b = 2, d = a * a + b;
    *f = -a / d;
    *g = (a * a - b) / (d * d);
}

/* (5.2) phi(alpha) = (alpha + beta)^5 - 2 (alpha + beta)^4, beta = 0.004 */
static void mt_f2(double a, double *f, double *g)
{
    const double x = a + 0.004, x3 = x * x * x;
    *f = x3 * x * x - 2 * x3 * x;
    *g = 5 * x3 * x - 8 * x3;
}

/* (5.3) phi(alpha) = phi0(alpha) + 2 (1 - beta) / (l pi) sin(l pi alpha / 2),
 * phi0 piecewise: 1 - alpha, (alpha - 1)^2 / (2 beta) + beta / 2, alpha - 1;
 * beta = 0.01, l = 39 */
static void mt_f3(double a, double *f, double *g)
{
    const double b = 0.01, l = 39, w = l * M_PI / 2;
    double f0, g0;
    if (a <= 1 - b) {
        f0 = 1 - a;
        g0 = -1;
    } else if (a >= 1 + b) {
        f0 = a - 1;
        g0 = 1;
    } else {
        f0 = (a - 1) * (a - 1) / (2 * b) + b / 2;
        g0 = (a - 1) / b;
    }
    *f = f0 + 2 * (1 - b) / (l * M_PI) * sin(w * a);
    *g = g0 + (1 - b) * cos(w * a);
}

/* (5.4) phi(alpha) = gamma(b1) sqrt((1 - alpha)^2 + b2^2) + gamma(b2) sqrt(alpha^2 + b1^2),
 * gamma(b) = sqrt(1 + b^2) - b */
static void yanai(double b1, double b2, double a, double *f, double *g)
{
    const double g1 = sqrt(1 + b1 * b1) - b1, g2 = sqrt(1 + b2 * b2) - b2;
    const double r1 = sqrt((1 - a) * (1 - a) + b2 * b2), r2 = sqrt(a * a + b1 * b1);
    *f = g1 * r1 + g2 * r2;
    *g = -g1 * (1 - a) / r1 + g2 * a / r2;
}

static void mt_f4(double a, double *f, double *g) { yanai(0.001, 0.001, a, f, g); }
static void mt_f5(double a, double *f, double *g) { yanai(0.01, 0.001, a, f, g); }
static void mt_f6(double a, double *f, double *g) { yanai(0.001, 0.01, a, f, g); }

typedef struct mt_case {
    const char *name;
    fn1d fn;
    double mu, eta;
    int paper[4]; /* evaluations in the paper's Tables 1-6, alpha0 = 1e-3, 1e-1, 1e1, 1e3 */
} mt_case;

static const mt_case mt_cases[] = {
    {"(5.1)", mt_f1, 0.001, 0.1, {6, 3, 1, 4}},
    {"(5.2)", mt_f2, 0.001, 0.1, {12, 8, 8, 11}},
    {"(5.3)", mt_f3, 0.1, 0.1, {12, 12, 10, 13}},
    {"(5.4) b=(1e-3,1e-3)", mt_f4, 0.001, 0.001, {4, 1, 3, 4}},
    {"(5.4) b=(1e-2,1e-3)", mt_f5, 0.001, 0.001, {6, 3, 7, 8}},
    {"(5.4) b=(1e-3,1e-2)", mt_f6, 0.001, 0.001, {13, 11, 8, 11}},
};
static const double mt_alpha0[4] = {1e-3, 1e-1, 1e1, 1e3};

/* Bounds on the evaluations per search: at most the paper's count plus a
 * margin (the implementation reproduces the counts exactly on x86-64; the
 * margin leaves room for other rounding, e.g. contracted multiply-adds),
 * and never more than 20. */
enum { MT_EVALS_MARGIN = 2, MT_EVALS_MAX = 20 };

static void run_mt_case(const mt_case *c)
{
    const dpt_linesearch_params p = make_params(c->mu, c->eta);
    double f0, g0;
    c->fn(0, &f0, &g0);
    for (int i = 0; i < 4; i++) {
        problem pb = make_problem(c->fn);
        dpt_linesearch_result out;
        dpt_status st = dpt_linesearch_more_thuente(phi_cb, &pb, f0, g0, mt_alpha0[i], &p, &out);
        CU_ASSERT_EQUAL(st, DPT_OK);
        if (st != DPT_OK) printf("\n  %s: %s\n", c->name, dpt_error_message());
        assert_strong_wolfe(c->fn, &p, &out);
        CU_ASSERT_EQUAL(out.evals, pb.calls);
        CU_ASSERT(out.evals <= c->paper[i] + MT_EVALS_MARGIN);
        CU_ASSERT(out.evals <= MT_EVALS_MAX);
        CU_ASSERT_EQUAL(out.used_fallback, 0);
        printf("\n    %-20s alpha0 %6.0e: evals %2d (paper %2d)  alpha %-10.4g phi' %10.2e",
               c->name, mt_alpha0[i], out.evals, c->paper[i], out.alpha, out.dphi);
    }
    printf("\n");
}

static void test_mt_f1(void) { run_mt_case(&mt_cases[0]); }
static void test_mt_f2(void) { run_mt_case(&mt_cases[1]); }
static void test_mt_f3(void) { run_mt_case(&mt_cases[2]); }
static void test_mt_f4(void) { run_mt_case(&mt_cases[3]); }
static void test_mt_f5(void) { run_mt_case(&mt_cases[4]); }
static void test_mt_f6(void) { run_mt_case(&mt_cases[5]); }

/* The combined search gives the same as More-Thuente when that succeeds. */
static void test_combined_matches_mt(void)
{
    for (size_t k = 0; k < sizeof mt_cases / sizeof mt_cases[0]; k++) {
        const mt_case *c = &mt_cases[k];
        const dpt_linesearch_params p = make_params(c->mu, c->eta);
        double f0, g0;
        c->fn(0, &f0, &g0);
        for (int i = 0; i < 4; i++) {
            problem pa = make_problem(c->fn), pb = make_problem(c->fn);
            dpt_linesearch_result a, b;
            CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pa, f0, g0, mt_alpha0[i], &p, &a),
                            DPT_OK);
            CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, f0, g0, mt_alpha0[i], &p, &b), DPT_OK);
            CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
        }
    }
}

/* ================================================ simple functions */

/* phi(alpha) = (alpha - 1)^2 - 1: phi0 = 0, dphi0 = -2, minimum at 1;
 * sufficient decrease holds for alpha <= 2 (1 - c1). */
static void quad(double a, double *f, double *g)
{
    *f = (a - 1) * (a - 1) - 1;
    *g = 2 * (a - 1);
}

/* phi(alpha) = -alpha: unbounded below. */
static void linear(double a, double *f, double *g)
{
    *f = -a;
    *g = -1;
}

/* phi(alpha) = |alpha - 1|: |phi'| = 1 everywhere, no curvature point for c2 < 1. */
static void kink(double a, double *f, double *g)
{
    *f = fabs(a - 1);
    *g = a < 1 ? -1 : 1;
}

/* phi(alpha) = -alpha for alpha < 4, NaN beyond (a diverged network). */
static void cliff(double a, double *f, double *g)
{
    *f = a < 4 ? -a : NAN;
    *g = a < 4 ? -1 : NAN;
}

/* Backtracking halves 8 -> 4 -> 2 -> 1 -> 0.5: with c1 = 0.6 sufficient
 * decrease needs alpha <= 0.8, so alpha = 0.5 after 5 calls, phi = -0.75,
 * phi' = -1 (|-1| <= 0.9 * 2: strong Wolfe too). With the default c1 = 1e-4
 * (alpha <= 1.9998) it stops at alpha = 1 after 4 calls. */
static void test_armijo_quadratic(void)
{
    dpt_linesearch_params p = make_params(0.6, 0.9);
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_armijo(phi_cb, &pb, 0, -2, 8, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 0.5);
    CU_ASSERT_EQUAL(out.phi, -0.75);
    CU_ASSERT_EQUAL(out.dphi, -1);
    CU_ASSERT_EQUAL(out.evals, 5);
    CU_ASSERT_EQUAL(pb.calls, 5);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 1);
    CU_ASSERT_EQUAL(out.strong_wolfe, 1);
    const double want[5] = {8, 4, 2, 1, 0.5};
    CU_ASSERT_EQUAL(memcmp(pb.trace, want, sizeof want), 0);

    p = make_params(1e-4, 0.9);
    pb = make_problem(quad);
    CU_ASSERT_EQUAL(dpt_linesearch_armijo(phi_cb, &pb, 0, -2, 8, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 1);
    CU_ASSERT_EQUAL(out.phi, -1);
    CU_ASSERT_EQUAL(out.evals, 4);
}

/* Backtracking over a NaN region, and its failure after max_evals. */
static void test_armijo_nonfinite_and_limit(void)
{
    dpt_linesearch_params p = make_params(1e-4, 0.9);
    problem pb = make_problem(cliff);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_armijo(phi_cb, &pb, 0, -1, 16, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 2); /* 16, 8, 4 are NaN */
    CU_ASSERT_EQUAL(out.evals, 4);

    p.max_evals = 2;
    pb = make_problem(cliff);
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_linesearch_armijo(phi_cb, &pb, 0, -1, 16, &p, &out), DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "within 2 evaluations"));
    CU_ASSERT_EQUAL(out.alpha, 0); /* best seen: do not move */
    CU_ASSERT_EQUAL(out.phi, 0);
    CU_ASSERT_EQUAL(out.evals, 2);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 0);
}

/* A quasi-Newton first step of 1 on a quadratic is accepted at once. */
static void test_mt_accepts_exact_step(void)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, -2, 1, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 1);
    CU_ASSERT_EQUAL(out.evals, 1);
    CU_ASSERT_EQUAL(out.strong_wolfe, 1);
}

/* ================================================ errors */

static void test_not_descent(void)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    const double slopes[3] = {0.0, 1.0, NAN};
    for (int k = 0; k < 3; k++) {
        problem pb = make_problem(quad);
        dpt_linesearch_result out;
        CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, slopes[k], 1, &p, &out),
                        DPT_ERR_ARG);
        CU_ASSERT_EQUAL(dpt_linesearch_armijo(phi_cb, &pb, 0, slopes[k], 1, &p, &out),
                        DPT_ERR_ARG);
        CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, slopes[k], 1, &p, &out), DPT_ERR_ARG);
        CU_ASSERT_EQUAL(pb.calls, 0);
        CU_ASSERT_EQUAL(out.evals, 0);
        CU_ASSERT_EQUAL(out.alpha, 0);
    }
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, 0.5, 1, &p, &out), DPT_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "not a descent direction"));
}

static void test_bad_arguments(void)
{
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    CU_ASSERT_EQUAL(dpt_linesearch(NULL, &pb, 0, -2, 1, &p, &out), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &p, NULL), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, INFINITY, -2, 1, &p, &out), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 0, &p, &out), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1e21, &p, &out), DPT_ERR_ARG);
    dpt_linesearch_params bad = p;
    bad.c1 = 0;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &bad, &out), DPT_ERR_ARG);
    bad = p;
    bad.c2 = NAN;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &bad, &out), DPT_ERR_ARG);
    bad = p;
    bad.alpha_max = 0.5 * bad.alpha_min;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &bad, &out), DPT_ERR_ARG);
    bad = p;
    bad.max_evals = 0;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &bad, &out), DPT_ERR_ARG);
    bad = p;
    bad.backtrack_factor = 1;
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, &bad, &out), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(pb.calls, 0);
    /* NULL params: the defaults */
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 1, NULL, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 1);
}

/* A failing oracle call ends every search with its status and message, and
 * the combined search does not fall back (not even on DPT_ERR_NUMERIC). */
static void test_callback_error(void)
{
    dpt_linesearch_params p = make_params(0.001, 0.1);
    double f0, g0;
    mt_f1(0, &f0, &g0);
    problem pb = make_problem(mt_f1);
    pb.fail_at = 2;
    pb.fail_status = DPT_ERR_IO;
    dpt_linesearch_result out;
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, f0, g0, 1e-3, &p, &out), DPT_ERR_IO);
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), "oracle failed on purpose");
    CU_ASSERT_EQUAL(pb.calls, 2);
    CU_ASSERT_EQUAL(out.evals, 2);
    CU_ASSERT_EQUAL(out.alpha, 1e-3); /* the best point before the failure */
    CU_ASSERT_EQUAL(out.sufficient_decrease, 1);

    for (int k = 0; k < 2; k++) {
        pb = make_problem(quad);
        pb.fail_at = 1;
        pb.fail_status = k ? DPT_ERR_NUMERIC : DPT_ERR_MPI;
        dpt_status st = k ? dpt_linesearch(phi_cb, &pb, 0, -2, 3, &p, &out)
                          : dpt_linesearch_armijo(phi_cb, &pb, 0, -2, 3, &p, &out);
        CU_ASSERT_EQUAL(st, pb.fail_status);
        CU_ASSERT_EQUAL(pb.calls, 1);
        CU_ASSERT_EQUAL(out.evals, 1);
        CU_ASSERT_EQUAL(out.alpha, 0);
        CU_ASSERT_EQUAL(out.used_fallback, 0);
    }
}

/* ================================================ stops and fallback */

/* With one evaluation More-Thuente cannot even try a second step: from
 * alpha0 = 3 (phi = 3 > 0) it stops, reporting alpha = 0. The combined
 * search then backtracks from 1.5 (phi = -0.75, sufficient decrease). */
static void test_fallback(void)
{
    dpt_linesearch_params p = make_params(1e-4, 0.9);
    p.max_evals = 1;
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, -2, 3, &p, &out),
                    DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "within 1 evaluations"));
    CU_ASSERT_EQUAL(out.alpha, 0);
    CU_ASSERT_EQUAL(out.phi, 0);
    CU_ASSERT_EQUAL(out.dphi, -2);
    CU_ASSERT_EQUAL(out.evals, 1);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 0);
    CU_ASSERT_EQUAL(out.strong_wolfe, 0);

    pb = make_problem(quad);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -2, 3, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.used_fallback, 1);
    CU_ASSERT_EQUAL(out.alpha, 1.5);
    CU_ASSERT_EQUAL(out.phi, -0.75);
    CU_ASSERT_EQUAL(out.evals, 2);
    CU_ASSERT_EQUAL(pb.calls, 2);
    CU_ASSERT_EQUAL(pb.trace[0], 3);
    CU_ASSERT_EQUAL(pb.trace[1], 1.5);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 1);
}

/* A NaN at the first trial stops More-Thuente; the fallback backtracks. */
static void test_fallback_after_nan(void)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    problem pb = make_problem(cliff);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, -1, 10, &p, &out),
                    DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "phi = nan"));
    CU_ASSERT_EQUAL(out.evals, 1);
    CU_ASSERT_EQUAL(out.alpha, 0);
    pb = make_problem(cliff);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -1, 10, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.used_fallback, 1);
    CU_ASSERT_EQUAL(out.alpha, 2.5); /* 10 (NaN), 5 (NaN), 2.5 */
    CU_ASSERT_EQUAL(out.evals, 3);
}

/* phi = -alpha: extrapolation 1 -> 5 -> 21, cut to alpha_max = 10, where
 * psi still decreases. The step has sufficient decrease but no curvature:
 * More-Thuente reports it with DPT_ERR_NUMERIC, the combined search accepts
 * it (DPT_OK, strong_wolfe = 0) without a fallback. */
static void test_alpha_max(void)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    p.alpha_max = 10;
    problem pb = make_problem(linear);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, -1, 1, &p, &out),
                    DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "alpha_max"));
    CU_ASSERT_EQUAL(out.alpha, 10);
    CU_ASSERT_EQUAL(out.evals, 3);
    const double want[3] = {1, 5, 10};
    CU_ASSERT_EQUAL(memcmp(pb.trace, want, sizeof want), 0);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 1);
    CU_ASSERT_EQUAL(out.strong_wolfe, 0);

    pb = make_problem(linear);
    CU_ASSERT_EQUAL(dpt_linesearch(phi_cb, &pb, 0, -1, 1, &p, &out), DPT_OK);
    CU_ASSERT_EQUAL(out.alpha, 10);
    CU_ASSERT_EQUAL(out.strong_wolfe, 0);
    CU_ASSERT_EQUAL(out.used_fallback, 0);
}

/* The first step is alpha_min and has no sufficient decrease. */
static void test_alpha_min(void)
{
    dpt_linesearch_params p;
    dpt_linesearch_params_init(&p);
    p.alpha_min = 3;
    problem pb = make_problem(quad);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 0, -2, 3, &p, &out),
                    DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "alpha_min"));
    CU_ASSERT_EQUAL(out.evals, 1);
    CU_ASSERT_EQUAL(out.alpha, 0);
}

/* |phi'| = 1 everywhere: the interval shrinks around the kink at 1 until
 * it is narrower than xtol; the best point has sufficient decrease. */
static void test_xtol(void)
{
    dpt_linesearch_params p = make_params(1e-4, 0.5);
    p.xtol = 1e-6;
    p.max_evals = 200;
    problem pb = make_problem(kink);
    dpt_linesearch_result out;
    CU_ASSERT_EQUAL(dpt_linesearch_more_thuente(phi_cb, &pb, 1, -1, 0.1, &p, &out),
                    DPT_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "xtol"));
    CU_ASSERT(fabs(out.alpha - 1) < 1e-5);
    CU_ASSERT_EQUAL(out.sufficient_decrease, 1);
    CU_ASSERT_EQUAL(out.strong_wolfe, 0);
    printf("\n    kink: xtol stop after %d evaluations at alpha = %.9g\n", out.evals, out.alpha);
}

/* ================================================ determinism */

/* The same inputs give bit-identical results and the same trials. */
static void test_determinism(void)
{
    for (size_t k = 0; k < sizeof mt_cases / sizeof mt_cases[0]; k++) {
        const mt_case *c = &mt_cases[k];
        const dpt_linesearch_params p = make_params(c->mu, c->eta);
        double f0, g0;
        c->fn(0, &f0, &g0);
        for (int i = 0; i < 4; i++) {
            problem pa = make_problem(c->fn), pb = make_problem(c->fn);
            dpt_linesearch_result a, b;
            memset(&a, 0xA5, sizeof a);
            memset(&b, 0x5A, sizeof b);
            dpt_status sa = dpt_linesearch(phi_cb, &pa, f0, g0, mt_alpha0[i], &p, &a);
            dpt_status sb = dpt_linesearch(phi_cb, &pb, f0, g0, mt_alpha0[i], &p, &b);
            CU_ASSERT_EQUAL(sa, sb);
            CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
            CU_ASSERT_EQUAL(pa.calls, pb.calls);
            CU_ASSERT_EQUAL(memcmp(pa.trace, pb.trace, sizeof pa.trace), 0);
        }
    }
}

static void test_params_defaults(void)
{
    dpt_linesearch_params p;
    memset(&p, 0xFF, sizeof p);
    dpt_linesearch_params_init(&p);
    CU_ASSERT_EQUAL(p.c1, 1e-4);
    CU_ASSERT_EQUAL(p.c2, 0.9);
    CU_ASSERT_EQUAL(p.alpha_min, 1e-20);
    CU_ASSERT_EQUAL(p.alpha_max, 1e20);
    CU_ASSERT_EQUAL(p.xtol, 1e-12);
    CU_ASSERT_EQUAL(p.max_evals, 40);
    CU_ASSERT_EQUAL(p.backtrack_factor, 0.5);
}

/* ================================================================ main */

static int register_suites(void)
{
    static const dpt_test paper[] = {
        {"function 5.1, (mu, eta) = (0.001, 0.1)", test_mt_f1},
        {"function 5.2, (mu, eta) = (0.001, 0.1)", test_mt_f2},
        {"function 5.3, (mu, eta) = (0.1, 0.1)", test_mt_f3},
        {"function 5.4, b = (0.001, 0.001)", test_mt_f4},
        {"function 5.4, b = (0.01, 0.001)", test_mt_f5},
        {"function 5.4, b = (0.001, 0.01)", test_mt_f6},
        {"combined equals More-Thuente", test_combined_matches_mt},
        {"deterministic", test_determinism},
    };
    static const dpt_test simple[] = {
        {"Armijo on a quadratic", test_armijo_quadratic},
        {"Armijo over NaN, and its limit", test_armijo_nonfinite_and_limit},
        {"More-Thuente accepts the exact step", test_mt_accepts_exact_step},
        {"defaults", test_params_defaults},
    };
    static const dpt_test errors[] = {
        {"not a descent direction", test_not_descent},
        {"bad arguments", test_bad_arguments},
        {"callback error is passed on", test_callback_error},
    };
    static const dpt_test stops[] = {
        {"fallback after max_evals", test_fallback},
        {"fallback after NaN", test_fallback_after_nan},
        {"alpha_max", test_alpha_max},
        {"alpha_min", test_alpha_min},
        {"xtol", test_xtol},
    };
    return DPT_ADD_SUITE("paper", paper) ||
           DPT_ADD_SUITE("simple", simple) ||
           DPT_ADD_SUITE("errors", errors) ||
           DPT_ADD_SUITE("stops", stops);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(register_suites(), CU_BRM_VERBOSE);
}
