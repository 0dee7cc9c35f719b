/* dpt/train.h - the data-parallel trainer.
 *
 * One step: this rank gathers its slice of the global batch, sums per-sample
 * gradients over it, one MPI_Allreduce sums the flat gradient over ranks, the
 * sum is divided by the global sample count of the step, and every rank
 * applies the same optimizer update. Parameters start identical on all ranks
 * (same seeded initialization) and this is verified once by a hash.
 */
#ifndef DPT_TRAIN_H
#define DPT_TRAIN_H

#include "dpt/config.h"
#include "dpt/data.h"
#include "dpt/dist.h"
#include "dpt/model.h"
#include "dpt/nn.h"
#include "dpt/optim.h"

/* Running sums over samples: [0] weighted total loss, [1] samples, then per
 * head its loss sum and its hits (see dpt_sums_*). One flat array so that a
 * single allreduce sums all of it. */
#define DPT_SUMS (2 + 2 * DPT_MAX_HEADS)
#define DPT_SUM_LOSS(h) (2 + (h))
#define DPT_SUM_HITS(h) (2 + DPT_MAX_HEADS + (h))

typedef struct dpt_eval {
    double loss;      /* mean weighted total loss per sample */
    double accuracy;  /* head 0's fraction classified correctly */
    long samples;
    int n_heads;
    double head_loss[DPT_MAX_HEADS];
    double head_accuracy[DPT_MAX_HEADS];
    int mc_samples;   /* > 0: head_mc_accuracy holds Monte Carlo dropout accuracies */
    double head_mc_accuracy[DPT_MAX_HEADS];
} dpt_eval;

/* Per-layer statistics of one step (layers with parameters): norms of the
 * averaged gradient and of the weights, and |update| / |weights|, the
 * quantity whose drift towards 0 or explosion shows vanishing or exploding
 * gradients (Goodfellow et al. 8.2.5). */
typedef struct dpt_layer_stat {
    double grad_norm, weight_norm, update_ratio;
} dpt_layer_stat;

/* Deliberate faults for tests: at global step `step` (0-based, -1: none)
 * rank `rank` writes NaN into the gradient of layer `layer` before the
 * reduction. The others count steps from 1, 0 meaning none (so that a
 * zeroed struct injects nothing): at step `stall_step` rank `stall_rank`
 * sleeps `stall_seconds` before the reduction (the watchdog's test); at
 * step `corrupt_step` rank `corrupt_rank` changes one parameter after the
 * update (the replica check's test); at step `signal_step` rank
 * `signal_rank` raises signal `signal_number` (a stop at a known step). */
typedef struct dpt_fault {
    long step;
    int rank, layer;
    long stall_step;
    int stall_rank;
    double stall_seconds;
    long corrupt_step;
    int corrupt_rank;
    long signal_step;      /* rank signal_rank raises signal_number before the reduction */
    int signal_rank, signal_number;
} dpt_fault;

/* Stop requests: SIGTERM, SIGINT or SIGUSR1 handlers call
 * dpt_request_stop (async-signal-safe: it sets a flag). At the next step
 * boundary every rank learns whether any rank was asked to stop (one more
 * value in the reduction of the gradient norm), and the run ends there,
 * with a checkpoint, on every rank together. */
void dpt_request_stop(int signo);
/* The signal of the last request, 0 if none. */
int dpt_stop_requested(void);

