/* No allocation on the training hot path: after the first step,
 * dpt_trainer_step allocates and frees nothing, for every update path (SGD,
 * Nesterov with clipping and per-layer statistics every step, Adam, Adam
 * with sharded state, the reduction overlapping backward) and for a small
 * CNN (convolution, batch norm, max pooling, dropout). A step that
 * allocates costs a malloc/free pair per step at best and fragments or
 * page-faults at worst; worse, it can fail in the middle of a run.
 *
 * The program is linked with --wrap for the allocation functions
 * (tests/CMakeLists.txt), so every call to them from the test or from
 * libdptrain.a (linked statically into it) goes through the counters
 * below. Open MPI, OpenBLAS and the C library are shared objects, outside
 * the wrap: their internal allocations are theirs, not counted here.
 * Run under mpirun with 1, 2 and 3 ranks. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_fixture.h"

/* ---------------------------------------------------------------- counting wrappers */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

/* atomic: the stall watchdog's thread runs library code too */
static atomic_int counting;
static atomic_long allocations, frees;

static void count(atomic_long *counter)
{
    if (atomic_load(&counting)) atomic_fetch_add(counter, 1);
}

void *__wrap_malloc(size_t size) { count(&allocations); return __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { count(&allocations); return __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { count(&allocations); return __real_realloc(p, size); }
void __wrap_free(void *p)
{
    if (p) count(&frees);
    __real_free(p);
}
int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    count(&allocations);
    return __real_posix_memalign(p, align, size);
}
void *__wrap_aligned_alloc(size_t align, size_t size)
{
    count(&allocations);
    return __real_aligned_alloc(align, size);
}
char *__wrap_strdup(const char *s) { count(&allocations); return __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { count(&allocations); return __real_strndup(s, n); }

/* ---------------------------------------------------------------- the runs */

static int world_rank, world_size;

#define STEPS 24 /* 43 samples: epoch boundaries and ragged last batches at 1..3 ranks */

static const char *const mlp_config =
    "[model]\nlayers = 16 relu, 8 tanh, 4\n"
    "[train]\nepochs = 1000\nseed = 3\nbatch_size = 5\n"
    "[optim]\nlr = 0.05\nweight_decay = 0.001\n"
    "[log]\nprogress = none\nmetrics =\n";

static const char *const cnn_config =
    "[model]\nlayers = conv 4 3 pad=same, batchnorm, relu, maxpool 2, flatten, dropout 0.5, 8, "
    "batchnorm, relu, 4\nbn_sync = true\n"
    "[train]\nepochs = 1000\nseed = 3\nbatch_size = 5\n"
    "[optim]\nmethod = nesterov\nlr = 0.05\n"
    "[log]\nprogress = none\nmetrics =\n";

/* Steps 2..STEPS of a trainer from `base` with the overrides: the number
 * of allocations (and of frees) they made on this rank. */
static void run(const char *base, const char *const *sets, int n_sets, int image,
                long *allocated, long *freed)
{
    static dpt_config cfg;
    static dpt_trainer t;
    fixture_config(&cfg, base, sets, n_sets);
    dpt_dataset set;
    fixture_dataset(&set, 43);
    if (image) set.shape[0] = 1, set.shape[1] = 4, set.shape[2] = 3; /* 12 features as 4 x 3 */
    CU_ASSERT_FATAL(dpt_trainer_create(&t, &cfg, MPI_COMM_WORLD, &set) == DPT_OK);
    /* the first step may set things up lazily (MPI's and the library's own) */
    CU_ASSERT_FATAL(dpt_trainer_step(&t) == DPT_OK);
    atomic_store(&allocations, 0);
    atomic_store(&frees, 0);
    atomic_store(&counting, 1);
    int ok = 1;
    for (int s = 1; s < STEPS && ok; s++) ok = dpt_trainer_step(&t) == DPT_OK;
    atomic_store(&counting, 0);
    CU_ASSERT_FATAL(ok);
    *allocated = atomic_load(&allocations);
    *freed = atomic_load(&frees);
    dpt_trainer_destroy(&t);
    dpt_dataset_free(&set);
}

/* Zero allocations and frees on every rank; rank 0 prints what each rank saw. */
static void expect_none(const char *what, const char *base, const char *const *sets, int n_sets,
                        int image)
{
    long counts[2] = {0, 0}, worst[2] = {0, 0};
    run(base, sets, n_sets, image, &counts[0], &counts[1]);
    MPI_Allreduce(counts, worst, 2, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (world_rank == 0)
        printf("\n  %s: %ld allocations, %ld frees in steps 2..%d (most on one rank)", what, worst[0],
               worst[1], STEPS);
    CU_ASSERT_EQUAL(worst[0], 0);
    CU_ASSERT_EQUAL(worst[1], 0);
}

static void test_counter(void)
{
    /* the wrap is in force: an allocation in the window is seen */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    void *volatile p = malloc(16); /* volatile: the pair may not be optimized away */
    free(p);
    atomic_store(&counting, 0);
    CU_ASSERT_EQUAL(atomic_load(&allocations), 1);
}

static void test_sgd(void)
{
    const char *sets[] = {"optim.method=sgd"};
    expect_none("sgd", mlp_config, sets, 1, 0);
}

static void test_nesterov_stats(void)
{
    /* clipping, and the per-layer statistics on every step */
    const char *sets[] = {"optim.method=nesterov", "optim.clip_norm=0.5", "optim.clip_value=1",
                          "log.layer_stats=1"};
    expect_none("nesterov, clipping, layer statistics", mlp_config, sets, 4, 0);
}

static void test_adam(void)
{
    const char *sets[] = {"optim.method=adam"};
    expect_none("adam", mlp_config, sets, 1, 0);
}

static void test_adam_sharded(void)
{
    const char *sets[] = {"optim.method=adam", "optim.shard_state=true", "log.layer_stats=3"};
    expect_none("adam, sharded state", mlp_config, sets, 3, 0);
}

static void test_overlapped(void)
{
    /* tiny buckets: one per layer, so several reductions are in flight */
    const char *sets[] = {"optim.method=nesterov", "optim.overlap=true", "optim.bucket_mb=0.0001"};
    expect_none("nesterov, overlapped reduction", mlp_config, sets, 3, 0);
}

static void test_cnn(void)
{
    expect_none("cnn", cnn_config, NULL, 0, 1);
}

static void test_cnn_overlapped(void)
{
    const char *sets[] = {"optim.overlap=true", "optim.bucket_mb=0.0001"};
    expect_none("cnn, overlapped reduction", cnn_config, sets, 2, 1);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("no allocation after the first step", NULL, NULL);
    CU_add_test(suite, "the counting wrappers see malloc", test_counter);
    CU_add_test(suite, "MLP, sgd", test_sgd);
    CU_add_test(suite, "MLP, nesterov, clipping, layer statistics every step", test_nesterov_stats);
    CU_add_test(suite, "MLP, adam", test_adam);
    CU_add_test(suite, "MLP, adam, sharded state", test_adam_sharded);
    CU_add_test(suite, "MLP, overlapped reduction", test_overlapped);
    CU_add_test(suite, "CNN", test_cnn);
    CU_add_test(suite, "CNN, overlapped reduction", test_cnn_overlapped);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
