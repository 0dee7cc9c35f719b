/* test_config.c - CUnit tests of the configuration parser (src/cli/config.c):
 * defaults, every kind of bad input and its message, layer lists (dense and
 * convolutional), [head.NAME] sections, [eval], --set overrides, long lines,
 * the write/load round trip and data path joining. */
#include "cunit_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/config.h"

/* dpt_config is large; one shared instance keeps the test stack small. */
static dpt_config cfg;

#define MINIMAL "[model]\nlayers = 10\n[train]\nepochs = 1\n[optim]\nlr = 0.1\n"
/* MINIMAL without [model] layers */
#define BASE "[train]\nepochs = 1\n[optim]\nlr = 0.1\n"

static dpt_status load(const char *text)
{
    return dpt_config_load(&cfg, text, "run.ini", NULL, 0);
}

static dpt_status load_set(const char *text, const char *const *sets, int n)
{
    return dpt_config_load(&cfg, text, "run.ini", sets, n);
}

static const dpt_layer_spec *trunk(int i) { return &cfg.model.spec.trunk[i]; }
static const dpt_head_spec *head(int h) { return &cfg.model.spec.heads[h]; }

/* Checks that layer l is `kind` (with units for the weighted kinds). */
static void check_layer(const dpt_layer_spec *l, dpt_layer_kind kind, int units)
{
    CU_ASSERT_EQUAL(l->kind, kind);
    if (kind <= DPT_LAYER_TILED) CU_ASSERT_EQUAL(l->units, units);
}

static void check_act(const dpt_layer_spec *l, dpt_activation act)
{
    CU_ASSERT_EQUAL(l->kind, DPT_LAYER_ACTIVATION);
    CU_ASSERT_EQUAL(l->act, act);
}

/* The longest line the parser takes, read from its own message: 4094 with
 * libinih's runtime options (DPT_INIH_RUNTIME_OPTIONS), else 198. */
static size_t line_limit(void)
{
    static char text[8192];
    memset(text, 'x', 6000);
    text[0] = ';';
    text[6000] = '\0';
    CU_ASSERT_EQUAL(load(text), DPT_ERR_CONFIG);
    const char *most = strstr(dpt_error_message(), "at most ");
    return most ? (size_t)strtoul(most + 8, NULL, 10) : 0;
}

/* Checks that the last message contains every string of the NULL-terminated
 * list, printing the message when it does not so that failures are clear. */
static void check_message(const char *first, ...)
{
    const char *msg = dpt_error_message();
    va_list args;
    va_start(args, first);
    for (const char *s = first; s; s = va_arg(args, const char *)) {
        int found = strstr(msg, s) != NULL;
        if (!found) fprintf(stderr, "\n    message \"%s\"\n    lacks \"%s\"\n", msg, s);
        CU_ASSERT_TRUE(found);
    }
    va_end(args);
    CU_ASSERT_PTR_NULL(strchr(msg, '\n')); /* one line */
}

/* Loads `text` expecting DPT_ERR_CONFIG and a message with all the strings. */
#define EXPECT_FAIL(text, ...)                                   \
    do {                                                         \
        dpt_error_clear();                                       \
        CU_ASSERT_EQUAL(load(text), DPT_ERR_CONFIG);             \
        check_message(__VA_ARGS__, (const char *)NULL);          \
    } while (0)

#define EXPECT_SET_FAIL(text, set, ...)                          \
    do {                                                         \
        const char *sets_[] = {set};                             \
        dpt_error_clear();                                       \
        CU_ASSERT_EQUAL(load_set(text, sets_, 1), DPT_ERR_CONFIG); \
        check_message(__VA_ARGS__, (const char *)NULL);          \
    } while (0)

/* ---------------------------------------------------------------- defaults */

static void test_default_text(void)
{
    CU_ASSERT_EQUAL_FATAL(dpt_config_load(&cfg, dpt_default_config_text, "default.ini", NULL, 0),
                          DPT_OK);
    CU_ASSERT_STRING_EQUAL(cfg.data.dir, "/usr/share/datasets/fashion-mnist");
    CU_ASSERT_STRING_EQUAL(cfg.data.train_images, "train-images-idx3-ubyte.gz");
    CU_ASSERT_STRING_EQUAL(cfg.data.train_labels, "train-labels-idx1-ubyte.gz");
    CU_ASSERT_STRING_EQUAL(cfg.data.test_images, "t10k-images-idx3-ubyte.gz");
    CU_ASSERT_STRING_EQUAL(cfg.data.test_labels, "t10k-labels-idx1-ubyte.gz");
    /* "512 relu" is two layers: dense 512 and a relu */
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 5);
    check_layer(trunk(0), DPT_LAYER_DENSE, 512);
    check_act(trunk(1), DPT_ACT_RELU);
    check_layer(trunk(2), DPT_LAYER_DENSE, 256);
    check_act(trunk(3), DPT_ACT_RELU);
    check_layer(trunk(4), DPT_LAYER_DENSE, 10);
    CU_ASSERT_EQUAL(trunk(0)->init.kind, DPT_INIT_AUTO);
    CU_ASSERT_EQUAL(cfg.model.spec.loss, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_EQUAL(cfg.model.spec.init, DPT_INIT_AUTO);
    CU_ASSERT_EQUAL(cfg.model.spec.bn_sync, 1);
    CU_ASSERT_EQUAL(cfg.model.spec.n_heads, 0);
    CU_ASSERT_EQUAL(cfg.eval.mc_samples, 0);
    CU_ASSERT_EQUAL(cfg.train.epochs, 20);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 64);
    CU_ASSERT_EQUAL(cfg.train.seed, 1);
    CU_ASSERT_EQUAL(cfg.train.drop_last, 0);
    CU_ASSERT_EQUAL(cfg.train.max_steps, 0);
    CU_ASSERT_EQUAL(cfg.optim.method, DPT_OPTIM_NESTEROV);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr, 0.05, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.momentum, 0.9, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.weight_decay, 0.0001, 0.0);
    CU_ASSERT_EQUAL(cfg.optim.schedule, DPT_SCHED_LINEAR);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.0005, 0.0);
    CU_ASSERT_EQUAL(cfg.optim.decay_steps, 0);
    CU_ASSERT_EQUAL(cfg.log.every, 100);
    CU_ASSERT_EQUAL(cfg.log.progress, DPT_PROGRESS_AUTO);
    CU_ASSERT_STRING_EQUAL(cfg.log.metrics, "dptrain-metrics.jsonl");
}

static void test_minimal_gets_defaults(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL), DPT_OK);
    CU_ASSERT_STRING_EQUAL(cfg.data.dir, "/usr/share/datasets/fashion-mnist");
    CU_ASSERT_STRING_EQUAL(cfg.data.test_labels, "t10k-labels-idx1-ubyte.gz");
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 1);
    check_layer(trunk(0), DPT_LAYER_DENSE, 10);
    CU_ASSERT_EQUAL(cfg.model.spec.loss, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_EQUAL(cfg.model.spec.init, DPT_INIT_AUTO);
    CU_ASSERT_EQUAL(cfg.model.spec.bn_sync, 1);
    CU_ASSERT_EQUAL(cfg.model.spec.n_heads, 0);
    CU_ASSERT_EQUAL(cfg.eval.mc_samples, 0);
    CU_ASSERT_EQUAL(cfg.train.epochs, 1);
    CU_ASSERT_EQUAL(cfg.train.batch_size, 64);
    CU_ASSERT_EQUAL(cfg.train.seed, 1);
    CU_ASSERT_EQUAL(cfg.train.drop_last, 0);
    CU_ASSERT_EQUAL(cfg.train.max_steps, 0);
    CU_ASSERT_EQUAL(cfg.optim.method, DPT_OPTIM_SGD);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr, 0.1, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.momentum, 0.9, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.weight_decay, 0.0, 0.0);
    CU_ASSERT_EQUAL(cfg.optim.schedule, DPT_SCHED_CONSTANT);
    CU_ASSERT_EQUAL(cfg.optim.decay_steps, 0);
    CU_ASSERT_EQUAL(cfg.log.every, 100);
    CU_ASSERT_EQUAL(cfg.log.progress, DPT_PROGRESS_AUTO);
    CU_ASSERT_STRING_EQUAL(cfg.log.metrics, "dptrain-metrics.jsonl");
}

