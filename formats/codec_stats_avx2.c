/*
 * codec_stats_avx2.c: the block statistics (codec_internal.h) four
 * values at a time with AVX2; codec_stats.c holds the scalar kernels,
 * which are the specification, and the tail of every block.
 *
 * AVX2 has no 64-bit min/max, so each is a compare and a blend. Lane k of
 * a step sees value i+k and its predecessor i+k-1 (an unaligned load one
 * value back), so the differences and the equal-neighbour count need no
 * shuffles. int32 blocks are sign-extended to 64-bit lanes on load: their
 * differences (up to 2^32 - 1 in size) do not fit 32 bits. The run
 * list's boundaries come from the same neighbour compare, as a mask.
 */
#include "codec_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T256 __attribute__((target("avx2")))

typedef struct acc4 {
    __m256i mn, mx, dmn, dmx, eq; /* eq: equal neighbours, per lane (negated counts) */
} acc4;

T256 static inline __attribute__((always_inline)) void step(acc4 *a, __m256i x, __m256i p)
{
    __m256i d = _mm256_sub_epi64(x, p);
    a->mn = _mm256_blendv_epi8(a->mn, x, _mm256_cmpgt_epi64(a->mn, x));
    a->mx = _mm256_blendv_epi8(a->mx, x, _mm256_cmpgt_epi64(x, a->mx));
    a->dmn = _mm256_blendv_epi8(a->dmn, d, _mm256_cmpgt_epi64(a->dmn, d));
    a->dmx = _mm256_blendv_epi8(a->dmx, d, _mm256_cmpgt_epi64(d, a->dmx));
    a->eq = _mm256_add_epi64(a->eq, _mm256_cmpeq_epi64(x, p));
}

T256 static acc4 start(int64_t first)
{
    return (acc4){.mn = _mm256_set1_epi64x(first), .mx = _mm256_set1_epi64x(first),
                  .dmn = _mm256_set1_epi64x(INT64_MAX), .dmx = _mm256_set1_epi64x(INT64_MIN),
                  .eq = _mm256_setzero_si256()};
}

/* Lanes folded: *mn.. and the changes among the `pairs` pairs seen. */
T256 static void fold(const acc4 *a, size_t pairs, int64_t *mn, int64_t *mx, int64_t *dmn, int64_t *dmx,
                      size_t *changes)
{
    int64_t l[5][4];
    _mm256_storeu_si256((__m256i *)l[0], a->mn);
    _mm256_storeu_si256((__m256i *)l[1], a->mx);
    _mm256_storeu_si256((__m256i *)l[2], a->dmn);
    _mm256_storeu_si256((__m256i *)l[3], a->dmx);
    _mm256_storeu_si256((__m256i *)l[4], a->eq);
    *mn = l[0][0], *mx = l[1][0], *dmn = l[2][0], *dmx = l[3][0];
    int64_t eq = 0;
    for (int k = 0; k < 4; k++) {
        *mn = l[0][k] < *mn ? l[0][k] : *mn;
        *mx = l[1][k] > *mx ? l[1][k] : *mx;
        *dmn = l[2][k] < *dmn ? l[2][k] : *dmn;
        *dmx = l[3][k] > *dmx ? l[3][k] : *dmx;
        eq -= l[4][k];
    }
    *changes = pairs - (size_t)eq;
}

T256 void st_enc_stats64_avx2(const uint64_t *v, size_t n, st_enc_stats *st)
{
    if (n < 5) {
        st_enc_stats64_scalar(v, n, st);
        return;
    }
    acc4 a = start((int64_t)v[0]);
    size_t i = 1;
    for (; i + 4 <= n; i += 4)
        step(&a, _mm256_loadu_si256((const __m256i *)(v + i)), _mm256_loadu_si256((const __m256i *)(v + i - 1)));
    int64_t mn, mx, dmn, dmx;
    size_t changes;
    fold(&a, i - 1, &mn, &mx, &dmn, &dmx, &changes);
    st_enc_stats64_finish(v, n, i, mn, mx, dmn, dmx, changes, st);
}

T256 void st_enc_stats32_avx2(const int32_t *v, size_t n, st_enc_stats *st)
{
    if (n < 5) {
        st_enc_stats32_scalar(v, n, st);
        return;
    }
    acc4 a = start(v[0]);
    size_t i = 1;
    for (; i + 4 <= n; i += 4)
        step(&a, _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(v + i))),
             _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(v + i - 1))));
    int64_t mn, mx, dmn, dmx;
    size_t changes;
    fold(&a, i - 1, &mn, &mx, &dmn, &dmx, &changes);
    st_enc_stats32_finish(v, n, i, mn, mx, dmn, dmx, changes, st);
}

/* Run boundaries four rows at a time: a step with no change (the common
 * case when RLE is worth listing) is a compare and a test. */
T256 size_t st_enc_runs_avx2(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len)
{
    st_run_list l = {.val = val, .len = len};
    size_t i = 1;
    for (; i + 4 <= n; i += 4) {
        __m256i eq = _mm256_cmpeq_epi64(_mm256_loadu_si256((const __m256i *)(v + i)),
                                        _mm256_loadu_si256((const __m256i *)(v + i - 1)));
        unsigned m = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(eq)) ^ 0xFu;
        for (; m; m &= m - 1) st_run_cut(&l, v, i + (size_t)__builtin_ctz(m));
    }
    return st_enc_runs_finish(v, n, i, &l);
}
#endif
