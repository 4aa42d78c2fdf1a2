/*
 * pipeline/report/load.c: a warehouse on disk -> st_report_model.
 *
 * Reads only what the page shows, through the layer-file reader
 * (strata/file.h) and the JSON reader (json_read_internal.h). The loader
 * is forgiving by design: a report is most useful exactly when a run went
 * wrong, so a missing file leaves its section empty and an unreadable one
 * becomes a note on the page; only running out of memory stops it.
 *
 * Memory: every table is scanned chunk by chunk (scan_open / scan_next:
 * one decoded block per requested column, at most ST_CHUNK_ROWS rows) and
 * folded into aggregates as the chunks pass; the reader hands the mapped
 * pages behind the scan back. What stays is what the page shows, none of
 * it per customer: per persona sums and distinct-customer counts (rows
 * come sorted by customer, so "last customer seen" per persona counts
 * without a set), (period, persona) counts for the mix, the
 * ST_REPORT_MAX_POINTS scatter points (taken at their row numbers as the
 * chunks go by), labels^2 transition counts, one count per reject reason,
 * the k-selection rows and the centroids (one row per cluster, read
 * whole); the customer views take one more pass over the grid merged with
 * dim_customers and keep bounded lists (see "the customer views" below). Persona and reason strings are read as each chunk's dictionary
 * plus codes and looked up once per dictionary entry. The JSON files are
 * read whole (64 MiB at most). At 1M customers x 60 months the process
 * peak is about 12 MB (it was 3.7 GB with whole columns).
 *
 * Damage: aggregates go to the model only when their scan ended cleanly,
 * so a bad block anywhere leaves that part empty, and the note names the
 * block a whole-column read meets first (column by column, scan_fail), as
 * it always has: a damaged warehouse gives the same page.
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
#include "svg_internal.h"

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

/* ---- reading a table chunk by chunk ----
 *
 * A scan holds one chunk's blocks of the requested columns; scan_next()
 * replaces them with the next chunk's. A string column may be read "by
 * code" (st_reader_read_block_dict): cols[i] is then the block's
 * dictionary and codes[i][row] the entry of each row, so a loader can
 * resolve a persona name once per dictionary entry instead of once per
 * row. Callers aggregate into their own state and commit it to the model
 * only when the scan ended without failure: a damaged table must leave its
 * part of the model empty, as if it had been missing. */

#define SCAN_MAX_COLS 16

typedef struct scan {
    st_reader *r;
    char what[200];                     /* "layer/table.strata", for notes */
    size_t n_cols;
    size_t idx[SCAN_MAX_COLS];          /* field index of each requested column */
    bool by_code[SCAN_MAX_COLS];        /* read as dictionary + codes */
    st_column cols[SCAN_MAX_COLS];      /* current chunk's blocks (dictionary when by_code) */
    uint32_t *codes[SCAN_MAX_COLS];     /* by_code: n_rows entries into cols[i] */
    size_t codes_cap;                   /* entries each codes[i] can hold */
    size_t next_chunk;
    size_t n_rows;                      /* rows in the current chunk */
    uint64_t first_row;                 /* table row of the current chunk's row 0 */
    bool failed;                        /* a chunk could not be read (note added) */
} scan;

static void scan_close(scan *s)
{
    for (size_t i = 0; i < s->n_cols; i++) {
        st_column_free(&s->cols[i]);
        free(s->codes[i]);
    }
    st_reader_close(s->r);
    memset(s, 0, sizeof *s);
}

/* Opens <wh>/<layer>/<table>.strata for a scan of the named columns;
 * by_code (may be NULL) marks the string columns to read as dictionary +
 * codes (ignored for a column that is not a string). Returns true when the
 * table is usable; a missing file is silently false, an unreadable one or
 * a missing column adds a note. *st reports out-of-memory. */
static bool scan_open(st_report_model *m, const char *wh, const char *layer, const char *table,
                      const char *const *names, const bool *by_code, size_t n, scan *s, st_status *st,
                      st_error *err)
{
    memset(s, 0, sizeof *s);
    *st = ST_OK;
    if (n > SCAN_MAX_COLS) return false;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s/%s.strata", wh, layer, table);
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    snprintf(s->what, sizeof s->what, "%s/%s.strata", layer, table);
    st_error e;
    st_error_clear(&e);
    if (st_reader_open(&s->r, path, &e) != ST_OK) {
        s->r = NULL;
        *st = add_note(m, err, "could not read %s: %s", s->what, e.msg);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int ix = st_reader_find(s->r, names[i]);
        if (ix < 0) {
            *st = add_note(m, err, "%s has no column %s", s->what, names[i]);
            scan_close(s);
            return false;
        }
        s->idx[i] = (size_t)ix;
    }
    for (size_t i = 0; i < n; i++) {
        st_type ty = st_reader_field(s->r, s->idx[i])->type;
        st_column_init(&s->cols[i], ty);
        s->by_code[i] = by_code && by_code[i] && (ty == ST_TYPE_STR || ty == ST_TYPE_BYTES);
    }
    s->n_cols = n;
    return true;
}

/* A scan failed with e. The note names the first bad block in the order a
 * whole-column read meets it (column by column, each from its first
 * chunk), so a damaged table gives the same message as it always has;
 * out of memory stays out of memory. */
static st_status scan_fail(st_report_model *m, scan *s, const st_error *e, st_error *err)
{
    st_error first = *e;
    if (e->code != ST_ERR_NOMEM) {
        bool found = false;
        st_column tmp;
        for (size_t i = 0; i < s->n_cols && !found; i++) {
            st_column_init(&tmp, st_reader_field(s->r, s->idx[i])->type);
            for (size_t c = 0; c < st_reader_n_chunks(s->r) && !found; c++) {
                st_error e2;
                st_error_clear(&e2);
                if (st_reader_read_block(s->r, c, s->idx[i], &tmp, &e2) != ST_OK) {
                    first = e2;
                    found = true;
                }
            }
            st_column_free(&tmp);
        }
    }
    if (first.code == ST_ERR_NOMEM) return oom(err);
    return add_note(m, err, "could not read %s: %s", s->what, first.msg);
}

