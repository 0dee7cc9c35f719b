/* Internal to the dptrain program: the command line, shared by the
 * subcommands (main.c parses, each command file runs one).
 *
 * Every rank parses the same arguments and the same config text (rank 0
 * reads files and broadcasts them), so every rank reaches the same verdict,
 * rank 0 alone prints it, and all ranks exit together with one status. */
#ifndef DPT_CLI_H
#define DPT_CLI_H

#include <stdio.h>

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/dist.h"

/* Exit statuses (documented in dptrain --help and the README). */
#define EXIT_RUNTIME 1 /* MPI, numerics, a rank lost */
#define EXIT_USAGE 2   /* bad input: usage, config, data, checkpoint, unwritable output */
#define EXIT_STOPPED 3 /* stopped by a signal after a checkpoint: resume with --resume auto */

#define CLI_MAX_OVERRIDES 256

typedef struct cli_args {
    const char *command;     /* train, eval, predict, inspect, export, help */
    const char *config_path; /* train, inspect: CONFIG; eval, predict, export: --config */
    const char *checkpoint;  /* eval, predict, export: CHECKPOINT */
    const char *overrides[CLI_MAX_OVERRIDES + 4]; /* --set, then those the options imply */
    int n_overrides;
    const char *resume;      /* train --resume auto|PATH */
    const char *features;    /* eval, predict: --features FILE */
    const char *labels;      /* eval: --labels FILE */
    const char *output;      /* predict: --output FILE; export: --output DIR or FILE */
    const char *format;      /* predict: npy|csv; export: npy|safetensors (default: by name) */
    const char *head;        /* eval, predict: --head NAME (default: the first head) */
    const char *topic;       /* help TOPIC */
    int ranks;               /* inspect --ranks N (0: the job's) */
    int dry_run, json, markdown, help, version;
    char error[512];
} cli_args;

/* ---------------------------------------------------------------- common.c */

/* The configuration every rank agrees on, from a file (NULL: the built-in
 * default) with the --set overrides. EXIT_SUCCESS or EXIT_USAGE (rank 0 has
 * printed why). */
int cli_load_config(const dpt_comm *comm, const char *path, const cli_args *args, dpt_config *cfg);
/* The same from the config a checkpoint was written with (its "config"
 * metadata), unless --config names another. */
int cli_load_checkpoint_config(const dpt_comm *comm, const cli_args *args, dpt_config *cfg);

/* Training and test sets as the config names them. Local (every rank). */
dpt_status cli_load_data(const dpt_config *cfg, dpt_dataset *train, dpt_dataset *test);
/* One set: features and labels files (names relative to [data] dir). A
 * NULL or empty labels name gives every sample label 0 (prediction). */
dpt_status cli_load_set(const dpt_config *cfg, const char *features, const char *labels,
                        dpt_dataset *set);

/* "the layers do not fit the data" around the last failure, naming both. */
dpt_status cli_model_misfit(dpt_status st, const char *source, const dpt_config *cfg,
                            const dpt_dataset *train);
/* After an agreed failure the lowest rank holding the real message prints
 * it; every rank returns the same status. Collective. */
dpt_status cli_print_agreed_error(const dpt_comm *comm, dpt_status st);
/* Exit status of an agreed failure: bad input is 2, the rest 1. */
int cli_exit_status_of(dpt_status st);
/* Human-readable bytes ("1.50 MiB"). */
void cli_human_bytes(char *out, size_t size, double bytes);

/* ---------------------------------------------------------------- commands */

int cli_train(const dpt_comm *comm, const cli_args *args, dpt_config *cfg);   /* train.c */
int cli_inspect(const dpt_comm *comm, const cli_args *args, const dpt_config *cfg); /* inspect.c */
int cli_eval(const dpt_comm *comm, const cli_args *args, dpt_config *cfg);    /* predict.c */
int cli_predict(const dpt_comm *comm, const cli_args *args, dpt_config *cfg); /* predict.c */
int cli_export(const dpt_comm *comm, const cli_args *args, dpt_config *cfg);  /* export.c */

#endif /* DPT_CLI_H */
