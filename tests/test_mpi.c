/*
 * test_mpi.c: `mpirun -np N strata-mpi run` against one `strata run`.
 *
 * The MPI build's promises (README "The MPI build"): for any number of
 * ranks the warehouse exports exactly as the one built by one process
 * (every table, every byte of its CSV export; the platinum files, where
 * the k-means results live, byte for byte, whatever --threads), k-means
 * split by points over the ranks gives the fit of one process to the bit
 * (also when every rank holds several blocks of points, and when empty
 * clusters take points across ranks), and a rank that fails or dies
 * mid-run fails the run on every rank and leaves the previous warehouse
 * as it was, readable and verified. The ranks run on this
 * machine (`--oversubscribe`), which is what a cluster's ranks see too,
 * minus the network.
 *
 * The binary comes from STRATA_MPI_BIN (the Makefile sets it when `make
 * mpi` could build build/strata-mpi); without it, or without mpirun on
 * PATH, every test here is skipped with a message saying so.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/column.h"
#include "strata/file.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_mpi_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(mpi, .init = setup, .fini = teardown, .timeout = 600);

/* The MPI binary, or skips the test saying why. */
static const char *mpi_bin(void)
{
    const char *b = getenv("STRATA_MPI_BIN");
    if (!b || !*b || access(b, X_OK) != 0)
        cr_skip_test("skipped: STRATA_MPI_BIN not set or not executable (make mpi needs Open MPI: "
                     "bash scripts/deps.sh mpi)");
    if (fx_sh("command -v mpirun >/dev/null 2>&1") != 0) cr_skip_test("skipped: mpirun not on PATH");
    return b;
}

/* Under sanitizers the ranks check memory errors but not leaks: Open MPI
 * leaves its start-up allocations behind in components it has unloaded by
 * exit, which LeakSanitizer can neither name nor suppress. */
static const char *leak_env(void) { return getenv("STRATA_SANITIZED") ? "ASAN_OPTIONS=detect_leaks=0" : ""; }

/* mpirun -np n strata-mpi run ... into dir/wh; env: "VAR=value" or "". */
static int mpi_run(const char *bin, int n, const char *tx, const char *wh, const char *env, const char *extra)
{
    return fx_sh("%s %s mpirun --allow-run-as-root --oversubscribe -np %d %s run --customers data/chinook.db "
                 "--transactions %s --warehouse %s/%s --quiet --no-report %s >%s/out.txt 2>%s/err.txt",
                 leak_env(), env, n, bin, tx, dir, wh, extra, dir, dir);
}

/* The CSV export of every table of dir/wh, each under its name, in one
 * string (caller frees), so two warehouses compare with one strcmp (the
 * part files of a partitioned table are read through its manifest). */
static char *exports(const char *wh)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s.exports", dir, wh);
    int rc = fx_sh("cd %s/%s && for f in $(find . -name '*.strata' -not -path './.staging/*' -not -path '*.parts/*' "
                   "| sort); do "
                   "echo \"== $f\"; %s export \"$f\" || echo FAILED; done > %s 2>&1",
                   dir, wh, fx_bin(), p);
    cr_assert_eq(rc, 0);
    size_t len;
    return fx_slurp(p, &len);
}

/* md5 of the files `list` (a shell command run in dir/wh) names, in one
 * string (caller frees); tag names the list's file. */
static char *md5s(const char *wh, const char *tag, const char *list)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s.%s", dir, wh, tag);
    cr_assert_eq(fx_sh("cd %s/%s && %s | xargs -r md5sum > %s", dir, wh, list, p), 0);
    size_t len;
    return fx_slurp(p, &len);
}

/* md5 of every published layer file and the run's data state of dir/wh. */
static char *snapshot(const char *wh)
{
    return md5s(wh, "snap", "find . -name '*.strata' -not -path './.staging/*' | sort");
}