static void test_values_accepted(void)
{
    CU_ASSERT_EQUAL_FATAL(load("[model]\nlayers = 7 TANH , 3 sigmoid,2\n[train]\nepochs = 1\n"
                               "[optim]\nlr = 0.1\nmomentum = 0 ; inline comment\n"
                               "weight_decay = 1\nmethod = MOMENTUM\n[train]\ndrop_last = Yes\n"
                               "seed = 18446744073709551615\nmax_steps = +12\n[log]\n"
                               "metrics =\nprogress = Bar\n"),
                          DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.momentum, 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.weight_decay, 1.0, 0.0);
    CU_ASSERT_EQUAL(cfg.optim.method, DPT_OPTIM_MOMENTUM);
    CU_ASSERT_EQUAL(cfg.train.drop_last, 1);
    CU_ASSERT_EQUAL(cfg.train.seed, UINT64_MAX);
    CU_ASSERT_EQUAL(cfg.train.max_steps, 12);
    CU_ASSERT_STRING_EQUAL(cfg.log.metrics, "");
    CU_ASSERT_EQUAL(cfg.log.progress, DPT_PROGRESS_BAR);
    /* names in a layer list are not case sensitive, like every name */
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 5);
    check_layer(trunk(0), DPT_LAYER_DENSE, 7);
    check_act(trunk(1), DPT_ACT_TANH);
    check_layer(trunk(2), DPT_LAYER_DENSE, 3);
    check_act(trunk(3), DPT_ACT_SIGMOID);
    check_layer(trunk(4), DPT_LAYER_DENSE, 2);
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[model]\nloss = Sigmoid_BCE\ninit = lecun_normal\n"
                               "bn_sync = off\n"), DPT_OK);
    CU_ASSERT_EQUAL(cfg.model.spec.loss, DPT_LOSS_SIGMOID_BCE);
    CU_ASSERT_EQUAL(cfg.model.spec.init, DPT_INIT_LECUN_NORMAL);
    CU_ASSERT_EQUAL(cfg.model.spec.bn_sync, 0);
    /* boolean spellings */
    const char *const words[] = {"true", "on", "1", "FALSE", "off", "0", "no"};
    const int values[] = {1, 1, 1, 0, 0, 0, 0};
    for (int i = 0; i < 7; i++) {
        char text[256];
        snprintf(text, sizeof text, MINIMAL "[train]\ndrop_last = %s\n", words[i]);
        CU_ASSERT_EQUAL(load(text), DPT_OK);
        CU_ASSERT_EQUAL(cfg.train.drop_last, values[i]);
    }
}

static void test_lr_final_default(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.1 / 100.0, 0.0);
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "lr_final = 0.03\n"), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.03, 0.0);
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "lr_final = 0\n"), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.0, 0.0);
    /* resolved after the overrides: follows an overridden lr */
    const char *set_lr[] = {"optim.lr=2"};
    CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL, set_lr, 1), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.02, 0.0);
    const char *set_final[] = {"optim.lr_final=0.5"};
    CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL, set_final, 1), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr_final, 0.5, 0.0);
}

/* ---------------------------------------------------------------- names */

static void test_unknown_section(void)
{
    EXPECT_FAIL(MINIMAL "[trian]\nepochs = 3\n", "run.ini:7:", "[trian]", "did you mean [train]?",
                "[data], [model], [head.NAME], [train], [optim], [eval], [diagnostics], [ensemble], [checkpoint], [reliability], [log]");
    /* reported even without any key in it */
    EXPECT_FAIL(MINIMAL "\n[bogus]\n", "run.ini:8:", "section [bogus] is unknown", "[optim]");
    EXPECT_FAIL("[optimizer]\nlr = 0.1\n", "run.ini:1:", "did you mean [optim]?");
    EXPECT_FAIL("[zzzzzzzz]\n", "run.ini:1:", "[zzzzzzzz]", "sections:");
    /* the head template: by the name before the '.', or without one */
    EXPECT_FAIL(MINIMAL "[heads.coarse]\nweight = 2\n", "run.ini:7:", "[heads.coarse] is unknown",
                "did you mean [head.NAME]?");
    EXPECT_FAIL(MINIMAL "[haed.x]\n", "run.ini:7:", "did you mean [head.NAME]?");
    EXPECT_FAIL(MINIMAL "[head]\nloss = mse\n", "run.ini:7:", "section [head] is unknown",
                "did you mean [head.NAME]?");
    EXPECT_FAIL(MINIMAL "[evaluation]\nmc_samples = 3\n", "run.ini:7:", "did you mean [eval]?");
}

static void test_unknown_key(void)
{
    EXPECT_FAIL(MINIMAL "lerning_rate = 0.1\n", "run.ini:7:", "[optim]", "'lerning_rate'",
                "did you mean 'lr'?", "method, lr, momentum, rho, beta1, beta2, delta, "
                "weight_decay, schedule, lr_final, decay_steps, step_size, gamma, warmup_steps");
    EXPECT_FAIL("[train]\nepoch = 3\n", "run.ini:2:", "'epoch'", "did you mean 'epochs'?",
                "batch_size");
    EXPECT_FAIL(MINIMAL "LR = 1\n", "run.ini:7:", "did you mean 'lr'?");
    /* nothing close: the list of keys, no suggestion */
    EXPECT_FAIL("[log]\nqqqqqqqq = 1\n", "run.ini:2:", "'qqqqqqqq'",
                "keys of [log]: every, progress, metrics");
    CU_ASSERT_PTR_NULL(strstr(dpt_error_message(), "did you mean"));
    EXPECT_FAIL("lr = 0.1\n", "run.ini:1:", "before any [section]", "did you mean [optim] lr?");
}

static void test_key_in_wrong_section(void)
{
    EXPECT_FAIL("[optim]\nlr = 0.1\nepochs = 3\n", "run.ini:3:", "[optim] key 'epochs'",
                "did you mean [train] epochs?");
    EXPECT_FAIL("[model]\nbatch_size = 3\n", "run.ini:2:", "did you mean [train] batch_size?");
    EXPECT_FAIL("[model]\nweight = 3\n", "run.ini:2:", "[model] key 'weight'",
                "did you mean [head.NAME] weight?", "keys of [model]: layers, loss, init, bn_sync");
    EXPECT_FAIL("[train]\nmc_samples = 3\n", "run.ini:2:", "did you mean [eval] mc_samples?");
}

/* ---------------------------------------------------------------- numbers */

static void test_bad_int(void)
{
    EXPECT_FAIL("[train]\nepochs = ten\n", "run.ini:2:", "[train] epochs = ten",
                "not an integer", "1..1000000");
    EXPECT_FAIL("[train]\n\nbatch_size = 64abc\n", "run.ini:3:", "batch_size = 64abc",
                "not an integer");
    EXPECT_FAIL("[train]\nepochs = 2.5\n", "run.ini:2:", "not an integer");
    EXPECT_FAIL("[train]\nepochs =\n", "run.ini:2:", "epochs = ''", "not an integer");
    EXPECT_FAIL("[train]\nseed = 0x10\n", "run.ini:2:", "seed", "not an integer");
}

