/*
 * sqlite_lanes_internal.h: where one batch of source rows lands, shared by
 * the two readers of a SQLite table (formats/sqlite_source.c, through
 * sqlite3_step, and formats/sqlite_btree.c, straight from the pages).
 * Not installed.
 *
 * A lane is one source column's view of the batch: the value column `c`,
 * the storage class `c__class` and the raw bytes `c__raw` (docs/TABLES.md).
 * Both readers hand every value to one of the lane_put_*() functions
 * below, so the lossless mapping is written once and the two paths cannot
 * disagree on it:
 *
 *   INTEGER  -> c when c is int64, or float64 holding it exactly;
 *               else c__raw as decimal text
 *   REAL     -> c when c is float64; else c__raw as %.17g text
 *   TEXT     -> c when c is string and the bytes are valid UTF-8;
 *               else c__raw as the bytes
 *   BLOB     -> c__raw as the bytes
 *   NULL     -> neither
 *
 * Invariants during a batch (between st_lanes_begin and st_lanes_finish):
 * the columns' row arrays hold batch_rows rows and do not move, so the
 * lane caches pointers to them; payload bytes may grow (realloc), so
 * they are reached through the column. Validity goes into scratch bitmaps
 * that mark the rare case (a NULL value, a present raw) so the common one
 * costs no bit operation, and becomes a column's validity only when the
 * batch gave it a NULL: all-present columns keep the validity == NULL
 * fast path. Row n must be
 * put for every lane, in row order, exactly once.
 */
#ifndef STRATA_SQLITE_LANES_INTERNAL_H
#define STRATA_SQLITE_LANES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sqlite_internal.h"
#include "strata/column.h"
#include "strata/source.h"

typedef struct st_lane {
    st_type type;        /* value column type */
    void *val;           /* int64_t / double values (fixed types) */
    uint64_t *voff;      /* string value offsets */
    st_column *vc;       /* value column, for its payload */
    int32_t *cls;        /* class values */
    uint64_t *roff;      /* raw offsets */
    st_column *rc;       /* raw column, for its payload */
    uint64_t *vb;        /* scratch bitmap: value row is NULL (set only then) */
    uint64_t *rb;        /* scratch bitmap: raw row is present (set only then) */
} st_lane;

/* The lanes of one scan: scratch bitmaps and lane array sized for
 * batch_rows rows of n_cols columns. Owned by the scan. */
typedef struct st_lanes {
    size_t n_cols;
    size_t batch_rows;
    size_t words;        /* uint64 words of one batch bitmap */
    uint64_t *vbits;     /* 2 * n_cols bitmaps: value j at 2j, raw j at 2j+1 */
    st_lane *lane;       /* n_cols */
    int64_t *rowids;     /* cols[0] of the current batch */
} st_lanes;

/* Allocates lanes for n_cols columns and batch_rows rows. ST_ERR_NOMEM. */
st_status st_lanes_init(st_lanes *ls, size_t n_cols, size_t batch_rows) ST_MUST_USE;
void st_lanes_free(st_lanes *ls);

/* Resets and sizes cols[0..t->n_fields) (bronze schema types checked) for
 * one batch and points the lanes at them. Errors name table t. */
st_status st_lanes_begin(st_lanes *ls, const st_source_table *t, st_column *cols,
                         st_error *err) ST_MUST_USE;

/* Sets the row counts, payload sizes and validity of the batch's n rows. */
st_status st_lanes_finish(st_lanes *ls, const st_source_table *t, st_column *cols, size_t n,
                          st_error *err) ST_MUST_USE;

#define ST_LANE_SET_BIT(b, i) ((b)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))

/* Makes room for `extra` more payload bytes in var column c whose used
 * size is `used` (c->n_bytes is not maintained during a batch). */
static inline bool lane_room(st_column *c, size_t used, size_t extra)
{
    size_t need;
    if (!st_size_add(used, extra, &need)) return false;
    if (need <= c->cap_bytes) return true;
    size_t grow = c->cap_bytes * 2;
    if (grow < need) grow = need;
    return st_column_reserve(c, c->cap_rows, grow) == ST_OK;
}

