/*
 * test_gen.c: the demo source generator (strata/gen.h, `strata gen`).
 * Small row counts through the library call; the CLI only for flags,
 * help and the refuse-to-overwrite rule.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/gen.h"

#define PIN_SUM_Q 210993
#define PIN_SUM_F 49961
#define PIN_SUM_C 1838694

static char tmpdir[256];

static void setup(void) { fx_tmpdir(tmpdir, sizeof tmpdir, "strata_gen_"); }
static void teardown(void) { fx_rmtree(tmpdir); }

TestSuite(gen, .init = setup, .fini = teardown);

static void small_opts(st_gen_opts *o, uint64_t seed)
{
    st_gen_opts_default(o);
    o->rows = 6000;
    o->customers = 20;
    o->months = 24;
    o->materials = 30;
    o->start_year = 2021;
    o->seed = seed;
}

static void gen_to(const st_gen_opts *o, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    st_error err = {0};
    cr_assert_eq(st_gen_write(o, path, &err), ST_OK, "%s", err.msg);
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static int64_t q1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* FNV-1a over every value of every row (type byte + bytes) in rowid order. */
static uint64_t table_hash(sqlite3 *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY rowid", table);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    uint64_t h = 1469598103934665603ull;
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int k = 0; k < sqlite3_column_count(st); k++) {
            unsigned char t = (unsigned char)sqlite3_column_type(st, k);
            const unsigned char *p = sqlite3_column_text(st, k);
            int n = sqlite3_column_bytes(st, k);
            h = (h ^ t) * 1099511628211ull;
            for (int i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
            h = (h ^ 0xFF) * 1099511628211ull;
        }
    }
    sqlite3_finalize(st);
    return h;
}

Test(gen, counts_and_ranges)
{
    st_gen_opts o;
    small_opts(&o, 7);
    char p[400];
    gen_to(&o, "g.db", p, sizeof p);
    sqlite3 *db = open_db(p);
    static const char *const tables[] = {"sales_qty", "foc_qty"};
    static const char *const qty[] = {"quantity", "quantity_foc"};
    for (int t = 0; t < 2; t++) {
        char sql[300];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[t]);
        cr_expect_eq(q1(db, sql), 6000);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE customer_id NOT BETWEEN 1 AND 20"
                                  " OR typeof(customer_id) <> 'integer'", tables[t]);
        cr_expect_eq(q1(db, sql), 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE month NOT BETWEEN 1 AND 12 OR year NOT BETWEEN 2021 AND 2022",
                 tables[t]);
        cr_expect_eq(q1(db, sql), 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE material_code NOT GLOB 'MAT[0-9][0-9][0-9][0-9]'"
                                  " OR CAST(substr(material_code, 4) AS INTEGER) NOT BETWEEN 1 AND 30", tables[t]);
        cr_expect_eq(q1(db, sql), 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE typeof(%s) <> 'integer' OR %s < 1", tables[t], qty[t],
                 qty[t]);
        cr_expect_eq(q1(db, sql), 0);
        /* period order */
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s a JOIN %s b ON b.rowid = a.rowid + 1"
                                  " WHERE b.year * 100 + b.month < a.year * 100 + a.month", tables[t], tables[t]);
        cr_expect_eq(q1(db, sql), 0);
        snprintf(sql, sizeof sql, "SELECT count(DISTINCT material_code) FROM %s", tables[t]);
        cr_expect_gt(q1(db, sql), 10);
    }
    /* the declared schema */
    cr_expect_eq(q1(db, "SELECT count(*) FROM pragma_table_info('sales_qty') WHERE"
                        " (name, type) IN (VALUES ('customer_id','INTEGER'),('year','INTEGER'),('month','INTEGER'),"
                        "('material_code','TEXT'),('quantity','INTEGER'))"), 5);
    cr_expect_eq(q1(db, "SELECT count(*) FROM pragma_table_info('foc_qty') WHERE name = 'quantity_foc'"), 1);
    sqlite3_close(db);
}

Test(gen, deterministic_by_seed)
{
    st_gen_opts o;
    small_opts(&o, 1);
    char a[400], b[400], c[400];
    gen_to(&o, "a.db", a, sizeof a);
    gen_to(&o, "b.db", b, sizeof b);
    o.seed = 2;
    gen_to(&o, "c.db", c, sizeof c);
    sqlite3 *da = open_db(a), *db = open_db(b), *dc = open_db(c);
    cr_expect_eq(table_hash(da, "sales_qty"), table_hash(db, "sales_qty"));
    cr_expect_eq(table_hash(da, "foc_qty"), table_hash(db, "foc_qty"));
    cr_expect_neq(table_hash(da, "sales_qty"), table_hash(dc, "sales_qty"));
    cr_expect_neq(table_hash(da, "foc_qty"), table_hash(dc, "foc_qty"));
    sqlite3_close(da);
    sqlite3_close(db);
    sqlite3_close(dc);
}

