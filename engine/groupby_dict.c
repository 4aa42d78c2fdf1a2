/*
 * groupby_dict.c: the string dictionary (st_dict, strata/agg.h).
 *
 * Strings are appended once to a byte arena (`bytes`, with `off[code]` ..
 * `off[code + 1]` per code) and found again through an open-addressing
 * table of codes (linear probing, load <= 1/2) keyed by a 64-bit hash kept
 * per code, so growing the table never rehashes bytes. Codes are handed
 * out in first-seen order, which makes encoding a single streaming pass;
 * determinism of output order comes from st_dict_finish(), which ranks the
 * strings bytewise with a stable merge sort (the strings are distinct, so
 * the order is total and independent of arrival order).
 */
#include <stdlib.h>
#include <string.h>

#include "agg_internal.h"
#include "strata/agg.h"

struct st_dict {
    char *bytes;
    size_t n_bytes, cap_bytes;
    uint64_t *off;        /* n + 1 entries */
    uint64_t *hash;       /* n entries */
    uint32_t n, cap;      /* codes, capacity of off/hash */
    uint32_t *tab;        /* tab_cap slots: code or ST_KEY_NONE */
    size_t tab_cap;
    uint32_t *rank;       /* after finish: rank[code] */
    uint32_t *sorted;     /* after finish: sorted[rank] = code */
};

/* Word-at-a-time multiply/xorshift hash; only needs to spread keys. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    const uint64_t m = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t h = (uint64_t)len * m;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = (h ^ w) * m;
        h ^= h >> 29;
    }
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    return h ^ (h >> 31);
}

st_status st_dict_create(st_dict **out, st_error *err)
{
    *out = NULL;
    st_dict *d = calloc(1, sizeof *d);
    if (!d) goto nomem;
    d->tab_cap = 256;
    d->tab = malloc(d->tab_cap * sizeof *d->tab);
    d->off = calloc(1, sizeof *d->off);
    d->cap_bytes = 4096; /* never NULL, so empty strings point somewhere */
    d->bytes = malloc(d->cap_bytes);
    if (!d->tab || !d->off || !d->bytes) goto nomem;
    memset(d->tab, 0xff, d->tab_cap * sizeof *d->tab);
    *out = d;
    return ST_OK;
nomem:
    st_dict_free(d);
    return st_error_set(err, ST_ERR_NOMEM, "dict: out of memory");
}

void st_dict_free(st_dict *d)
{
    if (!d) return;
    free(d->bytes);
    free(d->off);
    free(d->hash);
    free(d->tab);
    free(d->rank);
    free(d->sorted);
    free(d);
}

uint32_t st_dict_size(const st_dict *d) { return d->n; }
const uint32_t *st_dict_rank(const st_dict *d) { return d->rank; }
const uint32_t *st_dict_sorted(const st_dict *d) { return d->sorted; }

const char *st_dict_str(const st_dict *d, uint32_t code, size_t *len)
{
    *len = (size_t)(d->off[code + 1] - d->off[code]);
    return d->bytes + d->off[code];
}

static st_status grow_tab(st_dict *d, st_error *err)
{
    size_t cap = d->tab_cap * 2;
    uint32_t *t = malloc(cap * sizeof *t);
    if (!t) return st_error_set(err, ST_ERR_NOMEM, "dict: out of memory");
    memset(t, 0xff, cap * sizeof *t);
    for (uint32_t c = 0; c < d->n; c++) {
        size_t p = (size_t)d->hash[c] & (cap - 1);
        while (t[p] != ST_KEY_NONE) p = (p + 1) & (cap - 1);
        t[p] = c;
    }
    free(d->tab);
    d->tab = t;
    d->tab_cap = cap;
    return ST_OK;
}

/* Appends a new string as code d->n. */
static st_status push_str(st_dict *d, const char *s, size_t len, uint64_t h, st_error *err)
{
    if (d->n == d->cap) {
        if (d->cap >= UINT32_MAX / 2)
            return st_error_set(err, ST_ERR_INVALID, "dict: too many distinct strings");
        uint32_t cap = d->cap ? d->cap * 2 : 256;
        uint64_t *o = realloc(d->off, ((size_t)cap + 1) * sizeof *o);
        if (o) d->off = o;
        uint64_t *hh = realloc(d->hash, (size_t)cap * sizeof *hh);
        if (hh) d->hash = hh;
        if (!o || !hh) return st_error_set(err, ST_ERR_NOMEM, "dict: out of memory");
        d->cap = cap;
    }
    size_t need;
    if (!st_size_add(d->n_bytes, len, &need))
        return st_error_set(err, ST_ERR_NOMEM, "dict: string bytes overflow");
    if (need > d->cap_bytes) {
        size_t cap = d->cap_bytes ? d->cap_bytes : 4096;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) return st_error_set(err, ST_ERR_NOMEM, "dict: string bytes overflow");
            cap *= 2;
        }
        char *b = realloc(d->bytes, cap);
        if (!b) return st_error_set(err, ST_ERR_NOMEM, "dict: out of memory");
        d->bytes = b;
        d->cap_bytes = cap;
    }
    if (len) memcpy(d->bytes + d->n_bytes, s, len);
    d->n_bytes = need;
    d->hash[d->n] = h;
    d->off[d->n + 1] = need;
    d->n++;
    return ST_OK;
}

