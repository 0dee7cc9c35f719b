/* Unit tests of the data module: the IDX reader (src/data/idx.c), the data
 * set loader and batch gathering, and the batch split across ranks
 * (src/data/dataset.c).
 *
 * IDX files are written byte by byte by the test itself (big-endian header
 * 00 00 <type> <ndim>, ndim 32-bit sizes, then the elements), plain or
 * through zlib's gzwrite, into a fresh mkdtemp directory that main()
 * removes at the end. So every expected value is known independently of the
 * reader under test, and broken files can be made exactly as broken as
 * wanted. */
#include "cunit_util.h"
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dpt/data.h"

#ifdef DPT_DOUBLE
#define REAL_TOL 1e-12
#else
#define REAL_TOL 1e-6
#endif

#define PATH_SIZE 512
#define MAX_FILE 8192

static char tmp_dir[] = "/tmp/dpt_test_data_XXXXXX";

/* ================================================================ file helpers */

static void path_in_tmp(char *path, const char *name)
{
    snprintf(path, PATH_SIZE, "%s/%s", tmp_dir, name);
}

static int write_plain(const char *path, const uint8_t *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = len ? fwrite(bytes, 1, len, f) : 0;
    return (fclose(f) == 0 && put == len) ? 0 : -1;
}

/* gzwrite with level 9 so that compressible data gives real deflate blocks
 * (not stored ones), which the corruption tests rely on. */
static int write_gz(const char *path, const uint8_t *bytes, size_t len)
{
    gzFile f = gzopen(path, "wb9");
    if (!f) return -1;
    int put = len ? gzwrite(f, bytes, (unsigned)len) : 0;
    return (gzclose(f) == Z_OK && (size_t)put == len) ? 0 : -1;
}

/* Writes `bytes` to tmp_dir/name (gzipped if gz) and returns the path in
 * `path`. A failure here is a broken test environment, hence FATAL. */
static void make_file(char *path, const char *name, const uint8_t *bytes, size_t len, int gz)
{
    path_in_tmp(path, name);
    int rc = gz ? write_gz(path, bytes, len) : write_plain(path, bytes, len);
    CU_ASSERT_FATAL(rc == 0);
}

static size_t read_whole(const char *path, uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    return got;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* IDX bytes: header 00 00 type ndim, the dims big-endian, then `count`
 * data bytes. Returns the length written to out. */
static size_t idx_bytes(uint8_t *out, uint8_t type, int ndim, const uint32_t *dims,
                        const uint8_t *data, size_t count)
{
    out[0] = 0;
    out[1] = 0;
    out[2] = type;
    out[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) put_be32(out + 4 + 4 * d, dims[d]);
    size_t len = 4 + 4 * (size_t)ndim;
    if (count) memcpy(out + len, data, count);
    return len + count;
}

static void remove_tmp_dir(void)
{
    DIR *dir = opendir(tmp_dir);
    if (!dir) return;
    struct dirent *entry;
    char path[PATH_SIZE];
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        path_in_tmp(path, entry->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(tmp_dir);
}

/* ================================================================ fixtures */

/* A 7 x 3 x 4 image file: n = 7 samples of 12 features. The bytes include
 * 0, 51 and 255 to check the scaling; the rest is a pattern where every
 * position differs from its neighbours, so a misplaced byte shows. */
enum { N_IMG = 7, ROWS = 3, COLS = 4, N_FEAT = ROWS * COLS };
static const uint32_t image_dims[3] = {N_IMG, ROWS, COLS};
static const uint8_t labels_7[N_IMG] = {3, 1, 4, 1, 5, 9, 2};

static void fill_images(uint8_t *pixels)
{
    for (int i = 0; i < N_IMG * N_FEAT; i++) pixels[i] = (uint8_t)(i * 37 + 11);
    pixels[0] = 0;
    pixels[1] = 51;
    pixels[2] = 255;
    pixels[N_IMG * N_FEAT - 1] = 255;
}

static void make_images(char *path, const char *name, int gz)
{
    uint8_t pixels[N_IMG * N_FEAT], buf[MAX_FILE];
    fill_images(pixels);
    size_t len = idx_bytes(buf, 0x08, 3, image_dims, pixels, sizeof pixels);
    make_file(path, name, buf, len, gz);
}

static void make_labels(char *path, const char *name, const uint8_t *labels, uint32_t n, int gz)
{
    uint8_t buf[MAX_FILE];
    size_t len = idx_bytes(buf, 0x08, 1, &n, labels, n);
    make_file(path, name, buf, len, gz);
}

/* Reads `path` expecting failure `want`: the message must name the file
 * and, if `needle` is given, contain it; nothing may be left allocated. */
static void expect_idx_error(const char *path, dpt_status want, const char *needle)
{
    dpt_idx idx;
    dpt_error_clear();
    dpt_status st = dpt_idx_read(&idx, path);
    const char *msg = dpt_error_message();
    int named = strstr(msg, path) != NULL;
    int has_needle = !needle || strstr(msg, needle) != NULL;
    if (st != want || !named || !has_needle)
        printf("\n  %s: status %d (want %d), message \"%s\"\n", path, st, want, msg);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT(named);
    CU_ASSERT(has_needle);
    CU_ASSERT_PTR_NULL(idx.data);
    if (st == DPT_OK) dpt_idx_free(&idx);
}

/* ================================================================ IDX: good files */

static void check_images_idx(const char *path)
{
    uint8_t pixels[N_IMG * N_FEAT];
    fill_images(pixels);
    dpt_idx idx;
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.ndim, 3);
    CU_ASSERT_EQUAL(idx.dims[0], N_IMG);
    CU_ASSERT_EQUAL(idx.dims[1], ROWS);
    CU_ASSERT_EQUAL(idx.dims[2], COLS);
    CU_ASSERT_EQUAL(idx.count, (size_t)N_IMG * N_FEAT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx.data);
    CU_ASSERT_EQUAL(memcmp(idx.data, pixels, sizeof pixels), 0);
    dpt_idx_free(&idx);
    CU_ASSERT_PTR_NULL(idx.data);
    CU_ASSERT_EQUAL(idx.count, 0);
}

static void test_idx_images_plain(void)
{
    char path[PATH_SIZE];
    make_images(path, "images.idx", 0);
    check_images_idx(path);
}

static void test_idx_images_gz(void)
{
    char path[PATH_SIZE];
    make_images(path, "images.idx.gz", 1);
    check_images_idx(path);
}

static void check_labels_idx(const char *path)
{
    dpt_idx idx;
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.ndim, 1);
    CU_ASSERT_EQUAL(idx.dims[0], N_IMG);
    CU_ASSERT_EQUAL(idx.count, (size_t)N_IMG);
    CU_ASSERT_EQUAL(memcmp(idx.data, labels_7, N_IMG), 0);
    dpt_idx_free(&idx);
}