Test(mpi, every_table_for_1_to_4_ranks_exports_as_one_process)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_sh("%s gen --out %s >/dev/null 2>&1", fx_bin(), tx); /* the demo source, default size */
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one");
    cr_assert_not_null(strstr(ref, "platinum/ml_centroids.strata"));
    cr_assert_null(strstr(ref, "FAILED"), "%s", ref);
    for (int n = 1; n <= 4; n++)
        for (int t = 1; t <= 2; t++) {
            char name[32], threads[32];
            snprintf(name, sizeof name, "np%d_t%d", n, t);
            snprintf(threads, sizeof threads, "--threads %d", t);
            /* the demo's 4,646 points are 2 blocks: from 3 ranks on, some
             * ranks hold none and still take part in every fold */
            cr_assert_eq(mpi_run(bin, n, tx, name, "", threads), 0, "np %d: %s", n, fx_text_of(dir, "err.txt"));
            const char *diff = fx_differing_files(dir, "one", name, "platinum");
            cr_assert_str_eq(diff, "", "np %d, %s: platinum files differ from one process:\n%s", n, threads, diff);
            if (t == 2) continue;
            char *got = exports(name);
            cr_assert_str_eq(got, ref, "np %d: some table exports differently from one process", n);
            free(got);
        }
    free(ref);
}

/* 1,500 customers over 60 months: about 60,000 customer-periods, 15
 * blocks of 4,096 points, so on 2 to 4 ranks every rank holds several
 * blocks (np 4: 4, 4, 4 and 3) and every fold of every k-means pass
 * crosses ranks in the middle of the points. The ml tables (centroids,
 * inertia per k, every label in fct_transactions) must be one process's
 * bits, whatever the ranks, threads and SIMD kernels. */
Test(mpi, many_blocks_per_rank_give_the_ml_tables_of_one_process)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300], out[4096];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    cr_assert_eq(fx_sh("%s gen --out %s --rows 200000 --customers 1500 --months 60 >/dev/null 2>&1", fx_bin(), tx), 0);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    fx_capture(out, sizeof out, "%s inspect --json %s/gold/int_customer_analytics.strata", fx_bin(), wh);
    const char *rows = strstr(out, "\"rows\": ");
    cr_assert_not_null(rows, "%s", out);
    long n = atol(rows + 8);
    cr_assert_gt(n, 4 * 3 * 4096, "%ld points: fewer than 3 blocks for each of 4 ranks", n);
    static const int np[3] = {2, 3, 4}, threads[3] = {2, 1, 2};
    for (int c = 0; c < 3; c++) {
        char name[32], extra[48];
        snprintf(name, sizeof name, "np%d", np[c]);
        snprintf(extra, sizeof extra, "--threads %d", threads[c]);
        cr_assert_eq(mpi_run(bin, np[c], tx, name, "", extra), 0, "np %d: %s", np[c], fx_text_of(dir, "err.txt"));
        const char *diff = fx_differing_files(dir, "one", name, "platinum");
        cr_assert_str_eq(diff, "", "np %d, %s: platinum files differ from one process:\n%s", np[c], extra, diff);
    }
    /* three ranks on three kernels (the widest the CPU has, scalar, AVX2
     * when present): the kernels agree bit for bit, so ranks of unlike
     * machines fold the same partials */
    const char *run = "run --customers data/chinook.db --quiet --no-report --threads 1 --transactions";
    int rc = fx_sh("%s mpirun --allow-run-as-root --oversubscribe -np 1 %s %s %s --warehouse %s/mixed : -np 1 env "
                   "STRATA_FORCE_SCALAR=1 %s %s %s --warehouse %s/mixed : -np 1 env STRATA_KMEANS_KERNEL=avx2 %s %s %s "
                   "--warehouse %s/mixed >%s/out.txt 2>%s/err.txt",
                   leak_env(), bin, run, tx, dir, bin, run, tx, dir, bin, run, tx, dir, dir, dir);
    cr_assert_eq(rc, 0, "%s", fx_text_of(dir, "err.txt"));
    const char *diff = fx_differing_files(dir, "one", "mixed", "platinum");
    cr_assert_str_eq(diff, "", "ranks on three kernels: platinum files differ from one process:\n%s", diff);
}

