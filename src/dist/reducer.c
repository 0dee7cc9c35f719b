/* Bucketed, overlapped gradient reduction and the sharded collectives. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/dist.h"
#include "dpt/watchdog.h"

static dpt_status mpi_failed(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return DPT_FAIL(DPT_ERR_MPI, "%s failed: %s", what, text);
}

/* Groups segments into buckets: consecutive, adjacent in memory, at most
 * limit elements (a single larger segment makes a bucket of its own). */
static int plan_buckets(dpt_reducer *r, const size_t *begin, const size_t *len, size_t first_limit,
                        size_t limit)
{
    int b = -1;
    size_t lo = 0, hi = 0;
    for (int s = 0; s < r->n_segments; s++) {
        size_t cap = b <= 0 ? first_limit : limit;
        int adjacent = b >= 0 && (begin[s] + len[s] == lo || begin[s] == hi);
        if (b < 0 || !adjacent || (hi - lo) + len[s] > cap) {
            b++;
            lo = begin[s];
            hi = begin[s] + len[s];
        } else {
            if (begin[s] < lo) lo = begin[s];
            if (begin[s] + len[s] > hi) hi = begin[s] + len[s];
        }
        r->segment_bucket[s] = b;
        r->bucket_begin[b] = lo;
        r->bucket_len[b] = hi - lo;
        r->bucket_total[b]++;
    }
    return b + 1;
}

dpt_status dpt_reducer_create(dpt_reducer *r, const dpt_comm *comm, dpt_real *buf,
                              const size_t *seg_begin, const size_t *seg_len, int n_segments,
                              size_t bucket_bytes, size_t first_bucket_bytes)
{
    memset(r, 0, sizeof *r);
    r->comm = comm;
    r->buf = buf;
    r->n_segments = n_segments;
    size_t n = n_segments > 0 ? (size_t)n_segments : 1;
    r->segment_bucket = calloc(n, sizeof(int));
    r->bucket_begin = calloc(n, sizeof(size_t));
    r->bucket_len = calloc(n, sizeof(size_t));
    r->bucket_missing = calloc(n, sizeof(int));
    r->bucket_total = calloc(n, sizeof(int));
    r->requests = calloc(n, sizeof(MPI_Request));
    if (!r->segment_bucket || !r->bucket_begin || !r->bucket_len || !r->bucket_missing ||
        !r->bucket_total || !r->requests) {
        dpt_reducer_destroy(r);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for %d gradient buckets", n_segments);
    }
    size_t limit = bucket_bytes / sizeof(dpt_real), first = first_bucket_bytes / sizeof(dpt_real);
    r->n_buckets = plan_buckets(r, seg_begin, seg_len, first ? first : 1, limit ? limit : 1);
    for (int b = 0; b < r->n_buckets; b++)
        if (r->bucket_len[b] > (size_t)INT_MAX) {
            dpt_reducer_destroy(r);
            return DPT_FAIL(DPT_ERR_ARG, "a gradient bucket of %zu values exceeds MPI's count limit",
                            r->bucket_len[b]);
        }
    return DPT_OK;
}

void dpt_reducer_destroy(dpt_reducer *r)
{
    free(r->segment_bucket);
    free(r->bucket_begin);
    free(r->bucket_len);
    free(r->bucket_missing);
    free(r->bucket_total);
    free(r->requests);
    memset(r, 0, sizeof *r);
}

void dpt_reducer_begin(dpt_reducer *r)
{
    memcpy(r->bucket_missing, r->bucket_total, sizeof(int) * (size_t)r->n_buckets);
    for (int b = 0; b < r->n_buckets; b++) r->requests[b] = MPI_REQUEST_NULL;
    r->next_start = 0;
}

static dpt_status start_bucket(dpt_reducer *r, int b)
{
    if (r->comm->size == 1) return DPT_OK;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, r->buf + r->bucket_begin[b], (int)r->bucket_len[b],
                            DPT_MPI_REAL, MPI_SUM, r->comm->comm, &r->requests[b]);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "gradient MPI_Iallreduce");
}

dpt_status dpt_reducer_segment_done(dpt_reducer *r, int s)
{
    if (s < 0 || s >= r->n_segments) return DPT_OK;
    r->bucket_missing[r->segment_bucket[s]]--;
    while (r->next_start < r->n_buckets && r->bucket_missing[r->next_start] == 0) {
        dpt_status st = start_bucket(r, r->next_start++);
        if (st != DPT_OK) return st;
    }
    dpt_reducer_progress(r);
    return DPT_OK;
}

void dpt_reducer_progress(dpt_reducer *r)
{
    /* Open MPI advances non-blocking collectives only inside MPI calls */
    int done = 0;
    if (r->next_start > 0 && r->comm->size > 1)
        MPI_Testall(r->next_start, r->requests, &done, MPI_STATUSES_IGNORE);
}

dpt_status dpt_reducer_finish(dpt_reducer *r)
{
    while (r->next_start < r->n_buckets) {
        dpt_status st = start_bucket(r, r->next_start++);
        if (st != DPT_OK) return st;
    }
    double begin = MPI_Wtime();
    dpt_watchdog_enter();
    int rc = r->comm->size > 1 ? MPI_Waitall(r->n_buckets, r->requests, MPI_STATUSES_IGNORE)
                               : MPI_SUCCESS;
    dpt_watchdog_leave();
    r->wait_seconds += MPI_Wtime() - begin;
    r->steps++;
    return rc == MPI_SUCCESS ? DPT_OK : mpi_failed(rc, "gradient MPI_Waitall");
}

