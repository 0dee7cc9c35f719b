/* Unit tests of the core module: the Philox4x32-10 generator and the draws
 * built on it (src/core/rng.c), and the status / last-error module
 * (src/core/error.c).
 *
 * Statistical tests use fixed seeds, so they are deterministic: the bounds
 * are set several standard deviations wide so that a correct generator never
 * trips them, while a biased draw (off-by-one, modulo bias, a wrong
 * transform) lands far outside. */
#include "cunit_util.h"
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/rng.h"

#define TEST_SEED 20240607u
#define N_DRAWS 100000

/* ================================================================ Philox KAT */

/* Random123's kat_vectors for philox4x32 with 10 rounds: counter, key,
 * expected output. These pin the bijection bit for bit. */
struct philox_kat {
    uint32_t counter[4];
    uint32_t key[2];
    uint32_t expected[4];
};

static const struct philox_kat philox_kats[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u},
     {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

static void test_philox_kat(void)
{
    for (size_t v = 0; v < sizeof philox_kats / sizeof philox_kats[0]; v++) {
        const struct philox_kat *kat = &philox_kats[v];
        uint32_t out[4];
        dpt_philox4x32_10(out, kat->counter, kat->key);
        for (int w = 0; w < 4; w++) {
            if (out[w] != kat->expected[w])
                printf("\n  KAT %zu word %d: got %08x, expected %08x\n", v, w, out[w],
                       kat->expected[w]);
            CU_ASSERT_EQUAL(out[w], kat->expected[w]);
        }
    }
}

/* The bijection must not modify its inputs (they are const in the API, and
 * the stream relies on its counter surviving the call). */
static void test_philox_inputs_untouched(void)
{
    const struct philox_kat *kat = &philox_kats[2];
    uint32_t counter[4], key[2], out[4];
    memcpy(counter, kat->counter, sizeof counter);
    memcpy(key, kat->key, sizeof key);
    dpt_philox4x32_10(out, counter, key);
    CU_ASSERT_EQUAL(memcmp(counter, kat->counter, sizeof counter), 0);
    CU_ASSERT_EQUAL(memcmp(key, kat->key, sizeof key), 0);
}

/* ================================================================ streams */

/* The header documents the layout: counter[0..1] is the block index,
 * counter[2..3] the substream, and u32 draws hand out the four words of each
 * block in order. Recompute the first two blocks with the raw bijection. */
static void test_stream_is_philox_of_counter(void)
{
    const uint64_t substream = 0x0000000500000007ull;
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 3, substream);
    uint32_t key[2] = {rng.key[0], rng.key[1]};
    for (uint32_t block = 0; block < 2; block++) {
        uint32_t counter[4] = {block, 0, 7, 5}, expected[4];
        dpt_philox4x32_10(expected, counter, key);
        for (int w = 0; w < 4; w++) CU_ASSERT_EQUAL(dpt_rng_u32(&rng), expected[w]);
    }
}

/* u64 joins two u32 draws of the stream, high word first; it must consume
 * exactly two words so that streams mixing u32 and u64 draws stay
 * reproducible. */
static void test_u64_consumes_two_words(void)
{
    dpt_rng a, b;
    dpt_rng_init(&a, TEST_SEED, DPT_STREAM_TEST, 0, 0);
    dpt_rng_init(&b, TEST_SEED, DPT_STREAM_TEST, 0, 0);
    for (int i = 0; i < 10; i++) {
        uint64_t hi = dpt_rng_u32(&b);
        uint64_t lo = dpt_rng_u32(&b);
        CU_ASSERT_EQUAL(dpt_rng_u64(&a), hi << 32 | lo);
    }
}

static void test_same_inputs_same_sequence(void)
{
    dpt_rng a, b;
    dpt_rng_init(&a, TEST_SEED, DPT_STREAM_SHUFFLE, 2, 17);
    dpt_rng_init(&b, TEST_SEED, DPT_STREAM_SHUFFLE, 2, 17);
    int mismatches = 0;
    for (int i = 0; i < 1000; i++)
        if (dpt_rng_u32(&a) != dpt_rng_u32(&b)) mismatches++;
    CU_ASSERT_EQUAL(mismatches, 0);
    /* Doubles too: reproducibility must survive the conversions. */
    dpt_rng_init(&a, 7, DPT_STREAM_INIT, 0, 0);
    dpt_rng_init(&b, 7, DPT_STREAM_INIT, 0, 0);
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(dpt_rng_normal(&a), dpt_rng_normal(&b));
}

