/* config.c - the run configuration: a schema table, parsing with libinih,
 * validation with one precise message per error, and writing it back.
 *
 * Everything a key needs (section, type, range, allowed values, default,
 * help, where it lives in dpt_config) is in one table, so that parsing,
 * defaults, --help and dpt_config_write cannot drift apart. The defaults are
 * applied by parsing the table's default text through the same code as user
 * input, so they are validated too.
 *
 * libinih reports neither line numbers to the handler (Debian builds it with
 * INI_HANDLER_LINENO 0) nor empty sections, so the text is fed to
 * ini_parse_stream() by our own line reader, which counts lines, checks
 * section headers and rejects lines that do not fit inih's buffer.
 */
#include "dpt/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

/* ---------------------------------------------------------------- schema */

typedef enum value_type {
    T_STRING, /* char[DPT_PATH_MAX] */
    T_INT,    /* int */
    T_LONG,   /* long */
    T_U64,    /* uint64_t */
    T_BOOL,   /* int, 0 or 1 */
    T_REAL,   /* double */
    T_ENUM,   /* an int-sized enum; value = index in `names` */
    T_LAYERS  /* model.n_layers and model.layers */
} value_type;

/* Flags of a key. */
enum {
    F_REQUIRED = 1,     /* no default: the user must give it */
    F_EMPTY_OK = 2,     /* string: "" is allowed */
    F_MIN_OPEN = 4,     /* real: min itself is not allowed */
    F_MAX_OPEN = 8,     /* real: max itself is not allowed */
    F_NO_MAX = 16,      /* number: no upper bound (besides the type's) */
    F_DEFAULT_LR100 = 32 /* lr_final: defaults to lr / 100, resolved at the end */
};

typedef struct key_spec {
    const char *section;
    const char *key;
    value_type type;
    int flags;
    const char *def;     /* default (or, for a required key, an example) as INI text */
    long lmin, lmax;     /* T_INT, T_LONG */
    double rmin, rmax;   /* T_REAL */
    const char *const *names; /* T_ENUM: allowed values, NULL-terminated */
    const char *aliases; /* names people use for this key (space-separated);
                            only to suggest the right key, never accepted */
    const char *help;
    size_t offset;       /* of the field in dpt_config */
} key_spec;

/* Enum names, indexed by the enum value: the designated initializers keep
 * them right if the enums are ever reordered. */
static const char *const activation_names[] = {
    [DPT_ACT_IDENTITY] = "identity", [DPT_ACT_RELU] = "relu",
    [DPT_ACT_TANH] = "tanh", [DPT_ACT_SIGMOID] = "sigmoid", [DPT_ACT_SIGMOID + 1] = NULL};
static const char *const loss_names[] = {
    [DPT_LOSS_SOFTMAX_XENT] = "softmax_cross_entropy", [DPT_LOSS_MSE] = "mse",
    [DPT_LOSS_MSE + 1] = NULL};
static const char *const init_names[] = {
    [DPT_INIT_AUTO] = "auto", [DPT_INIT_HE_NORMAL] = "he_normal",
    [DPT_INIT_GLOROT_UNIFORM] = "glorot_uniform", [DPT_INIT_GLOROT_UNIFORM + 1] = NULL};
static const char *const method_names[] = {
    [DPT_OPTIM_SGD] = "sgd", [DPT_OPTIM_MOMENTUM] = "momentum",
    [DPT_OPTIM_NESTEROV] = "nesterov", [DPT_OPTIM_NESTEROV + 1] = NULL};
static const char *const schedule_names[] = {
    [DPT_SCHED_CONSTANT] = "constant", [DPT_SCHED_LINEAR] = "linear",
    [DPT_SCHED_LINEAR + 1] = NULL};
static const char *const progress_names[] = {
    [DPT_PROGRESS_AUTO] = "auto", [DPT_PROGRESS_BAR] = "bar",
    [DPT_PROGRESS_LINES] = "lines", [DPT_PROGRESS_NONE] = "none",
    [DPT_PROGRESS_NONE + 1] = NULL};
/* Booleans: even index true, odd index false. */
static const char *const bool_names[] = {"true", "false", "yes", "no", "on", "off",
                                         "1", "0", NULL};

/* Enum fields are written through memcpy of an int; that needs int-sized enums. */
_Static_assert(sizeof(dpt_activation) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_loss_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_init_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_optim_method) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_schedule_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_progress_mode) == sizeof(int), "enum size");

#define LAYER_UNITS_MAX 1000000L
#define LAYERS_EXAMPLE "512 relu, 256 relu, 10"
#define OFF(field) offsetof(dpt_config, field)