/* dir/<name>: a layer file of n points in float64 columns x0, x1, x2:
 * five overlapping Gaussian clouds, or (distinct > 0) only `distinct`
 * different points, repeated in a random order. */
static void write_points(const char *name, size_t n, int distinct, uint64_t seed)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    st_field fields[3] = {{"x0", ST_TYPE_F64, false, NULL}, {"x1", ST_TYPE_F64, false, NULL},
                          {"x2", ST_TYPE_F64, false, NULL}};
    st_file_meta meta = {.layer = "test", .table = "points", .params = ""};
    st_write_opts wo = {.no_fsync = true};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, fields, 3, &meta, &wo, &err), ST_OK, "%s", err.msg);
    st_column c[3];
    for (int j = 0; j < 3; j++) st_column_init(&c[j], ST_TYPE_F64);
    fx_seed(seed);
    for (size_t i = 0; i < n; i++) {
        int b = (int)(fx_urand() * (distinct > 0 ? distinct : 5));
        for (int j = 0; j < 3; j++) {
            double v = b * (j == 1 ? -1.5 : 1.5) + j + (distinct > 0 ? 0 : fx_gauss());
            cr_assert_eq(st_column_push_f64(&c[j], v), ST_OK);
        }
    }
    cr_assert_eq(st_writer_write(w, c, 0, n, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (int j = 0; j < 3; j++) st_column_free(&c[j]);
}

/* `strata kmeans --json` on dir/<file> (prefix: "" for one process, else
 * the mpirun command line and strata-mpi), without the two fields that
 * may differ (threads in use, seconds). Caller frees. */
static char *kmeans_json(const char *prefix, const char *file, const char *args)
{
    char p[400];
    snprintf(p, sizeof p, "%s/km.json", dir);
    int rc = fx_sh("%s kmeans %s/%s --columns x0,x1,x2 %s --json 2>%s/err.txt | sed -E 's/\"(threads|seconds)\": "
                   "[0-9.e+-]+//g' > %s",
                   prefix, dir, file, args, dir, p);
    cr_assert_eq(rc, 0, "%s", fx_text_of(dir, "err.txt"));
    size_t len;
    char *s = fx_slurp(p, &len);
    cr_assert_not_null(strstr(s, "\"inertia\": "), "%s", s);
    return s;
}

/* The k-means command itself on 2..4 ranks (strata-mpi kmeans is SPMD):
 * 50,000 points (13 blocks) through k selection and the final fit, and
 * more clusters than distinct points, so empty clusters take the
 * farthest points (every distance tied: the lowest index) from across
 * the ranks: the inertia, sizes, centroids and k-selection scores printed
 * (%.17g) are one process's. */
Test(mpi, kmeans_command_on_ranks_fits_as_one_process)
{
    const char *bin = mpi_bin();
    write_points("clouds.strata", 50000, 0, 11);
    write_points("few.strata", 40000, 3, 12);
    static const struct {
        const char *file, *args;
    } fits[2] = {{"clouds.strata", "--k auto --k-range 2..5 --n-init 3"}, {"few.strata", "--k 5 --n-init 2"}};
    for (int f = 0; f < 2; f++) {
        char one[300];
        snprintf(one, sizeof one, "%s", fx_bin());
        char args[200];
        snprintf(args, sizeof args, "%s --threads 2", fits[f].args);
        char *ref = kmeans_json(one, fits[f].file, args);
        for (int n = 2; n <= 4; n++) {
            char prefix[600];
            snprintf(prefix, sizeof prefix, "%s mpirun --allow-run-as-root --oversubscribe -np %d %s", leak_env(), n, bin);
            snprintf(args, sizeof args, "%s --threads %d", fits[f].args, n % 2 + 1);
            char *got = kmeans_json(prefix, fits[f].file, args);
            cr_assert_str_eq(got, ref, "%s on %d ranks: not the fit of one process", fits[f].file, n);
            free(got);
        }
        free(ref);
    }
}

/* A good one-process run over one file, then a run on three ranks that a
 * rank breaks: with other parameters (--seed 7 would change the
 * centroids), or over three shards of the file (bronze and silver would
 * become partitioned). The warehouse must stay the good run's, verified,
 * and a later run must work. */
static void broken_run_keeps_warehouse(const char *env, int want_rc, const char *want_msg, bool shards)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300], list[2000];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 30000, 3);
    snprintf(wh, sizeof wh, "%s/wh", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    char *before = snapshot("wh");
    snprintf(list, sizeof list, "%s", tx);
    if (shards) fx_split_source(tx, dir, 3, false, list, sizeof list);
    const char *extra = shards ? "--threads 1" : "--force --seed 7", *next = shards ? "--threads 1" : "--seed 7";
    int rc = mpi_run(bin, 3, list, "wh", env, extra);
    if (want_rc >= 0) cr_assert_eq(rc, want_rc, "exit code %d, want %d: %s", rc, want_rc, fx_text_of(dir, "err.txt"));
    else cr_assert_neq(rc, 0, "a killed rank must fail the run");
    if (want_msg) cr_assert_not_null(strstr(fx_text_of(dir, "err.txt"), want_msg), "%s", fx_text_of(dir, "err.txt"));
    char *after = snapshot("wh");
    cr_assert_str_eq(after, before, "the previous warehouse changed");
    cr_assert_eq(fx_sh("%s inspect --verify %s >/dev/null 2>&1", fx_bin(), wh), 0, "the warehouse must verify");
    /* the next run (all ranks well) publishes */
    cr_assert_eq(mpi_run(bin, 3, list, "wh", "", next), 0, "%s", fx_text_of(dir, "err.txt"));
    cr_assert_eq(fx_sh("%s inspect --verify %s >/dev/null 2>&1", fx_bin(), wh), 0);
    free(before);
    free(after);
}

