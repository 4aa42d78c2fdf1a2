/*
 * format_internal.h: byte-level constants and codec entry points of the
 * layer file format, shared by writer.c, reader.c and codec.c. The
 * authoritative description is formats/FORMAT.md; keep the two in step.
 */
#ifndef STRATA_FORMAT_INTERNAL_H
#define STRATA_FORMAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "strata/buf.h"
#include "strata/column.h"
#include "strata/file.h"

#define ST_MAGIC "STRATA\x01\x00"     /* 8 bytes at the start and at the very end */
#define ST_HEADER_BYTES 16             /* magic, major, minor, crc */
#define ST_TAIL_BYTES 24               /* footer_len u64, footer_crc u32, major u16, minor u16, magic */
#define ST_BLOCK_HEADER_BYTES 24
#define ST_BLOCK_FLAG_ZSTD 1u
#define ST_BLOCK_FLAG_VALIDITY 2u
#define ST_PACK_SLACK 8                /* zero bytes after every bit-packed array */
#define ST_MAX_BLOCK_RAW (512u << 20)  /* decoded payload limit per block */

static inline void st_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void st_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void st_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
/* A block's entry in the footer (FORMAT.md, "Footer"): where it is, how
 * it is encoded, its null count and zone map. The writer collects them,
 * the reader parses them back. */
typedef struct st_block_ent {
    uint64_t offset;    /* of the block (header included), from the start of the file */
    uint32_t size;      /* bytes: 24-byte header + stored payload */
    uint8_t encoding, flags, has_minmax;
    uint32_t null_count;
    uint64_t raw_bytes; /* decoded size of the values */
    uint64_t min, max;  /* zone map over the present values (i64, or float64 bits) when has_minmax */
} st_block_ent;

/* Little-endian appends to a byte buffer (a failed append marks the
 * buffer, buf.h). */
static inline void st_buf_put_u8(st_buf *b, uint8_t v) { st_buf_append(b, &v, 1); }
static inline void st_buf_put_u32(st_buf *b, uint32_t v)
{
    uint8_t t[4];
    st_put_u32(t, v);
    st_buf_append(b, t, 4);
}
static inline void st_buf_put_u64(st_buf *b, uint64_t v)
{
    uint8_t t[8];
    st_put_u64(t, v);
    st_buf_append(b, t, 8);
}

static inline uint16_t st_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t st_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t st_get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* the format is little-endian, as are the targets */
    return v;
}

/* Scratch memory of the block encoder (tables, widened values), reused
 * across blocks by one thread. Caller owns it; free with
 * st_codec_scratch_free() (NULL does nothing). NULL when out of memory. */
typedef struct st_codec_scratch st_codec_scratch;
st_codec_scratch *st_codec_scratch_new(void);
void st_codec_scratch_free(st_codec_scratch *s);

/* The signed range of every value of a bool/int32/int64 block, which
 * the encoder's statistics give for free (has_minmax false for float64,
 * strings and empty blocks). */
typedef struct st_codec_range {
    bool has_minmax;
    int64_t min, max;
} st_codec_range;

/* Encodes column c (all n_rows values, NULL slots hold 0 / "") into out
 * (appending): picks the smallest encoding (or `force` >= 0 for tests),
 * writes the encoding id into *enc and, when range is not NULL, the
 * values' range into *range. Values only: validity is handled by the
 * caller. Borrows s for the call. ST_ERR_NOMEM when out of memory. */
st_status st_codec_encode_block(const st_column *c, int force, st_codec_scratch *s, st_buf *out, int *enc,
                                st_codec_range *range);

/* The block st_codec_encode_block() writes for the STR column whose row i
 * is dict's string rows[i] (i < n, n >= 1), without making that column:
 * dict holds distinct strings (no NULLs) and every rows[i] < dict->n_rows
 * (the caller checks both). *n_bytes gets the rows' string bytes (the
 * column's n_bytes). Borrows s for the call. ST_ERR_INVALID for n == 0,
 * ST_ERR_NOMEM when out of memory. */
st_status st_codec_encode_str_codes(const st_column *dict, const uint32_t *rows, size_t n, int force,
                                    st_codec_scratch *s, st_buf *out, int *enc, uint64_t *n_bytes);

/* st_codec_encode_block with a scratch of its own (tests, tools). */
st_status st_codec_encode(const st_column *c, int force, st_buf *out, int *enc);

/* The block st_codec_encode() writes for a BOOL/I32/I64 column holding
 * n_runs runs, run r being len[r] >= 1 rows of val[r] (widened to 64 bits
 * as the encoder does; adjacent runs differ), when that block is RLE or
 * CONST: then its bytes go to out, *enc gets the encoding and *done is
 * true. Otherwise (another encoding would be the smallest, runs that are
 * not the encoder's runs, a forced encoding) nothing is written and *done
 * is false. Costs O(n_runs), not O(rows). s: the caller's encoder
 * scratch (st_codec_scratch_new; the writer's own), used for the
 * dictionary count and the packing input. */
