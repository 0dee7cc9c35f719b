/* Unit tests of dpt/checkpoint.h: round trips of every dtype, the file
 * checked byte by byte against the safetensors rules, every single-bit
 * flip and every truncation of a small file detected, hand-made headers
 * that are wrong in one way each, an atomic write that fails under a
 * file-size limit without touching the previous file, the directory
 * helpers (list, prune, newest that verifies), and the documented Python
 * reader (when python3 is installed) reading our files and writing one we
 * read. */
#include <CUnit/Basic.h>
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "cunit_util.h"
#include "dpt/checkpoint.h"
#include "dpt/real.h"

static char tmpdir[64];

/* the call fails with `status` and a message containing `text` */
#define EXPECT_FAIL(call, status, text)                                                          \
    do {                                                                                         \
        dpt_status st_ = (call);                                                                 \
        CU_ASSERT_EQUAL(st_, (status));                                                          \
        if (!strstr(dpt_error_message(), (text))) {                                              \
            printf("\n  line %d: message \"%s\" lacks \"%s\"", __LINE__, dpt_error_message(), (text)); \
            CU_FAIL("message");                                                                  \
        }                                                                                        \
    } while (0)

/* ---------------------------------------------------------------- file helpers */

static unsigned char *read_all(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    *len = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    return buf;
}

static int write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = fwrite(buf, 1, len, f);
    return (fclose(f) == 0 && put == len) ? 0 : -1;
}

/* a fresh empty subdirectory of tmpdir */
static void subdir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
    mkdir(out, 0755);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* names in dir containing `part` */
static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- the fixture: every dtype */
static double f64_data[12];
static float f32_data[5];
static int64_t i64_data[4];
static uint64_t u64_data[4];
static int32_t i32_data[3];
static uint32_t u32_data[6];
static int8_t i8_data[3];
static uint8_t u8_data[7];
static double scalar_data = 42;

typedef struct fixture_tensor {
    const char *name;
    dpt_ckpt_dtype dtype;
    int ndim;
    size_t shape[3];
    const void *data;
    size_t count;
} fixture_tensor;

static const fixture_tensor fixture[] = {
    {"mask", DPT_CKPT_U8, 1, {7}, u8_data, 7},
    {"weights", DPT_CKPT_F64, 2, {3, 4}, f64_data, 12},
    {"bias", DPT_CKPT_F32, 1, {5}, f32_data, 5},
    {"counts", DPT_CKPT_I64, 2, {2, 2}, i64_data, 4},
    {"rng.key", DPT_CKPT_U64, 1, {4}, u64_data, 4},
    {"small", DPT_CKPT_I32, 1, {3}, i32_data, 3},
    {"state", DPT_CKPT_U32, 2, {2, 3}, u32_data, 6},
    {"signs", DPT_CKPT_I8, 1, {3}, i8_data, 3},
    {"scalar", DPT_CKPT_F64, 0, {0}, &scalar_data, 1},
    {"empty", DPT_CKPT_F32, 2, {0, 3}, NULL, 0},
};
#define N_FIXTURE (sizeof fixture / sizeof fixture[0])
static const char *const fixture_note = "quote \" backslash \\ tab\t newline\n \xc3\xa9t\xc3\xa9";

static void fill_fixture(void)
{
    for (int i = 0; i < 12; i++) f64_data[i] = i - 3.0;
    for (int i = 0; i < 5; i++) f32_data[i] = (float)(2 * i - 1);
    for (int i = 0; i < 4; i++) i64_data[i] = -1000000000000LL * (i + 1);
    u64_data[0] = 1, u64_data[1] = 2, u64_data[2] = 1ull << 40, u64_data[3] = 7;
    for (int i = 0; i < 3; i++) i32_data[i] = -7 * (i + 1);
    for (int i = 0; i < 6; i++) u32_data[i] = 4000000000u - (uint32_t)i;
    for (int i = 0; i < 3; i++) i8_data[i] = (int8_t)(-128 + 100 * i);
    for (int i = 0; i < 7; i++) u8_data[i] = (uint8_t)(250 + i);
}

static void fixture_writer(dpt_ckpt_writer *w)
{
    fill_fixture();
    dpt_ckpt_writer_init(w);
    for (size_t i = 0; i < N_FIXTURE; i++)
        CU_ASSERT_EQUAL(dpt_ckpt_add_tensor(w, fixture[i].name, fixture[i].dtype, fixture[i].shape,
                                            fixture[i].ndim, fixture[i].data),
                        DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta_int(w, "step", 1200), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(w, "config", "[model]\nlayers = 10\n"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(w, "note", "replaced below"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(w, "note", fixture_note), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(w, "precision", "single"), DPT_OK);
}

static void check_fixture(const dpt_ckpt *c)
{
    CU_ASSERT_EQUAL(c->n_tensors, N_FIXTURE);
    CU_ASSERT_EQUAL(c->n_meta, 4 + 1 + N_FIXTURE); /* user keys, header CRC, one CRC per tensor */
    for (size_t i = 0; i < N_FIXTURE; i++) {
        const dpt_ckpt_tensor *t = dpt_ckpt_find(c, fixture[i].name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_STRING_EQUAL(t->name, fixture[i].name);
        CU_ASSERT_EQUAL(t->dtype, fixture[i].dtype);
        CU_ASSERT_EQUAL(t->ndim, fixture[i].ndim);
        for (int d = 0; d < t->ndim; d++) CU_ASSERT_EQUAL(t->shape[d], fixture[i].shape[d]);
        CU_ASSERT_EQUAL(t->count, fixture[i].count);
        size_t size = dpt_ckpt_dtype_size(t->dtype);
        CU_ASSERT_EQUAL(t->bytes, fixture[i].count * size);
        if (t->bytes) CU_ASSERT(memcmp(t->data, fixture[i].data, t->bytes) == 0);
        CU_ASSERT_EQUAL((uintptr_t)t->data % size, 0); /* aligned to its element */
    }
    CU_ASSERT_PTR_NULL(dpt_ckpt_find(c, "nope"));
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(c, "step"), "1200");
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(c, "config"), "[model]\nlayers = 10\n");
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(c, "note"), fixture_note);
    CU_ASSERT_PTR_NULL(dpt_ckpt_meta(c, "missing"));
    CU_ASSERT_PTR_NOT_NULL(dpt_ckpt_meta(c, "crc32.weights"));
}

