/* dpt/oracle.h - the distributed "oracle" of the second-order path.
 *
 * For one fixed batch (the whole training set, or a range of it) it returns
 * the objective
 *     f(theta) = (1/N) sum_i loss_i(theta) + (l2 / 2) |W|^2   (weights only)
 * its gradient, and curvature-vector products (Hessian or Gauss-Newton) of
 * the same objective, each rank evaluating its share of the batch and the
 * sums reduced over ranks: every rank receives identical values, so that
 * solvers running on every rank take identical decisions. Curvature may use
 * a subsample of the batch (Martens 2010: the gradient stays exact). Every
 * call is collective.
 *
 * Softmax regression (a model of one dense layer under softmax
 * cross-entropy, the data set's labels unmapped) takes a fast path chosen by
 * dpt_oracle_create: the same f, gradient and products (Hessian and
 * Gauss-Newton coincide for it) up to rounding, with the stored features
 * read once per call in cache-sized blocks, the softmax probabilities of
 * the last evaluated point kept for the products, and the rank's samples
 * split over the BLAS threads (src/solve/oracle_softmax.h). The environment
 * variable DPT_ORACLE_GENERAL=1 keeps the general path (to measure it).
 */
#ifndef DPT_ORACLE_H
#define DPT_ORACLE_H

#include "dpt/data.h"
#include "dpt/dist.h"
#include "dpt/model.h"

typedef struct dpt_softmax_oracle dpt_softmax_oracle;

typedef struct dpt_oracle {
    dpt_comm comm;
    dpt_model *model;          /* borrowed; its params are set to each query point */
    const dpt_dataset *set;    /* borrowed */
    size_t lo, count;          /* this rank's samples [lo, lo + count) of the set */
    size_t curv_count;         /* of which the first curv_count give curvature */
    double n_total, n_curv;    /* samples over all ranks: all, and for curvature */
    double l2;
    unsigned char *is_weight;  /* [n_params] 1 for weights, 0 for biases and batch-norm */
    dpt_real *batch_x;         /* [max_batch][features] */
    uint8_t *batch_y;
    uint32_t *index;
    dpt_curvature_ws ws;
    long evals, products;      /* calls so far */
    dpt_softmax_oracle *fast;  /* the softmax-regression path, or NULL: the general one */
} dpt_oracle;

/* The batch is samples [batch_lo, batch_lo + batch_n) of set, split over
 * the ranks of comm; curvature_fraction in (0, 1] of every rank's share
 * gives the curvature subsample. */
dpt_status dpt_oracle_create(dpt_oracle *o, MPI_Comm comm, dpt_model *model, const dpt_dataset *set,
                             size_t batch_lo, size_t batch_n, double curvature_fraction, double l2);
void dpt_oracle_destroy(dpt_oracle *o);
/* Drops the fast path (if any): every later call takes the general path.
 * Local. For tests that compare the two. */
void dpt_oracle_use_general_path(dpt_oracle *o);

/* f and g[n_params] at theta. */
dpt_status dpt_oracle_value_grad(dpt_oracle *o, const dpt_real *theta, double *f, dpt_real *g);
/* out[n_params] = (C + l2 I_W) v at theta, C the Hessian or the Gauss-Newton
 * matrix of the mean loss over the curvature subsample. */
dpt_status dpt_oracle_curvature(dpt_oracle *o, const dpt_real *theta, const dpt_real *v,
                                dpt_real *out, dpt_curvature_kind kind);

/* Neither of the two passes below counts in evals or products (they are
 * the Newton assembly and the Newton-CG preconditioner, not queries of f
 * or of a product). */

/* Factored Gauss-Newton rows (dpt_model_gn_rows) of this rank's curvature
 * samples [first, first + count) (indices into its curvature subsample,
 * count <= model->max_batch) at theta: rows[count * R][n_params],
 * R = dpt_model_gn_rows_per_sample. Summed over ranks and scaled by
 * 1 / n_curv, A^T A is the Gauss-Newton part of dpt_oracle_curvature's
 * matrix (without the L2 term). Local: no communication. */
dpt_status dpt_oracle_gn_rows(dpt_oracle *o, const dpt_real *theta, size_t first, size_t count,
                              dpt_real *rows);

/* out[n_params] = (1 / n_curv) sum_i g_i . g_i (elementwise), g_i the
 * gradient of sample i's loss, over the curvature subsample at theta: the
 * diagonal of the empirical Fisher matrix, for Martens' (2010, section
 * 4.7) Newton-CG preconditioner. One forward and backward pass per sample.
 * Collective. */
dpt_status dpt_oracle_grad_sq(dpt_oracle *o, const dpt_real *theta, dpt_real *out);

#endif /* DPT_ORACLE_H */