/* Loads the next chunk. True when one is loaded; false at the end, or
 * after a failure: then s->failed is set and either a note was added or
 * *st is out of memory. */
static bool scan_next(st_report_model *m, scan *s, st_status *st, st_error *err)
{
    *st = ST_OK;
    s->first_row += s->n_rows;
    s->n_rows = 0;
    if (s->next_chunk >= st_reader_n_chunks(s->r)) return false;
    size_t c = s->next_chunk++;
    size_t rows = st_reader_chunk_rows(s->r, c);
    st_error e;
    st_error_clear(&e);
    if (rows > s->codes_cap) {
        for (size_t i = 0; i < s->n_cols; i++) {
            if (!s->by_code[i]) continue;
            uint32_t *p = realloc(s->codes[i], rows * sizeof *p);
            if (!p) {
                s->failed = true;
                *st = oom(err);
                return false;
            }
            s->codes[i] = p;
        }
        s->codes_cap = rows;
    }
    for (size_t i = 0; i < s->n_cols; i++) {
        st_status rs = s->by_code[i] ? st_reader_read_block_dict(s->r, c, s->idx[i], &s->cols[i], s->codes[i], &e)
                                     : st_reader_read_block(s->r, c, s->idx[i], &s->cols[i], &e);
        if (rs != ST_OK) {
            if (e.code == ST_OK) st_error_set(&e, rs, "could not read %s", s->what);
            s->failed = true;
            *st = scan_fail(m, s, &e, err);
            return false;
        }
        if (!s->by_code[i] && s->cols[i].n_rows < rows) rows = s->cols[i].n_rows;
    }
    s->n_rows = rows;
    return true;
}

/* Row i's code in column c: its dictionary entry when read by code, else
 * i itself (the block holds one value per row). */
static inline size_t scan_code(const scan *s, size_t c, size_t i) { return s->by_code[c] ? s->codes[c][i] : i; }

/* Entries a code of column c can take in the current chunk. */
static inline size_t scan_n_codes(const scan *s, size_t c) { return s->cols[c].n_rows; }

/* ---- names met while scanning ---- */

/* Per-chunk cache from a string column's codes to an index the loader
 * gave the value (a persona, a reason, a label); entries start unset and
 * are resolved when a row first uses them, so values are met in row
 * order. */
#define CODE_UNSET SIZE_MAX

typedef struct code_map {
    size_t *idx;
    size_t cap;
} code_map;

static bool code_map_reset(code_map *cm, size_t n)
{
    if (!grow((void **)&cm->idx, &cm->cap, n ? n : 1, sizeof *cm->idx)) return false;
    for (size_t i = 0; i < n; i++) cm->idx[i] = CODE_UNSET;
    return true;
}

/* A growing list of distinct names in the order they are met. */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void name_list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Index of (s, len) in l, appending it when absent; *added says so. */
static bool name_list_index(name_list *l, const char *s, size_t len, size_t *out, bool *added)
{
    *added = false;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0) {
            *out = i;
            return true;
        }
    if (!grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return false;
    if (!(l->v[l->n] = dup_n(s, len))) return false;
    *added = true;
    *out = l->n++;
    return true;
}

/* Index in names of the value of column c at row i of the scan, through
 * the chunk's code map. */
static bool scan_name(const scan *s, size_t c, size_t i, code_map *cm, name_list *names, size_t *out,
                      bool *added)
{
    size_t code = scan_code(s, c, i);
    *added = false;
    if (cm->idx[code] != CODE_UNSET) {
        *out = cm->idx[code];
        return true;
    }
    size_t len;
    const char *nm = col_str(&s->cols[c], code, &len);
    if (!name_list_index(names, nm, len, out, added)) return false;
    cm->idx[code] = *out;
    return true;
}

static int cmp_persona_name(const char *a, const char *b)
{
    int ra = st_report_persona_rank(a), rb = st_report_persona_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    return strcmp(a, b);
}

/* Display order of names[0..n): order[r] = the name shown r-th (by
 * st_report_persona_rank(), then name; names are distinct). */
static void persona_order(char *const *names, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp_persona_name(names[order[j - 1]], names[order[j]]) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

/* ---- the tables ---- */

static st_status load_customers(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"is_known"};
    scan s;
    st_status st;
    if (!scan_open(m, wh, "platinum", "dim_customers", names, NULL, 1, &s, &st, err)) return st;
    int64_t known = 0, rows = 0;
    while (scan_next(m, &s, &st, err)) {
        for (size_t i = 0; i < s.n_rows; i++) known += col_i64(&s.cols[0], i) != 0;
        rows += (int64_t)s.n_rows;
    }
    bool failed = s.failed;
    scan_close(&s);
    if (failed) return st;
    m->n_customers = rows;
    m->n_known = known;
    m->n_orphan = rows - known;
    m->has_kpis = true;
    return ST_OK;
}

/* Persona aggregates of one table (the facts or the grid), personas in
 * the order rows first name them. Rows are sorted by customer, so "last
 * customer counted" per persona gives distinct counts without a set of
 * customers: the state is O(personas). */
typedef struct persona_acc {
    int64_t customers, customer_periods, sales_volume, foc_volume;
    int64_t last_cust;
    bool seen;
    double ratio_sum;   /* over active rows with a finite ratio, in row order */
    int64_t ratio_n;
} persona_acc;

typedef struct persona_agg {
    name_list names;
    persona_acc *acc;   /* names.n entries */
    size_t acc_cap;
    int64_t last_any, n_cust;
    uint64_t rows;
    code_map cm;        /* the current chunk's persona codes -> names */
} persona_agg;

static void persona_agg_free(persona_agg *a)
{
    name_list_free(&a->names);
    free(a->acc);
    free(a->cm.idx);
    memset(a, 0, sizeof *a);
}

