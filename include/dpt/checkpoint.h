/* dpt/checkpoint.h - checkpoint files: safetensors with CRC32s, written
 * atomically, kept K at a time.
 *
 * This module is the file format only: named tensors and string metadata in,
 * the same out, verified. What a dptrain checkpoint holds (parameters,
 * optimizer state, step, RNG streams, ...) is decided by the trainer. It
 * knows nothing of MPI: rank 0 writes, every rank may read.
 *
 * ---------------------------------------------------------------- the file
 * A checkpoint is one safetensors file (https://github.com/huggingface/
 * safetensors), readable by the safetensors library, by numpy, or by 20 lines
 * of Python (below):
 *
 *   bytes 0..7       N, the header length: unsigned 64-bit little-endian
 *   bytes 8..8+N-1   the header: UTF-8 JSON, one object, padded with spaces
 *                    (0x20) so that N is a multiple of 8
 *   bytes 8+N..end   the byte buffer: every tensor's raw data, little-endian,
 *                    row-major (C order), contiguous, with no gap and nothing
 *                    after the last tensor
 *
 * The header, as dptrain writes it (compact: no space outside strings):
 *
 *   {"__metadata__":{"crc32.header":"1c291ca3","crc32.params":"8a3b0c1d",
 *                    ...,"step":"1200",...},
 *    "params":{"dtype":"F32","shape":[784,512],"data_offsets":[0,1605632]},
 *    ...}
 *
 *   - every key except "__metadata__" is a tensor: "dtype" one of F64 F32
 *     I64 U64 I32 U32 I8 U8 (8, 4 or 1 bytes per element), "shape" a list of
 *     0 to 8 non-negative integers ([] is a scalar), "data_offsets" [begin,
 *     end) in bytes relative to the start of the byte buffer, with end -
 *     begin = product(shape) x element size. Sorted by begin, each tensor
 *     starts where the previous one ends, the first at 0, and the last ends
 *     at the end of the file. dptrain writes the 8-byte types first, then
 *     the 4-byte, then the 1-byte ones (each group in the order added), and
 *     lists the tensors in the header in file order, so every tensor is
 *     aligned to its element size in the file.
 *   - "__metadata__" maps strings to strings. It holds the caller's keys
 *     and, reserved for this module, for every tensor T "crc32.T": the CRC32
 *     (zlib's crc32, the one of gzip and PNG) of T's data bytes, and
 *     "crc32.header": the CRC32 of the header. Each is 8 lowercase hex digits.
 *   - the header's CRC is computed over the N header bytes (padding
 *     included) in which the 8 hex digits of crc32.header read "00000000".
 *     They are found as the only occurrence of the 16 bytes
 *         "crc32.header":"
 *     (quotes included) in the header; a writer must use compact separators
 *     (Python: json.dumps(h, separators=(",", ":"))). So a reader replaces
 *     those 8 digits by "00000000", CRCs the header bytes and compares.
 *   - a reader of this module rejects: N above 100,000,000, a header that
 *     does not start with '{' or is not UTF-8 JSON (control bytes included),
 *     a duplicate key, an unknown dtype or tensor field, more than 8
 *     dimensions, offsets that overlap, leave gaps or do not match the
 *     shape, a non-string metadata value, a missing or wrong CRC, a
 *     "crc32.X" naming no tensor, a tensor named "header" (its CRC key
 *     would be the header's), a file shorter or longer than the header
 *     says. It does not require the padding (other writers may not pad).
 *
 * Reading and verifying in Python (standard library only):
 *
 *   import json, struct, zlib
 *   def read_checkpoint(path):
 *       blob = open(path, "rb").read()
 *       n, = struct.unpack_from("<Q", blob, 0)
 *       header = blob[8:8 + n]
 *       key = b'"crc32.header":"'
 *       i = header.index(key) + len(key)
 *       zeroed = header[:i] + b"00000000" + header[i + 8:]
 *       if "%08x" % zlib.crc32(zeroed) != header[i:i + 8].decode():
 *           raise ValueError(path + ": CRC mismatch in the header")
 *       tensors = json.loads(header)
 *       meta = tensors.pop("__metadata__")
 *       data = blob[8 + n:]
 *       out = {}
 *       for name, t in tensors.items():
 *           begin, end = t["data_offsets"]
 *           raw = data[begin:end]
 *           if len(raw) != end - begin:
 *               raise ValueError(path + ": truncated")
 *           if "%08x" % zlib.crc32(raw) != meta["crc32." + name]:
 *               raise ValueError(path + ": CRC mismatch in tensor " + name)
 *           out[name] = (t["dtype"], t["shape"], raw)
 *       return meta, out
 *   # a tensor as numpy: numpy.frombuffer(raw, "<f4").reshape(shape)
 *   # (F32 "<f4", F64 "<f8", I64 "<i8", U64 "<u8", I32 "<i4", U32 "<u4",
 *   #  I8 "i1", U8 "u1"); or array.array("f", raw) with the standard library
 *
 * ---------------------------------------------------------------- writing
 * dpt_ckpt_write_atomic writes PATH.tmp.<pid> in PATH's directory, checks
 * every write, fsyncs it, renames it over PATH and fsyncs the directory. On
 * any failure the temporary file is removed and an existing PATH is left as
 * it was: a crash, a full disk or a file-size limit never costs the previous
 * checkpoint. (Only a kill -9 in the middle of a write can leave a
 * *.tmp.<pid> file behind; the listing functions ignore it.) Under a
 * file-size limit (ulimit -f, RLIMIT_FSIZE) the kernel sends SIGXFSZ, which
 * kills the process by default: a program that wants the clean error instead
 * (EFBIG) must ignore it first, signal(SIGXFSZ, SIG_IGN), as dptrain does.
 *
 * The data is written as the host stores it; only little-endian hosts are
 * supported (the functions return DPT_ERR_ARG on others).
 *
 * ---------------------------------------------------------------- errors
 * Every failure is a dpt_status with a message (dpt_error_message()) that
 * names the file and the problem, e.g.
 *   checkpoint run/ckpt-000000001200.safetensors: CRC mismatch in tensor
 *   'params' (stored 8a3b0c1d, computed 8a3b0c5d): its data is corrupt
 * The content errors, each in its own words: "empty file (not a
 * checkpoint)"; "not a checkpoint: ..." (an absurd header length, a header
 * that is not '{'..., not UTF-8 JSON text, not an object); "truncated: ..."
 * (with the sizes expected and found); "CRC mismatch in the header (stored
 * X, computed Y): the header is corrupt"; "CRC mismatch in tensor 'T'
 * (stored X, computed Y): its data is corrupt"; "not a dptrain checkpoint:
 * no header CRC ..."; "no CRC for tensor 'T'"; "tensor 'T': ..." (dtype,
 * shape, offsets); "N unexpected bytes after the last tensor"; and from the
 * accessors "no tensor 'T'", "no metadata 'K'".
 * DPT_ERR_IO: the file or directory cannot be opened, read or written.
 * DPT_ERR_FORMAT: the content is wrong: not a checkpoint, truncated, a CRC
 * mismatch, a missing tensor or metadata key, a tensor of another dtype.
 * DPT_ERR_SHAPE: a tensor has another element count than the caller expects
 * (a checkpoint of another model). DPT_ERR_ARG, DPT_ERR_NOMEM as usual.
 */
