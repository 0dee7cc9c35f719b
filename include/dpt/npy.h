/* dpt/npy.h - NumPy .npy files: a strict header parser, a reader and an
 * atomic writer.
 *
 * The format (numpy.lib.format): the magic "\x93NUMPY", a major and a minor
 * version byte, the header length (2 bytes little-endian in version 1.0, 4
 * bytes in 2.0 and 3.0), then the header: a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * padded with spaces and ended by '\n' (3.0 allows UTF-8 in it; nothing we
 * accept needs more than ASCII). The elements follow in C order.
 *
 * The parser is strict and works from memory, so that a fuzz harness can
 * drive it: the magic, the version (1.0, 2.0, 3.0), the header length, the
 * dict with exactly the keys descr, fortran_order and shape (each once),
 * a supported little-endian dtype, fortran_order False (a Fortran-order
 * array is refused with a message that says so: save it with
 * np.ascontiguousarray), a shape of Python integers, and no overflow in the
 * element count. The data must then be exactly count x element size bytes:
 * fewer is "truncated", more is "trailing bytes". Every message names the
 * file. Only little-endian hosts are supported (the data is used as stored).
 */
#ifndef DPT_NPY_H
#define DPT_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/error.h"

#define DPT_NPY_MAX_DIMS 8
/* The longest header text accepted (NumPy's own reader stops at 10000
 * bytes by default; anything longer is not an array we could use). */
#define DPT_NPY_MAX_HEADER 65536u
/* The bytes before the header text: magic 6, version 2, length 2 or 4. */
#define DPT_NPY_PREFIX_V1 10u
#define DPT_NPY_PREFIX_V2 12u

/* Element types, named after NumPy's descr without the byte-order mark. */
typedef enum dpt_npy_dtype {
    DPT_NPY_U1 = 0, /* '|u1' uint8 */
    DPT_NPY_I1,     /* '|i1' int8 */
    DPT_NPY_U2,     /* '<u2' */
    DPT_NPY_I2,     /* '<i2' */
    DPT_NPY_U4,     /* '<u4' */
    DPT_NPY_I4,     /* '<i4' */
    DPT_NPY_U8,     /* '<u8' */
    DPT_NPY_I8,     /* '<i8' */
    DPT_NPY_F4,     /* '<f4' float32 */
    DPT_NPY_F8,     /* '<f8' float64 */
    DPT_NPY_DTYPE_COUNT_
} dpt_npy_dtype;

/* NumPy's descr as written to a file ("|u1", "<f4", ...); NULL if out of range. */
const char *dpt_npy_dtype_descr(dpt_npy_dtype dtype);
/* Bytes per element; 0 if out of range. */
size_t dpt_npy_dtype_size(dpt_npy_dtype dtype);
/* 1 for f4 and f8. */
int dpt_npy_dtype_is_float(dpt_npy_dtype dtype);

/* A parsed header. */
typedef struct dpt_npy_header {
    int major, minor;        /* format version 1.0, 2.0 or 3.0 */
    dpt_npy_dtype dtype;
    int ndim;                /* 0 (a scalar) .. DPT_NPY_MAX_DIMS */
    size_t shape[DPT_NPY_MAX_DIMS];
    size_t count;            /* product of shape (1 for a scalar, 0 if a size is 0) */
    size_t data_offset;      /* where the data starts: prefix + header length */
    size_t data_bytes;       /* count x element size */
} dpt_npy_header;

/* Parses the header at the start of buf[0..len). buf needs to hold the
 * header only (len >= the resulting data_offset), not the data; a buffer
 * that ends inside the header is "truncated". Does not check the data's
 * size: see dpt_npy_check_size. Errors (DPT_ERR_FORMAT) name `name`. */
dpt_status dpt_npy_parse_header(dpt_npy_header *h, const void *buf, size_t len, const char *name);

/* Checks that a file of total_bytes holds exactly the data the header
 * declares after it: fewer bytes are "truncated", more are "trailing". */
dpt_status dpt_npy_check_size(const dpt_npy_header *h, uint64_t total_bytes, const char *name);

/* Reads and checks only the header of the file at path (and its size
 * against the header's, so a truncated file fails here already). */
dpt_status dpt_npy_read_header(dpt_npy_header *h, const char *path);

/* A whole array. data holds h.data_bytes bytes in the file's (little-endian)
 * element order; NULL when the array is empty. */
typedef struct dpt_npy {
    dpt_npy_header h;
    void *data;
} dpt_npy;

/* Reads and fully validates a .npy file. On error *arr is empty. */
dpt_status dpt_npy_read(dpt_npy *arr, const char *path);
/* The same from a file's bytes in memory, buf[0..len) (data copied). */
dpt_status dpt_npy_parse(dpt_npy *arr, const void *buf, size_t len, const char *name);
void dpt_npy_free(dpt_npy *arr);

/* The header NumPy 1.24's np.save writes for a C-order array of this dtype
 * and shape, byte for byte: version 1.0 (2.0 if the text would not fit a
 * 2-byte length), the dict with keys in sorted order, room for the first
 * dimension to grow to 21 digits, spaces and a '\n' so that the data starts
 * at a multiple of 64 bytes. Writes at most out_size bytes to out and
 * returns the header's length (the data offset); if that is >= out_size
 * nothing usable was written (as snprintf). 0 for a bad dtype or ndim. */
size_t dpt_npy_format_header(char *out, size_t out_size, dpt_npy_dtype dtype, int ndim,
                             const size_t *shape);

/* Writes a C-order array as a .npy file that np.load reads: data holds
 * product(shape) elements of dtype (native little-endian). Atomic: the
 * bytes go to PATH.tmp.<pid>, are synced, and the file is renamed to path
 * (the directory synced too), so path holds either its old content or the
 * whole new array, and a failure leaves no temporary file. ndim 0..8; a
 * shape with a 0 writes an empty array (data may then be NULL). */
dpt_status dpt_npy_write(const char *path, dpt_npy_dtype dtype, int ndim, const size_t *shape,
                         const void *data);

#endif /* DPT_NPY_H */
