/* Batch normalization, dropout and weight initialization (dpt/layers.h):
 * forward passes against their formulas, backward passes against central
 * finite differences, synchronized statistics against the whole batch, and
 * random initializations against their distributions. */
#include "cunit_util.h"
#include "fd_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/layers.h"

/* Finite differences as in test_gradcheck.c: error |a - n| / max(|a|, |n|,
 * REL_FLOOR); the double build is the real check (< 1e-6), float rounding
 * of the forward pass makes the single-precision quotient noisy at ~1e-3.
 * TIGHT: agreement of two computations of the same value; ORTHO_TOL: of
 * W W^T with the identity. */
#ifdef DPT_DOUBLE
#define FD_STEP 1e-5
#define MAX_REL_ERR 1e-6
#define REL_FLOOR 1e-4
#define TIGHT 1e-10
#define ORTHO_TOL 1e-12
#else
#define FD_STEP 1e-3
#define MAX_REL_ERR 2e-2
#define REL_FLOOR 1e-2
#define TIGHT 1e-4
#define ORTHO_TOL 1e-5
#endif

enum { MAXN = 512, MAXC = 8 };

static double rel_err(double a, double n) { return dpt_fd_rel_err(a, n, REL_FLOOR); }

/* |a - b| relative to max(1, |b|) */
static int near(double a, double b, double tol)
{
    return fabs(a - b) <= tol * fmax(1, fabs(b));
}

static void fill_uniform(dpt_real *x, size_t n, double lo, double hi, uint64_t seed)
{
    dpt_fd_fill_uniform(x, n, lo, hi, seed);
}

/* x[B][C][S] with a different offset and spread per channel, so that the
 * normalization has something to remove */
static void fill_channels(dpt_real *x, int B, int C, int S, uint64_t seed)
{
    fill_uniform(x, (size_t)B * C * S, -1, 1, seed);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int s = 0; s < S; s++) {
                dpt_real *v = &x[((size_t)b * C + c) * S + s];
                *v = (dpt_real)(3 - c + (1 + c) * *v);
            }
}

static dpt_batchnorm_ctx bn_ctx(double *scratch)
{
    return (dpt_batchnorm_ctx){.momentum = 0.9, .eps = 1e-5, .scratch = scratch};
}

/* Two-pass per-channel mean and biased variance of v[B][C][S]. */
static void channel_stats(double *mean, double *var, const dpt_real *v, int B, int C, int S)
{
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) sum += v[((size_t)b * C + c) * S + s];
        mean[c] = sum / ((double)B * S);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++) {
                double d = v[((size_t)b * C + c) * S + s] - mean[c];
                sq += d * d;
            }
        var[c] = sq / ((double)B * S);
    }
}

/* ---------------------------------------------------------------- batch norm forward */

static void check_bn_train(int B, int C, int S)
{
    dpt_real x[MAXN], out[MAXN], xhat[MAXN], z[MAXN], inv_std[MAXC];
    dpt_real gamma[MAXC], beta[MAXC], rm[MAXC], rv[MAXC];
    double scratch[3 * MAXC + 1], mx[MAXC], vx[MAXC], mz[MAXC], vz[MAXC];
    int n = B * C * S, N = B * S;
    fill_channels(x, B, C, S, 1);
    fill_uniform(gamma, C, 0.5, 2, 2);
    fill_uniform(beta, C, -1, 1, 3);
    for (int c = 0; c < C; c++) rm[c] = 0.5, rv[c] = 2;
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    double count = dpt_batchnorm_forward_train(out, xhat, inv_std, rm, rv, x, gamma, beta,
                                               B, C, S, &ctx);
    CU_ASSERT_EQUAL(count, N);
    /* undo the affine map: (out - beta) / gamma has mean 0, variance var / (var + eps) */
    for (int i = 0; i < n; i++) {
        int c = (i / S) % C;
        z[i] = (out[i] - beta[c]) / gamma[c];
    }
    channel_stats(mx, vx, x, B, C, S);
    channel_stats(mz, vz, z, B, C, S);
    for (int c = 0; c < C; c++) {
        CU_ASSERT(fabs(mz[c]) < TIGHT);
        CU_ASSERT(near(vz[c], vx[c] / (vx[c] + 1e-5), TIGHT));
        CU_ASSERT(near(inv_std[c], 1 / sqrt(vx[c] + 1e-5), TIGHT));
        CU_ASSERT(near(rm[c], 0.9 * 0.5 + 0.1 * mx[c], TIGHT));
        CU_ASSERT(near(rv[c], 0.9 * 2 + 0.1 * vx[c] * N / (N - 1), TIGHT));
    }
    for (int i = 0; i < n; i++) {
        int c = (i / S) % C;
        CU_ASSERT(near(xhat[i], (x[i] - mx[c]) / sqrt(vx[c] + 1e-5), TIGHT));
    }
}

