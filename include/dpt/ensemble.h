/* dpt/ensemble.h - bagging over MPI ([ensemble] members = k).
 *
 * Bagging (Breiman 1996; Goodfellow et al., Deep Learning, 7.11) trains k
 * models on k data sets, each drawn from the training set with replacement
 * and of its size, and averages their predictions. The members' errors are
 * partly independent, so the average errs less than a typical member.
 *
 * Here the world's ranks split into k equal contiguous groups; group m
 * trains member m data-parallel (the ordinary trainer on the group's
 * communicator) on its own bootstrap resample, with its own seed. Then the
 * test set is split over each group's ranks, the ranks holding the same
 * range in every member sum their members' class probabilities (one
 * MPI_Allreduce over a "cross" communicator), and the ensemble's error and
 * loss are summed over a group. k = 1 is plain training.
 *
 * Dropout trains an implicit ensemble of subnetworks that share weights
 * (Goodfellow et al. 7.12); configs/fashion-bagging.ini and
 * configs/fashion-dropout.ini with bench/ensemble_bench.sh compare the two.
 */
#ifndef DPT_ENSEMBLE_H
#define DPT_ENSEMBLE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/train.h"

/* What one member did, as seen by every rank after dpt_ensemble_run. */
typedef struct dpt_ensemble_member {
    double test_error;        /* 1 - head 0's test accuracy (weight-scaling rule) */
    double test_loss;         /* head 0's mean test loss */
    double train_seconds;     /* its group's time in training steps */
    double distinct_fraction; /* distinct samples in its resample / n (~0.632); 1 without */
    long steps;
    uint64_t seed;            /* its train.seed */
} dpt_ensemble_member;

typedef struct dpt_ensemble_report {
    int members;              /* k */
    int ranks_per_member;
    int bootstrap;            /* 1: members trained on bootstrap resamples */
    size_t params_per_member; /* the model's parameter count n (k x n are stored) */
    long test_samples;
    dpt_ensemble_member *member; /* [members], malloc'ed: dpt_ensemble_report_free */
    double mean_member_error, mean_member_loss;
    double ensemble_error;    /* head 0's error of the averaged probabilities */
    double ensemble_loss;     /* head 0's loss of the averaged probabilities (NLL for softmax) */
    double train_seconds;     /* the slowest member's time in training steps (members train
                                 in parallel, so this is the training phase's length) */
    double wall_seconds;      /* the whole dpt_ensemble_run (evaluations included), slowest rank */
    /* On failure: 1 if every rank returned the verdict (print once, exit);
     * 0 if this rank failed while others of its group may wait inside a
     * collective of the trainer: the caller must dpt_abort. */
    int agreed;
} dpt_ensemble_report;

/* Trains cfg->ensemble.members members on `train` and scores each of them
 * and their average on `test`. Collective over `world`; every rank ends
 * with the whole report. The rank count must be divisible by k
 * (DPT_ERR_CONFIG on every rank, decided before any communicator is made).
 * Member m's configuration is cfg with, for k > 1, a seed of its own
 * (dpt_ensemble_member_seed), its metrics and diagnostics files renamed
 * (dpt_ensemble_member_path), and the console left to member 0. */
dpt_status dpt_ensemble_run(const dpt_config *cfg, MPI_Comm world, const dpt_dataset *train,
                            const dpt_dataset *test, dpt_ensemble_report *out);
void dpt_ensemble_report_free(dpt_ensemble_report *report);

/* DPT_OK if `ranks` ranks can hold `members` equal groups, else
 * DPT_ERR_CONFIG with a message saying what to run instead. */
dpt_status dpt_ensemble_check_ranks(int members, int ranks);

/* train.seed of member m of k: the seed itself when k = 1 (plain
 * training), else a SplitMix64 mix of (seed, m), so members start from
 * different initializations and visit their data in different orders. */
uint64_t dpt_ensemble_member_seed(uint64_t seed, int members, int m);

/* "dir/metrics.jsonl" -> "dir/metrics.member1.jsonl" (before the last
 * extension of the file name; appended if it has none); "" stays "".
 * DPT_ERR_CONFIG if the result does not fit in out_size. */
dpt_status dpt_ensemble_member_path(const char *path, int m, char *out, size_t out_size);

/* Fills map[n] with n indices drawn uniformly with replacement from 0..n-1
 * by the stream (seed, DPT_STREAM_BOOTSTRAP, substream m): the same on every
 * rank. Returns the fraction of distinct indices (1 - 1/e ~ 0.632 for large
 * n). `seen` is scratch of n bytes. */
double dpt_bootstrap_sample(uint32_t *map, uint8_t *seen, size_t n, uint64_t seed, int m);

#endif /* DPT_ENSEMBLE_H */
