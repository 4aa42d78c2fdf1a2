/*
 * kmeans_avx2.c: the assign kernel on 8 points at a time (AVX2). Same
 * float operations in the same order as st_assign_scalar, per point.
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx2"))) void st_assign_avx2(const float *xt, size_t stride, size_t d, size_t i0, size_t i1,
                                                    const float *c, int k, int32_t *label, float *dist)
{
    size_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 best = _mm256_set1_ps(__builtin_inff());
        __m256i bidx = _mm256_setzero_si256();
        for (int q = 0; q < k; q++) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                __m256 x = _mm256_loadu_ps(xt + j * stride + i);
                __m256 t = _mm256_sub_ps(x, _mm256_set1_ps(c[(size_t)q * d + j]));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(t, t));
            }
            __m256 lt = _mm256_cmp_ps(acc, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, acc, lt);
            bidx = _mm256_castps_si256(
                _mm256_blendv_ps(_mm256_castsi256_ps(bidx), _mm256_castsi256_ps(_mm256_set1_epi32(q)), lt));
        }
        _mm256_storeu_ps(dist + i, best);
        _mm256_storeu_si256((__m256i *)(label + i), bidx);
    }
    if (i < i1) st_assign_scalar(xt, stride, d, i, i1, c, k, label, dist);
}