static const key_spec keys[] = {
    {"data", "dir", T_STRING, 0, "/usr/share/datasets/fashion-mnist", 0, 0, 0, 0, NULL,
     "data_dir path root", "directory that relative file names below are taken from",
     OFF(data.dir)},
    {"data", "train_images", T_STRING, 0, "train-images-idx3-ubyte.gz", 0, 0, 0, 0, NULL,
     "train train_data", "IDX file (.gz allowed) of the training images", OFF(data.train_images)},
    {"data", "train_labels", T_STRING, 0, "train-labels-idx1-ubyte.gz", 0, 0, 0, 0, NULL,
     NULL, "IDX file of the training labels", OFF(data.train_labels)},
    {"data", "test_images", T_STRING, 0, "t10k-images-idx3-ubyte.gz", 0, 0, 0, 0, NULL,
     "test test_data", "IDX file of the test images", OFF(data.test_images)},
    {"data", "test_labels", T_STRING, 0, "t10k-labels-idx1-ubyte.gz", 0, 0, 0, 0, NULL,
     NULL, "IDX file of the test labels", OFF(data.test_labels)},

    {"model", "layers", T_LAYERS, F_REQUIRED, LAYERS_EXAMPLE, 0, 0, 0, 0, NULL,
     "layer hidden hidden_layers architecture",
     "dense layers in order, the last one is the output", 0},
    {"model", "loss", T_ENUM, 0, "softmax_cross_entropy", 0, 0, 0, 0, loss_names,
     "loss_function criterion", "loss on the last layer's output", OFF(model.loss)},
    {"model", "init", T_ENUM, 0, "auto", 0, 0, 0, 0, init_names,
     "initialization initializer weight_init",
     "weight initialization (auto: He for relu layers, Glorot otherwise)", OFF(model.init)},

    {"train", "epochs", T_INT, F_REQUIRED, "20", 1, 1000000, 0, 0, NULL,
     "num_epochs n_epochs", "passes over the training set", OFF(train.epochs)},
    {"train", "batch_size", T_INT, 0, "64", 1, 1000000, 0, 0, NULL,
     "batch batchsize minibatch", "samples per step on each rank (global batch = batch_size x ranks)",
     OFF(train.batch_size)},
    {"train", "seed", T_U64, 0, "1", 0, 0, 0, 0, NULL, "random_seed rng_seed",
     "seed of the initialization and the shuffling", OFF(train.seed)},
    {"train", "drop_last", T_BOOL, 0, "false", 0, 0, 0, 0, NULL, NULL,
     "drop the ragged last global batch of each epoch", OFF(train.drop_last)},
    {"train", "max_steps", T_LONG, F_NO_MAX, "0", 0, LONG_MAX, 0, 0, NULL, "steps max_iter",
     "stop after this many steps (0: no limit)", OFF(train.max_steps)},

    {"optim", "method", T_ENUM, 0, "sgd", 0, 0, 0, 0, method_names, "optimizer algorithm",
     "optimizer", OFF(optim.method)},
    {"optim", "lr", T_REAL, F_REQUIRED | F_MIN_OPEN, "0.05", 0, 0, 0.0, 10.0, NULL,
     "learning_rate eta", "learning rate of the first step", OFF(optim.lr)},
    {"optim", "momentum", T_REAL, F_MAX_OPEN, "0.9", 0, 0, 0.0, 1.0, NULL, "alpha beta",
     "momentum coefficient (momentum and nesterov)", OFF(optim.momentum)},
    {"optim", "weight_decay", T_REAL, 0, "0", 0, 0, 0.0, 1.0, NULL, "l2 wd decay",
     "L2 penalty: adds weight_decay x theta to the gradient", OFF(optim.weight_decay)},
    {"optim", "schedule", T_ENUM, 0, "constant", 0, 0, 0, 0, schedule_names,
     "lr_schedule scheduler", "learning-rate schedule", OFF(optim.schedule)},
    {"optim", "lr_final", T_REAL, F_NO_MAX | F_DEFAULT_LR100, NULL, 0, 0, 0.0, 0.0, NULL,
     "final_lr min_lr lr_min lr_end", "learning rate at the end of the linear decay",
     OFF(optim.lr_final)},
    {"optim", "decay_steps", T_LONG, F_NO_MAX, "0", 0, LONG_MAX, 0, 0, NULL,
     "lr_decay_steps decay", "steps of the linear decay (0: the whole run)",
     OFF(optim.decay_steps)},

    {"log", "every", T_INT, 0, "100", 1, 100000000, 0, 0, NULL,
     "interval log_every frequency", "steps between log lines and metrics records",
     OFF(log.every)},
    {"log", "progress", T_ENUM, 0, "auto", 0, 0, 0, 0, progress_names, "progress_bar display",
     "progress display (auto: bar on a terminal, else lines)", OFF(log.progress)},
    {"log", "metrics", T_STRING, F_EMPTY_OK, "dptrain-metrics.jsonl", 0, 0, 0, 0, NULL,
     "metrics_file jsonl output", "JSON-lines metrics file (empty: none)", OFF(log.metrics)},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

typedef struct section_spec {
    const char *name;
    const char *aliases; /* for suggestions only, like key_spec.aliases */
    const char *help;
} section_spec;

static const section_spec sections[] = {
    {"data", "dataset datasets files input", "where the IDX files are"},
    {"model", "net network nn", "layers, loss, initialization"},
    {"train", "training trainer", "epochs, per-rank batch size, seed, ragged-batch policy"},
    {"optim", "optimizer optimiser optimization sgd", "optimizer, learning rate and its schedule"},
    {"log", "logging logs output", "progress display and the JSON-lines metrics file"},
};
#define N_SECTIONS ((int)(sizeof sections / sizeof sections[0]))

/* ---------------------------------------------------------------- small helpers */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }
static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                                    c == '\f' || c == '\v'; }

