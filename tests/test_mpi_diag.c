/* The trainer's diagnostics (src/train/diagnose.c, src/diag/probe.c, lanczos.c) against
 * independent references, under mpirun with 1, 2 and 3 ranks:
 *   - curvature along the gradient: on a linear model with the mse loss
 *     (a quadratic in its parameters) g'g and g'Hg of the step's global
 *     minibatch, recomputed by plain per-sample arithmetic in double from
 *     the explicit formula H = (2/K)/B sum_b (I_K x a_b a_b'),
 *     a_b = [x_b; 1], so g'Hg = (2/K)/B sum_b |G a_b|^2; the Taylor terms,
 *     eps* and the ill-conditioning flag on either side of lr g'Hg/g'g = 2;
 *   - Lanczos: on a small tanh MLP at its initial point (indefinite), the
 *     extreme Ritz values of 30 products against all eigenvalues of the
 *     Hessian assembled column by column from the oracle's products into
 *     the ScaLAPACK matrix (p?syevd), the returned direction of negative
 *     curvature; and the trainer's own Lanczos (k = n) on its minibatch
 *     against the assembled minibatch Hessian;
 *     (the rate probed is the one the update uses: warmup included);
 *   - the gradient noise scale the trainer estimates (2+ ranks) with the
 *     parameters held fixed, against |G|^2 and tr(Sigma) of the exact
 *     per-sample gradients of the training set (1 rank: off, and the
 *     summary copes);
 *   - the blocking, overlapped and sharded gradient reductions give the
 *     same probe, Lanczos values and noise estimates.
 * Every assertion is agreed over ranks; a failing condition is printed
 * with its line by the rank that saw it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/solve/dense.h"
#include "../src/train/diagnose.h"
#include "dpt/oracle.h"
#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define PROBE_TOL 1e-10   /* g'g, g'Hg against the double reference */
#define ROUND_TOL 1e-10   /* rounding slack, relative to |lambda_max| */
#define FULL_TOL 1e-9     /* Lanczos with k = n against p?syevd, relative to |lambda_max| */
#define PATH_TOL 1e-9     /* the update paths against each other after 20 steps */
#else
#define PROBE_TOL 1e-4
#define ROUND_TOL 1e-4
#define FULL_TOL 1e-3
#define PATH_TOL 1e-3
#endif
#define LANCZOS_TOL 0.01  /* k = 30 against the exact extremes */

static int world_rank, world_size;

