/*
 * test_parquet.c: strata's Parquet export. The encoders against naive
 * decoders written here (RLE/bit-packed hybrid, Thrift compact), the
 * footer read back with formats/parquet_read.c (schema, logical types, one
 * row group per chunk, statistics against a naive min/max, lineage
 * metadata, every page decompressing to its stated size), the export
 * command's flags and manifest, CSV's NULL vs "", and the end-to-end
 * check: every table of a demo warehouse, of a warehouse built from a
 * dirty source, and a file holding every type with NULLs, NaN and edge
 * values, read back by DuckDB (bench's pinned @duckdb/node-api, installed
 * through scripts/deps.sh duckdb) with the same rows, names, types and
 * values as `strata export --format jsonl`, and no larger than 1.2x
 * DuckDB's own zstd Parquet of the same rows.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "json_read_internal.h"
#include "parquet_internal.h"
#include "strata/file.h"
#include "strata/parquet.h"
#include "thrift_internal.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_pq_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(parquet, .init = setup, .fini = teardown, .timeout = 300);

/* ---- encoders against naive decoders ---- */

/* Naive RLE/bit-packed hybrid decoder: n values of width bw. */
static void rle_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n)
{
    size_t pos = 0, got = 0;
    while (got < n) {
        uint64_t h = 0;
        for (int s = 0;; s += 7) {
            cr_assert_lt(pos, len);
            h |= (uint64_t)(p[pos] & 0x7F) << s;
            if (!(p[pos++] & 0x80)) break;
        }
        if (h & 1) {
            size_t count = (size_t)(h >> 1) * 8;
            for (size_t i = 0; i < count; i++) {
                uint32_t v = 0;
                for (int b = 0; b < bw; b++) {
                    size_t bit = i * (size_t)bw + (size_t)b;
                    cr_assert_lt(pos + bit / 8, len);
                    v |= (uint32_t)((p[pos + bit / 8] >> (bit % 8)) & 1) << b;
                }
                if (got < n) out[got++] = v;
            }
            pos += count * (size_t)bw / 8;
        } else {
            uint32_t v = 0;
            for (int b = 0; b < (bw + 7) / 8; b++) v |= (uint32_t)p[pos++] << (8 * b);
            for (size_t i = 0; i < (size_t)(h >> 1); i++) {
                cr_assert_lt(got, n, "RLE run past the values");
                out[got++] = v;
            }
        }
    }
    cr_assert_eq(pos, len, "trailing bytes after %zu values", n);
}

Test(parquet, rle_hybrid_matches_naive_decoder)
{
    uint64_t x = 99;
    uint32_t *v = malloc(5000 * sizeof *v), *back = malloc(5000 * sizeof *back);
    int widths[] = {1, 3, 8, 13, 32};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        int bw = widths[wi];
        for (int shape = 0; shape < 4; shape++) {
            size_t n = shape == 3 ? 1 : 1000u + (size_t)shape * 1333u;
            for (size_t i = 0; i < n; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(x >> 33);
                if (shape == 1) r = (uint32_t)(i / 37); /* long runs */
                if (shape == 2) r = (i % 100 < 90) ? 5 : r; /* mixed */
                v[i] = bw == 32 ? r : r & ((1u << bw) - 1);
            }
            st_buf b;
            st_buf_init(&b);
            st_pq_rle_hybrid(&b, v, n, bw);
            cr_assert(st_buf_ok(&b));
            rle_decode((const uint8_t *)b.data, b.len, bw, back, n);
            for (size_t i = 0; i < n; i++) cr_assert_eq(back[i], v[i], "bw %d shape %d value %zu", bw, shape, i);
            if (shape == 1) cr_assert_lt(b.len, n / 4, "runs should be RLE-encoded (%zu bytes)", b.len);
            st_buf_free(&b);
        }
    }
    free(v);
    free(back);
}

