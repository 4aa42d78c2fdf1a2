/*
 * test_format.c: the layer file format. Round trips for every type x
 * encoding x null pattern, edge cases, zone maps against a naive
 * computation, determinism, atomic writes, and exhaustive damage: every
 * single-byte flip and every truncation of a small file must be an error,
 * never a crash and never wrong values.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "codec_internal.h"
#include "format_internal.h"
#include "strata/cpu.h"
#include "strata/file.h"
#include "strata/pool.h"

static char dir[128];
static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_fmt_"); }
static void teardown(void)
{
    fx_rmtree(dir);
    st_format_force_encoding(-1);
}
TestSuite(format, .init = setup, .fini = teardown, .timeout = 120);

static uint64_t rs = 1;
static uint64_t rnd(void)
{
    rs += 0x9E3779B97F4A7C15ull;
    uint64_t z = rs;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Builds a column of type t with n values following `pattern`:
 * 0 random, 1 small range, 2 sorted, 3 runs, 4 constant, 5 extremes;
 * nulls: 0 none, 1 some, 2 all. */
static void make_col(st_column *c, st_type t, size_t n, int pattern, int nulls)
{
    st_column_init(c, t);
    for (size_t i = 0; i < n; i++) {
        if (nulls == 2 || (nulls == 1 && rnd() % 5 == 0)) {
            cr_assert_eq(st_column_push_null(c), ST_OK);
            continue;
        }
        uint64_t r = rnd();
        int64_t v;
        switch (pattern) {
        case 0: v = (int64_t)r; break;
        case 1: v = (int64_t)(r % 100) - 50; break;
        case 2: v = (int64_t)i * 3 + 1000; break;
        case 3: v = (int64_t)((i / 17) % 5); break;
        case 4: v = 42; break;
        default: v = r % 3 == 0 ? INT64_MIN : r % 3 == 1 ? INT64_MAX : 0; break;
        }
        st_status s = ST_OK;
        switch (t) {
        case ST_TYPE_BOOL: s = st_column_push_bool(c, v & 1); break;
        case ST_TYPE_I32: s = st_column_push_i32(c, pattern == 5 ? (int32_t)(r % 3 == 0 ? INT32_MIN : r % 3 == 1 ? INT32_MAX : 0) : (int32_t)v); break;
        case ST_TYPE_I64: s = st_column_push_i64(c, v); break;
        case ST_TYPE_F64: {
            double d = pattern == 5 ? (r % 4 == 0 ? NAN : r % 4 == 1 ? INFINITY : r % 4 == 2 ? -INFINITY : -0.0)
                                    : (double)v / 7.0;
            s = st_column_push_f64(c, d);
            break;
        }
        case ST_TYPE_STR:
        case ST_TYPE_BYTES: {
            char buf[64];
            int len = snprintf(buf, sizeof buf, "v%lld", (long long)(pattern == 0 ? v % 100000 : v));
            if (t == ST_TYPE_BYTES && pattern == 0) buf[0] = (char)0xff;
            s = st_column_push_str(c, buf, (size_t)len);
            break;
        }
        }
        cr_assert_eq(s, ST_OK);
    }
}

static void assert_same(const st_column *a, const st_column *b, const char *what)
{
    cr_assert_eq(a->n_rows, b->n_rows, "%s: rows %zu vs %zu", what, a->n_rows, b->n_rows);
    for (size_t i = 0; i < a->n_rows; i++) {
        bool va = st_column_valid(a, i), vb = st_column_valid(b, i);
        cr_assert_eq(va, vb, "%s: validity of row %zu", what, i);
        if (!va) continue;
        switch (a->type) {
        case ST_TYPE_BOOL: cr_assert_eq(st_column_bool(a)[i], st_column_bool(b)[i], "%s row %zu", what, i); break;
        case ST_TYPE_I32: cr_assert_eq(st_column_i32(a)[i], st_column_i32(b)[i], "%s row %zu", what, i); break;
        case ST_TYPE_I64: cr_assert_eq(st_column_i64(a)[i], st_column_i64(b)[i], "%s row %zu", what, i); break;
        case ST_TYPE_F64:
            cr_assert_eq(memcmp(&st_column_f64(a)[i], &st_column_f64(b)[i], 8), 0, "%s row %zu: float bits", what, i);
            break;
        default: {
            size_t la, lb;
            const char *x = st_column_str(a, i, &la), *y = st_column_str(b, i, &lb);
            cr_assert(la == lb && !memcmp(x, y, la), "%s row %zu: string", what, i);
        }
        }
    }
}

/* Every block of r's column 0 (an integer column, rows `rows` as read)
 * read as runs: a CONST or RLE block without NULLs gives runs that spell
 * out its rows, refused (ST_ERR_UNSUPPORTED) with one run too few of
 * room; any other block is refused as ST_ERR_UNSUPPORTED. */
static void runs_spell_rows(st_reader *r, const st_column *rows, const char *what)
{
    uint64_t *val = malloc(ST_CHUNK_ROWS * sizeof *val);
    uint32_t *end = malloc(ST_CHUNK_ROWS * sizeof *end);
    cr_assert(val && end);
    st_error err;
    size_t base = 0;
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        st_block_info bi;
        cr_assert_eq(st_reader_block_info(r, c, 0, &bi), ST_OK);
        size_t n_runs = 7;
        st_status s = st_reader_read_block_runs(r, c, 0, val, end, ST_CHUNK_ROWS, &n_runs, &err);
        bool runs = (bi.encoding == ST_ENC_CONST || bi.encoding == ST_ENC_RLE) && bi.null_count == 0 && bi.n_rows;
        cr_assert_eq(s, runs ? ST_OK : ST_ERR_UNSUPPORTED, "%s chunk %zu (encoding %d): %s", what, c, bi.encoding,
                     err.msg);
        if (!runs) {
            base += bi.n_rows;
            continue;
        }
        cr_assert_gt(n_runs, 0);
        cr_assert_eq(end[n_runs - 1], bi.n_rows, "%s chunk %zu: the runs cover the chunk", what, c);
        for (size_t k = 0, i = 0; k < n_runs; k++) {
            cr_assert_gt(end[k], i, "%s chunk %zu run %zu: empty", what, c, k);
            for (; i < end[k]; i++) {
                int64_t v = rows->type == ST_TYPE_I64 ? st_column_i64(rows)[base + i]
                            : rows->type == ST_TYPE_I32 ? st_column_i32(rows)[base + i]
                                                        : st_column_bool(rows)[base + i];
                cr_assert_eq((int64_t)val[k], v, "%s chunk %zu row %zu", what, c, i);
            }
        }
        if (n_runs > 1)
            cr_assert_eq(st_reader_read_block_runs(r, c, 0, val, end, n_runs - 1, &n_runs, &err), ST_ERR_UNSUPPORTED,
                         "%s chunk %zu: more runs than room", what, c);
        base += bi.n_rows;
    }
    free(val);
    free(end);
}

/* Row i of chunk c's held block (h: INT64, INT32 or codes into dict) in
 * slices of 8, 24 and then 64 rows against `rows` from base on. */
static void held_rows_match(st_held_block *h, st_type t, const st_column *dict, const st_column *rows, size_t base,
                            uint32_t n, const char *what, size_t c)
{
    static const size_t sizes[] = {8, 24, 64};
    int64_t v[64];
    int32_t v32[64];
    uint32_t code[64];
    st_error err;
    for (size_t first = 0, k = 0; first < n; first += sizes[k < 2 ? k : 2], k++) {
        size_t m = n - first < sizes[k < 2 ? k : 2] ? n - first : sizes[k < 2 ? k : 2];
        st_status s = t == ST_TYPE_I64   ? st_held_block_i64(h, first, m, v, &err)
                      : t == ST_TYPE_I32 ? st_held_block_i32(h, first, m, v32, &err)
                                         : st_held_block_codes(h, first, m, code, &err);
        cr_assert_eq(s, ST_OK, "%s chunk %zu rows %zu+%zu: %s", what, c, first, m, err.msg);
        for (size_t i = 0; i < m; i++) {
            size_t at = base + first + i;
            if (t == ST_TYPE_I64) {
                cr_assert_eq(v[i], st_column_i64(rows)[at], "%s chunk %zu row %zu", what, c, first + i);
            } else if (t == ST_TYPE_I32) {
                cr_assert_eq(v32[i], st_column_i32(rows)[at], "%s chunk %zu row %zu", what, c, first + i);
            } else {
                size_t la, lb;
                cr_assert_lt(code[i], dict->n_rows, "%s chunk %zu row %zu: code", what, c, first + i);
                const char *x = st_column_str(rows, at, &la), *y = st_column_str(dict, code[i], &lb);
                cr_assert(la == lb && !memcmp(x, y, la), "%s chunk %zu row %zu: value", what, c, first + i);
            }
        }
    }
}

/* Rows [first, first + m) of h read as type t (strings: codes). */
static st_status held_read_as(st_held_block *h, st_type t, size_t first, size_t m)
{
    void *v = malloc((m ? m : 1) * sizeof(int64_t));
    cr_assert(v);
    st_error err;
    st_status s = t == ST_TYPE_I64   ? st_held_block_i64(h, first, m, v, &err)
                  : t == ST_TYPE_I32 ? st_held_block_i32(h, first, m, v, &err)
                                     : st_held_block_codes(h, first, m, v, &err);
    free(v);
    return s;
}

/* Every block of r's column 0 (rows `rows` as read) held and read in
 * slices: INT32 and INT64 blocks without NULLs but DELTA ones, string
 * blocks without NULLs that are DICT or CONST, give their rows; any other
 * block is refused as ST_ERR_UNSUPPORTED; a slice that does not start on
 * a multiple of 8, runs past the chunk or asks for another type is
 * ST_ERR_INVALID. */
static void slices_spell_rows(st_reader *r, const st_column *rows, const char *what)
{
    st_held_block *h = NULL;
    st_error err;
    cr_assert_eq(st_held_block_create(&h, &err), ST_OK);
    st_type t = rows->type;
    bool str = t == ST_TYPE_STR || t == ST_TYPE_BYTES;
    st_column dict;
    st_column_init(&dict, str ? t : ST_TYPE_STR);
    size_t base = 0;
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        st_block_info bi;
        cr_assert_eq(st_reader_block_info(r, c, 0, &bi), ST_OK);
        bool ok = bi.null_count == 0 && (str ? bi.encoding == ST_ENC_DICT || bi.encoding == ST_ENC_CONST
                                             : (t == ST_TYPE_I32 || t == ST_TYPE_I64) && bi.encoding != ST_ENC_DELTA);
        if (str) {
            cr_assert_eq(st_reader_hold_block(r, c, 0, h, NULL, &err), ST_ERR_INVALID, "%s: no dictionary", what);
            st_column i64;
            st_column_init(&i64, ST_TYPE_I64);
            cr_assert_eq(st_reader_hold_block(r, c, 0, h, &i64, &err), ST_ERR_INVALID, "%s: not strings", what);
            st_column_free(&i64);
        }
        st_status s = st_reader_hold_block(r, c, 0, h, str ? &dict : NULL, &err);
        cr_assert_eq(s, ok ? ST_OK : ST_ERR_UNSUPPORTED, "%s chunk %zu (encoding %d): %s", what, c, bi.encoding,
                     err.msg);
        if (ok) {
            held_rows_match(h, t, &dict, rows, base, bi.n_rows, what, c);
            cr_assert_eq(held_read_as(h, t, 4, 1), ST_ERR_INVALID, "%s: a slice off a multiple of 8", what);
            cr_assert_eq(held_read_as(h, t, 0, bi.n_rows + 1), ST_ERR_INVALID, "%s: a slice past the chunk", what);
            cr_assert_eq(held_read_as(h, str ? ST_TYPE_I64 : ST_TYPE_STR, 0, 1), ST_ERR_INVALID, "%s: another type",
                         what);
            if (t == ST_TYPE_I64) cr_assert_eq(held_read_as(h, ST_TYPE_I32, 0, 1), ST_ERR_INVALID, "%s: as int32", what);
        }
        base += bi.n_rows;
    }
    st_column_free(&dict);
    st_held_block_free(h);
}

/* The file of the first `rows` rows of columns c (fields f) at path, written
 * through st_writer_write with options wo. */
