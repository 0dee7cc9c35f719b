/* NumPy .npy files: strict header parser, reader, atomic writer. */
#include "dpt/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/file.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *descr; /* as NumPy writes it */
    char kind;
    size_t size;
} dtypes[DPT_NPY_DTYPE_COUNT_] = {
    [DPT_NPY_U1] = {"|u1", 'u', 1}, [DPT_NPY_I1] = {"|i1", 'i', 1},
    [DPT_NPY_U2] = {"<u2", 'u', 2}, [DPT_NPY_I2] = {"<i2", 'i', 2},
    [DPT_NPY_U4] = {"<u4", 'u', 4}, [DPT_NPY_I4] = {"<i4", 'i', 4},
    [DPT_NPY_U8] = {"<u8", 'u', 8}, [DPT_NPY_I8] = {"<i8", 'i', 8},
    [DPT_NPY_F4] = {"<f4", 'f', 4}, [DPT_NPY_F8] = {"<f8", 'f', 8},
};

const char *dpt_npy_dtype_descr(dpt_npy_dtype dtype)
{
    return (unsigned)dtype < DPT_NPY_DTYPE_COUNT_ ? dtypes[dtype].descr : NULL;
}

size_t dpt_npy_dtype_size(dpt_npy_dtype dtype)
{
    return (unsigned)dtype < DPT_NPY_DTYPE_COUNT_ ? dtypes[dtype].size : 0;
}

int dpt_npy_dtype_is_float(dpt_npy_dtype dtype)
{
    return (unsigned)dtype < DPT_NPY_DTYPE_COUNT_ && dtypes[dtype].kind == 'f';
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* ---------------------------------------------------------------- header parser
 * A cursor over the header text; every error names the file and quotes a
 * little of the text where it happened. */
typedef struct cursor {
    const char *p, *end;
    const char *name;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static dpt_status syntax(const cursor *c, const char *expected)
{
    char near[24];
    size_t n = 0;
    for (const char *q = c->p; q < c->end && n < sizeof near - 1; q++)
        near[n++] = (*q >= 32 && *q < 127) ? *q : '?';
    near[n] = '\0';
    return DPT_FAIL(DPT_ERR_FORMAT, "%s: bad .npy header: expected %s at \"%s\"", c->name, expected,
                    c->p < c->end ? near : "(end of header)");
}

/* A Python string literal without escapes: '...' or "...". */
static dpt_status parse_string(cursor *c, const char **text, size_t *len)
{
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return syntax(c, "a quoted string");
    char quote = *c->p;
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != quote && *c->p != '\\' && *c->p != '\n') c->p++;
    if (c->p >= c->end || *c->p != quote) return syntax(c, "the end of the string");
    *text = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return DPT_OK;
}

static int text_is(const char *text, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(text, word, len) == 0;
}

/* descr: a byte order mark, a kind and a size, e.g. '<f4', '|u1'. */
static dpt_status parse_descr(cursor *c, dpt_npy_dtype *dtype)
{
    if (c->p < c->end && *c->p == '[')
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: structured .npy arrays (descr is a list of fields) are "
                        "not supported: save a plain numeric array", c->name);
    const char *text;
    size_t len;
    dpt_status st = parse_string(c, &text, &len);
    if (st != DPT_OK) return st;
    for (int t = 0; t < DPT_NPY_DTYPE_COUNT_; t++) {
        const char *want = dtypes[t].descr;
        /* one-byte types have no byte order: NumPy writes '|', any mark means the same */
        int same = text_is(text, len, want) ||
                   (dtypes[t].size == 1 && len == 3 && strchr("<>=", text[0]) &&
                    !memcmp(text + 1, want + 1, 2));
        if (same) {
            *dtype = (dpt_npy_dtype)t;
            return DPT_OK;
        }
    }
    for (int t = 0; t < DPT_NPY_DTYPE_COUNT_; t++)
        if (len == 3 && text[0] == '>' && !memcmp(text + 1, dtypes[t].descr + 1, 2))
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: big-endian .npy data ('%.*s') is not supported: save "
                            "it little-endian, e.g. np.save(path, a.astype('<%.2s'))", c->name,
                            (int)len, text, text + 1);
    return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy dtype '%.*s' is not supported (dptrain reads float32 "
                    "'<f4', float64 '<f8' and integers '|u1' '|i1' '<u2' '<i2' '<u4' '<i4' '<u8' "
                    "'<i8')", c->name, len > 40 ? 40 : (int)len, text);
}

