/*
 * codec.c: decoding the lightweight encodings of a column block
 * (FORMAT.md, "Encodings"); codec_encode.c chooses and writes them.
 *
 * Integers (bool, int32, int64, widened to 64 bits) can be stored PLAIN,
 * as FOR_BITPACK (base + bit-packed offsets), DELTA (first value + base
 * delta + bit-packed delta offsets, all arithmetic modulo 2^64 so int64
 * extremes round-trip), RLE (bit-packed run values and run lengths),
 * DICT (a sorted bit-packed dictionary + bit-packed codes) or CONST.
 * float64 blocks are PLAIN, DICT (bit patterns) or CONST; strings and
 * bytes are PLAIN (bit-packed lengths + bytes), DICT or CONST. zstd is a
 * second stage applied by the writer and undone by the reader.
 *
 * Bit packing: value i occupies bits [i*w, (i+1)*w) of a little-endian
 * bit stream; every packed array is followed by ST_PACK_SLACK zero bytes
 * so the decoder's fast path can load 8 bytes at any value's byte offset
 * without a bounds check per value.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "format_internal.h"

#define DICT_MAX ST_DICT_MAX

static inline size_t packed_bytes(size_t n, unsigned w) { return st_packed_bytes(n, w); }

/* Values [0, n) of width w (1..56) from p, 8 at a time: a group of 8
 * values is exactly w bytes, so inside a group every value's byte offset
 * and shift are fixed, and with w a constant (unpack_w's callers) they
 * compile to immediates. Reads 8 bytes at a value's byte offset, which
 * the ST_PACK_SLACK bytes after every packed array allow. */
static inline __attribute__((always_inline)) void unpack_w(const uint8_t *p, size_t n, unsigned w, uint64_t base,
                                                           uint64_t *out)
{
    const uint64_t mask = ((uint64_t)1 << w) - 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8, p += w)
        for (unsigned j = 0; j < 8; j++) {
            uint64_t x;
            memcpy(&x, p + ((j * w) >> 3), 8);
            out[i + j] = base + ((x >> ((j * w) & 7)) & mask);
        }
    for (unsigned bit = 0; i < n; i++, bit += w) {
        uint64_t x;
        memcpy(&x, p + (bit >> 3), 8);
        out[i] = base + ((x >> (bit & 7)) & mask);
    }
}

#define UNPACK_CASE(W) \
    case W: unpack_w(p, n, W, base, out); return;

/* Unpacks n values of width w from p (which holds packed_bytes(n, w)).
 * The widths of the silver and gold integer columns (ids, months,
 * quantities, codes: 1..24 bits) get a copy of the loop each. */
void st_unpack_scalar(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out)
{
    if (w == 0) {
        for (size_t i = 0; i < n; i++) out[i] = base;
        return;
    }
    switch (w) {
        UNPACK_CASE(1) UNPACK_CASE(2) UNPACK_CASE(3) UNPACK_CASE(4) UNPACK_CASE(5) UNPACK_CASE(6) UNPACK_CASE(7)
        UNPACK_CASE(8) UNPACK_CASE(9) UNPACK_CASE(10) UNPACK_CASE(11) UNPACK_CASE(12) UNPACK_CASE(13)
        UNPACK_CASE(14) UNPACK_CASE(15) UNPACK_CASE(16) UNPACK_CASE(17) UNPACK_CASE(18) UNPACK_CASE(19)
        UNPACK_CASE(20) UNPACK_CASE(21) UNPACK_CASE(22) UNPACK_CASE(23) UNPACK_CASE(24)
    default: break;
    }
    if (w <= 56) {
        unpack_w(p, n, w, base, out);
        return;
    }
    uint64_t bit = 0;
    for (size_t i = 0; i < n; i++, bit += w) {
        size_t byte = (size_t)(bit >> 3);
        unsigned sh = (unsigned)(bit & 7);
        uint64_t x;
        memcpy(&x, p + byte, 8);
        x >>= sh;
        if (sh + w > 64) x |= (uint64_t)p[byte + 8] << (64 - sh);
        if (w < 64) x &= ((uint64_t)1 << w) - 1;
        out[i] = base + x;
    }
}

st_unpack_fn st_unpack_pick(st_cpu_isa level) { return level >= ST_CPU_AVX2 ? st_unpack_avx2 : st_unpack_scalar; }

