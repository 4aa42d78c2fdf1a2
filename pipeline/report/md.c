/*
 * pipeline/report/md.c: st_report_model -> Markdown (for terminals and pull
 * requests). The same facts as the HTML page, as tables; charts become
 * their numbers. Table cells escape '|' and line breaks so a hostile
 * name cannot break the table layout.
 */
#include "report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "svg_internal.h"

static void cell(st_buf *b, const char *s)
{
    if (!s || !*s) {
        st_buf_puts(b, " ");
        return;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '|') st_buf_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r') st_buf_puts(b, " ");
        else if (*p == '<') st_buf_puts(b, "&lt;");
        else if (*p == '>') st_buf_puts(b, "&gt;");
        else st_buf_append(b, p, 1);
    }
}

static const char *num(char out[48], double v, int dec)
{
    return st_svg_fmt_num(v, dec, out);
}

static const char *i64(char out[48], int64_t v)
{
    if (v < 0) return strcpy(out, "n/a");
    return st_svg_fmt_num((double)v, 0, out);
}

static const char *pct(char out[48], double a, double b)
{
    if (!(b > 0)) return strcpy(out, "n/a");
    char t[48];
    st_svg_fmt_num(100 * a / b, 1, t);
    snprintf(out, 48, "%.46s%%", t);
    return out;
}

static void period(st_buf *b, int32_t p)
{
    if (p > 0) st_buf_printf(b, "%04d-%02d", (int)(p / 100), (int)(p % 100));
    else st_buf_puts(b, "n/a");
}

static void na(st_buf *b, const char *what) { st_buf_printf(b, "_Not available: %s._\n\n", what); }

/* The title, the loader's warnings, then the headline numbers. */
static void md_headline(st_buf *b, const st_report_model *m)
{
    char x[48];
    st_buf_puts(b, "# Customer personas: sales dashboard\n\n");
    for (size_t i = 0; i < m->n_notes; i++) {
        st_buf_puts(b, "> warning: ");
        cell(b, m->notes[i]);
        st_buf_puts(b, "\n");
    }
    if (m->n_notes) st_buf_puts(b, "\n");

    st_buf_puts(b, "## Headline\n\n");
    if (!m->has_kpis) {
        na(b, "platinum.dim_customers / platinum.fct_transactions were not found");
    } else {
        st_buf_puts(b, "| measure | value |\n|---|---:|\n");
        st_buf_printf(b, "| customers | %s |\n", i64(x, m->n_customers));
        st_buf_printf(b, "| known customers | %s |\n", i64(x, m->n_known));
        st_buf_printf(b, "| orphan customers (not in master) | %s |\n", i64(x, m->n_orphan));
        st_buf_printf(b, "| active customer-months | %s |\n", i64(x, m->n_active_periods));
        st_buf_printf(b, "| units sold | %s |\n", i64(x, m->sales_volume));
        st_buf_printf(b, "| units free of charge | %s |\n", i64(x, m->foc_volume));
        st_buf_printf(b, "| free-of-charge share of units shipped | %s |\n",
                      pct(x, (double)m->foc_volume, (double)m->sales_volume + (double)m->foc_volume));
        st_buf_puts(b, "| period | ");
        period(b, m->first_period);
        st_buf_puts(b, " to ");
        period(b, m->last_period);
        st_buf_puts(b, " |\n\n");
    }
}

static const char *persona_name(const st_report_model *m, size_t p)
{
    return p < m->n_personas ? m->personas[p].name : "n/a";
}

/* "name (#id)", or "#id (not in master)". */
static void md_customer(st_buf *b, const st_report_customer *c)
{
    if (c->name && *c->name) {
        cell(b, c->name);
        st_buf_printf(b, " (#%lld)", (long long)c->customer_id);
    } else {
        st_buf_printf(b, "#%lld (%s)", (long long)c->customer_id, c->is_known ? "no name" : "not in master");
    }
}

