/*
 * test_source.c: the SQLite source reader (strata/source.h).
 *
 * Fixtures are SQLite files built here with the C API in a mkdtemp
 * directory. The scan is checked against a naive reference that reads the
 * same table with `SELECT rowid, * ... ORDER BY rowid` and applies the
 * bronze rules of docs/TABLES.md value by value.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/source.h"

static char tmpdir[256];

static void setup(void) { fx_tmpdir(tmpdir, sizeof tmpdir, "strata_source_"); }
static void teardown(void) { fx_rmtree(tmpdir); }

TestSuite(source, .init = setup, .fini = teardown);

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmpdir, name); }

static st_column *alloc_cols(const st_source_table *t)
{
    st_column *c = calloc(t->n_fields, sizeof *c);
    cr_assert_not_null(c);
    for (size_t f = 0; f < t->n_fields; f++) st_column_init(&c[f], t->fields[f].type);
    return c;
}

static void free_cols(st_column *c, size_t n)
{
    for (size_t f = 0; f < n; f++) st_column_free(&c[f]);
    free(c);
}

/* ---- opening ---- */

Test(source, missing_file_is_notfound_and_not_created)
{
    char p[400];
    path_in(p, sizeof p, "nope.db");
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, p, &err), ST_ERR_NOTFOUND);
    cr_assert_null(src);
    cr_expect_not_null(strstr(err.msg, "cannot open source"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "nope.db': no such file"), "%s", err.msg);
    cr_expect_neq(access(p, F_OK), 0, "open created the file");
}

Test(source, not_a_database)
{
    char p[400];
    path_in(p, sizeof p, "x.db");
    static const char text[] = "customer_id,quantity\n1,2\nthis is a CSV file, not SQLite at all ........\n";
    fx_put_file(p, text, sizeof text - 1);
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, p, &err), ST_ERR_SQLITE);
    cr_expect_not_null(strstr(err.msg, "x.db' is not a SQLite database"), "%s", err.msg);

    /* empty file: SQLite would call it an empty database; we do not */
    fx_put_file(p, "", 0);
    cr_assert_eq(st_source_open(&src, p, &err), ST_ERR_SQLITE);
    cr_expect_not_null(strstr(err.msg, "is not a SQLite database"), "%s", err.msg);

    /* right magic, garbage header */
    char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    memcpy(junk, "SQLite format 3", 16);
    fx_put_file(p, junk, sizeof junk);
    cr_assert_eq(st_source_open(&src, p, &err), ST_ERR_SQLITE);
    cr_expect_null(src);
}

Test(source, directory_is_an_error)
{
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, tmpdir, &err), ST_ERR_SQLITE, "a directory is a bad source (exit 3)");
    cr_assert_null(src);
    cr_assert_not_null(strstr(err.msg, "directory"), "%s", err.msg);
}

/* ---- tables and columns ---- */

static st_source *open_ok(const char *p)
{
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, p, &err), ST_OK, "%s", err.msg);
    return src;
}

Test(source, table_names_case_insensitive)
{
    static const struct {
        const char *stored;
    } cases[] = {{"Customer"}, {"customers"}, {"CUSTOMERS"}, {"CUSTOMER"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[400], sql[200], name[32];
        snprintf(name, sizeof name, "c%zu.db", i);
        path_in(p, sizeof p, name);
        snprintf(sql, sizeof sql, "CREATE TABLE \"%s\"(CustomerId INTEGER); CREATE TABLE other(x);", cases[i].stored);
        sqlite3_close(fx_make_db(p, sql));
        st_source *src = open_ok(p);
        const char *cands[] = {"Customer", "customers"};
        const char *res = NULL;
        st_error err = {0};
        cr_assert_eq(st_source_find_table(src, cands, 2, &res, &err), ST_OK, "%s", err.msg);
        cr_expect_str_eq(res, cases[i].stored);
        st_source_close(src);
    }
}

Test(source, missing_table_names_candidates_and_file)
{
    char p[400];
    path_in(p, sizeof p, "m.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE other(x);"));
    st_source *src = open_ok(p);
    const char *cands[] = {"Customer", "customers"};
    const char *res = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_find_table(src, cands, 2, &res, &err), ST_ERR_SCHEMA);
    cr_expect_null(res);
    cr_expect_not_null(strstr(err.msg, "'Customer'"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "'customers'"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "m.db"), "%s", err.msg);
    st_source_table *t = NULL;
    cr_assert_eq(st_source_describe(src, "sales_qty", &t, &err), ST_ERR_SCHEMA);
    cr_expect_not_null(strstr(err.msg, "sales_qty"), "%s", err.msg);
    st_source_close(src);
}

