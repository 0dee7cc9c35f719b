/* dptrain eval and dptrain predict: a checkpoint's network on a data set.
 * Each rank takes its contiguous share of the samples (dpt_split_range);
 * eval sums the loss, hits and confusion counts over ranks, predict
 * gathers the probabilities to rank 0, which writes them. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "dpt/npy.h"
#include "dpt/train.h"

#define CHUNK 1024 /* samples per probability pass */

typedef struct inference {
    dpt_dataset set;
    dpt_trainer trainer;
    int have_trainer;
    int head;           /* the reported head */
    long step;          /* the checkpoint's step */
    char path[2 * DPT_PATH_MAX]; /* the data file */
} inference;

static dpt_status find_head(const dpt_model *m, const char *name, int *head)
{
    *head = 0;
    if (!name) return DPT_OK;
    for (int h = 0; h < m->n_heads; h++)
        if (strcmp(m->heads[h].spec.name, name) == 0) return *head = h, DPT_OK;
    char names[512] = "";
    for (int h = 0; h < m->n_heads; h++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", h ? ", " : "",
                 m->heads[h].spec.name);
    return DPT_FAIL(DPT_ERR_CONFIG, "--head %s: the model has no such head (heads: %s)", name, names);
}

/* The checkpoint's network, ready on every rank, and the data set: the
 * config's test set or --features/--labels (already turned into the test
 * keys by main.c). Returns an exit status (the error printed). */
static int open_inference(const dpt_comm *comm, const cli_args *args, dpt_config *cfg, int need_labels,
                          inference *inf)
{
    memset(inf, 0, sizeof *inf);
    /* inference writes nothing of a training run's */
    cfg->log.metrics[0] = '\0';
    cfg->diag.every = 0;
    cfg->ensemble.members = 1;
    dpt_config_data_path(cfg, cfg->data.test_images, inf->path, sizeof inf->path);
    const char *labels = need_labels || !args->features ? cfg->data.test_labels : NULL;
    dpt_status st = dpt_agree_status(comm, cli_load_set(cfg, cfg->data.test_images, labels, &inf->set), NULL);
    if (st == DPT_OK) {
        st = dpt_trainer_create(&inf->trainer, cfg, comm->comm, &inf->set);
        inf->have_trainer = st == DPT_OK;
        if (st == DPT_ERR_SHAPE) st = cli_model_misfit(st, args->checkpoint, cfg, &inf->set);
    }
    if (st == DPT_OK) st = dpt_trainer_load_weights(&inf->trainer, args->checkpoint, &inf->step);
    if (st == DPT_OK) st = find_head(&inf->trainer.model, args->head, &inf->head);
    if (st != DPT_OK) return cli_exit_status_of(cli_print_agreed_error(comm, st));
    return EXIT_SUCCESS;
}

static void close_inference(inference *inf)
{
    if (inf->have_trainer) dpt_trainer_destroy(&inf->trainer);
    dpt_dataset_free(&inf->set);
}

