/*
 * step_marts.c: the platinum marts.
 *
 *   dim_customers               master rows + placeholders for orphan ids
 *   marts_customer_summary      dense customer x period grid, zero-filled
 *   marts_persona_status_change per grid row: previous persona, persona
 *   marts_persona_transitions   counts of persona -> persona over
 *                               consecutive periods (full matrix)
 *
 * Inputs are silver.stg_customers (sorted by customer_id) and
 * platinum.fct_transactions (one row per active customer-period, sorted
 * by customer_id, period_key, carrying cluster and persona). Everything
 * here is a merge over sorted inputs; memory is proportional to the
 * number of active customer-periods, not to the number of transaction
 * lines.
 */
#include "pipeline_internal.h"

#include <stdlib.h>
#include <string.h>

#define NOT_ACTIVE "Not Active"

static const char *const feat_i64[] = {"total_sold_quantity", "total_foc_quantity", "total_sold_transactions",
                                       "total_foc_transactions", "unique_materials"};

/* ---- dim_customers ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static st_status write_dim_customers(st_run_ctx *ctx, uint64_t fp, const st_column *fct_cust, st_error *err)
{
    st_reader *r = NULL;
    st_writer *w = NULL;
    st_column *cols = NULL, *out = NULL;
    st_field *fields = NULL;
    int64_t *orph = NULL;
    size_t nf = 0;
    st_status s = st_table_open(ctx, "silver", "stg_customers", &r, err);
    if (s != ST_OK) goto done;
    nf = st_reader_n_fields(r);
    size_t id_col, flags_col;
    if ((s = st_table_col(r, "stg_customers", "customer_id", &id_col, err)) != ST_OK) goto done;
    if ((s = st_table_col(r, "stg_customers", "flags", &flags_col, err)) != ST_OK) goto done;
    if (st_reader_field(r, id_col)->type != ST_TYPE_I64 || st_reader_field(r, flags_col)->type != ST_TYPE_STR) {
        s = st_error_set(err, ST_ERR_SCHEMA, "table silver.stg_customers: customer_id must be int64 and flags string");
        goto done;
    }
    cols = calloc(nf, sizeof *cols);
    out = calloc(nf + 1, sizeof *out);
    fields = calloc(nf + 1, sizeof *fields);
    if (!cols || !out || !fields) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < nf; j++) {
        fields[j] = *st_reader_field(r, j);
        fields[j].nullable = !(j == id_col || j == flags_col);
        st_column_init(&cols[j], fields[j].type);
        st_column_init(&out[j], fields[j].type);
    }
    fields[nf] = (st_field){"is_known", ST_TYPE_BOOL, false, "true when the id is in the customer master"};
    st_column_init(&out[nf], ST_TYPE_BOOL);
    if ((s = st_reader_read_all(r, NULL, nf, cols, err)) != ST_OK) goto done;

    /* distinct transaction customer ids (fct is sorted by customer) */
    size_t n_fct = fct_cust->n_rows, n_orph = 0;
    orph = malloc((n_fct ? n_fct : 1) * sizeof *orph);
    if (!orph) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    const int64_t *fc = st_column_i64(fct_cust);
    for (size_t i = 0; i < n_fct; i++)
        if (n_orph == 0 || orph[n_orph - 1] != fc[i]) orph[n_orph++] = fc[i];
    qsort(orph, n_orph, sizeof *orph, cmp_i64); /* already sorted; cheap safety */

    const int64_t *mid = st_column_i64(&cols[id_col]);
    size_t nm = cols[id_col].n_rows, a = 0, b = 0;
    while (a < nm || b < n_orph) {
        bool take_master = b >= n_orph || (a < nm && mid[a] <= orph[b]);
        if (take_master) {
            if (b < n_orph && orph[b] == mid[a]) b++; /* known id */
            for (size_t j = 0; j < nf && s == ST_OK; j++) s = st_column_push_from(&out[j], &cols[j], a);
            if (s == ST_OK) s = st_column_push_bool(&out[nf], true);
            a++;
        } else {
            for (size_t j = 0; j < nf && s == ST_OK; j++) {
                if (j == id_col) s = st_column_push_i64(&out[j], orph[b]);
                else if (j == flags_col) s = st_column_push_str(&out[j], "", 0);
                else s = st_column_push_null(&out[j]);
            }
            if (s == ST_OK) s = st_column_push_bool(&out[nf], false);
            b++;
        }
        if (s != ST_OK) {
            st_error_set(err, s, "out of memory building dim_customers");
            goto done;
        }
    }
    static const char *const inputs[] = {"silver.stg_customers", "platinum.fct_transactions"};
    if ((s = st_table_create(ctx, "platinum", "dim_customers", fields, nf + 1, inputs, 2, "", fp, NULL, 0, &w,
                             err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(w, out, 0, out[0].n_rows, err)) != ST_OK) goto done;
    ctx->cur->rows_out += out[0].n_rows;
    s = st_writer_close(w, err);
    w = NULL;
done:
    st_writer_abort(w);
    st_reader_close(r);
    if (cols)
        for (size_t j = 0; j < nf; j++) st_column_free(&cols[j]);
    if (out)
        for (size_t j = 0; j <= nf; j++) st_column_free(&out[j]);
    free(cols);
    free(out);
    free(fields);
    free(orph);
    return s;
}

