/*
 * test_groupby.c: the kernels under strata/agg.h.
 *
 *  - group-key kernels: AVX2 and AVX-512 give the same stop positions and
 *    keys as the scalar kernel on random rows with unseen customers,
 *    out-of-range ids and non-month period keys;
 *  - sorts and selection against qsort, on random data with many
 *    duplicates and on patterns that hurt naive quicksorts;
 *  - the string dictionary: stable codes across chunks, ranks in bytewise
 *    order, NULL rejected.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agg_internal.h"
#include "strata/agg.h"
#include "strata/column.h"
#include "strata/cpu.h"

TestSuite(groupby);

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- key kernels ------------------------------------------------------- */

/* Drives a kernel over all rows the way the engine does, but instead of
 * fixing a stopping row it records it and skips it. */
static size_t drive(st_keys_fn fn, const st_keys_ctx *c, const int64_t *cust, const int32_t *pk,
                    size_t n, uint32_t *keys, size_t *stops)
{
    size_t done = 0, n_stops = 0;
    while (done < n) {
        done += fn(c, cust + done, pk + done, n - done, keys + done);
        if (done < n) {
            stops[n_stops++] = done;
            keys[done] = 0xdeadbeef;
            done++;
        }
    }
    return n_stops;
}

Test(groupby, key_kernels_simd_equal_scalar)
{
    enum { N = 20000, SPAN = 5000, PSPAN = 400 };
    uint64_t s = 42;
    uint32_t *slot = malloc(SPAN * sizeof *slot), *per = malloc(PSPAN * sizeof *per);
    int64_t *cust = malloc(N * sizeof *cust);
    int32_t *pk = malloc(N * sizeof *pk);
    uint32_t *k0 = malloc(N * sizeof *k0), *k1 = malloc(N * sizeof *k1);
    size_t *st0 = malloc(N * sizeof *st0), *st1 = malloc(N * sizeof *st1);
    for (int i = 0; i < SPAN; i++) slot[i] = rng_next(&s) % 10 == 0 ? ST_KEY_NONE : (uint32_t)(i * 3 % 997);
    slot[1] = 5; slot[2] = 6; slot[3] = 7;
    for (int i = 0; i < PSPAN; i++) per[i] = (i % 100 >= 1 && i % 100 <= 12) ? (uint32_t)(i / 100 * 12 + i % 100 - 1) : ST_KEY_NONE;
    st_keys_ctx c = {INT64_C(1000000000000), SPAN, slot, 201800, PSPAN, per, 48};
    for (int i = 0; i < N; i++) {
        uint64_t r = rng_next(&s);
        int64_t off = (int64_t)(r % (SPAN + 20)) - 10;
        if (r % 1000 == 7) off = INT64_MIN / 2; /* far out */
        cust[i] = c.cust_min + off;
        int32_t p = (int32_t)((r >> 32) % (PSPAN + 6)) - 3;
        if ((r >> 40) % 8 != 0) p = (int32_t)((r >> 44) % 4) * 100 + 1 + (int32_t)((r >> 50) % 12);
        pk[i] = c.per_min + p; /* index p is month p % 100 */
        if ((i / 64) % 3 != 0) { /* long valid runs */
            cust[i] = c.cust_min + 1 + (int64_t)(r % 3);
            pk[i] = 201805 + (int32_t)((r >> 8) % 7);
        }
    }
    size_t n0 = drive(st_keys_direct_scalar, &c, cust, pk, N, k0, st0);
    cr_assert_gt(n0, 100);
    cr_assert_lt(n0, N / 4);
    st_keys_fn variants[] = {st_keys_direct_avx2, st_keys_direct_avx512};
    st_cpu_isa need[] = {ST_CPU_AVX2, ST_CPU_AVX512};
    for (int v = 0; v < 2; v++) {
        if (st_cpu_detected() < need[v]) continue;
        for (size_t start = 0; start < 9; start++) { /* every alignment */
            size_t n1 = drive(variants[v], &c, cust + start, pk + start, N - start, k1, st1);
            size_t e = 0;
            for (size_t i = 0; i < n0; i++)
                if (st0[i] >= start) {
                    cr_assert_eq(st1[e], st0[i] - start, "variant %d stop %zu", v, e);
                    e++;
                }
            cr_assert_eq(n1, e);
            cr_assert(memcmp(k1, k0 + start, (N - start) * sizeof *k1) == 0, "variant %d keys", v);
        }
    }
    cr_assert_eq(st_keys_direct_pick(ST_CPU_SCALAR), st_keys_direct_scalar);
    free(slot); free(per); free(cust); free(pk); free(k0); free(k1); free(st0); free(st1);
}

