/* dptrain inspect: the model's layers with output shape, parameter count
 * and bytes, and forward FLOPs per sample, so that the cost of parameter
 * sharing (conv) against none (locally connected) or full connection
 * (dense) can be read off for the same architecture; then the memory one
 * rank needs for a given rank count (--ranks N), which train --dry-run
 * prints too. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/data.h"
#include "dpt/model.h"
#include "dpt/npy.h"
#include "dpt/optim.h"
#include "dpt/train.h"
#include "inspect.h"

static void print_row(const char *part, const dpt_layer *l, const char *what)
{
    char shape[48], bytes[32];
    size_t params = l->n_weights + l->n_bias;
    snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
    cli_human_bytes(bytes, sizeof bytes, (double)params * sizeof(dpt_real));
    printf("%-10s %-36.36s %-14s %12zu %12s %14.0f\n", part, what, shape, params, bytes, l->flops);
}

static void print_model(const dpt_model *m)
{
    printf("%-10s %-36s %-14s %12s %12s %14s\n", "part", "layer", "output", "params", "bytes",
           "FLOPs/sample");
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", m->input.c, m->input.h, m->input.w);
    printf("%-10s %-36s %-14s\n", "input", "", shape);
    for (int i = 0; i < m->n_layers; i++) {
        const dpt_layer *l = &m->layers[i];
        char what[256], part[48] = "trunk";
        dpt_layer_list_format(&l->spec, 1, what, sizeof what);
        for (int h = 0; h < m->n_heads; h++)
            if (i >= m->heads[h].first && i < m->heads[h].first + m->heads[h].n)
                snprintf(part, sizeof part, "%s", m->heads[h].spec.name);
        print_row(part, l, what);
    }
    char bytes[32];
    cli_human_bytes(bytes, sizeof bytes, (double)m->n_params * sizeof(dpt_real));
    printf("%-10s %-36s %-14s %12zu %12s %14.0f\n", "total", "", "", m->n_params, bytes,
           dpt_model_flops_per_sample(m));
    printf("(%s precision; batch-norm running statistics add %zu values of state)\n",
           DPT_REAL_NAME, m->n_state);
}

/* The trainer's evaluation chunk, which sizes the model's buffers
 * (src/train/trainer.c: forward-only chunks of at least 256 samples). */
static int eval_batch_of(const dpt_config *cfg)
{
    return cfg->train.batch_size > 256 ? cfg->train.batch_size : 256;
}

void cli_memory_estimate(const dpt_model *m, const dpt_config *cfg, int ranks, const cli_set_size *train,
                         const cli_set_size *test, cli_memory *out)
{
    memset(out, 0, sizeof *out);
    double n = (double)m->n_params, real = sizeof(dpt_real);
    out->model = (double)m->bytes;
    if (!dpt_optim_is_second_order(cfg->optim.method)) {
        int sharded = 0, overlapped = 0;
        if (dpt_update_choose(m, cfg, ranks, &sharded, &overlapped) != DPT_OK) sharded = 0;
        out->sharded = sharded;
        double slice = sharded ? n / ranks : n;
        out->optimizer = dpt_optim_state_vectors(cfg->optim.method) * slice * real;
        /* a sharded update keeps its slice before the update (layer statistics) */
        if (sharded) out->optimizer += slice * real;
        /* sharded with every rank on one node (assumed here): parameters and
         * gradients move into the shared window, and the model's own
         * arrays stay allocated (dpt_sharder_share) */
        out->window = sharded && ranks > 1 && cfg->update.shared_window ? 2 * n * real : 0;
    }
    /* every rank holds both sets: any sample may fall in its slice of a batch */
    out->data = (double)train->samples * ((double)train->features * train->feature_bytes + 1) +
                (double)test->samples * ((double)test->features * test->feature_bytes + 1);
    double outputs = 0;
    for (int h = 0; h < m->n_heads; h++) outputs += m->heads[h].outputs;
    int eval_batch = eval_batch_of(cfg);
    out->buffers = 4.0 * (double)train->samples +                       /* the epoch's permutation */
                   (double)eval_batch * ((double)train->features * real + 1 + 4 + outputs * real);
    out->total = out->model + out->window + out->optimizer + out->data + out->buffers;
}

void cli_print_memory(const dpt_config *cfg, int ranks, const cli_memory *mem)
{
    char b[5][32];
    cli_human_bytes(b[0], sizeof b[0], mem->model);
    cli_human_bytes(b[1], sizeof b[1], mem->optimizer);
    cli_human_bytes(b[2], sizeof b[2], mem->data);
    cli_human_bytes(b[3], sizeof b[3], mem->buffers);
    cli_human_bytes(b[4], sizeof b[4], mem->total);
    int second_order = dpt_optim_is_second_order(cfg->optim.method);
    printf("memory per rank with %d rank%s (dptrain's own arrays; MPI, whose allreduce may hold one "
           "more gradient, and OpenBLAS add 10-40 MiB: bench/memory_bench.sh):\n", ranks, ranks > 1 ? "s" : "");
    printf("  %-58s %12s\n", "model: parameters, gradients, activations, workspaces", b[0]);
    if (mem->window > 0) {
        char window[32];
        cli_human_bytes(window, sizeof window, mem->window);
        printf("  %-58s %12s\n", "shared window: parameters and gradients (ranks on one node)", window);
    }
    char what[128];
    if (second_order)
        snprintf(what, sizeof what, "optimizer: %s keeps its own state (state_bytes in its log)",
                 dpt_optim_method_name(cfg->optim.method));
    else
        snprintf(what, sizeof what, "optimizer: %s, %d vector%s, %s", dpt_optim_method_name(cfg->optim.method),
                 dpt_optim_state_vectors(cfg->optim.method),
                 dpt_optim_state_vectors(cfg->optim.method) == 1 ? "" : "s",
                 mem->sharded ? "sharded over the ranks" : "replicated");
    printf("  %-58s %12s\n", what, b[1]);
    printf("  %-58s %12s\n", "data: training and test sets (each rank holds both)", b[2]);
    printf("  %-58s %12s\n", "batch and evaluation buffers, the permutation", b[3]);
    printf("  %-58s %12s\n", "in all", b[4]);
}

