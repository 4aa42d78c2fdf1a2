/*
 * report_load.c: a warehouse on disk -> st_report_model.
 *
 * Reads only what the page shows, through the layer-file reader
 * (strata/file.h) and the JSON reader (json_read_internal.h), and
 * aggregates as it goes, so memory stays at a few columns of the largest
 * table. The loader is forgiving by design: a report is most useful
 * exactly when a run went wrong, so a missing file leaves its section
 * empty and an unreadable one becomes a note on the page; only running
 * out of memory stops it.
 *
 * Determinism: directories are listed and sorted by name, personas are
 * ordered by st_report_persona_rank() then name, the scatter sample takes
 * evenly spaced rows, and nothing reads the clock.
 */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json_read_internal.h"
#include "strata/column.h"
#include "strata/file.h"
#include "strata/svg.h"

#define MAX_JSON_BYTES (64u << 20)
#define PATH_CAP 4096

/* ---- small helpers ---- */

static char *dup_str(const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Grows *arr (of elem bytes each) to hold at least need items. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return false;
        nc *= 2;
    }
    size_t bytes;
    if (!st_size_mul(nc, elem, &bytes)) return false;
    void *p = realloc(*arr, bytes);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

static st_status oom(st_error *err) { return st_error_set(err, ST_ERR_NOMEM, "report: out of memory"); }

static st_status add_note(st_report_model *m, st_error *err, const char *fmt, const char *a, const char *b)
{
    char msg[ST_ERROR_MSG_MAX + 200];
    snprintf(msg, sizeof msg, fmt, a, b);
    char **v = realloc(m->notes, (m->n_notes + 1) * sizeof *v);
    if (!v) return oom(err);
    m->notes = v;
    if (!(v[m->n_notes] = dup_str(msg))) return oom(err);
    m->n_notes++;
    return ST_OK;
}

static double col_f64(const st_column *c, size_t i)
{
    if (!st_column_valid(c, i)) return NAN;
    switch (c->type) {
    case ST_TYPE_F64: return st_column_f64(c)[i];
    case ST_TYPE_I64: return (double)st_column_i64(c)[i];
    case ST_TYPE_I32: return (double)st_column_i32(c)[i];
    case ST_TYPE_BOOL: return (double)st_column_bool(c)[i];
    default: return NAN;
    }
}

static int64_t col_i64(const st_column *c, size_t i)
{
    if (!st_column_valid(c, i)) return 0;
    switch (c->type) {
    case ST_TYPE_I64: return st_column_i64(c)[i];
    case ST_TYPE_I32: return st_column_i32(c)[i];
    case ST_TYPE_BOOL: return st_column_bool(c)[i];
    case ST_TYPE_F64: {
        double d = st_column_f64(c)[i];
        return isfinite(d) && fabs(d) < 9e18 ? (int64_t)d : 0;
    }
    default: return 0;
    }
}

/* The string at row i ("" when NULL), borrowed; length through *len. */
static const char *col_str(const st_column *c, size_t i, size_t *len)
{
    if ((c->type != ST_TYPE_STR && c->type != ST_TYPE_BYTES) || !st_column_valid(c, i)) {
        *len = 0;
        return "";
    }
    return st_column_str(c, i, len);
}

/* An open table and the columns loaded from it. */
typedef struct tbl {
    st_reader *r;
    st_column cols[16];
    size_t n_cols;
    size_t n_rows;
} tbl;

static void tbl_close(tbl *t)
{
    for (size_t i = 0; i < t->n_cols; i++) st_column_free(&t->cols[i]);
    st_reader_close(t->r);
    memset(t, 0, sizeof *t);
}

/* Opens <wh>/<layer>/<table>.strata and loads the named columns (NULL
 * entries in names are optional columns that may be absent: their slot is
 * an empty column of type BOOL with n_rows 0). Returns true when the table
 * is usable; a missing file is silently false, a damaged one adds a note.
 * *st reports out-of-memory. */
