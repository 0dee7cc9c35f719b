/* Unit tests of the .npy module (src/data/npy.c) and the CSV parser
 * (src/data/csv.c); no MPI (the MPI loaders: test_mpi_data.c).
 *
 * .npy headers are crafted byte by byte here (prefix, version, length, the
 * dict text), so every broken variant is exactly as broken as wanted. The
 * writer is checked against NumPy itself: /usr/bin/python3 loads what it
 * wrote and np.save's bytes are compared with ours; NumPy-written files of
 * every version are read back. */
#include "cunit_util.h"
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dpt/data.h"
#include "dpt/npy.h"

#ifdef DPT_DOUBLE
#define REAL_TOL 1e-12
#else
#define REAL_TOL 1e-6
#endif

#define PATH_SIZE 512
#define PYTHON "/usr/bin/python3"

static char tmp_dir[] = "/tmp/dpt_test_npy_XXXXXX";

/* ================================================================ helpers */

static void path_in_tmp(char *path, const char *name)
{
    snprintf(path, PATH_SIZE, "%s/%s", tmp_dir, name);
}

static void write_file(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(bytes, 1, len, f) == len);
    CU_ASSERT_FATAL(fclose(f) == 0);
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

/* A .npy file's bytes: magic, version major.0, the length of `dict` in 2
 * (version 1) or 4 bytes, dict as it is, then `data_len` bytes 0, 1, 2, ...
 * Returns the length. */
static size_t npy_bytes(unsigned char *out, int major, const char *dict, size_t data_len)
{
    size_t n = strlen(dict), prefix = major == 1 ? 10 : 12;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t b = 0; b < prefix - 8; b++) out[8 + b] = (unsigned char)(n >> (8 * b));
    memcpy(out + prefix, dict, n);
    for (size_t i = 0; i < data_len; i++) out[prefix + n + i] = (unsigned char)i;
    return prefix + n + data_len;
}

/* Parses buf fully (header and size); expects `want` and a message naming
 * the buffer and containing `needle`. */
static void expect_parse(const void *buf, size_t len, dpt_status want, const char *needle)
{
    dpt_npy arr;
    dpt_error_clear();
    dpt_status st = dpt_npy_parse(&arr, buf, len, "crafted.npy");
    const char *msg = dpt_error_message();
    int good = st == want && (want == DPT_OK || (strstr(msg, "crafted.npy") && strstr(msg, needle)));
    if (!good) printf("\n  parse: status %d (want %d), message \"%s\" (want \"%s\")\n", st, want, msg, needle);
    CU_ASSERT(good);
    if (st != DPT_OK) CU_ASSERT_PTR_NULL(arr.data);
    dpt_npy_free(&arr);
}

static void expect_dict(const char *dict, size_t data_len, dpt_status want, const char *needle)
{
    unsigned char buf[2048];
    size_t len = npy_bytes(buf, 1, dict, data_len);
    expect_parse(buf, len, want, needle);
}

/* Runs a Python snippet with NumPy; 0 on success. */
static int python(const char *code)
{
    char script[PATH_SIZE];
    path_in_tmp(script, "snippet.py");
    FILE *f = fopen(script, "w");
    if (!f) return -1;
    fprintf(f, "import numpy as np, sys, os\nos.chdir('%s')\n%s\n", tmp_dir, code);
    fclose(f);
    char cmd[2 * PATH_SIZE];
    snprintf(cmd, sizeof cmd, PYTHON " %s", script);
    return system(cmd);
}

/* ================================================================ headers */

