/* libFuzzer harness: the checkpoint reader (src/ckpt), dpt_ckpt_parse on a
 * file's bytes. The header is JSON with a CRC over it, which a fuzzer
 * would rarely get right by itself, so each input is parsed twice: as it is,
 * and with the header's "crc32.header" value recomputed (when it has one),
 * which lets mutations of the JSON reach the checks behind that CRC. The
 * seeds are valid checkpoints.
 *
 * A parse that succeeds must describe tensors that lie inside the file,
 * each findable by name with the right size, and metadata findable by key;
 * a failed one must leave *out empty and nothing allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dpt/checkpoint.h"

/* Writes the right CRC into the header's "crc32.header":"XXXXXXXX" (the
 * format's rule: the CRC of the header with those 8 digits as "00000000").
 * Returns 0 when there is no such header to fix. */
static int fix_header_crc(unsigned char *blob, size_t len)
{
    static const char key[] = "\"crc32.header\":\"";
    const size_t key_len = sizeof key - 1;
    if (len < 8) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | blob[i];
    if (n > len - 8) return 0;
    unsigned char *header = blob + 8;
    for (size_t i = 0; i + key_len + 8 <= n; i++) {
        if (memcmp(header + i, key, key_len) != 0) continue;
        unsigned char *digits = header + i + key_len;
        memcpy(digits, "00000000", 8);
        char hex[9];
        snprintf(hex, sizeof hex, "%08lx", crc32(0L, header, (uInt)n) & 0xffffffffUL);
        memcpy(digits, hex, 8);
        return 1;
    }
    return 0;
}

static void check(const uint8_t *data, size_t size)
{
    dpt_ckpt ckpt;
    if (dpt_ckpt_parse(data, size, "fuzz.safetensors", &ckpt) != DPT_OK) {
        if (ckpt.blob || ckpt.tensors || ckpt.n_tensors || ckpt.meta_keys) abort();
        dpt_ckpt_free(&ckpt);
        return;
    }
    if (ckpt.blob_size != size) abort();
    for (size_t i = 0; i < ckpt.n_tensors; i++) {
        const dpt_ckpt_tensor *t = &ckpt.tensors[i];
        size_t elem = dpt_ckpt_dtype_size(t->dtype);
        if (elem == 0 || t->ndim < 0 || t->ndim > DPT_CKPT_MAX_DIMS) abort();
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) count *= t->shape[d];
        if (count != t->count || t->bytes != count * elem) abort();
        const unsigned char *p = t->data, *blob = ckpt.blob;
        if (t->bytes && (p < blob || p > blob + ckpt.blob_size || t->bytes > (size_t)(blob + ckpt.blob_size - p)))
            abort();
        if (dpt_ckpt_find(&ckpt, t->name) != t) abort();
        if (t->bytes <= (1u << 20)) {
            void *copy = malloc(t->bytes ? t->bytes : 1);
            if (!copy) abort();
            if (dpt_ckpt_get_tensor(&ckpt, t->name, t->dtype, t->count, copy) != DPT_OK) abort();
            if (t->bytes && memcmp(copy, t->data, t->bytes) != 0) abort();
            free(copy);
        }
    }
    for (size_t i = 0; i < ckpt.n_meta; i++) {
        const char *value = dpt_ckpt_meta(&ckpt, ckpt.meta_keys[i]);
        if (!value || strcmp(value, ckpt.meta_values[i]) != 0) abort();
        int64_t number;
        (void)dpt_ckpt_get_meta_int(&ckpt, ckpt.meta_keys[i], &number);
    }
    dpt_ckpt_free(&ckpt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    unsigned char *fixed = malloc(size ? size : 1);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    if (fix_header_crc(fixed, size)) check(fixed, size);
    free(fixed);
    return 0;
}