Test(parquet, thrift_compact_round_trip_and_damage)
{
    st_buf b;
    st_buf_init(&b);
    st_tc_writer w;
    st_tc_writer_init(&w, &b);
    st_tc_i32(&w, 1, -7);
    st_tc_i64(&w, 3, INT64_MIN);
    st_tc_bin(&w, 40, "abc", 3); /* id jump > 15: long field header */
    st_tc_bool(&w, 41, true);
    st_tc_struct_begin(&w, 42);
    st_tc_i8(&w, 1, -3);
    st_tc_struct_end(&w);
    st_tc_list_begin(&w, 43, ST_TC_I32, 20);
    for (int i = 0; i < 20; i++) st_tc_elem_i32(&w, i * 1000 - 5);
    st_tc_stop(&w);
    cr_assert(st_buf_ok(&b) && !w.bad);
    st_tc_reader r;
    st_tc_reader_init(&r, b.data, b.len);
    uint8_t t;
    int16_t id;
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 1 && t == ST_TC_I32);
    cr_assert_eq(st_tc_read_int_t(&r, t), -7);
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 3);
    cr_assert_eq(st_tc_read_int_t(&r, t), INT64_MIN);
    size_t n;
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 40 && t == ST_TC_BINARY);
    const uint8_t *s = st_tc_read_bin(&r, &n);
    cr_assert(n == 3 && !memcmp(s, "abc", 3));
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 41 && t == ST_TC_TRUE);
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 42 && t == ST_TC_STRUCT);
    st_tc_enter(&r);
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 1 && t == ST_TC_I8);
    cr_assert_eq(st_tc_read_int_t(&r, t), -3);
    cr_assert(!st_tc_next_field(&r, &t, &id));
    st_tc_leave(&r);
    cr_assert(st_tc_next_field(&r, &t, &id) && id == 43 && t == ST_TC_LIST);
    uint8_t elem;
    cr_assert(st_tc_read_list(&r, &elem, &n) && n == 20 && elem == ST_TC_I32);
    for (int i = 0; i < 20; i++) cr_assert_eq(st_tc_read_int_t(&r, elem), i * 1000 - 5);
    cr_assert(!st_tc_next_field(&r, &t, &id) && !r.bad);
    cr_assert_eq(st_tc_consumed(&r, b.data), b.len);
    /* every truncation is caught, never read past */
    for (size_t cut = 0; cut < b.len; cut++) {
        st_tc_reader_init(&r, b.data, cut);
        while (st_tc_next_field(&r, &t, &id)) st_tc_skip(&r, t);
        cr_assert(r.bad, "truncation at %zu not detected", cut);
    }
    st_buf_free(&b);
}

/* ---- a layer file with every type ---- */

#define ALL_ROWS 2500

static const char *const words[] = {"alpha", "", "beta, \"quoted\"", "line\nbreak", "Ünïcödé ✓", "gamma"};

/* Writes dir/all.strata: every type, NULLs, NaN, infinities, -0.0, empty
 * strings and bytes, int64 extremes; chunks of 1024 rows. */
