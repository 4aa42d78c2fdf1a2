/*
 * catalog.c: `strata lineage` and `strata docs`: the warehouse described
 * from its own files. Every .strata footer names its layer, table, input
 * tables, fingerprint, schema and row count, so the lineage graph and the
 * catalog need no other metadata store: they are rebuilt from the files
 * each time and cannot drift from the data.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "strata/buf.h"
#include "strata/cli.h"
#include "strata/file.h"
#include "strata/quality.h"
#include "strata/warehouse.h"

static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};
#define N_LAYERS 4

typedef struct entry {
    char path[ST_PATH_MAX];
    char name[256];  /* layer.table */
    int layer;
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
        }
        closedir(d);
    }
    qsort(c->e, c->n, sizeof *c->e, cmp_entry);
    if (c->n == 0) return st_error_set(err, ST_ERR_NOTFOUND, "no layer files under '%s' (run `strata run` first)", root);
    return ST_OK;
}

static int parse_common(int argc, char **argv, const char *cmd, const char **wh, bool *dot, const char **suite,
                        void (*usage)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--dot") && dot) *dot = true;
        else if (!strcmp(argv[i], "--warehouse") && i + 1 < argc) *wh = argv[++i];
        else if (!strcmp(argv[i], "--suite") && suite && i + 1 < argc) *suite = argv[++i];
        else {
            fprintf(stderr, "strata %s: unknown flag '%s' (see strata %s --help)\n", cmd, argv[i], cmd);
            return 2;
        }
    }
    return -1;
}

static void lineage_usage(FILE *f)
{
    fprintf(f, "usage: strata lineage [--warehouse DIR] [--dot]\n"
               "\n"
               "Prints the table-level lineage graph of a warehouse, read from the layer\n"
               "file footers: a plain-text tree by default, Graphviz DOT with --dot.\n"
               "  --warehouse DIR   warehouse directory (default warehouse)\n"
               "  --dot             print Graphviz DOT (render with: dot -Tsvg)\n");
}

int st_cmd_lineage(int argc, char **argv)
{
    const char *wh = "warehouse";
    bool dot = false;
    int rc = parse_common(argc, argv, "lineage", &wh, &dot, NULL, lineage_usage);
    if (rc >= 0) return rc;
    catalog c = {0};
    st_error err = {0};
    st_status s = scan(wh, &c, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata lineage: %s\n", err.msg);
        free(c.e);
        return st_status_exit_code(s);
    }
    if (dot) printf("digraph lineage {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    for (size_t i = 0; i < c.n; i++) {
        st_reader *r = NULL;
        if (st_reader_open(&r, c.e[i].path, &err) != ST_OK) {
            fprintf(stderr, "strata lineage: %s\n", err.msg);
            free(c.e);
            return st_status_exit_code(err.code);
        }
        const st_file_meta *m = st_reader_meta(r);
        if (dot) {
            printf("  \"%s\" [label=\"%s\\n%llu rows\"];\n", c.e[i].name, c.e[i].name,
                   (unsigned long long)st_reader_n_rows(r));
            for (size_t k = 0; k < m->n_inputs; k++) printf("  \"%s\" -> \"%s\";\n", m->inputs[k], c.e[i].name);
        } else {
            char rows[32];
            st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
            printf("%s  (%s rows)\n", c.e[i].name, rows);
            if (m->n_inputs == 0) printf("  <- source (%s)\n", m->params && *m->params ? m->params : "SQLite");
            for (size_t k = 0; k < m->n_inputs; k++)
                printf("  %s %s\n", k + 1 == m->n_inputs ? "`-" : "|-", m->inputs[k]);
        }
        st_reader_close(r);
    }
    if (dot) printf("}\n");
    free(c.e);
    return 0;
}

static void docs_usage(FILE *f)
{
    fprintf(f, "usage: strata docs [--warehouse DIR] [--suite FILE]\n"
               "\n"
               "Prints the catalog: every table of the warehouse with its layer, rows,\n"
               "inputs, columns (type, nullability, description) and the data-quality\n"
               "expectations that apply to it.\n"
               "  --warehouse DIR   warehouse directory (default warehouse)\n"
               "  --suite FILE      expectation suite (default: the built-in default suite)\n");
}

int st_cmd_docs(int argc, char **argv)
{
    const char *wh = "warehouse", *suite_path = NULL;
    int rc = parse_common(argc, argv, "docs", &wh, NULL, &suite_path, docs_usage);
    if (rc >= 0) return rc;
    catalog c = {0};
    st_error err = {0};
    st_status s = scan(wh, &c, &err);
    st_suite *suite = NULL;
    if (s == ST_OK) s = suite_path ? st_suite_load(&suite, suite_path, &err) : st_suite_load_default(&suite, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata docs: %s\n", err.msg);
        free(c.e);
        return st_status_exit_code(s);
    }
    printf("# Catalog of %s\n", wh);
    for (size_t i = 0; i < c.n && s == ST_OK; i++) {
        st_reader *r = NULL;
        if ((s = st_reader_open(&r, c.e[i].path, &err)) != ST_OK) break;
        const st_file_meta *m = st_reader_meta(r);
        char rows[32];
        st_fmt_thousands((int64_t)st_reader_n_rows(r), rows);
        printf("\n## %s\n\n%s rows, %zu columns", c.e[i].name, rows, st_reader_n_fields(r));
        if (m->n_inputs) {
            printf("; built from ");
            for (size_t k = 0; k < m->n_inputs; k++) printf("%s%s", k ? ", " : "", m->inputs[k]);
        }
        printf("\n\n| column | type | nullable | description |\n|---|---|---|---|\n");
        for (size_t j = 0; j < st_reader_n_fields(r); j++) {
            const st_field *f = st_reader_field(r, j);
            printf("| %s | %s | %s | %s |\n", f->name, st_type_name(f->type), f->nullable ? "yes" : "no",
                   f->description ? f->description : "");
        }
        const char *tbl = strchr(c.e[i].name, '.') + 1;
        int shown = 0;
        for (size_t k = 0; k < st_suite_count(suite); k++) {
            const st_expectation *x = st_suite_get(suite, k);
            if (strcmp(x->layer, layers[c.e[i].layer]) || strcmp(x->table, tbl)) continue;
            if (!shown++) printf("\nExpectations:\n");
            printf("- `%s %s` (severity %s%s)\n", st_qkind_name(x->kind), x->args,
                   x->severity == ST_QSEV_ERROR ? "error" : "warn", x->mostly < 1.0 ? ", mostly" : "");
        }
        st_reader_close(r);
    }
    st_suite_free(suite);
    free(c.e);
    if (s != ST_OK) {
        fprintf(stderr, "strata docs: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    return 0;
}
