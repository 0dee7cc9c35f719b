/* Max and average pooling (no padding, windows may overlap) and global
 * average pooling, with their backward passes. */
#include "dpt/layers.h"

#include <string.h>

#include "../core/clones.h"
#include "../core/vec.h"

dpt_status dpt_pool_geom_init(dpt_pool_geom *g, int c, int in_h, int in_w, int kh, int kw, int stride)
{
    const int values[] = {c, in_h, in_w, kh, kw, stride};
    const char *names[] = {"channels", "input height", "input width",
                           "window height", "window width", "stride"};
    for (int i = 0; i < 6; i++)
        if (values[i] <= 0)
            return DPT_FAIL(DPT_ERR_SHAPE, "pool: %s must be positive (got %d)", names[i], values[i]);
    if (kh > in_h)
        return DPT_FAIL(DPT_ERR_SHAPE, "pool: window height %d exceeds input height %d", kh, in_h);
    if (kw > in_w)
        return DPT_FAIL(DPT_ERR_SHAPE, "pool: window width %d exceeds input width %d", kw, in_w);
    /* argmax holds plane indices in int32_t */
    if ((long long)in_h * in_w > INT32_MAX)
        return DPT_FAIL(DPT_ERR_SHAPE, "pool: input plane %d x %d is too large", in_h, in_w);
    *g = (dpt_pool_geom){c, in_h, in_w, kh, kw, stride, (in_h - kh) / stride + 1,
                         (in_w - kw) / stride + 1};
    return DPT_OK;
}

/* Number of channel planes in the batch: B c. */
static size_t planes(int B, const dpt_pool_geom *g) { return (size_t)B * g->c; }

/* Index (within the plane) of the first maximum of the window at (oy, ox). */
static int32_t window_argmax(const dpt_real *plane, const dpt_pool_geom *g, int oy, int ox)
{
    int y0 = oy * g->stride, x0 = ox * g->stride;
    int32_t best = (int32_t)(y0 * g->in_w + x0);
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++) {
            int32_t at = (int32_t)((y0 + i) * g->in_w + x0 + j);
            if (plane[at] > plane[best]) best = at; /* strict: the first one wins ties */
        }
    return best;
}

/* Outputs [0, out_w) of a row of 2 x 2 windows at stride s (called for
 * blocks of eight at stride 2, constants the compiler vectorizes): the same comparisons in
 * the same order as window_argmax (the first maximum wins ties; a NaN is
 * never taken), as selects instead of branches. The profile of the CNN
 * config found the branching loop at 13.6% of the step: which of four
 * pixels is largest is a coin toss for the branch predictor. `at` is the
 * plane index of top[0]. */
static inline void maxpool_row_2x2(dpt_real *restrict out, int32_t *restrict argmax,
                                   const dpt_real *restrict top, const dpt_real *restrict bottom,
                                   int32_t at, int w, int out_w, int s)
{
    for (int ox = 0; ox < out_w; ox++) {
        const int x0 = ox * s;
        dpt_real best = top[x0];
        int32_t arg = at + x0;
        const dpt_real b = top[x0 + 1], c = bottom[x0], d = bottom[x0 + 1];
        int gt = b > best;
        best = gt ? b : best;
        arg = gt ? at + x0 + 1 : arg;
        gt = c > best;
        best = gt ? c : best;
        arg = gt ? at + w + x0 : arg;
        gt = d > best;
        best = gt ? d : best;
        arg = gt ? at + w + x0 + 1 : arg;
        out[ox] = best;
        argmax[ox] = arg;
    }
}

/* maxpool_row_2x2 for rows the compiler leaves scalar (under eight
 * outputs): the same comparisons, the index moved by integer masks and the
 * value by "x > y ? x : y" (one max instruction). Written as the selects
 * above, GCC branches here: 6.7 instead of 1.7 ns an output on rows of 7
 * (conv2 of the CNN), while the selects are what it vectorizes. */
static inline void maxpool_row_2x2_short(dpt_real *restrict out, int32_t *restrict argmax,
                                         const dpt_real *restrict top, const dpt_real *restrict bottom,
                                         int32_t at, int w, int out_w, int s)
{
    for (int ox = 0; ox < out_w; ox++) {
        const int x0 = ox * s;
        const dpt_real b = top[x0 + 1], c = bottom[x0], d = bottom[x0 + 1];
        dpt_real best = top[x0];
        int32_t arg = at + x0;
        int32_t gt = -(int32_t)(b > best);
        best = b > best ? b : best;
        arg += (at + x0 + 1 - arg) & gt;
        gt = -(int32_t)(c > best);
        best = c > best ? c : best;
        arg += (at + w + x0 - arg) & gt;
        gt = -(int32_t)(d > best);
        best = d > best ? d : best;
        arg += (at + w + x0 + 1 - arg) & gt;
        out[ox] = best;
        argmax[ox] = arg;
    }
}

/* The 2 x 2 window; stride 2 (the usual pooling) goes eight outputs at a
 * time, a constant count the compiler vectorizes whole, the last eight
 * overlapping the ones before when the row is not a multiple (the same
 * values written twice). A loop over the row vectorized only its multiple of
 * eight and left the rest scalar and branching: conv1 of the CNN has rows
 * of 14 outputs (2.3 instead of 0.53 ns an output). Other strides, and rows
 * under eight, go one output at a time without branches. */