static void test_idx_labels_plain_and_gz(void)
{
    char path[PATH_SIZE];
    make_labels(path, "labels.idx", labels_7, N_IMG, 0);
    check_labels_idx(path);
    make_labels(path, "labels.idx.gz", labels_7, N_IMG, 1);
    check_labels_idx(path);
}

/* The largest dimension count (8), and a dimension size 0x10203 whose
 * three low header bytes all differ, to catch a byte-order slip. */
static void test_idx_big_endian_dims(void)
{
    static const uint32_t dims8[8] = {1, 2, 1, 3, 1, 1, 2, 1};
    static uint8_t buf[4 + 4 * 8 + 0x10203];
    uint8_t data[12];
    for (int i = 0; i < 12; i++) data[i] = (uint8_t)(200 + i);
    char path[PATH_SIZE];
    dpt_idx idx;
    make_file(path, "dims8.idx", buf, idx_bytes(buf, 0x08, 8, dims8, data, 12), 0);
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.ndim, 8);
    CU_ASSERT_EQUAL(memcmp(idx.dims, dims8, sizeof dims8), 0);
    CU_ASSERT_EQUAL(memcmp(idx.data, data, 12), 0);
    dpt_idx_free(&idx);

    /* 1 x 0x10203 (66051) elements */
    static const uint32_t dims2[2] = {1, 0x10203};
    static uint8_t body[0x10203];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i % 251);
    make_file(path, "wide.idx.gz", buf, idx_bytes(buf, 0x08, 2, dims2, body, sizeof body), 1);
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.dims[1], 0x10203u);
    CU_ASSERT_EQUAL(idx.count, sizeof body);
    CU_ASSERT_EQUAL(memcmp(idx.data, body, sizeof body), 0);
    dpt_idx_free(&idx);
}

/* ================================================================ IDX: broken files */

static void test_idx_missing_file(void)
{
    char path[PATH_SIZE];
    path_in_tmp(path, "does-not-exist.idx");
    expect_idx_error(path, DPT_ERR_IO, NULL);
}

/* A directory opens but cannot be read: an I/O error, not a format one. */
static void test_idx_directory(void)
{
    expect_idx_error(tmp_dir, DPT_ERR_IO, NULL);
}

