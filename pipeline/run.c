/*
 * run.c: the DAG runner behind `strata run`.
 *
 * Steps run in a fixed topological order (the DAG is a chain once its
 * fan-in is linearised: ingest -> validate -> stage -> intermediate -> ml
 * -> marts -> report). For each data step the runner computes the
 * fingerprint its outputs would carry: a hash of the step name, the
 * pipeline version, the step's parameters and the fingerprints in the
 * footers of its inputs. When every output already carries it the step is
 * skipped (unless --force), so a re-run after a change rebuilds exactly
 * the steps downstream of it.
 *
 * All outputs of a run go to the warehouse's staging area and are
 * published together by st_warehouse_commit() after the last data step,
 * so a failed run leaves the previous warehouse as it was. The run log
 * (_runs/<run-id>.json and _runs/latest.json) and quality/results.json are
 * written after the publish, before the report step reads them (and again
 * at the end); they are the only files that hold timestamps, the run id,
 * the thread count and the warehouse path.
 */
#include "pipeline_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "strata/pool.h"
#include "strata/quality.h"
#include "strata/report.h"
#include "strata/source_identity.h"

void st_run_opts_default(st_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->customers_path = "data/chinook.db";
    o->transactions_path = "data/example.db";
    o->customers_table = "Customer";
    o->sales_table = "sales_qty";
    o->foc_table = "foc_qty";
    o->warehouse = "warehouse";
    o->year_min = 1990;
    o->year_max = 2100;
    o->qty_min = 0;
    o->qty_max = 1000000000;
    o->k = 3;
    o->k_min = 2;
    o->k_max = 7;
    o->n_init = 10;
    o->max_iter = 300;
    o->tol = 1e-4;
    o->seed = 42;
    o->features = "total_sold_quantity,foc_ratio,total_sold_transactions";
    o->log1p = "";
    o->memory_limit_bytes = (uint64_t)1 << 30;
    o->part_rows = ST_PART_ROWS_DEFAULT;
}

enum { S_INGEST, S_VALIDATE, S_STAGE, S_INTERMEDIATE, S_ML, S_MARTS, S_REPORT, S_COUNT };
static const char *const step_names[S_COUNT] = {"ingest", "validate", "stage", "intermediate",
                                                "ml", "marts", "report"};

typedef struct table_ref {
    const char *layer, *table;
} table_ref;

static const table_ref stage_in[] = {{"bronze", "raw_customer"},
                                     {"bronze", "raw_sales_quantity"},
                                     {"bronze", "raw_free_of_charge_quantity"}};
static const table_ref stage_out[] = {{"silver", "stg_customers"},
                                      {"silver", "stg_sales_transactions"},
                                      {"silver", "stg_foc_transactions"},
                                      {"silver", "stg_rejects"}};
static const table_ref inter_in[] = {{"silver", "stg_sales_transactions"}, {"silver", "stg_foc_transactions"}};
static const table_ref inter_out[] = {{"gold", "int_transactions_unified"}, {"gold", "int_customer_analytics"}};
static const table_ref ml_in[] = {{"gold", "int_customer_analytics"}};
static const table_ref ml_out[] = {{"platinum", "ml_centroids"},
                                   {"platinum", "ml_k_selection"},
                                   {"platinum", "fct_transactions"}};
static const table_ref marts_in[] = {{"silver", "stg_customers"},
                                     {"gold", "int_customer_analytics"},
                                     {"platinum", "fct_transactions"}};
static const table_ref marts_out[] = {{"platinum", "dim_customers"},
                                      {"platinum", "marts_customer_summary"},
                                      {"platinum", "marts_persona_status_change"},
                                      {"platinum", "marts_persona_transitions"}};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Parameters that change a step's output, as a canonical string. */
static void step_params(const st_run_opts *o, int step, char *buf, size_t len)
{
    char k_text[16] = "auto";
    switch (step) {
    case S_INGEST:
        snprintf(buf, len, "customers_table=%s;sales_table=%s;foc_table=%s", o->customers_table, o->sales_table,
                 o->foc_table);
        if (o->part_rows != ST_PART_ROWS_DEFAULT) /* the default's bronze keeps the params it always had */
            snprintf(buf + strlen(buf), len - strlen(buf), ";part_rows=%llu", (unsigned long long)o->part_rows);
        break;
    case S_STAGE:
        snprintf(buf, len, "year=%lld..%lld;quantity=%lld..%lld", (long long)o->year_min,
                 (long long)o->year_max, (long long)o->qty_min, (long long)o->qty_max);
        break;
    case S_ML:
        if (o->k > 0) snprintf(k_text, sizeof k_text, "%d", o->k);
        snprintf(buf, len, "k=%s;k_range=%d..%d;n_init=%d;max_iter=%d;tol=%.17g;seed=%llu;features=%s;log1p=%s;map=%s",
                 k_text, o->k_min, o->k_max, o->n_init, o->max_iter, o->tol, (unsigned long long)o->seed,
                 o->features ? o->features : "", o->log1p ? o->log1p : "",
                 o->persona_map ? o->persona_map : "");
        break;
    default: snprintf(buf, len, "none"); break;
    }
}