static dpt_status parse_bool(cursor *c, int *value)
{
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && !memcmp(c->p, "True", 4)) *value = 1, c->p += 4;
    else if (left >= 5 && !memcmp(c->p, "False", 5)) *value = 0, c->p += 5;
    else return syntax(c, "True or False for fortran_order");
    return DPT_OK;
}

/* A Python int literal: 0 or digits without a leading zero. */
static dpt_status parse_size(cursor *c, size_t *value)
{
    const char *start = c->p;
    size_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned digit = (unsigned)(*c->p - '0');
        if (v > (SIZE_MAX - digit) / 10)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy shape entry too large", c->name);
        v = v * 10 + digit;
        c->p++;
    }
    if (c->p == start) return syntax(c, "a non-negative integer in shape");
    if (*start == '0' && c->p - start > 1) {
        c->p = start;
        return syntax(c, "an integer without leading zeros in shape");
    }
    *value = v;
    return DPT_OK;
}

/* shape: a tuple, (), (n,), (n, m), (n, m,) ... */
static dpt_status parse_shape(cursor *c, dpt_npy_header *h)
{
    if (c->p >= c->end || *c->p != '(') return syntax(c, "a tuple '(' for shape");
    c->p++;
    h->ndim = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')') break;
        if (h->ndim == DPT_NPY_MAX_DIMS)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy array has more than %d dimensions", c->name,
                            DPT_NPY_MAX_DIMS);
        dpt_status st = parse_size(c, &h->shape[h->ndim++]);
        if (st != DPT_OK) return st;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        /* (5) is the integer 5 in Python, not a tuple */
        if (h->ndim == 1) return syntax(c, "',' after the only entry of shape (a 1-tuple is (n,))");
        if (c->p < c->end && *c->p == ')') break;
        return syntax(c, "',' or ')' in shape");
    }
    c->p++;
    return DPT_OK;
}

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, KEY_COUNT };

static dpt_status parse_entry(cursor *c, dpt_npy_header *h, int seen[KEY_COUNT])
{
    static const char *const names[KEY_COUNT] = {"descr", "fortran_order", "shape"};
    const char *key;
    size_t len;
    dpt_status st = parse_string(c, &key, &len);
    if (st != DPT_OK) return st;
    int k = 0;
    while (k < KEY_COUNT && !text_is(key, len, names[k])) k++;
    if (k == KEY_COUNT)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: unknown key '%.*s' in the .npy header (it has exactly "
                        "descr, fortran_order and shape)", c->name, len > 40 ? 40 : (int)len, key);
    if (seen[k]++)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: key '%s' twice in the .npy header", c->name, names[k]);
    skip_space(c);
    if (c->p >= c->end || *c->p != ':') return syntax(c, "':' after a key");
    c->p++;
    skip_space(c);
    int fortran = 0;
    switch (k) {
    case KEY_DESCR: st = parse_descr(c, &h->dtype); break;
    case KEY_FORTRAN:
        st = parse_bool(c, &fortran);
        if (st == DPT_OK && fortran)
            st = DPT_FAIL(DPT_ERR_FORMAT, "%s: the .npy array is in Fortran order (fortran_order: "
                          "True); dptrain reads C-order arrays: save np.ascontiguousarray(a)", c->name);
        break;
    default: st = parse_shape(c, h); break;
    }
    return st;
}

/* The dict: '{' entries separated by ',' (one trailing ',' allowed) '}',
 * then only blanks. */
