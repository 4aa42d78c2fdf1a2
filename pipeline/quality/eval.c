/*
 * pipeline/quality/eval.c: evaluates a suite's expectations on tables,
 * streaming.
 *
 * A table is opened once for all its expectations. Each expectation gets a
 * state (resolved column indices, value sets, key collectors); then the
 * chunks are walked in order and every active state takes one step per
 * chunk. Decoded blocks go through a one-chunk cache, so a column read by
 * several expectations is decoded once per chunk, and a step first asks
 * the block's zone map whether the chunk can be answered without decoding
 * (null counts for not_null/completeness; integer min/max inside the
 * bounds or inside the value set for values_between, temporal_window,
 * values_in_set and storage_class). Float blocks are always decoded: zone
 * maps ignore NaN, and NaN is never "between".
 *
 * Keyed kinds (unique, no_duplicate_keys, referential) collect keys: int64
 * for a single integer column, else byte strings that encode the key tuple
 * unambiguously (integers as 8 big-endian bytes, strings length-prefixed).
 * Rows with a NULL in any key column are not keys (SQL semantics) and are
 * not counted. What is held is what bounds the memory of a run on a large
 * table, so each kind keeps as little as its answer needs:
 *
 * - unique / no_duplicate_keys on one integer column first read every
 *   chunk's zone map. When the [min, max] ranges of the chunks that hold
 *   values are pairwise disjoint (a rowid or a date the table is ordered
 *   by), no value can be in two chunks, so each chunk is sorted, tallied
 *   and dropped: one chunk of keys at a time. Otherwise it goes the way of
 *   the next point, whose collector holds 16 bytes per key (value and row,
 *   twice that while sorting) and tallies once at the end. Both tallies
 *   count the same rows and keep the same samples, the first duplicate
 *   rows in (value, row) order (see tally_int_dups). The per-chunk path
 *   trusts the zone maps as the skipping above does.
 * - unique / no_duplicate_keys otherwise (a tuple, a non-integer column,
 *   an integer column with overlapping ranges) start on the ordered path:
 *   each row's key is compared with the previous row's (carried across
 *   chunks), with the collector's own order: the encoded bytes, or the
 *   values column by column when every key column is an integer, which
 *   orders alike. While no key is below its predecessor the collector's
 *   sorted (key, row) order is the row order, so its tally can be done as
 *   the rows pass: a row equal to the previous key is a duplicate row, the
 *   first of such a run a repeated key, the first ST_QSAMPLE_MAX of them
 *   the samples, and one key is held (gold and platinum tables are written
 *   sorted by their key). Zone maps cannot promise the order inside a
 *   chunk, so it is checked row by row. At the first key below its
 *   predecessor the expectation leaves the ordered path for good: counts
 *   and samples so far are dropped, the key columns of the chunks before
 *   are decoded again (scratch columns, not the shared cache; the qtable
 *   reads any chunk) and collected, and collecting goes on from the
 *   current chunk: the collector then holds what it would have from the
 *   start, every key (its bytes plus 32 bytes, or 16 for one integer), and
 *   tallies at the end. The re-read is not counted in chunks_decoded, so
 *   both ways give the same result, field for field; the price of a table
 *   out of order late is decoding its key columns twice.
 * - referential holds the target's distinct values (the referenced table,
 *   a dimension) in a sorted array, and the distinct orphan values in a
 *   hash set, since only their number is reported: memory follows the
 *   distinct orphans, not the orphan rows. Samples are taken as rows pass.
 *
 * st_quality_max_keys_held() reports the most keys held, for tests.
 *
 * An expectation that cannot be evaluated (table or column missing, wrong
 * type, referential target missing) becomes a failed result with a message;
 * only damaged files, I/O and memory failures abort the run.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quality_internal.h"
#include "strata/pool.h"

/* ---- results storage ------------------------------------------------------- */

struct st_quality_results {
    st_qarena arena;
    const char *suite_name;
    const char *layers;
    st_qresult *res;
    size_t n;
    size_t max_keys_held; /* keys, see st_quality_max_keys_held() */
    pthread_mutex_t *lock; /* arena and max_keys_held, while tables are evaluated in parallel */
};

size_t st_quality_count(const st_quality_results *r) { return r ? r->n : 0; }
size_t st_quality_results_count(const st_quality_results *r) { return r ? r->n : 0; }

st_status st_quality_results_new(st_quality_results **out, st_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
    (*out)->suite_name = "";
    (*out)->layers = "";
    return ST_OK;
}

st_status st_quality_results_merge(st_quality_results *dst, st_quality_results *src, st_error *err)
{
    st_status s = ST_OK;
    size_t n, bytes;
    if (!st_size_add(dst->n, src->n, &n) || !st_size_mul(n ? n : 1, sizeof *dst->res, &bytes)) {
        s = st_error_set(err, ST_ERR_NOMEM, "quality: too many results");
        goto done;
    }
    st_qresult *res = realloc(dst->res, bytes);
    if (!res) {
        s = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        goto done;
    }
    dst->res = res;
    size_t ll = strlen(dst->layers), ls = strlen(src->layers);
    char *layers = st_qarena_alloc(&src->arena, ll + ls + 2);
    if (!layers) {
        s = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        goto done;
    }
    memcpy(layers, dst->layers, ll);
    if (ll && ls) layers[ll++] = ',';
    memcpy(layers + ll, src->layers, ls + 1);
    if (src->n) memcpy(dst->res + dst->n, src->res, src->n * sizeof *src->res);
    dst->n = n;
    dst->layers = layers;
    if (src->max_keys_held > dst->max_keys_held) dst->max_keys_held = src->max_keys_held;
    if (!dst->suite_name[0]) dst->suite_name = src->suite_name;
    /* The strings now referenced by dst live in src's arena: splice it in. */
    st_qarena_block **tail = &dst->arena.head;
    while (*tail) tail = &(*tail)->next;
    *tail = src->arena.head;
    src->arena.head = NULL;
done:
    st_quality_results_free(src);
    return s;
}
const st_qresult *st_quality_get(const st_quality_results *r, size_t i) { return r && i < r->n ? &r->res[i] : NULL; }
const char *st_quality_suite_name(const st_quality_results *r) { return r->suite_name; }
const char *st_quality_layers(const st_quality_results *r) { return r->layers; }
size_t st_quality_max_keys_held(const st_quality_results *r) { return r ? r->max_keys_held : 0; }

void st_quality_results_free(st_quality_results *r)
{
    if (!r) return;
    free(r->res);
    st_qarena_free(&r->arena);
    free(r);
}

/* ---- small helpers ---------------------------------------------------------- */

