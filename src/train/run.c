/* The training loop: steps, periodic progress, per-epoch evaluation. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diagnose.h"
#include "dpt/watchdog.h"
#include "report.h"

/* Peak resident set of this process (Linux reports ru_maxrss in KiB). */
static size_t peak_rss_bytes(void)
{
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? (size_t)usage.ru_maxrss * 1024 : 0;
}

typedef struct run_clock {
    double start;          /* wall time at the first step */
    double window_start;   /* start of the current progress window */
    double window_samples; /* trainer->samples_seen at window_start */
    double epoch_start;
    double epoch_samples;
    double train_seconds;  /* time inside dpt_trainer_step */
    long checkpoint_step;  /* the step of the last checkpoint, -1 none */
} run_clock;

static void fill_progress(dpt_progress *p, const dpt_trainer *t, const run_clock *clock, double now)
{
    long spe = (long)t->plan.steps_per_epoch;
    memset(p, 0, sizeof *p);
    p->epochs = (t->total_steps + spe - 1) / spe;
    /* right after the last step of an epoch, show that epoch as complete */
    int at_boundary = t->epoch_step == 0 && t->step > 0;
    p->epoch = at_boundary ? t->epoch : t->epoch + 1;
    p->epoch_step = at_boundary ? spe : (long)t->epoch_step;
    p->epoch_steps = spe;
    p->step = t->step;
    p->total_steps = t->total_steps;
    p->lr = t->last_lr;
    p->elapsed_seconds = now - clock->start;
    p->train_seconds = clock->train_seconds;
    p->eta_seconds = t->step > 0 ? p->elapsed_seconds / t->step * (t->total_steps - t->step) : 0;
}

static dpt_status report_window(dpt_trainer *t, dpt_reporter *rep, run_clock *clock,
                                dpt_progress *p)
{
    double now = MPI_Wtime();
    fill_progress(p, t, clock, now);
    dpt_status st = dpt_trainer_reduce_window(t, t->window, &p->window);
    if (st != DPT_OK) return st;
    double seconds = now - clock->window_start;
    p->samples_per_second = seconds > 0 ? (t->samples_seen - clock->window_samples) / seconds : 0;
    dpt_report_progress(rep, p);
    clock->window_start = now;
    clock->window_samples = t->samples_seen;
    return DPT_OK;
}

static dpt_status finish_epoch(dpt_trainer *t, const dpt_dataset *test_set, dpt_reporter *rep,
                               run_clock *clock, dpt_progress *p, dpt_eval *test)
{
    double now = MPI_Wtime();
    double epoch_seconds = now - clock->epoch_start;
    double samples_per_second = epoch_seconds > 0 ? (t->samples_seen - clock->epoch_samples) / epoch_seconds : 0;
    dpt_eval train;
    dpt_status st = dpt_trainer_reduce_window(t, t->epoch_sums, &train);
    if (st == DPT_OK) st = dpt_trainer_evaluate(t, test_set, test);
    if (st != DPT_OK) return st;
    fill_progress(p, t, clock, now);
    dpt_report_epoch(rep, p, &train, test, epoch_seconds, samples_per_second);
    /* evaluation time is not training time: restart the windows after it */
    clock->epoch_start = clock->window_start = MPI_Wtime();
    clock->epoch_samples = clock->window_samples = t->samples_seen;
    return DPT_OK;
}

/* Writes a checkpoint and says so (stderr line, metrics record). */
static dpt_status checkpoint(dpt_trainer *t, dpt_reporter *rep, run_clock *clock, const char *reason)
{
    char path[2 * DPT_PATH_MAX];
    double begin = MPI_Wtime();
    dpt_status st = dpt_trainer_checkpoint(t, reason, path, sizeof path);
    if (st != DPT_OK) return st;
    t->checkpoint_clock = MPI_Wtime();
    clock->checkpoint_step = t->step;
    dpt_report_checkpoint(rep, t, reason, path, t->checkpoint_clock - begin);
    return DPT_OK;
}

/* After a step: a checkpoint when [checkpoint] every steps or every_seconds
 * (agreed in the step's reduction) say so, or a stop was agreed. */
static dpt_status periodic_checkpoint(dpt_trainer *t, dpt_reporter *rep, run_clock *clock)
{
    const dpt_config *cfg = t->cfg;
    int by_steps = cfg->checkpoint.every > 0 && t->step % cfg->checkpoint.every == 0;
    const char *reason = t->stop_agreed ? "signal" : by_steps ? "step" : t->checkpoint_due ? "time" : NULL;
    if (!reason || clock->checkpoint_step == t->step) return DPT_OK;
    if (cfg->checkpoint.dir[0] == '\0') {
        if (t->stop_agreed && rep->active)
            fprintf(stderr, "dptrain: warning: stopping without a checkpoint: [checkpoint] dir is empty\n");
        return DPT_OK;
    }
    return checkpoint(t, rep, clock, reason);
}