/* Counts positions where the first 64 words of two streams agree. Two
 * independent streams agree on a 32-bit word with probability 2^-32, so any
 * agreement at all means the streams are not independent. */
static int common_words(uint64_t seed1, uint32_t stream1, uint32_t rank1, uint64_t sub1,
                        uint64_t seed2, uint32_t stream2, uint32_t rank2, uint64_t sub2)
{
    dpt_rng a, b;
    dpt_rng_init(&a, seed1, stream1, rank1, sub1);
    dpt_rng_init(&b, seed2, stream2, rank2, sub2);
    int same = 0;
    for (int i = 0; i < 64; i++)
        if (dpt_rng_u32(&a) == dpt_rng_u32(&b)) same++;
    return same;
}

static void test_different_inputs_different_sequences(void)
{
    const uint64_t s = TEST_SEED;
    CU_ASSERT_EQUAL(common_words(s, DPT_STREAM_TEST, 0, 0, s, DPT_STREAM_TEST, 1, 0), 0);
    CU_ASSERT_EQUAL(common_words(s, DPT_STREAM_INIT, 0, 0, s, DPT_STREAM_SHUFFLE, 0, 0), 0);
    CU_ASSERT_EQUAL(common_words(s, DPT_STREAM_TEST, 0, 0, s, DPT_STREAM_TEST, 0, 1), 0);
    CU_ASSERT_EQUAL(common_words(s, DPT_STREAM_TEST, 0, 0, s + 1, DPT_STREAM_TEST, 0, 0), 0);
    /* The high half of the substream must count as well as the low half. */
    CU_ASSERT_EQUAL(common_words(s, DPT_STREAM_TEST, 0, 0, s, DPT_STREAM_TEST, 0, 1ull << 32), 0);
    /* Swapping stream and rank must not collide (they are packed into one
     * 64-bit value before mixing). */
    CU_ASSERT_EQUAL(common_words(s, 1, 2, 0, s, 2, 1, 0), 0);
}

/* A stream crossing the 2^32 boundary of counter[0] must carry into
 * counter[1], not wrap back to block 0 (which would repeat the stream). */
static void test_block_counter_carries(void)
{
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 0, 0);
    rng.counter[0] = 0xffffffffu;
    uint32_t key[2] = {rng.key[0], rng.key[1]};
    uint32_t last[4], first_after[4];
    uint32_t c_last[4] = {0xffffffffu, 0, 0, 0}, c_next[4] = {0, 1, 0, 0};
    dpt_philox4x32_10(last, c_last, key);
    dpt_philox4x32_10(first_after, c_next, key);
    for (int w = 0; w < 4; w++) CU_ASSERT_EQUAL(dpt_rng_u32(&rng), last[w]);
    for (int w = 0; w < 4; w++) CU_ASSERT_EQUAL(dpt_rng_u32(&rng), first_after[w]);
}

/* ================================================================ distributions */

/* Uniform on [0, 1): mean 1/2, standard error of the mean over 1e5 draws
 * is sqrt(1/12 / 1e5) ~ 0.0009, so 0.01 is > 10 sigma. */
static void test_uniform_range_and_mean(void)
{
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 0, 0);
    double sum = 0, lo = 1, hi = 0;
    int out_of_range = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double u = dpt_rng_uniform(&rng);
        if (!(u >= 0 && u < 1)) out_of_range++;
        sum += u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    CU_ASSERT_EQUAL(out_of_range, 0);
    CU_ASSERT_DOUBLE_EQUAL(sum / N_DRAWS, 0.5, 0.01);
    /* With 1e5 draws the extremes come within ~1e-4 of the ends. */
    CU_ASSERT(lo < 0.001);
    CU_ASSERT(hi > 0.999);
}

/* The largest possible uniform is (2^53 - 1) / 2^53 < 1, the smallest 0:
 * feed the conversion all-ones and all-zeros words through a fake block. */
static void test_uniform_extremes(void)
{
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 0, 0);
    rng.block[0] = rng.block[1] = 0xffffffffu;
    rng.block[2] = rng.block[3] = 0;
    rng.used = 0;
    double top = dpt_rng_uniform(&rng);
    double bottom = dpt_rng_uniform(&rng);
    CU_ASSERT(top < 1.0);
    CU_ASSERT_EQUAL(top, 1.0 - 0x1.0p-53);
    CU_ASSERT_EQUAL(bottom, 0.0);
}