static void md_customer_rows(st_buf *b, const st_report_model *m, const st_report_customer *v, size_t n)
{
    char x[48], y[48];
    st_buf_puts(b, "| # | customer | country | persona now | persona before | units, last months | units, whole period |\n"
                   "|---:|---|---|---|---|---:|---:|\n");
    for (size_t i = 0; i < n; i++) {
        const st_report_customer *c = &v[i];
        st_buf_printf(b, "| %zu | ", i + 1);
        md_customer(b, c);
        st_buf_puts(b, " | ");
        cell(b, c->country && *c->country ? c->country : "unknown");
        st_buf_puts(b, " | ");
        cell(b, persona_name(m, c->persona));
        st_buf_puts(b, " | ");
        cell(b, persona_name(m, c->prev_persona));
        st_buf_printf(b, " | %s | %s |\n", i64(x, c->recent_volume), i64(y, c->total_volume));
    }
    st_buf_puts(b, "\n");
}

/* Top customers per persona, at-risk customers, every known customer. */
static void md_customers(st_buf *b, const st_report_model *m)
{
    char x[48], y[48], z[48];
    st_buf_puts(b, "## Top customers per persona\n\n");
    if (!m->has_customers) {
        na(b, "platinum.marts_customer_summary / platinum.dim_customers were not found");
        return;
    }
    st_buf_puts(b, "Persona now: the persona of ");
    period(b, m->last_month);
    st_buf_puts(b, "; persona before: of ");
    period(b, m->prev_month);
    st_buf_puts(b, "; units, last months: ");
    period(b, m->recent_from);
    st_buf_puts(b, " to ");
    period(b, m->last_month);
    st_buf_puts(b, ".\n\n");
    for (size_t p = 0; p < m->n_personas; p++) {
        size_t first = 0, n = 0;
        for (size_t i = 0; i < m->n_top; i++)
            if (m->top[i].persona == p && !n++) first = i;
        if (!n) continue;
        st_buf_puts(b, "### Top ");
        cell(b, m->personas[p].name);
        st_buf_puts(b, "\n\n");
        md_customer_rows(b, m, m->top + first, n);
    }
    st_buf_puts(b, "## Customers at risk (persona fell, units fell)\n\n");
    st_buf_printf(b, "%s customers fell to a lower persona and bought less; %s units less in the last months than before.\n\n",
                  i64(x, m->n_at_risk_total), num(y, (double)m->at_risk_lost_volume, 0));
    if (m->n_at_risk) {
        st_buf_puts(b, "| # | customer | country | persona before | persona now | units before | units, last months | lost units |\n"
                       "|---:|---|---|---|---|---:|---:|---:|\n");
        for (size_t i = 0; i < m->n_at_risk; i++) {
            const st_report_customer *c = &m->at_risk[i];
            st_buf_printf(b, "| %zu | ", i + 1);
            md_customer(b, c);
            st_buf_puts(b, " | ");
            cell(b, c->country && *c->country ? c->country : "unknown");
            st_buf_puts(b, " | ");
            cell(b, persona_name(m, c->prev_persona));
            st_buf_puts(b, " | ");
            cell(b, persona_name(m, c->persona));
            st_buf_printf(b, " | %s | %s | %s |\n", i64(x, c->prior_volume), i64(y, c->recent_volume),
                          num(z, (double)(c->prior_volume - c->recent_volume), 0));
        }
        st_buf_puts(b, "\n");
    }
    st_buf_printf(b, "## Known customers (%s, %s listed)\n\n", i64(x, m->n_known_total), i64(y, (int64_t)m->n_listed));
    md_customer_rows(b, m, m->listed, m->n_listed);
}