static void test_idx_bad_magic(void)
{
    uint8_t buf[64];
    uint32_t n = 2;
    size_t len = idx_bytes(buf, 0x08, 1, &n, (const uint8_t *)"\x01\x02", 2);
    buf[0] = 0x01; /* first bytes 01 02 */
    buf[1] = 0x02;
    char path[PATH_SIZE];
    make_file(path, "bad-magic.idx", buf, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
    make_file(path, "bad-magic.idx.gz", buf, len, 1);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
    /* An element type no IDX file has (0x07) is no IDX file either. */
    len = idx_bytes(buf, 0x07, 1, &n, (const uint8_t *)"\x01\x02", 2);
    make_file(path, "bad-type.idx", buf, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

/* 0x0D is a valid IDX type (float) that dptrain does not read: the message
 * must say which type it found. */
static void test_idx_float_type(void)
{
    uint8_t buf[64], data[8] = {0};
    uint32_t n = 2;
    char path[PATH_SIZE];
    make_file(path, "float.idx", buf, idx_bytes(buf, 0x0D, 1, &n, data, 8), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, "float");
    expect_idx_error(path, DPT_ERR_FORMAT, "not supported");
}

static void test_idx_ndim_out_of_range(void)
{
    uint8_t buf[128], data[1] = {7};
    static const uint32_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    char path[PATH_SIZE];
    make_file(path, "ndim0.idx", buf, idx_bytes(buf, 0x08, 0, ones, data, 1), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
    make_file(path, "ndim9.idx", buf, idx_bytes(buf, 0x08, 9, ones, data, 1), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

static void test_idx_zero_dimension(void)
{
    uint8_t buf[128], data[4] = {1, 2, 3, 4};
    static const uint32_t dims[3] = {2, 0, 2};
    char path[PATH_SIZE];
    make_file(path, "dim0.idx", buf, idx_bytes(buf, 0x08, 3, dims, data, 4), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

/* The header ends early: inside the magic, inside the sizes, or the file
 * is empty. Plain and gzipped. */
static void test_idx_header_cut_short(void)
{
    uint8_t full[64];
    static const uint32_t dims[3] = {7, 3, 4};
    size_t header = idx_bytes(full, 0x08, 3, dims, NULL, 0); /* 16 bytes */
    static const size_t cuts[] = {0, 2, 4, 9, 15};
    char path[PATH_SIZE], name[64];
    for (int gz = 0; gz <= 1; gz++)
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            CU_ASSERT_FATAL(cuts[c] < header);
            snprintf(name, sizeof name, "header-cut-%zu.idx%s", cuts[c], gz ? ".gz" : "");
            make_file(path, name, full, cuts[c], gz);
            expect_idx_error(path, DPT_ERR_FORMAT, NULL);
        }
}

/* The header declares 7 x 3 x 4 = 84 elements, the file holds fewer. */
static void test_idx_body_truncated(void)
{
    uint8_t pixels[N_IMG * N_FEAT], buf[MAX_FILE];
    fill_images(pixels);
    size_t len = idx_bytes(buf, 0x08, 3, image_dims, pixels, sizeof pixels);
    char path[PATH_SIZE];
    make_file(path, "body-cut.idx", buf, len - 1, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, "truncated");
    make_file(path, "body-cut.idx.gz", buf, len - 30, 1);
    expect_idx_error(path, DPT_ERR_FORMAT, "truncated");
    make_file(path, "body-none.idx", buf, 16, 0); /* header only */
    expect_idx_error(path, DPT_ERR_FORMAT, "truncated");
}

/* A header that claims 2^48 elements over a 10-byte body must fail as
 * truncated (the reader grows its buffer as data arrives); sizes whose
 * product overflows size_t must fail too. */
static void test_idx_lying_sizes(void)
{
    uint8_t buf[128], data[10] = {0};
    static const uint32_t huge[3] = {0x10000, 0x10000, 0x10000};
    static const uint32_t overflow[8] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu,
                                         0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    char path[PATH_SIZE];
    make_file(path, "huge.idx", buf, idx_bytes(buf, 0x08, 3, huge, data, 10), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, "truncated");
    make_file(path, "overflow.idx", buf, idx_bytes(buf, 0x08, 8, overflow, data, 10), 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

static void test_idx_trailing_bytes(void)
{
    uint8_t buf[64];
    uint32_t n = 3;
    size_t len = idx_bytes(buf, 0x08, 1, &n, (const uint8_t *)"\x01\x02\x03\x04", 4);
    char path[PATH_SIZE];
    make_file(path, "trailing.idx", buf, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
    make_file(path, "trailing.idx.gz", buf, len, 1);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

/* Bytes after the end of a gzip stream are damage (zlib's gzread would
 * ignore them); a second gzip member after the first is legal gzip and is
 * read as the continuation of the data. */
static void test_idx_gzip_trailing_and_members(void)
{
    uint8_t buf[64];
    uint32_t n = 4;
    size_t len = idx_bytes(buf, 0x08, 1, &n, (const uint8_t *)"\x05\x06\x07\x08", 4);
    char path[PATH_SIZE];
    make_file(path, "garbage-after.idx.gz", buf, len, 1);
    FILE *f = fopen(path, "ab");
    CU_ASSERT_FATAL(f != NULL);
    fputs("GARBAGE!", f);
    fclose(f);
    expect_idx_error(path, DPT_ERR_FORMAT, "trailing data after the gzip stream");

    /* header + first two elements in one member, the other two in a second */
    char first[PATH_SIZE], second[PATH_SIZE];
    make_file(first, "member1.gz", buf, len - 2, 1);
    make_file(second, "member2.gz", buf + len - 2, 2, 1);
    uint8_t joined[MAX_FILE], part[MAX_FILE];
    size_t a = read_whole(first, joined, sizeof joined);
    size_t b = read_whole(second, part, sizeof part);
    CU_ASSERT_FATAL(a > 0 && b > 0 && a + b <= sizeof joined);
    memcpy(joined + a, part, b);
    make_file(path, "two-members.idx.gz", joined, a + b, 0);
    dpt_idx idx;
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.count, 4);
    CU_ASSERT(memcmp(idx.data, "\x05\x06\x07\x08", 4) == 0);
    dpt_idx_free(&idx);
}

/* A 1-D IDX of `n` compressible bytes (a short repeating pattern with a
 * slow drift), gzipped into tmp_dir/name; its compressed bytes in gz. */
static size_t make_gz_labels(char *path, const char *name, uint32_t n, uint8_t *gz, size_t gz_size)
{
    static uint8_t labels[4096];
    CU_ASSERT_FATAL(n <= sizeof labels);
    for (uint32_t i = 0; i < n; i++) labels[i] = (uint8_t)((i * 7 + i / 13) % 10);
    make_labels(path, name, labels, n, 1);
    size_t len = read_whole(path, gz, gz_size);
    CU_ASSERT_FATAL(len > 18); /* 10-byte gzip header + data + 8-byte trailer */
    return len;
}

/* A valid .gz must first read back fine, so that the failures below are
 * caused by the damage alone. */
static void check_gz_valid(const char *path, uint32_t n)
{
    dpt_idx idx;
    CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&idx, path), DPT_OK);
    CU_ASSERT_EQUAL(idx.count, n);
    dpt_idx_free(&idx);
}

/* gzip integrity: damaging the deflate data, the CRC-32 or the length
 * field of the trailer must each be detected. */
static void test_idx_corrupt_gzip(void)
{
    enum { N = 4000 };
    static uint8_t gz[MAX_FILE], bad[MAX_FILE];
    char path[PATH_SIZE];
    size_t len = make_gz_labels(path, "good.idx.gz", N, gz, sizeof gz);
    check_gz_valid(path, N);
    /* The data compresses (< 1/2), so its middle is Huffman-coded deflate. */
    CU_ASSERT_FATAL(len < N / 2);
    /* a gzip member is at least 18 bytes (10 header + 8 trailer); saying so
     * also tells the compiler that len - 8 cannot wrap */
    if (len < 18 || len > MAX_FILE) {
        CU_FAIL("gzip output of implausible size");
        return;
    }

    memcpy(bad, gz, len);
    for (size_t i = len / 2 - 4; i < len / 2 + 4; i++) bad[i] ^= 0x5A;
    make_file(path, "corrupt-deflate.idx.gz", bad, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);

    memcpy(bad, gz, len);
    bad[len - 8] ^= 0x01; /* first byte of the CRC-32 */
    make_file(path, "corrupt-crc.idx.gz", bad, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);

    memcpy(bad, gz, len);
    bad[len - 4] ^= 0x01; /* first byte of ISIZE, the length mod 2^32 */
    make_file(path, "corrupt-isize.idx.gz", bad, len, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

/* A .gz cut short: 10 bytes gone (the 8-byte trailer and the end of the
 * deflate data), and only the last 4 bytes gone (every element decodes,
 * but the trailer is incomplete). */
static void test_idx_gzip_cut_short(void)
{
    enum { N = 4000 };
    static uint8_t gz[MAX_FILE];
    char path[PATH_SIZE];
    size_t len = make_gz_labels(path, "good2.idx.gz", N, gz, sizeof gz);
    check_gz_valid(path, N);
    make_file(path, "cut10.idx.gz", gz, len - 10, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
    make_file(path, "cut4.idx.gz", gz, len - 4, 0);
    expect_idx_error(path, DPT_ERR_FORMAT, NULL);
}

/* From memory: dpt_idx_parse reads a file's bytes (plain and gzipped) as
 * dpt_idx_read reads the file, and its errors name the buffer. */
static void test_idx_parse_memory(void)
{
    char path[PATH_SIZE];
    static uint8_t bytes[MAX_FILE];
    for (int gz = 0; gz <= 1; gz++) {
        make_images(path, gz ? "mem-images.gz" : "mem-images", gz);
        size_t len = read_whole(path, bytes, sizeof bytes);
        CU_ASSERT_FATAL(len > 16 && len < sizeof bytes);
        dpt_idx from_file, from_memory;
        CU_ASSERT_EQUAL_FATAL(dpt_idx_read(&from_file, path), DPT_OK);
        CU_ASSERT_EQUAL_FATAL(dpt_idx_parse(&from_memory, bytes, len, "buffer"), DPT_OK);
        CU_ASSERT_EQUAL(from_memory.ndim, from_file.ndim);
        CU_ASSERT_EQUAL(memcmp(from_memory.dims, from_file.dims, sizeof from_file.dims), 0);
        CU_ASSERT_EQUAL(from_memory.count, from_file.count);
        CU_ASSERT_EQUAL(memcmp(from_memory.data, from_file.data, from_file.count), 0);
        dpt_idx_free(&from_file);
        dpt_idx_free(&from_memory);

        dpt_idx idx;
        CU_ASSERT_EQUAL(dpt_idx_parse(&idx, bytes, len - 1, "cut-buffer"), DPT_ERR_FORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "cut-buffer"));
        CU_ASSERT_PTR_NULL(idx.data);
    }
    dpt_idx idx;
    CU_ASSERT_EQUAL(dpt_idx_parse(&idx, NULL, 0, NULL), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(idx.data);
}

/* ================================================================ data sets */

static void check_loaded_set(const dpt_dataset *set)
{
    uint8_t pixels[N_IMG * N_FEAT];
    fill_images(pixels);
    CU_ASSERT_EQUAL(set->n_samples, N_IMG);
    CU_ASSERT_EQUAL(set->n_features, 12);
    CU_ASSERT_EQUAL(set->n_classes, 10); /* max label 9, plus 1 */
    CU_ASSERT_EQUAL(memcmp(set->features, pixels, sizeof pixels), 0);
    CU_ASSERT_EQUAL(memcmp(set->labels, labels_7, N_IMG), 0);
}

static void test_dataset_load(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    dpt_dataset set;
    for (int gz = 0; gz <= 1; gz++) {
        make_images(images, gz ? "set-images.gz" : "set-images", gz);
        /* labels in the other form, so mixed plain / gz also works */
        make_labels(labels, gz ? "set-labels" : "set-labels.gz", labels_7, N_IMG, !gz);
        CU_ASSERT_EQUAL_FATAL(dpt_dataset_load(&set, images, labels), DPT_OK);
        check_loaded_set(&set);
        dpt_dataset_free(&set);
        CU_ASSERT_PTR_NULL(set.features);
        CU_ASSERT_PTR_NULL(set.labels);
    }
}

/* n_classes is the largest label + 1, wherever it sits. */
/* dpt_dataset_from_idx: the checks of dpt_dataset_load on arrays in memory;
 * the set takes the buffers, or frees them on error. */
static void test_dataset_from_idx(void)
{
    uint8_t pixels[N_IMG * N_FEAT], image_buf[MAX_FILE], label_buf[64];
    fill_images(pixels);
    size_t image_len = idx_bytes(image_buf, 0x08, 3, image_dims, pixels, sizeof pixels);
    uint32_t n = N_IMG;
    size_t label_len = idx_bytes(label_buf, 0x08, 1, &n, labels_7, N_IMG);
    dpt_idx images, labels;
    CU_ASSERT_EQUAL_FATAL(dpt_idx_parse(&images, image_buf, image_len, "images"), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_idx_parse(&labels, label_buf, label_len, "labels"), DPT_OK);
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_from_idx(&set, &images, &labels, "images", "labels"), DPT_OK);
    CU_ASSERT_PTR_NULL(images.data);
    CU_ASSERT_PTR_NULL(labels.data);
    check_loaded_set(&set);
    CU_ASSERT(set.shape[0] == 1 && set.shape[1] == ROWS && set.shape[2] == COLS);
    dpt_dataset_free(&set);

    n = N_IMG - 1; /* one label short */
    label_len = idx_bytes(label_buf, 0x08, 1, &n, labels_7, N_IMG - 1);
    CU_ASSERT_EQUAL_FATAL(dpt_idx_parse(&images, image_buf, image_len, "images"), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_idx_parse(&labels, label_buf, label_len, "labels"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_dataset_from_idx(&set, &images, &labels, "images", "labels"), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "labels"));
    CU_ASSERT(images.data == NULL && labels.data == NULL && set.features == NULL);
}

static void test_dataset_classes(void)
{
    static const uint8_t features[4] = {1, 2, 3, 4};
    static const uint8_t first[4] = {6, 0, 1, 2}, all_zero[4] = {0, 0, 0, 0};
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_from_arrays(&set, features, first, 4, 1), DPT_OK);
    CU_ASSERT_EQUAL(set.n_classes, 7);
    dpt_dataset_free(&set);
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_from_arrays(&set, features, all_zero, 2, 2), DPT_OK);
    CU_ASSERT_EQUAL(set.n_classes, 1);
    CU_ASSERT_EQUAL(set.n_samples, 2);
    CU_ASSERT_EQUAL(set.n_features, 2);
    dpt_dataset_free(&set);
}

/* from_arrays copies: changing the caller's arrays afterwards must not
 * change the set. Empty sets are rejected. */
static void test_dataset_from_arrays(void)
{
    uint8_t features[6] = {10, 20, 30, 40, 50, 60}, labels[3] = {2, 0, 1};
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_from_arrays(&set, features, labels, 3, 2), DPT_OK);
    features[0] = 99;
    labels[0] = 7;
    CU_ASSERT_EQUAL(((const uint8_t *)set.features)[0], 10);
    CU_ASSERT_EQUAL(((const uint8_t *)set.features)[5], 60);
    CU_ASSERT_EQUAL(set.labels[0], 2);
    CU_ASSERT_EQUAL(set.n_classes, 3);
    dpt_dataset_free(&set);
    CU_ASSERT_EQUAL(dpt_dataset_from_arrays(&set, features, labels, 0, 2), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_dataset_from_arrays(&set, features, labels, 3, 0), DPT_ERR_ARG);
}

/* gather: x[i] = features[indices[i]] / 255, y[i] = labels[indices[i]]. */
static void test_dataset_gather(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    make_images(images, "gather-images", 0);
    make_labels(labels, "gather-labels", labels_7, N_IMG, 0);
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_load(&set, images, labels), DPT_OK);
    uint8_t pixels[N_IMG * N_FEAT];
    fill_images(pixels);
    static const uint32_t indices[4] = {6, 0, 3, 0};
    dpt_real x[4 * N_FEAT];
    uint8_t y[4];
    dpt_dataset_gather(&set, indices, 4, x, y);
    /* sample 0 starts with bytes 0, 51, 255 */
    CU_ASSERT_DOUBLE_EQUAL(x[N_FEAT + 0], 0.0, REAL_TOL);
    CU_ASSERT_DOUBLE_EQUAL(x[N_FEAT + 1], 0.2, REAL_TOL);
    CU_ASSERT_DOUBLE_EQUAL(x[N_FEAT + 2], 1.0, REAL_TOL);
    CU_ASSERT_DOUBLE_EQUAL(x[N_FEAT - 1], 1.0, REAL_TOL); /* last byte of sample 6 */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(y[i], labels_7[indices[i]]);
        for (int f = 0; f < N_FEAT; f++) {
            double want = pixels[indices[i] * N_FEAT + f] / 255.0;
            CU_ASSERT_DOUBLE_EQUAL(x[i * N_FEAT + f], want, REAL_TOL);
            CU_ASSERT(x[i * N_FEAT + f] >= 0 && x[i * N_FEAT + f] <= 1);
        }
    }
    dpt_dataset_free(&set);
}

/* load with a broken file must fail with that file's status and name, and
 * leave the set empty. */
static void expect_load_error(const char *images, const char *labels, dpt_status want,
                              const char *name1, const char *name2)
{
    dpt_dataset set;
    dpt_error_clear();
    dpt_status st = dpt_dataset_load(&set, images, labels);
    const char *msg = dpt_error_message();
    int named = strstr(msg, name1) && (!name2 || strstr(msg, name2));
    if (st != want || !named) printf("\n  load: status %d (want %d), message \"%s\"\n", st, want, msg);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT(named);
    CU_ASSERT_PTR_NULL(set.features);
    CU_ASSERT_PTR_NULL(set.labels);
    if (st == DPT_OK) dpt_dataset_free(&set);
}

static void test_dataset_missing_files(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE], missing[PATH_SIZE];
    make_images(images, "ok-images", 0);
    make_labels(labels, "ok-labels", labels_7, N_IMG, 0);
    path_in_tmp(missing, "no-such-file");
    expect_load_error(missing, labels, DPT_ERR_IO, missing, NULL);
    expect_load_error(images, missing, DPT_ERR_IO, missing, NULL);
}

static void test_dataset_count_mismatch(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    make_images(images, "mm-images", 0);
    make_labels(labels, "mm-labels", labels_7, N_IMG - 1, 0);
    expect_load_error(images, labels, DPT_ERR_FORMAT, images, labels);
}

static void test_dataset_labels_2d(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    uint8_t buf[64];
    static const uint32_t dims[2] = {N_IMG, 1};
    make_images(images, "l2-images", 0);
    make_file(labels, "l2-labels", buf, idx_bytes(buf, 0x08, 2, dims, labels_7, N_IMG), 0);
    expect_load_error(images, labels, DPT_ERR_FORMAT, labels, NULL);
}

static void test_dataset_images_1d(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    make_labels(images, "i1-images", labels_7, N_IMG, 0); /* 1-D: 7 "images" */
    make_labels(labels, "i1-labels", labels_7, N_IMG, 0);
    expect_load_error(images, labels, DPT_ERR_FORMAT, images, NULL);
}

static void test_dataset_broken_file(void)
{
    char images[PATH_SIZE], labels[PATH_SIZE];
    uint8_t buf[8] = {0, 0, 0x08, 3, 0, 0, 0, 7}; /* header cut short */
    make_file(images, "broken-images", buf, sizeof buf, 0);
    make_labels(labels, "broken-labels-ok", labels_7, N_IMG, 0);
    expect_load_error(images, labels, DPT_ERR_FORMAT, images, NULL);
    make_images(images, "broken-images-ok", 0);
    make_file(labels, "broken-labels", buf, sizeof buf, 0);
    expect_load_error(images, labels, DPT_ERR_FORMAT, labels, NULL);
}

/* Images with more than 3 dims: features are the product after the first. */
static void test_dataset_4d_images(void)
{
    static const uint32_t dims[4] = {2, 2, 3, 1};
    uint8_t pixels[12], buf[64];
    for (int i = 0; i < 12; i++) pixels[i] = (uint8_t)(i * 20);
    char images[PATH_SIZE], labels[PATH_SIZE];
    make_file(images, "4d-images", buf, idx_bytes(buf, 0x08, 4, dims, pixels, 12), 0);
    make_labels(labels, "4d-labels", (const uint8_t *)"\x00\x01", 2, 0);
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_load(&set, images, labels), DPT_OK);
    CU_ASSERT_EQUAL(set.n_samples, 2);
    CU_ASSERT_EQUAL(set.n_features, 6);
    CU_ASSERT_EQUAL(set.n_classes, 2);
    dpt_dataset_free(&set);
}

/* ================================================================ batching */

/* Checks one step across all ranks: global_count agrees, counts sum to it,
 * slices are contiguous in rank order from step * ranks * batch, differ in
 * size by at most one, and a full global batch gives each rank `batch`.
 * Marks every index in seen[]. Returns 1 if all holds. */
static int check_step(size_t n, size_t batch, int ranks, int drop_last, size_t step,
                      unsigned char *seen)
{
    size_t expected_start = step * batch * (size_t)ranks, next = expected_start;
    size_t global = 0, sum = 0, smallest = SIZE_MAX, largest = 0;
    int ok = 1;
    for (int r = 0; r < ranks; r++) {
        dpt_batch_plan plan;
        if (dpt_batch_plan_init(&plan, n, batch, drop_last, r, ranks) != DPT_OK) return 0;
        size_t begin, count, global_count;
        dpt_batch_slice(&plan, step, &begin, &count, &global_count);
        if (r == 0) global = global_count;
        ok &= global_count == global && begin == next;
        next = begin + count;
        sum += count;
        smallest = count < smallest ? count : smallest;
        largest = count > largest ? count : largest;
        for (size_t i = begin; i < begin + count && i < n; i++) seen[i]++;
    }
    size_t full = batch * (size_t)ranks;
    ok &= sum == global && largest - smallest <= 1 && next <= n;
    if (global == full) ok &= smallest == batch && largest == batch;
    else ok &= global == n - expected_start && !drop_last; /* only the last batch is ragged */
    return ok;
}

/* One epoch over all ranks. drop_last = 0: every index once. drop_last =
 * 1: steps = n / (ranks batch), the first steps * ranks * batch indices
 * once and the ragged tail never. */
static int check_epoch(size_t n, size_t batch, int ranks, int drop_last)
{
    size_t full = batch * (size_t)ranks;
    size_t want_steps = drop_last ? n / full : (n + full - 1) / full;
    dpt_batch_plan plan;
    if (dpt_batch_plan_init(&plan, n, batch, drop_last, 0, ranks) != DPT_OK) return 0;
    if (plan.steps_per_epoch != want_steps) return 0;
    unsigned char *seen = calloc(n, 1);
    int ok = 1;
    for (size_t step = 0; step < want_steps; step++)
        ok &= check_step(n, batch, ranks, drop_last, step, seen);
    size_t covered = drop_last ? want_steps * full : n;
    for (size_t i = 0; i < n; i++) ok &= seen[i] == (i < covered ? 1 : 0);
    free(seen);
    return ok;
}

static void test_batch_epoch_coverage(void)
{
    int failures = 0, combos = 0;
    for (size_t n = 1; n <= 70; n++)
        for (size_t batch = 1; batch <= 8; batch++)
            for (int ranks = 1; ranks <= 9; ranks++)
                for (int drop_last = 0; drop_last <= 1; drop_last++) {
                    if (drop_last && n < batch * (size_t)ranks) continue; /* see below */
                    combos++;
                    if (!check_epoch(n, batch, ranks, drop_last)) {
                        if (failures++ < 5)
                            printf("\n  bad epoch: n %zu batch %zu ranks %d drop_last %d\n", n,
                                   batch, ranks, drop_last);
                    }
                }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT(combos > 70 * 8 * 9); /* all drop_last = 0 shapes and some drop_last = 1 */
}

/* A hand-checked case: n = 26, batch 3, 4 ranks. The global batch is 12,
 * so the steps hold 12, 12 and 2 samples; the last batch (2 samples for 4
 * ranks) is shared out so that two ranks get one sample and two nothing. */
static void test_batch_ragged_last_smaller_than_ranks(void)
{
    size_t counts[4], begins[4], global = 0;
    for (int r = 0; r < 4; r++) {
        dpt_batch_plan plan;
        CU_ASSERT_EQUAL_FATAL(dpt_batch_plan_init(&plan, 26, 3, 0, r, 4), DPT_OK);
        CU_ASSERT_EQUAL(plan.steps_per_epoch, 3);
        CU_ASSERT_EQUAL(plan.global_batch, 12);
        dpt_batch_slice(&plan, 2, &begins[r], &counts[r], &global);
        CU_ASSERT_EQUAL(global, 2);
    }
    /* split_range(2, 4, r): [2r/4, 2(r+1)/4) = [0,0), [0,1), [1,1), [1,2) */
    CU_ASSERT_EQUAL(counts[0], 0);
    CU_ASSERT_EQUAL(counts[1], 1);
    CU_ASSERT_EQUAL(begins[1], 24);
    CU_ASSERT_EQUAL(counts[2], 0);
    CU_ASSERT_EQUAL(counts[3], 1);
    CU_ASSERT_EQUAL(begins[3], 25);
    /* with drop_last the same set has 2 steps of 12 */
    dpt_batch_plan plan;
    CU_ASSERT_EQUAL_FATAL(dpt_batch_plan_init(&plan, 26, 3, 1, 0, 4), DPT_OK);
    CU_ASSERT_EQUAL(plan.steps_per_epoch, 2);
}

/* drop_last with n < ranks * batch leaves no step at all: an error. Bad
 * plans (no ranks, rank out of range, batch 0, no samples) too. */
static void test_batch_plan_errors(void)
{
    dpt_batch_plan plan;
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 11, 3, 1, 0, 4), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 1, 2, 1, 0, 1), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 12, 3, 1, 0, 4), DPT_OK); /* exactly one step */
    CU_ASSERT_EQUAL(plan.steps_per_epoch, 1);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 11, 3, 0, 0, 4), DPT_OK); /* one ragged step */
    CU_ASSERT_EQUAL(plan.steps_per_epoch, 1);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 10, 3, 0, 0, 0), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 10, 3, 0, 4, 4), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 10, 3, 0, -1, 4), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 10, 0, 0, 0, 4), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_batch_plan_init(&plan, 0, 3, 0, 0, 4), DPT_ERR_ARG);
}

