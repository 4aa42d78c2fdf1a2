/*
 * sort.c: allocation-free in-place sorts used by the aggregation engine.
 *
 * Introsort: Hoare partition around the median of three (first, middle,
 * last), recursion into the smaller side and a loop on the larger so the
 * stack stays O(log n), heapsort once the depth passes 2*log2(n) (so
 * crafted input cannot make it quadratic), insertion sort below 16
 * elements. Hoare partitioning splits runs of equal keys evenly, which
 * matters here: quantities and material codes repeat a lot. The payload
 * variants move a value array along with the keys; equal keys may come
 * out in any (but deterministic) order.
 *
 * The templates are macros so each instance compiles to straight code
 * without comparison callbacks.
 */
#include "agg_internal.h"

#define SMALL_SORT 16

static unsigned depth_limit(size_t n)
{
    unsigned d = 0;
    while (n > 1) {
        n >>= 1;
        d += 2;
    }
    return d;
}

/* NAME: function prefix; KT: key type; VT: payload type (or none via
 * HAS_VAL 0). SWAP moves key i and j (and payloads). */
#define DEFINE_SORT(NAME, KT, VT, HAS_VAL)                                      \
    static inline void NAME##_swap(KT *k, VT *v, size_t i, size_t j)           \
    {                                                                          \
        KT tk = k[i];                                                          \
        k[i] = k[j];                                                           \
        k[j] = tk;                                                             \
        if (HAS_VAL) {                                                         \
            VT tv = v[i];                                                      \
            v[i] = v[j];                                                       \
            v[j] = tv;                                                         \
        }                                                                      \
    }                                                                          \
    static void NAME##_insertion(KT *k, VT *v, size_t n)                       \
    {                                                                          \
        for (size_t i = 1; i < n; i++) {                                       \
            KT x = k[i];                                                       \
            VT y = HAS_VAL ? v[i] : (VT)0;                                     \
            size_t j = i;                                                      \
            while (j > 0 && k[j - 1] > x) {                                    \
                k[j] = k[j - 1];                                               \
                if (HAS_VAL) v[j] = v[j - 1];                                  \
                j--;                                                           \
            }                                                                  \
            k[j] = x;                                                          \
            if (HAS_VAL) v[j] = y;                                             \
        }                                                                      \
    }                                                                          \
    static void NAME##_sift(KT *k, VT *v, size_t root, size_t n)               \
    {                                                                          \
        for (;;) {                                                             \
            size_t c = 2 * root + 1;                                           \
            if (c >= n) return;                                                \
            if (c + 1 < n && k[c + 1] > k[c]) c++;                             \
            if (!(k[c] > k[root])) return;                                     \
            NAME##_swap(k, v, root, c);                                        \
            root = c;                                                          \
        }                                                                      \
    }                                                                          \
    static void NAME##_heapsort(KT *k, VT *v, size_t n)                        \
    {                                                                          \
        for (size_t i = n / 2; i-- > 0;) NAME##_sift(k, v, i, n);              \
        for (size_t end = n; end-- > 1;) {                                     \
            NAME##_swap(k, v, 0, end);                                         \
            NAME##_sift(k, v, 0, end);                                         \
        }                                                                      \
    }                                                                          \
    /* Orders k[0], k[mid], k[n-1]; partitions around k[mid]; returns j     \
     * with [0, j] <= pivot <= [j+1, n), 0 <= j < n - 1. Needs n >= 3. */      \
    static size_t NAME##_partition(KT *k, VT *v, size_t n)                     \
    {                                                                          \
        size_t mid = n / 2, last = n - 1;                                      \
        if (k[mid] < k[0]) NAME##_swap(k, v, mid, 0);                          \
        if (k[last] < k[mid]) {                                                \
            NAME##_swap(k, v, last, mid);                                      \
            if (k[mid] < k[0]) NAME##_swap(k, v, mid, 0);                      \
        }                                                                      \
        KT p = k[mid];                                                         \
        size_t i = 0, j = last;                                                \
        for (;;) {                                                             \
            while (k[i] < p) i++;                                              \
            while (k[j] > p) j--;                                              \
            if (i >= j) return j;                                              \
            NAME##_swap(k, v, i, j);                                           \
            i++;                                                               \
            j--;                                                               \
        }                                                                      \
    }                                                                          \
    static void NAME##_intro(KT *k, VT *v, size_t n, unsigned depth)           \
    {                                                                          \
        while (n > SMALL_SORT) {                                               \
            if (depth == 0) {                                                  \
                NAME##_heapsort(k, v, n);                                      \
                return;                                                        \
            }                                                                  \
            depth--;                                                           \
            size_t j = NAME##_partition(k, v, n);                              \
            size_t nl = j + 1, nr = n - nl;                                    \
            if (nl < nr) {                                                     \
                NAME##_intro(k, v, nl, depth);                                 \
                k += nl;                                                       \
                if (HAS_VAL) v += nl;                                          \
                n = nr;                                                        \
            } else {                                                           \
                NAME##_intro(k + nl, HAS_VAL ? v + nl : v, nr, depth);         \
                n = nl;                                                        \
            }                                                                  \
        }                                                                      \
        NAME##_insertion(k, v, n);                                             \
    }

/* The key-only instance uses a dummy payload type that is never touched. */
typedef char nothing;
DEFINE_SORT(s_u32_i64, uint32_t, int64_t, 1)
DEFINE_SORT(s_i64_u32, int64_t, uint32_t, 1)
DEFINE_SORT(s_i64, int64_t, nothing, 0)

void st_sort_u32_i64(uint32_t *key, int64_t *val, size_t n)
{
    if (n > 1) s_u32_i64_intro(key, val, n, depth_limit(n));
}

void st_sort_i64_u32(int64_t *key, uint32_t *val, size_t n)
{
    if (n > 1) s_i64_u32_intro(key, val, n, depth_limit(n));
}

void st_sort_i64(int64_t *v, size_t n)
{
    if (n > 1) s_i64_intro(v, NULL, n, depth_limit(n));
}

/* Selection shares the partition: keep only the side holding k. */
int64_t st_select_i64(int64_t *v, size_t n, size_t k)
{
    unsigned depth = depth_limit(n);
    size_t lo = 0;
    while (n > SMALL_SORT) {
        if (depth == 0) {
            s_i64_heapsort(v + lo, NULL, n);
            return v[k];
        }
        depth--;
        size_t j = s_i64_partition(v + lo, NULL, n);
        if (k - lo <= j) {
            n = j + 1;
        } else {
            lo += j + 1;
            n -= j + 1;
        }
    }
    s_i64_insertion(v + lo, NULL, n);
    return v[k];
}