static int same_nocase(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
    return lower((unsigned char)*a) == lower((unsigned char)*b);
}

/* Levenshtein distance, case-insensitive (so 'LR' suggests 'lr'). Names longer
 * than the work rows are simply "far" from everything. */
#define LEV_MAX 64
static int edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    if (na >= LEV_MAX || nb >= LEV_MAX) return INT_MAX / 2;
    int row[LEV_MAX + 1];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int cost = lower((unsigned char)a[i - 1]) != lower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* Distance of `typo` to `name` and to each of its space-separated aliases. */
static int name_distance(const char *typo, const char *name, const char *aliases)
{
    int best = edit_distance(typo, strlen(typo), name);
    for (const char *p = aliases; p && *p;) {
        size_t n = strcspn(p, " ");
        char alias[LEV_MAX];
        if (n < sizeof alias) {
            memcpy(alias, p, n);
            alias[n] = '\0';
            int d = edit_distance(typo, strlen(typo), alias);
            if (d < best) best = d;
        }
        p += n + (p[n] == ' ');
    }
    return best;
}

/* A suggestion is worth making if the typo is close relative to its length,
 * but not a complete replacement of a short word ('x' is no typo of 'lr'). */
static int close_enough(const char *typo, int dist)
{
    int len = (int)strlen(typo);
    int limit = len / 3 > 2 ? len / 3 : 2;
    return dist <= limit && (dist < len || dist == 0);
}

/* s for a one-line message: cut to a readable length, control characters
 * (a newline in a --set value) shown as '?'. */
static const char *shorten(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s), keep = n < size ? n : size - 4;
    for (size_t i = 0; i < keep; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (keep < n) memcpy(buf + keep, "...", 3), keep += 3;
    buf[keep] = '\0';
    return buf;
}

static const key_spec *find_key(const char *section, const char *key)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
            return &keys[i];
    return NULL;
}

static int section_known(const char *name)
{
    for (int i = 0; i < N_SECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0) return 1;
    return 0;
}

/* ---------------------------------------------------------------- descriptions */

/* "sgd, momentum, nesterov" */
static void join_names(const char *const *names, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
}

static void describe_real(const key_spec *k, char *buf, size_t size)
{
    if (k->flags & F_NO_MAX)
        snprintf(buf, size, "a real number %s %g", (k->flags & F_MIN_OPEN) ? ">" : ">=",
                 k->rmin);
    else
        snprintf(buf, size, "a real number with %g %s %s %s %g", k->rmin,
                 (k->flags & F_MIN_OPEN) ? "<" : "<=", k->key,
                 (k->flags & F_MAX_OPEN) ? "<" : "<=", k->rmax);
}

/* What a key accepts, for messages and --help. */
static void describe_allowed(const key_spec *k, char *buf, size_t size)
{
    switch (k->type) {
    case T_STRING:
        snprintf(buf, size, "%s", (k->flags & F_EMPTY_OK) ? "a file name (empty: none)"
                                                          : "a non-empty path");
        break;
    case T_INT:
    case T_LONG:
        if (k->flags & F_NO_MAX) snprintf(buf, size, "an integer >= %ld", k->lmin);
        else snprintf(buf, size, "an integer in %ld..%ld", k->lmin, k->lmax);
        break;
    case T_U64:
        snprintf(buf, size, "an integer in 0..%" PRIu64, UINT64_MAX);
        break;
    case T_BOOL:
        join_names(bool_names, buf, size);
        break;
    case T_REAL:
        describe_real(k, buf, size);
        break;
    case T_ENUM:
        join_names(k->names, buf, size);
        break;
    case T_LAYERS:
        snprintf(buf, size, "1..%d comma-separated '<units> [activation]', units 1..%ld, "
                 "activation identity|relu|tanh|sigmoid (default identity)",
                 DPT_MAX_LAYERS, LAYER_UNITS_MAX);
        break;
    }
}

/* "did you mean 'nesterov'?" for the nearest of `names`, or "". */
static void suggest_name(const char *typo, const char *const *names, char *buf, size_t size)
{
    int best = INT_MAX, at = -1;
    for (int i = 0; names[i]; i++) {
        int d = edit_distance(typo, strlen(typo), names[i]);
        if (d < best) best = d, at = i;
    }
    buf[0] = '\0';
    if (at >= 0 && close_enough(typo, best))
        snprintf(buf, size, "; did you mean '%s'?", names[at]);
}

/* ---------------------------------------------------------------- values */

/* `where` is "FILE:LINE" or "--set 'ARG'": every message starts with it. */
static dpt_status value_error(const char *where, const key_spec *k, const char *value,
                              const char *problem, const char *suggestion)
{
    char allowed[256], shown[80];
    describe_allowed(k, allowed, sizeof allowed);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s = %s: %s; allowed: %s%s", where, k->section,
                    k->key, *value ? shorten(value, shown, sizeof shown) : "''", problem,
                    allowed, suggestion ? suggestion : "");
}

typedef enum num_result { NUM_OK, NUM_BAD, NUM_RANGE } num_result;

