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

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/train.h"

#include "bench_util.h"

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fail(int rank, const char *what)
{
    fprintf(stderr, "hotpath: rank %d: %s: %s\n", rank, what, dpt_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static dpt_config cfg; /* the trainer keeps a pointer to it */

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
    char *text = strcmp(argv[1], "-") == 0 ? NULL : bench_read_text(argv[1]);
    if (strcmp(argv[1], "-") != 0 && !text) {
        fprintf(stderr, "hotpath: cannot read %s\n", argv[1]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    /* quiet and stateless whatever the config says; the arguments after
     * WARMUP override the rest */
    const char *fixed[] = {"log.progress=none", "log.metrics=", "checkpoint.dir=",
                           "train.epochs=100000"};
    int n_over = 4 + (argc > 4 ? argc - 4 : 0);
    const char **over = malloc(sizeof(char *) * (size_t)n_over);
    memcpy(over, fixed, sizeof fixed);
    for (int i = 4; i < argc; i++) over[4 + i - 4] = argv[i];
    if (dpt_config_load(&cfg, text ? text : dpt_default_config_text, argv[1], over, n_over) != DPT_OK)
        fail(rank, "config");

    char images[2 * DPT_PATH_MAX], labels[2 * DPT_PATH_MAX];
    dpt_config_data_path(&cfg, cfg.data.train_images, images, sizeof images);
    dpt_config_data_path(&cfg, cfg.data.train_labels, labels, sizeof labels);
    dpt_load_options options = {(dpt_data_format)cfg.data.format, cfg.data.label_column,
                                cfg.data.csv_header};
    dpt_dataset set;
    dpt_trainer t;
    if (dpt_dataset_load_any(&set, MPI_COMM_WORLD, images, labels, &options) != DPT_OK) fail(rank, images);
    if (dpt_trainer_create(&t, &cfg, MPI_COMM_WORLD, &set) != DPT_OK) fail(rank, "trainer");

    for (long s = 0; s < warmup; s++)
        if (dpt_trainer_step(&t) != DPT_OK) fail(rank, "warm-up step");
    double comm0 = t.comm_seconds, samples0 = t.samples_seen;
    long evicting0 = t.sharder.tuner.evicting_steps, tuned0 = t.sharder.tuner.steps;
    MPI_Barrier(MPI_COMM_WORLD);
    double begin = monotonic();
    for (long s = 0; s < steps; s++)
        if (dpt_trainer_step(&t) != DPT_OK) fail(rank, "step");
    double end = monotonic(), seconds = end - begin, slowest = seconds;
    MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    double comm_ms = 1e3 * (t.comm_seconds - comm0) / (double)steps;
    long tuned = t.sharder.tuner.steps - tuned0; /* steps through the shared window */
    double evict_share = tuned > 0 ? (double)(t.sharder.tuner.evicting_steps - evicting0) / (double)tuned : 0;
    if (rank == 0)
        printf("samples_per_s=%.1f ms_per_step=%.4f comm_ms_per_step=%.4f ranks=%d steps=%ld "
               "params=%zu shared_window=%d evict_share=%.2f\n", (t.samples_seen - samples0) / slowest,
               1e3 * slowest / (double)steps, comm_ms, ranks, steps, t.model.n_params, t.sharder.shared,
               evict_share);
    fflush(stdout);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int r = 0; r < ranks; r++) { /* in rank order */
        if (r == rank) printf("window rank=%d begin=%.6f end=%.6f\n", rank, begin, end);
        fflush(stdout);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
    free(over);
    free(text);
    MPI_Finalize();
    return 0;
}
