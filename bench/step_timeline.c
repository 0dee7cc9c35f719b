/* When each layer's gradient is ready during the backward pass, for the
 * scaling model (bench/scaling.sh, bench/scaling_model.py): the overlapped
 * reduction can only send a layer's gradient once the backward pass has
 * finished it, and only the backward time left after that can hide it.
 *
 *   step_timeline CONFIG BATCH [REPEATS] [section.key=value ...]
 *
 * Builds CONFIG's model (input 1x28x28, Fashion-MNIST's shape) for BATCH
 * samples on one process, with random inputs in [0, 1) and random labels,
 * and times REPEATS (default 30, after 3 warm-ups) training forward passes
 * and as many training forward+backward passes (dropout and batch
 * statistics on; no reduction over ranks), recording the time at which the
 * layer_done hook announces each layer's final gradient, exactly where
 * dptrain's overlapped reduction starts a bucket. One JSON object on stdout:
 * the median forward and forward+backward seconds and, per layer with
 * parameters in the order backward completes them, its parameter count and
 * the median seconds from the start of forward+backward to its gradient.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dpt/config.h>
#include <dpt/error.h>
#include <dpt/model.h>
#include <dpt/real.h>

#include "bench_util.h"

#define MAX_REPEATS 1000

static dpt_config cfg;
static double t_start;
static int n_done, done_layer[DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1)];
static double done_at[DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1)];

static void layer_done(int layer, void *user)
{
    (void)user;
    done_layer[n_done] = layer;
    done_at[n_done++] = MPI_Wtime() - t_start;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[(n - 1) / 2];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: step_timeline CONFIG BATCH [REPEATS] [section.key=value ...]\n");
        MPI_Finalize();
        return 2;
    }
    int B = atoi(argv[2]), repeats = argc > 3 ? atoi(argv[3]) : 30;
    if (B < 1 || repeats < 1 || repeats > MAX_REPEATS) {
        fprintf(stderr, "step_timeline: BATCH >= 1 and 1 <= REPEATS <= %d\n", MAX_REPEATS);
        MPI_Finalize();
        return 2;
    }
    char *text = bench_read_text(argv[1]);
    if (!text) {
        fprintf(stderr, "step_timeline: cannot read %s\n", argv[1]);
        MPI_Finalize();
        return 2;
    }
    int n_over = argc > 4 ? argc - 4 : 0;
    dpt_model model;
    dpt_shape input = {1, 28, 28};
    if (dpt_config_load(&cfg, text, argv[1], (const char *const *)argv + 4, n_over) != DPT_OK ||
        dpt_model_create(&model, input, &cfg.model.spec, B) != DPT_OK ||
        dpt_model_init_params(&model, cfg.train.seed, NULL) != DPT_OK) {
        fprintf(stderr, "step_timeline: %s\n", dpt_error_message());
        MPI_Finalize();
        return 2;
    }
    size_t in = dpt_shape_size(input);
    dpt_real *x = malloc(sizeof(dpt_real) * in * (size_t)B);
    uint8_t *y = malloc((size_t)B);
    uint32_t r = 12345;
    for (size_t i = 0; i < in * (size_t)B; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (dpt_real)(r >> 8) / (dpt_real)(1u << 24);
    }
    for (int b = 0; b < B; b++) {
        r = r * 1664525u + 1013904223u;
        y[b] = (uint8_t)((r >> 16) % 10);
    }
    dpt_forward_ctx ctx = {.batch_stats = 1, .dropout = 1, .seed = cfg.train.seed, .rank = 0,
                           .layer_done = layer_done};
    static double fwd[MAX_REPEATS], fb[MAX_REPEATS];
    static double ready[DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1)][MAX_REPEATS];
    int order[DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1)], n_order = 0;
    for (int it = -3; it < repeats; it++) {
        dpt_batch_metrics m;
        memset(&m, 0, sizeof m);
        ctx.pass = (uint64_t)(2 * (it + 3));
        double t0 = MPI_Wtime();
        dpt_model_forward(&model, x, y, B, &ctx, &m);
        double t1 = MPI_Wtime();
        memset(model.grads, 0, sizeof(dpt_real) * model.n_params);
        memset(&m, 0, sizeof m);
        ctx.pass++;
        n_done = 0;
        t_start = MPI_Wtime();
        dpt_model_forward_backward(&model, x, y, B, &ctx, &m);
        double t2 = MPI_Wtime();
        if (it < 0) {
            n_order = n_done;
            memcpy(order, done_layer, sizeof(int) * (size_t)n_done);
            continue;
        }
        fwd[it] = t1 - t0;
        fb[it] = t2 - t_start;
        for (int k = 0; k < n_done && k < n_order; k++) ready[k][it] = done_at[k];
    }
    printf("{\"batch\":%d,\"params\":%zu,\"repeats\":%d,\"forward_s\":%.9g,\"forward_backward_s\":%.9g,"
           "\"layers\":[",
           B, model.n_params, repeats, median(fwd, repeats), median(fb, repeats));
    for (int k = 0; k < n_order; k++) {
        const dpt_layer *l = &model.layers[order[k]];
        printf("%s{\"layer\":%d,\"kind\":\"%s\",\"param_offset\":%zu,\"params\":%zu,\"ready_s\":%.9g}",
               k ? "," : "", order[k] + 1, dpt_layer_kind_name(l->spec.kind), l->param_offset,
               l->n_weights + l->n_bias, median(ready[k], repeats));
    }
    printf("]}\n");
    free(x);
    free(y);
    free(text);
    dpt_model_destroy(&model);
    MPI_Finalize();
    return 0;
}
