/*
 * fixtures.c: writes layer files with the C writer for the Python reader's
 * tests (formats/python/tests/test_reader.py compiles and runs it).
 *
 *   fixtures OUTDIR
 *
 * Files cover every type x encoding (forced through the test hook
 * st_format_force_encoding; the writer falls back to the smallest encoding
 * when the forced one does not apply, and the test checks the footer to see
 * that every legal (type, encoding) pair was produced) x null pattern
 * (none / some / all) x zstd stage (off / default), multi-chunk tables
 * (chunk_rows = 256), the empty table, int64 and int32 extremes, NaN
 * (with payloads), infinities and -0.0, unicode and 100 KB strings, bytes
 * with 0x00/0xff, one-row tables, and metadata (inputs, params, kv).
 *
 * Alongside every FILE.strata it writes FILE.f64: one line per float64
 * value, "column<TAB>row<TAB>hex bit pattern" or "...<TAB>null", the values
 * as the generator pushed them, so the test can check non-finite floats
 * and bit patterns that JSON cannot carry. Values come from a fixed-seed
 * xorshift generator: the output is deterministic.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format_internal.h"
#include "strata/column.h"
#include "strata/file.h"

#define N_TYPES 6

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static const char *outdir;

static void die(const char *what, const st_error *err)
{
    fprintf(stderr, "fixtures: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static void check(st_status s, const char *what)
{
    if (s != ST_OK) die(what, NULL);
}

static double bits_f64(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static uint64_t f64_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

/* Writes cols (n_cols columns named by fields) as OUTDIR/name.strata and
 * the float sidecar OUTDIR/name.f64. */
static void write_file(const char *name, const st_field *fields, st_column *cols, size_t n_cols, size_t n_rows,
                       int zstd_level, uint32_t chunk_rows, const st_file_meta *meta_in)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.strata", outdir, name);
    st_file_meta meta = {.layer = "test", .table = name, .params = ""};
    if (meta_in) meta = *meta_in;
    st_write_opts opts = {.zstd_level = zstd_level, .no_fsync = true, .chunk_rows = chunk_rows};
    st_writer *w = NULL;
    st_error err = {0};
    if (st_writer_open(&w, path, fields, n_cols, &meta, &opts, &err) != ST_OK) die(path, &err);
    /* write in uneven slices to exercise chunk cutting across calls */
    size_t first = 0;
    while (first < n_rows) {
        size_t k = 1 + (size_t)(rnd() % 700);
        if (k > n_rows - first) k = n_rows - first;
        if (st_writer_write(w, cols, first, k, &err) != ST_OK) die(path, &err);
        first += k;
    }
    if (st_writer_close(w, &err) != ST_OK) die(path, &err);

    snprintf(path, sizeof path, "%s/%s.f64", outdir, name);
    FILE *f = fopen(path, "w");
    if (!f) die(path, NULL);
    for (size_t j = 0; j < n_cols; j++) {
        if (cols[j].type != ST_TYPE_F64) continue;
        for (size_t i = 0; i < n_rows; i++) {
            if (!st_column_valid(&cols[j], i)) fprintf(f, "%s\t%zu\tnull\n", fields[j].name, i);
            else fprintf(f, "%s\t%zu\t%016" PRIx64 "\n", fields[j].name, i, f64_bits(st_column_f64(&cols[j])[i]));
        }
    }
    fclose(f);
}

static const int64_t i64_special[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1, 42};
static const int32_t i32_special[] = {INT32_MIN, INT32_MAX, 0, -1, 1, 7};

static double f64_special(size_t k)
{
    switch (k % 12) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return -0.0;
    case 4: return 0.0;
    case 5: return bits_f64(0x7ff8dead0000beefull); /* quiet NaN with payload */
    case 6: return bits_f64(0xfff0000000000001ull); /* negative signalling NaN */
    case 7: return 4.9e-324;                        /* smallest subnormal */
    case 8: return 1.7976931348623157e308;
    case 9: return 0.1;
    case 10: return -2.5e-300;
    default: return 3.141592653589793;
    }
}

static const char *str_pool[] = {"", "a", "hello, world", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                 "\xf0\x9f\x98\x80 emoji", "quote \" back \\ slash", "tab\tnl\ncr\r",
                                 "\x01\x1f control"};
#define N_POOL (sizeof str_pool / sizeof str_pool[0])

/* Pushes the value of row i for type t under value pattern `pat`:
 * 0 random/extremes, 1 for, 2 increasing (delta), 3 runs (rle), 4 few
 * distinct (dict), 5 constant (nonzero), 6 constant zero/empty. */