static void test_header_good(void)
{
    /* what np.save writes, padded */
    expect_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }     \n", 24, DPT_OK, "");
    /* other key order, double quotes, no trailing comma, tabs */
    expect_dict("{\"shape\":(2,3),\t\"descr\":\"<f8\",'fortran_order':False}\n", 48, DPT_OK, "");
    /* 1-tuple, scalar, empty array; one-byte types with any byte-order mark */
    expect_dict("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }\n", 5, DPT_OK, "");
    expect_dict("{'descr': '<i8', 'fortran_order': False, 'shape': (), }\n", 8, DPT_OK, "");
    expect_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }\n", 0, DPT_OK, "");
    expect_dict("{'descr': '<u1', 'fortran_order': False, 'shape': (2, 3,), }\n", 6, DPT_OK, "");
    expect_dict("{'descr': '>i1', 'fortran_order': False, 'shape': (4,), }\n", 4, DPT_OK, "");

    unsigned char buf[512];
    size_t len = npy_bytes(buf, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1, 3), }\n", 24);
    dpt_npy_header h;
    CU_ASSERT_EQUAL_FATAL(dpt_npy_parse_header(&h, buf, len, "h"), DPT_OK);
    CU_ASSERT(h.major == 1 && h.minor == 0 && h.dtype == DPT_NPY_I4 && h.ndim == 3);
    CU_ASSERT(h.shape[0] == 2 && h.shape[1] == 1 && h.shape[2] == 3 && h.count == 6);
    CU_ASSERT_EQUAL(h.data_bytes, 24);
    CU_ASSERT_EQUAL(h.data_offset, len - 24);
    /* the header alone is enough for the header parser */
    CU_ASSERT_EQUAL(dpt_npy_parse_header(&h, buf, len - 24, "h"), DPT_OK);
    /* versions 2.0 and 3.0: a 4-byte length */
    for (int major = 2; major <= 3; major++) {
        len = npy_bytes(buf, major, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", 24);
        CU_ASSERT_EQUAL(dpt_npy_parse_header(&h, buf, len, "h"), DPT_OK);
        CU_ASSERT(h.major == major && h.data_offset == 12 + len - 12 - 24 && h.count == 3);
        expect_parse(buf, len, DPT_OK, "");
    }
    dpt_npy arr;
    len = npy_bytes(buf, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }\n", 4);
    CU_ASSERT_EQUAL_FATAL(dpt_npy_parse(&arr, buf, len, "u2"), DPT_OK);
    CU_ASSERT_EQUAL(((const uint16_t *)arr.data)[0], 0x0100); /* bytes 0 1, little-endian */
    CU_ASSERT_EQUAL(((const uint16_t *)arr.data)[1], 0x0302);
    dpt_npy_free(&arr);
}

static void test_header_prefix(void)
{
    unsigned char buf[512];
    size_t len = npy_bytes(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", 4);
    expect_parse("\x93NUMPZ\x01\x00", 8, DPT_ERR_FORMAT, "not a .npy file");
    expect_parse("\x00\x00\x08\x01\x00\x00\x00\x01\x05", 9, DPT_ERR_FORMAT, "not a .npy file");
    expect_parse("\x1f\x8b\x08\x00", 4, DPT_ERR_FORMAT, "gzip");
    expect_parse("PK\x03\x04....", 8, DPT_ERR_FORMAT, "zip");
    expect_parse(buf, 0, DPT_ERR_FORMAT, "truncated");
    for (size_t cut = 1; cut < 10; cut++) expect_parse(buf, cut, DPT_ERR_FORMAT, "truncated");
    /* the header text cut anywhere */
    size_t header_end = len - 4;
    for (size_t cut = 10; cut < header_end; cut += 7) expect_parse(buf, cut, DPT_ERR_FORMAT, "truncated");
    unsigned char bad[512];
    memcpy(bad, buf, len);
    bad[6] = 4;
    expect_parse(bad, len, DPT_ERR_FORMAT, "version 4.0");
    bad[6] = 1, bad[7] = 1;
    expect_parse(bad, len, DPT_ERR_FORMAT, "version 1.1");
    bad[6] = 0, bad[7] = 0;
    expect_parse(bad, len, DPT_ERR_FORMAT, "version 0.0");
    /* a length that points past the file, or beyond the limit */
    memcpy(bad, buf, len);
    bad[8] = 0xff, bad[9] = 0x7f;
    expect_parse(bad, len, DPT_ERR_FORMAT, "truncated .npy header");
    unsigned char v2[64];
    size_t v2_len = npy_bytes(v2, 2, "{}", 0);
    v2[10] = 0x10; /* 1 MiB of header text */
    expect_parse(v2, v2_len, DPT_ERR_FORMAT, "larger than");
    /* a NUL or a non-ASCII byte in the text */
    memcpy(bad, buf, len);
    bad[20] = 0;
    expect_parse(bad, len, DPT_ERR_FORMAT, "byte 0x00");
    bad[20] = 0xe9;
    expect_parse(bad, len, DPT_ERR_FORMAT, "byte 0xe9");
    /* NULL buffer */
    dpt_npy_header h;
    CU_ASSERT_EQUAL(dpt_npy_parse_header(&h, NULL, 10, NULL), DPT_ERR_FORMAT);
}

static void test_header_dict(void)
{
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"", "'{'"},
        {"[1, 2]\n", "'{'"},
        {"{'descr': '<f4', 'shape': (1,), }\n", "no 'fortran_order' key"},
        {"{'descr': '<f4', 'fortran_order': False}\n", "no 'shape' key"},
        {"{'fortran_order': False, 'shape': (1,)}\n", "no 'descr' key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}\n", "unknown key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", "'descr' twice"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}\n", "Fortran order"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n", "True or False"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}\n", "True or False"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n", "structured"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,)}\n", "big-endian"},
        {"{'descr': '>i8', 'fortran_order': False, 'shape': (1,)}\n", "astype('<i8')"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}\n", "'<f2' is not supported"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}\n", "'<c8' is not supported"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (1,)}\n", "'|b1' is not supported"},
        {"{'descr': 'O', 'fortran_order': False, 'shape': (1,)}\n", "'O' is not supported"},
        {"{'descr': <f4, 'fortran_order': False, 'shape': (1,)}\n", "quoted string"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}\n", "'<f4, ' is not supported"},
        {"{'descr': 'a\\'b', 'fortran_order': False, 'shape': (1,)}\n", "end of the string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5)}\n", "1-tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [5]}\n", "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n", "non-negative integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (05,)}\n", "leading zeros"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}\n", "1-tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1.5)}\n", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}\n", "non-negative integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2 3)}\n", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}\n", "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}\n", "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}\n", "overflows"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}\n", "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", "only blanks"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}}\n", "only blanks"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", "',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)\n", "',' or '}'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_dict(cases[i].dict, 4, DPT_ERR_FORMAT, cases[i].needle);
}

