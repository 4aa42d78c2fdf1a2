/*
 * kmeans_avx2.c: the fused Lloyd kernel on 8 points at a time (AVX2).
 * Per point, the same float32 operations in the same order as
 * st_km_kernel_scalar (kmeans_internal.h). A vector of 8 points starting
 * at i covers lanes lb..lb+7 of the float64 accumulators, lb = (i - i0) %
 * 16 (0 or 8); the masked add is an AND with the cluster mask then an add
 * (adding +0.0 leaves a lane unchanged: a sum that starts at +0.0 is
 * never -0.0). Counts subtract the all-ones mask (= add 1).
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx2"))) void st_km_kernel_avx2(const float *xt, size_t stride, size_t d, size_t i0,
                                                       size_t i1, const float *c, int k, int32_t *label, float *dist,
                                                       st_km_acc *acc)
{
    size_t i = i0;
    bool masked = km_masked_accumulate(d, k);
    for (; i + 8 <= i1; i += 8) {
        __m256 x[ST_KM_LANES];
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
        if (dist) _mm256_storeu_ps(dist + i, best);
        if (acc) {
            __m256i old = _mm256_loadu_si256((const __m256i *)(label + i));
            unsigned eq = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(old, bidx)));
            acc->changed += (size_t)(8 - __builtin_popcount(eq));
        }
        _mm256_storeu_si256((__m256i *)(label + i), bidx);
        if (!acc) continue;
        size_t lb = (i - i0) & (ST_KM_LANES - 1);
        double *in = acc->inert + lb;
        _mm256_storeu_pd(in, _mm256_add_pd(_mm256_loadu_pd(in), _mm256_cvtps_pd(_mm256_castps256_ps128(best))));
        _mm256_storeu_pd(in + 4,
                         _mm256_add_pd(_mm256_loadu_pd(in + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(best, 1))));
        if (masked) {
            __m256d xlo[ST_KM_LANES], xhi[ST_KM_LANES];
            for (size_t j = 0; j < d; j++) {
                xlo[j] = _mm256_cvtps_pd(_mm256_castps256_ps128(x[j]));
                xhi[j] = _mm256_cvtps_pd(_mm256_extractf128_ps(x[j], 1));
            }
            for (int q = 0; q < k; q++) {
                __m256i m = _mm256_cmpeq_epi32(bidx, _mm256_set1_epi32(q));
                if (_mm256_testz_si256(m, m)) continue;
                __m256i mlo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m));
                __m256i mhi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1));
                int64_t *cq = acc->cnt + (size_t)q * ST_KM_LANES + lb;
                _mm256_storeu_si256((__m256i *)cq, _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)cq), mlo));
                _mm256_storeu_si256((__m256i *)(cq + 4),
                                    _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(cq + 4)), mhi));
                __m256d flo = _mm256_castsi256_pd(mlo), fhi = _mm256_castsi256_pd(mhi);
                double *s = acc->sum + (size_t)q * d * ST_KM_LANES + lb;
                for (size_t j = 0; j < d; j++, s += ST_KM_LANES) {
                    _mm256_storeu_pd(s, _mm256_add_pd(_mm256_loadu_pd(s), _mm256_and_pd(xlo[j], flo)));
                    _mm256_storeu_pd(s + 4, _mm256_add_pd(_mm256_loadu_pd(s + 4), _mm256_and_pd(xhi[j], fhi)));
                }
            }
        } else {
            int32_t lab[8];
            _mm256_storeu_si256((__m256i *)lab, bidx);
            for (size_t l = 0; l < 8; l++) km_acc_coords(xt, stride, d, i + l, lb + l, lab[l], acc);
        }
    }
    km_label_scalar(xt, stride, d, i0, i, i1, c, k, label, dist, acc);
}

