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
 * by customer_id, period_key, carrying cluster and persona). The grid
 * has one row per period from the smallest to the largest period_key of
 * fct, for every customer with at least one fct row (master customers
 * without transactions are in dim_customers only).
 *
 * Memory. Everything is a streaming merge over the sorted inputs, read
 * one chunk (ST_CHUNK_ROWS rows) at a time through a cursor:
 *   1. a pass over fct's period_key gives the grid's period range;
 *   2. dim_customers merges master chunks with the distinct fct ids (two
 *      sorted id sequences), emitting output chunks as they fill;
 *   3. a pass over all of fct emits, for each customer in turn, its grid
 *      rows period by period into the summary and status-change writers,
 *      carrying the previous row's persona; the transition counts
 *      accumulate in a persona x persona matrix kept in order of first
 *      appearance and put in name order at the end.
 * Writers cut chunks by row count (and string bytes), never by how rows
 * were handed to them, so flushing every ST_CHUNK_ROWS rows writes the
 * same bytes as one write of the whole table. The step holds one input
 * chunk, one output chunk per open writer and the persona set: nothing
 * grows with the number of customers, periods or transaction lines.
 * st_marts_summarise streams marts_customer_summary the same way, with
 * per-persona accumulators only.
 *
 * fct must be sorted: a customer id going down, or a customer's period
 * out of order, is ST_ERR_INTERNAL naming the row.
 */
#include "pipeline_internal.h"

#include <stdlib.h>
#include <string.h>

#define NOT_ACTIVE "Not Active"

/* ---- reading a projection of a table chunk by chunk ---- */

/* A cursor over columns of one reader. cols[j] holds column which[j] of
 * the loaded chunk; row is the current row in it, n_rows its size, base
 * the file row of its row 0. The reader is borrowed. */
typedef struct cursor {
    st_reader *r;
    size_t n_cols;
    size_t *which;
    st_column *cols;
    size_t next_chunk;
    size_t row, n_rows;
    uint64_t base;
} cursor;

static void cursor_free(cursor *cc)
{
    if (cc->cols)
        for (size_t j = 0; j < cc->n_cols; j++) st_column_free(&cc->cols[j]);
    free(cc->cols);
    free(cc->which);
    memset(cc, 0, sizeof *cc);
}

/* Opens a cursor on columns `names` (NULL: every column, in order) of r,
 * checking their types against `types` when given. Errors name `table`
 * ("layer.table") and the column. Free with cursor_free(), also on
 * failure. */
static st_status cursor_open(cursor *cc, st_reader *r, const char *table, const char *const *names,
                             const st_type *types, size_t n, st_error *err)
{
    memset(cc, 0, sizeof *cc);
    cc->r = r;
    if (!names) n = st_reader_n_fields(r);
    cc->which = calloc(n ? n : 1, sizeof *cc->which);
    cc->cols = calloc(n ? n : 1, sizeof *cc->cols);
    if (!cc->which || !cc->cols) return st_error_set(err, ST_ERR_NOMEM, "out of memory reading %s", table);
    cc->n_cols = n;
    const char *short_name = strchr(table, '.') ? strchr(table, '.') + 1 : table;
    for (size_t j = 0; j < n; j++) {
        if (names) ST_TRY(st_table_col(r, short_name, names[j], &cc->which[j], err));
        else cc->which[j] = j;
        st_column_init(&cc->cols[j], st_reader_field(r, cc->which[j])->type);
    }
    if (types) ST_TRY(st_table_expect_types(cc->cols, names, types, n, table, err));
    return ST_OK;
}

/* Makes the cursor point at a row, loading the next non-empty chunk when
 * the current one is used up; *more is false at the end of the table. */
static st_status cursor_more(cursor *cc, bool *more, st_error *err)
{
    size_t n_chunks = st_reader_n_chunks(cc->r);
    while (cc->row >= cc->n_rows && cc->next_chunk < n_chunks) {
        size_t c = cc->next_chunk++;
        for (size_t j = 0; j < cc->n_cols; j++) ST_TRY(st_reader_read_block(cc->r, c, cc->which[j], &cc->cols[j], err));
        cc->base += cc->n_rows;
        cc->n_rows = st_reader_chunk_rows(cc->r, c);
        cc->row = 0;
    }
    *more = cc->row < cc->n_rows;
    return ST_OK;
}