static void push_value(st_column *c, int pat, size_t i)
{
    uint64_t r = rnd();
    int64_t v;
    switch (pat) {
    case 1: v = 1000 + (int64_t)(r % 5000); break;
    case 2: v = (int64_t)(i * 37 + r % 11) - 5000; break;
    case 3: v = (int64_t)((i / 13) % 7) * 1000003 - 3; break;
    case 4: v = (int64_t)(r % 50) * 7919 - 100000; if (r % 50 == 0) v = INT64_MIN; break;
    case 5: v = -77; break;
    case 6: v = 0; break;
    default: v = (r % 4 == 0) ? i64_special[r % 8] : (int64_t)r; break;
    }
    switch (c->type) {
    case ST_TYPE_BOOL: {
        bool b = pat == 5 ? true : pat == 6 ? false : pat == 3 ? ((i / 13) & 1) : (r >> 7) & 1;
        check(st_column_push_bool(c, b), "push");
        break;
    }
    case ST_TYPE_I32: {
        int32_t x = (pat == 0) ? ((r % 4 == 0) ? i32_special[r % 6] : (int32_t)(uint32_t)r)
                               : (pat == 4 && v == INT64_MIN) ? INT32_MIN : (int32_t)(v % 1000000000);
        check(st_column_push_i32(c, x), "push");
        break;
    }
    case ST_TYPE_I64: check(st_column_push_i64(c, v), "push"); break;
    case ST_TYPE_F64: {
        double d;
        if (pat == 0) d = (r % 3 == 0) ? f64_special(r >> 8) : bits_f64(r);
        else if (pat == 4) d = f64_special(r % 12) + (double)(r % 4);
        else if (pat == 5) d = -1.25;
        else if (pat == 6) d = 0.0;
        else d = (double)v * 0.5;
        check(st_column_push_f64(c, d), "push");
        break;
    }
    case ST_TYPE_STR:
    case ST_TYPE_BYTES: {
        char buf[64];
        size_t len;
        if (pat == 5) {
            memcpy(buf, "const \xc3\xa9", 8);
            len = 8;
        } else if (pat == 6) {
            len = 0;
        } else if (pat == 3 || pat == 4) {
            size_t k = pat == 3 ? (i / 13) % N_POOL : r % N_POOL;
            len = strlen(str_pool[k]);
            memcpy(buf, str_pool[k], len);
        } else if (c->type == ST_TYPE_BYTES && r % 3 == 0) {
            len = r % 20;
            for (size_t k = 0; k < len; k++) buf[k] = (char)((k & 1) ? 0xff : 0x00);
        } else {
            len = (size_t)snprintf(buf, sizeof buf, "v%" PRIu64 "-\xc3\xbc", r % 100000);
        }
        check(st_column_push_str(c, buf, len), "push");
        break;
    }
    }
}

static const st_field all_fields[N_TYPES] = {
    {"b", ST_TYPE_BOOL, true, "a bool"},       {"i32", ST_TYPE_I32, true, "an int32"},
    {"i64", ST_TYPE_I64, true, "an int64"},    {"f64", ST_TYPE_F64, true, "a float64"},
    {"s", ST_TYPE_STR, true, "a string \xe2\x9c\x93"}, {"y", ST_TYPE_BYTES, true, NULL},
};

static bool is_null(int nulls, size_t i)
{
    if (nulls == 0) return false;
    if (nulls == 2) return true;
    return (i * 2654435761u) % 7 < 2 || (i >= 256 && i < 260);
}

/* One file per (forced encoding, null pattern, zstd). */
static void matrix(void)
{
    static const size_t sizes[] = {300, 1};
    for (int enc = -1; enc <= 5; enc++)
        for (int nulls = 0; nulls < 3; nulls++)
            for (int z = 0; z < 2; z++)
                for (int sz = 0; sz < 2; sz++) {
                    size_t n = sizes[sz];
                    st_column cols[N_TYPES];
                    int pat = enc < 0 ? 0 : enc;
                    if (enc == 5 && nulls == 1) pat = 6; /* const with NULLs needs the NULL slot value */
                    for (int j = 0; j < N_TYPES; j++) {
                        st_column_init(&cols[j], all_fields[j].type);
                        for (size_t i = 0; i < n; i++) {
                            if (is_null(nulls, i)) check(st_column_push_null(&cols[j]), "null");
                            else push_value(&cols[j], pat, i);
                        }
                    }
                    char name[64];
                    snprintf(name, sizeof name, "m_e%d_n%d_z%d_r%zu", enc < 0 ? 9 : enc, nulls, z, n);
                    st_format_force_encoding(enc);
                    write_file(name, all_fields, cols, N_TYPES, n, z ? 0 : -1, 256, NULL);
                    st_format_force_encoding(-1);
                    for (int j = 0; j < N_TYPES; j++) st_column_free(&cols[j]);
                }
}

