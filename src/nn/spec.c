/* The layer-list grammar of [model] layers and [head.*] layers.
 *
 *   list   := item { "," item }
 *   item   := UNITS [act]                       dense layer (+ activation)
 *           | dense UNITS [act] [opt...]
 *           | conv FILTERS K [act] [opt...]     K: "3" or "3x5"
 *           | local FILTERS K [act] [opt...]    locally connected
 *           | tiled FILTERS K [act] [opt...]    tiled (tiles=t, default 2)
 *           | maxpool K [stride=S] | avgpool K [stride=S]   (stride defaults to K)
 *           | gap | flatten | relu | tanh | sigmoid | identity
 *           | dropout KEEP                      keep probability in (0, 1]
 *           | batchnorm [momentum=M] [eps=E] [sync=true|false]
 *   opt    := stride=S | dilation=D | pad=valid|same|full | tiles=T
 *           | init=NAME[:VALUE] | bias=VALUE | bias=prior
 *
 * A trailing activation word becomes an activation layer of its own, so
 * "512 relu" is "dense 512, relu".
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/model.h"

#define MAX_UNITS 1000000
#define MAX_KERNEL 64
#define ITEM_MAX 256

static const char *const kind_names[DPT_LAYER_KIND_COUNT_] = {
    [DPT_LAYER_DENSE] = "dense",     [DPT_LAYER_CONV2D] = "conv",     [DPT_LAYER_LOCAL] = "local",
    [DPT_LAYER_TILED] = "tiled",     [DPT_LAYER_MAXPOOL] = "maxpool", [DPT_LAYER_AVGPOOL] = "avgpool",
    [DPT_LAYER_GAP] = "gap",         [DPT_LAYER_FLATTEN] = "flatten",
    [DPT_LAYER_ACTIVATION] = "activation", [DPT_LAYER_DROPOUT] = "dropout",
    [DPT_LAYER_BATCHNORM] = "batchnorm"};
static const char *const pad_names[] = {"valid", "same", "full"};

const char *dpt_layer_kind_name(dpt_layer_kind kind)
{
    return (unsigned)kind < DPT_LAYER_KIND_COUNT_ ? kind_names[kind] : "?";
}

const char *dpt_layer_list_grammar(void)
{
    return "comma-separated layers: UNITS [act] | dense UNITS [act] | conv|local|tiled FILTERS K[xK] "
           "[act] [stride=S dilation=D pad=valid|same|full tiles=T init=NAME[:V] bias=V|prior] | "
           "maxpool|avgpool K [stride=S] | gap | flatten | relu|tanh|sigmoid|identity | "
           "dropout KEEP | batchnorm [momentum=M eps=E sync=true|false]";
}

static void spec_defaults(dpt_layer_spec *s, dpt_layer_kind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->stride = 1;
    s->dilation = 1;
    s->pad = DPT_PAD_VALID;
    s->tiles = kind == DPT_LAYER_TILED ? 2 : 0;
    s->keep = 1.0;
    s->sync = -1;
    s->momentum = 0.9;
    s->eps = 1e-5;
    s->init.kind = DPT_INIT_AUTO;
}

static int activation_index(const char *word)
{
    for (int a = DPT_ACT_IDENTITY; a <= DPT_ACT_SIGMOID; a++)
        if (strcmp(word, dpt_activation_name((dpt_activation)a)) == 0) return a;
    return -1;
}

/* A token parser over one item: words separated by blanks. */
typedef struct item_reader {
    char *words[16];
    int n, at;
    int index;            /* 1-based item number, for messages */
    char *why;
    size_t why_size;
} item_reader;

static dpt_status item_fail(item_reader *r, const char *fmt, const char *arg)
{
    char reason[384];
    snprintf(reason, sizeof reason, fmt, arg);
    snprintf(r->why, r->why_size, "layer %d: %s", r->index, reason);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s", r->why);
}

