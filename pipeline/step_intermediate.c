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

#include <stdlib.h>
#include <string.h>

#include "strata/agg.h"
#include "strata/partition.h"
#include "strata/spill.h"

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

/* Opens a silver transaction table and checks the four columns the step
 * reads; idx[] gets customer_id, period_key, material_code, quantity. */
static st_status open_lines(st_run_ctx *ctx, const char *table, st_reader **out, size_t idx[4], st_error *err)
{
    static const char *const names[4] = {"customer_id", "period_key", "material_code", "quantity"};
    static const st_type types[4] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_STR, ST_TYPE_I64};
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
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
        int32_t m = per[i] % 100;
        if (per[i] < d->period_key_min || per[i] > d->period_key_max || m < 1 || m > 12)
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

/* Streams one silver table, chunk by chunk, through the dictionary into
 * the sink. */
static st_status add_table(st_run_ctx *ctx, const char *table, unsigned tab, st_dict *dict, line_sink *sink,
                           st_error *err)
{
    st_reader *r = NULL;
    size_t ix[4];
    ST_TRY(open_lines(ctx, table, &r, ix, err));
    st_progress_expect(ctx, st_reader_n_rows(r));
    st_status s = ST_OK;
    st_column c, p, m, q;
    st_column_init(&c, ST_TYPE_I64);
    st_column_init(&p, ST_TYPE_I32);
    st_column_init(&m, ST_TYPE_STR);
    st_column_init(&q, ST_TYPE_I64);
    uint32_t *codes = malloc(ST_CHUNK_ROWS * sizeof *codes);
    uint32_t *local = malloc(ST_CHUNK_ROWS * sizeof *local); /* row -> block dictionary entry */
    uint32_t *map = malloc(ST_CHUNK_ROWS * sizeof *map);     /* block dictionary entry -> run code */
    uint64_t row0 = 0;
    if (!codes || !local || !map) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        s = st_reader_read_block(r, ch, ix[0], &c, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, ix[1], &p, err);
        if (s == ST_OK) s = st_reader_read_block_dict(r, ch, ix[2], &m, local, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, ix[3], &q, err);
        if (s != ST_OK) break;
        size_t n = c.n_rows;
        if (n > ST_CHUNK_ROWS) {
            s = st_error_set(err, ST_ERR_CORRUPT, "silver.%s: chunk %zu has %zu rows", table, ch, n);
            break;
        }
        /* the block's dictionary through the run's one: a few hundred
         * strings a chunk instead of one per line */
        if ((s = st_dict_add(dict, &m, map, "material_code", err)) != ST_OK) break;
        for (size_t i = 0; i < n; i++) codes[i] = map[local[i]];
        const int64_t *cust = st_column_i64(&c), *qty = st_column_i64(&q);
        const int32_t *per = st_column_i32(&p);
        if ((s = check_lines(table, row0, cust, per, n, sink->dims, err)) != ST_OK) break;
        row0 += n;
        if (sink->spill) {
            st_key_ranges_locate(sink->ranges, sink->n_ranges, cust, n, sink->part);
            s = st_spill_add(sink->spill, tab, sink->part, cust, per, codes, qty, n, err);
        } else {
            s = tab ? st_features_add_foc(sink->fx, cust, per, codes, qty, n, err)
                    : st_features_add_sales(sink->fx, cust, per, codes, qty, n, err);
        }
        ctx->cur->rows_in += n;
        st_progress_add(ctx, n);
    }
    free(codes);
    free(local);
    free(map);
    st_column_free(&c);
    st_column_free(&p);
    st_column_free(&m);
    st_column_free(&q);
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
} gold_out;

/* Appends a finished accumulator's rows to both gold files, a chunk at a
 * time. */
