/*
 * buf.h: a growable byte buffer for building text (JSON, HTML, CSV).
 * Appends never fail loudly: on allocation failure the buffer is marked
 * failed (st_buf_ok() is false) and further appends do nothing, so a
 * builder can check once at the end. The buffer is always NUL-terminated
 * when ok. Caller owns the storage; free with st_buf_free().
 */
#ifndef STRATA_BUF_H
#define STRATA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} st_buf;

void st_buf_init(st_buf *b);
void st_buf_free(st_buf *b);
void st_buf_reset(st_buf *b);
static inline bool st_buf_ok(const st_buf *b) { return !b->failed; }
void st_buf_append(st_buf *b, const void *p, size_t n);
void st_buf_puts(st_buf *b, const char *s);
void st_buf_printf(st_buf *b, const char *fmt, ...) ST_PRINTF(2, 3);
/* Appends s as a JSON string literal (quotes and escapes included). */
void st_buf_json_str(st_buf *b, const char *s, size_t n);
/* Appends a double as JSON: %.17g, and null for NaN/inf. */
void st_buf_json_f64(st_buf *b, double v);
/* Appends seps[0], vals[0], seps[1], vals[1], ... for i < n, each value
 * through put (an escaper: HTML, Markdown cell, JSON string). A record
 * written as fields (a table row, a JSON object) is one call. */
void st_buf_put_fields(st_buf *b, const char *const *seps, const char *const *vals, size_t n,
                       void (*put)(st_buf *b, const char *s));
/* Formats v with thousands separators ("1,234,567") into out (32 bytes). */
void st_fmt_thousands(int64_t v, char out[32]);

#ifdef __cplusplus
}
#endif
#endif
