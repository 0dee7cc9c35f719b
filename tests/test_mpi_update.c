/* The data-parallel update paths agree: for every optimizer, the blocking
 * allreduce, the bucketed allreduce that overlaps the backward pass, and
 * sharded optimizer state (reduce-scatter, slice update, all-gather) give
 * the same parameters, with uneven slices, clipping and layer statistics;
 * sharding divides the optimizer state over the ranks; a NaN injected on one
 * rank only is seen by every rank, which all skip the step or all stop,
 * also when the norm is checked after the update.
 * Run under mpirun with 1, 2 and 3 ranks. */
#include <math.h>
#include <string.h>

#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define MAX_ABS_DIFF 1e-11
#else
/* with 3 ranks a reduce-scatter adds in another order than an allreduce;
 * rmsprop_nesterov's g / sqrt(r) magnifies those last bits most */
#define MAX_ABS_DIFF 1e-5
#endif
/* a step of 5e-6 measured as the difference of two floats near 0.3 carries
 * their rounding (~3e-8): relative 1e-2 in single */
#ifdef DPT_DOUBLE
#define STEP_REL_TOL 1e-9
#else
#define STEP_REL_TOL 1e-2
#endif
#define STEPS 15

static int world_rank, world_size;

/* 103 samples, batch 5 per rank: ragged last batches. The model has
 * 12*9+9 + 9*4+4 = 157 parameters: uneven slices for 2 and 3 ranks, and
 * tiny buckets split it into one bucket per layer. */
static const char *const base_config =
    "[model]\nlayers = 9 tanh, 4\n"
    "[train]\nepochs = 100\nseed = 3\nbatch_size = 5\n"
    "[optim]\nlr = 0.05\nweight_decay = 0.001\nclip_norm = 0.5\n"
    "[log]\nprogress = none\nmetrics =\nlayer_stats = 5\n";

typedef struct run_result {
    dpt_real params[1024];
    size_t n;
    size_t state_bytes;
    double grad_norm;
    dpt_layer_stat stats[4];
} run_result;

