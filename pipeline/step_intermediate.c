/*
 * step_intermediate.c: silver -> gold, on the engine's group-by kernels.
 *
 *   int_customer_analytics    one row per active (customer, period): features
 *   int_transactions_unified  one row per (customer, period, material)
 *
 * The silver transaction files are streamed chunk by chunk into
 * st_features (engine/agg.c): material codes come from one st_dict
 * (codes ranked in bytewise string order, so the unified table needs no
 * string sort), fed only each chunk's block dictionary
 * (st_reader_read_block_dict: a few hundred strings, not one per line), keys are dense customer x period indices whose ranges are
 * read from the files' zone maps before any value is decoded, and the
 * kernels group by a counting sort, compute exact medians by selection
 * and run on --threads threads with results independent of the thread
 * count. Sums are checked: an int64 overflow is an error, never a wrap.
 */
#include "pipeline_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "strata/agg.h"
#include "strata/partition.h"
#include "strata/pool.h"
#include "strata/spill.h"
#include "gold_dist.h"

enum { A_CUST, A_YEAR, A_MONTH, A_PK, A_SOLD, A_FOC, A_RATIO, A_SOLD_TX, A_FOC_TX, A_MED_SOLD, A_MED_FOC, A_UNIQ, A_N };
static const st_field an_fields[A_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"total_sold_quantity", ST_TYPE_I64, false, "SUM(quantity) of sales lines"},
    {"total_foc_quantity", ST_TYPE_I64, false, "SUM(quantity_foc) of free-of-charge lines"},
    {"foc_ratio", ST_TYPE_F64, false, "total_foc / (total_sold + total_foc), 0 when both are 0"},
    {"total_sold_transactions", ST_TYPE_I64, false, "number of sales lines"},
    {"total_foc_transactions", ST_TYPE_I64, false, "number of free-of-charge lines"},
    {"median_sold_order_size", ST_TYPE_F64, true, "median quantity of sales lines (NULL when none)"},
    {"median_foc_order_size", ST_TYPE_F64, true, "median quantity of free-of-charge lines (NULL when none)"},
    {"unique_materials", ST_TYPE_I64, false, "distinct material codes over sales and FOC lines"},
};

enum { U_CUST, U_YEAR, U_MONTH, U_PK, U_MAT, U_SOLD, U_FOC, U_SOLD_L, U_FOC_L, U_N };
static const st_field un_fields[U_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"material_code", ST_TYPE_STR, false, "material code"},
    {"sold_qty", ST_TYPE_I64, false, "sum of sold quantity"},
    {"foc_qty", ST_TYPE_I64, false, "sum of free-of-charge quantity"},
    {"sold_lines", ST_TYPE_I64, false, "number of sales lines"},
    {"foc_lines", ST_TYPE_I64, false, "number of free-of-charge lines"},
};

/* Key ranges of a silver table from its zone maps, and its quantity range
 * (qmin/qmax; *qknown false when a block has no min/max). */
static st_status table_dims(st_run_ctx *ctx, const char *table, st_feature_dims *d, bool *any, int64_t *qmin,
                            int64_t *qmax, bool *qknown, st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
    size_t ic, ip, iq;
    st_status s = st_table_col(r, table, "customer_id", &ic, err);
    if (s == ST_OK) s = st_table_col(r, table, "period_key", &ip, err);
    if (s == ST_OK) s = st_table_col(r, table, "quantity", &iq, err);
    *qknown = true;
    *qmin = *qmax = 0;
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        st_block_info bc, bp, bq;
        if ((s = st_reader_block_info(r, c, ic, &bc)) != ST_OK || (s = st_reader_block_info(r, c, ip, &bp)) != ST_OK ||
            (s = st_reader_block_info(r, c, iq, &bq)) != ST_OK)
            break;
        if (!bq.has_minmax) *qknown = false;
        else {
            if (c == 0 || bq.min_i64 < *qmin) *qmin = bq.min_i64;
            if (c == 0 || bq.max_i64 > *qmax) *qmax = bq.max_i64;
        }
        if (!bc.has_minmax || !bp.has_minmax) continue;
        if (!*any || bc.min_i64 < d->customer_id_min) d->customer_id_min = bc.min_i64;
        if (!*any || bc.max_i64 > d->customer_id_max) d->customer_id_max = bc.max_i64;
        if (!*any || bp.min_i64 < d->period_key_min) d->period_key_min = (int32_t)bp.min_i64;
        if (!*any || bp.max_i64 > d->period_key_max) d->period_key_max = (int32_t)bp.max_i64;
        *any = true;
    }
    if (s != ST_OK && err && err->code == ST_OK) st_error_set(err, s, "cannot read the zone maps of silver.%s", table);
    st_reader_close(r);
    return s;
}

/* Opens a silver transaction table and checks the four columns the step
 * reads; idx[] gets customer_id, period_key, material_code, quantity. */
static st_status line_cols(st_reader *r, const char *table, st_reader **out, size_t idx[4], st_error *err);
static st_status open_lines(st_run_ctx *ctx, const char *table, st_reader **out, size_t idx[4], st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
    return line_cols(r, table, out, idx, err);
}

/* open_lines on an open reader r (closed here on failure). */
static st_status line_cols(st_reader *r, const char *table, st_reader **out, size_t idx[4], st_error *err)
{
    static const char *const names[4] = {"customer_id", "period_key", "material_code", "quantity"};
    static const st_type types[4] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_STR, ST_TYPE_I64};
    st_status s = ST_OK;
    for (int k = 0; k < 4 && s == ST_OK; k++) {
        s = st_table_col(r, table, names[k], &idx[k], err);
        if (s == ST_OK && st_reader_field(r, idx[k])->type != types[k])
            s = st_error_set(err, ST_ERR_SCHEMA, "silver.%s: column '%s' is %s, expected %s", table, names[k],
                             st_type_name(st_reader_field(r, idx[k])->type), st_type_name(types[k]));
    }
    if (s != ST_OK) {
        st_reader_close(r);
        return s;
    }
    *out = r;
    return ST_OK;
}

/* Where the lines of one chunk go: straight into the kernels (one pass)
 * or into the spill (partitioned). */
typedef struct line_sink {
    const st_feature_dims *dims; /* every line must fall inside */
    st_features *fx;          /* one pass */
    st_spill *spill;          /* partitioned: with ranges */
    const st_key_range *ranges;
    size_t n_ranges;
    uint32_t *part;           /* scratch, one chunk */
} line_sink;

/* Every line inside the key ranges read from the zone maps, its period a
 * month: what staging writes. Checked here, with the table's own row
 * numbers, so both paths fail alike and name the file. */
static st_status check_lines(const char *table, uint64_t row0, const int64_t *cust, const int32_t *per, size_t n,
                             const st_feature_dims *d, st_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (per[i] < d->period_key_min || per[i] > d->period_key_max || !st_period_valid(per[i]))
            return st_error_set(err, ST_ERR_CORRUPT,
                                "silver.%s row %llu: period_key %d is not a month in [%d, %d] (staging never writes "
                                "that: the file is damaged or not strata's)",
                                table, (unsigned long long)(row0 + i), (int)per[i], (int)d->period_key_min,
                                (int)d->period_key_max);
        if (cust[i] < d->customer_id_min || cust[i] > d->customer_id_max)
            return st_error_set(err, ST_ERR_CORRUPT,
                                "silver.%s row %llu: customer_id %lld is outside the file's zone maps", table,
                                (unsigned long long)(row0 + i), (long long)cust[i]);
    }
    return ST_OK;
}

/* The decoded columns of one chunk and the scratch to map its material
 * codes; reused from chunk to chunk. */
typedef struct chunk_bufs {
    st_column c, p, m, q;
    uint32_t *codes; /* row -> run code: `local`, mapped in place (one buffer's pages fewer to fault in) */
    uint32_t *local; /* row -> block dictionary entry, until mapped */
    uint32_t *map;   /* block dictionary entry -> run code */
} chunk_bufs;

static void chunk_bufs_free(chunk_bufs *b)
{
    st_column_free(&b->c);
    st_column_free(&b->p);
    st_column_free(&b->m);
    st_column_free(&b->q);
    free(b->local);
    free(b->map);
}

static st_status chunk_bufs_init(chunk_bufs *b, st_error *err)
{
    st_column_init(&b->c, ST_TYPE_I64);
    st_column_init(&b->p, ST_TYPE_I32);
    st_column_init(&b->m, ST_TYPE_STR);
    st_column_init(&b->q, ST_TYPE_I64);
    b->codes = b->local = malloc(ST_CHUNK_ROWS * sizeof *b->local);
    b->map = malloc(ST_CHUNK_ROWS * sizeof *b->map);
    if (!b->local || !b->map) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    return ST_OK;
}

/* Decodes chunk ch of a silver table (row0: its first row) into b, its
 * material block's dictionary through the run's one (under `lock` when
 * given: a few hundred strings a chunk instead of one per line), and
 * checks every line against the zone-map ranges (dims; NULL: the caller
 * checks, as the dense path does inside its one pass). *n_codes gets the
 * run dictionary's size after this chunk. */
static st_status read_chunk(st_reader *r, const size_t ix[4], size_t ch, const char *table, uint64_t row0,
                            st_dict *dict, pthread_mutex_t *lock, const st_feature_dims *dims, chunk_bufs *b,
                            uint32_t *n_codes, st_error *err)
{
    ST_TRY(st_reader_read_block(r, ch, ix[0], &b->c, err));
    ST_TRY(st_reader_read_block(r, ch, ix[1], &b->p, err));
    ST_TRY(st_reader_read_block_dict(r, ch, ix[2], &b->m, b->local, err));
    ST_TRY(st_reader_read_block(r, ch, ix[3], &b->q, err));
    size_t n = b->c.n_rows;
    if (n > ST_CHUNK_ROWS) return st_error_set(err, ST_ERR_CORRUPT, "silver.%s: chunk %zu has %zu rows", table, ch, n);
    if (lock) pthread_mutex_lock(lock);
    /* in string order: the chunk that brings every material (the first,
     * as a rule) hands out codes equal to their ranks, and finish finds
     * each cell's unified rows in order instead of sorting them */
    st_status s = st_dict_add_sorted(dict, &b->m, b->map, "material_code", err);
    *n_codes = st_dict_size(dict);
    if (lock) pthread_mutex_unlock(lock);
    if (s != ST_OK) return s;
    for (size_t i = 0; i < n; i++) b->local[i] = b->map[b->local[i]];
    return dims ? check_lines(table, row0, st_column_i64(&b->c), st_column_i32(&b->p), n, dims, err) : ST_OK;
}

/* Streams one silver table, chunk by chunk, through the dictionary into
 * the sink. */
