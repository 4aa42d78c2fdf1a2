/*
 * codec_internal.h: what the block decoder (codec.c) and the block encoder
 * (codec_encode.c, codec_stats*.c) share: the bit-packing geometry, the
 * dictionary limit, and the statistics kernels the encoder chooses by.
 *
 * The statistics of a block of n values widened to 64 bits (two's
 * complement) are its signed range, the signed range of its consecutive
 * differences (taken modulo 2^64, as DELTA stores them) and its number of
 * runs of equal values. One pass computes all of them; the scalar kernel
 * is the specification, the AVX2 and AVX-512 kernels (their own files,
 * chosen by st_enc_stats_pick from engine/cpu.c's level) must return the
 * same numbers for every input, which tests/test_format.c checks.
 */
#ifndef STRATA_CODEC_INTERNAL_H
#define STRATA_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "strata/cpu.h"

#define ST_DICT_MAX 4096u /* most distinct values a DICT block holds */

/* Bits needed for x: 0 for 0, else 64 - leading zeros. */
static inline unsigned st_bits_for(uint64_t x) { return x ? 64u - (unsigned)__builtin_clzll(x) : 0u; }

/* Bytes of a packed array of n values of w bits, slack included
 * (n < 2^32 and w <= 64, so n * w fits). */
static inline size_t st_packed_bytes(size_t n, unsigned w)
{
    return (size_t)(((uint64_t)n * w + 7) / 8) + 8 /* ST_PACK_SLACK */;
}

/* Statistics of a block (see the top of this file). For n == 0 all are
 * 0; for n == 1 dmn = dmx = 0 and runs = 1. */
typedef struct st_enc_stats {
    int64_t mn, mx;   /* signed value range */
    int64_t dmn, dmx; /* signed range of v[i] - v[i-1] (mod 2^64), i >= 1 */
    size_t runs;      /* 1 + #{i >= 1: v[i] != v[i-1]} */
} st_enc_stats;

/* A statistics kernel over int64 (or float64 bit patterns) or int32
 * values, sign-extended to 64 bits. */
typedef void (*st_enc_stats64_fn)(const uint64_t *v, size_t n, st_enc_stats *st);
typedef void (*st_enc_stats32_fn)(const int32_t *v, size_t n, st_enc_stats *st);

void st_enc_stats64_scalar(const uint64_t *v, size_t n, st_enc_stats *st);
void st_enc_stats32_scalar(const int32_t *v, size_t n, st_enc_stats *st);
void st_enc_stats64_avx2(const uint64_t *v, size_t n, st_enc_stats *st);
void st_enc_stats32_avx2(const int32_t *v, size_t n, st_enc_stats *st);
void st_enc_stats64_avx512(const uint64_t *v, size_t n, st_enc_stats *st);
void st_enc_stats32_avx512(const int32_t *v, size_t n, st_enc_stats *st);

/* For the SIMD kernels: the statistics of v[0..n) from those of v[0..i)
 * (1 <= i <= n; `changes` counts k < i with v[k] != v[k-1]). */
void st_enc_stats64_finish(const uint64_t *v, size_t n, size_t i, int64_t mn, int64_t mx, int64_t dmn, int64_t dmx,
                           size_t changes, st_enc_stats *st);
void st_enc_stats32_finish(const int32_t *v, size_t n, size_t i, int64_t mn, int64_t mx, int64_t dmn, int64_t dmx,
                           size_t changes, st_enc_stats *st);

/* The runs of a block (v[0..n), n >= 1, `runs` of them, as the
 * statistics counted): run values into val[0..runs), lengths - 1 into
 * len[0..runs); returns the longest run. Scalar spec and SIMD versions,
 * which find the run boundaries several values at a time. */
typedef size_t (*st_enc_runs_fn)(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len);
size_t st_enc_runs_scalar(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len);
size_t st_enc_runs_avx2(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len);
size_t st_enc_runs_avx512(const uint64_t *v, size_t n, uint64_t *val, uint64_t *len);

/* The run list being built: runs so far (r), where the current run
 * starts, the longest finished run. */
typedef struct st_run_list {
    uint64_t *val, *len;
    size_t r, start, longest;
} st_run_list;

/* A new run starts at row k: the current one ends at k - 1. */
static inline void st_run_cut(st_run_list *l, const uint64_t *v, size_t k)
{
    l->val[l->r] = v[l->start];
    l->len[l->r++] = k - l->start - 1;
    l->longest = k - l->start > l->longest ? k - l->start : l->longest;
    l->start = k;
}

/* For the SIMD kernels: the boundaries from row i on, and the last run. */
size_t st_enc_runs_finish(const uint64_t *v, size_t n, size_t i, st_run_list *l);

/* The kernels for a SIMD level (never above what the machine has). */
/* Unpacks n values of w bits (0..64) from p, which holds
 * st_packed_bytes(n, w) readable bytes, adding base to each: the
 * decoder's FOR, DELTA, RLE and DICT code arrays. The scalar kernel
 * (codec.c) is the specification; st_unpack_avx2 (codec_unpack_avx2.c)
 * returns the same values. */
typedef void (*st_unpack_fn)(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out);
void st_unpack_scalar(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out);
void st_unpack_avx2(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out);
st_unpack_fn st_unpack_pick(st_cpu_isa level);

st_enc_stats64_fn st_enc_stats64_pick(st_cpu_isa level);
st_enc_stats32_fn st_enc_stats32_pick(st_cpu_isa level);
st_enc_runs_fn st_enc_runs_pick(st_cpu_isa level);

#endif
