/* Batch normalization, Ioffe & Szegedy 2015, algorithm 1 (training) and the
 * inference transform of their algorithm 2, over x[B][C][spatial].
 *
 * Statistics are one-pass moments (sum and sum of squares, in double) so that
 * the data-parallel group needs a single reduction of 2 C + 1 numbers per
 * forward pass and one of 2 C per backward pass, instead of a reduction for
 * the mean followed by another one for the centred second moment.
 * ctx->scratch ([3 C + 1] doubles) holds, during the forward pass,
 * [C sums][C sums of squares][count][C means], and during the backward pass
 * [C sums of dout][C sums of dout xhat]. */
#include "dpt/layers.h"

#include <math.h>
#include <string.h>

#include "../core/clones.h"
#include "../core/vec.h"

/* Per-channel sum and sum of squares of x[B][C][spatial], accumulated in
 * double: var = E[x^2] - E[x]^2 cancels catastrophically in float as soon as
 * |mean| is a few times the standard deviation. */
void dpt_batchnorm_moments_add(double *sum, double *sumsq, const dpt_real *x, int C, int spatial)
{
    for (int c = 0; c < C; c++) {
        double s, q;
        dpt_vec_sum_sumsq(x + (size_t)c * spatial, (size_t)spatial, &s, &q);
        sum[c] += s;
        sumsq[c] += q;
    }
}

static void channel_moments(double *sum, double *sumsq, const dpt_real *x, int B, int C,
                            int spatial)
{
    memset(sum, 0, sizeof(double) * (size_t)C);
    memset(sumsq, 0, sizeof(double) * (size_t)C);
    for (int b = 0; b < B; b++) dpt_batchnorm_moments_add(sum, sumsq, x + (size_t)b * C * spatial, C, spatial);
}

/* Exponential moving averages for inference. The running variance uses the
 * unbiased estimate var N / (N - 1) (Ioffe & Szegedy, algorithm 2, step 10);
 * with N = 1 that factor is undefined and the biased value (0) is used. */
static void update_running(dpt_real *running_mean, dpt_real *running_var, double mean,
                           double var, double N, double momentum)
{
    double unbiased = N > 1 ? var * N / (N - 1) : var;
    *running_mean = (dpt_real)(momentum * *running_mean + (1 - momentum) * mean);
    *running_var = (dpt_real)(momentum * *running_var + (1 - momentum) * unbiased);
}

/* One element of normalize_affine: stores xhat, returns out (a fused
 * ReLU's output when relu). Shared by both plane loops below, so that they
 * compute the same values. */
static inline dpt_real normalize_value(dpt_real *xhat, dpt_real x, double mean, double inv_std,
                                       double gamma, double beta, int relu)
{
    double h = ((double)x - mean) * inv_std;
    *xhat = (dpt_real)h;
    dpt_real v = (dpt_real)(gamma * h + beta);
    return relu && !(v > 0) ? 0 : v;
}

/* One channel plane of normalize_affine; the per-channel numbers come in
 * as arguments so that the loop reads nothing but x. */
DPT_CLONES static void normalize_plane(dpt_real *restrict out, dpt_real *restrict xhat,
                                       const dpt_real *restrict x, int n, double mean, double inv_std,
                                       double gamma, double beta, int relu)
{
    for (int k = 0; k < n; k++) out[k] = normalize_value(&xhat[k], x[k], mean, inv_std, gamma, beta, relu);
}

/* normalize_plane with xhat written over x, each element read first (x and
 * xhat may not be restrict pointers to one array). */
DPT_CLONES static void normalize_plane_in_place(dpt_real *restrict out, dpt_real *x_then_xhat, int n,
                                                double mean, double inv_std, double gamma, double beta,
                                                int relu)
{
    for (int k = 0; k < n; k++)
        out[k] = normalize_value(&x_then_xhat[k], x_then_xhat[k], mean, inv_std, gamma, beta, relu);
}

/* xhat = (x - mean) inv_std;  out = gamma xhat + beta  (algorithm 1, steps 3-4),
 * or each plane of out handed to ctx->plane_out. */
static void normalize_affine(dpt_real *out, dpt_real *xhat, const dpt_real *x,
                             const double *mean, const double *inv_std, const dpt_real *gamma,
                             const dpt_real *beta, int B, int C, int spatial,
                             const dpt_batchnorm_ctx *ctx)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t q = (size_t)b * C + c, base = q * spatial;
            dpt_real *plane = ctx->plane_out ? ctx->plane : out + base;
            if (xhat == x)
                normalize_plane_in_place(plane, xhat + base, spatial, mean[c], inv_std[c], gamma[c],
                                         beta[c], ctx->relu);
            else
                normalize_plane(plane, xhat + base, x + base, spatial, mean[c], inv_std[c], gamma[c],
                                beta[c], ctx->relu);
            if (ctx->plane_out) ctx->plane_out(q, plane, ctx->plane_user);
        }
}