static st_status add_table(st_run_ctx *ctx, const char *table, unsigned tab, st_dict *dict, line_sink *sink,
                           st_error *err)
{
    st_reader *r = NULL;
    size_t ix[4];
    ST_TRY(open_lines(ctx, table, &r, ix, err));
    chunk_bufs b;
    st_status s = chunk_bufs_init(&b, err);
    st_progress_expect(ctx, st_reader_n_rows(r));
    uint64_t row0 = 0;
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        uint32_t n_codes = 0;
        if ((s = read_chunk(r, ix, ch, table, row0, dict, NULL, sink->dims, &b, &n_codes, err)) != ST_OK) break;
        size_t n = b.c.n_rows;
        const int64_t *cust = st_column_i64(&b.c), *qty = st_column_i64(&b.q);
        const int32_t *per = st_column_i32(&b.p);
        row0 += n;
        if (sink->spill) {
            st_key_ranges_locate(sink->ranges, sink->n_ranges, cust, n, sink->part);
            s = st_spill_add(sink->spill, tab, sink->part, cust, per, b.codes, qty, n, err);
        } else {
            s = tab ? st_features_add_foc(sink->fx, cust, per, b.codes, qty, n, err)
                    : st_features_add_sales(sink->fx, cust, per, b.codes, qty, n, err);
        }
        ctx->cur->rows_in += n;
        st_progress_add(ctx, n);
    }
    chunk_bufs_free(&b);
    st_reader_close(r);
    return s;
}

/* One counting pass of the customer histogram over a table's ids. */
static st_status count_customers(st_run_ctx *ctx, const char *table, st_key_hist *h, st_error *err)
{
    st_reader *r = NULL;
    size_t ix[4];
    ST_TRY(open_lines(ctx, table, &r, ix, err));
    st_status s = ST_OK;
    st_column c;
    st_column_init(&c, ST_TYPE_I64);
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        if ((s = st_reader_read_block(r, ch, ix[0], &c, err)) != ST_OK) break;
        st_key_hist_count(h, st_column_i64(&c), c.n_rows);
    }
    st_column_free(&c);
    st_reader_close(r);
    return s;
}

/* The two gold files being written. */
typedef struct gold_out {
    st_writer *wa, *wu;
    st_column a[A_N], u[U_N];
    uint64_t n_groups;
    /* sum of |total| over every group, per table: the marts, the report and
     * the run summary add group totals up, and every such partial sum fits
     * int64 when these do */
    __extension__ unsigned __int128 abs_total[2];
    unsigned threads;         /* > 1: unified rows made while chunks are written (in parallel from st_dense) */
    struct st_pool *pool;     /* the run's workers (ctx->pool; may be NULL) */
} gold_out;

/* A finished accumulator seen by emit(): st_features or st_dense. */
typedef struct gold_src {
    const st_features *fx; /* exactly one of the three is set */
    const st_dense *dn;
    const st_feature_rows *rows; /* rows another rank computed (gold_dist.c) */
} gold_src;

static size_t src_n_groups(const gold_src *g)
{
    if (g->rows) return g->rows->n_groups;
    return g->fx ? st_features_n_groups(g->fx) : st_dense_n_groups(g->dn);
}

static st_status src_analytics(const gold_src *g, size_t first, st_column *cols, st_error *err)
{
    if (g->rows) return st_feature_rows_append_analytics(g->rows, first, ST_CHUNK_ROWS, cols, err);
    return g->fx ? st_features_append_analytics(g->fx, first, ST_CHUNK_ROWS, cols, err)
                 : st_dense_append_analytics(g->dn, first, ST_CHUNK_ROWS, cols, err);
}

static st_status src_unified(const gold_src *g, st_unified_cursor *cur, const st_dict *dict, st_column *cols,
                             size_t *got, st_error *err)
{
    if (g->rows) return st_feature_rows_append_unified(g->rows, cur, dict, ST_CHUNK_ROWS, cols, got, err);
    return g->fx ? st_features_append_unified(g->fx, cur, dict, ST_CHUNK_ROWS, cols, got, err)
                 : st_dense_append_unified(g->dn, cur, dict, ST_CHUNK_ROWS, cols, got, err);
}

/* The unified rows, chunk by chunk: made, then written. */
static st_status emit_unified(const gold_src *g, const st_dict *dict, gold_out *o, st_error *err)
{
    st_unified_cursor cur;
    memset(&cur, 0, sizeof cur);
    for (;;) {
        size_t got = 0;
        for (int k = 0; k < U_N; k++) st_column_reset(&o->u[k]);
        ST_TRY(src_unified(g, &cur, dict, o->u, &got, err));
        if (got == 0) return ST_OK;
        ST_TRY(st_writer_write(o->wu, o->u, 0, got, err));
    }
}

/* Two chunk buffers between the thread making unified rows and the one
 * writing them: the writer takes chunks in the order they were made, so
 * the file is the bytes emit_unified writes. */
typedef struct uni_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    st_column cols[2][U_N];
    size_t got[2];
    bool full[2], done;
    st_writer *w;
    st_status ws;   /* the writer's status; it stops at the first error */
    st_error werr;
} uni_pipe;

static void *uni_writer(void *arg)
{
    uni_pipe *p = arg;
    for (unsigned k = 0;; k ^= 1) {
        pthread_mutex_lock(&p->mu);
        while (!p->full[k] && !p->done) pthread_cond_wait(&p->cv, &p->mu);
        bool have = p->full[k];
        pthread_mutex_unlock(&p->mu);
        if (!have) return NULL; /* done, nothing left */
        st_status s = st_writer_write(p->w, p->cols[k], 0, p->got[k], &p->werr);
        pthread_mutex_lock(&p->mu);
        p->full[k] = false;
        if (s != ST_OK) p->ws = s;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (s != ST_OK) return NULL;
    }
}

/* Makes chunks into the pipe's free buffer while the writer thread
 * writes the other one; the first error (of either side) is returned. */
static st_status uni_produce(uni_pipe *p, const gold_src *g, const st_dict *dict, st_error *err)
{
    st_unified_cursor cur;
    memset(&cur, 0, sizeof cur);
    for (unsigned k = 0;; k ^= 1) {
        pthread_mutex_lock(&p->mu);
        while (p->full[k] && p->ws == ST_OK) pthread_cond_wait(&p->cv, &p->mu);
        bool stop = p->ws != ST_OK;
        pthread_mutex_unlock(&p->mu);
        if (stop) return ST_OK; /* the writer's error is returned */
        size_t got = 0;
        for (int c = 0; c < U_N; c++) st_column_reset(&p->cols[k][c]);
        ST_TRY(src_unified(g, &cur, dict, p->cols[k], &got, err));
        if (got == 0) return ST_OK;
        pthread_mutex_lock(&p->mu);
        p->got[k] = got;
        p->full[k] = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static st_status emit_unified_overlapped(const gold_src *g, const st_dict *dict, gold_out *o, st_error *err)
{
    uni_pipe p = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .w = o->wu, .ws = ST_OK};
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < U_N; k++) st_column_init(&p.cols[b][k], un_fields[k].type);
    pthread_t tid;
    st_status s;
    if (pthread_create(&tid, NULL, uni_writer, &p) != 0) {
        s = emit_unified(g, dict, o, err);
    } else {
        s = uni_produce(&p, g, dict, err);
        pthread_mutex_lock(&p.mu);
        p.done = true;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(tid, NULL);
        if (s == ST_OK && p.ws != ST_OK) {
            if (err) *err = p.werr;
            s = p.ws;
        }
    }
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < U_N; k++) st_column_free(&p.cols[b][k]);
    return s;
}

/* ---- unified rows made and encoded on every thread ---- */

enum { DENSE_MAX_THREADS = 64 }; /* threads of the fused pass and of its unified rows */

/* The unified file's chunks go through a few slots: a thread makes a
 * chunk's rows into a free slot (the accumulator sought to the chunk's
 * first row), then every thread takes the slot's columns one at a time
 * and encodes them with its own lane; a slot whose columns are all
 * encoded is written when its turn comes (chunks in row order) and
 * freed. So both threads are busy to the end even when the chunks do not
 * divide among them, and the file is the bytes emit_unified writes. The
 * material column is made as codes and encoded from the dictionary
 * (st_writer_encode_str_codes): no string is copied per row, and the
 * writer measures and checks each material once instead of once a row.
 * customer_id, year, month and period_key are encoded from their runs,
 * taken from the chunk's (customer, period) groups: a few thousand runs
 * instead of 65,536 rows each to make, scan and page in.
 * One thread takes the same path, doing every step itself. */
enum { SLOT_FREE, SLOT_MAKING, SLOT_ENCODING, SLOT_DONE };

typedef struct uni_slot {
    st_column cols[U_N]; /* the key columns, only when not made from runs (the materials are codes, the values made as encoded) */
    uint32_t *codes;     /* chunk_rows material codes into the pool's dictionary */
    st_unified_groups g; /* the chunk's (customer, period) groups */
    uint64_t *run_val[U_MAT]; /* customer_id, year, month, period_key as runs (from g), room for run_cap */
    uint32_t *run_len[U_MAT];
    size_t n_runs[U_MAT], run_cap;
    st_chunk_enc *ce;
    size_t k, n;        /* chunk k: n rows */
    int state;
    unsigned next_col;  /* SLOT_ENCODING: the next column to take */
    unsigned cols_done;
} uni_slot;

typedef struct uni_pool {
    const st_dense *dn;
    const st_dict *dict;
    st_column materials; /* dict's strings in code order: the material blocks are encoded from codes */
    st_writer *w;
    uint64_t n_rows;
    size_t n_chunks, chunk_rows;
    uni_slot slot[DENSE_MAX_THREADS];
    unsigned n_slots;
    size_t next_make, turn; /* the chunk made next, the chunk written next */
    /* the analytics file's one chunk (a_rows 0: none), made into ao->a
     * and encoded into a_ce by the first worker to step, while the other
     * makes the first unified chunk; put by the caller after */
    st_writer *wa;
    gold_out *ao;
    size_t a_rows;
    st_chunk_enc *a_ce;
    bool a_taken;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    st_status s; /* the first error, in err */
    st_error err;
} uni_pool;

/* The key columns of slot u's chunk as runs, from its groups: equal
 * neighbours (a customer's months, a year's months) merged. year and
 * month as put_unified_batch makes them: period_key / 100 and % 100. */
static void key_runs(uni_slot *u)
{
    for (int c = 0; c < U_MAT; c++) u->n_runs[c] = 0;
    for (size_t k = 0; k < u->g.n; k++) {
        int32_t pk = u->g.pk[k];
        uint64_t v[U_MAT] = {(uint64_t)u->g.cust[k], (uint64_t)(int64_t)(pk / 100), (uint64_t)(int64_t)(pk % 100),
                             (uint64_t)(int64_t)pk};
        for (int c = 0; c < U_MAT; c++) {
            size_t r = u->n_runs[c];
            if (r && u->run_val[c][r - 1] == v[c]) {
                u->run_len[c][r - 1] += u->g.rows[k];
            } else {
                u->run_val[c][r] = v[c];
                u->run_len[c][r] = u->g.rows[k];
                u->n_runs[c]++;
            }
        }
    }
}

