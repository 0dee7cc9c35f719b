/* Loading a data set in any format on every rank of a communicator: IDX
 * read by every rank, .npy read in shares with MPI-IO and exchanged, CSV
 * parsed by rank 0 and broadcast (the design is described in dpt/data.h). */
#include "dpt/data.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dpt/dist.h"

/* Bytes per MPI call (read, exchange, broadcast): counts are ints. Tests
 * make it small to run the rounds on small files. */
#define DEFAULT_PIECE_BYTES ((size_t)1 << 30)
static size_t piece_bytes = DEFAULT_PIECE_BYTES;
#define PIECE_BYTES piece_bytes

void dpt_data_set_piece_bytes(size_t bytes)
{
    piece_bytes = bytes > 0 && bytes <= DEFAULT_PIECE_BYTES ? bytes : DEFAULT_PIECE_BYTES;
}

const char *dpt_data_format_name(dpt_data_format format)
{
    static const char *const names[] = {"auto", "idx", "npy", "csv"};
    return (unsigned)format < sizeof names / sizeof names[0] ? names[format] : NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

dpt_data_format dpt_data_format_of(dpt_data_format format, const char *path)
{
    if (format != DPT_FORMAT_AUTO) return format;
    if (!path) return DPT_FORMAT_IDX;
    if (ends_with(path, ".npy")) return DPT_FORMAT_NPY;
    if (ends_with(path, ".csv") || ends_with(path, ".csv.gz")) return DPT_FORMAT_CSV;
    return DPT_FORMAT_IDX;
}

static dpt_status mpi_io_failed(int rc, const char *what, const char *path, int rank)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", rc);
    return DPT_FAIL(DPT_ERR_IO, "%s: %s failed on rank %d: %s", path, what, rank, text);
}

/* ---------------------------------------------------------------- .npy shares */

/* How stored rows are made of a file's rows. */
typedef enum conversion {
    COPY,          /* the stored type is the file's: read in place */
    F8_TO_F4,      /* float64 file, float32 storage (single builds) */
    TO_LABEL       /* any integer or integral float, to a byte 0..255 */
} conversion;

typedef struct npy_job {
    MPI_Comm comm;
    int rank, ranks;
    const char *path;
    dpt_npy_header h;
    size_t n_rows, row_elems;  /* rows = shape[0]; elements per row */
    size_t file_row_bytes, stored_row_bytes;
    conversion conv;
    unsigned char *out;        /* [n_rows][stored_row_bytes] on every rank */
} npy_job;

/* Rank 0 reads the header (and checks the file's size against it); every
 * rank gets it. Agreed: on failure the other ranks return DPT_ERR_REMOTE. */
static dpt_status share_header(npy_job *job)
{
    struct {
        int status;
        dpt_npy_header h;
    } msg;
    memset(&msg, 0, sizeof msg);
    if (job->rank == 0) msg.status = (int)dpt_npy_read_header(&msg.h, job->path);
    int rc = MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, job->comm);
    if (rc != MPI_SUCCESS) return mpi_io_failed(rc, "broadcasting the .npy header", job->path, job->rank);
    if (msg.status != DPT_OK) {
        if (job->rank == 0) return (dpt_status)msg.status; /* its message is recorded */
        return DPT_FAIL(DPT_ERR_REMOTE, "rank 0 could not read %s", job->path);
    }
    job->h = msg.h;
    return DPT_OK;
}

/* One label element as a byte; 0 (and the value as text) when it is not
 * an integer in 0..255. */