static void test_bn_train_forward(void)
{
    check_bn_train(8, 5, 1); /* dense */
    check_bn_train(4, 3, 6); /* conv: statistics over batch and positions */
}

static void test_bn_single_sample(void)
{
    /* N = 1: variance 0, no unbiased factor (it would divide by zero) */
    dpt_real x[3] = {1, -2, 5}, out[3], xhat[3], inv_std[3], rm[3] = {0}, rv[3] = {1, 1, 1};
    dpt_real gamma[3] = {1, 2, 3}, beta[3] = {0.5, -0.5, 0};
    double scratch[3 * 3 + 1];
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    CU_ASSERT_EQUAL(dpt_batchnorm_forward_train(out, xhat, inv_std, rm, rv, x, gamma, beta,
                                                1, 3, 1, &ctx), 1);
    for (int c = 0; c < 3; c++) {
        CU_ASSERT(isfinite(rv[c]) && near(rv[c], 0.9, TIGHT));
        CU_ASSERT(near(rm[c], 0.1 * x[c], TIGHT));
        CU_ASSERT(near(out[c], beta[c], TIGHT));
    }
}

static void test_bn_eval_forward(void)
{
    enum { B = 5, C = 4, S = 3, N = B * C * S };
    dpt_real x[N], out[N], gamma[C], beta[C], rm[C], rv[C];
    fill_channels(x, B, C, S, 4);
    fill_uniform(gamma, C, 0.5, 2, 5);
    fill_uniform(beta, C, -1, 1, 6);
    fill_uniform(rm, C, -2, 2, 7);
    fill_uniform(rv, C, 0.1, 3, 8);
    dpt_batchnorm_forward_eval(out, x, gamma, beta, rm, rv, B, C, S, 1e-3);
    for (int i = 0; i < N; i++) {
        int c = (i / S) % C;
        double expect = gamma[c] * (x[i] - rm[c]) / sqrt(rv[c] + 1e-3) + beta[c];
        CU_ASSERT(near(out[i], expect, TIGHT));
    }
}

/* ---------------------------------------------------------------- batch norm gradients */

typedef struct bn_problem {
    dpt_real *x, *gamma, *beta, *r;
    int B, C, S;
} bn_problem;

/* f = sum r .* out, out from a fresh training-mode forward pass. The
 * running statistics are throwaway copies: out does not read them, but a
 * perturbed pass must not leave the check depending on earlier ones. */
static double bn_objective(const bn_problem *p)
{
    dpt_real out[MAXN], xhat[MAXN], inv_std[MAXC], rm[MAXC] = {0}, rv[MAXC] = {0};
    double scratch[3 * MAXC + 1], sum = 0;
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    dpt_batchnorm_forward_train(out, xhat, inv_std, rm, rv, p->x, p->gamma, p->beta,
                                p->B, p->C, p->S, &ctx);
    for (int i = 0; i < p->B * p->C * p->S; i++) sum += (double)p->r[i] * out[i];
    return sum;
}

/* Central difference of the objective along v[i]. */
static double bn_fd(dpt_real *v, int i, const bn_problem *p)
{
    dpt_real keep = v[i];
    v[i] = keep + (dpt_real)FD_STEP;
    double plus = bn_objective(p);
    v[i] = keep - (dpt_real)FD_STEP;
    double minus = bn_objective(p);
    v[i] = keep;
    return (plus - minus) / (2 * FD_STEP);
}