/* Makes chunk k's rows into slot u (unlocked: the slot is this thread's):
 * the material codes and the key columns' runs (each value column is made
 * when it is encoded, uni_value_column). */
static st_status uni_make(uni_pool *p, uni_slot *u, st_error *err)
{
    uint64_t first = (uint64_t)u->k * p->chunk_rows;
    u->n = p->n_rows - first < p->chunk_rows ? (size_t)(p->n_rows - first) : p->chunk_rows;
    ST_TRY(st_dense_unified_values(p->dn, first, u->n, NULL, u->codes, &u->g, err));
    /* a column has at most a run per group: room sized to the groups, not the rows (fewer pages) */
    for (int c = 0; c < U_MAT && u->g.n > u->run_cap; c++) {
        uint64_t *v = realloc(u->run_val[c], u->g.n * sizeof *v);
        if (v) u->run_val[c] = v;
        uint32_t *l = v ? realloc(u->run_len[c], u->g.n * sizeof *l) : NULL;
        if (!l) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory for a chunk of unified rows");
        u->run_len[c] = l;
    }
    if (u->g.n > u->run_cap) u->run_cap = u->g.n;
    key_runs(u);
    return ST_OK;
}

/* Key column j of slot u's chunk: from its runs when the encoder takes
 * them (RLE or CONST), else made into rows and encoded as such. */
static st_status uni_key_column(uni_pool *p, uni_slot *u, unsigned j, uint64_t first, st_enc_lane *lane,
                                st_error *err)
{
    bool done;
    ST_TRY(st_writer_encode_runs(p->w, j, u->run_val[j], u->run_len[j], u->n_runs[j], first, lane, u->ce, &done, err));
    if (done) return ST_OK;
    st_column *c = &u->cols[j];
    st_column_reset(c);
    st_status s = st_column_reserve(c, u->n, 0);
    for (size_t r = 0; r < u->n_runs[j] && s == ST_OK; r++)
        for (uint32_t i = 0; i < u->run_len[j][r] && s == ST_OK; i++)
            s = c->type == ST_TYPE_I64 ? st_column_push_i64(c, (int64_t)u->run_val[j][r])
                                       : st_column_push_i32(c, (int32_t)(int64_t)u->run_val[j][r]);
    if (s != ST_OK) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory for a chunk of unified rows");
    return st_writer_encode_column(p->w, j, c, u->n, first, lane, u->ce, err);
}

/* Value column j of slot u's chunk made into the worker's buffer `col`
 * and encoded: a buffer a thread instead of four columns a slot (a few
 * MiB of fresh pages fewer). */
static st_status uni_value_column(uni_pool *p, uni_slot *u, unsigned j, uint64_t first, st_enc_lane *lane,
                                  st_column *col, st_error *err)
{
    st_column_reset(col);
    ST_TRY(st_dense_unified_column(p->dn, first, u->n, (int)j - U_SOLD, col, err));
    return st_writer_encode_column(p->w, j, col, u->n, first, lane, u->ce, err);
}

/* Under the lock: writes the encoded slots whose turn it is. */
static st_status uni_put_ready(uni_pool *p, st_error *err)
{
    for (bool more = true; more;) {
        more = false;
        for (unsigned i = 0; i < p->n_slots; i++) {
            uni_slot *u = &p->slot[i];
            if (u->state != SLOT_DONE || u->k != p->turn) continue;
            ST_TRY(st_writer_put_chunk(p->w, u->ce, err));
            u->state = SLOT_FREE;
            p->turn++;
            more = true;
        }
    }
    return ST_OK;
}

/* Under the lock: the encoding slot with the lowest chunk that still has
 * a column to take, or NULL. */
static uni_slot *uni_column_slot(uni_pool *p)
{
    uni_slot *best = NULL;
    for (unsigned i = 0; i < p->n_slots; i++) {
        uni_slot *u = &p->slot[i];
        if (u->state == SLOT_ENCODING && u->next_col < U_N && (!best || u->k < best->k)) best = u;
    }
    return best;
}

/* Under the lock: a free slot when a chunk is left to make, else NULL. */
static uni_slot *uni_make_slot(uni_pool *p)
{
    for (unsigned i = 0; p->next_make < p->n_chunks && i < p->n_slots; i++)
        if (p->slot[i].state == SLOT_FREE) return &p->slot[i];
    return NULL;
}

/* Under the lock: true when work may still come (a chunk being made, or
 * left to make). */
static bool uni_work_left(const uni_pool *p)
{
    if (p->next_make < p->n_chunks) return true;
    for (unsigned i = 0; i < p->n_slots; i++)
        if (p->slot[i].state == SLOT_MAKING) return true;
    return false;
}

/* Adds the absolute quantities of the analytics rows in o->a to the
 * grand totals close_gold checks. */
static void add_abs_totals(gold_out *o)
{
    for (int t = 0; t < 2; t++) {
        const int64_t *v = st_column_i64(&o->a[t ? A_FOC : A_SOLD]);
        for (size_t i = 0; i < o->a[0].n_rows; i++)
            o->abs_total[t] += v[i] < 0 ? (uint64_t)0 - (uint64_t)v[i] : (uint64_t)v[i];
    }
}

/* The analytics file's one chunk on a worker: its rows made from the
 * accumulator here (not on the thread that starts the pool, which would
 * keep the other thread waiting), their totals added up, the chunk
 * encoded into p->a_ce. */
static st_status analytics_chunk(uni_pool *p, st_enc_lane *lane, st_error *err)
{
    gold_out *o = p->ao;
    for (int k = 0; k < A_N; k++) st_column_reset(&o->a[k]);
    ST_TRY(st_dense_append_analytics(p->dn, 0, p->a_rows, o->a, err));
    add_abs_totals(o);
    return st_writer_encode_chunk(p->wa, o->a, p->a_rows, 0, lane, p->a_ce, err);
}

/* One step of a worker, called and returning with the lock held: takes
 * the analytics chunk, a column or a chunk to make and does it; false
 * when nothing is left for it (it may then wait). The analytics chunk
 * goes first: taken when nothing else was left (as it was), its ~2 ms
 * came after the last unified column, with the other thread idle. */
static bool uni_step(uni_pool *p, st_enc_lane *lane, st_column *col, st_status *s, st_error *err)
{
    if (p->a_rows && !p->a_taken) {
        p->a_taken = true;
        pthread_mutex_unlock(&p->mu);
        *s = analytics_chunk(p, lane, err);
        pthread_mutex_lock(&p->mu);
        return true;
    }
    uni_slot *u = uni_column_slot(p);
    if (u) {
        unsigned j = u->next_col++;
        pthread_mutex_unlock(&p->mu);
        uint64_t first = (uint64_t)u->k * p->chunk_rows;
        *s = j == U_MAT  ? st_writer_encode_str_codes(p->w, j, &p->materials, u->codes, u->n, first, lane, u->ce, err)
             : j < U_MAT ? uni_key_column(p, u, j, first, lane, err)
                         : uni_value_column(p, u, j, first, lane, col, err);
        pthread_mutex_lock(&p->mu);
        if (*s == ST_OK && ++u->cols_done == U_N) {
            u->state = SLOT_DONE;
            *s = uni_put_ready(p, err);
        }
        pthread_cond_broadcast(&p->cv);
        return true;
    }
    if ((u = uni_make_slot(p)) != NULL) {
        u->k = p->next_make++;
        u->state = SLOT_MAKING;
        pthread_mutex_unlock(&p->mu);
        *s = uni_make(p, u, err);
        pthread_mutex_lock(&p->mu);
        u->state = SLOT_ENCODING;
        u->next_col = u->cols_done = 0;
        pthread_cond_broadcast(&p->cv);
        return true;
    }
    return false;
}

typedef struct uni_worker_arg {
    uni_pool *p;
    st_enc_lane *lane;
    st_column col; /* the value column being encoded (int64) */
} uni_worker_arg;