static void broken_rank_keeps_warehouse(const char *env, int want_rc, const char *want_msg)
{
    broken_run_keeps_warehouse(env, want_rc, want_msg, false);
}

Test(mpi, a_failing_rank_fails_every_rank_with_its_message_and_keeps_the_warehouse)
{
    /* exit 1: the injected failure is ST_ERR_INTERNAL; rank 0 prints the
     * message, which names the failing rank */
    broken_rank_keeps_warehouse("STRATA_TEST_FAIL_RANK=1", 1, "strata run: rank 1: k-means: failure injected");
}

Test(mpi, a_killed_rank_fails_the_run_and_keeps_the_warehouse)
{
    broken_rank_keeps_warehouse("STRATA_TEST_KILL_RANK=2", -1, NULL);
}

Test(mpi, a_usage_error_is_exit_2_on_every_rank)
{
    const char *bin = mpi_bin();
    int rc = fx_sh("%s mpirun --allow-run-as-root --oversubscribe -np 2 %s run --no-such-flag >%s/out.txt 2>%s/err.txt",
                   leak_env(), bin, dir, dir);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, fx_text_of(dir, "err.txt"));
}

Test(mpi, more_ranks_than_restarts_give_the_same_tables)
{
    /* --n-init 2 on 3 ranks: fewer restarts than ranks (which once left
     * a rank idle) and, with this source's few points, ranks that hold no
     * block: every rank still takes part in every fold */
    const char *bin = mpi_bin();
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 30000, 5);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--n-init 2 --k auto"), 0, "%s", fx_text_of(dir, "err.txt"));
    cr_assert_eq(mpi_run(bin, 3, tx, "np3", "", "--n-init 2 --k auto --threads 1"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one"), *got = exports("np3");
    cr_assert_str_eq(got, ref, "3 ranks, 2 restarts: some table differs from one process");
    free(ref);
    free(got);
}

/* Three shards of the demo source (contiguous rowid ranges, rowids kept)
 * on three ranks: the same gold and platinum as one `strata run` over the
 * one file; with the rowids kept every other table exports the same too. */
Test(mpi, three_shards_on_three_ranks_give_the_tables_of_the_one_file)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300], list[2000];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_sh("%s gen --out %s >/dev/null 2>&1", fx_bin(), tx); /* the demo source, default size */
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    fx_split_source(tx, dir, 3, false, list, sizeof list);
    cr_assert_eq(mpi_run(bin, 3, list, "np3", "", "--threads 1"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = exports("one"), *got = exports("np3");
    cr_assert_not_null(strstr(ref, "gold/int_customer_analytics.strata"));
    cr_assert_null(strstr(got, "FAILED"), "%s", got);
    cr_assert_str_eq(got, ref, "3 shards on 3 ranks: some table exports differently from one process on the file");
    free(ref);
    free(got);
}

/* md5 of the two gold files of dir/wh, in one string (caller frees). */
static char *gold_md5(const char *wh)
{
    return md5s(wh, "gold", "ls gold/int_customer_analytics.strata gold/int_transactions_unified.strata");
}

/* The gold step's note in dir/wh's run log (caller frees the log). */
static char *run_log(const char *wh)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s/_runs/latest.json", dir, wh);
    size_t len;
    char *log = fx_slurp(p, &len);
    cr_assert_not_null(log, "no run log in %s", wh);
    return log;
}

