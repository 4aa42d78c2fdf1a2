/*
 * util.c: small services the pipeline steps share: opening tables as the
 * run sees them (staged or published), creating staged writers with the
 * run's lineage and fingerprint, resource measurements and progress.
 */
#include "pipeline_internal.h"

#include <pthread.h>
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
    return st_table_create_at(ctx, path, layer, table, fields, n_fields, inputs, n_inputs, params, fp, kv, n_kv, w,
                              err);
}

st_status st_table_create_at(st_run_ctx *ctx, const char *path, const char *layer, const char *table,
                             const st_field *fields, size_t n_fields, const char *const *inputs, size_t n_inputs,
                             const char *params, uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w,
                             st_error *err)
{
    const char *p = params && *params ? params : ctx->params ? ctx->params : "";
    st_file_meta meta = {
        .layer = layer,
        .table = table,
        .inputs = inputs,
        .n_inputs = n_inputs,
        .params = p,
        .fingerprint = fp,
        .kv = kv,
        .n_kv = n_kv,
    };
    /* a staged file: st_warehouse_commit makes it durable with the rest */
    st_write_opts wo = {.defer_fsync = st_warehouse_is_staged(ctx->wh, path)};
    return st_writer_open(w, path, fields, n_fields, &meta, &wo, err);
}

st_status st_part_writer_open(const char *path, const char *layer, const char *table, const st_field *fields,
                              size_t n_fields, const char *const *inputs, size_t n_inputs, const char *params,
                              uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w, st_error *err)
{
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

/* One lock for every run's meter: a process runs one pipeline at a time,
 * and the steps count from their worker threads once per chunk. While a
 * step runs on a terminal, a ticker thread redraws its line ten times a
 * second, so the elapsed time moves on through the phases that count no
 * rows (grouping, writing, quality checks) and through steps that never
 * call st_progress at all. */
static pthread_mutex_t progress_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress_cv = PTHREAD_COND_INITIALIZER;
static bool ticker_stop, ticker_running;
static pthread_t ticker;
static st_meter *ticker_meter;

static void *tick_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&progress_mu);
    while (!ticker_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&progress_cv, &progress_mu, &ts);
        if (!ticker_stop) st_meter_tick(ticker_meter);
    }
    pthread_mutex_unlock(&progress_mu);
    return NULL;
}

/* The running step's meter, started on its first use in that step. */
static st_meter *step_meter(st_run_ctx *ctx)
{
    if (!ctx || !ctx->cur) return NULL; /* no run context: a follower rank */
    if (ctx->meter.label != ctx->cur->name)
        st_meter_start(&ctx->meter, ctx->cur->name, 0, !ctx->o->quiet && st_meter_tty());
    return &ctx->meter;
}

void st_progress_begin(st_run_ctx *ctx)
{
    pthread_mutex_lock(&progress_mu);
    ctx->meter.label = NULL;
    st_meter *m = step_meter(ctx);
    if (m && m->on && !ticker_running) {
        ticker_stop = false;
        ticker_meter = m;
        ticker_running = pthread_create(&ticker, NULL, tick_loop, NULL) == 0;
    }
    pthread_mutex_unlock(&progress_mu);
}

void st_progress_end(st_run_ctx *ctx)
{
    pthread_mutex_lock(&progress_mu);
    bool join = ticker_running;
    ticker_stop = true;
    ticker_running = false;
    pthread_cond_signal(&progress_cv);
    pthread_mutex_unlock(&progress_mu);
    if (join) pthread_join(ticker, NULL);
    pthread_mutex_lock(&progress_mu);
    st_meter_end(&ctx->meter);
    ctx->meter.label = NULL;
    ticker_meter = NULL;
    pthread_mutex_unlock(&progress_mu);
}

void st_progress(st_run_ctx *ctx, uint64_t done, uint64_t total)
{
    pthread_mutex_lock(&progress_mu);
    st_meter *m = step_meter(ctx);
    if (m) {
        m->total = total;
        st_meter_set(m, done);
    }
    pthread_mutex_unlock(&progress_mu);
}

void st_progress_expect(st_run_ctx *ctx, uint64_t rows)
{
    pthread_mutex_lock(&progress_mu);
    st_meter *m = step_meter(ctx);
    if (m) st_meter_expect(m, rows);
    pthread_mutex_unlock(&progress_mu);
}

void st_progress_add(st_run_ctx *ctx, uint64_t rows)
{
    pthread_mutex_lock(&progress_mu);
    st_meter *m = step_meter(ctx);
    if (m) st_meter_add(m, rows);
    pthread_mutex_unlock(&progress_mu);
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