Test(groupby, period_kernel_and_count)
{
    uint32_t per[30];
    for (int i = 0; i < 30; i++) per[i] = i == 12 ? ST_KEY_NONE : (uint32_t)i;
    st_keys_ctx c = {0, 0, NULL, 100, 30, per, 30};
    int32_t pk[] = {100, 129, 105, 112, 101};
    uint32_t out[5];
    cr_assert_eq(st_keys_period_scalar(&c, pk, 5, out), 3);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 29);
    cr_assert_eq(out[2], 5);
    int32_t pk2[] = {99};
    cr_assert_eq(st_keys_period_scalar(&c, pk2, 1, out), 0);
    uint32_t keys[] = {3, 1, 3, 3, 0}, counts[4] = {0};
    st_groupby_count_u32(keys, 5, counts);
    cr_assert(counts[0] == 1 && counts[1] == 1 && counts[2] == 0 && counts[3] == 3);
}

/* ---- sorts and selection ---------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct pair { uint64_t k; int64_t v; } pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return x->v < y->v ? -1 : x->v > y->v;
}

/* pattern: 0 random wide, 1 few distinct, 2 sorted, 3 reversed, 4 all
 * equal, 5 organ pipe, 6 sawtooth */
static int64_t gen(int pattern, size_t i, size_t n, uint64_t *s)
{
    switch (pattern) {
    case 0: return (int64_t)rng_next(s);
    case 1: return (int64_t)(rng_next(s) % 5);
    case 2: return (int64_t)i;
    case 3: return (int64_t)(n - i);
    case 4: return 7;
    case 5: return (int64_t)(i < n / 2 ? i : n - i);
    default: return (int64_t)(i % 17);
    }
}

Test(groupby, sorts_match_qsort)
{
    static const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 100, 1000, 4099};
    uint64_t s = 9;
    for (int pat = 0; pat < 7; pat++)
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            size_t n = sizes[z];
            int64_t *v = malloc((n + 1) * sizeof *v), *r = malloc((n + 1) * sizeof *r);
            uint32_t *k = malloc((n + 1) * sizeof *k), *u = malloc((n + 1) * sizeof *u);
            pair *p = malloc((n + 1) * sizeof *p), *q = malloc((n + 1) * sizeof *q);
            for (size_t i = 0; i < n; i++) {
                v[i] = r[i] = gen(pat, i, n, &s);
                k[i] = (uint32_t)gen(pat, i, n, &s);
                p[i] = (pair){k[i], v[i]};
            }
            qsort(r, n, sizeof *r, cmp_i64);
            int64_t *w = malloc((n + 1) * sizeof *w);
            memcpy(w, v, n * sizeof *v);
            st_sort_i64(w, n);
            cr_assert(n == 0 || memcmp(w, r, n * sizeof *w) == 0, "i64 pat %d n %zu", pat, n);

            /* u32 keys with i64 payload: keys sorted, pairs preserved */
            st_sort_u32_i64(k, v, n);
            for (size_t i = 0; i < n; i++) q[i] = (pair){k[i], v[i]};
            for (size_t i = 1; i < n; i++) cr_assert_leq(k[i - 1], k[i]);
            qsort(p, n, sizeof *p, cmp_pair);
            qsort(q, n, sizeof *q, cmp_pair);
            cr_assert(n == 0 || memcmp(p, q, n * sizeof *p) == 0, "u32_i64 pat %d n %zu", pat, n);

            /* i64 keys with u32 payload */
            for (size_t i = 0; i < n; i++) {
                w[i] = gen(pat, i, n, &s);
                u[i] = (uint32_t)i;
                p[i] = (pair){(uint64_t)w[i] ^ (UINT64_C(1) << 63), (int64_t)i};
            }
            st_sort_i64_u32(w, u, n);
            for (size_t i = 0; i < n; i++) q[i] = (pair){(uint64_t)w[i] ^ (UINT64_C(1) << 63), u[i]};
            for (size_t i = 1; i < n; i++) cr_assert_leq(w[i - 1], w[i]);
            qsort(p, n, sizeof *p, cmp_pair);
            qsort(q, n, sizeof *q, cmp_pair);
            cr_assert(n == 0 || memcmp(p, q, n * sizeof *p) == 0, "i64_u32 pat %d n %zu", pat, n);
            free(v); free(r); free(k); free(u); free(p); free(q); free(w);
        }
}