static int label_of(dpt_npy_dtype dtype, const unsigned char *p, uint8_t *byte, char *shown,
                    size_t size)
{
    int64_t s = 0;
    uint64_t u = 0;
    double d = 0;
    int kind = 0; /* 0 signed, 1 unsigned, 2 float */
    switch (dtype) {
    case DPT_NPY_U1: u = p[0], kind = 1; break;
    case DPT_NPY_I1: s = (int8_t)p[0]; break;
    case DPT_NPY_U2: { uint16_t v; memcpy(&v, p, 2); u = v, kind = 1; break; }
    case DPT_NPY_I2: { int16_t v; memcpy(&v, p, 2); s = v; break; }
    case DPT_NPY_U4: { uint32_t v; memcpy(&v, p, 4); u = v, kind = 1; break; }
    case DPT_NPY_I4: { int32_t v; memcpy(&v, p, 4); s = v; break; }
    case DPT_NPY_U8: memcpy(&u, p, 8), kind = 1; break;
    case DPT_NPY_I8: memcpy(&s, p, 8); break;
    case DPT_NPY_F4: { float v; memcpy(&v, p, 4); d = v, kind = 2; break; }
    default: memcpy(&d, p, 8), kind = 2; break;
    }
    int ok = kind == 0 ? s >= 0 && s <= 255 : kind == 1 ? u <= 255 : d >= 0 && d <= 255 && d == floor(d);
    if (ok) {
        *byte = (uint8_t)(kind == 0 ? (uint64_t)s : kind == 1 ? u : (uint64_t)d);
        return 1;
    }
    if (kind == 0) snprintf(shown, size, "%lld", (long long)s);
    else if (kind == 1) snprintf(shown, size, "%llu", (unsigned long long)u);
    else snprintf(shown, size, "%g", d);
    return 0;
}

/* Converts `rows` file rows at raw into stored rows at dst; a label out of
 * 0..255 or not an integer is an error naming its row (first_row based). */
static dpt_status convert_rows(const npy_job *job, const unsigned char *raw, unsigned char *dst,
                               size_t first_row, size_t rows)
{
    size_t n = rows * job->row_elems;
    if (job->conv == F8_TO_F4) {
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, raw + 8 * i, 8);
            float f = (float)v;
            memcpy(dst + 4 * i, &f, 4);
        }
        return DPT_OK;
    }
    size_t size = dpt_npy_dtype_size(job->h.dtype);
    for (size_t i = 0; i < n; i++) {
        char shown[40];
        if (!label_of(job->h.dtype, raw + size * i, dst + i, shown, sizeof shown))
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: label %s of sample %zu is not an integer in 0..255",
                            job->path, shown, first_row + i);
    }
    return DPT_OK;
}

/* This rank's share of the rows, read with MPI_File_read_at_all in rounds
 * of at most PIECE_BYTES (every rank makes the same number of calls, some
 * with nothing to read), converted into job->out. */
static dpt_status read_share(npy_job *job)
{
    MPI_File file;
    int rc = MPI_File_open(job->comm, job->path, MPI_MODE_RDONLY, MPI_INFO_NULL, &file);
    if (rc != MPI_SUCCESS) return mpi_io_failed(rc, "MPI_File_open", job->path, job->rank);
    size_t first, rows;
    dpt_split_range(job->n_rows, job->ranks, job->rank, &first, &rows);
    size_t per_round = PIECE_BYTES / job->file_row_bytes;
    if (per_round == 0) per_round = 1;
    size_t most = (job->n_rows + (size_t)job->ranks - 1) / (size_t)job->ranks;
    size_t rounds = (most + per_round - 1) / per_round;
    unsigned char *scratch = NULL;
    dpt_status st = DPT_OK;
    if (job->conv != COPY && rows > 0) {
        scratch = malloc((rows < per_round ? rows : per_round) * job->file_row_bytes);
        if (!scratch) st = DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory for a read buffer", job->path);
    }
    for (size_t k = 0; k < rounds; k++) {
        size_t lo = k * per_round < rows ? k * per_round : rows;
        size_t n = rows - lo < per_round ? rows - lo : per_round;
        if (st != DPT_OK) n = 0; /* still take part in the collective */
        unsigned char *buf = job->conv == COPY ? job->out + (first + lo) * job->stored_row_bytes : scratch;
        MPI_Offset at = (MPI_Offset)(job->h.data_offset + (first + lo) * job->file_row_bytes);
        MPI_Status status;
        int want = (int)(n * job->file_row_bytes), got = 0;
        rc = MPI_File_read_at_all(file, at, buf, want, MPI_BYTE, &status);
        if (rc == MPI_SUCCESS) MPI_Get_count(&status, MPI_BYTE, &got);
        if (st != DPT_OK) continue;
        if (rc != MPI_SUCCESS) st = mpi_io_failed(rc, "MPI_File_read_at_all", job->path, job->rank);
        else if (got != want)
            st = DPT_FAIL(DPT_ERR_FORMAT, "%s: truncated: read %d of %d bytes at offset %lld (the "
                          "file changed while being read?)", job->path, got, want, (long long)at);
        else if (job->conv != COPY)
            st = convert_rows(job, scratch, job->out + (first + lo) * job->stored_row_bytes,
                              first + lo, n);
    }
    free(scratch);
    rc = MPI_File_close(&file);
    if (rc != MPI_SUCCESS && st == DPT_OK) st = mpi_io_failed(rc, "MPI_File_close", job->path, job->rank);
    return st;
}

