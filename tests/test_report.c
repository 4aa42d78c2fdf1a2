/*
 * test_report.c: the dashboard. Model -> HTML/Markdown (sections present,
 * self-contained, escaped, deterministic, "not available" when empty),
 * the JSON reader (valid, invalid, hostile), the tolerant readers of
 * quality/results.json and _runs/latest.json, and `strata report` on a
 * warehouse directory holding only those JSON files.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "json_read_internal.h"
#include "report_fixture.h"
#include "report_internal.h"
#include "strata/cli.h"
#include "strata/column.h"
#include "strata/file.h"

TestSuite(report);

static void render(const st_report_model *m, st_report_format fmt, st_buf *b)
{
    st_error err;
    st_buf_init(b);
    cr_assert_eq(st_report_render(m, fmt, b, &err), ST_OK);
    cr_assert(st_buf_ok(b));
}

static void assert_self_contained(const char *html)
{
    cr_assert_null(strstr(html, "<script"), "page has a script");
    cr_assert_null(strstr(html, "http:"), "page references a URL");
    cr_assert_null(strstr(html, "https:"), "page references a URL");
    cr_assert_null(strstr(html, "url("), "page references a URL from CSS");
    cr_assert_null(strstr(html, "@import"));
    cr_assert_null(strstr(html, "src="));
    cr_assert_null(strstr(html, "<link"));
    cr_assert_null(strstr(html, "<img"));
    cr_assert_null(strstr(html, "nan"), "NaN printed");
}

Test(report, html_has_every_section)
{
    st_report_model m;
    fx_fill_model(&m);
    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    const char *msg = fx_check_markup(b.data, true);
    cr_assert_null(msg, "malformed HTML: %s", msg ? msg : "");
    assert_self_contained(b.data);
    static const char *const ids[] = {"kpis", "personas", "customers", "at-risk", "countries", "sales-trend",
                                      "profiles", "k", "migration", "quality", "lineage", "run"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "<section id=\"%s\">", ids[i]);
        cr_assert_not_null(strstr(b.data, needle), "section %s missing", ids[i]);
    }
    /* 3 feature panels + scatter + 2 k charts + heatmap + area + DAG + 3 reject bars, and the
     * country bars + the monthly sales area */
    cr_assert_eq(fx_count(b.data, "<svg"), 14, "got %zu svg", fx_count(b.data, "<svg"));
    cr_assert_not_null(strstr(b.data, "Heather Leacock"));   /* customers by name */
    cr_assert_not_null(strstr(b.data, "#94 <span class=\"note\">(not in master)</span>"));
    cr_assert_not_null(strstr(b.data, "<b>36,500</b> units less")); /* at-risk lost units */
    cr_assert_not_null(strstr(b.data, "Units sold per month by persona"));
    cr_assert_null(strstr(b.data, "Not available"));
    cr_assert_not_null(strstr(b.data, "1,211,675"));         /* thousands separators */
    cr_assert_not_null(strstr(b.data, "chosen k = 3"));
    cr_assert_not_null(strstr(b.data, "knee k = 4"));
    cr_assert_not_null(strstr(b.data, "2026-01-01T12:00:00Z")); /* timestamp from the run log only */
    cr_assert_not_null(strstr(b.data, "badge fail"));
    cr_assert_not_null(strstr(b.data, "stg_sales_transactions"));
    cr_assert_not_null(strstr(b.data, "#0072B2"));           /* Champions' fixed colour */
    cr_assert_not_null(strstr(b.data, "(log scale)"));        /* heavy-tailed x */
    st_buf_free(&b);
    st_report_model_free(&m);
}

Test(report, html_is_deterministic)
{
    st_report_model m1, m2;
    fx_fill_model(&m1);
    fx_fill_model(&m2);
    st_buf a, b;
    render(&m1, ST_REPORT_HTML, &a);
    render(&m2, ST_REPORT_HTML, &b);
    cr_assert_eq(a.len, b.len);
    cr_assert(memcmp(a.data, b.data, a.len) == 0);
    st_buf_free(&a);
    st_buf_free(&b);
    render(&m1, ST_REPORT_MD, &a);
    render(&m2, ST_REPORT_MD, &b);
    cr_assert_str_eq(a.data, b.data);
    st_buf_free(&a);
    st_buf_free(&b);
    st_report_model_free(&m1);
    st_report_model_free(&m2);
}

