/*
 * cmd_inspect.c: `strata inspect`, the command-line window onto a layer
 * file (`strata export` lives in cmd_export.c). Only uses the public
 * reader API (`inspect DIR` lists a warehouse through pipeline/catalog.c).
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "strata/buf.h"
#include "strata/cli.h"
#include "strata/file.h"
#include "strata/warehouse.h"

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: strata inspect FILE|DIR [--verify] [--json]\n"
               "\n"
               "Shows a layer file: schema, rows, chunks, per-column encodings, stored vs raw\n"
               "sizes, min/max/null statistics from the zone maps, lineage, parameters and\n"
               "metadata. Given a warehouse directory, lists its tables: layer, table, rows,\n"
               "bytes, the run that built each (from _runs/) and fingerprint.\n"
               "  --verify   decode every block and check every checksum; with a directory,\n"
               "             verify every .strata file under it (exit 6 if any is damaged)\n"
               "  --json     print the facts as one JSON object\n");
}

/* Sorted names of the entries of directory d (not "."-files); caller
 * frees each and the array. NULL entries are allocation failures. */
static size_t sorted_names(DIR *d, char ***out)
{
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (names[i] && names[j] && strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    *out = names;
    return n;
}

/* Verifies path (a file, or every .strata file under a directory), one
 * line each on stdout, or one JSON object each into js when it is given. */
static int verify_tree(const char *path, int *n_files, int *n_bad, int *n_newer, st_buf *js)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return -1;
        char **names;
        size_t n = sorted_names(d, &names);
        closedir(d);
        for (size_t i = 0; i < n; i++) {
            if (!names[i]) continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", path, names[i]) < (int)sizeof sub) verify_tree(sub, n_files, n_bad, n_newer, js);
            free(names[i]);
        }
        free(names);
        return 0;
    }
    size_t l = strlen(path);
    if (l < 7 || strcmp(path + l - 7, ".strata")) return 0;
    st_reader *r = NULL;
    st_error err = {0};
    st_status s = st_reader_open(&r, path, &err);
    if (s == ST_OK) s = st_reader_verify(r, &err);
    st_reader_close(r);
    if (js) {
        st_buf_puts(js, *n_files ? ",\n  {\"file\": " : "\n  {\"file\": ");
        st_buf_json_str(js, path, l);
        st_buf_printf(js, ", \"ok\": %s", s == ST_OK ? "true" : "false");
        if (s != ST_OK) {
            st_buf_puts(js, ", \"error\": ");
            st_buf_json_str(js, err.msg, strlen(err.msg));
        }
        st_buf_puts(js, "}");
    } else if (s == ST_ERR_UNSUPPORTED) {
        printf("NEWER   %s: %s\n", path, err.msg);
    } else if (s != ST_OK) {
        printf("DAMAGED %s: %s\n", path, err.msg);
    } else {
        printf("ok      %s\n", path);
    }
    (*n_files)++;
    if (s == ST_ERR_UNSUPPORTED) (*n_newer)++; /* written by a newer strata: not damaged */
    else if (s != ST_OK) (*n_bad)++;
    return 0;
}

/* `inspect DIR --verify [--json]`. */
static int verify_dir(const char *path, bool json)
{
    int nf = 0, nb = 0, nn = 0;
    st_buf js;
    st_buf_init(&js);
    if (json) {
        st_buf_puts(&js, "{\"directory\": ");
        st_buf_json_str(&js, path, strlen(path));
        st_buf_puts(&js, ", \"files\": [");
    }
    verify_tree(path, &nf, &nb, &nn, json ? &js : NULL);
    if (json) {
        st_buf_printf(&js, "\n], \"checked\": %d, \"damaged\": %d, \"newer_version\": %d}\n", nf, nb, nn);
        fwrite(js.data, 1, js.len, stdout);
    } else {
        printf("%d file%s checked, %d damaged", nf, nf == 1 ? "" : "s", nb);
        if (nn) printf(", %d written by a newer strata", nn);
        printf("\n");
    }
    st_buf_free(&js);
    return nb ? st_status_exit_code(ST_ERR_CORRUPT) : nn ? st_status_exit_code(ST_ERR_UNSUPPORTED) : 0;
}

/* One column's facts, summed over its blocks. */
typedef struct col_stats {
    char encs[128];  /* "plain:3,rle:1+zstd:2" */
    char range[96];  /* "min .. max" as text, "" when no block has statistics */
    uint64_t stored, raw, nulls;
    bool any;        /* min/max known */
    int64_t mn, mx;
    double fmn, fmx;
} col_stats;

