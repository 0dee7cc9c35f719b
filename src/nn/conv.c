/* Convolution geometry, im2col / col2im and the shared-weight conv2d layer
 * on CBLAS GEMM (one GEMM per sample, output directly in NCHW). */
#include "dpt/layers.h"

#include <limits.h>
#include <string.h>

#include "../core/vec.h"

/* ---------------------------------------------------------------- geometry */

static dpt_status check_positive(int value, const char *what)
{
    if (value <= 0) return DPT_FAIL(DPT_ERR_SHAPE, "conv: %s must be positive (got %d)", what, value);
    return DPT_OK;
}

/* Output size and leading padding along one axis. Sizes are computed in
 * long long so that absurd kernel or dilation values cannot overflow int
 * before they are rejected. */
static dpt_status axis_geom(int *out, int *pad_before, int in, int k, int stride, int dilation,
                            dpt_padding pad, const char *axis)
{
    long long k_eff = (long long)(k - 1) * dilation + 1, n = 0, before = 0;
    switch (pad) {
    case DPT_PAD_VALID:
        n = in >= k_eff ? (in - k_eff) / stride + 1 : 0;
        break;
    case DPT_PAD_SAME: {
        n = ((long long)in + stride - 1) / stride;
        long long total = (n - 1) * stride + k_eff - in;
        before = total > 0 ? total / 2 : 0; /* the odd pixel goes to the bottom/right */
        break;
    }
    case DPT_PAD_FULL:
        before = k_eff - 1;
        n = (in + 2 * before - k_eff) / stride + 1;
        break;
    default:
        return DPT_FAIL(DPT_ERR_ARG, "conv: unknown padding mode %d", (int)pad);
    }
    if (n <= 0)
        return DPT_FAIL(DPT_ERR_SHAPE,
                        "conv: empty output: kernel %s %d (effective %lld with dilation %d) "
                        "exceeds input %s %d with valid padding",
                        axis, k, k_eff, dilation, axis, in);
    if (n > INT_MAX || before > INT_MAX)
        return DPT_FAIL(DPT_ERR_SHAPE, "conv: output %s too large (kernel %s %d, dilation %d)",
                        axis, axis, k, dilation);
    *out = (int)n;
    *pad_before = (int)before;
    return DPT_OK;
}

dpt_status dpt_conv_geom_init(dpt_conv_geom *g, int in_c, int in_h, int in_w, int out_c,
                              int kh, int kw, int stride, int dilation, dpt_padding pad)
{
    const int values[] = {in_c, in_h, in_w, out_c, kh, kw, stride, dilation};
    const char *names[] = {"input channels", "input height", "input width", "output channels",
                           "kernel height", "kernel width", "stride", "dilation"};
    for (int i = 0; i < 8; i++) {
        dpt_status st = check_positive(values[i], names[i]);
        if (st != DPT_OK) return st;
    }
    dpt_conv_geom r = {in_c, in_h, in_w, out_c, kh, kw, stride, dilation, 0, 0, 0, 0, 0, 0};
    dpt_status st = axis_geom(&r.out_h, &r.pad_top, in_h, kh, stride, dilation, pad, "height");
    if (st == DPT_OK) st = axis_geom(&r.out_w, &r.pad_left, in_w, kw, stride, dilation, pad, "width");
    if (st != DPT_OK) return st;
    /* dpt_conv_rows / dpt_conv_cols return int: keep both products in range */
    if ((long long)in_c * kh * kw > INT_MAX || (long long)r.out_h * r.out_w > INT_MAX)
        return DPT_FAIL(DPT_ERR_SHAPE, "conv: im2col matrix %d x %d x %d by %d x %d is too large",
                        in_c, kh, kw, r.out_h, r.out_w);
    /* the padded plane holds the input and the farthest window: the last
     * output's last kernel tap, (out - 1) stride + (k - 1) dilation */
    long long reach_h = (long long)(r.out_h - 1) * stride + (long long)(kh - 1) * dilation + 1;
    long long reach_w = (long long)(r.out_w - 1) * stride + (long long)(kw - 1) * dilation + 1;
    long long ph = reach_h > r.pad_top + (long long)in_h ? reach_h : r.pad_top + (long long)in_h;
    long long pw = reach_w > r.pad_left + (long long)in_w ? reach_w : r.pad_left + (long long)in_w;
    if (ph * pw > INT_MAX / in_c)
        return DPT_FAIL(DPT_ERR_SHAPE, "conv: padded input %d x %lld x %lld is too large", in_c, ph, pw);
    r.padded_h = (int)ph, r.padded_w = (int)pw;
    *g = r;
    return DPT_OK;
}