static void write_fixture(const char *path)
{
    dpt_ckpt_writer w;
    fixture_writer(&w);
    CU_ASSERT_EQUAL(dpt_ckpt_write_atomic(&w, path), DPT_OK);
    dpt_ckpt_writer_free(&w);
}

/* ---------------------------------------------------------------- tests */

static void test_round_trip(void)
{
    char dir[256], path[300];
    subdir(dir, sizeof dir, "round");
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    write_fixture(path);
    CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);

    dpt_ckpt c;
    CU_ASSERT_EQUAL_FATAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    check_fixture(&c);
    CU_ASSERT_STRING_EQUAL(c.source, path);

    /* typed access and its errors */
    double w[12];
    CU_ASSERT_EQUAL(dpt_ckpt_get_tensor(&c, "weights", DPT_CKPT_F64, 12, w), DPT_OK);
    CU_ASSERT(memcmp(w, f64_data, sizeof w) == 0);
    CU_ASSERT_EQUAL(dpt_ckpt_get_tensor(&c, "empty", DPT_CKPT_F32, 0, NULL), DPT_OK);
    EXPECT_FAIL(dpt_ckpt_get_tensor(&c, "params", DPT_CKPT_F32, 12, w), DPT_ERR_FORMAT, "no tensor 'params'");
    EXPECT_FAIL(dpt_ckpt_get_tensor(&c, "weights", DPT_CKPT_F32, 12, w), DPT_ERR_FORMAT,
                "tensor 'weights' is F64, expected F32");
    CU_ASSERT(strstr(dpt_error_message(), path) != NULL);
    EXPECT_FAIL(dpt_ckpt_get_tensor(&c, "weights", DPT_CKPT_F64, 11, w), DPT_ERR_SHAPE,
                "tensor 'weights' has 12 elements, expected 11");
    int64_t step = 0;
    CU_ASSERT_EQUAL(dpt_ckpt_get_meta_int(&c, "step", &step), DPT_OK);
    CU_ASSERT_EQUAL(step, 1200);
    EXPECT_FAIL(dpt_ckpt_get_meta_int(&c, "note", &step), DPT_ERR_FORMAT, "not an integer");
    EXPECT_FAIL(dpt_ckpt_get_meta_int(&c, "epoch", &step), DPT_ERR_FORMAT, "no metadata 'epoch'");
    const char *value;
    CU_ASSERT_EQUAL(dpt_ckpt_get_meta(&c, "precision", &value), DPT_OK);
    CU_ASSERT_STRING_EQUAL(value, "single");

    /* the same bytes parsed from memory */
    dpt_ckpt m;
    CU_ASSERT_EQUAL(dpt_ckpt_parse(c.blob, c.blob_size, "copy", &m), DPT_OK);
    check_fixture(&m);
    dpt_ckpt_free(&m);
    dpt_ckpt_free(&c);
    dpt_ckpt_free(&c); /* harmless twice */

    /* an empty checkpoint is a valid one */
    dpt_ckpt_writer e;
    dpt_ckpt_writer_init(&e);
    CU_ASSERT_EQUAL(dpt_ckpt_write_atomic(&e, path), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    CU_ASSERT_EQUAL(c.n_tensors, 0);
    CU_ASSERT_EQUAL(c.n_meta, 1);
    dpt_ckpt_free(&c);
    dpt_ckpt_writer_free(&e);
}

/* The file against the safetensors rules, independently of the reader:
 * length prefix, JSON, padding, offsets, and both kinds of CRC. */
static void test_layout(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/layout.safetensors", tmpdir);
    write_fixture(path);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_FATAL(len >= 8);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = n << 8 | buf[b];
    CU_ASSERT_FATAL(n + 8 <= len);
    CU_ASSERT_EQUAL(n % 8, 0);
    const char *header = (const char *)buf + 8;
    const char *start = "{\"__metadata__\":{\"crc32.header\":\"";
    CU_ASSERT(strncmp(header, start, strlen(start)) == 0);
    size_t last = n;
    while (last > 0 && header[last - 1] == ' ') last--;
    CU_ASSERT(n - last < 8);        /* padding: fewer than 8 spaces */
    CU_ASSERT_EQUAL(header[last - 1], '}');
    for (size_t i = 0; i < last; i++) CU_ASSERT((unsigned char)header[i] >= 0x20); /* compact, escaped */

    cJSON *root = cJSON_ParseWithLength(header, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    CU_ASSERT_PTR_EQUAL(root->child, meta); /* first */
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(meta, "note")->valuestring, fixture_note);
    for (cJSON *m = meta->child; m; m = m->next) CU_ASSERT(cJSON_IsString(m));

    /* tensors listed in file order, contiguous, aligned, covering the buffer */
    size_t data_len = len - 8 - n, expect = 0, seen = 0, last_size = 8;
    const unsigned char *data = buf + 8 + n;
    for (cJSON *t = meta->next; t; t = t->next, seen++) {
        const char *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring;
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        CU_ASSERT_EQUAL(cJSON_GetArraySize(off), 2);
        size_t begin = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        size_t end = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        size_t size = dtype[1] == '8' ? 1 : !strcmp(dtype + 1, "32") ? 4 : 8;
        size_t count = 1;
        for (cJSON *d = shape->child; d; d = d->next) count *= (size_t)d->valuedouble;
        CU_ASSERT_EQUAL(begin, expect);
        CU_ASSERT_EQUAL(end - begin, count * size);
        CU_ASSERT_EQUAL((8 + n + begin) % size, 0);
        CU_ASSERT(size <= last_size); /* 8-byte types first, then 4, then 1 */
        last_size = size;
        expect = end;
        char key[64], hex[9];
        snprintf(key, sizeof key, "crc32.%s", t->string);
        snprintf(hex, sizeof hex, "%08lx", crc32(0, data + begin, (uInt)(end - begin)));
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(meta, key)->valuestring, hex);
    }
    CU_ASSERT_EQUAL(seen, N_FIXTURE);
    CU_ASSERT_EQUAL(expect, data_len);

    /* the header CRC as documented: digits zeroed, CRC of the N bytes */
    char *zeroed = malloc(n);
    memcpy(zeroed, header, n);
    memcpy(zeroed + strlen(start), "00000000", 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08lx", crc32(0, (const Bytef *)zeroed, (uInt)n));
    CU_ASSERT(strncmp(header + strlen(start), hex, 8) == 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(meta, "crc32.header")->valuestring, hex);
    free(zeroed);
    cJSON_Delete(root);
    free(buf);
}

