/* dptrain: the command-line program.
 *
 *   dptrain train   [CONFIG] [--set section.key=value ...] [--resume auto|PATH] [--dry-run]
 *   dptrain eval    CHECKPOINT [--features FILE --labels FILE] [--json] ...
 *   dptrain predict CHECKPOINT --output FILE.npy|FILE.csv [--features FILE] ...
 *   dptrain inspect [CONFIG] [--ranks N] ...
 *   dptrain export  CHECKPOINT --output DIR|FILE.safetensors ...
 *   dptrain help [COMMAND | config [--markdown]]  |  dptrain COMMAND --help
 *
 * Exit status: 0 success; 1 runtime failure (MPI, numerics, a rank lost);
 * 2 bad input: usage, configuration, data, checkpoint, an unwritable
 * output or checkpoint file (a full disk included); 3 stopped by SIGTERM,
 * SIGINT or SIGUSR1 after writing a checkpoint: requeue the job and resume
 * with --resume auto. Every rank parses the same arguments and config text
 * (rank 0 reads the file and broadcasts it), so every rank reaches the same
 * verdict, rank 0 alone prints it, and all ranks exit together.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <cblas.h>
#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ---------------------------------------------------------------- commands */

enum { C_TRAIN = 1, C_EVAL = 2, C_PREDICT = 4, C_INSPECT = 8, C_EXPORT = 16, C_HELP = 32 };
#define C_FROM_CHECKPOINT (C_EVAL | C_PREDICT | C_EXPORT)

typedef struct command {
    const char *name;
    int bit;
    const char *synopsis; /* after "dptrain NAME " */
    const char *about;    /* what it does, shown by NAME --help */
} command;