static dpt_status parse_dict(cursor *c, dpt_npy_header *h)
{
    int seen[KEY_COUNT] = {0};
    skip_space(c);
    if (c->p >= c->end || *c->p != '{') return syntax(c, "'{' (the header is a Python dict)");
    c->p++;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == '}') break;
        dpt_status st = parse_entry(c, h, seen);
        if (st != DPT_OK) return st;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') c->p++;
        else if (c->p < c->end && *c->p == '}') break;
        else return syntax(c, "',' or '}' in the header dict");
    }
    c->p++;
    skip_space(c);
    if (c->p != c->end) return syntax(c, "only blanks after the header dict");
    static const char *const names[KEY_COUNT] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < KEY_COUNT; k++)
        if (!seen[k])
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: the .npy header has no '%s' key", c->name, names[k]);
    return DPT_OK;
}

/* Magic, version and header length: the data offset, once the prefix is in. */
static dpt_status parse_prefix(dpt_npy_header *h, const unsigned char *b, size_t len, const char *name)
{
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: a gzip file, not a .npy file: gunzip it first", name);
    if (len >= 4 && !memcmp(b, "PK\x03\x04", 4))
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: a zip archive (.npz?), not a .npy file: save one array "
                        "with np.save", name);
    size_t cmp = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (memcmp(b, npy_magic, cmp) != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: not a .npy file (it does not start with \\x93NUMPY)", name);
    if (len < DPT_NPY_PREFIX_V1)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated .npy header (%zu bytes)", name, len);
    h->major = b[6];
    h->minor = b[7];
    if (h->major < 1 || h->major > 3 || h->minor != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy format version %d.%d is not supported (dptrain "
                        "reads 1.0, 2.0 and 3.0)", name, h->major, h->minor);
    size_t prefix = h->major == 1 ? DPT_NPY_PREFIX_V1 : DPT_NPY_PREFIX_V2;
    if (len < prefix) return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated .npy header (%zu bytes)", name, len);
    size_t text_len = (size_t)b[8] | (size_t)b[9] << 8;
    if (h->major > 1) text_len |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (text_len > DPT_NPY_MAX_HEADER)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy header length %zu is larger than %u bytes", name,
                        text_len, DPT_NPY_MAX_HEADER);
    h->data_offset = prefix + text_len;
    return DPT_OK;
}

dpt_status dpt_npy_parse_header(dpt_npy_header *h, const void *buf, size_t len, const char *name)
{
    memset(h, 0, sizeof *h);
    static const unsigned char nothing[1];
    const unsigned char *b = buf ? buf : nothing;
    if (!name) name = "(memory)";
    if (!buf) len = 0;
    dpt_status st = parse_prefix(h, b, len, name);
    if (st != DPT_OK) return st;
    size_t prefix = h->major == 1 ? DPT_NPY_PREFIX_V1 : DPT_NPY_PREFIX_V2;
    if (len < h->data_offset)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated .npy header (it declares %zu bytes of header "
                        "text, the file holds %zu)", name, h->data_offset - prefix, len - prefix);
    for (size_t i = prefix; i < h->data_offset; i++)
        if (b[i] == 0 || b[i] >= 128)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: bad .npy header: byte 0x%02x at offset %zu (the "
                            "header is an ASCII Python dict)", name, b[i], i);
    cursor c = {(const char *)b + prefix, (const char *)b + h->data_offset, name};
    st = parse_dict(&c, h);
    if (st != DPT_OK) return st;
    h->count = 1;
    for (int d = 0; d < h->ndim; d++)
        if (__builtin_mul_overflow(h->count, h->shape[d], &h->count))
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy shape overflows", name);
    if (__builtin_mul_overflow(h->count, dtypes[h->dtype].size, &h->data_bytes) ||
        h->data_bytes > SIZE_MAX - h->data_offset)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: .npy shape overflows", name);
    return DPT_OK;
}

dpt_status dpt_npy_check_size(const dpt_npy_header *h, uint64_t total_bytes, const char *name)
{
    uint64_t want = (uint64_t)h->data_offset + h->data_bytes;
    if (total_bytes < want)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated: the .npy header declares %zu elements (%zu "
                        "bytes of data), the file holds %llu", name, h->count, h->data_bytes,
                        (unsigned long long)(total_bytes > h->data_offset ? total_bytes - h->data_offset : 0));
    if (total_bytes > want)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: %llu trailing bytes after the %zu elements the .npy "
                        "header declares", name, (unsigned long long)(total_bytes - want), h->count);
    return DPT_OK;
}

