/* Times MPI collectives and point-to-point transfers for the scaling model
 * (bench/scaling.sh, bench/scaling_model.py). One JSON object per line on
 * rank 0's stdout.
 *
 *   mpirun -n P allreduce_bench [MODE] [--seconds S] [--max-reps R] SIZE...
 *
 * SIZE is in bytes (suffixes k, m: powers of 1024; f: a count of floats,
 * e.g. 535818f), rounded down to whole floats, at least one.
 * MODE:
 *   --allreduce (default)  MPI_Allreduce(MPI_IN_PLACE, float, MPI_SUM): the
 *                          blocking gradient reduction of dptrain;
 *   --iallreduce           MPI_Iallreduce then MPI_Wait (libnbc's
 *                          algorithms: the overlapped, bucketed reduction);
 *   --p2p                  rank 0 -> rank 1 only: one-way bandwidth (a stream
 *                          of SIZE-byte messages, then a 1-byte answer) and,
 *                          for SIZE <= 64 KiB, half the ping-pong round trip;
 *   --reduce-local         MPI_Reduce_local(SUM) of SIZE bytes of floats on
 *                          every rank (the arithmetic of a reduction, no
 *                          network): seconds per byte on this core.
 * Every timed iteration starts after a barrier; its time is the slowest
 * rank's (an MPI_Allreduce of MAX after it, outside the timed part).
 * Iterations repeat, after one warm-up, until S seconds (default 1) have
 * been spent on that size, at least 3 and at most R (default 200), the
 * same count on every rank. The record gives the median, the minimum and
 * the quartiles of the iteration times.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

enum mode { ALLREDUCE, IALLREDUCE, P2P, REDUCE_LOCAL };

/* quantile q of sorted t[0..n) (nearest rank, the median of an even count
 * is the lower middle) */
