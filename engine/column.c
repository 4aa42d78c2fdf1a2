/*
 * column.c: growth and appends for st_column (strata/column.h).
 *
 * Invariants kept here: offsets[0] == 0 and offsets[n_rows] == n_bytes for
 * STR/BYTES; when validity != NULL it has ceil(cap_rows / 64) words and
 * the bits of rows >= n_rows are zero; null_count counts cleared bits
 * below n_rows.
 */
#include "strata/column.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

size_t st_type_width(st_type t)
{
    switch (t) {
    case ST_TYPE_BOOL: return 1;
    case ST_TYPE_I32: return 4;
    case ST_TYPE_I64: return 8;
    case ST_TYPE_F64: return 8;
    case ST_TYPE_STR:
    case ST_TYPE_BYTES: return 0;
    }
    return 0;
}

static const char *const type_names[] = {"?", "bool", "int32", "int64", "float64", "string", "bytes"};

const char *st_type_name(st_type t)
{
    if ((int)t >= 1 && (int)t <= 6) return type_names[t];
    return "?";
}

bool st_type_parse(const char *name, st_type *out)
{
    for (int i = 1; i <= 6; i++)
        if (!strcmp(name, type_names[i])) {
            *out = (st_type)i;
            return true;
        }
    return false;
}

static bool is_var(st_type t) { return t == ST_TYPE_STR || t == ST_TYPE_BYTES; }

void st_column_init(st_column *c, st_type t)
{
    memset(c, 0, sizeof *c);
    c->type = t;
}

void st_column_reset(st_column *c)
{
    if (c->validity) memset(c->validity, 0, ((c->cap_rows + 63) / 64) * sizeof(uint64_t));
    c->n_rows = 0;
    c->n_bytes = 0;
    c->null_count = 0;
    if (c->offsets) c->offsets[0] = 0;
    /* validity stays allocated but is only meaningful once a NULL is pushed:
     * drop it so the all-valid fast path applies again. */
    free(c->validity);
    c->validity = NULL;
}

void st_column_free(st_column *c)
{
    if (!c) return;
    free(c->data);
    free(c->offsets);
    free(c->bytes);
    free(c->validity);
    st_type t = c->type;
    memset(c, 0, sizeof *c);
    c->type = t;
}

static st_status grow_rows(st_column *c, size_t need)
{
    if (need <= c->cap_rows && (!is_var(c->type) || c->offsets)) return ST_OK;
    size_t cap = c->cap_rows ? c->cap_rows : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return ST_ERR_NOMEM;
        cap *= 2;
    }
    size_t bytes;
    if (is_var(c->type)) {
        if (!st_size_mul(cap + 1, sizeof(uint64_t), &bytes)) return ST_ERR_NOMEM;
        uint64_t *o = realloc(c->offsets, bytes);
        if (!o) return ST_ERR_NOMEM;
        if (!c->offsets) o[0] = 0;
        c->offsets = o;
    } else {
        if (!st_size_mul(cap, st_type_width(c->type), &bytes)) return ST_ERR_NOMEM;
        void *d = realloc(c->data, bytes);
        if (!d) return ST_ERR_NOMEM;
        c->data = d;
    }
    if (c->validity) {
        size_t old_w = (c->cap_rows + 63) / 64, new_w = (cap + 63) / 64;
        uint64_t *v = realloc(c->validity, new_w * sizeof(uint64_t));
        if (!v) return ST_ERR_NOMEM;
        memset(v + old_w, 0, (new_w - old_w) * sizeof(uint64_t));
        c->validity = v;
    }
    c->cap_rows = cap;
    return ST_OK;
}

static st_status grow_bytes(st_column *c, size_t need)
{
    if (need <= c->cap_bytes && c->bytes) return ST_OK;
    size_t cap = c->cap_bytes ? c->cap_bytes : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return ST_ERR_NOMEM;
        cap *= 2;
    }
    char *b = realloc(c->bytes, cap);
    if (!b) return ST_ERR_NOMEM;
    c->bytes = b;
    c->cap_bytes = cap;
    return ST_OK;
}

st_status st_column_reserve(st_column *c, size_t n_rows, size_t n_bytes)
{
    ST_TRY(grow_rows(c, n_rows));
    if (is_var(c->type)) ST_TRY(grow_bytes(c, n_bytes));
    return ST_OK;
}