/* Fingerprint = hash(step, version, params, inputs' fingerprints). */
static st_status step_fingerprint(st_run_ctx *ctx, int step, const table_ref *in, size_t n_in,
                                  const char *params, uint64_t *fp, st_error *err)
{
    uint64_t h = st_hash64(ST_PIPELINE_VERSION, step_names[step], strlen(step_names[step]));
    h = st_hash64(h, params, strlen(params));
    if (step == S_ML && ctx->o->persona_map) {
        /* the override file's content, not just its name */
        FILE *f = fopen(ctx->o->persona_map, "rb");
        if (f) {
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = st_hash64(h, buf, n);
            fclose(f);
        }
    }
    for (size_t i = 0; i < n_in; i++) {
        uint64_t f;
        ST_TRY(st_table_fingerprint(ctx, in[i].layer, in[i].table, &f, err));
        h = st_hash64(h, &f, sizeof f);
    }
    *fp = h;
    return ST_OK;
}

/* *current = every output exists, is in its place, intact and carries fp
 * (else the step rebuilds, saying why when a file was damaged or
 * misplaced). An output written by a newer major format version is
 * refused: ST_ERR_UNSUPPORTED naming it, never silently overwritten. */
static st_status outputs_current(st_run_ctx *ctx, const table_ref *out, size_t n_out, uint64_t fp, bool *current,
                                 st_error *err)
{
    *current = true;
    for (size_t i = 0; i < n_out; i++) {
        ST_TRY(st_table_refuse_newer(ctx, out[i].layer, out[i].table, err));
        if (*current && !st_table_current(ctx, out[i].layer, out[i].table, fp, ctx->cur->note, sizeof ctx->cur->note))
            *current = false;
    }
    return ST_OK;
}

static void json_step(st_buf *b, const st_step_result *s)
{
    st_buf_puts(b, "    {\"name\": ");
    st_buf_json_str(b, s->name, strlen(s->name));
    st_buf_puts(b, ", \"status\": ");
    st_buf_json_str(b, s->status, strlen(s->status));
    st_buf_printf(b, ", \"rows_in\": %llu, \"rows_out\": %llu, \"seconds\": %.6f, \"peak_rss_bytes\": %llu, \"note\": ",
                  (unsigned long long)s->rows_in, (unsigned long long)s->rows_out, s->seconds,
                  (unsigned long long)s->peak_rss_bytes);
    st_buf_json_str(b, s->note, strlen(s->note));
    st_buf_puts(b, "}");
}

/* "sources": the customer master and every transaction shard, in order. */
static void json_sources(st_buf *b, const st_run_opts *o)
{
    st_buf_puts(b, ",\n  \"sources\": {\"customers\": ");
    st_buf_json_str(b, o->customers_path, strlen(o->customers_path));
    st_buf_puts(b, ", \"transactions\": [");
    for (const char *p = o->transactions_path;;) {
        size_t n = strcspn(p, ",");
        st_buf_json_str(b, p, n);
        if (!p[n]) break;
        st_buf_puts(b, ", ");
        p += n + 1;
    }
    st_buf_puts(b, "]}");
}