/* Writes cols' rows to w and empties them (keeping their allocations). */
static st_status flush_rows(st_writer *w, st_column *cols, size_t n_cols, st_error *err)
{
    if (cols[0].n_rows > 0) ST_TRY(st_writer_write(w, cols, 0, cols[0].n_rows, err));
    for (size_t j = 0; j < n_cols; j++) st_column_reset(&cols[j]);
    return ST_OK;
}

static st_status not_sorted(st_error *err, uint64_t row)
{
    return st_error_set(err, ST_ERR_INTERNAL, "fct_transactions is not sorted by customer_id, period_key at row %llu",
                        (unsigned long long)row);
}

/* ---- dim_customers ---- */

/* Advances f (over fct's customer_id) to the next distinct id: *have is
 * false at the end. last and have_last carry the previous id. */
static st_status next_fct_id(cursor *f, int64_t *id, bool *have, int64_t *last, bool *have_last, st_error *err)
{
    for (;;) {
        ST_TRY(cursor_more(f, have, err));
        if (!*have) return ST_OK;
        int64_t v = st_column_i64(&f->cols[0])[f->row];
        uint64_t row = f->base + f->row;
        f->row++;
        if (*have_last && v == *last) continue;
        if (*have_last && v < *last) return not_sorted(err, row);
        *last = v;
        *have_last = true;
        *id = v;
        return ST_OK;
    }
}

static st_status write_dim_customers(st_run_ctx *ctx, uint64_t fp, st_reader *fct, st_error *err)
{
    st_reader *r = NULL;
    st_writer *w = NULL;
    st_column *out = NULL;
    st_field *fields = NULL;
    cursor m = {0}, f = {0};
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
    out = calloc(nf + 1, sizeof *out);
    fields = calloc(nf + 1, sizeof *fields);
    if (!out || !fields) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < nf; j++) {
        fields[j] = *st_reader_field(r, j);
        fields[j].nullable = !(j == id_col || j == flags_col);
        st_column_init(&out[j], fields[j].type);
    }
    fields[nf] = (st_field){"is_known", ST_TYPE_BOOL, false, "true when the id is in the customer master"};
    st_column_init(&out[nf], ST_TYPE_BOOL);
    if ((s = cursor_open(&m, r, "silver.stg_customers", NULL, NULL, 0, err)) != ST_OK) goto done;
    static const char *const fct_id[] = {"customer_id"};
    static const st_type fct_id_type[] = {ST_TYPE_I64};
    if ((s = cursor_open(&f, fct, "platinum.fct_transactions", fct_id, fct_id_type, 1, err)) != ST_OK) goto done;

    static const char *const inputs[] = {"silver.stg_customers", "platinum.fct_transactions"};
    if ((s = st_table_create(ctx, "platinum", "dim_customers", fields, nf + 1, inputs, 2, "", fp, NULL, 0, &w,
                             err)) != ST_OK)
        goto done;

    /* merge: master rows in order, each fct id not in the master as a
     * placeholder at its place */
    bool have_m, have_o, have_last = false;
    int64_t o = 0, last = 0;
    if ((s = cursor_more(&m, &have_m, err)) != ST_OK) goto done;
    if ((s = next_fct_id(&f, &o, &have_o, &last, &have_last, err)) != ST_OK) goto done;
    while (have_m || have_o) {
        int64_t mid = have_m ? st_column_i64(&m.cols[id_col])[m.row] : 0;
        if (!have_o || (have_m && mid <= o)) {
            if (have_o && o == mid && (s = next_fct_id(&f, &o, &have_o, &last, &have_last, err)) != ST_OK) goto done;
            for (size_t j = 0; j < nf && s == ST_OK; j++) s = st_column_push_from(&out[j], &m.cols[j], m.row);
            if (s == ST_OK) s = st_column_push_bool(&out[nf], true);
            m.row++;
            if (s == ST_OK && (s = cursor_more(&m, &have_m, err)) != ST_OK) goto done;
        } else {
            for (size_t j = 0; j < nf && s == ST_OK; j++) {
                if (j == id_col) s = st_column_push_i64(&out[j], o);
                else if (j == flags_col) s = st_column_push_str(&out[j], "", 0);
                else s = st_column_push_null(&out[j]);
            }
            if (s == ST_OK) s = st_column_push_bool(&out[nf], false);
            if (s == ST_OK && (s = next_fct_id(&f, &o, &have_o, &last, &have_last, err)) != ST_OK) goto done;
        }
        if (s != ST_OK) {
            st_error_set(err, s, "out of memory building dim_customers");
            goto done;
        }
        if (out[0].n_rows == ST_CHUNK_ROWS && (s = flush_rows(w, out, nf + 1, err)) != ST_OK) goto done;
    }
    if ((s = flush_rows(w, out, nf + 1, err)) != ST_OK) goto done;
    ctx->cur->rows_out += st_writer_n_rows(w);
    s = st_writer_close(w, err);
    w = NULL;