/* ---------------------------------------------------------------- reader */

/* Reads exactly n bytes at the file's position; a short read is truncation. */
static dpt_status read_exact(FILE *f, void *buf, size_t n, size_t *got, const char *path)
{
    *got = n ? fread(buf, 1, n, f) : 0;
    if (*got < n && ferror(f))
        return DPT_FAIL(DPT_ERR_IO, "%s: read error: %s", path, strerror(errno));
    return DPT_OK;
}

/* Opens path and parses its header; *size is the file's size. */
static dpt_status open_header(dpt_npy_header *h, const char *path, FILE **out, uint64_t *size)
{
    memset(h, 0, sizeof *h);
    *out = NULL;
    if (!host_is_little_endian())
        return DPT_FAIL(DPT_ERR_ARG, "%s: .npy files are read on little-endian hosts only", path);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return DPT_FAIL(DPT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(f);
        return DPT_FAIL(DPT_ERR_IO, "cannot read %s: not a regular file", path);
    }
    *size = (uint64_t)info.st_size;
    unsigned char prefix[DPT_NPY_PREFIX_V2];
    size_t got;
    dpt_status st = read_exact(f, prefix, sizeof prefix, &got, path);
    if (st == DPT_OK) st = parse_prefix(h, prefix, got, path);
    char *text = st == DPT_OK ? malloc(h->data_offset) : NULL;
    if (st == DPT_OK && !text) st = DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory for the header", path);
    if (st == DPT_OK) {
        memcpy(text, prefix, got);
        size_t more = 0;
        if (h->data_offset > got) st = read_exact(f, text + got, h->data_offset - got, &more, path);
        if (st == DPT_OK) st = dpt_npy_parse_header(h, text, got + more, path);
    }
    free(text);
    if (st == DPT_OK) st = dpt_npy_check_size(h, *size, path);
    if (st == DPT_OK && fseeko(f, (off_t)h->data_offset, SEEK_SET) != 0)
        st = DPT_FAIL(DPT_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    if (st != DPT_OK) {
        fclose(f);
        memset(h, 0, sizeof *h);
        return st;
    }
    *out = f;
    return DPT_OK;
}

dpt_status dpt_npy_read_header(dpt_npy_header *h, const char *path)
{
    FILE *f;
    uint64_t size;
    dpt_status st = open_header(h, path, &f, &size);
    if (f) fclose(f);
    return st;
}

dpt_status dpt_npy_read(dpt_npy *arr, const char *path)
{
    memset(arr, 0, sizeof *arr);
    FILE *f;
    uint64_t size;
    dpt_status st = open_header(&arr->h, path, &f, &size);
    if (st != DPT_OK) return st;
    if (arr->h.data_bytes) {
        arr->data = malloc(arr->h.data_bytes);
        if (!arr->data) st = DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, arr->h.data_bytes);
    }
    size_t got = 0;
    if (st == DPT_OK) st = read_exact(f, arr->data, arr->h.data_bytes, &got, path);
    if (st == DPT_OK && got < arr->h.data_bytes) /* the file shrank since fstat */
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated: the .npy header declares %zu bytes of data, "
                      "read %zu", path, arr->h.data_bytes, got);
    fclose(f);
    if (st != DPT_OK) dpt_npy_free(arr);
    return st;
}

dpt_status dpt_npy_parse(dpt_npy *arr, const void *buf, size_t len, const char *name)
{
    memset(arr, 0, sizeof *arr);
    if (!name) name = "(memory)";
    if (!host_is_little_endian())
        return DPT_FAIL(DPT_ERR_ARG, "%s: .npy files are read on little-endian hosts only", name);
    dpt_status st = dpt_npy_parse_header(&arr->h, buf, len, name);
    if (st == DPT_OK) st = dpt_npy_check_size(&arr->h, len, name);
    if (st == DPT_OK && arr->h.data_bytes) {
        arr->data = malloc(arr->h.data_bytes);
        if (!arr->data) st = DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory (%zu bytes)", name, arr->h.data_bytes);
        else memcpy(arr->data, (const unsigned char *)buf + arr->h.data_offset, arr->h.data_bytes);
    }
    if (st != DPT_OK) dpt_npy_free(arr);
    return st;
}