/* Adds one row; column pc of s is the persona. False: out of memory. */
static bool persona_agg_row(persona_agg *a, const scan *s, size_t pc, size_t i, int64_t cust, int64_t sold,
                            int64_t foc, double ratio, bool active, size_t *pi_out)
{
    size_t pi;
    bool added;
    if (!scan_name(s, pc, i, &a->cm, &a->names, &pi, &added)) return false;
    if (added) {
        if (!grow((void **)&a->acc, &a->acc_cap, a->names.n, sizeof *a->acc)) return false;
        memset(&a->acc[pi], 0, sizeof a->acc[pi]);
    }
    persona_acc *p = &a->acc[pi];
    p->customer_periods++;
    p->sales_volume += sold;
    p->foc_volume += foc;
    if (!p->seen || p->last_cust != cust) {
        p->customers++;
        p->seen = true;
        p->last_cust = cust;
    }
    if (cust != a->last_any || a->rows == 0) {
        a->n_cust++;
        a->last_any = cust;
    }
    if (active && isfinite(ratio)) {
        p->ratio_sum += ratio;
        p->ratio_n++;
    }
    a->rows++;
    *pi_out = pi;
    return true;
}

/* Rows of the grid per (period, persona), for the mix chart: an open
 * addressing table keyed by (period << 32 | persona met-order index);
 * only periods with a month 1..12 are kept (key never 0). Its size is
 * periods x personas. */
typedef struct mix_cell {
    uint64_t key;
    int64_t n;
    int64_t sold;   /* units sold in the cell */
} mix_cell;

typedef struct mix_table {
    mix_cell *cells;
    size_t cap, used;   /* cap a power of two */
} mix_table;

static size_t mix_slot(uint64_t key, size_t cap)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static bool mix_add(mix_table *t, int32_t period, size_t persona, int64_t sold)
{
    if ((t->used + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        mix_cell *c = calloc(nc, sizeof *c);
        if (!c) return false;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->cells[i].key) continue;
            size_t k = mix_slot(t->cells[i].key, nc);
            while (c[k].key) k = (k + 1) & (nc - 1);
            c[k] = t->cells[i];
        }
        free(t->cells);
        t->cells = c;
        t->cap = nc;
    }
    uint64_t key = (uint64_t)(uint32_t)period << 32 | (uint64_t)(uint32_t)persona;
    size_t k = mix_slot(key, t->cap);
    while (t->cells[k].key && t->cells[k].key != key) k = (k + 1) & (t->cap - 1);
    if (!t->cells[k].key) {
        t->cells[k].key = key;
        t->used++;
    }
    t->cells[k].n++;
    t->cells[k].sold += sold;
    return true;
}

/* Headline numbers from the facts. */
typedef struct facts_acc {
    int64_t rows, sold, foc;
    int32_t lo, hi;   /* smallest positive / largest period key, 0 none */
} facts_acc;

/* One pass over the facts (platinum.fct_transactions: the headline and
 * the persona aggregates, used when the grid is missing) or, with grid,
 * over platinum.marts_customer_summary (the dense grid: the persona
 * aggregates with Not Active, the period range [*lo, *hi] and the mix).
 * Both tables have the same columns, the grid one more (is_active).
 * *have false when the table is missing or unreadable. */