done:
    st_writer_abort(w);
    cursor_free(&m);
    cursor_free(&f);
    st_reader_close(r);
    if (out)
        for (size_t j = 0; j <= nf; j++) st_column_free(&out[j]);
    free(out);
    free(fields);
    return s;
}

/* ---- personas ---- */

/* Distinct persona names in order of first appearance (a handful). */
typedef struct persona_set {
    char **names;
    size_t n, cap;
} persona_set;

static void persona_set_free(persona_set *ps)
{
    for (size_t k = 0; k < ps->n; k++) free(ps->names[k]);
    free(ps->names);
    memset(ps, 0, sizeof *ps);
}

/* Index of name s[0..len) in ps, added at the end when new; -1 when out
 * of memory. */
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

/* fct columns read by the grid pass; F_* index the cursor's columns.
 * Columns F_SOLD..F_UNIQ match G_SOLD..G_UNIQ one to one. */
enum { F_CUST = 0, F_PK = 3, F_CLUSTER = 12, F_PERSONA = 13, F_N = 14 };
static const char *const fct_names[F_N] = {
    "customer_id", "year", "month", "period_key", "total_sold_quantity", "total_foc_quantity", "foc_ratio",
    "total_sold_transactions", "total_foc_transactions", "median_sold_order_size", "median_foc_order_size",
    "unique_materials", "cluster", "persona"};
static const st_type fct_types[F_N] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I64,
                                       ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64,
                                       ST_TYPE_F64, ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_STR};

enum { C_CUST, C_PK, C_PREV, C_PERSONA, C_CHANGED, C_N };
static const st_field ch_fields[C_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"previous_persona", ST_TYPE_STR, true, "persona in the previous period (NULL for the first)"},
    {"persona", ST_TYPE_STR, false, "persona in this period"},
    {"changed", ST_TYPE_BOOL, false, "persona differs from the previous period"},
};

/* State of the grid pass: one output chunk for each of the two writers,
 * the previous grid row's persona (in g[G_PERSONA], or in `carry` right
 * after a flush), and the transition counts, counts[from * cap + to] over
 * persona indices in ps (order of first appearance). */
typedef struct grid {
    st_writer *wg, *wc;
    st_column g[G_N], ch[C_N];
    st_column carry;        /* STR, 0 or 1 row: last persona of the flushed chunk */
    persona_set ps;
    int64_t *counts;
    size_t counts_cap;      /* counts is counts_cap x counts_cap */
    int prev_idx;
} grid;

/* Grows counts to hold persona index n - 1. */
static st_status grid_counts_fit(grid *gs, size_t n, st_error *err)
{
    if (n <= gs->counts_cap) return ST_OK;
    size_t cap = gs->counts_cap ? gs->counts_cap : 8;
    while (cap < n) cap *= 2;
    int64_t *nc = calloc(cap * cap, sizeof *nc);
    if (!nc) return st_error_set(err, ST_ERR_NOMEM, "out of memory counting persona transitions");
    for (size_t a = 0; a < gs->counts_cap; a++)
        memcpy(nc + a * cap, gs->counts + a * gs->counts_cap, gs->counts_cap * sizeof *nc);
    free(gs->counts);
    gs->counts = nc;
    gs->counts_cap = cap;
    return ST_OK;
}

