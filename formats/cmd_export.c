/*
 * cmd_export.c: `strata export`, the ways out of a warehouse for other
 * tools: CSV and JSON lines of one layer file (to stdout or --out), and
 * Parquet (strata's own writer, parquet.h) of one file or of every table
 * of a warehouse.
 *
 * CSV keeps NULL and the empty string apart: a NULL is an empty unquoted
 * field, an empty string is `""` (PostgreSQL's COPY CSV convention; DuckDB
 * reads it so with read_csv(..., allow_quoted_nulls = false), a test checks).
 *
 * Warehouse export writes OUTDIR/<layer>/<table>.parquet for every
 * <layer>/<table>.strata and keeps OUTDIR/.strata-export, a manifest of
 * one line per table ("<layer>/<table> <fingerprint> <writer version>"):
 * a table whose fingerprint and writer version are unchanged since the
 * last export, and whose Parquet file still exists, is skipped. The
 * manifest is rewritten atomically after the exports, and only lists
 * tables exported successfully.
 *
 * Flags are read by the shared parser (pipeline/args.c): `--flag value` and
 * `--flag=value` alike; usage errors print one line "strata export: <what
 * is wrong>" and exit 2.
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata/buf.h"
#include "strata/cli.h"
#include "strata/file.h"
#include "strata/parquet.h"
#include "strata/warehouse.h"

/* Bump when the Parquet bytes written for the same table change. */
#define PARQUET_WRITER_VERSION 1
#define MANIFEST_NAME ".strata-export"

static void export_usage(FILE *f)
{
    fprintf(f, "usage: strata export FILE [--format csv|jsonl|parquet] [--columns a,b,...] [--out PATH]\n"
               "       strata export --warehouse DIR --format parquet --out OUTDIR\n"
               "\n"
               "Writes a layer file to stdout (or --out PATH), or every table of a warehouse as Parquet.\n"
               "  --format csv      (default) RFC 4180: header row, fields quoted when they hold a comma,\n"
               "                    quote, CR or LF (quotes doubled); NULL is an empty unquoted field and\n"
               "                    the empty string is \"\" (PostgreSQL's COPY CSV; DuckDB: read_csv(...,\n"
               "                    allow_quoted_nulls = false))\n"
               "  --format jsonl    one JSON object per row; NULL is null; non-finite floats are null;\n"
               "                    bytes columns are hex strings\n"
               "  --format parquet  Apache Parquet (zstd, dictionary where it pays, statistics, the table's\n"
               "                    lineage and fingerprint as key-value metadata); needs --out\n"
               "  --columns a,b     only these columns, in this order (csv and jsonl; default: all)\n"
               "  --out PATH        output file; with --warehouse, the output directory: one\n"
               "                    OUTDIR/<layer>/<table>.parquet per table, tables whose fingerprint is\n"
               "                    unchanged since the last export into OUTDIR are skipped\n"
               "  --warehouse DIR   export every table of this warehouse (Parquet only)\n");
}

/* ---- CSV and JSON lines ---- */

static void csv_field(st_buf *b, const char *s, size_t n)
{
    bool q = n == 0; /* "" is the empty string; an empty unquoted field is NULL */
    for (size_t i = 0; i < n && !q; i++) q = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!q) {
        st_buf_append(b, s, n);
        return;
    }
    st_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') st_buf_puts(b, "\"");
        st_buf_append(b, s + i, 1);
    }
    st_buf_puts(b, "\"");
}