/* a small file: 3 tensors and 1 key */
static unsigned char *small_file(size_t *len, uint64_t *header_len)
{
    static const float a[3] = {1.5f, -2.0f, 3.25f};
    static const uint8_t b[2] = {7, 9};
    static const int64_t c[1] = {-5};
    size_t s3[1] = {3}, s2[1] = {2}, s1[1] = {1};
    char path[300];
    snprintf(path, sizeof path, "%s/small.safetensors", tmpdir);
    dpt_ckpt_writer w;
    dpt_ckpt_writer_init(&w);
    CU_ASSERT_EQUAL(dpt_ckpt_add_tensor(&w, "a", DPT_CKPT_F32, s3, 1, a), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_tensor(&w, "b", DPT_CKPT_U8, s2, 1, b), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_tensor(&w, "c", DPT_CKPT_I64, s1, 1, c), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(&w, "step", "10"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_write_atomic(&w, path), DPT_OK);
    dpt_ckpt_writer_free(&w);
    unsigned char *buf = read_all(path, len);
    *header_len = 0;
    for (int k = 7; k >= 0; k--) *header_len = *header_len << 8 | buf[k];
    return buf;
}

/* Every single-bit flip of the small file is an error (never a crash or a
 * silent success); one in the data names the tensor. */
static void test_every_bit_flip(void)
{
    size_t len;
    uint64_t n;
    unsigned char *buf = small_file(&len, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    int accepted = 0, wrong_status = 0, header_crc = 0, data_crc = 0, other = 0;
    for (size_t byte = 0; byte < len; byte++)
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (unsigned char)(1u << bit);
            dpt_ckpt c;
            dpt_status st = dpt_ckpt_parse(buf, len, "flipped", &c);
            const char *msg = dpt_error_message();
            if (st == DPT_OK) {
                accepted++;
                dpt_ckpt_free(&c);
            } else if (st != DPT_ERR_FORMAT) {
                wrong_status++;
            } else if (byte >= 8 + n) {
                /* data: a 8-byte tensor first (c), then a (4 bytes each), then b */
                size_t off = byte - 8 - n;
                const char *want = off < 8 ? "CRC mismatch in tensor 'c'"
                                   : off < 20 ? "CRC mismatch in tensor 'a'"
                                              : "CRC mismatch in tensor 'b'";
                if (strstr(msg, want)) data_crc++;
                else other++, printf("\n  data byte %zu: %s", byte, msg);
            } else if (strstr(msg, "CRC mismatch in the header")) {
                header_crc++;
            } else {
                other++;
            }
            buf[byte] ^= (unsigned char)(1u << bit);
        }
    printf("\n  %zu bits: %d header CRC mismatches, %d tensor CRC mismatches, %d other format errors",
           8 * len, header_crc, data_crc, other);
    CU_ASSERT_EQUAL(accepted, 0);
    CU_ASSERT_EQUAL(wrong_status, 0);
    CU_ASSERT_EQUAL(data_crc, 8 * (int)(len - 8 - n));
    CU_ASSERT(header_crc > 8 * (int)n / 2);
    dpt_ckpt c;
    CU_ASSERT_EQUAL(dpt_ckpt_parse(buf, len, "intact", &c), DPT_OK);
    dpt_ckpt_free(&c);
    free(buf);
}

/* Every proper prefix is reported as truncated (or empty); one byte more
 * is reported too. */
static void test_every_truncation(void)
{
    size_t len;
    uint64_t n;
    unsigned char *buf = small_file(&len, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    int bad = 0;
    for (size_t l = 0; l < len; l++) {
        dpt_ckpt c;
        dpt_status st = dpt_ckpt_parse(l ? buf : NULL, l, "cut", &c);
        const char *want = l == 0 ? "empty file" : "truncated";
        if (st != DPT_ERR_FORMAT || !strstr(dpt_error_message(), want)) {
            bad++;
            printf("\n  %zu bytes: %s", l, dpt_error_message());
        }
        if (st == DPT_OK) dpt_ckpt_free(&c);
    }
    CU_ASSERT_EQUAL(bad, 0);

    /* on disk: the message has the file and both sizes */
    char path[300], want[128];
    snprintf(path, sizeof path, "%s/cut.safetensors", tmpdir);
    CU_ASSERT_EQUAL(write_bytes(path, buf, len - 3), 0);
    dpt_ckpt c;
    EXPECT_FAIL(dpt_ckpt_read_file(path, &c), DPT_ERR_FORMAT, path);
    snprintf(want, sizeof want, "truncated: the header describes %zu bytes, the file has %zu (3 bytes", len,
             len - 3);
    CU_ASSERT(strstr(dpt_error_message(), want) != NULL);
    CU_ASSERT_EQUAL(write_bytes(path, buf, 20), 0);
    EXPECT_FAIL(dpt_ckpt_read_file(path, &c), DPT_ERR_FORMAT, "truncated: the");

    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    EXPECT_FAIL(dpt_ckpt_parse(longer, len + 1, "longer", &c), DPT_ERR_FORMAT,
                "1 unexpected bytes after the last tensor");
    free(longer);

    snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
    EXPECT_FAIL(dpt_ckpt_read_file(path, &c), DPT_ERR_IO, "cannot open");
    EXPECT_FAIL(dpt_ckpt_read_file(tmpdir, &c), DPT_ERR_IO, "not a regular file");
    free(buf);
}

/* A safetensors file from `json` (with "crc32.header":"00000000" in it, or
 * not) and `data`, padded and with its header CRC filled in as documented. */
static unsigned char *craft(const char *json, const void *data, size_t data_len, size_t *len)
{
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded + data_len + 1);
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    const char *at = strstr(json, "\"crc32.header\":\"00000000\"");
    if (at) {
        char hex[9];
        snprintf(hex, sizeof hex, "%08lx", crc32(0, buf + 8, (uInt)padded));
        memcpy(buf + 8 + (at - json) + 16, hex, 8);
    }
    *len = 8 + padded + data_len;
    return buf;
}

static const char *crc_hex(const void *data, size_t n, char out[9])
{
    snprintf(out, 9, "%08lx", crc32(0, data, (uInt)n));
    return out;
}

/* Headers with a correct CRC that are wrong in one way each. */
static void test_bad_headers(void)
{
    static const unsigned char data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    char c8[9], c4a[9], c4b[9], json[1024];
    crc_hex(data, 8, c8);
    crc_hex(data, 4, c4a);
    crc_hex(data + 4, 4, c4b);
    struct {
        const char *json; /* %s: the CRC of 8 data bytes */
        size_t data_len;
        const char *want; /* NULL: valid */
    } cases[] = {
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, NULL},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "no CRC for tensor 'x'"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\",\"crc32.y\":\"00000000\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "'crc32.y' is the CRC of a tensor"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "hold 8 bytes, but 8 F32 elements need 32"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12, "leave a gap"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\",\"crc32.y\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
         "\"y\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12, "overlap another tensor"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, "unsupported dtype 'F16'"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\",\"step\":12},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "metadata 'step' is not a string"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "tensor 'x' twice"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "shape too large"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[-8],\"data_offsets\":[0,8]}}", 8, "not a non-negative integer"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "not a non-negative integer"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,8],\"data_offsets\":[0,8]}}", 8, "more than 8 dimensions"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,0]}}", 8, "0 <= begin <= end"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8],\"extra\":1}}", 8, "unknown field 'extra'"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8]}}", 8, "tensor 'x' has no data_offsets"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.header.x\":\"%s\"},"
         "\"header\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "'header' is not allowed"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}}", 8, "not valid JSON"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\x01\"y\":1}", 8, "not JSON text"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\",\"k\":\"\xff\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "not JSON text"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},\"__metadata__\":{},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "__metadata__ twice"},
        {"{\"__metadata__\":{\"crc32.header\": \"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "no header CRC"},
        {"{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "no header CRC"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"a\\\"crc32.header\":\"00000000\"}}", 0,
         "2 header CRCs"},
        {"{\"__metadata__\":{\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\"},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 16, "8 unexpected bytes"},
        {"[1,2]", 0, "does not start with '{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(json, sizeof json, cases[i].json, c8, c8);
        size_t len;
        unsigned char *buf = craft(json, data, cases[i].data_len, &len);
        dpt_ckpt c;
        dpt_status st = dpt_ckpt_parse(buf, len, "crafted", &c);
        if (!cases[i].want) {
            CU_ASSERT_EQUAL(st, DPT_OK);
            if (st == DPT_OK) dpt_ckpt_free(&c);
        } else if (st != DPT_ERR_FORMAT || !strstr(dpt_error_message(), cases[i].want)) {
            printf("\n  case %zu: status %d, \"%s\" (wanted \"%s\")", i, (int)st, dpt_error_message(),
                   cases[i].want);
            CU_FAIL("crafted header");
            if (st == DPT_OK) dpt_ckpt_free(&c);
        }
        free(buf);
    }

    /* valid from another writer: tensors out of order in the header, empty
     * tensors sharing an offset */
    snprintf(json, sizeof json,
             "{\"y\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[4,8]},"
             "\"__metadata__\":{\"crc32.y\":\"%s\",\"crc32.header\":\"00000000\",\"crc32.x\":\"%s\","
             "\"crc32.e\":\"00000000\",\"crc32.f\":\"00000000\"},"
             "\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[4,4]},"
             "\"f\":{\"dtype\":\"F64\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[4,4]},"
             "\"x\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]}}",
             c4b, c4a);
    size_t len;
    unsigned char *buf = craft(json, data, 8, &len);
    dpt_ckpt c;
    CU_ASSERT_EQUAL_FATAL(dpt_ckpt_parse(buf, len, "other", &c), DPT_OK);
    CU_ASSERT_EQUAL(c.n_tensors, 4);
    CU_ASSERT_STRING_EQUAL(c.tensors[0].name, "x"); /* file order */
    CU_ASSERT_STRING_EQUAL(c.tensors[3].name, "y");
    CU_ASSERT_EQUAL(*(const uint32_t *)dpt_ckpt_find(&c, "y")->data, 0x08070605u);
    CU_ASSERT_EQUAL(dpt_ckpt_find(&c, "f")->ndim, 3); /* empty, whatever the other dimensions */
    CU_ASSERT_EQUAL(dpt_ckpt_find(&c, "f")->count, 0);
    dpt_ckpt_free(&c);
    free(buf);

    /* not checkpoints at all */
    static const char text[] = "hello, this is not a checkpoint at all";
    EXPECT_FAIL(dpt_ckpt_parse(text, sizeof text, "text", &c), DPT_ERR_FORMAT, "not a checkpoint");
    unsigned char zeros[64] = {0};
    zeros[0] = 16;
    EXPECT_FAIL(dpt_ckpt_parse(zeros, sizeof zeros, "zeros", &c), DPT_ERR_FORMAT,
                "the header does not start with '{'");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{'};
    EXPECT_FAIL(dpt_ckpt_parse(huge, sizeof huge, "huge", &c), DPT_ERR_FORMAT, "header length of");
    CU_ASSERT(strstr(dpt_error_message(), "not a checkpoint") != NULL);
}

/* The header CRC: an edit of the JSON that stays valid is caught, and a
 * CRC recomputed by the documented procedure is accepted. */
static void test_header_crc(void)
{
    size_t len;
    uint64_t n;
    unsigned char *buf = small_file(&len, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    char *header = (char *)buf + 8;
    char *step = strstr(header, "\"step\":\"10\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(step);
    step[8] = '2'; /* "20": still valid JSON */
    dpt_ckpt c;
    EXPECT_FAIL(dpt_ckpt_parse(buf, len, "edited", &c), DPT_ERR_FORMAT, "CRC mismatch in the header");
    CU_ASSERT(strstr(dpt_error_message(), "checkpoint edited:") != NULL);

    char *digits = strstr(header, "\"crc32.header\":\"") + 16;
    memcpy(digits, "00000000", 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08lx", crc32(0, (const Bytef *)header, (uInt)n));
    memcpy(digits, hex, 8);
    CU_ASSERT_EQUAL(dpt_ckpt_parse(buf, len, "re-signed", &c), DPT_OK);
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(&c, "step"), "20");
    dpt_ckpt_free(&c);

    digits[0] = 'A'; /* uppercase: malformed */
    EXPECT_FAIL(dpt_ckpt_parse(buf, len, "upper", &c), DPT_ERR_FORMAT, "not 8 lowercase hex digits");
    free(buf);
}

static void test_writer_arguments(void)
{
    dpt_ckpt_writer w;
    dpt_ckpt_writer_init(&w);
    float x[4] = {0};
    size_t shape[9] = {4, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "not allowed");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "__metadata__", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "reserved");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "header", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "reserved");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "a\"b", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "not allowed");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "\xff", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "not allowed");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_DTYPE_COUNT_, shape, 1, x), DPT_ERR_ARG, "invalid dtype");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_F32, shape, 9, x), DPT_ERR_ARG, "9 dimensions");
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_F32, shape, 1, NULL), DPT_ERR_ARG, "no data");
    size_t huge[2] = {SIZE_MAX / 2, 4};
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_F32, huge, 2, x), DPT_ERR_ARG, "shape too large");
    CU_ASSERT_EQUAL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_F32, shape, 1, x), DPT_OK);
    EXPECT_FAIL(dpt_ckpt_add_tensor(&w, "x", DPT_CKPT_F32, shape, 1, x), DPT_ERR_ARG, "added twice");
    EXPECT_FAIL(dpt_ckpt_add_meta(&w, "crc32.x", "0"), DPT_ERR_ARG, "reserved");
    EXPECT_FAIL(dpt_ckpt_add_meta(&w, "", "0"), DPT_ERR_ARG, "not allowed");
    EXPECT_FAIL(dpt_ckpt_add_meta(&w, "k", "\xc3"), DPT_ERR_ARG, "not UTF-8");
    CU_ASSERT_EQUAL(w.n_tensors, 1);
    CU_ASSERT_EQUAL(w.n_meta, 0);
    /* many keys: the arrays grow */
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        CU_ASSERT_EQUAL(dpt_ckpt_add_meta_int(&w, key, -i), DPT_OK);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", tmpdir);
    EXPECT_FAIL(dpt_ckpt_write_atomic(&w, path), DPT_ERR_IO, "cannot create");
    CU_ASSERT(strstr(dpt_error_message(), path) != NULL);
    snprintf(path, sizeof path, "%s/many.safetensors", tmpdir);
    CU_ASSERT_EQUAL(dpt_ckpt_write_atomic(&w, path), DPT_OK);
    dpt_ckpt c;
    CU_ASSERT_EQUAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(&c, "k99"), "-99");
    dpt_ckpt_free(&c);
    dpt_ckpt_writer_free(&w);
    CU_ASSERT_EQUAL(w.n_tensors, 0);
}

