/* dptrain: the command-line program.
 *
 *   dptrain train [CONFIG] [--set section.key=value ...] [--resume auto|PATH]
 *   dptrain inspect [CONFIG] [--set section.key=value ...]
 *   dptrain --help | --version
 *
 * Exit status: 0 success; 1 runtime failure (MPI, numerics, a rank lost);
 * 2 bad input: usage, configuration, data, checkpoint, an unwritable
 * output or checkpoint file (a full disk included); 3 stopped by SIGTERM,
 * SIGINT or SIGUSR1 after writing a checkpoint: requeue the job and resume
 * with --resume auto. Every rank parses the same config text
 * (rank 0 reads the file and broadcasts it), so every rank reaches the same
 * verdict, rank 0 alone prints it, and all ranks exit together.
 */
#include <cJSON.h>
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/dist.h"
#include "dpt/ensemble.h"
#include "dpt/train.h"
#include "dpt/watchdog.h"
#include "inspect.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_STOPPED 3
#define MAX_OVERRIDES 256
#define MAX_CONFIG_BYTES (1 << 20)

typedef struct cli_args {
    const char *command;    /* "train", "inspect", or NULL */
    const char *config_path;/* NULL: the embedded default */
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    const char *resume;     /* --resume auto|PATH, or NULL */
    int help, version;
    char error[512];
} cli_args;

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: dptrain train [CONFIG] [--set section.key=value ...] [--resume auto|PATH]\n"
            "       dptrain inspect [CONFIG] [--set section.key=value ...]\n"
            "       dptrain --help | --version\n"
            "\n"
            "Trains a neural network data-parallel over MPI ranks; start it with mpirun,\n"
            "e.g. mpirun -n 2 dptrain train, or launch/local.sh -n 2 train.\n"
            "Without CONFIG the built-in default (configs/default.ini) is used: an MLP on\n"
            "Fashion-MNIST from /usr/share/datasets/fashion-mnist.\n"
            "--set overrides one key, e.g. --set train.epochs=5 --set optim.lr=0.1\n"
            "inspect prints every layer's output shape, parameters, bytes and FLOPs.\n"
            "--resume PATH continues from a checkpoint; --resume auto from the newest one in\n"
            "[checkpoint] dir that verifies (none: from scratch). SIGTERM, SIGINT or SIGUSR1\n"
            "stop every rank at the next step with a checkpoint (exit status 3).\n"
            "[ensemble] members = k > 1 trains k bagged members, each on ranks/k ranks and its\n"
            "own bootstrap resample, and reports each member's, the mean and the averaged\n"
            "ensemble's test error (the rank count must be divisible by k),\n"
            "e.g. mpirun -n 2 dptrain train configs/fashion-bagging.ini\n"
            "\n"
            "Exit status: 0 success, 1 runtime error, 2 bad input (usage, configuration, data,\n"
            "checkpoint, unwritable output), 3 stopped by a signal after a checkpoint.\n");
}

static int parse_args(cli_args *args, int argc, char **argv)
{
    memset(args, 0, sizeof *args);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) args->help = 1;
        else if (!strcmp(arg, "--version")) args->version = 1;
        else if (!strcmp(arg, "--set") || !strncmp(arg, "--set=", 6)) {
            const char *value = arg[5] == '=' ? arg + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value) return snprintf(args->error, sizeof args->error, "--set needs section.key=value"), -1;
            if (args->n_overrides == MAX_OVERRIDES)
                return snprintf(args->error, sizeof args->error, "more than %d --set options", MAX_OVERRIDES), -1;
            args->overrides[args->n_overrides++] = value;
        } else if (!strcmp(arg, "--resume") || !strncmp(arg, "--resume=", 9)) {
            const char *value = arg[8] == '=' ? arg + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value || !value[0])
                return snprintf(args->error, sizeof args->error, "--resume needs auto or a checkpoint path"), -1;
            args->resume = value;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return snprintf(args->error, sizeof args->error, "unknown option '%s'", arg), -1;
        } else if (!args->command) {
            if (strcmp(arg, "train") != 0 && strcmp(arg, "inspect") != 0)
                return snprintf(args->error, sizeof args->error,
                                "unknown command '%s' (commands: train, inspect)", arg), -1;
            args->command = arg;
        } else if (!args->config_path) {
            args->config_path = arg;
        } else {
            return snprintf(args->error, sizeof args->error, "unexpected argument '%s'", arg), -1;
        }
    }
    if (!args->help && !args->version && !args->command)
        return snprintf(args->error, sizeof args->error, "no command given"), -1;
    return 0;
}

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

