/*
 * step_ingest.c: SQLite sources -> bronze, losslessly.
 *
 * The three source tables are resolved and their required columns
 * checked before anything is written, so a bad source fails with a
 * one-line error naming the file, table and column and leaves no file
 * behind. Then the tables are read concurrently (one worker thread per
 * table, as many workers as --threads allows, largest table first), each
 * streamed in 64K-row batches from its own read-only SQLite connection
 * straight into a bronze writer: memory is a couple of batches per table
 * whatever the table size.
 *
 * Skipping: the step is skipped when the sources' identity (file size,
 * mtime, inode, header change counter, WAL frames: formats/
 * source_identity.c; resolved table names) matches the stamp saved by the
 * run that wrote the current bronze files (_state/ingest.stamp, published
 * with them) and each bronze file is intact, in its place and carries the
 * fingerprint the stamp recorded. The bronze fingerprint hashes the
 * table name and the content written (block checksums), so identical
 * sources give identical bronze files wherever they live and any change
 * in what was read changes it.
 */
#include "pipeline_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata/source.h"
#include "strata/source_identity.h"

typedef struct ingest_job {
    const char *path;         /* source file */
    const char *const *candidates;
    size_t n_candidates;
    const char *const *required;
    size_t n_required;
    const char *bronze;       /* output table name */
    /* resolved */
    st_source *src;
    const char *table;        /* as spelled in the file (owned by src) */
    st_source_table *desc;
    uint64_t n_rows_est;  /* rowid span: schedules the jobs and scales progress */
    uint64_t fp;              /* seed; the file's fingerprint adds its content */
    /* results */
    char reader[200];         /* which reader read it: st_source_scan_path() */
    char typed[200];          /* columns typed by their values: "a int64, b string" */
    uint64_t rows;
    st_status status;
    st_error err;
} ingest_job;

typedef struct ingest_pool {
    st_run_ctx *ctx;
    ingest_job *jobs;
    size_t n_jobs;
    size_t next;
    pthread_mutex_t mu;
    uint64_t rows_done, rows_total;
} ingest_pool;

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Columns whose declared type does not decide take the type of their
 * dominant storage class, counted through this worker's connection
 * before the bronze schema is fixed (strata/source.h); j->typed names
 * them for the step note. */
static st_status type_by_values(st_source *src, ingest_job *j)
{
    size_t n = 0, len = 0;
    ST_TRY(st_source_type_by_values(src, j->desc, &n, &j->err));
    for (size_t c = 0; c < j->desc->n_cols && len < sizeof j->typed; c++) {
        if (!j->desc->cols[c].by_values) continue;
        int k = snprintf(j->typed + len, sizeof j->typed - len, "%s%s %s", len ? ", " : "", j->desc->cols[c].lname,
                         st_type_name(j->desc->cols[c].type));
        if (k < 0) break;
        len += (size_t)k;
    }
    return ST_OK;
}