static double quantile(const double *t, int n, double q)
{
    int i = (int)(q * (n - 1) + 0.5);
    return t[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static long parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    if (*end == 'k' || *end == 'K') v *= 1024, end++;
    else if (*end == 'm' || *end == 'M') v *= 1024 * 1024, end++;
    else if (*end == 'f') v *= sizeof(float), end++;
    if (*end) return -1;
    long floats = (long)(v / sizeof(float));
    return floats > 0 ? floats : 1;
}

/* One timed iteration of `mode` on n floats; returns this rank's seconds. */
static double once(enum mode mode, float *buf, float *other, long n)
{
    double t0, t1;
    MPI_Request req;
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    switch (mode) {
    case ALLREDUCE:
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        break;
    case IALLREDUCE:
        MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        break;
    case REDUCE_LOCAL:
        MPI_Reduce_local(other, buf, (int)n, MPI_FLOAT, MPI_SUM);
        break;
    case P2P: /* timed by stream() and pingpong() */
        break;
    }
    t1 = MPI_Wtime();
    return t1 - t0;
}

/* One-way stream rank 0 -> 1 of `count` messages of n floats, then a
 * 1-byte answer: seconds on rank 0 (others 0). */
static double stream(float *buf, long n, int count, int rank)
{
    char ack = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rank == 0) {
        for (int i = 0; i < count; i++) MPI_Send(buf, (int)n, MPI_FLOAT, 1, 1, MPI_COMM_WORLD);
        MPI_Recv(&ack, 1, MPI_CHAR, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
        for (int i = 0; i < count; i++)
            MPI_Recv(buf, (int)n, MPI_FLOAT, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(&ack, 1, MPI_CHAR, 0, 2, MPI_COMM_WORLD);
    }
    return rank == 0 ? MPI_Wtime() - t0 : 0;
}

/* Half the round trip of n floats 0 -> 1 -> 0 (rank 0's clock). */
static double pingpong(float *buf, long n, int rank)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rank == 0) {
        MPI_Send(buf, (int)n, MPI_FLOAT, 1, 3, MPI_COMM_WORLD);
        MPI_Recv(buf, (int)n, MPI_FLOAT, 1, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
        MPI_Recv(buf, (int)n, MPI_FLOAT, 0, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, (int)n, MPI_FLOAT, 0, 4, MPI_COMM_WORLD);
    }
    return rank == 0 ? (MPI_Wtime() - t0) / 2 : 0;
}

static void print_stats(const char *mode, int size, long n, double *t, int reps, const char *extra)
{
    qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
    printf("{\"mode\":\"%s\",\"ranks\":%d,\"bytes\":%ld,\"floats\":%ld,\"reps\":%d,"
           "\"median_s\":%.9g,\"min_s\":%.9g,\"p25_s\":%.9g,\"p75_s\":%.9g%s}\n",
           mode, size, n * (long)sizeof(float), n, reps, quantile(t, reps, 0.5), t[0],
           quantile(t, reps, 0.25), quantile(t, reps, 0.75), extra);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    enum mode mode = ALLREDUCE;
    double seconds = 1;
    int max_reps = 200, first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        const char *a = argv[first];
        if (!strcmp(a, "--allreduce")) mode = ALLREDUCE;
        else if (!strcmp(a, "--iallreduce")) mode = IALLREDUCE;
        else if (!strcmp(a, "--p2p")) mode = P2P;
        else if (!strcmp(a, "--reduce-local")) mode = REDUCE_LOCAL;
        else if (!strcmp(a, "--seconds") && first + 1 < argc) seconds = atof(argv[++first]);
        else if (!strcmp(a, "--max-reps") && first + 1 < argc) max_reps = atoi(argv[++first]);
        else {
            if (rank == 0) fprintf(stderr, "allreduce_bench: unknown option %s\n", a);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    if (first >= argc || max_reps < 3 || (mode == P2P && size < 2)) {
        if (rank == 0)
            fprintf(stderr, "usage: allreduce_bench [--allreduce|--iallreduce|--p2p|--reduce-local] "
                            "[--seconds S] [--max-reps R>=3] SIZE... (--p2p: 2 ranks or more)\n");
        MPI_Finalize();
        return 2;
    }
    const char *names[] = {"allreduce", "iallreduce", "p2p", "reduce_local"};
    double *t = malloc(sizeof(double) * (size_t)max_reps);
    for (int a = first; a < argc; a++) {
        long n = parse_size(argv[a]);
        if (n < 0 || n > 0x7fffffffL) {
            if (rank == 0) fprintf(stderr, "allreduce_bench: bad size %s\n", argv[a]);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        float *buf = malloc(sizeof(float) * (size_t)n), *other = malloc(sizeof(float) * (size_t)n);
        if (!buf || !other || !t) {
            fprintf(stderr, "allreduce_bench: out of memory for %ld floats\n", n);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        /* small values: sums of repeated reductions stay finite */
        for (long i = 0; i < n; i++) buf[i] = other[i] = (float)((i + rank) % 7) * 1e-3f;
        int reps = 0;
        double spent = 0;
        if (mode == P2P) {
            /* bandwidth: each iteration streams enough messages for ~64 MiB */
            long bytes = n * (long)sizeof(float);
            int count = (int)((64L << 20) / bytes);
            if (count < 1) count = 1;
            if (count > 1000) count = 1000;
            stream(buf, n, 1, rank); /* warm-up */
            while (reps < max_reps) {
                double s = stream(buf, n, count, rank);
                MPI_Bcast(&s, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
                t[reps++] = s / count;
                spent += s;
                if (reps >= 3 && spent >= seconds) break;
            }
            double lat_t[64];
            int lat_n = 0;
            if (bytes <= 65536) {
                pingpong(buf, n, rank);
                for (lat_n = 0; lat_n < 64; lat_n++) {
                    double s = pingpong(buf, n, rank);
                    MPI_Bcast(&s, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
                    lat_t[lat_n] = s;
                }
                qsort(lat_t, (size_t)lat_n, sizeof *lat_t, bench_cmp_double);
            }
            if (rank == 0) {
                char extra[160] = "";
                double *copy = malloc(sizeof(double) * (size_t)reps);
                memcpy(copy, t, sizeof(double) * (size_t)reps);
                qsort(copy, (size_t)reps, sizeof *copy, bench_cmp_double);
                int len = snprintf(extra, sizeof extra, ",\"messages\":%d,\"bandwidth_Bps\":%.6g", count,
                                   (double)bytes / quantile(copy, reps, 0.5));
                if (lat_n)
                    snprintf(extra + len, sizeof extra - (size_t)len, ",\"half_rtt_s\":%.9g",
                             quantile(lat_t, lat_n, 0.5));
                free(copy);
                print_stats(names[mode], size, n, t, reps, extra);
            }
        } else {
            once(mode, buf, other, n); /* warm-up: connections, buffers */
            while (reps < max_reps) {
                double mine = once(mode, buf, other, n), slowest;
                MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                t[reps++] = slowest;
                spent += slowest;
                if (reps >= 3 && spent >= seconds) break;
            }
            if (rank == 0) print_stats(names[mode], size, n, t, reps, "");
        }
        free(buf);
        free(other);
    }
    free(t);
    MPI_Finalize();
    return 0;
}
