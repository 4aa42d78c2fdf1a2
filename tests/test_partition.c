/*
 * test_partition.c: the key histogram and range planner
 * (strata/partition.h), against naive counting over the same keys.
 *
 * For each key distribution the plan must: list disjoint ranges in key
 * order; hold every key in exactly one range (checked by linear search,
 * not by st_key_ranges_locate); give each range the exact number of keys
 * it holds; and keep every range within the budget unless it is a single
 * id. Distributions: dense small ids, ids spread over the whole int64
 * range, a dense cluster next to a far outlier (needs refinement passes),
 * one id holding most rows, and a single key.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/partition.h"

TestSuite(partition);

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static const st_range_cost rows_only = {1.0, 0.0, 0.0, 1.0, 0.0, 0};

/* Runs every pass over keys (fed in batches of 1000), returns the plan. */
static st_key_range *plan(const int64_t *keys, size_t n, const st_range_cost *cost, double budget, size_t *n_ranges,
                          unsigned *passes)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < lo) lo = keys[i];
        if (keys[i] > hi) hi = keys[i];
    }
    st_key_hist *h = NULL;
    st_error e = {0};
    cr_assert_eq(st_key_hist_create(&h, lo, hi, cost, budget, &e), ST_OK, "%s", e.msg);
    while (st_key_hist_pass_needed(h)) {
        cr_assert_eq(st_key_hist_begin(h, &e), ST_OK, "%s", e.msg);
        for (size_t i = 0; i < n; i += 1000) st_key_hist_count(h, keys + i, n - i < 1000 ? n - i : 1000);
        cr_assert_eq(st_key_hist_end(h, &e), ST_OK, "%s", e.msg);
        cr_assert_leq(st_key_hist_n_passes(h), 64, "runaway passes");
    }
    cr_assert_eq(st_key_hist_n_outside(h), 0);
    st_key_range *r = NULL;
    cr_assert_eq(st_key_hist_plan(h, &r, n_ranges, &e), ST_OK, "%s", e.msg);
    *passes = st_key_hist_n_passes(h);
    st_key_hist_free(h);
    return r;
}

/* The properties every plan must have, checked naively. */
static void check_plan(const int64_t *keys, size_t n, const st_key_range *r, size_t nr, const st_range_cost *cost,
                       double budget)
{
    cr_assert_gt(nr, 0);
    for (size_t j = 0; j < nr; j++) {
        cr_assert_leq(r[j].lo, r[j].hi);
        if (j) cr_assert_gt(r[j].lo, r[j - 1].hi, "ranges %zu and %zu overlap or are out of order", j - 1, j);
    }
    uint64_t *count = calloc(nr, sizeof *count);
    uint32_t *part = malloc(n * sizeof *part);
    st_key_ranges_locate(r, nr, keys, n, part);
    for (size_t i = 0; i < n; i++) {
        size_t found = SIZE_MAX;
        for (size_t j = 0; j < nr; j++)
            if (keys[i] >= r[j].lo && keys[i] <= r[j].hi) {
                cr_assert_eq(found, SIZE_MAX, "key %lld in two ranges", (long long)keys[i]);
                found = j;
            }
        cr_assert_neq(found, SIZE_MAX, "key %lld in no range", (long long)keys[i]);
        cr_assert_eq(part[i], found, "locate disagrees for key %lld", (long long)keys[i]);
        count[found]++;
    }
    for (size_t j = 0; j < nr; j++) {
        cr_assert_eq(count[j], r[j].n_rows, "range %zu: %llu keys, plan says %llu", j, (unsigned long long)count[j],
                     (unsigned long long)r[j].n_rows);
        uint64_t width = (uint64_t)r[j].hi - (uint64_t)r[j].lo + 1;
        cr_assert(r[j].lo == r[j].hi || st_range_cost_of(cost, r[j].n_rows, width) <= budget,
                  "range %zu [%lld, %lld] costs %.0f > budget %.0f", j, (long long)r[j].lo, (long long)r[j].hi,
                  st_range_cost_of(cost, r[j].n_rows, width), budget);
    }
    free(count);
    free(part);
}

Test(partition, dense_small_ids_one_pass)
{
    size_t n = 200000;
    int64_t *k = malloc(n * sizeof *k);
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) k[i] = 1 + (int64_t)(rng_next(&s) % 100);
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &rows_only, 25000, &nr, &passes);
    check_plan(k, n, r, nr, &rows_only, 25000);
    cr_assert_eq(passes, 1);
    cr_assert_geq(nr, 8, "200K rows in ranges of <= 25K rows need >= 8 ranges, got %zu", nr);
    cr_assert_leq(nr, 16, "greedy packing should not waste more than half: %zu ranges", nr);
    free(r);
    free(k);
}