static void write_all_types(const char *path)
{
    st_field f[] = {
        {"b", ST_TYPE_BOOL, true, "a flag"},          {"i32", ST_TYPE_I32, true, NULL},
        {"i64", ST_TYPE_I64, false, "never NULL"},    {"f", ST_TYPE_F64, true, "with NaN and infinities"},
        {"s", ST_TYPE_STR, true, "few distinct"},     {"u", ST_TYPE_STR, true, NULL},
        {"raw", ST_TYPE_BYTES, true, NULL},
    };
    const size_t nf = sizeof f / sizeof *f;
    const char *inputs[] = {"silver.a", "silver.b"};
    st_kv kv[] = {{"rows_in", "42"}};
    st_file_meta m = {"gold", "all_types", inputs, 2, "k=3", 0x1234abcd5678ef00ull, kv, 1};
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 1024};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, f, nf, &m, &wo, &err), ST_OK, "%s", err.msg);
    st_column c[7];
    for (size_t j = 0; j < nf; j++) st_column_init(&c[j], f[j].type);
    const double specials[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1e300, -2.5e-310};
    for (int i = 0; i < ALL_ROWS; i++) {
        cr_assert_eq(i % 7 == 3 ? st_column_push_null(&c[0]) : st_column_push_bool(&c[0], i % 3 == 0), ST_OK);
        cr_assert_eq(i % 5 == 0 ? st_column_push_null(&c[1]) : st_column_push_i32(&c[1], (i % 11 - 5) * 100000), ST_OK);
        int64_t big = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : (int64_t)i * 1000003 - 7;
        cr_assert_eq(st_column_push_i64(&c[2], big), ST_OK);
        double d = i % 13 < 7 ? specials[i % 13] : i * 0.1 - 17;
        cr_assert_eq(i % 17 == 0 ? st_column_push_null(&c[3]) : st_column_push_f64(&c[3], d), ST_OK);
        const char *s = words[i % 6];
        cr_assert_eq(i % 9 == 4 ? st_column_push_null(&c[4]) : st_column_push_str(&c[4], s, strlen(s)), ST_OK);
        char u[32];
        int un = snprintf(u, sizeof u, "id-%d", i * 7919 % 10007);
        cr_assert_eq(i % 4 == 1 ? st_column_push_null(&c[5]) : st_column_push_str(&c[5], u, (size_t)un), ST_OK);
        char raw[3] = {(char)(i & 0xff), 0, (char)0xff};
        cr_assert_eq(i % 6 == 2 ? st_column_push_null(&c[6]) : st_column_push_str(&c[6], raw, (size_t)(i % 4)), ST_OK);
    }
    cr_assert_eq(st_writer_write(w, c, 0, ALL_ROWS, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (size_t j = 0; j < nf; j++) st_column_free(&c[j]);
}

static bool bytes_eq(st_pq_bytes b, const char *s) { return b.p && b.n == strlen(s) && !memcmp(b.p, s, b.n); }

static const char *kv_get(const st_pq_meta *m, const char *key)
{
    static char v[512];
    for (size_t i = 0; i < m->n_kv; i++)
        if (bytes_eq(m->kv[i].key, key)) {
            snprintf(v, sizeof v, "%.*s", (int)m->kv[i].value.n, (const char *)m->kv[i].value.p);
            return v;
        }
    return NULL;
}

/* Naive statistics of column j of chunk c of the layer file, compared with
 * the Parquet column chunk's. */
static void check_stats(st_reader *r, size_t c, size_t j, const st_pq_chunk_meta *cm)
{
    st_column col;
    st_error err;
    st_column_init(&col, st_reader_field(r, j)->type);
    cr_assert_eq(st_reader_read_block(r, c, j, &col, &err), ST_OK);
    cr_assert(cm->stats.has_null_count);
    cr_assert_eq(cm->stats.null_count, (int64_t)col.null_count, "chunk %zu col %zu null_count", c, j);
    cr_assert_eq(cm->num_values, (int64_t)col.n_rows);
    double lo = INFINITY, hi = -INFINITY;
    bool any = false;
    for (size_t i = 0; i < col.n_rows; i++) {
        if (!st_column_valid(&col, i)) continue;
        double v = col.type == ST_TYPE_I32 ? st_column_i32(&col)[i]
                 : col.type == ST_TYPE_I64 ? (double)st_column_i64(&col)[i]
                 : col.type == ST_TYPE_F64 ? st_column_f64(&col)[i]
                 : col.type == ST_TYPE_BOOL ? st_column_bool(&col)[i] : 0;
        if (isnan(v)) continue;
        any = true;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (col.type != ST_TYPE_STR && col.type != ST_TYPE_BYTES) {
        cr_assert_eq(cm->stats.has_min, any, "chunk %zu col %zu has_min", c, j);
        if (any) {
            double mn = 0, mx = 0;
            if (col.type == ST_TYPE_I32) {
                int32_t a, b;
                memcpy(&a, cm->stats.min.p, 4), memcpy(&b, cm->stats.max.p, 4), mn = a, mx = b;
            } else if (col.type == ST_TYPE_I64) {
                int64_t a, b;
                memcpy(&a, cm->stats.min.p, 8), memcpy(&b, cm->stats.max.p, 8), mn = (double)a, mx = (double)b;
            } else if (col.type == ST_TYPE_F64) {
                memcpy(&mn, cm->stats.min.p, 8), memcpy(&mx, cm->stats.max.p, 8);
            } else {
                mn = cm->stats.min.p[0], mx = cm->stats.max.p[0];
            }
            cr_assert(mn == lo && mx == hi, "chunk %zu col %zu: min/max %g/%g, want %g/%g", c, j, mn, mx, lo, hi);
        }
    }
    st_column_free(&col);
}

Test(parquet, footer_schema_row_groups_statistics_and_pages)
{
    char src[400], dst[400];
    snprintf(src, sizeof src, "%s/all.strata", dir);
    snprintf(dst, sizeof dst, "%s/all.parquet", dir);
    write_all_types(src);
    st_error err;
    cr_assert_eq(st_pq_export_file(src, dst, NULL, &err), ST_OK, "%s", err.msg);
    size_t len;
    uint8_t *buf = (uint8_t *)fx_read_file(dst, &len);
    st_pq_bytes footer;
    cr_assert_eq(st_pq_find_footer(buf, len, &footer, &err), ST_OK, "%s", err.msg);
    st_pq_meta m;
    cr_assert_eq(st_pq_meta_parse(footer.p, footer.n, &m, &err), ST_OK, "%s", err.msg);
    st_reader *r;
    cr_assert_eq(st_reader_open(&r, src, &err), ST_OK);
    cr_assert_eq(m.num_rows, ALL_ROWS);
    cr_assert_eq(m.n_row_groups, st_reader_n_chunks(r), "one row group per chunk");
    cr_assert_eq(m.n_row_groups, 3);
    cr_assert_eq(m.n_columns, 7);
    cr_assert_eq(m.n_column_orders, 7);
    /* types: physical, logical, repetition */
    const int phys[] = {ST_PQ_BOOLEAN, ST_PQ_INT32, ST_PQ_INT64, ST_PQ_DOUBLE, ST_PQ_BYTE_ARRAY, ST_PQ_BYTE_ARRAY, ST_PQ_BYTE_ARRAY};
    const int logical[] = {0, 10, 10, 0, 1, 1, 0};
    for (size_t j = 0; j < 7; j++) {
        const st_pq_schema_elem *e = &m.schema[j + 1];
        cr_assert(bytes_eq(e->name, st_reader_field(r, j)->name));
        cr_assert_eq(e->type, phys[j], "column %zu type", j);
        cr_assert_eq(e->logical, logical[j], "column %zu logical type", j);
        cr_assert_eq(e->repetition, st_reader_field(r, j)->nullable ? 1 : 0);
    }
    cr_assert(m.schema[2].int_bits == 32 && m.schema[2].int_signed && m.schema[3].int_bits == 64);
    /* lineage metadata */
    cr_assert_str_eq(kv_get(&m, "strata.fingerprint"), "1234abcd5678ef00");
    cr_assert_str_eq(kv_get(&m, "strata.inputs"), "[\"silver.a\", \"silver.b\"]");
    cr_assert_str_eq(kv_get(&m, "strata.layer"), "gold");
    cr_assert_str_eq(kv_get(&m, "strata.params"), "k=3");
    cr_assert_str_eq(kv_get(&m, "strata.meta.rows_in"), "42");
    cr_assert_str_eq(kv_get(&m, "strata.column.f.description"), "with NaN and infinities");
    int dict_pages = 0;
    for (size_t g = 0; g < m.n_row_groups; g++) {
        cr_assert_eq(m.rg_rows[g], st_reader_chunk_rows(r, g));
        for (size_t j = 0; j < 7; j++) {
            const st_pq_chunk_meta *cm = &m.chunks[g * 7 + j];
            cr_assert_eq(cm->codec, ST_PQ_CODEC_ZSTD);
            int64_t nv;
            int nd;
            cr_assert_eq(st_pq_check_chunk(buf, len, &m, g * 7 + j, &nv, &nd, &err), ST_OK, "%s", err.msg);
            cr_assert_eq(nv, m.rg_rows[g]);
            dict_pages += nd;
            if (j == 2 || j == 0) cr_assert_eq(nd, 0, "distinct int64s and booleans stay PLAIN");
            if (nd) cr_assert(cm->encodings & (1u << ST_PQ_ENC_RLE_DICTIONARY));
            check_stats(r, g, j, cm);
        }
    }
    cr_assert_geq(dict_pages, 1, "a dictionary where it pays");
    st_reader_close(r);
    st_pq_meta_free(&m);
    free(buf);
}

/* ---- the export command ---- */

Test(parquet, export_flags_errors_and_manifest)
{
    char src[400];
    snprintf(src, sizeof src, "%s/all.strata", dir);
    write_all_types(src);
    cr_assert_eq(fx_sh("%s export %s --format=parquet --out=%s/a.parquet", fx_bin(), src, dir), 0);
    cr_assert_eq(fx_sh("%s export %s --format parquet --out %s/b.parquet", fx_bin(), src, dir), 0);
    cr_assert_eq(fx_sh("cmp -s %s/a.parquet %s/b.parquet", dir, dir), 0, "same input, same bytes");
    cr_assert_eq(fx_sh("%s export %s --format xml 2>%s/err.txt", fx_bin(), src, dir), 2);
    size_t n;
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/err.txt", dir);
    char *e = fx_read_file(errpath, &n);
    cr_assert(strstr(e, "strata export: --format expects csv|jsonl|parquet, got 'xml'") == e, "got: %s", e);
    cr_assert(n > 0 && strchr(e, '\n') == e + n - 1, "one line: %s", e);
    free(e);
    cr_assert_eq(fx_sh("%s export %s --format parquet 2>/dev/null", fx_bin(), src), 2, "parquet needs --out");
    cr_assert_eq(fx_sh("%s export %s --bogus 2>/dev/null", fx_bin(), src), 2);
    cr_assert_eq(fx_sh("%s export %s --out 2>/dev/null", fx_bin(), src), 2, "a flag without its value");
    /* a warehouse of one layer: first export writes, the second skips, a changed fingerprint rewrites */
    /* in its place: the fixture's footer says gold.all_types (a file under another name is refused) */
    cr_assert_eq(fx_sh("mkdir -p %s/wh/gold && cp %s %s/wh/gold/all_types.strata", dir, src, dir), 0);
    cr_assert_eq(fx_sh("%s export --warehouse %s/wh --format parquet --out %s/out > %s/o1.txt", fx_bin(), dir, dir, dir), 0);
    cr_assert_eq(fx_sh("grep -q 'exported 1 table to' %s/o1.txt", dir), 0);
    cr_assert_eq(fx_sh("test -f %s/out/gold/all_types.parquet && test -f %s/out/.strata-export", dir, dir), 0);
    cr_assert_eq(fx_sh("%s export --warehouse=%s/wh --format=parquet --out=%s/out > %s/o2.txt", fx_bin(), dir, dir, dir), 0);
    cr_assert_eq(fx_sh("grep -q 'exported 0 tables to .*, 1 unchanged' %s/o2.txt", dir), 0);
    cr_assert_eq(fx_sh("%s export --warehouse %s/wh --format csv --out %s/out 2>/dev/null", fx_bin(), dir, dir), 2);
    cr_assert_eq(fx_sh("sed -i 's/ [0-9a-f]\\{16\\} / 0000000000000000 /' %s/out/.strata-export", dir), 0);
    cr_assert_eq(fx_sh("%s export --warehouse %s/wh --format parquet --out %s/out > %s/o3.txt", fx_bin(), dir, dir, dir), 0);
    cr_assert_eq(fx_sh("grep -q 'exported 1 table to' %s/o3.txt", dir), 0, "a changed fingerprint is exported again");
}

Test(parquet, csv_keeps_null_and_empty_string_apart)
{
    char src[400], csv[400];
    snprintf(src, sizeof src, "%s/all.strata", dir);
    snprintf(csv, sizeof csv, "%s/all.csv", dir);
    write_all_types(src);
    cr_assert_eq(fx_sh("%s export %s --columns s,raw --out %s", fx_bin(), src, csv), 0);
    size_t n;
    char *text = fx_read_file(csv, &n);
    /* rows 0..: s = words[i % 6] or NULL when i % 9 == 4; raw NULL when i % 6 == 2, else i % 4 bytes */
    char *line = strstr(text, "\r\n") + 2;
    for (int i = 0; i < 12; i++) {
        char *end = strstr(line, "\r\n");
        if (i % 6 == 3) end = strstr(strstr(line, "\n") + 1, "\r\n"); /* the field with a line break */
        cr_assert_not_null(end);
        char want[128] = "";
        const char *s = words[i % 6];
        if (i % 9 == 4) strcat(want, "");
        else if (!*s) strcat(want, "\"\"");
        else if (strpbrk(s, ",\"\n")) strcat(want, i % 6 == 2 ? "\"beta, \"\"quoted\"\"\"" : "\"line\nbreak\"");
        else strcat(want, s);
        strcat(want, ",");
        if (i % 6 == 2) strcat(want, "");
        else if (i % 4 == 0) strcat(want, "\"\"");
        else {
            char hex[16] = "";
            char raw[3] = {(char)(i & 0xff), 0, (char)0xff};
            for (int k = 0; k < i % 4; k++) snprintf(hex + 2 * k, 3, "%02x", (unsigned char)raw[k]);
            strcat(want, hex);
        }
        cr_assert(strlen(want) == (size_t)(end - line) && !memcmp(line, want, strlen(want)), "row %d: got '%.*s' want '%s'",
                  i, (int)(end - line), line, want);
        line = end + 2;
    }
    free(text);
}

/* ---- memory flat in rows ---- */

/* Writes n_chunks full chunks of (int64 id, string s with NULLs). */
static void write_rows(const char *path, int n_chunks)
{
    st_field f[] = {{"id", ST_TYPE_I64, false, NULL}, {"s", ST_TYPE_STR, true, NULL}};
    st_file_meta m = {"silver", "rows", NULL, 0, "", 1, NULL, 0};
    st_write_opts wo = {.no_fsync = true};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, f, 2, &m, &wo, &err), ST_OK, "%s", err.msg);
    st_column c[2];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_STR);
    uint64_t x = 7;
    for (int k = 0; k < n_chunks; k++) {
        st_column_reset(&c[0]);
        st_column_reset(&c[1]);
        for (uint32_t i = 0; i < ST_CHUNK_ROWS; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            cr_assert_eq(st_column_push_i64(&c[0], (int64_t)(x >> 20)), ST_OK);
            char t[24];
            int n = snprintf(t, sizeof t, "s%" PRIu64, x >> 40);
            cr_assert_eq(i % 5 == 0 ? st_column_push_null(&c[1]) : st_column_push_str(&c[1], t, (size_t)n), ST_OK);
        }
        cr_assert_eq(st_writer_write(w, c, 0, ST_CHUNK_ROWS, &err), ST_OK, "%s", err.msg);
    }
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_column_free(&c[0]);
    st_column_free(&c[1]);
}

