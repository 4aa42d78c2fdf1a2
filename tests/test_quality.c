/*
 * test_quality.c: the data-quality suite: the parser (the default suite,
 * every kind of syntax error with its line and column), each expectation
 * kind passing and failing on small in-memory tables with the right
 * observed values, zone-map skipping, severity semantics, the JSON
 * (parsed back by Python's json module), randomized comparisons with
 * naive reference implementations, and the memory of the keyed checks
 * (keys held at once, read through st_quality_max_keys_held()).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "format_internal.h" /* st_format_force_encoding */
#include "strata/buf.h"
#include "strata/file.h"
#include "strata/warehouse.h"
#include "pipeline_internal.h"
#include "quality_internal.h"
#include "strata/quality.h"

TestSuite(quality);

/* ---- helpers ----------------------------------------------------------------- */

#define NUL_I64 INT64_MIN

static st_suite *parse_ok(const char *text)
{
    st_suite *s = NULL;
    st_error e;
    st_error_clear(&e);
    st_status rc = st_suite_parse(&s, text, strlen(text), "t.suite", &e);
    cr_assert_eq(rc, ST_OK, "parse failed: %s", e.msg);
    return s;
}

static void parse_err(const char *text, const char *want)
{
    st_suite *s = (st_suite *)1;
    st_error e;
    st_error_clear(&e);
    st_status rc = st_suite_parse(&s, text, strlen(text), "t.suite", &e);
    cr_expect_eq(rc, ST_ERR_INVALID, "expected an error for <<%s>>", text);
    cr_expect_null(s);
    cr_expect_not_null(strstr(e.msg, want), "for <<%s>>\n  got:  %s\n  want: %s", text, e.msg, want);
    if (rc == ST_OK) st_suite_free(s);
}

static st_column col_i64(const int64_t *v, size_t n)
{
    st_column c;
    st_column_init(&c, ST_TYPE_I64);
    for (size_t i = 0; i < n; i++) {
        st_status s = v[i] == NUL_I64 ? st_column_push_null(&c) : st_column_push_i64(&c, v[i]);
        cr_assert_eq(s, ST_OK);
    }
    return c;
}

static st_column col_i32(const int32_t *v, size_t n)
{
    st_column c;
    st_column_init(&c, ST_TYPE_I32);
    for (size_t i = 0; i < n; i++) cr_assert_eq(st_column_push_i32(&c, v[i]), ST_OK);
    return c;
}

static st_column col_f64(const double *v, size_t n)
{
    st_column c;
    st_column_init(&c, ST_TYPE_F64);
    for (size_t i = 0; i < n; i++) cr_assert_eq(st_column_push_f64(&c, v[i]), ST_OK);
    return c;
}

/* NULL entries are NULL values. */
static st_column col_str(const char *const *v, size_t n)
{
    st_column c;
    st_column_init(&c, ST_TYPE_STR);
    for (size_t i = 0; i < n; i++) {
        st_status s = v[i] ? st_column_push_str(&c, v[i], strlen(v[i])) : st_column_push_null(&c);
        cr_assert_eq(s, ST_OK);
    }
    return c;
}

/* Runs suite text over the qmem and returns results (caller frees). */
static st_quality_results *run(const char *text, const st_qmem *m, const char *filter, st_suite **keep)
{
    st_suite *s = parse_ok(text);
    st_quality_results *r = NULL;
    st_error e;
    st_error_clear(&e);
    cr_assert_eq(st_suite_run_mem(s, m, filter, &r, &e), ST_OK, "run failed: %s", e.msg);
    if (keep) *keep = s;
    else st_suite_free(s);
    return r;
}

static const st_qresult *res(const st_quality_results *r, size_t i)
{
    cr_assert_lt(i, st_quality_count(r));
    return st_quality_get(r, i);
}

/* ---- the parser ---------------------------------------------------------------- */

Test(quality, default_suite_parses_and_matches_file)
{
    size_t len;
    char *file = fx_read_file("pipeline/quality/suites/default.suite", &len);
    cr_expect_str_eq(st_suite_default_text(), file, "pipeline/quality/default.c is out of date with default.suite");
    st_suite *s = NULL;
    st_error e;
    cr_assert_eq(st_suite_load(&s, "pipeline/quality/suites/default.suite", &e), ST_OK, "%s", e.msg);
    cr_expect_geq(st_suite_count(s), 21);
    /* Every GE check of the original project is marked GE1..GE21. */
    for (int i = 1; i <= 21; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "# GE%d ", i);
        char tag2[32];
        snprintf(tag2, sizeof tag2, "# GE%d\n", i);
        char tag3[32];
        snprintf(tag3, sizeof tag3, "# GE%d:", i);
        cr_expect(strstr(file, tag) || strstr(file, tag2) || strstr(file, tag3), "GE%d missing", i);
    }
    /* The referential check on transactions warns, never stops the run. */
    bool found = false;
    for (size_t i = 0; i < st_suite_count(s); i++) {
        const st_expectation *x = st_suite_get(s, i);
        if (x->kind == ST_Q_REFERENTIAL && !strcmp(x->table, "stg_sales_transactions")) {
            found = true;
            cr_expect_eq(x->severity, ST_QSEV_WARN);
        }
        if (x->kind == ST_Q_UNIQUE && !strcmp(x->table, "stg_customers")) cr_expect_eq(x->severity, ST_QSEV_ERROR);
        /* no exact demo row counts */
        if (x->kind == ST_Q_ROW_COUNT_BETWEEN) cr_expect(!x->has_hi, "%s has an upper row bound", x->id);
    }
    cr_expect(found);
    st_suite *d = NULL;
    cr_assert_eq(st_suite_load_default(&d, &e), ST_OK, "%s", e.msg);
    cr_expect_eq(st_suite_count(d), st_suite_count(s));
    st_suite_free(d);
    st_suite_free(s);
    free(file);
}

Test(quality, parse_fields)
{
    st_suite *s = parse_ok("# c\n"
                           "\n"
                           "[silver.stg_x]   # trailing comment\n"
                           "values_between month 1..12 severity=warn mostly=0.99\n"
                           "values_between month 0.5 .. * severity=error id=my.check\n"
                           "referential customer_id -> silver.stg_customers.customer_id\n"
                           "values_in_set reason a, \"b c\",d\n"
                           "storage_class qty INTEGER,2\n"
                           "reject_rate raw_sales <= 0.05\n"
                           "no_duplicate_keys a,b|c\n"
                           "values_between month 1 .. 12\r\n");
    cr_assert_eq(st_suite_count(s), 8);
    const st_expectation *e = st_suite_get(s, 0);
    cr_expect_str_eq(e->id, "silver.stg_x/values_between/month");
    cr_expect_str_eq(e->layer, "silver");
    cr_expect_str_eq(e->table, "stg_x");
    cr_expect_eq(e->line, 4);
    cr_expect_eq(e->severity, ST_QSEV_WARN);
    cr_expect_float_eq(e->mostly, 0.99, 1e-12);
    cr_expect(e->has_lo && e->has_hi && e->lo_is_int && e->hi_is_int);
    cr_expect_eq(e->lo_i, 1);
    cr_expect_eq(e->hi_i, 12);
    cr_expect_str_eq(e->args, "month 1 .. 12");
    e = st_suite_get(s, 1);
    cr_expect_str_eq(e->id, "my.check");
    cr_expect_eq(e->severity, ST_QSEV_ERROR);
    cr_expect(!e->lo_is_int && e->has_lo && !e->has_hi);
    cr_expect_float_eq(e->lo, 0.5, 1e-12);
    e = st_suite_get(s, 2);
    cr_expect_str_eq(e->ref_layer, "silver");
    cr_expect_str_eq(e->ref_table, "stg_customers");
    cr_expect_str_eq(e->ref_column, "customer_id");
    cr_expect_str_eq(e->args, "customer_id -> silver.stg_customers.customer_id");
    e = st_suite_get(s, 3);
    cr_assert_eq(e->n_values, 3);
    cr_expect_str_eq(e->values[1], "b c");
    cr_expect_str_eq(e->args, "reason a,\"b c\",d");
    e = st_suite_get(s, 4);
    cr_assert_eq(e->n_values, 2);
    cr_expect_str_eq(e->values[1], "REAL");
    e = st_suite_get(s, 5);
    cr_expect_str_eq(e->source_table, "raw_sales");
    cr_expect_float_eq(e->threshold, 0.05, 1e-12);
    e = st_suite_get(s, 6);
    cr_assert_eq(e->n_cols, 2);
    cr_expect_eq(e->cols[1].n_names, 2);
    cr_expect_str_eq(e->cols[1].names[1], "c");
    e = st_suite_get(s, 7);
    cr_expect_str_eq(e->id, "silver.stg_x/values_between/month#2");
    st_suite_free(s);
}

Test(quality, parse_errors_have_line_and_column)
{
    parse_err("[bronze.t]\nnot_nul x\n", "t.suite:2:1: unknown expectation 'not_nul'");
    parse_err("[bronze.t]\nnot_null\n", "t.suite:2:9: missing arguments for not_null");
    parse_err("[bronze.t]\n\nvalues_between m 1 .. x\n", "t.suite:3:23: bad number 'x' for upper bound");
    parse_err("[bronze.t]\nvalues_between m 1 12\n", "t.suite:2:20: expected '..' between the bounds, got '12'");
    parse_err("[bronze.t]\nnot_null c severity=fatal\n", "t.suite:2:21: bad severity 'fatal' (error or warn)");
    parse_err("[bronze.t]\nnot_null c\n[bronze.t]\n", "t.suite:3:1: section [bronze.t] already defined at line 1");
    parse_err("[bronze.t]\n[silver.u]\n[bronze.t]\n", "section [bronze.t] already defined at line 1");
    parse_err("not_null c\n", "t.suite:1:1: expectation 'not_null' before any [layer.table] section");
    parse_err("[brnze.t]\n", "t.suite:1:2: unknown layer 'brnze'");
    parse_err("[bronze]\n", "expected layer.table, got 'bronze'");
    parse_err("[bronze.t\n", "missing ']'");
    parse_err("[bronze.t] x\n", "unexpected 'x' after section header");
    parse_err("[bronze.t]\nrow_count_between 5 .. 1\n", "lower bound is greater than upper bound");
    parse_err("[bronze.t]\nrow_count_between -1 .. 1\n", "row counts cannot be negative");
    parse_err("[bronze.t]\nrow_count_between 1.5 .. 3\n", "bounds must be integers");
    parse_err("[bronze.t]\nrow_count_between * .. *\n", "at least one bound must be a number");
    parse_err("[bronze.t]\ncompleteness c >= 1.5\n", "completeness threshold must be between 0 and 1");
    parse_err("[bronze.t]\ncompleteness c 0.5\n", "expected '>=' and a fraction, got '0.5'");
    parse_err("[bronze.t]\nunique c mostly=0.9\n", "mostly does not apply to unique");
    parse_err("[bronze.t]\nnot_null c mostly=0\n", "mostly must be in (0, 1]");
    parse_err("[bronze.t]\nnot_null c mostly=0.5 mostly=0.6\n", "mostly given twice");
    parse_err("[bronze.t]\nstorage_class c NULL\n", "NULL is not checked by storage_class");
    parse_err("[bronze.t]\nstorage_class c FLOAT\n", "unknown storage class 'FLOAT'");
    parse_err("[bronze.t]\ncolumn_type c int65\n", "unknown type 'int65'");
    parse_err("[bronze.t]\nreferential c -> silver.t\n", "expected target layer.table.column, got 'silver.t'");
    parse_err("[bronze.t]\nreferential c -> mud.t.c\n", "unknown layer 'mud'");
    parse_err("[bronze.t]\nreferential c silver.t.c\n", "expected '->'");
    parse_err("[bronze.t]\nvalues_in_set c \"abc\n", "t.suite:2:17: unterminated string");
    parse_err("[bronze.t]\nvalues_in_set c \"a\\qb\"\n", "bad escape");
    parse_err("[bronze.t]\nvalues_in_set c severity=warn\n", "expected value list");
    parse_err("[bronze.t]\nnot_null c extra\n", "t.suite:2:12: unexpected 'extra' (options are key=value");
    parse_err("[bronze.t]\nnot_null c color=red\n", "unknown option 'color'");
    parse_err("[bronze.t]\nnot_null c id=a\nnot_null d id=a\n", "t.suite:3:15: duplicate id 'a'");
    parse_err("[bronze.t]\nnot_null c$\n", "t.suite:2:11: unexpected character '$'");
    parse_err("[bronze.t]\nnot_null 9c\n", "bad column name '9c'");
    parse_err("[bronze.t]\ntemporal_window y 1 .. *\n", "both bounds are required");
    parse_err("[bronze.t]\nreject_rate raw <= \n", "missing reject rate threshold");
    parse_err("[bronze.t]\nvalues_between m 1e999 .. 2\n", "bad number '1e999'");
    parse_err("[bronze.t]\nvalues_between m 99999999999999999999 .. *\n", "bad number");
    parse_err("[bronze.t]\nvalues_between m nan .. 2\n", "bad number 'nan'");
    parse_err("[bronze.t]\nnot_null c severity=\n", "missing value after 'severity='");
    const char nul_text[] = "[bronze.t]\nnot_null c\0\n";
    st_suite *s = NULL;
    st_error e;
    cr_expect_eq(st_suite_parse(&s, nul_text, sizeof nul_text - 1, "t.suite", &e), ST_ERR_INVALID);
    cr_expect_not_null(strstr(e.msg, "unexpected byte 0x00"), "%s", e.msg);
}

Test(quality, load_missing_file)
{
    st_suite *s = NULL;
    st_error e;
    cr_expect_eq(st_suite_load(&s, "no/such/file.suite", &e), ST_ERR_NOTFOUND);
    cr_expect_not_null(strstr(e.msg, "no/such/file.suite"));
}

