/*
 * silhouette_internal.h: the inner loop of the silhouette: the sum of the
 * Euclidean distances from one point p to points [a, b) of a column-major
 * array (xt[j * stride + i]). Distances are float32 (t = x - p; acc += t*t;
 * sqrt), accumulated in float64 into 8 lanes by (i - a) % 8, and the lanes
 * are added 0..7 in order. The AVX2 kernel does the same operations 8
 * points at a time, so both return the same bits.
 */
#ifndef STRATA_SILHOUETTE_INTERNAL_H
#define STRATA_SILHOUETTE_INTERNAL_H

#include <stddef.h>

double st_sil_sum_scalar(const float *xt, size_t stride, size_t d, const float *p, size_t a, size_t b);
double st_sil_sum_avx2(const float *xt, size_t stride, size_t d, const float *p, size_t a, size_t b);

#endif