Test(partition, ids_over_the_whole_int64_range)
{
    size_t n = 100000;
    int64_t *k = malloc(n * sizeof *k);
    uint64_t s = 2;
    for (size_t i = 0; i < n; i++) k[i] = (int64_t)rng_next(&s);
    k[0] = INT64_MIN;
    k[1] = INT64_MAX;
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &rows_only, 1000, &nr, &passes);
    check_plan(k, n, r, nr, &rows_only, 1000);
    free(r);
    free(k);
}

Test(partition, a_dense_cluster_beside_a_far_outlier_is_refined)
{
    /* ids 1..1000 hold almost every row; one id at 2^62 makes the first
     * pass's buckets 2^46 wide, so all of 1..1000 land in bucket 0 */
    size_t n = 100001;
    int64_t *k = malloc(n * sizeof *k);
    uint64_t s = 3;
    for (size_t i = 0; i < n - 1; i++) k[i] = 1 + (int64_t)(rng_next(&s) % 1000);
    k[n - 1] = (int64_t)1 << 62;
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &rows_only, 5000, &nr, &passes);
    check_plan(k, n, r, nr, &rows_only, 5000);
    cr_assert_eq(passes, 2, "the cluster needs one refinement pass (bucket narrowed to ids 1..1000)");
    cr_assert_geq(nr, 20);
    free(r);
    free(k);
}

Test(partition, one_heavy_id_is_a_range_of_its_own)
{
    size_t n = 50000;
    int64_t *k = malloc(n * sizeof *k);
    uint64_t s = 4;
    for (size_t i = 0; i < n; i++) k[i] = (i % 2) ? 500 : (int64_t)(rng_next(&s) % 1000);
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &rows_only, 4000, &nr, &passes);
    check_plan(k, n, r, nr, &rows_only, 4000);
    bool alone = false;
    for (size_t j = 0; j < nr; j++)
        if (r[j].lo == 500 && r[j].hi == 500) alone = true;
    cr_assert(alone, "id 500 (over the budget by itself) is its own range");
    free(r);
    free(k);
}

Test(partition, per_key_and_per_cell_costs_split_sparse_customers)
{
    /* one row per id: rows alone would fit, the per-key grid cost does not */
    size_t n = 20000;
    int64_t *k = malloc(n * sizeof *k);
    for (size_t i = 0; i < n; i++) k[i] = (int64_t)i * 7;
    st_range_cost c = {24.0, 16.0 * 60 + 64.0, 40.0, 60.0, 0.0, 0};
    double budget = 1 << 20;
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &c, budget, &nr, &passes);
    check_plan(k, n, r, nr, &c, budget);
    cr_assert_geq(nr, (size_t)(st_range_cost_of(&c, n, n) / budget), "the grid cost decides the split");
    free(r);
    free(k);
}

/* n keys: 300 pairs of adjacent ids 2^30 apart, 1200 keys each (random
 * within the pair), then 2^62 in every place after those (caller frees). */
static int64_t *heavy_pairs(size_t n, uint64_t seed)
{
    int64_t *k = malloc(n * sizeof *k);
    cr_assert_not_null(k);
    for (size_t i = 0; i < n; i++)
        k[i] = i < 300 * 1200 ? (int64_t)((i / 1200) << 30) + (int64_t)(rng_next(&seed) & 1) : (int64_t)1 << 62;
    return k;
}

Test(partition, many_heavy_buckets_take_more_passes_and_lose_nothing)
{
    /* 300 pairs of adjacent ids 2^30 apart, 1200 rows each, and an outlier
     * at 2^62: 300 heavy first-level buckets, each refined */
    size_t n = 300 * 1200 + 1;
    int64_t *k = heavy_pairs(n, 6);
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &rows_only, 1000, &nr, &passes);
    check_plan(k, n, r, nr, &rows_only, 1000);
    cr_assert_geq(nr, 600, "every id of every pair is its own range (1200 rows > 1000), got %zu", nr);
    free(r);
    free(k);
}

Test(partition, a_direct_table_over_a_narrow_id_range_is_costed)
{
    /* 2000 lines over ids 1..4,000,000: few lines, but a direct table of
     * 4 bytes per id would be 16 MB */
    size_t n = 2000;
    int64_t *k = malloc(n * sizeof *k);
    uint64_t s = 8;
    for (size_t i = 0; i < n; i++) k[i] = 1 + (int64_t)(rng_next(&s) % 4000000);
    k[0] = 1;
    k[1] = 4000000;
    st_range_cost c = {24.0, 0.0, 0.0, 1.0, 4.0, (1u << 22) + 1};
    double budget = 1 << 20;
    cr_assert_gt(st_range_cost_of(&c, n, 4000000), budget, "one range would not fit");
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(k, n, &c, budget, &nr, &passes);
    check_plan(k, n, r, nr, &c, budget);
    cr_assert_geq(nr, 16);
    free(r);
    free(k);
}

