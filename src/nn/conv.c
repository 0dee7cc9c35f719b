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
    dpt_conv_geom r = {in_c, in_h, in_w, out_c, kh, kw, stride, dilation, 0, 0, 0, 0};
    dpt_status st = axis_geom(&r.out_h, &r.pad_top, in_h, kh, stride, dilation, pad, "height");
    if (st == DPT_OK) st = axis_geom(&r.out_w, &r.pad_left, in_w, kw, stride, dilation, pad, "width");
    if (st != DPT_OK) return st;
    /* dpt_conv_rows / dpt_conv_cols return int: keep both products in range */
    if ((long long)in_c * kh * kw > INT_MAX || (long long)r.out_h * r.out_w > INT_MAX)
        return DPT_FAIL(DPT_ERR_SHAPE, "conv: im2col matrix %d x %d x %d by %d x %d is too large",
                        in_c, kh, kw, r.out_h, r.out_w);
    *g = r;
    return DPT_OK;
}

/* ---------------------------------------------------------------- im2col / col2im */

/* The output columns [*lo, *hi) whose input column x = ox stride - pad_left
 * + j dilation lies inside the image: the rest read padding. */
static void valid_columns(const dpt_conv_geom *g, int j, int *lo, int *hi)
{
    int x0 = j * g->dilation - g->pad_left; /* x of ox = 0 */
    *lo = x0 >= 0 ? 0 : (-x0 + g->stride - 1) / g->stride;
    int last = g->in_w - 1 - x0;            /* largest ox stride with x < in_w */
    *hi = last < 0 ? 0 : last / g->stride + 1;
    if (*hi > g->out_w) *hi = g->out_w;
    if (*lo > *hi) *lo = *hi;
}

/* One im2col row (kernel offset i, j of one channel plane): dst[out_h][out_w]. */
static void im2col_row(dpt_real *dst, const dpt_real *plane, const dpt_conv_geom *g, int i, int j)
{
    int lo, hi;
    valid_columns(g, j, &lo, &hi);
    const int x0 = j * g->dilation - g->pad_left, stride = g->stride;
    for (int oy = 0; oy < g->out_h; oy++, dst += g->out_w) {
        int y = oy * g->stride - g->pad_top + i * g->dilation;
        if (y < 0 || y >= g->in_h) {
            memset(dst, 0, sizeof(dpt_real) * g->out_w);
            continue;
        }
        const dpt_real *row = plane + (size_t)y * g->in_w; /* x0 + ox stride >= 0 in [lo, hi) */
        for (int ox = 0; ox < lo; ox++) dst[ox] = 0;
        if (stride == 1 && hi > lo) memcpy(dst + lo, row + x0 + lo, sizeof(dpt_real) * (size_t)(hi - lo));
        else for (int ox = lo; ox < hi; ox++) dst[ox] = row[x0 + ox * stride];
        for (int ox = hi; ox < g->out_w; ox++) dst[ox] = 0;
    }
}

/* The adjoint of im2col_row: scatter-add one row back into the plane. */
static void col2im_row(dpt_real *plane, const dpt_real *src, const dpt_conv_geom *g, int i, int j)
{
    int lo, hi;
    valid_columns(g, j, &lo, &hi);
    const int x0 = j * g->dilation - g->pad_left, stride = g->stride;
    for (int oy = 0; oy < g->out_h; oy++, src += g->out_w) {
        int y = oy * g->stride - g->pad_top + i * g->dilation;
        if (y < 0 || y >= g->in_h) continue;
        dpt_real *row = plane + (size_t)y * g->in_w;
        for (int ox = lo; ox < hi; ox++) row[x0 + ox * stride] += src[ox];
    }
}

void dpt_im2col(dpt_real *cols, const dpt_real *x, const dpt_conv_geom *g)
{
    size_t ncols = (size_t)dpt_conv_cols(g), plane = (size_t)g->in_h * g->in_w;
    dpt_real *row = cols;
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++, row += ncols) im2col_row(row, x + c * plane, g, i, j);
}

void dpt_col2im(dpt_real *dx, const dpt_real *dcols, const dpt_conv_geom *g)
{
    size_t ncols = (size_t)dpt_conv_cols(g), plane = (size_t)g->in_h * g->in_w;
    const dpt_real *row = dcols;
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++, row += ncols) col2im_row(dx + c * plane, row, g, i, j);
}

/* ---------------------------------------------------------------- conv2d */

void dpt_conv2d_forward(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                        const dpt_real *b, int B, const dpt_conv_geom *g)
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
        /* col2im adds (overlapping windows share pixels): clear dx[s] first */
        memset(dx + s * in_size, 0, sizeof(dpt_real) * in_size);
        dpt_col2im(dx + s * in_size, dcols, g);
    }
}
