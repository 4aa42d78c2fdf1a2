/*
 * test_agg.c: st_features (strata/agg.h) against a naive reference.
 *
 * The reference sorts every line by (customer, period) with qsort and
 * computes each feature plainly: sums, counts, medians from a fully sorted
 * copy, distinct materials from a sorted list, unified rows from a sort by
 * (customer, period, material rank). Random data sets cover duplicates,
 * odd and even line counts, groups with only sales or only FOC lines,
 * quantities 0 and 1e9, sparse ids near 1e12 (hashed customers), periods
 * across a year boundary. The fast path must match the reference exactly
 * for every chunking, thread count (1/2/3) and SIMD level.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/agg.h"
#include "strata/cpu.h"
#include "strata/pool.h"

TestSuite(agg);

/* ---- data sets -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

typedef struct lines {
    size_t n;
    int64_t *cust;
    int32_t *pk;
    uint32_t *mat;
    int64_t *qty;
} lines;

typedef struct dataset {
    lines t[2]; /* 0 sales, 1 foc */
    st_feature_dims dims;
    uint32_t n_mat;
} dataset;

static void lines_alloc(lines *l, size_t n)
{
    l->n = n;
    l->cust = calloc(n + 1, sizeof *l->cust);
    l->pk = calloc(n + 1, sizeof *l->pk);
    l->mat = calloc(n + 1, sizeof *l->mat);
    l->qty = calloc(n + 1, sizeof *l->qty);
}

static void dataset_free(dataset *d)
{
    for (int t = 0; t < 2; t++) {
        free(d->t[t].cust);
        free(d->t[t].pk);
        free(d->t[t].mat);
        free(d->t[t].qty);
    }
}

static const int32_t periods[] = {201910, 201911, 201912, 202001, 202002, 202006, 202101};

/* n_cust customers: ids base + k*stride; customers >= n_cust/2 only buy in
 * sales or only in foc for some periods via the table skew below. */
static void make_random(dataset *d, uint64_t seed, size_t n_sales, size_t n_foc, size_t n_cust,
                        int64_t id_base, int64_t id_stride, uint32_t n_mat)
{
    uint64_t s = seed;
    d->n_mat = n_mat;
    d->dims.customer_id_min = id_base;
    d->dims.customer_id_max = id_base + (int64_t)(n_cust - 1) * id_stride;
    d->dims.period_key_min = 201910;
    d->dims.period_key_max = 202101;
    for (int t = 0; t < 2; t++) {
        size_t n = t ? n_foc : n_sales;
        lines_alloc(&d->t[t], n);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            size_t k = (size_t)(r % n_cust);
            size_t pi = (size_t)((r >> 20) % 7);
            /* customers k % 5 == 1 never get foc, == 2 never sales in 202001 */
            if (t == 1 && k % 5 == 1) k = (k + 1) % n_cust;
            if (t == 0 && k % 5 == 2 && periods[pi] == 202001) pi = 0;
            d->t[t].cust[i] = id_base + (int64_t)k * id_stride;
            d->t[t].pk[i] = periods[pi];
            d->t[t].mat[i] = (uint32_t)((r >> 32) % n_mat);
            uint64_t q = (r >> 40) % 16;
            d->t[t].qty[i] = q == 0 ? 0 : q == 1 ? 1000000000 : q == 2 ? 1 : (int64_t)(q * 3 % 7);
        }
    }
}

/* ---- results ---------------------------------------------------------- */

typedef struct uni_row {
    int64_t cust;
    int32_t pk;
    uint32_t mat;
    int64_t sold_qty, foc_qty, sold_lines, foc_lines;
} uni_row;

typedef struct result {
    size_t n_groups, n_uni;
    st_feature_row *g;
    uni_row *u;
} result;

static void result_free(result *r)
{
    free(r->g);
    free(r->u);
    memset(r, 0, sizeof *r);
}

/* Reads every group and unified row of a finished result object through
 * its accessors, `cap` unified rows per call. */
typedef void (*get_fn)(const void *obj, size_t i, st_feature_row *row);
typedef st_status (*next_fn)(const void *obj, st_unified_cursor *cur, const st_unified_batch *b, size_t cap,
                             size_t *n, st_error *err);

static st_status read_back(const void *obj, size_t n_groups, size_t n_uni, get_fn get, next_fn next, size_t cap,
                           result *out, st_error *err)
{
    enum { CAP_MAX = 16 };
    out->n_groups = n_groups;
    out->g = calloc(n_groups + 1, sizeof *out->g);
    for (size_t i = 0; i < n_groups; i++) get(obj, i, &out->g[i]);
    out->n_uni = n_uni;
    out->u = calloc(n_uni + 1, sizeof *out->u);
    int64_t c[CAP_MAX], sq[CAP_MAX], fq[CAP_MAX], sl[CAP_MAX], fl[CAP_MAX];
    int32_t pk[CAP_MAX];
    uint32_t mt[CAP_MAX];
    st_unified_batch b = {c, pk, mt, sq, fq, sl, fl};
    st_unified_cursor cur = {0, 0, 0};
    size_t got = 0, n;
    st_status s;
    for (;;) {
        s = next(obj, &cur, &b, cap < CAP_MAX ? cap : CAP_MAX, &n, err);
        if (s != ST_OK || n == 0) break;
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(got, out->n_uni);
            out->u[got++] = (uni_row){c[i], pk[i], mt[i], sq[i], fq[i], sl[i], fl[i]};
        }
    }
    if (s == ST_OK) cr_assert_eq(got, out->n_uni);
    return s;
}

static void features_get(const void *obj, size_t i, st_feature_row *row) { st_features_get(obj, i, row); }

static st_status features_next(const void *obj, st_unified_cursor *cur, const st_unified_batch *b, size_t cap,
                               size_t *n, st_error *err)
{
    return st_features_unified_next(obj, cur, b, cap, n, err);
}

/* Runs the fast path. chunk 0 = one call per table. */
static st_status run_fast(const dataset *d, unsigned threads, st_cpu_isa cap, size_t chunk,
                          const uint32_t *rank, result *out, st_error *err)
{
    memset(out, 0, sizeof *out);
    st_cpu_cap(cap);
    st_features *fx = NULL;
    st_status s = st_features_create(&fx, &d->dims, err);
    st_cpu_cap(ST_CPU_AVX512);
    if (s != ST_OK) return s;
    for (int t = 0; t < 2 && s == ST_OK; t++) {
        const lines *l = &d->t[t];
        size_t step = chunk ? chunk : (l->n ? l->n : 1);
        for (size_t b = 0; b < l->n && s == ST_OK; b += step) {
            size_t m = l->n - b < step ? l->n - b : step;
            s = (t ? st_features_add_foc : st_features_add_sales)(fx, l->cust + b, l->pk + b,
                                                                  l->mat + b, l->qty + b, m, err);
        }
    }
    if (s == ST_OK) s = st_features_finish(fx, rank, d->n_mat, threads, err);
    if (s == ST_OK) {
        s = read_back(fx, st_features_n_groups(fx), st_features_n_unified(fx), features_get, features_next, 7, out,
                      err);
    }
    st_features_free(fx);
    return s;
}

