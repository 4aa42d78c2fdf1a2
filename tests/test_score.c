/*
 * test_score.c: `strata score`. A run fits the model on a generated
 * source; scoring that same source must give back, row for row, the
 * cluster and persona platinum.fct_transactions holds (same scaling, same
 * assignment kernel, no refit). A second source (another seed) is scored
 * into personas of the model; a model without the scaler metadata is
 * refused with a message saying how to rebuild it; --format csv prints
 * the rows.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "strata/column.h"
#include "strata/file.h"

TestSuite(score, .timeout = 180);

/* Reads customer_id, period_key, cluster, persona of a layer file whole. */
static void read_personas(const char *path, st_column *cols)
{
    static const char *const names[4] = {"customer_id", "period_key", "cluster", "persona"};
    st_reader *r;
    st_error e;
    cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
    size_t which[4];
    for (int i = 0; i < 4; i++) {
        int ix = st_reader_find(r, names[i]);
        cr_assert_geq(ix, 0, "%s has no %s", path, names[i]);
        which[i] = (size_t)ix;
        st_column_init(&cols[i], st_reader_field(r, which[i])->type);
    }
    cr_assert_eq(st_reader_read_all(r, which, 4, cols, &e), ST_OK, "%s", e.msg);
    st_reader_close(r);
}

static void free_cols(st_column *c)
{
    for (int i = 0; i < 4; i++) st_column_free(&c[i]);
}

/* Reads <dir>/wh/platinum/fct_transactions.strata into f and <dir>/same.strata
 * into s, and asserts they agree row for row: customer, period, cluster, persona. */
static void expect_same_personas(const char *dir, st_column *f, st_column *s)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/wh/platinum/fct_transactions.strata", dir);
    snprintf(b, sizeof b, "%s/same.strata", dir);
    read_personas(a, f);
    read_personas(b, s);
    cr_assert_gt(f[0].n_rows, 100);
    cr_assert_eq(s[0].n_rows, f[0].n_rows, "scored %zu rows, fitted %zu", s[0].n_rows, f[0].n_rows);
    for (size_t i = 0; i < f[0].n_rows; i++) {
        cr_assert_eq(st_column_i64(&s[0])[i], st_column_i64(&f[0])[i], "row %zu", i);
        cr_assert_eq(st_column_i32(&s[1])[i], st_column_i32(&f[1])[i], "row %zu", i);
        cr_assert_eq(st_column_i32(&s[2])[i], st_column_i32(&f[2])[i], "cluster of row %zu", i);
        size_t la, lb;
        const char *pa = st_column_str(&s[3], i, &la), *pb = st_column_str(&f[3], i, &lb);
        cr_assert(la == lb && !memcmp(pa, pb, la), "persona of row %zu: %.*s vs %.*s", i, (int)la, pa, (int)lb, pb);
    }
}

Test(score, same_source_reproduces_the_fitted_personas_and_new_source_is_scored)
{
    char dir[64];
    fx_tmpdir(dir, sizeof dir, "strata-score-");
    char cmd[2048], b[512];
    snprintf(cmd, sizeof cmd,
             "%s gen --out %s/tx.db --rows 40000 --customers 60 --months 18 --seed 11 >/dev/null 2>&1 && "
             "%s gen --out %s/new.db --rows 20000 --customers 60 --months 6 --start-year 2022 --seed 12 >/dev/null 2>&1 && "
             "%s run --customers data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --k auto >/dev/null 2>&1",
             fx_bin(), dir, fx_bin(), dir, fx_bin(), dir, dir);
    cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);

    /* 1. the fitted months: the same cluster and persona on every row */
    snprintf(cmd, sizeof cmd,
             "%s score --warehouse %s/wh --customers data/chinook.db --transactions %s/tx.db --out %s/same.strata "
             "--threads 1 2>%s/err.txt",
             fx_bin(), dir, dir, dir, dir);
    cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);
    st_column f[4], s[4];
    expect_same_personas(dir, f, s);
    free_cols(s);

    /* 2. a new source: its own months, personas of the model only; the warehouse is unchanged */
    snprintf(cmd, sizeof cmd,
             "%s score --warehouse=%s/wh --customers data/chinook.db --transactions %s/new.db --out %s/new.strata "
             ">/dev/null 2>&1 && ! ls -d %s/wh/_score.* >/dev/null 2>&1",
             fx_bin(), dir, dir, dir, dir);
    cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);
    snprintf(b, sizeof b, "%s/new.strata", dir);
    read_personas(b, s);
    cr_assert_gt(s[0].n_rows, 0);
    for (size_t i = 0; i < s[0].n_rows; i++) {
        int32_t p = st_column_i32(&s[1])[i];
        cr_assert(p >= 202201 && p <= 202206, "period %d", (int)p);
        size_t la;
        const char *pa = st_column_str(&s[3], i, &la);
        bool found = false;
        for (size_t j = 0; j < f[0].n_rows && !found; j++) {
            size_t lb;
            const char *pb = st_column_str(&f[3], j, &lb);
            found = st_column_i32(&f[2])[j] == st_column_i32(&s[2])[i] && la == lb && !memcmp(pa, pb, la);
        }
        cr_assert(found, "row %zu: cluster %d / %.*s is not a cluster of the model", i, (int)st_column_i32(&s[2])[i],
                  (int)la, pa);
    }
    free_cols(s);
    free_cols(f);

    /* 3. CSV on standard output */
    snprintf(cmd, sizeof cmd,
             "%s score --warehouse %s/wh --customers data/chinook.db --transactions %s/new.db --out %s/csv.strata "
             "--format csv > %s/out.csv 2>/dev/null && head -1 %s/out.csv | grep -q '^customer_id,year,month,period_key,.*,cluster,persona'",
             fx_bin(), dir, dir, dir, dir, dir);
    cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);

    /* 4. usage errors and a missing model */
    snprintf(cmd, sizeof cmd, "%s score --warehouse %s/wh >/dev/null 2>&1", fx_bin(), dir);
    cr_assert_eq(fx_sh("%s", cmd), 2);
    snprintf(cmd, sizeof cmd, "%s score --warehouse %s/nowhere --transactions %s/new.db >/dev/null 2>&1", fx_bin(), dir, dir);
    cr_assert_neq(fx_sh("%s", cmd), 0);

    fx_rmtree(dir);
}

/* A model fitted with other stage rules: score applies the fit's rules
 * (read from the silver params), so the fitted source comes back row for
 * row; with the defaults the rejected year would be scored too. */
Test(score, applies_the_stage_rules_the_model_was_fitted_with)
{
    char dir[64];
    fx_tmpdir(dir, sizeof dir, "strata-score-rules-");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s gen --out %s/tx.db --rows 30000 --customers 40 --months 24 --start-year 2020 --seed 5 >/dev/null 2>&1 && "
             "%s run --customers data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --year-min 2021 "
             ">/dev/null 2>&1 && "
             "%s score --warehouse %s/wh --customers data/chinook.db --transactions %s/tx.db --out %s/same.strata "
             ">/dev/null 2>&1",
             fx_bin(), dir, fx_bin(), dir, dir, fx_bin(), dir, dir, dir);
    cr_assert_eq(fx_sh("%s", cmd), 0, "%s", cmd);
    st_column f[4], s[4];
    expect_same_personas(dir, f, s);
    for (size_t i = 0; i < s[0].n_rows; i++)
        cr_assert_geq(st_column_i32(&s[1])[i], 202101, "row %zu: a year the fit rejected", i);
    free_cols(s);
    free_cols(f);
    fx_rmtree(dir);
}
