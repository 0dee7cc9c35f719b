/* dpt/config.h - the run configuration: INI sections the user can read.
 *
 *   [data]  the data files (IDX, NumPy .npy or CSV) and how to read them
 *   [model] trunk layers, loss, initialization, batch-norm default
 *   [head.NAME] (optional, repeatable) a task head: layers, loss, weight, labels
 *   [train] epochs, per-rank batch size, seed, ragged-batch policy
 *   [optim] optimizer, learning rate and its schedule, momentum, weight decay
 *   [eval]  Monte Carlo dropout evaluation
 *   [diagnostics] curvature, Lanczos eigenvalues, gradient noise scale,
 *           vanishing/exploding gradient warnings (their own JSON-lines file)
 *   [ensemble] bagging: k members, each trained by its own group of ranks
 *   [checkpoint] where, how often and how many checkpoints to keep
 *   [reliability] stall watchdog, replica check
 *   [log]   progress display and the JSON-lines metrics file
 *
 * Every key is validated (type, range, allowed values). An unknown section or
 * key, a bad value, a key given twice or a missing required key fails with
 * DPT_ERR_CONFIG and one message naming the source (file or --set argument),
 * the line, the key and what is allowed, with the nearest valid name for a
 * typo. The parse is a pure function of the text, so every rank that parses
 * the same text reaches the same verdict.
 */
#ifndef DPT_CONFIG_H
#define DPT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "dpt/error.h"
#include "dpt/model.h"
#include "dpt/nn.h"
#include "dpt/optim.h"
#include "dpt/solve.h"

#define DPT_PATH_MAX 1024

typedef enum dpt_progress_mode {
    DPT_PROGRESS_AUTO = 0, /* bar if stderr is a terminal, else log lines */
    DPT_PROGRESS_BAR,
    DPT_PROGRESS_LINES,
    DPT_PROGRESS_NONE
} dpt_progress_mode;

enum { DPT_NONFINITE_SKIP = 0, DPT_NONFINITE_ABORT = 1 };
enum { DPT_OVERLAP_OFF = 0, DPT_OVERLAP_ON = 1, DPT_OVERLAP_AUTO = 2 };
enum { DPT_SHARD_OFF = 0, DPT_SHARD_ON = 1, DPT_SHARD_AUTO = 2 };