/* Customers per country by last-month persona. */
static void md_countries(st_buf *b, const st_report_model *m)
{
    char x[48];
    st_buf_puts(b, "## Personas by country (customers, last month)\n\n");
    if (!m->has_customers || m->n_countries == 0) {
        na(b, "platinum.dim_customers was not found");
        return;
    }
    st_buf_puts(b, "| country | customers |");
    for (size_t p = 0; p < m->n_personas; p++) {
        st_buf_puts(b, " ");
        cell(b, m->personas[p].name);
        st_buf_puts(b, " |");
    }
    st_buf_puts(b, " units, last months |\n|---|---:|");
    for (size_t p = 0; p <= m->n_personas; p++) st_buf_puts(b, "---:|");
    st_buf_puts(b, "\n");
    for (size_t c = 0; c < m->n_countries; c++) {
        const st_report_country *co = &m->countries[c];
        st_buf_puts(b, "| ");
        cell(b, co->name);
        st_buf_printf(b, " | %s |", i64(x, co->customers));
        for (size_t p = 0; p < m->n_personas; p++) st_buf_printf(b, " %s |", i64(x, co->by_persona[p]));
        st_buf_printf(b, " %s |\n", i64(x, co->recent_volume));
    }
    st_buf_puts(b, "\n");
}

/* A per-period x persona table (vals[p * n_personas + i]). */
static void md_period_table(st_buf *b, const st_report_model *m, const int64_t *vals)
{
    char x[48];
    st_buf_puts(b, "| month |");
    for (size_t i = 0; i < m->n_personas; i++) {
        st_buf_puts(b, " ");
        cell(b, m->personas[i].name);
        st_buf_puts(b, " |");
    }
    st_buf_puts(b, "\n|---|");
    for (size_t i = 0; i < m->n_personas; i++) st_buf_puts(b, "---:|");
    st_buf_puts(b, "\n");
    for (size_t p = 0; p < m->n_periods; p++) {
        st_buf_puts(b, "| ");
        period(b, m->periods[p]);
        st_buf_puts(b, " |");
        for (size_t i = 0; i < m->n_personas; i++) st_buf_printf(b, " %s |", i64(x, vals[p * m->n_personas + i]));
        st_buf_puts(b, "\n");
    }
    st_buf_puts(b, "\n");
}

static void md_sales_trend(st_buf *b, const st_report_model *m)
{
    st_buf_puts(b, "## Monthly sales by persona (units sold)\n\n");
    if (!m->n_periods || !m->n_personas || !m->sales_mix) {
        na(b, "platinum.marts_customer_summary was not found");
        return;
    }
    md_period_table(b, m, m->sales_mix);
}

/* The persona table. */
static void md_personas(st_buf *b, const st_report_model *m)
{
    char x[48], y[48], z[48];
    st_buf_puts(b, "## Personas\n\n");
    if (m->n_personas == 0) {
        na(b, "platinum.fct_transactions / marts_customer_summary were not found");
    } else {
        double tot = 0;
        for (size_t i = 0; i < m->n_personas; i++) tot += (double)m->personas[i].sales_volume;
        st_buf_puts(b, "| persona | customers | % customers | customer-months | sales volume | % volume | mean foc_ratio |\n"
                       "|---|---:|---:|---:|---:|---:|---:|\n");
        for (size_t i = 0; i < m->n_personas; i++) {
            const st_report_persona *p = &m->personas[i];
            char a[48], c[48], d[48], e[48];
            st_buf_puts(b, "| ");
            cell(b, p->name);
            st_buf_printf(b, " | %s | %s | %s | %s | %s | %s |\n", i64(x, p->customers),
                          pct(y, (double)p->customers, (double)m->n_persona_customers), i64(z, p->customer_periods),
                          i64(a, p->sales_volume), pct(c, (double)p->sales_volume, tot), num(d, p->mean_foc_ratio, 3));
            (void)e;
        }
        st_buf_puts(b, "\n");
    }
}