Test(source, columns_any_order_extra_and_case)
{
    char p[400];
    path_in(p, sizeof p, "s.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE Sales_Qty(Note TEXT, Quantity INTEGER, MATERIAL_CODE VARCHAR(20),"
                             " price DOUBLE PRECISION, Year INT, month, customer_ID BIGINT, w FLOATING POINT,"
                             " amount NUMERIC(10,2), r REAL);"));
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "sales_qty", &t, &err), ST_OK, "%s", err.msg);
    cr_expect_str_eq(t->name, "Sales_Qty");
    cr_assert_eq(t->n_cols, 10);
    cr_expect(t->has_rowid);
    const char *need[] = {"customer_id", "year", "month", "material_code", "quantity"};
    int idx[5];
    cr_assert_eq(st_source_require_cols(t, need, 5, idx, &err), ST_OK, "%s", err.msg);
    cr_expect_eq(idx[0], 6);
    cr_expect_eq(idx[1], 4);
    cr_expect_eq(idx[2], 5);
    cr_expect_eq(idx[3], 2);
    cr_expect_eq(idx[4], 1);
    /* affinity -> bronze types */
    cr_expect_eq(t->cols[0].type, ST_TYPE_STR);
    cr_expect_eq(t->cols[1].type, ST_TYPE_I64);
    cr_expect_eq(t->cols[2].type, ST_TYPE_STR);
    cr_expect_eq(t->cols[3].type, ST_TYPE_F64);
    cr_expect_eq(t->cols[4].type, ST_TYPE_I64);
    cr_expect_eq(t->cols[5].type, ST_TYPE_STR); /* no type: BLOB affinity */
    cr_expect_eq(t->cols[6].type, ST_TYPE_I64);
    cr_expect_eq(t->cols[7].type, ST_TYPE_I64); /* "FLOATING POINT" contains INT */
    cr_expect_eq(t->cols[8].type, ST_TYPE_STR); /* NUMERIC */
    cr_expect_eq(t->cols[9].type, ST_TYPE_F64);
    cr_expect_str_eq(t->cols[3].decl_type, "DOUBLE PRECISION");
    cr_expect_str_eq(t->cols[5].decl_type, "");
    /* bronze schema */
    cr_assert_eq(t->n_fields, 31);
    cr_expect_str_eq(t->fields[0].name, "_rowid");
    cr_expect_eq(t->fields[0].type, ST_TYPE_I64);
    cr_expect_not(t->fields[0].nullable);
    cr_expect_str_eq(t->fields[st_source_field_value(2)].name, "material_code");
    cr_expect_str_eq(t->fields[st_source_field_class(2)].name, "material_code__class");
    cr_expect_str_eq(t->fields[st_source_field_raw(2)].name, "material_code__raw");
    cr_expect_eq(t->fields[st_source_field_class(2)].type, ST_TYPE_I32);
    cr_expect_not(t->fields[st_source_field_class(2)].nullable);
    cr_expect_eq(t->fields[st_source_field_raw(2)].type, ST_TYPE_BYTES);
    cr_expect(t->fields[st_source_field_raw(2)].nullable);
    cr_expect(t->fields[st_source_field_value(2)].nullable);
    cr_expect_str_eq(t->fields[st_source_field_value(6)].name, "customer_id");

    const char *missing[] = {"customer_id", "quantity_foc"};
    cr_assert_eq(st_source_require_cols(t, missing, 2, idx, &err), ST_ERR_SCHEMA);
    char want[600];
    snprintf(want, sizeof want, "table 'Sales_Qty' in '%s' has no column 'quantity_foc'", p);
    cr_expect_str_eq(err.msg, want);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, bronze_name_collision_is_schema_error)
{
    char p[400];
    path_in(p, sizeof p, "col.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE t(a INTEGER, A__class TEXT);"));
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_ERR_SCHEMA);
    cr_expect_not_null(strstr(err.msg, "a__class"), "%s", err.msg);
    st_source_close(src);
}

