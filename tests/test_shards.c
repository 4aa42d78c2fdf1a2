/*
 * test_shards.c: `strata run --transactions a.db,b.db,c.db` against one
 * `strata run` over the file the shards were cut from.
 *
 * The promises (README, CLI reference and "Guarantees"): bronze holds the
 * shards' rows in shard order, then rowid order; shards cut by contiguous
 * rowid ranges (their rowids kept) therefore give every table exactly as
 * the one file does, and shards cut any other way (here by customer, each
 * shard numbering its rows from 1) still give the same gold and platinum
 * tables, because gold groups and sorts the lines by customer, period and
 * material and its sums, counts and medians do not depend on the order in
 * which the lines arrive. Silver differs there by design: its rows follow
 * bronze's order and its transaction_id is each shard's own rowid. Every
 * shard must have the first shard's schema (exit 3 naming the shard and
 * table); ingest is skipped only while every shard is unchanged. Tables
 * are compared through `strata export` (CSV), the same way a user sees
 * them. With several shards each bronze transaction table is a
 * partitioned table, a part per shard (FORMAT.md "Partitioned tables").
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_shards_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(shards, .init = setup, .fini = teardown, .timeout = 300);

/* The CSV export of every table of dir/wh under `layers` (a find -path
 * pattern such as ./gold/ followed by a star), each under its name, in one string (caller
 * frees). */
static char *exports(const char *wh, const char *layers)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s.exports", dir, wh);
    int rc = fx_sh("cd %s/%s && for f in $(find . -name '*.strata' -path '%s' -not -path './.staging/*' -not -path '*.parts/*' | sort); do "
                   "echo \"== $f\"; %s export \"$f\" || echo FAILED; done > %s 2>&1",
                   dir, wh, layers, fx_bin(), p);
    cr_assert_eq(rc, 0);
    char *s = fx_slurp(p, NULL);
    cr_assert_not_null(s);
    cr_assert_null(strstr(s, "FAILED"), "%s", s);
    return s;
}

/* A generated source, the one-file warehouse dir/one, and the shards
 * of the source in list. */
static void one_file_and_shards(int rows, bool by_customer, char *list, size_t cap)
{
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, rows, 11);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    fx_split_source(tx, dir, 3, by_customer, list, cap);
}

/* A generated source dir/tx.db (tx: 300 bytes) of `rows` lines, its three
 * shards in list, and the warehouse path dir/wh (wh: 300 bytes). */
static void source_in_shards(int rows, int seed, bool by_customer, char *tx, char *list, size_t cap, char *wh)
{
    snprintf(tx, 300, "%s/tx.db", dir);
    fx_gen_source(tx, rows, seed);
    fx_split_source(tx, dir, 3, by_customer, list, cap);
    snprintf(wh, 300, "%s/wh", dir);
}