Test(report, hostile_strings_are_escaped)
{
    st_report_model m;
    fx_fill_model(&m);
    free(m.personas[3].name);
    m.personas[3].name = fx_dup("<script>alert('x')</script>");
    free(m.persona_rule);
    m.persona_rule = fx_dup("a < b && \"c\" | d");
    free(m.trans_labels[0]);
    m.trans_labels[0] = fx_dup("</svg><b>");
    free(m.expectations[0].detail);
    m.expectations[0].detail = fx_dup("x|y\nz<w>");
    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    const char *msg = fx_check_markup(b.data, true);
    cr_assert_null(msg, "malformed HTML: %s", msg ? msg : "");
    cr_assert_null(strstr(b.data, "<script"));
    cr_assert_not_null(strstr(b.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    cr_assert_not_null(strstr(b.data, "a &lt; b &amp;&amp; &quot;c&quot;"));
    st_buf_free(&b);
    render(&m, ST_REPORT_MD, &b);
    cr_assert_not_null(strstr(b.data, "x\\|y z&lt;w&gt;"));
    cr_assert_null(strstr(b.data, "<script"));
    st_buf_free(&b);
    st_report_model_free(&m);
}

Test(report, empty_model_says_not_available)
{
    st_report_model m;
    st_report_model_init(&m);
    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    const char *msg = fx_check_markup(b.data, true);
    cr_assert_null(msg, "malformed HTML: %s", msg ? msg : "");
    assert_self_contained(b.data);
    cr_assert_geq(fx_count(b.data, "Not available"), 10);
    cr_assert_not_null(strstr(b.data, "n/a")); /* persona rule */
    st_buf_free(&b);
    render(&m, ST_REPORT_MD, &b);
    cr_assert_geq(fx_count(b.data, "Not available"), 9);
    st_buf_free(&b);
    st_report_model_free(&m);
}

Test(report, degenerate_model_renders)
{
    /* one persona, one point, one k, all-equal values, NaN ratios */
    st_report_model m;
    fx_fill_model(&m);
    m.n_points = 1;
    m.n_k = 1;
    m.n_periods = 1;
    for (size_t c = 0; c < m.n_clusters; c++)
        for (size_t f = 0; f < m.n_features; f++) m.clusters[c].values[f] = NAN;
    for (size_t i = 0; i < 16; i++) m.trans_counts[i] = 5;
    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    const char *msg = fx_check_markup(b.data, true);
    cr_assert_null(msg, "malformed HTML: %s", msg ? msg : "");
    assert_self_contained(b.data);
    st_buf_free(&b);
    m.n_k = 6;
    m.n_points = 600;
    m.n_periods = 24;
    st_report_model_free(&m);
}

Test(report, markdown_tables)
{
    st_report_model m;
    fx_fill_model(&m);
    st_buf b;
    render(&m, ST_REPORT_MD, &b);
    cr_assert_not_null(strstr(b.data, "| Champions | 41 | 64.1% | 310 | 812,345 | 67.0% | 0.042 |"), "%s", b.data);
    cr_assert_not_null(strstr(b.data, "| units sold | 1,211,675 |"));
    cr_assert_not_null(strstr(b.data, "| 3 | 1,011.70 | 0.530 | chosen  |"));
    cr_assert_not_null(strstr(b.data, "| bad_quantity | 1,204 |"));
    cr_assert_not_null(strstr(b.data, "| platinum | fct_transactions | 948 | gold.int_customer_analytics, platinum.ml_centroids |"));
    cr_assert_not_null(strstr(b.data, "| 2022-01 |"));
    st_buf_free(&b);
    st_report_model_free(&m);
}

Test(report, persona_colours_fixed)
{
    cr_assert_str_eq(st_report_persona_color("Champions", 0), "#0072B2");
    cr_assert_str_eq(st_report_persona_color("Not Active", 3), "#999999");
    cr_assert_str_neq(st_report_persona_color("Dormant", 0), st_report_persona_color("Dormant", 1));
    cr_assert_lt(st_report_persona_rank("Loyalists"), st_report_persona_rank("Potentials"));
    cr_assert_eq(st_report_persona_rank("Other"), 4);
}

/* ---- JSON reader ---- */

static st_status parse(const char *s, st_json *j)
{
    st_error err;
    return st_json_parse(s, strlen(s), "t", j, &err);
}

Test(report, json_valid)
{
    st_json j;
    cr_assert_eq(parse("\xEF\xBB\xBF {\"a\": [1, -2.5e2, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}} ", &j),
                 ST_OK);
    const st_json *a = st_json_get(&j, "a");
    cr_assert_eq(st_json_count(a), 5);
    cr_assert_float_eq(st_json_number(st_json_at(a, 1), 0), -250, 1e-12);
    cr_assert(st_json_bool(st_json_at(a, 2), false));
    cr_assert_eq(st_json_at(a, 3)->kind, ST_JSON_NULL);
    cr_assert_str_eq(st_json_string(st_json_at(a, 4), ""), "x\xC3\xA9\xF0\x9F\x98\x80\n");
    cr_assert_null(st_json_at(a, 5));
    cr_assert_null(st_json_get(a, "a")); /* not an object */
    cr_assert_eq(st_json_count(st_json_get(&j, "b")), 0);
    cr_assert_str_eq(st_json_string(st_json_get(&j, "missing"), "dflt"), "dflt");
    cr_assert_float_eq(st_json_number(st_json_get(&j, "b"), 7), 7, 0);
    st_json_free(&j);
    cr_assert_eq(parse("\"\\ud800x\"", &j), ST_OK); /* lone surrogate -> U+FFFD */
    cr_assert_str_eq(j.str, "\xEF\xBF\xBDx");
    st_json_free(&j);
    cr_assert_eq(parse("\"42.5\"", &j), ST_OK);
    cr_assert_float_eq(st_json_number(&j, 0), 42.5, 0);
    st_json_free(&j);
}

Test(report, json_invalid)
{
    static const char *const bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\":}", "tru", "nul", "01", "1.", "1e",
                                      "-", "\"abc", "\"\\x\"", "\"\\u12\"", "[1] 2", "{1:2}", "\"a\x01\"", "[",
                                      "{\"a\":1,}", "+1", "NaN", "[1 2]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_json j;
        st_error err;
        st_status st = st_json_parse(bad[i], strlen(bad[i]), "bad.json", &j, &err);
        cr_assert_eq(st, ST_ERR_CORRUPT, "accepted '%s'", bad[i]);
        cr_assert_not_null(strstr(err.msg, "bad.json"));
        cr_assert_eq(j.kind, ST_JSON_NULL);
    }
}

Test(report, json_depth_limit_and_no_overread)
{
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    st_json j;
    st_error err;
    cr_assert_eq(st_json_parse(deep, 400, "d", &j, &err), ST_ERR_CORRUPT);
    cr_assert_not_null(strstr(err.msg, "deep"));
    /* not NUL-terminated: a buffer cut in the middle of a number/literal */
    char cut[] = {'[', '1', '2'};
    cr_assert_eq(st_json_parse(cut, sizeof cut, "c", &j, &err), ST_ERR_CORRUPT);
    char num[] = {'1', '2', '3'};
    cr_assert_eq(st_json_parse(num, sizeof num, "n", &j, &err), ST_OK);
    cr_assert_float_eq(j.num, 123, 0);
    st_json_free(&j);
    /* a very long number literal is bounded */
    char big[500];
    memset(big, '9', sizeof big);
    cr_assert_eq(st_json_parse(big, sizeof big, "b", &j, &err), ST_OK);
    st_json_free(&j);
    st_json_free(NULL);
}

/* ---- tolerant readers of the JSON side files ---- */

Test(report, quality_json_variants)
{
    st_report_model m;
    st_error err;
    st_report_model_init(&m);
    const char *q = "{\"suite\":\"default\",\"expectations\":[{\"name\":\"not_null\",\"table\":\"silver.stg_customers\","
                    "\"column\":\"customer_id\",\"severity\":\"error\",\"status\":\"pass\",\"failing_rows\":0},"
                    "{\"expectation\":\"unique\",\"result\":\"failed\",\"unexpected_count\":3,\"observed\":0.25},"
                    "{\"check\":\"x\",\"passed\":true,\"message\":\"fine\"}, 17]}";
    cr_assert_eq(st_report_load_quality_json(&m, q, strlen(q), &err), ST_OK);
    cr_assert(m.has_quality);
    cr_assert_eq(m.n_expectations, 4);
    cr_assert_str_eq(m.expectations[0].status, "pass");
    cr_assert_eq(m.expectations[0].failing_rows, 0);
    cr_assert_str_eq(m.expectations[1].name, "unique");
    cr_assert_str_eq(m.expectations[1].status, "fail");
    cr_assert_eq(m.expectations[1].failing_rows, 3);
    cr_assert_str_eq(m.expectations[1].detail, "0.250");
    cr_assert_str_eq(m.expectations[2].detail, "fine");
    cr_assert_str_eq(m.expectations[2].status, "pass");
    cr_assert_str_eq(m.expectations[3].status, "unknown");
    st_report_model_free(&m);
    /* the quality module's own layout: id/layer/table/kind/args/observed */
    const char *own = "{\"counts\":{\"pass\":1},\"results\":[{\"id\":\"silver.t/unique/c\",\"layer\":\"silver\","
                      "\"table\":\"t\",\"column\":\"c\",\"kind\":\"unique\",\"args\":\"c\",\"severity\":\"error\","
                      "\"status\":\"pass\",\"observed\":12,\"unexpected_count\":0,\"sample\":[],\"message\":\"\"}]}";
    cr_assert_eq(st_report_load_quality_json(&m, own, strlen(own), &err), ST_OK);
    cr_assert_eq(m.n_expectations, 1);
    cr_assert_str_eq(m.expectations[0].name, "unique");
    cr_assert_str_eq(m.expectations[0].table, "silver.t");
    cr_assert_str_eq(m.expectations[0].detail, "c; observed 12");
    cr_assert_eq(m.expectations[0].failing_rows, 0);
    st_report_model_free(&m);
    /* top-level array, and garbage -> a note, not a failure */
    const char *arr = "[{\"name\":\"a\",\"status\":\"warning\"}]";
    cr_assert_eq(st_report_load_quality_json(&m, arr, strlen(arr), &err), ST_OK);
    cr_assert_str_eq(m.expectations[0].status, "warn");
    st_report_model_free(&m);
    cr_assert_eq(st_report_load_quality_json(&m, "{oops", 5, &err), ST_OK);
    cr_assert(!m.has_quality);
    cr_assert_eq(m.n_notes, 1);
    st_report_model_free(&m);
}

Test(report, run_json)
{
    st_report_model m;
    st_error err;
    st_report_model_init(&m);
    const char *r = "{\"run_id\":\"r-1\",\"started\":\"2026-01-02T03:04:05Z\",\"threads\":2,\"status\":\"ok\","
                    "\"steps\":[{\"name\":\"ingest\",\"status\":\"ok\",\"rows_in\":10,\"rows_out\":9,\"seconds\":0.5,"
                    "\"peak_rss_bytes\":1048576},{\"name\":\"ml\"}],\"peak_rss_bytes\":2097152,\"seconds\":1.25,"
                    "\"future_field\":{\"x\":[1,2]}}";
    cr_assert_eq(st_report_load_run_json(&m, r, strlen(r), &err), ST_OK);
    cr_assert(m.has_run);
    cr_assert_str_eq(m.run_id, "r-1");
    cr_assert_eq(m.threads, 2);
    cr_assert_eq(m.n_steps, 2);
    cr_assert_float_eq(m.steps[0].rows_out, 9, 0);
    cr_assert(isnan(m.steps[1].seconds));
    cr_assert_str_eq(m.steps[1].status, "unknown");
    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    cr_assert_not_null(strstr(b.data, "2026-01-02T03:04:05Z"));
    cr_assert_null(fx_check_markup(b.data, true));
    st_buf_free(&b);
    st_report_model_free(&m);
    cr_assert_eq(st_report_load_run_json(&m, "[1]", 3, &err), ST_OK);
    cr_assert(!m.has_run);
    cr_assert_eq(m.n_notes, 1);
    st_report_model_free(&m);
}

/* ---- the command on a warehouse holding only the JSON files ---- */

Test(report, command_on_partial_warehouse)
{
    char dir[] = "/tmp/strata-report-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p[512], q[512], out[512];
    snprintf(p, sizeof p, "%s/quality", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/_runs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/quality/results.json", dir);
    fx_write_text(p, "{\"expectations\":[{\"name\":\"not_null\",\"status\":\"pass\"}]}");
    snprintf(q, sizeof q, "%s/_runs/latest.json", dir);
    fx_write_text(q, "{\"run_id\":\"abc\",\"status\":\"failed\",\"steps\":[]}");

    char *argv1[] = {"report", "--warehouse", dir, NULL};
    cr_assert_eq(st_cmd_report(3, argv1), 0);
    snprintf(out, sizeof out, "%s/report/index.html", dir);
    char *html = fx_slurp(out, NULL);
    cr_assert_not_null(html);
    cr_assert_null(fx_check_markup(html, true));
    cr_assert_not_null(strstr(html, "not_null"));
    cr_assert_geq(fx_count(html, "Not available"), 6);
    free(html);

    char *argv2[] = {"report", "--warehouse", dir, "--format=md", NULL};
    cr_assert_eq(st_cmd_report(4, argv2), 0);
    snprintf(out, sizeof out, "%s/report/report.md", dir);
    char *md = fx_slurp(out, NULL);
    cr_assert_not_null(md);
    cr_assert_not_null(strstr(md, "| **pass** | not_null |"));
    free(md);

    char *argv3[] = {"report", "--format", "pdf", NULL};
    cr_assert_eq(st_cmd_report(3, argv3), 2);
    char *argv4[] = {"report", "--warehouse", "/nonexistent/strata-wh", NULL};
    cr_assert_eq(st_cmd_report(3, argv4), st_status_exit_code(ST_ERR_NOTFOUND));
    char *argv5[] = {"report", "--bogus", "x", NULL};
    cr_assert_eq(st_cmd_report(3, argv5), 2);

    remove(p);
    remove(q);
    snprintf(out, sizeof out, "%s/report/index.html", dir);
    remove(out);
    snprintf(out, sizeof out, "%s/report/report.md", dir);
    remove(out);
    snprintf(out, sizeof out, "%s/report", dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s/quality", dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s/_runs", dir);
    rmdir(out);
    cr_assert_eq(rmdir(dir), 0);
}

/* ---- the loader on a small warehouse written with st_writer (fx_build_warehouse) ---- */

Test(report, loads_a_warehouse)
{
    char wh[] = "/tmp/strata-report-wh-XXXXXX";
    cr_assert_not_null(mkdtemp(wh));
    fx_build_warehouse(wh);
    st_report_model m;
    st_error err;
    st_report_model_init(&m);
    cr_assert_eq(st_report_load(&m, wh, &err), ST_OK, "%s", err.msg);
    cr_assert(m.has_kpis);
    cr_assert_eq(m.n_customers, 3);
    cr_assert_eq(m.n_known, 2);
    cr_assert_eq(m.n_orphan, 1);
    cr_assert_eq(m.n_active_periods, 4);
    cr_assert_eq(m.sales_volume, 355);
    cr_assert_eq(m.foc_volume, 16);
    cr_assert_eq(m.first_period, 202401);
    cr_assert_eq(m.last_period, 202402);
    cr_assert_eq(m.n_personas, 4);
    cr_assert_str_eq(m.personas[0].name, "Champions");
    cr_assert_str_eq(m.personas[1].name, "Loyalists");
    cr_assert_str_eq(m.personas[2].name, "Potentials");
    cr_assert_str_eq(m.personas[3].name, "Not Active");
    cr_assert_eq(m.personas[0].customers, 1);
    cr_assert_eq(m.personas[0].customer_periods, 2);
    cr_assert_eq(m.personas[0].sales_volume, 300);
    cr_assert_float_eq(m.personas[0].mean_foc_ratio, 0.05, 1e-12);
    cr_assert_eq(m.personas[3].customers, 2);
    cr_assert_eq(m.personas[3].customer_periods, 2);
    cr_assert(isnan(m.personas[3].mean_foc_ratio));
    cr_assert_eq(m.n_persona_customers, 3);
    cr_assert_eq(m.n_periods, 2);
    cr_assert_eq(m.mix[0 * 4 + 0], 1); /* 202401 Champions */
    cr_assert_eq(m.mix[0 * 4 + 1], 0); /* 202401 Loyalists */
    cr_assert_eq(m.mix[1 * 4 + 1], 1); /* 202402 Loyalists */
    cr_assert_eq(m.mix[1 * 4 + 3], 1); /* 202402 Not Active */
    cr_assert_str_eq(m.persona_rule, "highest volume = Champions <b>");
    cr_assert_eq(m.n_features, 2);
    cr_assert_str_eq(m.features[0], "total_sold_quantity");
    cr_assert_eq(m.n_clusters, 3);
    cr_assert_str_eq(m.clusters[0].persona, "Champions"); /* display order */
    cr_assert_float_eq(m.clusters[0].values[0], 150, 0);
    cr_assert_eq(m.n_points, 4);
    cr_assert_eq(m.pt_persona[2], 2); /* Potentials */
    cr_assert_eq(m.n_k, 3);
    cr_assert_eq(m.chosen_k, 4);
    cr_assert_eq(m.knee_k, 3);
    cr_assert_eq(m.n_trans_labels, 4);
    cr_assert_str_eq(m.trans_labels[3], "Not Active");
    cr_assert_eq(m.trans_counts[3 * 4 + 1], 1); /* Not Active -> Loyalists */
    cr_assert_eq(m.trans_counts[0], 1);
    cr_assert(m.has_rejects);
    cr_assert_eq(m.n_rejects, 2);
    cr_assert_str_eq(m.rejects[0].name, "bad_quantity");
    cr_assert_eq(m.rejects[0].n, 2);
    cr_assert_eq(m.n_tables, 8);
    cr_assert_str_eq(m.tables[0].layer, "bronze");
    cr_assert_str_eq(m.tables[m.n_tables - 1].layer, "platinum");
    cr_assert_eq(m.n_notes, 1, "notes: %zu", m.n_notes);
    cr_assert_not_null(strstr(m.notes[0], "gold/broken.strata"));
    cr_assert(!m.has_quality);
    cr_assert(!m.has_run);

    st_buf b;
    render(&m, ST_REPORT_HTML, &b);
    cr_assert_null(fx_check_markup(b.data, true));
    assert_self_contained(b.data);
    cr_assert_not_null(strstr(b.data, "highest volume = Champions &lt;b&gt;"));
    cr_assert_not_null(strstr(b.data, "raw_sales_quantity"));
    st_buf_free(&b);
    st_report_model_free(&m);

    /* the write path and byte-identical output on a second run */
    cr_assert_eq(st_report_write(wh, ST_REPORT_HTML, NULL, &err), ST_OK, "%s", err.msg);
    char path[600];
    snprintf(path, sizeof path, "%s/report/index.html", wh);
    char *first = fx_slurp(path, NULL);
    cr_assert_eq(st_report_write(wh, ST_REPORT_HTML, NULL, &err), ST_OK, "%s", err.msg);
    char *second = fx_slurp(path, NULL);
    cr_assert_str_eq(first, second);
    free(first);
    free(second);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", wh);
    cr_assert_eq(system(cmd), 0);
}

/* ---- the loader streams: many small chunks against a naive reference ----
 *
 * A warehouse whose tables are written in chunks of 64 rows (so every
 * aggregate crosses chunk boundaries, the scatter sample spans chunks,
 * persona names arrive as per-chunk dictionaries), compared with numbers
 * computed here straight from the generated rows, and with the same rows
 * written as one chunk per table (identical pages). */

#define SW_CUST 200
#define SW_MONTHS 18
#define SW_GRID (SW_CUST * SW_MONTHS)

static const char *const sw_personas[5] = {"Dormant", "Potentials", "Champions", "Not Active", "Loyalists"};

typedef struct sw_rows {
    int64_t cust[SW_GRID], sold[SW_GRID], foc[SW_GRID];
    int32_t period[SW_GRID];
    double ratio[SW_GRID];
    int persona[SW_GRID]; /* index into sw_personas */
    bool active[SW_GRID];
    bool known[SW_CUST];
    int tr_from[40], tr_to[40];
    int64_t tr_n[40];
    int reason[300];
} sw_rows;

static const char *const sw_reasons[4] = {"bad_year", "bad_quantity", "orphan_customer", "bad_material_code"};

static void sw_generate(sw_rows *g)
{
    uint64_t seed = 99;
    for (size_t c = 0; c < SW_CUST; c++) {
        g->known[c] = fx_rand(&seed) < 0.9;
        for (size_t t = 0; t < SW_MONTHS; t++) {
            size_t i = c * SW_MONTHS + t;
            size_t mo = 10 + t; /* 2023-11 .. 2025-04 */
            g->cust[i] = (int64_t)c * 3 + 1;
            g->period[i] = (int32_t)((2023 + (mo / 12)) * 100 + mo % 12 + 1);
            g->active[i] = fx_rand(&seed) < 0.75;
            double u = fx_rand(&seed);
            g->persona[i] = !g->active[i] ? 3 : u < 0.3 ? 2 : u < 0.6 ? 4 : u < 0.9 ? 1 : 0;
            g->sold[i] = g->active[i] ? (int64_t)(fx_rand(&seed) * 500) : 0;
            g->foc[i] = g->active[i] ? (int64_t)(fx_rand(&seed) * 40) : 0;
            g->ratio[i] = !g->active[i] ? 0 : fx_rand(&seed) < 0.05 ? NAN : fx_rand(&seed);
        }
    }
    for (size_t i = 0; i < 40; i++) {
        g->tr_from[i] = (int)(fx_rand(&seed) * 5);
        g->tr_to[i] = (int)(fx_rand(&seed) * 5);
        g->tr_n[i] = 1 + (int64_t)(fx_rand(&seed) * 1000);
    }
    for (size_t i = 0; i < 300; i++) g->reason[i] = (int)(fx_rand(&seed) * fx_rand(&seed) * 4);
}

static void sw_write(const char *wh, const char *layer, const char *table, const st_field *fields, st_column *cols,
                     size_t n_cols, uint32_t chunk_rows)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", wh, layer);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.strata", dir, table);
    st_file_meta meta = {layer, table, NULL, 0, "", 1, NULL, 0};
    st_write_opts opts = {0};
    opts.no_fsync = true;
    opts.chunk_rows = chunk_rows;
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, fields, n_cols, &meta, &opts, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_write(w, cols, 0, cols[0].n_rows, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (size_t j = 0; j < n_cols; j++) st_column_free(&cols[j]);
}

static void sw_push_str(st_column *c, const char *s) { cr_assert_eq(st_column_push_str(c, s, strlen(s)), ST_OK); }

/* Writes the facts (active rows of the grid), the grid, dim_customers,
 * transitions, rejects and a k selection, chunk_rows rows per chunk. */
static void sw_build(const char *wh, const sw_rows *g, uint32_t chunk_rows)
{
    const st_field ff[7] = {{"customer_id", ST_TYPE_I64, false, NULL},   {"period_key", ST_TYPE_I32, false, NULL},
                            {"total_sold_quantity", ST_TYPE_I64, false, NULL},
                            {"total_foc_quantity", ST_TYPE_I64, false, NULL},
                            {"foc_ratio", ST_TYPE_F64, false, NULL},     {"persona", ST_TYPE_STR, false, NULL},
                            {"is_active", ST_TYPE_BOOL, false, NULL}};
    for (int grid = 0; grid < 2; grid++) {
        st_column c[7];
        for (size_t j = 0; j < 7; j++) st_column_init(&c[j], ff[j].type);
        for (size_t i = 0; i < SW_GRID; i++) {
            if (!grid && !g->active[i]) continue;
            cr_assert_eq(st_column_push_i64(&c[0], g->cust[i]), ST_OK);
            cr_assert_eq(st_column_push_i32(&c[1], g->period[i]), ST_OK);
            cr_assert_eq(st_column_push_i64(&c[2], g->sold[i]), ST_OK);
            cr_assert_eq(st_column_push_i64(&c[3], g->foc[i]), ST_OK);
            cr_assert_eq(st_column_push_f64(&c[4], g->ratio[i]), ST_OK);
            sw_push_str(&c[5], sw_personas[g->persona[i]]);
            cr_assert_eq(st_column_push_bool(&c[6], g->active[i]), ST_OK);
        }
        sw_write(wh, "platinum", grid ? "marts_customer_summary" : "fct_transactions", ff, c, grid ? 7 : 6,
                 chunk_rows);
        if (!grid) st_column_free(&c[6]);
    }
    const st_field df[2] = {{"customer_id", ST_TYPE_I64, false, NULL}, {"is_known", ST_TYPE_BOOL, false, NULL}};
    st_column d[2];
    st_column_init(&d[0], ST_TYPE_I64);
    st_column_init(&d[1], ST_TYPE_BOOL);
    for (size_t c = 0; c < SW_CUST; c++) {
        cr_assert_eq(st_column_push_i64(&d[0], (int64_t)c * 3 + 1), ST_OK);
        cr_assert_eq(st_column_push_bool(&d[1], g->known[c]), ST_OK);
    }
    sw_write(wh, "platinum", "dim_customers", df, d, 2, chunk_rows);
    const st_field tf[3] = {{"from_persona", ST_TYPE_STR, false, NULL}, {"to_persona", ST_TYPE_STR, false, NULL},
                            {"n", ST_TYPE_I64, false, NULL}};
    st_column t[3];
    for (size_t j = 0; j < 3; j++) st_column_init(&t[j], tf[j].type);
    for (size_t i = 0; i < 40; i++) {
        sw_push_str(&t[0], sw_personas[g->tr_from[i]]);
        sw_push_str(&t[1], sw_personas[g->tr_to[i]]);
        cr_assert_eq(st_column_push_i64(&t[2], g->tr_n[i]), ST_OK);
    }
    sw_write(wh, "platinum", "marts_persona_transitions", tf, t, 3, chunk_rows ? 16 : 0);
    const st_field rf[1] = {{"reason", ST_TYPE_STR, false, NULL}};
    st_column r[1];
    st_column_init(&r[0], ST_TYPE_STR);
    for (size_t i = 0; i < 300; i++) sw_push_str(&r[0], sw_reasons[g->reason[i]]);
    sw_write(wh, "silver", "stg_rejects", rf, r, 1, chunk_rows);
    const st_field kf[5] = {{"k", ST_TYPE_I32, false, NULL},       {"inertia", ST_TYPE_F64, false, NULL},
                            {"silhouette", ST_TYPE_F64, false, NULL}, {"is_knee", ST_TYPE_BOOL, false, NULL},
                            {"is_chosen", ST_TYPE_BOOL, false, NULL}};
    st_column k[5];
    for (size_t j = 0; j < 5; j++) st_column_init(&k[j], kf[j].type);
    for (int32_t v = 2; v <= 7; v++) {
        cr_assert_eq(st_column_push_i32(&k[0], v), ST_OK);
        cr_assert_eq(st_column_push_f64(&k[1], 100.0 / v), ST_OK);
        cr_assert_eq(st_column_push_f64(&k[2], 0.1 * v), ST_OK);
        cr_assert_eq(st_column_push_bool(&k[3], v == 4), ST_OK);
        cr_assert_eq(st_column_push_bool(&k[4], v == 5), ST_OK);
    }
    sw_write(wh, "platinum", "ml_k_selection", kf, k, 5, chunk_rows ? 4 : 0);
}

/* Display position of sw_personas[p]: Champions, Loyalists, Potentials,
 * Not Active, Dormant. */
static size_t sw_rank(int p)
{
    static const size_t pos[5] = {4, 2, 0, 3, 1};
    return pos[p];
}

static void sw_check_model(const st_report_model *m, const sw_rows *g)
{
    int64_t known = 0;
    for (size_t c = 0; c < SW_CUST; c++) known += g->known[c];
    cr_assert_eq(m->n_customers, SW_CUST);
    cr_assert_eq(m->n_known, known);
    /* headline from the facts */
    int64_t n_fact = 0, sold = 0, foc = 0;
    for (size_t i = 0; i < SW_GRID; i++)
        if (g->active[i]) {
            n_fact++;
            sold += g->sold[i];
            foc += g->foc[i];
        }
    cr_assert_eq(m->n_active_periods, n_fact);
    cr_assert_eq(m->sales_volume, sold);
    cr_assert_eq(m->foc_volume, foc);
    cr_assert_eq(m->first_period, 202311);
    cr_assert_eq(m->last_period, 202504);
    /* personas from the grid */
    cr_assert_eq(m->n_personas, 5);
    for (int p = 0; p < 5; p++) {
        const st_report_persona *q = &m->personas[sw_rank(p)];
        cr_assert_str_eq(q->name, sw_personas[p]);
        int64_t cust = 0, rows = 0, s = 0, f = 0, rn = 0;
        double rsum = 0;
        for (size_t c = 0; c < SW_CUST; c++) {
            bool any = false;
            for (size_t t = 0; t < SW_MONTHS; t++) {
                size_t i = c * SW_MONTHS + t;
                if (g->persona[i] != p) continue;
                any = true;
                rows++;
                s += g->sold[i];
                f += g->foc[i];
                if (g->active[i] && isfinite(g->ratio[i])) {
                    rsum += g->ratio[i];
                    rn++;
                }
            }
            cust += any;
        }
        cr_assert_eq(q->customers, cust, "%s", q->name);
        cr_assert_eq(q->customer_periods, rows, "%s", q->name);
        cr_assert_eq(q->sales_volume, s, "%s", q->name);
        cr_assert_eq(q->foc_volume, f, "%s", q->name);
        if (rn) cr_assert_float_eq(q->mean_foc_ratio, rsum / (double)rn, 1e-12, "%s", q->name);
        else cr_assert(isnan(q->mean_foc_ratio));
    }
    cr_assert_eq(m->n_persona_customers, SW_CUST);
    /* mix: every month of the grid, rows per persona */
    cr_assert_eq(m->n_periods, SW_MONTHS);
    for (size_t t = 0; t < SW_MONTHS; t++) {
        cr_assert_eq(m->periods[t], g->period[t]);
        int64_t want[5] = {0};
        for (size_t c = 0; c < SW_CUST; c++) want[sw_rank(g->persona[c * SW_MONTHS + t])]++;
        for (size_t k = 0; k < 5; k++) cr_assert_eq(m->mix[t * 5 + k], want[k], "period %zu persona %zu", t, k);
    }
    /* scatter: rows floor(j * n / k) of the facts */
    size_t *fact_row = malloc((size_t)n_fact * sizeof *fact_row);
    for (size_t i = 0, n = 0; i < SW_GRID; i++)
        if (g->active[i]) fact_row[n++] = i;
    size_t n = (size_t)n_fact, k = n < ST_REPORT_MAX_POINTS ? n : ST_REPORT_MAX_POINTS;
    cr_assert_gt(n, ST_REPORT_MAX_POINTS);
    cr_assert_eq(m->n_points, k);
    cr_assert_eq(m->n_points_total, n_fact);
    for (size_t j = 0; j < k; j++) {
        size_t i = fact_row[(size_t)((double)j * (double)n / (double)k)];
        cr_assert_eq(m->pt_x[j], (double)g->sold[i], "point %zu", j);
        if (isnan(g->ratio[i])) cr_assert(isnan(m->pt_y[j]));
        else cr_assert_eq(m->pt_y[j], g->ratio[i], "point %zu", j);
        cr_assert_eq(m->pt_persona[j], sw_rank(g->persona[i]), "point %zu", j);
    }
    free(fact_row);
    /* k selection over several chunks */
    cr_assert_eq(m->n_k, 6);
    cr_assert_eq(m->k[5], 7);
    cr_assert_eq(m->knee_k, 4);
    cr_assert_eq(m->chosen_k, 5);
    /* transitions: labels met, display order, counts summed */
    bool met[5] = {false};
    size_t n_met = 0;
    for (size_t i = 0; i < 40; i++) {
        n_met += !met[g->tr_from[i]];
        met[g->tr_from[i]] = true;
        n_met += !met[g->tr_to[i]];
        met[g->tr_to[i]] = true;
    }
    cr_assert_eq(m->n_trans_labels, n_met);
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) {
            if (!met[a] || !met[b]) continue;
            size_t ia = n_met, ib = n_met;
            for (size_t x = 0; x < n_met; x++) {
                if (!strcmp(m->trans_labels[x], sw_personas[a])) ia = x;
                if (!strcmp(m->trans_labels[x], sw_personas[b])) ib = x;
            }
            cr_assert_lt(ia, n_met);
            cr_assert_lt(ib, n_met);
            int64_t want = 0;
            for (size_t i = 0; i < 40; i++) want += g->tr_from[i] == a && g->tr_to[i] == b ? g->tr_n[i] : 0;
            cr_assert_eq(m->trans_counts[ia * n_met + ib], want, "%s -> %s", sw_personas[a], sw_personas[b]);
        }
    for (size_t x = 1; x < n_met; x++)
        cr_assert_leq(st_report_persona_rank(m->trans_labels[x - 1]), st_report_persona_rank(m->trans_labels[x]));
    /* rejects: per reason, most first */
    int64_t rc[4] = {0};
    for (size_t i = 0; i < 300; i++) rc[g->reason[i]]++;
    cr_assert(m->has_rejects);
    size_t n_reasons = 0;
    for (int r = 0; r < 4; r++) n_reasons += rc[r] > 0;
    cr_assert_eq(m->n_rejects, n_reasons);
    for (size_t x = 0; x < m->n_rejects; x++) {
        int r = 0;
        while (r < 4 && strcmp(sw_reasons[r], m->rejects[x].name)) r++;
        cr_assert_lt(r, 4);
        cr_assert_eq(m->rejects[x].n, rc[r]);
        if (x) cr_assert_geq(m->rejects[x - 1].n, m->rejects[x].n);
    }
}