/* The naming rule and the cluster centres in original units. */
static void md_clusters(st_buf *b, const st_report_model *m)
{
    char x[48], y[48];
    st_buf_puts(b, "Persona rule: ");
    cell(b, m->persona_rule ? m->persona_rule : "n/a");
    st_buf_puts(b, "\n\n## Cluster centres (original units)\n\n");
    if (m->n_clusters == 0) {
        na(b, "platinum.ml_centroids was not found");
    } else {
        st_buf_puts(b, "| cluster | persona | customer-months | share of inertia |");
        for (size_t f = 0; f < m->n_features; f++) {
            st_buf_puts(b, " ");
            cell(b, m->features[f]);
            st_buf_puts(b, " |");
        }
        st_buf_puts(b, "\n|---:|---|---:|---:|");
        for (size_t f = 0; f < m->n_features; f++) st_buf_puts(b, "---:|");
        st_buf_puts(b, "\n");
        for (size_t c = 0; c < m->n_clusters; c++) {
            const st_report_cluster *cl = &m->clusters[c];
            st_buf_printf(b, "| %d | ", (int)cl->cluster);
            cell(b, cl->persona);
            st_buf_printf(b, " | %s | %s |", i64(x, cl->size), pct(y, cl->inertia_share, 1));
            for (size_t f = 0; f < m->n_features; f++) {
                double v = cl->values ? cl->values[f] : NAN;
                st_buf_printf(b, " %s |", num(x, v, fabs(v) >= 100 ? 0 : 3));
            }
            st_buf_puts(b, "\n");
        }
        st_buf_puts(b, "\n");
    }
}

/* The k-selection table. */
static void md_k(st_buf *b, const st_report_model *m)
{
    char x[48], y[48];
    st_buf_puts(b, "## Choosing k\n\n");
    if (m->n_k == 0) {
        na(b, "platinum.ml_k_selection was not found");
    } else {
        st_buf_puts(b, "| k | inertia | silhouette | |\n|---:|---:|---:|---|\n");
        for (size_t i = 0; i < m->n_k; i++) {
            st_buf_printf(b, "| %d | %s | %s | %s%s |\n", (int)m->k[i], num(x, m->inertia[i], 2),
                          num(y, m->silhouette[i], 3), m->k[i] == m->chosen_k ? "chosen " : "",
                          m->k[i] == m->knee_k ? "knee" : "");
        }
        st_buf_puts(b, "\n");
    }
}

/* The transition matrix and the persona mix per month. */
static void md_migration(st_buf *b, const st_report_model *m)
{
    char x[48];
    st_buf_puts(b, "## Persona migration (row: before, column: next month)\n\n");
    if (m->n_trans_labels == 0) {
        na(b, "platinum.marts_persona_transitions was not found");
    } else {
        size_t n = m->n_trans_labels;
        st_buf_puts(b, "| from \\ to |");
        for (size_t j = 0; j < n; j++) {
            st_buf_puts(b, " ");
            cell(b, m->trans_labels[j]);
            st_buf_puts(b, " |");
        }
        st_buf_puts(b, "\n|---|");
        for (size_t j = 0; j < n; j++) st_buf_puts(b, "---:|");
        st_buf_puts(b, "\n");
        for (size_t i = 0; i < n; i++) {
            st_buf_puts(b, "| ");
            cell(b, m->trans_labels[i]);
            st_buf_puts(b, " |");
            for (size_t j = 0; j < n; j++) st_buf_printf(b, " %s |", i64(x, m->trans_counts[i * n + j]));
            st_buf_puts(b, "\n");
        }
        st_buf_puts(b, "\n");
    }
    if (m->n_periods && m->n_personas) {
        st_buf_puts(b, "Persona mix per month (customers):\n\n");
        md_period_table(b, m, m->mix);
    }
}