/* After an agreed failure, the lowest rank that holds the real message (not
 * just "another rank failed") prints it, so a job prints one error line. */
static dpt_status print_agreed_error(const dpt_comm *comm, dpt_status st)
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

static dpt_status load_data(const dpt_config *cfg, dpt_dataset *train, dpt_dataset *test)
{
    char images[2 * DPT_PATH_MAX], labels[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, cfg->data.train_images, images, sizeof images);
    dpt_config_data_path(cfg, cfg->data.train_labels, labels, sizeof labels);
    dpt_status st = dpt_dataset_load(train, images, labels);
    if (st != DPT_OK) return st;
    char test_images[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, cfg->data.test_images, test_images, sizeof test_images);
    dpt_config_data_path(cfg, cfg->data.test_labels, labels, sizeof labels);
    st = dpt_dataset_load(test, test_images, labels);
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
static dpt_status model_misfit(dpt_status st, const char *source, const dpt_config *cfg,
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

/* The configuration every rank agrees on; EXIT_SUCCESS or EXIT_USAGE
 * (rank 0 has printed why). */
static int load_config(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    char why[600] = "";
    const char *source = args->config_path ? args->config_path : "<built-in default config>";
    char *text = args->config_path ? broadcast_config_text(comm, args->config_path, why, sizeof why)
                                   : strdup(dpt_default_config_text);
    if (!text) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", why[0] ? why : "out of memory");
        return EXIT_USAGE;
    }
    dpt_status st = dpt_config_load(cfg, text, source, args->overrides, args->n_overrides);
    free(text);
    if (st != DPT_OK) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return EXIT_USAGE;
    }
    return EXIT_SUCCESS;
}

/* Rank 0 prints the table; every rank exits with its status. */
static int run_inspect(const dpt_comm *comm, const dpt_config *cfg)
{
    int status = EXIT_SUCCESS;
    if (comm->rank == 0) {
        dpt_status st = dpt_cli_inspect(cfg);
        if (st != DPT_OK) {
            fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
            status = st == DPT_ERR_SHAPE || st == DPT_ERR_CONFIG ? EXIT_USAGE : EXIT_RUNTIME;
        }
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, comm->comm);
    return status;
}

/* Fault injection for tests (steps and layers 1-based):
 *   DPTRAIN_INJECT_NAN=STEP:RANK:LAYER      NaN in a layer's gradient
 *   DPTRAIN_INJECT_STALL=STEP:RANK:SECONDS  a rank sleeps before the reduction
 *   DPTRAIN_INJECT_CORRUPT=STEP:RANK        a rank's parameter changes after the update
 *   DPTRAIN_INJECT_SIGNAL=STEP:RANK:SIGNO   a rank raises a signal before the reduction */
static void set_fault(dpt_trainer *trainer)
{
    const char *spec = getenv("DPTRAIN_INJECT_NAN");
    long step;
    int rank, layer;
    double seconds;
    if (spec && sscanf(spec, "%ld:%d:%d", &step, &rank, &layer) == 3) {
        trainer->fault.step = step - 1;
        trainer->fault.rank = rank;
        trainer->fault.layer = layer - 1;
    }
    spec = getenv("DPTRAIN_INJECT_STALL");
    if (spec && sscanf(spec, "%ld:%d:%lf", &step, &rank, &seconds) == 3) {
        trainer->fault.stall_step = step;
        trainer->fault.stall_rank = rank;
        trainer->fault.stall_seconds = seconds;
    }
    spec = getenv("DPTRAIN_INJECT_SIGNAL");
    int signo;
    if (spec && sscanf(spec, "%ld:%d:%d", &step, &rank, &signo) == 3) {
        trainer->fault.signal_step = step;
        trainer->fault.signal_rank = rank;
        trainer->fault.signal_number = signo;
    }
    spec = getenv("DPTRAIN_INJECT_CORRUPT");
    if (spec && sscanf(spec, "%ld:%d", &step, &rank) == 2) {
        trainer->fault.corrupt_step = step;
        trainer->fault.corrupt_rank = rank;
    }
}