/* A task of the run's pool: one worker's loop over the slots. */
static void uni_worker(void *arg, size_t task, int worker)
{
    (void)worker;
    uni_worker_arg *a = (uni_worker_arg *)arg + task;
    uni_pool *p = a->p;
    st_error err;
    pthread_mutex_lock(&p->mu);
    while (p->s == ST_OK) {
        st_status s = ST_OK;
        if (uni_step(p, a->lane, &a->col, &s, &err)) {
            if (s != ST_OK && p->s == ST_OK) {
                p->s = s;
                p->err = err;
                pthread_cond_broadcast(&p->cv);
            }
            continue;
        }
        if (!uni_work_left(p)) break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

/* The dictionary's strings in code order into col (STR, empty), and the
 * longest one's bytes into *longest. */
static st_status material_column(const st_dict *dict, st_column *col, size_t *longest, st_error *err)
{
    *longest = 0;
    for (uint32_t c = 0; c < st_dict_size(dict); c++) {
        size_t len;
        const char *str = st_dict_str(dict, c, &len);
        if (st_column_push_str(col, str, len) != ST_OK) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
        *longest = len > *longest ? len : *longest;
    }
    return ST_OK;
}

/* The arrays of a slot for chunks of n rows (the group and run arrays
 * grow with the chunks made). */
static st_status uni_slot_alloc(uni_slot *u, size_t n, st_error *err)
{
    return (u->codes = malloc(n * sizeof *u->codes)) ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
}

static void uni_slot_free(uni_slot *u)
{
    free(u->codes);
    st_unified_groups_free(&u->g);
    for (int c = 0; c < U_MAT; c++) {
        free(u->run_val[c]);
        free(u->run_len[c]);
    }
}

/* Needs every chunk but the last to be st_writer_chunk_rows rows, i.e.
 * no chunk of unified rows reaching the writer's byte cut: the longest
 * material code's bytes times the rows of a chunk fits
 * ST_CHUNK_MAX_BYTES (emit checks). materials: the dictionary's strings
 * in code order (material_column). a_rows > 0: the analytics file's
 * whole content, its a_rows groups (at most one chunk), is made into o->a
 * and encoded beside the unified chunks (analytics_chunk), and put once
 * they are written. */
static st_status emit_unified_parallel(const st_dense *dn, const st_dict *dict, const st_column *materials,
                                       gold_out *o, size_t a_rows, st_error *err)
{
    uni_pool *p = malloc(sizeof *p);
    if (!p) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    *p = (uni_pool){.dn = dn, .dict = dict, .materials = *materials, .w = o->wu, .n_rows = st_dense_n_unified(dn),
                    .chunk_rows = st_writer_chunk_rows(o->wu), .wa = o->wa, .ao = o, .a_rows = a_rows,
                    .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .s = ST_OK};
    p->n_chunks = (size_t)((p->n_rows + p->chunk_rows - 1) / p->chunk_rows);
    int threads = st_pool_threads(o->pool);
    unsigned n = threads > DENSE_MAX_THREADS ? DENSE_MAX_THREADS : (unsigned)threads;
    p->n_slots = n;
    uni_worker_arg args[DENSE_MAX_THREADS];
    st_status s = ST_OK;
    for (unsigned k = 0; k < n; k++) {
        uni_slot *u = &p->slot[k];
        u->state = SLOT_FREE;
        for (int c = 0; c < U_N; c++) st_column_init(&u->cols[c], un_fields[c].type);
        args[k] = (uni_worker_arg){p, NULL, {0}};
        st_column_init(&args[k].col, ST_TYPE_I64);
        if (s == ST_OK) s = uni_slot_alloc(u, p->chunk_rows, err);
        if (s == ST_OK) s = st_chunk_enc_create(o->wu, &u->ce, err);
        if (s == ST_OK) s = st_enc_lane_create(&args[k].lane, err);
    }
    if (s == ST_OK && a_rows) s = st_chunk_enc_create(o->wa, &p->a_ce, err);
    if (s == ST_OK) {
        /* a task run after another on one thread finds the work done */
        st_pool_run(o->pool, n, uni_worker, args);
        if (p->s != ST_OK) {
            if (err) *err = p->err;
            s = p->s;
        } else if (p->turn != p->n_chunks) {
            s = st_error_set(err, ST_ERR_INTERNAL, "gold: %zu of %zu unified chunks written", p->turn, p->n_chunks);
        }
    }
    if (s == ST_OK && a_rows) s = st_writer_put_chunk(o->wa, p->a_ce, err);
    st_chunk_enc_free(p->a_ce);
    for (unsigned k = 0; k < n; k++) {
        st_chunk_enc_free(p->slot[k].ce);
        uni_slot_free(&p->slot[k]);
        st_enc_lane_free(args[k].lane);
        st_column_free(&args[k].col);
        for (int c = 0; c < U_N; c++) st_column_free(&p->slot[k].cols[c]);
    }
    free(p);
    return s;
}

/* Appends a finished accumulator's rows to both gold files, a chunk at a
 * time. From st_dense (the unified rows on the slot pool, the materials
 * encoded from their codes, unless a chunk of rows could reach the byte
 * cut), an analytics file of one chunk is encoded on the pool too. */
static st_status emit(const gold_src *g, const st_dict *dict, gold_out *o, st_error *err)
{
    size_t n_groups = src_n_groups(g), longest = 0;
    st_column materials;
    st_column_init(&materials, ST_TYPE_STR);
    st_status s = g->dn ? material_column(dict, &materials, &longest, err) : ST_OK;
    bool pool = s == ST_OK && g->dn && longest <= ST_CHUNK_MAX_BYTES / st_writer_chunk_rows(o->wu);
    bool side = pool && n_groups > 0 && n_groups <= ST_CHUNK_ROWS && n_groups <= st_writer_chunk_rows(o->wa);
    /* beside the unified chunks, a worker makes the analytics rows too */
    for (size_t first = 0; s == ST_OK && !side && first < n_groups; first += ST_CHUNK_ROWS) {
        for (int k = 0; k < A_N; k++) st_column_reset(&o->a[k]);
        s = src_analytics(g, first, o->a, err);
        if (s != ST_OK) break;
        add_abs_totals(o);
        s = st_writer_write(o->wa, o->a, 0, o->a[0].n_rows, err);
    }
    o->n_groups += n_groups;
    if (s == ST_OK && pool) s = emit_unified_parallel(g->dn, dict, &materials, o, side ? n_groups : 0, err);
    st_column_free(&materials);
    if (pool || s != ST_OK) return s;
    return o->threads > 1 ? emit_unified_overlapped(g, dict, o, err) : emit_unified(g, dict, o, err);
}

static st_status emit_features(const st_features *fx, const st_dict *dict, gold_out *o, st_error *err)
{
    gold_src g = {fx, NULL, NULL};
    return emit(&g, dict, o, err);
}

/* Bytes the kernels need for n_rows lines over `width` customer ids and
 * n_periods months: 24 a line (row store, and its sorted copy during
 * finish), 16 per customer-month cell of the counting grid (two tables,
 * up to twice the customers for growth) plus 64 per customer, 40 per
 * active group of results, and 4 per id of the range when it is narrow
 * enough for the direct customer table. Upper bounds; see agg.h. */
static st_range_cost gold_cost(uint32_t n_periods)
{
    st_range_cost c = {24.0, 16.0 * n_periods + 64.0, 40.0, (double)n_periods, 4.0, ST_FEATURES_DIRECT_IDS + 1ull};
    return c;
}

static uint32_t months_between(int32_t lo, int32_t hi)
{
    int32_t a = st_period_month(lo), b = st_period_month(hi);
    return b >= a ? (uint32_t)(b - a) + 1 : 1;
}

static const char *const tables[2] = {"stg_sales_transactions", "stg_foc_transactions"};

/* Plans customer ranges for the budget: *n_ranges == 1 means one pass. */
static st_status plan_ranges(st_run_ctx *ctx, const st_feature_dims *dims, uint64_t n_lines, st_key_range **ranges,
                             size_t *n_ranges, unsigned *n_passes, st_error *err)
{
    st_range_cost cost = gold_cost(months_between(dims->period_key_min, dims->period_key_max));
    double budget = (double)ctx->o->memory_limit_bytes;
    uint64_t width = (uint64_t)dims->customer_id_max - (uint64_t)dims->customer_id_min + 1;
    *n_passes = 0;
    if (n_lines == 0 || st_range_cost_of(&cost, n_lines, width) <= budget) {
        *ranges = malloc(sizeof **ranges);
        if (!*ranges) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        (*ranges)[0] = (st_key_range){dims->customer_id_min, dims->customer_id_max, n_lines};
        *n_ranges = 1;
        return ST_OK;
    }
    st_key_hist *h = NULL;
    ST_TRY(st_key_hist_create(&h, dims->customer_id_min, dims->customer_id_max, &cost, budget, err));
    st_status s = ST_OK;
    while (s == ST_OK && st_key_hist_pass_needed(h)) {
        s = st_key_hist_begin(h, err);
        for (int t = 0; t < 2 && s == ST_OK; t++) s = count_customers(ctx, tables[t], h, err);
        if (s == ST_OK) s = st_key_hist_end(h, err);
    }
    if (s == ST_OK && st_key_hist_n_outside(h) > 0)
        s = st_error_set(err, ST_ERR_CORRUPT,
                         "silver.stg_sales_transactions / stg_foc_transactions: %llu customer ids outside the files' "
                         "zone maps", (unsigned long long)st_key_hist_n_outside(h));
    if (s == ST_OK) s = st_key_hist_plan(h, ranges, n_ranges, err);
    *n_passes = st_key_hist_n_passes(h);
    st_key_hist_free(h);
    return s;
}

/* ---- the dense one-pass path (st_dense) ---- */


/* One chunk of one table with the months its zone map gives; the fused
 * pass reads them in (first month, table, chunk) order. */
typedef struct chunk_ref {
    unsigned tab;
    size_t ch;
    uint64_t row0;
    uint32_t m_lo, m_hi; /* month indexes (from period_key_min) of its first and last line */
    uint32_t n_rows;
} chunk_ref;

typedef struct dense_job {
    st_run_ctx *ctx;
    const st_dense_dims *dd;
    st_dict *dict;
    pthread_mutex_t *lock;
    const chunk_ref *items;
    size_t lo, hi;                  /* items [lo, hi) */
    const uint32_t *owner;          /* per month: the one job whose chunks touch it, or UINT32_MAX */
    uint32_t id, n_months;
    unsigned n_acc;                 /* accumulators alive (for the budget) */
    st_dense *dn;
    uint64_t rows;
    bool over_budget;               /* the dictionary outgrew the budget */
    bool whole_chunks;              /* tests: every chunk read whole (STRATA_GOLD_WHOLE_CHUNKS=1), none held */
    size_t bad_item;                /* item of the first error, SIZE_MAX */
    st_status status;
    st_error err;
} dense_job;

/* First line whose quantity lies outside the zone maps (a damaged file). */
static st_status check_qty(const char *table, uint64_t row0, const int64_t *q, size_t n, int64_t lo, int64_t hi,
                           st_error *err)
{
    bool bad = false;
    for (size_t i = 0; i < n; i++) bad |= (q[i] < lo) | (q[i] > hi);
    for (size_t i = 0; bad && i < n; i++)
        if (q[i] < lo || q[i] > hi)
            return st_error_set(err, ST_ERR_CORRUPT, "silver.%s row %llu: quantity %lld is outside the file's zone maps",
                                table, (unsigned long long)(row0 + i), (long long)q[i]);
    return ST_OK;
}

/* After st_dense_add refused a chunk: the zone-map check of the sort path
 * on it (the error naming the table and row), or ST_OK when none fails. */
static st_status lines_outside(const char *table, uint64_t row0, const chunk_bufs *b, const st_dense_dims *dd,
                               unsigned tab, st_error *err)
{
    size_t n = b->c.n_rows;
    ST_TRY(check_lines(table, row0, st_column_i64(&b->c), st_column_i32(&b->p), n, &dd->f, err));
    return check_qty(table, row0, st_column_i64(&b->q), n, dd->qty_min[tab], dd->qty_max[tab], err);
}

/* True when a line of the chunk lies in a month dn has sealed. */
/* The first row of b at or after row `from` that lies in a month dn has
 * sealed, or SIZE_MAX. */
static size_t first_in_sealed_month(const st_dense *dn, const chunk_bufs *b, size_t from)
{
    const int32_t *pk = st_column_i32(&b->p);
    for (size_t i = from; i < b->p.n_rows; i++)
        if ((i == from || pk[i] != pk[i - 1]) && st_dense_month_sealed(dn, pk[i])) return i;
    return SIZE_MAX;
}

/* The error for a chunk whose lines from row `from` on st_dense_add
 * refused with s: a line outside the ranges gives the error the other
 * paths give (table and row); a line in a month sealed before (the first
 * such row from `from` on: the one refused) means the chunk's period_key
 * zone map, which planned the sealing, is wrong; any other error (out of
 * memory) is s. */
static st_status refused_chunk(const dense_job *job, const chunk_ref *it, const chunk_bufs *b, size_t from,
                               st_status s, st_error *err)
{
    st_status c = lines_outside(tables[it->tab], it->row0, b, job->dd, it->tab, err);
    size_t bad = c == ST_OK && s == ST_ERR_INVALID ? first_in_sealed_month(job->dn, b, from) : SIZE_MAX;
    if (bad == SIZE_MAX) return c != ST_OK ? c : s;
    return st_error_set(err, ST_ERR_CORRUPT,
                        "silver.%s row %llu (chunk %zu): period_key %d is in a month sealed before (its "
                        "period_key zone map is wrong)",
                        tables[it->tab], (unsigned long long)(it->row0 + bad), it->ch,
                        (int)st_column_i32(&b->p)[bad]);
}

static int32_t month_key(const st_dense_dims *dd, uint32_t m)
{
    return st_month_period(st_period_month(dd->f.period_key_min) + (int32_t)m);
}

/* Seals the job's own months from *next up to (not including) month
 * `below`: no chunk left to this job starts before it, and no other
 * job's chunk touches them. */
static st_status seal_owned(dense_job *job, uint32_t *next, uint32_t below, st_error *err)
{
    for (; *next < below && *next < job->n_months; ++*next)
        if (job->owner[*next] == job->id) ST_TRY(st_dense_seal_month(job->dn, month_key(job->dd, *next), err));
    return ST_OK;
}

/* Month index of period_key pk within dd (pk inside the ranges). */
static uint32_t month_index(const st_dense_dims *dd, int64_t pk)
{
    int32_t ma = st_period_month(dd->f.period_key_min), mb = st_period_month((int32_t)pk);
    return mb > ma ? (uint32_t)(mb - ma) : 0;
}

/* Rows of a held chunk decoded at a time: its lines' columns stay in the
 * cache (80 KiB) instead of 1.5 MiB of fresh pages a chunk. */
enum { SLICE_ROWS = 4096 };

/* Runs of a held chunk's period_keys read as runs (an RLE or CONST
 * block: the silver files come month by month); more are read as rows. */
enum { PK_RUNS = 1024 };

/* One table's side of a job: the chunk read now (item) and its lines
 * [pos, n) left to add, and the job's next item of the table. The
 * chunk's period_keys are read whole, as runs when their block is runs
 * (the months it spans are found on them); its other columns are held
 * (st_reader_hold_block) and decoded a slice of SLICE_ROWS rows at a time
 * into sc, sm, sq (and sp from the runs), rows [w0, w1), unless a block
 * cannot be sliced: then the chunk is read whole into b, as the other
 * paths read it. */
typedef struct dense_stream {
    st_reader *r;
    size_t ix[4];
    chunk_bufs b;
    st_held_block *hold[3]; /* customer_id, material_code, quantity */
    bool held;
    size_t w0, w1;
    int64_t *sc, *sq;
    uint32_t *sm;           /* run codes */
    int32_t *sp;            /* pk_runs: the slice's period_keys */
    bool pk_runs;           /* held, its period_keys as runs: pv[k] up to row pe[k] (n_pruns), else in b.p */
    uint64_t *pv;
    uint32_t *pe;
    size_t n_pruns, prun;   /* prun: the run of the last row asked for */
    size_t item, next; /* items; next == hi: none left */
    size_t pos, n;
    bool sorted;       /* the chunk's period_keys never decrease */
    uint32_t n_codes;  /* the dictionary's size once the chunk was read */
} dense_stream;

/* The job's first item of table t at or after item i (hi when none). */
static size_t next_of_table(const dense_job *job, unsigned t, size_t i)
{
    while (i < job->hi && job->items[i].tab != t) i++;
    return i;
}

/* True when pk[0..n) never decreases (a loop the compiler vectorises). */
static bool keys_sorted(const int32_t *pk, size_t n)
{
    int down = 0;
    for (size_t i = 1; i < n; i++) down |= pk[i] < pk[i - 1];
    return !down;
}

/* The end of pk[i]'s run in pk[0..n), which never decreases: the first
 * j > i with pk[j] > pk[i], by bisection. */
static size_t sorted_run_end(const int32_t *pk, size_t i, size_t n)
{
    size_t lo = i + 1, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pk[mid] > pk[i]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Chunk ch held in st (period_keys decoded, the other columns held, the
 * material dictionary through the run's one under the job's lock);
 * *sliced false, nothing changed but the holds, when a block cannot be
 * sliced. */
static st_status hold_chunk(dense_job *job, dense_stream *st, size_t ch, const char *table, bool *sliced,
                            st_error *err)
{
    chunk_bufs *b = &st->b;
    static const unsigned col[3] = {0, 2, 3};
    *sliced = false;
    if (job->whole_chunks) return ST_OK;
    for (int k = 0; k < 3; k++) {
        st_status s = st_reader_hold_block(st->r, ch, st->ix[col[k]], st->hold[k], k == 1 ? &b->m : NULL, err);
        if (s == ST_ERR_UNSUPPORTED) return ST_OK;
        if (s != ST_OK) return s;
    }
    st_status rs = st_reader_read_block_runs(st->r, ch, st->ix[1], st->pv, st->pe, PK_RUNS, &st->n_pruns, err);
    if (rs != ST_OK && rs != ST_ERR_UNSUPPORTED) return rs;
    st->pk_runs = rs == ST_OK;
    st->prun = 0;
    if (!st->pk_runs) ST_TRY(st_reader_read_block(st->r, ch, st->ix[1], &b->p, err));
    size_t n = st_reader_chunk_rows(st->r, ch);
    if (n > ST_CHUNK_ROWS) return st_error_set(err, ST_ERR_CORRUPT, "silver.%s: chunk %zu has %zu rows", table, ch, n);
    pthread_mutex_lock(job->lock);
    st_status s = st_dict_add_sorted(job->dict, &b->m, b->map, "material_code", err);
    st->n_codes = st_dict_size(job->dict);
    pthread_mutex_unlock(job->lock);
    *sliced = s == ST_OK;
    return s;
}

/* True when run values v[0..n) (period_keys widened) never decrease. */
static bool runs_sorted(const uint64_t *v, size_t n)
{
    for (size_t k = 1; k < n; k++)
        if ((int64_t)v[k] < (int64_t)v[k - 1]) return false;
    return true;
}

/* The run of row i (< n) of a stream whose period_keys are runs: from
 * the run last asked for on (rows are asked for in order), else from the
 * first. */
static size_t pk_run_of(dense_stream *st, size_t i)
{
    size_t q = st->prun < st->n_pruns && (st->prun == 0 || st->pe[st->prun - 1] <= i) ? st->prun : 0;
    while (st->pe[q] <= i) q++;
    st->prun = q;
    return q;
}

/* Row i's period_key. */
static int32_t stream_pk(dense_stream *st, size_t i)
{
    return st->pk_runs ? (int32_t)(int64_t)st->pv[pk_run_of(st, i)] : st_column_i32(&st->b.p)[i];
}

/* The end of row i's run of equal period_keys, in a chunk whose
 * period_keys never decrease. */
static size_t stream_month_end(dense_stream *st, size_t i)
{
    return st->pk_runs ? st->pe[pk_run_of(st, i)] : sorted_run_end(st_column_i32(&st->b.p), i, st->n);
}

/* When the stream's chunk is used up, reads its table's next chunk (if
 * any) through the dictionary; over_budget when the accumulators would
 * outgrow the memory limit. */
static st_status stream_fill(dense_job *job, dense_stream *st, st_error *err)
{
    if (st->pos < st->n || st->next >= job->hi) return ST_OK;
    const chunk_ref *it = &job->items[st->next];
    job->bad_item = st->item = st->next;
    st->next = next_of_table(job, it->tab, st->next + 1);
    ST_TRY(hold_chunk(job, st, it->ch, tables[it->tab], &st->held, err));
    if (!st->held)
        ST_TRY(read_chunk(st->r, st->ix, it->ch, tables[it->tab], it->row0, job->dict, job->lock, NULL, &st->b,
                          &st->n_codes, err));
    if (!st->held) st->pk_runs = false;
    st->pos = st->w0 = st->w1 = 0;
    st->n = st->held ? st_reader_chunk_rows(st->r, it->ch) : st->b.p.n_rows;
    /* one month by the zone map: one period_key (a map that lies fails
     * the add of a line in a month sealed on its word, as before) */
    st->sorted = it->m_lo == it->m_hi || (st->pk_runs ? runs_sorted(st->pv, st->n_pruns)
                                                      : keys_sorted(st_column_i32(&st->b.p), st->n));
    if ((uint64_t)job->n_acc * st_dense_bytes(job->dd, st->n_codes) > job->ctx->o->memory_limit_bytes)
        job->over_budget = true;
    return ST_OK;
}

/* The held chunk's slice holding row i decoded into sc, sm, sq (its
 * material codes mapped to the run's). */
static st_status stream_slice(dense_stream *st, size_t i, st_error *err)
{
    if (i >= st->w0 && i < st->w1) return ST_OK;
    size_t w0 = i / SLICE_ROWS * SLICE_ROWS, m = st->n - w0 < SLICE_ROWS ? st->n - w0 : SLICE_ROWS;
    st->w0 = st->w1 = 0;
    ST_TRY(st_held_block_i64(st->hold[0], w0, m, st->sc, err));
    ST_TRY(st_held_block_codes(st->hold[1], w0, m, st->sm, err));
    ST_TRY(st_held_block_i64(st->hold[2], w0, m, st->sq, err));
    for (size_t k = 0; k < m; k++) st->sm[k] = st->b.map[st->sm[k]];
    for (size_t k = 0; st->pk_runs && k < m;) { /* the runs' values, run by run */
        size_t q = pk_run_of(st, w0 + k), e = st->pe[q] - w0 < m ? st->pe[q] - w0 : m;
        for (int32_t v = (int32_t)(int64_t)st->pv[q]; k < e; k++) st->sp[k] = v;
    }
    st->w0 = w0;
    st->w1 = w0 + m;
    return ST_OK;
}

/* The lowest month the stream's lines left can lie in: the lower of its
 * chunk's (the next line's when the chunk is in period_key order, else
 * the chunk's zone map) and the next chunk's zone map (the table's chunks
 * come in first-month order, so no later one starts before it: a chunk
 * of late lines may start in a month an earlier chunk has passed);
 * UINT32_MAX when none is left. */
static uint32_t stream_floor(const dense_job *job, dense_stream *st)
{
    uint32_t later = st->next < job->hi ? job->items[st->next].m_lo : UINT32_MAX;
    if (st->pos >= st->n) return later;
    uint32_t now = st->sorted ? month_index(job->dd, stream_pk(st, st->pos)) : job->items[st->item].m_lo;
    return now < later ? now : later;
}

/* After st_dense_add refused lines of a held chunk: its customer ids,
 * quantities (and period_keys read as runs) read whole, for
 * refused_chunk. */
static st_status refused_held(dense_job *job, dense_stream *st, size_t from, st_status s, st_error *err)
{
    const chunk_ref *it = &job->items[st->item];
    st_error e2;
    if (st_reader_read_block(st->r, it->ch, st->ix[0], &st->b.c, &e2) != ST_OK ||
        (st->pk_runs && st_reader_read_block(st->r, it->ch, st->ix[1], &st->b.p, &e2) != ST_OK) ||
        st_reader_read_block(st->r, it->ch, st->ix[3], &st->b.q, &e2) != ST_OK) {
        if (err) *err = e2;
        return e2.code;
    }
    return refused_chunk(job, it, &st->b, from, s, err);
}

/* Adds the stream's next lines: the rest of the current month when the
 * chunk is in period_key order, else the rest of the chunk; a held
 * chunk's a slice at a time. */
static st_status stream_add(dense_job *job, dense_stream *st, st_error *err)
{
    const chunk_ref *it = &job->items[st->item];
    size_t i = st->pos, j = st->sorted ? stream_month_end(st, i) : st->n;
    job->bad_item = st->item;
    for (size_t k; i < j; i = k) {
        const int64_t *c = st_column_i64(&st->b.c) + i, *q = st_column_i64(&st->b.q) + i;
        const uint32_t *m = st->b.codes + i;
        const int32_t *pk = st->pk_runs ? NULL : st_column_i32(&st->b.p) + i;
        k = j;
        if (st->held) {
            ST_TRY(stream_slice(st, i, err));
            c = st->sc + (i - st->w0);
            q = st->sq + (i - st->w0);
            m = st->sm + (i - st->w0);
            if (st->pk_runs) pk = st->sp + (i - st->w0);
            k = j < st->w1 ? j : st->w1;
        }
        st_status s = st_dense_add(job->dn, (int)it->tab, c, pk, m, q, k - i, st->n_codes, err);
        if (s != ST_OK) return st->held ? refused_held(job, st, i, s, err) : refused_chunk(job, it, &st->b, i, s, err);
        job->rows += k - i;
        st_progress_add(job->ctx, k - i);
    }
    st->pos = j;
    return ST_OK;
}

/* A stream's buffers and holds (freed by stream_free whatever the
 * result). */
static st_status stream_init(dense_stream *st, st_error *err)
{
    ST_TRY(chunk_bufs_init(&st->b, err));
    for (int k = 0; k < 3; k++) ST_TRY(st_held_block_create(&st->hold[k], err));
    st->sc = malloc(SLICE_ROWS * sizeof *st->sc);
    st->sq = malloc(SLICE_ROWS * sizeof *st->sq);
    st->sm = malloc(SLICE_ROWS * sizeof *st->sm);
    st->sp = malloc(SLICE_ROWS * sizeof *st->sp);
    st->pv = malloc(PK_RUNS * sizeof *st->pv);
    st->pe = malloc(PK_RUNS * sizeof *st->pe);
    if (!st->sc || !st->sq || !st->sm || !st->sp || !st->pv || !st->pe)
        return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    return ST_OK;
}

static void stream_free(dense_stream *st)
{
    chunk_bufs_free(&st->b);
    for (int k = 0; k < 3; k++) st_held_block_free(st->hold[k]);
    free(st->sc);
    free(st->sq);
    free(st->sm);
    free(st->sp);
    free(st->pv);
    free(st->pe);
    st_reader_close(st->r);
}

/* The job's chunks of both tables into job->dn, the two tables' lines
 * month by month where the chunks are in period_key order: a chunk of a
 * small table spans several months, and taking each month's lines of
 * both tables before the next month's lets the job seal it (its own
 * months) at once and reuse its blocks, so a job holds the blocks of
 * about one month instead of a chunk's span (fresh blocks: page faults
 * and zeroing). */
static st_status dense_run(dense_job *job)
{
    st_error *err = &job->err;
    dense_stream st[2];
    st_status s = ST_OK;
    memset(st, 0, sizeof st);
    for (unsigned t = 0; t < 2; t++) {
        st_status bs = stream_init(&st[t], err);
        s = s != ST_OK ? s : bs;
        st[t].next = next_of_table(job, t, job->lo);
        if (s == ST_OK) s = open_lines(job->ctx, tables[t], &st[t].r, st[t].ix, err);
    }
    uint32_t seal_next = 0;
    while (s == ST_OK) {
        for (unsigned t = 0; t < 2 && s == ST_OK && !job->over_budget; t++) s = stream_fill(job, &st[t], err);
        if (s != ST_OK || job->over_budget) break;
        /* the job's own months below both floors are complete (all of
         * them once no line is left) */
        uint32_t f0 = stream_floor(job, &st[0]), f1 = stream_floor(job, &st[1]);
        if ((s = seal_owned(job, &seal_next, f0 < f1 ? f0 : f1, err)) != ST_OK) break;
        if (f0 == UINT32_MAX && f1 == UINT32_MAX) break;
        /* the stream whose next lines come first (sales on a tie) */
        dense_stream *next = st[0].pos < st[0].n && (f0 <= f1 || st[1].pos >= st[1].n) ? &st[0] : &st[1];
        s = stream_add(job, next, err);
    }
    if (s == ST_OK) job->bad_item = SIZE_MAX;
    for (unsigned t = 0; t < 2; t++) stream_free(&st[t]);
    return s;
}

/* A task of the run's pool: job `task` of the array. */
static void dense_worker(void *arg, size_t task, int worker)
{
    (void)worker;
    dense_job *job = (dense_job *)arg + task;
    job->status = dense_run(job);
}

/* The months chunk ch's lines lie in, from its period_key zone map (the
 * whole range when it has none). */
static st_status chunk_months(st_reader *r, size_t ch, size_t ix_pk, const st_dense_dims *dd, chunk_ref *it,
                              uint32_t *n_rows, st_error *err)
{
    st_block_info bi;
    if (st_reader_block_info(r, ch, ix_pk, &bi) != ST_OK)
        return st_error_set(err, ST_ERR_CORRUPT, "silver: no zone map for chunk %zu", ch);
    *n_rows = bi.n_rows;
    bool ok = bi.has_minmax && bi.min_i64 >= dd->f.period_key_min && bi.max_i64 <= dd->f.period_key_max &&
              bi.min_i64 <= bi.max_i64;
    it->m_lo = ok ? month_index(dd, bi.min_i64) : 0;
    it->m_hi = month_index(dd, ok ? bi.max_i64 : dd->f.period_key_max);
    return ST_OK;
}

static int by_first_month(const void *a, const void *b)
{
    const chunk_ref *x = a, *y = b;
    if (x->m_lo != y->m_lo) return x->m_lo < y->m_lo ? -1 : 1;
    if (x->tab != y->tab) return x->tab < y->tab ? -1 : 1;
    return x->ch < y->ch ? -1 : x->ch > y->ch;
}

/* Every chunk of both tables with its first row number and months, in
 * (first month, table, chunk) order: month-ordered files then hand each
 * thread its own months, which it seals as it goes. */
static st_status list_chunks(st_run_ctx *ctx, const st_dense_dims *dd, chunk_ref **out, size_t *n_out, st_error *err)
{
    st_reader *r[2] = {NULL, NULL};
    size_t ix[2][4], n = 0;
    st_status s = ST_OK;
    *out = NULL;
    for (int t = 0; t < 2 && s == ST_OK; t++)
        if ((s = open_lines(ctx, tables[t], &r[t], ix[t], err)) == ST_OK) n += st_reader_n_chunks(r[t]);
    chunk_ref *items = s == ST_OK ? malloc((n ? n : 1) * sizeof *items) : NULL;
    if (s == ST_OK && !items) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) {
        uint64_t row0 = 0;
        for (size_t ch = 0; ch < st_reader_n_chunks(r[t]) && s == ST_OK; ch++) {
            uint32_t rows = 0;
            items[k] = (chunk_ref){t, ch, row0, 0, 0, 0};
            if ((s = chunk_months(r[t], ch, ix[t][1], dd, &items[k], &rows, err)) != ST_OK) break;
            items[k].n_rows = rows;
            k++;
            row0 += rows;
        }
    }
    st_reader_close(r[0]);
    st_reader_close(r[1]);
    if (s != ST_OK) {
        free(items);
        return s;
    }
    qsort(items, k, sizeof *items, by_first_month);
    *out = items;
    *n_out = k;
    return ST_OK;
}

/* owner[m] = the job whose chunks alone touch month m, UINT32_MAX when
 * several (or none) do. */
static st_status month_owners(const dense_job *jobs, unsigned n, uint32_t n_months, uint32_t **out, st_error *err)
{
    uint32_t *owner = malloc((n_months ? n_months : 1) * sizeof *owner);
    if (!owner) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    memset(owner, 0xfe, (n_months ? n_months : 1) * sizeof *owner); /* 0xfefefefe: nobody yet */
    for (unsigned k = 0; k < n; k++)
        for (size_t i = jobs[k].lo; i < jobs[k].hi; i++)
            for (uint32_t m = jobs[k].items[i].m_lo; m <= jobs[k].items[i].m_hi && m < n_months; m++)
                owner[m] = owner[m] == 0xfefefefeu || owner[m] == k ? k : UINT32_MAX;
    *out = owner;
    return ST_OK;
}

/* True when item a comes before item b in the order the serial path
 * reads the chunks (every sales chunk, then every FOC chunk); SIZE_MAX,
 * a failure before any chunk, comes after every chunk. */
static bool serial_before(const chunk_ref *items, size_t a, size_t b)
{
    if (a == SIZE_MAX || b == SIZE_MAX) return a != SIZE_MAX && b == SIZE_MAX;
    return items[a].tab != items[b].tab ? items[a].tab < items[b].tab : items[a].ch < items[b].ch;
}

/* Room for the job's unified rows, one per line at most, so sealing
 * never copies them to grow (untouched room costs no page); without it
 * the rows grow as before. */
static void reserve_rows(dense_job *job)
{
    uint64_t lines = 0;
    for (size_t i = job->lo; i < job->hi; i++) lines += job->items[i].n_rows;
    st_error ignored;
    if (job->dn && lines <= SIZE_MAX / 64 && st_dense_reserve_rows(job->dn, (size_t)lines, &ignored) != ST_OK)
        return; /* out of memory for the room: the rows grow as they are sealed */
}

/* Runs the jobs as tasks of the run's pool; returns the error of the
 * earliest failing chunk in the serial path's order. */
static st_status dense_threads(dense_job *jobs, unsigned n, bool *over_budget, st_error *err)
{
    st_pool_run(jobs[0].ctx->pool, n, dense_worker, jobs);
    const dense_job *bad = NULL;
    *over_budget = false;
    for (unsigned k = 0; k < n; k++) {
        *over_budget |= jobs[k].over_budget;
        if (jobs[k].status != ST_OK && (!bad || serial_before(jobs[k].items, jobs[k].bad_item, bad->bad_item)))
            bad = &jobs[k];
    }
    if (bad && !*over_budget) {
        if (err) *err = bad->err;
        return bad->status;
    }
    return ST_OK;
}

/* After the pass failed: the first chunk in the serial order (every sales
 * chunk, then every FOC chunk) that does not decode or has a line outside
 * the ranges. The threads each stop at their own first error, so which
 * damaged chunk they met first depends on how the chunks were split; this
 * makes the error the same at any thread count. ST_OK when no chunk fails
 * so (the pass's own error stands: a period_key zone map that planned
 * the sealing wrong). Single-threaded: the pass's threads are joined. */
static st_status first_serial_error(st_run_ctx *ctx, const st_dense_dims *dd, st_dict *dict, st_error *err)
{
    st_reader *r[2] = {NULL, NULL};
    size_t ix[2][4];
    chunk_bufs b;
    st_status s = chunk_bufs_init(&b, err);
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) {
        s = open_lines(ctx, tables[t], &r[t], ix[t], err);
        uint64_t row0 = 0;
        for (size_t ch = 0; s == ST_OK && ch < st_reader_n_chunks(r[t]); ch++) {
            uint32_t n_codes;
            s = read_chunk(r[t], ix[t], ch, tables[t], row0, dict, NULL, NULL, &b, &n_codes, err);
            if (s == ST_OK) s = lines_outside(tables[t], row0, &b, dd, t, err);
            row0 += b.c.n_rows;
        }
    }
    chunk_bufs_free(&b);
    st_reader_close(r[0]);
    st_reader_close(r[1]);
    return s;
}

/* The whole gold step through st_dense: the chunks, in (first month,
 * table) order, split into contiguous ranges over the threads, each into
 * its own accumulator that seals the months only it has lines of as it
 * goes; then merged (exact integer sums: the split never shows), finished
 * and emitted. *fell_back is set, with nothing written, when the material
 * dictionary grows past the memory limit or a unified row's sum leaves
 * the rows' int32 (st_dense_sums_fit); the caller then takes the
 * st_features path. */
static st_status dense_pass(st_run_ctx *ctx, const st_dense_dims *dd, st_dict *dict, gold_out *o, bool *fell_back,
                            st_error *err)
{
    chunk_ref *items = NULL;
    uint32_t *owner = NULL;
    size_t n_items = 0;
    unsigned n = ctx->threads < 1 ? 1 : ctx->threads > DENSE_MAX_THREADS ? DENSE_MAX_THREADS : (unsigned)ctx->threads;
    dense_job jobs[DENSE_MAX_THREADS];
    memset(jobs, 0, sizeof jobs);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    *fell_back = false;
    uint32_t n_months = month_index(dd, dd->f.period_key_max) + 1;
    const char *wc = getenv("STRATA_GOLD_WHOLE_CHUNKS");
    bool whole = wc && !strcmp(wc, "1");
    st_status s = list_chunks(ctx, dd, &items, &n_items, err);
    if (s == ST_OK && n_items < n) n = n_items ? (unsigned)n_items : 1;
    for (unsigned k = 0; k < n && s == ST_OK; k++) {
        jobs[k] = (dense_job){ctx, dd, dict, &lock, items, n_items * k / n, n_items * (k + 1) / n, NULL, k, n_months,
                              n, NULL, 0, false, whole, SIZE_MAX, ST_OK, {0}};
        s = st_dense_create(&jobs[k].dn, dd, err);
        reserve_rows(&jobs[k]);
    }
    if (s == ST_OK) s = month_owners(jobs, n, n_months, &owner, err);
    for (unsigned k = 0; k < n && s == ST_OK; k++) jobs[k].owner = owner;
    if (s == ST_OK && (s = dense_threads(jobs, n, fell_back, err)) != ST_OK && s != ST_ERR_NOMEM) {
        st_error first;
        st_status fs = first_serial_error(ctx, dd, dict, &first);
        if (fs != ST_OK && fs != ST_ERR_NOMEM) {
            s = fs;
            if (err) *err = first;
        }
    }
    if (s != ST_OK || *fell_back) goto done;
    for (unsigned k = 1; k < n && s == ST_OK; k++) {
        s = st_dense_merge(jobs[0].dn, jobs[k].dn, err);
        st_dense_free(jobs[k].dn);
        jobs[k].dn = NULL;
        /* months one thread sealed have lines on another: the zone maps
         * that assigned the months lied */
        if (s == ST_ERR_INVALID)
            s = st_error_set(err, ST_ERR_CORRUPT,
                             "silver: a line lies outside its chunk's period_key zone map (a month one thread sealed "
                             "has lines in another thread's chunks)");
    }
    if (s == ST_OK) s = st_dict_finish(dict, err);
    if (s == ST_OK) s = st_dense_finish_on(jobs[0].dn, st_dict_rank(dict), st_dict_size(dict), ctx->pool, err);
    /* a (customer, month, material) sum past the rows' int32: the caller
     * takes the st_features path */
    if (s == ST_OK && !st_dense_sums_fit(jobs[0].dn)) *fell_back = true;
    if (s == ST_OK && !*fell_back) {
        for (unsigned k = 0; k < n; k++) ctx->cur->rows_in += jobs[k].rows;
        gold_src g = {NULL, jobs[0].dn, NULL};
        s = emit(&g, dict, o, err);
    }
done:
    for (unsigned k = 0; k < n; k++) st_dense_free(jobs[k].dn);
    free(owner);
    free(items);
    return s;
}

/* ---- the st_features paths ---- */

/* One pass: silver straight into one st_features. */
static st_status one_pass(st_run_ctx *ctx, const st_feature_dims *dims, st_dict *dict, gold_out *o, st_error *err)
{
    st_features *fx = NULL;
    line_sink sink = {.dims = dims};
    st_status s = st_features_create(&fx, dims, err);
    sink.fx = fx;
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) s = add_table(ctx, tables[t], t, dict, &sink, err);
    if (s == ST_OK) s = st_dict_finish(dict, err);
    if (s == ST_OK) s = st_features_finish(fx, st_dict_rank(dict), st_dict_size(dict), (unsigned)ctx->threads, err);
    if (s == ST_OK) s = emit_features(fx, dict, o, err);
    st_features_free(fx);
    return s;
}

