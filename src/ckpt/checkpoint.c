/* Checkpoint files: safetensors with CRC32s (the layout is documented in
 * include/dpt/checkpoint.h), written atomically, read and verified from
 * memory without trusting a byte of it. */
#include "dpt/checkpoint.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dpt/file.h"

#define HEADER_CRC_KEY "\"crc32.header\":\""   /* located in the raw header bytes */
#define HEADER_CRC_KEY_LEN (sizeof HEADER_CRC_KEY - 1)
#define CRC_PREFIX "crc32."
#define CRC_PREFIX_LEN (sizeof CRC_PREFIX - 1)
#define MAX_JSON_INT 9007199254740992.0 /* 2^53: every integer up to it is exact in a double */

static const struct {
    const char *name;
    size_t size;
} dtypes[DPT_CKPT_DTYPE_COUNT_] = {
    [DPT_CKPT_F64] = {"F64", 8}, [DPT_CKPT_F32] = {"F32", 4}, [DPT_CKPT_I64] = {"I64", 8},
    [DPT_CKPT_U64] = {"U64", 8}, [DPT_CKPT_I32] = {"I32", 4}, [DPT_CKPT_U32] = {"U32", 4},
    [DPT_CKPT_I8] = {"I8", 1},   [DPT_CKPT_U8] = {"U8", 1},
};

/* a name and where it is, for sorted lookups */
struct dpt_ckpt_index_ {
    const char *key;
    size_t index;
};

struct dpt_ckpt_wtensor_ {
    char *name;
    dpt_ckpt_dtype dtype;
    int ndim;
    size_t shape[DPT_CKPT_MAX_DIMS];
    size_t bytes;
    const void *data;
};

const char *dpt_ckpt_dtype_name(dpt_ckpt_dtype dtype)
{
    if ((int)dtype < 0 || dtype >= DPT_CKPT_DTYPE_COUNT_) return "?";
    return dtypes[dtype].name;
}

size_t dpt_ckpt_dtype_size(dpt_ckpt_dtype dtype)
{
    if ((int)dtype < 0 || dtype >= DPT_CKPT_DTYPE_COUNT_) return 0;
    return dtypes[dtype].size;
}

/* ---------------------------------------------------------------- small helpers */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
 * Returns n when valid, else the offset of the first bad byte. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

/* JSON allows no control byte inside a string and, outside strings, only
 * tab, newline and carriage return (cJSON is laxer: it would skip any byte
 * below 0x21 as white space). Returns n when clean, else the offset. */
static size_t json_controls_check(const unsigned char *s, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (in_string) {
            if (c < 0x20) return i;
            if (c == '\\') {
                if (i + 1 < n && s[i + 1] < 0x20) return i + 1;
                i++; /* the escaped byte cannot end the string */
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return i;
        }
    }
    return n;
}

/* A name read from a file, safe to print: control bytes become '?', and a
 * long one is cut with "...". */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t n = 0, limit = size - 4;
    for (; s[n] && n < limit; n++) buf[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7F) ? '?' : s[n];
    if (s[n]) memcpy(buf + n, "...", 3), n += 3;
    buf[n] = '\0';
    return buf;
}

static uint32_t crc_of(const void *data, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const unsigned char *p = data;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* 8 lowercase hex digits -> *value; 0 if they are not. */
static int parse_hex8(const char *s, uint32_t *value)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') v = (v << 4) | (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = (v << 4) | (uint32_t)(c - 'a' + 10);
        else return 0;
    }
    *value = v;
    return 1;
}