static void write_run_log(st_run_ctx *ctx, const char *run_id, const char *started, const st_step_result *steps,
                          double seconds, st_status status, const st_error *run_err)
{
    st_buf b;
    st_buf_init(&b);
    st_buf_puts(&b, "{\n  \"run_id\": ");
    st_buf_json_str(&b, run_id, strlen(run_id));
    st_buf_puts(&b, ",\n  \"started\": ");
    st_buf_json_str(&b, started, strlen(started));
    st_buf_puts(&b, ",\n  \"warehouse\": ");
    st_buf_json_str(&b, ctx->o->warehouse, strlen(ctx->o->warehouse));
    json_sources(&b, ctx->o);
    st_buf_printf(&b, ",\n  \"threads\": %d,\n  \"status\": \"%s\",\n  \"exit_code\": %d,\n  \"error\": ",
                  ctx->threads, status == ST_OK ? "ok" : "failed", st_status_exit_code(status));
    if (status == ST_OK) st_buf_puts(&b, "null");
    else st_buf_json_str(&b, run_err->msg, strlen(run_err->msg));
    st_buf_printf(&b, ",\n  \"seconds\": %.6f,\n  \"peak_rss_bytes\": %llu,\n  \"steps\": [\n", seconds,
                  (unsigned long long)st_peak_rss_bytes());
    for (int i = 0; i < S_COUNT; i++) {
        json_step(&b, &steps[i]);
        st_buf_puts(&b, i + 1 < S_COUNT ? ",\n" : "\n");
    }
    st_buf_puts(&b, "  ]\n}\n");
    char dir[ST_PATH_MAX], path[ST_PATH_MAX + 128];
    st_error e;
    if (snprintf(dir, sizeof dir, "%s/_runs", st_warehouse_root(ctx->wh)) < (int)sizeof dir && st_buf_ok(&b) &&
        st_mkdirs(dir, &e) == ST_OK) {
        if (snprintf(path, sizeof path, "%s/%s.json", dir, run_id) < (int)sizeof path &&
            st_write_file_atomic(path, b.data, b.len, &e) != ST_OK && !ctx->o->quiet)
            fprintf(stderr, "strata run: warning: %s\n", e.msg);
        if (snprintf(path, sizeof path, "%s/latest.json", dir) < (int)sizeof path &&
            st_write_file_atomic(path, b.data, b.len, &e) != ST_OK && !ctx->o->quiet)
            fprintf(stderr, "strata run: warning: %s\n", e.msg);
    }
    st_buf_free(&b);
}

/* quality/results.json from this run's checks (none run: left as is).
 * Called before the report step, so the dashboard shows this run's
 * results, and again at the end for the checks of a failed run. */
static void write_quality_results(st_run_ctx *ctx)
{
    if (st_quality_results_count(ctx->quality) == 0) return;
    st_error qerr;
    char qdir[ST_PATH_MAX], qpath[ST_PATH_MAX + 32];
    snprintf(qdir, sizeof qdir, "%s/quality", st_warehouse_root(ctx->wh));
    snprintf(qpath, sizeof qpath, "%s/results.json", qdir);
    if ((st_mkdirs(qdir, &qerr) != ST_OK || st_quality_write_json(ctx->quality, qpath, &qerr) != ST_OK) &&
        !ctx->o->quiet)
        fprintf(stderr, "strata run: warning: %s\n", qerr.msg);
}

static int step_index(const char *name)
{
    for (int i = 0; i < S_COUNT; i++)
        if (!strcmp(name, step_names[i])) return i;
    return -1;
}

static void print_step_line(const st_run_ctx *ctx, const st_step_result *s)
{
    if (ctx->o->quiet) return;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K");
    char in[32], out[32];
    st_fmt_thousands((int64_t)s->rows_in, in);
    st_fmt_thousands((int64_t)s->rows_out, out);
    fprintf(stderr, "  %-13s %-8s %14s rows in %14s rows out %8.3f s  %s\n", s->name, s->status, in, out,
            s->seconds, s->note);
}

/* Runs one data step with fingerprint-based skipping. */
static st_status run_data_step(st_run_ctx *ctx, int step, const table_ref *in, size_t n_in, const table_ref *out,
                               size_t n_out, st_error *err)
{
    char params[1024];
    step_params(ctx->o, step, params, sizeof params);
    uint64_t fp;
    bool current;
    ST_TRY(step_fingerprint(ctx, step, in, n_in, params, &fp, err));
    /* --force rebuilds whatever the outputs hold: their checksums are not
     * read (a newer major version is still refused) */
    if (ctx->o->force) {
        for (size_t i = 0; i < n_out; i++) ST_TRY(st_table_refuse_newer(ctx, out[i].layer, out[i].table, err));
        current = false;
    } else {
        ST_TRY(outputs_current(ctx, out, n_out, fp, &current, err));
    }
    if (current) {
        ctx->cur->status = "skipped";
        snprintf(ctx->cur->note, sizeof ctx->cur->note, "inputs and parameters unchanged");
        return ST_OK;
    }
    switch (step) {
    case S_STAGE: return st_step_stage(ctx, fp, err);
    case S_INTERMEDIATE: return st_step_intermediate(ctx, fp, err);
    case S_ML: return st_step_ml(ctx, fp, err);
    case S_MARTS: return st_step_marts(ctx, fp, err);
    default: return st_error_set(err, ST_ERR_INTERNAL, "no data step %d", step);
    }
}

