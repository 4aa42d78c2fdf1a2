/*
 * test_integrity.c: "nothing lost, nothing mixed" (issue 19). Each test
 * is one hole an adversarial pass found: a run that ended with exit 0 (or
 * a plain I/O error) and a warehouse that was stale, mixed or wrong. The
 * tests drive the real CLI (STRATA_BIN) on small generated sources, and
 * do to it what the world does: a live application committing into a
 * WAL, a layer folder that refuses writes (an immutable attribute), a
 * kill between the commit journal and the last rename (an LD_PRELOAD
 * shim, built by the test, that kills the process after the N-th publish
 * rename), swapped, foreign, damaged and newer-version files, and flags
 * that used to be accepted silently.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/file.h"
#include "strata/ml.h"
#include "strata/quality.h"
#include "strata/source_identity.h"
#include "strata/warehouse.h"

static char dir[256];

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/st_int_XXXXXX", t && *t ? t : P_tmpdir);
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    (void)!system(cmd);
}

TestSuite(integrity, .init = setup, .fini = teardown, .timeout = 300);

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

static const char *errtext(void) { return fx_text_of(dir, "err.txt"); }

static void gen(const char *name, int rows, int seed)
{
    char p[300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fx_gen_source(p, rows, seed);
}

/* strata run on source `tx` into warehouse `wh` (both under dir). */
static int run_on(const char *tx, const char *wh, const char *extra)
{
    return sh("%s run --customers data/chinook.db --transactions %s/%s --warehouse %s/%s --quiet --no-report %s "
              ">%s/out.txt 2>%s/err.txt",
              fx_bin(), dir, tx, dir, wh, extra, dir, dir);
}

static int run(const char *wh, const char *extra) { return run_on("tx.db", wh, extra); }

/* strata <cmd> (any command), stderr to err.txt. */
static int cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli(const char *fmt, ...)
{
    char args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return sh("%s %s >%s/out.txt 2>%s/err.txt", fx_bin(), args, dir, dir);
}

/* md5 of every layer file of a warehouse (sorted by name, staging left
 * out), optionally of one layer only: two warehouses compare with strcmp. */
static char *snapshot(const char *wh, const char *layer)
{
    char cmd[1200], p[400];
    snprintf(p, sizeof p, "%s/snap.txt", dir);
    snprintf(cmd, sizeof cmd,
             "cd %s/%s && find ./%s -name '*.strata' -not -path './.staging/*' | sort | xargs -r md5sum > %s", dir,
             wh, layer ? layer : "", p);
    cr_assert_eq(system(cmd), 0);
    size_t n;
    return fx_slurp(p, &n);
}

static uint64_t n_rows(const char *wh, const char *layer, const char *table)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s/%s.strata", dir, wh, layer, table);
    st_reader *r = NULL;
    st_error e;
    cr_assert_eq(st_reader_open(&r, p, &e), ST_OK, "%s", e.msg);
    uint64_t n = st_reader_n_rows(r);
    st_reader_close(r);
    return n;
}