static const command commands[] = {
    {"train", C_TRAIN, "[CONFIG] [--set section.key=value ...] [--resume auto|PATH] [--dry-run]",
     "Trains a network data-parallel over the MPI ranks (start it with mpirun, srun or launch/):\n"
     "every rank computes gradients on its slice of each global batch, one allreduce sums\n"
     "them, and every rank applies the same update. Without CONFIG the built-in default\n"
     "(configs/default.ini: an MLP on Fashion-MNIST) is used.\n"
     "--resume PATH continues from a checkpoint; --resume auto from the newest one in\n"
     "[checkpoint] dir that verifies (none: from scratch). SIGTERM, SIGINT or SIGUSR1\n"
     "stop every rank at the next step with a checkpoint (exit status 3).\n"
     "--dry-run checks the config, the data, the model (and the checkpoint to resume\n"
     "from) and prints the plan: steps, global batch, outputs, memory per rank.\n"
     "[ensemble] members = k > 1 trains k bagged members on ranks/k ranks each."},
    {"eval", C_EVAL, "CHECKPOINT [--features FILE --labels FILE] [--head NAME] [--json] [--config CONFIG]",
     "Evaluates a checkpoint on a data set (default: the test set of the config the\n"
     "checkpoint was trained with): loss, accuracy, per-class recall and the confusion\n"
     "matrix (rows: true label, columns: predicted). Each rank evaluates its share.\n"
     "--json prints one JSON object instead of the table."},
    {"predict", C_PREDICT, "CHECKPOINT --output FILE [--features FILE] [--format npy|csv] [--head NAME]",
     "Writes class probabilities (softmax or sigmoid of the output) of every sample of\n"
     "--features (default: the config's test set) to FILE: .npy holds an N x K array\n"
     "(float32, or float64 from a double-precision build); .csv a header line, then per\n"
     "sample the predicted class and the K probabilities. Each rank predicts its share;\n"
     "rank 0 writes the file."},
    {"inspect", C_INSPECT, "[CONFIG] [--ranks N] [--set section.key=value ...]",
     "Prints every layer's output shape, parameters, bytes and FLOPs per sample, and the\n"
     "memory one rank needs with N ranks (default: the ranks it runs on), reading only\n"
     "the data files' headers."},
    {"export", C_EXPORT, "CHECKPOINT --output DIR|FILE.safetensors [--format npy|safetensors]",
     "Writes the trained weights layer by layer: one .npy file per tensor in DIR (NumPy:\n"
     "np.load) with manifest.json listing names, shapes and layers, or one safetensors\n"
     "file. Dense weights are (outputs, inputs); convolution weights (filters, channels,\n"
     "kh, kw); batch norm has gamma, beta, running_mean, running_var."},
    {"help", C_HELP, "[COMMAND | config [--markdown]]",
     "Shows a command's help, or with `config` every configuration key with its type,\n"
     "default and range (--markdown: as the README's table)."},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static const command *find_command(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* ---------------------------------------------------------------- options */

typedef struct option {
    const char *name;
    int commands;           /* where it is allowed */
    size_t offset;          /* of a const char * in cli_args; (size_t)-1: handled below */
    const char *value_name; /* NULL: a flag */
    const char *help;
} option;

#define ARG(field) offsetof(cli_args, field)
#define SPECIAL ((size_t)-1)
static const option options[] = {
    {"--set", C_TRAIN | C_INSPECT | C_FROM_CHECKPOINT, SPECIAL, "section.key=value",
     "override one config key (repeatable; dptrain help config lists them)"},
    {"--resume", C_TRAIN, ARG(resume), "auto|PATH",
     "continue from a checkpoint, or the newest valid one in [checkpoint] dir"},
    {"--dry-run", C_TRAIN, SPECIAL, NULL, "check everything and print the plan; train nothing"},
    {"--config", C_FROM_CHECKPOINT, ARG(config_path), "CONFIG",
     "use this config instead of the one stored in the checkpoint"},
    {"--features", C_EVAL | C_PREDICT, ARG(features), "FILE",
     "samples to use instead of the config's test set (IDX, .npy or CSV)"},
    {"--images", C_EVAL | C_PREDICT, ARG(features), "FILE", "the same as --features"},
    {"--labels", C_EVAL, ARG(labels), "FILE", "labels of --features"},
    {"--output", C_PREDICT | C_EXPORT, ARG(output), "PATH",
     "predict: FILE.npy or FILE.csv; export: a directory (npy) or FILE.safetensors"},
    {"-o", C_PREDICT | C_EXPORT, ARG(output), "PATH", "the same as --output"},
    {"--format", C_PREDICT | C_EXPORT, ARG(format), "FORMAT",
     "npy or csv (predict), npy or safetensors (export); default: from --output"},
    {"--head", C_EVAL | C_PREDICT, ARG(head), "NAME", "the head to report (default: the first)"},
    {"--json", C_EVAL, SPECIAL, NULL, "one JSON object instead of the table"},
    {"--ranks", C_INSPECT, SPECIAL, "N", "estimate the memory per rank for N ranks"},
    {"--markdown", C_HELP, SPECIAL, NULL, "config keys as Markdown tables"},
};
#define N_OPTIONS ((int)(sizeof options / sizeof options[0]))

static int fail(cli_args *args, const char *format, const char *a, const char *b)
{
    snprintf(args->error, sizeof args->error, format, a, b);
    return -1;
}

/* --name VALUE or --name=VALUE; *i advances past a separate value. */
static int option_value(cli_args *args, const option *o, const char *arg, int argc, char **argv, int *i,
                        const char **value)
{
    size_t len = strlen(o->name);
    *value = NULL;
    if (arg[len] == '=') *value = arg + len + 1;
    else if (!o->value_name) return 0;
    else if (*i + 1 < argc) *value = argv[++*i];
    if (!o->value_name) return fail(args, "%s takes no value", o->name, "");
    if (!*value || !(*value)[0]) return fail(args, "%s needs %s", o->name, o->value_name);
    return 0;
}

static int apply_option(cli_args *args, const option *o, const char *value)
{
    if (o->offset != SPECIAL) {
        *(const char **)((char *)args + o->offset) = value;
    } else if (!strcmp(o->name, "--set")) {
        if (args->n_overrides == CLI_MAX_OVERRIDES) return fail(args, "more than %s --set options", "256", "");
        args->overrides[args->n_overrides++] = value;
    } else if (!strcmp(o->name, "--ranks")) {
        char *end;
        long n = strtol(value, &end, 10);
        if (*end || n < 1 || n > 1000000) return fail(args, "--ranks needs a rank count >= 1, not '%s'", value, "");
        args->ranks = (int)n;
    } else if (!strcmp(o->name, "--dry-run")) args->dry_run = 1;
    else if (!strcmp(o->name, "--json")) args->json = 1;
    else if (!strcmp(o->name, "--markdown")) args->markdown = 1;
    return 0;
}

static const option *find_option(const char *arg)
{
    for (int k = 0; k < N_OPTIONS; k++) {
        size_t len = strlen(options[k].name);
        if (!strncmp(arg, options[k].name, len) && (arg[len] == '\0' || arg[len] == '='))
            return &options[k];
    }
    return NULL;
}

/* A positional argument: the command, then CONFIG or CHECKPOINT or TOPIC. */
static int positional(cli_args *args, const command **cmd, const char *arg)
{
    if (!*cmd) {
        if (!(*cmd = find_command(arg)))
            return fail(args, "unknown command '%s' (commands: train, eval, predict, inspect, export, help)",
                        arg, "");
        args->command = (*cmd)->name;
    } else if ((*cmd)->bit & C_FROM_CHECKPOINT && !args->checkpoint) {
        args->checkpoint = arg;
    } else if ((*cmd)->bit & (C_TRAIN | C_INSPECT) && !args->config_path) {
        args->config_path = arg;
    } else if ((*cmd)->bit == C_HELP && !args->topic) {
        args->topic = arg;
    } else {
        return fail(args, "unexpected argument '%s'", arg, "");
    }
    return 0;
}

static int parse_args(cli_args *args, int argc, char **argv)
{
    memset(args, 0, sizeof *args);
    const command *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) args->help = 1;
        else if (!strcmp(arg, "--version")) args->version = 1;
        else if (arg[0] == '-' && arg[1] != '\0') {
            const option *o = find_option(arg);
            if (!o) return fail(args, "unknown option '%s'%s", arg, cmd ? "" : " (options follow the command)");
            if (!cmd || !(o->commands & cmd->bit))
                return fail(args, "option %s does not apply to %s", o->name, cmd ? cmd->name : "no command");
            const char *value;
            if (option_value(args, o, arg, argc, argv, &i, &value) != 0 || apply_option(args, o, value) != 0)
                return -1;
        } else if (positional(args, &cmd, arg) != 0) {
            return -1;
        }
    }
    if (args->help || args->version) return 0;
    if (!cmd) return fail(args, "no command given", "", "");
    if (cmd->bit & C_FROM_CHECKPOINT && !args->checkpoint)
        return fail(args, "%s needs a CHECKPOINT (a file in the run's [checkpoint] dir)", cmd->name, "");
    if (cmd->bit & (C_PREDICT | C_EXPORT) && !args->output)
        return fail(args, "%s needs --output %s", cmd->name,
                    cmd->bit == C_PREDICT ? "FILE.npy or FILE.csv" : "DIR or FILE.safetensors");
    if (args->labels && !args->features) return fail(args, "--labels needs --features too", "", "");
    return 0;
}

