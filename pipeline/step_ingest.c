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
 * Shards. `--transactions a.db,b.db,c.db` names the shards of the two
 * transaction tables (one path is one shard: today's run, byte for byte).
 * Every shard must hold the sales and free-of-charge tables with the same
 * columns in the same order and the same declared affinities as the first
 * shard, or the step fails before writing anything (ST_ERR_SCHEMA, exit 3,
 * naming the shard, the table and the first difference). A bronze table is
 * then the rows of the first shard in rowid order, then those of the
 * second, and so on: its row order is (shard order, rowid), whatever
 * --threads. Columns typed by their values are typed over the classes of
 * every shard together, as one file holding all their rows would be
 * (before any part is written, so every part has the same schema).
 *
 * Parts. A shard whose rowids span more than --part-rows (default 2^24)
 * is cut into contiguous rowid ranges of that width from its smallest
 * rowid (plan_parts; at most MAX_PARTS a table, wider ranges beyond), so
 * the cut follows from the source and the flag alone. With several
 * shards, or one shard cut into ranges, each transaction table is written
 * as a partitioned table (pipeline/parts.c, FORMAT.md "Partitioned
 * tables"): one part per shard or range, the parts read and written
 * concurrently (a task per part, each through its own connection and
 * writer), then named after their content and listed in (shard, rowid)
 * order by the table's manifest; a range part's footer says its range
 * (part_rowids), a range without rows is an empty part. Each part is
 * written from its item (parts_dist.h: the shard, the rowid range, the
 * part's path, the names, params and fingerprint seed, the decided
 * types), by st_ingest_item_write(), whoever runs it: in strata-mpi on
 * N > 1 ranks part k is written by rank k % N (parts_dist.c), so the
 * parts' bytes do not depend on N or --threads. `_rowid`
 * stays each shard's own rowid (shards that number their rows from 1 give
 * repeated transaction ids, which the silver `unique transaction_id`
 * expectation reports as a warning).
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

#include "dist.h"
#include "parts_dist.h"
#include "strata/pool.h"
#include "strata/source.h"
#include "strata/source_identity.h"

/* Most shards one table may have (--transactions a.db,b.db,...). */
#define MAX_SHARDS 64
/* Most parts one transaction table may have: a shard whose rowid span
 * would give more than MAX_PARTS / shards parts of --part-rows gets wider
 * parts (the same for any rank or thread count: the width depends on the
 * sources and the flag only). */
#define MAX_PARTS 1000
/* Bytes of the ingest stamp (a line per table and shard). */
#define STAMP_CAP (MAX_SHARDS * 2 * (ST_PATH_MAX + 1024))

/* One part of a transaction table: shard `shard`'s rows with rowid in
 * [lo, hi]; unbounded (the whole shard) when the shard is one part. */
typedef struct ingest_part {
    size_t shard;
    int64_t lo, hi;
    bool bounded;
    uint64_t est;             /* rowids in the range: schedules the work */
} ingest_part;

typedef struct ingest_job {
    const char *path[MAX_SHARDS]; /* source files, in shard (= row) order */
    size_t n_shards;              /* >= 1 */
    const char *const *candidates;
    size_t n_candidates;
    const char *const *required;
    size_t n_required;
    const char *bronze;       /* output table name */
    /* resolved, per shard (the checking connections; the worker opens its own) */
    st_source *src[MAX_SHARDS];
    const char *table[MAX_SHARDS];      /* as spelled in the file (owned by src) */
    st_source_table *desc[MAX_SHARDS];  /* same columns in every shard (checked) */
    uint64_t n_rows_est;  /* rowid spans: schedules the work and scales progress */
    uint64_t shard_est[MAX_SHARDS];
    int64_t shard_lo[MAX_SHARDS], shard_hi[MAX_SHARDS]; /* rowid span (lo > hi: empty) */
    bool splittable;          /* a transaction table: its shards may be cut by rowid */
    ingest_part *parts;       /* in shard, then rowid order (owned) */
    size_t n_parts;
    uint64_t fp;              /* seed; the file's fingerprint adds its content */
    bool parted;              /* several parts: a partitioned table */
    /* results */
    char reader_of[MAX_SHARDS][120]; /* which reader read each shard: st_source_scan_path() */
    uint64_t ranks_of[MAX_SHARDS];   /* which ranks (bits 0..63) wrote each shard's parts */
    char typed[200];          /* columns typed by their values: "a int64, b string" */
    uint64_t rows;
} ingest_job;

/* One worker's unit: a whole table, or one part of a parted table. */
typedef struct ingest_task {
    ingest_job *j;
    size_t part;              /* the part it writes (parted jobs) */
    st_ingest_item *item;     /* parted jobs: the part's item, and its result */
    st_ingest_result *res;
    bool remote;              /* written by another rank */
    uint64_t n_rows_est;
    uint64_t rows;
    st_status status;
    st_error err;
} ingest_task;

typedef struct ingest_pool {
    st_run_ctx *ctx;
    ingest_task *tasks;
    size_t n_tasks;
    st_ingest_item *items;    /* the parted jobs' parts, in task order */
    st_ingest_result *results;
    int32_t *owner;
    size_t n_items;
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
 * dominant storage class, counted through this worker's connections (all
 * shards together) before the bronze schema is fixed (strata/source.h);
 * j->typed names them for the step note. */
static st_status type_by_values(st_source *const *src, ingest_job *j, st_error *err)
{
    size_t n = 0, len = 0;
    ST_TRY(st_source_type_by_values_shards(src, j->desc, j->n_shards, &n, err));
    const st_source_table *d = j->desc[0];
    for (size_t c = 0; c < d->n_cols && len < sizeof j->typed; c++) {
        if (!d->cols[c].by_values) continue;
        int k = snprintf(j->typed + len, sizeof j->typed - len, "%s%s %s", len ? ", " : "", d->cols[c].lname,
                         st_type_name(d->cols[c].type));
        if (k < 0) break;
        len += (size_t)k;
    }
    return ST_OK;
}

/* The footer's source_file: the file, or the shards' names joined by
 * commas in shard order. */
static void source_files(const ingest_job *j, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < j->n_shards && len < cap; k++) {
        int n = snprintf(buf + len, cap - len, "%s%s", k ? "," : "", base_name(j->path[k]));
        if (n < 0) break;
        len += (size_t)n;
    }
}