static dpt_status read_int(item_reader *r, const char *word, int lo, int hi, int *out, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(word, &end, 10);
    if (end == word || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%s '%%s' is not an integer in %d..%d", what, lo, hi);
        return item_fail(r, fmt, word);
    }
    *out = (int)v;
    return DPT_OK;
}

static dpt_status read_real(item_reader *r, const char *word, double lo, double hi, double *out,
                            const char *what)
{
    char *end;
    double v = strtod(word, &end);
    if (end == word || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%s '%%s' is not a number in %g..%g", what, lo, hi);
        return item_fail(r, fmt, word);
    }
    *out = v;
    return DPT_OK;
}

/* "3" or "3x5" */
static dpt_status read_kernel(item_reader *r, const char *word, int *kh, int *kw)
{
    char text[32];
    snprintf(text, sizeof text, "%s", word);
    char *x = strchr(text, 'x');
    if (x) *x = '\0';
    dpt_status st = read_int(r, text, 1, MAX_KERNEL, kh, "kernel size");
    if (st == DPT_OK) st = read_int(r, x ? x + 1 : text, 1, MAX_KERNEL, kw, "kernel size");
    return st;
}

double dpt_init_default_value(dpt_init_kind kind)
{
    switch (kind) {
    case DPT_INIT_ORTHOGONAL: return 1.0; /* gain */
    case DPT_INIT_SPARSE: return 15;      /* Martens 2010 used 15 incoming weights per unit */
    case DPT_INIT_UNIFORM: case DPT_INIT_NORMAL: return 0.05;
    default: return 0;
    }
}

static dpt_status read_init(item_reader *r, const char *value, dpt_init_spec *init)
{
    char name[48];
    snprintf(name, sizeof name, "%s", value);
    char *colon = strchr(name, ':');
    if (colon) *colon = '\0';
    int kind = -1;
    for (int k = DPT_INIT_AUTO; k < DPT_INIT_COUNT_; k++)
        if (strcmp(name, dpt_init_name((dpt_init_kind)k)) == 0) kind = k;
    if (kind < 0)
        return item_fail(r, "unknown init '%s' (auto, zeros, constant:V, uniform:A, normal:S, "
                         "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, "
                         "orthogonal[:GAIN], sparse:K)", name);
    init->kind = (dpt_init_kind)kind;
    init->value = dpt_init_default_value(init->kind);
    if (colon) return read_real(r, colon + 1, -1e6, 1e6, &init->value, "init value");
    return DPT_OK;
}

/* Which options a layer kind takes: anything else would be accepted and
 * then silently ignored. */
static int option_applies(dpt_layer_kind kind, const char *key)
{
    int conv = kind == DPT_LAYER_CONV2D || kind == DPT_LAYER_LOCAL || kind == DPT_LAYER_TILED;
    int pool = kind == DPT_LAYER_MAXPOOL || kind == DPT_LAYER_AVGPOOL;
    if (!strcmp(key, "init") || !strcmp(key, "bias")) return conv || kind == DPT_LAYER_DENSE;
    if (!strcmp(key, "dilation") || !strcmp(key, "pad")) return conv;
    if (!strcmp(key, "stride")) return conv || pool;
    if (!strcmp(key, "tiles")) return kind == DPT_LAYER_TILED;
    if (!strcmp(key, "momentum") || !strcmp(key, "eps") || !strcmp(key, "sync"))
        return kind == DPT_LAYER_BATCHNORM;
    return 1; /* unknown keys are reported as such below */
}

