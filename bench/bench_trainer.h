/* The trainer of a config as a run builds it, for the benchmark programs
 * that time parts of the training step (bench/hotpath.c,
 * bench/step_bound.c). Header-only, like bench_util.h; needs libdptrain and
 * MPI. */
#ifndef DPT_BENCH_TRAINER_H
#define DPT_BENCH_TRAINER_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/train.h"

#include "bench_util.h"

typedef struct bench_trainer {
    dpt_config cfg;     /* the trainer keeps a pointer to it: do not move */
    dpt_dataset set;
    dpt_trainer t;
    char *text;         /* the config file's text (NULL: the default config) */
    const char **over;  /* the overrides */
} bench_trainer;

static inline void bench_fail(const char *prog, int rank, const char *what)
{
    fprintf(stderr, "%s: rank %d: %s: %s\n", prog, rank, what, dpt_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Loads CONFIG ("-": configs/default.ini) quiet and stateless (no
 * progress, metrics or checkpoints, epochs without end), then the
 * overrides `extra` (section.key=value), the training set and the trainer.
 * Any failure: a message and MPI_Abort. */
static inline void bench_trainer_open(bench_trainer *b, const char *prog, int rank, const char *config,
                                      char **extra, int n_extra)
{
    memset(b, 0, sizeof *b);
    int is_default = strcmp(config, "-") == 0;
    b->text = is_default ? NULL : bench_read_text(config);
    if (!is_default && !b->text) {
        fprintf(stderr, "%s: cannot read %s\n", prog, config);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *fixed[] = {"log.progress=none", "log.metrics=", "checkpoint.dir=", "train.epochs=100000"};
    int n_fixed = (int)(sizeof fixed / sizeof fixed[0]);
    b->over = malloc(sizeof(char *) * (size_t)(n_fixed + n_extra));
    if (!b->over) bench_fail(prog, rank, "out of memory");
    memcpy(b->over, fixed, sizeof fixed);
    for (int i = 0; i < n_extra; i++) b->over[n_fixed + i] = extra[i];
    if (dpt_config_load(&b->cfg, b->text ? b->text : dpt_default_config_text, config, b->over,
                        n_fixed + n_extra) != DPT_OK)
        bench_fail(prog, rank, "config");

    char images[2 * DPT_PATH_MAX], labels[2 * DPT_PATH_MAX];
    dpt_config_data_path(&b->cfg, b->cfg.data.train_images, images, sizeof images);
    dpt_config_data_path(&b->cfg, b->cfg.data.train_labels, labels, sizeof labels);
    dpt_load_options options = {(dpt_data_format)b->cfg.data.format, b->cfg.data.label_column,
                                b->cfg.data.csv_header};
    if (dpt_dataset_load_any(&b->set, MPI_COMM_WORLD, images, labels, &options) != DPT_OK)
        bench_fail(prog, rank, images);
    if (dpt_trainer_create(&b->t, &b->cfg, MPI_COMM_WORLD, &b->set) != DPT_OK)
        bench_fail(prog, rank, "trainer");
}

static inline void bench_trainer_close(bench_trainer *b)
{
    dpt_trainer_destroy(&b->t);
    dpt_dataset_free(&b->set);
    free(b->over);
    free(b->text);
}

#endif /* DPT_BENCH_TRAINER_H */