static st_status scan_persona_table(st_report_model *m, const char *wh, bool grid, bool *have, facts_acc *fa,
                                    persona_agg *pa, mix_table *mix, int32_t *lo, int32_t *hi, st_error *err)
{
    static const char *const names[] = {"customer_id", "period_key", "total_sold_quantity",
                                        "total_foc_quantity", "foc_ratio", "persona", "is_active"};
    static const bool by_code[] = {false, false, false, false, false, true, false};
    scan s;
    st_status st;
    *have = scan_open(m, wh, "platinum", grid ? "marts_customer_summary" : "fct_transactions", names, by_code,
                      grid ? 7 : 6, &s, &st, err);
    if (!*have) return st;
    while (scan_next(m, &s, &st, err)) {
        if (!code_map_reset(&pa->cm, scan_n_codes(&s, 5))) {
            st = oom(err);
            break;
        }
        for (size_t i = 0; i < s.n_rows; i++) {
            int64_t sold = col_i64(&s.cols[2], i), foc = col_i64(&s.cols[3], i);
            int32_t p = (int32_t)col_i64(&s.cols[1], i);
            if (grid) {
                if (p < *lo) *lo = p;
                if (p > *hi) *hi = p;
            } else {
                fa->sold += sold;
                fa->foc += foc;
                if (p > 0 && (fa->lo == 0 || p < fa->lo)) fa->lo = p;
                if (p > fa->hi) fa->hi = p;
            }
            bool active = grid ? col_i64(&s.cols[6], i) != 0 : true;
            size_t pi;
            if (!persona_agg_row(pa, &s, 5, i, col_i64(&s.cols[0], i), sold, foc, col_f64(&s.cols[4], i), active,
                                 &pi)) {
                st = oom(err);
                goto done;
            }
            int32_t mo = p % 100;
            if (grid && mo >= 1 && mo <= 12 && !mix_add(mix, p, pi, sold)) {
                st = oom(err);
                goto done;
            }
        }
        if (!grid) fa->rows += (int64_t)s.n_rows;
    }
done:
    if (s.failed || st != ST_OK) *have = false;
    scan_close(&s);
    return st;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* Moves the aggregates of a into m->personas in display order; inverse[k]
 * becomes the display position of a's k-th persona. */
static st_status install_personas(st_report_model *m, persona_agg *a, size_t *inverse, st_error *err)
{
    size_t n = a->names.n;
    if (n == 0) {
        m->n_persona_customers = a->n_cust;
        return ST_OK;
    }
    size_t *order = malloc(n * sizeof *order);
    m->personas = calloc(n, sizeof *m->personas);
    if (!order || !m->personas) {
        free(order);
        return oom(err);
    }
    persona_order(a->names.v, n, order);
    for (size_t r = 0; r < n; r++) {
        size_t k = order[r];
        const persona_acc *q = &a->acc[k];
        st_report_persona *p = &m->personas[r];
        p->name = a->names.v[k];
        a->names.v[k] = NULL;
        p->customers = q->customers;
        p->customer_periods = q->customer_periods;
        p->sales_volume = q->sales_volume;
        p->foc_volume = q->foc_volume;
        p->mean_foc_ratio = q->ratio_n ? q->ratio_sum / (double)q->ratio_n : NAN;
        inverse[k] = r;
    }
    m->n_personas = n;
    m->n_persona_customers = a->n_cust;
    free(order);
    return ST_OK;
}

/* The mix chart from the grid's (period, persona) counts: periods are the
 * distinct month keys met, sorted, provided the grid's period range spans
 * fewer than 1000 years (a garbage key elsewhere leaves the chart empty). */
static st_status install_mix(st_report_model *m, const mix_table *t, const size_t *inverse, int32_t lo,
                             int32_t hi, st_error *err)
{
    int64_t y0 = lo / 100, y1 = hi / 100;
    bool in_range = y1 - y0 < 1000 && y1 >= y0;
    size_t np = 0;
    int32_t *per = malloc((t->used ? t->used : 1) * sizeof *per);
    if (!per) return oom(err);
    for (size_t i = 0; in_range && i < t->cap; i++)
        if (t->cells[i].key) per[np++] = (int32_t)(uint32_t)(t->cells[i].key >> 32);
    if (np) qsort(per, np, sizeof *per, cmp_i32);
    size_t nu = 0;
    for (size_t i = 0; i < np; i++)
        if (nu == 0 || per[nu - 1] != per[i]) per[nu++] = per[i];
    np = nu;
    size_t cells;
    int64_t *mix = np && st_size_mul(np, m->n_personas, &cells) ? calloc(cells, sizeof *mix) : NULL;
    int64_t *sales = mix ? calloc(cells, sizeof *sales) : NULL;
    if (np && (!mix || !sales)) {
        free(per);
        free(mix);
        return oom(err);
    }
    for (size_t i = 0; mix && i < t->cap; i++) {
        if (!t->cells[i].key) continue;
        int32_t p = (int32_t)(uint32_t)(t->cells[i].key >> 32);
        size_t pi = (size_t)(t->cells[i].key & 0xffffffffu);
        const int32_t *hit = bsearch(&p, per, np, sizeof *per, cmp_i32);
        mix[(size_t)(hit - per) * m->n_personas + inverse[pi]] += t->cells[i].n;
        sales[(size_t)(hit - per) * m->n_personas + inverse[pi]] += t->cells[i].sold;
    }
    m->periods = per;
    m->n_periods = mix ? np : 0;
    m->mix = mix;
    m->sales_mix = sales;
    if (!m->first_period && np) {
        m->first_period = per[0];
        m->last_period = per[np - 1];
    }
    return ST_OK;
}

static st_status load_personas_and_facts(st_report_model *m, const char *wh, st_error *err)
{
    st_status st = ST_OK;
    persona_agg fpa, spa;
    memset(&fpa, 0, sizeof fpa);
    memset(&spa, 0, sizeof spa);
    mix_table mix = {0};
    facts_acc fa = {0};
    size_t *inverse = NULL;
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    bool have_f = false, have_s = false;
    if ((st = scan_persona_table(m, wh, false, &have_f, &fa, &fpa, &mix, &lo, &hi, err)) != ST_OK) goto done;
    if ((st = scan_persona_table(m, wh, true, &have_s, &fa, &spa, &mix, &lo, &hi, err)) != ST_OK) goto done;
    if (have_f) {
        m->has_kpis = true;
        m->n_active_periods = fa.rows;
        m->sales_volume = fa.sold;
        m->foc_volume = fa.foc;
        m->first_period = fa.lo;
        m->last_period = fa.hi;
    }
    /* persona aggregates: the grid when present (it has Not Active), else the facts */
    persona_agg *src = have_s ? &spa : have_f ? &fpa : NULL;
    if (src) {
        if (!(inverse = malloc((src->names.n ? src->names.n : 1) * sizeof *inverse))) {
            st = oom(err);
            goto done;
        }
        if ((st = install_personas(m, src, inverse, err)) != ST_OK) goto done;
    }
    /* persona mix per period from the grid */
    if (have_s && m->n_personas) st = install_mix(m, &mix, inverse, lo, hi, err);
done:
    free(inverse);
    free(mix.cells);
    persona_agg_free(&fpa);
    persona_agg_free(&spa);
    return st;
}

/* Scatter sample from the facts: the two chosen features at evenly spaced
 * rows (row floor(j * n / k) for point j), picked as the chunks pass, so
 * only the ST_REPORT_MAX_POINTS points are kept. */
static st_status load_scatter(st_report_model *m, const char *wh, const char *fx, const char *fy, st_error *err)
{
    if (m->n_personas == 0) return ST_OK;
    const char *names[3] = {fx, fy, "persona"};
    static const bool by_code[3] = {false, false, true};
    scan s;
    st_status st;
    if (!scan_open(m, wh, "platinum", "fct_transactions", names, by_code, 3, &s, &st, err)) return st;
    size_t n = (size_t)st_reader_n_rows(s.r), k = n < ST_REPORT_MAX_POINTS ? n : ST_REPORT_MAX_POINTS;
    double *px = NULL, *py = NULL;
    size_t *pp = NULL, j = 0;
    if (k) {
        px = malloc(k * sizeof *px);
        py = malloc(k * sizeof *py);
        pp = malloc(k * sizeof *pp);
        if (!px || !py || !pp) {
            st = oom(err);
            goto done;
        }
    }
    while (scan_next(m, &s, &st, err)) {
        uint64_t end = s.first_row + s.n_rows;
        for (; j < k; j++) {
            size_t i = (size_t)((double)j * (double)n / (double)k);
            if (i >= n) i = n - 1;
            if (i >= end) break;
            size_t r = (size_t)(i - s.first_row);
            px[j] = col_f64(&s.cols[0], r);
            py[j] = col_f64(&s.cols[1], r);
            size_t len;
            const char *nm = col_str(&s.cols[2], scan_code(&s, 2, r), &len);
            pp[j] = SIZE_MAX;
            for (size_t p = 0; p < m->n_personas; p++)
                if (strlen(m->personas[p].name) == len && !memcmp(m->personas[p].name, nm, len)) {
                    pp[j] = p;
                    break;
                }
        }
    }
    if (s.failed || st != ST_OK) goto done;
    if (k) {
        m->pt_x = px;
        m->pt_y = py;
        m->pt_persona = pp;
        m->n_points = j;
        px = py = NULL;
        pp = NULL;
    }
    m->n_points_total = (int64_t)n;
    if (!(m->scatter_x = dup_str(fx)) || !(m->scatter_y = dup_str(fy))) st = oom(err);
done:
    free(px);
    free(py);
    free(pp);
    scan_close(&s);
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
    scan s;
    st_status st;
    if (!scan_open(m, wh, "platinum", "ml_k_selection", names, NULL, 5, &s, &st, err)) return st;
    size_t n = 0, cap_k = 0, cap_i = 0, cap_s = 0;
    int32_t *k = NULL, knee = m->knee_k, chosen = m->chosen_k;
    double *inertia = NULL, *sil = NULL;
    while (scan_next(m, &s, &st, err)) {
        size_t need = n + s.n_rows ? n + s.n_rows : 1;
        if (!grow((void **)&k, &cap_k, need, sizeof *k) || !grow((void **)&inertia, &cap_i, need, sizeof *inertia) ||
            !grow((void **)&sil, &cap_s, need, sizeof *sil)) {
            st = oom(err);
            goto done;
        }
        for (size_t i = 0; i < s.n_rows; i++, n++) {
            k[n] = (int32_t)col_i64(&s.cols[0], i);
            inertia[n] = col_f64(&s.cols[1], i);
            sil[n] = col_f64(&s.cols[2], i);
            if (col_i64(&s.cols[3], i)) knee = k[n];
            if (col_i64(&s.cols[4], i)) chosen = k[n];
        }
    }
    if (s.failed || st != ST_OK) goto done;
    if (!k && (!(k = malloc(sizeof *k)) || !(inertia = malloc(sizeof *inertia)) || !(sil = malloc(sizeof *sil)))) {
        st = oom(err);
        goto done;
    }
    m->k = k;
    m->inertia = inertia;
    m->silhouette = sil;
    m->n_k = n;
    m->knee_k = knee;
    m->chosen_k = chosen;
    k = NULL;
    inertia = sil = NULL;
done:
    free(k);
    free(inertia);
    free(sil);
    scan_close(&s);
    return st;
}

/* The transition matrix: labels are the from/to names in the order rows
 * meet them (then display order), counts summed per pair as the chunks
 * pass; the state is labels^2. */
static st_status load_transitions(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"from_persona", "to_persona", "n"};
    static const bool by_code[] = {true, true, false};
    scan s;
    st_status st = ST_OK;
    if (!scan_open(m, wh, "platinum", "marts_persona_transitions", names, by_code, 3, &s, &st, err)) return st;
    name_list labels = {0};
    code_map cm[2] = {{0}};
    int64_t *acc = NULL, *counts = NULL;   /* acc: acc_dim x acc_dim, met order */
    size_t acc_dim = 0, *order = NULL;
    while (scan_next(m, &s, &st, err)) {
        if (!code_map_reset(&cm[0], scan_n_codes(&s, 0)) || !code_map_reset(&cm[1], scan_n_codes(&s, 1))) {
            st = oom(err);
            goto done;
        }
        for (size_t i = 0; i < s.n_rows; i++) {
            size_t ab[2];
            for (int c = 0; c < 2; c++) {
                bool added;
                if (!scan_name(&s, (size_t)c, i, &cm[c], &labels, &ab[c], &added)) {
                    st = oom(err);
                    goto done;
                }
            }
            if (labels.n > acc_dim) {
                size_t nd = acc_dim ? acc_dim * 2 : 8, cells;
                while (nd < labels.n) nd *= 2;
                int64_t *na = st_size_mul(nd, nd, &cells) ? calloc(cells, sizeof *na) : NULL;
                if (!na) {
                    st = oom(err);
                    goto done;
                }
                for (size_t a = 0; a < acc_dim; a++)
                    for (size_t b = 0; b < acc_dim; b++) na[a * nd + b] = acc[a * acc_dim + b];
                free(acc);
                acc = na;
                acc_dim = nd;
            }
            acc[ab[0] * acc_dim + ab[1]] += col_i64(&s.cols[2], i);
        }
    }
    if (s.failed || st != ST_OK) goto done;
    size_t n = labels.n;
    if (n) {
        size_t cells;
        order = malloc(n * sizeof *order);
        counts = st_size_mul(n, n, &cells) ? calloc(cells, sizeof *counts) : NULL;
        char **sorted = malloc(n * sizeof *sorted);
        if (!order || !counts || !sorted) {
            free(sorted);
            st = oom(err);
            goto done;
        }
        persona_order(labels.v, n, order);
        for (size_t r = 0; r < n; r++) sorted[r] = labels.v[order[r]];
        for (size_t a = 0; a < n; a++)
            for (size_t b = 0; b < n; b++) counts[a * n + b] = acc[order[a] * acc_dim + order[b]];
        free(labels.v);
        labels.v = sorted;
    }
    m->trans_labels = labels.v;
    m->n_trans_labels = n;
    m->trans_counts = counts;
    memset(&labels, 0, sizeof labels);
    counts = NULL;
done:
    name_list_free(&labels);
    free(cm[0].idx);
    free(cm[1].idx);
    free(acc);
    free(counts);
    free(order);
    scan_close(&s);
    return st;
}