static dpt_status read_option(item_reader *r, const char *word, dpt_layer_spec *s)
{
    char key[32];
    const char *eq = strchr(word, '=');
    if (activation_index(word) >= 0)
        return item_fail(r, "'%s': one activation per layer, after dense, conv, local or tiled only", word);
    if (!eq || eq == word || (size_t)(eq - word) >= sizeof key)
        return item_fail(r, "'%s' is not an activation or a key=value option", word);
    snprintf(key, sizeof key, "%.*s", (int)(eq - word), word);
    if (!option_applies(s->kind, key)) {
        char what[80];
        snprintf(what, sizeof what, "option '%s' does not apply to %s", key, kind_names[s->kind]);
        return item_fail(r, "%s", what);
    }
    const char *v = eq + 1;
    if (!strcmp(key, "stride")) return read_int(r, v, 1, MAX_KERNEL, &s->stride, "stride");
    if (!strcmp(key, "dilation")) return read_int(r, v, 1, MAX_KERNEL, &s->dilation, "dilation");
    if (!strcmp(key, "tiles")) return read_int(r, v, 1, 16, &s->tiles, "tiles");
    if (!strcmp(key, "momentum")) return read_real(r, v, 0, 0.9999, &s->momentum, "momentum");
    if (!strcmp(key, "eps")) return read_real(r, v, 1e-12, 1, &s->eps, "eps");
    if (!strcmp(key, "init")) return read_init(r, v, &s->init);
    if (!strcmp(key, "pad")) {
        for (int p = 0; p < 3; p++)
            if (!strcmp(v, pad_names[p])) return s->pad = (dpt_padding)p, DPT_OK;
        return item_fail(r, "pad '%s' is not valid, same or full", v);
    }
    if (!strcmp(key, "sync")) {
        if (!strcmp(v, "true") || !strcmp(v, "false")) return s->sync = v[0] == 't', DPT_OK;
        return item_fail(r, "sync '%s' is not true or false", v);
    }
    if (!strcmp(key, "bias")) {
        if (!strcmp(v, "prior")) return s->bias_prior = 1, DPT_OK;
        return read_real(r, v, -1e6, 1e6, &s->bias, "bias");
    }
    return item_fail(r, "unknown option '%s' (stride, dilation, pad, tiles, init, bias, momentum, "
                     "eps, sync)", key);
}

/* The words after the required arguments: options, and one activation. */
static dpt_status read_tail(item_reader *r, dpt_layer_spec *s, int *act)
{
    for (; r->at < r->n; r->at++) {
        const char *word = r->words[r->at];
        int a = activation_index(word);
        if (a >= 0 && act && *act < 0) {
            *act = a;
            continue;
        }
        dpt_status st = read_option(r, word, s);
        if (st != DPT_OK) return st;
    }
    return DPT_OK;
}

static const char *next_word(item_reader *r)
{
    return r->at < r->n ? r->words[r->at++] : NULL;
}

static dpt_status parse_weighted(item_reader *r, dpt_layer_kind kind, dpt_layer_spec *s, int *act)
{
    const char *units = next_word(r);
    if (!units) return item_fail(r, "'%s' needs the number of units or filters", kind_names[kind]);
    dpt_status st = read_int(r, units, 1, MAX_UNITS, &s->units, "units");
    if (st == DPT_OK && kind != DPT_LAYER_DENSE) {
        const char *k = next_word(r);
        if (!k) return item_fail(r, "'%s' needs a kernel size, e.g. 3 or 3x3", kind_names[kind]);
        st = read_kernel(r, k, &s->kh, &s->kw);
    }
    return st == DPT_OK ? read_tail(r, s, act) : st;
}

static dpt_status parse_pool(item_reader *r, dpt_layer_spec *s)
{
    const char *k = next_word(r);
    if (!k) return item_fail(r, "'%s' needs a window size, e.g. 2", kind_names[s->kind]);
    dpt_status st = read_kernel(r, k, &s->kh, &s->kw);
    s->stride = 0; /* "not given": the window size */
    if (st == DPT_OK) st = read_tail(r, s, NULL);
    if (s->stride == 0) s->stride = s->kh;
    return st;
}

