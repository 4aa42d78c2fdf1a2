/*
 * catalog.c: `strata lineage`, `strata docs` and `strata inspect DIR`:
 * the warehouse described from its own files. Every .strata footer names
 * its layer, table, input tables, fingerprint, parameters, schema and row
 * count, so the lineage graph and the catalog need no other metadata
 * store: they are rebuilt from the files each time and cannot drift from
 * the data.
 *
 * The one fact a footer cannot hold is which run built the file (footers
 * are deterministic: the same inputs give byte-identical files). `inspect
 * DIR` finds it from the run logs: the run whose time span (started ..
 * started + seconds, from _runs/<run-id>.json) contains the file's
 * modification time, which publishing (a rename) keeps. A file copied
 * without its times, or older than the kept run logs, shows "unknown".
 *
 * Every command here prints text by default and one JSON object with
 * --json (the same facts, for scripts).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "strata/buf.h"
#include "strata/cli.h"
#include "strata/file.h"
#include "strata/quality.h"
#include "strata/warehouse.h"
#include "json_read_internal.h"

static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};
#define N_LAYERS 4

typedef struct entry {
    char path[ST_PATH_MAX];
    char name[256];  /* layer.table */
    int layer;
    uint64_t size_bytes;  /* the file's size */
    int64_t mtime_ns;     /* its modification time, ns since the epoch */
} entry;

typedef struct catalog {
    entry *e;
    size_t n, cap;
} catalog;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer - y->layer;
    return strcmp(x->name, y->name);
}

static st_status scan(const char *root, catalog *c, st_error *err)
{
    ST_TRY(st_warehouse_check_pending(root, err)); /* one build, never a half-published one */
    for (int l = 0; l < N_LAYERS; l++) {
        char dir[ST_PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", root, layers[l]) >= (int)sizeof dir) continue;
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t n = strlen(de->d_name);
            if (n < 8 || strcmp(de->d_name + n - 7, ".strata") || de->d_name[0] == '.') continue;
            if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 32;
                entry *ne = realloc(c->e, cap * sizeof *ne);
                if (!ne) {
                    closedir(d);
                    return st_error_set(err, ST_ERR_NOMEM, "out of memory");
                }
                c->e = ne;
                c->cap = cap;
            }
            entry *e = &c->e[c->n++];
            if (snprintf(e->path, sizeof e->path, "%s/%s", dir, de->d_name) >= (int)sizeof e->path) {
                c->n--;
                continue;
            }
            snprintf(e->name, sizeof e->name, "%s.%.*s", layers[l], (int)(n - 7), de->d_name);
            e->layer = l;
            struct stat sb;
            e->size_bytes = 0;
            e->mtime_ns = 0;
            if (stat(e->path, &sb) == 0) {
                e->size_bytes = (uint64_t)sb.st_size;
                e->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
            }
        }
        closedir(d);
    }
    qsort(c->e, c->n, sizeof *c->e, cmp_entry);
    if (c->n == 0) return st_error_set(err, ST_ERR_NOTFOUND, "no layer files under '%s' (run `strata run` first)", root);
    return ST_OK;
}


/* ---- flags shared by lineage and docs ---- */

typedef struct cat_opts {
    const char *wh, *suite;
    bool dot, json;
} cat_opts;

/* Parses `strata lineage|docs` flags (lineage has --dot, docs --suite;
 * a flag is known by its name). -1 to go on, else the exit code. */
static int parse_cat(int argc, char **argv, const char *cmd, const st_argspec *spec, int n_spec, cat_opts *o,
                     void (*usage)(FILE *))
{
    st_args a;
    st_args_init(&a, cmd, argc, argv, spec, n_spec, usage);
    const char *v;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL)
            return st_args_error(&a, "unexpected argument '%s' (see strata %s --help)", v, cmd);
        const char *name = spec[f].name;
        if (!strcmp(name, "--warehouse")) o->wh = v;
        else if (!strcmp(name, "--json")) o->json = true;
        else if (!strcmp(name, "--dot")) o->dot = true;
        else o->suite = v;
    }
    if (o->dot && o->json) return st_args_error(&a, "--dot and --json cannot be combined");
    return -1;
}