/* The pool's progress: rows more read (ingest_pool *arg). */
static void pool_progress(void *arg, uint64_t rows)
{
    ingest_pool *pool = arg;
    pthread_mutex_lock(&pool->mu);
    pool->rows_done += rows;
    if (pool->ctx->threads >= 1) st_progress(pool->ctx, pool->rows_done, pool->rows_total);
    pthread_mutex_unlock(&pool->mu);
}

/* Appends the rows of table d of src (rowid order; those with rowid in
 * range[0..1] when range is not NULL) to w, counting them in *rows;
 * reader (cap bytes) gets the reader used, left alone when the table is
 * empty. */
static st_status scan_into(st_source *src, const st_source_table *d, const int64_t *range, st_writer *w,
                           st_column *cols, uint64_t *rows, char *reader, size_t cap,
                           void (*progress)(void *, uint64_t), void *arg, st_error *err)
{
    st_source_scan *scan = NULL;
    int64_t lo, hi;
    bool any;
    st_status s = st_source_rowid_span(src, d, &lo, &hi, &any, err);
    if (s != ST_OK || !any) return s;
    if (range && (range[0] > hi || range[1] < lo)) return ST_OK; /* a range past the rows */
    if (range) {
        lo = range[0] > lo ? range[0] : lo;
        hi = range[1] < hi ? range[1] : hi;
    }
    if ((s = st_source_scan_open(&scan, src, d, lo, hi, ST_CHUNK_ROWS, err)) != ST_OK) goto done;
    snprintf(reader, cap, "%s", st_source_scan_path(scan));
    for (;;) {
        size_t got = 0;
        if ((s = st_source_scan_next(scan, cols, &got, err)) != ST_OK) goto done;
        if (got == 0) break;
        if ((s = st_writer_write(w, cols, 0, got, err)) != ST_OK) goto done;
        *rows += got;
        if (progress) progress(arg, got);
    }
done:
    st_source_scan_close(scan);
    return s;
}

/* Appends shard k's rows (rowid order) to w; t counts them. */
static st_status ingest_shard(ingest_pool *pool, ingest_task *t, size_t k, st_source *src, st_writer *w,
                              st_column *cols)
{
    ingest_job *j = t->j;
    return scan_into(src, j->desc[k], NULL, w, cols, &t->rows, j->reader_of[k], sizeof j->reader_of[k],
                     pool_progress, pool, &t->err);
}

/* Columns of the bronze schema of d, initialised (*cols NULL when out of memory). */
static st_status bronze_cols(const st_source_table *d, st_column **cols, st_error *err)
{
    size_t nf = d->n_fields;
    *cols = calloc(nf, sizeof **cols);
    if (!*cols) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (size_t f = 0; f < nf; f++) st_column_init(&(*cols)[f], d->fields[f].type);
    return ST_OK;
}

static void bronze_cols_free(const st_source_table *d, st_column *cols)
{
    if (cols)
        for (size_t f = 0; f < d->n_fields; f++) st_column_free(&cols[f]);
    free(cols);
}