static void set_msg(st_qresult *r, const char *fmt, ...) ST_PRINTF(2, 3);
static void set_msg(st_qresult *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void conclude(st_qresult *r, bool ok)
{
    r->status = ok ? ST_QSTATUS_PASS : (r->severity == ST_QSEV_ERROR ? ST_QSTATUS_FAIL : ST_QSTATUS_WARN);
}

/* Not evaluable: a failure by severity, with why. */
static void not_evaluated(st_qresult *r, const char *fmt, ...) ST_PRINTF(2, 3);
static void not_evaluated(st_qresult *r, const char *fmt, ...)
{
    r->evaluated = false;
    conclude(r, false);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static bool mostly_ok(uint64_t checked, uint64_t unexpected, double mostly)
{
    if (checked == 0) return true;
    return (double)(checked - unexpected) / (double)checked >= mostly;
}

static bool is_int_type(st_type t) { return t == ST_TYPE_BOOL || t == ST_TYPE_I32 || t == ST_TYPE_I64; }
static bool is_var_type(st_type t) { return t == ST_TYPE_STR || t == ST_TYPE_BYTES; }

static int64_t int_at(const st_column *c, size_t i)
{
    switch (c->type) {
    case ST_TYPE_BOOL: return st_column_bool(c)[i];
    case ST_TYPE_I32: return st_column_i32(c)[i];
    case ST_TYPE_I64: return st_column_i64(c)[i];
    default: return 0;
    }
}

/* Copies bytes as readable text: valid UTF-8 (for strings) kept,
 * everything else as \xHH; never cuts a character. */
static void render_bytes(const char *s, size_t n, bool utf8, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = 1;
        if (utf8 && c >= 0x80) {
            k = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
            if (k == 0 || i + k > n) k = 0;
            for (size_t j = 1; j < k; j++)
                if (((unsigned char)s[i + j] & 0xC0) != 0x80) k = 0;
        }
        if (c >= 0x20 && c < 0x7F) {
            if (o + 1 >= cap) break;
            out[o++] = (char)c;
            i++;
        } else if (k > 1) {
            if (o + k >= cap) break;
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            if (o + 4 >= cap) break;
            snprintf(out + o, cap - o, "\\x%02x", c);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
}

static void render_value(const st_column *c, size_t i, char *out, size_t cap)
{
    if (!st_column_valid(c, i)) {
        snprintf(out, cap, "NULL");
        return;
    }
    switch (c->type) {
    case ST_TYPE_BOOL: snprintf(out, cap, "%s", st_column_bool(c)[i] ? "true" : "false"); return;
    case ST_TYPE_I32:
    case ST_TYPE_I64: snprintf(out, cap, "%" PRId64, int_at(c, i)); return;
    case ST_TYPE_F64: snprintf(out, cap, "%.17g", st_column_f64(c)[i]); return;
    case ST_TYPE_STR:
    case ST_TYPE_BYTES: {
        size_t len;
        const char *s = st_column_str(c, i, &len);
        render_bytes(s, len, c->type == ST_TYPE_STR, out, cap);
        return;
    }
    }
    snprintf(out, cap, "?");
}

static void add_sample(st_qresult *r, int64_t row, const char *text)
{
    if (r->n_sample >= ST_QSAMPLE_MAX) return;
    st_qsample *s = &r->sample[r->n_sample++];
    s->row = row;
    snprintf(s->value, sizeof s->value, "%s", text);
}

static void add_sample_cell(st_qresult *r, int64_t row, const st_column *c, size_t i)
{
    if (r->n_sample >= ST_QSAMPLE_MAX) return;
    char buf[sizeof r->sample[0].value];
    render_value(c, i, buf, sizeof buf);
    add_sample(r, row, buf);
}

/* ---- key collections -------------------------------------------------------- */

typedef struct ikey {
    int64_t v;
    int64_t row;
} ikey;

typedef struct ikeys {
    ikey *a;
    size_t n, cap;
    uint64_t *bits;   /* membership bitmap over [bmin, bmin + bspan) when the range is small */
    int64_t bmin;
    uint64_t bspan;
} ikeys;

typedef struct bkey {
    const char *p; /* set by bkeys_seal() */
    size_t off, n;
    int64_t row;
} bkey;

typedef struct bkeys {
    char *buf;
    size_t len, cap;
    bkey *a;
    size_t n, cap_a;
} bkeys;

static st_status grow(void **p, size_t *cap, size_t need, size_t elem, st_error *err)
{
    if (need <= *cap) return ST_OK;
    size_t c = *cap ? *cap : 64, bytes;
    while (c < need) {
        if (c > SIZE_MAX / 2) return st_error_set(err, ST_ERR_NOMEM, "quality: key set too large");
        c *= 2;
    }
    if (!st_size_mul(c, elem, &bytes)) return st_error_set(err, ST_ERR_NOMEM, "quality: key set too large");
    void *q = realloc(*p, bytes);
    if (!q) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory for a key set");
    *p = q;
    *cap = c;
    return ST_OK;
}

static st_status ikeys_push(ikeys *k, int64_t v, int64_t row, st_error *err)
{
    if (k->n == k->cap) ST_TRY(grow((void **)&k->a, &k->cap, k->n + 1, sizeof *k->a, err));
    k->a[k->n++] = (ikey){v, row};
    return ST_OK;
}

static void ikeys_free(ikeys *k)
{
    free(k->bits);
    free(k->a);
    memset(k, 0, sizeof *k);
}

static int ikey_cmp(const void *a, const void *b)
{
    const ikey *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Sorts by (value, row). Keys arrive in row order, so a stable LSD radix
 * sort on the value alone gives the same order as ikey_cmp in O(n); byte
 * positions where every key agrees are skipped. Falls back to qsort when
 * rows are not in order or the scratch buffer cannot be had. */
static void ikeys_sort(ikeys *k)
{
    size_t n = k->n;
    if (n < 2) return;
    /* keys that arrive sorted (row ids, dates) need no work at all */
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = k->a[i - 1].v < k->a[i].v || (k->a[i - 1].v == k->a[i].v && k->a[i - 1].row <= k->a[i].row);
    if (sorted) return;
    bool rows_in_order = true;
    for (size_t i = 1; i < n && rows_in_order; i++) rows_in_order = k->a[i - 1].row <= k->a[i].row;
    ikey *tmp = rows_in_order && n >= 256 ? malloc(n * sizeof *tmp) : NULL;
    if (!tmp) {
        qsort(k->a, n, sizeof *k->a, ikey_cmp);
        return;
    }
    size_t (*hist)[256] = calloc(8, sizeof *hist);
    if (!hist) {
        free(tmp);
        qsort(k->a, n, sizeof *k->a, ikey_cmp);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t u = (uint64_t)k->a[i].v ^ ((uint64_t)1 << 63);
        for (int b = 0; b < 8; b++) hist[b][(u >> (8 * b)) & 0xff]++;
    }
    ikey *src = k->a, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        bool trivial = false;
        for (int d = 0; d < 256; d++)
            if (hist[b][d] == n) trivial = true;
        if (trivial) continue;
        size_t pos[256], acc = 0;
        for (int d = 0; d < 256; d++) {
            pos[d] = acc;
            acc += hist[b][d];
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t u = (uint64_t)src[i].v ^ ((uint64_t)1 << 63);
            dst[pos[(u >> (8 * b)) & 0xff]++] = src[i];
        }
        ikey *t = src;
        src = dst;
        dst = t;
    }
    if (src != k->a) memcpy(k->a, src, n * sizeof *k->a);
    free(hist);
    free(tmp);
}

/* Sorts and drops repeated values (keeps the first row of each). */
static void ikeys_sort_unique(ikeys *k)
{
    ikeys_sort(k);
    size_t o = 0;
    for (size_t i = 0; i < k->n; i++)
        if (o == 0 || k->a[o - 1].v != k->a[i].v) k->a[o++] = k->a[i];
    k->n = o;
    /* a set over a small range answers lookups from a bitmap (O(1)) */
    free(k->bits);
    k->bits = NULL;
    if (o > 0) {
        uint64_t span = (uint64_t)k->a[o - 1].v - (uint64_t)k->a[0].v + 1;
        if (span != 0 && span <= ((uint64_t)1 << 26)) {
            k->bits = calloc((size_t)((span + 63) / 64), sizeof *k->bits);
            if (k->bits) {
                k->bmin = k->a[0].v;
                k->bspan = span;
                for (size_t i = 0; i < o; i++) {
                    uint64_t off = (uint64_t)k->a[i].v - (uint64_t)k->bmin;
                    k->bits[off >> 6] |= (uint64_t)1 << (off & 63);
                }
            }
        }
    }
}

static bool ikeys_has(const ikeys *k, int64_t v)
{
    if (k->bits) {
        uint64_t o = (uint64_t)v - (uint64_t)k->bmin;
        return v >= k->bmin && o < k->bspan && ((k->bits[o >> 6] >> (o & 63)) & 1);
    }
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->a[mid].v < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < k->n && k->a[lo].v == v;
}

/* True when every integer of [lo, hi] is in the sorted unique set k: the
 * key at lo's place and the one hi - lo places later are lo and hi (no
 * integer between them can be missing, the keys being distinct). */
static bool ikeys_has_range(const ikeys *k, int64_t lo, int64_t hi)
{
    if (hi < lo || k->n == 0) return false;
    size_t a = 0, b = k->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (k->a[mid].v < lo) a = mid + 1;
        else b = mid;
    }
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    return a < k->n && k->a[a].v == lo && span < k->n - a && k->a[a + (size_t)span].v == hi;
}

/* Starts a key at the end of the buffer; bkeys_bytes() appends to it and
 * bkeys_end() records it. */
static st_status bkeys_bytes(bkeys *k, const void *p, size_t n, st_error *err)
{
    size_t need;
    if (!st_size_add(k->len, n, &need)) return st_error_set(err, ST_ERR_NOMEM, "quality: key set too large");
    if (need > k->cap) ST_TRY(grow((void **)&k->buf, &k->cap, need, 1, err));
    if (n) memcpy(k->buf + k->len, p, n);
    k->len += n;
    return ST_OK;
}

static st_status bkeys_end(bkeys *k, size_t start, int64_t row, st_error *err)
{
    if (k->n == k->cap_a) ST_TRY(grow((void **)&k->a, &k->cap_a, k->n + 1, sizeof *k->a, err));
    k->a[k->n++] = (bkey){NULL, start, k->len - start, row};
    return ST_OK;
}

static void bkeys_free(bkeys *k)
{
    free(k->buf);
    free(k->a);
    memset(k, 0, sizeof *k);
}

static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t m = na < nb ? na : nb;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return (na > nb) - (na < nb);
}

static int bkey_cmp(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    int c = bytes_cmp(x->p, x->n, y->p, y->n);
    if (c) return c;
    return (x->row > y->row) - (x->row < y->row);
}

/* Fixes pointers (the buffer no longer moves) and sorts. */
static void bkeys_seal(bkeys *k)
{
    for (size_t i = 0; i < k->n; i++) k->a[i].p = k->buf + k->a[i].off;
    /* tables sorted on their key (most gold and platinum tables) need no sort */
    bool sorted = true;
    for (size_t i = 1; i < k->n && sorted; i++) sorted = bkey_cmp(&k->a[i - 1], &k->a[i]) <= 0;
    if (!sorted) qsort(k->a, k->n, sizeof *k->a, bkey_cmp);
}

static void bkeys_seal_unique(bkeys *k)
{
    bkeys_seal(k);
    size_t o = 0;
    for (size_t i = 0; i < k->n; i++)
        if (o == 0 || bytes_cmp(k->a[o - 1].p, k->a[o - 1].n, k->a[i].p, k->a[i].n) != 0) k->a[o++] = k->a[i];
    k->n = o;
}

static bool bkeys_has(const bkeys *k, const char *p, size_t n)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bytes_cmp(k->a[mid].p, k->a[mid].n, p, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < k->n && bytes_cmp(k->a[lo].p, k->a[lo].n, p, n) == 0;
}

/* ---- distinct-value sets ---------------------------------------------------- */

/* referential needs only how many distinct orphan values there are, neither
 * which nor in what order, and orphans can be most of a large table made of
 * a few values repeated. A hash set holds each value once as it arrives, so
 * its memory follows the distinct values and not the rows; a sorted array
 * would have to hold every row until it is compacted. Open addressing with
 * linear probing in a power-of-two table kept at most 3/4 full; the hash is
 * splitmix64's finaliser, which spreads consecutive integers (ids, dates)
 * over the low bits the probe uses. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

/* The slot count that follows old_cap (0 for an empty set): 64, then
 * doubling. false when it would overflow. */
static bool next_cap(size_t old_cap, size_t *cap)
{
    if (old_cap == 0) {
        *cap = 64;
        return true;
    }
    if (old_cap > SIZE_MAX / 8) return false;
    *cap = old_cap * 2;
    return true;
}

/* Integers. INT64_MIN marks a free slot, so that one value is kept as a
 * flag beside the table. */
#define IHSET_FREE INT64_MIN

typedef struct ihset {
    int64_t *slot;
    size_t cap;    /* slots: 0 or a power of two */
    size_t n;      /* distinct values held, INT64_MIN included */
    bool has_free; /* INT64_MIN is in the set */
} ihset;

/* Puts v (not IHSET_FREE) into a table with a free slot; true when it was new. */
static bool ihset_place(int64_t *slot, size_t cap, int64_t v)
{
    size_t m = cap - 1;
    for (size_t i = (size_t)mix64((uint64_t)v) & m;; i = (i + 1) & m) {
        if (slot[i] == v) return false;
        if (slot[i] == IHSET_FREE) {
            slot[i] = v;
            return true;
        }
    }
}

static st_status ihset_add(ihset *h, int64_t v, st_error *err)
{
    if (v == IHSET_FREE) {
        if (!h->has_free) h->n++;
        h->has_free = true;
        return ST_OK;
    }
    if (h->cap / 4 * 3 <= h->n) {
        size_t cap, bytes;
        if (!next_cap(h->cap, &cap) || !st_size_mul(cap, sizeof *h->slot, &bytes))
            return st_error_set(err, ST_ERR_NOMEM, "quality: key set too large");
        int64_t *slot = malloc(bytes);
        if (!slot) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory for a key set");
        for (size_t i = 0; i < cap; i++) slot[i] = IHSET_FREE;
        for (size_t i = 0; i < h->cap; i++)
            if (h->slot[i] != IHSET_FREE) ihset_place(slot, cap, h->slot[i]);
        free(h->slot);
        h->slot = slot;
        h->cap = cap;
    }
    if (ihset_place(h->slot, h->cap, v)) h->n++;
    return ST_OK;
}

static void ihset_free(ihset *h)
{
    free(h->slot);
    memset(h, 0, sizeof *h);
}

/* Byte strings: the values live once each in a bkeys (first-seen order);
 * a slot holds an index into it plus one, 0 being free. */
typedef struct bhset {
    bkeys keys;
    size_t *slot;
    size_t cap; /* slots: 0 or a power of two */
} bhset;

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    return mix64(h ^ n);
}

/* The slot where p[0..n) is or would go. */
static size_t bhset_find(const bhset *h, const size_t *slot, size_t cap, const char *p, size_t n)
{
    size_t m = cap - 1;
    for (size_t i = (size_t)hash_bytes(p, n) & m;; i = (i + 1) & m) {
        if (slot[i] == 0) return i;
        const bkey *k = &h->keys.a[slot[i] - 1];
        if (k->n == n && (n == 0 || !memcmp(h->keys.buf + k->off, p, n))) return i;
    }
}

/* Adds p[0..n) (which must not point into the set) unless present. */
static st_status bhset_add(bhset *h, const char *p, size_t n, st_error *err)
{
    if (h->cap / 4 * 3 <= h->keys.n) {
        size_t cap;
        if (!next_cap(h->cap, &cap)) return st_error_set(err, ST_ERR_NOMEM, "quality: key set too large");
        size_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory for a key set");
        for (size_t i = 0; i < h->keys.n; i++) {
            const bkey *k = &h->keys.a[i];
            slot[bhset_find(h, slot, cap, h->keys.buf + k->off, k->n)] = i + 1;
        }
        free(h->slot);
        h->slot = slot;
        h->cap = cap;
    }
    size_t i = bhset_find(h, h->slot, h->cap, p, n);
    if (h->slot[i]) return ST_OK;
    size_t start = h->keys.len;
    ST_TRY(bkeys_bytes(&h->keys, p, n, err));
    ST_TRY(bkeys_end(&h->keys, start, 0, err));
    h->slot[i] = h->keys.n;
    return ST_OK;
}

static void bhset_free(bhset *h)
{
    bkeys_free(&h->keys);
    free(h->slot);
    memset(h, 0, sizeof *h);
}

/* Encodes a string of len bytes onto the current key: its length, then
 * its bytes. */
static st_status key_append_str(bkeys *k, const char *s, size_t len, st_error *err)
{
    unsigned char b[8];
    uint64_t l = len;
    for (int j = 0; j < 8; j++) b[j] = (unsigned char)(l >> (56 - 8 * j));
    ST_TRY(bkeys_bytes(k, b, 8, err));
    return bkeys_bytes(k, s, len, err);
}

/* Encodes a word onto the current key, most significant byte first. */
static st_status key_append_word(bkeys *k, uint64_t u, st_error *err)
{
    unsigned char b[8];
    for (int j = 0; j < 8; j++) b[j] = (unsigned char)(u >> (56 - 8 * j));
    return bkeys_bytes(k, b, 8, err);
}

/* Encodes an integer onto the current key (its sign bit flipped: the
 * bytes order as the values). */
static st_status key_append_int(bkeys *k, int64_t v, st_error *err)
{
    return key_append_word(k, (uint64_t)v ^ ((uint64_t)1 << 63), err);
}

/* Encodes value i of c onto the current key (caller checked validity). */
static st_status key_append(bkeys *k, const st_column *c, size_t i, st_error *err)
{
    if (is_int_type(c->type)) return key_append_int(k, int_at(c, i), err);
    if (c->type == ST_TYPE_F64) {
        uint64_t u;
        double d = st_column_f64(c)[i];
        if (d == 0) d = 0; /* -0.0 equals 0.0 */
        memcpy(&u, &d, 8);
        return key_append_word(k, u, err);
    }
    size_t len;
    const char *s = st_column_str(c, i, &len);
    return key_append_str(k, s, len, err);
}

/* Renders an encoded key tuple of the given column types as "(a, b)" or "a". */
static void key_render(const char *p, size_t n, const st_type *types, size_t n_types, char *out, size_t cap)
{
    size_t o = 0, pos = 0;
    out[0] = '\0';
    for (size_t t = 0; t < n_types && pos + 8 <= n; t++) {
        uint64_t u = 0;
        for (int j = 0; j < 8; j++) u = (u << 8) | (unsigned char)p[pos + (size_t)j];
        pos += 8;
        char v[64];
        if (types[t] == ST_TYPE_F64) {
            double d;
            memcpy(&d, &u, 8);
            snprintf(v, sizeof v, "%.17g", d);
        } else if (is_int_type(types[t])) {
            snprintf(v, sizeof v, "%" PRId64, (int64_t)(u ^ ((uint64_t)1 << 63)));
        } else {
            size_t len = u <= n - pos ? (size_t)u : n - pos;
            render_bytes(p + pos, len, types[t] == ST_TYPE_STR, v, sizeof v);
            pos += len;
        }
        int w = snprintf(out + o, cap - o, "%s%s", t ? ", " : (n_types > 1 ? "(" : ""), v);
        if (w < 0 || (size_t)w >= cap - o) return;
        o += (size_t)w;
    }
    if (n_types > 1 && o + 1 < cap) {
        out[o++] = ')';
        out[o] = '\0';
    }
}