typedef struct dpt_config {
    struct {
        char dir[DPT_PATH_MAX];          /* prefix for relative file names */
        char train_images[DPT_PATH_MAX];
        char train_labels[DPT_PATH_MAX];
        char test_images[DPT_PATH_MAX];
        char test_labels[DPT_PATH_MAX];
        int format;       /* dpt_data_format (dpt/data.h) of the *_images files */
        char label_column[DPT_PATH_MAX]; /* CSV: index (negative from the end),
                                            header name, or "none" */
        int csv_header;   /* DPT_CSV_HEADER_AUTO, _YES or _NO (dpt/data.h) */
    } data;
    struct {
        /* trunk from [model] layers; heads from [head.NAME] sections in
         * the order they appear (none: one implicit head, see model.h);
         * spec.loss, spec.init and spec.bn_sync from [model] loss, init, bn_sync */
        dpt_model_spec spec;
    } model;
    struct {
        int epochs;
        int batch_size;   /* per rank */
        uint64_t seed;
        int drop_last;    /* 1: drop the ragged last global batch of an epoch */
        long max_steps;   /* 0: no limit; else stop after this many steps */
    } train;
    dpt_optim_params optim; /* decay_steps 0 here means "the rest of the run" */
    struct {                /* [optim] keys about the data-parallel update */
        int lr_scaling;     /* 0 none, 1 linear scaling rule */
        int reference_batch;
        double clip_norm;   /* 0: off */
        double clip_value;  /* 0: off */
        int nonfinite;      /* DPT_NONFINITE_SKIP or DPT_NONFINITE_ABORT */
        int shard_state;    /* DPT_SHARD_OFF, _ON or _AUTO: optimizer state sharded over ranks */
        int overlap;        /* DPT_OVERLAP_OFF, _ON or _AUTO (bucketed non-blocking reduction) */
        double bucket_mb;
        int shared_window;  /* sharded, every rank on one node: exchange through shared memory */
        double curvature_fraction; /* newton_cg, newton: share of the batch for curvature */
        long solve_samples; /* second-order batch: the first N training samples; 0: all */
    } update;
    /* [optim] keys of the second-order methods (lbfgs, cg, cg_fr, newton_cg,
     * newton, bfgs): the batch is the training set (or its first
     * update.solve_samples samples); solve.method follows optim.method */
    dpt_solve_params solve;
    struct {
        int mc_samples;   /* 0: off; K: also evaluate with K Monte Carlo dropout passes */
    } eval;
    struct {              /* [diagnostics] (spectrum lives in solve.spectrum) */
        int every;        /* steps between diagnostics; 0: off */
        int lanczos_steps;/* Hessian-vector products per Lanczos run; 0: no Lanczos */
        int noise_scale;  /* 1: gradient noise scale every step (needs >= 2 ranks) */
        double noise_decay;   /* EMA decay of the noise scale estimates */
        double grad_ratio_min;/* |g_layer| / |w_layer| below this: vanishing warning */
        double grad_ratio_max;/* above this: exploding warning */
        char file[DPT_PATH_MAX]; /* JSON-lines diagnostics file; "" = none */
    } diag;
    struct {              /* [ensemble] */
        int members;      /* k >= 1 bagged members; the ranks split into k equal groups */
        int bootstrap;    /* 1: each member trains on its own bootstrap resample */
    } ensemble;
    struct {              /* [checkpoint] */
        char dir[DPT_PATH_MAX]; /* "" = no checkpoints (not even on a stop signal) */
        long every;       /* steps between checkpoints; 0: not by steps */
        double every_seconds; /* wall seconds between checkpoints; 0: not by time */
        int keep;         /* newest checkpoints kept */
        int at_end;       /* 1: one at the end of training */
    } checkpoint;
    struct {              /* [reliability] */
        double watchdog_seconds; /* a collective waiting longer aborts the job; 0: off */
        long replica_check;  /* steps between parameter hash comparisons; 0: off */
    } reliability;
    struct {
        int every;        /* steps between log lines / metrics records */
        dpt_progress_mode progress;
        char metrics[DPT_PATH_MAX]; /* JSON-lines file; "" = none */
        int layer_stats;  /* 0: off; N: per-layer statistics every N steps */
    } log;
} dpt_config;

/* The text of configs/default.ini, embedded at build time. */
extern const char dpt_default_config_text[];

/* Fills cfg from the INI `text` (source_name names it in messages, e.g. the
 * file path), then applies the `n_overrides` strings "section.key=value" of
 * the command line's --set, then checks that required keys were given.
 * Defaults apply to everything else. Returns DPT_OK or DPT_ERR_CONFIG with a
 * message (dpt_error_message()) such as
 *   run.ini:7: [optim] key 'lerning_rate' is unknown; did you mean 'lr'? ...
 */
dpt_status dpt_config_load(dpt_config *cfg, const char *text, const char *source_name,
                           const char *const *overrides, int n_overrides);

/* Writes cfg as INI text that dpt_config_load accepts and that yields the
 * same cfg (the resolved configuration, for logs and reproducibility). */
void dpt_config_write(const dpt_config *cfg, FILE *out);

/* Lists every section and key with its type, allowed values and default
 * (for dptrain --help). */
void dpt_config_print_keys(FILE *out);
/* The same as Markdown tables, one per section (the README's reference). */
void dpt_config_print_keys_markdown(FILE *out);

/* Joins data.dir and a file name: absolute names are kept as they are. */
void dpt_config_data_path(const dpt_config *cfg, const char *name, char *out, size_t out_size);

#endif /* DPT_CONFIG_H */