static uint64_t fingerprint(const char *wh, const char *layer, const char *table)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s/%s.strata", dir, wh, layer, table);
    st_reader *r = NULL;
    st_error e;
    cr_assert_eq(st_reader_open(&r, p, &e), ST_OK, "%s", e.msg);
    uint64_t f = st_reader_meta(r)->fingerprint;
    st_reader_close(r);
    return f;
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...)
{
    char p[1000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    return access(p, F_OK) == 0;
}

/* A connection that keeps tx.db open in WAL mode with checkpoints off,
 * as a live application does: its commits stay in tx.db-wal and the
 * main file's size and mtime do not change. */
static sqlite3 *live_app(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void app_insert(sqlite3 *db, int n)
{
    char q[200];
    snprintf(q, sizeof q, "INSERT INTO sales_qty SELECT * FROM sales_qty LIMIT %d", n);
    cr_assert_eq(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
}

static int64_t app_count(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sales_qty", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* 1. Rows a live application committed into its -wal are ingested. */
Test(integrity, wal_commits_of_a_live_application_are_ingested)
{
    gen("tx.db", 1000, 7);
    sqlite3 *db = live_app();
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    cr_assert_eq(n_rows("wh", "bronze", "raw_sales_quantity"), (uint64_t)app_count(db));
    app_insert(db, 250);
    struct stat before, after;
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    cr_assert_eq(stat(p, &before), 0);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    cr_assert_eq(stat(p, &after), 0);
    cr_assert_eq(before.st_size, after.st_size, "the commit stayed in the WAL (test premise)");
    cr_assert_eq(n_rows("wh", "bronze", "raw_sales_quantity"), (uint64_t)app_count(db),
                 "bronze has %llu rows, the source %lld", (unsigned long long)n_rows("wh", "bronze", "raw_sales_quantity"),
                 (long long)app_count(db));
    cr_assert_eq(n_rows("wh", "silver", "stg_sales_transactions"), (uint64_t)app_count(db));
    sqlite3_close(db);
}

/* 2. Bronze's fingerprint follows what was read: after a forced re-ingest
 * that picks up WAL rows, stage is not skipped (bronze = silver + rejects). */
Test(integrity, bronze_fingerprint_changes_with_wal_rows_so_stage_reruns)
{
    gen("tx.db", 1000, 7);
    sqlite3 *db = live_app();
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    uint64_t fp0 = fingerprint("wh", "bronze", "raw_sales_quantity");
    cr_assert_eq(n_rows("wh", "silver", "stg_rejects"), 0, "test premise: clean demo data");
    app_insert(db, 100);
    cr_assert_eq(run("wh", "--only ingest --force"), 0, "%s", errtext());
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    cr_assert_neq(fingerprint("wh", "bronze", "raw_sales_quantity"), fp0, "bronze changed, its fingerprint must");
    uint64_t b = n_rows("wh", "bronze", "raw_sales_quantity"), s = n_rows("wh", "silver", "stg_sales_transactions");
    cr_assert_eq(b, s + n_rows("wh", "silver", "stg_rejects"), "bronze %llu rows, silver %llu + rejects",
                 (unsigned long long)b, (unsigned long long)s);
    sqlite3_close(db);
}

/* 3. A publish that fails half way (the platinum folder refuses entries:
 * an immutable attribute, which stops root too) leaves the previous
 * warehouse as it was, not new bronze/silver/gold beside old platinum. */
Test(integrity, failed_publish_leaves_the_previous_warehouse)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    if (sh("chattr +i %s/wh/platinum 2>/dev/null", dir) != 0)
        cr_skip_test("this file system has no immutable attribute (chattr +i)");
    char *before = snapshot("wh", NULL);
    char q[300];
    snprintf(q, sizeof q, "%s/wh/quality/results.json", dir);
    size_t nq0, nq1;
    char *results0 = fx_slurp(q, &nq0);
    gen("new.db", 1200, 8); /* a new source: every layer changes */
    cr_assert_eq(sh("mv %s/new.db %s/tx.db", dir, dir), 0);
    int rc = run("wh", "");
    (void)!sh("chattr -i %s/wh/platinum", dir);
    cr_assert_eq(rc, 5, "a failed publish is an I/O error, got %d: %s", rc, errtext());
    char *after = snapshot("wh", NULL);
    cr_assert_str_eq(after, before, "the warehouse changed although its publish failed: %s", errtext());
    cr_assert(!exists("%s/wh/.staging/COMMIT", dir), "no journal is left: the previous set stands");
    char *results1 = fx_slurp(q, &nq1);
    cr_assert(nq0 == nq1 && !memcmp(results0, results1, nq0), "quality results of the unpublished build were written");
    free(results0);
    free(results1);
    cr_assert_eq(run("wh", ""), 0, "once writable again, the next run publishes: %s", errtext());
    cr_assert_eq(cli("inspect --verify %s/wh", dir), 0);
    free(before);
    free(after);
}

/* The kill shim: after the N-th rename out of .staging/ into the
 * warehouse (a publish rename), SIGKILL, as a crash at that point. */
static void build_shim(char *so, size_t len)
{
    snprintf(so, len, "%s/killshim.so", dir);
    char src[300];
    snprintf(src, sizeof src, "%s/killshim.c", dir);
    FILE *f = fopen(src, "w");
    cr_assert_not_null(f);
    /* KILL_AFTER_PUBLISH_RENAMES=N: SIGKILL after the N-th publish rename;
     * FAIL_PUBLISH_RENAME=N: the N-th fails with EIO; FAIL_UNDO=1: every
     * rename back into .staging/ (a roll-back) fails with EIO too. */
    fputs("#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <errno.h>\n#include <signal.h>\n#include <stdlib.h>\n"
          "#include <string.h>\n"
          "static int n;\n"
          "int rename(const char *a, const char *b) {\n"
          "  int (*real)(const char *, const char *) = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, \"rename\");\n"
          "  const char *k = getenv(\"KILL_AFTER_PUBLISH_RENAMES\"), *f = getenv(\"FAIL_PUBLISH_RENAME\");\n"
          "  int publish = strstr(a, \"/.staging/\") && !strstr(a, \"/.old/\") && !strstr(b, \"/.staging/\");\n"
          "  if (getenv(\"FAIL_UNDO\") && !strstr(a, \"/.staging/\") && strstr(b, \"/.staging/\")) {\n"
          "    errno = EIO; return -1; }\n"
          "  if (publish && f && n + 1 == atoi(f)) { n++; errno = EIO; return -1; }\n"
          "  int rc = real(a, b);\n"
          "  if (rc == 0 && publish && ++n == (k ? atoi(k) : -1)) raise(SIGKILL);\n"
          "  return rc;\n}\n",
          f);
    fclose(f);
    if (sh("cc -shared -fPIC -o %s %s -ldl 2>/dev/null", so, src) != 0) cr_skip_test("no C compiler for the shim");
}

static int run_killed(const char *so, int after)
{
    return sh("ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=%s KILL_AFTER_PUBLISH_RENAMES=%d %s run --customers "
              "data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --no-report --k 2 >/dev/null 2>&1",
              so, after, fx_bin(), dir, dir);
}

/* 5. Killed between the commit journal and the last rename: every reader
 * completes (or refuses) the publish before reading, so what it reads is
 * one build, the new one. */
Test(integrity, readers_finish_a_publish_killed_half_way)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("ref", "--k 2"), 0, "%s", errtext());
    char *want = snapshot("ref", NULL);
    char so[300];
    build_shim(so, sizeof so);
    const char *readers[] = {"inspect --verify %s/wh", "report --warehouse %s/wh --format md --out -",
                             "docs --warehouse %s/wh", "lineage --warehouse %s/wh",
                             "export %s/wh/platinum/ml_centroids.strata",
                             "kmeans %s/wh/gold/int_customer_analytics.strata --columns total_sold_quantity --k 2"};
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        (void)!sh("rm -rf %s/wh", dir);
        cr_assert_eq(run("wh", "--k 3"), 0, "%s", errtext());
        int rc = run_killed(so, 3);
        cr_assert_eq(rc, 128 + SIGKILL, "the shim kills the publish (rc %d)", rc);
        cr_assert(exists("%s/wh/.staging/COMMIT", dir), "test premise: a journal is pending");
        char cmd[400];
        snprintf(cmd, sizeof cmd, readers[i], dir);
        rc = cli("%s", cmd);
        cr_assert_eq(rc, 0, "'%s' exit %d: %s", cmd, rc, errtext());
        cr_assert(!exists("%s/wh/.staging/COMMIT", dir), "'%s' read a half-published warehouse", cmd);
        char *got = snapshot("wh", NULL);
        cr_assert_str_eq(got, want, "'%s': the warehouse is not the new build", cmd);
        free(got);
    }
    free(want);
}

