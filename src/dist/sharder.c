/* Reduce-scatter and all-gather of a sharded vector, in bounded pieces. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/dist.h"
#include "dpt/watchdog.h"

#define DPT_SHARDER_TAG 0x5d57 /* the reduce-scatter's point-to-point messages */

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
    /* the all-gather packs a piece of every slice (one piece: gathered in
     * place); the reduce-scatter receives a piece of its own slice */
    s->pack_len = s->pieces > 1 ? n / (size_t)s->pieces + (size_t)ranks + 1 : n / (size_t)ranks + 1;
    s->pack = malloc(sizeof(dpt_real) * s->pack_len);
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

/* Pairwise exchange: in round k = 1 .. ranks-1 this rank sends its sums
 * for the slice of rank me+k and receives rank me-k's sums for its own
 * slice, in pieces of at most the pack's size, and adds them into its slice
 * of buf. Each rank moves (ranks - 1) / ranks of the vector each way, the
 * least a reduce-scatter can, and nothing else: no copy of the vector into
 * a staging buffer (MPI_Reduce_scatter's algorithms make one, in place or
 * not). Every rank adds in a fixed order (its own sums, then me-1, me-2,
 * ...), so the result does not depend on timing. */
dpt_status dpt_sharder_reduce_scatter(dpt_sharder *s, dpt_real *buf)
{
    int ranks = s->comm->size, me = s->comm->rank;
    if (ranks == 1) return DPT_OK;
    /* the same number of pieces on every rank, so that sends and receives
     * pair up even where the slices differ in length */
    size_t most = 0, chunk = s->pack_len;
    for (int r = 0; r < ranks; r++)
        if ((size_t)s->counts[r] > most) most = (size_t)s->counts[r];
    dpt_real *mine = buf + s->lo;
    int rc = MPI_SUCCESS;
    dpt_watchdog_enter();
    for (int k = 1; k < ranks && rc == MPI_SUCCESS; k++) {
        int to = (me + k) % ranks, from = (me - k + ranks) % ranks;
        const dpt_real *theirs = buf + s->displs[to];
        size_t send_n = (size_t)s->counts[to];
        for (size_t off = 0; off < most && rc == MPI_SUCCESS; off += chunk) {
            size_t sn = off < send_n ? send_n - off : 0, rn = off < s->len ? s->len - off : 0;
            if (sn > chunk) sn = chunk;
            if (rn > chunk) rn = chunk;
            rc = MPI_Sendrecv(theirs + off, (int)sn, DPT_MPI_REAL, to, DPT_SHARDER_TAG, s->pack, (int)rn,
                              DPT_MPI_REAL, from, DPT_SHARDER_TAG, s->comm->comm, MPI_STATUS_IGNORE);
            /* += the received piece (1 x exact: the same sums as a + b) */
            if (rc == MPI_SUCCESS) dpt_axpy((int)rn, 1, s->pack, 1, mine + off, 1);
        }
    }
    dpt_watchdog_leave();
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "gradient reduce-scatter MPI_Sendrecv");
}

dpt_status dpt_sharder_allgather(dpt_sharder *s, dpt_real *buf)
{
    int ranks = s->comm->size, me = s->comm->rank;
    if (ranks == 1) return DPT_OK;
    if (s->pieces == 1) { /* every slice gathered where it belongs: no copy */
        dpt_watchdog_enter();
        int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, s->counts, s->displs,
                                DPT_MPI_REAL, s->comm->comm);
        dpt_watchdog_leave();
        return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "parameter MPI_Allgatherv");
    }
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
