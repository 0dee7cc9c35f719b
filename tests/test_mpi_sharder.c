/* The sharder's reduce-scatter and all-gather (src/dist/sharder.c) against
 * MPI_Allreduce, for vectors of one piece (reduced and gathered in place)
 * and of many (bounded buffers), with slices of unequal length, shorter
 * than a piece, or empty (more ranks than elements). The values are small
 * integers, whose sums are exact in any order, so the results must match
 * bit for bit. Run under mpirun with 1, 2 and 3 ranks. */
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
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
