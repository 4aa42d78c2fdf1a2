/*
 * pipeline/quality/parse.c: the suite file parser (grammar: docs/QUALITY.md).
 *
 * The text is read line by line; each line is cut into tokens (words,
 * quoted strings and the punctuation , | = [ ] .. -> >= <=), then parsed by
 * a small recursive-descent reader specific to the expectation's kind. The
 * parser is strict on purpose: a suite is a contract a user edits by hand,
 * so a typo must be an error naming line and column
 * ("default.suite:12:1: unknown expectation 'not_nul'"), never a silently
 * ignored check. Input is untrusted (fuzzed): every token is bounded by
 * its line, numbers are parsed from bounded copies, and nothing is
 * allocated from a length the text claims.
 *
 * Everything the suite owns (names, lists, argument text) lives in one
 * arena freed by st_suite_free().
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quality_internal.h"
#include "strata/buf.h"
#include "strata/file.h"

/* ---- string set ----------------------------------------------------------- */

/* Open-addressing hash set of arena strings, each with an int value: the
 * expectation ids taken so far (value: the next '#n' suffix to try for an
 * automatic id with this base) and the sections seen (value: their line).
 * Lookups are O(1) expected, so a suite of n rules parses in O(n) (a list
 * scanned per rule made 10,000 rules take minutes). Grows at 1/2 full. */
typedef struct strset_ent {
    const char *key;
    int value;
} strset_ent;

typedef struct strset {
    strset_ent *e;
    size_t n, cap; /* cap a power of two or 0 */
} strset;

static strset_ent *strset_find(const strset *t, const char *key)
{
    if (!t->cap) return NULL;
    size_t mask = t->cap - 1, i = (size_t)st_hash64(0, key, strlen(key)) & mask;
    for (; t->e[i].key; i = (i + 1) & mask)
        if (!strcmp(t->e[i].key, key)) return &t->e[i];
    return NULL;
}

/* Adds key (borrowed: it must outlive the set) with value; false when out
 * of memory. The key must not be present. */
static bool strset_add(strset *t, const char *key, int value)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        strset_ent *e = calloc(cap, sizeof *e);
        if (!e) return false;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->e[i].key) continue;
            size_t j = (size_t)st_hash64(0, t->e[i].key, strlen(t->e[i].key)) & (cap - 1);
            while (e[j].key) j = (j + 1) & (cap - 1);
            e[j] = t->e[i];
        }
        free(t->e);
        t->e = e;
        t->cap = cap;
    }
    size_t mask = t->cap - 1, i = (size_t)st_hash64(0, key, strlen(key)) & mask;
    while (t->e[i].key) i = (i + 1) & mask;
    t->e[i].key = key;
    t->e[i].value = value;
    t->n++;
    return true;
}

/* ---- arena ---------------------------------------------------------------- */