/* Checks the flags that only make sense together: the step names of
 * --only/--from and --features without repeats. ST_ERR_INVALID (exit 2). */
static st_status check_opts(const st_run_opts *o, int *first, int *last, st_error *err)
{
    *first = 0;
    *last = S_COUNT - 1;
    if (o->only) {
        *first = *last = step_index(o->only);
        if (*first < 0) return st_error_set(err, ST_ERR_INVALID, "unknown step '%s' for --only (steps: ingest, validate, stage, intermediate, ml, marts, report)", o->only);
    }
    if (o->from) {
        *first = step_index(o->from);
        if (*first < 0) return st_error_set(err, ST_ERR_INVALID, "unknown step '%s' for --from (steps: ingest, validate, stage, intermediate, ml, marts, report)", o->from);
    }
    if (o->no_report && *last == S_REPORT && !o->only) *last = S_MARTS;
    /* files read whole must be files: a FIFO would block the run */
    const char *files[2][2] = {{"--persona-map", o->persona_map}, {"--suite", o->suite_path}};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        if (files[i][1] && stat(files[i][1], &sb) == 0 && !S_ISREG(sb.st_mode))
            return st_error_set(err, ST_ERR_INVALID, "%s '%s' is not a regular file", files[i][0], files[i][1]);
    }
    const char *f = o->features ? o->features : "";
    for (const char *a = f; *a;) {
        size_t la = strcspn(a, ",");
        for (const char *b = a + la; *b;) {
            b += *b == ',';
            size_t lb = strcspn(b, ",");
            if (la && la == lb && !memcmp(a, b, la))
                return st_error_set(err, ST_ERR_INVALID, "--features: '%.*s' is given twice", (int)la, a);
            b += lb;
        }
        a += la;
        a += *a == ',';
    }
    return ST_OK;
}

/* Runs step i; ST_OK or the step's failure. */
static st_status run_step(st_run_ctx *ctx, int i, const char *run_id, const char *started, st_step_result *steps,
                          double t_start, st_error *err)
{
    st_status s = ST_OK;
    switch (i) {
    case S_INGEST: return st_step_ingest(ctx, err);
    case S_VALIDATE: return st_step_validate(ctx, "bronze", err);
    case S_STAGE:
        s = run_data_step(ctx, i, stage_in, N_OF(stage_in), stage_out, N_OF(stage_out), err);
        return s == ST_OK ? st_step_validate(ctx, "silver", err) : s;
    case S_INTERMEDIATE:
        s = run_data_step(ctx, i, inter_in, N_OF(inter_in), inter_out, N_OF(inter_out), err);
        return s == ST_OK ? st_step_validate(ctx, "gold", err) : s;
    case S_ML: return run_data_step(ctx, i, ml_in, N_OF(ml_in), ml_out, N_OF(ml_out), err);
    case S_MARTS:
        s = run_data_step(ctx, i, marts_in, N_OF(marts_in), marts_out, N_OF(marts_out), err);
        if (s == ST_OK) s = st_step_validate(ctx, "platinum", err);
        /* publish every data file of the run together */
        return s == ST_OK ? st_warehouse_commit(ctx->wh, err) : s;
    case S_REPORT:
        /* data must be published before the report reads it, and the
         * run log so far too, so the report shows this run's facts */
        s = st_warehouse_commit(ctx->wh, err);
        if (s == ST_OK) write_run_log(ctx, run_id, started, steps, st_now_seconds() - t_start, ST_OK, err);
        if (s == ST_OK) write_quality_results(ctx);
        if (s == ST_OK) s = st_report_write(st_warehouse_root(ctx->wh), ST_REPORT_HTML, NULL, err);
        if (s == ST_OK) s = st_report_write(st_warehouse_root(ctx->wh), ST_REPORT_MD, NULL, err);
        if (s == ST_OK) snprintf(steps[i].note, sizeof steps[i].note, "report/index.html, report/report.md");
        return s;
    }
    return st_error_set(err, ST_ERR_INTERNAL, "no step %d", i);
}