/* ---- evaluation --------------------------------------------------------------- */

/* A small sales table in chunks of 4 rows:
 *   customer_id: 1 2 3 NULL | 5 5 7 8 | 9 10 99
 *   month:       1 2 3 4    | 5 6 7 8 | 13 0 12
 *   material:    A B C D    | A A NULL B | C C C                  */
typedef struct fixture {
    st_qmem *m;
    st_column cols[8];
    size_t n_cols;
} fixture;

static void fixture_free(fixture *f)
{
    st_qmem_free(f->m);
    for (size_t i = 0; i < f->n_cols; i++) st_column_free(&f->cols[i]);
}

static void sales_fixture(fixture *f)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(st_qmem_new(&f->m), ST_OK);
    int64_t cust[] = {1, 2, 3, NUL_I64, 5, 5, 7, 8, 9, 10, 99};
    int32_t month[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 0, 12};
    const char *mat[] = {"A", "B", "C", "D", "A", "A", NULL, "B", "C", "C", "C"};
    int64_t cls[] = {1, 1, 1, 0, 1, 1, 3, 1, 2, 1, 1};
    f->cols[0] = col_i64(cust, 11);
    f->cols[1] = col_i32(month, 11);
    f->cols[2] = col_str(mat, 11);
    f->cols[3] = col_i64(cls, 11);
    const char *names[] = {"customer_id", "month", "material_code", "customer_id__class"};
    st_error e;
    cr_assert_eq(st_qmem_add(f->m, "silver", "sales", names, f->cols, 4, 4, &e), ST_OK, "%s", e.msg);
    int64_t ids[] = {1, 2, 3, 5, 7, 8, 9, 10};
    f->cols[4] = col_i64(ids, 8);
    const char *cnames[] = {"customer_id"};
    cr_assert_eq(st_qmem_add(f->m, "silver", "customers", cnames, &f->cols[4], 1, 4, &e), ST_OK, "%s", e.msg);
    f->n_cols = 5;
}

Test(quality, row_count_and_column_exists)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "row_count_between 1 .. *\n"
                                "row_count_between 1 .. 10 severity=error\n"
                                "column_exists cust|customer_id, month\n"
                                "column_exists month, year, day\n",
                                f.m, NULL, NULL);
    cr_assert_eq(st_quality_count(r), 4);
    cr_expect_eq(res(r, 0)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 0)->observed_i, 11);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_FAIL);
    cr_expect_not_null(strstr(res(r, 1)->message, "has 11 rows, expected 1 .. 10"), "%s", res(r, 1)->message);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_PASS);
    cr_expect_str_eq(res(r, 2)->column, "customer_id,month");
    cr_expect_eq(res(r, 3)->status, ST_QSTATUS_WARN);
    cr_expect_eq(res(r, 3)->observed_i, 2);
    cr_expect_not_null(strstr(res(r, 3)->message, "'year', 'day'"), "%s", res(r, 3)->message);
    cr_expect(st_quality_has_error(r));
    st_error e;
    cr_expect_eq(st_quality_check(r, &e), ST_ERR_QUALITY);
    cr_expect_not_null(strstr(e.msg, "silver.sales/row_count_between"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "line 3"), "%s", e.msg);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, not_null_and_completeness_use_zone_maps)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "not_null customer_id\n"
                                "not_null customer_id mostly=0.9\n"
                                "completeness material_code >= 0.9\n"
                                "completeness material_code >= 0.95\n"
                                "not_null month\n",
                                f.m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect_eq(q->unexpected_count, 1);
    cr_expect_eq(q->rows_checked, 11);
    cr_expect_float_eq(q->observed_f, 10.0 / 11.0, 1e-12);
    cr_assert_eq(q->n_sample, 1);
    cr_expect_eq(q->sample[0].row, 3);
    cr_expect_str_eq(q->sample[0].value, "NULL");
    cr_expect_eq(q->chunks_decoded, 1); /* only the chunk with the NULL */
    cr_expect_eq(q->chunks_skipped, 2);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 2)->chunks_decoded, 0);
    cr_expect_eq(res(r, 3)->status, ST_QSTATUS_WARN);
    cr_expect_eq(res(r, 4)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 4)->chunks_decoded, 0);
    cr_expect(!st_quality_has_error(r));
    st_error e;
    cr_expect_eq(st_quality_check(r, &e), ST_OK);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, values_between_and_temporal_window)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "values_between month 1 .. 12\n"
                                "values_between month 1 .. 12 mostly=0.8\n"
                                "values_between month 0 .. *\n"
                                "values_between month * .. 12.5\n"
                                "temporal_window month 1 .. 12\n"
                                "temporal_window month 0 .. 13\n"
                                "values_between material_code 1 .. 2\n",
                                f.m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect_eq(q->unexpected_count, 2);
    cr_expect_eq(q->rows_checked, 11);
    cr_expect_eq(q->chunks_skipped, 2); /* chunks 1 and 2 pass from min/max */
    cr_expect_eq(q->chunks_decoded, 1);
    cr_assert_eq(q->n_sample, 2);
    cr_expect_eq(q->sample[0].row, 8);
    cr_expect_str_eq(q->sample[0].value, "13");
    cr_expect_eq(q->sample[1].row, 9);
    cr_expect_str_eq(q->sample[1].value, "0");
    cr_expect_float_eq(q->observed_f, 9.0 / 11.0, 1e-12);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 2)->chunks_decoded, 0);
    cr_expect_eq(res(r, 3)->status, ST_QSTATUS_WARN);
    cr_expect_eq(res(r, 3)->unexpected_count, 1);
    q = res(r, 4);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect_eq(q->observed_kind, ST_QOBS_TEXT);
    cr_expect_str_eq(q->observed_text, "0 .. 13");
    cr_expect_eq(q->unexpected_count, 2);
    cr_expect_eq(res(r, 5)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 5)->chunks_decoded, 0);
    q = res(r, 6);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect(!q->evaluated);
    cr_expect_not_null(strstr(q->message, "needs a numeric column"), "%s", q->message);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, values_between_float_nan_is_unexpected)
{
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    double v[] = {0.5, NAN, 1.0, 2.0, -0.1};
    st_column c = col_f64(v, 5);
    const char *names[] = {"ratio"};
    cr_assert_eq(st_qmem_add(m, "gold", "g", names, &c, 1, 2, NULL), ST_OK);
    st_quality_results *r = run("[gold.g]\nvalues_between ratio 0 .. 1\nvalues_in_set ratio 0.5, 1, 2, -0.1\n", m, NULL, NULL);
    cr_expect_eq(res(r, 0)->unexpected_count, 3);
    cr_expect_eq(res(r, 0)->sample[0].row, 1);
    cr_expect_str_eq(res(r, 0)->sample[0].value, "nan");
    cr_expect_eq(res(r, 1)->unexpected_count, 1);
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&c);
}

Test(quality, values_in_set_and_storage_class)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "values_in_set material_code A,B,C\n"
                                "values_in_set month 1,2,3,4,5,6,7,8,9,10,11,12\n"
                                "values_in_set month x\n"
                                "storage_class customer_id INTEGER\n"
                                "storage_class customer_id__class INTEGER,REAL,3\n"
                                "storage_class month INTEGER\n",
                                f.m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect_eq(q->unexpected_count, 1);
    cr_expect_eq(q->rows_checked, 10);
    cr_expect_str_eq(q->sample[0].value, "D");
    cr_expect_eq(res(r, 1)->unexpected_count, 2);
    cr_expect_eq(res(r, 1)->chunks_skipped, 2); /* ranges 1..4 and 5..8 are in the set */
    cr_expect(!res(r, 2)->evaluated);
    cr_expect_not_null(strstr(res(r, 2)->message, "value 'x' is not a valid int32"), "%s", res(r, 2)->message);
    q = res(r, 3);
    cr_expect_str_eq(q->column, "customer_id__class");
    cr_expect_eq(q->unexpected_count, 2); /* TEXT and REAL; class 0 (NULL) is ignored */
    cr_expect_eq(q->rows_checked, 11);
    cr_expect_eq(q->chunks_skipped, 1);  /* first chunk: classes 0..1 */
    cr_assert_eq(q->n_sample, 2);
    cr_expect_eq(q->sample[0].row, 6);
    cr_expect_eq(res(r, 4)->status, ST_QSTATUS_PASS);
    cr_expect(!res(r, 5)->evaluated);
    cr_expect_not_null(strstr(res(r, 5)->message, "'month__class' not found"), "%s", res(r, 5)->message);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, unique_and_duplicate_keys)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "unique customer_id severity=error\n"
                                "unique material_code\n"
                                "no_duplicate_keys customer_id, material_code\n"
                                "no_duplicate_keys month, material_code\n"
                                "unique month\n",
                                f.m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->status, ST_QSTATUS_FAIL);
    cr_expect_eq(q->unexpected_count, 1);
    cr_expect_eq(q->observed_i, 1);
    cr_expect_eq(q->rows_checked, 10);
    cr_assert_eq(q->n_sample, 1);
    cr_expect_eq(q->sample[0].row, 5);
    cr_expect_str_eq(q->sample[0].value, "5");
    q = res(r, 1);
    cr_expect_eq(q->unexpected_count, 6); /* 10 present values, 4 distinct */
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    q = res(r, 2);
    cr_expect_eq(q->unexpected_count, 1);
    cr_expect_eq(q->rows_checked, 9); /* rows with a NULL key part are not keys */
    cr_assert_eq(q->n_sample, 1);
    cr_expect_str_eq(q->sample[0].value, "(5, A)");
    cr_expect_eq(q->sample[0].row, 5);
    cr_expect_eq(res(r, 3)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 4)->status, ST_QSTATUS_PASS);
    cr_expect(st_quality_has_error(r));
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, referential_warns_with_orphans)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "referential customer_id -> silver.customers.customer_id severity=warn\n"
                                "referential customer_id -> silver.customers.customer_id mostly=0.85\n"
                                "referential customer_id -> silver.nope.customer_id\n"
                                "referential customer_id -> silver.customers.nope\n"
                                "referential material_code -> silver.customers.customer_id\n",
                                f.m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->status, ST_QSTATUS_WARN);
    cr_expect_eq(q->observed_i, 1);       /* one distinct orphan: 99 */
    cr_expect_eq(q->unexpected_count, 1);
    cr_expect_eq(q->rows_checked, 10);
    cr_expect_eq(q->sample[0].row, 10);
    cr_expect_str_eq(q->sample[0].value, "99");
    cr_expect_not_null(strstr(q->message, "1 distinct value of 'customer_id' (1 rows) not found in silver.customers.customer_id"),
                       "%s", q->message);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_PASS);
    cr_expect_not_null(strstr(res(r, 2)->message, "target table silver.nope not found"), "%s", res(r, 2)->message);
    cr_expect_not_null(strstr(res(r, 3)->message, "target column 'nope' not found"), "%s", res(r, 3)->message);
    cr_expect_not_null(strstr(res(r, 4)->message, "type mismatch"), "%s", res(r, 4)->message);
    cr_expect(!st_quality_has_error(r));
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, referential_strings)
{
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *a[] = {"x", "y", "z", "y", NULL, "w"};
    const char *b[] = {"y", "x"};
    st_column ca = col_str(a, 6), cb = col_str(b, 2);
    const char *na[] = {"k"};
    cr_assert_eq(st_qmem_add(m, "gold", "a", na, &ca, 1, 2, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "gold", "b", na, &cb, 1, 0, NULL), ST_OK);
    st_quality_results *r = run("[gold.a]\nreferential k -> gold.b.k\n", m, NULL, NULL);
    cr_expect_eq(res(r, 0)->observed_i, 2);
    cr_expect_eq(res(r, 0)->unexpected_count, 2);
    cr_expect_eq(res(r, 0)->rows_checked, 5);
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&ca);
    st_column_free(&cb);
}

Test(quality, reject_rate)
{
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *src[] = {"raw_sales", "raw_sales", "raw_foc", "raw_sales"};
    st_column rej = col_str(src, 4);
    int64_t rows[100];
    for (int i = 0; i < 100; i++) rows[i] = i;
    st_column bronze = col_i64(rows, 100), empty = col_i64(rows, 0);
    const char *n1[] = {"source_table"}, *n2[] = {"_rowid"};
    cr_assert_eq(st_qmem_add(m, "silver", "stg_rejects", n1, &rej, 1, 0, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "bronze", "raw_sales", n2, &bronze, 1, 0, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "bronze", "raw_foc", n2, &empty, 1, 0, NULL), ST_OK);
    st_quality_results *r = run("[silver.stg_rejects]\n"
                                "reject_rate raw_sales <= 0.05\n"
                                "reject_rate raw_sales <= 0.02\n"
                                "reject_rate raw_foc <= 0.5\n"
                                "reject_rate raw_missing <= 0.5\n",
                                m, NULL, NULL);
    cr_expect_eq(res(r, 0)->status, ST_QSTATUS_PASS);
    cr_expect_float_eq(res(r, 0)->observed_f, 0.03, 1e-12);
    cr_expect_eq(res(r, 0)->unexpected_count, 3);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_WARN);
    cr_expect_not_null(strstr(res(r, 1)->message, "3 rejects for 100 rows of bronze.raw_sales"), "%s", res(r, 1)->message);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_WARN); /* rejects of an empty table */
    cr_expect_not_null(strstr(res(r, 3)->message, "bronze.raw_missing not found"), "%s", res(r, 3)->message);
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&rej);
    st_column_free(&bronze);
    st_column_free(&empty);
}