/* Peak resident set (KiB) of `strata export src --format parquet --out dst`. */
static long export_peak_kib(const char *src, const char *dst)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(fx_bin(), fx_bin(), "export", src, "--format", "parquet", "--out", dst, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "export of %s failed", src);
    return ru.ru_maxrss;
}

Test(parquet, export_memory_is_flat_in_rows)
{
    char small[400], big[400], out[400];
    snprintf(small, sizeof small, "%s/small.strata", dir);
    snprintf(big, sizeof big, "%s/big.strata", dir);
    snprintf(out, sizeof out, "%s/out.parquet", dir);
    /* The reader keeps up to 4 MiB of the mapped file resident behind the
     * chunk it reads (formats/reader.c, ST_READER_KEEP_BYTES), so the base
     * file must already be past that window (8 chunks are ~4.7 MB); then 4x
     * the rows must not raise the peak beyond the Parquet footer's growth.
     * Decoded, each chunk's columns alone are ~5 MB: 24 more chunks held
     * would add over 100 MB. */
    write_rows(small, 8);
    write_rows(big, 32);
    long a = export_peak_kib(small, out), b = export_peak_kib(big, out);
    if (getenv("STRATA_SANITIZED")) cr_skip_test("sanitizer builds keep freed memory in quarantine (make test checks the peak)");
    cr_assert_lt(b, a + a / 8 + 1024, "peak RSS %ld KiB for 32 chunks vs %ld KiB for 8: not flat", b, a);
}