/* Every rank's share of out, to every rank: MPI_Allgatherv in place, in
 * rounds of at most PIECE_BYTES per rank, counted in rows (a contiguous
 * row datatype) so that displacements fit an int up to INT_MAX rows. */
static dpt_status exchange_shares(const npy_job *job)
{
    if (job->ranks == 1) return DPT_OK;
    int *counts = malloc(2 * sizeof(int) * (size_t)job->ranks);
    if (!counts) return DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory", job->path);
    int *displs = counts + job->ranks;
    MPI_Datatype row;
    int rc = MPI_Type_contiguous((int)job->stored_row_bytes, MPI_BYTE, &row);
    if (rc == MPI_SUCCESS) rc = MPI_Type_commit(&row);
    size_t per_round = PIECE_BYTES / job->stored_row_bytes;
    if (per_round == 0) per_round = 1;
    size_t most = (job->n_rows + (size_t)job->ranks - 1) / (size_t)job->ranks;
    for (size_t k = 0; rc == MPI_SUCCESS && k * per_round < most; k++) {
        for (int r = 0; r < job->ranks; r++) {
            size_t first, rows;
            dpt_split_range(job->n_rows, job->ranks, r, &first, &rows);
            size_t lo = k * per_round;
            size_t n = rows > lo ? (rows - lo < per_round ? rows - lo : per_round) : 0;
            counts[r] = (int)n;
            displs[r] = n ? (int)(first + lo) : 0;
        }
        rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, job->out, counts, displs, row, job->comm);
    }
    MPI_Type_free(&row);
    free(counts);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_io_failed(rc, "MPI_Allgatherv of the shares", job->path, job->rank);
}

/* Header, then (once every rank has agreed on it) the share and the exchange. */
static dpt_status npy_job_start(npy_job *job, MPI_Comm comm, const char *path)
{
    memset(job, 0, sizeof *job);
    job->comm = comm;
    job->path = path;
    MPI_Comm_rank(comm, &job->rank);
    MPI_Comm_size(comm, &job->ranks);
    return share_header(job);
}

static dpt_status npy_job_run(npy_job *job, const dpt_comm *c)
{
    dpt_status st = dpt_agree_status(c, read_share(job), NULL);
    if (st == DPT_OK) st = dpt_agree_status(c, exchange_shares(job), NULL);
    return st;
}

/* The per-sample shape (as dpt_idx_sample_shape) and the row sizes; the
 * header is the same on every rank, so is the verdict. */