#ifndef DPT_CHECKPOINT_H
#define DPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "dpt/build_config.h"
#include "dpt/error.h"

#define DPT_CKPT_MAX_DIMS 8                     /* rank of a tensor, at most */
#define DPT_CKPT_MAX_HEADER 100000000u          /* bytes of JSON header, at most */

typedef enum dpt_ckpt_dtype {
    DPT_CKPT_F64 = 0, /* "F64" double */
    DPT_CKPT_F32,     /* "F32" float */
    DPT_CKPT_I64,     /* "I64" int64_t */
    DPT_CKPT_U64,     /* "U64" uint64_t */
    DPT_CKPT_I32,     /* "I32" int32_t */
    DPT_CKPT_U32,     /* "U32" uint32_t */
    DPT_CKPT_I8,      /* "I8"  int8_t */
    DPT_CKPT_U8,      /* "U8"  uint8_t */
    DPT_CKPT_DTYPE_COUNT_
} dpt_ckpt_dtype;

/* The dtype of dpt_real in this build (see dpt/real.h). */
#if defined(DPT_DOUBLE)
#define DPT_CKPT_REAL DPT_CKPT_F64
#else
#define DPT_CKPT_REAL DPT_CKPT_F32
#endif

/* "F32" etc. ("?" for an invalid value) and the bytes per element (0 for
 * an invalid value). */
const char *dpt_ckpt_dtype_name(dpt_ckpt_dtype dtype);
size_t dpt_ckpt_dtype_size(dpt_ckpt_dtype dtype);

/* ---------------------------------------------------------------- writer
 * Collects tensors (borrowed: their data is read when the file is written)
 * and metadata (copied), then writes them in one file. Usage:
 *     dpt_ckpt_writer w;
 *     dpt_ckpt_writer_init(&w);
 *     size_t shape[1] = {n};
 *     st = dpt_ckpt_add_tensor(&w, "params", DPT_CKPT_REAL, shape, 1, params);
 *     if (st == DPT_OK) st = dpt_ckpt_add_meta_int(&w, "step", step);
 *     if (st == DPT_OK) st = dpt_ckpt_write_atomic(&w, path);
 *     dpt_ckpt_writer_free(&w);
 * The fields are private. */
