/* Shared helpers of the finite-difference gradient checks. */
#ifndef DPT_TESTS_FD_UTIL_H
#define DPT_TESTS_FD_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dpt/real.h"
#include "dpt/rng.h"

/* |a - n| / max(|a|, |n|, floor): relative error of an analytic derivative a
 * against a difference quotient n; the floor keeps derivatives that are
 * zero up to rounding from dividing by almost nothing. */
static inline double dpt_fd_rel_err(double analytic, double numeric, double floor)
{
    double scale = fmax(fmax(fabs(analytic), fabs(numeric)), floor);
    return fabs(analytic - numeric) / scale;
}

/* x[n] uniform in [lo, hi) from the test stream `seed`. */
static inline void dpt_fd_fill_uniform(dpt_real *x, size_t n, double lo, double hi, uint64_t seed)
{
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_TEST, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (dpt_real)(lo + (hi - lo) * dpt_rng_uniform(&rng));
}

#endif /* DPT_TESTS_FD_UTIL_H */