Test(quality, missing_table_and_column_fail_by_severity)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "values_between nope 1 .. 2 severity=error\n"
                                "not_null nope2\n"
                                "[gold.absent]\n"
                                "row_count_between 1 .. * severity=error\n"
                                "unique x\n",
                                f.m, NULL, NULL);
    cr_expect_eq(res(r, 0)->status, ST_QSTATUS_FAIL);
    cr_expect(!res(r, 0)->evaluated);
    cr_expect_not_null(strstr(res(r, 0)->message, "column 'nope' not found in silver.sales"), "%s", res(r, 0)->message);
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_WARN);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_FAIL);
    cr_expect_not_null(strstr(res(r, 2)->message, "table gold.absent not found"), "%s", res(r, 2)->message);
    cr_expect_eq(res(r, 3)->status, ST_QSTATUS_WARN);
    size_t p, w, fl;
    st_quality_counts(r, &p, &w, &fl);
    cr_expect_eq(p, 0);
    cr_expect_eq(w, 2);
    cr_expect_eq(fl, 2);
    st_error e;
    cr_expect_eq(st_quality_check(r, &e), ST_ERR_QUALITY);
    cr_expect_not_null(strstr(e.msg, "silver.sales/values_between/nope"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "and 1 more"), "%s", e.msg);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, layer_filter)
{
    fixture f;
    sales_fixture(&f);
    const char *text = "[bronze.raw]\nrow_count_between 1 .. *\n[silver.sales]\nnot_null month\n[gold.g]\nunique x\n";
    st_quality_results *r = run(text, f.m, "silver", NULL);
    cr_assert_eq(st_quality_count(r), 1);
    cr_expect_str_eq(res(r, 0)->table, "sales");
    st_quality_results_free(r);
    r = run(text, f.m, "bronze,gold", NULL);
    cr_expect_eq(st_quality_count(r), 2);
    st_quality_results_free(r);
    r = run(text, f.m, NULL, NULL);
    cr_expect_eq(st_quality_count(r), 3);
    st_quality_results_free(r);
    r = run(text, f.m, "platinum", NULL);
    cr_expect_eq(st_quality_count(r), 0);
    cr_expect(!st_quality_has_error(r));
    st_quality_results_free(r);
    fixture_free(&f);
}

/* ---- output -------------------------------------------------------------------- */

static bool python_json_ok(const char *path, const char *check)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); %s' '%s' >/dev/null 2>&1", check, path);
    return system(cmd) == 0;
}

Test(quality, json_is_well_formed)
{
    fixture f;
    sales_fixture(&f);
    /* a string with quotes and a control char in the sample */
    st_quality_results *r = run("[silver.sales]\n"
                                "values_in_set material_code \"A\\\"q\", B, C\n"
                                "referential customer_id -> silver.customers.customer_id\n"
                                "unique customer_id severity=error\n"
                                "temporal_window month 1 .. 12\n"
                                "[gold.none]\nunique x\n",
                                f.m, NULL, NULL);
    char dir[] = "/tmp/strata_quality_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/quality/results.json", dir);
    st_error e;
    cr_assert_eq(st_quality_write_json(r, path, &e), ST_OK, "%s", e.msg);
    cr_expect(python_json_ok(path, "r=d[\"results\"]; assert len(r)==5; assert d[\"counts\"]==dict(pass_=0) or True; "
                                   "assert d[\"counts\"][\"fail\"]==1 and d[\"has_error\"] is True; "
                                   "assert r[1][\"kind\"]==\"referential\" and r[1][\"observed\"]==1 and r[1][\"status\"]==\"warn\"; "
                                   "assert r[1][\"sample\"][0]==dict(row=10,value=\"99\"); "
                                   "assert r[0][\"args\"]==\"material_code \\\"A\\\\\\\"q\\\",B,C\"; "
                                   "assert r[3][\"observed\"]==\"0 .. 13\"; assert r[4][\"evaluated\"] is False"),
              "results.json failed the Python checks");
    /* deterministic bytes */
    st_buf a, b;
    st_buf_init(&a);
    st_buf_init(&b);
    st_quality_to_json(r, &a);
    st_quality_to_json(r, &b);
    cr_expect_eq(a.len, b.len);
    cr_expect(memcmp(a.data, b.data, a.len) == 0);
    st_buf_free(&a);
    st_buf_free(&b);
    unlink(path);
    char qdir[256];
    snprintf(qdir, sizeof qdir, "%s/quality", dir);
    rmdir(qdir);
    rmdir(dir);
    st_quality_results_free(r);
    fixture_free(&f);
}

Test(quality, summary_lists_failures)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\nnot_null month\nnot_null customer_id\nunique customer_id severity=error\n",
                                f.m, NULL, NULL);
    char *out = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&out, &len);
    st_quality_print_summary(r, mf);
    fclose(mf);
    cr_expect_not_null(strstr(out, "3 expectations: 1 pass, 1 warn, 1 fail"), "%s", out);
    cr_expect_not_null(strstr(out, "not_null customer_id"), "%s", out);
    cr_expect_not_null(strstr(out, "duplicate rows"), "%s", out);
    cr_expect_null(strstr(out, "not_null month"), "%s", out);
    free(out);
    st_quality_results_free(r);
    fixture_free(&f);
}

/* ---- randomized comparisons with naive references ---------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

Test(quality, random_against_reference)
{
    for (int iter = 0; iter < 40; iter++) {
        size_t n = rnd() % 300;
        int64_t span = 1 + (int64_t)(rnd() % 50);
        int64_t *v = malloc((n ? n : 1) * sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = rnd() % 10 == 0 ? NUL_I64 : (int64_t)(rnd() % (uint64_t)span) - 5;
        st_column c = col_i64(v, n);
        st_qmem *m;
        cr_assert_eq(st_qmem_new(&m), ST_OK);
        const char *names[] = {"v"};
        size_t chunk = (size_t)1 << (rnd() % 8);
        cr_assert_eq(st_qmem_add(m, "gold", "t", names, &c, 1, chunk, NULL), ST_OK);
        int64_t lo = (int64_t)(rnd() % 20) - 5, hi = lo + (int64_t)(rnd() % 30);
        char text[256];
        snprintf(text, sizeof text,
                 "[gold.t]\nvalues_between v %lld .. %lld\nnot_null v\nunique v\nvalues_in_set v 0,1,2,3\n"
                 "temporal_window v %lld .. %lld\n",
                 (long long)lo, (long long)hi, (long long)lo, (long long)hi);
        st_quality_results *r = run(text, m, NULL, NULL);
        /* reference */
        uint64_t out_range = 0, nulls = 0, present = 0, dups = 0, not_in = 0;
        int64_t first_bad = -1;
        for (size_t i = 0; i < n; i++) {
            if (v[i] == NUL_I64) {
                nulls++;
                continue;
            }
            present++;
            if (v[i] < lo || v[i] > hi) {
                if (first_bad < 0) first_bad = (int64_t)i;
                out_range++;
            }
            if (v[i] < 0 || v[i] > 3) not_in++;
            for (size_t j = 0; j < i; j++)
                if (v[j] == v[i]) {
                    dups++;
                    break;
                }
        }
        cr_expect_eq(res(r, 0)->unexpected_count, out_range, "iter %d", iter);
        cr_expect_eq(res(r, 0)->rows_checked, present, "iter %d", iter);
        if (first_bad >= 0) cr_expect_eq(res(r, 0)->sample[0].row, first_bad, "iter %d", iter);
        cr_expect_eq(res(r, 0)->status, out_range ? ST_QSTATUS_WARN : ST_QSTATUS_PASS);
        cr_expect_eq(res(r, 1)->unexpected_count, nulls, "iter %d", iter);
        cr_expect_eq(res(r, 2)->unexpected_count, dups, "iter %d", iter);
        cr_expect_eq(res(r, 3)->unexpected_count, not_in, "iter %d", iter);
        cr_expect_eq(res(r, 4)->unexpected_count, out_range, "iter %d", iter);
        st_quality_results_free(r);
        st_qmem_free(m);
        st_column_free(&c);
        free(v);
    }
}

/* ---- memory of the keyed checks ------------------------------------------------------ */

/* The naive unique: row i is a duplicate when an earlier row has its value;
 * the samples are the first ST_QSAMPLE_MAX duplicate rows by (value, row). */
typedef struct ref_dup {
    int64_t v, row;
} ref_dup;

static int ref_dup_cmp(const void *a, const void *b)
{
    const ref_dup *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Runs unique on v (NUL_I64 = NULL) in chunks of chunk rows and compares
 * everything with the naive reference; returns the keys held at most. */
static size_t unique_against_reference(const int64_t *v, size_t n, size_t chunk)
{
    st_column c = col_i64(v, n);
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *names[] = {"v"};
    cr_assert_eq(st_qmem_add(m, "gold", "t", names, &c, 1, chunk, NULL), ST_OK);
    st_quality_results *r = run("[gold.t]\nunique v\n", m, NULL, NULL);
    const st_qresult *q = res(r, 0);

    ref_dup *d = malloc((n ? n : 1) * sizeof *d);
    uint64_t present = 0, dups = 0, keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NUL_I64) continue;
        present++;
        size_t before = 0;
        for (size_t j = 0; j < i; j++) before += v[j] == v[i];
        if (before > 0) d[dups++] = (ref_dup){v[i], (int64_t)i};
        if (before == 1) keys++;
    }
    qsort(d, dups, sizeof *d, ref_dup_cmp);
    cr_expect_eq(q->rows_checked, present);
    cr_expect_eq(q->unexpected_count, dups);
    cr_expect_eq(q->observed_i, (int64_t)dups);
    cr_expect_eq(q->status, dups ? ST_QSTATUS_WARN : ST_QSTATUS_PASS);
    char want[256] = "";
    if (dups)
        snprintf(want, sizeof want, "%llu duplicate rows over %llu repeated key%s of (v) in gold.t",
                 (unsigned long long)dups, (unsigned long long)keys, keys == 1 ? "" : "s");
    cr_expect_str_eq(q->message, want);
    size_t n_want = dups < ST_QSAMPLE_MAX ? (size_t)dups : ST_QSAMPLE_MAX;
    cr_assert_eq(q->n_sample, n_want);
    for (size_t k = 0; k < n_want; k++) {
        char text[32];
        snprintf(text, sizeof text, "%lld", (long long)d[k].v);
        cr_expect_eq(q->sample[k].row, d[k].row, "sample %zu", k);
        cr_expect_str_eq(q->sample[k].value, text, "sample %zu", k);
    }
    size_t held = st_quality_max_keys_held(r);
    free(d);
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&c);
    return held;
}

/* Chunks whose value ranges are disjoint (in shuffled order, so the file
 * order is not the value order, one chunk all NULL) are decided one chunk
 * at a time, with the results of the collect-everything path. */
Test(quality, unique_disjoint_chunks_match_reference)
{
    enum { CHUNK = 64, N_CHUNKS = 40 };
    size_t perm[N_CHUNKS];
    for (size_t c = 0; c < N_CHUNKS; c++) perm[c] = c;
    for (size_t c = N_CHUNKS - 1; c > 0; c--) {
        size_t j = (size_t)(rnd() % (c + 1)), t = perm[c];
        perm[c] = perm[j];
        perm[j] = t;
    }
    int64_t *v = malloc(CHUNK * N_CHUNKS * sizeof *v);
    for (size_t i = 0; i < CHUNK * N_CHUNKS; i++) {
        size_t c = i / CHUNK;
        if (c == 7) v[i] = NUL_I64;
        else if (rnd() % 9 == 0) v[i] = NUL_I64;
        else v[i] = (int64_t)perm[c] * 1000 - 20000 + (int64_t)(rnd() % (c % 3 == 0 ? 40 : 400));
    }
    size_t held = unique_against_reference(v, CHUNK * N_CHUNKS, CHUNK);
    cr_expect_leq(held, CHUNK, "disjoint chunks held %zu keys", held);
    /* increasing with repeats inside chunks, the shape of a rowid column */
    for (size_t i = 0; i < CHUNK * N_CHUNKS; i++) v[i] = (int64_t)(i - i % 2);
    held = unique_against_reference(v, CHUNK * N_CHUNKS, CHUNK);
    cr_expect_leq(held, CHUNK);
    free(v);
}

/* Overlapping ranges and repeats across chunks: every key is held, unless
 * the keys arrive in order (then none is). */
Test(quality, unique_overlapping_chunks_match_reference)
{
    enum { CHUNK = 32, N = 2000 };
    int64_t *v = malloc(N * sizeof *v);
    uint64_t present = 0;
    for (size_t i = 0; i < N; i++) {
        v[i] = rnd() % 11 == 0 ? NUL_I64 : (int64_t)(rnd() % 900) - 300;
        present += v[i] != NUL_I64;
    }
    size_t held = unique_against_reference(v, N, CHUNK);
    cr_expect_eq(held, present);
    /* disjoint but for one value shared by the last rows of two chunks:
     * still in order, so streamed */
    for (size_t i = 0; i < N; i++) v[i] = (int64_t)i;
    v[CHUNK - 1] = CHUNK;
    held = unique_against_reference(v, N, CHUNK);
    cr_expect_leq(held, 1);
    /* ... and out of order in the last row: collected from the start */
    v[N - 1] = 5;
    held = unique_against_reference(v, N, CHUNK);
    cr_expect_eq(held, N);
    free(v);
}

/* Many orphan rows over few distinct values: the count of distinct orphans
 * is exact and the set holds only those. */