Test(shards, rowid_range_shards_export_every_table_as_the_one_file)
{
    char list[2000], wh[300];
    one_file_and_shards(40000, false, list, sizeof list);
    snprintf(wh, sizeof wh, "%s/three", dir);
    cr_assert_eq(fx_run_demo(dir, list, wh, "--threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one", "*"), *got = exports("three", "*");
    cr_assert_not_null(strstr(ref, "./bronze/raw_sales_quantity.strata"));
    cr_assert_str_eq(got, ref, "three rowid-range shards: some table exports differently from the one file");
    free(ref);
    free(got);
}

Test(shards, customer_shards_give_the_gold_and_platinum_of_the_one_file)
{
    char list[2000], wh[300];
    one_file_and_shards(40000, true, list, sizeof list);
    snprintf(wh, sizeof wh, "%s/three", dir);
    cr_assert_eq(fx_run_demo(dir, list, wh, "--threads 1"), 0, "%s", fx_text_of(dir, "err.txt"));
    for (int l = 0; l < 2; l++) {
        const char *layer = l ? "./platinum/*" : "./gold/*";
        char *ref = exports("one", layer), *got = exports("three", layer);
        cr_assert_gt(strlen(ref), 1000, "%s: nothing exported", layer);
        cr_assert_str_eq(got, ref, "customer shards: a %s table differs from the one file's", layer);
        free(ref);
        free(got);
    }
    /* silver differs by design (shard order; each shard's own rowids) */
    char *ref = exports("one", "./silver/stg_sales*"), *got = exports("three", "./silver/stg_sales*");
    cr_assert_str_neq(got, ref, "the customer split was expected to reorder silver");
    free(ref);
    free(got);
}

Test(shards, a_shard_with_another_schema_is_refused_naming_the_shard_and_table)
{
    char list[2000], wh[300], tx[300];
    source_in_shards(3000, 2, false, tx, list, sizeof list, wh);
    char shard[300];
    snprintf(shard, sizeof shard, "%s/shard2.db", dir);
    sqlite3_close(fx_make_db(shard, "ALTER TABLE foc_qty ADD COLUMN note TEXT"));
    cr_assert_eq(fx_run_demo(dir, list, wh, ""), 3, "a shard with an extra column must be exit 3");
    const char *e = fx_text_of(dir, "err.txt");
    cr_assert_not_null(strstr(e, "shard2.db"), "%s", e);
    cr_assert_not_null(strstr(e, "'foc_qty'"), "%s", e);
    cr_assert_eq(fx_count(e, "\n"), 1, "one line: %s", e);
    cr_assert_neq(fx_sh("test -e %s/bronze/raw_sales_quantity.strata", wh), 0, "nothing may be published");
    /* same column count, another declared type */
    fx_split_source(tx, dir, 3, false, list, sizeof list); /* shard2 back to the schema */
    snprintf(shard, sizeof shard, "%s/shard1.db", dir);
    sqlite3_close(fx_make_db(shard, "DROP TABLE sales_qty; CREATE TABLE sales_qty(customer_id INTEGER, year "
                                    "INTEGER, month INTEGER, material_code TEXT, quantity REAL);"));
    cr_assert_eq(fx_run_demo(dir, list, wh, ""), 3);
    e = fx_text_of(dir, "err.txt");
    cr_assert_not_null(strstr(e, "shard1.db': table 'sales_qty' column 'quantity' is declared 'REAL'"), "%s", e);
}

Test(shards, ingest_skips_only_while_every_shard_is_unchanged)
{
    char list[2000], wh[300], tx[300];
    source_in_shards(5000, 4, true, tx, list, sizeof list, wh);
    cr_assert_eq(fx_run_demo(dir, list, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    /* lineage: the footer and the run log name every shard, in order */
    char out[8192];
    cr_assert_eq(fx_capture(out, sizeof out, "%s inspect %s/bronze/raw_sales_quantity.strata", fx_bin(), wh), 0);
    cr_assert_not_null(strstr(out, "shard0.db,shard1.db,shard2.db"), "%s", out);
    cr_assert_not_null(strstr(out, "parts: 3"), "bronze is partitioned, a part per shard: %s", out);
    char log[400];
    snprintf(log, sizeof log, "%s/_runs/latest.json", wh);
    char *runlog = fx_read_file(log, NULL);
    char want[2400];
    snprintf(want, sizeof want, "\"transactions\": [\"%s/shard0.db\", \"%s/shard1.db\", \"%s/shard2.db\"]", dir, dir,
             dir);
    cr_assert_not_null(strstr(runlog, want), "%s", runlog);
    free(runlog);
    cr_assert_eq(fx_sh("%s run --customers data/chinook.db --transactions %s --warehouse %s --no-report "
                       ">%s/out.txt 2>%s/err.txt", fx_bin(), list, wh, dir, dir), 0);
    cr_assert_not_null(strstr(fx_text_of(dir, "err.txt"), "sources unchanged"), "%s", fx_text_of(dir, "err.txt"));
    /* one more line in the last shard: ingest reads again, bronze has it */
    char shard[300];
    snprintf(shard, sizeof shard, "%s/shard2.db", dir);
    sqlite3_close(fx_make_db(shard, "INSERT INTO sales_qty VALUES (2, 2021, 3, 'M001', 7)"));
    cr_assert_eq(fx_sh("%s run --customers data/chinook.db --transactions %s --warehouse %s --no-report "
                       ">%s/out.txt 2>%s/err.txt", fx_bin(), list, wh, dir, dir), 0);
    const char *e = fx_text_of(dir, "err.txt");
    cr_assert_null(strstr(e, "sources unchanged"), "%s", e);
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s/bronze/raw_sales_quantity.strata | wc -l", fx_bin(), wh),
                 0);
    cr_assert_eq(atoi(out), 5000 + 1 + 1, "rows + the new line + header: %s", out);
    /* the re-ingest published new parts and removed the replaced ones */
    cr_assert_eq(fx_capture(out, sizeof out, "ls %s/bronze/raw_sales_quantity.parts | wc -l", wh), 0);
    cr_assert_eq(atoi(out), 3, "%s", out);
    cr_assert_eq(fx_sh("%s inspect --verify %s >/dev/null", fx_bin(), wh), 0);
    /* back to one file: a plain bronze file, the parts gone */
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    cr_assert_neq(fx_sh("test -e %s/bronze/raw_sales_quantity.parts", wh), 0, "the parts must be removed");
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s/bronze/raw_sales_quantity.strata | wc -l", fx_bin(), wh),
                 0);
    cr_assert_eq(atoi(out), 5000 + 1, "%s", out);
}

Test(shards, a_bad_shard_list_is_a_usage_error)
{
    char tx[300], wh[300], list[1000];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 1000, 1);
    snprintf(wh, sizeof wh, "%s/wh", dir);
    snprintf(list, sizeof list, "%s,,%s", tx, tx);
    cr_assert_eq(fx_run_demo(dir, list, wh, ""), 2);
    cr_assert_not_null(strstr(fx_text_of(dir, "err.txt"), "empty shard name"), "%s", fx_text_of(dir, "err.txt"));
    snprintf(list, sizeof list, "%s,%s/../%s/tx.db", tx, dir, strrchr(dir, '/') + 1);
    cr_assert_eq(fx_run_demo(dir, list, wh, ""), 2);
    cr_assert_not_null(strstr(fx_text_of(dir, "err.txt"), "given twice"), "%s", fx_text_of(dir, "err.txt"));
}