/* The decoder's unpacking: the best kernel the CPU allows (engine/cpu.c). */
static void unpack(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out)
{
    st_unpack_pick(st_cpu_level())(p, n, w, base, out);
}

static bool is_var(st_type t) { return t == ST_TYPE_STR || t == ST_TYPE_BYTES; }

/* ---- decoding ---- */

typedef struct rd {
    const uint8_t *p;
    size_t len, at;
} rd;

static bool take(rd *r, size_t n, const uint8_t **out)
{
    if (n > r->len - r->at) return false;
    *out = r->p + r->at;
    r->at += n;
    return true;
}
static bool get8(rd *r, uint64_t *v)
{
    const uint8_t *p;
    if (!take(r, 8, &p)) return false;
    *v = st_get_u64(p);
    return true;
}
static bool get4(rd *r, uint32_t *v)
{
    const uint8_t *p;
    if (!take(r, 4, &p)) return false;
    *v = st_get_u32(p);
    return true;
}
static bool get1(rd *r, unsigned *v)
{
    const uint8_t *p;
    if (!take(r, 1, &p)) return false;
    *v = p[0];
    return true;
}
/* A packed array of n values of width w (<= 64). */
static bool get_packed(rd *r, size_t n, unsigned w, const uint8_t **p)
{
    if (w > 64) return false;
    return take(r, packed_bytes(n, w), p);
}

static void store_fixed(st_column *out, size_t at, const uint64_t *v, size_t n)
{
    switch (out->type) {
    case ST_TYPE_BOOL:
        for (size_t i = 0; i < n; i++) ((uint8_t *)out->data)[at + i] = (uint8_t)v[i];
        break;
    case ST_TYPE_I32:
        for (size_t i = 0; i < n; i++) ((int32_t *)out->data)[at + i] = (int32_t)v[i];
        break;
    default: memcpy((uint64_t *)out->data + at, v, n * 8); break;
    }
}

/* A decoded value must be representable in the column type: a damaged
 * file could otherwise smuggle 7 into a bool. */
static bool in_type(st_type t, const uint64_t *v, size_t n)
{
    if (t == ST_TYPE_BOOL) {
        for (size_t i = 0; i < n; i++)
            if (v[i] > 1) return false;
    } else if (t == ST_TYPE_I32) {
        for (size_t i = 0; i < n; i++)
            if ((int64_t)v[i] < INT32_MIN || (int64_t)v[i] > INT32_MAX) return false;
    }
    return true;
}

/* In the decoders below (with `st_status s`, `const char **why` and a
 * done: label): the block is corrupt, for reason msg. */
#define BAD(msg)            \
    do {                    \
        *why = msg;         \
        s = ST_ERR_CORRUPT; \
        goto done;          \
    } while (0)