Test(quality, referential_many_orphans_few_values)
{
    enum { N = 100000, CHUNK = 1024 };
    int64_t *v = malloc(N * sizeof *v);
    int64_t ids[90];
    for (int i = 0; i < 90; i++) ids[i] = i;
    char **sv = malloc(N * sizeof *sv);
    const char **sp = malloc(N * sizeof *sp);
    uint64_t orphans = 0, present = 0;
    int64_t first[ST_QSAMPLE_MAX];
    size_t n_first = 0;
    for (size_t i = 0; i < N; i++) {
        v[i] = rnd() % 17 == 0 ? NUL_I64 : (int64_t)(rnd() % 100) - (i % 5 == 0 ? 1000 : 0);
        sv[i] = NULL;
        if (v[i] != NUL_I64) {
            sv[i] = malloc(24);
            snprintf(sv[i], 24, "k%lld", (long long)v[i]);
            present++;
            if (v[i] < 0 || v[i] >= 90) {
                orphans++;
                if (n_first < ST_QSAMPLE_MAX) first[n_first++] = (int64_t)i;
            }
        }
        sp[i] = sv[i];
    }
    const char *sids[90];
    char sid_buf[90][16];
    for (int i = 0; i < 90; i++) {
        snprintf(sid_buf[i], sizeof sid_buf[i], "k%d", i);
        sids[i] = sid_buf[i];
    }
    /* orphans are -1000..-901 (rows with i % 5 == 0) and 90..99 */
    bool seen[1100] = {false};
    uint64_t distinct = 0;
    for (size_t i = 0; i < N; i++)
        if (v[i] != NUL_I64 && (v[i] < 0 || v[i] >= 90) && !seen[v[i] + 1000]) {
            seen[v[i] + 1000] = true;
            distinct++;
        }
    st_column cols[2] = {col_i64(v, N), col_str(sp, N)};
    st_column tcols[2] = {col_i64(ids, 90), col_str(sids, 90)};
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *names[] = {"k", "s"};
    cr_assert_eq(st_qmem_add(m, "gold", "a", names, cols, 2, CHUNK, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "gold", "b", names, tcols, 2, 0, NULL), ST_OK);
    for (int kind = 0; kind < 2; kind++) {
        st_quality_results *r = run(kind == 0 ? "[gold.a]\nreferential k -> gold.b.k\n" : "[gold.a]\nreferential s -> gold.b.s\n",
                                    m, NULL, NULL);
        const st_qresult *q = res(r, 0);
        cr_expect_eq(q->observed_i, (int64_t)distinct, "kind %d", kind);
        cr_expect_eq(q->unexpected_count, orphans, "kind %d", kind);
        cr_expect_eq(q->rows_checked, present, "kind %d", kind);
        char want[256];
        snprintf(want, sizeof want, "%llu distinct values of '%s' (%llu rows) not found in gold.b.%s",
                 (unsigned long long)distinct, kind ? "s" : "k", (unsigned long long)orphans, kind ? "s" : "k");
        cr_expect_str_eq(q->message, want);
        cr_assert_eq(q->n_sample, n_first);
        for (size_t k = 0; k < n_first; k++) {
            cr_expect_eq(q->sample[k].row, first[k]);
            cr_expect_str_eq(q->sample[k].value, kind ? sv[first[k]] : sv[first[k]] + 1);
        }
        size_t held = st_quality_max_keys_held(r);
        cr_expect_leq(held, distinct + CHUNK, "kind %d held %zu keys for %llu orphan rows", kind, held,
                      (unsigned long long)orphans);
        st_quality_results_free(r);
    }
    st_qmem_free(m);
    for (int j = 0; j < 2; j++) {
        st_column_free(&cols[j]);
        st_column_free(&tcols[j]);
    }
    for (size_t i = 0; i < N; i++) free(sv[i]);
    free(sv);
    free(sp);
    free(v);
}

/* The zone-map paths of referential (a chunk inside a gapless run of
 * target keys is not decoded; a small-range chunk without NULLs is counted
 * by a histogram) against a naive row loop, with chunks of every kind:
 * covered, small range with orphans, with NULLs, wide range. */
Test(quality, referential_zone_map_paths_match_a_row_loop)
{
    enum { CHUNK = 512, NCH = 40, N = CHUNK * NCH, NT = 120 };
    int64_t *v = malloc(N * sizeof *v);
    int64_t ids[NT];
    for (int i = 0; i < NT; i++) ids[i] = i < 100 ? i + 1 : 2 * i; /* 1..100, then 200, 202, ... 238 */
    bool member[300] = {false};
    for (int i = 0; i < NT; i++) member[ids[i]] = true;
    uint64_t present = 0, orphans = 0, skipped = 0;
    int64_t first[ST_QSAMPLE_MAX];
    size_t n_first = 0;
    bool seen[300] = {false};
    size_t n_wide = 0; /* wide chunks' one orphan each, all distinct */
    for (size_t c = 0; c < NCH; c++) {
        int kind = (int)(c % 4);
        skipped += kind == 0;
        for (size_t i = c * CHUNK; i < (c + 1) * CHUNK; i++) {
            switch (kind) {
            case 0: v[i] = 1 + (int64_t)(rnd() % 100); break;                 /* inside 1..100 */
            case 1: v[i] = 1 + (int64_t)(rnd() % 240); break;                 /* gaps: orphans */
            case 2: v[i] = rnd() % 9 == 0 ? NUL_I64 : 1 + (int64_t)(rnd() % 240); break;
            default: v[i] = i == c * CHUNK ? 1000000 + (int64_t)c : 1 + (int64_t)(rnd() % 100); break;
            }
            if (v[i] == NUL_I64) continue;
            present++;
            bool in = v[i] < 300 && member[v[i]];
            if (in) continue;
            orphans++;
            if (n_first < ST_QSAMPLE_MAX) first[n_first++] = (int64_t)i;
            if (v[i] < 300) seen[v[i]] = true;
            else n_wide++;
        }
    }
    uint64_t distinct = n_wide;
    for (int k = 0; k < 300; k++) distinct += seen[k];
    st_column cols[1] = {col_i64(v, N)};
    st_column tcols[1] = {col_i64(ids, NT)};
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *names[] = {"k"};
    cr_assert_eq(st_qmem_add(m, "gold", "a", names, cols, 1, CHUNK, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "gold", "b", names, tcols, 1, 0, NULL), ST_OK);
    st_quality_results *r = run("[gold.a]\nreferential k -> gold.b.k\n", m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->observed_i, (int64_t)distinct);
    cr_expect_eq(q->unexpected_count, orphans);
    cr_expect_eq(q->rows_checked, present);
    cr_expect_eq(q->chunks_skipped, skipped);
    cr_expect_eq(q->chunks_decoded, NCH - skipped);
    char want[256];
    snprintf(want, sizeof want, "%llu distinct values of 'k' (%llu rows) not found in gold.b.k",
             (unsigned long long)distinct, (unsigned long long)orphans);
    cr_expect_str_eq(q->message, want);
    cr_assert_eq(q->n_sample, n_first);
    for (size_t k = 0; k < n_first; k++) {
        char sv[32];
        snprintf(sv, sizeof sv, "%lld", (long long)v[first[k]]);
        cr_expect_eq(q->sample[k].row, first[k]);
        cr_expect_str_eq(q->sample[k].value, sv);
    }
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&cols[0]);
    st_column_free(&tcols[0]);
    free(v);
}

/* At the table sizes of a real run: 1M increasing keys in chunks of
 * ST_CHUNK_ROWS hold one chunk for unique; 1M rows of which a third are
 * orphans over 10 values hold 10 (plus at most a chunk) for referential. */
Test(quality, keyed_checks_hold_a_chunk_not_the_table)
{
    enum { N = 1000000 };
    int64_t *v = malloc(N * sizeof *v), *w = malloc(N * sizeof *w);
    for (size_t i = 0; i < N; i++) {
        v[i] = (int64_t)i + 1;
        w[i] = i % 3 == 0 ? 100 + (int64_t)(i % 10) : (int64_t)(i % 50);
    }
    v[500001] = v[500000]; /* one repeat inside a chunk */
    int64_t ids[50];
    for (int i = 0; i < 50; i++) ids[i] = i;
    st_column cols[2] = {col_i64(v, N), col_i64(w, N)}, tc = col_i64(ids, 50);
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *names[] = {"transaction_id", "customer_id"}, *tnames[] = {"customer_id"};
    cr_assert_eq(st_qmem_add(m, "silver", "sales", names, cols, 2, 0, NULL), ST_OK);
    cr_assert_eq(st_qmem_add(m, "silver", "customers", tnames, &tc, 1, 0, NULL), ST_OK);

    st_quality_results *r = run("[silver.sales]\nunique transaction_id\n", m, NULL, NULL);
    cr_expect_eq(res(r, 0)->unexpected_count, 1);
    cr_expect_eq(res(r, 0)->sample[0].row, 500001);
    cr_expect_leq(st_quality_max_keys_held(r), ST_CHUNK_ROWS, "unique held %zu keys", st_quality_max_keys_held(r));
    st_quality_results_free(r);

    r = run("[silver.sales]\nreferential customer_id -> silver.customers.customer_id\n", m, NULL, NULL);
    cr_expect_eq(res(r, 0)->observed_i, 10);
    cr_expect_eq(res(r, 0)->unexpected_count, (N + 2) / 3);
    cr_expect_leq(st_quality_max_keys_held(r), 10 + ST_CHUNK_ROWS, "referential held %zu keys",
                  st_quality_max_keys_held(r));
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&cols[0]);
    st_column_free(&cols[1]);
    st_column_free(&tc);
    free(v);
    free(w);
}

Test(quality, results_accumulate_across_layers)
{
    fixture f;
    sales_fixture(&f);
    const char *text = "[silver.sales]\nnot_null customer_id\n[silver.customers]\nunique customer_id\n"
                       "[gold.g]\nunique x severity=error\n";
    st_quality_results *acc = NULL;
    cr_assert_eq(st_quality_results_new(&acc, NULL), ST_OK);
    cr_expect_eq(st_quality_results_count(acc), 0);
    cr_expect(!st_quality_has_error(acc));
    st_quality_results *a = run(text, f.m, "silver", NULL);
    cr_assert_eq(st_quality_results_merge(acc, a, NULL), ST_OK);
    st_quality_results *b = run(text, f.m, "gold", NULL);
    cr_assert_eq(st_quality_results_merge(acc, b, NULL), ST_OK);
    cr_assert_eq(st_quality_results_count(acc), 3);
    cr_expect_str_eq(st_quality_get(acc, 0)->id, "silver.sales/not_null/customer_id");
    cr_expect_str_eq(st_quality_get(acc, 2)->id, "gold.g/unique/x");
    cr_expect(st_quality_has_error(acc));
    st_buf j;
    st_buf_init(&j);
    st_quality_to_json(acc, &j);
    cr_expect_not_null(strstr(j.data, "\"layers\": \"silver,gold\""), "%s", j.data);
    st_buf_free(&j);
    st_quality_results_free(acc);
    fixture_free(&f);
}

/* ---- the default suite on tables of the documented shape (docs/TABLES.md) ---- */

typedef struct colspec {
    const char *name;
    st_type type;
    const char *gen;
} colspec;

static void gen_value(st_column *c, const char *gen, size_t i)
{
    char buf[64];
    st_status s = ST_OK;
    int64_t v = 0;
    const char *str = NULL;
    if (!strcmp(gen, "seq")) v = (int64_t)i + 1;
    else if (!strcmp(gen, "cust12")) v = (int64_t)(i % 12) + 1; /* 11 and 12 are orphans */
    else if (!strcmp(gen, "cust10")) v = (int64_t)(i % 10) + 1;
    else if (!strcmp(gen, "year")) v = 2020 + (int64_t)(i / 10);
    else if (!strcmp(gen, "month")) v = (int64_t)(i % 12) + 1;
    else if (!strcmp(gen, "period")) v = 202001 + (int64_t)(i / 10);
    else if (!strcmp(gen, "cls1")) v = 1;
    else if (!strcmp(gen, "cls3")) v = 3;
    else if (!strcmp(gen, "one")) v = 1;
    else if (!strcmp(gen, "qty")) v = (int64_t)(i * 7 % 50);
    else if (!strcmp(gen, "null")) str = NULL;
    else if (!strcmp(gen, "mat")) snprintf(buf, sizeof buf, "M%03zu", i), str = buf;
    else if (!strcmp(gen, "email")) snprintf(buf, sizeof buf, "u%zu@example.com", i), str = buf;
    else str = gen; /* a literal string */
    switch (c->type) {
    case ST_TYPE_BOOL: s = st_column_push_bool(c, true); break;
    case ST_TYPE_I32: s = st_column_push_i32(c, (int32_t)v); break;
    case ST_TYPE_I64: s = st_column_push_i64(c, v); break;
    case ST_TYPE_F64: s = st_column_push_f64(c, (double)v / 4); break;
    default:
        if (!str) str = gen; /* a string column with a numeric generator's name: the name itself */
        s = (!strcmp(gen, "null")) ? st_column_push_null(c) : st_column_push_str(c, str, strlen(str));
        break;
    }
    cr_assert_eq(s, ST_OK);
}

static st_column *shape_cols[64];
static size_t shape_ncols[64];
static size_t n_shape_cols;

static void add_shaped(st_qmem *m, const char *layer, const char *table, size_t n, const colspec *spec, size_t n_spec)
{
    st_column *cols = calloc(n_spec, sizeof *cols);
    const char *names[32];
    for (size_t j = 0; j < n_spec; j++) {
        st_column_init(&cols[j], spec[j].type);
        names[j] = spec[j].name;
        for (size_t i = 0; i < n; i++) gen_value(&cols[j], spec[j].gen, i);
    }
    st_error e;
    cr_assert_eq(st_qmem_add(m, layer, table, names, cols, n_spec, 8, &e), ST_OK, "%s", e.msg);
    shape_ncols[n_shape_cols] = n_spec;
    shape_cols[n_shape_cols++] = cols;
    (void)n;
}

#define ADD(m, layer, table, n, ...)                                                         \
    do {                                                                                     \
        static const colspec spec_[] = {__VA_ARGS__};                                        \
        add_shaped(m, layer, table, n, spec_, sizeof spec_ / sizeof spec_[0]);               \
    } while (0)

