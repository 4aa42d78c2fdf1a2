/*
 * column.h: strata's in-memory column, the currency between formats/,
 * engine/, pipeline/ and ml/.
 *
 * A column holds n_rows values of one physical type. Fixed-width values
 * live in `data` (bool as one byte 0/1 per value). Strings and byte strings
 * live in `bytes`, value i being bytes[offsets[i] .. offsets[i+1]); offsets
 * has n_rows + 1 entries and offsets[0] == 0. Validity is a bitmap of
 * uint64_t words, bit (i & 63) of word (i >> 6) set when value i is
 * present; validity == NULL means every value is present (the fast path).
 * A NULL slot still occupies its place in `data` (value 0) and has an
 * empty string range, so kernels may read it without branching.
 *
 * Ownership: a column owns data, offsets, bytes and validity; they are
 * released by st_column_free(). Capacities grow geometrically. A column is
 * not thread-safe; distinct columns may be used from distinct threads.
 */
#ifndef STRATA_COLUMN_H
#define STRATA_COLUMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Physical types. The numeric values are written in layer files: never
 * renumber (formats/FORMAT.md, "Types"). */
typedef enum st_type {
    ST_TYPE_BOOL = 1,   /* uint8_t 0/1 */
    ST_TYPE_I32 = 2,    /* int32_t */
    ST_TYPE_I64 = 3,    /* int64_t */
    ST_TYPE_F64 = 4,    /* double, IEEE 754 binary64, any bit pattern */
    ST_TYPE_STR = 5,    /* UTF-8 text (validated by writers) */
    ST_TYPE_BYTES = 6   /* arbitrary bytes (SQLite BLOBs, raw text) */
} st_type;

/* Bytes per value in `data` for fixed-width types, 0 for STR/BYTES. */
size_t st_type_width(st_type t);
/* "bool", "int32", "int64", "float64", "string", "bytes"; "?" if unknown. */
const char *st_type_name(st_type t);
/* Parses a name from st_type_name(); returns false if unknown. */
bool st_type_parse(const char *name, st_type *out);

typedef struct st_column {
    st_type type;
    size_t n_rows;          /* values held */
    size_t cap_rows;        /* values `data`/`offsets`/`validity` can hold */
    void *data;             /* fixed-width values, NULL for STR/BYTES */
    uint64_t *offsets;      /* STR/BYTES: n_rows + 1 byte offsets */
    char *bytes;            /* STR/BYTES payload */
    size_t n_bytes;         /* bytes used in `bytes` (== offsets[n_rows]) */
    size_t cap_bytes;
    uint64_t *validity;     /* NULL = all valid; else ceil(cap_rows/64) words */
    size_t null_count;      /* number of NULL values among n_rows */
} st_column;

/* Initialises an empty column of type t (no allocation). */
void st_column_init(st_column *c, st_type t);
/* Drops all values, keeps allocations (for reuse across chunks). */
void st_column_reset(st_column *c);
/* Releases everything and leaves an empty column; NULL does nothing. */
void st_column_free(st_column *c);

/* Ensures room for n_rows values (and, for strings, n_bytes payload bytes)
 * in total. ST_ERR_NOMEM on allocation failure or overflow. */
st_status st_column_reserve(st_column *c, size_t n_rows, size_t n_bytes) ST_MUST_USE;

/* Appends one value. Type must match the column (asserted). */
st_status st_column_push_bool(st_column *c, bool v) ST_MUST_USE;
st_status st_column_push_i32(st_column *c, int32_t v) ST_MUST_USE;
st_status st_column_push_i64(st_column *c, int64_t v) ST_MUST_USE;
st_status st_column_push_f64(st_column *c, double v) ST_MUST_USE;
/* STR and BYTES: copies len bytes from s. */
st_status st_column_push_str(st_column *c, const char *s, size_t len) ST_MUST_USE;
/* STR and BYTES: appends n values, value i the len[pick[i]] bytes at
 * base + start[pick[i]] (a dictionary of n_dict strings picked by codes;
 * the caller has checked every pick[i] < n_dict), with one reservation
 * instead of one per value. */
st_status st_column_push_picked(st_column *c, const char *base, const uint64_t *start, const uint64_t *len,
                                size_t n_dict, const uint64_t *pick, size_t n) ST_MUST_USE;
/* Appends a NULL (materialises the validity bitmap on first use). */
st_status st_column_push_null(st_column *c) ST_MUST_USE;

/* Is value i present? */
static inline bool st_column_valid(const st_column *c, size_t i)
{
    return c->validity == NULL || ((c->validity[i >> 6] >> (i & 63)) & 1u);
}

/* Typed views; no bounds checks beyond the caller's i < n_rows. */
static inline const int64_t *st_column_i64(const st_column *c) { return (const int64_t *)c->data; }
static inline const int32_t *st_column_i32(const st_column *c) { return (const int32_t *)c->data; }
static inline const double *st_column_f64(const st_column *c) { return (const double *)c->data; }
static inline const uint8_t *st_column_bool(const st_column *c) { return (const uint8_t *)c->data; }
static inline const char *st_column_str(const st_column *c, size_t i, size_t *len)
{
    *len = (size_t)(c->offsets[i + 1] - c->offsets[i]);
    return c->bytes + c->offsets[i];
}

/* Appends rows [first, first + n) of src to dst (same type) in bulk:
 * values, string bytes and validity. */
st_status st_column_append_range(st_column *dst, const st_column *src, size_t first, size_t n) ST_MUST_USE;

/* Copies value src[i] onto the end of dst (same type). */
st_status st_column_push_from(st_column *dst, const st_column *src, size_t i) ST_MUST_USE;

/* Overflow-checked size arithmetic (stb's malloc_mad idea): returns false
 * when a*b (+c) does not fit in size_t. */
static inline bool st_size_mul(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) return false;
    *out = a * b;
    return true;
}
static inline bool st_size_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) return false;
    *out = a + b;
    return true;
}

#ifdef __cplusplus
}
#endif
#endif /* STRATA_COLUMN_H */
