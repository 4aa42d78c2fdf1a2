/*
 * agg_columns.c: st_features results appended straight to st_columns in
 * the shape docs/TABLES.md gives the gold tables, so the pipeline's
 * writers take them chunk by chunk without re-deriving year and month or
 * looking up material strings themselves.
 *
 * Unified rows are produced in batches of UNI_BATCH through
 * st_features_unified_next() into stack arrays, then written into the
 * columns in place (room reserved once per batch); nothing here
 * holds state between calls beyond the caller's cursor.
 */
#include <inttypes.h>
#include <string.h>

#include "groupby_internal.h"

static const st_type analytics_types[ST_ANALYTICS_N_COLS] = {
    ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_I64,
    ST_TYPE_F64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_F64, ST_TYPE_I64};

static const st_type unified_types[ST_UNIFIED_N_COLS] = {
    ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_STR,
    ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_I64};

static st_status check_types(const st_column *cols, const st_type *want, size_t n,
                             const char *table, st_error *err)
{
    for (size_t c = 0; c < n; c++)
        if (cols[c].type != want[c])
            return st_error_set(err, ST_ERR_INVALID, "%s: column %zu is %s, expected %s", table, c,
                                st_type_name(cols[c].type), st_type_name(want[c]));
    return ST_OK;
}

st_status st_agg_append_analytics(st_agg_get_fn get, const void *obj, size_t total, size_t first,
                                  size_t n, st_column *cols, st_error *err)
{
    ST_TRY(check_types(cols, analytics_types, ST_ANALYTICS_N_COLS, "int_customer_analytics", err));
    if (first > total) first = total;
    if (n > total - first) n = total - first;
    for (size_t c = 0; c < ST_ANALYTICS_N_COLS; c++) {
        if (st_column_reserve(&cols[c], cols[c].n_rows + n, 0) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "int_customer_analytics: out of memory");
    }
    for (size_t i = first; i < first + n; i++) {
        st_feature_row r;
        get(obj, i, &r);
        st_status s = ST_OK;
        if (s == ST_OK) s = st_column_push_i64(&cols[0], r.customer_id);
        if (s == ST_OK) s = st_column_push_i32(&cols[1], r.period_key / 100);
        if (s == ST_OK) s = st_column_push_i32(&cols[2], r.period_key % 100);
        if (s == ST_OK) s = st_column_push_i32(&cols[3], r.period_key);
        if (s == ST_OK) s = st_column_push_i64(&cols[4], r.total_sold_quantity);
        if (s == ST_OK) s = st_column_push_i64(&cols[5], r.total_foc_quantity);
        if (s == ST_OK) s = st_column_push_f64(&cols[6], r.foc_ratio);
        if (s == ST_OK) s = st_column_push_i64(&cols[7], r.total_sold_transactions);
        if (s == ST_OK) s = st_column_push_i64(&cols[8], r.total_foc_transactions);
        if (s == ST_OK)
            s = r.has_median_sold ? st_column_push_f64(&cols[9], r.median_sold_order_size)
                                  : st_column_push_null(&cols[9]);
        if (s == ST_OK)
            s = r.has_median_foc ? st_column_push_f64(&cols[10], r.median_foc_order_size)
                                 : st_column_push_null(&cols[10]);
        if (s == ST_OK) s = st_column_push_i64(&cols[11], r.unique_materials);
        if (s != ST_OK)
            return st_error_set(err, s, "int_customer_analytics: appending group %zu failed", i);
    }
    return ST_OK;
}

static void features_get(const void *obj, size_t i, st_feature_row *row)
{
    st_features_get(obj, i, row);
}

st_status st_features_append_analytics(const st_features *fx, size_t first, size_t n,
                                       st_column *cols, st_error *err)
{
    if (!fx->finished || fx->failed)
        return st_error_set(err, ST_ERR_INVALID, "int_customer_analytics: features not finished");
    return st_agg_append_analytics(features_get, fx, fx->n_groups, first, n, cols, err);
}

/* Appends rows [0, got) of batch b to the nine unified columns: room
 * reserved once per batch, values written in place (the columns are
 * non-nullable: a validity bitmap, if one exists, gets the rows marked). */