static bool tbl_open(st_report_model *m, const char *wh, const char *layer, const char *table,
                     const char *const *names, const bool *optional, size_t n, tbl *t, st_status *st,
                     st_error *err)
{
    memset(t, 0, sizeof *t);
    *st = ST_OK;
    if (n > 16) return false;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s/%s.strata", wh, layer, table);
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    st_error e;
    st_error_clear(&e);
    char what[200];
    snprintf(what, sizeof what, "%s/%s.strata", layer, table);
    if (st_reader_open(&t->r, path, &e) != ST_OK) {
        t->r = NULL;
        *st = add_note(m, err, "could not read %s: %s", what, e.msg);
        return false;
    }
    size_t which[16];
    size_t n_load = 0;
    int idx[16];
    for (size_t i = 0; i < n; i++) {
        idx[i] = st_reader_find(t->r, names[i]);
        if (idx[i] < 0 && !(optional && optional[i])) {
            *st = add_note(m, err, "%s has no column %s", what, names[i]);
            tbl_close(t);
            return false;
        }
    }
    /* load present columns into cols[i]; absent optional ones stay empty */
    st_column tmp[16];
    for (size_t i = 0; i < n; i++) {
        st_type ty = idx[i] >= 0 ? st_reader_field(t->r, (size_t)idx[i])->type : ST_TYPE_BOOL;
        st_column_init(&t->cols[i], ty);
        if (idx[i] >= 0) {
            which[n_load] = (size_t)idx[i];
            st_column_init(&tmp[n_load], ty);
            n_load++;
        }
    }
    t->n_cols = n;
    if (st_reader_read_all(t->r, which, n_load, tmp, &e) != ST_OK) {
        for (size_t j = 0; j < n_load; j++) st_column_free(&tmp[j]);
        if (e.code == ST_ERR_NOMEM) *st = oom(err);
        else *st = add_note(m, err, "could not read %s: %s", what, e.msg);
        tbl_close(t);
        return false;
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (idx[i] < 0) continue;
        st_column_free(&t->cols[i]);
        t->cols[i] = tmp[j++];
    }
    t->n_rows = (size_t)st_reader_n_rows(t->r);
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= 0 && t->cols[i].n_rows < t->n_rows) t->n_rows = t->cols[i].n_rows;
    return true;
}

/* Index of persona `name` in m->personas, adding it when absent. */
static st_status persona_index(st_report_model *m, size_t *cap, const char *name, size_t len, size_t *out,
                               st_error *err)
{
    for (size_t i = 0; i < m->n_personas; i++) {
        const char *p = m->personas[i].name;
        if (strlen(p) == len && memcmp(p, name, len) == 0) {
            *out = i;
            return ST_OK;
        }
    }
    if (!grow((void **)&m->personas, cap, m->n_personas + 1, sizeof *m->personas)) return oom(err);
    st_report_persona *p = &m->personas[m->n_personas];
    memset(p, 0, sizeof *p);
    if (!(p->name = dup_n(name, len))) return oom(err);
    p->mean_foc_ratio = NAN;
    *out = m->n_personas++;
    return ST_OK;
}

static int cmp_persona_name(const char *a, const char *b)
{
    int ra = st_report_persona_rank(a), rb = st_report_persona_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    return strcmp(a, b);
}

/* ---- the tables ---- */

static st_status load_customers(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"is_known"};
    tbl t;
    st_status st;
    if (!tbl_open(m, wh, "platinum", "dim_customers", names, NULL, 1, &t, &st, err)) return st;
    int64_t known = 0;
    for (size_t i = 0; i < t.n_rows; i++) known += col_i64(&t.cols[0], i) != 0;
    m->n_customers = (int64_t)t.n_rows;
    m->n_known = known;
    m->n_orphan = (int64_t)t.n_rows - known;
    m->has_kpis = true;
    tbl_close(&t);
    return ST_OK;
}

/* Persona aggregates from rows of (customer, period, persona, sold, foc,
 * ratio, active); rows are sorted by customer so "last customer counted"
 * per persona gives distinct counts. */
typedef struct agg_state {
    int64_t *last_cust;
    bool *seen;
    double *ratio_sum;
    int64_t *ratio_n;
    size_t cap;
} agg_state;