static void write_rows_file(const char *path, const st_field *f, size_t nf, const st_column *c, size_t rows,
                            const st_write_opts *wo)
{
    st_writer *w = NULL;
    st_error err = {0};
    cr_assert_eq(st_writer_open(&w, path, f, nf, NULL, wo, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_write(w, c, 0, rows, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
}

static void roundtrip(const st_column *in, uint32_t chunk_rows, const char *what)
{
    char path[256];
    snprintf(path, sizeof path, "%s/t.strata", dir);
    st_field f = {"c", in->type, true, "a column"};
    st_file_meta meta = {.layer = "test", .table = "t"};
    st_write_opts wo = {.no_fsync = true, .chunk_rows = chunk_rows};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, &f, 1, &meta, &wo, &err), ST_OK, "%s", err.msg);
    /* write in two calls to exercise chunk boundaries */
    size_t half = in->n_rows / 2;
    cr_assert_eq(st_writer_write(w, in, 0, half, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_write(w, in, half, in->n_rows - half, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_reader *r;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s: %s", what, err.msg);
    cr_assert_eq(st_reader_n_rows(r), in->n_rows);
    cr_assert_eq(st_reader_verify(r, &err), ST_OK, "%s: %s", what, err.msg);
    st_column out;
    st_column_init(&out, in->type);
    cr_assert_eq(st_reader_read_all(r, NULL, 1, &out, &err), ST_OK, "%s: %s", what, err.msg);
    assert_same(in, &out, what);
    /* strings as dictionary + codes: dict[codes[i]] is row i, chunk by chunk */
    if (in->type == ST_TYPE_STR || in->type == ST_TYPE_BYTES) {
        st_column d;
        st_column_init(&d, in->type);
        uint32_t *codes = malloc(ST_CHUNK_ROWS * sizeof *codes);
        size_t base = 0;
        for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
            cr_assert_eq(st_reader_read_block_dict(r, c, 0, &d, codes, &err), ST_OK, "%s: %s", what, err.msg);
            uint32_t n = st_reader_chunk_rows(r, c);
            cr_assert_leq(d.n_rows, n, "%s: a dictionary is never longer than its chunk", what);
            for (uint32_t i = 0; i < n; i++) {
                cr_assert_lt(codes[i], d.n_rows, "%s chunk %zu row %u: code out of range", what, c, i);
                bool vi = st_column_valid(in, base + i), vd = st_column_valid(&d, codes[i]);
                cr_assert_eq(vi, vd, "%s chunk %zu row %u: validity", what, c, i);
                if (!vi) continue;
                size_t la, lb;
                const char *x = st_column_str(in, base + i, &la), *y = st_column_str(&d, codes[i], &lb);
                cr_assert(la == lb && !memcmp(x, y, la), "%s chunk %zu row %u: value", what, c, i);
            }
            base += n;
        }
        st_column i64;
        st_column_init(&i64, ST_TYPE_I64);
        cr_assert_eq(st_reader_read_block_dict(r, 0, 0, &i64, codes, &err), ST_ERR_INVALID, "wrong column type");
        st_column_free(&i64);
        free(codes);
        st_column_free(&d);
    } else if (st_reader_n_chunks(r) > 0) {
        st_column d;
        st_column_init(&d, in->type);
        uint32_t codes[1];
        cr_assert_eq(st_reader_read_block_dict(r, 0, 0, &d, codes, &err), ST_ERR_INVALID, "%s: not strings", what);
        st_column_free(&d);
    }
    if (in->type == ST_TYPE_BOOL || in->type == ST_TYPE_I32 || in->type == ST_TYPE_I64) runs_spell_rows(r, &out, what);
    slices_spell_rows(r, &out, what);
    /* zone maps against a naive computation */
    size_t row = 0;
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        st_block_info bi;
        cr_assert_eq(st_reader_block_info(r, c, 0, &bi), ST_OK);
        size_t nulls = 0;
        bool any = false;
        int64_t mn = 0, mx = 0;
        for (size_t i = row; i < row + bi.n_rows; i++) {
            if (!st_column_valid(in, i)) {
                nulls++;
                continue;
            }
            if (in->type == ST_TYPE_I64 || in->type == ST_TYPE_I32) {
                int64_t v = in->type == ST_TYPE_I64 ? st_column_i64(in)[i] : st_column_i32(in)[i];
                if (!any || v < mn) mn = v;
                if (!any || v > mx) mx = v;
                any = true;
            }
        }
        cr_assert_eq(bi.null_count, nulls, "%s: null count of chunk %zu", what, c);
        if (in->type == ST_TYPE_I64 || in->type == ST_TYPE_I32) {
            cr_assert_eq(bi.has_minmax, any);
            if (any) cr_assert(bi.min_i64 == mn && bi.max_i64 == mx, "%s: zone map of chunk %zu", what, c);
        }
        row += bi.n_rows;
    }
    st_column_free(&out);
    st_reader_close(r);
}

Test(format, every_type_encoding_and_null_pattern_round_trips)
{
    st_type types[] = {ST_TYPE_BOOL, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_BYTES};
    for (int enc = -1; enc < 6; enc++)
        for (size_t t = 0; t < 6; t++)
            for (int pat = 0; pat < 6; pat++)
                for (int nulls = 0; nulls < 3; nulls++) {
                    st_format_force_encoding(enc);
                    st_column c;
                    make_col(&c, types[t], 700, pat, nulls);
                    char what[128];
                    snprintf(what, sizeof what, "type %s enc %d pattern %d nulls %d", st_type_name(types[t]), enc, pat, nulls);
                    roundtrip(&c, 256, what);
                    st_column_free(&c);
                }
    st_format_force_encoding(-1);
}

Test(format, edge_cases)
{
    st_column c;
    make_col(&c, ST_TYPE_I64, 0, 0, 0);
    roundtrip(&c, 0, "empty table");
    st_column_free(&c);
    make_col(&c, ST_TYPE_STR, 1, 1, 0);
    roundtrip(&c, 0, "one row");
    st_column_free(&c);
    make_col(&c, ST_TYPE_F64, 1000, 5, 0);
    roundtrip(&c, 0, "NaN/inf/-0");
    st_column_free(&c);
    make_col(&c, ST_TYPE_I64, 200000, 5, 1);
    roundtrip(&c, 0, "int64 extremes over several default chunks");
    st_column_free(&c);
    /* 1 MB strings */
    st_column_init(&c, ST_TYPE_STR);
    char *big = malloc(1 << 20);
    for (int k = 0; k < 3; k++) {
        memset(big, 'a' + k, 1 << 20);
        cr_assert_eq(st_column_push_str(&c, big, 1 << 20), ST_OK);
    }
    free(big);
    roundtrip(&c, 0, "1 MB strings");
    st_column_free(&c);
}

Test(format, selection_picks_small_encodings)
{
    char path[256];
    snprintf(path, sizeof path, "%s/s.strata", dir);
    st_column c[3];
    make_col(&c[0], ST_TYPE_I64, 65536, 2, 0); /* sorted -> delta or FOR */
    make_col(&c[1], ST_TYPE_I32, 65536, 4, 0); /* constant */
    make_col(&c[2], ST_TYPE_STR, 65536, 1, 0); /* 100 distinct -> dict */
    st_field f[3] = {{"a", ST_TYPE_I64, false, NULL}, {"b", ST_TYPE_I32, false, NULL}, {"c", ST_TYPE_STR, false, NULL}};
    st_writer *w;
    st_error err;
    st_write_opts wo = {.no_fsync = true};
    cr_assert_eq(st_writer_open(&w, path, f, 3, NULL, &wo, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, c, 0, 65536, &err), ST_OK);
    cr_assert_eq(st_writer_close(w, &err), ST_OK);
    st_reader *r;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK);
    st_block_info bi;
    cr_assert_eq(st_reader_block_info(r, 0, 0, &bi), ST_OK);
    cr_assert(bi.size_bytes < 65536 / 2, "sorted int64 stored in %llu bytes", (unsigned long long)bi.size_bytes);
    cr_assert_eq(st_reader_block_info(r, 0, 1, &bi), ST_OK);
    cr_assert_eq(bi.encoding, ST_ENC_CONST);
    cr_assert_eq(st_reader_block_info(r, 0, 2, &bi), ST_OK);
    cr_assert(bi.size_bytes < 65536, "100 distinct strings x 64K stored in %llu bytes", (unsigned long long)bi.size_bytes);
    st_reader_close(r);
    for (int k = 0; k < 3; k++) st_column_free(&c[k]);
}

/* A small file with several types, NULLs and two chunks. */
static size_t small_file(char *path, uint8_t **bytes)
{
    snprintf(path, 256, "%s/small.strata", dir);
    st_column c[3];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_STR);
    st_column_init(&c[2], ST_TYPE_F64);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(st_column_push_i64(&c[0], i * 7 - 20), ST_OK);
        if (i % 4 == 3) cr_assert_eq(st_column_push_null(&c[1]), ST_OK);
        else cr_assert_eq(st_column_push_str(&c[1], i % 2 ? "MAT0001" : "MAT0042", 7), ST_OK);
        cr_assert_eq(st_column_push_f64(&c[2], i * 0.5), ST_OK);
    }
    st_field f[3] = {{"id", ST_TYPE_I64, false, "id"}, {"mat", ST_TYPE_STR, true, NULL}, {"x", ST_TYPE_F64, false, NULL}};
    const char *inputs[1] = {"silver.src"};
    st_kv kv[1] = {{"k", "v"}};
    st_file_meta meta = {.layer = "gold", .table = "small", .inputs = inputs, .n_inputs = 1, .params = "p=1",
                         .fingerprint = 0x1234, .kv = kv, .n_kv = 1};
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 8};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, f, 3, &meta, &wo, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, c, 0, 12, &err), ST_OK);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (int k = 0; k < 3; k++) st_column_free(&c[k]);
    size_t n;
    *bytes = (uint8_t *)fx_read_file(path, &n);
    return n;
}

/* open + verify + read everything: must fail (return non-OK). */
static st_status try_read(const uint8_t *buf, size_t n)
{
    st_reader *r = NULL;
    st_error err;
    st_status s = st_reader_open_mem(&r, buf, n, "damaged", &err);
    if (s != ST_OK) return s;
    s = st_reader_verify(r, &err);
    if (s == ST_OK) {
        st_column c[3];
        st_column_init(&c[0], ST_TYPE_I64);
        st_column_init(&c[1], ST_TYPE_STR);
        st_column_init(&c[2], ST_TYPE_F64);
        s = st_reader_read_all(r, NULL, 3, c, &err);
        for (int k = 0; k < 3; k++) st_column_free(&c[k]);
    }
    st_reader_close(r);
    return s;
}

Test(format, every_single_byte_flip_and_truncation_is_detected)
{
    char path[256];
    uint8_t *orig;
    size_t n = small_file(path, &orig);
    cr_assert_eq(try_read(orig, n), ST_OK, "the undamaged file reads");
    uint8_t *buf = malloc(n);
    const uint8_t pats[] = {0xff, 0x01, 0x80};
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < sizeof pats; p++) {
            memcpy(buf, orig, n);
            buf[i] ^= pats[p];
            st_status s = try_read(buf, n);
            cr_assert_neq(s, ST_OK, "flipping byte %zu with %02x of %zu went undetected", i, pats[p], n);
        }
    for (size_t len = 0; len < n; len++) {
        uint8_t *t = malloc(len ? len : 1);
        memcpy(t, orig, len);
        cr_assert_neq(try_read(t, len), ST_OK, "truncation to %zu bytes went undetected", len);
        free(t);
    }
    free(buf);
    free(orig);
}

Test(format, same_input_gives_same_bytes_and_meta_round_trips)
{
    char path[256];
    uint8_t *a, *b;
    size_t na = small_file(path, &a);
    size_t nb = small_file(path, &b);
    cr_assert(na == nb && !memcmp(a, b, na), "deterministic output");
    st_reader *r;
    st_error err;
    cr_assert_eq(st_reader_open_mem(&r, a, na, "m", &err), ST_OK);
    const st_file_meta *m = st_reader_meta(r);
    cr_assert_str_eq(m->layer, "gold");
    cr_assert_str_eq(m->table, "small");
    cr_assert_eq(m->n_inputs, 1);
    cr_assert_str_eq(m->inputs[0], "silver.src");
    cr_assert_str_eq(m->params, "p=1");
    cr_assert_eq(m->fingerprint, 0x1234u);
    cr_assert_str_eq(m->kv[0].value, "v");
    cr_assert_eq(st_reader_n_chunks(r), 2);
    cr_assert_eq(st_reader_find(r, "mat"), 1);
    st_reader_close(r);
    free(a);
    free(b);
}

Test(format, newer_major_version_is_unsupported)
{
    char path[256];
    uint8_t *a;
    size_t n = small_file(path, &a);
    /* bump the major version in header and tail and fix the header CRC */
    st_put_u16(a + 8, 2);
    st_put_u32(a + 12, st_crc32c(0, a, 12));
    st_put_u16(a + n - 24 + 12, 2);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open_mem(&r, a, n, "v2", &err), ST_ERR_UNSUPPORTED, "%s", err.msg);
    free(a);
}

Test(format, aborted_writer_leaves_nothing_and_bad_rows_are_refused)
{
    char path[256];
    snprintf(path, sizeof path, "%s/x.strata", dir);
    st_field f = {"s", ST_TYPE_STR, false, NULL};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, NULL, &err), ST_OK);
    st_column c;
    st_column_init(&c, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&c, "\xc3\x28", 2), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, 1, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "UTF-8"));
    st_column_reset(&c);
    cr_assert_eq(st_column_push_null(&c), ST_OK);
    st_writer_abort(w);
    cr_assert_neq(access(path, F_OK), 0, "no final file after abort");
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, NULL, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, 1, &err), ST_ERR_INVALID, "NULL in a non-nullable column");
    st_writer_abort(w);
    st_column_free(&c);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int count = -1;
    cr_assert_eq(fscanf(p, "%d", &count), 1);
    pclose(p);
    cr_assert_eq(count, 0, "temporary files are removed");
}