/* ---- per-table machinery ---------------------------------------------------- */

/* A dictionary entry while ranking: its bytes and index. */
typedef struct rank_ent {
    const char *p;
    uint64_t len;
    uint32_t k;
} rank_ent;

/* A key column's block read through its dictionary (get_key_block):
 * rank[code[i]] orders row i's value among the block's as cmp_rows orders
 * strings (length, then bytes), equal values equal ranks. */
typedef struct keyrank {
    st_column dict;
    uint32_t *code, *rank;
    uint64_t *pick, *len; /* st_column_push_picked's codes and lengths */
    rank_ent *ent;
    size_t cap_code, cap_pick, cap_rank, cap_len, cap_ent;
} keyrank;

/* Blocks whose dictionaries have more entries are compared by value. */
#define KEY_RANK_MAX 4096

typedef struct colcache {
    st_column col;
    size_t chunk;
    bool loaded;
    bool inited;
    bool ranked;  /* col came through kr, whose ranks hold for this chunk */
    bool lazy;    /* ranked, and col not made yet: row i's string is kr->dict's entry kr->code[i] */
    bool runs;    /* an integer key block kept as its runs, col not made yet: rows [re[k-1], re[k]) hold rv[k] */
    uint64_t *rv;
    uint32_t *re;
    size_t n_runs, cap_runs;
    keyrank *kr;  /* NULL until a key check reads the column so */
} colcache;

typedef struct tablectx {
    qtable t;
    const char *layer, *table;
    size_t n_fields;
    colcache *cache;
    size_t chunk;      /* current chunk */
    int64_t row_base;  /* first row of the current chunk */
    uint32_t chunk_n;  /* rows of the current chunk */
} tablectx;

/* Decodes block (chunk, col) into out (initialised to the column's type)
 * and checks it has the chunk's n rows; ST_ERR_CORRUPT naming the table,
 * chunk and column when not, else what read_block returns. */
static st_status read_checked(tablectx *tc, size_t chunk, size_t col, uint32_t n, st_column *out, st_error *err)
{
    ST_TRY(tc->t.vt->read_block(tc->t.impl, chunk, col, out, err));
    if (out->n_rows != n)
        return st_error_set(err, ST_ERR_CORRUPT, "%s.%s: chunk %zu of column '%s' has %zu rows, expected %u", tc->layer,
                            tc->table, chunk, tc->t.vt->field_name(tc->t.impl, col), out->n_rows, (unsigned)n);
    return ST_OK;
}

static st_status make_rows(tablectx *tc, colcache *cc, st_error *err);

static st_status get_block(tablectx *tc, size_t col, const st_column **out, st_error *err)
{
    colcache *cc = &tc->cache[col];
    if (!cc->inited) {
        st_column_init(&cc->col, tc->t.vt->field_type(tc->t.impl, col));
        cc->inited = true;
    }
    if (cc->loaded && cc->chunk == tc->chunk && (cc->lazy || cc->runs)) ST_TRY(make_rows(tc, cc, err));
    if (!cc->loaded || cc->chunk != tc->chunk) {
        cc->loaded = false;
        cc->ranked = cc->lazy = cc->runs = false;
        ST_TRY(read_checked(tc, tc->chunk, col, tc->chunk_n, &cc->col, err));
        cc->loaded = true;
        cc->chunk = tc->chunk;
    }
    *out = &cc->col;
    return ST_OK;
}

static void keyrank_free(keyrank *k)
{
    if (!k) return;
    st_column_free(&k->dict);
    free(k->code);
    free(k->rank);
    free(k->pick);
    free(k->len);
    free(k->ent);
    free(k);
}

/* Room for a chunk of `rows` codes. */
static st_status keyrank_rows(keyrank *k, size_t rows, st_error *err)
{
    ST_TRY(grow((void **)&k->code, &k->cap_code, rows, sizeof *k->code, err));
    return grow((void **)&k->pick, &k->cap_pick, rows, sizeof *k->pick, err);
}

/* Room for ranking a dictionary of n entries. */
static st_status keyrank_dict(keyrank *k, size_t n, st_error *err)
{
    ST_TRY(grow((void **)&k->rank, &k->cap_rank, n, sizeof *k->rank, err));
    ST_TRY(grow((void **)&k->len, &k->cap_len, n, sizeof *k->len, err));
    return grow((void **)&k->ent, &k->cap_ent, n, sizeof *k->ent, err);
}

/* cmp_rows' order of two strings (length, then bytes); ties by index, so
 * the sort is deterministic. */
static int rank_ent_cmp(const void *a, const void *b)
{
    const rank_ent *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    int d = x->len ? memcmp(x->p, y->p, (size_t)x->len) : 0;
    return d ? d : (x->k > y->k) - (x->k < y->k);
}

/* k->rank of the dictionary's n entries: dense ranks, equal strings one. */
static void rank_dict(keyrank *k, size_t n)
{
    for (size_t e = 0; e < n; e++) {
        size_t l;
        k->ent[e] = (rank_ent){st_column_str(&k->dict, e, &l), l, (uint32_t)e};
    }
    qsort(k->ent, n, sizeof *k->ent, rank_ent_cmp);
    uint32_t r = 0;
    for (size_t m = 0; m < n; m++) {
        const rank_ent *a = &k->ent[m], *b = m ? &k->ent[m - 1] : NULL;
        if (b && (a->len != b->len || (a->len && memcmp(a->p, b->p, (size_t)a->len)))) r++;
        k->rank[a->k] = r;
    }
}

/* cc->col made from a lazy block's dictionary and codes: the strings,
 * as read_checked gives them. */
static st_status key_strings(tablectx *tc, colcache *cc, st_error *err)
{
    keyrank *k = cc->kr;
    size_t nd = k->dict.n_rows;
    ST_TRY(keyrank_dict(k, nd, err));
    for (size_t e = 0; e < nd; e++) k->len[e] = k->dict.offsets[e + 1] - k->dict.offsets[e];
    for (size_t i = 0; i < tc->chunk_n; i++) k->pick[i] = k->code[i];
    st_column_reset(&cc->col);
    if (st_column_push_picked(&cc->col, k->dict.bytes, k->dict.offsets, k->len, nd, k->pick, tc->chunk_n) != ST_OK)
        return st_error_set(err, ST_ERR_NOMEM, "out of memory checking keys");
    cc->lazy = false;
    return ST_OK;
}

/* cc->col made from the runs of an integer block read as runs. */
static st_status key_rows(tablectx *tc, colcache *cc, st_error *err)
{
    st_column *c = &cc->col;
    st_column_reset(c);
    if (st_column_reserve(c, tc->chunk_n, 0) != ST_OK) return st_error_set(err, ST_ERR_NOMEM, "out of memory checking keys");
    for (size_t k = 0, i = 0; k < cc->n_runs; k++) {
        int64_t v = (int64_t)cc->rv[k];
        for (; i < cc->re[k]; i++) {
            if (c->type == ST_TYPE_BOOL) ((uint8_t *)c->data)[i] = (uint8_t)v;
            else if (c->type == ST_TYPE_I32) ((int32_t *)c->data)[i] = (int32_t)v;
            else ((int64_t *)c->data)[i] = v;
        }
    }
    c->n_rows = tc->chunk_n;
    cc->runs = false;
    return ST_OK;
}

/* cc->col's rows made, for a block kept as a dictionary or as runs. */
static st_status make_rows(tablectx *tc, colcache *cc, st_error *err)
{
    if (cc->lazy) ST_TRY(key_strings(tc, cc, err));
    if (cc->runs) ST_TRY(key_rows(tc, cc, err));
    return ST_OK;
}

/* Block (tc->chunk, col) of a STR/BYTES key column through its dictionary
 * into cc. A dictionary of at most KEY_RANK_MAX entries gets ranks, and
 * the rows' strings are left unmade (cc->lazy: key_strings makes them
 * when a check needs them whole; a key of a row reads its entry); a
 * larger one makes cc->col the strings, as read_checked gives them.
 * *plain is true when the block has NULLs after all: the caller reads it
 * as get_block does. */
static st_status read_key_dict(tablectx *tc, colcache *cc, size_t col, bool *plain, st_error *err)
{
    keyrank *k = cc->kr;
    *plain = false;
    ST_TRY(keyrank_rows(k, tc->chunk_n ? tc->chunk_n : 1, err));
    ST_TRY(tc->t.vt->read_block_dict(tc->t.impl, tc->chunk, col, &k->dict, k->code, err));
    size_t nd = k->dict.n_rows;
    if (k->dict.null_count) return (*plain = true, ST_OK);
    cc->lazy = true;
    cc->ranked = nd <= KEY_RANK_MAX;
    if (!cc->ranked) return key_strings(tc, cc, err);
    st_column_reset(&cc->col);
    ST_TRY(keyrank_dict(k, nd, err));
    rank_dict(k, nd);
    return ST_OK;
}

static st_status get_key_runs(tablectx *tc, colcache *cc, size_t col, const st_column **out, const colcache **rc,
                               st_error *err);

/* get_block for a key column. A STR/BYTES block without NULLs of a table
 * that reads dictionaries is read through its dictionary, and when that
 * is small, *kr gets its ranks (else NULL): order_rows then compares
 * ranks, not bytes. An integer column of a table that reads runs may come
 * as runs (get_key_runs; *rc, else NULL). */
static st_status get_key_block(tablectx *tc, size_t col, const st_column **out, const keyrank **kr,
                               const colcache **rc, st_error *err)
{
    colcache *cc = &tc->cache[col];
    st_type t = tc->t.vt->field_type(tc->t.impl, col);
    *kr = NULL;
    *rc = NULL;
    if (is_int_type(t) && tc->t.vt->read_block_runs) return get_key_runs(tc, cc, col, out, rc, err);
    if (!is_var_type(t) || !tc->t.vt->read_block_dict) return get_block(tc, col, out, err);
    if (!cc->loaded || cc->chunk != tc->chunk) {
        st_block_info bi;
        ST_TRY(tc->t.vt->block_info(tc->t.impl, tc->chunk, col, &bi, err));
        if (bi.null_count) return get_block(tc, col, out, err);
        if (!cc->inited) {
            st_column_init(&cc->col, t);
            cc->inited = true;
        }
        if (!cc->kr && (cc->kr = calloc(1, sizeof *cc->kr)) != NULL) st_column_init(&cc->kr->dict, t);
        if (!cc->kr) return st_error_set(err, ST_ERR_NOMEM, "out of memory checking keys");
        cc->loaded = cc->ranked = cc->lazy = cc->runs = false;
        bool plain;
        ST_TRY(read_key_dict(tc, cc, col, &plain, err));
        if (plain) return get_block(tc, col, out, err);
        cc->loaded = true;
        cc->chunk = tc->chunk;
    }
    *out = &cc->col;
    *kr = cc->ranked ? cc->kr : NULL;
    return ST_OK;
}

/* get_key_block for an integer column of a table that reads runs: a CONST
 * or RLE block without NULLs of at most a quarter as many runs as rows is
 * kept as its runs (*rc = cc; cc->col left unmade), any other block read
 * as get_block does. */
static st_status get_key_runs(tablectx *tc, colcache *cc, size_t col, const st_column **out, const colcache **rc,
                              st_error *err)
{
    if (!cc->loaded || cc->chunk != tc->chunk) {
        if (!cc->inited) {
            st_column_init(&cc->col, tc->t.vt->field_type(tc->t.impl, col));
            cc->inited = true;
        }
        cc->loaded = cc->ranked = cc->lazy = cc->runs = false;
        size_t cap = tc->chunk_n / 4 ? tc->chunk_n / 4 : 1;
        ST_TRY(grow((void **)&cc->rv, &cc->cap_runs, cap, sizeof *cc->rv, err));
        uint32_t *re = realloc(cc->re, cc->cap_runs * sizeof *re); /* as many as rv */
        if (!re) return st_error_set(err, ST_ERR_NOMEM, "out of memory checking keys");
        cc->re = re;
        st_error e;
        st_status s = tc->t.vt->read_block_runs(tc->t.impl, tc->chunk, col, cc->rv, cc->re, cap, &cc->n_runs, &e);
        if (s == ST_ERR_UNSUPPORTED) return get_block(tc, col, out, err);
        if (s != ST_OK) {
            if (err) *err = e;
            return s;
        }
        st_column_reset(&cc->col);
        cc->runs = cc->loaded = true;
        cc->chunk = tc->chunk;
    }
    *out = &cc->col;
    *rc = cc->runs ? cc : NULL;
    return ST_OK;
}

static int find_field(const qtable *t, const char *name)
{
    size_t n = t->vt->n_fields(t->impl);
    for (size_t i = 0; i < n && i < (size_t)INT32_MAX; i++)
        if (!strcmp(t->vt->field_name(t->impl, i), name)) return (int)i;
    return -1;
}