static void test_header_sizes(void)
{
    const char *dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }\n";
    expect_dict(dict, 24, DPT_OK, "");
    expect_dict(dict, 23, DPT_ERR_FORMAT, "truncated: the .npy header declares 6 elements (24 bytes");
    expect_dict(dict, 0, DPT_ERR_FORMAT, "truncated");
    expect_dict(dict, 25, DPT_ERR_FORMAT, "1 trailing bytes");
    expect_dict(dict, 1000, DPT_ERR_FORMAT, "976 trailing bytes");
    dpt_npy_header h;
    unsigned char buf[256];
    size_t len = npy_bytes(buf, 1, dict, 0);
    CU_ASSERT_EQUAL_FATAL(dpt_npy_parse_header(&h, buf, len, "s"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_npy_check_size(&h, len + 24, "s"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_npy_check_size(&h, 5, "s"), DPT_ERR_FORMAT);
    CU_ASSERT_EQUAL(dpt_npy_check_size(&h, (uint64_t)1 << 40, "s"), DPT_ERR_FORMAT);
}

/* ================================================================ files */

static void test_read_file_errors(void)
{
    char path[PATH_SIZE];
    dpt_npy arr;
    path_in_tmp(path, "missing.npy");
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, path), DPT_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, tmp_dir), DPT_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "not a regular file"));
    unsigned char buf[256];
    size_t len = npy_bytes(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16);
    path_in_tmp(path, "cut.npy");
    write_file(path, buf, len - 1);
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, path), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "truncated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    dpt_npy_header h;
    CU_ASSERT_EQUAL(dpt_npy_read_header(&h, path), DPT_ERR_FORMAT); /* the size is checked too */
    write_file(path, buf, 5);
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, path), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(arr.data);
    write_file(path, buf, len);
    CU_ASSERT_EQUAL_FATAL(dpt_npy_read(&arr, path), DPT_OK);
    CU_ASSERT_EQUAL(arr.h.count, 2);
    CU_ASSERT_EQUAL(memcmp(arr.data, buf + len - 16, 16), 0);
    dpt_npy_free(&arr);
}

static const size_t shapes[][4] = {{2, 3}, {5}, {0}, {0, 3}, {1, 2, 3, 4}, {300, 7}};
static const int ndims[] = {2, 1, 0, 2, 4, 2};
#define N_SHAPES 6

static size_t shape_count(int s)
{
    size_t count = 1;
    for (int d = 0; d < ndims[s]; d++) count *= shapes[s][d];
    return count;
}

/* Element i's bytes: a pattern that differs per dtype and position. */
static void fill_pattern(unsigned char *data, size_t bytes, int dtype)
{
    for (size_t i = 0; i < bytes; i++) data[i] = (unsigned char)(i * 7 + (size_t)dtype * 13 + i / 251);
    if (dtype == DPT_NPY_F4 || dtype == DPT_NPY_F8) /* NumPy compares floats: no NaN patterns */
        for (size_t i = 0; i * dpt_npy_dtype_size(dtype) < bytes; i++) {
            if (dtype == DPT_NPY_F4) ((float *)data)[i] = (float)i * 0.25f - 3.0f;
            else ((double *)data)[i] = (double)i / 3.0 - 1e10;
        }
}

/* Writes every dtype in every shape and reads it back; the header ends at
 * a multiple of 64; no temporary file is left. */
