/* test_config.c - CUnit tests of the configuration parser (src/cli/config.c):
 * defaults, every kind of bad input and its message, --set overrides, the
 * write/load round trip and data path joining. */
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

static dpt_status load(const char *text)
{
    return dpt_config_load(&cfg, text, "run.ini", NULL, 0);
}

static dpt_status load_set(const char *text, const char *const *sets, int n)
{
    return dpt_config_load(&cfg, text, "run.ini", sets, n);
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
    CU_ASSERT_EQUAL(cfg.model.n_layers, 3);
    CU_ASSERT_EQUAL(cfg.model.layers[0].units, 512);
    CU_ASSERT_EQUAL(cfg.model.layers[0].act, DPT_ACT_RELU);
    CU_ASSERT_EQUAL(cfg.model.layers[1].units, 256);
    CU_ASSERT_EQUAL(cfg.model.layers[1].act, DPT_ACT_RELU);
    CU_ASSERT_EQUAL(cfg.model.layers[2].units, 10);
    CU_ASSERT_EQUAL(cfg.model.layers[2].act, DPT_ACT_IDENTITY);
    CU_ASSERT_EQUAL(cfg.model.loss, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_EQUAL(cfg.model.init, DPT_INIT_AUTO);
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
    CU_ASSERT_EQUAL(cfg.model.n_layers, 1);
    CU_ASSERT_EQUAL(cfg.model.layers[0].units, 10);
    CU_ASSERT_EQUAL(cfg.model.layers[0].act, DPT_ACT_IDENTITY);
    CU_ASSERT_EQUAL(cfg.model.loss, DPT_LOSS_SOFTMAX_XENT);
    CU_ASSERT_EQUAL(cfg.model.init, DPT_INIT_AUTO);
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
    CU_ASSERT_EQUAL(cfg.model.n_layers, 3);
    CU_ASSERT_EQUAL(cfg.model.layers[0].act, DPT_ACT_TANH);
    CU_ASSERT_EQUAL(cfg.model.layers[1].act, DPT_ACT_SIGMOID);
    CU_ASSERT_EQUAL(cfg.model.layers[2].units, 2);
    CU_ASSERT_EQUAL(cfg.model.layers[2].act, DPT_ACT_IDENTITY);
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
                "[data], [model], [train], [optim], [log]");
    /* reported even without any key in it */
    EXPECT_FAIL(MINIMAL "\n[bogus]\n", "run.ini:8:", "section [bogus] is unknown", "[optim]");
    EXPECT_FAIL("[optimizer]\nlr = 0.1\n", "run.ini:1:", "did you mean [optim]?");
    EXPECT_FAIL("[zzzzzzzz]\n", "run.ini:1:", "[zzzzzzzz]", "sections:");
}

static void test_unknown_key(void)
{
    EXPECT_FAIL(MINIMAL "lerning_rate = 0.1\n", "run.ini:7:", "[optim]", "'lerning_rate'",
                "did you mean 'lr'?", "method, lr, momentum, weight_decay, schedule, lr_final,"
                " decay_steps");
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
                "allowed: sgd, momentum, nesterov", "did you mean 'nesterov'?");
    EXPECT_FAIL("[model]\nloss = cross_entropy\n", "run.ini:2:",
                "softmax_cross_entropy, mse");
    EXPECT_FAIL("[model]\ninit = he\n", "run.ini:2:", "auto, he_normal, glorot_uniform");
    EXPECT_FAIL("[optim]\nschedule = cosine\n", "run.ini:2:", "constant, linear");
    EXPECT_FAIL("[log]\nprogress = lins\n", "run.ini:2:", "auto, bar, lines, none",
                "did you mean 'lines'?");
}