static dpt_real *ralloc(size_t len)
{
    dpt_real *p = calloc(len ? len : 1, sizeof(dpt_real));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static double *dalloc(size_t len)
{
    double *p = calloc(len ? len : 1, sizeof(double));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

/* a condition that names itself when it fails (on the rank that saw it) */
static int check_(int cond, const char *text, int line)
{
    if (!cond) printf("\n    rank %d: line %d: %s does not hold", world_rank, line, text);
    return cond;
}
#define CHECK(c) check_((c) != 0, #c, __LINE__)

/* the fixture's feature as dpt_dataset_gather scales it, exactly */
static double feature(const dpt_dataset *set, uint32_t sample, size_t f)
{
    dpt_real x[FIXTURE_FEATURES];
    uint8_t y;
    CU_ASSERT_FATAL(set->n_features == FIXTURE_FEATURES);
    dpt_dataset_gather(set, &sample, 1, x, &y);
    return (double)x[f];
}

/* 1 if the double is bit-identical on every rank */
static int same_double(double x)
{
    double lo = 0, hi = 0;
    MPI_Allreduce(&x, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&x, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return memcmp(&lo, &hi, sizeof lo) == 0;
}

/* The global minibatch of trainer t's first step (call it after that
 * step), rebuilt as start_epoch does: perm[0, global batch); checks it
 * against t->perm and that the ranks' slices (dpt_batch_slice) tile it.
 * Returns its size; samples[] receives it. */
static size_t step0_minibatch(const dpt_trainer *t, uint32_t *samples, int *ok)
{
    size_t n = t->train_set->n_samples;
    uint32_t *perm = malloc(sizeof(uint32_t) * n);
    CU_ASSERT_FATAL(perm != NULL);
    dpt_rng rng;
    dpt_rng_init(&rng, t->cfg->train.seed, DPT_STREAM_SHUFFLE, 0, 0);
    dpt_rng_permutation(&rng, perm, (uint32_t)n);
    *ok &= CHECK(memcmp(perm, t->perm, sizeof(uint32_t) * n) == 0);
    size_t begin, count, global = 0, next = 0;
    for (int r = 0; r < world_size; r++) {
        dpt_batch_plan plan;
        *ok &= dpt_batch_plan_init(&plan, n, (size_t)t->cfg->train.batch_size, t->cfg->train.drop_last,
                                   r, world_size) == DPT_OK;
        dpt_batch_slice(&plan, 0, &begin, &count, &global);
        *ok &= CHECK(begin == next);
        if (r == world_rank) *ok &= CHECK(count == t->local_count); /* what this rank's step used */
        next = begin + count;
    }
    *ok &= CHECK(next == global && global == t->plan.global_batch);
    memcpy(samples, perm, sizeof(uint32_t) * global);
    free(perm);
    return global;
}

static void load_trainer(dpt_trainer *t, dpt_config *cfg, const char *base, const char *const *sets,
                         int n_sets, const dpt_dataset *set)
{
    fixture_config(cfg, base, sets, n_sets);
    dpt_status st = dpt_trainer_create(t, cfg, MPI_COMM_WORLD, set);
    if (st != DPT_OK && world_rank == 0) printf("\n  trainer: %s", dpt_error_message());
    CU_ASSERT_FATAL(st == DPT_OK);
    CU_ASSERT_FATAL(t->diag != NULL);
}

/* ================================================================ 1. curvature along g */

/* 103 samples, 7 per rank: a linear model 12 -> 4 (52 parameters) with
 * the mse loss (1/K) sum_k (z_k - t_k)^2 (src/nn/loss.c), so the Hessian of
 * the mean minibatch loss is (2/K)/B sum_b I_K x a_b a_b', a_b = [x_b; 1]. */
static const char *const linear_config =
    "[model]\nlayers = 4\nloss = mse\n"
    "[train]\nepochs = 1\nseed = 11\nbatch_size = 7\n"
    "[optim]\nmethod = sgd\n"
    "[diagnostics]\nevery = 1\nlanczos_steps = 0\nnoise_scale = true\nfile =\n"
    "[log]\nprogress = none\nmetrics =\n";

#define LIN_IN FIXTURE_FEATURES
#define LIN_K 4

typedef struct probe_run {
    dpt_curvature_probe probe;
    int have_probe, have_lanczos;
    double gtg_ref, gthg_ref;  /* the explicit formula, in double */
    double lr;                 /* [optim] lr */
    double lr_used;            /* the rate the update used (t->last_lr) */
    int ok;                    /* the minibatch and the slices as expected */
} probe_run;

/* One step of the linear model at learning rate lr (warmup steps of
 * linear warmup: the first update's rate is lr / warmup); the probe and
 * its reference from the pre-step parameters and the step's samples. */
static void linear_step(double lr, int warmup, probe_run *out)
{
    static dpt_config cfg;
    static dpt_trainer t;
    char lr_set[64], warmup_set[64];
    snprintf(lr_set, sizeof lr_set, "optim.lr=%.17g", lr);
    snprintf(warmup_set, sizeof warmup_set, "optim.warmup_steps=%d", warmup);
    const char *sets[] = {lr_set, warmup_set};
    dpt_dataset set;
    fixture_dataset(&set, 103);
    load_trainer(&t, &cfg, linear_config, sets, 2, &set);
    const size_t n = t.model.n_params, stride = LIN_IN + 1;
    CU_ASSERT_FATAL(n == LIN_K * stride);
    double *theta = dalloc(n);
    for (size_t i = 0; i < n; i++) theta[i] = (double)t.model.params[i];
    CU_ASSERT_FATAL(dpt_trainer_step(&t) == DPT_OK);
    memset(out, 0, sizeof *out);
    out->ok = 1;
    out->lr = lr;
    out->lr_used = t.last_lr;
    out->probe = t.diag->probe;
    out->have_probe = t.diag->have_probe;
    out->have_lanczos = t.diag->have_lanczos;

    uint32_t samples[FIXTURE_MAX_SAMPLES];
    const size_t B = step0_minibatch(&t, samples, &out->ok);
    /* G[k][0..d) weights (w[out][in], row-major), G[k][d] the bias: the
     * mean over the minibatch of dL/dz_k a_b' with dL/dz = 2 (z - t) / K */
    double G[LIN_K][LIN_IN + 1] = {{0}}, a[LIN_IN + 1];
    for (size_t s = 0; s < B; s++) {
        for (size_t f = 0; f < LIN_IN; f++) a[f] = feature(&set, samples[s], f);
        a[LIN_IN] = 1;
        for (int k = 0; k < LIN_K; k++) {
            double z = theta[LIN_K * LIN_IN + k]; /* the bias after all weights */
            for (size_t f = 0; f < LIN_IN; f++) z += theta[k * LIN_IN + f] * a[f];
            double dz = 2.0 * (z - (set.labels[samples[s]] == k ? 1.0 : 0.0)) / LIN_K;
            for (size_t f = 0; f <= LIN_IN; f++) G[k][f] += dz * a[f] / (double)B;
        }
    }
    for (int k = 0; k < LIN_K; k++)
        for (size_t f = 0; f <= LIN_IN; f++) out->gtg_ref += G[k][f] * G[k][f];
    for (size_t s = 0; s < B; s++) { /* g'Hg = (2/K)/B sum_b |G a_b|^2 */
        for (size_t f = 0; f < LIN_IN; f++) a[f] = feature(&set, samples[s], f);
        a[LIN_IN] = 1;
        for (int k = 0; k < LIN_K; k++) {
            double ga = 0;
            for (size_t f = 0; f <= LIN_IN; f++) ga += G[k][f] * a[f];
            out->gthg_ref += (2.0 / LIN_K) * ga * ga / (double)B;
        }
    }
    out->ok &= CHECK(t.diag->probes == 1 && t.diag->ill_steps == out->probe.ill_conditioned);
    free(theta);
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

/* the probe's fields against its definition (dpt/diag.h) from the reference */
static int probe_consistent(const probe_run *r, double *err_gtg, double *err_gthg)
{
    const dpt_curvature_probe *p = &r->probe;
    *err_gtg = rel(p->gtg, r->gtg_ref);
    *err_gthg = rel(p->gthg, r->gthg_ref);
    int ok = CHECK(r->ok && r->have_probe && !r->have_lanczos);
    ok &= CHECK(*err_gtg < PROBE_TOL && *err_gthg < PROBE_TOL);
    ok &= CHECK(p->eps == r->lr_used); /* the rate of the update the probe is for */
    ok &= CHECK(rel(p->first_order, r->lr_used * r->gtg_ref) < PROBE_TOL);
    ok &= CHECK(rel(p->second_order, 0.5 * r->lr_used * r->lr_used * r->gthg_ref) < PROBE_TOL);
    ok &= CHECK(rel(p->eps_star, r->gtg_ref / r->gthg_ref) < PROBE_TOL);
    ok &= CHECK(p->predicted_change == p->second_order - p->first_order);
    ok &= CHECK(p->ill_conditioned == (p->second_order > p->first_order));
    return ok;
}

static void test_curvature_probe(void)
{
    probe_run base, on, off, warm;
    double e1, e2, worst = 0;
    linear_step(0.01, 0, &base);
    int ok = CHECK(probe_consistent(&base, &e1, &e2));
    worst = fmax(e1, e2);
    ok &= CHECK(base.probe.ill_conditioned == 0); /* lr g'Hg / g'g = 0.01 r < 2 */
    const double ratio = base.gthg_ref / base.gtg_ref; /* the curvature along g */
    /* either side of lr = 2 / ratio, where (1/2) lr^2 g'Hg = lr g'g */
    linear_step(2.2 / ratio, 0, &on);
    linear_step(1.8 / ratio, 0, &off);
    /* with warmup over 4 steps the first update runs at lr / 4: 4.4 / ratio
     * is then 1.1 / ratio, not ill-conditioned */
    linear_step(4.4 / ratio, 4, &warm);
    ok &= CHECK(probe_consistent(&warm, &e1, &e2)), worst = fmax(worst, fmax(e1, e2));
    ok &= CHECK(warm.lr_used == warm.lr / 4 && warm.probe.ill_conditioned == 0);
    ok &= CHECK(base.lr_used == base.lr && on.lr_used == on.lr && off.lr_used == off.lr);
    ok &= CHECK(probe_consistent(&on, &e1, &e2)), worst = fmax(worst, fmax(e1, e2));
    ok &= CHECK(probe_consistent(&off, &e1, &e2)), worst = fmax(worst, fmax(e1, e2));
    ok &= CHECK(on.probe.ill_conditioned == 1 && off.probe.ill_conditioned == 0);
    ok &= CHECK(on.probe.predicted_change > 0 && off.probe.predicted_change < 0);
    /* the lr changes nothing before the first update: the same g'g, g'Hg */
    ok &= CHECK(on.probe.gtg == base.probe.gtg && on.probe.gthg == base.probe.gthg);
    ok &= CHECK(off.probe.gtg == base.probe.gtg && off.probe.gthg == base.probe.gthg);
    ok &= CHECK(same_double(base.probe.gtg) && same_double(base.probe.gthg));
    if (world_rank == 0)
        printf("\n  linear mse, %d ranks: g'g %.6g g'Hg %.6g (g'Hg/g'g %.4g, eps* %.4g); worst relative "
               "error against the explicit formula %.2g (tolerance %g); lr %.4g %s, lr %.4g %s, lr %.4g "
               "with warmup: probed at %.4g, %s",
               world_size, base.gtg_ref, base.gthg_ref, ratio, base.probe.eps_star, worst, PROBE_TOL,
               on.lr, on.probe.ill_conditioned ? "ill-conditioned" : "NOT flagged", off.lr,
               off.probe.ill_conditioned ? "FLAGGED" : "not flagged", warm.lr, warm.probe.eps,
               warm.probe.ill_conditioned ? "FLAGGED" : "not flagged");
    CU_ASSERT(fixture_all_ranks(ok));
    CU_ASSERT(fixture_all_ranks(ratio * 10 > 4.4)); /* the rates above within the config's lr <= 10 */
}

/* ================================================================ 2. Lanczos */

typedef struct hv_ctx {
    dpt_oracle *o;
    const dpt_real *theta;
} hv_ctx;

static dpt_status oracle_hv(void *user, const dpt_real *v, dpt_real *out)
{
    hv_ctx *c = user;
    return dpt_oracle_curvature(c->o, c->theta, v, out, DPT_CURV_HESSIAN);
}

/* The Hessian of o's objective at theta assembled column by column from
 * its products (as newton.c's assemble_hessian), symmetrized, into A (n x n,
 * created here); its eigenvalues into w[n], ascending. */
static int assemble(dpt_dense *A, dpt_oracle *o, const dpt_real *theta, double *w)
{
    const size_t n = o->model->n_params;
    if (dpt_dense_create(A, MPI_COMM_WORLD, (int)n, 0) != DPT_OK) return 0;
    dpt_real *e = ralloc(n), *col = ralloc(n);
    int ok = 1;
    for (size_t j = 0; ok && j < n; j++) {
        e[j] = 1;
        ok &= CHECK(dpt_oracle_curvature(o, theta, e, col, DPT_CURV_HESSIAN) == DPT_OK);
        e[j] = 0;
        dpt_dense_set_column(A, (int)j, col);
    }
    ok = ok && dpt_dense_symmetrize(A) == DPT_OK && dpt_dense_eigenvalues(A, w) == DPT_OK;
    free(e), free(col);
    return ok;
}

/* v' A v by the dense matrix */
static double quad_form(dpt_dense *A, const dpt_real *v, size_t n)
{
    dpt_real *av = ralloc(n);
    double q = 0;
    if (dpt_dense_gemv(A, v, av) == DPT_OK)
        for (size_t i = 0; i < n; i++) q += (double)v[i] * av[i];
    else
        q = NAN;
    free(av);
    return q;
}

/* On the tanh MLP "6 tanh, 4" (12*6+6 + 6*4+4 = 106 parameters) at its
 * initial point, the mean softmax cross-entropy over 103 samples (l2 = 0):
 * 30 Lanczos steps against the assembled Hessian's spectrum. */
static void test_lanczos_exact(void)
{
    dpt_dataset set;
    fixture_dataset(&set, 103);
    dpt_model m;
    fixture_model(&m, "6 tanh, 4");
    const size_t n = m.n_params;
    dpt_oracle o;
    CU_ASSERT_FATAL(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &set, 0, 103, 1.0, 0.0) == DPT_OK);
    dpt_real *theta = ralloc(n), *y = ralloc(n);
    memcpy(theta, m.params, sizeof(dpt_real) * n);
    double *w = dalloc(n);
    dpt_dense A;
    int ok = CHECK(assemble(&A, &o, theta, w));
    const double lmin = w[0], lmax = w[n - 1], scale = fmax(fabs(lmin), fabs(lmax));
    int negative = 0;
    for (size_t i = 0; i < n; i++) negative += w[i] < -sqrt(DPT_REAL_EPS) * scale;

    hv_ctx ctx = {&o, theta};
    dpt_lanczos_params lp;
    dpt_lanczos_params_init(&lp);
    const int k = n < 30 ? (int)n : 30;
    lp.steps = k;
    lp.seed = 77;
    dpt_lanczos_result r;
    ok &= CHECK(dpt_lanczos_extremes(oracle_hv, &ctx, n, &lp, &r, y) == DPT_OK);
    /* k = 2, 4, ..., 30 from the same start: T_k is the leading block of
     * T_k+2, so by interlacing lambda_min(T_k) only falls and lambda_max
     * only rises with k, always inside [lambda_min, lambda_max] of H */
    double prev_min = INFINITY, prev_max = -INFINITY, err_min_at[16] = {0};
    for (int kk = 2; kk <= k; kk += 2) {
        dpt_lanczos_params q = lp;
        q.steps = kk;
        dpt_lanczos_result rk;
        ok &= CHECK(dpt_lanczos_extremes(oracle_hv, &ctx, n, &q, &rk, NULL) == DPT_OK);
        ok &= CHECK(rk.lambda_min <= prev_min + ROUND_TOL * scale && rk.lambda_max >= prev_max - ROUND_TOL * scale);
        ok &= CHECK(rk.lambda_min >= lmin - ROUND_TOL * scale && rk.lambda_max <= lmax + ROUND_TOL * scale);
        prev_min = rk.lambda_min, prev_max = rk.lambda_max;
        if (kk / 2 < 16) err_min_at[kk / 2] = rel(rk.lambda_min, lmin);
    }
    ok &= CHECK(prev_min == r.lambda_min && prev_max == r.lambda_max); /* k = 30 again: the same numbers */
    const double err_max = rel(r.lambda_max, lmax), err_min = rel(r.lambda_min, lmin);
    const double err_ray = rel(r.rayleigh_min, lmin);
    double ynorm = 0;
    for (size_t i = 0; i < n; i++) ynorm += (double)y[i] * y[i];
    const double q = quad_form(&A, y, n); /* y'Hy by the assembled matrix */
    ok &= CHECK(r.steps == k);
    ok &= CHECK(lmin < 0 && lmin < -0.01 * lmax); /* indefinite, and lambda_min not lost in rounding */
    ok &= CHECK(err_max <= LANCZOS_TOL && err_min <= LANCZOS_TOL);
    /* Ritz values converge from inside the spectrum */
    ok &= CHECK(r.lambda_max <= lmax + ROUND_TOL * scale && r.lambda_min >= lmin - ROUND_TOL * scale);
    /* the returned direction: unit, negative curvature, Rayleigh quotient = lambda_min */
    ok &= CHECK(fabs(ynorm - 1) < 10 * ROUND_TOL && r.rayleigh_min < 0 && err_ray <= LANCZOS_TOL);
    ok &= CHECK(fabs(q - r.rayleigh_min) <= ROUND_TOL * scale);
    ok &= CHECK(same_double(r.lambda_min) && same_double(r.lambda_max) && same_double(r.rayleigh_min));

    /* k = n: every eigenvalue, so the extremes to rounding */
    dpt_lanczos_result full;
    lp.steps = (int)n;
    ok &= CHECK(dpt_lanczos_extremes(oracle_hv, &ctx, n, &lp, &full, NULL) == DPT_OK);
    const double err_full = fmax(fabs(full.lambda_max - lmax), fabs(full.lambda_min - lmin)) / scale;
    ok &= CHECK(err_full <= FULL_TOL);
    if (world_rank == 0)
        printf("\n  tanh MLP, n %zu, %d ranks: exact lambda in [%.6g, %.6g], %d negative; Lanczos k %d: "
               "[%.6g, %.6g], relative errors min %.2g max %.2g (tolerance %g), residuals %.2g %.2g; "
               "Ritz vector: |y|^2-1 %.2g, y'Hy %.6g (rel. to lambda_min %.2g, to the assembled H %.2g); "
               "k = n (%d steps): error %.2g of |lambda|max (tolerance %g); on the way: lambda_min's error "
               "%.2g at k = 10, %.2g at k = 20",
               n, world_size, lmin, lmax, negative, k, r.lambda_min, r.lambda_max,
               err_min, err_max, LANCZOS_TOL, r.residual_min, r.residual_max, ynorm - 1, r.rayleigh_min,
               err_ray, fabs(q - r.rayleigh_min) / scale, full.steps, err_full, FULL_TOL, err_min_at[5], err_min_at[10]);
    CU_ASSERT(fixture_all_ranks(ok));
    dpt_dense_destroy(&A);
    dpt_oracle_destroy(&o);
    dpt_model_destroy(&m);
    dpt_dataset_free(&set);
    free(theta), free(y), free(w);
}

/* The trainer's Lanczos (k = n) and probe on its step-0 minibatch against
 * the Hessian of that minibatch assembled from an oracle over the same
 * samples at the pre-step parameters. */
static const char *const mlp_config =
    "[model]\nlayers = 6 tanh, 4\n"
    "[train]\nepochs = 1\nseed = 3\nbatch_size = 8\n"
    "[optim]\nmethod = sgd\nlr = 0.05\n"
    "[diagnostics]\nevery = 1\nlanczos_steps = 106\nfile =\n"
    "[log]\nprogress = none\nmetrics =\n";

static void test_lanczos_trainer(void)
{
    static dpt_config cfg;
    static dpt_trainer t;
    dpt_dataset set;
    fixture_dataset(&set, 103);
    load_trainer(&t, &cfg, mlp_config, NULL, 0, &set);
    const size_t n = t.model.n_params;
    CU_ASSERT_FATAL(n == 106);
    dpt_real *theta = ralloc(n), *g = ralloc(n);
    memcpy(theta, t.model.params, sizeof(dpt_real) * n);
    CU_ASSERT_FATAL(dpt_trainer_step(&t) == DPT_OK);
    const dpt_diagnostics *d = t.diag;
    /* k = n steps, or fewer when the Krylov space closes (an invariant
     * subspace: a minibatch Hessian has repeated eigenvalues) */
    int ok = CHECK(d->have_probe && d->have_lanczos && d->lanczos.steps >= 1 && d->lanczos.steps <= (int)n);

    /* the minibatch as a data set of its own, in order */
    uint32_t samples[FIXTURE_MAX_SAMPLES];
    const size_t B = step0_minibatch(&t, samples, &ok);
    uint8_t *feats = malloc(B * set.n_features), labels[FIXTURE_MAX_SAMPLES];
    CU_ASSERT_FATAL(feats != NULL);
    for (size_t s = 0; s < B; s++) {
        memcpy(feats + s * set.n_features, (const uint8_t *)set.features + (size_t)samples[s] * set.n_features,
               set.n_features);
        labels[s] = set.labels[samples[s]];
    }
    dpt_dataset mb;
    CU_ASSERT_FATAL(dpt_dataset_from_arrays(&mb, feats, labels, B, set.n_features) == DPT_OK);
    dpt_model m;
    CU_ASSERT_FATAL(dpt_model_create(&m, (dpt_shape){FIXTURE_FEATURES, 1, 1}, &cfg.model.spec, 16) == DPT_OK);
    CU_ASSERT_FATAL(m.n_params == n);
    dpt_oracle o;
    CU_ASSERT_FATAL(dpt_oracle_create(&o, MPI_COMM_WORLD, &m, &mb, 0, B, 1.0, 0.0) == DPT_OK);
    double *w = dalloc(n), f = 0;
    dpt_dense A;
    ok &= CHECK(assemble(&A, &o, theta, w));
    ok &= CHECK(dpt_oracle_value_grad(&o, theta, &f, g) == DPT_OK);
    const double lmin = w[0], lmax = w[n - 1], scale = fmax(fabs(lmin), fabs(lmax));
    const dpt_lanczos_result *r = &d->lanczos;
    const double err = fmax(fabs(r->lambda_min - lmin), fabs(r->lambda_max - lmax)) / scale;
    ok &= CHECK(err <= FULL_TOL);
    /* the probe against g'g and g'Hg of the oracle's gradient and matrix */
    double gtg = 0;
    for (size_t i = 0; i < n; i++) gtg += (double)g[i] * g[i];
    const double gthg = quad_form(&A, g, n), curv = d->probe.gthg / d->probe.gtg;
    const double err_probe = fmax(rel(d->probe.gtg, gtg), fabs(d->probe.gthg - gthg) / (scale * gtg));
    ok &= CHECK(err_probe <= PROBE_TOL);
    ok &= CHECK(r->lambda_min - ROUND_TOL * scale <= curv && curv <= r->lambda_max + ROUND_TOL * scale);
    /* an indefinite minibatch Hessian: the run counts a negative direction */
    ok &= CHECK(lmin < -0.01 * lmax && r->rayleigh_min < 0 && d->negative_runs == 1 && d->neg_layer >= 0);
    ok &= CHECK(fabs(r->rayleigh_min - lmin) <= FULL_TOL * scale);
    if (world_rank == 0)
        printf("\n  trainer, minibatch %zu, %d ranks: exact lambda [%.6g, %.6g], Lanczos k = n (%d steps) [%.6g, %.6g] "
               "(error %.2g of |lambda|max, tolerance %g); g'Hg/g'g %.4g inside; probe error %.2g; "
               "negative direction mostly in layer %d (%.0f%%)",
               B, world_size, lmin, lmax, r->steps, r->lambda_min, r->lambda_max, err, FULL_TOL, curv, err_probe,
               d->neg_layer + 1, 100 * d->neg_layer_share);
    CU_ASSERT(fixture_all_ranks(ok));
    dpt_diagnose_report(&t, 0); /* the record paths run (no file, no console) */
    dpt_diagnose_summary(&t, 0);
    dpt_dense_destroy(&A);
    dpt_oracle_destroy(&o);
    dpt_model_destroy(&m);
    dpt_dataset_free(&mb);
    free(feats), free(w), free(theta), free(g);
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

/* ================================================================ 3. noise scale */

/* N = 512 samples, 2 per rank (B_small = 2: a 1/b instead of 1/b^2 in
 * |G_small|^2 would show), drop_last: every step is full. A linear model
 * 12 -> 4 with the mse loss at a fixed point (its own init seed, so that
 * the shuffle seed changes only the sampling) with |G|^2 = 0.62 and
 * tr(Sigma) = 1.89: B_simple = 3.1, near the global batch (4 or 6), so
 * neither estimate is a small correction to the other. lr 1e-12 with sgd:
 * the parameters stay put (they move by about 1e-9).
 *
 * The tolerance: over 30 shuffle seeds (201..230) the errors of EMA S and
 * EMA |G|^2 after 4000 steps (decay 0.999) had means within 0.2% of zero
 * (no bias) and rms 1.25% and 1.6% (max 2.5% and 4.1%) with 2 ranks, 0.8%
 * and 0.7% (max 1.9%, 1.9%) with 3 ranks, the same in both precisions.
 * 10% is more than 6 rms away; the formulas one could get wrong are much
 * further off (printed). DPT_TEST_NOISE_SEED=n reruns with another shuffle
 * seed to measure the spread again. */
#define NOISE_N 512
#define NOISE_STEPS 4000
#define NOISE_INIT_SEED 3
#define NOISE_TOL 0.10

static const char *const noise_config =
    "[model]\nlayers = 4\nloss = mse\n"
    "[train]\nepochs = 1000\nseed = 21\nbatch_size = 2\ndrop_last = true\n"
    "[optim]\nmethod = sgd\nlr = 1e-12\n"
    "[diagnostics]\nevery = 100000000\nlanczos_steps = 0\nnoise_scale = true\nnoise_decay = 0.999\nfile =\n"
    "[log]\nprogress = none\nmetrics =\n";

/* |G|^2 and tr(Sigma) = mean_i |g_i - G|^2 of the per-sample gradients at
 * the model's parameters, by one forward-backward pass per sample. */
static void exact_moments(dpt_model *m, const dpt_dataset *set, double *g2, double *tr)
{
    const size_t n = m->n_params, N = set->n_samples;
    double *G = dalloc(n), *gi = dalloc(n * N);
    dpt_real *x = ralloc(set->n_features);
    dpt_forward_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t y;
        dpt_batch_metrics bm;
        memset(&bm, 0, sizeof bm);
        memset(m->grads, 0, sizeof(dpt_real) * n);
        dpt_dataset_gather(set, &i, 1, x, &y);
        dpt_model_forward_backward(m, x, &y, 1, &ctx, &bm);
        for (size_t j = 0; j < n; j++) gi[i * n + j] = (double)m->grads[j], G[j] += gi[i * n + j] / (double)N;
    }
    *g2 = *tr = 0;
    for (size_t j = 0; j < n; j++) *g2 += G[j] * G[j];
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < n; j++) *tr += (gi[i * n + j] - G[j]) * (gi[i * n + j] - G[j]) / (double)N;
    memset(m->grads, 0, sizeof(dpt_real) * n);
    free(G), free(gi), free(x);
}

static void test_noise_scale(void)
{
    static dpt_config cfg;
    static dpt_trainer t;
    char seed_set[64] = "train.seed=21";
    const char *env = getenv("DPT_TEST_NOISE_SEED");
    if (env) snprintf(seed_set, sizeof seed_set, "train.seed=%s", env);
    const char *sets[] = {seed_set};
    dpt_dataset set;
    fixture_dataset(&set, NOISE_N);
    load_trainer(&t, &cfg, noise_config, sets, 1, &set);
    if (world_size == 1) { /* one batch size only: no estimate, and the summary says so */
        int ok = CHECK(t.diag->noise_on == 0);
        for (int s = 0; s < 5; s++) ok &= CHECK(dpt_trainer_step(&t) == DPT_OK && !t.diag->have_noise);
        ok &= CHECK(t.diag->noise.steps == 0);
        dpt_diagnose_summary(&t, 1);
        CU_ASSERT(fixture_all_ranks(ok));
        dpt_trainer_destroy(&t);
        dpt_dataset_free(&set);
        return;
    }
    const size_t n = t.model.n_params;
    CU_ASSERT_FATAL(dpt_model_init_params(&t.model, NOISE_INIT_SEED, NULL) == DPT_OK);
    dpt_real *theta = ralloc(n);
    memcpy(theta, t.model.params, sizeof(dpt_real) * n);
    double g2 = 0, tr = 0;
    exact_moments(&t.model, &set, &g2, &tr);
    int ok = CHECK(t.diag->noise_on == 1);
    for (int s = 0; s < NOISE_STEPS; s++) ok &= CHECK(dpt_trainer_step(&t) == DPT_OK && t.diag->have_noise);
    double moved = 0;
    for (size_t i = 0; i < n; i++) moved = fmax(moved, fabs((double)t.model.params[i] - theta[i]));
    const dpt_noise_scale *ns = &t.diag->noise;
    const double N = NOISE_N, b = cfg.train.batch_size, Bg = b * world_size;
    /* the expectations under sampling without replacement within an epoch
     * (every rank's slice and the global batch are simple random samples
     * of the N): E|G_m|^2 = |G|^2 + tr(Sigma) (N - m) / (m (N - 1)) */
    const double s_true = tr * N / (N - 1), g2_true = g2 - tr / (N - 1), b_true = s_true / g2_true;
    const double err_s = (ns->ema_s - s_true) / s_true, err_g2 = (ns->ema_g2 - g2_true) / g2_true;
    const double err_b = (ns->b_simple - b_true) / b_true;
    /* what formulas one could get wrong would give from the same run: S
     * without the 1 / (1/B_small - 1/B_big) scaling, and |G_big|^2 taken
     * for |G|^2 (the EMAs are linear: EMA|G_big|^2 = EMA(G2) + EMA(S) / B_big) */
    const double wrong_s = rel(ns->ema_s * (1 / b - 1 / Bg), s_true);
    const double wrong_g2 = rel(ns->ema_g2 + ns->ema_s / Bg, g2_true);
    ok &= CHECK(ns->steps == NOISE_STEPS && moved < 1e-8);
    ok &= CHECK(fabs(err_s) <= NOISE_TOL && fabs(err_g2) <= NOISE_TOL && fabs(err_b) <= 2 * NOISE_TOL);
    ok &= CHECK(wrong_s > 2 * NOISE_TOL && wrong_g2 > 2 * NOISE_TOL);
    ok &= CHECK(same_double(ns->ema_s) && same_double(ns->ema_g2));
    if (world_rank == 0)
        printf("\n  noise scale, %d ranks, B_small %.0f B_big %.0f, %d steps, %s: |G|^2 %.5g tr(Sigma) %.5g; "
               "EMA S %.5g (expected %.5g, error %+.4f), EMA |G|^2 %.5g (expected %.5g, error %+.4f), "
               "B_simple %.4g (expected %.4g, error %+.4f); tolerance %g (B_simple %g); wrong formulas off "
               "by %.2f (S unscaled) and %.2f (|G_big|^2 for |G|^2); parameters moved %.2g",
               world_size, b, Bg, NOISE_STEPS, seed_set, g2, tr, ns->ema_s, s_true, err_s, ns->ema_g2,
               g2_true, err_g2, ns->b_simple, b_true, err_b, NOISE_TOL, 2 * NOISE_TOL, wrong_s, wrong_g2, moved);
    CU_ASSERT(fixture_all_ranks(ok));
    dpt_diagnose_summary(&t, world_rank == 0);
    free(theta);
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

/* ================================================================ 4. the update paths */

/* The diagnostics ride on the gradient reduction, which has three paths
 * (src/train/update.c): the blocking allreduce, buckets reduced during the
 * backward pass (the local norm then accumulates layer by layer from the
 * layer_done hook) and the sharded state (the probe gathers g from the
 * slices). The tanh MLP for 20 steps, diagnostics at steps 10 and 20 with
 * 20 Lanczos steps, the noise scale every step: the same numbers on every
 * path, up to the rounding of sums taken in another order. */
typedef struct path_result {
    int sharded, overlapped;
    long noise_steps, probes, lanczos_runs;
    double ema_s, ema_g2, gtg, gthg, lmin, lmax;
} path_result;

static void path_run(const char *shard, const char *overlap, path_result *out)
{
    static dpt_config cfg;
    static dpt_trainer t;
    const char *sets[] = {shard, overlap, "optim.bucket_mb=0.0001", "diagnostics.every=10",
                          "diagnostics.lanczos_steps=20", "train.drop_last=true"};
    dpt_dataset set;
    fixture_dataset(&set, 103);
    load_trainer(&t, &cfg, mlp_config, sets, 6, &set);
    int ok = 1;
    for (int s = 0; s < 20; s++) ok &= CHECK(dpt_trainer_step(&t) == DPT_OK);
    CU_ASSERT_FATAL(fixture_all_ranks(ok));
    const dpt_diagnostics *d = t.diag;
    *out = (path_result){t.sharded, t.overlapped, d->noise.steps, d->probes, d->lanczos_runs, d->noise.ema_s,
                         d->noise.ema_g2, d->probe.gtg, d->probe.gthg, d->lanczos.lambda_min, d->lanczos.lambda_max};
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

static double path_diff(const path_result *a, const path_result *b)
{
    double worst = 0;
    const double x[] = {a->ema_s, a->ema_g2, a->gtg, a->gthg, a->lmin, a->lmax};
    const double y[] = {b->ema_s, b->ema_g2, b->gtg, b->gthg, b->lmin, b->lmax};
    for (int i = 0; i < 6; i++)
        worst = fmax(worst, y[i] == 0 ? fabs(x[i]) : rel(x[i], y[i]));
    return worst;
}

static void test_update_paths(void)
{
    path_result blocking, overlap, sharded;
    path_run("optim.shard_state=false", "optim.overlap=false", &blocking);
    path_run("optim.shard_state=false", "optim.overlap=true", &overlap);
    path_run("optim.shard_state=true", "optim.overlap=false", &sharded);
    const double d_overlap = path_diff(&overlap, &blocking), d_sharded = path_diff(&sharded, &blocking);
    int ok = CHECK(overlap.overlapped == (world_size > 1) && sharded.sharded && !blocking.overlapped);
    ok &= CHECK(blocking.probes == 2 && blocking.lanczos_runs == 2 && blocking.lmin < 0);
    ok &= CHECK(blocking.noise_steps == (world_size > 1 ? 20 : 0));
    ok &= CHECK(overlap.noise_steps == blocking.noise_steps && sharded.noise_steps == blocking.noise_steps);
    ok &= CHECK(d_overlap <= PATH_TOL && d_sharded <= PATH_TOL);
    if (world_rank == 0)
        printf("\n  %d ranks, after 20 steps: largest relative difference from the blocking path: "
               "overlapped %.2g, sharded %.2g (tolerance %g); lambda [%.4g, %.4g], EMA S %.4g, EMA |G|^2 %.4g",
               world_size, d_overlap, d_sharded, PATH_TOL, blocking.lmin, blocking.lmax, blocking.ema_s,
               blocking.ema_g2);
    CU_ASSERT(fixture_all_ranks(ok));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("diagnostics", NULL, NULL);
    CU_add_test(suite, "curvature along g = explicit formula on a quadratic; the flag at lr g'Hg/g'g = 2",
                test_curvature_probe);
    CU_add_test(suite, "Lanczos (30 steps) = extremes of the assembled Hessian (p?syevd)", test_lanczos_exact);
    CU_add_test(suite, "trainer's Lanczos and probe = its minibatch's assembled Hessian", test_lanczos_trainer);
    CU_add_test(suite, "noise scale in the trainer = |G|^2 and tr(Sigma) of the exact per-sample gradients",
                test_noise_scale);
    CU_add_test(suite, "blocking, overlapped and sharded reductions: the same diagnostics", test_update_paths);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