/* A write that fails (file-size limit, SIGXFSZ ignored, in a child) leaves
 * the previous file byte for byte and no temporary file. */
static void test_atomic_write_failure(void)
{
    char dir[256], path[300];
    subdir(dir, sizeof dir, "atomic");
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    write_fixture(path);
    size_t old_len;
    unsigned char *old = read_all(path, &old_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);

    fflush(stdout);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        static float big[65536];
        size_t shape[1] = {65536};
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(10);
        dpt_ckpt_writer w;
        dpt_ckpt_writer_init(&w);
        if (dpt_ckpt_add_tensor(&w, "big", DPT_CKPT_F32, shape, 1, big) != DPT_OK) _exit(11);
        dpt_status st = dpt_ckpt_write_atomic(&w, path);
        dpt_ckpt_writer_free(&w);
        if (st != DPT_ERR_IO) _exit(12);
        const char *msg = dpt_error_message();
        fprintf(stderr, "\n  (child) %s", msg);
        if (!strstr(msg, path) || !strstr(msg, "file size limit") || !strstr(msg, "File too large")) _exit(13);
        _exit(0);
    }
    int wstatus = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &wstatus, 0), pid);
    CU_ASSERT(WIFEXITED(wstatus));
    CU_ASSERT_EQUAL(WEXITSTATUS(wstatus), 0);

    size_t now_len;
    unsigned char *now = read_all(path, &now_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(now);
    CU_ASSERT_EQUAL(now_len, old_len);
    CU_ASSERT(now_len == old_len && memcmp(now, old, old_len) == 0);
    CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);
    CU_ASSERT_EQUAL(count_files(dir, "safetensors"), 1);
    dpt_ckpt c;
    CU_ASSERT_EQUAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    dpt_ckpt_free(&c);

    /* a successful write replaces it */
    dpt_ckpt_writer w;
    dpt_ckpt_writer_init(&w);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta(&w, "v", "2"), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_write_atomic(&w, path), DPT_OK);
    dpt_ckpt_writer_free(&w);
    CU_ASSERT_EQUAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(&c, "v"), "2");
    dpt_ckpt_free(&c);
    CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);

    /* an unwritable directory (not for root, who may write anywhere) */
    if (geteuid() != 0) {
        chmod(dir, 0555);
        fixture_writer(&w);
        EXPECT_FAIL(dpt_ckpt_write_atomic(&w, path), DPT_ERR_IO, "Permission denied");
        dpt_ckpt_writer_free(&w);
        chmod(dir, 0755);
        CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);
    }
    free(old);
    free(now);
}

