/* dpt/dist.h - the MPI side: communicator, gradient sums, agreement, aborts.
 *
 * Nothing here knows about layers: it moves flat arrays. Every function that
 * takes a dpt_comm is collective over it (all ranks must call it).
 */
#ifndef DPT_DIST_H
#define DPT_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"
#include "dpt/real.h"

typedef struct dpt_comm {
    MPI_Comm comm;
    int rank;
    int size;
} dpt_comm;

/* Wraps an existing communicator (not duplicated, not freed). */
dpt_status dpt_comm_wrap(dpt_comm *comm, MPI_Comm mpi_comm);

/* In-place sum over ranks of buf[n] (the flat gradient). Counts beyond
 * INT_MAX are sent in pieces. */
dpt_status dpt_allreduce_sum_real(const dpt_comm *comm, dpt_real *buf, size_t n);
/* Rank 0's buf[n] to every rank (the initial parameters). */
dpt_status dpt_broadcast_real(const dpt_comm *comm, dpt_real *buf, size_t n);
/* In-place sum over ranks of double values (losses, counts, norms). */
dpt_status dpt_allreduce_sum_acc(const dpt_comm *comm, double *buf, int n);

/* 64-bit FNV-1a hash of a byte range. */
uint64_t dpt_hash64(const void *data, size_t bytes);

/* Checks that buf has the same bytes on every rank (hash compared by MIN and
 * MAX reductions). Returns DPT_ERR_DIVERGED on every rank if not. */
dpt_status dpt_check_replicas(const dpt_comm *comm, const void *buf, size_t bytes,
                              uint64_t *hash_out);

/* Agrees on a status: every rank passes its local result and gets back
 * DPT_OK only if all ranks succeeded. *first_failed is the lowest rank that
 * failed (-1 if none), so callers can let exactly one rank report. */
dpt_status dpt_agree_status(const dpt_comm *comm, dpt_status local, int *first_failed);

/* Prints "dptrain: error: <message> (rank R, file:line)" from the last
 * recorded failure and aborts the whole job with MPI_Abort. Never returns. */
_Noreturn void dpt_abort(const dpt_comm *comm, int exit_code);

#endif /* DPT_DIST_H */
