/* Sums in double in eight lanes (vec.h). */
#include "vec.h"

#include "clones.h"

#define LANES 8

DPT_CLONES double dpt_vec_sum(const dpt_real *restrict x, size_t n)
{
    double part[LANES] = {0}, sum = 0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) part[k] += (double)x[i + k];
    for (; i < n; i++) sum += (double)x[i];
    for (int k = 0; k < LANES; k++) sum += part[k];
    return sum;
}

DPT_CLONES void dpt_vec_sum_sumsq(const dpt_real *restrict x, size_t n, double *sum, double *sumsq)
{
    double s[LANES] = {0}, q[LANES] = {0}, s_all = 0, q_all = 0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            double v = (double)x[i + k];
            s[k] += v;
            q[k] += v * v;
        }
    for (; i < n; i++) {
        double v = (double)x[i];
        s_all += v;
        q_all += v * v;
    }
    for (int k = 0; k < LANES; k++) s_all += s[k], q_all += q[k];
    *sum = s_all;
    *sumsq = q_all;
}

DPT_CLONES void dpt_vec_sum_dot(const dpt_real *restrict x, const dpt_real *restrict relu_out,
                                const dpt_real *restrict y, size_t n, double *sum, double *dot)
{
    double s[LANES] = {0}, d[LANES] = {0}, s_all = 0, d_all = 0;
    size_t i = 0;
    /* relu_out is fixed for the call: the compiler makes a loop of each kind */
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            dpt_real g = relu_out ? dpt_relu_keep(x[i + k], relu_out[i + k]) : x[i + k];
            s[k] += (double)g;
            d[k] += (double)g * y[i + k];
        }
    for (; i < n; i++) {
        dpt_real g = relu_out ? dpt_relu_keep(x[i], relu_out[i]) : x[i];
        s_all += (double)g;
        d_all += (double)g * y[i];
    }
    for (int k = 0; k < LANES; k++) s_all += s[k], d_all += d[k];
    *sum = s_all;
    *dot = d_all;
}

DPT_CLONES double dpt_vec_sumsq_scaled(const dpt_real *restrict x, size_t n, dpt_real c)
{
    double part[LANES] = {0}, sum = 0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            double v = (double)(x[i + k] * c);
            part[k] += v * v;
        }
    for (; i < n; i++) {
        double v = (double)(x[i] * c);
        sum += v * v;
    }
    for (int k = 0; k < LANES; k++) sum += part[k];
    return sum;
}
