/* IDX reader (gzipped or plain) with full validation. */
#include "dpt/data.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_READ_CHUNK (1u << 20)

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return NULL;
    }
}

/* A byte source over a plain or gzipped file, or a buffer in memory. gzip
 * is recognized by its magic bytes 1f 8b and decoded with zlib's inflate
 * directly (not gzread), so that damage anywhere is an error: bad deflate
 * data, a bad CRC-32 or length, a stream cut short, and bytes after the last
 * gzip member, which gzread would silently ignore. Concatenated gzip members
 * are read in sequence, as gzip(1) does. A file is read through `in` in
 * pieces; a buffer is handed to zlib (or copied from) as it is. */
typedef struct idx_source {
    FILE *file;                /* NULL: the bytes are mem[0..mem_len) */
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    const char *path;          /* names the file or buffer in messages */
    int gzip;          /* 1: inflate; 0: plain bytes */
    int zlib_ready;    /* inflateInit2 succeeded: inflateEnd is due */
    int at_end;        /* the gzip data ended cleanly */
    z_stream z;
    unsigned char in[1 << 16];
} idx_source;

static dpt_status source_fill(idx_source *src)
{
    if (!src->file) { /* the next piece of the buffer (avail_in is a uInt) */
        size_t n = src->mem_len - src->mem_pos;
        if (n > UINT_MAX) n = UINT_MAX;
        src->z.next_in = (Bytef *)(uintptr_t)(src->mem + src->mem_pos); /* zlib reads only */
        src->z.avail_in = (uInt)n;
        src->mem_pos += n;
        return DPT_OK;
    }
    size_t n = fread(src->in, 1, sizeof src->in, src->file);
    if (n == 0 && ferror(src->file))
        return DPT_FAIL(DPT_ERR_IO, "%s: read error: %s", src->path, strerror(errno));
    src->z.next_in = src->in;
    src->z.avail_in = (uInt)n;
    return DPT_OK;
}

/* Fills the first bytes and decides between gzip and plain. */
static dpt_status source_start(idx_source *src)
{
    dpt_status st = source_fill(src);
    if (st != DPT_OK) return st;
    src->gzip = src->z.avail_in >= 2 && src->z.next_in[0] == 0x1f && src->z.next_in[1] == 0x8b;
    /* 16 + MAX_WBITS: expect a gzip wrapper and check its CRC-32 and length */
    if (src->gzip) {
        if (inflateInit2(&src->z, 16 + MAX_WBITS) != Z_OK)
            return DPT_FAIL(DPT_ERR_NOMEM, "%s: cannot start gzip decoding", src->path);
        src->zlib_ready = 1;
    }
    return DPT_OK;
}

static dpt_status source_open(idx_source *src, const char *path)
{
    memset(src, 0, offsetof(idx_source, in));
    src->path = path;
    errno = 0;
    src->file = fopen(path, "rb");
    if (!src->file) return DPT_FAIL(DPT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    return source_start(src);
}

static dpt_status source_open_memory(idx_source *src, const void *buf, size_t len, const char *name)
{
    memset(src, 0, offsetof(idx_source, in));
    src->path = name;
    src->mem = buf;
    src->mem_len = buf ? len : 0;
    return source_start(src);
}

static void source_close(idx_source *src)
{
    if (src->zlib_ready) inflateEnd(&src->z);
    src->zlib_ready = 0;
    if (src->file) fclose(src->file);
    src->file = NULL;
}

/* After a gzip member ends: another member may follow, anything else is
 * damage. */
static dpt_status next_member(idx_source *src)
{
    if (src->z.avail_in == 0) {
        dpt_status st = source_fill(src);
        if (st != DPT_OK) return st;
    }
    if (src->z.avail_in == 0) {
        src->at_end = 1;
        return DPT_OK;
    }
    if (src->z.avail_in >= 2 && src->z.next_in[0] == 0x1f && src->z.next_in[1] == 0x8b) {
        inflateReset(&src->z);
        return DPT_OK;
    }
    return DPT_FAIL(DPT_ERR_FORMAT, "%s: trailing data after the gzip stream", src->path);
}

static dpt_status gzip_read(idx_source *src, unsigned char *buf, size_t want, size_t *got)
{
    while (*got < want && !src->at_end) {
        if (src->z.avail_in == 0) {
            dpt_status st = source_fill(src);
            if (st != DPT_OK) return st;
            if (src->z.avail_in == 0)
                return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated gzip data (unexpected end of file)",
                                src->path);
        }
        size_t room = want - *got;
        src->z.next_out = buf + *got;
        src->z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = src->z.avail_out;
        int rc = inflate(&src->z, Z_NO_FLUSH);
        *got += before - src->z.avail_out;
        if (rc == Z_STREAM_END) {
            dpt_status st = next_member(src);
            if (st != DPT_OK) return st;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: corrupt gzip data (%s)", src->path,
                            src->z.msg ? src->z.msg : zError(rc));
        }
    }
    return DPT_OK;
}

/* Reads up to `want` bytes; *got < want only at the end of the data. */
static dpt_status source_read(idx_source *src, void *buf, size_t want, size_t *got)
{
    *got = 0;
    if (src->gzip) return gzip_read(src, buf, want, got);
    while (*got < want) {
        if (src->z.avail_in == 0) {
            dpt_status st = source_fill(src);
            if (st != DPT_OK) return st;
            if (src->z.avail_in == 0) break;
        }
        size_t piece = want - *got < src->z.avail_in ? want - *got : src->z.avail_in;
        memcpy((unsigned char *)buf + *got, src->z.next_in, piece);
        src->z.next_in += piece;
        src->z.avail_in -= (uInt)piece;
        *got += piece;
    }
    return DPT_OK;
}