/* ---- the grid ---- */

enum { G_CUST, G_YEAR, G_MONTH, G_PK, G_SOLD, G_FOC, G_RATIO, G_SOLD_TX, G_FOC_TX, G_MED_SOLD, G_MED_FOC,
       G_UNIQ, G_ACTIVE, G_CLUSTER, G_PERSONA, G_N };

static const st_field grid_fields[G_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"total_sold_quantity", ST_TYPE_I64, false, "sum of sold quantity (0 when inactive)"},
    {"total_foc_quantity", ST_TYPE_I64, false, "sum of free-of-charge quantity (0 when inactive)"},
    {"foc_ratio", ST_TYPE_F64, false, "foc / (sold + foc), 0 when both are 0"},
    {"total_sold_transactions", ST_TYPE_I64, false, "number of sales lines"},
    {"total_foc_transactions", ST_TYPE_I64, false, "number of free-of-charge lines"},
    {"median_sold_order_size", ST_TYPE_F64, true, "median sales line quantity (NULL when none)"},
    {"median_foc_order_size", ST_TYPE_F64, true, "median free-of-charge line quantity (NULL when none)"},
    {"unique_materials", ST_TYPE_I64, false, "distinct material codes over sales and FOC lines"},
    {"is_active", ST_TYPE_BOOL, false, "any accepted line in the period"},
    {"cluster", ST_TYPE_I32, true, "k-means cluster (NULL when inactive)"},
    {"persona", ST_TYPE_STR, false, "persona name; Not Active when inactive"},
};

static const char *const fct_names[] = {
    "customer_id", "year", "month", "period_key", "total_sold_quantity", "total_foc_quantity", "foc_ratio",
    "total_sold_transactions", "total_foc_transactions", "median_sold_order_size", "median_foc_order_size",
    "unique_materials", "cluster", "persona"};

typedef struct persona_set {
    char **names;
    size_t n, cap;
} persona_set;

static int persona_index(persona_set *ps, const char *s, size_t len)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strlen(ps->names[i]) == len && !memcmp(ps->names[i], s, len)) return (int)i;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        char **nn = realloc(ps->names, cap * sizeof *nn);
        if (!nn) return -1;
        ps->names = nn;
        ps->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    ps->names[ps->n] = c;
    return (int)ps->n++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Display order of personas: the named ones first, Not Active last. */
static int persona_rank(const char *p)
{
    static const char *const order[] = {"Champions", "Loyalists", "Potentials"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(p, order[i])) return i;
    return strcmp(p, NOT_ACTIVE) ? 3 : 4;
}

