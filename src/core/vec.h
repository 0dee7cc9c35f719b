/* Internal: sums over vectors accumulated in double, in eight independent
 * lanes. A single running sum in double waits on the latency of every
 * addition and cannot be vectorized without reordering it; eight partial
 * sums are eight chains the compiler runs side by side in vector
 * registers. The order of additions differs from a left-to-right loop
 * (reassociation only: every product is formed exactly as before). Each
 * function has an AVX2 copy (src/core/clones.h). */
#ifndef DPT_CORE_VEC_H
#define DPT_CORE_VEC_H

#include <stdint.h>
#include <string.h>

#include "dpt/real.h"

/* sum_i x[i] */
double dpt_vec_sum(const dpt_real *x, size_t n);
/* *sum = sum_i x[i], *sumsq = sum_i x[i]^2 */
void dpt_vec_sum_sumsq(const dpt_real *x, size_t n, double *sum, double *sumsq);
/* g where y > 0, else +0 (ReLU's backward for one element), by a bit mask
 * instead of a select: GCC left selects feeding arithmetic as branches
 * (scalar, mispredicted on ReLU's random signs); NaN y gives 0 as well. */
static inline dpt_real dpt_relu_keep(dpt_real g, dpt_real y)
{
#if defined(DPT_DOUBLE)
    uint64_t bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= (uint64_t)0 - (uint64_t)(y > 0);
#else
    uint32_t bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)(y > 0);
#endif
    memcpy(&g, &bits, sizeof bits);
    return g;
}

/* *sum = sum_i g[i], *dot = sum_i g[i] y[i] with g = x, or, when relu_out
 * is not NULL, x masked by that ReLU output (dpt_relu_keep: the backward
 * of a ReLU fused in front): the same sums in the same order as on the
 * masked copy. */
void dpt_vec_sum_dot(const dpt_real *x, const dpt_real *relu_out, const dpt_real *y, size_t n,
                     double *sum, double *dot);
/* sum_i (x[i] c)^2, each x[i] c rounded to dpt_real first: the squared
 * norm of the scaled vector without writing it */
double dpt_vec_sumsq_scaled(const dpt_real *x, size_t n, dpt_real c);

#endif /* DPT_CORE_VEC_H */