static bool in_i32(uint64_t v) { return (int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX; }

/* An RLE block's parts: its run count (at most n), base, value width and
 * packed run values, then the lengths' width and packed lengths. NULL,
 * or what is wrong. */
static const char *rle_parts(rd *r, size_t n, uint32_t *cnt, uint64_t *a, unsigned *w, const uint8_t **p,
                             unsigned *w2, const uint8_t **pl)
{
    if (!get4(r, cnt) || !get8(r, a) || !get1(r, w) || *cnt > n || !get_packed(r, *cnt, *w, p))
        return "run values truncated";
    if (!get1(r, w2) || !get_packed(r, *cnt, *w2, pl)) return "run lengths truncated";
    return NULL;
}

/* True when the cnt run lengths len[] are each at least 1 and add up to
 * n; end[q] (when end is not NULL) gets run q's end row. */
static bool runs_add_up(const uint64_t *len, size_t cnt, size_t n, uint32_t *end)
{
    size_t k = 0;
    for (size_t q = 0; q < cnt; q++) {
        if (len[q] == 0 || len[q] > n - k) return false;
        k += (size_t)len[q];
        if (end) end[q] = (uint32_t)k;
    }
    return k == n;
}

/* CONST and RLE blocks of an int32 column (period keys, years, months:
 * one value or a few runs a chunk), written straight into the column:
 * the same checks, in the same order, as the 64-bit path below, without
 * expanding every row to 64 bits, checking and narrowing it. */
static st_status decode_i32_runs(int enc, rd *r, size_t n, st_column *out, const char **why)
{
    size_t at = out->n_rows;
    ST_TRY(st_column_reserve(out, at + n, 0));
    int32_t *dst = (int32_t *)out->data + at;
    st_status s = ST_OK;
    uint64_t a, *rv = NULL;
    unsigned w, w2;
    uint32_t cnt;
    const uint8_t *p, *pl;
    if (enc == ST_ENC_CONST) {
        if (!get8(r, &a)) BAD("constant truncated");
        if (n && !in_i32(a)) BAD("value out of the column type's range");
        for (size_t i = 0; i < n; i++) dst[i] = (int32_t)a;
        out->n_rows = at + n;
        return ST_OK;
    }
    const char *bad = rle_parts(r, n, &cnt, &a, &w, &p, &w2, &pl);
    if (bad) BAD(bad);
    if (!(rv = malloc(((size_t)cnt * 2 + 1) * sizeof *rv))) return ST_ERR_NOMEM;
    unpack(p, cnt, w, a, rv);
    unpack(pl, cnt, w2, 1, rv + cnt);
    if (!runs_add_up(rv + cnt, cnt, n, NULL)) BAD("run lengths do not add up to the row count");
    for (size_t q = 0; q < cnt; q++)
        if (!in_i32(rv[q])) BAD("value out of the column type's range");
    size_t k = 0;
    for (size_t q = 0; q < cnt; q++)
        for (uint64_t z = 0; z < rv[cnt + q]; z++) dst[k++] = (int32_t)rv[q];
    out->n_rows = at + n;
done:
    free(rv);
    return s;
}

static st_status decode_fixed(st_type t, int enc, rd *r, size_t n, st_column *out, const char **why)
{
    if (t == ST_TYPE_I32 && out->type == t && (enc == ST_ENC_CONST || enc == ST_ENC_RLE))
        return decode_i32_runs(enc, r, n, out, why);
    size_t width = st_type_width(t);
    size_t at = out->n_rows;
    ST_TRY(st_column_reserve(out, at + n, 0));
    /* 8-byte values are decoded in place; narrower ones through a buffer
     * of 64-bit values, checked against the type and narrowed */
    bool direct = width == 8 && out->type == t;
    uint64_t *v = direct ? (uint64_t *)out->data + at : malloc((n ? n : 1) * sizeof *v);
    if (!v) return ST_ERR_NOMEM;
    st_status s = ST_OK;
    const uint8_t *p;
    uint64_t a, b;
    unsigned w, w2;
    uint32_t cnt;
    bool f64 = t == ST_TYPE_F64;
    switch (enc) {
    case ST_ENC_PLAIN:
        if (!take(r, n * width, &p)) BAD("plain values truncated");
        if (t == ST_TYPE_BOOL) {
            for (size_t i = 0; i < n; i++) v[i] = p[i];
        } else if (t == ST_TYPE_I32) {
            for (size_t i = 0; i < n; i++) v[i] = (uint64_t)(int64_t)(int32_t)st_get_u32(p + 4 * i);
        } else {
            memcpy(v, p, n * 8);
        }
        break;
    case ST_ENC_FOR_BITPACK:
        if (f64) BAD("encoding not valid for float64");
        if (!get8(r, &a) || !get1(r, &w) || !get_packed(r, n, w, &p)) BAD("bit-packed values truncated");
        unpack(p, n, w, a, v);
        break;
    case ST_ENC_DELTA:
        if (f64 || n == 0) BAD("encoding not valid here");
        if (!get8(r, &a) || !get8(r, &b) || !get1(r, &w) || !get_packed(r, n - 1, w, &p)) BAD("delta values truncated");
        unpack(p, n - 1, w, b, v + 1);
        v[0] = a;
        for (size_t i = 1; i < n; i++) v[i] += v[i - 1];
        break;
    case ST_ENC_RLE: {
        if (f64) BAD("encoding not valid for float64");
        const uint8_t *pl;
        const char *bad = rle_parts(r, n, &cnt, &a, &w, &p, &w2, &pl);
        if (bad) BAD(bad);
        uint64_t *rv = malloc(((size_t)cnt * 2 + 1) * sizeof *rv);
        if (!rv) {
            s = ST_ERR_NOMEM;
            goto done;
        }
        unpack(p, cnt, w, a, rv);
        unpack(pl, cnt, w2, 1, rv + cnt);
        if (!runs_add_up(rv + cnt, cnt, n, NULL)) {
            free(rv);
            BAD("run lengths do not add up to the row count");
        }
        size_t k = 0;
        for (size_t q = 0; q < cnt; q++)
            for (uint64_t z = 0; z < rv[cnt + q]; z++) v[k++] = rv[q];
        free(rv);
        if (k != n) BAD("run lengths do not add up to the row count");
        break;
    }
    case ST_ENC_DICT: {
        if (!get4(r, &cnt) || cnt == 0 || cnt > DICT_MAX) BAD("bad dictionary size");
        uint64_t dict[DICT_MAX];
        if (f64) {
            if (!take(r, (size_t)cnt * 8, &p)) BAD("dictionary truncated");
            memcpy(dict, p, (size_t)cnt * 8);
        } else {
            if (!get8(r, &a) || !get1(r, &w) || !get_packed(r, cnt, w, &p)) BAD("dictionary truncated");
            unpack(p, cnt, w, a, dict);
        }
        if (!get1(r, &w2) || !get_packed(r, n, w2, &p)) BAD("dictionary codes truncated");
        unpack(p, n, w2, 0, v);
        for (size_t i = 0; i < n; i++) {
            if (v[i] >= cnt) BAD("dictionary code out of range");
            v[i] = dict[v[i]];
        }
        break;
    }
    case ST_ENC_CONST:
        if (!get8(r, &a)) BAD("constant truncated");
        for (size_t i = 0; i < n; i++) v[i] = a;
        break;
    default: BAD("unknown encoding");
    }
    if (!in_type(t, v, n)) BAD("value out of the column type's range");
    if (!direct) store_fixed(out, at, v, n);
    out->n_rows = at + n;
done:
    if (!direct) free(v);
    return s;
}

/* decode_fixed's CONST and RLE cases, as runs: the same checks in the same
 * order (run values, run lengths that add up to n, values of the type),
 * then the bytes all taken. */
static st_status decode_runs(st_type t, int enc, rd *r, size_t n, uint64_t *val, uint32_t *end, size_t cap,
                             size_t *n_runs, const char **why)
{
    st_status s = ST_OK;
    uint64_t a;
    uint32_t cnt;
    unsigned w, w2;
    const uint8_t *p, *pl;
    uint64_t *rv = NULL;
    if (enc == ST_ENC_CONST) {
        if (!get8(r, &a)) BAD("constant truncated");
        if (n && !in_type(t, &a, 1)) BAD("value out of the column type's range");
        if (n && cap < 1) return ST_ERR_UNSUPPORTED;
        *n_runs = n ? 1 : 0;
        if (n) val[0] = a, end[0] = (uint32_t)n;
        return ST_OK;
    }
    const char *bad = rle_parts(r, n, &cnt, &a, &w, &p, &w2, &pl);
    if (bad) BAD(bad);
    if (cnt > cap) return ST_ERR_UNSUPPORTED; /* the structure read: the caller decodes rows */
    if (!(rv = malloc(((size_t)cnt + 1) * sizeof *rv))) return ST_ERR_NOMEM;
    unpack(p, cnt, w, a, val);
    unpack(pl, cnt, w2, 1, rv);
    if (!runs_add_up(rv, cnt, n, end)) BAD("run lengths do not add up to the row count");
    if (!in_type(t, val, cnt)) BAD("value out of the column type's range");
    *n_runs = cnt;
done:
    free(rv);
    return s;
}

/* The dictionary of a DICT string block: count, lengths, offsets into
 * the value bytes (cnt + 1 entries) and the bytes. NULL, or what is wrong. */
static const char *str_dict(rd *r, uint32_t *cnt, uint64_t *dl, uint64_t *doff, const uint8_t **bytes)
{
    uint64_t a;
    unsigned w;
    const uint8_t *p;
    if (!get4(r, cnt) || *cnt == 0 || *cnt > DICT_MAX) return "bad dictionary size";
    if (!get8(r, &a) || !get1(r, &w) || !get_packed(r, *cnt, w, &p)) return "dictionary truncated";
    unpack(p, *cnt, w, a, dl);
    doff[0] = 0;
    for (size_t k = 0; k < *cnt; k++) {
        if (dl[k] > r->len || doff[k] + dl[k] > r->len) return "dictionary lengths exceed the block";
        doff[k + 1] = doff[k] + dl[k];
    }
    if (!take(r, (size_t)doff[*cnt], bytes)) return "dictionary bytes truncated";
    return NULL;
}

/* A DICT string block: its dictionary (str_dict) and its n codes, packed
 * *wc bits wide at *codes. NULL, or what is wrong. */
static const char *str_dict_codes(rd *r, size_t n, uint32_t *cnt, uint64_t *dl, uint64_t *doff, const uint8_t **bytes,
                                  unsigned *wc, const uint8_t **codes)
{
    const char *bad = str_dict(r, cnt, dl, doff, bytes);
    if (bad) return bad;
    if (!get1(r, wc) || !get_packed(r, n, *wc, codes)) return "dictionary codes truncated";
    return NULL;
}

static st_status decode_var(int enc, rd *r, size_t n, st_column *out, const char **why)
{
    uint64_t *len = malloc((n ? n : 1) * sizeof *len);
    if (!len) return ST_ERR_NOMEM;
    st_status s = ST_OK;
    const uint8_t *p, *bytes;
    uint64_t a;
    unsigned w;
    uint32_t cnt;
    size_t at = out->n_rows;
    switch (enc) {
    case ST_ENC_PLAIN: {
        if (!get8(r, &a) || !get1(r, &w) || !get_packed(r, n, w, &p)) BAD("string lengths truncated");
        unpack(p, n, w, a, len);
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (len[i] > r->len || total + len[i] > r->len) BAD("string lengths exceed the block");
            total += len[i];
        }
        if (!take(r, (size_t)total, &bytes)) BAD("string bytes truncated");
        if ((s = st_column_reserve(out, at + n, out->n_bytes + (size_t)total)) != ST_OK) goto done;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if ((s = st_column_push_str(out, (const char *)bytes + o, (size_t)len[i])) != ST_OK) goto done;
            o += (size_t)len[i];
        }
        break;
    }
    case ST_ENC_DICT: {
        uint64_t dl[DICT_MAX], doff[DICT_MAX + 1];
        unsigned wc;
        const char *bad = str_dict_codes(r, n, &cnt, dl, doff, &bytes, &wc, &p);
        if (bad) BAD(bad);
        unpack(p, n, wc, 0, len);
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (len[i] >= cnt) BAD("dictionary code out of range");
            total += dl[len[i]];
            if (total > ST_MAX_BLOCK_RAW) BAD("decoded strings exceed the block limit");
        }
        s = st_column_push_picked(out, (const char *)bytes, doff, dl, cnt, len, n);
        break;
    }
    case ST_ENC_CONST: {
        if (!get4(r, &cnt) || !take(r, cnt, &bytes)) BAD("constant truncated");
        if ((uint64_t)cnt * n > ST_MAX_BLOCK_RAW) BAD("decoded strings exceed the block limit");
        if ((s = st_column_reserve(out, at + n, out->n_bytes + (size_t)cnt * n)) != ST_OK) goto done;
        for (size_t i = 0; i < n; i++)
            if ((s = st_column_push_str(out, (const char *)bytes, cnt)) != ST_OK) goto done;
        break;
    }
    default: BAD("unknown encoding for strings");
    }