/* Standard normal: the standard error of the mean is 1/sqrt(1e5) ~ 0.003
 * and of the variance sqrt(2/1e5) ~ 0.0045, so 0.02 and 0.03 are > 6 sigma.
 * The fourth moment (3 for a normal, 1.8 for a uniform) catches a
 * transform that has the right variance but the wrong shape. */
static void test_normal_moments(void)
{
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 1, 0);
    double sum = 0, sum2 = 0, sum4 = 0;
    int non_finite = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double z = dpt_rng_normal(&rng);
        if (!isfinite(z)) non_finite++;
        sum += z;
        sum2 += z * z;
        sum4 += z * z * z * z;
    }
    double mean = sum / N_DRAWS;
    double var = sum2 / N_DRAWS - mean * mean;
    CU_ASSERT_EQUAL(non_finite, 0);
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 0.02);
    CU_ASSERT_DOUBLE_EQUAL(var, 1.0, 0.03);
    CU_ASSERT_DOUBLE_EQUAL(sum4 / N_DRAWS, 3.0, 0.2);
}

/* Pearson's statistic of `n_draws` draws of dpt_rng_below(n) over n bins. */
static double chi_square_below(uint64_t seed, uint32_t n, int n_draws, int *out_of_range)
{
    long *counts = calloc(n, sizeof *counts);
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_TEST, 0, n);
    *out_of_range = 0;
    for (int i = 0; i < n_draws; i++) {
        uint64_t x = dpt_rng_below(&rng, n);
        if (x >= n) (*out_of_range)++;
        else counts[x]++;
    }
    double expected = (double)n_draws / n, chi2 = 0;
    for (uint32_t k = 0; k < n; k++) chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
    free(counts);
    return chi2;
}

/* Chi-square with n - 1 degrees of freedom has mean n - 1 and standard
 * deviation sqrt(2 (n - 1)); the bound mean + 10 sd + 10 never fails by
 * chance, while e.g. an off-by-one (one empty bin) gives chi2 >= N_DRAWS/n. */
static void test_below_range_and_uniformity(void)
{
    static const uint32_t sizes[] = {1, 2, 3, 7, 10, 100, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        int out_of_range;
        double chi2 = chi_square_below(TEST_SEED, n, N_DRAWS, &out_of_range);
        double bound = (n - 1) + 10 * sqrt(2.0 * (n - 1)) + 10;
        if (chi2 > bound) printf("\n  below(%u): chi2 %.1f > %.1f\n", n, chi2, bound);
        CU_ASSERT_EQUAL(out_of_range, 0);
        CU_ASSERT(chi2 <= bound);
    }
}

/* n near 2^32 (the rejection threshold of Lemire's method is largest there)
 * and n beyond 32 bits (the 64-bit path): results stay below n and cover
 * both halves of the range about equally. */
static void test_below_large_n(void)
{
    static const uint64_t sizes[] = {0x80000001ull, 0xffffffffull, 0x100000000ull,
                                     0x123456789abull, UINT64_MAX};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        dpt_rng rng;
        dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_TEST, 2, s);
        int out_of_range = 0, upper = 0;
        for (int i = 0; i < 20000; i++) {
            uint64_t x = dpt_rng_below(&rng, n);
            if (x >= n) out_of_range++;
            if (x >= n / 2) upper++;
        }
        CU_ASSERT_EQUAL(out_of_range, 0);
        /* binomial(20000, 1/2): sd ~ 71, so +-1000 is 14 sd */
        CU_ASSERT(abs(upper - 10000) < 1000);
    }
}

/* ================================================================ permutations */

static int is_permutation(const uint32_t *perm, uint32_t n)
{
    char *seen = calloc(n ? n : 1, 1);
    int ok = 1;
    for (uint32_t i = 0; i < n && ok; i++) {
        if (perm[i] >= n || seen[perm[i]]) ok = 0;
        else seen[perm[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_permutation_valid(void)
{
    static const uint32_t sizes[] = {0, 1, 2, 5, 1000, 60000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        uint32_t *perm = malloc(sizeof *perm * (n ? n : 1));
        dpt_rng rng;
        dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_SHUFFLE, 0, s);
        dpt_rng_permutation(&rng, perm, n);
        CU_ASSERT(is_permutation(perm, n));
        free(perm);
    }
}

/* Different substreams (epochs) must shuffle differently, the same one the
 * same way; a 1000-element shuffle is also far from the identity. */
static void test_permutation_differs_across_substreams(void)
{
    enum { N = 1000 };
    static uint32_t p0[N], p1[N], p0_again[N];
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_SHUFFLE, 0, 0);
    dpt_rng_permutation(&rng, p0, N);
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_SHUFFLE, 0, 1);
    dpt_rng_permutation(&rng, p1, N);
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_SHUFFLE, 0, 0);
    dpt_rng_permutation(&rng, p0_again, N);
    int same_place = 0, fixed_points = 0;
    for (int i = 0; i < N; i++) {
        if (p0[i] == p1[i]) same_place++;
        if (p0[i] == (uint32_t)i) fixed_points++;
    }
    /* Expected 1 agreement / fixed point for independent shuffles. */
    CU_ASSERT(same_place < 20);
    CU_ASSERT(fixed_points < 20);
    CU_ASSERT_EQUAL(memcmp(p0, p0_again, sizeof p0), 0);
}