static void empty_table(void)
{
    st_column cols[N_TYPES];
    for (int j = 0; j < N_TYPES; j++) st_column_init(&cols[j], all_fields[j].type);
    write_file("empty", all_fields, cols, N_TYPES, 0, 0, 0, NULL);
    for (int j = 0; j < N_TYPES; j++) st_column_free(&cols[j]);
}

/* Extremes of every fixed type under every forced encoding, non-nullable. */
static void extremes(void)
{
    static const st_field f[4] = {{"i64", ST_TYPE_I64, false, "extremes"},
                                  {"i32", ST_TYPE_I32, false, ""},
                                  {"f64", ST_TYPE_F64, false, ""},
                                  {"b", ST_TYPE_BOOL, false, ""}};
    for (int enc = -1; enc <= 5; enc++) {
        st_column cols[4];
        for (int j = 0; j < 4; j++) st_column_init(&cols[j], f[j].type);
        size_t n = 600;
        for (size_t i = 0; i < n; i++) {
            check(st_column_push_i64(&cols[0], i64_special[(i / 3) % 8]), "push");
            check(st_column_push_i32(&cols[1], i32_special[(i / 5) % 6]), "push");
            check(st_column_push_f64(&cols[2], f64_special(i / 2)), "push");
            check(st_column_push_bool(&cols[3], (i / 9) % 2), "push");
        }
        char name[64];
        snprintf(name, sizeof name, "x_e%d", enc < 0 ? 9 : enc);
        st_format_force_encoding(enc);
        write_file(name, f, cols, 4, n, enc == 1 ? 0 : -1, 256, NULL);
        st_format_force_encoding(-1);
        for (int j = 0; j < 4; j++) st_column_free(&cols[j]);
    }
    /* two-value columns: the full 64-bit range makes FOR / delta use w = 64 */
    static const st_field g[1] = {{"v", ST_TYPE_I64, false, ""}};
    for (int enc = 0; enc <= 4; enc++) {
        st_column c;
        st_column_init(&c, ST_TYPE_I64);
        for (size_t i = 0; i < 100; i++) check(st_column_push_i64(&c, (i % 3) ? INT64_MAX : INT64_MIN), "push");
        char name[64];
        snprintf(name, sizeof name, "w64_e%d", enc);
        st_format_force_encoding(enc);
        write_file(name, g, &c, 1, 100, -1, 0, NULL);
        st_format_force_encoding(-1);
        st_column_free(&c);
    }
}

/* Long strings (100 KB), unicode, bytes with 0x00 / 0xff, multi-chunk. */
static void strings(void)
{
    static const st_field f[2] = {{"s", ST_TYPE_STR, true, "long strings"}, {"y", ST_TYPE_BYTES, true, ""}};
    size_t big = 100 * 1024;
    char *buf = malloc(big + 8);
    if (!buf) die("malloc", NULL);
    for (int enc = -1; enc <= 5; enc++) {
        st_column cols[2];
        st_column_init(&cols[0], ST_TYPE_STR);
        st_column_init(&cols[1], ST_TYPE_BYTES);
        size_t n = enc == 5 ? 40 : 520;
        for (size_t i = 0; i < n; i++) {
            size_t len;
            if (enc == 5) {
                len = big;
                for (size_t k = 0; k < len; k++) buf[k] = (char)('a' + k % 26);
            } else if (i % 97 == 3) {
                len = big;
                for (size_t k = 0; k + 4 <= len; k += 4) memcpy(buf + k, "\xf0\x9f\x8e\x89", 4); /* U+1F389 */
            } else {
                const char *p = str_pool[i % N_POOL];
                len = strlen(p);
                memcpy(buf, p, len);
            }
            if (enc != 5 && i % 11 == 5) check(st_column_push_null(&cols[0]), "null");
            else check(st_column_push_str(&cols[0], buf, len), "push");
            size_t bl = enc == 5 ? 3 : (i % 7 == 0 ? big / 4 : i % 9);
            for (size_t k = 0; k < bl; k++) buf[k] = (char)((k % 3 == 0) ? 0x00 : (k % 3 == 1) ? 0xff : (int)(i & 0xff));
            if (enc == 5) memcpy(buf, "\x00\xff\x80", 3);
            check(st_column_push_str(&cols[1], buf, bl), "push");
        }
        char name[64];
        snprintf(name, sizeof name, "s_e%d", enc < 0 ? 9 : enc);
        st_format_force_encoding(enc);
        write_file(name, f, cols, 2, n, enc % 2 ? 0 : -1, 256, NULL);
        st_format_force_encoding(-1);
        st_column_free(&cols[0]);
        st_column_free(&cols[1]);
    }
    free(buf);
}