static st_status ingest_one(ingest_pool *pool, ingest_job *j)
{
    st_run_ctx *ctx = pool->ctx;
    st_status s = ST_OK;
    st_source *src = NULL;
    st_source_scan *scan = NULL;
    st_writer *w = NULL;
    st_column *cols = NULL;
    size_t nf = j->desc->n_fields;
    /* each worker reads through its own connection */
    if ((s = st_source_open(&src, j->path, &j->err)) != ST_OK) goto done;
    if ((s = type_by_values(src, j)) != ST_OK) goto done;
    cols = calloc(nf, sizeof *cols);
    if (!cols) {
        s = st_error_set(&j->err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t f = 0; f < nf; f++) st_column_init(&cols[f], j->desc->fields[f].type);
    int64_t lo, hi;
    bool any;
    if ((s = st_source_rowid_span(src, j->desc, &lo, &hi, &any, &j->err)) != ST_OK) goto done;
    char input[300];
    snprintf(input, sizeof input, "source.%s", j->table);
    const char *inputs[1] = {input};
    st_kv kv[2] = {{"source_file", base_name(j->path)}, {"source_table", j->table}};
    if ((s = st_table_create(ctx, "bronze", j->bronze, j->desc->fields, nf, inputs, 1, "", j->fp, kv, 2, &w,
                             &j->err)) != ST_OK)
        goto done;
    if (any) {
        if ((s = st_source_scan_open(&scan, src, j->desc, lo, hi, ST_CHUNK_ROWS, &j->err)) != ST_OK) goto done;
        snprintf(j->reader, sizeof j->reader, "%s", st_source_scan_path(scan));
        for (;;) {
            size_t got = 0;
            if ((s = st_source_scan_next(scan, cols, &got, &j->err)) != ST_OK) goto done;
            if (got == 0) break;
            if ((s = st_writer_write(w, cols, 0, got, &j->err)) != ST_OK) goto done;
            j->rows += got;
            pthread_mutex_lock(&pool->mu);
            pool->rows_done += got;
            if (ctx->threads >= 1) st_progress(ctx, pool->rows_done, pool->rows_total);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    st_writer_fingerprint_content(w); /* bronze's fingerprint is what was read */
    s = st_writer_close(w, &j->err);
    w = NULL;
done:
    st_writer_abort(w);
    st_source_scan_close(scan);
    st_source_close(src);
    if (cols)
        for (size_t f = 0; f < nf; f++) st_column_free(&cols[f]);
    free(cols);
    if (s != ST_OK && j->err.code == ST_OK) st_error_set(&j->err, s, "ingest of %s failed", j->bronze);
    return s;
}

static void *worker(void *arg)
{
    ingest_pool *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        size_t i = pool->next++;
        pthread_mutex_unlock(&pool->mu);
        if (i >= pool->n_jobs) break;
        ingest_job *j = &pool->jobs[i];
        j->status = ingest_one(pool, j);
    }
    return NULL;
}

static int cmp_job_size(const void *a, const void *b)
{
    const ingest_job *x = a, *y = b;
    if (x->n_rows_est != y->n_rows_est) return x->n_rows_est < y->n_rows_est ? 1 : -1;
    return strcmp(x->bronze, y->bronze);
}

/* The step note says which reader read each table and, for sqlite3_step,
 * why the pages were not decoded directly (source.h); appended to what the
 * note already says (why bronze was rebuilt). */
static void note_readers(st_run_ctx *ctx, const ingest_job *jobs, size_t n)
{
    char *note = ctx->cur->note;
    size_t cap = sizeof ctx->cur->note, len = strlen(note);
    for (size_t i = 0; i < n && len < cap; i++) {
        int k = snprintf(note + len, cap - len, "%s%s: %s%s%s", len ? "; " : "", jobs[i].bronze,
                         jobs[i].reader[0] ? jobs[i].reader : "empty", jobs[i].typed[0] ? ", typed by values: " : "",
                         jobs[i].typed);
        if (k < 0) break;
        len += (size_t)k;
    }
}

/* The identity of the sources and flags: if unchanged, bronze is current.
 * One line per bronze table: its source's identity (header change counter
 * and WAL frames included, see strata/source_identity.h) and table. */
static st_status make_stamp(ingest_job *jobs, size_t n, char *buf, size_t cap, st_error *err)
{
    /* the pipeline version first: a strata that writes bronze differently rebuilds it */
    /* (and how bronze is typed: a warehouse ingested before columns were
     * typed by their values re-reads its sources once; declared-type
     * sources give the same bronze bytes) */
    int k0 = snprintf(buf, cap, "strata-pipeline %d bronze-typed-by-values\n", ST_PIPELINE_VERSION);
    size_t len = k0 > 0 ? (size_t)k0 : 0;
    for (size_t i = 0; i < n && len < cap; i++) {
        char real[ST_PATH_MAX], id[512];
        uint64_t id_hash;
        if (!realpath(jobs[i].path, real)) snprintf(real, sizeof real, "%s", jobs[i].path);
        ST_TRY(st_source_identity(jobs[i].path, id, sizeof id, &id_hash, err));
        int k = snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\n", jobs[i].bronze, real,
                         jobs[i].table ? jobs[i].table : "", id);
        if (k < 0) break;
        len += (size_t)k;
    }
    if (len >= cap) return st_error_set(err, ST_ERR_INVALID, "source paths too long for the ingest stamp");
    return ST_OK;
}

/* Appends "fingerprint <bronze> <hex>" for each bronze file just staged. */
static st_status stamp_fingerprints(st_run_ctx *ctx, const ingest_job *jobs, size_t n, char *buf, size_t cap,
                                    st_error *err)
{
    size_t len = strlen(buf);
    for (size_t i = 0; i < n; i++) {
        uint64_t fp;
        ST_TRY(st_table_fingerprint(ctx, "bronze", jobs[i].bronze, &fp, err));
        int k = snprintf(buf + len, cap - len, "fingerprint\t%s\t%016llx\n", jobs[i].bronze, (unsigned long long)fp);
        if (k < 0 || (size_t)k >= cap - len) return st_error_set(err, ST_ERR_INVALID, "ingest stamp too long");
        len += (size_t)k;
    }
    return ST_OK;
}

/* Bronze is current when the saved stamp starts with `stamp` (same
 * sources, same identities) and each bronze file is the one that stamp
 * recorded: in its place, intact, with the recorded fingerprint. A file
 * written by a newer strata is refused (ST_ERR_UNSUPPORTED), never
 * silently overwritten. */
static st_status bronze_current(st_run_ctx *ctx, const ingest_job *jobs, size_t n, const char *stamp,
                                bool *current, st_error *err)
{
    *current = false;
    char path[ST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/_state/ingest.stamp", st_warehouse_root(ctx->wh));
    for (size_t i = 0; i < n; i++) ST_TRY(st_table_refuse_newer(ctx, "bronze", jobs[i].bronze, err));
    FILE *f = fopen(path, "r");
    if (!f) return ST_OK;
    char old[8192];
    size_t got = fread(old, 1, sizeof old - 1, f);
    old[got] = '\0';
    fclose(f);
    size_t sl = strlen(stamp);
    if (strncmp(old, stamp, sl) != 0) return ST_OK;
    for (size_t i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "fingerprint\t%s\t", jobs[i].bronze);
        const char *at = strstr(old + sl, key);
        if (!at) return ST_OK;
        uint64_t want = strtoull(at + strlen(key), NULL, 16);
        if (!st_table_current(ctx, "bronze", jobs[i].bronze, want, ctx->cur->note, sizeof ctx->cur->note))
            return ST_OK;
    }
    *current = true;
    return ST_OK;
}

/* The rows a job will read, estimated by its rowid span (two b-tree
 * descents; counting them would read every page of the table once more
 * before the scan). Only the order of the jobs and the progress line use
 * it; the run log counts the rows actually read. */
static st_status rows_estimate(ingest_job *j, st_error *err)
{
    int64_t lo, hi;
    bool any;
    ST_TRY(st_source_rowid_span(j->src, j->desc, &lo, &hi, &any, err));
    j->n_rows_est = any ? (uint64_t)hi - (uint64_t)lo + 1 : 0;
    return ST_OK;
}

st_status st_step_ingest(st_run_ctx *ctx, st_error *err)
{
    const st_run_opts *o = ctx->o;
    /* the default name also tries 'customers'; a name given by the user is the only one */
    bool cust_default = !strcmp(o->customers_table, "Customer");
    const char *cust_cands[2] = {o->customers_table, "customers"};
    static const char *const cust_req[] = {"CustomerId"};
    static const char *const sales_req[] = {"customer_id", "year", "month", "material_code", "quantity"};
    static const char *const foc_req[] = {"customer_id", "year", "month", "material_code", "quantity_foc"};
    const char *sales_cands[1] = {o->sales_table};
    const char *foc_cands[1] = {o->foc_table};
    ingest_job jobs[3];
    memset(jobs, 0, sizeof jobs);
    uint64_t rows_est = 0;
    jobs[0] = (ingest_job){.path = o->customers_path, .candidates = cust_cands, .n_candidates = cust_default ? 2 : 1,
                           .required = cust_req, .n_required = 1, .bronze = "raw_customer"};
    jobs[1] = (ingest_job){.path = o->transactions_path, .candidates = sales_cands, .n_candidates = 1,
                           .required = sales_req, .n_required = 5, .bronze = "raw_sales_quantity"};
    jobs[2] = (ingest_job){.path = o->transactions_path, .candidates = foc_cands, .n_candidates = 1,
                           .required = foc_req, .n_required = 5, .bronze = "raw_free_of_charge_quantity"};
    st_status s = ST_OK;
    int idx[8];
    /* resolve and check everything before writing anything */
    for (int i = 0; i < 3 && s == ST_OK; i++) {
        ingest_job *j = &jobs[i];
        if ((s = st_source_check_regular(j->path, err)) != ST_OK) break; /* a FIFO would block */
        if ((s = st_source_open(&j->src, j->path, err)) != ST_OK) break;
        if ((s = st_source_find_table(j->src, j->candidates, j->n_candidates, &j->table, err)) != ST_OK) break;
        if ((s = st_source_describe(j->src, j->table, &j->desc, err)) != ST_OK) break;
        if ((s = st_source_require_cols(j->desc, j->required, j->n_required, idx, err)) != ST_OK) break;
        if ((s = rows_estimate(j, err)) != ST_OK) break;
    }
    char stamp[8192];
    bool current = false;
    if (s == ST_OK) s = make_stamp(jobs, 3, stamp, sizeof stamp, err);
    if (s == ST_OK && !o->force) s = bronze_current(ctx, jobs, 3, stamp, &current, err);
    if (s != ST_OK) goto done;
    if (current) {
        ctx->cur->status = "skipped";
        snprintf(ctx->cur->note, sizeof ctx->cur->note, "sources unchanged");
        goto done;
    }
    /* fingerprints: the table, then (at close) the content read, so a
     * re-ingest that reads the same rows (e.g. after a checkpoint) leaves
     * the downstream steps current */
    for (int i = 0; i < 3; i++) {
        ingest_job *j = &jobs[i];
        uint64_t h = st_hash64(0x5354524154410001ull, j->table, strlen(j->table));
        h = st_hash64(h, &(int){ST_PIPELINE_VERSION}, sizeof(int));
        j->fp = st_hash64(h, j->bronze, strlen(j->bronze));
        rows_est += j->n_rows_est;
    }
    /* the per-worker connections are opened in the workers; the checking
     * connections stay open for the descriptions they own */
    qsort(jobs, 3, sizeof jobs[0], cmp_job_size);
    ingest_pool pool = {.ctx = ctx, .jobs = jobs, .n_jobs = 3, .rows_total = rows_est};
    pthread_mutex_init(&pool.mu, NULL);
    int nt = ctx->threads < 3 ? ctx->threads : 3;
    pthread_t th[3];
    int started = 0;
    for (int t = 1; t < nt; t++)
        if (pthread_create(&th[t], NULL, worker, &pool) == 0) started++;
        else break;
    worker(&pool);
    for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&pool.mu);
    for (int i = 0; i < 3; i++) {
        if (jobs[i].status != ST_OK) {
            if (err) *err = jobs[i].err;
            s = jobs[i].status;
            goto done;
        }
        ctx->cur->rows_in += jobs[i].rows; /* every row read is a bronze row */
        ctx->cur->rows_out += jobs[i].rows;
    }
    note_readers(ctx, jobs, 3);
    /* stage the stamp so it is published with the files it describes */
    if ((s = stamp_fingerprints(ctx, jobs, 3, stamp, sizeof stamp, err)) != ST_OK) goto done;
    {
        char dir[ST_PATH_MAX];
        if ((s = st_warehouse_stage_path(ctx->wh, "_state", "x", dir, err)) != ST_OK) goto done;
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        char path[ST_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/ingest.stamp", dir);
        s = st_write_file_atomic(path, stamp, strlen(stamp), err);
    }
done:
    for (int i = 0; i < 3; i++) {
        st_source_table_free(jobs[i].desc);
        st_source_close(jobs[i].src);
    }
    return s;
}