void st_qarena_free(st_qarena *a)
{
    st_qarena_block *b = a->head;
    while (b) {
        st_qarena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

void *st_qarena_alloc(st_qarena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX / 2) return NULL;
    n = (n + align - 1) / align * align;
    if (n == 0) n = align;
    st_qarena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *st_qarena_strndup(st_qarena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *p = st_qarena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *st_qarena_strdup(st_qarena *a, const char *s) { return st_qarena_strndup(a, s, strlen(s)); }

/* ---- kinds ---------------------------------------------------------------- */

static const char *const kind_names[ST_Q_KIND_COUNT] = {
    "row_count_between", "column_exists", "column_type",   "not_null",     "completeness",
    "values_between",    "temporal_window", "values_in_set", "storage_class", "unique",
    "no_duplicate_keys", "referential",   "reject_rate",
};

const char *st_qkind_name(st_qkind k)
{
    if ((int)k < 0 || k >= ST_Q_KIND_COUNT) return "?";
    return kind_names[k];
}

static bool kind_takes_mostly(st_qkind k)
{
    return k == ST_Q_NOT_NULL || k == ST_Q_VALUES_BETWEEN || k == ST_Q_VALUES_IN ||
           k == ST_Q_STORAGE_CLASS || k == ST_Q_REFERENTIAL;
}

static const char *const known_layers[] = {"bronze", "silver", "gold", "platinum"};

/* ---- tokens --------------------------------------------------------------- */

typedef enum tkind { T_WORD, T_STR, T_COMMA, T_PIPE, T_EQ, T_LBR, T_RBR, T_RANGE, T_ARROW, T_GE, T_LE } tkind;

typedef struct tok {
    tkind k;
    const char *s; /* WORD: into the line; STR: unescaped, into scratch */
    size_t n;
    int col;       /* 1-based column of the token's first byte */
} tok;

typedef struct parser {
    st_suite *suite;
    const char *name;
    int line;
    st_error *err;
    tok *toks;
    size_t n_toks, cap_toks;
    size_t i;          /* cursor into toks */
    char *scratch;     /* unescaped strings of the current line */
    size_t cap_scratch;
    const char *layer; /* current section, NULL before the first */
    const char *table;
    st_buf args;       /* canonical argument text being built */
    strset ids;        /* every expectation id so far */
} parser;

static st_status perr(parser *p, int col, const char *fmt, ...) ST_PRINTF(3, 4);

static st_status perr(parser *p, int col, const char *fmt, ...)
{
    char msg[ST_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return st_error_set(p->err, ST_ERR_INVALID, "%s:%d:%d: %s", p->name, p->line, col, msg);
}

static bool is_word_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '+' || c == '-' || c == '*' || c == ':' || c == '/';
}

static st_status push_tok(parser *p, tkind k, const char *s, size_t n, int col)
{
    if (p->n_toks == p->cap_toks) {
        size_t cap = p->cap_toks ? p->cap_toks * 2 : 32;
        tok *t = realloc(p->toks, cap * sizeof *t);
        if (!t) return st_error_set(p->err, ST_ERR_NOMEM, "%s: out of memory", p->name);
        p->toks = t;
        p->cap_toks = cap;
    }
    p->toks[p->n_toks++] = (tok){k, s, n, col};
    return ST_OK;
}

/* Cuts line[0..len) (no newline) into tokens; '#' outside a string starts a
 * comment. Strings are unescaped into p->scratch (never longer than the line). */
static st_status tokenize(parser *p, const char *line, size_t len)
{
    p->n_toks = 0;
    p->i = 0;
    if (len + 1 > p->cap_scratch) {
        char *s = realloc(p->scratch, len + 1);
        if (!s) return st_error_set(p->err, ST_ERR_NOMEM, "%s: out of memory", p->name);
        p->scratch = s;
        p->cap_scratch = len + 1;
    }
    size_t sp = 0; /* scratch used */
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)line[i];
        int col = i < (size_t)INT_MAX ? (int)i + 1 : INT_MAX;
        if (c == ' ' || c == '\t' || (c == '\r' && i + 1 == len)) {
            i++;
            continue;
        }
        if (c == '#') break;
        st_status s = ST_OK;
        if (c == '"') {
            size_t start = sp;
            i++;
            bool closed = false;
            while (i < len) {
                unsigned char d = (unsigned char)line[i];
                if (d == '"') {
                    closed = true;
                    i++;
                    break;
                }
                if (d == '\\') {
                    if (i + 1 >= len) break;
                    char e = line[i + 1];
                    char out;
                    if (e == '"' || e == '\\') out = e;
                    else if (e == 'n') out = '\n';
                    else if (e == 't') out = '\t';
                    else return perr(p, (int)(i + 1), "bad escape '\\%c' in string (use \\\" \\\\ \\n \\t)", isprint((unsigned char)e) ? e : '?');
                    p->scratch[sp++] = out;
                    i += 2;
                    continue;
                }
                if (d < 0x20 && d != '\t') return perr(p, (int)(i + 1), "control character in string");
                p->scratch[sp++] = (char)d;
                i++;
            }
            if (!closed) return perr(p, col, "unterminated string");
            s = push_tok(p, T_STR, p->scratch + start, sp - start, col);
            p->scratch[sp++] = '\0';
        } else if (c == ',') {
            s = push_tok(p, T_COMMA, line + i, 1, col), i++;
        } else if (c == '|') {
            s = push_tok(p, T_PIPE, line + i, 1, col), i++;
        } else if (c == '=') {
            s = push_tok(p, T_EQ, line + i, 1, col), i++;
        } else if (c == '[') {
            s = push_tok(p, T_LBR, line + i, 1, col), i++;
        } else if (c == ']') {
            s = push_tok(p, T_RBR, line + i, 1, col), i++;
        } else if (c == '.' && i + 1 < len && line[i + 1] == '.') {
            s = push_tok(p, T_RANGE, line + i, 2, col), i += 2;
        } else if (c == '-' && i + 1 < len && line[i + 1] == '>') {
            s = push_tok(p, T_ARROW, line + i, 2, col), i += 2;
        } else if (c == '>' && i + 1 < len && line[i + 1] == '=') {
            s = push_tok(p, T_GE, line + i, 2, col), i += 2;
        } else if (c == '<' && i + 1 < len && line[i + 1] == '=') {
            s = push_tok(p, T_LE, line + i, 2, col), i += 2;
        } else if (is_word_char(c)) {
            size_t start = i;
            while (i < len && is_word_char((unsigned char)line[i])) {
                if (i > start && line[i] == '.' && i + 1 < len && line[i + 1] == '.') break;
                if (line[i] == '-' && i + 1 < len && line[i + 1] == '>') break;
                i++;
            }
            s = push_tok(p, T_WORD, line + start, i - start, col);
        } else if (isprint(c)) {
            return perr(p, col, "unexpected character '%c'", c);
        } else {
            return perr(p, col, "unexpected byte 0x%02x", c);
        }
        if (s != ST_OK) return s;
    }
    return ST_OK;
}

/* ---- token helpers -------------------------------------------------------- */

static bool at_end(const parser *p) { return p->i >= p->n_toks; }
static const tok *peek(const parser *p) { return at_end(p) ? NULL : &p->toks[p->i]; }

/* Column for "missing X" errors: just past the previous token. */
static int end_col(const parser *p)
{
    if (p->i == 0 || p->n_toks == 0) return 1;
    const tok *t = &p->toks[p->i - 1];
    return t->col + (int)(t->n < 1000 ? t->n : 1000);
}

/* 'text' of a token for messages, truncated. */
static void tok_text(const tok *t, char *buf, size_t cap)
{
    size_t n = t->n < cap - 1 ? t->n : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->s[i];
        buf[i] = isprint(c) ? (char)c : '?';
    }
    buf[n] = '\0';
}

