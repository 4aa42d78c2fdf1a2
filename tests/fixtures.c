/*
 * fixtures.c: the shared test set-up of fixtures.h. Each helper is the one
 * the test files used to write out for themselves; where their copies
 * differed, the stricter one is kept (files NUL-terminated, sizes from
 * what was read, a temporary directory made writable before removal).
 */
#include "fixtures.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *fx_bin(void)
{
    const char *b = getenv("STRATA_BIN");
    return b ? b : "build/strata";
}

void fx_tmpdir(char *dir, size_t cap, const char *tag)
{
    int n = snprintf(dir, cap, "/tmp/%sXXXXXX", tag);
    cr_assert(n > 0 && (size_t)n < cap, "temporary directory name too long for %zu bytes", cap);
    cr_assert_not_null(mkdtemp(dir), "cannot make %s", dir);
}

void fx_rmtree(const char *dir)
{
    cr_expect_eq(fx_sh("chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir), 0, "cannot remove %s", dir);
}

static int exit_status(int rc) { return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1; }

int fx_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return exit_status(system(cmd));
}

int fx_capture(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return exit_status(pclose(p));
}

char *fx_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t want = n > 0 ? (size_t)n : 0;
    char *b = malloc(want + 1);
    cr_assert_not_null(b);
    size_t got = fread(b, 1, want, f);
    b[got] = '\0';
    fclose(f);
    if (len) *len = got;
    return b;
}

const char *fx_text_of(const char *dir, const char *name)
{
    static char buf[4096];
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *s = fx_slurp(p, NULL);
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    free(s);
    return buf;
}

char *fx_read_file(const char *path, size_t *len)
{
    size_t n = 0;
    char *b = fx_slurp(path, &n);
    cr_assert_not_null(b, "cannot open %s", path);
    if (len) *len = n;
    return b;
}

void fx_put_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    if (len) cr_assert_eq(fwrite(buf, 1, len, f), len, "short write to %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

void fx_exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "sql failed: %s: %s", sql, msg ? msg : "");
}

sqlite3 *fx_make_db(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "cannot open %s", path);
    fx_exec_sql(db, sql);
    return db;
}

void fx_split_source(const char *src, const char *dir, int n, bool by_customer, char *list, size_t cap)
{
    static const char *const tables[2][2] = {{"sales_qty", "quantity"}, {"foc_qty", "quantity_foc"}};
    size_t len = 0;
    list[0] = '\0';
    for (int k = 0; k < n; k++) {
        char path[600], sql[4096];
        snprintf(path, sizeof path, "%s/shard%d.db", dir, k);
        unlink(path);
        int at = snprintf(sql, sizeof sql, "ATTACH '%s' AS src;", src);
        for (int t = 0; t < 2; t++) {
            const char *tb = tables[t][0], *q = tables[t][1];
            at += snprintf(sql + at, sizeof sql - at,
                           "CREATE TABLE %s(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                           "%s INTEGER);", tb, q);
            if (by_customer) /* renumbered from 1 in each shard */
                at += snprintf(sql + at, sizeof sql - at,
                               "INSERT INTO %s SELECT customer_id, year, month, material_code, %s FROM src.%s "
                               "WHERE customer_id %% %d = %d ORDER BY rowid;", tb, q, tb, n, k);
            else /* contiguous rowid ranges, rowids kept */
                at += snprintf(sql + at, sizeof sql - at,
                               "INSERT INTO %s(rowid, customer_id, year, month, material_code, %s) SELECT rowid, "
                               "customer_id, year, month, material_code, %s FROM src.%s WHERE rowid "
                               "BETWEEN (SELECT max(rowid) FROM src.%s) * %d / %d + 1 AND "
                               "(SELECT max(rowid) FROM src.%s) * %d / %d;", tb, q, q, tb, tb, k, n, tb, k + 1, n);
        }
        cr_assert_lt((size_t)at, sizeof sql, "split SQL too long");
        sqlite3_close(fx_make_db(path, sql));
        len += (size_t)snprintf(list + len, cap - len, "%s%s", k ? "," : "", path);
        cr_assert_lt(len, cap, "shard list too long");
    }
}

void fx_gen_source(const char *path, int rows, int seed)
{
    cr_assert_eq(fx_sh("%s gen --out %s --rows %d --seed %d >/dev/null 2>&1", fx_bin(), path, rows, seed), 0,
                 "strata gen --out %s failed", path);
}