static void test_int_out_of_range(void)
{
    EXPECT_FAIL("[train]\nbatch_size = 0\n", "run.ini:2:", "batch_size = 0", "out of range",
                "1..1000000");
    EXPECT_FAIL("[train]\nepochs = 1000001\n", "run.ini:2:", "out of range", "1..1000000");
    EXPECT_FAIL("[train]\nepochs = 99999999999999999999999\n", "run.ini:2:", "out of range");
    EXPECT_FAIL("[train]\nmax_steps = -1\n", "run.ini:2:", "max_steps", "out of range", ">= 0");
    EXPECT_FAIL("[train]\nseed = -1\n", "run.ini:2:", "seed = -1", "out of range",
                "0..18446744073709551615");
    EXPECT_FAIL("[train]\nseed = 18446744073709551616\n", "run.ini:2:", "out of range");
    EXPECT_FAIL("[log]\nevery = 0\n", "run.ini:2:", "every", "1..100000000");
    EXPECT_FAIL("[optim]\ndecay_steps = -5\n", "run.ini:2:", "decay_steps", ">= 0");
}

static void test_bad_real(void)
{
    EXPECT_FAIL("[optim]\nlr = fast\n", "run.ini:2:", "lr = fast", "not a real number",
                "0 < lr <= 10");
    EXPECT_FAIL("[optim]\nlr = 0.1x\n", "run.ini:2:", "not a real number");
    EXPECT_FAIL("[optim]\nlr = nan\n", "run.ini:2:", "not a finite number");
    EXPECT_FAIL("[optim]\nlr = 1e999\n", "run.ini:2:", "lr = 1e999");
}

static void test_real_out_of_range(void)
{
    EXPECT_FAIL("[optim]\nlr = -0.1\n", "run.ini:2:", "[optim] lr = -0.1", "out of range",
                "0 < lr <= 10");
    EXPECT_FAIL("[optim]\nlr = 0\n", "run.ini:2:", "out of range");
    EXPECT_FAIL("[optim]\nlr = 10.5\n", "run.ini:2:", "out of range");
    EXPECT_FAIL("[optim]\nlr = 1\nmomentum = 1.0\n", "run.ini:3:", "momentum = 1.0",
                "out of range", "0 <= momentum < 1");
    EXPECT_FAIL("[optim]\nweight_decay = -1e-9\n", "run.ini:2:", "0 <= weight_decay <= 1");
    EXPECT_FAIL("[optim]\nlr_final = -1\n", "run.ini:2:", "lr_final", ">= 0");
}

/* ---------------------------------------------------------------- choices */

static void test_bad_bool(void)
{
    EXPECT_FAIL("[train]\ndrop_last = maybe\n", "run.ini:2:", "drop_last = maybe",
                "not a boolean", "true, false, yes, no, on, off, 1, 0");
    EXPECT_FAIL("[train]\ndrop_last = ture\n", "run.ini:2:", "did you mean 'true'?");
}

static void test_bad_enum(void)
{
    EXPECT_FAIL("[optim]\nmethod = nestrov\n", "run.ini:2:", "method = nestrov",
                "allowed: sgd, momentum, nesterov, adagrad, rmsprop, rmsprop_nesterov, adam, adamw",
                "did you mean 'nesterov'?");
    EXPECT_FAIL("[model]\nloss = cross_entropy\n", "run.ini:2:",
                "softmax_cross_entropy, mse, sigmoid_bce");
    EXPECT_FAIL("[model]\ninit = he\n", "run.ini:2:", "auto, zeros, constant, uniform, normal, "
                "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, orthogonal, "
                "sparse");
    EXPECT_FAIL("[model]\ninit = he_norml\n", "run.ini:2:", "did you mean 'he_normal'?");
    EXPECT_FAIL("[model]\nbn_sync = sometimes\n", "run.ini:2:", "[model] bn_sync", "not a boolean");
    EXPECT_FAIL("[optim]\nschedule = cosin\n", "run.ini:2:",
                "constant, linear, step, exponential, cosine", "did you mean 'cosine'?");
    EXPECT_FAIL("[optim]\nnonfinite = ignore\n", "run.ini:2:", "allowed: skip, abort");
    EXPECT_FAIL("[log]\nprogress = lins\n", "run.ini:2:", "auto, bar, lines, none",
                "did you mean 'lines'?");
}

/* ---------------------------------------------------------------- layer lists */

static void test_cnn_layers(void)
{
    CU_ASSERT_EQUAL_FATAL(load(BASE "[model]\nlayers = conv 32 3 pad=same, batchnorm, relu, "
                               "maxpool 2, flatten, dropout 0.5, dense 10\n"), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 7);
    check_layer(trunk(0), DPT_LAYER_CONV2D, 32);
    CU_ASSERT_EQUAL(trunk(0)->kh, 3);
    CU_ASSERT_EQUAL(trunk(0)->kw, 3);
    CU_ASSERT_EQUAL(trunk(0)->pad, DPT_PAD_SAME);
    CU_ASSERT_EQUAL(trunk(0)->stride, 1);
    CU_ASSERT_EQUAL(trunk(1)->kind, DPT_LAYER_BATCHNORM);
    CU_ASSERT_EQUAL(trunk(1)->sync, -1); /* the model's bn_sync */
    check_act(trunk(2), DPT_ACT_RELU);
    CU_ASSERT_EQUAL(trunk(3)->kind, DPT_LAYER_MAXPOOL);
    CU_ASSERT_EQUAL(trunk(3)->kh, 2);
    CU_ASSERT_EQUAL(trunk(3)->kw, 2);
    CU_ASSERT_EQUAL(trunk(3)->stride, 2);
    CU_ASSERT_EQUAL(trunk(4)->kind, DPT_LAYER_FLATTEN);
    CU_ASSERT_EQUAL(trunk(5)->kind, DPT_LAYER_DROPOUT);
    CU_ASSERT_DOUBLE_EQUAL(trunk(5)->keep, 0.5, 0.0);
    check_layer(trunk(6), DPT_LAYER_DENSE, 10);
    /* options, a rectangular kernel, the other kinds (in two lists, so that
     * each fits inih's default 200-byte line when written back) */
    CU_ASSERT_EQUAL_FATAL(load(BASE "[model]\nlayers = conv 8 3x5 stride=2 dilation=2 tanh "
                               "init=he_uniform bias=0.1, avgpool 3 stride=1\n"), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 3);
    CU_ASSERT_EQUAL(trunk(0)->kh, 3);
    CU_ASSERT_EQUAL(trunk(0)->kw, 5);
    CU_ASSERT_EQUAL(trunk(0)->stride, 2);
    CU_ASSERT_EQUAL(trunk(0)->dilation, 2);
    CU_ASSERT_EQUAL(trunk(0)->init.kind, DPT_INIT_HE_UNIFORM);
    CU_ASSERT_DOUBLE_EQUAL(trunk(0)->bias, 0.1, 0.0);
    check_act(trunk(1), DPT_ACT_TANH);
    CU_ASSERT_EQUAL(trunk(2)->kind, DPT_LAYER_AVGPOOL);
    CU_ASSERT_EQUAL(trunk(2)->kh, 3);
    CU_ASSERT_EQUAL(trunk(2)->stride, 1);
    CU_ASSERT_EQUAL_FATAL(load(BASE "[model]\nlayers = tiled 4 3 tiles=3, local 2 1, "
                               "bn sync=false momentum=0.5, gap, 10 sigmoid\n"), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_trunk, 6);
    check_layer(trunk(0), DPT_LAYER_TILED, 4);
    CU_ASSERT_EQUAL(trunk(0)->tiles, 3);
    check_layer(trunk(1), DPT_LAYER_LOCAL, 2);
    CU_ASSERT_EQUAL(trunk(2)->kind, DPT_LAYER_BATCHNORM);
    CU_ASSERT_EQUAL(trunk(2)->sync, 0);
    CU_ASSERT_DOUBLE_EQUAL(trunk(2)->momentum, 0.5, 0.0);
    CU_ASSERT_EQUAL(trunk(3)->kind, DPT_LAYER_GAP);
    check_layer(trunk(4), DPT_LAYER_DENSE, 10);
    check_act(trunk(5), DPT_ACT_SIGMOID);
}