static void check_bn_grad(int B, int C, int S, uint64_t seed)
{
    dpt_real x[MAXN], r[MAXN], gamma[MAXC], beta[MAXC], out[MAXN], xhat[MAXN], dx[MAXN];
    dpt_real inv_std[MAXC], rm[MAXC] = {0}, rv[MAXC] = {0}, dgamma[MAXC], dbeta[MAXC];
    double scratch[3 * MAXC + 1], worst = 0;
    bn_problem p = {x, gamma, beta, r, B, C, S};
    fill_channels(x, B, C, S, seed);
    fill_uniform(r, (size_t)B * C * S, -1, 1, seed + 1);
    fill_uniform(gamma, C, 0.5, 2, seed + 2);
    fill_uniform(beta, C, -1, 1, seed + 3);
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    double count = dpt_batchnorm_forward_train(out, xhat, inv_std, rm, rv, x, gamma, beta,
                                               B, C, S, &ctx);
    /* backward accumulates into dgamma, dbeta: start at known values */
    for (int c = 0; c < C; c++) dgamma[c] = 0.5, dbeta[c] = -0.25;
    dpt_batchnorm_backward(dx, dgamma, dbeta, r, xhat, inv_std, gamma, B, C, S, count, &ctx);
    for (int i = 0; i < B * C * S; i++) worst = fmax(worst, rel_err(dx[i], bn_fd(x, i, &p)));
    for (int c = 0; c < C; c++) {
        worst = fmax(worst, rel_err(dgamma[c] - 0.5, bn_fd(gamma, c, &p)));
        worst = fmax(worst, rel_err(dbeta[c] + 0.25, bn_fd(beta, c, &p)));
    }
    if (worst >= MAX_REL_ERR) printf("\n  batch norm %dx%dx%d: max rel err %.3g\n", B, C, S, worst);
    CU_ASSERT(worst < MAX_REL_ERR);
}

static void test_bn_gradients(void)
{
    check_bn_grad(6, 3, 1, 10); /* dense */
    check_bn_grad(3, 2, 5, 20); /* conv */
    check_bn_grad(2, 4, 3, 30);
}

/* ---------------------------------------------------------------- synchronized statistics */

/* Three "ranks" in one process. An allreduce is simulated in two rounds:
 * round 0 records what each shard passes and leaves it unchanged, round 1
 * adds the other shards' recorded sums to each shard's own, as a sum
 * allreduce does (so that reducing twice would be caught, too). */
enum { SHARDS = 3 };
typedef struct shard_sim {
    int round, shard, n, calls;
    double rec[SHARDS][3 * MAXC + 1];
} shard_sim;

static void sim_reduce(double *sums, int n, void *user)
{
    shard_sim *sim = user;
    sim->n = n;
    sim->calls++;
    if (sim->round == 0) {
        memcpy(sim->rec[sim->shard], sums, sizeof(double) * (size_t)n);
        return;
    }
    for (int k = 0; k < SHARDS; k++)
        if (k != sim->shard)
            for (int i = 0; i < n; i++) sums[i] += sim->rec[k][i];
}

/* What one rank holds of a batch norm layer. */
typedef struct bn_state {
    dpt_real out[MAXN], xhat[MAXN], dx[MAXN];
    dpt_real inv_std[MAXC], rm[MAXC], rv[MAXC], dgamma[MAXC], dbeta[MAXC];
    double count;
} bn_state;

/* Start values of what a forward (running statistics) or a backward pass
 * (accumulated parameter gradients) updates. */
static void bn_reset(bn_state *s, int C, int forward)
{
    for (int c = 0; c < C; c++) {
        if (forward) s->rm[c] = 0.5, s->rv[c] = 2;
        else s->dgamma[c] = s->dbeta[c] = 0;
    }
}

/* The whole batch on one process, without a reduction. */
static void run_whole(bn_state *s, const bn_problem *p)
{
    double scratch[3 * MAXC + 1];
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    bn_reset(s, p->C, 1);
    bn_reset(s, p->C, 0);
    s->count = dpt_batchnorm_forward_train(s->out, s->xhat, s->inv_std, s->rm, s->rv, p->x,
                                           p->gamma, p->beta, p->B, p->C, p->S, &ctx);
    dpt_batchnorm_backward(s->dx, s->dgamma, s->dbeta, p->r, s->xhat, s->inv_std, p->gamma,
                           p->B, p->C, p->S, s->count, &ctx);
}

/* Each shard's pass, rounds as in sim_reduce: every rank's forward must
 * complete its reduction before any backward starts, as in a real job. */