Test(format, crc32c_known_answer)
{
    cr_assert_eq(st_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(st_crc32c_portable(0, "123456789", 9), 0xE3069283u);
}

/* The dispatched CRC (SSE4.2, three interleaved streams, where the CPU
 * has it) against the table version: lengths around the stream sizes
 * (3 x 256, 3 x 8192) and random ones, odd start offsets, chained calls. */
Test(format, crc32c_fast_matches_table_version)
{
    enum { MAX = 3 * 8192 * 2 + 1000 };
    uint8_t *b = malloc(MAX + 16);
    cr_assert(b);
    uint64_t x = 0xDEADBEEFCAFEF00Dull;
    for (size_t i = 0; i < MAX + 16; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (uint8_t)x;
    }
    static const size_t edge[] = {0, 1, 7, 8, 9, 767, 768, 769, 775, 776, 1536, 24575, 24576, 24577, 24583,
                                  49152, 49152 + 768, MAX};
    for (size_t e = 0; e < sizeof edge / sizeof *edge + 200; e++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = e < sizeof edge / sizeof *edge ? edge[e] : (size_t)(x % MAX);
        size_t off = (size_t)(x >> 40) % 16;
        if (off + len > MAX + 16) off = 0;
        uint32_t seed = (uint32_t)(x >> 20);
        cr_assert_eq(st_crc32c(seed, b + off, len), st_crc32c_portable(seed, b + off, len), "length %zu offset %zu",
                     len, off);
        size_t cut = len ? (size_t)(x % len) : 0; /* chained: two calls give one call's answer */
        cr_assert_eq(st_crc32c(st_crc32c(0, b + off, cut), b + off + cut, len - cut), st_crc32c(0, b + off, len));
    }
    free(b);
}

/* A file built byte by byte from FORMAT.md: one int64 column, one chunk of
 * `rows` rows, one const block. Valid checksums throughout. */
static size_t const_file(uint8_t *b, uint32_t rows)
{
    size_t at = 0;
    memcpy(b, ST_MAGIC, 8);
    st_put_u16(b + 8, 1);
    st_put_u16(b + 10, 0);
    st_put_u32(b + 12, st_crc32c(0, b, 12));
    at = 16;
    uint8_t *h = b + at;
    h[0] = ST_ENC_CONST;
    h[1] = 0;
    st_put_u16(h + 2, ST_TYPE_I64);
    st_put_u32(h + 4, rows);
    st_put_u32(h + 8, 0);
    st_put_u32(h + 12, 8);
    st_put_u32(h + 16, 8);
    st_put_u64(h + 24, 7);
    st_put_u32(h + 20, st_crc32c(st_crc32c(0, h, 20), h + 24, 8));
    at += 32;
    size_t f0 = at;
    st_put_u32(b + at, 1), at += 4;
    b[at++] = ST_TYPE_I64;
    b[at++] = 0;
    st_put_u16(b + at, 1), at += 2;
    b[at++] = 'x';
    st_put_u32(b + at, 0), at += 4;
    st_put_u64(b + at, rows), at += 8;
    st_put_u16(b + at, 0), at += 2;
    st_put_u16(b + at, 0), at += 2;
    st_put_u32(b + at, 0), at += 4;
    st_put_u32(b + at, 0), at += 4;
    st_put_u64(b + at, 0), at += 8;
    st_put_u32(b + at, 0), at += 4;
    st_put_u32(b + at, 1), at += 4;
    st_put_u32(b + at, rows), at += 4;
    st_put_u64(b + at, 16), at += 8;
    st_put_u32(b + at, 32), at += 4;
    b[at++] = ST_ENC_CONST;
    b[at++] = 0;
    b[at++] = 1;
    b[at++] = 0;
    st_put_u32(b + at, 0), at += 4;
    st_put_u64(b + at, (uint64_t)rows * 8), at += 8;
    st_put_u64(b + at, 7), at += 8;
    st_put_u64(b + at, 7), at += 8;
    st_put_u32(b + at, 0), at += 4;
    size_t flen = at - f0;
    st_put_u64(b + at, flen);
    st_put_u32(b + at + 8, st_crc32c(0, b + f0, flen));
    st_put_u16(b + at + 12, 1);
    st_put_u16(b + at + 14, 0);
    memcpy(b + at + 16, ST_MAGIC, 8);
    return at + 24;
}

Test(format, a_chunk_claiming_more_rows_than_the_limit_is_refused_before_allocating)
{
    uint8_t b[512];
    st_error err;
    st_reader *r = NULL;
    size_t n = const_file(b, 65536);
    cr_assert_eq(st_reader_open_mem(&r, b, n, "ok", &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_reader_verify(r, &err), ST_OK, "%s", err.msg);
    st_reader_close(r);
    uint32_t bad[] = {65537, 300000000u, 0xffffffffu};
    for (size_t i = 0; i < 3; i++) {
        n = const_file(b, bad[i]);
        cr_assert_eq(st_reader_open_mem(&r, b, n, "bomb", &err), ST_ERR_CORRUPT, "%u rows accepted", bad[i]);
        cr_assert_not_null(strstr(err.msg, "chunk row count"), "%s", err.msg);
    }
}

Test(format, one_large_string_batch_is_cut_into_chunks_of_at_most_64_mib)
{
    char path[256];
    snprintf(path, sizeof path, "%s/big.strata", dir);
    st_column c;
    st_column_init(&c, ST_TYPE_STR);
    size_t rows = 9000, len = 8200; /* 73.8 MB in one call */
    char *s = malloc(len);
    for (size_t i = 0; i < rows; i++) {
        memset(s, 'a' + (int)(i % 26), len);
        cr_assert_eq(st_column_push_str(&c, s, len), ST_OK);
    }
    free(s);
    st_field f = {"s", ST_TYPE_STR, false, NULL};
    st_write_opts wo = {.no_fsync = true, .zstd_level = -1};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, &wo, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, rows, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_column_free(&c);
    st_reader *r;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
    cr_assert_geq(st_reader_n_chunks(r), 2);
    for (size_t k = 0; k < st_reader_n_chunks(r); k++) {
        st_block_info bi;
        cr_assert_eq(st_reader_block_info(r, k, 0, &bi), ST_OK);
        cr_assert_leq(bi.raw_bytes, (uint64_t)ST_CHUNK_MAX_BYTES, "chunk %zu holds %llu string bytes", k,
                      (unsigned long long)bi.raw_bytes);
    }
    cr_assert_eq(st_reader_n_rows(r), rows);
    st_reader_close(r);
}

/* The writer checks a chunk's strings in one pass (writer.c,
 * strs_utf8_fast): a character split across two rows, each invalid on its
 * own, must still be refused with the right row, and NULL rows' bytes
 * never make valid rows fail. */
Test(format, utf8_checked_per_row_not_per_run)
{
    char path[256];
    snprintf(path, sizeof path, "%s/u.strata", dir);
    st_field f = {"s", ST_TYPE_STR, true, NULL};
    st_writer *w;
    st_error err;
    st_column c;
    st_column_init(&c, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&c, "ok", 2), ST_OK);
    cr_assert_eq(st_column_push_str(&c, "\xc3", 1), ST_OK);
    cr_assert_eq(st_column_push_str(&c, "\xa9", 1), ST_OK);
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, NULL, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, 3, &err), ST_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "at row 1"), "%s", err.msg);
    st_writer_abort(w);
    st_column_reset(&c);
    cr_assert_eq(st_column_push_str(&c, "h\xc3\xa9", 3), ST_OK);
    cr_assert_eq(st_column_push_null(&c), ST_OK);
    cr_assert_eq(st_column_push_str(&c, "\xe2\x82\xac", 3), ST_OK);
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, NULL, &err), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, 3, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_column_free(&c);
}

/* Frame-of-reference blocks of every bit width 0..64, at row counts that
 * end inside and at the edge of a group of 8 (the unpacker's unit), and
 * appended after rows already in the column: decoded values against the
 * naive input, in int64 and (widths up to 31) int32 columns. */
Test(format, bitpack_every_width_round_trips)
{
    static const size_t counts[] = {1, 7, 8, 9, 64, 1003};
    uint64_t x = 88172645463325252ull; /* xorshift state */
    for (unsigned w = 0; w <= 64; w++)
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
            for (int t32 = 0; t32 < 2; t32++) {
                if (t32 && w > 31) continue;
                size_t n = counts[ci];
                uint64_t mask = w == 64 ? ~0ull : ((uint64_t)1 << w) - 1;
                int64_t base = t32 ? -1000 : (int64_t)(0 - (mask >> 1) - 5); /* wraps for w = 64: any base does */
                st_column in, out;
                st_column_init(&in, t32 ? ST_TYPE_I32 : ST_TYPE_I64);
                st_column_init(&out, in.type);
                for (size_t i = 0; i < n; i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    uint64_t off = (i == n / 2 ? mask : x & mask);
                    int64_t v = (int64_t)((uint64_t)base + off);
                    cr_assert_eq(t32 ? st_column_push_i32(&in, (int32_t)v) : st_column_push_i64(&in, v), ST_OK);
                }
                st_buf b;
                st_buf_init(&b);
                int enc = -1;
                cr_assert_eq(st_codec_encode(&in, ST_ENC_FOR_BITPACK, &b, &enc), ST_OK);
                cr_assert_eq(enc, ST_ENC_FOR_BITPACK, "w %u n %zu", w, n);
                cr_assert_eq(t32 ? st_column_push_i32(&out, 42) : st_column_push_i64(&out, 42), ST_OK);
                const char *why = NULL;
                cr_assert_eq(st_codec_decode(in.type, enc, (const uint8_t *)b.data, b.len, n, &out, &why), ST_OK,
                             "w %u n %zu: %s", w, n, why ? why : "");
                cr_assert_eq(out.n_rows, n + 1);
                for (size_t i = 0; i < n; i++) {
                    int64_t want = t32 ? st_column_i32(&in)[i] : st_column_i64(&in)[i];
                    int64_t got = t32 ? st_column_i32(&out)[i + 1] : st_column_i64(&out)[i + 1];
                    cr_assert_eq(got, want, "w %u n %zu row %zu", w, n, i);
                }
                cr_assert_eq(t32 ? st_column_i32(&out)[0] : st_column_i64(&out)[0], 42);
                st_buf_free(&b);
                st_column_free(&in);
                st_column_free(&out);
            }
}

/* Writes one chunk of column type t holding the runs (val[r], len[r]) to
 * `path`: as st_writer_runs_block's block when use_runs and it gives one
 * (*ok), else encoded from the expanded rows. Returns the file's bytes. */
static char *runs_file(const char *path, st_type t, const uint64_t *val, const uint32_t *len, size_t n_runs,
                       bool use_runs, bool *ok, size_t *n_bytes)
{
    st_field f = {"v", t, false, NULL};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, NULL, &err), ST_OK, "%s", err.msg);
    st_column c;
    st_column_init(&c, t);
    for (size_t r = 0; r < n_runs; r++)
        for (uint32_t k = 0; k < len[r]; k++) {
            st_status s = t == ST_TYPE_I64   ? st_column_push_i64(&c, (int64_t)val[r])
                          : t == ST_TYPE_I32 ? st_column_push_i32(&c, (int32_t)val[r])
                                             : st_column_push_bool(&c, val[r] != 0);
            cr_assert_eq(s, ST_OK);
        }
    st_buf buf;
    st_buf_init(&buf);
    st_stored_block sb;
    *ok = false;
    if (use_runs) cr_assert_eq(st_writer_runs_block(w, 0, val, len, n_runs, &buf, &sb, ok, &err), ST_OK, "%s", err.msg);
    if (*ok) {
        const st_stored_block *use[1] = {&sb};
        cr_assert(st_writer_stored_fits(w, 0, &sb));
        cr_assert_eq(st_writer_write_chunk(w, NULL, use, c.n_rows, &err), ST_OK, "%s", err.msg);
    } else {
        cr_assert_eq(st_writer_write(w, &c, 0, c.n_rows, &err), ST_OK, "%s", err.msg);
    }
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_buf_free(&buf);
    st_column_free(&c);
    char *bytes = fx_slurp(path, n_bytes);
    cr_assert_not_null(bytes);
    return bytes;
}

/* A block built from runs (st_writer_runs_block) is byte for byte the one
 * the encoder writes for the expanded rows, over run counts, lengths,
 * value ranges and types; when it declines, the encoder indeed picks
 * something else than RLE/CONST or a payload zstd would be tried on. */