static dpt_status features_layout(npy_job *job, int shape[3], dpt_feature_type *type)
{
    const dpt_npy_header *h = &job->h;
    if (h->ndim < 2)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: features need at least 2 dimensions (samples x "
                        "features), the .npy array has %d", job->path, h->ndim);
    job->n_rows = h->shape[0];
    job->row_elems = h->shape[0] ? h->count / h->shape[0] : 0;
    if (job->n_rows == 0 || job->row_elems == 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: no samples (a .npy array of %zu x %zu)", job->path,
                        job->n_rows, job->row_elems);
    switch (h->dtype) {
    case DPT_NPY_U1: *type = DPT_FEATURES_U8, job->conv = COPY; break;
    case DPT_NPY_F4: *type = DPT_FEATURES_F32, job->conv = COPY; break;
#ifdef DPT_DOUBLE
    case DPT_NPY_F8: *type = DPT_FEATURES_F64, job->conv = COPY; break;
#else
    case DPT_NPY_F8: *type = DPT_FEATURES_F32, job->conv = F8_TO_F4; break;
#endif
    default:
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: features of dtype '%s' are not supported: save them "
                        "as float32 ('<f4'), float64 ('<f8') or uint8 ('|u1', scaled to [0, 1]), "
                        "e.g. a.astype(np.float32)", job->path, dpt_npy_dtype_descr(h->dtype));
    }
    job->file_row_bytes = job->row_elems * dpt_npy_dtype_size(h->dtype);
    job->stored_row_bytes = job->row_elems * dpt_dataset_feature_size(*type);
    if (job->n_rows > INT_MAX || job->row_elems > INT_MAX || job->file_row_bytes > INT_MAX)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s: %zu samples of %zu features: more than dptrain reads "
                        "(%d samples, %d bytes per sample)", job->path, job->n_rows, job->row_elems,
                        INT_MAX, INT_MAX);
    shape[0] = (int)job->row_elems;
    shape[1] = shape[2] = 1;
    if (h->ndim == 3 || h->ndim == 4) {
        shape[0] = h->ndim == 4 ? (int)h->shape[1] : 1;
        shape[1] = (int)h->shape[h->ndim - 2];
        shape[2] = (int)h->shape[h->ndim - 1];
    }
    return DPT_OK;
}

dpt_status dpt_npy_load_features(dpt_dataset *set, MPI_Comm comm, const char *path)
{
    memset(set, 0, sizeof *set);
    dpt_comm c;
    dpt_status st = dpt_comm_wrap(&c, comm);
    npy_job job;
    if (st == DPT_OK) st = npy_job_start(&job, comm, path);
    if (st != DPT_OK) return st;
    int shape[3];
    dpt_feature_type type = DPT_FEATURES_U8;
    st = features_layout(&job, shape, &type);
    if (st == DPT_OK) st = dpt_dataset_alloc(set, type, job.n_rows, job.row_elems, path);
    st = dpt_agree_status(&c, st, NULL);
    if (st == DPT_OK) {
        memcpy(set->shape, shape, sizeof shape);
        job.out = dpt_dataset_rows(set, 0);
        st = npy_job_run(&job, &c);
    }
    if (st != DPT_OK) dpt_dataset_free(set);
    return st;
}

dpt_status dpt_npy_load_labels(uint8_t **labels, size_t *n, MPI_Comm comm, const char *path)
{
    *labels = NULL;
    *n = 0;
    dpt_comm c;
    dpt_status st = dpt_comm_wrap(&c, comm);
    npy_job job;
    if (st == DPT_OK) st = npy_job_start(&job, comm, path);
    if (st != DPT_OK) return st;
    const dpt_npy_header *h = &job.h;
    if (!(h->ndim == 1 || (h->ndim == 2 && h->shape[1] == 1)))
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: labels must be a 1-dimensional array (n,) or (n, 1); "
                      "the .npy array has %d dimensions%s", path, h->ndim,
                      h->ndim == 2 ? " of which the second is not 1" : "");
    else if (h->shape[0] == 0)
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: no labels (a .npy array of 0 elements)", path);
    else if (h->shape[0] > INT_MAX)
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: more than %d labels", path, INT_MAX);
    if (st == DPT_OK) {
        job.n_rows = h->shape[0];
        job.row_elems = 1;
        job.file_row_bytes = dpt_npy_dtype_size(h->dtype);
        job.stored_row_bytes = 1;
        job.conv = TO_LABEL;
        job.out = malloc(job.n_rows);
        if (!job.out) st = DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory for %zu labels", path, job.n_rows);
    }
    st = dpt_agree_status(&c, st, NULL);
    if (st == DPT_OK) st = npy_job_run(&job, &c);
    if (st != DPT_OK) {
        free(job.out);
        return st;
    }
    *labels = job.out;
    *n = job.n_rows;
    return DPT_OK;
}

