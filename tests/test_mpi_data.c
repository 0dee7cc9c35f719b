/* MPI tests of the data loaders (src/data/load.c) at 1-3 ranks: the
 * sharded .npy read (each rank its rows with MPI_File_read_at_all, then
 * MPI_Allgatherv) gives every rank exactly what a serial read gives, for
 * row counts that do not divide by the ranks (fewer rows than ranks too),
 * every feature dtype and many rounds (tiny MPI pieces); labels of every
 * dtype; CSV parsed by rank 0 and broadcast; IDX as before; and failures
 * are agreed: every rank fails, the rank that saw the problem holds the
 * message naming the file, the others DPT_ERR_REMOTE. */
#include <CUnit/Basic.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/data.h"
#include "dpt/npy.h"
#include "mpi_fixture.h"

static int rank, ranks;
static char dir[64];

static void path_of(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", dir, name);
}

/* Rank 0 writes a .npy file of n x row elements (pattern by dtype); all wait. */
static void write_npy(const char *name, dpt_npy_dtype dtype, int ndim, const size_t *shape)
{
    if (rank == 0) {
        size_t count = 1;
        for (int d = 0; d < ndim; d++) count *= shape[d];
        size_t size = dpt_npy_dtype_size(dtype);
        unsigned char *data = malloc(count * size + 1);
        CU_ASSERT_FATAL(data != NULL);
        for (size_t i = 0; i < count; i++) {
            unsigned char *p = data + i * size;
            if (dtype == DPT_NPY_F4) *(float *)p = (float)i * 0.37f - 5.0f;
            else if (dtype == DPT_NPY_F8) *(double *)p = (double)i / 7.0 - 3.0;
            else if (dtype == DPT_NPY_U1) *p = (unsigned char)(i * 37 + 11);
            else memset(p, 0, size), *p = (unsigned char)(i % 10); /* 0..9, little-endian */
        }
        char path[128];
        path_of(path, sizeof path, name);
        dpt_status st = dpt_npy_write(path, dtype, ndim, shape, data);
        if (st != DPT_OK) printf("write %s: %s\n", path, dpt_error_message());
        CU_ASSERT_FATAL(st == DPT_OK);
        free(data);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void write_bytes(const char *name, const void *bytes, size_t len)
{
    if (rank == 0) {
        char path[128];
        path_of(path, sizeof path, name);
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_FATAL(fwrite(bytes, 1, len, f) == len);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The value gather should give for element i of a serially read array. */
static double expected(const dpt_npy *arr, size_t i)
{
    const unsigned char *p = (const unsigned char *)arr->data + i * dpt_npy_dtype_size(arr->h.dtype);
    switch (arr->h.dtype) {
    case DPT_NPY_U1: return (double)((dpt_real)p[0] * (dpt_real)(1.0 / 255.0));
    case DPT_NPY_F4: return (double)(dpt_real)*(const float *)p;
#ifdef DPT_DOUBLE
    default: return *(const double *)p;
#else
    default: return (double)(float)*(const double *)p;
#endif
    }
}

/* Every sample of set gathered equals the serial read, bit for bit. */
static int same_as_serial(const dpt_dataset *set, const char *path)
{
    dpt_npy arr;
    if (dpt_npy_read(&arr, path) != DPT_OK) return 0;
    size_t nf = set->n_features;
    int ok = set->n_samples == arr.h.shape[0] && nf * set->n_samples == arr.h.count;
    dpt_real *x = malloc(sizeof *x * (nf ? nf : 1));
    for (uint32_t s = 0; ok && x && s < set->n_samples; s++) {
        uint8_t y;
        dpt_dataset_gather(set, &s, 1, x, &y);
        for (size_t f = 0; f < nf; f++) ok &= (double)x[f] == expected(&arr, s * nf + f);
        ok &= y == 0;
    }
    free(x);
    dpt_npy_free(&arr);
    return ok && x != NULL;
}

/* Agreed failure: every rank failed, and the lowest rank that did not
 * say DPT_ERR_REMOTE has `want` and a message with both needles. */
static int agreed_failure(dpt_status st, dpt_status want, const char *needle1, const char *needle2)
{
    int real = st != DPT_OK && st != DPT_ERR_REMOTE;
    int mine = real ? rank : ranks, first = ranks;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int ok = st != DPT_OK && first < ranks;
    if (rank == first) {
        const char *msg = dpt_error_message();
        ok &= st == want && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
        if (!ok) printf("\n  rank %d: status %d (want %d), \"%s\"\n", rank, st, want, msg);
    }
    return fixture_all_ranks(ok);
}

/* ================================================================ .npy features */

static void test_npy_features_equal_serial(void)
{
    static const dpt_npy_dtype dtypes[3] = {DPT_NPY_U1, DPT_NPY_F4, DPT_NPY_F8};
    static const size_t rows[5] = {1, 2, 7, 10, 100};
    static const size_t pieces[3] = {0, 13, 200}; /* 0: the default; 13: a row per round */
    int failures = 0;
    for (int t = 0; t < 3; t++)
        for (int r = 0; r < 5; r++)
            for (int image = 0; image <= 1; image++) {
                size_t shape[3] = {rows[r], image ? 3 : 5, image ? 4 : 0};
                int ndim = image ? 3 : 2;
                char name[64], path[128];
                snprintf(name, sizeof name, "f_%d_%zu_%d.npy", t, rows[r], image);
                path_of(path, sizeof path, name);
                write_npy(name, dtypes[t], ndim, shape);
                for (int p = 0; p < 3; p++) {
                    dpt_data_set_piece_bytes(pieces[p]);
                    dpt_dataset set;
                    dpt_status st = dpt_npy_load_features(&set, MPI_COMM_WORLD, path);
                    int ok = st == DPT_OK && same_as_serial(&set, path);
                    dpt_feature_type want = t == 0 ? DPT_FEATURES_U8 : t == 1 ? DPT_FEATURES_F32
#ifdef DPT_DOUBLE
                                                                     : DPT_FEATURES_F64;
#else
                                                                     : DPT_FEATURES_F32;
#endif
                    ok = ok && set.feature_type == want;
                    ok = ok && (image ? set.shape[0] == 1 && set.shape[1] == 3 && set.shape[2] == 4
                                      : set.shape[0] == 5 && set.shape[1] == 1);
                    if (!ok && rank == 0) printf("\n  %s (piece %zu): %s\n", name, pieces[p], dpt_error_message());
                    failures += !fixture_all_ranks(ok);
                    dpt_dataset_free(&set);
                }
            }
    dpt_data_set_piece_bytes(0);
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_npy_features_errors(void)
{
    char path[128];
    dpt_dataset set;
    path_of(path, sizeof path, "nothing.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_features(&set, MPI_COMM_WORLD, path), DPT_ERR_IO, path, NULL));
    CU_ASSERT_PTR_NULL(set.features);
    static const size_t one_d[1] = {6}, ints[2] = {3, 2}, empty[2] = {0, 4};
    write_npy("one_d.npy", DPT_NPY_F4, 1, one_d);
    path_of(path, sizeof path, "one_d.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_features(&set, MPI_COMM_WORLD, path), DPT_ERR_FORMAT, path,
                             "at least 2 dimensions"));
    write_npy("ints.npy", DPT_NPY_I4, 2, ints);
    path_of(path, sizeof path, "ints.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_features(&set, MPI_COMM_WORLD, path), DPT_ERR_FORMAT, path,
                             "'<i4' are not supported"));
    write_npy("empty.npy", DPT_NPY_F4, 2, empty);
    path_of(path, sizeof path, "empty.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_features(&set, MPI_COMM_WORLD, path), DPT_ERR_FORMAT, path,
                             "no samples"));
    static const char not_npy[] = "this is not a numpy file at all";
    write_bytes("text.npy", not_npy, sizeof not_npy);
    path_of(path, sizeof path, "text.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_features(&set, MPI_COMM_WORLD, path), DPT_ERR_FORMAT, path,
                             "not a .npy file"));
}

/* ================================================================ .npy labels */

static void test_npy_labels(void)
{
    static const size_t n = 11;
    int failures = 0;
    for (int t = 0; t < DPT_NPY_DTYPE_COUNT_; t++)
        for (int two_d = 0; two_d <= 1; two_d++) {
            size_t shape[2] = {n, 1};
            char name[64], path[128];
            snprintf(name, sizeof name, "l_%d_%d.npy", t, two_d);
            path_of(path, sizeof path, name);
            if (rank == 0) { /* i % 10 in every dtype: integers little-endian, integral floats */
                unsigned char data[11 * 8];
                size_t size = dpt_npy_dtype_size(t);
                memset(data, 0, sizeof data);
                for (size_t i = 0; i < n; i++) {
                    if (t == DPT_NPY_F4) *(float *)(data + 4 * i) = (float)(i % 10);
                    else if (t == DPT_NPY_F8) *(double *)(data + 8 * i) = (double)(i % 10);
                    else data[size * i] = (unsigned char)(i % 10);
                }
                CU_ASSERT_FATAL(dpt_npy_write(path, t, 1 + two_d, shape, data) == DPT_OK);
            }
            MPI_Barrier(MPI_COMM_WORLD);
            uint8_t *labels = NULL;
            size_t got = 0;
            int ok = dpt_npy_load_labels(&labels, &got, MPI_COMM_WORLD, path) == DPT_OK && got == n;
            for (size_t i = 0; ok && i < n; i++) ok = labels[i] == i % 10;
            if (!ok && rank == 0) printf("\n  %s: %s\n", name, dpt_error_message());
            failures += !fixture_all_ranks(ok);
            free(labels);
        }
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_npy_labels_errors(void)
{
    char path[128];
    uint8_t *labels;
    size_t n;
    /* the bad label sits in the last rank's share; that rank reports it */
    static const size_t shape[1] = {9};
    static const int64_t values[9] = {0, 1, 2, 3, 4, 5, 6, 7, 256};
    path_of(path, sizeof path, "bad_labels.npy");
    if (rank == 0) CU_ASSERT_FATAL(dpt_npy_write(path, DPT_NPY_I8, 1, shape, values) == DPT_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    CU_ASSERT(agreed_failure(dpt_npy_load_labels(&labels, &n, MPI_COMM_WORLD, path), DPT_ERR_FORMAT,
                             path, "label 256 of sample 8 is not an integer in 0..255"));
    CU_ASSERT_PTR_NULL(labels);
    static const double halves[3] = {0, 0.5, 1};
    static const size_t three[1] = {3};
    path_of(path, sizeof path, "half_labels.npy");
    if (rank == 0) CU_ASSERT_FATAL(dpt_npy_write(path, DPT_NPY_F8, 1, three, halves) == DPT_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    CU_ASSERT(agreed_failure(dpt_npy_load_labels(&labels, &n, MPI_COMM_WORLD, path), DPT_ERR_FORMAT,
                             path, "label 0.5 of sample 1"));
    static const int8_t negative[3] = {0, -1, 1};
    path_of(path, sizeof path, "neg_labels.npy");
    if (rank == 0) CU_ASSERT_FATAL(dpt_npy_write(path, DPT_NPY_I1, 1, three, negative) == DPT_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    CU_ASSERT(agreed_failure(dpt_npy_load_labels(&labels, &n, MPI_COMM_WORLD, path), DPT_ERR_FORMAT,
                             path, "label -1 of sample 1"));
    static const size_t wide[2] = {4, 2};
    write_npy("wide_labels.npy", DPT_NPY_U1, 2, wide);
    path_of(path, sizeof path, "wide_labels.npy");
    CU_ASSERT(agreed_failure(dpt_npy_load_labels(&labels, &n, MPI_COMM_WORLD, path), DPT_ERR_FORMAT,
                             path, "(n,) or (n, 1)"));
}

/* ================================================================ any format */

static size_t idx_bytes(uint8_t *out, int ndim, const uint32_t *dims, const uint8_t *data, size_t count)
{
    out[0] = out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++)
        for (int b = 0; b < 4; b++) out[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    memcpy(out + 4 + 4 * ndim, data, count);
    return 4 + 4 * (size_t)ndim + count;
}

static void test_load_any(void)
{
    /* .npy features, .npy labels and IDX labels, and the IDX pair */
    static const size_t fshape[3] = {10, 2, 3}, lshape[1] = {10};
    write_npy("any_x.npy", DPT_NPY_U1, 3, fshape);
    write_npy("any_y.npy", DPT_NPY_I8, 1, lshape);
    uint8_t pixels[60], labels[10], buf[128];
    for (int i = 0; i < 60; i++) pixels[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < 10; i++) labels[i] = (uint8_t)(i % 10);
    uint32_t dims[3] = {10, 2, 3};
    write_bytes("any_x.idx", buf, idx_bytes(buf, 3, dims, pixels, 60));
    write_bytes("any_y.idx", buf, idx_bytes(buf, 1, dims, labels, 10));
    char x_npy[128], y_npy[128], x_idx[128], y_idx[128];
    path_of(x_npy, sizeof x_npy, "any_x.npy");
    path_of(y_npy, sizeof y_npy, "any_y.npy");
    path_of(x_idx, sizeof x_idx, "any_x.idx");
    path_of(y_idx, sizeof y_idx, "any_y.idx");
    const char *pairs[4][2] = {{x_npy, y_npy}, {x_npy, y_idx}, {x_idx, y_npy}, {x_idx, y_idx}};
    dpt_dataset reference;
    CU_ASSERT_FATAL(dpt_dataset_load(&reference, x_idx, y_idx) == DPT_OK);
    int failures = 0;
    for (int p = 0; p < 4; p++) {
        dpt_dataset set;
        int ok = dpt_dataset_load_any(&set, MPI_COMM_WORLD, pairs[p][0], pairs[p][1], NULL) == DPT_OK;
        ok = ok && set.n_samples == 10 && set.n_features == 6 && set.n_classes == 10 &&
             set.shape[0] == 1 && set.shape[1] == 2 && set.shape[2] == 3 &&
             set.feature_type == DPT_FEATURES_U8;
        if (ok) { /* uint8 .npy gathers exactly as IDX */
            uint32_t all[10];
            dpt_real a[60], b[60];
            uint8_t ya[10], yb[10];
            for (uint32_t i = 0; i < 10; i++) all[i] = 9 - i;
            dpt_dataset_gather(&set, all, 10, a, ya);
            dpt_dataset_gather(&reference, all, 10, b, yb);
            ok = !memcmp(a, b, sizeof a) && !memcmp(ya, yb, sizeof ya);
        }
        if (!ok && rank == 0) printf("\n  pair %d: %s\n", p, dpt_error_message());
        failures += !fixture_all_ranks(ok);
        dpt_dataset_free(&set);
    }
    CU_ASSERT_EQUAL(failures, 0);
    /* no labels: every label 0 */
    dpt_dataset set;
    CU_ASSERT(fixture_all_ranks(dpt_dataset_load_any(&set, MPI_COMM_WORLD, x_npy, NULL, NULL) == DPT_OK &&
                                set.n_classes == 1 && set.labels[9] == 0));
    dpt_dataset_free(&set);
    dpt_dataset_free(&reference);
}

static void test_load_any_errors(void)
{
    char x[128], y[128], csv[128];
    dpt_dataset set;
    static const size_t fshape[2] = {10, 3}, lshape[1] = {9};
    write_npy("err_x.npy", DPT_NPY_F4, 2, fshape);
    write_npy("err_y.npy", DPT_NPY_U1, 1, lshape);
    path_of(x, sizeof x, "err_x.npy");
    path_of(y, sizeof y, "err_y.npy");
    CU_ASSERT(agreed_failure(dpt_dataset_load_any(&set, MPI_COMM_WORLD, x, y, NULL), DPT_ERR_FORMAT,
                             "holds 10 samples", "holds 9 labels"));
    CU_ASSERT(agreed_failure(dpt_dataset_load_any(&set, MPI_COMM_WORLD, x, "", NULL), DPT_ERR_CONFIG,
                             x, "no labels file"));
    path_of(y, sizeof y, "missing-labels.npy");
    CU_ASSERT(agreed_failure(dpt_dataset_load_any(&set, MPI_COMM_WORLD, x, y, NULL), DPT_ERR_IO, y, NULL));
    static const char text[] = "label,a\n1,2\n0,x\n";
    write_bytes("err.csv", text, strlen(text));
    path_of(csv, sizeof csv, "err.csv");
    CU_ASSERT(agreed_failure(dpt_dataset_load_any(&set, MPI_COMM_WORLD, csv, "", NULL), DPT_ERR_FORMAT,
                             csv, ":3: column 2: 'x' is not a finite number"));
    path_of(y, sizeof y, "err_y.npy");
    CU_ASSERT(agreed_failure(dpt_dataset_load_any(&set, MPI_COMM_WORLD, csv, y, NULL), DPT_ERR_CONFIG,
                             csv, "one source of labels"));
    CU_ASSERT_PTR_NULL(set.features);
}

/* CSV: rank 0 parses, every rank gets the same set as a serial parse. */
static void test_csv_broadcast(void)
{
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "a,b,label,c\n");
    for (int i = 0; i < 50; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%g,%d,%d,%g\n", i * 0.1, -i, i % 7, 1.0 / (i + 1));
    write_bytes("b.csv", text, len);
    char path[128];
    path_of(path, sizeof path, "b.csv");
    dpt_load_options o = {DPT_FORMAT_AUTO, "label", DPT_CSV_HEADER_AUTO};
    dpt_data_set_piece_bytes(64); /* several broadcast pieces */
    dpt_dataset set, serial;
    int ok = dpt_dataset_load_any(&set, MPI_COMM_WORLD, path, "", &o) == DPT_OK;
    dpt_data_set_piece_bytes(0);
    ok = ok && dpt_csv_read(&serial, path, &o) == DPT_OK;
    ok = ok && set.n_samples == 50 && set.n_features == 3 && set.n_classes == 7;
    if (ok) {
        uint32_t all[50];
        dpt_real a[150], b[150];
        uint8_t ya[50], yb[50];
        for (uint32_t i = 0; i < 50; i++) all[i] = i;
        dpt_dataset_gather(&set, all, 50, a, ya);
        dpt_dataset_gather(&serial, all, 50, b, yb);
        ok = !memcmp(a, b, sizeof a) && !memcmp(ya, yb, sizeof ya) && ya[13] == 6;
        dpt_dataset_free(&serial);
    }
    CU_ASSERT(fixture_all_ranks(ok));
    dpt_dataset_free(&set);
}

/* ================================================================ main */

static void remove_dir(void)
{
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank != 0) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (rank == 0) {
        snprintf(dir, sizeof dir, "/tmp/dpt_test_mpi_data_XXXXXX");
        if (!mkdtemp(dir)) dir[0] = '\0';
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!dir[0] || CU_initialize_registry() != CUE_SUCCESS) {
        MPI_Finalize();
        return 1;
    }
    CU_pSuite suite = CU_add_suite("data loaders over MPI", NULL, NULL);
    int bad = !suite ||
              !CU_add_test(suite, ".npy features: shares equal the serial read", test_npy_features_equal_serial) ||
              !CU_add_test(suite, ".npy features: agreed errors", test_npy_features_errors) ||
              !CU_add_test(suite, ".npy labels: every dtype, (n,) and (n, 1)", test_npy_labels) ||
              !CU_add_test(suite, ".npy labels: bad values named by sample", test_npy_labels_errors) ||
              !CU_add_test(suite, "any format: npy/IDX pairs, no labels", test_load_any) ||
              !CU_add_test(suite, "any format: agreed errors", test_load_any_errors) ||
              !CU_add_test(suite, "CSV: rank 0 parses and broadcasts", test_csv_broadcast);
    int status = bad ? 1 : fixture_run(rank);
    remove_dir();
    MPI_Finalize();
    return status;
}