st_status st_gold_spill_features(st_spill *spill, uint32_t pi, const st_feature_dims *pd, const st_dict *dict,
                                 unsigned threads, st_features **out, st_error *err)
{
    st_features *fx = NULL;
    *out = NULL;
    st_status s = st_features_create(&fx, pd, err);
    if (s == ST_OK) s = st_features_reserve(fx, st_spill_rows(spill, pi, 0), st_spill_rows(spill, pi, 1), err);
    st_spill_cursor cur = {0};
    while (s == ST_OK) {
        st_spill_block b;
        if ((s = st_spill_next(spill, pi, &cur, &b, err)) != ST_OK || b.n_rows == 0) break;
        s = b.table ? st_features_add_foc(fx, b.customer_id, b.period_key, b.material, b.quantity, b.n_rows, err)
                    : st_features_add_sales(fx, b.customer_id, b.period_key, b.material, b.quantity, b.n_rows, err);
    }
    if (s == ST_OK) s = st_features_finish(fx, st_dict_rank(dict), st_dict_size(dict), threads, err);
    if (s != ST_OK) st_features_free(fx);
    else *out = fx;
    return s;
}

/* One customer range of the spill through its own st_features. */
static st_status spill_range(st_run_ctx *ctx, st_spill *spill, uint32_t pi, const st_feature_dims *pd, st_dict *dict,
                             gold_out *o, st_error *err)
{
    st_features *fx = NULL;
    st_status s = st_gold_spill_features(spill, pi, pd, dict, (unsigned)ctx->threads, &fx, err);
    if (s == ST_OK) s = emit_features(fx, dict, o, err);
    st_features_free(fx);
    return s;
}

