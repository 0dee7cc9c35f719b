/* dpt/file.h - files written whole or not at all.
 *
 * Checkpoints, .npy outputs and exports are written to PATH.tmp.<pid>,
 * fsync'ed, renamed over PATH and the directory fsync'ed: a crash, a full
 * disk or a file-size limit at any moment leaves a previous PATH as it was
 * and never a half-written one under PATH's name.
 */
#ifndef DPT_FILE_H
#define DPT_FILE_H

#include <stddef.h>

#include "dpt/error.h"

/* One piece of the file's contents, written in order. */
typedef struct dpt_file_piece {
    const void *data;
    size_t len;
} dpt_file_piece;

/* Writes pieces[0..n) atomically to path. Messages read "<what> PATH not
 * written: ..." followed by `if_failed` (e.g. "; the previous checkpoint,
 * if any, is intact"); what and if_failed may be "". DPT_ERR_IO on a write
 * failure (with the likely cause: disk full, file size limit, quota),
 * DPT_ERR_NOMEM, DPT_ERR_ARG for no path. */
dpt_status dpt_file_write_atomic(const char *path, const dpt_file_piece *pieces, size_t n,
                                 const char *what, const char *if_failed);

#endif /* DPT_FILE_H */
