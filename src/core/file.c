/* Atomic file writes (dpt/file.h): temporary file, fsync, rename, fsync of
 * the directory, the order POSIX needs for the new name to survive a crash
 * with the new contents. */
#include "dpt/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 0 or an errno */
static int write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t written = write(fd, p, chunk);
        if (written < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (written == 0) return ENOSPC;
        p += written;
        n -= (size_t)written;
    }
    return 0;
}

/* what a failed write most likely means, for the message */
static const char *write_hint(int err)
{
    switch (err) {
    case ENOSPC: return " (disk full)";
    case EFBIG: return " (file size limit, ulimit -f, or file too large)";
#ifdef EDQUOT
    case EDQUOT: return " (disk quota exceeded)";
#endif
    case EIO: return " (device error)";
    default: return "";
    }
}

/* fsync of path's directory, so that the rename reaches the disk; 0 or an errno */
static int sync_dir_of(const char *path, char **dir_out)
{
    const char *slash = strrchr(path, '/');
    char *dir = !slash ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    *dir_out = dir;
    if (!dir) return ENOMEM;
    int err = 0, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) err = errno;
    if (fd >= 0) close(fd);
    return err;
}

dpt_status dpt_file_write_atomic(const char *path, const dpt_file_piece *pieces, size_t n,
                                 const char *what, const char *if_failed)
{
    if (!path || !*path) return DPT_FAIL(DPT_ERR_ARG, "%s: no path to write to", what && *what ? what : "file");
    const char *space = what && *what ? " " : "";
    what = what ? what : "";
    if_failed = if_failed ? if_failed : "";
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size), *dir = NULL;
    if (!tmp) return DPT_FAIL(DPT_ERR_NOMEM, "%s%s%s: out of memory", what, space, path);
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    dpt_status st = DPT_OK;
    int created = 0, err = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = DPT_FAIL(DPT_ERR_IO, "%s%s%s not written: cannot create %s: %s%s", what, space, path, tmp,
                      strerror(errno), if_failed);
        goto cleanup;
    }
    created = 1;
    for (size_t i = 0; i < n && !err; i++) err = write_all(fd, pieces[i].data, pieces[i].len);
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    fd = -1;
    if (err) {
        st = DPT_FAIL(DPT_ERR_IO, "%s%s%s not written: writing %s failed: %s%s%s", what, space, path, tmp,
                      strerror(err), write_hint(err), if_failed);
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        st = DPT_FAIL(DPT_ERR_IO, "%s%s%s not written: cannot rename %s to it: %s%s", what, space, path, tmp,
                      strerror(errno), if_failed);
        goto cleanup;
    }
    created = 0;
    err = sync_dir_of(path, &dir);
    if (err)
        st = DPT_FAIL(DPT_ERR_IO, "%s%s%s written, but syncing its directory %s failed: %s", what, space, path,
                      dir ? dir : "", strerror(err));

cleanup:
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    free(tmp);
    free(dir);
    return st;
}