int fx_run_demo(const char *dir, const char *tx, const char *wh, const char *extra)
{
    return fx_sh("%s run --customers data/chinook.db --transactions %s --warehouse %s --quiet --no-report %s "
                 ">%s/out.txt 2>%s/err.txt",
                 fx_bin(), tx, wh, extra, dir, dir);
}

static uint64_t rng_state;

void fx_seed(uint64_t seed) { rng_state = seed; }

double fx_urand(void)
{
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

double fx_gauss(void)
{
    double u = fx_urand() + 1e-12, v = fx_urand();
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

float *fx_blobs(size_t n, size_t d, int k, int *truth, uint64_t seed)
{
    fx_seed(seed);
    float *x = malloc(n * d * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) {
        int b = (int)(i % (size_t)k);
        truth[i] = b;
        for (size_t j = 0; j < d; j++) x[i * d + j] = (float)(b * 20.0 * (j % 2 ? 1 : -1) + (double)j + fx_gauss());
    }
    return x;
}

size_t fx_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

/* Scans the attributes of the tag named name from s[*j] to its '>' (or
 * the end), honouring quotes; *self says whether it ends in "/>". NULL
 * when fine, else a static message. */
static const char *markup_attrs(const char *s, size_t *j, const char *name, bool html, bool *self, char *msg,
                                size_t cap)
{
    size_t p = *j;
    *self = false;
    while (s[p] && s[p] != '>') {
        if (s[p] == '"') {
            p++;
            while (s[p] && s[p] != '"') {
                if (s[p] == '<') {
                    snprintf(msg, cap, "'<' inside attribute of <%s>", name);
                    return msg;
                }
                p++;
            }
            if (!s[p]) return "unterminated attribute";
        } else if (!html && s[p] == '=' && s[p + 1] != '"') {
            snprintf(msg, cap, "unquoted attribute in <%s>", name);
            return msg;
        }
        if (s[p] == '/' && s[p + 1] == '>') *self = true;
        p++;
    }
    *j = p;
    return s[p] ? NULL : "unterminated tag";
}

const char *fx_check_markup(const char *s, bool html)
{
    static char msg[256];
    char stack[256][32];
    size_t depth = 0;
    for (size_t i = 0; s[i];) {
        if (s[i] == '&') {
            size_t j = i + 1;
            while (s[j] && s[j] != ';' && j - i < 10) j++;
            if (s[j] != ';') {
                snprintf(msg, sizeof msg, "bare & at %zu", i);
                return msg;
            }
            i = j + 1;
            continue;
        }
        if (s[i] == '>') {
            snprintf(msg, sizeof msg, "bare > at %zu: %.40s", i, s + (i > 20 ? i - 20 : 0));
            return msg;
        }
        if (s[i] != '<') {
            i++;
            continue;
        }
        bool closing = s[i + 1] == '/';
        size_t j = i + 1 + (closing ? 1 : 0), k = 0;
        char name[32];
        while (s[j] && s[j] != ' ' && s[j] != '>' && s[j] != '/' && s[j] != '\n' && k < 31) name[k++] = s[j++];
        name[k] = '\0';
        if (!html && k == 0) {
            snprintf(msg, sizeof msg, "empty tag name at %zu", i);
            return msg;
        }
        bool self;
        const char *bad = markup_attrs(s, &j, name, html, &self, msg, sizeof msg);
        if (bad) return bad;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                snprintf(msg, sizeof msg, "</%s> does not close <%s>", name, depth ? stack[depth - 1] : "(none)");
                return msg;
            }
            depth--;
        } else if (!self && name[0] != '!' && !(html && strcmp(name, "meta") == 0)) {
            if (depth == 256) return "too deep";
            strcpy(stack[depth++], name);
        }
        i = j + 1;
    }
    if (depth) {
        snprintf(msg, sizeof msg, "<%s> never closed", stack[depth - 1]);
        return msg;
    }
    return NULL;
}

const char *fx_differing_files(const char *dir, const char *a, const char *b, const char *sub)
{
    static char out[8192];
    char n[64];
    fx_capture(n, sizeof n, "cd %s/%s && find %s -name '*.strata' | wc -l", dir, a, sub);
    cr_assert_gt(atoi(n), 0, "no layer file under %s/%s", a, sub);
    fx_capture(out, sizeof out,
               "cd %s/%s && for f in $(find %s -name '*.strata' | sort); do cmp -s \"$f\" \"%s/%s/$f\" || echo \"$f\"; "
               "done",
               dir, a, sub, dir, b);
    return out;
}
