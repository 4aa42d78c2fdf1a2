/*
 * step_stage.c: bronze -> silver.
 *
 *   stg_sales_transactions, stg_foc_transactions   typed, validated lines
 *   stg_customers                                  cleaned master, one row per id
 *   stg_rejects                                    every row that did not make it
 *
 * Each transaction row is cast field by field with the TRY_CAST rules of
 * pipeline/cast.c and checked in a fixed order (customer id, year, month,
 * material code, quantity); the first failure names the reason and the
 * column. Accepted rows stream to the staged silver file chunk by chunk;
 * rejected rows stream to a file per table (per part), and the files are
 * concatenated into stg_rejects in table order (customers, sales, FOC) so
 * the output does not depend on which worker finished first. Inside a
 * transaction table rejects are in rowid order; inside the customer master
 * the bad-id rows come first (rowid order), then the duplicates (by id,
 * then rowid). Memory is bounded by the chunk size for transactions;
 * the customer master is held whole (it is small by nature: one row per
 * customer).
 *
 * Parts. A partitioned bronze transaction table (shards) gives a
 * partitioned silver table, a part per bronze part, each staged on its
 * own from its item (parts_dist.h: the bronze part, the silver part's
 * path, its rejects file, the rules) by st_stage_item_write(): so a
 * part's short last chunk never shifts the chunk boundaries of the next,
 * and every chunk can pass through as stored. The parts are staged in
 * parallel (up to --threads, the customers on the calling thread), in
 * strata-mpi on N > 1 ranks part k by rank k % N (parts_dist.c); rank 0
 * seals the manifests with the step's fingerprint (what its skip test
 * compares) and concatenates the rejects files in item order, which is
 * bronze's row order: stg_rejects and the silver quality checks (which
 * read the parts as one table) are those of one process for any N.
 *
 * Invariant, checked here on every run: for each source table, bronze
 * rows = staged rows + rejected rows; a mismatch is ST_ERR_INTERNAL.
 */
#include "pipeline_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clean_internal.h"
#include "dist.h"
#include "parts_dist.h"
#include "strata/cast.h"
#include "strata/pool.h"
#include "strata/utf8.h"

/* One source column as bronze holds it: value, storage class, raw bytes. */
typedef struct bcol {
    const char *name;     /* bronze (lower-case) name, NULL when absent */
    size_t i_val, i_cls, i_raw;
    st_column val, cls, raw;
} bcol;

static void bcol_free(bcol *b)
{
    st_column_free(&b->val);
    st_column_free(&b->cls);
    st_column_free(&b->raw);
}

/* The bronze value of row i as a cast input. An inconsistent triple
 * (which a valid bronze file never holds) reads as an unknown class, so
 * every cast rejects it. */
static st_value bval(const bcol *b, size_t i)
{
    st_value v;
    if (!st_value_from_bronze(&b->val, &b->cls, &b->raw, i, &v)) {
        memset(&v, 0, sizeof v);
        v.cls = -1;
    }
    return v;
}

/* Text cast into buf (NUL-terminated copy). */
static st_cast_result to_text(const st_value *v, st_buf *buf)
{
    char num[ST_CAST_NUM_MAX];
    const char *p;
    size_t len;
    st_cast_result r = st_cast_to_text(v, num, &p, &len);
    st_buf_reset(buf);
    if (r == ST_CAST_OK) st_buf_append(buf, p, len);
    return r;
}

/* Locates name's triple in reader r (bronze schema). */
static st_status bcol_find(st_reader *r, const char *table, const char *name, bcol *b, st_error *err)
{
    char n2[300];
    b->name = name;
    ST_TRY(st_table_col(r, table, name, &b->i_val, err));
    snprintf(n2, sizeof n2, "%s__class", name);
    ST_TRY(st_table_col(r, table, n2, &b->i_cls, err));
    snprintf(n2, sizeof n2, "%s__raw", name);
    ST_TRY(st_table_col(r, table, n2, &b->i_raw, err));
    st_column_init(&b->val, st_reader_field(r, b->i_val)->type);
    st_column_init(&b->cls, ST_TYPE_I32);
    st_column_init(&b->raw, ST_TYPE_BYTES);
    return ST_OK;
}

static st_status bcol_read(st_reader *r, size_t chunk, bcol *b, st_error *err)
{
    ST_TRY(st_reader_read_block(r, chunk, b->i_val, &b->val, err));
    ST_TRY(st_reader_read_block(r, chunk, b->i_cls, &b->cls, err));
    return st_reader_read_block(r, chunk, b->i_raw, &b->raw, err);
}

/* ---- rejects ---- */

static const st_field reject_fields[5] = {
    {"source_table", ST_TYPE_STR, false, "bronze table the row came from"},
    {"source_rowid", ST_TYPE_I64, false, "SQLite rowid of the source row"},
    {"reason", ST_TYPE_STR, false, "reason code (docs/TABLES.md)"},
    {"column", ST_TYPE_STR, true, "the offending column"},
    {"raw_values", ST_TYPE_STR, false, "the row's values as text: col=value; ..."},
};

typedef struct rejects {
    st_column c[5];
    st_writer *w;
    uint64_t n;
} rejects;

/* Renders every source column of row i as "name=value; ...". */
static void render_row(st_buf *b, bcol *all, size_t n_all, size_t i)
{
    st_buf_reset(b);
    for (size_t k = 0; k < n_all; k++) {
        if (k) st_buf_puts(b, "; ");
        st_buf_puts(b, all[k].name);
        st_buf_puts(b, "=");
        st_value v = bval(&all[k], i);
        st_cast_render(b, &v);
    }
}

static st_status reject_push(rejects *rj, const char *table, int64_t rowid, const char *reason, const char *column,
                             const st_buf *raw)
{
    ST_TRY(st_column_push_str(&rj->c[0], table, strlen(table)));
    ST_TRY(st_column_push_i64(&rj->c[1], rowid));
    ST_TRY(st_column_push_str(&rj->c[2], reason, strlen(reason)));
    if (column) ST_TRY(st_column_push_str(&rj->c[3], column, strlen(column)));
    else ST_TRY(st_column_push_null(&rj->c[3]));
    ST_TRY(st_column_push_str(&rj->c[4], raw->data ? raw->data : "", raw->len));
    rj->n++;
    return ST_OK;
}

static st_status rejects_flush(rejects *rj, st_error *err)
{
    if (rj->c[0].n_rows == 0) return ST_OK;
    ST_TRY(st_writer_write(rj->w, rj->c, 0, rj->c[0].n_rows, err));
    for (int k = 0; k < 5; k++) st_column_reset(&rj->c[k]);
    return ST_OK;
}

/* Where the rejects of bronze (its part `part`; -1: the whole table) wait
 * in staging for stg_rejects. */
static st_status part_path(st_run_ctx *ctx, const char *bronze, int part, char *buf, st_error *err)
{
    char p[ST_PATH_MAX];
    ST_TRY(st_warehouse_stage_path(ctx->wh, "silver", "x", p, err));
    char *slash = strrchr(p, '/');
    *slash = '\0';
    int n = part < 0 ? snprintf(buf, ST_PATH_MAX, "%s/.rejects_%s.part", p, bronze)
                     : snprintf(buf, ST_PATH_MAX, "%s/.rejects_%s.%05d.part", p, bronze, part);
    if (n >= ST_PATH_MAX) return st_error_set(err, ST_ERR_INVALID, "path too long");
    return ST_OK;
}