static inline void mark_valid(st_column *c, size_t i)
{
    if (c->validity) c->validity[i >> 6] |= (uint64_t)1 << (i & 63);
}

#define PUSH_FIXED(fn, ctype, tag)                                  \
    st_status fn(st_column *c, ctype v)                             \
    {                                                               \
        assert(c->type == tag);                                     \
        if (c->n_rows >= c->cap_rows) ST_TRY(grow_rows(c, c->n_rows + 1)); \
        ((ctype *)c->data)[c->n_rows] = v;                          \
        mark_valid(c, c->n_rows);                                   \
        c->n_rows++;                                                \
        return ST_OK;                                               \
    }

PUSH_FIXED(st_column_push_i32, int32_t, ST_TYPE_I32)
PUSH_FIXED(st_column_push_i64, int64_t, ST_TYPE_I64)
PUSH_FIXED(st_column_push_f64, double, ST_TYPE_F64)

st_status st_column_push_bool(st_column *c, bool v)
{
    assert(c->type == ST_TYPE_BOOL);
    if (c->n_rows >= c->cap_rows) ST_TRY(grow_rows(c, c->n_rows + 1));
    ((uint8_t *)c->data)[c->n_rows] = v ? 1 : 0;
    mark_valid(c, c->n_rows);
    c->n_rows++;
    return ST_OK;
}

st_status st_column_push_str(st_column *c, const char *s, size_t len)
{
    assert(is_var(c->type));
    if (c->n_rows >= c->cap_rows || !c->offsets) ST_TRY(grow_rows(c, c->n_rows + 1));
    size_t need;
    if (!st_size_add(c->n_bytes, len, &need)) return ST_ERR_NOMEM;
    if (need > c->cap_bytes || !c->bytes) ST_TRY(grow_bytes(c, need));
    if (len) memcpy(c->bytes + c->n_bytes, s, len);
    c->n_bytes = need;
    c->offsets[c->n_rows + 1] = (uint64_t)need;
    mark_valid(c, c->n_rows);
    c->n_rows++;
    return ST_OK;
}

/* A dictionary of at most PICK_PADDED values none longer than 16 bytes
 * is copied into 16-byte slots first, so each row is one fixed 16-byte
 * copy (into room 16 bytes past the end) instead of a memcpy call of its
 * length; the bytes kept are the same. */
enum { PICK_PADDED = 256 };