/* The described table of the item, typed as rank 0 decided. */
static st_status item_table(const st_ingest_item *it, st_source *src, st_source_table **d, st_error *err)
{
    const char *cands[1] = {it->src_table};
    const char *name;
    ST_TRY(st_source_find_table(src, cands, 1, &name, err));
    ST_TRY(st_source_describe(src, name, d, err));
    if ((*d)->n_cols != it->n_cols)
        return st_error_set(err, ST_ERR_SCHEMA, "shard '%s': table '%s' has %zu columns, %u when the run began",
                            it->shard, name, (*d)->n_cols, (unsigned)it->n_cols);
    for (size_t c = 0; c < it->n_cols; c++)
        if (it->types[c] && !st_source_table_set_type(*d, c, (st_type)it->types[c]))
            return st_error_set(err, ST_ERR_SCHEMA, "shard '%s': table '%s' column '%s' cannot take type %d",
                                it->shard, name, (*d)->cols[c].name, (int)it->types[c]);
    return ST_OK;
}

st_status st_ingest_item_write(const st_ingest_item *it, st_ingest_result *res, void (*progress)(void *, uint64_t),
                               void *arg, st_error *err)
{
    st_source *src = NULL;
    st_source_table *d = NULL;
    st_writer *w = NULL;
    st_column *cols = NULL;
    memset(res, 0, sizeof *res);
    res->rank = st_dist_rank();
    char input[300];
    snprintf(input, sizeof input, "source.%s", it->table0);
    const char *inputs[1] = {input};
    char rowids[48];
    snprintf(rowids, sizeof rowids, "%lld..%lld", (long long)it->lo, (long long)it->hi);
    /* part_rowids only on a shard cut into several parts: a shard that is
     * one part keeps the bytes it always had */
    st_kv kv[4] = {{"source_file", it->files}, {"source_table", it->table0}, {"part_source", it->part_source},
                   {"part_rowids", rowids}};
    st_status s = st_source_open(&src, it->shard, err);
    if (s == ST_OK) s = item_table(it, src, &d, err);
    if (s == ST_OK) s = bronze_cols(d, &cols, err);
    if (s == ST_OK)
        s = st_part_writer_open(it->out, "bronze", it->bronze, d->fields, d->n_fields, inputs, 1, it->params, it->fp,
                                kv, it->bounded ? 4 : 3, &w, err);
    int64_t range[2] = {it->lo, it->hi};
    if (s == ST_OK)
        s = scan_into(src, d, it->bounded ? range : NULL, w, cols, &res->rows, res->reader, sizeof res->reader,
                      progress, arg, err);
    if (s != ST_OK) goto done;
    st_writer_fingerprint_content(w); /* bronze's fingerprint is what was read */
    s = st_writer_close(w, err);
    w = NULL;
done:
    st_writer_abort(w);
    if (d) bronze_cols_free(d, cols);
    st_source_table_free(d);
    st_source_close(src);
    if (s != ST_OK && err->code == ST_OK) st_error_set(err, s, "ingest of %s from '%s' failed", it->bronze, it->shard);
    return s;
}

/* Opens the staged writer of a table that is one file (source_file
 * lists every shard). */
static st_status open_writer(ingest_pool *pool, ingest_task *t, st_writer **w)
{
    ingest_job *j = t->j;
    char input[300], files[2048];
    snprintf(input, sizeof input, "source.%s", j->table[0]);
    source_files(j, files, sizeof files);
    const char *inputs[1] = {input};
    st_kv kv[2] = {{"source_file", files}, {"source_table", j->table[0]}};
    return st_table_create(pool->ctx, "bronze", j->bronze, j->desc[0]->fields, j->desc[0]->n_fields, inputs, 1, "",
                           j->fp, kv, 2, w, &t->err);
}

/* Reads task t: every shard of a table into its one file, or one shard
 * into its part (its item: what another rank would write). */
static st_status ingest_one(ingest_pool *pool, ingest_task *t)
{
    ingest_job *j = t->j;
    if (j->parted) {
        st_status s = st_ingest_item_write(t->item, t->res, pool_progress, pool, &t->err);
        t->rows = t->res->rows;
        return s;
    }
    st_status s = ST_OK;
    st_source *src[MAX_SHARDS] = {0};
    st_writer *w = NULL;
    st_column *cols = NULL;
    /* each worker reads through its own connections */
    for (size_t k = 0; k < j->n_shards; k++)
        if ((s = st_source_open(&src[k], j->path[k], &t->err)) != ST_OK) goto done;
    if ((s = type_by_values(src, j, &t->err)) != ST_OK) goto done;
    if ((s = bronze_cols(j->desc[0], &cols, &t->err)) != ST_OK) goto done;
    if ((s = open_writer(pool, t, &w)) != ST_OK) goto done;
    for (size_t k = 0; k < j->n_shards; k++)
        if ((s = ingest_shard(pool, t, k, src[k], w, cols)) != ST_OK) goto done;
    st_writer_fingerprint_content(w); /* bronze's fingerprint is what was read */
    s = st_writer_close(w, &t->err);
    w = NULL;
done:
    st_writer_abort(w);
    for (size_t k = 0; k < j->n_shards; k++) st_source_close(src[k]);
    bronze_cols_free(j->desc[0], cols);
    if (s != ST_OK && t->err.code == ST_OK) st_error_set(&t->err, s, "ingest of %s failed", j->bronze);
    return s;
}