static void swap_files(const char *a, const char *b)
{
    cr_assert_eq(sh("cd %s/wh && mv %s x.tmp && mv %s %s && mv x.tmp %s", dir, a, b, a, b), 0);
}

/* 4. Swapped files are named and refused by readers, rebuilt by a run,
 * never read as each other; a bronze file from another source's
 * warehouse makes ingest run again. */
Test(integrity, swapped_and_foreign_files_are_refused_or_rebuilt)
{
    gen("tx.db", 1000, 7);
    gen("other.db", 1000, 99);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    char *good = snapshot("wh", NULL);
    swap_files("silver/stg_sales_transactions.strata", "silver/stg_foc_transactions.strata");
    int rc = cli("inspect --verify %s/wh/silver/stg_sales_transactions.strata", dir);
    cr_assert_eq(rc, 6, "a swapped file is refused by inspect, got %d", rc);
    cr_assert_eq(cli("inspect --verify %s/wh", dir), 6);
    rc = run("wh", "--from intermediate --force");
    cr_assert_eq(rc, 6, "gold must not be built from swapped silver (exit %d)", rc);
    cr_assert_not_null(strstr(errtext(), "stg_sales_transactions"), "%s", errtext());
    cr_assert_eq(run("wh", ""), 0, "a full run rebuilds the misplaced files: %s", errtext());
    char *now = snapshot("wh", NULL);
    cr_assert_str_eq(now, good, "after the rebuild the warehouse is the right one");
    free(now);
    /* a bronze file from another warehouse */
    cr_assert_eq(run_on("other.db", "wh2", ""), 0, "%s", errtext());
    cr_assert_eq(sh("cp %s/wh2/bronze/raw_sales_quantity.strata %s/wh/bronze/", dir, dir), 0);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    now = snapshot("wh", NULL);
    cr_assert_str_eq(now, good, "the foreign bronze file was kept");
    free(now);
    free(good);
}

/* 6. A suite of 20,000 rules with one automatic id base parses (it was
 * cubic: 10,000 rules took minutes). The suite's timeout, not a timing
 * assertion, is what fails the old code; the ids are checked. */
