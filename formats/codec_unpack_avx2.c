/*
 * codec_unpack_avx2.c: the decoder's bit unpacking (codec_internal.h,
 * st_unpack_fn) four values at a time with AVX2. st_unpack_scalar in
 * codec.c is the specification; this kernel returns the same values for
 * every input and width, which tests/test_format.c checks.
 *
 * A group of 8 values of w bits is exactly w bytes, so inside a group
 * every value's byte offset ((j * w) >> 3) and bit shift ((j * w) & 7) are
 * fixed. Each half group (4 values) is two 128-bit loads, one at the byte
 * of each pair's first value; a byte shuffle puts each value's 8 bytes
 * into its 64-bit slot, a per-slot shift drops the bits below it, a mask
 * keeps w bits and the frame's base is added. The shuffle, shift and load
 * offsets are computed once per call from w. Widths 1..24 (the ids,
 * months, quantities and codes of the layer files): within a pair the
 * second value starts at most 3 bytes after the first, so its 8 bytes lie
 * in the 16 loaded. Wider values, short arrays and the last groups (whose
 * 16-byte loads could pass the packed array and its ST_PACK_SLACK bytes)
 * go through the scalar kernel, which starts on a byte boundary after
 * whole groups.
 */
#include <string.h>

#include "codec_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T256 __attribute__((target("avx2")))

/* The constants of one half group k (values 4k .. 4k+3 of a group). */
typedef struct half_plan {
    size_t off[2]; /* byte offsets of the two 128-bit loads in the group */
    __m256i shuf, shift;
} half_plan;

T256 static void plan_half(unsigned w, unsigned k, half_plan *h)
{
    uint8_t shuf[32];
    uint64_t shift[4];
    for (unsigned lane = 0; lane < 2; lane++) {
        unsigned v0 = 4 * k + 2 * lane;
        size_t base = (size_t)(v0 * w) >> 3;
        h->off[lane] = base;
        for (unsigned e = 0; e < 2; e++) {
            unsigned v = v0 + e;
            unsigned rel = (unsigned)(((size_t)(v * w) >> 3) - base);
            for (unsigned b = 0; b < 8; b++) shuf[16 * lane + 8 * e + b] = (uint8_t)(rel + b);
            shift[2 * lane + e] = (v * w) & 7;
        }
    }
    memcpy(&h->shuf, shuf, sizeof shuf);
    h->shift = _mm256_set_epi64x((long long)shift[3], (long long)shift[2], (long long)shift[1], (long long)shift[0]);
}

T256 static inline __attribute__((always_inline)) __m256i half(const uint8_t *g, const half_plan *h, __m256i mask,
                                                              __m256i base)
{
    __m128i lo = _mm_loadu_si128((const __m128i *)(g + h->off[0]));
    __m128i hi = _mm_loadu_si128((const __m128i *)(g + h->off[1]));
    __m256i x = _mm256_set_m128i(hi, lo);
    x = _mm256_shuffle_epi8(x, h->shuf);
    x = _mm256_srlv_epi64(x, h->shift);
    return _mm256_add_epi64(_mm256_and_si256(x, mask), base);
}

T256 void st_unpack_avx2(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out)
{
    if (w == 0 || w > 24 || n < 16) {
        st_unpack_scalar(p, n, w, base, out);
        return;
    }
    half_plan h[2];
    plan_half(w, 0, &h[0]);
    plan_half(w, 1, &h[1]);
    const __m256i mask = _mm256_set1_epi64x((long long)(((uint64_t)1 << w) - 1));
    const __m256i b = _mm256_set1_epi64x((long long)base);
    /* group g reads up to byte g*w + h[1].off[1] + 16: inside the array
     * and its slack */
    size_t avail = st_packed_bytes(n, w), reach = h[1].off[1] + 16, groups = n / 8, g = 0;
    for (; g < groups && g * w + reach <= avail; g++) {
        const uint8_t *gp = p + g * w;
        _mm256_storeu_si256((__m256i *)(out + 8 * g), half(gp, &h[0], mask, b));
        _mm256_storeu_si256((__m256i *)(out + 8 * g + 4), half(gp, &h[1], mask, b));
    }
    st_unpack_scalar(p + g * w, n - 8 * g, w, base, out + 8 * g);
}
#else
void st_unpack_avx2(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out)
{
    st_unpack_scalar(p, n, w, base, out);
}
#endif
