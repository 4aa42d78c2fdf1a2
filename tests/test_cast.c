/*
 * test_cast.c: TRY_CAST rules (strata/cast.h), table-driven, plus the
 * bronze triple decoding and the rejects rendering.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "strata/cast.h"

TestSuite(cast);

static st_value text(const char *s) { return (st_value){.cls = 3, .s = s, .len = strlen(s)}; }
static st_value textn(const char *s, size_t n) { return (st_value){.cls = 3, .s = s, .len = n}; }
static st_value integer(int64_t i) { return (st_value){.cls = 1, .i = i}; }
static st_value real(double r) { return (st_value){.cls = 2, .r = r}; }
static st_value blob(const char *s, size_t n) { return (st_value){.cls = 4, .s = s, .len = n}; }

typedef struct i64_case {
    st_value v;
    st_cast_result want;
    int64_t value;
    const char *label;
} i64_case;

Test(cast, to_i64_table)
{
    const i64_case cases[] = {
        {text("42"), ST_CAST_OK, 42, "plain"},
        {text(" 42 "), ST_CAST_OK, 42, "spaces"},
        {text("\t-7\n"), ST_CAST_OK, -7, "tab newline"},
        {text("\r\v\f 8 \r\n"), ST_CAST_OK, 8, "all ASCII spaces"},
        {text("+5"), ST_CAST_OK, 5, "plus"},
        {text("-0"), ST_CAST_OK, 0, "minus zero"},
        {text("007"), ST_CAST_OK, 7, "leading zeros"},
        {text("0000000000000000000000000001"), ST_CAST_OK, 1, "many leading zeros"},
        {text("9223372036854775807"), ST_CAST_OK, INT64_MAX, "INT64_MAX"},
        {text("-9223372036854775808"), ST_CAST_OK, INT64_MIN, "INT64_MIN"},
        {text("9223372036854775808"), ST_CAST_OUT_OF_RANGE, 0, "INT64_MAX+1"},
        {text("-9223372036854775809"), ST_CAST_OUT_OF_RANGE, 0, "INT64_MIN-1"},
        {text("99999999999999999999999999"), ST_CAST_OUT_OF_RANGE, 0, "huge"},
        {text("99999999999999999999999999x"), ST_CAST_NOT_INTEGER, 0, "huge then junk"},
        {text("1.5"), ST_CAST_NOT_INTEGER, 0, "decimal"},
        {text("1.0"), ST_CAST_NOT_INTEGER, 0, "decimal zero fraction"},
        {text("1e3"), ST_CAST_NOT_INTEGER, 0, "exponent"},
        {text("0x10"), ST_CAST_NOT_INTEGER, 0, "hex"},
        {text("12abc"), ST_CAST_NOT_INTEGER, 0, "trailing junk"},
        {text("1 2"), ST_CAST_NOT_INTEGER, 0, "inner space"},
        {text("- 5"), ST_CAST_NOT_INTEGER, 0, "sign space"},
        {text("+"), ST_CAST_NOT_INTEGER, 0, "sign only"},
        {text("-"), ST_CAST_NOT_INTEGER, 0, "minus only"},
        {text("--1"), ST_CAST_NOT_INTEGER, 0, "double sign"},
        {text(""), ST_CAST_EMPTY, 0, "empty"},
        {text("   \t\n"), ST_CAST_EMPTY, 0, "blank"},
        {text("\xC2\xA0" "5"), ST_CAST_NOT_INTEGER, 0, "NBSP is not trimmed"},
        {text("\xFF" "5"), ST_CAST_BAD_UTF8, 0, "invalid UTF-8"},
        {textn("4\0" "2", 3), ST_CAST_NOT_INTEGER, 0, "embedded NUL"},
        {integer(0), ST_CAST_OK, 0, "int 0"},
        {integer(INT64_MIN), ST_CAST_OK, INT64_MIN, "int min"},
        {integer(INT64_MAX), ST_CAST_OK, INT64_MAX, "int max"},
        {real(3.0), ST_CAST_OK, 3, "real 3.0"},
        {real(-0.0), ST_CAST_OK, 0, "real -0.0"},
        {real(-42.0), ST_CAST_OK, -42, "real -42"},
        {real(3.5), ST_CAST_NOT_INTEGER, 0, "real 3.5"},
        {real(1e-300), ST_CAST_NOT_INTEGER, 0, "tiny"},
        {real(1e300), ST_CAST_OUT_OF_RANGE, 0, "real 1e300"},
        {real(-1e300), ST_CAST_OUT_OF_RANGE, 0, "real -1e300"},
        {real(9223372036854775808.0), ST_CAST_OUT_OF_RANGE, 0, "2^63"},
        {real(-9223372036854775808.0), ST_CAST_OK, INT64_MIN, "-2^63"},
        {real(9223372036854774784.0), ST_CAST_OK, 9223372036854774784LL, "largest double below 2^63"},
        {real(NAN), ST_CAST_NOT_FINITE, 0, "NaN"},
        {real(INFINITY), ST_CAST_NOT_FINITE, 0, "inf"},
        {real(-INFINITY), ST_CAST_NOT_FINITE, 0, "-inf"},
        {(st_value){.cls = 0}, ST_CAST_NULL, 0, "NULL"},
        {blob("42", 2), ST_CAST_BLOB, 0, "blob of digits"},
        {blob("", 0), ST_CAST_BLOB, 0, "empty blob"},
        {(st_value){.cls = 9}, ST_CAST_BAD_VALUE, 0, "unknown class"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = 12345;
        st_cast_result r = st_cast_to_i64(&cases[i].v, &got);
        cr_expect_eq(r, cases[i].want, "%s: got %s want %s", cases[i].label, st_cast_result_name(r),
                     st_cast_result_name(cases[i].want));
        if (r == ST_CAST_OK && cases[i].want == ST_CAST_OK)
            cr_expect_eq(got, cases[i].value, "%s: value %lld", cases[i].label, (long long)got);
        if (r != ST_CAST_OK) cr_expect_eq(got, 12345, "%s: out written on failure", cases[i].label);
    }
}

typedef struct text_case {
    st_value v;
    st_cast_result want;
    const char *value;
    const char *label;
} text_case;

Test(cast, to_text_table)
{
    const text_case cases[] = {
        {text("MAT0001"), ST_CAST_OK, "MAT0001", "plain"},
        {text("  MAT0001\t\n"), ST_CAST_OK, "MAT0001", "trimmed"},
        {text(" a b "), ST_CAST_OK, "a b", "inner space kept"},
        {text("\xC3\xA9t\xC3\xA9"), ST_CAST_OK, "\xC3\xA9t\xC3\xA9", "UTF-8"},
        {text(""), ST_CAST_EMPTY, NULL, "empty"},
        {text(" \t "), ST_CAST_EMPTY, NULL, "blank"},
        {text("MAT\xFF"), ST_CAST_BAD_UTF8, NULL, "invalid UTF-8"},
        {text("\xED\xA0\x80"), ST_CAST_BAD_UTF8, NULL, "surrogate"},
        {text("\xC0\xAF"), ST_CAST_BAD_UTF8, NULL, "overlong"},
        {integer(150), ST_CAST_OK, "150", "integer"},
        {integer(-7), ST_CAST_OK, "-7", "negative integer"},
        {integer(INT64_MIN), ST_CAST_OK, "-9223372036854775808", "INT64_MIN"},
        {integer(INT64_MAX), ST_CAST_OK, "9223372036854775807", "INT64_MAX"},
        {real(3.0), ST_CAST_OK, "3", "integral real"},
        {real(-0.0), ST_CAST_OK, "0", "-0.0"},
        {real(3.5), ST_CAST_NOT_INTEGER, NULL, "fractional real"},
        {real(1e300), ST_CAST_OUT_OF_RANGE, NULL, "1e300"},
        {real(NAN), ST_CAST_NOT_FINITE, NULL, "NaN"},
        {(st_value){.cls = 0}, ST_CAST_NULL, NULL, "NULL"},
        {blob("MAT1", 4), ST_CAST_BLOB, NULL, "blob"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char num[ST_CAST_NUM_MAX];
        const char *s = NULL;
        size_t len = 0;
        st_cast_result r = st_cast_to_text(&cases[i].v, num, &s, &len);
        cr_expect_eq(r, cases[i].want, "%s: got %s", cases[i].label, st_cast_result_name(r));
        if (r == ST_CAST_OK && cases[i].value) {
            cr_expect_eq(len, strlen(cases[i].value), "%s", cases[i].label);
            cr_expect_eq(memcmp(s, cases[i].value, len), 0, "%s", cases[i].label);
        }
    }
}

/* Naive reference: strtoll on a trimmed NUL-terminated copy. */
static st_cast_result ref_i64(const char *s, int64_t *out)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) n--;
    if (!n) return ST_CAST_EMPTY;
    char buf[64];
    if (n >= sizeof buf) return ST_CAST_NOT_INTEGER;
    memcpy(buf, s, n);
    buf[n] = '\0';
    size_t i = (buf[0] == '+' || buf[0] == '-') ? 1 : 0;
    if (!buf[i]) return ST_CAST_NOT_INTEGER;
    for (size_t k = i; buf[k]; k++)
        if (buf[k] < '0' || buf[k] > '9') return ST_CAST_NOT_INTEGER;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return ST_CAST_OUT_OF_RANGE;
    *out = v;
    return ST_CAST_OK;
}

