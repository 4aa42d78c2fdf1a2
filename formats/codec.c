/*
 * codec.c: the lightweight encodings of a column block (FORMAT.md,
 * "Encodings") and the choice between them.
 *
 * Integers (bool, int32, int64, widened to 64 bits) can be stored PLAIN,
 * as FOR_BITPACK (base + bit-packed offsets), DELTA (first value + base
 * delta + bit-packed delta offsets, all arithmetic modulo 2^64 so int64
 * extremes round-trip), RLE (bit-packed run values and run lengths),
 * DICT (a sorted bit-packed dictionary + bit-packed codes) or CONST.
 * float64 blocks are PLAIN, DICT (bit patterns) or CONST; strings and
 * bytes are PLAIN (bit-packed lengths + bytes), DICT or CONST. The encoder
 * computes the exact size of every candidate from one pass of statistics
 * and writes only the smallest (ties: the lower encoding id), so the
 * choice is deterministic. zstd is a second stage applied by the writer.
 *
 * Bit packing: value i occupies bits [i*w, (i+1)*w) of a little-endian
 * bit stream; every packed array is followed by ST_PACK_SLACK zero bytes
 * so the decoder's fast path can load 8 bytes at any value's byte offset
 * without a bounds check per value.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "format_internal.h"

static int forced_encoding = -1;
void st_format_force_encoding(int enc) { forced_encoding = enc; }
int st_format_forced_encoding(void) { return forced_encoding; }

static inline unsigned bits_for(uint64_t x) { return x ? 64u - (unsigned)__builtin_clzll(x) : 0u; }

static inline size_t packed_bytes(size_t n, unsigned w)
{
    /* n * w fits: n < 2^32, w <= 64 */
    return (size_t)(((uint64_t)n * w + 7) / 8) + ST_PACK_SLACK;
}

static void pack(st_buf *out, const uint64_t *v, size_t n, unsigned w)
{
    size_t bytes = packed_bytes(n, w);
    size_t at = out->len;
    uint8_t zero[64] = {0};
    for (size_t left = bytes; left;) {
        size_t k = left < sizeof zero ? left : sizeof zero;
        st_buf_append(out, zero, k);
        left -= k;
    }
    if (!st_buf_ok(out) || w == 0) return;
    uint8_t *p = (uint8_t *)out->data + at;
    uint64_t bit = 0;
    for (size_t i = 0; i < n; i++, bit += w) {
        uint64_t x = w == 64 ? v[i] : v[i] & (((uint64_t)1 << w) - 1);
        size_t byte = (size_t)(bit >> 3);
        unsigned sh = (unsigned)(bit & 7);
        /* spread x over up to 9 bytes */
        p[byte] |= (uint8_t)(x << sh);
        uint64_t rest = sh ? x >> (8 - sh) : x >> 8;
        unsigned done = 8 - sh;
        for (size_t k = 1; done < w; k++, done += 8) {
            p[byte + k] |= (uint8_t)rest;
            rest >>= 8;
        }
    }
}

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
static void unpack(const uint8_t *p, size_t n, unsigned w, uint64_t base, uint64_t *out)
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

static bool is_var(st_type t) { return t == ST_TYPE_STR || t == ST_TYPE_BYTES; }