static st_status load_personas_and_facts(st_report_model *m, const char *wh, st_error *err)
{
    st_status st = ST_OK;
    tbl f, s;
    memset(&s, 0, sizeof s);
    static const char *const fnames[] = {"customer_id", "period_key", "total_sold_quantity", "total_foc_quantity",
                                         "foc_ratio", "persona"};
    bool have_f = tbl_open(m, wh, "platinum", "fct_transactions", fnames, NULL, 6, &f, &st, err);
    if (st != ST_OK) return st;
    static const char *const snames[] = {"customer_id", "period_key", "total_sold_quantity",
                                         "total_foc_quantity", "foc_ratio", "persona", "is_active"};
    bool have_s = tbl_open(m, wh, "platinum", "marts_customer_summary", snames, NULL, 7, &s, &st, err);
    if (st != ST_OK) goto done;
    agg_state a = {0};
    size_t pcap = 0;
    if (have_f) {
        /* headline from the facts */
        int64_t sold = 0, foc = 0;
        int32_t lo = 0, hi = 0;
        for (size_t i = 0; i < f.n_rows; i++) {
            sold += col_i64(&f.cols[2], i);
            foc += col_i64(&f.cols[3], i);
            int32_t p = (int32_t)col_i64(&f.cols[1], i);
            if (p > 0 && (lo == 0 || p < lo)) lo = p;
            if (p > hi) hi = p;
        }
        m->has_kpis = true;
        m->n_active_periods = (int64_t)f.n_rows;
        m->sales_volume = sold;
        m->foc_volume = foc;
        m->first_period = lo;
        m->last_period = hi;
    }
    /* persona aggregates: the grid when present (it has Not Active), else the facts */
    tbl *src = have_s ? &s : have_f ? &f : NULL;
    if (src) {
        int64_t last_any = INT64_MIN, n_cust = 0;
        for (size_t i = 0; i < src->n_rows; i++) {
            size_t len;
            const char *nm = col_str(&src->cols[5], i, &len);
            size_t pi = 0;
            if ((st = persona_index(m, &pcap, nm, len, &pi, err)) != ST_OK) goto agg_done;
            if (m->n_personas > a.cap) {
                size_t nc = m->n_personas * 2;
                int64_t *lc = realloc(a.last_cust, nc * sizeof *lc);
                if (lc) a.last_cust = lc;
                bool *sn = realloc(a.seen, nc * sizeof *sn);
                if (sn) a.seen = sn;
                double *rs = realloc(a.ratio_sum, nc * sizeof *rs);
                if (rs) a.ratio_sum = rs;
                int64_t *rn = realloc(a.ratio_n, nc * sizeof *rn);
                if (rn) a.ratio_n = rn;
                if (!lc || !sn || !rs || !rn) {
                    st = oom(err);
                    goto agg_done;
                }
                for (size_t k = a.cap; k < nc; k++) {
                    a.seen[k] = false;
                    a.ratio_sum[k] = 0;
                    a.ratio_n[k] = 0;
                    a.last_cust[k] = 0;
                }
                a.cap = nc;
            }
            st_report_persona *p = &m->personas[pi];
            int64_t cust = col_i64(&src->cols[0], i);
            bool active = src == &f || col_i64(&src->cols[6], i) != 0;
            p->customer_periods++;
            p->sales_volume += col_i64(&src->cols[2], i);
            p->foc_volume += col_i64(&src->cols[3], i);
            if (!a.seen[pi] || a.last_cust[pi] != cust) {
                p->customers++;
                a.seen[pi] = true;
                a.last_cust[pi] = cust;
            }
            if (cust != last_any || i == 0) {
                n_cust++;
                last_any = cust;
            }
            double r = col_f64(&src->cols[4], i);
            if (active && isfinite(r)) {
                a.ratio_sum[pi] += r;
                a.ratio_n[pi]++;
            }
        }
        for (size_t k = 0; k < m->n_personas; k++)
            m->personas[k].mean_foc_ratio = a.ratio_n[k] ? a.ratio_sum[k] / (double)a.ratio_n[k] : NAN;
        m->n_persona_customers = n_cust;
        /* display order; remember the permutation for the mix below */
        for (size_t i = 1; i < m->n_personas; i++)
            for (size_t j = i; j > 0 && cmp_persona_name(m->personas[j - 1].name, m->personas[j].name) > 0; j--) {
                st_report_persona tmp = m->personas[j];
                m->personas[j] = m->personas[j - 1];
                m->personas[j - 1] = tmp;
            }
    }
    /* persona mix per period from the grid */
    if (have_s && m->n_personas) {
        int32_t lo = INT32_MAX, hi = INT32_MIN;
        for (size_t i = 0; i < s.n_rows; i++) {
            int32_t p = (int32_t)col_i64(&s.cols[1], i);
            if (p < lo) lo = p;
            if (p > hi) hi = p;
        }
        /* distinct periods, sorted: collect then dedupe */
        int32_t *per = malloc((s.n_rows ? s.n_rows : 1) * sizeof *per);
        if (!per) {
            st = oom(err);
            goto agg_done;
        }
        size_t np = 0;
        /* months in [lo, hi] present in the data: mark with a bitmap over months */
        int64_t y0 = lo / 100, y1 = hi / 100;
        if (s.n_rows && y1 - y0 < 1000 && y1 >= y0) {
            size_t months = (size_t)(y1 - y0 + 1) * 12;
            uint8_t *mark = calloc(months, 1);
            if (!mark) {
                free(per);
                st = oom(err);
                goto agg_done;
            }
            for (size_t i = 0; i < s.n_rows; i++) {
                int32_t p = (int32_t)col_i64(&s.cols[1], i);
                int32_t mo = p % 100;
                if (mo >= 1 && mo <= 12) mark[(size_t)(p / 100 - y0) * 12 + (size_t)(mo - 1)] = 1;
            }
            for (size_t k = 0; k < months; k++)
                if (mark[k]) per[np++] = (int32_t)((y0 + (int64_t)(k / 12)) * 100 + (int64_t)(k % 12) + 1);
            free(mark);
        }
        size_t cells;
        int64_t *mix = np && st_size_mul(np, m->n_personas, &cells) ? calloc(cells, sizeof *mix) : NULL;
        if (np && !mix) {
            free(per);
            st = oom(err);
            goto agg_done;
        }
        for (size_t i = 0; i < s.n_rows && mix; i++) {
            int32_t p = (int32_t)col_i64(&s.cols[1], i);
            size_t lo_i = 0, hi_i = np;
            while (lo_i < hi_i) {
                size_t mid = (lo_i + hi_i) / 2;
                if (per[mid] < p) lo_i = mid + 1;
                else hi_i = mid;
            }
            if (lo_i >= np || per[lo_i] != p) continue;
            size_t len;
            const char *nm = col_str(&s.cols[5], i, &len);
            for (size_t k = 0; k < m->n_personas; k++)
                if (strlen(m->personas[k].name) == len && !memcmp(m->personas[k].name, nm, len)) {
                    mix[lo_i * m->n_personas + k]++;
                    break;
                }
        }
        m->periods = per;
        m->n_periods = mix ? np : 0;
        m->mix = mix;
        if (!m->first_period && np) {
            m->first_period = per[0];
            m->last_period = per[np - 1];
        }
    }
agg_done:
    free(a.last_cust);
    free(a.seen);
    free(a.ratio_sum);
    free(a.ratio_n);
done:
    if (have_f) tbl_close(&f);
    if (have_s) tbl_close(&s);
    return st;
}