/* Per-sample shape (as the loaders make it) from an array's dimensions:
 * N x H x W is (1, H, W), N x C x H x W is (C, H, W), else (features, 1, 1). */
static void sample_shape(int ndim, const size_t *dims, int shape[3])
{
    size_t features = 1;
    for (int d = 1; d < ndim; d++) features *= dims[d];
    shape[0] = (int)features, shape[1] = shape[2] = 1;
    if (ndim == 3) shape[0] = 1, shape[1] = (int)dims[1], shape[2] = (int)dims[2];
    if (ndim == 4) shape[0] = (int)dims[1], shape[1] = (int)dims[2], shape[2] = (int)dims[3];
}

/* A set's size and per-sample shape: from the header of an IDX or .npy
 * file without reading the data; a CSV file is parsed (it has no header
 * that gives its size). */
static dpt_status read_size(const dpt_config *cfg, const char *name, int shape[3], cli_set_size *size)
{
    char path[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, name, path, sizeof path);
    dpt_data_format format = dpt_data_format_of((dpt_data_format)cfg->data.format, path);
    size_t dims[DPT_NPY_MAX_DIMS] = {0};
    int ndim = 0;
    dpt_status st = DPT_OK;
    if (format == DPT_FORMAT_NPY) {
        dpt_npy_header h;
        if ((st = dpt_npy_read_header(&h, path)) != DPT_OK) return st;
        ndim = h.ndim;
        memcpy(dims, h.shape, sizeof(size_t) * (size_t)h.ndim);
        size->feature_bytes = h.dtype == DPT_NPY_U1 ? 1 : h.dtype == DPT_NPY_F4 ? 4 : sizeof(dpt_real);
    } else if (format == DPT_FORMAT_CSV) {
        dpt_load_options options = {format, cfg->data.label_column, cfg->data.csv_header};
        dpt_dataset set;
        if ((st = dpt_csv_read(&set, path, &options)) != DPT_OK) return st;
        ndim = 2, dims[0] = set.n_samples, dims[1] = set.n_features;
        size->feature_bytes = dpt_dataset_feature_size(set.feature_type);
        dpt_dataset_free(&set);
    } else {
        dpt_idx header;
        if ((st = dpt_idx_read_header(&header, path)) != DPT_OK) return st;
        ndim = header.ndim;
        for (int d = 0; d < ndim && d < DPT_NPY_MAX_DIMS; d++) dims[d] = header.dims[d];
        size->feature_bytes = 1;
    }
    sample_shape(ndim, dims, shape);
    size->samples = ndim ? dims[0] : 0;
    size->features = (size_t)shape[0] * shape[1] * shape[2];
    return DPT_OK;
}

static dpt_status read_sizes(const dpt_config *cfg, int shape[3], cli_set_size *train, cli_set_size *test)
{
    int test_shape[3];
    dpt_status st = read_size(cfg, cfg->data.train_images, shape, train);
    return st == DPT_OK ? read_size(cfg, cfg->data.test_images, test_shape, test) : st;
}

static dpt_status inspect(const dpt_config *cfg, int ranks)
{
    int shape[3];
    cli_set_size train, test;
    dpt_status st = read_sizes(cfg, shape, &train, &test);
    if (st != DPT_OK) return st;
    dpt_model model;
    st = dpt_model_create(&model, (dpt_shape){shape[0], shape[1], shape[2]}, &cfg->model.spec,
                          eval_batch_of(cfg));
    if (st != DPT_OK) return st;
    print_model(&model);
    cli_memory mem;
    cli_memory_estimate(&model, cfg, ranks, &train, &test, &mem);
    printf("\n");
    cli_print_memory(cfg, ranks, &mem);
    dpt_model_destroy(&model);
    return DPT_OK;
}

/* Rank 0 prints; every rank exits with its status. */
int cli_inspect(const dpt_comm *comm, const cli_args *args, const dpt_config *cfg)
{
    int status = EXIT_SUCCESS;
    if (comm->rank == 0) {
        dpt_status st = inspect(cfg, args->ranks > 0 ? args->ranks : comm->size);
        if (st != DPT_OK) {
            fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
            status = st == DPT_ERR_NOMEM || st == DPT_ERR_MPI ? EXIT_RUNTIME : EXIT_USAGE;
        }
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, comm->comm);
    return status;
}
