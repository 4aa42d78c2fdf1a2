/*
 * agg_rows.c: gold rows held as plain arrays (strata/agg.h,
 * st_feature_rows) appended to the gold columns.
 *
 * The distributed gold step (pipeline/gold_dist.c) computes each
 * customer range with st_features on the rank that owns it and sends the
 * finished rows to rank 0 as st_feature_row records and st_unified_batch
 * arrays; rank 0 writes them through the same column appenders of
 * agg_columns.c as a local st_features would (year and month derived,
 * NULL medians, material strings from the run's dictionary), so the files
 * are the same bytes. Nothing here allocates or keeps state beyond the
 * caller's cursor.
 */
#include <string.h>

#include "agg_internal.h"

static void rows_get(const void *obj, size_t i, st_feature_row *row)
{
    *row = ((const st_feature_rows *)obj)->groups[i];
}

/* Copies the next rows of the batch: cur->group is the row reached. */
static st_status rows_next(const void *obj, st_unified_cursor *cur, const st_unified_batch *out, size_t cap,
                           size_t *n_out, st_error *err)
{
    (void)err;
    const st_feature_rows *g = obj;
    size_t at = cur->group < g->n_unified ? cur->group : g->n_unified, n = g->n_unified - at;
    if (n > cap) n = cap;
    const st_unified_batch *in = &g->unified;
    if (n) {
        memcpy(out->customer_id, in->customer_id + at, n * sizeof *out->customer_id);
        memcpy(out->period_key, in->period_key + at, n * sizeof *out->period_key);
        memcpy(out->material, in->material + at, n * sizeof *out->material);
        memcpy(out->sold_qty, in->sold_qty + at, n * sizeof *out->sold_qty);
        memcpy(out->foc_qty, in->foc_qty + at, n * sizeof *out->foc_qty);
        memcpy(out->sold_lines, in->sold_lines + at, n * sizeof *out->sold_lines);
        memcpy(out->foc_lines, in->foc_lines + at, n * sizeof *out->foc_lines);
    }
    cur->group = at + n;
    *n_out = n;
    return ST_OK;
}

st_status st_feature_rows_append_analytics(const st_feature_rows *g, size_t first, size_t n, st_column *cols,
                                           st_error *err)
{
    return st_agg_append_analytics(rows_get, g, g->n_groups, first, n, cols, err);
}

st_status st_feature_rows_append_unified(const st_feature_rows *g, st_unified_cursor *cur, const st_dict *dict,
                                         size_t cap, st_column *cols, size_t *n_out, st_error *err)
{
    return st_agg_append_unified(rows_next, g, cur, dict, cap, cols, n_out, err);
}