/* ---- the customer views ----
 *
 * One more pass over the grid (sorted by customer, then period), merged
 * with platinum.dim_customers (sorted by customer too) through a cursor
 * that only moves forward, so names and countries arrive without a
 * lookup table. Each customer is folded into a small state as its rows
 * pass (volumes of the recent and prior windows, the persona of the last
 * month and of ST_REPORT_RECENT_MONTHS months before) and, when the next
 * customer starts, offered to bounded lists: the top ST_REPORT_TOP_N per
 * persona, the ST_REPORT_MAX_AT_RISK at-risk customers (persona fell and
 * units fell) with most lost
 * volume, the ST_REPORT_MAX_LISTED known customers with most recent
 * volume. Each list is a binary heap whose root is its worst entry, so an
 * offer costs O(log n) and memory is the lists' caps plus one row per
 * country, whatever the number of customers. */

/* Ranks customers: most recent volume, then most total volume, then id. */
static int cmp_recent(const void *pa, const void *pb)
{
    const st_report_customer *a = pa, *b = pb;
    if (a->recent_volume != b->recent_volume) return a->recent_volume > b->recent_volume ? -1 : 1;
    if (a->total_volume != b->total_volume) return a->total_volume > b->total_volume ? -1 : 1;
    return a->customer_id < b->customer_id ? -1 : a->customer_id > b->customer_id;
}

