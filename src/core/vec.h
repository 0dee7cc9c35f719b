/* Internal: sums over vectors accumulated in double, in eight independent
 * lanes. A single running sum in double waits on the latency of every
 * addition and cannot be vectorized without reordering it; eight partial
 * sums are eight chains the compiler runs side by side in vector
 * registers. The order of additions differs from a left-to-right loop
 * (reassociation only: every product is formed exactly as before). Each
 * function has an AVX2 copy (src/core/clones.h). */
#ifndef DPT_CORE_VEC_H
#define DPT_CORE_VEC_H

#include "dpt/real.h"

/* sum_i x[i] */
double dpt_vec_sum(const dpt_real *x, size_t n);
/* *sum = sum_i x[i], *sumsq = sum_i x[i]^2 */
void dpt_vec_sum_sumsq(const dpt_real *x, size_t n, double *sum, double *sumsq);
/* *sum = sum_i x[i], *dot = sum_i x[i] y[i] */
void dpt_vec_sum_dot(const dpt_real *x, const dpt_real *y, size_t n, double *sum, double *dot);
/* sum_i (x[i] c)^2, each x[i] c rounded to dpt_real first: the squared
 * norm of the scaled vector without writing it */
double dpt_vec_sumsq_scaled(const dpt_real *x, size_t n, dpt_real c);

#endif /* DPT_CORE_VEC_H */
