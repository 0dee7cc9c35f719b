/* dpt/data.h - data sets from IDX, NumPy .npy and CSV files, and how a
 * step's batch is split.
 *
 * IDX (LeCun's MNIST format, also Fashion-MNIST): a big-endian header
 * 0 0 <type> <ndim>, ndim 32-bit sizes, then the elements. Files may be
 * gzipped or plain (zlib reads both). Only unsigned-byte elements (type 0x08)
 * are accepted; images are stored as bytes and scaled to [0, 1] when a batch
 * is gathered, which keeps a full data set at one byte per pixel on every rank.
 *
 * .npy (dpt/npy.h): features uint8 ('|u1': stored as bytes and scaled to
 * [0, 1] like IDX), float32 or float64 (used as they are); labels of any
 * integer dtype or integral floats, 0..255. CSV: one sample per line, the
 * label in one column (dpt_load_options), optionally gzipped.
 *
 * Features are kept in the narrowest type that loses nothing the build can
 * use: bytes for uint8 files, float32 for float32 files (in a double build
 * too: widening them would double the memory of every rank and add no
 * information), float64 for float64 files in a double build (a double build
 * is for exact work: gradient checks, second-order solves), float32 for
 * float64 files in a single build (dpt_real is float there anyway), and
 * dpt_real for CSV text. dpt_dataset_gather converts to dpt_real.
 *
 * Every rank holds the whole data set: each epoch's permutation draws from
 * all samples, which keeps P ranks with batch b bit-equivalent to one rank
 * with batch P b (see batching below). How the files get there:
 *   IDX   every rank reads the file (gzip cannot be split).
 *   .npy  read once in total: each rank reads its contiguous share of the
 *         rows with MPI_File_read_at_all at data_offset + first_row x
 *         row_bytes (rank 0 parses the header and broadcasts it), converts
 *         it to the stored type, and the shares are exchanged with
 *         MPI_Allgatherv in rounds of under 2^31 bytes (counts and
 *         displacements in rows, a contiguous row datatype). A file system
 *         that serves P readers in parallel reads the set P times faster,
 *         and the data crosses the disk once instead of P times.
 *   CSV   rank 0 parses it (text cannot be split at byte offsets without
 *         reading it) and broadcasts the result in pieces of under 2^31
 *         bytes.
 */
#ifndef DPT_DATA_H
#define DPT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "dpt/error.h"
#include "dpt/npy.h"
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

/* How a data set stores its features (see the top of this file). */
typedef enum dpt_feature_type {
    DPT_FEATURES_U8 = 0, /* bytes, scaled by 1/255 when gathered */
    DPT_FEATURES_F32,    /* float32, used as they are */
    DPT_FEATURES_F64     /* float64, used as they are */
} dpt_feature_type;
/* The stored type of features parsed from text (CSV): dpt_real. */
#ifdef DPT_DOUBLE
#define DPT_FEATURES_REAL DPT_FEATURES_F64
#else
#define DPT_FEATURES_REAL DPT_FEATURES_F32
#endif

/* A labelled data set: n samples of n_features each. Only src/data touches
 * `features`: everything else goes through dpt_dataset_gather. */
typedef struct dpt_dataset {
    size_t n_samples;
    size_t n_features;  /* product of the image dims after the first */
    int shape[3];       /* per-sample C, H, W: (1, H, W) for N x H x W files,
                           (C, H, W) for N x C x H x W, (D, 1, 1) otherwise */
    int n_classes;      /* largest label + 1 */
    dpt_feature_type feature_type;
    void *features;     /* [n_samples][n_features] of feature_type */
    uint8_t *labels;    /* [n_samples] */
} dpt_dataset;

/* Loads an IDX image file and an IDX label file and checks that they
 * belong together (same sample count, labels 1-D). */
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
/* The same with float features (stored as float32, used as they are). */
dpt_status dpt_dataset_from_floats(dpt_dataset *set, const float *features,
                                   const uint8_t *labels, size_t n_samples, size_t n_features);
void dpt_dataset_free(dpt_dataset *set);

/* Gathers samples indices[0..count) into x[count][n_features] (bytes
 * scaled to [0, 1], floats as they are) and y[count]. */
