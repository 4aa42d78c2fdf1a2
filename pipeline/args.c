/*
 * args.c: the argument parser every `strata` command uses (strata/cli.h).
 *
 * A command describes its flags in a table (name, takes a value or not)
 * and pulls arguments one at a time with st_args_next(); it keeps its own
 * switch on the returned index, so what a flag means stays next to the
 * command while how it is spelt and refused is decided once, here:
 *
 *   --flag value  and  --flag=value   the same, for every valued flag
 *   --flag=value  on a flag without a value   refused
 *   --flag        as the last argument of a valued flag   "needs a value"
 *   --help, -h    the command's usage on stdout, then ST_ARGS_HELP (exit 0)
 *   --            the rest is positional (a file named "--x")
 *   -             a positional argument (stdin/stdout for commands that take it)
 *
 * Every refusal is one line, "strata <cmd>: <what is wrong>", on stderr;
 * the caller exits with ST_ARGS_USAGE (2). The value parsers below name
 * the flag, the accepted values and what was given in the same format.
 * Nothing here allocates: the parser only points into argv.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/cli.h"

void st_args_init(st_args *a, const char *cmd, int argc, char **argv, const st_argspec *spec, int n_spec,
                  void (*usage)(FILE *))
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->spec = spec;
    a->n_spec = n_spec;
    a->usage = usage;
}

int st_args_exit(int code) { return code == ST_ARGS_HELP ? 0 : ST_ARGS_USAGE; }

int st_args_error(const st_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "strata %s: ", a->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return ST_ARGS_USAGE;
}

/* Index of the flag spelt a[0..n) in the table, or -1. */
static int find_flag(const st_args *a, const char *s, size_t n)
{
    for (int k = 0; k < a->n_spec; k++)
        if (strlen(a->spec[k].name) == n && !memcmp(a->spec[k].name, s, n)) return k;
    return -1;
}

int st_args_next(st_args *a, const char **val)
{
    *val = NULL;
    if (a->i >= a->argc) return ST_ARGS_END;
    const char *s = a->argv[a->i++];
    if (a->flags_done || s[0] != '-' || s[1] == '\0') {
        *val = s;
        return ST_ARGS_POSITIONAL;
    }
    if (!strcmp(s, "--")) {
        a->flags_done = true;
        return st_args_next(a, val);
    }
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
        if (a->usage) a->usage(stdout);
        return ST_ARGS_HELP;
    }
    const char *eq = strchr(s, '=');
    size_t n = eq && s[1] == '-' ? (size_t)(eq - s) : strlen(s);
    int k = find_flag(a, s, n);
    if (k < 0) {
        st_args_error(a, "unknown flag '%.*s' (see strata %s --help)", (int)n, s, a->cmd);
        return ST_ARGS_ERROR;
    }
    a->flag = a->spec[k].name;
    if (!a->spec[k].takes_value) {
        if (n != strlen(s)) {
            st_args_error(a, "%s does not take a value (got '%s')", a->flag, s);
            return ST_ARGS_ERROR;
        }
        return k;
    }
    if (n != strlen(s)) {
        *val = s + n + 1;
    } else if (a->i < a->argc) {
        *val = a->argv[a->i++];
    } else {
        st_args_error(a, "%s needs a value (see strata %s --help)", a->flag, a->cmd);
        return ST_ARGS_ERROR;
    }
    return k;
}

bool st_args_int(const st_args *a, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        st_args_error(a, "%s expects an integer in %lld..%lld, got '%s'", a->flag, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

bool st_args_int_or(const st_args *a, const char *v, const char *word, long long lo, long long hi, long long *out,
                    bool *is_word)
{
    *is_word = !strcmp(v, word);
    if (*is_word) return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        st_args_error(a, "%s expects %s or an integer in %lld..%lld, got '%s'", a->flag, word, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

bool st_args_u64(const st_args *a, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || v[0] == '+' || v[0] == ' ') {
        st_args_error(a, "%s expects a non-negative integer, got '%s'", a->flag, v);
        return false;
    }
    *out = x;
    return true;
}

bool st_args_nonneg(const st_args *a, const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0) || x > 1e300) {
        st_args_error(a, "%s expects a non-negative number, got '%s'", a->flag, v);
        return false;
    }
    *out = x;
    return true;
}

bool st_args_size(const st_args *a, const char *v, uint64_t lo, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    unsigned shift = 0;
    if (end != v && *end) {
        if ((*end == 'K' || *end == 'k') && end[1] == '\0') shift = 10;
        else if ((*end == 'M' || *end == 'm') && end[1] == '\0') shift = 20;
        else if ((*end == 'G' || *end == 'g') && end[1] == '\0') shift = 30;
        else end = (char *)v; /* rejected below */
    }
    /* at most 2^50 bytes (1 PiB), so the value fits with room to compute */
    if (errno || end == v || v[0] == '-' || x > ((uint64_t)1 << 50) >> shift || ((uint64_t)x << shift) < lo) {
        st_args_error(a, "%s expects a size from %lluK to 1048576G: bytes, or a number with K, M or G, such as 512M; got '%s'",
                      a->flag, (unsigned long long)(lo >> 10), v);
        return false;
    }
    *out = (uint64_t)x << shift;
    return true;
}

bool st_args_range(const st_args *a, const char *v, int lo, int hi, int *out_a, int *out_b)
{
    const char *dots = strstr(v, "..");
    long long x, y;
    char *end;
    bool ok = dots != NULL && dots != v;
    if (ok) {
        errno = 0;
        x = strtoll(v, &end, 10);
        ok = !errno && end == dots;
    }
    if (ok) {
        y = strtoll(dots + 2, &end, 10);
        ok = !errno && end != dots + 2 && *end == '\0' && lo <= x && x <= y && y <= hi;
    }
    if (!ok) {
        st_args_error(a, "%s expects A..B with %d <= A <= B <= %d, got '%s'", a->flag, lo, hi, v);
        return false;
    }
    *out_a = (int)x;
    *out_b = (int)y;
    return true;
}

bool st_args_choice(const st_args *a, const char *v, const char *choices, int *out)
{
    int idx = 0;
    for (const char *c = choices; *c; idx++) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (strlen(v) == n && !memcmp(v, c, n)) {
            *out = idx;
            return true;
        }
        c += n + (bar != NULL);
    }
    st_args_error(a, "%s expects %s, got '%s'", a->flag, choices, v);
    return false;
}
