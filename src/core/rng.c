/* Philox4x32-10 counter-based generator and the draws built on it. */
#include "dpt/rng.h"

#include <math.h>

#include "clones.h"

/* Round multipliers and Weyl key increments of Philox4x32 (Salmon et al. 2011). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t product = (uint64_t)a * b;
    *hi = (uint32_t)(product >> 32);
    *lo = (uint32_t)product;
}

void dpt_philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* SplitMix64 finalizer (Steele, Lea, Flood 2014): spreads (seed, stream,
 * rank) over the 64-bit key so that nearby seeds give unrelated keys. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dpt_rng_init(dpt_rng *rng, uint64_t seed, uint32_t stream, uint32_t rank,
                  uint64_t substream)
{
    uint64_t key = mix64(mix64(seed) ^ ((uint64_t)stream << 32 | rank));
    rng->key[0] = (uint32_t)key;
    rng->key[1] = (uint32_t)(key >> 32);
    rng->counter[0] = 0;
    rng->counter[1] = 0;
    rng->counter[2] = (uint32_t)substream;
    rng->counter[3] = (uint32_t)(substream >> 32);
    rng->used = 4;
}

uint32_t dpt_rng_u32(dpt_rng *rng)
{
    if (rng->used == 4) {
        dpt_philox4x32_10(rng->block, rng->counter, rng->key);
        if (++rng->counter[0] == 0) ++rng->counter[1];
        rng->used = 0;
    }
    return rng->block[rng->used++];
}

uint64_t dpt_rng_u64(dpt_rng *rng)
{
    uint64_t hi = dpt_rng_u32(rng);
    return hi << 32 | dpt_rng_u32(rng);
}

double dpt_rng_uniform(dpt_rng *rng)
{
    return (double)(dpt_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t dpt_rng_below(dpt_rng *rng, uint64_t n)
{
    /* Lemire, "Fast random integer generation in an interval", 2019,
     * 32-bit variant when n fits, rejection keeps it exactly uniform. */
    if (n <= UINT32_MAX) {
        uint64_t m = (uint64_t)dpt_rng_u32(rng) * n;
        uint32_t low = (uint32_t)m;
        if (low < n) {
            uint32_t threshold = (uint32_t)(-(uint32_t)n) % (uint32_t)n;
            while (low < threshold) {
                m = (uint64_t)dpt_rng_u32(rng) * n;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = dpt_rng_u64(rng); while (x >= limit);
    return x % n;
}

#define LANES 8 /* Philox blocks computed side by side: 2 LANES draws */

/* Philox4x32-10 of LANES consecutive block indices first, first + 1, ...
 * (the other counter words fixed), word k of lane j in out[k][j]. The
 * same rounds as dpt_philox4x32_10, lane by lane, so that each step of a
 * round is one vector operation over the lanes. */
static void philox_lanes_portable(uint32_t out[4][LANES], uint32_t first, const uint32_t counter[4],
                                    const uint32_t key[2])
{
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    for (int j = 0; j < LANES; j++)
        c0[j] = first + (uint32_t)j, c1[j] = counter[1], c2[j] = counter[2], c3[j] = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < LANES; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j], p1 = (uint64_t)PHILOX_M1 * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c0[j] = n0, c1[j] = (uint32_t)p1, c2[j] = n2, c3[j] = (uint32_t)p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int j = 0; j < LANES; j++) out[0][j] = c0[j], out[1][j] = c1[j], out[2][j] = c2[j], out[3][j] = c3[j];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The same rounds on eight lanes with AVX2 integer instructions. GCC does
 * not vectorize the 32 x 32 -> 64 bit products of philox_lanes_portable (it
 * stayed scalar: 16 imul per call), and the dropout masks of the CNN config
 * spent 4% of the step there. The high halves: _mm256_mul_epu32 multiplies
 * the even lanes into 64-bit products; the odd lanes shifted down give the
 * others. Integer arithmetic: bit for bit the portable results. */
__attribute__((target("avx2"))) static void philox_lanes_avx2(uint32_t out[4][LANES], uint32_t first,
                                                               const uint32_t counter[4],
                                                               const uint32_t key[2])
{
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32((int)counter[1]), c2 = _mm256_set1_epi32((int)counter[2]);
    __m256i c3 = _mm256_set1_epi32((int)counter[3]);
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        /* high 32 bits of m * c in every lane */
        __m256i even0 = _mm256_srli_epi64(_mm256_mul_epu32(c0, m0), 32);
        __m256i odd0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        __m256i hi0 = _mm256_blend_epi32(even0, odd0, 0xAA);
        __m256i even1 = _mm256_srli_epi64(_mm256_mul_epu32(c2, m1), 32);
        __m256i odd1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        __m256i hi1 = _mm256_blend_epi32(even1, odd1, 0xAA);
        __m256i lo0 = _mm256_mullo_epi32(c0, m0), lo1 = _mm256_mullo_epi32(c2, m1);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    _mm256_storeu_si256((__m256i *)out[0], c0);
    _mm256_storeu_si256((__m256i *)out[1], c1);
    _mm256_storeu_si256((__m256i *)out[2], c2);
    _mm256_storeu_si256((__m256i *)out[3], c3);
}
#define DPT_PHILOX_AVX2 1
#endif

static void philox_lanes(uint32_t out[4][LANES], uint32_t first, const uint32_t counter[4],
                         const uint32_t key[2])
{
#ifdef DPT_PHILOX_AVX2
    if (__builtin_cpu_supports("avx2")) {
        philox_lanes_avx2(out, first, counter, key);
        return;
    }
#endif
    philox_lanes_portable(out, first, counter, key);
}

/* mask[2 j] and mask[2 j + 1] from block j's two draws (words 0, 1 and
 * 2, 3): value where the draw's 53 bits are below limit (< 2^53 + 1, so
 * signed 64-bit compares are exact). Its own function with an AVX2 copy:
 * inline and without it, GCC left these 64-bit compares scalar, 2.2% of the
 * CNN step against Philox's own 1.3%. */
DPT_CLONES static void masks_from_blocks(dpt_real *restrict mask, const uint32_t w[4][LANES],
                                         int64_t limit, dpt_real value)
{
    int64_t first[LANES], second[LANES];
    for (int j = 0; j < LANES; j++) {
        first[j] = (int64_t)((((uint64_t)w[0][j] << 32) | w[1][j]) >> 11);
        second[j] = (int64_t)((((uint64_t)w[2][j] << 32) | w[3][j]) >> 11);
    }
    for (int j = 0; j < LANES; j++) {
        mask[2 * j] = first[j] < limit ? value : 0;
        mask[2 * j + 1] = second[j] < limit ? value : 0;
    }
}

void dpt_rng_mask_below(dpt_rng *rng, dpt_real *mask, size_t n, double p, dpt_real value)
{
    /* uniform < p  <=>  (u64 >> 11) 2^-53 < p  <=>  (u64 >> 11) < limit for
     * the integer limit = ceil(p 2^53): the draw is compared as the integer
     * it is made of, exactly (NaN or p <= 0: nothing is below it) */
    const double t = p * 0x1.0p53;
    const uint64_t limit = !(t > 0) ? 0 : t >= 0x1.0p53 ? (uint64_t)1 << 53 : (uint64_t)ceil(t);
    size_t i = 0;
    /* a block begun by earlier draws is finished one draw at a time */
    while (i < n && rng->used != 4) mask[i++] = dpt_rng_uniform(rng) < p ? value : 0;
    /* whole blocks, LANES at a time, while the block index does not wrap */
    while (n - i >= 2 * LANES && rng->counter[0] <= UINT32_MAX - LANES) {
        uint32_t w[4][LANES];
        philox_lanes(w, rng->counter[0], rng->counter, rng->key);
        rng->counter[0] += LANES;
        masks_from_blocks(mask + i, w, (int64_t)limit, value);
        i += 2 * LANES;
    }
    while (i < n) mask[i++] = dpt_rng_uniform(rng) < p ? value : 0;
}

double dpt_rng_normal(dpt_rng *rng)
{
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - dpt_rng_uniform(rng);
    double u2 = dpt_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void dpt_rng_permutation(dpt_rng *rng, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)dpt_rng_below(rng, i);
        uint32_t swap = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = swap;
    }
}
