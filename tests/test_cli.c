/*
 * test_cli.c: the built `strata` binary as a user meets it.
 *
 * --help for itself and every subcommand; one argument parser behind
 * every command (`--flag=value` equals `--flag value`; every usage error
 * is one line "strata CMD: ..." with exit code 2); `--version`;
 * `inspect DIR` (text and JSON, cross-checked against the files and the
 * run log); `--json` of docs, lineage and kmeans parsed back; the step
 * parameters in every footer of a run; README's CLI reference naming
 * every flag each command's --help lists. The warehouse is built by the
 * test from a small generated source.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "json_read_internal.h"
#include "strata/cli.h"
#include "strata/file.h"

/* Runs `strata ARGS` with stdout (and stderr unless err_out) into out. */
static int run_split(const char *args, char *out, size_t out_len, char *err_out, size_t err_len)
{
    if (!err_out) return fx_capture(out, out_len, "%s %s 2>&1", fx_bin(), args);
    char errf[64];
    snprintf(errf, sizeof errf, "/tmp/strata-cli-err-XXXXXX");
    int fd = mkstemp(errf);
    cr_assert(fd >= 0);
    close(fd);
    int rc = fx_capture(out, out_len, "%s %s 2>%s", fx_bin(), args, errf);
    char *e = fx_read_file(errf, NULL);
    snprintf(err_out, err_len, "%s", e);
    free(e);
    unlink(errf);
    return rc;
}

static int run_cmd(const char *args, char *out, size_t out_len) { return run_split(args, out, out_len, NULL, 0); }

/* A small warehouse under a fresh temporary directory: gen + run, with
 * the `--flag=value` spelling throughout. Returns the directory. */