Test(groupby, select_and_median_match_sorting)
{
    uint64_t s = 5;
    for (int pat = 0; pat < 7; pat++)
        for (size_t n = 1; n < 300; n += (n < 40 ? 1 : 37)) {
            int64_t *v = malloc(n * sizeof *v), *r = malloc(n * sizeof *r), *w = malloc(n * sizeof *w);
            for (size_t i = 0; i < n; i++) v[i] = r[i] = gen(pat, i, n, &s) % 1000000001;
            qsort(r, n, sizeof *r, cmp_i64);
            for (size_t k = 0; k < n; k += 1 + n / 7) {
                memcpy(w, v, n * sizeof *v);
                cr_assert_eq(st_select_i64(w, n, k), r[k], "pat %d n %zu k %zu", pat, n, k);
                for (size_t i = 0; i < k; i++) cr_assert_leq(w[i], w[k]);
                for (size_t i = k + 1; i < n; i++) cr_assert_geq(w[i], w[k]);
            }
            memcpy(w, v, n * sizeof *v);
            double want = n % 2 ? (double)r[n / 2] : ((double)r[n / 2 - 1] + (double)r[n / 2]) / 2.0;
            cr_assert(st_median_i64(w, n) == want, "median pat %d n %zu", pat, n);
            free(v); free(r); free(w);
        }
    int64_t two[] = {INT64_MAX, INT64_MAX - 2};
    cr_assert(st_median_i64(two, 2) == ((double)INT64_MAX + (double)(INT64_MAX - 2)) / 2.0);
    int64_t big[] = {0, 1000000000, 1000000000, 0};
    cr_assert(st_median_i64(big, 4) == 500000000.0);
}

Test(groupby, sum_overflow)
{
    int64_t v[] = {INT64_MAX, 1};
    int64_t out = 5;
    cr_assert(!st_agg_sum_i64(v, 2, &out));
    cr_assert_eq(out, 5);
    int64_t w[] = {INT64_MAX, -1, 1, INT64_MIN};
    cr_assert(st_agg_sum_i64(w, 4, &out));
    cr_assert_eq(out, -1);
    cr_assert(st_agg_sum_i64(NULL, 0, &out) && out == 0);
    int64_t x[] = {INT64_MAX, 5, -10}; /* partial sum exceeds, total fits */
    cr_assert(st_agg_sum_i64(x, 3, &out));
    cr_assert_eq(out, INT64_MAX - 5);
    int64_t y[] = {INT64_MIN, -1, 1};
    cr_assert(st_agg_sum_i64(y, 3, &out) && out == INT64_MIN);
}

/* ---- dictionary -------------------------------------------------------- */

static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
    size_t l = la < lb ? la : lb;
    int c = l ? memcmp(a, b, l) : 0;
    return c ? c : (la < lb ? -1 : la > lb);
}

Test(groupby, dict_codes_and_ranks)
{
    enum { N = 5000, POOL = 300 };
    char pool[POOL][12];
    size_t plen[POOL];
    uint64_t s = 77;
    for (int i = 0; i < POOL; i++) {
        /* short strings over a tiny alphabet incl. 0x00 and 0xff, so
         * prefixes and high bytes occur; duplicates in the pool are fine */
        plen[i] = (size_t)(rng_next(&s) % 6) + (i % 40 == 0 ? 0 : 0);
        for (size_t j = 0; j < plen[i]; j++) {
            static const char alpha[] = {'A', 'B', '\0', (char)0xff, '1'};
            pool[i][j] = alpha[rng_next(&s) % 5];
        }
    }
    st_dict *d;
    st_error err;
    cr_assert_eq(st_dict_create(&d, &err), ST_OK);
    uint32_t *codes = malloc(N * sizeof *codes);
    size_t *pick = malloc(N * sizeof *pick);
    for (size_t b = 0; b < N; b += 1234) {
        size_t m = N - b < 1234 ? N - b : 1234;
        st_column col;
        st_column_init(&col, ST_TYPE_STR);
        for (size_t i = 0; i < m; i++) {
            pick[b + i] = (size_t)(rng_next(&s) % POOL);
            cr_assert_eq(st_column_push_str(&col, pool[pick[b + i]], plen[pick[b + i]]), ST_OK);
        }
        cr_assert_eq(st_dict_add(d, &col, codes + b, "material_code", &err), ST_OK, "%s", err.msg);
        st_column_free(&col);
    }
    uint32_t n = st_dict_size(d);
    cr_assert_gt(n, 10);
    /* same string <=> same code; code's string is the row's string */
    for (size_t i = 0; i < N; i++) {
        size_t len;
        const char *str = st_dict_str(d, codes[i], &len);
        cr_assert_eq(cmp_bytes(str, len, pool[pick[i]], plen[pick[i]]), 0);
    }
    /* first-seen order */
    uint32_t next = 0;
    for (size_t i = 0; i < N; i++) {
        cr_assert_leq(codes[i], next);
        if (codes[i] == next) next++;
    }
    cr_assert_eq(next, n);
    cr_assert_null(st_dict_rank(d));
    cr_assert_eq(st_dict_finish(d, &err), ST_OK);
    const uint32_t *rank = st_dict_rank(d), *sorted = st_dict_sorted(d);
    for (uint32_t r = 0; r < n; r++) cr_assert_eq(rank[sorted[r]], r);
    for (uint32_t r = 1; r < n; r++) {
        size_t la, lb;
        const char *a = st_dict_str(d, sorted[r - 1], &la), *b = st_dict_str(d, sorted[r], &lb);
        cr_assert_lt(cmp_bytes(a, la, b, lb), 0, "rank %u", r);
    }
    st_column col;
    st_column_init(&col, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&col, "x", 1), ST_OK);
    cr_assert_eq(st_dict_add(d, &col, codes, NULL, &err), ST_ERR_INVALID);
    st_column_free(&col);
    st_dict_free(d);
    free(codes);
    free(pick);
}