/* Values widened to u64 (two's complement for signed types). */
static void widen(const st_column *c, uint64_t *v)
{
    size_t n = c->n_rows;
    switch (c->type) {
    case ST_TYPE_BOOL:
        for (size_t i = 0; i < n; i++) v[i] = ((const uint8_t *)c->data)[i];
        break;
    case ST_TYPE_I32:
        for (size_t i = 0; i < n; i++) v[i] = (uint64_t)(int64_t)((const int32_t *)c->data)[i];
        break;
    default: memcpy(v, c->data, n * 8); break;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Signed order on u64 bit patterns (for int types). */
static int cmp_s64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define DICT_MAX 4096u

/* Distinct values of v[0..n) into d (sorted by `cmp`), or false when more
 * than DICT_MAX. Hash set over a small open-addressing table. */
static bool distinct(const uint64_t *v, size_t n, uint64_t *d, size_t *nd, int (*cmp)(const void *, const void *))
{
    enum { SLOTS = 8192 };
    static _Thread_local uint64_t keys[SLOTS];
    static _Thread_local uint8_t used[SLOTS];
    memset(used, 0, sizeof used);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        if (i && x == v[i - 1]) continue;
        uint64_t h = (x * 0x9E3779B97F4A7C15ull) >> 51;
        while (used[h] && keys[h] != x) h = (h + 1) & (SLOTS - 1);
        if (!used[h]) {
            if (k == DICT_MAX) return false;
            used[h] = 1;
            keys[h] = x;
            d[k++] = x;
        }
    }
    qsort(d, k, sizeof *d, cmp);
    *nd = k;
    return true;
}

static size_t dict_code(const uint64_t *d, size_t nd, uint64_t x, int sgn)
{
    size_t lo = 0, hi = nd;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        bool less = sgn ? (int64_t)d[mid] < (int64_t)x : d[mid] < x;
        if (less) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* True when the n >= 1 values of fixed column c are all equal (bitwise);
 * *first gets value 0 widened as widen() does. */
static bool all_equal(const st_column *c, uint64_t *first)
{
    size_t n = c->n_rows, width = st_type_width(c->type);
    const uint8_t *p = c->data;
    if (width == 4) {
        const int32_t *v = c->data;
        for (size_t i = 1; i < n; i++)
            if (v[i] != v[0]) return false;
    } else if (width == 8) {
        const uint64_t *v = c->data;
        for (size_t i = 1; i < n; i++)
            if (v[i] != v[0]) return false;
    } else {
        for (size_t i = 1; i < n; i++)
            if (p[i * width] != p[0]) return false;
    }
    switch (c->type) {
    case ST_TYPE_BOOL: *first = p[0]; break;
    case ST_TYPE_I32: *first = (uint64_t)(int64_t)((const int32_t *)c->data)[0]; break;
    default: memcpy(first, p, 8); break;
    }
    return true;
}

/* A constant fixed block (a bronze __class column, most often) is CONST,
 * the smallest candidate whenever PLAIN takes more than its 8 bytes: the
 * statistics of encode_fixed would only confirm it. True when written. */
static bool encode_const_fast(const st_column *c, int force, st_buf *out, int *enc)
{
    uint64_t v0;
    if (force >= 0 || c->n_rows * st_type_width(c->type) <= 8 || !all_equal(c, &v0)) return false;
    *enc = ST_ENC_CONST;
    st_buf_put_u64(out, v0);
    return true;
}

/* What the choice among the fixed-width encodings knows of a block. */
typedef struct fstats {
    int64_t mn, mx;       /* value range, signed (RLE run values and DICT values share it) */
    int64_t dmn, dmx;     /* range of consecutive differences (n > 1) */
    size_t runs, max_run; /* runs of equal values, the longest */
    size_t nd;            /* distinct values, when have_dict */
    bool have_dict;       /* at most DICT_MAX distinct values */
    unsigned w_for, w_delta, w_rl, w_code; /* bit widths: value - mn, difference - dmn, run length - 1, code */
} fstats;

/* Range, differences and runs of v[0..n) into st (not the dictionary). */
static void fixed_stats(const uint64_t *v, size_t n, fstats *st)
{
    /* branch-free: value range, then deltas and runs */
    int64_t mn = INT64_MAX, mx = INT64_MIN, dmn = INT64_MAX, dmx = INT64_MIN;
    size_t runs = n ? 1 : 0, max_run = 0, cur = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t x = (int64_t)v[i];
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
    }
    for (size_t i = 1; i < n; i++) {
        int64_t dl = (int64_t)(v[i] - v[i - 1]);
        dmn = dl < dmn ? dl : dmn;
        dmx = dl > dmx ? dl : dmx;
        bool same = v[i] == v[i - 1];
        runs += !same;
        max_run = !same && cur > max_run ? cur : max_run;
        cur = same ? cur + 1 : 1;
    }
    if (n == 0) mn = mx = 0;
    if (n < 2) dmn = dmx = 0;
    if (cur > max_run) max_run = cur;
    *st = (fstats){.mn = mn, .mx = mx, .dmn = dmn, .dmx = dmx, .runs = runs, .max_run = max_run};
}

/* The smallest encoding for a block of n values of `width` bytes with
 * statistics st (or `force`, when it applies); fills st's bit widths. */
static int choose_fixed(fstats *st, size_t n, size_t width, bool f64, int force)
{
    size_t size[6]; /* SIZE_MAX = not applicable */
    for (int e = 0; e < 6; e++) size[e] = SIZE_MAX;
    size[ST_ENC_PLAIN] = n * width;
    st->w_for = bits_for((uint64_t)st->mx - (uint64_t)st->mn);
    st->w_delta = n > 1 ? bits_for((uint64_t)st->dmx - (uint64_t)st->dmn) : 0;
    st->w_rl = bits_for(st->max_run ? st->max_run - 1 : 0);
    st->w_code = st->nd > 1 ? bits_for(st->nd - 1) : 0;
    if (!f64) {
        size[ST_ENC_FOR_BITPACK] = 9 + packed_bytes(n, st->w_for);
        if (n >= 1) size[ST_ENC_DELTA] = 17 + packed_bytes(n - 1, st->w_delta);
        size[ST_ENC_RLE] = 4 + 9 + packed_bytes(st->runs, st->w_for) + 1 + packed_bytes(st->runs, st->w_rl);
    }
    if (st->have_dict && n) {
        if (f64) size[ST_ENC_DICT] = 4 + st->nd * 8 + 1 + packed_bytes(n, st->w_code);
        else size[ST_ENC_DICT] = 4 + 9 + packed_bytes(st->nd, st->w_for) + 1 + packed_bytes(n, st->w_code);
    }
    if (n && st->runs == 1) size[ST_ENC_CONST] = 8;
    int best = ST_ENC_PLAIN;
    for (int e = 0; e < 6; e++)
        if (size[e] < size[best]) best = e;
    if (force >= 0 && force < 6 && size[force] != SIZE_MAX) best = force;
    return best;
}

/* RLE: run count, the run values (FOR-packed from mn), the run lengths - 1.
 * tmp holds st->runs values. */
static void put_rle(st_buf *out, const uint64_t *v, size_t n, const fstats *st, uint64_t *tmp)
{
    st_buf_put_u32(out, (uint32_t)st->runs);
    st_buf_put_u64(out, (uint64_t)st->mn);
    st_buf_put_u8(out, (uint8_t)st->w_for);
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || v[i] != v[i - 1]) tmp[r++] = v[i] - (uint64_t)st->mn;
    pack(out, tmp, st->runs, st->w_for);
    st_buf_put_u8(out, (uint8_t)st->w_rl);
    r = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len++;
        if (i + 1 == n || v[i + 1] != v[i]) {
            tmp[r++] = len - 1;
            len = 0;
        }
    }
    pack(out, tmp, st->runs, st->w_rl);
}

