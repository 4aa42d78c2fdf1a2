/*
 * sqlite_internal.h: small helpers shared by the SQLite source reader
 * (formats/sqlite_source.c) and the bronze value casts (pipeline/cast.c).
 * Not installed. Everything here is static inline so that no public
 * symbol is defined twice when a shared UTF-8 validator lands elsewhere.
 */
#ifndef STRATA_SQLITE_INTERNAL_H
#define STRATA_SQLITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "strata/utf8.h"

/* Strict UTF-8 (RFC 3629): the one validator of the project,
 * st_utf8_valid (formats/utf8.c), under the name these files use. */
static inline bool utf8_ok(const uint8_t *s, size_t len) { return st_utf8_valid((const char *)s, len); }

/* Writes v in base 10 into out (at least 21 bytes), no NUL; returns the
 * length. INT64_MIN included. */
static inline size_t i64_to_dec(int64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (u % 10));
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

/* ASCII lower-case comparison of two NUL-terminated names (SQLite's own
 * notion of case-insensitive identifiers). */
static inline bool name_eq_nocase(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return false;
        if (!x) return true;
    }
}

#endif /* STRATA_SQLITE_INTERNAL_H */