static int index_compare(const void *a, const void *b)
{
    const struct dpt_ckpt_index_ *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static const struct dpt_ckpt_index_ *index_find(const struct dpt_ckpt_index_ *idx, size_t n,
                                                const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(idx[mid].key, key);
        if (c == 0) return &idx[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* A message "checkpoint SOURCE: ..." */
static dpt_status ck_fail(dpt_status status, const char *source, const char *file, int line,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static dpt_status ck_fail(dpt_status status, const char *source, const char *file, int line,
                          const char *fmt, ...)
{
    char text[900];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    return dpt_fail_at(status, file, line, "checkpoint %s: %s", source, text);
}
#define CK_FAIL(status, source, ...) ck_fail((status), (source), __FILE__, __LINE__, __VA_ARGS__)

/* ---------------------------------------------------------------- a growing string */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int nomem;
} sbuf;

static void sb_add(sbuf *b, const void *data, size_t n)
{
    if (b->nomem) return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->nomem = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    sb_str(b, text);
}

/* "prefix + s" as a JSON string */
static void sb_json_string(sbuf *b, const char *prefix, const char *s)
{
    sb_add(b, "\"", 1);
    if (prefix) sb_str(b, prefix);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sb_add(b, esc, 2);
        } else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_str(b, esc);
        } else {
            sb_add(b, p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* ---------------------------------------------------------------- writer */

void dpt_ckpt_writer_init(dpt_ckpt_writer *w) { memset(w, 0, sizeof *w); }

void dpt_ckpt_writer_free(dpt_ckpt_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    for (size_t i = 0; i < w->n_meta; i++) free(w->meta_keys[i]), free(w->meta_values[i]);
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    memset(w, 0, sizeof *w);
}

/* a tensor name or metadata key: non-empty UTF-8 without '"' (the header
 * CRC is found by its key in the raw text, so no other key may contain it) */
static int valid_key(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && utf8_check((const unsigned char *)s, n) == n && !strchr(s, '"');
}

dpt_status dpt_ckpt_add_tensor(dpt_ckpt_writer *w, const char *name, dpt_ckpt_dtype dtype,
                               const size_t *shape, int ndim, const void *data)
{
    if (!w || !name) return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor: no writer or no name");
    char shown[128];
    printable(name, shown, sizeof shown);
    if (!valid_key(name) || !strcmp(name, "__metadata__") || !strcmp(name, "header"))
        return DPT_FAIL(DPT_ERR_ARG,
                        "checkpoint tensor name '%s' is not allowed (non-empty UTF-8 without '\"'; "
                        "\"__metadata__\" and \"header\" are reserved)",
                        shown);
    if ((int)dtype < 0 || dtype >= DPT_CKPT_DTYPE_COUNT_)
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor '%s': invalid dtype %d", shown, (int)dtype);
    if (ndim < 0 || ndim > DPT_CKPT_MAX_DIMS || (ndim > 0 && !shape))
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor '%s': %d dimensions (0 to %d allowed)", shown,
                        ndim, DPT_CKPT_MAX_DIMS);
    size_t bytes = dtypes[dtype].size;
    for (int d = 0; d < ndim; d++)
        if (__builtin_mul_overflow(bytes, shape[d], &bytes) || (double)bytes > MAX_JSON_INT)
            return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor '%s': shape too large", shown);
    if (!data && bytes > 0)
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor '%s': no data for %zu bytes", shown, bytes);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return DPT_FAIL(DPT_ERR_ARG, "checkpoint tensor '%s' added twice", shown);

    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        struct dpt_ckpt_wtensor_ *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint writer: out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct dpt_ckpt_wtensor_ *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->bytes = bytes;
    t->data = data;
    w->n_tensors++;
    return DPT_OK;
}

dpt_status dpt_ckpt_add_meta(dpt_ckpt_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return DPT_FAIL(DPT_ERR_ARG, "checkpoint metadata: no writer, key or value");
    char shown[128];
    printable(key, shown, sizeof shown);
    if (!valid_key(key) || !strncmp(key, CRC_PREFIX, CRC_PREFIX_LEN))
        return DPT_FAIL(DPT_ERR_ARG,
                        "checkpoint metadata key '%s' is not allowed (non-empty UTF-8 without '\"'; "
                        "\"crc32.\" is reserved)",
                        shown);
    size_t vlen = strlen(value);
    if (utf8_check((const unsigned char *)value, vlen) != vlen)
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint metadata '%s': the value is not UTF-8", shown);
    char *copy = strdup(value);
    if (!copy) return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint writer: out of memory");
    for (size_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            free(w->meta_values[i]);
            w->meta_values[i] = copy;
            return DPT_OK;
        }
    char *key_copy = strdup(key);
    if (!key_copy) goto nomem;
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 16;
        char **keys = realloc(w->meta_keys, cap * sizeof *keys);
        if (!keys) goto nomem;
        w->meta_keys = keys;
        char **values = realloc(w->meta_values, cap * sizeof *values);
        if (!values) goto nomem;
        w->meta_values = values;
        w->cap_meta = cap;
    }
    w->meta_keys[w->n_meta] = key_copy;
    w->meta_values[w->n_meta] = copy;
    w->n_meta++;
    return DPT_OK;
nomem:
    free(key_copy);
    free(copy);
    return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint writer: out of memory");
}

dpt_status dpt_ckpt_add_meta_int(dpt_ckpt_writer *w, const char *key, int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value);
    return dpt_ckpt_add_meta(w, key, text);
}

/* The header of w with the tensors in file order `order`, their offsets
 * and CRCs; padded with spaces to a multiple of 8 bytes, with its own CRC. */
static dpt_status build_header(const dpt_ckpt_writer *w, const size_t *order, const size_t *begin,
                               const uint32_t *crc, const char *path, sbuf *h)
{
    char hex[9];
    sb_str(h, "{\"__metadata__\":{" HEADER_CRC_KEY "00000000\"");
    for (size_t k = 0; k < w->n_tensors; k++) {
        const struct dpt_ckpt_wtensor_ *t = &w->tensors[order[k]];
        sb_add(h, ",", 1);
        sb_json_string(h, CRC_PREFIX, t->name);
        snprintf(hex, sizeof hex, "%08" PRIx32, crc[k]);
        sb_str(h, ":\"");
        sb_str(h, hex);
        sb_str(h, "\"");
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        sb_add(h, ",", 1);
        sb_json_string(h, NULL, w->meta_keys[i]);
        sb_add(h, ":", 1);
        sb_json_string(h, NULL, w->meta_values[i]);
    }
    sb_add(h, "}", 1);
    for (size_t k = 0; k < w->n_tensors; k++) {
        const struct dpt_ckpt_wtensor_ *t = &w->tensors[order[k]];
        sb_add(h, ",", 1);
        sb_json_string(h, NULL, t->name);
        sb_str(h, ":{\"dtype\":\"");
        sb_str(h, dtypes[t->dtype].name);
        sb_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_add(h, ",", 1);
            sb_u64(h, t->shape[d]);
        }
        sb_str(h, "],\"data_offsets\":[");
        sb_u64(h, begin[k]);
        sb_add(h, ",", 1);
        sb_u64(h, begin[k] + t->bytes);
        sb_str(h, "]}");
    }
    sb_add(h, "}", 1);
    while (!h->nomem && h->len % 8 != 0) sb_add(h, " ", 1);
    if (h->nomem) return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint %s: out of memory for the header", path);
    if (h->len > DPT_CKPT_MAX_HEADER)
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint %s: header of %zu bytes (more than %u)", path, h->len,
                        DPT_CKPT_MAX_HEADER);
    /* the key is the first thing in the header: its digits follow it */
    size_t at = strlen("{\"__metadata__\":{") + HEADER_CRC_KEY_LEN;
    snprintf(hex, sizeof hex, "%08" PRIx32, crc_of(h->p, h->len));
    memcpy(h->p + at, hex, 8);
    return DPT_OK;
}