done:
    free(len);
    return s;
}

/* Unpacks n dictionary codes of width w from p into codes, a slice at a
 * time through a buffer that stays in L1 (a block-sized scratch, 512 KiB
 * at 65,536 rows, was a fresh mapping and its page faults every block).
 * A slice starts on a whole group of 8 values, byte i0 / 8 * w, and reads
 * no further than the whole array would. False when a code is cnt or
 * above. */
static bool unpack_codes(const uint8_t *p, size_t n, unsigned w, uint32_t cnt, uint32_t *codes)
{
    enum { SLICE = 1024 };
    uint64_t v[SLICE];
    for (size_t i0 = 0; i0 < n; i0 += SLICE) {
        size_t m = n - i0 < SLICE ? n - i0 : SLICE;
        unpack(p + i0 / 8 * w, m, w, 0, v);
        if (w <= 32) { /* codes below 2^32: their maximum in 32 bits, a loop the compiler vectorises */
            uint32_t hi = 0;
            for (size_t i = 0; i < m; i++) {
                uint32_t c = (uint32_t)v[i];
                codes[i0 + i] = c;
                hi = c > hi ? c : hi;
            }
            if (hi >= cnt) return false;
            continue;
        }
        uint64_t hi = 0;
        for (size_t i = 0; i < m; i++) {
            hi = v[i] > hi ? v[i] : hi;
            codes[i0 + i] = (uint32_t)v[i];
        }
        if (hi >= cnt) return false;
    }
    return true;
}

