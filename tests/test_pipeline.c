/*
 * test_pipeline.c: `strata run` end to end on fixtures built here, checked
 * against an independent, naive computation of every feature from the
 * rows the test itself inserted, plus the pipeline's invariants, re-run
 * skipping, byte-identical rebuilds, thread-count independence and clear
 * failures on bad sources.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/file.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_pipe_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 120);

/* Runs strata with args; returns exit code; stderr captured into errbuf. */
static int strata(const char *args, char *errbuf, size_t errlen)
{
    int rc = fx_sh("%s %s 2>%s/stderr.txt >%s/stdout.txt", fx_bin(), args, dir, dir);
    if (errbuf) {
        char p[400];
        snprintf(p, sizeof p, "%s/stderr.txt", dir);
        char *e = fx_slurp(p, NULL);
        snprintf(errbuf, errlen, "%s", e ? e : "");
        free(e);
    }
    return rc;
}

/* ---- the fixture ---- */

typedef struct line {
    int64_t cust;
    int year, month;
    char mat[16];
    int64_t qty;
    int foc; /* 0 sales, 1 foc */
    int good;
} line;

#define MAX_LINES 6000
static line lines[MAX_LINES];
static size_t n_lines;

static uint64_t rng_state = 12345;
static uint64_t rnd(void)
{
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void make_customers(const char *path, const char *table)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (CustomerId INTEGER NOT NULL, FirstName TEXT, LastName TEXT, Company TEXT, "
             "Address TEXT, City TEXT, State TEXT, Country TEXT, PostalCode TEXT, Phone TEXT, Fax TEXT, "
             "Email TEXT, SupportRepId INTEGER);",
             table);
    fx_exec_sql(db, sql);
    for (int i = 1; i <= 8; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s VALUES (%d, ' First%d ', 'Last%d', NULL, 'Addr', 'City', NULL, '%s', NULL, NULL, "
                 "NULL, ' User%d@Example.COM ', 3);",
                 table, i, i, i, i % 2 ? "USA" : "Brazil", i);
        fx_exec_sql(db, sql);
    }
    /* a duplicate id: the first row wins, this one is a reject */
    snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (3, 'Dup', 'Dup', NULL, NULL, NULL, NULL, 'UK', NULL, NULL, NULL, 'bad-email', NULL);", table);
    fx_exec_sql(db, sql);
    sqlite3_close(db);
}

/* When set, about 1 line in 40 belongs to one of three customers with ids
 * near 10^12, far from the others (orphans too). */
static int fixture_far_ids;
static int fixture_typed_bad; /* bad rows that keep every column's storage class uniform */

static void make_transactions(const char *path, size_t n_good, int with_bad)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    /* shuffled column order and an extra column in foc_qty */
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity INTEGER);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (note TEXT, quantity_foc INTEGER, material_code TEXT, month INTEGER, year INTEGER, customer_id INTEGER);");
    fx_exec_sql(db, "BEGIN");
    sqlite3_stmt *ins_s, *ins_f;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO sales_qty VALUES (?,?,?,?,?)", -1, &ins_s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO foc_qty VALUES ('x',?,?,?,?,?)", -1, &ins_f, NULL), SQLITE_OK);
    n_lines = 0;
    for (size_t i = 0; i < n_good; i++) {
        line *l = &lines[n_lines++];
        l->cust = 1 + (int64_t)(rnd() % 12); /* 9..12 are orphans */
        if (fixture_far_ids && rnd() % 40 == 0) l->cust = 1000000000000LL + (int64_t)(rnd() % 3);
        l->year = 2021 + (int)(rnd() % 2);
        l->month = 1 + (int)(rnd() % 12);
        snprintf(l->mat, sizeof l->mat, "MAT%04d", (int)(rnd() % 9));
        l->qty = (int64_t)(rnd() % 50);
        l->foc = (int)(rnd() % 3 == 0);
        l->good = 1;
        sqlite3_stmt *st = l->foc ? ins_f : ins_s;
        if (!l->foc) {
            sqlite3_bind_int64(st, 1, l->cust);
            sqlite3_bind_int(st, 2, l->year);
            sqlite3_bind_int(st, 3, l->month);
            sqlite3_bind_text(st, 4, l->mat, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 5, l->qty);
        } else {
            sqlite3_bind_int64(st, 1, l->qty);
            sqlite3_bind_text(st, 2, l->mat, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 3, l->month);
            sqlite3_bind_int(st, 4, l->year);
            sqlite3_bind_int64(st, 5, l->cust);
        }
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(ins_s);
    sqlite3_finalize(ins_f);
    if (with_bad) {
        /* accepted after casting: text with spaces, integral real, integer material code */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (' 2 ', 2021.0, '  7', 1234, ' 5 ');");
        line *l = &lines[n_lines++];
        *l = (line){2, 2021, 7, "1234", 5, 0, 1};
        /* rejected, one per reason */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (NULL, 2021, 1, 'MAT0001', 1);");     /* bad_customer_id */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (-4, 2021, 1, 'MAT0001', 1);");       /* bad_customer_id */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 1800, 1, 'MAT0001', 1);");        /* year_out_of_range */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 'abc', 1, 'MAT0001', 1);");       /* bad_year */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 13, 'MAT0001', 1);");       /* bad_month */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 0, 'MAT0001', 1);");        /* bad_month */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, '   ', 1);");            /* bad_material_code */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, x'ff00', 1);");          /* bad_material_code */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', 1.5);");      /* bad_quantity */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', -3);");       /* quantity_out_of_range */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', 9223372036854775807);"); /* out of range */
        fx_exec_sql(db, "INSERT INTO foc_qty VALUES ('x', 'many', 'MAT0001', 3, 2021, 1);");           /* bad_quantity */
        fx_exec_sql(db, "INSERT INTO foc_qty VALUES ('x', 1, CAST(x'c328' AS TEXT), 3, 2021, 1);");   /* non-UTF-8 */
    }
    if (fixture_typed_bad) {
        /* integers and texts only, so staging's chunk path flags them by
         * predicate (and sends them to the per-row path) */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (-4, 2021, 1, 'MAT0001', 1);");     /* bad_customer_id */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 1800, 1, 'MAT0001', 1);");      /* year_out_of_range */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 13, 'MAT0001', 1);");     /* bad_month */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, '   ', 1);");          /* bad_material_code */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, 'MAT0001', -3);");     /* quantity_out_of_range */
        fx_exec_sql(db, "INSERT INTO foc_qty VALUES ('x', 2000000000, 'MAT0001', 3, 2021, 1);"); /* quantity_out_of_range */
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (1, 2021, 2, ' MAT0002 ', 4);");    /* accepted, trimmed */
        lines[n_lines++] = (line){1, 2021, 2, "MAT0002", 4, 0, 1};
        fx_exec_sql(db, "INSERT INTO sales_qty VALUES (3, 2021, 5, 'M\xc3\xa9', 2);");    /* accepted, UTF-8 */
        lines[n_lines++] = (line){3, 2021, 5, "M\xc3\xa9", 2, 0, 1};
    }
    fx_exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

