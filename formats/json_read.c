/*
 * formats/json_read.c: recursive-descent JSON reader (json_read_internal.h).
 *
 * A cursor (pos) walks buf[0..len); every read goes through peek()/take()
 * which check pos < len, so no path reads past the end whatever the
 * bytes. Recursion depth is capped at ST_JSON_MAX_DEPTH. Arrays and
 * objects grow geometrically with overflow-checked sizes. Numbers are
 * copied (at most 64 bytes) into a NUL-terminated scratch buffer before
 * strtod, since the input is not NUL-terminated. The grammar is RFC 8259
 * with two deliberate leniencies: a leading UTF-8 BOM is skipped, and
 * invalid \u escapes (lone surrogates) become U+FFFD instead of errors.
 */
#include "json_read_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/column.h"

typedef struct parser {
    const char *buf;
    size_t len, pos;
    const char *name;
    st_error *err;
} parser;

static st_status fail(parser *p, const char *what)
{
    return st_error_set(p->err, ST_ERR_CORRUPT, "%s: bad JSON at byte %zu: %s", p->name, p->pos, what);
}

static st_status nomem(parser *p)
{
    return st_error_set(p->err, ST_ERR_NOMEM, "%s: out of memory parsing JSON", p->name);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->buf[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->buf[p->pos] : -1; }

static bool literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->buf + p->pos, word, n) != 0) return false;
    p->pos += n;
    return true;
}

/* Appends one byte to a growing string. */
typedef struct sbuf {
    char *d;
    size_t len, cap;
} sbuf;

static bool sb_put(sbuf *s, char c)
{
    if (s->len + 1 >= s->cap) {
        size_t cap = s->cap ? s->cap : 32;
        while (cap <= s->len + 1) {
            if (cap > SIZE_MAX / 2) return false;
            cap *= 2;
        }
        char *d = realloc(s->d, cap);
        if (!d) return false;
        s->d = d;
        s->cap = cap;
    }
    s->d[s->len++] = c;
    s->d[s->len] = '\0';
    return true;
}

static bool sb_utf8(sbuf *s, uint32_t cp)
{
    if (cp == 0) return true; /* keep strings NUL-free */
    if (cp < 0x80) return sb_put(s, (char)cp);
    if (cp < 0x800) return sb_put(s, (char)(0xC0 | (cp >> 6))) && sb_put(s, (char)(0x80 | (cp & 0x3F)));
    if (cp < 0x10000)
        return sb_put(s, (char)(0xE0 | (cp >> 12))) && sb_put(s, (char)(0x80 | ((cp >> 6) & 0x3F))) &&
               sb_put(s, (char)(0x80 | (cp & 0x3F)));
    return sb_put(s, (char)(0xF0 | (cp >> 18))) && sb_put(s, (char)(0x80 | ((cp >> 12) & 0x3F))) &&
           sb_put(s, (char)(0x80 | ((cp >> 6) & 0x3F))) && sb_put(s, (char)(0x80 | (cp & 0x3F)));
}

static bool hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->buf[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return false;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* Parses a string literal at pos (which holds '"'). Caller owns *out. */
static st_status parse_string(parser *p, char **out, size_t *out_len)
{
    sbuf s = {0};
    st_status st = ST_OK;
    p->pos++; /* opening quote */
    if (!sb_put(&s, '\0')) { /* ensure an allocation even for "" */
        st = nomem(p);
        goto done;
    }
    s.len = 0;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            st = fail(p, "unterminated string");
            goto done;
        }
        p->pos++;
        if (c == '"') break;
        if (c < 0x20) {
            p->pos--;
            st = fail(p, "control character in string");
            goto done;
        }
        if (c != '\\') {
            if (!sb_put(&s, (char)c)) {
                st = nomem(p);
                goto done;
            }
            continue;
        }
        int e = peek(p);
        if (e < 0) {
            st = fail(p, "unterminated escape");
            goto done;
        }
        p->pos++;
        char lit = 0;
        switch (e) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!hex4(p, &cp)) {
                st = fail(p, "bad \\u escape");
                goto done;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                size_t save = p->pos;
                if (literal(p, "\\u") && hex4(p, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    p->pos = save;
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            if (!sb_utf8(&s, cp)) {
                st = nomem(p);
                goto done;
            }
            continue;
        }
        default:
            p->pos--;
            st = fail(p, "unknown escape");
            goto done;
        }
        if (!sb_put(&s, lit)) {
            st = nomem(p);
            goto done;
        }
    }
    *out = s.d;
    *out_len = s.len;
    s.d = NULL;
done:
    free(s.d);
    return st;
}

