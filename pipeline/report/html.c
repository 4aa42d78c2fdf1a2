/*
 * pipeline/report/html.c: st_report_model -> one self-contained HTML page.
 *
 * The page is written for a sales manager first: each section opens with
 * one sentence saying what the chart answers, numbers carry thousands
 * separators, and personas keep their colours everywhere. Everything is
 * inline (CSS in <style>, charts as <svg> from svg.c); the page has no
 * script and references no URL, so it opens offline and cannot leak.
 * Every string from the warehouse goes through st_svg_escape().
 *
 * Sections whose data is missing render a "not available" box naming the
 * file that would feed them, so a partial warehouse still gives a page.
 */
#include "report_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/column.h"
#include "svg_internal.h"

static const char *const CSS =
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,'Segoe UI',"
    "Roboto,Helvetica,Arial,sans-serif}"
    "header{background:#1d2f4a;color:#fff;padding:18px 28px}"
    "header h1{margin:0;font-size:24px}header p{margin:4px 0 0;color:#c9d3e3}"
    "nav{background:#fff;border-bottom:1px solid #dde1e7;padding:8px 28px;font-size:13px}"
    "nav a{color:#1d4f91;margin-right:16px;text-decoration:none}"
    "main{max-width:1240px;margin:0 auto;padding:8px 20px 40px}"
    "section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 20px;margin:16px 0}"
    "h2{font-size:19px;margin:2px 0 4px}h3{font-size:15px;margin:12px 0 4px}"
    "p.lead{margin:0 0 10px;color:#4a5365}"
    ".kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}"
    ".kpi{border:1px solid #e3e6eb;border-radius:8px;padding:10px 14px;background:#fafbfc}"
    ".kpi .v{font-size:26px;font-weight:650}.kpi .l{color:#4a5365;font-size:12.5px}"
    ".grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}"
    ".grid3{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}"
    "table{border-collapse:collapse;width:100%;font-size:13.5px}"
    "th,td{padding:6px 10px;border-bottom:1px solid #e6e8ec;text-align:left;vertical-align:top}"
    "td{overflow-wrap:break-word}td.n,.badge{white-space:nowrap}"
    "table.checks{table-layout:fixed}table.checks td{overflow-wrap:anywhere}"
    "table.checks th:nth-child(1){width:74px}table.checks th:nth-child(2){width:150px}"
    "table.checks th:nth-child(3){width:230px}table.checks th:nth-child(4){width:160px}"
    "table.checks th:nth-child(5){width:80px}table.checks th:nth-child(6){width:100px}"
    "details{margin:8px 0}summary{cursor:pointer;color:#1d4f91;padding:4px 0}"
    "th{background:#f0f2f5;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}"
    ".pass{background:#d7f0e5;color:#0b5d3b}.warn{background:#fdf0c8;color:#7a5200}"
    ".fail{background:#fbd9cf;color:#8f2400}.other{background:#e6e8ec;color:#333}"
    ".na{border:1px dashed #b8bfca;border-radius:6px;padding:12px;color:#5a6375;background:#fafbfc}"
    ".rule{background:#f6f8fb;border-left:4px solid #0072B2;padding:8px 12px;margin:10px 0;white-space:pre-wrap}"
    ".note{color:#5a6375;font-size:12.5px}"
    "svg.chart{max-width:100%;height:auto;display:block;font-size:12px}"
    "svg.chart text:not([fill]){fill:#2b3240}svg.chart .title{font-size:14px;font-weight:600}"
    "svg.chart .axis-label{font-size:12.5px;fill:#4a5365}svg.chart .tick{font-size:11.5px;fill:#4a5365}"
    "svg.chart .grid{stroke:#e6e8ec}svg.chart .axis{stroke:#8a919e}"
    "svg.chart .nodata{fill:#8a919e;font-size:14px}svg.chart .value{font-size:11px}"
    "svg.chart .cell{font-size:12.5px;font-weight:600}svg.chart .mark{font-size:12px;font-weight:600}"
    "svg.chart .layer{font-size:13px;font-weight:700;text-transform:uppercase;letter-spacing:.06em}"
    "svg.chart .node{stroke:#6b7280;stroke-width:1}svg.chart .node-sub{font-size:11px;fill:#4a5365}"
    "footer{color:#6b7280;font-size:12px;text-align:center;padding:12px}";

/* ---- small helpers ---- */

static void esc(st_buf *b, const char *s) { st_svg_escape_str(b, s ? s : ""); }

static void fmt_i64(char out[48], int64_t v)
{
    if (v < 0) {
        strcpy(out, "n/a");
        return;
    }
    st_svg_fmt_num((double)v, 0, out);
}

static void fmt_pct(char out[48], double num, double den)
{
    if (!(den > 0) || !isfinite(num)) {
        strcpy(out, "n/a");
        return;
    }
    char t[48];
    st_svg_fmt_num(100.0 * num / den, 1, t);
    snprintf(out, 48, "%.46s%%", t);
}

static void not_available(st_buf *b, const char *what)
{
    st_buf_puts(b, "<div class=\"na\">Not available: ");
    esc(b, what);
    st_buf_puts(b, "</div>\n");
}

/* When !have: the "not available" box naming what is missing, and the
 * section closed. Returns have, so a section reads
 * `if (!section_has(b, have, "...")) return;`. */
static bool section_has(st_buf *b, bool have, const char *missing)
{
    if (have) return true;
    not_available(b, missing);
    st_buf_puts(b, "</section>\n");
    return false;
}

static void section_open(st_buf *b, const char *id, const char *title, const char *lead)
{
    st_buf_printf(b, "<section id=\"%s\">\n<h2>", id);
    esc(b, title);
    st_buf_puts(b, "</h2>\n");
    if (lead) {
        st_buf_puts(b, "<p class=\"lead\">");
        esc(b, lead);
        st_buf_puts(b, "</p>\n");
    }
}