/* strtol that must consume everything: no blanks, no trailing junk. */
static num_result parse_long(const char *s, long *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0') return NUM_BAD;
    if (errno == ERANGE) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static num_result parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0') return NUM_BAD;
    /* strtoull quietly negates "-1"; a seed is never negative */
    if (errno == ERANGE || *s == '-' || v > UINT64_MAX) return NUM_RANGE;
    *out = (uint64_t)v;
    return NUM_OK;
}

static num_result parse_real(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return NUM_BAD;
    if (!isfinite(v)) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int real_in_range(const key_spec *k, double v)
{
    if ((k->flags & F_MIN_OPEN) ? !(v > k->rmin) : !(v >= k->rmin)) return 0;
    if (k->flags & F_NO_MAX) return 1;
    return (k->flags & F_MAX_OPEN) ? v < k->rmax : v <= k->rmax;
}

static dpt_status set_integer(dpt_config *cfg, const key_spec *k, const char *value,
                              const char *where)
{
    long v = 0;
    num_result r = parse_long(value, &v);
    if (r == NUM_BAD) return value_error(where, k, value, "not an integer", NULL);
    if (r == NUM_RANGE || v < k->lmin || v > k->lmax)
        return value_error(where, k, value, "out of range", NULL);
    if (k->type == T_INT) {
        int iv = (int)v; /* in range: lmax of every T_INT key fits an int */
        memcpy((char *)cfg + k->offset, &iv, sizeof iv);
    } else {
        memcpy((char *)cfg + k->offset, &v, sizeof v);
    }
    return DPT_OK;
}

static dpt_status set_u64(dpt_config *cfg, const key_spec *k, const char *value,
                          const char *where)
{
    uint64_t v = 0;
    num_result r = parse_u64(value, &v);
    if (r == NUM_BAD) return value_error(where, k, value, "not an integer", NULL);
    if (r == NUM_RANGE) return value_error(where, k, value, "out of range", NULL);
    memcpy((char *)cfg + k->offset, &v, sizeof v);
    return DPT_OK;
}

static dpt_status set_real(dpt_config *cfg, const key_spec *k, const char *value,
                           const char *where)
{
    double v = 0.0;
    num_result r = parse_real(value, &v);
    if (r == NUM_BAD) return value_error(where, k, value, "not a real number", NULL);
    if (r == NUM_RANGE) return value_error(where, k, value, "not a finite number", NULL);
    if (!real_in_range(k, v)) return value_error(where, k, value, "out of range", NULL);
    memcpy((char *)cfg + k->offset, &v, sizeof v);
    return DPT_OK;
}

/* Index of `value` in `names` (case-insensitive), or -1. */
static int name_index(const char *const *names, const char *value)
{
    for (int i = 0; names[i]; i++)
        if (same_nocase(names[i], value)) return i;
    return -1;
}

static dpt_status set_choice(dpt_config *cfg, const key_spec *k, const char *value,
                             const char *where)
{
    const char *const *names = k->type == T_BOOL ? bool_names : k->names;
    int i = name_index(names, value);
    if (i < 0) {
        char hint[96];
        suggest_name(value, names, hint, sizeof hint);
        return value_error(where, k, value,
                           k->type == T_BOOL ? "not a boolean" : "not an allowed value", hint);
    }
    int v = k->type == T_BOOL ? i % 2 == 0 : i;
    memcpy((char *)cfg + k->offset, &v, sizeof v);
    return DPT_OK;
}

/* The longest line dpt_config_write may produce: inih's line buffer less the
 * newline and the terminating NUL (our reader refuses anything longer). */
#define WRITE_LINE_MAX (INI_MAX_LINE - 2)

/* A string must also survive dpt_config_write and a second parse: inih trims
 * blanks, ends a line at a newline, and reads ';' after a blank as a comment. */
static const char *string_problem(const key_spec *k, const char *value, size_t line_max,
                                  char *buf, size_t size)
{
    size_t n = strlen(value);
    if (n == 0) return (k->flags & F_EMPTY_OK) ? NULL : "must not be empty";
    if (n >= DPT_PATH_MAX) {
        snprintf(buf, size, "too long (%zu characters; at most %d)", n, DPT_PATH_MAX - 1);
        return buf;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return "contains a control character";
        if (c == ';' && (i == 0 || is_blank((unsigned char)value[i - 1])))
            return "contains ';' at the start or after a blank, which INI reads as a comment";
    }
    if (is_blank((unsigned char)value[0]) || is_blank((unsigned char)value[n - 1]))
        return "starts or ends with a blank, which INI drops";
    if (strlen(k->key) + 3 + n > line_max) {
        snprintf(buf, size, "too long for one INI line (%zu characters; at most %zu)", n,
                 line_max - strlen(k->key) - 3);
        return buf;
    }
    return NULL;
}

static dpt_status set_string(dpt_config *cfg, const key_spec *k, const char *value,
                             const char *where, size_t line_max)
{
    char buf[128];
    const char *problem = string_problem(k, value, line_max, buf, sizeof buf);
    if (problem) return value_error(where, k, value, problem, NULL);
    memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
    return DPT_OK;
}

/* "512 relu" + sep + "10": identity is left out, as users write it. */
static size_t format_layers(const dpt_layer_spec *layers, int n, const char *sep,
                            char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *act = layers[i].act == DPT_ACT_IDENTITY ? "" : activation_names[layers[i].act];
        char item[64];
        int w = snprintf(item, sizeof item, "%s%d%s%s", i ? sep : "", layers[i].units,
                         *act ? " " : "", act);
        if (used + (size_t)w < size) memcpy(buf + used, item, (size_t)w + 1);
        used += (size_t)w;
    }
    return used; /* the full length, even if buf was too small */
}

