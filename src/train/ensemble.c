/* Bagging over MPI: k groups of ranks, one member each, predictions
 * averaged (Breiman 1996; Goodfellow et al., Deep Learning, 7.11). */
#include "dpt/ensemble.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/rng.h"

/* Smallest probability -log is taken of: a member whose probability of
 * the true class underflows still counts, with a finite, large loss. The
 * clamp only ever lowers the ensemble's loss below the exact value. */
#define PROB_FLOOR 1e-300

/* Per-member numbers gathered over the world: each group's rank 0 fills its
 * member's slots of a zeroed array, one allreduce sums them. */
enum { SLOT_ERROR, SLOT_LOSS, SLOT_TRAIN_S, SLOT_DISTINCT, SLOT_STEPS, N_SLOTS };

/* This rank's share of an ensemble run. */
typedef struct ensemble_job {
    int k, m;                 /* members; this rank's member */
    uint64_t seed;            /* the run's train.seed (members derive theirs) */
    MPI_Comm group;           /* the ranks training member m */
    MPI_Comm cross;           /* the ranks of equal group rank in every member */
    dpt_comm group_comm;
    dpt_config *cfg;          /* member m's configuration (large: heap) */
    uint32_t *map;            /* [n_train] bootstrap resample, or NULL */
    double distinct;          /* distinct fraction of the resample */
    dpt_trainer trainer;
    int have_trainer;
    dpt_run_report run;
    double *slots;            /* [k][N_SLOTS] */
} ensemble_job;

dpt_status dpt_ensemble_check_ranks(int members, int ranks)
{
    if (members < 1)
        return DPT_FAIL(DPT_ERR_CONFIG, "[ensemble] members = %d must be at least 1", members);
    if (ranks % members == 0) return DPT_OK;
    int below = ranks / members * members, above = below + members;
    char options[96];
    if (below > 0) snprintf(options, sizeof options, "run %d or %d ranks", below, above);
    else snprintf(options, sizeof options, "run %d ranks", above);
    return DPT_FAIL(DPT_ERR_CONFIG, "[ensemble] members = %d needs a rank count divisible by %d; "
                    "this job has %d rank%s (%s, or change members)", members, members, ranks,
                    ranks == 1 ? "" : "s", options);
}

/* SplitMix64 (Steele, Lea, Flood 2014): the m-th output of the generator
 * started at `seed`, so member seeds are unrelated even for nearby seeds. */
uint64_t dpt_ensemble_member_seed(uint64_t seed, int members, int m)
{
    if (members <= 1) return seed; /* plain training: the same run as without [ensemble] */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(m + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

dpt_status dpt_ensemble_member_path(const char *path, int m, char *out, size_t out_size)
{
    if (path[0] == '\0') {
        if (out_size > 0) out[0] = '\0';
        return DPT_OK;
    }
    /* the extension is the last '.' of the file name (not of a directory),
     * and not a leading one (".hidden" has none) */
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - path) : strlen(path);
    int n = snprintf(out, out_size, "%.*s.member%d%s", (int)stem, path, m, path + stem);
    if (n < 0 || (size_t)n >= out_size)
        return DPT_FAIL(DPT_ERR_CONFIG, "the file name of member %d, from %s, is longer than %zu "
                        "characters", m, path, out_size - 1);
    return DPT_OK;
}

double dpt_bootstrap_sample(uint32_t *map, uint8_t *seen, size_t n, uint64_t seed, int m)
{
    /* keyed by the run's seed, not the member's: a member's resample does
     * not depend on how its seed is derived; rank 0 so all ranks agree */
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_BOOTSTRAP, 0, (uint64_t)m);
    memset(seen, 0, n);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        map[i] = (uint32_t)dpt_rng_below(&rng, n);
        distinct += !seen[map[i]];
        seen[map[i]] = 1;
    }
    return n > 0 ? (double)distinct / (double)n : 1;
}

/* The groups: contiguous blocks of size/k ranks (a member's ranks stay on
 * one node where they can), and the cross communicators. */
