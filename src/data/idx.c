/* IDX reader (gzipped or plain) with full validation. */
#include "dpt/data.h"

#include <errno.h>
#include <limits.h>
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

/* Reads up to `want` bytes; sets *got. Distinguishes the end of the data
 * (short count, no error) from a damaged gzip stream (error). */
static dpt_status gz_read_exact(gzFile file, const char *path, void *buf, size_t want,
                                size_t *got)
{
    *got = 0;
    while (*got < want) {
        size_t piece = want - *got;
        if (piece > INT_MAX / 2) piece = INT_MAX / 2;
        int n = gzread(file, (char *)buf + *got, (unsigned)piece);
        if (n < 0 || (n == 0 && !gzeof(file))) {
            int zerr = 0;
            const char *msg = gzerror(file, &zerr);
            if (zerr == Z_ERRNO)
                return DPT_FAIL(DPT_ERR_IO, "%s: read error: %s", path, strerror(errno));
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, msg);
        }
        if (n == 0) break;
        *got += (size_t)n;
    }
    /* zlib reports a gzip stream cut short as Z_BUF_ERROR at its end. */
    int zerr = 0;
    const char *msg = gzerror(file, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s)", path, msg);
    return DPT_OK;
}

static dpt_status read_header(gzFile file, const char *path, dpt_idx *idx)
{
    unsigned char magic[4];
    size_t got;
    dpt_status st = gz_read_exact(file, path, magic, 4, &got);
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
    st = gz_read_exact(file, path, dims, 4 * (size_t)idx->ndim, &got);
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
static dpt_status read_body(gzFile file, const char *path, dpt_idx *idx)
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
        dpt_status st = gz_read_exact(file, path, idx->data + have, want, &got);
        if (st != DPT_OK) return st;
        have += got;
        if (got < want)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated: the header declares %zu elements, "
                            "the file holds %zu", path, idx->count, have);
    }
    unsigned char extra;
    size_t got;
    dpt_status st = gz_read_exact(file, path, &extra, 1, &got);
    if (st != DPT_OK) return st;
    if (got != 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: trailing data after the %zu elements the header declares",
                        path, idx->count);
    return DPT_OK;
}

dpt_status dpt_idx_read(dpt_idx *idx, const char *path)
{
    memset(idx, 0, sizeof *idx);
    errno = 0;
    gzFile file = gzopen(path, "rb");
    if (!file)
        return DPT_FAIL(DPT_ERR_IO, "cannot open %s: %s", path,
                        errno ? strerror(errno) : "out of memory");
    dpt_status st = read_header(file, path, idx);
    if (st == DPT_OK) st = read_body(file, path, idx);
    gzclose(file);
    if (st != DPT_OK) dpt_idx_free(idx);
    return st;
}

void dpt_idx_free(dpt_idx *idx)
{
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
