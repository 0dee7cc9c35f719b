/* Shared CUnit plumbing of the test programs: a table of tests per suite,
 * and one run that turns failures into the process exit status. */
#ifndef DPT_TESTS_CUNIT_UTIL_H
#define DPT_TESTS_CUNIT_UTIL_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdio.h>

typedef struct dpt_test {
    const char *name;
    CU_TestFunc func;
} dpt_test;

/* Registers a suite from a static array of dpt_test; 0 on success. */
#define DPT_ADD_SUITE(suite_name, tests) \
    dpt_test_add_suite((suite_name), (tests), sizeof(tests) / sizeof((tests)[0]))

static inline int dpt_test_add_suite(const char *name, const dpt_test *tests, size_t n)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (!suite) return -1;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].func)) return -1;
    return 0;
}

/* Runs everything registered (`registered` is the result of registering),
 * cleans the registry up and returns the exit status: 0 only if every
 * assertion passed and CUnit itself reported no error. */
static inline int dpt_test_run(int registered, CU_BasicRunMode mode)
{
    int status = 1;
    if (registered == 0) {
        CU_basic_set_mode(mode);
        CU_basic_run_tests();
        status = CU_get_number_of_failures() > 0 || CU_get_error() != CUE_SUCCESS;
    } else {
        fprintf(stderr, "CUnit registry error: %s\n", CU_get_error_msg());
    }
    CU_cleanup_registry();
    return status;
}

#endif /* DPT_TESTS_CUNIT_UTIL_H */