/* Every expectation, then the rejected rows by reason. */
static void md_quality(st_buf *b, const st_report_model *m)
{
    char x[48];
    st_buf_puts(b, "## Data quality\n\n");
    if (!m->has_quality) {
        na(b, "quality/results.json was not found");
    } else {
        st_buf_puts(b, "| result | check | table | column | severity | failing rows | detail |\n|---|---|---|---|---|---:|---|\n");
        for (size_t i = 0; i < m->n_expectations; i++) {
            const st_report_expectation *e = &m->expectations[i];
            static const char *const seps[] = {"| **", "** | ", " | ", " | ", " | "};
            const char *const vals[] = {e->status, e->name, e->table, e->column, e->severity};
            st_buf_put_fields(b, seps, vals, 5, cell);
            st_buf_printf(b, " | %s | ", i64(x, e->failing_rows));
            cell(b, e->detail);
            st_buf_puts(b, " |\n");
        }
        st_buf_puts(b, "\n");
    }
    if (!m->has_rejects) {
        na(b, "silver.stg_rejects was not found");
    } else {
        st_buf_puts(b, "| reject reason | rows |\n|---|---:|\n");
        for (size_t i = 0; i < m->n_rejects; i++) {
            st_buf_puts(b, "| ");
            cell(b, m->rejects[i].name);
            st_buf_printf(b, " | %s |\n", i64(x, m->rejects[i].n));
        }
        st_buf_puts(b, "\n");
    }
}

/* Every layer file and what it is built from. */
static void md_lineage(st_buf *b, const st_report_model *m)
{
    char x[48];
    st_buf_puts(b, "## Lineage\n\n");
    if (m->n_tables == 0) {
        na(b, "no layer files were found");
    } else {
        st_buf_puts(b, "| layer | table | rows | built from |\n|---|---|---:|---|\n");
        for (size_t i = 0; i < m->n_tables; i++) {
            const st_report_table *t = &m->tables[i];
            st_buf_puts(b, "| ");
            cell(b, t->layer);
            st_buf_puts(b, " | ");
            cell(b, t->table);
            st_buf_printf(b, " | %s | ", i64(x, t->n_rows));
            for (size_t k = 0; k < t->n_inputs; k++) {
                if (k) st_buf_puts(b, ", ");
                cell(b, t->inputs[k]);
            }
            st_buf_puts(b, " |\n");
        }
        st_buf_puts(b, "\n");
    }
}

/* The run log, step by step. */
static void md_run(st_buf *b, const st_report_model *m)
{
    char x[48], y[48], z[48];
    st_buf_puts(b, "## Pipeline run\n\n");
    if (!m->has_run) {
        na(b, "_runs/latest.json was not found");
    } else {
        st_buf_puts(b, "Run ");
        cell(b, m->run_id ? m->run_id : "n/a");
        st_buf_puts(b, " started ");
        cell(b, m->run_started ? m->run_started : "n/a");
        st_buf_puts(b, ", status ");
        cell(b, m->run_status ? m->run_status : "n/a");
        st_buf_printf(b, ", %s s, peak memory %s MiB.\n\n", num(x, m->run_seconds, 3),
                      num(y, m->run_peak_rss_bytes / 1048576.0, 1));
        st_buf_puts(b, "| step | status | rows in | rows out | seconds | peak MiB |\n|---|---|---:|---:|---:|---:|\n");
        for (size_t i = 0; i < m->n_steps; i++) {
            const st_report_step *s = &m->steps[i];
            char a[48];
            st_buf_puts(b, "| ");
            cell(b, s->name);
            st_buf_puts(b, " | ");
            cell(b, s->status);
            st_buf_printf(b, " | %s | %s | %s | %s |\n", num(x, s->rows_in, 0), num(y, s->rows_out, 0),
                          num(z, s->seconds, 3), num(a, s->peak_rss_bytes / 1048576.0, 1));
        }
        st_buf_puts(b, "\n");
    }
}

st_status st_report_render_md(const st_report_model *m, st_buf *b, st_error *err)
{
    md_headline(b, m);
    md_personas(b, m);
    md_customers(b, m);
    md_countries(b, m);
    md_sales_trend(b, m);
    md_clusters(b, m);
    md_k(b, m);
    md_migration(b, m);
    md_quality(b, m);
    md_lineage(b, m);
    md_run(b, m);
    if (!st_buf_ok(b)) return st_error_set(err, ST_ERR_NOMEM, "report: out of memory building the Markdown");
    return ST_OK;
}
