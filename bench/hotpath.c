/* Times the training hot path alone: dpt_trainer_step on the training set
 * of a config, nothing else (no evaluation, no reports, no checkpoints,
 * the data set loaded before the clock starts). Built and run by
 * bench/blas_share.sh, which samples it with perf between the two
 * timestamps it prints.
 *
 *   mpirun -n P hotpath CONFIG|- STEPS [WARMUP] [section.key=value ...]
 *
 * CONFIG "-" is the default configuration (configs/default.ini). Prints,
 * on rank 0, one line of key=value pairs: samples_per_s (global samples
 * over the slowest rank's time), ms_per_step, comm_ms_per_step (rank 0's
 * time in the gradient reduction), shared_window (1: the exchange went
 * through the shared-memory window) and evict_share (the share of steps in
 * which the ranks evicted what they read there: dpt_evict_tuner), and per
 * rank a line
 * "window rank=R begin=T0 end=T1" in CLOCK_MONOTONIC seconds, which is
 * perf's clock with `perf record -k CLOCK_MONOTONIC`. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_trainer.h"

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bench_trainer bench; /* large: not on the stack */

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc < 3) {
        if (rank == 0) fprintf(stderr, "usage: hotpath CONFIG|- STEPS [WARMUP] [section.key=value ...]\n");
        MPI_Finalize();
        return 2;
    }
    long steps = atol(argv[2]), warmup = argc > 3 ? atol(argv[3]) : 20;
    /* the arguments after WARMUP override the config */
    bench_trainer_open(&bench, "hotpath", rank, argv[1], argv + 4, argc > 4 ? argc - 4 : 0);
    dpt_trainer *t = &bench.t;

    for (long s = 0; s < warmup; s++)
        if (dpt_trainer_step(t) != DPT_OK) bench_fail("hotpath", rank, "warm-up step");
    double comm0 = t->comm_seconds, samples0 = t->samples_seen;
    long evicting0 = t->sharder.tuner.evicting_steps, tuned0 = t->sharder.tuner.steps;
    MPI_Barrier(MPI_COMM_WORLD);
    double begin = monotonic();
    for (long s = 0; s < steps; s++)
        if (dpt_trainer_step(t) != DPT_OK) bench_fail("hotpath", rank, "step");
    double end = monotonic(), seconds = end - begin, slowest = seconds;
    MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    double comm_ms = 1e3 * (t->comm_seconds - comm0) / (double)steps;
    long tuned = t->sharder.tuner.steps - tuned0; /* steps through the shared window */
    double evict_share = tuned > 0 ? (double)(t->sharder.tuner.evicting_steps - evicting0) / (double)tuned : 0;
    if (rank == 0)
        printf("samples_per_s=%.1f ms_per_step=%.4f comm_ms_per_step=%.4f ranks=%d steps=%ld "
               "params=%zu shared_window=%d evict_share=%.2f\n", (t->samples_seen - samples0) / slowest,
               1e3 * slowest / (double)steps, comm_ms, ranks, steps, t->model.n_params, t->sharder.shared,
               evict_share);
    fflush(stdout);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int r = 0; r < ranks; r++) { /* in rank order */
        if (r == rank) printf("window rank=%d begin=%.6f end=%.6f\n", rank, begin, end);
        fflush(stdout);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    bench_trainer_close(&bench);
    MPI_Finalize();
    return 0;
}