Test(format, a_block_built_from_runs_equals_the_encoded_rows)
{
    static const st_type types[3] = {ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_BOOL};
    uint64_t *val = malloc(ST_CHUNK_ROWS * sizeof *val);
    uint32_t *len = malloc(ST_CHUNK_ROWS * sizeof *len);
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/runs_a.strata", dir);
    snprintf(pb, sizeof pb, "%s/runs_b.strata", dir);
    int built = 0;
    for (int trial = 0; trial < 300; trial++) {
        st_type t = types[trial % 3];
        size_t n_runs = trial % 7 == 0 ? 1 : 1 + rnd() % (trial % 5 == 0 ? 3000 : 12);
        uint64_t rows_left = ST_CHUNK_ROWS;
        int64_t base = trial % 4 == 0 ? INT32_MIN : trial % 4 == 1 ? 202001 : (int64_t)(rnd() % 50) - 25;
        uint64_t spread = trial % 6 == 0 ? (uint64_t)INT32_MAX : 2 + rnd() % 300;
        if (t == ST_TYPE_BOOL) {
            base = 0;
            spread = 2;
            if (n_runs > 2) n_runs = 2;
        }
        size_t r = 0;
        for (; r < n_runs && rows_left; r++) {
            uint64_t v;
            do v = (uint64_t)(base + (int64_t)(rnd() % spread));
            while (r && v == val[r - 1]);
            if (t == ST_TYPE_BOOL) v = r ? !val[r - 1] : rnd() % 2;
            val[r] = t == ST_TYPE_I32 ? (uint64_t)(int64_t)(int32_t)v : v;
            uint64_t l = trial % 9 == 0 ? 1 : 1 + rnd() % (trial % 2 ? 40000 : 30);
            len[r] = (uint32_t)(l < rows_left ? l : rows_left);
            rows_left -= len[r];
        }
        n_runs = r;
        bool ok_a, ok_b;
        size_t na, nb;
        char *a = runs_file(pa, t, val, len, n_runs, true, &ok_a, &na);
        char *b = runs_file(pb, t, val, len, n_runs, false, &ok_b, &nb);
        cr_assert(na == nb && !memcmp(a, b, na), "trial %d: %zu runs of %s: the files differ", trial, n_runs,
                  st_type_name(t));
        if (ok_a) {
            built++;
        } else {
            st_reader *rd;
            st_error err;
            st_block_info bi;
            cr_assert_eq(st_reader_open(&rd, pb, &err), ST_OK, "%s", err.msg);
            cr_assert_eq(st_reader_block_info(rd, 0, 0, &bi), ST_OK);
            cr_expect(bi.zstd || (bi.encoding != ST_ENC_RLE && bi.encoding != ST_ENC_CONST) ||
                          bi.size_bytes >= 64 + 24 || bi.n_rows <= 2,
                      "trial %d: declined a %d block of %llu bytes", trial, bi.encoding,
                      (unsigned long long)bi.size_bytes);
            st_reader_close(rd);
        }
        free(a);
        free(b);
    }
    cr_expect_gt(built, 100, "only %d of 300 blocks were built from runs", built);
    /* a forced encoding is never imitated */
    st_format_force_encoding(ST_ENC_PLAIN);
    val[0] = 7;
    len[0] = 1000;
    bool ok;
    size_t na;
    free(runs_file(pa, ST_TYPE_I32, val, len, 1, true, &ok, &na));
    cr_expect(!ok);
    st_format_force_encoding(-1);
    free(val);
    free(len);
}
/* ---- the block encoder against a naive reference, byte for byte ----
 *
 * ref_encode builds every candidate encoding of a block the slow, obvious
 * way (bit-at-a-time packing, a full sort for the dictionary, a sort of
 * row indices for the strings' first-occurrence order), keeps the
 * shortest (ties: the lower encoding id) or the forced one when it
 * applies: the choice FORMAT.md specifies. st_codec_encode must give the
 * same encoding id and the same bytes, for every forced encoding and
 * at every SIMD level. */

static void ref_pack(st_buf *b, const uint64_t *v, size_t n, unsigned w)
{
    size_t bytes = (n * w + 7) / 8 + ST_PACK_SLACK;
    uint8_t *p = calloc(bytes, 1);
    cr_assert(p);
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < w; k++)
            if ((v[i] >> k) & 1) p[(i * w + k) / 8] |= (uint8_t)(1u << ((i * w + k) % 8));
    st_buf_append(b, p, bytes);
    free(p);
}

static unsigned ref_bits(uint64_t x)
{
    unsigned w = 0;
    for (; x; x >>= 1) w++;
    return w;
}

static int ref_cmp_s(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
static int ref_cmp_u(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Values of fixed column c widened to 64 bits (sign-extended int32). */
static uint64_t *ref_widen(const st_column *c)
{
    size_t n = c->n_rows;
    uint64_t *v = malloc((n + 1) * sizeof *v);
    cr_assert(v);
    for (size_t i = 0; i < n; i++)
        v[i] = c->type == ST_TYPE_BOOL  ? st_column_bool(c)[i]
               : c->type == ST_TYPE_I32 ? (uint64_t)(int64_t)st_column_i32(c)[i]
                                        : (uint64_t)st_column_i64(c)[i];
    return v;
}

/* FOR_BITPACK, DELTA and RLE candidates of integer values v[0..n). */
static void ref_int_candidates(const uint64_t *v, size_t n, st_buf *cand, bool *ok)
{
    int64_t mn = 0, mx = 0, dmn = 0, dmx = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t x = (int64_t)v[i];
        if (i == 0 || x < mn) mn = x;
        if (i == 0 || x > mx) mx = x;
    }
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)(v[i] - v[i - 1]);
        if (i == 1 || d < dmn) dmn = d;
        if (i == 1 || d > dmx) dmx = d;
    }
    unsigned w_for = ref_bits((uint64_t)mx - (uint64_t)mn);
    uint64_t *t = calloc(n + 1, sizeof *t), *len = calloc(n + 1, sizeof *len);
    cr_assert(t && len);
    ok[ST_ENC_FOR_BITPACK] = true;
    st_buf_put_u64(&cand[ST_ENC_FOR_BITPACK], (uint64_t)mn);
    st_buf_put_u8(&cand[ST_ENC_FOR_BITPACK], (uint8_t)w_for);
    for (size_t i = 0; i < n; i++) t[i] = v[i] - (uint64_t)mn;
    ref_pack(&cand[ST_ENC_FOR_BITPACK], t, n, w_for);
    if (n >= 1) {
        unsigned wd = ref_bits((uint64_t)dmx - (uint64_t)dmn);
        ok[ST_ENC_DELTA] = true;
        st_buf_put_u64(&cand[ST_ENC_DELTA], v[0]);
        st_buf_put_u64(&cand[ST_ENC_DELTA], (uint64_t)dmn);
        st_buf_put_u8(&cand[ST_ENC_DELTA], (uint8_t)wd);
        for (size_t i = 1; i < n; i++) t[i - 1] = v[i] - v[i - 1] - (uint64_t)dmn;
        ref_pack(&cand[ST_ENC_DELTA], t, n - 1, wd);
    }
    size_t runs = 0;
    uint64_t max_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i] == v[i - 1]) {
            len[runs - 1]++;
        } else {
            t[runs] = v[i] - (uint64_t)mn;
            len[runs++] = 1;
        }
        if (len[runs - 1] > max_len) max_len = len[runs - 1];
    }
    for (size_t r = 0; r < runs; r++) len[r]--;
    unsigned wl = ref_bits(max_len ? max_len - 1 : 0);
    ok[ST_ENC_RLE] = true;
    st_buf_put_u32(&cand[ST_ENC_RLE], (uint32_t)runs);
    st_buf_put_u64(&cand[ST_ENC_RLE], (uint64_t)mn);
    st_buf_put_u8(&cand[ST_ENC_RLE], (uint8_t)w_for);
    ref_pack(&cand[ST_ENC_RLE], t, runs, w_for);
    st_buf_put_u8(&cand[ST_ENC_RLE], (uint8_t)wl);
    ref_pack(&cand[ST_ENC_RLE], len, runs, wl);
    free(t);
    free(len);
}

/* DICT candidate of fixed values v[0..n): the sorted distinct values
 * (signed order for integers, bit patterns for float64), codes by binary
 * search. Not applicable beyond 4096 distinct values. */
static void ref_dict_candidate(const uint64_t *v, size_t n, bool f64, st_buf *cand, bool *ok)
{
    if (n == 0) return;
    uint64_t *d = malloc(n * sizeof *d), *codes = malloc(n * sizeof *codes);
    cr_assert(d && codes);
    memcpy(d, v, n * sizeof *d);
    int (*cmp)(const void *, const void *) = f64 ? ref_cmp_u : ref_cmp_s;
    qsort(d, n, sizeof *d, cmp);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || d[i] != d[nd - 1]) d[nd++] = d[i];
    if (nd <= 4096) {
        for (size_t i = 0; i < n; i++) codes[i] = (uint64_t)((const uint64_t *)bsearch(&v[i], d, nd, 8, cmp) - d);
        st_buf *b = &cand[ST_ENC_DICT];
        ok[ST_ENC_DICT] = true;
        st_buf_put_u32(b, (uint32_t)nd);
        if (f64) {
            for (size_t k = 0; k < nd; k++) st_buf_put_u64(b, d[k]);
        } else {
            unsigned w = ref_bits(d[nd - 1] - d[0]);
            st_buf_put_u64(b, d[0]);
            st_buf_put_u8(b, (uint8_t)w);
            uint64_t *t = malloc(nd * sizeof *t);
            for (size_t k = 0; k < nd; k++) t[k] = d[k] - d[0];
            ref_pack(b, t, nd, w);
            free(t);
        }
        st_buf_put_u8(b, (uint8_t)(nd > 1 ? ref_bits(nd - 1) : 0));
        ref_pack(b, codes, n, nd > 1 ? ref_bits(nd - 1) : 0);
    }
    free(d);
    free(codes);
}

static void ref_fixed(const st_column *c, st_buf *cand, bool *ok)
{
    size_t n = c->n_rows;
    bool f64 = c->type == ST_TYPE_F64;
    uint64_t *v = f64 ? NULL : ref_widen(c);
    if (f64) {
        v = malloc((n + 1) * 8);
        if (n) memcpy(v, c->data, n * 8);
    }
    ok[ST_ENC_PLAIN] = true;
    st_buf_append(&cand[ST_ENC_PLAIN], c->data, n * st_type_width(c->type));
    if (!f64) ref_int_candidates(v, n, cand, ok);
    ref_dict_candidate(v, n, f64, cand, ok);
    bool same = n > 0;
    for (size_t i = 1; i < n; i++) same = same && v[i] == v[0];
    if (same) {
        ok[ST_ENC_CONST] = true;
        st_buf_put_u64(&cand[ST_ENC_CONST], v[0]);
    }
    free(v);
}

static const st_column *ref_sort_col;
static int ref_cmp_row(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b, li, lj;
    const char *x = st_column_str(ref_sort_col, i, &li), *y = st_column_str(ref_sort_col, j, &lj);
    int k = memcmp(x, y, li < lj ? li : lj);
    if (k == 0) k = (li > lj) - (li < lj);
    return k ? k : (i > j) - (i < j);
}

/* DICT candidate of a string column: values in first-occurrence order. */
static void ref_str_dict(const st_column *c, st_buf *cand, bool *ok)
{
    size_t n = c->n_rows;
    if (n == 0) return;
    size_t *idx = malloc(n * sizeof *idx), *group = malloc(n * sizeof *group), *first = malloc(n * sizeof *first);
    size_t *rank = malloc(n * sizeof *rank);
    uint64_t *codes = malloc(n * sizeof *codes);
    cr_assert(idx && group && first && rank && codes);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    ref_sort_col = c;
    qsort(idx, n, sizeof *idx, ref_cmp_row);
    size_t ng = 0; /* groups of equal strings; each group's first row is its smallest index */
    for (size_t k = 0; k < n; k++) {
        size_t la, lb;
        const char *a = st_column_str(c, idx[k], &la), *b = k ? st_column_str(c, idx[k - 1], &lb) : NULL;
        if (k == 0 || la != lb || memcmp(a, b, la)) first[ng++] = idx[k];
        group[idx[k]] = ng - 1;
    }
    if (ng <= 4096) {
        /* rank of a group = how many groups occur first before it */
        for (size_t g = 0; g < ng; g++) {
            rank[g] = 0;
            for (size_t h = 0; h < ng; h++) rank[g] += first[h] < first[g];
        }
        size_t *order = malloc(ng * sizeof *order);
        for (size_t g = 0; g < ng; g++) order[rank[g]] = first[g];
        for (size_t i = 0; i < n; i++) codes[i] = rank[group[i]];
        uint64_t lmin = 0, lmax = 0;
        uint64_t *lens = malloc(ng * sizeof *lens);
        for (size_t k = 0; k < ng; k++) {
            size_t l;
            st_column_str(c, order[k], &l);
            lens[k] = l;
            if (k == 0 || l < lmin) lmin = l;
            if (k == 0 || l > lmax) lmax = l;
        }
        st_buf *b = &cand[ST_ENC_DICT];
        ok[ST_ENC_DICT] = true;
        st_buf_put_u32(b, (uint32_t)ng);
        st_buf_put_u64(b, lmin);
        st_buf_put_u8(b, (uint8_t)ref_bits(lmax - lmin));
        for (size_t k = 0; k < ng; k++) lens[k] -= lmin;
        ref_pack(b, lens, ng, ref_bits(lmax - lmin));
        for (size_t k = 0; k < ng; k++) {
            size_t l;
            const char *s = st_column_str(c, order[k], &l);
            st_buf_append(b, s, l);
        }
        st_buf_put_u8(b, (uint8_t)(ng > 1 ? ref_bits(ng - 1) : 0));
        ref_pack(b, codes, n, ng > 1 ? ref_bits(ng - 1) : 0);
        free(lens);
        free(order);
    }
    free(idx);
    free(group);
    free(first);
    free(rank);
    free(codes);
}

