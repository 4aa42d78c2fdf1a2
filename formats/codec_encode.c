/*
 * codec_encode.c: the block encoder: the choice of encoding (FORMAT.md,
 * "Encodings") and the bytes of the chosen one. codec.c decodes.
 *
 * The choice is specified as "every applicable candidate's exact size,
 * the smallest wins, ties go to the lower encoding id" (a forced encoding
 * wins when it applies). This file computes that answer without building
 * the candidates, and mostly without computing every size exactly:
 *
 *   - one statistics pass (codec_stats*.c, SIMD where the CPU has it)
 *     gives the value range, the range of differences and the run count,
 *     hence PLAIN, FOR_BITPACK, DELTA and CONST exactly and a lower bound
 *     of RLE (the longest run is at least the average one); the runs,
 *     whose longest makes RLE exact, are listed only when that bound wins,
 *     and RLE then packs that list (when the runs are short, a dictionary
 *     is counted first: one smaller than the bound wins without them);
 *   - DICT's size grows with the number of distinct values, so the best
 *     of the others bounds how many distinct values DICT may have and
 *     still win (dict_limit); counting them stops there. A small value
 *     range (under 2^16) is counted in a byte map, whose present offsets
 *     are the sorted dictionary and whose rank table codes every row with
 *     one load; wider ranges go through an open-addressing hash table sized
 *     to the block, then only the distinct values are sorted and each row
 *     is coded by one hash probe.
 *
 * Strings: one pass for lengths and "all equal"; the dictionary (first
 * occurrence order) through a hash of the bytes, stopped as soon as its
 * size can no longer beat PLAIN. Blocks of strings of at most 7 bytes
 * (codes, ids) use each string's bytes and length as a 64-bit key in the
 * integer hash table instead.
 *
 * Bit packing (FORMAT.md): value i occupies bits [i*w, (i+1)*w) of a
 * little-endian bit stream, followed by ST_PACK_SLACK zero bytes. Every
 * value handed to a packer is below 2^w (offsets from the minimum, codes,
 * run lengths - 1), so no masking is needed. Eight values of w bits are
 * exactly w bytes; with w a constant the group's shifts are immediates.
 *
 * Scratch memory (values widened to 64 bits, codes, tables) lives in an
 * st_codec_scratch that the writer keeps across blocks, so encoding a
 * block allocates nothing once the scratch has grown to the chunk size.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "format_internal.h"
#include "strata/cpu.h"

static int forced_encoding = -1;
void st_format_force_encoding(int enc) { forced_encoding = enc; }
int st_format_forced_encoding(void) { return forced_encoding; }

#define HASH_SLOTS_MAX (2 * ST_DICT_MAX) /* load at most 1/2 */
#define DIRECT_RANGE (1u << 16)  /* value ranges counted in a bitmap */
#define N_ENC 6

typedef struct sslot {
    uint32_t tag; /* high 32 bits of the string's hash */
    uint32_t idx; /* row of first occurrence + 1; 0 = empty */
} sslot;

struct st_codec_scratch {
    uint64_t *v;      /* values widened to 64 bits: cap_rows */
    uint64_t *tmp;    /* packing input (codes, run values and lengths): 2 * cap_rows + ST_DICT_MAX */
    size_t cap_rows;
    uint64_t keys[HASH_SLOTS_MAX];       /* hash table: key of a used slot */
    uint16_t code[HASH_SLOTS_MAX];       /* 0 = empty, else (insertion index, then rank) + 1 */
    uint64_t dict[ST_DICT_MAX + 1];      /* the distinct values */
    uint8_t seen[DIRECT_RANGE + 8];      /* direct map: 1 = offset from the minimum present */
    uint16_t rank[DIRECT_RANGE];         /* direct map: code of a present offset */
    sslot slots[HASH_SLOTS_MAX];         /* strings */
    uint32_t first[ST_DICT_MAX];         /* strings: first row of each dictionary value */
    uint32_t *local;  /* coded strings: a dictionary code's block code + 1, 0 = absent; all 0 between calls */
    size_t cap_local;
};

/* malloc, not calloc: every table is cleared (or written) where a block
 * uses it, only as far as it uses it, so a new scratch's ~450 KiB cost
 * no page until then; calloc cleared them all at once (a writer and each
 * encoding lane has one: ~250 of a 500K gold step's page faults). */
st_codec_scratch *st_codec_scratch_new(void)
{
    st_codec_scratch *s = malloc(sizeof *s);
    if (s) {
        s->v = s->tmp = NULL;
        s->cap_rows = 0;
        s->local = NULL;
        s->cap_local = 0;
    }
    return s;
}

void st_codec_scratch_free(st_codec_scratch *s)
{
    if (!s) return;
    free(s->v);
    free(s->tmp);
    free(s->local);
    free(s);
}

/* Room for blocks of n rows. False when out of memory. */
static bool scratch_reserve(st_codec_scratch *s, size_t n)
{
    if (n <= s->cap_rows && s->v) return true;
    size_t cap = n < 1024 ? 1024 : n;
    uint64_t *v = malloc(cap * sizeof *v), *t = malloc((2 * cap + ST_DICT_MAX) * sizeof *t);
    if (!v || !t) {
        free(v);
        free(t);
        return false;
    }
    free(s->v);
    free(s->tmp);
    s->v = v;
    s->tmp = t;
    s->cap_rows = cap;
    return true;
}

/* ---- bit packing ---- */

/* Appends `bytes` zero bytes to out; their start, or NULL when out of
 * memory (then out is marked failed). */
static uint8_t *append_zeros(st_buf *out, size_t bytes)
{
    static const uint8_t zero[4096];
    size_t at = out->len;
    for (size_t left = bytes; left;) {
        size_t k = left < sizeof zero ? left : sizeof zero;
        st_buf_append(out, zero, k);
        left -= k;
    }
    return st_buf_ok(out) ? (uint8_t *)out->data + at : NULL;
}

/* Appends x (< 2^w) at bit `fill` of the accumulator; a full 64 bits go
 * to *p. */