static void run_shards(bn_state *sh, const bn_problem *p, const int *sizes)
{
    double scratch[3 * MAXC + 1];
    shard_sim sim = {0};
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    ctx.reduce = sim_reduce;
    ctx.reduce_user = &sim;
    for (int pass = 0; pass < 2; pass++)
        for (sim.round = 0; sim.round < 2; sim.round++)
            for (int k = 0, off = 0; k < SHARDS; off += sizes[k] * p->C * p->S, k++) {
                bn_state *s = &sh[k];
                sim.shard = k;
                bn_reset(s, p->C, pass == 0);
                if (pass == 0) {
                    s->count = dpt_batchnorm_forward_train(
                        s->out, s->xhat, s->inv_std, s->rm, s->rv, p->x + off, p->gamma, p->beta,
                        sizes[k], p->C, p->S, &ctx);
                    CU_ASSERT_EQUAL(sim.n, 2 * p->C + 1);
                } else {
                    dpt_batchnorm_backward(s->dx, s->dgamma, s->dbeta, p->r + off, s->xhat,
                                           s->inv_std, p->gamma, sizes[k], p->C, p->S, s->count,
                                           &ctx);
                    CU_ASSERT_EQUAL(sim.n, 2 * p->C);
                }
            }
    CU_ASSERT_EQUAL(sim.calls, 2 * 2 * SHARDS); /* one per pass, round and shard */
}

/* Shards (sizes summing to 9) with synchronized statistics reproduce the
 * whole batch of 9: outputs, input gradients and running statistics on
 * every shard, and the parameter gradients once summed over shards. */
static void check_bn_sync(int C, int S, const int *sizes)
{
    enum { B = 9 };
    dpt_real x[MAXN], r[MAXN], gamma[MAXC], beta[MAXC];
    static bn_state whole, sh[SHARDS];
    bn_problem p = {x, gamma, beta, r, B, C, S};
    fill_channels(x, B, C, S, 40 + S);
    fill_uniform(r, (size_t)B * C * S, -1, 1, 41);
    fill_uniform(gamma, C, 0.5, 2, 42);
    fill_uniform(beta, C, -1, 1, 43);
    run_whole(&whole, &p);
    run_shards(sh, &p, sizes);
    int bad = 0;
    for (int k = 0, off = 0; k < SHARDS; off += sizes[k] * C * S, k++) {
        bad += sh[k].count != whole.count;
        for (int i = 0; i < sizes[k] * C * S; i++) {
            bad += !near(sh[k].out[i], whole.out[off + i], TIGHT);
            bad += !near(sh[k].dx[i], whole.dx[off + i], TIGHT);
        }
        for (int c = 0; c < C; c++) {
            bad += !near(sh[k].rm[c], whole.rm[c], TIGHT);
            bad += !near(sh[k].rv[c], whole.rv[c], TIGHT);
        }
    }
    for (int c = 0; c < C; c++) {
        bad += !near(sh[0].dgamma[c] + sh[1].dgamma[c] + sh[2].dgamma[c], whole.dgamma[c], TIGHT);
        bad += !near(sh[0].dbeta[c] + sh[1].dbeta[c] + sh[2].dbeta[c], whole.dbeta[c], TIGHT);
    }
    if (bad) printf("\n  synchronized batch norm C=%d S=%d: %d mismatches\n", C, S, bad);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_bn_sync(void)
{
    static const int uneven[SHARDS] = {2, 3, 4}, empty[SHARDS] = {0, 4, 5};
    check_bn_sync(3, 1, uneven);
    check_bn_sync(2, 4, uneven);
    check_bn_sync(2, 3, empty); /* a rank without samples still takes part */
}

static void test_bn_backward_no_dx(void)
{
    /* dx = NULL: the same parameter gradients, and no reduction is made */
    enum { B = 4, C = 3, S = 2 };
    dpt_real x[MAXN], r[MAXN], gamma[MAXC], beta[MAXC], dg[MAXC] = {0}, db[MAXC] = {0};
    static bn_state whole;
    double scratch[3 * MAXC + 1];
    shard_sim sim = {0};
    bn_problem p = {x, gamma, beta, r, B, C, S};
    fill_channels(x, B, C, S, 45);
    fill_uniform(r, (size_t)B * C * S, -1, 1, 46);
    fill_uniform(gamma, C, 0.5, 2, 47);
    fill_uniform(beta, C, -1, 1, 48);
    run_whole(&whole, &p);
    dpt_batchnorm_ctx ctx = bn_ctx(scratch);
    ctx.reduce = sim_reduce;
    ctx.reduce_user = &sim;
    dpt_batchnorm_backward(NULL, dg, db, r, whole.xhat, whole.inv_std, gamma, B, C, S,
                           whole.count, &ctx);
    CU_ASSERT_EQUAL(sim.calls, 0);
    for (int c = 0; c < C; c++) {
        CU_ASSERT(near(dg[c], whole.dgamma[c], TIGHT));
        CU_ASSERT(near(db[c], whole.dbeta[c], TIGHT));
    }
}

static void test_bn_local_stats_differ(void)
{
    /* the converse, so that the test above can tell: without the reduction
     * a shard's output is not the whole batch's */
    enum { B = 9, C = 2, S = 4, SHARD = 2 * C * S };
    dpt_real x[MAXN], r[MAXN], gamma[MAXC], beta[MAXC];
    static bn_state whole, part;
    bn_problem p = {x, gamma, beta, r, B, C, S};
    fill_channels(x, B, C, S, 44);
    fill_uniform(r, (size_t)B * C * S, -1, 1, 41);
    fill_uniform(gamma, C, 0.5, 2, 42);
    fill_uniform(beta, C, -1, 1, 43);
    run_whole(&whole, &p);
    p.B = 2;
    run_whole(&part, &p);
    double diff = 0;
    for (int i = 0; i < SHARD; i++) diff = fmax(diff, fabs(part.out[i] - whole.out[i]));
    CU_ASSERT(diff > 1e-2);
}

/* ---------------------------------------------------------------- dropout */

static void check_mask_stats(double keep)
{
    enum { N = 100000 };
    static dpt_real mask[N];
    dpt_rng rng;
    dpt_rng_init(&rng, 5, DPT_STREAM_DROPOUT, 0, 0);
    dpt_dropout_mask(mask, N, keep, &rng);
    long kept = 0, odd = 0;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        kept += mask[i] != 0;
        odd += mask[i] != 0 && mask[i] != (dpt_real)(1 / keep);
        sum += mask[i];
    }
    CU_ASSERT(fabs((double)kept / N - keep) < 0.01);
    CU_ASSERT_EQUAL(odd, 0);
    CU_ASSERT(fabs(sum / N - 1) < 0.01 / keep);
}