/* The cnt strings of a DICT block's dictionary (lengths dl, offsets doff
 * into bytes, from str_dict) appended to dict. */
static st_status push_dict(st_column *dict, const uint8_t *bytes, const uint64_t *dl, const uint64_t *doff,
                           uint32_t cnt)
{
    ST_TRY(st_column_reserve(dict, dict->n_rows + cnt, dict->n_bytes + (size_t)doff[cnt]));
    for (size_t k = 0; k < cnt; k++) ST_TRY(st_column_push_str(dict, (const char *)bytes + doff[k], (size_t)dl[k]));
    return ST_OK;
}

/* Strings as (dictionary, codes): DICT blocks give their dictionary and
 * codes without one string per row; PLAIN gives every row's value with
 * codes 0..n-1; CONST one value with codes 0. Same checks as decode_var. */
static st_status decode_var_dict(int enc, rd *r, size_t n, st_column *dict, uint32_t *codes, const char **why)
{
    st_status s = ST_OK;
    const uint8_t *p, *bytes;
    uint32_t cnt;
    switch (enc) {
    case ST_ENC_DICT: {
        uint64_t dl[DICT_MAX], doff[DICT_MAX + 1];
        unsigned wc;
        const char *bad = str_dict_codes(r, n, &cnt, dl, doff, &bytes, &wc, &p);
        if (bad) BAD(bad);
        if (!unpack_codes(p, n, wc, cnt, codes)) BAD("dictionary code out of range");
        s = push_dict(dict, bytes, dl, doff, cnt);
        break;
    }
    case ST_ENC_CONST:
        if (!get4(r, &cnt) || !take(r, cnt, &bytes)) BAD("constant truncated");
        if ((s = st_column_push_str(dict, (const char *)bytes, cnt)) != ST_OK) goto done;
        for (size_t i = 0; i < n; i++) codes[i] = 0;
        break;
    default:
        if ((s = decode_var(enc, r, n, dict, why)) != ST_OK) goto done;
        for (size_t i = 0; i < n; i++) codes[i] = (uint32_t)i;
        break;
    }
done:
    return s;
}
#undef BAD

