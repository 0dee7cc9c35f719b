/* dptrain export: a checkpoint's trained weights, layer by layer, for
 * NumPy (one .npy per tensor and manifest.json) or any safetensors reader.
 * Rank 0 does the work; no data set is read (the checkpoint's model
 * record holds the input shape). Values are exact: float32 from a single
 * build, float64 from a double one.
 *
 * Tensor names: PART.INDEX.KIND.WHAT, where PART is "trunk" or a head's
 * name, INDEX the layer's position in that part's layer list (as in
 * dptrain inspect), KIND dense/conv/local/tiled/batchnorm and WHAT weight,
 * bias, gamma, beta, running_mean or running_var. Shapes:
 *   dense      weight (outputs, inputs)            bias (outputs)
 *   conv       weight (filters, channels, kh, kw)  bias (filters)
 *   local, tiled weight (sets, filters, channels, kh, kw), bias (sets, filters):
 *              one filter set per output position (local) or per tile
 *   batchnorm  gamma, beta, running_mean, running_var (channels)
 * The dense weight acts as out = in . weight^T + bias; inputs of a dense
 * layer after an image are in C x H x W order. */
#include <cJSON.h>
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "dpt/checkpoint.h"
#include "dpt/model.h"
#include "dpt/npy.h"
#include "dpt/train.h"

#define MAX_TENSORS (4 * DPT_MAX_LAYERS * (DPT_MAX_HEADS + 1))

typedef struct export_tensor {
    char name[96];
    int ndim;
    size_t shape[5];
    const dpt_real *data;
    int layer;           /* index into model->layers */
} export_tensor;

static const char *kind_word(dpt_layer_kind kind)
{
    switch (kind) {
    case DPT_LAYER_DENSE: return "dense";
    case DPT_LAYER_CONV2D: return "conv";
    case DPT_LAYER_LOCAL: return "local";
    case DPT_LAYER_TILED: return "tiled";
    default: return "batchnorm";
    }
}

static void add(export_tensor *list, int *n, const char *prefix, const char *what, int layer,
                const dpt_real *data, int ndim, size_t s0, size_t s1, size_t s2, size_t s3, size_t s4)
{
    export_tensor *e = &list[(*n)++];
    snprintf(e->name, sizeof e->name, "%s.%s", prefix, what);
    e->ndim = ndim;
    size_t shape[5] = {s0, s1, s2, s3, s4};
    memcpy(e->shape, shape, sizeof shape);
    e->data = data;
    e->layer = layer;
}

/* The tensors of one layer (none for layers without parameters). */
static void layer_tensors(const dpt_model *m, int i, const char *part, int index, export_tensor *list, int *n)
{
    const dpt_layer *l = &m->layers[i];
    const dpt_layer_spec *s = &l->spec;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.%d.%s", part, index, kind_word(s->kind));
    const dpt_real *w = m->params + l->param_offset, *b = w + l->n_weights;
    size_t units = (size_t)s->units, c = (size_t)l->in.c, kh = (size_t)s->kh, kw = (size_t)s->kw;
    switch (s->kind) {
    case DPT_LAYER_DENSE:
        add(list, n, prefix, "weight", i, w, 2, units, dpt_shape_size(l->in), 0, 0, 0);
        add(list, n, prefix, "bias", i, b, 1, units, 0, 0, 0, 0);
        break;
    case DPT_LAYER_CONV2D:
        add(list, n, prefix, "weight", i, w, 4, units, c, kh, kw, 0);
        add(list, n, prefix, "bias", i, b, 1, units, 0, 0, 0, 0);
        break;
    case DPT_LAYER_LOCAL: case DPT_LAYER_TILED: {
        size_t sets = l->n_bias / units;
        add(list, n, prefix, "weight", i, w, 5, sets, units, c, kh, kw);
        add(list, n, prefix, "bias", i, b, 2, sets, units, 0, 0, 0);
        break;
    }
    case DPT_LAYER_BATCHNORM:
        add(list, n, prefix, "gamma", i, w, 1, c, 0, 0, 0, 0);
        add(list, n, prefix, "beta", i, b, 1, c, 0, 0, 0, 0);
        add(list, n, prefix, "running_mean", i, m->state + l->state_offset, 1, c, 0, 0, 0, 0);
        add(list, n, prefix, "running_var", i, m->state + l->state_offset + c, 1, c, 0, 0, 0, 0);
        break;
    default: break;
    }
}

