/*
 * agg_internal.h: the kernels behind strata/agg.h, exposed to the engine
 * and to tests (which compare every SIMD variant with the scalar one).
 *
 * All kernels here are allocation-free and never fail: callers size and
 * own every buffer. The scalar variants are the specification.
 */
#ifndef STRATA_AGG_INTERNAL_H
#define STRATA_AGG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/agg.h"
#include "strata/cpu.h"

/* Marks "no slot / not a valid month" in the lookup tables below. */
#define ST_KEY_NONE UINT32_MAX

/* Rows per batch of the key kernels as driven by st_features_add_*. */
#define ST_KEY_BATCH 2048u
_Static_assert((ST_KEY_BATCH & (ST_KEY_BATCH - 1)) == 0, "batch is a power of two");

/* Everything the group-key kernels read. Tables are borrowed.
 *   customer slot = cust_slot[id - cust_min] when 0 <= id - cust_min < cust_span
 *                   (direct table; cust_span <= ST_FEATURES_DIRECT_IDS)
 *   month index   = per_idx[pk - per_min] when 0 <= pk - per_min < per_span
 *   key           = slot * n_periods + month index (fits uint32 by
 *                   construction: slots * n_periods <= 2^32) */
typedef struct st_keys_ctx {
    int64_t cust_min;
    uint32_t cust_span;
    const uint32_t *cust_slot;  /* cust_span entries, ST_KEY_NONE = unseen */
    int32_t per_min;
    uint32_t per_span;
    const uint32_t *per_idx;    /* per_span entries, ST_KEY_NONE = invalid */
    uint32_t n_periods;
} st_keys_ctx;

/* Direct-table key kernel: writes keys[i] for rows i = 0, 1, ... and stops
 * at the first row whose customer is out of range or has no slot yet, or
 * whose period key is out of range or not a month. Returns the number of
 * rows done (n when all were). Variants must return the same count and
 * keys as the scalar one. */
typedef size_t (*st_keys_fn)(const st_keys_ctx *c, const int64_t *cust,
                             const int32_t *period_key, size_t n, uint32_t *keys);
size_t st_keys_direct_scalar(const st_keys_ctx *c, const int64_t *cust,
                             const int32_t *period_key, size_t n, uint32_t *keys);
size_t st_keys_direct_avx2(const st_keys_ctx *c, const int64_t *cust,
                           const int32_t *period_key, size_t n, uint32_t *keys);
size_t st_keys_direct_avx512(const st_keys_ctx *c, const int64_t *cust,
                             const int32_t *period_key, size_t n, uint32_t *keys);
/* The best direct kernel not above `level`. */
st_keys_fn st_keys_direct_pick(st_cpu_isa level);

/* Month-index kernel for the hashed-customer path: pidx[i] for rows
 * 0, 1, ...; stops at the first invalid period key; returns rows done. */
size_t st_keys_period_scalar(const st_keys_ctx *c, const int32_t *period_key,
                             size_t n, uint32_t *pidx);

/* Line counts per group: counts[keys[i]] += 1. Counts never exceed the row
 * total, which the caller keeps <= UINT32_MAX. */
void st_groupby_count_u32(const uint32_t *keys, size_t n, uint32_t *counts);

/* Exact sum; false (and *out untouched) when it does not fit int64.
 * Independent of the order of v (partial sums may exceed int64). */
bool st_agg_sum_i64(const int64_t *v, size_t n, int64_t *out);

/* k-th smallest (0-based, k < n) of v, partially reordering v so that
 * v[0..k) <= v[k] <= v[k+1..n). O(n) expected, O(n log n) worst. */
int64_t st_select_i64(int64_t *v, size_t n, size_t k);
/* Exact median of n > 0 values (reorders v): the middle value, or the mean
 * of the two middle values ((a + b) / 2 in double) for even n. */
double st_median_i64(int64_t *v, size_t n);

/* In-place unstable sorts of key arrays carrying a payload array. */
void st_sort_u32_i64(uint32_t *key, int64_t *val, size_t n);
void st_sort_i64_u32(int64_t *key, uint32_t *val, size_t n);
void st_sort_i64(int64_t *v, size_t n);

/* The column appenders of agg_columns.c over any result object: `get`
 * fills group i's row, `next` continues the unified rows (both as
 * st_features_get / st_features_unified_next). total = number of groups. */
typedef void (*st_agg_get_fn)(const void *obj, size_t i, st_feature_row *row);
typedef st_status (*st_agg_next_fn)(const void *obj, st_unified_cursor *cur,
                                    const st_unified_batch *out, size_t cap, size_t *n_out,
                                    st_error *err);
st_status st_agg_append_analytics(st_agg_get_fn get, const void *obj, size_t total, size_t first,
                                  size_t n, st_column *cols, st_error *err) ST_MUST_USE;
st_status st_agg_append_unified(st_agg_next_fn next, const void *obj, st_unified_cursor *cur,
                                const st_dict *dict, size_t cap, st_column *cols, size_t *n_out,
                                st_error *err) ST_MUST_USE;

#endif /* STRATA_AGG_INTERNAL_H */