static void test_dropout_mask(void)
{
    check_mask_stats(0.5);
    check_mask_stats(0.8);
    check_mask_stats(0.1);
    /* keep = 1: the identity */
    dpt_real mask[64];
    dpt_rng rng;
    dpt_rng_init(&rng, 5, DPT_STREAM_DROPOUT, 0, 0);
    dpt_dropout_mask(mask, 64, 1.0, &rng);
    int ones = 0;
    for (int i = 0; i < 64; i++) ones += mask[i] == 1;
    CU_ASSERT_EQUAL(ones, 64);
}

static void test_dropout_reproducible(void)
{
    enum { N = 1000 };
    dpt_real a[N], b[N], c[N], d[N];
    dpt_rng ra, rb, rc, rd;
    dpt_rng_init(&ra, 7, DPT_STREAM_DROPOUT, 1, 3);
    dpt_rng_init(&rb, 7, DPT_STREAM_DROPOUT, 1, 3);
    dpt_rng_init(&rc, 7, DPT_STREAM_DROPOUT, 1, 4); /* next substream (step) */
    dpt_rng_init(&rd, 7, DPT_STREAM_DROPOUT, 2, 3); /* another rank */
    dpt_dropout_mask(a, N, 0.5, &ra);
    dpt_dropout_mask(b, N, 0.5, &rb);
    dpt_dropout_mask(c, N, 0.5, &rc);
    dpt_dropout_mask(d, N, 0.5, &rd);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0);
    CU_ASSERT(memcmp(a, d, sizeof a) != 0);
    /* the stream continues where it stopped: a second mask differs from the first */
    dpt_dropout_mask(b, N, 0.5, &rb);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
}

static double dropout_objective(const dpt_real *x, const dpt_real *mask, const dpt_real *r, int n)
{
    dpt_real out[64];
    dpt_dropout_apply(out, x, mask, (size_t)n);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)r[i] * out[i];
    return sum;
}

static void test_dropout_apply(void)
{
    enum { N = 64 };
    dpt_real x[N], r[N], mask[N], out[N], dx[N];
    dpt_rng rng;
    dpt_rng_init(&rng, 9, DPT_STREAM_DROPOUT, 0, 0);
    dpt_dropout_mask(mask, N, 0.75, &rng);
    fill_uniform(x, N, -2, 2, 50);
    fill_uniform(r, N, -1, 1, 51);
    dpt_dropout_apply(out, x, mask, N);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(out[i], x[i] * mask[i]);
    /* backward is the same map applied to dout */
    dpt_dropout_apply(dx, r, mask, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        dpt_real keep = x[i];
        x[i] = keep + (dpt_real)FD_STEP;
        double plus = dropout_objective(x, mask, r, N);
        x[i] = keep - (dpt_real)FD_STEP;
        double minus = dropout_objective(x, mask, r, N);
        x[i] = keep;
        worst = fmax(worst, rel_err(dx[i], (plus - minus) / (2 * FD_STEP)));
    }
    CU_ASSERT(worst < MAX_REL_ERR);
    /* in place */
    memcpy(out, x, sizeof x);
    dpt_dropout_apply(out, out, mask, N);
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(out[i], x[i] * mask[i]);
}