static st_status put_unified_batch(const st_unified_batch *b, size_t got, const st_dict *dict, uint32_t n_codes,
                                   st_column *cols, st_error *err)
{
    size_t bytes = cols[4].n_bytes;
    for (size_t i = 0; i < got; i++) {
        if (b->material[i] >= n_codes)
            return st_error_set(err, ST_ERR_INVALID,
                                "int_transactions_unified: material code %" PRIu32
                                " not in the dictionary (%" PRIu32 " strings)",
                                b->material[i], n_codes);
        size_t len;
        (void)st_dict_str(dict, b->material[i], &len);
        bytes += len;
    }
    size_t at = cols[0].n_rows;
    for (int k = 0; k < ST_UNIFIED_N_COLS; k++)
        if (cols[k].n_rows != at)
            return st_error_set(err, ST_ERR_INVALID, "int_transactions_unified: columns of unequal length");
        else if (st_column_reserve(&cols[k], at + got, bytes) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "int_transactions_unified: appending a row failed");
    int64_t *c0 = (int64_t *)cols[0].data + at;
    int32_t *y = (int32_t *)cols[1].data + at, *m = (int32_t *)cols[2].data + at, *p = (int32_t *)cols[3].data + at;
    int64_t *q[4] = {(int64_t *)cols[5].data + at, (int64_t *)cols[6].data + at, (int64_t *)cols[7].data + at,
                     (int64_t *)cols[8].data + at};
    const int64_t *src[4] = {b->sold_qty, b->foc_qty, b->sold_lines, b->foc_lines};
    st_column *sc = &cols[4];
    for (size_t i = 0; i < got; i++) {
        c0[i] = b->customer_id[i];
        y[i] = b->period_key[i] / 100;
        m[i] = b->period_key[i] % 100;
        p[i] = b->period_key[i];
    }
    for (size_t i = 0; i < got; i++) {
        size_t len;
        const char *str = st_dict_str(dict, b->material[i], &len);
        if (len) memcpy(sc->bytes + sc->n_bytes, str, len);
        sc->n_bytes += len;
        sc->offsets[at + i + 1] = (uint64_t)sc->n_bytes;
    }
    for (int k = 0; k < 4; k++) memcpy(q[k], src[k], got * sizeof *q[k]);
    for (int k = 0; k < ST_UNIFIED_N_COLS; k++) {
        for (size_t i = at; cols[k].validity && i < at + got; i++)
            cols[k].validity[i >> 6] |= (uint64_t)1 << (i & 63);
        cols[k].n_rows = at + got;
    }
    return ST_OK;
}

st_status st_agg_append_unified(st_agg_next_fn next, const void *obj, st_unified_cursor *cur,
                                const st_dict *dict, size_t cap, st_column *cols, size_t *n_out,
                                st_error *err)
{
    enum { UNI_BATCH = 1024 };
    int64_t cust[UNI_BATCH], sq[UNI_BATCH], fq[UNI_BATCH], sl[UNI_BATCH], fl[UNI_BATCH];
    int32_t pk[UNI_BATCH];
    uint32_t mat[UNI_BATCH];
    const st_unified_batch b = {cust, pk, mat, sq, fq, sl, fl};
    *n_out = 0;
    ST_TRY(check_types(cols, unified_types, ST_UNIFIED_N_COLS, "int_transactions_unified", err));
    uint32_t n_codes = st_dict_size(dict);
    while (*n_out < cap) {
        size_t want = cap - *n_out < UNI_BATCH ? cap - *n_out : UNI_BATCH, got;
        ST_TRY(next(obj, cur, &b, want, &got, err));
        if (got == 0) break;
        ST_TRY(put_unified_batch(&b, got, dict, n_codes, cols, err));
        *n_out += got;
    }
    return ST_OK;
}

static st_status features_next(const void *obj, st_unified_cursor *cur, const st_unified_batch *out,
                               size_t cap, size_t *n_out, st_error *err)
{
    return st_features_unified_next(obj, cur, out, cap, n_out, err);
}

st_status st_features_append_unified(const st_features *fx, st_unified_cursor *cur,
                                     const st_dict *dict, size_t cap, st_column *cols,
                                     size_t *n_out, st_error *err)
{
    return st_agg_append_unified(features_next, fx, cur, dict, cap, cols, n_out, err);
}