/* ---- the naive reference ---------------------------------------------- */

typedef struct ref_line {
    int64_t cust;
    int32_t pk;
    uint32_t rank, code;
    int64_t qty;
    int t;
} ref_line;

static int cmp_line(const void *a, const void *b)
{
    const ref_line *x = a, *y = b;
    if (x->cust != y->cust) return x->cust < y->cust ? -1 : 1;
    if (x->pk != y->pk) return x->pk < y->pk ? -1 : 1;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double ref_median(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    if (n & 1) return (double)v[n / 2];
    return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

static void run_ref(const dataset *d, const uint32_t *rank, result *out)
{
    size_t n = d->t[0].n + d->t[1].n, k = 0;
    ref_line *all = calloc(n + 1, sizeof *all);
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < d->t[t].n; i++) {
            uint32_t code = d->t[t].mat[i];
            all[k++] = (ref_line){d->t[t].cust[i], d->t[t].pk[i], rank ? rank[code] : code, code,
                                  d->t[t].qty[i], t};
        }
    qsort(all, n, sizeof *all, cmp_line);
    memset(out, 0, sizeof *out);
    out->g = calloc(n + 1, sizeof *out->g);
    out->u = calloc(n + 1, sizeof *out->u);
    int64_t *qs = calloc(n + 1, sizeof *qs), *qf = calloc(n + 1, sizeof *qf);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && all[j].cust == all[i].cust && all[j].pk == all[i].pk) j++;
        st_feature_row *g = &out->g[out->n_groups++];
        g->customer_id = all[i].cust;
        g->period_key = all[i].pk;
        size_t ns = 0, nf = 0;
        for (size_t x = i; x < j; x++) {
            if (all[x].t == 0) {
                g->total_sold_quantity += all[x].qty;
                qs[ns++] = all[x].qty;
            } else {
                g->total_foc_quantity += all[x].qty;
                qf[nf++] = all[x].qty;
            }
        }
        g->total_sold_transactions = (int64_t)ns;
        g->total_foc_transactions = (int64_t)nf;
        double den = (double)g->total_sold_quantity + (double)g->total_foc_quantity;
        g->foc_ratio = den != 0.0 ? (double)g->total_foc_quantity / den : 0.0;
        g->has_median_sold = ns > 0;
        g->has_median_foc = nf > 0;
        if (ns) g->median_sold_order_size = ref_median(qs, ns);
        if (nf) g->median_foc_order_size = ref_median(qf, nf);
        for (size_t x = i; x < j;) {
            size_t y = x;
            uni_row *u = &out->u[out->n_uni++];
            u->cust = all[x].cust;
            u->pk = all[x].pk;
            u->mat = all[x].code;
            while (y < j && all[y].rank == all[x].rank) {
                if (all[y].t == 0) {
                    u->sold_qty += all[y].qty;
                    u->sold_lines++;
                } else {
                    u->foc_qty += all[y].qty;
                    u->foc_lines++;
                }
                y++;
            }
            g->unique_materials++;
            x = y;
        }
        i = j;
    }
    free(qs);
    free(qf);
    free(all);
}

/* ---- comparison ------------------------------------------------------- */

static void assert_same(const result *a, const result *b)
{
    cr_assert_eq(a->n_groups, b->n_groups, "groups %zu vs %zu", a->n_groups, b->n_groups);
    for (size_t i = 0; i < a->n_groups; i++) {
        const st_feature_row *x = &a->g[i], *y = &b->g[i];
        cr_assert_eq(x->customer_id, y->customer_id, "group %zu", i);
        cr_assert_eq(x->period_key, y->period_key, "group %zu", i);
        cr_assert_eq(x->total_sold_quantity, y->total_sold_quantity, "group %zu", i);
        cr_assert_eq(x->total_foc_quantity, y->total_foc_quantity, "group %zu", i);
        cr_assert(x->foc_ratio == y->foc_ratio, "group %zu ratio %g vs %g", i, x->foc_ratio,
                  y->foc_ratio);
        cr_assert_eq(x->total_sold_transactions, y->total_sold_transactions, "group %zu", i);
        cr_assert_eq(x->total_foc_transactions, y->total_foc_transactions, "group %zu", i);
        cr_assert_eq(x->has_median_sold, y->has_median_sold, "group %zu", i);
        cr_assert_eq(x->has_median_foc, y->has_median_foc, "group %zu", i);
        if (x->has_median_sold)
            cr_assert(x->median_sold_order_size == y->median_sold_order_size,
                      "group %zu median sold %g vs %g", i, x->median_sold_order_size,
                      y->median_sold_order_size);
        if (x->has_median_foc)
            cr_assert(x->median_foc_order_size == y->median_foc_order_size,
                      "group %zu median foc %g vs %g", i, x->median_foc_order_size,
                      y->median_foc_order_size);
        cr_assert_eq(x->unique_materials, y->unique_materials, "group %zu", i);
    }
    cr_assert_eq(a->n_uni, b->n_uni, "unified %zu vs %zu", a->n_uni, b->n_uni);
    for (size_t i = 0; i < a->n_uni; i++)
        cr_assert(memcmp(&a->u[i], &b->u[i], sizeof a->u[i]) == 0, "unified row %zu", i);
}

/* Reference once; fast path for each chunking x threads x SIMD level. */
static void check_dataset(const dataset *d, const uint32_t *rank)
{
    result ref, got;
    st_error err = {0};
    run_ref(d, rank, &ref);
    static const size_t chunks[] = {0, 1000, 777};
    static const unsigned threads[] = {1, 2, 3};
    static const st_cpu_isa caps[] = {ST_CPU_SCALAR, ST_CPU_AVX2, ST_CPU_AVX512};
    for (size_t c = 0; c < 3; c++)
        for (size_t t = 0; t < 3; t++)
            for (size_t l = 0; l < 3; l++) {
                if (c != 0 && l != 2 && t != 0) continue; /* keep the matrix small */
                st_status s = run_fast(d, threads[t], caps[l], chunks[c], rank, &got, &err);
                cr_assert_eq(s, ST_OK, "%s", err.msg);
                assert_same(&got, &ref);
                result_free(&got);
            }
    result_free(&ref);
}

Test(agg, random_direct_ids)
{
    dataset d = {0};
    make_random(&d, 1, 20000, 9000, 300, 1, 1, 40);
    check_dataset(&d, NULL);
    dataset_free(&d);
}