static void column_stats(st_reader *r, size_t j, col_stats *cs)
{
    const st_field *f = st_reader_field(r, j);
    int counts[6] = {0}, zcount = 0;
    memset(cs, 0, sizeof *cs);
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        st_block_info bi;
        if (st_reader_block_info(r, c, j, &bi) != ST_OK) continue;
        if (bi.encoding >= 0 && bi.encoding < 6) counts[bi.encoding]++;
        zcount += bi.zstd;
        cs->stored += bi.size_bytes;
        cs->raw += bi.raw_bytes;
        cs->nulls += bi.null_count;
        if (!bi.has_minmax) continue;
        if (f->type == ST_TYPE_F64) {
            if (!cs->any || bi.min_f64 < cs->fmn) cs->fmn = bi.min_f64;
            if (!cs->any || bi.max_f64 > cs->fmx) cs->fmx = bi.max_f64;
        } else {
            if (!cs->any || bi.min_i64 < cs->mn) cs->mn = bi.min_i64;
            if (!cs->any || bi.max_i64 > cs->mx) cs->mx = bi.max_i64;
        }
        cs->any = true;
    }
    for (int e = 0; e < 6; e++)
        if (counts[e]) {
            size_t l = strlen(cs->encs);
            snprintf(cs->encs + l, sizeof cs->encs - l, "%s%s:%d", l ? "," : "", st_encoding_name(e), counts[e]);
        }
    if (zcount) {
        size_t l = strlen(cs->encs);
        snprintf(cs->encs + l, sizeof cs->encs - l, "+zstd:%d", zcount);
    }
    if (cs->any && f->type == ST_TYPE_F64) snprintf(cs->range, sizeof cs->range, "%.6g .. %.6g", cs->fmn, cs->fmx);
    else if (cs->any) snprintf(cs->range, sizeof cs->range, "%" PRId64 " .. %" PRId64, cs->mn, cs->mx);
}

static void column_json(st_buf *b, const st_field *f, const col_stats *cs)
{
    st_buf_puts(b, "{\"name\": ");
    st_buf_json_str(b, f->name, strlen(f->name));
    st_buf_printf(b, ", \"type\": \"%s\", \"nullable\": %s, \"encodings\": \"%s\", \"stored_bytes\": %" PRIu64
                     ", \"raw_bytes\": %" PRIu64 ", \"nulls\": %" PRIu64,
                  st_type_name(f->type), f->nullable ? "true" : "false", cs->encs, cs->stored, cs->raw, cs->nulls);
    if (cs->any && f->type == ST_TYPE_F64) {
        st_buf_puts(b, ", \"min\": ");
        st_buf_json_f64(b, cs->fmn);
        st_buf_puts(b, ", \"max\": ");
        st_buf_json_f64(b, cs->fmx);
    } else if (cs->any) {
        st_buf_printf(b, ", \"min\": %" PRId64 ", \"max\": %" PRId64, cs->mn, cs->mx);
    }
    st_buf_puts(b, ", \"description\": ");
    const char *d = f->description ? f->description : "";
    st_buf_json_str(b, d, strlen(d));
    st_buf_puts(b, "}");
}

/* The file-level facts, before the columns. */
static void file_header(st_buf *b, bool json, const char *path, st_reader *r)
{
    const st_file_meta *m = st_reader_meta(r);
    int maj, min;
    st_reader_version(r, &maj, &min);
    size_t nc = st_reader_n_chunks(r);
    if (!json) {
        char rows[32];
        st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
        st_buf_printf(b, "%s\n  strata format %d.%d, table %s.%s, %s rows in %zu chunk%s, fingerprint %016" PRIx64 "\n",
                      path, maj, min, m->layer, m->table, rows, nc, nc == 1 ? "" : "s", m->fingerprint);
        st_buf_puts(b, "  inputs:");
        if (!m->n_inputs) st_buf_puts(b, " (none)");
        for (size_t i = 0; i < m->n_inputs; i++) st_buf_printf(b, " %s", m->inputs[i]);
        st_buf_puts(b, "\n");
        if (m->params[0]) st_buf_printf(b, "  params: %s\n", m->params);
        if (st_reader_n_parts(r)) st_buf_printf(b, "  parts: %zu (in row order)\n", st_reader_n_parts(r));
        for (size_t i = 0; i < st_reader_n_parts(r); i++) st_buf_printf(b, "    %s\n", st_reader_part_path(r, i));
        for (size_t i = 0; i < m->n_kv; i++) st_buf_printf(b, "  meta %s = %s\n", m->kv[i].key, m->kv[i].value);
        st_buf_printf(b, "\n  %-28s %-8s %-4s %-26s %12s %12s %6s %10s  %s\n", "column", "type", "null",
                      "encodings (blocks)", "stored", "raw", "ratio", "nulls", "min .. max");
        return;
    }
    st_buf_puts(b, "{\"file\": ");
    st_buf_json_str(b, path, strlen(path));
    st_buf_printf(b, ", \"version\": \"%d.%d\", \"layer\": ", maj, min);
    st_buf_json_str(b, m->layer, strlen(m->layer));
    st_buf_puts(b, ", \"table\": ");
    st_buf_json_str(b, m->table, strlen(m->table));
    st_buf_printf(b, ", \"rows\": %" PRIu64 ", \"chunks\": %zu, \"fingerprint\": \"%016" PRIx64 "\", \"inputs\": [",
                  st_reader_n_rows(r), nc, m->fingerprint);
    for (size_t i = 0; i < m->n_inputs; i++) {
        if (i) st_buf_puts(b, ", ");
        st_buf_json_str(b, m->inputs[i], strlen(m->inputs[i]));
    }
    st_buf_puts(b, "]");
    for (size_t i = 0; i < st_reader_n_parts(r); i++) { /* a partitioned table's parts, in row order */
        const char *pp = st_reader_part_path(r, i);
        st_buf_puts(b, i ? ", " : ", \"parts\": [");
        st_buf_json_str(b, pp, strlen(pp));
        if (i + 1 == st_reader_n_parts(r)) st_buf_puts(b, "]");
    }
    st_buf_puts(b, ", \"params\": ");
    st_buf_json_str(b, m->params, strlen(m->params));
    st_buf_puts(b, ", \"metadata\": {");
    for (size_t i = 0; i < m->n_kv; i++) {
        if (i) st_buf_puts(b, ", ");
        st_buf_json_str(b, m->kv[i].key, strlen(m->kv[i].key));
        st_buf_puts(b, ": ");
        st_buf_json_str(b, m->kv[i].value, strlen(m->kv[i].value));
    }
    st_buf_puts(b, "}, \"columns\": [");
}