/* A multi-chunk table with metadata, and the small file for damage tests. */
static void metadata_and_small(void)
{
    static const st_field f[3] = {{"id", ST_TYPE_I64, false, "row id"},
                                  {"name", ST_TYPE_STR, true, "caf\xc3\xa9 name"},
                                  {"score", ST_TYPE_F64, true, ""}};
    static const char *inputs[] = {"source.customers", "silver.stg_sales"};
    static const st_kv kv[] = {{"owner", "tests"}, {"unicode", "\xe2\x82\xac"}, {"empty", ""}};
    st_file_meta meta = {.layer = "gold", .table = "meta_\xc3\xa9", .inputs = inputs, .n_inputs = 2,
                         .params = "k=4;seed=7", .fingerprint = 0xfedcba9876543210ull, .kv = kv, .n_kv = 3};
    st_column cols[3];
    for (int j = 0; j < 3; j++) st_column_init(&cols[j], f[j].type);
    size_t n = 1000;
    for (size_t i = 0; i < n; i++) {
        check(st_column_push_i64(&cols[0], (int64_t)i * 3 - 1000), "push");
        if (i % 10 == 3) check(st_column_push_null(&cols[1]), "null");
        else check(st_column_push_str(&cols[1], str_pool[i % N_POOL], strlen(str_pool[i % N_POOL])), "push");
        if (i % 4 == 1) check(st_column_push_null(&cols[2]), "null");
        else check(st_column_push_f64(&cols[2], (double)(rnd() % 1000) / 8.0), "push");
    }
    write_file("meta", f, cols, 3, n, 0, 256, &meta);
    /* small: 3 chunks of a few rows, one zstd-able column */
    static const st_kv kv2[] = {{"k", "v"}};
    st_file_meta m2 = {.layer = "bronze", .table = "small", .inputs = inputs, .n_inputs = 1, .params = "p=1",
                       .fingerprint = 99, .kv = kv2, .n_kv = 1};
    for (int j = 0; j < 3; j++) st_column_reset(&cols[j]);
    for (size_t i = 0; i < 20; i++) {
        check(st_column_push_i64(&cols[0], (int64_t)(i * i) - 7), "push");
        if (i % 3 == 0) check(st_column_push_null(&cols[1]), "null");
        else check(st_column_push_str(&cols[1], "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40 + i % 2), "push");
        if (i % 5 == 2) check(st_column_push_null(&cols[2]), "null");
        else check(st_column_push_f64(&cols[2], i % 2 ? -0.0 : 1.5), "push");
    }
    write_file("small", f, cols, 3, 20, 0, 8, &m2);
    for (int j = 0; j < 3; j++) st_column_free(&cols[j]);
}

/* OUTDIR/big/big.strata: 300,000 rows in 5 chunks of the default size
 * (int64, float64 with NULLs, string), for the bounded-memory test of
 * iter_chunks(). In a subdirectory so the per-fixture tests skip it. */
static void big_table(void)
{
    static char sub[4096];
    snprintf(sub, sizeof sub, "%s/big", outdir);
    if (mkdir(sub, 0755) != 0) {
        perror(sub);
        exit(1);
    }
    const char *saved = outdir;
    outdir = sub;
    st_field f[] = {{"id", ST_TYPE_I64, false, NULL}, {"x", ST_TYPE_F64, true, NULL}, {"s", ST_TYPE_STR, true, NULL}};
    st_column cols[3];
    for (int j = 0; j < 3; j++) st_column_init(&cols[j], f[j].type);
    const size_t n = 300000;
    for (size_t i = 0; i < n; i++) {
        check(st_column_push_i64(&cols[0], (int64_t)(rnd() >> 1)), "big id");
        check(i % 10 == 3 ? st_column_push_null(&cols[1]) : st_column_push_f64(&cols[1], (double)(rnd() >> 11)), "big x");
        char t[32];
        int tn = snprintf(t, sizeof t, "v%016" PRIx64, rnd());
        check(i % 7 == 1 ? st_column_push_null(&cols[2]) : st_column_push_str(&cols[2], t, (size_t)tn), "big s");
    }
    write_file("big", f, cols, 3, n, -1, 0, NULL);
    for (int j = 0; j < 3; j++) st_column_free(&cols[j]);
    outdir = saved;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fixtures OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    matrix();
    empty_table();
    extremes();
    strings();
    metadata_and_small();
    big_table();
    return 0;
}