static st_status unexpected(parser *p, const char *what)
{
    const tok *t = peek(p);
    if (!t) return perr(p, end_col(p), "missing %s", what);
    char tx[48];
    tok_text(t, tx, sizeof tx);
    return perr(p, t->col, "expected %s, got '%s'", what, tx);
}

/* Records a consumed argument token into the canonical args text. */
static void args_add(parser *p, const tok *t)
{
    st_buf *b = &p->args;
    bool glue = t->k == T_COMMA || t->k == T_PIPE;
    if (b->len > 0 && !glue) {
        char last = b->data[b->len - 1];
        if (last != ',' && last != '|') st_buf_puts(b, " ");
    }
    if (t->k == T_STR) st_buf_json_str(b, t->s, t->n);
    else st_buf_append(b, t->s, t->n);
}

static bool tok_is(const tok *t, tkind k) { return t && t->k == k; }

static bool next_is_option(const parser *p)
{
    return p->i + 1 < p->n_toks && p->toks[p->i].k == T_WORD && p->toks[p->i + 1].k == T_EQ;
}

static st_status expect_punct(parser *p, tkind k, const char *what)
{
    const tok *t = peek(p);
    if (!tok_is(t, k)) return unexpected(p, what);
    args_add(p, t);
    p->i++;
    return ST_OK;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || n > 128) return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

static st_status oom(parser *p) { return st_error_set(p->err, ST_ERR_NOMEM, "%s: out of memory", p->name); }

/* IDENT: a column or table name. */
static st_status parse_ident(parser *p, const char *what, const char **out)
{
    const tok *t = peek(p);
    if (!tok_is(t, T_WORD) || next_is_option(p)) return unexpected(p, what);
    if (!is_ident(t->s, t->n)) {
        char tx[48];
        tok_text(t, tx, sizeof tx);
        return perr(p, t->col, "bad %s '%s' (letters, digits and _, not starting with a digit)", what, tx);
    }
    *out = st_qarena_strndup(&p->suite->arena, t->s, t->n);
    if (!*out) return oom(p);
    args_add(p, t);
    p->i++;
    return ST_OK;
}

/* IDENT ('|' IDENT)*, at most `max` (<= 16) names, each a `what`: into
 * *out (in the suite's arena) and *n; more is too_many. */
static st_status parse_alternatives(parser *p, const char *what, size_t max, const char *too_many,
                                    const char *const **out, size_t *n_out)
{
    const char *names[16];
    size_t n = 0;
    for (;;) {
        if (n == max) return perr(p, peek(p) ? peek(p)->col : end_col(p), "%s", too_many);
        ST_TRY(parse_ident(p, what, &names[n]));
        n++;
        if (!tok_is(peek(p), T_PIPE)) break;
        args_add(p, peek(p));
        p->i++;
    }
    const char **arr = st_qarena_alloc(&p->suite->arena, n * sizeof *arr);
    if (!arr) return oom(p);
    memcpy(arr, names, n * sizeof *arr);
    *out = arr;
    *n_out = n;
    return ST_OK;
}

/* COL := IDENT ('|' IDENT)* */
static st_status parse_colref(parser *p, st_qcolref *out)
{
    return parse_alternatives(p, "column name", 16, "too many alternative names (at most 16)", &out->names,
                              &out->n_names);
}