/* ---- the naive reference ---- */

static bool naive_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned long cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/* Compares the bronze batches gathered in cols (all rows of the table)
 * with the table read directly. */
static void check_against_reference(sqlite3 *db, const st_source_table *t, const st_column *cols, size_t n_rows)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s, * FROM \"%s\" ORDER BY %s", t->rowid_name, t->name, t->rowid_name);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    size_t r = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        cr_assert_lt(r, n_rows, "scan returned fewer rows than the table has");
        cr_assert_eq(st_column_i64(&cols[0])[r], sqlite3_column_int64(st, 0));
        for (size_t j = 0; j < t->n_cols; j++) {
            const st_column *v = &cols[st_source_field_value(j)], *c = &cols[st_source_field_class(j)],
                            *raw = &cols[st_source_field_raw(j)];
            int k = (int)j + 1;
            int ty = sqlite3_column_type(st, k);
            int want_cls = ty == SQLITE_INTEGER ? 1 : ty == SQLITE_FLOAT ? 2 : ty == SQLITE_TEXT ? 3 : ty == SQLITE_BLOB ? 4 : 0;
            cr_assert_eq(st_column_i32(c)[r], want_cls, "row %zu col %s", r, t->cols[j].name);
            bool want_value = false;
            char want_raw[64];
            const void *raw_p = NULL;
            size_t raw_n = 0;
            switch (ty) {
            case SQLITE_INTEGER: {
                long long x = sqlite3_column_int64(st, k);
                if (v->type == ST_TYPE_I64) {
                    want_value = true;
                    cr_assert(st_column_valid(v, r));
                    cr_assert_eq(st_column_i64(v)[r], x);
                } else if (v->type == ST_TYPE_F64 && (long long)(long double)(double)x == x &&
                           fabsl((long double)(double)x) < 9223372036854775808.0L) {
                    want_value = true;
                    cr_assert(st_column_valid(v, r));
                    cr_assert_eq(st_column_f64(v)[r], (double)x);
                } else {
                    raw_n = (size_t)snprintf(want_raw, sizeof want_raw, "%lld", x);
                    raw_p = want_raw;
                }
                break;
            }
            case SQLITE_FLOAT: {
                double x = sqlite3_column_double(st, k);
                if (v->type == ST_TYPE_F64) {
                    want_value = true;
                    cr_assert(st_column_valid(v, r));
                    cr_assert_eq(memcmp(&st_column_f64(v)[r], &x, 8), 0);
                } else {
                    raw_n = (size_t)snprintf(want_raw, sizeof want_raw, "%.17g", x);
                    raw_p = want_raw;
                }
                break;
            }
            case SQLITE_TEXT: {
                const unsigned char *s = sqlite3_column_text(st, k);
                size_t n = (size_t)sqlite3_column_bytes(st, k);
                if (v->type == ST_TYPE_STR && naive_utf8(s, n)) {
                    want_value = true;
                    cr_assert(st_column_valid(v, r));
                    size_t len;
                    const char *got = st_column_str(v, r, &len);
                    cr_assert_eq(len, n);
                    cr_assert_eq(memcmp(got, s, n), 0);
                } else {
                    raw_p = s;
                    raw_n = n;
                }
                break;
            }
            case SQLITE_BLOB:
                raw_p = sqlite3_column_blob(st, k);
                raw_n = (size_t)sqlite3_column_bytes(st, k);
                break;
            default:
                break;
            }
            if (!want_value) {
                cr_assert_not(st_column_valid(v, r), "row %zu col %s: value should be NULL", r, t->cols[j].name);
                if (v->type == ST_TYPE_STR) {
                    size_t len;
                    (void)st_column_str(v, r, &len);
                    cr_assert_eq(len, 0);
                } else {
                    uint64_t bits;
                    memcpy(&bits, (const char *)v->data + 8 * r, 8);
                    cr_assert_eq(bits, 0);
                }
            }
            if (ty == SQLITE_NULL || want_value) {
                cr_assert_not(st_column_valid(raw, r), "row %zu col %s: raw should be NULL", r, t->cols[j].name);
            } else {
                cr_assert(st_column_valid(raw, r), "row %zu col %s: raw missing", r, t->cols[j].name);
                size_t len;
                const char *got = st_column_str(raw, r, &len);
                cr_assert_eq(len, raw_n, "row %zu col %s", r, t->cols[j].name);
                if (raw_n) cr_assert_eq(memcmp(got, raw_p, raw_n), 0);
            }
        }
        r++;
    }
    sqlite3_finalize(st);
    cr_assert_eq(r, n_rows);
}

