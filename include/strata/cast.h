/*
 * cast.h: TRY_CAST of one bronze value for the silver layer.
 *
 * A bronze value (docs/TABLES.md) is a storage class plus either a typed
 * value (`c`) or raw bytes (`c__raw`); st_value is that value decoded,
 * whatever bronze column it came from. The casts never fail loudly: they
 * return ST_CAST_OK or the reason the value does not convert, which the
 * stage step maps to its reject reason codes (bad_customer_id,
 * bad_quantity, bad_material_code, ...).
 *
 * Rules (SQL TRY_CAST, strict where SQL is sloppy):
 *
 * to int64   INTEGER as is; REAL when integral, finite and inside int64
 *            (-0.0 gives 0); TEXT holding a base-10 integer with optional
 *            sign and optional surrounding ASCII whitespace (space, \t, \n,
 *            \v, \f, \r), leading zeros allowed; rejected: NULL, BLOB (even
 *            one holding digits), empty/blank text, "1.5", "1e3", "0x10",
 *            "12abc", "+", "- 5", values beyond int64, invalid UTF-8.
 * to text    TEXT trimmed of the same whitespace, valid UTF-8, non-empty;
 *            INTEGER as its decimal text; REAL only when integral, finite
 *            and inside int64, as decimal integer text (3.0 -> "3": codes
 *            that went through a float column come back); non-integral
 *            reals are rejected (a material code is never "3.5"), as are
 *            NULL and BLOB.
 *
 * All functions are pure and thread-safe; none allocates except
 * st_cast_render(), which appends to a caller-owned st_buf.
 */
#ifndef STRATA_CAST_H
#define STRATA_CAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"
#include "strata/column.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One bronze value. cls is the SQLite storage class (st_sclass in
 * strata/source.h: 0 NULL, 1 INTEGER, 2 REAL, 3 TEXT, 4 BLOB). For TEXT
 * and BLOB, s/len are borrowed bytes (not NUL-terminated, may be any
 * bytes for BLOB and for TEXT that was not valid UTF-8). */
typedef struct st_value {
    int cls;
    int64_t i;        /* cls 1 */
    double r;         /* cls 2 */
    const char *s;    /* cls 3, 4 */
    size_t len;       /* cls 3, 4: bytes at s */
} st_value;

typedef enum st_cast_result {
    ST_CAST_OK = 0,
    ST_CAST_NULL = 1,         /* the value is NULL */
    ST_CAST_BLOB = 2,         /* BLOBs never convert */
    ST_CAST_BAD_UTF8 = 3,     /* TEXT that is not valid UTF-8 */
    ST_CAST_EMPTY = 4,        /* TEXT empty after trimming */
    ST_CAST_NOT_INTEGER = 5,  /* text not a base-10 integer; real with a fraction */
    ST_CAST_OUT_OF_RANGE = 6, /* integer beyond int64; real beyond int64 */
    ST_CAST_NOT_FINITE = 7,   /* NaN or infinity */
    ST_CAST_BAD_VALUE = 8     /* inconsistent bronze value (unknown class, bad raw) */
} st_cast_result;

/* Short stable name: "ok", "null", "blob", "bad_utf8", "empty",
 * "not_integer", "out_of_range", "not_finite", "bad_value". */
const char *st_cast_result_name(st_cast_result r);

/* Decodes row `row` of one bronze column triple (value column `val`,
 * int32 class column `cls`, bytes raw column `raw`) into *out. String
 * pointers in *out borrow the columns. Returns false (and a NULL value)
 * when the triple is inconsistent: unknown class, neither value nor raw
 * present for a non-NULL class, or raw text of an INTEGER/REAL that does
 * not parse back. */
bool st_value_from_bronze(const st_column *val, const st_column *cls, const st_column *raw, size_t row,
                          st_value *out);

/* TRY_CAST(v AS BIGINT): *out is set only on ST_CAST_OK. */
st_cast_result st_cast_to_i64(const st_value *v, int64_t *out);

/* Longest text produced by st_cast_to_text for a number ("-9223372036854775808"). */
#define ST_CAST_NUM_MAX 24

/* TRY_CAST(v AS TEXT) for codes: on ST_CAST_OK, *s and *len are either a
 * trimmed slice of v->s (borrowed) or the decimal text written into
 * numbuf. */
st_cast_result st_cast_to_text(const st_value *v, char numbuf[ST_CAST_NUM_MAX], const char **s, size_t *len);

/* Appends the value as text for rejects' raw_values: NULL as `NULL`,
 * integers in decimal, reals as %.17g, valid UTF-8 text as is, BLOBs and
 * invalid UTF-8 text as x'hex' (lower-case hex). The result is always
 * valid UTF-8. */
void st_cast_render(st_buf *b, const st_value *v);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_CAST_H */