/* ---- DuckDB reads what we wrote ---- */

/* A dirty source: customers with duplicates, NULLs, empty strings and
 * Unicode; transactions from `strata gen` plus rows of every reject reason
 * and of mixed storage classes. */
static void make_dirty_sources(const char *cust, const char *tx)
{
    cr_assert_eq(fx_sh("%s gen --rows 1500 --customers 12 --months 6 --out %s >/dev/null", fx_bin(), tx), 0);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(tx, &db), SQLITE_OK);
    fx_exec_sql(db, "INSERT INTO sales_qty VALUES (' 2 ', 2021.0, '  7', 1234, ' 5 ');"
                 "INSERT INTO sales_qty VALUES (NULL, 2021, 1, 'MAT0001', 1);"
                 "INSERT INTO sales_qty VALUES (-4, 2021, 1, 'MAT0001', 1);"
                 "INSERT INTO sales_qty VALUES (1, 'abc', 1, 'MAT0001', 1);"
                 "INSERT INTO sales_qty VALUES (1, 2021, 13, '', 1);"
                 "INSERT INTO sales_qty VALUES (1, 2021, 2, x'ff00', 1);"
                 "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', 1.5);"
                 "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', 9223372036854775807);"
                 "INSERT INTO foc_qty VALUES (1, 2021, 3, CAST(x'c328' AS TEXT), 1);"
                 "INSERT INTO foc_qty VALUES (3, 2021, 3, 'MAT0002', 'many');");
    sqlite3_close(db);
    cr_assert_eq(sqlite3_open(cust, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE customers (CustomerId INTEGER NOT NULL, FirstName TEXT, LastName TEXT, Company TEXT,"
                 " Address TEXT, City TEXT, State TEXT, Country TEXT, PostalCode TEXT, Phone TEXT, Fax TEXT,"
                 " Email TEXT, SupportRepId INTEGER);");
    for (int i = 1; i <= 12; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO customers VALUES (%d, ' First%d ', 'Låst%d', %s, 'Addr', '', NULL, '%s', NULL, NULL,"
                 " NULL, ' User%d@Example.COM ', %s);",
                 i, i, i, i % 3 ? "NULL" : "''", i % 2 ? "USA" : "Brazil", i, i % 4 ? "3" : "'x'");
        fx_exec_sql(db, sql);
    }
    fx_exec_sql(db, "INSERT INTO customers VALUES (3, 'Dup', 'Dup', NULL, NULL, NULL, NULL, 'UK', NULL, NULL, NULL, 'bad', NULL);");
    sqlite3_close(db);
}

static const char *jsonl_type(st_type t) { return st_type_name(t); }

/* Adds one table to the spec: exports its JSONL, lists its columns. */
static void spec_add(st_buf *spec, const char *strata_path, const char *parquet, const char *tag)
{
    char jsonl[600], scratch[600];
    snprintf(jsonl, sizeof jsonl, "%s/%s.jsonl", dir, tag);
    snprintf(scratch, sizeof scratch, "%s/%s.duckdb.parquet", dir, tag);
    cr_assert_eq(fx_sh("%s export %s --format jsonl --out %s", fx_bin(), strata_path, jsonl), 0, "jsonl of %s", strata_path);
    st_reader *r;
    st_error err;
    cr_assert_eq(st_reader_open(&r, strata_path, &err), ST_OK, "%s", err.msg);
    st_buf_puts(spec, spec->len > 1 ? ",\n{\"parquet\": " : "{\"parquet\": ");
    st_buf_json_str(spec, parquet, strlen(parquet));
    st_buf_puts(spec, ", \"jsonl\": ");
    st_buf_json_str(spec, jsonl, strlen(jsonl));
    st_buf_puts(spec, ", \"scratch\": ");
    st_buf_json_str(spec, scratch, strlen(scratch));
    st_buf_printf(spec, ", \"rows\": %" PRIu64 ", \"fingerprint\": \"%016" PRIx64 "\", \"columns\": [", st_reader_n_rows(r),
                  st_reader_meta(r)->fingerprint);
    for (size_t j = 0; j < st_reader_n_fields(r); j++) {
        const st_field *f = st_reader_field(r, j);
        st_buf_puts(spec, j ? ", {\"name\": " : "{\"name\": ");
        st_buf_json_str(spec, f->name, strlen(f->name));
        st_buf_printf(spec, ", \"type\": \"%s\"}", jsonl_type(f->type));
    }
    st_buf_puts(spec, "]}");
    st_reader_close(r);
}

/* Every table of warehouse `wh` (exported to `out`) into the spec. */
static int spec_add_warehouse(st_buf *spec, const char *wh, const char *out, const char *tag)
{
    static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};
    int n = 0;
    for (size_t l = 0; l < 4; l++) {
        char list[600];
        snprintf(list, sizeof list, "%s/%s.%s.list", dir, tag, layers[l]);
        cr_assert_eq(fx_sh("ls %s/%s | sed -n 's/\\.strata$//p' > %s", wh, layers[l], list), 0);
        FILE *f = fopen(list, "r");
        char name[256];
        while (f && fscanf(f, "%255s", name) == 1) {
            char src[900], pq[900], t[400];
            snprintf(src, sizeof src, "%s/%s/%s.strata", wh, layers[l], name);
            snprintf(pq, sizeof pq, "%s/%s/%s.parquet", out, layers[l], name);
            snprintf(t, sizeof t, "%s_%s_%s", tag, layers[l], name);
            spec_add(spec, src, pq, t);
            n++;
        }
        if (f) fclose(f);
    }
    return n;
}