/* Scans the whole table in batches of `batch`, appending every batch onto
 * `all` (so the result can be compared in one go). */
static size_t scan_all(st_source *src, const st_source_table *t, int64_t lo, int64_t hi, size_t batch,
                       st_column *all)
{
    st_source_scan *sc = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_scan_open(&sc, src, t, lo, hi, batch, &err), ST_OK, "%s", err.msg);
    st_column *b = alloc_cols(t);
    size_t total = 0, n;
    for (;;) {
        cr_assert_eq(st_source_scan_next(sc, b, &n, &err), ST_OK, "%s", err.msg);
        if (n == 0) break;
        cr_assert_leq(n, batch);
        for (size_t f = 0; f < t->n_fields; f++) {
            cr_assert_eq(b[f].n_rows, n);
            size_t nulls = 0;
            for (size_t i = 0; i < n; i++) nulls += !st_column_valid(&b[f], i);
            cr_assert_eq(b[f].null_count, nulls);
            if (b[f].type == ST_TYPE_STR || b[f].type == ST_TYPE_BYTES) {
                cr_assert_eq(b[f].offsets[0], 0);
                cr_assert_eq(b[f].offsets[n], b[f].n_bytes);
            }
            for (size_t i = 0; i < n; i++) cr_assert_eq(st_column_push_from(&all[f], &b[f], i), ST_OK);
        }
        total += n;
    }
    cr_assert_eq(st_source_scan_rows(sc), total);
    /* after the end it keeps answering 0 */
    cr_assert_eq(st_source_scan_next(sc, b, &n, &err), ST_OK);
    cr_assert_eq(n, 0);
    free_cols(b, t->n_fields);
    st_source_scan_close(sc);
    return total;
}

static void bind_value(sqlite3_stmt *st, int k, unsigned kind, unsigned r)
{
    static const unsigned char bad_utf8[][4] = {{0xFF, 'a', 0, 0}, {0xC0, 0x80, 0, 0}, {0xED, 0xA0, 0x80, 0},
                                                {'o', 'k', 0xE2, 0x82}};
    static const char *const texts[] = {"", " 42 ", "hello", "MAT0001", "12abc", "\xC3\xA9t\xC3\xA9", "3.5", "-7",
                                        "\xF0\x9F\x98\x80 emoji"};
    static const long long ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, (1LL << 53) + 1, 1LL << 53, -(1LL << 62)};
    static const double reals[] = {0.0, -0.0, 0.1, 3.0, 3.5, 1e300, -1e-300, 1.0 / 0.0, 9.2233720368547758e18};
    switch (kind % 6) {
    case 0: sqlite3_bind_null(st, k); break;
    case 1: sqlite3_bind_int64(st, k, ints[r % 9]); break;
    case 2: sqlite3_bind_double(st, k, reals[r % 9]); break;
    case 3: sqlite3_bind_text(st, k, texts[r % 9], -1, SQLITE_STATIC); break;
    case 4: sqlite3_bind_text(st, k, (const char *)bad_utf8[r % 4], r % 4 == 3 ? 4 : (int)strlen((const char *)bad_utf8[r % 4]), SQLITE_STATIC); break;
    case 5: {
        unsigned char blob[5] = {0, 1, 0xFF, (unsigned char)r, 'x'};
        sqlite3_bind_blob(st, k, blob, (int)(r % 6), SQLITE_TRANSIENT);
        break;
    }
    }
}