static const char *build_warehouse(void)
{
    static char dir[64];
    static char out[65536];
    char args[1024];
    snprintf(dir, sizeof dir, "/tmp/strata-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(args, sizeof args, "gen --out=%s/src.db --rows=4000 --customers=30 --months=12 --seed=7", dir);
    int rc = run_cmd(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%s: %s", args, out);
    snprintf(args, sizeof args,
             "run --customers=data/chinook.db --transactions=%s/src.db --warehouse=%s/wh --threads=2 --k=3 "
             "--n-init=2 --seed=11 --log1p=total_sold_quantity --quiet",
             dir, dir);
    rc = run_cmd(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%s: %s", args, out);
    return dir;
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void parse_json(const char *text, st_json *j)
{
    st_error e;
    cr_assert_eq(st_json_parse(text, strlen(text), "output", j, &e), ST_OK, "%s\n%s", e.msg, text);
}

TestSuite(cli);

Test(cli, top_level_help)
{
    static char out[65536];
    cr_assert_eq(run_cmd("--help", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "usage: strata"));
    cr_assert_not_null(strstr(out, "exit codes"));
    cr_assert_not_null(strstr(out, "--version"));
}

Test(cli, top_level_help_lists_steps_in_run_order)
{
    static char top[65536], run[65536];
    const char *order = "ingest -> validate -> stage -> intermediate -> ml -> marts -> report";
    cr_assert_eq(run_cmd("--help", top, sizeof top), 0);
    cr_assert_eq(run_cmd("run --help", run, sizeof run), 0);
    cr_expect_not_null(strstr(top, order), "%s", top);
    cr_expect_not_null(strstr(run, order), "%s", run);
}

Test(cli, version)
{
    static char out[256];
    cr_assert_eq(run_cmd("--version", out, sizeof out), 0);
    cr_assert_str_eq(out, "strata " ST_VERSION "\n");
}

Test(cli, unknown_command_is_usage_error)
{
    static char out[65536];
    cr_assert_eq(run_cmd("no-such-command", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "unknown command"));
}

static const char *const subs[] = {"run", "gen", "inspect", "export", "kmeans", "lineage", "docs", "report", "score"};

Test(cli, every_subcommand_has_help)
{
    static char out[65536];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", subs[i]);
        int rc = run_cmd(args, out, sizeof out);
        cr_expect_eq(rc, 0, "strata %s --help exited %d: %s", subs[i], rc, out);
        cr_expect_not_null(strstr(out, "usage:"), "strata %s --help has no usage line", subs[i]);
    }
}

/* Every usage error of every converted command: exit 2, nothing on
 * stdout, exactly one line on stderr starting "strata CMD: " and naming
 * what is wrong. */
Test(cli, unified_usage_errors)
{
    static const struct {
        const char *args, *cmd, *says;
    } cases[] = {
        {"run --bogus", "run", "unknown flag '--bogus'"},
        {"run --bogus=1", "run", "unknown flag '--bogus'"},
        {"run --k", "run", "--k needs a value"},
        {"run --k=0", "run", "--k expects auto or an integer in 1..64, got '0'"},
        {"run --threads=many", "run", "--threads expects an integer"},
        {"run --memory-limit=12X", "run", "--memory-limit expects a size"},
        {"run --k-range=5..2", "run", "--k-range expects A..B"},
        {"run --tol=-1", "run", "--tol expects a non-negative number"},
        {"run --force=yes", "run", "--force does not take a value"},
        {"run extra", "run", "unexpected argument 'extra'"},
        {"run --year-min=2000 --year-max=1999", "run", "empty range"},
        {"gen --bogus", "gen", "unknown flag '--bogus'"},
        {"gen --rows", "gen", "--rows needs a value"},
        {"gen --rows=-5", "gen", "--rows expects a non-negative integer, got '-5'"},
        {"gen --months=100001", "gen", "--months expects an integer in 0..100000"},
        {"gen --out=", "gen", "--out needs a file name"},
        {"inspect", "inspect", "missing FILE or DIR"},
        {"inspect --bogus x", "inspect", "unknown flag '--bogus'"},
        {"inspect a b", "inspect", "unexpected argument 'b'"},
        {"inspect --json=1 x", "inspect", "--json does not take a value"},
        {"kmeans x --bogus", "kmeans", "unknown flag '--bogus'"},
        {"kmeans x --columns a --k", "kmeans", "--k needs a value"},
        {"kmeans x --columns a --k=x", "kmeans", "--k expects auto or an integer"},
        {"kmeans x --columns a --k-range=1..3", "kmeans", "--k-range expects A..B with 2 <= A <= B <= 64"},
        {"kmeans x --columns a --seed=-1", "kmeans", "--seed expects a non-negative integer"},
        {"kmeans x --columns a --log1p=b", "kmeans", "--log1p: 'b' is not one of --columns"},
        {"kmeans --columns a", "kmeans", "missing FILE"},
        {"kmeans x", "kmeans", "--columns is required"},
        {"lineage --bogus", "lineage", "unknown flag '--bogus'"},
        {"lineage --warehouse", "lineage", "--warehouse needs a value"},
        {"lineage --dot --json", "lineage", "--dot and --json cannot be combined"},
        {"docs --suite", "docs", "--suite needs a value"},
        {"docs extra", "docs", "unexpected argument 'extra'"},
        {"report --format=pdf", "report", "--format expects html|md|markdown, got 'pdf'"},
        {"report --out", "report", "--out needs a value"},
        {"report --bogus", "report", "unknown flag '--bogus'"},
        {"export x --format=xml", "export", "--format expects csv|jsonl|parquet, got 'xml'"},
        {"export x --bogus", "export", "unknown flag '--bogus'"},
        {"export", "export", "missing FILE"},
        {"score --bogus", "score", "unknown flag '--bogus'"},
        {"score", "score", "--transactions FILE is required"},
        {"score --transactions", "score", "--transactions needs a value"},
        {"score --transactions=x --format=pdf", "score", "--format expects strata|csv, got 'pdf'"},
    };
    static char out[65536], err[65536];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_split(cases[i].args, out, sizeof out, err, sizeof err);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "strata %s: ", cases[i].cmd);
        cr_expect_eq(rc, 2, "`strata %s` exited %d", cases[i].args, rc);
        cr_expect_str_empty(out, "`strata %s` wrote to stdout: %s", cases[i].args, out);
        cr_expect_eq(strncmp(err, prefix, strlen(prefix)), 0, "`strata %s`: %s", cases[i].args, err);
        cr_expect_not_null(strstr(err, cases[i].says), "`strata %s`: %s", cases[i].args, err);
        char *nl = strchr(err, '\n');
        cr_expect(nl && nl[1] == '\0', "`strata %s`: not one line: %s", cases[i].args, err);
    }
}

Test(cli, gen_out_in_missing_directory_names_the_file)
{
    static char out[4096], err[4096];
    int rc = run_split("gen --out /nonexistent-dir-strata/x.db --rows 10", out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 5);
    cr_expect_str_eq(err, "strata gen: cannot create '/nonexistent-dir-strata/x.db': No such file or directory\n");
    rc = run_split("gen --out /tmp --force --rows 10", out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 5);
    cr_expect_str_eq(err, "strata gen: cannot create '/tmp': Is a directory\n");
}

/* --flag=value and --flag value give the same output, command by command. */
Test(cli, flag_equals_value_for_every_command, .timeout = 120)
{
    const char *dir = build_warehouse();
    static char a[1 << 18], b[1 << 18];
    const char *pairs[][2] = {
        {"lineage --warehouse=%s/wh", "lineage --warehouse %s/wh"},
        {"docs --warehouse=%s/wh --suite=pipeline/quality/suites/default.suite",
         "docs --warehouse %s/wh --suite pipeline/quality/suites/default.suite"},
        {"report --warehouse=%s/wh --format=md --out=-", "report --warehouse %s/wh --format md --out -"},
        {"kmeans %s/wh/gold/int_customer_analytics.strata --columns=total_sold_quantity,foc_ratio --k=2 --n-init=2 "
         "--max-iter=50 --tol=0.001 --seed=3 --threads=1 --json",
         "kmeans %s/wh/gold/int_customer_analytics.strata --columns total_sold_quantity,foc_ratio --k 2 --n-init 2 "
         "--max-iter 50 --tol 0.001 --seed 3 --threads 1 --json"},
        {"inspect %s/wh/silver/stg_customers.strata --verify --json",
         "inspect --verify --json -- %s/wh/silver/stg_customers.strata"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char x[1024], y[1024];
        snprintf(x, sizeof x, pairs[i][0], dir);
        snprintf(y, sizeof y, pairs[i][1], dir);
        cr_assert_eq(run_split(x, a, sizeof a, NULL, 0), 0, "%s: %s", x, a);
        cr_assert_eq(run_split(y, b, sizeof b, NULL, 0), 0, "%s: %s", y, b);
        if (strstr(x, "kmeans")) {
            /* timings differ; everything before "seconds" must not */
            *strstr(a, "\"seconds\"") = '\0';
            *strstr(b, "\"seconds\"") = '\0';
        }
        cr_expect_str_eq(a, b, "%s\nvs\n%s", x, y);
    }
    rm_rf(dir);
}

/* The last run's id, from _runs/latest.json. */
static void latest_run_id(const char *dir, char *id, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/wh/_runs/latest.json", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    st_json j;
    parse_json(buf, &j);
    snprintf(id, len, "%s", st_json_string(st_json_get(&j, "run_id"), "?"));
    st_json_free(&j);
}

Test(cli, inspect_dir_text_and_json, .timeout = 120)
{
    const char *dir = build_warehouse();
    static char out[1 << 18];
    char args[512], run_id[64];
    latest_run_id(dir, run_id, sizeof run_id);
    snprintf(args, sizeof args, "inspect %s/wh", dir);
    cr_assert_eq(run_cmd(args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "built by run"), "%s", out);
    cr_expect_not_null(strstr(out, "16 tables"), "%s", out);
    /* the text lists every table with the run that built it */
    static const char *const tables[] = {"raw_sales_quantity", "stg_customers", "int_customer_analytics",
                                         "fct_transactions", "marts_customer_summary", "ml_centroids"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        const char *line = strstr(out, tables[i]);
        cr_assert_not_null(line, "%s missing:\n%s", tables[i], out);
        const char *eol = strchr(line, '\n');
        const char *rid = strstr(line, run_id);
        cr_expect(rid && rid < eol, "%s not built by %s:\n%s", tables[i], run_id, out);
    }
    snprintf(args, sizeof args, "inspect %s/wh --json", dir);
    cr_assert_eq(run_split(args, out, sizeof out, NULL, 0), 0, "%s", out);
    st_json j;
    parse_json(out, &j);
    const st_json *t = st_json_get(&j, "tables");
    cr_assert_eq(st_json_count(t), 16, "%s", out);
    cr_expect_eq(st_json_number(st_json_get(&j, "n_tables"), 0), 16);
    for (size_t i = 0; i < st_json_count(t); i++) {
        const st_json *e = st_json_at(t, i);
        char path[512];
        snprintf(path, sizeof path, "%s/wh/%s/%s.strata", dir, st_json_string(st_json_get(e, "layer"), "?"),
                 st_json_string(st_json_get(e, "table"), "?"));
        st_reader *r = NULL;
        st_error err;
        cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
        struct stat sb;
        cr_assert_eq(stat(path, &sb), 0);
        cr_expect_eq((uint64_t)st_json_number(st_json_get(e, "rows"), -1), st_reader_n_rows(r), "%s", path);
        cr_expect_eq((int64_t)st_json_number(st_json_get(e, "bytes"), -1), (int64_t)sb.st_size, "%s", path);
        char fp[32];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)st_reader_meta(r)->fingerprint);
        cr_expect_str_eq(st_json_string(st_json_get(e, "fingerprint"), ""), fp, "%s", path);
        cr_expect_str_eq(st_json_string(st_json_get(e, "run"), ""), run_id, "%s", path);
        cr_expect_str_eq(st_json_string(st_json_get(e, "params"), ""), st_reader_meta(r)->params, "%s", path);
        st_reader_close(r);
    }
    st_json_free(&j);
    /* --verify --json over the directory */
    snprintf(args, sizeof args, "inspect %s/wh --verify --json", dir);
    cr_assert_eq(run_split(args, out, sizeof out, NULL, 0), 0, "%s", out);
    parse_json(out, &j);
    cr_expect_eq(st_json_number(st_json_get(&j, "checked"), 0), 16, "%s", out);
    cr_expect_eq(st_json_number(st_json_get(&j, "damaged"), -1), 0, "%s", out);
    cr_expect_eq(st_json_count(st_json_get(&j, "files")), 16);
    st_json_free(&j);
    rm_rf(dir);
}

