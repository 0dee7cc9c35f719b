/* Fully connected layer on CBLAS GEMM. */
#include "dpt/nn.h"

#include <string.h>

/* out[B][out_dim] = in[B][in_dim] . w[out_dim][in_dim]^T + b[out_dim] */
void dpt_dense_forward(dpt_real *out, const dpt_real *in, const dpt_real *w,
                       const dpt_real *b, int B, int in_dim, int out_dim)
{
    /* Start every row at the bias and let GEMM add in . w^T (beta = 1):
     * one pass over `out` instead of two. */
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * out_dim, b, sizeof(dpt_real) * out_dim);
    dpt_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out_dim, in_dim,
             1, in, in_dim, w, in_dim, 1, out, out_dim);
}

/* dw += dout^T . in;  db += column sums of dout;  din = dout . w */
void dpt_dense_backward(dpt_real *din, dpt_real *dw, dpt_real *db,
                        const dpt_real *dout, const dpt_real *in,
                        const dpt_real *w, int B, int in_dim, int out_dim)
{
    dpt_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, B,
             1, dout, out_dim, in, in_dim, 1, dw, in_dim);
    for (int i = 0; i < B; i++) {
        const dpt_real *row = dout + (size_t)i * out_dim;
        for (int j = 0; j < out_dim; j++) db[j] += row[j];
    }
    if (din) dpt_dense_backward_input(din, dout, w, B, in_dim, out_dim);
}

void dpt_dense_backward_input(dpt_real *din, const dpt_real *dout, const dpt_real *w, int B,
                              int in_dim, int out_dim)
{
    dpt_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in_dim, out_dim,
             1, dout, out_dim, w, in_dim, 0, din, in_dim);
}
