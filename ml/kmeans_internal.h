/*
 * kmeans_internal.h: the assign kernels of k-means and their dispatch.
 *
 * A kernel labels points [i0, i1) of a column-major (SoA) copy of the
 * points: xt[j * stride + i] is feature j of point i. For each point it
 * computes the squared distance to every centre in float32 as
 *     acc = 0; for j in 0..d: { t = x_j - c_j; acc = acc + t * t; }
 * (a multiply then an add: never a fused multiply-add), keeps the first
 * centre with the strictly smallest distance, and writes the label and
 * the distance. The SIMD kernels run the same operations on 8 (AVX2) or
 * 16 (AVX-512) points at once, so their results equal the scalar
 * kernel's bit for bit.
 */
#ifndef STRATA_KMEANS_INTERNAL_H
#define STRATA_KMEANS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef void (*st_assign_fn)(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                             int32_t *label, float *dist);

void st_assign_scalar(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                      int32_t *label, float *dist);
void st_assign_avx2(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                    int32_t *label, float *dist);
void st_assign_avx512(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                      int32_t *label, float *dist);

/* The kernel chosen for this process (cached). */
st_assign_fn st_assign_kernel(void);

#endif
