/* dpt/real.h - the floating-point type of parameters, activations and data.
 *
 * Precision is a build choice (-DDPT_PRECISION=single|double): dpt_real is
 * float or double, and the macros below pick the matching CBLAS routine and
 * MPI datatype so that no other file needs an #if on precision.
 * Sums, norms and dot products accumulate in double regardless (dpt_acc).
 * The choice is recorded in the generated dpt/build_config.h (DPT_DOUBLE),
 * which is installed with these headers.
 */
#ifndef DPT_REAL_H
#define DPT_REAL_H

#include <cblas.h>

#include "dpt/build_config.h"

typedef double dpt_acc; /* accumulator for reductions, always double */

#if defined(DPT_DOUBLE)
typedef double dpt_real;
#define DPT_REAL_NAME "double"
#define DPT_MPI_REAL MPI_DOUBLE
#define dpt_gemm cblas_dgemm
#define dpt_gemv cblas_dgemv
#define dpt_axpy cblas_daxpy
#define dpt_scal cblas_dscal
/* x . y accumulated in double */
#define dpt_dot_acc(n, x, y) cblas_ddot((n), (x), 1, (y), 1)
#define dpt_exp exp
#define dpt_tanh tanh
#define dpt_sqrt sqrt
#define DPT_REAL_EPS 2.220446049250313e-16
#else
typedef float dpt_real;
#define DPT_REAL_NAME "single"
#define DPT_MPI_REAL MPI_FLOAT
#define dpt_gemm cblas_sgemm
#define dpt_gemv cblas_sgemv
#define dpt_axpy cblas_saxpy
#define dpt_scal cblas_sscal
/* x . y accumulated in double (BLAS dsdot) */
#define dpt_dot_acc(n, x, y) cblas_dsdot((n), (x), 1, (y), 1)
#define dpt_exp expf
#define dpt_tanh tanhf
#define dpt_sqrt sqrtf
#define DPT_REAL_EPS 1.1920929e-07f
#endif

#include <limits.h>
#include <stddef.h>

/* x . y over n elements accumulated in double, by BLAS, in pieces that fit
 * its int counts (the flat parameter vector may not). */
static inline double dpt_dot_acc_long(const dpt_real *x, const dpt_real *y, size_t n)
{
    double sum = 0;
    for (size_t done = 0; done < n;) {
        int piece = n - done > (size_t)INT_MAX ? INT_MAX : (int)(n - done);
        sum += dpt_dot_acc(piece, x + done, y + done);
        done += (size_t)piece;
    }
    return sum;
}

#endif /* DPT_REAL_H */