/* A task of the run's pool: takes ingest tasks until none is left. */
static void worker(void *arg, size_t task, int worker_id)
{
    (void)task;
    (void)worker_id;
    ingest_pool *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        size_t i = pool->next++;
        pthread_mutex_unlock(&pool->mu);
        if (i >= pool->n_tasks) break;
        ingest_task *t = &pool->tasks[i];
        if (!t->remote) t->status = ingest_one(pool, t);
    }
}

static int cmp_job_size(const void *a, const void *b)
{
    const ingest_job *x = a, *y = b;
    if (x->n_rows_est != y->n_rows_est) return x->n_rows_est < y->n_rows_est ? 1 : -1;
    return strcmp(x->bronze, y->bronze);
}

static int cmp_task_size(const void *a, const void *b)
{
    const ingest_task *x = a, *y = b;
    if (x->n_rows_est != y->n_rows_est) return x->n_rows_est < y->n_rows_est ? 1 : -1;
    int c = strcmp(x->j->bronze, y->j->bronze);
    return c ? c : (x->part > y->part) - (x->part < y->part);
}

/* " (rank 1)" or " (ranks 0,1)": the ranks set in mask. */
static void ranks_text(uint64_t mask, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, " (rank%s", __builtin_popcountll(mask) > 1 ? "s " : " ");
    for (int r = 0; r < 64 && len < cap; r++)
        if (mask >> r & 1) {
            int w = snprintf(buf + len, cap - len, "%s%d", (mask & (((uint64_t)1 << r) - 1)) ? "," : "", r);
            if (w < 0) break;
            len += (size_t)w;
        }
    if (len < cap) snprintf(buf + len, cap - len, ")");
}

/* The step note says which reader read each table and, for sqlite3_step,
 * why the pages were not decoded directly (source.h); appended to what the
 * note already says (why bronze was rebuilt). */
static void note_readers(st_run_ctx *ctx, const ingest_job *jobs, size_t n)
{
    char *note = ctx->cur->note;
    size_t cap = sizeof ctx->cur->note, len = strlen(note);
    for (size_t i = 0; i < n && len < cap; i++) {
        const ingest_job *j = &jobs[i];
        char reader[1024] = "";
        size_t rl = 0;
        /* one shard: its reader; several: each shard's, named */
        for (size_t k = 0; k < j->n_shards && rl < sizeof reader; k++) {
            if (!j->reader_of[k][0]) continue;
            char on[200] = "";
            if (j->parted && st_dist_size() > 1) ranks_text(j->ranks_of[k], on, sizeof on);
            int w = j->n_shards == 1 ? snprintf(reader, sizeof reader, "%s%s", j->reader_of[k], on)
                                     : snprintf(reader + rl, sizeof reader - rl, "%s%s %s%s", rl ? ", " : "",
                                                base_name(j->path[k]), j->reader_of[k], on);
            if (w < 0) break;
            rl += (size_t)w;
        }
        char parts[48] = "";
        if (j->n_parts > j->n_shards) snprintf(parts, sizeof parts, ", %zu rowid-range parts", j->n_parts);
        int k = snprintf(note + len, cap - len, "%s%s: %s%s%s%s", len ? "; " : "", j->bronze,
                         reader[0] ? reader : "empty", parts, j->typed[0] ? ", typed by values: " : "", j->typed);
        if (k < 0) break;
        len += (size_t)k;
    }
}

/* The identity of the sources and flags: if unchanged, bronze is current.
 * One line per bronze table and shard: the shard's identity (header change
 * counter and WAL frames included, see strata/source_identity.h) and
 * table, in shard order (one shard: the line a single file always had). */
