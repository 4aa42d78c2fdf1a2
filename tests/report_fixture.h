/*
 * report_fixture.h: a hand-filled st_report_model shaped like a real
 * warehouse (four personas, three features, k = 2..7, 24 months, a
 * quality suite, the lineage of every table, a run log), and a small
 * warehouse of layer files written with st_writer (fx_build_warehouse),
 * shared by test_report.c and test_dashboard_browser.c. Everything is
 * fixed or comes from a fixed LCG, so the pages are deterministic.
 */
#ifndef STRATA_TEST_REPORT_FIXTURE_H
#define STRATA_TEST_REPORT_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/stat.h>

#include "strata/column.h"
#include "strata/file.h"
#include "strata/report.h"

static char *fx_dup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static double fx_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void fx_table(st_report_model *m, const char *layer, const char *table, int64_t rows, const char *in1,
                     const char *in2, const char *in3)
{
    st_report_table *t = &m->tables[m->n_tables++];
    t->layer = fx_dup(layer);
    t->table = fx_dup(table);
    t->n_rows = rows;
    const char *ins[3] = {in1, in2, in3};
    t->inputs = calloc(3, sizeof *t->inputs);
    for (int i = 0; i < 3; i++)
        if (ins[i]) t->inputs[t->n_inputs++] = fx_dup(ins[i]);
}

/* The customer views: six customers, two at risk, three countries,
 * monthly sales per persona. */
static void fx_customer(st_report_customer *c, int64_t id, const char *name, const char *country, size_t persona,
                        size_t prev, int64_t recent, int64_t prior, int64_t total)
{
    c->customer_id = id;
    c->name = fx_dup(name);
    c->country = fx_dup(country);
    c->is_known = *name != '\0';
    c->persona = persona;
    c->prev_persona = prev;
    c->recent_volume = recent;
    c->prior_volume = prior;
    c->total_volume = total;
}

static void fx_fill_customers(st_report_model *m, uint64_t *seed)
{
    m->sales_mix = calloc(24 * 4, sizeof(int64_t));
    for (int p = 0; p < 24; p++)
        for (int i = 0; i < 3; i++) m->sales_mix[p * 4 + i] = (int64_t)(1000 * (3 - i) * (1 + fx_rand(seed)));
    m->has_customers = true;
    m->last_month = 202312;
    m->recent_from = 202310;
    m->prev_month = 202309;
    m->n_top = 4;
    m->top = calloc(4, sizeof *m->top);
    fx_customer(&m->top[0], 22, "Heather Leacock", "United States", 0, 0, 64850, 60000, 1027247);
    fx_customer(&m->top[1], 57, "Luis Rojas", "Chile", 0, 0, 47698, 51000, 740414);
    fx_customer(&m->top[2], 13, "Marta Ramos", "Brazil", 1, 1, 3916, 3000, 36048);
    fx_customer(&m->top[3], 94, "", "", 2, 1, 1200, 900, 24000);
    m->n_at_risk = 2;
    m->n_at_risk_total = 2;
    m->at_risk = calloc(2, sizeof *m->at_risk);
    fx_customer(&m->at_risk[0], 30, "Edward Francis", "Canada", 1, 0, 4000, 38000, 630439);
    fx_customer(&m->at_risk[1], 81, "", "", 3, 1, 0, 2500, 88583);
    m->at_risk_lost_volume = 34000 + 2500;
    m->n_listed = 3;
    m->n_known_total = 3;
    m->listed = calloc(3, sizeof *m->listed);
    fx_customer(&m->listed[0], 22, "Heather Leacock", "United States", 0, 0, 64850, 60000, 1027247);
    fx_customer(&m->listed[1], 13, "Marta Ramos", "Brazil", 1, 1, 3916, 3000, 36048);
    fx_customer(&m->listed[2], 30, "Edward Francis", "Canada", 1, 0, 4000, 38000, 630439);
    static const char *const cn[3] = {"United States", "Brazil", "unknown"};
    static const int64_t cb[3][4] = {{3, 4, 2, 1}, {1, 3, 2, 1}, {2, 1, 4, 3}};
    m->n_countries = 3;
    m->countries = calloc(3, sizeof *m->countries);
    for (int c = 0; c < 3; c++) {
        m->countries[c].name = fx_dup(cn[c]);
        m->countries[c].by_persona = calloc(4, sizeof(int64_t));
        memcpy(m->countries[c].by_persona, cb[c], sizeof cb[c]);
        for (int i = 0; i < 4; i++) m->countries[c].customers += cb[c][i];
        m->countries[c].recent_volume = 1000 * (3 - c);
    }
}

