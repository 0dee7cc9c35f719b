/* Reduce-scatter and all-gather of a sharded vector, in bounded pieces. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/dist.h"
#include "dpt/watchdog.h"

dpt_status dpt_sharder_create(dpt_sharder *s, const dpt_comm *comm, size_t n, size_t piece_elems)
{
    memset(s, 0, sizeof *s);
    s->comm = comm;
    s->n = n;
    int ranks = comm->size;
    if (n > (size_t)INT_MAX) return DPT_FAIL(DPT_ERR_ARG, "%zu values exceed MPI's int counts", n);
    s->counts = malloc(sizeof(int) * (size_t)ranks);
    s->displs = malloc(sizeof(int) * (size_t)ranks);
    s->piece_counts = malloc(sizeof(int) * (size_t)ranks);
    s->piece_displs = malloc(sizeof(int) * (size_t)ranks);
    if (!s->counts || !s->displs || !s->piece_counts || !s->piece_displs) {
        dpt_sharder_destroy(s);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the shard layout");
    }
    /* rank r owns [n r / ranks, n (r + 1) / ranks): sizes differ by at most one */
    for (int r = 0; r < ranks; r++) {
        size_t lo = n * (size_t)r / (size_t)ranks, hi = n * (size_t)(r + 1) / (size_t)ranks;
        s->counts[r] = (int)(hi - lo);
        s->displs[r] = (int)lo;
    }
    s->lo = (size_t)s->displs[comm->rank];
    s->len = (size_t)s->counts[comm->rank];
    if (piece_elems == 0) piece_elems = 1;
    s->pieces = (int)((n + piece_elems - 1) / piece_elems);
    if (s->pieces < 1) s->pieces = 1;
    s->pack = malloc(sizeof(dpt_real) * (n / (size_t)s->pieces + (size_t)ranks + 1));
    if (!s->pack) {
        dpt_sharder_destroy(s);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the shard packing buffer");
    }
    return DPT_OK;
}

void dpt_sharder_destroy(dpt_sharder *s)
{
    free(s->counts), free(s->displs), free(s->piece_counts), free(s->piece_displs), free(s->pack);
    memset(s, 0, sizeof *s);
}

/* Piece p of every rank's slice: [piece_displs[r], + piece_counts[r]) of
 * the full vector; returns the packed length. */
static size_t piece_layout(dpt_sharder *s, int p, size_t *offsets)
{
    size_t packed = 0;
    for (int r = 0; r < s->comm->size; r++) {
        size_t c = (size_t)s->counts[r], a = c * (size_t)p / (size_t)s->pieces;
        size_t b = c * (size_t)(p + 1) / (size_t)s->pieces;
        s->piece_displs[r] = (int)packed;   /* where it sits in the pack */
        s->piece_counts[r] = (int)(b - a);
        offsets[r] = (size_t)s->displs[r] + a; /* where it sits in the vector */
        packed += b - a;
    }
    return packed;
}

static dpt_status mpi_failed(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return DPT_FAIL(DPT_ERR_MPI, "%s failed: %s", what, text);
}

dpt_status dpt_sharder_reduce_scatter(dpt_sharder *s, dpt_real *buf)
{
    int ranks = s->comm->size, me = s->comm->rank;
    if (ranks == 1) return DPT_OK;
    size_t offsets[ranks];
    for (int p = 0; p < s->pieces; p++) {
        piece_layout(s, p, offsets);
        for (int r = 0; r < ranks; r++)
            memcpy(s->pack + s->piece_displs[r], buf + offsets[r], sizeof(dpt_real) * (size_t)s->piece_counts[r]);
        /* in place: each rank's reduced piece lands at the start of pack */
        dpt_watchdog_enter();
        int rc = MPI_Reduce_scatter(MPI_IN_PLACE, s->pack, s->piece_counts, DPT_MPI_REAL, MPI_SUM,
                                    s->comm->comm);
        dpt_watchdog_leave();
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "gradient MPI_Reduce_scatter");
        memcpy(buf + offsets[me], s->pack, sizeof(dpt_real) * (size_t)s->piece_counts[me]);
    }
    return DPT_OK;
}

dpt_status dpt_sharder_allgather(dpt_sharder *s, dpt_real *buf)
{
    int ranks = s->comm->size, me = s->comm->rank;
    if (ranks == 1) return DPT_OK;
    size_t offsets[ranks];
    for (int p = 0; p < s->pieces; p++) {
        piece_layout(s, p, offsets);
        memcpy(s->pack + s->piece_displs[me], buf + offsets[me], sizeof(dpt_real) * (size_t)s->piece_counts[me]);
        dpt_watchdog_enter();
        int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, s->pack, s->piece_counts,
                                s->piece_displs, DPT_MPI_REAL, s->comm->comm);
        dpt_watchdog_leave();
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "parameter MPI_Allgatherv");
        for (int r = 0; r < ranks; r++)
            memcpy(buf + offsets[r], s->pack + s->piece_displs[r], sizeof(dpt_real) * (size_t)s->piece_counts[r]);
    }
    return DPT_OK;
}