static st_status grid_flush(grid *gs, st_error *err)
{
    st_column *gp = &gs->g[G_PERSONA];
    if (gp->n_rows > 0) {
        st_column_reset(&gs->carry);
        if (st_column_push_from(&gs->carry, gp, gp->n_rows - 1) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "out of memory building marts_persona_status_change");
    }
    ST_TRY(flush_rows(gs->wg, gs->g, G_N, err));
    return flush_rows(gs->wc, gs->ch, C_N, err);
}

/* Appends the grid row of customer c, period p to both outputs: active
 * with the values of f's current row when f is given, else zero-filled
 * and Not Active. `first` marks the customer's first period. */
static st_status grid_row(grid *gs, int64_t c, int32_t p, bool first, const cursor *f, st_error *err)
{
    st_column *g = gs->g, *ch = gs->ch;
    st_status s = st_column_push_i64(&g[G_CUST], c);
    if (s == ST_OK) s = st_column_push_i32(&g[G_YEAR], p / 100);
    if (s == ST_OK) s = st_column_push_i32(&g[G_MONTH], p % 100);
    if (s == ST_OK) s = st_column_push_i32(&g[G_PK], p);
    int idx;
    const char *name;
    size_t len;
    if (f) {
        for (int j = G_SOLD; j <= G_UNIQ && s == ST_OK; j++) s = st_column_push_from(&g[j], &f->cols[j], f->row);
        if (s == ST_OK) s = st_column_push_bool(&g[G_ACTIVE], true);
        if (s == ST_OK) s = st_column_push_from(&g[G_CLUSTER], &f->cols[F_CLUSTER], f->row);
        if (s == ST_OK) s = st_column_push_from(&g[G_PERSONA], &f->cols[F_PERSONA], f->row);
        name = st_column_str(&f->cols[F_PERSONA], f->row, &len);
        idx = persona_index(&gs->ps, name, len);
    } else {
        for (int j = G_SOLD; j <= G_UNIQ && s == ST_OK; j++) {
            if (j == G_RATIO) s = st_column_push_f64(&g[j], 0.0);
            else if (j == G_MED_SOLD || j == G_MED_FOC) s = st_column_push_null(&g[j]);
            else s = st_column_push_i64(&g[j], 0);
        }
        if (s == ST_OK) s = st_column_push_bool(&g[G_ACTIVE], false);
        if (s == ST_OK) s = st_column_push_null(&g[G_CLUSTER]);
        if (s == ST_OK) s = st_column_push_str(&g[G_PERSONA], NOT_ACTIVE, strlen(NOT_ACTIVE));
        name = NOT_ACTIVE;
        len = strlen(NOT_ACTIVE);
        idx = 0; /* Not Active is the first persona of the set */
    }
    if (s != ST_OK) return st_error_set(err, s, "out of memory building marts_customer_summary");
    if (idx < 0) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    ST_TRY(grid_counts_fit(gs, gs->ps.n, err));

    s = st_column_push_i64(&ch[C_CUST], c);
    if (s == ST_OK) s = st_column_push_i32(&ch[C_PK], p);
    if (s == ST_OK) {
        size_t k = g[G_PERSONA].n_rows - 1; /* this row */
        if (first) s = st_column_push_null(&ch[C_PREV]);
        else if (k > 0) s = st_column_push_from(&ch[C_PREV], &g[G_PERSONA], k - 1);
        else s = st_column_push_from(&ch[C_PREV], &gs->carry, 0);
    }
    if (s == ST_OK) s = st_column_push_str(&ch[C_PERSONA], name, len);
    if (s == ST_OK) s = st_column_push_bool(&ch[C_CHANGED], !first && gs->prev_idx != idx);
    if (s != ST_OK) return st_error_set(err, s, "out of memory building marts_persona_status_change");
    if (!first) gs->counts[(size_t)gs->prev_idx * gs->counts_cap + (size_t)idx]++;
    gs->prev_idx = idx;
    if (g[0].n_rows == ST_CHUNK_ROWS) ST_TRY(grid_flush(gs, err));
    return ST_OK;
}