static void test_bad_layers(void)
{
    EXPECT_FAIL("[model]\nlayers = 512 relu,, 10\n", "run.ini:2:", "[model] layers",
                "layer 2: is empty", "allowed: comma-separated layers");
    EXPECT_FAIL("[model]\nlayers = 512 relu, 10,\n", "run.ini:2:", "layer 3: is empty");
    EXPECT_FAIL("[model]\nlayers = 0 relu\n", "run.ini:2:", "layer 1", "units '0'",
                "1..1000000");
    EXPECT_FAIL("[model]\nlayers = 10, 1000001\n", "run.ini:2:", "layer 2", "1000001");
    EXPECT_FAIL("[model]\nlayers = 512 swish\n", "run.ini:2:", "layer 1", "'swish'",
                "relu|tanh|sigmoid|identity");
    EXPECT_FAIL("[model]\nlayers = 512 rleu\n", "run.ini:2:", "did you mean 'relu'?");
    EXPECT_FAIL("[model]\nlayers =\n", "run.ini:2:", "no layers given");
    EXPECT_FAIL("[model]\nlayers = relu 512\n", "run.ini:2:", "layer 1: 'relu' takes no arguments");
    EXPECT_FAIL("[model]\nlayers = 512 relu tanh\n", "run.ini:2:", "layer 1", "'tanh'");
    CU_ASSERT_PTR_NULL(strstr(dpt_error_message(), "did you mean"));
    /* the kinds, their arguments and options */
    EXPECT_FAIL("[model]\nlayers = convv 32 3, 10\n", "run.ini:2:", "[model] layers = convv 32 3",
                "layer 1: unknown layer 'convv'", "did you mean 'conv'?");
    EXPECT_FAIL("[model]\nlayers = 10, maxpol 2\n", "run.ini:2:", "layer 2",
                "did you mean 'maxpool'?");
    EXPECT_FAIL("[model]\nlayers = conv 32 3 pad=smae\n", "run.ini:2:", "layer 1", "pad 'smae'",
                "did you mean 'same'?");
    EXPECT_FAIL("[model]\nlayers = conv 32\n", "run.ini:2:", "layer 1", "kernel size");
    EXPECT_FAIL("[model]\nlayers = conv 32 0x3\n", "run.ini:2:", "layer 1", "kernel size '0'");
    EXPECT_FAIL("[model]\nlayers = 10, dropout 0\n", "run.ini:2:", "layer 2",
                "keep probability '0'");
    EXPECT_FAIL("[model]\nlayers = dropout 1.5, 10\n", "run.ini:2:", "layer 1",
                "keep probability '1.5'");
    EXPECT_FAIL("[model]\nlayers = dropout\n", "run.ini:2:", "layer 1", "keep probability");
    EXPECT_FAIL("[model]\nlayers = conv 32 3 strid=2\n", "run.ini:2:", "layer 1",
                "unknown option 'strid'", "did you mean 'stride'?");
    EXPECT_FAIL("[model]\nlayers = 10 init=he_norml\n", "run.ini:2:", "unknown init 'he_norml'",
                "did you mean 'he_normal'?");
    EXPECT_FAIL("[model]\nlayers = batchnorm sync=ture, 10\n", "run.ini:2:", "sync 'ture'",
                "did you mean 'true'?");
    EXPECT_FAIL("[model]\nlayers = 10 nothing=1\n", "run.ini:2:", "unknown option 'nothing'");
    CU_ASSERT_PTR_NULL(strstr(dpt_error_message(), "did you mean"));
    /* 65 layers: through --set, since a file line may be short */
    char set[512] = "model.layers=";
    for (int i = 0; i < DPT_MAX_LAYERS + 1; i++) strcat(set, i ? ",1" : "1");
    EXPECT_SET_FAIL(MINIMAL, set, "--set 'model.layers=", "more than 64 layers");
    /* "1 tanh" is two layers */
    char pairs[600] = "model.layers=";
    for (int i = 0; i < DPT_MAX_LAYERS / 2 + 1; i++) strcat(pairs, i ? ",1 tanh" : "1 tanh");
    EXPECT_SET_FAIL(MINIMAL, pairs, "layer 33", "more than 64 layers");
    /* 64 layers given compactly are written back compactly (defaults left
     * out), so they load when inih's line limit is raised */
    char wide[1024] = "model.layers=";
    for (int i = 0; i < DPT_MAX_LAYERS; i++) strcat(wide, i ? ",batchnorm" : "batchnorm");
    const char *wide_ok[] = {wide};
    if (line_limit() >= 4094) CU_ASSERT_EQUAL(load_set(MINIMAL, wide_ok, 1), DPT_OK);
    /* 64 short ones: "dense 1" 64 times needs more than inih's default 200-byte line */
    set[strlen(set) - 2] = '\0';
    const char *ok[] = {set};
    if (line_limit() >= 4094) {
        CU_ASSERT_EQUAL(load_set(MINIMAL, ok, 1), DPT_OK);
        CU_ASSERT_EQUAL(cfg.model.spec.n_trunk, DPT_MAX_LAYERS);
    } else {
        EXPECT_SET_FAIL(MINIMAL, set, "too long to write back as one INI line");
    }
}

/* A line of more than 200 characters (inih's default buffer): accepted with
 * libinih's runtime options, "line too long" without. */
static void test_long_layer_line(void)
{
    char text[2048] = BASE "[model]\nlayers = ";
    for (int i = 0; i < 40; i++) strcat(text, i ? ", dense 16" : "dense 16");
    strcat(text, "\n");
    size_t limit = line_limit();
#ifdef DPT_INIH_RUNTIME_OPTIONS
    CU_ASSERT_EQUAL(limit, 4094);
#endif
    CU_ASSERT_TRUE(limit == 4094 || limit == 198);
    if (limit >= 4094) {
        dpt_status st = load(text);
        if (st != DPT_OK) fprintf(stderr, "\n    %s\n", dpt_error_message());
        CU_ASSERT_EQUAL_FATAL(st, DPT_OK);
        CU_ASSERT_EQUAL(cfg.model.spec.n_trunk, 40);
        check_layer(trunk(39), DPT_LAYER_DENSE, 16);
    } else {
        EXPECT_FAIL(text, "run.ini:6: line too long", "at most 198");
    }
}

/* ---------------------------------------------------------------- heads */

#define TWO_HEADS                                                                   \
    MINIMAL "[head.coarse]\nlayers = 64 relu, 3\nloss = mse\nweight = 0.5\n"        \
            "labels = 0,1,2,3,4,6 | 5,7,9 | 8\n\n[head.fine]\nlayers = dropout 0.5, 10\n"