st_status st_dict_add(st_dict *d, const st_column *col, uint32_t *codes, const char *what,
                      st_error *err)
{
    if (!what) what = "string column";
    if (d->rank)
        return st_error_set(err, ST_ERR_INVALID, "dict: %s: add after finish", what);
    if (col->type != ST_TYPE_STR && col->type != ST_TYPE_BYTES)
        return st_error_set(err, ST_ERR_INVALID, "dict: %s is not a string column", what);
    for (size_t i = 0; i < col->n_rows; i++) {
        if (!st_column_valid(col, i))
            return st_error_set(err, ST_ERR_INVALID, "dict: %s row %zu is NULL", what, i);
        size_t len;
        const char *s = st_column_str(col, i, &len);
        uint64_t h = hash_bytes(s, len);
        size_t mask = d->tab_cap - 1, p = (size_t)h & mask;
        uint32_t code;
        for (;;) {
            code = d->tab[p];
            if (code == ST_KEY_NONE) break;
            if (d->hash[code] == h && d->off[code + 1] - d->off[code] == len &&
                (len == 0 || memcmp(d->bytes + d->off[code], s, len) == 0))
                break;
            p = (p + 1) & mask;
        }
        if (code == ST_KEY_NONE) {
            code = d->n;
            ST_TRY(push_str(d, s, len, h, err));
            d->tab[p] = code;
            if ((size_t)d->n * 2 > d->tab_cap) ST_TRY(grow_tab(d, err));
        }
        codes[i] = code;
    }
    return ST_OK;
}

/* Bytewise order of strings a and b of an arena (bytes, off[i] ..
 * off[i + 1]), a proper prefix first. */
static int cmp_strings(const char *bytes, const uint64_t *off, uint32_t a, uint32_t b)
{
    size_t la = (size_t)(off[a + 1] - off[a]), lb = (size_t)(off[b + 1] - off[b]);
    size_t l = la < lb ? la : lb;
    int c = l ? memcmp(bytes + off[a], bytes + off[b], l) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

/* Indices [0, n) of an arena's strings in cmp_strings order, by a
 * bottom-up merge sort between a and b (n entries each); returns the one
 * holding the result. */
static uint32_t *sort_strings(const char *bytes, const uint64_t *off, uint32_t *a, uint32_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = (uint32_t)i;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) b[k++] = cmp_strings(bytes, off, a[j], a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid) b[k++] = a[i++];
            while (j < hi) b[k++] = a[j++];
        }
        uint32_t *t = a;
        a = b;
        b = t;
    }
    return a;
}

st_status st_dict_add_sorted(st_dict *d, const st_column *col, uint32_t *codes, const char *what, st_error *err)
{
    size_t n = col->n_rows;
    if (n < 2 || n > ST_DICT_SORTED_ADD_MAX || col->null_count || (col->type != ST_TYPE_STR && col->type != ST_TYPE_BYTES))
        return st_dict_add(d, col, codes, what, err);
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    st_column in_order;
    st_column_init(&in_order, col->type);
    st_status s = a && b ? st_column_reserve(&in_order, n, col->n_bytes) : ST_ERR_NOMEM;
    uint32_t *idx = s == ST_OK ? sort_strings(col->bytes, col->offsets, a, b, n) : NULL, *got = idx == a ? b : a;
    for (size_t i = 0; i < n && s == ST_OK; i++) {
        size_t len;
        const char *str = st_column_str(col, idx[i], &len);
        s = st_column_push_str(&in_order, str, len);
    }
    if (s != ST_OK) s = st_error_set(err, ST_ERR_NOMEM, "dict: out of memory sorting %zu strings", n);
    if (s == ST_OK) s = st_dict_add(d, &in_order, got, what, err);
    for (size_t i = 0; i < n && s == ST_OK; i++) codes[idx[i]] = got[i];
    st_column_free(&in_order);
    free(a);
    free(b);
    return s;
}

st_status st_dict_finish(st_dict *d, st_error *err)
{
    if (d->rank) return ST_OK;
    size_t n = d->n;
    uint32_t *a = malloc((n ? n : 1) * sizeof *a);
    uint32_t *b = malloc((n ? n : 1) * sizeof *b);
    uint32_t *rank = malloc((n ? n : 1) * sizeof *rank);
    if (!a || !b || !rank) {
        free(a);
        free(b);
        free(rank);
        return st_error_set(err, ST_ERR_NOMEM, "dict: out of memory sorting %zu strings", n);
    }
    uint32_t *s = sort_strings(d->bytes, d->off, a, b, n);
    for (size_t r = 0; r < n; r++) rank[s[r]] = (uint32_t)r;
    free(s == a ? b : a);
    d->sorted = s;
    d->rank = rank;
    return ST_OK;
}