/* Smallest and largest period_key of fct (0, 0 when empty). */
static st_status fct_period_range(st_reader *fct, int32_t *pmin, int32_t *pmax, st_error *err)
{
    static const char *const name[] = {"period_key"};
    static const st_type type[] = {ST_TYPE_I32};
    cursor f;
    bool more, any = false;
    *pmin = *pmax = 0;
    st_status s = cursor_open(&f, fct, "platinum.fct_transactions", name, type, 1, err);
    while (s == ST_OK && (s = cursor_more(&f, &more, err)) == ST_OK && more) {
        const int32_t *pk = st_column_i32(&f.cols[0]);
        for (size_t i = f.row; i < f.n_rows; i++) {
            if (!any || pk[i] < *pmin) *pmin = pk[i];
            if (!any || pk[i] > *pmax) *pmax = pk[i];
            any = true;
        }
        f.row = f.n_rows;
    }
    cursor_free(&f);
    return s;
}

/* Writes marts_persona_transitions: the full matrix over the personas in
 * name order. */
static st_status write_transitions(st_run_ctx *ctx, uint64_t fp, const grid *gs, st_error *err)
{
    static const st_field tr_fields[3] = {
        {"from_persona", ST_TYPE_STR, false, "persona in a period"},
        {"to_persona", ST_TYPE_STR, false, "persona of the same customer in the next period"},
        {"n", ST_TYPE_I64, false, "number of such consecutive customer-period pairs"},
    };
    static const char *const inputs[] = {"platinum.marts_customer_summary"};
    size_t n = gs->ps.n;
    st_writer *w = NULL;
    st_column tr[3];
    for (int j = 0; j < 3; j++) st_column_init(&tr[j], tr_fields[j].type);
    /* old[i]: index in ps of the i-th name in strcmp order (insertion
     * sort: a handful of distinct names) */
    size_t *old = calloc(n ? n : 1, sizeof *old);
    st_status s = ST_OK;
    if (!old) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && strcmp(gs->ps.names[old[j - 1]], gs->ps.names[i]) > 0; j--) old[j] = old[j - 1];
        old[j] = i;
    }
    for (size_t a = 0; a < n && s == ST_OK; a++)
        for (size_t b = 0; b < n && s == ST_OK; b++) {
            const char *fa = gs->ps.names[old[a]], *tb = gs->ps.names[old[b]];
            s = st_column_push_str(&tr[0], fa, strlen(fa));
            if (s == ST_OK) s = st_column_push_str(&tr[1], tb, strlen(tb));
            if (s == ST_OK) s = st_column_push_i64(&tr[2], gs->counts[old[a] * gs->counts_cap + old[b]]);
        }
    if (s != ST_OK) {
        st_error_set(err, s, "out of memory");
        goto done;
    }
    if ((s = st_table_create(ctx, "platinum", "marts_persona_transitions", tr_fields, 3, inputs, 1, "", fp, NULL, 0,
                             &w, err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(w, tr, 0, tr[0].n_rows, err)) != ST_OK) goto done;
    s = st_writer_close(w, err);
    w = NULL;
    ctx->cur->rows_out += tr[0].n_rows;
done:
    st_writer_abort(w);
    for (int j = 0; j < 3; j++) st_column_free(&tr[j]);
    free(old);
    return s;
}

