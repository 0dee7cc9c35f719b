/* Convolution family and pooling: geometry against the documented
 * formulas, conv2d against a direct loop, every backward pass against
 * central finite differences of f = sum(r .* out), the relations between
 * conv2d, tiled and locally connected layers, and the translation
 * properties that tell them apart (Goodfellow et al. 9.4, 9.5). */
#include "cunit_util.h"
#include "fd_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/layers.h"
#include "dpt/rng.h"

/* Same bounds as test_gradcheck.c: |a - n| / max(|a|, |n|, REL_FLOOR).
 * The steps are larger than there because every objective here is affine
 * in any single input, weight or bias (max pooling too, as long as the
 * step cannot change a window's maximum): the central difference is then
 * exact for any step, and a larger step only shrinks the rounding noise
 * of the two forward passes relative to the difference.
 * SAME_TOL compares two computations of one quantity (different
 * summation order only). */
#ifdef DPT_DOUBLE
#define FD_STEP 1e-3
#define MAX_REL_ERR 1e-6
#define REL_FLOOR 1e-4
#define SAME_TOL 1e-10
#else
#define FD_STEP 1e-2
#define MAX_REL_ERR 2e-2
#define REL_FLOOR 1e-2
#define SAME_TOL 1e-4
#endif
/* Spacing of the distinct max pooling inputs: > 2 FD_STEP in both builds. */
#define MAX_SPACING 0.05

/* ---------------------------------------------------------------- helpers */

static double rel_err(double a, double n) { return dpt_fd_rel_err(a, n, REL_FLOOR); }

static void fill_uniform(dpt_real *x, size_t n, double lo, double hi, uint64_t seed)
{
    dpt_fd_fill_uniform(x, n, lo, hi, seed);
}

static void fill_const(dpt_real *x, size_t n, double v)
{
    for (size_t i = 0; i < n; i++) x[i] = (dpt_real)v;
}

static dpt_real *alloc_real(size_t n)
{
    dpt_real *p = calloc(n ? n : 1, sizeof(dpt_real));
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static double dot(const dpt_real *a, const dpt_real *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)a[i] * b[i];
    return sum;
}

static double max_abs_diff(const dpt_real *a, const dpt_real *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* f(ctx) for the finite differences; the perturbed value lives inside ctx. */
typedef double (*objective_fn)(void *ctx);

/* Worst relative error of (analytic[i] - offset) against the central
 * difference of f in v[i]. The denominator is the perturbation actually
 * applied, which float rounding makes differ from 2 FD_STEP. */
static double fd_worst(dpt_real *v, size_t n, const dpt_real *analytic, double offset,
                       objective_fn f, void *ctx)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        dpt_real keep = v[i], up = keep + (dpt_real)FD_STEP, down = keep - (dpt_real)FD_STEP;
        v[i] = up;
        double plus = f(ctx);
        v[i] = down;
        double minus = f(ctx);
        v[i] = keep;
        double numeric = (plus - minus) / ((double)up - down);
        worst = fmax(worst, rel_err((double)analytic[i] - offset, numeric));
    }
    return worst;
}

/* ---------------------------------------------------------------- geometry */

/* The header's formulas, restated here independently of conv.c. */
static int expect_axis(int in, int k, int s, int d, dpt_padding pad, int *before)
{
    int k_eff = (k - 1) * d + 1;
    *before = 0;
    if (pad == DPT_PAD_VALID) return in >= k_eff ? (in - k_eff) / s + 1 : 0;
    if (pad == DPT_PAD_FULL) {
        *before = k_eff - 1;
        return (in + 2 * *before - k_eff) / s + 1;
    }
    int out = (in + s - 1) / s, total = (out - 1) * s + k_eff - in;
    *before = total > 0 ? total / 2 : 0;
    return out;
}

static void check_geom_against_formula(int in_h, int in_w, int kh, int kw, int s, int d,
                                       dpt_padding pad)
{
    int top, left;
    int oh = expect_axis(in_h, kh, s, d, pad, &top), ow = expect_axis(in_w, kw, s, d, pad, &left);
    dpt_conv_geom g;
    dpt_status st = dpt_conv_geom_init(&g, 2, in_h, in_w, 3, kh, kw, s, d, pad);
    if (oh <= 0 || ow <= 0) {
        CU_ASSERT_EQUAL(st, DPT_ERR_SHAPE);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(st, DPT_OK);
    CU_ASSERT(g.out_h == oh && g.out_w == ow && g.pad_top == top && g.pad_left == left);
    CU_ASSERT(g.in_c == 2 && g.in_h == in_h && g.in_w == in_w && g.out_c == 3);
    CU_ASSERT(g.kh == kh && g.kw == kw && g.stride == s && g.dilation == d);
    CU_ASSERT_EQUAL(dpt_conv_rows(&g), 2 * kh * kw);
    CU_ASSERT_EQUAL(dpt_conv_cols(&g), oh * ow);
}

static void test_geometry_formulas(void)
{
    static const int sizes[] = {1, 5, 8, 28}, kernels[][2] = {{1, 1}, {3, 3}, {2, 5}, {5, 2}};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int k = 0; k < 4; k++)
                for (int s = 1; s <= 3; s++)
                    for (int d = 1; d <= 2; d++)
                        for (int p = DPT_PAD_VALID; p <= DPT_PAD_FULL; p++)
                            check_geom_against_formula(sizes[a], sizes[b], kernels[k][0],
                                                       kernels[k][1], s, d, (dpt_padding)p);
}

/* (in, k, stride, dilation, padding) -> (out, pad before), worked by hand. */
static void check_axis_literal(int in, int k, int s, int d, dpt_padding pad, int out, int before)
{
    dpt_conv_geom g;
    CU_ASSERT_EQUAL_FATAL(dpt_conv_geom_init(&g, 1, in, in, 1, k, k, s, d, pad), DPT_OK);
    CU_ASSERT_EQUAL(g.out_h, out);
    CU_ASSERT_EQUAL(g.out_w, out);
    CU_ASSERT_EQUAL(g.pad_top, before);
    CU_ASSERT_EQUAL(g.pad_left, before);
}