static void ref_var(const st_column *c, st_buf *cand, bool *ok)
{
    size_t n = c->n_rows;
    uint64_t *len = malloc((n + 1) * sizeof *len), lmin = 0, lmax = 0;
    cr_assert(len);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        st_column_str(c, i, &l);
        len[i] = l;
        if (i == 0 || l < lmin) lmin = l;
        if (i == 0 || l > lmax) lmax = l;
    }
    ok[ST_ENC_PLAIN] = true;
    st_buf_put_u64(&cand[ST_ENC_PLAIN], lmin);
    st_buf_put_u8(&cand[ST_ENC_PLAIN], (uint8_t)ref_bits(lmax - lmin));
    for (size_t i = 0; i < n; i++) len[i] -= lmin;
    ref_pack(&cand[ST_ENC_PLAIN], len, n, ref_bits(lmax - lmin));
    if (n) st_buf_append(&cand[ST_ENC_PLAIN], c->bytes + c->offsets[0], c->offsets[n] - c->offsets[0]);
    ref_str_dict(c, cand, ok);
    bool same = n > 0;
    size_t l0 = 0;
    const char *s0 = n ? st_column_str(c, 0, &l0) : NULL;
    for (size_t i = 1; i < n && same; i++) {
        size_t l;
        const char *s = st_column_str(c, i, &l);
        same = l == l0 && !memcmp(s, s0, l);
    }
    if (same) {
        ok[ST_ENC_CONST] = true;
        st_buf_put_u32(&cand[ST_ENC_CONST], (uint32_t)l0);
        st_buf_append(&cand[ST_ENC_CONST], s0, l0);
    }
    free(len);
}

/* The reference encoding of c: every candidate into cand[6] (ok[e] when
 * encoding e applies), then the choice for each `force`. */
static void ref_candidates(const st_column *c, st_buf cand[6], bool ok[6])
{
    for (int e = 0; e < 6; e++) {
        st_buf_init(&cand[e]);
        ok[e] = false;
    }
    if (c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES) ref_var(c, cand, ok);
    else ref_fixed(c, cand, ok);
    for (int e = 0; e < 6; e++) cr_assert(st_buf_ok(&cand[e]));
}

static int ref_choice(const st_buf cand[6], const bool ok[6], int force)
{
    int best = ST_ENC_PLAIN;
    for (int e = 0; e < 6; e++)
        if (ok[e] && cand[e].len < cand[best].len) best = e;
    return force >= 0 && force < 6 && ok[force] ? force : best;
}

/* One test column: kind k of `encoder_cases` below, n rows of type t. */
static void enc_case(st_column *c, st_type t, size_t n, int k)
{
    st_column_init(c, t);
    uint64_t x = 0x243F6A8885A308D3ull ^ ((uint64_t)k << 32) ^ n;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t v;
        switch (k) {
        case 0: v = 42; break;                                             /* all equal */
        case 1: v = (int64_t)i * 3 - 1000; break;                          /* all distinct, sorted */
        case 2: v = (int64_t)x; break;                                     /* full 64-bit range */
        case 3: v = (int64_t)(x % 100) - 50; break;                        /* small range, negative too */
        case 4: v = -(int64_t)(x % 100000) - 1; break;                     /* negative only */
        case 5: v = x % 3 == 0 ? INT64_MIN : x % 3 == 1 ? INT64_MAX : 0; break; /* extremes */
        case 6: v = (int64_t)((i / 17) % 5); break;                        /* short runs */
        case 7: v = (int64_t)(i / (n / 3 + 1)) * 1000003; break;           /* three long runs */
        case 8: v = (int64_t)(i & 1); break;                               /* alternating */
        case 9: v = (int64_t)(((i % 4096) * 2654435761u) % 4096) * 977 - 5; break; /* 4096 distinct */
        case 10: v = (int64_t)(i % 4097) * 131; break;                     /* 4097 distinct */
        case 11: v = (int64_t)((x % 7) * (uint64_t)(INT64_MAX / 4) - (uint64_t)(INT64_MAX / 2)); break; /* few values, wide range */
        case 12: v = i + 1 == n ? INT64_MIN : (int64_t)i; break;            /* sorted, one outlier */
        case 13: v = i == n / 2 ? -7 : 9; break;                           /* one odd value */
        case 14: v = INT64_MAX - (int64_t)i * 5; break;                    /* descending near the top */
        case 15: v = (int64_t)((x % 64) << 48); break;                     /* strided: hash stress */
        case 16: v = (int64_t)((x % 3000) << 32) + (int64_t)(x % 2); break; /* strided, many values */
        default: v = (int64_t)(x % (1u << 16)) - 30000; break;             /* 16-bit range, random */
        }
        st_status s = ST_OK;
        switch (t) {
        case ST_TYPE_BOOL: s = st_column_push_bool(c, (v & 1) != 0); break;
        case ST_TYPE_I32: s = st_column_push_i32(c, k == 5 ? (v == INT64_MIN ? INT32_MIN : v == INT64_MAX ? INT32_MAX : 0)
                                                           : (int32_t)(v >> (k == 11 || k == 14 || k == 15 ? 32 : 0)));
            break;
        case ST_TYPE_I64: s = st_column_push_i64(c, v); break;
        case ST_TYPE_F64: {
            static const uint64_t odd[] = {0x8000000000000000ull /* -0.0 */, 0, 0x7FF8000000000000ull /* NaN */,
                                           0x7FF8000000000001ull, 0xFFF8000000000000ull, 0x7FF0000000000000ull,
                                           0xFFF0000000000000ull, 1 /* subnormal */};
            double d;
            if (k == 5 || k == 15) {
                uint64_t bits = odd[x % 8];
                memcpy(&d, &bits, 8);
            } else {
                d = (double)v / 7.0;
            }
            s = st_column_push_f64(c, d);
            break;
        }
        default: {
            char buf[400];
            size_t len;
            if (k == 3) len = 0;                                          /* all empty */
            else if (k == 4) len = x % 3 ? 0 : (size_t)snprintf(buf, sizeof buf, "e%d", (int)(x % 10)); /* many empty */
            else if (k == 14) {                                           /* long values, shared prefix */
                len = 300 + x % 64;
                memset(buf, 'p', len);
                buf[len - 1] = (char)('a' + x % 20);
            } else if (k == 15) len = (size_t)snprintf(buf, sizeof buf, "%s", (const char *[]){"a", "ab", "abc", "", "abcd"}[x % 5]);
            else len = (size_t)snprintf(buf, sizeof buf, "s%lld", (long long)v);
            if (t == ST_TYPE_BYTES && len > 1) buf[len / 2] = '\0';       /* embedded zero bytes */
            s = st_column_push_str(c, buf, len);
            break;
        }
        }
        cr_assert_eq(s, ST_OK);
    }
}

static int enc_seen[2][6]; /* [fixed, strings][encoding]: chosen by size at least once */

static void expect_encoder_matches(const st_column *c, const char *what)
{
    st_buf cand[6];
    bool ok[6];
    ref_candidates(c, cand, ok);
    st_buf got;
    st_buf_init(&got);
    for (int force = -1; force < 6; force++) {
        int want = ref_choice(cand, ok, force), enc = -1;
        if (force < 0) enc_seen[c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES][want]++;
        st_buf_reset(&got);
        cr_assert_eq(st_codec_encode(c, force, &got, &enc), ST_OK, "%s", what);
        cr_assert_eq(enc, want, "%s force %d: encoding %d, the reference picks %d", what, force, enc, want);
        cr_assert_eq(got.len, cand[want].len, "%s force %d (encoding %d): %zu bytes, the reference %zu", what, force,
                     enc, got.len, cand[want].len);
        size_t at = 0;
        while (at < got.len && got.data[at] == cand[want].data[at]) at++;
        cr_assert_eq(at, got.len, "%s force %d (encoding %d): first different byte at %zu of %zu", what, force, enc,
                     at, got.len);
    }
    st_buf_free(&got);
    for (int e = 0; e < 6; e++) st_buf_free(&cand[e]);
}

Test(format, encoder_matches_naive_reference_byte_for_byte)
{
    static const st_type types[] = {ST_TYPE_BOOL, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_BYTES};
    static const size_t sizes[] = {0, 1, 2, 3, 8, 9, 63, 1000, 4097, 65536};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
            for (int k = 0; k < 18; k++) {
                if (sizes[si] == 65536 && k % 3 != 0 && k != 10 && k != 16) continue; /* keep the test short */
                st_column c;
                enc_case(&c, types[ti], sizes[si], k);
                for (int lvl = ST_CPU_SCALAR; lvl <= ST_CPU_AVX512; lvl++) {
                    if (lvl > (int)st_cpu_detected()) break;
                    if (lvl > ST_CPU_SCALAR && sizes[si] == 65536 && k % 6 != 0) continue;
                    st_cpu_cap((st_cpu_isa)lvl);
                    char what[96];
                    snprintf(what, sizeof what, "%s, %zu rows, case %d, %s", st_type_name(types[ti]), sizes[si], k,
                             st_cpu_name((st_cpu_isa)lvl));
                    expect_encoder_matches(&c, what);
                }
                st_cpu_cap(ST_CPU_AVX512);
                st_column_free(&c);
            }
    for (int e = 0; e < 6; e++)
        cr_assert(enc_seen[0][e] > 0, "the cases make the choice pick encoding %d for some fixed column", e);
    cr_assert(enc_seen[1][ST_ENC_PLAIN] && enc_seen[1][ST_ENC_DICT] && enc_seen[1][ST_ENC_CONST],
              "the cases make the choice pick every string encoding");
}

/* The SIMD statistics kernels against the scalar one (the spec): every
 * length 0..80 at every start offset 0..3 (the tails and the unaligned
 * loads), over values that make each statistic hard: extremes whose
 * differences wrap, runs, constant stretches, random. */
Test(format, encoder_stats_kernels_match_scalar)
{
    enum { N = 4096 };
    uint64_t *v = malloc((N + 8) * sizeof *v);
    int32_t *v32 = malloc((N + 8) * sizeof *v32);
    cr_assert(v && v32);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int pat = 0; pat < 5; pat++) {
        for (size_t i = 0; i < N + 8; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            switch (pat) {
            case 0: v[i] = x; break;
            case 1: v[i] = x % 3 == 0 ? (uint64_t)INT64_MIN : x % 3 == 1 ? (uint64_t)INT64_MAX : 0; break;
            case 2: v[i] = (i / 5) % 3; break;
            case 3: v[i] = 7; break;
            default: v[i] = (uint64_t)(int64_t)(int32_t)(x >> 32); break;
            }
            v32[i] = pat == 1 ? (x % 3 == 0 ? INT32_MIN : x % 3 == 1 ? INT32_MAX : 0) : (int32_t)v[i];
        }
        for (int lvl = ST_CPU_AVX2; lvl <= (int)st_cpu_detected(); lvl++)
            for (size_t off = 0; off < 4; off++)
                for (size_t n = 0; n <= 80; n++) {
                    size_t len = n == 80 ? N : n;
                    st_enc_stats a, b, a32, b32;
                    st_enc_stats64_scalar(v + off, len, &a);
                    st_enc_stats64_pick((st_cpu_isa)lvl)(v + off, len, &b);
                    st_enc_stats32_scalar(v32 + off, len, &a32);
                    st_enc_stats32_pick((st_cpu_isa)lvl)(v32 + off, len, &b32);
                    cr_assert(a.mn == b.mn && a.mx == b.mx && a.dmn == b.dmn && a.dmx == b.dmx && a.runs == b.runs,
                              "int64 %s pattern %d offset %zu n %zu", st_cpu_name((st_cpu_isa)lvl), pat, off, len);
                    cr_assert(a32.mn == b32.mn && a32.mx == b32.mx && a32.dmn == b32.dmn && a32.dmx == b32.dmx &&
                                  a32.runs == b32.runs,
                              "int32 %s pattern %d offset %zu n %zu", st_cpu_name((st_cpu_isa)lvl), pat, off, len);
                }
    }
    /* the run lists, over runs of every length around the step sizes */
    uint64_t *val = malloc(2 * (N + 8) * sizeof *val), *len = val + N + 8;
    uint64_t *val2 = malloc(2 * (N + 8) * sizeof *val2), *len2 = val2 + N + 8;
    cr_assert(val && val2);
    for (int pat = 0; pat < 4; pat++) {
        for (size_t i = 0, run = 0; i < N + 8; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (pat == 0) v[i] = x % 2;                                  /* short runs */
            else if (pat == 1) v[i] = i / (1 + i % 11);                   /* mixed lengths */
            else if (pat == 2) v[i] = (run += x % 13 == 0) % 3;           /* long runs */
            else v[i] = i < (N + 8) / 2 ? 5 : (uint64_t)INT64_MIN;        /* two runs */
        }
        for (int lvl = ST_CPU_AVX2; lvl <= (int)st_cpu_detected(); lvl++)
            for (size_t off = 0; off < 4; off++)
                for (size_t n = 1; n <= 80; n++) {
                    size_t cnt = n == 80 ? N : n;
                    size_t a = st_enc_runs_scalar(v + off, cnt, val, len);
                    size_t b = st_enc_runs_pick((st_cpu_isa)lvl)(v + off, cnt, val2, len2);
                    st_enc_stats st0;
                    st_enc_stats64_scalar(v + off, cnt, &st0);
                    cr_assert_eq(a, b, "runs %s pattern %d offset %zu n %zu: longest", st_cpu_name((st_cpu_isa)lvl),
                                 pat, off, cnt);
                    cr_assert(!memcmp(val, val2, st0.runs * 8) && !memcmp(len, len2, st0.runs * 8),
                              "runs %s pattern %d offset %zu n %zu: list", st_cpu_name((st_cpu_isa)lvl), pat, off, cnt);
                    size_t total = 0;
                    for (size_t r = 0; r < st0.runs; r++) total += len[r] + 1;
                    cr_assert_eq(total, cnt, "the run lengths add up to the rows");
                }
    }
    free(val);
    free(val2);
    /* and the scalar kernel against the definition, on a few values */
    uint64_t w[4] = {(uint64_t)INT64_MAX, (uint64_t)INT64_MIN, (uint64_t)INT64_MIN, 5};
    st_enc_stats st;
    st_enc_stats64_scalar(w, 4, &st);
    cr_assert(st.mn == INT64_MIN && st.mx == INT64_MAX && st.runs == 3);
    cr_assert(st.dmn == (int64_t)(5 - (uint64_t)INT64_MIN) && st.dmx == 1, "differences wrap modulo 2^64");
    free(v);
    free(v32);
}