static int fail(const char *cmd, st_status s, const st_error *err)
{
    fprintf(stderr, "strata %s: %s\n", cmd, err->msg[0] ? err->msg : st_status_name(s));
    return st_status_exit_code(s);
}

static void json_name(st_buf *b, const char *s) { st_buf_json_str(b, s, strlen(s)); }

/* Writes b to stdout; ST_ERR_IO when that fails. */
static st_status flush_out(st_buf *b, st_error *err)
{
    if (!st_buf_ok(b)) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return st_error_set(err, ST_ERR_IO, "writing to standard output failed");
    return ST_OK;
}

/* ---- lineage ---- */

static void lineage_usage(FILE *f)
{
    fprintf(f, "usage: strata lineage [--warehouse DIR] [--dot | --json]\n"
               "\n"
               "Prints the table-level lineage graph of a warehouse, read from the layer\n"
               "file footers: a plain-text tree by default.\n"
               "  --warehouse DIR   warehouse directory (default warehouse)\n"
               "  --dot             print Graphviz DOT (render with: dot -Tsvg)\n"
               "  --json            print {\"tables\": [{\"name\", \"rows\", \"inputs\"}]}\n");
}

/* One table of the lineage in the chosen form. */
static void lineage_entry(st_buf *b, const cat_opts *o, const entry *e, st_reader *r, bool first)
{
    const st_file_meta *m = st_reader_meta(r);
    if (o->dot) {
        st_buf_printf(b, "  \"%s\" [label=\"%s\\n%llu rows\"];\n", e->name, e->name,
                      (unsigned long long)st_reader_n_rows(r));
        for (size_t k = 0; k < m->n_inputs; k++) st_buf_printf(b, "  \"%s\" -> \"%s\";\n", m->inputs[k], e->name);
    } else if (o->json) {
        st_buf_puts(b, first ? "\n  " : ",\n  ");
        st_buf_puts(b, "{\"name\": ");
        json_name(b, e->name);
        st_buf_printf(b, ", \"rows\": %" PRIu64 ", \"inputs\": [", st_reader_n_rows(r));
        for (size_t k = 0; k < m->n_inputs; k++) {
            if (k) st_buf_puts(b, ", ");
            json_name(b, m->inputs[k]);
        }
        st_buf_puts(b, "]}");
    } else {
        char rows[32];
        st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
        st_buf_printf(b, "%s  (%s rows)\n", e->name, rows);
        if (m->n_inputs == 0) st_buf_printf(b, "  <- source (%s)\n", *m->params ? m->params : "SQLite");
        for (size_t k = 0; k < m->n_inputs; k++)
            st_buf_printf(b, "  %s %s\n", k + 1 == m->n_inputs ? "`-" : "|-", m->inputs[k]);
    }
}