/* ---------------------------------------------------------------- help */

static void print_overview(FILE *out)
{
    fprintf(out, "usage:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  dptrain %-7s %s\n", commands[i].name, commands[i].synopsis);
    fprintf(out, "  dptrain --version\n"
                 "\n"
                 "dptrain trains neural networks data-parallel over MPI ranks. Start it with mpirun\n"
                 "(mpirun -n 2 dptrain train), srun inside Slurm (launch/slurm/), or the scripts in\n"
                 "launch/ (local.sh -n 2 train; hostfile.sh for hosts over ssh).\n"
                 "`dptrain COMMAND --help` explains a command; `dptrain help config` lists every\n"
                 "configuration key. --set section.key=value overrides one key, e.g.\n"
                 "--set train.epochs=5 --set optim.lr=0.1.\n"
                 "\n"
                 "Exit status: 0 success, 1 runtime error, 2 bad input (usage, configuration, data,\n"
                 "checkpoint, unwritable output), 3 stopped by a signal after a checkpoint.\n");
}

static void print_command_help(const command *cmd, FILE *out)
{
    fprintf(out, "usage: dptrain %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->about);
    int any = 0;
    for (int k = 0; k < N_OPTIONS; k++) {
        if (!(options[k].commands & cmd->bit)) continue;
        if (!any++) fprintf(out, "\noptions:\n");
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", options[k].name, options[k].value_name ? " " : "",
                 options[k].value_name ? options[k].value_name : "");
        fprintf(out, "  %-26s %s\n", left, options[k].help);
    }
    if (cmd->bit & C_FROM_CHECKPOINT)
        fprintf(out, "\nThe model and data settings come from the config stored in CHECKPOINT (or\n"
                     "--config CONFIG); --set changes them, e.g. --set data.dir=/scratch/fmnist.\n"
                     "Relative --features/--labels/--output paths are taken from the working directory.\n");
    fprintf(out, "\nExit status: 0 success, 1 runtime error, 2 bad input%s.\n",
            cmd->bit == C_TRAIN ? ", 3 stopped by a signal after a checkpoint" : "");
}