/* First alternative of ref found in t (with an optional name suffix). */
static int resolve(const qtable *t, const st_qcolref *ref, const char *suffix, char *name_out, size_t cap)
{
    for (size_t a = 0; a < ref->n_names; a++) {
        char name[300];
        snprintf(name, sizeof name, "%s%s", ref->names[a], suffix);
        int i = find_field(t, name);
        if (i >= 0) {
            snprintf(name_out, cap, "%s", name);
            return i;
        }
    }
    return -1;
}

static void colref_text(const st_qcolref *ref, const char *suffix, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t a = 0; a < ref->n_names; a++) {
        int w = snprintf(out + o, cap - o, "%s'%s%s'", a ? " or " : "", ref->names[a], suffix);
        if (w < 0 || (size_t)w >= cap - o) return;
        o += (size_t)w;
    }
}

#define MAX_KEY_COLS 64
#define REF_HIST_MAX 4096 /* largest zone-map range (max - min + 1) referential_hist takes */

typedef struct qstate {
    const st_expectation *e;
    st_qresult *r;
    bool active;                 /* takes chunk steps */
    int col[MAX_KEY_COLS];
    st_type type[MAX_KEY_COLS];
    size_t n_col;
    /* values_in_set / storage_class */
    ikeys iset;
    bkeys sset;
    double *fset;
    size_t n_fset;
    /* unique / no_duplicate_keys */
    ikeys ik;
    bkeys bk;
    bool int_keys;  /* keys are single integers (also for referential) */
    bool per_chunk; /* int_keys whose chunks have disjoint zone-map ranges: ik holds one chunk */
    bool in_order;  /* keys seen so far are non-decreasing: nothing collected, see stream_keys */
    bool all_int;   /* every key column is an integer type: in_order compares typed values */
    bool have_prev; /* in_order: a key has been seen */
    bool prev_dup;  /* in_order: the previous key equals the one before it */
    int64_t prev_i[MAX_KEY_COLS]; /* in_order, all_int: the previous key */
    bkeys cur, prev;              /* in_order: encoded keys (buffers only) of this row and the previous one */
    int8_t *ord;                  /* in_order: a chunk's rows against the row before (order_rows) */
    size_t ord_cap;
    uint64_t dup_rows, dup_keys;  /* int_keys or in_order: tallied so far */
    ikey dsamp[2 * ST_QSAMPLE_MAX];          /* int_keys: first duplicate rows by (value, row) */
    size_t n_dsamp;
    /* referential */
    ikeys t_i;      /* target values */
    bkeys t_b;
    ihset orph_i;   /* distinct orphan values */
    int64_t orph_seen[256]; /* orph_seen[v & 255] == v: v is in orph_i already (entry k starts as k + 1, no value's slot) */
    uint8_t orph[REF_HIST_MAX];  /* referential_hist: value mn + d is not a target key */
    uint8_t seen[REF_HIST_MAX];  /* referential_hist: value mn + d is in the chunk */
    bhset orph_b;
    size_t max_keys_held; /* most keys of this table held at once */
    /* temporal_window */
    bool have_mm;
    int64_t mn, mx;
    /* reject_rate */
    uint64_t count, denom;
    char cols_text[200];  /* resolved column name(s), comma-separated */
} qstate;

static void qstate_free(qstate *q)
{
    ikeys_free(&q->iset);
    bkeys_free(&q->sset);
    free(q->fset);
    ikeys_free(&q->ik);
    bkeys_free(&q->bk);
    bkeys_free(&q->cur);
    bkeys_free(&q->prev);
    free(q->ord);
    ikeys_free(&q->t_i);
    bkeys_free(&q->t_b);
    ihset_free(&q->orph_i);
    bhset_free(&q->orph_b);
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!strcmp(s, "true")) {
        *out = 1;
        return true;
    }
    if (!strcmp(s, "false")) {
        *out = 0;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE) return false;
    *out = v;
    return true;
}

static const char *const class_names[] = {"NULL", "INTEGER", "REAL", "TEXT", "BLOB"};

/* Builds the value set of values_in_set / storage_class for the column type. */
static st_status build_set(qstate *q, tablectx *tc, st_error *err)
{
    const st_expectation *e = q->e;
    st_type t = q->type[0];
    for (size_t i = 0; i < e->n_values; i++) {
        const char *v = e->values[i];
        if (e->kind == ST_Q_STORAGE_CLASS) {
            for (int c = 1; c <= 4; c++)
                if (!strcmp(v, class_names[c])) ST_TRY(ikeys_push(&q->iset, c, 0, err));
        } else if (is_int_type(t)) {
            int64_t x;
            if (!parse_i64(v, &x) || (t == ST_TYPE_BOOL && x != 0 && x != 1)) {
                not_evaluated(q->r, "value '%.40s' is not a valid %s for column '%s' of %s.%s", v, st_type_name(t),
                              q->r->column, tc->layer, tc->table);
                q->active = false;
                return ST_OK;
            }
            ST_TRY(ikeys_push(&q->iset, x, 0, err));
        } else if (t == ST_TYPE_F64) {
            char *end;
            double d = strtod(v, &end);
            if (*v == '\0' || *end != '\0' || isnan(d)) {
                not_evaluated(q->r, "value '%.40s' is not a number for float64 column '%s' of %s.%s", v, q->r->column,
                              tc->layer, tc->table);
                q->active = false;
                return ST_OK;
            }
            size_t cap = q->n_fset;
            ST_TRY(grow((void **)&q->fset, &cap, q->n_fset + 1, sizeof(double), err));
            q->fset[q->n_fset++] = d;
        } else {
            size_t start = q->sset.len;
            ST_TRY(bkeys_bytes(&q->sset, v, strlen(v), err));
            ST_TRY(bkeys_end(&q->sset, start, 0, err));
        }
    }
    ikeys_sort_unique(&q->iset);
    bkeys_seal_unique(&q->sset);
    return ST_OK;
}

static bool fset_has(const qstate *q, double d)
{
    for (size_t i = 0; i < q->n_fset; i++)
        if (q->fset[i] == d) return true;
    return false;
}

/* Reads every block of column col of table t into keys (int or bytes). */
static st_status collect_target(qtable *t, size_t col, bool ints, ikeys *ik, bkeys *bk, st_error *err)
{
    st_status s = ST_OK;
    st_column c;
    st_column_init(&c, t->vt->field_type(t->impl, col));
    size_t nc = t->vt->n_chunks(t->impl);
    for (size_t ch = 0; ch < nc && s == ST_OK; ch++) {
        s = t->vt->read_block(t->impl, ch, col, &c, err);
        for (size_t i = 0; s == ST_OK && i < c.n_rows; i++) {
            if (!st_column_valid(&c, i)) continue;
            if (ints) {
                s = ikeys_push(ik, int_at(&c, i), 0, err);
            } else {
                size_t len, start = bk->len;
                const char *p = st_column_str(&c, i, &len);
                s = bkeys_bytes(bk, p, len, err);
                if (s == ST_OK) s = bkeys_end(bk, start, 0, err);
            }
        }
    }
    st_column_free(&c);
    if (s != ST_OK) return s;
    if (ints) ikeys_sort_unique(ik);
    else bkeys_seal_unique(bk);
    return ST_OK;
}

typedef struct span {
    int64_t lo, hi;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return (x->hi > y->hi) - (x->hi < y->hi);
}

/* Decides whether equal values of integer column col can only meet inside
 * one chunk: *out is true when every chunk holding a value has a zone map
 * and the [min, max] ranges of those chunks are pairwise disjoint (sorted
 * by min, each min above the previous max). Chunks that are all NULL hold
 * no key and do not count. Reads zone maps only; fails only as block_info
 * does, or for memory (16 bytes per chunk, freed before returning). */
static st_status ranges_disjoint(tablectx *tc, size_t col, bool *out, st_error *err)
{
    st_status s = ST_OK;
    qtable *t = &tc->t;
    size_t nc = t->vt->n_chunks(t->impl), m = 0, bytes;
    span *sp = NULL;
    *out = false;
    if (!st_size_mul(nc ? nc : 1, sizeof *sp, &bytes)) return st_error_set(err, ST_ERR_NOMEM, "quality: too many chunks");
    sp = malloc(bytes);
    if (!sp) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
    for (size_t c = 0; c < nc; c++) {
        uint32_t n = t->vt->chunk_rows(t->impl, c);
        if (n == 0) continue;
        st_block_info bi;
        s = t->vt->block_info(t->impl, c, col, &bi, err);
        if (s != ST_OK) goto done;
        if (bi.null_count >= n) continue;
        if (!bi.has_minmax) goto done;
        sp[m++] = (span){bi.min_i64, bi.max_i64};
    }
    qsort(sp, m, sizeof *sp, span_cmp);
    for (size_t i = 1; i < m; i++)
        if (sp[i].lo <= sp[i - 1].hi) goto done;
    *out = true;
done:
    free(sp);
    return s;
}

/* row_count_between: decided from the row count alone. */
static void check_row_count(qstate *q, tablectx *tc, uint64_t n_rows)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    r->observed_kind = ST_QOBS_INT;
    r->observed_i = n_rows > INT64_MAX ? INT64_MAX : (int64_t)n_rows;
    r->rows_checked = n_rows;
    bool ok = (!e->has_lo || r->observed_i >= e->lo_i) && (!e->has_hi || r->observed_i <= e->hi_i);
    if (!ok) {
        char lo[32] = "*", hi[32] = "*";
        if (e->has_lo) snprintf(lo, sizeof lo, "%" PRId64, e->lo_i);
        if (e->has_hi) snprintf(hi, sizeof hi, "%" PRId64, e->hi_i);
        set_msg(r, "%s.%s has %" PRIu64 " rows, expected %s .. %s", tc->layer, tc->table, n_rows, lo, hi);
    }
    conclude(r, ok);
}

/* Resolves the expectation's columns (storage_class reads <c>__class;
 * reject_rate reads source_table) into q->col / q->type / q->cols_text.
 * Returns how many are missing, listed in missing_list (cap bytes). */
static size_t resolve_columns(qstate *q, tablectx *tc, char *missing_list, size_t cap)
{
    const st_expectation *e = q->e;
    qtable *t = &tc->t;
    char name[300], want[600];
    const char *suffix = "";
    if (e->kind == ST_Q_STORAGE_CLASS) {
        size_t l = strlen(e->cols[0].names[0]);
        bool has = l > 7 && !strcmp(e->cols[0].names[0] + l - 7, "__class");
        suffix = has ? "" : "__class";
    }
    size_t missing = 0, o = 0;
    char cols_text[sizeof q->cols_text] = "";
    missing_list[0] = '\0';
    for (size_t i = 0; i < e->n_cols; i++) {
        int idx = resolve(t, &e->cols[i], suffix, name, sizeof name);
        if (idx < 0) {
            colref_text(&e->cols[i], suffix, want, sizeof want);
            size_t l = strlen(missing_list);
            int w = snprintf(missing_list + l, cap - l, "%s%s", missing ? ", " : "", want);
            if (w < 0 || (size_t)w >= cap - l) /* truncated: mark it */
                memcpy(missing_list + cap - 4, "...", 4);
            missing++;
            continue;
        }
        if (q->n_col == MAX_KEY_COLS) continue; /* column_exists only: nothing to read */
        q->col[q->n_col] = idx;
        q->type[q->n_col] = t->vt->field_type(t->impl, (size_t)idx);
        q->n_col++;
        int w = snprintf(cols_text + o, sizeof cols_text - o, "%s%s", o ? "," : "", name);
        if (w > 0 && (size_t)w < sizeof cols_text - o) o += (size_t)w;
    }
    if (e->kind == ST_Q_REJECT_RATE) {
        int idx = find_field(t, "source_table");
        if (idx < 0) {
            snprintf(missing_list, cap, "'source_table'");
            missing = 1;
        } else {
            q->col[0] = idx;
            q->type[0] = t->vt->field_type(t->impl, (size_t)idx);
            q->n_col = 1;
            snprintf(cols_text, sizeof cols_text, "source_table");
        }
    }
    snprintf(q->cols_text, sizeof q->cols_text, "%s", cols_text);
    return missing;
}

/* column_type: decided from the (first) column's type. */
static void check_column_type(qstate *q, tablectx *tc)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    st_type t0 = q->type[0];
    bool ok = false;
    for (size_t i = 0; i < e->n_values; i++)
        if (!strcmp(e->values[i], st_type_name(t0))) ok = true;
    r->observed_kind = ST_QOBS_TEXT;
    snprintf(r->observed_text, sizeof r->observed_text, "%s", st_type_name(t0));
    if (!ok) {
        char types[96] = "";
        for (size_t i = 0, o2 = 0; i < e->n_values; i++) {
            int w = snprintf(types + o2, sizeof types - o2, "%s%s", i ? "|" : "", e->values[i]);
            if (w < 0 || (size_t)w >= sizeof types - o2) break;
            o2 += (size_t)w;
        }
        set_msg(r, "column '%s' of %s.%s is %s, expected %s", q->cols_text, tc->layer, tc->table, st_type_name(t0),
                types);
    }
    conclude(r, ok);
}