/* Ranks at-risk customers: most lost volume (prior - recent), then id. */
static int cmp_lost(const void *pa, const void *pb)
{
    const st_report_customer *a = pa, *b = pb;
    int64_t la = a->prior_volume - a->recent_volume, lb = b->prior_volume - b->recent_volume;
    if (la != lb) return la > lb ? -1 : 1;
    return a->customer_id < b->customer_id ? -1 : a->customer_id > b->customer_id;
}

/* Listing order: persona (display order, none last), then cmp_recent. */
static int cmp_listed(const void *pa, const void *pb)
{
    const st_report_customer *a = pa, *b = pb;
    if (a->persona != b->persona) return a->persona < b->persona ? -1 : 1;
    return cmp_recent(pa, pb);
}

typedef struct cust_heap {
    st_report_customer *v;
    size_t n, cap;
    int (*cmp)(const void *, const void *);   /* < 0: first ranks before second */
} cust_heap;

static void cust_swap(st_report_customer *a, st_report_customer *b)
{
    st_report_customer t = *a;
    *a = *b;
    *b = t;
}

/* Heap order: every parent ranks after (is worse than) its children. */
static void heap_down(cust_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < h->n && h->cmp(&h->v[l], &h->v[w]) > 0) w = l;
        if (r < h->n && h->cmp(&h->v[r], &h->v[w]) > 0) w = r;
        if (w == i) return;
        cust_swap(&h->v[i], &h->v[w]);
        i = w;
    }
}