/* All 6 orders of 3 elements must be equally likely: a classic
 * Fisher-Yates slip (j drawn from [0, n) instead of [0, i]) makes some
 * orders 50% more frequent. Chi-square with 5 degrees of freedom: bound 40
 * is ~ 11 sd above its mean. */
static void test_permutation_uniform_over_orders(void)
{
    enum { TRIALS = 60000 };
    long counts[9] = {0};
    dpt_rng rng;
    dpt_rng_init(&rng, TEST_SEED, DPT_STREAM_SHUFFLE, 0, 42);
    for (int t = 0; t < TRIALS; t++) {
        uint32_t p[3];
        dpt_rng_permutation(&rng, p, 3);
        counts[p[0] * 3 + p[1]]++; /* (p0, p1) determines the order */
    }
    double expected = TRIALS / 6.0, chi2 = 0;
    int orders = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            if (a == b) {
                CU_ASSERT_EQUAL(counts[a * 3 + b], 0);
                continue;
            }
            orders++;
            chi2 += (counts[a * 3 + b] - expected) * (counts[a * 3 + b] - expected) / expected;
        }
    CU_ASSERT_EQUAL(orders, 6);
    CU_ASSERT(chi2 < 40);
}

/* ================================================================ errors */

static void test_fail_records_message_and_location(void)
{
    dpt_error_clear();
    int line = __LINE__ + 1;
    dpt_status st = DPT_FAIL(DPT_ERR_IO, "cannot open %s (%d)", "x.idx", 42);
    CU_ASSERT_EQUAL(st, DPT_ERR_IO);
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), "cannot open x.idx (42)");
    char where[64];
    snprintf(where, sizeof where, "test_core.c:%d", line);
    /* The location is the base name of the file that failed, and its line. */
    CU_ASSERT_STRING_EQUAL(dpt_error_where(), where);
}

/* DPT_FAIL must return whatever code it is given, so `return DPT_FAIL(...)`
 * propagates the right status. */
static void test_fail_returns_each_code(void)
{
    for (int s = 0; s < DPT_ERR_COUNT_; s++)
        CU_ASSERT_EQUAL(DPT_FAIL((dpt_status)s, "code %d", s), (dpt_status)s);
    char last[32];
    snprintf(last, sizeof last, "code %d", DPT_ERR_COUNT_ - 1);
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), last);
}

static void test_error_clear_and_overwrite(void)
{
    DPT_FAIL(DPT_ERR_FORMAT, "first");
    DPT_FAIL(DPT_ERR_ARG, "second");
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), "second");
    dpt_error_clear();
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), "");
    CU_ASSERT_STRING_EQUAL(dpt_error_where(), "");
}

/* A message longer than the buffer must be cut, not overflow it. */
static void test_long_message_truncated_safely(void)
{
    enum { LEN = 5000 };
    char *big = malloc(LEN + 1);
    memset(big, 'a', LEN);
    big[LEN] = '\0';
    DPT_FAIL(DPT_ERR_CONFIG, "%s", big);
    size_t len = strlen(dpt_error_message());
    CU_ASSERT(len > 0 && len < LEN);
    CU_ASSERT_EQUAL(dpt_error_message()[0], 'a');
    free(big);
}

static void *fail_on_other_thread(void *arg)
{
    (void)arg;
    DPT_FAIL(DPT_ERR_MPI, "from another thread");
    return NULL;
}

/* The last error is per thread: another thread's failure must not replace
 * this thread's message. */
static void test_error_is_thread_local(void)
{
    DPT_FAIL(DPT_ERR_SHAPE, "mine");
    pthread_t thread;
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, fail_on_other_thread, NULL) == 0);
    pthread_join(thread, NULL);
    CU_ASSERT_STRING_EQUAL(dpt_error_message(), "mine");
}

