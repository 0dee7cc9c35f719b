/* Internal to the dptrain program: the memory estimate that inspect and
 * train --dry-run print. */
#ifndef DPT_CLI_INSPECT_H
#define DPT_CLI_INSPECT_H

#include <stddef.h>

#include "dpt/config.h"
#include "dpt/model.h"

/* A data set's size as stored in memory. */
typedef struct cli_set_size {
    size_t samples, features;
    size_t feature_bytes; /* bytes per stored feature */
} cli_set_size;

/* Bytes one rank holds, by what holds them. */
typedef struct cli_memory {
    double model;     /* parameters, gradients, activations, workspaces (dpt_model.bytes) */
    double window;    /* the shared window's parameters and gradients (sharded, one node) */
    double optimizer; /* moment vectors: this rank's slice when sharded */
    double data;      /* training and test sets */
    double buffers;   /* permutation, batch and evaluation buffers */
    double total;
    int sharded;      /* the optimizer state is sharded (dpt_update_choose) */
} cli_memory;

/* m: the model as the trainer builds it (its buffers sized for the
 * evaluation chunk). Pure arithmetic. */
void cli_memory_estimate(const dpt_model *m, const dpt_config *cfg, int ranks, const cli_set_size *train,
                         const cli_set_size *test, cli_memory *out);
void cli_print_memory(const dpt_config *cfg, int ranks, const cli_memory *mem);

#endif /* DPT_CLI_INSPECT_H */