int st_cmd_lineage(int argc, char **argv)
{
    static const st_argspec spec[] = {{"--warehouse", true}, {"--json", false}, {"--dot", false}};
    cat_opts o = {.wh = "warehouse"};
    int rc = parse_cat(argc, argv, "lineage", spec, 3, &o, lineage_usage);
    if (rc >= 0) return rc;
    catalog c = {0};
    st_error err = {0};
    st_buf b;
    st_buf_init(&b);
    st_status s = scan(o.wh, &c, &err);
    if (s == ST_OK && o.dot) st_buf_puts(&b, "digraph lineage {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    if (s == ST_OK && o.json) st_buf_puts(&b, "{\"tables\": [");
    for (size_t i = 0; i < c.n && s == ST_OK; i++) {
        st_reader *r = NULL;
        if ((s = st_reader_open(&r, c.e[i].path, &err)) != ST_OK) break;
        lineage_entry(&b, &o, &c.e[i], r, i == 0);
        st_reader_close(r);
    }
    if (s == ST_OK && o.dot) st_buf_puts(&b, "}\n");
    if (s == ST_OK && o.json) st_buf_puts(&b, "\n]}\n");
    if (s == ST_OK) s = flush_out(&b, &err);
    st_buf_free(&b);
    free(c.e);
    return s == ST_OK ? 0 : fail("lineage", s, &err);
}

/* ---- docs ---- */

static void docs_usage(FILE *f)
{
    fprintf(f, "usage: strata docs [--warehouse DIR] [--suite FILE] [--json]\n"
               "\n"
               "Prints the catalog: every table of the warehouse with its layer, rows,\n"
               "inputs, columns (type, nullability, description) and the data-quality\n"
               "expectations that apply to it, as Markdown.\n"
               "  --warehouse DIR   warehouse directory (default warehouse)\n"
               "  --suite FILE      expectation suite (default: the built-in default suite)\n"
               "  --json            print the catalog as one JSON object\n");
}

/* One table's section of the catalog, Markdown or a JSON object. */
static void docs_entry(st_buf *b, bool json, const entry *e, st_reader *r, const st_suite *suite, bool first)
{
    const st_file_meta *m = st_reader_meta(r);
    const char *tbl = strchr(e->name, '.') + 1;
    char rows[32];
    st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
    if (json) {
        st_buf_puts(b, first ? "\n  " : ",\n  ");
        st_buf_puts(b, "{\"layer\": ");
        json_name(b, layers[e->layer]);
        st_buf_puts(b, ", \"table\": ");
        json_name(b, tbl);
        st_buf_printf(b, ", \"rows\": %" PRIu64 ", \"inputs\": [", st_reader_n_rows(r));
        for (size_t k = 0; k < m->n_inputs; k++) {
            if (k) st_buf_puts(b, ", ");
            json_name(b, m->inputs[k]);
        }
        st_buf_puts(b, "], \"params\": ");
        json_name(b, m->params);
        st_buf_puts(b, ", \"columns\": [");
    } else {
        st_buf_printf(b, "\n## %s\n\n%s rows, %zu columns", e->name, rows, st_reader_n_fields(r));
        for (size_t k = 0; k < m->n_inputs; k++) st_buf_printf(b, "%s%s", k ? ", " : "; built from ", m->inputs[k]);
        st_buf_puts(b, "\n\n| column | type | nullable | description |\n|---|---|---|---|\n");
    }
    for (size_t j = 0; j < st_reader_n_fields(r); j++) {
        const st_field *f = st_reader_field(r, j);
        const char *d = f->description ? f->description : "";
        if (json) {
            st_buf_puts(b, j ? ", {\"name\": " : "{\"name\": ");
            json_name(b, f->name);
            st_buf_printf(b, ", \"type\": \"%s\", \"nullable\": %s, \"description\": ", st_type_name(f->type),
                          f->nullable ? "true" : "false");
            json_name(b, d);
            st_buf_puts(b, "}");
        } else {
            st_buf_printf(b, "| %s | %s | %s | %s |\n", f->name, st_type_name(f->type), f->nullable ? "yes" : "no", d);
        }
    }
    if (json) st_buf_puts(b, "], \"expectations\": [");
    int shown = 0;
    for (size_t k = 0; k < st_suite_count(suite); k++) {
        const st_expectation *x = st_suite_get(suite, k);
        if (strcmp(x->layer, layers[e->layer]) || strcmp(x->table, tbl)) continue;
        const char *sev = x->severity == ST_QSEV_ERROR ? "error" : "warn";
        if (json) {
            st_buf_puts(b, shown++ ? ", {\"kind\": " : "{\"kind\": ");
            json_name(b, st_qkind_name(x->kind));
            st_buf_puts(b, ", \"args\": ");
            json_name(b, x->args);
            st_buf_printf(b, ", \"severity\": \"%s\", \"mostly\": ", sev);
            st_buf_json_f64(b, x->mostly);
            st_buf_puts(b, "}");
        } else {
            if (!shown++) st_buf_puts(b, "\nExpectations:\n");
            st_buf_printf(b, "- `%s %s` (severity %s%s)\n", st_qkind_name(x->kind), x->args, sev,
                          x->mostly < 1.0 ? ", mostly" : "");
        }
    }
    if (json) st_buf_puts(b, "]}");
}

int st_cmd_docs(int argc, char **argv)
{
    static const st_argspec spec[] = {{"--warehouse", true}, {"--json", false}, {"--suite", true}};
    cat_opts o = {.wh = "warehouse"};
    int rc = parse_cat(argc, argv, "docs", spec, 3, &o, docs_usage);
    if (rc >= 0) return rc;
    catalog c = {0};
    st_error err = {0};
    st_buf b;
    st_buf_init(&b);
    st_suite *suite = NULL;
    st_status s = scan(o.wh, &c, &err);
    if (s == ST_OK) s = o.suite ? st_suite_load(&suite, o.suite, &err) : st_suite_load_default(&suite, &err);
    if (s == ST_OK && o.json) {
        st_buf_puts(&b, "{\"warehouse\": ");
        json_name(&b, o.wh);
        st_buf_puts(&b, ", \"tables\": [");
    } else if (s == ST_OK) {
        st_buf_printf(&b, "# Catalog of %s\n", o.wh);
    }
    for (size_t i = 0; i < c.n && s == ST_OK; i++) {
        st_reader *r = NULL;
        if ((s = st_reader_open(&r, c.e[i].path, &err)) != ST_OK) break;
        docs_entry(&b, o.json, &c.e[i], r, suite, i == 0);
        st_reader_close(r);
    }
    if (s == ST_OK && o.json) st_buf_puts(&b, "\n]}\n");
    if (s == ST_OK) s = flush_out(&b, &err);
    st_buf_free(&b);
    st_suite_free(suite);
    free(c.e);
    return s == ST_OK ? 0 : fail("docs", s, &err);
}

/* ---- inspect DIR ---- */

typedef struct run_span {
    char id[64];
    int64_t start_ns, end_ns;  /* started .. started + seconds, widened by 1 s each side (started has 1 s steps) */
} run_span;

#define MAX_RUN_LOG_BYTES (4u << 20)

/* Reads a small file whole; NULL when it cannot (caller frees). */
static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *d = malloc(MAX_RUN_LOG_BYTES);
    size_t n = d ? fread(d, 1, MAX_RUN_LOG_BYTES, f) : 0;
    bool ok = d && !ferror(f) && n < MAX_RUN_LOG_BYTES;
    fclose(f);
    if (!ok) {
        free(d);
        return NULL;
    }
    *len = n;
    return d;
}

