/* The model as a whole: the layer-list grammar, gradient checks of complete
 * models (CNN with every smooth layer kind, batch norm in training mode,
 * dropout with a fixed mask, multi-task heads with weights and label maps)
 * against central finite differences, initialization, and the parameter
 * counts that show what sharing saves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_util.h"
#include "fd_util.h"
#include "dpt/model.h"
#include "dpt/rng.h"

#ifdef DPT_DOUBLE
#define FD_STEP 1e-5
#define MAX_REL_ERR 1e-6
#define REL_FLOOR 1e-4
#else
/* float passes through batch norm and a dozen layers: the difference
 * quotient is good to ~10% only; gross errors (a missing term, a wrong
 * sign) still show as O(1). The double build is the real check. */
#define FD_STEP 1e-3
#define MAX_REL_ERR 0.25
#define REL_FLOOR 1e-2
#endif

static void parse_list(const char *text, dpt_layer_spec *layers, int *n)
{
    char why[256];
    dpt_status st = dpt_layer_list_parse(text, layers, DPT_MAX_LAYERS, n, why, sizeof why);
    if (st != DPT_OK) printf("\n  parse '%s': %s\n", text, why);
    CU_ASSERT_FATAL(st == DPT_OK);
}

/* A spec with a trunk and optional heads given as layer lists. */
static void make_spec(dpt_model_spec *spec, const char *trunk, dpt_loss_kind loss)
{
    memset(spec, 0, sizeof *spec);
    spec->bn_sync = 1;
    spec->loss = loss;
    parse_list(trunk, spec->trunk, &spec->n_trunk);
}