/* One item into out[*n ..]; may add an activation layer after it. */
static dpt_status parse_item(item_reader *r, dpt_layer_spec *out, int room, int *added)
{
    const char *head = next_word(r);
    int act = -1, k = -1;
    for (int i = 0; i < DPT_LAYER_KIND_COUNT_; i++)
        if (!strcmp(head, kind_names[i])) k = i;
    if (!strcmp(head, "conv2d")) k = DPT_LAYER_CONV2D;
    if (!strcmp(head, "bn")) k = DPT_LAYER_BATCHNORM;
    dpt_status st = DPT_OK;
    if (isdigit((unsigned char)head[0])) {
        r->at = 0;
        k = DPT_LAYER_DENSE;
    } else if (activation_index(head) >= 0) {
        spec_defaults(out, DPT_LAYER_ACTIVATION);
        out->act = (dpt_activation)activation_index(head);
        *added = 1;
        return r->n > 1 ? item_fail(r, "'%s' takes no arguments", head) : DPT_OK;
    } else if (k < 0 || k == DPT_LAYER_ACTIVATION) {
        return item_fail(r, "unknown layer '%s'", head);
    }
    spec_defaults(out, (dpt_layer_kind)k);
    switch (k) {
    case DPT_LAYER_DENSE: case DPT_LAYER_CONV2D: case DPT_LAYER_LOCAL: case DPT_LAYER_TILED:
        st = parse_weighted(r, (dpt_layer_kind)k, out, &act);
        break;
    case DPT_LAYER_MAXPOOL: case DPT_LAYER_AVGPOOL:
        st = parse_pool(r, out);
        break;
    case DPT_LAYER_DROPOUT: {
        const char *keep = next_word(r);
        if (!keep) return item_fail(r, "'%s' needs a keep probability, e.g. dropout 0.5", head);
        st = read_real(r, keep, 1e-6, 1, &out->keep, "keep probability");
        if (st == DPT_OK) st = read_tail(r, out, NULL);
        break;
    }
    default:
        st = read_tail(r, out, NULL);
    }
    *added = 1;
    if (st != DPT_OK || act < 0) return st;
    if (room < 2) return item_fail(r, "%s", "too many layers");
    spec_defaults(&out[1], DPT_LAYER_ACTIVATION);
    out[1].act = (dpt_activation)act;
    *added = 2;
    return DPT_OK;
}

static int split_words(char *text, char **words, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(text, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
        if (n == max) return -1;
        words[n++] = p;
    }
    return n;
}

dpt_status dpt_layer_list_parse(const char *text, dpt_layer_spec *layers, int max_layers, int *n,
                                char *why, size_t why_size)
{
    *n = 0;
    int index = 1;
    for (const char *p = text;; index++) {
        size_t len = strcspn(p, ",");
        char item[ITEM_MAX];
        item_reader r = {.index = index, .why = why, .why_size = why_size};
        if (len >= sizeof item) return item_fail(&r, "%s", "is too long");
        memcpy(item, p, len);
        item[len] = '\0';
        r.n = split_words(item, r.words, 16);
        if (r.n < 0) return item_fail(&r, "%s", "has too many words");
        if (r.n == 0) return item_fail(&r, "%s", "is empty");
        int added = 0;
        if (*n == max_layers) {
            char limit[16];
            snprintf(limit, sizeof limit, "%d", max_layers);
            return item_fail(&r, "more than %s layers", limit);
        }
        dpt_status st = parse_item(&r, layers + *n, max_layers - *n, &added);
        if (st != DPT_OK) return st;
        *n += added;
        if (p[len] == '\0') break;
        p += len + 1;
    }
    return DPT_OK;
}

/* ---------------------------------------------------------------- writing back */

