/* What the dptrain subcommands share: the config (from a file, the
 * built-in default or a checkpoint, read by rank 0 and broadcast), the data
 * sets, and how an agreed failure is printed and turned into an exit status. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/checkpoint.h"

#define MAX_CONFIG_BYTES (1 << 20)

/* A file that is no config at all, said as such rather than as the first
 * key it lacks: empty (or only blanks), or binary (a NUL byte, which would
 * also end the text early: a data file or a checkpoint given as the config).
 * Returns 0 when the text may be parsed. */
static int config_text_problem(const char *text, size_t length, const char *path, char *why,
                               size_t why_size)
{
    const char *nul = memchr(text, '\0', length);
    if (nul) {
        snprintf(why, why_size, "config %s is not a text file (a NUL byte at offset %zu): "
                 "an INI file is expected", path, (size_t)(nul - text));
        return -1;
    }
    size_t i = 0;
    while (i < length && strchr(" \t\r\n\f\v", text[i])) i++;
    if (i == length) {
        snprintf(why, why_size, "config %s is empty: an INI file with at least [model] layers "
                 "and [optim] lr is expected (dptrain --help lists every key)", path);
        return -1;
    }
    return 0;
}

/* Rank 0's text[0..length) (length < 0: it has none, and text is freed)
 * to every rank, NUL-terminated; NULL on every rank when rank 0 has none or
 * a rank is out of memory. Collective. */
static char *share_text(const dpt_comm *comm, char *text, long length, char *why, size_t why_size)
{
    MPI_Bcast(&length, 1, MPI_LONG, 0, comm->comm);
    if (length < 0) {
        free(text);
        return NULL;
    }
    if (comm->rank != 0) text = malloc((size_t)length + 1);
    int ok = text != NULL, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm->comm);
    if (!all_ok) {
        snprintf(why, why_size, "out of memory for the config text");
        free(text);
        return NULL;
    }
    MPI_Bcast(text, (int)length, MPI_CHAR, 0, comm->comm);
    text[length] = '\0';
    return text;
}

/* Rank 0 reads the file; every rank receives its text (NULL if unreadable,
 * with the reason in `why` on rank 0). */
static char *broadcast_config_text(const dpt_comm *comm, const char *path, char *why, size_t why_size)
{
    long length = -1;
    char *text = NULL;
    if (comm->rank == 0) {
        FILE *file = fopen(path, "rb");
        if (!file) {
            snprintf(why, why_size, "cannot read config %s: %s", path, strerror(errno));
        } else {
            text = malloc(MAX_CONFIG_BYTES + 1);
            size_t got = text ? fread(text, 1, MAX_CONFIG_BYTES + 1, file) : 0;
            if (!text) snprintf(why, why_size, "out of memory reading %s", path);
            else if (ferror(file)) snprintf(why, why_size, "cannot read config %s: %s", path, strerror(errno));
            else if (got > MAX_CONFIG_BYTES) snprintf(why, why_size, "config %s is larger than 1 MiB", path);
            else if (config_text_problem(text, got, path, why, why_size) == 0) length = (long)got;
            fclose(file);
        }
    }
    return share_text(comm, text, length, why, why_size);
}

/* After an agreed failure, the lowest rank that holds the real message (not
 * just "another rank failed") prints it, so a job prints one error line. */
dpt_status cli_print_agreed_error(const dpt_comm *comm, dpt_status st)
{
    int mine = st != DPT_OK && st != DPT_ERR_REMOTE ? comm->rank : comm->size, first = mine;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm->comm);
    if (comm->rank == first)
        fprintf(stderr, "dptrain: error: %s (rank %d, %s)\n", dpt_error_message(), comm->rank,
                dpt_error_where());
    /* and every rank learns the cause, so that all exit with one status */
    int cause = (int)st;
    if (first < comm->size) MPI_Bcast(&cause, 1, MPI_INT, first, comm->comm);
    return (dpt_status)cause;
}

dpt_status cli_load_set(const dpt_config *cfg, const char *features, const char *labels,
                        dpt_dataset *set)
{
    char features_path[2 * DPT_PATH_MAX], labels_path[2 * DPT_PATH_MAX] = "";
    dpt_config_data_path(cfg, features, features_path, sizeof features_path);
    /* labels: a file; "" (a CSV file's label column); NULL: none, every label 0 */
    if (labels && labels[0] != '\0') dpt_config_data_path(cfg, labels, labels_path, sizeof labels_path);
    dpt_load_options options = {(dpt_data_format)cfg->data.format, cfg->data.label_column,
                                cfg->data.csv_header};
    /* every rank of the job is here: a .npy file is read in shares over them */
    return dpt_dataset_load_any(set, MPI_COMM_WORLD, features_path, labels ? labels_path : NULL,
                                &options);
}