static void add_head(dpt_model_spec *spec, const char *name, const char *layers,
                     dpt_loss_kind loss, double weight)
{
    dpt_head_spec *h = &spec->heads[spec->n_heads++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    parse_list(layers, h->layers, &h->n_layers);
    h->loss = loss;
    h->weight = weight;
}

/* ---------------------------------------------------------------- grammar */

static void test_grammar(void)
{
    dpt_layer_spec l[DPT_MAX_LAYERS];
    int n;
    parse_list("conv 32 3 pad=same relu, batchnorm sync=false, maxpool 2, tiled 8 3x2 tiles=3 "
               "stride=2 dilation=2 init=orthogonal:2, local 4 5 pad=full, gap, flatten, "
               "dropout 0.5, 10 tanh init=sparse:3 bias=prior", l, &n);
    CU_ASSERT_EQUAL_FATAL(n, 11);
    CU_ASSERT(l[0].kind == DPT_LAYER_CONV2D && l[0].units == 32 && l[0].kh == 3 && l[0].kw == 3);
    CU_ASSERT(l[0].pad == DPT_PAD_SAME);
    CU_ASSERT(l[1].kind == DPT_LAYER_ACTIVATION && l[1].act == DPT_ACT_RELU);
    CU_ASSERT(l[2].kind == DPT_LAYER_BATCHNORM && l[2].sync == 0);
    CU_ASSERT(l[3].kind == DPT_LAYER_MAXPOOL && l[3].stride == 2);
    CU_ASSERT(l[4].kind == DPT_LAYER_TILED && l[4].tiles == 3 && l[4].kh == 3 && l[4].kw == 2);
    CU_ASSERT(l[4].stride == 2 && l[4].dilation == 2 && l[4].init.kind == DPT_INIT_ORTHOGONAL);
    CU_ASSERT_DOUBLE_EQUAL(l[4].init.value, 2, 0);
    CU_ASSERT(l[5].kind == DPT_LAYER_LOCAL && l[5].pad == DPT_PAD_FULL);
    CU_ASSERT(l[8].kind == DPT_LAYER_DROPOUT && l[8].keep == 0.5);
    CU_ASSERT(l[9].kind == DPT_LAYER_DENSE && l[9].bias_prior && l[9].init.kind == DPT_INIT_SPARSE);
    CU_ASSERT(l[10].kind == DPT_LAYER_ACTIVATION && l[10].act == DPT_ACT_TANH);
    /* written back and read again: the same specs */
    char text[1024];
    dpt_layer_list_format(l, n, text, sizeof text);
    dpt_layer_spec again[DPT_MAX_LAYERS];
    int m;
    parse_list(text, again, &m);
    CU_ASSERT_EQUAL_FATAL(m, n);
    char text2[1024];
    dpt_layer_list_format(again, m, text2, sizeof text2);
    CU_ASSERT_STRING_EQUAL(text, text2);
}

static void expect_bad(const char *text, const char *needle)
{
    dpt_layer_spec l[DPT_MAX_LAYERS];
    int n;
    char why[256] = "";
    CU_ASSERT(dpt_layer_list_parse(text, l, DPT_MAX_LAYERS, &n, why, sizeof why) == DPT_ERR_CONFIG);
    if (!strstr(why, needle)) printf("\n  '%s' -> '%s' lacks '%s'\n", text, why, needle);
    CU_ASSERT(strstr(why, needle) != NULL);
}

static void test_grammar_errors(void)
{
    expect_bad("convv 3 3", "layer 1: unknown layer 'convv'");
    expect_bad("10, conv 3", "layer 2: 'conv' needs a kernel size");
    expect_bad("conv 3 3 pad=middle", "pad 'middle'");
    expect_bad("dropout 0", "keep probability '0'");
    expect_bad("dropout 1.5", "keep probability");
    expect_bad("10,, 5", "layer 2: is empty");
    expect_bad("dense 10 colour=red", "unknown option 'colour'");
    expect_bad("maxpool", "needs a window size");
    expect_bad("relu 3", "takes no arguments");
    expect_bad("conv 0 3", "units '0'");
}

/* ---------------------------------------------------------------- gradient checks */

static double rel_err(double a, double n) { return dpt_fd_rel_err(a, n, REL_FLOOR); }

static void fill_uniform(dpt_real *x, size_t n, double lo, double hi, uint64_t seed)
{
    dpt_fd_fill_uniform(x, n, lo, hi, seed);
}

/* Training-mode pass with a fixed dropout mask (same pass number every time). */
static double total_loss(dpt_model *m, const dpt_real *x, const uint8_t *y, int B, int backward)
{
    dpt_forward_ctx ctx = {.batch_stats = 1, .dropout = 1, .seed = 3, .pass = 7};
    dpt_batch_metrics metrics;
    memset(&metrics, 0, sizeof metrics);
    if (backward) dpt_model_forward_backward(m, x, y, B, &ctx, &metrics);
    else dpt_model_forward(m, x, y, B, &ctx, &metrics);
    return metrics.total;
}

static double model_fd_error(const dpt_model_spec *spec, dpt_shape input, int B)
{
    dpt_model m;
    CU_ASSERT_FATAL(dpt_model_create(&m, input, spec, B) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_init_params(&m, 11, NULL) == DPT_OK);
    /* move batch-norm scales and all biases off their initial values */
    for (size_t p = 0; p < m.n_params; p++) m.params[p] += (dpt_real)(0.05 * sin(3.0 * p));
    size_t n_in = (size_t)B * dpt_shape_size(input);
    dpt_real *x = malloc(sizeof(dpt_real) * n_in);
    uint8_t y[16];
    fill_uniform(x, n_in, -1, 1, 5);
    for (int i = 0; i < B; i++) y[i] = (uint8_t)(i % 4);
    memset(m.grads, 0, sizeof(dpt_real) * m.n_params);
    total_loss(&m, x, y, B, 1);
    double worst = 0;
    for (size_t p = 0; p < m.n_params; p++) {
        dpt_real keep = m.params[p];
        m.params[p] = keep + (dpt_real)FD_STEP;
        double plus = total_loss(&m, x, y, B, 0);
        m.params[p] = keep - (dpt_real)FD_STEP;
        double minus = total_loss(&m, x, y, B, 0);
        m.params[p] = keep;
        worst = fmax(worst, rel_err(m.grads[p], (plus - minus) / (2 * FD_STEP)));
    }
    free(x);
    dpt_model_destroy(&m);
    return worst;
}

static void check_fd(const dpt_model_spec *spec, dpt_shape input, int B, const char *what)
{
    double worst = model_fd_error(spec, input, B);
    printf("\n  %s: max rel err %.3g", what, worst);
    CU_ASSERT(worst < MAX_REL_ERR);
}

static void test_fd_mlp(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "6 tanh, 5 sigmoid, 4", DPT_LOSS_SOFTMAX_XENT);
    check_fd(&spec, (dpt_shape){7, 1, 1}, 5, "MLP, softmax cross-entropy");
    spec.loss = DPT_LOSS_MSE;
    check_fd(&spec, (dpt_shape){7, 1, 1}, 5, "MLP, mse");
}

