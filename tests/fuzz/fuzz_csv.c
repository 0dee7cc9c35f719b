/* libFuzzer harness: the CSV parser (src/data/csv.c), dpt_csv_parse on
 * text. The first byte picks the options (header auto/yes/no, label column
 * 0, -1, "label" or none), the rest is the file. A parse that succeeds must
 * give a consistent data set (every sample gathered, labels 0..255, the
 * classes their maximum + 1); a failed one must leave nothing allocated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/data.h"

volatile double fuzz_csv_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char *const columns[4] = {"0", "-1", "label", "none"};
    dpt_load_options o = {DPT_FORMAT_CSV, columns[data[0] & 3], (data[0] >> 2) % 3};
    dpt_dataset set;
    if (dpt_csv_parse(&set, (const char *)data + 1, size - 1, "fuzz.csv", &o) != DPT_OK) {
        if (set.features || set.labels || set.n_samples) abort();
        return 0;
    }
    if (set.n_samples == 0 || set.n_features == 0) abort();
    int largest = 0;
    for (size_t i = 0; i < set.n_samples; i++) largest = set.labels[i] > largest ? set.labels[i] : largest;
    if (set.n_classes != largest + 1) abort();
    dpt_real *x = malloc(sizeof *x * set.n_features);
    if (!x) abort();
    double sum = 0;
    for (uint32_t i = 0; i < set.n_samples; i++) {
        uint8_t y;
        dpt_dataset_gather(&set, &i, 1, x, &y);
        for (size_t f = 0; f < set.n_features; f++) sum += x[f];
    }
    fuzz_csv_sink = sum;
    free(x);
    dpt_dataset_free(&set);
    return 0;
}