/* ---- slices ---- */

static st_status corrupt(const char **why, const char *msg)
{
    *why = msg;
    return ST_ERR_CORRUPT;
}

/* Room for k entries in the slicer's val and end. */
static bool slicer_room(st_codec_slicer *sl, size_t k)
{
    if (k <= sl->cap) return true;
    uint64_t *v = realloc(sl->val, k * sizeof *v);
    if (!v) return false;
    sl->val = v;
    uint32_t *e = realloc(sl->end, k * sizeof *e);
    if (!e) return false;
    sl->end = e;
    sl->cap = k;
    return true;
}

/* An integer block's structure, read as decode_fixed reads it; CONST and
 * RLE as runs (decode_runs: every check but the rows'). */
static st_status slicer_open_fixed(st_codec_slicer *sl, rd *r, const char **why)
{
    const uint8_t *p;
    uint64_t a;
    unsigned w;
    switch (sl->enc) {
    case ST_ENC_PLAIN:
        if (!take(r, sl->n * st_type_width(sl->t), &sl->packed)) return corrupt(why, "plain values truncated");
        return ST_OK;
    case ST_ENC_FOR_BITPACK:
        if (!get8(r, &sl->a) || !get1(r, &sl->w) || !get_packed(r, sl->n, sl->w, &sl->packed))
            return corrupt(why, "bit-packed values truncated");
        return ST_OK;
    case ST_ENC_DICT:
        if (!get4(r, &sl->cnt) || sl->cnt == 0 || sl->cnt > DICT_MAX) return corrupt(why, "bad dictionary size");
        if (!slicer_room(sl, sl->cnt)) return ST_ERR_NOMEM;
        if (!get8(r, &a) || !get1(r, &w) || !get_packed(r, sl->cnt, w, &p)) return corrupt(why, "dictionary truncated");
        unpack(p, sl->cnt, w, a, sl->val);
        if (!get1(r, &sl->w) || !get_packed(r, sl->n, sl->w, &sl->packed))
            return corrupt(why, "dictionary codes truncated");
        return ST_OK;
    case ST_ENC_CONST:
    case ST_ENC_RLE: {
        /* the run count comes first; a count above n fails in rle_parts */
        uint32_t cnt = sl->enc == ST_ENC_RLE && r->len >= 4 ? st_get_u32(r->p) : 1;
        size_t runs = 0;
        if (!slicer_room(sl, cnt <= sl->n && cnt ? cnt : 1)) return ST_ERR_NOMEM;
        st_status s = decode_runs(sl->t, sl->enc, r, sl->n, sl->val, sl->end, sl->cap, &runs, why);
        sl->cnt = (uint32_t)runs;
        return s;
    }
    default: return ST_ERR_UNSUPPORTED; /* DELTA: every row needs the ones before it */
    }
}