/* Scatter sample from the facts: the two chosen features, evenly spaced. */
static st_status load_scatter(st_report_model *m, const char *wh, const char *fx, const char *fy, st_error *err)
{
    if (m->n_personas == 0) return ST_OK;
    const char *names[3] = {fx, fy, "persona"};
    tbl t;
    st_status st;
    if (!tbl_open(m, wh, "platinum", "fct_transactions", names, NULL, 3, &t, &st, err)) return st;
    size_t n = t.n_rows, k = n < ST_REPORT_MAX_POINTS ? n : ST_REPORT_MAX_POINTS;
    st = ST_OK;
    if (k) {
        m->pt_x = malloc(k * sizeof *m->pt_x);
        m->pt_y = malloc(k * sizeof *m->pt_y);
        m->pt_persona = malloc(k * sizeof *m->pt_persona);
        if (!m->pt_x || !m->pt_y || !m->pt_persona) {
            st = oom(err);
            goto done;
        }
        for (size_t j = 0; j < k; j++) {
            size_t i = (size_t)((double)j * (double)n / (double)k);
            if (i >= n) i = n - 1;
            m->pt_x[j] = col_f64(&t.cols[0], i);
            m->pt_y[j] = col_f64(&t.cols[1], i);
            size_t len;
            const char *nm = col_str(&t.cols[2], i, &len);
            m->pt_persona[j] = SIZE_MAX;
            for (size_t p = 0; p < m->n_personas; p++)
                if (strlen(m->personas[p].name) == len && !memcmp(m->personas[p].name, nm, len)) {
                    m->pt_persona[j] = p;
                    break;
                }
        }
        m->n_points = k;
    }
    m->n_points_total = (int64_t)n;
    if (!(m->scatter_x = dup_str(fx)) || !(m->scatter_y = dup_str(fy))) st = oom(err);
done:
    tbl_close(&t);
    return st;
}

static st_status load_centroids(st_report_model *m, const char *wh, st_error *err)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/platinum/ml_centroids.strata", wh);
    struct stat sb;
    if (stat(path, &sb) != 0) return ST_OK;
    st_reader *r = NULL;
    st_error e;
    st_status st = ST_OK;
    st_column *cols = NULL;
    size_t *which = NULL;
    size_t nf = 0, n_load = 0;
    if (st_reader_open(&r, path, &e) != ST_OK) return add_note(m, err, "could not read %s: %s", "platinum/ml_centroids.strata", e.msg);
    const st_file_meta *meta = st_reader_meta(r);
    for (size_t i = 0; meta && i < meta->n_kv; i++)
        if (meta->kv[i].key && !strcmp(meta->kv[i].key, "persona_rule")) {
            free(m->persona_rule);
            if (!(m->persona_rule = dup_str(meta->kv[i].value))) {
                st = oom(err);
                goto done;
            }
        }
    /* features: columns f with a matching f__scaled */
    size_t nfields = st_reader_n_fields(r);
    m->features = calloc(nfields ? nfields : 1, sizeof *m->features);
    which = calloc(nfields + 4, sizeof *which);
    cols = calloc(nfields + 4, sizeof *cols);
    if (!m->features || !which || !cols) {
        st = oom(err);
        goto done;
    }
    static const char *const fixed[4] = {"cluster", "persona", "size", "inertia_share"};
    for (int j = 0; j < 4; j++) {
        int ix = st_reader_find(r, fixed[j]);
        if (ix < 0) {
            st = add_note(m, err, "%s has no column %s", "platinum/ml_centroids.strata", fixed[j]);
            goto done;
        }
        which[n_load] = (size_t)ix;
        st_column_init(&cols[n_load++], st_reader_field(r, (size_t)ix)->type);
    }
    for (size_t i = 0; i < nfields; i++) {
        const st_field *fd = st_reader_field(r, i);
        size_t L = strlen(fd->name);
        if (L <= 8 || strcmp(fd->name + L - 8, "__scaled") != 0) continue;
        char base[256];
        if (L - 8 >= sizeof base) continue;
        memcpy(base, fd->name, L - 8);
        base[L - 8] = '\0';
        int ix = st_reader_find(r, base);
        if (ix < 0) continue;
        if (!(m->features[nf] = dup_str(base))) {
            st = oom(err);
            goto done;
        }
        nf++;
        m->n_features = nf;
        which[n_load] = (size_t)ix;
        st_column_init(&cols[n_load++], st_reader_field(r, (size_t)ix)->type);
    }
    if (st_reader_read_all(r, which, n_load, cols, &e) != ST_OK) {
        st = e.code == ST_ERR_NOMEM ? oom(err) : add_note(m, err, "could not read %s: %s", "platinum/ml_centroids.strata", e.msg);
        goto done;
    }
    size_t n = cols[0].n_rows;
    m->clusters = calloc(n ? n : 1, sizeof *m->clusters);
    if (!m->clusters) {
        st = oom(err);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        st_report_cluster *c = &m->clusters[i];
        size_t len;
        const char *nm = col_str(&cols[1], i, &len);
        c->cluster = (int32_t)col_i64(&cols[0], i);
        c->size = col_i64(&cols[2], i);
        c->inertia_share = col_f64(&cols[3], i);
        c->persona = dup_n(nm, len);
        c->values = malloc((nf ? nf : 1) * sizeof *c->values);
        m->n_clusters = i + 1;
        if (!c->persona || !c->values) {
            st = oom(err);
            goto done;
        }
        for (size_t f = 0; f < nf; f++) c->values[f] = col_f64(&cols[4 + f], i);
    }
    /* display order: by persona (Champions first), then cluster number */
    for (size_t i = 1; i < m->n_clusters; i++)
        for (size_t j = i; j > 0; j--) {
            st_report_cluster *a = &m->clusters[j - 1], *b = &m->clusters[j];
            int c = cmp_persona_name(a->persona, b->persona);
            if (c < 0 || (c == 0 && a->cluster <= b->cluster)) break;
            st_report_cluster tmp = *a;
            *a = *b;
            *b = tmp;
        }