static const char *duckdb_type(const char *strata_type)
{
    static const char *const map[][2] = {{"bool", "BOOLEAN"}, {"int32", "INTEGER"}, {"int64", "BIGINT"},
                                         {"float64", "DOUBLE"}, {"string", "VARCHAR"}, {"bytes", "BLOB"}};
    for (size_t i = 0; i < 6; i++)
        if (!strcmp(map[i][0], strata_type)) return map[i][1];
    return "?";
}

/* Installs DuckDB for Node (scripts/deps.sh duckdb). As root (CI) a failed
 * install fails the test; otherwise the test is skipped, saying why. */
static void need_duckdb(void)
{
    if (fx_sh("bash scripts/deps.sh duckdb > %s/deps.log 2>&1", dir) == 0 &&
        access("bench/node_modules/@duckdb/node-api/package.json", R_OK) == 0)
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat %s/deps.log >&2", dir);
    (void)!system(cmd);
    if (getuid() == 0 || getenv("STRATA_REQUIRE_DUCKDB"))
        cr_assert_fail("Node/DuckDB could not be installed (scripts/deps.sh duckdb failed, log above): the Parquet "
                       "read-back check cannot run");
    cr_skip_test("SKIPPED: Node/DuckDB could not be installed (needs nodejs, npm and `npm ci --prefix bench`; run "
                 "scripts/deps.sh duckdb as root): Parquet files were NOT checked with DuckDB");
}

