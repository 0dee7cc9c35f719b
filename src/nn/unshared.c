/* Unshared convolution: locally connected (a kernel per output position)
 * and tiled (t x t kernel sets rotating over the positions). Plain loops
 * over im2col columns: every position may use a different kernel, so
 * there is no single GEMM. Loops run position-major with the kernel index
 * innermost, so that the weights w[s][f][.] (the big array of a locally
 * connected layer, each value used once per sample) are read in order;
 * the im2col matrix read across is small enough to stay in cache. */
#include "dpt/layers.h"

#include <string.h>

int dpt_unshared_sets(const dpt_conv_geom *g, int tiles)
{
    if (tiles < 0) return 0; /* not a valid configuration: no kernel sets */
    return tiles == 0 ? g->out_h * g->out_w : tiles * tiles;
}

/* The kernel set used at output position (oy, ox). */
static inline int set_of(int oy, int ox, int out_w, int tiles)
{
    return tiles == 0 ? oy * out_w + ox : (oy % tiles) * tiles + ox % tiles;
}

/* One sample: out[out_c][ncols] from cols[rows][ncols]. */
static void forward_sample(dpt_real *out, const dpt_real *cols, const dpt_real *w,
                           const dpt_real *b, const dpt_conv_geom *g, int tiles)
{
    size_t rows = (size_t)dpt_conv_rows(g), ncols = (size_t)dpt_conv_cols(g);
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++) {
            size_t p = (size_t)oy * g->out_w + ox;
            size_t s = (size_t)set_of(oy, ox, g->out_w, tiles);
            for (int f = 0; f < g->out_c; f++) {
                const dpt_real *wk = w + (s * g->out_c + f) * rows;
                dpt_acc acc = b[s * g->out_c + f];
                for (size_t k = 0; k < rows; k++) acc += (dpt_acc)wk[k] * cols[k * ncols + p];
                out[f * ncols + p] = (dpt_real)acc;
            }
        }
}

void dpt_unshared_forward(dpt_real *out, dpt_real *cols, const dpt_real *x, const dpt_real *w,
                          const dpt_real *b, int B, const dpt_conv_geom *g, int tiles)
{
    size_t in_size = (size_t)g->in_c * g->in_h * g->in_w;
    size_t out_size = (size_t)g->out_c * dpt_conv_cols(g);
    for (int n = 0; n < B; n++) {
        dpt_im2col(cols, x + n * in_size, g);
        forward_sample(out + n * out_size, cols, w, b, g, tiles);
    }
}

/* One sample: dw, db += ...; dcols (if not NULL) = w^T dout, column by column. */
static void backward_sample(dpt_real *dcols, dpt_real *dw, dpt_real *db, const dpt_real *cols,
                            const dpt_real *dout, const dpt_real *w, const dpt_conv_geom *g,
                            int tiles)
{
    size_t rows = (size_t)dpt_conv_rows(g), ncols = (size_t)dpt_conv_cols(g);
    if (dcols) memset(dcols, 0, sizeof(dpt_real) * rows * ncols);
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++) {
            size_t p = (size_t)oy * g->out_w + ox;
            size_t s = (size_t)set_of(oy, ox, g->out_w, tiles);
            for (int f = 0; f < g->out_c; f++) {
                size_t sf = s * g->out_c + f;
                dpt_real d = dout[f * ncols + p];
                db[sf] += d;
                dpt_real *dwk = dw + sf * rows;
                for (size_t k = 0; k < rows; k++) dwk[k] += d * cols[k * ncols + p];
                if (!dcols) continue;
                const dpt_real *wk = w + sf * rows;
                for (size_t k = 0; k < rows; k++) dcols[k * ncols + p] += wk[k] * d;
            }
        }
}

void dpt_unshared_backward(dpt_real *dx, dpt_real *dw, dpt_real *db, dpt_real *cols,
                           dpt_real *dcols, const dpt_real *dout, const dpt_real *x,
                           const dpt_real *w, int B, const dpt_conv_geom *g, int tiles)
{
    size_t in_size = (size_t)g->in_c * g->in_h * g->in_w;
    size_t out_size = (size_t)g->out_c * dpt_conv_cols(g);
    for (int n = 0; n < B; n++) {
        dpt_im2col(cols, x + n * in_size, g);
        backward_sample(dx ? dcols : NULL, dw, db, cols, dout + n * out_size, w, g, tiles);
        if (!dx) continue;
        dpt_col2im(dx + n * in_size, dcols, g);
    }
}