static dpt_status read_header(idx_source *src, const char *path, dpt_idx *idx)
{
    unsigned char magic[4];
    size_t got;
    dpt_status st = source_read(src, magic, 4, &got);
    if (st != DPT_OK) return st;
    if (got < 4)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated IDX header (%zu of 4 magic bytes)", path, got);
    if (magic[0] != 0 || magic[1] != 0 || !idx_type_name(magic[2]))
        return DPT_FAIL(DPT_ERR_FORMAT,
                        "%s: not an IDX file (magic %02x %02x %02x %02x; expected 00 00 <type> <ndim>)",
                        path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: IDX element type 0x%02X (%s) is not supported; "
                        "dptrain reads unsigned-byte (0x08) IDX files", path, magic[2],
                        idx_type_name(magic[2]));
    if (magic[3] < 1 || magic[3] > DPT_IDX_MAX_DIMS)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: IDX dimension count %d out of range 1..%d", path,
                        magic[3], DPT_IDX_MAX_DIMS);
    idx->ndim = magic[3];
    unsigned char dims[4 * DPT_IDX_MAX_DIMS];
    st = source_read(src, dims, 4 * (size_t)idx->ndim, &got);
    if (st != DPT_OK) return st;
    if (got < 4 * (size_t)idx->ndim)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated IDX header (%d dimension sizes declared)",
                        path, idx->ndim);
    idx->count = 1;
    for (int d = 0; d < idx->ndim; d++) {
        const unsigned char *p = dims + 4 * d;
        idx->dims[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (idx->dims[d] == 0)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: IDX dimension %d has size 0", path, d);
        if (idx->count > SIZE_MAX / idx->dims[d])
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: IDX sizes overflow", path);
        idx->count *= idx->dims[d];
    }
    return DPT_OK;
}

/* Reads the body in chunks, growing the buffer as data actually arrives,
 * so that a header that lies about its sizes fails as "truncated" instead of
 * reserving gigabytes first. */
static dpt_status read_body(idx_source *src, const char *path, dpt_idx *idx)
{
    size_t have = 0, capacity = 0;
    while (have < idx->count) {
        size_t want = idx->count - have;
        if (want > IDX_READ_CHUNK) want = IDX_READ_CHUNK;
        if (have + want > capacity) {
            size_t grown = capacity ? capacity * 2 : IDX_READ_CHUNK;
            if (grown > idx->count) grown = idx->count;
            uint8_t *bigger = realloc(idx->data, grown);
            if (!bigger) return DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, grown);
            idx->data = bigger;
            capacity = grown;
        }
        size_t got;
        dpt_status st = source_read(src, idx->data + have, want, &got);
        if (st != DPT_OK) return st;
        have += got;
        if (got < want)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated: the header declares %zu elements, "
                            "the file holds %zu", path, idx->count, have);
    }
    unsigned char extra;
    size_t got;
    dpt_status st = source_read(src, &extra, 1, &got);
    if (st != DPT_OK) return st;
    if (got != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: trailing data after the %zu elements the header declares",
                        path, idx->count);
    return DPT_OK;
}

/* The header, and the body too if with_body, from the file at path or (path
 * NULL) from buf[0..len), which `name` names in messages. */
static dpt_status read_idx(dpt_idx *idx, const char *path, const void *buf, size_t len,
                           const char *name, int with_body)
{
    memset(idx, 0, sizeof *idx);
    idx_source *src = malloc(sizeof *src); /* 64 KiB input buffer: not on the stack */
    if (!src) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory opening %s", name);
    dpt_status st = path ? source_open(src, path) : source_open_memory(src, buf, len, name);
    if (st == DPT_OK) st = read_header(src, name, idx);
    if (st == DPT_OK && with_body) st = read_body(src, name, idx);
    source_close(src);
    free(src);
    if (st != DPT_OK) dpt_idx_free(idx);
    return st;
}

dpt_status dpt_idx_read(dpt_idx *idx, const char *path)
{
    return read_idx(idx, path, NULL, 0, path, 1);
}

dpt_status dpt_idx_read_header(dpt_idx *idx, const char *path)
{
    return read_idx(idx, path, NULL, 0, path, 0);
}

dpt_status dpt_idx_parse(dpt_idx *idx, const void *buf, size_t len, const char *name)
{
    return read_idx(idx, NULL, buf, len, name ? name : "(memory)", 1);
}

void dpt_idx_sample_shape(const dpt_idx *idx, int shape[3])
{
    size_t features = idx->dims[0] ? idx->count / idx->dims[0] : 0;
    shape[0] = (int)features;
    shape[1] = shape[2] = 1;
    if (idx->ndim == 3 || idx->ndim == 4) {
        shape[0] = idx->ndim == 4 ? (int)idx->dims[1] : 1;
        shape[1] = (int)idx->dims[idx->ndim - 2];
        shape[2] = (int)idx->dims[idx->ndim - 1];
    }
}

void dpt_idx_free(dpt_idx *idx)
{
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