/* One file from columns of every type and many encoding cases, written
 * through st_writer_write with `threads` encoder lanes (several chunks,
 * the last one short); returns its bytes. */
enum { LANES_NC = 12, LANES_ROWS = 3 * 4096 + 77 };

/* The schema and columns of the lanes files: every type, many encoding
 * cases, LANES_ROWS rows. */
static void lanes_columns(st_field *f, st_column *c, char (*names)[16])
{
    static const st_type types[] = {ST_TYPE_BOOL, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_BYTES};
    enum { NT = sizeof types / sizeof *types };
    for (int j = 0; j < LANES_NC; j++) {
        snprintf(names[j], 16, "c%d", j);
        f[j] = (st_field){names[j], types[j % NT], false, NULL};
        enc_case(&c[j], types[j % NT], LANES_ROWS, (j * 5) % 18);
    }
}

static char *write_lanes_file(const char *name, unsigned threads, size_t *n_bytes)
{
    enum { NC = LANES_NC, ROWS = LANES_ROWS };
    st_field f[NC];
    st_column c[NC];
    char names[NC][16];
    lanes_columns(f, c, names);
    char path[300];
    snprintf(path, sizeof path, "%s/%s.strata", dir, name);
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 4096};
    st_writer *w = NULL;
    st_error err = {0};
    cr_assert_eq(st_writer_open(&w, path, f, NC, NULL, &wo, &err), ST_OK, "%s", err.msg);
    st_pool *pool = threads > 1 ? st_pool_new((int)threads) : NULL;
    cr_assert(threads == 1 || pool);
    st_writer_set_pool(w, pool);
    cr_assert_eq(st_writer_write(w, c, 0, 5000, &err), ST_OK, "%s", err.msg); /* one chunk and a buffered part */
    cr_assert_eq(st_writer_write(w, c, 5000, ROWS - 5000, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_pool_free(pool);
    for (int j = 0; j < NC; j++) st_column_free(&c[j]);
    char *bytes = fx_slurp(path, n_bytes);
    cr_assert_not_null(bytes);
    return bytes;
}

/* Encoding a chunk's columns on several threads changes where blocks are
 * encoded, never how: the file is byte for byte the one-thread file. */
Test(format, columns_encoded_on_several_threads_write_the_same_bytes)
{
    size_t n1, n3, n8;
    char *one = write_lanes_file("lanes1", 1, &n1), *three = write_lanes_file("lanes3", 3, &n3),
         *many = write_lanes_file("lanes8", 8, &n8);
    cr_assert_eq(n1, n3);
    cr_assert_eq(n1, n8);
    cr_assert(memcmp(one, three, n1) == 0, "3 lanes wrote other bytes than 1");
    cr_assert(memcmp(one, many, n1) == 0, "8 lanes wrote other bytes than 1");
    free(one);
    free(three);
    free(many);
}

/* The write_lanes_file columns and schema, chunk k's rows as columns of
 * their own (chunks of 4096 rows, the last one short). */
static void lanes_chunk(const st_column *c, int nc, size_t k, size_t rows, st_column *out)
{
    size_t first = k * 4096, n = rows - first < 4096 ? rows - first : 4096;
    for (int j = 0; j < nc; j++) {
        st_column_init(&out[j], c[j].type);
        cr_assert_eq(st_column_append_range(&out[j], &c[j], first, n), ST_OK);
    }
}

/* Chunks encoded out of order, each by its own st_chunk_enc, and put in
 * row order give the bytes of st_writer_write; put refuses a chunk out of
 * row order and encode refuses a chunk that is not the schema's. */
Test(format, chunks_encoded_apart_and_put_in_order_write_the_same_bytes)
{
    enum { NC = LANES_NC, ROWS = LANES_ROWS, NCH = 4 };
    st_field f[NC];
    st_column c[NC], part[NCH][NC];
    char names[NC][16];
    lanes_columns(f, c, names);
    char path[300];
    snprintf(path, sizeof path, "%s/apart.strata", dir);
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 4096};
    st_writer *w = NULL;
    st_error err = {0};
    cr_assert_eq(st_writer_open(&w, path, f, NC, NULL, &wo, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_chunk_rows(w), 4096u);
    st_chunk_enc *ce[NCH];
    st_enc_lane *lane[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(st_enc_lane_create(&lane[i], &err), ST_OK, "%s", err.msg);
    for (int k = NCH - 1; k >= 0; k--) { /* last chunk first */
        lanes_chunk(c, NC, (size_t)k, ROWS, part[k]);
        cr_assert_eq(st_chunk_enc_create(w, &ce[k], &err), ST_OK, "%s", err.msg);
        if (k != 2) {
            cr_assert_eq(st_writer_encode_chunk(w, part[k], part[k][0].n_rows, (uint64_t)k * 4096, lane[0], ce[k], &err),
                         ST_OK, "%s", err.msg);
            continue;
        }
        /* chunk 2 column by column, on two lanes, the last column left for later */
        for (int j = NC - 2; j >= 0; j--)
            cr_assert_eq(st_writer_encode_column(w, (size_t)j, &part[k][j], part[k][0].n_rows, (uint64_t)k * 4096,
                                                 lane[j & 1], ce[k], &err),
                         ST_OK, "%s", err.msg);
    }
    cr_assert_eq(st_writer_put_chunk(w, ce[1], &err), ST_ERR_INVALID, "chunk 1 before chunk 0 is refused");
    cr_assert(strstr(err.msg, "put after 0 rows") != NULL, "%s", err.msg);
    cr_assert_eq(st_writer_encode_chunk(w, part[0], 4097, 0, lane[1], ce[0], &err), ST_ERR_INVALID, "more rows than a chunk");
    cr_assert_eq(st_writer_encode_chunk(w, part[0], 4096, 0, lane[1], ce[0], &err), ST_OK, "%s", err.msg);
    for (int k = 0; k < 2; k++) cr_assert_eq(st_writer_put_chunk(w, ce[k], &err), ST_OK, "chunk %d: %s", k, err.msg);
    cr_assert_eq(st_writer_put_chunk(w, ce[2], &err), ST_ERR_INVALID, "a chunk with a column not encoded");
    cr_assert_eq(st_writer_encode_column(w, NC - 1, &part[2][NC - 1], 4096, 4096, lane[0], ce[2], &err), ST_OK,
                 "%s", err.msg);
    cr_assert_eq(st_writer_put_chunk(w, ce[2], &err), ST_ERR_INVALID, "a column encoded for other rows");
    cr_assert_eq(st_writer_encode_column(w, NC - 1, &part[2][NC - 1], 4096, 2 * 4096, lane[1], ce[2], &err), ST_OK,
                 "%s", err.msg);
    for (int k = 2; k < NCH; k++) cr_assert_eq(st_writer_put_chunk(w, ce[k], &err), ST_OK, "chunk %d: %s", k, err.msg);
    cr_assert_eq(st_writer_put_chunk(w, ce[0], &err), ST_ERR_INVALID, "a chunk is put once");
    cr_assert_eq(st_writer_n_rows(w), (uint64_t)ROWS);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    size_t n_apart, n_one;
    char *apart = fx_slurp(path, &n_apart), *one = write_lanes_file("apart1", 1, &n_one);
    cr_assert_not_null(apart);
    cr_assert_eq(n_apart, n_one);
    cr_assert(memcmp(apart, one, n_one) == 0, "chunks encoded apart wrote other bytes than st_writer_write");
    for (int i = 0; i < 2; i++) st_enc_lane_free(lane[i]);
    for (int k = 0; k < NCH; k++) {
        st_chunk_enc_free(ce[k]);
        for (int j = 0; j < NC; j++) st_column_free(&part[k][j]);
    }
    for (int j = 0; j < NC; j++) st_column_free(&c[j]);
    free(apart);
    free(one);
}

/* A chunk after a short one is not what st_writer_write cuts: refused. */
Test(format, a_chunk_put_after_a_short_one_is_refused)
{
    st_field f = {"v", ST_TYPE_I64, false, NULL};
    st_column c;
    st_column_init(&c, ST_TYPE_I64);
    for (int i = 0; i < 10; i++) cr_assert_eq(st_column_push_i64(&c, i), ST_OK);
    char path[300];
    snprintf(path, sizeof path, "%s/short.strata", dir);
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 4096};
    st_writer *w = NULL;
    st_error err = {0};
    cr_assert_eq(st_writer_open(&w, path, &f, 1, NULL, &wo, &err), ST_OK, "%s", err.msg);
    st_chunk_enc *ce = NULL;
    st_enc_lane *lane = NULL;
    cr_assert_eq(st_chunk_enc_create(w, &ce, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_enc_lane_create(&lane, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_encode_chunk(w, &c, 10, 0, lane, ce, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_put_chunk(w, ce, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_encode_chunk(w, &c, 10, 10, lane, ce, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_put_chunk(w, ce, &err), ST_ERR_INVALID);
    cr_assert(strstr(err.msg, "in 1 chunks") != NULL, "%s", err.msg);
    st_chunk_enc_free(ce);
    st_enc_lane_free(lane);
    st_writer_abort(w);
    st_column_free(&c);
}

/* The AVX2 unpacking kernel against the scalar one (the spec): every width
 * 0..64, lengths around the group and load boundaries, random bits, a
 * base that wraps, and the packed array followed only by its slack (the
 * buffer is exactly st_packed_bytes long, so a read past it is caught
 * under the sanitizers). */
Test(format, unpack_kernel_matches_scalar)
{
    if (st_cpu_detected() < ST_CPU_AVX2) return; /* nothing to compare on this CPU */
    static const size_t lens[] = {0, 1, 7, 8, 15, 16, 17, 23, 24, 31, 33, 40, 63, 64, 65, 100, 257, 1000, 4099};
    uint64_t x = 0x853C49E6748FEA9Bull;
    for (unsigned w = 0; w <= 64; w++)
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            size_t n = lens[li], bytes = st_packed_bytes(n, w);
            uint8_t *p = malloc(bytes);
            uint64_t *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b);
            cr_assert(p && a && b);
            for (size_t i = 0; i < bytes; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                p[i] = (uint8_t)x;
            }
            uint64_t base = w % 3 == 0 ? UINT64_MAX - 5 : (uint64_t)w * 1000;
            st_unpack_scalar(p, n, w, base, a);
            st_unpack_avx2(p, n, w, base, b);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(a[i], b[i], "width %u, %zu values: value %zu is %llu, scalar says %llu", w, n, i,
                             (unsigned long long)b[i], (unsigned long long)a[i]);
            cr_assert(st_unpack_pick(ST_CPU_SCALAR) == st_unpack_scalar);
            free(p);
            free(a);
            free(b);
        }
}

/* ---- strings encoded from dictionary codes ---- */

/* A dictionary of n distinct strings: lengths up to max_len (at most 7
 * when `short_only`), some ending in a two-byte character; each starts
 * with its index in hex, then '-' when more follows, so no two are equal. */
static void codes_dict(st_column *d, size_t n, size_t max_len, bool short_only)
{
    st_column_init(d, ST_TYPE_STR);
    for (size_t i = 0; i < n; i++) {
        char s[64];
        int k = snprintf(s, sizeof s, "%zx", i);
        size_t lim = short_only ? 7 : max_len, len = (size_t)k + rnd() % (lim > (size_t)k ? lim - (size_t)k + 1 : 1);
        if (len > lim) len = lim < (size_t)k ? (size_t)k : lim;
        for (size_t j = (size_t)k; j < len; j++) s[j] = j == (size_t)k ? '-' : (char)('g' + rnd() % 20);
        if (len >= (size_t)k + 2 && i % 5 == 0) { /* a two-byte character at the end: "é" */
            s[len - 2] = (char)0xC3;
            s[len - 1] = (char)0xA9;
        }
        cr_assert_eq(st_column_push_str(d, s, len), ST_OK);
    }
}

/* Rows as codes, pattern p: random over the whole dictionary, over a few
 * codes, all one code, each row a new code, long runs. */
static void codes_rows(uint32_t *rows, size_t n, size_t n_dict, int p)
{
    uint32_t few = (uint32_t)(1 + rnd() % 6);
    for (size_t i = 0; i < n; i++) {
        switch (p) {
        case 0: rows[i] = (uint32_t)(rnd() % n_dict); break;
        case 1: rows[i] = (uint32_t)((rnd() % few) * 7 % n_dict); break;
        case 2: rows[i] = (uint32_t)(n_dict / 2); break;
        case 3: rows[i] = (uint32_t)(i % n_dict); break;
        default: rows[i] = (uint32_t)((i / 700) % n_dict); break;
        }
    }
}

/* The rows made into the column st_codec_encode sees. */
static void codes_column(const st_column *d, const uint32_t *rows, size_t n, st_column *c)
{
    st_column_init(c, ST_TYPE_STR);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = st_column_str(d, rows[i], &len);
        cr_assert_eq(st_column_push_str(c, s, len), ST_OK);
    }
}

/* st_codec_encode_str_codes writes, for every forced encoding too, the
 * bytes st_codec_encode writes for the strings made into a column (that
 * one is checked against the naive reference above): dictionaries of 1 to
 * 5,000 strings (past ST_DICT_MAX, the most a DICT block holds), short
 * ones and long ones, rows over all codes, a few, one, each a new code. */
Test(format, strings_encoded_from_codes_equal_the_strings_encoded)
{
    static const size_t dict_n[] = {1, 2, 5, 150, 4096, 5000};
    static const size_t rows_n[] = {1, 2, 63, 1000, 4097, 65536};
    uint32_t *rows = malloc(65536 * sizeof *rows);
    st_codec_scratch *s = st_codec_scratch_new();
    cr_assert(rows && s);
    st_buf want, got;
    st_buf_init(&want);
    st_buf_init(&got);
    int seen[6] = {0};
    for (size_t di = 0; di < sizeof dict_n / sizeof *dict_n; di++)
        for (int shortness = 0; shortness < 2; shortness++) {
            st_column d;
            codes_dict(&d, dict_n[di], shortness ? 7 : 24, shortness);
            for (size_t ri = 0; ri < sizeof rows_n / sizeof *rows_n; ri++)
                for (int p = 0; p < 5; p++) {
                    if (rows_n[ri] == 65536 && p % 2) continue; /* keep the test short */
                    size_t n = rows_n[ri];
                    codes_rows(rows, n, dict_n[di], p);
                    st_column c;
                    codes_column(&d, rows, n, &c);
                    for (int force = -1; force < 6; force++) {
                        int we = -1, ge = -1;
                        uint64_t bytes = 0;
                        st_buf_reset(&want);
                        st_buf_reset(&got);
                        cr_assert_eq(st_codec_encode(&c, force, &want, &we), ST_OK);
                        cr_assert_eq(st_codec_encode_str_codes(&d, rows, n, force, s, &got, &ge, &bytes), ST_OK);
                        if (force < 0) seen[we]++;
                        cr_assert_eq(ge, we, "dict %zu (short %d), %zu rows, pattern %d, force %d: encoding %d, "
                                     "the strings' %d", dict_n[di], shortness, n, p, force, ge, we);
                        cr_assert_eq(bytes, (uint64_t)c.n_bytes);
                        cr_assert(got.len == want.len && memcmp(got.data, want.data, got.len) == 0,
                                  "dict %zu (short %d), %zu rows, pattern %d, force %d: other bytes (%zu, %zu)",
                                  dict_n[di], shortness, n, p, force, got.len, want.len);
                    }
                    st_column_free(&c);
                }
            st_column_free(&d);
        }
    cr_assert(seen[ST_ENC_PLAIN] && seen[ST_ENC_DICT] && seen[ST_ENC_CONST], "the cases pick every string encoding");
    int enc;
    uint64_t bytes;
    st_column d;
    codes_dict(&d, 3, 8, false);
    cr_assert_eq(st_codec_encode_str_codes(&d, rows, 0, -1, s, &got, &enc, &bytes), ST_ERR_INVALID, "no rows");
    st_column_free(&d);
    st_buf_free(&want);
    st_buf_free(&got);
    st_codec_scratch_free(s);
    free(rows);
}

/* A DICT string block decoded as (dictionary, codes) gives each row's
 * string, whatever the code width (1..12 bits) and the row count around
 * the decoder's 1,024-row slices; a code past the dictionary in the last
 * slice only is refused as corrupt. */
Test(format, dictionary_codes_decode_in_slices_and_refuse_a_code_past_the_dictionary)
{
    static const size_t dict_n[] = {2, 3, 150, 300, 4096};
    static const size_t rows_n[] = {1, 7, 1023, 1024, 1025, 2049, 5000};
    uint32_t *rows = malloc(5000 * sizeof *rows), *codes = malloc(5000 * sizeof *codes);
    cr_assert(rows && codes);
    st_buf b;
    st_buf_init(&b);
    for (size_t di = 0; di < sizeof dict_n / sizeof *dict_n; di++) {
        st_column d;
        codes_dict(&d, dict_n[di], 12, false);
        for (size_t ri = 0; ri < sizeof rows_n / sizeof *rows_n; ri++) {
            size_t n = rows_n[ri];
            codes_rows(rows, n, dict_n[di], 0);
            st_column c, got;
            codes_column(&d, rows, n, &c);
            st_column_init(&got, ST_TYPE_STR);
            int enc = -1;
            const char *why = NULL;
            st_buf_reset(&b);
            cr_assert_eq(st_codec_encode(&c, ST_ENC_DICT, &b, &enc), ST_OK);
            cr_assert_eq(enc, ST_ENC_DICT);
            cr_assert_eq(st_codec_decode_dict(ST_TYPE_STR, enc, (const uint8_t *)b.data, b.len, n, &got, codes, &why), ST_OK,
                         "dict %zu, %zu rows: %s", dict_n[di], n, why);
            for (size_t i = 0; i < n; i++) {
                size_t la, lb;
                cr_assert_lt(codes[i], got.n_rows, "dict %zu, %zu rows: row %zu code", dict_n[di], n, i);
                const char *x = st_column_str(&c, i, &la), *y = st_column_str(&got, codes[i], &lb);
                cr_assert(la == lb && !memcmp(x, y, la), "dict %zu, %zu rows: row %zu", dict_n[di], n, i);
            }
            st_column_free(&c);
            st_column_free(&got);
        }
        st_column_free(&d);
    }
    /* three strings: two-bit codes, the last bytes of the block (then the
     * slack); row 2900's code set to 3 */
    st_column d, c, got;
    codes_dict(&d, 3, 8, false);
    for (size_t i = 0; i < 3000; i++) rows[i] = (uint32_t)(i % 3);
    codes_column(&d, rows, 3000, &c);
    int enc = -1;
    const char *why = NULL;
    st_buf_reset(&b);
    cr_assert_eq(st_codec_encode(&c, ST_ENC_DICT, &b, &enc), ST_OK);
    uint8_t *packed = (uint8_t *)b.data + b.len - st_packed_bytes(3000, 2);
    packed[2900 / 4] |= (uint8_t)(3u << (2 * (2900 % 4)));
    st_column_init(&got, ST_TYPE_STR);
    cr_assert_eq(st_codec_decode_dict(ST_TYPE_STR, enc, (const uint8_t *)b.data, b.len, 3000, &got, codes, &why), ST_ERR_CORRUPT);
    cr_assert_str_eq(why, "dictionary code out of range");
    st_column_free(&got);
    st_column_free(&c);
    st_column_free(&d);
    st_buf_free(&b);
    free(rows);
    free(codes);
}

/* A file whose string column is written from codes is the file
 * st_writer_write makes of the strings; codes outside the dictionary,
 * invalid UTF-8 in a string a row uses, a dictionary with NULLs or of
 * another type, and a column that is not a string column are refused,
 * naming the row. */
Test(format, a_string_column_written_from_codes_is_the_file_of_its_strings)
{
    enum { ROWS = 3 * 4096 + 77 };
    st_field f[2] = {{"id", ST_TYPE_I64, false, NULL}, {"code", ST_TYPE_STR, false, NULL}};
    st_column d, c[2];
    codes_dict(&d, 300, 12, false);
    uint32_t *rows = malloc(ROWS * sizeof *rows);
    cr_assert_not_null(rows);
    codes_rows(rows, ROWS, 300, 0);
    for (size_t i = 0; i < ROWS; i += 977) rows[i] = 299; /* one code far apart */
    st_column_init(&c[0], ST_TYPE_I64);
    for (size_t i = 0; i < ROWS; i++) cr_assert_eq(st_column_push_i64(&c[0], (int64_t)(i * 3)), ST_OK);
    codes_column(&d, rows, ROWS, &c[1]);
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 4096};
    st_error err = {0};
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/codes_a.strata", dir);
    snprintf(pb, sizeof pb, "%s/codes_b.strata", dir);
    write_rows_file(pa, f, 2, c, ROWS, &wo);
    st_writer *w = NULL;
    cr_assert_eq(st_writer_open(&w, pb, f, 2, NULL, &wo, &err), ST_OK, "%s", err.msg);
    st_enc_lane *lane;
    st_chunk_enc *ce;
    cr_assert_eq(st_enc_lane_create(&lane, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_chunk_enc_create(w, &ce, &err), ST_OK, "%s", err.msg);
    for (size_t first = 0; first < ROWS; first += 4096) {
        size_t n = ROWS - first < 4096 ? ROWS - first : 4096;
        st_column part;
        st_column_init(&part, ST_TYPE_I64);
        cr_assert_eq(st_column_append_range(&part, &c[0], first, n), ST_OK);
        cr_assert_eq(st_writer_encode_column(w, 0, &part, n, first, lane, ce, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_writer_encode_str_codes(w, 1, &d, rows + first, n, first, lane, ce, &err), ST_OK, "%s",
                     err.msg);
        cr_assert_eq(st_writer_put_chunk(w, ce, &err), ST_OK, "%s", err.msg);
        st_column_free(&part);
    }
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    size_t na, nb;
    char *a = fx_slurp(pa, &na), *b = fx_slurp(pb, &nb);
    cr_assert(a && b && na == nb && memcmp(a, b, na) == 0, "the file written from codes differs (%zu, %zu bytes)",
              na, nb);
    free(a);
    free(b);

    cr_assert_eq(st_writer_open(&w, pb, f, 2, NULL, &wo, &err), ST_OK, "%s", err.msg);
    rows[5] = 300;
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &d, rows, 4096, 8192, lane, ce, &err), ST_ERR_INVALID);
    cr_assert(strstr(err.msg, "code 300 at row 8197") && strstr(err.msg, "'code'"), "%s", err.msg);
    rows[5] = 4;
    st_column bad;
    st_column_init(&bad, ST_TYPE_STR);
    cr_assert_eq(st_column_push_str(&bad, "ok", 2), ST_OK);
    cr_assert_eq(st_column_push_str(&bad, "\xff\xfe", 2), ST_OK);
    uint32_t two[3] = {0, 0, 1};
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &bad, two, 3, 0, lane, ce, &err), ST_ERR_INVALID);
    cr_assert(strstr(err.msg, "invalid UTF-8") && strstr(err.msg, "row 2"), "%s", err.msg);
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &bad, two, 2, 0, lane, ce, &err), ST_OK,
                 "an invalid string no row uses is no error: %s", err.msg);
    cr_assert_eq(st_column_push_null(&bad), ST_OK);
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &bad, two, 2, 0, lane, ce, &err), ST_ERR_INVALID, "NULLs");
    st_column none;
    st_column_init(&none, ST_TYPE_STR);
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &none, two, 1, 0, lane, ce, &err), ST_ERR_INVALID,
                 "an empty dictionary");
    cr_assert(strstr(err.msg, "code 0 at row 0"), "%s", err.msg);
    st_column_free(&none);
    cr_assert_eq(st_writer_encode_str_codes(w, 0, &d, rows, 2, 0, lane, ce, &err), ST_ERR_INVALID, "an int64 column");
    cr_assert_eq(st_writer_encode_str_codes(w, 1, &d, rows, 0, 0, lane, ce, &err), ST_ERR_INVALID, "no rows");
    st_writer_abort(w);
    st_column_free(&bad);
    st_chunk_enc_free(ce);
    st_enc_lane_free(lane);
    st_column_free(&c[0]);
    st_column_free(&c[1]);
    st_column_free(&d);
    free(rows);
}