Test(partition, plans_depend_only_on_the_keys_not_their_order)
{
    size_t n = 30000;
    int64_t *k = malloc(n * sizeof *k), *sh = malloc(n * sizeof *sh);
    uint64_t s = 5;
    for (size_t i = 0; i < n; i++) k[i] = (int64_t)(rng_next(&s) % 100000) - 50000;
    memcpy(sh, k, n * sizeof *k);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_next(&s) % (i + 1);
        int64_t t = sh[i];
        sh[i] = sh[j];
        sh[j] = t;
    }
    size_t na, nb;
    unsigned pa, pb;
    st_key_range *a = plan(k, n, &rows_only, 3000, &na, &pa);
    st_key_range *b = plan(sh, n, &rows_only, 3000, &nb, &pb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na * sizeof *a), 0);
    free(a);
    free(b);
    free(k);
    free(sh);
}

Test(partition, single_key_and_bad_arguments)
{
    int64_t k = 42;
    size_t nr;
    unsigned passes;
    st_key_range *r = plan(&k, 1, &rows_only, 1, &nr, &passes);
    cr_assert_eq(nr, 1);
    cr_assert_eq(r[0].lo, 42);
    cr_assert_eq(r[0].hi, 42);
    cr_assert_eq(r[0].n_rows, 1);
    free(r);
    st_key_hist *h = NULL;
    st_error e = {0};
    cr_assert_eq(st_key_hist_create(&h, 5, 4, &rows_only, 10, &e), ST_ERR_INVALID);
    cr_assert_eq(st_key_hist_create(&h, 1, 4, &rows_only, 0, &e), ST_ERR_INVALID);
    cr_assert_eq(st_key_hist_create(&h, 1, 4, &rows_only, 10, &e), ST_OK);
    cr_assert_eq(st_key_hist_plan(h, &r, &nr, &e), ST_ERR_INVALID, "plan before the pass");
    cr_assert_eq(st_key_hist_end(h, &e), ST_ERR_INVALID, "end without begin");
    cr_assert_eq(st_key_hist_begin(h, &e), ST_OK);
    int64_t out[3] = {0, 9, 2};
    st_key_hist_count(h, out, 3);
    cr_assert_eq(st_key_hist_end(h, &e), ST_OK);
    cr_assert_eq(st_key_hist_n_outside(h), 2);
    cr_assert_eq(st_key_hist_plan(h, &r, &nr, &e), ST_OK);
    cr_assert_eq(nr, 1);
    cr_assert_eq(r[0].n_rows, 1);
    free(r);
    st_key_hist_free(h);
    st_key_hist_free(NULL);
}

/* In a world of one rank (the plain build) st_key_hist_allreduce() is the
 * identity: with it before every st_key_hist_end() the passes, the keys
 * outside and the plan are those without it (the MPI tests check the
 * world of several ranks against one process). */
Test(partition, allreduce_in_a_world_of_one_changes_nothing)
{
    size_t n = 300 * 1200 + 3;
    int64_t *k = heavy_pairs(n, 9);
    k[n - 2] = -5; /* outside [0, 2^62] */
    k[n - 1] = INT64_MIN;
    size_t nr_ref, nr;
    unsigned passes_ref;
    st_key_range *ref = plan(k, n - 2, &rows_only, 1000, &nr_ref, &passes_ref);
    st_key_hist *h = NULL;
    st_error e = {0};
    cr_assert_eq(st_key_hist_create(&h, 0, (int64_t)1 << 62, &rows_only, 1000, &e), ST_OK, "%s", e.msg);
    while (st_key_hist_pass_needed(h)) {
        cr_assert_eq(st_key_hist_begin(h, &e), ST_OK, "%s", e.msg);
        st_key_hist_count(h, k, n);
        st_key_hist_allreduce(h);
        cr_assert_eq(st_key_hist_end(h, &e), ST_OK, "%s", e.msg);
    }
    st_key_hist_allreduce(h); /* no pass open: nothing */
    cr_assert_eq(st_key_hist_n_outside(h), 2);
    cr_assert_eq(st_key_hist_n_passes(h), passes_ref);
    st_key_range *r = NULL;
    cr_assert_eq(st_key_hist_plan(h, &r, &nr, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(nr, nr_ref);
    for (size_t i = 0; i < nr; i++)
        cr_assert(r[i].lo == ref[i].lo && r[i].hi == ref[i].hi && r[i].n_rows == ref[i].n_rows, "range %zu differs", i);
    st_key_hist_free(h);
    free(r);
    free(ref);
    free(k);
}