static st_status make_stamp(ingest_job *jobs, size_t n, uint64_t part_rows, char *buf, size_t cap, st_error *err)
{
    /* the pipeline version first: a strata that writes bronze differently rebuilds it */
    /* (and how bronze is typed: a warehouse ingested before columns were
     * typed by their values re-reads its sources once; declared-type
     * sources give the same bronze bytes) */
    /* (and the part width when not the default: it decides the parts) */
    char parts[40] = "";
    if (part_rows != ST_PART_ROWS_DEFAULT) snprintf(parts, sizeof parts, " part-rows %llu", (unsigned long long)part_rows);
    int k0 = snprintf(buf, cap, "strata-pipeline %d bronze-typed-by-values%s\n", ST_PIPELINE_VERSION, parts);
    size_t len = k0 > 0 ? (size_t)k0 : 0;
    for (size_t i = 0; i < n && len < cap; i++)
        for (size_t sh = 0; sh < jobs[i].n_shards && len < cap; sh++) {
            char real[ST_PATH_MAX], id[512];
            uint64_t id_hash;
            const char *path = jobs[i].path[sh];
            if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
            ST_TRY(st_source_identity(path, id, sizeof id, &id_hash, err));
            int k = snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\n", jobs[i].bronze, real,
                             jobs[i].table[sh] ? jobs[i].table[sh] : "", id);
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
    char *old = malloc(STAMP_CAP);
    if (!old) {
        fclose(f);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    }
    size_t got = fread(old, 1, STAMP_CAP - 1, f);
    old[got] = '\0';
    fclose(f);
    size_t sl = strlen(stamp);
    bool same = strncmp(old, stamp, sl) == 0;
    for (size_t i = 0; i < n && same; i++) {
        char key[128];
        snprintf(key, sizeof key, "fingerprint\t%s\t", jobs[i].bronze);
        const char *at = strstr(old + sl, key);
        if (!at) same = false;
        else {
            uint64_t want = strtoull(at + strlen(key), NULL, 16);
            same = st_table_current(ctx, "bronze", jobs[i].bronze, want, ctx->cur->note, sizeof ctx->cur->note);
        }
    }
    free(old);
    *current = same;
    return ST_OK;
}

/* The rows a job will read, estimated by its shards' rowid spans (two
 * b-tree descents each; counting them would read every page of the table
 * once more before the scan). Only the order of the jobs and the progress
 * line use it; the run log counts the rows actually read. */
static st_status rows_estimate(ingest_job *j, size_t k, st_error *err)
{
    int64_t lo, hi;
    bool any;
    ST_TRY(st_source_rowid_span(j->src[k], j->desc[k], &lo, &hi, &any, err));
    j->shard_lo[k] = any ? lo : 1;
    j->shard_hi[k] = any ? hi : 0;
    j->shard_est[k] = any ? (uint64_t)hi - (uint64_t)lo + 1 : 0;
    j->n_rows_est += j->shard_est[k];
    return ST_OK;
}

/* Splits --transactions into its shards, in order, in place (list is the
 * caller's copy). ST_ERR_INVALID (exit 2) for an empty name, more than
 * MAX_SHARDS names or a file named twice (its rows would be read twice). */