/* COLS := COL (',' COL)* */
static st_status parse_cols(parser *p, st_expectation *e, size_t max)
{
    size_t cap = 4, n = 0;
    st_qcolref *cols = st_qarena_alloc(&p->suite->arena, cap * sizeof *cols);
    if (!cols) return oom(p);
    for (;;) {
        if (n == max) return perr(p, peek(p) ? peek(p)->col : end_col(p), "too many columns (at most %zu)", max);
        if (n == cap) {
            st_qcolref *c2 = st_qarena_alloc(&p->suite->arena, cap * 2 * sizeof *c2);
            if (!c2) return oom(p);
            memcpy(c2, cols, n * sizeof *cols);
            cols = c2;
            cap *= 2;
        }
        ST_TRY(parse_colref(p, &cols[n]));
        n++;
        if (!tok_is(peek(p), T_COMMA)) break;
        args_add(p, peek(p));
        p->i++;
    }
    e->cols = cols;
    e->n_cols = n;
    return ST_OK;
}

/* Parses a whole token as a number: an integer when it is one (is_int,
 * *iv exact), else a finite double. False when it is not a number. */
static bool parse_num_text(const char *s, size_t n, double *dv, bool *is_int, int64_t *iv)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* strtod accepts hex, inf, nan: allow only decimal digits, sign, '.', exponent. */
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (!(isdigit((unsigned char)c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) return false;
    }
    if (!isdigit((unsigned char)buf[0]) && !(n > 1 && (buf[0] == '-' || buf[0] == '+') && isdigit((unsigned char)buf[1])))
        return false;
    char *end;
    errno = 0;
    long long ll = strtoll(buf, &end, 10);
    if (*end == '\0') {
        if (errno == ERANGE) return false;
        *is_int = true;
        *iv = ll;
        *dv = (double)ll;
        return true;
    }
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d)) return false;
    *is_int = false;
    *dv = d;
    *iv = 0;
    return true;
}

static st_status parse_number(parser *p, const char *what, double *dv, bool *is_int, int64_t *iv)
{
    const tok *t = peek(p);
    if (!tok_is(t, T_WORD) || next_is_option(p)) return unexpected(p, what);
    if (!parse_num_text(t->s, t->n, dv, is_int, iv)) {
        char tx[48];
        tok_text(t, tx, sizeof tx);
        return perr(p, t->col, "bad number '%s' for %s", tx, what);
    }
    args_add(p, t);
    p->i++;
    return ST_OK;
}

static st_status parse_fraction(parser *p, const char *what, double *out)
{
    const tok *t = peek(p);
    bool is_int;
    int64_t iv;
    ST_TRY(parse_number(p, what, out, &is_int, &iv));
    if (!(*out >= 0.0 && *out <= 1.0)) return perr(p, t->col, "%s must be between 0 and 1", what);
    return ST_OK;
}

/* BOUND := NUMBER | '*' */
static st_status parse_bound(parser *p, const char *what, bool *has, double *dv, bool *is_int, int64_t *iv)
{
    const tok *t = peek(p);
    if (tok_is(t, T_WORD) && t->n == 1 && t->s[0] == '*') {
        *has = false;
        args_add(p, t);
        p->i++;
        return ST_OK;
    }
    *has = true;
    return parse_number(p, what, dv, is_int, iv);
}

/* RANGE := BOUND '..' BOUND, lo <= hi. */
static st_status parse_range(parser *p, st_expectation *e, bool ints_only, bool open_ok)
{
    const tok *t0 = peek(p);
    int col = t0 ? t0->col : end_col(p);
    ST_TRY(parse_bound(p, "lower bound", &e->has_lo, &e->lo, &e->lo_is_int, &e->lo_i));
    ST_TRY(expect_punct(p, T_RANGE, "'..' between the bounds"));
    const tok *t1 = peek(p);
    ST_TRY(parse_bound(p, "upper bound", &e->has_hi, &e->hi, &e->hi_is_int, &e->hi_i));
    if (!open_ok && (!e->has_lo || !e->has_hi)) return perr(p, col, "both bounds are required ('*' is not allowed here)");
    if (!e->has_lo && !e->has_hi) return perr(p, col, "at least one bound must be a number");
    if (ints_only && ((e->has_lo && !e->lo_is_int) || (e->has_hi && !e->hi_is_int)))
        return perr(p, col, "bounds must be integers");
    if (e->has_lo && e->has_hi) {
        bool bad = (e->lo_is_int && e->hi_is_int) ? e->lo_i > e->hi_i : e->lo > e->hi;
        if (bad) return perr(p, t1 ? t1->col : col, "lower bound is greater than upper bound");
    }
    return ST_OK;
}

