/*
 * test_ingest.c: the ingest step's bronze typing, end to end through
 * `strata run`.
 *
 * A source whose columns have no declared type (or BLOB / NUMERIC
 * affinity) is typed by its values: an integer column with one text value
 * in 20,000 stays int64 in bronze, that one value NULL in `c` and kept in
 * `c__class` / `c__raw`. The same rows with declared types (INTEGER,
 * TEXT) are the reference: the two warehouses must give the same silver
 * rows and the same rejects, and bronze quality must see the integers
 * (1 NULL, not 19,999). Fixtures are built here with sqlite3.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "strata/file.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_ingest_"); }

static void teardown(void) { fx_rmtree(dir); }

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 180);

/* The three source tables in one file, declared types or none: 20,000
 * customers (id 10000 is 'abc'), 40,000 sales lines (2 text customer
 * ids), 20,000 free-of-charge lines (1 text customer id). */
static void make_source(const char *path, bool typed)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    const char *I = typed ? " INTEGER" : "", *T = typed ? " TEXT" : "";
    char sql[2048];
    snprintf(sql, sizeof sql,
             "CREATE TABLE Customer(CustomerId%s, FirstName%s, LastName%s, Company%s, Address%s, City%s, State%s,"
             " Country%s, PostalCode%s, Phone%s, Fax%s, Email%s, SupportRepId%s);"
             "CREATE TABLE sales_qty(customer_id%s, year%s, month%s, material_code%s, quantity%s);"
             "CREATE TABLE foc_qty(customer_id%s, year%s, month%s, material_code%s, quantity_foc%s);",
             I, T, T, T, T, T, T, T, T, T, T, T, I, I, I, I, T, I, I, I, I, T, I);
    fx_exec_sql(db, sql);
    fx_exec_sql(db, "BEGIN;"
                "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 20000)"
                " INSERT INTO Customer SELECT CASE WHEN k = 10000 THEN 'abc' ELSE k END, 'F' || k, 'L' || k, NULL,"
                " 'addr', 'city', NULL, CASE k % 3 WHEN 0 THEN 'USA' WHEN 1 THEN 'Brazil' ELSE 'UK' END, '123',"
                " NULL, NULL, 'u' || k || '@x.com', 3 FROM c;"
                "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 40000)"
                " INSERT INTO sales_qty SELECT CASE WHEN k % 20000 = 777 THEN 'c' || k ELSE 1 + k * 7 % 20000 END,"
                " 2021 + k % 2, 1 + k % 12, printf('MAT%03d', k % 51), 1 + k % 30 FROM c;"
                "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 20000)"
                " INSERT INTO foc_qty SELECT CASE WHEN k = 5000 THEN 'x' ELSE 1 + k * 13 % 20000 END,"
                " 2021 + k % 2, 1 + k % 12, printf('MAT%03d', k % 17), 1 + k % 5 FROM c;"
                "COMMIT;");
    sqlite3_close(db);
}

static int run_strata(const char *args)
{
    return fx_sh("'%s' %s >'%s/out.txt' 2>&1", fx_bin(), args, dir);
}

/* Runs the pipeline on source `db` into warehouse `wh` (both under dir). */
static void run_into(const char *db, const char *wh, int threads)
{
    char args[1400];
    snprintf(args, sizeof args, "run --customers '%s/%s' --transactions '%s/%s' --warehouse '%s/%s' --threads %d --quiet",
             dir, db, dir, db, dir, wh, threads);
    int rc = run_strata(args);
    cr_assert(rc == 0 || rc == 4, "strata run exited %d", rc); /* 4: a quality check failed; looked at below */
}

/* `strata export` of warehouse wh's table layer/table as JSON lines. */
static char *export_rows(const char *wh, const char *layer, const char *table, size_t *len)
{
    char args[1200], out[700];
    snprintf(out, sizeof out, "%s/%s.%s.jsonl", dir, wh, table);
    snprintf(args, sizeof args, "export '%s/%s/%s/%s.strata' --format jsonl --out '%s'", dir, wh, layer, table, out);
    cr_assert_eq(run_strata(args), 0, "export of %s/%s", wh, table);
    return fx_read_file(out, len);
}

/* Checks bronze column `col` of wh's bronze table: int64, NULL exactly
 * at rows odd[0..n_odd), where __class is TEXT and __raw holds raw[k];
 * present everywhere else with __raw NULL. */
