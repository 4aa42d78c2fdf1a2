/*
 * fuzz_suite.c: arbitrary bytes through the suite parser (st_suite_parse)
 * and, when they parse, through the evaluator.
 *
 * For an accepted suite, every section's table (and every referential or
 * reject_rate target) is registered as a small in-memory table with
 * columns of each type under the names a (int64 with NULLs), b (string),
 * c (float64 with NaN), d (int32) and a__class (int32), so the evaluator
 * runs real expectations on fuzzer-chosen bounds, value sets and key
 * lists. Checks: no crash or sanitizer report, every expectation yields a
 * result, the error message of a rejected suite is non-empty and names
 * the suite, and the JSON is produced.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/buf.h"
#include "strata/quality.h"

static st_column cols[5];
static bool cols_ready;

static void build_columns(void)
{
    if (cols_ready) return;
    st_column_init(&cols[0], ST_TYPE_I64);
    st_column_init(&cols[1], ST_TYPE_STR);
    st_column_init(&cols[2], ST_TYPE_F64);
    st_column_init(&cols[3], ST_TYPE_I32);
    st_column_init(&cols[4], ST_TYPE_I32);
    static const char *const strs[] = {"raw_sales_quantity", "x", "", "raw_customer", "b c", "A"};
    for (int i = 0; i < 23; i++) {
        st_status s = (i % 7 == 3) ? st_column_push_null(&cols[0]) : st_column_push_i64(&cols[0], (i * 37) % 11 - 3);
        s |= (i % 5 == 4) ? st_column_push_null(&cols[1]) : st_column_push_str(&cols[1], strs[i % 6], strlen(strs[i % 6]));
        s |= st_column_push_f64(&cols[2], i % 9 == 0 ? NAN : i * 0.25 - 1);
        s |= st_column_push_i32(&cols[3], 1990 + i % 13);
        s |= st_column_push_i32(&cols[4], i % 5);
        if (s != ST_OK) abort();
    }
    cols_ready = true;
}

static void add_table(st_qmem *m, const char *layer, const char *table)
{
    static const char *const names[] = {"a", "b", "c", "d", "a__class"};
    /* A duplicate add fails with ST_ERR_INVALID, which is fine here. */
    (void)st_qmem_add(m, layer, table, names, cols, 5, 4, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_suite *s = NULL;
    st_error err;
    st_error_clear(&err);
    st_status rc = st_suite_parse(&s, (const char *)data, size, "fuzz.suite", &err);
    if (rc != ST_OK) {
        if (s != NULL || err.msg[0] == '\0') abort();
        if (rc == ST_ERR_INVALID && strncmp(err.msg, "fuzz.suite:", 11) != 0) abort();
        return 0;
    }
    build_columns();
    st_qmem *m = NULL;
    if (st_qmem_new(&m) != ST_OK) abort();
    for (size_t i = 0; i < st_suite_count(s); i++) {
        const st_expectation *e = st_suite_get(s, i);
        if (!e || !e->id || !e->args) abort();
        add_table(m, e->layer, e->table);
        if (e->kind == ST_Q_REFERENTIAL) add_table(m, e->ref_layer, e->ref_table);
        if (e->kind == ST_Q_REJECT_RATE) add_table(m, "bronze", e->source_table);
    }
    st_quality_results *r = NULL;
    if (st_suite_run_mem(s, m, NULL, &r, &err) != ST_OK) abort();
    if (st_quality_count(r) != st_suite_count(s)) abort();
    st_buf b;
    st_buf_init(&b);
    st_quality_to_json(r, &b);
    if (!st_buf_ok(&b) || b.len == 0) abort();
    st_buf_free(&b);
    (void)st_quality_has_error(r);
    (void)st_quality_check(r, &err);
    static FILE *devnull;
    if (!devnull) devnull = fopen("/dev/null", "w");
    if (devnull) st_quality_print_summary(r, devnull);
    st_quality_results_free(r);
    st_qmem_free(m);
    st_suite_free(s);
    return 0;
}
