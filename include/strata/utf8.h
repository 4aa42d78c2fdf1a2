/*
 * utf8.h: UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Reads exactly len bytes of s.
 */
#ifndef STRATA_UTF8_H
#define STRATA_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool st_utf8_valid(const char *s, size_t len);

#endif