/* ---------------------------------------------------------------- im2col / col2im */

/* Both work on a zero-padded copy of one sample, padded[c][padded_h][padded_w]
 * with x[c][y][x] at [y + pad_top][x + pad_left]: matrix row (c, i, j) at
 * output (oy, ox) is then padded[c][oy stride + i dilation][ox stride + j
 * dilation], always in range. With rows of a few dozen values (14 in conv2
 * of the Fashion-MNIST CNN) the bounds checks and short memcpy calls of a
 * direct version cost three times as much: 22.8 against 7.8 us a sample. */

static dpt_real *padded_plane(dpt_real *work, const dpt_conv_geom *g)
{
    return work + (size_t)dpt_conv_rows(g) * (size_t)dpt_conv_cols(g);
}

/* dst[0, n) = src[0, n) in fixed 32-byte blocks, which compilers inline. A
 * plain loop over these short rows (14 values in conv2 of the Fashion-MNIST
 * CNN) is turned into a memmove call per row, and the calls cost more than
 * the copying: im2col took 16 instead of 8 us a sample that way. */
static inline void copy_row(dpt_real *restrict dst, const dpt_real *restrict src, int n)
{
    enum { V = 32 / sizeof(dpt_real) };
    int k = 0;
    for (; k + V <= n; k += V) memcpy(dst + k, src + k, V * sizeof(dpt_real));
    if (k == n) return;
    if (n >= V) { /* the last block again, overlapping the one before */
        memcpy(dst + n - V, src + n - V, V * sizeof(dpt_real));
        return;
    }
    if (n & 4) memcpy(dst + k, src + k, 4 * sizeof(dpt_real)), k += 4;
    if (n & 2) memcpy(dst + k, src + k, 2 * sizeof(dpt_real)), k += 2;
    if (n & 1) dst[k] = src[k];
}

/* padded = x with zero borders (the scratch is shared by the layers of a
 * model, so the borders are written every time: one memset of the whole
 * plane, which stays in L1/L2, rather than a short one per border run). */
static void pad_input(dpt_real *restrict padded, const dpt_real *restrict x, const dpt_conv_geom *g)
{
    const size_t plane = (size_t)g->padded_h * g->padded_w, pw = (size_t)g->padded_w;
    memset(padded, 0, sizeof(dpt_real) * plane * (size_t)g->in_c);
    for (int c = 0; c < g->in_c; c++) {
        dpt_real *dst = padded + c * plane + (size_t)g->pad_top * pw + g->pad_left;
        for (int y = 0; y < g->in_h; y++, dst += pw, x += g->in_w) copy_row(dst, x, g->in_w);
    }
}

void dpt_im2col(dpt_real *cols, const dpt_real *x, const dpt_conv_geom *g)
{
    dpt_real *padded = padded_plane(cols, g);
    pad_input(padded, x, g);
    const size_t plane = (size_t)g->padded_h * g->padded_w, pw = (size_t)g->padded_w;
    const int ow = g->out_w, stride = g->stride;
    dpt_real *restrict row = cols;
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                const dpt_real *src = padded + c * plane + (size_t)i * g->dilation * pw + (size_t)j * g->dilation;
                for (int oy = 0; oy < g->out_h; oy++, row += ow) {
                    const dpt_real *restrict s = src + (size_t)oy * stride * pw;
                    if (stride == 1)
                        copy_row(row, s, ow);
                    else
                        for (int ox = 0; ox < ow; ox++) row[ox] = s[(size_t)ox * stride];
                }
            }
}