static st_status rejects_open(const char *path, rejects *rj, st_error *err)
{
    memset(rj, 0, sizeof *rj);
    for (int k = 0; k < 5; k++) st_column_init(&rj->c[k], reject_fields[k].type);
    st_file_meta meta = {.layer = "silver", .table = "stg_rejects_part", .params = ""};
    st_write_opts wo = {.no_fsync = true};
    return st_writer_open(&rj->w, path, reject_fields, 5, &meta, &wo, err);
}

static void rejects_free(rejects *rj)
{
    st_writer_abort(rj->w);
    rj->w = NULL;
    for (int k = 0; k < 5; k++) st_column_free(&rj->c[k]);
}

/* ---- transactions ---- */

/* One transaction table's item being staged (st_stage_item_write). */
typedef struct tx_job {
    st_run_ctx *ctx;          /* NULL on a follower rank: only progress needs it */
    const st_stage_item *it;
    st_run_opts o;            /* the item's rules: year and quantity ranges */
    const char *bronze, *silver, *qty_name;
    uint64_t fp;
    uint64_t raw_rows, staged, rejected;
    uint64_t chunks, stored; /* bronze chunks; those written as stored blocks */
    st_status status;
    st_error err;
} tx_job;

enum { T_ID, T_CUST, T_YEAR, T_MONTH, T_PK, T_MAT, T_QTY, T_N };

static const st_field tx_fields[T_N] = {
    {"transaction_id", ST_TYPE_I64, false, "source rowid of the line"},
    {"customer_id", ST_TYPE_I64, false, "customer id (positive)"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"material_code", ST_TYPE_STR, false, "material code, trimmed"},
    {"quantity", ST_TYPE_I64, false, "quantity of the line"},
};

/* The required source columns, in check order. */
enum { R_CUST, R_YEAR, R_MONTH, R_MAT, R_QTY, R_N };

/* Everything one transaction table's staging holds. */
typedef struct tx_state {
    tx_job *j;
    const st_run_opts *o;
    st_reader *r;
    st_writer *w;
    bcol *all;            /* n_all source columns */
    size_t n_all;
    int req_at[R_N];      /* index into all[] of each required column */
    rejects rj;
    st_column out[T_N], rowid;
    st_buf raw, txt;
    uint8_t *ok;          /* ST_CHUNK_ROWS: row passes every rule as-is */
    uint32_t *codes;      /* ST_CHUNK_ROWS: material codes of a stored chunk */
    st_column mat_dict;   /* the material values of a stored chunk */
    uint64_t *pk_val;     /* ST_CHUNK_ROWS: period_key runs of a stored chunk, values */
    uint32_t *pk_len;     /* ST_CHUNK_ROWS: their lengths */
    st_buf pk_buf;        /* the period_key block built from the runs */
    uint64_t n_stored;    /* chunks whose blocks went to silver as stored */
} tx_state;

/* The per-row path: row i cast field by field and checked in order; the
 * first failure names the reason and the column. Accepted rows go to
 * out[], rejected ones to the rejects. The specification of the chunk
 * path below. */
static st_status stage_row(tx_state *x, const int64_t *rid, size_t i)
{
    const st_run_opts *o = x->o;
    bcol *all = x->all;
    const int *req_at = x->req_at;
    const char *reason = NULL;
    int bad = -1;
    int64_t cust = 0, year = 0, month = 0, qty = 0;
    st_value v = bval(&all[req_at[R_CUST]], i);
    if (st_cast_to_i64(&v, &cust) != ST_CAST_OK || cust <= 0) reason = "bad_customer_id", bad = R_CUST;
    if (!reason) {
        v = bval(&all[req_at[R_YEAR]], i);
        st_cast_result cr = st_cast_to_i64(&v, &year);
        if (cr == ST_CAST_OUT_OF_RANGE) reason = "year_out_of_range", bad = R_YEAR;
        else if (cr != ST_CAST_OK) reason = "bad_year", bad = R_YEAR;
        else if (year < o->year_min || year > o->year_max) reason = "year_out_of_range", bad = R_YEAR;
    }
    if (!reason) {
        v = bval(&all[req_at[R_MONTH]], i);
        if (st_cast_to_i64(&v, &month) != ST_CAST_OK || month < 1 || month > 12) reason = "bad_month", bad = R_MONTH;
    }
    if (!reason) {
        v = bval(&all[req_at[R_MAT]], i);
        if (to_text(&v, &x->txt) != ST_CAST_OK) reason = "bad_material_code", bad = R_MAT;
    }
    if (!reason) {
        v = bval(&all[req_at[R_QTY]], i);
        st_cast_result cr = st_cast_to_i64(&v, &qty);
        if (cr == ST_CAST_OUT_OF_RANGE) reason = "quantity_out_of_range", bad = R_QTY;
        else if (cr != ST_CAST_OK) reason = "bad_quantity", bad = R_QTY;
        else if (qty < o->qty_min || qty > o->qty_max) reason = "quantity_out_of_range", bad = R_QTY;
    }
    if (reason) {
        render_row(&x->raw, all, x->n_all, i);
        ST_TRY(reject_push(&x->rj, x->j->bronze, rid[i], reason, all[req_at[bad]].name, &x->raw));
        return x->rj.c[0].n_rows >= ST_CHUNK_ROWS ? rejects_flush(&x->rj, &x->j->err) : ST_OK;
    }
    st_column *out = x->out;
    ST_TRY(st_column_push_i64(&out[T_ID], rid[i]));
    ST_TRY(st_column_push_i64(&out[T_CUST], cust));
    ST_TRY(st_column_push_i32(&out[T_YEAR], (int32_t)year));
    ST_TRY(st_column_push_i32(&out[T_MONTH], (int32_t)month));
    ST_TRY(st_column_push_i32(&out[T_PK], (int32_t)(year * 100 + month)));
    ST_TRY(st_column_push_str(&out[T_MAT], x->txt.data, x->txt.len));
    return st_column_push_i64(&out[T_QTY], qty);
}

/* True when every row of the chunk's bronze triple holds class `cls` as a
 * non-NULL value of type `type` with no raw bytes: then the cast of row i
 * is the value itself, exactly as st_value_from_bronze() would give it. */
static bool block_is(const bcol *b, int32_t cls, st_type type, size_t n)
{
    if (b->val.type != type || b->val.n_rows != n || b->val.null_count != 0 || b->cls.type != ST_TYPE_I32 ||
        b->cls.n_rows != n || b->cls.null_count != 0 || b->raw.n_rows != n || b->raw.null_count != n)
        return false;
    const int32_t *c = st_column_i32(&b->cls);
    bool same = true;
    for (size_t i = 0; i < n; i++) same &= c[i] == cls;
    return same;
}