static st_status split_shards(char *list, const char **out, size_t *n, st_error *err)
{
    *n = 0;
    for (char *p = list;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) return st_error_set(err, ST_ERR_INVALID, "--transactions: empty shard name in the list");
        if (*n == MAX_SHARDS) return st_error_set(err, ST_ERR_INVALID, "--transactions: more than %d shards", MAX_SHARDS);
        out[(*n)++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    for (size_t a = 0; a < *n; a++)
        for (size_t b = a + 1; b < *n; b++) {
            char ra[ST_PATH_MAX], rb[ST_PATH_MAX];
            bool same = realpath(out[a], ra) && realpath(out[b], rb) ? !strcmp(ra, rb) : !strcmp(out[a], out[b]);
            if (same)
                return st_error_set(err, ST_ERR_INVALID, "--transactions: shard '%s' is given twice (as '%s')", out[a],
                                    out[b]);
        }
    return ST_OK;
}

/* Shard k's table has the columns of shard 0's, in the same order, with
 * the same declared affinities; else ST_ERR_SCHEMA naming the shard, the
 * table and the first difference. */
static st_status check_shard_schema(const ingest_job *j, size_t k, st_error *err)
{
    const st_source_table *a = j->desc[0], *b = j->desc[k];
    const char *pa = j->path[0], *pb = j->path[k];
    if (a->n_cols != b->n_cols)
        return st_error_set(err, ST_ERR_SCHEMA,
                            "shard '%s': table '%s' has %zu columns, shard '%s' has %zu: every shard needs the "
                            "same schema", pb, b->name, b->n_cols, pa, a->n_cols);
    for (size_t c = 0; c < a->n_cols; c++) {
        if (strcmp(a->cols[c].lname, b->cols[c].lname) != 0)
            return st_error_set(err, ST_ERR_SCHEMA,
                                "shard '%s': table '%s' column %zu is '%s', shard '%s' has '%s': every shard needs "
                                "the same schema", pb, b->name, c + 1, b->cols[c].name, pa, a->cols[c].name);
        if (a->cols[c].affinity != b->cols[c].affinity)
            return st_error_set(err, ST_ERR_SCHEMA,
                                "shard '%s': table '%s' column '%s' is declared '%s', shard '%s' declares '%s': "
                                "every shard needs the same schema", pb, b->name, b->cols[c].name,
                                b->cols[c].decl_type, pa, a->cols[c].decl_type);
    }
    return ST_OK;
}

/* Opens, finds, describes and checks shard k of job j through its
 * checking connection. */
static st_status resolve_shard(ingest_job *j, size_t k, st_error *err)
{
    int idx[8];
    ST_TRY(st_source_check_regular(j->path[k], err)); /* a FIFO would block */
    ST_TRY(st_source_open(&j->src[k], j->path[k], err));
    ST_TRY(st_source_find_table(j->src[k], j->candidates, j->n_candidates, &j->table[k], err));
    ST_TRY(st_source_describe(j->src[k], j->table[k], &j->desc[k], err));
    ST_TRY(st_source_require_cols(j->desc[k], j->required, j->n_required, idx, err));
    if (k > 0) ST_TRY(check_shard_schema(j, k, err));
    return rows_estimate(j, k, err);
}

/* Parts of shard k of a transaction table of rowid span [lo, hi] (lo > hi:
 * empty) cut into ranges of `width` rowids: how many, and the width
 * used (widened when more than `cap` parts would be needed). */
static size_t shard_parts(int64_t lo, int64_t hi, uint64_t width, size_t cap, uint64_t *used)
{
    *used = width;
    if (lo > hi) return 1;
    uint64_t span_m1 = (uint64_t)hi - (uint64_t)lo; /* span - 1: no overflow for the full int64 range */
    if (span_m1 / width + 1 > cap) *used = span_m1 / cap + 1;
    return (size_t)(span_m1 / *used + 1);
}

/* Plans job j's parts: every shard cut into contiguous rowid ranges of
 * `width` rowids (the last one ends at the shard's largest rowid), in
 * shard then rowid order; a table that is not splittable, or whose one
 * shard is one part, is one unbounded part. The ranges follow from the
 * sources and the width alone, never from the ranks or threads. */
static st_status plan_parts(ingest_job *j, uint64_t width, st_error *err)
{
    size_t cap = MAX_PARTS / j->n_shards, count[MAX_SHARDS], total = 0;
    uint64_t used[MAX_SHARDS];
    for (size_t k = 0; k < j->n_shards; k++) {
        count[k] = j->splittable ? shard_parts(j->shard_lo[k], j->shard_hi[k], width, cap, &used[k]) : 1;
        total += count[k];
    }
    if (!(j->parts = calloc(total, sizeof *j->parts))) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < j->n_shards; k++)
        for (size_t i = 0; i < count[k]; i++) {
            ingest_part *p = &j->parts[j->n_parts++];
            p->shard = k;
            p->bounded = count[k] > 1;
            p->est = j->shard_est[k];
            if (!p->bounded) continue;
            /* two's-complement steps from lo: (count - 1) x width <= span - 1, so no step passes hi */
            p->lo = (int64_t)((uint64_t)j->shard_lo[k] + i * used[k]);
            p->hi = i + 1 == count[k] ? j->shard_hi[k] : (int64_t)((uint64_t)p->lo + used[k] - 1);
            p->est = (uint64_t)p->hi - (uint64_t)p->lo + 1;
        }
    j->parted = j->n_parts > 1;
    return ST_OK;
}

/* The item of part p of parted job j: everything its writer needs,
 * wherever it runs. */
static st_status fill_item(st_run_ctx *ctx, const ingest_job *j, size_t p, st_ingest_item *it, st_error *err)
{
    const st_source_table *d = j->desc[0];
    const ingest_part *pt = &j->parts[p];
    size_t k = pt->shard;
    if (d->n_cols > ST_DIST_MAX_COLS)
        return st_error_set(err, ST_ERR_SCHEMA, "table '%s' has %zu columns, more than %d", d->name, d->n_cols,
                            ST_DIST_MAX_COLS);
    ST_TRY(st_table_part_path(ctx, "bronze", j->bronze, p, it->out, sizeof it->out, err));
    snprintf(it->shard, sizeof it->shard, "%s", j->path[k]);
    snprintf(it->src_table, sizeof it->src_table, "%s", j->table[k]);
    snprintf(it->bronze, sizeof it->bronze, "%s", j->bronze);
    snprintf(it->table0, sizeof it->table0, "%s", j->table[0]);
    source_files(j, it->files, sizeof it->files);
    snprintf(it->part_source, sizeof it->part_source, "%s", base_name(j->path[k]));
    snprintf(it->params, sizeof it->params, "%s", ctx->params ? ctx->params : "");
    it->fp = j->fp;
    it->lo = pt->lo;
    it->hi = pt->hi;
    it->bounded = pt->bounded;
    it->n_cols = (uint32_t)d->n_cols;
    for (size_t c = 0; c < d->n_cols; c++) it->types[c] = d->cols[c].by_values ? (uint8_t)d->cols[c].type : 0;
    return ST_OK;
}