/* Writes quality/results.json and prints the run's summary. */
static void finish_run(st_run_ctx *ctx, const char *run_id, const char *started, st_step_result *steps,
                       double t_start, st_status s, st_error *err)
{
    const st_run_opts *o = ctx->o;
    /* the results describe this run's data: kept when it was published,
     * or when a check failed (to show which); not after a failed publish,
     * which left the previous tables in place */
    if (s == ST_OK || s == ST_ERR_QUALITY) write_quality_results(ctx);
    if (s == ST_OK && !o->quiet) {
        st_error serr;
        if (st_marts_summarise(ctx, &serr) != ST_OK) st_buf_reset(&ctx->persona_summary);
    }
    double secs = st_now_seconds() - t_start;
    write_run_log(ctx, run_id, started, steps, secs, s, err);
    if (o->quiet) return;
    if (st_quality_results_count(ctx->quality) > 0) {
        fprintf(stdout, "\nData quality (%d warning%s, %d failure%s)\n", ctx->quality_warnings,
                ctx->quality_warnings == 1 ? "" : "s", ctx->quality_failures, ctx->quality_failures == 1 ? "" : "s");
        st_quality_print_summary(ctx->quality, stdout);
    }
    if (s == ST_OK && ctx->persona_summary.len) fprintf(stdout, "\n%s", ctx->persona_summary.data);
    char rss[32];
    st_fmt_thousands((int64_t)(st_peak_rss_bytes() >> 20), rss);
    fprintf(stdout, "\n%s in %.3f s, peak memory %s MiB; run log %s/_runs/%s.json\n", s == ST_OK ? "done" : "FAILED",
            secs, rss, o->warehouse, run_id);
}

st_status st_pipeline_run(const st_run_opts *o, st_error *err)
{
    int first, last;
    ST_TRY(check_opts(o, &first, &last, err));
    st_run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.o = o;
    ctx.threads = st_run_threads(o->threads);
    st_buf_init(&ctx.quality_summary);
    st_buf_init(&ctx.persona_summary);

    st_step_result steps[S_COUNT];
    memset(steps, 0, sizeof steps);
    for (int i = 0; i < S_COUNT; i++) {
        steps[i].name = step_names[i];
        steps[i].status = "not run";
    }

    double t_start = st_now_seconds();
    char run_id[64], started[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(run_id, sizeof run_id, "%s-%ld", stamp, (long)getpid());

    if (o->wait) st_source_busy_timeout_ms = INT_MAX; /* --wait covers the sources' locks too */
    st_status s = st_warehouse_open(&ctx.wh, o->warehouse, o->wait, err);
    if (s != ST_OK) return s;
    s = st_quality_results_new(&ctx.quality, err);
    if (s != ST_OK) {
        st_warehouse_close(ctx.wh);
        return s;
    }
    if (!o->quiet)
        fprintf(stderr, "strata run %s: warehouse '%s', %d thread%s\n", run_id, o->warehouse, ctx.threads,
                ctx.threads == 1 ? "" : "s");
    /* made before the first step, so its workers are running by then */
    ctx.pool = st_pool_new(ctx.threads);
    /* the suite once, before the first step: a --suite file that does not
     * parse stops the run before it reads a source */
    if (first <= S_MARTS) s = st_step_load_suite(o, &ctx.suite, err);

    for (int i = first; i <= last && s == ST_OK; i++) {
        ctx.cur = &steps[i];
        steps[i].status = "ok";
        char params[1024];
        step_params(o, i, params, sizeof params);
        ctx.params = params;
        st_progress_begin(&ctx);
        double t0 = st_now_seconds();
        s = run_step(&ctx, i, run_id, started, steps, t_start, err);
        st_progress_end(&ctx);
        ctx.params = NULL;
        steps[i].seconds = st_now_seconds() - t0;
        steps[i].peak_rss_bytes = st_peak_rss_bytes();
        if (s != ST_OK) steps[i].status = "failed";
        print_step_line(&ctx, &steps[i]);
        /* --only X that rebuilt X runs what depends on it (dbt's X+), so
         * the warehouse never holds two builds side by side */
        if (s == ST_OK && o->only && i == last && i != S_VALIDATE && i < S_REPORT &&
            strcmp(steps[i].status, "skipped") != 0) {
            last = o->no_report ? S_MARTS : S_REPORT;
            if (last > i && !o->quiet)
                fprintf(stderr, "strata run: --only %s rebuilt its tables: running the steps after it too, so "
                        "every table comes from one build\n", o->only);
        }
    }
    /* A partial run (--only/--from ending before marts) still publishes. */
    if (s == ST_OK) s = st_warehouse_commit(ctx.wh, err);
    finish_run(&ctx, run_id, started, steps, t_start, s, err);
    st_quality_results_free(ctx.quality);
    st_suite_free(ctx.suite);
    st_buf_free(&ctx.quality_summary);
    st_buf_free(&ctx.persona_summary);
    st_warehouse_close(ctx.wh);
    st_pool_free(ctx.pool);
    return s;
}