static void test_write_read_round_trip(void)
{
    for (int t = 0; t < DPT_NPY_DTYPE_COUNT_; t++)
        for (int s = 0; s < N_SHAPES; s++) {
            size_t count = shape_count(s), bytes = count * dpt_npy_dtype_size(t);
            unsigned char *data = malloc(bytes + 1);
            CU_ASSERT_FATAL(data != NULL);
            fill_pattern(data, bytes, t);
            char name[64], path[PATH_SIZE];
            snprintf(name, sizeof name, "rt_%d_%d.npy", t, s);
            path_in_tmp(path, name);
            CU_ASSERT_EQUAL_FATAL(dpt_npy_write(path, t, ndims[s], shapes[s], data), DPT_OK);
            dpt_npy arr;
            CU_ASSERT_EQUAL_FATAL(dpt_npy_read(&arr, path), DPT_OK);
            CU_ASSERT(arr.h.dtype == (dpt_npy_dtype)t && arr.h.ndim == ndims[s] && arr.h.count == count);
            CU_ASSERT(arr.h.major == 1 && arr.h.data_offset % 64 == 0);
            for (int d = 0; d < ndims[s]; d++) CU_ASSERT_EQUAL(arr.h.shape[d], shapes[s][d]);
            CU_ASSERT(bytes == 0 || memcmp(arr.data, data, bytes) == 0);
            dpt_npy_free(&arr);
            free(data);
        }
    DIR *dir = opendir(tmp_dir);
    struct dirent *entry;
    int temporaries = 0;
    while (dir && (entry = readdir(dir)) != NULL) temporaries += strstr(entry->d_name, ".tmp.") != NULL;
    if (dir) closedir(dir);
    CU_ASSERT_EQUAL(temporaries, 0);
}

/* NumPy loads every file the writer made with the right values, and
 * np.save writes the very same bytes. */
static void test_write_matches_numpy(void)
{
    int rc = python(
        "names = ['u1', 'i1', '<u2', '<i2', '<u4', '<i4', '<u8', '<i8', '<f4', '<f8']\n"
        "shapes = [(2, 3), (5,), (), (0, 3), (1, 2, 3, 4), (300, 7)]\n"
        "bad = 0\n"
        "for t, n in enumerate(names):\n"
        "    for s, shape in enumerate(shapes):\n"
        "        path = 'rt_%d_%d.npy' % (t, s)\n"
        "        a = np.load(path)\n"
        "        raw = open(path, 'rb').read()\n"
        "        import io\n"
        "        b = io.BytesIO(); np.save(b, a)\n"
        "        if a.shape != shape or a.dtype != np.dtype(n) or b.getvalue() != raw:\n"
        "            print('differs:', path, a.shape, a.dtype); bad += 1\n"
        "        if n[-2] == 'f' and a.size > 1 and a.reshape(-1)[1] != (0.25 - 3.0 if n == '<f4' else 1/3 - 1e10):\n"
        "            print('value differs:', path); bad += 1\n"
        "sys.exit(1 if bad else 0)\n");
    CU_ASSERT_EQUAL(rc, 0);
}

/* Files NumPy wrote: every dtype, versions 1.0, 2.0 and 3.0; a Fortran
 * array and big-endian data are refused with messages that say so. */
static void test_read_numpy_files(void)
{
    int rc = python(
        "names = ['u1', 'i1', '<u2', '<i2', '<u4', '<i4', '<u8', '<i8', '<f4', '<f8']\n"
        "for t, n in enumerate(names):\n"
        "    a = (np.arange(24).reshape(2, 3, 4) * 3 - (7 if n[-2] != 'u' else 0)).astype(n)\n"
        "    np.save('np_%d.npy' % t, a)\n"
        "a = np.arange(6, dtype='<f8').reshape(2, 3)\n"
        "for v in [(2, 0), (3, 0)]:\n"
        "    with open('np_v%d.npy' % v[0], 'wb') as f: np.lib.format.write_array(f, a, version=v)\n"
        "np.save('np_fortran.npy', np.asfortranarray(a))\n"
        "np.save('np_big.npy', a.astype('>f8'))\n");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int t = 0; t < DPT_NPY_DTYPE_COUNT_; t++) {
        char name[64], path[PATH_SIZE];
        snprintf(name, sizeof name, "np_%d.npy", t);
        path_in_tmp(path, name);
        dpt_npy arr;
        CU_ASSERT_EQUAL_FATAL(dpt_npy_read(&arr, path), DPT_OK);
        CU_ASSERT(arr.h.dtype == (dpt_npy_dtype)t && arr.h.ndim == 3 && arr.h.count == 24);
        int is_unsigned = t == DPT_NPY_U1 || t == DPT_NPY_U2 || t == DPT_NPY_U4 || t == DPT_NPY_U8;
        double want = 5 * 3 - (is_unsigned ? 0 : 7), got = 0;
        const unsigned char *p = (const unsigned char *)arr.data + 5 * dpt_npy_dtype_size(t);
        switch (t) {
        case DPT_NPY_U1: got = p[0]; break;
        case DPT_NPY_I1: got = (int8_t)p[0]; break;
        case DPT_NPY_U2: got = *(const uint16_t *)p; break;
        case DPT_NPY_I2: got = *(const int16_t *)p; break;
        case DPT_NPY_U4: got = *(const uint32_t *)p; break;
        case DPT_NPY_I4: got = *(const int32_t *)p; break;
        case DPT_NPY_U8: got = (double)*(const uint64_t *)p; break;
        case DPT_NPY_I8: got = (double)*(const int64_t *)p; break;
        case DPT_NPY_F4: got = *(const float *)p; break;
        default: got = *(const double *)p; break;
        }
        CU_ASSERT_DOUBLE_EQUAL(got, want, 0);
        dpt_npy_free(&arr);
    }
    char path[PATH_SIZE];
    dpt_npy arr;
    for (int v = 2; v <= 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "np_v%d.npy", v);
        path_in_tmp(path, name);
        CU_ASSERT_EQUAL_FATAL(dpt_npy_read(&arr, path), DPT_OK);
        CU_ASSERT(arr.h.major == v && arr.h.count == 6 && ((const double *)arr.data)[5] == 5.0);
        dpt_npy_free(&arr);
    }
    path_in_tmp(path, "np_fortran.npy");
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, path), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "Fortran order"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    path_in_tmp(path, "np_big.npy");
    CU_ASSERT_EQUAL(dpt_npy_read(&arr, path), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "big-endian"));
}