static void test_status_names(void)
{
    for (int s = 0; s < DPT_ERR_COUNT_; s++) {
        const char *name = dpt_status_name((dpt_status)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT(strlen(name) > 0);
        for (int t = 0; t < s; t++) CU_ASSERT_STRING_NOT_EQUAL(name, dpt_status_name((dpt_status)t));
    }
    /* Out-of-range codes still get a printable name, different from all
     * real ones, so a corrupted status is never reported as "ok". */
    const char *bad = dpt_status_name(DPT_ERR_COUNT_);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    CU_ASSERT(strlen(bad) > 0);
    CU_ASSERT_STRING_NOT_EQUAL(bad, dpt_status_name(DPT_OK));
    CU_ASSERT_STRING_EQUAL(dpt_status_name((dpt_status)-1), bad);
}

/* dpt_rng_mask_below (Philox blocks side by side) draws exactly what n
 * calls of dpt_rng_uniform draw: from a fresh stream and from part-used
 * blocks (an odd word: a draw across two blocks), across the 2^32 carry of
 * the block counter, for probabilities at and between the extremes, and it
 * leaves the stream where the calls would. */
static void test_mask_below_matches_uniform(void)
{
    static dpt_real fast[1000], slow[1000];
    const double ps[] = {0.5, 0.25, 1.0 / 3, 0.75, 1e-9, 1 - 1e-12, 0, -1, 1, 2, NAN};
    const size_t ns[] = {0, 1, 15, 16, 17, 33, 1000};
    const uint32_t starts[] = {0, 7, 0xffffffffu - 12}; /* the last crosses the carry */
    long mismatches = 0, cases = 0;
    for (size_t a = 0; a < sizeof ps / sizeof ps[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (size_t c = 0; c < sizeof starts / sizeof starts[0]; c++)
                for (int skip = 0; skip < 4; skip++) { /* words already used */
                    dpt_rng r1, r2;
                    dpt_rng_init(&r1, TEST_SEED, DPT_STREAM_TEST, 3, a * 100 + b);
                    r1.counter[0] = starts[c];
                    for (int k = 0; k < skip; k++) dpt_rng_u32(&r1);
                    r2 = r1;
                    dpt_rng_mask_below(&r1, fast, ns[b], ps[a], (dpt_real)2.5);
                    for (size_t i = 0; i < ns[b]; i++) slow[i] = dpt_rng_uniform(&r2) < ps[a] ? (dpt_real)2.5 : 0;
                    mismatches += memcmp(fast, slow, sizeof(dpt_real) * ns[b]) != 0;
                    mismatches += dpt_rng_u32(&r1) != dpt_rng_u32(&r2); /* the stream continues alike */
                    cases++;
                }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(cases > 0);
}

/* ================================================================ main */

int main(void)
{
    static const dpt_test philox[] = {
        {"known-answer vectors", test_philox_kat},
        {"inputs untouched", test_philox_inputs_untouched},
    };
    static const dpt_test streams[] = {
        {"stream = philox(counter, key)", test_stream_is_philox_of_counter},
        {"u64 = two u32 words", test_u64_consumes_two_words},
        {"same inputs, same sequence", test_same_inputs_same_sequence},
        {"different inputs, different sequences", test_different_inputs_different_sequences},
        {"block counter carries", test_block_counter_carries},
    };
    static const dpt_test draws[] = {
        {"uniform range and mean", test_uniform_range_and_mean},
        {"uniform extremes", test_uniform_extremes},
        {"normal moments", test_normal_moments},
        {"below: range and uniformity", test_below_range_and_uniformity},
        {"below: large n", test_below_large_n},
        {"permutation valid", test_permutation_valid},
        {"permutation differs across substreams", test_permutation_differs_across_substreams},
        {"permutation uniform over orders", test_permutation_uniform_over_orders},
        {"mask below p: the uniform draws in bulk", test_mask_below_matches_uniform},
    };
    static const dpt_test errors[] = {
        {"DPT_FAIL records message and location", test_fail_records_message_and_location},
        {"DPT_FAIL returns each code", test_fail_returns_each_code},
        {"clear and overwrite", test_error_clear_and_overwrite},
        {"long message truncated safely", test_long_message_truncated_safely},
        {"last error is thread-local", test_error_is_thread_local},
        {"status names", test_status_names},
    };
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    int registered = DPT_ADD_SUITE("philox", philox) || DPT_ADD_SUITE("rng streams", streams) ||
                     DPT_ADD_SUITE("rng draws", draws) || DPT_ADD_SUITE("errors", errors);
    return dpt_test_run(registered, CU_BRM_VERBOSE);
}
