/* libFuzzer harness: an image file and a label file as a pair, through
 * dpt_idx_parse and dpt_dataset_from_idx (what dpt_dataset_load does with
 * two files), then gathering samples as a training step does.
 *
 * Input: 2 bytes, little-endian, the length L of the image file (cut to
 * what remains), then L bytes of it, then the label file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t images_len = (size_t)data[0] | (size_t)data[1] << 8;
    const unsigned knob = data[0]; /* also picks the batch plan below */
    data += 2;
    size -= 2;
    if (images_len > size) images_len = size;

    dpt_idx images, labels;
    if (dpt_idx_parse(&images, data, images_len, "images.idx") != DPT_OK) return 0;
    if (dpt_idx_parse(&labels, data + images_len, size - images_len, "labels.idx") != DPT_OK) {
        dpt_idx_free(&images);
        return 0;
    }
    dpt_dataset set;
    if (dpt_dataset_from_idx(&set, &images, &labels, "images.idx", "labels.idx") != DPT_OK) {
        if (images.data || labels.data || set.features || set.labels) abort();
        return 0;
    }
    if (set.n_samples == 0 || set.n_features == 0 || set.n_classes < 1 || set.n_classes > 256) abort();
    if ((size_t)set.shape[0] * (size_t)set.shape[1] * (size_t)set.shape[2] != set.n_features) abort();

    /* the first, middle and last samples, scaled to [0, 1] */
    uint32_t index[3] = {0, (uint32_t)(set.n_samples / 2), (uint32_t)(set.n_samples - 1)};
    dpt_real *x = malloc(sizeof(dpt_real) * 3 * set.n_features);
    uint8_t y[3];
    if (!x) abort();
    dpt_dataset_gather(&set, index, 3, x, y);
    for (size_t i = 0; i < 3 * set.n_features; i++)
        if (!(x[i] >= 0 && x[i] <= 1)) abort();
    for (int i = 0; i < 3; i++)
        if (y[i] >= set.n_classes) abort();
    free(x);

    /* a batch plan over the set: every sample once per epoch */
    dpt_batch_plan plan;
    size_t batch = 1 + knob % 7;
    int ranks = 1 + (int)(knob / 7 % 3), seen = 0;
    for (int r = 0; r < ranks; r++) {
        if (dpt_batch_plan_init(&plan, set.n_samples, batch, 0, r, ranks) != DPT_OK) abort();
        for (size_t s = 0; s < plan.steps_per_epoch && s < 1000; s++) {
            size_t begin, count, global;
            dpt_batch_slice(&plan, s, &begin, &count, &global);
            if (begin + count > set.n_samples || global > batch * (size_t)ranks) abort();
            seen += (int)count;
        }
    }
    if (set.n_samples <= 1000 && (size_t)seen != set.n_samples) abort();
    dpt_dataset_free(&set);
    return 0;
}