/* A string block's structure, read as decode_var_dict reads it, its
 * dictionary into dict. */
static st_status slicer_open_var(st_codec_slicer *sl, rd *r, st_column *dict, const char **why)
{
    const uint8_t *bytes;
    uint32_t cnt;
    if (sl->enc == ST_ENC_CONST) {
        if (!get4(r, &cnt) || !take(r, cnt, &bytes)) return corrupt(why, "constant truncated");
        return st_column_push_str(dict, (const char *)bytes, cnt);
    }
    if (sl->enc != ST_ENC_DICT) return ST_ERR_UNSUPPORTED;
    uint64_t dl[DICT_MAX], doff[DICT_MAX + 1];
    const char *bad = str_dict_codes(r, sl->n, &sl->cnt, dl, doff, &bytes, &sl->w, &sl->packed);
    if (bad) return corrupt(why, bad);
    return push_dict(dict, bytes, dl, doff, sl->cnt);
}

st_status st_codec_slicer_open(st_codec_slicer *sl, st_type t, int enc, const uint8_t *p, size_t len, size_t n,
                               st_column *dict, const char **why)
{
    sl->t = t;
    sl->enc = enc;
    sl->n = n;
    sl->a = 0;
    sl->w = 0;
    sl->packed = NULL;
    sl->cnt = 0;
    sl->run = 0;
    if ((t != ST_TYPE_I32 && t != ST_TYPE_I64 && !is_var(t)) || (is_var(t) && !dict) || n > UINT32_MAX)
        return ST_ERR_UNSUPPORTED;
    rd r = {p, len, 0};
    st_status s = is_var(t) ? slicer_open_var(sl, &r, dict, why) : slicer_open_fixed(sl, &r, why);
    if (s == ST_OK && r.at != len) return corrupt(why, "trailing bytes after the values");
    return s;
}

/* Rows [first, first + m) (m >= 1) of a CONST or RLE block from its runs,
 * from the run last read on (from the first when going back). */
static void slicer_runs(st_codec_slicer *sl, size_t first, size_t m, uint64_t *out)
{
    size_t q = sl->run < sl->cnt && (sl->run == 0 || sl->end[sl->run - 1] <= first) ? sl->run : 0;
    while (sl->end[q] <= first) q++;
    for (size_t i = first, stop = first + m; i < stop; q++) {
        size_t e = sl->end[q] < stop ? sl->end[q] : stop;
        for (; i < e; i++) out[i - first] = sl->val[q];
        if (e == stop) break;
    }
    sl->run = q;
}

/* ST_OK when rows [first, first + m) are a slice of the open block. */
static st_status slice_ok(const st_codec_slicer *sl, size_t first, size_t m, const char **why)
{
    if ((first & 7) || first > sl->n || m > sl->n - first) {
        *why = "slice outside the block";
        return ST_ERR_INVALID;
    }
    return ST_OK;
}

