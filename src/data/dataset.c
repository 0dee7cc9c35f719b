/* Labelled data sets, batch gathering and the batch split across ranks. */
#include "dpt/data.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clones.h"
#include "../core/mem.h"

void dpt_dataset_count_classes(dpt_dataset *set)
{
    int largest = 0;
    for (size_t i = 0; i < set->n_samples; i++)
        if (set->labels[i] > largest) largest = set->labels[i];
    set->n_classes = largest + 1;
}

size_t dpt_dataset_feature_size(dpt_feature_type type)
{
    switch (type) {
    case DPT_FEATURES_U8: return 1;
    case DPT_FEATURES_F32: return 4;
    case DPT_FEATURES_F64: return 8;
    }
    return 0;
}

dpt_status dpt_dataset_alloc(dpt_dataset *set, dpt_feature_type type, size_t n_samples,
                             size_t n_features, const char *name)
{
    memset(set, 0, sizeof *set);
    size_t size = dpt_dataset_feature_size(type), bytes;
    if (!name) name = "data set";
    if (n_samples == 0 || n_features == 0 || size == 0)
        return DPT_FAIL(DPT_ERR_ARG, "%s: empty data set (%zu samples x %zu features)", name,
                        n_samples, n_features);
    if (__builtin_mul_overflow(n_samples, n_features, &bytes) ||
        __builtin_mul_overflow(bytes, size, &bytes))
        return DPT_FAIL(DPT_ERR_NOMEM, "%s: %zu x %zu features do not fit in memory", name,
                        n_samples, n_features);
    set->features = dpt_malloc_large(bytes); /* huge pages: the gather reads random rows */
    set->labels = calloc(n_samples, 1);
    if (!set->features || !set->labels) {
        dpt_dataset_free(set);
        return DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory for %zu x %zu features (%zu bytes)", name,
                        n_samples, n_features, bytes);
    }
    set->n_samples = n_samples;
    set->n_features = n_features;
    set->feature_type = type;
    set->shape[0] = n_features <= INT_MAX ? (int)n_features : 0;
    set->shape[1] = set->shape[2] = 1;
    set->n_classes = 1;
    return DPT_OK;
}

dpt_status dpt_dataset_take(dpt_dataset *set, dpt_feature_type type, void *features,
                            uint8_t *labels, size_t n_samples, size_t n_features, const char *name)
{
    memset(set, 0, sizeof *set);
    if (n_samples == 0 || n_features == 0 || !features || !labels || !dpt_dataset_feature_size(type)) {
        free(features);
        free(labels);
        return DPT_FAIL(DPT_ERR_ARG, "%s: empty data set (%zu samples x %zu features)",
                        name ? name : "data set", n_samples, n_features);
    }
    set->features = features;
    set->labels = labels;
    dpt_advise_huge(features, n_samples * n_features * dpt_dataset_feature_size(type));
    set->n_samples = n_samples;
    set->n_features = n_features;
    set->feature_type = type;
    set->shape[0] = n_features <= INT_MAX ? (int)n_features : 0;
    set->shape[1] = set->shape[2] = 1;
    dpt_dataset_count_classes(set);
    return DPT_OK;
}

void *dpt_dataset_rows(dpt_dataset *set, size_t first)
{
    return (unsigned char *)set->features +
           first * set->n_features * dpt_dataset_feature_size(set->feature_type);
}

dpt_status dpt_dataset_load(dpt_dataset *set, const char *images_path, const char *labels_path)
{
    memset(set, 0, sizeof *set);
    dpt_idx images, labels;
    dpt_status st = dpt_idx_read(&images, images_path);
    if (st != DPT_OK) return st;
    st = dpt_idx_read(&labels, labels_path);
    if (st != DPT_OK) {
        dpt_idx_free(&images);
        return st;
    }
    return dpt_dataset_from_idx(set, &images, &labels, images_path, labels_path);
}

dpt_status dpt_dataset_from_idx(dpt_dataset *set, dpt_idx *images, dpt_idx *labels,
                                const char *images_name, const char *labels_name)
{
    memset(set, 0, sizeof *set);
    dpt_status st = DPT_OK;
    if (images->ndim < 2) {
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: images need at least 2 dimensions "
                      "(samples x features), the file has %d", images_name, images->ndim);
    } else if (labels->ndim != 1) {
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: labels must be 1-dimensional, the file has %d dimensions",
                      labels_name, labels->ndim);
    } else if (labels->dims[0] != images->dims[0]) {
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s holds %u images but %s holds %u labels",
                      images_name, images->dims[0], labels_name, labels->dims[0]);
    }
    if (st != DPT_OK) {
        dpt_idx_free(images);
        dpt_idx_free(labels);
        return st;
    }
    set->n_samples = images->dims[0];
    set->n_features = images->count / images->dims[0];
    dpt_idx_sample_shape(images, set->shape);
    set->feature_type = DPT_FEATURES_U8;
    set->features = images->data; /* ownership moves to the data set */
    dpt_advise_huge(set->features, images->count); /* the gather reads random rows */
    set->labels = labels->data;
    images->data = labels->data = NULL;
    dpt_idx_free(images);
    dpt_idx_free(labels);
    dpt_dataset_count_classes(set);
    return DPT_OK;
}