static dpt_status split_world(ensemble_job *job, const dpt_comm *world)
{
    int per = world->size / job->k;
    job->m = world->rank / per;
    int rc = MPI_Comm_split(world->comm, job->m, world->rank, &job->group);
    if (rc != MPI_SUCCESS) return DPT_FAIL(DPT_ERR_MPI, "MPI_Comm_split into members failed (%d)", rc);
    dpt_status st = dpt_comm_wrap(&job->group_comm, job->group);
    if (st != DPT_OK) return st;
    rc = MPI_Comm_split(world->comm, job->group_comm.rank, job->m, &job->cross);
    if (rc != MPI_SUCCESS) return DPT_FAIL(DPT_ERR_MPI, "MPI_Comm_split across members failed (%d)", rc);
    return DPT_OK;
}

/* The group's rank 0 (its reporter's) checks that the member's metrics
 * file can be written, so that a bad path fails every rank before
 * training, agreed, instead of one group inside dpt_trainer_run. */
static dpt_status probe_metrics_file(const ensemble_job *job, const char *path)
{
    if (job->group_comm.rank != 0 || path[0] == '\0') return DPT_OK;
    FILE *file = fopen(path, "w");
    if (!file)
        return DPT_FAIL(DPT_ERR_IO, "cannot write member %d's metrics file %s ([log] metrics): %s",
                        job->m, path, strerror(errno));
    fclose(file);
    return DPT_OK;
}

/* Member m's configuration and resample. Local: the caller agrees. */
static dpt_status prepare_member(ensemble_job *job, const dpt_config *cfg, const dpt_dataset *train)
{
    job->cfg = malloc(sizeof *job->cfg);
    if (!job->cfg) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for member %d's configuration", job->m);
    *job->cfg = *cfg;
    job->distinct = 1;
    if (job->k == 1) return DPT_OK; /* plain training: nothing changes */
    dpt_config *mc = job->cfg;
    mc->train.seed = dpt_ensemble_member_seed(cfg->train.seed, job->k, job->m);
    dpt_status st = dpt_ensemble_member_path(cfg->log.metrics, job->m, mc->log.metrics,
                                             sizeof mc->log.metrics);
    if (st == DPT_OK)
        st = dpt_ensemble_member_path(cfg->diag.file, job->m, mc->diag.file, sizeof mc->diag.file);
    if (st == DPT_OK) /* "checkpoints" -> "checkpoints.memberM": one directory per member */
        st = dpt_ensemble_member_path(cfg->checkpoint.dir, job->m, mc->checkpoint.dir,
                                      sizeof mc->checkpoint.dir);
    if (st == DPT_OK) st = probe_metrics_file(job, mc->log.metrics);
    if (st != DPT_OK || !cfg->ensemble.bootstrap) return st;
    if (train->n_samples > UINT32_MAX)
        return DPT_FAIL(DPT_ERR_ARG, "bagging takes at most %u training samples", UINT32_MAX);
    job->map = malloc(sizeof(uint32_t) * (train->n_samples ? train->n_samples : 1));
    uint8_t *seen = malloc(train->n_samples ? train->n_samples : 1);
    st = job->map && seen ? DPT_OK
         : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for member %d's bootstrap resample", job->m);
    if (st == DPT_OK)
        job->distinct = dpt_bootstrap_sample(job->map, seen, train->n_samples, cfg->train.seed, job->m);
    free(seen);
    return st;
}

/* Creates and runs member m's trainer. Returns an agreed status, except for
 * a failure inside training that only some ranks saw (*agreed = 0). */
static dpt_status train_member(ensemble_job *job, const dpt_comm *world, const dpt_dataset *train,
                               const dpt_dataset *test, int *agreed)
{
    dpt_status st = dpt_trainer_create(&job->trainer, job->cfg, job->group, train);
    job->have_trainer = st == DPT_OK;
    /* a member whose group failed must not leave the others training */
    st = dpt_agree_status(world, st, NULL);
    if (st != DPT_OK) return st;
    job->trainer.sample_map = job->map;
    job->trainer.console_off = job->m > 0;
    st = dpt_trainer_run(&job->trainer, test, &job->run);
    if (st != DPT_OK && st != DPT_ERR_NUMERIC) {
        /* other ranks of this group may be waiting in a collective */
        *agreed = 0;
        return st;
    }
    if (st == DPT_ERR_NUMERIC) {
        /* agreed within the group; say which member before telling the world */
        char why[512];
        snprintf(why, sizeof why, "%s", dpt_error_message());
        st = DPT_FAIL(DPT_ERR_NUMERIC, "member %d of %d: %s", job->m, job->k, why);
    }
    return dpt_agree_status(world, st, NULL);
}