static dpt_status run_steps(dpt_trainer *t, const dpt_dataset *test_set, dpt_reporter *rep,
                            run_clock *clock, dpt_eval *test)
{
    const long every = t->cfg->log.every;
    dpt_progress p;
    memset(&p, 0, sizeof p);
    if (t->step >= t->total_steps) { /* resumed at or past the end: nothing to train */
        dpt_watchdog_phase("the evaluation", t->step);
        return dpt_trainer_evaluate(t, test_set, test);
    }
    while (t->step < t->total_steps) {
        double begin = MPI_Wtime();
        dpt_status st = dpt_trainer_step(t);
        if (st != DPT_OK) return st;
        clock->train_seconds += MPI_Wtime() - begin;
        if (t->last_skipped) dpt_report_skip(rep, t);
        if (t->stats_ready && t->cfg->log.layer_stats > 0 && t->step % t->cfg->log.layer_stats == 0)
            dpt_report_layer_stats(rep, t);
        if (t->diag_ready) dpt_diagnose_report(t, !t->console_off);
        int last = t->step == t->total_steps;
        /* collective: every rank reaches these branches at the same steps */
        if (t->step % every == 0 || last) {
            dpt_watchdog_phase("the progress report", t->step);
            st = report_window(t, rep, clock, &p);
            if (st != DPT_OK) return st;
        } else if (rep->active) {
            /* between reports the bar moves on with the last reported numbers */
            dpt_eval window = p.window;
            double samples_per_second = p.samples_per_second;
            fill_progress(&p, t, clock, MPI_Wtime());
            p.window = window;
            p.samples_per_second = samples_per_second;
            dpt_report_tick(rep, &p);
        }
        if (t->epoch_step == 0 || last) {
            dpt_watchdog_phase("the evaluation", t->step);
            st = finish_epoch(t, test_set, rep, clock, &p, test);
            if (st != DPT_OK) return st;
        }
        st = periodic_checkpoint(t, rep, clock);
        if (st != DPT_OK || t->stop_agreed) return st;
    }
    if (t->cfg->checkpoint.at_end && t->cfg->checkpoint.dir[0] != '\0' && clock->checkpoint_step != t->step)
        return checkpoint(t, rep, clock, "end");
    return DPT_OK;
}

/* Can checkpoints be written into `dir`? dpt_ckpt_save creates the
 * directory (one level) at the first checkpoint; finding out there that it
 * cannot would cost the work done until then. So before the first step:
 * the directory (made here if missing, as the save would, and removed again)
 * must take a new file. Leaves nothing behind. */
static dpt_status check_checkpoint_dir(const char *dir)
{
    struct stat info;
    int made = 0;
    if (stat(dir, &info) == 0) {
        if (!S_ISDIR(info.st_mode))
            return DPT_FAIL(DPT_ERR_IO, "cannot write checkpoints into %s ([checkpoint] dir): it is not "
                            "a directory", dir);
    } else if (errno == ENOENT && mkdir(dir, 0777) == 0) {
        made = 1;
    } else {
        int err = errno;
        /* ENOENT: a missing parent, or a file system that takes no new
         * directory (/proc) */
        char parent[2 * DPT_PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash) *(slash == parent ? slash + 1 : slash) = '\0';
        int no_parent = err == ENOENT && stat(slash ? parent : ".", &info) != 0;
        return DPT_FAIL(DPT_ERR_IO, "cannot write checkpoints into %s ([checkpoint] dir): cannot create "
                        "the directory: %s%s%s%s", dir, strerror(err),
                        no_parent ? " (dptrain creates the last level only; " : "",
                        no_parent ? parent : "", no_parent ? " does not exist)" : "");
    }
    char probe[2 * DPT_PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.dptrain-write-test.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    int err = errno;
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    if (made) rmdir(dir);
    if (fd < 0)
        return DPT_FAIL(DPT_ERR_IO, "cannot write checkpoints into %s ([checkpoint] dir): %s", dir,
                        strerror(err));
    return DPT_OK;
}

dpt_status dpt_trainer_run(dpt_trainer *t, const dpt_dataset *test_set, dpt_run_report *report)
{
    memset(report, 0, sizeof *report);
    dpt_status st = DPT_OK;
    if (t->comm.rank == 0 && t->cfg->checkpoint.dir[0] != '\0')
        st = check_checkpoint_dir(t->cfg->checkpoint.dir);
    st = dpt_agree_status(&t->comm, st, NULL); /* before the metrics file is made */
    if (st != DPT_OK) {
        t->agreed_failure = 1;
        return st;
    }
    dpt_reporter rep;
    st = dpt_report_begin(&rep, t, test_set);
    if (st != DPT_OK) return st; /* agreed (t->agreed_failure) */
    dpt_diagnose_header(t);      /* now that a resume has set the step */
    run_clock clock;
    clock.start = clock.window_start = clock.epoch_start = MPI_Wtime();
    clock.window_samples = clock.epoch_samples = t->samples_seen;
    clock.train_seconds = 0;
    clock.checkpoint_step = t->step > 0 ? t->step : -1; /* resumed: that checkpoint exists */
    t->checkpoint_clock = clock.start;
    st = run_steps(t, test_set, &rep, &clock, &report->final_test);
    if (st == DPT_OK && t->stop_agreed) {
        /* stopped by a signal: no final evaluation, the batch system wants us gone */
        report->stopped = dpt_stop_requested() ? dpt_stop_requested() : -1;
        report->steps = t->step;
        dpt_report_stopped(&rep, t);
    } else if (st == DPT_OK) {
        report->steps = t->step;
        report->train_seconds = clock.train_seconds;
        report->total_seconds = MPI_Wtime() - clock.start;
        report->samples_per_second = clock.train_seconds > 0 ? t->samples_seen / clock.train_seconds : 0;
        report->skipped_steps = t->skipped_steps;
        report->comm_ms_per_step = t->step > 0 ? 1e3 * t->comm_seconds / (double)t->step : 0;
        report->optimizer_state_bytes = dpt_optimizer_state_bytes(&t->opt);
        report->peak_rss_bytes = peak_rss_bytes();
        dpt_report_final(&rep, report);
        dpt_diagnose_summary(t, !t->console_off);
    }
    dpt_reporter_close(&rep);
    return st;
}
