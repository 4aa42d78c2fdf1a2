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
 * rejected rows stream to a per-table part file, and the parts are
 * concatenated into stg_rejects in table order (customers, sales, FOC) so
 * the output does not depend on which worker finished first. Inside a
 * transaction table rejects are in rowid order; inside the customer master
 * the bad-id rows come first (rowid order), then the duplicates (by id,
 * then rowid). Memory is bounded by the chunk size for transactions;
 * the customer master is held whole (it is small by nature: one row per
 * customer).
 *
 * Invariant, checked here on every run: for each source table, bronze
 * rows = staged rows + rejected rows; a mismatch is ST_ERR_INTERNAL.
 */
#include "pipeline_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clean_internal.h"
#include "strata/cast.h"

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

static st_status part_path(st_run_ctx *ctx, const char *bronze, char *buf, st_error *err)
{
    char p[ST_PATH_MAX];
    ST_TRY(st_warehouse_stage_path(ctx->wh, "silver", "x", p, err));
    char *slash = strrchr(p, '/');
    *slash = '\0';
    if (snprintf(buf, ST_PATH_MAX, "%s/.rejects_%s.part", p, bronze) >= ST_PATH_MAX)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    return ST_OK;
}

static st_status rejects_open(st_run_ctx *ctx, const char *bronze, rejects *rj, st_error *err)
{
    memset(rj, 0, sizeof *rj);
    for (int k = 0; k < 5; k++) st_column_init(&rj->c[k], reject_fields[k].type);
    char path[ST_PATH_MAX];
    ST_TRY(part_path(ctx, bronze, path, err));
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

typedef struct tx_job {
    st_run_ctx *ctx;
    const char *bronze, *silver, *qty_name;
    uint64_t fp;
    uint64_t raw_rows, staged, rejected;
    st_status status;
    st_error err;
} tx_job;

enum { T_ID, T_CUST, T_YEAR, T_MONTH, T_PK, T_MAT, T_QTY, T_N };

static st_status stage_tx(tx_job *j)
{
    st_run_ctx *ctx = j->ctx;
    const st_run_opts *o = ctx->o;
    st_error *err = &j->err;
    st_reader *r = NULL;
    st_writer *w = NULL;
    bcol *all = NULL;
    size_t n_all = 0;
    rejects rj;
    memset(&rj, 0, sizeof rj);
    st_column out[T_N], rowid;
    memset(out, 0, sizeof out);
    st_column_init(&rowid, ST_TYPE_I64);
    st_buf raw;
    st_buf_init(&raw);
    st_buf txt;
    st_buf_init(&txt);
    const st_field fields[T_N] = {
        {"transaction_id", ST_TYPE_I64, false, "source rowid of the line"},
        {"customer_id", ST_TYPE_I64, false, "customer id (positive)"},
        {"year", ST_TYPE_I32, false, "calendar year"},
        {"month", ST_TYPE_I32, false, "month 1..12"},
        {"period_key", ST_TYPE_I32, false, "year*100+month"},
        {"material_code", ST_TYPE_STR, false, "material code, trimmed"},
        {"quantity", ST_TYPE_I64, false, "quantity of the line"},
    };
    for (int k = 0; k < T_N; k++) st_column_init(&out[k], fields[k].type);

    st_status s = st_table_open(ctx, "bronze", j->bronze, &r, err);
    if (s != ST_OK) goto done;
    size_t i_rowid;
    if ((s = st_table_col(r, j->bronze, "_rowid", &i_rowid, err)) != ST_OK) goto done;
    /* every source column, required ones first in check order */
    size_t nf = st_reader_n_fields(r);
    n_all = (nf - 1) / 3;
    all = calloc(n_all ? n_all : 1, sizeof *all);
    if (!all) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *req[5] = {"customer_id", "year", "month", "material_code", j->qty_name};
    int req_at[5];
    for (size_t k = 0; k < n_all; k++) {
        const char *name = st_reader_field(r, 1 + 3 * k)->name;
        if ((s = bcol_find(r, j->bronze, name, &all[k], err)) != ST_OK) goto done;
    }
    for (int q = 0; q < 5; q++) {
        req_at[q] = -1;
        for (size_t k = 0; k < n_all; k++)
            if (!strcmp(all[k].name, req[q])) req_at[q] = (int)k;
        if (req_at[q] < 0) {
            s = st_error_set(err, ST_ERR_SCHEMA, "bronze table %s has no column '%s'", j->bronze, req[q]);
            goto done;
        }
    }
    char input[128];
    snprintf(input, sizeof input, "bronze.%s", j->bronze);
    const char *inputs[1] = {input};
    char params[256];
    snprintf(params, sizeof params, "year=%lld..%lld;quantity=%lld..%lld", (long long)o->year_min,
             (long long)o->year_max, (long long)o->qty_min, (long long)o->qty_max);
    if ((s = st_table_create(ctx, "silver", j->silver, fields, T_N, inputs, 1, params, j->fp, NULL, 0, &w, err)) !=
        ST_OK)
        goto done;
    if ((s = rejects_open(ctx, j->bronze, &rj, err)) != ST_OK) goto done;

    j->raw_rows = st_reader_n_rows(r);
    st_progress_expect(ctx, j->raw_rows);
    size_t n_chunks = st_reader_n_chunks(r);
    for (size_t c = 0; c < n_chunks && s == ST_OK; c++) {
        if ((s = st_reader_read_block(r, c, i_rowid, &rowid, err)) != ST_OK) break;
        for (size_t k = 0; k < n_all && s == ST_OK; k++) s = bcol_read(r, c, &all[k], err);
        if (s != ST_OK) break;
        for (int k = 0; k < T_N; k++) st_column_reset(&out[k]);
        size_t n = rowid.n_rows;
        const int64_t *rid = st_column_i64(&rowid);
        for (size_t i = 0; i < n && s == ST_OK; i++) {
            const char *reason = NULL;
            int bad = -1;
            int64_t cust = 0, year = 0, month = 0, qty = 0;
            const char *mat = NULL;
            size_t mat_len = 0;
            st_value v = bval(&all[req_at[0]], i);
            if (st_cast_to_i64(&v, &cust) != ST_CAST_OK || cust <= 0) reason = "bad_customer_id", bad = 0;
            if (!reason) {
                v = bval(&all[req_at[1]], i);
                st_cast_result cr = st_cast_to_i64(&v, &year);
                if (cr == ST_CAST_OUT_OF_RANGE) reason = "year_out_of_range", bad = 1;
                else if (cr != ST_CAST_OK) reason = "bad_year", bad = 1;
                else if (year < o->year_min || year > o->year_max) reason = "year_out_of_range", bad = 1;
            }
            if (!reason) {
                v = bval(&all[req_at[2]], i);
                if (st_cast_to_i64(&v, &month) != ST_CAST_OK || month < 1 || month > 12) reason = "bad_month", bad = 2;
            }
            if (!reason) {
                v = bval(&all[req_at[3]], i);
                if (to_text(&v, &txt) != ST_CAST_OK) reason = "bad_material_code", bad = 3;
                else {
                    mat = txt.data;
                    mat_len = txt.len;
                }
            }
            if (!reason) {
                v = bval(&all[req_at[4]], i);
                st_cast_result cr = st_cast_to_i64(&v, &qty);
                if (cr == ST_CAST_OUT_OF_RANGE) reason = "quantity_out_of_range", bad = 4;
                else if (cr != ST_CAST_OK) reason = "bad_quantity", bad = 4;
                else if (qty < o->qty_min || qty > o->qty_max) reason = "quantity_out_of_range", bad = 4;
            }
            if (reason) {
                render_row(&raw, all, n_all, i);
                s = reject_push(&rj, j->bronze, rid[i], reason, all[req_at[bad]].name, &raw);
                if (s == ST_OK && rj.c[0].n_rows >= ST_CHUNK_ROWS) s = rejects_flush(&rj, err);
                continue;
            }
            s = st_column_push_i64(&out[T_ID], rid[i]);
            if (s == ST_OK) s = st_column_push_i64(&out[T_CUST], cust);
            if (s == ST_OK) s = st_column_push_i32(&out[T_YEAR], (int32_t)year);
            if (s == ST_OK) s = st_column_push_i32(&out[T_MONTH], (int32_t)month);
            if (s == ST_OK) s = st_column_push_i32(&out[T_PK], (int32_t)(year * 100 + month));
            if (s == ST_OK) s = st_column_push_str(&out[T_MAT], mat, mat_len);
            if (s == ST_OK) s = st_column_push_i64(&out[T_QTY], qty);
        }
        if (s != ST_OK) {
            if (err->code == ST_OK) st_error_set(err, s, "out of memory staging %s", j->bronze);
            break;
        }
        if (out[0].n_rows) s = st_writer_write(w, out, 0, out[0].n_rows, err);
        j->staged += out[0].n_rows;
        st_progress_add(ctx, n);
    }
    if (s == ST_OK) s = rejects_flush(&rj, err);
    if (s != ST_OK) goto done;
    j->rejected = rj.n;
    s = st_writer_close(w, err);
    w = NULL;
    if (s == ST_OK) {
        s = st_writer_close(rj.w, err);
        rj.w = NULL;
    }
done:
    st_writer_abort(w);
    rejects_free(&rj);
    st_reader_close(r);
    for (size_t k = 0; k < n_all; k++) bcol_free(&all[k]);
    free(all);
    for (int k = 0; k < T_N; k++) st_column_free(&out[k]);
    st_column_free(&rowid);
    st_buf_free(&raw);
    st_buf_free(&txt);
    if (s != ST_OK && err->code == ST_OK) st_error_set(err, s, "staging %s failed", j->bronze);
    return s;
}

static void *tx_worker(void *arg)
{
    tx_job *j = arg;
    j->status = stage_tx(j);
    return NULL;
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
        st_buf_reset(&flags);
        s = st_column_push_i64(&out[C_ID], rows[q].id);
        /* plain text fields */
        static const int text_fields[] = {C_FIRST, C_LAST, C_COMPANY, C_ADDRESS, C_CITY, C_STATE, C_POSTAL, C_PHONE, C_FAX};
        for (size_t t = 0; t < sizeof text_fields / sizeof text_fields[0] && s == ST_OK; t++) {
            int f = text_fields[t];
            if (at[f] < 0) {
                s = st_column_push_null(&out[f]);
                continue;
            }
            st_value v = bval(&all[at[f]], i);
            st_cast_result cr = to_text(&v, &txt);
            if (cr == ST_CAST_OK) s = st_column_push_str(&out[f], txt.data, txt.len);
            else {
                if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(&flags, cust_fields[f].name);
                s = st_column_push_null(&out[f]);
            }
        }
        /* full name */
        if (s == ST_OK) {
            st_buf_reset(&txt);
            if (st_column_valid(&out[C_FIRST], out[C_FIRST].n_rows - 1)) {
                size_t l;
                const char *p = st_column_str(&out[C_FIRST], out[C_FIRST].n_rows - 1, &l);
                st_buf_append(&txt, p, l);
            }
            if (st_column_valid(&out[C_LAST], out[C_LAST].n_rows - 1)) {
                size_t l;
                const char *p = st_column_str(&out[C_LAST], out[C_LAST].n_rows - 1, &l);
                if (txt.len) st_buf_puts(&txt, " ");
                st_buf_append(&txt, p, l);
            }
            s = txt.len ? st_column_push_str(&out[C_FULL], txt.data, txt.len) : st_column_push_null(&out[C_FULL]);
        }
        /* country */
        if (s == ST_OK) {
            st_buf_reset(&txt);
            st_cast_result cr = at[C_COUNTRY] < 0 ? ST_CAST_NULL : ST_CAST_OK;
            if (cr == ST_CAST_OK) {
                st_value v = bval(&all[at[C_COUNTRY]], i);
                cr = to_text(&v, &txt);
            }
            if (cr == ST_CAST_OK) {
                char c[256];
                size_t l = st_clean_country(txt.data, txt.len, c, sizeof c);
                s = st_column_push_str(&out[C_COUNTRY], c, l);
            } else {
                if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(&flags, "country");
                s = st_column_push_null(&out[C_COUNTRY]);
            }
        }
        /* e-mail */
        if (s == ST_OK) {
            st_buf_reset(&txt);
            st_cast_result cr = at[C_EMAIL] < 0 ? ST_CAST_NULL : ST_CAST_OK;
            if (cr == ST_CAST_OK) {
                st_value v = bval(&all[at[C_EMAIL]], i);
                cr = to_text(&v, &txt);
            }
            bool valid = false;
            if (cr == ST_CAST_OK) {
                char e[512];
                size_t l = st_clean_email(txt.data, txt.len, e, sizeof e, &valid);
                s = st_column_push_str(&out[C_EMAIL], e, l);
                if (!valid) add_flag(&flags, "email_invalid");
            } else {
                if (cr != ST_CAST_NULL && cr != ST_CAST_EMPTY) add_flag(&flags, "email");
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
                if (v.cls != 0) add_flag(&flags, "support_rep_id");
                s = st_column_push_null(&out[C_REP]);
            }
        }
        if (s == ST_OK) s = st_column_push_i64(&out[C_ROWID], rid[i]);
        if (s == ST_OK) s = st_column_push_str(&out[C_FLAGS], flags.data ? flags.data : "", flags.len);
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

/* Appends a part file's rows to the final rejects writer, then removes it. */
static st_status append_part(st_run_ctx *ctx, const char *bronze, st_writer *w, st_error *err)
{
    char path[ST_PATH_MAX];
    ST_TRY(part_path(ctx, bronze, path, err));
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

st_status st_step_stage(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    tx_job jobs[2] = {
        {.ctx = ctx, .bronze = "raw_sales_quantity", .silver = "stg_sales_transactions", .qty_name = "quantity", .fp = fp},
        {.ctx = ctx, .bronze = "raw_free_of_charge_quantity", .silver = "stg_foc_transactions",
         .qty_name = "quantity_foc", .fp = fp},
    };
    pthread_t th;
    bool threaded = ctx->threads > 1 && pthread_create(&th, NULL, tx_worker, &jobs[1]) == 0;
    tx_worker(&jobs[0]);
    if (!threaded) tx_worker(&jobs[1]);
    /* customers on this thread meanwhile */
    rejects rj;
    st_writer *w = NULL;
    uint64_t c_raw = 0, c_staged = 0;
    st_status s = rejects_open(ctx, "raw_customer", &rj, err);
    if (s == ST_OK) s = stage_customers(ctx, fp, &c_raw, &c_staged, &rj, err);
    if (s == ST_OK) s = rejects_flush(&rj, err);
    uint64_t c_rej = rj.n;
    if (s == ST_OK) {
        s = st_writer_close(rj.w, err);
        rj.w = NULL;
    }
    rejects_free(&rj);
    if (threaded) pthread_join(th, NULL);
    for (int k = 0; k < 2 && s == ST_OK; k++)
        if (jobs[k].status != ST_OK) {
            if (err) *err = jobs[k].err;
            s = jobs[k].status;
        }
    if (s != ST_OK) return s;
    /* the invariant */
    if (c_raw != c_staged + c_rej)
        return st_error_set(err, ST_ERR_INTERNAL, "invariant broken for raw_customer: %llu raw != %llu staged + %llu rejected",
                            (unsigned long long)c_raw, (unsigned long long)c_staged, (unsigned long long)c_rej);
    for (int k = 0; k < 2; k++)
        if (jobs[k].raw_rows != jobs[k].staged + jobs[k].rejected)
            return st_error_set(err, ST_ERR_INTERNAL, "invariant broken for %s: %llu raw != %llu staged + %llu rejected",
                                jobs[k].bronze, (unsigned long long)jobs[k].raw_rows,
                                (unsigned long long)jobs[k].staged, (unsigned long long)jobs[k].rejected);
    /* stg_rejects: customers, sales, FOC, each in rowid order */
    static const char *const inputs[] = {"bronze.raw_customer", "bronze.raw_sales_quantity",
                                         "bronze.raw_free_of_charge_quantity"};
    s = st_table_create(ctx, "silver", "stg_rejects", reject_fields, 5, inputs, 3, "", fp, NULL, 0, &w, err);
    if (s == ST_OK) s = append_part(ctx, "raw_customer", w, err);
    if (s == ST_OK) s = append_part(ctx, "raw_sales_quantity", w, err);
    if (s == ST_OK) s = append_part(ctx, "raw_free_of_charge_quantity", w, err);
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
    st_writer_abort(w);
    if (s != ST_OK) return s;
    ctx->cur->rows_in = c_raw + jobs[0].raw_rows + jobs[1].raw_rows;
    ctx->cur->rows_out = c_staged + jobs[0].staged + jobs[1].staged + c_rej + jobs[0].rejected + jobs[1].rejected;
    uint64_t rej = c_rej + jobs[0].rejected + jobs[1].rejected;
    snprintf(ctx->cur->note, sizeof ctx->cur->note, "%llu rejected", (unsigned long long)rej);
    return ST_OK;
}