static void kpi(st_buf *b, const char *value, const char *label)
{
    st_buf_puts(b, "<div class=\"kpi\"><div class=\"v\">");
    esc(b, value);
    st_buf_puts(b, "</div><div class=\"l\">");
    esc(b, label);
    st_buf_puts(b, "</div></div>\n");
}

static void period_label(char out[16], int32_t p)
{
    if (p <= 0) snprintf(out, 16, "n/a");
    else snprintf(out, 16, "%04d-%02d", (int)(p / 100), (int)(p % 100));
}

/* ---- sections ---- */

static void sec_kpis(st_buf *b, const st_report_model *m)
{
    section_open(b, "kpis", "Headline", "The customer base and its sales over the whole period covered by the data.");
    if (!section_has(b, m->has_kpis, "platinum.dim_customers / platinum.fct_transactions were not found")) return;
    char v[48], l[160], a[16], z[16];
    st_buf_puts(b, "<div class=\"kpis\">\n");
    fmt_i64(v, m->n_customers);
    kpi(b, v, "customers (master data + seen only in transactions)");
    fmt_i64(v, m->n_active_periods);
    period_label(a, m->first_period);
    period_label(z, m->last_period);
    snprintf(l, sizeof l, "active customer-months (%s to %s)", a, z);
    kpi(b, v, l);
    fmt_i64(v, m->sales_volume);
    kpi(b, v, "units sold");
    fmt_pct(v, (double)m->foc_volume, (double)m->sales_volume + (double)m->foc_volume);
    char f[48];
    fmt_i64(f, m->foc_volume);
    snprintf(l, sizeof l, "free-of-charge share of units shipped (%s units free)", f);
    kpi(b, v, l);
    fmt_i64(v, m->n_known);
    kpi(b, v, "known customers (in the customer master)");
    fmt_i64(v, m->n_orphan);
    kpi(b, v, "orphan customers (in transactions, missing from the master)");
    st_buf_puts(b, "</div>\n</section>\n");
}

static void persona_colors(const st_report_model *m, const char **out)
{
    size_t extra = 0;
    for (size_t i = 0; i < m->n_personas; i++) {
        const char *nm = m->personas[i].name;
        out[i] = st_report_persona_color(nm, st_report_persona_rank(nm) == 4 ? extra++ : 0);
    }
}

/* Colour of a persona name that may not be in m->personas. */
static const char *color_of(const st_report_model *m, const char *const *cols, const char *name)
{
    for (size_t i = 0; i < m->n_personas; i++)
        if (name && m->personas[i].name && strcmp(name, m->personas[i].name) == 0) return cols[i];
    return st_report_persona_color(name, m->n_personas);
}

static void sec_personas(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "personas", "Personas",
                 "Each customer-month is assigned to one persona. A customer can appear under several personas "
                 "over time, so the customer shares can add up to more than 100%.");
    if (m->n_personas == 0) {
        not_available(b, "platinum.fct_transactions / marts_customer_summary were not found");
    } else {
        double tot_vol = 0;
        for (size_t i = 0; i < m->n_personas; i++) tot_vol += (double)m->personas[i].sales_volume;
        st_buf_puts(b, "<table><thead><tr><th>persona</th><th class=\"n\">customers</th><th class=\"n\">% customers</th>"
                       "<th class=\"n\">customer-months</th><th class=\"n\">sales volume (units)</th>"
                       "<th class=\"n\">% volume</th><th class=\"n\">mean free-of-charge ratio</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < m->n_personas; i++) {
            const st_report_persona *p = &m->personas[i];
            char c[48], pc[48], cp[48], v[48], pv[48], fr[48];
            fmt_i64(c, p->customers);
            fmt_pct(pc, (double)p->customers, (double)m->n_persona_customers);
            fmt_i64(cp, p->customer_periods);
            fmt_i64(v, p->sales_volume);
            fmt_pct(pv, (double)p->sales_volume, tot_vol);
            st_svg_fmt_num(p->mean_foc_ratio, 3, fr);
            st_buf_printf(b, "<tr><td><span class=\"sw\" style=\"background:%s\"></span>", cols[i]);
            esc(b, p->name);
            st_buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                             "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
                          c, pc, cp, v, pv, fr);
        }
        st_buf_puts(b, "</tbody></table>\n");
    }
    st_buf_puts(b, "<h3>How the personas were named</h3>\n<div class=\"rule\">");
    esc(b, m->persona_rule ? m->persona_rule : "n/a");
    st_buf_puts(b, "</div>\n</section>\n");
}

/* The centroid table: one row per cluster, one column per feature; ccol
 * is each cluster's colour. */
static void cluster_table(st_buf *b, const st_report_model *m, const char *const *ccol)
{
    st_buf_puts(b, "<table><thead><tr><th>cluster</th><th>persona</th><th class=\"n\">customer-months</th>"
                   "<th class=\"n\">share of inertia</th>");
    for (size_t f = 0; f < m->n_features; f++) {
        st_buf_puts(b, "<th class=\"n\">");
        esc(b, m->features[f]);
        st_buf_puts(b, "</th>");
    }
    st_buf_puts(b, "</tr></thead><tbody>\n");
    for (size_t c = 0; c < m->n_clusters; c++) {
        const st_report_cluster *cl = &m->clusters[c];
        char sz[48], sh[48];
        fmt_i64(sz, cl->size);
        fmt_pct(sh, cl->inertia_share, 1);
        st_buf_printf(b, "<tr><td>%d</td><td><span class=\"sw\" style=\"background:%s\"></span>",
                      (int)cl->cluster, ccol[c]);
        esc(b, cl->persona);
        st_buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td>", sz, sh);
        for (size_t f = 0; f < m->n_features; f++) {
            char v[48];
            double x = cl->values ? cl->values[f] : NAN;
            st_svg_fmt_num(x, fabs(x) >= 100 ? 0 : 3, v);
            st_buf_printf(b, "<td class=\"n\">%s</td>", v);
        }
        st_buf_puts(b, "</tr>\n");
    }
    st_buf_puts(b, "</tbody></table>\n");
}