/* ---- reading results ---- */

static st_reader *open_table(const char *wh, const char *layer, const char *table)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s/%s.strata", wh, layer, table);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
    return r;
}

static uint64_t table_rows(const char *wh, const char *layer, const char *table)
{
    st_reader *r = open_table(wh, layer, table);
    uint64_t n = st_reader_n_rows(r);
    st_reader_close(r);
    return n;
}

static void read_col(st_reader *r, const char *name, st_column *c)
{
    int i = st_reader_find(r, name);
    cr_assert_geq(i, 0, "no column %s", name);
    st_column_init(c, st_reader_field(r, (size_t)i)->type);
    size_t which = (size_t)i;
    st_error err;
    cr_assert_eq(st_reader_read_all(r, &which, 1, c, &err), ST_OK, "%s", err.msg);
}

/* ---- the naive reference ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median_of(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

typedef struct ref_row {
    int64_t cust;
    int pk;
    int64_t sold, foc, n_sold, n_foc, uniq;
    double ratio, med_sold, med_foc; /* NAN for none */
} ref_row;

static size_t reference(ref_row *out)
{
    size_t n = 0;
    for (int64_t c = 1; c <= 12; c++)
        for (int y = 2021; y <= 2022; y++)
            for (int m = 1; m <= 12; m++) {
                int64_t s_q[MAX_LINES], f_q[MAX_LINES];
                size_t ns = 0, nf = 0;
                char mats[MAX_LINES][16];
                size_t nm = 0;
                int64_t sold = 0, foc = 0;
                for (size_t i = 0; i < n_lines; i++) {
                    const line *l = &lines[i];
                    if (!l->good || l->cust != c || l->year != y || l->month != m) continue;
                    if (l->foc) {
                        f_q[nf++] = l->qty;
                        foc += l->qty;
                    } else {
                        s_q[ns++] = l->qty;
                        sold += l->qty;
                    }
                    size_t k = 0;
                    while (k < nm && strcmp(mats[k], l->mat)) k++;
                    if (k == nm) strcpy(mats[nm++], l->mat);
                }
                if (!ns && !nf) continue;
                ref_row *r = &out[n++];
                r->cust = c;
                r->pk = y * 100 + m;
                r->sold = sold;
                r->foc = foc;
                r->n_sold = (int64_t)ns;
                r->n_foc = (int64_t)nf;
                r->uniq = (int64_t)nm;
                r->ratio = sold + foc ? (double)foc / (double)(sold + foc) : 0.0;
                r->med_sold = ns ? median_of(s_q, ns) : NAN;
                r->med_foc = nf ? median_of(f_q, nf) : NAN;
            }
    return n;
}

static void build_fixture(size_t n_good, int with_bad, const char *cust_table)
{
    char c[400], t[400];
    snprintf(c, sizeof c, "%s/customers.db", dir);
    snprintf(t, sizeof t, "%s/tx.db", dir);
    make_customers(c, cust_table);
    make_transactions(t, n_good, with_bad);
}

static int run_pipeline(const char *wh, const char *extra, char *err, size_t errlen)
{
    char args[1200];
    snprintf(args, sizeof args,
             "run --customers %s/customers.db --transactions %s/tx.db --warehouse %s/%s --quiet --no-report --k 2 %s",
             dir, dir, dir, wh, extra);
    return strata(args, err, errlen);
}