static void sw_load(st_report_model *m, const char *wh)
{
    st_error err;
    st_report_model_init(m);
    cr_assert_eq(st_report_load(m, wh, &err), ST_OK, "%s", err.msg);
}

/* Flips the last byte of the block of field `col` in chunk `c` of a file
 * (blocks tile the file from byte 16, chunk-major). */
static void sw_damage(const char *path, size_t c, size_t col)
{
    st_reader *r;
    st_error err;
    cr_assert_eq(st_reader_open(&r, path, &err), ST_OK, "%s", err.msg);
    uint64_t off = 16;
    size_t nf = st_reader_n_fields(r);
    st_block_info bi;
    for (size_t k = 0; k <= c; k++)
        for (size_t j = 0; j < nf; j++) {
            cr_assert_eq(st_reader_block_info(r, k, j, &bi), ST_OK);
            if (k == c && j == col) goto found;
            off += bi.size_bytes;
        }
found:
    st_reader_close(r);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    long at = (long)(off + bi.size_bytes - 1);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    int ch = fgetc(f);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    fputc(ch ^ 0x5a, f);
    fclose(f);
}

Test(report, loader_streams_many_chunks)
{
    sw_rows *g = calloc(1, sizeof *g);
    sw_generate(g);
    char small[] = "/tmp/strata-report-sw-XXXXXX", whole[] = "/tmp/strata-report-sw1-XXXXXX";
    cr_assert_not_null(mkdtemp(small));
    cr_assert_not_null(mkdtemp(whole));
    sw_build(small, g, 64);
    sw_build(whole, g, 0);

    st_report_model a, b;
    sw_load(&a, small);
    sw_load(&b, whole);
    cr_assert_eq(a.n_notes, 0);
    sw_check_model(&a, g);
    sw_check_model(&b, g);
    /* same rows in other chunks: the same pages */
    for (int fmt = 0; fmt < 2; fmt++) {
        st_buf x, y;
        render(&a, (st_report_format)fmt, &x);
        render(&b, (st_report_format)fmt, &y);
        cr_assert_eq(x.len, y.len);
        cr_assert(memcmp(x.data, y.data, x.len) == 0, "format %d differs", fmt);
        st_buf_free(&x);
        st_buf_free(&y);
    }
    st_report_model_free(&a);
    st_report_model_free(&b);

    /* two bad blocks in the grid: the note names the one a whole-column
     * read meets first (customer_id in chunk 40, not persona in chunk 5),
     * and nothing of the grid is kept: personas come from the facts */
    char path[600];
    snprintf(path, sizeof path, "%s/platinum/marts_customer_summary.strata", small);
    sw_damage(path, 5, 5);
    sw_damage(path, 40, 0);
    sw_load(&a, small);
    cr_assert_eq(a.n_notes, 1);
    cr_assert_not_null(strstr(a.notes[0], "marts_customer_summary.strata"), "%s", a.notes[0]);
    cr_assert_not_null(strstr(a.notes[0], "column 'customer_id', chunk 40"), "%s", a.notes[0]);
    cr_assert_eq(a.n_personas, 4); /* no Not Active without the grid */
    for (size_t p = 0; p < a.n_personas; p++) cr_assert_str_neq(a.personas[p].name, "Not Active");
    cr_assert_eq(a.n_periods, 0);
    cr_assert_null(a.mix);
    cr_assert_eq(a.n_points, ST_REPORT_MAX_POINTS);
    st_report_model_free(&a);

    /* a bad block late in the facts: no headline, no scatter (one note
     * from each reader of the facts), the grid's personas stay */
    sw_build(small, g, 64);
    snprintf(path, sizeof path, "%s/platinum/fct_transactions.strata", small);
    sw_damage(path, 30, 4);
    sw_load(&a, small);
    cr_assert_eq(a.n_notes, 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert_not_null(strstr(a.notes[i], "column 'foc_ratio', chunk 30"), "%s", a.notes[i]);
    cr_assert_eq(a.n_active_periods, -1);
    cr_assert_eq(a.n_personas, 5);
    cr_assert_eq(a.n_periods, SW_MONTHS);
    cr_assert_eq(a.n_points, 0);
    cr_assert_null(a.scatter_x);
    st_report_model_free(&a);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", small, whole);
    cr_assert_eq(system(cmd), 0);
    free(g);
}
