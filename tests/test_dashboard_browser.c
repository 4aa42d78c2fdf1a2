/*
 * test_dashboard_browser.c: the dashboard in a real browser. When
 * /usr/bin/chromium exists, the page rendered from the fixture model is
 * opened headless (no network, fresh profile) three ways: a screenshot
 * at 1280 px wide (must be a non-trivial, non-blank PNG), --dump-dom
 * (every chart's <svg> must be in the rendered DOM), and with console
 * logging on stderr (no "Uncaught" / "ERROR:CONSOLE" from the page).
 * Without chromium the test is skipped with a message.
 *
 * Two pages are checked: the report of a small warehouse written with
 * st_writer (loader + renderer), and the page of the full fixture model.
 * STRATA_REPORT_SCREENSHOT=<file> keeps a copy of the second screenshot.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "report_fixture.h"
#include "strata/report.h"

#define CHROMIUM "/usr/bin/chromium"

TestSuite(dashboard_browser, .timeout = 180);

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

static int run(const char *cmd) { return fx_sh("%s", cmd); }

/* Opens `html` in chromium three ways and checks the result; n_svg is the
 * number of <svg> elements the page source has. */
static void check_page(const char *dir, const char *html, size_t n_svg, const char *keep)
{
    char png[256], dom[256], log[256], prof[256], cmd[4096];
    snprintf(png, sizeof png, "%s/shot.png", dir);
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(log, sizeof log, "%s/console.log", dir);
    snprintf(prof, sizeof prof, "%s/profile", dir);
    const char *flags = "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
                        "--disable-component-update --disable-sync --disable-quic --hide-scrollbars";
    snprintf(cmd, sizeof cmd,
             "timeout 90 " CHROMIUM " %s --user-data-dir=%s --window-size=1280,4000 --screenshot=%s "
             "--enable-logging=stderr --v=0 file://%s > /dev/null 2> %s",
             flags, prof, png, html, log);
    cr_assert_eq(run(cmd), 0, "chromium screenshot failed, see %s", log);
    size_t png_len = 0;
    char *png_data = fx_slurp(png, &png_len);
    cr_assert_not_null(png_data, "no screenshot written");
    cr_assert_gt(png_len, 50 * 1024, "screenshot only %zu bytes: blank page?", png_len);
    cr_assert(memcmp(png_data, "\x89PNG", 4) == 0);
    free(png_data);
    /* not a single colour: the decompressed scanlines use many byte values */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys,zlib,struct;d=open(sys.argv[1],'rb').read();i=8;z=b''\n"
             "while i<len(d):\n n=struct.unpack('>I',d[i:i+4])[0];t=d[i+4:i+8]\n if t==b'IDAT': z+=d[i+8:i+8+n]\n i+=12+n\n"
             "r=zlib.decompress(z);sys.exit(0 if len(set(r[::7]))>40 else 1)\" %s",
             png);
    if (access("/usr/bin/python3", X_OK) == 0) cr_assert_eq(run(cmd), 0, "screenshot looks blank (few colours)");
    char *console = fx_slurp(log, NULL);
    cr_assert_not_null(console);
    cr_assert_null(strstr(console, "Uncaught"), "console error: %s", console);
    cr_assert_null(strstr(console, "ERROR:CONSOLE"), "console error: %s", console);
    free(console);

    snprintf(cmd, sizeof cmd, "timeout 90 " CHROMIUM " %s --user-data-dir=%s --dump-dom file://%s > %s 2> /dev/null",
             flags, prof, html, dom);
    cr_assert_eq(run(cmd), 0, "chromium --dump-dom failed");
    char *d = fx_slurp(dom, NULL);
    cr_assert_not_null(d);
    cr_assert_eq(count(d, "<svg"), n_svg, "rendered DOM has %zu <svg>, page has %zu", count(d, "<svg"), n_svg);
    static const char *const ids[] = {"kpis", "personas", "profiles", "k", "migration", "quality", "lineage", "run"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "<section id=\"%s\">", ids[i]);
        cr_assert_not_null(strstr(d, needle), "section %s missing from the DOM", ids[i]);
    }
    free(d);
    if (keep && *keep) {
        snprintf(cmd, sizeof cmd, "cp %s '%s'", png, keep);
        cr_expect_eq(run(cmd), 0);
    }
}

static size_t svg_in_file(const char *path)
{
    char *s = fx_slurp(path, NULL);
    cr_assert_not_null(s);
    size_t n = count(s, "<svg");
    free(s);
    return n;
}

Test(dashboard_browser, renders_in_headless_chromium)
{
    if (access(CHROMIUM, X_OK) != 0) cr_skip_test("skipped: " CHROMIUM " not found; the browser check needs it");
    char dir[] = "/tmp/strata-browser-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char html[512], wh[128], cmd[1024];
    st_error err;

    /* 1. a warehouse of real layer files, through the loader */
    snprintf(wh, sizeof wh, "%s/wh", dir);
    cr_assert_eq(mkdir(wh, 0755), 0);
    fx_build_warehouse(wh);
    cr_assert_eq(st_report_write(wh, ST_REPORT_HTML, NULL, &err), ST_OK, "%s", err.msg);
    snprintf(html, sizeof html, "%s/report/index.html", wh);
    size_t n_svg = svg_in_file(html);
    cr_assert_geq(n_svg, 8);
    check_page(dir, html, n_svg, NULL);

    /* 2. the full fixture model (every section filled) */
    st_report_model m;
    fx_fill_model(&m);
    st_buf b;
    st_buf_init(&b);
    cr_assert_eq(st_report_render(&m, ST_REPORT_HTML, &b, &err), ST_OK);
    snprintf(html, sizeof html, "%s/model.html", dir);
    FILE *f = fopen(html, "wb");
    cr_assert_not_null(f);
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    n_svg = count(b.data, "<svg");
    st_buf_free(&b);
    st_report_model_free(&m);
    check_page(dir, html, n_svg, getenv("STRATA_REPORT_SCREENSHOT"));

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(run(cmd), 0);
}