static int list_tensors(const dpt_model *m, export_tensor *list)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const char *part = "trunk";
        int index = i;
        for (int h = 0; h < m->n_heads && i >= m->n_trunk; h++)
            if (i >= m->heads[h].first && i < m->heads[h].first + m->heads[h].n)
                part = m->heads[h].spec.name, index = i - m->heads[h].first;
        layer_tensors(m, i, part, index, list, &n);
    }
    return n;
}

static size_t element_count(const export_tensor *e)
{
    size_t count = 1;
    for (int d = 0; d < e->ndim; d++) count *= e->shape[d];
    return count;
}

/* ---------------------------------------------------------------- writers */

static dpt_status write_manifest(const char *dir, const dpt_model *m, const export_tensor *list, int n,
                                 const char *checkpoint, long step, const char *config)
{
    cJSON *root = cJSON_CreateObject(), *tensors = cJSON_AddArrayToObject(root, "tensors");
    cJSON_AddStringToObject(root, "format", "dptrain-export-npy");
    cJSON_AddStringToObject(root, "checkpoint", checkpoint);
    cJSON_AddNumberToObject(root, "step", (double)step);
    cJSON_AddStringToObject(root, "dtype", sizeof(dpt_real) == 4 ? "float32" : "float64");
    int input[3] = {m->input.c, m->input.h, m->input.w};
    cJSON_AddItemToObject(root, "input_chw", cJSON_CreateIntArray(input, 3));
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject();
        char file[128], layer[256];
        if (snprintf(file, sizeof file, "%s.npy", list[i].name) >= (int)sizeof file) file[0] = '\0';
        dpt_layer_list_format(&m->layers[list[i].layer].spec, 1, layer, sizeof layer);
        cJSON_AddStringToObject(t, "name", list[i].name);
        cJSON_AddStringToObject(t, "file", file);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < list[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)list[i].shape[d]));
        cJSON_AddStringToObject(t, "layer", layer);
        cJSON_AddItemToArray(tensors, t);
    }
    if (config) cJSON_AddStringToObject(root, "config", config);
    char *text = cJSON_Print(root), path[2 * DPT_PATH_MAX];
    cJSON_Delete(root);
    if (!text) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for manifest.json");
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *out = fopen(path, "w");
    dpt_status st = DPT_OK;
    if (!out) st = DPT_FAIL(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    else if (fprintf(out, "%s\n", text) < 0 || fclose(out) != 0)
        st = DPT_FAIL(DPT_ERR_IO, "writing %s failed: %s", path, strerror(errno));
    free(text);
    return st;
}

static dpt_status write_npy_dir(const char *dir, const dpt_model *m, const export_tensor *list, int n,
                                const char *checkpoint, long step, const char *config)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return DPT_FAIL(DPT_ERR_IO, "cannot create the directory %s: %s", dir, strerror(errno));
    struct stat info;
    if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode))
        return DPT_FAIL(DPT_ERR_IO, "--output %s is not a directory (a .safetensors name writes one file)", dir);
    dpt_npy_dtype dtype = sizeof(dpt_real) == 4 ? DPT_NPY_F4 : DPT_NPY_F8;
    for (int i = 0; i < n; i++) {
        char path[2 * DPT_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s.npy", dir, list[i].name) >= (int)sizeof path)
            return DPT_FAIL(DPT_ERR_IO, "--output %s: the path is too long", dir);
        dpt_status st = dpt_npy_write(path, dtype, list[i].ndim, list[i].shape, list[i].data);
        if (st != DPT_OK) return st;
    }
    return write_manifest(dir, m, list, n, checkpoint, step, config);
}