/* The span of one run log, false when it is not one (or did not succeed). */
static bool run_span_read(const char *path, run_span *out)
{
    size_t len = 0;
    char *buf = read_small(path, &len);
    if (!buf) return false;
    st_json j;
    st_error e;
    bool ok = st_json_parse(buf, len, path, &j, &e) == ST_OK;
    free(buf);
    if (!ok) return false;
    const char *id = st_json_string(st_json_get(&j, "run_id"), NULL);
    const char *started = st_json_string(st_json_get(&j, "started"), NULL);
    const char *status = st_json_string(st_json_get(&j, "status"), "");
    double secs = st_json_number(st_json_get(&j, "seconds"), -1);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = started ? strptime(started, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    ok = id && end && *end == '\0' && secs >= 0 && secs < 1e9 && !strcmp(status, "ok");
    if (ok) {
        int64_t t = (int64_t)timegm(&tm);
        snprintf(out->id, sizeof out->id, "%s", id);
        out->start_ns = (t - 1) * 1000000000;
        out->end_ns = (t + 1) * 1000000000 + (int64_t)(secs * 1e9);
    }
    st_json_free(&j);
    return ok;
}

/* Every successful run's span from DIR/_runs/ (latest.json is a copy). */
static size_t load_runs(const char *root, run_span **out)
{
    *out = NULL;
    char dir[ST_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/_runs", root) >= (int)sizeof dir) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") || !strcmp(de->d_name, "latest.json")) continue;
        char path[ST_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            run_span *p = realloc(*out, nc * sizeof *p);
            if (!p) break;
            *out = p;
            cap = nc;
        }
        if (run_span_read(path, &(*out)[n])) n++;
    }
    closedir(d);
    return n;
}