dpt_status dpt_ckpt_write_atomic(const dpt_ckpt_writer *w, const char *path)
{
    if (!w || !path || !*path) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no writer or no path");
    if (!host_is_little_endian())
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint %s: only little-endian hosts are supported", path);

    dpt_status status = DPT_OK;
    size_t n = w->n_tensors;
    size_t *order = calloc(n + 1, sizeof *order), *begin = calloc(n + 1, sizeof *begin);
    uint32_t *crc = calloc(n + 1, sizeof *crc);
    sbuf header = {0};
    dpt_file_piece *pieces = NULL;
    if (!order || !begin || !crc) {
        status = DPT_FAIL(DPT_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto cleanup;
    }

    /* file order: 8-byte elements, then 4, then 1, so that all are aligned */
    size_t k = 0, offset = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (size_t i = 0; i < n; i++)
            if (dtypes[w->tensors[i].dtype].size == size) order[k++] = i;
    for (k = 0; k < n; k++) {
        const struct dpt_ckpt_wtensor_ *t = &w->tensors[order[k]];
        begin[k] = offset;
        if (__builtin_add_overflow(offset, t->bytes, &offset) || (double)offset > MAX_JSON_INT) {
            status = DPT_FAIL(DPT_ERR_ARG, "checkpoint %s: tensors too large", path);
            goto cleanup;
        }
        crc[k] = crc_of(t->data, t->bytes);
    }
    status = build_header(w, order, begin, crc, path, &header);
    if (status != DPT_OK) goto cleanup;

    unsigned char length[8];
    for (int b = 0; b < 8; b++) length[b] = (unsigned char)((uint64_t)header.len >> (8 * b));
    pieces = malloc(sizeof *pieces * (n + 2));
    if (!pieces) {
        status = DPT_FAIL(DPT_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto cleanup;
    }
    pieces[0] = (dpt_file_piece){length, 8};
    pieces[1] = (dpt_file_piece){header.p, header.len};
    for (k = 0; k < n; k++) pieces[k + 2] = (dpt_file_piece){w->tensors[order[k]].data, w->tensors[order[k]].bytes};
    status = dpt_file_write_atomic(path, pieces, n + 2, "checkpoint",
                                   "; the previous checkpoint, if any, is intact");

cleanup:
    free(order);
    free(begin);
    free(crc);
    free(header.p);
    free(pieces);
    return status;
}

/* ---------------------------------------------------------------- reader */

void dpt_ckpt_free(dpt_ckpt *ckpt)
{
    if (!ckpt) return;
    if (ckpt->tensors)
        for (size_t i = 0; i < ckpt->n_tensors; i++) free((char *)ckpt->tensors[i].name);
    if (ckpt->meta_keys)
        for (size_t i = 0; i < ckpt->n_meta; i++) free(ckpt->meta_keys[i]);
    if (ckpt->meta_values)
        for (size_t i = 0; i < ckpt->n_meta; i++) free(ckpt->meta_values[i]);
    free(ckpt->tensors);
    free(ckpt->meta_keys);
    free(ckpt->meta_values);
    free(ckpt->by_name_);
    free(ckpt->meta_by_key_);
    free(ckpt->blob);
    free(ckpt->source);
    memset(ckpt, 0, sizeof *ckpt);
}

const dpt_ckpt_tensor *dpt_ckpt_find(const dpt_ckpt *ckpt, const char *name)
{
    if (!ckpt || !name || !ckpt->by_name_) return NULL;
    const struct dpt_ckpt_index_ *hit = index_find(ckpt->by_name_, ckpt->n_tensors, name);
    return hit ? &ckpt->tensors[hit->index] : NULL;
}

const char *dpt_ckpt_meta(const dpt_ckpt *ckpt, const char *key)
{
    if (!ckpt || !key || !ckpt->meta_by_key_) return NULL;
    const struct dpt_ckpt_index_ *hit = index_find(ckpt->meta_by_key_, ckpt->n_meta, key);
    return hit ? ckpt->meta_values[hit->index] : NULL;
}

/* a JSON number that is an integer in [0, 2^53] -> *out */
static int json_size(const cJSON *item, size_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= MAX_JSON_INT) || d != (double)(uint64_t)d) return 0;
    if ((uint64_t)d > SIZE_MAX) return 0;
    *out = (size_t)(uint64_t)d;
    return 1;
}

/* byte range [begin, end) of a tensor in the buffer, and its JSON position */
typedef struct span {
    size_t begin, end, index;
} span;