done:
    for (size_t j = 0; cols && j < n_load; j++) st_column_free(&cols[j]);
    free(cols);
    free(which);
    st_reader_close(r);
    return st;
}

static st_status load_k(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"k", "inertia", "silhouette", "is_knee", "is_chosen"};
    tbl t;
    st_status st;
    if (!tbl_open(m, wh, "platinum", "ml_k_selection", names, NULL, 5, &t, &st, err)) return st;
    size_t n = t.n_rows ? t.n_rows : 1;
    m->k = malloc(n * sizeof *m->k);
    m->inertia = malloc(n * sizeof *m->inertia);
    m->silhouette = malloc(n * sizeof *m->silhouette);
    if (!m->k || !m->inertia || !m->silhouette) {
        tbl_close(&t);
        return oom(err);
    }
    for (size_t i = 0; i < t.n_rows; i++) {
        m->k[i] = (int32_t)col_i64(&t.cols[0], i);
        m->inertia[i] = col_f64(&t.cols[1], i);
        m->silhouette[i] = col_f64(&t.cols[2], i);
        if (col_i64(&t.cols[3], i)) m->knee_k = m->k[i];
        if (col_i64(&t.cols[4], i)) m->chosen_k = m->k[i];
    }
    m->n_k = t.n_rows;
    tbl_close(&t);
    return ST_OK;
}

static st_status load_transitions(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"from_persona", "to_persona", "n"};
    tbl t;
    st_status st = ST_OK;
    if (!tbl_open(m, wh, "platinum", "marts_persona_transitions", names, NULL, 3, &t, &st, err)) return st;
    /* labels: the union of from/to names in display order */
    size_t cap = 0, n = 0;
    char **labels = NULL;
    for (size_t i = 0; i < t.n_rows && st == ST_OK; i++)
        for (int c = 0; c < 2; c++) {
            size_t len;
            const char *nm = col_str(&t.cols[c], i, &len);
            bool found = false;
            for (size_t k = 0; k < n && !found; k++) found = strlen(labels[k]) == len && !memcmp(labels[k], nm, len);
            if (found) continue;
            if (!grow((void **)&labels, &cap, n + 1, sizeof *labels) || !(labels[n] = dup_n(nm, len))) {
                st = oom(err);
                break;
            }
            n++;
        }
    if (st == ST_OK) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cmp_persona_name(labels[j - 1], labels[j]) > 0; j--) {
                char *tmp = labels[j];
                labels[j] = labels[j - 1];
                labels[j - 1] = tmp;
            }
        size_t cells;
        int64_t *counts = n && st_size_mul(n, n, &cells) ? calloc(cells, sizeof *counts) : NULL;
        if (n && !counts) {
            st = oom(err);
        } else {
            for (size_t i = 0; i < t.n_rows; i++) {
                size_t a = n, b = n, la, lb;
                const char *fa = col_str(&t.cols[0], i, &la), *fb = col_str(&t.cols[1], i, &lb);
                for (size_t k = 0; k < n; k++) {
                    if (strlen(labels[k]) == la && !memcmp(labels[k], fa, la)) a = k;
                    if (strlen(labels[k]) == lb && !memcmp(labels[k], fb, lb)) b = k;
                }
                if (a < n && b < n) counts[a * n + b] += col_i64(&t.cols[2], i);
            }
            m->trans_labels = labels;
            m->n_trans_labels = n;
            m->trans_counts = counts;
            labels = NULL;
        }
    }
    for (size_t k = 0; labels && k < n; k++) free(labels[k]);
    free(labels);
    tbl_close(&t);
    return st;
}