st_status st_step_marts(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    st_reader *r = NULL;
    cursor f = {0};
    grid gs;
    memset(&gs, 0, sizeof gs);
    for (int j = 0; j < G_N; j++) st_column_init(&gs.g[j], grid_fields[j].type);
    for (int j = 0; j < C_N; j++) st_column_init(&gs.ch[j], ch_fields[j].type);
    st_column_init(&gs.carry, ST_TYPE_STR);
    st_status s = st_table_open(ctx, "platinum", "fct_transactions", &r, err);
    if (s != ST_OK) goto done;
    if ((s = cursor_open(&f, r, "platinum.fct_transactions", fct_names, fct_types, F_N, err)) != ST_OK) goto done;
    ctx->cur->rows_in = st_reader_n_rows(r);

    if ((s = write_dim_customers(ctx, fp, r, err)) != ST_OK) goto done;
    int32_t pmin, pmax;
    if ((s = fct_period_range(r, &pmin, &pmax, err)) != ST_OK) goto done;

    static const char *const grid_inputs[] = {"platinum.fct_transactions"};
    static const char *const ch_inputs[] = {"platinum.marts_customer_summary"};
    if ((s = st_table_create(ctx, "platinum", "marts_customer_summary", grid_fields, G_N, grid_inputs, 1, "", fp,
                             NULL, 0, &gs.wg, err)) != ST_OK)
        goto done;
    if ((s = st_table_create(ctx, "platinum", "marts_persona_status_change", ch_fields, C_N, ch_inputs, 1, "", fp,
                             NULL, 0, &gs.wc, err)) != ST_OK)
        goto done;
    if (persona_index(&gs.ps, NOT_ACTIVE, strlen(NOT_ACTIVE)) != 0) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((s = grid_counts_fit(&gs, 1, err)) != ST_OK) goto done;

    /* every fct customer in order, every period of the range in order;
     * f's current row is the next active customer-period */
    bool more;
    if ((s = cursor_more(&f, &more, err)) != ST_OK) goto done;
    while (more) {
        int64_t c = st_column_i64(&f.cols[F_CUST])[f.row];
        for (int32_t p = pmin; p <= pmax; p = st_period_next(p)) {
            bool act = more && st_column_i64(&f.cols[F_CUST])[f.row] == c && st_column_i32(&f.cols[F_PK])[f.row] == p;
            if ((s = grid_row(&gs, c, p, p == pmin, act ? &f : NULL, err)) != ST_OK) goto done;
            if (act) {
                f.row++;
                if ((s = cursor_more(&f, &more, err)) != ST_OK) goto done;
            }
        }
        /* anything left for c is out of order */
        if (more && st_column_i64(&f.cols[F_CUST])[f.row] == c) {
            s = not_sorted(err, f.base + f.row);
            goto done;
        }
    }
    if ((s = grid_flush(&gs, err)) != ST_OK) goto done;
    uint64_t n_grid = st_writer_n_rows(gs.wg);
    s = st_writer_close(gs.wg, err);
    gs.wg = NULL;
    if (s != ST_OK) goto done;
    s = st_writer_close(gs.wc, err);
    gs.wc = NULL;
    if (s != ST_OK) goto done;
    ctx->cur->rows_out += 2 * n_grid;

    s = write_transitions(ctx, fp, &gs, err);
done:
    cursor_free(&f);
    st_reader_close(r);
    st_writer_abort(gs.wg);
    st_writer_abort(gs.wc);
    for (int j = 0; j < G_N; j++) st_column_free(&gs.g[j]);
    for (int j = 0; j < C_N; j++) st_column_free(&gs.ch[j]);
    st_column_free(&gs.carry);
    persona_set_free(&gs.ps);
    free(gs.counts);
    return s;
}

/* ---- the terminal persona table ---- */

/* Per-persona sums over marts_customer_summary, indexed like ps; cap
 * entries allocated. cust counts customers, which works on one pass
 * because a customer's rows are consecutive: last is the customer of the
 * persona's latest row. */
typedef struct persona_acc {
    persona_set ps;
    size_t cap;
    int64_t *cp, *cust, *vol, *last;
    double *ratio;
    int64_t total_vol, total_cust;
} persona_acc;

static void persona_acc_free(persona_acc *a)
{
    persona_set_free(&a->ps);
    free(a->cp);
    free(a->cust);
    free(a->vol);
    free(a->last);
    free(a->ratio);
}

static bool grow(void **p, size_t old_n, size_t new_n, size_t width)
{
    void *q = realloc(*p, new_n * width);
    if (!q) return false;
    memset((char *)q + old_n * width, 0, (new_n - old_n) * width);
    *p = q;
    return true;
}

/* Makes room for persona index n - 1 in every accumulator. */
static bool persona_acc_fit(persona_acc *a, size_t n)
{
    if (n <= a->cap) return true;
    size_t cap = a->cap ? a->cap * 2 : 8;
    while (cap < n) cap *= 2;
    bool ok = grow((void **)&a->cp, a->cap, cap, sizeof *a->cp) && grow((void **)&a->cust, a->cap, cap, sizeof *a->cust) &&
              grow((void **)&a->vol, a->cap, cap, sizeof *a->vol) && grow((void **)&a->last, a->cap, cap, sizeof *a->last) &&
              grow((void **)&a->ratio, a->cap, cap, sizeof *a->ratio);
    if (ok) a->cap = cap;
    return ok;
}