Test(agg, random_sparse_large_ids_hashed)
{
    dataset d = {0};
    /* about 2 lines per group: finish sorts each segment instead of the
     * two-pass radix grouping the denser data sets take */
    make_random(&d, 2, 15000, 15000, 2000, INT64_C(1000000000000), INT64_C(7919), 25);
    check_dataset(&d, NULL);
    uint32_t rank[25];
    for (uint32_t i = 0; i < 25; i++) rank[i] = (i * 11 + 4) % 25;
    d.t[1].qty[14000] = INT64_C(1) << 40; /* widens the FOC row store late */
    check_dataset(&d, rank);
    d.dims.customer_id_min = INT64_MIN;
    d.dims.customer_id_max = INT64_MAX;
    check_dataset(&d, NULL);
    dataset_free(&d);
}

Test(agg, wide_quantities_arrive_late)
{
    /* int32-sized quantities first, then values beyond int32 in the last
     * chunks: the row store widens mid-stream */
    dataset d = {0};
    make_random(&d, 4, 12000, 6000, 150, 1, 1, 30);
    d.t[0].qty[11990] = INT64_C(3000000000000);
    d.t[0].qty[11000] = -INT64_C(500000000000);
    d.t[1].qty[5999] = (int64_t)INT32_MIN - 1;
    d.t[1].qty[10] = INT32_MAX;
    check_dataset(&d, NULL);
    dataset_free(&d);
}

Test(agg, few_groups_many_lines_and_material_rank)
{
    dataset d = {0};
    make_random(&d, 3, 30000, 5001, 3, 5, 1, 300);
    uint32_t *rank = malloc(d.n_mat * sizeof *rank);
    for (uint32_t i = 0; i < d.n_mat; i++) rank[i] = (i * 7 + 3) % d.n_mat; /* 300 coprime 7 */
    check_dataset(&d, rank);
    check_dataset(&d, NULL);
    free(rank);
    dataset_free(&d);
}

Test(agg, tiny_hand_checked)
{
    /* customer 7, 201912: sales 1,2,3,10 (median 2.5), foc 5 -> ratio 5/21;
     * customer 7, 202001: foc only 0,0 (ratio 0/0 -> 0); customer 3 sales
     * only, materials 4,4,9 -> unique 2. */
    int64_t sc[] = {7, 7, 7, 7, 3, 3, 3};
    int32_t sp[] = {201912, 201912, 201912, 201912, 202001, 202001, 202001};
    uint32_t sm[] = {1, 2, 1, 2, 4, 4, 9};
    int64_t sq[] = {3, 1, 10, 2, 5, 6, 7};
    int64_t fc[] = {7, 7, 7};
    int32_t fp[] = {201912, 202001, 202001};
    uint32_t fm[] = {5, 1, 1};
    int64_t fq[] = {5, 0, 0};
    st_feature_dims dims = {1, 10, 201912, 202001};
    st_features *fx;
    st_error err;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, sc, sp, sm, sq, 7, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_features_add_foc(fx, fc, fp, fm, fq, 3, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_features_finish(fx, NULL, 10, 2, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_features_n_groups(fx), 3);
    st_feature_row r;
    st_features_get(fx, 0, &r);
    cr_assert_eq(r.customer_id, 3);
    cr_assert_eq(r.total_sold_quantity, 18);
    cr_assert_eq(r.unique_materials, 2);
    cr_assert(r.has_median_sold && r.median_sold_order_size == 6.0 && !r.has_median_foc);
    st_features_get(fx, 1, &r);
    cr_assert_eq(r.customer_id, 7);
    cr_assert_eq(r.period_key, 201912);
    cr_assert(r.median_sold_order_size == 2.5);
    cr_assert(r.foc_ratio == 5.0 / 21.0);
    cr_assert_eq(r.unique_materials, 3);
    st_features_get(fx, 2, &r);
    cr_assert_eq(r.period_key, 202001);
    cr_assert(r.foc_ratio == 0.0 && r.total_foc_transactions == 2 && !r.has_median_sold);
    cr_assert(r.median_foc_order_size == 0.0);
    cr_assert_eq(st_features_n_unified(fx), 2 + 3 + 1);
    st_features_free(fx);
}

Test(agg, empty_input)
{
    st_feature_dims dims = {1, 1000, 202001, 202012};
    st_features *fx;
    st_error err;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, NULL, NULL, NULL, NULL, 0, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, NULL, 0, 3, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_features_n_groups(fx), 0);
    cr_assert_eq(st_features_n_unified(fx), 0);
    int64_t c;
    int32_t p;
    uint32_t m;
    st_unified_batch b = {&c, &p, &m, &c, &c, &c, &c};
    st_unified_cursor cur = {0, 0, 0};
    size_t n = 1;
    cr_assert_eq(st_features_unified_next(fx, &cur, &b, 1, &n, &err), ST_OK);
    cr_assert_eq(n, 0);
    st_features_free(fx);
}

Test(agg, sum_overflow_is_reported)
{
    int64_t c[] = {2, 2, 2};
    int32_t p[] = {202001, 202001, 202001};
    uint32_t m[] = {0, 1, 2};
    int64_t q[] = {INT64_MAX / 2 + 1, INT64_MAX / 2 + 1, 0};
    st_feature_dims dims = {1, 10, 202001, 202001};
    st_features *fx;
    st_error err;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_foc(fx, c, p, m, q, 3, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, NULL, 3, 1, &err), ST_ERR_OVERFLOW);
    cr_assert_not_null(strstr(err.msg, "total_foc_quantity"), "%s", err.msg);
    cr_assert_eq(st_features_n_groups(fx), 0);
    st_features_free(fx);

    /* total fits (MAX - 10 + 5), per-material (MAX + 5) does not */
    int64_t q2[] = {INT64_MAX, -10, 5};
    uint32_t m2[] = {0, 1, 0};
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, c, p, m2, q2, 3, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, NULL, 3, 1, &err), ST_ERR_OVERFLOW);
    cr_assert_not_null(strstr(err.msg, "per-material"), "%s", err.msg);
    st_features_free(fx);
}

Test(agg, bad_rows_and_dims_are_rejected)
{
    st_features *fx;
    st_error err;
    st_feature_dims bad = {1, 10, 202013, 202101};
    cr_assert_eq(st_features_create(&fx, &bad, &err), ST_ERR_INVALID);
    bad = (st_feature_dims){10, 1, 202001, 202101};
    cr_assert_eq(st_features_create(&fx, &bad, &err), ST_ERR_INVALID);

    st_feature_dims dims = {1, 10, 201912, 202001};
    int64_t c[20];
    int32_t p[20];
    uint32_t m[20] = {0};
    int64_t q[20] = {0};
    for (int i = 0; i < 20; i++) {
        c[i] = 1 + i % 10;
        p[i] = 201912;
    }
    p[13] = 201913; /* in range, not a month */
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, c, p, m, q, 5, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, c + 5, p + 5, m, q, 15, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "sales row 13"), "%s", err.msg);
    cr_assert_eq(st_features_add_sales(fx, c, p, m, q, 1, &err), ST_ERR_INVALID);
    st_features_free(fx);

    p[13] = 201912;
    c[17] = 11; /* customer outside dims */
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_foc(fx, c, p, m, q, 20, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "foc row 17: customer_id 11"), "%s", err.msg);
    st_features_free(fx);

    /* hashed path reports the same way */
    st_feature_dims wide = {1, INT64_C(1) << 40, 201912, 202001};
    cr_assert_eq(st_features_create(&fx, &wide, &err), ST_OK);
    c[17] = 0;
    cr_assert_eq(st_features_add_foc(fx, c, p, m, q, 20, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "foc row 17: customer_id 0"), "%s", err.msg);
    st_features_free(fx);

    /* material code beyond the rank table */
    uint32_t rank[2] = {1, 0};
    m[3] = 2;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, c, p, m, q, 10, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, rank, 2, 1, &err), ST_ERR_INVALID);
    st_features_free(fx);
    uint32_t notperm[2] = {1, 1};
    m[3] = 0;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, c, p, m, q, 10, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, notperm, 2, 1, &err), ST_ERR_INVALID);
    st_features_free(fx);
    /* without a rank table codes must still be below n_materials */
    m[5] = 7;
    cr_assert_eq(st_features_create(&fx, &dims, &err), ST_OK);
    cr_assert_eq(st_features_add_foc(fx, c, p, m, q, 10, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, NULL, 7, 1, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "foc row 5: material code 7"), "%s", err.msg);
    st_features_free(fx);
}