/* split_range: pieces in order, contiguous from 0 to n, sizes differ by at
 * most one (and sum to n). */
static void test_split_range(void)
{
    int failures = 0;
    for (size_t n = 0; n <= 100; n++)
        for (int parts = 1; parts <= 13; parts++) {
            size_t next = 0, smallest = SIZE_MAX, largest = 0;
            for (int i = 0; i < parts; i++) {
                size_t begin, count;
                dpt_split_range(n, parts, i, &begin, &count);
                if (begin != next) failures++;
                next = begin + count;
                smallest = count < smallest ? count : smallest;
                largest = count > largest ? count : largest;
            }
            if (next != n || largest - smallest > 1) failures++;
        }
    CU_ASSERT_EQUAL(failures, 0);
    /* 10 in 3: [0,3), [3,6), [6,10) */
    size_t begin, count;
    dpt_split_range(10, 3, 2, &begin, &count);
    CU_ASSERT_EQUAL(begin, 6);
    CU_ASSERT_EQUAL(count, 4);
}

/* ================================================================ main */

static int register_suites(void)
{
    static const dpt_test idx_good[] = {
        {"3-D images, plain", test_idx_images_plain},
        {"3-D images, gzipped", test_idx_images_gz},
        {"1-D labels, plain and gzipped", test_idx_labels_plain_and_gz},
        {"big-endian dims, 8 dims", test_idx_big_endian_dims},
    };
    static const dpt_test idx_bad[] = {
        {"missing file", test_idx_missing_file},
        {"directory", test_idx_directory},
        {"bad magic", test_idx_bad_magic},
        {"float element type", test_idx_float_type},
        {"ndim 0 and 9", test_idx_ndim_out_of_range},
        {"dimension of size 0", test_idx_zero_dimension},
        {"header cut short", test_idx_header_cut_short},
        {"body truncated", test_idx_body_truncated},
        {"sizes larger than the file", test_idx_lying_sizes},
        {"trailing bytes", test_idx_trailing_bytes},
        {"gzip: trailing garbage, two members", test_idx_gzip_trailing_and_members},
        {"corrupt gzip", test_idx_corrupt_gzip},
        {"gzip cut short", test_idx_gzip_cut_short},
        {"from memory, plain and gzipped", test_idx_parse_memory},
    };
    static const dpt_test sets[] = {
        {"load", test_dataset_load},
        {"from IDX arrays in memory", test_dataset_from_idx},
        {"n_classes", test_dataset_classes},
        {"from_arrays copies", test_dataset_from_arrays},
        {"gather", test_dataset_gather},
        {"missing files", test_dataset_missing_files},
        {"count mismatch", test_dataset_count_mismatch},
        {"labels with 2 dims", test_dataset_labels_2d},
        {"images with 1 dim", test_dataset_images_1d},
        {"broken file", test_dataset_broken_file},
        {"4-D images", test_dataset_4d_images},
    };
    static const dpt_test batching[] = {
        {"epoch coverage over many shapes", test_batch_epoch_coverage},
        {"ragged last batch smaller than ranks", test_batch_ragged_last_smaller_than_ranks},
        {"plan errors", test_batch_plan_errors},
        {"split_range", test_split_range},
    };
    return DPT_ADD_SUITE("idx: good files", idx_good) ||
           DPT_ADD_SUITE("idx: broken files", idx_bad) ||
           DPT_ADD_SUITE("data sets", sets) ||
           DPT_ADD_SUITE("batching", batching);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        remove_tmp_dir();
        return 1;
    }
    int status = dpt_test_run(register_suites(), CU_BRM_VERBOSE);
    remove_tmp_dir();
    return status;
}
