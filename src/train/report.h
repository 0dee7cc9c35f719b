/* Internal to src/train: what rank 0 shows people (progress bar or log
 * lines on stderr, epoch summaries on stdout) and the JSON-lines metrics. */
#ifndef DPT_TRAIN_REPORT_H
#define DPT_TRAIN_REPORT_H

#include <stdio.h>

#include "dpt/solve.h"
#include "dpt/train.h"

typedef struct dpt_reporter {
    int active;        /* rank 0 only */
    int bar;           /* 1: live bar on stderr; 0: log lines */
    int quiet;         /* progress = none (or no console) */
    int console;       /* 1: summaries on stdout; 0: metrics file only (trainer->console_off) */
    int bar_drawn;     /* a bar line is on screen and must be ended */
    double last_draw;  /* wall time of the last bar redraw */
    FILE *metrics;     /* JSON-lines file, or NULL */
    const dpt_model *model; /* head names for per-task metrics */
} dpt_reporter;

/* Progress numbers of one report point. */
typedef struct dpt_progress {
    long epoch, epochs;       /* 1-based epoch */
    long epoch_step, epoch_steps;
    long step, total_steps;   /* global */
    dpt_eval window;          /* loss and accuracy since the last report */
    double lr;
    double samples_per_second;
    double eta_seconds;
    double elapsed_seconds;
    double train_seconds;     /* inside training steps since the first (no evaluation, checkpoints) */
} dpt_progress;

/* Opens the metrics file on rank 0. Not collective. */
dpt_status dpt_reporter_open(dpt_reporter *rep, const dpt_trainer *trainer);
void dpt_reporter_close(dpt_reporter *rep);

void dpt_report_start(dpt_reporter *rep, const dpt_trainer *trainer, const dpt_dataset *test_set);
/* Opens the reporter with the outcome agreed over ranks (rank 0 may fail to
 * open the metrics file) and prints the header. Collective. On failure the
 * reporter is closed again and trainer->agreed_failure is set. */
dpt_status dpt_report_begin(dpt_reporter *rep, dpt_trainer *trainer, const dpt_dataset *test_set);
void dpt_report_progress(dpt_reporter *rep, const dpt_progress *p);
/* Redraws the bar without new numbers (throttled), e.g. every step. */
void dpt_report_tick(dpt_reporter *rep, const dpt_progress *p);
void dpt_report_epoch(dpt_reporter *rep, const dpt_progress *p, const dpt_eval *train,
                      const dpt_eval *test, double epoch_seconds, double samples_per_second);
void dpt_report_final(dpt_reporter *rep, const dpt_run_report *report);
/* One iteration of a second-order solver, and how the solver ended. */
void dpt_report_iteration(dpt_reporter *rep, const dpt_solve_iter *it);
void dpt_report_solved(dpt_reporter *rep, const dpt_solve_report *solved);
/* A step skipped for a non-finite gradient (warning and a record). */
void dpt_report_skip(dpt_reporter *rep, const dpt_trainer *trainer);
/* A checkpoint written (stderr line unless quiet, metrics record). */
void dpt_report_checkpoint(dpt_reporter *rep, const dpt_trainer *trainer, const char *reason,
                           const char *path, double seconds);
/* The run ended early on a stop request. */
void dpt_report_stopped(dpt_reporter *rep, const dpt_trainer *trainer);
/* Per-layer gradient statistics of the last step. */
void dpt_report_layer_stats(dpt_reporter *rep, const dpt_trainer *trainer);

#endif /* DPT_TRAIN_REPORT_H */
