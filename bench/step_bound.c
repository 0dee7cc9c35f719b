/* What a training step spends outside its GEMMs, and its parts timed
 * alone: with the GEMMs at their 1-core speed added (bench/gemm_peak.c),
 * an upper bound on the share of the SGEMM-bound ideal a step can reach
 * (issue 9), and a lower bound on its time outside BLAS calls.
 *
 *   mpirun -n P step_bound CONFIG|- [REPS] [section.key=value ...]
 *
 * Builds the trainer of CONFIG ("-": configs/default.ini) as a run would,
 * takes 20 steps (the shared window, the tuner and the optimizer state set
 * up as in a run), then times, REPS times each (default 2000), every rank
 * at once after a barrier, the slowest rank's time per repetition:
 *   step            dpt_trainer_step;
 *   step_no_gemm    dpt_trainer_step with every GEMM call of the library
 *                   skipped (this file's cblas_sgemm/cblas_dgemm come
 *                   first): the step's work that is not GEMM (batch
 *                   gather, bias, activations, loss, the exchange, the
 *                   update, checks), with the caches left warm by no GEMM;
 *   update          the optimizer's pass over this rank's slice of the
 *                   parameters as the default path runs it
 *                   (dpt_optimizer_step_clear: the rule, the gradient's
 *                   squared norm and its clearing in one pass), the
 *                   gradient slice refilled (not timed) before each;
 *   reduce_scatter  dpt_sharder_reduce_scatter of the gradient (2 or more
 *                   ranks, sharded): the other ranks' slices added in
 *                   (OpenBLAS saxpy: BLAS time);
 *   allgather       dpt_sharder_allgather of the parameters.
 * Each part runs with its data warm in the caches and no GEMM between, so
 * in a step it costs at least as much; nothing of it overlaps the GEMMs
 * (one thread per rank does all of them in turn). Prints
 * on rank 0 one JSON object: the medians in microseconds, the parameter
 * count and the slice. bench/compare.sh adds the GEMMs at their 1-core
 * speed (bench/gemm_peak.c) to get the bounds. A benchmark: it asserts
 * nothing. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <cblas.h>
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_trainer.h"

static void fail(int rank, const char *what) { bench_fail("step_bound", rank, what); }

/* The library's GEMM calls (dpt_gemm: cblas_sgemm or cblas_dgemm) come
 * here first: passed on to OpenBLAS, or skipped while skip_gemm is set
 * (their outputs then keep what they held: the bias rows forward, the
 * cleared gradient backward, finite either way). */
static int skip_gemm;
typedef void (*sgemm_fn)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, float,
                         const float *, blasint, const float *, blasint, float, float *, blasint);
typedef void (*dgemm_fn)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, double,
                         const double *, blasint, const double *, blasint, double, double *, blasint);

void cblas_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                 float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c,
                 blasint ldc)
{
    static sgemm_fn next;
    if (skip_gemm) return;
    if (!next) next = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
    next(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cblas_dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                 double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta,
                 double *c, blasint ldc)
{
    static dgemm_fn next;
    if (skip_gemm) return;
    if (!next) next = (dgemm_fn)dlsym(RTLD_NEXT, "cblas_dgemm");
    next(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

enum part { STEP, STEP_NO_GEMM, UPDATE, REDUCE_SCATTER, ALLGATHER, N_PARTS };
static const char *part_names[N_PARTS] = {"step", "step_no_gemm", "update", "reduce_scatter", "allgather"};

static bench_trainer bench; /* large: not on the stack */

/* One repetition of a part; returns the slowest rank's seconds. */
static double time_part(dpt_trainer *t, enum part part, int rank)
{
    dpt_model *m = &t->model;
    dpt_real *grad = m->grads + t->slice_lo;
    if (part == UPDATE) /* a gradient to apply (the pass has cleared the last one) */
        for (size_t i = 0; i < t->slice_n; i++) grad[i] = (dpt_real)1e-3;
    const dpt_real mean_scale = (dpt_real)(1.0 / t->cfg->train.batch_size); /* the sum to the mean */
    skip_gemm = part == STEP_NO_GEMM;
    MPI_Barrier(MPI_COMM_WORLD);
    double begin = MPI_Wtime(), sumsq = 0;
    dpt_status st = DPT_OK;
    if (part == STEP || part == STEP_NO_GEMM)
        st = dpt_trainer_step(t);
    else if (part == UPDATE)
        dpt_optimizer_step_clear(&t->opt, m->params + t->slice_lo, grad, mean_scale, &sumsq);
    else if (part == REDUCE_SCATTER)
        st = dpt_sharder_reduce_scatter(&t->sharder, m->grads);
    else
        st = dpt_sharder_allgather(&t->sharder, m->params);
    double seconds = MPI_Wtime() - begin, slowest = seconds;
    skip_gemm = 0;
    if (st != DPT_OK) fail(rank, part_names[part]);
    MPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return slowest;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc < 2) {
        if (rank == 0) fprintf(stderr, "usage: step_bound CONFIG|- [REPS] [section.key=value ...]\n");
        MPI_Finalize();
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 2000;
    if (reps < 1) reps = 1;
    bench_trainer_open(&bench, "step_bound", rank, argv[1], argv + 3, argc > 3 ? argc - 3 : 0);
    dpt_trainer *t = &bench.t;
    for (int s = 0; s < 20; s++)
        if (dpt_trainer_step(t) != DPT_OK) fail(rank, "step");

    int exchange = t->sharded && ranks > 1;
    double *times = malloc(sizeof(double) * (size_t)reps), med[N_PARTS] = {0};
    if (!times) fail(rank, "out of memory");
    for (int part = 0; part < N_PARTS; part++) {
        if ((part == REDUCE_SCATTER || part == ALLGATHER) && !exchange) continue;
        time_part(t, (enum part)part, rank); /* warm-up */
        for (int r = 0; r < reps; r++) times[r] = time_part(t, (enum part)part, rank);
        med[part] = 1e6 * bench_median(times, reps);
    }
    if (rank == 0) {
        printf("{\"ranks\": %d, \"batch\": %d, \"params\": %zu, \"slice\": %zu, \"sharded\": %d, "
               "\"shared_window\": %d, \"reps\": %d", ranks, bench.cfg.train.batch_size, t->model.n_params,
               t->slice_n, t->sharded, t->sharder.shared, reps);
        for (int part = 0; part < N_PARTS; part++) printf(", \"%s_us\": %.2f", part_names[part], med[part]);
        printf("}\n");
    }
    free(times);
    bench_trainer_close(&bench);
    MPI_Finalize();
    return 0;
}