/* One "<units> [activation]" item (already trimmed, not terminated). */
static dpt_status parse_layer(const char *item, size_t len, int index, dpt_layer_spec *out,
                              const key_spec *k, const char *value, const char *where)
{
    char text[64], problem[160], hint[96] = "";
    if (len == 0) snprintf(problem, sizeof problem, "layer %d is empty", index);
    else if (len >= sizeof text) snprintf(problem, sizeof problem, "layer %d is too long", index);
    else problem[0] = '\0';
    if (problem[0]) return value_error(where, k, value, problem, NULL);
    memcpy(text, item, len);
    text[len] = '\0';
    char *act = text + strcspn(text, " \t");
    if (*act) *act++ = '\0';
    while (is_blank((unsigned char)*act)) act++;
    long units = 0;
    num_result r = parse_long(text, &units);
    int a = *act ? name_index(activation_names, act) : DPT_ACT_IDENTITY;
    if (r == NUM_BAD)
        snprintf(problem, sizeof problem, "layer %d: units '%s' is not an integer", index, text);
    else if (r == NUM_RANGE || units < 1 || units > LAYER_UNITS_MAX)
        snprintf(problem, sizeof problem, "layer %d: units %s out of range 1..%ld", index, text,
                 LAYER_UNITS_MAX);
    else if (act[strcspn(act, " \t")] != '\0')
        snprintf(problem, sizeof problem, "layer %d: '%s' has more than '<units> [activation]'",
                 index, act);
    else if (a < 0) {
        snprintf(problem, sizeof problem, "layer %d: activation '%s' is unknown", index, act);
        suggest_name(act, activation_names, hint, sizeof hint);
    }
    if (problem[0]) return value_error(where, k, value, problem, hint);
    out->units = (int)units;
    out->act = (dpt_activation)a;
    return DPT_OK;
}

/* "512 relu, 256 relu, 10" -> model.layers; all or nothing. */
static dpt_status set_layers(dpt_config *cfg, const key_spec *k, const char *value,
                             const char *where, size_t line_max)
{
    dpt_layer_spec layers[DPT_MAX_LAYERS];
    int n = 0;
    if (*value == '\0') return value_error(where, k, value, "no layers given", NULL);
    for (const char *p = value;; n++) {
        size_t len = strcspn(p, ",");
        if (n == DPT_MAX_LAYERS) {
            char problem[64];
            snprintf(problem, sizeof problem, "more than %d layers", DPT_MAX_LAYERS);
            return value_error(where, k, value, problem, NULL);
        }
        const char *item = p, *end = p + len;
        while (item < end && is_blank((unsigned char)*item)) item++;
        while (end > item && is_blank((unsigned char)end[-1])) end--;
        dpt_status st = parse_layer(item, (size_t)(end - item), n + 1, &layers[n], k, value, where);
        if (st != DPT_OK) return st;
        if (p[len] == '\0') break;
        p += len + 1;
    }
    n++;
    char canon[2 * DPT_PATH_MAX];
    if (strlen(k->key) + 3 + format_layers(layers, n, ",", canon, sizeof canon) > line_max)
        return value_error(where, k, value, "too long to write back as one INI line", NULL);
    cfg->model.n_layers = n;
    memcpy(cfg->model.layers, layers, (size_t)n * sizeof layers[0]);
    return DPT_OK;
}

/* Checks `value` against key k and stores it in cfg; on error records the
 * message and leaves cfg's field as it was. */
static dpt_status apply_value(dpt_config *cfg, const key_spec *k, const char *value,
                              const char *where, size_t line_max)
{
    switch (k->type) {
    case T_STRING: return set_string(cfg, k, value, where, line_max);
    case T_INT:
    case T_LONG: return set_integer(cfg, k, value, where);
    case T_U64: return set_u64(cfg, k, value, where);
    case T_BOOL:
    case T_ENUM: return set_choice(cfg, k, value, where);
    case T_REAL: return set_real(cfg, k, value, where);
    case T_LAYERS: return set_layers(cfg, k, value, where, line_max);
    }
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s: unknown key type", where, k->section, k->key);
}

/* ---------------------------------------------------------------- names */

/* "method, lr, momentum, ..." */
static void list_keys(const char *section, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_KEYS && used < size; i++)
        if (strcmp(keys[i].section, section) == 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     keys[i].key);
}

static void list_sections(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_SECTIONS && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s[%s]", i ? ", " : "",
                                 sections[i].name);
}

/* The nearest key to `typo`: in `section` first; an exact name in another
 * section wins, since then the key was only put in the wrong place. */