static void value_text(st_buf *b, const st_column *c, size_t i, bool json)
{
    char t[64];
    switch (c->type) {
    case ST_TYPE_BOOL: st_buf_puts(b, st_column_bool(c)[i] ? "true" : "false"); break;
    case ST_TYPE_I32: st_buf_printf(b, "%" PRId32, st_column_i32(c)[i]); break;
    case ST_TYPE_I64: st_buf_printf(b, "%" PRId64, st_column_i64(c)[i]); break;
    case ST_TYPE_F64: {
        double v = st_column_f64(c)[i];
        if (json) st_buf_json_f64(b, v);
        else if (isnan(v)) st_buf_puts(b, "NaN");
        else if (isinf(v)) st_buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
        else {
            snprintf(t, sizeof t, "%.17g", v);
            st_buf_puts(b, t);
        }
        break;
    }
    case ST_TYPE_STR: {
        size_t n;
        const char *s = st_column_str(c, i, &n);
        if (json) st_buf_json_str(b, s, n);
        else csv_field(b, s, n);
        break;
    }
    case ST_TYPE_BYTES: {
        size_t n;
        const unsigned char *s = (const unsigned char *)st_column_str(c, i, &n);
        if (json || n == 0) st_buf_puts(b, "\"");
        for (size_t k = 0; k < n; k++) st_buf_printf(b, "%02x", s[k]);
        if (json || n == 0) st_buf_puts(b, "\"");
        break;
    }
    }
}

/* Resolves --columns into which[] (all columns when spec is NULL). */
static st_status pick_columns(st_reader *r, const char *path, const char *spec, size_t *which, size_t *nw,
                              st_error *err)
{
    size_t nf = st_reader_n_fields(r);
    *nw = 0;
    if (!spec) {
        for (size_t j = 0; j < nf; j++) which[(*nw)++] = j;
        return ST_OK;
    }
    char *copy = strdup(spec);
    if (!copy) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    st_status s = ST_OK;
    for (char *tok = strtok(copy, ","); tok && s == ST_OK; tok = strtok(NULL, ",")) {
        int k = st_reader_find(r, tok);
        if (k < 0 || *nw == nf) s = st_error_set(err, ST_ERR_SCHEMA, "'%s' has no column '%s'", path, tok);
        else which[(*nw)++] = (size_t)k;
    }
    free(copy);
    return s;
}

static void text_row(st_buf *b, st_reader *r, const size_t *which, size_t nw, const st_column *cols, size_t i,
                     bool json)
{
    if (json) st_buf_puts(b, "{");
    for (size_t j = 0; j < nw; j++) {
        if (json) {
            if (j) st_buf_puts(b, ", ");
            const char *n = st_reader_field(r, which[j])->name;
            st_buf_json_str(b, n, strlen(n));
            st_buf_puts(b, ": ");
            if (!st_column_valid(&cols[j], i)) st_buf_puts(b, "null");
            else value_text(b, &cols[j], i, true);
        } else {
            if (j) st_buf_puts(b, ",");
            if (st_column_valid(&cols[j], i)) value_text(b, &cols[j], i, false);
        }
    }
    st_buf_puts(b, json ? "}\n" : "\r\n");
}

/* Streams the rows of r as CSV or JSON lines to out, chunk by chunk. */
static st_status export_text(st_reader *r, const char *path, const char *columns, bool json, FILE *out,
                             st_error *err)
{
    size_t nf = st_reader_n_fields(r), nw = 0;
    size_t *which = calloc(nf + 1, sizeof *which);
    st_column *cols = calloc(nf + 1, sizeof *cols);
    st_buf b;
    st_buf_init(&b);
    st_status s = which && cols ? pick_columns(r, path, columns, which, &nw, err)
                                : st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s != ST_OK) goto done;
    for (size_t j = 0; j < nw; j++) st_column_init(&cols[j], st_reader_field(r, which[j])->type);
    for (size_t j = 0; !json && j < nw; j++) {
        if (j) st_buf_puts(&b, ",");
        const char *n = st_reader_field(r, which[j])->name;
        csv_field(&b, n, strlen(n));
    }
    if (!json) st_buf_puts(&b, "\r\n");
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        for (size_t j = 0; j < nw && s == ST_OK; j++) s = st_reader_read_block(r, c, which[j], &cols[j], err);
        for (size_t i = 0; s == ST_OK && nw && i < cols[0].n_rows; i++) {
            text_row(&b, r, which, nw, cols, i, json);
            if (b.len > (1 << 20)) {
                if (fwrite(b.data, 1, b.len, out) != b.len) s = st_error_set(err, ST_ERR_IO, "write failed");
                st_buf_reset(&b);
            }
        }
    }
    if (s == ST_OK && !st_buf_ok(&b)) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s == ST_OK && b.len && fwrite(b.data, 1, b.len, out) != b.len) s = st_error_set(err, ST_ERR_IO, "write failed");
