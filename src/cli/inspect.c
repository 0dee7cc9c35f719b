/* dptrain inspect: the model's layers with output shape, parameter count
 * and bytes, and forward FLOPs per sample, so that the cost of parameter
 * sharing (conv) against none (locally connected) or full connection
 * (dense) can be read off for the same architecture. */
#include "inspect.h"

#include <stdio.h>
#include <string.h>

#include "dpt/data.h"

static void human_bytes(char *out, size_t size, double bytes)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(out, size, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
}

static void print_row(const char *part, const dpt_layer *l, const char *what)
{
    char shape[48], bytes[32];
    size_t params = l->n_weights + l->n_bias;
    snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
    human_bytes(bytes, sizeof bytes, (double)params * sizeof(dpt_real));
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
    human_bytes(bytes, sizeof bytes, (double)m->n_params * sizeof(dpt_real));
    printf("%-10s %-36s %-14s %12zu %12s %14.0f\n", "total", "", "", m->n_params, bytes,
           dpt_model_flops_per_sample(m));
    printf("(%s precision; batch-norm running statistics add %zu values of state)\n",
           DPT_REAL_NAME, m->n_state);
}

dpt_status dpt_cli_inspect(const dpt_config *cfg)
{
    char path[2 * DPT_PATH_MAX];
    dpt_config_data_path(cfg, cfg->data.train_images, path, sizeof path);
    dpt_idx header;
    dpt_status st = dpt_idx_read_header(&header, path);
    if (st != DPT_OK) return st;
    int shape[3];
    dpt_idx_sample_shape(&header, shape);
    dpt_model model;
    st = dpt_model_create(&model, (dpt_shape){shape[0], shape[1], shape[2]}, &cfg->model.spec, 1);
    if (st != DPT_OK) return st;
    print_model(&model);
    dpt_model_destroy(&model);
    return DPT_OK;
}