static void test_heads(void)
{
    CU_ASSERT_EQUAL_FATAL(load(TWO_HEADS), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_heads, 2);
    CU_ASSERT_STRING_EQUAL(head(0)->name, "coarse");
    CU_ASSERT_EQUAL_FATAL(head(0)->n_layers, 3);
    check_layer(&head(0)->layers[0], DPT_LAYER_DENSE, 64);
    check_act(&head(0)->layers[1], DPT_ACT_RELU);
    check_layer(&head(0)->layers[2], DPT_LAYER_DENSE, 3);
    CU_ASSERT_EQUAL(head(0)->loss, DPT_LOSS_MSE);
    CU_ASSERT_DOUBLE_EQUAL(head(0)->weight, 0.5, 0.0);
    CU_ASSERT_EQUAL(head(0)->has_map, 1);
    const int expect[10] = {0, 0, 0, 0, 0, 1, 0, 1, 2, 1};
    for (int l = 0; l < 10; l++) CU_ASSERT_EQUAL(head(0)->map[l], expect[l]);
    for (int l = 10; l < DPT_LABELS; l++) CU_ASSERT_EQUAL(head(0)->map[l], -1);
    /* the second head: defaults */
    CU_ASSERT_STRING_EQUAL(head(1)->name, "fine");
    CU_ASSERT_EQUAL(head(1)->n_layers, 2);
    CU_ASSERT_EQUAL(head(1)->layers[0].kind, DPT_LAYER_DROPOUT);
    CU_ASSERT_EQUAL(head(1)->loss, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_DOUBLE_EQUAL(head(1)->weight, 1.0, 0.0);
    CU_ASSERT_EQUAL(head(1)->has_map, 0);
    CU_ASSERT_EQUAL(head(1)->map[0], -1);
    /* order of first appearance; an empty section is a head with defaults;
     * the same key in two heads is fine; layers may be empty */
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[head.b]\nweight = 2\n[head.a]\nweight = 3\n"
                               "layers =\nlabels = DATA\n[head.b]\nloss = sigmoid_bce\n[head.c]\n"),
                          DPT_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.model.spec.n_heads, 3);
    CU_ASSERT_STRING_EQUAL(head(0)->name, "b");
    CU_ASSERT_STRING_EQUAL(head(1)->name, "a");
    CU_ASSERT_STRING_EQUAL(head(2)->name, "c");
    CU_ASSERT_DOUBLE_EQUAL(head(0)->weight, 2.0, 0.0);
    CU_ASSERT_EQUAL(head(0)->loss, DPT_LOSS_SIGMOID_BCE);
    CU_ASSERT_DOUBLE_EQUAL(head(1)->weight, 3.0, 0.0);
    CU_ASSERT_EQUAL(head(1)->has_map, 0);
    CU_ASSERT_EQUAL(head(2)->n_layers, 0);
    CU_ASSERT_DOUBLE_EQUAL(head(2)->weight, 1.0, 0.0);
    /* eight heads are fine, and a 31-character name */
    char text[1024] = MINIMAL;
    for (int h = 0; h < DPT_MAX_HEADS; h++)
        sprintf(text + strlen(text), "[head.h%d_abcdefghijklmnopqrstuvwxyz01]\n", h);
    CU_ASSERT_EQUAL(load(text), DPT_OK);
    CU_ASSERT_EQUAL(cfg.model.spec.n_heads, DPT_MAX_HEADS);
}

static void test_bad_heads(void)
{
    EXPECT_FAIL(MINIMAL "[head.Coarse]\n", "run.ini:7:", "[head.Coarse]",
                "a head name is 1..31 characters of a-z, 0-9 and _");
    EXPECT_FAIL(MINIMAL "[head.]\nweight = 1\n", "run.ini:7:", "[head.]", "a head name");
    EXPECT_FAIL(MINIMAL "[head.a-b]\n", "run.ini:7:", "a head name");
    EXPECT_FAIL(MINIMAL "[head.abcdefghijklmnopqrstuvwxyz012345]\n", "run.ini:7:",
                "a head name");
    char text[1024] = MINIMAL;
    for (int h = 0; h <= DPT_MAX_HEADS; h++) sprintf(text + strlen(text), "[head.h%d]\n", h);
    EXPECT_FAIL(text, "run.ini:15:", "[head.h8] is one head too many", "at most 8");
    /* keys */
    EXPECT_FAIL(MINIMAL "[head.a]\nwieght = 2\n", "run.ini:8:", "[head.a] key 'wieght' is unknown",
                "did you mean 'weight'?", "keys of [head.a]: layers, loss, weight, labels");
    EXPECT_FAIL(MINIMAL "[head.a]\nepochs = 2\n", "run.ini:8:", "did you mean [train] epochs?");
    EXPECT_FAIL(MINIMAL "[head.a]\nweight = 1\n[head.b]\nweight = 2\n[head.a]\nloss = mse\n"
                "weight = 3\n", "run.ini:13:", "[head.a] weight is given twice",
                "lines 8 and 13");
    EXPECT_FAIL(MINIMAL "[head.a]\nweight = 0\n", "run.ini:8:", "[head.a] weight = 0",
                "out of range", "0 < weight <= 1000");
    EXPECT_FAIL(MINIMAL "[head.a]\nweight = 1000.5\n", "out of range");
    EXPECT_FAIL(MINIMAL "[head.a]\nloss = bce\n", "run.ini:8:", "[head.a] loss",
                "softmax_cross_entropy, mse, sigmoid_bce");
    EXPECT_FAIL(MINIMAL "[head.a]\nlayers = 10 rleu\n", "run.ini:8:", "[head.a] layers",
                "layer 1", "did you mean 'relu'?");
    /* labels */
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 0,1 | 1,2\n", "run.ini:8:", "[head.a] labels",
                "label 1 is in group 1 and in group 2");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 0,1,0\n", "group 1: label 0 is given twice");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 0 | | 1\n", "run.ini:8:", "group 2 is empty");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 0,1 |\n", "group 2 is empty");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 0,,1\n", "group 1: item 2 is empty");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 3 | 256\n", "group 2: label 256 is out of range 0..255");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = -1\n", "label -1 is out of range");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = 1 | two\n", "group 2: 'two' is not a label");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels = dat\n", "did you mean 'data'?");
    EXPECT_FAIL(MINIMAL "[head.a]\nlabels =\n", "[head.a] labels = ''", "no groups given");
}

static void test_head_overrides(void)
{
    const char *sets[] = {"head.coarse.weight=0.25", "head.fine.labels=1 | 0",
                          "head.coarse.layers=5"};
    CU_ASSERT_EQUAL_FATAL(load_set(TWO_HEADS, sets, 3), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(head(0)->weight, 0.25, 0.0);
    CU_ASSERT_EQUAL(head(0)->n_layers, 1);
    CU_ASSERT_EQUAL(head(1)->has_map, 1);
    CU_ASSERT_EQUAL(head(1)->map[1], 0);
    CU_ASSERT_EQUAL(head(1)->map[0], 1);
    EXPECT_SET_FAIL(TWO_HEADS, "head.corse.weight=1", "--set 'head.corse.weight=1'",
                    "run.ini has no [head.corse]", "did you mean [head.coarse]?",
                    "heads: coarse, fine");
    EXPECT_SET_FAIL(MINIMAL, "head.x.weight=1", "run.ini has no [head.x]", "defines none");
    EXPECT_SET_FAIL(TWO_HEADS, "head.X.weight=1", "--set 'head.X.weight=1'", "a head name");
    EXPECT_SET_FAIL(TWO_HEADS, "head.coarse.wieght=1", "[head.coarse] key 'wieght' is unknown",
                    "did you mean 'weight'?");
    EXPECT_SET_FAIL(TWO_HEADS, "head.coarse.weight=-1", "--set 'head.coarse.weight=-1'",
                    "[head.coarse] weight = -1", "out of range");
    EXPECT_SET_FAIL(TWO_HEADS, "heads.coarse.weight=1", "section [heads.coarse] is unknown",
                    "did you mean [head.NAME]?");
    EXPECT_SET_FAIL(TWO_HEADS, "weight=1", "no 'section.' before the key",
                    "did you mean [head.NAME] weight?");
}

/* ---------------------------------------------------------------- [eval] */

static void test_eval(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL), DPT_OK);
    CU_ASSERT_EQUAL(cfg.eval.mc_samples, 0);
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[eval]\nmc_samples = 10000\n"), DPT_OK);
    CU_ASSERT_EQUAL(cfg.eval.mc_samples, 10000);
    const char *sets[] = {"eval.mc_samples=30"};
    CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL, sets, 1), DPT_OK);
    CU_ASSERT_EQUAL(cfg.eval.mc_samples, 30);
    EXPECT_FAIL(MINIMAL "[eval]\nmc_samples = 10001\n", "run.ini:8:", "[eval] mc_samples",
                "out of range", "0..10000");
    EXPECT_FAIL(MINIMAL "[eval]\nmc_samples = -1\n", "out of range");
    EXPECT_FAIL(MINIMAL "[eval]\nmc_sampels = 3\n", "did you mean 'mc_samples'?");
}