/* Display order of personas: the named ones first, Not Active last. */
static int persona_rank(const char *p)
{
    static const char *const order[] = {"Champions", "Loyalists", "Potentials"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(p, order[i])) return i;
    return strcmp(p, NOT_ACTIVE) ? 3 : 4;
}

/* The persona KPI table printed at the end of `strata run`. */
static void persona_print(st_run_ctx *ctx, const persona_acc *acc)
{
    size_t n = acc->ps.n;
    char *const *names = acc->ps.names;
    int *ord = calloc(n ? n : 1, sizeof *ord);
    if (!ord) return;
    for (size_t i = 0; i < n; i++) ord[i] = (int)i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int a = ord[j - 1], b = ord[j];
            int ra = persona_rank(names[a]), rb = persona_rank(names[b]);
            if (ra < rb || (ra == rb && strcmp(names[a], names[b]) <= 0)) break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    st_buf *b = &ctx->persona_summary;
    st_buf_printf(b, "Personas (customers = distinct customers with at least one period in the persona)\n");
    st_buf_printf(b, "%-24s %16s %10s %12s %16s %9s %15s\n", "persona", "customer-periods", "customers",
                  "% customers", "sales volume", "% volume", "mean foc_ratio");
    for (size_t oi = 0; oi < n; oi++) {
        int i = ord[oi];
        if (!acc->cp[i]) continue;
        char a[32], c[32], v[32];
        st_fmt_thousands(acc->cp[i], a);
        st_fmt_thousands(acc->cust[i], c);
        st_fmt_thousands(acc->vol[i], v);
        st_buf_printf(b, "%-24s %16s %10s %11.1f%% %16s %8.1f%% %15.3f\n", names[i], a, c,
                      acc->total_cust ? 100.0 * (double)acc->cust[i] / (double)acc->total_cust : 0.0, v,
                      acc->total_vol ? 100.0 * (double)acc->vol[i] / (double)acc->total_vol : 0.0,
                      acc->ratio[i] / (double)acc->cp[i]);
    }
    free(ord);
}

st_status st_marts_summarise(st_run_ctx *ctx, st_error *err)
{
    static const char *const names[] = {"customer_id", "total_sold_quantity", "foc_ratio", "persona"};
    static const st_type types[4] = {ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR};
    persona_acc acc;
    memset(&acc, 0, sizeof acc);
    cursor cc = {0};
    st_reader *r = NULL;
    st_status s = st_table_open(ctx, "platinum", "marts_customer_summary", &r, err);
    if (s != ST_OK) return s;
    if ((s = cursor_open(&cc, r, "platinum.marts_customer_summary", names, types, 4, err)) != ST_OK) goto done;
    bool more, any = false;
    int64_t prev_c = 0;
    while ((s = cursor_more(&cc, &more, err)) == ST_OK && more) {
        const int64_t *gc = st_column_i64(&cc.cols[0]), *sold = st_column_i64(&cc.cols[1]);
        const double *fr = st_column_f64(&cc.cols[2]);
        for (size_t k = cc.row; k < cc.n_rows; k++) {
            size_t len;
            const char *p = st_column_str(&cc.cols[3], k, &len);
            int i = persona_index(&acc.ps, p, len);
            if (i < 0 || !persona_acc_fit(&acc, acc.ps.n)) {
                s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
                goto done;
            }
            acc.cp[i]++;
            acc.vol[i] += sold[k];
            acc.total_vol += sold[k];
            acc.ratio[i] += fr[k];
            if (acc.cust[i] == 0 || acc.last[i] != gc[k]) {
                acc.cust[i]++;
                acc.last[i] = gc[k];
            }
            if (!any || prev_c != gc[k]) acc.total_cust++;
            any = true;
            prev_c = gc[k];
        }
        cc.row = cc.n_rows;
    }
    if (s == ST_OK) persona_print(ctx, &acc);
done:
    cursor_free(&cc);
    st_reader_close(r);
    persona_acc_free(&acc);
    return s;
}
