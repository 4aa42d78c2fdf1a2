/*
 * cast.c: TRY_CAST of bronze values (strata/cast.h).
 *
 * Every function here reads at most `len` bytes of a value and never
 * needs a NUL terminator: bronze text and blobs are byte ranges inside a
 * column's payload. Integer parsing accumulates the magnitude in a
 * uint64_t and compares against 2^63 (negative) or 2^63 - 1 (positive)
 * before each step, so overflow is detected without undefined behaviour.
 * Reals are range-checked against +-2^63 as doubles (both exact powers of
 * two) before converting, for the same reason.
 */
#include "strata/cast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

const char *st_cast_result_name(st_cast_result r)
{
    switch (r) {
    case ST_CAST_OK: return "ok";
    case ST_CAST_NULL: return "null";
    case ST_CAST_BLOB: return "blob";
    case ST_CAST_BAD_UTF8: return "bad_utf8";
    case ST_CAST_EMPTY: return "empty";
    case ST_CAST_NOT_INTEGER: return "not_integer";
    case ST_CAST_OUT_OF_RANGE: return "out_of_range";
    case ST_CAST_NOT_FINITE: return "not_finite";
    case ST_CAST_BAD_VALUE: return "bad_value";
    }
    return "bad_value";
}

static inline bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static void trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n && is_space((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n && is_space((unsigned char)p[n - 1])) n--;
    *s = p;
    *len = n;
}

/* Strict base-10 integer of the whole of s[0..len): optional sign then at
 * least one digit, nothing else. */
static st_cast_result parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == len) return ST_CAST_NOT_INTEGER;
    const uint64_t limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    uint64_t mag = 0;
    bool overflow = false;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return ST_CAST_NOT_INTEGER;
        if (!overflow) {
            if (mag > (limit - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
        }
    }
    if (overflow) return ST_CAST_OUT_OF_RANGE;
    *out = neg ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
    return ST_CAST_OK;
}

/* Integral finite real inside int64. */
static st_cast_result real_to_i64(double r, int64_t *out)
{
    if (isnan(r) || isinf(r)) return ST_CAST_NOT_FINITE;
    if (r != floor(r)) return ST_CAST_NOT_INTEGER;
    if (r < -9223372036854775808.0 || r >= 9223372036854775808.0) return ST_CAST_OUT_OF_RANGE;
    *out = (int64_t)r;
    return ST_CAST_OK;
}

st_cast_result st_cast_to_i64(const st_value *v, int64_t *out)
{
    switch (v->cls) {
    case 0: return ST_CAST_NULL;
    case 1: *out = v->i; return ST_CAST_OK;
    case 2: return real_to_i64(v->r, out);
    case 3: {
        if (!v->s && v->len) return ST_CAST_BAD_VALUE;
        if (!utf8_ok((const uint8_t *)v->s, v->len)) return ST_CAST_BAD_UTF8;
        const char *s = v->s;
        size_t len = v->len;
        trim(&s, &len);
        if (len == 0) return ST_CAST_EMPTY;
        return parse_i64(s, len, out);
    }
    case 4: return ST_CAST_BLOB;
    }
    return ST_CAST_BAD_VALUE;
}

st_cast_result st_cast_to_text(const st_value *v, char numbuf[ST_CAST_NUM_MAX], const char **s, size_t *len)
{
    int64_t i;
    switch (v->cls) {
    case 0: return ST_CAST_NULL;
    case 1:
        *len = i64_to_dec(v->i, numbuf);
        *s = numbuf;
        return ST_CAST_OK;
    case 2: {
        st_cast_result r = real_to_i64(v->r, &i);
        if (r != ST_CAST_OK) return r;
        *len = i64_to_dec(i, numbuf);
        *s = numbuf;
        return ST_CAST_OK;
    }
    case 3: {
        if (!v->s && v->len) return ST_CAST_BAD_VALUE;
        if (!utf8_ok((const uint8_t *)v->s, v->len)) return ST_CAST_BAD_UTF8;
        const char *p = v->s;
        size_t n = v->len;
        trim(&p, &n);
        if (n == 0) return ST_CAST_EMPTY;
        *s = p;
        *len = n;
        return ST_CAST_OK;
    }
    case 4: return ST_CAST_BLOB;
    }
    return ST_CAST_BAD_VALUE;
}

static void render_hex(st_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char chunk[130];
    st_buf_append(b, "x'", 2);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        chunk[k++] = hex[c >> 4];
        chunk[k++] = hex[c & 15];
        if (k == 128) {
            st_buf_append(b, chunk, k);
            k = 0;
        }
    }
    if (k) st_buf_append(b, chunk, k);
    st_buf_append(b, "'", 1);
}

void st_cast_render(st_buf *b, const st_value *v)
{
    char num[40];
    switch (v->cls) {
    case 0: st_buf_append(b, "NULL", 4); return;
    case 1: st_buf_append(b, num, i64_to_dec(v->i, num)); return;
    case 2: {
        int n = snprintf(num, sizeof num, "%.17g", v->r);
        if (n > 0) st_buf_append(b, num, (size_t)n);
        return;
    }
    case 3:
        if (v->s && utf8_ok((const uint8_t *)v->s, v->len)) {
            st_buf_append(b, v->s, v->len);
            return;
        }
        render_hex(b, v->s, v->s ? v->len : 0);
        return;
    case 4: render_hex(b, v->s, v->s ? v->len : 0); return;
    }
    st_buf_append(b, "?", 1);
}

bool st_value_from_bronze(const st_column *val, const st_column *cls, const st_column *raw, size_t row,
                          st_value *out)
{
    memset(out, 0, sizeof *out);
    if (cls->type != ST_TYPE_I32 || row >= cls->n_rows || row >= val->n_rows || row >= raw->n_rows ||
        !st_column_valid(cls, row))
        return false;
    int c = st_column_i32(cls)[row];
    if (c < 0 || c > 4) return false;
    bool has_val = st_column_valid(val, row), has_raw = st_column_valid(raw, row);
    if (c == 0) return !has_val && !has_raw;
    if (has_val == has_raw) return false;
    out->cls = c;
    if (has_val) {
        switch (val->type) {
        case ST_TYPE_I64:
            if (c != 1) break;
            out->i = st_column_i64(val)[row];
            return true;
        case ST_TYPE_F64: {
            double r = st_column_f64(val)[row];
            if (c == 2) {
                out->r = r;
                return true;
            }
            if (c == 1 && real_to_i64(r, &out->i) == ST_CAST_OK) return true;
            break;
        }
        case ST_TYPE_STR:
            if (c != 3) break;
            out->s = st_column_str(val, row, &out->len);
            return true;
        default: break;
        }
        memset(out, 0, sizeof *out);
        return false;
    }
    if (raw->type != ST_TYPE_BYTES && raw->type != ST_TYPE_STR) return false;
    size_t len;
    const char *s = st_column_str(raw, row, &len);
    if (c == 3 || c == 4) {
        out->s = s;
        out->len = len;
        return true;
    }
    if (c == 1 && parse_i64(s, len, &out->i) == ST_CAST_OK) return true;
    if (c == 2 && len > 0 && len < 40) {
        char tmp[40];
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end = NULL;
        double r = strtod(tmp, &end);
        if (end == tmp + len && !is_space((unsigned char)tmp[0])) {
            out->r = r;
            return true;
        }
    }
    memset(out, 0, sizeof *out);
    return false;
}
