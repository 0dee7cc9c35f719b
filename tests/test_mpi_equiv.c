/* MPI equivalence: P ranks with local batch b take exactly the steps one
 * rank takes with batch P*b (gradients are sums; the reduction sums over
 * ranks; the divisor is the global sample count). Run under mpirun with 1, 2
 * and 3 ranks. Data set sizes are chosen so that the last global batch of an
 * epoch is ragged, and in one case smaller than the number of ranks (some
 * ranks then contribute no samples to that step). */
#include "mpi_fixture.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/config.h"
#include "dpt/rng.h"
#include "dpt/train.h"

#ifdef DPT_DOUBLE
#define MAX_ABS_DIFF 1e-11
#else
#define MAX_ABS_DIFF 1e-5
#endif
#define LOCAL_BATCH 5
#define STEPS 20

static int world_rank, world_size;

static const char *const mlp_layers = "model.layers=16 tanh, 8 relu, 4";
/* batch norm with synchronized statistics (the default), before and after
 * the flatten: per channel over B x H x W, then per feature */
static const char *const cnn_layers =
    "model.layers=conv 3 2 pad=same, batchnorm, relu, maxpool 2 stride=1, conv 4 2, tanh, "
    "flatten, 8, batchnorm, relu, 4";

static const char *const base_config =
    "[model]\nlayers = 4\n"
    "[train]\nepochs = 100\nseed = 7\n"
    "[optim]\nmethod = nesterov\nlr = 0.1\nmomentum = 0.9\nweight_decay = 0.001\n"
    "schedule = linear\nlr_final = 0.01\ndecay_steps = 15\n"
    "[log]\nprogress = none\nmetrics =\n";

static void load_config(dpt_config *cfg, int batch, const char *method, int drop_last,
                        const char *layers)
{
    char batch_set[64], method_set[64], drop_set[64];
    snprintf(batch_set, sizeof batch_set, "train.batch_size=%d", batch);
    snprintf(method_set, sizeof method_set, "optim.method=%s", method);
    snprintf(drop_set, sizeof drop_set, "train.drop_last=%s", drop_last ? "true" : "false");
    const char *overrides[] = {batch_set, method_set, drop_set, layers};
    fixture_config(cfg, base_config, overrides, 4);
}

static void train_steps(dpt_trainer *t, const dpt_config *cfg, MPI_Comm comm, const dpt_dataset *set)
{
    CU_ASSERT_FATAL(dpt_trainer_create(t, cfg, comm, set) == DPT_OK);
    for (int s = 0; s < STEPS; s++) CU_ASSERT_FATAL(dpt_trainer_step(t) == DPT_OK);
}