static void test_geometry_literals(void)
{
    check_axis_literal(28, 3, 1, 1, DPT_PAD_SAME, 28, 1);
    check_axis_literal(28, 3, 1, 1, DPT_PAD_VALID, 26, 0);
    check_axis_literal(28, 3, 1, 1, DPT_PAD_FULL, 30, 2);
    check_axis_literal(28, 5, 2, 1, DPT_PAD_SAME, 14, 1); /* total 3: 1 top, 2 bottom */
    check_axis_literal(7, 4, 1, 1, DPT_PAD_SAME, 7, 1);   /* total 3 */
    check_axis_literal(7, 3, 1, 2, DPT_PAD_VALID, 3, 0);  /* k_eff 5 */
    check_axis_literal(7, 3, 1, 2, DPT_PAD_FULL, 11, 4);
    check_axis_literal(8, 3, 3, 1, DPT_PAD_VALID, 2, 0);
    check_axis_literal(8, 3, 3, 1, DPT_PAD_SAME, 3, 0);   /* total 1: all at the bottom */
    check_axis_literal(8, 1, 3, 1, DPT_PAD_SAME, 3, 0);   /* total would be negative */
    check_axis_literal(5, 3, 2, 1, DPT_PAD_FULL, 4, 2);   /* (5 + 4 - 3) / 2 + 1 */
}

typedef struct geom_spec {
    int in_c, in_h, in_w, out_c, kh, kw, stride, dilation;
    dpt_padding pad;
} geom_spec;

static dpt_status spec_geom(dpt_conv_geom *g, const geom_spec *s)
{
    return dpt_conv_geom_init(g, s->in_c, s->in_h, s->in_w, s->out_c, s->kh, s->kw, s->stride,
                              s->dilation, s->pad);
}

/* Expects `status` and an error message naming the offending size. */
static void expect_geom_error(dpt_status st, dpt_status status, const char *word)
{
    CU_ASSERT_EQUAL(st, status);
    if (!strstr(dpt_error_message(), word))
        printf("\n  message \"%s\" does not mention %s\n", dpt_error_message(), word);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), word));
}

