/*
 * silhouette_internal.h: the inner loop of the silhouette: the sum of the
 * Euclidean distances from one point p to points [a, b) of a column-major
 * array (xt[j * stride + i]). Distances are float32 (t = x - p; acc += t*t;
 * sqrt), accumulated in float64 into 8 lanes by (i - a) % 8, and the lanes
 * are added 0..7 in order. The AVX2 kernel does the same operations 8
 * points at a time, so both return the same bits.
 *
 * Around it, the per-position silhouette values of a sample: independent
 * of each other, so they split over threads and ranks freely, and
 * kselect.c adds them up in position order.
 */
#ifndef STRATA_SILHOUETTE_INTERNAL_H
#define STRATA_SILHOUETTE_INTERNAL_H

#include <stddef.h>

#include <stdint.h>

double st_sil_sum_scalar(const float *xt, size_t stride, size_t d, const float *p, size_t a, size_t b);
double st_sil_sum_avx2(const float *xt, size_t stride, size_t d, const float *p, size_t a, size_t b);

/* A silhouette's sample, grouped by cluster (kselect.c builds it). */
typedef struct st_sil_sample {
    const float *xt;    /* m x d, column-major (stride m) */
    size_t m, d;
    const size_t *off;  /* k + 1: cluster q holds positions [off[q], off[q + 1]) */
    const int32_t *lab; /* m: the cluster of each position */
    int k;
} st_sil_sample;

/* The silhouette of positions [a0, a1) of the sample into s[0 .. a1 - a0)
 * on `threads` threads; each value depends on its position only, not on
 * who computes it (kselect.c). */
void st_sil_values(const st_sil_sample *S, size_t a0, size_t a1, int threads, double *s);

/* All m values into s (m entries) on rank 0: in a served run of
 * strata-mpi every rank computes a share of the positions and rank 0
 * gathers them (kmeans_dist.c); otherwise st_sil_values() here. The same
 * values either way. */
void st_sil_values_world(const st_sil_sample *S, int threads, double *s);

#endif
