/* Status names and the per-thread last-error message. */
#include "dpt/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];
static _Thread_local char error_where[256];

static const char *const status_names[DPT_ERR_COUNT_] = {
    [DPT_OK] = "ok",
    [DPT_ERR_NOMEM] = "out of memory",
    [DPT_ERR_ARG] = "invalid argument",
    [DPT_ERR_IO] = "input/output error",
    [DPT_ERR_FORMAT] = "format error",
    [DPT_ERR_CONFIG] = "configuration error",
    [DPT_ERR_SHAPE] = "shape mismatch",
    [DPT_ERR_MPI] = "MPI error",
    [DPT_ERR_DIVERGED] = "replicas diverged",
    [DPT_ERR_NUMERIC] = "non-finite value",
    [DPT_ERR_REMOTE] = "failure on another rank",
};

const char *dpt_status_name(dpt_status status)
{
    if ((int)status < 0 || status >= DPT_ERR_COUNT_) return "unknown status";
    return status_names[status];
}

dpt_status dpt_fail_at(dpt_status status, const char *file, int line,
                       const char *fmt, ...)
{
    /* Formatted into a copy first: callers may pass dpt_error_message() as an
     * argument to prefix the message they are replacing, and vsnprintf must
     * not read the buffer it writes (valgrind: overlapping mempcpy). */
    char message[sizeof error_message];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    memcpy(error_message, message, sizeof message);
    const char *base = strrchr(file, '/');
    snprintf(error_where, sizeof error_where, "%s:%d", base ? base + 1 : file, line);
    return status;
}

const char *dpt_error_message(void) { return error_message; }
const char *dpt_error_where(void) { return error_where; }

void dpt_error_clear(void)
{
    error_message[0] = '\0';
    error_where[0] = '\0';
}
