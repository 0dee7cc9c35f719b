/* libFuzzer harness: the IDX reader (src/data/idx.c) on a file's bytes,
 * gzipped (they start 1f 8b) or plain, through dpt_idx_parse, the code
 * dpt_idx_read runs on a file. A successful parse must describe its data
 * consistently; a failed one must leave nothing allocated (LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dpt/data.h"

volatile unsigned fuzz_idx_sink; /* keeps the read of every element */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpt_idx idx;
    if (dpt_idx_parse(&idx, data, size, "fuzz.idx") != DPT_OK) {
        if (idx.data != NULL || idx.count != 0) abort();
        return 0;
    }
    if (idx.ndim < 1 || idx.ndim > DPT_IDX_MAX_DIMS || !idx.data) abort();
    size_t count = 1;
    for (int d = 0; d < idx.ndim; d++) {
        if (idx.dims[d] == 0) abort();
        count *= idx.dims[d];
    }
    if (count != idx.count) abort();
    /* every element is there: ASan catches a short buffer */
    unsigned sum = 0;
    for (size_t i = 0; i < idx.count; i++) sum += idx.data[i];
    fuzz_idx_sink = sum;
    int shape[3];
    dpt_idx_sample_shape(&idx, shape);
    if ((size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2] != idx.count / idx.dims[0]) abort();
    dpt_idx_free(&idx);
    return 0;
}