/* Columns without a declared type are typed by their values over every
 * shard together: shard 0 alone holds text quantities, the union mostly
 * integers, so bronze's quantity is int64 as for the one file. */
Test(shards, untyped_columns_are_typed_over_every_shard_together)
{
    static const char *const schema =
        "CREATE TABLE sales_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity);"
        "CREATE TABLE foc_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity_foc);";
    static const char *const rows[2] = {
        "INSERT INTO sales_qty(rowid, customer_id, year, month, material_code, quantity) VALUES "
        "(1, 1, 2021, 1, 'A', 'x'), (2, 1, 2021, 2, 'A', 'y');"
        "INSERT INTO foc_qty(rowid, customer_id, year, month, material_code, quantity_foc) VALUES "
        "(1, 1, 2021, 1, 'A', 'z');",
        "INSERT INTO sales_qty(rowid, customer_id, year, month, material_code, quantity) VALUES "
        "(3, 2, 2021, 1, 'B', 5), (4, 2, 2021, 2, 'B', 6), (5, 3, 2021, 3, 'C', 7);"
        "INSERT INTO foc_qty(rowid, customer_id, year, month, material_code, quantity_foc) VALUES "
        "(2, 2, 2021, 1, 'B', 1), (3, 2, 2021, 2, 'B', 2);"};
    char one[300], s0[300], s1[300], list[700], sql[2000];
    snprintf(one, sizeof one, "%s/one.db", dir);
    snprintf(s0, sizeof s0, "%s/s0.db", dir);
    snprintf(s1, sizeof s1, "%s/s1.db", dir);
    snprintf(sql, sizeof sql, "%s%s%s", schema, rows[0], rows[1]);
    sqlite3_close(fx_make_db(one, sql));
    for (int k = 0; k < 2; k++) {
        snprintf(sql, sizeof sql, "%s%s", schema, rows[k]);
        sqlite3_close(fx_make_db(k ? s1 : s0, sql));
    }
    snprintf(list, sizeof list, "%s,%s", s0, s1);
    char wh[300];
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, one, wh, "--only ingest"), 0, "%s", fx_text_of(dir, "err.txt"));
    snprintf(wh, sizeof wh, "%s/two", dir);
    cr_assert_eq(fx_run_demo(dir, list, wh, "--only ingest"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one", "./bronze/*"), *got = exports("two", "./bronze/*");
    cr_assert_str_eq(got, ref);
    free(ref);
    free(got);
    char out[8192];
    cr_assert_eq(fx_capture(out, sizeof out, "%s inspect %s/bronze/raw_sales_quantity.strata", fx_bin(), wh), 0);
    cr_assert_not_null(strstr(out, "quantity"), "%s", out);
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s/bronze/raw_sales_quantity.strata --columns quantity",
                            fx_bin(), wh),
                 0);
    cr_assert_str_eq(out, "quantity\r\n\r\n\r\n5\r\n6\r\n7\r\n", "int64 over the shards: the text values go to __raw");
}

/* Names of the files in dir/wh/<layer>/<table>.parts, one per line. */
static char *part_list(const char *wh, const char *layer_table)
{
    char out[8192];
    cr_assert_eq(fx_capture(out, sizeof out, "ls %s/%s/%s.parts", dir, wh, layer_table), 0);
    return strdup(out);
}

/* --part-rows cuts one source's transaction tables into contiguous rowid
 * ranges (40,000 rowids in parts of 7,000: 6 parts), read and staged as
 * parts of a partitioned table: every table exports as the one file; the
 * files are the same bytes on 1 and 2 threads; an unchanged source skips
 * ingest; another width re-reads it. */
Test(shards, rowid_range_parts_of_one_source_export_every_table_as_the_one_file)
{
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 40000, 5);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    for (int t = 1; t <= 2; t++) {
        snprintf(wh, sizeof wh, "%s/parts%d", dir, t);
        char extra[64];
        snprintf(extra, sizeof extra, "--part-rows 7000 --threads %d", t);
        cr_assert_eq(fx_run_demo(dir, tx, wh, extra), 0, "%s", fx_text_of(dir, "err.txt"));
    }
    char *ref = exports("one", "*"), *got = exports("parts2", "*");
    cr_assert_str_eq(got, ref, "rowid-range parts: some table exports differently from the one file");
    const char *diff = fx_differing_files(dir, "parts1", "parts2", "bronze silver gold platinum");
    cr_assert_str_eq(diff, "", "files differ between --threads 1 and 2: %s", diff);
    const char *tables[] = {"bronze/raw_sales_quantity", "bronze/raw_free_of_charge_quantity",
                            "silver/stg_sales_transactions", "silver/stg_foc_transactions"};
    for (int i = 0; i < 4; i++) {
        char *parts = part_list("parts2", tables[i]);
        cr_assert_eq(fx_count(parts, ".strata"), 6, "%s: %s", tables[i], parts);
        free(parts);
    }
    /* the same width again: ingest skipped; another width: read again */
    char log[400];
    snprintf(wh, sizeof wh, "%s/parts2", dir);
    snprintf(log, sizeof log, "%s/_runs/latest.json", wh);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--part-rows 7000"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *text = fx_slurp(log, NULL);
    cr_assert_not_null(strstr(text, "sources unchanged"), "%s", text);
    free(text);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--part-rows 25000"), 0, "%s", fx_text_of(dir, "err.txt"));
    text = fx_slurp(log, NULL);
    cr_assert_null(strstr(text, "sources unchanged"), "%s", text);
    free(text);
    char *parts = part_list("parts2", "bronze/raw_sales_quantity");
    cr_assert_eq(fx_count(parts, ".strata"), 2, "%s", parts);
    free(parts);
    free(ref);
    free(got);
}

/* Rowid gaps leave some ranges without rows: those parts are empty files,
 * and no row is lost or read twice (exports equal the one file's); a
 * width below 1000 is a usage error naming the flag. */
Test(shards, rowid_gaps_give_empty_parts_and_lose_no_row)
{
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 20000, 9);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(tx, &db), SQLITE_OK);
    fx_exec_sql(db, "DELETE FROM sales_qty WHERE rowid BETWEEN 5001 AND 12500;"
                    "DELETE FROM foc_qty WHERE rowid > 3000 AND rowid % 7 <> 0;");
    sqlite3_close(db);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    snprintf(wh, sizeof wh, "%s/parts", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--part-rows 2500 --threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one", "*"), *got = exports("parts", "*");
    cr_assert_str_eq(got, ref, "parts with rowid gaps: some table exports differently from the one file");
    char *parts = part_list("parts", "bronze/raw_sales_quantity");
    cr_assert_eq(fx_count(parts, ".strata"), 8, "%s", parts);
    free(parts);
    char out[2048];
    cr_assert_eq(fx_capture(out, sizeof out, "%s run --transactions %s --warehouse %s --part-rows 999 2>&1", fx_bin(),
                            tx, wh),
                 2, "%s", out);
    cr_assert_not_null(strstr(out, "--part-rows"), "%s", out);
    free(ref);
    free(got);
}
