/*
 * cmd_inspect.c: `strata inspect` and `strata export`, the command-line
 * windows onto a layer file. Both only use the public reader API.
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
               "sizes, min/max/null statistics from the zone maps, lineage and metadata.\n"
               "  --verify   decode every block and check every checksum; with a directory,\n"
               "             verify every .strata file under it (exit 6 if any is damaged)\n"
               "  --json     print the facts as one JSON object\n");
}

static int verify_tree(const char *path, int *n_files, int *n_bad, int *n_newer)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return -1;
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
        closedir(d);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = i + 1; j < n; j++)
                if (names[i] && names[j] && strcmp(names[i], names[j]) > 0) {
                    char *t = names[i];
                    names[i] = names[j];
                    names[j] = t;
                }
        }
        for (size_t i = 0; i < n; i++) {
            if (!names[i]) continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", path, names[i]) < (int)sizeof sub) verify_tree(sub, n_files, n_bad, n_newer);
            free(names[i]);
        }
        free(names);
        return 0;
    }
    size_t l = strlen(path);
    if (l < 7 || strcmp(path + l - 7, ".strata")) return 0;
    (*n_files)++;
    st_reader *r = NULL;
    st_error err = {0};
    st_status s = st_reader_open(&r, path, &err);
    if (s == ST_OK) s = st_reader_verify(r, &err);
    st_reader_close(r);
    if (s == ST_ERR_UNSUPPORTED) {
        (*n_newer)++;
        printf("NEWER   %s: %s\n", path, err.msg);
    } else if (s != ST_OK) {
        (*n_bad)++;
        printf("DAMAGED %s: %s\n", path, err.msg);
    } else {
        printf("ok      %s\n", path);
    }
    return 0;
}

int st_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool verify = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            inspect_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--verify")) verify = true;
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "strata inspect: unexpected argument '%s' (see strata inspect --help)\n", argv[i]);
            return 2;
        } else path = argv[i];
    }
    if (!path) {
        inspect_usage(stderr);
        return 2;
    }
    st_error perr;
    st_status ps = st_warehouse_check_pending(path, &perr); /* one build, never a half-published one */
    if (ps != ST_OK) {
        fprintf(stderr, "strata inspect: %s\n", perr.msg);
        return st_status_exit_code(ps);
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (!verify) {
            fprintf(stderr, "strata inspect: '%s' is a directory; use --verify to check every file in it\n", path);
            return 2;
        }
        int nf = 0, nb = 0, nn = 0;
        verify_tree(path, &nf, &nb, &nn);
        printf("%d file%s checked, %d damaged", nf, nf == 1 ? "" : "s", nb);
        if (nn) printf(", %d written by a newer strata", nn);
        printf("\n");
        return nb ? st_status_exit_code(ST_ERR_CORRUPT) : nn ? st_status_exit_code(ST_ERR_UNSUPPORTED) : 0;
    }
    st_reader *r = NULL;
    st_error err = {0};
    st_status s = st_reader_open(&r, path, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    const st_file_meta *m = st_reader_meta(r);
    int maj, min;
    st_reader_version(r, &maj, &min);
    size_t nf = st_reader_n_fields(r), nc = st_reader_n_chunks(r);
    st_status vs = verify ? st_reader_verify(r, &err) : ST_OK;
    st_buf b;
    st_buf_init(&b);
    char rows[32];
    st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
    if (json) {
        st_buf_puts(&b, "{\"file\": ");
        st_buf_json_str(&b, path, strlen(path));
        st_buf_printf(&b, ", \"version\": \"%d.%d\", \"layer\": ", maj, min);
        st_buf_json_str(&b, m->layer, strlen(m->layer));
        st_buf_puts(&b, ", \"table\": ");
        st_buf_json_str(&b, m->table, strlen(m->table));
        st_buf_printf(&b, ", \"rows\": %" PRIu64 ", \"chunks\": %zu, \"fingerprint\": \"%016" PRIx64 "\", \"inputs\": [",
                      st_reader_n_rows(r), nc, m->fingerprint);
        for (size_t i = 0; i < m->n_inputs; i++) {
            if (i) st_buf_puts(&b, ", ");
            st_buf_json_str(&b, m->inputs[i], strlen(m->inputs[i]));
        }
        st_buf_puts(&b, "], \"params\": ");
        st_buf_json_str(&b, m->params, strlen(m->params));
        st_buf_puts(&b, ", \"metadata\": {");
        for (size_t i = 0; i < m->n_kv; i++) {
            if (i) st_buf_puts(&b, ", ");
            st_buf_json_str(&b, m->kv[i].key, strlen(m->kv[i].key));
            st_buf_puts(&b, ": ");
            st_buf_json_str(&b, m->kv[i].value, strlen(m->kv[i].value));
        }
        st_buf_puts(&b, "}, \"columns\": [");
    } else {
        printf("%s\n  strata format %d.%d, table %s.%s, %s rows in %zu chunk%s, fingerprint %016" PRIx64 "\n", path, maj,
               min, m->layer, m->table, rows, nc, nc == 1 ? "" : "s", m->fingerprint);
        printf("  inputs:");
        if (!m->n_inputs) printf(" (none)");
        for (size_t i = 0; i < m->n_inputs; i++) printf(" %s", m->inputs[i]);
        printf("\n");
        if (m->params[0]) printf("  params: %s\n", m->params);
        for (size_t i = 0; i < m->n_kv; i++) printf("  meta %s = %s\n", m->kv[i].key, m->kv[i].value);
        printf("\n  %-28s %-8s %-4s %-26s %12s %12s %6s %10s  %s\n", "column", "type", "null", "encodings (blocks)",
               "stored", "raw", "ratio", "nulls", "min .. max");
    }
    uint64_t tot_stored = 0, tot_raw = 0;
    for (size_t j = 0; j < nf; j++) {
        const st_field *f = st_reader_field(r, j);
        int counts[6] = {0};
        int zcount = 0;
        uint64_t stored = 0, raw = 0, nulls = 0;
        bool any = false;
        int64_t mn = 0, mx = 0;
        double fmn = 0, fmx = 0;
        for (size_t c = 0; c < nc; c++) {
            st_block_info bi;
            if (st_reader_block_info(r, c, j, &bi) != ST_OK) continue;
            if (bi.encoding >= 0 && bi.encoding < 6) counts[bi.encoding]++;
            zcount += bi.zstd;
            stored += bi.size_bytes;
            raw += bi.raw_bytes;
            nulls += bi.null_count;
            if (bi.has_minmax) {
                if (f->type == ST_TYPE_F64) {
                    if (!any || bi.min_f64 < fmn) fmn = bi.min_f64;
                    if (!any || bi.max_f64 > fmx) fmx = bi.max_f64;
                } else {
                    if (!any || bi.min_i64 < mn) mn = bi.min_i64;
                    if (!any || bi.max_i64 > mx) mx = bi.max_i64;
                }
                any = true;
            }
        }
        tot_stored += stored;
        tot_raw += raw;
        char encs[128] = "";
        for (int e = 0; e < 6; e++)
            if (counts[e]) {
                size_t l = strlen(encs);
                snprintf(encs + l, sizeof encs - l, "%s%s:%d", l ? "," : "", st_encoding_name(e), counts[e]);
            }
        if (zcount) {
            size_t l = strlen(encs);
            snprintf(encs + l, sizeof encs - l, "+zstd:%d", zcount);
        }
        char range[96] = "";
        if (any) {
            if (f->type == ST_TYPE_F64) snprintf(range, sizeof range, "%.6g .. %.6g", fmn, fmx);
            else snprintf(range, sizeof range, "%" PRId64 " .. %" PRId64, mn, mx);
        }
        if (json) {
            if (j) st_buf_puts(&b, ", ");
            st_buf_puts(&b, "{\"name\": ");
            st_buf_json_str(&b, f->name, strlen(f->name));
            st_buf_printf(&b, ", \"type\": \"%s\", \"nullable\": %s, \"encodings\": \"%s\", \"stored_bytes\": %" PRIu64
                              ", \"raw_bytes\": %" PRIu64 ", \"nulls\": %" PRIu64,
                          st_type_name(f->type), f->nullable ? "true" : "false", encs, stored, raw, nulls);
            if (any && f->type == ST_TYPE_F64) {
                st_buf_puts(&b, ", \"min\": ");
                st_buf_json_f64(&b, fmn);
                st_buf_puts(&b, ", \"max\": ");
                st_buf_json_f64(&b, fmx);
            } else if (any) {
                st_buf_printf(&b, ", \"min\": %" PRId64 ", \"max\": %" PRId64, mn, mx);
            }
            st_buf_puts(&b, ", \"description\": ");
            const char *d = f->description ? f->description : "";
            st_buf_json_str(&b, d, strlen(d));
            st_buf_puts(&b, "}");
        } else {
            printf("  %-28s %-8s %-4s %-26s %12" PRIu64 " %12" PRIu64 " %5.1fx %10" PRIu64 "  %s\n", f->name,
                   st_type_name(f->type), f->nullable ? "yes" : "no", encs, stored, raw,
                   stored ? (double)raw / (double)stored : 0.0, nulls, range);
        }
    }
    if (json) {
        st_buf_printf(&b, "], \"stored_bytes\": %" PRIu64 ", \"raw_bytes\": %" PRIu64, tot_stored, tot_raw);
        if (verify) st_buf_printf(&b, ", \"verified\": %s", vs == ST_OK ? "true" : "false");
        st_buf_puts(&b, "}\n");
        fputs(b.data, stdout);
    } else {
        printf("\n  total: %" PRIu64 " bytes stored for %" PRIu64 " raw bytes (%.2fx)\n", tot_stored, tot_raw,
               tot_stored ? (double)tot_raw / (double)tot_stored : 0.0);
        if (verify) printf("  verify: %s\n", vs == ST_OK ? "every block checksum and decode ok" : err.msg);
    }
    st_buf_free(&b);
    st_reader_close(r);
    if (vs != ST_OK) {
        if (json) fprintf(stderr, "strata inspect: %s\n", err.msg);
        return st_status_exit_code(vs);
    }
    return 0;
}

