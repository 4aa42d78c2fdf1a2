/*
 * clean_internal.h: customer field cleaning (pipeline/clean.c).
 * All functions read (s, len) and write at most `cap` bytes to `out`,
 * returning the bytes written; nothing allocates.
 */
#ifndef STRATA_CLEAN_INTERNAL_H
#define STRATA_CLEAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Borrowed view of s without leading/trailing ASCII whitespace. */
void st_clean_trim(const char *s, size_t len, const char **out, size_t *out_len);
/* Trimmed, lower-cased e-mail; *valid tells whether it looks deliverable. */
size_t st_clean_email(const char *s, size_t len, char *out, size_t cap, bool *valid);
/* Standardised country name (see clean.c for the rule). */
size_t st_clean_country(const char *s, size_t len, char *out, size_t cap);

#endif
