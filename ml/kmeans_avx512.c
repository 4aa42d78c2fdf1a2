/*
 * kmeans_avx512.c: the fused Lloyd kernel on 16 points at a time
 * (AVX-512F). Per point, the same float32 operations in the same order as
 * st_km_kernel_scalar (kmeans_internal.h): subtract, multiply, add as three
 * separate instructions (no FMA), strict less-than so the lowest index wins
 * ties; the float64 accumulation goes through the shared km_take().
 */
#include <immintrin.h>

#include "kmeans_internal.h"

__attribute__((target("avx512f"))) void st_km_kernel_avx512(const float *xt, size_t stride, size_t d, size_t i0,
                                                            size_t i1, const float *c, int k, int32_t *label,
                                                            float *dist, st_km_acc *acc)
{
    size_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m512 x[16];
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
        int32_t lab[16];
        float bd[16];
        _mm512_storeu_si512((void *)lab, bidx);
        _mm512_storeu_ps(bd, best);
        for (size_t l = 0; l < 16; l++) km_take(xt, stride, d, i + l, i0, k, lab[l], bd[l], label, dist, acc);
    }
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
        km_take(xt, stride, d, i, i0, k, bi, best, label, dist, acc);
    }
}
