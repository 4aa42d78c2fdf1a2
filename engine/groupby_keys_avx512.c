/*
 * groupby_keys_avx512.c: the direct-table key kernel, eight rows per step.
 *
 * Eight customer ids (one zmm of int64) and eight period keys (one ymm of
 * int32) are range-checked with unsigned mask compares; both tables are
 * read with masked gathers (lanes out of range read nothing and yield
 * ST_KEY_NONE). A step with any lane lacking a slot or month stops the
 * vector loop and hands over to the scalar kernel, which finds the exact
 * row, so the result is the scalar one by construction.
 */
#include "agg_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

T512 size_t st_keys_direct_avx512(const st_keys_ctx *c, const int64_t *cust,
                                  const int32_t *period_key, size_t n, uint32_t *keys)
{
    const __m512i cmin = _mm512_set1_epi64(c->cust_min);
    const __m512i cspan = _mm512_set1_epi64((int64_t)c->cust_span);
    const __m256i pmin = _mm256_set1_epi32(c->per_min);
    const __m256i pspan = _mm256_set1_epi32((int32_t)c->per_span);
    const __m256i none = _mm256_set1_epi32(-1);
    const __m256i np = _mm256_set1_epi32((int32_t)c->n_periods);
    const int *slot_tab = (const int *)c->cust_slot;
    const int *per_tab = (const int *)c->per_idx;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512i dc = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(cust + i)), cmin);
        __m256i dp = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(period_key + i)), pmin);
        __mmask8 okc = _mm512_cmplt_epu64_mask(dc, cspan);
        __mmask8 okp = _mm256_cmplt_epu32_mask(dp, pspan);
        __m256i slot = _mm512_mask_i64gather_epi32(none, okc, dc, slot_tab, 4);
        __m256i pidx = _mm256_mmask_i32gather_epi32(none, okp, dp, per_tab, 4);
        __mmask8 ok = _mm256_cmpneq_epi32_mask(slot, none) & _mm256_cmpneq_epi32_mask(pidx, none);
        if (ok != 0xFF) break;
        __m256i key = _mm256_add_epi32(_mm256_mullo_epi32(slot, np), pidx);
        _mm256_storeu_si256((__m256i *)(keys + i), key);
    }
    return i + st_keys_direct_scalar(c, cust + i, period_key + i, n - i, keys + i);
}

#else

size_t st_keys_direct_avx512(const st_keys_ctx *c, const int64_t *cust,
                             const int32_t *period_key, size_t n, uint32_t *keys)
{
    return st_keys_direct_scalar(c, cust, period_key, n, keys);
}

#endif