Test(integrity, suite_parsing_is_linear_in_rules, .timeout = 60)
{
    enum { N = 20000 };
    size_t cap = (size_t)N * 48 + 64, len = 0;
    char *t = malloc(cap);
    len += (size_t)snprintf(t + len, cap - len, "[silver.stg_sales_transactions]\n");
    for (int i = 0; i < N; i++) len += (size_t)snprintf(t + len, cap - len, "not_null customer_id\n");
    st_suite *s = NULL;
    st_error e;
    cr_assert_eq(st_suite_parse(&s, t, len, "big.suite", &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_suite_count(s), N);
    cr_assert_str_eq(st_suite_get(s, 0)->id, "silver.stg_sales_transactions/not_null/customer_id");
    cr_assert_str_eq(st_suite_get(s, 1)->id, "silver.stg_sales_transactions/not_null/customer_id#2");
    cr_assert_str_eq(st_suite_get(s, N - 1)->id, "silver.stg_sales_transactions/not_null/customer_id#20000");
    st_suite_free(s);
    free(t);
}

/* 7. A customers table that is not there is exit 3 naming it once. */
Test(integrity, missing_customers_table_is_refused)
{
    gen("tx.db", 300, 7);
    int rc = run("wh", "--customers-table definitely_not_here");
    cr_assert_eq(rc, 3, "exit %d: %s", rc, errtext());
    const char *m = errtext();
    cr_assert_not_null(strstr(m, "definitely_not_here"), "%s", m);
    const char *first = strstr(m, "'Customer'");
    cr_assert(!first || !strstr(first + 1, "'Customer'"), "'Customer' listed twice: %s", m);
}

/* 8. A feature given twice is a usage error. */
Test(integrity, duplicate_features_are_refused)
{
    gen("tx.db", 300, 7);
    int rc = run("wh", "--features foc_ratio,foc_ratio");
    cr_assert_eq(rc, 2, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "foc_ratio"), "%s", errtext());
    cr_assert(!exists("%s/wh/platinum/ml_centroids.strata", dir));
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    cr_assert_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* 9. A damaged block in a step's files is noticed by the next run: the
 * step is rebuilt, not skipped over the damage. */
Test(integrity, damaged_block_of_a_skipped_step_is_rebuilt)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    char *good = snapshot("wh", NULL);
    const char *victims[] = {"gold/int_customer_analytics.strata", "bronze/raw_sales_quantity.strata",
                             "platinum/marts_customer_summary.strata"};
    for (size_t i = 0; i < sizeof victims / sizeof victims[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/wh/%s", dir, victims[i]);
        flip_byte(p, 16 + 24 + 3); /* inside the first block's payload */
        cr_assert_eq(cli("inspect --verify %s", p), 6, "test premise: the file is damaged");
        cr_assert_eq(run("wh", ""), 0, "%s", errtext());
        int rc = cli("inspect --verify %s/wh", dir);
        cr_assert_eq(rc, 0, "run left the damaged %s in place (verify exit %d)", victims[i], rc);
        char *now = snapshot("wh", NULL);
        cr_assert_str_eq(now, good, "%s", victims[i]);
        free(now);
    }
    free(good);
}

/* 10. A persona map naming a cluster 'Not Active' is refused with its line. */
Test(integrity, persona_map_cannot_name_a_cluster_not_active)
{
    gen("tx.db", 300, 7);
    char p[300];
    snprintf(p, sizeof p, "%s/map.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("# names\n0 = Not Active\n", f);
    fclose(f);
    char extra[400];
    snprintf(extra, sizeof extra, "--persona-map %s", p);
    int rc = run("wh", extra);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "map.txt:2"), "%s", errtext());
}

/* 11. A FIFO as a source is refused at once (exit 3), never waited on. */
Test(integrity, fifo_source_is_refused_without_blocking)
{
    gen("tx.db", 300, 7);
    char p[300];
    snprintf(p, sizeof p, "%s/pipe.db", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    int rc = sh("timeout 30 %s run --customers data/chinook.db --transactions %s --warehouse %s/wh --quiet "
                "--no-report >/dev/null 2>%s/err.txt",
                fx_bin(), p, dir, dir);
    cr_assert_eq(rc, 3, "exit %d (124: it hung): %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "FIFO"), "%s", errtext());
    rc = sh("timeout 30 %s inspect %s >/dev/null 2>&1", fx_bin(), p);
    cr_assert_neq(rc, 124, "inspect hung on a FIFO");
    const char *flags[] = {"--customers", "--persona-map", "--suite"};
    const int want[] = {3, 2, 2};
    for (int i = 0; i < 3; i++) {
        rc = sh("timeout 30 %s run --customers data/chinook.db --transactions %s/tx.db %s %s --warehouse %s/wh "
                "--quiet --no-report >/dev/null 2>%s/err.txt",
                fx_bin(), dir, flags[i], p, dir, dir);
        cr_assert_eq(rc, want[i], "%s FIFO: exit %d (124: it hung): %s", flags[i], rc, errtext());
    }
}

static void bump_major(const char *path)
{
    size_t n;
    char *a = fx_slurp(path, &n);
    cr_assert_not_null(a);
    uint8_t *u = (uint8_t *)a;
    u[8] = 2, u[9] = 0; /* major version 2 (little-endian u16) */
    uint32_t crc = st_crc32c(0, u, 12);
    memcpy(u + 12, &crc, 4);
    u[n - 24 + 12] = 2, u[n - 24 + 13] = 0;
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(a, 1, n, f), n);
    fclose(f);
    free(a);
}

/* 12. A file written by a newer major version is never overwritten by a
 * run (exit 9 naming it), and `inspect --verify DIR` says so (exit 9),
 * not "damaged". */
Test(integrity, newer_major_version_file_is_refused_not_overwritten)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    char p[600];
    snprintf(p, sizeof p, "%s/wh/platinum/ml_centroids.strata", dir);
    bump_major(p);
    size_t n0, n1;
    char *before = fx_slurp(p, &n0);
    int rc = run("wh", "--k 2");
    cr_assert_eq(rc, 9, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "ml_centroids"), "%s", errtext());
    char *after = fx_slurp(p, &n1);
    cr_assert(n0 == n1 && !memcmp(before, after, n0), "the newer file was overwritten");
    rc = cli("inspect --verify %s/wh", dir);
    cr_assert_eq(rc, 9, "inspect --verify DIR exit %d", rc);
    char q[300];
    snprintf(q, sizeof q, "%s/out.txt", dir);
    char *out = fx_slurp(q, &n0);
    cr_assert_null(strstr(out, "DAMAGED"), "%s", out);
    free(out);
    free(before);
    free(after);
}