Test(cli, json_of_docs_lineage_and_kmeans, .timeout = 120)
{
    const char *dir = build_warehouse();
    static char out[1 << 19];
    char args[512];
    st_json j;
    snprintf(args, sizeof args, "docs --warehouse %s/wh --json", dir);
    cr_assert_eq(run_split(args, out, sizeof out, NULL, 0), 0, "%s", out);
    parse_json(out, &j);
    const st_json *t = st_json_get(&j, "tables");
    cr_assert_eq(st_json_count(t), 16);
    bool saw_expectation = false;
    for (size_t i = 0; i < st_json_count(t); i++) {
        const st_json *e = st_json_at(t, i);
        cr_expect_gt(st_json_count(st_json_get(e, "columns")), 0);
        saw_expectation |= st_json_count(st_json_get(e, "expectations")) > 0;
    }
    cr_expect(saw_expectation, "no expectation listed: %s", out);
    st_json_free(&j);

    snprintf(args, sizeof args, "lineage --warehouse %s/wh --json", dir);
    cr_assert_eq(run_split(args, out, sizeof out, NULL, 0), 0, "%s", out);
    parse_json(out, &j);
    t = st_json_get(&j, "tables");
    cr_assert_eq(st_json_count(t), 16);
    bool found = false;
    for (size_t i = 0; i < st_json_count(t); i++) {
        const st_json *e = st_json_at(t, i);
        if (strcmp(st_json_string(st_json_get(e, "name"), ""), "platinum.ml_centroids")) continue;
        found = true;
        cr_expect_str_eq(st_json_string(st_json_at(st_json_get(e, "inputs"), 0), ""), "gold.int_customer_analytics");
        cr_expect_eq(st_json_number(st_json_get(e, "rows"), 0), 3);
    }
    cr_expect(found, "%s", out);
    st_json_free(&j);

    snprintf(args, sizeof args,
             "kmeans %s/wh/gold/int_customer_analytics.strata --columns total_sold_quantity,foc_ratio "
             "--k-range 2..4 --n-init 2 --json",
             dir);
    cr_assert_eq(run_split(args, out, sizeof out, NULL, 0), 0, "%s", out);
    parse_json(out, &j);
    int k = (int)st_json_number(st_json_get(&j, "k"), 0);
    cr_expect(k >= 2 && k <= 4, "%s", out);
    cr_expect_eq(st_json_count(st_json_get(&j, "clusters")), (size_t)k);
    cr_expect_eq(st_json_count(st_json_get(&j, "k_selection")), 3);
    double sizes = 0;
    for (int q = 0; q < k; q++) sizes += st_json_number(st_json_get(st_json_at(st_json_get(&j, "clusters"), (size_t)q), "size"), 0);
    cr_expect_eq(sizes, st_json_number(st_json_get(&j, "rows"), -1));
    cr_expect_leq(st_json_number(st_json_get(&j, "kept_restart_iterations"), 1e9),
                  st_json_number(st_json_get(&j, "total_iterations"), 0));
    st_json_free(&j);
    rm_rf(dir);
}