/* The tasks of the jobs: one per table, or one per part of a parted
 * table, which is first typed over all its shards through the checking
 * connections (every part gets the same schema) and gets an item per
 * part (pool->items, owned by pool->owner's ranks). */
static st_status make_tasks(ingest_pool *pool, ingest_job *jobs, size_t n, st_error *err)
{
    size_t nt = 0, ni = 0;
    for (size_t i = 0; i < n; i++) {
        nt += jobs[i].parted ? jobs[i].n_parts : 1;
        ni += jobs[i].parted ? jobs[i].n_parts : 0;
    }
    ingest_task *t = pool->tasks = calloc(nt, sizeof *t);
    pool->items = calloc(ni ? ni : 1, sizeof *pool->items);
    pool->results = calloc(ni ? ni : 1, sizeof *pool->results);
    pool->owner = calloc(ni ? ni : 1, sizeof *pool->owner);
    if (!t || !pool->items || !pool->results || !pool->owner) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    size_t at = 0;
    st_status s = ST_OK;
    for (size_t i = 0; i < n && s == ST_OK; i++) {
        ingest_job *j = &jobs[i];
        if (j->parted) s = type_by_values(j->src, j, err);
        for (size_t k = 0; k < (j->parted ? j->n_parts : 1) && s == ST_OK; k++) {
            t[at] = (ingest_task){.j = j, .part = k, .n_rows_est = j->parted ? j->parts[k].est : j->n_rows_est};
            if (j->parted) {
                size_t ix = pool->n_items++;
                t[at].item = &pool->items[ix];
                t[at].res = &pool->results[ix];
                pool->owner[ix] = st_parts_dist_owner(k);
                s = fill_item(pool->ctx, j, k, t[at].item, err);
            }
            at++;
        }
    }
    if (s != ST_OK) return s;
    qsort(t, nt, sizeof *t, cmp_task_size);
    pool->n_tasks = nt;
    return ST_OK;
}

/* Runs the tasks on the run's pool, as many workers as --threads allows
 * (at most MAX_WORKERS), largest first (those of other ranks left out). */
static void run_tasks(ingest_pool *pool)
{
    enum { MAX_WORKERS = 16 };
    pthread_mutex_init(&pool->mu, NULL);
    int nt = pool->ctx->threads < (int)pool->n_tasks ? pool->ctx->threads : (int)pool->n_tasks;
    st_pool_run(pool->ctx->pool, (size_t)(nt < MAX_WORKERS ? nt : MAX_WORKERS), worker, pool);
    pthread_mutex_destroy(&pool->mu);
}

/* The first failed task's status and error, in task order. */
static st_status first_failure(const ingest_pool *pool, st_error *err)
{
    for (size_t i = 0; i < pool->n_tasks; i++)
        if (pool->tasks[i].status != ST_OK) {
            if (err) *err = pool->tasks[i].err;
            return pool->tasks[i].status;
        }
    return ST_OK;
}

/* Rank 0's share of a distributed ingest (st_parts_dist_run). */
static st_status run_local(void *arg, st_error *err)
{
    ingest_pool *pool = arg;
    run_tasks(pool);
    return first_failure(pool, err);
}

/* Reads the three jobs into staged bronze files (parted ones as parts
 * and their manifest); the first failure in task order. */