static void save_step(const char *dir, long step, int keep)
{
    dpt_ckpt_writer w;
    fixture_writer(&w);
    CU_ASSERT_EQUAL(dpt_ckpt_add_meta_int(&w, "step", step), DPT_OK);
    char path[300], want[300];
    CU_ASSERT_EQUAL(dpt_ckpt_save(&w, dir, step, keep, path, sizeof path), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_path(dir, step, want, sizeof want), DPT_OK);
    CU_ASSERT_STRING_EQUAL(path, want);
    dpt_ckpt_writer_free(&w);
}

static void test_directory(void)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/run", tmpdir); /* created by the first save */
    CU_ASSERT_EQUAL(dpt_ckpt_path(dir, 1200, path, sizeof path), DPT_OK);
    char want[300];
    snprintf(want, sizeof want, "%s/ckpt-000000001200.safetensors", dir);
    CU_ASSERT_STRING_EQUAL(path, want);
    EXPECT_FAIL(dpt_ckpt_path(dir, -1, path, sizeof path), DPT_ERR_ARG, "negative step");
    EXPECT_FAIL(dpt_ckpt_path(dir, 1, path, 10), DPT_ERR_ARG, "does not fit");

    dpt_ckpt_listing list;
    CU_ASSERT_EQUAL(dpt_ckpt_list(dir, &list), DPT_OK); /* no directory: no checkpoint */
    CU_ASSERT_EQUAL(list.count, 0);
    dpt_ckpt_listing_free(&list);

    for (long step = 100; step <= 600; step += 100) save_step(dir, step, 3);
    /* not checkpoints: ignored */
    const char *others[] = {"notes.txt", "ckpt-12.safetensors", "ckpt-000000000700.safetensors.tmp.123",
                            "ckpt-00000000070x.safetensors", "xckpt-000000000700.safetensors"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        CU_ASSERT_EQUAL(write_bytes(path, "x", 1), 0);
    }
    CU_ASSERT_EQUAL(dpt_ckpt_list(dir, &list), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(list.count, 3);
    CU_ASSERT_EQUAL(list.steps[0], 600);
    CU_ASSERT_EQUAL(list.steps[1], 500);
    CU_ASSERT_EQUAL(list.steps[2], 400);
    CU_ASSERT_EQUAL(dpt_ckpt_path(dir, 600, path, sizeof path), DPT_OK);
    CU_ASSERT_STRING_EQUAL(list.paths[0], path);
    dpt_ckpt_listing_free(&list);
    CU_ASSERT_EQUAL(count_files(dir, "notes.txt"), 1);

    /* an older step written after a resume is kept although not newest */
    save_step(dir, 50, 2);
    CU_ASSERT_EQUAL(dpt_ckpt_list(dir, &list), DPT_OK);
    CU_ASSERT_EQUAL_FATAL(list.count, 3);
    CU_ASSERT_EQUAL(list.steps[0], 600);
    CU_ASSERT_EQUAL(list.steps[1], 500);
    CU_ASSERT_EQUAL(list.steps[2], 50);
    dpt_ckpt_listing_free(&list);
    CU_ASSERT_EQUAL(dpt_ckpt_prune(dir, 1, NULL), DPT_OK);
    CU_ASSERT_EQUAL(dpt_ckpt_list(dir, &list), DPT_OK);
    CU_ASSERT_EQUAL(list.count, 1);
    dpt_ckpt_listing_free(&list);
    EXPECT_FAIL(dpt_ckpt_prune(dir, 0, NULL), DPT_ERR_ARG, "keep 0");

    /* keep <= 0: save prunes nothing */
    save_step(dir, 700, 0);
    save_step(dir, 800, 0);
    CU_ASSERT_EQUAL(dpt_ckpt_list(dir, &list), DPT_OK);
    CU_ASSERT_EQUAL(list.count, 3);
    dpt_ckpt_listing_free(&list);
}