/* Value slot n of the lane left empty (NULL value). */
static inline void lane_value_null(st_lane *L, size_t n)
{
    ST_LANE_SET_BIT(L->vb, n);
    if (L->type == ST_TYPE_STR)
        L->voff[n + 1] = L->voff[n];
    else if (L->type == ST_TYPE_I64)
        ((int64_t *)L->val)[n] = 0;
    else
        ((double *)L->val)[n] = 0.0;
}

/* Row n's value went into `c`: raw is NULL. */
static inline void lane_fit(st_lane *L, size_t n)
{
    L->roff[n + 1] = L->roff[n];
}

/* Row n's value goes to `c__raw` as raw[0..len). False when out of memory. */
static inline bool lane_raw(st_lane *L, size_t n, const void *raw, size_t len)
{
    lane_value_null(L, n);
    uint64_t at = L->roff[n];
    if (!lane_room(L->rc, at, len)) return false;
    if (len) memcpy(L->rc->bytes + at, raw, len);
    L->roff[n + 1] = at + len;
    ST_LANE_SET_BIT(L->rb, n);
    return true;
}

static inline void lane_put_null(st_lane *L, size_t n)
{
    L->cls[n] = ST_CLASS_NULL;
    lane_value_null(L, n);
    L->roff[n + 1] = L->roff[n];
}

static inline bool lane_put_int(st_lane *L, size_t n, int64_t v)
{
    L->cls[n] = ST_CLASS_INTEGER;
    if (L->type == ST_TYPE_I64) {
        ((int64_t *)L->val)[n] = v;
        lane_fit(L, n);
        return true;
    }
    if (L->type == ST_TYPE_F64 && (double)v < 9223372036854775808.0 && (int64_t)(double)v == v) {
        ((double *)L->val)[n] = (double)v;
        lane_fit(L, n);
        return true;
    }
    char num[24];
    return lane_raw(L, n, num, i64_to_dec(v, num));
}

static inline bool lane_put_real(st_lane *L, size_t n, double v)
{
    L->cls[n] = ST_CLASS_REAL;
    if (L->type == ST_TYPE_F64) {
        ((double *)L->val)[n] = v;
        lane_fit(L, n);
        return true;
    }
    char num[40];
    int w = snprintf(num, sizeof num, "%.17g", v);
    return lane_raw(L, n, num, w > 0 ? (size_t)w : 0);
}

/* True when p[0..len) is ASCII, 8 bytes at a time: most source text is,
 * and then it is UTF-8 without a call to the full validator. */
static inline bool lane_ascii(const uint8_t *p, size_t len)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    if (len - i >= 4) { /* 4..7 left: two overlapping 4-byte loads */
        uint32_t a, b;
        memcpy(&a, p + i, 4);
        memcpy(&b, p + len - 4, 4);
        acc |= a | b;
        i = len;
    }
    for (; i < len; i++) acc |= p[i];
    return (acc & 0x8080808080808080ull) == 0;
}

static inline bool lane_put_text(st_lane *L, size_t n, const uint8_t *p, size_t len)
{
    L->cls[n] = ST_CLASS_TEXT;
    if (L->type == ST_TYPE_STR && (lane_ascii(p, len) || utf8_ok(p, len))) {
        uint64_t at = L->voff[n];
        if (!lane_room(L->vc, at, len)) return false;
        if (len) memcpy(L->vc->bytes + at, p, len);
        L->voff[n + 1] = at + len;
        lane_fit(L, n);
        return true;
    }
    return lane_raw(L, n, p, len);
}

static inline bool lane_put_blob(st_lane *L, size_t n, const uint8_t *p, size_t len)
{
    L->cls[n] = ST_CLASS_BLOB;
    return lane_raw(L, n, p, len);
}

#endif /* STRATA_SQLITE_LANES_INTERNAL_H */