static int cmp_count(const void *pa, const void *pb)
{
    const st_report_count *a = pa, *b = pb;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    return strcmp(a->name, b->name);
}

static st_status load_rejects(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"reason"};
    tbl t;
    st_status st = ST_OK;
    if (!tbl_open(m, wh, "silver", "stg_rejects", names, NULL, 1, &t, &st, err)) return st;
    size_t cap = 0;
    for (size_t i = 0; i < t.n_rows; i++) {
        size_t len, k;
        const char *nm = col_str(&t.cols[0], i, &len);
        for (k = 0; k < m->n_rejects; k++)
            if (strlen(m->rejects[k].name) == len && !memcmp(m->rejects[k].name, nm, len)) break;
        if (k == m->n_rejects) {
            if (!grow((void **)&m->rejects, &cap, k + 1, sizeof *m->rejects) ||
                !(m->rejects[k].name = dup_n(nm, len))) {
                st = oom(err);
                break;
            }
            m->rejects[k].n = 0;
            m->n_rejects++;
        }
        m->rejects[k].n++;
    }
    if (m->n_rejects) qsort(m->rejects, m->n_rejects, sizeof *m->rejects, cmp_count);
    m->has_rejects = st == ST_OK;
    tbl_close(&t);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir (entries not starting with '.'); caller frees. */
static char **list_dir(const char *dir, size_t *n_out, bool *nomem)
{
    *n_out = 0;
    *nomem = false;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (!grow((void **)&v, &cap, n + 1, sizeof *v) || !(v[n] = dup_str(de->d_name))) {
            *nomem = true;
            break;
        }
        n++;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, cmp_str);
    *n_out = n;
    return v;
}

static int layer_rank(const char *l)
{
    static const char *const order[] = {"bronze", "silver", "gold", "platinum"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(l, order[i])) return i;
    return 4;
}

static int cmp_layer(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int rx = layer_rank(x), ry = layer_rank(y);
    return rx != ry ? (rx < ry ? -1 : 1) : strcmp(x, y);
}

/* Every <wh>/<layer>/<table>.strata footer -> m->tables (lineage). */
static st_status load_lineage(st_report_model *m, const char *wh, st_error *err)
{
    size_t nl;
    bool nomem;
    st_status st = ST_OK;
    char **layers = list_dir(wh, &nl, &nomem);
    if (nomem) st = oom(err);
    if (nl) qsort(layers, nl, sizeof *layers, cmp_layer);
    size_t cap = 0;
    for (size_t l = 0; l < nl && st == ST_OK; l++) {
        if (layers[l][0] == '_' || !strcmp(layers[l], "quality") || !strcmp(layers[l], "report")) continue;
        char dir[PATH_CAP];
        snprintf(dir, sizeof dir, "%s/%s", wh, layers[l]);
        size_t nt;
        char **files = list_dir(dir, &nt, &nomem);
        if (nomem) st = oom(err);
        for (size_t f = 0; f < nt && st == ST_OK; f++) {
            size_t L = strlen(files[f]);
            if (L <= 7 || strcmp(files[f] + L - 7, ".strata") != 0) continue;
            char path[PATH_CAP + 256];
            snprintf(path, sizeof path, "%s/%s", dir, files[f]);
            st_reader *r = NULL;
            st_error e;
            if (st_reader_open(&r, path, &e) != ST_OK) {
                char what[600];
                snprintf(what, sizeof what, "%s/%s", layers[l], files[f]);
                st = add_note(m, err, "could not read %s: %s", what, e.msg);
                continue;
            }
            if (!grow((void **)&m->tables, &cap, m->n_tables + 1, sizeof *m->tables)) {
                st_reader_close(r);
                st = oom(err);
                break;
            }
            st_report_table *t = &m->tables[m->n_tables];
            memset(t, 0, sizeof *t);
            m->n_tables++;
            const st_file_meta *meta = st_reader_meta(r);
            t->layer = dup_str(layers[l]);
            t->table = dup_n(files[f], L - 7);
            t->n_rows = (int64_t)st_reader_n_rows(r);
            size_t ni = meta ? meta->n_inputs : 0;
            t->inputs = calloc(ni ? ni : 1, sizeof *t->inputs);
            if (!t->layer || !t->table || !t->inputs) st = oom(err);
            for (size_t k = 0; k < ni && st == ST_OK; k++) {
                if (!(t->inputs[k] = dup_str(meta->inputs[k]))) st = oom(err);
                else t->n_inputs = k + 1;
            }
            st_reader_close(r);
        }
        for (size_t f = 0; f < nt; f++) free(files[f]);
        free(files);
    }
    for (size_t l = 0; l < nl; l++) free(layers[l]);
    free(layers);
    return st;
}

/* ---- JSON files ---- */