/* A copy of n_samples x n_features elements of `type` and their labels. */
static dpt_status from_memory(dpt_dataset *set, dpt_feature_type type, const void *features,
                              const uint8_t *labels, size_t n_samples, size_t n_features)
{
    dpt_status st = dpt_dataset_alloc(set, type, n_samples, n_features, NULL);
    if (st != DPT_OK) return st;
    memcpy(set->features, features, n_samples * n_features * dpt_dataset_feature_size(type));
    memcpy(set->labels, labels, n_samples);
    dpt_dataset_count_classes(set);
    return DPT_OK;
}

dpt_status dpt_dataset_from_arrays(dpt_dataset *set, const uint8_t *features,
                                   const uint8_t *labels, size_t n_samples, size_t n_features)
{
    return from_memory(set, DPT_FEATURES_U8, features, labels, n_samples, n_features);
}

dpt_status dpt_dataset_from_floats(dpt_dataset *set, const float *features,
                                   const uint8_t *labels, size_t n_samples, size_t n_features)
{
    return from_memory(set, DPT_FEATURES_F32, features, labels, n_samples, n_features);
}

void dpt_dataset_free(dpt_dataset *set)
{
    free(set->features);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

/* One row of features as dpt_real. restrict: uint8_t is a character type,
 * which may alias anything, so without it the compiler must assume each
 * store into dst can change src and converts one byte at a time. */
DPT_CLONES static void row_u8(dpt_real *restrict dst, const uint8_t *restrict src, size_t nf)
{
    const dpt_real scale = (dpt_real)(1.0 / 255.0);
    for (size_t f = 0; f < nf; f++) dst[f] = (dpt_real)src[f] * scale;
}

static void row_f32(dpt_real *restrict dst, const float *restrict src, size_t nf)
{
    for (size_t f = 0; f < nf; f++) dst[f] = (dpt_real)src[f];
}

static void row_f64(dpt_real *restrict dst, const double *restrict src, size_t nf)
{
    for (size_t f = 0; f < nf; f++) dst[f] = (dpt_real)src[f];
}

/* Asks for the cache lines of a row before they are read: the rows of a
 * batch are scattered over the set, so each one starts with a cache miss
 * that the hardware prefetcher cannot foresee. */
static void prefetch_row(const dpt_dataset *set, uint32_t index)
{
    const size_t bytes = set->n_features * dpt_dataset_feature_size(set->feature_type);
    const char *row = (const char *)set->features + (size_t)index * bytes;
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(row + b);
}

void dpt_dataset_gather(const dpt_dataset *set, const uint32_t *indices, size_t count,
                        dpt_real *x, uint8_t *y)
{
    const size_t nf = set->n_features;
    enum { AHEAD = 2 }; /* rows in flight while one is converted */
    for (size_t i = 0; i < count && i < AHEAD; i++) prefetch_row(set, indices[i]);
    for (size_t i = 0; i < count; i++) {
        if (i + AHEAD < count) prefetch_row(set, indices[i + AHEAD]);
        const size_t row = (size_t)indices[i] * nf;
        switch (set->feature_type) {
        case DPT_FEATURES_U8: row_u8(x + i * nf, (const uint8_t *)set->features + row, nf); break;
        case DPT_FEATURES_F32: row_f32(x + i * nf, (const float *)set->features + row, nf); break;
        case DPT_FEATURES_F64: row_f64(x + i * nf, (const double *)set->features + row, nf); break;
        }
        y[i] = set->labels[indices[i]];
    }
}

void dpt_split_range(size_t n, int parts, int i, size_t *begin, size_t *count)
{
    /* piece i is [n i / parts, n (i+1) / parts): sizes differ by at most one */
    size_t lo = n * (size_t)i / (size_t)parts;
    size_t hi = n * (size_t)(i + 1) / (size_t)parts;
    *begin = lo;
    *count = hi - lo;
}

dpt_status dpt_batch_plan_init(dpt_batch_plan *plan, size_t n_samples, size_t batch_size,
                               int drop_last, int rank, int ranks)
{
    memset(plan, 0, sizeof *plan);
    if (ranks < 1 || rank < 0 || rank >= ranks || batch_size == 0 || n_samples == 0)
        return DPT_FAIL(DPT_ERR_ARG, "bad batch plan (n %zu, batch %zu, rank %d of %d)",
                        n_samples, batch_size, rank, ranks);
    plan->n_samples = n_samples;
    plan->global_batch = batch_size * (size_t)ranks;
    plan->drop_last = drop_last;
    plan->rank = rank;
    plan->ranks = ranks;
    plan->steps_per_epoch = drop_last ? n_samples / plan->global_batch
                                      : (n_samples + plan->global_batch - 1) / plan->global_batch;
    if (plan->steps_per_epoch == 0)
        return DPT_FAIL(DPT_ERR_ARG, "drop_last with a global batch of %zu leaves no step "
                        "in an epoch of %zu samples", plan->global_batch, n_samples);
    return DPT_OK;
}

void dpt_batch_slice(const dpt_batch_plan *plan, size_t step, size_t *begin, size_t *count,
                     size_t *global_count)
{
    size_t start = step * plan->global_batch;
    size_t end = start + plan->global_batch;
    if (end > plan->n_samples) end = plan->n_samples;
    *global_count = end - start;
    size_t offset;
    dpt_split_range(*global_count, plan->ranks, plan->rank, &offset, count);
    *begin = start + offset;
}
