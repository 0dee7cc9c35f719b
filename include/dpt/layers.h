/* dpt/layers.h - the kernels of the convolution family, pooling, batch
 * normalization, dropout and weight initialization.
 *
 * Plain functions, outputs first, shapes in comments, NCHW layout: a batch
 * x[B][C][H][W] is row-major with the sample as the slowest index. Backward
 * functions ACCUMULATE (+=) into parameter gradients (dw, db, dgamma, dbeta)
 * and OVERWRITE input gradients (dx), like dpt_dense_backward. No MPI here:
 * where batch normalization needs sums over all ranks it calls a reduction
 * function the caller passes in.
 */
#ifndef DPT_LAYERS_H
#define DPT_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/real.h"
#include "dpt/rng.h"

/* ---------------------------------------------------------------- convolution geometry */

/* Zero padding regimes of Goodfellow et al., Deep Learning, section 9.5:
 * valid (no padding: out = in - k_eff + 1), same (out = ceil(in / stride),
 * padding split evenly, the odd pixel at the bottom/right), full (k_eff - 1
 * zeros on every side: out = in + k_eff - 1 at stride 1), with the effective
 * kernel size k_eff = (k - 1) dilation + 1. */
typedef enum dpt_padding { DPT_PAD_VALID = 0, DPT_PAD_SAME, DPT_PAD_FULL } dpt_padding;

typedef struct dpt_conv_geom {
    int in_c, in_h, in_w;  /* input channels and size */
    int out_c;             /* output channels (filters) */
    int kh, kw;            /* kernel size */
    int stride, dilation;  /* the same along both axes */
    int pad_top, pad_left; /* zeros before the first row / column */
    int out_h, out_w;      /* output size */
    int padded_h, padded_w; /* the zero-padded input plane im2col reads from */
} dpt_conv_geom;

/* Fills g; DPT_ERR_SHAPE with a message if the output would be empty or
 * a size is not positive. */
dpt_status dpt_conv_geom_init(dpt_conv_geom *g, int in_c, int in_h, int in_w, int out_c,
                              int kh, int kw, int stride, int dilation, dpt_padding pad);

/* Rows of the im2col matrix (in_c kh kw) and its columns (out_h out_w). */
static inline int dpt_conv_rows(const dpt_conv_geom *g) { return g->in_c * g->kh * g->kw; }
static inline int dpt_conv_cols(const dpt_conv_geom *g) { return g->out_h * g->out_w; }

/* Reals of an im2col workspace: the matrix (rows x cols), then one
 * sample's zero-padded input (in_c padded_h padded_w), which turns every
 * matrix row into plain copies without bounds checks. */
static inline size_t dpt_conv_work_size(const dpt_conv_geom *g)
{
    return (size_t)dpt_conv_rows(g) * (size_t)dpt_conv_cols(g) +
           (size_t)g->in_c * (size_t)g->padded_h * (size_t)g->padded_w;
}

/* cols[in_c kh kw][out_h out_w] from one sample x[in_c][in_h][in_w]; row
 * index (c, i, j) = (c kh + i) kw + j; zero where the window is in the
 * padding. cols: dpt_conv_work_size reals (the tail is scratch). */
void dpt_im2col(dpt_real *cols, const dpt_real *x, const dpt_conv_geom *g);
/* dx[in_c][in_h][in_w] = the adjoint of im2col applied to dcols (written,
 * not added). dcols: dpt_conv_work_size reals; its tail is scratch. */
void dpt_col2im(dpt_real *dx, dpt_real *dcols, const dpt_conv_geom *g);

/* ---------------------------------------------------------------- conv2d (shared weights) */

/* out[B][out_c][out_h][out_w] = w[out_c][in_c kh kw] . im2col(x[b]) + b[out_c]
 * (cross-correlation, as deep-learning libraries do). cols: workspace of
 * dpt_conv_work_size reals. */
void dpt_conv2d_forward(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                        const dpt_real *b, int B, const dpt_conv_geom *g);
/* What to run on each sample's output right after it is written, while it
 * is in cache (a batch norm's moments: src/nn/forward.c). */
typedef struct dpt_sample_hook {
    void (*fn)(int sample, const dpt_real *out, void *user);
    void *user;
} dpt_sample_hook;
/* dpt_conv2d_forward, then after->fn on each sample (after may be NULL). */
void dpt_conv2d_forward_each(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                             const dpt_real *b, int B, const dpt_conv_geom *g,
                             const dpt_sample_hook *after);
/* dw += sum_b dout[b] . cols[b]^T;  db += sum over b and positions of dout;
 * dx (if not NULL) = col2im(w^T . dout[b]). cols, dcols: workspaces as above. */
void dpt_conv2d_backward(dpt_real *dx, dpt_real *dw, dpt_real *db, dpt_real *cols,
                         dpt_real *dcols, const dpt_real *dout, const dpt_real *x,
                         const dpt_real *w, int B, const dpt_conv_geom *g);