static inline bool is_space_byte(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* ok[i] = 1 when row i passes every rule with its values as they are (the
 * material needing no trim): a predicate over the whole chunk, no casts.
 * A row it flags takes stage_row(), which finds the reason (or accepts it
 * after trimming). Returns the number of rows passing. */
static size_t chunk_predicates(const tx_state *x, size_t n, uint8_t *ok)
{
    const st_run_opts *o = x->o;
    const bcol *all = x->all;
    const int64_t *cust = st_column_i64(&all[x->req_at[R_CUST]].val);
    const int64_t *year = st_column_i64(&all[x->req_at[R_YEAR]].val);
    const int64_t *month = st_column_i64(&all[x->req_at[R_MONTH]].val);
    const int64_t *qty = st_column_i64(&all[x->req_at[R_QTY]].val);
    const st_column *mat = &all[x->req_at[R_MAT]].val;
    const int64_t ymin = o->year_min, ymax = o->year_max, qmin = o->qty_min, qmax = o->qty_max;
    for (size_t i = 0; i < n; i++)
        ok[i] = (cust[i] > 0) & (year[i] >= ymin) & (year[i] <= ymax) & (month[i] >= 1) & (month[i] <= 12) &
                (qty[i] >= qmin) & (qty[i] <= qmax);
    /* material: non-empty, no leading or trailing space, valid UTF-8 (one
     * pass over the payload when it is all ASCII) */
    const uint64_t *off = mat->offsets;
    const unsigned char *bytes = (const unsigned char *)mat->bytes;
    unsigned char high = 0;
    for (size_t k = 0; k < mat->n_bytes; k++) high |= bytes[k];
    bool ascii = high < 0x80;
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = off[i], e = off[i + 1];
        bool m = e > a && !is_space_byte(bytes[a]) && !is_space_byte(bytes[e - 1]) &&
                 (ascii || st_utf8_valid((const char *)bytes + a, (size_t)(e - a)));
        ok[i] &= m;
        n_ok += ok[i];
    }
    return n_ok;
}

/* Rows [a, b) that passed the predicates, appended in bulk. */
static st_status append_run(tx_state *x, const st_column *rowid, size_t a, size_t b)
{
    const bcol *all = x->all;
    st_column *out = x->out;
    size_t n = b - a;
    ST_TRY(st_column_append_range(&out[T_ID], rowid, a, n));
    ST_TRY(st_column_append_range(&out[T_CUST], &all[x->req_at[R_CUST]].val, a, n));
    ST_TRY(st_column_append_range(&out[T_MAT], &all[x->req_at[R_MAT]].val, a, n));
    ST_TRY(st_column_append_range(&out[T_QTY], &all[x->req_at[R_QTY]].val, a, n));
    const int64_t *year = st_column_i64(&all[x->req_at[R_YEAR]].val) + a;
    const int64_t *month = st_column_i64(&all[x->req_at[R_MONTH]].val) + a;
    size_t at = out[T_YEAR].n_rows;
    for (int k = T_YEAR; k <= T_PK; k++) ST_TRY(st_column_reserve(&out[k], at + n, 0));
    int32_t *y = (int32_t *)out[T_YEAR].data + at, *m = (int32_t *)out[T_MONTH].data + at,
            *pk = (int32_t *)out[T_PK].data + at;
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)year[i];
        m[i] = (int32_t)month[i];
        pk[i] = (int32_t)(year[i] * 100 + month[i]);
    }
    for (int k = T_YEAR; k <= T_PK; k++) out[k].n_rows = at + n;
    return ST_OK;
}

/* STRATA_STAGE_ROWWISE=1 (tests and profiles): the per-row path only, no
 * chunk predicates and no stored chunks: the reference the others equal. */
static bool rowwise(void)
{
    const char *force = getenv("STRATA_STAGE_ROWWISE");
    return force && *force && strcmp(force, "0") != 0;
}

/* One chunk: when its required blocks are uniformly typed, the rules run
 * as predicates over the whole chunk and passing runs are appended in
 * bulk; flagged rows, and every row of any other chunk, take stage_row().
 * Same rows, values and order as stage_row() on every row. */
static st_status stage_chunk(tx_state *x, size_t n)
{
    const int64_t *rid = st_column_i64(&x->rowid);
    const bcol *all = x->all;
    bool fast = x->rowid.null_count == 0 && !rowwise();
    for (int q = 0; q < R_N && fast; q++)
        fast = q == R_MAT ? block_is(&all[x->req_at[q]], 3, ST_TYPE_STR, n)
                          : block_is(&all[x->req_at[q]], 1, ST_TYPE_I64, n);
    if (!fast) {
        for (size_t i = 0; i < n; i++) ST_TRY(stage_row(x, rid, i));
        return ST_OK;
    }
    size_t n_ok = chunk_predicates(x, n, x->ok);
    if (n_ok == n) return append_run(x, &x->rowid, 0, n);
    for (size_t i = 0; i < n;) {
        if (!x->ok[i]) {
            ST_TRY(stage_row(x, rid, i++));
            continue;
        }
        size_t e = i;
        while (e < n && x->ok[e]) e++;
        ST_TRY(append_run(x, &x->rowid, i, e));
        i = e;
    }
    return ST_OK;
}

/* ---- stored chunks: blocks passed through ---- */

/* True when the footer alone shows every row of chunk c passing the
 * rules as it is: each required column's class block constant (INTEGER,
 * or TEXT for the material), its raw block all NULL, its values present
 * and, by their zone maps, inside the ranges; the rowid present. The
 * material values still need a look (material_ok). */
static bool zones_pass(const tx_state *x, size_t c, size_t n, size_t i_rowid)
{
    static const int want_cls[R_N] = {1, 1, 1, 3, 1};
    const st_run_opts *o = x->o;
    const int64_t lo[R_N] = {1, o->year_min, 1, 0, o->qty_min}, hi[R_N] = {INT64_MAX, o->year_max, 12, 0, o->qty_max};
    st_block_info bi;
    if (st_reader_block_info(x->r, c, i_rowid, &bi) != ST_OK || bi.null_count) return false;
    for (int q = 0; q < R_N; q++) {
        const bcol *b = &x->all[x->req_at[q]];
        if (st_reader_block_info(x->r, c, b->i_cls, &bi) != ST_OK || bi.null_count || !bi.has_minmax ||
            bi.min_i64 != want_cls[q] || bi.max_i64 != want_cls[q])
            return false;
        if (st_reader_block_info(x->r, c, b->i_raw, &bi) != ST_OK || bi.null_count != n) return false;
        if (st_reader_block_info(x->r, c, b->i_val, &bi) != ST_OK || bi.null_count) return false;
        if (q == R_MAT) {
            if (b->val.type != ST_TYPE_STR || bi.raw_bytes > ST_CHUNK_MAX_BYTES) return false;
        } else if (b->val.type != ST_TYPE_I64 || !bi.has_minmax || bi.min_i64 < lo[q] || bi.max_i64 > hi[q]) {
            return false;
        }
    }
    return true;
}

/* True when every material value of chunk c needs no trim and is valid
 * UTF-8 (the rules of chunk_predicates), looking at each distinct value
 * of a dictionary block once. */
static st_status material_ok(tx_state *x, size_t c, bool *ok)
{
    const bcol *b = &x->all[x->req_at[R_MAT]];
    ST_TRY(st_reader_read_block_dict(x->r, c, b->i_val, &x->mat_dict, x->codes, &x->j->err));
    const st_column *d = &x->mat_dict;
    *ok = true;
    for (size_t k = 0; k < d->n_rows && *ok; k++) {
        size_t l;
        const unsigned char *v = (const unsigned char *)st_column_str(d, k, &l);
        *ok = l > 0 && !is_space_byte(v[0]) && !is_space_byte(v[l - 1]) && st_utf8_valid((const char *)v, l);
    }
    return ST_OK;
}

/* Column `k` of the silver chunk from bronze block `col` of chunk c: the
 * stored block when it fits, else its values narrowed into out[k]
 * (decoded into `into`). */