/* The shortest text of v that strtod reads back exactly. */
static void shortest(char *out, size_t size, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) { /* whole numbers without an exponent */
        snprintf(out, size, "%.0f", v);
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* Appends fmt (with at most one %s) where the %s is the text of v. */
static size_t put(char *buf, size_t size, size_t used, const char *fmt, double v)
{
    char number[32], piece[128];
    shortest(number, sizeof number, v);
    int w = snprintf(piece, sizeof piece, fmt, number);
    if (used + (size_t)w < size) memcpy(buf + used, piece, (size_t)w + 1);
    return used + (size_t)w;
}

static size_t put_text(char *buf, size_t size, size_t used, const char *text)
{
    size_t n = strlen(text);
    if (used + n < size) memcpy(buf + used, text, n + 1);
    return used + n;
}

static size_t format_options(const dpt_layer_spec *s, char *buf, size_t size, size_t used)
{
    int weighted = s->kind <= DPT_LAYER_TILED, conv = weighted && s->kind != DPT_LAYER_DENSE;
    if (conv && s->stride != 1) used = put(buf, size, used, " stride=%s", s->stride);
    if (conv && s->dilation != 1) used = put(buf, size, used, " dilation=%s", s->dilation);
    if (conv && s->pad != DPT_PAD_VALID)
        used = put_text(buf, size, used, s->pad == DPT_PAD_SAME ? " pad=same" : " pad=full");
    if (s->kind == DPT_LAYER_TILED) used = put(buf, size, used, " tiles=%s", s->tiles);
    if (weighted && s->init.kind != DPT_INIT_AUTO) {
        used = put_text(buf, size, used, " init=");
        used = put_text(buf, size, used, dpt_init_name(s->init.kind));
        used = put(buf, size, used, ":%s", s->init.value);
    }
    if (weighted && s->bias_prior) used = put_text(buf, size, used, " bias=prior");
    else if (weighted && s->bias != 0) used = put(buf, size, used, " bias=%s", s->bias);
    if (s->kind == DPT_LAYER_BATCHNORM) {
        if (s->momentum != 0.9) used = put(buf, size, used, " momentum=%s", s->momentum);
        if (s->eps != 1e-5) used = put(buf, size, used, " eps=%s", s->eps);
        if (s->sync >= 0) used = put_text(buf, size, used, s->sync ? " sync=true" : " sync=false");
    }
    return used;
}

/* "3" for a square kernel, "3x5" otherwise */
static size_t put_kernel(char *buf, size_t size, size_t used, const dpt_layer_spec *s)
{
    used = put(buf, size, used, " %s", s->kh);
    return s->kw == s->kh ? used : put(buf, size, used, "x%s", s->kw);
}

static size_t format_one(const dpt_layer_spec *s, char *buf, size_t size, size_t used)
{
    switch (s->kind) {
    case DPT_LAYER_DENSE:
        return put(buf, size, used, "dense %s", s->units);
    case DPT_LAYER_CONV2D: case DPT_LAYER_LOCAL: case DPT_LAYER_TILED:
        used = put_text(buf, size, used, kind_names[s->kind]);
        used = put(buf, size, used, " %s", s->units);
        return put_kernel(buf, size, used, s);
    case DPT_LAYER_MAXPOOL: case DPT_LAYER_AVGPOOL:
        used = put_text(buf, size, used, kind_names[s->kind]);
        used = put_kernel(buf, size, used, s);
        return s->stride == s->kh ? used : put(buf, size, used, " stride=%s", s->stride);
    case DPT_LAYER_ACTIVATION:
        return put_text(buf, size, used, dpt_activation_name(s->act));
    case DPT_LAYER_DROPOUT:
        return put(buf, size, used, "dropout %s", s->keep);
    default:
        return put_text(buf, size, used, kind_names[s->kind]);
    }
}

size_t dpt_layer_list_format(const dpt_layer_spec *layers, int n, char *buf, size_t size)
{
    size_t used = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        const dpt_layer_spec *s = &layers[i];
        if (i) used = put_text(buf, size, used, ", ");
        used = format_one(s, buf, size, used);
        used = format_options(s, buf, size, used);
    }
    return used;
}