done:
    st_buf_free(&b);
    for (size_t j = 0; cols && j < nw; j++) st_column_free(&cols[j]);
    free(cols);
    free(which);
    return s;
}

/* ---- a whole warehouse to Parquet ---- */

typedef struct manifest {
    char *text;   /* the previous manifest, NUL-terminated ("" when none) */
    st_buf next;  /* the one being written */
} manifest;

/* True when the previous manifest lists `name` with this fingerprint. */
static bool manifest_has(const manifest *m, const char *name, const char *fp)
{
    char want[ST_PATH_MAX + 64];
    snprintf(want, sizeof want, "%s %s %d\n", name, fp, PARQUET_WRITER_VERSION);
    size_t n = strlen(want);
    for (const char *p = m->text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (len == n && !memcmp(p, want, n)) return true;
        p += len;
    }
    return false;
}

static char *slurp_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    st_buf b;
    st_buf_init(&b);
    char tmp[4096];
    size_t n;
    while (f && (n = fread(tmp, 1, sizeof tmp, f)) > 0) st_buf_append(&b, tmp, n);
    if (f) fclose(f);
    if (!st_buf_ok(&b) || !b.data) {
        st_buf_free(&b);
        return strdup("");
    }
    return b.data;
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.' && e->d_name[0] != '_'; }

/* Exports one table unless the manifest says it is unchanged. */
static st_status export_table(const char *wh, const char *outdir, const char *layer, const char *file, manifest *m,
                              int *n_done, int *n_same, st_error *err)
{
    char src[ST_PATH_MAX], dst[ST_PATH_MAX], name[ST_PATH_MAX], fp[17];
    size_t l = strlen(file);
    snprintf(name, sizeof name, "%s/%.*s", layer, (int)(l - 7), file);
    snprintf(src, sizeof src, "%s/%s/%s", wh, layer, file);
    if (snprintf(dst, sizeof dst, "%s/%s.parquet", outdir, name) >= (int)sizeof dst)
        return st_error_set(err, ST_ERR_INVALID, "output path for %s is too long", src);
    st_reader *r = NULL;
    ST_TRY(st_reader_open(&r, src, err));
    snprintf(fp, sizeof fp, "%016" PRIx64, st_reader_meta(r)->fingerprint);
    st_reader_close(r);
    st_buf_printf(&m->next, "%s %s %d\n", name, fp, PARQUET_WRITER_VERSION);
    if (manifest_has(m, name, fp) && access(dst, F_OK) == 0) {
        (*n_same)++;
        return ST_OK;
    }
    char dir[ST_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", outdir, layer);
    ST_TRY(st_mkdirs(dir, err));
    ST_TRY(st_pq_export_file(src, dst, NULL, err));
    (*n_done)++;
    return ST_OK;
}

static st_status export_layer(const char *wh, const char *outdir, const char *layer, manifest *m, int *n_done,
                              int *n_same, st_error *err)
{
    char dir[ST_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", wh, layer);
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, not_hidden, alphasort);
    st_status s = ST_OK;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(ents[i]->d_name);
        if (s == ST_OK && l > 7 && !strcmp(ents[i]->d_name + l - 7, ".strata"))
            s = export_table(wh, outdir, layer, ents[i]->d_name, m, n_done, n_same, err);
        free(ents[i]);
    }
    free(ents);
    return s;
}

