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
 *
 * A third page comes from a fresh `strata run` on a small generated
 * source: it must have no "Not available" section (the quality results
 * are written before the report step), and the customer views and the
 * monthly sales are recomputed here naively from the platinum tables
 * (read whole with the C reader) and compared with what the loader put
 * in the model, before the page is opened in chromium.
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
#include "strata/column.h"
#include "strata/file.h"
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
    static const char *const ids[] = {"kpis",     "personas", "customers", "at-risk", "countries", "sales-trend",
                                      "profiles", "k",        "migration", "quality", "lineage",   "run"};
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

/* ---- a fresh run, cross-checked against the platinum tables ---- */

#define NV_MAX_CUST 512
#define NV_MAX_PER 64

/* Reads the named columns of <wh>/platinum/<table>.strata whole. */
static void read_table(const char *wh, const char *table, const char *const *names, size_t n, st_column *cols)
{
    char path[512];
    snprintf(path, sizeof path, "%s/platinum/%s.strata", wh, table);
    st_reader *r;
    st_error e;
    cr_assert_eq(st_reader_open(&r, path, &e), ST_OK, "%s", e.msg);
    size_t which[8];
    for (size_t i = 0; i < n; i++) {
        int ix = st_reader_find(r, names[i]);
        cr_assert_geq(ix, 0, "%s has no %s", table, names[i]);
        which[i] = (size_t)ix;
        st_column_init(&cols[i], st_reader_field(r, which[i])->type);
    }
    cr_assert_eq(st_reader_read_all(r, which, n, cols, &e), ST_OK, "%s", e.msg);
    st_reader_close(r);
}