static void test_format_header(void)
{
    static const size_t shape[2] = {60000, 784};
    char out[256];
    size_t len = dpt_npy_format_header(out, sizeof out, DPT_NPY_F4, 2, shape);
    CU_ASSERT_EQUAL(len, 128);
    CU_ASSERT_EQUAL(memcmp(out, "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, "
                                "'shape': (60000, 784), }", 67), 0);
    CU_ASSERT_EQUAL(out[127], '\n');
    CU_ASSERT_EQUAL(out[126], ' ');
    /* too small a buffer: the length, nothing written past it */
    char small[16];
    memset(small, 'x', sizeof small);
    CU_ASSERT_EQUAL(dpt_npy_format_header(small, sizeof small, DPT_NPY_F4, 2, shape), 128);
    CU_ASSERT_EQUAL(dpt_npy_format_header(out, sizeof out, DPT_NPY_DTYPE_COUNT_, 2, shape), 0);
    CU_ASSERT_EQUAL(dpt_npy_format_header(out, sizeof out, DPT_NPY_F4, 9, shape), 0);
    CU_ASSERT_STRING_EQUAL(dpt_npy_dtype_descr(DPT_NPY_I8), "<i8");
    CU_ASSERT_PTR_NULL(dpt_npy_dtype_descr((dpt_npy_dtype)99));
    CU_ASSERT_EQUAL(dpt_npy_dtype_size(DPT_NPY_U2), 2);
    CU_ASSERT(dpt_npy_dtype_is_float(DPT_NPY_F8) && !dpt_npy_dtype_is_float(DPT_NPY_I8));
}