static void suggest_key(const char *section, const char *typo, char *buf, size_t size)
{
    const key_spec *local = NULL, *other = NULL;
    int dl = INT_MAX, dot = INT_MAX;
    for (int i = 0; i < N_KEYS; i++) {
        int same = strcmp(keys[i].section, section) == 0;
        int d = name_distance(typo, keys[i].key, keys[i].aliases);
        if (same && d < dl) dl = d, local = &keys[i];
        if (!same && d < dot) dot = d, other = &keys[i];
    }
    buf[0] = '\0';
    if (other && dot == 0 && dl != 0)
        snprintf(buf, size, "did you mean [%s] %s? ", other->section, other->key);
    else if (local && close_enough(typo, dl))
        snprintf(buf, size, "did you mean '%s'? ", local->key);
    else if (other && close_enough(typo, dot))
        snprintf(buf, size, "did you mean [%s] %s? ", other->section, other->key);
}

static void suggest_section(const char *typo, char *buf, size_t size)
{
    int best = INT_MAX, at = -1;
    for (int i = 0; i < N_SECTIONS; i++) {
        int d = name_distance(typo, sections[i].name, sections[i].aliases);
        if (d < best) best = d, at = i;
    }
    buf[0] = '\0';
    if (at >= 0 && close_enough(typo, best))
        snprintf(buf, size, "did you mean [%s]? ", sections[at].name);
}

static dpt_status unknown_section(const char *where, const char *name)
{
    char hint[64], all[128], shown[80];
    suggest_section(name, hint, sizeof hint);
    list_sections(all, sizeof all);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: section [%s] is unknown; %ssections: %s", where,
                    shorten(name, shown, sizeof shown), hint, all);
}

static dpt_status unknown_key(const char *where, const char *section, const char *key)
{
    char hint[96], all[256], shown[80];
    suggest_key(section, key, hint, sizeof hint);
    if (*section == '\0')
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: key '%s' comes before any [section]; %s"
                        "put it under its section", where, shorten(key, shown, sizeof shown),
                        hint);
    list_keys(section, all, sizeof all);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] key '%s' is unknown; %skeys of [%s]: %s", where,
                    section, shorten(key, shown, sizeof shown), hint, section, all);
}

/* ---------------------------------------------------------------- parsing */

typedef struct parse_ctx {
    dpt_config *cfg;
    const char *source;   /* the file's name in messages */
    const char *next;     /* the text not yet handed to inih */
    int line;             /* number of the line inih is working on */
    size_t line_max;      /* longest line (without newline) inih's buffer takes */
    int file_line[N_KEYS]; /* line where the file gave each key; 0: not given */
    int overridden[N_KEYS];
    int failed_line;      /* line of the first error we found; 0: none */
} parse_ctx;

static void file_where(const parse_ctx *ctx, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%d", ctx->source, ctx->line);
}

/* Checks a "[name]" line the way inih will read it (up to ']' unless an
 * inline comment comes first); a malformed header is left to inih, which
 * reports it as a syntax error. Sections are checked here and not in the
 * handler because inih calls no handler for a section without keys. */
static int check_section_line(parse_ctx *ctx, const char *line)
{
    if (ctx->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3; /* UTF-8 BOM */
    if (*line != '[') return 0;
    const char *end = line + 1;
    for (int was_blank = 0; *end && *end != ']' && !(was_blank && *end == ';'); end++)
        was_blank = is_blank((unsigned char)*end);
    if (*end != ']') return 0;
    char name[DPT_PATH_MAX], where[DPT_PATH_MAX + 32];
    snprintf(name, sizeof name, "%.*s", (int)(end - line - 1), line + 1);
    if (section_known(name)) return 0;
    file_where(ctx, where, sizeof where);
    unknown_section(where, name);
    return -1;
}

/* ini_reader: hands inih one line of the text per call, so that ctx->line
 * is the line of every handler call. Leading blanks are dropped: inih would
 * take an indented line as the continuation of the previous value, which
 * only hides mistakes in a file like ours. */
static char *read_line(char *buf, int num, void *stream)
{
    parse_ctx *ctx = stream;
    if (ctx->failed_line || *ctx->next == '\0') return NULL;
    const char *start = ctx->next;
    size_t len = strcspn(start, "\n");
    ctx->next = start + len + (start[len] == '\n');
    ctx->line++;
    if (len > 0 && start[len - 1] == '\r') len--;
    /* room for the line, a '\n' (so inih never waits for the rest) and NUL */
    ctx->line_max = num > 2 ? (size_t)num - 2 : 0;
    if (len > ctx->line_max) {
        char where[DPT_PATH_MAX + 32];
        file_where(ctx, where, sizeof where);
        DPT_FAIL(DPT_ERR_CONFIG, "%s: line too long (%zu characters; at most %zu)", where,
                 len, ctx->line_max);
        ctx->failed_line = ctx->line;
        return NULL;
    }
    while (len > 0 && (*start == ' ' || *start == '\t')) start++, len--;
    memcpy(buf, start, len);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    if (check_section_line(ctx, buf) != 0) {
        ctx->failed_line = ctx->line;
        return NULL;
    }
    return buf;
}

/* ini_handler: one "key = value" of the file. Returns 0 on an error, after
 * which read_line ends the text, so the first error in text order wins. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *ctx = user;
    char where[DPT_PATH_MAX + 32];
    file_where(ctx, where, sizeof where);
    const key_spec *k = section_known(section) ? find_key(section, key) : NULL;
    dpt_status st = DPT_OK;
    if (!k) {
        st = section_known(section) || !*section ? unknown_key(where, section, key)
                                                 : unknown_section(where, section);
    } else if (ctx->file_line[k - keys]) {
        st = DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s is given twice (lines %d and %d); keep one",
                      where, section, key, ctx->file_line[k - keys], ctx->line);
    } else {
        ctx->file_line[k - keys] = ctx->line;
        st = apply_value(ctx->cfg, k, value, where, ctx->line_max);
    }
    if (st == DPT_OK) return 1;
    ctx->failed_line = ctx->line;
    return 0;
}

static dpt_status parse_text(parse_ctx *ctx, const char *text)
{
    ctx->next = text;
    int rc = ini_parse_stream(read_line, ctx, on_key, ctx);
    /* inih goes on after a syntax error, so an error of ours may come later
     * in the text; the earlier line is the one to report */
    if (rc > 0 && (ctx->failed_line == 0 || rc < ctx->failed_line))
        return DPT_FAIL(DPT_ERR_CONFIG,
                        "%s:%d: syntax error: expected 'key = value' or '[section]'",
                        ctx->source, rc);
    if (rc < 0) return DPT_FAIL(DPT_ERR_NOMEM, "%s: the INI parser ran out of memory",
                                ctx->source);
    return ctx->failed_line ? DPT_ERR_CONFIG : DPT_OK;
}