static void expect_int_column(const char *wh, const char *table, const char *col, const size_t *odd,
                              const char *const *raw, size_t n_odd, uint64_t n_rows)
{
    char p[700], name[64];
    snprintf(p, sizeof p, "%s/%s/bronze/%s.strata", dir, wh, table);
    st_reader *r = NULL;
    st_error err = {0};
    cr_assert_eq(st_reader_open(&r, p, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_reader_n_rows(r), n_rows);
    size_t idx[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (size_t k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s%s", col, k == 0 ? "" : (k == 1 ? "__class" : "__raw"));
        for (size_t f = 0; f < st_reader_n_fields(r); f++)
            if (!strcmp(st_reader_field(r, f)->name, name)) idx[k] = f;
        cr_assert_neq(idx[k], SIZE_MAX, "%s has no column %s", table, name);
    }
    cr_assert_eq(st_reader_field(r, idx[0])->type, ST_TYPE_I64, "%s.%s is %s", table, col,
                 st_type_name(st_reader_field(r, idx[0])->type));
    st_column v, c, w;
    st_column_init(&v, ST_TYPE_I64);
    st_column_init(&c, ST_TYPE_I32);
    st_column_init(&w, ST_TYPE_BYTES);
    uint64_t base = 0, nulls = 0, raws = 0;
    size_t next = 0;
    for (size_t ch = 0; ch < st_reader_n_chunks(r); ch++) {
        cr_assert_eq(st_reader_read_block(r, ch, idx[0], &v, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_reader_read_block(r, ch, idx[1], &c, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_reader_read_block(r, ch, idx[2], &w, &err), ST_OK, "%s", err.msg);
        for (size_t i = 0; i < v.n_rows; i++) {
            bool is_odd = next < n_odd && odd[next] == base + i;
            nulls += !st_column_valid(&v, i);
            raws += st_column_valid(&w, i);
            if (!is_odd) {
                cr_expect(st_column_valid(&v, i) && st_column_i32(&c)[i] == 1, "%s row %zu", col, (size_t)(base + i));
                continue;
            }
            size_t len = 0;
            const char *s = st_column_valid(&w, i) ? st_column_str(&w, i, &len) : NULL;
            cr_expect(!st_column_valid(&v, i), "%s row %zu: NULL value", col, (size_t)(base + i));
            cr_expect_eq(st_column_i32(&c)[i], 3, "%s row %zu: class TEXT", col, (size_t)(base + i));
            cr_expect(s && len == strlen(raw[next]) && !memcmp(s, raw[next], len), "%s row %zu: __raw '%s'", col,
                      (size_t)(base + i), raw[next]);
            next++;
        }
        base += v.n_rows;
    }
    cr_expect_eq(nulls, n_odd, "%s: %llu NULLs", col, (unsigned long long)nulls);
    cr_expect_eq(raws, n_odd, "%s: %llu raws", col, (unsigned long long)raws);
    st_column_free(&v);
    st_column_free(&c);
    st_column_free(&w);
    st_reader_close(r);
}

Test(ingest, untyped_integer_column_stays_int64_with_only_the_odd_values_in_raw)
{
    char p[400];
    snprintf(p, sizeof p, "%s/untyped.db", dir);
    make_source(p, false);
    snprintf(p, sizeof p, "%s/typed.db", dir);
    make_source(p, true);
    run_into("untyped.db", "wu", 2);
    run_into("typed.db", "wt", 2);
    run_into("untyped.db", "wu1", 1);

    static const size_t cust_odd[] = {9999};
    static const char *const cust_raw[] = {"abc"};
    expect_int_column("wu", "raw_customer", "customerid", cust_odd, cust_raw, 1, 20000);
    static const size_t sales_odd[] = {776, 20776};
    static const char *const sales_raw[] = {"c777", "c20777"};
    expect_int_column("wu", "raw_sales_quantity", "customer_id", sales_odd, sales_raw, 2, 40000);
    static const size_t foc_odd[] = {4999};
    static const char *const foc_raw[] = {"x"};
    expect_int_column("wu", "raw_free_of_charge_quantity", "customer_id", foc_odd, foc_raw, 1, 20000);

    /* silver rows and rejects as with declared types */
    static const char *const silver[] = {"stg_customers", "stg_sales_transactions", "stg_foc_transactions",
                                         "stg_rejects"};
    for (size_t k = 0; k < 4; k++) {
        size_t la = 0, lb = 0;
        char *a = export_rows("wu", "silver", silver[k], &la), *b = export_rows("wt", "silver", silver[k], &lb);
        cr_expect(la == lb && !memcmp(a, b, la), "silver %s differs from the declared-type source's", silver[k]);
        free(a);
        free(b);
    }
    size_t lr = 0;
    char *rej = export_rows("wu", "silver", "stg_rejects", &lr);
    size_t n_rej = 0, n_bad_id = 0;
    for (const char *q = rej; (q = strchr(q, '\n')); q++) n_rej++;
    for (const char *q = rej; (q = strstr(q, "\"bad_customer_id\"")); q++) n_bad_id++;
    cr_expect_eq(n_rej, 4, "1 + 2 + 1 rejected rows, got %zu:\n%s", n_rej, rej);
    cr_expect_eq(n_bad_id, 4, "all for their customer id:\n%s", rej);
    free(rej);

    /* bronze quality sees the integers */
    char qp[500];
    snprintf(qp, sizeof qp, "%s/wu/quality/results.json", dir);
    char *q = fx_read_file(qp, NULL);
    cr_expect_not_null(strstr(q, "1 of 20000 values of 'customerid' are NULL"), "bronze quality: %.400s", q);
    cr_expect_null(strstr(q, "19999 of 20000"), "bronze quality still sees a string column");
    free(q);

    /* the step note names the columns typed by values; the bytes do not depend on --threads */
    static const char *const bronze[] = {"raw_customer", "raw_sales_quantity", "raw_free_of_charge_quantity"};
    for (size_t k = 0; k < 3; k++) {
        char a[500], b[500];
        snprintf(a, sizeof a, "%s/wu/bronze/%s.strata", dir, bronze[k]);
        snprintf(b, sizeof b, "%s/wu1/bronze/%s.strata", dir, bronze[k]);
        size_t la = 0, lb = 0;
        char *x = fx_read_file(a, &la), *y = fx_read_file(b, &lb);
        cr_expect(la == lb && !memcmp(x, y, la), "bronze %s differs between --threads 1 and 2", bronze[k]);
        free(x);
        free(y);
    }
    snprintf(qp, sizeof qp, "%s/wu/_runs/latest.json", dir);
    q = fx_read_file(qp, NULL);
    cr_expect_not_null(strstr(q, "typed by values: customerid int64"), "ingest note: %.600s", q);
    free(q);
}