static st_status stored_or_values(tx_state *x, size_t c, size_t col, int k, st_column *into, st_stored_block *sb,
                                  const st_stored_block **use)
{
    st_error *err = &x->j->err;
    ST_TRY(st_reader_read_stored(x->r, c, col, sb, err));
    if (st_writer_stored_fits(x->w, (size_t)k, sb)) {
        *use = sb;
        return ST_OK;
    }
    *use = NULL;
    ST_TRY(st_reader_read_block(x->r, c, col, into, err));
    st_column *o = &x->out[k];
    ST_TRY(st_column_reserve(o, into->n_rows, 0));
    const int64_t *v = st_column_i64(into);
    int32_t *d = (int32_t *)o->data;
    for (size_t i = 0; i < into->n_rows; i++) d[i] = (int32_t)v[i];
    o->n_rows = into->n_rows;
    return ST_OK;
}

/* period_key = year * 100 + month of chunk c as runs (rows where neither
 * changes; values widened as the encoder does): one run when both zone
 * maps are constant, else from the decoded values. Returns the number of
 * runs in x->pk_val / x->pk_len. */
static st_status period_runs(tx_state *x, size_t c, size_t n, size_t *n_runs)
{
    bcol *yb = &x->all[x->req_at[R_YEAR]], *mb = &x->all[x->req_at[R_MONTH]];
    st_block_info yi, mi;
    ST_TRY(st_reader_block_info(x->r, c, yb->i_val, &yi));
    ST_TRY(st_reader_block_info(x->r, c, mb->i_val, &mi));
    uint64_t *val = x->pk_val;
    uint32_t *len = x->pk_len;
    if (yi.min_i64 == yi.max_i64 && mi.min_i64 == mi.max_i64) {
        val[0] = (uint64_t)(int64_t)(int32_t)(yi.min_i64 * 100 + mi.min_i64);
        len[0] = (uint32_t)n;
        *n_runs = 1;
        return ST_OK;
    }
    st_error *err = &x->j->err;
    ST_TRY(st_reader_read_block(x->r, c, yb->i_val, &yb->val, err));
    ST_TRY(st_reader_read_block(x->r, c, mb->i_val, &mb->val, err));
    const int64_t *y = st_column_i64(&yb->val), *m = st_column_i64(&mb->val);
    size_t r = 0;
    for (size_t a = 0, e; a < n; a = e) {
        /* the run starting at a ends where year or month changes: found
         * 8 rows at a time (an OR of differences the compiler vectorises) */
        e = a + 1;
        while (e + 8 <= n) {
            uint64_t d = 0;
            for (size_t k = 0; k < 8; k++) d |= (uint64_t)(y[e + k] ^ y[a]) | (uint64_t)(m[e + k] ^ m[a]);
            if (d) break;
            e += 8;
        }
        while (e < n && y[e] == y[a] && m[e] == m[a]) e++;
        uint64_t v = (uint64_t)(int64_t)(int32_t)(y[a] * 100 + m[a]);
        if (r && v == val[r - 1]) { /* equal keys from other (year, month): one run */
            len[r - 1] += (uint32_t)(e - a);
            continue;
        }
        val[r] = v;
        len[r++] = (uint32_t)(e - a);
    }
    *n_runs = r;
    return ST_OK;
}

/* period_key of chunk c: its block built from the runs when the writer
 * can (*use = sb), else the values in out[T_PK] (*use = NULL). */
static st_status period_keys(tx_state *x, size_t c, size_t n, st_stored_block *sb, const st_stored_block **use)
{
    size_t n_runs;
    bool ok;
    ST_TRY(period_runs(x, c, n, &n_runs));
    ST_TRY(st_writer_runs_block(x->w, T_PK, x->pk_val, x->pk_len, n_runs, &x->pk_buf, sb, &ok, &x->j->err));
    *use = ok ? sb : NULL;
    if (ok) return ST_OK;
    st_column *o = &x->out[T_PK];
    ST_TRY(st_column_reserve(o, n, 0));
    int32_t *pk = (int32_t *)o->data;
    for (size_t r = 0, i = 0; r < n_runs; r++)
        for (uint32_t k = 0; k < x->pk_len[r]; k++) pk[i++] = (int32_t)x->pk_val[r];
    o->n_rows = n;
    return ST_OK;
}

/* Chunk c (n rows) as a stored chunk, when it is one: aligned with the
 * silver chunks (nothing buffered; a full chunk or the last), every row
 * passing as it is (zones_pass, material_ok). Then transaction_id,
 * customer_id, material_code and quantity are bronze's blocks as stored
 * (the same values give the same bytes), year and month too when only
 * their width changes (st_writer_stored_fits), else narrowed; period_key
 * is built from the runs of year and month (period_keys). *done tells
 * whether the chunk was written. */
static st_status stage_stored(tx_state *x, size_t c, size_t n, bool last, size_t i_rowid, bool *done)
{
    *done = false;
    if (st_writer_buffered_rows(x->w) || (n != ST_CHUNK_ROWS && !last) || !zones_pass(x, c, n, i_rowid))
        return ST_OK;
    bool ok;
    ST_TRY(material_ok(x, c, &ok));
    if (!ok) return ST_OK;
    for (int k = 0; k < T_N; k++) st_column_reset(&x->out[k]);
    st_stored_block sb[T_N];
    const st_stored_block *use[T_N] = {0};
    static const int from[T_N] = {-1, R_CUST, R_YEAR, R_MONTH, -1, R_MAT, R_QTY};
    st_error *err = &x->j->err;
    ST_TRY(st_reader_read_stored(x->r, c, i_rowid, &sb[T_ID], err));
    use[T_ID] = &sb[T_ID];
    for (int k = 0; k < T_N; k++) {
        if (from[k] < 0) continue;
        bcol *b = &x->all[x->req_at[from[k]]];
        if (k == T_YEAR || k == T_MONTH) {
            ST_TRY(stored_or_values(x, c, b->i_val, k, &b->val, &sb[k], &use[k]));
            continue;
        }
        ST_TRY(st_reader_read_stored(x->r, c, b->i_val, &sb[k], err));
        use[k] = &sb[k];
    }
    ST_TRY(period_keys(x, c, n, &sb[T_PK], &use[T_PK]));
    for (int k = 0; k < T_N; k++)
        if (use[k] && !st_writer_stored_fits(x->w, (size_t)k, use[k])) return ST_OK; /* a test forcing an encoding */
    ST_TRY(st_writer_write_chunk(x->w, x->out, use, n, err));
    x->n_stored++;
    *done = true;
    return ST_OK;
}

/* Opens bronze, finds every source column (required ones by name),
 * creates the silver writer and the rejects part. */