static void test_bad_strings(void)
{
    EXPECT_FAIL("[data]\ndir =\n", "run.ini:2:", "[data] dir", "must not be empty");
    EXPECT_SET_FAIL(MINIMAL, "data.dir=/a ;b", "--set 'data.dir=/a ;b'", "comment");
    EXPECT_SET_FAIL(MINIMAL, "data.dir=/a\nb", "control character");
    char set[DPT_PATH_MAX + 64] = "data.train_images=";
    memset(set + strlen(set), 'x', DPT_PATH_MAX);
    set[sizeof set - 1] = '\0';
    EXPECT_SET_FAIL(MINIMAL, set, "--set 'data.train_images=xxx", "too long");
}

/* ---------------------------------------------------------------- structure */

static void test_duplicate_key(void)
{
    EXPECT_FAIL("[optim]\nlr = 0.1\nmomentum = 0.5\n\nlr = 0.2\n", "run.ini:5:", "[optim] lr",
                "given twice", "lines 2 and 5");
    /* across two headers of the same section, too */
    EXPECT_FAIL("[train]\nepochs = 1\n[optim]\nlr = 1\n[train]\nepochs = 2\n", "run.ini:6:",
                "lines 2 and 6");
}

static void test_missing_required(void)
{
    EXPECT_FAIL("[train]\nepochs = 1\n[optim]\nlr = 0.1\n",
                "run.ini: required key [model] layers is missing "
                "(e.g. layers = 512 relu, 256 relu, 10)");
    EXPECT_FAIL("[model]\nlayers = 10\n[optim]\nlr = 0.1\n", "required key [train] epochs");
    EXPECT_FAIL("[model]\nlayers = 10\n[train]\nepochs = 1\n", "required key [optim] lr");
    EXPECT_FAIL("", "required key [model] layers");
    /* an override gives the key */
    const char *sets[] = {"model.layers=5 relu, 3", "train.epochs=2"};
    CU_ASSERT_EQUAL(load_set("[optim]\nlr = 0.1\n", sets, 2), DPT_OK);
    CU_ASSERT_EQUAL(cfg.model.spec.n_trunk, 3);
    CU_ASSERT_EQUAL(cfg.train.epochs, 2);
}

static void test_syntax_error(void)
{
    EXPECT_FAIL("[train]\nepochs 20\n", "run.ini:2: syntax error",
                "expected 'key = value' or '[section]'");
    EXPECT_FAIL(MINIMAL "[data\n", "run.ini:7: syntax error");
    /* an indented line is not a continuation of the value above */
    EXPECT_FAIL("[train]\nepochs = 5\n    6\n", "run.ini:3: syntax error");
    /* the first error in text order wins, whichever kind it is */
    EXPECT_FAIL("[train]\nepochs 20\nepochs = ten\n", "run.ini:2: syntax error");
    EXPECT_FAIL("[train]\nepochs = ten\nepochs 20\n", "run.ini:2:", "not an integer");
    EXPECT_FAIL("[train]\noops\n[bogus]\n", "run.ini:2: syntax error");
}

static void test_line_too_long(void)
{
    static char text[8192];
    size_t limit = line_limit();
    CU_ASSERT_TRUE_FATAL(limit == 4094 || limit == 198);
    /* limit + 1 characters: too long; limit: fine (a comment line counts too) */
    snprintf(text, sizeof text, "[data]\n\ndir = /");
    size_t n = strlen(text), fill = limit + 1 - (n - 8);
    memset(text + n, 'a', fill);
    strcpy(text + n + fill, "\n");
    char expect[64];
    snprintf(expect, sizeof expect, "(%zu characters; at most %zu)", limit + 1, limit);
    EXPECT_FAIL(text, "run.ini:3: line too long", expect);
    snprintf(text, sizeof text, MINIMAL ";");
    n = strlen(text);
    memset(text + n, 'c', limit - 1);
    strcpy(text + n + limit - 1, "\r\n");
    CU_ASSERT_EQUAL(load(text), DPT_OK);
    /* CRLF is fine otherwise */
    CU_ASSERT_EQUAL(load("[model]\r\nlayers = 10\r\n[train]\r\nepochs = 1\r\n[optim]\r\n"
                         "lr = 0.1\r\n"), DPT_OK);
}

/* ---------------------------------------------------------------- --set */

static void test_override_valid(void)
{
    const char *sets[] = {"optim.lr = 0.25 ", "train.batch_size=128", "optim.method=nesterov",
                          "data.dir=/data", "optim.lr=0.5"};
    CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL "[train]\nbatch_size = 32\n", sets, 5), DPT_OK);
    CU_ASSERT_DOUBLE_EQUAL(cfg.optim.lr, 0.5, 0.0); /* the last --set wins */
    CU_ASSERT_EQUAL(cfg.train.batch_size, 128);     /* beats the file */
    CU_ASSERT_EQUAL(cfg.optim.method, DPT_OPTIM_NESTEROV);
    CU_ASSERT_STRING_EQUAL(cfg.data.dir, "/data");
    CU_ASSERT_EQUAL(cfg.train.epochs, 1);
}

static void test_override_bad(void)
{
    EXPECT_SET_FAIL(MINIMAL, "optim.lerning_rate=0.1", "--set 'optim.lerning_rate=0.1'",
                    "'lerning_rate' is unknown", "did you mean 'lr'?");
    EXPECT_SET_FAIL(MINIMAL, "train.epochs=ten", "--set 'train.epochs=ten'", "not an integer",
                    "1..1000000");
    EXPECT_SET_FAIL(MINIMAL, "lr=0.1", "--set 'lr=0.1'", "expected section.key=value",
                    "did you mean [optim] lr?");
    EXPECT_SET_FAIL(MINIMAL, "optim.lr", "--set 'optim.lr'", "no '='",
                    "expected section.key=value");
    EXPECT_SET_FAIL(MINIMAL, "=3", "--set '=3'", "expected section.key=value");
    EXPECT_SET_FAIL(MINIMAL, "optim.=3", "--set 'optim.=3'", "[optim] key '' is unknown");
    EXPECT_SET_FAIL(MINIMAL, "optimizer.lr=1", "--set 'optimizer.lr=1'",
                    "section [optimizer] is unknown", "did you mean [optim]?");
    EXPECT_SET_FAIL(MINIMAL, "optim.epochs=3", "did you mean [train] epochs?");
    /* the file's errors come first */
    EXPECT_SET_FAIL("[train]\nepochs = x\n", "optim.lr=abc", "run.ini:2:");
}

