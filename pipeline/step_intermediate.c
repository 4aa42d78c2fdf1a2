/*
 * step_intermediate.c: silver -> gold, on the engine's group-by kernels.
 *
 *   int_customer_analytics    one row per active (customer, period): features
 *   int_transactions_unified  one row per (customer, period, material)
 *
 * The silver transaction files are streamed chunk by chunk into
 * st_features (engine/agg.c): material codes come from one st_dict
 * (codes ranked in bytewise string order, so the unified table needs no
 * string sort), keys are dense customer x period indices whose ranges are
 * read from the files' zone maps before any value is decoded, and the
 * kernels group by a counting sort, compute exact medians by selection
 * and run on --threads threads with results independent of the thread
 * count. Sums are checked: an int64 overflow is an error, never a wrap.
 */
#include "pipeline_internal.h"

#include <stdlib.h>
#include <string.h>

#include "strata/agg.h"

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

/* Key ranges of a silver table from its zone maps. */
static st_status table_dims(st_run_ctx *ctx, const char *table, st_feature_dims *d, bool *any, st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
    size_t ic, ip;
    st_status s = st_table_col(r, table, "customer_id", &ic, err);
    if (s == ST_OK) s = st_table_col(r, table, "period_key", &ip, err);
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        st_block_info bc, bp;
        if ((s = st_reader_block_info(r, c, ic, &bc)) != ST_OK || (s = st_reader_block_info(r, c, ip, &bp)) != ST_OK) break;
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

/* Streams one silver table into the kernels. */
static st_status add_table(st_run_ctx *ctx, const char *table, bool foc, st_features *fx, st_dict *dict, st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
    size_t ic, ip, im, iq;
    st_status s = st_table_col(r, table, "customer_id", &ic, err);
    if (s == ST_OK) s = st_table_col(r, table, "period_key", &ip, err);
    if (s == ST_OK) s = st_table_col(r, table, "material_code", &im, err);
    if (s == ST_OK) s = st_table_col(r, table, "quantity", &iq, err);
    if (s == ST_OK && (st_reader_field(r, ic)->type != ST_TYPE_I64 || st_reader_field(r, ip)->type != ST_TYPE_I32 ||
                       st_reader_field(r, im)->type != ST_TYPE_STR || st_reader_field(r, iq)->type != ST_TYPE_I64))
        s = st_error_set(err, ST_ERR_SCHEMA, "silver.%s: unexpected column types", table);
    st_column c, p, m, q;
    st_column_init(&c, ST_TYPE_I64);
    st_column_init(&p, ST_TYPE_I32);
    st_column_init(&m, ST_TYPE_STR);
    st_column_init(&q, ST_TYPE_I64);
    uint32_t *codes = NULL;
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        s = st_reader_read_block(r, ch, ic, &c, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, ip, &p, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, im, &m, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, iq, &q, err);
        if (s != ST_OK) break;
        size_t n = c.n_rows;
        uint32_t *nc = realloc(codes, (n ? n : 1) * sizeof *codes);
        if (!nc) {
            s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        codes = nc;
        if ((s = st_dict_add(dict, &m, codes, "material_code", err)) != ST_OK) break;
        s = foc ? st_features_add_foc(fx, st_column_i64(&c), st_column_i32(&p), codes, st_column_i64(&q), n, err)
                : st_features_add_sales(fx, st_column_i64(&c), st_column_i32(&p), codes, st_column_i64(&q), n, err);
        ctx->cur->rows_in += n;
    }
    free(codes);
    st_column_free(&c);
    st_column_free(&p);
    st_column_free(&m);
    st_column_free(&q);
    st_reader_close(r);
    return s;
}

st_status st_step_intermediate(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    st_features *fx = NULL;
    st_dict *dict = NULL;
    st_writer *wa = NULL, *wu = NULL;
    st_column a[A_N], u[U_N];
    for (int k = 0; k < A_N; k++) st_column_init(&a[k], an_fields[k].type);
    for (int k = 0; k < U_N; k++) st_column_init(&u[k], un_fields[k].type);
    static const char *const inputs[] = {"silver.stg_sales_transactions", "silver.stg_foc_transactions"};
    st_feature_dims dims = {1, 1, 202001, 202001};
    bool any = false;
    st_status s = table_dims(ctx, "stg_sales_transactions", &dims, &any, err);
    if (s == ST_OK) s = table_dims(ctx, "stg_foc_transactions", &dims, &any, err);
    if (s == ST_OK) s = st_features_create(&fx, &dims, err);
    if (s == ST_OK) s = st_dict_create(&dict, err);
    if (s == ST_OK) s = add_table(ctx, "stg_sales_transactions", false, fx, dict, err);
    if (s == ST_OK) s = add_table(ctx, "stg_foc_transactions", true, fx, dict, err);
    if (s == ST_OK) s = st_dict_finish(dict, err);
    if (s == ST_OK)
        s = st_features_finish(fx, st_dict_rank(dict), st_dict_size(dict), (unsigned)ctx->threads, err);
    if (s != ST_OK) goto done;

    /* int_customer_analytics (engine/agg_columns.c builds the columns) */
    if ((s = st_features_append_analytics(fx, 0, st_features_n_groups(fx), a, err)) != ST_OK) goto done;

    /* int_transactions_unified, streamed in chunks */
    if ((s = st_table_create(ctx, "gold", "int_transactions_unified", un_fields, U_N, inputs, 2, "", fp, NULL, 0, &wu,
                             err)) != ST_OK)
        goto done;
    st_unified_cursor cur;
    memset(&cur, 0, sizeof cur);
    for (;;) {
        size_t got = 0;
        for (int k = 0; k < U_N; k++) st_column_reset(&u[k]);
        if ((s = st_features_append_unified(fx, &cur, dict, ST_CHUNK_ROWS, u, &got, err)) != ST_OK) goto done;
        if (got == 0) break;
        if ((s = st_writer_write(wu, u, 0, got, err)) != ST_OK) goto done;
    }
    uint64_t n_unified = st_writer_n_rows(wu);
    s = st_writer_close(wu, err);
    wu = NULL;
    if (s != ST_OK) goto done;
    if ((s = st_table_create(ctx, "gold", "int_customer_analytics", an_fields, A_N, inputs, 2, "", fp, NULL, 0, &wa,
                             err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(wa, a, 0, a[0].n_rows, err)) != ST_OK) goto done;
    s = st_writer_close(wa, err);
    wa = NULL;
    ctx->cur->rows_out = a[0].n_rows + n_unified;
    snprintf(ctx->cur->note, sizeof ctx->cur->note, "%zu customer-periods, %llu customer-period-materials",
             a[0].n_rows, (unsigned long long)n_unified);
done:
    st_writer_abort(wa);
    st_writer_abort(wu);
    st_features_free(fx);
    st_dict_free(dict);
    for (int k = 0; k < A_N; k++) st_column_free(&a[k]);
    for (int k = 0; k < U_N; k++) st_column_free(&u[k]);
    return s;
}
