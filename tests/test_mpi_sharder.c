/* The sharder's reduce-scatter and all-gather (src/dist/sharder.c) against
 * MPI_Allreduce, for vectors of one piece (reduced and gathered in place)
 * and of many (bounded buffers), with slices of unequal length, shorter
 * than a piece, or empty (more ranks than elements). The values are small
 * integers, whose sums are exact in any order, so the results must match
 * bit for bit. The same through the shared-memory window (every rank on
 * this node), with and without evicting what was read, and the tuner that
 * chooses between the two. Run under mpirun with 1, 2 and 3 ranks. */
#include <string.h>

#include "mpi_fixture.h"

static int world_rank, world_size;

/* element i of rank r's vector: an integer, different per rank */
static dpt_real value(size_t i, int r) { return (dpt_real)((i * 7 + (size_t)r * 13) % 29) - 14; }

static void check(size_t n, size_t piece_elems)
{
    static dpt_real buf[4096], want[4096], before[4096];
    CU_ASSERT_FATAL(n <= 4096);
    dpt_comm comm;
    CU_ASSERT_FATAL(dpt_comm_wrap(&comm, MPI_COMM_WORLD) == DPT_OK);
    dpt_sharder s;
    CU_ASSERT_FATAL(dpt_sharder_create(&s, &comm, n, piece_elems) == DPT_OK);
    for (size_t i = 0; i < n; i++) buf[i] = want[i] = value(i, world_rank);
    memcpy(before, buf, sizeof(dpt_real) * n);
    CU_ASSERT_FATAL(dpt_allreduce_sum_real(&comm, want, n) == DPT_OK);

    CU_ASSERT_FATAL(dpt_sharder_reduce_scatter(&s, buf) == DPT_OK);
    int slice_ok = memcmp(buf + s.lo, want + s.lo, sizeof(dpt_real) * s.len) == 0;
    int rest_ok = memcmp(buf, before, sizeof(dpt_real) * s.lo) == 0 &&
                  memcmp(buf + s.lo + s.len, before + s.lo + s.len, sizeof(dpt_real) * (n - s.lo - s.len)) == 0;
    CU_ASSERT(fixture_all_ranks(slice_ok));
    CU_ASSERT(fixture_all_ranks(rest_ok)); /* the rest of buf is left as it was */

    /* the all-gather of every rank's slice: the whole sum everywhere */
    for (size_t i = 0; i < n; i++)
        if (i < s.lo || i >= s.lo + s.len) buf[i] = (dpt_real)-1000;
    CU_ASSERT_FATAL(dpt_sharder_allgather(&s, buf) == DPT_OK);
    CU_ASSERT(fixture_all_ranks(memcmp(buf, want, sizeof(dpt_real) * n) == 0));
    dpt_sharder_destroy(&s);
}

static void test_one_piece(void)
{
    check(1000, 1 << 20);
    check(1001, 1001); /* exactly one piece */
}

static void test_many_pieces(void)
{
    check(1000, 7);   /* slices of hundreds in pieces of 7 */
    check(1003, 100); /* uneven slices */
    check(10, 3);
}

static void test_tiny(void)
{
    check(1, 1 << 20); /* ranks beyond the first own nothing */
    check(2, 1);
}

/* Parameters and gradients moved into the shared window: the reduce-scatter
 * and all-gather read the other ranks' parts directly, with and without
 * evicting them afterwards, and give what the messages give; unsharing
 * copies the buffers back. */