st_status st_codec_encode_runs(st_type t, const uint64_t *val, const uint32_t *len, size_t n_runs,
                               st_codec_scratch *s, st_buf *out, int *enc, bool *done);

/* Decodes n values of type t encoded with enc from (p, len) into out
 * (appending). ST_ERR_CORRUPT on any inconsistency; never reads past len. */
st_status st_codec_decode(st_type t, int enc, const uint8_t *p, size_t len, size_t n, st_column *out,
                          const char **why);

/* The same for an integer (BOOL, I32, I64) block encoded CONST or RLE, as
 * its runs: run r is the rows [end[r-1], end[r]) (end[-1] = 0) of value
 * val[r] (widened); *n_runs of them, room for cap given (caller-owned).
 * The checks of st_codec_decode, in its order: ST_ERR_CORRUPT with *why.
 * ST_ERR_UNSUPPORTED (nothing decoded) for another encoding or type, or
 * more than cap runs: the caller decodes rows instead. */
st_status st_codec_decode_runs(st_type t, int enc, const uint8_t *p, size_t len, size_t n, uint64_t *val,
                               uint32_t *end, size_t cap, size_t *n_runs, const char **why);

/* The same for a STR or BYTES block, as a dictionary: dict (appending)
 * gets values and codes[0..n) the index into them of each row (DICT
 * blocks: their dictionary; CONST: one value; PLAIN: every row's value,
 * codes 0..n-1). ST_ERR_CORRUPT as st_codec_decode; ST_ERR_INVALID for a
 * fixed-width type. */
st_status st_codec_decode_dict(st_type t, int enc, const uint8_t *p, size_t len, size_t n, st_column *dict,
                               uint32_t *codes, const char **why);

/* One block's rows a slice at a time: st_codec_slicer_open() reads the
 * encoding's structure once (header fields, packed lengths, RLE runs, a
 * DICT block's dictionary, no trailing bytes), st_codec_slicer_read()
 * then decodes and checks only the rows asked for. Decoding every slice
 * of a block makes the checks st_codec_decode makes, so it fails exactly
 * when that does (the first reason found may differ). The slicer owns
 * val and end (st_codec_slicer_free); the payload bytes are borrowed
 * until the next open. */
typedef struct st_codec_slicer {
    st_type t;
    int enc;
    size_t n;
    uint64_t a;            /* FOR base; CONST value */
    unsigned w;            /* width of the FOR values, or of the DICT codes */
    const uint8_t *packed; /* FOR values, DICT codes, PLAIN values */
    uint32_t cnt;          /* DICT entries; RLE runs */
    uint64_t *val;         /* integer DICT entries; RLE run values */
    uint32_t *end;         /* RLE run ends */
    size_t cap;            /* room in val and end */
    size_t run;            /* RLE: the run of the last row read (slices in order cost O(runs) in all) */
} st_codec_slicer;

/* Opens block (p, len) of n values of type t (INT32, INT64, or STR/BYTES
 * for its codes) encoded enc. Strings: dict (appending) gets the
 * dictionary, a DICT block's entries or a CONST block's value, and the
 * slices are codes into it. ST_ERR_CORRUPT with *why as st_codec_decode;
 * ST_ERR_UNSUPPORTED for another type or encoding (DELTA, PLAIN strings):
 * decode the block whole instead. */
st_status st_codec_slicer_open(st_codec_slicer *sl, st_type t, int enc, const uint8_t *p, size_t len, size_t n,
                               st_column *dict, const char **why);

/* Rows [first, first + m) of the open integer block into out, widened to
 * 64 bits. first a multiple of 8 and first + m <= n, else ST_ERR_INVALID
 * (and for a string block). ST_ERR_CORRUPT with *why for a value outside
 * the type or a code outside the dictionary. */
st_status st_codec_slicer_read(st_codec_slicer *sl, size_t first, size_t m, uint64_t *out, const char **why);

/* The same for an open string block: its rows' codes into the dictionary
 * the open gave (ST_ERR_INVALID for an integer block). */
st_status st_codec_slicer_codes(st_codec_slicer *sl, size_t first, size_t m, uint32_t *codes, const char **why);

void st_codec_slicer_free(st_codec_slicer *sl);

/* st_crc32c by the table version only, the specification the SSE4.2
 * version is tested against. */
uint32_t st_crc32c_portable(uint32_t crc, const void *buf, size_t len);

/* Test hook: force every block of subsequent writers to this encoding
 * (-1 = choose by size). Not thread-safe; tests only. */
void st_format_force_encoding(int enc);
int st_format_forced_encoding(void);

#endif
