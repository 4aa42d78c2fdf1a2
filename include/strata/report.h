/*
 * report.h: the warehouse dashboard (`strata report`, last step of
 * `strata run`).
 *
 * Two halves, kept apart so each can be tested alone:
 *
 *  1. st_report_load() reads a warehouse (layer files, quality/results.json,
 *     _runs/latest.json) into an st_report_model: plain arrays of numbers
 *     and strings, already aggregated. A missing file leaves its part of
 *     the model empty (the page says "not available"); an unreadable one
 *     adds a line to `notes` and is treated as missing.
 *  2. st_report_render() turns a model into one self-contained HTML page
 *     (inline CSS + inline SVG from pipeline/report/svg.c; no scripts, fonts,
 *     images or URLs) or into Markdown tables with the same facts. The
 *     output is a pure function of the model: no clock, no paths.
 *
 * Ownership: the model owns every pointer in it (malloc'd; freed by
 * st_report_model_free()). Tests may fill a model by hand with malloc'd
 * strings and arrays (strdup is fine).
 */
#ifndef STRATA_REPORT_H
#define STRATA_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_report_format {
    ST_REPORT_HTML = 0,   /* <warehouse>/report/index.html */
    ST_REPORT_MD = 1      /* <warehouse>/report/report.md */
} st_report_format;

/* Most scatter points drawn (a deterministic, evenly spaced sample). */
#define ST_REPORT_MAX_POINTS 2000

/* The customer views: the recent window is the last
 * ST_REPORT_RECENT_MONTHS months of the grid; lists are bounded so the
 * loader's memory does not grow with the customers. */
#define ST_REPORT_RECENT_MONTHS 3
#define ST_REPORT_TOP_N 10            /* top customers shown per persona */
#define ST_REPORT_MAX_AT_RISK 50      /* at-risk customers listed (all are counted) */
#define ST_REPORT_MAX_LISTED 500      /* known customers listed (most recent volume first) */

/* One customer as the customer views show it. */
typedef struct st_report_customer {
    int64_t customer_id;
    char *name;                 /* full_name from dim_customers; "" when unknown */
    char *country;              /* "" when unknown */
    bool is_known;              /* in the customer master */
    size_t persona;             /* last month's persona: index into personas; SIZE_MAX none */
    size_t prev_persona;        /* persona ST_REPORT_RECENT_MONTHS months earlier; SIZE_MAX none */
    int64_t recent_volume;      /* units sold in the recent window */
    int64_t prior_volume;       /* units sold in the ST_REPORT_RECENT_MONTHS months before it */
    int64_t total_volume;       /* units sold over the whole grid */
} st_report_customer;

/* Customers of one country by their last month's persona. */
typedef struct st_report_country {
    char *name;                 /* dim_customers.country; "unknown" when NULL or "" */
    int64_t customers;
    int64_t recent_volume;      /* units sold in the recent window */
    int64_t *by_persona;        /* n_personas counts */
} st_report_country;

typedef struct st_report_persona {
    char *name;
    int64_t customers;          /* distinct customers with >= 1 period in it */
    int64_t customer_periods;   /* rows (customer x period) */
    int64_t sales_volume;       /* sum of total_sold_quantity */
    int64_t foc_volume;         /* sum of total_foc_quantity */
    double mean_foc_ratio;      /* mean foc_ratio over its active rows; NaN if none */
} st_report_persona;

typedef struct st_report_cluster {
    int32_t cluster;
    char *persona;
    int64_t size;               /* customer-periods in the cluster */
    double inertia_share;       /* share of total inertia, 0..1 */
    double *values;             /* n_features centroid values, original units */
} st_report_cluster;

typedef struct st_report_expectation {
    char *name;                 /* e.g. "not_null" */
    char *table;                /* "layer.table" or "" */
    char *column;               /* "" when table-level */
    char *severity;             /* "error" / "warn" */
    char *status;               /* "pass" / "warn" / "fail" (anything else shown as is) */
    char *detail;               /* observed value or message, may be "" */
    int64_t failing_rows;       /* -1 = unknown */
} st_report_expectation;

typedef struct st_report_count {
    char *name;
    int64_t n;
} st_report_count;

typedef struct st_report_table {
    char *layer;                /* "bronze", ... */
    char *table;
    int64_t n_rows;             /* -1 = unknown */
    char **inputs;              /* "layer.table" names */
    size_t n_inputs;
} st_report_table;

typedef struct st_report_step {
    char *name;
    char *status;               /* "ok", "skipped", "failed", "not run" */
    double rows_in, rows_out;   /* NaN = unknown */
    double seconds;             /* NaN = unknown */
    double peak_rss_bytes;      /* NaN = unknown */
    char *note;                 /* may be "" */
} st_report_step;