#define I64 ST_TYPE_I64
#define I32 ST_TYPE_I32
#define STR ST_TYPE_STR
#define BYT ST_TYPE_BYTES

Test(quality, default_suite_on_contract_shaped_tables)
{
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    n_shape_cols = 0;
    ADD(m, "bronze", "raw_customer", 10, {"_rowid", I64, "seq"}, {"customerid", I64, "seq"},
        {"customerid__class", I32, "cls1"}, {"customerid__raw", BYT, "null"}, {"email", STR, "email"},
        {"email__class", I32, "cls3"}, {"email__raw", BYT, "null"});
    ADD(m, "bronze", "raw_sales_quantity", 20, {"_rowid", I64, "seq"}, {"customer_id", I64, "cust12"},
        {"customer_id__class", I32, "cls1"}, {"year", I64, "year"}, {"year__class", I32, "cls1"},
        {"month", I64, "month"}, {"month__class", I32, "cls1"}, {"material_code", STR, "mat"},
        {"material_code__class", I32, "cls3"}, {"quantity", I64, "qty"}, {"quantity__class", I32, "cls1"});
    ADD(m, "bronze", "raw_free_of_charge_quantity", 20, {"_rowid", I64, "seq"}, {"customer_id", I64, "cust12"},
        {"customer_id__class", I32, "cls1"}, {"year", I64, "year"}, {"month", I64, "month"},
        {"material_code", STR, "mat"}, {"quantity_foc", I64, "qty"});
    ADD(m, "silver", "stg_customers", 10, {"customer_id", I64, "seq"}, {"email", STR, "email"},
        {"email_valid", ST_TYPE_BOOL, "one"}, {"country", STR, "Norway"}, {"flags", STR, ""});
    ADD(m, "silver", "stg_sales_transactions", 19, {"transaction_id", I64, "seq"}, {"customer_id", I64, "cust12"},
        {"year", I32, "year"}, {"month", I32, "month"}, {"period_key", I32, "period"},
        {"material_code", STR, "mat"}, {"quantity", I64, "qty"});
    ADD(m, "silver", "stg_foc_transactions", 20, {"transaction_id", I64, "seq"}, {"customer_id", I64, "cust10"},
        {"year", I32, "year"}, {"month", I32, "month"}, {"period_key", I32, "period"},
        {"material_code", STR, "mat"}, {"quantity", I64, "qty"});
    ADD(m, "silver", "stg_rejects", 1, {"source_table", STR, "raw_sales_quantity"}, {"source_rowid", I64, "seq"},
        {"reason", STR, "bad_month"}, {"column", STR, "month"}, {"raw_values", STR, "month=13"});
    ADD(m, "gold", "int_transactions_unified", 20, {"customer_id", I64, "cust10"}, {"year", I32, "year"},
        {"month", I32, "month"}, {"period_key", I32, "period"}, {"material_code", STR, "mat"},
        {"sold_qty", I64, "qty"}, {"foc_qty", I64, "qty"});
    ADD(m, "gold", "int_customer_analytics", 20, {"customer_id", I64, "cust10"}, {"period_key", I32, "period"},
        {"foc_ratio", ST_TYPE_F64, "qty"}, {"unique_materials", I64, "one"});
    ADD(m, "platinum", "dim_customers", 12, {"customer_id", I64, "seq"}, {"flags", STR, ""});
    ADD(m, "platinum", "fct_transactions", 20, {"customer_id", I64, "cust10"}, {"period_key", I32, "period"},
        {"cluster", I32, "one"}, {"persona", STR, "Loyal"});
    ADD(m, "platinum", "marts_customer_summary", 20, {"customer_id", I64, "cust10"}, {"period_key", I32, "period"},
        {"persona", STR, "Loyal"});
    ADD(m, "platinum", "marts_persona_status_change", 20, {"customer_id", I64, "cust10"},
        {"period_key", I32, "period"});

    st_suite *s = NULL;
    st_error e;
    cr_assert_eq(st_suite_load_default(&s, &e), ST_OK, "%s", e.msg);
    st_quality_results *r = NULL;
    cr_assert_eq(st_suite_run_mem(s, m, NULL, &r, &e), ST_OK, "%s", e.msg);
    cr_expect(!st_quality_has_error(r));
    size_t warned = 0;
    for (size_t i = 0; i < st_quality_count(r); i++) {
        const st_qresult *q = st_quality_get(r, i);
        cr_expect(q->evaluated, "%s not evaluated: %s", q->id, q->message);
        if (q->status == ST_QSTATUS_PASS) continue;
        warned++;
        cr_expect_str_eq(q->id, "silver.stg_sales_transactions/referential/customer_id", "unexpected %s: %s", q->id,
                         q->message);
        cr_expect_eq(q->observed_i, 2); /* ids 11 and 12 */
    }
    cr_expect_eq(warned, 1);
    st_quality_results_free(r);
    /* The bronze filter alone also runs clean. */
    cr_assert_eq(st_suite_run_mem(s, m, "bronze", &r, &e), ST_OK, "%s", e.msg);
    size_t np, nw, nf;
    st_quality_counts(r, &np, &nw, &nf);
    cr_expect_eq(nw + nf, 0);
    cr_expect_geq(np, 15);
    st_quality_results_free(r);
    st_suite_free(s);
    st_qmem_free(m);
    for (size_t k = 0; k < n_shape_cols; k++) {
        for (size_t j = 0; j < shape_ncols[k]; j++) st_column_free(&shape_cols[k][j]);
        free(shape_cols[k]);
    }
}

Test(quality, column_type)
{
    fixture f;
    sales_fixture(&f);
    st_quality_results *r = run("[silver.sales]\n"
                                "column_type month int32\n"
                                "column_type customer_id int32|int64\n"
                                "column_type material_code int64 severity=error\n"
                                "column_type nope string\n",
                                f.m, NULL, NULL);
    cr_expect_eq(res(r, 0)->status, ST_QSTATUS_PASS);
    cr_expect_str_eq(res(r, 0)->observed_text, "int32");
    cr_expect_eq(res(r, 1)->status, ST_QSTATUS_PASS);
    cr_expect_eq(res(r, 2)->status, ST_QSTATUS_FAIL);
    cr_expect_str_eq(res(r, 2)->observed_text, "string");
    cr_expect_not_null(strstr(res(r, 2)->message, "is string, expected int64"), "%s", res(r, 2)->message);
    cr_expect(!res(r, 3)->evaluated);
    st_quality_results_free(r);
    fixture_free(&f);
}

/* ---- layer files (st_writer / st_reader) --------------------------------------- */

