/* The second-order path of the trainer: the distributed oracle over the
 * whole training set and a full-batch solver (src/solve), then the test
 * evaluation. Every rank runs the same solver on identical reduced values. */
#include <stdlib.h>
#include <string.h>

#include "report.h"

static dpt_solve_method solver_of(dpt_optim_method method)
{
    switch (method) {
    case DPT_OPTIM_CG: return DPT_SOLVE_CG_PR;
    case DPT_OPTIM_CG_FR: return DPT_SOLVE_CG_FR;
    case DPT_OPTIM_NEWTON_CG: return DPT_SOLVE_NEWTON_CG;
    case DPT_OPTIM_NEWTON: return DPT_SOLVE_NEWTON;
    case DPT_OPTIM_BFGS: return DPT_SOLVE_BFGS;
    default: return DPT_SOLVE_LBFGS;
    }
}

static void on_iteration(const dpt_solve_iter *it, void *user)
{
    dpt_report_iteration(user, it);
}

size_t dpt_trainer_solve_batch(const dpt_trainer *t)
{
    size_t batch = t->train_set->n_samples;
    long limit = t->cfg->update.solve_samples;
    return limit > 0 && (size_t)limit < batch ? (size_t)limit : batch;
}

/* Solves from the model's parameters; they hold the result afterwards.
 * *samples: samples passed through the model (evaluations and products). */
static dpt_status solve(dpt_trainer *t, dpt_reporter *rep, dpt_solve_report *out, double *samples)
{
    const dpt_config *cfg = t->cfg;
    size_t n = t->model.n_params;
    dpt_real *theta = malloc(sizeof(dpt_real) * (n ? n : 1));
    if (!theta) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the solver's iterate");
    memcpy(theta, t->model.params, sizeof(dpt_real) * n);
    dpt_oracle oracle;
    dpt_status st = dpt_oracle_create(&oracle, t->comm.comm, &t->model, t->train_set, 0,
                                      dpt_trainer_solve_batch(t),
                                      cfg->update.curvature_fraction, cfg->optim.weight_decay);
    if (st == DPT_OK) {
        dpt_solve_params params = cfg->solve;
        params.method = solver_of(cfg->optim.method);
        params.stop_requested = dpt_stop_requested; /* SIGTERM etc.: agreed between iterations */
        st = dpt_solve(&oracle, theta, &params, out, on_iteration, rep);
        *samples = (double)oracle.evals * oracle.n_total + (double)oracle.products * oracle.n_curv;
        dpt_oracle_destroy(&oracle);
    }
    /* the oracle left a trial point in the model: put the iterate back */
    memcpy(t->model.params, theta, sizeof(dpt_real) * n);
    free(theta);
    return st;
}

/* The iterate as a checkpoint: at the end ([checkpoint] at_end) and when a
 * stop signal ended the solve. The step counts solver iterations over
 * resumed runs; a resumed solve starts from the iterate and rebuilds its
 * curvature (history, matrix) from there. Collective. */
static dpt_status checkpoint_solution(dpt_trainer *t, dpt_reporter *rep, const dpt_solve_report *solved,
                                      dpt_run_report *report)
{
    const dpt_config *cfg = t->cfg;
    int stopped = solved->reason == DPT_SOLVE_STOP_REQUESTED;
    t->step += solved->iterations;
    if (stopped) report->stopped = dpt_stop_requested() ? dpt_stop_requested() : -1;
    if (cfg->checkpoint.dir[0] != '\0' && (stopped || cfg->checkpoint.at_end)) {
        char path[2 * DPT_PATH_MAX];
        double begin = MPI_Wtime();
        dpt_status st = dpt_trainer_checkpoint(t, stopped ? "signal" : "end", path, sizeof path);
        if (st != DPT_OK) return st;
        dpt_report_checkpoint(rep, t, stopped ? "signal" : "end", path, MPI_Wtime() - begin);
    }
    if (stopped) {
        dpt_report_solved(rep, solved);
        dpt_report_stopped(rep, t);
    }
    return DPT_OK;
}

dpt_status dpt_trainer_solve(dpt_trainer *t, const dpt_dataset *test_set, dpt_run_report *report)
{
    memset(report, 0, sizeof *report);
    dpt_reporter rep;
    dpt_status st = dpt_report_begin(&rep, t, test_set);
    if (st != DPT_OK) return st;
    double start = MPI_Wtime();
    dpt_solve_report solved;
    memset(&solved, 0, sizeof solved);
    double samples = 0;
    st = solve(t, &rep, &solved, &samples);
    double train_seconds = MPI_Wtime() - start;
    if (st == DPT_OK) st = checkpoint_solution(t, &rep, &solved, report);
    if (st != DPT_OK || report->stopped) {
        dpt_reporter_close(&rep);
        return st;
    }
    if (st == DPT_OK) st = dpt_trainer_evaluate(t, test_set, &report->final_test);
    if (st == DPT_OK) {
        report->steps = solved.iterations;
        report->train_seconds = train_seconds;
        report->samples_per_second = train_seconds > 0 ? samples / train_seconds : 0;
        report->total_seconds = MPI_Wtime() - start;
        dpt_report_solved(&rep, &solved);
        dpt_report_final(&rep, report);
    }
    dpt_reporter_close(&rep);
    return st;
}
