/*
 * test_reliability.c: the guarantees of README.md "Guarantees", tested by
 * doing to `strata run` what the world does to it: a second run on the
 * same warehouse, SIGKILL at random moments, a disk that fills up
 * (RLIMIT_FSIZE: writes fail with EFBIG), an unwritable warehouse, damaged
 * layer files, sources with every storage class in every column, and
 * valgrind on a small run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/file.h"
#include "strata/warehouse.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_rel_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(reliability, .init = setup, .fini = teardown, .timeout = 300);

/* demo data of `rows` rows per table */
static void gen(int rows)
{
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    fx_gen_source(p, rows, 7);
}

static int run(const char *wh, const char *extra)
{
    char tx[300], w[600];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    snprintf(w, sizeof w, "%s/%s", dir, wh);
    return fx_run_demo(dir, tx, w, extra);
}

static const char *errtext(void) { return fx_text_of(dir, "err.txt"); }

/* Every layer file of a warehouse, concatenated with its name, so two
 * warehouses compare with one memcmp. */
static char *snapshot(const char *wh, size_t *len)
{
    char cmd[1200], p[400];
    snprintf(p, sizeof p, "%s/snap.txt", dir);
    snprintf(cmd, sizeof cmd, "cd %s/%s && find . -name '*.strata' -not -path './.staging/*' | sort | xargs -r md5sum > %s", dir, wh, p);
    cr_assert_eq(system(cmd), 0);
    return fx_slurp(p, len);
}