static void copy_picked(char *dst, uint64_t o, uint64_t *off, const char *base, const uint64_t *start,
                        const uint64_t *len, size_t n_dict, const uint64_t *pick, size_t n, bool padded)
{
    if (padded) {
        char slot[PICK_PADDED][16];
        memset(slot, 0, n_dict * sizeof slot[0]);
        for (size_t k = 0; k < n_dict; k++) memcpy(slot[k], base + start[k], (size_t)len[k]);
        for (size_t i = 0; i < n; i++) {
            memcpy(dst + o, slot[pick[i]], 16);
            o += len[pick[i]];
            off[i] = o;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = (size_t)len[pick[i]];
        memcpy(dst + o, base + start[pick[i]], l);
        o += l;
        off[i] = o;
    }
}

st_status st_column_push_picked(st_column *c, const char *base, const uint64_t *start, const uint64_t *len,
                                size_t n_dict, const uint64_t *pick, size_t n)
{
    assert(is_var(c->type));
    size_t total = 0, rows, bytes;
    for (size_t i = 0; i < n; i++)
        if (!st_size_add(total, (size_t)len[pick[i]], &total)) return ST_ERR_NOMEM;
    if (!st_size_add(c->n_rows, n, &rows) || !st_size_add(c->n_bytes, total, &bytes)) return ST_ERR_NOMEM;
    bool padded = n_dict <= PICK_PADDED && bytes <= SIZE_MAX - 16;
    for (size_t k = 0; padded && k < n_dict; k++) padded = len[k] <= 16;
    ST_TRY(grow_rows(c, rows));
    ST_TRY(grow_bytes(c, padded ? bytes + 16 : bytes));
    copy_picked(c->bytes, c->n_bytes, c->offsets + c->n_rows + 1, base, start, len, n_dict, pick, n, padded);
    for (size_t i = c->n_rows; c->validity && i < rows; i++) mark_valid(c, i);
    c->n_rows = rows;
    c->n_bytes = bytes;
    return ST_OK;
}

st_status st_column_push_null(st_column *c)
{
    if (c->n_rows >= c->cap_rows || (is_var(c->type) && !c->offsets)) ST_TRY(grow_rows(c, c->n_rows + 1));
    if (!c->validity) {
        size_t words = (c->cap_rows + 63) / 64;
        uint64_t *v = malloc(words * sizeof(uint64_t));
        if (!v) return ST_ERR_NOMEM;
        /* every existing row is valid */
        memset(v, 0, words * sizeof(uint64_t));
        size_t full = c->n_rows / 64;
        for (size_t w = 0; w < full; w++) v[w] = ~(uint64_t)0;
        if (c->n_rows & 63) v[full] = ((uint64_t)1 << (c->n_rows & 63)) - 1;
        c->validity = v;
    }
    size_t i = c->n_rows;
    if (is_var(c->type)) {
        c->offsets[i + 1] = (uint64_t)c->n_bytes;
    } else {
        memset((char *)c->data + i * st_type_width(c->type), 0, st_type_width(c->type));
    }
    c->validity[i >> 6] &= ~((uint64_t)1 << (i & 63));
    c->null_count++;
    c->n_rows++;
    return ST_OK;
}

st_status st_column_push_from(st_column *dst, const st_column *src, size_t i)
{
    assert(dst->type == src->type && i < src->n_rows);
    if (!st_column_valid(src, i)) return st_column_push_null(dst);
    switch (src->type) {
    case ST_TYPE_BOOL: return st_column_push_bool(dst, st_column_bool(src)[i] != 0);
    case ST_TYPE_I32: return st_column_push_i32(dst, st_column_i32(src)[i]);
    case ST_TYPE_I64: return st_column_push_i64(dst, st_column_i64(src)[i]);
    case ST_TYPE_F64: return st_column_push_f64(dst, st_column_f64(src)[i]);
    case ST_TYPE_STR:
    case ST_TYPE_BYTES: {
        size_t len;
        const char *s = st_column_str(src, i, &len);
        return st_column_push_str(dst, s, len);
    }
    }
    return ST_ERR_INTERNAL;
}

st_status st_column_append_range(st_column *dst, const st_column *src, size_t first, size_t n)
{
    assert(dst->type == src->type && first + n <= src->n_rows);
    if (n == 0) return ST_OK;
    bool var = is_var(src->type);
    size_t at = dst->n_rows;
    size_t nb = 0;
    if (var) nb = (size_t)(src->offsets[first + n] - src->offsets[first]);
    size_t need_rows, need_bytes;
    if (!st_size_add(at, n, &need_rows) || !st_size_add(dst->n_bytes, nb, &need_bytes)) return ST_ERR_NOMEM;
    ST_TRY(st_column_reserve(dst, need_rows, var ? need_bytes : 0));
    if (var) {
        uint64_t base = src->offsets[first], o = (uint64_t)dst->n_bytes;
        if (nb) memcpy(dst->bytes + dst->n_bytes, src->bytes + base, nb);
        for (size_t i = 1; i <= n; i++) dst->offsets[at + i] = o + (src->offsets[first + i] - base);
        dst->n_bytes += nb;
    } else {
        size_t w = st_type_width(src->type);
        memcpy((char *)dst->data + at * w, (const char *)src->data + first * w, n * w);
    }
    /* validity: count NULLs in the range, materialise the bitmap only if needed */
    size_t nulls = 0;
    if (src->validity) {
        for (size_t i = first; i < first + n; i++) nulls += !((src->validity[i >> 6] >> (i & 63)) & 1);
    }
    if (nulls && !dst->validity) {
        size_t words = (dst->cap_rows + 63) / 64;
        uint64_t *v = calloc(words ? words : 1, sizeof *v);
        if (!v) return ST_ERR_NOMEM;
        size_t full = at / 64;
        for (size_t k = 0; k < full; k++) v[k] = ~(uint64_t)0;
        if (at & 63) v[full] = ((uint64_t)1 << (at & 63)) - 1;
        dst->validity = v;
    }
    if (dst->validity) {
        for (size_t i = 0; i < n; i++) {
            size_t d = at + i, s = first + i;
            bool ok = !src->validity || ((src->validity[s >> 6] >> (s & 63)) & 1);
            if (ok) dst->validity[d >> 6] |= (uint64_t)1 << (d & 63);
            else dst->validity[d >> 6] &= ~((uint64_t)1 << (d & 63));
        }
    }
    dst->null_count += nulls;
    dst->n_rows += n;
    return ST_OK;
}