static st_status tx_open(tx_state *x)
{
    tx_job *j = x->j;
    st_error *err = &j->err;
    ST_TRY(st_reader_open(&x->r, j->it->in, err));
    size_t nf = st_reader_n_fields(x->r);
    x->n_all = (nf - 1) / 3;
    x->all = calloc(x->n_all ? x->n_all : 1, sizeof *x->all);
    x->ok = malloc(ST_CHUNK_ROWS);
    x->codes = malloc(ST_CHUNK_ROWS * sizeof *x->codes);
    x->pk_val = malloc(ST_CHUNK_ROWS * sizeof *x->pk_val);
    x->pk_len = malloc(ST_CHUNK_ROWS * sizeof *x->pk_len);
    if (!x->all || !x->ok || !x->codes || !x->pk_val || !x->pk_len)
        return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < x->n_all; k++)
        ST_TRY(bcol_find(x->r, j->bronze, st_reader_field(x->r, 1 + 3 * k)->name, &x->all[k], err));
    const char *req[R_N] = {"customer_id", "year", "month", "material_code", j->qty_name};
    for (int q = 0; q < R_N; q++) {
        x->req_at[q] = -1;
        for (size_t k = 0; k < x->n_all; k++)
            if (!strcmp(x->all[k].name, req[q])) x->req_at[q] = (int)k;
        if (x->req_at[q] < 0)
            return st_error_set(err, ST_ERR_SCHEMA, "bronze table %s has no column '%s'", j->bronze, req[q]);
    }
    char input[128];
    snprintf(input, sizeof input, "bronze.%s", j->bronze);
    const char *inputs[1] = {input};
    char params[256];
    snprintf(params, sizeof params, "year=%lld..%lld;quantity=%lld..%lld", (long long)x->o->year_min,
             (long long)x->o->year_max, (long long)x->o->qty_min, (long long)x->o->qty_max);
    ST_TRY(st_part_writer_open(j->it->out, "silver", j->silver, tx_fields, T_N, inputs, 1, params, j->fp, NULL, 0,
                               &x->w, err));
    return rejects_open(j->it->rejects, &x->rj, err);
}

static void tx_close(tx_state *x)
{
    st_writer_abort(x->w);
    rejects_free(&x->rj);
    st_reader_close(x->r);
    for (size_t k = 0; k < x->n_all; k++) bcol_free(&x->all[k]);
    free(x->all);
    free(x->ok);
    free(x->codes);
    free(x->pk_val);
    free(x->pk_len);
    st_buf_free(&x->pk_buf);
    st_column_free(&x->mat_dict);
    for (int k = 0; k < T_N; k++) st_column_free(&x->out[k]);
    st_column_free(&x->rowid);
    st_buf_free(&x->raw);
    st_buf_free(&x->txt);
}

static st_status stage_tx(tx_job *j)
{
    tx_state x;
    memset(&x, 0, sizeof x);
    x.j = j;
    x.o = &j->o;
    st_error *err = &j->err;
    for (int k = 0; k < T_N; k++) st_column_init(&x.out[k], tx_fields[k].type);
    st_column_init(&x.rowid, ST_TYPE_I64);
    st_column_init(&x.mat_dict, ST_TYPE_STR);
    st_buf_init(&x.raw);
    st_buf_init(&x.txt);
    st_buf_init(&x.pk_buf);
    size_t i_rowid;
    st_status s = tx_open(&x);
    if (s == ST_OK) s = st_table_col(x.r, j->bronze, "_rowid", &i_rowid, err);
    if (s != ST_OK) goto done;
    j->raw_rows = st_reader_n_rows(x.r);
    st_progress_expect(j->ctx, j->raw_rows);
    size_t n_chunks = st_reader_n_chunks(x.r);
    bool stored_ok = !rowwise();
    for (size_t c = 0; c < n_chunks && s == ST_OK; c++) {
        size_t n = st_reader_chunk_rows(x.r, c);
        bool done = false;
        if (stored_ok && (s = stage_stored(&x, c, n, c + 1 == n_chunks, i_rowid, &done)) != ST_OK) break;
        if (done) {
            j->staged += n;
            st_progress_add(j->ctx, n);
            continue;
        }
        if ((s = st_reader_read_block(x.r, c, i_rowid, &x.rowid, err)) != ST_OK) break;
        for (size_t k = 0; k < x.n_all && s == ST_OK; k++) s = bcol_read(x.r, c, &x.all[k], err);
        if (s != ST_OK) break;
        for (int k = 0; k < T_N; k++) st_column_reset(&x.out[k]);
        if ((s = stage_chunk(&x, x.rowid.n_rows)) != ST_OK) {
            if (err->code == ST_OK) st_error_set(err, s, "out of memory staging %s", j->bronze);
            break;
        }
        if (x.out[0].n_rows) s = st_writer_write(x.w, x.out, 0, x.out[0].n_rows, err);
        j->staged += x.out[0].n_rows;
        st_progress_add(j->ctx, x.rowid.n_rows);
    }
    if (s == ST_OK) s = rejects_flush(&x.rj, err);
    if (s != ST_OK) goto done;
    j->rejected = x.rj.n;
    j->chunks = n_chunks;
    j->stored = x.n_stored;
    s = st_writer_close(x.w, err);
    x.w = NULL;
    if (s == ST_OK) {
        s = st_writer_close(x.rj.w, err);
        x.rj.w = NULL;
    }
done:
    tx_close(&x);
    if (s != ST_OK && err->code == ST_OK) st_error_set(err, s, "staging %s failed", j->bronze);
    return s;
}

st_status st_stage_item_write(const st_stage_item *it, st_stage_result *res, st_run_ctx *ctx, st_error *err)
{
    tx_job *j = calloc(1, sizeof *j);
    if (!j) return st_error_set(err, ST_ERR_NOMEM, "out of memory staging %s", it->bronze);
    *j = (tx_job){.ctx = ctx, .it = it, .bronze = it->bronze, .silver = it->silver, .qty_name = it->qty_name,
                  .fp = it->fp};
    j->o.year_min = it->year_min;
    j->o.year_max = it->year_max;
    j->o.qty_min = it->qty_min;
    j->o.qty_max = it->qty_max;
    st_status s = stage_tx(j);
    *res = (st_stage_result){j->raw_rows, j->staged, j->rejected, j->chunks, j->stored, st_dist_rank()};
    if (s != ST_OK && err) *err = j->err;
    free(j);
    return s;
}

/* ---- customers ---- */

enum { C_ID, C_FIRST, C_LAST, C_FULL, C_COMPANY, C_ADDRESS, C_CITY, C_STATE, C_COUNTRY, C_POSTAL, C_PHONE, C_FAX,
       C_EMAIL, C_EMAIL_VALID, C_REP, C_ROWID, C_FLAGS, C_N };

static const st_field cust_fields[C_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id (positive, unique)"},
    {"first_name", ST_TYPE_STR, true, "first name, trimmed"},
    {"last_name", ST_TYPE_STR, true, "last name, trimmed"},
    {"full_name", ST_TYPE_STR, true, "first and last name"},
    {"company", ST_TYPE_STR, true, "company, trimmed"},
    {"address", ST_TYPE_STR, true, "street address, trimmed"},
    {"city", ST_TYPE_STR, true, "city, trimmed"},
    {"state", ST_TYPE_STR, true, "state or region, trimmed"},
    {"country", ST_TYPE_STR, true, "country, standardised"},
    {"postal_code", ST_TYPE_STR, true, "postal code, trimmed"},
    {"phone", ST_TYPE_STR, true, "phone, trimmed"},
    {"fax", ST_TYPE_STR, true, "fax, trimmed"},
    {"email", ST_TYPE_STR, true, "e-mail, trimmed and lower-cased"},
    {"email_valid", ST_TYPE_BOOL, false, "e-mail looks deliverable"},
    {"support_rep_id", ST_TYPE_I64, true, "support representative id"},
    {"source_rowid", ST_TYPE_I64, false, "SQLite rowid of the master row"},
    {"flags", ST_TYPE_STR, false, "fields nulled because their value was unusable, comma-separated"},
};

/* Source spellings accepted for each master field (bronze names are the
 * lower-cased source names). */