Test(reliability, second_run_fails_fast_while_the_lock_is_held_and_waits_with_wait)
{
    gen(2000);
    char wh[400];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t holder = fork();
    if (holder == 0) {
        st_warehouse *w = NULL;
        st_error e;
        if (st_warehouse_open(&w, wh, false, &e) != ST_OK) _exit(1);
        (void)!write(pipefd[1], "x", 1);
        sleep(2);
        st_warehouse_close(w);
        _exit(0);
    }
    char c;
    cr_assert_eq(read(pipefd[0], &c, 1), 1);
    time_t t0 = time(NULL);
    int rc = run("wh", "");
    cr_assert_eq(rc, 7, "a locked warehouse is exit code 7, got %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "locked"), "%s", errtext());
    cr_assert_not_null(strstr(errtext(), "pid"), "%s", errtext());
    cr_assert(time(NULL) - t0 <= 1, "fails fast");
    rc = run("wh", "--wait");
    cr_assert_eq(rc, 0, "--wait waits for the holder: %s", errtext());
    waitpid(holder, NULL, 0);
}

Test(reliability, killed_runs_never_leave_wrong_files_and_the_next_run_recovers)
{
    gen(60000);
    cr_assert_eq(run("ref", "--threads 2"), 0, "%s", errtext());
    size_t ref_len;
    char *ref = snapshot("ref", &ref_len);
    srand(12345);
    for (int round = 0; round < 8; round++) {
        pid_t p = fork();
        if (p == 0) {
            char a[300], b[300], c[300];
            snprintf(a, sizeof a, "%s/tx.db", dir);
            snprintf(b, sizeof b, "%s/wh", dir);
            snprintf(c, sizeof c, "%s", "data/chinook.db");
            int fd = open("/dev/null", 1);
            dup2(fd, 1);
            dup2(fd, 2);
            /* odd rounds: the gold step works range by range through its spill file */
            execl(fx_bin(), fx_bin(), "run", "--customers", c, "--transactions", a, "--warehouse", b, "--no-report",
                  "--force", "--memory-limit", round % 2 ? "64K" : "1G", (char *)NULL);
            _exit(127);
        }
        usleep((useconds_t)(rand() % 400000));
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        /* whatever is published reads as valid */
        int v = fx_sh("%s inspect --verify %s/wh >/dev/null 2>&1 || test ! -d %s/wh/bronze", fx_bin(), dir, dir);
        cr_assert_eq(v, 0, "round %d: a killed run left a damaged file", round);
    }
    cr_assert_eq(run("wh", "--threads 2"), 0, "recovery run: %s", errtext());
    size_t len;
    char *now = snapshot("wh", &len);
    cr_assert(len == ref_len && !memcmp(now, ref, len), "after recovery the warehouse equals a clean run:\n%s\nvs\n%s", now, ref);
    /* nothing of the killed runs is left behind, spill files included */
    cr_assert_neq(fx_sh("test -e %s/wh/.staging", dir), 0, "the staging area is gone after a good run");
    free(now);
    free(ref);
}

/* The gold step's spill file on a full disk: exit 5 naming the spill
 * file, and the previous warehouse byte for byte as it was. */
Test(reliability, gold_spill_on_a_full_disk_is_exit_5_and_keeps_the_previous_warehouse)
{
    gen(60000);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    size_t before_len;
    char *before = snapshot("wh", &before_len);
    pid_t p = fork();
    if (p == 0) {
        struct rlimit rl = {512 * 1024, 512 * 1024}; /* the spill needs ~2.9 MB, the gold files far less */
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
        _exit(run("wh", "--force --from intermediate --memory-limit 64K"));
    }
    int st;
    waitpid(p, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5, "a failed spill write is exit code 5 (got %d): %s",
              WEXITSTATUS(st), errtext());
    cr_assert_not_null(strstr(errtext(), "spill file"), "the message names the spill file: %s", errtext());
    size_t after_len;
    char *after = snapshot("wh", &after_len);
    cr_assert(after_len == before_len && !memcmp(before, after, after_len), "previous warehouse intact");
    cr_assert_eq(fx_sh("%s inspect --verify %s/wh >/dev/null", fx_bin(), dir), 0);
    /* and with room again the same command succeeds with the same files */
    cr_assert_eq(run("wh", "--force --from intermediate --memory-limit 64K"), 0, "%s", errtext());
    char *again = snapshot("wh", &after_len);
    cr_assert(after_len == before_len && !memcmp(before, again, after_len), "same files as the one-pass run");
    free(before);
    free(after);
    free(again);
}

Test(reliability, full_disk_fails_cleanly_and_keeps_the_previous_warehouse)
{
    gen(20000);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    size_t before_len;
    char *before = snapshot("wh", &before_len);
    pid_t p = fork();
    if (p == 0) {
        struct rlimit rl = {16 * 1024, 16 * 1024}; /* files may not grow past 16 KiB: writes fail with EFBIG */
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
        _exit(run("wh", "--force"));
    }
    int st;
    waitpid(p, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5, "a failed write is exit code 5 (got %d): %s", WEXITSTATUS(st), errtext());
    cr_assert_not_null(strstr(errtext(), ".strata"), "the message names the file: %s", errtext());
    size_t after_len;
    char *after = snapshot("wh", &after_len);
    cr_assert(after_len == before_len && !memcmp(before, after, after_len), "previous warehouse intact");
    cr_assert_eq(fx_sh("%s inspect --verify %s/wh >/dev/null", fx_bin(), dir), 0);
    free(before);
    free(after);
}

Test(reliability, unwritable_warehouse_is_exit_5)
{
    gen(100);
    char p[300];
    snprintf(p, sizeof p, "%s/file", dir);
    FILE *f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
    int rc = run("file/wh", "");
    cr_assert_eq(rc, 5, "got %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "file/wh"), "%s", errtext());
}

Test(reliability, damaged_files_are_caught_by_verify)
{
    gen(5000);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    char p[400];
    snprintf(p, sizeof p, "%s/wh/silver/stg_sales_transactions.strata", dir);
    FILE *f = fopen(p, "r+b");
    cr_assert_not_null(f);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
    int rc = fx_sh("%s inspect --verify %s/wh > %s/out.txt 2>&1", fx_bin(), dir, dir);
    cr_assert_eq(rc, 6, "damaged warehouse verify exits 6, got %d", rc);
    snprintf(p, sizeof p, "%s/out.txt", dir);
    size_t n;
    char *out = fx_slurp(p, &n);
    cr_assert(strstr(out, "DAMAGED") && strstr(out, "stg_sales_transactions"), "%s", out);
    free(out);
}

/* tx.db with ordinary lines plus `heavy` (SQL inserts). */
static void make_overflow_source(const char *const *heavy, size_t n_heavy)
{
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    unlink(p);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id, year, month, material_code, quantity);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (customer_id, year, month, material_code, quantity_foc);");
    fx_exec_sql(db, "BEGIN");
    char sql[256];
    for (int i = 0; i < 3000; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO sales_qty VALUES (%d, 2021, %d, 'MAT%d', %d);", 1 + i % 7, 1 + i % 12,
                 i % 5, 1 + i % 40);
        fx_exec_sql(db, sql);
        snprintf(sql, sizeof sql, "INSERT INTO foc_qty VALUES (%d, 2022, %d, 'MAT%d', %d);", 1 + i % 7, 1 + i % 12,
                 i % 5, i % 3);
        fx_exec_sql(db, sql);
    }
    for (size_t i = 0; i < n_heavy; i++) fx_exec_sql(db, heavy[i]);
    fx_exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

/* Quantities whose sums do not fit int64 (accepted because --qty-max
 * allows them): one customer-month's total, or the total over all
 * customer-months that the marts and the report add up. The run stops
 * with exit 4 and a message saying what overflowed, in the one-pass path
 * and range by range alike, and nothing of it is published (a wrapped
 * total never reaches a file). */
Test(reliability, an_int64_sum_overflow_is_exit_4_and_publishes_nothing)
{
    static const char *const one_month[] = {
        "INSERT INTO sales_qty VALUES (5, 2021, 3, 'MAT1', 4000000000000000000);",
        "INSERT INTO sales_qty VALUES (5, 2021, 3, 'MAT2', 4000000000000000000);",
        "INSERT INTO sales_qty VALUES (5, 2021, 3, 'MAT1', 4000000000000000000);"};
    static const char *const all_months[] = {
        "INSERT INTO sales_qty VALUES (5, 2021, 3, 'MAT1', 4000000000000000000);",
        "INSERT INTO sales_qty VALUES (5, 2021, 3, 'MAT2', 4000000000000000000);",
        "INSERT INTO sales_qty VALUES (6, 2021, 4, 'MAT1', 4000000000000000000);",
        "INSERT INTO sales_qty VALUES (6, 2021, 4, 'MAT2', 4000000000000000000);"};
    const char *expect[2] = {"customer_id 5 period_key 202103: total_sold_quantity overflows int64",
                             "sold quantities of all customer-months add up to more than int64 holds"};
    const char *limits[2] = {"", "--memory-limit 64K"};
    for (int c = 0; c < 2; c++) {
        if (c == 0) make_overflow_source(one_month, 3);
        else make_overflow_source(all_months, 4);
        for (int k = 0; k < 2; k++) {
            char wh[32], extra[128];
            snprintf(wh, sizeof wh, "wh%d%d", c, k);
            snprintf(extra, sizeof extra, "--qty-max 4000000000000000000 %s", limits[k]);
            int rc = run(wh, extra);
            cr_assert_eq(rc, 4, "case %d %s: exit %d: %s", c, limits[k], rc, errtext());
            cr_assert_not_null(strstr(errtext(), expect[c]), "case %d: %s", c, errtext());
            cr_assert_neq(fx_sh("test -e %s/%s/gold/int_customer_analytics.strata", dir, wh), 0, "nothing published");
        }
    }
}

Test(reliability, every_storage_class_in_every_column_runs_to_the_end_and_loses_nothing)
{
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE sales_qty (quantity, extra, material_code, month, year, customer_id);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (customer_id, year, month, material_code, quantity_foc);");
    const char *vals[] = {"NULL", "1", "7", "2.0", "2.5", "' 3 '", "'x'", "x'00ff'", "'\xff\xfe'", "-1", "0", "13",
                          "2021", "1e300", "9223372036854775807", "-9223372036854775808", "'  2022\t'", "''",
                          "'MAT0001'", "5000000000"};
    size_t nv = sizeof vals / sizeof vals[0];
    fx_exec_sql(db, "BEGIN");
    char sql[512];
    uint64_t seed = 99;
    int rows = 0;
    for (int i = 0; i < 3000; i++) {
        const char *v[6];
        for (int k = 0; k < 6; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            v[k] = vals[(seed >> 33) % nv];
        }
        snprintf(sql, sizeof sql, "INSERT INTO sales_qty VALUES (%s,%s,%s,%s,%s,%s);", v[0], v[1], v[2], v[3], v[4], v[5]);
        fx_exec_sql(db, sql);
        rows++;
    }
    /* and some good rows so there is something to cluster */
    for (int i = 0; i < 300; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO sales_qty VALUES (%d, NULL, 'MAT%04d', %d, 2021, %d);", 1 + i % 40,
                 i % 7, 1 + i % 12, 1 + i % 9);
        fx_exec_sql(db, sql);
        snprintf(sql, sizeof sql, "INSERT INTO foc_qty VALUES (%d, 2021, %d, 'MAT%04d', %d);", 1 + i % 9, 1 + i % 12,
                 i % 5, i % 4);
        fx_exec_sql(db, sql);
    }
    fx_exec_sql(db, "COMMIT");
    sqlite3_close(db);
    int rc = run("wh", "");
    cr_assert_eq(rc, 0, "bad rows are quarantined, the run finishes: %d %s", rc, errtext());
    const char *t[] = {"bronze/raw_sales_quantity", "silver/stg_sales_transactions", "silver/stg_rejects",
                       "bronze/raw_free_of_charge_quantity", "silver/stg_foc_transactions"};
    uint64_t n[5];
    for (int k = 0; k < 5; k++) {
        char path[400];
        snprintf(path, sizeof path, "%s/wh/%s.strata", dir, t[k]);
        st_reader *r;
        st_error e;
        cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
        n[k] = st_reader_n_rows(r);
        st_reader_close(r);
    }
    cr_assert_eq(n[0], (uint64_t)rows + 300);
    cr_assert_eq(n[0] + n[3], n[1] + n[2] + n[4], "raw = staged + rejected (customers have no rejects here)");
    cr_assert(n[2] > 2000, "most random rows are rejects: %llu", (unsigned long long)n[2]);
}

