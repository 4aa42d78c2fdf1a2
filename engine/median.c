/*
 * median.c: exact medians of int64 order sizes.
 *
 * The median of n values is found by selection (st_select_i64, expected
 * O(n)) rather than a full sort: after selecting the upper middle value at
 * index n/2, every value before it is <= it, so the lower middle value of
 * an even count is simply the maximum of that prefix. The mean of the two
 * is taken in double ((a + b) / 2), which never overflows and is exact
 * while |a|, |b| < 2^52.
 */
#include "agg_internal.h"

double st_median_i64(int64_t *v, size_t n)
{
    size_t k = n / 2;
    int64_t hi = st_select_i64(v, n, k);
    if (n & 1) return (double)hi;
    int64_t lo = v[0];
    for (size_t i = 1; i < k; i++)
        if (v[i] > lo) lo = v[i];
    return ((double)lo + (double)hi) / 2.0;
}
