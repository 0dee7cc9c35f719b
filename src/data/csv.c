/* CSV data sets: one sample per line, comma-separated numbers, the label in
 * one column; plain or gzipped (zlib's gzread reads both; note that it
 * ignores bytes after the last gzip member). Serial: rank 0 runs it.
 *
 * Rules: blank lines are skipped; a cell may be wrapped in double quotes
 * ("" inside is a quote); blanks around a cell are ignored; every row has
 * the first row's number of columns; features are finite numbers, stored
 * as dpt_real; labels are integers 0..255 (3 and 3.0 alike). Messages say
 * FILE:LINE: column C (columns counted from 1, as lines are). */
#include "dpt/data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---------------------------------------------------------------- lines */

typedef struct line_reader {
    gzFile gz;                 /* NULL: the text is mem[0..mem_len) */
    const char *mem;
    size_t mem_len, pos;       /* pos: in mem, or in block */
    char *line;                /* the current line, NUL-terminated */
    size_t cap;
    long number;               /* of the current line, from 1 */
    char block[1 << 16];
    size_t block_len;
    const char *name;
} line_reader;

static dpt_status line_room(line_reader *r, size_t need)
{
    if (need <= r->cap) return DPT_OK;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < need) cap *= 2;
    char *bigger = realloc(r->line, cap);
    if (!bigger) return DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory for a line", r->name);
    r->line = bigger;
    r->cap = cap;
    return DPT_OK;
}

static dpt_status refill(line_reader *r)
{
    int got = gzread(r->gz, r->block, sizeof r->block);
    if (got < 0) {
        int err;
        const char *msg = gzerror(r->gz, &err);
        return DPT_FAIL(err == Z_ERRNO ? DPT_ERR_IO : DPT_ERR_FORMAT, "%s: %s", r->name,
                        err == Z_ERRNO ? strerror(errno) : msg);
    }
    r->block_len = (size_t)got;
    r->pos = 0;
    if (got == 0) { /* the end: gzread reports a cut-short gzip stream only here */
        int err;
        const char *msg = gzerror(r->gz, &err);
        if (err != Z_OK && err != Z_STREAM_END)
            return DPT_FAIL(DPT_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s)", r->name, msg);
    }
    return DPT_OK;
}

/* The next line into r->line (without '\n' or "\r\n"); *more = 0 at the end. */
static dpt_status next_line(line_reader *r, int *more, size_t *len)
{
    size_t n = 0;
    int any = 0;
    for (;;) {
        const char *src = r->gz ? r->block : r->mem;
        size_t end = r->gz ? r->block_len : r->mem_len;
        if (r->pos == end) {
            if (!r->gz) break;
            dpt_status st = refill(r);
            if (st != DPT_OK) return st;
            if (r->block_len == 0) break;
            continue;
        }
        const char *nl = memchr(src + r->pos, '\n', end - r->pos);
        size_t piece = nl ? (size_t)(nl - (src + r->pos)) : end - r->pos;
        dpt_status st = line_room(r, n + piece + 1);
        if (st != DPT_OK) return st;
        memcpy(r->line + n, src + r->pos, piece);
        n += piece;
        r->pos += piece + (nl ? 1 : 0);
        any = 1;
        if (nl) break;
    }
    *more = any;
    if (!any) return DPT_OK;
    if (n > 0 && r->line[n - 1] == '\r') n--;
    if (memchr(r->line, '\0', n))
        return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: a NUL byte: not a text (CSV) file", r->name, r->number + 1);
    r->line[n] = '\0';
    r->number++;
    *len = n;
    return DPT_OK;
}

/* ---------------------------------------------------------------- cells */

typedef struct csv_state {
    line_reader in;
    const dpt_load_options *opt;
    char **cells;              /* the current row's cells (into in.line) */
    size_t n_cells, cap_cells;
    size_t n_cols;             /* every row's, from the first */
    long label;                /* resolved label column, -1: none */
    size_t n_rows, cap_rows, n_feat;
    dpt_real *features;
    uint8_t *labels;
} csv_state;

static void trim(char **begin, char **end)
{
    while (*begin < *end && (**begin == ' ' || **begin == '\t')) (*begin)++;
    while (*end > *begin && ((*end)[-1] == ' ' || (*end)[-1] == '\t')) (*end)--;
}