/* Partitioned: scatter by customer range into the spill, then range by
 * range. *spilled gets the spill file's size. */
static st_status partitioned(st_run_ctx *ctx, const st_feature_dims *dims, const st_key_range *ranges,
                             size_t n_ranges, st_dict *dict, gold_out *o, uint64_t *spilled, st_error *err)
{
    st_spill *spill = NULL;
    line_sink sink = {.dims = dims, .ranges = ranges, .n_ranges = n_ranges};
    int fd = -1;
    char dir[ST_PATH_MAX], what[ST_PATH_MAX + 64];
    st_status s = st_warehouse_temp_file(ctx->wh, "gold-spill", &fd, dir, err);
    if (s != ST_OK) return s;
    snprintf(what, sizeof what, "the gold step's spill file in '%s'", dir);
    double per_buf = (double)ctx->o->memory_limit_bytes / 2.0 / (double)(2 * n_ranges * 24);
    uint32_t block_rows = per_buf > ST_SPILL_MAX_BLOCK_ROWS ? ST_SPILL_MAX_BLOCK_ROWS
                          : per_buf < 256.0                 ? 256u
                                                            : (uint32_t)per_buf;
    if ((s = st_spill_create(&spill, fd, what, (uint32_t)n_ranges, block_rows, err)) != ST_OK) return s;
    sink.spill = spill;
    if (!(sink.part = malloc(ST_CHUNK_ROWS * sizeof *sink.part))) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) s = add_table(ctx, tables[t], t, dict, &sink, err);
    if (s == ST_OK) s = st_spill_flush(spill, err);
    if (s == ST_OK) s = st_dict_finish(dict, err);
    for (size_t pi = 0; pi < n_ranges && s == ST_OK; pi++) {
        st_feature_dims pd = {ranges[pi].lo, ranges[pi].hi, dims->period_key_min, dims->period_key_max};
        s = spill_range(ctx, spill, (uint32_t)pi, &pd, dict, o, err);
    }
    *spilled = st_spill_bytes(spill);
    st_spill_free(spill);
    free(sink.part);
    return s;
}

