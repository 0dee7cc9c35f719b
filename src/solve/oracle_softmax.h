/* Internal to src/solve: the oracle's fast path for multinomial logistic
 * (softmax) regression, a model of one dense layer (K outputs, no
 * activation) under softmax cross-entropy, the data set's labels as they
 * are. dpt_oracle_create selects it by itself (dpt_softmax_oracle_create
 * says whether the model qualifies); oracle.c does the reductions and the
 * scaling, identical to the general path's, on the local sums made here.
 *
 * Where the general path gathers a batch of 256 samples as dpt_real (the
 * whole share of the batch converted and written out, then read again by
 * each GEMM and by the backward pass), this path reads the stored features
 * (bytes for Fashion-MNIST) once per call: a block of SOFTMAX_BLOCK rows is
 * converted into a small buffer that stays in the core's L2 cache, and both
 * GEMMs of the call run on it there (forward logits, then the gradient or
 * the curvature product). The softmax probabilities of the last point whose
 * value was asked for are kept (K reals per sample) so that every
 * curvature product at that point is
 *     H v = X^T (D(p) (X V^T + v_b)),  D(p) u = p o u - p (p . u)
 * with one pass over X and no exponential. The rank's rows are split over
 * the BLAS threads (OPENBLAS_NUM_THREADS), each calling single-threaded
 * GEMMs on its own blocks. Nothing is allocated after create. */
#ifndef DPT_ORACLE_SOFTMAX_H
#define DPT_ORACLE_SOFTMAX_H

#include "dpt/oracle.h"

/* Builds the fast path for o (its model, set, lo, count and curv_count
 * set) into *out, or sets *out = NULL when the model does not qualify (or
 * the DPT_ORACLE_GENERAL environment variable is set to a non-empty value
 * other than 0, to measure the general path). Local. */
dpt_status dpt_softmax_oracle_create(dpt_softmax_oracle **out, const dpt_oracle *o);
void dpt_softmax_oracle_destroy(dpt_softmax_oracle *so);

/* This rank's sums at theta: grad[n_params] = the gradient of the weighted
 * loss sum over its samples, *loss that sum. */
void dpt_softmax_oracle_value_grad(dpt_softmax_oracle *so, const dpt_real *theta, double *loss,
                                   dpt_real *grad);
/* This rank's sum over its curvature samples: out[n_params] = H v of the
 * weighted loss sum at theta (for this model Hessian and Gauss-Newton
 * matrix are the same). */
void dpt_softmax_oracle_curvature(dpt_softmax_oracle *so, const dpt_real *theta, const dpt_real *v,
                                  dpt_real *out);

#endif /* DPT_ORACLE_SOFTMAX_H */
