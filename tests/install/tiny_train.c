/* tiny_train: a user's program against the INSTALLED dptrain (public
 * headers <dpt/...> and libdptrain, nothing from the source tree). It
 * parses a config text with the public config API, builds a synthetic
 * 3-class data set in memory on every rank, creates the data-parallel
 * trainer, takes steps, and checks that the loss falls and the classes
 * are learnt. Exit status 0 when they are, 1 otherwise (every rank alike).
 *
 *   mpicc tiny_train.c $(pkg-config --cflags --libs dptrain) -o tiny_train
 *   mpirun -n 2 ./tiny_train [section.key=value ...]
 *
 * tests/e2e_install.sh builds it that way and through tests/install/CMakeLists.txt.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dpt/config.h>
#include <dpt/data.h>
#include <dpt/error.h>
#include <dpt/real.h>
#include <dpt/train.h>

#define SAMPLES 600
#define FEATURES 8
#define CLASSES 3

static const char config_text[] =
    "[model]\n"
    "layers = 16 tanh, 3\n"
    "loss   = softmax_cross_entropy\n"
    "[train]\n"
    "epochs     = 5\n"
    "batch_size = 10\n"
    "seed       = 7\n"
    "[optim]\n"
    "method   = momentum\n"
    "lr       = 0.1\n"
    "momentum = 0.9\n"
    "[checkpoint]\n"
    "dir =\n"
    "[log]\n"
    "progress = none\n"
    "metrics  =\n";

/* Class c lights up features 2c and 2c+1 (bytes near 200); the rest stay
 * near 30. The same pseudo-random noise on every rank: each rank holds the
 * whole data set, as with dptrain's IDX files. */
static void make_data(uint8_t *x, uint8_t *y)
{
    uint32_t state = 12345;
    for (int i = 0; i < SAMPLES; i++) {
        int c = i % CLASSES;
        y[i] = (uint8_t)c;
        for (int j = 0; j < FEATURES; j++) {
            state = state * 1664525u + 1013904223u;
            int noise = (int)(state >> 24) % 41 - 20;
            x[i * FEATURES + j] = (uint8_t)((j / 2 == c ? 200 : 30) + noise);
        }
    }
}

/* the config must outlive the trainer (dpt_trainer keeps a pointer) */
static dpt_config cfg;

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);

    /* arguments are overrides, like dptrain's --set: optim.lr=0.05 */
    dpt_status st = dpt_config_load(&cfg, config_text, "tiny_train.c", (const char *const *)argv + 1,
                                    argc - 1);
    if (st != DPT_OK) {
        if (rank == 0) fprintf(stderr, "tiny_train: %s\n", dpt_error_message());
        MPI_Finalize();
        return 1;
    }

    uint8_t x[SAMPLES * FEATURES], y[SAMPLES];
    make_data(x, y);
    dpt_dataset data;
    dpt_trainer trainer;
    st = dpt_dataset_from_arrays(&data, x, y, SAMPLES, FEATURES);
    if (st == DPT_OK) st = dpt_trainer_create(&trainer, &cfg, MPI_COMM_WORLD, &data);
    if (st != DPT_OK) {
        fprintf(stderr, "tiny_train: rank %d: %s\n", rank, dpt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    dpt_eval before, after;
    st = dpt_trainer_evaluate(&trainer, &data, &before);
    for (long s = 0; st == DPT_OK && s < trainer.total_steps; s++) st = dpt_trainer_step(&trainer);
    if (st == DPT_OK) st = dpt_trainer_evaluate(&trainer, &data, &after);
    if (st != DPT_OK) {
        fprintf(stderr, "tiny_train: rank %d: %s\n", rank, dpt_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* every rank computed the same reduced numbers, so all decide alike */
    int learnt = after.loss < 0.5 * before.loss && after.accuracy >= 0.95;
    if (rank == 0) {
        printf("tiny_train: dptrain %s, dpt_real is %s (%zu bytes), %d rank%s, %zu parameters\n",
               DPT_VERSION_STRING, sizeof(dpt_real) == sizeof(double) ? "double" : "float",
               sizeof(dpt_real), ranks, ranks > 1 ? "s" : "", trainer.model.n_params);
        printf("tiny_train: %ld steps: loss %.4f -> %.4f, accuracy %.3f -> %.3f: %s\n",
               trainer.step, before.loss, after.loss, before.accuracy, after.accuracy,
               learnt ? "learnt" : "NOT learnt");
    }
    dpt_trainer_destroy(&trainer);
    dpt_dataset_free(&data);
    MPI_Finalize();
    return learnt ? 0 : 1;
}