static const char *const cust_src[C_N][3] = {
    [C_ID] = {"customerid", "customer_id", "id"},
    [C_FIRST] = {"firstname", "first_name", NULL},
    [C_LAST] = {"lastname", "last_name", NULL},
    [C_COMPANY] = {"company", NULL, NULL},
    [C_ADDRESS] = {"address", NULL, NULL},
    [C_CITY] = {"city", NULL, NULL},
    [C_STATE] = {"state", NULL, NULL},
    [C_COUNTRY] = {"country", NULL, NULL},
    [C_POSTAL] = {"postalcode", "postal_code", NULL},
    [C_PHONE] = {"phone", NULL, NULL},
    [C_FAX] = {"fax", NULL, NULL},
    [C_EMAIL] = {"email", NULL, NULL},
    [C_REP] = {"supportrepid", "support_rep_id", NULL},
};

typedef struct cust_row {
    int64_t id;
    size_t row;
} cust_row;

static int cmp_cust(const void *a, const void *b)
{
    const cust_row *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static void add_flag(st_buf *flags, const char *name)
{
    if (flags->len) st_buf_puts(flags, ",");
    st_buf_puts(flags, name);
}

/* Cleans master row i (customer id `id`, already unique) into out[]:
 * trimmed text fields, full name, standardised country, e-mail and its
 * validity, support rep; fields nulled because their value was unusable
 * are listed in the row's flags. */
static st_status clean_customer(const bcol *all, const int at[C_N], size_t i, int64_t id, int64_t rowid,
                                st_column *out, st_buf *txt, st_buf *flags)
{
    st_status s;
    st_buf_reset(flags);
    s = st_column_push_i64(&out[C_ID], id);
    /* plain text fields */
    static const int text_fields[] = {C_FIRST, C_LAST, C_COMPANY, C_ADDRESS, C_CITY, C_STATE, C_POSTAL, C_PHONE, C_FAX};
    for (size_t t = 0; t < sizeof text_fields / sizeof text_fields[0] && s == ST_OK; t++) {
        int f = text_fields[t];
        if (at[f] < 0) {
            s = st_column_push_null(&out[f]);
            continue;
        }
        st_value v = bval(&all[at[f]], i);
        st_cast_result cr = to_text(&v, txt);
        if (cr == ST_CAST_OK) s = st_column_push_str(&out[f], txt->data, txt->len);
        else {
            if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(flags, cust_fields[f].name);
            s = st_column_push_null(&out[f]);
        }
    }
    /* full name */
    if (s == ST_OK) {
        st_buf_reset(txt);
        if (st_column_valid(&out[C_FIRST], out[C_FIRST].n_rows - 1)) {
            size_t l;
            const char *p = st_column_str(&out[C_FIRST], out[C_FIRST].n_rows - 1, &l);
            st_buf_append(txt, p, l);
        }
        if (st_column_valid(&out[C_LAST], out[C_LAST].n_rows - 1)) {
            size_t l;
            const char *p = st_column_str(&out[C_LAST], out[C_LAST].n_rows - 1, &l);
            if (txt->len) st_buf_puts(txt, " ");
            st_buf_append(txt, p, l);
        }
        s = txt->len ? st_column_push_str(&out[C_FULL], txt->data, txt->len) : st_column_push_null(&out[C_FULL]);
    }
    /* country */
    if (s == ST_OK) {
        st_buf_reset(txt);
        st_cast_result cr = at[C_COUNTRY] < 0 ? ST_CAST_NULL : ST_CAST_OK;
        if (cr == ST_CAST_OK) {
            st_value v = bval(&all[at[C_COUNTRY]], i);
            cr = to_text(&v, txt);
        }
        if (cr == ST_CAST_OK) {
            char c[256];
            size_t l = st_clean_country(txt->data, txt->len, c, sizeof c);
            s = st_column_push_str(&out[C_COUNTRY], c, l);
        } else {
            if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(flags, "country");
            s = st_column_push_null(&out[C_COUNTRY]);
        }
    }
    /* e-mail */
    if (s == ST_OK) {
        st_buf_reset(txt);
        st_cast_result cr = at[C_EMAIL] < 0 ? ST_CAST_NULL : ST_CAST_OK;
        if (cr == ST_CAST_OK) {
            st_value v = bval(&all[at[C_EMAIL]], i);
            cr = to_text(&v, txt);
        }
        bool valid = false;
        if (cr == ST_CAST_OK) {
            char e[512];
            size_t l = st_clean_email(txt->data, txt->len, e, sizeof e, &valid);
            s = st_column_push_str(&out[C_EMAIL], e, l);
            if (!valid) add_flag(flags, "email_invalid");
        } else {
            if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(flags, "email");
            s = st_column_push_null(&out[C_EMAIL]);
        }
        if (s == ST_OK) s = st_column_push_bool(&out[C_EMAIL_VALID], valid);
    }
    /* support rep */
    if (s == ST_OK) {
        int64_t rep;
        st_value v;
        if (at[C_REP] < 0) s = st_column_push_null(&out[C_REP]);
        else if ((v = bval(&all[at[C_REP]], i)), st_cast_to_i64(&v, &rep) == ST_CAST_OK)
            s = st_column_push_i64(&out[C_REP], rep);
        else {
            if (v.cls != 0) add_flag(flags, "support_rep_id");
            s = st_column_push_null(&out[C_REP]);
        }
    }
    if (s == ST_OK) s = st_column_push_i64(&out[C_ROWID], rowid);
    if (s == ST_OK) s = st_column_push_str(&out[C_FLAGS], flags->data ? flags->data : "", flags->len);
    return s;
}

static st_status stage_customers(st_run_ctx *ctx, uint64_t fp, uint64_t *raw_rows, uint64_t *staged, rejects *rj,
                                 st_error *err)
{
    st_reader *r = NULL;
    st_writer *w = NULL;
    bcol *all = NULL;
    size_t n_all = 0;
    int at[C_N];
    st_column out[C_N], rowid;
    memset(out, 0, sizeof out);
    st_column_init(&rowid, ST_TYPE_I64);
    cust_row *rows = NULL;
    st_buf raw, txt, flags;
    st_buf_init(&raw);
    st_buf_init(&txt);
    st_buf_init(&flags);
    for (int k = 0; k < C_N; k++) st_column_init(&out[k], cust_fields[k].type);
    st_status s = st_table_open(ctx, "bronze", "raw_customer", &r, err);
    if (s != ST_OK) goto done;
    size_t nf = st_reader_n_fields(r);
    n_all = (nf - 1) / 3;
    all = calloc(n_all ? n_all : 1, sizeof *all);
    if (!all) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n_all; k++)
        if ((s = bcol_find(r, "raw_customer", st_reader_field(r, 1 + 3 * k)->name, &all[k], err)) != ST_OK) goto done;
    for (int f = 0; f < C_N; f++) {
        at[f] = -1;
        for (int a = 0; a < 3 && cust_src[f][a] && at[f] < 0; a++)
            for (size_t k = 0; k < n_all; k++)
                if (!strcmp(all[k].name, cust_src[f][a])) at[f] = (int)k;
    }
    if (at[C_ID] < 0) {
        s = st_error_set(err, ST_ERR_SCHEMA, "bronze table raw_customer has no customer id column (CustomerId)");
        goto done;
    }
    size_t i_rowid;
    if ((s = st_table_col(r, "raw_customer", "_rowid", &i_rowid, err)) != ST_OK) goto done;
    /* the master is small: read it whole */
    {
        size_t which[1] = {i_rowid};
        if ((s = st_reader_read_all(r, which, 1, &rowid, err)) != ST_OK) goto done;
        for (size_t k = 0; k < n_all && s == ST_OK; k++) {
            size_t w3[3] = {all[k].i_val, all[k].i_cls, all[k].i_raw};
            st_column tmp[3] = {all[k].val, all[k].cls, all[k].raw};
            s = st_reader_read_all(r, w3, 3, tmp, err);
            all[k].val = tmp[0];
            all[k].cls = tmp[1];
            all[k].raw = tmp[2];
        }
        if (s != ST_OK) goto done;
    }
    size_t n = rowid.n_rows;
    *raw_rows = n;
    rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    const int64_t *rid = st_column_i64(&rowid);
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        st_value v = bval(&all[at[C_ID]], i);
        int64_t id;
        if (st_cast_to_i64(&v, &id) != ST_CAST_OK || id <= 0) {
            render_row(&raw, all, n_all, i);
            if ((s = reject_push(rj, "raw_customer", rid[i], "bad_customer_id", all[at[C_ID]].name, &raw)) != ST_OK)
                goto done;
            continue;
        }
        rows[n_ok++] = (cust_row){id, i};
    }
    qsort(rows, n_ok, sizeof *rows, cmp_cust);
    for (size_t q = 0; q < n_ok && s == ST_OK; q++) {
        size_t i = rows[q].row;
        if (q > 0 && rows[q - 1].id == rows[q].id) {
            render_row(&raw, all, n_all, i);
            s = reject_push(rj, "raw_customer", rid[i], "duplicate_customer_id", all[at[C_ID]].name, &raw);
            continue;
        }
        s = clean_customer(all, at, i, rows[q].id, rid[i], out, &txt, &flags);
    }
    if (s != ST_OK) {
        if (!err || err->code == ST_OK) st_error_set(err, s, "out of memory staging customers");
        goto done;
    }
    static const char *const inputs[] = {"bronze.raw_customer"};
    if ((s = st_table_create(ctx, "silver", "stg_customers", cust_fields, C_N, inputs, 1, "", fp, NULL, 0, &w,
                             err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(w, out, 0, out[0].n_rows, err)) != ST_OK) goto done;
    *staged = out[0].n_rows;
    s = st_writer_close(w, err);
    w = NULL;
done:
    st_writer_abort(w);
    st_reader_close(r);
    for (size_t k = 0; k < n_all; k++) bcol_free(&all[k]);
    free(all);
    free(rows);
    for (int k = 0; k < C_N; k++) st_column_free(&out[k]);
    st_column_free(&rowid);
    st_buf_free(&raw);
    st_buf_free(&txt);
    st_buf_free(&flags);
    return s;
}