/* The id of the run whose span holds t (the latest such), or NULL. */
static const char *built_by(const run_span *runs, size_t n, int64_t t)
{
    const run_span *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (runs[i].start_ns <= t && t <= runs[i].end_ns && (!best || runs[i].start_ns > best->start_ns))
            best = &runs[i];
    return best ? best->id : NULL;
}

/* One row of the table listing. */
static void warehouse_row(st_buf *b, bool json, const entry *e, const st_reader *r, const char *run, bool first)
{
    const st_file_meta *m = st_reader_meta(r);
    const char *tbl = strchr(e->name, '.') + 1;
    if (json) {
        st_buf_puts(b, first ? "\n  {\"layer\": " : ",\n  {\"layer\": ");
        json_name(b, layers[e->layer]);
        st_buf_puts(b, ", \"table\": ");
        json_name(b, tbl);
        st_buf_printf(b, ", \"rows\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"run\": ", st_reader_n_rows(r),
                      e->size_bytes);
        if (run) json_name(b, run);
        else st_buf_puts(b, "null");
        st_buf_printf(b, ", \"fingerprint\": \"%016" PRIx64 "\", \"params\": ", m->fingerprint);
        json_name(b, m->params);
        st_buf_puts(b, ", \"file\": ");
        json_name(b, e->path);
        st_buf_puts(b, "}");
    } else {
        char rows[32], bytes[32];
        st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
        st_fmt_thousands((int64_t)e->size_bytes, bytes);
        st_buf_printf(b, "%-9s %-30s %14s %14s  %-24s %016" PRIx64 "\n", layers[e->layer], tbl, rows, bytes,
                      run ? run : "unknown", m->fingerprint);
    }
}

int st_inspect_warehouse(const char *dir, bool json)
{
    catalog c = {0};
    st_error err = {0};
    st_buf b;
    st_buf_init(&b);
    run_span *runs = NULL;
    size_t n_runs = 0;
    uint64_t rows = 0, bytes = 0;
    st_status s = scan(dir, &c, &err);
    if (s == ST_OK) n_runs = load_runs(dir, &runs);
    if (s == ST_OK && json) {
        st_buf_puts(&b, "{\"warehouse\": ");
        json_name(&b, dir);
        st_buf_puts(&b, ", \"tables\": [");
    } else if (s == ST_OK) {
        st_buf_printf(&b, "%-9s %-30s %14s %14s  %-24s %s\n", "layer", "table", "rows", "bytes", "built by run",
                      "fingerprint");
    }
    for (size_t i = 0; i < c.n && s == ST_OK; i++) {
        st_reader *r = NULL;
        if ((s = st_reader_open(&r, c.e[i].path, &err)) != ST_OK) break;
        warehouse_row(&b, json, &c.e[i], r, built_by(runs, n_runs, c.e[i].mtime_ns), i == 0);
        rows += st_reader_n_rows(r);
        bytes += c.e[i].size_bytes;
        st_reader_close(r);
    }
    if (s == ST_OK && json) {
        st_buf_printf(&b, "\n], \"n_tables\": %zu, \"rows\": %" PRIu64 ", \"bytes\": %" PRIu64 "}\n", c.n, rows, bytes);
    } else if (s == ST_OK) {
        char r[32], by[32];
        st_fmt_thousands((int64_t)rows, r);
        st_fmt_thousands((int64_t)bytes, by);
        st_buf_printf(&b, "%zu table%s, %s rows, %s bytes in '%s'\n", c.n, c.n == 1 ? "" : "s", r, by, dir);
    }
    if (s == ST_OK) s = flush_out(&b, &err);
    st_buf_free(&b);
    free(runs);
    free(c.e);
    return s == ST_OK ? 0 : fail("inspect", s, &err);
}