Test(source, every_storage_class_in_every_column_matches_reference)
{
    char p[400];
    path_in(p, sizeof p, "mixed.db");
    sqlite3 *db = fx_make_db(p, "CREATE TABLE Mixed(I INTEGER, r REAL, s TEXT, n NUMERIC, x, v VARCHAR(8), d DOUBLE);");
    sqlite3_stmt *ins = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO Mixed VALUES (?,?,?,?,?,?,?)", -1, &ins, NULL), SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    const unsigned n_rows = 700;
    for (unsigned r = 0; r < n_rows; r++) {
        for (int k = 1; k <= 7; k++) bind_value(ins, k, r / 7 + (unsigned)k * 5 + r, r * 7 + (unsigned)k);
        cr_assert_eq(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT; DELETE FROM Mixed WHERE rowid % 13 = 0;", NULL, NULL, NULL);

    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "MIXED", &t, &err), ST_OK, "%s", err.msg);
    int64_t mn, mx;
    uint64_t cnt;
    cr_assert_eq(st_source_rowid_range(src, t, &mn, &mx, &cnt, &err), ST_OK);
    cr_expect_eq(mn, 1);
    cr_expect_eq(mx, (int64_t)n_rows);
    cr_expect_eq(cnt, n_rows - n_rows / 13);
    uint64_t cnt2;
    cr_assert_eq(st_source_count_rows(src, t, &cnt2, &err), ST_OK);
    cr_expect_eq(cnt2, cnt);
    static const size_t batches[] = {1, 7, 64, 100, 4096};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        st_column *all = alloc_cols(t);
        size_t got = scan_all(src, t, INT64_MIN, INT64_MAX, batches[b], all);
        cr_assert_eq(got, cnt);
        check_against_reference(db, t, all, got);
        free_cols(all, t->n_fields);
    }
    st_source_table_free(t);
    st_source_close(src);
    sqlite3_close(db);
}

Test(source, validity_resets_between_batches)
{
    char p[400];
    path_in(p, sizeof p, "v.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE t(a INTEGER, b TEXT);"
                             "INSERT INTO t VALUES (NULL, 'x'), (2, NULL), (3, 'y'), (4, 'z');"));
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK);
    st_source_scan *sc = NULL;
    cr_assert_eq(st_source_scan_open(&sc, src, t, 1, 4, 2, &err), ST_OK);
    st_column *b = alloc_cols(t);
    size_t n;
    cr_assert_eq(st_source_scan_next(sc, b, &n, &err), ST_OK);
    cr_assert_eq(n, 2);
    cr_expect_eq(b[1].null_count, 1);
    cr_expect_eq(b[4].null_count, 1);
    cr_assert_eq(st_source_scan_next(sc, b, &n, &err), ST_OK);
    cr_assert_eq(n, 2);
    cr_expect_null(b[1].validity, "all-present batch keeps the fast path");
    cr_expect_null(b[4].validity);
    cr_expect_eq(b[1].null_count, 0);
    cr_expect_eq(b[3].null_count, 2); /* a__raw all NULL */
    cr_expect_eq(st_column_i64(&b[1])[1], 4);
    size_t len;
    const char *s = st_column_str(&b[4], 1, &len);
    cr_expect_eq(len, 1);
    cr_expect_eq(s[0], 'z');
    free_cols(b, t->n_fields);
    st_source_scan_close(sc);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, wrong_column_types_rejected)
{
    char p[400];
    path_in(p, sizeof p, "w.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE t(a INTEGER); INSERT INTO t VALUES (1);"));
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK);
    st_source_scan *sc = NULL;
    cr_assert_eq(st_source_scan_open(&sc, src, t, 1, 1, 16, &err), ST_OK);
    st_column c[4];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_F64); /* wrong */
    st_column_init(&c[2], ST_TYPE_I32);
    st_column_init(&c[3], ST_TYPE_BYTES);
    size_t n;
    cr_expect_eq(st_source_scan_next(sc, c, &n, &err), ST_ERR_INVALID);
    st_source_scan_close(sc);
    cr_assert_eq(st_source_scan_open(&sc, src, t, 1, 1, 0, &err), ST_ERR_INVALID);
    cr_assert_null(sc);
    for (int i = 0; i < 4; i++) st_column_free(&c[i]);
    st_source_scan_close(sc);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, empty_table)
{
    char p[400];
    path_in(p, sizeof p, "e.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE foc_qty(customer_id INTEGER, quantity_foc INTEGER);"));
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "foc_qty", &t, &err), ST_OK);
    int64_t mn, mx;
    uint64_t n;
    cr_assert_eq(st_source_rowid_range(src, t, &mn, &mx, &n, &err), ST_OK);
    cr_expect_eq(n, 0);
    cr_expect_gt(mn, mx);
    int64_t lo[3], hi[3];
    cr_assert_eq(st_source_split_rowids(src, t, 3, lo, hi, &err), ST_OK);
    for (int i = 0; i < 3; i++) cr_expect_gt(lo[i], hi[i]);
    st_column *all = alloc_cols(t);
    cr_expect_eq(scan_all(src, t, mn, mx, 10, all), 0);
    cr_expect_eq(scan_all(src, t, INT64_MIN, INT64_MAX, 10, all), 0);
    free_cols(all, t->n_fields);
    st_source_table_free(t);
    st_source_close(src);
}