static void train_with(run_result *out, const char *method, const char *path, double bucket_mb,
                       const char *const *extra, int n_extra)
{
    static dpt_config cfg;
    static dpt_trainer t;
    char method_set[64], bucket_set[64];
    snprintf(method_set, sizeof method_set, "optim.method=%s", method);
    snprintf(bucket_set, sizeof bucket_set, "optim.bucket_mb=%g", bucket_mb);
    const char *shard = !strcmp(path, "sharded") ? "optim.shard_state=true" : "optim.shard_state=false";
    const char *overlap = !strcmp(path, "overlap") ? "optim.overlap=true" : "optim.overlap=false";
    const char *sets[8] = {method_set, bucket_set, shard, overlap};
    for (int i = 0; i < n_extra && i < 4; i++) sets[4 + i] = extra[i];
    fixture_config(&cfg, base_config, sets, 4 + (n_extra < 4 ? n_extra : 4));
    dpt_dataset set;
    fixture_dataset(&set, 103);
    CU_ASSERT_FATAL(dpt_trainer_create(&t, &cfg, MPI_COMM_WORLD, &set) == DPT_OK);
    CU_ASSERT_FATAL(t.sharded == !strcmp(path, "sharded"));
    CU_ASSERT_FATAL(t.overlapped == (!strcmp(path, "overlap") && world_size > 1));
    for (int s = 0; s < STEPS; s++) CU_ASSERT_FATAL(dpt_trainer_step(&t) == DPT_OK);
    CU_ASSERT_FATAL(t.model.n_params <= 1024);
    out->n = t.model.n_params;
    memcpy(out->params, t.model.params, sizeof(dpt_real) * out->n);
    out->state_bytes = dpt_optimizer_state_bytes(&t.opt);
    out->grad_norm = t.grad_norm;
    memcpy(out->stats, t.layer_stats, sizeof out->stats);
    CU_ASSERT(dpt_check_replicas(&t.comm, t.model.params, sizeof(dpt_real) * out->n, NULL) == DPT_OK);
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

static void train(run_result *out, const char *method, const char *path, double bucket_mb)
{
    train_with(out, method, path, bucket_mb, NULL, 0);
}

static double max_diff(const run_result *a, const run_result *b)
{
    double worst = 0;
    for (size_t i = 0; i < a->n; i++) worst = fmax(worst, fabs((double)a->params[i] - b->params[i]));
    return worst;
}

static void check_method(const char *method)
{
    static run_result blocking, overlap, sharded;
    train(&blocking, method, "blocking", 4);
    train(&overlap, method, "overlap", 0.0002); /* ~50 values: a bucket per layer */
    train(&sharded, method, "sharded", 4);
    double d_overlap = max_diff(&overlap, &blocking), d_shard = max_diff(&sharded, &blocking);
    if (world_rank == 0)
        printf("\n  %-16s ranks %d: |overlap - blocking| %.2g, |sharded - blocking| %.2g, "
               "state %zu -> %zu bytes", method, world_size, d_overlap, d_shard,
               blocking.state_bytes, sharded.state_bytes);
    CU_ASSERT(fixture_all_ranks(d_overlap <= MAX_ABS_DIFF));
    CU_ASSERT(fixture_all_ranks(d_shard <= MAX_ABS_DIFF));
    CU_ASSERT_DOUBLE_EQUAL(sharded.grad_norm, blocking.grad_norm, 1e-5 * blocking.grad_norm);
    CU_ASSERT_DOUBLE_EQUAL(sharded.stats[0].update_ratio, blocking.stats[0].update_ratio,
                           1e-4 * blocking.stats[0].update_ratio + 1e-12);
    /* sharded state: this rank's slice of the moments, summing to the whole */
    unsigned long long total = sharded.state_bytes;
    MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(total, blocking.state_bytes);
    if (world_size > 1 && blocking.state_bytes > 0) CU_ASSERT(sharded.state_bytes < blocking.state_bytes);
}

static void test_sgd(void) { check_method("sgd"); }
static void test_momentum(void) { check_method("momentum"); }
static void test_nesterov(void) { check_method("nesterov"); }
static void test_adagrad(void) { check_method("adagrad"); }
static void test_rmsprop(void) { check_method("rmsprop"); }
static void test_rmsprop_nesterov(void) { check_method("rmsprop_nesterov"); }
static void test_adam(void) { check_method("adam"); }
static void test_adamw(void) { check_method("adamw"); }

/* Without clipping or layer statistics and with nonfinite = abort, the
 * norm comes from the update's own pass and is checked after it; with
 * nonfinite = skip it is summed before the update. Same parameters and
 * norm bit for bit on every path: Nesterov sums inside its loop, Adam in a
 * pass of its own. */
static void check_norm_after_update(const char *method)
{
    static run_result before, after;
    const char *const checked_before[] = {"optim.clip_norm=0", "log.layer_stats=0", "optim.nonfinite=skip"};
    const char *const checked_after[] = {"optim.clip_norm=0", "log.layer_stats=0", "optim.nonfinite=abort"};
    const char *const paths[] = {"blocking", "overlap", "sharded"};
    for (int i = 0; i < 3; i++) {
        train_with(&before, method, paths[i], 0.0002, checked_before, 3);
        train_with(&after, method, paths[i], 0.0002, checked_after, 3);
        int same = memcmp(before.params, after.params, sizeof(dpt_real) * before.n) == 0;
        CU_ASSERT(fixture_all_ranks(same && before.grad_norm == after.grad_norm && after.grad_norm > 0));
    }
}

/* The sharded exchange through the shared-memory window (the default with
 * every rank on this machine) and through messages: the same sums in the
 * same order, so the same parameters bit for bit. */
static void test_shared_window_equals_messages(void)
{
    static run_result window, messages;
    const char *const use_window[] = {"optim.shared_window=true"};
    const char *const use_messages[] = {"optim.shared_window=false"};
    train_with(&window, "nesterov", "sharded", 4, use_window, 1);
    train_with(&messages, "nesterov", "sharded", 4, use_messages, 1);
    int same = memcmp(window.params, messages.params, sizeof(dpt_real) * window.n) == 0;
    CU_ASSERT(fixture_all_ranks(same && window.grad_norm == messages.grad_norm));
}

static void test_norm_after_update(void)
{
    check_norm_after_update("nesterov");
    check_norm_after_update("adam");
}

/* NaN in layer 3's gradient (the output layer) on the last rank at step 4. */
static dpt_status run_with_nan(const char *policy, const char *path, const char *method, int clip,
                               dpt_trainer *t, int *skipped_at)
{
    static dpt_config cfg;
    char policy_set[64];
    snprintf(policy_set, sizeof policy_set, "optim.nonfinite=%s", policy);
    const char *shard = !strcmp(path, "sharded") ? "optim.shard_state=true" : "optim.shard_state=false";
    const char *overlap = !strcmp(path, "overlap") ? "optim.overlap=true" : "optim.overlap=false";
    /* tiny buckets: the NaN must enter its bucket before that bucket leaves */
    char method_set[64];
    snprintf(method_set, sizeof method_set, "optim.method=%s", method);
    /* without clipping and statistics, abort checks after the update */
    const char *sets[] = {policy_set, shard, overlap, "optim.bucket_mb=0.0002", method_set,
                          clip ? "optim.clip_norm=0.5" : "optim.clip_norm=0",
                          clip ? "log.layer_stats=5" : "log.layer_stats=0"};
    fixture_config(&cfg, base_config, sets, 7);
    static dpt_dataset set; /* outlives the trainer; the previous call's is freed here */
    dpt_dataset_free(&set);
    fixture_dataset(&set, 103);
    CU_ASSERT_FATAL(dpt_trainer_create(t, &cfg, MPI_COMM_WORLD, &set) == DPT_OK);
    t->fault = (dpt_fault){.step = 3, .rank = world_size - 1, .layer = 2};
    dpt_status st = DPT_OK;
    *skipped_at = -1;
    for (int s = 0; s < 8 && st == DPT_OK; s++) {
        st = dpt_trainer_step(t);
        if (st == DPT_OK && t->last_skipped) *skipped_at = s;
    }
    return st;
}

static void check_nan(const char *path)
{
    static dpt_trainer t;
    int skipped_at;
    dpt_status st = run_with_nan("skip", path, "adam", 1, &t, &skipped_at);
    CU_ASSERT(fixture_all_ranks(st == DPT_OK && skipped_at == 3 && t.skipped_steps == 1));
    CU_ASSERT(fixture_all_ranks(t.last_bad_layer == 2 || skipped_at != 3));
    CU_ASSERT(dpt_check_replicas(&t.comm, t.model.params, sizeof(dpt_real) * t.model.n_params, NULL) == DPT_OK);
    int finite = 1;
    for (size_t i = 0; i < t.model.n_params; i++) finite &= isfinite(t.model.params[i]) != 0;
    CU_ASSERT(fixture_all_ranks(finite));
    CU_ASSERT_EQUAL(t.opt.step, 7); /* 8 steps, one skipped: Adam's t did not advance */
    dpt_trainer_destroy(&t);

    /* checked before the update (clipping on), and after it (Adam: its own
     * norm pass; Nesterov: the norm from its update loop) */
    for (int variant = 0; variant < 3; variant++) {
        st = run_with_nan("abort", path, variant == 2 ? "nesterov" : "adam", variant == 0, &t, &skipped_at);
        int named = strstr(dpt_error_message(), "step 4") && strstr(dpt_error_message(), "layer 3");
        if (world_rank == 0) printf("\n  %s, abort (variant %d): %s", path, variant, dpt_error_message());
        CU_ASSERT(fixture_all_ranks(st == DPT_ERR_NUMERIC && t.step == 3 && named));
        dpt_trainer_destroy(&t);
    }
}

/* One SGD step from the same start with clipping: by norm the step is
 * exactly lr x clip_norm long; by value no element moves more than
 * lr x clip_value, and the largest moves exactly that. */
static double one_sgd_step(const char *clip_set, dpt_real *delta, size_t *n)
{
    static dpt_config cfg;
    static dpt_trainer t;
    const char *sets[] = {"optim.method=sgd", "optim.weight_decay=0", "optim.clip_norm=0", clip_set};
    fixture_config(&cfg, base_config, sets, 4);
    dpt_dataset set;
    fixture_dataset(&set, 103);
    CU_ASSERT_FATAL(dpt_trainer_create(&t, &cfg, MPI_COMM_WORLD, &set) == DPT_OK);
    *n = t.model.n_params;
    memcpy(delta, t.model.params, sizeof(dpt_real) * *n);
    CU_ASSERT_FATAL(dpt_trainer_step(&t) == DPT_OK);
    for (size_t i = 0; i < *n; i++) delta[i] = t.model.params[i] - delta[i];
    double norm = t.grad_norm;
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
    return norm;
}

static void test_clipping(void)
{
    static dpt_real delta[1024];
    size_t n;
    double grad_norm = one_sgd_step("optim.clip_norm=0.01", delta, &n);
    double step = 0, largest = 0;
    for (size_t i = 0; i < n; i++) step += (double)delta[i] * delta[i];
    CU_ASSERT(grad_norm > 0.01); /* so that clipping acted */
    CU_ASSERT_DOUBLE_EQUAL(sqrt(step), 0.05 * 0.01, STEP_REL_TOL * 0.05 * 0.01);
    one_sgd_step("optim.clip_value=0.0001", delta, &n);
    for (size_t i = 0; i < n; i++) largest = fmax(largest, fabs((double)delta[i]));
    CU_ASSERT_DOUBLE_EQUAL(largest, 0.05 * 0.0001, STEP_REL_TOL * 0.05 * 0.0001);
}

static void test_nan_overlapped(void) { check_nan("overlap"); }
static void test_nan_blocking(void) { check_nan("blocking"); }
static void test_nan_sharded(void) { check_nan("sharded"); }

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("update paths", NULL, NULL);
    CU_add_test(suite, "sgd", test_sgd);
    CU_add_test(suite, "momentum", test_momentum);
    CU_add_test(suite, "nesterov", test_nesterov);
    CU_add_test(suite, "adagrad", test_adagrad);
    CU_add_test(suite, "rmsprop", test_rmsprop);
    CU_add_test(suite, "rmsprop_nesterov", test_rmsprop_nesterov);
    CU_add_test(suite, "adam", test_adam);
    CU_add_test(suite, "adamw", test_adamw);
    CU_add_test(suite, "norm from the update's pass, checked after it", test_norm_after_update);
    CU_add_test(suite, "shared window and messages agree bit for bit", test_shared_window_equals_messages);
    CU_add_test(suite, "clipping by norm and by value", test_clipping);
    CU_add_test(suite, "NaN on one rank, overlapped: all skip or all stop", test_nan_overlapped);
    CU_add_test(suite, "NaN on one rank, blocking: all skip or all stop", test_nan_blocking);
    CU_add_test(suite, "NaN on one rank, sharded: all skip or all stop", test_nan_sharded);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