typedef struct dpt_ckpt_writer {
    struct dpt_ckpt_wtensor_ *tensors;
    size_t n_tensors, cap_tensors;
    char **meta_keys, **meta_values;
    size_t n_meta, cap_meta;
} dpt_ckpt_writer;

/* An empty writer; allocates nothing. */
void dpt_ckpt_writer_init(dpt_ckpt_writer *w);
/* Frees what the writer copied (not the tensors' data); w is empty again. */
void dpt_ckpt_writer_free(dpt_ckpt_writer *w);

/* Adds tensor `name` (non-empty UTF-8 without '"', unique, not
 * "__metadata__" nor "header", whose CRC key would be the header's) of
 * shape[0..ndim-1] (0 <= ndim <= DPT_CKPT_MAX_DIMS; ndim 0 is a scalar) in
 * row-major order. `data` is borrowed until the write: it must stay valid
 * and unchanged; it may be NULL only when the tensor has no element.
 * DPT_ERR_ARG for a bad name, dtype or shape, or a duplicate name. */
dpt_status dpt_ckpt_add_tensor(dpt_ckpt_writer *w, const char *name, dpt_ckpt_dtype dtype,
                               const size_t *shape, int ndim, const void *data);

/* Sets metadata `key` to `value` (both copied, UTF-8; key non-empty,
 * without '"', not starting with "crc32.", which is reserved). Setting a
 * key again replaces its value. DPT_ERR_ARG, DPT_ERR_NOMEM. */
dpt_status dpt_ckpt_add_meta(dpt_ckpt_writer *w, const char *key, const char *value);
/* The same with a decimal integer ("-12"). */
dpt_status dpt_ckpt_add_meta_int(dpt_ckpt_writer *w, const char *key, int64_t value);

/* Writes the file atomically at `path` (see "writing" above). DPT_ERR_IO
 * names the file and the system's reason (disk full, file size limit,
 * permission, ...); then `path` is as it was and no temporary file remains.
 * If the final fsync of the directory fails, the new file is already in
 * place and DPT_ERR_IO says so. The writer is unchanged and may be written
 * again. */
dpt_status dpt_ckpt_write_atomic(const dpt_ckpt_writer *w, const char *path);

/* ---------------------------------------------------------------- reader */
typedef struct dpt_ckpt_tensor {
    const char *name;
    dpt_ckpt_dtype dtype;
    int ndim;
    size_t shape[DPT_CKPT_MAX_DIMS];
    size_t count;        /* elements: the product of the shape (1 for a scalar) */
    size_t bytes;        /* count x element size */
    const void *data;    /* inside the checkpoint; aligned to the element size
                          * when the file was written by this module */
} dpt_ckpt_tensor;

typedef struct dpt_ckpt {
    char *source;                /* the file (or name) in messages */
    unsigned char *blob;         /* the whole file */
    size_t blob_size;
    dpt_ckpt_tensor *tensors;    /* n_tensors, in file order */
    size_t n_tensors;
    char **meta_keys, **meta_values; /* n_meta, the crc32.* entries included */
    size_t n_meta;
    struct dpt_ckpt_index_ *by_name_;     /* private: tensors sorted by name */
    struct dpt_ckpt_index_ *meta_by_key_; /* private: metadata sorted by key */
} dpt_ckpt;

/* Parses and verifies a checkpoint held in memory (buf may be NULL when len
 * is 0); `name` (may be NULL) is how messages call it. *out gets its own
 * copy of the bytes. Never reads outside buf[0..len), whatever it holds.
 * DPT_ERR_FORMAT (messages in the "errors" section above), DPT_ERR_NOMEM.
 * On failure *out is empty (dpt_ckpt_free is harmless). */
dpt_status dpt_ckpt_parse(const void *buf, size_t len, const char *name, dpt_ckpt *out);

/* Reads the whole file and verifies it as dpt_ckpt_parse does; a file
 * shorter than its header says is reported as truncated, with the expected
 * and actual sizes. DPT_ERR_IO when it cannot be opened or read. */
dpt_status dpt_ckpt_read_file(const char *path, dpt_ckpt *out);

/* Frees everything; *ckpt is empty. */
void dpt_ckpt_free(dpt_ckpt *ckpt);

/* The tensor or metadata value of that name; NULL if there is none. */
const dpt_ckpt_tensor *dpt_ckpt_find(const dpt_ckpt *ckpt, const char *name);
const char *dpt_ckpt_meta(const dpt_ckpt *ckpt, const char *key);