/* Splits into 1..6 parts and checks every row is read exactly once, in order. */
static void check_splits(st_source *src, const st_source_table *t, const int64_t *want, size_t n_want)
{
    for (size_t parts = 1; parts <= 6; parts++) {
        int64_t lo[6], hi[6];
        st_error err = {0};
        cr_assert_eq(st_source_split_rowids(src, t, parts, lo, hi, &err), ST_OK, "%s", err.msg);
        size_t seen = 0;
        int64_t prev_hi = 0;
        bool first = true;
        for (size_t i = 0; i < parts; i++) {
            if (lo[i] > hi[i]) continue;
            if (!first) cr_assert_eq(lo[i], prev_hi + 1, "ranges are contiguous");
            first = false;
            prev_hi = hi[i];
            st_column *all = alloc_cols(t);
            size_t got = scan_all(src, t, lo[i], hi[i], 3, all);
            for (size_t r = 0; r < got; r++) {
                cr_assert_lt(seen, n_want);
                cr_assert_eq(st_column_i64(&all[0])[r], want[seen], "parts=%zu row %zu", parts, seen);
                seen++;
            }
            free_cols(all, t->n_fields);
        }
        cr_assert_eq(seen, n_want, "parts=%zu", parts);
    }
}

Test(source, rowid_splits_with_gaps)
{
    char p[400];
    path_in(p, sizeof p, "g.db");
    sqlite3 *db = fx_make_db(p, "CREATE TABLE t(a INTEGER, b TEXT);");
    static const int64_t ids[] = {-5, 1, 2, 5, 100, 101, 1000, 1001, 1002, 50000};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t(rowid, a, b) VALUES (%lld, %zu, 'r%zu');", (long long)ids[i], i, i);
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK);
    check_splits(src, t, ids, sizeof ids / sizeof ids[0]);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, split_extreme_rowids)
{
    char p[400];
    path_in(p, sizeof p, "x.db");
    sqlite3 *db = fx_make_db(p, "CREATE TABLE t(a);");
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO t(rowid,a) VALUES (%lld, 1), (0, 2), (%lld, 3);", (long long)INT64_MIN,
             (long long)INT64_MAX);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    st_source *src = open_ok(p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK);
    static const int64_t want[] = {INT64_MIN, 0, INT64_MAX};
    check_splits(src, t, want, 3);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, without_rowid_and_view_use_ordinals)
{
    char p[400];
    path_in(p, sizeof p, "wr.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE k(code TEXT PRIMARY KEY, qty INTEGER) WITHOUT ROWID;"
                             "INSERT INTO k VALUES ('c', 3), ('a', 1), ('d', 4), ('b', 2), ('e', 5);"
                             "CREATE VIEW vk AS SELECT code, qty * 10 AS q10 FROM k ORDER BY code;"
                             "CREATE TABLE shadow(rowid TEXT, oid INTEGER, x INTEGER);"
                             "INSERT INTO shadow VALUES ('r1', 10, 1), ('r2', 20, 2);"));
    st_source *src = open_ok(p);
    st_error err = {0};
    static const char *const names[] = {"K", "vk"};
    for (int w = 0; w < 2; w++) {
        st_source_table *t = NULL;
        cr_assert_eq(st_source_describe(src, names[w], &t, &err), ST_OK, "%s", err.msg);
        cr_expect_not(t->has_rowid);
        cr_expect_eq(t->is_view, w == 1);
        int64_t mn, mx;
        uint64_t n;
        cr_assert_eq(st_source_rowid_range(src, t, &mn, &mx, &n, &err), ST_OK);
        cr_expect_eq(mn, 1);
        cr_expect_eq(mx, 5);
        static const int64_t ord[] = {1, 2, 3, 4, 5};
        check_splits(src, t, ord, 5);
        st_column *all = alloc_cols(t);
        cr_assert_eq(scan_all(src, t, 1, 5, 2, all), 5);
        size_t len;
        const char *s = st_column_str(&all[1], 0, &len);
        cr_expect_eq(s[0], 'a', "primary key order");
        if (w == 0) {
            cr_expect_eq(st_column_i64(&all[4])[4], 5);
        } else {
            /* a view's expression column has no declared type: string, so
             * its INTEGER values land in q10__raw as decimal text */
            cr_assert_eq(all[4].type, ST_TYPE_STR);
            s = st_column_str(&all[6], 4, &len);
            cr_expect_eq(len, 2);
            cr_expect_eq(memcmp(s, "50", 2), 0);
        }
        free_cols(all, t->n_fields);
        st_source_table_free(t);
    }
    st_source_table *t = NULL;
    cr_assert_eq(st_source_describe(src, "shadow", &t, &err), ST_OK, "%s", err.msg);
    cr_expect(t->has_rowid);
    cr_expect_str_eq(t->rowid_name, "_rowid_");
    st_column *all = alloc_cols(t);
    cr_assert_eq(scan_all(src, t, INT64_MIN, INT64_MAX, 8, all), 2);
    cr_expect_eq(st_column_i64(&all[0])[1], 2);
    cr_expect_eq(st_column_i64(&all[4])[1], 20);
    free_cols(all, t->n_fields);
    st_source_table_free(t);
    st_source_close(src);
}

