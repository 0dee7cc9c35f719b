/* dpt/data.h - data sets from IDX files, and how a step's batch is split.
 *
 * IDX (LeCun's MNIST format, also Fashion-MNIST): a big-endian header
 * 0 0 <type> <ndim>, ndim 32-bit sizes, then the elements. Files may be
 * gzipped or plain (zlib reads both). Only unsigned-byte elements (type 0x08)
 * are accepted; images are stored as bytes and scaled to [0, 1] when a batch
 * is gathered, which keeps a full data set at one byte per pixel on every rank.
 */
#ifndef DPT_DATA_H
#define DPT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/real.h"

#define DPT_IDX_MAX_DIMS 8

/* One IDX array of unsigned bytes. */
typedef struct dpt_idx {
    int ndim;
    uint32_t dims[DPT_IDX_MAX_DIMS];
    size_t count;  /* product of dims */
    uint8_t *data; /* [count] */
} dpt_idx;

/* Reads and fully validates an IDX file (gzipped or plain): magic, element
 * type, dimension count and sizes, truncation, trailing bytes, gzip
 * integrity. Errors name the file. */
dpt_status dpt_idx_read(dpt_idx *idx, const char *path);
/* The same from an IDX file's bytes in memory, buf[0..len) (gzipped or
 * plain; dpt_idx_read runs this same code); errors name it `name`. */
dpt_status dpt_idx_parse(dpt_idx *idx, const void *buf, size_t len, const char *name);
void dpt_idx_free(dpt_idx *idx);
/* Reads and validates only the header (idx->data stays NULL). */
dpt_status dpt_idx_read_header(dpt_idx *idx, const char *path);
/* Per-sample shape C, H, W of an image file: (1, H, W) for N x H x W,
 * (C, H, W) for N x C x H x W, (features, 1, 1) otherwise. */
void dpt_idx_sample_shape(const dpt_idx *idx, int shape[3]);

/* A labelled data set: n samples of n_features bytes each. */
typedef struct dpt_dataset {
    size_t n_samples;
    size_t n_features;  /* product of the image dims after the first */
    int shape[3];       /* per-sample C, H, W: (1, H, W) for N x H x W files,
                           (C, H, W) for N x C x H x W, (D, 1, 1) otherwise */
    int n_classes;      /* largest label + 1 */
    uint8_t *features;  /* [n_samples][n_features], raw bytes */
    uint8_t *labels;    /* [n_samples] */
} dpt_dataset;

/* Loads an image file and a label file and checks that they belong
 * together (same sample count, labels 1-D). */
dpt_status dpt_dataset_load(dpt_dataset *set, const char *images_path, const char *labels_path);
/* The same checks on two IDX arrays already read (dpt_dataset_load ends
 * here); the data set takes over their buffers, and on error frees them.
 * The names are for messages. */
dpt_status dpt_dataset_from_idx(dpt_dataset *set, dpt_idx *images, dpt_idx *labels,
                                const char *images_name, const char *labels_name);

/* Builds a data set from memory (copies), e.g. for tests; its shape is
 * (n_features, 1, 1) until the caller sets another of the same size. */
dpt_status dpt_dataset_from_arrays(dpt_dataset *set, const uint8_t *features,
                                   const uint8_t *labels, size_t n_samples, size_t n_features);
void dpt_dataset_free(dpt_dataset *set);

/* Gathers samples indices[0..count) into x[count][n_features] scaled to
 * [0, 1] and y[count]. */
void dpt_dataset_gather(const dpt_dataset *set, const uint32_t *indices, size_t count,
                        dpt_real *x, uint8_t *y);

/* ---------------------------------------------------------------- batching
 * An epoch visits a permutation of all n samples in global batches of
 * B = ranks x batch_size. Global batch k is perm[k B .. min((k+1) B, n));
 * rank r takes the r-th of `ranks` near-equal contiguous pieces of it. So P
 * ranks with batch b see exactly the samples one rank with batch P b sees,
 * nothing is dropped or repeated, and a ragged last batch is shared out
 * (some ranks may get nothing) unless drop_last drops it. */
typedef struct dpt_batch_plan {
    size_t n_samples;
    size_t global_batch;
    int drop_last;
    int rank, ranks;
    size_t steps_per_epoch;
} dpt_batch_plan;

dpt_status dpt_batch_plan_init(dpt_batch_plan *plan, size_t n_samples, size_t batch_size,
                               int drop_last, int rank, int ranks);

/* For step `step` of an epoch (0-based): this rank's slice [*begin, *begin +
 * *count) of the permutation, and the number of samples in the whole global
 * batch (the divisor of the summed gradient). */
void dpt_batch_slice(const dpt_batch_plan *plan, size_t step, size_t *begin,
                     size_t *count, size_t *global_count);

/* Splits n items into `parts` near-equal contiguous pieces; piece i is
 * [*begin, *begin + *count). Used for batches and the test-set share. */
void dpt_split_range(size_t n, int parts, int i, size_t *begin, size_t *count);

#endif /* DPT_DATA_H */