/* reject_rate: the denominator is the row count of bronze.<source_table>. */
static st_status setup_reject_rate(qstate *q, tablectx *tc, const qsource *src, st_error *err)
{
    const st_expectation *e = q->e;
    if (!is_var_type(q->type[0])) {
        not_evaluated(q->r, "reject_rate needs a string column 'source_table' in %s.%s", tc->layer, tc->table);
        return ST_OK;
    }
    qtable bt;
    st_status s = src->open(src->ctx, "bronze", e->source_table, &bt, err);
    if (s == ST_ERR_NOTFOUND) {
        not_evaluated(q->r, "table bronze.%s not found (reject_rate needs its row count)", e->source_table);
        return ST_OK;
    }
    if (s != ST_OK) return s;
    q->denom = bt.vt->n_rows(bt.impl);
    bt.vt->close(bt.impl);
    q->active = true;
    return ST_OK;
}

/* referential: collects the target column's distinct values (q->t_i or
 * q->t_b), when the target exists and its type matches. */
static st_status setup_referential(qstate *q, tablectx *tc, const qsource *src, st_error *err)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    st_type t0 = q->type[0];
    qtable tt;
    st_status s = src->open(src->ctx, e->ref_layer, e->ref_table, &tt, err);
    if (s == ST_ERR_NOTFOUND) {
        not_evaluated(r, "referential target table %s.%s not found", e->ref_layer, e->ref_table);
        return ST_OK;
    }
    if (s != ST_OK) return s;
    int tcol = find_field(&tt, e->ref_column);
    st_type tt_type = tcol >= 0 ? tt.vt->field_type(tt.impl, (size_t)tcol) : ST_TYPE_I64;
    if (tcol < 0) {
        not_evaluated(r, "referential target column '%s' not found in %s.%s", e->ref_column, e->ref_layer, e->ref_table);
    } else if (!((is_int_type(t0) && is_int_type(tt_type)) || (is_var_type(t0) && is_var_type(tt_type)))) {
        not_evaluated(r, "referential type mismatch: %s.%s.%s is %s, %s.%s.%s is %s", tc->layer, tc->table,
                      q->cols_text, st_type_name(t0), e->ref_layer, e->ref_table, e->ref_column, st_type_name(tt_type));
    } else {
        q->int_keys = is_int_type(t0);
        for (int k = 0; k < 256; k++) q->orph_seen[k] = k + 1;
        s = collect_target(&tt, (size_t)tcol, q->int_keys, &q->t_i, &q->t_b, err);
        if (s == ST_OK) q->active = true;
    }
    tt.vt->close(tt.impl);
    return s;
}

/* Whether the expectation can be evaluated on a column of type t0; if
 * not, the result says why (not evaluated). */
static bool type_fits(qstate *q, tablectx *tc, st_type t0)
{
    const char *need = NULL;
    switch (q->e->kind) {
    case ST_Q_VALUES_BETWEEN:
        if (!is_int_type(t0) && t0 != ST_TYPE_F64) need = "values_between needs a numeric column";
        break;
    case ST_Q_TEMPORAL_WINDOW:
        if (t0 != ST_TYPE_I32 && t0 != ST_TYPE_I64) need = "temporal_window needs an integer column";
        break;
    case ST_Q_STORAGE_CLASS:
        if (t0 != ST_TYPE_I32 && t0 != ST_TYPE_I64) need = "storage_class reads an integer class column";
        break;
    default: break;
    }
    if (need)
        not_evaluated(q->r, "%s; '%s' of %s.%s is %s", need, q->cols_text, tc->layer, tc->table, st_type_name(t0));
    return need == NULL;
}

/* Resolves columns and prepares one expectation's state. */
static st_status setup(qstate *q, tablectx *tc, const qsource *src, st_error *err)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    r->evaluated = true;
    if (e->kind == ST_Q_ROW_COUNT_BETWEEN) {
        check_row_count(q, tc, tc->t.vt->n_rows(tc->t.impl));
        return ST_OK;
    }
    char missing_list[200];
    size_t missing = resolve_columns(q, tc, missing_list, sizeof missing_list);
    if (e->kind == ST_Q_COLUMN_EXISTS) {
        r->observed_kind = ST_QOBS_INT;
        r->observed_i = (int64_t)missing;
        r->rows_checked = 0;
        r->unexpected_count = missing;
        if (missing) set_msg(r, "missing in %s.%s: %s", tc->layer, tc->table, missing_list);
        conclude(r, missing == 0);
        return ST_OK;
    }
    if (missing) {
        not_evaluated(r, "column %s not found in %s.%s", missing_list, tc->layer, tc->table);
        return ST_OK;
    }
    st_type t0 = q->type[0];
    if (!type_fits(q, tc, t0)) return ST_OK;
    switch (e->kind) {
    case ST_Q_COLUMN_TYPE: check_column_type(q, tc); return ST_OK;
    case ST_Q_STORAGE_CLASS:
    case ST_Q_VALUES_IN: q->active = true; return build_set(q, tc, err);
    case ST_Q_REJECT_RATE: return setup_reject_rate(q, tc, src, err);
    case ST_Q_REFERENTIAL: return setup_referential(q, tc, src, err);
    default: break;
    }
    bool keys = e->kind == ST_Q_UNIQUE || e->kind == ST_Q_NO_DUPLICATE_KEYS;
    q->int_keys = keys && q->n_col == 1 && is_int_type(t0);
    if (q->int_keys) ST_TRY(ranges_disjoint(tc, (size_t)q->col[0], &q->per_chunk, err));
    if (keys && !q->per_chunk) {
        q->in_order = true;
        q->all_int = true;
        for (size_t j = 0; j < q->n_col; j++)
            if (!is_int_type(q->type[j])) q->all_int = false;
    }
    q->active = true;
    return ST_OK;
}

/* ---- chunk steps ------------------------------------------------------------ */

static bool int_in_range(const st_expectation *e, int64_t v)
{
    if (e->has_lo && (e->lo_is_int ? v < e->lo_i : (double)v < e->lo)) return false;
    if (e->has_hi && (e->hi_is_int ? v > e->hi_i : (double)v > e->hi)) return false;
    return true;
}

static bool f64_in_range(const st_expectation *e, double v)
{
    if (isnan(v)) return false;
    if (e->has_lo && v < e->lo) return false;
    if (e->has_hi && v > e->hi) return false;
    return true;
}

/* Can the zone map [mn, mx] pass a chunk for a set? true when every integer
 * in the range is in the set (small ranges only). */
static bool range_in_set(const ikeys *set, int64_t mn, int64_t mx, bool zero_ok)
{
    if (mx < mn) return false;
    if ((uint64_t)mx - (uint64_t)mn >= 64) return false;
    for (int64_t v = mn;; v++) {
        if (!(zero_ok && v == 0) && !ikeys_has(set, v)) return false;
        if (v == mx) break;
    }
    return true;
}

/* Tallies the repeats in q->ik, sorted by (value, row): every row after
 * the first of its value is a duplicate row, every value with such a row a
 * repeated key. The samples are the first ST_QSAMPLE_MAX duplicate rows in
 * (value, row) order over everything tallied so far: this run's first
 * ST_QSAMPLE_MAX join the kept ones, which are re-sorted and cut. Called
 * once on all keys, or once per chunk when no value can be in two chunks;
 * then every value's rows are tallied together and the overall first
 * samples are among each chunk's first, so both give the same result. */
static void tally_int_dups(qstate *q)
{
    const ikeys *k = &q->ik;
    size_t base = q->n_dsamp;
    for (size_t i = 1; i < k->n; i++) {
        if (k->a[i].v != k->a[i - 1].v) continue;
        q->dup_rows++;
        if (i == 1 || k->a[i - 2].v != k->a[i].v) q->dup_keys++;
        if (q->n_dsamp - base < ST_QSAMPLE_MAX) q->dsamp[q->n_dsamp++] = k->a[i];
    }
    if (base > 0 && q->n_dsamp > base) qsort(q->dsamp, q->n_dsamp, sizeof *q->dsamp, ikey_cmp);
    if (q->n_dsamp > ST_QSAMPLE_MAX) q->n_dsamp = ST_QSAMPLE_MAX;
}

static void note_held(qstate *q, size_t n)
{
    if (n > q->max_keys_held) q->max_keys_held = n;
}

/* Adds the keys of rows [0, n) of one chunk (first row row_base) to the
 * collector, ik for a single integer column, else bk; rows with a NULL key
 * column are skipped. Counts the keys into *checked when it is not NULL.
 * Fails only for memory. */
static st_status collect_keys(qstate *q, const st_column *const *cols, size_t n, int64_t row_base, uint64_t *checked,
                              st_error *err)
{
    for (size_t i = 0; i < n; i++) {
        bool any_null = false;
        for (size_t j = 0; j < q->n_col; j++)
            if (!st_column_valid(cols[j], i)) any_null = true;
        if (any_null) continue;
        if (checked) (*checked)++;
        int64_t row = row_base + (int64_t)i;
        if (q->int_keys) {
            ST_TRY(ikeys_push(&q->ik, int_at(cols[0], i), row, err));
        } else {
            size_t start = q->bk.len;
            for (size_t j = 0; j < q->n_col; j++) ST_TRY(key_append(&q->bk, cols[j], i, err));
            ST_TRY(bkeys_end(&q->bk, start, row, err));
        }
    }
    return ST_OK;
}

/* Row i's value of an integer key column: from its runs (rc, when kept
 * so: the run whose end is the first past i, by bisection) or its rows. */
static int64_t key_int(const st_column *c, const colcache *rc, size_t i)
{
    if (!rc) return int_at(c, i);
    size_t lo = 0, hi = rc->n_runs - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rc->re[mid] > i) hi = mid;
        else lo = mid + 1;
    }
    return (int64_t)rc->rv[lo];
}

/* Encodes row i's key into the (reset) buffer of k; a column with ranks
 * (kr[j], kr may be NULL) by its dictionary's entry, one kept as runs
 * (rc[j], rc may be NULL) by its run's value. */
static st_status encode_key(const qstate *q, const st_column *const *cols, const keyrank *const *kr,
                            const colcache *const *rc, size_t i, bkeys *k, st_error *err)
{
    k->len = 0;
    for (size_t j = 0; j < q->n_col; j++) {
        if (rc && rc[j]) {
            ST_TRY(key_append_int(k, key_int(cols[j], rc[j], i), err));
        } else if (kr && kr[j]) {
            size_t len;
            const char *s = st_column_str(&kr[j]->dict, kr[j]->code[i], &len);
            ST_TRY(key_append_str(k, s, len, err));
        } else {
            ST_TRY(key_append(k, cols[j], i, err));
        }
    }
    return ST_OK;
}

/* The order of two words of bytes as memcmp gives it: loaded
 * little-endian, so byte-swapped to compare the first byte first. */
static inline int word_order(uint64_t a, uint64_t b)
{
    if (a == b) return 0;
    return __builtin_bswap64(a) < __builtin_bswap64(b) ? -1 : 1;
}

/* memcmp's order of n bytes (its sign), inline for the short strings keys
 * are made of: a call per row was a fifth of a mixed key's streaming.
 * 4..16 bytes take two overlapping word loads each: the first word, then
 * (equal up to there) the last, whose overlap with the first is equal. */
static inline int bytes_order(const char *x, const char *y, size_t n)
{
    if (n > 16) return memcmp(x, y, n);
    if (n >= 8) {
        uint64_t a, b, c, d;
        memcpy(&a, x, 8);
        memcpy(&b, y, 8);
        if (a != b) return word_order(a, b);
        memcpy(&c, x + n - 8, 8);
        memcpy(&d, y + n - 8, 8);
        return word_order(c, d);
    }
    if (n >= 4) {
        uint32_t a, b, c, d;
        memcpy(&a, x, 4);
        memcpy(&b, y, 4);
        if (a != b) return word_order((uint64_t)a << 32, (uint64_t)b << 32);
        memcpy(&c, x + n - 4, 4);
        memcpy(&d, y + n - 4, 4);
        return word_order((uint64_t)c << 32, (uint64_t)d << 32);
    }
    for (size_t k = 0; k < n; k++)
        if (x[k] != y[k]) return (unsigned char)x[k] < (unsigned char)y[k] ? -1 : 1;
    return 0;
}

/* Rows a and b of one chunk's key columns compared as bytes_cmp compares
 * their encodings (key_append), without encoding them: an integer as a
 * signed value, a float by its bits (unsigned, -0.0 as 0.0), a string by
 * its length and then its bytes. Each field's encoding is fixed-width or
 * length-prefixed, so comparing field by field orders alike. */
static int cmp_rows(const qstate *q, const st_column *const *cols, size_t a, size_t b)
{
    for (size_t j = 0; j < q->n_col; j++) {
        const st_column *c = cols[j];
        if (is_int_type(c->type)) {
            int64_t x = int_at(c, a), y = int_at(c, b);
            if (x != y) return x < y ? -1 : 1;
        } else if (c->type == ST_TYPE_F64) {
            double dx = st_column_f64(c)[a], dy = st_column_f64(c)[b];
            uint64_t x, y;
            if (dx == 0) dx = 0;
            if (dy == 0) dy = 0;
            memcpy(&x, &dx, 8);
            memcpy(&y, &dy, 8);
            if (x != y) return x < y ? -1 : 1;
        } else {
            size_t lx, ly;
            const char *x = st_column_str(c, a, &lx), *y = st_column_str(c, b, &ly);
            if (lx != ly) return lx < ly ? -1 : 1;
            int d = bytes_order(x, y, lx);
            if (d) return d;
        }
    }
    return 0;
}