/* One bar chart per feature of the cluster centres, then their table. */
static void cluster_panels(st_buf *b, const st_report_model *m, const char **cols)
{
    const char **cats = calloc(m->n_clusters, sizeof *cats);
    const char **ccol = calloc(m->n_clusters, sizeof *ccol);
    double *vals = calloc(m->n_clusters, sizeof *vals);
    char (*names)[80] = calloc(m->n_clusters, sizeof *names);
    if (cats && ccol && vals && names) {
        for (size_t c = 0; c < m->n_clusters; c++) {
            const st_report_cluster *cl = &m->clusters[c];
            snprintf(names[c], 80, "%.60s (%d)", cl->persona ? cl->persona : "?", (int)cl->cluster);
            cats[c] = names[c];
            ccol[c] = color_of(m, cols, cl->persona);
        }
        st_buf_puts(b, "<div class=\"grid3\">\n");
        for (size_t f = 0; f < m->n_features; f++) {
            for (size_t c = 0; c < m->n_clusters; c++)
                vals[c] = m->clusters[c].values ? m->clusters[c].values[f] : NAN;
            st_svg_series s = {m->features[f], NULL, NULL, vals, m->n_clusters};
            st_svg_bars bars = {0};
            bars.width = 390;
            bars.height = 300;
            bars.title = m->features[f];
            bars.y_label = "average";
            bars.categories = cats;
            bars.n_categories = m->n_clusters;
            bars.category_colors = ccol;
            bars.series = &s;
            bars.n_series = 1;
            bars.value_labels = true;
            bars.rotate_labels = m->n_clusters > 3;
            st_buf_puts(b, "<div>");
            st_svg_bar_chart(b, &bars);
            st_buf_puts(b, "</div>\n");
        }
        st_buf_puts(b, "</div>\n");
        cluster_table(b, m, ccol);
    }
    free(cats);
    free(ccol);
    free(vals);
    free(names);
}

/* A sample of customer-months placed by two features, one colour per
 * persona (log x when the volume has a heavy tail). */
static void cluster_scatter(st_buf *b, const st_report_model *m, const char **cols)
{
    /* Heavy tail -> log x (values <= 0 then drop out; say so). */
    double mx = 0, mn = INFINITY;
    size_t nonpos = 0;
    for (size_t i = 0; i < m->n_points; i++) {
        if (!isfinite(m->pt_x[i])) continue;
        if (m->pt_x[i] > mx) mx = m->pt_x[i];
        if (m->pt_x[i] > 0 && m->pt_x[i] < mn) mn = m->pt_x[i];
        if (m->pt_x[i] <= 0) nonpos++;
    }
    bool log_x = mn < INFINITY && mx / mn > 100;
    /* one series per persona over a shared coordinate array */
    st_svg_series *ser = calloc(m->n_personas, sizeof *ser);
    double *xs = malloc(m->n_points * sizeof *xs), *ys = malloc(m->n_points * sizeof *ys);
    if (ser && xs && ys) {
        size_t o = 0;
        for (size_t p = 0; p < m->n_personas; p++) {
            ser[p].name = m->personas[p].name;
            ser[p].color = cols[p];
            ser[p].x = xs + o;
            ser[p].y = ys + o;
            for (size_t i = 0; i < m->n_points; i++) {
                if (m->pt_persona[i] != p) continue;
                xs[o] = m->pt_x[i];
                ys[o] = m->pt_y[i];
                o++;
            }
            ser[p].n = (size_t)(xs + o - ser[p].x);
            if (ser[p].n == 0) ser[p].name = NULL; /* nothing to show in the legend */
        }
        char xl[200];
        snprintf(xl, sizeof xl, "%.120s%s", m->scatter_x ? m->scatter_x : "x", log_x ? " (log scale)" : "");
        st_svg_xy xy = {0};
        xy.width = 1180;
        xy.height = 440;
        xy.x_label = xl;
        xy.y_label = m->scatter_y ? m->scatter_y : "y";
        xy.log_x = log_x;
        xy.lines = false;
        xy.point_radius = 2.6;
        xy.point_opacity = 0.6;
        xy.series = ser;
        xy.n_series = m->n_personas;
        st_svg_xy_chart(b, &xy);
        char shown[48], tot[48], np[48];
        fmt_i64(shown, (int64_t)m->n_points);
        fmt_i64(tot, m->n_points_total);
        fmt_i64(np, (int64_t)nonpos);
        st_buf_printf(b, "<p class=\"note\">%s of %s active customer-months shown (evenly spaced sample).", shown, tot);
        if (log_x && nonpos) st_buf_printf(b, " %s points with zero on the log axis are not drawn.", np);
        st_buf_puts(b, "</p>\n");
    }
    free(ser);
    free(xs);
    free(ys);
}

static void sec_clusters(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "profiles", "What each persona looks like",
                 "Average behaviour of each persona's customer-months (cluster centres, in the data's own units), "
                 "one panel per feature, and a sample of customer-months placed by two features.");
    if (m->n_clusters == 0 || m->n_features == 0) not_available(b, "platinum.ml_centroids was not found");
    else cluster_panels(b, m, cols);
    st_buf_puts(b, "<h3>Customer-months by persona</h3>\n");
    if (!section_has(b, m->n_points && m->n_personas, "platinum.fct_transactions was not found")) return;
    cluster_scatter(b, m, cols);
    st_buf_puts(b, "</section>\n");
}