static void check_equivalence(size_t n_samples, const char *method, int drop_last, int cnn)
{
    dpt_dataset set;
    fixture_dataset(&set, n_samples);
    if (cnn) set.shape[0] = 1, set.shape[1] = 4, set.shape[2] = 3; /* 12 features as a 4 x 3 image */
    static dpt_config dist_cfg, serial_cfg;
    const char *layers = cnn ? cnn_layers : mlp_layers;
    load_config(&dist_cfg, LOCAL_BATCH, method, drop_last, layers);
    load_config(&serial_cfg, LOCAL_BATCH * world_size, method, drop_last, layers);
    static dpt_trainer dist, serial;
    train_steps(&dist, &dist_cfg, MPI_COMM_WORLD, &set);
    train_steps(&serial, &serial_cfg, MPI_COMM_SELF, &set);
    double worst = 0, moved = 0;
    static dpt_model init;
    CU_ASSERT_FATAL(dpt_model_create(&init, dist.model.input, &dist_cfg.model.spec, 1) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_init_params(&init, dist_cfg.train.seed, NULL) == DPT_OK);
    for (size_t p = 0; p < dist.model.n_params; p++) {
        worst = fmax(worst, fabs((double)dist.model.params[p] - serial.model.params[p]));
        moved = fmax(moved, fabs((double)dist.model.params[p] - init.params[p]));
    }
    /* batch-norm running averages: the same statistics, the same state */
    for (size_t i = 0; i < dist.model.n_state; i++)
        worst = fmax(worst, fabs((double)dist.model.state[i] - serial.model.state[i]));
    if (world_rank == 0)
        printf("\n  %s n=%zu %s drop_last=%d ranks=%d: max |P-rank - serial| = %.3g (parameters moved up to %.3g)",
               cnn ? "CNN+BN" : "MLP", n_samples, method, drop_last, world_size, worst, moved);
    CU_ASSERT(fixture_all_ranks(worst < MAX_ABS_DIFF));
    CU_ASSERT(fixture_all_ranks(moved > 1e-2)); /* training really happened */
    CU_ASSERT(dpt_check_replicas(&dist.comm, dist.model.params,
                                 sizeof(dpt_real) * dist.model.n_params, NULL) == DPT_OK);
    CU_ASSERT_EQUAL(dist.samples_seen, serial.samples_seen);
    dpt_eval dist_eval, serial_eval;
    CU_ASSERT(dpt_trainer_evaluate(&dist, &set, &dist_eval) == DPT_OK);
    CU_ASSERT(dpt_trainer_evaluate(&serial, &set, &serial_eval) == DPT_OK);
    CU_ASSERT_EQUAL(dist_eval.samples, (long)n_samples);
    CU_ASSERT_DOUBLE_EQUAL(dist_eval.loss, serial_eval.loss, 1e-4);
    dpt_model_destroy(&init);
    dpt_trainer_destroy(&dist);
    dpt_trainer_destroy(&serial);
    dpt_dataset_free(&set);
}

/* 103 = 6 x 15 + 13, = 10 x 10 + 3: ragged last batch on 2 and 3 ranks */
static void test_ragged_nesterov(void) { check_equivalence(103, "nesterov", 0, 0); }
static void test_ragged_momentum(void) { check_equivalence(103, "momentum", 0, 0); }
/* 91 = 6 x 15 + 1 = 9 x 10 + 1: a last batch of one sample, fewer than ranks */
static void test_tiny_last_batch(void) { check_equivalence(91, "sgd", 0, 0); }
static void test_drop_last(void) { check_equivalence(103, "nesterov", 1, 0); }
/* synchronized batch norm: P ranks x b compute the statistics of P b samples */
static void test_cnn_sync_bn(void) { check_equivalence(103, "nesterov", 0, 1); }
/* ... also when some ranks hold no sample of the last batch */
static void test_cnn_sync_bn_tiny_last(void) { check_equivalence(91, "momentum", 0, 1); }

static void test_replica_check_detects_divergence(void)
{
    double value = world_rank == world_size - 1 && world_size > 1 ? 1.5 : 1.0;
    dpt_comm comm;
    CU_ASSERT_FATAL(dpt_comm_wrap(&comm, MPI_COMM_WORLD) == DPT_OK);
    dpt_status st = dpt_check_replicas(&comm, &value, sizeof value, NULL);
    CU_ASSERT(st == (world_size > 1 ? DPT_ERR_DIVERGED : DPT_OK));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("mpi_equivalence", NULL, NULL);
    CU_add_test(suite, "ragged epochs, nesterov + weight decay + linear decay", test_ragged_nesterov);
    CU_add_test(suite, "ragged epochs, momentum", test_ragged_momentum);
    CU_add_test(suite, "last batch smaller than the rank count", test_tiny_last_batch);
    CU_add_test(suite, "drop_last", test_drop_last);
    CU_add_test(suite, "CNN with synchronized batch norm", test_cnn_sync_bn);
    CU_add_test(suite, "CNN with synchronized batch norm, last batch < ranks", test_cnn_sync_bn_tiny_last);
    CU_add_test(suite, "replica hash detects divergence", test_replica_check_detects_divergence);
    /* every rank runs the same assertions; rank 0 prints */
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