st_status st_codec_slicer_read(st_codec_slicer *sl, size_t first, size_t m, uint64_t *out, const char **why)
{
    ST_TRY(slice_ok(sl, first, m, why));
    if (is_var(sl->t)) {
        *why = "a string block's slices are codes";
        return ST_ERR_INVALID;
    }
    if (m == 0) return ST_OK;
    /* FOR and DICT: a group of 8 values is w bytes */
    const uint8_t *at = sl->enc == ST_ENC_FOR_BITPACK || sl->enc == ST_ENC_DICT ? sl->packed + first / 8 * sl->w : NULL;
    switch (sl->enc) {
    case ST_ENC_PLAIN:
        if (sl->t == ST_TYPE_I64) {
            memcpy(out, sl->packed + 8 * first, m * 8);
        } else {
            for (size_t i = 0; i < m; i++) out[i] = (uint64_t)(int64_t)(int32_t)st_get_u32(sl->packed + 4 * (first + i));
        }
        return ST_OK;
    case ST_ENC_FOR_BITPACK: unpack(at, m, sl->w, sl->a, out); break;
    case ST_ENC_DICT: {
        unpack(at, m, sl->w, 0, out);
        uint64_t hi = 0;
        for (size_t i = 0; i < m; i++) hi = out[i] > hi ? out[i] : hi;
        if (hi >= sl->cnt) return corrupt(why, "dictionary code out of range");
        for (size_t i = 0; i < m; i++) out[i] = sl->val[out[i]];
        break;
    }
    default: slicer_runs(sl, first, m, out); return ST_OK; /* values checked when opened */
    }
    if (!in_type(sl->t, out, m)) return corrupt(why, "value out of the column type's range");
    return ST_OK;
}

st_status st_codec_slicer_codes(st_codec_slicer *sl, size_t first, size_t m, uint32_t *codes, const char **why)
{
    ST_TRY(slice_ok(sl, first, m, why));
    if (!is_var(sl->t)) {
        *why = "an integer block's slices are values";
        return ST_ERR_INVALID;
    }
    if (sl->enc == ST_ENC_CONST) {
        memset(codes, 0, m * sizeof *codes);
        return ST_OK;
    }
    /* the block decoder's unpacking, from the slice's group of 8 */
    if (m && !unpack_codes(sl->packed + first / 8 * sl->w, m, sl->w, sl->cnt, codes))
        return corrupt(why, "dictionary code out of range");
    return ST_OK;
}

void st_codec_slicer_free(st_codec_slicer *sl)
{
    free(sl->val);
    free(sl->end);
    sl->val = NULL;
    sl->end = NULL;
    sl->cap = 0;
}

st_status st_codec_decode_dict(st_type t, int enc, const uint8_t *p, size_t len, size_t n, st_column *dict,
                               uint32_t *codes, const char **why)
{
    if (!is_var(t)) {
        *why = "not a string column";
        return ST_ERR_INVALID;
    }
    rd r = {p, len, 0};
    st_status s = decode_var_dict(enc, &r, n, dict, codes, why);
    if (s == ST_OK && r.at != len) {
        *why = "trailing bytes after the values";
        return ST_ERR_CORRUPT;
    }
    return s;
}

st_status st_codec_decode_runs(st_type t, int enc, const uint8_t *p, size_t len, size_t n, uint64_t *val,
                               uint32_t *end, size_t cap, size_t *n_runs, const char **why)
{
    *n_runs = 0;
    if (is_var(t) || t == ST_TYPE_F64 || (enc != ST_ENC_CONST && enc != ST_ENC_RLE) || n > UINT32_MAX)
        return ST_ERR_UNSUPPORTED;
    rd r = {p, len, 0};
    st_status s = decode_runs(t, enc, &r, n, val, end, cap, n_runs, why);
    if (s == ST_OK && r.at != len) {
        *why = "trailing bytes after the values";
        return ST_ERR_CORRUPT;
    }
    return s;
}

st_status st_codec_decode(st_type t, int enc, const uint8_t *p, size_t len, size_t n, st_column *out,
                          const char **why)
{
    rd r = {p, len, 0};
    st_status s = is_var(t) ? decode_var(enc, &r, n, out, why) : decode_fixed(t, enc, &r, n, out, why);
    if (s == ST_OK && r.at != len) {
        *why = "trailing bytes after the values";
        return ST_ERR_CORRUPT;
    }
    return s;
}