/* `inspect FILE [--verify] [--json]`. */
static int inspect_file(const char *path, bool verify, bool json)
{
    st_reader *r = NULL;
    st_error err = {0};
    st_status s = st_reader_open(&r, path, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    st_status vs = verify ? st_reader_verify(r, &err) : ST_OK;
    st_buf b;
    st_buf_init(&b);
    file_header(&b, json, path, r);
    uint64_t tot_stored = 0, tot_raw = 0;
    for (size_t j = 0; j < st_reader_n_fields(r); j++) {
        const st_field *f = st_reader_field(r, j);
        col_stats cs;
        column_stats(r, j, &cs);
        tot_stored += cs.stored;
        tot_raw += cs.raw;
        if (json) {
            if (j) st_buf_puts(&b, ", ");
            column_json(&b, f, &cs);
        } else {
            st_buf_printf(&b, "  %-28s %-8s %-4s %-26s %12" PRIu64 " %12" PRIu64 " %5.1fx %10" PRIu64 "  %s\n", f->name,
                          st_type_name(f->type), f->nullable ? "yes" : "no", cs.encs, cs.stored, cs.raw,
                          cs.stored ? (double)cs.raw / (double)cs.stored : 0.0, cs.nulls, cs.range);
        }
    }
    if (json) {
        st_buf_printf(&b, "], \"stored_bytes\": %" PRIu64 ", \"raw_bytes\": %" PRIu64, tot_stored, tot_raw);
        if (verify) st_buf_printf(&b, ", \"verified\": %s", vs == ST_OK ? "true" : "false");
        st_buf_puts(&b, "}\n");
    } else {
        st_buf_printf(&b, "\n  total: %" PRIu64 " bytes stored for %" PRIu64 " raw bytes (%.2fx)\n", tot_stored, tot_raw,
                      tot_stored ? (double)tot_raw / (double)tot_stored : 0.0);
        if (verify) st_buf_printf(&b, "  verify: %s\n", vs == ST_OK ? "every block checksum and decode ok" : err.msg);
    }
    fwrite(b.data, 1, b.len, stdout);
    st_buf_free(&b);
    st_reader_close(r);
    if (vs != ST_OK) {
        if (json) fprintf(stderr, "strata inspect: %s\n", err.msg);
        return st_status_exit_code(vs);
    }
    return 0;
}

int st_cmd_inspect(int argc, char **argv)
{
    static const st_argspec spec[] = {{"--verify", false}, {"--json", false}};
    st_args a;
    st_args_init(&a, "inspect", argc, argv, spec, 2, inspect_usage);
    const char *path = NULL, *v;
    bool verify = false, json = false;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL && path)
            return st_args_error(&a, "unexpected argument '%s': one FILE or DIR (see strata inspect --help)", v);
        if (f == ST_ARGS_POSITIONAL) path = v;
        else if (f == 0) verify = true;
        else json = true;
    }
    if (!path) return st_args_error(&a, "missing FILE or DIR (see strata inspect --help)");
    st_error perr;
    st_status ps = st_warehouse_check_pending(path, &perr); /* one build, never a half-published one */
    if (ps != ST_OK) {
        fprintf(stderr, "strata inspect: %s\n", perr.msg);
        return st_status_exit_code(ps);
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return verify ? verify_dir(path, json) : st_inspect_warehouse(path, json);
    return inspect_file(path, verify, json);
}