static void heap_up(cust_heap *h, size_t i)
{
    while (i > 0 && h->cmp(&h->v[i], &h->v[(i - 1) / 2]) > 0) {
        cust_swap(&h->v[i], &h->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static bool heap_init(cust_heap *h, size_t cap, int (*cmp)(const void *, const void *))
{
    h->n = 0;
    h->cap = cap;
    h->cmp = cmp;
    h->v = calloc(cap ? cap : 1, sizeof *h->v);
    return h->v != NULL;
}

/* Offers c (strings borrowed): kept, strings copied, when the heap has
 * room or c ranks before its worst entry. False: out of memory. */
static bool heap_offer(cust_heap *h, const st_report_customer *c)
{
    if (h->cap == 0 || (h->n == h->cap && h->cmp(c, &h->v[0]) >= 0)) return true;
    st_report_customer e = *c;
    e.name = dup_str(c->name);
    e.country = dup_str(c->country);
    if (!e.name || !e.country) {
        free(e.name);
        free(e.country);
        return false;
    }
    if (h->n < h->cap) {
        h->v[h->n++] = e;
        heap_up(h, h->n - 1);
    } else {
        free(h->v[0].name);
        free(h->v[0].country);
        h->v[0] = e;
        heap_down(h, 0);
    }
    return true;
}

static void heap_free(cust_heap *h)
{
    st_report_customers_free(h->v, h->n);
    memset(h, 0, sizeof *h);
}

/* Forward-only cursor over dim_customers: customer_id, is_known, and
 * when the table has them (older tables may not) full_name, country. */
typedef struct dim_cursor {
    scan s;
    size_t row;
    bool have_chunk, at_end;
    bool has_names;      /* cols[2] full_name, cols[3] country */
} dim_cursor;

/* True when <wh>/<layer>/<table>.strata opens and has every named column
 * (false, silently, otherwise: the scan that follows says why). */
static bool has_columns(const char *wh, const char *layer, const char *table, const char *const *names, size_t n)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s/%s.strata", wh, layer, table);
    st_reader *r = NULL;
    st_error e;
    if (st_reader_open(&r, path, &e) != ST_OK) return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) ok = st_reader_find(r, names[i]) >= 0;
    st_reader_close(r);
    return ok;
}

/* Moves to the first row with an id >= id; true when that row has id.
 * A failed read ends the cursor (s.failed; a note was added, or *st is
 * out of memory). */
static bool dim_seek(st_report_model *m, dim_cursor *d, int64_t id, st_status *st, st_error *err)
{
    while (!d->at_end) {
        if (!d->have_chunk || d->row >= d->s.n_rows) {
            d->row = 0;
            d->have_chunk = scan_next(m, &d->s, st, err);
            if (!d->have_chunk) {
                d->at_end = true;
                return false;
            }
            continue;
        }
        int64_t c = col_i64(&d->s.cols[0], d->row);
        if (c >= id) return c == id;
        d->row++;
    }
    return false;
}

/* Copies at most cap-1 bytes of a string column's row into out, cut at a
 * UTF-8 character boundary. */
static void copy_cell(const st_column *c, size_t row, char *out, size_t cap)
{
    size_t len;
    const char *s = col_str(c, row, &len);
    if (len >= cap) {
        len = cap - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

typedef struct cust_views {
    cust_heap listed, at_risk;
    cust_heap *top;                 /* n_personas heaps */
    name_list countries;
    st_report_country *cstats;      /* n_cstats entries, one per country */
    size_t n_cstats, cstats_cap;
    int64_t n_known, n_at_risk, lost;
    /* the customer being folded */
    bool open;
    st_report_customer cur;
    char name[256], country[128];
} cust_views;

static void cust_views_free(cust_views *v, size_t n_personas)
{
    heap_free(&v->listed);
    heap_free(&v->at_risk);
    for (size_t i = 0; v->top && i < n_personas; i++) heap_free(&v->top[i]);
    free(v->top);
    for (size_t i = 0; i < v->n_cstats; i++) free(v->cstats[i].by_persona);
    free(v->cstats);
    name_list_free(&v->countries);
}

/* The current customer is complete: offer it to every list. */
static bool cust_finish(const st_report_model *m, cust_views *v)
{
    if (!v->open) return true;
    v->open = false;
    st_report_customer *c = &v->cur;
    c->name = v->name;
    c->country = v->country;
    if (c->is_known) {
        v->n_known++;
        if (!heap_offer(&v->listed, c)) return false;
    }
    if (c->persona != SIZE_MAX && !heap_offer(&v->top[c->persona], c)) return false;
    if (c->persona != SIZE_MAX && c->prev_persona != SIZE_MAX) {
        int now = st_report_persona_rank(m->personas[c->persona].name);
        int before = st_report_persona_rank(m->personas[c->prev_persona].name);
        /* slipping away: the persona fell and the units fell too (a customer
         * re-labelled lower while buying more is not losing volume) */
        if (now < 4 && before < 4 && now > before && c->recent_volume < c->prior_volume) {
            v->n_at_risk++;
            v->lost += c->prior_volume - c->recent_volume;
            if (!heap_offer(&v->at_risk, c)) return false;
        }
    }
    const char *cn = *v->country ? v->country : "unknown";
    size_t ci;
    bool added;
    if (!name_list_index(&v->countries, cn, strlen(cn), &ci, &added)) return false;
    if (added) {
        if (!grow((void **)&v->cstats, &v->cstats_cap, v->countries.n, sizeof *v->cstats)) return false;
        memset(&v->cstats[ci], 0, sizeof v->cstats[ci]);
        v->n_cstats = ci + 1;
        if (!(v->cstats[ci].by_persona = calloc(m->n_personas, sizeof(int64_t)))) return false;
    }
    v->cstats[ci].customers++;
    v->cstats[ci].recent_volume += c->recent_volume;
    if (c->persona != SIZE_MAX) v->cstats[ci].by_persona[c->persona]++;
    return true;
}

/* The month windows from the grid's periods: recent = the last
 * ST_REPORT_RECENT_MONTHS, prior = the as many before (when there are). */
typedef struct windows {
    int32_t last, recent_from, prev, prior_from;   /* prev, prior_from 0: none */
} windows;

static windows month_windows(const st_report_model *m)
{
    windows w = {0};
    size_t np = m->n_periods, R = ST_REPORT_RECENT_MONTHS;
    w.last = m->periods[np - 1];
    w.recent_from = m->periods[np >= R ? np - R : 0];
    if (np > R) {
        w.prev = m->periods[np - 1 - R];
        w.prior_from = m->periods[np >= 2 * R ? np - 2 * R : 0];
    }
    return w;
}

/* Starts the state of customer id, its name and country from the dim
 * cursor when it has the customer. */
static void cust_start(st_report_model *m, cust_views *v, dim_cursor *d, int64_t id, st_status *st, st_error *err)
{
    memset(&v->cur, 0, sizeof v->cur);
    v->cur.customer_id = id;
    v->cur.persona = v->cur.prev_persona = SIZE_MAX;
    v->name[0] = v->country[0] = '\0';
    if (!d->at_end && dim_seek(m, d, id, st, err)) {
        v->cur.is_known = col_i64(&d->s.cols[1], d->row) != 0;
        if (d->has_names) {
            copy_cell(&d->s.cols[2], d->row, v->name, sizeof v->name);
            copy_cell(&d->s.cols[3], d->row, v->country, sizeof v->country);
        }
    }
    v->open = true;
}

/* The grid pass: folds every row into its customer's state. */
static st_status scan_customer_views(st_report_model *m, const char *wh, cust_views *v, dim_cursor *d,
                                     bool *ok, st_error *err)
{
    static const char *const names[] = {"customer_id", "period_key", "total_sold_quantity", "persona"};
    static const bool by_code[] = {false, false, false, true};
    scan s;
    st_status st;
    *ok = false;
    if (!scan_open(m, wh, "platinum", "marts_customer_summary", names, by_code, 4, &s, &st, err)) return st;
    windows w = month_windows(m);
    code_map cm = {0};
    while (scan_next(m, &s, &st, err)) {
        if (!code_map_reset(&cm, scan_n_codes(&s, 3))) {
            st = oom(err);
            goto done;
        }
        for (size_t i = 0; i < s.n_rows; i++) {
            int64_t id = col_i64(&s.cols[0], i);
            if (!v->open || id != v->cur.customer_id) {
                if (!cust_finish(m, v)) {
                    st = oom(err);
                    goto done;
                }
                cust_start(m, v, d, id, &st, err);
                if (st != ST_OK) goto done;
            }
            int32_t p = (int32_t)col_i64(&s.cols[1], i);
            int64_t sold = col_i64(&s.cols[2], i);
            v->cur.total_volume += sold;
            if (p >= w.recent_from) v->cur.recent_volume += sold;
            else if (w.prior_from && p >= w.prior_from) v->cur.prior_volume += sold;
            if (p != w.last && p != w.prev) continue;
            size_t code = scan_code(&s, 3, i);
            if (cm.idx[code] == CODE_UNSET) {
                size_t len;
                const char *nm = col_str(&s.cols[3], code, &len);
                for (size_t k = 0; k < m->n_personas; k++)
                    if (strlen(m->personas[k].name) == len && !memcmp(m->personas[k].name, nm, len)) cm.idx[code] = k;
            }
            if (p == w.last) v->cur.persona = cm.idx[code];
            else v->cur.prev_persona = cm.idx[code];
        }
    }
    if (s.failed || st != ST_OK) goto done;
    if (!cust_finish(m, v)) {
        st = oom(err);
        goto done;
    }
    *ok = !d->s.failed;
done:
    free(cm.idx);
    scan_close(&s);
    return st;
}

/* Sorts a heap's entries with cmp and hands them over. */
static void heap_take(cust_heap *h, int (*cmp)(const void *, const void *), st_report_customer **out, size_t *n)
{
    if (h->n) qsort(h->v, h->n, sizeof *h->v, cmp);
    *out = h->v;
    *n = h->n;
    memset(h, 0, sizeof *h);
}

static int cmp_country(const void *pa, const void *pb)
{
    const st_report_country *a = pa, *b = pb;
    if (a->customers != b->customers) return a->customers > b->customers ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Moves the folded lists into m. */
static st_status install_customer_views(st_report_model *m, cust_views *v, st_error *err)
{
    size_t n_top = 0;
    for (size_t p = 0; p < m->n_personas; p++) n_top += v->top[p].n;
    m->top = calloc(n_top ? n_top : 1, sizeof *m->top);
    m->countries = calloc(v->n_cstats ? v->n_cstats : 1, sizeof *m->countries);
    if (!m->top || !m->countries) return oom(err);
    for (size_t p = 0; p < m->n_personas; p++) {
        cust_heap *h = &v->top[p];
        if (h->n) qsort(h->v, h->n, sizeof *h->v, cmp_recent);
        memcpy(m->top + m->n_top, h->v, h->n * sizeof *h->v);
        m->n_top += h->n;
        h->n = 0;
    }
    heap_take(&v->listed, cmp_listed, &m->listed, &m->n_listed);
    heap_take(&v->at_risk, cmp_lost, &m->at_risk, &m->n_at_risk);
    for (size_t i = 0; i < v->n_cstats; i++) {
        m->countries[i] = v->cstats[i];
        m->countries[i].name = v->countries.v[i];
        v->countries.v[i] = NULL;
    }
    m->n_countries = v->n_cstats;
    v->n_cstats = 0;
    if (m->n_countries) qsort(m->countries, m->n_countries, sizeof *m->countries, cmp_country);
    m->n_known_total = v->n_known;
    m->n_at_risk_total = v->n_at_risk;
    m->at_risk_lost_volume = v->lost;
    windows w = month_windows(m);
    m->last_month = w.last;
    m->recent_from = w.recent_from;
    m->prev_month = w.prev;
    m->has_customers = true;
    return ST_OK;
}

/* The customer views (needs the personas and periods of the grid). */
static st_status load_customer_views(st_report_model *m, const char *wh, st_error *err)
{
    if (m->n_periods == 0 || m->n_personas == 0) return ST_OK;
    static const char *const dnames[] = {"customer_id", "is_known", "full_name", "country"};
    dim_cursor d;
    memset(&d, 0, sizeof d);
    st_status st = ST_OK;
    d.has_names = has_columns(wh, "platinum", "dim_customers", dnames + 2, 2);
    if (!scan_open(m, wh, "platinum", "dim_customers", dnames, NULL, d.has_names ? 4 : 2, &d.s, &st, err)) return st;
    cust_views v;
    memset(&v, 0, sizeof v);
    bool ok = false;
    v.top = calloc(m->n_personas, sizeof *v.top);
    if (!v.top || !heap_init(&v.listed, ST_REPORT_MAX_LISTED, cmp_recent) ||
        !heap_init(&v.at_risk, ST_REPORT_MAX_AT_RISK, cmp_lost)) {
        st = oom(err);
        goto done;
    }
    for (size_t p = 0; p < m->n_personas; p++)
        if (!heap_init(&v.top[p], ST_REPORT_TOP_N, cmp_recent)) {
            st = oom(err);
            goto done;
        }
    st = scan_customer_views(m, wh, &v, &d, &ok, err);
    if (st == ST_OK && ok) st = install_customer_views(m, &v, err);
done:
    cust_views_free(&v, m->n_personas);
    scan_close(&d.s);
    return st;
}

static int cmp_count(const void *pa, const void *pb)
{
    const st_report_count *a = pa, *b = pb;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Rejected rows per reason; the state is the distinct reasons. */
static st_status load_rejects(st_report_model *m, const char *wh, st_error *err)
{
    static const char *const names[] = {"reason"};
    static const bool by_code[] = {true};
    scan s;
    st_status st = ST_OK;
    if (!scan_open(m, wh, "silver", "stg_rejects", names, by_code, 1, &s, &st, err)) return st;
    name_list reasons = {0};
    code_map cm = {0};
    int64_t *count = NULL;
    size_t count_cap = 0;
    while (scan_next(m, &s, &st, err)) {
        if (!code_map_reset(&cm, scan_n_codes(&s, 0))) {
            st = oom(err);
            goto done;
        }
        for (size_t i = 0; i < s.n_rows; i++) {
            size_t k;
            bool added;
            if (!scan_name(&s, 0, i, &cm, &reasons, &k, &added) ||
                (added && !grow((void **)&count, &count_cap, reasons.n, sizeof *count))) {
                st = oom(err);
                goto done;
            }
            if (added) count[k] = 0;
            count[k]++;
        }
    }
    if (s.failed || st != ST_OK) goto done;
    if (reasons.n) {
        if (!(m->rejects = calloc(reasons.n, sizeof *m->rejects))) {
            st = oom(err);
            goto done;
        }
        for (size_t k = 0; k < reasons.n; k++) {
            m->rejects[k].name = reasons.v[k];
            m->rejects[k].n = count[k];
            reasons.v[k] = NULL;
        }
        m->n_rejects = reasons.n;
        qsort(m->rejects, m->n_rejects, sizeof *m->rejects, cmp_count);
    }
    m->has_rejects = true;
done:
    name_list_free(&reasons);
    free(cm.idx);
    free(count);
    scan_close(&s);
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
    ST_TRY(load_customer_views(m, warehouse, err));
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