/* Issue 16: --only ml --k 2 leaves no platinum table of the k = 3 build:
 * the steps after a rebuilt step run too (dbt's ml+). */
Test(integrity, only_ml_reruns_its_downstream_steps)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("ref", "--k 2"), 0, "%s", errtext());
    cr_assert_eq(run("wh", "--k 3"), 0, "%s", errtext());
    cr_assert_eq(run("wh", "--only ml --k 2"), 0, "%s", errtext());
    char *want = snapshot("ref", "platinum"), *got = snapshot("wh", "platinum");
    cr_assert_str_eq(got, want, "platinum mixes two builds");
    free(want);
    free(got);
    /* a --only step whose outputs are current changes nothing and runs nothing more */
    cr_assert_eq(run("wh", "--only ml --k 2"), 0, "%s", errtext());
}

/* ---- the "Also" list --------------------------------------------------- */

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* Every customer-month identical, k = 3: k is lowered to the one distinct
 * point and said so; no empty cluster gets a name. */
Test(integrity, degenerate_clustering_lowers_k)
{
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    exec_sql(p, "CREATE TABLE sales_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                "quantity INTEGER);"
                "CREATE TABLE foc_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                "quantity_foc INTEGER);"
                "INSERT INTO sales_qty VALUES (1,2024,1,'M1',10),(2,2024,1,'M1',10),(3,2024,1,'M1',10),"
                "(4,2024,1,'M1',10),(5,2024,1,'M1',10);");
    cr_assert_eq(run("wh", "--k 3"), 0, "%s", errtext());
    cr_assert_eq(n_rows("wh", "platinum", "ml_centroids"), 1, "one distinct point, one cluster");
    char q[300];
    snprintf(q, sizeof q, "%s/wh/_runs/latest.json", dir);
    size_t n;
    char *log = fx_slurp(q, &n);
    cr_assert_not_null(strstr(log, "distinct"), "the run says why k was lowered: %s", log);
    free(log);
    float x[4 * 2] = {1, 2, 1, 2, 3, 4, 1, 2};
    cr_assert_eq(st_kmeans_distinct_points(x, 4, 2, 64), 2);
    cr_assert_eq(st_kmeans_distinct_points(x, 4, 2, 1), 1);
}

Test(integrity, empty_column_name_is_named_as_empty)
{
    gen("tx.db", 300, 7);
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    exec_sql(p, "CREATE TABLE odd(\"\" INTEGER, customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                "quantity INTEGER)");
    int rc = run("wh", "--sales-table odd");
    cr_assert_eq(rc, 3, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "empty"), "%s", errtext());
    cr_assert_null(strstr(errtext(), "UTF-8"), "%s", errtext());
}

Test(integrity, read_only_hints_name_the_hot_journal_and_wal)
{
    char p[300], j[320];
    char buf[512];
    snprintf(p, sizeof p, "%s/x.db", dir);
    exec_sql(p, "CREATE TABLE t(a)");
    cr_assert(!st_source_open_hint(p, false, buf, sizeof buf), "a plain database has nothing to explain");
    snprintf(j, sizeof j, "%s-journal", p);
    FILE *f = fopen(j, "w");
    fputs("not empty", f);
    fclose(f);
    cr_assert(st_source_open_hint(p, false, buf, sizeof buf));
    cr_assert_not_null(strstr(buf, "hot journal"), "%s", buf);
    unlink(j);
    exec_sql(p, "PRAGMA journal_mode=WAL");
    cr_assert(st_source_open_hint(p, false, buf, sizeof buf));
    cr_assert_not_null(strstr(buf, "WAL"), "%s", buf);
    cr_assert(st_source_open_hint(p, true, buf, sizeof buf));
    cr_assert_not_null(strstr(buf, "--wait"), "%s", buf);
}

Test(integrity, lock_path_that_is_a_directory_is_named)
{
    gen("tx.db", 300, 7);
    cr_assert_eq(sh("mkdir -p %s/wh/.lock", dir), 0);
    int rc = run("wh", "");
    cr_assert_eq(rc, 5, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), ".lock' is a directory"), "%s", errtext());
}