typedef struct reports {
    int n;
    char paths[4][300];
    char messages[4][1024];
} reports;

static void record_report(void *user, const char *path, const char *message)
{
    reports *r = user;
    if (r->n < 4) {
        snprintf(r->paths[r->n], sizeof r->paths[0], "%s", path);
        snprintf(r->messages[r->n], sizeof r->messages[0], "%s", message);
    }
    r->n++;
}

static void corrupt_file(const char *path, long offset_from_end)
{
    size_t len;
    unsigned char *buf = read_all(path, &len);
    buf[len - (size_t)offset_from_end] ^= 0x10;
    CU_ASSERT_EQUAL(write_bytes(path, buf, len), 0);
    free(buf);
}

static void test_newest_valid(void)
{
    char dir[256], path[300], p1[300], p2[300], p3[300];
    subdir(dir, sizeof dir, "resume");
    reports r = {0};
    dpt_ckpt c;
    /* nothing to resume from */
    CU_ASSERT_EQUAL(dpt_ckpt_newest_valid(dir, &c, path, sizeof path, record_report, &r), DPT_OK);
    CU_ASSERT_STRING_EQUAL(path, "");
    snprintf(p1, sizeof p1, "%s/none", tmpdir);
    CU_ASSERT_EQUAL(dpt_ckpt_newest_valid(p1, NULL, path, sizeof path, NULL, NULL), DPT_OK);
    CU_ASSERT_STRING_EQUAL(path, "");
    CU_ASSERT_EQUAL(r.n, 0);

    for (long step = 1; step <= 3; step++) save_step(dir, step, 5);
    dpt_ckpt_path(dir, 1, p1, sizeof p1);
    dpt_ckpt_path(dir, 2, p2, sizeof p2);
    dpt_ckpt_path(dir, 3, p3, sizeof p3);
    CU_ASSERT_EQUAL(dpt_ckpt_newest_valid(dir, NULL, path, sizeof path, record_report, &r), DPT_OK);
    CU_ASSERT_STRING_EQUAL(path, p3);
    CU_ASSERT_EQUAL(r.n, 0);

    corrupt_file(p3, 5); /* a flipped bit in the last tensor (mask, U8) */
    size_t len;
    unsigned char *buf = read_all(p2, &len);
    CU_ASSERT_EQUAL(write_bytes(p2, buf, len / 2), 0); /* truncated */
    free(buf);
    CU_ASSERT_EQUAL(dpt_ckpt_newest_valid(dir, &c, path, sizeof path, record_report, &r), DPT_OK);
    CU_ASSERT_STRING_EQUAL(path, p1);
    int64_t step = 0;
    CU_ASSERT_EQUAL(dpt_ckpt_get_meta_int(&c, "step", &step), DPT_OK);
    CU_ASSERT_EQUAL(step, 1);
    dpt_ckpt_free(&c);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT_STRING_EQUAL(r.paths[0], p3);
    CU_ASSERT(strstr(r.messages[0], "CRC mismatch in tensor 'mask'") != NULL);
    CU_ASSERT(strstr(r.messages[0], p3) != NULL);
    CU_ASSERT_STRING_EQUAL(r.paths[1], p2);
    CU_ASSERT(strstr(r.messages[1], "truncated") != NULL);
    printf("\n  reported: %s\n  reported: %s", r.messages[0], r.messages[1]);

    /* none verifies */
    corrupt_file(p1, 1);
    r.n = 0;
    EXPECT_FAIL(dpt_ckpt_newest_valid(dir, &c, path, sizeof path, record_report, &r), DPT_ERR_FORMAT,
                "none of the 3 checkpoints in");
    CU_ASSERT_STRING_EQUAL(path, "");
    CU_ASSERT_EQUAL(r.n, 3);
    dpt_ckpt_free(&c); /* empty: harmless */
}