/* LIST := VALUE (',' VALUE)*, VALUE := WORD | STRING. */
static st_status parse_values(parser *p, st_expectation *e, const char *what)
{
    size_t cap = 8, n = 0;
    const char **vals = st_qarena_alloc(&p->suite->arena, cap * sizeof *vals);
    if (!vals) return oom(p);
    for (;;) {
        const tok *t = peek(p);
        if (!(tok_is(t, T_WORD) || tok_is(t, T_STR)) || (t->k == T_WORD && next_is_option(p)))
            return unexpected(p, what);
        if (n == cap) {
            if (cap > SIZE_MAX / (4 * sizeof *vals)) return oom(p);
            const char **v2 = st_qarena_alloc(&p->suite->arena, cap * 2 * sizeof *v2);
            if (!v2) return oom(p);
            memcpy(v2, vals, n * sizeof *vals);
            vals = v2;
            cap *= 2;
        }
        if (t->k == T_STR && memchr(t->s, '\0', t->n)) return perr(p, t->col, "NUL byte in string");
        vals[n] = st_qarena_strndup(&p->suite->arena, t->s, t->n);
        if (!vals[n]) return oom(p);
        n++;
        args_add(p, t);
        p->i++;
        if (!tok_is(peek(p), T_COMMA)) break;
        args_add(p, peek(p));
        p->i++;
    }
    e->values = vals;
    e->n_values = n;
    return ST_OK;
}

static const char *const class_names[] = {"NULL", "INTEGER", "REAL", "TEXT", "BLOB"};

/* storage classes: INTEGER|REAL|TEXT|BLOB or 1..4, stored as names. */
static st_status check_classes(parser *p, st_expectation *e, int col)
{
    for (size_t i = 0; i < e->n_values; i++) {
        const char *v = e->values[i];
        int code = -1;
        for (int c = 0; c <= 4; c++)
            if (!strcmp(v, class_names[c]) || (v[0] == (char)('0' + c) && v[1] == '\0')) code = c;
        if (code < 0)
            return perr(p, col, "unknown storage class '%.40s' (INTEGER, REAL, TEXT, BLOB or 1..4)", v);
        if (code == 0)
            return perr(p, col, "NULL is not checked by storage_class (NULLs are ignored; use not_null)");
        ((const char **)e->values)[i] = class_names[code];
    }
    return ST_OK;
}

static st_status check_types(parser *p, st_expectation *e, int col)
{
    for (size_t i = 0; i < e->n_values; i++) {
        st_type t;
        if (!st_type_parse(e->values[i], &t))
            return perr(p, col, "unknown type '%.40s' (bool, int32, int64, float64, string, bytes)", e->values[i]);
    }
    return ST_OK;
}

/* TYPES := TYPE ('|' TYPE)* */
static st_status parse_types(parser *p, st_expectation *e)
{
    return parse_alternatives(p, "type name", 8, "too many types", &e->values, &e->n_values);
}

/* layer.table.column */
static st_status parse_target(parser *p, st_expectation *e)
{
    const tok *t = peek(p);
    if (!tok_is(t, T_WORD) || next_is_option(p)) return unexpected(p, "target layer.table.column");
    const char *d1 = memchr(t->s, '.', t->n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(t->s + t->n - d1 - 1)) : NULL;
    char tx[48];
    tok_text(t, tx, sizeof tx);
    if (!d1 || !d2) return perr(p, t->col, "expected target layer.table.column, got '%s'", tx);
    size_t n1 = (size_t)(d1 - t->s), n2 = (size_t)(d2 - d1 - 1), n3 = (size_t)(t->s + t->n - d2 - 1);
    if (!is_ident(t->s, n1) || !is_ident(d1 + 1, n2) || !is_ident(d2 + 1, n3))
        return perr(p, t->col, "bad target '%s' (layer.table.column)", tx);
    e->ref_layer = st_qarena_strndup(&p->suite->arena, t->s, n1);
    e->ref_table = st_qarena_strndup(&p->suite->arena, d1 + 1, n2);
    e->ref_column = st_qarena_strndup(&p->suite->arena, d2 + 1, n3);
    if (!e->ref_layer || !e->ref_table || !e->ref_column) return oom(p);
    bool known = false;
    for (size_t i = 0; i < sizeof known_layers / sizeof known_layers[0]; i++)
        if (!strcmp(e->ref_layer, known_layers[i])) known = true;
    if (!known) return perr(p, t->col, "unknown layer '%s' (bronze, silver, gold, platinum)", e->ref_layer);
    args_add(p, t);
    p->i++;
    return ST_OK;
}