static void test_failure_keeps_config(void)
{
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL), DPT_OK);
    CU_ASSERT_EQUAL(load("[train]\nepochs = 7\nbatch_size = 0\n"), DPT_ERR_CONFIG);
    CU_ASSERT_EQUAL(cfg.train.epochs, 1);
    CU_ASSERT_EQUAL(dpt_config_load(NULL, MINIMAL, "x", NULL, 0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_config_load(&cfg, NULL, "x", NULL, 0), DPT_ERR_ARG);
}

/* ---------------------------------------------------------------- writing */

/* dpt_config_write into a string (caller frees). */
static char *write_text(const dpt_config *c)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return NULL;
    dpt_config_write(c, f);
    fclose(f);
    return buf;
}

static void check_same_layers(const dpt_layer_spec *a, const dpt_layer_spec *b, int n)
{
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(a[i].kind, b[i].kind);
        CU_ASSERT_EQUAL(a[i].units, b[i].units);
        CU_ASSERT_EQUAL(a[i].kh, b[i].kh);
        CU_ASSERT_EQUAL(a[i].kw, b[i].kw);
        CU_ASSERT_EQUAL(a[i].stride, b[i].stride);
        CU_ASSERT_EQUAL(a[i].dilation, b[i].dilation);
        CU_ASSERT_EQUAL(a[i].pad, b[i].pad);
        CU_ASSERT_EQUAL(a[i].tiles, b[i].tiles);
        CU_ASSERT_EQUAL(a[i].act, b[i].act);
        CU_ASSERT_TRUE(a[i].keep == b[i].keep);
        CU_ASSERT_EQUAL(a[i].sync, b[i].sync);
        CU_ASSERT_TRUE(a[i].momentum == b[i].momentum);
        CU_ASSERT_TRUE(a[i].eps == b[i].eps);
        CU_ASSERT_EQUAL(a[i].init.kind, b[i].init.kind);
        CU_ASSERT_TRUE(a[i].init.value == b[i].init.value);
        CU_ASSERT_TRUE(a[i].bias == b[i].bias);
        CU_ASSERT_EQUAL(a[i].bias_prior, b[i].bias_prior);
    }
}

static void check_same_model(const dpt_model_spec *a, const dpt_model_spec *b)
{
    CU_ASSERT_EQUAL_FATAL(a->n_trunk, b->n_trunk);
    check_same_layers(a->trunk, b->trunk, a->n_trunk);
    CU_ASSERT_EQUAL(a->loss, b->loss);
    CU_ASSERT_EQUAL(a->init, b->init);
    CU_ASSERT_EQUAL(a->bn_sync, b->bn_sync);
    CU_ASSERT_EQUAL_FATAL(a->n_heads, b->n_heads);
    for (int h = 0; h < a->n_heads; h++) {
        const dpt_head_spec *x = &a->heads[h], *y = &b->heads[h];
        CU_ASSERT_STRING_EQUAL(x->name, y->name);
        CU_ASSERT_EQUAL_FATAL(x->n_layers, y->n_layers);
        check_same_layers(x->layers, y->layers, x->n_layers);
        CU_ASSERT_EQUAL(x->loss, y->loss);
        CU_ASSERT_TRUE(x->weight == y->weight);
        CU_ASSERT_EQUAL(x->has_map, y->has_map);
        CU_ASSERT_EQUAL(memcmp(x->map, y->map, sizeof x->map), 0);
    }
}

static void check_same(const dpt_config *a, const dpt_config *b)
{
    CU_ASSERT_STRING_EQUAL(a->data.dir, b->data.dir);
    CU_ASSERT_STRING_EQUAL(a->data.train_images, b->data.train_images);
    CU_ASSERT_STRING_EQUAL(a->data.train_labels, b->data.train_labels);
    CU_ASSERT_STRING_EQUAL(a->data.test_images, b->data.test_images);
    CU_ASSERT_STRING_EQUAL(a->data.test_labels, b->data.test_labels);
    check_same_model(&a->model.spec, &b->model.spec);
    CU_ASSERT_EQUAL(a->train.epochs, b->train.epochs);
    CU_ASSERT_EQUAL(a->train.batch_size, b->train.batch_size);
    CU_ASSERT_EQUAL(a->train.seed, b->train.seed);
    CU_ASSERT_EQUAL(a->train.drop_last, b->train.drop_last);
    CU_ASSERT_EQUAL(a->train.max_steps, b->train.max_steps);
    CU_ASSERT_EQUAL(a->optim.method, b->optim.method);
    CU_ASSERT_TRUE(a->optim.lr == b->optim.lr); /* bit-exact through %.17g */
    CU_ASSERT_TRUE(a->optim.momentum == b->optim.momentum);
    CU_ASSERT_TRUE(a->optim.weight_decay == b->optim.weight_decay);
    CU_ASSERT_EQUAL(a->optim.schedule, b->optim.schedule);
    CU_ASSERT_TRUE(a->optim.lr_final == b->optim.lr_final);
    CU_ASSERT_EQUAL(a->optim.decay_steps, b->optim.decay_steps);
    CU_ASSERT_EQUAL(a->eval.mc_samples, b->eval.mc_samples);
    CU_ASSERT_EQUAL(a->log.every, b->log.every);
    CU_ASSERT_EQUAL(a->log.progress, b->log.progress);
    CU_ASSERT_STRING_EQUAL(a->log.metrics, b->log.metrics);
}

/* load(text, sets) -> write -> load -> compare, and the second write is the same text */
static void round_trip(const char *text, const char *const *sets, int n)
{
    static dpt_config first, second;
    dpt_status st = dpt_config_load(&first, text, "a.ini", sets, n);
    if (st != DPT_OK) fprintf(stderr, "\n    %s\n", dpt_error_message());
    CU_ASSERT_EQUAL_FATAL(st, DPT_OK);
    char *out1 = write_text(&first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out1);
    dpt_error_clear();
    CU_ASSERT_EQUAL(dpt_config_load(&second, out1, "written.ini", NULL, 0), DPT_OK);
    if (strlen(dpt_error_message())) fprintf(stderr, "\n    %s\n", dpt_error_message());
    check_same(&first, &second);
    char *out2 = write_text(&second);
    CU_ASSERT_PTR_NOT_NULL(out2);
    if (out2) CU_ASSERT_STRING_EQUAL(out1, out2);
    free(out1);
    free(out2);
}

/* A layer list, of `batchnorm` and `1` items, whose written line for the
 * longest line `limit` needs the "," fallback: too long with ", " between
 * the layers, not with ","; 0 if there is none. */
static int compact_only_list(size_t limit, char *text)
{
    static dpt_layer_spec layers[DPT_MAX_LAYERS];
    size_t room = limit - strlen("layers = ");
    char why[256];
    for (int a = 0; a <= DPT_MAX_LAYERS; a++)
        for (int b = a ? 0 : 1; a + b <= DPT_MAX_LAYERS; b++) {
            text[0] = '\0';
            for (int i = 0; i < a + b; i++) strcat(strcat(text, i ? ", " : ""), i < a ? "batchnorm" : "1");
            int n = 0;
            if (dpt_layer_list_parse(text, layers, DPT_MAX_LAYERS, &n, why, sizeof why) != DPT_OK)
                continue;
            size_t full = dpt_layer_list_format(layers, n, NULL, 0);
            if (full > room && full - (size_t)(n - 1) <= room) return 1;
        }
    return 0;
}