/* ---------------------------------------------------------------- CSV broadcast */

/* Rank 0's buf[bytes] to every rank in pieces of at most PIECE_BYTES. */
static int broadcast_bytes(void *buf, size_t bytes, MPI_Comm comm)
{
    int rc = MPI_SUCCESS;
    for (size_t at = 0; at < bytes && rc == MPI_SUCCESS; at += PIECE_BYTES) {
        size_t n = bytes - at < PIECE_BYTES ? bytes - at : PIECE_BYTES;
        rc = MPI_Bcast((unsigned char *)buf + at, (int)n, MPI_BYTE, 0, comm);
    }
    return rc;
}

/* Rank 0 parses, every rank gets the set. */
static dpt_status load_csv(dpt_dataset *set, const dpt_comm *c, const char *path,
                           const dpt_load_options *opt)
{
    dpt_status st = c->rank == 0 ? dpt_csv_read(set, path, opt) : DPT_OK;
    st = dpt_agree_status(c, st, NULL);
    if (st != DPT_OK || c->size == 1) return st;
    unsigned long long size[3] = {set->n_samples, set->n_features, (unsigned long long)set->feature_type};
    int rc = MPI_Bcast(size, 3, MPI_UNSIGNED_LONG_LONG, 0, c->comm);
    if (rc == MPI_SUCCESS && c->rank != 0)
        st = dpt_dataset_alloc(set, (dpt_feature_type)size[2], (size_t)size[0], (size_t)size[1], path);
    else if (rc != MPI_SUCCESS)
        st = mpi_io_failed(rc, "broadcasting the CSV sizes", path, c->rank);
    st = dpt_agree_status(c, st, NULL);
    if (st == DPT_OK) {
        size_t bytes = set->n_samples * set->n_features * dpt_dataset_feature_size(set->feature_type);
        rc = broadcast_bytes(dpt_dataset_rows(set, 0), bytes, c->comm);
        if (rc == MPI_SUCCESS) rc = broadcast_bytes(set->labels, set->n_samples, c->comm);
        st = rc == MPI_SUCCESS ? DPT_OK : mpi_io_failed(rc, "broadcasting the CSV data", path, c->rank);
        dpt_dataset_count_classes(set);
    }
    if (st != DPT_OK) dpt_dataset_free(set);
    return st;
}

/* ---------------------------------------------------------------- any format */

/* IDX images read by this rank, every label 0 (labels come later). */
static dpt_status load_idx_features(dpt_dataset *set, const char *path)
{
    dpt_idx images, zeros;
    memset(&zeros, 0, sizeof zeros);
    dpt_status st = dpt_idx_read(&images, path);
    if (st != DPT_OK) return st;
    zeros.ndim = 1;
    zeros.dims[0] = images.dims[0];
    zeros.count = images.dims[0];
    zeros.data = calloc(zeros.count, 1);
    if (!zeros.data) {
        dpt_idx_free(&images);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the labels of %s", path);
    }
    return dpt_dataset_from_idx(set, &images, &zeros, path, path);
}

static dpt_status load_idx_labels(uint8_t **labels, size_t *n, const char *path)
{
    dpt_idx idx;
    dpt_status st = dpt_idx_read(&idx, path);
    if (st != DPT_OK) return st;
    if (idx.ndim != 1) {
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: labels must be 1-dimensional, the file has %d dimensions",
                      path, idx.ndim);
        dpt_idx_free(&idx);
        return st;
    }
    *labels = idx.data;
    *n = idx.count;
    idx.data = NULL;
    dpt_idx_free(&idx);
    return DPT_OK;
}