static void test_write_errors(void)
{
    static const size_t shape[1] = {3};
    static const float data[3] = {1, 2, 3};
    char path[PATH_SIZE];
    path_in_tmp(path, "no-such-dir/x.npy");
    CU_ASSERT_EQUAL(dpt_npy_write(path, DPT_NPY_F4, 1, shape, data), DPT_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    path_in_tmp(path, "args.npy");
    CU_ASSERT_EQUAL(dpt_npy_write(path, DPT_NPY_DTYPE_COUNT_, 1, shape, data), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_npy_write(path, DPT_NPY_F4, 9, shape, data), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_npy_write(path, DPT_NPY_F4, 1, shape, NULL), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_npy_write(NULL, DPT_NPY_F4, 1, shape, data), DPT_ERR_ARG);
    static const size_t huge[2] = {SIZE_MAX / 2, 4};
    CU_ASSERT_EQUAL(dpt_npy_write(path, DPT_NPY_F4, 2, huge, data), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    /* an existing file is replaced whole */
    CU_ASSERT_EQUAL_FATAL(dpt_npy_write(path, DPT_NPY_F4, 1, shape, data), DPT_OK);
    static const size_t two[1] = {2};
    CU_ASSERT_EQUAL_FATAL(dpt_npy_write(path, DPT_NPY_F4, 1, two, data), DPT_OK);
    dpt_npy arr;
    CU_ASSERT_EQUAL_FATAL(dpt_npy_read(&arr, path), DPT_OK);
    CU_ASSERT_EQUAL(arr.h.count, 2);
    dpt_npy_free(&arr);
}

/* ================================================================ CSV */

static dpt_load_options csv_options(const char *label_column, int header)
{
    dpt_load_options o = {DPT_FORMAT_CSV, label_column, header};
    return o;
}

static void expect_csv(const char *text, const dpt_load_options *o, dpt_status want, const char *needle)
{
    dpt_dataset set;
    dpt_error_clear();
    dpt_status st = dpt_csv_parse(&set, text, strlen(text), "t.csv", o);
    const char *msg = dpt_error_message();
    int good = st == want && (want == DPT_OK || (strstr(msg, "t.csv") && strstr(msg, needle)));
    if (!good) printf("\n  csv: status %d (want %d), message \"%s\" (want \"%s\")\n", st, want, msg, needle);
    CU_ASSERT(good);
    if (st != DPT_OK) CU_ASSERT_PTR_NULL(set.features);
    dpt_dataset_free(&set);
}

/* x[i][f] of a parsed set, through the gather every user goes through */
static void gather_all(const dpt_dataset *set, dpt_real *x, uint8_t *y)
{
    uint32_t idx[16];
    for (uint32_t i = 0; i < set->n_samples; i++) idx[i] = i;
    dpt_dataset_gather(set, idx, set->n_samples, x, y);
}

static void test_csv_header_and_labels(void)
{
    static const char with_header[] = "label,a,b\n3,0.5,-1\n1,2e-3,4\n";
    static const char no_header[] = "3,0.5,-1\r\n\n1,2e-3,4\r\n  \n";
    dpt_real x[16];
    uint8_t y[16];
    const dpt_load_options auto_first = csv_options("0", DPT_CSV_HEADER_AUTO);
    const char *texts[2] = {with_header, no_header};
    for (int i = 0; i < 2; i++) {
        dpt_dataset set;
        CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, texts[i], strlen(texts[i]), "t.csv", &auto_first), DPT_OK);
        CU_ASSERT(set.n_samples == 2 && set.n_features == 2 && set.n_classes == 4);
        CU_ASSERT(set.feature_type == DPT_FEATURES_REAL);
        CU_ASSERT(set.shape[0] == 2 && set.shape[1] == 1 && set.shape[2] == 1);
        gather_all(&set, x, y);
        CU_ASSERT(y[0] == 3 && y[1] == 1);
        CU_ASSERT_DOUBLE_EQUAL(x[0], 0.5, REAL_TOL);
        CU_ASSERT_DOUBLE_EQUAL(x[1], -1, REAL_TOL);
        CU_ASSERT_DOUBLE_EQUAL(x[2], 2e-3, REAL_TOL);
        CU_ASSERT_DOUBLE_EQUAL(x[3], 4, REAL_TOL);
        dpt_dataset_free(&set);
    }
    /* the label last (-1), by name, and none */
    static const char last[] = "x,y,class\n0.25,1,2\n0.75,0,0\n7,7,1\n";
    const char *columns[2] = {"-1", "class"};
    for (int i = 0; i < 2; i++) {
        const dpt_load_options o = csv_options(columns[i], DPT_CSV_HEADER_AUTO);
        dpt_dataset set;
        CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, last, strlen(last), "t.csv", &o), DPT_OK);
        CU_ASSERT(set.n_samples == 3 && set.n_features == 2);
        gather_all(&set, x, y);
        CU_ASSERT(y[0] == 2 && y[1] == 0 && y[2] == 1);
        CU_ASSERT_DOUBLE_EQUAL(x[1], 1, REAL_TOL);
        CU_ASSERT_DOUBLE_EQUAL(x[4], 7, REAL_TOL);
        dpt_dataset_free(&set);
    }
    const dpt_load_options none = csv_options("none", DPT_CSV_HEADER_AUTO);
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, last, strlen(last), "t.csv", &none), DPT_OK);
    CU_ASSERT(set.n_features == 3 && set.n_classes == 1);
    dpt_dataset_free(&set);
    /* csv_header = false: a non-numeric first row is a bad cell; true: the
     * first row is skipped even if numeric */
    const dpt_load_options no = csv_options("0", DPT_CSV_HEADER_NO);
    expect_csv(with_header, &no, DPT_ERR_FORMAT, "t.csv:1: column 1: 'label' is not a finite number");
    const dpt_load_options yes = csv_options("0", DPT_CSV_HEADER_YES);
    CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, no_header, strlen(no_header), "t.csv", &yes), DPT_OK);
    CU_ASSERT_EQUAL(set.n_samples, 1);
    dpt_dataset_free(&set);
    /* quotes: "" is a quote, blanks around cells */
    static const char quoted[] = "\"the \"\"label\"\"\", \"f\"\n \"2\" , \" 1.5 \"\n";
    const dpt_load_options by_name = csv_options("the \"label\"", DPT_CSV_HEADER_AUTO);
    CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, quoted, strlen(quoted), "t.csv", &by_name), DPT_OK);
    gather_all(&set, x, y);
    CU_ASSERT(set.n_samples == 1 && y[0] == 2);
    CU_ASSERT_DOUBLE_EQUAL(x[0], 1.5, REAL_TOL);
    dpt_dataset_free(&set);
    /* no trailing newline, a label written 4.0 */
    CU_ASSERT_EQUAL_FATAL(dpt_csv_parse(&set, "4.0,1", 5, "t.csv", &auto_first), DPT_OK);
    gather_all(&set, x, y);
    CU_ASSERT(y[0] == 4 && set.n_samples == 1);
    dpt_dataset_free(&set);
}