/* st_dict_add_sorted hands a column's new strings codes in string order:
 * a first column with every string (repeats and prefixes among them)
 * gets codes equal to the ranks st_dict_finish gives; a second with old
 * and new strings keeps the old codes and orders the new ones among
 * themselves; each row's code is its string's; NULLs are refused as by
 * st_dict_add. */
Test(groupby, dict_sorted_add_hands_out_codes_in_string_order)
{
    static const char *const first[] = {"MAT9", "MAT10", "MAT1", "", "MAT10", "B", "MAT1x", "A", "B"};
    static const char *const second[] = {"Z", "MAT1", "C", "MAT0", "Z"};
    st_dict *d;
    st_error err;
    cr_assert_eq(st_dict_create(&d, &err), ST_OK);
    uint32_t c1[9], c2[5];
    st_column col;
    st_column_init(&col, ST_TYPE_STR);
    for (int i = 0; i < 9; i++) cr_assert_eq(st_column_push_str(&col, first[i], strlen(first[i])), ST_OK);
    cr_assert_eq(st_dict_add_sorted(d, &col, c1, "material_code", &err), ST_OK, "%s", err.msg);
    st_column_free(&col);
    uint32_t n1 = st_dict_size(d);
    cr_assert_eq(n1, 7);
    for (int i = 0; i < 9; i++) {
        size_t len;
        const char *str = st_dict_str(d, c1[i], &len);
        cr_assert(len == strlen(first[i]) && !memcmp(str, first[i], len), "row %d", i);
    }
    /* codes 0..6 in string order: "", "A", "B", "MAT1", "MAT10", "MAT1x", "MAT9" */
    for (uint32_t c = 1; c < n1; c++) {
        size_t la, lb;
        const char *a = st_dict_str(d, c - 1, &la), *b = st_dict_str(d, c, &lb);
        cr_assert_lt(cmp_bytes(a, la, b, lb), 0, "code %u", c);
    }
    st_column_init(&col, ST_TYPE_STR);
    for (int i = 0; i < 5; i++) cr_assert_eq(st_column_push_str(&col, second[i], strlen(second[i])), ST_OK);
    cr_assert_eq(st_dict_add_sorted(d, &col, c2, NULL, &err), ST_OK, "%s", err.msg);
    st_column_free(&col);
    cr_assert_eq(st_dict_size(d), 10);
    cr_assert_eq(c2[1], c1[2], "an old string keeps its code");
    cr_assert_eq(c2[0], c2[4]);
    cr_assert(c2[2] < c2[3] && c2[3] < c2[0], "new codes in string order: C %u, MAT0 %u, Z %u", c2[2], c2[3], c2[0]);
    cr_assert_eq(st_dict_finish(d, &err), ST_OK);
    const uint32_t *rank = st_dict_rank(d);
    for (uint32_t c = 1; c < n1; c++) cr_assert_lt(rank[c - 1], rank[c], "the first column's codes are in rank order");
    st_dict_free(d);

    cr_assert_eq(st_dict_create(&d, &err), ST_OK);
    st_column_init(&col, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&col, "b", 1), ST_OK);
    cr_assert_eq(st_column_push_null(&col), ST_OK);
    cr_assert_eq(st_dict_add_sorted(d, &col, c1, "material_code", &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "material_code row 1 is NULL"), "%s", err.msg);
    st_column_free(&col);
    st_dict_free(d);
}

Test(groupby, dict_rejects_null_and_wrong_type)
{
    st_dict *d;
    st_error err;
    cr_assert_eq(st_dict_create(&d, &err), ST_OK);
    st_column col;
    st_column_init(&col, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&col, "", 0), ST_OK);
    cr_assert_eq(st_column_push_null(&col), ST_OK);
    uint32_t codes[2];
    cr_assert_eq(st_dict_add(d, &col, codes, "material_code", &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "material_code row 1 is NULL"), "%s", err.msg);
    st_column_free(&col);
    st_column_init(&col, ST_TYPE_I64);
    cr_assert_eq(st_dict_add(d, &col, codes, NULL, &err), ST_ERR_INVALID);
    st_column_free(&col);
    cr_assert_eq(st_dict_finish(d, &err), ST_OK);
    cr_assert_eq(st_dict_size(d), 1);
    st_dict_free(d);
}