/* In-place sum over comm of buf[n], in pieces that fit an int count. */
static dpt_status allreduce_doubles(MPI_Comm comm, double *buf, size_t n)
{
    for (size_t done = 0; done < n;) {
        size_t piece = n - done < (size_t)INT_MAX ? n - done : (size_t)INT_MAX;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + done, (int)piece, MPI_DOUBLE, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return DPT_FAIL(DPT_ERR_MPI, "ensemble MPI_Allreduce failed (%d)", rc);
        done += piece;
    }
    return DPT_OK;
}

static dpt_status allreduce_max(const dpt_comm *comm, double *value)
{
    int rc = MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_DOUBLE, MPI_MAX, comm->comm);
    return rc == MPI_SUCCESS ? DPT_OK : DPT_FAIL(DPT_ERR_MPI, "ensemble MPI_Allreduce failed (%d)", rc);
}

static int arg_max(const double *p, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

static double neg_log(double p) { return -log(p > PROB_FLOOR ? p : PROB_FLOOR); }

/* Hit (0/1) and loss of one sample's averaged head output p[K] for head
 * label y, in the member's own loss (src/nn/loss.c), applied to the
 * average: each loss is convex in p, so by Jensen's inequality the
 * ensemble's loss is at most the members' mean loss. */
static void score_sample(const double *p, int K, int y, dpt_loss_kind loss, double *hit, double *value)
{
    int in_range = y >= 0 && (y < K || (K == 1 && y < 2));
    if (!in_range) y = 0; /* as the trainer maps unmapped labels */
    if (loss == DPT_LOSS_SOFTMAX_XENT) {
        *value = neg_log(p[y]);
        *hit = in_range && arg_max(p, K) == y;
    } else if (loss == DPT_LOSS_SIGMOID_BCE) {
        double sum = 0;
        for (int k = 0; k < K; k++) {
            double t = K == 1 ? (double)y : (double)(k == y);
            sum += t * neg_log(p[k]) + (1 - t) * neg_log(1 - p[k]);
        }
        *value = sum;
        *hit = in_range && (K == 1 ? (p[0] > 0.5) == (y != 0) : arg_max(p, K) == y);
    } else { /* mse: (1/K) sum (p_k - onehot_k)^2 */
        double sum = 0;
        for (int k = 0; k < K; k++) sum += (p[k] - (k == y)) * (p[k] - (k == y));
        *value = sum / K;
        *hit = in_range && arg_max(p, K) == y;
    }
}

/* The ensemble on the test set: this rank scores its range of every
 * member's averaged head-0 output; sums[0] hits, sums[1] loss, summed over
 * the group (so over the whole set). */
static dpt_status evaluate_ensemble(ensemble_job *job, const dpt_comm *world, const dpt_dataset *test,
                                    double sums[2])
{
    const dpt_model *model = &job->trainer.model;
    int K = model->heads[0].outputs;
    size_t lo, count;
    dpt_split_range(test->n_samples, job->group_comm.size, job->group_comm.rank, &lo, &count);
    double *probs = malloc(sizeof(double) * (count ? count : 1) * (size_t)K);
    dpt_status st = probs ? dpt_trainer_head_probabilities(&job->trainer, 0, test, lo, count, probs)
                          : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the ensemble's probabilities");
    st = dpt_agree_status(world, st, NULL);
    /* the same range of every member: sum, then average */
    if (st == DPT_OK) st = allreduce_doubles(job->cross, probs, count * (size_t)K);
    sums[0] = sums[1] = 0;
    for (size_t i = 0; st == DPT_OK && i < count; i++) {
        double *p = probs + i * (size_t)K, hit, value;
        for (int k = 0; k < K; k++) p[k] /= job->k;
        int y = dpt_model_head_label(model, 0, test->labels[lo + i]);
        score_sample(p, K, y, model->heads[0].spec.loss, &hit, &value);
        sums[0] += hit;
        sums[1] += value;
    }
    free(probs);
    if (st == DPT_OK) st = allreduce_doubles(job->group, sums, 2);
    return st;
}

/* Every member's numbers to every rank, and the means. */
static dpt_status gather_members(ensemble_job *job, const dpt_comm *world, dpt_ensemble_report *out)
{
    int k = job->k;
    memset(job->slots, 0, sizeof(double) * (size_t)k * N_SLOTS);
    if (job->group_comm.rank == 0) {
        double *s = job->slots + (size_t)job->m * N_SLOTS;
        s[SLOT_ERROR] = 1 - job->run.final_test.head_accuracy[0];
        s[SLOT_LOSS] = job->run.final_test.head_loss[0];
        s[SLOT_TRAIN_S] = job->run.train_seconds;
        s[SLOT_DISTINCT] = job->distinct;
        s[SLOT_STEPS] = (double)job->run.steps;
    }
    dpt_status st = allreduce_doubles(world->comm, job->slots, (size_t)k * N_SLOTS);
    if (st != DPT_OK) return st;
    for (int m = 0; m < k; m++) {
        const double *s = job->slots + (size_t)m * N_SLOTS;
        dpt_ensemble_member *e = &out->member[m];
        e->test_error = s[SLOT_ERROR];
        e->test_loss = s[SLOT_LOSS];
        e->train_seconds = s[SLOT_TRAIN_S];
        e->distinct_fraction = s[SLOT_DISTINCT];
        e->steps = (long)s[SLOT_STEPS];
        e->seed = dpt_ensemble_member_seed(job->seed, k, m);
        out->mean_member_error += e->test_error / k;
        out->mean_member_loss += e->test_loss / k;
        if (e->train_seconds > out->train_seconds) out->train_seconds = e->train_seconds;
    }
    return DPT_OK;
}

static void free_job(ensemble_job *job)
{
    if (job->have_trainer) dpt_trainer_destroy(&job->trainer);
    job->have_trainer = 0;
    if (job->cross != MPI_COMM_NULL) MPI_Comm_free(&job->cross);
    if (job->group != MPI_COMM_NULL) MPI_Comm_free(&job->group);
    free(job->cfg);
    free(job->map);
    free(job->slots);
    job->cfg = NULL;
    job->map = NULL;
    job->slots = NULL;
}

void dpt_ensemble_report_free(dpt_ensemble_report *report)
{
    free(report->member);
    report->member = NULL;
}

dpt_status dpt_ensemble_run(const dpt_config *cfg, MPI_Comm world_comm, const dpt_dataset *train,
                            const dpt_dataset *test, dpt_ensemble_report *out)
{
    memset(out, 0, sizeof *out);
    out->agreed = 1;
    dpt_comm world;
    dpt_status st = dpt_comm_wrap(&world, world_comm);
    if (st != DPT_OK) return st;
    int k = cfg->ensemble.members;
    /* a pure function of (k, size): every rank reaches the same verdict */
    st = dpt_ensemble_check_ranks(k, world.size);
    if (st != DPT_OK) return st;

    ensemble_job job;
    memset(&job, 0, sizeof job);
    job.k = k;
    job.seed = cfg->train.seed;
    job.group = job.cross = MPI_COMM_NULL;
    out->members = k;
    out->ranks_per_member = world.size / k;
    out->bootstrap = k > 1 && cfg->ensemble.bootstrap;
    out->test_samples = (long)test->n_samples;
    double start = MPI_Wtime();
    out->member = calloc((size_t)k, sizeof *out->member);
    job.slots = malloc(sizeof(double) * (size_t)k * N_SLOTS);
    st = out->member && job.slots ? DPT_OK : DPT_FAIL(DPT_ERR_NOMEM, "out of memory for %d members", k);
    st = dpt_agree_status(&world, st, NULL);
    if (st == DPT_OK) st = split_world(&job, &world); /* MPI errors abort by default anyway */
    if (st == DPT_OK) st = dpt_agree_status(&world, prepare_member(&job, cfg, train), NULL);
    if (st == DPT_OK) st = train_member(&job, &world, train, test, &out->agreed);
    if (!out->agreed) return st; /* no collective may follow: the caller aborts */
    double sums[2];
    if (st == DPT_OK) st = gather_members(&job, &world, out);
    if (st == DPT_OK) st = evaluate_ensemble(&job, &world, test, sums);
    /* the slowest rank's time, so every rank reports the same */
    double wall = MPI_Wtime() - start;
    if (st == DPT_OK) st = allreduce_max(&world, &wall);
    if (st == DPT_OK) {
        out->params_per_member = job.trainer.model.n_params;
        out->ensemble_error = test->n_samples ? 1 - sums[0] / (double)test->n_samples : 0;
        out->ensemble_loss = test->n_samples ? sums[1] / (double)test->n_samples : 0;
        out->wall_seconds = wall;
    }
    free_job(&job);
    if (st != DPT_OK) dpt_ensemble_report_free(out);
    return st;
}