static void test_csv_errors(void)
{
    const dpt_load_options first = csv_options("0", DPT_CSV_HEADER_AUTO);
    expect_csv("1,2,3\n4,5\n", &first, DPT_ERR_FORMAT, "t.csv:2: 2 columns, but the first row has 3");
    expect_csv("1,2,3\n4,5,6,7\n", &first, DPT_ERR_FORMAT, "t.csv:2: 4 columns");
    expect_csv("1,2,3\n\n4,x,6\n", &first, DPT_ERR_FORMAT, "t.csv:3: column 2: 'x' is not a finite number");
    expect_csv("a,b,c\n1,2,3\n4,,6\n", &first, DPT_ERR_FORMAT, "t.csv:3: column 2: empty cell");
    expect_csv("1,nan\n", &first, DPT_ERR_FORMAT, "column 2: 'nan' is not a finite number");
    expect_csv("1,2\n1,inf\n", &first, DPT_ERR_FORMAT, "t.csv:2: column 2: 'inf'");
    expect_csv("1,1e999\n", &first, DPT_ERR_FORMAT, "not a finite number");
    expect_csv("2.5,1\n", &first, DPT_ERR_FORMAT, "t.csv:1: column 1: '2.5' is not a label");
    expect_csv("256,1\n", &first, DPT_ERR_FORMAT, "'256' is not a label");
    expect_csv("-1,1\n", &first, DPT_ERR_FORMAT, "'-1' is not a label");
    expect_csv("1,\"2\n", &first, DPT_ERR_FORMAT, "t.csv:1: column 2: a quote that does not end");
    expect_csv("1,\"2\"x\n", &first, DPT_ERR_FORMAT, "text after a closing quote");
    expect_csv("", &first, DPT_ERR_FORMAT, "no data rows");
    expect_csv("label,a\n\n", &first, DPT_ERR_FORMAT, "no data rows");
    expect_csv("1\n2\n", &first, DPT_ERR_FORMAT, "only a label column");
    expect_csv("1,2\n\0003,4\n", &first, DPT_OK, ""); /* strlen stops at the NUL */
    dpt_dataset set;
    CU_ASSERT_EQUAL(dpt_csv_parse(&set, "1,2\n\0003,4\n", 9, "t.csv", &first), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), "t.csv:2: a NUL byte"));
    const dpt_load_options far = csv_options("3", DPT_CSV_HEADER_AUTO);
    expect_csv("1,2,3\n", &far, DPT_ERR_CONFIG, "label_column = 3, but the file has 3 columns");
    const dpt_load_options back = csv_options("-4", DPT_CSV_HEADER_AUTO);
    expect_csv("1,2,3\n", &back, DPT_ERR_CONFIG, "label_column = -4");
    const dpt_load_options named = csv_options("label", DPT_CSV_HEADER_AUTO);
    expect_csv("1,2,3\n", &named, DPT_ERR_CONFIG, "no header row");
    expect_csv("target,a,b\n1,2,3\n", &named, DPT_ERR_CONFIG, "no such column in the header (it starts target, a, b)");
}

static void test_csv_files(void)
{
    char path[PATH_SIZE];
    static const char text[] = "label,p0,p1,p2\n9,0,0.5,1\n0,1,1,1\n5,0.25,0.125,0\n";
    const dpt_load_options first = csv_options("0", DPT_CSV_HEADER_AUTO);
    path_in_tmp(path, "plain.csv");
    write_file(path, text, strlen(text));
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_csv_read(&set, path, &first), DPT_OK);
    CU_ASSERT(set.n_samples == 3 && set.n_features == 3 && set.n_classes == 10);
    dpt_dataset_free(&set);
    path_in_tmp(path, "gz.csv.gz");
    gzFile gz = gzopen(path, "wb9");
    CU_ASSERT_FATAL(gz != NULL);
    CU_ASSERT_FATAL(gzwrite(gz, text, (unsigned)strlen(text)) == (int)strlen(text));
    CU_ASSERT_FATAL(gzclose(gz) == Z_OK);
    CU_ASSERT_EQUAL_FATAL(dpt_csv_read(&set, path, &first), DPT_OK);
    dpt_real x[9];
    uint8_t y[3];
    gather_all(&set, x, y);
    CU_ASSERT(y[0] == 9 && y[2] == 5);
    CU_ASSERT_DOUBLE_EQUAL(x[8], 0, REAL_TOL);
    CU_ASSERT_DOUBLE_EQUAL(x[7], 0.125, REAL_TOL);
    dpt_dataset_free(&set);
    /* a gzip file cut short is an error, not a short data set */
    unsigned char buf[256];
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(path, buf, len - 6);
    CU_ASSERT_EQUAL(dpt_csv_read(&set, path, &first), DPT_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    path_in_tmp(path, "missing.csv");
    CU_ASSERT_EQUAL(dpt_csv_read(&set, path, &first), DPT_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dpt_error_message(), path));
    /* a long line (wider than the 64 KiB read block) */
    size_t n_cols = 20000;
    char *wide = malloc(2 * n_cols * 6 + 16);
    CU_ASSERT_FATAL(wide != NULL);
    size_t at = 0;
    for (int row = 0; row < 2; row++) {
        at += (size_t)sprintf(wide + at, "%d", row + 1);
        for (size_t c = 1; c < n_cols; c++) at += (size_t)sprintf(wide + at, ",%zu", c % 1000);
        wide[at++] = '\n';
    }
    path_in_tmp(path, "wide.csv");
    write_file(path, wide, at);
    free(wide);
    CU_ASSERT_EQUAL_FATAL(dpt_csv_read(&set, path, &first), DPT_OK);
    CU_ASSERT(set.n_samples == 2 && set.n_features == n_cols - 1 && set.n_classes == 3);
    dpt_dataset_free(&set);
}