static void test_fd_cnn(void)
{
    dpt_model_spec spec;
    /* two models rather than one deep one: through two batch norms the
     * gradients of the first layers shrink to where double rounding in the
     * difference quotient (~1e-11 / 1e-5) reaches the 1e-6 bound */
    make_spec(&spec, "conv 3 3 pad=same, batchnorm, tanh, avgpool 2 stride=1, "
                     "conv 4 2 stride=2 dilation=2 pad=full, sigmoid, tiled 3 2 tiles=2, tanh, "
                     "local 2 2, gap, 4",
              DPT_LOSS_SOFTMAX_XENT);
    check_fd(&spec, (dpt_shape){2, 7, 6}, 4, "CNN: conv, batch norm (training), avgpool, dilation, "
                                             "full padding, tiled, local, gap");
    make_spec(&spec, "conv 3 3 pad=same, tanh, flatten, dense 6, batchnorm, tanh, dropout 0.7, 4",
              DPT_LOSS_SOFTMAX_XENT);
    check_fd(&spec, (dpt_shape){2, 7, 6}, 4, "CNN: dense batch norm (training), dropout (fixed mask)");
}

static void test_fd_multitask(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "conv 2 3 pad=same, tanh, flatten, 8, tanh", DPT_LOSS_SOFTMAX_XENT);
    add_head(&spec, "classes", "5, tanh, 4", DPT_LOSS_SOFTMAX_XENT, 1.0);
    add_head(&spec, "binary", "1", DPT_LOSS_SIGMOID_BCE, 0.5);
    add_head(&spec, "squares", "3", DPT_LOSS_MSE, 2.0);
    dpt_head_spec *b = &spec.heads[1], *s = &spec.heads[2];
    b->has_map = s->has_map = 1;
    for (int y = 0; y < DPT_LABELS; y++) b->map[y] = (int16_t)(y % 2), s->map[y] = (int16_t)(y % 3);
    check_fd(&spec, (dpt_shape){1, 5, 5}, 6, "multi-task: 3 heads, weights 1, 0.5, 2, label maps");
}

/* Batch norm + ReLU (+ max pooling) run fused in training mode
 * (src/nn/forward.c): the same loss, gradients, running statistics and
 * outputs bit for bit as the layers one by one, in the trunk (pooling
 * windows that overlap, 3 x 3 at stride 2, and 2 x 2 ones that tile the
 * plane) and in a head, with a ReLU the last layer of the trunk not fused
 * across into the head; the fused batch norm leaves its own output buffer
 * unwritten, and a fused pooling the ReLU's (so the fusions did happen). */