/* ---- across ranks (gold_dist.c) ---- */

static st_status emit_rows(void *arg, const st_feature_rows *rows, const st_dict *dict, st_error *err)
{
    gold_src g = {NULL, NULL, rows};
    return emit(&g, dict, arg, err);
}

struct st_gold_chunk {
    chunk_bufs b;
};

st_status st_gold_chunk_create(st_gold_chunk **out, st_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    st_status s = chunk_bufs_init(&(*out)->b, err);
    if (s != ST_OK) {
        st_gold_chunk_free(*out);
        *out = NULL;
    }
    return s;
}

void st_gold_chunk_free(st_gold_chunk *c)
{
    if (!c) return;
    chunk_bufs_free(&c->b);
    free(c);
}

st_status st_gold_read_chunk(st_gold_chunk *c, st_reader *r, const size_t ix[4], size_t ch, unsigned tab,
                             uint64_t row0, st_dict *dict, const st_feature_dims *dims, st_gold_lines *out,
                             st_error *err)
{
    uint32_t n_codes;
    ST_TRY(read_chunk(r, ix, ch, tables[tab], row0, dict, NULL, dims, &c->b, &n_codes, err));
    *out = (st_gold_lines){st_column_i64(&c->b.c), st_column_i32(&c->b.p), c->b.codes, st_column_i64(&c->b.q),
                           c->b.c.n_rows};
    return ST_OK;
}