typedef struct st_report_model {
    /* headline numbers (has_kpis false: "not available") */
    bool has_kpis;
    int64_t n_customers;        /* dim_customers rows; -1 unknown */
    int64_t n_known, n_orphan;  /* dim_customers.is_known true / false */
    int64_t n_active_periods;   /* active customer-periods */
    int64_t sales_volume, foc_volume;
    int32_t first_period, last_period;  /* period keys yyyymm; 0 unknown */

    /* personas, in display order (Champions, Loyalists, Potentials, Not
     * Active, then others); percentages use n_persona_customers and the
     * summed sales_volume. */
    st_report_persona *personas;
    size_t n_personas;
    int64_t n_persona_customers;  /* distinct customers over all personas */
    char *persona_rule;           /* NULL = "n/a" */

    /* cluster centroids in original units */
    char **features;
    size_t n_features;
    st_report_cluster *clusters;
    size_t n_clusters;

    /* scatter sample of active customer-periods */
    char *scatter_x, *scatter_y;  /* feature names */
    double *pt_x, *pt_y;
    size_t *pt_persona;           /* index into personas, or SIZE_MAX */
    size_t n_points;
    int64_t n_points_total;       /* rows the sample was taken from */

    /* k selection */
    int32_t *k;
    double *inertia, *silhouette;
    size_t n_k;
    int32_t chosen_k, knee_k;     /* 0 = none */

    /* persona transitions, n_trans_labels^2 counts, row = from, col = to */
    char **trans_labels;
    size_t n_trans_labels;
    int64_t *trans_counts;

    /* persona mix per period: mix[p * n_personas + i] customers of
     * personas[i] in periods[p] */
    int32_t *periods;
    size_t n_periods;
    int64_t *mix;

    /* units sold per period and persona, same shape as mix (NULL when
     * the grid is missing) */
    int64_t *sales_mix;

    /* customer views from platinum.marts_customer_summary joined with
     * platinum.dim_customers (has_customers false: "not available") */
    bool has_customers;
    int32_t recent_from, last_month;     /* the recent window's first and last period */
    int32_t prev_month;                  /* the period prev_persona is taken from; 0 none */
    st_report_customer *listed;          /* known customers, most recent volume first */
    size_t n_listed;
    int64_t n_known_total;               /* known customers met (listed or not) */
    st_report_customer *top;             /* per persona (display order), most recent volume first */
    size_t n_top;
    st_report_customer *at_risk;         /* persona fell; most lost volume first */
    size_t n_at_risk;
    int64_t n_at_risk_total;             /* every customer whose persona fell */
    int64_t at_risk_lost_volume;         /* their prior_volume - recent_volume, summed */
    st_report_country *countries;        /* most customers first, then name */
    size_t n_countries;

    /* data quality */
    bool has_quality;
    st_report_expectation *expectations;
    size_t n_expectations;
    bool has_rejects;
    st_report_count *rejects;     /* by reason, most frequent first */
    size_t n_rejects;

    /* lineage: every layer file found, sorted by layer then name */
    st_report_table *tables;
    size_t n_tables;

    /* run log */
    bool has_run;
    char *run_id, *run_started, *run_status;
    int threads;                  /* 0 unknown */
    double run_seconds, run_peak_rss_bytes;  /* NaN unknown */
    st_report_step *steps;
    size_t n_steps;

    /* problems met while loading ("could not read gold/x.strata: ...") */
    char **notes;
    size_t n_notes;
} st_report_model;

/* Empty model: every section "not available". */
void st_report_model_init(st_report_model *m);
/* Frees n customers' strings and the array; NULL does nothing. */
void st_report_customers_free(st_report_customer *v, size_t n);
/* Frees everything the model owns and re-initialises it; NULL does nothing. */
void st_report_model_free(st_report_model *m);

/* Fixed colour of a persona name (Champions, Loyalists, Potentials, Not
 * Active); other names get colours by their index among the extras. */
const char *st_report_persona_color(const char *name, size_t extra_index);

/* Display rank used to order personas (0 = Champions ... 3 = Not Active,
 * 4 = any other name). */
int st_report_persona_rank(const char *name);

/* Reads the warehouse at `warehouse` into m (initialised by the caller).
 * Missing files leave sections empty; unreadable ones add notes. Fails
 * only on out-of-memory (ST_ERR_NOMEM) or when `warehouse` is not a
 * directory (ST_ERR_NOTFOUND). */
st_status st_report_load(st_report_model *m, const char *warehouse, st_error *err) ST_MUST_USE;

/* Appends the page (HTML) or the Markdown document for m to out.
 * ST_ERR_NOMEM when the buffer could not grow. */
st_status st_report_render(const st_report_model *m, st_report_format fmt, st_buf *out,
                           st_error *err) ST_MUST_USE;

/* Loads `warehouse`, renders and writes atomically to out_path (NULL:
 * <warehouse>/report/index.html or report.md, creating report/). */
st_status st_report_write(const char *warehouse, st_report_format fmt, const char *out_path,
                          st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_REPORT_H */
