/* dpt/rng.h - counter-based random numbers (Philox4x32-10).
 *
 * Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011. A draw is a pure function of (key, counter): a stream is keyed by
 * (seed, rank, stream id) and walks its counter, so every rank has its own
 * independent, reproducible stream and no global state exists. The same
 * (seed, stream, rank) always yields the same numbers, whatever the thread
 * timing or the order in which streams are used.
 */
#ifndef DPT_RNG_H
#define DPT_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/real.h"

/* Stream ids: one per purpose, so that adding a new consumer of randomness
 * never shifts the numbers another consumer sees. */
enum dpt_rng_stream_id {
    DPT_STREAM_INIT = 1,      /* parameter initialization (same on all ranks) */
    DPT_STREAM_SHUFFLE = 2,   /* epoch permutation (same on all ranks) */
    DPT_STREAM_DROPOUT = 3,   /* per-rank masks */
    DPT_STREAM_BOOTSTRAP = 4, /* bagging resamples, one substream per member (same on all ranks) */
    DPT_STREAM_TEST = 99      /* tests */
};

typedef struct dpt_rng {
    uint32_t key[2];     /* from (seed, stream id, rank) */
    uint32_t counter[4]; /* counter[0..1]: block index; counter[2..3]: substream */
    uint32_t block[4];   /* the current output block */
    int used;            /* words of block already handed out (4 = empty) */
} dpt_rng;

/* The raw Philox4x32-10 bijection: out = philox(counter, key). */
void dpt_philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);

/* A stream for (seed, stream id, rank, substream). Substream lets one
 * consumer derive many independent sequences, e.g. one per epoch. */
void dpt_rng_init(dpt_rng *rng, uint64_t seed, uint32_t stream, uint32_t rank,
                  uint64_t substream);

uint32_t dpt_rng_u32(dpt_rng *rng);
uint64_t dpt_rng_u64(dpt_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double dpt_rng_uniform(dpt_rng *rng);
/* Uniform integer in [0, n), without modulo bias (Lemire's method). n > 0. */
uint64_t dpt_rng_below(dpt_rng *rng, uint64_t n);
/* mask[i] = value if the i-th uniform draw (dpt_rng_uniform) is below p,
 * else 0, for i in [0, n): the same draws, in the same order, as n calls of
 * dpt_rng_uniform, computed several Philox blocks at a time. */
void dpt_rng_mask_below(dpt_rng *rng, dpt_real *mask, size_t n, double p, dpt_real value);
/* Standard normal by the Box-Muller transform. */
double dpt_rng_normal(dpt_rng *rng);
/* Fills perm[0..n) with a uniform random permutation of 0..n-1 (Fisher-Yates). */
void dpt_rng_permutation(dpt_rng *rng, uint32_t *perm, uint32_t n);

#endif /* DPT_RNG_H */