/* The persona KPI table printed at the end of `strata run`. */
static void persona_summary(st_run_ctx *ctx, const persona_set *ps, const st_column *c_cust,
                            const st_column *c_sold, const st_column *c_ratio, const st_column *c_persona)
{
    size_t n = ps->n, ng = c_cust->n_rows;
    int64_t *cp = calloc(n, sizeof *cp), *cust = calloc(n, sizeof *cust), *vol = calloc(n, sizeof *vol);
    int64_t *last = calloc(n, sizeof *last);
    double *ratio = calloc(n, sizeof *ratio);
    int *ord = calloc(n, sizeof *ord);
    if (!cp || !cust || !vol || !last || !ratio || !ord) goto done;
    const int64_t *gc = st_column_i64(c_cust), *sold = st_column_i64(c_sold);
    const double *fr = st_column_f64(c_ratio);
    int64_t total_vol = 0, total_cust = 0;
    for (size_t k = 0; k < ng; k++) {
        size_t len;
        const char *p = st_column_str(c_persona, k, &len);
        size_t i = 0;
        while (i < n && !(strlen(ps->names[i]) == len && !memcmp(ps->names[i], p, len))) i++;
        if (i == n) continue;
        cp[i]++;
        vol[i] += sold[k];
        total_vol += sold[k];
        ratio[i] += fr[k];
        if (cust[i] == 0 || last[i] != gc[k]) {
            cust[i]++;
            last[i] = gc[k];
        }
        if (k == 0 || gc[k - 1] != gc[k]) total_cust++;
    }
    for (size_t i = 0; i < n; i++) ord[i] = (int)i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int a = ord[j - 1], b = ord[j];
            int ra = persona_rank(ps->names[a]), rb = persona_rank(ps->names[b]);
            if (ra < rb || (ra == rb && strcmp(ps->names[a], ps->names[b]) <= 0)) break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    st_buf *b = &ctx->persona_summary;
    st_buf_printf(b, "Personas (customers = distinct customers with at least one period in the persona)\n");
    st_buf_printf(b, "%-24s %16s %10s %12s %16s %9s %15s\n", "persona", "customer-periods", "customers",
                  "% customers", "sales volume", "% volume", "mean foc_ratio");
    for (size_t oi = 0; oi < n; oi++) {
        int i = ord[oi];
        if (!cp[i]) continue;
        char a[32], c[32], v[32];
        st_fmt_thousands(cp[i], a);
        st_fmt_thousands(cust[i], c);
        st_fmt_thousands(vol[i], v);
        st_buf_printf(b, "%-24s %16s %10s %11.1f%% %16s %8.1f%% %15.3f\n", ps->names[i], a, c,
                      total_cust ? 100.0 * (double)cust[i] / (double)total_cust : 0.0, v,
                      total_vol ? 100.0 * (double)vol[i] / (double)total_vol : 0.0, ratio[i] / (double)cp[i]);
    }
done:
    free(cp);
    free(cust);
    free(vol);
    free(last);
    free(ratio);
    free(ord);
}