static int span_compare(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* One tensor entry of the header -> *t (name already set) and *s. */
static dpt_status parse_tensor(const cJSON *entry, const char *src, dpt_ckpt_tensor *t, span *s)
{
    char shown[128];
    printable(t->name, shown, sizeof shown);
    if (!cJSON_IsObject(entry))
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' is not a JSON object", shown);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *f = entry->child; f; f = f->next) {
        const cJSON **slot = NULL;
        if (f->string && !strcmp(f->string, "dtype")) slot = &dtype;
        else if (f->string && !strcmp(f->string, "shape")) slot = &shape;
        else if (f->string && !strcmp(f->string, "data_offsets")) slot = &offsets;
        char field[64];
        if (!slot)
            return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' has an unknown field '%s'", shown,
                           printable(f->string ? f->string : "", field, sizeof field));
        if (*slot)
            return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' has field '%s' twice", shown, f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offsets)
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' has no %s", shown,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    int found = 0;
    if (cJSON_IsString(dtype) && dtype->valuestring)
        for (int d = 0; d < DPT_CKPT_DTYPE_COUNT_; d++)
            if (!strcmp(dtype->valuestring, dtypes[d].name)) t->dtype = (dpt_ckpt_dtype)d, found = 1;
    if (!found) {
        char name[32];
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' has an unsupported dtype '%s' (F64 F32 I64 U64 "
                       "I32 U32 I8 U8 are)", shown,
                       cJSON_IsString(dtype) && dtype->valuestring
                           ? printable(dtype->valuestring, name, sizeof name) : "(not a string)");
    }

    if (!cJSON_IsArray(shape))
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': shape is not a list", shown);
    size_t count = 1;
    int ndim = 0, too_large = 0, empty = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (ndim == DPT_CKPT_MAX_DIMS)
            return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' has more than %d dimensions", shown,
                           DPT_CKPT_MAX_DIMS);
        if (!json_size(d, &t->shape[ndim]))
            return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': shape has an entry that is not a "
                           "non-negative integer", shown);
        if (t->shape[ndim] == 0) empty = 1;
        if (__builtin_mul_overflow(count, t->shape[ndim], &count)) too_large = 1;
        ndim++;
    }
    t->ndim = ndim;
    /* a zero dimension makes an empty tensor whatever the others are */
    if (empty) count = 0, too_large = 0;
    size_t bytes = 0;
    if (too_large || __builtin_mul_overflow(count, dtypes[t->dtype].size, &bytes))
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': shape too large", shown);
    t->count = count;
    t->bytes = bytes;

    const cJSON *b = cJSON_IsArray(offsets) ? offsets->child : NULL;
    const cJSON *e = b ? b->next : NULL;
    if (!b || !e || e->next || !json_size(b, &s->begin) || !json_size(e, &s->end) || s->end < s->begin)
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': data_offsets is not [begin, end] with "
                       "integers 0 <= begin <= end", shown);
    if (s->end - s->begin != bytes)
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, but %zu "
                       "%s elements need %zu", shown, s->begin, s->end, s->end - s->begin, count,
                       dtypes[t->dtype].name, bytes);
    return DPT_OK;
}