/* Which labels file, if any, and whether that fits the features' format. */
static dpt_status check_label_source(dpt_data_format format, const char *features_path,
                                     const char *labels_path, const dpt_load_options *opt)
{
    int column = format == DPT_FORMAT_CSV && strcmp(opt->label_column ? opt->label_column : "0", "none") != 0;
    if (column && labels_path && labels_path[0])
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: a CSV file with a label column ([data] label_column = %s) "
                        "and a labels file %s: give one source of labels (label_column = none to take "
                        "the labels file)", features_path, opt->label_column ? opt->label_column : "0",
                        labels_path);
    if (!column && labels_path && !labels_path[0])
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: no labels file given ([data] *_labels is empty): %s "
                        "features need one (only a CSV file carries its labels, in its label_column)",
                        features_path, format == DPT_FORMAT_CSV ? "CSV with label_column = none"
                        : format == DPT_FORMAT_NPY ? ".npy" : "IDX");
    if (labels_path && labels_path[0] &&
        dpt_data_format_of(opt->format == DPT_FORMAT_CSV ? DPT_FORMAT_AUTO : opt->format, labels_path) ==
            DPT_FORMAT_CSV)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: a CSV labels file: a CSV file carries features and labels "
                        "together, name it as the features file", labels_path);
    return DPT_OK;
}

/* The labels file (any format but CSV) into set->labels. */
static dpt_status load_labels(dpt_dataset *set, const dpt_comm *c, const char *features_path,
                              const char *labels_path, const dpt_load_options *opt)
{
    dpt_data_format format =
        dpt_data_format_of(opt->format == DPT_FORMAT_CSV ? DPT_FORMAT_AUTO : opt->format, labels_path);
    uint8_t *labels = NULL;
    size_t n = 0;
    dpt_status st;
    if (format == DPT_FORMAT_NPY) {
        st = dpt_npy_load_labels(&labels, &n, c->comm, labels_path);
    } else {
        st = dpt_agree_status(c, load_idx_labels(&labels, &n, labels_path), NULL);
    }
    if (st == DPT_OK && n != set->n_samples)
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s holds %zu samples but %s holds %zu labels", features_path,
                      set->n_samples, labels_path, n);
    if (st == DPT_OK) {
        memcpy(set->labels, labels, n);
        dpt_dataset_count_classes(set);
    }
    free(labels);
    return st;
}

dpt_status dpt_dataset_load_any(dpt_dataset *set, MPI_Comm comm, const char *features_path,
                                const char *labels_path, const dpt_load_options *options)
{
    static const dpt_load_options defaults = {DPT_FORMAT_AUTO, "0", DPT_CSV_HEADER_AUTO};
    const dpt_load_options *opt = options ? options : &defaults;
    memset(set, 0, sizeof *set);
    dpt_comm c;
    dpt_status st = dpt_comm_wrap(&c, comm);
    if (st != DPT_OK) return st;
    dpt_data_format format = dpt_data_format_of(opt->format, features_path);
    /* a pure function of the arguments: every rank decides alike */
    st = check_label_source(format, features_path, labels_path, opt);
    if (st != DPT_OK) return st;
    int idx_pair = format == DPT_FORMAT_IDX && labels_path &&
                   dpt_data_format_of(opt->format, labels_path) == DPT_FORMAT_IDX;
    if (idx_pair) /* as ever: every rank reads both files */
        return dpt_agree_status(&c, dpt_dataset_load(set, features_path, labels_path), NULL);
    switch (format) {
    case DPT_FORMAT_NPY: st = dpt_npy_load_features(set, comm, features_path); break;
    case DPT_FORMAT_CSV: st = load_csv(set, &c, features_path, opt); break;
    default: st = dpt_agree_status(&c, load_idx_features(set, features_path), NULL); break;
    }
    if (st == DPT_OK && labels_path && labels_path[0])
        st = load_labels(set, &c, features_path, labels_path, opt);
    if (st != DPT_OK) dpt_dataset_free(set);
    return st;
}