/* The exit status of a failure every rank agreed on: bad input (a file,
 * the config, a checkpoint, an output that cannot be written) is 2. */
static int exit_status_of(dpt_status st)
{
    switch (st) {
    case DPT_ERR_CONFIG:
    case DPT_ERR_SHAPE:
    case DPT_ERR_FORMAT:
    case DPT_ERR_IO: return EXIT_USAGE;
    default: return EXIT_RUNTIME;
    }
}

/* The first SIGTERM, SIGINT or SIGUSR1 asks for a stop at the next step.
 * A second SIGTERM or SIGINT while that stop is pending ends the process
 * the default way (^C twice; mpirun's own abort of a failed job; the
 * checkpoint, written atomically, cannot be corrupted by it). */
static void on_stop_signal(int signo)
{
    if ((signo == SIGTERM || signo == SIGINT) && dpt_stop_requested()) {
        signal(signo, SIG_DFL);
        raise(signo); /* delivered when this handler returns */
        return;
    }
    dpt_request_stop(signo);
}

/* Only while training (and resuming) do the stop signals mean "checkpoint
 * and stop": before and after, SIGTERM and SIGINT keep their default
 * action, so that mpirun can end a job whose set-up failed at once. */
static void catch_stop_signals(int catch)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = catch ? on_stop_signal : SIG_DFL;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    /* a late SIGUSR1 (a batch system repeating it) must not kill the exit */
    action.sa_handler = catch ? on_stop_signal : SIG_IGN;
    sigaction(SIGUSR1, &action, NULL);
}

/* A file-size limit must fail a write (EFBIG) rather than kill the
 * process; SIGUSR1 (Slurm's --signal) must not kill it before training. */
static void install_signal_handlers(void)
{
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
}

/* --resume: every rank continues from the same checkpoint. */
static dpt_status resume(const dpt_comm *comm, dpt_trainer *trainer, const char *spec)
{
    char path[2 * DPT_PATH_MAX];
    dpt_status st = dpt_trainer_resume(trainer, spec, path, sizeof path);
    if (st == DPT_OK && comm->rank == 0) {
        if (path[0]) printf("resuming from %s at step %ld\n", path, trainer->step);
        else printf("no checkpoint in %s: starting from scratch\n", trainer->cfg->checkpoint.dir);
        fflush(stdout);
    }
    return st;
}

/* ---------------------------------------------------------------- bagging */

/* Rank 0 opens the base metrics file for the ensemble record before
 * training, so that a bad path stops every rank before any work. */
static dpt_status open_ensemble_metrics(const dpt_comm *comm, const dpt_config *cfg, FILE **out)
{
    dpt_status st = DPT_OK;
    *out = NULL;
    if (comm->rank == 0 && cfg->log.metrics[0] != '\0') {
        *out = fopen(cfg->log.metrics, "w");
        if (!*out)
            st = DPT_FAIL(DPT_ERR_IO, "cannot write the metrics file %s ([log] metrics): %s",
                          cfg->log.metrics, strerror(errno));
    }
    return dpt_agree_status(comm, st, NULL);
}

