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

/* ---------------------------------------------------------------- bucketed reduction
 * The gradient is summed in buckets with non-blocking allreduces started as
 * soon as the backward pass has finished a bucket's parts, so that
 * communication overlaps the rest of the backward pass. The caller describes
 * the buffer as segments (one per layer with parameters) in the order the
 * backward pass completes them; a bucket is a run of consecutive segments
 * that are adjacent in memory, up to a size limit (the first one smaller, so
 * that communication starts early). Buckets are started in index order on
 * every rank, as MPI requires of collectives. */
typedef struct dpt_reducer {
    const dpt_comm *comm;
    dpt_real *buf;
    int n_segments, n_buckets;
    int *segment_bucket;      /* [n_segments] bucket of each segment */
    size_t *bucket_begin, *bucket_len;
    int *bucket_missing;      /* segments not yet done, per bucket, this step */
    int *bucket_total;        /* segments per bucket */
    MPI_Request *requests;    /* [n_buckets] */
    int next_start;           /* first bucket not yet started this step */
    double wait_seconds;      /* total time blocked in dpt_reducer_finish */
    long steps;
} dpt_reducer;

/* seg_begin/seg_len: segments in completion order. bucket_bytes > 0. */
dpt_status dpt_reducer_create(dpt_reducer *r, const dpt_comm *comm, dpt_real *buf,
                              const size_t *seg_begin, const size_t *seg_len, int n_segments,
                              size_t bucket_bytes, size_t first_bucket_bytes);
void dpt_reducer_destroy(dpt_reducer *r);
/* Before the backward pass of a step. */
void dpt_reducer_begin(dpt_reducer *r);
/* Segment s is final: start every bucket that is complete (in order) and
 * let MPI progress the ones in flight. */
dpt_status dpt_reducer_segment_done(dpt_reducer *r, int s);
/* Lets MPI progress the buckets in flight (between pieces of computation). */
void dpt_reducer_progress(dpt_reducer *r);
/* Start what is left and wait for all buckets: buf holds the sums. */
dpt_status dpt_reducer_finish(dpt_reducer *r);

/* ---------------------------------------------------------------- sharded state
 * Rank r owns the contiguous slice [displs[r], displs[r] + counts[r]) of an
 * n-vector (near-equal sizes). The reduce-scatter (point-to-point, summing
 * into the slice in place) and the all-gather (in place for a vector of one
 * piece) run in pieces of bounded size through one buffer, so that neither
 * this code nor MPI's own temporaries ever hold a second full-size vector:
 * that would eat the memory that sharding the optimizer state saves. */
/* Whether a rank evicts the lines it has just read out of another rank's
 * part of the shared window (dpt_cache_evict) is chosen by timing steps
 * both ways. Eviction spares the owner's next writes a cross-cache
 * invalidation per line, which is what made 2-rank steps 40% slower when
 * the two cores sat in different L3 domains; where they share one L3 it
 * only costs (the owner's writes then miss to memory). Which case holds can
 * change while a job runs (a hypervisor moving vCPUs), so the choice is
 * remade every DPT_EVICT_CYCLE steps: DPT_EVICT_SETTLE + DPT_EVICT_TIMED
 * steps with eviction, as many without, then the one with the lower median
 * step time for the rest of the cycle. The choice changes no number, so
 * ranks need not agree on it. */
enum { DPT_EVICT_CYCLE = 1000, DPT_EVICT_SETTLE = 2, DPT_EVICT_TIMED = 15 };
typedef struct dpt_evict_tuner {
    int evict;            /* the choice for the next step */
    int chosen;           /* the cycle's verdict, once both ways are timed */
    long steps;           /* steps seen */
    long evicting_steps;  /* of which with eviction */
    double last;          /* the previous step's end, seconds */
    double took[2][DPT_EVICT_TIMED]; /* [without, with] step times of this cycle */
} dpt_evict_tuner;

void dpt_evict_tuner_init(dpt_evict_tuner *t);
/* The step that ran with t->evict ended at time `now` (seconds); returns,
 * and sets t->evict to, the choice for the next step. */
int dpt_evict_tuner_step(dpt_evict_tuner *t, double now);

typedef struct dpt_sharder {
    const dpt_comm *comm;
    size_t n;
    int *counts, *displs;   /* [ranks] each rank's slice */
    size_t lo, len;         /* this rank's */
    int pieces;
    int *piece_counts, *piece_displs; /* [ranks] workspace for one piece */
    dpt_real *pack;         /* [pack_len]: a piece of every slice, or of one */
    size_t pack_len;
    /* dpt_sharder_share: every rank's parameters and gradients in one MPI
     * shared-memory window, read directly by the others */
    int shared;
    MPI_Win win;
    dpt_real **peer_params, **peer_grads; /* [ranks] */
    dpt_real *home_params, *home_grads;   /* the caller's buffers, for unsharing */
    dpt_evict_tuner tuner; /* evict what was read from the others? */
} dpt_sharder;

dpt_status dpt_sharder_create(dpt_sharder *s, const dpt_comm *comm, size_t n, size_t piece_elems);
void dpt_sharder_destroy(dpt_sharder *s);
/* buf[n] holds this rank's sums; afterwards buf[lo, lo + len) holds the
 * sums over ranks (the rest of buf is left as it was). */
dpt_status dpt_sharder_reduce_scatter(dpt_sharder *s, dpt_real *buf);
/* Every rank's slice of buf, to every rank (in place for one piece). */
dpt_status dpt_sharder_allgather(dpt_sharder *s, dpt_real *buf);
/* When every rank of the communicator is on this node: moves *params and
 * *grads (n values each) into an MPI shared-memory window and points them
 * there, after which the reduce-scatter adds the other ranks' slices
 * straight from their gradients and the all-gather copies their slices of
 * the parameters, each after a barrier: no message, no kernel copy (a 2 MB
 * exchange of 2 ranks 0.11-0.16 instead of 0.38-0.51 ms). The same sums in
 * the same order as the messages (other buffers still go by messages).
 * Collective; with ranks on several nodes, one rank, or less room for the
 * window than its size (Open MPI backs it with a file in /dev/shm: a
 * file-size limit, ulimit -f, or a small /dev/shm), it changes nothing.
 * The given buffers stay allocated; dpt_sharder_unshare copies the window's
 * contents back into them and points *params and *grads there again
 * (nothing when not shared). What a
 * rank reads from the others it may evict from the caches afterwards
 * (dpt_evict_tuner); each all-gather ends a step for that tuner. */
dpt_status dpt_sharder_share(dpt_sharder *s, dpt_real **params, dpt_real **grads);
void dpt_sharder_unshare(dpt_sharder *s, dpt_real **params, dpt_real **grads);

/* Prints "dptrain: error: <message> (rank R, file:line)" from the last
 * recorded failure and aborts the whole job with MPI_Abort. Never returns. */
_Noreturn void dpt_abort(const dpt_comm *comm, int exit_code);

#endif /* DPT_DIST_H */