double dpt_batchnorm_forward_train(dpt_real *out, dpt_real *xhat, dpt_real *inv_std,
                                   dpt_real *running_mean, dpt_real *running_var,
                                   const dpt_real *x, const dpt_real *gamma, const dpt_real *beta,
                                   int B, int C, int spatial, const dpt_batchnorm_ctx *ctx)
{
    double *sum = ctx->scratch, *sumsq = sum + C, *mean = sum + 2 * C + 1;
    if (!ctx->moments_ready) channel_moments(sum, sumsq, x, B, C, spatial);
    sum[2 * C] = (double)B * spatial;
    /* called even when B = 0 here: the reduction is collective */
    if (ctx->reduce) ctx->reduce(ctx->scratch, 2 * C + 1, ctx->reduce_user);
    double N = sum[2 * C];
    if (N <= 0) return 0; /* no sample anywhere: nothing to normalize or average */
    for (int c = 0; c < C; c++) {
        mean[c] = sum[c] / N;
        /* rounding can push the one-pass variance slightly below zero */
        double var = fmax(sumsq[c] / N - mean[c] * mean[c], 0);
        update_running(&running_mean[c], &running_var[c], mean[c], var, N, ctx->momentum);
        sumsq[c] = 1 / sqrt(var + ctx->eps); /* the slot is consumed: reuse it in double */
        inv_std[c] = (dpt_real)sumsq[c];
    }
    normalize_affine(out, xhat, x, mean, sumsq, gamma, beta, B, C, spatial, ctx);
    return N;
}

void dpt_batchnorm_forward_eval(dpt_real *out, const dpt_real *x, const dpt_real *gamma,
                                const dpt_real *beta, const dpt_real *running_mean,
                                const dpt_real *running_var, int B, int C, int spatial, double eps)
{
    /* Algorithm 2, step 11: a fixed affine map per channel, folded into one
     * scale and one shift. */
    for (int c = 0; c < C; c++) {
        double scale = gamma[c] / sqrt((double)running_var[c] + eps);
        double shift = beta[c] - scale * running_mean[c];
        for (int b = 0; b < B; b++) {
            size_t base = ((size_t)b * C + c) * spatial;
            for (int k = 0; k < spatial; k++)
                out[base + k] = (dpt_real)(scale * x[base + k] + shift);
        }
    }
}

/* Plane q's output gradient and the ReLU output masking it (NULL: none):
 * from dout, or from the layer fused behind. */
static const dpt_real *plane_grad(const dpt_real *dout, const dpt_real **mask, size_t q, int spatial,
                                  const dpt_batchnorm_ctx *ctx)
{
    size_t base = q * (size_t)spatial;
    if (ctx->plane_dout) {
        *mask = NULL;
        return ctx->plane_dout(q, ctx->plane, ctx->plane_user);
    }
    *mask = ctx->relu_out ? ctx->relu_out + base : NULL;
    return dout + base;
}

/* Per-channel sums of dout and of dout xhat over this process's samples. */
static void channel_grad_sums(double *sum_dout, double *sum_dout_xhat, const dpt_real *dout,
                              const dpt_real *xhat, int B, int C, int spatial,
                              const dpt_batchnorm_ctx *ctx)
{
    memset(sum_dout, 0, sizeof(double) * (size_t)C);
    memset(sum_dout_xhat, 0, sizeof(double) * (size_t)C);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t q = (size_t)b * C + c;
            const dpt_real *mask, *g = plane_grad(dout, &mask, q, spatial, ctx);
            double s, d;
            dpt_vec_sum_dot(g, mask, xhat + q * spatial, (size_t)spatial, &s, &d);
            sum_dout[c] += s;
            sum_dout_xhat[c] += d;
        }
}

/* One channel plane of the input gradient: k (count dout - sum_dout - xhat sum_dout_xhat). */
DPT_CLONES static void input_grad_plane(dpt_real *restrict dx, const dpt_real *restrict dout,
                                        const dpt_real *restrict relu_out, const dpt_real *restrict xhat,
                                        int n, double k, double count, double sum_dout,
                                        double sum_dout_xhat)
{
    for (int s = 0; s < n; s++) { /* a fused ReLU's backward: dout where its output is positive */
        dpt_real g = relu_out ? dpt_relu_keep(dout[s], relu_out[s]) : dout[s];
        dx[s] = (dpt_real)(k * (count * g - sum_dout - xhat[s] * sum_dout_xhat));
    }
}

/* dx may be NULL (an input layer needs no input gradient): then only the
 * parameter gradients are accumulated and no reduction is made; every rank
 * passes NULL alike, since that depends on the layer's place in the model. */
void dpt_batchnorm_backward(dpt_real *dx, dpt_real *dgamma, dpt_real *dbeta, const dpt_real *dout,
                            const dpt_real *xhat, const dpt_real *inv_std, const dpt_real *gamma,
                            int B, int C, int spatial, double count, const dpt_batchnorm_ctx *ctx)
{
    double *sum_dout = ctx->scratch, *sum_dout_xhat = sum_dout + C;
    channel_grad_sums(sum_dout, sum_dout_xhat, dout, xhat, B, C, spatial, ctx);
    /* local sums: the gradient allreduce adds the other ranks' shares later */
    for (int c = 0; c < C; c++) {
        dbeta[c] += (dpt_real)sum_dout[c];
        dgamma[c] += (dpt_real)sum_dout_xhat[c];
    }
    if (!dx) return;
    /* dx couples every sample of the group through the mean and variance
     * (the backward pass of algorithm 1), so it needs the group-wide sums */
    if (ctx->reduce) ctx->reduce(ctx->scratch, 2 * C, ctx->reduce_user);
    if (count <= 0) return;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t q = (size_t)b * C + c, base = q * spatial;
            double k = gamma[c] * (double)inv_std[c] / count;
            const dpt_real *mask, *g = plane_grad(dout, &mask, q, spatial, ctx);
            input_grad_plane(dx + base, g, mask, xhat + base, spatial, k, count, sum_dout[c],
                             sum_dout_xhat[c]);
        }
}