/* ord[i] = cmp_rows(q, cols, i, i - 1) for rows 1 <= i < n of a chunk
 * without NULLs in its key: a column at a time over the whole chunk, each
 * deciding the rows the columns before it left equal (0), so the integer
 * columns are loops the compiler vectorises and strings are compared only
 * where the columns before them tie. cmp_rows is its specification (and
 * the test's). ord[0] is left 0. */
static void order_rows(const qstate *q, const st_column *const *cols, const keyrank *const *kr,
                       const colcache *const *rc, size_t n, int8_t *ord)
{
    memset(ord, 0, n);
    for (size_t j = 0; j < q->n_col; j++) {
        const st_column *c = cols[j];
        if (rc && rc[j]) { /* runs: a row differs from the one before only where a run starts */
            const colcache *x = rc[j];
            for (size_t k = 1; k < x->n_runs; k++) {
                size_t i = x->re[k - 1];
                int64_t a = (int64_t)x->rv[k], b = (int64_t)x->rv[k - 1];
                ord[i] = (int8_t)(ord[i] ? ord[i] : (a > b) - (a < b));
            }
            continue;
        }
        if (kr && kr[j]) { /* a string column by its dictionary's ranks */
            const uint32_t *code = kr[j]->code, *rank = kr[j]->rank;
            uint32_t y = n ? rank[code[0]] : 0; /* the row before's rank, carried: one lookup a row */
            for (size_t i = 1; i < n; i++) {
                uint32_t x = rank[code[i]];
                int d = (x > y) - (x < y);
                ord[i] = (int8_t)(ord[i] ? ord[i] : d);
                y = x;
            }
            continue;
        }
        switch (c->type) {
#define ORDER_BY(T, V)                                                       \
    do {                                                                     \
        const T *v = V;                                                      \
        for (size_t i = 1; i < n; i++) {                                     \
            int d = (v[i] > v[i - 1]) - (v[i] < v[i - 1]);                   \
            ord[i] = (int8_t)(ord[i] ? ord[i] : d);                          \
        }                                                                    \
    } while (0)
        case ST_TYPE_BOOL: ORDER_BY(uint8_t, st_column_bool(c)); break;
        case ST_TYPE_I32: ORDER_BY(int32_t, st_column_i32(c)); break;
        case ST_TYPE_I64: ORDER_BY(int64_t, st_column_i64(c)); break;
#undef ORDER_BY
        case ST_TYPE_F64:
            for (size_t i = 1; i < n; i++)
                if (!ord[i]) {
                    double dx = st_column_f64(c)[i], dy = st_column_f64(c)[i - 1];
                    uint64_t x, y;
                    if (dx == 0) dx = 0;
                    if (dy == 0) dy = 0;
                    memcpy(&x, &dx, 8);
                    memcpy(&y, &dy, 8);
                    ord[i] = (int8_t)((x > y) - (x < y));
                }
            break;
        default:
            for (size_t i = 1; i < n; i++)
                if (!ord[i]) {
                    size_t lx, ly;
                    const char *x = st_column_str(c, i, &lx), *y = st_column_str(c, i - 1, &ly);
                    int d = lx != ly ? (lx < ly ? -1 : 1) : bytes_order(x, y, lx); /* memcmp's sign */
                    ord[i] = (int8_t)((d > 0) - (d < 0));
                }
            break;
        }
    }
}

/* The first i in [from, n) with ord[i] <= 0, or n: eight entries a word
 * (an entry is not above 0 when it is 0 or its sign bit is set). */
static size_t first_not_above(const int8_t *ord, size_t from, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = from;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, ord + i, 8);
        uint64_t hit = (((w - ones) & ~w) | w) & high; /* a zero byte, or a negative one */
        if (hit) return i + (size_t)__builtin_ctzll(hit) / 8;
    }
    while (i < n && ord[i] > 0) i++;
    return i;
}

/* The ordered path of unique / no_duplicate_keys: walks one chunk's keys
 * comparing each with the previous key (carried over from earlier chunks).
 * While no key is below its predecessor, the (key, row) order the
 * collector sorts into is the row order, so a row equal to the previous
 * key is exactly a duplicate row the collector's tally would count, the
 * first such row of a run a repeated key, and the first ST_QSAMPLE_MAX of
 * them in row order its samples: they are counted and sampled here and
 * nothing is held. The comparison is the collector's: the encoded bytes
 * (bytes_cmp) against the key carried from the chunk before, and inside a
 * chunk (or for keys of integer columns only, always) the values compared
 * column by column (cmp_rows), which orders alike. *still is false when a key below its predecessor is
 * met: then this chunk's counts and every sample are undone, q leaves the
 * ordered path and the caller collects instead. Fails only for memory. */
static st_status stream_keys(qstate *q, tablectx *tc, const st_column *const *cols, const keyrank *const *kr,
                             const colcache *const *rc, bool *still, st_error *err)
{
    st_qresult *r = q->r;
    uint64_t checked0 = r->rows_checked;
    int64_t cur_i[MAX_KEY_COLS];
    size_t pi = SIZE_MAX; /* this chunk's last key row; before it, q->prev holds the last key encoded */
    bool nulls = false;   /* rows are tested for NULLs only when a key column has some */
    for (size_t j = 0; j < q->n_col; j++) nulls |= cols[j]->null_count != 0;
    *still = true;
    /* without NULLs, rows after the first compared a column at a time */
    const int8_t *ord = NULL;
    if (!nulls && tc->chunk_n > 1) {
        if (tc->chunk_n > q->ord_cap) {
            int8_t *o = realloc(q->ord, tc->chunk_n);
            if (!o) return st_error_set(err, ST_ERR_NOMEM, "out of memory checking keys");
            q->ord = o;
            q->ord_cap = tc->chunk_n;
        }
        order_rows(q, cols, kr, rc, tc->chunk_n, q->ord);
        ord = q->ord;
    }
    for (size_t i = 0; i < tc->chunk_n; i++) {
        bool any_null = false;
        for (size_t j = 0; nulls && j < q->n_col; j++)
            if (!st_column_valid(cols[j], i)) any_null = true;
        if (any_null) continue;
        if (ord && i > 0 && ord[i] > 0) { /* a run of rows each above the one before: no duplicate */
            size_t j = first_not_above(ord, i + 1, tc->chunk_n);
            r->rows_checked += j - i;
            q->prev_dup = false;
            pi = j - 1;
            i = j - 1;
            continue;
        }
        int c = 1;
        if (ord && i > 0) {
            c = ord[i];
        } else if (q->all_int) {
            for (size_t j = 0; j < q->n_col; j++) cur_i[j] = key_int(cols[j], rc[j], i);
            if (q->have_prev) {
                c = 0;
                for (size_t j = 0; j < q->n_col && c == 0; j++)
                    c = cur_i[j] < q->prev_i[j] ? -1 : cur_i[j] > q->prev_i[j];
            }
        } else if (pi != SIZE_MAX) {
            c = cmp_rows(q, cols, i, pi);
        } else {
            ST_TRY(encode_key(q, cols, kr, rc, i, &q->cur, err));
            if (q->have_prev) c = bytes_cmp(q->cur.buf, q->cur.len, q->prev.buf, q->prev.len);
        }
        if (c < 0) {
            r->rows_checked = checked0;
            r->n_sample = 0;
            q->dup_rows = q->dup_keys = 0;
            q->in_order = false;
            bkeys_free(&q->cur);
            bkeys_free(&q->prev);
            *still = false;
            return ST_OK;
        }
        r->rows_checked++;
        if (c == 0) {
            q->dup_rows++;
            if (!q->prev_dup) q->dup_keys++;
            q->prev_dup = true;
            if (r->n_sample < ST_QSAMPLE_MAX) {
                char v[sizeof r->sample[0].value];
                ST_TRY(encode_key(q, cols, kr, rc, i, &q->cur, err));
                key_render(q->cur.buf, q->cur.len, q->type, q->n_col, v, sizeof v);
                add_sample(r, tc->row_base + (int64_t)i, v);
            }
        } else {
            q->prev_dup = false;
        }
        if (!q->all_int) pi = i;
        else if (!ord || i == 0) memcpy(q->prev_i, cur_i, q->n_col * sizeof *cur_i);
        q->have_prev = true;
    }
    if (ord && q->all_int) /* the chunk's last key, carried */
        for (size_t j = 0; j < q->n_col; j++) q->prev_i[j] = key_int(cols[j], rc[j], tc->chunk_n - 1);
    if (pi != SIZE_MAX) ST_TRY(encode_key(q, cols, kr, rc, pi, &q->prev, err)); /* carried to the next chunk */
    note_held(q, q->have_prev ? 1 : 0);
    return ST_OK;
}

/* Leaving the ordered path at chunk tc->chunk: decodes the key columns of
 * chunks 0 .. tc->chunk - 1 again (into scratch columns, not the shared
 * cache, which holds the current chunk) and collects their keys, so the
 * collector ends up with what it would have held had it collected from the
 * start. Their rows were counted already and chunks_decoded is left alone,
 * so the result reads as the collecting path's. Fails as read_checked does
 * or for memory. */
static st_status recollect(qstate *q, tablectx *tc, st_error *err)
{
    st_status s = ST_OK;
    st_column cols[MAX_KEY_COLS];
    const st_column *cp[MAX_KEY_COLS];
    for (size_t j = 0; j < q->n_col; j++) {
        st_column_init(&cols[j], q->type[j]);
        cp[j] = &cols[j];
    }
    int64_t row_base = 0;
    for (size_t ch = 0; ch < tc->chunk && s == ST_OK; ch++) {
        uint32_t n = tc->t.vt->chunk_rows(tc->t.impl, ch);
        for (size_t j = 0; j < q->n_col && s == ST_OK; j++)
            if (n > 0) s = read_checked(tc, ch, (size_t)q->col[j], n, &cols[j], err);
        if (s == ST_OK && n > 0) s = collect_keys(q, cp, n, row_base, NULL, err);
        if (s == ST_OK) note_held(q, q->int_keys ? q->ik.n : q->bk.n);
        row_base += n;
    }
    for (size_t j = 0; j < q->n_col; j++) st_column_free(&cols[j]);
    return s;
}

/* not_null / completeness: counted from the chunk's block info bi; not_null
 * decodes a chunk with NULLs only for samples. */
static st_status step_nulls(qstate *q, tablectx *tc, size_t col, uint32_t n, const st_block_info *bi, st_error *err)
{
    st_qresult *r = q->r;
    const st_column *c;
    r->rows_checked += n;
    r->unexpected_count += bi->null_count;
    if (q->e->kind == ST_Q_NOT_NULL && bi->null_count > 0 && r->n_sample < ST_QSAMPLE_MAX) {
        ST_TRY(get_block(tc, col, &c, err));
        r->chunks_decoded++;
        for (size_t i = 0; i < n && r->n_sample < ST_QSAMPLE_MAX; i++)
            if (!st_column_valid(c, i)) add_sample(r, tc->row_base + (int64_t)i, "NULL");
    } else {
        r->chunks_skipped++;
    }
    return ST_OK;
}

/* Whether the present value i of c meets values_between, temporal_window,
 * values_in or storage_class (temporal_window also widens q's min/max
 * when the chunk has no zone map: has_minmax false). */
static bool value_ok(qstate *q, const st_column *c, size_t i, bool intcol, bool has_minmax)
{
    const st_expectation *e = q->e;
    if (intcol) {
        int64_t v = int_at(c, i);
        bool ok;
        if (e->kind == ST_Q_VALUES_IN) ok = ikeys_has(&q->iset, v);
        else if (e->kind == ST_Q_STORAGE_CLASS) ok = v == 0 || ikeys_has(&q->iset, v);
        else ok = int_in_range(e, v);
        if (e->kind == ST_Q_TEMPORAL_WINDOW && !has_minmax) {
            if (!q->have_mm || v < q->mn) q->mn = v;
            if (!q->have_mm || v > q->mx) q->mx = v;
            q->have_mm = true;
        }
        return ok;
    }
    if (c->type == ST_TYPE_F64) {
        double v = st_column_f64(c)[i];
        return e->kind == ST_Q_VALUES_IN ? fset_has(q, v) : f64_in_range(e, v);
    }
    size_t len;
    const char *s = st_column_str(c, i, &len);
    return bkeys_has(&q->sset, s, len);
}

/* values_between / temporal_window / values_in / storage_class: a chunk
 * whose zone map (in bi) passes is counted without decoding; otherwise
 * every present value is checked. */