Test(cast, to_i64_matches_strtoll_reference)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    static const char alphabet[] = "0123456789+- \t.e9";
    for (int it = 0; it < 200000; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char s[32];
        size_t n = (size_t)(x % 24);
        uint64_t y = x;
        for (size_t k = 0; k < n; k++) {
            s[k] = alphabet[y % (sizeof alphabet - 1)];
            y = y / 17 + (x >> 40) * 3 + k;
        }
        s[n] = '\0';
        int64_t a = 0, b = 0;
        st_value v = text(s);
        st_cast_result ra = st_cast_to_i64(&v, &a), rb = ref_i64(s, &b);
        cr_assert_eq(ra, rb, "'%s': %s vs %s", s, st_cast_result_name(ra), st_cast_result_name(rb));
        if (ra == ST_CAST_OK) cr_assert_eq(a, b, "'%s'", s);
    }
}

Test(cast, render)
{
    static const struct {
        st_value v;
        const char *want;
    } cases[] = {
        {{.cls = 0}, "NULL"},
        {{.cls = 1, .i = -42}, "-42"},
        {{.cls = 1, .i = INT64_MIN}, "-9223372036854775808"},
        {{.cls = 2, .r = 0.1}, "0.10000000000000001"},
        {{.cls = 2, .r = 3.0}, "3"},
        {{.cls = 3, .s = "MAT 1", .len = 5}, "MAT 1"},
        {{.cls = 3, .s = "a\xFF", .len = 2}, "x'61ff'"},
        {{.cls = 4, .s = "\x00\x01\xAB", .len = 3}, "x'0001ab'"},
        {{.cls = 4, .s = "", .len = 0}, "x''"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_buf b;
        st_buf_init(&b);
        st_cast_render(&b, &cases[i].v);
        cr_assert(st_buf_ok(&b));
        cr_expect_eq(b.len, strlen(cases[i].want), "case %zu", i);
        cr_expect_eq(memcmp(b.data, cases[i].want, b.len), 0, "case %zu: got '%.*s'", i, (int)b.len, b.data);
        st_buf_free(&b);
    }
    /* long blob crosses the internal chunk */
    char big[300];
    for (int i = 0; i < 300; i++) big[i] = (char)i;
    st_buf b;
    st_buf_init(&b);
    st_value v = blob(big, sizeof big);
    st_cast_render(&b, &v);
    cr_assert_eq(b.len, 3 + 600);
    cr_expect_eq(memcmp(b.data + 2 + 2 * 255, "ff00", 4), 0);
    st_buf_free(&b);
}

/* Builds a bronze triple of `n` rows from (class, value-or-raw) specs. */
Test(cast, value_from_bronze)
{
    st_column val, cls, raw;
    st_column_init(&val, ST_TYPE_F64);
    st_column_init(&cls, ST_TYPE_I32);
    st_column_init(&raw, ST_TYPE_BYTES);
    /* 0: NULL */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 0), ST_OK);
    cr_assert_eq(st_column_push_null(&raw), ST_OK);
    /* 1: REAL in value */
    cr_assert_eq(st_column_push_f64(&val, 2.5), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 2), ST_OK);
    cr_assert_eq(st_column_push_null(&raw), ST_OK);
    /* 2: exact INTEGER in a float column */
    cr_assert_eq(st_column_push_f64(&val, 7.0), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 1), ST_OK);
    cr_assert_eq(st_column_push_null(&raw), ST_OK);
    /* 3: inexact INTEGER in raw */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 1), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, "9007199254740993", 16), ST_OK);
    /* 4: TEXT in raw */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 3), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, " 12 ", 4), ST_OK);
    /* 5: inconsistent: both present */
    cr_assert_eq(st_column_push_f64(&val, 1.0), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 2), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, "1", 1), ST_OK);
    /* 6: bad class */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 7), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, "1", 1), ST_OK);
    /* 7: REAL raw %.17g that parses back */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 2), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, "0.10000000000000001", 19), ST_OK);
    /* 8: INTEGER raw that does not parse */
    cr_assert_eq(st_column_push_null(&val), ST_OK);
    cr_assert_eq(st_column_push_i32(&cls, 1), ST_OK);
    cr_assert_eq(st_column_push_str(&raw, "12x", 3), ST_OK);

    st_value v;
    int64_t i;
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 0, &v));
    cr_expect_eq(v.cls, 0);
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 1, &v));
    cr_expect_eq(v.cls, 2);
    cr_expect_eq(v.r, 2.5);
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 2, &v));
    cr_expect_eq(v.cls, 1);
    cr_expect_eq(v.i, 7);
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 3, &v));
    cr_expect_eq(v.i, 9007199254740993LL);
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 4, &v));
    cr_expect_eq(st_cast_to_i64(&v, &i), ST_CAST_OK);
    cr_expect_eq(i, 12);
    cr_expect_not(st_value_from_bronze(&val, &cls, &raw, 5, &v));
    cr_expect_not(st_value_from_bronze(&val, &cls, &raw, 6, &v));
    cr_assert(st_value_from_bronze(&val, &cls, &raw, 7, &v));
    cr_expect_eq(v.r, 0.1);
    cr_expect_not(st_value_from_bronze(&val, &cls, &raw, 8, &v));
    cr_expect_not(st_value_from_bronze(&val, &cls, &raw, 9, &v), "row out of range");
    st_column_free(&val);
    st_column_free(&cls);
    st_column_free(&raw);
}