/* Strings -> st_dict -> features -> columns: material_code strings come
 * out bytewise-sorted within each (customer, period), with the sums of
 * the reference computed from the strings' ranks. */
Test(agg, dict_to_columns_end_to_end)
{
    static const char *const names[] = {"MAT-10", "MAT-9", "A", "", "mat-1", "MAT-100", "Z\xc3\xa9", "MAT-1"};
    const size_t n_names = sizeof names / sizeof *names;
    dataset d = {0};
    make_random(&d, 8, 3000, 2000, 40, 100, 3, (uint32_t)n_names);
    st_dict *dict;
    st_error err;
    cr_assert_eq(st_dict_create(&dict, &err), ST_OK);
    /* encode each table's material strings in chunks, overwriting mat[] with
     * the dictionary's (first-seen) codes */
    for (int t = 0; t < 2; t++) {
        lines *l = &d.t[t];
        for (size_t b = 0; b < l->n; b += 500) {
            size_t m = l->n - b < 500 ? l->n - b : 500;
            st_column col;
            st_column_init(&col, ST_TYPE_STR);
            for (size_t i = 0; i < m; i++) {
                const char *sname = names[l->mat[b + i]];
                cr_assert_eq(st_column_push_str(&col, sname, strlen(sname)), ST_OK);
            }
            cr_assert_eq(st_dict_add(dict, &col, l->mat + b, "material_code", &err), ST_OK);
            st_column_free(&col);
        }
    }
    cr_assert_eq(st_dict_finish(dict, &err), ST_OK);
    d.n_mat = st_dict_size(dict);
    const uint32_t *rank = st_dict_rank(dict);

    result ref;
    run_ref(&d, rank, &ref);
    st_features *fx;
    cr_assert_eq(st_features_create(&fx, &d.dims, &err), ST_OK);
    cr_assert_eq(st_features_add_sales(fx, d.t[0].cust, d.t[0].pk, d.t[0].mat, d.t[0].qty, d.t[0].n, &err), ST_OK);
    cr_assert_eq(st_features_add_foc(fx, d.t[1].cust, d.t[1].pk, d.t[1].mat, d.t[1].qty, d.t[1].n, &err), ST_OK);
    cr_assert_eq(st_features_finish(fx, rank, d.n_mat, 2, &err), ST_OK, "%s", err.msg);

    st_column ac[ST_ANALYTICS_N_COLS];
    static const st_type at[ST_ANALYTICS_N_COLS] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32,
                                                    ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_I64,
                                                    ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_F64, ST_TYPE_I64};
    for (int c = 0; c < ST_ANALYTICS_N_COLS; c++) st_column_init(&ac[c], at[c]);
    size_t ng = st_features_n_groups(fx);
    cr_assert_eq(ng, ref.n_groups);
    cr_assert_eq(st_features_append_analytics(fx, 0, 100, ac, &err), ST_OK);
    cr_assert_eq(st_features_append_analytics(fx, 100, ng, ac, &err), ST_OK); /* clamped */
    cr_assert_eq(ac[0].n_rows, ng);
    for (size_t i = 0; i < ng; i++) {
        const st_feature_row *r = &ref.g[i];
        cr_assert_eq(st_column_i64(&ac[0])[i], r->customer_id);
        cr_assert_eq(st_column_i32(&ac[1])[i] * 100 + st_column_i32(&ac[2])[i], r->period_key);
        cr_assert_eq(st_column_i32(&ac[3])[i], r->period_key);
        cr_assert_eq(st_column_i64(&ac[4])[i], r->total_sold_quantity);
        cr_assert_eq(st_column_i64(&ac[5])[i], r->total_foc_quantity);
        cr_assert(st_column_f64(&ac[6])[i] == r->foc_ratio);
        cr_assert_eq(st_column_i64(&ac[7])[i], r->total_sold_transactions);
        cr_assert_eq(st_column_i64(&ac[8])[i], r->total_foc_transactions);
        cr_assert_eq(st_column_valid(&ac[9], i), r->has_median_sold);
        cr_assert_eq(st_column_valid(&ac[10], i), r->has_median_foc);
        if (r->has_median_sold) cr_assert(st_column_f64(&ac[9])[i] == r->median_sold_order_size);
        if (r->has_median_foc) cr_assert(st_column_f64(&ac[10])[i] == r->median_foc_order_size);
        cr_assert_eq(st_column_i64(&ac[11])[i], r->unique_materials);
    }
    for (int c = 0; c < ST_ANALYTICS_N_COLS; c++) st_column_free(&ac[c]);

    st_column uc[ST_UNIFIED_N_COLS];
    static const st_type ut[ST_UNIFIED_N_COLS] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_STR,
                                                  ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_I64};
    for (int c = 0; c < ST_UNIFIED_N_COLS; c++) st_column_init(&uc[c], ut[c]);
    st_unified_cursor cur = {0, 0, 0};
    size_t got, total = 0;
    do {
        cr_assert_eq(st_features_append_unified(fx, &cur, dict, 1500, uc, &got, &err), ST_OK, "%s", err.msg);
        total += got;
    } while (got);
    cr_assert_eq(total, ref.n_uni);
    for (size_t i = 0; i < total; i++) {
        const uni_row *u = &ref.u[i];
        size_t len, elen;
        const char *sv = st_column_str(&uc[4], i, &len);
        const char *ev = st_dict_str(dict, u->mat, &elen);
        cr_assert(len == elen && memcmp(sv, ev, len) == 0, "row %zu material", i);
        cr_assert_eq(st_column_i64(&uc[0])[i], u->cust);
        cr_assert_eq(st_column_i32(&uc[3])[i], u->pk);
        cr_assert_eq(st_column_i32(&uc[2])[i], u->pk % 100);
        cr_assert_eq(st_column_i64(&uc[5])[i], u->sold_qty);
        cr_assert_eq(st_column_i64(&uc[6])[i], u->foc_qty);
        cr_assert_eq(st_column_i64(&uc[7])[i], u->sold_lines);
        cr_assert_eq(st_column_i64(&uc[8])[i], u->foc_lines);
        if (i > 0 && st_column_i64(&uc[0])[i - 1] == u->cust && st_column_i32(&uc[3])[i - 1] == u->pk) {
            size_t pl;
            const char *pv = st_column_str(&uc[4], i - 1, &pl);
            size_t l = pl < len ? pl : len;
            int c = l ? memcmp(pv, sv, l) : 0;
            cr_assert(c < 0 || (c == 0 && pl < len), "row %zu not bytewise after previous", i);
        }
    }
    /* wrong column type is refused */
    st_column_free(&uc[4]);
    st_column_init(&uc[4], ST_TYPE_I64);
    st_unified_cursor cur2 = {0, 0, 0};
    cr_assert_eq(st_features_append_unified(fx, &cur2, dict, 10, uc, &got, &err), ST_ERR_INVALID);
    for (int c = 0; c < ST_UNIFIED_N_COLS; c++) st_column_free(&uc[c]);
    st_features_free(fx);
    st_dict_free(dict);
    result_free(&ref);
    dataset_free(&d);
}