/* dx alone (the input part of dpt_conv2d_backward: w^T . dout then
 * col2im), so that a caller can hand dw on before computing it. */
void dpt_conv2d_backward_input(dpt_real *dx, dpt_real *dcols, const dpt_real *dout,
                               const dpt_real *w, int B, const dpt_conv_geom *g);

/* ---------------------------------------------------------------- unshared convolution
 * Locally connected (tiles = 0): a separate kernel at every output position
 * (Goodfellow et al. 9.5, "unshared convolution"). Tiled (tiles = t >= 1): t x t
 * kernel sets that rotate through positions, set (oy mod t) t + (ox mod t);
 * t = 1 is an ordinary convolution. Weights w[n_sets][out_c][in_c kh kw],
 * biases b[n_sets][out_c]. */
int dpt_unshared_sets(const dpt_conv_geom *g, int tiles);
void dpt_unshared_forward(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                          const dpt_real *b, int B, const dpt_conv_geom *g, int tiles);
void dpt_unshared_backward(dpt_real *dx, dpt_real *dw, dpt_real *db, dpt_real *cols,
                           dpt_real *dcols, const dpt_real *dout, const dpt_real *x,
                           const dpt_real *w, int B, const dpt_conv_geom *g, int tiles);

/* ---------------------------------------------------------------- pooling */

typedef struct dpt_pool_geom {
    int c, in_h, in_w;
    int kh, kw, stride;  /* window and step; no padding */
    int out_h, out_w;    /* floor((in - k) / stride) + 1 */
} dpt_pool_geom;

dpt_status dpt_pool_geom_init(dpt_pool_geom *g, int c, int in_h, int in_w, int kh, int kw, int stride);

/* out[B][c][out_h][out_w] = max over the window; argmax[B][c][out_h][out_w]
 * = index (within the sample's channel plane, y in_w + x) of the maximum,
 * the first one on ties. */
void dpt_maxpool_forward(dpt_real *out, int32_t *argmax, const dpt_real *x, int B,
                         const dpt_pool_geom *g);
/* dx[B][c][in_h][in_w] = dout routed to the argmax positions (overwrites dx). */
void dpt_maxpool_backward(dpt_real *dx, const dpt_real *dout, const int32_t *argmax, int B,
                          const dpt_pool_geom *g);
void dpt_avgpool_forward(dpt_real *out, const dpt_real *x, int B, const dpt_pool_geom *g);
void dpt_avgpool_backward(dpt_real *dx, const dpt_real *dout, int B, const dpt_pool_geom *g);

/* Global average pooling: out[B][c] = mean over the h w plane of x[B][c][h][w]. */
void dpt_gap_forward(dpt_real *out, const dpt_real *x, int B, int c, int hw);
void dpt_gap_backward(dpt_real *dx, const dpt_real *dout, int B, int c, int hw);

/* ---------------------------------------------------------------- batch normalization
 * Ioffe & Szegedy 2015, algorithm 1; Goodfellow et al. 8.7.1. Features are
 * the C channels; statistics run over the batch and, for conv layers, the
 * `spatial` = h w positions: x[B][C][spatial] (dense layers: spatial = 1). */

/* Sums n doubles in place over the data-parallel group (allreduce), or
 * does nothing when NULL: then statistics are this process's own. */
typedef void (*dpt_reduce_fn)(double *sums, int n, void *user);

typedef struct dpt_batchnorm_ctx {
    double momentum;   /* running = momentum running + (1 - momentum) batch */
    double eps;
    dpt_reduce_fn reduce; /* NULL: per-rank statistics */
    void *reduce_user;
    double *scratch;   /* [3 C + 1] doubles of workspace */
    /* A ReLU that follows the batch norm, fused in (0/NULL: none). Forward
     * with relu = 1 writes relu(gamma xhat + beta) to out (the ReLU layer's
     * output; the batch norm's own is never written); backward with
     * relu_out = that output reads dout as the ReLU's output gradient and
     * masks it where relu_out is not positive. Bit for bit the two layers. */
    int relu;
    const dpt_real *relu_out;
    /* A layer fused behind (max pooling after the ReLU, src/nn/forward.c),
     * fed one (sample, channel) plane q = b C + c at a time while the plane
     * is in L1 (NULL: none). Forward writes each plane of out into `plane`
     * and calls plane_out(q, plane, user); out itself is not written.
     * Backward calls plane_dout(q, plane, user) for the plane's output
     * gradient, the fused ReLU's mask applied (relu_out is then NULL), and
     * does not read dout. */
    void (*plane_out)(size_t q, const dpt_real *plane, void *user);
    const dpt_real *(*plane_dout)(size_t q, dpt_real *plane, void *user);
    dpt_real *plane; /* [spatial] */
    void *plane_user;
    /* 1: scratch already holds this process's per-channel sums and sums of
     * squares, added sample by sample (dpt_batchnorm_moments_add) */
    int moments_ready;
} dpt_batchnorm_ctx;