/* ---------------------------------------------------------------- initialization */

enum { IROWS = 512, ICOLS = 784 }; /* a 784 -> 512 dense layer: fan_in 784, fan_out 512 */

static dpt_status init_matrix(dpt_real *w, int rows, int cols, dpt_init_kind kind, double value,
                              uint64_t seed)
{
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_INIT, 0, 0);
    dpt_init_spec spec = {kind, value};
    return dpt_init_weights(w, rows, cols, cols, rows, &spec, &rng);
}

/* Sample mean within 4 standard errors of 0, sample variance within 4
 * standard errors (relative sqrt(2 / n), the normal case, which bounds the
 * uniform one's sqrt(0.8 / n)) of var, and the kurtosis of the family:
 * 3 for normal, 9/5 for uniform (standard errors sqrt(96 / n), sqrt(1.3 / n)).
 * For uniform kinds limit = sqrt(3 var) must bound |w| and be nearly reached. */
static void check_moments(dpt_init_kind kind, double value, double var, int uniform)
{
    const size_t n = (size_t)IROWS * ICOLS;
    dpt_real *w = malloc(sizeof(dpt_real) * n);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_FATAL(init_matrix(w, IROWS, ICOLS, kind, value, 60 + kind) == DPT_OK);
    double sum = 0, sq = 0, quad = 0, largest = 0;
    for (size_t i = 0; i < n; i++) sum += w[i];
    double mean = sum / n;
    for (size_t i = 0; i < n; i++) {
        double d = w[i] - mean;
        sq += d * d;
        quad += d * d * d * d;
        largest = fmax(largest, fabs(w[i]));
    }
    double s2 = sq / n, kurt = quad / n / (s2 * s2);
    int ok = fabs(mean) < 4 * sqrt(var / n) && fabs(s2 / var - 1) < 4 * sqrt(2.0 / n)
             && fabs(kurt - (uniform ? 1.8 : 3)) < 4 * sqrt((uniform ? 1.3 : 96.0) / n);
    if (uniform) {
        dpt_real limit = (dpt_real)sqrt(3 * var);
        ok = ok && largest <= limit && largest > 0.99 * limit;
    }
    if (!ok) printf("\n  %s: mean %.3g var %.5g (want %.5g) kurtosis %.3f max %.4g\n",
                    dpt_init_name(kind), mean, s2, var, kurt, largest);
    CU_ASSERT(ok);
    free(w);
}

static void test_init_distributions(void)
{
    double fans = ICOLS + IROWS;
    check_moments(DPT_INIT_UNIFORM, 0.05, 0.05 * 0.05 / 3, 1);
    check_moments(DPT_INIT_NORMAL, 0.05, 0.05 * 0.05, 0);
    check_moments(DPT_INIT_GLOROT_UNIFORM, 0, 2 / fans, 1);
    check_moments(DPT_INIT_GLOROT_NORMAL, 0, 2 / fans, 0);
    check_moments(DPT_INIT_HE_UNIFORM, 0, 2.0 / ICOLS, 1);
    check_moments(DPT_INIT_HE_NORMAL, 0, 2.0 / ICOLS, 0);
    check_moments(DPT_INIT_LECUN_NORMAL, 0, 1.0 / ICOLS, 0);
}

static void test_init_fixed(void)
{
    enum { R = 7, C = 9 };
    dpt_real w[R * C];
    int zeros = 0, consts = 0;
    for (int i = 0; i < R * C; i++) w[i] = 7;
    CU_ASSERT_FATAL(init_matrix(w, R, C, DPT_INIT_ZEROS, 0.3, 1) == DPT_OK);
    for (int i = 0; i < R * C; i++) zeros += w[i] == 0;
    CU_ASSERT_FATAL(init_matrix(w, R, C, DPT_INIT_CONSTANT, 0.3, 1) == DPT_OK);
    for (int i = 0; i < R * C; i++) consts += w[i] == (dpt_real)0.3;
    CU_ASSERT_EQUAL(zeros, R * C);
    CU_ASSERT_EQUAL(consts, R * C);
}