/* ---------------------------------------------------------------- --set */

static void trim_span(const char **begin, const char **end)
{
    while (*begin < *end && is_blank((unsigned char)**begin)) (*begin)++;
    while (*end > *begin && is_blank((unsigned char)(*end)[-1])) (*end)--;
}

/* Copies [begin, end) into buf; a name too long for buf is cut, which
 * cannot turn it into a valid name since all of them are short. */
static void copy_span(const char *begin, const char *end, char *buf, size_t size)
{
    size_t n = (size_t)(end - begin);
    if (n >= size) n = size - 1;
    memcpy(buf, begin, n);
    buf[n] = '\0';
}

/* An argument without '=' or without "section." (`name` is its key part). */
static dpt_status malformed_override(const char *where, int has_eq, int has_dot,
                                     const char *name)
{
    char hint[96] = "";
    if (!has_dot) suggest_key("", name, hint, sizeof hint);
    size_t n = strlen(hint);
    if (n > 0) hint[n - 1] = '\0'; /* the trailing blank */
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: %s; expected section.key=value (e.g. --set "
                    "optim.lr=0.05)%s%s", where, has_eq ? "no 'section.' before the key"
                    : "no '=' and value", n ? "; " : "", hint);
}

/* One --set argument "section.key=value"; it may re-set a key of the file. */
static dpt_status apply_override(parse_ctx *ctx, const char *arg)
{
    char where[160], shown[128], section[64], key[64], value[2 * DPT_PATH_MAX];
    snprintf(where, sizeof where, "--set '%s'", shorten(arg, shown, sizeof shown));
    const char *eq = strchr(arg, '=');
    const char *name = arg, *name_end = eq ? eq : arg + strlen(arg);
    trim_span(&name, &name_end);
    const char *dot = memchr(name, '.', (size_t)(name_end - name));
    copy_span(dot ? dot + 1 : name, name_end, key, sizeof key);
    if (!eq || !dot) return malformed_override(where, eq != NULL, dot != NULL, key);
    copy_span(name, dot, section, sizeof section);
    const char *val = eq + 1, *val_end = eq + 1 + strlen(eq + 1);
    trim_span(&val, &val_end);
    if ((size_t)(val_end - val) >= sizeof value)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: the value is too long (%zu characters)", where,
                        (size_t)(val_end - val));
    copy_span(val, val_end, value, sizeof value);
    if (!section_known(section)) return unknown_section(where, section);
    const key_spec *k = find_key(section, key);
    if (!k) return unknown_key(where, section, key);
    dpt_status st = apply_value(ctx->cfg, k, value, where, ctx->line_max);
    if (st == DPT_OK) ctx->overridden[k - keys] = 1;
    return st;
}

/* ---------------------------------------------------------------- loading */

static int key_given(const parse_ctx *ctx, int i)
{
    return ctx->file_line[i] != 0 || ctx->overridden[i];
}

/* After everything is applied, so that an override can supply a key the
 * file lacks, and lr_final follows an overridden lr. */
static dpt_status finish(parse_ctx *ctx)
{
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        if ((k->flags & F_REQUIRED) && !key_given(ctx, i))
            return DPT_FAIL(DPT_ERR_CONFIG, "%s: required key [%s] %s is missing (e.g. %s = %s)",
                            ctx->source, k->section, k->key, k->key, k->def);
        if ((k->flags & F_DEFAULT_LR100) && !key_given(ctx, i))
            memcpy((char *)ctx->cfg + k->offset, &(double){ctx->cfg->optim.lr / 100.0},
                   sizeof(double));
    }
    return DPT_OK;
}

/* Every non-required key from its default text; required ones get their
 * example so that the struct never holds garbage, although the load fails
 * unless the user gives them. The defaults go through the same checks as
 * user input, so a broken table shows up as an error, not as bad values. */