Test(pipeline, features_equal_naive_reference_and_invariants_hold)
{
    build_fixture(3000, 1, "customers");
    char err[4096];
    int rc = run_pipeline("wh", "--threads 2", err, sizeof err);
    cr_assert_eq(rc, 0, "strata run exited %d: %s", rc, err);
    char wh[400];
    snprintf(wh, sizeof wh, "%s/wh", dir);

    /* raw = staged + rejected per table */
    uint64_t raw_s = table_rows(wh, "bronze", "raw_sales_quantity");
    uint64_t raw_f = table_rows(wh, "bronze", "raw_free_of_charge_quantity");
    uint64_t raw_c = table_rows(wh, "bronze", "raw_customer");
    uint64_t stg_s = table_rows(wh, "silver", "stg_sales_transactions");
    uint64_t stg_f = table_rows(wh, "silver", "stg_foc_transactions");
    uint64_t stg_c = table_rows(wh, "silver", "stg_customers");
    uint64_t rej = table_rows(wh, "silver", "stg_rejects");
    cr_assert_eq(raw_c, 9);
    cr_assert_eq(stg_c, 8, "duplicate customer id goes to rejects");
    cr_assert_eq(raw_s + raw_f + raw_c, stg_s + stg_f + stg_c + rej);
    cr_assert_eq(rej, 11 + 2 + 1, "every bad row is a reject");

    /* reject reasons */
    st_reader *r = open_table(wh, "silver", "stg_rejects");
    st_column reason, table;
    read_col(r, "reason", &reason);
    read_col(r, "source_table", &table);
    const char *want[] = {"bad_customer_id", "bad_customer_id", "year_out_of_range", "bad_year", "bad_month",
                          "bad_month", "bad_material_code", "bad_material_code", "bad_quantity",
                          "quantity_out_of_range", "quantity_out_of_range", "bad_quantity", "bad_material_code",
                          "duplicate_customer_id"};
    int seen[14] = {0};
    for (size_t i = 0; i < reason.n_rows; i++) {
        size_t len;
        const char *s = st_column_str(&reason, i, &len);
        for (int k = 0; k < 14; k++)
            if (!seen[k] && strlen(want[k]) == len && !memcmp(want[k], s, len)) {
                seen[k] = 1;
                break;
            }
    }
    for (int k = 0; k < 14; k++) cr_expect(seen[k], "reject reason %s (#%d) missing", want[k], k);
    st_column_free(&reason);
    st_column_free(&table);
    st_reader_close(r);

    /* features vs the naive reference */
    static ref_row ref[12 * 24];
    size_t n_ref = reference(ref);
    r = open_table(wh, "gold", "int_customer_analytics");
    cr_assert_eq(st_reader_n_rows(r), n_ref, "one row per active customer-period");
    st_column c[10];
    const char *names[10] = {"customer_id", "period_key", "total_sold_quantity", "total_foc_quantity", "foc_ratio",
                             "total_sold_transactions", "total_foc_transactions", "median_sold_order_size",
                             "median_foc_order_size", "unique_materials"};
    for (int j = 0; j < 10; j++) read_col(r, names[j], &c[j]);
    for (size_t i = 0; i < n_ref; i++) {
        cr_assert_eq(st_column_i64(&c[0])[i], ref[i].cust, "row %zu customer", i);
        cr_assert_eq(st_column_i32(&c[1])[i], ref[i].pk, "row %zu period", i);
        cr_expect_eq(st_column_i64(&c[2])[i], ref[i].sold, "row %zu sold", i);
        cr_expect_eq(st_column_i64(&c[3])[i], ref[i].foc, "row %zu foc", i);
        cr_expect(fabs(st_column_f64(&c[4])[i] - ref[i].ratio) < 1e-12, "row %zu foc_ratio", i);
        cr_expect_eq(st_column_i64(&c[5])[i], ref[i].n_sold, "row %zu n_sold", i);
        cr_expect_eq(st_column_i64(&c[6])[i], ref[i].n_foc, "row %zu n_foc", i);
        if (isnan(ref[i].med_sold)) cr_expect(!st_column_valid(&c[7], i), "row %zu median sold is NULL", i);
        else cr_expect(st_column_valid(&c[7], i) && st_column_f64(&c[7])[i] == ref[i].med_sold, "row %zu med sold", i);
        if (isnan(ref[i].med_foc)) cr_expect(!st_column_valid(&c[8], i), "row %zu median foc is NULL", i);
        else cr_expect(st_column_valid(&c[8], i) && st_column_f64(&c[8])[i] == ref[i].med_foc, "row %zu med foc", i);
        cr_expect_eq(st_column_i64(&c[9])[i], ref[i].uniq, "row %zu unique materials", i);
    }
    for (int j = 0; j < 10; j++) st_column_free(&c[j]);
    st_reader_close(r);

    /* orphans: ids 9..12 are placeholders in dim_customers */
    r = open_table(wh, "platinum", "dim_customers");
    st_column id, known;
    read_col(r, "customer_id", &id);
    read_col(r, "is_known", &known);
    size_t orphans = 0;
    for (size_t i = 0; i < id.n_rows; i++) {
        int64_t v = st_column_i64(&id)[i];
        cr_expect_eq(st_column_bool(&known)[i] != 0, v <= 8, "customer %lld is_known", (long long)v);
        orphans += v > 8;
    }
    cr_expect_eq(orphans, 4);
    st_column_free(&id);
    st_column_free(&known);
    st_reader_close(r);

    /* the dense grid covers customers x periods */
    uint64_t grid = table_rows(wh, "platinum", "marts_customer_summary");
    cr_expect_eq(grid, 12u * 24u);
    cr_expect_eq(table_rows(wh, "platinum", "marts_persona_status_change"), grid);
}

static const char *const all_tables[] = {
    "bronze/raw_customer", "bronze/raw_sales_quantity", "bronze/raw_free_of_charge_quantity",
    "silver/stg_customers", "silver/stg_sales_transactions", "silver/stg_foc_transactions", "silver/stg_rejects",
    "gold/int_transactions_unified", "gold/int_customer_analytics", "platinum/dim_customers",
    "platinum/fct_transactions", "platinum/marts_customer_summary", "platinum/marts_persona_status_change",
    "platinum/marts_persona_transitions", "platinum/ml_centroids", "platinum/ml_k_selection"};

static void assert_same_files(const char *a, const char *b)
{
    for (size_t i = 0; i < sizeof all_tables / sizeof all_tables[0]; i++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/%s/%s.strata", dir, a, all_tables[i]);
        snprintf(pb, sizeof pb, "%s/%s/%s.strata", dir, b, all_tables[i]);
        size_t la, lb;
        char *x = fx_slurp(pa, &la), *y = fx_slurp(pb, &lb);
        cr_assert_not_null(x, "missing %s", pa);
        cr_assert_not_null(y, "missing %s", pb);
        cr_expect(la == lb && !memcmp(x, y, la), "%s differs between %s and %s", all_tables[i], a, b);
        free(x);
        free(y);
    }
}

/* A --suite file that does not parse stops the run before its first step
 * (the run loads the suite once, up front): exit 2 naming the file's
 * line, no source read, nothing published; the same file, mended, runs. */