static void test_bn_relu_fused(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "conv 4 3 pad=same, batchnorm, relu, maxpool 3 stride=2, conv 3 3 pad=same, "
                     "batchnorm, relu, maxpool 2, flatten, 12, batchnorm, relu, dropout 0.8, 9, batchnorm",
              DPT_LOSS_SOFTMAX_XENT);
    add_head(&spec, "item", "relu, 7, batchnorm, relu, 5", DPT_LOSS_SOFTMAX_XENT, 1);
    enum { B = 5 };
    dpt_model fused, plain;
    dpt_model *ms[2] = {&fused, &plain};
    dpt_real x[B * 64];
    uint8_t y[B] = {0, 3, 4, 1, 2};
    fill_uniform(x, B * 64, -1, 1, 77);
    double loss[2];
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_FATAL(dpt_model_create(ms[k], (dpt_shape){1, 8, 8}, &spec, B) == DPT_OK);
        CU_ASSERT_FATAL(dpt_model_init_params(ms[k], 5, NULL) == DPT_OK);
        for (size_t p = 0; p < ms[k]->n_params; p++) ms[k]->params[p] += (dpt_real)(0.05 * sin(3.0 * p));
        ms[k]->unfused = k;
        for (int i = 1; i <= 2; i++) { /* the trunk's batch norm and ReLU */
            const dpt_layer *l = &ms[k]->layers[i];
            for (size_t j = 0; j < (size_t)B * dpt_shape_size(l->out); j++) ms[k]->acts[l->out_offset + j] = 12345;
        }
        memset(ms[k]->grads, 0, sizeof(dpt_real) * ms[k]->n_params);
        loss[k] = total_loss(ms[k], x, y, B, 1);
    }
    CU_ASSERT(loss[0] == loss[1]);
    CU_ASSERT(memcmp(fused.grads, plain.grads, sizeof(dpt_real) * fused.n_params) == 0);
    CU_ASSERT(memcmp(fused.state, plain.state, sizeof(dpt_real) * fused.n_state) == 0);
    CU_ASSERT(memcmp(dpt_model_head_output(&fused, 0), dpt_model_head_output(&plain, 0), sizeof(dpt_real) * B * 5) == 0);
    for (int i = 1; i <= 2; i++) {
        size_t at = fused.layers[i].out_offset;
        CU_ASSERT(fused.acts[at] == 12345 && plain.acts[at] != 12345);
    }
    dpt_model_destroy(&fused);
    dpt_model_destroy(&plain);
}

/* ---------------------------------------------------------------- structure */

static void test_heads_share_trunk(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "conv 4 3 pad=same, relu, maxpool 2, flatten", DPT_LOSS_SOFTMAX_XENT);
    add_head(&spec, "item", "10", DPT_LOSS_SOFTMAX_XENT, 1);
    add_head(&spec, "group", "3", DPT_LOSS_SOFTMAX_XENT, 1);
    dpt_model m;
    CU_ASSERT_FATAL(dpt_model_create(&m, (dpt_shape){1, 28, 28}, &spec, 2) == DPT_OK);
    CU_ASSERT_EQUAL(m.n_trunk, 4);
    CU_ASSERT_EQUAL(m.n_heads, 2);
    CU_ASSERT_EQUAL(m.heads[0].outputs, 10);
    CU_ASSERT_EQUAL(m.heads[1].outputs, 3);
    CU_ASSERT_EQUAL(m.layers[m.heads[1].first].in.c, 4 * 14 * 14);
    CU_ASSERT_EQUAL(m.n_params, (4 * 9 + 4) + (784 * 10 + 10) + (784 * 3 + 3));
    dpt_model_destroy(&m);
}

static void test_sharing_saves_parameters(void)
{
    const char *lists[] = {"conv 32 5, relu, flatten, 10", "local 32 5, relu, flatten, 10",
                           "18432, relu, 10"};
    size_t params[3];
    double flops[3];
    for (int i = 0; i < 3; i++) {
        dpt_model_spec spec;
        make_spec(&spec, lists[i], DPT_LOSS_SOFTMAX_XENT);
        dpt_model m;
        CU_ASSERT_FATAL(dpt_model_create(&m, (dpt_shape){1, 28, 28}, &spec, 1) == DPT_OK);
        params[i] = m.layers[0].n_weights + m.layers[0].n_bias;
        flops[i] = m.layers[0].flops;
        dpt_model_destroy(&m);
    }
    /* 24 x 24 x 32 = 18432 outputs in every case */
    CU_ASSERT_EQUAL(params[0], 32 * 25 + 32);
    CU_ASSERT_EQUAL(params[1], 576 * (32 * 25) + 576 * 32);
    CU_ASSERT_EQUAL(params[2], 784 * 18432 + 18432);
    CU_ASSERT_DOUBLE_EQUAL(flops[0], 2.0 * 18432 * 25, 0);
    CU_ASSERT_DOUBLE_EQUAL(flops[1], flops[0], 0);           /* the same arithmetic ... */
    CU_ASSERT_DOUBLE_EQUAL(flops[2], 2.0 * 18432 * 784, 0);  /* ... dense connects everything */
}

