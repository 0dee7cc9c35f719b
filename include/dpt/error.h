/* dpt/error.h - status codes and the last error message.
 *
 * Library functions return a dpt_status. On failure they also record a
 * human-readable message (with the source location that detected it) which
 * the caller fetches with dpt_error_message(). Only the CLI exits; a fatal
 * error on one rank of a running job goes through dpt_abort() (dist module),
 * which calls MPI_Abort so that no job ever hangs.
 */
#ifndef DPT_ERROR_H
#define DPT_ERROR_H

typedef enum dpt_status {
    DPT_OK = 0,
    DPT_ERR_NOMEM,        /* an allocation failed */
    DPT_ERR_ARG,          /* a bad argument to a library function */
    DPT_ERR_IO,           /* a file could not be opened or read */
    DPT_ERR_FORMAT,       /* a file's content is malformed (IDX, gzip) */
    DPT_ERR_CONFIG,       /* the configuration is invalid */
    DPT_ERR_SHAPE,        /* shapes do not fit together (model vs data) */
    DPT_ERR_MPI,          /* an MPI call failed */
    DPT_ERR_DIVERGED,     /* parameters differ across ranks */
    DPT_ERR_NUMERIC,      /* a non-finite loss or gradient */
    DPT_ERR_REMOTE,       /* another rank failed; it reports the cause */
    DPT_ERR_COUNT_
} dpt_status;

/* Short fixed name of a status code, e.g. "format error". */
const char *dpt_status_name(dpt_status status);

/* Records a formatted message for `status` and returns `status`, so that
 * callers write: return DPT_FAIL(DPT_ERR_IO, "cannot open %s", path); */
dpt_status dpt_fail_at(dpt_status status, const char *file, int line,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define DPT_FAIL(status, ...) dpt_fail_at((status), __FILE__, __LINE__, __VA_ARGS__)

/* The message of the last failure on this thread ("" if none). */
const char *dpt_error_message(void);
/* "file:line" of the code that recorded the last failure ("" if none). */
const char *dpt_error_where(void);
/* Forget the last failure. */
void dpt_error_clear(void);

#endif /* DPT_ERROR_H */