static st_status emit(st_features *fx, const st_dict *dict, gold_out *o, st_error *err)
{
    size_t n_groups = st_features_n_groups(fx);
    for (size_t first = 0; first < n_groups; first += ST_CHUNK_ROWS) {
        for (int k = 0; k < A_N; k++) st_column_reset(&o->a[k]);
        ST_TRY(st_features_append_analytics(fx, first, ST_CHUNK_ROWS, o->a, err));
        for (int t = 0; t < 2; t++) {
            const int64_t *v = st_column_i64(&o->a[t ? A_FOC : A_SOLD]);
            for (size_t i = 0; i < o->a[0].n_rows; i++)
                o->abs_total[t] += v[i] < 0 ? (uint64_t)0 - (uint64_t)v[i] : (uint64_t)v[i];
        }
        ST_TRY(st_writer_write(o->wa, o->a, 0, o->a[0].n_rows, err));
    }
    o->n_groups += n_groups;
    st_unified_cursor cur;
    memset(&cur, 0, sizeof cur);
    for (;;) {
        size_t got = 0;
        for (int k = 0; k < U_N; k++) st_column_reset(&o->u[k]);
        ST_TRY(st_features_append_unified(fx, &cur, dict, ST_CHUNK_ROWS, o->u, &got, err));
        if (got == 0) return ST_OK;
        ST_TRY(st_writer_write(o->wu, o->u, 0, got, err));
    }
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
    int32_t a = (lo / 100) * 12 + lo % 100, b = (hi / 100) * 12 + hi % 100;
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

st_status st_step_intermediate(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    st_features *fx = NULL;
    st_dict *dict = NULL;
    st_spill *spill = NULL;
    st_key_range *ranges = NULL;
    size_t n_ranges = 0;
    unsigned n_passes = 0;
    line_sink sink = {0};
    gold_out o = {0};
    for (int k = 0; k < A_N; k++) st_column_init(&o.a[k], an_fields[k].type);
    for (int k = 0; k < U_N; k++) st_column_init(&o.u[k], un_fields[k].type);
    static const char *const inputs[] = {"silver.stg_sales_transactions", "silver.stg_foc_transactions"};
    st_feature_dims dims = {1, 1, 202001, 202001};
    sink.dims = &dims;
    bool any = false;
    uint64_t n_lines = 0;
    st_status s = ST_OK;
    for (int t = 0; t < 2 && s == ST_OK; t++) {
        s = table_dims(ctx, tables[t], &dims, &any, err);
        st_reader *r = NULL;
        if (s == ST_OK && (s = st_table_open(ctx, "silver", tables[t], &r, err)) == ST_OK) {
            n_lines += st_reader_n_rows(r);
            st_reader_close(r);
        }
    }
    if (s == ST_OK) s = plan_ranges(ctx, &dims, n_lines, &ranges, &n_ranges, &n_passes, err);
    if (s == ST_OK) s = st_dict_create(&dict, err);
    if (s == ST_OK)
        s = st_table_create(ctx, "gold", "int_transactions_unified", un_fields, U_N, inputs, 2, "", fp, NULL, 0, &o.wu,
                            err);
    if (s == ST_OK)
        s = st_table_create(ctx, "gold", "int_customer_analytics", an_fields, A_N, inputs, 2, "", fp, NULL, 0, &o.wa,
                            err);
    if (s != ST_OK) goto done;

    if (n_ranges <= 1) {
        /* one pass: silver straight into one accumulator */
        if ((s = st_features_create(&fx, &dims, err)) != ST_OK) goto done;
        sink.fx = fx;
        for (unsigned t = 0; t < 2 && s == ST_OK; t++) s = add_table(ctx, tables[t], t, dict, &sink, err);
        if (s == ST_OK) s = st_dict_finish(dict, err);
        if (s == ST_OK) s = st_features_finish(fx, st_dict_rank(dict), st_dict_size(dict), (unsigned)ctx->threads, err);
        if (s == ST_OK) s = emit(fx, dict, &o, err);
        if (s != ST_OK) goto done;
    } else {
        /* partitioned: scatter by customer range, then range by range */
        int fd = -1;
        char dir[ST_PATH_MAX], what[ST_PATH_MAX + 64];
        if ((s = st_warehouse_temp_file(ctx->wh, "gold-spill", &fd, dir, err)) != ST_OK) goto done;
        snprintf(what, sizeof what, "the gold step's spill file in '%s'", dir);
        double per_buf = (double)ctx->o->memory_limit_bytes / 2.0 / (double)(2 * n_ranges * 24);
        uint32_t block_rows = per_buf > ST_SPILL_MAX_BLOCK_ROWS ? ST_SPILL_MAX_BLOCK_ROWS
                              : per_buf < 256.0                 ? 256u
                                                                : (uint32_t)per_buf;
        if ((s = st_spill_create(&spill, fd, what, (uint32_t)n_ranges, block_rows, err)) != ST_OK) goto done;
        sink.spill = spill;
        sink.ranges = ranges;
        sink.n_ranges = n_ranges;
        if (!(sink.part = malloc(ST_CHUNK_ROWS * sizeof *sink.part))) {
            s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (unsigned t = 0; t < 2 && s == ST_OK; t++) s = add_table(ctx, tables[t], t, dict, &sink, err);
        if (s == ST_OK) s = st_spill_flush(spill, err);
        if (s == ST_OK) s = st_dict_finish(dict, err);
        if (s != ST_OK) goto done;
        for (size_t pi = 0; pi < n_ranges; pi++) {
            st_feature_dims pd = {ranges[pi].lo, ranges[pi].hi, dims.period_key_min, dims.period_key_max};
            if ((s = st_features_create(&fx, &pd, err)) != ST_OK) goto done;
            s = st_features_reserve(fx, st_spill_rows(spill, (uint32_t)pi, 0), st_spill_rows(spill, (uint32_t)pi, 1),
                                    err);
            st_spill_cursor cur = {0};
            while (s == ST_OK) {
                st_spill_block b;
                if ((s = st_spill_next(spill, (uint32_t)pi, &cur, &b, err)) != ST_OK || b.n_rows == 0) break;
                s = b.table ? st_features_add_foc(fx, b.customer_id, b.period_key, b.material, b.quantity, b.n_rows, err)
                            : st_features_add_sales(fx, b.customer_id, b.period_key, b.material, b.quantity, b.n_rows,
                                                    err);
            }
            if (s == ST_OK)
                s = st_features_finish(fx, st_dict_rank(dict), st_dict_size(dict), (unsigned)ctx->threads, err);
            if (s == ST_OK) s = emit(fx, dict, &o, err);
            st_features_free(fx);
            fx = NULL;
            if (s != ST_OK) goto done;
        }
    }
    for (int t = 0; t < 2; t++)
        if (o.abs_total[t] > (unsigned __int128)INT64_MAX) {
            s = st_error_set(err, ST_ERR_OVERFLOW,
                             "gold: the %s quantities of all customer-months add up to more than int64 holds, so "
                             "the marts' and the report's totals cannot be computed (check --qty-min/--qty-max)",
                             t ? "free-of-charge" : "sold");
            goto done;
        }
    uint64_t n_unified = st_writer_n_rows(o.wu);
    s = st_writer_close(o.wu, err);
    o.wu = NULL;
    if (s == ST_OK) s = st_writer_close(o.wa, err);
    o.wa = NULL;
    if (s != ST_OK) goto done;
    ctx->cur->rows_out = o.n_groups + n_unified;
    int w = snprintf(ctx->cur->note, sizeof ctx->cur->note, "%llu customer-periods, %llu customer-period-materials",
                     (unsigned long long)o.n_groups, (unsigned long long)n_unified);
    if (spill && w > 0 && (size_t)w < sizeof ctx->cur->note) {
        uint64_t lim = ctx->o->memory_limit_bytes;
        bool mib = lim % (1u << 20) == 0;
        snprintf(ctx->cur->note + w, sizeof ctx->cur->note - (size_t)w,
                 "; %zu customer ranges (memory limit %llu %s, %u histogram pass%s, %.0f MiB spilled)", n_ranges,
                 (unsigned long long)(mib ? lim >> 20 : lim >> 10), mib ? "MiB" : "KiB", n_passes,
                 n_passes == 1 ? "" : "es", (double)st_spill_bytes(spill) / 1048576.0);
    }
done:
    st_writer_abort(o.wa);
    st_writer_abort(o.wu);
    st_features_free(fx);
    st_spill_free(spill);
    st_dict_free(dict);
    free(ranges);
    free(sink.part);
    for (int k = 0; k < A_N; k++) st_column_free(&o.a[k]);
    for (int k = 0; k < U_N; k++) st_column_free(&o.u[k]);
    return s;
}