void dpt_col2im(dpt_real *dx, dpt_real *dcols, const dpt_conv_geom *g)
{
    dpt_real *padded = padded_plane(dcols, g);
    const size_t plane = (size_t)g->padded_h * g->padded_w, pw = (size_t)g->padded_w;
    memset(padded, 0, sizeof(dpt_real) * plane * (size_t)g->in_c);
    const int ow = g->out_w, stride = g->stride;
    const dpt_real *restrict row = dcols;
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                dpt_real *dst = padded + c * plane + (size_t)i * g->dilation * pw + (size_t)j * g->dilation;
                for (int oy = 0; oy < g->out_h; oy++, row += ow) {
                    dpt_real *restrict d = dst + (size_t)oy * stride * pw;
                    if (stride == 1)
                        for (int ox = 0; ox < ow; ox++) d[ox] += row[ox];
                    else
                        for (int ox = 0; ox < ow; ox++) d[(size_t)ox * stride] += row[ox];
                }
            }
    /* the interior is dx; what landed in the borders was padding's */
    for (int c = 0; c < g->in_c; c++)
        for (int y = 0; y < g->in_h; y++, dx += g->in_w)
            copy_row(dx, padded + c * plane + (size_t)(y + g->pad_top) * pw + g->pad_left, g->in_w);
}

/* ---------------------------------------------------------------- conv2d */

void dpt_conv2d_forward(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                        const dpt_real *b, int B, const dpt_conv_geom *g)
{
    dpt_conv2d_forward_each(out, cols, x, w, b, B, g, NULL);
}

void dpt_conv2d_forward_each(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                             const dpt_real *b, int B, const dpt_conv_geom *g,
                             const dpt_sample_hook *after)
{
    int rows = dpt_conv_rows(g), ncols = dpt_conv_cols(g);
    size_t in_size = (size_t)g->in_c * g->in_h * g->in_w, out_size = (size_t)g->out_c * ncols;
    for (int s = 0; s < B; s++) {
        dpt_real *o = out + s * out_size;
        dpt_im2col(cols, x + s * in_size, g);
        /* start at the bias and let GEMM add w . cols (beta = 1), as dense does */
        for (int f = 0; f < g->out_c; f++)
            for (int p = 0; p < ncols; p++) o[(size_t)f * ncols + p] = b[f];
        dpt_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->out_c, ncols, rows,
                 1, w, rows, cols, ncols, 1, o, ncols);
        if (after) after->fn(s, o, after->user);
    }
}

void dpt_conv2d_backward(dpt_real *dx, dpt_real *dw, dpt_real *db, dpt_real *cols,
                         dpt_real *dcols, const dpt_real *dout, const dpt_real *x,
                         const dpt_real *w, int B, const dpt_conv_geom *g)
{
    int rows = dpt_conv_rows(g), ncols = dpt_conv_cols(g);
    size_t in_size = (size_t)g->in_c * g->in_h * g->in_w, out_size = (size_t)g->out_c * ncols;
    for (int s = 0; s < B; s++) {
        const dpt_real *d = dout + s * out_size;
        dpt_im2col(cols, x + s * in_size, g);
        dpt_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->out_c, rows, ncols,
                 1, d, ncols, cols, ncols, 1, dw, rows);
        for (int f = 0; f < g->out_c; f++) db[f] += (dpt_real)dpt_vec_sum(d + (size_t)f * ncols, (size_t)ncols);
        if (dx) dpt_conv2d_backward_input(dx + s * in_size, dcols, d, w, 1, g);
    }
}

void dpt_conv2d_backward_input(dpt_real *dx, dpt_real *dcols, const dpt_real *dout,
                               const dpt_real *w, int B, const dpt_conv_geom *g)
{
    int rows = dpt_conv_rows(g), ncols = dpt_conv_cols(g);
    size_t in_size = (size_t)g->in_c * g->in_h * g->in_w, out_size = (size_t)g->out_c * ncols;
    for (int s = 0; s < B; s++) {
        dpt_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, ncols, g->out_c,
                 1, w, rows, dout + s * out_size, ncols, 0, dcols, ncols);
        dpt_col2im(dx + s * in_size, dcols, g);
    }
}