typedef struct dpt_trainer {
    const dpt_config *cfg;
    dpt_comm comm;
    const dpt_dataset *train_set;
    dpt_model model;
    dpt_optimizer opt;         /* over the whole vector, or this rank's slice if sharded */
    dpt_batch_plan plan;
    long total_steps;          /* steps this run will take */
    long step;                 /* global steps done (skipped ones included) */
    double samples_seen;       /* training samples over all ranks so far */
    long epoch;                /* current epoch, 0-based */
    size_t epoch_step;         /* step within the epoch */
    uint32_t *perm;            /* [n_train] this epoch's permutation, same on all ranks */
    dpt_real *batch_x;         /* [max_batch][features] */
    uint8_t *batch_y;          /* [max_batch] */
    uint32_t *eval_index;      /* [eval_batch] sample indices of an evaluation chunk */
    dpt_real *mc_probs;        /* [eval_batch][outputs of all heads]: Monte Carlo averages */
    int eval_batch;            /* rows per forward pass during evaluation */
    int bn_unsynced;           /* some batch norm keeps per-rank statistics */
    double window[DPT_SUMS];     /* this rank's sums since the last report */
    double epoch_sums[DPT_SUMS]; /* and since the epoch began */
    double last_lr;
    /* the data-parallel update */
    int sharded;               /* optimizer state sharded: reduce-scatter + all-gather */
    int overlapped;            /* bucketed non-blocking reduction during backward */
    dpt_reducer reducer;
    int *reducer_segment_of_layer; /* [model layers] segment index or -1 */
    dpt_sharder sharder;       /* the split of the parameter vector over ranks */
    size_t slice_lo, slice_n;  /* this rank's slice (norms always; the update if sharded) */
    size_t clear_lo, clear_n;  /* the range of model.grads the last update left zero */
    dpt_real *slice_buf;       /* [slice_n] parameters before the update (layer statistics) */
    double comm_seconds;       /* time the step waited for gradient communication */
    double grad_norm;          /* global norm of the averaged gradient, before clipping */
    long skipped_steps;
    int last_skipped;          /* the last step was skipped (non-finite gradient) */
    int last_bad_layer;        /* its first layer with a non-finite gradient, -1 unknown */
    dpt_fault fault;
    int stats_ready;           /* layer_stats holds this step's statistics */
    dpt_layer_stat *layer_stats; /* [model layers] */
    double *layer_sums;        /* [3 x model layers] their sums over ranks (no allocation per step) */
    size_t local_count;        /* samples of this rank in the current step */
    struct dpt_diagnostics *diag; /* [diagnostics] state (src/train/diagnose.h); NULL: off */
    int diag_ready;            /* the last step produced diagnostics (rank 0 reports them) */
    /* bagging (dpt/ensemble.h): set after dpt_trainer_create, before training */
    const uint32_t *sample_map; /* [n_train] or NULL: the epoch's i-th sample is
                                   sample_map[perm[i]] (a bootstrap resample) */
    int console_off;           /* 1: rank 0 writes its metrics file but prints nothing */
    int stop_agreed;           /* some rank was asked to stop: the run ends after this step */
    int checkpoint_due;        /* [checkpoint] every_seconds passed on some rank (agreed) */
    double checkpoint_clock;   /* MPI_Wtime of the last checkpoint (or of the start) */
    int agreed_failure;        /* the last failure was agreed: every rank returned it together */
} dpt_trainer;

/* Positions the trainer at global step `step`, epoch `epoch`, step
 * `epoch_step` of that epoch (the epoch's permutation is rebuilt). For
 * resuming. Local. */
void dpt_trainer_seek(dpt_trainer *trainer, long step, long epoch, size_t epoch_step);

/* Writes a checkpoint of the trainer into [checkpoint] dir (rank 0 writes;
 * the sharded optimizer state is gathered to it) and keeps the newest
 * [checkpoint] keep; `reason` (step, time, signal, end) is recorded. path
 * receives the file's name on every rank. Collective; the outcome is
 * agreed (trainer->agreed_failure is set on failure). */
dpt_status dpt_trainer_checkpoint(dpt_trainer *trainer, const char *reason, char *path, size_t path_size);

/* Continues from a checkpoint: `spec` is a path, or "auto" for the newest
 * checkpoint in [checkpoint] dir that verifies (corrupt ones are reported
 * on stderr and skipped; none at all: path = "" and nothing changes).
 * Refuses (DPT_ERR_FORMAT, agreed) a checkpoint of another model,
 * precision or optimizer; warns when the rank count or config differ.
 * Call after dpt_trainer_create, before training. Collective. */
dpt_status dpt_trainer_resume(dpt_trainer *trainer, const char *spec, char *path, size_t path_size);

/* Loads only a checkpoint's parameters and batch-norm statistics (per-rank
 * statistics averaged) into the trainer's model, for evaluation,
 * prediction or export; *step receives the step it was written at.
 * Refuses (DPT_ERR_FORMAT, agreed) a checkpoint of another model or
 * precision. Collective. */