/* Appends a rejects file's rows to the final rejects writer, then removes it. */
static st_status append_part(const char *path, st_writer *w, st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_reader_open(&r, path, err));
    st_column c[5];
    for (int k = 0; k < 5; k++) st_column_init(&c[k], reject_fields[k].type);
    st_status s = ST_OK;
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        for (size_t k = 0; k < 5 && s == ST_OK; k++) s = st_reader_read_block(r, ch, k, &c[k], err);
        if (s == ST_OK) s = st_writer_write(w, c, 0, c[0].n_rows, err);
    }
    for (int k = 0; k < 5; k++) st_column_free(&c[k]);
    st_reader_close(r);
    unlink(path);
    return s;
}

/* ---- the step: items, on threads and ranks ---- */

enum { MAX_WORKERS = 16 };

/* The transaction tables' items: a table's parts (a partitioned bronze
 * table: silver gets a part per bronze part) or the table, in
 * stg_rejects order. */
typedef struct stage_plan {
    st_run_ctx *ctx;
    st_stage_item *items;
    st_stage_result *res;
    int32_t *owner;
    st_status *status;
    st_error *errs;
    size_t n, next;
    size_t first[3];          /* table t's items are [first[t], first[t + 1]) */
    bool parted[2];
    bool remote;              /* items of other ranks are written there */
    pthread_mutex_t mu;
    /* the customer master, staged on the calling thread */
    uint64_t c_raw, c_staged, c_rej;
} stage_plan;

static const char *const tx_bronze[2] = {"raw_sales_quantity", "raw_free_of_charge_quantity"};
static const char *const tx_silver[2] = {"stg_sales_transactions", "stg_foc_transactions"};
static const char *const tx_qty[2] = {"quantity", "quantity_foc"};

/* Item of part p (-1: the whole table) of transaction table t. */
static st_status fill_item(stage_plan *pl, unsigned t, st_reader *r, int p, uint64_t fp, st_stage_item *it,
                           st_error *err)
{
    st_run_ctx *ctx = pl->ctx;
    const st_run_opts *o = ctx->o;
    if (p < 0) {
        st_warehouse_input_path(ctx->wh, "bronze", tx_bronze[t], it->in);
        ST_TRY(st_warehouse_stage_path(ctx->wh, "silver", tx_silver[t], it->out, err));
    } else {
        snprintf(it->in, sizeof it->in, "%s", st_reader_part_path(r, (size_t)p));
        ST_TRY(st_table_part_path(ctx, "silver", tx_silver[t], (size_t)p, it->out, sizeof it->out, err));
    }
    ST_TRY(part_path(ctx, tx_bronze[t], p, it->rejects, err));
    snprintf(it->bronze, sizeof it->bronze, "%s", tx_bronze[t]);
    snprintf(it->silver, sizeof it->silver, "%s", tx_silver[t]);
    snprintf(it->qty_name, sizeof it->qty_name, "%s", tx_qty[t]);
    it->fp = fp;
    it->year_min = o->year_min;
    it->year_max = o->year_max;
    it->qty_min = o->qty_min;
    it->qty_max = o->qty_max;
    return ST_OK;
}

static st_status plan_items(stage_plan *pl, uint64_t fp, st_error *err)
{
    st_reader *r[2] = {0};
    size_t parts[2], n = 0;
    st_status s = ST_OK;
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) {
        s = st_table_open(pl->ctx, "bronze", tx_bronze[t], &r[t], err);
        parts[t] = s == ST_OK ? st_reader_n_parts(r[t]) : 0;
        pl->parted[t] = parts[t] > 0;
        n += parts[t] ? parts[t] : 1;
    }
    pl->items = calloc(n, sizeof *pl->items);
    pl->res = calloc(n, sizeof *pl->res);
    pl->owner = calloc(n, sizeof *pl->owner);
    pl->status = calloc(n, sizeof *pl->status);
    pl->errs = calloc(n, sizeof *pl->errs);
    if (s == ST_OK && !(pl->items && pl->res && pl->owner && pl->status && pl->errs))
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (unsigned t = 0; t < 2 && s == ST_OK; t++) {
        pl->first[t] = pl->n;
        for (size_t p = 0; p < (parts[t] ? parts[t] : 1) && s == ST_OK; p++) {
            pl->owner[pl->n] = parts[t] ? st_parts_dist_owner(p) : 0;
            s = fill_item(pl, t, r[t], parts[t] ? (int)p : -1, fp, &pl->items[pl->n++], err);
        }
    }
    pl->first[2] = pl->n;
    st_reader_close(r[0]);
    st_reader_close(r[1]);
    return s;
}

static void plan_free(stage_plan *pl)
{
    free(pl->items);
    free(pl->res);
    free(pl->owner);
    free(pl->status);
    free(pl->errs);
}

static void item_worker(stage_plan *pl)
{
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        size_t i = pl->next;
        while (i < pl->n && pl->remote && pl->owner[i] != 0) i++;
        pl->next = i + 1;
        pthread_mutex_unlock(&pl->mu);
        if (i >= pl->n) break;
        pl->status[i] = st_stage_item_write(&pl->items[i], &pl->res[i], pl->ctx, &pl->errs[i]);
    }
}

