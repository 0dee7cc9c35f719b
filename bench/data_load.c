/* Times dpt_dataset_load_any on every rank: the slowest rank's seconds,
 * the set's size, the bytes all ranks read through system calls (rchar of
 * /proc/self/io: the file reads, MPI's shared memory is not counted) and a
 * checksum of what every rank holds (all must agree).
 * With --naive (.npy features only) every rank reads the whole file itself
 * with dpt_npy_read instead, the design the sharded read replaces. Built
 * and run by bench/data_bench.sh.
 *
 *   mpirun -n P data_load [--naive] FEATURES LABELS|- [REPEATS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/data.h"
#include "dpt/dist.h"

/* Bytes this process has read through read(2) and friends so far. */
static double bytes_read(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    double rchar = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %lf", &rchar) == 1) break;
    if (f) fclose(f);
    return rchar;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, naive = argc > 1 && strcmp(argv[1], "--naive") == 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    argv += naive;
    argc -= naive;
    if (argc < 3) {
        if (rank == 0) fprintf(stderr, "usage: data_load [--naive] FEATURES LABELS|- [REPEATS]\n");
        MPI_Finalize();
        return 2;
    }
    const char *labels = strcmp(argv[2], "-") == 0 ? "" : argv[2];
    int repeats = argc > 3 ? atoi(argv[3]) : 1, status = 0;
    for (int r = 0; r < repeats && status == 0; r++) {
        dpt_dataset set;
        MPI_Barrier(MPI_COMM_WORLD);
        double read0 = bytes_read(), t0 = MPI_Wtime();
        dpt_status st;
        if (naive) { /* the whole file on every rank, as a data set */
            dpt_npy arr;
            st = dpt_npy_read(&arr, argv[1]);
            size_t n = arr.h.ndim ? arr.h.shape[0] : 0, nf = n ? arr.h.count / n : 0;
            if (st == DPT_OK && arr.h.dtype == DPT_NPY_F4) {
                st = dpt_dataset_take(&set, DPT_FEATURES_F32, arr.data, calloc(n ? n : 1, 1), n, nf, argv[1]);
                arr.data = NULL;
            } else if (st == DPT_OK) {
                st = DPT_FAIL(DPT_ERR_ARG, "--naive: float32 .npy features only");
            }
            dpt_npy_free(&arr);
        } else {
            st = dpt_dataset_load_any(&set, MPI_COMM_WORLD, argv[1], labels, NULL);
        }
        double seconds = MPI_Wtime() - t0, slowest = 0, read = bytes_read() - read0, all_read = 0;
        MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        MPI_Reduce(&read, &all_read, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        if (st != DPT_OK) {
            if (rank == 0) fprintf(stderr, "data_load: %s\n", dpt_error_message());
            status = 1;
            break;
        }
        size_t bytes = set.n_samples * set.n_features * dpt_dataset_feature_size(set.feature_type);
        unsigned long long hash = dpt_hash64(dpt_dataset_rows(&set, 0), bytes), lo = 0, hi = 0;
        MPI_Reduce(&hash, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, 0, MPI_COMM_WORLD);
        MPI_Reduce(&hash, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0)
            printf("%.3f s  %.0f MB read in all, %.0f MB held per rank (%zu x %zu x %zu bytes), ranks %s\n",
                   slowest, all_read / 1e6, bytes / 1e6, set.n_samples, set.n_features,
                   dpt_dataset_feature_size(set.feature_type), lo == hi ? "agree" : "DIFFER");
        dpt_dataset_free(&set);
    }
    MPI_Finalize();
    return status;
}