Test(parquet, duckdb_reads_every_table_like_jsonl)
{
    need_duckdb();
    char cust[400], tx[400], demo_tx[400];
    snprintf(cust, sizeof cust, "%s/cust.db", dir);
    snprintf(tx, sizeof tx, "%s/dirty.db", dir);
    snprintf(demo_tx, sizeof demo_tx, "%s/demo.db", dir);
    cr_assert_eq(fx_sh("%s gen --rows 3000 --out %s >/dev/null", fx_bin(), demo_tx), 0);
    cr_assert_eq(fx_sh("%s run --customers data/chinook.db --transactions %s --warehouse %s/demo --quiet --no-report", fx_bin(),
                    demo_tx, dir), 0);
    make_dirty_sources(cust, tx);
    cr_assert_eq(fx_sh("%s run --customers %s --transactions %s --warehouse %s/dirty --quiet --no-report --k 2", fx_bin(), cust,
                    tx, dir), 0, "strata run on the dirty source");
    for (int w = 0; w < 2; w++)
        cr_assert_eq(fx_sh("%s export --warehouse %s/%s --format parquet --out %s/%s_pq >/dev/null", fx_bin(), dir,
                        w ? "dirty" : "demo", dir, w ? "dirty" : "demo"), 0);
    char all[400], allpq[400], wh[400], out[400];
    snprintf(all, sizeof all, "%s/all.strata", dir);
    snprintf(allpq, sizeof allpq, "%s/all.parquet", dir);
    write_all_types(all);
    cr_assert_eq(fx_sh("%s export %s --format parquet --out %s", fx_bin(), all, allpq), 0);
    st_buf spec;
    st_buf_init(&spec);
    st_buf_puts(&spec, "[");
    spec_add(&spec, all, allpq, "all");
    char allcsv[400];
    snprintf(allcsv, sizeof allcsv, "%s/all.csv", dir);
    cr_assert_eq(fx_sh("%s export %s --out %s", fx_bin(), all, allcsv), 0);
    spec.len--; /* reopen the first entry: add its CSV */
    st_buf_puts(&spec, ", \"csv\": ");
    st_buf_json_str(&spec, allcsv, strlen(allcsv));
    st_buf_puts(&spec, "}");
    snprintf(wh, sizeof wh, "%s/demo", dir);
    snprintf(out, sizeof out, "%s/demo_pq", dir);
    int n_tables = 1 + spec_add_warehouse(&spec, wh, out, "demo");
    snprintf(wh, sizeof wh, "%s/dirty", dir);
    snprintf(out, sizeof out, "%s/dirty_pq", dir);
    n_tables += spec_add_warehouse(&spec, wh, out, "dirty");
    st_buf_puts(&spec, "]\n");
    cr_assert_geq(n_tables, 25, "every table of both warehouses (%d)", n_tables);
    char spec_path[400], res_path[400];
    snprintf(spec_path, sizeof spec_path, "%s/spec.json", dir);
    snprintf(res_path, sizeof res_path, "%s/duckdb.jsonl", dir);
    FILE *f = fopen(spec_path, "w");
    fputs(spec.data, f);
    fclose(f);
    cr_assert_eq(fx_sh("node tests/parquet_duckdb_check.cjs %s > %s", spec_path, res_path), 0, "the DuckDB script failed");
    st_json want, got;
    st_error err;
    cr_assert_eq(st_json_parse(spec.data, spec.len, "spec", &want, &err), ST_OK, "%s", err.msg);
    size_t n;
    char *res = fx_read_file(res_path, &n);
    char *line = res;
    for (size_t t = 0; t < st_json_count(&want); t++) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "DuckDB reported %zu of %zu tables", t, st_json_count(&want));
        cr_assert_eq(st_json_parse(line, (size_t)(nl - line), "duckdb", &got, &err), ST_OK, "%s", err.msg);
        const st_json *w = st_json_at(&want, t);
        const char *name = st_json_string(st_json_get(w, "parquet"), "?");
        cr_assert_null(st_json_get(&got, "error"), "%s: DuckDB: %s", name, st_json_string(st_json_get(&got, "error"), ""));
        cr_assert_eq(st_json_number(st_json_get(&got, "rows"), -1), st_json_number(st_json_get(w, "rows"), -2), "%s rows", name);
        const st_json *cols = st_json_get(w, "columns"), *names = st_json_get(&got, "names"), *types = st_json_get(&got, "types");
        cr_assert_eq(st_json_count(names), st_json_count(cols), "%s: column count", name);
        for (size_t j = 0; j < st_json_count(cols); j++) {
            const st_json *c = st_json_at(cols, j);
            cr_assert_str_eq(st_json_string(st_json_at(names, j), ""), st_json_string(st_json_get(c, "name"), "?"), "%s", name);
            cr_assert_str_eq(st_json_string(st_json_at(types, j), ""), duckdb_type(st_json_string(st_json_get(c, "type"), "")),
                             "%s column %s", name, st_json_string(st_json_get(c, "name"), ""));
        }
        cr_assert_eq(st_json_number(st_json_get(&got, "missing"), -1), 0, "%s: JSONL rows missing from the Parquet file", name);
        cr_assert_eq(st_json_number(st_json_get(&got, "extra"), -1), 0, "%s: Parquet rows not in the JSONL", name);
        cr_assert_str_eq(st_json_string(st_json_get(&got, "fingerprint"), ""), st_json_string(st_json_get(w, "fingerprint"), "?"));
        if (t == 0) { /* the CSV of the every-type file, read by DuckDB with allow_quoted_nulls = false */
            const st_json *csv = st_json_get(&got, "csv");
            cr_assert_eq(st_json_number(st_json_get(csv, "missing"), -1), 0, "CSV rows missing (NULL vs \"\")");
            cr_assert_eq(st_json_number(st_json_get(csv, "extra"), -1), 0, "CSV rows not in the JSONL");
            cr_assert_gt(st_json_number(st_json_get(csv, "empty_strings"), 0), 100, "empty strings stay empty strings");
        }
        double own = st_json_number(st_json_get(&got, "own_bytes"), 0), duck = st_json_number(st_json_get(&got, "duckdb_bytes"), 1);
        cr_assert_leq(own, 1.2 * duck, "%s: %.0f bytes, DuckDB's zstd Parquet of the same rows %.0f", name, own, duck);
        st_json_free(&got);
        line = nl + 1;
    }
    st_json_free(&want);
    free(res);
    st_buf_free(&spec);
}