/* Parses *out->blob (out->blob_size bytes, owned by out). */
static dpt_status parse_blob(dpt_ckpt *out)
{
    const char *src = out->source;
    const unsigned char *blob = out->blob;
    size_t len = out->blob_size;
    dpt_status status = DPT_OK;
    char *text = NULL, *crc_key = NULL;
    cJSON *root = NULL;
    span *spans = NULL;
    dpt_ckpt_tensor *ordered = NULL;
    char shown[128];

    if (!host_is_little_endian())
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint %s: only little-endian hosts are supported", src);
    if (len == 0) return CK_FAIL(DPT_ERR_FORMAT, src, "empty file (not a checkpoint)");
    if (len < 8)
        return CK_FAIL(DPT_ERR_FORMAT, src, "truncated: %zu bytes, less than the 8-byte header length", len);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = (n << 8) | blob[b];
    if (n < 2 || n > DPT_CKPT_MAX_HEADER)
        return CK_FAIL(DPT_ERR_FORMAT, src, "not a checkpoint: its first 8 bytes give a header length "
                       "of %" PRIu64 " bytes (a safetensors header has 2 to %u)", n, DPT_CKPT_MAX_HEADER);
    if (len > 8 && blob[8] != '{')
        return CK_FAIL(DPT_ERR_FORMAT, src, "not a checkpoint: the header does not start with '{'");
    if (n > len - 8)
        return CK_FAIL(DPT_ERR_FORMAT, src, "truncated: the %" PRIu64 "-byte header needs %" PRIu64
                       " bytes, the file has %zu", n, n + 8, len);
    const unsigned char *header = blob + 8;
    size_t hlen = (size_t)n, data_len = len - 8 - hlen;

    /* the header's CRC first: a flipped bit anywhere in the header is
     * reported as such, not as whatever it happens to break */
    size_t crc_at = 0, crc_keys = 0;
    for (size_t i = 0; i + HEADER_CRC_KEY_LEN <= hlen; i++) {
        const unsigned char *q = memchr(header + i, '"', hlen - i);
        if (!q) break;
        i = (size_t)(q - header);
        if (hlen - i >= HEADER_CRC_KEY_LEN && !memcmp(q, HEADER_CRC_KEY, HEADER_CRC_KEY_LEN))
            crc_keys++, crc_at = i + HEADER_CRC_KEY_LEN;
    }
    uint32_t header_crc = 0;
    if (crc_keys == 1) {
        if (hlen - crc_at < 9 || !parse_hex8((const char *)header + crc_at, &header_crc) ||
            header[crc_at + 8] != '"')
            return CK_FAIL(DPT_ERR_FORMAT, src, "the header's CRC (crc32.header) is not 8 lowercase hex "
                           "digits: the header is corrupt");
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, header, (uInt)crc_at);
        crc = crc32(crc, (const Bytef *)"00000000", 8);
        crc = crc32(crc, header + crc_at + 8, (uInt)(hlen - crc_at - 8));
        if ((uint32_t)crc != header_crc)
            return CK_FAIL(DPT_ERR_FORMAT, src, "CRC mismatch in the header (stored %08" PRIx32 ", computed "
                           "%08" PRIx32 "): the header is corrupt", header_crc, (uint32_t)crc);
    }

    size_t bad = utf8_check(header, hlen);
    if (bad == hlen) bad = json_controls_check(header, hlen);
    if (bad != hlen)
        return CK_FAIL(DPT_ERR_FORMAT, src, "not a checkpoint: the header is not JSON text (byte %zu of "
                       "the header)", bad);
    text = malloc(hlen + 1);
    if (!text) {
        status = CK_FAIL(DPT_ERR_NOMEM, src, "out of memory for a %zu-byte header", hlen);
        goto cleanup;
    }
    memcpy(text, header, hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, hlen + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
        status = CK_FAIL(DPT_ERR_FORMAT, src, "not a checkpoint: the header is not valid JSON (error near "
                         "byte %zu of the header)", at);
        goto cleanup;
    }
    if (!cJSON_IsObject(root)) {
        status = CK_FAIL(DPT_ERR_FORMAT, src, "not a checkpoint: the header is not a JSON object");
        goto cleanup;
    }
    if (crc_keys != 1) {
        if (crc_keys)
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the header has %zu header CRCs (\"crc32.header\":\"); "
                             "one is expected", crc_keys);
        else
            status = CK_FAIL(DPT_ERR_FORMAT, src, "not a dptrain checkpoint: no header CRC (the header has "
                             "no \"crc32.header\":\"...\" in compact JSON)");
        goto cleanup;
    }

    /* metadata and tensor count */
    const cJSON *meta = NULL;
    size_t n_tensors = 0, n_meta = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (!item->string) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the header has an entry without a name");
            goto cleanup;
        }
        if (strcmp(item->string, "__metadata__")) {
            n_tensors++;
        } else if (meta) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the header has __metadata__ twice");
            goto cleanup;
        } else {
            meta = item;
        }
    }
    if (!meta || !cJSON_IsObject(meta)) {
        status = CK_FAIL(DPT_ERR_FORMAT, src, "not a dptrain checkpoint: %s", meta ? "__metadata__ is "
                         "not a JSON object" : "no __metadata__ (where the CRCs are)");
        goto cleanup;
    }
    for (const cJSON *m = meta->child; m; m = m->next) n_meta++;

    out->meta_keys = calloc(n_meta + 1, sizeof *out->meta_keys);
    out->meta_values = calloc(n_meta + 1, sizeof *out->meta_values);
    out->meta_by_key_ = calloc(n_meta + 1, sizeof *out->meta_by_key_);
    out->tensors = calloc(n_tensors + 1, sizeof *out->tensors);
    out->by_name_ = calloc(n_tensors + 1, sizeof *out->by_name_);
    spans = calloc(n_tensors + 1, sizeof *spans);
    ordered = calloc(n_tensors + 1, sizeof *ordered);
    if (!out->meta_keys || !out->meta_values || !out->meta_by_key_ || !out->tensors || !out->by_name_ ||
        !spans || !ordered) {
        status = CK_FAIL(DPT_ERR_NOMEM, src, "out of memory for %zu tensors", n_tensors);
        goto cleanup;
    }
    out->n_meta = n_meta;
    out->n_tensors = n_tensors;

    size_t i = 0;
    for (const cJSON *m = meta->child; m; m = m->next, i++) {
        if (!m->string || !cJSON_IsString(m) || !m->valuestring) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "metadata '%s' is not a string",
                             printable(m->string ? m->string : "", shown, sizeof shown));
            goto cleanup;
        }
        out->meta_keys[i] = strdup(m->string);
        out->meta_values[i] = strdup(m->valuestring);
        if (!out->meta_keys[i] || !out->meta_values[i]) {
            status = CK_FAIL(DPT_ERR_NOMEM, src, "out of memory for metadata");
            goto cleanup;
        }
    }
    i = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (item == meta) continue;
        dpt_ckpt_tensor *t = &out->tensors[i];
        t->name = strdup(item->string);
        if (!t->name) {
            status = CK_FAIL(DPT_ERR_NOMEM, src, "out of memory for tensor names");
            goto cleanup;
        }
        if (!*t->name || !strcmp(t->name, "header")) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the tensor name '%s' is not allowed", t->name);
            goto cleanup;
        }
        spans[i].index = i;
        status = parse_tensor(item, src, t, &spans[i]);
        if (status != DPT_OK) goto cleanup;
        i++;
    }
    cJSON_Delete(root);
    root = NULL;

    /* the byte buffer: contiguous from 0, exactly covered */
    qsort(spans, n_tensors, sizeof *spans, span_compare);
    size_t expect = 0;
    for (i = 0; i < n_tensors; i++) {
        if (spans[i].begin != expect) {
            printable(out->tensors[spans[i].index].name, shown, sizeof shown);
            status = CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s': data_offsets [%zu, %zu] %s: the tensors "
                             "before it end at %zu", shown, spans[i].begin, spans[i].end,
                             spans[i].begin > expect ? "leave a gap" : "overlap another tensor", expect);
            goto cleanup;
        }
        expect = spans[i].end;
        ordered[i] = out->tensors[spans[i].index];
    }
    /* the tensors now live in `ordered` (file order); the old array only
     * holds copies of the same name pointers */
    free(out->tensors);
    out->tensors = ordered;
    ordered = NULL;
    if (expect > data_len) {
        status = CK_FAIL(DPT_ERR_FORMAT, src, "truncated: the header describes %zu bytes, the file has %zu "
                         "(%zu bytes of tensor data missing)", 8 + hlen + expect, len, expect - data_len);
        goto cleanup;
    }
    if (expect < data_len) {
        status = CK_FAIL(DPT_ERR_FORMAT, src, "%zu unexpected bytes after the last tensor: the header "
                         "describes %zu bytes, the file has %zu", data_len - expect, 8 + hlen + expect, len);
        goto cleanup;
    }
    for (i = 0; i < n_tensors; i++) {
        out->tensors[i].data = blob + 8 + hlen + spans[i].begin;
        out->by_name_[i].key = out->tensors[i].name;
        out->by_name_[i].index = i;
    }
    qsort(out->by_name_, n_tensors, sizeof *out->by_name_, index_compare);
    for (i = 0; i + 1 < n_tensors; i++)
        if (!strcmp(out->by_name_[i].key, out->by_name_[i + 1].key)) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the header has tensor '%s' twice",
                             printable(out->by_name_[i].key, shown, sizeof shown));
            goto cleanup;
        }
    for (i = 0; i < n_meta; i++) out->meta_by_key_[i] = (struct dpt_ckpt_index_){out->meta_keys[i], i};
    qsort(out->meta_by_key_, n_meta, sizeof *out->meta_by_key_, index_compare);
    for (i = 0; i + 1 < n_meta; i++)
        if (!strcmp(out->meta_by_key_[i].key, out->meta_by_key_[i + 1].key)) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the header has metadata '%s' twice",
                             printable(out->meta_by_key_[i].key, shown, sizeof shown));
            goto cleanup;
        }

    /* the CRCs: the header's (already checked) where the metadata says, then
     * one per tensor, and no other */
    const char *value = dpt_ckpt_meta(out, CRC_PREFIX "header");
    if (!value || strlen(value) != 8 || memcmp(value, header + crc_at, 8)) {
        status = CK_FAIL(DPT_ERR_FORMAT, src, "not a dptrain checkpoint: __metadata__ has no header CRC "
                         "crc32.header");
        goto cleanup;
    }
    size_t longest = 0;
    for (i = 0; i < n_tensors; i++) {
        size_t l = strlen(out->tensors[i].name);
        if (l > longest) longest = l;
    }
    crc_key = malloc(CRC_PREFIX_LEN + longest + 1);
    if (!crc_key) {
        status = CK_FAIL(DPT_ERR_NOMEM, src, "out of memory");
        goto cleanup;
    }
    for (i = 0; i < n_tensors; i++) {
        const dpt_ckpt_tensor *t = &out->tensors[i];
        printable(t->name, shown, sizeof shown);
        memcpy(crc_key, CRC_PREFIX, CRC_PREFIX_LEN);
        strcpy(crc_key + CRC_PREFIX_LEN, t->name);
        value = dpt_ckpt_meta(out, crc_key);
        uint32_t stored;
        if (!value) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "no CRC for tensor '%s' (__metadata__ crc32.%s)", shown,
                             shown);
            goto cleanup;
        }
        if (strlen(value) != 8 || !parse_hex8(value, &stored)) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "the CRC of tensor '%s' is not 8 lowercase hex digits",
                             shown);
            goto cleanup;
        }
        uint32_t computed = crc_of(t->data, t->bytes);
        if (computed != stored) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "CRC mismatch in tensor '%s' (stored %08" PRIx32
                             ", computed %08" PRIx32 "): its data is corrupt", shown, stored, computed);
            goto cleanup;
        }
    }
    for (i = 0; i < n_meta; i++) {
        const char *key = out->meta_keys[i];
        if (strncmp(key, CRC_PREFIX, CRC_PREFIX_LEN) || !strcmp(key + CRC_PREFIX_LEN, "header")) continue;
        if (!dpt_ckpt_find(out, key + CRC_PREFIX_LEN)) {
            status = CK_FAIL(DPT_ERR_FORMAT, src, "metadata '%s' is the CRC of a tensor that is not there",
                             printable(key, shown, sizeof shown));
            goto cleanup;
        }
    }