static void print_ensemble_header(const dpt_config *cfg, int ranks)
{
    int k = cfg->ensemble.members, per = ranks / k;
    char first[DPT_PATH_MAX + 16] = "";
    if (cfg->log.metrics[0] != '\0' &&
        dpt_ensemble_member_path(cfg->log.metrics, 0, first, sizeof first) == DPT_OK)
        printf("ensemble: %d members x %d rank%s, %s; member 0's progress follows; "
               "member metrics in %s, ...\n", k, per, per > 1 ? "s" : "",
               cfg->ensemble.bootstrap ? "each on its own bootstrap resample" : "each on the whole "
               "training set", first);
    else
        printf("ensemble: %d members x %d rank%s, %s; member 0's progress follows\n", k, per,
               per > 1 ? "s" : "", cfg->ensemble.bootstrap ? "each on its own bootstrap resample"
               : "each on the whole training set");
    fflush(stdout);
}

static void print_ensemble_table(const dpt_ensemble_report *r)
{
    printf("\nensemble of %d members (bagging, Goodfellow et al. 7.11), test set of %ld samples:\n",
           r->members, r->test_samples);
    printf("%-10s %10s %10s %9s %8s %9s\n", "member", "test error", "test loss", "distinct",
           "steps", "train s");
    for (int m = 0; m < r->members; m++) {
        const dpt_ensemble_member *e = &r->member[m];
        printf("%-10d %10.4f %10.4f %9.3f %8ld %9.1f\n", m, e->test_error, e->test_loss,
               e->distinct_fraction, e->steps, e->train_seconds);
    }
    printf("%-10s %10.4f %10.4f\n", "mean", r->mean_member_error, r->mean_member_loss);
    printf("%-10s %10.4f %10.4f\n", "ensemble", r->ensemble_error, r->ensemble_loss);
    printf("parameters stored: %d x %zu = %zu; training time %.1f s (members in parallel, "
           "%d rank%s each), %.1f s in all\n", r->members, r->params_per_member,
           (size_t)r->members * r->params_per_member, r->train_seconds, r->ranks_per_member,
           r->ranks_per_member > 1 ? "s" : "", r->wall_seconds);
    fflush(stdout);
}

/* One JSON line {"type":"ensemble",...} with everything the table shows. */
static void write_ensemble_record(FILE *file, const dpt_config *cfg, const dpt_ensemble_report *r)
{
    cJSON *rec = cJSON_CreateObject();
    if (!rec) return;
    cJSON_AddStringToObject(rec, "type", "ensemble");
    cJSON_AddNumberToObject(rec, "members", r->members);
    cJSON_AddNumberToObject(rec, "ranks_per_member", r->ranks_per_member);
    cJSON_AddBoolToObject(rec, "bootstrap", r->bootstrap);
    cJSON_AddNumberToObject(rec, "parameters_per_member", (double)r->params_per_member);
    cJSON_AddNumberToObject(rec, "parameters_stored", (double)r->members * (double)r->params_per_member);
    cJSON_AddNumberToObject(rec, "train_s", r->train_seconds);
    cJSON_AddNumberToObject(rec, "total_s", r->wall_seconds);
    cJSON_AddNumberToObject(rec, "test_samples", (double)r->test_samples);
    cJSON_AddNumberToObject(rec, "mean_member_error", r->mean_member_error);
    cJSON_AddNumberToObject(rec, "mean_member_loss", r->mean_member_loss);
    cJSON_AddNumberToObject(rec, "ensemble_error", r->ensemble_error);
    cJSON_AddNumberToObject(rec, "ensemble_loss", r->ensemble_loss);
    cJSON_AddNumberToObject(rec, "ensemble_accuracy", 1 - r->ensemble_error);
    cJSON *list = cJSON_AddArrayToObject(rec, "member");
    for (int m = 0; list && m < r->members; m++) {
        const dpt_ensemble_member *e = &r->member[m];
        cJSON *one = cJSON_CreateObject();
        char seed[32], path[DPT_PATH_MAX + 16];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)e->seed); /* 64 bits: not a double */
        cJSON_AddNumberToObject(one, "member", m);
        cJSON_AddStringToObject(one, "seed", seed);
        cJSON_AddNumberToObject(one, "test_error", e->test_error);
        cJSON_AddNumberToObject(one, "test_loss", e->test_loss);
        cJSON_AddNumberToObject(one, "distinct_fraction", e->distinct_fraction);
        cJSON_AddNumberToObject(one, "steps", (double)e->steps);
        cJSON_AddNumberToObject(one, "train_s", e->train_seconds);
        if (dpt_ensemble_member_path(cfg->log.metrics, m, path, sizeof path) == DPT_OK)
            cJSON_AddStringToObject(one, "metrics", path);
        cJSON_AddItemToArray(list, one);
    }
    char *text = cJSON_PrintUnformatted(rec);
    if (text) {
        fprintf(file, "%s\n", text);
        cJSON_free(text);
    }
    cJSON_Delete(rec);
}