Test(gen, pinned_output_for_seed_42)
{
    /* Guards cross-platform and cross-version stability: if the model
     * changes on purpose, update these numbers. */
    st_gen_opts o;
    small_opts(&o, 42);
    char p[400];
    gen_to(&o, "p.db", p, sizeof p);
    sqlite3 *db = open_db(p);
    int64_t sum_q = q1(db, "SELECT sum(quantity) FROM sales_qty");
    int64_t sum_f = q1(db, "SELECT sum(quantity_foc) FROM foc_qty");
    int64_t sum_c = q1(db, "SELECT sum(customer_id * 31 + month) FROM sales_qty");
    cr_log_info("pinned: %lld %lld %lld", (long long)sum_q, (long long)sum_f, (long long)sum_c);
    cr_expect_eq(sum_q, PIN_SUM_Q);
    cr_expect_eq(sum_f, PIN_SUM_F);
    cr_expect_eq(sum_c, PIN_SUM_C);
    sqlite3_close(db);
}

Test(gen, archetypes_shape_the_data)
{
    st_gen_opts o;
    small_opts(&o, 3);
    o.customers = 40;
    o.rows = 20000;
    char p[400];
    gen_to(&o, "arch.db", p, sizeof p);
    uint8_t arch[40];
    st_error err = {0};
    cr_assert_eq(st_gen_archetypes(&o, arch, &err), ST_OK);
    int count[ST_ARCH_COUNT] = {0};
    for (int c = 0; c < 40; c++) {
        cr_assert_lt(arch[c], ST_ARCH_COUNT);
        count[arch[c]]++;
    }
    for (int a = 0; a < ST_ARCH_COUNT; a++) cr_expect_gt(count[a], 0, "no %s customer", st_gen_archetype_name(a));

    sqlite3 *db = open_db(p);
    double sold[ST_ARCH_COUNT] = {0}, foc[ST_ARCH_COUNT] = {0}, early[ST_ARCH_COUNT] = {0}, late[ST_ARCH_COUNT] = {0};
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT customer_id, (year - 2021) * 12 + month - 1, sum(quantity)"
                                        " FROM sales_qty GROUP BY 1, 2", -1, &st, NULL), SQLITE_OK);
    /* active months per customer, to find gaps */
    int active[40][24];
    memset(active, 0, sizeof active);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int c = sqlite3_column_int(st, 0) - 1, m = sqlite3_column_int(st, 1);
        double q = sqlite3_column_double(st, 2);
        sold[arch[c]] += q;
        if (m < 6) early[arch[c]] += q;
        if (m >= 18) late[arch[c]] += q;
        active[c][m] = 1;
    }
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT customer_id, sum(quantity_foc) FROM foc_qty GROUP BY 1", -1, &st, NULL),
                 SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) foc[arch[sqlite3_column_int(st, 0) - 1]] += sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    double share[ST_ARCH_COUNT];
    for (int a = 0; a < ST_ARCH_COUNT; a++) {
        share[a] = foc[a] / sold[a];
        cr_log_info("%s: sold %.0f foc share %.3f", st_gen_archetype_name(a), sold[a], share[a]);
    }
    for (int a = 0; a < ST_ARCH_COUNT; a++) {
        if (a != ST_ARCH_PROMO) cr_expect_gt(share[ST_ARCH_PROMO], 2 * share[a], "promo vs %s", st_gen_archetype_name(a));
        if (a != ST_ARCH_CHAMPION)
            cr_expect_lt(share[ST_ARCH_CHAMPION], share[a], "champion vs %s", st_gen_archetype_name(a));
    }
    /* champions buy the most per customer */
    for (int a = 1; a < ST_ARCH_COUNT; a++)
        cr_expect_gt(sold[ST_ARCH_CHAMPION] / count[ST_ARCH_CHAMPION], sold[a] / count[a]);
    /* decliners decline */
    cr_expect_lt(late[ST_ARCH_DECLINING], 0.5 * early[ST_ARCH_DECLINING]);
    /* every gappy customer has a run of >= 3 inactive months; champions never skip */
    for (int c = 0; c < 40; c++) {
        int run = 0, best = 0, inactive = 0;
        for (int m = 0; m < 24; m++) {
            run = active[c][m] ? 0 : run + 1;
            inactive += !active[c][m];
            if (run > best) best = run;
        }
        if (arch[c] == ST_ARCH_GAPPY) cr_expect_geq(best, 3, "gappy customer %d", c + 1);
        if (arch[c] == ST_ARCH_CHAMPION) cr_expect_eq(inactive, 0, "champion %d skipped", c + 1);
    }
}