/* Predicted class of one row of probabilities (one sigmoid output: p > 1/2). */
static int predicted_class(const double *p, int K)
{
    if (K == 1) return p[0] > 0.5;
    int best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* ---------------------------------------------------------------- eval */

/* confusion[true][predicted] over this rank's share, then summed. */
static dpt_status confusion_counts(inference *inf, int classes, long *confusion)
{
    dpt_trainer *t = &inf->trainer;
    int K = t->model.heads[inf->head].outputs;
    size_t begin, count;
    dpt_split_range(inf->set.n_samples, t->comm.size, t->comm.rank, &begin, &count);
    double *probs = malloc(sizeof(double) * CHUNK * (size_t)K);
    dpt_status st = probs ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for probabilities");
    for (size_t done = 0; st == DPT_OK && done < count; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        st = dpt_trainer_head_probabilities(t, inf->head, &inf->set, begin + done, n, probs);
        for (size_t i = 0; st == DPT_OK && i < n; i++) {
            int truth = dpt_model_head_label(&t->model, inf->head, inf->set.labels[begin + done + i]);
            if (truth >= 0 && truth < classes)
                confusion[(size_t)truth * classes + predicted_class(probs + i * K, K)]++;
        }
    }
    free(probs);
    st = dpt_agree_status(&t->comm, st, NULL);
    if (st == DPT_OK && MPI_Allreduce(MPI_IN_PLACE, confusion, classes * classes, MPI_LONG, MPI_SUM,
                                      t->comm.comm) != MPI_SUCCESS)
        st = DPT_FAIL(DPT_ERR_MPI, "summing the confusion matrix failed");
    return st;
}

static void print_eval_table(const inference *inf, const cli_args *args, const dpt_eval *ev,
                             const long *confusion, int classes)
{
    const dpt_model *m = &inf->trainer.model;
    printf("eval of %s (step %ld) on %s: %ld samples\n", args->checkpoint, inf->step, inf->path, ev->samples);
    printf("loss %.6f  accuracy %.4f  error %.4f\n", ev->loss, ev->accuracy, 1 - ev->accuracy);
    for (int h = 0; m->n_heads > 1 && h < m->n_heads; h++)
        printf("  head %-12s loss %.6f  accuracy %.4f\n", m->heads[h].spec.name, ev->head_loss[h],
               ev->head_accuracy[h]);
    if (ev->mc_samples) printf("Monte Carlo dropout (%d passes): accuracy %.4f\n", ev->mc_samples,
                               ev->head_mc_accuracy[inf->head]);
    printf("\nconfusion matrix of head %s (rows: true label, columns: predicted):\n",
           m->heads[inf->head].spec.name);
    printf("%6s", "");
    for (int j = 0; j < classes; j++) printf(" %6d", j);
    printf(" %8s\n", "recall");
    for (int i = 0; i < classes; i++) {
        long row = 0;
        printf("%6d", i);
        for (int j = 0; j < classes; j++) printf(" %6ld", confusion[i * classes + j]), row += confusion[i * classes + j];
        printf(" %8.4f\n", row ? (double)confusion[i * classes + i] / (double)row : 0.0);
    }
}

static void print_eval_json(const inference *inf, const cli_args *args, const dpt_eval *ev,
                            const long *confusion, int classes)
{
    const dpt_model *m = &inf->trainer.model;
    printf("{\"checkpoint\":\"%s\",\"step\":%ld,\"data\":\"%s\",\"samples\":%ld,\"loss\":%.9g,"
           "\"accuracy\":%.9g,\"head\":\"%s\",\"heads\":{", args->checkpoint, inf->step, inf->path,
           ev->samples, ev->loss, ev->accuracy, m->heads[inf->head].spec.name);
    for (int h = 0; h < m->n_heads; h++)
        printf("%s\"%s\":{\"loss\":%.9g,\"accuracy\":%.9g}", h ? "," : "", m->heads[h].spec.name,
               ev->head_loss[h], ev->head_accuracy[h]);
    printf("},\"confusion\":[");
    for (int i = 0; i < classes; i++) {
        printf("%s[", i ? "," : "");
        for (int j = 0; j < classes; j++) printf("%s%ld", j ? "," : "", confusion[i * classes + j]);
        printf("]");
    }
    printf("]}\n");
}

int cli_eval(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    inference inf;
    int status = open_inference(comm, args, cfg, 1, &inf);
    if (status != EXIT_SUCCESS) {
        close_inference(&inf);
        return status;
    }
    dpt_eval ev;
    dpt_status st = dpt_trainer_evaluate(&inf.trainer, &inf.set, &ev);
    int K = inf.trainer.model.heads[inf.head].outputs, classes = K == 1 ? 2 : K;
    long *confusion = calloc((size_t)classes * classes, sizeof(long));
    if (st == DPT_OK && !confusion) st = DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the confusion matrix");
    st = dpt_agree_status(comm, st, NULL);
    if (st == DPT_OK) st = confusion_counts(&inf, classes, confusion);
    if (st == DPT_OK && comm->rank == 0) {
        if (args->json) print_eval_json(&inf, args, &ev, confusion, classes);
        else print_eval_table(&inf, args, &ev, confusion, classes);
        fflush(stdout);
    }
    free(confusion);
    close_inference(&inf);
    return st == DPT_OK ? EXIT_SUCCESS : cli_exit_status_of(cli_print_agreed_error(comm, st));
}

/* ---------------------------------------------------------------- predict */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* "npy" or "csv", from --format or the output's name. */
static dpt_status output_format(const cli_args *args, int *csv)
{
    const char *f = args->format;
    if (f && (!strcmp(f, "npy") || !strcmp(f, "csv"))) return *csv = f[0] == 'c', DPT_OK;
    if (f) return DPT_FAIL(DPT_ERR_CONFIG, "--format %s: predict writes npy or csv", f);
    if (ends_with(args->output, ".npy")) return *csv = 0, DPT_OK;
    if (ends_with(args->output, ".csv")) return *csv = 1, DPT_OK;
    return DPT_FAIL(DPT_ERR_CONFIG, "--output %s: name a .npy or .csv file (or give --format npy|csv)",
                    args->output);
}

/* Every rank's probabilities for its share, gathered to rank 0's all[n][K]. */
static dpt_status gather_probabilities(inference *inf, double *all)
{
    dpt_trainer *t = &inf->trainer;
    int K = t->model.heads[inf->head].outputs, P = t->comm.size;
    size_t n = inf->set.n_samples, begin, count;
    if ((double)n * K > 2147483647.0)
        return DPT_FAIL(DPT_ERR_ARG, "%zu samples x %d classes is more than one gather holds; predict "
                        "the file in parts", n, K);
    dpt_split_range(n, P, t->comm.rank, &begin, &count);
    double *mine = malloc(sizeof(double) * (count ? count : 1) * (size_t)K);
    int *counts = malloc(sizeof(int) * (size_t)P), *displs = malloc(sizeof(int) * (size_t)P);
    dpt_status st = mine && counts && displs ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for probabilities");
    if (st == DPT_OK) st = dpt_trainer_head_probabilities(t, inf->head, &inf->set, begin, count, mine);
    for (int r = 0; st == DPT_OK && r < P; r++) {
        size_t b, c;
        dpt_split_range(n, P, r, &b, &c);
        counts[r] = (int)(c * (size_t)K);
        displs[r] = (int)(b * (size_t)K);
    }
    st = dpt_agree_status(&t->comm, st, NULL);
    if (st == DPT_OK && MPI_Gatherv(mine, (int)(count * (size_t)K), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE,
                                    0, t->comm.comm) != MPI_SUCCESS)
        st = DPT_FAIL(DPT_ERR_MPI, "gathering the probabilities failed");
    free(mine);
    free(counts);
    free(displs);
    return st;
}

static dpt_status write_csv(const char *path, const double *probs, size_t n, int K)
{
    FILE *out = fopen(path, "w");
    if (!out) return DPT_FAIL(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(out, "predicted");
    for (int k = 0; k < K; k++) fprintf(out, ",p%d", k);
    fprintf(out, "\n");
    for (size_t i = 0; i < n; i++) {
        const double *p = probs + i * (size_t)K;
        fprintf(out, "%d", predicted_class(p, K));
        for (int k = 0; k < K; k++) fprintf(out, ",%.9g", p[k]);
        fprintf(out, "\n");
    }
    int failed = ferror(out);
    if (fclose(out) != 0 || failed) return DPT_FAIL(DPT_ERR_IO, "writing %s failed: %s", path, strerror(errno));
    return DPT_OK;
}

/* .npy of the build's precision: float32 from a single build, float64 from a double one. */
static dpt_status write_npy(const char *path, double *probs, size_t n, int K)
{
    size_t shape[2] = {n, (size_t)K};
    if (sizeof(dpt_real) == sizeof(double)) return dpt_npy_write(path, DPT_NPY_F8, 2, shape, probs);
    float *narrow = (float *)probs; /* in place: element i moves to a lower address */
    for (size_t i = 0; i < n * (size_t)K; i++) narrow[i] = (float)probs[i];
    return dpt_npy_write(path, DPT_NPY_F4, 2, shape, narrow);
}

int cli_predict(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    int csv = 0;
    dpt_status st = output_format(args, &csv);
    if (st != DPT_OK) {
        if (comm->rank == 0) fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return EXIT_USAGE;
    }
    inference inf;
    int status = open_inference(comm, args, cfg, 0, &inf);
    if (status != EXIT_SUCCESS) {
        close_inference(&inf);
        return status;
    }
    size_t n = inf.set.n_samples;
    int K = inf.trainer.model.heads[inf.head].outputs;
    double *all = NULL;
    if (comm->rank == 0 && !(all = malloc(sizeof(double) * (n ? n : 1) * (size_t)K)))
        st = DPT_FAIL(DPT_ERR_NOMEM, "out of memory for %zu x %d probabilities", n, K);
    st = dpt_agree_status(comm, st, NULL);
    if (st == DPT_OK) st = gather_probabilities(&inf, all);
    if (st == DPT_OK && comm->rank == 0) {
        st = csv ? write_csv(args->output, all, n, K) : write_npy(args->output, all, n, K);
        if (st == DPT_OK)
            printf("predict: %zu samples of %s, %d class%s (head %s), checkpoint step %ld -> %s\n", n,
                   inf.path, K, K == 1 ? "" : "es", inf.trainer.model.heads[inf.head].spec.name, inf.step,
                   args->output);
        fflush(stdout);
    }
    st = dpt_agree_status(comm, st, NULL);
    free(all);
    close_inference(&inf);
    return st == DPT_OK ? EXIT_SUCCESS : cli_exit_status_of(cli_print_agreed_error(comm, st));
}