/* Reads a whole small file; *buf NULL when absent. Caller frees. */
static st_status slurp(st_report_model *m, const char *path, const char *what, char **buf, size_t *len,
                       st_error *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? ST_OK : add_note(m, err, "could not open %s: %s", what, strerror(errno));
    st_status st = ST_OK;
    char *d = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_JSON_BYTES) {
                st = add_note(m, err, "%s is larger than %s; ignored", what, "64 MiB");
                goto done;
            }
            size_t nc = cap ? cap * 2 : 4096;
            char *p = realloc(d, nc);
            if (!p) {
                st = oom(err);
                goto done;
            }
            d = p;
            cap = nc;
        }
        size_t got = fread(d + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        st = add_note(m, err, "could not read %s: %s", what, "read error");
        goto done;
    }
    *buf = d;
    *len = n;
    d = NULL;
done:
    free(d);
    fclose(f);
    return st;
}

/* First string among several possible keys (older/newer writers). */
static const char *str_of(const st_json *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const st_json *v = st_json_get(o, keys[i]);
        if (v && v->kind == ST_JSON_STR) return v->str;
    }
    return NULL;
}

static const st_json *any_of(const st_json *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const st_json *v = st_json_get(o, keys[i]);
        if (v && v->kind != ST_JSON_NULL) return v;
    }
    return NULL;
}

static const char *norm_status(const st_json *v)
{
    if (!v) return "unknown";
    if (v->kind == ST_JSON_BOOL) return v->b ? "pass" : "fail";
    if (v->kind != ST_JSON_STR) return "unknown";
    const char *s = v->str;
    if (!strcmp(s, "pass") || !strcmp(s, "passed") || !strcmp(s, "ok") || !strcmp(s, "success")) return "pass";
    if (!strcmp(s, "warn") || !strcmp(s, "warning") || !strcmp(s, "warned")) return "warn";
    if (!strcmp(s, "fail") || !strcmp(s, "failed") || !strcmp(s, "error")) return "fail";
    return s;
}

