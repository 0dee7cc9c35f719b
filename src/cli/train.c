/* dptrain train: data-parallel training (or bagging with [ensemble]
 * members > 1), stop signals that checkpoint, --resume, and --dry-run,
 * which checks the config, the data, the model and the checkpoint to
 * resume from and prints the plan without training. */
#include <cJSON.h>
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "inspect.h"
#include "dpt/ensemble.h"
#include "dpt/train.h"
#include "dpt/watchdog.h"

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
        return cli_exit_status_of(cli_print_agreed_error(comm, st));
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
    return cli_exit_status_of(cli_print_agreed_error(comm, st));
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

/* ---------------------------------------------------------------- --dry-run */

static void set_size_of(const dpt_dataset *set, cli_set_size *size)
{
    size->samples = set->n_samples;
    size->features = set->n_features;
    size->feature_bytes = dpt_dataset_feature_size(set->feature_type);
}

static void print_data_line(const char *what, const dpt_config *cfg, const char *features,
                            const dpt_dataset *set)
{
    char path[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, features, path, sizeof path);
    printf("%-11s %s: %zu samples of %dx%dx%d, labels 0..%d\n", what, path, set->n_samples, set->shape[0],
           set->shape[1], set->shape[2], set->n_classes - 1);
}

static void print_outputs(const dpt_config *cfg)
{
    printf("%-11s metrics %s; diagnostics %s\n", "outputs", cfg->log.metrics[0] ? cfg->log.metrics : "off",
           cfg->diag.every > 0 && cfg->diag.file[0] ? cfg->diag.file : "off");
    if (cfg->checkpoint.dir[0] == '\0') {
        printf("%-11s off (no [checkpoint] dir: a stop signal ends the run without one)\n", "checkpoints");
        return;
    }
    char every[64] = "", seconds[64] = "";
    if (cfg->checkpoint.every > 0) snprintf(every, sizeof every, "every %ld steps, ", cfg->checkpoint.every);
    if (cfg->checkpoint.every_seconds > 0)
        snprintf(seconds, sizeof seconds, "every %.0f s, ", cfg->checkpoint.every_seconds);
    printf("%-11s %s/: %s%s%son a stop signal; the newest %d kept\n", "checkpoints", cfg->checkpoint.dir,
           every, seconds, cfg->checkpoint.at_end ? "at the end, " : "", cfg->checkpoint.keep);
}

/* Rank 0 prints what `train` would do; nothing is trained or written. */
static int dry_run_plan(const dpt_comm *comm, dpt_trainer *t, const char *source, const char *resume_spec,
                        const dpt_dataset *train_set, const dpt_dataset *test_set)
{
    dpt_status st = resume_spec ? resume(comm, t, resume_spec) : DPT_OK;
    if (st != DPT_OK) return cli_exit_status_of(cli_print_agreed_error(comm, st));
    if (comm->rank != 0) return EXIT_SUCCESS;
    const dpt_config *cfg = t->cfg;
    char model[1024], bytes[32];
    dpt_layer_list_format(cfg->model.spec.trunk, cfg->model.spec.n_trunk, model, sizeof model);
    cli_human_bytes(bytes, sizeof bytes, (double)t->model.n_params * sizeof(dpt_real));
    printf("dry run of %s: the config, the data and the model check out; nothing is trained or written\n",
           source);
    print_data_line("training", cfg, cfg->data.train_images, train_set);
    print_data_line("test", cfg, cfg->data.test_images, test_set);
    printf("%-11s %s%s: %zu parameters (%s, %s), %.3g FLOPs per sample forward\n", "model", model,
           cfg->model.spec.n_heads ? " + heads" : "", t->model.n_params, bytes, DPT_REAL_NAME,
           dpt_model_flops_per_sample(&t->model));
    printf("%-11s %d rank%s x batch %d = global batch %zu\n", "ranks", comm->size, comm->size > 1 ? "s" : "",
           cfg->train.batch_size, t->plan.global_batch);
    if (dpt_optim_is_second_order(cfg->optim.method))
        printf("%-11s %s on %zu samples to its stopping rule\n", "optimizer",
               dpt_optim_method_name(cfg->optim.method), dpt_trainer_solve_batch(t));
    else
        printf("%-11s %s, lr %g; %d epoch%s x %zu steps%s: %ld steps%s\n", "optimizer",
               dpt_optim_method_name(cfg->optim.method), cfg->optim.lr, cfg->train.epochs,
               cfg->train.epochs > 1 ? "s" : "", t->plan.steps_per_epoch,
               cfg->train.max_steps > 0 ? " (capped by max_steps)" : "", t->total_steps,
               t->step > 0 ? ", resuming after the checkpoint's step" : "");
    if (t->step > 0) printf("%-11s from step %ld of %ld\n", "resume", t->step, t->total_steps);
    if (cfg->ensemble.members > 1)
        printf("%-11s %d members x %d rank%s, %s (the lines above are for one member's network)\n",
               "ensemble", cfg->ensemble.members, comm->size / cfg->ensemble.members,
               comm->size / cfg->ensemble.members > 1 ? "s" : "",
               cfg->ensemble.bootstrap ? "each on its own bootstrap resample" : "each on the whole training set");
    print_outputs(cfg);
    cli_set_size train_size, test_size;
    set_size_of(train_set, &train_size);
    set_size_of(test_set, &test_size);
    cli_memory mem;
    cli_memory_estimate(&t->model, cfg, comm->size, &train_size, &test_size, &mem);
    cli_print_memory(cfg, comm->size, &mem);
    fflush(stdout);
    return EXIT_SUCCESS;
}

static int train(const dpt_comm *comm, const dpt_config *cfg, const char *source,
                 const char *resume_spec, int dry_run)
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
    st = dpt_agree_status(comm, cli_load_data(cfg, &train_set, &test_set), NULL);
    if (bagging && st == DPT_OK && !dry_run) {
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
        if (st == DPT_ERR_SHAPE) st = cli_model_misfit(st, source, cfg, &train_set);
    }
    if (st != DPT_OK) {
        st = cli_print_agreed_error(comm, st);
        remove_new_outputs(&fresh);
        dpt_dataset_free(&train_set);
        dpt_dataset_free(&test_set);
        return cli_exit_status_of(st);
    }
    dpt_run_report report;
    memset(&report, 0, sizeof report);
    if (dry_run) {
        int status = dry_run_plan(comm, &trainer, source, resume_spec, &train_set, &test_set);
        dpt_trainer_destroy(&trainer);
        remove_new_outputs(&fresh);
        dpt_dataset_free(&train_set);
        dpt_dataset_free(&test_set);
        return status;
    }
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
    if (st != DPT_OK) st = cli_print_agreed_error(comm, st); /* agreed: every rank is here */
    dpt_trainer_destroy(&trainer);
    if (untrained) remove_new_outputs(&fresh);
    dpt_dataset_free(&train_set);
    dpt_dataset_free(&test_set);
    if (st == DPT_ERR_NUMERIC) return EXIT_RUNTIME;
    if (st != DPT_OK) return cli_exit_status_of(st);
    return report.stopped ? EXIT_STOPPED : EXIT_SUCCESS;
}

int cli_train(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    if (!args->dry_run && dpt_watchdog_start(cfg->reliability.watchdog_seconds, comm->rank) != DPT_OK &&
        comm->rank == 0)
        fprintf(stderr, "dptrain: warning: %s; running without it\n", dpt_error_message());
    int status = train(comm, cfg, args->config_path ? args->config_path : "<built-in default config>",
                       args->resume, args->dry_run);
    dpt_watchdog_stop();
    return status;
}
