/*
 * partition.h: cutting an integer key space into contiguous ranges whose
 * working set fits a memory budget.
 *
 * The gold step groups lines by (customer, period) and needs every line
 * of a group in memory at once (exact medians). When all lines do not
 * fit the budget it processes customers range by range; this module
 * finds those ranges from the keys themselves, without assuming anything
 * about how the ids are spread:
 *
 *   1. st_key_hist counts keys in 2^16 equal-width buckets over [lo, hi]
 *      (widths are powers of two, so a bucket index is a subtraction and
 *      a shift). One pass over the keys.
 *   2. A bucket whose cost exceeds the budget although it holds more than
 *      one id (a dense cluster of ids next to an outlier, say) is narrowed
 *      to the smallest and largest id it holds and counted again, in up to
 *      2^16 sub-buckets, on a further pass. Each level divides the width by
 *      2^16, so four levels reach single ids; a pass takes as many ranges
 *      of one level as ST_KEY_HIST_PASS_BYTES of counters hold, so very
 *      many heavy buckets (only when the budget is tiny against the data)
 *      take more passes. On ordinary data one pass is all there is.
 *   3. st_key_hist_plan() packs the buckets, in key order, greedily into
 *      ranges of cost <= budget. Only a range holding a single id may
 *      cost more (one customer's lines cannot be split).
 *
 * The cost of a range with R rows over a width of W ids is
 *   per_row * R + per_key * min(R, W) + per_cell * min(R, W * cells_per_key)
 *   + per_id * W   (only when W < per_id_below: a direct table over the ids)
 * an upper bound when min(R, W) bounds the distinct keys and each key has
 * at most cells_per_key groups. Every result depends only on the multiset
 * of keys, so plans are deterministic.
 *
 * Memory: at most ST_KEY_HIST_PASS_BYTES of counters during a pass, plus
 * 24 bytes per final bucket (at most 2^16 per range counted).
 */
#ifndef STRATA_PARTITION_H
#define STRATA_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_KEY_HIST_BUCKET_BITS 16
#define ST_KEY_HIST_PASS_BYTES ((size_t)24 << 20)

/* A contiguous key range [lo, hi] (inclusive) and its row count. */
typedef struct st_key_range {
    int64_t lo;
    int64_t hi;
    uint64_t n_rows;
} st_key_range;

/* Bytes a range costs; see the top of this file. */
typedef struct st_range_cost {
    double per_row;
    double per_key;
    double per_cell;
    double cells_per_key;
    double per_id;          /* 0 for none */
    uint64_t per_id_below;  /* per_id applies to widths below this */
} st_range_cost;

/* Cost in bytes of n_rows rows over width ids (width 0 means 2^64). */
double st_range_cost_of(const st_range_cost *c, uint64_t n_rows, uint64_t width);

typedef struct st_key_hist st_key_hist;

/* A histogram of keys in [lo, hi] for ranges of cost <= budget_bytes.
 * Caller owns *out; free with st_key_hist_free(). ST_ERR_INVALID when
 * lo > hi or budget_bytes <= 0, ST_ERR_NOMEM. */
st_status st_key_hist_create(st_key_hist **out, int64_t lo, int64_t hi,
                             const st_range_cost *cost, double budget_bytes,
                             st_error *err) ST_MUST_USE;
void st_key_hist_free(st_key_hist *h);

/* True while another pass over every key is needed. Use as
 *   while (st_key_hist_pass_needed(h)) {
 *       st_key_hist_begin(h); for each batch: st_key_hist_count(h, ...);
 *       st_key_hist_end(h);
 *   }                                                                  */
bool st_key_hist_pass_needed(const st_key_hist *h);

/* Starts a pass (allocates its counters). ST_ERR_NOMEM; ST_ERR_INVALID
 * when no pass is needed or one is already open. */
st_status st_key_hist_begin(st_key_hist *h, st_error *err) ST_MUST_USE;

/* Counts keys[0..n). Keys outside [lo, hi] are counted in
 * st_key_hist_n_outside() and otherwise ignored. Borrowed for the call. */
void st_key_hist_count(st_key_hist *h, const int64_t *keys, size_t n);

/* Across the ranks of a world (engine/dist.h; every rank calls it, in
 * the same pass, with the same histogram parameters): after each rank
 * counted its share of the keys, every rank's open pass holds the counts
 * of all keys (sums, exact) with their smallest and largest keys per
 * bucket, and the first pass's keys outside [lo, hi] summed too; so
 * st_key_hist_end() and st_key_hist_plan() give every rank the plan one
 * process counting every key would make. Call before st_key_hist_end();
 * a no-op in a world of one, or when no pass is open (on every rank). */
void st_key_hist_allreduce(st_key_hist *h);

/* Ends the pass: buckets that are still too costly are queued for the
 * next one. ST_ERR_INVALID when no pass is open, ST_ERR_NOMEM. */
st_status st_key_hist_end(st_key_hist *h, st_error *err) ST_MUST_USE;

/* Keys outside [lo, hi] seen by the first pass. */
uint64_t st_key_hist_n_outside(const st_key_hist *h);

/* Passes completed so far. */
unsigned st_key_hist_n_passes(const st_key_hist *h);

/* After the last pass: the packed ranges in key order, covering every
 * counted key; empty stretches between ranges hold no keys. Caller owns
 * *out (free()); *n_out may be 0 when no key was counted. ST_ERR_INVALID
 * while a pass is still needed, ST_ERR_NOMEM. */
st_status st_key_hist_plan(const st_key_hist *h, st_key_range **out, size_t *n_out,
                           st_error *err) ST_MUST_USE;

/* part[i] = index of the range of ranges[0..n_ranges) holding keys[i]
 * (ranges sorted and disjoint, as st_key_hist_plan() returns them), or
 * UINT32_MAX when no range holds it. All arrays borrowed. */
void st_key_ranges_locate(const st_key_range *ranges, size_t n_ranges,
                          const int64_t *keys, size_t n, uint32_t *part);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_PARTITION_H */