static dpt_status set_defaults(dpt_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < N_KEYS; i++) {
        if (!keys[i].def) continue;
        dpt_status st = apply_value(cfg, &keys[i], keys[i].def, "built-in default",
                                    WRITE_LINE_MAX);
        if (st != DPT_OK) return st;
    }
    return DPT_OK;
}

dpt_status dpt_config_load(dpt_config *cfg, const char *text, const char *source_name,
                           const char *const *overrides, int n_overrides)
{
    if (!cfg || !text || n_overrides < 0 || (n_overrides > 0 && !overrides))
        return DPT_FAIL(DPT_ERR_ARG, "dpt_config_load: NULL config/text or bad overrides");
    /* work on a copy: on failure the caller's cfg stays as it was */
    dpt_config work;
    parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = &work;
    ctx.source = source_name ? source_name : "<config>";
    ctx.line_max = WRITE_LINE_MAX;
    dpt_status st = set_defaults(&work);
    if (st == DPT_OK) st = parse_text(&ctx, text);
    for (int i = 0; i < n_overrides && st == DPT_OK; i++)
        st = overrides[i] ? apply_override(&ctx, overrides[i])
                          : DPT_FAIL(DPT_ERR_ARG, "dpt_config_load: override %d is NULL", i);
    if (st == DPT_OK) st = finish(&ctx);
    if (st == DPT_OK) *cfg = work;
    return st;
}

/* ---------------------------------------------------------------- writing */

/* The value of key k in cfg, in the form dpt_config_load reads back. */
static void format_value(const dpt_config *cfg, const key_spec *k, char *buf, size_t size)
{
    const char *field = (const char *)cfg + k->offset;
    int i = 0;
    long l = 0;
    uint64_t u = 0;
    double r = 0.0;
    switch (k->type) {
    case T_STRING: snprintf(buf, size, "%s", field); break;
    case T_INT: memcpy(&i, field, sizeof i); snprintf(buf, size, "%d", i); break;
    case T_LONG: memcpy(&l, field, sizeof l); snprintf(buf, size, "%ld", l); break;
    case T_U64: memcpy(&u, field, sizeof u); snprintf(buf, size, "%" PRIu64, u); break;
    case T_BOOL: memcpy(&i, field, sizeof i); snprintf(buf, size, "%s", i ? "true" : "false"); break;
    case T_REAL: memcpy(&r, field, sizeof r); snprintf(buf, size, "%.17g", r); break;
    case T_ENUM:
        memcpy(&i, field, sizeof i);
        /* an enum value out of the table is written as a number, which
         * dpt_config_load then rejects instead of silently changing it */
        for (int n = 0; k->names[n]; n++)
            if (n == i) { snprintf(buf, size, "%s", k->names[n]); return; }
        snprintf(buf, size, "%d", i);
        break;
    case T_LAYERS: {
        int n = cfg->model.n_layers < 0 ? 0 : cfg->model.n_layers;
        if (n > DPT_MAX_LAYERS) n = DPT_MAX_LAYERS;
        size_t room = WRITE_LINE_MAX - strlen(k->key) - 3;
        if (format_layers(cfg->model.layers, n, ", ", buf, size) > room)
            format_layers(cfg->model.layers, n, ",", buf, size); /* still one line */
        break;
    }
    }
}

void dpt_config_write(const dpt_config *cfg, FILE *out)
{
    const char *section = "";
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        char value[2 * DPT_PATH_MAX];
        if (strcmp(section, k->section) != 0) {
            fprintf(out, "%s[%s]\n", *section ? "\n" : "", k->section);
            section = k->section;
        }
        format_value(cfg, k, value, sizeof value);
        fprintf(out, "%s =%s%s\n", k->key, *value ? " " : "", value);
    }
}

void dpt_config_print_keys(FILE *out)
{
    fprintf(out, "Configuration keys (INI; change any with --set section.key=value):\n");
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(out, "\n[%s]  %s\n", sections[s].name, sections[s].help);
        for (int i = 0; i < N_KEYS; i++) {
            const key_spec *k = &keys[i];
            if (strcmp(k->section, sections[s].name) != 0) continue;
            char allowed[256];
            describe_allowed(k, allowed, sizeof allowed);
            if (k->flags & F_REQUIRED)
                fprintf(out, "  %-13s REQUIRED, e.g. %s = %s\n", k->key, k->key, k->def);
            else if (k->flags & F_DEFAULT_LR100)
                fprintf(out, "  %-13s default: lr / 100\n", k->key);
            else
                fprintf(out, "  %-13s default: %s\n", k->key, *k->def ? k->def : "(empty)");
            fprintf(out, "  %-13s %s\n  %-13s %s\n", "", allowed, "", k->help);
        }
    }
}

void dpt_config_data_path(const dpt_config *cfg, const char *name, char *out, size_t out_size)
{
    if (!out || out_size == 0) return;
    if (!name) name = "";
    const char *dir = cfg ? cfg->data.dir : "";
    size_t n = strlen(dir);
    if (name[0] == '/' || n == 0)
        snprintf(out, out_size, "%s", name);
    else
        snprintf(out, out_size, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", name);
}