static int run_help(const cli_args *args)
{
    if (!args->topic) {
        print_overview(stdout);
    } else if (!strcmp(args->topic, "config")) {
        if (args->markdown) dpt_config_print_keys_markdown(stdout);
        else dpt_config_print_keys(stdout);
    } else {
        const command *cmd = find_command(args->topic);
        if (!cmd) {
            fprintf(stderr, "dptrain: error: no help on '%s' (topics: train, eval, predict, inspect, "
                    "export, config)\n", args->topic);
            return EXIT_USAGE;
        }
        print_command_help(cmd, stdout);
    }
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- main */

/* Options that stand for config keys (--features FILE is data.test_images)
 * become overrides after the user's own --set; file names given on the
 * command line are taken from the working directory, not from [data] dir. */
static int add_implied_overrides(cli_args *args, char storage[2][PATH_MAX + 32])
{
    const char *keys[2] = {"data.test_images", "data.test_labels"};
    const char *files[2] = {args->features, args->labels};
    for (int i = 0; i < 2; i++) {
        if (!files[i]) continue;
        char cwd[PATH_MAX] = "";
        if (files[i][0] != '/' && !getcwd(cwd, sizeof cwd))
            return fail(args, "cannot resolve %s: the working directory is unknown", files[i], "");
        int n = snprintf(storage[i], PATH_MAX + 32, "%s=%s%s%s", keys[i], cwd, cwd[0] ? "/" : "", files[i]);
        if (n >= PATH_MAX + 32) return fail(args, "path too long: %s", files[i], "");
        args->overrides[args->n_overrides++] = storage[i];
    }
    return 0;
}

static int run_command(const dpt_comm *comm, cli_args *args)
{
    static dpt_config cfg; /* large (layer tables): not on the stack */
    const command *cmd = find_command(args->command);
    if (cmd->bit == C_HELP) return comm->rank == 0 ? run_help(args) : EXIT_SUCCESS;
    char storage[2][PATH_MAX + 32];
    if (add_implied_overrides(args, storage) != 0) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", args->error);
        return EXIT_USAGE;
    }
    int status = cmd->bit & C_FROM_CHECKPOINT ? cli_load_checkpoint_config(comm, args, &cfg)
                                              : cli_load_config(comm, args->config_path, args, &cfg);
    if (status != EXIT_SUCCESS) return status;
    switch (cmd->bit) {
    case C_TRAIN: return cli_train(comm, args, &cfg);
    case C_INSPECT: return cli_inspect(comm, args, &cfg);
    case C_EVAL: return cli_eval(comm, args, &cfg);
    case C_PREDICT: return cli_predict(comm, args, &cfg);
    default: return cli_export(comm, args, &cfg);
    }
}

/* One BLAS thread per core a rank has to itself, unless the user chose
 * (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS). OpenBLAS
 * starts a thread per core it may run on: ranks bound to cores get one
 * each, but unbound ranks (mpirun --bind-to none, or more ranks than cores,
 * where mpirun binds nothing) would each start one per core of the node,
 * ranks x cores threads fighting over the cores and stalling each GEMM. */
static void match_blas_threads(void)
{
    if (getenv("OPENBLAS_NUM_THREADS") || getenv("GOTO_NUM_THREADS") || getenv("OMP_NUM_THREADS"))
        return;
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    cpu_set_t mask;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : (int)cores;
    int share = cores / local > 1 ? (int)(cores / local) : 1;
    int threads = mine < share ? mine : share;
    if (threads >= 1 && threads < openblas_get_num_threads()) openblas_set_num_threads(threads);
}

int main(int argc, char **argv)
{
    /* FUNNELED: only the main thread calls MPI, but the watchdog's thread
     * may call MPI_Abort when a collective hangs */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    /* a file-size limit must fail a write (EFBIG) rather than kill the
     * process; SIGUSR1 (Slurm's --signal) must not kill it before training */
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    match_blas_threads();
    dpt_comm comm;
    if (dpt_comm_wrap(&comm, MPI_COMM_WORLD) != DPT_OK) dpt_abort(&comm, EXIT_RUNTIME);
    cli_args args;
    int status = EXIT_SUCCESS;
    if (parse_args(&args, argc, argv) != 0) {
        if (comm.rank == 0) {
            fprintf(stderr, "dptrain: error: %s\n", args.error);
            const command *cmd = args.command ? find_command(args.command) : NULL;
            if (cmd) fprintf(stderr, "usage: dptrain %s %s\n(see dptrain %s --help)\n", cmd->name,
                             cmd->synopsis, cmd->name);
            else fprintf(stderr, "(see dptrain --help)\n");
        }
        status = EXIT_USAGE;
    } else if (args.version) {
        if (comm.rank == 0) printf("dptrain %s (%s precision)\n", DPT_VERSION_STRING, DPT_REAL_NAME);
    } else if (args.help) {
        if (comm.rank == 0) {
            const command *cmd = args.command ? find_command(args.command) : NULL;
            if (cmd && cmd->bit != C_HELP) print_command_help(cmd, stdout);
            else print_overview(stdout);
        }
    } else {
        status = run_command(&comm, &args);
    }
    MPI_Finalize();
    return status;
}