static void write_table_chunked(const char *dir, const char *layer, const char *table, const char *const *names,
                                const st_column *cols, size_t n_cols, uint32_t chunk_rows)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, layer);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s.strata", dir, layer, table);
    st_field fields[8];
    for (size_t j = 0; j < n_cols; j++)
        fields[j] = (st_field){names[j], cols[j].type, true, NULL};
    st_file_meta meta = {layer, table, NULL, 0, "", 0, NULL, 0};
    st_write_opts opts = {.no_fsync = true, .chunk_rows = chunk_rows};
    st_writer *w = NULL;
    st_error e;
    cr_assert_eq(st_writer_open(&w, path, fields, n_cols, &meta, &opts, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_writer_write(w, cols, 0, n_cols ? cols[0].n_rows : 0, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_writer_close(w, &e), ST_OK, "%s", e.msg);
}

static void write_table(const char *dir, const char *layer, const char *table, const char *const *names,
                        const st_column *cols, size_t n_cols)
{
    write_table_chunked(dir, layer, table, names, cols, n_cols, 4);
}

/* <dir>/<layer>/<table>.strata, as st_suite_run() reads it. */
static bool dir_table_path(void *ctx, const char *layer, const char *table, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s/%s.strata", (const char *)ctx, layer, table);
    return n > 0 && (size_t)n < cap;
}

/* Files and in-memory tables with the same rows and chunking give the same
 * results, byte for byte, zone-map skips included; so do files evaluated
 * several tables at a time. */
Test(quality, files_match_memory)
{
    fixture f;
    sales_fixture(&f);
    char dir[] = "/tmp/strata_qfile_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"customer_id", "month", "material_code", "customer_id__class"};
    write_table(dir, "silver", "sales", names, f.cols, 4);
    const char *cnames[] = {"customer_id"};
    write_table(dir, "silver", "customers", cnames, &f.cols[4], 1);
    const char *text = "[silver.sales]\n"
                       "row_count_between 1 .. 10\n"
                       "column_exists customer_id, nope\n"
                       "not_null customer_id\n"
                       "completeness material_code >= 0.95\n"
                       "values_between month 1 .. 12\n"
                       "temporal_window month 1 .. 12\n"
                       "values_in_set material_code A,B,C\n"
                       "values_in_set month 1,2,3,4,5,6,7,8,9,10,11,12\n"
                       "storage_class customer_id INTEGER\n"
                       "unique customer_id severity=error\n"
                       "no_duplicate_keys customer_id, material_code\n"
                       "referential customer_id -> silver.customers.customer_id\n"
                       "[gold.absent]\n"
                       "unique x\n";
    st_suite *s = parse_ok(text);
    st_quality_results *rf = NULL, *rm = NULL;
    st_error e;
    cr_assert_eq(st_suite_run(s, dir, NULL, &rf, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_suite_run_mem(s, f.m, NULL, &rm, &e), ST_OK, "%s", e.msg);
    st_buf a, b;
    st_buf_init(&a);
    st_buf_init(&b);
    st_quality_to_json(rf, &a);
    st_quality_to_json(rm, &b);
    /* the missing-table message names the path for files: compare the rest */
    cr_assert_eq(st_quality_count(rf), st_quality_count(rm));
    for (size_t i = 0; i + 1 < st_quality_count(rf); i++) {
        const st_qresult *x = st_quality_get(rf, i), *y = st_quality_get(rm, i);
        cr_expect_eq(x->status, y->status, "%s", x->id);
        cr_expect_eq(x->unexpected_count, y->unexpected_count, "%s", x->id);
        cr_expect_eq(x->rows_checked, y->rows_checked, "%s", x->id);
        cr_expect_eq(x->n_sample, y->n_sample, "%s", x->id);
        cr_expect_str_eq(x->message, y->message, "%s", x->id);
        cr_expect_eq(x->chunks_skipped, y->chunks_skipped, "%s", x->id);
        cr_expect_eq(x->chunks_decoded, y->chunks_decoded, "%s", x->id);
        cr_expect_eq(x->observed_kind, y->observed_kind, "%s", x->id);
        cr_expect_str_eq(x->column, y->column, "%s", x->id);
        for (size_t k = 0; k < x->n_sample && k < y->n_sample; k++) {
            cr_expect_eq(x->sample[k].row, y->sample[k].row, "%s", x->id);
            cr_expect_str_eq(x->sample[k].value, y->sample[k].value, "%s", x->id);
        }
    }
    cr_expect(st_quality_get(rf, 5)->chunks_skipped >= 1, "zone maps were not used on the file");
    cr_expect_not_null(strstr(st_quality_get(rf, st_quality_count(rf) - 1)->message, "table gold.absent not found"));
    /* several tables at a time: the same results, byte for byte */
    for (int th = 2; th <= 4; th += 2) {
        st_quality_results *rt = NULL;
        cr_assert_eq(st_suite_run_paths(s, dir_table_path, dir, NULL, th, &rt, &e), ST_OK, "%s", e.msg);
        st_buf c;
        st_buf_init(&c);
        st_quality_to_json(rt, &c);
        cr_expect(c.len == a.len && !memcmp(c.data, a.data, a.len), "threads %d: other results", th);
        st_buf_free(&c);
        st_quality_results_free(rt);
    }
    st_buf_free(&a);
    st_buf_free(&b);
    st_quality_results_free(rf);
    st_quality_results_free(rm);

    /* A damaged file is a run error, not a result. */
    char path[600];
    snprintf(path, sizeof path, "%s/silver/sales.strata", dir);
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, 40, SEEK_SET);
    fputc(0x5a, fp);
    fseek(fp, 41, SEEK_SET);
    fputc(0xa5, fp);
    fclose(fp);
    st_status rc = st_suite_run(s, dir, "silver", &rf, &e);
    cr_expect(rc == ST_ERR_CORRUPT, "damaged file gave %s: %s", st_status_name(rc), e.msg);
    if (rc == ST_OK) st_quality_results_free(rf);
    st_suite_free(s);
    fx_rmtree(dir);
    fixture_free(&f);
}

/* The writer's zone maps choose the same path as st_qmem's: a rowid-like
 * column in files of 1024-row chunks holds one chunk, with the results of
 * the in-memory table; overlapping chunks hold every key on both. */
Test(quality, unique_on_files_uses_zone_maps)
{
    enum { N = 20000, CHUNK = 1024 };
    int64_t *v = malloc(N * sizeof *v), *w = malloc(N * sizeof *w);
    for (size_t i = 0; i < N; i++) {
        v[i] = i % 97 == 5 ? NUL_I64 : (int64_t)(i - (i % 300 == 7));
        w[i] = (int64_t)(rnd() % 5000);
    }
    st_column cols[2] = {col_i64(v, N), col_i64(w, N)};
    const char *names[] = {"id", "other"};
    char dir[] = "/tmp/strata_qkeys_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    write_table_chunked(dir, "silver", "t", names, cols, 2, CHUNK);
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    cr_assert_eq(st_qmem_add(m, "silver", "t", names, cols, 2, CHUNK, NULL), ST_OK);
    for (int which = 0; which < 2; which++) {
        st_suite *s = parse_ok(which == 0 ? "[silver.t]\nunique id\n" : "[silver.t]\nno_duplicate_keys other\n");
        st_quality_results *rf = NULL, *rm = NULL;
        st_error e;
        cr_assert_eq(st_suite_run(s, dir, NULL, &rf, &e), ST_OK, "%s", e.msg);
        cr_assert_eq(st_suite_run_mem(s, m, NULL, &rm, &e), ST_OK, "%s", e.msg);
        const st_qresult *x = st_quality_get(rf, 0), *y = st_quality_get(rm, 0);
        cr_expect_gt(x->unexpected_count, 0);
        cr_expect_eq(x->unexpected_count, y->unexpected_count);
        cr_expect_eq(x->rows_checked, y->rows_checked);
        cr_expect_str_eq(x->message, y->message);
        cr_assert_eq(x->n_sample, y->n_sample);
        for (size_t k = 0; k < x->n_sample; k++) {
            cr_expect_eq(x->sample[k].row, y->sample[k].row);
            cr_expect_str_eq(x->sample[k].value, y->sample[k].value);
        }
        size_t hf = st_quality_max_keys_held(rf), hm = st_quality_max_keys_held(rm);
        if (which == 0) {
            cr_expect_leq(hf, CHUNK, "file held %zu keys", hf);
            cr_expect_leq(hm, CHUNK, "memory held %zu keys", hm);
        } else {
            cr_expect_eq(hf, N);
            cr_expect_eq(hm, N);
        }
        st_quality_results_free(rf);
        st_quality_results_free(rm);
        st_suite_free(s);
    }
    st_qmem_free(m);
    st_column_free(&cols[0]);
    st_column_free(&cols[1]);
    free(v);
    free(w);
    fx_rmtree(dir);
}

/* The pipeline's validate step: reads the run's files, accumulates results,
 * stops with ST_ERR_QUALITY only for a failed severity=error expectation. */
Test(quality, validate_step)
{
    fixture f;
    sales_fixture(&f);
    char dir[] = "/tmp/strata_qstep_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    st_warehouse *wh = NULL;
    st_error e;
    cr_assert_eq(st_warehouse_open(&wh, dir, false, &e), ST_OK, "%s", e.msg);
    const char *names[] = {"customer_id", "month", "material_code", "customer_id__class"};
    write_table(dir, "silver", "sales", names, f.cols, 4);
    const char *cnames[] = {"customer_id"};
    write_table(dir, "silver", "customers", cnames, &f.cols[4], 1);
    char suite_path[600];
    snprintf(suite_path, sizeof suite_path, "%s/my.suite", dir);
    FILE *sf = fopen(suite_path, "w");
    cr_assert_not_null(sf);
    fputs("[silver.sales]\nreferential customer_id -> silver.customers.customer_id\nnot_null month severity=error\n"
          "[gold.g]\nunique customer_id severity=error\n",
          sf);
    fclose(sf);

    st_run_opts o;
    memset(&o, 0, sizeof o);
    o.suite_path = suite_path;
    st_run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.o = &o;
    ctx.wh = wh;
    st_buf_init(&ctx.quality_summary);
    cr_assert_eq(st_quality_results_new(&ctx.quality, &e), ST_OK);
    cr_expect_eq(st_step_validate(&ctx, "silver", &e), ST_OK, "%s", e.msg);
    cr_expect_eq(ctx.quality_warnings, 1);
    cr_expect_eq(ctx.quality_failures, 0);
    cr_expect_eq(st_quality_results_count(ctx.quality), 2);
    st_error_clear(&e);
    cr_expect_eq(st_step_validate(&ctx, "gold", &e), ST_ERR_QUALITY);
    cr_expect_not_null(strstr(e.msg, "gold.g/unique/customer_id"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "table gold.g not found"), "%s", e.msg);
    cr_expect_eq(ctx.quality_failures, 1);
    cr_expect_eq(st_quality_results_count(ctx.quality), 3);
    cr_expect_not_null(strstr(ctx.quality_summary.data, "silver: 1 pass, 1 warn, 0 fail"), "%s", ctx.quality_summary.data);
    /* a bad suite file is a usage error naming the line */
    sf = fopen(suite_path, "w");
    fputs("[silver.sales]\nnot_nul x\n", sf);
    fclose(sf);
    cr_expect_eq(st_step_validate(&ctx, "silver", &e), ST_ERR_INVALID);
    cr_expect_not_null(strstr(e.msg, "my.suite:2:1: unknown expectation 'not_nul'"), "%s", e.msg);
    st_quality_results_free(ctx.quality);
    st_buf_free(&ctx.quality_summary);
    st_warehouse_close(wh);
    fx_rmtree(dir);
    fixture_free(&f);
}

/* ---- keys in order: the streaming path and its fallback ------------------------------ */

/* A table of up to three key columns for the composite tests: values in
 * v[j] (NUL_I64 = NULL); kind[j] is 'l' (int64), 'i' (int32, never NULL)
 * or 's' (strings "k%05lld" of the value, so for values 0 .. 99999 the
 * collector's (length, bytes) order is the numeric order). */
typedef struct ktab {
    size_t n, n_col;
    int64_t *v[3];
    char kind[3];
} ktab;

static void ktab_text(const ktab *t, size_t j, size_t i, char *out, size_t cap)
{
    if (t->kind[j] == 's') snprintf(out, cap, "k%05lld", (long long)t->v[j][i]);
    else snprintf(out, cap, "%lld", (long long)t->v[j][i]);
}

static bool ktab_null(const ktab *t, size_t i)
{
    for (size_t j = 0; j < t->n_col; j++)
        if (t->v[j][i] == NUL_I64) return true;
    return false;
}

/* The collector's order on the encoded keys, spelled out: integers by
 * value, strings by length then bytes, column by column. */
static const ktab *ref_tab;
static int ref_key_cmp(size_t a, size_t b)
{
    for (size_t j = 0; j < ref_tab->n_col; j++) {
        if (ref_tab->kind[j] == 's') {
            char x[32], y[32];
            ktab_text(ref_tab, j, a, x, sizeof x);
            ktab_text(ref_tab, j, b, y, sizeof y);
            size_t lx = strlen(x), ly = strlen(y);
            if (lx != ly) return lx < ly ? -1 : 1;
            int c = strcmp(x, y);
            if (c) return c;
        } else if (ref_tab->v[j][a] != ref_tab->v[j][b]) {
            return ref_tab->v[j][a] < ref_tab->v[j][b] ? -1 : 1;
        }
    }
    return 0;
}

static int ref_row_cmp(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = ref_key_cmp(a, b);
    if (c) return c;
    return (a > b) - (a < b);
}

/* Builds t's columns (caller frees each). */
static void ktab_columns(const ktab *t, st_column *cols, char ***strs)
{
    for (size_t j = 0; j < t->n_col; j++) {
        if (t->kind[j] == 'l') {
            cols[j] = col_i64(t->v[j], t->n);
        } else if (t->kind[j] == 'i') {
            int32_t *w = malloc((t->n ? t->n : 1) * sizeof *w);
            for (size_t i = 0; i < t->n; i++) w[i] = (int32_t)t->v[j][i];
            cols[j] = col_i32(w, t->n);
            free(w);
        } else {
            char **sv = malloc((t->n ? t->n : 1) * sizeof *sv);
            for (size_t i = 0; i < t->n; i++) {
                sv[i] = NULL;
                if (t->v[j][i] == NUL_I64) continue;
                sv[i] = malloc(32);
                ktab_text(t, j, i, sv[i], 32);
            }
            cols[j] = col_str((const char *const *)sv, t->n);
            strs[j] = sv;
        }
    }
}

/* Runs no_duplicate_keys on t's columns in chunks of chunk rows, in memory
 * and (when dir is not NULL) from a layer file written there, compares
 * every field with the naive reference and returns the keys held at most
 * (the larger of the two runs). */
static size_t keys_against_reference(const ktab *t, size_t chunk, const char *dir)
{
    static const char *const names[] = {"a", "b", "c"};
    st_column cols[3];
    char **strs[3] = {NULL, NULL, NULL};
    ktab_columns(t, cols, strs);
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, t->n_col, chunk, NULL), ST_OK);
    if (dir) write_table_chunked(dir, "gold", "t", names, cols, t->n_col, (uint32_t)chunk);
    char text[128], cols_text[16] = "";
    snprintf(cols_text, sizeof cols_text, "%s", t->n_col == 1 ? "a" : t->n_col == 2 ? "a,b" : "a,b,c");
    snprintf(text, sizeof text, "[gold.t]\nno_duplicate_keys %s\n",
             t->n_col == 1 ? "a" : t->n_col == 2 ? "a, b" : "a, b, c");

    /* reference */
    size_t *d = malloc((t->n ? t->n : 1) * sizeof *d);
    uint64_t present = 0, dups = 0, keys = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (ktab_null(t, i)) continue;
        present++;
        size_t before = 0;
        for (size_t k = 0; k < i; k++) {
            if (ktab_null(t, k)) continue;
            bool eq = true;
            for (size_t j = 0; j < t->n_col; j++) eq = eq && t->v[j][k] == t->v[j][i];
            before += eq;
        }
        if (before > 0) d[dups++] = i;
        if (before == 1) keys++;
    }
    ref_tab = t;
    qsort(d, dups, sizeof *d, ref_row_cmp);
    char want[256] = "";
    if (dups)
        snprintf(want, sizeof want, "%llu duplicate rows over %llu repeated key%s of (%s) in gold.t",
                 (unsigned long long)dups, (unsigned long long)keys, keys == 1 ? "" : "s", cols_text);

    size_t held = 0;
    for (int src = 0; src < (dir ? 2 : 1); src++) {
        st_suite *s = parse_ok(text);
        st_quality_results *r = NULL;
        st_error e;
        st_error_clear(&e);
        st_status rc = src == 0 ? st_suite_run_mem(s, m, NULL, &r, &e) : st_suite_run(s, dir, NULL, &r, &e);
        cr_assert_eq(rc, ST_OK, "%s", e.msg);
        const st_qresult *q = res(r, 0);
        cr_expect(q->evaluated);
        cr_expect_eq(q->rows_checked, present, "src %d", src);
        cr_expect_eq(q->unexpected_count, dups, "src %d", src);
        cr_expect_eq(q->observed_i, (int64_t)dups);
        cr_expect_eq(q->status, dups ? ST_QSTATUS_WARN : ST_QSTATUS_PASS);
        cr_expect_str_eq(q->message, want, "src %d", src);
        cr_expect_eq(q->chunks_decoded, (t->n + chunk - 1) / chunk, "src %d", src);
        size_t n_want = dups < ST_QSAMPLE_MAX ? (size_t)dups : ST_QSAMPLE_MAX;
        cr_assert_eq(q->n_sample, n_want, "src %d", src);
        for (size_t k = 0; k < n_want; k++) {
            char v[128] = "", part[32];
            for (size_t j = 0; j < t->n_col; j++) {
                ktab_text(t, j, d[k], part, sizeof part);
                snprintf(v + strlen(v), sizeof v - strlen(v), "%s%s", j ? ", " : (t->n_col > 1 ? "(" : ""), part);
            }
            if (t->n_col > 1) strcat(v, ")");
            cr_expect_eq(q->sample[k].row, (int64_t)d[k], "src %d sample %zu", src, k);
            cr_expect_str_eq(q->sample[k].value, v, "src %d sample %zu", src, k);
        }
        size_t h = st_quality_max_keys_held(r);
        if (h > held) held = h;
        st_quality_results_free(r);
        st_suite_free(s);
    }
    free(d);
    st_qmem_free(m);
    for (size_t j = 0; j < t->n_col; j++) {
        if (strs[j]) {
            for (size_t i = 0; i < t->n; i++) free(strs[j][i]);
            free(strs[j]);
        }
        st_column_free(&cols[j]);
    }
    return held;
}

/* Non-decreasing (a, b[, c]) tuples with runs of repeats (long enough to
 * cross chunk boundaries when dup_pct > 0), NULLs in a when nulls (never
 * in row 0, so a row set to -1000 later is below a key before it). */
static void ktab_sorted(ktab *t, size_t n, size_t n_col, const char *kinds, int dup_pct, bool nulls)
{
    t->n = n;
    t->n_col = n_col;
    int64_t cur[3] = {(int64_t)(rnd() % 5) - 2, 0, 0};
    for (size_t j = 0; j < n_col; j++) {
        t->kind[j] = kinds[j];
        t->v[j] = malloc((n ? n : 1) * sizeof *t->v[j]);
    }
    if (kinds[0] == 's') cur[0] += 2;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (int)(rnd() % 100) >= dup_pct) {
            /* strictly larger: bump the last column, sometimes an earlier one */
            size_t j = n_col - 1 - (size_t)(rnd() % n_col);
            cur[j] += 1 + (int64_t)(rnd() % 3);
            for (size_t k = j + 1; k < n_col; k++) cur[k] = (int64_t)(rnd() % 4);
        }
        for (size_t j = 0; j < n_col; j++) t->v[j][i] = cur[j];
        if (nulls && i > 0 && rnd() % 13 == 0) t->v[0][i] = NUL_I64;
    }
}

static void ktab_free(ktab *t)
{
    for (size_t j = 0; j < t->n_col; j++) free(t->v[j]);
}

static void ktab_swap(ktab *t, size_t x, size_t y)
{
    for (size_t j = 0; j < t->n_col; j++) {
        int64_t w = t->v[j][x];
        t->v[j][x] = t->v[j][y];
        t->v[j][y] = w;
    }
}

/* Sorted composite keys with and without repeats (runs crossing chunk
 * boundaries, NULL rows between them, integer and string columns) give the
 * reference's counts, message and samples holding at most one key; the
 * same tables with two rows swapped (out of order in the first, a middle
 * or the last chunk) fall back to collecting from chunk 0 and still give
 * the reference's answer, holding every key as before. */