dpt_status cli_load_data(const dpt_config *cfg, dpt_dataset *train, dpt_dataset *test)
{
    dpt_status st = cli_load_set(cfg, cfg->data.train_images, cfg->data.train_labels, train);
    if (st != DPT_OK) return st;
    st = cli_load_set(cfg, cfg->data.test_images, cfg->data.test_labels, test);
    char images[2 * DPT_PATH_MAX], test_images[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, cfg->data.train_images, images, sizeof images);
    dpt_config_data_path(cfg, cfg->data.test_images, test_images, sizeof test_images);
    if (st == DPT_OK && (test->n_features != train->n_features || test->shape[0] != train->shape[0] ||
                         test->shape[1] != train->shape[1] || test->shape[2] != train->shape[2]))
        st = DPT_FAIL(DPT_ERR_SHAPE, "%s: test samples are %dx%dx%d (%zu features) but the training "
                      "samples of %s are %dx%dx%d (%zu features); both sets must have one shape",
                      test_images, test->shape[0], test->shape[1], test->shape[2], test->n_features,
                      images, train->shape[0], train->shape[1], train->shape[2], train->n_features);
    return st;
}

/* The last failure's message behind "config: the layers do not fit the
 * data (files, shapes): ", keeping its status and source location: a model
 * that cannot be built on this data is the config's or the data's fault,
 * and the message names both. */
dpt_status cli_model_misfit(dpt_status st, const char *source, const dpt_config *cfg,
                            const dpt_dataset *train)
{
    char message[1024], where[256], images[2 * DPT_PATH_MAX], labels[2 * DPT_PATH_MAX];
    snprintf(message, sizeof message, "%s", dpt_error_message());
    snprintf(where, sizeof where, "%s", dpt_error_where());
    char *colon = strrchr(where, ':');
    int line = colon ? atoi(colon + 1) : 0;
    if (colon) *colon = '\0';
    dpt_config_data_path(cfg, cfg->data.train_images, images, sizeof images);
    dpt_config_data_path(cfg, cfg->data.train_labels, labels, sizeof labels);
    return dpt_fail_at(st, where, line, "%s: %s do not fit the data (%s: %zu samples of %dx%dx%d; "
                       "%s: labels 0..%d): %s", source,
                       cfg->model.spec.n_heads ? "the layers of [model] and [head.*]" : "[model] layers",
                       images, train->n_samples, train->shape[0], train->shape[1], train->shape[2],
                       labels, train->n_classes - 1, message);
}

/* Parses text (owned by the caller) on every rank. */
static int parse_config(const dpt_comm *comm, const char *text, const char *source, const cli_args *args,
                        dpt_config *cfg)
{
    dpt_status st = dpt_config_load(cfg, text, source, args->overrides, args->n_overrides);
    if (st != DPT_OK) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return EXIT_USAGE;
    }
    return EXIT_SUCCESS;
}

int cli_load_config(const dpt_comm *comm, const char *path, const cli_args *args, dpt_config *cfg)
{
    char why[600] = "";
    const char *source = path ? path : "<built-in default config>";
    char *text = path ? broadcast_config_text(comm, path, why, sizeof why) : strdup(dpt_default_config_text);
    if (!text) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", why[0] ? why : "out of memory");
        return EXIT_USAGE;
    }
    int status = parse_config(comm, text, source, args, cfg);
    free(text);
    return status;
}

/* Rank 0 reads the checkpoint's config text (every rank gets a copy, or
 * NULL with the reason in why on rank 0). */
static char *broadcast_checkpoint_config(const dpt_comm *comm, const char *path, char *why, size_t why_size)
{
    char *text = NULL;
    long length = -1;
    if (comm->rank == 0) {
        dpt_ckpt ck;
        const char *stored = NULL;
        if (dpt_ckpt_read_file(path, &ck) != DPT_OK) {
            snprintf(why, why_size, "%s", dpt_error_message());
        } else {
            if (dpt_ckpt_get_meta(&ck, "config", &stored) != DPT_OK)
                snprintf(why, why_size, "checkpoint %s holds no config (not written by dptrain train?); "
                         "name one with --config", path);
            else if (!(text = strdup(stored))) snprintf(why, why_size, "out of memory");
            else length = (long)strlen(text);
            dpt_ckpt_free(&ck);
        }
    }
    return share_text(comm, text, length, why, why_size);
}

int cli_load_checkpoint_config(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    if (args->config_path) return cli_load_config(comm, args->config_path, args, cfg);
    char why[1200] = "", source[DPT_PATH_MAX + 32];
    char *text = broadcast_checkpoint_config(comm, args->checkpoint, why, sizeof why);
    if (!text) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", why[0] ? why : "out of memory");
        return EXIT_USAGE;
    }
    snprintf(source, sizeof source, "the config in %s", args->checkpoint);
    int status = parse_config(comm, text, source, args, cfg);
    free(text);
    return status;
}

/* The exit status of a failure every rank agreed on: bad input (a file,
 * the config, a checkpoint, an output that cannot be written) is 2. */
int cli_exit_status_of(dpt_status st)
{
    switch (st) {
    case DPT_ERR_CONFIG:
    case DPT_ERR_SHAPE:
    case DPT_ERR_FORMAT:
    case DPT_ERR_IO: return EXIT_USAGE;
    default: return EXIT_RUNTIME;
    }
}

void cli_human_bytes(char *out, size_t size, double bytes)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(out, size, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
}
