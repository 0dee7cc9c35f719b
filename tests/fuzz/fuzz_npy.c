/* libFuzzer harness: the .npy parser (src/data/npy.c), dpt_npy_parse on a
 * file's bytes (header, then the data's size against it). A parse that
 * succeeds must describe its data consistently (shape product, element
 * size, the data exactly filling the rest of the input, every byte there);
 * the header NumPy would write for the same dtype and shape
 * (dpt_npy_format_header) must parse back to them; a failed parse must
 * leave nothing allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/npy.h"

volatile unsigned fuzz_npy_sink; /* keeps the read of every byte */

static void check_round_trip(const dpt_npy_header *h)
{
    char header[1024];
    size_t len = dpt_npy_format_header(header, sizeof header, h->dtype, h->ndim, h->shape);
    if (len == 0 || len >= sizeof header || len % 64 != 0) abort();
    dpt_npy_header again;
    if (dpt_npy_parse_header(&again, header, len, "written.npy") != DPT_OK) {
        fprintf(stderr, "fuzz_npy: a written header does not parse: %s\n", dpt_error_message());
        abort();
    }
    if (again.dtype != h->dtype || again.ndim != h->ndim || again.count != h->count ||
        again.data_offset != len || memcmp(again.shape, h->shape, sizeof h->shape) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpt_npy arr;
    if (dpt_npy_parse(&arr, data, size, "fuzz.npy") != DPT_OK) {
        if (arr.data != NULL || arr.h.count != 0) abort();
        return 0;
    }
    const dpt_npy_header *h = &arr.h;
    if (h->ndim < 0 || h->ndim > DPT_NPY_MAX_DIMS || (h->major < 1 || h->major > 3)) abort();
    size_t count = 1;
    for (int d = 0; d < h->ndim; d++) count *= h->shape[d];
    if (count != h->count || h->data_bytes != count * dpt_npy_dtype_size(h->dtype)) abort();
    if (h->data_offset + h->data_bytes != size || (h->data_bytes && !arr.data)) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < h->data_bytes; i++) sum += ((const unsigned char *)arr.data)[i];
    fuzz_npy_sink = sum;
    check_round_trip(h);
    dpt_npy_free(&arr);
    return 0;
}