/* The kind-specific arguments. */
static st_status parse_args(parser *p, st_expectation *e)
{
    const tok *first = peek(p);
    int col = first ? first->col : end_col(p);
    switch (e->kind) {
    case ST_Q_ROW_COUNT_BETWEEN:
        ST_TRY(parse_range(p, e, true, true));
        if ((e->has_lo && e->lo_i < 0) || (e->has_hi && e->hi_i < 0)) return perr(p, col, "row counts cannot be negative");
        return ST_OK;
    case ST_Q_COLUMN_EXISTS: return parse_cols(p, e, 1024);
    case ST_Q_COLUMN_TYPE:
        ST_TRY(parse_cols(p, e, 1));
        col = peek(p) ? peek(p)->col : end_col(p);
        ST_TRY(parse_types(p, e));
        return check_types(p, e, col);
    case ST_Q_NOT_NULL:
    case ST_Q_UNIQUE: return parse_cols(p, e, 1);
    case ST_Q_COMPLETENESS:
        ST_TRY(parse_cols(p, e, 1));
        ST_TRY(expect_punct(p, T_GE, "'>=' and a fraction"));
        return parse_fraction(p, "completeness threshold", &e->threshold);
    case ST_Q_VALUES_BETWEEN:
        ST_TRY(parse_cols(p, e, 1));
        return parse_range(p, e, false, true);
    case ST_Q_TEMPORAL_WINDOW:
        ST_TRY(parse_cols(p, e, 1));
        return parse_range(p, e, true, false);
    case ST_Q_VALUES_IN:
        ST_TRY(parse_cols(p, e, 1));
        return parse_values(p, e, "value list (v1,v2,...)");
    case ST_Q_STORAGE_CLASS:
        ST_TRY(parse_cols(p, e, 1));
        col = peek(p) ? peek(p)->col : end_col(p);
        ST_TRY(parse_values(p, e, "storage class list (INTEGER,REAL,TEXT,BLOB)"));
        return check_classes(p, e, col);
    case ST_Q_NO_DUPLICATE_KEYS: return parse_cols(p, e, 64);
    case ST_Q_REFERENTIAL:
        ST_TRY(parse_cols(p, e, 1));
        ST_TRY(expect_punct(p, T_ARROW, "'->' and a target layer.table.column"));
        return parse_target(p, e);
    case ST_Q_REJECT_RATE:
        ST_TRY(parse_ident(p, "bronze table name", &e->source_table));
        ST_TRY(expect_punct(p, T_LE, "'<=' and a fraction"));
        return parse_fraction(p, "reject rate threshold", &e->threshold);
    case ST_Q_KIND_COUNT: break;
    }
    return st_error_set(p->err, ST_ERR_INTERNAL, "quality: unhandled kind %d", (int)e->kind);
}

static bool is_id_text(const char *s, size_t n)
{
    if (n == 0 || n > 200) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '/' || c == ':' || c == '-')) return false;
    }
    return true;
}

static bool id_taken(const parser *p, const char *id) { return strset_find(&p->ids, id) != NULL; }

/* OPTIONS := (KEY '=' VALUE)*, KEY in severity, mostly, id. */
static st_status parse_options(parser *p, st_expectation *e, const char **explicit_id)
{
    bool seen_sev = false, seen_mostly = false;
    *explicit_id = NULL;
    while (!at_end(p)) {
        const tok *k = peek(p);
        char kt[48];
        tok_text(k, kt, sizeof kt);
        if (k->k != T_WORD || p->i + 1 >= p->n_toks || p->toks[p->i + 1].k != T_EQ)
            return perr(p, k->col, "unexpected '%s' (options are key=value: severity=, mostly=, id=)", kt);
        p->i += 2;
        const tok *v = peek(p);
        if (!v || (v->k != T_WORD && v->k != T_STR)) return perr(p, end_col(p), "missing value after '%s='", kt);
        char vt[48];
        tok_text(v, vt, sizeof vt);
        if (k->n == 8 && !memcmp(k->s, "severity", 8)) {
            if (seen_sev) return perr(p, k->col, "severity given twice");
            seen_sev = true;
            if (v->n == 5 && !memcmp(v->s, "error", 5)) e->severity = ST_QSEV_ERROR;
            else if (v->n == 4 && !memcmp(v->s, "warn", 4)) e->severity = ST_QSEV_WARN;
            else return perr(p, v->col, "bad severity '%s' (error or warn)", vt);
        } else if (k->n == 6 && !memcmp(k->s, "mostly", 6)) {
            if (seen_mostly) return perr(p, k->col, "mostly given twice");
            seen_mostly = true;
            if (!kind_takes_mostly(e->kind)) return perr(p, k->col, "mostly does not apply to %s", st_qkind_name(e->kind));
            bool is_int;
            int64_t iv;
            if (v->k != T_WORD || !parse_num_text(v->s, v->n, &e->mostly, &is_int, &iv))
                return perr(p, v->col, "bad number '%s' for mostly", vt);
            if (!(e->mostly > 0.0 && e->mostly <= 1.0)) return perr(p, v->col, "mostly must be in (0, 1]");
        } else if (k->n == 2 && !memcmp(k->s, "id", 2)) {
            if (*explicit_id) return perr(p, k->col, "id given twice");
            if (v->k != T_WORD || !is_id_text(v->s, v->n))
                return perr(p, v->col, "bad id '%s' (letters, digits and _ . / : -)", vt);
            *explicit_id = st_qarena_strndup(&p->suite->arena, v->s, v->n);
            if (!*explicit_id) return oom(p);
            if (id_taken(p, *explicit_id)) return perr(p, v->col, "duplicate id '%s'", vt);
        } else {
            return perr(p, k->col, "unknown option '%s' (severity, mostly, id)", kt);
        }
        p->i++;
    }
    return ST_OK;
}

