/*
 * buf.c: st_buf, the growable text buffer (strata/buf.h).
 */
#include "strata/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_buf_init(st_buf *b) { memset(b, 0, sizeof *b); }

void st_buf_free(st_buf *b)
{
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

void st_buf_reset(st_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static bool reserve(st_buf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap && b->data) return true;
    if (extra > SIZE_MAX / 4 - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void st_buf_append(st_buf *b, const void *p, size_t n)
{
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void st_buf_puts(st_buf *b, const char *s) { st_buf_append(b, s, strlen(s)); }

void st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void st_buf_json_str(st_buf *b, const char *s, size_t n)
{
    st_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        st_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': st_buf_puts(b, "\\\""); break;
        case '\\': st_buf_puts(b, "\\\\"); break;
        case '\n': st_buf_puts(b, "\\n"); break;
        case '\r': st_buf_puts(b, "\\r"); break;
        case '\t': st_buf_puts(b, "\\t"); break;
        default: st_buf_printf(b, "\\u%04x", c); break;
        }
    }
    st_buf_append(b, s + run, n - run);
    st_buf_append(b, "\"", 1);
}

void st_buf_json_f64(st_buf *b, double v)
{
    if (!isfinite(v)) {
        st_buf_puts(b, "null");
        return;
    }
    st_buf_printf(b, "%.17g", v);
}

void st_buf_put_fields(st_buf *b, const char *const *seps, const char *const *vals, size_t n,
                       void (*put)(st_buf *b, const char *s))
{
    for (size_t i = 0; i < n; i++) {
        st_buf_puts(b, seps[i]);
        put(b, vals[i]);
    }
}

void st_fmt_thousands(int64_t v, char out[32])
{
    char tmp[32];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = 0;
    do {
        if (n && n % 4 == 3) tmp[n++] = ',';
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[n++] = '-';
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}