static st_status read_jobs(st_run_ctx *ctx, ingest_job *jobs, size_t n, st_error *err)
{
    uint64_t rows_est = 0;
    /* fingerprints: the table, then (at close) the content read, so a
     * re-ingest that reads the same rows (e.g. after a checkpoint) leaves
     * the downstream steps current */
    for (size_t i = 0; i < n; i++) {
        ingest_job *j = &jobs[i];
        uint64_t h = st_hash64(0x5354524154410001ull, j->table[0], strlen(j->table[0]));
        h = st_hash64(h, &(int){ST_PIPELINE_VERSION}, sizeof(int));
        j->fp = st_hash64(h, j->bronze, strlen(j->bronze));
        rows_est += j->n_rows_est;
    }
    /* the per-worker connections are opened in the workers; the checking
     * connections stay open for the descriptions they own */
    qsort(jobs, n, sizeof jobs[0], cmp_job_size);
    ingest_pool pool = {.ctx = ctx, .rows_total = rows_est};
    st_status s = make_tasks(&pool, jobs, n, err);
    if (s == ST_OK && st_parts_dist_wanted() && pool.n_items) {
        /* the parts of other ranks are written there; this rank's pool
         * writes its own and the tables that are one file */
        for (size_t i = 0; i < pool.n_tasks; i++)
            pool.tasks[i].remote = pool.tasks[i].item && pool.owner[pool.tasks[i].item - pool.items] != 0;
        s = st_parts_dist_run(ST_TASK_INGEST, pool.items, pool.owner, pool.n_items, ctx->threads, pool.results,
                              run_local, &pool, err);
        for (size_t i = 0; i < pool.n_tasks; i++)
            if (pool.tasks[i].remote) pool.tasks[i].rows = pool.tasks[i].res->rows;
    } else if (s == ST_OK) {
        run_tasks(&pool);
        s = first_failure(&pool, err);
    }
    for (size_t i = 0; i < pool.n_tasks && s == ST_OK; i++) {
        ingest_task *t = &pool.tasks[i];
        t->j->rows += t->rows;
        if (!t->res) continue;
        size_t k = t->j->parts[t->part].shard;
        if (t->res->reader[0]) snprintf(t->j->reader_of[k], sizeof t->j->reader_of[k], "%s", t->res->reader);
        if (t->res->rank >= 0 && t->res->rank < 64) t->j->ranks_of[k] |= (uint64_t)1 << t->res->rank;
    }
    for (size_t i = 0; i < n && s == ST_OK; i++) {
        uint64_t fp;
        if (jobs[i].parted) s = st_table_seal_parts(ctx, "bronze", jobs[i].bronze, jobs[i].n_parts, jobs[i].fp, &fp, err);
        ctx->cur->rows_in += jobs[i].rows; /* every row read is a bronze row */
        ctx->cur->rows_out += jobs[i].rows;
    }
    free(pool.tasks);
    free(pool.items);
    free(pool.results);
    free(pool.owner);
    return s;
}

/* Stages the stamp so it is published with the files it describes. */
static st_status stage_stamp(st_run_ctx *ctx, const char *stamp, st_error *err)
{
    char dir[ST_PATH_MAX];
    ST_TRY(st_warehouse_stage_path(ctx->wh, "_state", "x", dir, err));
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    char path[ST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/ingest.stamp", dir);
    return st_write_file_atomic(path, stamp, strlen(stamp), err);
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
    jobs[0] = (ingest_job){.path = {o->customers_path}, .n_shards = 1, .candidates = cust_cands,
                           .n_candidates = cust_default ? 2 : 1, .required = cust_req, .n_required = 1,
                           .bronze = "raw_customer"};
    jobs[1] = (ingest_job){.candidates = sales_cands, .n_candidates = 1, .required = sales_req, .n_required = 5,
                           .bronze = "raw_sales_quantity"};
    jobs[2] = (ingest_job){.candidates = foc_cands, .n_candidates = 1, .required = foc_req, .n_required = 5,
                           .bronze = "raw_free_of_charge_quantity"};
    char *stamp = NULL, *list = strdup(o->transactions_path);
    st_status s = list ? split_shards(list, jobs[1].path, &jobs[1].n_shards, err)
                       : st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s != ST_OK) goto done;
    jobs[2].n_shards = jobs[1].n_shards;
    jobs[1].splittable = jobs[2].splittable = true;
    memcpy(jobs[2].path, jobs[1].path, sizeof jobs[1].path);
    /* resolve and check everything before writing anything */
    for (size_t i = 0; i < 3 && s == ST_OK; i++) {
        for (size_t k = 0; k < jobs[i].n_shards && s == ST_OK; k++) s = resolve_shard(&jobs[i], k, err);
        if (s == ST_OK) s = plan_parts(&jobs[i], o->part_rows, err);
    }
    bool current = false;
    if (s == ST_OK && !(stamp = malloc(STAMP_CAP))) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s == ST_OK) s = make_stamp(jobs, 3, o->part_rows, stamp, STAMP_CAP, err);
    if (s == ST_OK && !o->force) s = bronze_current(ctx, jobs, 3, stamp, &current, err);
    if (s != ST_OK) goto done;
    if (current) {
        ctx->cur->status = "skipped";
        snprintf(ctx->cur->note, sizeof ctx->cur->note, "sources unchanged");
        goto done;
    }
    if ((s = read_jobs(ctx, jobs, 3, err)) != ST_OK) goto done;
    note_readers(ctx, jobs, 3);
    if ((s = stamp_fingerprints(ctx, jobs, 3, stamp, STAMP_CAP, err)) != ST_OK) goto done;
    s = stage_stamp(ctx, stamp, err);
done:
    for (int i = 0; i < 3; i++) {
        for (size_t k = 0; k < jobs[i].n_shards; k++) {
            st_source_table_free(jobs[i].desc[k]);
            st_source_close(jobs[i].src[k]);
        }
        free(jobs[i].parts);
    }
    free(stamp);
    free(list);
    return s;
}
