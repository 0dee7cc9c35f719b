/* MPI wrappers for the data-parallel step. */
#include "dpt/dist.h"

#include "dpt/watchdog.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static dpt_status mpi_failed(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return DPT_FAIL(DPT_ERR_MPI, "%s failed: %s", what, text);
}

dpt_status dpt_comm_wrap(dpt_comm *comm, MPI_Comm mpi_comm)
{
    comm->comm = mpi_comm;
    int rc = MPI_Comm_rank(mpi_comm, &comm->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(mpi_comm, &comm->size);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "MPI_Comm_rank/size");
}

/* Every blocking collective below runs between dpt_watchdog_enter and
 * dpt_watchdog_leave, so that a rank stuck in one is noticed. */
static int allreduce_real_pieces(const dpt_comm *comm, dpt_real *buf, size_t n)
{
    while (n > 0) {
        int piece = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf, piece, DPT_MPI_REAL, MPI_SUM, comm->comm);
        if (rc != MPI_SUCCESS) return rc;
        buf += piece;
        n -= (size_t)piece;
    }
    return MPI_SUCCESS;
}

dpt_status dpt_allreduce_sum_real(const dpt_comm *comm, dpt_real *buf, size_t n)
{
    if (comm->size == 1) return DPT_OK;
    dpt_watchdog_enter();
    int rc = allreduce_real_pieces(comm, buf, n);
    dpt_watchdog_leave();
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "gradient MPI_Allreduce");
}

dpt_status dpt_broadcast_real(const dpt_comm *comm, dpt_real *buf, size_t n)
{
    if (comm->size == 1) return DPT_OK;
    int rc = MPI_SUCCESS;
    dpt_watchdog_enter();
    while (n > 0 && rc == MPI_SUCCESS) {
        int piece = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        rc = MPI_Bcast(buf, piece, DPT_MPI_REAL, 0, comm->comm);
        buf += piece;
        n -= (size_t)piece;
    }
    dpt_watchdog_leave();
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "parameter MPI_Bcast");
}

dpt_status dpt_allreduce_sum_acc(const dpt_comm *comm, double *buf, int n)
{
    if (comm->size == 1) return DPT_OK;
    dpt_watchdog_enter();
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, comm->comm);
    dpt_watchdog_leave();
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "MPI_Allreduce");
}

uint64_t dpt_hash64(const void *data, size_t bytes)
{
    const unsigned char *p = data;
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a offset basis and prime */
    for (size_t i = 0; i < bytes; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

dpt_status dpt_check_replicas(const dpt_comm *comm, const void *buf, size_t bytes,
                              uint64_t *hash_out)
{
    uint64_t hash = dpt_hash64(buf, bytes), lowest = hash, highest = hash;
    if (hash_out) *hash_out = hash;
    if (comm->size == 1) return DPT_OK;
    dpt_watchdog_enter();
    int rc = MPI_Allreduce(&hash, &lowest, 1, MPI_UINT64_T, MPI_MIN, comm->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&hash, &highest, 1, MPI_UINT64_T, MPI_MAX, comm->comm);
    dpt_watchdog_leave();
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "replica check MPI_Allreduce");
    if (lowest != highest)
        return DPT_FAIL(DPT_ERR_DIVERGED, "parameters differ across ranks (hash %016llx on rank %d, "
                        "range %016llx..%016llx)", (unsigned long long)hash, comm->rank,
                        (unsigned long long)lowest, (unsigned long long)highest);
    return DPT_OK;
}

dpt_status dpt_agree_status(const dpt_comm *comm, dpt_status local, int *first_failed)
{
    /* MIN over ranks of (failed ? rank : size) gives the lowest failing rank */
    int mine = local == DPT_OK ? comm->size : comm->rank, lowest = mine;
    if (comm->size > 1) {
        dpt_watchdog_enter();
        int rc = MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, comm->comm);
        dpt_watchdog_leave();
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "status MPI_Allreduce");
    }
    if (first_failed) *first_failed = lowest < comm->size ? lowest : -1;
    if (lowest == comm->size) return DPT_OK;
    if (local != DPT_OK) return local;
    return DPT_FAIL(DPT_ERR_REMOTE, "rank %d failed", lowest);
}

_Noreturn void dpt_abort(const dpt_comm *comm, int exit_code)
{
    fprintf(stderr, "dptrain: error: %s (rank %d, %s)\n", dpt_error_message(), comm->rank,
            dpt_error_where());
    fflush(stderr);
    MPI_Abort(comm->comm, exit_code);
    exit(exit_code); /* not reached: MPI_Abort does not return */
}
