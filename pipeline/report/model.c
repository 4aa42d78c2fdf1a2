/*
 * pipeline/report/model.c: lifecycle of st_report_model and the persona colour
 * table (strata/report.h).
 *
 * Personas keep the same colour on every chart and in every report:
 * Champions blue, Loyalists bluish green, Potentials orange, Not Active
 * grey; any other segment name takes the remaining Okabe-Ito colours in
 * the order it is met. The four colours are distinguishable with the
 * common forms of colour blindness.
 */
#include "strata/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void st_report_model_init(st_report_model *m)
{
    memset(m, 0, sizeof *m);
    m->n_customers = -1;
    m->n_known = -1;
    m->n_orphan = -1;
    m->n_active_periods = -1;
    m->run_seconds = NAN;
    m->run_peak_rss_bytes = NAN;
}

static void free_strs(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void st_report_customers_free(st_report_customer *v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].country);
    }
    free(v);
}

void st_report_model_free(st_report_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_personas; i++) free(m->personas[i].name);
    free(m->personas);
    free(m->persona_rule);
    free_strs(m->features, m->n_features);
    for (size_t i = 0; i < m->n_clusters; i++) {
        free(m->clusters[i].persona);
        free(m->clusters[i].values);
    }
    free(m->clusters);
    free(m->scatter_x);
    free(m->scatter_y);
    free(m->pt_x);
    free(m->pt_y);
    free(m->pt_persona);
    free(m->k);
    free(m->inertia);
    free(m->silhouette);
    free_strs(m->trans_labels, m->n_trans_labels);
    free(m->trans_counts);
    free(m->periods);
    free(m->mix);
    free(m->sales_mix);
    st_report_customers_free(m->listed, m->n_listed);
    st_report_customers_free(m->top, m->n_top);
    st_report_customers_free(m->at_risk, m->n_at_risk);
    for (size_t i = 0; i < m->n_countries; i++) {
        free(m->countries[i].name);
        free(m->countries[i].by_persona);
    }
    free(m->countries);
    for (size_t i = 0; i < m->n_expectations; i++) {
        st_report_expectation *e = &m->expectations[i];
        free(e->name);
        free(e->table);
        free(e->column);
        free(e->severity);
        free(e->status);
        free(e->detail);
    }
    free(m->expectations);
    for (size_t i = 0; i < m->n_rejects; i++) free(m->rejects[i].name);
    free(m->rejects);
    for (size_t i = 0; i < m->n_tables; i++) {
        free(m->tables[i].layer);
        free(m->tables[i].table);
        free_strs(m->tables[i].inputs, m->tables[i].n_inputs);
    }
    free(m->tables);
    free(m->run_id);
    free(m->run_started);
    free(m->run_status);
    for (size_t i = 0; i < m->n_steps; i++) {
        free(m->steps[i].name);
        free(m->steps[i].status);
        free(m->steps[i].note);
    }
    free(m->steps);
    free_strs(m->notes, m->n_notes);
    st_report_model_init(m);
}

static const char *const known_personas[4] = {"Champions", "Loyalists", "Potentials", "Not Active"};
static const char *const known_colors[4] = {"#0072B2", "#009E73", "#E69F00", "#999999"};
static const char *const extra_colors[5] = {"#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"};

int st_report_persona_rank(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, known_personas[i]) == 0) return i;
    return 4;
}

const char *st_report_persona_color(const char *name, size_t extra_index)
{
    int r = st_report_persona_rank(name);
    return r < 4 ? known_colors[r] : extra_colors[extra_index % 5];
}
