/*
 * silhouette_avx2.c: st_sil_sum_avx2, 8 distances per step; see
 * silhouette_internal.h for the exact operation order it shares with the
 * scalar kernel.
 */
#include <immintrin.h>

#include "silhouette_internal.h"

__attribute__((target("avx2"))) double st_sil_sum_avx2(const float *xt, size_t stride, size_t d, const float *p,
                                                       size_t a, size_t b)
{
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    size_t i = a;
    for (; i + 8 <= b; i += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < d; j++) {
            __m256 t = _mm256_sub_ps(_mm256_loadu_ps(xt + j * stride + i), _mm256_set1_ps(p[j]));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(t, t));
        }
        __m256 s = _mm256_sqrt_ps(acc);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(s)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    for (size_t r = 0; i < b; i++, r++) {
        float acc = 0.0f;
        for (size_t j = 0; j < d; j++) {
            float t = xt[j * stride + i] - p[j];
            float sq = t * t;
            acc = acc + sq;
        }
        lanes[r] += (double)__builtin_sqrtf(acc);
    }
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    return sum;
}