Test(gen, zero_rows_and_bad_options)
{
    st_gen_opts o;
    small_opts(&o, 5);
    o.rows = 0;
    char p[400];
    gen_to(&o, "z.db", p, sizeof p);
    sqlite3 *db = open_db(p);
    cr_expect_eq(q1(db, "SELECT count(*) FROM sales_qty"), 0);
    cr_expect_eq(q1(db, "SELECT count(*) FROM foc_qty"), 0);
    sqlite3_close(db);

    st_error err = {0};
    small_opts(&o, 5);
    o.customers = 0;
    cr_expect_eq(st_gen_write(&o, p, &err), ST_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "--customers"), "%s", err.msg);
    small_opts(&o, 5);
    o.months = 0;
    cr_expect_eq(st_gen_check(&o, &err), ST_ERR_INVALID);
    small_opts(&o, 5);
    o.materials = 0;
    cr_expect_eq(st_gen_check(&o, &err), ST_ERR_INVALID);
    small_opts(&o, 5);
    o.start_year = 9999;
    o.months = 24;
    cr_expect_eq(st_gen_check(&o, &err), ST_ERR_INVALID);
}

Test(gen, single_customer_single_month)
{
    st_gen_opts o;
    small_opts(&o, 9);
    o.customers = 1;
    o.months = 1;
    o.materials = 1;
    o.rows = 50;
    char p[400];
    gen_to(&o, "one.db", p, sizeof p);
    sqlite3 *db = open_db(p);
    cr_expect_eq(q1(db, "SELECT count(*) FROM sales_qty WHERE customer_id = 1 AND month = 1 AND year = 2021"
                        " AND material_code = 'MAT0001'"), 50);
    cr_expect_eq(q1(db, "SELECT count(*) FROM foc_qty"), 50);
    sqlite3_close(db);
}

/* ---- the command ---- */

static int run_cli(const char *args, char *out, size_t cap)
{
    return fx_capture(out, cap, "%s gen %s 2>&1", fx_bin(), args);
}

Test(gen, cli_help_lists_every_flag)
{
    static char out[8192];
    cr_assert_eq(run_cli("--help", out, sizeof out), 0);
    static const char *const want[] = {"usage:", "--out", "data/example.db", "--rows", "500000", "--customers",
                                       "100", "--months", "60", "--start-year", "2020", "--materials", "150",
                                       "--seed", "42", "--force"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(out, want[i]), "help lacks '%s'", want[i]);
}

Test(gen, cli_refuses_overwrite_without_force)
{
    static char out[8192];
    char args[800], p[400];
    snprintf(p, sizeof p, "%s/cli.db", tmpdir);
    snprintf(args, sizeof args, "--out '%s' --rows 100 --customers 5 --months 3 --materials 4 --seed 3", p);
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "wrote"), "%s", out);
    cr_assert_eq(run_cli(args, out, sizeof out), 2, "%s", out);
    cr_expect_not_null(strstr(out, "--force"), "%s", out);
    char args2[900];
    snprintf(args2, sizeof args2, "%s --force", args);
    cr_assert_eq(run_cli(args2, out, sizeof out), 0, "%s", out);
    /* no temporary file left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", tmpdir);
    FILE *f = popen(cmd, "r");
    char buf[16] = {0};
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    pclose(f);
    cr_expect_eq(atoi(buf), 0);
    sqlite3 *db = open_db(p);
    cr_expect_eq(q1(db, "SELECT count(*) FROM foc_qty"), 100);
    sqlite3_close(db);
}

Test(gen, cli_bad_flags)
{
    static char out[8192];
    cr_expect_eq(run_cli("--no-such-flag", out, sizeof out), 2);
    cr_expect_eq(run_cli("--rows", out, sizeof out), 2);
    cr_expect_eq(run_cli("--rows -5", out, sizeof out), 2);
    cr_expect_eq(run_cli("--rows 12x", out, sizeof out), 2);
    cr_expect_eq(run_cli("--customers 0", out, sizeof out), 2);
    cr_expect_eq(run_cli("--months=99999999999", out, sizeof out), 2);
}
