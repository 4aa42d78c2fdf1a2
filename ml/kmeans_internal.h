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
 * lane L = (i - i0) % 16 of the accumulator: count, distance (the inertia)
 * and coordinates, at sum[(q * d + j) * 16 + L]. A lane receives its
 * points in point order in every kernel; the SIMD kernels add a whole
 * vector of points at once with one masked add per (cluster, feature)
 * (a point of another cluster leaves the lane unchanged, exactly as if it
 * had not been added), or, when k * d is large, point by point through
 * km_acc_coords(). Either way the accumulators are bit-identical to the scalar
 * kernel's. Lanes also break the add-latency chain of consecutive points
 * of one cluster. The caller reduces lanes 0..15 in order per block, then
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

#define ST_KM_LANES 16

typedef struct st_km_acc {
    double *sum;                /* k x d x ST_KM_LANES, zeroed by the caller */
    int64_t *cnt;               /* k x ST_KM_LANES, zeroed by the caller */
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

/* kmeans_dispatch.c: the kernel for a level (0 scalar, 1 AVX2, 2 AVX-512)
 * and the level in use (forced by st_kmeans_force_kernel() or the
 * environment, else cpuid). */
st_km_kernel_fn st_km_kernel_for(int level);
int st_km_level(void);

/* Should a SIMD kernel accumulate with masked vector adds (cost ~ k * d
 * per vector of points) rather than point by point (cost ~ d per point)?
 * Only speed depends on the answer. */
static inline bool km_masked_accumulate(size_t d, int k) { return 2 * (size_t)k * (d + 1) <= 16 * (3 * d + 5); }

/* Adds point i (label q) to the count and coordinate sums of lane `lane`. */
static inline void km_acc_coords(const float *xt, size_t stride, size_t d, size_t i, size_t lane, int32_t q,
                                 st_km_acc *acc)
{
    acc->cnt[(size_t)q * ST_KM_LANES + lane]++;
    double *s = acc->sum + (size_t)q * d * ST_KM_LANES + lane;
    for (size_t j = 0; j < d; j++) s[j * ST_KM_LANES] += (double)xt[j * stride + i];
}

/* Accumulates point i (label q, distance bd) into its lane. */
static inline void km_acc_point(const float *xt, size_t stride, size_t d, size_t i, size_t i0, int32_t q, float bd,
                                st_km_acc *acc)
{
    size_t lane = (i - i0) & (ST_KM_LANES - 1);
    acc->inert[lane] += (double)bd;
    km_acc_coords(xt, stride, d, i, lane, q, acc);
}

/* Records the result for point i (label q, distance bd). */
static inline void km_take(const float *xt, size_t stride, size_t d, size_t i, size_t i0, int32_t q, float bd,
                           int32_t *label, float *dist, st_km_acc *acc)
{
    if (dist) dist[i] = bd;
    if (acc) {
        acc->changed += label[i] != q;
        km_acc_point(xt, stride, d, i, i0, q, bd, acc);
    }
    label[i] = q;
}

/* The scalar kernel on points [from, i1) of a call that started at i0
 * (lanes count from i0): the whole of st_km_kernel_scalar (from = i0) and
 * the tail of every SIMD kernel (from = the first point after its last
 * whole vector). */
static inline void km_label_scalar(const float *xt, size_t stride, size_t d, size_t i0, size_t from, size_t i1,
                                   const float *c, int k, int32_t *label, float *dist, st_km_acc *acc)
{
    for (size_t i = from; i < i1; i++) {
        float best = __builtin_inff();
        int32_t bi = 0;
        for (int q = 0; q < k; q++) {
            const float *cq = c + (size_t)q * d;
            float a = 0.0f;
            for (size_t j = 0; j < d; j++) {
                float t = xt[j * stride + i] - cq[j];
                float sq = t * t;
                a = a + sq;
            }
            if (a < best) {
                best = a;
                bi = q;
            }
        }
        km_take(xt, stride, d, i, i0, bi, best, label, dist, acc);
    }
}

/* ---- k-means across ranks (kmeans.c, kmeans_dist.c) ---- */

#include "strata/ml.h"
#include "strata/status.h"

/* Points per block: the unit of every ordered reduction (a multiple of
 * 16, so a block holds whole SIMD vectors). Blocks are cut from the whole
 * fit's points, whatever the threads and ranks. */
#define ST_KM_BLOCK 4096

/* The points rank `rank` of `size` holds in a fit of n points: [*p0, *p1),
 * whole blocks (only the fit's last block may be short): the blocks in
 * rank order, q = n_blocks / size to each rank and one more to each of
 * the first n_blocks % size, so rank 0 holds the first block (point 0)
 * and a rank beyond the blocks holds none. */
void st_km_share(size_t n, int rank, int size, size_t *p0, size_t *p1);
/* Every rank's share as counts and first points (size entries each), for
 * a scatter or gather of the fit's rows. */
void st_km_shares(size_t n, int size, size_t *cnt, size_t *off);

/* The arguments of a fit (k, d, n_init, max_iter, tol; n >= k; every value
 * of x finite), checked where all n points are, before any rank is asked
 * to fit; ST_ERR_INVALID (or ST_ERR_NOMEM for an n x d that overflows)
 * naming what is wrong. */
st_status st_km_check_args(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_error *err) ST_MUST_USE;

/* A fit of n points (arguments checked) split by points over a world of
 * `size` ranks: this rank passes its share x (row-major, st_km_share's
 * rows of the fit, borrowed for the call), every rank calls it with the
 * same n, d and options, and each pass's per-block partials are folded in
 * block order along the ranks (st_dist_chain), so the centroids, labels,
 * inertia and iterations are the bits of size 1 (one process) for any
 * size and thread count. size 1 is a local fit that calls no collective
 * but st_km_agree(). Rank 0's result holds the labels and sizes of all n
 * points (gathered); the other ranks' have none (NULL). Caller owns *out. */
st_status st_km_fit_world(const float *x, size_t n, size_t d, const st_kmeans_opts *o, int rank, int size,
                          st_kmeans_result **out, st_error *err) ST_MUST_USE;

/* Every rank: ok says whether this rank may go on `stage` ("allocating",
 * "fitting"); the first failing rank's error on all (dist.h). */
st_status st_km_agree(bool ok, const char *stage, size_t n, size_t d, st_error *err) ST_MUST_USE;

#endif