static dpt_status write_safetensors(const char *path, const export_tensor *list, int n, const char *model,
                                    long step, const char *config)
{
    dpt_ckpt_writer w;
    dpt_ckpt_writer_init(&w);
    dpt_status st = DPT_OK;
    for (int i = 0; i < n && st == DPT_OK; i++)
        st = dpt_ckpt_add_tensor(&w, list[i].name, DPT_CKPT_REAL, list[i].shape, list[i].ndim, list[i].data);
    if (st == DPT_OK) st = dpt_ckpt_add_meta(&w, "format", "dptrain-export");
    if (st == DPT_OK) st = dpt_ckpt_add_meta_int(&w, "step", step);
    if (st == DPT_OK && model) st = dpt_ckpt_add_meta(&w, "model", model);
    if (st == DPT_OK && config) st = dpt_ckpt_add_meta(&w, "config", config);
    if (st == DPT_OK) st = dpt_ckpt_write_atomic(&w, path);
    dpt_ckpt_writer_free(&w);
    return st;
}

/* ---------------------------------------------------------------- the command */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* The model of the checkpoint: its architecture from the config, its input
 * shape from the checkpoint's model record. */
static dpt_status build_model(const dpt_config *cfg, const dpt_ckpt *ck, dpt_model *m)
{
    const char *record = dpt_ckpt_meta(ck, "model");
    size_t params = 0;
    dpt_shape input;
    if (!record || sscanf(record, "%zu parameters; %dx%dx%d input", &params, &input.c, &input.h, &input.w) != 4)
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s has no model record with its input shape", ck->source);
    dpt_status st = dpt_model_create(m, input, &cfg->model.spec, 1);
    if (st != DPT_OK) return st;
    if (m->n_params != params) {
        dpt_model_destroy(m);
        return DPT_FAIL(DPT_ERR_FORMAT, "checkpoint %s holds %zu parameters; the config builds %zu (another "
                        "model: give its config with --config)", ck->source, params, m->n_params);
    }
    return DPT_OK;
}

static dpt_status export(const cli_args *args, const dpt_config *cfg, int *tensors)
{
    int safetensors = args->format ? !strcmp(args->format, "safetensors") : ends_with(args->output, ".safetensors");
    if (args->format && !safetensors && strcmp(args->format, "npy") != 0)
        return DPT_FAIL(DPT_ERR_CONFIG, "--format %s: export writes npy (a directory) or safetensors", args->format);
    dpt_ckpt ck;
    dpt_status st = dpt_ckpt_read_file(args->checkpoint, &ck);
    if (st != DPT_OK) return st;
    dpt_model model;
    long step = 0;
    st = build_model(cfg, &ck, &model);
    if (st != DPT_OK) {
        dpt_ckpt_free(&ck);
        return st;
    }
    st = dpt_model_read_checkpoint(&model, &ck, &step);
    static export_tensor list[MAX_TENSORS];
    int n = list_tensors(&model, list);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += element_count(&list[i]);
    if (st == DPT_OK && total != model.n_params + model.n_state)
        st = DPT_FAIL(DPT_ERR_ARG, "export covers %zu of %zu values (a layer kind it does not know)", total,
                      model.n_params + model.n_state);
    const char *config = dpt_ckpt_meta(&ck, "config"), *record = dpt_ckpt_meta(&ck, "model");
    if (st == DPT_OK)
        st = safetensors ? write_safetensors(args->output, list, n, record, step, config)
                         : write_npy_dir(args->output, &model, list, n, args->checkpoint, step, config);
    *tensors = n;
    dpt_model_destroy(&model);
    dpt_ckpt_free(&ck);
    return st;
}

int cli_export(const dpt_comm *comm, const cli_args *args, dpt_config *cfg)
{
    int status = EXIT_SUCCESS, tensors = 0;
    if (comm->rank == 0) {
        dpt_status st = export(args, cfg, &tensors);
        if (st == DPT_OK)
            printf("export: %d tensors of %s -> %s\n", tensors, args->checkpoint, args->output);
        else fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        status = st == DPT_OK ? EXIT_SUCCESS : cli_exit_status_of(st);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, comm->comm);
    return status;
}