/* Peak RSS (bytes, from the kernel through wait4) of `strata run` over
 * tx.db into a fresh warehouse. */
static uint64_t peak_rss_of_run(const char *wh, const char *extra)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "exec %s run --customers data/chinook.db --transactions %s/tx.db --warehouse %s/%s --quiet --no-report %s "
             ">%s/out.txt 2>%s/err.txt",
             fx_bin(), dir, dir, wh, extra, dir, dir);
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(p, &st, 0, &ru), p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run failed: %s", errtext());
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* Memory stays flat in rows: with the same --memory-limit, a run over 4x
 * the rows peaks within a few MiB of the smaller one. Before the bounds
 * (every line held by the gold step, 16 bytes per key in the quality
 * suite's unique checks and per orphan row in its referential checks,
 * SQLite's memory map and the layer reader's map kept resident) the
 * difference was over 100 MiB at these sizes. */
Test(reliability, peak_memory_is_flat_in_rows_under_a_memory_limit)
{
    if (getenv("STRATA_SANITIZED")) cr_skip_test("sanitizer builds have their own memory overheads (make test runs this)");
    gen(250000);
    uint64_t small = peak_rss_of_run("wh1", "--memory-limit 4M --threads 2");
    cr_assert_eq(fx_sh("rm -f %s/tx.db", dir), 0);
    gen(1000000);
    uint64_t large = peak_rss_of_run("wh2", "--memory-limit 4M --threads 2");
    char p[300];
    snprintf(p, sizeof p, "%s/wh2/_runs/latest.json", dir);
    size_t n;
    char *log = fx_slurp(p, &n);
    cr_assert_not_null(strstr(log, "customer ranges"), "the gold step split the customers:\n%s", log);
    free(log);
    double grow_mib = ((double)large - (double)small) / 1048576.0;
    cr_assert_lt(grow_mib, 12.0, "peak RSS %.1f MiB at 250K rows per table, %.1f MiB at 1M: grew %.1f MiB",
                 (double)small / 1048576.0, (double)large / 1048576.0, grow_mib);
}

Test(reliability, valgrind_memcheck_is_clean_on_a_small_run)
{
    if (getenv("STRATA_SANITIZED")) cr_skip_test("a sanitizer build cannot run under valgrind (make test runs this)");
    if (fx_sh("command -v valgrind >/dev/null 2>&1") != 0) cr_skip_test("valgrind is not installed");
    gen(3000);
    int rc = fx_sh("valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "
                "%s run --customers data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --threads 2 "
                "--n-init 2 --k-range 2..3 > %s/vg.txt 2>&1",
                fx_bin(), dir, dir, dir);
    char p[300];
    snprintf(p, sizeof p, "%s/vg.txt", dir);
    size_t n;
    char *out = fx_slurp(p, &n);
    cr_assert_eq(rc, 0, "valgrind found errors (exit %d):\n%s", rc, out ? out : "");
    free(out);
}