static void test_init_deterministic(void)
{
    enum { R = 30, C = 40 };
    dpt_real a[R * C], b[R * C];
    for (int kind = DPT_INIT_UNIFORM; kind < DPT_INIT_COUNT_; kind++) {
        double value = kind == DPT_INIT_SPARSE ? 5 : 0.5;
        CU_ASSERT(init_matrix(a, R, C, kind, value, 3) == DPT_OK);
        CU_ASSERT(init_matrix(b, R, C, kind, value, 3) == DPT_OK);
        CU_ASSERT(memcmp(a, b, sizeof a) == 0);
        CU_ASSERT(init_matrix(b, R, C, kind, value, 4) == DPT_OK);
        CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    }
}

/* max |G - gain^2 I| of the Gram matrix of w's rows (rows <= cols) or columns. */
static double gram_error(const dpt_real *w, int rows, int cols, int by_rows, double gain)
{
    int n = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int k = 0; k < len; k++)
                dot += by_rows ? (double)w[i * cols + k] * w[j * cols + k]
                               : (double)w[k * cols + i] * w[k * cols + j];
            worst = fmax(worst, fabs(dot - (i == j) * gain * gain));
        }
    return worst;
}

static void check_orthogonal(int rows, int cols, double value, double gain)
{
    dpt_real *w = malloc(sizeof(dpt_real) * (size_t)rows * cols);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_FATAL(init_matrix(w, rows, cols, DPT_INIT_ORTHOGONAL, value, 70) == DPT_OK);
    double err = gram_error(w, rows, cols, rows <= cols, gain);
    if (rows == cols) err = fmax(err, gram_error(w, rows, cols, 0, gain));
    if (err >= ORTHO_TOL * gain * gain)
        printf("\n  orthogonal %dx%d gain %g: error %.3g\n", rows, cols, gain, err);
    CU_ASSERT(err < ORTHO_TOL * gain * gain);
    free(w);
}

static void test_init_orthogonal(void)
{
    check_orthogonal(64, 100, 1, 1); /* W W^T = I */
    check_orthogonal(100, 64, 1, 1); /* W^T W = I */
    check_orthogonal(50, 50, 1, 1);  /* both */
    check_orthogonal(64, 100, 2, 2); /* gain */
    check_orthogonal(100, 64, 0.5, 0.5);
    check_orthogonal(30, 20, 0, 1);  /* value <= 0: gain 1 */
    check_orthogonal(1, 10, -3, 1);  /* one unit vector */
    check_orthogonal(10, 1, 1, 1);
}

/* Haar measure is invariant under sign flips, so every entry is symmetric
 * about 0. Without the sign correction LAPACK's Householder QR makes
 * W[0][0] = -|a_11| / |a_1| < 0 every time. 400 draws: P(positive) = 1/2
 * within 4 standard errors (0.1). */
static void test_init_orthogonal_haar(void)
{
    enum { DRAWS = 400 };
    int shapes[3][2] = {{5, 3}, {3, 5}, {4, 4}};
    for (int s = 0; s < 3; s++) {
        int positive = 0, rows = shapes[s][0], cols = shapes[s][1];
        dpt_real w[25];
        for (int d = 0; d < DRAWS; d++) {
            CU_ASSERT_FATAL(init_matrix(w, rows, cols, DPT_INIT_ORTHOGONAL, 1, 1000 + d) == DPT_OK);
            positive += w[0] > 0;
        }
        CU_ASSERT(fabs((double)positive / DRAWS - 0.5) < 0.1);
    }
}

/* Non-zeros of each row of w[rows][cols]: all must equal k. */
static int rows_with_k(const dpt_real *w, int rows, int cols, int k)
{
    int good = 0;
    for (int r = 0; r < rows; r++) {
        int nz = 0;
        for (int c = 0; c < cols; c++) nz += w[r * cols + c] != 0;
        good += nz == k;
    }
    return good;
}