static void fx_fill_model(st_report_model *m)
{
    static const char *const pn[4] = {"Champions", "Loyalists", "Potentials", "Not Active"};
    static const int64_t pc[4] = {41, 33, 48, 59};
    static const int64_t pp[4] = {310, 402, 236, 471};
    static const int64_t pv[4] = {812345, 301220, 98110, 0};
    static const double pr[4] = {0.042, 0.087, 0.151, NAN};
    uint64_t seed = 7;
    st_report_model_init(m);
    m->has_kpis = true;
    m->n_customers = 64;
    m->n_known = 59;
    m->n_orphan = 5;
    m->n_active_periods = 948;
    m->sales_volume = 1211675;
    m->foc_volume = 96532;
    m->first_period = 202201;
    m->last_period = 202312;
    m->n_personas = 4;
    m->personas = calloc(4, sizeof *m->personas);
    for (int i = 0; i < 4; i++) {
        m->personas[i].name = fx_dup(pn[i]);
        m->personas[i].customers = pc[i];
        m->personas[i].customer_periods = pp[i];
        m->personas[i].sales_volume = pv[i];
        m->personas[i].foc_volume = pv[i] / 12;
        m->personas[i].mean_foc_ratio = pr[i];
    }
    m->n_persona_customers = 64;
    m->persona_rule = fx_dup("Clusters ranked by mean total_sold_quantity: highest = Champions; of the rest, the "
                             "most frequent buyers (total_sold_transactions) = Loyalists; the others = Potentials; "
                             "inactive customer-months = Not Active.");
    static const char *const feats[3] = {"total_sold_quantity", "foc_ratio", "total_sold_transactions"};
    m->n_features = 3;
    m->features = calloc(3, sizeof *m->features);
    for (int f = 0; f < 3; f++) m->features[f] = fx_dup(feats[f]);
    static const double cv[3][3] = {{2620.4, 0.042, 18.2}, {749.3, 0.087, 11.5}, {415.7, 0.151, 4.1}};
    m->n_clusters = 3;
    m->clusters = calloc(3, sizeof *m->clusters);
    for (int c = 0; c < 3; c++) {
        m->clusters[c].cluster = c;
        m->clusters[c].persona = fx_dup(pn[c]);
        m->clusters[c].size = pp[c];
        m->clusters[c].inertia_share = (c + 1) / 6.0;
        m->clusters[c].values = calloc(3, sizeof(double));
        for (int f = 0; f < 3; f++) m->clusters[c].values[f] = cv[c][f];
    }
    m->n_points = 600;
    m->n_points_total = 948;
    m->pt_x = calloc(600, sizeof(double));
    m->pt_y = calloc(600, sizeof(double));
    m->pt_persona = calloc(600, sizeof(size_t));
    for (size_t i = 0; i < 600; i++) {
        size_t p = i % 3;
        m->pt_persona[i] = p;
        m->pt_x[i] = cv[p][0] * exp(1.6 * (fx_rand(&seed) - 0.5) * 2);
        m->pt_y[i] = fmax(0, cv[p][1] + 0.05 * (fx_rand(&seed) - 0.5));
    }
    m->scatter_x = fx_dup("total_sold_quantity");
    m->scatter_y = fx_dup("foc_ratio");
    m->n_k = 6;
    m->k = calloc(6, sizeof(int32_t));
    m->inertia = calloc(6, sizeof(double));
    m->silhouette = calloc(6, sizeof(double));
    static const double in[6] = {1840.2, 1011.7, 702.4, 598.3, 530.1, 488.9};
    static const double si[6] = {0.48, 0.53, 0.44, 0.41, 0.38, 0.36};
    for (int i = 0; i < 6; i++) {
        m->k[i] = i + 2;
        m->inertia[i] = in[i];
        m->silhouette[i] = si[i];
    }
    m->chosen_k = 3;
    m->knee_k = 4;
    m->n_trans_labels = 4;
    m->trans_labels = calloc(4, sizeof(char *));
    for (int i = 0; i < 4; i++) m->trans_labels[i] = fx_dup(pn[i]);
    static const int64_t tc[16] = {221, 40, 12, 25, 35, 260, 51, 44, 9, 48, 120, 41, 20, 39, 37, 360};
    m->trans_counts = calloc(16, sizeof(int64_t));
    memcpy(m->trans_counts, tc, sizeof tc);
    m->n_periods = 24;
    m->periods = calloc(24, sizeof(int32_t));
    m->mix = calloc(24 * 4, sizeof(int64_t));
    for (int p = 0; p < 24; p++) {
        m->periods[p] = (2022 + p / 12) * 100 + p % 12 + 1;
        int64_t rest = 64;
        for (int i = 0; i < 3; i++) {
            int64_t v = 8 + (int64_t)(fx_rand(&seed) * 12);
            m->mix[p * 4 + i] = v;
            rest -= v;
        }
        m->mix[p * 4 + 3] = rest;
    }
    fx_fill_customers(m, &seed);
    m->has_quality = true;
    m->n_expectations = 6;
    m->expectations = calloc(6, sizeof *m->expectations);
    static const char *const en[6][6] = {
        {"row_count_between", "bronze.raw_sales_quantity", "", "error", "pass", "rows 5,012"},
        {"not_null", "silver.stg_sales_transactions", "customer_id", "error", "pass", ""},
        {"unique", "silver.stg_customers", "customer_id", "error", "pass", ""},
        {"values_between", "silver.stg_sales_transactions", "quantity", "warn", "warn", "3 rows above 1,000,000"},
        {"match_regex", "silver.stg_customers", "email", "warn", "warn", "2 invalid e-mail addresses"},
        {"rejects_share_below", "silver.stg_rejects", "", "error", "fail", "share 6.1% > 5%"}};
    static const int64_t ef[6] = {0, 0, 0, 3, 2, 61};
    for (int i = 0; i < 6; i++) {
        st_report_expectation *e = &m->expectations[i];
        e->name = fx_dup(en[i][0]);
        e->table = fx_dup(en[i][1]);
        e->column = fx_dup(en[i][2]);
        e->severity = fx_dup(en[i][3]);
        e->status = fx_dup(en[i][4]);
        e->detail = fx_dup(en[i][5]);
        e->failing_rows = ef[i];
    }
    m->has_rejects = true;
    m->n_rejects = 3;
    m->rejects = calloc(3, sizeof *m->rejects);
    static const char *const rn[3] = {"bad_quantity", "bad_material_code", "year_out_of_range"};
    static const int64_t rc[3] = {1204, 310, 12};
    for (int i = 0; i < 3; i++) {
        m->rejects[i].name = fx_dup(rn[i]);
        m->rejects[i].n = rc[i];
    }
    m->tables = calloc(16, sizeof *m->tables);
    fx_table(m, "bronze", "raw_customer", 59, NULL, NULL, NULL);
    fx_table(m, "bronze", "raw_free_of_charge_quantity", 1800, NULL, NULL, NULL);
    fx_table(m, "bronze", "raw_sales_quantity", 5012, NULL, NULL, NULL);
    fx_table(m, "silver", "stg_customers", 59, "bronze.raw_customer", NULL, NULL);
    fx_table(m, "silver", "stg_foc_transactions", 1790, "bronze.raw_free_of_charge_quantity", NULL, NULL);
    fx_table(m, "silver", "stg_rejects", 1526, "bronze.raw_sales_quantity", "bronze.raw_free_of_charge_quantity",
             "bronze.raw_customer");
    fx_table(m, "silver", "stg_sales_transactions", 3496, "bronze.raw_sales_quantity", NULL, NULL);
    fx_table(m, "gold", "int_customer_analytics", 948, "gold.int_transactions_unified", NULL, NULL);
    fx_table(m, "gold", "int_transactions_unified", 4210, "silver.stg_sales_transactions",
             "silver.stg_foc_transactions", NULL);
    fx_table(m, "platinum", "dim_customers", 64, "silver.stg_customers", "gold.int_customer_analytics", NULL);
    fx_table(m, "platinum", "fct_transactions", 948, "gold.int_customer_analytics", "platinum.ml_centroids", NULL);
    fx_table(m, "platinum", "marts_customer_summary", 1419, "platinum.fct_transactions", NULL, NULL);
    fx_table(m, "platinum", "marts_persona_transitions", 16, "platinum.marts_customer_summary", NULL, NULL);
    fx_table(m, "platinum", "ml_centroids", 3, "gold.int_customer_analytics", NULL, NULL);
    fx_table(m, "platinum", "ml_k_selection", 6, "gold.int_customer_analytics", NULL, NULL);
    m->has_run = true;
    m->run_id = fx_dup("20260101T120000Z-4242");
    m->run_started = fx_dup("2026-01-01T12:00:00Z");
    m->run_status = fx_dup("ok");
    m->threads = 2;
    m->run_seconds = 1.84;
    m->run_peak_rss_bytes = 48.5 * 1048576;
    static const char *const sn[7] = {"ingest", "validate", "stage", "intermediate", "ml", "marts", "report"};
    m->n_steps = 7;
    m->steps = calloc(7, sizeof *m->steps);
    for (int i = 0; i < 7; i++) {
        m->steps[i].name = fx_dup(sn[i]);
        m->steps[i].status = fx_dup(i == 1 ? "skipped" : "ok");
        m->steps[i].rows_in = 5012.0 - i * 500;
        m->steps[i].rows_out = 4800.0 - i * 500;
        m->steps[i].seconds = 0.1 * (i + 1);
        m->steps[i].peak_rss_bytes = (20.0 + i * 4) * 1048576;
        m->steps[i].note = fx_dup("");
    }
}