static void test_geometry_errors(void)
{
    static const struct {
        geom_spec spec;
        dpt_status status;
        const char *word;
    } bad[] = {
        {{1, 2, 8, 1, 3, 3, 1, 1, DPT_PAD_VALID}, DPT_ERR_SHAPE, "kernel height"},
        {{1, 8, 2, 1, 3, 3, 1, 1, DPT_PAD_VALID}, DPT_ERR_SHAPE, "kernel width"},
        {{1, 4, 8, 1, 3, 3, 1, 2, DPT_PAD_VALID}, DPT_ERR_SHAPE, "dilation"},
        {{0, 8, 8, 1, 3, 3, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "input channels"},
        {{1, -1, 8, 1, 3, 3, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "input height"},
        {{1, 8, 0, 1, 3, 3, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "input width"},
        {{1, 8, 8, 0, 3, 3, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "output channels"},
        {{1, 8, 8, 1, 0, 3, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "kernel height"},
        {{1, 8, 8, 1, 3, -2, 1, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "kernel width"},
        {{1, 8, 8, 1, 3, 3, 0, 1, DPT_PAD_SAME}, DPT_ERR_SHAPE, "stride"},
        {{1, 8, 8, 1, 3, 3, 1, 0, DPT_PAD_SAME}, DPT_ERR_SHAPE, "dilation"},
        {{1, 8, 8, 1, 3, 3, 1, 1, (dpt_padding)7}, DPT_ERR_ARG, "padding"},
    };
    dpt_conv_geom g;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_geom_error(spec_geom(&g, &bad[i].spec), bad[i].status, bad[i].word);
    /* the sizes of the first and third are fine with padding */
    CU_ASSERT_EQUAL(dpt_conv_geom_init(&g, 1, 2, 8, 1, 3, 3, 1, 1, DPT_PAD_SAME), DPT_OK);
    CU_ASSERT_EQUAL(dpt_conv_geom_init(&g, 1, 4, 8, 1, 3, 3, 1, 2, DPT_PAD_FULL), DPT_OK);
    dpt_pool_geom p;
    expect_geom_error(dpt_pool_geom_init(&p, 1, 4, 4, 5, 2, 1), DPT_ERR_SHAPE, "window height");
    expect_geom_error(dpt_pool_geom_init(&p, 1, 4, 4, 2, 5, 1), DPT_ERR_SHAPE, "window width");
    expect_geom_error(dpt_pool_geom_init(&p, 1, 4, 4, 2, 2, 0), DPT_ERR_SHAPE, "stride");
    expect_geom_error(dpt_pool_geom_init(&p, 0, 4, 4, 2, 2, 1), DPT_ERR_SHAPE, "channels");
    CU_ASSERT_EQUAL_FATAL(dpt_pool_geom_init(&p, 2, 7, 6, 3, 2, 2), DPT_OK);
    CU_ASSERT(p.out_h == 3 && p.out_w == 3);
}

/* ---------------------------------------------------------------- conv cases */

/* Every padding regime, strides 2 and 3, dilation 2, non-square kernels,
 * an even kernel with 'same' (asymmetric padding). */
static const geom_spec conv_specs[] = {
    {3, 7, 6, 4, 3, 3, 1, 1, DPT_PAD_SAME},  {2, 6, 7, 3, 3, 2, 1, 1, DPT_PAD_VALID},
    {2, 5, 5, 2, 2, 3, 1, 1, DPT_PAD_FULL},  {3, 9, 8, 2, 3, 3, 2, 1, DPT_PAD_SAME},
    {2, 9, 9, 3, 3, 3, 1, 2, DPT_PAD_SAME},  {1, 8, 7, 2, 2, 2, 3, 1, DPT_PAD_VALID},
    {2, 7, 7, 2, 3, 2, 2, 2, DPT_PAD_FULL},  {1, 6, 6, 2, 4, 4, 2, 1, DPT_PAD_SAME},
    {2, 8, 9, 2, 2, 3, 2, 2, DPT_PAD_VALID},
};
enum { N_CONV_SPECS = sizeof(conv_specs) / sizeof(conv_specs[0]) };

/* One layer with its data: tiles < 0 is conv2d, otherwise unshared. */
typedef struct conv_case {
    dpt_conv_geom g;
    int B, tiles;
    size_t nx, nw, nb, nout;
    dpt_real *x, *w, *b, *r, *out, *cols, *dcols;
} conv_case;

static void case_init(conv_case *c, const geom_spec *s, int B, int tiles, uint64_t seed)
{
    CU_ASSERT_EQUAL_FATAL(spec_geom(&c->g, s), DPT_OK);
    size_t sets = tiles < 0 ? 1 : (size_t)dpt_unshared_sets(&c->g, tiles);
    size_t rows = (size_t)dpt_conv_rows(&c->g), ncols = (size_t)dpt_conv_cols(&c->g);
    c->B = B;
    c->tiles = tiles;
    c->nx = (size_t)B * s->in_c * s->in_h * s->in_w;
    c->nw = sets * s->out_c * rows;
    c->nb = sets * s->out_c;
    c->nout = (size_t)B * s->out_c * ncols;
    c->x = alloc_real(c->nx);
    c->w = alloc_real(c->nw);
    c->b = alloc_real(c->nb);
    c->r = alloc_real(c->nout);
    c->out = alloc_real(c->nout);
    c->cols = alloc_real(dpt_conv_work_size(&c->g));
    c->dcols = alloc_real(dpt_conv_work_size(&c->g));
    fill_uniform(c->x, c->nx, -1, 1, seed);
    fill_uniform(c->w, c->nw, -1, 1, seed + 1);
    fill_uniform(c->b, c->nb, -1, 1, seed + 2);
    fill_uniform(c->r, c->nout, -1, 1, seed + 3);
}

static void case_free(conv_case *c)
{
    free(c->x);
    free(c->w);
    free(c->b);
    free(c->r);
    free(c->out);
    free(c->cols);
    free(c->dcols);
}

static void case_forward(conv_case *c, dpt_real *out)
{
    if (c->tiles < 0)
        dpt_conv2d_forward(out, c->cols, c->x, c->w, c->b, c->B, &c->g);
    else
        dpt_unshared_forward(out, c->cols, c->x, c->w, c->b, c->B, &c->g, c->tiles);
}

/* Backward with dout = r, the gradient of sum(r .* out). */
static void case_backward(conv_case *c, dpt_real *dx, dpt_real *dw, dpt_real *db)
{
    if (c->tiles < 0)
        dpt_conv2d_backward(dx, dw, db, c->cols, c->dcols, c->r, c->x, c->w, c->B, &c->g);
    else
        dpt_unshared_backward(dx, dw, db, c->cols, c->dcols, c->r, c->x, c->w, c->B, &c->g,
                              c->tiles);
}

static double case_objective(void *ctx)
{
    conv_case *c = ctx;
    case_forward(c, c->out);
    return dot(c->r, c->out, c->nout);
}

/* ---------------------------------------------------------------- conv2d forward */

/* out at (oy, ox) of filter f (its weights wf[in_c][kh][kw]) on one sample,
 * straight from the definition: zero outside the image. */
static double naive_at(const dpt_real *x, const dpt_real *wf, double bias, const dpt_conv_geom *g,
                       int oy, int ox)
{
    double sum = bias;
    for (int c = 0; c < g->in_c; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                int y = oy * g->stride - g->pad_top + i * g->dilation;
                int xx = ox * g->stride - g->pad_left + j * g->dilation;
                if (y < 0 || y >= g->in_h || xx < 0 || xx >= g->in_w) continue;
                sum += (double)x[((size_t)c * g->in_h + y) * g->in_w + xx] *
                       wf[((size_t)c * g->kh + i) * g->kw + j];
            }
    return sum;
}

/* The kernel set of the reference: tiles < 0 conv2d (one set). */
static int ref_set(int oy, int ox, int out_w, int tiles)
{
    if (tiles < 0) return 0;
    return tiles == 0 ? oy * out_w + ox : (oy % tiles) * tiles + ox % tiles;
}

/* Worst |layer - reference| over the whole batch. */
static double naive_worst(conv_case *c)
{
    const dpt_conv_geom *g = &c->g;
    size_t rows = (size_t)dpt_conv_rows(g), in_size = (size_t)g->in_c * g->in_h * g->in_w;
    case_forward(c, c->out);
    double worst = 0;
    const dpt_real *o = c->out;
    for (int n = 0; n < c->B; n++)
        for (int f = 0; f < g->out_c; f++)
            for (int oy = 0; oy < g->out_h; oy++)
                for (int ox = 0; ox < g->out_w; ox++) {
                    size_t sf = (size_t)ref_set(oy, ox, g->out_w, c->tiles) * g->out_c + f;
                    const dpt_real *xn = c->x + n * in_size, *wf = c->w + sf * rows;
                    double expect = naive_at(xn, wf, c->b[sf], g, oy, ox);
                    worst = fmax(worst, fabs(*o++ - expect));
                }
    return worst;
}

static void test_conv_forward_naive(void)
{
    for (int i = 0; i < N_CONV_SPECS; i++) {
        conv_case c;
        case_init(&c, &conv_specs[i], 2, -1, 100 + 10 * i);
        double worst = naive_worst(&c);
        if (worst >= SAME_TOL) printf("\n  conv spec %d: max diff %.3g\n", i, worst);
        CU_ASSERT(worst < SAME_TOL);
        case_free(&c);
    }
}

static void test_unshared_forward_naive(void)
{
    static const int tiles[] = {0, 1, 2, 3};
    static const int specs[] = {0, 3, 4, 6}; /* same, stride 2, dilation 2, full */
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 4; i++) {
            conv_case c;
            case_init(&c, &conv_specs[specs[i]], 2, tiles[t], 200 + 10 * i + t);
            double worst = naive_worst(&c);
            if (worst >= SAME_TOL) printf("\n  tiles %d spec %d: max diff %.3g\n", tiles[t], i, worst);
            CU_ASSERT(worst < SAME_TOL);
            case_free(&c);
        }
}

/* 'same' with an even kernel puts the odd padding pixel at the bottom/right:
 * ones * ones over a 3 x 3 image with a 2 x 2 kernel. */
static void test_same_padding_literal(void)
{
    dpt_conv_geom g;
    CU_ASSERT_EQUAL_FATAL(dpt_conv_geom_init(&g, 1, 3, 3, 1, 2, 2, 1, 1, DPT_PAD_SAME), DPT_OK);
    dpt_real x[9], w[4], b[1] = {0}, out[9], cols[4 * 9 + 4 * 4]; /* + the padded 4 x 4 image */
    CU_ASSERT_EQUAL_FATAL(dpt_conv_work_size(&g), 4 * 9 + 4 * 4);
    fill_const(x, 9, 1);
    fill_const(w, 4, 1);
    dpt_conv2d_forward(out, cols, x, w, b, 1, &g);
    const dpt_real expect[9] = {4, 4, 2, 4, 4, 2, 2, 2, 1};
    CU_ASSERT(max_abs_diff(out, expect, 9) == 0);
}

/* <im2col(x), y> = <x, col2im(y)>, and col2im writes over what is there. */
static void test_im2col_adjoint(void)
{
    for (int i = 0; i < N_CONV_SPECS; i++) {
        conv_case c;
        case_init(&c, &conv_specs[i], 1, -1, 300 + i);
        size_t n = (size_t)dpt_conv_rows(&c.g) * dpt_conv_cols(&c.g);
        dpt_real *back = alloc_real(c.nx);
        fill_uniform(c.dcols, n, -1, 1, 400 + i);
        dpt_im2col(c.cols, c.x, &c.g);
        fill_const(back, c.nx, NAN);
        dpt_col2im(back, c.dcols, &c.g);
        double lhs = dot(c.cols, c.dcols, n), rhs = dot(c.x, back, c.nx);
        CU_ASSERT(fabs(lhs - rhs) < SAME_TOL * fmax(1, fabs(lhs)));
        free(back);
        case_free(&c);
    }
}

/* ---------------------------------------------------------------- conv gradients */

static void check_conv_gradients(const geom_spec *s, int B, int tiles, uint64_t seed)
{
    conv_case c;
    case_init(&c, s, B, tiles, seed);
    dpt_real *dx = alloc_real(c.nx), *dw = alloc_real(c.nw), *db = alloc_real(c.nb);
    fill_const(dx, c.nx, 7);     /* must be overwritten */
    fill_const(dw, c.nw, 0.5);   /* must be accumulated into */
    fill_const(db, c.nb, -0.25);
    case_backward(&c, dx, dw, db);
    double ew = fd_worst(c.w, c.nw, dw, 0.5, case_objective, &c);
    double eb = fd_worst(c.b, c.nb, db, -0.25, case_objective, &c);
    double ex = fd_worst(c.x, c.nx, dx, 0, case_objective, &c);
    if (ew >= MAX_REL_ERR || eb >= MAX_REL_ERR || ex >= MAX_REL_ERR)
        printf("\n  tiles %d, %dx%d k%dx%d s%d d%d pad %d: dw %.3g db %.3g dx %.3g\n", tiles,
               s->in_h, s->in_w, s->kh, s->kw, s->stride, s->dilation, (int)s->pad, ew, eb, ex);
    CU_ASSERT(ew < MAX_REL_ERR);
    CU_ASSERT(eb < MAX_REL_ERR);
    CU_ASSERT(ex < MAX_REL_ERR);
    free(dx);
    free(dw);
    free(db);
    case_free(&c);
}

static void test_conv_gradients(void)
{
    for (int i = 0; i < N_CONV_SPECS; i++) check_conv_gradients(&conv_specs[i], 2, -1, 500 + 10 * i);
}

static void test_locally_connected_gradients(void)
{
    const geom_spec same = {2, 5, 5, 2, 3, 3, 1, 1, DPT_PAD_SAME};
    const geom_spec strided = {2, 7, 6, 2, 3, 2, 2, 1, DPT_PAD_VALID};
    const geom_spec dilated = {1, 6, 6, 2, 2, 2, 1, 2, DPT_PAD_FULL};
    check_conv_gradients(&same, 2, 0, 600);
    check_conv_gradients(&strided, 2, 0, 610);
    check_conv_gradients(&dilated, 2, 0, 620);
}

static void test_tiled_gradients(void)
{
    /* outputs 5 x 5 (t = 2) and 5 x 4, 4 x 4 (t = 3): not multiples of t */
    const geom_spec a = {2, 5, 5, 2, 3, 3, 1, 1, DPT_PAD_SAME};
    const geom_spec b = {2, 5, 4, 3, 3, 2, 1, 1, DPT_PAD_SAME};
    const geom_spec c = {1, 8, 8, 2, 2, 2, 2, 2, DPT_PAD_FULL};
    check_conv_gradients(&a, 2, 2, 700);
    check_conv_gradients(&a, 2, 3, 710);
    check_conv_gradients(&b, 2, 3, 720);
    check_conv_gradients(&c, 2, 3, 730);
    check_conv_gradients(&b, 2, 2, 740);
}

/* ---------------------------------------------------------------- unshared vs conv2d */

/* Forward and backward of two layers on the same x and dout agree; the
 * unshared weight gradients are first summed over the kernel sets (all
 * sets hold the same kernel, so conv2d's gradient is their sum). */
static void check_same_as_conv(conv_case *conv, conv_case *un)
{
    size_t nw = conv->nw, nb = conv->nb, sets = un->nb / nb;
    case_forward(conv, conv->out);
    case_forward(un, un->out);
    CU_ASSERT(max_abs_diff(conv->out, un->out, conv->nout) < SAME_TOL);
    dpt_real *dx1 = alloc_real(conv->nx), *dx2 = alloc_real(conv->nx);
    dpt_real *dw1 = alloc_real(nw), *db1 = alloc_real(nb), *dw2 = alloc_real(un->nw),
             *db2 = alloc_real(un->nb);
    case_backward(conv, dx1, dw1, db1);
    case_backward(un, dx2, dw2, db2);
    CU_ASSERT(max_abs_diff(dx1, dx2, conv->nx) < SAME_TOL);
    for (size_t s = 1; s < sets; s++) {
        for (size_t k = 0; k < nw; k++) dw2[k] += dw2[s * nw + k];
        for (size_t k = 0; k < nb; k++) db2[k] += db2[s * nb + k];
    }
    CU_ASSERT(max_abs_diff(dw1, dw2, nw) < SAME_TOL * (double)sets);
    CU_ASSERT(max_abs_diff(db1, db2, nb) < SAME_TOL * (double)sets);
    /* no input gradient wanted (a first layer): parameters still accumulate */
    fill_const(dw2, nw, 0);
    fill_const(db2, nb, 0);
    case_backward(conv, NULL, dw2, db2);
    CU_ASSERT(max_abs_diff(dw1, dw2, nw) < SAME_TOL);
    free(dx1);
    free(dx2);
    free(dw1);
    free(db1);
    free(dw2);
    free(db2);
}

static void test_tiled_one_is_conv(void)
{
    for (int i = 0; i < N_CONV_SPECS; i++) {
        conv_case conv, un;
        case_init(&conv, &conv_specs[i], 2, -1, 800 + i);
        case_init(&un, &conv_specs[i], 2, 1, 800 + i); /* same seeds: same x, w, b, r */
        CU_ASSERT_EQUAL(dpt_unshared_sets(&un.g, 1), 1);
        check_same_as_conv(&conv, &un);
        case_free(&conv);
        case_free(&un);
    }
}

static void test_local_same_kernel_is_conv(void)
{
    for (int i = 0; i < N_CONV_SPECS; i++) {
        conv_case conv, un;
        case_init(&conv, &conv_specs[i], 2, -1, 900 + i);
        case_init(&un, &conv_specs[i], 2, 0, 900 + i);
        size_t sets = (size_t)dpt_unshared_sets(&un.g, 0);
        CU_ASSERT_EQUAL(sets, (size_t)dpt_conv_cols(&un.g));
        for (size_t s = 0; s < sets; s++) {
            memcpy(un.w + s * conv.nw, conv.w, sizeof(dpt_real) * conv.nw);
            memcpy(un.b + s * conv.nb, conv.b, sizeof(dpt_real) * conv.nb);
        }
        check_same_as_conv(&conv, &un);
        case_free(&conv);
        case_free(&un);
    }
}

/* ---------------------------------------------------------------- translation */

/* dst[c][y][x] = src[c][y - dy][x - dx], zero where that is outside. */
static void shift_image(dpt_real *dst, const dpt_real *src, int C, int H, int W, int dy, int dx)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y - dy, sx = x - dx;
                int inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                dst[((size_t)c * H + y) * W + x] = inside ? src[((size_t)c * H + sy) * W + sx] : 0;
            }
}

/* Largest |b[c][y][x] - a[c][y - dy][x - dx]| over positions at least
 * `margin` from every border. */
static double shifted_diff(const dpt_real *a, const dpt_real *b, int C, int H, int W, int dy,
                           int dx, int margin)
{
    double worst = 0;
    int checked = 0;
    for (int c = 0; c < C; c++)
        for (int y = margin; y < H - margin; y++)
            for (int x = margin; x < W - margin; x++, checked++) {
                double va = a[((size_t)c * H + y - dy) * W + x - dx];
                worst = fmax(worst, fabs(b[((size_t)c * H + y) * W + x] - va));
            }
    CU_ASSERT(checked > 0);
    return worst;
}

/* Output of the layer on x shifted by (dy, dx) compared with the shifted
 * output, in the interior; also returns (via moved) the interior difference
 * without undoing the shift, to show the outputs are not trivially equal. */
static double shift_response(conv_case *c, int dy, int dx, int radius, double *moved)
{
    const dpt_conv_geom *g = &c->g;
    dpt_real *x0 = alloc_real(c->nx), *out0 = alloc_real(c->nout);
    memcpy(x0, c->x, sizeof(dpt_real) * c->nx);
    case_forward(c, out0);
    shift_image(c->x, x0, g->in_c, g->in_h, g->in_w, dy, dx);
    case_forward(c, c->out);
    int margin = radius + (abs(dy) > abs(dx) ? abs(dy) : abs(dx));
    double d = shifted_diff(out0, c->out, g->out_c, g->out_h, g->out_w, dy, dx, margin);
    *moved = shifted_diff(out0, c->out, g->out_c, g->out_h, g->out_w, 0, 0, margin);
    memcpy(c->x, x0, sizeof(dpt_real) * c->nx);
    free(x0);
    free(out0);
    return d;
}

static void test_conv_equivariance(void)
{
    static const int shifts[][2] = {{1, 2}, {-2, 1}, {0, -1}, {3, 0}};
    const geom_spec square = {2, 12, 12, 3, 3, 3, 1, 1, DPT_PAD_SAME};
    const geom_spec tall = {2, 13, 11, 2, 5, 3, 1, 1, DPT_PAD_SAME};
    for (int k = 0; k < 4; k++) {
        conv_case a, b;
        double moved;
        case_init(&a, &square, 1, -1, 1000 + k);
        case_init(&b, &tall, 1, -1, 1010 + k);
        CU_ASSERT(shift_response(&a, shifts[k][0], shifts[k][1], 1, &moved) < SAME_TOL);
        CU_ASSERT(moved > 0.1);
        CU_ASSERT(shift_response(&b, shifts[k][0], shifts[k][1], 2, &moved) < SAME_TOL);
        CU_ASSERT(moved > 0.1);
        case_free(&a);
        case_free(&b);
    }
}

/* Different kernels at different positions: a shifted input meets other
 * kernels, so the output does not simply shift along. */
static void test_local_not_equivariant(void)
{
    static const int shifts[][2] = {{1, 2}, {-2, 1}, {0, -1}, {3, 0}};
    const geom_spec square = {2, 12, 12, 3, 3, 3, 1, 1, DPT_PAD_SAME};
    for (int k = 0; k < 4; k++) {
        conv_case c;
        double moved;
        case_init(&c, &square, 1, 0, 1100 + k);
        double d = shift_response(&c, shifts[k][0], shifts[k][1], 1, &moved);
        CU_ASSERT(d > 0.1);
        case_free(&c);
    }
}

/* ---------------------------------------------------------------- parameter counts */

static void test_parameter_counts(void)
{
    dpt_conv_geom g;
    CU_ASSERT_EQUAL_FATAL(dpt_conv_geom_init(&g, 1, 28, 28, 32, 3, 3, 1, 1, DPT_PAD_SAME), DPT_OK);
    long rows = dpt_conv_rows(&g), filters = g.out_c;
    CU_ASSERT_EQUAL(dpt_conv_cols(&g), 784);
    CU_ASSERT_EQUAL(filters * rows + filters, 32 * 9 + 32);
    long local = dpt_unshared_sets(&g, 0);
    CU_ASSERT_EQUAL(local * filters * rows, 784L * (32 * 9));
    CU_ASSERT_EQUAL(local * filters, 784L * 32);
    long tiled = dpt_unshared_sets(&g, 2);
    CU_ASSERT_EQUAL(tiled * filters * rows + tiled * filters, 4 * 32 * 9 + 4 * 32);
    CU_ASSERT_EQUAL(dpt_unshared_sets(&g, 1), 1);
    CU_ASSERT_EQUAL(dpt_unshared_sets(&g, 3), 9);
}

/* ---------------------------------------------------------------- pooling */

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_GAP } pool_kind;

typedef struct pool_case {
    dpt_pool_geom g;
    int B;
    pool_kind kind;
    size_t nx, nout;
    dpt_real *x, *r, *out;
    int32_t *argmax;
} pool_case;

/* Input values: max pooling gets distinct values MAX_SPACING apart in
 * random order, so that no perturbation changes which element is a
 * window's maximum; the others get uniform noise. */
static void pool_fill_input(pool_case *p, uint64_t seed)
{
    if (p->kind != POOL_MAX) {
        fill_uniform(p->x, p->nx, -1, 1, seed);
        return;
    }
    uint32_t *perm = malloc(sizeof(uint32_t) * p->nx);
    CU_ASSERT_FATAL(perm != NULL);
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_TEST, 0, 0);
    dpt_rng_permutation(&rng, perm, (uint32_t)p->nx);
    for (size_t i = 0; i < p->nx; i++)
        p->x[i] = (dpt_real)(MAX_SPACING * ((double)perm[i] - p->nx / 2.0));
    free(perm);
}

static void pool_init(pool_case *p, pool_kind kind, int B, int c, int h, int w, int kh, int kw,
                      int stride, uint64_t seed)
{
    CU_ASSERT_EQUAL_FATAL(dpt_pool_geom_init(&p->g, c, h, w, kh, kw, stride), DPT_OK);
    p->B = B;
    p->kind = kind;
    p->nx = (size_t)B * c * h * w;
    p->nout = kind == POOL_GAP ? (size_t)B * c : (size_t)B * c * p->g.out_h * p->g.out_w;
    p->x = alloc_real(p->nx);
    p->r = alloc_real(p->nout);
    p->out = alloc_real(p->nout);
    p->argmax = calloc(p->nout, sizeof(int32_t));
    CU_ASSERT_FATAL(p->argmax != NULL);
    pool_fill_input(p, seed);
    fill_uniform(p->r, p->nout, -1, 1, seed + 1);
}

static void pool_free(pool_case *p)
{
    free(p->x);
    free(p->r);
    free(p->out);
    free(p->argmax);
}

static void pool_forward(pool_case *p)
{
    int hw = p->g.in_h * p->g.in_w;
    if (p->kind == POOL_MAX) dpt_maxpool_forward(p->out, p->argmax, p->x, p->B, &p->g);
    if (p->kind == POOL_AVG) dpt_avgpool_forward(p->out, p->x, p->B, &p->g);
    if (p->kind == POOL_GAP) dpt_gap_forward(p->out, p->x, p->B, p->g.c, hw);
}

static double pool_objective(void *ctx)
{
    pool_case *p = ctx;
    pool_forward(p);
    return dot(p->r, p->out, p->nout);
}

static void check_pool_gradient(pool_kind kind, int c, int h, int w, int kh, int kw, int stride,
                                uint64_t seed)
{
    pool_case p;
    pool_init(&p, kind, 2, c, h, w, kh, kw, stride, seed);
    dpt_real *dx = alloc_real(p.nx);
    fill_const(dx, p.nx, 7); /* must be overwritten */
    pool_forward(&p);        /* max pooling's backward needs the argmax */
    int hw = h * w;
    if (kind == POOL_MAX) dpt_maxpool_backward(dx, p.r, p.argmax, p.B, &p.g);
    if (kind == POOL_AVG) dpt_avgpool_backward(dx, p.r, p.B, &p.g);
    if (kind == POOL_GAP) dpt_gap_backward(dx, p.r, p.B, c, hw);
    double worst = fd_worst(p.x, p.nx, dx, 0, pool_objective, &p);
    if (worst >= MAX_REL_ERR)
        printf("\n  pool %d %dx%d k%dx%d s%d: max rel err %.3g\n", (int)kind, h, w, kh, kw,
               stride, worst);
    CU_ASSERT(worst < MAX_REL_ERR);
    free(dx);
    pool_free(&p);
}

static void test_pool_gradients(void)
{
    check_pool_gradient(POOL_MAX, 2, 6, 6, 2, 2, 2, 1200);
    check_pool_gradient(POOL_MAX, 2, 7, 6, 3, 2, 1, 1210); /* overlapping windows */
    check_pool_gradient(POOL_MAX, 1, 9, 8, 3, 3, 2, 1220);
    check_pool_gradient(POOL_AVG, 2, 6, 6, 2, 2, 2, 1230);
    check_pool_gradient(POOL_AVG, 2, 7, 6, 3, 2, 1, 1240); /* overlapping windows */
    check_pool_gradient(POOL_AVG, 1, 9, 8, 3, 3, 2, 1250);
    check_pool_gradient(POOL_GAP, 3, 5, 4, 1, 1, 1, 1260);
}

static void test_pool_values(void)
{
    dpt_pool_geom g;
    dpt_real x[16], out[4], dx[16];
    int32_t arg[4];
    for (int i = 0; i < 16; i++) x[i] = (dpt_real)i;
    CU_ASSERT_EQUAL_FATAL(dpt_pool_geom_init(&g, 1, 4, 4, 2, 2, 2), DPT_OK);
    dpt_maxpool_forward(out, arg, x, 1, &g);
    const dpt_real max4[4] = {5, 7, 13, 15}, avg4[4] = {2.5, 4.5, 10.5, 12.5};
    CU_ASSERT(max_abs_diff(out, max4, 4) == 0);
    CU_ASSERT(arg[0] == 5 && arg[1] == 7 && arg[2] == 13 && arg[3] == 15);
    dpt_avgpool_forward(out, x, 1, &g);
    CU_ASSERT(max_abs_diff(out, avg4, 4) < SAME_TOL);
    /* overlapping 2 x 2 windows, stride 1, on a 3 x 3 image */
    CU_ASSERT_EQUAL_FATAL(dpt_pool_geom_init(&g, 1, 3, 3, 2, 2, 1), DPT_OK);
    const dpt_real max3[4] = {4, 5, 7, 8}, avg3[4] = {2, 3, 5, 6}, ones[4] = {1, 1, 1, 1};
    dpt_maxpool_forward(out, arg, x, 1, &g);
    CU_ASSERT(max_abs_diff(out, max3, 4) == 0);
    dpt_avgpool_forward(out, x, 1, &g);
    CU_ASSERT(max_abs_diff(out, avg3, 4) < SAME_TOL);
    /* the centre pixel is in all four windows: its gradient is 4 x 1/4 */
    dpt_avgpool_backward(dx, ones, 1, &g);
    CU_ASSERT_DOUBLE_EQUAL(dx[4], 1.0, SAME_TOL);
    CU_ASSERT_DOUBLE_EQUAL(dx[0], 0.25, SAME_TOL);
    /* ties: the first maximum in row-major window order */
    fill_const(x, 9, 3);
    dpt_maxpool_forward(out, arg, x, 1, &g);
    CU_ASSERT(arg[0] == 0 && arg[1] == 1 && arg[2] == 3 && arg[3] == 4);
    dpt_maxpool_backward(dx, ones, arg, 1, &g);
    CU_ASSERT(dx[4] == 1 && dx[0] == 1 && dx[8] == 0);
    /* global average pooling: two planes of 0..7 and 8..15 */
    for (int i = 0; i < 16; i++) x[i] = (dpt_real)i;
    dpt_gap_forward(out, x, 1, 2, 8);
    CU_ASSERT_DOUBLE_EQUAL(out[0], 3.5, SAME_TOL);
    CU_ASSERT_DOUBLE_EQUAL(out[1], 11.5, SAME_TOL);
}

/* Max and average of the window at (oy, ox) of one plane, by definition;
 * *first = the row-major index of its first maximum. */
static void naive_window(const dpt_real *plane, const dpt_pool_geom *g, int oy, int ox,
                         double *max, double *mean, int *first)
{
    double sum = 0;
    *max = -INFINITY;
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++) {
            int at = (oy * g->stride + i) * g->in_w + ox * g->stride + j;
            sum += plane[at];
            if (plane[at] > *max) {
                *max = plane[at];
                *first = at;
            }
        }
    *mean = sum / (g->kh * g->kw);
}