st_status st_gold_open_lines(const char *path, unsigned tab, st_reader **out, size_t ix[4], st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_reader_open(&r, path, err));
    return line_cols(r, tables[tab], out, ix, err);
}

const char *st_gold_table(unsigned tab) { return tables[tab & 1]; }

st_range_cost st_gold_range_cost(const st_feature_dims *dims)
{
    return gold_cost(months_between(dims->period_key_min, dims->period_key_max));
}

/* ---- the step ---- */

/* What the zone maps say before any value is decoded. */
typedef struct gold_plan {
    st_dense_dims dd;      /* dd.f: customer and period ranges */
    bool qty_known;        /* every quantity block has min/max */
    uint64_t n_lines;
    st_key_range *ranges;  /* n_ranges customer ranges (1: one pass) */
    size_t n_ranges;
    unsigned n_passes;     /* histogram passes that planned them */
    st_gold_dist_out dist; /* across ranks (gold_dist.c); n_ranks 0: this process alone */
} gold_plan;

static st_status plan_gold(st_run_ctx *ctx, gold_plan *p, st_error *err)
{
    memset(p, 0, sizeof *p);
    p->dd.f = (st_feature_dims){1, 1, 202001, 202001};
    p->qty_known = true;
    bool any = false;
    st_status s = ST_OK;
    for (int t = 0; t < 2 && s == ST_OK; t++) {
        bool known = true;
        s = table_dims(ctx, tables[t], &p->dd.f, &any, &p->dd.qty_min[t], &p->dd.qty_max[t], &known, err);
        p->qty_known &= known;
        st_reader *r = NULL;
        if (s == ST_OK && (s = st_table_open(ctx, "silver", tables[t], &r, err)) == ST_OK) {
            p->n_lines += st_reader_n_rows(r);
            st_reader_close(r);
        }
    }
    /* across ranks, the ranks plan the ranges together (gold_dist.c) */
    if (s == ST_OK && !st_gold_dist_wanted())
        s = plan_ranges(ctx, &p->dd.f, p->n_lines, &p->ranges, &p->n_ranges, &p->n_passes, err);
    return s;
}

/* Which gold path tests and profiles asked for: STRATA_GOLD_PATH=sort or
 * fused (STRATA_GOLD_SORT=1 is the older spelling of sort); 0 = choose. */
static int forced_gold_path(void)
{
    const char *sort = getenv("STRATA_GOLD_SORT"), *path = getenv("STRATA_GOLD_PATH");
    if (sort && *sort && strcmp(sort, "0") != 0) return 's';
    if (path && strcmp(path, "sort") == 0) return 's';
    if (path && strcmp(path, "fused") == 0) return 'f';
    return 0;
}

/* The dense path applies when the ranges are narrow, the quantities small
 * and the accumulators (one per thread) fit the memory limit; unless forced,
 * it is taken only when there are at least 1/DENSE_LINES_PER_BIN lines per
 * histogram bin. Its cost is a fixed part per bin (zeroing the month blocks,
 * their page faults, the median scans) plus a few ns per line; the sort
 * path's is about 55-150 ns per line. Measured on demo-shaped data (6,000
 * cells, ~1,160 bins each: 7M bins), 2 threads, minimum of 5 runs: 100K
 * lines 55 ms fused and 27 ms sorted, 400K lines 60-71 ms and 55 ms, 1M
 * lines 80 ms and 97 ms, 20M lines 0.21 s and 1.1 s. The output is the
 * same bytes either way. */
#define DENSE_LINES_PER_BIN 12
static bool dense_fits(const st_run_ctx *ctx, const gold_plan *p)
{
    int force = forced_gold_path();
    if (force == 's') return false;
    if (p->n_ranges > 1 || !p->qty_known || p->n_lines == 0 || !st_dense_eligible(&p->dd)) return false;
    uint64_t n = ctx->threads < 1 ? 1 : (uint64_t)ctx->threads;
    if (n * st_dense_bytes(&p->dd, 1) > ctx->o->memory_limit_bytes) return false;
    return force == 'f' || p->n_lines * DENSE_LINES_PER_BIN >= st_dense_slots(&p->dd);
}

/* The grand-total check, closing both files, the step's note. */
static st_status close_gold(st_run_ctx *ctx, gold_out *o, const gold_plan *p, bool dense, uint64_t spilled,
                            st_error *err)
{
    for (int t = 0; t < 2; t++)
        if (o->abs_total[t] > (unsigned __int128)INT64_MAX)
            return st_error_set(err, ST_ERR_OVERFLOW,
                                "gold: the %s quantities of all customer-months add up to more than int64 holds, so "
                                "the marts' and the report's totals cannot be computed (check --qty-min/--qty-max)",
                                t ? "free-of-charge" : "sold");
    uint64_t n_unified = st_writer_n_rows(o->wu);
    st_status s = st_writer_close(o->wu, err);
    o->wu = NULL;
    if (s == ST_OK) s = st_writer_close(o->wa, err);
    o->wa = NULL;
    if (s != ST_OK) return s;
    ctx->cur->rows_out = o->n_groups + n_unified;
    int w = snprintf(ctx->cur->note, sizeof ctx->cur->note, "%llu customer-periods, %llu customer-period-materials",
                     (unsigned long long)o->n_groups, (unsigned long long)n_unified);
    if (dense && w > 0 && (size_t)w < sizeof ctx->cur->note)
        snprintf(ctx->cur->note + w, sizeof ctx->cur->note - (size_t)w, ", one fused pass");
    if (p->n_ranges > 1 && w > 0 && (size_t)w < sizeof ctx->cur->note) {
        uint64_t lim = ctx->o->memory_limit_bytes;
        bool mib = lim % (1u << 20) == 0;
        snprintf(ctx->cur->note + w, sizeof ctx->cur->note - (size_t)w,
                 "; %zu customer ranges (memory limit %llu %s, %u histogram pass%s, %.0f MiB spilled)", p->n_ranges,
                 (unsigned long long)(mib ? lim >> 20 : lim >> 10), mib ? "MiB" : "KiB", p->n_passes,
                 p->n_passes == 1 ? "" : "es", (double)spilled / 1048576.0);
    }
    st_gold_dist_note(ctx->cur->note, sizeof ctx->cur->note, &p->dist);
    return ST_OK;
}

/* The step across the ranks: the paths of the silver tables and the
 * staging area, then st_gold_dist_run. */
static st_status gold_dist(st_run_ctx *ctx, gold_plan *p, st_dict *dict, gold_out *o, uint64_t *spilled,
                           st_error *err)
{
    st_gold_dist_in in = {.dims = p->dd.f, .n_lines = p->n_lines, .threads = ctx->threads,
                          .memory_limit = ctx->o->memory_limit_bytes, .fd = -1};
    for (unsigned t = 0; t < 2; t++) st_warehouse_input_path(ctx->wh, "silver", tables[t], in.silver[t]);
    ST_TRY(st_warehouse_temp_file(ctx->wh, "gold-spill", &in.fd, in.tmpdir, err));
    st_status s = st_gold_dist_run(&in, dict, emit_rows, o, &p->dist, err);
    ctx->cur->rows_in += p->n_lines;
    p->n_ranges = p->dist.n_ranges;
    p->n_passes = p->dist.n_passes;
    *spilled = p->dist.spilled;
    return s;
}

st_status st_step_intermediate(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    st_dict *dict = NULL;
    gold_plan plan;
    gold_out o = {0};
    o.threads = ctx->threads > 1 ? (unsigned)ctx->threads : 1;
    o.pool = ctx->pool;
    uint64_t spilled = 0;
    for (int k = 0; k < A_N; k++) st_column_init(&o.a[k], an_fields[k].type);
    for (int k = 0; k < U_N; k++) st_column_init(&o.u[k], un_fields[k].type);
    static const char *const inputs[] = {"silver.stg_sales_transactions", "silver.stg_foc_transactions"};
    st_status s = plan_gold(ctx, &plan, err);
    if (s == ST_OK) s = st_dict_create(&dict, err);
    if (s == ST_OK)
        s = st_table_create(ctx, "gold", "int_transactions_unified", un_fields, U_N, inputs, 2, "", fp, NULL, 0, &o.wu,
                            err);
    if (s == ST_OK)
        s = st_table_create(ctx, "gold", "int_customer_analytics", an_fields, A_N, inputs, 2, "", fp, NULL, 0, &o.wa,
                            err);
    if (s != ST_OK) goto done;
    /* the unified file is most of the step's encoding: its columns are
     * encoded in parallel (the analytics file is a few thousand rows) */
    st_writer_set_pool(o.wu, ctx->pool);
    bool fell_back = true;
    if (st_gold_dist_wanted()) {
        /* every rank computes its customer ranges; rank 0 writes them */
        s = gold_dist(ctx, &plan, dict, &o, &spilled, err);
        if (s == ST_OK) s = close_gold(ctx, &o, &plan, false, spilled, err);
        goto done;
    }
    if (dense_fits(ctx, &plan)) {
        st_progress_expect(ctx, plan.n_lines);
        if ((s = dense_pass(ctx, &plan.dd, dict, &o, &fell_back, err)) != ST_OK) goto done;
        if (fell_back) { /* the dictionary outgrew the limit, or a sum the rows: start over */
            st_progress(ctx, 0, 0); /* the path taken instead counts every line again */
            st_dict_free(dict);
            dict = NULL;
            if ((s = st_dict_create(&dict, err)) != ST_OK) goto done;
        }
    }
    if (fell_back)
        s = plan.n_ranges <= 1 ? one_pass(ctx, &plan.dd.f, dict, &o, err)
                               : partitioned(ctx, &plan.dd.f, plan.ranges, plan.n_ranges, dict, &o, &spilled, err);
    if (s == ST_OK) s = close_gold(ctx, &o, &plan, !fell_back, spilled, err);
done:
    st_writer_abort(o.wa);
    st_writer_abort(o.wu);
    st_dict_free(dict);
    free(plan.ranges);
    for (int k = 0; k < A_N; k++) st_column_free(&o.a[k]);
    for (int k = 0; k < U_N; k++) st_column_free(&o.u[k]);
    return s;
}