static void test_format_of(void)
{
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "a/b.npy"), DPT_FORMAT_NPY);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "B.NPY"), DPT_FORMAT_NPY);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "x.csv"), DPT_FORMAT_CSV);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "x.csv.gz"), DPT_FORMAT_CSV);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "train-images-idx3-ubyte.gz"), DPT_FORMAT_IDX);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_AUTO, "npy"), DPT_FORMAT_IDX);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_CSV, "x.npy"), DPT_FORMAT_CSV);
    CU_ASSERT_EQUAL(dpt_data_format_of(DPT_FORMAT_NPY, "x.gz"), DPT_FORMAT_NPY);
    CU_ASSERT_STRING_EQUAL(dpt_data_format_name(DPT_FORMAT_CSV), "csv");
    CU_ASSERT_PTR_NULL(dpt_data_format_name((dpt_data_format)7));
}

/* Float features as stored: gather uses them as they are. */
static void test_dataset_floats(void)
{
    static const float features[6] = {-1.5f, 0, 2, 1e-3f, 300, 0.25f};
    static const uint8_t labels[3] = {0, 2, 1};
    dpt_dataset set;
    CU_ASSERT_EQUAL_FATAL(dpt_dataset_from_floats(&set, features, labels, 3, 2), DPT_OK);
    CU_ASSERT(set.feature_type == DPT_FEATURES_F32 && set.n_classes == 3);
    static const uint32_t indices[3] = {2, 0, 2};
    dpt_real x[6];
    uint8_t y[3];
    dpt_dataset_gather(&set, indices, 3, x, y);
    CU_ASSERT_DOUBLE_EQUAL(x[0], 300, 0);
    CU_ASSERT_DOUBLE_EQUAL(x[2], -1.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(x[5], 0.25, 0);
    CU_ASSERT(y[0] == 1 && y[1] == 0 && y[2] == 1);
    dpt_dataset_free(&set);
    CU_ASSERT_EQUAL(dpt_dataset_from_floats(&set, features, labels, 0, 2), DPT_ERR_ARG);
    CU_ASSERT_EQUAL(dpt_dataset_feature_size(DPT_FEATURES_U8), 1);
    CU_ASSERT_EQUAL(dpt_dataset_feature_size(DPT_FEATURES_F64), 8);
}

/* ================================================================ main */

static int register_suites(void)
{
    static const dpt_test headers[] = {
        {"good headers, versions 1-3", test_header_good},
        {"magic, version, length, bytes", test_header_prefix},
        {"the dict: keys, descr, fortran_order, shape", test_header_dict},
        {"data size: truncated, trailing", test_header_sizes},
    };
    static const dpt_test files[] = {
        {"read errors name the file", test_read_file_errors},
        {"write and read every dtype", test_write_read_round_trip},
        {"NumPy loads ours and writes the same bytes", test_write_matches_numpy},
        {"NumPy's files, Fortran and big-endian refused", test_read_numpy_files},
        {"header format", test_format_header},
        {"write errors, replacing a file", test_write_errors},
    };
    static const dpt_test csv[] = {
        {"header, label column, quotes", test_csv_header_and_labels},
        {"bad cells and rows name line and column", test_csv_errors},
        {"plain, gzipped, cut, wide", test_csv_files},
        {"format by name", test_format_of},
        {"float features", test_dataset_floats},
    };
    return DPT_ADD_SUITE("npy headers", headers) || DPT_ADD_SUITE("npy files", files) ||
           DPT_ADD_SUITE("csv and float data sets", csv);
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