static void test_init_sparse(void)
{
    enum { R = 2000, C = 20, K = 5 };
    static dpt_real w[R * C];
    CU_ASSERT_FATAL(init_matrix(w, R, C, DPT_INIT_SPARSE, K + 0.9, 80) == DPT_OK);
    CU_ASSERT_EQUAL(rows_with_k(w, R, C, K), R);
    /* positions uniform: each column is hit R K / C = 500 times, sd 19.4 */
    int lo = R, hi = 0;
    for (int c = 0; c < C; c++) {
        int hits = 0;
        for (int r = 0; r < R; r++) hits += w[r * C + c] != 0;
        lo = hits < lo ? hits : lo;
        hi = hits > hi ? hits : hi;
    }
    CU_ASSERT(lo > 400 && hi < 600);
    /* values N(0, 1): 10000 of them */
    double sum = 0, sq = 0;
    for (int i = 0; i < R * C; i++) sum += w[i], sq += (double)w[i] * w[i];
    CU_ASSERT(fabs(sum / (R * K)) < 0.04);
    CU_ASSERT(fabs(sq / (R * K) - 1) < 0.06);
    /* k clamped to cols: every weight non-zero */
    CU_ASSERT_FATAL(init_matrix(w, 50, C, DPT_INIT_SPARSE, 1e9, 81) == DPT_OK);
    CU_ASSERT_EQUAL(rows_with_k(w, 50, C, C), 50);
    CU_ASSERT_FATAL(init_matrix(w, 50, C, DPT_INIT_SPARSE, 1, 82) == DPT_OK);
    CU_ASSERT_EQUAL(rows_with_k(w, 50, C, 1), 50);
}

static void expect_arg_error(dpt_real *w, int rows, int cols, int fan_in, int fan_out,
                             dpt_init_kind kind, double value)
{
    dpt_rng rng;
    dpt_rng_init(&rng, 1, DPT_STREAM_INIT, 0, 0);
    dpt_init_spec spec = {kind, value};
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_init_weights(w, rows, cols, fan_in, fan_out, &spec, &rng), DPT_ERR_ARG);
    CU_ASSERT(dpt_error_message()[0] != '\0');
}

static void test_init_errors(void)
{
    dpt_real w[100];
    expect_arg_error(w, 10, 10, 10, 10, DPT_INIT_AUTO, 0);
    expect_arg_error(w, 10, 10, 10, 10, DPT_INIT_COUNT_, 0);
    expect_arg_error(w, 10, 10, 10, 10, (dpt_init_kind)-1, 0);
    expect_arg_error(w, 0, 10, 10, 10, DPT_INIT_ZEROS, 0);
    expect_arg_error(w, 10, 10, 0, 10, DPT_INIT_HE_NORMAL, 0);
    expect_arg_error(w, 10, 10, 10, 0, DPT_INIT_GLOROT_UNIFORM, 0);
    expect_arg_error(w, 10, 10, 10, 10, DPT_INIT_UNIFORM, -1);
    expect_arg_error(w, 10, 10, 10, 10, DPT_INIT_NORMAL, NAN);
    expect_arg_error(w, 10, 10, 10, 10, DPT_INIT_SPARSE, 0.5);
}

static void test_init_names(void)
{
    static const char *const expect[DPT_INIT_COUNT_] = {
        "auto", "zeros", "constant", "uniform", "normal", "glorot_uniform", "glorot_normal",
        "he_uniform", "he_normal", "lecun_normal", "orthogonal", "sparse"};
    for (int i = 0; i < DPT_INIT_COUNT_; i++) {
        const char *name = dpt_init_name((dpt_init_kind)i);
        CU_ASSERT_FATAL(name != NULL);
        CU_ASSERT_STRING_EQUAL(name, expect[i]);
        for (int j = 0; j < i; j++) CU_ASSERT(strcmp(name, dpt_init_name((dpt_init_kind)j)) != 0);
    }
    CU_ASSERT_PTR_NOT_NULL(dpt_init_name(DPT_INIT_COUNT_));
}

int main(void)
{
    static const dpt_test tests[] = {
        {"batch norm training forward", test_bn_train_forward},
        {"batch norm single sample", test_bn_single_sample},
        {"batch norm evaluation forward", test_bn_eval_forward},
        {"batch norm vs finite differences", test_bn_gradients},
        {"batch norm synchronized statistics", test_bn_sync},
        {"batch norm local statistics differ", test_bn_local_stats_differ},
        {"batch norm backward without dx", test_bn_backward_no_dx},
        {"dropout mask statistics", test_dropout_mask},
        {"dropout mask reproducible", test_dropout_reproducible},
        {"dropout apply and backward", test_dropout_apply},
        {"init distributions", test_init_distributions},
        {"init zeros and constant", test_init_fixed},
        {"init deterministic", test_init_deterministic},
        {"init orthogonal", test_init_orthogonal},
        {"init orthogonal sign correction", test_init_orthogonal_haar},
        {"init sparse", test_init_sparse},
        {"init errors", test_init_errors},
        {"init names", test_init_names},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("layers", tests), CU_BRM_VERBOSE);
}