/* ---- a small warehouse on disk, written with st_writer (Criterion
 * assertions: include after criterion.h) ---- */

static void fx_write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
}


typedef struct fx_wcol {
    const char *name;
    st_type type;
    const char *s[8];     /* STR values (NULL = end) */
    double d[8];          /* numeric values */
} fx_wcol;

static void fx_write_table(const char *wh, const char *layer, const char *table, const fx_wcol *cols, size_t n_cols,
                        size_t n_rows, const char *const *inputs, size_t n_inputs, const st_kv *kv, size_t n_kv)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", wh, layer);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.strata", dir, table);
    st_field fields[12];
    st_column c[12];
    for (size_t j = 0; j < n_cols; j++) {
        fields[j] = (st_field){cols[j].name, cols[j].type, false, NULL};
        st_column_init(&c[j], cols[j].type);
        for (size_t i = 0; i < n_rows; i++) {
            st_status s = ST_OK;
            switch (cols[j].type) {
            case ST_TYPE_BOOL: s = st_column_push_bool(&c[j], cols[j].d[i] != 0); break;
            case ST_TYPE_I32: s = st_column_push_i32(&c[j], (int32_t)cols[j].d[i]); break;
            case ST_TYPE_I64: s = st_column_push_i64(&c[j], (int64_t)cols[j].d[i]); break;
            case ST_TYPE_F64: s = st_column_push_f64(&c[j], cols[j].d[i]); break;
            default: s = st_column_push_str(&c[j], cols[j].s[i], strlen(cols[j].s[i])); break;
            }
            cr_assert_eq(s, ST_OK);
        }
    }
    st_file_meta meta = {layer, table, inputs, n_inputs, "", 1, kv, n_kv};
    st_write_opts opts = {0};
    opts.no_fsync = true;
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, fields, n_cols, &meta, &opts, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_write(w, c, 0, n_rows, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (size_t j = 0; j < n_cols; j++) st_column_free(&c[j]);
}