void dpt_dataset_gather(const dpt_dataset *set, const uint32_t *indices, size_t count,
                        dpt_real *x, uint8_t *y);

/* For loaders: an empty set of n_samples x n_features of `type` (labels
 * 0, shape (n_features, 1, 1)); fill it through dpt_dataset_rows, set
 * shape, then call dpt_dataset_count_classes. */
dpt_status dpt_dataset_alloc(dpt_dataset *set, dpt_feature_type type, size_t n_samples,
                             size_t n_features, const char *name);
/* A set made of buffers the caller malloc'ed: the set owns them from now
 * on (on error too, then freed). */
dpt_status dpt_dataset_take(dpt_dataset *set, dpt_feature_type type, void *features,
                            uint8_t *labels, size_t n_samples, size_t n_features, const char *name);
/* Bytes of one stored feature (1, 4 or 8). */
size_t dpt_dataset_feature_size(dpt_feature_type type);
/* The stored features of sample `first` onwards. */
void *dpt_dataset_rows(dpt_dataset *set, size_t first);
/* n_classes = largest label + 1. */
void dpt_dataset_count_classes(dpt_dataset *set);

/* ---------------------------------------------------------------- any format */

typedef enum dpt_data_format {
    DPT_FORMAT_AUTO = 0, /* by the file name: .npy, .csv / .csv.gz, else IDX */
    DPT_FORMAT_IDX,
    DPT_FORMAT_NPY,
    DPT_FORMAT_CSV
} dpt_data_format;

/* "auto", "idx", "npy", "csv"; NULL if out of range. */
const char *dpt_data_format_name(dpt_data_format format);
/* The format of the file at path under the configured `format` (AUTO:
 * decided by the name). Never returns AUTO. */
dpt_data_format dpt_data_format_of(dpt_data_format format, const char *path);

/* CSV: whether the first row names the columns. */
enum { DPT_CSV_HEADER_AUTO = 0, DPT_CSV_HEADER_YES = 1, DPT_CSV_HEADER_NO = 2 };

typedef struct dpt_load_options {
    dpt_data_format format;   /* of the features file; a labels file beside a
                                 CSV file is detected by its name */
    const char *label_column; /* CSV: "0" (the first column; the default),
                                 "-1" (the last), any index (negative counts
                                 from the end), a header name, or "none" (no
                                 label column: labels from labels_path) */
    int csv_header;           /* DPT_CSV_HEADER_*: AUTO reads the first row as
                                 names when a cell of it is not a number */
} dpt_load_options;

/* Loads a data set in any format; collective over comm (every rank calls
 * it, every rank gets the whole set, see the top of this file).
 * labels_path: the labels file; "" for a CSV file with a label column
 * (a non-empty one is then an error: two sources of labels), and an error
 * for IDX and .npy features; NULL for no labels at all (prediction: every
 * label 0). A failure is agreed: every rank returns an error, the rank that
 * saw it the message naming the file, the others DPT_ERR_REMOTE. */
dpt_status dpt_dataset_load_any(dpt_dataset *set, MPI_Comm comm, const char *features_path,
                                const char *labels_path, const dpt_load_options *options);

/* The pieces of dpt_dataset_load_any (collective, agreed failures). The
 * features of a .npy file as a data set with every label 0; the labels of a
 * .npy file, (n,) or (n, 1), as malloc'ed bytes (each 0..255). */
dpt_status dpt_npy_load_features(dpt_dataset *set, MPI_Comm comm, const char *path);
dpt_status dpt_npy_load_labels(uint8_t **labels, size_t *n, MPI_Comm comm, const char *path);
/* Tests: the bytes per MPI call of those reads, exchanges and broadcasts
 * (default and upper bound 1 GiB; 0 restores it), so that small files
 * take several rounds. */
void dpt_data_set_piece_bytes(size_t bytes);
/* Serial CSV parse of a plain or gzipped file (what rank 0 does). */
dpt_status dpt_csv_read(dpt_dataset *set, const char *path, const dpt_load_options *options);
/* The same from text in memory; `name` names it in messages. */
dpt_status dpt_csv_parse(dpt_dataset *set, const char *text, size_t len, const char *name,
                         const dpt_load_options *options);

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