/* Splits in.line at commas outside quotes, in place: each cell ends in a NUL. */
static dpt_status split_cells(csv_state *s)
{
    char *p = s->in.line;
    s->n_cells = 0;
    for (;;) {
        if (s->n_cells == s->cap_cells) {
            size_t cap = s->cap_cells ? 2 * s->cap_cells : 256;
            char **bigger = realloc(s->cells, cap * sizeof *bigger);
            if (!bigger) return DPT_FAIL(DPT_ERR_NOMEM, "%s: out of memory", s->in.name);
            s->cells = bigger;
            s->cap_cells = cap;
        }
        char *begin = p, *end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '"') { /* quoted: up to the closing quote, "" is a quote */
            char *out = begin = ++p;
            for (;;) {
                if (*p == '\0')
                    return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: column %zu: a quote that does not end "
                                    "on its line", s->in.name, s->in.number, s->n_cells + 1);
                if (*p == '"' && p[1] == '"') *out++ = '"', p += 2;
                else if (*p == '"') break;
                else *out++ = *p++;
            }
            end = out;
            p++;
            while (*p == ' ' || *p == '\t') p++;
            if (*p != ',' && *p != '\0')
                return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: column %zu: text after a closing quote",
                                s->in.name, s->in.number, s->n_cells + 1);
        } else {
            while (*p != ',' && *p != '\0') p++;
            end = p;
            trim(&begin, &end);
        }
        int last = *p == '\0';
        *end = '\0';
        s->cells[s->n_cells++] = begin;
        if (last) break;
        p++;
    }
    return DPT_OK;
}

/* A number filling the whole cell (blanks around it allowed: a quoted
 * cell keeps its blanks); 2 if it is finite, 1 if not (nan, inf, 1e999). */
static int parse_number(const char *cell, double *value)
{
    char *end;
    errno = 0;
    *value = strtod(cell, &end);
    if (end == cell) return 0;
    while (*end == ' ' || *end == '\t') end++;
    if (*end != '\0') return 0;
    return isfinite(*value) ? 2 : 1;
}

static dpt_status cell_error(const csv_state *s, size_t col, const char *what)
{
    const char *cell = s->cells[col];
    return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: column %zu: %s%.40s%s%s", s->in.name, s->in.number,
                    col + 1, *cell ? "'" : "", cell, *cell ? "' " : "", what);
}

/* ---------------------------------------------------------------- the first row */

static int row_is_numeric(const csv_state *s)
{
    double v;
    for (size_t c = 0; c < s->n_cells; c++)
        if (!parse_number(s->cells[c], &v)) return 0;
    return 1;
}

/* label_column: "none", an index (negative from the end) or a header name. */
static dpt_status resolve_label(csv_state *s, int header)
{
    const char *want = s->opt->label_column ? s->opt->label_column : "0";
    if (strcmp(want, "none") == 0) {
        s->label = -1;
        return DPT_OK;
    }
    char *end;
    errno = 0;
    long index = strtol(want, &end, 10);
    if (*want != '\0' && *end == '\0' && errno == 0) {
        long n = (long)s->n_cols;
        if (index < -n || index >= n)
            return DPT_FAIL(DPT_ERR_CONFIG, "%s: [data] label_column = %s, but the file has %zu "
                            "columns (indices 0..%ld, or -1..-%ld from the end)", s->in.name, want,
                            s->n_cols, n - 1, n);
        s->label = index < 0 ? n + index : index;
        return DPT_OK;
    }
    if (!header)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: [data] label_column = %s names a column, but the file "
                        "has no header row (its first row is all numbers); give an index instead",
                        s->in.name, want);
    for (size_t c = 0; c < s->n_cells; c++)
        if (strcmp(s->cells[c], want) == 0) {
            s->label = (long)c;
            return DPT_OK;
        }
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [data] label_column = %s: no such column in the header "
                    "(it starts %s%s%s%s%s)", s->in.name, want, s->cells[0],
                    s->n_cells > 1 ? ", " : "", s->n_cells > 1 ? s->cells[1] : "",
                    s->n_cells > 2 ? ", " : "", s->n_cells > 2 ? s->cells[2] : "");
}

/* Decides about the header and the label column from the first row;
 * *is_header: the row holds names, not data. */
static dpt_status first_row(csv_state *s, int *is_header)
{
    s->n_cols = s->n_cells;
    int numeric = row_is_numeric(s);
    switch (s->opt->csv_header) {
    case DPT_CSV_HEADER_YES: *is_header = 1; break;
    case DPT_CSV_HEADER_NO: *is_header = 0; break;
    default: *is_header = !numeric; break;
    }
    dpt_status st = resolve_label(s, *is_header);
    if (st != DPT_OK) return st;
    s->n_feat = s->n_cols - (s->label >= 0);
    if (s->n_feat == 0)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: only a label column: no features", s->in.name,
                        s->in.number);
    return DPT_OK;
}

/* ---------------------------------------------------------------- data rows */