Test(integrity, suite_with_a_utf8_bom_is_accepted)
{
    const char *t = "\xEF\xBB\xBF[silver.stg_customers]\nnot_null customer_id\n";
    st_suite *s = NULL;
    st_error e;
    cr_assert_eq(st_suite_parse(&s, t, strlen(t), "bom.suite", &e), ST_OK, "%s", e.msg);
    cr_assert_eq(st_suite_count(s), 1);
    st_suite_free(s);
}

/* A writer's lock on the source is waited for (SQLite's busy timeout)
 * and, when it outlasts the wait, named with the way to wait longer. */
Test(integrity, source_locked_by_a_writer_is_waited_for_and_named)
{
    gen("tx.db", 300, 7);
    char p[300];
    snprintf(p, sizeof p, "%s/tx.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE; INSERT INTO sales_qty SELECT * FROM sales_qty LIMIT 1;", NULL,
                              NULL, NULL),
                 SQLITE_OK);
    int rc = run("wh", "");
    cr_assert_eq(rc, 3, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "--wait"), "%s", errtext());
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    cr_assert_eq(run("wh", "--wait"), 0, "%s", errtext());
}

/* The same through the CLI, in a directory SQLite cannot write (an
 * immutable attribute): a WAL database without its -shm, then a hot
 * journal left by a writer that died mid-transaction. Exit 3 with the
 * reason, not "attempt to write a readonly database". */
Test(integrity, read_only_directory_explains_wal_and_hot_journal)
{
    char d[300], p[340];
    snprintf(d, sizeof d, "%s/ro", dir);
    cr_assert_eq(mkdir(d, 0755), 0);
    snprintf(p, sizeof p, "%s/tx.db", d);
    gen("ro/tx.db", 300, 7);
    exec_sql(p, "PRAGMA journal_mode=WAL");
    if (sh("chattr +i %s 2>/dev/null", d) != 0) cr_skip_test("this file system has no immutable attribute (chattr +i)");
    int rc = run_on("ro/tx.db", "wh", "");
    (void)!sh("chattr -i %s", d);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "WAL mode"), "%s", errtext());
    exec_sql(p, "PRAGMA journal_mode=DELETE");
    pid_t w = fork();
    if (w == 0) { /* a writer that dies with its transaction half written */
        sqlite3 *db = NULL;
        if (sqlite3_open(p, &db) != SQLITE_OK) _exit(1);
        sqlite3_exec(db, "PRAGMA cache_size=1; BEGIN; UPDATE sales_qty SET quantity = quantity + 1;", NULL, NULL, NULL);
        _exit(0);
    }
    int st;
    waitpid(w, &st, 0);
    cr_assert(exists("%s-journal", p), "test premise: a hot journal");
    cr_assert_eq(sh("chattr +i %s", d), 0);
    rc = run_on("ro/tx.db", "wh", "");
    (void)!sh("chattr -i %s", d);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "hot journal"), "%s", errtext());
}

/* A reader that finds a journal while a run holds the lock (a publish
 * under way) waits for it instead of reading half of it. */
