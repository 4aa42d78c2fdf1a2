/*
 * codec_stats.c: the block statistics the encoder chooses by (value
 * range, range of consecutive differences, run count; codec_internal.h),
 * scalar kernels and the choice of kernel per SIMD level.
 *
 * The run list of a block (values and lengths, for RLE) is here too.
 *
 * These scalar loops are the specification: the AVX2 and AVX-512 kernels
 * (codec_stats_avx2.c, codec_stats_avx512.c) compute the same numbers
 * several values at a time and hand their last few values to the scalar
 * tail below. Differences are taken modulo 2^64 and compared as signed,
 * which is what DELTA stores (FORMAT.md), so int64 extremes are exact.
 */
#include <limits.h>

#include "codec_internal.h"

/* Folds values [i, n) into partial statistics whose values up to i-1
 * are already counted (i >= 1; `changes` counts v[k] != v[k-1]). */
#define STATS_TAIL(V, WIDEN)                                         \
    for (; i < n; i++) {                                             \
        uint64_t x = WIDEN(V[i]), p = WIDEN(V[i - 1]);               \
        int64_t sx = (int64_t)x, d = (int64_t)(x - p);               \
        mn = sx < mn ? sx : mn;                                      \
        mx = sx > mx ? sx : mx;                                      \
        dmn = d < dmn ? d : dmn;                                     \
        dmx = d > dmx ? d : dmx;                                     \
        changes += x != p;                                           \
    }

#define AS64(x) ((uint64_t)(x))
#define FROM32(x) ((uint64_t)(int64_t)(x))

/* The results, with the n < 2 conventions of st_enc_stats. */
static void stats_out(st_enc_stats *st, size_t n, int64_t mn, int64_t mx, int64_t dmn, int64_t dmx, size_t changes)
{
    if (n == 0) {
        *st = (st_enc_stats){0};
        return;
    }
    if (n == 1) dmn = dmx = 0;
    *st = (st_enc_stats){.mn = mn, .mx = mx, .dmn = dmn, .dmx = dmx, .runs = 1 + changes};
}

void st_enc_stats64_scalar(const uint64_t *v, size_t n, st_enc_stats *st)
{
    int64_t mn = n ? (int64_t)v[0] : 0, mx = mn, dmn = INT64_MAX, dmx = INT64_MIN;
    size_t changes = 0, i = 1;
    STATS_TAIL(v, AS64)
    stats_out(st, n, mn, mx, dmn, dmx, changes);
}

void st_enc_stats32_scalar(const int32_t *v, size_t n, st_enc_stats *st)
{
    int64_t mn = n ? v[0] : 0, mx = mn, dmn = INT64_MAX, dmx = INT64_MIN;
    size_t changes = 0, i = 1;
    STATS_TAIL(v, FROM32)
    stats_out(st, n, mn, mx, dmn, dmx, changes);
}

void st_enc_stats64_finish(const uint64_t *v, size_t n, size_t i, int64_t mn, int64_t mx, int64_t dmn, int64_t dmx,
                           size_t changes, st_enc_stats *st)
{
    STATS_TAIL(v, AS64)
    stats_out(st, n, mn, mx, dmn, dmx, changes);
}

void st_enc_stats32_finish(const int32_t *v, size_t n, size_t i, int64_t mn, int64_t mx, int64_t dmn, int64_t dmx,
                           size_t changes, st_enc_stats *st)
{
    STATS_TAIL(v, FROM32)
    stats_out(st, n, mn, mx, dmn, dmx, changes);
}

size_t st_enc_runs_finish(const uint64_t *v, size_t n, size_t i, st_run_list *l)
{
    for (; i < n; i++)
        if (v[i] != v[i - 1]) st_run_cut(l, v, i);
    st_run_cut(l, v, n);
    return l->longest;
}

size_t st_enc_runs_scalar(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len)
{
    st_run_list l = {.val = val, .len = len};
    return st_enc_runs_finish(v, n, 1, &l);
}

#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
/* No x86 SIMD on this target: the SIMD names are the scalar kernels. */
void st_enc_stats64_avx2(const uint64_t *v, size_t n, st_enc_stats *st) { st_enc_stats64_scalar(v, n, st); }
void st_enc_stats32_avx2(const int32_t *v, size_t n, st_enc_stats *st) { st_enc_stats32_scalar(v, n, st); }
void st_enc_stats64_avx512(const uint64_t *v, size_t n, st_enc_stats *st) { st_enc_stats64_scalar(v, n, st); }
void st_enc_stats32_avx512(const int32_t *v, size_t n, st_enc_stats *st) { st_enc_stats32_scalar(v, n, st); }
size_t st_enc_runs_avx2(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len)
{
    return st_enc_runs_scalar(v, n, val, len);
}
size_t st_enc_runs_avx512(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len)
{
    return st_enc_runs_scalar(v, n, val, len);
}
#endif

st_enc_stats64_fn st_enc_stats64_pick(st_cpu_isa level)
{
    if (level >= ST_CPU_AVX512) return st_enc_stats64_avx512;
    if (level >= ST_CPU_AVX2) return st_enc_stats64_avx2;
    return st_enc_stats64_scalar;
}

st_enc_stats32_fn st_enc_stats32_pick(st_cpu_isa level)
{
    if (level >= ST_CPU_AVX512) return st_enc_stats32_avx512;
    if (level >= ST_CPU_AVX2) return st_enc_stats32_avx2;
    return st_enc_stats32_scalar;
}

st_enc_runs_fn st_enc_runs_pick(st_cpu_isa level)
{
    if (level >= ST_CPU_AVX512) return st_enc_runs_avx512;
    if (level >= ST_CPU_AVX2) return st_enc_runs_avx2;
    return st_enc_runs_scalar;
}
