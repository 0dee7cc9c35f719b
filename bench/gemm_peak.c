/* The hardware limit of the default MLP's step: OpenBLAS GEMM alone.
 *
 *   gemm_peak [--batch B] [--reps N] [--square N] [--only s|d]
 *
 * Times cblas_sgemm and cblas_dgemm on exactly the GEMMs one rank calls per
 * training step of the default MLP (784-512-256-10, batch B = 64 per rank),
 * with the shapes and transposes of src/nn/dense.c:
 *   forward      out = in . W^T          NoTrans, Trans    M=B    N=out  K=in
 *   weight grad  dW += dout^T . in       Trans,   NoTrans  M=out  N=in   K=B
 *   input grad   din = dout . W          NoTrans, NoTrans  M=B    N=in   K=out
 * for the three dense layers, except the first layer's input gradient,
 * which dptrain does not compute (the model's input needs none): 8 GEMMs.
 * beta is 1 for the forward (the rows start at the bias) and the weight
 * gradient (it accumulates), 0 for the input gradient, as dptrain calls them.
 *
 * Each repetition runs the 8 calls in step order (forward 1-3, then backward
 * 3-1) on the same buffers, so the caches hold what a real step leaves there,
 * and times each call with CLOCK_MONOTONIC; after warm-up repetitions the
 * median of every call over N repetitions (default 2000) is reported, their
 * sum (the GEMM time of one step) and the ideal samples/s of one rank
 * B / sum, i.e. a step that does nothing but its GEMMs. The median of the
 * whole 8-call sequence is printed too (it includes the timer reads).
 * Then the GFLOP/s of one large square GEMM (N = 2048 by default, median of
 * 5 calls) for context. Threads: whatever OpenBLAS was given
 * (OPENBLAS_NUM_THREADS; bench/compare.sh runs it with 1).
 *
 * Output: readable lines, and for scripts one "RESULT key value" line per
 * number (keys: s_step_us, s_ideal_per_rank, s_square_gflops, s_step_gflops,
 * and the same with d_ for double).
 *
 * Built by bench/compare.sh: cc -O3 -DNDEBUG bench/gemm_peak.c
 * $(pkg-config --cflags --libs openblas) -lm
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

typedef struct {
    const char *name;
    CBLAS_TRANSPOSE ta, tb;
    int m, n, k;
    int lda, ldb, ldc;
    double beta;
    int a, b, c; /* buffer indices */
} call;

enum { IN, H1, H2, OUT, W1, W2, W3, D3, D2, D1, G1, G2, G3, N_BUF };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(void *p, size_t n, int dbl, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        double v = ((double)(*seed >> 8) / 16777216.0 - 0.5) * 0.1;
        if (dbl) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
}

static void gemm(int dbl, const call *c, void *const *buf)
{
    if (dbl)
        cblas_dgemm(CblasRowMajor, c->ta, c->tb, c->m, c->n, c->k, 1.0, buf[c->a], c->lda, buf[c->b],
                    c->ldb, c->beta, buf[c->c], c->ldc);
    else
        cblas_sgemm(CblasRowMajor, c->ta, c->tb, c->m, c->n, c->k, 1.0f, buf[c->a], c->lda, buf[c->b],
                    c->ldb, (float)c->beta, buf[c->c], c->ldc);
}