static void sec_k(st_buf *b, const st_report_model *m)
{
    section_open(b, "k", "How many personas?",
                 "The number of groups k was chosen by comparing fits: inertia (spread inside groups, lower is "
                 "tighter; look for the bend, the \"knee\") and silhouette (how well separated the groups are, "
                 "higher is better).");
    if (!section_has(b, m->n_k != 0, "platinum.ml_k_selection was not found")) return;
    double *kx = malloc(m->n_k * sizeof *kx);
    if (kx) {
        for (size_t i = 0; i < m->n_k; i++) kx[i] = m->k[i];
        st_svg_mark marks[2];
        size_t nm = 0;
        char l1[64], l2[64];
        if (m->chosen_k > 0) {
            snprintf(l1, sizeof l1, "chosen k = %d", (int)m->chosen_k);
            marks[nm++] = (st_svg_mark){m->chosen_k, l1, "#D55E00"};
        }
        if (m->knee_k > 0) {
            snprintf(l2, sizeof l2, "knee k = %d", (int)m->knee_k);
            marks[nm++] = (st_svg_mark){m->knee_k, l2, "#0072B2"};
        }
        st_buf_puts(b, "<div class=\"grid2\">\n");
        st_svg_series si = {NULL, "#0072B2", kx, m->inertia, m->n_k};
        st_svg_xy xy = {0};
        xy.width = 580;
        xy.height = 320;
        xy.title = "Inertia (elbow)";
        xy.x_label = "k (number of personas)";
        xy.y_label = "inertia";
        xy.lines = true;
        xy.markers = true;
        xy.integer_x = true;
        xy.series = &si;
        xy.n_series = 1;
        xy.marks = marks;
        xy.n_marks = nm;
        st_buf_puts(b, "<div>");
        st_svg_xy_chart(b, &xy);
        st_buf_puts(b, "</div>\n<div>");
        st_svg_series ss = {NULL, "#009E73", kx, m->silhouette, m->n_k};
        xy.title = "Silhouette";
        xy.y_label = "silhouette score";
        xy.series = &ss;
        st_svg_xy_chart(b, &xy);
        st_buf_puts(b, "</div>\n</div>\n");
        free(kx);
    }
    st_buf_puts(b, "</section>\n");
}

/* ---- customers ---- */

/* "name (#id)", or "#id (not in the customer master)" for an orphan. */
static void customer_cell(st_buf *b, const st_report_customer *c)
{
    if (c->name && *c->name) {
        esc(b, c->name);
        st_buf_printf(b, " <span class=\"note\">#%lld</span>", (long long)c->customer_id);
    } else {
        st_buf_printf(b, "#%lld <span class=\"note\">(%s)</span>", (long long)c->customer_id,
                      c->is_known ? "no name" : "not in master");
    }
}

static void persona_cell(st_buf *b, const st_report_model *m, const char **cols, size_t p)
{
    if (p >= m->n_personas) {
        st_buf_puts(b, "n/a");
        return;
    }
    st_buf_printf(b, "<span class=\"sw\" style=\"background:%s\"></span>", cols[p]);
    esc(b, m->personas[p].name);
}

static void window_label(char out[48], int32_t from, int32_t to)
{
    char a[16], z[16];
    period_label(a, from);
    period_label(z, to);
    if (from == to) snprintf(out, 48, "%s", a);
    else snprintf(out, 48, "%s to %s", a, z);
}

/* The n customers of v as a table: customer, country, with_personas the
 * persona now and before, then volumes. */
static void customer_table(st_buf *b, const st_report_model *m, const char **cols, const st_report_customer *v,
                           size_t n, bool with_personas)
{
    st_buf_puts(b, "<table><thead><tr><th class=\"n\">#</th><th>customer</th><th>country</th>");
    if (with_personas) st_buf_puts(b, "<th>persona now</th><th>persona before</th>");
    st_buf_puts(b, "<th class=\"n\">units, last months</th><th class=\"n\">units, whole period</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < n; i++) {
        const st_report_customer *c = &v[i];
        char r[48], t[48];
        fmt_i64(r, c->recent_volume);
        fmt_i64(t, c->total_volume);
        st_buf_printf(b, "<tr><td class=\"n\">%zu</td><td>", i + 1);
        customer_cell(b, c);
        st_buf_puts(b, "</td><td>");
        esc(b, c->country && *c->country ? c->country : "unknown");
        if (with_personas) {
            st_buf_puts(b, "</td><td>");
            persona_cell(b, m, cols, c->persona);
            st_buf_puts(b, "</td><td>");
            persona_cell(b, m, cols, c->prev_persona);
        }
        st_buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n", r, t);
    }
    st_buf_puts(b, "</tbody></table>\n");
}

static void sec_customers(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "customers", "Who are my customers now",
                 "Each customer's persona in the last month of the data, with the units they bought in the last "
                 "months: the top customers of each persona first, then every known customer.");
    if (!section_has(b, m->has_customers, "platinum.marts_customer_summary / platinum.dim_customers were not found"))
        return;
    char w[48];
    window_label(w, m->recent_from, m->last_month);
    st_buf_printf(b, "<p class=\"note\">Persona now: the persona of the last month; units, last months: %s.</p>\n", w);
    st_buf_puts(b, "<div class=\"grid2\">\n");
    for (size_t p = 0; p < m->n_personas; p++) {
        size_t first = 0, n = 0;
        for (size_t i = 0; i < m->n_top; i++)
            if (m->top[i].persona == p) {
                if (!n) first = i;
                n++;
            }
        if (!n) continue;
        st_buf_printf(b, "<div><h3><span class=\"sw\" style=\"background:%s\"></span>Top ", cols[p]);
        esc(b, m->personas[p].name);
        st_buf_puts(b, "</h3>\n");
        customer_table(b, m, cols, m->top + first, n, false);
        st_buf_puts(b, "</div>\n");
    }
    st_buf_puts(b, "</div>\n");
    char k[48], l[48];
    fmt_i64(k, m->n_known_total);
    fmt_i64(l, (int64_t)m->n_listed);
    st_buf_printf(b, "<details><summary>Every known customer (%s", k);
    if ((int64_t)m->n_listed < m->n_known_total) st_buf_printf(b, "; the %s with the most units in the last months", l);
    st_buf_puts(b, ")</summary>\n");
    customer_table(b, m, cols, m->listed, m->n_listed, true);
    st_buf_puts(b, "</details>\n</section>\n");
}