/* Every file of a run carries its step's parameters; the ml files carry
 * every flag given to the ml step. */
Test(cli, params_in_every_footer, .timeout = 120)
{
    const char *dir = build_warehouse();
    static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};
    int n_files = 0;
    for (int l = 0; l < 4; l++) {
        char ld[256];
        snprintf(ld, sizeof ld, "%s/wh/%s", dir, layers[l]);
        DIR *d = opendir(ld);
        cr_assert_not_null(d, "%s", ld);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strstr(de->d_name, ".strata")) continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", ld, de->d_name);
            st_reader *r = NULL;
            st_error err;
            cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
            const char *p = st_reader_meta(r)->params;
            cr_expect(p && *p, "%s has no params", path);
            if (l == 0) cr_expect_not_null(strstr(p, "sales_table=sales_qty"), "%s: %s", path, p);
            if (l == 1) cr_expect_not_null(strstr(p, "year=1990..2100;quantity=0..1000000000"), "%s: %s", path, p);
            if (l == 2) cr_expect_str_eq(p, "none", "%s", path);
            if (strstr(de->d_name, "ml_") || strstr(de->d_name, "fct_"))
                cr_expect_not_null(strstr(p, "k=3;k_range=2..7;n_init=2;max_iter=300;tol=0.0001;seed=11;"
                                             "features=total_sold_quantity,foc_ratio,total_sold_transactions;"
                                             "log1p=total_sold_quantity"),
                                   "%s: %s", path, p);
            st_reader_close(r);
            n_files++;
        }
        closedir(d);
    }
    cr_expect_eq(n_files, 16);
    rm_rf(dir);
}