/* Column j's rows of chunk k (ch rows) as runs into val/len; their count. */
static size_t chunk_runs(const st_column *c, int j, size_t k, size_t ch, uint64_t *val, uint32_t *len)
{
    size_t nr = 0;
    for (size_t i = k * ch; i < (k + 1) * ch; i++) {
        uint64_t v = j == 0 ? (uint64_t)st_column_i64(&c[0])[i]
                     : j == 1 ? (uint64_t)(int64_t)st_column_i32(&c[1])[i]
                              : st_column_bool(&c[2])[i];
        if (nr && val[nr - 1] == v) len[nr - 1]++;
        else val[nr] = v, len[nr++] = 1;
    }
    return nr;
}

/* Chunks of runs of several shapes (a few long runs, many short ones, one
 * value, runs of one row) written from their runs where
 * st_writer_encode_runs takes them (RLE or CONST) and as rows where it
 * says it did not: the file is the one st_writer_write makes of the rows,
 * for an int64, an int32 and a bool column. Lists that are not runs (an
 * empty run, equal neighbours) are not taken. */
/* Blocks the row decoder refuses, the runs decoder refuses for the same
 * reason: an int32 column's RLE or CONST block holding a 64-bit value,
 * a bool's holding 2, run lengths that do not add up, trailing bytes. */