/* Max, average and global average pooling of random (rounded, so that ties
 * occur) inputs against the definitions. */
static void check_pool_naive(int c, int h, int w, int kh, int kw, int stride, uint64_t seed)
{
    pool_case p;
    pool_init(&p, POOL_AVG, 2, c, h, w, kh, kw, stride, seed);
    for (size_t i = 0; i < p.nx; i++) p.x[i] = (dpt_real)round(4 * p.x[i]);
    dpt_real *avg = alloc_real(p.nout), *gap = alloc_real((size_t)2 * c);
    dpt_maxpool_forward(p.out, p.argmax, p.x, 2, &p.g);
    dpt_avgpool_forward(avg, p.x, 2, &p.g);
    dpt_gap_forward(gap, p.x, 2, c, h * w);
    size_t plane = (size_t)h * w, o = 0;
    for (int q = 0; q < 2 * c; q++) {
        double max, mean, total = 0;
        int first = -1;
        for (size_t i = 0; i < plane; i++) total += p.x[q * plane + i];
        CU_ASSERT_DOUBLE_EQUAL(gap[q], total / plane, SAME_TOL);
        for (int oy = 0; oy < p.g.out_h; oy++)
            for (int ox = 0; ox < p.g.out_w; ox++, o++) {
                naive_window(p.x + q * plane, &p.g, oy, ox, &max, &mean, &first);
                CU_ASSERT(p.out[o] == max && p.argmax[o] == first);
                CU_ASSERT_DOUBLE_EQUAL(avg[o], mean, SAME_TOL);
            }
    }
    /* max pooling's input gradient: zero, plus each output's gradient at its
     * window's first maximum, bit for bit (the sign of zeros included) */
    dpt_real *dout = alloc_real(p.nout), *dx = alloc_real(p.nx), *want = alloc_real(p.nx);
    for (size_t i = 0; i < p.nout; i++) dout[i] = (dpt_real)((int)(i % 7) - 3) * (dpt_real)0.5 - (dpt_real)0.0;
    for (size_t i = 0; i < p.nout; i += 5) dout[i] = (dpt_real)-0.0;
    memset(want, 0, sizeof(dpt_real) * p.nx);
    o = 0;
    for (int q = 0; q < 2 * c; q++)
        for (int oy = 0; oy < p.g.out_h; oy++)
            for (int ox = 0; ox < p.g.out_w; ox++, o++) {
                double max, mean;
                int first = -1;
                naive_window(p.x + q * plane, &p.g, oy, ox, &max, &mean, &first);
                want[q * plane + (size_t)first] += dout[o];
            }
    for (size_t i = 0; i < p.nx; i++) dx[i] = (dpt_real)7; /* stale values must go */
    dpt_maxpool_backward(dx, dout, p.argmax, 2, &p.g);
    CU_ASSERT(memcmp(dx, want, sizeof(dpt_real) * p.nx) == 0);
    free(dout), free(dx), free(want);
    free(avg);
    free(gap);
    pool_free(&p);
}