/* The number before `what` in s (e.g. "14 customer ranges"), -1 if none. */
static long number_before(const char *s, const char *what)
{
    const char *at = strstr(s, what);
    if (!at) return -1;
    const char *b = at;
    while (b > s && b[-1] == ' ') b--;
    while (b > s && b[-1] >= '0' && b[-1] <= '9') b--;
    return b < at ? strtol(b, NULL, 10) : -1;
}

/* The gold step by customer range on 1..4 ranks writes the same two
 * files, byte for byte, as one process: with the default limit (one
 * range a rank or so, one exchange round) and with a limit so small that
 * there are many customer ranges and many all-to-all rounds. */
Test(mpi, gold_by_customer_range_on_1_to_4_ranks_is_byte_identical_to_one_process)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 60000, 11);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = gold_md5("one");
    static const char *const limits[2] = {"", "--memory-limit 256K"};
    for (int l = 0; l < 2; l++) {
        for (int n = 1; n <= 4; n++) {
            char name[32], extra[96];
            snprintf(name, sizeof name, "np%d_%d", n, l);
            snprintf(extra, sizeof extra, "--threads %d %s", 1 + (n & 1), limits[l]);
            cr_assert_eq(mpi_run(bin, n, tx, name, "", extra), 0, "np %d %s: %s", n, extra, fx_text_of(dir, "err.txt"));
            char *got = gold_md5(name), *log = run_log(name);
            cr_assert_str_eq(got, ref, "np %d %s: the gold files differ from one process's", n, extra);
            if (n > 1) {
                char ranks[32];
                snprintf(ranks, sizeof ranks, "on %d ranks", n);
                cr_assert_not_null(strstr(log, ranks), "np %d: the run log does not say %s", n, ranks);
                long rounds = number_before(log, "exchange round");
                cr_assert(rounds >= 1, "np %d: no exchange rounds in the run log", n);
                if (l == 1) {
                    cr_assert(number_before(log, "customer ranges") >= 8, "np %d: too few customer ranges", n);
                    cr_assert(rounds >= 8, "np %d: %ld exchange rounds, want several", n, rounds);
                }
            }
            free(got);
            free(log);
        }
    }
    free(ref);
}

Test(mpi, a_rank_failing_in_the_gold_step_fails_every_rank_and_keeps_the_warehouse)
{
    broken_rank_keeps_warehouse("STRATA_TEST_FAIL_GOLD_RANK=1", 1, "strata run: rank 1: gold: failure injected");
}