static void test_shape_errors(void)
{
    dpt_model_spec spec;
    dpt_model m;
    make_spec(&spec, "10, conv 3 3", DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT(dpt_model_create(&m, (dpt_shape){1, 28, 28}, &spec, 1) == DPT_ERR_SHAPE);
    make_spec(&spec, "conv 3 9, maxpool 30", DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT(dpt_model_create(&m, (dpt_shape){1, 28, 28}, &spec, 1) == DPT_ERR_SHAPE);
}

static void test_prior_bias(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "4 bias=prior", DPT_LOSS_SOFTMAX_XENT);
    dpt_model m;
    CU_ASSERT_FATAL(dpt_model_create(&m, (dpt_shape){3, 1, 1}, &spec, 1) == DPT_OK);
    long counts[DPT_LABELS] = {0};
    counts[0] = 59, counts[1] = 29, counts[2] = 9, counts[3] = 1; /* + 1 smoothing: 60:30:10:2 */
    CU_ASSERT_FATAL(dpt_model_init_params(&m, 1, counts) == DPT_OK);
    const dpt_real *b = m.params + m.layers[0].param_offset + m.layers[0].n_weights;
    CU_ASSERT_DOUBLE_EQUAL(b[0], log(60.0 / 102), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(b[3], log(2.0 / 102), 1e-6);
    dpt_model_destroy(&m);
}

static void test_init_deterministic(void)
{
    dpt_model_spec spec;
    make_spec(&spec, "conv 8 3, relu, flatten, 10", DPT_LOSS_SOFTMAX_XENT);
    dpt_model a, b;
    CU_ASSERT_FATAL(dpt_model_create(&a, (dpt_shape){1, 8, 8}, &spec, 1) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_create(&b, (dpt_shape){1, 8, 8}, &spec, 3) == DPT_OK);
    dpt_model_init_params(&a, 5, NULL);
    dpt_model_init_params(&b, 5, NULL);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(dpt_real) * a.n_params) == 0);
    /* conv before ReLU: He normal, std sqrt(2 / 9) */
    double sq = 0;
    for (size_t i = 0; i < a.layers[0].n_weights; i++) sq += (double)a.params[i] * a.params[i];
    CU_ASSERT_DOUBLE_EQUAL(sqrt(sq / 72), sqrt(2.0 / 9), 0.15);
    dpt_model_init_params(&b, 6, NULL);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(dpt_real) * a.n_params) != 0);
    dpt_model_destroy(&a);
    dpt_model_destroy(&b);
}

int main(void)
{
    static const dpt_test tests[] = {
        {"layer-list grammar and round trip", test_grammar},
        {"layer-list errors", test_grammar_errors},
        {"MLP vs finite differences", test_fd_mlp},
        {"CNN with batch norm and dropout vs finite differences", test_fd_cnn},
        {"multi-task loss vs finite differences", test_fd_multitask},
        {"batch norm + ReLU fused: bit for bit the two layers", test_bn_relu_fused},
        {"heads share the trunk", test_heads_share_trunk},
        {"parameter sharing: conv vs local vs dense", test_sharing_saves_parameters},
        {"shape errors", test_shape_errors},
        {"bias=prior is the log class prior", test_prior_bias},
        {"initialization is deterministic", test_init_deterministic},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("model", tests), CU_BRM_VERBOSE);
}