static void test_pool_forward_naive(void)
{
    check_pool_naive(2, 6, 6, 2, 2, 2, 1400);
    check_pool_naive(2, 7, 6, 3, 2, 1, 1410); /* overlapping windows */
    check_pool_naive(1, 9, 8, 3, 3, 2, 1420); /* overlapping, last column unused */
    check_pool_naive(3, 5, 7, 1, 3, 3, 1430);
    check_pool_naive(3, 7, 9, 2, 2, 2, 1440); /* 2 x 2: last row and column unused */
    check_pool_naive(2, 6, 5, 2, 2, 1, 1450); /* 2 x 2, overlapping */
    check_pool_naive(2, 4, 28, 2, 2, 2, 1460); /* rows of 14: eight, then eight overlapping */
    check_pool_naive(1, 5, 35, 2, 2, 2, 1470); /* rows of 17, last row and column unused */
    check_pool_naive(1, 4, 16, 2, 2, 2, 1480); /* rows of exactly eight */
}

/* Isolated peaks at the centres of 3 x 3 windows (stride 3) over a lower
 * background: a one-pixel shift keeps every peak in its window, so the
 * max-pooled output is unchanged; a two-pixel shift moves peaks out. */
static void test_maxpool_shift_invariance(void)
{
    static const int shifts[][2] = {{1, 0}, {0, -1}, {1, 1}, {-1, 1}, {2, 0}, {0, -2}};
    enum { C = 2, H = 9, W = 9 };
    dpt_pool_geom g;
    CU_ASSERT_EQUAL_FATAL(dpt_pool_geom_init(&g, C, H, W, 3, 3, 3), DPT_OK);
    dpt_real x[C * H * W], xs[C * H * W], out0[C * 9], out1[C * 9];
    int32_t arg0[C * 9], arg1[C * 9];
    fill_uniform(x, C * H * W, 0, 0.5, 1300);
    fill_uniform(out1, C * 9, 1, 2, 1301); /* peak heights */
    for (int c = 0; c < C; c++)
        for (int q = 0; q < 9; q++)
            x[(c * H + 3 * (q / 3) + 1) * W + 3 * (q % 3) + 1] = out1[c * 9 + q];
    dpt_maxpool_forward(out0, arg0, x, 1, &g);
    for (int k = 0; k < 6; k++) {
        int dy = shifts[k][0], dx = shifts[k][1];
        shift_image(xs, x, C, H, W, dy, dx);
        dpt_maxpool_forward(out1, arg1, xs, 1, &g);
        double d = max_abs_diff(out0, out1, C * 9);
        if (abs(dy) <= 1 && abs(dx) <= 1) {
            CU_ASSERT(d == 0);
            for (int q = 0; q < C * 9; q++) CU_ASSERT_EQUAL(arg1[q], arg0[q] + dy * W + dx);
        } else {
            CU_ASSERT(d > 0.4); /* the peaks left their windows */
        }
    }
}

