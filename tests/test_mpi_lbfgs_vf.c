/* Vector-free L-BFGS with the history sharded over the ranks (lbfgs_vf.c)
 * against the serial two-loop recursion (dpt_lbfgs_two_loop): on
 * communicators of 1, 2 and 3 ranks (the first P ranks of the world), with
 * n = 157 (not divisible by 2 or 3) and a tiny n that leaves a rank without
 * rows, random pairs with s.y > 0 and a random g identical on every rank,
 * the directions agree for history lengths 0, 1, 3, m and a wrapped ring;
 * d is bit-identical on the ranks of the communicator; each rank stores
 * only its rows of S and Y. Run under mpirun with 1, 2 and 3 ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/solve/internal.h"
#include "mpi_fixture.h"

#ifdef DPT_DOUBLE
#define DIR_TOL 1e-10
#else
#define DIR_TOL 1e-4
#endif

#define M 5

static int world_rank, world_size;
static double worst_diff;

/* the first P ranks of the world, MPI_COMM_NULL on the others */
static MPI_Comm first_ranks(int P)
{
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank < P ? 0 : MPI_UNDEFINED, world_rank, &comm);
    return comm;
}

/* 1 if v[n] is bit-identical on every rank of comm */
static int same_on_ranks(MPI_Comm comm, const dpt_real *v, int n)
{
    dpt_real *lo = malloc(sizeof(dpt_real) * (size_t)n), *hi = malloc(sizeof(dpt_real) * (size_t)n);
    MPI_Allreduce(v, lo, n, DPT_MPI_REAL, MPI_MIN, comm);
    MPI_Allreduce(v, hi, n, DPT_MPI_REAL, MPI_MAX, comm);
    int same = memcmp(lo, hi, sizeof(dpt_real) * (size_t)n) == 0;
    free(lo), free(hi);
    return same;
}

/* Pushes `pairs` random pairs (y = D s + noise, D in [0.5, 2.5], s.y > 0)
 * into both histories, then compares the directions for a random g.
 * Returns max |d_vf - d_serial| / max |d_serial|. */
static double compare(MPI_Comm comm, dpt_lbfgs_vf *vf, int n, int pairs, uint64_t seed, int *same)
{
    dpt_real *s = malloc(sizeof(dpt_real) * (size_t)M * n), *y = malloc(sizeof(dpt_real) * (size_t)M * n);
    dpt_real *g = malloc(sizeof(dpt_real) * (size_t)n), *d_ser = malloc(sizeof(dpt_real) * (size_t)n);
    dpt_real *d_vf = malloc(sizeof(dpt_real) * (size_t)n), *diag = malloc(sizeof(dpt_real) * (size_t)n);
    double rho[M], alpha[M];
    CU_ASSERT_FATAL(s && y && g && d_ser && d_vf && diag);
    dpt_lbfgs_mem mem = {.n = (size_t)n, .m = M, .s = s, .y = y, .rho = rho, .alpha = alpha};
    dpt_rng rng;
    dpt_rng_init(&rng, seed, DPT_STREAM_TEST, 0, 0); /* the same numbers on every rank */
    for (int i = 0; i < n; i++) diag[i] = (dpt_real)(0.5 + 2 * dpt_rng_uniform(&rng));
    dpt_lbfgs_vf_reset(vf);
    for (int p = 0; p < pairs; p++) {
        dpt_real *sp = s + (size_t)mem.head * n, *yp = y + (size_t)mem.head * n;
        for (int i = 0; i < n; i++) {
            sp[i] = (dpt_real)(2 * dpt_rng_uniform(&rng) - 1);
            yp[i] = diag[i] * sp[i] + (dpt_real)(0.1 * (2 * dpt_rng_uniform(&rng) - 1));
        }
        double sy = dpt_dot_acc(n, sp, yp);
        CU_ASSERT_FATAL(sy > 0);
        mem.rho[mem.head] = 1.0 / sy;
        dpt_lbfgs_vf_push(vf, sp, yp, 1.0 / sy);
        mem.head = (mem.head + 1) % M;
        if (mem.count < M) mem.count++;
    }
    CU_ASSERT_EQUAL(vf->count, mem.count);
    CU_ASSERT_EQUAL(vf->head, mem.head);
    for (int i = 0; i < n; i++) g[i] = (dpt_real)(2 * dpt_rng_uniform(&rng) - 1);
    dpt_lbfgs_two_loop(&mem, g, d_ser);
    for (int i = 0; i < n; i++) d_vf[i] = (dpt_real)NAN; /* every entry must be written */
    CU_ASSERT(dpt_lbfgs_vf_direction(vf, g, d_vf) == DPT_OK);
    double diff = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)d_vf[i] - (double)d_ser[i]));
        scale = fmax(scale, fabs((double)d_ser[i]));
        if (isnan((double)d_vf[i])) diff = INFINITY;
    }
    *same = same_on_ranks(comm, d_vf, n);
    free(s), free(y), free(g), free(d_ser), free(d_vf), free(diag);
    return diff / scale;
}