static void check_shared(size_t n)
{
    static dpt_real own_params[4096], own_grads[4096], want[4096];
    CU_ASSERT_FATAL(n <= 4096);
    dpt_comm comm;
    CU_ASSERT_FATAL(dpt_comm_wrap(&comm, MPI_COMM_WORLD) == DPT_OK);
    dpt_sharder s;
    CU_ASSERT_FATAL(dpt_sharder_create(&s, &comm, n, 1 << 20) == DPT_OK);
    dpt_real *params = own_params, *grads = own_grads;
    for (size_t i = 0; i < n; i++) own_params[i] = (dpt_real)i;
    CU_ASSERT_FATAL(fixture_all_ranks(dpt_sharder_share(&s, &params, &grads) == DPT_OK));
    CU_ASSERT(s.shared == (world_size > 1)); /* mpirun on one machine */
    CU_ASSERT((params != own_params) == (world_size > 1));
    CU_ASSERT(fixture_all_ranks(memcmp(params, own_params, sizeof(dpt_real) * n) == 0));
    for (int round = 0; round < 4; round++) {
        s.tuner.evict = round % 2; /* what the tuner would choose, both ways */
        for (size_t i = 0; i < n; i++) grads[i] = want[i] = value(i + (size_t)round, world_rank);
        CU_ASSERT_FATAL(dpt_allreduce_sum_real(&comm, want, n) == DPT_OK);
        CU_ASSERT_FATAL(dpt_sharder_reduce_scatter(&s, grads) == DPT_OK);
        CU_ASSERT(fixture_all_ranks(memcmp(grads + s.lo, want + s.lo, sizeof(dpt_real) * s.len) == 0));
        /* the parameters: this rank's slice is the sum, the rest stale */
        for (size_t i = 0; i < n; i++) params[i] = i >= s.lo && i < s.lo + s.len ? want[i] : (dpt_real)-1000;
        CU_ASSERT_FATAL(dpt_sharder_allgather(&s, params) == DPT_OK);
        CU_ASSERT(fixture_all_ranks(memcmp(params, want, sizeof(dpt_real) * n) == 0));
    }
    CU_ASSERT_EQUAL(s.tuner.steps, world_size > 1 ? 4 : 0); /* an all-gather ends a step */
    dpt_sharder_unshare(&s, &params, &grads);
    CU_ASSERT(params == own_params && grads == own_grads);
    CU_ASSERT(fixture_all_ranks(memcmp(own_params, want, sizeof(dpt_real) * n) == 0));
    dpt_sharder_destroy(&s);
}

static void test_shared_window(void)
{
    check_shared(1000);
    check_shared(1003);
    check_shared(2); /* ranks beyond the first own nothing */
}

/* The tuner's cycle on made-up step times: 17 steps with eviction (2 to
 * settle, 15 timed), 17 without, then the faster way until the cycle ends;
 * one very long step (an evaluation) does not decide it. */
static void run_tuner(dpt_evict_tuner *t, double with, double without, int *pattern, long steps)
{
    double now = 0;
    dpt_evict_tuner_init(t);
    for (long k = 0; k < steps; k++) {
        pattern[k] = t->evict;
        now += (t->evict ? with : without) * (k == 5 ? 100 : 1); /* step 5 (evicting) is long */
        dpt_evict_tuner_step(t, now);
    }
}

static void test_evict_tuner(void)
{
    enum { STEPS = DPT_EVICT_CYCLE + 40 };
    static int pattern[STEPS];
    dpt_evict_tuner t;
    for (int faster_with = 0; faster_with < 2; faster_with++) {
        run_tuner(&t, faster_with ? 1.0 : 1.2, faster_with ? 1.2 : 1.0, pattern, STEPS);
        int ok = 1;
        long evicting = 0;
        for (long k = 0; k < STEPS; k++) {
            long at = k % DPT_EVICT_CYCLE;
            int want = at < 17 ? 1 : at < 34 ? 0 : faster_with;
            ok &= pattern[k] == want;
            evicting += want;
        }
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(t.evicting_steps, evicting);
        CU_ASSERT_EQUAL(t.steps, STEPS);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("sharder", NULL, NULL);
    CU_add_test(suite, "one piece: in place", test_one_piece);
    CU_add_test(suite, "many pieces: bounded buffers", test_many_pieces);
    CU_add_test(suite, "fewer elements than ranks", test_tiny);
    CU_add_test(suite, "shared window, evicting or not", test_shared_window);
    CU_add_test(suite, "the eviction tuner's cycle", test_evict_tuner);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