int main(void)
{
    static const dpt_test tests[] = {
        {"geometry against the formulas", test_geometry_formulas},
        {"geometry worked examples", test_geometry_literals},
        {"geometry errors", test_geometry_errors},
        {"same padding: odd pixel at bottom/right", test_same_padding_literal},
        {"col2im is the adjoint of im2col", test_im2col_adjoint},
        {"conv2d forward vs direct loops", test_conv_forward_naive},
        {"unshared forward vs direct loops", test_unshared_forward_naive},
        {"conv2d vs finite differences", test_conv_gradients},
        {"locally connected vs finite differences", test_locally_connected_gradients},
        {"tiled vs finite differences", test_tiled_gradients},
        {"tiled with t = 1 is conv2d", test_tiled_one_is_conv},
        {"locally connected with one kernel is conv2d", test_local_same_kernel_is_conv},
        {"conv2d is translation equivariant", test_conv_equivariance},
        {"locally connected is not equivariant", test_local_not_equivariant},
        {"parameter counts", test_parameter_counts},
        {"pooling values", test_pool_values},
        {"pooling forward vs direct loops", test_pool_forward_naive},
        {"pooling vs finite differences", test_pool_gradients},
        {"max pooling absorbs a one-pixel shift", test_maxpool_shift_invariance},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("conv", tests), CU_BRM_VERBOSE);
}