static void test_bad_layers(void)
{
    EXPECT_FAIL("[model]\nlayers = 512 relu,, 10\n", "run.ini:2:", "[model] layers",
                "layer 2 is empty");
    EXPECT_FAIL("[model]\nlayers = 512 relu, 10,\n", "run.ini:2:", "layer 3 is empty");
    EXPECT_FAIL("[model]\nlayers = 0 relu\n", "run.ini:2:", "layer 1", "out of range",
                "1..1000000");
    EXPECT_FAIL("[model]\nlayers = 10, 1000001\n", "run.ini:2:", "layer 2", "out of range");
    EXPECT_FAIL("[model]\nlayers = 512 swish\n", "run.ini:2:", "'swish'",
                "identity|relu|tanh|sigmoid");
    EXPECT_FAIL("[model]\nlayers = 512 rleu\n", "run.ini:2:", "did you mean 'relu'?");
    EXPECT_FAIL("[model]\nlayers =\n", "run.ini:2:", "no layers given");
    EXPECT_FAIL("[model]\nlayers = relu 512\n", "run.ini:2:", "'relu' is not an integer");
    EXPECT_FAIL("[model]\nlayers = 512 relu tanh\n", "run.ini:2:",
                "more than '<units> [activation]'");
    /* 65 layers: longer than a file line may be, so through --set */
    char set[512] = "model.layers=";
    for (int i = 0; i < DPT_MAX_LAYERS + 1; i++) strcat(set, i ? ",1" : "1");
    EXPECT_SET_FAIL(MINIMAL, set, "--set 'model.layers=", "more than 64 layers");
    /* 64 layers whose text cannot be written back as one INI line */
    char wide[600] = "model.layers=";
    for (int i = 0; i < DPT_MAX_LAYERS; i++) strcat(wide, i ? ",1 tanh" : "1 tanh");
    EXPECT_SET_FAIL(MINIMAL, wide, "too long to write back as one INI line");
    /* 64 short ones are fine */
    set[strlen(set) - 2] = '\0';
    const char *ok[] = {set};
    CU_ASSERT_EQUAL(load_set(MINIMAL, ok, 1), DPT_OK);
    CU_ASSERT_EQUAL(cfg.model.n_layers, DPT_MAX_LAYERS);
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
    CU_ASSERT_EQUAL(cfg.model.n_layers, 2);
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
    char text[1024];
    snprintf(text, sizeof text, "[data]\n\ndir = /");
    size_t n = strlen(text);
    memset(text + n, 'a', 400);
    strcpy(text + n + 400, "\n");
    EXPECT_FAIL(text, "run.ini:3: line too long");
    /* a long comment line is still a long line, and CRLF is fine otherwise */
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

static void check_same(const dpt_config *a, const dpt_config *b)
{
    CU_ASSERT_STRING_EQUAL(a->data.dir, b->data.dir);
    CU_ASSERT_STRING_EQUAL(a->data.train_images, b->data.train_images);
    CU_ASSERT_STRING_EQUAL(a->data.train_labels, b->data.train_labels);
    CU_ASSERT_STRING_EQUAL(a->data.test_images, b->data.test_images);
    CU_ASSERT_STRING_EQUAL(a->data.test_labels, b->data.test_labels);
    CU_ASSERT_EQUAL_FATAL(a->model.n_layers, b->model.n_layers);
    for (int i = 0; i < a->model.n_layers; i++) {
        CU_ASSERT_EQUAL(a->model.layers[i].units, b->model.layers[i].units);
        CU_ASSERT_EQUAL(a->model.layers[i].act, b->model.layers[i].act);
    }
    CU_ASSERT_EQUAL(a->model.loss, b->model.loss);
    CU_ASSERT_EQUAL(a->model.init, b->model.init);
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
    CU_ASSERT_EQUAL(dpt_config_load(&second, out1, "written.ini", NULL, 0), DPT_OK);
    if (strlen(dpt_error_message())) fprintf(stderr, "\n    %s\n", dpt_error_message());
    check_same(&first, &second);
    char *out2 = write_text(&second);
    CU_ASSERT_PTR_NOT_NULL(out2);
    if (out2) CU_ASSERT_STRING_EQUAL(out1, out2);
    free(out1);
    free(out2);
}

static void test_round_trip(void)
{
    dpt_error_clear();
    round_trip(dpt_default_config_text, NULL, 0);
    round_trip(MINIMAL, NULL, 0);
    const char *sets[] = {"optim.lr=0.1", "optim.momentum=0.30000000000000004",
                          "train.seed=18446744073709551615", "train.drop_last=on",
                          "log.metrics=", "log.progress=none", "data.dir=/my data/x",
                          "model.layers=1000000 sigmoid, 999999 tanh, 7 identity",
                          "optim.weight_decay=1e-300", "train.max_steps=9223372036854775807"};
    round_trip(MINIMAL, sets, 10);
    /* 24 layers do not fit one line with ", " between them, but with "," */
    char layers[600] = "model.layers=";
    for (int i = 0; i < 24; i++) strcat(layers, i ? ", 1 relu" : "1 relu");
    const char *many[] = {layers};
    round_trip(MINIMAL, many, 1);
    CU_ASSERT_EQUAL_FATAL(load_set(MINIMAL, many, 1), DPT_OK);
    char *compact = write_text(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(compact);
    CU_ASSERT_PTR_NOT_NULL(strstr(compact, "layers = 1 relu,1 relu,"));
    free(compact);
    /* and the written text names every section */
    CU_ASSERT_EQUAL_FATAL(load(MINIMAL), DPT_OK);
    char *out = write_text(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[data]\ndir = /usr/share/datasets/fashion-mnist\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[model]\nlayers = 10\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lr_final = 0.001"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[log]\n"));
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
    const char *expect[] = {"[data]", "[model]", "[train]", "[optim]", "[log]", "layers",
                            "REQUIRED", "sgd, momentum, nesterov", "0 < lr <= 10",
                            "lr / 100", "drop_last", "decay_steps", "metrics"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, expect[i]));
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
        {"bad layers", test_bad_layers},
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
