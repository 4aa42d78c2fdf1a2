/*
 * groupby_keys_avx2.c: the direct-table key kernel, eight rows per step.
 *
 * AVX2 has neither unsigned nor mask compares, so a lane is in range when
 * (as signed) -1 < d < span, which is exact because spans are far below
 * 2^31. Out-of-range lanes gather index 0 (every table has an entry 0)
 * and are then forced to ST_KEY_NONE. The 64-bit customer lanes are
 * narrowed to 32 bits with a cross-lane permute. Any lane without a slot
 * or month hands over to the scalar kernel from the start of the step.
 */
#include "agg_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T256 __attribute__((target("avx2")))

/* Four int64 lanes (all-ones or zero) -> four int32 lanes. */
T256 static inline __m128i narrow64(__m256i m)
{
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(m, pick));
}

T256 size_t st_keys_direct_avx2(const st_keys_ctx *c, const int64_t *cust,
                                const int32_t *period_key, size_t n, uint32_t *keys)
{
    const __m256i cmin = _mm256_set1_epi64x(c->cust_min);
    const __m256i cspan = _mm256_set1_epi64x((int64_t)c->cust_span);
    const __m256i neg1_64 = _mm256_set1_epi64x(-1);
    const __m256i pmin = _mm256_set1_epi32(c->per_min);
    const __m256i pspan = _mm256_set1_epi32((int32_t)c->per_span);
    const __m256i none = _mm256_set1_epi32(-1);
    const __m256i np = _mm256_set1_epi32((int32_t)c->n_periods);
    const int *slot_tab = (const int *)c->cust_slot;
    const int *per_tab = (const int *)c->per_idx;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i da = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(cust + i)), cmin);
        __m256i db = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(cust + i + 4)), cmin);
        __m256i oka = _mm256_and_si256(_mm256_cmpgt_epi64(da, neg1_64), _mm256_cmpgt_epi64(cspan, da));
        __m256i okb = _mm256_and_si256(_mm256_cmpgt_epi64(db, neg1_64), _mm256_cmpgt_epi64(cspan, db));
        __m128i sa = _mm256_i64gather_epi32(slot_tab, _mm256_and_si256(da, oka), 4);
        __m128i sb = _mm256_i64gather_epi32(slot_tab, _mm256_and_si256(db, okb), 4);
        __m256i okc = _mm256_set_m128i(narrow64(okb), narrow64(oka));
        __m256i slot = _mm256_or_si256(_mm256_set_m128i(sb, sa), _mm256_xor_si256(okc, none));

        __m256i dp = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(period_key + i)), pmin);
        __m256i okp = _mm256_and_si256(_mm256_cmpgt_epi32(dp, none), _mm256_cmpgt_epi32(pspan, dp));
        __m256i pidx = _mm256_i32gather_epi32(per_tab, _mm256_and_si256(dp, okp), 4);
        pidx = _mm256_or_si256(pidx, _mm256_xor_si256(okp, none));

        __m256i bad = _mm256_or_si256(_mm256_cmpeq_epi32(slot, none), _mm256_cmpeq_epi32(pidx, none));
        if (!_mm256_testz_si256(bad, bad)) break;
        __m256i key = _mm256_add_epi32(_mm256_mullo_epi32(slot, np), pidx);
        _mm256_storeu_si256((__m256i *)(keys + i), key);
    }
    return i + st_keys_direct_scalar(c, cust + i, period_key + i, n - i, keys + i);
}

#else

size_t st_keys_direct_avx2(const st_keys_ctx *c, const int64_t *cust,
                           const int32_t *period_key, size_t n, uint32_t *keys)
{
    return st_keys_direct_scalar(c, cust, period_key, n, keys);
}

#endif