static void test_hash(void)
{
    char hex[17];
    dpt_ckpt_hash_text("", hex);
    CU_ASSERT_STRING_EQUAL(hex, "cbf29ce484222325");
    dpt_ckpt_hash_text("a", hex);
    CU_ASSERT_STRING_EQUAL(hex, "af63dc4c8601ec8c");
    dpt_ckpt_hash_text("foobar", hex);
    CU_ASSERT_STRING_EQUAL(hex, "85944171f73967e8");
    CU_ASSERT_EQUAL(dpt_ckpt_fnv1a64("foobar", 6), 0x85944171f73967e8ull);
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_dtype_name(DPT_CKPT_U32), "U32");
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_dtype_name(DPT_CKPT_DTYPE_COUNT_), "?");
    CU_ASSERT_EQUAL(dpt_ckpt_dtype_size(DPT_CKPT_I8), 1);
    CU_ASSERT_EQUAL(dpt_ckpt_dtype_size(DPT_CKPT_REAL), sizeof(dpt_real));
}

/* ---------------------------------------------------------------- Python */

/* The reader of include/dpt/checkpoint.h, plus the structural checks, and a
 * writer following the same rules. */
static const char python_script[] =
    "import json, struct, sys, zlib\n"
    "def read_checkpoint(path):\n"
    "    blob = open(path, 'rb').read()\n"
    "    n, = struct.unpack_from('<Q', blob, 0)\n"
    "    header = blob[8:8 + n]\n"
    "    key = b'\"crc32.header\":\"'\n"
    "    i = header.index(key) + len(key)\n"
    "    zeroed = header[:i] + b'00000000' + header[i + 8:]\n"
    "    if '%08x' % zlib.crc32(zeroed) != header[i:i + 8].decode():\n"
    "        raise ValueError(path + ': CRC mismatch in the header')\n"
    "    tensors = json.loads(header)\n"
    "    meta = tensors.pop('__metadata__')\n"
    "    data = blob[8 + n:]\n"
    "    out = {}\n"
    "    for name, t in tensors.items():\n"
    "        begin, end = t['data_offsets']\n"
    "        raw = data[begin:end]\n"
    "        if len(raw) != end - begin:\n"
    "            raise ValueError(path + ': truncated')\n"
    "        if '%08x' % zlib.crc32(raw) != meta['crc32.' + name]:\n"
    "            raise ValueError(path + ': CRC mismatch in tensor ' + name)\n"
    "        out[name] = (t['dtype'], t['shape'], raw)\n"
    "    return meta, out\n"
    "FMT = {'F64': 'd', 'F32': 'f', 'I64': 'q', 'U64': 'Q', 'I32': 'i', 'U32': 'I', 'I8': 'b', 'U8': 'B'}\n"
    "if sys.argv[1] == 'read':\n"
    "    path = sys.argv[2]\n"
    "    meta, tensors = read_checkpoint(path)\n"
    "    blob = open(path, 'rb').read()\n"
    "    n, = struct.unpack_from('<Q', blob, 0)\n"
    "    hdr = blob[8:8 + n]\n"
    "    assert n % 8 == 0 and hdr.rstrip(b' ').endswith(b'}') and len(hdr) - len(hdr.rstrip(b' ')) < 8\n"
    "    spans = sorted(tuple(json.loads(blob[8:8 + n])[k]['data_offsets']) for k in tensors)\n"
    "    pos = 0\n"
    "    for b, e in spans:\n"
    "        assert b == pos, 'gap'\n"
    "        pos = e\n"
    "    assert pos == len(blob) - 8 - n, 'coverage'\n"
    "    for name in sorted(tensors):\n"
    "        dtype, shape, raw = tensors[name]\n"
    "        count = 1\n"
    "        for d in shape: count *= d\n"
    "        values = struct.unpack('<%d%s' % (count, FMT[dtype]), raw)\n"
    "        print(name, dtype, shape, int(sum(values)))\n"
    "    print('note', json.dumps(meta['note']))\n"
    "else:\n"
    "    a = struct.pack('<2d', 0.5, -2.0)\n"
    "    b = bytes([1, 2, 3])\n"
    "    h = {'__metadata__': {'crc32.header': '00000000', 'crc32.a': '%08x' % zlib.crc32(a),\n"
    "                          'crc32.b': '%08x' % zlib.crc32(b), 'from': 'python'},\n"
    "         'b': {'dtype': 'U8', 'shape': [3], 'data_offsets': [16, 19]},\n"
    "         'a': {'dtype': 'F64', 'shape': [2, 1], 'data_offsets': [0, 16]}}\n"
    "    text = json.dumps(h, separators=(',', ':')).encode()\n"
    "    text += b' ' * (-len(text) % 8)\n"
    "    i = text.index(b'\"crc32.header\":\"') + 16\n"
    "    text = text[:i] + (b'%08x' % zlib.crc32(text)) + text[i + 8:]\n"
    "    open(sys.argv[2], 'wb').write(struct.pack('<Q', len(text)) + text + a + b)\n";