/* Copies tensor `name` into dst[0..count), checking that it exists
 * (DPT_ERR_FORMAT "no tensor 'name'"), has `dtype` (DPT_ERR_FORMAT "tensor
 * 'params' is F64, expected F32") and `count` elements (DPT_ERR_SHAPE
 * "tensor 'params' has 1000 elements, expected 1200"). */
dpt_status dpt_ckpt_get_tensor(const dpt_ckpt *ckpt, const char *name, dpt_ckpt_dtype dtype,
                               size_t count, void *dst);
/* Metadata `key`, DPT_ERR_FORMAT "no metadata 'key'" when it is missing. */
dpt_status dpt_ckpt_get_meta(const dpt_ckpt *ckpt, const char *key, const char **value);
/* Metadata `key` as a decimal integer; DPT_ERR_FORMAT when missing or not one. */
dpt_status dpt_ckpt_get_meta_int(const dpt_ckpt *ckpt, const char *key, int64_t *value);

/* ---------------------------------------------------------------- a directory of checkpoints
 * A checkpoint directory holds files named ckpt-<step>.safetensors with the
 * step printed in at least 12 digits, so that names sort like steps. */

/* out = "DIR/ckpt-%012ld.safetensors". DPT_ERR_ARG when step < 0 or the
 * path does not fit in size bytes. */
dpt_status dpt_ckpt_path(const char *dir, long step, char *out, size_t size);

typedef struct dpt_ckpt_listing {
    size_t count;
    char **paths;   /* "DIR/ckpt-....safetensors", newest (highest step) first */
    long *steps;
} dpt_ckpt_listing;

/* The checkpoint files in `dir` (names as dpt_ckpt_path makes them; other
 * files, temporary ones included, are ignored), newest first. A directory
 * that does not exist holds none: DPT_OK with count 0. DPT_ERR_IO when it
 * cannot be read. Free with dpt_ckpt_listing_free. */
dpt_status dpt_ckpt_list(const char *dir, dpt_ckpt_listing *out);
void dpt_ckpt_listing_free(dpt_ckpt_listing *list);

/* Removes all but the `keep` (>= 1) newest checkpoints of `dir`, never
 * `protect` (may be NULL: the one just written, which may be older than
 * others after a resume from an older checkpoint). DPT_ERR_IO names a file
 * that could not be removed. */
dpt_status dpt_ckpt_prune(const char *dir, int keep, const char *protect);

/* Writes the writer's content as DIR/ckpt-<step>.safetensors (creating DIR,
 * one level, if needed) atomically, then prunes DIR to its `keep` newest
 * checkpoints (keep <= 0: prunes nothing). path_out (may be NULL) receives
 * the file's path. A failure to prune is reported (DPT_ERR_IO) although the
 * checkpoint was written. */
dpt_status dpt_ckpt_save(const dpt_ckpt_writer *w, const char *dir, long step, int keep,
                         char *path_out, size_t path_size);

/* Called for each checkpoint that fails to verify, with dpt_error_message(),
 * e.g. "checkpoint d/ckpt-000000000200.safetensors: truncated: ...". */
typedef void (*dpt_ckpt_report_fn)(void *user, const char *path, const char *message);

/* The newest checkpoint of `dir` that verifies: tries them newest first,
 * calls report (may be NULL) for each one that does not, and stops at the
 * first that does, leaving its path in path_out and, when out is not NULL,
 * its content in *out (so it is read once). When `dir` holds no checkpoint
 * at all (or does not exist): DPT_OK with path_out = "" (start from
 * scratch). When it holds some but none verifies: DPT_ERR_FORMAT "none of
 * the N checkpoints in DIR verifies". DPT_ERR_IO when dir cannot be read,
 * DPT_ERR_ARG when a path does not fit in path_size. */
dpt_status dpt_ckpt_newest_valid(const char *dir, dpt_ckpt *out, char *path_out, size_t path_size,
                                 dpt_ckpt_report_fn report, void *user);

/* ---------------------------------------------------------------- hashing
 * 64-bit FNV-1a over bytes (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3): h ^= byte; h *= prime, for each byte, modulo 2^64. For a
 * config's identity (not for integrity, which is the CRCs' job). Python:
 *   h = 0xcbf29ce484222325
 *   for b in data: h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
 */
uint64_t dpt_ckpt_fnv1a64(const void *data, size_t len);
/* out = the FNV-1a of text's bytes (without the NUL) as 16 lowercase hex
 * digits and a NUL. */
void dpt_ckpt_hash_text(const char *text, char out[17]);

#endif /* DPT_CHECKPOINT_H */