static st_status make_auto_id(parser *p, st_expectation *e)
{
    st_buf b;
    st_buf_init(&b);
    st_buf_printf(&b, "%s.%s/%s", e->layer, e->table, st_qkind_name(e->kind));
    if (e->n_cols > 0) st_buf_printf(&b, "/%s", e->cols[0].names[0]);
    else if (e->kind == ST_Q_REJECT_RATE) st_buf_printf(&b, "/%s", e->source_table);
    if (e->kind == ST_Q_NO_DUPLICATE_KEYS || e->kind == ST_Q_COLUMN_EXISTS)
        for (size_t i = 1; i < e->n_cols; i++) st_buf_printf(&b, ",%s", e->cols[i].names[0]);
    size_t base = b.len;
    /* the base id remembers the next suffix to try, so n rules with one
     * base cost O(n), not O(n^2) */
    strset_ent *be = st_buf_ok(&b) ? strset_find(&p->ids, b.data) : NULL;
    if (be) {
        int n = be->value > 2 ? be->value : 2;
        for (; st_buf_ok(&b); n++) {
            b.len = base;
            st_buf_printf(&b, "#%d", n);
            if (st_buf_ok(&b) && !id_taken(p, b.data)) break;
        }
        be->value = n + 1;
    }
    st_status s = ST_OK;
    if (!st_buf_ok(&b) || !(e->id = st_qarena_strdup(&p->suite->arena, b.data))) s = oom(p);
    st_buf_free(&b);
    return s;
}

static st_status parse_section(parser *p)
{
    p->i++;
    const tok *t = peek(p);
    if (!tok_is(t, T_WORD)) return unexpected(p, "layer.table after '['");
    const char *dot = memchr(t->s, '.', t->n);
    char tx[48];
    tok_text(t, tx, sizeof tx);
    if (!dot) return perr(p, t->col, "expected layer.table, got '%s'", tx);
    size_t nl = (size_t)(dot - t->s), nt = t->n - nl - 1;
    if (!is_ident(t->s, nl) || !is_ident(dot + 1, nt)) return perr(p, t->col, "bad section name '%s' (layer.table)", tx);
    const char *layer = NULL;
    for (size_t i = 0; i < sizeof known_layers / sizeof known_layers[0]; i++)
        if (strlen(known_layers[i]) == nl && !memcmp(known_layers[i], t->s, nl)) layer = known_layers[i];
    if (!layer) return perr(p, t->col, "unknown layer '%.*s' (bronze, silver, gold, platinum)", (int)(nl < 40 ? nl : 40), t->s);
    p->i++;
    if (!tok_is(peek(p), T_RBR)) return unexpected(p, "']'");
    p->i++;
    if (!at_end(p)) {
        tok_text(peek(p), tx, sizeof tx);
        return perr(p, peek(p)->col, "unexpected '%s' after section header", tx);
    }
    p->layer = layer;
    p->table = st_qarena_strndup(&p->suite->arena, dot + 1, nt);
    if (!p->table) return oom(p);
    return ST_OK;
}

/* Also catches an empty section repeated later: sections seen so far. */
typedef struct seen_sections {
    strset set; /* "layer.table" -> line */
} seen_sections;