cleanup:
    cJSON_Delete(root);
    free(text);
    free(crc_key);
    free(spans);
    free(ordered);
    return status;
}

/* Takes ownership of blob (malloc'd, len bytes) whatever happens. */
static dpt_status parse_owned(unsigned char *blob, size_t len, const char *name, dpt_ckpt *out)
{
    memset(out, 0, sizeof *out);
    out->blob = blob;
    out->blob_size = len;
    out->source = strdup(name ? name : "(in memory)");
    if (!out->source) {
        dpt_ckpt_free(out);
        return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint: out of memory");
    }
    dpt_status status = parse_blob(out);
    if (status != DPT_OK) dpt_ckpt_free(out);
    return status;
}

dpt_status dpt_ckpt_parse(const void *buf, size_t len, const char *name, dpt_ckpt *out)
{
    if (!out) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no output");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no buffer");
    unsigned char *blob = malloc(len ? len : 1);
    if (!blob)
        return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint %s: out of memory for %zu bytes", name ? name : "", len);
    if (len) memcpy(blob, buf, len);
    return parse_owned(blob, len, name, out);
}

dpt_status dpt_ckpt_read_file(const char *path, dpt_ckpt *out)
{
    if (!out) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no output");
    memset(out, 0, sizeof *out);
    if (!path) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return DPT_FAIL(DPT_ERR_IO, "checkpoint %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int stat_failed = fstat(fd, &st) != 0;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        int err = stat_failed ? errno : 0;
        close(fd);
        return DPT_FAIL(DPT_ERR_IO, "checkpoint %s: %s", path, err ? strerror(err) : "not a regular file");
    }
    size_t size = (size_t)st.st_size;
    unsigned char *blob = malloc(size ? size : 1);
    if (!blob) {
        close(fd);
        return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint %s: out of memory for %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, blob + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            free(blob);
            return DPT_FAIL(DPT_ERR_IO, "checkpoint %s: read error after %zu bytes: %s", path, got,
                            strerror(err));
        }
        if (r == 0) break; /* it shrank: parsed as the truncated file it now is */
        got += (size_t)r;
    }
    close(fd);
    return parse_owned(blob, got, path, out);
}