static int export_warehouse(const char *wh, const char *outdir)
{
    st_error err = {0};
    manifest m = {0};
    st_buf_init(&m.next);
    char mpath[ST_PATH_MAX];
    snprintf(mpath, sizeof mpath, "%s/" MANIFEST_NAME, outdir);
    struct dirent **ents = NULL;
    int n = scandir(wh, &ents, not_hidden, alphasort), n_done = 0, n_same = 0;
    st_status s = n < 0 ? st_error_set(&err, ST_ERR_NOTFOUND, "cannot read warehouse %s", wh) : st_mkdirs(outdir, &err);
    if (s == ST_OK) m.text = slurp_text(mpath);
    if (s == ST_OK && !m.text) s = st_error_set(&err, ST_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        char sub[ST_PATH_MAX];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s/%s", wh, ents[i]->d_name);
        if (s == ST_OK && stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            s = export_layer(wh, outdir, ents[i]->d_name, &m, &n_done, &n_same, &err);
        free(ents[i]);
    }
    free(ents);
    if (s == ST_OK && !st_buf_ok(&m.next)) s = st_error_set(&err, ST_ERR_NOMEM, "out of memory");
    if (s == ST_OK) s = st_write_file_atomic(mpath, m.next.data ? m.next.data : "", m.next.len, &err);
    free(m.text);
    st_buf_free(&m.next);
    if (s != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    printf("exported %d table%s to %s, %d unchanged since the last export\n", n_done, n_done == 1 ? "" : "s", outdir,
           n_same);
    return 0;
}

/* ---- the command ---- */

typedef struct export_args {
    const char *path, *columns, *out, *warehouse;
    int format; /* FMT_* */
} export_args;

enum { FMT_CSV, FMT_JSONL, FMT_PARQUET };

/* Parses argv with the shared parser (pipeline/args.c) into *a, checking
 * how the flags combine; returns -1 when the command should go on, else
 * the exit code (usage errors already printed). */
static int parse_args(st_args *p, export_args *a)
{
    const char *v;
    int f;
    while ((f = st_args_next(p, &v)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL && a->path)
            return st_args_error(p, "unexpected argument '%s': one FILE (see strata export --help)", v);
        if (f == ST_ARGS_POSITIONAL) a->path = v;
        else if (f == 0 && !st_args_choice(p, v, "csv|jsonl|parquet", &a->format)) return ST_ARGS_USAGE;
        else if (f == 1) a->columns = v;
        else if (f == 2) a->out = v;
        else if (f == 3) a->warehouse = v;
    }
    bool parquet = a->format == FMT_PARQUET;
    if (a->warehouse && a->path) return st_args_error(p, "give either FILE or --warehouse, not both ('%s')", a->path);
    if (a->warehouse && !parquet) return st_args_error(p, "--warehouse exports Parquet only (add --format parquet)");
    if (a->warehouse && !a->out) return st_args_error(p, "--warehouse needs --out OUTDIR");
    if (!a->warehouse && !a->path) return st_args_error(p, "missing FILE (see strata export --help)");
    if (parquet && !a->out) return st_args_error(p, "--format parquet needs --out FILE");
    if (parquet && a->columns) return st_args_error(p, "--columns is for csv and jsonl");
    return -1;
}

int st_cmd_export(int argc, char **argv)
{
    static const st_argspec spec[] = {{"--format", true}, {"--columns", true}, {"--out", true}, {"--warehouse", true}};
    st_args p;
    st_args_init(&p, "export", argc, argv, spec, 4, export_usage);
    export_args a = {.format = FMT_CSV};
    int rc = parse_args(&p, &a);
    if (rc >= 0) return rc;
    st_error err = {0};
    /* one build, never a half-published one */
    st_status s = st_warehouse_check_pending(a.warehouse ? a.warehouse : a.path, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    if (a.warehouse) return export_warehouse(a.warehouse, a.out);
    if (a.format == FMT_PARQUET) {
        s = st_pq_export_file(a.path, a.out, NULL, &err);
    } else {
        st_reader *r = NULL;
        FILE *out = stdout;
        s = st_reader_open(&r, a.path, &err);
        if (s == ST_OK && a.out && !(out = fopen(a.out, "wb")))
            s = st_error_set(&err, ST_ERR_IO, "cannot create %s", a.out);
        if (s == ST_OK) s = export_text(r, a.path, a.columns, a.format == FMT_JSONL, out, &err);
        if (out && out != stdout && fclose(out) != 0 && s == ST_OK)
            s = st_error_set(&err, ST_ERR_IO, "writing %s failed", a.out);
        st_reader_close(r);
    }
    if (s != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    return 0;
}