/* ---- st_dense: the one-pass path against the same reference ------------ */

/* Quantities folded into [lo, lo + span): small integers, the case the
 * dense path takes. */
static void fold_qty(dataset *d, int64_t lo, int64_t span)
{
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < d->t[t].n; i++) {
            int64_t q = d->t[t].qty[i] % span;
            d->t[t].qty[i] = lo + (q < 0 ? q + span : q);
        }
}

static st_dense_dims dense_dims_of(const dataset *d)
{
    st_dense_dims dd = {d->dims, {0, 0}, {0, 0}};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < d->t[t].n; i++) {
            int64_t q = d->t[t].qty[i];
            if (i == 0 || q < dd.qty_min[t]) dd.qty_min[t] = q;
            if (i == 0 || q > dd.qty_max[t]) dd.qty_max[t] = q;
        }
    return dd;
}

static void dense_get(const void *obj, size_t i, st_feature_row *row) { st_dense_get(obj, i, row); }

static st_status dense_next(const void *obj, st_unified_cursor *cur, const st_unified_batch *b, size_t cap,
                            size_t *n, st_error *err)
{
    return st_dense_unified_next(obj, cur, b, cap, n, err);
}

/* st_dense_unified_values over ranges that start and end inside groups
 * and at their edges: the codes and the four values of the walk's rows
 * (all, n rows), and groups that spell out the rows' customers and
 * periods, neighbours differing, their rows adding up to the range; each
 * value made alone (st_dense_unified_column), and the codes without the
 * values, the same; an empty range or one past the rows is refused. */
static void check_values(const st_dense *dn, const st_unified_batch *all, size_t n)
{
    st_error err = {0};
    st_unified_groups g = {0};
    st_column v[4];
    uint32_t *codes = malloc((n + 1) * sizeof *codes);
    cr_assert(codes);
    const size_t at[] = {0, 1, 3, n / 3, n / 2, n > 2 ? n - 2 : 0};
    const size_t len[] = {1, 5, 977, n};
    for (size_t a = 0; a < sizeof at / sizeof *at; a++)
        for (size_t l = 0; l < sizeof len / sizeof *len; l++) {
            size_t r = at[a], m = len[l] < n - r ? len[l] : n - r;
            if (m == 0) continue;
            for (int k = 0; k < 4; k++) st_column_init(&v[k], ST_TYPE_I64);
            cr_assert_eq(st_dense_unified_values(dn, r, m, v, codes, &g, &err), ST_OK, "%s", err.msg);
            const int64_t *want[4] = {all->sold_qty, all->foc_qty, all->sold_lines, all->foc_lines};
            for (size_t i = 0; i < m; i++) {
                cr_assert_eq(codes[i], all->material[r + i], "row %zu of %zu+%zu", r + i, r, m);
                for (int k = 0; k < 4; k++) cr_assert_eq(st_column_i64(&v[k])[i], want[k][r + i], "row %zu value %d", r + i, k);
            }
            /* each value alone, appended after what its buffer holds */
            for (int k = 0; k < 4; k++) {
                cr_assert_eq(st_dense_unified_column(dn, r, m, k, &v[k], &err), ST_OK, "%s", err.msg);
                cr_assert_eq(v[k].n_rows, 2 * m);
                for (size_t i = 0; i < m; i++)
                    cr_assert_eq(st_column_i64(&v[k])[m + i], want[k][r + i], "row %zu value %d alone", r + i, k);
            }
            /* the codes and groups alone */
            cr_assert_eq(st_dense_unified_values(dn, r, m, NULL, codes, &g, &err), ST_OK, "%s", err.msg);
            for (size_t i = 0; i < m; i++) cr_assert_eq(codes[i], all->material[r + i], "row %zu, no values", r + i);
            size_t row = r;
            for (size_t k = 0; k < g.n; k++) {
                cr_assert_gt(g.rows[k], 0);
                if (k) cr_assert(g.cust[k] != g.cust[k - 1] || g.pk[k] != g.pk[k - 1], "group %zu repeats", k);
                for (uint32_t i = 0; i < g.rows[k]; i++, row++)
                    cr_assert(g.cust[k] == all->customer_id[row] && g.pk[k] == all->period_key[row], "row %zu", row);
            }
            cr_assert_eq(row, r + m, "the groups hold %zu rows of %zu", row - r, m);
            for (int k = 0; k < 4; k++) st_column_free(&v[k]);
        }
    for (int k = 0; k < 4; k++) st_column_init(&v[k], ST_TYPE_I64);
    cr_assert_eq(st_dense_unified_values(dn, 0, 0, v, codes, &g, &err), ST_ERR_INVALID, "an empty range");
    cr_assert_eq(st_dense_unified_values(dn, n, 1, v, codes, &g, &err), ST_ERR_INVALID, "past the rows");
    cr_assert_eq(st_dense_unified_column(dn, 0, 0, 0, &v[0], &err), ST_ERR_INVALID, "an empty range, alone");
    cr_assert_eq(st_dense_unified_column(dn, n, 1, 0, &v[0], &err), ST_ERR_INVALID, "past the rows, alone");
    cr_assert_eq(st_dense_unified_column(dn, 0, 1, 4, &v[0], &err), ST_ERR_INVALID, "no fifth value");
    st_column f64;
    st_column_init(&f64, ST_TYPE_F64);
    cr_assert_eq(st_dense_unified_column(dn, 0, 1, 0, &f64, &err), ST_ERR_INVALID, "int64 only");
    st_column_free(&f64);
    for (int k = 0; k < 4; k++) st_column_free(&v[k]);
    st_unified_groups_free(&g);
    free(codes);
}