DPT_CLONES static void maxpool_plane_2x2(dpt_real *restrict out, int32_t *restrict argmax,
                                         const dpt_real *restrict plane, const dpt_pool_geom *g)
{
    const int w = g->in_w, s = g->stride, out_w = g->out_w;
    for (int oy = 0; oy < g->out_h; oy++, out += out_w, argmax += out_w) {
        const dpt_real *top = plane + (size_t)oy * s * w;
        const int32_t at = (int32_t)(oy * s * w);
        if (s != 2 || out_w < 8) {
            maxpool_row_2x2_short(out, argmax, top, top + w, at, w, out_w, s);
            continue;
        }
        for (int ox = 0; ox < out_w; ox += 8) {
            if (ox + 8 > out_w) ox = out_w - 8;
            maxpool_row_2x2(out + ox, argmax + ox, top + 2 * ox, top + w + 2 * ox, at + 2 * ox, w, 8, 2);
        }
    }
}

void dpt_maxpool_forward(dpt_real *out, int32_t *argmax, const dpt_real *x, int B,
                         const dpt_pool_geom *g)
{
    size_t in_plane = (size_t)g->in_h * g->in_w, out_plane = (size_t)g->out_h * g->out_w;
    if (g->kh == 2 && g->kw == 2) {
        for (size_t q = 0; q < planes(B, g); q++)
            maxpool_plane_2x2(out + q * out_plane, argmax + q * out_plane, x + q * in_plane, g);
        return;
    }
    for (size_t q = 0; q < planes(B, g); q++) {
        const dpt_real *plane = x + q * in_plane;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                size_t o = q * out_plane + (size_t)oy * g->out_w + ox;
                argmax[o] = window_argmax(plane, g, oy, ox);
                out[o] = plane[argmax[o]];
            }
    }
}

/* One plane of the input gradient when the windows tile it (stride =
 * window): zero, but the window's maximum gets its output's gradient.
 * 0 + d, not d, so that the result is the memset-and-add one to the sign
 * of a zero. Rows and columns no window covers are zero. */
static void maxpool_backward_tiled(dpt_real *restrict dx, const dpt_real *restrict dout,
                                   const int32_t *restrict argmax, const dpt_pool_geom *g)
{
    const int k = g->stride, w = g->in_w;
    for (int oy = 0; oy < g->out_h; oy++) {
        memset(dx + (size_t)oy * k * w, 0, sizeof(dpt_real) * (size_t)k * w); /* the k rows, in cache */
        for (int ox = 0; ox < g->out_w; ox++) {
            size_t o = (size_t)oy * g->out_w + ox;
            dx[argmax[o]] = (dpt_real)0 + dout[o];
        }
    }
    size_t covered_h = (size_t)g->out_h * k;
    if (covered_h < (size_t)g->in_h) memset(dx + covered_h * w, 0, sizeof(dpt_real) * (g->in_h - covered_h) * w);
}

void dpt_maxpool_backward(dpt_real *dx, const dpt_real *dout, const int32_t *argmax, int B,
                          const dpt_pool_geom *g)
{
    size_t in_plane = (size_t)g->in_h * g->in_w, out_plane = (size_t)g->out_h * g->out_w;
    if (g->stride == g->kh && g->stride == g->kw) {
        /* windows that tile the plane: each pixel is written once, no
         * memset pass first (the activations are larger than L2) */
        for (size_t q = 0; q < planes(B, g); q++)
            maxpool_backward_tiled(dx + q * in_plane, dout + q * out_plane, argmax + q * out_plane, g);
        return;
    }
    memset(dx, 0, sizeof(dpt_real) * planes(B, g) * in_plane);
    /* += : with overlapping windows one pixel can be the maximum of several */
    for (size_t q = 0; q < planes(B, g); q++)
        for (size_t o = 0; o < out_plane; o++)
            dx[q * in_plane + argmax[q * out_plane + o]] += dout[q * out_plane + o];
}

void dpt_avgpool_forward(dpt_real *out, const dpt_real *x, int B, const dpt_pool_geom *g)
{
    size_t in_plane = (size_t)g->in_h * g->in_w;
    double scale = 1.0 / ((double)g->kh * g->kw);
    for (size_t q = 0; q < planes(B, g); q++) {
        const dpt_real *plane = x + q * in_plane;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                dpt_acc sum = 0;
                for (int i = 0; i < g->kh; i++) {
                    size_t y = (size_t)oy * g->stride + i;
                    const dpt_real *row = plane + y * g->in_w + (size_t)ox * g->stride;
                    for (int j = 0; j < g->kw; j++) sum += row[j];
                }
                *out++ = (dpt_real)(sum * scale);
            }
    }
}

void dpt_avgpool_backward(dpt_real *dx, const dpt_real *dout, int B, const dpt_pool_geom *g)
{
    size_t in_plane = (size_t)g->in_h * g->in_w;
    dpt_real scale = (dpt_real)(1.0 / ((double)g->kh * g->kw));
    memset(dx, 0, sizeof(dpt_real) * planes(B, g) * in_plane);
    /* += : overlapping windows (stride < k) share pixels */
    for (size_t q = 0; q < planes(B, g); q++) {
        dpt_real *plane = dx + q * in_plane;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                dpt_real d = *dout++ * scale;
                for (int i = 0; i < g->kh; i++) {
                    size_t y = (size_t)oy * g->stride + i;
                    dpt_real *row = plane + y * g->in_w + (size_t)ox * g->stride;
                    for (int j = 0; j < g->kw; j++) row[j] += d;
                }
            }
    }
}

void dpt_gap_forward(dpt_real *out, const dpt_real *x, int B, int c, int hw)
{
    for (size_t q = 0; q < (size_t)B * c; q++)
        out[q] = (dpt_real)(dpt_vec_sum(x + q * hw, (size_t)hw) / hw);
}

void dpt_gap_backward(dpt_real *dx, const dpt_real *dout, int B, int c, int hw)
{
    for (size_t q = 0; q < (size_t)B * c; q++) {
        dpt_real d = (dpt_real)(dout[q] / (double)hw);
        for (int i = 0; i < hw; i++) dx[q * hw + i] = d;
    }
}