/* sum[c] += sum of x[c][.], sumsq[c] += sum of squares, over one sample
 * x[C][spatial], in double: the forward pass's moments, one sample at a
 * time in the order it takes them itself (the same sums). */
void dpt_batchnorm_moments_add(double *sum, double *sumsq, const dpt_real *x, int C, int spatial);

/* Training mode: batch statistics (sum, sum of squares and count reduced
 * over the group), out = gamma xhat + beta, and the running averages
 * updated (the running variance with the unbiased factor N / (N - 1)).
 * Saves xhat[B][C][spatial] and inv_std[C] = 1 / sqrt(var + eps) for backward;
 * xhat may be x itself, which is then overwritten (a caller whose x is read
 * by nothing else: one buffer fewer in cache). Returns the global count N. */
double dpt_batchnorm_forward_train(dpt_real *out, dpt_real *xhat, dpt_real *inv_std,
                                   dpt_real *running_mean, dpt_real *running_var,
                                   const dpt_real *x, const dpt_real *gamma, const dpt_real *beta,
                                   int B, int C, int spatial, const dpt_batchnorm_ctx *ctx);
/* Evaluation mode: the running averages instead of batch statistics. */
void dpt_batchnorm_forward_eval(dpt_real *out, const dpt_real *x, const dpt_real *gamma,
                                const dpt_real *beta, const dpt_real *running_mean,
                                const dpt_real *running_var, int B, int C, int spatial, double eps);
/* dgamma += sum dout xhat; dbeta += sum dout (this process's samples: the
 * gradient allreduce sums them later); dx from the group-wide sums:
 *   dx = gamma inv_std / N (N dout - sum dout - xhat sum(dout xhat)),
 * N the global count returned by the forward pass. */
void dpt_batchnorm_backward(dpt_real *dx, dpt_real *dgamma, dpt_real *dbeta, const dpt_real *dout,
                            const dpt_real *xhat, const dpt_real *inv_std, const dpt_real *gamma,
                            int B, int C, int spatial, double count, const dpt_batchnorm_ctx *ctx);

/* ---------------------------------------------------------------- dropout
 * Inverted dropout (Srivastava et al. 2014; Goodfellow et al. 7.12): keep
 * each unit with probability keep and scale kept units by 1 / keep, so that
 * evaluation uses the network unchanged (the weight-scaling inference rule). */

/* mask[n] in {0, 1 / keep}, drawn from rng. */
void dpt_dropout_mask(dpt_real *mask, size_t n, double keep, dpt_rng *rng);
/* out = x mask (out may alias x); backward: dx = dout mask. */
void dpt_dropout_apply(dpt_real *out, const dpt_real *x, const dpt_real *mask, size_t n);

/* ---------------------------------------------------------------- initialization */

typedef enum dpt_init_kind {
    DPT_INIT_AUTO = 0,       /* He normal before ReLU, Glorot uniform otherwise */
    DPT_INIT_ZEROS,
    DPT_INIT_CONSTANT,       /* value */
    DPT_INIT_UNIFORM,        /* U(-value, value) */
    DPT_INIT_NORMAL,         /* N(0, value^2) */
    DPT_INIT_GLOROT_UNIFORM, /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) Glorot & Bengio 2010 */
    DPT_INIT_GLOROT_NORMAL,  /* N(0, 2 / (fan_in + fan_out)) */
    DPT_INIT_HE_UNIFORM,     /* U(-a, a), a = sqrt(6 / fan_in)   He et al. 2015 */
    DPT_INIT_HE_NORMAL,      /* N(0, 2 / fan_in) */
    DPT_INIT_LECUN_NORMAL,   /* N(0, 1 / fan_in)                 LeCun et al. 1998 */
    DPT_INIT_ORTHOGONAL,     /* value x a matrix with orthonormal rows (or columns), Saxe et al. 2014 */
    DPT_INIT_SPARSE,         /* value non-zero N(0, 1) weights per unit, Martens 2010 */
    DPT_INIT_COUNT_
} dpt_init_kind;

typedef struct dpt_init_spec {
    dpt_init_kind kind;
    double value; /* constant, uniform limit, normal std, orthogonal gain, sparse count */
} dpt_init_spec;

const char *dpt_init_name(dpt_init_kind kind);

/* w[rows][cols] with fan_in and fan_out as the formulas need them (dense:
 * rows = fan_out units, cols = fan_in; conv: rows = filters, cols = in_c kh kw,
 * fan_in = cols, fan_out = filters kh kw). Orthogonal uses LAPACK's QR
 * (xGEQRF + xORGQR) of a Gaussian matrix with the sign correction of
 * Mezzadri 2007, so that the result is uniformly distributed. */
dpt_status dpt_init_weights(dpt_real *w, int rows, int cols, int fan_in, int fan_out,
                            const dpt_init_spec *init, dpt_rng *rng);

#endif /* DPT_LAYERS_H */