st_status st_step_marts(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    st_reader *r = NULL;
    st_writer *wg = NULL, *wc = NULL, *wt = NULL;
    st_column in[14], g[G_N], ch[5], tr[3];
    persona_set ps = {0};
    int64_t *counts = NULL;
    memset(in, 0, sizeof in);
    memset(g, 0, sizeof g);
    memset(ch, 0, sizeof ch);
    memset(tr, 0, sizeof tr);
    for (int j = 0; j < G_N; j++) st_column_init(&g[j], grid_fields[j].type);
    st_status s = st_table_open(ctx, "platinum", "fct_transactions", &r, err);
    if (s != ST_OK) goto done;
    if ((s = st_table_read_named(r, "fct_transactions", fct_names, 14, in, err)) != ST_OK) goto done;
    {
        static const st_type fct_types[14] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I64,
                                              ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64,
                                              ST_TYPE_F64, ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_STR};
        if ((s = st_table_expect_types(in, fct_names, fct_types, 14, "platinum.fct_transactions", err)) != ST_OK)
            goto done;
    }
    st_reader_close(r);
    r = NULL;
    size_t n = in[0].n_rows;
    ctx->cur->rows_in = n;

    if ((s = write_dim_customers(ctx, fp, &in[0], err)) != ST_OK) goto done;

    /* period range of the whole data set */
    const int32_t *pk = st_column_i32(&in[3]);
    int32_t pmin = 0, pmax = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || pk[i] < pmin) pmin = pk[i];
        if (i == 0 || pk[i] > pmax) pmax = pk[i];
    }
    const int64_t *cust = st_column_i64(&in[0]);
    (void)persona_index(&ps, NOT_ACTIVE, strlen(NOT_ACTIVE));
    size_t i = 0;
    while (i < n && s == ST_OK) {
        int64_t c = cust[i];
        for (int32_t p = pmin; p <= pmax && s == ST_OK; p = st_period_next(p)) {
            bool act = i < n && cust[i] == c && pk[i] == p;
            s = st_column_push_i64(&g[G_CUST], c);
            if (s == ST_OK) s = st_column_push_i32(&g[G_YEAR], p / 100);
            if (s == ST_OK) s = st_column_push_i32(&g[G_MONTH], p % 100);
            if (s == ST_OK) s = st_column_push_i32(&g[G_PK], p);
            if (act) {
                for (int j = G_SOLD; j <= G_UNIQ && s == ST_OK; j++) s = st_column_push_from(&g[j], &in[j], i);
                if (s == ST_OK) s = st_column_push_bool(&g[G_ACTIVE], true);
                if (s == ST_OK) s = st_column_push_from(&g[G_CLUSTER], &in[12], i);
                if (s == ST_OK) s = st_column_push_from(&g[G_PERSONA], &in[13], i);
                i++;
            } else {
                for (int j = G_SOLD; j <= G_UNIQ && s == ST_OK; j++) {
                    if (j == G_RATIO) s = st_column_push_f64(&g[j], 0.0);
                    else if (j == G_MED_SOLD || j == G_MED_FOC) s = st_column_push_null(&g[j]);
                    else s = st_column_push_i64(&g[j], 0);
                }
                if (s == ST_OK) s = st_column_push_bool(&g[G_ACTIVE], false);
                if (s == ST_OK) s = st_column_push_null(&g[G_CLUSTER]);
                if (s == ST_OK) s = st_column_push_str(&g[G_PERSONA], NOT_ACTIVE, strlen(NOT_ACTIVE));
            }
        }
        /* fct must be sorted by (customer, period): anything left for c is out of order */
        if (s == ST_OK && i < n && cust[i] == c) {
            s = st_error_set(err, ST_ERR_INTERNAL, "fct_transactions is not sorted by customer_id, period_key at row %zu", i);
            goto done;
        }
    }
    if (s != ST_OK) {
        if (err && err->code != s) st_error_set(err, s, "out of memory building marts_customer_summary");
        goto done;
    }
    (void)feat_i64;

    static const char *const grid_inputs[] = {"platinum.fct_transactions"};
    if ((s = st_table_create(ctx, "platinum", "marts_customer_summary", grid_fields, G_N, grid_inputs, 1, "", fp,
                             NULL, 0, &wg, err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(wg, g, 0, g[0].n_rows, err)) != ST_OK) goto done;
    s = st_writer_close(wg, err);
    wg = NULL;
    if (s != ST_OK) goto done;
    ctx->cur->rows_out += g[0].n_rows;

    /* status change + transitions */
    static const st_field ch_fields[5] = {
        {"customer_id", ST_TYPE_I64, false, "customer id"},
        {"period_key", ST_TYPE_I32, false, "year*100+month"},
        {"previous_persona", ST_TYPE_STR, true, "persona in the previous period (NULL for the first)"},
        {"persona", ST_TYPE_STR, false, "persona in this period"},
        {"changed", ST_TYPE_BOOL, false, "persona differs from the previous period"},
    };
    for (int j = 0; j < 5; j++) st_column_init(&ch[j], ch_fields[j].type);
    size_t ng = g[0].n_rows;
    /* persona dictionary in sorted order for a deterministic matrix */
    for (size_t k = 0; k < ng; k++) {
        size_t len;
        const char *p = st_column_str(&g[G_PERSONA], k, &len);
        if (persona_index(&ps, p, len) < 0) {
            s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    qsort(ps.names, ps.n, sizeof *ps.names, cmp_str);
    counts = calloc(ps.n * ps.n, sizeof *counts);
    if (!counts) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    const int64_t *gc = st_column_i64(&g[G_CUST]);
    int prev_idx = -1;
    for (size_t k = 0; k < ng && s == ST_OK; k++) {
        size_t len;
        const char *p = st_column_str(&g[G_PERSONA], k, &len);
        int idx = persona_index(&ps, p, len);
        bool first = k == 0 || gc[k - 1] != gc[k];
        s = st_column_push_i64(&ch[0], gc[k]);
        if (s == ST_OK) s = st_column_push_from(&ch[1], &g[G_PK], k);
        if (s == ST_OK) {
            if (first) s = st_column_push_null(&ch[2]);
            else s = st_column_push_from(&ch[2], &g[G_PERSONA], k - 1);
        }
        if (s == ST_OK) s = st_column_push_str(&ch[3], p, len);
        if (s == ST_OK) s = st_column_push_bool(&ch[4], !first && prev_idx != idx);
        if (!first) counts[(size_t)prev_idx * ps.n + (size_t)idx]++;
        prev_idx = idx;
    }
    if (s != ST_OK) {
        st_error_set(err, s, "out of memory building marts_persona_status_change");
        goto done;
    }
    static const char *const ch_inputs[] = {"platinum.marts_customer_summary"};
    if ((s = st_table_create(ctx, "platinum", "marts_persona_status_change", ch_fields, 5, ch_inputs, 1, "", fp,
                             NULL, 0, &wc, err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(wc, ch, 0, ng, err)) != ST_OK) goto done;
    s = st_writer_close(wc, err);
    wc = NULL;
    if (s != ST_OK) goto done;
    ctx->cur->rows_out += ng;

    static const st_field tr_fields[3] = {
        {"from_persona", ST_TYPE_STR, false, "persona in a period"},
        {"to_persona", ST_TYPE_STR, false, "persona of the same customer in the next period"},
        {"n", ST_TYPE_I64, false, "number of such consecutive customer-period pairs"},
    };
    for (int j = 0; j < 3; j++) st_column_init(&tr[j], tr_fields[j].type);
    for (size_t a = 0; a < ps.n && s == ST_OK; a++)
        for (size_t b = 0; b < ps.n && s == ST_OK; b++) {
            s = st_column_push_str(&tr[0], ps.names[a], strlen(ps.names[a]));
            if (s == ST_OK) s = st_column_push_str(&tr[1], ps.names[b], strlen(ps.names[b]));
            if (s == ST_OK) s = st_column_push_i64(&tr[2], counts[a * ps.n + b]);
        }
    if (s != ST_OK) {
        st_error_set(err, s, "out of memory");
        goto done;
    }
    if ((s = st_table_create(ctx, "platinum", "marts_persona_transitions", tr_fields, 3, ch_inputs, 1, "", fp,
                             NULL, 0, &wt, err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(wt, tr, 0, tr[0].n_rows, err)) != ST_OK) goto done;
    s = st_writer_close(wt, err);
    wt = NULL;
    ctx->cur->rows_out += tr[0].n_rows;
done:
    st_reader_close(r);
    st_writer_abort(wg);
    st_writer_abort(wc);
    st_writer_abort(wt);
    for (int j = 0; j < 14; j++) st_column_free(&in[j]);
    for (int j = 0; j < G_N; j++) st_column_free(&g[j]);
    for (int j = 0; j < 5; j++) st_column_free(&ch[j]);
    for (int j = 0; j < 3; j++) st_column_free(&tr[j]);
    for (size_t k = 0; k < ps.n; k++) free(ps.names[k]);
    free(ps.names);
    free(counts);
    return s;
}

st_status st_marts_summarise(st_run_ctx *ctx, st_error *err)
{
    static const char *const names[] = {"customer_id", "total_sold_quantity", "foc_ratio", "persona"};
    st_column c[4];
    memset(c, 0, sizeof c);
    persona_set ps = {0};
    st_reader *r = NULL;
    st_status s = st_table_open(ctx, "platinum", "marts_customer_summary", &r, err);
    if (s != ST_OK) return s;
    s = st_table_read_named(r, "marts_customer_summary", names, 4, c, err);
    st_reader_close(r);
    static const st_type types[4] = {ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR};
    if (s == ST_OK) s = st_table_expect_types(c, names, types, 4, "platinum.marts_customer_summary", err);
    if (s == ST_OK) {
        for (size_t k = 0; k < c[3].n_rows; k++) {
            size_t len;
            const char *p = st_column_str(&c[3], k, &len);
            if (persona_index(&ps, p, len) < 0) {
                s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
        }
    }
    if (s == ST_OK) persona_summary(ctx, &ps, &c[0], &c[1], &c[2], &c[3]);
    for (int j = 0; j < 4; j++) st_column_free(&c[j]);
    for (size_t k = 0; k < ps.n; k++) free(ps.names[k]);
    free(ps.names);
    return s;
}
