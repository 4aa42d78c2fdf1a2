/*
 * groupby_internal.h: the st_features object, shared by groupby.c (create,
 * add: keys, counts, row store) and agg.c (finish, results, iteration).
 *
 * Life of the data:
 *   adding     rows[t] holds key/material/quantity per added row of table
 *              t (0 sales, 1 FOC); cnt[t] counts lines per grid cell
 *              (cell = key = slot * n_periods + month index).
 *   finish     cells with lines become active groups, numbered in
 *              (customer_id, period_key) order; cnt[t] turns into write
 *              cursors; rows scatter into seg_mat[t]/seg_qty[t] so group
 *              a's lines are [g_off[t][a], g_off[t][a+1]); rows[t], the
 *              grid and the customer tables are freed. Each segment ends up
 *              sorted by material rank.
 */
#ifndef STRATA_GROUPBY_INTERNAL_H
#define STRATA_GROUPBY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agg_internal.h"
#include "strata/agg.h"

typedef struct st_row_store {
    uint32_t *key;   /* group key (grid cell) per row */
    uint32_t *mat;   /* material code per row, as added */
    int32_t *q32;    /* quantity per row while every one fits int32 ... */
    int64_t *q64;    /* ... else here (q32 freed); exactly one is used */
    bool wide;       /* q64 in use */
    size_t n_rows, cap_rows;
} st_row_store;

/* Frees a row store's columns and leaves them NULL; n_rows stays, since the
 * segments built from the rows keep that count. */
static inline void st_row_store_release(st_row_store *r)
{
    free(r->key);
    free(r->mat);
    free(r->q32);
    free(r->q64);
    r->key = r->mat = NULL;
    r->q32 = NULL;
    r->q64 = NULL;
}

struct st_features {
    st_feature_dims dims;
    bool failed;            /* an add failed: only free is allowed */
    bool finished;

    /* keys */
    st_keys_ctx kc;         /* points into per_idx / cust_slot */
    st_keys_fn keys_fn;     /* direct kernel picked at create */
    uint32_t *per_idx;      /* kc.per_span entries */
    int32_t month0;         /* year*12 + month-1 of period_key_min */
    uint32_t n_periods;
    bool direct;            /* customers via cust_slot, else hash */
    uint32_t *cust_slot;    /* direct: kc.cust_span entries */
    int64_t *hash_id;       /* hash: hash_cap ids */
    uint32_t *hash_slot;    /* hash: hash_cap slots, ST_KEY_NONE = empty */
    size_t hash_cap;        /* power of two, >= 2 * n_slots */

    /* customers and grid */
    int64_t *slot_id;       /* customer id of each slot */
    size_t n_slots, cap_slots;
    uint32_t *cnt[2];       /* cap_slots * n_periods cells per table */
    st_row_store rows[2];

    /* results (after finish) */
    size_t n_groups;
    int64_t *cust_ids;      /* n_slots customer ids, ascending (slot_id sorted) */
    uint32_t *g_cidx;       /* n_groups: customer, as an index into cust_ids */
    int32_t *g_period;      /* n_groups, period_key */
    uint32_t *g_off[2];     /* n_groups + 1 segment offsets per table */
    double *g_med[2];       /* n_groups medians (0 when no lines); sums are
                               recomputed from the segments on access */
    uint32_t *g_uniq;       /* n_groups distinct materials */
    uint32_t *seg_mat[2];   /* rows[t].n_rows material ranks, by group */
    int64_t *seg_qty[2];    /* rows[t].n_rows quantities, by group */
    uint32_t *rank_code;    /* rank -> code when a rank table was given */
    bool segments_sorted;   /* finish grouped by material first (radix)
                               instead of sorting each segment */
    size_t n_unified;
};

#endif /* STRATA_GROUPBY_INTERNAL_H */