static void test_python(void)
{
    if (system("python3 -c 'import json, struct, zlib' >/dev/null 2>&1") != 0) {
        printf("\n  python3 not available: skipped");
        return;
    }
    char script[300], path[300], out[300], cmd[1200];
    snprintf(script, sizeof script, "%s/read.py", tmpdir);
    snprintf(path, sizeof path, "%s/py.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/py.out", tmpdir);
    CU_ASSERT_EQUAL_FATAL(write_bytes(script, python_script, strlen(python_script)), 0);
    write_fixture(path);
    snprintf(cmd, sizeof cmd, "python3 '%s' read '%s' > '%s'", script, path, out);
    CU_ASSERT_EQUAL(system(cmd), 0);

    /* what it must print: name dtype shape sum (sorted by name), the note */
    char expect[2048] = "";
    const char *names[N_FIXTURE];
    for (size_t i = 0; i < N_FIXTURE; i++) names[i] = fixture[i].name;
    for (size_t i = 0; i < N_FIXTURE; i++)
        for (size_t j = i + 1; j < N_FIXTURE; j++)
            if (strcmp(names[j], names[i]) < 0) {
                const char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < N_FIXTURE; i++) {
        const fixture_tensor *f = NULL;
        for (size_t k = 0; k < N_FIXTURE; k++)
            if (!strcmp(fixture[k].name, names[i])) f = &fixture[k];
        long long sum = 0;
        for (size_t e = 0; e < f->count; e++) switch (f->dtype) {
            case DPT_CKPT_F64: sum += (long long)((const double *)f->data)[e]; break;
            case DPT_CKPT_F32: sum += (long long)((const float *)f->data)[e]; break;
            case DPT_CKPT_I64: sum += ((const int64_t *)f->data)[e]; break;
            case DPT_CKPT_U64: sum += (long long)((const uint64_t *)f->data)[e]; break;
            case DPT_CKPT_I32: sum += ((const int32_t *)f->data)[e]; break;
            case DPT_CKPT_U32: sum += ((const uint32_t *)f->data)[e]; break;
            case DPT_CKPT_I8: sum += ((const int8_t *)f->data)[e]; break;
            default: sum += ((const uint8_t *)f->data)[e]; break;
            }
        char shape[64] = "[";
        for (int d = 0; d < f->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", d ? ", " : "", f->shape[d]);
        strcat(shape, "]");
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "%s %s %s %lld\n", f->name,
                 dpt_ckpt_dtype_name(f->dtype), shape, sum);
    }
    strcat(expect, "note \"quote \\\" backslash \\\\ tab\\t newline\\n \\u00e9t\\u00e9\"\n");
    size_t len;
    char *got = (char *)read_all(out, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    got = realloc(got, len + 1);
    got[len] = '\0';
    if (strcmp(got, expect)) printf("\n  python printed:\n%s  expected:\n%s", got, expect);
    CU_ASSERT_STRING_EQUAL(got, expect);
    free(got);

    /* a corrupt file is refused by the documented reader too */
    corrupt_file(path, 1);
    snprintf(cmd, sizeof cmd, "python3 '%s' read '%s' >/dev/null 2>&1", script, path);
    CU_ASSERT_NOT_EQUAL(system(cmd), 0);

    /* a file Python wrote by the documented rules */
    snprintf(cmd, sizeof cmd, "python3 '%s' write '%s'", script, path);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    dpt_ckpt c;
    CU_ASSERT_EQUAL_FATAL(dpt_ckpt_read_file(path, &c), DPT_OK);
    double a[2];
    CU_ASSERT_EQUAL(dpt_ckpt_get_tensor(&c, "a", DPT_CKPT_F64, 2, a), DPT_OK);
    CU_ASSERT_EQUAL(a[0], 0.5);
    CU_ASSERT_EQUAL(a[1], -2.0);
    CU_ASSERT_EQUAL(dpt_ckpt_find(&c, "a")->ndim, 2);
    CU_ASSERT_EQUAL(((const uint8_t *)dpt_ckpt_find(&c, "b")->data)[2], 3);
    CU_ASSERT_STRING_EQUAL(dpt_ckpt_meta(&c, "from"), "python");
    dpt_ckpt_free(&c);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dpt-ckpt-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    static const dpt_test tests[] = {
        {"round trip of every dtype and metadata", test_round_trip},
        {"the file against the safetensors layout", test_layout},
        {"every single-bit flip is detected", test_every_bit_flip},
        {"every truncation is detected", test_every_truncation},
        {"headers wrong in one way each", test_bad_headers},
        {"header CRC", test_header_crc},
        {"writer arguments", test_writer_arguments},
        {"a failed write leaves the previous file", test_atomic_write_failure},
        {"directory: path, list, prune, save", test_directory},
        {"newest checkpoint that verifies", test_newest_valid},
        {"config hash and dtypes", test_hash},
        {"the documented Python reader and writer", test_python},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    int status = dpt_test_run(DPT_ADD_SUITE("checkpoint", tests), CU_BRM_VERBOSE);
    remove_tree(tmpdir);
    return status;
}