static void str_at(const st_column *c, size_t i, char *out, size_t cap)
{
    size_t len = 0;
    const char *s = st_column_valid(c, i) ? st_column_str(c, i, &len) : "";
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

typedef struct nv_cust {
    int64_t id, recent, prior, total;
    char now[32], before[32], name[128], country[64];
    bool known;
} nv_cust;

/* The naive model: periods and customers recomputed from the two platinum tables. */
typedef struct nv_model {
    st_column g[4], d[4]; /* marts_customer_summary, dim_customers */
    int32_t last, recent_from, prev, prior_from;
    nv_cust cu[NV_MAX_CUST];
    size_t nc;
} nv_model;

static int nv_rank(const char *p) { return st_report_persona_rank(p); }

/* The sorted distinct periods of the summary, and the window bounds the report uses. */
static void nv_periods(nv_model *v)
{
    int32_t per[NV_MAX_PER];
    size_t np = 0;
    for (size_t i = 0; i < v->g[1].n_rows; i++) {
        int32_t p = st_column_i32(&v->g[1])[i];
        size_t j = 0;
        while (j < np && per[j] != p) j++;
        if (j == np) {
            cr_assert_lt(np, NV_MAX_PER);
            per[np++] = p;
        }
    }
    for (size_t i = 1; i < np; i++)
        for (size_t j = i; j > 0 && per[j - 1] > per[j]; j--) {
            int32_t t = per[j];
            per[j] = per[j - 1];
            per[j - 1] = t;
        }
    cr_assert_gt(np, 6);
    v->last = per[np - 1];
    v->recent_from = per[np - 3];
    v->prev = per[np - 4];
    v->prior_from = per[np - 6];
}

/* Per customer: units in the recent and prior windows, persona now and before, name and country. */
static void nv_customers(nv_model *v)
{
    const st_column *g = v->g, *d = v->d;
    for (size_t i = 0; i < g[0].n_rows; i++) {
        int64_t id = st_column_i64(&g[0])[i];
        size_t k = 0;
        while (k < v->nc && v->cu[k].id != id) k++;
        if (k == v->nc) {
            cr_assert_lt(v->nc, NV_MAX_CUST);
            memset(&v->cu[v->nc], 0, sizeof v->cu[v->nc]);
            v->cu[v->nc++].id = id;
        }
        nv_cust *c = &v->cu[k];
        int32_t p = st_column_i32(&g[1])[i];
        int64_t sold = st_column_i64(&g[2])[i];
        c->total += sold;
        if (p >= v->recent_from) c->recent += sold;
        else if (p >= v->prior_from) c->prior += sold;
        if (p == v->last) str_at(&g[3], i, c->now, sizeof c->now);
        if (p == v->prev) str_at(&g[3], i, c->before, sizeof c->before);
    }
    for (size_t k = 0; k < v->nc; k++)
        for (size_t i = 0; i < d[0].n_rows; i++)
            if (st_column_i64(&d[0])[i] == v->cu[k].id) {
                str_at(&d[1], i, v->cu[k].name, sizeof v->cu[k].name);
                str_at(&d[2], i, v->cu[k].country, sizeof v->cu[k].country);
                v->cu[k].known = st_column_bool(&d[3])[i] != 0;
            }
}

static void nv_build(nv_model *v, const char *wh)
{
    static const char *const gn[] = {"customer_id", "period_key", "total_sold_quantity", "persona"};
    static const char *const dn[] = {"customer_id", "full_name", "country", "is_known"};
    read_table(wh, "marts_customer_summary", gn, 4, v->g);
    read_table(wh, "dim_customers", dn, 4, v->d);
    v->nc = 0;
    nv_periods(v);
    nv_customers(v);
}

static void nv_free(nv_model *v)
{
    for (int i = 0; i < 4; i++) {
        st_column_free(&v->g[i]);
        st_column_free(&v->d[i]);
    }
}

/* Monthly sales per persona. */
static void check_sales_mix(const st_report_model *m, const nv_model *v)
{
    const st_column *g = v->g;
    for (size_t pi = 0; pi < m->n_periods; pi++)
        for (size_t q = 0; q < m->n_personas; q++) {
            int64_t want = 0;
            for (size_t i = 0; i < g[0].n_rows; i++) {
                char nm[32];
                str_at(&g[3], i, nm, sizeof nm);
                if (st_column_i32(&g[1])[i] == m->periods[pi] && !strcmp(nm, m->personas[q].name))
                    want += st_column_i64(&g[2])[i];
            }
            cr_assert_eq(m->sales_mix[pi * m->n_personas + q], want, "%d %s", m->periods[pi], m->personas[q].name);
        }
}

/* Top customers per persona: most recent units, then total, then id. */
static void check_top(const st_report_model *m, const nv_model *v)
{
    const nv_cust *cu = v->cu;
    size_t at = 0, nc = v->nc;
    for (size_t q = 0; q < m->n_personas; q++) {
        bool used[NV_MAX_CUST] = {false};
        for (size_t r = 0; r < ST_REPORT_TOP_N; r++) {
            size_t best = nc;
            for (size_t k = 0; k < nc; k++) {
                if (used[k] || strcmp(cu[k].now, m->personas[q].name)) continue;
                if (best == nc || cu[k].recent > cu[best].recent ||
                    (cu[k].recent == cu[best].recent &&
                     (cu[k].total > cu[best].total || (cu[k].total == cu[best].total && cu[k].id < cu[best].id))))
                    best = k;
            }
            if (best == nc) break;
            used[best] = true;
            cr_assert_lt(at, m->n_top);
            cr_assert_eq(m->top[at].customer_id, cu[best].id, "top %s #%zu", m->personas[q].name, r);
            cr_assert_eq(m->top[at].recent_volume, cu[best].recent);
            cr_assert_str_eq(m->top[at].name, cu[best].name);
            cr_assert_str_eq(m->top[at].country, cu[best].country);
            at++;
        }
    }
    cr_assert_eq(at, m->n_top);
}

/* At risk: persona fell between prev and last and units fell; most lost units first. */
static void check_at_risk(const st_report_model *m, const nv_model *v)
{
    const nv_cust *cu = v->cu;
    size_t nc = v->nc;
    int64_t n_risk = 0, lost = 0;
    bool used[NV_MAX_CUST] = {false};
    for (size_t k = 0; k < nc; k++) {
        int a = nv_rank(cu[k].before), b = nv_rank(cu[k].now);
        if (*cu[k].before && a < 4 && b < 4 && b > a && cu[k].recent < cu[k].prior) {
            n_risk++;
            lost += cu[k].prior - cu[k].recent;
        } else {
            used[k] = true;
        }
    }
    cr_assert_gt(n_risk, 0, "the fixture should have customers at risk");
    cr_assert_eq(m->n_at_risk_total, n_risk);
    cr_assert_eq(m->at_risk_lost_volume, lost);
    for (size_t r = 0; r < m->n_at_risk; r++) {
        size_t best = nc;
        for (size_t k = 0; k < nc; k++) {
            if (used[k]) continue;
            int64_t lk = cu[k].prior - cu[k].recent, lb = best < nc ? cu[best].prior - cu[best].recent : 0;
            if (best == nc || lk > lb || (lk == lb && cu[k].id < cu[best].id)) best = k;
        }
        cr_assert_lt(best, nc);
        used[best] = true;
        cr_assert_eq(m->at_risk[r].customer_id, cu[best].id, "at risk #%zu", r);
        cr_assert_str_eq(m->personas[m->at_risk[r].prev_persona].name, cu[best].before);
        cr_assert_str_eq(m->personas[m->at_risk[r].persona].name, cu[best].now);
    }
}

/* Personas by country, and every known customer listed (fewer than the cap). */
static void check_countries_and_known(const st_report_model *m, const nv_model *v)
{
    int64_t n_countries_cust = 0;
    for (size_t c = 0; c < m->n_countries; c++) {
        const st_report_country *co = &m->countries[c];
        for (size_t q = 0; q < m->n_personas; q++) {
            int64_t want = 0;
            for (size_t k = 0; k < v->nc; k++) {
                const char *cn = *v->cu[k].country ? v->cu[k].country : "unknown";
                want += !strcmp(cn, co->name) && !strcmp(v->cu[k].now, m->personas[q].name);
            }
            cr_assert_eq(co->by_persona[q], want, "%s / %s", co->name, m->personas[q].name);
        }
        n_countries_cust += co->customers;
    }
    cr_assert_eq(n_countries_cust, (int64_t)v->nc);
    int64_t known = 0;
    for (size_t k = 0; k < v->nc; k++) known += v->cu[k].known;
    cr_assert_eq(m->n_known_total, known);
    cr_assert_eq((int64_t)m->n_listed, known);
}

/* The page names them: the first top customer with a name, and the first at-risk customer's id. */
static void check_page_names(const st_report_model *m, const char *html)
{
    for (size_t i = 0; i < m->n_top; i++)
        if (*m->top[i].name && !strpbrk(m->top[i].name, "&<>\"'")) {
            cr_assert_not_null(strstr(html, m->top[i].name), "%s not on the page", m->top[i].name);
            break;
        }
    char idn[32];
    snprintf(idn, sizeof idn, "#%lld", (long long)m->at_risk[0].customer_id);
    cr_assert_not_null(strstr(html, idn));
}

Test(dashboard_browser, fresh_run_has_quality_and_customer_views_matching_the_tables)
{
    const char *bin = getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "build/strata";
    char dir[] = "/tmp/strata-fresh-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[2048], wh[256], path[512];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    snprintf(cmd, sizeof cmd,
             "%s gen --out %s/tx.db --rows 30000 --customers 80 --months 14 --seed 5 > /dev/null 2>&1 && "
             "%s run --customers data/chinook.db --transactions %s/tx.db --warehouse %s --quiet > /dev/null 2>&1",
             bin, dir, bin, dir, wh);
    cr_assert_eq(run(cmd), 0, "gen + run failed: %s", cmd);
    /* 1. the first run's pages show every section, the quality results included */
    snprintf(path, sizeof path, "%s/report/index.html", wh);
    char *html = fx_slurp(path, NULL);
    cr_assert_not_null(html);
    cr_assert_null(strstr(html, "Not available"), "fresh run page: %.200s", strstr(html, "Not available"));
    cr_assert_not_null(strstr(html, "badge pass"));
    snprintf(path, sizeof path, "%s/report/report.md", wh);
    char *md = fx_slurp(path, NULL);
    cr_assert_not_null(md);
    cr_assert_null(strstr(md, "Not available"));

    /* 2. the report's model against a naive recomputation from the tables */
    static nv_model v;
    nv_build(&v, wh);
    st_report_model m;
    st_error err;
    st_report_model_init(&m);
    cr_assert_eq(st_report_load(&m, wh, &err), ST_OK, "%s", err.msg);
    cr_assert(m.has_customers);
    cr_assert_eq(m.last_month, v.last);
    cr_assert_eq(m.recent_from, v.recent_from);
    cr_assert_eq(m.prev_month, v.prev);
    check_sales_mix(&m, &v);
    check_top(&m, &v);
    check_at_risk(&m, &v);
    check_countries_and_known(&m, &v);
    check_page_names(&m, html);
    st_report_model_free(&m);
    nv_free(&v);

    /* 3. in the browser */
    if (access(CHROMIUM, X_OK) == 0) {
        snprintf(path, sizeof path, "%s/report/index.html", wh);
        check_page(dir, path, count(html, "<svg"), getenv("STRATA_FRESH_SCREENSHOT"));
    }
    free(html);
    free(md);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(run(cmd), 0);
}