Test(pipeline, a_suite_that_does_not_parse_stops_the_run_before_its_first_step)
{
    build_fixture(500, 0, "customers");
    char suite[300], extra[400], err[4096];
    snprintf(suite, sizeof suite, "%s/my.suite", dir);
    FILE *f = fopen(suite, "w");
    cr_assert_not_null(f);
    fputs("[gold.int_customer_analytics]\nnot_nul customer_id\n", f);
    fclose(f);
    snprintf(extra, sizeof extra, "--suite %s", suite);
    cr_expect_eq(run_pipeline("wh", extra, err, sizeof err), 2, "%s", err);
    cr_expect_not_null(strstr(err, "my.suite:2:1: unknown expectation 'not_nul'"), "%s", err);
    char p[400];
    snprintf(p, sizeof p, "%s/wh/bronze/raw_customer.strata", dir);
    cr_expect_neq(access(p, F_OK), 0, "a bronze table was written");
    snprintf(p, sizeof p, "%s/wh/_runs/latest.json", dir);
    char *log = fx_slurp(p, NULL);
    cr_assert_not_null(log);
    cr_expect_not_null(strstr(log, "{\"name\": \"ingest\", \"status\": \"not run\""), "%s", log);
    free(log);
    f = fopen(suite, "w");
    cr_assert_not_null(f);
    fputs("[gold.int_customer_analytics]\nnot_null customer_id\n", f);
    fclose(f);
    cr_expect_eq(run_pipeline("wh", extra, err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/wh/bronze/raw_customer.strata", dir);
    cr_expect_eq(access(p, F_OK), 0);
}

Test(pipeline, rerun_skips_and_force_rebuilds_identically_across_threads)
{
    build_fixture(1500, 1, "Customer");
    char err[4096];
    cr_assert_eq(run_pipeline("w1", "--threads 1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(run_pipeline("w2", "--threads 2", err, sizeof err), 0, "%s", err);
    assert_same_files("w1", "w2");
    /* second run: every data step skipped */
    cr_assert_eq(run_pipeline("w1", "--threads 2", err, sizeof err), 0, "%s", err);
    char p[600];
    snprintf(p, sizeof p, "%s/w1/_runs/latest.json", dir);
    size_t len;
    char *log = fx_slurp(p, &len);
    cr_assert_not_null(log);
    for (const char *step = "ingest"; step; step = NULL) {
        (void)step;
    }
    const char *steps[] = {"ingest", "stage", "intermediate", "ml", "marts"};
    for (int i = 0; i < 5; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "\"name\": \"%s\", \"status\": \"skipped\"", steps[i]);
        cr_expect_not_null(strstr(log, needle), "step %s was not skipped on an unchanged re-run:\n%s", steps[i], log);
    }
    free(log);
    /* --force rebuilds byte-identical files */
    cr_assert_eq(run_pipeline("w1", "--threads 2 --force", err, sizeof err), 0, "%s", err);
    assert_same_files("w1", "w2");
}

/* The gold step under a memory limit far below its input: customers are
 * planned into ranges (two histogram passes: ids 1..12 sit next to ids
 * near 10^12), spilled and processed range by range, and every file is
 * byte-identical to the one-pass run, with one thread or two. */
Test(pipeline, memory_limit_splits_customers_into_ranges_with_byte_identical_output)
{
    fixture_far_ids = 1;
    build_fixture(5500, 1, "Customer");
    fixture_far_ids = 0;
    char err[4096];
    cr_assert_eq(run_pipeline("w1", "--threads 2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(run_pipeline("w2", "--threads 1 --memory-limit 64K", err, sizeof err), 0, "%s", err);
    cr_assert_eq(run_pipeline("w3", "--threads 2 --memory-limit 64K", err, sizeof err), 0, "%s", err);
    assert_same_files("w1", "w2");
    assert_same_files("w1", "w3");
    char p[600];
    size_t len;
    snprintf(p, sizeof p, "%s/w1/_runs/latest.json", dir);
    char *log = fx_slurp(p, &len);
    cr_assert_null(strstr(log, "customer ranges"), "the default limit needs no ranges here");
    free(log);
    snprintf(p, sizeof p, "%s/w3/_runs/latest.json", dir);
    log = fx_slurp(p, &len);
    cr_assert_not_null(strstr(log, "customer ranges (memory limit 64 KiB, 2 histogram passes"), "%s", log);
    free(log);
    /* the limit is not part of any fingerprint: a re-run with another limit skips */
    cr_assert_eq(run_pipeline("w1", "--memory-limit 64K", err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/w1/_runs/latest.json", dir);
    log = fx_slurp(p, &len);
    cr_assert_not_null(strstr(log, "\"name\": \"intermediate\", \"status\": \"skipped\""), "%s", log);
    free(log);
    /* bad values are usage errors */
    cr_assert_eq(run_pipeline("w4", "--memory-limit 12Q", err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "--memory-limit"), "%s", err);
    cr_assert_eq(run_pipeline("w4", "--memory-limit 1K", err, sizeof err), 2);
    cr_assert_eq(run_pipeline("w4", "--memory-limit -5M", err, sizeof err), 2);
    cr_assert_eq(run_pipeline("w4", "--memory-limit 99999999999G", err, sizeof err), 2);
    /* plain bytes work, however large */
    cr_assert_eq(run_pipeline("w5", "--memory-limit 1073741824", err, sizeof err), 0, "%s", err);
}

/* The gold step's fused pass (st_dense: narrow customer ids, small
 * quantities) and staging's chunk path write the same bytes as the
 * sort-based st_features path and the per-row staging path, on the dirty
 * fixture (rejects of every reason, bad classes, NULLs, spaces), with 1,
 * 2 and 4 threads, its chunks held and read in slices or read whole; and
 * so does the spill path under a tiny memory limit. */
static void fused_and_reference_paths_agree(void)
{
    char err[4096], p[600];
    size_t len;
    /* forced, whatever the step would choose for these lines (see wa) */
    setenv("STRATA_GOLD_PATH", "fused", 1);
    cr_assert_eq(run_pipeline("w1", "--threads 1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(run_pipeline("w2", "--threads 2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(run_pipeline("w4", "--threads 4", err, sizeof err), 0, "%s", err);
    /* every chunk read whole, as for a block that cannot be held */
    setenv("STRATA_GOLD_WHOLE_CHUNKS", "1", 1);
    cr_assert_eq(run_pipeline("ww", "--threads 2", err, sizeof err), 0, "%s", err);
    unsetenv("STRATA_GOLD_WHOLE_CHUNKS");
    unsetenv("STRATA_GOLD_PATH");
    cr_assert_eq(run_pipeline("wa", "--threads 2", err, sizeof err), 0, "%s", err);
    /* the sort-based gold path and the per-row staging path: the
     * specifications the fused pass and the chunk path must equal */
    setenv("STRATA_GOLD_SORT", "1", 1);
    setenv("STRATA_STAGE_ROWWISE", "1", 1);
    cr_assert_eq(run_pipeline("ws", "--threads 2", err, sizeof err), 0, "%s", err);
    unsetenv("STRATA_GOLD_SORT");
    unsetenv("STRATA_STAGE_ROWWISE");
    cr_assert_eq(run_pipeline("wm", "--threads 2 --memory-limit 64K", err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/w2/_runs/latest.json", dir);
    char *log = fx_slurp(p, &len);
    cr_assert_not_null(strstr(log, "one fused pass"), "%s", log);
    free(log);
    snprintf(p, sizeof p, "%s/ws/_runs/latest.json", dir);
    log = fx_slurp(p, &len);
    cr_assert_null(strstr(log, "one fused pass"), "%s", log);
    free(log);
    assert_same_files("w1", "w2");
    assert_same_files("w1", "w4");
    assert_same_files("w1", "ww");
    assert_same_files("w1", "ws");
    assert_same_files("w1", "wm");
    /* left to choose (by lines per histogram bin), either path writes the
     * same bytes */
    assert_same_files("w1", "wa");
}

Test(pipeline, fused_gold_and_chunk_stage_write_the_same_files_as_the_reference_paths)
{
    build_fixture(5500, 1, "Customer"); /* bad rows of every kind in the last chunk */
    fused_and_reference_paths_agree();
}

/* The two transaction tables, empty, with the source's columns. */
static void create_tx_tables(sqlite3 *db)
{
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity INTEGER);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity_foc INTEGER);");
}

/* Transactions in month order over 24 months, 200,000 lines: chunks of
 * 65,536 lines then span several months each, the case where the fused
 * pass takes both tables' lines month by month inside a chunk; FOC lines
 * are out of order one in seven (its chunks then are not in period_key
 * order, and their zone maps bound the sealing). Then 140,000 sales lines
 * of one early month arrive late (a backfill): chunks after the ordered
 * ones, one of them in order, that start in a month the first chunk has
 * passed, so that month must stay open until they are read. */
static void make_ordered_transactions(const char *path, size_t n)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    create_tx_tables(db);
    fx_exec_sql(db, "BEGIN");
    sqlite3_stmt *ins[2];
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO sales_qty VALUES (?,?,?,?,?)", -1, &ins[0], NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO foc_qty VALUES (?,?,?,?,?)", -1, &ins[1], NULL), SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        int foc = rnd() % 3 == 0, m = (int)(i * 24 / n);
        if (foc && rnd() % 7 == 0) m = (int)(rnd() % 24);
        char mat[16];
        snprintf(mat, sizeof mat, "MAT%04d", (int)(rnd() % 40));
        sqlite3_stmt *st = ins[foc];
        sqlite3_bind_int64(st, 1, 1 + (int64_t)(rnd() % 12));
        sqlite3_bind_int(st, 2, 2021 + m / 12);
        sqlite3_bind_int(st, 3, 1 + m % 12);
        sqlite3_bind_text(st, 4, mat, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, (int64_t)(rnd() % 50));
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    for (size_t i = 0; i < 140000; i++) {
        sqlite3_bind_int64(ins[0], 1, 1 + (int64_t)(rnd() % 12));
        sqlite3_bind_int(ins[0], 2, 2021);
        sqlite3_bind_int(ins[0], 3, 4);
        sqlite3_bind_text(ins[0], 4, "MAT0003", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins[0], 5, (int64_t)(rnd() % 50));
        cr_assert_eq(sqlite3_step(ins[0]), SQLITE_DONE);
        sqlite3_reset(ins[0]);
    }
    sqlite3_finalize(ins[0]);
    sqlite3_finalize(ins[1]);
    fx_exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

Test(pipeline, fused_gold_over_chunks_spanning_months_writes_the_reference_files)
{
    char c[400], t[400];
    snprintf(c, sizeof c, "%s/customers.db", dir);
    snprintf(t, sizeof t, "%s/tx.db", dir);
    make_customers(c, "Customer");
    make_ordered_transactions(t, 200000);
    fused_and_reference_paths_agree();
    char wh[400];
    snprintf(wh, sizeof wh, "%s/w1", dir);
    for (int k = 0; k < 2; k++) {
        st_reader *r = open_table(wh, "silver", k ? "stg_foc_transactions" : "stg_sales_transactions");
        int pk = st_reader_find(r, "period_key");
        st_block_info bi;
        cr_assert_geq(st_reader_n_chunks(r), 2, "table %d: %zu chunks", k, st_reader_n_chunks(r));
        cr_assert_eq(st_reader_block_info(r, 0, (size_t)pk, &bi), ST_OK);
        cr_assert(bi.has_minmax && bi.max_i64 - bi.min_i64 >= 2, "table %d: chunk 0 spans several months", k);
        st_reader_close(r);
    }
}

/* Sales quantities near 10^9, the largest staging keeps, all within a
 * thousand of each other (so the fused pass applies): a customer's month
 * of one material sums past int32, the width of the fused pass's unified
 * rows. The step takes the st_features path and writes the sort path's
 * files, the sums exact. */
Test(pipeline, unified_sums_past_int32_take_the_reference_path)
{
    char c[400], t[400], err[4096], p[600];
    snprintf(c, sizeof c, "%s/customers.db", dir);
    snprintf(t, sizeof t, "%s/tx.db", dir);
    make_customers(c, "Customer");
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(t, &db), SQLITE_OK);
    create_tx_tables(db);
    fx_exec_sql(db, "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 1999) "
                    "INSERT INTO sales_qty SELECT 1 + n % 5, 2021, 1 + n % 6, 'MAT' || (n % 10), 999999000 + (n * 7) % 1000 FROM i;");
    fx_exec_sql(db, "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 499) "
                    "INSERT INTO foc_qty SELECT 1 + n % 5, 2021, 1 + n % 6, 'MAT' || (n % 7), 1 + n % 50 FROM i;");
    sqlite3_close(db);
    setenv("STRATA_GOLD_PATH", "fused", 1);
    cr_assert_eq(run_pipeline("w1", "--threads 2", err, sizeof err), 0, "%s", err);
    unsetenv("STRATA_GOLD_PATH");
    setenv("STRATA_GOLD_SORT", "1", 1);
    cr_assert_eq(run_pipeline("ws", "--threads 2", err, sizeof err), 0, "%s", err);
    unsetenv("STRATA_GOLD_SORT");
    assert_same_files("w1", "ws");
    snprintf(p, sizeof p, "%s/w1/_runs/latest.json", dir);
    char *log = fx_slurp(p, NULL);
    cr_assert_null(strstr(log, "one fused pass"), "%s", log);
    free(log);
    snprintf(p, sizeof p, "%s/w1", dir);
    st_reader *r = open_table(p, "gold", "int_transactions_unified");
    st_column q;
    st_column_init(&q, ST_TYPE_I64);
    read_col(r, "sold_qty", &q);
    int64_t hi = 0;
    for (size_t i = 0; i < q.n_rows; i++) hi = st_column_i64(&q)[i] > hi ? st_column_i64(&q)[i] : hi;
    /* 2,000 lines over 5 x 6 x 10 cells of 10 materials: some of ~7 lines of ~10^9 */
    cr_assert_gt(hi, (int64_t)INT32_MAX, "a sum past int32: %lld", (long long)hi);
    st_column_free(&q);
    st_reader_close(r);
}

Test(pipeline, chunk_stage_flags_typed_bad_rows_like_the_per_row_path)
{
    fixture_typed_bad = 1;
    build_fixture(5500, 0, "Customer"); /* one chunk, every required block uniformly typed, with bad rows */
    fixture_typed_bad = 0;
    fused_and_reference_paths_agree();
    char err[4096];
    cr_assert_eq(run_pipeline("w1", "--only stage --force", err, sizeof err), 0, "%s", err);
    char wh[400];
    snprintf(wh, sizeof wh, "%s/w1", dir);
    st_reader *r = open_table(wh, "silver", "stg_rejects");
    st_column src;
    st_column_init(&src, ST_TYPE_STR);
    read_col(r, "source_table", &src);
    size_t n_tx = 0;
    for (size_t i = 0; i < src.n_rows; i++) {
        size_t l;
        const char *t = st_column_str(&src, i, &l);
        n_tx += !(l == 12 && !memcmp(t, "raw_customer", 12));
    }
    cr_assert_eq(n_tx, 6, "%zu transaction rejects", n_tx);
    st_column_free(&src);
    st_reader_close(r);
}

/* Rewrites silver.stg_sales_transactions of warehouse `wh` with row `row`'s
 * period_key set to `pk` (same schema, footer and chunking otherwise). */
static void damage_period(const char *wh, size_t row, int32_t pk)
{
    char path[600], tmp[640];
    snprintf(path, sizeof path, "%s/%s/silver/stg_sales_transactions.strata", dir, wh);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    st_reader *r = NULL;
    st_error e = {0};
    cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
    size_t nf = st_reader_n_fields(r);
    st_field fields[32];
    st_column cols[32];
    cr_assert_leq(nf, 32);
    for (size_t j = 0; j < nf; j++) {
        fields[j] = *st_reader_field(r, j);
        st_column_init(&cols[j], fields[j].type);
    }
    cr_assert_eq(st_reader_read_all(r, NULL, 0, cols, &e), ST_OK, "%s", e.msg);
    size_t ip = nf;
    for (size_t j = 0; j < nf; j++)
        if (!strcmp(fields[j].name, "period_key")) ip = j;
    cr_assert_lt(ip, nf);
    cr_assert_lt(row, cols[ip].n_rows);
    ((int32_t *)cols[ip].data)[row] = pk;
    st_writer *w = NULL;
    cr_assert_eq(st_writer_open(&w, tmp, fields, nf, st_reader_meta(r), NULL, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_writer_write(w, cols, 0, cols[0].n_rows, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_writer_close(w, &e), ST_OK, "%s", e.msg);
    for (size_t j = 0; j < nf; j++) st_column_free(&cols[j]);
    st_reader_close(r);
    cr_assert_eq(rename(tmp, path), 0);
}

/* A silver file that passes its checksums but holds a line staging never
 * writes (a period that is not a month): both gold paths stop with exit 6
 * and the same message, naming the table and the row of the file. */
Test(pipeline, a_line_staging_never_writes_is_named_by_table_and_row_in_both_gold_paths)
{
    build_fixture(3000, 0, "Customer");
    char err[4096], err1[4096];
    cr_assert_eq(run_pipeline("w1", "", err, sizeof err), 0, "%s", err);
    damage_period("w1", 1234, 202113);
    cr_assert_eq(run_pipeline("w1", "--from intermediate --force", err1, sizeof err1), 6, "%s", err1);
    cr_assert_not_null(strstr(err1, "silver.stg_sales_transactions row 1234: period_key 202113 is not a month"), "%s",
                       err1);
    cr_assert_eq(run_pipeline("w1", "--from intermediate --force --memory-limit 64K", err, sizeof err), 6, "%s", err);
    cr_assert_str_eq(err, err1, "the same message from both paths");
}

Test(pipeline, missing_required_column_is_a_clear_error_and_writes_nothing)
{
    char c[400], t[400];
    snprintf(c, sizeof c, "%s/customers.db", dir);
    snprintf(t, sizeof t, "%s/tx.db", dir);
    make_customers(c, "Customer");
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(t, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity_foc INTEGER);");
    sqlite3_close(db);
    char err[4096];
    int rc = run_pipeline("wh", "", err, sizeof err);
    cr_assert_eq(rc, 3, "exit code for a missing column is 3, got %d: %s", rc, err);
    cr_assert_not_null(strstr(err, "quantity"), "message names the column: %s", err);
    cr_assert_not_null(strstr(err, "sales_qty"), "message names the table: %s", err);
    char p[600];
    snprintf(p, sizeof p, "%s/wh/bronze", dir);
    struct stat sb;
    cr_assert_neq(stat(p, &sb), 0, "no layer files after a failed ingest");
}

Test(pipeline, bad_sources_give_documented_exit_codes)
{
    char err[4096], args[2000];
    snprintf(args, sizeof args, "run --customers %s/nope.db --transactions %s/nope.db --warehouse %s/wh --quiet", dir, dir, dir);
    cr_assert_eq(strata(args, err, sizeof err), 3, "%s", err);
    cr_assert_not_null(strstr(err, "nope.db"), "%s", err);
    char p[300];
    snprintf(p, sizeof p, "%s/junk.db", dir);
    FILE *f = fopen(p, "w");
    fputs("this is not a database, just text that is long enough to look like a header......\n", f);
    fclose(f);
    snprintf(args, sizeof args, "run --customers %s --transactions %s --warehouse %s/wh --quiet", p, p, dir);
    cr_assert_eq(strata(args, err, sizeof err), 3, "%s", err);
    cr_assert_not_null(strstr(err, "junk.db"), "%s", err);
    build_fixture(50, 0, "Customer");
    snprintf(args, sizeof args, "run --customers %s/customers.db --transactions %s/tx.db --sales-table nosuch --warehouse %s/wh --quiet", dir, dir, dir);
    cr_assert_eq(strata(args, err, sizeof err), 3, "%s", err);
    cr_assert_not_null(strstr(err, "nosuch"), "%s", err);
}

Test(pipeline, empty_tables_run_to_the_end)
{
    char c[400], t[400];
    snprintf(c, sizeof c, "%s/customers.db", dir);
    snprintf(t, sizeof t, "%s/tx.db", dir);
    make_customers(c, "Customer");
    make_transactions(t, 0, 0);
    char err[4096];
    int rc = run_pipeline("wh", "", err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    char wh[400];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    cr_assert_eq(table_rows(wh, "gold", "int_customer_analytics"), 0);
    cr_assert_eq(table_rows(wh, "platinum", "dim_customers"), 8);
    cr_assert_eq(table_rows(wh, "platinum", "fct_transactions"), 0);
    cr_assert_eq(table_rows(wh, "platinum", "ml_centroids"), 0);
}

/* platinum.fct_transactions, which the ml step writes chunk by chunk from
 * a second read of gold, is gold row for row and value for value (schema
 * included) plus a cluster in 0..k-1 and that cluster's persona as
 * ml_centroids names it; the clusters' row counts are ml_centroids' sizes. */
Test(pipeline, fct_transactions_is_gold_plus_each_rows_cluster_and_persona)
{
    build_fixture(3000, 1, "customers");
    char err[4096];
    cr_assert_eq(run_pipeline("wh", "--threads 2", err, sizeof err), 0, "%s", err);
    char wh[400];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    st_reader *g = open_table(wh, "gold", "int_customer_analytics");
    st_reader *f = open_table(wh, "platinum", "fct_transactions");
    st_reader *m = open_table(wh, "platinum", "ml_centroids");
    size_t n = st_reader_n_rows(g);
    cr_assert_gt(n, 0);
    cr_assert_eq(st_reader_n_rows(f), n);
    cr_assert_eq(st_reader_n_fields(f), st_reader_n_fields(g) + 2);
    for (size_t j = 0; j < st_reader_n_fields(g); j++) {
        const st_field *a = st_reader_field(g, j), *b = st_reader_field(f, j);
        cr_assert_str_eq(a->name, b->name);
        cr_assert_eq(a->type, b->type, "column %s", a->name);
        cr_assert_eq(a->nullable, b->nullable, "column %s", a->name);
        st_column x, y;
        read_col(g, a->name, &x);
        read_col(f, a->name, &y);
        cr_assert_eq(x.n_rows, y.n_rows);
        size_t w = st_type_width(x.type);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(st_column_valid(&x, i), st_column_valid(&y, i), "%s row %zu validity", a->name, i);
            if (st_column_valid(&x, i))
                cr_assert(!memcmp((const char *)x.data + i * w, (const char *)y.data + i * w, w), "%s row %zu",
                          a->name, i);
        }
        st_column_free(&x);
        st_column_free(&y);
    }
    st_column cl, pe, mc, mp, ms;
    read_col(f, "cluster", &cl);
    read_col(f, "persona", &pe);
    read_col(m, "cluster", &mc);
    read_col(m, "persona", &mp);
    read_col(m, "size", &ms);
    size_t k = mc.n_rows;
    cr_assert_eq(k, 2, "the fixture runs with --k 2");
    int64_t count[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int32_t c = st_column_i32(&cl)[i];
        cr_assert(c >= 0 && (size_t)c < k, "row %zu cluster %d", i, c);
        cr_assert_eq(st_column_i32(&mc)[c], c);
        size_t la, lb;
        const char *a = st_column_str(&pe, i, &la), *b = st_column_str(&mp, (size_t)c, &lb);
        cr_assert(la == lb && !memcmp(a, b, la), "row %zu persona %.*s, cluster %d is %.*s", i, (int)la, a, c,
                  (int)lb, b);
        count[c]++;
    }
    for (size_t c = 0; c < k; c++) cr_expect_eq(count[c], st_column_i64(&ms)[c], "cluster %zu size", c);
    st_column_free(&cl);
    st_column_free(&pe);
    st_column_free(&mc);
    st_column_free(&mp);
    st_column_free(&ms);
    st_reader_close(g);
    st_reader_close(f);
    st_reader_close(m);
}

/* ---- the default demo data against an independent computation ---- */

typedef struct src_line {
    int64_t cust;
    int32_t pk;
    int64_t qty;
    int32_t mat;  /* index into a per-test material table */
    uint8_t foc;
} src_line;

static int cmp_line(const void *a, const void *b)
{
    const src_line *x = a, *y = b;
    if (x->cust != y->cust) return x->cust < y->cust ? -1 : 1;
    if (x->pk != y->pk) return x->pk < y->pk ? -1 : 1;
    if (x->foc != y->foc) return x->foc < y->foc ? -1 : 1;
    return (x->qty > y->qty) - (x->qty < y->qty);
}

static double med_sorted(const src_line *v, size_t n)
{
    return n % 2 ? (double)v[n / 2].qty : ((double)v[n / 2 - 1].qty + (double)v[n / 2].qty) / 2.0;
}

/* The gold files of warehouse wh rebuilt from source tx with --threads 1
 * and 3 (copies of wh) are its bytes: on the demo data the unified file
 * is several chunks (178K rows), made and encoded by every thread. */
static void assert_gold_same_with_threads(const char *tx, const char *wh, char *args, size_t cap, char *err,
                                          size_t errlen)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        char wt[400];
        snprintf(wt, sizeof wt, "%s/wh_t%d", dir, threads);
        snprintf(args, cap,
                 "run --customers data/chinook.db --transactions %s --warehouse %s --quiet --no-report --only intermediate --force --threads %d",
                 tx, wt, threads);
        char copy[1200];
        snprintf(copy, sizeof copy, "cp -r %s %s", wh, wt);
        cr_assert_eq(system(copy), 0);
        cr_assert_eq(strata(args, err, errlen), 0, "%s", err);
        for (int f = 0; f < 2; f++) {
            static const char *const gold[2] = {"int_transactions_unified", "int_customer_analytics"};
            char pa[600], pb[600];
            snprintf(pa, sizeof pa, "%s/gold/%s.strata", wh, gold[f]);
            snprintf(pb, sizeof pb, "%s/gold/%s.strata", wt, gold[f]);
            size_t la, lb;
            char *x = fx_slurp(pa, &la), *y = fx_slurp(pb, &lb);
            cr_assert(x && y && la == lb && memcmp(x, y, la) == 0, "gold.%s differs with --threads %d", gold[f],
                      threads);
            free(x);
            free(y);
        }
    }
}

/* Every line of both tables of source tx, read with SQLite itself, into
 * v (caller frees), sorted by cmp_line; materials numbered by first
 * appearance (at most 1,000). */
static src_line *read_source_lines(const char *tx, size_t *n_out)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(tx, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    size_t cap = 1100000, n = 0;
    src_line *v = malloc(cap * sizeof *v);
    char (*mats)[16] = calloc(1000, sizeof *mats);
    int n_mats = 0;
    const char *q[2] = {"SELECT customer_id, year, month, material_code, quantity FROM sales_qty",
                        "SELECT customer_id, year, month, material_code, quantity_foc FROM foc_qty"};
    for (int t = 0; t < 2; t++) {
        sqlite3_stmt *st;
        cr_assert_eq(sqlite3_prepare_v2(db, q[t], -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            cr_assert_lt(n, cap);
            src_line *l = &v[n++];
            l->cust = sqlite3_column_int64(st, 0);
            l->pk = sqlite3_column_int(st, 1) * 100 + sqlite3_column_int(st, 2);
            const char *m = (const char *)sqlite3_column_text(st, 3);
            int k = 0;
            while (k < n_mats && strcmp(mats[k], m)) k++;
            cr_assert_lt(k, 1000);
            if (k == n_mats) snprintf(mats[n_mats++], 16, "%s", m);
            l->mat = k;
            l->qty = sqlite3_column_int64(st, 4);
            l->foc = (uint8_t)t;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    free(mats);
    qsort(v, n, sizeof *v, cmp_line);
    *n_out = n;
    return v;
}

/* The customer-period group v[a, b) (sales lines first, then FOC) against
 * row `row` of the analytics columns c. */
static void assert_group(const st_column *c, size_t row, const src_line *v, size_t a, size_t b)
{
    size_t s_end = a;
    while (s_end < b && v[s_end].foc == 0) s_end++;
    int64_t sold = 0, foc = 0;
    for (size_t i = a; i < s_end; i++) sold += v[i].qty;
    for (size_t i = s_end; i < b; i++) foc += v[i].qty;
    uint8_t seen[1000] = {0};
    int64_t uniq = 0;
    for (size_t i = a; i < b; i++)
        if (!seen[v[i].mat]) {
            seen[v[i].mat] = 1;
            uniq++;
        }
    cr_assert_eq(st_column_i64(&c[0])[row], v[a].cust, "row %zu customer", row);
    cr_assert_eq(st_column_i32(&c[1])[row], v[a].pk, "row %zu period", row);
    cr_assert_eq(st_column_i64(&c[2])[row], sold, "row %zu sold", row);
    cr_assert_eq(st_column_i64(&c[3])[row], foc, "row %zu foc", row);
    double ratio = sold + foc ? (double)foc / (double)(sold + foc) : 0.0;
    cr_assert(fabs(st_column_f64(&c[4])[row] - ratio) <= 1e-15, "row %zu foc_ratio", row);
    cr_assert_eq(st_column_i64(&c[5])[row], (int64_t)(s_end - a), "row %zu sold lines", row);
    cr_assert_eq(st_column_i64(&c[6])[row], (int64_t)(b - s_end), "row %zu foc lines", row);
    if (s_end > a) cr_assert(st_column_f64(&c[7])[row] == med_sorted(v + a, s_end - a), "row %zu median sold", row);
    else cr_assert(!st_column_valid(&c[7], row), "row %zu: no sales, NULL median", row);
    if (b > s_end) cr_assert(st_column_f64(&c[8])[row] == med_sorted(v + s_end, b - s_end), "row %zu median foc", row);
    else cr_assert(!st_column_valid(&c[8], row), "row %zu: no FOC, NULL median", row);
    cr_assert_eq(st_column_i64(&c[9])[row], uniq, "row %zu unique materials", row);
}

Test(pipeline, demo_data_features_equal_an_independent_computation, .timeout = 300)
{
    char tx[400], wh[400], args[1400], err[4096];
    snprintf(tx, sizeof tx, "%s/example.db", dir);
    snprintf(wh, sizeof wh, "%s/wh", dir);
    snprintf(args, sizeof args, "gen --out %s", tx); /* the defaults: 500,000 rows per table */
    cr_assert_eq(strata(args, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "run --customers data/chinook.db --transactions %s --warehouse %s --quiet --no-report", tx, wh);
    cr_assert_eq(strata(args, err, sizeof err), 0, "%s", err);

    size_t n = 0;
    src_line *v = read_source_lines(tx, &n);
    st_reader *r = open_table(wh, "gold", "int_customer_analytics");
    st_column c[10];
    const char *names[10] = {"customer_id", "period_key", "total_sold_quantity", "total_foc_quantity", "foc_ratio",
                             "total_sold_transactions", "total_foc_transactions", "median_sold_order_size",
                             "median_foc_order_size", "unique_materials"};
    for (int j = 0; j < 10; j++) read_col(r, names[j], &c[j]);
    size_t row = 0;
    for (size_t a = 0; a < n; row++) {
        size_t b = a;
        while (b < n && v[b].cust == v[a].cust && v[b].pk == v[a].pk) b++;
        cr_assert_lt(row, c[0].n_rows, "gold has fewer customer-periods than the source");
        assert_group(c, row, v, a, b);
        a = b;
    }
    cr_assert_eq(row, c[0].n_rows, "gold has more customer-periods than the source");
    for (int j = 0; j < 10; j++) st_column_free(&c[j]);
    st_reader_close(r);
    free(v);

    assert_gold_same_with_threads(tx, wh, args, sizeof args, err, sizeof err);
}

/* Stored chunks (bronze blocks passed through to silver): a generated
 * source of several chunks, most of them clean, some with the generator's
 * bad rows. The default run must pass chunks through and write the same
 * bytes in every layer as the per-row reference path. */
Test(pipeline, stored_chunks_write_the_same_files_as_the_per_row_path)
{
    char src[600], cmd[2400];
    snprintf(src, sizeof src, "%s/gen.db", dir);
    fx_gen_source(src, 400000, 7);
    sqlite3 *db; /* bad rows inside chunks in the middle of both tables */
    cr_assert_eq(sqlite3_open(src, &db), SQLITE_OK);
    fx_exec_sql(db, "UPDATE sales_qty SET year = 1900 WHERE rowid IN (100000, 100001);"
                    "UPDATE sales_qty SET quantity = 'many' WHERE rowid = 200000;"
                    "UPDATE foc_qty SET month = 13 WHERE rowid = 70000;"
                    "UPDATE foc_qty SET material_code = NULL WHERE rowid = 300000;");
    sqlite3_close(db);
    static const char *const runs[2][2] = {{"g1", ""}, {"gr", "STRATA_STAGE_ROWWISE=1 "}};
    for (int r = 0; r < 2; r++) {
        snprintf(cmd, sizeof cmd,
                 "%s%s run --customers data/chinook.db --transactions %s --warehouse %s/%s --quiet --no-report --k 2 "
                 "--threads 2 >/dev/null 2>&1",
                 runs[r][1], fx_bin(), src, dir, runs[r][0]);
        cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);
    }
    char p[700];
    size_t len;
    snprintf(p, sizeof p, "%s/g1/_runs/latest.json", dir);
    char *log = fx_slurp(p, &len);
    cr_assert_not_null(log);
    const char *note = strstr(log, "chunks passed through");
    cr_assert_not_null(note, "%s", log);
    const char *q = note;
    while (q > log && q[-1] != '"') q--; /* the note's start */
    q = strstr(q, "rejected, ") ? q : note;
    while (q < note && !(*q >= '0' && *q <= '9')) q++;
    unsigned long long rej = 0, stored = 0, chunks = 0;
    cr_assert_eq(sscanf(q, "%llu rejected, %llu of %llu", &rej, &stored, &chunks), 3, "%.80s", q);
    cr_assert_gt(stored, 0, "no chunk was passed through: %.80s", q);
    cr_assert_eq(rej, 5, "the five bad rows are rejected: %.80s", q);
    cr_assert_lt(stored, chunks, "the chunks with bad rows take the row path: %.80s", q);
    free(log);
    snprintf(p, sizeof p, "%s/gr/_runs/latest.json", dir);
    log = fx_slurp(p, &len);
    cr_assert_not_null(strstr(log, " 0 of "), "the reference run passed chunks through");
    free(log);
    assert_same_files("g1", "gr");
}
