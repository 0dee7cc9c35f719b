/* Shared pieces of the MPI test programs: a small learnable data set that
 * every rank builds identically, config loading with --set style
 * overrides, and agreement of an assertion over all ranks. */
#ifndef DPT_TESTS_MPI_FIXTURE_H
#define DPT_TESTS_MPI_FIXTURE_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "dpt/config.h"
#include "dpt/rng.h"
#include "dpt/train.h"

#define FIXTURE_FEATURES 12
#define FIXTURE_MAX_SAMPLES 512

/* The label is the quadrant of (feature 0, feature 1); the other features
 * are noise. Twelve features: also a 1 x 4 x 3 image. */
static inline void fixture_dataset(dpt_dataset *set, size_t n)
{
    static uint8_t features[FIXTURE_MAX_SAMPLES * FIXTURE_FEATURES], labels[FIXTURE_MAX_SAMPLES];
    CU_ASSERT_FATAL(n <= FIXTURE_MAX_SAMPLES);
    dpt_rng rng;
    dpt_rng_init(&rng, 42, DPT_STREAM_TEST, 0, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *x = features + i * FIXTURE_FEATURES;
        for (int f = 0; f < FIXTURE_FEATURES; f++) x[f] = (uint8_t)dpt_rng_below(&rng, 256);
        labels[i] = (uint8_t)((x[0] > 127) * 2 + (x[1] > 127));
    }
    CU_ASSERT_FATAL(dpt_dataset_from_arrays(set, features, labels, n, FIXTURE_FEATURES) == DPT_OK);
}

/* A model on the fixture's 12 features from a layer list, max batch 16,
 * initialized from seed 5. */
static inline void fixture_model(dpt_model *m, const char *layers)
{
    dpt_model_spec spec;
    memset(&spec, 0, sizeof spec);
    char why[256];
    CU_ASSERT_FATAL(dpt_layer_list_parse(layers, spec.trunk, DPT_MAX_LAYERS, &spec.n_trunk, why,
                                         sizeof why) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_create(m, (dpt_shape){FIXTURE_FEATURES, 1, 1}, &spec, 16) == DPT_OK);
    CU_ASSERT_FATAL(dpt_model_init_params(m, 5, NULL) == DPT_OK);
}

/* Loads `base` with the given overrides; a failure is fatal for the test. */
static inline void fixture_config(dpt_config *cfg, const char *base, const char *const *sets, int n)
{
    dpt_status st = dpt_config_load(cfg, base, "test", sets, n);
    if (st != DPT_OK) printf("config: %s\n", dpt_error_message());
    CU_ASSERT_FATAL(st == DPT_OK);
}

/* 1 on every rank if `ok` holds on every rank */
static inline int fixture_all_ranks(int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

/* Runs the registered suites on every rank (rank 0 prints) and returns the
 * exit status agreed over ranks. */
static inline int fixture_run(int rank)
{
    CU_basic_set_mode(rank == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures(), any = 0;
    CU_cleanup_registry();
    MPI_Allreduce(&failures, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any > 0;
}

#endif /* DPT_TESTS_MPI_FIXTURE_H */