Test(cli, no_progress_when_not_a_terminal, .timeout = 120)
{
    static char out[65536];
    char args[512];
    snprintf(args, sizeof args, "gen --out /tmp/strata-cli-progress-%ld.db --rows 200000 --force", (long)getpid());
    cr_assert_eq(run_cmd(args, out, sizeof out), 0, "%s", out);
    cr_expect_null(strchr(out, '\r'), "progress written to a pipe: %s", out);
    cr_expect_null(strchr(out, '\033'), "escape written to a pipe: %s", out);
    snprintf(args, sizeof args, "/tmp/strata-cli-progress-%ld.db", (long)getpid());
    unlink(args);
}

/* The README's CLI reference row of each command names every flag that
 * command's --help lists. */
Test(cli, readme_lists_every_flag_of_every_help)
{
    FILE *f = fopen("README.md", "rb");
    cr_assert_not_null(f, "run from the repository root");
    static char readme[1 << 18];
    size_t n = fread(readme, 1, sizeof readme - 1, f);
    readme[n] = '\0';
    fclose(f);
    static char help[65536];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char row[64], args[64];
        snprintf(row, sizeof row, "| `strata %s ", subs[i]);
        const char *r = strstr(readme, row);
        cr_assert_not_null(r, "README has no row for %s", subs[i]);
        const char *eol = strchr(r, '\n');
        snprintf(args, sizeof args, "%s --help", subs[i]);
        cr_assert_eq(run_cmd(args, help, sizeof help), 0);
        for (const char *p = help; (p = strstr(p, "--")) != NULL;) {
            const char *q = p + 2;
            while (isalnum((unsigned char)*q) || *q == '-') q++;
            size_t len = (size_t)(q - p);
            if (len > 2) {
                char flag[64];
                snprintf(flag, sizeof flag, "%.*s", (int)len, p);
                bool found = false;
                for (const char *s = r; s && s < eol && !found; s = strstr(s + 1, flag)) {
                    s = strstr(s, flag);
                    if (!s || s >= eol) break;
                    char after = s[len];
                    found = !(isalnum((unsigned char)after) || after == '-');
                }
                if (strcmp(flag, "--help")) cr_expect(found, "README's row for %s lacks %s", subs[i], flag);
            }
            p = q;
        }
    }
    cr_expect_not_null(strstr(readme, "`strata --version`"), "README does not name --version");
}

