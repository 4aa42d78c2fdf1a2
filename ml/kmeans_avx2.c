/*
 * kmeans_avx2.c: the fused Lloyd kernel on 8 points at a time (AVX2).
 * Per point, the same float32 operations in the same order as
 * st_km_kernel_scalar (kmeans_internal.h); the float64 accumulation goes
 * through the shared km_take(), point by point, in point order.
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx2"))) void st_km_kernel_avx2(const float *xt, size_t stride, size_t d, size_t i0,
                                                       size_t i1, const float *c, int k, int32_t *label, float *dist,
                                                       st_km_acc *acc)
{
    size_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 x[16];
        for (size_t j = 0; j < d; j++) x[j] = _mm256_loadu_ps(xt + j * stride + i);
        __m256 best = _mm256_set1_ps(__builtin_inff());
        __m256i bidx = _mm256_setzero_si256();
        for (int q = 0; q < k; q++) {
            const float *cq = c + (size_t)q * d;
            __m256 a = _mm256_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                __m256 t = _mm256_sub_ps(x[j], _mm256_broadcast_ss(cq + j));
                a = _mm256_add_ps(a, _mm256_mul_ps(t, t));
            }
            __m256 lt = _mm256_cmp_ps(a, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, a, lt);
            bidx = _mm256_castps_si256(
                _mm256_blendv_ps(_mm256_castsi256_ps(bidx), _mm256_castsi256_ps(_mm256_set1_epi32(q)), lt));
        }
        int32_t lab[8];
        float bd[8];
        _mm256_storeu_si256((__m256i *)lab, bidx);
        _mm256_storeu_ps(bd, best);
        for (size_t l = 0; l < 8; l++) km_take(xt, stride, d, i + l, i0, k, lab[l], bd[l], label, dist, acc);
    }
    if (i < i1) {
        /* the tail: same lanes as if the scalar kernel had run from i0 */
        st_km_acc *a = acc;
        for (; i < i1; i++) {
            float best = __builtin_inff();
            int32_t bi = 0;
            for (int q = 0; q < k; q++) {
                const float *cq = c + (size_t)q * d;
                float s = 0.0f;
                for (size_t j = 0; j < d; j++) {
                    float t = xt[j * stride + i] - cq[j];
                    float sq = t * t;
                    s = s + sq;
                }
                if (s < best) {
                    best = s;
                    bi = q;
                }
            }
            km_take(xt, stride, d, i, i0, k, bi, best, label, dist, a);
        }
    }
}