/* every kind of layer and option; too wide for inih's default line */
#define WIDE_LAYERS                                                                         \
    "conv 16 3x3 pad=same init=orthogonal:2 bias=prior, batchnorm sync=true momentum=0.99 " \
    "eps=0.001, relu, tiled 4 3 tiles=3 stride=2, local 2 2x1 dilation=2 pad=full "        \
    "init=zeros, maxpool 2 stride=1, avgpool 3x2, gap, flatten, dropout 0.8, 20 tanh "       \
    "init=constant:0.5 bias=-1.5"

/* heads, [eval] and a CNN trunk that fits the default line */
#define RICH                                                                              \
    BASE "[model]\nlayers = conv 16 3x3 pad=same init=orthogonal:2 bias=prior, "           \
         "batchnorm sync=true, relu, maxpool 2, flatten, dropout 0.5, 20 tanh\n"           \
            "loss = sigmoid_bce\ninit = he_uniform\nbn_sync = no\n"                           \
            "[head.coarse]\nlayers = 64 relu, 3\nloss = mse\nweight = 0.1\n"                  \
            "labels = 9,3 | 1 | 255,0\n[head.fine]\n[head.third]\nlayers = 10\n"              \
            "labels = 0,1,2,3,4,5,6,7,8,9\n[eval]\nmc_samples = 7\n"

static void test_round_trip(void)
{
    dpt_error_clear();
    round_trip(dpt_default_config_text, NULL, 0);
    round_trip(MINIMAL, NULL, 0);
    const char *sets[] = {"optim.lr=0.1", "optim.momentum=0.30000000000000004",
                          "train.seed=18446744073709551615", "train.drop_last=on",
                          "log.metrics=", "log.progress=none", "data.dir=/my data/x",
                          "model.layers=1000000 sigmoid, 999999 tanh, 7 identity",
                          "optim.weight_decay=1e-300", "train.max_steps=9223372036854775807",
                          "eval.mc_samples=10000"};
    round_trip(MINIMAL, sets, 11);
    round_trip(TWO_HEADS, NULL, 0);
    round_trip(RICH, NULL, 0);
    const char *head_sets[] = {"head.fine.weight=0.30000000000000004", "head.coarse.labels=data",
                               "head.third.layers="};
    round_trip(RICH, head_sets, 3);
    const char *wide[] = {"model.layers=" WIDE_LAYERS};
    if (line_limit() >= 4094) round_trip(RICH, wide, 1);
    /* a list that fits one line only with "," between the layers: exists
     * with inih's 198-character lines; with 4094 no 64-layer list is that long */
    static char layers[2048] = "model.layers=";
    if (compact_only_list(line_limit(), layers + strlen(layers))) {
        const char *many[] = {layers};
        round_trip(MINIMAL, many, 1);
        CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL, many, 1), DPT_OK);
        char *compact = write_text(&cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(compact);
        CU_ASSERT_PTR_NULL(strstr(compact, ", "));
        free(compact);
    } else {
        CU_ASSERT(line_limit() >= 4094);
    }
    /* and the written text names every section, heads after [model] */
    CU_ASSERT_EQUAL_FATAL(load(TWO_HEADS), DPT_OK);
    char *out = write_text(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[data]\ndir = /usr/share/datasets/fashion-mnist\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[model]\nlayers = dense 10\nloss = softmax_cross_entropy\n"
                                       "init = auto\nbn_sync = true\n\n[head.coarse]\n"
                                       "layers = dense 64, relu, dense 3\nloss = mse\n"
                                       "weight = 0.5\nlabels = 0,1,2,3,4,6 | 5,7,9 | 8\n\n"
                                       "[head.fine]\nlayers = dropout 0.5, dense 10\n"
                                       "loss = softmax_cross_entropy\nweight = 1\n"
                                       "labels = data\n\n[train]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lr_final = 0.001"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n[eval]\nmc_samples = 0\n\n[diagnostics]\nevery = 0\n"
                                       "lanczos_steps = 20\nnoise_scale = true\nnoise_decay = "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nspectrum = false\n\n[ensemble]\nmembers = 1\n"
                                       "bootstrap = true\n\n[checkpoint]\ndir = checkpoints\n"));
    free(out);
    /* labels are written in ascending order within a group, heads without layers as "" */
    CU_ASSERT_EQUAL_FATAL(load(RICH), DPT_OK);
    out = write_text(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "labels = 3,9 | 1 | 0,255\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[head.fine]\nlayers =\nloss"));
    free(out);
}

static void test_print_keys(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    dpt_config_print_keys(f);
    fclose(f);
    const char *expect[] = {"[data]", "[model]", "[head.NAME]", "[train]", "[optim]", "[eval]",
                            "[log]", "layers", "REQUIRED", "sgd, momentum, nesterov, adagrad",
                            "0 < lr <= 10", "lr / 100", "drop_last", "decay_steps", "metrics",
                            "bn_sync", "mc_samples", "Monte Carlo dropout", "weight",
                            "0 < weight <= 1000", "labels", "0,1,2,3,4,6 | 5,7,9 | 8",
                            "comma-separated layers", "sigmoid_bce", "lecun_normal"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int found = strstr(buf, expect[i]) != NULL;
        if (!found) fprintf(stderr, "\n    --help lacks \"%s\"\n", expect[i]);
        CU_ASSERT_TRUE(found);
    }
    /* wrapped: no line longer than 80 columns */
    for (const char *p = buf; *p;) {
        size_t n = strcspn(p, "\n");
        CU_ASSERT_TRUE(n <= 80);
        p += n + (p[n] == '\n');
    }
    free(buf);
}

static void test_data_path(void)
{
    char out[64];
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[data]\ndir = /d/fm\n"), DPT_OK);
    dpt_config_data_path(&cfg, "a.gz", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "/d/fm/a.gz");
    dpt_config_data_path(&cfg, "/abs/b.gz", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "/abs/b.gz");
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL "[data]\ndir = rel/\n"), DPT_OK);
    dpt_config_data_path(&cfg, "c", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "rel/c");
    /* truncation: always terminated, never past the buffer */
    char tiny[8];
    memset(tiny, '#', sizeof tiny);
    dpt_config_data_path(&cfg, "abcdefghijkl", tiny, sizeof tiny);
    CU_ASSERT_STRING_EQUAL(tiny, "rel/abc");
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    static const dpt_test tests[] = {
        {"default text", test_default_text},
        {"minimal config gets defaults", test_minimal_gets_defaults},
        {"accepted values", test_values_accepted},
        {"lr_final default", test_lr_final_default},
        {"unknown section", test_unknown_section},
        {"unknown key", test_unknown_key},
        {"key in wrong section", test_key_in_wrong_section},
        {"bad int", test_bad_int},
        {"int out of range", test_int_out_of_range},
        {"bad real", test_bad_real},
        {"real out of range", test_real_out_of_range},
        {"bad bool", test_bad_bool},
        {"bad enum", test_bad_enum},
        {"CNN layer list", test_cnn_layers},
        {"bad layers", test_bad_layers},
        {"long layer line", test_long_layer_line},
        {"heads", test_heads},
        {"bad heads", test_bad_heads},
        {"head overrides", test_head_overrides},
        {"eval", test_eval},
        {"bad strings", test_bad_strings},
        {"duplicate key", test_duplicate_key},
        {"missing required key", test_missing_required},
        {"syntax error", test_syntax_error},
        {"line too long", test_line_too_long},
        {"override valid", test_override_valid},
        {"override bad", test_override_bad},
        {"failure keeps config", test_failure_keeps_config},
        {"write round trip", test_round_trip},
        {"print keys", test_print_keys},
        {"data path", test_data_path},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    return dpt_test_run(DPT_ADD_SUITE("config", tests), CU_BRM_VERBOSE);
}