/* On a terminal (a pty from script(1)) the same command draws the
 * progress line: rows done, rate, ETA. STRATA_PROGRESS_DELAY=0 draws from
 * the first count, so the test does not depend on the machine's speed.
 * Skipped without script(1). */
Test(cli, progress_on_a_terminal, .timeout = 120)
{
    if (system("command -v script >/dev/null 2>&1") != 0) cr_skip_test("script(1) is not installed");
    char db[128], cmd[1024];
    snprintf(db, sizeof db, "/tmp/strata-cli-tty-%ld.db", (long)getpid());
    snprintf(cmd, sizeof cmd, "STRATA_PROGRESS_DELAY=0 script -qec '%s gen --out %s --rows 200000 --force' /dev/null 2>&1", fx_bin(), db);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(db);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", out);
    cr_expect_not_null(strstr(out, "sales_qty"), "%s", out);
    cr_expect_not_null(strstr(out, "rows/s"), "%s", out);
    cr_expect_not_null(strstr(out, "ETA"), "%s", out);
    cr_expect_not_null(strchr(out, '\r'), "no redraw: %s", out);
}

/* The parser itself, in process: spellings, "--", "-", value parsers. */
Test(cli, args_parser_unit)
{
    static const st_argspec spec[] = {{"--k", true}, {"--flag", false}, {"--size", true}};
    char *argv[] = {"cmd", "--k=3", "--flag", "pos", "--size", "2M", "-", "--", "--k", NULL};
    st_args a;
    st_args_init(&a, "cmd", 9, argv, spec, 3, NULL);
    const char *v;
    cr_assert_eq(st_args_next(&a, &v), 0);
    cr_assert_str_eq(v, "3");
    long long x;
    cr_assert(st_args_int(&a, v, 1, 64, &x));
    cr_assert_eq(x, 3);
    cr_assert_eq(st_args_next(&a, &v), 1);
    cr_assert_null(v);
    cr_assert_eq(st_args_next(&a, &v), ST_ARGS_POSITIONAL);
    cr_assert_str_eq(v, "pos");
    cr_assert_eq(st_args_next(&a, &v), 2);
    uint64_t sz;
    cr_assert(st_args_size(&a, v, 1024, &sz));
    cr_assert_eq(sz, 2u << 20);
    cr_assert_eq(st_args_next(&a, &v), ST_ARGS_POSITIONAL);
    cr_assert_str_eq(v, "-");
    cr_assert_eq(st_args_next(&a, &v), ST_ARGS_POSITIONAL); /* after "--" */
    cr_assert_str_eq(v, "--k");
    cr_assert_eq(st_args_next(&a, &v), ST_ARGS_END);
    /* value parsers refuse what they should */
    int lo, hi, c;
    double d;
    bool w;
    cr_expect(!st_args_size(&a, "12X", 1024, &sz));
    cr_expect(!st_args_size(&a, "1", 1024, &sz));
    cr_expect(!st_args_range(&a, "3..2", 1, 64, &lo, &hi));
    cr_expect(!st_args_range(&a, "..5", 1, 64, &lo, &hi));
    cr_expect(!st_args_range(&a, "2..5x", 1, 64, &lo, &hi));
    cr_expect(st_args_range(&a, "2..5", 1, 64, &lo, &hi) && lo == 2 && hi == 5);
    cr_expect(!st_args_nonneg(&a, "-0.5", &d));
    cr_expect(!st_args_nonneg(&a, "nan", &d));
    cr_expect(!st_args_u64(&a, "-1", &sz));
    cr_expect(!st_args_u64(&a, "18446744073709551616", &sz));
    cr_expect(st_args_int_or(&a, "auto", "auto", 1, 64, &x, &w) && w);
    cr_expect(!st_args_int_or(&a, "65", "auto", 1, 64, &x, &w));
    cr_expect(st_args_choice(&a, "md", "html|md", &c) && c == 1);
    cr_expect(!st_args_choice(&a, "h", "html|md", &c));
    /* a valued flag as the last argument */
    char *argv2[] = {"cmd", "--k", NULL};
    st_args_init(&a, "cmd", 2, argv2, spec, 3, NULL);
    cr_expect_eq(st_args_next(&a, &v), ST_ARGS_ERROR);
}