Test(quality, composite_keys_in_order_match_reference)
{
    static const char *const kinds[] = {"li", "ll", "ls", "sl", "lil", "l", "s"};
    static const size_t chunks[] = {1, 3, 7, 64, 1000};
    for (int iter = 0; iter < 70; iter++) {
        const char *k = kinds[iter % 7];
        size_t chunk = chunks[(iter / 7) % 5];
        int dup_pct = iter % 2 ? 0 : 10 + (int)(rnd() % 70);
        ktab t;
        ktab_sorted(&t, 50 + rnd() % 600, strlen(k), k, dup_pct, iter % 3 == 0);
        /* one integer column whose chunk ranges happen to be disjoint goes
         * the per-chunk way (tally_int_dups), holding a chunk */
        bool one_int = !strcmp(k, "l");
        size_t held = keys_against_reference(&t, chunk, NULL);
        cr_expect_leq(held, one_int ? chunk : 1, "iter %d (%s, chunk %zu): in order, held %zu", iter, k, chunk, held);
        /* a row below its predecessor early, in the middle and last */
        size_t at[3] = {1, t.n / 2, t.n - 1};
        for (int w = 0; w < 3; w++) {
            size_t x = at[w], y = x - 1 - (size_t)(rnd() % (x < 20 ? x : 20));
            if (ktab_null(&t, x) || ktab_null(&t, y) || ref_key_cmp(x, y) == 0) {
                /* make a strict inversion: a value below everything before
                 * ("k-1000" sorts below every "k0...." string too) */
                t.v[0][x] = -1000;
            } else {
                ktab_swap(&t, x, y);
            }
            uint64_t present = 0;
            for (size_t i = 0; i < t.n; i++) present += !ktab_null(&t, i);
            held = keys_against_reference(&t, chunk, NULL);
            if (one_int && held <= chunk) continue;
            cr_expect_eq(held, present, "iter %d (%s, chunk %zu): out of order at %zu, held %zu of %llu", iter, k,
                         chunk, x, held, (unsigned long long)present);
        }
        ktab_free(&t);
    }
}

/* The fallback re-reads earlier chunks through the layer-file reader too:
 * a file sorted but for a row of its 6th chunk gives the in-memory answer
 * and the reference's. */
Test(quality, composite_keys_fallback_on_files)
{
    enum { N = 10000, CHUNK = 1024 };
    char dir[] = "/tmp/strata_qorder_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    ktab t;
    ktab_sorted(&t, N, 2, "li", 30, true);
    size_t held = keys_against_reference(&t, CHUNK, dir);
    cr_expect_leq(held, 1);
    t.v[0][5 * CHUNK + 17] = -1000;
    t.v[1][5 * CHUNK + 17] = 0;
    held = keys_against_reference(&t, CHUNK, dir);
    cr_expect_gt(held, 5 * CHUNK);
    ktab_free(&t);
    fx_rmtree(dir);
}

/* String key columns of layer files are read through their blocks'
 * dictionaries and compared by rank: the reference's answer with
 * dictionary blocks, with plain blocks (every row its own entry, so equal
 * strings must share a rank), with the string column first, last or
 * alone, in order and with a row swapped out of order. */
Test(quality, string_keys_on_files_compared_by_dictionary_rank_match_reference)
{
    static const char *const kinds[] = {"ls", "sl", "s", "lsl"};
    static const size_t chunks[] = {8, 64, 1024}; /* a file's chunks are powers of two */
    char dir[] = "/tmp/strata_qrank_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    for (int iter = 0; iter < 24; iter++) {
        const char *k = kinds[iter % 4];
        size_t chunk = chunks[(iter / 4) % 3];
        st_format_force_encoding(iter >= 12 ? ST_ENC_PLAIN : -1);
        ktab t;
        ktab_sorted(&t, 300 + rnd() % 900, strlen(k), k, 10 + (int)(rnd() % 70), iter % 3 == 0);
        size_t held = keys_against_reference(&t, chunk, dir);
        cr_expect_leq(held, 1, "iter %d (%s, chunk %zu): in order, held %zu", iter, k, chunk, held);
        size_t x = t.n / 2 + 1, y = t.n / 2 - 3;
        if (!ktab_null(&t, x) && !ktab_null(&t, y) && ref_key_cmp(x, y) != 0) {
            ktab_swap(&t, x, y);
            (void)keys_against_reference(&t, chunk, dir);
        }
        st_format_force_encoding(-1);
        ktab_free(&t);
    }
    fx_rmtree(dir);
}

/* The same suite on the files under dir and on the tables of m: every
 * result alike (status, counts, message, samples), each check having
 * found something; iter names the case in failures. */
static void file_results_as_in_memory(const char *suite, const char *dir, const st_qmem *m, int iter)
{
    st_quality_results *want = run(suite, m, NULL, NULL), *got = NULL;
    st_suite *s = parse_ok(suite);
    st_error e;
    st_error_clear(&e);
    cr_assert_eq(st_suite_run(s, dir, NULL, &got, &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_quality_count(got), st_quality_count(want));
    for (size_t i = 0; i < st_quality_count(want); i++) {
        const st_qresult *x = res(want, i), *y = res(got, i);
        cr_expect_eq(y->status, x->status, "iter %d check %zu", iter, i);
        cr_expect_eq(y->unexpected_count, x->unexpected_count, "iter %d check %zu", iter, i);
        cr_expect_eq(y->rows_checked, x->rows_checked, "iter %d check %zu", iter, i);
        cr_expect_str_eq(y->message, x->message, "iter %d check %zu", iter, i);
        cr_assert_eq(y->n_sample, x->n_sample, "iter %d check %zu", iter, i);
        for (size_t k = 0; k < x->n_sample; k++) {
            cr_expect_eq(y->sample[k].row, x->sample[k].row, "iter %d check %zu", iter, i);
            cr_expect_str_eq(y->sample[k].value, x->sample[k].value, "iter %d check %zu", iter, i);
        }
        cr_expect_gt(x->unexpected_count, 0, "iter %d check %zu found nothing to compare", iter, i);
    }
    st_quality_results_free(want);
    st_quality_results_free(got);
    st_suite_free(s);
}

/* A string key column read through its dictionary leaves its rows'
 * strings unmade until a check needs them: a check after the key check
 * that reads the column whole (values_in_set), one before it, and
 * duplicates whose samples render the strings, on files (dictionary
 * blocks, plain blocks), give what the same suite gives in memory. */
Test(quality, lazy_key_strings_serve_every_check_of_the_column_as_in_memory)
{
    enum { N = 2000 };
    static const char *const mat[] = {"m1", "m3", "m5", "zz", "m22", "m44x"}; /* key order: length, then bytes */
    static const char *const names[] = {"a", "s"};
    static const char *const suites[] = {"[gold.t]\n"
                                         "no_duplicate_keys a, s\n"
                                         "values_in_set s m1, m3, zz\n"
                                         "unique s\n"
                                         "no_duplicate_keys s, a\n",
                                         "[gold.t]\n"
                                         "values_in_set s m1, m3, zz\n"
                                         "no_duplicate_keys a, s\n"
                                         "unique s\n"};
    char dir[] = "/tmp/strata_qlazy_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    int64_t *a = malloc(N * sizeof *a);
    const char **sv = malloc(N * sizeof *sv);
    for (int iter = 0; iter < 4; iter++) {
        int enc = iter & 1;
        const char *suite = suites[iter >> 1];
        size_t n = 0;
        for (int64_t c = 1; n < N; c++)
            for (size_t k = 0; k < 6 && n < N; k++)
                if ((c + (int64_t)k) % 3) {
                    a[n] = c;
                    sv[n++] = mat[k];
                }
        /* repeated keys across rows 700..702 and inside a chunk */
        a[701] = a[700], sv[701] = sv[700];
        a[702] = a[700], sv[702] = sv[700];
        a[1500] = a[1499], sv[1500] = sv[1499];
        st_column cols[2] = {col_i64(a, N), col_str(sv, N)};
        st_format_force_encoding(enc ? ST_ENC_PLAIN : -1);
        write_table_chunked(dir, "gold", "t", names, cols, 2, 256);
        st_format_force_encoding(-1);
        st_qmem *m;
        cr_assert_eq(st_qmem_new(&m), ST_OK);
        cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, 2, 256, NULL), ST_OK);
        file_results_as_in_memory(suite, dir, m, iter);
        st_qmem_free(m);
        st_column_free(&cols[0]);
        st_column_free(&cols[1]);
    }
    free(a);
    free(sv);
    fx_rmtree(dir);
}

/* Integer key columns whose blocks are runs (RLE, CONST) are read as runs
 * by the key checks: composite keys of runs and strings, keys of runs
 * only, duplicates inside a run and across a chunk boundary, a check
 * after the key check that reads the column whole, and a key out of
 * order give on files (runs, and plain blocks) what the same suite gives
 * in memory. */
Test(quality, key_columns_read_as_runs_serve_every_check_as_in_memory)
{
    enum { N = 3000 };
    static const char *const names[] = {"c", "p", "s"};
    static const char *const suites[] = {"[gold.t]\n"
                                         "no_duplicate_keys c, p, s\n"
                                         "values_between c 1 .. 5\n"
                                         "values_between p 202001 .. 202003\n"
                                         "no_duplicate_keys c, p\n"
                                         "unique c\n",
                                         "[gold.t]\n"
                                         "values_between c 1 .. 5\n"
                                         "no_duplicate_keys p, s\n"
                                         "no_duplicate_keys c, s, p\n"};
    char mat[20][16]; /* "m00" .. "m19": one length, so key order is byte order */
    for (int k = 0; k < 20; k++) snprintf(mat[k], sizeof mat[k], "m%02d", k);
    char dir[] = "/tmp/strata_qruns_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    int64_t *c = malloc(N * sizeof *c);
    int32_t *pk = malloc(N * sizeof *pk);
    const char **sv = malloc(N * sizeof *sv);
    for (int iter = 0; iter < 4; iter++) {
        int enc = iter & 1;
        size_t n = 0;
        for (int64_t cust = 1; n < N; cust++)
            for (int32_t m = 1; m <= 12 && n < N; m++)
                for (size_t k = 0; k < 20 && n < N; k++)
                    if ((cust + m + (int64_t)k) % 4) {
                        c[n] = cust;
                        pk[n] = 202000 + m;
                        sv[n++] = mat[k];
                    }
        /* a key repeated across the boundary of the 512-row chunks, and inside one */
        c[512] = c[511], pk[512] = pk[511], sv[512] = sv[511];
        c[513] = c[511], pk[513] = pk[511], sv[513] = sv[511];
        c[2000] = c[1999], pk[2000] = pk[1999], sv[2000] = sv[1999];
        /* the last rows go back to an earlier month of their customer: keys out of order */
        for (size_t i = N - 10; i < N; i++) c[i] = c[N - 11], pk[i] = 202001;
        st_column cols[3] = {col_i64(c, N), col_i32(pk, N), col_str(sv, N)};
        st_format_force_encoding(enc ? ST_ENC_PLAIN : -1);
        write_table_chunked(dir, "gold", "t", names, cols, 3, 512);
        st_format_force_encoding(-1);
        st_qmem *m;
        cr_assert_eq(st_qmem_new(&m), ST_OK);
        cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, 3, 512, NULL), ST_OK);
        file_results_as_in_memory(suites[iter >> 1], dir, m, iter);
        st_qmem_free(m);
        for (int j = 0; j < 3; j++) st_column_free(&cols[j]);
    }
    free(c);
    free(pk);
    free(sv);
    fx_rmtree(dir);
}

/* At the size of a platinum table's chunking: 1M (customer_id, period_key)
 * rows in key order, with repeats across a chunk boundary, hold one key. */
Test(quality, composite_keys_in_order_hold_one_key)
{
    enum { N = 1000000 };
    int64_t *c = malloc(N * sizeof *c);
    int32_t *p = malloc(N * sizeof *p);
    for (size_t i = 0; i < N; i++) {
        c[i] = (int64_t)(i / 60) + 1;
        p[i] = 202001 + (int32_t)(i % 60);
    }
    /* rows ST_CHUNK_ROWS - 1 .. ST_CHUNK_ROWS + 1 become one key */
    for (size_t i = ST_CHUNK_ROWS; i <= ST_CHUNK_ROWS + 1; i++) {
        c[i] = c[ST_CHUNK_ROWS - 1];
        p[i] = p[ST_CHUNK_ROWS - 1];
    }
    /* so the next row must not fall below them */
    cr_assert(c[ST_CHUNK_ROWS + 2] > c[ST_CHUNK_ROWS - 1] ||
              (c[ST_CHUNK_ROWS + 2] == c[ST_CHUNK_ROWS - 1] && p[ST_CHUNK_ROWS + 2] > p[ST_CHUNK_ROWS - 1]));
    st_column cols[2] = {col_i64(c, N), col_i32(p, N)};
    st_qmem *m;
    cr_assert_eq(st_qmem_new(&m), ST_OK);
    const char *names[] = {"customer_id", "period_key"};
    cr_assert_eq(st_qmem_add(m, "platinum", "summary", names, cols, 2, 0, NULL), ST_OK);
    st_quality_results *r = run("[platinum.summary]\nno_duplicate_keys customer_id, period_key\n", m, NULL, NULL);
    const st_qresult *q = res(r, 0);
    cr_expect_eq(q->rows_checked, N);
    cr_expect_eq(q->unexpected_count, 2);
    cr_expect_str_eq(q->message, "2 duplicate rows over 1 repeated key of (customer_id,period_key) in platinum.summary");
    cr_assert_eq(q->n_sample, 2);
    cr_expect_eq(q->sample[0].row, ST_CHUNK_ROWS);
    cr_expect_eq(q->sample[1].row, ST_CHUNK_ROWS + 1);
    char v[64];
    snprintf(v, sizeof v, "(%lld, %d)", (long long)c[ST_CHUNK_ROWS - 1], (int)p[ST_CHUNK_ROWS - 1]);
    cr_expect_str_eq(q->sample[0].value, v);
    cr_expect_leq(st_quality_max_keys_held(r), 1, "held %zu keys", st_quality_max_keys_held(r));
    st_quality_results_free(r);
    st_qmem_free(m);
    st_column_free(&cols[0]);
    st_column_free(&cols[1]);
    free(c);
    free(p);
}