static inline __attribute__((always_inline)) void put_bits(uint8_t **p, uint64_t *acc, unsigned *fill, uint64_t x,
                                                           unsigned w)
{
    *acc |= x << *fill;
    if (*fill + w >= 64) {
        memcpy(*p, acc, 8);
        *p += 8;
        *acc = *fill ? x >> (64 - *fill) : 0;
        *fill = *fill + w - 64;
    } else {
        *fill += w;
    }
}

/* Packs n values of w bits (1..64) into p (zeroed, st_packed_bytes(n, w)
 * long): value i is v[i] - base, or with `delta` v[i+1] - v[i] - base. */
static inline __attribute__((always_inline)) void pack_w(uint8_t *p, const uint64_t *v, size_t n, unsigned w,
                                                         uint64_t base, int delta)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t acc = 0;
        unsigned fill = 0;
#pragma GCC unroll 8
        for (unsigned j = 0; j < 8; j++)
            put_bits(&p, &acc, &fill, (delta ? v[i + j + 1] - v[i + j] : v[i + j]) - base, w);
        memcpy(p, &acc, fill / 8); /* 8 values are w bytes: fill is a whole number of bytes */
        p += fill / 8;
    }
    uint64_t acc = 0;
    unsigned fill = 0;
    for (; i < n; i++) put_bits(&p, &acc, &fill, (delta ? v[i + 1] - v[i] : v[i]) - base, w);
    memcpy(p, &acc, (fill + 7) / 8);
}

#define PACK_CASES(D)                                                                                             \
    PK(1, D) PK(2, D) PK(3, D) PK(4, D) PK(5, D) PK(6, D) PK(7, D) PK(8, D) PK(9, D) PK(10, D) PK(11, D) PK(12, D)  \
    PK(13, D) PK(14, D) PK(15, D) PK(16, D) PK(17, D) PK(18, D) PK(19, D) PK(20, D) PK(21, D) PK(22, D) PK(23, D) \
    PK(24, D) PK(25, D) PK(26, D) PK(27, D) PK(28, D) PK(29, D) PK(30, D) PK(31, D) PK(32, D)
#define PK(W, D) \
    case W: pack_w(p, v, n, W, base, D); return;

/* pack_w with w a constant for the widths of ids, months, quantities and
 * codes (1..32); wider values take the same loop with w a variable. */
static void pack_for(uint8_t *p, const uint64_t *v, size_t n, unsigned w, uint64_t base)
{
    switch (w) {
    case 0: return;
    PACK_CASES(0)
    default: pack_w(p, v, n, w, base, 0); return;
    }
}

static void pack_delta(uint8_t *p, const uint64_t *v, size_t n, unsigned w, uint64_t base)
{
    switch (w) {
    case 0: return;
    PACK_CASES(1)
    default: pack_w(p, v, n, w, base, 1); return;
    }
}
#undef PK

/* Appends the packed array of v[i] - base (i < n), w bits each. */
static void put_packed(st_buf *out, const uint64_t *v, size_t n, unsigned w, uint64_t base)
{
    uint8_t *p = append_zeros(out, st_packed_bytes(n, w));
    if (p) pack_for(p, v, n, w, base);
}

/* ---- fixed-width blocks: statistics and the choice ---- */

/* What the choice among the fixed-width encodings knows of a block. */
typedef struct fstats {
    st_enc_stats s;
    size_t n, width;
    bool f64;
    size_t max_run;    /* longest run, when the runs are in the scratch's tmp (have_runs) */
    bool have_runs;
    size_t nd;         /* distinct values, when dict_ok */
    bool dict_ok;      /* the dictionary below is complete (nd <= ST_DICT_MAX) */
    bool direct;       /* the dictionary is the bitmap's (rank[] codes rows), else the hash table's */
    unsigned w_for, w_delta;
} fstats;

static size_t dict_size(const fstats *f, size_t nd)
{
    unsigned wc = nd > 1 ? st_bits_for(nd - 1) : 0;
    if (f->f64) return 4 + nd * 8 + 1 + st_packed_bytes(f->n, wc);
    return 4 + 9 + st_packed_bytes(nd, f->w_for) + 1 + st_packed_bytes(f->n, wc);
}

static size_t rle_size(const fstats *f, unsigned w_rl)
{
    return 4 + 9 + st_packed_bytes(f->s.runs, f->w_for) + 1 + st_packed_bytes(f->s.runs, w_rl);
}

/* The largest nd <= ST_DICT_MAX with dict_size(nd) < beat (0: none);
 * dict_size grows with nd, so a binary search finds it. */