dpt_status dpt_ckpt_get_tensor(const dpt_ckpt *ckpt, const char *name, dpt_ckpt_dtype dtype, size_t count,
                               void *dst)
{
    if (!ckpt || !name) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no checkpoint or no name");
    const char *src = ckpt->source ? ckpt->source : "(none)";
    char shown[128];
    printable(name, shown, sizeof shown);
    const dpt_ckpt_tensor *t = dpt_ckpt_find(ckpt, name);
    if (!t) return CK_FAIL(DPT_ERR_FORMAT, src, "no tensor '%s'", shown);
    if (t->dtype != dtype)
        return CK_FAIL(DPT_ERR_FORMAT, src, "tensor '%s' is %s, expected %s", shown, dtypes[t->dtype].name,
                       dpt_ckpt_dtype_name(dtype));
    if (t->count != count)
        return CK_FAIL(DPT_ERR_SHAPE, src, "tensor '%s' has %zu elements, expected %zu", shown, t->count,
                       count);
    if (t->bytes) memcpy(dst, t->data, t->bytes);
    return DPT_OK;
}

dpt_status dpt_ckpt_get_meta(const dpt_ckpt *ckpt, const char *key, const char **value)
{
    if (!ckpt || !key || !value) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no checkpoint, key or output");
    *value = dpt_ckpt_meta(ckpt, key);
    if (*value) return DPT_OK;
    char shown[128];
    return CK_FAIL(DPT_ERR_FORMAT, ckpt->source ? ckpt->source : "(none)", "no metadata '%s'",
                   printable(key, shown, sizeof shown));
}

dpt_status dpt_ckpt_get_meta_int(const dpt_ckpt *ckpt, const char *key, int64_t *value)
{
    const char *text;
    dpt_status status = dpt_ckpt_get_meta(ckpt, key, &text);
    if (status != DPT_OK) return status;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    char shown[128], shown_value[64];
    if (errno || end == text || *end || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
        return CK_FAIL(DPT_ERR_FORMAT, ckpt->source ? ckpt->source : "(none)", "metadata '%s' is '%s', not an integer",
                       printable(key, shown, sizeof shown), printable(text, shown_value, sizeof shown_value));
    *value = (int64_t)v;
    return DPT_OK;
}

/* ---------------------------------------------------------------- a directory of checkpoints */

dpt_status dpt_ckpt_path(const char *dir, long step, char *out, size_t size)
{
    if (!dir || !*dir || !out || size == 0)
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint path: no directory or no room");
    if (step < 0) return DPT_FAIL(DPT_ERR_ARG, "checkpoint path: negative step %ld", step);
    int n = snprintf(out, size, "%s/ckpt-%012ld.safetensors", dir, step);
    if (n < 0 || (size_t)n >= size) {
        out[0] = '\0';
        return DPT_FAIL(DPT_ERR_ARG, "checkpoint path in %s does not fit in %zu bytes", dir, size);
    }
    return DPT_OK;
}

/* "ckpt-<at least 12 digits>.safetensors" -> *step; 0 for any other name */
static int parse_ckpt_name(const char *name, long *step)
{
    static const char prefix[] = "ckpt-", suffix[] = ".safetensors";
    if (strncmp(name, prefix, sizeof prefix - 1)) return 0;
    const char *p = name + sizeof prefix - 1;
    long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (LONG_MAX - (*p - '0')) / 10) return 0;
        v = v * 10 + (*p - '0');
    }
    if (digits < 12 || strcmp(p, suffix)) return 0;
    *step = v;
    return 1;
}

typedef struct listed {
    long step;
    char *path;
} listed;

static int listed_newest_first(const void *a, const void *b)
{
    const listed *x = a, *y = b;
    if (x->step != y->step) return x->step > y->step ? -1 : 1;
    return -strcmp(x->path, y->path);
}

void dpt_ckpt_listing_free(dpt_ckpt_listing *list)
{
    if (!list) return;
    for (size_t i = 0; list->paths && i < list->count; i++) free(list->paths[i]);
    free(list->paths);
    free(list->steps);
    memset(list, 0, sizeof *list);
}