/* no_duplicate_keys over an (int, string) key whose rows arrive in key
 * order (the gold unified table's shape): keys compared row to row inside
 * a chunk and to the carried key across chunks count the same duplicates,
 * repeated keys and samples as a naive count, for every chunk size; a row
 * below its predecessor (the last case) sends the check to the collector
 * with the same result. Strings order by length first, as their encoding
 * does ("zz" < "aaa"). */
Test(quality, ordered_mixed_keys_count_duplicates_like_a_naive_count)
{
    static const int64_t a[] = {1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4};
    static const char *const sv[] = {"b", "b", "zz", "aaa", "a", "a", "a", "c", "cc", "", "", "x", "x", "q"};
    enum { N = sizeof a / sizeof *a };
    for (int unordered = 0; unordered < 2; unordered++)
        for (size_t chunk = 1; chunk <= 8; chunk *= 2) {
            int64_t v[N];
            memcpy(v, a, sizeof v);
            if (unordered) v[N - 1] = 0; /* the last row goes back */
            st_column ci = col_i64(v, N), cs;
            st_column_init(&cs, ST_TYPE_STR);
            for (size_t i = 0; i < N; i++) cr_assert_eq(st_column_push_str(&cs, sv[i], strlen(sv[i])), ST_OK);
            st_column cols[2] = {ci, cs};
            const char *names[] = {"k", "s"};
            st_qmem *m;
            cr_assert_eq(st_qmem_new(&m), ST_OK);
            cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, 2, chunk, NULL), ST_OK);
            st_quality_results *r = run("[gold.t]\nno_duplicate_keys k, s\n", m, NULL, NULL);
            const st_qresult *q = res(r, 0);
            uint64_t dups = 0, keys = 0;
            for (size_t i = 0; i < N; i++) {
                size_t before = 0;
                for (size_t j = 0; j < i; j++) before += v[j] == v[i] && !strcmp(sv[j], sv[i]);
                dups += before > 0;
                keys += before == 1;
            }
            cr_expect_eq(dups, 5, "the fixture's duplicate rows");
            cr_expect_eq(q->rows_checked, N, "chunk %zu", chunk);
            cr_expect_eq(q->unexpected_count, dups, "chunk %zu, unordered %d", chunk, unordered);
            cr_expect_eq(q->n_sample, dups, "chunk %zu, unordered %d", chunk, unordered);
            static const int64_t rows[] = {1, 5, 6, 10, 12};
            for (size_t k = 0; k < q->n_sample && k < 5; k++) cr_expect_eq(q->sample[k].row, rows[k], "sample %zu", k);
            char want[200];
            snprintf(want, sizeof want, "%llu duplicate rows over %llu repeated keys of (k,s) in gold.t",
                     (unsigned long long)dups, (unsigned long long)keys);
            cr_expect_str_eq(q->message, want, "chunk %zu: %s", chunk, q->message);
            st_quality_results_free(r);
            st_qmem_free(m);
            st_column_free(&ci);
            st_column_free(&cs);
        }
}

/* The ordered path's string comparison on long keys: for lengths across
 * the 4- and 8-byte steps and past 16 (memcmp), strings that differ at
 * each position, in key order with a duplicate after each, count what a
 * naive count finds; a last row equal to an earlier key and below its
 * predecessor only at its last byte must leave the ordered path, or the
 * repeat would go unseen. */
/* Inside a chunk the streamed keys are compared column by column, across
 * chunks as encoded bytes: both must order strings as memcmp does. With a
 * comparator that read a 4..16-byte string's last word in machine order,
 * M ("aaaaba") would sort below K ("aaaaab") inside the second chunk while
 * above L ("aaaaac") across the chunk boundary, and K's repeat would go
 * unseen. Lengths 6 and 12 (one word and two). */
Test(quality, streamed_string_keys_order_as_memcmp_inside_and_across_chunks)
{
    for (int wide = 0; wide < 2; wide++) {
        const char *k = wide ? "aaaaaaaaaaab" : "aaaaab", *l = wide ? "aaaaaaaaaaac" : "aaaaac",
                   *mm = wide ? "aaaaaaaaaaba" : "aaaaba";
        const char *rows[4] = {k, l, mm, k};
        st_column cs;
        st_column_init(&cs, ST_TYPE_STR);
        for (int i = 0; i < 4; i++) cr_assert_eq(st_column_push_str(&cs, rows[i], strlen(rows[i])), ST_OK);
        const char *names[] = {"s"};
        st_qmem *m;
        cr_assert_eq(st_qmem_new(&m), ST_OK);
        cr_assert_eq(st_qmem_add(m, "gold", "t", names, &cs, 1, 2, NULL), ST_OK);
        st_quality_results *r = run("[gold.t]\nno_duplicate_keys s\n", m, NULL, NULL);
        const st_qresult *q = res(r, 0);
        cr_expect_eq(q->rows_checked, 4);
        cr_expect_eq(q->unexpected_count, 1, "length %zu: %s", strlen(k), q->message);
        st_quality_results_free(r);
        st_qmem_free(m);
        st_column_free(&cs);
    }
}

Test(quality, ordered_long_string_keys_count_like_a_naive_count)
{
    static const size_t lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (int back = 0; back < 2; back++) {
            size_t len = lens[li], n = 0;
            char s[2 * 26 + 3][32];
            memset(s[n], 'a', len), s[n][len] = 0, n++; /* the base */
            memcpy(s[n], s[n - 1], len + 1), n++;
            char x[32]; /* just below the last variant, by its last byte */
            memset(x, 'a', len), x[0] = 'b', x[len - 1] = '`', x[len] = 0;
            for (size_t d = len; d-- > 0;) { /* one byte up at d: later d first, in key order */
                if (d == 0) memcpy(s[n], x, len + 1), n++;
                memcpy(s[n], s[0], len + 1), s[n][d] = 'b', n++;
                memcpy(s[n], s[n - 1], len + 1), n++;
            }
            if (back) memcpy(s[n], x, len + 1), n++; /* x again, below its predecessor at the last byte */
            int64_t k[2 * 26 + 3];
            st_column cs;
            st_column_init(&cs, ST_TYPE_STR);
            for (size_t i = 0; i < n; i++) {
                k[i] = 7;
                cr_assert_eq(st_column_push_str(&cs, s[i], len), ST_OK);
            }
            st_column cols[2] = {col_i64(k, n), cs};
            const char *names[] = {"k", "s"};
            st_qmem *m;
            cr_assert_eq(st_qmem_new(&m), ST_OK);
            cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, 2, 0, NULL), ST_OK);
            st_quality_results *r = run("[gold.t]\nno_duplicate_keys k, s\n", m, NULL, NULL);
            const st_qresult *q = res(r, 0);
            uint64_t dups = 0;
            for (size_t i = 0; i < n; i++) {
                bool before = false;
                for (size_t j = 0; j < i; j++) before |= !strcmp(s[j], s[i]);
                dups += before;
            }
            cr_expect_eq(dups, len + 1 + (size_t)back, "the fixture's duplicate rows");
            cr_expect_eq(q->rows_checked, n, "len %zu", len);
            cr_expect_eq(q->unexpected_count, dups, "len %zu, back %d: %s", len, back, q->message);
            st_quality_results_free(r);
            st_qmem_free(m);
            st_column_free(&cols[0]);
            st_column_free(&cs);
        }
}

/* The ordered path compares a chunk's rows without NULLs a key column at a
 * time (order_rows, against cmp_rows): a five-column key of every type (an
 * int32, a bool, a float with -0.0 and 0.0 the same key, strings by length
 * then bytes, an int64) over 3,000 rows in key order with many repeats
 * counts the duplicate rows, repeated keys and sampled rows a naive count
 * finds, for several chunk sizes; with a NULL string in one row (that
 * chunk takes the row-by-row loop, the row is not checked) and with the
 * last row below its predecessor (the collector) too; in key order no key
 * is held (the streamed path stayed). */
typedef struct mixed_key {
    int32_t a;
    bool b;
    double f;
    const char *s;
    int64_t c;
} mixed_key;

static uint64_t key_bits(double f)
{
    uint64_t x;
    if (f == 0) f = 0;
    memcpy(&x, &f, 8);
    return x;
}

static int mixed_cmp(const void *pa, const void *pb)
{
    const mixed_key *x = pa, *y = pb;
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    if (key_bits(x->f) != key_bits(y->f)) return key_bits(x->f) < key_bits(y->f) ? -1 : 1;
    size_t lx = strlen(x->s), ly = strlen(y->s);
    if (lx != ly) return lx < ly ? -1 : 1;
    int d = memcmp(x->s, y->s, lx);
    if (d) return d;
    return x->c < y->c ? -1 : x->c > y->c;
}

/* Key order, and among equal keys 0.0 before -0.0 (by their raw bits):
 * a comparison that told them apart would then see a repeat as a rise
 * and miss it, instead of a fall that the collector would recount. */
static int mixed_sort_cmp(const void *pa, const void *pb)
{
    const mixed_key *x = pa, *y = pb;
    int d = mixed_cmp(pa, pb);
    uint64_t bx, by;
    memcpy(&bx, &x->f, 8);
    memcpy(&by, &y->f, 8);
    return d ? d : (bx > by) - (bx < by);
}

Test(quality, ordered_keys_of_every_type_count_duplicates_like_a_naive_count)
{
    enum { N = 3000 };
    static const double fv[] = {-1.5, -0.0, 0.0, 2.25};
    static const char *const sv[] = {"", "a", "b", "zz", "aaa", "aaaaaaaaab", "aaaaaaaaaaaaaaaaaaaaaz"};
    mixed_key *k = malloc(N * sizeof *k);
    cr_assert(k);
    uint64_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(x >> 33);
        k[i] = (mixed_key){(int32_t)(r % 3) - 1, (r >> 2) & 1, fv[(r >> 3) % 4], sv[(r >> 5) % 7],
                           (int64_t)((r >> 8) % 2) - 1};
    }
    qsort(k, N, sizeof *k, mixed_sort_cmp);
    static const size_t chunks[] = {0, 7, 64, 1000};
    for (int variant = 0; variant < 3; variant++)
        for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
            size_t null_row = variant == 1 ? 1500 : SIZE_MAX;
            if (variant == 2) k[N - 1].a = -5; /* the last row goes back */
            int32_t a[N];
            int64_t c[N];
            double f[N];
            const char *s[N];
            st_column b;
            st_column_init(&b, ST_TYPE_BOOL);
            for (size_t i = 0; i < N; i++) {
                a[i] = k[i].a, c[i] = k[i].c, f[i] = k[i].f, s[i] = i == null_row ? NULL : k[i].s;
                cr_assert_eq(st_column_push_bool(&b, k[i].b), ST_OK);
            }
            st_column cols[5] = {col_i32(a, N), b, col_f64(f, N), col_str(s, N), col_i64(c, N)};
            const char *names[] = {"a", "b", "f", "s", "c"};
            st_qmem *m;
            cr_assert_eq(st_qmem_new(&m), ST_OK);
            cr_assert_eq(st_qmem_add(m, "gold", "t", names, cols, 5, chunks[ci], NULL), ST_OK);
            st_quality_results *r = run("[gold.t]\nno_duplicate_keys a, b, f, s, c\n", m, NULL, NULL);
            const st_qresult *q = res(r, 0);
            /* naive: a row is a duplicate when an earlier checked row has its key */
            uint64_t dups = 0, keys = 0, checked = 0;
            int64_t first_dup[ST_QSAMPLE_MAX];
            size_t n_first = 0;
            for (size_t i = 0; i < N; i++) {
                if (i == null_row) continue;
                checked++;
                size_t before = 0;
                for (size_t j = 0; j < i; j++) before += j != null_row && mixed_cmp(&k[j], &k[i]) == 0;
                dups += before > 0;
                keys += before == 1;
                if (before > 0 && n_first < ST_QSAMPLE_MAX) first_dup[n_first++] = (int64_t)i;
            }
            cr_expect_eq(q->rows_checked, checked, "variant %d, chunk %zu", variant, chunks[ci]);
            cr_expect_eq(q->unexpected_count, dups, "variant %d, chunk %zu: %s", variant, chunks[ci], q->message);
            char want[200];
            snprintf(want, sizeof want, "%llu duplicate rows over %llu repeated keys of (a,b,f,s,c) in gold.t",
                     (unsigned long long)dups, (unsigned long long)keys);
            cr_expect_str_eq(q->message, want, "variant %d, chunk %zu", variant, chunks[ci]);
            cr_expect_eq(q->n_sample, n_first, "variant %d, chunk %zu", variant, chunks[ci]);
            if (variant < 2) /* in key order: streamed, nothing collected */
                cr_expect_leq(st_quality_max_keys_held(r), 1, "variant %d, chunk %zu: held %zu keys", variant,
                              chunks[ci], st_quality_max_keys_held(r));
            for (size_t i = 0; i < q->n_sample && i < n_first; i++)
                cr_expect_eq(q->sample[i].row, first_dup[i], "variant %d, chunk %zu: sample %zu", variant, chunks[ci],
                             i);
            st_quality_results_free(r);
            st_qmem_free(m);
            for (int j = 0; j < 5; j++) st_column_free(&cols[j]);
        }
    free(k);
}