/* st_dense_unified_seek: from any row, the rows the walk from the start
 * gives from there (the gold step's threads each seek to their chunk). */
static void check_seek(const st_dense *dn)
{
    st_error err = {0};
    size_t n = st_dense_n_unified(dn);
    int64_t *cust = malloc((n + 1) * sizeof *cust), *sq = malloc((n + 1) * sizeof *sq);
    int64_t *fq = malloc((n + 1) * sizeof *fq), *sl = malloc((n + 1) * sizeof *sl), *fl = malloc((n + 1) * sizeof *fl);
    int32_t *pk = malloc((n + 1) * sizeof *pk);
    uint32_t *mat = malloc((n + 1) * sizeof *mat);
    cr_assert(cust && sq && fq && sl && fl && pk && mat);
    st_unified_batch all = {cust, pk, mat, sq, fq, sl, fl};
    st_unified_cursor cur = {0, 0, 0};
    size_t got = 0;
    cr_assert_eq(st_dense_unified_next(dn, &cur, &all, n + 1, &got, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(got, n);
    const size_t at[] = {0, 1, 2, 7, n / 3, n / 2, n > 0 ? n - 1 : 0, n};
    for (size_t a = 0; a < sizeof at / sizeof *at; a++) {
        size_t r = at[a] > n ? n : at[a];
        int64_t c5[5], s5[5], f5[5], l5[5], m5[5];
        int32_t p5[5];
        uint32_t t5[5];
        st_unified_batch b = {c5, p5, t5, s5, f5, l5, m5};
        cr_assert_eq(st_dense_unified_seek(dn, r, &cur, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_unified_next(dn, &cur, &b, 5, &got, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(got, n - r < 5 ? n - r : 5, "rows after seeking to %zu of %zu", r, n);
        for (size_t i = 0; i < got; i++)
            cr_assert(c5[i] == cust[r + i] && p5[i] == pk[r + i] && t5[i] == mat[r + i] && s5[i] == sq[r + i] &&
                          f5[i] == fq[r + i] && l5[i] == sl[r + i] && m5[i] == fl[r + i],
                      "row %zu after seeking to %zu", r + i, r);
    }
    cr_assert_eq(st_dense_unified_seek(dn, (uint64_t)n + 1, &cur, &err), ST_ERR_INVALID, "past the end");
    check_values(dn, &all, n);
    free(cust);
    free(sq);
    free(fq);
    free(sl);
    free(fl);
    free(pk);
    free(mat);
}

/* Lines split round-robin by chunk over n_parts accumulators (as the gold
 * step's threads split chunks), merged, finished (the rank order put on a
 * pool of n_parts threads when there are several), read back. */
static void run_dense(const dataset *d, size_t chunk, unsigned n_parts, const uint32_t *rank, result *out)
{
    st_error err = {0};
    st_dense_dims dd = dense_dims_of(d);
    cr_assert(st_dense_eligible(&dd));
    st_dense *parts[4] = {NULL, NULL, NULL, NULL};
    for (unsigned k = 0; k < n_parts; k++) {
        cr_assert_eq(st_dense_create(&parts[k], &dd, &err), ST_OK, "%s", err.msg);
        /* two parts: the first with room for one row (its rows grow past
         * it), the second with room for every line (they never grow) */
        if (n_parts == 2)
            cr_assert_eq(st_dense_reserve_rows(parts[k], k ? d->t[0].n + d->t[1].n : 1, &err), ST_OK, "%s", err.msg);
    }
    for (int t = 0; t < 2; t++) {
        const lines *l = &d->t[t];
        size_t step = chunk ? chunk : (l->n ? l->n : 1);
        for (size_t b = 0, c = 0; b < l->n; b += step, c++) {
            size_t m = l->n - b < step ? l->n - b : step;
            /* the dictionary grows as chunks arrive: pass the codes seen so far */
            uint32_t n_codes = 0;
            for (size_t i = 0; i < b + m; i++) n_codes = l->mat[i] + 1 > n_codes ? l->mat[i] + 1 : n_codes;
            cr_assert_eq(st_dense_add(parts[c % n_parts], t, l->cust + b, l->pk + b, l->mat + b, l->qty + b, m,
                                      n_codes, &err),
                         ST_OK, "%s", err.msg);
        }
    }
    for (unsigned k = 1; k < n_parts; k++) cr_assert_eq(st_dense_merge(parts[0], parts[k], &err), ST_OK, "%s", err.msg);
    st_pool *pool = n_parts > 1 ? st_pool_new((int)n_parts) : NULL;
    cr_assert(n_parts == 1 || pool);
    cr_assert_eq(st_dense_finish_on(parts[0], rank, d->n_mat, pool, &err), ST_OK, "%s", err.msg);
    st_pool_free(pool);
    st_dense *dn = parts[0];
    check_seek(dn);
    memset(out, 0, sizeof *out);
    cr_assert_eq(read_back(dn, st_dense_n_groups(dn), st_dense_n_unified(dn), dense_get, dense_next, 5, out, &err),
                 ST_OK, "%s", err.msg);
    for (unsigned k = 0; k < n_parts; k++) st_dense_free(parts[k]);
}

static void check_dense(const dataset *d, const uint32_t *rank)
{
    result ref, got;
    run_ref(d, rank, &ref);
    static const size_t chunks[] = {0, 1000, 777};
    for (size_t c = 0; c < 3; c++)
        for (unsigned parts = 1; parts <= 3; parts++) {
            run_dense(d, chunks[c], parts, rank, &got);
            assert_same(&got, &ref);
            result_free(&got);
        }
    result_free(&ref);
}

Test(agg, dense_random_matches_reference)
{
    dataset d = {0};
    make_random(&d, 11, 20000, 9000, 300, 1, 1, 40);
    fold_qty(&d, 0, 37);
    check_dense(&d, NULL);
    uint32_t rank[40];
    for (uint32_t i = 0; i < 40; i++) rank[i] = (i * 13 + 5) % 40;
    check_dense(&d, rank);
    dataset_free(&d);
}

Test(agg, dense_negative_quantities_even_counts_few_groups)
{
    /* 3 customers x 7 periods, many lines each: medians of even counts
     * straddle bins; quantities in [-20, 20] */
    dataset d = {0};
    make_random(&d, 12, 30000, 5001, 3, 5, 1, 300);
    fold_qty(&d, -20, 41);
    uint32_t *rank = malloc(d.n_mat * sizeof *rank);
    for (uint32_t i = 0; i < d.n_mat; i++) rank[i] = (i * 7 + 3) % d.n_mat;
    check_dense(&d, rank);
    free(rank);
    dataset_free(&d);
}

Test(agg, dense_one_table_empty)
{
    dataset d = {0};
    make_random(&d, 13, 4000, 0, 50, 1000, 1, 9);
    fold_qty(&d, 1, 5);
    check_dense(&d, NULL);
    dataset_free(&d);
}

/* Month-ordered lines (as silver files are) split into n_parts
 * contiguous month ranges whose edges share a month; each part adds its
 * lines month by month, both tables, and seals every month only it has
 * lines of right after them (the step's order), so sealed months free
 * their blocks for the next ones; the boundary months are merged live. */
static void run_dense_sealed(const dataset *d, unsigned n_parts, const uint32_t *rank, result *out)
{
    st_error err = {0};
    st_dense_dims dd = dense_dims_of(d);
    enum { NP = sizeof periods / sizeof periods[0] };
    st_dense *parts[4] = {NULL, NULL, NULL, NULL};
    for (unsigned k = 0; k < n_parts; k++) {
        cr_assert_eq(st_dense_create(&parts[k], &dd, &err), ST_OK, "%s", err.msg);
        /* two parts: the first with room for one row (its rows grow past
         * it), the second with room for every line (they never grow) */
        if (n_parts == 2)
            cr_assert_eq(st_dense_reserve_rows(parts[k], k ? d->t[0].n + d->t[1].n : 1, &err), ST_OK, "%s", err.msg);
    }
    /* part k takes periods [lo_k, hi_k]; neighbours share their edge period,
     * each taking the lines of it by parity of the line's index */
    size_t lo[4], hi[4];
    for (unsigned k = 0; k < n_parts; k++) {
        lo[k] = NP * k / n_parts;
        hi[k] = k + 1 == n_parts ? NP - 1 : NP * (k + 1) / n_parts;
    }
    for (unsigned k = 0; k < n_parts; k++) {
        for (size_t pi = lo[k]; pi <= hi[k]; pi++) {
            bool shared_lo = k > 0 && pi == hi[k - 1], shared_hi = k + 1 < n_parts && pi == lo[k + 1];
            for (int t = 0; t < 2; t++) {
                const lines *l = &d->t[t];
                for (size_t i = 0; i < l->n; i++) {
                    if (l->pk[i] != periods[pi]) continue;
                    if ((shared_lo && i % 2 == 0) || (shared_hi && i % 2 == 1)) continue;
                    cr_assert_eq(st_dense_add(parts[k], t, l->cust + i, l->pk + i, l->mat + i, l->qty + i, 1, d->n_mat,
                                              &err),
                                 ST_OK, "%s", err.msg);
                }
            }
            if (!shared_lo && !shared_hi)
                cr_assert_eq(st_dense_seal_month(parts[k], periods[pi], &err), ST_OK, "%s", err.msg);
        }
    }
    for (unsigned k = 1; k < n_parts; k++) cr_assert_eq(st_dense_merge(parts[0], parts[k], &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_finish(parts[0], rank, d->n_mat, &err), ST_OK, "%s", err.msg);
    memset(out, 0, sizeof *out);
    cr_assert_eq(read_back(parts[0], st_dense_n_groups(parts[0]), st_dense_n_unified(parts[0]), dense_get, dense_next,
                           7, out, &err),
                 ST_OK, "%s", err.msg);
    for (unsigned k = 0; k < n_parts; k++) st_dense_free(parts[k]);
}

Test(agg, dense_sealed_months_match_reference)
{
    dataset d = {0};
    make_random(&d, 21, 12000, 7000, 40, 3, 2, 200);
    fold_qty(&d, -3, 50);
    uint32_t rank[200];
    for (uint32_t i = 0; i < 200; i++) rank[i] = (i * 37 + 11) % 200;
    for (int r = 0; r < 2; r++) {
        result ref, got;
        run_ref(&d, r ? rank : NULL, &ref);
        for (unsigned parts = 1; parts <= 3; parts++) {
            run_dense_sealed(&d, parts, r ? rank : NULL, &got);
            assert_same(&got, &ref);
            result_free(&got);
        }
        result_free(&ref);
    }
    dataset_free(&d);
}

/* A month sealed without a line (its chunk's zone map spanned it, no line
 * fell in it) merges into an accumulator that had none of it either. */
Test(agg, dense_empty_sealed_month_merges)
{
    st_error err = {0};
    st_dense_dims dd = {{1, 3, 202001, 202003}, {1, 1}, {9, 9}};
    st_dense *a = NULL, *b = NULL;
    cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_create(&b, &dd, &err), ST_OK, "%s", err.msg);
    int64_t cust[2] = {1, 2}, qty[2] = {3, 4};
    int32_t pk[2] = {202001, 202003};
    uint32_t mat[2] = {0, 0};
    cr_assert_eq(st_dense_add(a, 0, cust, pk, mat, qty, 2, 1, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_seal_month(b, 202002, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_merge(a, b, &err), ST_OK, "%s", err.msg);
    uint32_t rank[1] = {0};
    cr_assert_eq(st_dense_finish(a, rank, 1, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_n_groups(a), 2u);
    cr_assert_eq(st_dense_n_unified(a), 2u);
    st_feature_row r;
    st_dense_get(a, 1, &r);
    cr_assert(r.customer_id == 2 && r.period_key == 202003 && r.total_sold_quantity == 4);
    st_dense_free(a);
    st_dense_free(b);
}

/* A unified row whose sum of quantities could leave int32 (its lines
 * times its table's largest |quantity| past INT32_MAX: a fourth line of
 * 715,827,882) is noted, on the accumulator that sealed it and through a
 * merge, the cells' totals exact while it is not; three lines fit, in
 * either sign. */
Test(agg, dense_notes_a_row_sum_past_int32)
{
    st_error err = {0};
    st_dense_dims dd = {{1, 2, 202001, 202002}, {715827882, -715827882}, {715827882, -715827882}};
    uint32_t rank[2] = {0, 1};
    st_feature_row r;
    for (int wide = 0; wide < 2; wide++) {
        st_dense *a = NULL, *b = NULL;
        cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_create(&b, &dd, &err), ST_OK, "%s", err.msg);
        int64_t cs[4] = {1, 1, 1, 1}, qs[4] = {715827882, 715827882, 715827882, 715827882};
        int64_t cf[3] = {2, 2, 2}, qf[3] = {-715827882, -715827882, -715827882};
        int32_t pk[4] = {202001, 202001, 202001, 202001};
        uint32_t m1[4] = {1, 1, 1, 1}, m0[3] = {0, 0, 0};
        cr_assert_eq(st_dense_add(b, 0, cs, pk, m1, qs, wide ? 4 : 3, 2, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_add(b, 1, cf, pk, m0, qf, 3, 2, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_seal_month(b, 202001, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_merge(a, b, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_finish(a, rank, 2, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_dense_sums_fit(a), !wide, "wide %d", wide);
        cr_assert_eq(st_dense_n_groups(a), 2u);
        if (wide) {
            st_dense_free(a);
            st_dense_free(b);
            continue;
        }
        st_dense_get(a, 0, &r);
        cr_assert_eq(r.total_sold_quantity, 3 * (int64_t)715827882, "exact cell total");
        st_dense_get(a, 1, &r);
        cr_assert_eq(r.total_foc_quantity, -3 * (int64_t)715827882);
        st_dense_free(a);
        st_dense_free(b);
    }
}

Test(agg, dense_sealed_month_refuses_lines_and_conflicting_merges)
{
    st_error err = {0};
    st_dense_dims dd = {{1, 10, 202001, 202012}, {0, 0}, {100, 100}};
    int64_t cust[2] = {1, 2}, qty[2] = {5, 7};
    int32_t pk[2] = {202003, 202004};
    uint32_t mat[2] = {0, 1};
    st_dense *a, *b;
    cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_add(a, 0, cust, pk, mat, qty, 2, 2, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_seal_month(a, 202003, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_seal_month(a, 202003, &err), ST_OK, "sealing twice is a no-op");
    cr_assert_eq(st_dense_seal_month(a, 202013, &err), ST_ERR_INVALID, "not a month");
    st_dense_free(a);
    /* a line of a sealed month is refused, naming its row */
    cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_seal_month(a, 202004, &err), ST_OK);
    cr_assert_eq(st_dense_add(a, 0, cust, pk, mat, qty, 2, 2, &err), ST_ERR_INVALID);
    cr_assert(strstr(err.msg, "row 1 (period_key 202004) is in a month sealed before"), "%s", err.msg);
    st_dense_free(a);
    /* a month sealed on one side and live on the other cannot merge */
    cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_create(&b, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_add(a, 0, cust, pk, mat, qty, 1, 2, &err), ST_OK);
    cr_assert_eq(st_dense_add(b, 1, cust, pk, mat, qty, 1, 2, &err), ST_OK);
    cr_assert_eq(st_dense_seal_month(b, 202003, &err), ST_OK);
    cr_assert_eq(st_dense_merge(a, b, &err), ST_ERR_INVALID);
    cr_assert(strstr(err.msg, "sealed on one side"), "%s", err.msg);
    st_dense_free(a);
    st_dense_free(b);
    /* sealed on one side, nothing on the other: moves over */
    cr_assert_eq(st_dense_create(&a, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_create(&b, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_add(a, 0, cust + 1, pk + 1, mat + 1, qty + 1, 1, 2, &err), ST_OK);
    cr_assert_eq(st_dense_add(b, 1, cust, pk, mat, qty, 1, 2, &err), ST_OK);
    cr_assert_eq(st_dense_seal_month(b, 202003, &err), ST_OK);
    cr_assert_eq(st_dense_merge(a, b, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_finish(a, NULL, 2, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_n_groups(a), 2);
    st_feature_row row;
    st_dense_get(a, 0, &row);
    cr_assert(row.customer_id == 1 && row.period_key == 202003 && row.total_foc_quantity == 5 &&
              row.median_foc_order_size == 5.0 && !row.has_median_sold);
    st_dense_free(a);
    st_dense_free(b);
}

Test(agg, dense_eligibility_and_bad_rows)
{
    st_error err = {0};
    st_dense_dims dd = {{1, 100, 202001, 202412}, {0, 0}, {580, 146}};
    cr_assert(st_dense_eligible(&dd));
    /* blocks of both tables, histograms, sealed cells (56 bytes) and
     * unified rows (20 bytes, with half again of pool slack) */
    cr_assert_eq(st_dense_bytes(&dd, 150),
                 2ull * 6000 * 150 * 8 + 6000ull * (581 + 147) * 4 + 6000ull * 56 + 6000ull * 150 * 20 * 3 / 2);
    st_dense_dims wide = dd;
    wide.qty_max[0] = 1000000000; /* histogram too wide: st_features takes it */
    cr_assert_not(st_dense_eligible(&wide));
    wide = dd;
    wide.qty_min[1] = (int64_t)INT32_MIN - 1;
    cr_assert_not(st_dense_eligible(&wide));
    wide = dd;
    wide.f.customer_id_max = 1000000;
    cr_assert_not(st_dense_eligible(&wide));
    st_dense *dn;
    cr_assert_neq(st_dense_create(&dn, &wide, &err), ST_OK);

    cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
    int64_t cust[4] = {1, 100, 50, 7};
    int32_t pk[4] = {202001, 202412, 202013, 202006}; /* row 2: month 13 */
    uint32_t mat[4] = {0, 1, 2, 3};
    int64_t qty[4] = {0, 580, 3, 4};
    cr_assert_eq(st_dense_add(dn, 0, cust, pk, mat, qty, 4, 4, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "row 2"), "%s", err.msg);
    cr_assert_eq(st_dense_finish(dn, NULL, 4, &err), ST_ERR_INVALID); /* failed object */
    st_dense_free(dn);

    cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
    pk[2] = 202003;
    qty[3] = 581; /* above the sales range */
    cr_assert_eq(st_dense_add(dn, 0, cust, pk, mat, qty, 4, 4, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "row 3"), "%s", err.msg);
    st_dense_free(dn);

    cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
    qty[3] = 4;
    cr_assert_eq(st_dense_add(dn, 0, cust, pk, mat, qty, 4, 3, &err), ST_ERR_INVALID); /* code 3 >= 3 */
    st_dense_free(dn);

    /* offsets that wrap below the minimum, or whose low 32 bits alone
     * would fit: each refused, naming its row, in a long slice */
    {
        enum { N = 3000 };
        static int64_t c2[N], q2[N];
        static int32_t p2[N];
        static uint32_t m2[N];
        const int64_t bad_cust[3] = {0, 1 + ((int64_t)1 << 32), INT64_MIN + 1};
        const int64_t bad_qty[3] = {-1, (int64_t)1 << 32, INT64_MAX};
        for (int k = 0; k < 6; k++) {
            for (size_t i = 0; i < N; i++) {
                c2[i] = 1 + (int64_t)(i % 100);
                p2[i] = 202005;
                m2[i] = (uint32_t)(i % 4);
                q2[i] = (int64_t)(i % 500);
            }
            size_t at = 2049 + (size_t)k * 31;
            if (k < 3) c2[at] = bad_cust[k];
            else q2[at] = bad_qty[k - 3];
            cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
            cr_assert_eq(st_dense_add(dn, 0, c2, p2, m2, q2, N, 4, &err), ST_ERR_INVALID, "case %d", k);
            char want[32];
            snprintf(want, sizeof want, "row %zu ", at);
            cr_assert_not_null(strstr(err.msg, want), "case %d: %s", k, err.msg);
            st_dense_free(dn);
        }
    }

    /* a code with lines at or above n_materials is refused at finish */
    cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
    cr_assert_eq(st_dense_add(dn, 1, cust, pk, mat, qty, 3, 4, &err), ST_ERR_INVALID); /* 580 > FOC max 146 */
    st_dense_free(dn);
    cr_assert_eq(st_dense_create(&dn, &dd, &err), ST_OK);
    qty[1] = 146;
    cr_assert_eq(st_dense_add(dn, 1, cust, pk, mat, qty, 4, 4, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_dense_finish(dn, NULL, 3, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "material code 3"), "%s", err.msg);
    st_dense_free(dn);
}