static st_status step_values(qstate *q, tablectx *tc, size_t col, uint32_t n, const st_block_info *bi, st_error *err)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    const st_column *c;
    uint64_t present = bi->null_count <= n ? n - bi->null_count : 0;
    bool intcol = is_int_type(q->type[0]);
    if (present == 0) {
        r->chunks_skipped++;
        return ST_OK;
    }
    if (intcol && bi->has_minmax) {
        bool pass;
        if (e->kind == ST_Q_VALUES_IN || e->kind == ST_Q_STORAGE_CLASS)
            pass = range_in_set(&q->iset, bi->min_i64, bi->max_i64, e->kind == ST_Q_STORAGE_CLASS);
        else
            pass = int_in_range(e, bi->min_i64) && int_in_range(e, bi->max_i64);
        if (e->kind == ST_Q_TEMPORAL_WINDOW) {
            if (!q->have_mm || bi->min_i64 < q->mn) q->mn = bi->min_i64;
            if (!q->have_mm || bi->max_i64 > q->mx) q->mx = bi->max_i64;
            q->have_mm = true;
        }
        if (pass) {
            r->rows_checked += present;
            r->chunks_skipped++;
            return ST_OK;
        }
    }
    ST_TRY(get_block(tc, col, &c, err));
    r->chunks_decoded++;
    for (size_t i = 0; i < n; i++) {
        if (!st_column_valid(c, i)) continue;
        bool ok = value_ok(q, c, i, intcol, bi->has_minmax);
        r->rows_checked++;
        if (!ok) {
            r->unexpected_count++;
            add_sample_cell(r, tc->row_base + (int64_t)i, c, i);
        }
    }
    return ST_OK;
}

/* True when integer column c has no NULL among its n rows and each value
 * is above the one before. */
static bool chunk_strictly_increasing(const st_column *c, uint32_t n)
{
    if (c->null_count) return false;
    bool up = true;
    if (c->type == ST_TYPE_I64) {
        /* an OR of compares, which the compiler vectorises */
        const int64_t *v = st_column_i64(c);
        uint64_t bad = 0;
        for (size_t i = 1; i < n; i++) bad |= (uint64_t)(v[i] <= v[i - 1]);
        up = bad == 0;
    } else {
        for (size_t i = 1; i < n; i++) up &= int_at(c, i) > int_at(c, i - 1);
    }
    return up;
}

/* The rows of the key columns read lazily (get_key_block: dictionaries,
 * runs) made. */
static st_status all_key_rows(qstate *q, tablectx *tc, st_error *err)
{
    for (size_t j = 0; j < q->n_col; j++) ST_TRY(make_rows(tc, &tc->cache[q->col[j]], err));
    return ST_OK;
}

/* unique / no_duplicate_keys: keys streamed while they arrive in order,
 * else collected (per chunk when the chunks' ranges are disjoint). */

static st_status step_keys(qstate *q, tablectx *tc, uint32_t n, st_error *err)
{
    const st_column *cols[MAX_KEY_COLS];
    const keyrank *kr[MAX_KEY_COLS];
    const colcache *rc[MAX_KEY_COLS];
    bool nulls = false;
    for (size_t j = 0; j < q->n_col; j++) {
        ST_TRY(get_key_block(tc, (size_t)q->col[j], &cols[j], &kr[j], &rc[j], err));
        nulls |= cols[j]->null_count != 0;
    }
    q->r->chunks_decoded++;
    /* keys streamed a column at a time (no NULLs, rows to compare) read a
     * few rows' values through the dictionaries and runs; every other path
     * reads the rows */
    if (q->per_chunk || !q->in_order || nulls || n <= 1) {
        ST_TRY(all_key_rows(q, tc, err));
        for (size_t j = 0; j < q->n_col; j++) rc[j] = NULL;
    }
    if (q->per_chunk && chunk_strictly_increasing(cols[0], n)) {
        /* all distinct: the sort and tally would find nothing */
        q->r->rows_checked += n;
        return ST_OK;
    }
    if (q->in_order) {
        bool still;
        ST_TRY(stream_keys(q, tc, cols, kr, rc, &still, err));
        if (still) return ST_OK;
        ST_TRY(all_key_rows(q, tc, err));
        ST_TRY(recollect(q, tc, err));
    }
    ST_TRY(collect_keys(q, cols, n, tc->row_base, &q->r->rows_checked, err));
    note_held(q, q->int_keys ? q->ik.n : q->bk.n);
    if (q->per_chunk) {
        ikeys_sort(&q->ik);
        tally_int_dups(q);
        q->ik.n = 0;
    }
    return ST_OK;
}

/* referential over int64 keys without NULLs whose zone map [mn, mx] is a
 * small range: each value of the range looked up in the target once
 * (orph[]), then one pass over the rows counts the orphan rows and marks
 * the values seen; the rows are scanned again only for samples. The same
 * counts, orphan values and samples as the row loop. *done is false when
 * a value lies outside [mn, mx] (a zone map that lies): the row loop then
 * takes the chunk, nothing having been counted. */
static st_status referential_hist(qstate *q, tablectx *tc, const st_column *c, uint32_t n, int64_t mn, int64_t mx,
                                  bool *done, st_error *err)
{
    st_qresult *r = q->r;
    const int64_t *v = st_column_i64(c);
    size_t width = (size_t)((uint64_t)mx - (uint64_t)mn) + 1;
    uint64_t off = (uint64_t)mn, outside = 0, orphans = 0;
    uint8_t *orph = q->orph, *seen = q->seen;
    bool any = false;
    for (size_t d = 0; d < width; d++) {
        orph[d] = !ikeys_has(&q->t_i, (int64_t)(off + d));
        any |= orph[d];
    }
    if (!any) { /* every value of the range is a target key: count only */
        for (size_t i = 0; i < n; i++) outside |= (uint64_t)v[i] - off >= width;
    } else {
        memset(seen, 0, width);
        for (size_t i = 0; i < n; i++) {
            uint64_t o = (uint64_t)v[i] - off;
            outside |= o >= width;
            o = o < width ? o : 0;
            orphans += orph[o];
            seen[o] = 1;
        }
    }
    *done = !outside;
    if (outside) return ST_OK;
    r->rows_checked += n;
    r->unexpected_count += orphans;
    for (size_t d = 0; orphans && d < width; d++)
        if (seen[d] && orph[d]) ST_TRY(ihset_add(&q->orph_i, (int64_t)(off + d), err));
    for (size_t i = 0; orphans && i < n && r->n_sample < ST_QSAMPLE_MAX; i++)
        if (orph[(uint64_t)v[i] - off]) add_sample_cell(r, tc->row_base + (int64_t)i, c, i);
    return ST_OK;
}

/* referential: every present value not among the target's is an orphan
 * (distinct orphans are kept). An integer chunk whose zone map lies in a
 * gapless run of target keys has none and is not decoded; one with a small
 * range is counted in one pass with a lookup per value of the range
 * (referential_hist). */
static st_status step_referential(qstate *q, tablectx *tc, size_t col, uint32_t n, st_error *err)
{
    st_qresult *r = q->r;
    const st_column *c;
    st_block_info bi = {0};
    if (q->int_keys) {
        ST_TRY(tc->t.vt->block_info(tc->t.impl, tc->chunk, col, &bi, err));
        if (bi.null_count >= n) {
            r->chunks_skipped++;
            return ST_OK;
        }
        if (bi.has_minmax && ikeys_has_range(&q->t_i, bi.min_i64, bi.max_i64)) {
            r->rows_checked += n - bi.null_count;
            r->chunks_skipped++;
            return ST_OK;
        }
    }
    ST_TRY(get_block(tc, col, &c, err));
    r->chunks_decoded++;
    const int64_t *iv = q->int_keys && c->type == ST_TYPE_I64 && !c->null_count ? st_column_i64(c) : NULL;
    if (iv && bi.has_minmax && bi.min_i64 <= bi.max_i64 && (uint64_t)bi.max_i64 - (uint64_t)bi.min_i64 < REF_HIST_MAX) {
        bool done;
        ST_TRY(referential_hist(q, tc, c, n, bi.min_i64, bi.max_i64, &done, err));
        if (done) {
            note_held(q, q->orph_i.n);
            return ST_OK;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!st_column_valid(c, i)) continue;
        r->rows_checked++;
        int64_t row = tc->row_base + (int64_t)i;
        if (q->int_keys) {
            int64_t v = int_at(c, i);
            if (ikeys_has(&q->t_i, v)) continue;
            int64_t *seen = &q->orph_seen[(uint64_t)v & 255];
            if (*seen != v) ST_TRY(ihset_add(&q->orph_i, v, err));
            *seen = v;
        } else {
            size_t len;
            const char *s = st_column_str(c, i, &len);
            if (bkeys_has(&q->t_b, s, len)) continue;
            ST_TRY(bhset_add(&q->orph_b, s, len, err));
        }
        r->unexpected_count++;
        add_sample_cell(r, row, c, i);
    }
    note_held(q, q->int_keys ? q->orph_i.n : q->orph_b.keys.n);
    return ST_OK;
}

/* reject_rate: counts the rows whose source_table is the expectation's. */
static st_status step_reject_rate(qstate *q, tablectx *tc, size_t col, uint32_t n, st_error *err)
{
    const st_expectation *e = q->e;
    const st_column *c;
    ST_TRY(get_block(tc, col, &c, err));
    q->r->chunks_decoded++;
    size_t want = strlen(e->source_table);
    for (size_t i = 0; i < n; i++) {
        if (!st_column_valid(c, i)) continue;
        q->r->rows_checked++;
        size_t len;
        const char *s = st_column_str(c, i, &len);
        if (len == want && !memcmp(s, e->source_table, len)) q->count++;
    }
    return ST_OK;
}

/* One chunk (tc->chunk, tc->chunk_n rows from tc->row_base) of an active
 * expectation, by kind. */
static st_status step(qstate *q, tablectx *tc, st_error *err)
{
    size_t col = (size_t)q->col[0];
    uint32_t n = tc->chunk_n;
    if (n == 0) return ST_OK;
    st_block_info bi;
    switch (q->e->kind) {
    case ST_Q_NOT_NULL:
    case ST_Q_COMPLETENESS:
        ST_TRY(tc->t.vt->block_info(tc->t.impl, tc->chunk, col, &bi, err));
        return step_nulls(q, tc, col, n, &bi, err);
    case ST_Q_VALUES_BETWEEN:
    case ST_Q_TEMPORAL_WINDOW:
    case ST_Q_VALUES_IN:
    case ST_Q_STORAGE_CLASS:
        ST_TRY(tc->t.vt->block_info(tc->t.impl, tc->chunk, col, &bi, err));
        return step_values(q, tc, col, n, &bi, err);
    case ST_Q_UNIQUE:
    case ST_Q_NO_DUPLICATE_KEYS: return step_keys(q, tc, n, err);
    case ST_Q_REFERENTIAL: return step_referential(q, tc, col, n, err);
    case ST_Q_REJECT_RATE: return step_reject_rate(q, tc, col, n, err);
    default: return ST_OK;
    }
}

/* ---- conclusions ------------------------------------------------------------ */