Test(integrity, reader_waits_for_a_publish_under_way)
{
    gen("tx.db", 300, 7);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    char wh[300];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t holder = fork();
    if (holder == 0) {
        st_warehouse *w = NULL;
        st_error e;
        char j[400];
        if (st_warehouse_open(&w, wh, false, &e) != ST_OK) _exit(1);
        snprintf(j, sizeof j, "%s/.staging", wh);
        mkdir(j, 0777);
        snprintf(j, sizeof j, "%s/.staging/COMMIT", wh);
        FILE *f = fopen(j, "w");
        if (!f) _exit(1);
        fclose(f);
        (void)!write(pipefd[1], "x", 1);
        sleep(1);
        st_warehouse_close(w); /* the "publish" ends: staging and journal go */
        _exit(0);
    }
    char c;
    cr_assert_eq(read(pipefd[0], &c, 1), 1);
    cr_assert(exists("%s/.staging/COMMIT", wh), "test premise");
    int rc = cli("docs --warehouse %s", wh);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, errtext());
    cr_assert(!exists("%s/.staging/COMMIT", wh), "docs read while the publish was under way");
    int st;
    waitpid(holder, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

Test(integrity, place_check_applies_to_warehouse_shaped_paths_only)
{
    st_file_meta m = {.layer = "silver", .table = "stg_foc_transactions"};
    st_error e;
    cr_assert_eq(st_file_check_place(&m, "/w/silver/stg_foc_transactions.strata", &e), ST_OK);
    cr_assert_eq(st_file_check_place(&m, "/w/.staging/silver/stg_foc_transactions.strata", &e), ST_OK);
    cr_assert_eq(st_file_check_place(&m, "/w/silver/stg_sales_transactions.strata", &e), ST_ERR_CORRUPT);
    cr_assert_not_null(strstr(e.msg, "holds silver.stg_foc_transactions, not silver.stg_sales_transactions"), "%s",
                       e.msg);
    cr_assert_eq(st_file_check_place(&m, "/w/gold/stg_foc_transactions.strata", &e), ST_ERR_CORRUPT);
    cr_assert_eq(st_file_check_place(&m, "/data/exports/anything.strata", &e), ST_OK, "not a warehouse path");
    cr_assert_eq(st_file_check_place(&m, "stg.strata", &e), ST_OK);
    cr_assert_eq(st_file_check_place(&m, "/w/silver/notes.txt", &e), ST_OK);
}

/* The content fingerprint: equal rows give equal fingerprints, one
 * changed value another. */
static uint64_t content_fp(const char *path, int64_t last)
{
    st_field f = {"x", ST_TYPE_I64, false, NULL};
    st_file_meta m = {.layer = "bronze", .table = "t", .params = "", .fingerprint = 7};
    st_writer *w = NULL;
    st_error e;
    cr_assert_eq(st_writer_open(&w, path, &f, 1, &m, NULL, &e), ST_OK, "%s", e.msg);
    st_column c;
    st_column_init(&c, ST_TYPE_I64);
    for (int64_t i = 0; i < 1000; i++) cr_assert_eq(st_column_push_i64(&c, i == 999 ? last : i), ST_OK);
    cr_assert_eq(st_writer_write(w, &c, 0, 1000, &e), ST_OK, "%s", e.msg);
    st_column_free(&c);
    st_writer_fingerprint_content(w);
    cr_assert_eq(st_writer_close(w, &e), ST_OK, "%s", e.msg);
    st_reader *r = NULL;
    cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
    uint64_t fp = st_reader_meta(r)->fingerprint;
    st_reader_close(r);
    return fp;
}

Test(integrity, content_fingerprint_follows_the_rows)
{
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a.strata", dir);
    snprintf(b, sizeof b, "%s/b.strata", dir);
    uint64_t x = content_fp(a, 999), y = content_fp(b, 999), z = content_fp(b, 1000);
    cr_assert_eq(x, y, "same rows, same fingerprint");
    cr_assert_neq(x, z, "one value changed");
    cr_assert_neq(x, 7, "the content is folded in");
}

/* A publish whose rename fails half way (injected EIO at the third publish
 * rename) and whose roll-back fails too (EIO on every rename back): exit
 * 5 saying so, the journal stays, and the next command rolls it forward
 * to the new build; with the roll-back working, the old build stands. */
Test(integrity, failed_publish_rolls_back_or_leaves_a_journal_to_roll_forward)
{
    gen("tx.db", 1000, 7);
    cr_assert_eq(run("ref", "--k 2"), 0, "%s", errtext());
    char *want_new = snapshot("ref", NULL);
    char so[300];
    build_shim(so, sizeof so);
    cr_assert_eq(run("wh", "--k 3"), 0, "%s", errtext());
    char *old = snapshot("wh", NULL);
    int rc = sh("ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=%s FAIL_PUBLISH_RENAME=3 %s run --customers "
                "data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --no-report --k 2 >/dev/null "
                "2>%s/err.txt",
                so, fx_bin(), dir, dir, dir);
    cr_assert_eq(rc, 5, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "previous warehouse restored"), "%s", errtext());
    char *now = snapshot("wh", NULL);
    cr_assert_str_eq(now, old, "a rolled-back publish left the old build");
    free(now);
    cr_assert(!exists("%s/wh/.staging/COMMIT", dir));
    rc = sh("ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=%s FAIL_PUBLISH_RENAME=3 FAIL_UNDO=1 %s run --customers "
            "data/chinook.db --transactions %s/tx.db --warehouse %s/wh --quiet --no-report --k 2 >/dev/null "
            "2>%s/err.txt",
            so, fx_bin(), dir, dir, dir);
    cr_assert_eq(rc, 5, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "could not be rolled back"), "%s", errtext());
    cr_assert(exists("%s/wh/.staging/COMMIT", dir), "the journal stays for the next command");
    cr_assert_eq(cli("lineage --warehouse %s/wh", dir), 0, "%s", errtext());
    now = snapshot("wh", NULL);
    cr_assert_str_eq(now, want_new, "the next command rolled the publish forward to the new build");
    free(now);
    free(old);
    free(want_new);
}

/* Flips a byte inside the payload of block (chunk, col) of the layer
 * file at dir/rel: blocks tile the file from byte 16 in chunk-major,
 * column-minor order, each a 24-byte header and its payload. */
static void flip_block(const char *rel, size_t chunk, size_t col)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    st_reader *r;
    st_error e;
    cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
    size_t nf = st_reader_n_fields(r);
    cr_assert(chunk < st_reader_n_chunks(r), "%s has %zu chunks", rel, st_reader_n_chunks(r));
    uint64_t at = 16;
    for (size_t c = 0; c <= chunk; c++)
        for (size_t j = 0; j < nf && !(c == chunk && j == col); j++) {
            st_block_info bi;
            cr_assert_eq(st_reader_block_info(r, c, j, &bi), ST_OK);
            at += bi.size_bytes;
        }
    st_reader_close(r);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, (long)(at + 24 + 1), SEEK_SET), 0);
    int ch = fgetc(f);
    cr_assert_neq(ch, EOF);
    cr_assert_eq(fseek(f, (long)(at + 24 + 1), SEEK_SET), 0);
    fputc(ch ^ 0x20, f);
    fclose(f);
}