/* Stages the customer master into its rejects file (the stg_rejects part
 * that goes first); counts in pl. */
static st_status customers(stage_plan *pl, uint64_t fp, st_error *err)
{
    rejects rj;
    char path[ST_PATH_MAX];
    st_status s = part_path(pl->ctx, "raw_customer", -1, path, err);
    if (s == ST_OK) s = rejects_open(path, &rj, err);
    else memset(&rj, 0, sizeof rj);
    if (s == ST_OK) s = stage_customers(pl->ctx, fp, &pl->c_raw, &pl->c_staged, &rj, err);
    if (s == ST_OK) s = rejects_flush(&rj, err);
    pl->c_rej = rj.n;
    if (s == ST_OK) {
        s = st_writer_close(rj.w, err);
        rj.w = NULL;
    }
    rejects_free(&rj);
    return s;
}

typedef struct stage_run {
    stage_plan *pl;
    uint64_t fp;
    st_status s; /* the customers' */
    st_error err;
} stage_run;

/* A task of the run's pool: task 0 stages the customers first; every
 * task then takes items until none is left. */
static void stage_task(void *arg, size_t task, int worker)
{
    (void)worker;
    stage_run *r = arg;
    if (task == 0) r->s = customers(r->pl, r->fp, &r->err);
    item_worker(r->pl);
}

/* This rank's items on the run's workers while one of them stages the
 * customers; the first failure (customers, then items in order). */
static st_status run_local(stage_plan *pl, uint64_t fp, st_error *err)
{
    pthread_mutex_init(&pl->mu, NULL);
    /* the customers' task and a task per item, up to --threads and MAX_WORKERS */
    size_t n_tasks = pl->ctx->threads > 1 ? (size_t)pl->ctx->threads : 1;
    if (n_tasks > MAX_WORKERS) n_tasks = MAX_WORKERS;
    if (n_tasks > pl->n + 1) n_tasks = pl->n + 1;
    stage_run r = {pl, fp, ST_OK, {0}};
    st_pool_run(pl->ctx->pool, n_tasks, stage_task, &r);
    pthread_mutex_destroy(&pl->mu);
    st_status s = r.s;
    if (s != ST_OK && err) *err = r.err;
    for (size_t i = 0; i < pl->n && s == ST_OK; i++)
        if (pl->status[i] != ST_OK) {
            if (err) *err = pl->errs[i];
            s = pl->status[i];
        }
    return s;
}

typedef struct local_arg {
    stage_plan *pl;
    uint64_t fp;
} local_arg;

static st_status run_local_task(void *arg, st_error *err)
{
    local_arg *a = arg;
    return run_local(a->pl, a->fp, err);
}

/* Checks bronze rows = staged + rejected for each table, seals the
 * partitioned silver tables with the step's fingerprint. */
static st_status finish_tables(stage_plan *pl, uint64_t fp, st_error *err)
{
    if (pl->c_raw != pl->c_staged + pl->c_rej)
        return st_error_set(err, ST_ERR_INTERNAL, "invariant broken for raw_customer: %llu raw != %llu staged + %llu rejected",
                            (unsigned long long)pl->c_raw, (unsigned long long)pl->c_staged,
                            (unsigned long long)pl->c_rej);
    for (unsigned t = 0; t < 2; t++) {
        uint64_t raw = 0, staged = 0, rej = 0;
        for (size_t i = pl->first[t]; i < pl->first[t + 1]; i++) {
            raw += pl->res[i].raw_rows;
            staged += pl->res[i].staged;
            rej += pl->res[i].rejected;
        }
        if (raw != staged + rej)
            return st_error_set(err, ST_ERR_INTERNAL, "invariant broken for %s: %llu raw != %llu staged + %llu rejected",
                                tx_bronze[t], (unsigned long long)raw, (unsigned long long)staged,
                                (unsigned long long)rej);
        if (pl->parted[t])
            ST_TRY(st_table_seal_parts_as(pl->ctx, "silver", tx_silver[t], pl->first[t + 1] - pl->first[t], fp, err));
    }
    return ST_OK;
}

/* stg_rejects: customers, sales, FOC, each in bronze row order (a
 * table's parts in order), the waiting files removed. */
static st_status write_rejects(stage_plan *pl, uint64_t fp, st_error *err)
{
    static const char *const inputs[] = {"bronze.raw_customer", "bronze.raw_sales_quantity",
                                         "bronze.raw_free_of_charge_quantity"};
    st_writer *w = NULL;
    char path[ST_PATH_MAX];
    st_status s = st_table_create(pl->ctx, "silver", "stg_rejects", reject_fields, 5, inputs, 3, "", fp, NULL, 0, &w,
                                  err);
    if (s == ST_OK) s = part_path(pl->ctx, "raw_customer", -1, path, err);
    if (s == ST_OK) s = append_part(path, w, err);
    for (size_t i = 0; i < pl->n && s == ST_OK; i++) s = append_part(pl->items[i].rejects, w, err);
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
    st_writer_abort(w);
    return s;
}

/* The step's note: rejects, chunks passed through, and on several ranks
 * which rank wrote each silver part. */
static void stage_note(stage_plan *pl)
{
    st_step_result *cur = pl->ctx->cur;
    uint64_t rej = pl->c_rej, stored = 0, chunks = 0;
    for (size_t i = 0; i < pl->n; i++) {
        rej += pl->res[i].rejected;
        stored += pl->res[i].stored;
        chunks += pl->res[i].chunks;
    }
    size_t len = (size_t)snprintf(cur->note, sizeof cur->note, "%llu rejected, %llu of %llu chunks passed through",
                                  (unsigned long long)rej, (unsigned long long)stored, (unsigned long long)chunks);
    for (unsigned t = 0; t < 2 && pl->remote; t++) {
        for (size_t i = pl->first[t]; i < pl->first[t + 1] && len < sizeof cur->note; i++) {
            int k = snprintf(cur->note + len, sizeof cur->note - len, "%s%d",
                             i == pl->first[t] ? (t ? "; foc parts on ranks " : "; sales parts on ranks ") : ",",
                             (int)pl->res[i].rank);
            if (k < 0) break;
            len += (size_t)k;
        }
    }
}

st_status st_step_stage(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    stage_plan pl = {.ctx = ctx};
    st_status s = plan_items(&pl, fp, err);
    if (s != ST_OK) goto done;
    pl.remote = st_parts_dist_wanted() && (pl.parted[0] || pl.parted[1]);
    if (pl.remote) {
        local_arg a = {&pl, fp};
        s = st_parts_dist_run(ST_TASK_STAGE, pl.items, pl.owner, pl.n, ctx->threads, pl.res, run_local_task, &a, err);
    } else {
        s = run_local(&pl, fp, err);
    }
    if (s == ST_OK) s = finish_tables(&pl, fp, err);
    if (s == ST_OK) s = write_rejects(&pl, fp, err);
    if (s != ST_OK) goto done;
    ctx->cur->rows_in = pl.c_raw;
    ctx->cur->rows_out = pl.c_staged + pl.c_rej;
    for (size_t i = 0; i < pl.n; i++) {
        ctx->cur->rows_in += pl.res[i].raw_rows;
        ctx->cur->rows_out += pl.res[i].staged + pl.res[i].rejected;
    }
    stage_note(&pl);
done:
    plan_free(&pl);
    return s;
}
