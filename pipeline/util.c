/*
 * util.c: small services the pipeline steps share: opening tables as the
 * run sees them (staged or published), creating staged writers with the
 * run's lineage and fingerprint, resource measurements and progress.
 */
#include "pipeline_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

st_status st_table_open(st_run_ctx *ctx, const char *layer, const char *table, st_reader **r,
                        st_error *err)
{
    char path[ST_PATH_MAX];
    st_warehouse_input_path(ctx->wh, layer, table, path);
    if (access(path, F_OK) != 0)
        return st_error_set(err, ST_ERR_NOTFOUND, "table %s.%s is missing ('%s'); run the earlier steps first",
                            layer, table, path);
    return st_reader_open(r, path, err); /* which checks the footer against the path */
}

st_status st_table_refuse_newer(st_run_ctx *ctx, const char *layer, const char *table, st_error *err)
{
    char path[ST_PATH_MAX];
    st_warehouse_final_path(ctx->wh, layer, table, path);
    st_reader *r = NULL;
    st_error e;
    st_status s = access(path, F_OK) == 0 ? st_reader_open(&r, path, &e) : ST_OK;
    st_reader_close(r);
    if (s == ST_ERR_UNSUPPORTED)
        return st_error_set(err, s, "%s; refusing to overwrite it (use a strata that reads it, or remove the file)",
                            e.msg);
    return ST_OK;
}

bool st_table_current(st_run_ctx *ctx, const char *layer, const char *table, uint64_t want_fp, char *why,
                      size_t why_len)
{
    st_reader *r = NULL;
    st_error e;
    bool ok = false;
    if (st_table_open(ctx, layer, table, &r, &e) != ST_OK) {
        if (e.code != ST_ERR_NOTFOUND) snprintf(why, why_len, "rebuilt: %s", e.msg);
        return false;
    }
    if (st_reader_meta(r)->fingerprint != want_fp) goto done;
    if (st_reader_verify_checksums(r, &e) != ST_OK) {
        snprintf(why, why_len, "rebuilt: %s", e.msg);
        goto done;
    }
    ok = true;
done:
    st_reader_close(r);
    return ok;
}

st_status st_table_fingerprint(st_run_ctx *ctx, const char *layer, const char *table, uint64_t *fp,
                               st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, layer, table, &r, err));
    *fp = st_reader_meta(r)->fingerprint;
    st_reader_close(r);
    return ST_OK;
}

st_status st_table_create(st_run_ctx *ctx, const char *layer, const char *table, const st_field *fields,
                          size_t n_fields, const char *const *inputs, size_t n_inputs, const char *params,
                          uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w, st_error *err)
{
    char path[ST_PATH_MAX];
    ST_TRY(st_warehouse_stage_path(ctx->wh, layer, table, path, err));
    st_file_meta meta = {
        .layer = layer,
        .table = table,
        .inputs = inputs,
        .n_inputs = n_inputs,
        .params = params ? params : "",
        .fingerprint = fp,
        .kv = kv,
        .n_kv = n_kv,
    };
    return st_writer_open(w, path, fields, n_fields, &meta, NULL, err);
}

st_status st_table_col(st_reader *r, const char *table, const char *name, size_t *idx, st_error *err)
{
    int i = st_reader_find(r, name);
    if (i < 0) return st_error_set(err, ST_ERR_SCHEMA, "table %s has no column '%s'", table, name);
    *idx = (size_t)i;
    return ST_OK;
}

uint64_t st_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

double st_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void st_progress(st_run_ctx *ctx, uint64_t done, uint64_t total)
{
    if (ctx->o->quiet || !isatty(STDERR_FILENO) || !ctx->cur || total == 0) return;
    int width = 30;
    int fill = (int)((double)done / (double)total * width);
    if (fill > width) fill = width;
    char bar[64];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(width - fill));
    bar[width] = '\0';
    fprintf(stderr, "\r  %-13s [%s] %3d%%", ctx->cur->name, bar, (int)(100.0 * (double)done / (double)total));
    fflush(stderr);
}

st_status st_table_read_named(st_reader *r, const char *table, const char *const *names, size_t n,
                              st_column *cols, st_error *err)
{
    size_t which[64];
    if (n > 64) return st_error_set(err, ST_ERR_INTERNAL, "too many columns requested");
    for (size_t j = 0; j < n; j++) {
        ST_TRY(st_table_col(r, table, names[j], &which[j], err));
        st_type t = st_reader_field(r, which[j])->type;
        st_column_free(&cols[j]);
        st_column_init(&cols[j], t);
    }
    return st_reader_read_all(r, which, n, cols, err);
}

st_status st_table_expect_types(const st_column *cols, const char *const *names, const st_type *types, size_t n,
                                const char *table, st_error *err)
{
    for (size_t j = 0; j < n; j++)
        if (cols[j].type != types[j])
            return st_error_set(err, ST_ERR_SCHEMA, "table %s: column '%s' is %s, expected %s", table, names[j],
                                st_type_name(cols[j].type), st_type_name(types[j]));
    return ST_OK;
}