dpt_status dpt_trainer_load_weights(dpt_trainer *trainer, const char *path, long *step);
/* The same into a model of the checkpoint's architecture, from a checkpoint
 * already read (dpt/checkpoint.h); checks the precision and the parameter
 * count. Local. */
struct dpt_ckpt;
dpt_status dpt_model_read_checkpoint(dpt_model *model, const struct dpt_ckpt *ck, long *step);

/* The gradient reduction a run of cfg uses on `ranks` ranks, decided for
 * [optim] overlap and shard_state = auto (the trainer and `dptrain inspect`
 * both ask this): *overlapped, bucketed non-blocking allreduces during
 * backward; *sharded, reduce-scatter, update of this rank's slice, all-gather
 * of the parameters. Local: plans the buckets without MPI calls. */
dpt_status dpt_update_choose(const dpt_model *model, const dpt_config *cfg, int ranks, int *sharded,
                             int *overlapped);

/* Builds model, optimizer and batch plan for train_set on comm. Collective. */
dpt_status dpt_trainer_create(dpt_trainer *trainer, const dpt_config *cfg, MPI_Comm comm,
                              const dpt_dataset *train_set);
void dpt_trainer_destroy(dpt_trainer *trainer);

/* One global step (starts a new epoch with a fresh permutation when needed):
 * local gradient sums, their reduction, the agreed non-finite check
 * ([optim] nonfinite: skip the update, or fail with DPT_ERR_NUMERIC on every
 * rank), clipping, and the update. Collective. */
dpt_status dpt_trainer_step(dpt_trainer *trainer);

/* Sums a window of sums over ranks into an eval (and zeroes it). Collective. */
dpt_status dpt_trainer_reduce_window(dpt_trainer *trainer, double window[DPT_SUMS], dpt_eval *out);

/* Loss and accuracy on a data set, each rank its share, with the
 * weight-scaling rule for dropout and, if [eval] mc_samples = K > 0, also
 * with K Monte Carlo dropout passes averaged. Collective. */
dpt_status dpt_trainer_evaluate(dpt_trainer *trainer, const dpt_dataset *set, dpt_eval *out);

/* Class probabilities of head `head` (softmax or sigmoid of its output;
 * the raw output for mse) for samples [lo, lo + count) of `set`, written to
 * probs[count][the head's outputs] in double: no dropout (the
 * weight-scaling rule), batch norm with its running statistics. Call after
 * dpt_trainer_evaluate (dpt_trainer_run ends with it), which makes
 * per-rank batch-norm statistics equal on all ranks. Not collective. */
dpt_status dpt_trainer_head_probabilities(dpt_trainer *trainer, int head, const dpt_dataset *set,
                                          size_t lo, size_t count, double *probs);

typedef struct dpt_run_report {
    dpt_eval final_test;
    double train_seconds;      /* wall time of training steps, without evaluation */
    double total_seconds;
    double samples_per_second; /* training samples per second over the run */
    long steps;
    long skipped_steps;        /* steps skipped for a non-finite gradient */
    double comm_ms_per_step;   /* time a step waited for gradient communication */
    size_t optimizer_state_bytes; /* this rank's optimizer moments */
    size_t peak_rss_bytes;     /* this rank's peak resident memory */
    int stopped;               /* ended early by a stop request (the signal number) */
} dpt_run_report;

/* Samples in the second-order methods' batch: the training set, or its
 * first cfg->update.solve_samples when that is smaller (and not 0). */
size_t dpt_trainer_solve_batch(const dpt_trainer *t);

/* A second-order run ([optim] method lbfgs, cg, cg_fr, newton_cg, newton, bfgs): the
 * training set (dpt_trainer_solve_batch) is the batch of the distributed oracle, the solver runs
 * to its stopping rule, rank 0 logs every iteration; then the test set is
 * evaluated. Collective. */
dpt_status dpt_trainer_solve(dpt_trainer *trainer, const dpt_dataset *test_set,
                             dpt_run_report *report);

/* The whole run: epochs of steps, test evaluation after each epoch, progress
 * and metrics from rank 0. Collective. */
dpt_status dpt_trainer_run(dpt_trainer *trainer, const dpt_dataset *test_set,
                           dpt_run_report *report);

#endif /* DPT_TRAIN_H */