Test(mpi, rank_0_failing_in_the_gold_step_fails_every_rank_and_keeps_the_warehouse)
{
    broken_rank_keeps_warehouse("STRATA_TEST_FAIL_GOLD_RANK=0", 1, "strata run: rank 0: gold: failure injected");
}

Test(mpi, a_rank_killed_in_the_gold_step_fails_the_run_and_keeps_the_warehouse)
{
    broken_rank_keeps_warehouse("STRATA_TEST_KILL_GOLD_RANK=2", -1, NULL);
}

/* md5 of every layer file of dir/wh under bronze/ and silver/ (the parts
 * of a partitioned table included), paths relative to the warehouse. */
static char *parts_md5(const char *wh)
{
    return md5s(wh, "parts", "find bronze silver -name '*.strata' | sort");
}

/* The comma-separated ranks after `what` in s ("0,1,2" from "...parts on
 * ranks 0,1,2"), copied into buf; "" when s does not say `what`. */
static const char *list_after(const char *s, const char *what, char *buf, size_t cap)
{
    const char *at = strstr(s, what);
    if (!at) return "";
    at += strlen(what);
    size_t n = strspn(at, "0123456789,");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
    return buf;
}

/* Three shards of one source (contiguous rowid ranges, rowids kept), on 1
 * to 4 ranks: every bronze and silver file, each part of the partitioned
 * tables included, has the bytes of one `strata run` over the same shards;
 * every table exports as one `strata run` over the one file; the notes
 * say which rank wrote each part (part k on rank k % N), and staging
 * passes every chunk through. */
Test(mpi, bronze_and_silver_parts_of_three_shards_on_1_to_4_ranks_are_the_bytes_of_one_process)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300], list[2000];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 400000, 13); /* about 2 chunks a shard and table */
    snprintf(wh, sizeof wh, "%s/file", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    fx_split_source(tx, dir, 3, false, list, sizeof list);
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, list, wh, "--threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    char *ref = parts_md5("one"), *ref_exp = exports("file");
    cr_assert_not_null(strstr(ref, "bronze/raw_sales_quantity.parts/part-00002-"), "%s", ref);
    cr_assert_not_null(strstr(ref, "silver/stg_foc_transactions.parts/part-00002-"), "%s", ref);
    for (int n = 1; n <= 4; n++) {
        char name[16];
        snprintf(name, sizeof name, "np%d", n);
        cr_assert_eq(mpi_run(bin, n, list, name, "", "--threads 1"), 0, "np %d: %s", n, fx_text_of(dir, "err.txt"));
        char *got = parts_md5(name), *exp = exports(name), *log = run_log(name);
        cr_assert_str_eq(got, ref, "np %d: a bronze or silver file differs from one process's", n);
        cr_assert_str_eq(exp, ref_exp, "np %d: some table exports differently from one process on the file", n);
        long passed = -1, total = -1;
        const char *note = strstr(log, " rejected, ");
        cr_assert(note && sscanf(note, " rejected, %ld of %ld chunks", &passed, &total) == 2, "np %d: %s", n, log);
        cr_assert(total > 6 && passed == total, "np %d: %ld of %ld chunks passed through", n, passed, total);
        if (n > 1) {
            char want[32], buf[32];
            snprintf(want, sizeof want, "0,1,%d", 2 % n);
            cr_assert_str_eq(list_after(log, "sales parts on ranks ", buf, sizeof buf), want, "np %d: %s", n, log);
            cr_assert_str_eq(list_after(log, "foc parts on ranks ", buf, sizeof buf), want, "np %d: %s", n, log);
            char shard[64];
            snprintf(shard, sizeof shard, "shard2.db pages (rank %d)", 2 % n);
            cr_assert_not_null(strstr(log, "shard1.db pages (rank 1)"), "np %d: %s", n, log);
            cr_assert_not_null(strstr(log, shard), "np %d: %s", n, log);
        }
        free(got);
        free(exp);
        free(log);
    }
    free(ref);
    free(ref_exp);
}