/* One communicator size: persistent grid and per-call grid, owned storage. */
static void run_size(int P, int n)
{
    if (P > world_size) return;
    MPI_Comm comm = first_ranks(P);
    int ok = 1;
    if (comm != MPI_COMM_NULL) {
        int rank;
        MPI_Comm_rank(comm, &rank);
        dpt_lbfgs_vf vf;
        CU_ASSERT_FATAL(dpt_lbfgs_vf_create(&vf, comm, (size_t)n, M, NULL, 0, NULL) == DPT_OK);
        /* layout: rank r owns [r mb, min(n, (r + 1) mb)), mb = ceil(n / P) */
        int mb = (n + P - 1) / P, lo = rank * mb < n ? rank * mb : n;
        int hi = lo + mb < n ? lo + mb : n;
        ok &= vf.lo == lo && vf.rows == hi - lo && vf.mb == mb;
        size_t bytes = dpt_lbfgs_vf_history_bytes(&vf);
        ok &= bytes == (size_t)(hi - lo) * 2 * M * sizeof(dpt_real);
        unsigned long b = (unsigned long)bytes, total = 0, most = 0;
        MPI_Allreduce(&b, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, comm);
        MPI_Allreduce(&b, &most, 1, MPI_UNSIGNED_LONG, MPI_MAX, comm);
        ok &= total == (unsigned long)n * 2 * M * sizeof(dpt_real);
        ok &= most == (unsigned long)mb * 2 * M * sizeof(dpt_real);
        if (world_rank == 0)
            printf("\n  P %d, n %3d: history bytes per rank (rank 0) %lu, total %lu (%.3f of total)", P,
                   n, b, total, (double)b / (double)total);
        const int lengths[] = {0, 1, 3, M, M + 3}; /* M + 3: the ring has wrapped */
        for (int grid = 0; grid < 2; grid++) {
            if (grid == 1) CU_ASSERT_FATAL(dpt_lbfgs_vf_grid_open(&vf) == DPT_OK);
            for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
                int same = 0;
                double rel = compare(comm, &vf, n, lengths[k], 1000 + 17 * k + (uint64_t)n, &same);
                worst_diff = fmax(worst_diff, rel);
                if (world_rank == 0)
                    printf("\n    %s grid, %d pairs pushed: max rel diff %.3g%s",
                           grid ? "persistent" : "per-call  ", lengths[k], rel,
                           same ? "" : " (d differs across ranks!)");
                ok &= rel < DIR_TOL && same;
            }
        }
        dpt_lbfgs_vf_destroy(&vf);
        MPI_Comm_free(&comm);
    }
    CU_ASSERT(fixture_all_ranks(ok));
}

static void test_directions(void)
{
    for (int P = 1; P <= 3; P++) run_size(P, 157);
    run_size(3, 2); /* mb 1: rank 2 owns no rows */
    run_size(2, 1);
    if (world_rank == 0) printf("\n  worst max rel diff %.3g (tolerance %g)", worst_diff, DIR_TOL);
}

/* Borrowed storage: the block must hold (2m + 1) local rows; too small is
 * DPT_ERR_ARG. */
static void test_borrowed_storage(void)
{
    const int n = 157;
    size_t len = dpt_lbfgs_vf_block_len(MPI_COMM_WORLD, n, M);
    int mb = (n + world_size - 1) / world_size;
    CU_ASSERT_EQUAL(len, (size_t)(2 * M + 1) * mb);
    dpt_real *block = malloc(sizeof(dpt_real) * len);
    double rho[M];
    dpt_lbfgs_vf vf;
    CU_ASSERT(dpt_lbfgs_vf_create(&vf, MPI_COMM_WORLD, n, M, block, 3, rho) == DPT_ERR_ARG);
    CU_ASSERT_FATAL(dpt_lbfgs_vf_create(&vf, MPI_COMM_WORLD, n, M, block, len, rho) == DPT_OK);
    CU_ASSERT(vf.b == block && vf.rho == rho && !vf.own_storage);
    int same = 0;
    double rel = compare(MPI_COMM_WORLD, &vf, n, M + 1, 7, &same);
    CU_ASSERT(fixture_all_ranks(rel < DIR_TOL && same));
    dpt_lbfgs_vf_destroy(&vf);
    free(block);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (CU_initialize_registry() != CUE_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
    CU_pSuite suite = CU_add_suite("lbfgs_vf", NULL, NULL);
    CU_add_test(suite, "vector-free direction = serial two-loop on 1..3 ranks", test_directions);
    CU_add_test(suite, "borrowed storage", test_borrowed_storage);
    int status = fixture_run(world_rank);
    MPI_Finalize();
    return status;
}