static st_status parse_line(parser *p, seen_sections *seen)
{
    if (at_end(p)) return ST_OK;
    const tok *t = peek(p);
    if (t->k == T_LBR) {
        ST_TRY(parse_section(p));
        char key[300];
        snprintf(key, sizeof key, "%s.%s", p->layer, p->table);
        const strset_ent *had = strset_find(&seen->set, key);
        if (had) return perr(p, t->col, "section [%s] already defined at line %d", key, had->value);
        const char *k = st_qarena_strdup(&p->suite->arena, key);
        if (!k || !strset_add(&seen->set, k, p->line)) return oom(p);
        return ST_OK;
    }
    char tx[48];
    tok_text(t, tx, sizeof tx);
    if (t->k != T_WORD) return perr(p, t->col, "expected an expectation or [layer.table], got '%s'", tx);
    int kind = -1;
    for (int k = 0; k < ST_Q_KIND_COUNT; k++)
        if (strlen(kind_names[k]) == t->n && !memcmp(kind_names[k], t->s, t->n)) kind = k;
    if (kind < 0) return perr(p, t->col, "unknown expectation '%s'", tx);
    if (!p->layer) return perr(p, t->col, "expectation '%s' before any [layer.table] section", tx);
    p->i++;

    st_expectation e;
    memset(&e, 0, sizeof e);
    e.kind = (st_qkind)kind;
    e.severity = ST_QSEV_WARN;
    e.mostly = 1.0;
    e.layer = p->layer;
    e.table = p->table;
    e.line = p->line;
    st_buf_reset(&p->args);
    if (at_end(p)) return perr(p, end_col(p), "missing arguments for %s", kind_names[kind]);
    ST_TRY(parse_args(p, &e));
    const char *explicit_id;
    ST_TRY(parse_options(p, &e, &explicit_id));
    if (!st_buf_ok(&p->args)) return oom(p);
    e.args = st_qarena_strdup(&p->suite->arena, p->args.len ? p->args.data : "");
    if (!e.args) return oom(p);
    if (explicit_id) e.id = explicit_id;
    else ST_TRY(make_auto_id(p, &e));
    if (!strset_add(&p->ids, e.id, 2)) return oom(p);

    st_suite *s = p->suite;
    if (s->n_exps == s->cap_exps) {
        size_t cap = s->cap_exps ? s->cap_exps * 2 : 32, bytes;
        if (!st_size_mul(cap, sizeof *s->exps, &bytes)) return oom(p);
        st_expectation *x = realloc(s->exps, bytes);
        if (!x) return oom(p);
        s->exps = x;
        s->cap_exps = cap;
    }
    s->exps[s->n_exps++] = e;
    return ST_OK;
}

st_status st_suite_parse(st_suite **out, const char *text, size_t len, const char *name, st_error *err)
{
    *out = NULL;
    st_status s = ST_OK;
    parser p;
    memset(&p, 0, sizeof p);
    seen_sections seen = {0};
    st_buf_init(&p.args);
    p.err = err;
    p.name = name ? name : "suite";
    p.suite = calloc(1, sizeof *p.suite);
    if (!p.suite) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", p.name);
    if (!(p.suite->name = st_qarena_strdup(&p.suite->arena, p.name))) {
        s = oom(&p);
        goto done;
    }
    size_t pos = 0;
    /* a UTF-8 byte order mark (editors on Windows write one) is not text */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) pos = 3;
    while (pos < len && s == ST_OK) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (p.line == 1 << 30) {
            s = perr(&p, 1, "too many lines");
            break;
        }
        p.line++;
        s = tokenize(&p, text + pos, end - pos);
        if (s == ST_OK) s = parse_line(&p, &seen);
        pos = nl ? end + 1 : len;
    }
done:
    free(p.toks);
    free(p.scratch);
    free(seen.set.e);
    free(p.ids.e);
    st_buf_free(&p.args);
    if (s != ST_OK) {
        st_suite_free(p.suite);
        return s;
    }
    *out = p.suite;
    return ST_OK;
}

#define SUITE_FILE_MAX ((size_t)16 << 20)

st_status st_suite_load(st_suite **out, const char *path, st_error *err)
{
    *out = NULL;
    st_status s = ST_OK;
    char *buf = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) /* a FIFO would block */
        return st_error_set(err, ST_ERR_INVALID, "suite '%s' is not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return st_error_set(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO, "cannot open suite '%s': %s", path,
                            strerror(errno));
    buf = malloc(SUITE_FILE_MAX + 1);
    if (!buf) {
        s = st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t n = fread(buf, 1, SUITE_FILE_MAX + 1, f);
    if (ferror(f)) {
        s = st_error_set(err, ST_ERR_IO, "cannot read suite '%s'", path);
        goto done;
    }
    if (n > SUITE_FILE_MAX) {
        s = st_error_set(err, ST_ERR_INVALID, "suite '%s' is larger than 16 MiB", path);
        goto done;
    }
    s = st_suite_parse(out, buf, n, path, err);
done:
    free(buf);
    fclose(f);
    return s;
}

st_status st_suite_load_default(st_suite **out, st_error *err)
{
    const char *t = st_suite_default_text();
    return st_suite_parse(out, t, strlen(t), "default.suite", err);
}

void st_suite_free(st_suite *s)
{
    if (!s) return;
    free(s->exps);
    st_qarena_free(&s->arena);
    free(s);
}

size_t st_suite_count(const st_suite *s) { return s ? s->n_exps : 0; }
const st_expectation *st_suite_get(const st_suite *s, size_t i) { return i < s->n_exps ? &s->exps[i] : NULL; }
const char *st_suite_name(const st_suite *s) { return s->name; }