static void sec_at_risk(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "at-risk", "Customers slipping away",
                 "Customers whose persona fell between the month before the last months and the last month "
                 "(Champions above Loyalists above Potentials above Not Active) and who bought fewer units in the "
                 "last months than in the months before.");
    if (!section_has(b, m->has_customers && m->prev_month > 0,
                     "platinum.marts_customer_summary / platinum.dim_customers were not found, or the data covers "
                     "too few months"))
        return;
    char a[16], z[16], rw[48], n[48], lost[48];
    period_label(a, m->prev_month);
    period_label(z, m->last_month);
    window_label(rw, m->recent_from, m->last_month);
    fmt_i64(n, m->n_at_risk_total);
    st_svg_fmt_num((double)m->at_risk_lost_volume, 0, lost);
    st_buf_printf(b, "<p><b>%s</b> customer%s fell from their %s persona to a lower one in %s and bought less; together they bought "
                     "<b>%s</b> units less in %s than in the months before.</p>\n",
                  n, m->n_at_risk_total == 1 ? "" : "s", a, z, lost, rw);
    if (m->n_at_risk == 0) {
        st_buf_puts(b, "</section>\n");
        return;
    }
    st_buf_printf(b, "<table><thead><tr><th class=\"n\">#</th><th>customer</th><th>country</th><th>persona in %s</th>"
                     "<th>persona in %s</th><th class=\"n\">units before</th><th class=\"n\">units, last months</th>"
                     "<th class=\"n\">lost units</th></tr></thead><tbody>\n",
                  a, z);
    for (size_t i = 0; i < m->n_at_risk; i++) {
        const st_report_customer *c = &m->at_risk[i];
        char pv[48], rv[48], lv[48];
        fmt_i64(pv, c->prior_volume);
        fmt_i64(rv, c->recent_volume);
        st_svg_fmt_num((double)(c->prior_volume - c->recent_volume), 0, lv);
        st_buf_printf(b, "<tr><td class=\"n\">%zu</td><td>", i + 1);
        customer_cell(b, c);
        st_buf_puts(b, "</td><td>");
        esc(b, c->country && *c->country ? c->country : "unknown");
        st_buf_puts(b, "</td><td>");
        persona_cell(b, m, cols, c->prev_persona);
        st_buf_puts(b, "</td><td>");
        persona_cell(b, m, cols, c->persona);
        st_buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n", pv, rv, lv);
    }
    st_buf_puts(b, "</tbody></table>\n");
    if ((int64_t)m->n_at_risk < m->n_at_risk_total)
        st_buf_printf(b, "<p class=\"note\">The %zu with the most lost units are listed.</p>\n", m->n_at_risk);
    st_buf_puts(b, "</section>\n");
}

/* Stacked bars of customers per country by persona, then the table. */
static void sec_countries(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "countries", "Personas by country",
                 "Where each persona's customers are: customers of each country by their persona in the last month "
                 "(customers missing from the customer master count as \"unknown\").");
    if (!section_has(b, m->has_customers && m->n_countries > 0, "platinum.dim_customers was not found")) return;
    size_t nc = m->n_countries, np = m->n_personas, cells;
    const char **cats = calloc(nc, sizeof *cats);
    double *ys = st_size_mul(nc, np, &cells) ? malloc(cells * sizeof *ys) : NULL;
    st_svg_series *ser = calloc(np, sizeof *ser);
    if (cats && ys && ser) {
        for (size_t c = 0; c < nc; c++) cats[c] = m->countries[c].name;
        for (size_t p = 0; p < np; p++) {
            ser[p].name = m->personas[p].name;
            ser[p].color = cols[p];
            ser[p].y = ys + p * nc;
            ser[p].n = nc;
            for (size_t c = 0; c < nc; c++) ys[p * nc + c] = (double)m->countries[c].by_persona[p];
        }
        st_svg_bars bars = {0};
        bars.width = 1180;
        bars.height = 380;
        bars.title = "Customers per country by persona (last month)";
        bars.y_label = "customers";
        bars.categories = cats;
        bars.n_categories = nc;
        bars.series = ser;
        bars.n_series = np;
        bars.stacked = true;
        bars.rotate_labels = nc > 12;
        st_svg_bar_chart(b, &bars);
    }
    free(cats);
    free(ys);
    free(ser);
    st_buf_puts(b, "<details><summary>The numbers (click to show)</summary>\n<table><thead><tr><th>country</th>"
                   "<th class=\"n\">customers</th>");
    for (size_t p = 0; p < np; p++) {
        st_buf_puts(b, "<th class=\"n\">");
        esc(b, m->personas[p].name);
        st_buf_puts(b, "</th>");
    }
    st_buf_puts(b, "<th class=\"n\">units, last months</th></tr></thead><tbody>\n");
    for (size_t c = 0; c < nc; c++) {
        const st_report_country *co = &m->countries[c];
        char v[48];
        st_buf_puts(b, "<tr><td>");
        esc(b, co->name);
        fmt_i64(v, co->customers);
        st_buf_printf(b, "</td><td class=\"n\">%s</td>", v);
        for (size_t p = 0; p < np; p++) {
            fmt_i64(v, co->by_persona[p]);
            st_buf_printf(b, "<td class=\"n\">%s</td>", v);
        }
        fmt_i64(v, co->recent_volume);
        st_buf_printf(b, "<td class=\"n\">%s</td></tr>\n", v);
    }
    st_buf_puts(b, "</tbody></table>\n</details>\n</section>\n");
}

