/*
 * kmeans_avx512.c: the assign kernel on 16 points at a time (AVX-512F).
 * Same float operations in the same order as st_assign_scalar, per point.
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx512f"))) void st_assign_avx512(const float *xt, size_t stride, size_t d, size_t i0,
                                                         size_t i1, const float *c, int k, int32_t *label,
                                                         float *dist)
{
    size_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m512 best = _mm512_set1_ps(__builtin_inff());
        __m512i bidx = _mm512_setzero_si512();
        for (int q = 0; q < k; q++) {
            __m512 acc = _mm512_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                __m512 x = _mm512_loadu_ps(xt + j * stride + i);
                __m512 t = _mm512_sub_ps(x, _mm512_set1_ps(c[(size_t)q * d + j]));
                acc = _mm512_add_ps(acc, _mm512_mul_ps(t, t));
            }
            __mmask16 lt = _mm512_cmp_ps_mask(acc, best, _CMP_LT_OQ);
            best = _mm512_mask_mov_ps(best, lt, acc);
            bidx = _mm512_mask_mov_epi32(bidx, lt, _mm512_set1_epi32(q));
        }
        _mm512_storeu_ps(dist + i, best);
        _mm512_storeu_si512((void *)(label + i), bidx);
    }
    if (i < i1) st_assign_scalar(xt, stride, d, i, i1, c, k, label, dist);
}