/* ---- export ---- */

static void export_usage(FILE *f)
{
    fprintf(f, "usage: strata export FILE [--format csv|jsonl] [--columns a,b,...]\n"
               "\n"
               "Writes a layer file to stdout.\n"
               "  --format csv     (default) RFC 4180: header row, fields quoted when they hold a comma,\n"
               "                   quote, CR or LF (quotes doubled); NULL is an empty field\n"
               "  --format jsonl   one JSON object per row; NULL is null; non-finite floats are null;\n"
               "                   bytes columns are hex strings\n"
               "  --columns a,b    only these columns, in this order (default: all)\n");
}

static void csv_field(st_buf *b, const char *s, size_t n)
{
    bool q = false;
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
        if (json) st_buf_puts(b, "\"");
        for (size_t k = 0; k < n; k++) st_buf_printf(b, "%02x", s[k]);
        if (json) st_buf_puts(b, "\"");
        break;
    }
    }
}

int st_cmd_export(int argc, char **argv)
{
    const char *path = NULL, *format = "csv", *columns = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            export_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
        else if (!strcmp(argv[i], "--columns") && i + 1 < argc) columns = argv[++i];
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "strata export: unexpected argument '%s' (see strata export --help)\n", argv[i]);
            return 2;
        } else path = argv[i];
    }
    bool json = !strcmp(format, "jsonl");
    if (!path || (!json && strcmp(format, "csv"))) {
        export_usage(stderr);
        return 2;
    }
    st_reader *r = NULL;
    st_error err = {0};
    st_status ps = st_warehouse_check_pending(path, &err); /* one build, never a half-published one */
    if (ps != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(ps);
    }
    st_status s = st_reader_open(&r, path, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    size_t nf = st_reader_n_fields(r);
    size_t *which = calloc(nf + 1, sizeof *which);
    size_t nw = 0;
    if (columns) {
        char *copy = strdup(columns);
        for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
            int k = st_reader_find(r, tok);
            if (k < 0 || nw == nf) {
                fprintf(stderr, "strata export: '%s' has no column '%s'\n", path, tok);
                free(copy);
                free(which);
                st_reader_close(r);
                return st_status_exit_code(ST_ERR_SCHEMA);
            }
            which[nw++] = (size_t)k;
        }
        free(copy);
    } else {
        for (size_t j = 0; j < nf; j++) which[nw++] = j;
    }
    st_column *cols = calloc(nw + 1, sizeof *cols);
    for (size_t j = 0; j < nw; j++) st_column_init(&cols[j], st_reader_field(r, which[j])->type);
    st_buf b;
    st_buf_init(&b);
    if (!json) {
        for (size_t j = 0; j < nw; j++) {
            if (j) st_buf_puts(&b, ",");
            const char *n = st_reader_field(r, which[j])->name;
            csv_field(&b, n, strlen(n));
        }
        st_buf_puts(&b, "\r\n");
    }
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        for (size_t j = 0; j < nw && s == ST_OK; j++) s = st_reader_read_block(r, c, which[j], &cols[j], &err);
        if (s != ST_OK) break;
        for (size_t i = 0; i < cols[0].n_rows; i++) {
            if (json) st_buf_puts(&b, "{");
            for (size_t j = 0; j < nw; j++) {
                if (json) {
                    if (j) st_buf_puts(&b, ", ");
                    const char *n = st_reader_field(r, which[j])->name;
                    st_buf_json_str(&b, n, strlen(n));
                    st_buf_puts(&b, ": ");
                    if (!st_column_valid(&cols[j], i)) st_buf_puts(&b, "null");
                    else value_text(&b, &cols[j], i, true);
                } else {
                    if (j) st_buf_puts(&b, ",");
                    if (st_column_valid(&cols[j], i)) value_text(&b, &cols[j], i, false);
                }
            }
            st_buf_puts(&b, json ? "}\n" : "\r\n");
            if (b.len > (1 << 20)) {
                fwrite(b.data, 1, b.len, stdout);
                st_buf_reset(&b);
            }
        }
    }
    if (b.len) fwrite(b.data, 1, b.len, stdout);
    st_buf_free(&b);
    for (size_t j = 0; j < nw; j++) st_column_free(&cols[j]);
    free(cols);
    free(which);
    st_reader_close(r);
    if (s != ST_OK) {
        fprintf(stderr, "strata export: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    return 0;
}