Test(mpi, a_rank_failing_in_the_ingest_step_fails_every_rank_and_keeps_the_warehouse)
{
    broken_run_keeps_warehouse("STRATA_TEST_FAIL_INGEST_RANK=1", 1, "strata run: rank 1: ingest: failure injected", true);
}

Test(mpi, a_rank_failing_in_the_stage_step_fails_every_rank_and_keeps_the_warehouse)
{
    broken_run_keeps_warehouse("STRATA_TEST_FAIL_STAGE_RANK=2", 1, "strata run: rank 2: stage: failure injected", true);
}

/* One source cut into rowid-range parts (--part-rows), on 1 to 4 ranks:
 * every layer file, each part included, has the bytes of one `strata run`
 * with the same flag (the parts follow from the source and the width,
 * never from the ranks); every table exports as one `strata run` without
 * the flag; the ingest note says which ranks wrote the parts. */
Test(mpi, rowid_range_parts_of_one_source_on_1_to_4_ranks_are_the_bytes_of_one_process)
{
    const char *bin = mpi_bin();
    char tx[300], wh[300];
    snprintf(tx, sizeof tx, "%s/tx.db", dir);
    fx_gen_source(tx, 200000, 17);
    snprintf(wh, sizeof wh, "%s/file", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, ""), 0, "%s", fx_text_of(dir, "err.txt"));
    snprintf(wh, sizeof wh, "%s/one", dir);
    cr_assert_eq(fx_run_demo(dir, tx, wh, "--part-rows 45000 --threads 2"), 0, "%s", fx_text_of(dir, "err.txt"));
    const char *all = "find bronze silver gold platinum -name '*.strata' | sort";
    char *ref = md5s("one", "all", all), *ref_exp = exports("file");
    cr_assert_not_null(strstr(ref, "bronze/raw_sales_quantity.parts/part-00004-"), "%s", ref);
    cr_assert_null(strstr(ref, "bronze/raw_sales_quantity.parts/part-00005-"), "%s", ref);
    cr_assert_not_null(strstr(ref, "silver/stg_foc_transactions.parts/part-00004-"), "%s", ref);
    for (int n = 1; n <= 4; n++) {
        char name[16];
        snprintf(name, sizeof name, "np%d", n);
        cr_assert_eq(mpi_run(bin, n, tx, name, "", "--part-rows 45000 --threads 1"), 0, "np %d: %s", n,
                     fx_text_of(dir, "err.txt"));
        char *got = md5s(name, "all", all), *exp = exports(name), *log = run_log(name);
        cr_assert_str_eq(got, ref, "np %d: a layer file differs from one process's", n);
        cr_assert_str_eq(exp, ref_exp, "np %d: some table exports differently from one process on the file", n);
        cr_assert_not_null(strstr(log, "raw_sales_quantity: pages"), "np %d: %s", n, log);
        cr_assert_not_null(strstr(log, "5 rowid-range parts"), "np %d: %s", n, log);
        if (n > 1) {
            char want[32] = "0", buf[32];
            for (int r = 1; r < n; r++) snprintf(want + strlen(want), sizeof want - strlen(want), ",%d", r);
            cr_assert_str_eq(list_after(log, "raw_sales_quantity: pages (ranks ", buf, sizeof buf), want, "np %d: %s",
                             n, log);
            char owners[32] = "0"; /* staging: part k on rank k % N */
            for (int k = 1; k < 5; k++) snprintf(owners + strlen(owners), sizeof owners - strlen(owners), ",%d", k % n);
            cr_assert_str_eq(list_after(log, "sales parts on ranks ", buf, sizeof buf), owners, "np %d: %s", n, log);
        }
        free(got);
        free(exp);
        free(log);
    }
    free(ref);
    free(ref_exp);
}
