/*
 * pipeline/report/report.c: `strata report` and st_report_write(), the
 * entry points of the dashboard. Loading (load.c) and rendering (html.c,
 * md.c) are separate so each is testable alone; this file only joins them
 * and writes the result atomically under <warehouse>/report/.
 */
#include "report_internal.h"

#include <stdio.h>
#include <string.h>

#include "strata/cli.h"
#include "strata/warehouse.h"

st_status st_report_render(const st_report_model *m, st_report_format fmt, st_buf *out, st_error *err)
{
    if (fmt == ST_REPORT_MD) return st_report_render_md(m, out, err);
    if (fmt == ST_REPORT_HTML) return st_report_render_html(m, out, err);
    return st_error_set(err, ST_ERR_INVALID, "report: unknown format %d", (int)fmt);
}

st_status st_report_write(const char *warehouse, st_report_format fmt, const char *out_path, st_error *err)
{
    st_report_model m;
    st_buf b;
    st_report_model_init(&m);
    st_buf_init(&b);
    char path[ST_PATH_MAX];
    st_status st = st_report_load(&m, warehouse, err);
    if (st != ST_OK) goto done;
    st = st_report_render(&m, fmt, &b, err);
    if (st != ST_OK) goto done;
    if (!out_path) {
        char dir[ST_PATH_MAX];
        if ((size_t)snprintf(dir, sizeof dir, "%s/report", warehouse) >= sizeof dir) {
            st = st_error_set(err, ST_ERR_INVALID, "warehouse path too long: %s", warehouse);
            goto done;
        }
        st = st_mkdirs(dir, err);
        if (st != ST_OK) goto done;
        snprintf(path, sizeof path, "%.4000s/%s", dir, fmt == ST_REPORT_MD ? "report.md" : "index.html");
        out_path = path;
    }
    st = st_write_file_atomic(out_path, b.data, b.len, err);
done:
    st_buf_free(&b);
    st_report_model_free(&m);
    return st;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata report [--warehouse DIR] [--format html|md] [--out FILE]\n"
            "\n"
            "Writes the dashboard of a warehouse: one self-contained HTML page (inline CSS\n"
            "and SVG charts, no scripts, nothing fetched from the network) or the same facts\n"
            "as Markdown tables. Sections whose input files are missing say \"not available\".\n"
            "\n"
            "flags:\n"
            "  --warehouse DIR   warehouse to read (default: warehouse)\n"
            "  --format html|md  output format (default: html)\n"
            "  --out FILE        output file (default: DIR/report/index.html or DIR/report/report.md;\n"
            "                    '-' writes to standard output)\n"
            "  -h, --help        this help\n");
}

int st_cmd_report(int argc, char **argv)
{
    const char *wh = "warehouse", *out = NULL;
    st_report_format fmt = ST_REPORT_HTML;
    static const st_argspec spec[] = {{"--warehouse", true}, {"--out", true}, {"--format", true}};
    st_args a;
    st_args_init(&a, "report", argc, argv, spec, 3, usage);
    const char *val;
    int f, which;
    while ((f = st_args_next(&a, &val)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL) return st_args_error(&a, "unexpected argument '%s' (see strata report --help)", val);
        if (f == 0) wh = val;
        else if (f == 1) out = val;
        else if (!st_args_choice(&a, val, "html|md|markdown", &which)) return ST_ARGS_USAGE;
        else fmt = which == 0 ? ST_REPORT_HTML : ST_REPORT_MD;
    }
    st_error err;
    st_error_clear(&err);
    st_status st = st_warehouse_check_pending(wh, &err); /* read one build, never a half-published one */
    if (st != ST_OK) {
        fprintf(stderr, "strata report: %s\n", err.msg);
        return st_status_exit_code(st);
    }
    if (out && !strcmp(out, "-")) {
        st_report_model m;
        st_buf b;
        st_report_model_init(&m);
        st_buf_init(&b);
        st = st_report_load(&m, wh, &err);
        if (st == ST_OK) st = st_report_render(&m, fmt, &b, &err);
        if (st == ST_OK && fwrite(b.data, 1, b.len, stdout) != b.len)
            st = st_error_set(&err, ST_ERR_IO, "writing to standard output failed");
        st_buf_free(&b);
        st_report_model_free(&m);
    } else {
        st = st_report_write(wh, fmt, out, &err);
    }
    if (st != ST_OK) {
        fprintf(stderr, "strata report: %s\n", err.msg);
        return st_status_exit_code(st);
    }
    return 0;
}
