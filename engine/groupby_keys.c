/*
 * groupby_keys.c: scalar group-key kernels and their dispatch.
 *
 * A group key is slot * n_periods + month index, where the customer slot
 * comes from a direct table indexed by (id - cust_min) and the month index
 * from a table indexed by (period_key - per_min) that marks the keys which
 * are not months (e.g. 201913) with ST_KEY_NONE. Both lookups are
 * branch-free range checks in unsigned arithmetic plus one load; the
 * kernel stops at the first row it cannot key so the caller (which owns
 * slot assignment and error messages) can deal with it and resume. The
 * SIMD variants in groupby_keys_avx2.c / _avx512.c do the same eight or
 * sixteen rows at a time with gathers.
 */
#include "agg_internal.h"

size_t st_keys_direct_scalar(const st_keys_ctx *c, const int64_t *cust,
                             const int32_t *period_key, size_t n, uint32_t *keys)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t dc = (uint64_t)cust[i] - (uint64_t)c->cust_min;
        uint32_t dp = (uint32_t)period_key[i] - (uint32_t)c->per_min;
        if (dc >= c->cust_span || dp >= c->per_span) return i;
        uint32_t slot = c->cust_slot[dc], pidx = c->per_idx[dp];
        if (slot == ST_KEY_NONE || pidx == ST_KEY_NONE) return i;
        keys[i] = slot * c->n_periods + pidx;
    }
    return n;
}

size_t st_keys_period_scalar(const st_keys_ctx *c, const int32_t *period_key,
                             size_t n, uint32_t *pidx)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t dp = (uint32_t)period_key[i] - (uint32_t)c->per_min;
        if (dp >= c->per_span) return i;
        uint32_t p = c->per_idx[dp];
        if (p == ST_KEY_NONE) return i;
        pidx[i] = p;
    }
    return n;
}

void st_groupby_count_u32(const uint32_t *keys, size_t n, uint32_t *counts)
{
    for (size_t i = 0; i < n; i++) counts[keys[i]]++;
}

st_keys_fn st_keys_direct_pick(st_cpu_isa level)
{
    if (level >= ST_CPU_AVX512) return st_keys_direct_avx512;
    if (level >= ST_CPU_AVX2) return st_keys_direct_avx2;
    return st_keys_direct_scalar;
}