/* [ensemble] members > 1: the members train on groups of ranks; rank 0
 * prints the table and writes the record. The exit status follows the
 * plain run's rules. */
static int run_ensemble(const dpt_comm *comm, const dpt_config *cfg, const dpt_dataset *train_set,
                        const dpt_dataset *test_set)
{
    FILE *metrics = NULL;
    dpt_status st = open_ensemble_metrics(comm, cfg, &metrics);
    if (st != DPT_OK) {
        return exit_status_of(print_agreed_error(comm, st));
    }
    if (comm->rank == 0) print_ensemble_header(cfg, comm->size);
    dpt_ensemble_report report;
    st = dpt_ensemble_run(cfg, comm->comm, train_set, test_set, &report);
    if (st != DPT_OK && !report.agreed) dpt_abort(comm, EXIT_RUNTIME); /* ranks mid-collective */
    if (st == DPT_OK && comm->rank == 0) {
        print_ensemble_table(&report);
        if (metrics) write_ensemble_record(metrics, cfg, &report);
    }
    if (metrics) fclose(metrics);
    dpt_ensemble_report_free(&report);
    if (st == DPT_OK) return EXIT_SUCCESS;
    return exit_status_of(print_agreed_error(comm, st));
}

/* The files a run opens at its start (rank 0): the metrics file and the
 * diagnostics file. Those this run creates are removed again when it fails
 * before its first step, so that bad input (a checkpoint that does not
 * verify, an unwritable checkpoint directory, ...) leaves nothing behind. */
typedef struct new_outputs {
    const char *path[2];
    int n;
} new_outputs;

static void note_new_outputs(const dpt_comm *comm, const dpt_config *cfg, new_outputs *out)
{
    out->n = 0;
    if (comm->rank != 0) return;
    const char *paths[2] = {cfg->log.metrics, cfg->diag.every > 0 ? cfg->diag.file : ""};
    for (int i = 0; i < 2; i++)
        if (paths[i][0] != '\0' && access(paths[i], F_OK) != 0 && errno == ENOENT)
            out->path[out->n++] = paths[i];
}

static void remove_new_outputs(const new_outputs *out)
{
    for (int i = 0; i < out->n; i++) remove(out->path[i]); /* (not made at all: ENOENT, fine) */
}