static st_status parse_number(parser *p, st_json *v)
{
    size_t start = p->pos;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    } else {
        return fail(p, "bad number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "bad fraction");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "bad exponent");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    char tmp[72];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) {
        /* absurdly long literal: keep its magnitude approximately */
        n = sizeof tmp - 1;
    }
    memcpy(tmp, p->buf + start, n);
    tmp[n] = '\0';
    v->kind = ST_JSON_NUM;
    v->num = strtod(tmp, NULL);
    return ST_OK;
}

static st_status parse_value(parser *p, st_json *v, int depth);

/* Appends a parsed child to v->items (and key to v->keys for objects). */
static st_status push_item(parser *p, st_json *v, size_t *cap, st_json *child, char *key)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4, bytes;
        if (!st_size_mul(nc, sizeof *v->items, &bytes)) return nomem(p);
        st_json *items = realloc(v->items, bytes);
        if (!items) return nomem(p);
        v->items = items;
        if (v->kind == ST_JSON_OBJ) {
            char **keys = realloc(v->keys, nc * sizeof *keys);
            if (!keys) return nomem(p);
            v->keys = keys;
        }
        *cap = nc;
    }
    v->items[v->n] = *child;
    if (v->kind == ST_JSON_OBJ) v->keys[v->n] = key;
    v->n++;
    return ST_OK;
}

static st_status parse_container(parser *p, st_json *v, int depth, bool is_obj)
{
    if (depth >= ST_JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    v->kind = is_obj ? ST_JSON_OBJ : ST_JSON_ARR;
    size_t cap = 0;
    char close = is_obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (peek(p) == close) {
        p->pos++;
        return ST_OK;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len;
        st_json child = {0};
        skip_ws(p);
        if (is_obj) {
            if (peek(p) != '"') return fail(p, "expected a key");
            ST_TRY(parse_string(p, &key, &key_len));
            skip_ws(p);
            if (peek(p) != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        st_status st = parse_value(p, &child, depth + 1);
        if (st == ST_OK) st = push_item(p, v, &cap, &child, key);
        if (st != ST_OK) {
            free(key);
            st_json_free(&child);
            return st;
        }
        skip_ws(p);
        int c = peek(p);
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == close) {
            p->pos++;
            return ST_OK;
        }
        return fail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static st_status parse_value(parser *p, st_json *v, int depth)
{
    skip_ws(p);
    int c = peek(p);
    switch (c) {
    case '{': return parse_container(p, v, depth, true);
    case '[': return parse_container(p, v, depth, false);
    case '"':
        v->kind = ST_JSON_STR;
        return parse_string(p, &v->str, &v->len);
    case 't':
        if (!literal(p, "true")) return fail(p, "bad literal");
        v->kind = ST_JSON_BOOL;
        v->b = true;
        return ST_OK;
    case 'f':
        if (!literal(p, "false")) return fail(p, "bad literal");
        v->kind = ST_JSON_BOOL;
        return ST_OK;
    case 'n':
        if (!literal(p, "null")) return fail(p, "bad literal");
        v->kind = ST_JSON_NULL;
        return ST_OK;
    case -1: return fail(p, "unexpected end");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
        return fail(p, "unexpected character");
    }
}

st_status st_json_parse(const char *buf, size_t len, const char *name, st_json *out, st_error *err)
{
    memset(out, 0, sizeof *out);
    parser p = {buf, buf ? len : 0, 0, name ? name : "JSON", err};
    if (p.len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    st_status st = parse_value(&p, out, 0);
    if (st == ST_OK) {
        skip_ws(&p);
        if (p.pos != p.len) st = fail(&p, "trailing bytes");
    }
    if (st != ST_OK) st_json_free(out);
    return st;
}

void st_json_free(st_json *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        st_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}

const st_json *st_json_get(const st_json *v, const char *key)
{
    if (!v || v->kind != ST_JSON_OBJ) return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (v->keys[i] && strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

const st_json *st_json_at(const st_json *v, size_t i)
{
    if (!v || v->kind != ST_JSON_ARR || i >= v->n) return NULL;
    return &v->items[i];
}

size_t st_json_count(const st_json *v)
{
    return v && (v->kind == ST_JSON_ARR || v->kind == ST_JSON_OBJ) ? v->n : 0;
}

const char *st_json_string(const st_json *v, const char *dflt)
{
    return v && v->kind == ST_JSON_STR ? v->str : dflt;
}

double st_json_number(const st_json *v, double dflt)
{
    if (!v) return dflt;
    if (v->kind == ST_JSON_NUM) return v->num;
    if (v->kind == ST_JSON_STR && v->len > 0 && v->len < 64) {
        char *end;
        double d = strtod(v->str, &end);
        if (*end == '\0' && isfinite(d)) return d;
    }
    return dflt;
}

bool st_json_bool(const st_json *v, bool dflt)
{
    return v && v->kind == ST_JSON_BOOL ? v->b : dflt;
}