static void finish(qstate *q, tablectx *tc)
{
    const st_expectation *e = q->e;
    st_qresult *r = q->r;
    switch (e->kind) {
    case ST_Q_NOT_NULL:
    case ST_Q_COMPLETENESS: {
        double frac = r->rows_checked ? (double)(r->rows_checked - r->unexpected_count) / (double)r->rows_checked : 1.0;
        r->observed_kind = ST_QOBS_F64;
        r->observed_f = frac;
        bool ok = e->kind == ST_Q_NOT_NULL ? mostly_ok(r->rows_checked, r->unexpected_count, e->mostly)
                                           : frac >= e->threshold;
        if (!ok)
            set_msg(r, "%" PRIu64 " of %" PRIu64 " values of '%s' are NULL (%.2f%% complete, need %.2f%%)",
                    r->unexpected_count, r->rows_checked, q->cols_text, 100.0 * frac,
                    100.0 * (e->kind == ST_Q_NOT_NULL ? e->mostly : e->threshold));
        conclude(r, ok);
        break;
    }
    case ST_Q_VALUES_BETWEEN:
    case ST_Q_VALUES_IN:
    case ST_Q_STORAGE_CLASS: {
        double frac = r->rows_checked ? (double)(r->rows_checked - r->unexpected_count) / (double)r->rows_checked : 1.0;
        r->observed_kind = ST_QOBS_F64;
        r->observed_f = frac;
        bool ok = mostly_ok(r->rows_checked, r->unexpected_count, e->mostly);
        if (!ok)
            set_msg(r, "%" PRIu64 " of %" PRIu64 " values of '%s' are outside %s (%.2f%% inside, need %.2f%%)",
                    r->unexpected_count, r->rows_checked, q->cols_text, e->args, 100.0 * frac, 100.0 * e->mostly);
        conclude(r, ok);
        break;
    }
    case ST_Q_TEMPORAL_WINDOW: {
        r->observed_kind = ST_QOBS_TEXT;
        const char *col = q->cols_text;
        if (q->have_mm) snprintf(r->observed_text, sizeof r->observed_text, "%" PRId64 " .. %" PRId64, q->mn, q->mx);
        else snprintf(r->observed_text, sizeof r->observed_text, "no values");
        bool ok = r->unexpected_count == 0;
        if (!ok)
            set_msg(r, "'%s' spans %s, outside the window %" PRId64 " .. %" PRId64 " (%" PRIu64 " values)", col,
                    r->observed_text, e->lo_i, e->hi_i, r->unexpected_count);
        conclude(r, ok);
        break;
    }
    case ST_Q_UNIQUE:
    case ST_Q_NO_DUPLICATE_KEYS: {
        uint64_t dup_rows = 0, dup_keys = 0;
        if (q->in_order) { /* tallied and sampled as the rows passed */
            dup_rows = q->dup_rows;
            dup_keys = q->dup_keys;
        } else if (q->int_keys) {
            if (!q->per_chunk) {
                ikeys_sort(&q->ik);
                tally_int_dups(q);
            }
            dup_rows = q->dup_rows;
            dup_keys = q->dup_keys;
            for (size_t i = 0; i < q->n_dsamp; i++) {
                char v[32];
                snprintf(v, sizeof v, "%" PRId64, q->dsamp[i].v);
                add_sample(r, q->dsamp[i].row, v);
            }
        } else {
            bkeys_seal(&q->bk);
            for (size_t i = 1; i < q->bk.n; i++) {
                const bkey *a = &q->bk.a[i - 1], *b = &q->bk.a[i];
                if (bytes_cmp(a->p, a->n, b->p, b->n) != 0) continue;
                dup_rows++;
                if (i == 1 || bytes_cmp(q->bk.a[i - 2].p, q->bk.a[i - 2].n, b->p, b->n) != 0) dup_keys++;
                if (r->n_sample < ST_QSAMPLE_MAX) {
                    char v[sizeof r->sample[0].value];
                    key_render(b->p, b->n, q->type, q->n_col, v, sizeof v);
                    add_sample(r, b->row, v);
                }
            }
        }
        r->unexpected_count = dup_rows;
        r->observed_kind = ST_QOBS_INT;
        r->observed_i = (int64_t)dup_rows;
        if (dup_rows)
            set_msg(r, "%" PRIu64 " duplicate rows over %" PRIu64 " repeated key%s of (%s) in %s.%s", dup_rows, dup_keys,
                    dup_keys == 1 ? "" : "s", q->cols_text, tc->layer, tc->table);
        conclude(r, dup_rows == 0);
        break;
    }
    case ST_Q_REFERENTIAL: {
        uint64_t distinct = q->int_keys ? q->orph_i.n : q->orph_b.keys.n;
        r->observed_kind = ST_QOBS_INT;
        r->observed_i = (int64_t)distinct;
        bool ok = mostly_ok(r->rows_checked, r->unexpected_count, e->mostly);
        if (r->unexpected_count)
            set_msg(r, "%" PRIu64 " distinct value%s of '%s' (%" PRIu64 " rows) not found in %s.%s.%s", distinct,
                    distinct == 1 ? "" : "s", q->cols_text, r->unexpected_count, e->ref_layer, e->ref_table,
                    e->ref_column);
        conclude(r, ok);
        break;
    }
    case ST_Q_REJECT_RATE: {
        r->unexpected_count = q->count;
        r->observed_kind = ST_QOBS_F64;
        bool ok;
        if (q->denom == 0) {
            r->observed_f = q->count ? INFINITY : 0.0;
            ok = q->count == 0;
        } else {
            r->observed_f = (double)q->count / (double)q->denom;
            ok = r->observed_f <= e->threshold;
        }
        if (!ok)
            set_msg(r, "%" PRIu64 " rejects for %" PRIu64 " rows of bronze.%s (rate %.4f, limit %.4f)", q->count, q->denom,
                    e->source_table, q->denom ? r->observed_f : 1.0, e->threshold);
        conclude(r, ok);
        break;
    }
    default: break;
    }
}

/* ---- driver ------------------------------------------------------------------ */

static st_status eval_table(const qsource *src, const st_suite *s, const size_t *idx, size_t n, st_qresult *res,
                            st_quality_results *out, st_error *err)
{
    const st_expectation *e0 = &s->exps[idx[0]];
    st_status st = ST_OK;
    tablectx tc;
    memset(&tc, 0, sizeof tc);
    tc.layer = e0->layer;
    tc.table = e0->table;
    qstate *qs = calloc(n, sizeof *qs);
    if (!qs) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");

    st_error oerr;
    st_error_clear(&oerr);
    st = src->open(src->ctx, tc.layer, tc.table, &tc.t, &oerr);
    if (st == ST_ERR_NOTFOUND) {
        for (size_t k = 0; k < n; k++) {
            res[k].evaluated = false;
            not_evaluated(&res[k], "table %s.%s not found (%s)", tc.layer, tc.table, oerr.msg);
        }
        st = ST_OK;
        goto done;
    }
    if (st != ST_OK) {
        if (err) *err = oerr;
        goto done;
    }
    tc.n_fields = tc.t.vt->n_fields(tc.t.impl);
    tc.cache = calloc(tc.n_fields ? tc.n_fields : 1, sizeof *tc.cache);
    if (!tc.cache) {
        st = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        goto done;
    }
    bool any_active = false;
    for (size_t k = 0; k < n && st == ST_OK; k++) {
        qs[k].e = &s->exps[idx[k]];
        qs[k].r = &res[k];
        st = setup(&qs[k], &tc, src, err);
        /* The resolved column names become the result's column. */
        if (st == ST_OK && qs[k].cols_text[0]) {
            if (out->lock) pthread_mutex_lock(out->lock);
            res[k].column = st_qarena_strdup(&out->arena, qs[k].cols_text);
            if (out->lock) pthread_mutex_unlock(out->lock);
            if (!res[k].column) st = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        }
        if (qs[k].active) any_active = true;
    }
    size_t nc = tc.t.vt->n_chunks(tc.t.impl);
    for (size_t c = 0; st == ST_OK && any_active && c < nc; c++) {
        tc.chunk = c;
        tc.chunk_n = tc.t.vt->chunk_rows(tc.t.impl, c);
        for (size_t k = 0; k < n && st == ST_OK; k++)
            if (qs[k].active) st = step(&qs[k], &tc, err);
        tc.row_base += tc.chunk_n;
    }
    if (out->lock) pthread_mutex_lock(out->lock);
    for (size_t k = 0; k < n && st == ST_OK; k++) {
        if (qs[k].active) finish(&qs[k], &tc);
        if (qs[k].max_keys_held > out->max_keys_held) out->max_keys_held = qs[k].max_keys_held;
    }
    if (out->lock) pthread_mutex_unlock(out->lock);
done:
    for (size_t k = 0; k < n; k++) qstate_free(&qs[k]);
    free(qs);
    if (tc.cache)
        for (size_t j = 0; j < tc.n_fields; j++) {
            st_column_free(&tc.cache[j].col);
            keyrank_free(tc.cache[j].kr);
            free(tc.cache[j].rv);
            free(tc.cache[j].re);
        }
    free(tc.cache);
    if (tc.t.vt) tc.t.vt->close(tc.t.impl);
    return st;
}

static bool layer_selected(const char *filter, const char *layer)
{
    if (!filter || !*filter) return true;
    size_t ll = strlen(layer);
    const char *p = filter;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == ll && !memcmp(p, layer, n)) return true;
        if (!q) break;
        p = q + 1;
    }
    return false;
}

/* The tables of one evaluation: group g is the expectations
 * grp[at[g] .. at[g + 1]) (suite indices) of one layer.table, whose
 * results go to r->res[pos[..]] (evaluated in tmp[..]). */
typedef struct groups {
    const qsource *src;
    const st_suite *s;
    st_quality_results *r;
    size_t *grp, *pos, *at;
    st_qresult *tmp;
    size_t n;
    st_status *status; /* per group */
    st_error *err;     /* per group */
    size_t next;       /* the next group to take, under r->lock */
} groups;

/* A task of the pool: takes tables until none is left. */
static void table_worker(void *arg, size_t task, int worker)
{
    (void)task;
    (void)worker;
    groups *G = arg;
    for (;;) {
        if (G->r->lock) pthread_mutex_lock(G->r->lock);
        size_t g = G->next++;
        if (G->r->lock) pthread_mutex_unlock(G->r->lock);
        if (g >= G->n) return;
        st_error_clear(&G->err[g]);
        G->status[g] = eval_table(G->src, G->s, G->grp + G->at[g], G->at[g + 1] - G->at[g], G->tmp + G->at[g], G->r,
                                  &G->err[g]);
    }
}

/* Splits the r->n selected expectations (suite indices sel[]) into one
 * group per table (a section's expectations are contiguous, sections
 * unique) and evaluates the groups, a table per thread of pool at a time;
 * each writes only its own results, so the results (and the error
 * returned: the first failing table's, in suite order) do not depend on
 * the thread count. */
static st_status eval_groups(const qsource *src, const st_suite *s, const size_t *sel, bool *done_flags,
                             st_pool *pool, st_quality_results *r, st_error *err)
{
    size_t n_sel = r->n, m = n_sel ? n_sel : 1;
    groups G = {.src = src, .s = s, .r = r};
    G.grp = malloc(m * sizeof *G.grp);
    G.pos = malloc(m * sizeof *G.pos);
    G.at = malloc((m + 1) * sizeof *G.at);
    G.tmp = malloc(m * sizeof *G.tmp);
    G.status = calloc(m, sizeof *G.status);
    G.err = calloc(m, sizeof *G.err);
    st_status st = ST_OK;
    if (!G.grp || !G.pos || !G.at || !G.tmp || !G.status || !G.err) {
        st = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        goto done;
    }
    size_t f = 0;
    for (size_t k = 0; k < n_sel; k++) {
        if (done_flags[k]) continue;
        const st_expectation *ek = &s->exps[sel[k]];
        G.at[G.n++] = f;
        for (size_t j = k; j < n_sel; j++) {
            const st_expectation *ej = &s->exps[sel[j]];
            if (!done_flags[j] && ej->layer == ek->layer && !strcmp(ej->table, ek->table)) {
                G.grp[f] = sel[j];
                G.pos[f] = j;
                G.tmp[f++] = r->res[j];
                done_flags[j] = true;
            }
        }
    }
    G.at[G.n] = f;
    pthread_mutex_t lock;
    size_t threads = (size_t)st_pool_threads(pool);
    if (threads > 1 && G.n > 1 && pthread_mutex_init(&lock, NULL) == 0) {
        r->lock = &lock;
        st_pool_run(pool, threads < G.n ? threads : G.n, table_worker, &G);
        pthread_mutex_destroy(&lock);
        r->lock = NULL;
    } else {
        table_worker(&G, 0, 0);
    }
    for (size_t g = 0; g < G.n && st == ST_OK; g++)
        if (G.status[g] != ST_OK) {
            st = G.status[g];
            if (err) *err = G.err[g];
        }
    for (size_t q = 0; q < f; q++) r->res[G.pos[q]] = G.tmp[q];
done:
    free(G.grp);
    free(G.pos);
    free(G.at);
    free(G.tmp);
    free(G.status);
    free(G.err);
    return st;
}

st_status st_quality_eval(const st_suite *s, const qsource *src, const char *layer_filter, st_pool *pool,
                          st_quality_results **out, st_error *err)
{
    *out = NULL;
    st_status st = ST_OK;
    size_t *idx = NULL;
    bool *done_flags = NULL;
    st_quality_results *r = calloc(1, sizeof *r);
    if (!r) return st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
    r->suite_name = st_qarena_strdup(&r->arena, s->name);
    r->layers = st_qarena_strdup(&r->arena, layer_filter && *layer_filter ? layer_filter : "all");
    size_t n_sel = 0;
    for (size_t i = 0; i < s->n_exps; i++)
        if (layer_selected(layer_filter, s->exps[i].layer)) n_sel++;
    r->res = calloc(n_sel ? n_sel : 1, sizeof *r->res);
    idx = calloc(n_sel ? n_sel : 1, sizeof *idx);
    done_flags = calloc(n_sel ? n_sel : 1, sizeof *done_flags);
    if (!r->suite_name || !r->layers || !r->res || !idx || !done_flags) {
        st = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
        goto done;
    }
    /* Results in suite order; sel[k] = suite index of result k. */
    size_t *sel = idx;
    for (size_t i = 0, k = 0; i < s->n_exps; i++) {
        const st_expectation *e = &s->exps[i];
        if (!layer_selected(layer_filter, e->layer)) continue;
        st_qresult *q = &r->res[k];
        sel[k++] = i;
        q->id = st_qarena_strdup(&r->arena, e->id);
        q->layer = e->layer; /* static strings of the parser */
        q->table = st_qarena_strdup(&r->arena, e->table);
        q->kind = st_qkind_name(e->kind);
        q->args = st_qarena_strdup(&r->arena, e->args);
        q->column = "";
        q->severity = e->severity;
        q->mostly = e->mostly;
        q->line = e->line;
        q->status = ST_QSTATUS_PASS;
        if (!q->id || !q->table || !q->args) {
            st = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory");
            goto done;
        }
    }
    r->n = n_sel;
    st = eval_groups(src, s, sel, done_flags, pool, r, err);
done:
    free(idx);
    free(done_flags);
    if (st != ST_OK) {
        st_quality_results_free(r);
        return st;
    }
    *out = r;
    return ST_OK;
}