/* 7. Damaged silver chunks in both tables: the fused gold pass reports
 * the same chunk at 1, 2, 3 and 4 threads, the first damaged one in the
 * serial order (every sales chunk, then every FOC chunk), though the FOC
 * one comes first in the order the chunks are read (by month). */
Test(integrity, damaged_silver_chunks_get_the_same_error_at_any_thread_count, .timeout = 120)
{
    gen("tx.db", 300000, 5);
    cr_assert_eq(run("wh", ""), 0, "%s", errtext());
    flip_block("wh/silver/stg_foc_transactions.strata", 0, 1);
    flip_block("wh/silver/stg_sales_transactions.strata", 3, 1);
    for (int t = 1; t <= 4; t++) {
        char extra[64];
        snprintf(extra, sizeof extra, "--from intermediate --force --threads %d", t);
        int rc = run("wh", extra);
        cr_assert_eq(rc, 6, "threads %d: exit %d: %s", t, rc, errtext());
        cr_assert(strstr(errtext(), "stg_sales_transactions.strata' is damaged") && strstr(errtext(), "chunk 3"),
                  "threads %d: %s", t, errtext());
    }
}

/* Rewrites the zone map of column `col` in chunk ch of a layer file to
 * [mn, mx] and the footer's CRC, so the file's checksums hold while its
 * zone map lies. The chunk directory is the footer's end (FORMAT.md):
 * u32 C, then C x (u32 rows, F block entries of 44 bytes: min at +28,
 * max at +36), then u32 S = 0 (no optional sections). */
static void lie_zone_map(const char *rel, size_t ch, const char *col, int64_t mn, int64_t mx)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
    size_t nc = st_reader_n_chunks(r), nf = st_reader_n_fields(r);
    int c = st_reader_find(r, col);
    st_reader_close(r);
    cr_assert(c >= 0 && ch < nc);
    size_t n;
    uint8_t *u = (uint8_t *)fx_slurp(path, &n);
    cr_assert_not_null(u);
    uint64_t flen;
    memcpy(&flen, u + n - 24, 8);
    uint8_t *foot = u + n - 24 - flen, *end = u + n - 24;
    uint32_t sections, chunks;
    memcpy(&sections, end - 4, 4);
    cr_assert_eq(sections, 0);
    uint8_t *d = end - 4 - nc * (4 + nf * 44) - 4;
    memcpy(&chunks, d, 4);
    cr_assert_eq(chunks, nc);
    uint8_t *e = d + 4 + ch * (4 + nf * 44) + 4 + (size_t)c * 44;
    memcpy(e + 28, &mn, 8);
    memcpy(e + 36, &mx, 8);
    uint32_t crc = st_crc32c(0, foot, (size_t)flen);
    memcpy(u + n - 24 + 8, &crc, 4);
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(u, 1, n, f), n);
    fclose(f);
    free(u);
}

/* A silver chunk whose period_key zone map claims one month while its
 * lines span three (checksums intact): the fused pass takes the chunk as
 * in period_key order, seals January on the zone map's word and meets a
 * May line after it; the run fails (exit 6) naming that line's row in the
 * table, not its place in the slice it was added with. */
Test(integrity, a_lying_period_key_zone_map_is_refused_naming_the_row)
{
    char p[300];
    snprintf(p, sizeof p, "%s/lie.db", dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                    "quantity INTEGER);");
    fx_exec_sql(db, "CREATE TABLE foc_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, "
                    "quantity_foc INTEGER);");
    static const int months[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 12, 5, 12, 12, 12, 12};
    for (size_t i = 0; i < sizeof months / sizeof *months; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "INSERT INTO sales_qty VALUES (1, 2021, %d, 'A', 1);", months[i]);
        fx_exec_sql(db, sql);
    }
    fx_exec_sql(db, "INSERT INTO foc_qty VALUES (1, 2021, 1, 'A', 1);");
    fx_exec_sql(db, "INSERT INTO foc_qty VALUES (1, 2021, 12, 'A', 1);");
    sqlite3_close(db);
    cr_assert_eq(run_on("lie.db", "wh", ""), 0, "%s", errtext());
    lie_zone_map("wh/silver/stg_sales_transactions.strata", 0, "period_key", 202101, 202101);
    setenv("STRATA_GOLD_PATH", "fused", 1);
    int rc = run_on("lie.db", "wh", "--from intermediate --force --threads 1");
    unsetenv("STRATA_GOLD_PATH");
    cr_assert_eq(rc, 6, "exit %d: %s", rc, errtext());
    cr_assert_not_null(strstr(errtext(), "silver.stg_sales_transactions row 11 (chunk 0): period_key 202105 is in a "
                                         "month sealed before"),
                       "%s", errtext());
}