/* A stacked area of per-period values per persona (vals[p * n_personas + i]). */
static void persona_area(st_buf *b, const st_report_model *m, const char **cols, const int64_t *vals,
                         const char *title, const char *y_label)
{
    size_t np = m->n_periods, nper = m->n_personas;
    char (*labels)[16] = calloc(np, sizeof *labels);
    const char **cats = calloc(np, sizeof *cats);
    double *ys = NULL;
    st_svg_series *ser = calloc(nper, sizeof *ser);
    size_t cells;
    if (st_size_mul(np, nper, &cells)) ys = malloc(cells * sizeof *ys);
    if (labels && cats && ys && ser) {
        for (size_t p = 0; p < np; p++) {
            period_label(labels[p], m->periods[p]);
            cats[p] = labels[p];
        }
        for (size_t i = 0; i < nper; i++) {
            ser[i].name = m->personas[i].name;
            ser[i].color = cols[i];
            ser[i].y = ys + i * np;
            ser[i].n = np;
            for (size_t p = 0; p < np; p++) ys[i * np + p] = (double)vals[p * nper + i];
        }
        st_svg_area area = {0};
        area.width = 1180;
        area.height = 380;
        area.title = title;
        area.x_label = "month";
        area.y_label = y_label;
        area.categories = cats;
        area.n_categories = np;
        area.series = ser;
        area.n_series = nper;
        st_svg_area_chart(b, &area);
    }
    free(labels);
    free(cats);
    free(ys);
    free(ser);
}

static void sec_sales_trend(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "sales-trend", "Monthly sales by persona",
                 "Units sold each month, split by the persona the customers had that month.");
    if (!section_has(b, m->n_periods && m->n_personas && m->sales_mix, "platinum.marts_customer_summary was not found"))
        return;
    persona_area(b, m, cols, m->sales_mix, "Units sold per month by persona", "units sold");
    st_buf_puts(b, "</section>\n");
}

static void sec_migration(st_buf *b, const st_report_model *m, const char **cols)
{
    section_open(b, "migration", "Persona migration",
                 "How customers move between personas from one month to the next (row: persona before, column: "
                 "persona after; the diagonal is customers who stayed), and the persona mix month by month.");
    if (m->n_trans_labels == 0) {
        not_available(b, "platinum.marts_persona_transitions was not found");
    } else {
        size_t n = m->n_trans_labels, nn;
        double *vals = st_size_mul(n, n, &nn) ? malloc(nn * sizeof *vals) : NULL;
        if (vals) {
            for (size_t i = 0; i < nn; i++) vals[i] = (double)m->trans_counts[i];
            st_svg_heatmap hm = {0};
            hm.width = 1180;
            hm.height = 120 + 56 * (int)(n < 12 ? n : 12);
            hm.title = "Customers moving from one persona to another between consecutive months";
            hm.x_label = "persona in the next month";
            hm.y_label = "persona before";
            hm.row_labels = (const char *const *)m->trans_labels;
            hm.col_labels = (const char *const *)m->trans_labels;
            hm.n_rows = n;
            hm.n_cols = n;
            hm.values = vals;
            hm.fmt = ST_SVG_FMT_INT;
            st_svg_heatmap_chart(b, &hm);
            free(vals);
        }
    }
    if (!section_has(b, m->n_periods && m->n_personas, "platinum.marts_customer_summary was not found")) return;
    persona_area(b, m, cols, m->mix, "Persona mix per month", "customers");
    st_buf_puts(b, "</section>\n");
}

static const char *badge_class(const char *status)
{
    if (!status) return "other";
    if (!strcmp(status, "pass")) return "pass";
    if (!strcmp(status, "warn")) return "warn";
    if (!strcmp(status, "fail")) return "fail";
    return "other";
}

