/*
 * kmeans_avx512.c: the fused Lloyd kernel on 16 points at a time
 * (AVX-512F). Per point, the same float32 operations in the same order as
 * st_km_kernel_scalar (kmeans_internal.h): subtract, multiply, add as three
 * separate instructions (no FMA), strict less-than so the lowest index wins
 * ties. A vector of 16 points starts at a multiple of 16 from i0, so point
 * l of the vector is lane l of the float64 accumulators: one masked add
 * per (cluster, feature) and half-vector does the whole vector's
 * accumulation (or km_acc_coords() per point when k * d is large); the
 * points after the last whole vector go through km_label_scalar().
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx512f"))) void st_km_kernel_avx512(const float *xt, size_t stride, size_t d, size_t i0,
                                                            size_t i1, const float *c, int k, int32_t *label,
                                                            float *dist, st_km_acc *acc)
{
    size_t i = i0;
    bool masked = km_masked_accumulate(d, k);
    for (; i + 16 <= i1; i += 16) {
        __m512 x[ST_KM_LANES];
        for (size_t j = 0; j < d; j++) x[j] = _mm512_loadu_ps(xt + j * stride + i);
        __m512 best = _mm512_set1_ps(__builtin_inff());
        __m512i bidx = _mm512_setzero_si512();
        for (int q = 0; q < k; q++) {
            const float *cq = c + (size_t)q * d;
            __m512 a = _mm512_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                __m512 t = _mm512_sub_ps(x[j], _mm512_set1_ps(cq[j]));
                a = _mm512_add_ps(a, _mm512_mul_ps(t, t));
            }
            __mmask16 lt = _mm512_cmp_ps_mask(a, best, _CMP_LT_OQ);
            best = _mm512_mask_mov_ps(best, lt, a);
            bidx = _mm512_mask_mov_epi32(bidx, lt, _mm512_set1_epi32(q));
        }
        if (dist) _mm512_storeu_ps(dist + i, best);
        if (acc) {
            __m512i old = _mm512_loadu_si512((const void *)(label + i));
            acc->changed += (size_t)__builtin_popcount((unsigned)_mm512_cmpneq_epi32_mask(old, bidx));
        }
        _mm512_storeu_si512((void *)(label + i), bidx);
        if (!acc) continue;
        __m512d blo = _mm512_cvtps_pd(_mm512_castps512_ps256(best));
        __m512d bhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(best), 1)));
        _mm512_storeu_pd(acc->inert, _mm512_add_pd(_mm512_loadu_pd(acc->inert), blo));
        _mm512_storeu_pd(acc->inert + 8, _mm512_add_pd(_mm512_loadu_pd(acc->inert + 8), bhi));
        if (masked) {
            __m512d xlo[ST_KM_LANES], xhi[ST_KM_LANES];
            for (size_t j = 0; j < d; j++) {
                xlo[j] = _mm512_cvtps_pd(_mm512_castps512_ps256(x[j]));
                xhi[j] = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x[j]), 1)));
            }
            const __m512i one = _mm512_set1_epi64(1);
            for (int q = 0; q < k; q++) {
                __mmask16 m = _mm512_cmpeq_epi32_mask(bidx, _mm512_set1_epi32(q));
                if (!m) continue;
                __mmask8 ml = (__mmask8)(m & 0xff), mh = (__mmask8)(m >> 8);
                int64_t *cq = acc->cnt + (size_t)q * ST_KM_LANES;
                __m512i c0 = _mm512_loadu_si512((const void *)cq), c1 = _mm512_loadu_si512((const void *)(cq + 8));
                _mm512_storeu_si512((void *)cq, _mm512_mask_add_epi64(c0, ml, c0, one));
                _mm512_storeu_si512((void *)(cq + 8), _mm512_mask_add_epi64(c1, mh, c1, one));
                double *s = acc->sum + (size_t)q * d * ST_KM_LANES;
                for (size_t j = 0; j < d; j++, s += ST_KM_LANES) {
                    __m512d s0 = _mm512_loadu_pd(s), s1 = _mm512_loadu_pd(s + 8);
                    _mm512_storeu_pd(s, _mm512_mask_add_pd(s0, ml, s0, xlo[j]));
                    _mm512_storeu_pd(s + 8, _mm512_mask_add_pd(s1, mh, s1, xhi[j]));
                }
            }
        } else {
            int32_t lab[16];
            _mm512_storeu_si512((void *)lab, bidx);
            for (size_t l = 0; l < 16; l++) km_acc_coords(xt, stride, d, i + l, l, lab[l], acc);
        }
    }
    km_label_scalar(xt, stride, d, i0, i, i1, c, k, label, dist, acc);
}

