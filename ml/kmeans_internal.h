/*
 * kmeans_internal.h: the fused Lloyd kernels of k-means and their dispatch.
 *
 * A kernel labels points [i0, i1) of a column-major (SoA) copy of the
 * points: xt[j * stride + i] is feature j of point i. For each point it
 * computes the squared distance to every centre in float32 as
 *     acc = 0; for j in 0..d: { t = x_j - c_j; sq = t * t; acc = acc + sq; }
 * (a multiply then an add: never a fused multiply-add), keeps the first
 * centre with the strictly smallest distance (ties: lowest index), and
 * writes the label (and the distance when dist != NULL). The SIMD kernels
 * run the same float operations on 8 (AVX2) or 16 (AVX-512) points at once,
 * vectorising ACROSS points, so their labels and distances equal the
 * scalar kernel's bit for bit.
 *
 * In the same pass (acc != NULL) each point is accumulated in float64 into
 * lane (i - i0) % ST_KM_LANES of the accumulator: count, distance (the
 * inertia) and coordinates. Lanes break the add-latency chain of
 * consecutive points of one cluster; every kernel adds the points of a lane
 * in point order through km_take() below, so the accumulators are
 * bit-identical too. The caller reduces lanes 0..7 in order per block, then
 * blocks in order (kmeans.c).
 */
#ifndef STRATA_KMEANS_INTERNAL_H
#define STRATA_KMEANS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define ST_KM_LANES 8

typedef struct st_km_acc {
    double *sum;                /* ST_KM_LANES x k x d, zeroed by the caller */
    int64_t *cnt;               /* ST_KM_LANES x k, zeroed by the caller */
    double inert[ST_KM_LANES];  /* sum of squared distances per lane */
    size_t changed;             /* points whose label differs from label[] on entry */
} st_km_acc;

typedef void (*st_km_kernel_fn)(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c,
                                int k, int32_t *label, float *dist, st_km_acc *acc);

void st_km_kernel_scalar(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                         int32_t *label, float *dist, st_km_acc *acc);
void st_km_kernel_avx2(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                       int32_t *label, float *dist, st_km_acc *acc);
void st_km_kernel_avx512(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                         int32_t *label, float *dist, st_km_acc *acc);

/* The kernel for a level (0 scalar, 1 AVX2, 2 AVX-512) and the level in use
 * (forced by st_kmeans_force_kernel() or the environment, else cpuid). */
st_km_kernel_fn st_km_kernel_for(int level);
int st_km_level(void);

/* Records the result for point i (label q, distance bd): the common tail of
 * every kernel, hence the same float64 additions in the same order. */
static inline void km_take(const float *xt, size_t stride, size_t d, size_t i, size_t i0, int k, int32_t q, float bd,
                           int32_t *label, float *dist, st_km_acc *acc)
{
    if (dist) dist[i] = bd;
    if (acc) {
        acc->changed += label[i] != q;
        size_t lane = (i - i0) & (ST_KM_LANES - 1);
        acc->cnt[lane * (size_t)k + (size_t)q]++;
        acc->inert[lane] += (double)bd;
        double *s = acc->sum + (lane * (size_t)k + (size_t)q) * d;
        for (size_t j = 0; j < d; j++) s[j] += (double)xt[j * stride + i];
    }
    label[i] = q;
}

#endif