static size_t dict_limit(const fstats *f, size_t beat)
{
    size_t lo = 0, hi = ST_DICT_MAX;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (dict_size(f, mid) < beat) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* The runs of v[0..n) (n >= 1, `runs` of them): values into tmp[0..runs),
 * lengths - 1 into tmp[runs..2 runs); returns the longest. */
static size_t extract_runs(const uint64_t *v, size_t n, size_t runs, uint64_t *tmp)
{
    return st_enc_runs_pick(st_cpu_level())(v, n, tmp, tmp + runs);
}

static inline uint64_t hash_u64(uint64_t x, unsigned shift) { return (x * 0x9E3779B97F4A7C15ull) >> shift; }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_s64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Slot of x in the hash table of 2^(64 - shift) slots: its own, or the
 * empty one where it would go. */
static inline size_t probe(const st_codec_scratch *s, uint64_t x, unsigned shift)
{
    size_t mask = ((size_t)1 << (64 - shift)) - 1, h = (size_t)hash_u64(x, shift);
    while (s->code[h] && s->keys[h] != x) h = (h + 1) & mask;
    return h;
}

/* log2 of the hash table's slots for a block of n rows: at least twice
 * the distinct values it may hold (at most ST_DICT_MAX: counting stops
 * before storing one more). */
static unsigned hash_bits(size_t n)
{
    size_t want = 2 * (n < ST_DICT_MAX ? n : ST_DICT_MAX);
    unsigned b = 4;
    while (((size_t)1 << b) < want) b++;
    return b;
}

/* Counts the distinct values of v[0..n) in a byte map over the value
 * range (below DIRECT_RANGE, not float64), stopping past `limit`; when
 * complete, the present offsets in order are the sorted dictionary and
 * rank[] codes every row. Bytes rather than bits: a row's store does not
 * wait for the previous row's (the same word, in a small range). */
static void distinct_direct(st_codec_scratch *s, const uint64_t *v, fstats *f, size_t limit)
{
    uint64_t mn = (uint64_t)f->s.mn;
    size_t span = (size_t)((uint64_t)f->s.mx - mn) + 1, nd = 0;
    memset(s->seen, 0, (span + 7) & ~(size_t)7);
    f->direct = true;
    f->dict_ok = false;
    for (size_t i = 0; i < f->n;) {
        size_t end = f->n - i > 512 ? i + 512 : f->n;
        for (; i < end; i++) {
            size_t o = (size_t)(v[i] - mn);
            nd += s->seen[o] ^ 1u;
            s->seen[o] = 1;
        }
        if (nd > limit) {
            f->nd = nd;
            return;
        }
    }
    size_t code = 0;
    for (size_t o = 0; o < span; o += 8) {
        uint64_t w;
        memcpy(&w, s->seen + o, 8);
        for (; w; w &= w - 1) {
            size_t k = o + (size_t)__builtin_ctzll(w) / 8;
            s->dict[code] = mn + k;
            s->rank[k] = (uint16_t)code++;
        }
    }
    f->nd = nd;
    f->dict_ok = true;
}

/* Counts the distinct values of v[0..n) in the hash table, stopping past
 * `limit`; when complete, sorts them (signed order, or bit patterns for
 * float64) and stores each one's rank + 1 in its slot. */
static void distinct_hash(st_codec_scratch *s, const uint64_t *v, fstats *f, size_t limit, unsigned shift)
{
    size_t slots = (size_t)1 << (64 - shift), nd = 0;
    memset(s->code, 0, slots * sizeof *s->code);
    f->direct = false;
    f->dict_ok = false;
    for (size_t i = 0; i < f->n; i++) {
        uint64_t x = v[i];
        if (i && x == v[i - 1]) continue;
        size_t h = probe(s, x, shift);
        if (s->code[h]) continue;
        if (nd == limit) {
            f->nd = nd + 1;
            return;
        }
        s->keys[h] = x;
        s->code[h] = (uint16_t)(nd + 1);
        s->dict[nd++] = x;
    }
    qsort(s->dict, nd, sizeof *s->dict, f->f64 ? cmp_u64 : cmp_s64);
    for (size_t k = 0; k < nd; k++) s->code[probe(s, s->dict[k], shift)] = (uint16_t)(k + 1);
    f->nd = nd;
    f->dict_ok = true;
}

/* The dictionary of the block if it has at most `limit` distinct values
 * (f->dict_ok), by the bitmap or the hash table. */
static void distinct(st_codec_scratch *s, const uint64_t *v, fstats *f, size_t limit)
{
    uint64_t range = (uint64_t)f->s.mx - (uint64_t)f->s.mn;
    if (!f->f64 && range < DIRECT_RANGE && (range >> 3) <= f->n) distinct_direct(s, v, f, limit);
    else distinct_hash(s, v, f, limit, 64 - hash_bits(f->n));
}

/* Is encoding e possible for this block (FORMAT.md)? DICT: once the
 * dictionary is known. */
static bool applies(const fstats *f, int e)
{
    switch (e) {
    case ST_ENC_PLAIN: return true;
    case ST_ENC_FOR_BITPACK:
    case ST_ENC_RLE: return !f->f64;
    case ST_ENC_DELTA: return !f->f64 && f->n >= 1;
    case ST_ENC_DICT: return f->n >= 1 && f->dict_ok;
    case ST_ENC_CONST: return f->n >= 1 && f->s.runs == 1;
    default: return false;
    }
}

/* The encoding the size rule picks (see the top of this file). */
/* Sizes of PLAIN, FOR_BITPACK and DELTA (SIZE_MAX for the others and
 * what does not apply); returns the smallest of the three. */
static int smallest_packed(const fstats *f, size_t size[N_ENC])
{
    for (int e = 0; e < N_ENC; e++) size[e] = SIZE_MAX;
    size[ST_ENC_PLAIN] = f->n * f->width;
    if (!f->f64) {
        size[ST_ENC_FOR_BITPACK] = 9 + st_packed_bytes(f->n, f->w_for);
        if (f->n >= 1) size[ST_ENC_DELTA] = 17 + st_packed_bytes(f->n - 1, f->w_delta);
    }
    int best = ST_ENC_PLAIN;
    for (int e = ST_ENC_FOR_BITPACK; e <= ST_ENC_DELTA; e++)
        if (size[e] < size[best]) best = e;
    return best;
}

static int choose(st_codec_scratch *s, const uint64_t *v, fstats *f)
{
    size_t size[N_ENC];
    int best = smallest_packed(f, size);
    /* RLE beats those only if it does with the shortest run lengths
     * possible: the longest run is at least the average one */
    size_t avg_run = f->s.runs ? (f->n + f->s.runs - 1) / f->s.runs : 0;
    size_t rle_low = !f->f64 && f->n ? rle_size(f, st_bits_for(avg_run ? avg_run - 1 : 0)) : SIZE_MAX;
    bool counted = false; /* the dictionary counted against the packed encodings' best */
    if (rle_low < size[best] && f->s.runs > 1 && rle_low > dict_size(f, 2)) {
        /* short runs (RLE's lower bound above the smallest dictionary's
         * size): a dictionary below that bound wins without the runs being
         * listed; one that does not leaves its count for below. Either
         * order gives the same choice; this one is cheaper when rows
         * repeat few values in short runs. */
        size_t limit = dict_limit(f, size[best]);
        if (limit >= 2) {
            distinct(s, v, f, limit);
            counted = true;
            if (f->dict_ok && dict_size(f, f->nd) < rle_low) return ST_ENC_DICT;
        }
    }
    if (rle_low < size[best]) {
        f->max_run = extract_runs(v, f->n, f->s.runs, s->tmp);
        f->have_runs = true;
        size[ST_ENC_RLE] = rle_size(f, st_bits_for(f->max_run ? f->max_run - 1 : 0));
        if (size[ST_ENC_RLE] < size[best]) best = ST_ENC_RLE;
    }
    /* one run: CONST's 8 bytes beat any dictionary (at least 30 bytes) */
    if (f->n >= 1 && f->s.runs == 1) return size[best] > 8 ? ST_ENC_CONST : best;
    /* DICT wins when smaller than the best (ties to the lower id): a count
     * stopped past the packed best's limit is past this smaller one too */
    if (counted) return f->dict_ok && dict_size(f, f->nd) < size[best] ? ST_ENC_DICT : best;
    size_t limit = f->n ? dict_limit(f, size[best]) : 0;
    if (limit < 2) return best; /* more than one run: at least two values */
    distinct(s, v, f, limit);
    return f->dict_ok ? ST_ENC_DICT : best;
}

/* ---- fixed-width blocks: the bytes ---- */

static void put_for(st_buf *out, const uint64_t *v, const fstats *f)
{
    st_buf_put_u64(out, (uint64_t)f->s.mn);
    st_buf_put_u8(out, (uint8_t)f->w_for);
    put_packed(out, v, f->n, f->w_for, (uint64_t)f->s.mn);
}

static void put_delta(st_buf *out, const uint64_t *v, const fstats *f)
{
    st_buf_put_u64(out, v[0]);
    st_buf_put_u64(out, (uint64_t)f->s.dmn);
    st_buf_put_u8(out, (uint8_t)f->w_delta);
    uint8_t *p = append_zeros(out, st_packed_bytes(f->n - 1, f->w_delta));
    if (p) pack_delta(p, v, f->n - 1, f->w_delta, (uint64_t)f->s.dmn);
}

/* RLE: run count, the run values (FOR-packed from mn), the run lengths - 1
 * (extract_runs has put both in tmp). */
static void put_rle(st_buf *out, const fstats *f, const uint64_t *tmp)
{
    size_t runs = f->s.runs;
    unsigned w_rl = st_bits_for(f->max_run ? f->max_run - 1 : 0);
    st_buf_put_u32(out, (uint32_t)runs);
    st_buf_put_u64(out, (uint64_t)f->s.mn);
    st_buf_put_u8(out, (uint8_t)f->w_for);
    put_packed(out, tmp, runs, f->w_for, (uint64_t)f->s.mn);
    st_buf_put_u8(out, (uint8_t)w_rl);
    put_packed(out, tmp + runs, runs, w_rl, 0);
}

/* DICT: the nd sorted values (raw for float64, else FOR-packed from the
 * smallest), then every row's code. */
static void put_dict(st_buf *out, const st_codec_scratch *s, const uint64_t *v, const fstats *f, uint64_t *tmp)
{
    size_t nd = f->nd, n = f->n;
    st_buf_put_u32(out, (uint32_t)nd);
    if (f->f64) {
        for (size_t k = 0; k < nd; k++) st_buf_put_u64(out, s->dict[k]);
    } else {
        st_buf_put_u64(out, s->dict[0]);
        st_buf_put_u8(out, (uint8_t)f->w_for);
        put_packed(out, s->dict, nd, f->w_for, s->dict[0]);
    }
    if (f->direct) {
        uint64_t mn = (uint64_t)f->s.mn;
        for (size_t i = 0; i < n; i++) tmp[i] = s->rank[v[i] - mn];
    } else {
        unsigned shift = 64 - hash_bits(n);
        for (size_t i = 0; i < n; i++) tmp[i] = i && v[i] == v[i - 1] ? tmp[i - 1] : (uint64_t)s->code[probe(s, v[i], shift)] - 1;
    }
    unsigned wc = nd > 1 ? st_bits_for(nd - 1) : 0;
    st_buf_put_u8(out, (uint8_t)wc);
    put_packed(out, tmp, n, wc, 0);
}

/* Value i of fixed column c widened to 64 bits (sign-extended int32). */
static uint64_t widened_at(const st_column *c, size_t i)
{
    switch (c->type) {
    case ST_TYPE_BOOL: return ((const uint8_t *)c->data)[i];
    case ST_TYPE_I32: return (uint64_t)(int64_t)((const int32_t *)c->data)[i];
    default: return ((const uint64_t *)c->data)[i];
    }
}

/* The values of c widened to 64 bits: c's own data for int64 and
 * float64, else widened into the scratch. */
static const uint64_t *widened(const st_column *c, st_codec_scratch *s)
{
    size_t n = c->n_rows;
    if (c->type == ST_TYPE_I64 || c->type == ST_TYPE_F64) return c->data;
    if (c->type == ST_TYPE_I32)
        for (size_t i = 0; i < n; i++) s->v[i] = (uint64_t)(int64_t)((const int32_t *)c->data)[i];
    else
        for (size_t i = 0; i < n; i++) s->v[i] = ((const uint8_t *)c->data)[i];
    return s->v;
}

/* The encoding of a fixed block without looking at its values again:
 * a forced one that applies (DICT aside: it needs the dictionary), or
 * CONST for one run (a bronze __class column, most often) when PLAIN is
 * larger than its 8 bytes; -1 when the full choice must decide. */
static int early_choice(const fstats *f, int force)
{
    if (force >= 0 && force < N_ENC && force != ST_ENC_DICT && applies(f, force)) return force;
    if (force != ST_ENC_DICT && f->s.runs == 1 && f->n * f->width > 8) return ST_ENC_CONST;
    return -1;
}

static st_status encode_fixed(const st_column *c, int force, st_codec_scratch *s, st_buf *out, int *enc,
                              st_codec_range *range)
{
    size_t n = c->n_rows;
    if (!scratch_reserve(s, n)) return ST_ERR_NOMEM;
    fstats f = {.n = n, .width = st_type_width(c->type), .f64 = c->type == ST_TYPE_F64};
    st_cpu_isa level = st_cpu_level();
    const uint64_t *v = NULL;
    if (c->type == ST_TYPE_I32) {
        st_enc_stats32_pick(level)(c->data, n, &f.s);
    } else {
        v = widened(c, s);
        st_enc_stats64_pick(level)(v, n, &f.s);
    }
    f.w_for = st_bits_for((uint64_t)f.s.mx - (uint64_t)f.s.mn);
    f.w_delta = n > 1 ? st_bits_for((uint64_t)f.s.dmx - (uint64_t)f.s.dmn) : 0;
    if (range) *range = (st_codec_range){.has_minmax = !f.f64 && n > 0, .min = f.s.mn, .max = f.s.mx};
    int best = early_choice(&f, force);
    if (best == ST_ENC_PLAIN || best == ST_ENC_CONST) {
        *enc = best;
        if (best == ST_ENC_PLAIN) st_buf_append(out, c->data, n * f.width);
        else st_buf_put_u64(out, widened_at(c, 0));
        return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
    }
    if (!v) v = widened(c, s);
    if (best < 0 && force == ST_ENC_DICT && n >= 1) {
        distinct(s, v, &f, ST_DICT_MAX);
        if (f.dict_ok) best = ST_ENC_DICT;
    }
    if (best < 0) best = choose(s, v, &f);
    if (best == ST_ENC_RLE && !f.have_runs) f.max_run = n ? extract_runs(v, n, f.s.runs, s->tmp) : 0;
    *enc = best;
    switch (best) {
    case ST_ENC_PLAIN: st_buf_append(out, c->data, n * f.width); break;
    case ST_ENC_FOR_BITPACK: put_for(out, v, &f); break;
    case ST_ENC_DELTA: put_delta(out, v, &f); break;
    case ST_ENC_RLE: put_rle(out, &f, s->tmp); break;
    case ST_ENC_DICT: put_dict(out, s, v, &f, s->tmp); break;
    case ST_ENC_CONST: st_buf_put_u64(out, v[0]); break;
    }
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

/* ---- a fixed-width block given as runs ----
 *
 * The statistics choose() would take from the expanded rows, taken from
 * the runs: the differences are 0 inside a run (one longer than a row)
 * and the steps between run values; the distinct values are the run
 * values'. Only CONST and RLE are written from the runs; any other
 * choice (DICT included) leaves *done false and the caller encodes the
 * rows, so the bytes are always the encoder's. */

/* The block's statistics from its runs; false when they are not runs as
 * the encoder counts them (an empty run, two equal neighbours). */
static bool runs_stats(st_type t, const uint64_t *val, const uint32_t *len, size_t n_runs, fstats *f)
{
    size_t n = 0, max_run = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN, dmn = INT64_MAX, dmx = INT64_MIN;
    for (size_t r = 0; r < n_runs; r++) {
        if (len[r] == 0 || (r && val[r] == val[r - 1])) return false;
        int64_t x = (int64_t)val[r];
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        if (r) {
            int64_t d = (int64_t)(val[r] - val[r - 1]);
            dmn = d < dmn ? d : dmn;
            dmx = d > dmx ? d : dmx;
        }
        if (len[r] > 1) {
            dmn = dmn < 0 ? dmn : 0;
            dmx = dmx > 0 ? dmx : 0;
        }
        max_run = len[r] > max_run ? len[r] : max_run;
        n += len[r];
    }
    if (n < 2) dmn = dmx = 0;
    *f = (fstats){.s = {.mn = mn, .mx = mx, .dmn = dmn, .dmx = dmx, .runs = n_runs}, .n = n,
                  .width = st_type_width(t), .max_run = max_run, .have_runs = true};
    f->w_for = st_bits_for((uint64_t)mx - (uint64_t)mn);
    f->w_delta = n > 1 ? st_bits_for((uint64_t)dmx - (uint64_t)dmn) : 0;
    return true;
}

/* The encoding choose() picks for these statistics, or -1 for DICT
 * (which needs the rows' codes). vals are the n_runs run values. */
static int runs_choice(st_codec_scratch *s, const uint64_t *vals, size_t n_runs, fstats *f)
{
    if (f->s.runs == 1) return f->n * f->width > 8 ? ST_ENC_CONST : ST_ENC_PLAIN;
    size_t size[N_ENC];
    int best = smallest_packed(f, size);
    size[ST_ENC_RLE] = rle_size(f, st_bits_for(f->max_run ? f->max_run - 1 : 0));
    if (size[ST_ENC_RLE] < size[best]) best = ST_ENC_RLE;
    size_t limit = dict_limit(f, size[best]);
    if (limit < 2) return best;
    fstats g = *f; /* the distinct values of the rows are the run values' */
    g.n = n_runs;
    distinct(s, vals, &g, limit);
    return g.dict_ok ? -1 : best;
}

st_status st_codec_encode_runs(st_type t, const uint64_t *val, const uint32_t *len, size_t n_runs,
                               st_codec_scratch *s, st_buf *out, int *enc, bool *done)
{
    *done = false;
    if (forced_encoding >= 0 || n_runs == 0 || t == ST_TYPE_STR || t == ST_TYPE_BYTES || t == ST_TYPE_F64 ||
        st_type_width(t) == 0)
        return ST_OK;
    fstats f;
    if (!runs_stats(t, val, len, n_runs, &f)) return ST_OK;
    if (!scratch_reserve(s, n_runs)) return ST_ERR_NOMEM;
    int best = runs_choice(s, val, n_runs, &f);
    if (best == ST_ENC_CONST) {
        st_buf_put_u64(out, val[0]);
        *done = true;
    } else if (best == ST_ENC_RLE) {
        for (size_t r = 0; r < n_runs; r++) {
            s->tmp[r] = val[r];
            s->tmp[n_runs + r] = len[r] - 1;
        }
        put_rle(out, &f, s->tmp);
        *done = true;
    }
    if (*done) *enc = best;
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

/* ---- strings ---- */

static inline uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint64_t load32(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

/* A hash of the l bytes at s for the dictionary's table: short strings
 * (most codes and names) in two overlapping loads, longer ones 8 bytes a
 * step. Its value only places strings in slots: it never reaches a file. */
static inline uint64_t str_hash(const char *s, size_t l)
{
    uint64_t a, b;
    if (l >= 8) {
        a = load64(s);
        b = load64(s + l - 8);
        for (size_t k = 8; k + 8 < l; k += 8) a = (a ^ load64(s + k)) * 0x9E3779B97F4A7C15ull + (a >> 29);
    } else if (l >= 4) {
        a = load32(s);
        b = load32(s + l - 4);
    } else {
        a = l ? (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[l / 2] << 8 | (uint64_t)(uint8_t)s[l - 1] << 16 : 0;
        b = 0;
    }
    return mix64((a * 0x9E3779B97F4A7C15ull) ^ ((b + l) * 0xC2B2AE3D27D4EB4Full));
}

/* Are the l bytes at x and y equal? */
static inline bool str_eq(const char *x, const char *y, size_t l)
{
    if (l >= 8 && l <= 16) return load64(x) == load64(y) && load64(x + l - 8) == load64(y + l - 8);
    if (l >= 4 && l < 8) return load32(x) == load32(y) && load32(x + l - 4) == load32(y + l - 4);
    return memcmp(x, y, l) == 0;
}

/* What the choice among the string encodings knows of a block. */
typedef struct vstats {
    size_t n;
    uint64_t lmin, lmax;  /* value lengths */
    bool all_equal;
    size_t plain;         /* PLAIN's size */
    size_t nd;            /* dictionary values, when dict_ok */
    uint64_t dict_bytes;  /* their bytes */
    bool dict_ok;
} vstats;

static void var_stats(const st_column *c, vstats *st)
{
    size_t n = c->n_rows;
    const uint64_t *off = c->offsets;
    uint64_t l0 = n ? off[1] - off[0] : 0, lmin = l0, lmax = l0;
    bool same = n > 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t l = off[i + 1] - off[i];
        lmin = l < lmin ? l : lmin;
        lmax = l > lmax ? l : lmax;
        same = same && l == l0 && str_eq(c->bytes + off[i], c->bytes + off[0], (size_t)l);
    }
    *st = (vstats){.n = n, .lmin = lmin, .lmax = lmax, .all_equal = same};
    st->plain = 9 + st_packed_bytes(n, st_bits_for(lmax - lmin)) + (size_t)(n ? off[n] - off[0] : 0);
}

/* The dictionary of string block c in first-occurrence order (s->first:
 * each value's first row) and every row's code (codes), when it has at
 * most ST_DICT_MAX values and, unless `full`, while a dictionary of the
 * values found so far could still be smaller than PLAIN. */
static void var_dict(const st_column *c, st_codec_scratch *s, vstats *st, uint64_t *codes, bool full)
{
    size_t n = c->n_rows, nd = 0;
    const uint64_t *off = c->offsets;
    unsigned bits = hash_bits(n);
    size_t mask = ((size_t)1 << bits) - 1;
    uint64_t dict_bytes = 0;
    memset(s->slots, 0, (mask + 1) * sizeof *s->slots);
    st->dict_ok = false;
    for (size_t i = 0; i < n; i++) {
        const char *p = c->bytes + off[i];
        size_t l = (size_t)(off[i + 1] - off[i]);
        uint64_t h = str_hash(p, l);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t slot = (size_t)h & mask;
        for (;; slot = (slot + 1) & mask) {
            sslot *e = &s->slots[slot];
            if (e->idx == 0) {
                /* a new value: DICT can win only if even 0-bit lengths would */
                size_t lb = 4 + 9 + st_packed_bytes(nd + 1, 0) + (size_t)(dict_bytes + l) + 1 +
                            st_packed_bytes(n, nd ? st_bits_for(nd) : 0);
                if (nd == ST_DICT_MAX || (!full && lb >= st->plain)) return;
                e->tag = tag;
                e->idx = (uint32_t)i + 1;
                s->first[nd] = (uint32_t)i;
                codes[i] = nd++;
                dict_bytes += l;
                break;
            }
            size_t j = e->idx - 1;
            if (e->tag == tag && off[j + 1] - off[j] == l && str_eq(c->bytes + off[j], p, l)) {
                codes[i] = codes[j];
                break;
            }
        }
    }
    st->nd = nd;
    st->dict_bytes = dict_bytes;
    st->dict_ok = n > 0;
}

/* A string of l <= 7 bytes as one integer: its bytes, zero-padded, and
 * its length in the top byte (so "a" and "a\0" differ). end: the end of
 * the column's bytes (a full 8-byte load only when it stays inside). */
static inline uint64_t short_key(const char *p, size_t l, const char *end)
{
    uint64_t x = 0;
    if (end - p >= 8) {
        memcpy(&x, p, 8);
        x &= l ? ~0ull >> (64 - 8 * l) : 0;
    } else {
        memcpy(&x, p, l);
    }
    return x | (uint64_t)l << 56;
}

/* var_dict for a block whose strings are all at most 7 bytes: each one
 * is its short_key, so the integer hash table of the fixed-width blocks
 * finds it with one compare (code[] holds first-occurrence order + 1). */
static void var_dict_short(const st_column *c, st_codec_scratch *s, vstats *st, uint64_t *codes, bool full)
{
    size_t n = c->n_rows, nd = 0;
    const uint64_t *off = c->offsets;
    const char *end = c->bytes + off[n];
    unsigned shift = 64 - hash_bits(n);
    uint64_t dict_bytes = 0;
    memset(s->code, 0, ((size_t)1 << (64 - shift)) * sizeof *s->code);
    st->dict_ok = false;
    for (size_t i = 0; i < n; i++) {
        size_t l = (size_t)(off[i + 1] - off[i]);
        uint64_t key = short_key(c->bytes + off[i], l, end);
        size_t h = probe(s, key, shift);
        if (s->code[h]) {
            codes[i] = s->code[h] - 1u;
            continue;
        }
        size_t lb = 4 + 9 + st_packed_bytes(nd + 1, 0) + (size_t)(dict_bytes + l) + 1 +
                    st_packed_bytes(n, nd ? st_bits_for(nd) : 0);
        if (nd == ST_DICT_MAX || (!full && lb >= st->plain)) return;
        s->keys[h] = key;
        s->code[h] = (uint16_t)(nd + 1);
        s->first[nd] = (uint32_t)i;
        codes[i] = nd++;
        dict_bytes += l;
    }
    st->nd = nd;
    st->dict_bytes = dict_bytes;
    st->dict_ok = n > 0;
}

/* DICT's exact size, and the range of its value lengths. */
static size_t var_dict_size(const st_column *c, const st_codec_scratch *s, const vstats *st, uint64_t *dlmin,
                            uint64_t *dlmax)
{
    const uint64_t *off = c->offsets;
    *dlmin = *dlmax = off[s->first[0] + 1] - off[s->first[0]];
    for (size_t k = 1; k < st->nd; k++) {
        uint64_t l = off[s->first[k] + 1] - off[s->first[k]];
        *dlmin = l < *dlmin ? l : *dlmin;
        *dlmax = l > *dlmax ? l : *dlmax;
    }
    return 4 + 9 + st_packed_bytes(st->nd, st_bits_for(*dlmax - *dlmin)) + (size_t)st->dict_bytes + 1 +
           st_packed_bytes(st->n, st->nd > 1 ? st_bits_for(st->nd - 1) : 0);
}

static void put_var_plain(st_buf *out, const st_column *c, const vstats *st)
{
    const uint64_t *off = c->offsets;
    unsigned w = st_bits_for(st->lmax - st->lmin);
    st_buf_put_u64(out, st->lmin);
    st_buf_put_u8(out, (uint8_t)w);
    uint8_t *p = append_zeros(out, st_packed_bytes(st->n, w));
    if (p && st->n) pack_delta(p, off, st->n, w, st->lmin); /* lengths: differences of the offsets */
    if (st->n) st_buf_append(out, c->bytes + off[0], (size_t)(off[st->n] - off[0]));
}

static void put_var_dict(st_buf *out, const st_column *c, const st_codec_scratch *s, const vstats *st,
                         const uint64_t *codes, uint64_t *tmp, uint64_t dlmin, uint64_t dlmax)
{
    const uint64_t *off = c->offsets;
    size_t nd = st->nd;
    st_buf_put_u32(out, (uint32_t)nd);
    st_buf_put_u64(out, dlmin);
    unsigned wl = st_bits_for(dlmax - dlmin);
    st_buf_put_u8(out, (uint8_t)wl);
    for (size_t k = 0; k < nd; k++) tmp[k] = off[s->first[k] + 1] - off[s->first[k]];
    put_packed(out, tmp, nd, wl, dlmin);
    for (size_t k = 0; k < nd; k++)
        st_buf_append(out, c->bytes + off[s->first[k]], (size_t)(off[s->first[k] + 1] - off[s->first[k]]));
    unsigned wc = nd > 1 ? st_bits_for(nd - 1) : 0;
    st_buf_put_u8(out, (uint8_t)wc);
    put_packed(out, codes, st->n, wc, 0);
}

static st_status encode_var(const st_column *c, int force, st_codec_scratch *s, st_buf *out, int *enc)
{
    size_t n = c->n_rows;
    if (!scratch_reserve(s, n)) return ST_ERR_NOMEM;
    vstats st;
    var_stats(c, &st);
    uint64_t *codes = s->tmp + ST_DICT_MAX, dlmin = 0, dlmax = 0;
    int best = ST_ENC_PLAIN;
    bool forced = force == ST_ENC_PLAIN || (force == ST_ENC_CONST && st.all_equal);
    /* all equal: CONST (4 + l bytes) beats PLAIN (17 + n * l) and any
     * dictionary (at least 30 + l) */
    if (forced) best = force;
    else if (st.all_equal && force != ST_ENC_DICT) best = ST_ENC_CONST;
    else if (n) {
        if (st.lmax <= 7) var_dict_short(c, s, &st, codes, force == ST_ENC_DICT);
        else var_dict(c, s, &st, codes, force == ST_ENC_DICT);
        if (st.dict_ok && (var_dict_size(c, s, &st, &dlmin, &dlmax) < st.plain || force == ST_ENC_DICT))
            best = ST_ENC_DICT;
        else if (st.all_equal)
            best = ST_ENC_CONST;
    }
    *enc = best;
    switch (best) {
    case ST_ENC_PLAIN: put_var_plain(out, c, &st); break;
    case ST_ENC_DICT: put_var_dict(out, c, s, &st, codes, s->tmp, dlmin, dlmax); break;
    case ST_ENC_CONST:
        st_buf_put_u32(out, (uint32_t)(c->offsets[1] - c->offsets[0]));
        st_buf_append(out, c->bytes + c->offsets[0], (size_t)(c->offsets[1] - c->offsets[0]));
        break;
    }
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

/* ---- strings given as dictionary codes ----
 *
 * The block encode_var writes for the strings dict[codes[i]], without
 * making them: the block's dictionary in first-occurrence order is the
 * order in which codes first occur, a string is all the rows' only value
 * exactly when one code is (dict holds distinct strings), and the lengths
 * and bytes come from dict. var_dict's early stop only ever gives up a
 * dictionary whose exact size would not beat PLAIN, so counting every
 * code and comparing exact sizes picks the same encoding. */

typedef struct cstats {
    vstats v;
    uint64_t bytes;   /* the rows' string bytes */
} cstats;

/* Room for dictionaries of n_dict strings in s->local (zeroed). */
static bool local_reserve(st_codec_scratch *s, size_t n_dict)
{
    if (n_dict <= s->cap_local && s->local) return true;
    uint32_t *m = calloc(n_dict ? n_dict : 1, sizeof *m);
    if (!m) return false;
    free(s->local);
    s->local = m;
    s->cap_local = n_dict;
    return true;
}

/* The block's codes (into `codes`, first-occurrence order; s->first: the
 * dictionary code of each, up to ST_DICT_MAX of them) and what the choice
 * needs: lengths, PLAIN's size, the dictionary's bytes. s->first then
 * indexes dict as var_dict's indexes its column's rows, so var_dict_size
 * and put_var_dict serve both. */
static void code_stats(const st_column *dict, const uint32_t *rows, size_t n, st_codec_scratch *s, uint64_t *codes,
                       cstats *cs)
{
    const uint64_t *off = dict->offsets;
    uint32_t nd = 0;
    uint64_t bytes = 0, dict_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = rows[i];
        if (!s->local[c]) {
            if (nd < ST_DICT_MAX) s->first[nd] = c;
            s->local[c] = ++nd;
            dict_bytes += off[c + 1] - off[c];
        }
        codes[i] = s->local[c] - 1u;
        bytes += off[c + 1] - off[c];
    }
    uint32_t kept = nd < ST_DICT_MAX ? nd : ST_DICT_MAX;
    uint64_t lmin = UINT64_MAX, lmax = 0;
    for (uint32_t k = 0; k < kept; k++) {
        uint64_t l = off[s->first[k] + 1] - off[s->first[k]];
        lmin = l < lmin ? l : lmin;
        lmax = l > lmax ? l : lmax;
    }
    /* past ST_DICT_MAX the first codes' lengths alone are not the range:
     * the forgotten codes are found again through their rows */
    for (size_t i = 0; nd > ST_DICT_MAX && i < n; i++) {
        uint64_t l = off[rows[i] + 1] - off[rows[i]];
        lmin = l < lmin ? l : lmin;
        lmax = l > lmax ? l : lmax;
    }
    for (size_t i = 0; nd > ST_DICT_MAX && i < n; i++) s->local[rows[i]] = 0;
    for (uint32_t k = 0; k < kept; k++) s->local[s->first[k]] = 0;
    *cs = (cstats){.v = {.n = n, .lmin = lmin, .lmax = lmax, .all_equal = nd == 1, .nd = kept,
                         .dict_bytes = dict_bytes, .dict_ok = nd <= ST_DICT_MAX},
                   .bytes = bytes};
    cs->v.plain = 9 + st_packed_bytes(n, st_bits_for(lmax - lmin)) + (size_t)bytes;
}

/* put_var_plain for the coded rows: the lengths packed as differences of
 * offsets made in s->v (n + 1 of them). */
static void put_code_plain(st_buf *out, const st_column *dict, const uint32_t *rows, const cstats *cs,
                           st_codec_scratch *s)
{
    const uint64_t *off = dict->offsets;
    size_t n = cs->v.n;
    unsigned w = st_bits_for(cs->v.lmax - cs->v.lmin);
    uint64_t *o = s->v;
    o[0] = 0;
    for (size_t i = 0; i < n; i++) o[i + 1] = o[i] + (off[rows[i] + 1] - off[rows[i]]);
    st_buf_put_u64(out, cs->v.lmin);
    st_buf_put_u8(out, (uint8_t)w);
    uint8_t *p = append_zeros(out, st_packed_bytes(n, w));
    if (p) pack_delta(p, o, n, w, cs->v.lmin);
    for (size_t i = 0; i < n; i++)
        st_buf_append(out, dict->bytes + off[rows[i]], (size_t)(off[rows[i] + 1] - off[rows[i]]));
}

st_status st_codec_encode_str_codes(const st_column *dict, const uint32_t *rows, size_t n, int force,
                                    st_codec_scratch *s, st_buf *out, int *enc, uint64_t *n_bytes)
{
    if (force < 0) force = forced_encoding;
    if (n == 0) return ST_ERR_INVALID;
    if (!scratch_reserve(s, n + 1) || !local_reserve(s, dict->n_rows)) return ST_ERR_NOMEM;
    uint64_t *codes = s->tmp + ST_DICT_MAX, dlmin = 0, dlmax = 0;
    cstats cs;
    code_stats(dict, rows, n, s, codes, &cs);
    *n_bytes = cs.bytes;
    int best = ST_ENC_PLAIN;
    bool forced = force == ST_ENC_PLAIN || (force == ST_ENC_CONST && cs.v.all_equal);
    if (forced) best = force;
    else if (cs.v.all_equal && force != ST_ENC_DICT) best = ST_ENC_CONST;
    else if (cs.v.dict_ok && (var_dict_size(dict, s, &cs.v, &dlmin, &dlmax) < cs.v.plain || force == ST_ENC_DICT))
        best = ST_ENC_DICT;
    else if (cs.v.all_equal) best = ST_ENC_CONST;
    *enc = best;
    const uint64_t *off = dict->offsets;
    switch (best) {
    case ST_ENC_PLAIN: put_code_plain(out, dict, rows, &cs, s); break;
    case ST_ENC_DICT: put_var_dict(out, dict, s, &cs.v, codes, s->tmp, dlmin, dlmax); break;
    case ST_ENC_CONST:
        st_buf_put_u32(out, (uint32_t)(off[rows[0] + 1] - off[rows[0]]));
        st_buf_append(out, dict->bytes + off[rows[0]], (size_t)(off[rows[0] + 1] - off[rows[0]]));
        break;
    }
    return st_buf_ok(out) ? ST_OK : ST_ERR_NOMEM;
}

st_status st_codec_encode_block(const st_column *c, int force, st_codec_scratch *s, st_buf *out, int *enc,
                                st_codec_range *range)
{
    if (force < 0) force = forced_encoding;
    if (range) *range = (st_codec_range){0};
    if (c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES) return encode_var(c, force, s, out, enc);
    return encode_fixed(c, force, s, out, enc, range);
}

st_status st_codec_encode(const st_column *c, int force, st_buf *out, int *enc)
{
    st_codec_scratch *s = st_codec_scratch_new();
    if (!s) return ST_ERR_NOMEM;
    st_status st = st_codec_encode_block(c, force, s, out, enc, NULL);
    st_codec_scratch_free(s);
    return st;
}