static dpt_status grow_rows(csv_state *s)
{
    size_t cap = s->cap_rows ? 2 * s->cap_rows : 1024;
    dpt_real *f = realloc(s->features, cap * s->n_feat * sizeof *f);
    if (f) s->features = f;
    uint8_t *l = f ? realloc(s->labels, cap) : NULL;
    if (l) s->labels = l;
    if (!f || !l)
        return DPT_FAIL(DPT_ERR_NOMEM, "%s:%ld: out of memory for %zu rows of %zu features",
                        s->in.name, s->in.number, cap, s->n_feat);
    s->cap_rows = cap;
    return DPT_OK;
}

static dpt_status data_row(csv_state *s)
{
    if (s->n_cells != s->n_cols)
        return DPT_FAIL(DPT_ERR_FORMAT, "%s:%ld: %zu columns, but the first row has %zu", s->in.name,
                        s->in.number, s->n_cells, s->n_cols);
    if (s->n_rows == s->cap_rows) {
        dpt_status st = grow_rows(s);
        if (st != DPT_OK) return st;
    }
    dpt_real *x = s->features + s->n_rows * s->n_feat;
    uint8_t label = 0;
    for (size_t c = 0; c < s->n_cells; c++) {
        double v;
        if (parse_number(s->cells[c], &v) != 2)
            return cell_error(s, c, *s->cells[c] ? "is not a finite number" : "empty cell");
        if ((long)c == s->label) {
            if (!(v >= 0 && v <= 255 && v == floor(v)))
                return cell_error(s, c, "is not a label (an integer 0..255)");
            label = (uint8_t)v;
        } else {
            *x++ = (dpt_real)v;
        }
    }
    s->labels[s->n_rows++] = label;
    return DPT_OK;
}

static dpt_status read_rows(csv_state *s)
{
    int seen_first = 0;
    for (;;) {
        int more;
        size_t len = 0;
        dpt_status st = next_line(&s->in, &more, &len);
        if (st != DPT_OK || !more) return st;
        size_t blank = strspn(s->in.line, " \t");
        if (blank == len) continue;
        st = split_cells(s);
        if (st == DPT_OK && !seen_first) {
            int is_header;
            seen_first = 1;
            st = first_row(s, &is_header);
            if (st != DPT_OK || is_header) {
                if (st != DPT_OK) return st;
                continue;
            }
        }
        if (st == DPT_OK) st = data_row(s);
        if (st != DPT_OK) return st;
    }
}

/* Reads everything from s->in into set. */
static dpt_status parse(csv_state *s, dpt_dataset *set, const dpt_load_options *options)
{
    static const dpt_load_options defaults = {DPT_FORMAT_CSV, "0", DPT_CSV_HEADER_AUTO};
    s->opt = options ? options : &defaults;
    dpt_status st = read_rows(s);
    if (st == DPT_OK && s->n_rows == 0)
        st = DPT_FAIL(DPT_ERR_FORMAT, "%s: no data rows", s->in.name);
    if (st == DPT_OK) {
        dpt_real *f = realloc(s->features, s->n_rows * s->n_feat * sizeof *f); /* shrink */
        if (f) s->features = f;
        st = dpt_dataset_take(set, DPT_FEATURES_REAL, s->features, s->labels, s->n_rows, s->n_feat,
                              s->in.name);
        s->features = NULL;
        s->labels = NULL;
    }
    free(s->features);
    free(s->labels);
    free(s->cells);
    free(s->in.line);
    return st;
}

dpt_status dpt_csv_read(dpt_dataset *set, const char *path, const dpt_load_options *options)
{
    memset(set, 0, sizeof *set);
    csv_state *s = calloc(1, sizeof *s); /* 64 KiB block: not on the stack */
    if (!s) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory reading %s", path);
    s->in.name = path;
    errno = 0;
    FILE *probe = fopen(path, "rb"); /* for the open error's reason, which gzopen may not set */
    if (!probe) {
        dpt_status st = DPT_FAIL(DPT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        free(s);
        return st;
    }
    fclose(probe);
    s->in.gz = gzopen(path, "rb");
    if (!s->in.gz) {
        free(s);
        return DPT_FAIL(DPT_ERR_IO, "cannot open %s", path);
    }
    gzbuffer(s->in.gz, 1 << 17);
    dpt_status st = parse(s, set, options);
    gzclose(s->in.gz);
    free(s);
    return st;
}

dpt_status dpt_csv_parse(dpt_dataset *set, const char *text, size_t len, const char *name,
                         const dpt_load_options *options)
{
    memset(set, 0, sizeof *set);
    csv_state *s = calloc(1, sizeof *s);
    if (!s) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory parsing %s", name ? name : "CSV text");
    s->in.name = name ? name : "(memory)";
    s->in.mem = text ? text : "";
    s->in.mem_len = text ? len : 0;
    dpt_status st = parse(s, set, options);
    free(s);
    return st;
}
