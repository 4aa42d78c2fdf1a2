/*
 * fixtures.c: writes layer files for the Python reader's tests with the C
 * writer: every type x every encoding x three null patterns, plus edge
 * cases. Usage: fixtures OUTDIR. Built by test_reader.py against
 * build/libstrata.a; uses the writer's test hook st_format_force_encoding().
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_internal.h"
#include "strata/file.h"

static uint64_t rs = 7;
static uint64_t rnd(void)
{
    rs += 0x9E3779B97F4A7C15ull;
    uint64_t z = rs;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int fill(st_column *c, st_type t, size_t n, int pattern, int nulls)
{
    st_column_init(c, t);
    for (size_t i = 0; i < n; i++) {
        if (nulls == 2 || (nulls == 1 && rnd() % 4 == 0)) {
            if (st_column_push_null(c)) return 1;
            continue;
        }
        uint64_t r = rnd();
        int64_t v = pattern == 0 ? (int64_t)r : pattern == 1 ? (int64_t)(r % 50) - 20 : pattern == 2 ? (int64_t)i * 5
                  : pattern == 3 ? (int64_t)((i / 9) % 4) : (r % 2 ? INT64_MIN : INT64_MAX);
        st_status s = ST_OK;
        char buf[64];
        switch (t) {
        case ST_TYPE_BOOL: s = st_column_push_bool(c, v & 1); break;
        case ST_TYPE_I32: s = st_column_push_i32(c, (int32_t)(pattern == 4 ? (r % 2 ? INT32_MIN : INT32_MAX) : v)); break;
        case ST_TYPE_I64: s = st_column_push_i64(c, v); break;
        case ST_TYPE_F64: s = st_column_push_f64(c, pattern == 4 ? (r % 3 == 0 ? -0.0 : 1e308) : (double)v / 3.0); break;
        case ST_TYPE_STR: {
            int len = snprintf(buf, sizeof buf, "%s%lld", pattern == 0 ? "\xc3\xa9t\xc3\xa9-" : "m", (long long)(v % 1000));
            s = st_column_push_str(c, buf, (size_t)len);
            break;
        }
        case ST_TYPE_BYTES: {
            buf[0] = 0;
            buf[1] = (char)0xff;
            int len = 2 + snprintf(buf + 2, sizeof buf - 2, "%lld", (long long)(v % 100));
            s = st_column_push_str(c, buf, (size_t)len);
            break;
        }
        }
        if (s) return 1;
    }
    return 0;
}

static int write_one(const char *path, st_column *cols, const st_field *f, size_t nf, size_t n, uint32_t chunk)
{
    st_file_meta m = {.layer = "test", .table = "fixture", .params = "p=1", .fingerprint = 99};
    st_write_opts o = {.no_fsync = true, .chunk_rows = chunk};
    st_writer *w;
    st_error e;
    if (st_writer_open(&w, path, f, nf, &m, &o, &e) || st_writer_write(w, cols, 0, n, &e) || st_writer_close(w, &e)) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    static const st_type types[6] = {ST_TYPE_BOOL, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_BYTES};
    char path[4096];
    int count = 0;
    for (int enc = -1; enc < 6; enc++) {
        st_format_force_encoding(enc);
        for (int t = 0; t < 6; t++)
            for (int pat = 0; pat < 5; pat++)
                for (int nulls = 0; nulls < 3; nulls++) {
                    st_column c;
                    if (fill(&c, types[t], 600, pat, nulls)) return 1;
                    st_field f = {"v", types[t], true, "value"};
                    snprintf(path, sizeof path, "%s/e%d_%s_p%d_n%d.strata", argv[1], enc + 1, st_type_name(types[t]), pat, nulls);
                    if (write_one(path, &c, &f, 1, c.n_rows, 128)) return 1;
                    st_column_free(&c);
                    count++;
                }
    }
    st_format_force_encoding(-1);
    /* edge cases: empty table, big strings, several columns */
    st_column c[3];
    st_field f[3] = {{"id", ST_TYPE_I64, false, "id"}, {"s", ST_TYPE_STR, true, "text"}, {"x", ST_TYPE_F64, false, "x"}};
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_STR);
    st_column_init(&c[2], ST_TYPE_F64);
    snprintf(path, sizeof path, "%s/empty.strata", argv[1]);
    if (write_one(path, c, f, 3, 0, 0)) return 1;
    char *big = malloc(100000);
    for (int i = 0; i < 5; i++) {
        memset(big, 'a' + i, 100000);
        if (st_column_push_i64(&c[0], i) || st_column_push_str(&c[1], big, 100000 - (size_t)i) ||
            st_column_push_f64(&c[2], i * 0.25))
            return 1;
    }
    free(big);
    snprintf(path, sizeof path, "%s/bigstrings.strata", argv[1]);
    if (write_one(path, c, f, 3, 5, 0)) return 1;
    for (int k = 0; k < 3; k++) st_column_free(&c[k]);
    printf("%d\n", count + 2);
    return 0;
}
