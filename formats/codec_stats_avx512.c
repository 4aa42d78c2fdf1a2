/*
 * codec_stats_avx512.c: the block statistics (codec_internal.h) eight
 * values at a time with AVX-512 (F, DQ, VL, BW as engine/cpu.c checks);
 * codec_stats.c holds the scalar kernels, the specification, and the
 * tail of every block.
 *
 * AVX-512 has signed 64-bit min/max and compares into mask registers, so
 * a step is two loads (value i+k and its predecessor), a subtraction,
 * four min/max and a masked increment of the change count. int32 blocks
 * are sign-extended to 64-bit lanes on load, as their differences need.
 * The run list's boundaries come from the same compare's mask.
 */
#include "codec_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

typedef struct acc8 {
    __m512i mn, mx, dmn, dmx, ch; /* ch: changes (v[i] != v[i-1]) per lane */
} acc8;

T512 static inline __attribute__((always_inline)) void step(acc8 *a, __m512i x, __m512i p)
{
    __m512i d = _mm512_sub_epi64(x, p);
    a->mn = _mm512_min_epi64(a->mn, x);
    a->mx = _mm512_max_epi64(a->mx, x);
    a->dmn = _mm512_min_epi64(a->dmn, d);
    a->dmx = _mm512_max_epi64(a->dmx, d);
    a->ch = _mm512_mask_add_epi64(a->ch, _mm512_cmpneq_epi64_mask(x, p), a->ch, _mm512_set1_epi64(1));
}

T512 static acc8 start(int64_t first)
{
    return (acc8){.mn = _mm512_set1_epi64(first), .mx = _mm512_set1_epi64(first),
                  .dmn = _mm512_set1_epi64(INT64_MAX), .dmx = _mm512_set1_epi64(INT64_MIN),
                  .ch = _mm512_setzero_si512()};
}

T512 void st_enc_stats64_avx512(const uint64_t *v, size_t n, st_enc_stats *st)
{
    if (n < 9) {
        st_enc_stats64_scalar(v, n, st);
        return;
    }
    acc8 a = start((int64_t)v[0]);
    size_t i = 1;
    for (; i + 8 <= n; i += 8) step(&a, _mm512_loadu_si512(v + i), _mm512_loadu_si512(v + i - 1));
    st_enc_stats64_finish(v, n, i, _mm512_reduce_min_epi64(a.mn), _mm512_reduce_max_epi64(a.mx),
                          _mm512_reduce_min_epi64(a.dmn), _mm512_reduce_max_epi64(a.dmx),
                          (size_t)_mm512_reduce_add_epi64(a.ch), st);
}

T512 void st_enc_stats32_avx512(const int32_t *v, size_t n, st_enc_stats *st)
{
    if (n < 9) {
        st_enc_stats32_scalar(v, n, st);
        return;
    }
    acc8 a = start(v[0]);
    size_t i = 1;
    for (; i + 8 <= n; i += 8)
        step(&a, _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(v + i))),
             _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(v + i - 1))));
    st_enc_stats32_finish(v, n, i, _mm512_reduce_min_epi64(a.mn), _mm512_reduce_max_epi64(a.mx),
                          _mm512_reduce_min_epi64(a.dmn), _mm512_reduce_max_epi64(a.dmx),
                          (size_t)_mm512_reduce_add_epi64(a.ch), st);
}

/* Run boundaries eight rows at a time: a step with no change (the common
 * case when RLE is worth listing) is a compare into a mask and a test. */
T512 size_t st_enc_runs_avx512(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len)
{
    st_run_list l = {.val = val, .len = len};
    size_t i = 1;
    for (; i + 8 <= n; i += 8) {
        unsigned m = _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(v + i), _mm512_loadu_si512(v + i - 1));
        for (; m; m &= m - 1) st_run_cut(&l, v, i + (size_t)__builtin_ctz(m));
    }
    return st_enc_runs_finish(v, n, i, &l);
}
#endif