Test(source, quoted_names_and_parallel_connections)
{
    char p[400];
    path_in(p, sizeof p, "q.db");
    sqlite3 *db = fx_make_db(p, "CREATE TABLE \"we\"\"ird tab\"(\"col \"\"1\"\"\" INTEGER, \"Sp ace\" TEXT);");
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < 1000; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO \"we\"\"ird tab\" VALUES (%d, 'v%d');", i, i);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    /* two independent sources on the same file, interleaved */
    st_source *a = open_ok(p), *b = open_ok(p);
    st_source_table *ta = NULL, *tb = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(a, "WE\"IRD TAB", &ta, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_describe(b, "we\"ird tab", &tb, &err), ST_OK, "%s", err.msg);
    cr_expect_str_eq(ta->fields[1].name, "col \"1\"");
    cr_expect_str_eq(ta->fields[4].name, "sp ace");
    int64_t lo[2], hi[2];
    cr_assert_eq(st_source_split_rowids(a, ta, 2, lo, hi, &err), ST_OK);
    st_source_scan *sa = NULL, *sb = NULL;
    cr_assert_eq(st_source_scan_open(&sa, a, ta, lo[0], hi[0], 100, &err), ST_OK);
    cr_assert_eq(st_source_scan_open(&sb, b, tb, lo[1], hi[1], 100, &err), ST_OK);
    st_column *ca = alloc_cols(ta), *cb = alloc_cols(tb);
    size_t na, nb, total = 0;
    int64_t sum = 0;
    do {
        cr_assert_eq(st_source_scan_next(sa, ca, &na, &err), ST_OK);
        cr_assert_eq(st_source_scan_next(sb, cb, &nb, &err), ST_OK);
        for (size_t i = 0; i < na; i++) sum += st_column_i64(&ca[1])[i];
        for (size_t i = 0; i < nb; i++) sum += st_column_i64(&cb[1])[i];
        total += na + nb;
    } while (na || nb);
    cr_expect_eq(total, 1000);
    cr_expect_eq(sum, 999 * 1000 / 2);
    free_cols(ca, ta->n_fields);
    free_cols(cb, tb->n_fields);
    st_source_scan_close(sa);
    st_source_scan_close(sb);
    st_source_table_free(ta);
    st_source_table_free(tb);
    st_source_close(a);
    st_source_close(b);
}

Test(source, uri_special_characters_in_path)
{
    char p[400];
    path_in(p, sizeof p, "we?ird #%20name%.db");
    sqlite3_close(fx_make_db(p, "CREATE TABLE t(a INTEGER); INSERT INTO t VALUES (7);"));
    st_source *src = open_ok(p);
    cr_expect_str_eq(st_source_path(src), p);
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK, "%s", err.msg);
    uint64_t n = 0;
    cr_assert_eq(st_source_count_rows(src, t, &n, &err), ST_OK);
    cr_expect_eq(n, 1);
    st_source_table_free(t);
    st_source_close(src);
}