dpt_status dpt_ckpt_list(const char *dir, dpt_ckpt_listing *out)
{
    if (!out) return DPT_FAIL(DPT_ERR_ARG, "checkpoint list: no output");
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return DPT_FAIL(DPT_ERR_ARG, "checkpoint list: no directory");
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return DPT_OK;
        return DPT_FAIL(DPT_ERR_IO, "checkpoint directory %s: cannot open: %s", dir, strerror(errno));
    }
    dpt_status status = DPT_OK;
    listed *items = NULL;
    size_t count = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                status = DPT_FAIL(DPT_ERR_IO, "checkpoint directory %s: cannot read: %s", dir, strerror(errno));
            break;
        }
        long step;
        if (!parse_ckpt_name(e->d_name, &step)) continue;
        if (count == cap) {
            size_t new_cap = cap ? 2 * cap : 16;
            listed *grown = realloc(items, new_cap * sizeof *grown);
            if (!grown) {
                status = DPT_FAIL(DPT_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
                break;
            }
            items = grown;
            cap = new_cap;
        }
        size_t size = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(size);
        if (!path) {
            status = DPT_FAIL(DPT_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
            break;
        }
        snprintf(path, size, "%s/%s", dir, e->d_name);
        items[count++] = (listed){step, path};
    }
    closedir(d);
    if (status == DPT_OK && count > 0) {
        qsort(items, count, sizeof *items, listed_newest_first);
        out->paths = malloc(count * sizeof *out->paths);
        out->steps = malloc(count * sizeof *out->steps);
        if (!out->paths || !out->steps) {
            free(out->paths);
            free(out->steps);
            out->paths = NULL;
            out->steps = NULL;
            status = DPT_FAIL(DPT_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
        } else {
            for (size_t i = 0; i < count; i++) out->paths[i] = items[i].path, out->steps[i] = items[i].step;
            out->count = count;
            count = 0; /* owned by out now */
        }
    }
    for (size_t i = 0; i < count; i++) free(items[i].path);
    free(items);
    return status;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

dpt_status dpt_ckpt_prune(const char *dir, int keep, const char *protect)
{
    if (keep < 1) return DPT_FAIL(DPT_ERR_ARG, "checkpoint prune: keep %d (at least 1)", keep);
    dpt_ckpt_listing list;
    dpt_status status = dpt_ckpt_list(dir, &list);
    if (status != DPT_OK) return status;
    for (size_t i = (size_t)keep; i < list.count; i++) {
        if (protect && !strcmp(base_name(protect), base_name(list.paths[i]))) continue;
        if (unlink(list.paths[i]) != 0 && errno != ENOENT && status == DPT_OK)
            status = DPT_FAIL(DPT_ERR_IO, "cannot remove old checkpoint %s: %s", list.paths[i],
                              strerror(errno));
    }
    dpt_ckpt_listing_free(&list);
    return status;
}

dpt_status dpt_ckpt_save(const dpt_ckpt_writer *w, const char *dir, long step, int keep, char *path_out,
                         size_t path_size)
{
    if (!dir || !*dir) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no directory");
    if (path_out && path_size) path_out[0] = '\0';
    size_t size = strlen(dir) + 48;
    char *path = malloc(size);
    if (!path) return DPT_FAIL(DPT_ERR_NOMEM, "checkpoint: out of memory");
    dpt_status status = dpt_ckpt_path(dir, step, path, size);
    if (status == DPT_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
        status = DPT_FAIL(DPT_ERR_IO, "checkpoint %s not written: cannot create the directory %s: %s", path,
                          dir, strerror(errno));
    if (status == DPT_OK) status = dpt_ckpt_write_atomic(w, path);
    if (status == DPT_OK && path_out) {
        if (strlen(path) >= path_size)
            status = DPT_FAIL(DPT_ERR_ARG, "checkpoint %s written, but its path does not fit in %zu bytes",
                              path, path_size);
        else
            strcpy(path_out, path);
    }
    if (status == DPT_OK && keep > 0) {
        status = dpt_ckpt_prune(dir, keep, path);
        if (status != DPT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", dpt_error_message());
            status = DPT_FAIL(status, "checkpoint %s written, but removing older ones failed: %s", path, why);
        }
    }
    free(path);
    return status;
}

dpt_status dpt_ckpt_newest_valid(const char *dir, dpt_ckpt *out, char *path_out, size_t path_size,
                                 dpt_ckpt_report_fn report, void *user)
{
    if (out) memset(out, 0, sizeof *out);
    if (!path_out || path_size == 0) return DPT_FAIL(DPT_ERR_ARG, "checkpoint: no room for the path");
    path_out[0] = '\0';
    dpt_ckpt_listing list;
    dpt_status status = dpt_ckpt_list(dir, &list);
    if (status != DPT_OK) return status;
    char *first_problem = NULL;
    status = DPT_ERR_FORMAT;
    for (size_t i = 0; i < list.count; i++) {
        dpt_ckpt ckpt;
        dpt_status st = dpt_ckpt_read_file(list.paths[i], &ckpt);
        if (st == DPT_OK) {
            if (strlen(list.paths[i]) >= path_size) {
                dpt_ckpt_free(&ckpt);
                status = DPT_FAIL(DPT_ERR_ARG, "checkpoint %s: its path does not fit in %zu bytes",
                                  list.paths[i], path_size);
            } else {
                strcpy(path_out, list.paths[i]);
                if (out) *out = ckpt;
                else dpt_ckpt_free(&ckpt);
                status = DPT_OK;
            }
            break;
        }
        if (st == DPT_ERR_NOMEM) {
            status = st;
            break;
        }
        if (report) report(user, list.paths[i], dpt_error_message());
        if (!first_problem) first_problem = strdup(dpt_error_message());
    }
    if (status == DPT_ERR_FORMAT && list.count > 0)
        status = DPT_FAIL(DPT_ERR_FORMAT, "none of the %zu checkpoints in %s verifies (the newest: %s)",
                          list.count, dir, first_problem ? first_problem : "?");
    if (list.count == 0) status = DPT_OK; /* nothing to resume from */
    free(first_problem);
    dpt_ckpt_listing_free(&list);
    return status;
}

/* ---------------------------------------------------------------- hashing */

uint64_t dpt_ckpt_fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void dpt_ckpt_hash_text(const char *text, char out[17])
{
    uint64_t h = dpt_ckpt_fnv1a64(text, text ? strlen(text) : 0);
    snprintf(out, 17, "%016" PRIx64, h);
}
