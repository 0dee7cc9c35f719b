/* Reduce-scatter and all-gather of a sharded vector, in bounded pieces. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include "dpt/dist.h"
#include "dpt/watchdog.h"

#include "../core/mem.h"

#define DPT_SHARDER_TAG 0x5d57 /* the reduce-scatter's point-to-point messages */

dpt_status dpt_sharder_create(dpt_sharder *s, const dpt_comm *comm, size_t n, size_t piece_elems)
{
    memset(s, 0, sizeof *s);
    s->comm = comm;
    s->n = n;
    dpt_evict_tuner_init(&s->tuner);
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
    if (s->shared) {
        MPI_Win_unlock_all(s->win);
        MPI_Win_free(&s->win);
    }
    free(s->peer_params), free(s->peer_grads);
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

/* Every rank's writes to the window before the barrier are seen by every
 * rank after it (the separate-memory-model-free pattern of MPI 3 shared
 * windows: sync, barrier, sync). */
static dpt_status window_barrier(dpt_sharder *s)
{
    dpt_watchdog_enter();
    MPI_Win_sync(s->win);
    int rc = MPI_Barrier(s->comm->comm);
    MPI_Win_sync(s->win);
    dpt_watchdog_leave();
    return rc == MPI_SUCCESS ? DPT_OK : DPT_FAIL(DPT_ERR_MPI, "the shared window's MPI_Barrier failed");
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
    if (s->shared && buf == s->peer_grads[me]) { /* this rank's gradient in the window */
        dpt_status st = window_barrier(s);
        for (int k = 1; st == DPT_OK && k < ranks; k++) { /* the order of the messages' sums */
            const dpt_real *theirs = s->peer_grads[(me - k + ranks) % ranks] + s->lo;
            dpt_axpy((int)s->len, 1, theirs, 1, buf + s->lo, 1);
            /* their next backward writes these lines */
            if (s->tuner.evict) dpt_cache_evict(theirs, sizeof(dpt_real) * s->len);
        }
        /* and none writes its gradient again (diagnostics run backward
         * passes into it) before every other rank has read its slices */
        return st == DPT_OK ? window_barrier(s) : st;
    }
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
    if (s->shared && buf == s->peer_params[me]) { /* this rank's parameters in the window */
        dpt_status st = window_barrier(s);
        for (int r = 0; st == DPT_OK && r < ranks; r++)
            if (r != me) {
                const dpt_real *theirs = s->peer_params[r] + s->displs[r];
                memcpy(buf + s->displs[r], theirs, sizeof(dpt_real) * (size_t)s->counts[r]);
                /* their next update writes these lines */
                if (s->tuner.evict) dpt_cache_evict(theirs, sizeof(dpt_real) * (size_t)s->counts[r]);
            }
        dpt_evict_tuner_step(&s->tuner, MPI_Wtime()); /* a step ends here */
        return st;
    }
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

/* ---------------------------------------------------------------- one node: a shared window */

dpt_status dpt_sharder_share(dpt_sharder *s, dpt_real **params, dpt_real **grads)
{
    int ranks = s->comm->size, node_size = 0, all_here = 0;
    if (ranks == 1) return DPT_OK;
    MPI_Comm node;
    if (MPI_Comm_split_type(s->comm->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return mpi_failed(MPI_ERR_OTHER, "MPI_Comm_split_type");
    MPI_Comm_size(node, &node_size);
    MPI_Comm_free(&node);
    /* per rank: parameters, then gradients, each padded to a 4 KiB page */
    size_t stride = ((s->n + 1) * sizeof(dpt_real) + 4095) / 4096 * 4096;
    /* Open MPI backs the window with a file in /dev/shm, sized by
     * ftruncate: beyond a file-size limit (ulimit -f) that fails and
     * aborts the job, and beyond the free space of /dev/shm (64 MiB in a
     * default Docker container) the first touch dies of SIGBUS. Messages
     * instead, with room for Open MPI's own header. */
    double need = (double)ranks * 2.0 * (double)stride + (double)(1 << 20);
    struct rlimit file_limit;
    struct statvfs shm;
    int fits = getrlimit(RLIMIT_FSIZE, &file_limit) != 0 || file_limit.rlim_cur == RLIM_INFINITY ||
               (double)file_limit.rlim_cur >= need;
    if (statvfs("/dev/shm", &shm) == 0 && (double)shm.f_bavail * (double)shm.f_frsize < need) fits = 0;
    /* the same answer everywhere: some ranks elsewhere means messages for all */
    int here = node_size == ranks && fits;
    if (MPI_Allreduce(&here, &all_here, 1, MPI_INT, MPI_MIN, s->comm->comm) != MPI_SUCCESS)
        return mpi_failed(MPI_ERR_OTHER, "MPI_Allreduce of the node check");
    if (!all_here) return DPT_OK;
    s->peer_params = calloc((size_t)ranks, sizeof(dpt_real *));
    s->peer_grads = calloc((size_t)ranks, sizeof(dpt_real *));
    int ok = s->peer_params && s->peer_grads, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, s->comm->comm);
    if (!all_ok) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the shared window's table");
    dpt_real *mine;
    /* each rank's part on pages of its own, first touched by its owner
     * below: on a node of several sockets the memory of each is local */
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = MPI_Win_allocate_shared((MPI_Aint)(2 * stride), (int)sizeof(dpt_real), info, s->comm->comm,
                                     &mine, &s->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "MPI_Win_allocate_shared of parameters and gradients");
    for (int r = 0; r < ranks && rc == MPI_SUCCESS; r++) {
        MPI_Aint size;
        int unit;
        char *base;
        rc = MPI_Win_shared_query(s->win, r, &size, &unit, &base);
        s->peer_params[r] = (dpt_real *)base;
        s->peer_grads[r] = (dpt_real *)(base + stride);
    }
    if (rc == MPI_SUCCESS) rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    if (rc != MPI_SUCCESS) {
        MPI_Win_free(&s->win);
        return mpi_failed(rc, "MPI_Win_shared_query or MPI_Win_lock_all");
    }
    s->shared = 1;
    s->home_params = *params;
    s->home_grads = *grads;
    memcpy(mine, *params, sizeof(dpt_real) * s->n);
    memcpy((char *)mine + stride, *grads, sizeof(dpt_real) * s->n);
    *params = mine;
    *grads = (dpt_real *)((char *)mine + stride);
    return window_barrier(s);
}

void dpt_sharder_unshare(dpt_sharder *s, dpt_real **params, dpt_real **grads)
{
    if (!s->shared || !s->home_params) return;
    memcpy(s->home_params, *params, sizeof(dpt_real) * s->n);
    memcpy(s->home_grads, *grads, sizeof(dpt_real) * s->n);
    *params = s->home_params;
    *grads = s->home_grads;
    s->home_params = s->home_grads = NULL;
}

/* ---------------------------------------------------------------- evict or not */

void dpt_evict_tuner_init(dpt_evict_tuner *t)
{
    memset(t, 0, sizeof *t);
    t->evict = t->chosen = 1;
}

static double median_time(const double *took)
{
    double sorted[DPT_EVICT_TIMED];
    for (int i = 0; i < DPT_EVICT_TIMED; i++) { /* insertion sort: 15 values */
        int j = i;
        for (; j > 0 && sorted[j - 1] > took[i]; j--) sorted[j] = sorted[j - 1];
        sorted[j] = took[i];
    }
    return sorted[DPT_EVICT_TIMED / 2];
}

/* The cycle, by position of a step in it: settle with eviction, timed with
 * it, settle without, timed without, then the verdict. Medians, because
 * an evaluation or a checkpoint between two steps lengthens one of them. */
int dpt_evict_tuner_step(dpt_evict_tuner *t, double now)
{
    enum { S = DPT_EVICT_SETTLE, W = DPT_EVICT_TIMED };
    long at = t->steps % DPT_EVICT_CYCLE; /* the step that just ended */
    double took = now - t->last;
    t->last = now;
    t->evicting_steps += t->evict;
    if (at >= S && at < S + W) t->took[1][at - S] = took;
    if (at >= 2 * S + W && at < 2 * S + 2 * W) t->took[0][at - 2 * S - W] = took;
    if (at == 2 * S + 2 * W - 1) t->chosen = median_time(t->took[1]) <= median_time(t->took[0]);
    long next = ++t->steps % DPT_EVICT_CYCLE;
    t->evict = next < S + W ? 1 : next < 2 * S + 2 * W ? 0 : t->chosen;
    return t->evict;
}