static int run_train(const dpt_comm *comm, const dpt_config *cfg, const char *source,
                     const char *resume_spec)
{
    int bagging = cfg->ensemble.members > 1;
    if (bagging && resume_spec) {
        if (comm->rank == 0)
            fprintf(stderr, "dptrain: error: --resume is not supported with [ensemble] members > 1 "
                    "(each member checkpoints into its own directory; resume them one by one)\n");
        return EXIT_USAGE;
    }
    /* before reading any data: a pure function of (k, ranks), so every rank
     * decides alike and rank 0 alone says it */
    if (bagging && dpt_ensemble_check_ranks(cfg->ensemble.members, comm->size) != DPT_OK) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return EXIT_USAGE;
    }
    dpt_status st;
    dpt_dataset train_set, test_set;
    memset(&train_set, 0, sizeof train_set);
    memset(&test_set, 0, sizeof test_set);
    st = dpt_agree_status(comm, load_data(cfg, &train_set, &test_set), NULL);
    if (bagging && st == DPT_OK) {
        int status = run_ensemble(comm, cfg, &train_set, &test_set);
        dpt_dataset_free(&train_set);
        dpt_dataset_free(&test_set);
        return status;
    }
    dpt_trainer trainer;
    new_outputs fresh;
    note_new_outputs(comm, cfg, &fresh);
    if (st == DPT_OK) {
        st = dpt_trainer_create(&trainer, cfg, comm->comm, &train_set);
        if (st == DPT_ERR_SHAPE) st = model_misfit(st, source, cfg, &train_set);
    }
    if (st != DPT_OK) {
        st = print_agreed_error(comm, st);
        remove_new_outputs(&fresh);
        dpt_dataset_free(&train_set);
        dpt_dataset_free(&test_set);
        return exit_status_of(st);
    }
    dpt_run_report report;
    memset(&report, 0, sizeof report);
    set_fault(&trainer);
    catch_stop_signals(1);
    if (resume_spec) st = resume(comm, &trainer, resume_spec);
    int second_order = dpt_optim_is_second_order(cfg->optim.method);
    long first_step = trainer.step;
    int untrained = st != DPT_OK;
    if (st == DPT_OK) {
        st = second_order ? dpt_trainer_solve(&trainer, &test_set, &report)
                          : dpt_trainer_run(&trainer, &test_set, &report);
        /* the run's checks before its first step (checkpoint directory,
         * metrics file) failed */
        untrained = st != DPT_OK && !second_order && trainer.step == first_step;
    }
    catch_stop_signals(0);
/* mid-run failures that not every rank saw: others may be in a collective */
    if (st != DPT_OK && st != DPT_ERR_NUMERIC && !trainer.agreed_failure) dpt_abort(comm, EXIT_RUNTIME);
    if (st != DPT_OK) st = print_agreed_error(comm, st); /* agreed: every rank is here */
    dpt_trainer_destroy(&trainer);
    if (untrained) remove_new_outputs(&fresh);
    dpt_dataset_free(&train_set);
    dpt_dataset_free(&test_set);
    if (st == DPT_ERR_NUMERIC) return EXIT_RUNTIME;
    if (st != DPT_OK) return exit_status_of(st);
    return report.stopped ? EXIT_STOPPED : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    /* FUNNELED: only the main thread calls MPI, but the watchdog's thread
     * may call MPI_Abort when a collective hangs */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    install_signal_handlers();
    dpt_comm comm;
    if (dpt_comm_wrap(&comm, MPI_COMM_WORLD) != DPT_OK) dpt_abort(&comm, EXIT_RUNTIME);
    cli_args args;
    int status = EXIT_SUCCESS;
    if (parse_args(&args, argc, argv) != 0) {
        if (comm.rank == 0) {
            fprintf(stderr, "dptrain: error: %s\n", args.error);
            print_usage(stderr);
        }
        status = EXIT_USAGE;
    } else if (args.help) {
        if (comm.rank == 0) {
            print_usage(stdout);
            printf("\n");
            dpt_config_print_keys(stdout);
        }
    } else if (args.version) {
        if (comm.rank == 0) printf("dptrain %s (%s precision)\n", DPT_VERSION_STRING, DPT_REAL_NAME);
    } else {
        static dpt_config cfg; /* large (layer tables): not on the stack */
        status = load_config(&comm, &args, &cfg);
        if (status == EXIT_SUCCESS && !strcmp(args.command, "inspect")) {
            status = run_inspect(&comm, &cfg);
        } else if (status == EXIT_SUCCESS) {
            if (dpt_watchdog_start(cfg.reliability.watchdog_seconds, comm.rank) != DPT_OK && comm.rank == 0)
                fprintf(stderr, "dptrain: warning: %s; running without it\n", dpt_error_message());
            status = run_train(&comm, &cfg, args.config_path ? args.config_path : "<built-in default config>",
                               args.resume);
            dpt_watchdog_stop();
        }
    }
    MPI_Finalize();
    return status;
}