/* DICT: the st->nd sorted values d (raw for float64, else FOR-packed),
 * then every row's code. tmp holds n (and nd) values. */
static void put_fixed_dict(st_buf *out, const uint64_t *v, size_t n, const uint64_t *d, const fstats *st, bool f64,
                           uint64_t *tmp)
{
    size_t nd = st->nd;
    st_buf_put_u32(out, (uint32_t)nd);
    if (f64) {
        for (size_t k = 0; k < nd; k++) st_buf_put_u64(out, d[k]);
    } else {
        uint64_t base = d[0];
        st_buf_put_u64(out, base);
        st_buf_put_u8(out, (uint8_t)st->w_for);
        for (size_t k = 0; k < nd; k++) tmp[k] = d[k] - base;
        pack(out, tmp, nd, st->w_for);
    }
    st_buf_put_u8(out, (uint8_t)st->w_code);
    for (size_t i = 0; i < n; i++) tmp[i] = dict_code(d, nd, v[i], !f64);
    pack(out, tmp, n, st->w_code);
}

static st_status encode_fixed(const st_column *c, int force, st_buf *out, int *enc)
{
    size_t n = c->n_rows;
    size_t width = st_type_width(c->type);
    bool f64 = c->type == ST_TYPE_F64;
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
    uint64_t *tmp = calloc(n ? n : 1, sizeof *tmp);
    uint64_t *d = malloc(DICT_MAX * sizeof *d);
    if (!v || !tmp || !d) {
        free(v);
        free(tmp);
        free(d);
        return ST_ERR_NOMEM;
    }
    widen(c, v);
    fstats st;
    fixed_stats(v, n, &st);
    st.have_dict = distinct(v, n, d, &st.nd, f64 ? cmp_u64 : cmp_s64);
    int best = choose_fixed(&st, n, width, f64, force);
    *enc = best;
    switch (best) {
    case ST_ENC_PLAIN: st_buf_append(out, c->data, n * width); break;
    case ST_ENC_FOR_BITPACK:
        st_buf_put_u64(out, (uint64_t)st.mn);
        st_buf_put_u8(out, (uint8_t)st.w_for);
        for (size_t i = 0; i < n; i++) tmp[i] = v[i] - (uint64_t)st.mn;
        pack(out, tmp, n, st.w_for);
        break;
    case ST_ENC_DELTA:
        st_buf_put_u64(out, v[0]);
        st_buf_put_u64(out, (uint64_t)st.dmn);
        st_buf_put_u8(out, (uint8_t)st.w_delta);
        for (size_t i = 1; i < n; i++) tmp[i - 1] = (v[i] - v[i - 1]) - (uint64_t)st.dmn;
        pack(out, tmp, n - 1, st.w_delta);
        break;
    case ST_ENC_RLE: put_rle(out, v, n, &st, tmp); break;
    case ST_ENC_DICT: put_fixed_dict(out, v, n, d, &st, f64, tmp); break;
    case ST_ENC_CONST: st_buf_put_u64(out, v[0]); break;
    }
    free(v);
    free(tmp);
    free(d);
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

/* ---- strings ---- */

typedef struct sslot {
    uint64_t h;
    uint32_t idx; /* row of first occurrence + 1; 0 = empty */
} sslot;

static st_status encode_var(const st_column *c, int force, st_buf *out, int *enc)
{
    size_t n = c->n_rows;
    const uint64_t *off = c->offsets;
    uint64_t lmin = 0, lmax = 0;
    bool all_equal = n > 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = off[i + 1] - off[i];
        if (i == 0 || l < lmin) lmin = l;
        if (i == 0 || l > lmax) lmax = l;
        if (i && all_equal &&
            (l != off[1] - off[0] || memcmp(c->bytes + off[i], c->bytes + off[0], (size_t)l) != 0))
            all_equal = false;
    }
    /* dictionary by first occurrence */
    enum { SLOTS = 8192 };
    sslot *slots = calloc(SLOTS, sizeof *slots);
    uint32_t *first = malloc(DICT_MAX * sizeof *first);
    uint64_t *codes = malloc((n ? n : 1) * sizeof *codes);
    uint64_t *tmp = calloc((n > DICT_MAX ? n : DICT_MAX) + 1, sizeof *tmp);
    if (!slots || !first || !codes || !tmp) {
        free(slots);
        free(first);
        free(codes);
        free(tmp);
        return ST_ERR_NOMEM;
    }
    size_t nd = 0;
    uint64_t dict_bytes = 0;
    bool have_dict = true;
    for (size_t i = 0; i < n && have_dict; i++) {
        const char *s = c->bytes + off[i];
        size_t l = (size_t)(off[i + 1] - off[i]);
        uint64_t h = st_hash64(7, s, l);
        size_t slot = (size_t)(h >> 51);
        for (;;) {
            if (slots[slot].idx == 0) {
                if (nd == DICT_MAX) {
                    have_dict = false;
                    break;
                }
                slots[slot].h = h;
                slots[slot].idx = (uint32_t)i + 1;
                first[nd] = (uint32_t)i;
                codes[i] = nd++;
                dict_bytes += l;
                break;
            }
            size_t j = slots[slot].idx - 1;
            if (slots[slot].h == h && off[j + 1] - off[j] == l && !memcmp(c->bytes + off[j], s, l)) {
                codes[i] = slots[slot].idx == 0 ? 0 : codes[j];
                break;
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
    }
    size_t size[6];
    for (int e = 0; e < 6; e++) size[e] = SIZE_MAX;
    unsigned w_len = bits_for(lmax - lmin);
    size[ST_ENC_PLAIN] = 9 + packed_bytes(n, w_len) + (size_t)(off[n] - off[0]);
    uint64_t dlmin = 0, dlmax = 0;
    if (have_dict && n) {
        for (size_t k = 0; k < nd; k++) {
            uint64_t l = off[first[k] + 1] - off[first[k]];
            if (k == 0 || l < dlmin) dlmin = l;
            if (k == 0 || l > dlmax) dlmax = l;
        }
        size[ST_ENC_DICT] = 4 + 9 + packed_bytes(nd, bits_for(dlmax - dlmin)) + (size_t)dict_bytes + 1 +
                            packed_bytes(n, nd > 1 ? bits_for(nd - 1) : 0);
    }
    if (all_equal) size[ST_ENC_CONST] = 4 + (size_t)(off[1] - off[0]);
    int best = ST_ENC_PLAIN;
    for (int e = 0; e < 6; e++)
        if (size[e] < size[best]) best = e;
    if (force >= 0 && force < 6 && size[force] != SIZE_MAX) best = force;
    *enc = best;
    switch (best) {
    case ST_ENC_PLAIN:
        st_buf_put_u64(out, lmin);
        st_buf_put_u8(out, (uint8_t)w_len);
        for (size_t i = 0; i < n; i++) tmp[i] = (off[i + 1] - off[i]) - lmin;
        pack(out, tmp, n, w_len);
        st_buf_append(out, c->bytes + off[0], (size_t)(off[n] - off[0]));
        break;
    case ST_ENC_DICT: {
        st_buf_put_u32(out, (uint32_t)nd);
        st_buf_put_u64(out, dlmin);
        unsigned wl = bits_for(dlmax - dlmin);
        st_buf_put_u8(out, (uint8_t)wl);
        for (size_t k = 0; k < nd; k++) tmp[k] = (off[first[k] + 1] - off[first[k]]) - dlmin;
        pack(out, tmp, nd, wl);
        for (size_t k = 0; k < nd; k++)
            st_buf_append(out, c->bytes + off[first[k]], (size_t)(off[first[k] + 1] - off[first[k]]));
        unsigned wc = nd > 1 ? bits_for(nd - 1) : 0;
        st_buf_put_u8(out, (uint8_t)wc);
        pack(out, codes, n, wc);
        break;
    }
    case ST_ENC_CONST:
        st_buf_put_u32(out, (uint32_t)(off[1] - off[0]));
        st_buf_append(out, c->bytes + off[0], (size_t)(off[1] - off[0]));
        break;
    }
    free(slots);
    free(first);
    free(codes);
    free(tmp);
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

st_status st_codec_encode(const st_column *c, int force, st_buf *out, int *enc)
{
    if (force < 0) force = forced_encoding;
    if (is_var(c->type)) return encode_var(c, force, out, enc);
    return encode_const_fast(c, force, out, enc) ? ST_OK : encode_fixed(c, force, out, enc);
}

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

static st_status decode_fixed(st_type t, int enc, rd *r, size_t n, st_column *out, const char **why)
{
    size_t width = st_type_width(t);
    size_t at = out->n_rows;
    ST_TRY(st_column_reserve(out, at + n, 0));
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
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
        if (!get4(r, &cnt) || !get8(r, &a) || !get1(r, &w) || cnt > n || !get_packed(r, cnt, w, &p)) BAD("run values truncated");
        const uint8_t *pl;
        if (!get1(r, &w2) || !get_packed(r, cnt, w2, &pl)) BAD("run lengths truncated");
        uint64_t *rv = malloc(((size_t)cnt * 2 + 1) * sizeof *rv);
        if (!rv) {
            s = ST_ERR_NOMEM;
            goto done;
        }
        unpack(p, cnt, w, a, rv);
        unpack(pl, cnt, w2, 1, rv + cnt);
        size_t k = 0;
        for (size_t q = 0; q < cnt; q++) {
            uint64_t len = rv[cnt + q];
            if (len == 0 || len > n - k) {
                free(rv);
                BAD("run lengths do not add up to the row count");
            }
            for (uint64_t z = 0; z < len; z++) v[k++] = rv[q];
        }
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
    store_fixed(out, at, v, n);
    out->n_rows = at + n;
done:
    free(v);
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
        if ((s = st_column_reserve(out, at + n, out->n_bytes + (size_t)total)) != ST_OK) goto done;
        for (size_t i = 0; i < n; i++)
            if ((s = st_column_push_str(out, (const char *)bytes + doff[len[i]], (size_t)dl[len[i]])) != ST_OK)
                goto done;
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

/* Strings as (dictionary, codes): DICT blocks give their dictionary and
 * codes without one string per row; PLAIN gives every row's value with
 * codes 0..n-1; CONST one value with codes 0. Same checks as decode_var. */
static st_status decode_var_dict(int enc, rd *r, size_t n, st_column *dict, uint32_t *codes, const char **why)
{
    st_status s = ST_OK;
    const uint8_t *p, *bytes;
    uint32_t cnt;
    uint64_t *tmp = NULL;
    switch (enc) {
    case ST_ENC_DICT: {
        uint64_t dl[DICT_MAX], doff[DICT_MAX + 1];
        unsigned wc;
        const char *bad = str_dict_codes(r, n, &cnt, dl, doff, &bytes, &wc, &p);
        if (bad) BAD(bad);
        if (!(tmp = malloc((n ? n : 1) * sizeof *tmp))) {
            s = ST_ERR_NOMEM;
            goto done;
        }
        unpack(p, n, wc, 0, tmp);
        for (size_t i = 0; i < n; i++) {
            if (tmp[i] >= cnt) BAD("dictionary code out of range");
            codes[i] = (uint32_t)tmp[i];
        }
        if ((s = st_column_reserve(dict, cnt, (size_t)doff[cnt])) != ST_OK) goto done;
        for (size_t k = 0; k < cnt; k++)
            if ((s = st_column_push_str(dict, (const char *)bytes + doff[k], (size_t)dl[k])) != ST_OK) goto done;
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
    free(tmp);
    return s;
}
#undef BAD

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

/* ---- a fixed-width block given as runs ---- */

st_status st_codec_encode_runs(st_type t, const uint64_t *val, const uint32_t *len, size_t n_runs, st_buf *out,
                               int *enc, bool *done)
{
    *done = false;
    size_t width = st_type_width(t);
    if (forced_encoding >= 0 || n_runs == 0 || is_var(t) || t == ST_TYPE_F64 || width == 0) return ST_OK;
    /* the statistics fixed_stats() and distinct() would take from the
     * expanded values: the differences are 0 inside a run (when one is
     * longer than a row) and the steps between run values */
    size_t n = 0, max_run = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN, dmn = INT64_MAX, dmx = INT64_MIN;
    for (size_t r = 0; r < n_runs; r++) {
        if (len[r] == 0 || (r && val[r] == val[r - 1])) return ST_OK; /* not runs as the encoder counts them */
        int64_t x = (int64_t)val[r];
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        if (r) {
            int64_t dl = (int64_t)(val[r] - val[r - 1]);
            dmn = dl < dmn ? dl : dmn;
            dmx = dl > dmx ? dl : dmx;
        }
        if (len[r] > 1) {
            dmn = dmn < 0 ? dmn : 0;
            dmx = dmx > 0 ? dmx : 0;
        }
        max_run = len[r] > max_run ? len[r] : max_run;
        n += len[r];
    }
    if (n < 2) dmn = dmx = 0;
    fstats st = {.mn = mn, .mx = mx, .dmn = dmn, .dmx = dmx, .runs = n_runs, .max_run = max_run};
    uint64_t *tmp = malloc((n_runs > DICT_MAX ? n_runs : DICT_MAX) * sizeof *tmp);
    if (!tmp) return ST_ERR_NOMEM;
    st.have_dict = distinct(val, n_runs, tmp, &st.nd, cmp_s64);
    int best = choose_fixed(&st, n, width, false, -1);
    if (best == ST_ENC_CONST && n * width > 8) {
        st_buf_put_u64(out, val[0]);
        *done = true;
    } else if (best == ST_ENC_RLE) {
        st_buf_put_u32(out, (uint32_t)st.runs);
        st_buf_put_u64(out, (uint64_t)st.mn);
        st_buf_put_u8(out, (uint8_t)st.w_for);
        for (size_t r = 0; r < n_runs; r++) tmp[r] = val[r] - (uint64_t)st.mn;
        pack(out, tmp, n_runs, st.w_for);
        st_buf_put_u8(out, (uint8_t)st.w_rl);
        for (size_t r = 0; r < n_runs; r++) tmp[r] = len[r] - 1;
        pack(out, tmp, n_runs, st.w_rl);
        *done = true;
    }
    if (*done) *enc = best;
    free(tmp);
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}