void dpt_npy_free(dpt_npy *arr)
{
    free(arr->data);
    memset(arr, 0, sizeof *arr);
}

/* ---------------------------------------------------------------- writer */

/* NumPy's rules (numpy/lib/format.py, 1.24): the dict's repr with sorted
 * keys, spaces for the first dimension to grow to 21 digits, then spaces
 * and '\n' up to a multiple of 64 bytes from the start of the file. */
size_t dpt_npy_format_header(char *out, size_t out_size, dpt_npy_dtype dtype, int ndim,
                             const size_t *shape)
{
    enum { GROWTH_AXIS_MAX_DIGITS = 21, ARRAY_ALIGN = 64 };
    if ((unsigned)dtype >= DPT_NPY_DTYPE_COUNT_ || ndim < 0 || ndim > DPT_NPY_MAX_DIMS) return 0;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtypes[dtype].descr);
    for (int d = 0; d < ndim; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%zu", d ? ", " : "", shape[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        int digits = snprintf(NULL, 0, "%zu", shape[0]);
        for (int i = digits; i < GROWTH_AXIS_MAX_DIGITS; i++) dict[n++] = ' ';
    }
    size_t text = (size_t)n + 1; /* with the '\n' */
    size_t prefix = DPT_NPY_PREFIX_V1;
    size_t pad = ARRAY_ALIGN - (prefix + text) % ARRAY_ALIGN;
    if (text + pad > 65535) { /* version 2.0: a 4-byte length */
        prefix = DPT_NPY_PREFIX_V2;
        pad = ARRAY_ALIGN - (prefix + text) % ARRAY_ALIGN;
    }
    size_t total = prefix + text + pad, stored = text + pad;
    if (total >= out_size) return total;
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = prefix == DPT_NPY_PREFIX_V1 ? 1 : 2;
    out[7] = 0;
    for (size_t b = 0; b < prefix - 8; b++) out[8 + b] = (char)(stored >> (8 * b) & 0xff);
    memcpy(out + prefix, dict, (size_t)n);
    memset(out + prefix + n, ' ', pad);
    out[total - 1] = '\n';
    out[total] = '\0';
    return total;
}

dpt_status dpt_npy_write(const char *path, dpt_npy_dtype dtype, int ndim, const size_t *shape,
                         const void *data)
{
    if (!path || !*path) return DPT_FAIL(DPT_ERR_ARG, "npy: no path to write to");
    if ((unsigned)dtype >= DPT_NPY_DTYPE_COUNT_ || ndim < 0 || ndim > DPT_NPY_MAX_DIMS ||
        (ndim > 0 && !shape))
        return DPT_FAIL(DPT_ERR_ARG, "%s: bad .npy dtype %d or dimension count %d", path, (int)dtype, ndim);
    if (!host_is_little_endian())
        return DPT_FAIL(DPT_ERR_ARG, "%s: .npy files are written on little-endian hosts only", path);
    size_t count = 1, bytes;
    for (int d = 0; d < ndim; d++)
        if (__builtin_mul_overflow(count, shape[d], &count))
            return DPT_FAIL(DPT_ERR_ARG, "%s: .npy shape overflows", path);
    if (__builtin_mul_overflow(count, dtypes[dtype].size, &bytes))
        return DPT_FAIL(DPT_ERR_ARG, "%s: .npy shape overflows", path);
    if (bytes && !data) return DPT_FAIL(DPT_ERR_ARG, "%s: no data for a non-empty array", path);

    char header[1024];
    size_t header_len = dpt_npy_format_header(header, sizeof header, dtype, ndim, shape);
    dpt_file_piece pieces[2] = {{header, header_len}, {data, bytes}};
    return dpt_file_write_atomic(path, pieces, 2, "", "");
}