static void fx_build_warehouse(const char *wh)
{
    const fx_wcol dim[] = {{"customer_id", ST_TYPE_I64, {0}, {1, 2, 3}}, {"is_known", ST_TYPE_BOOL, {0}, {1, 1, 0}}};
    const char *in_dim[] = {"silver.stg_customers"};
    fx_write_table(wh, "platinum", "dim_customers", dim, 2, 3, in_dim, 1, NULL, 0);
    const fx_wcol fct[] = {{"customer_id", ST_TYPE_I64, {0}, {1, 1, 2, 3}},
                        {"period_key", ST_TYPE_I32, {0}, {202401, 202402, 202401, 202402}},
                        {"total_sold_quantity", ST_TYPE_I64, {0}, {100, 200, 5, 50}},
                        {"total_foc_quantity", ST_TYPE_I64, {0}, {10, 0, 5, 1}},
                        {"foc_ratio", ST_TYPE_F64, {0}, {0.1, 0.0, 0.5, 0.02}},
                        {"persona", ST_TYPE_STR, {"Champions", "Champions", "Potentials", "Loyalists"}, {0}}};
    const char *in_fct[] = {"gold.int_customer_analytics", "platinum.ml_centroids"};
    fx_write_table(wh, "platinum", "fct_transactions", fct, 6, 4, in_fct, 2, NULL, 0);
    const fx_wcol sum[] = {
        {"customer_id", ST_TYPE_I64, {0}, {1, 1, 2, 2, 3, 3}},
        {"period_key", ST_TYPE_I32, {0}, {202401, 202402, 202401, 202402, 202401, 202402}},
        {"total_sold_quantity", ST_TYPE_I64, {0}, {100, 200, 5, 0, 0, 50}},
        {"total_foc_quantity", ST_TYPE_I64, {0}, {10, 0, 5, 0, 0, 1}},
        {"foc_ratio", ST_TYPE_F64, {0}, {0.1, 0.0, 0.5, 0, 0, 0.02}},
        {"persona", ST_TYPE_STR, {"Champions", "Champions", "Potentials", "Not Active", "Not Active", "Loyalists"}, {0}},
        {"is_active", ST_TYPE_BOOL, {0}, {1, 1, 1, 0, 0, 1}}};
    const char *in_sum[] = {"platinum.fct_transactions"};
    fx_write_table(wh, "platinum", "marts_customer_summary", sum, 7, 6, in_sum, 1, NULL, 0);
    const fx_wcol tr[] = {{"from_persona", ST_TYPE_STR, {"Champions", "Potentials", "Not Active"}, {0}},
                       {"to_persona", ST_TYPE_STR, {"Champions", "Not Active", "Loyalists"}, {0}},
                       {"n", ST_TYPE_I64, {0}, {1, 1, 1}}};
    const char *in_tr[] = {"platinum.marts_customer_summary"};
    fx_write_table(wh, "platinum", "marts_persona_transitions", tr, 3, 3, in_tr, 1, NULL, 0);
    const fx_wcol cen[] = {{"cluster", ST_TYPE_I32, {0}, {0, 1, 2}},
                        {"persona", ST_TYPE_STR, {"Potentials", "Champions", "Loyalists"}, {0}},
                        {"size", ST_TYPE_I64, {0}, {1, 2, 1}},
                        {"inertia_share", ST_TYPE_F64, {0}, {0.2, 0.5, 0.3}},
                        {"total_sold_quantity__scaled", ST_TYPE_F64, {0}, {-1, 1, 0}},
                        {"total_sold_quantity", ST_TYPE_F64, {0}, {5, 150, 50}},
                        {"foc_ratio__scaled", ST_TYPE_F64, {0}, {1, -1, 0}},
                        {"foc_ratio", ST_TYPE_F64, {0}, {0.5, 0.05, 0.02}}};
    const char *in_cen[] = {"gold.int_customer_analytics"};
    st_kv kv[] = {{"persona_rule", "highest volume = Champions <b>"}};
    fx_write_table(wh, "platinum", "ml_centroids", cen, 8, 3, in_cen, 1, kv, 1);
    const fx_wcol ks[] = {{"k", ST_TYPE_I32, {0}, {2, 3, 4}},
                       {"inertia", ST_TYPE_F64, {0}, {10, 5, 4}},
                       {"silhouette", ST_TYPE_F64, {0}, {0.4, 0.6, 0.5}},
                       {"calinski_harabasz", ST_TYPE_F64, {0}, {1, 2, 3}},
                       {"davies_bouldin", ST_TYPE_F64, {0}, {1, 2, 3}},
                       {"is_knee", ST_TYPE_BOOL, {0}, {0, 1, 0}},
                       {"is_chosen", ST_TYPE_BOOL, {0}, {0, 0, 1}}};
    fx_write_table(wh, "platinum", "ml_k_selection", ks, 7, 3, in_cen, 1, NULL, 0);
    const fx_wcol rej[] = {{"source_table", ST_TYPE_STR, {"raw_sales_quantity", "raw_sales_quantity", "raw_sales_quantity"}, {0}},
                        {"source_rowid", ST_TYPE_I64, {0}, {4, 9, 12}},
                        {"reason", ST_TYPE_STR, {"bad_quantity", "bad_year", "bad_quantity"}, {0}}};
    const char *in_rej[] = {"bronze.raw_sales_quantity"};
    fx_write_table(wh, "silver", "stg_rejects", rej, 3, 3, in_rej, 1, NULL, 0);
    const fx_wcol raw[] = {{"_rowid", ST_TYPE_I64, {0}, {1, 2}}};
    fx_write_table(wh, "bronze", "raw_sales_quantity", raw, 1, 2, NULL, 0, NULL, 0);
    char p[600];
    snprintf(p, sizeof p, "%s/gold", wh);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/gold/broken.strata", wh);
    fx_write_text(p, "this is not a layer file");
}

#endif