st_status st_report_load_quality_json(st_report_model *m, const char *buf, size_t len, st_error *err)
{
    st_json j;
    st_error e;
    if (st_json_parse(buf, len, "quality/results.json", &j, &e) != ST_OK)
        return e.code == ST_ERR_NOMEM ? oom(err) : add_note(m, err, "could not read %s: %s", "quality/results.json", e.msg);
    static const char *const list_keys[] = {"expectations", "results", "checks"};
    const st_json *list = j.kind == ST_JSON_ARR ? &j : NULL;
    for (size_t i = 0; !list && i < 3; i++) {
        const st_json *v = st_json_get(&j, list_keys[i]);
        if (v && v->kind == ST_JSON_ARR) list = v;
    }
    st_status st = ST_OK;
    size_t n = st_json_count(list);
    m->has_quality = list != NULL;
    if (n) {
        m->expectations = calloc(n, sizeof *m->expectations);
        if (!m->expectations) {
            st = oom(err);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const st_json *o = st_json_at(list, i);
        static const char *const k_name[] = {"name", "kind", "expectation", "check", "type", "id"};
        static const char *const k_table[] = {"table", "dataset"};
        static const char *const k_col[] = {"column", "columns"};
        static const char *const k_sev[] = {"severity", "level"};
        static const char *const k_status[] = {"status", "result", "outcome", "passed", "success"};
        static const char *const k_msg[] = {"message", "detail", "details"};
        static const char *const k_obs[] = {"observed", "observed_value"};
        static const char *const k_fail[] = {"failing_rows", "unexpected_count", "n_failing", "failed_rows", "failures"};
        st_report_expectation *x = &m->expectations[i];
        m->n_expectations = i + 1;
        x->failing_rows = -1;
        x->name = dup_str(str_of(o, k_name, 6));
        /* "layer" + "table" -> "layer.table" unless the table is qualified */
        const char *layer = st_json_string(st_json_get(o, "layer"), NULL);
        const char *table = str_of(o, k_table, 2);
        if (layer && *layer && table && *table && !strchr(table, '.')) {
            size_t ll = strlen(layer), tl = strlen(table);
            x->table = malloc(ll + tl + 2);
            if (x->table) snprintf(x->table, ll + tl + 2, "%s.%s", layer, table);
        } else {
            x->table = dup_str(table);
        }
        x->column = dup_str(str_of(o, k_col, 2));
        x->severity = dup_str(str_of(o, k_sev, 2));
        x->status = dup_str(norm_status(any_of(o, k_status, 5)));
        /* detail: the message when there is one, else the rule's
         * arguments and the observed value */
        const char *msg = str_of(o, k_msg, 3);
        const st_json *d = any_of(o, k_obs, 2);
        const char *args = st_json_string(st_json_get(o, "args"), NULL);
        char tmp[48], det[600];
        const char *ds = "";
        if (d && d->kind == ST_JSON_STR) ds = d->str;
        else if (d && d->kind == ST_JSON_NUM) ds = st_svg_fmt_num(d->num, d->num == floor(d->num) ? 0 : 3, tmp);
        else if (d && d->kind == ST_JSON_BOOL) ds = d->b ? "true" : "false";
        if (msg && *msg) snprintf(det, sizeof det, "%.590s", msg);
        else if (args && *args && *ds) snprintf(det, sizeof det, "%.300s; observed %.280s", args, ds);
        else if (args && *args) snprintf(det, sizeof det, "%.590s", args);
        else snprintf(det, sizeof det, "%.590s", ds);
        x->detail = dup_str(det);
        const st_json *fr = any_of(o, k_fail, 5);
        double fv = st_json_number(fr, -1);
        if (fv >= 0 && fv < 9e18) x->failing_rows = (int64_t)fv;
        if (!x->name || !x->table || !x->column || !x->severity || !x->status || !x->detail) {
            st = oom(err);
            goto done;
        }
    }
done:
    st_json_free(&j);
    return st;
}

st_status st_report_load_run_json(st_report_model *m, const char *buf, size_t len, st_error *err)
{
    st_json j;
    st_error e;
    if (st_json_parse(buf, len, "_runs/latest.json", &j, &e) != ST_OK)
        return e.code == ST_ERR_NOMEM ? oom(err) : add_note(m, err, "could not read %s: %s", "_runs/latest.json", e.msg);
    st_status st = ST_OK;
    if (j.kind != ST_JSON_OBJ) {
        st = add_note(m, err, "%s: %s", "_runs/latest.json", "not a JSON object");
        goto done;
    }
    m->has_run = true;
    const char *id = st_json_string(st_json_get(&j, "run_id"), NULL);
    const char *started = st_json_string(st_json_get(&j, "started"), NULL);
    const char *status = st_json_string(st_json_get(&j, "status"), NULL);
    if ((id && !(m->run_id = dup_str(id))) || (started && !(m->run_started = dup_str(started))) ||
        (status && !(m->run_status = dup_str(status)))) {
        st = oom(err);
        goto done;
    }
    double th = st_json_number(st_json_get(&j, "threads"), 0);
    m->threads = th > 0 && th < 1e6 ? (int)th : 0;
    m->run_seconds = st_json_number(st_json_get(&j, "seconds"), NAN);
    m->run_peak_rss_bytes = st_json_number(st_json_get(&j, "peak_rss_bytes"), NAN);
    const st_json *steps = st_json_get(&j, "steps");
    size_t n = steps && steps->kind == ST_JSON_ARR ? steps->n : 0;
    if (n) {
        m->steps = calloc(n, sizeof *m->steps);
        if (!m->steps) {
            st = oom(err);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const st_json *o = st_json_at(steps, i);
        st_report_step *s = &m->steps[i];
        m->n_steps = i + 1;
        s->name = dup_str(st_json_string(st_json_get(o, "name"), "?"));
        s->status = dup_str(st_json_string(st_json_get(o, "status"), "unknown"));
        s->note = dup_str(st_json_string(st_json_get(o, "note"), ""));
        s->rows_in = st_json_number(st_json_get(o, "rows_in"), NAN);
        s->rows_out = st_json_number(st_json_get(o, "rows_out"), NAN);
        s->seconds = st_json_number(st_json_get(o, "seconds"), NAN);
        s->peak_rss_bytes = st_json_number(st_json_get(o, "peak_rss_bytes"), NAN);
        if (!s->name || !s->status || !s->note) {
            st = oom(err);
            goto done;
        }
    }
done:
    st_json_free(&j);
    return st;
}

static st_status load_json_file(st_report_model *m, const char *wh, const char *rel, bool quality, st_error *err)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", wh, rel);
    char *buf;
    size_t len;
    ST_TRY(slurp(m, path, rel, &buf, &len, err));
    if (!buf) return ST_OK;
    st_status st = quality ? st_report_load_quality_json(m, buf, len, err) : st_report_load_run_json(m, buf, len, err);
    free(buf);
    return st;
}

st_status st_report_load(st_report_model *m, const char *warehouse, st_error *err)
{
    struct stat sb;
    if (stat(warehouse, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return st_error_set(err, ST_ERR_NOTFOUND, "warehouse %s: not a directory", warehouse);
    ST_TRY(load_customers(m, warehouse, err));
    ST_TRY(load_personas_and_facts(m, warehouse, err));
    ST_TRY(load_centroids(m, warehouse, err));
    /* the scatter's two features: volume against free-of-charge ratio */
    const char *fx = "total_sold_quantity", *fy = "foc_ratio";
    ST_TRY(load_scatter(m, warehouse, fx, fy, err));
    ST_TRY(load_k(m, warehouse, err));
    ST_TRY(load_transitions(m, warehouse, err));
    ST_TRY(load_rejects(m, warehouse, err));
    ST_TRY(load_lineage(m, warehouse, err));
    ST_TRY(load_json_file(m, warehouse, "quality/results.json", true, err));
    ST_TRY(load_json_file(m, warehouse, "_runs/latest.json", false, err));
    return ST_OK;
}