static void sec_quality(st_buf *b, const st_report_model *m)
{
    section_open(b, "quality", "Data quality",
                 "Every check run on the data, and the source rows that were set aside (rejected) with the reason.");
    if (!m->has_quality) {
        not_available(b, "quality/results.json was not found");
    } else if (m->n_expectations == 0) {
        st_buf_puts(b, "<p>No expectations were recorded.</p>\n");
    } else {
        size_t np = 0, nw = 0, nf = 0;
        for (size_t i = 0; i < m->n_expectations; i++) {
            const char *c = badge_class(m->expectations[i].status);
            if (!strcmp(c, "pass")) np++;
            else if (!strcmp(c, "warn")) nw++;
            else if (!strcmp(c, "fail")) nf++;
        }
        st_buf_printf(b, "<p><span class=\"badge pass\">%zu pass</span> <span class=\"badge warn\">%zu warn</span> "
                         "<span class=\"badge fail\">%zu fail</span></p>\n",
                      np, nw, nf);
        /* problems first in an open table; passed checks folded into a
         * <details> element (native HTML, no script) */
        for (int passed = 0; passed < 2; passed++) {
            if ((passed ? np : m->n_expectations - np) == 0) continue;
            if (passed)
                st_buf_printf(b, "<details><summary>%zu passed check%s (click to show)</summary>\n", np,
                              np == 1 ? "" : "s");
            st_buf_puts(b, "<table class=\"checks\"><thead><tr><th>result</th><th>check</th><th>table</th>"
                           "<th>column</th><th>severity</th><th class=\"n\">failing rows</th><th>detail</th>"
                           "</tr></thead><tbody>\n");
            static const char *const order[] = {"fail", "warn", "other"};
            for (size_t g = 0; g < 3; g++) {
                for (size_t i = 0; i < m->n_expectations; i++) {
                    const st_report_expectation *e = &m->expectations[i];
                    const char *cls = badge_class(e->status);
                    if (passed ? strcmp(cls, "pass") != 0 || g > 0 : strcmp(cls, order[g]) != 0) continue;
                    char fr[48];
                    fmt_i64(fr, e->failing_rows);
                    st_buf_printf(b, "<tr><td><span class=\"badge %s\">", cls);
                    static const char *const seps[] = {"", "</span></td><td>", "</td><td>", "</td><td>", "</td><td>"};
                    const char *const vals[] = {e->status, e->name, e->table, e->column, e->severity};
                    st_buf_put_fields(b, seps, vals, 5, esc);
                    st_buf_printf(b, "</td><td class=\"n\">%s</td><td>", fr);
                    esc(b, e->detail);
                    st_buf_puts(b, "</td></tr>\n");
                }
            }
            st_buf_puts(b, "</tbody></table>\n");
            if (passed) st_buf_puts(b, "</details>\n");
        }
    }
    st_buf_puts(b, "<h3>Rejected source rows by reason</h3>\n");
    if (!m->has_rejects) {
        not_available(b, "silver.stg_rejects was not found");
    } else if (m->n_rejects == 0) {
        st_buf_puts(b, "<p>No source rows were rejected.</p>\n");
    } else {
        int64_t tot = 0, mx = 1;
        for (size_t i = 0; i < m->n_rejects; i++) {
            tot += m->rejects[i].n;
            if (m->rejects[i].n > mx) mx = m->rejects[i].n;
        }
        st_buf_puts(b, "<table><thead><tr><th>reason</th><th class=\"n\">rows</th><th class=\"n\">share</th>"
                       "<th style=\"width:40%\"></th></tr></thead><tbody>\n");
        for (size_t i = 0; i < m->n_rejects; i++) {
            char n[48], s[48];
            fmt_i64(n, m->rejects[i].n);
            fmt_pct(s, (double)m->rejects[i].n, (double)tot);
            st_buf_puts(b, "<tr><td>");
            esc(b, m->rejects[i].name);
            st_buf_printf(b, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td>"
                             "<svg class=\"chart\" viewBox=\"0 0 300 12\" width=\"300\" height=\"12\" role=\"img\">"
                             "<rect x=\"0\" y=\"1\" width=\"%.1f\" height=\"10\" fill=\"#D55E00\"/></svg></td></tr>\n",
                          n, s, 300.0 * (double)m->rejects[i].n / (double)mx);
        }
        char t[48];
        fmt_i64(t, tot);
        st_buf_printf(b, "<tr><th>total</th><th class=\"n\">%s</th><th class=\"n\">100%%</th><th></th></tr>\n", t);
        st_buf_puts(b, "</tbody></table>\n");
    }
    st_buf_puts(b, "</section>\n");
}

static int layer_index(const char *layer)
{
    static const char *const order[] = {"bronze", "silver", "gold", "platinum"};
    for (int i = 0; i < 4; i++)
        if (layer && !strcmp(layer, order[i])) return i;
    return 4;
}

static void sec_lineage(st_buf *b, const st_report_model *m)
{
    section_open(b, "lineage", "Where the numbers come from",
                 "Each box is a table of the warehouse; arrows show which tables each one is built from, from the "
                 "raw sources (bronze) to cleaned data (silver), customer features (gold) and the personas "
                 "(platinum).");
    if (!section_has(b, m->n_tables != 0, "no layer files were found in the warehouse")) return;
    static const char *const layer_names[] = {"bronze", "silver", "gold", "platinum", "other"};
    static const char *const layer_fill[] = {"#f1dcc4", "#e3e6ea", "#f6e7a8", "#d6e6f5", "#eeeeee"};
    bool has_other = false;
    for (size_t i = 0; i < m->n_tables; i++)
        if (layer_index(m->tables[i].layer) == 4) has_other = true;
    st_svg_dag_node *nodes = calloc(m->n_tables, sizeof *nodes);
    char (*subs)[48] = calloc(m->n_tables, sizeof *subs);
    size_t n_edges = 0;
    for (size_t i = 0; i < m->n_tables; i++) n_edges += m->tables[i].n_inputs;
    st_svg_dag_edge *edges = n_edges ? calloc(n_edges, sizeof *edges) : NULL;
    if (nodes && subs && (edges || n_edges == 0)) {
        size_t ne = 0;
        for (size_t i = 0; i < m->n_tables; i++) {
            const st_report_table *t = &m->tables[i];
            int li = layer_index(t->layer);
            nodes[i].label = t->table;
            if (t->n_rows >= 0) {
                char n[48];
                fmt_i64(n, t->n_rows);
                snprintf(subs[i], 48, "%.38s rows", n);
                nodes[i].sublabel = subs[i];
            }
            nodes[i].layer = li;
            nodes[i].color = layer_fill[li];
            for (size_t k = 0; k < t->n_inputs; k++) {
                /* "layer.table" -> node index */
                const char *in = t->inputs[k];
                const char *dot = in ? strchr(in, '.') : NULL;
                if (!dot) continue;
                for (size_t j = 0; j < m->n_tables; j++) {
                    const st_report_table *u = &m->tables[j];
                    size_t ll = (size_t)(dot - in);
                    if (u->layer && u->table && strlen(u->layer) == ll && !strncmp(u->layer, in, ll) &&
                        !strcmp(u->table, dot + 1)) {
                        edges[ne].from = j;
                        edges[ne].to = i;
                        ne++;
                        break;
                    }
                }
            }
        }
        st_svg_dag d = {0};
        d.width = 1180;
        d.layer_names = layer_names;
        d.n_layers = has_other ? 5 : 4;
        d.nodes = nodes;
        d.n_nodes = m->n_tables;
        d.edges = edges;
        d.n_edges = ne;
        st_svg_dag_chart(b, &d);
    }
    free(nodes);
    free(subs);
    free(edges);
    st_buf_puts(b, "</section>\n");
}