Test(format, runs_are_refused_where_rows_are)
{
    struct { st_type enc_as, read_as; int enc; int64_t big; } cases[] = {
        {ST_TYPE_I64, ST_TYPE_I32, ST_ENC_RLE, (int64_t)1 << 40},
        {ST_TYPE_I64, ST_TYPE_I32, ST_ENC_CONST, -((int64_t)1 << 40)},
        {ST_TYPE_I64, ST_TYPE_BOOL, ST_ENC_RLE, 2},
        {ST_TYPE_I64, ST_TYPE_BOOL, ST_ENC_CONST, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        st_column c;
        st_column_init(&c, cases[k].enc_as);
        for (int i = 0; i < 40; i++)
            cr_assert_eq(st_column_push_i64(&c, cases[k].enc == ST_ENC_CONST || i >= 20 ? cases[k].big : 1), ST_OK);
        st_buf b;
        st_buf_init(&b);
        int enc = -1;
        cr_assert_eq(st_codec_encode(&c, cases[k].enc, &b, &enc), ST_OK);
        cr_assert_eq(enc, cases[k].enc);
        for (int damage = 0; damage < 3; damage++) {
            size_t len = b.len + (damage == 2); /* a trailing byte */
            uint8_t *p = calloc(len + 8, 1);
            memcpy(p, b.data, b.len);
            size_t n = 40 + (damage == 1 && enc == ST_ENC_RLE); /* lengths short of the rows */
            uint64_t val[64];
            uint32_t end[64];
            size_t n_runs;
            const char *why_runs = NULL, *why_rows = NULL;
            st_column rows;
            st_column_init(&rows, cases[k].read_as);
            st_status a = st_codec_decode_runs(cases[k].read_as, enc, p, len, n, val, end, 64, &n_runs, &why_runs);
            st_status r = st_codec_decode(cases[k].read_as, enc, p, len, n, &rows, &why_rows);
            cr_expect_eq(r, ST_ERR_CORRUPT, "case %zu damage %d", k, damage);
            cr_expect_eq(a, ST_ERR_CORRUPT, "case %zu damage %d", k, damage);
            if (a == ST_ERR_CORRUPT && r == ST_ERR_CORRUPT)
                cr_expect_str_eq(why_runs, why_rows, "case %zu damage %d", k, damage);
            /* as the type it was written as (no damage), both decode */
            if (damage == 0) {
                st_column ok;
                st_column_init(&ok, cases[k].enc_as);
                cr_expect_eq(st_codec_decode_runs(cases[k].enc_as, enc, p, len, n, val, end, 64, &n_runs, &why_runs),
                             ST_OK);
                cr_expect_eq(n_runs, enc == ST_ENC_CONST ? 1 : 2);
                cr_expect_eq(st_codec_decode(cases[k].enc_as, enc, p, len, n, &ok, &why_rows), ST_OK);
                st_column_free(&ok);
            }
            st_column_free(&rows);
            free(p);
        }
        st_buf_free(&b);
        st_column_free(&c);
    }
}

Test(format, a_column_written_from_runs_is_the_file_of_its_rows)
{
    enum { CH = 4096, N_CH = 7 };
    st_field f[3] = {{"a", ST_TYPE_I64, false, NULL}, {"b", ST_TYPE_I32, false, NULL}, {"c", ST_TYPE_BOOL, false, NULL}};
    st_column c[3];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_I32);
    st_column_init(&c[2], ST_TYPE_BOOL);
    static const uint32_t run_len[N_CH] = {700, 40, CH, 3, 1, 97, 12};
    uint64_t x = 99;
    for (size_t k = 0; k < N_CH; k++)
        for (size_t i = 0; i < CH; i++) {
            if (i % run_len[k] == 0) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t v = (int64_t)(x >> 40) % 1000 - 500 + (int64_t)(i / run_len[k]) * 7;
            cr_assert_eq(st_column_push_i64(&c[0], v * 1000003), ST_OK);
            cr_assert_eq(st_column_push_i32(&c[1], (int32_t)(v % 50)), ST_OK);
            cr_assert_eq(st_column_push_bool(&c[2], ((i / run_len[k]) & 1) != 0), ST_OK);
        }
    st_write_opts wo = {.no_fsync = true, .chunk_rows = CH};
    st_error err = {0};
    char pa[300], pb[300];
    snprintf(pa, sizeof pa, "%s/runs_a.strata", dir);
    snprintf(pb, sizeof pb, "%s/runs_b.strata", dir);
    write_rows_file(pa, f, 3, c, N_CH * CH, &wo);
    st_writer *w = NULL;
    cr_assert_eq(st_writer_open(&w, pb, f, 3, NULL, &wo, &err), ST_OK, "%s", err.msg);
    st_enc_lane *lane;
    st_chunk_enc *ce;
    cr_assert_eq(st_enc_lane_create(&lane, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_chunk_enc_create(w, &ce, &err), ST_OK, "%s", err.msg);
    uint64_t *val = malloc(CH * sizeof *val);
    uint32_t *len = malloc(CH * sizeof *len);
    cr_assert(val && len);
    int from_runs = 0, from_rows = 0;
    for (size_t k = 0; k < N_CH; k++) {
        for (int j = 0; j < 3; j++) {
            size_t nr = chunk_runs(c, j, k, CH, val, len);
            bool done = true;
            if (nr >= 2) { /* not runs */
                uint32_t l0 = len[0];
                len[0] = 0;
                cr_assert_eq(st_writer_encode_runs(w, (size_t)j, val, len, nr, k * CH, lane, ce, &done, &err), ST_OK);
                cr_assert(!done, "an empty run was taken");
                len[0] = l0;
                uint64_t v1 = val[1];
                val[1] = val[0];
                cr_assert_eq(st_writer_encode_runs(w, (size_t)j, val, len, nr, k * CH, lane, ce, &done, &err), ST_OK);
                cr_assert(!done, "equal neighbours were taken");
                val[1] = v1;
            }
            cr_assert_eq(st_writer_encode_runs(w, (size_t)j, val, len, nr, k * CH, lane, ce, &done, &err), ST_OK,
                         "%s", err.msg);
            if (done) {
                from_runs++;
                continue;
            }
            from_rows++;
            st_column part;
            st_column_init(&part, f[j].type);
            cr_assert_eq(st_column_append_range(&part, &c[j], k * CH, CH), ST_OK);
            cr_assert_eq(st_writer_encode_column(w, (size_t)j, &part, CH, k * CH, lane, ce, &err), ST_OK, "%s",
                         err.msg);
            st_column_free(&part);
        }
        cr_assert_eq(st_writer_put_chunk(w, ce, &err), ST_OK, "%s", err.msg);
    }
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    cr_assert_gt(from_runs, 0);
    cr_assert_gt(from_rows, 0, "every block was taken from runs: the fallback is not tested");
    size_t na, nb;
    char *a = fx_slurp(pa, &na), *b = fx_slurp(pb, &nb);
    cr_assert(a && b && na == nb && memcmp(a, b, na) == 0, "the file written from runs differs (%zu, %zu bytes)", na,
              nb);
    free(a);
    free(b);
    free(val);
    free(len);
    st_chunk_enc_free(ce);
    st_enc_lane_free(lane);
    for (int j = 0; j < 3; j++) st_column_free(&c[j]);
}

/* st_column_push_picked appends what a st_column_push_str per value
 * appends, onto a column that has NULLs already (its validity bitmap then
 * marks the new rows present) and across its growth: for a small
 * dictionary of short strings (copied 16 bytes a row), with one string of
 * 16 bytes and with one of 17 (copied by length), and for a dictionary
 * of 300 strings. */
static void check_picked(const char *base, const uint64_t *start, const uint64_t *len, size_t n_dict)
{
    st_column a, b;
    st_column_init(&a, ST_TYPE_STR);
    st_column_init(&b, ST_TYPE_STR);
    cr_assert_eq(st_column_push_null(&a), ST_OK);
    cr_assert_eq(st_column_push_null(&b), ST_OK);
    uint64_t pick[300];
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 300; i++) pick[i] = (i * 7 + i / 3 + (size_t)round) % n_dict;
        cr_assert_eq(st_column_push_picked(&a, base, start, len, n_dict, pick, 300), ST_OK);
        for (size_t i = 0; i < 300; i++)
            cr_assert_eq(st_column_push_str(&b, base + start[pick[i]], (size_t)len[pick[i]]), ST_OK);
    }
    cr_assert_eq(a.n_rows, b.n_rows);
    cr_assert_eq(a.n_bytes, b.n_bytes);
    cr_assert_eq(a.null_count, b.null_count);
    cr_assert(memcmp(a.bytes, b.bytes, a.n_bytes) == 0);
    for (size_t i = 0; i <= a.n_rows; i++) cr_assert_eq(a.offsets[i], b.offsets[i], "offset %zu", i);
    for (size_t i = 0; i < a.n_rows; i++) cr_assert_eq(st_column_valid(&a, i), i > 0, "row %zu", i);
    st_column_free(&a);
    st_column_free(&b);
}

Test(format, strings_pushed_by_codes_equal_strings_pushed_one_by_one)
{
    static const char base[] = "alphabetagammadelta0123456789abcdefghij";
    const uint64_t start[4] = {0, 5, 9, 14}, len[4] = {5, 4, 5, 0};
    check_picked(base, start, len, 4);
    const uint64_t start16[3] = {0, 19, 3}, len16[3] = {16, 16, 1}, len17[3] = {16, 17, 1};
    check_picked(base, start16, len16, 3);
    check_picked(base, start16, len17, 3);
    static char many[300 * 8];
    uint64_t start_m[300], len_m[300];
    for (size_t k = 0; k < 300; k++) {
        snprintf(many + 8 * k, 8, "m%05zu", k);
        start_m[k] = 8 * k;
        len_m[k] = 1 + k % 6;
    }
    check_picked(many, start_m, len_m, 300);
}

/* Where RLE and DICT compete (short runs over a few values, the case the
 * encoder counts the dictionary first for): the choice and bytes equal
 * the naive reference's, forced encodings too. */
Test(format, short_runs_over_few_values_choose_like_the_reference)
{
    static const size_t max_run[] = {1, 2, 3, 5, 9, 40};
    static const uint64_t values[] = {2, 3, 16, 200, 3000};
    static const size_t sizes[] = {100, 2000, 20000};
    for (size_t a = 0; a < sizeof max_run / sizeof *max_run; a++)
        for (size_t b = 0; b < sizeof values / sizeof *values; b++)
            for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++)
                for (int wide = 0; wide < 2; wide++) {
                    st_column c;
                    st_type t = (a + b + z) % 2 ? ST_TYPE_I64 : ST_TYPE_I32;
                    st_column_init(&c, t);
                    int64_t v = 0;
                    for (size_t i = 0; i < sizes[z];) {
                        size_t run = 1 + rnd() % max_run[a];
                        int64_t nv;
                        do nv = (int64_t)(rnd() % values[b]) * (wide ? 70001 : 1);
                        while (i && nv == v && values[b] > 1);
                        v = nv;
                        for (size_t k = 0; k < run && i < sizes[z]; k++, i++)
                            cr_assert_eq(t == ST_TYPE_I64 ? st_column_push_i64(&c, v) : st_column_push_i32(&c, (int32_t)v),
                                         ST_OK);
                    }
                    char what[96];
                    snprintf(what, sizeof what, "%s, runs 1..%zu over %llu values%s, %zu rows", st_type_name(t),
                             max_run[a], (unsigned long long)values[b], wide ? " (wide)" : "", sizes[z]);
                    expect_encoder_matches(&c, what);
                    st_column_free(&c);
                }
    cr_assert(enc_seen[0][ST_ENC_RLE] > 0 && enc_seen[0][ST_ENC_DICT] > 0, "both RLE and DICT win some cases");
}