static void run_step(int dbl, int B, int reps)
{
    const int d0 = 784, d1 = 512, d2 = 256, d3 = 10;
    const char p = dbl ? 'd' : 's';
    /* buffers: activations B x width, weights out x in, deltas B x width */
    size_t sizes[N_BUF] = {
        [IN] = (size_t)B * d0, [H1] = (size_t)B * d1, [H2] = (size_t)B * d2, [OUT] = (size_t)B * d3,
        [W1] = (size_t)d1 * d0, [W2] = (size_t)d2 * d1, [W3] = (size_t)d3 * d2,
        [D3] = (size_t)B * d3, [D2] = (size_t)B * d2, [D1] = (size_t)B * d1,
        [G1] = (size_t)d1 * d0, [G2] = (size_t)d2 * d1, [G3] = (size_t)d3 * d2,
    };
    void *buf[N_BUF];
    unsigned seed = 12345;
    size_t elem = dbl ? sizeof(double) : sizeof(float);
    for (int i = 0; i < N_BUF; i++) {
        buf[i] = aligned_alloc(64, (sizes[i] * elem + 63) / 64 * 64);
        if (!buf[i]) { fprintf(stderr, "gemm_peak: out of memory\n"); exit(1); }
        fill(buf[i], sizes[i], dbl, &seed);
    }
    const call calls[] = {
        {"fwd  1  out[B,512] = in[B,784] . W1^T", CblasNoTrans, CblasTrans, B, d1, d0, d0, d0, d1, 1, IN, W1, H1},
        {"fwd  2  out[B,256] = h1[B,512] . W2^T", CblasNoTrans, CblasTrans, B, d2, d1, d1, d1, d2, 1, H1, W2, H2},
        {"fwd  3  out[B,10]  = h2[B,256] . W3^T", CblasNoTrans, CblasTrans, B, d3, d2, d2, d2, d3, 1, H2, W3, OUT},
        {"dW   3  dW3[10,256] += d3^T . h2", CblasTrans, CblasNoTrans, d3, d2, B, d3, d2, d2, 1, D3, H2, G3},
        {"din  3  d2[B,256] = d3[B,10] . W3", CblasNoTrans, CblasNoTrans, B, d2, d3, d3, d2, d2, 0, D3, W3, D2},
        {"dW   2  dW2[256,512] += d2^T . h1", CblasTrans, CblasNoTrans, d2, d1, B, d2, d1, d1, 1, D2, H1, G2},
        {"din  2  d1[B,512] = d2[B,256] . W2", CblasNoTrans, CblasNoTrans, B, d1, d2, d2, d1, d1, 0, D2, W2, D1},
        {"dW   1  dW1[512,784] += d1^T . in", CblasTrans, CblasNoTrans, d1, d0, B, d1, d0, d0, 1, D1, IN, G1},
    };
    enum { N_CALLS = sizeof calls / sizeof calls[0] };
    double *t = malloc(sizeof(double) * (size_t)reps * (N_CALLS + 1));
    if (!t) { fprintf(stderr, "gemm_peak: out of memory\n"); exit(1); }
    int warm = reps / 10 + 10;
    for (int r = -warm; r < reps; r++) {
        double start = now(), prev = start;
        for (int i = 0; i < N_CALLS; i++) {
            gemm(dbl, &calls[i], buf);
            double after = now();
            if (r >= 0) t[(size_t)i * reps + r] = after - prev;
            prev = after;
        }
        if (r >= 0) t[(size_t)N_CALLS * reps + r] = prev - start;
        /* keep the accumulating gradients bounded: beta = 1 adds every rep */
        if (r % 64 == 0) {
            memset(buf[G1], 0, sizes[G1] * elem), memset(buf[G2], 0, sizes[G2] * elem);
            memset(buf[G3], 0, sizes[G3] * elem);
        }
    }
    double sum = 0, flops = 0;
    printf("%cgemm, the default MLP's step at batch %d (%d repetitions, median per call):\n", p - 32, B, reps);
    for (int i = 0; i < N_CALLS; i++) {
        double med = bench_median(t + (size_t)i * reps, reps);
        double f = 2.0 * calls[i].m * calls[i].n * calls[i].k;
        sum += med, flops += f;
        printf("  %-40s M=%-4d N=%-4d K=%-4d %9.2f us %8.1f GFLOP/s\n", calls[i].name, calls[i].m, calls[i].n,
               calls[i].k, 1e6 * med, f / med * 1e-9);
    }
    double seq = bench_median(t + (size_t)N_CALLS * reps, reps);
    printf("  sum of the medians %.2f us (%.1f MFLOP, %.1f GFLOP/s); median of the whole sequence %.2f us\n",
           1e6 * sum, flops * 1e-6, flops / sum * 1e-9, 1e6 * seq);
    printf("  ideal samples/s of one rank (batch / GEMM time): %.0f\n", B / sum);
    printf("RESULT %c_step_us %.3f\n", p, 1e6 * sum);
    printf("RESULT %c_step_seq_us %.3f\n", p, 1e6 * seq);
    printf("RESULT %c_step_gflops %.3f\n", p, flops / sum * 1e-9);
    printf("RESULT %c_ideal_per_rank %.1f\n", p, B / sum);
    for (int i = 0; i < N_BUF; i++) free(buf[i]);
    free(t);
}

static void run_square(int dbl, int n)
{
    const char p = dbl ? 'd' : 's';
    size_t elem = dbl ? sizeof(double) : sizeof(float), nn = (size_t)n * n;
    void *a = aligned_alloc(64, nn * elem), *b = aligned_alloc(64, nn * elem), *c = aligned_alloc(64, nn * elem);
    if (!a || !b || !c) { fprintf(stderr, "gemm_peak: out of memory\n"); exit(1); }
    unsigned seed = 777;
    fill(a, nn, dbl, &seed), fill(b, nn, dbl, &seed), fill(c, nn, dbl, &seed);
    call sq = {"square", CblasNoTrans, CblasNoTrans, n, n, n, n, n, n, 0, 0, 1, 2};
    void *buf[3] = {a, b, c};
    double t[5];
    gemm(dbl, &sq, buf); /* warm-up */
    for (int r = 0; r < 5; r++) {
        double start = now();
        gemm(dbl, &sq, buf);
        t[r] = now() - start;
    }
    double med = bench_median(t, 5), gf = 2.0 * n * (double)n * n / med * 1e-9;
    printf("%cgemm %d x %d x %d: %.1f GFLOP/s (median of 5 calls, %.3f s each)\n", p - 32, n, n, n, gf, med);
    printf("RESULT %c_square_gflops %.3f\n", p, gf);
    free(a), free(b), free(c);
}

int main(int argc, char **argv)
{
    int B = 64, reps = 2000, square = 2048;
    const char *only = "sd";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--square") && i + 1 < argc) square = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: gemm_peak [--batch B] [--reps N] [--square N] [--only s|d]\n");
            return 2;
        }
    }
    if (B < 1 || reps < 1 || square < 0) {
        fprintf(stderr, "gemm_peak: batch and reps must be >= 1, square >= 0\n");
        return 2;
    }
    printf("OpenBLAS: %s, %d thread(s)\n", openblas_get_config(), openblas_get_num_threads());
    for (const char *q = only; *q; q++) {
        int dbl = *q == 'd';
        if (*q != 's' && *q != 'd') continue;
        run_step(dbl, B, reps);
        if (square > 0) run_square(dbl, square);
    }
    return 0;
}