static void fmt_secs(char out[48], double s)
{
    if (!isfinite(s)) strcpy(out, "n/a");
    else st_svg_fmt_num(s, s < 10 ? 3 : 1, out);
}

static void fmt_mib(char out[48], double bytes)
{
    if (!isfinite(bytes)) strcpy(out, "n/a");
    else st_svg_fmt_num(bytes / 1048576.0, 1, out);
}

static void fmt_rows(char out[48], double v)
{
    if (!isfinite(v) || v < 0) strcpy(out, "n/a");
    else st_svg_fmt_num(v, 0, out);
}

static void sec_run(st_buf *b, const st_report_model *m)
{
    section_open(b, "run", "Pipeline run", "The last run of the pipeline that built this warehouse, step by step.");
    if (!section_has(b, m->has_run, "_runs/latest.json was not found")) return;
    char s[48], r[48];
    fmt_secs(s, m->run_seconds);
    fmt_mib(r, m->run_peak_rss_bytes);
    st_buf_puts(b, "<p>Run <b>");
    esc(b, m->run_id ? m->run_id : "n/a");
    st_buf_puts(b, "</b> started ");
    esc(b, m->run_started ? m->run_started : "n/a");
    st_buf_printf(b, ", status <span class=\"badge %s\">", m->run_status && !strcmp(m->run_status, "ok") ? "pass" : "fail");
    esc(b, m->run_status ? m->run_status : "n/a");
    st_buf_printf(b, "</span>, %s s, peak memory %s MiB", s, r);
    if (m->threads > 0) st_buf_printf(b, ", %d threads", m->threads);
    st_buf_puts(b, ".</p>\n");
    st_buf_puts(b, "<table><thead><tr><th>step</th><th>status</th><th class=\"n\">rows in</th><th class=\"n\">rows out</th>"
                   "<th class=\"n\">seconds</th><th class=\"n\">peak memory (MiB)</th><th>note</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < m->n_steps; i++) {
        const st_report_step *st = &m->steps[i];
        char ri[48], ro[48], sec[48], mem[48];
        fmt_rows(ri, st->rows_in);
        fmt_rows(ro, st->rows_out);
        fmt_secs(sec, st->seconds);
        fmt_mib(mem, st->peak_rss_bytes);
        const char *cls = !st->status ? "other" : !strcmp(st->status, "ok") ? "pass"
                                            : !strcmp(st->status, "failed") ? "fail" : "other";
        st_buf_puts(b, "<tr><td>");
        esc(b, st->name);
        st_buf_printf(b, "</td><td><span class=\"badge %s\">", cls);
        esc(b, st->status);
        st_buf_printf(b, "</span></td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                         "<td class=\"n\">%s</td><td>",
                      ri, ro, sec, mem);
        esc(b, st->note);
        st_buf_puts(b, "</td></tr>\n");
    }
    st_buf_puts(b, "</tbody></table>\n</section>\n");
}

st_status st_report_render_html(const st_report_model *m, st_buf *b, st_error *err)
{
    const char **cols = m->n_personas ? calloc(m->n_personas, sizeof *cols) : NULL;
    if (m->n_personas && !cols) return st_error_set(err, ST_ERR_NOMEM, "report: out of memory");
    persona_colors(m, cols);
    st_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>strata: customer personas dashboard</title>\n<style>");
    st_buf_puts(b, CSS);
    st_buf_puts(b, "</style>\n</head>\n<body>\n<header>\n<h1>Customer personas: sales dashboard</h1>\n<p>");
    if (m->first_period > 0) {
        char a[16], z[16];
        period_label(a, m->first_period);
        period_label(z, m->last_period);
        st_buf_printf(b, "Data from %s to %s. ", a, z);
    }
    if (m->has_run && m->run_started) {
        st_buf_puts(b, "Built by pipeline run started ");
        esc(b, m->run_started);
        st_buf_puts(b, ".");
    }
    st_buf_puts(b, "</p>\n</header>\n<nav><a href=\"#kpis\">Headline</a><a href=\"#personas\">Personas</a>"
                   "<a href=\"#customers\">Customers</a><a href=\"#at-risk\">At risk</a>"
                   "<a href=\"#countries\">Countries</a><a href=\"#sales-trend\">Sales trend</a>"
                   "<a href=\"#profiles\">Profiles</a><a href=\"#k\">Choosing k</a><a href=\"#migration\">Migration</a>"
                   "<a href=\"#quality\">Data quality</a><a href=\"#lineage\">Lineage</a><a href=\"#run\">Run</a></nav>\n"
                   "<main>\n");
    if (m->n_notes) {
        st_buf_puts(b, "<section><h2>Warnings while reading the warehouse</h2><ul>\n");
        for (size_t i = 0; i < m->n_notes; i++) {
            st_buf_puts(b, "<li>");
            esc(b, m->notes[i]);
            st_buf_puts(b, "</li>\n");
        }
        st_buf_puts(b, "</ul></section>\n");
    }
    sec_kpis(b, m);
    sec_personas(b, m, cols);
    sec_customers(b, m, cols);
    sec_at_risk(b, m, cols);
    sec_countries(b, m, cols);
    sec_sales_trend(b, m, cols);
    sec_clusters(b, m, cols);
    sec_k(b, m);
    sec_migration(b, m, cols);
    sec_quality(b, m);
    sec_lineage(b, m);
    sec_run(b, m);
    st_buf_puts(b, "</main>\n<footer>Generated by strata from the warehouse files. This page is self-contained: "
                   "it uses no scripts and loads nothing from the network.</footer>\n</body>\n</html>\n");
    free(cols);
    if (!st_buf_ok(b)) return st_error_set(err, ST_ERR_NOMEM, "report: out of memory building the HTML page");
    return ST_OK;
}
