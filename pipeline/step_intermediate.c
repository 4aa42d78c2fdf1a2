/*
 * step_intermediate.c: silver -> gold.
 *
 *   int_customer_analytics    one row per active (customer, period): features
 *   int_transactions_unified  one row per (customer, period, material)
 *
 * The silver transaction files are streamed chunk by chunk; each accepted
 * line becomes (dense group, material code, quantity, kind). Groups are
 * dense keys: customers are numbered in id order, periods are months
 * since the earliest period, group = customer * n_periods + period, so no
 * hashing is needed where the key range is small. Lines are then placed
 * in group order with one counting sort (histogram, prefix sums,
 * scatter), after which every feature of a group is computed from a
 * contiguous run: sums and counts, exact medians (quickselect of the two
 * middle values), and distinct materials with a stamp array indexed by
 * material code. Material codes are assigned in bytewise order of the
 * material strings, so the unified table comes out sorted without a
 * string sort per group.
 *
 * Sums are checked: quantities are bounded by the staging rules, and an
 * int64 overflow is reported as an error, never wrapped.
 *
 * Memory: 21 bytes per accepted line plus the material dictionary and
 * per-group counters: proportional to the data, not to chunk buffers.
 */
#include "pipeline_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- material dictionary: open addressing over the strings ---- */

typedef struct mdict {
    char **str;        /* code -> string (owned) */
    uint32_t *len;
    uint32_t n, cap;
    uint32_t *slots;   /* hash slots: code + 1, 0 = empty */
    uint32_t n_slots;
} mdict;

static uint64_t hash_bytes(const char *s, size_t n)
{
    return st_hash64(0x6d6174657269616cull, s, n);
}

static st_status mdict_grow(mdict *d)
{
    uint32_t ns = d->n_slots ? d->n_slots * 2 : 1024;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return ST_ERR_NOMEM;
    for (uint32_t c = 0; c < d->n; c++) {
        uint32_t h = (uint32_t)hash_bytes(d->str[c], d->len[c]) & (ns - 1);
        while (slots[h]) h = (h + 1) & (ns - 1);
        slots[h] = c + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->n_slots = ns;
    return ST_OK;
}

static st_status mdict_code(mdict *d, const char *s, size_t n, uint32_t *code)
{
    if (d->n * 2 >= d->n_slots) ST_TRY(mdict_grow(d));
    uint32_t h = (uint32_t)hash_bytes(s, n) & (d->n_slots - 1);
    while (d->slots[h]) {
        uint32_t c = d->slots[h] - 1;
        if (d->len[c] == n && !memcmp(d->str[c], s, n)) {
            *code = c;
            return ST_OK;
        }
        h = (h + 1) & (d->n_slots - 1);
    }
    if (d->n == UINT32_MAX - 1) return ST_ERR_NOMEM;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 256;
        char **ns = realloc(d->str, cap * sizeof *ns);
        if (!ns) return ST_ERR_NOMEM;
        d->str = ns;
        uint32_t *nl = realloc(d->len, cap * sizeof *nl);
        if (!nl) return ST_ERR_NOMEM;
        d->len = nl;
        d->cap = cap;
    }
    char *c = malloc(n ? n : 1);
    if (!c) return ST_ERR_NOMEM;
    if (n) memcpy(c, s, n);
    d->str[d->n] = c;
    d->len[d->n] = (uint32_t)n;
    d->slots[h] = d->n + 1;
    *code = d->n++;
    return ST_OK;
}

static void mdict_free(mdict *d)
{
    for (uint32_t c = 0; c < d->n; c++) free(d->str[c]);
    free(d->str);
    free(d->len);
    free(d->slots);
    memset(d, 0, sizeof *d);
}

/* ---- the lines ---- */

typedef struct lines {
    int64_t *cust;
    int32_t *pk;
    uint32_t *mat;
    int64_t *qty;
    uint8_t *foc;
    size_t n, cap;
} lines;

static st_status lines_reserve(lines *l, size_t more)
{
    if (l->n + more <= l->cap) return ST_OK;
    size_t cap = l->cap ? l->cap : 65536;
    while (cap < l->n + more) cap *= 2;
    int64_t *c = realloc(l->cust, cap * sizeof *c);
    if (!c) return ST_ERR_NOMEM;
    l->cust = c;
    int32_t *p = realloc(l->pk, cap * sizeof *p);
    if (!p) return ST_ERR_NOMEM;
    l->pk = p;
    uint32_t *m = realloc(l->mat, cap * sizeof *m);
    if (!m) return ST_ERR_NOMEM;
    l->mat = m;
    int64_t *q = realloc(l->qty, cap * sizeof *q);
    if (!q) return ST_ERR_NOMEM;
    l->qty = q;
    uint8_t *f = realloc(l->foc, cap);
    if (!f) return ST_ERR_NOMEM;
    l->foc = f;
    l->cap = cap;
    return ST_OK;
}

static void lines_free(lines *l)
{
    free(l->cust);
    free(l->pk);
    free(l->mat);
    free(l->qty);
    free(l->foc);
    memset(l, 0, sizeof *l);
}

static st_status load_lines(st_run_ctx *ctx, const char *table, uint8_t is_foc, lines *l, mdict *d, st_error *err)
{
    st_reader *r = NULL;
    ST_TRY(st_table_open(ctx, "silver", table, &r, err));
    size_t ic, ip, im, iq;
    st_status s = st_table_col(r, table, "customer_id", &ic, err);
    if (s == ST_OK) s = st_table_col(r, table, "period_key", &ip, err);
    if (s == ST_OK) s = st_table_col(r, table, "material_code", &im, err);
    if (s == ST_OK) s = st_table_col(r, table, "quantity", &iq, err);
    st_column c, p, m, q;
    st_column_init(&c, ST_TYPE_I64);
    st_column_init(&p, ST_TYPE_I32);
    st_column_init(&m, ST_TYPE_STR);
    st_column_init(&q, ST_TYPE_I64);
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        s = st_reader_read_block(r, ch, ic, &c, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, ip, &p, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, im, &m, err);
        if (s == ST_OK) s = st_reader_read_block(r, ch, iq, &q, err);
        if (s != ST_OK) break;
        size_t n = c.n_rows;
        if ((s = lines_reserve(l, n)) != ST_OK) {
            st_error_set(err, s, "out of memory reading %s", table);
            break;
        }
        memcpy(l->cust + l->n, c.data, n * sizeof(int64_t));
        memcpy(l->pk + l->n, p.data, n * sizeof(int32_t));
        memcpy(l->qty + l->n, q.data, n * sizeof(int64_t));
        memset(l->foc + l->n, is_foc, n);
        /* materials repeat a lot: remember the last one */
        const char *last = NULL;
        size_t last_len = 0;
        uint32_t last_code = 0;
        for (size_t i = 0; i < n && s == ST_OK; i++) {
            size_t len;
            const char *str = st_column_str(&m, i, &len);
            if (!(last && len == last_len && !memcmp(str, last, len))) {
                if ((s = mdict_code(d, str, len, &last_code)) != ST_OK) {
                    st_error_set(err, s, "out of memory building the material dictionary");
                    break;
                }
                last = str;
                last_len = len;
            }
            l->mat[l->n + i] = last_code;
        }
        l->n += n;
        ctx->cur->rows_in += n;
    }
    st_column_free(&c);
    st_column_free(&p);
    st_column_free(&m);
    st_column_free(&q);
    st_reader_close(r);
    return s;
}

/* ---- helpers ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int32_t month_index(int32_t pk) { return (pk / 100) * 12 + (pk % 100 - 1); }
static int32_t pk_of_index(int32_t mi) { return (mi / 12) * 100 + mi % 12 + 1; }

/* Quickselect: the k-th smallest of v[0..n) (v is permuted). */
static int64_t select_k(int64_t *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
        int64_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                int64_t t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* Exact median of v[0..n), n > 0: mean of the two middle values when even. */
static double median(int64_t *v, size_t n)
{
    if (n % 2) return (double)select_k(v, n, n / 2);
    int64_t hi = select_k(v, n, n / 2);
    /* the lower middle is the max of the lower half after selection */
    int64_t lo = v[0];
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > lo) lo = v[i];
    return ((double)lo + (double)hi) / 2.0;
}

static int cmp_code_by_string(const void *a, const void *b, void *vd)
{
    const mdict *d = vd;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t lx = d->len[x], ly = d->len[y];
    int c = memcmp(d->str[x], d->str[y], lx < ly ? lx : ly);
    if (c) return c;
    return (lx > ly) - (lx < ly);
}

enum { A_CUST, A_YEAR, A_MONTH, A_PK, A_SOLD, A_FOC, A_RATIO, A_SOLD_TX, A_FOC_TX, A_MED_SOLD, A_MED_FOC, A_UNIQ, A_N };
static const st_field an_fields[A_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"total_sold_quantity", ST_TYPE_I64, false, "SUM(quantity) of sales lines"},
    {"total_foc_quantity", ST_TYPE_I64, false, "SUM(quantity_foc) of free-of-charge lines"},
    {"foc_ratio", ST_TYPE_F64, false, "total_foc / (total_sold + total_foc), 0 when both are 0"},
    {"total_sold_transactions", ST_TYPE_I64, false, "number of sales lines"},
    {"total_foc_transactions", ST_TYPE_I64, false, "number of free-of-charge lines"},
    {"median_sold_order_size", ST_TYPE_F64, true, "median quantity of sales lines (NULL when none)"},
    {"median_foc_order_size", ST_TYPE_F64, true, "median quantity of free-of-charge lines (NULL when none)"},
    {"unique_materials", ST_TYPE_I64, false, "distinct material codes over sales and FOC lines"},
};

enum { U_CUST, U_YEAR, U_MONTH, U_PK, U_MAT, U_SOLD, U_FOC, U_SOLD_L, U_FOC_L, U_N };
static const st_field un_fields[U_N] = {
    {"customer_id", ST_TYPE_I64, false, "customer id"},
    {"year", ST_TYPE_I32, false, "calendar year"},
    {"month", ST_TYPE_I32, false, "month 1..12"},
    {"period_key", ST_TYPE_I32, false, "year*100+month"},
    {"material_code", ST_TYPE_STR, false, "material code"},
    {"sold_qty", ST_TYPE_I64, false, "sum of sold quantity"},
    {"foc_qty", ST_TYPE_I64, false, "sum of free-of-charge quantity"},
    {"sold_lines", ST_TYPE_I64, false, "number of sales lines"},
    {"foc_lines", ST_TYPE_I64, false, "number of free-of-charge lines"},
};

st_status st_step_intermediate(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    lines l;
    memset(&l, 0, sizeof l);
    mdict d;
    memset(&d, 0, sizeof d);
    int64_t *cust_ids = NULL, *gq = NULL;
    uint32_t *gstart = NULL, *gm = NULL, *rank = NULL, *order = NULL, *stamp = NULL, *touched = NULL;
    uint8_t *gf = NULL;
    int64_t *msold = NULL, *mfoc = NULL, *msl = NULL, *mfl = NULL;
    st_column a[A_N], u[U_N];
    memset(a, 0, sizeof a);
    memset(u, 0, sizeof u);
    for (int k = 0; k < A_N; k++) st_column_init(&a[k], an_fields[k].type);
    for (int k = 0; k < U_N; k++) st_column_init(&u[k], un_fields[k].type);
    st_writer *wa = NULL, *wu = NULL;
    st_status s = load_lines(ctx, "stg_sales_transactions", 0, &l, &d, err);
    if (s == ST_OK) s = load_lines(ctx, "stg_foc_transactions", 1, &l, &d, err);
    if (s != ST_OK) goto done;
    size_t n = l.n;

    /* dense customers: distinct ids in increasing order. Small id ranges
     * (the usual case) use a direct index; otherwise sort a copy. */
    size_t n_cust = 0;
    int64_t id_min = 0, id_max = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || l.cust[i] < id_min) id_min = l.cust[i];
        if (i == 0 || l.cust[i] > id_max) id_max = l.cust[i];
    }
    uint32_t *direct = NULL;
    uint64_t span = n ? (uint64_t)id_max - (uint64_t)id_min + 1 : 0;
    if (n && span <= ((uint64_t)1 << 24) && span <= 4 * (uint64_t)n + 1024) {
        direct = calloc((size_t)span, sizeof *direct);
        cust_ids = malloc((size_t)span * sizeof *cust_ids);
        if (!direct || !cust_ids) {
            free(direct);
            goto nomem;
        }
        for (size_t i = 0; i < n; i++) direct[l.cust[i] - id_min] = 1;
        for (uint64_t v = 0; v < span; v++)
            if (direct[v]) {
                cust_ids[n_cust] = id_min + (int64_t)v;
                direct[v] = (uint32_t)n_cust++;
            }
    } else {
        cust_ids = malloc((n ? n : 1) * sizeof *cust_ids);
        if (!cust_ids) goto nomem;
        if (n) memcpy(cust_ids, l.cust, n * sizeof *cust_ids);
        qsort(cust_ids, n, sizeof *cust_ids, cmp_i64);
        for (size_t i = 0; i < n; i++)
            if (n_cust == 0 || cust_ids[n_cust - 1] != cust_ids[i]) cust_ids[n_cust++] = cust_ids[i];
    }
    int32_t mi_min = 0, mi_max = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t mi = month_index(l.pk[i]);
        if (i == 0 || mi < mi_min) mi_min = mi;
        if (i == 0 || mi > mi_max) mi_max = mi;
    }
    size_t n_per = n ? (size_t)(mi_max - mi_min + 1) : 0;
    size_t n_groups;
    if (!st_size_mul(n_cust, n_per, &n_groups) || n_groups > ((size_t)1 << 32) - 2) {
        free(direct);
        s = st_error_set(err, ST_ERR_NOMEM, "too many customer x period groups (%zu customers x %zu periods)", n_cust, n_per);
        goto done;
    }
    /* group of each line */
    order = malloc((n ? n : 1) * sizeof *order);
    gstart = calloc(n_groups + 1, sizeof *gstart);
    if (!order || !gstart) {
        free(direct);
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        size_t ci;
        if (direct) {
            ci = direct[l.cust[i] - id_min];
        } else {
            size_t lo = 0, hi = n_cust;
            while (lo + 1 < hi) {
                size_t mid = (lo + hi) / 2;
                if (cust_ids[mid] <= l.cust[i]) lo = mid;
                else hi = mid;
            }
            ci = lo;
        }
        uint32_t g = (uint32_t)(ci * n_per + (size_t)(month_index(l.pk[i]) - mi_min));
        order[i] = g;
        gstart[g + 1]++;
    }
    free(direct);
    for (size_t g = 0; g < n_groups; g++) gstart[g + 1] += gstart[g];
    /* counting-sort scatter: quantities, materials, kinds in group order
     * (stable: within a group, lines keep their file order) */
    gq = malloc((n ? n : 1) * sizeof *gq);
    gm = malloc((n ? n : 1) * sizeof *gm);
    gf = malloc(n ? n : 1);
    uint32_t *pos = malloc((n_groups + 1) * sizeof *pos);
    if (!gq || !gm || !gf || !pos) {
        free(pos);
        goto nomem;
    }
    memcpy(pos, gstart, (n_groups + 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        uint32_t p = pos[order[i]]++;
        gq[p] = l.qty[i];
        gm[p] = l.mat[i];
        gf[p] = l.foc[i];
    }
    free(pos);
    lines_free(&l);

    /* material ranks in bytewise string order */
    rank = malloc((d.n ? d.n : 1) * sizeof *rank);
    uint32_t *by_str = malloc((d.n ? d.n : 1) * sizeof *by_str);
    stamp = malloc((d.n ? d.n : 1) * sizeof *stamp);
    touched = malloc((d.n ? d.n : 1) * sizeof *touched);
    msold = calloc(d.n ? d.n : 1, sizeof *msold);
    mfoc = calloc(d.n ? d.n : 1, sizeof *mfoc);
    msl = calloc(d.n ? d.n : 1, sizeof *msl);
    mfl = calloc(d.n ? d.n : 1, sizeof *mfl);
    if (!rank || !by_str || !stamp || !touched || !msold || !mfoc || !msl || !mfl) {
        free(by_str);
        goto nomem;
    }
    for (uint32_t c = 0; c < d.n; c++) by_str[c] = c;
    qsort_r(by_str, d.n, sizeof *by_str, cmp_code_by_string, &d);
    for (uint32_t r = 0; r < d.n; r++) rank[by_str[r]] = r;
    free(by_str);
    for (uint32_t c = 0; c < d.n; c++) stamp[c] = UINT32_MAX;

    /* sales quantities first then FOC within a group need separate runs for
     * the medians: partition each group's run by kind in a scratch copy */
    int64_t *scratch = malloc((n ? n : 1) * sizeof *scratch);
    if (!scratch) goto nomem;
    for (size_t g = 0; g < n_groups && s == ST_OK; g++) {
        uint32_t b = gstart[g], e = gstart[g + 1];
        if (b == e) continue;
        int64_t sold = 0, foc = 0, ns = 0, nf = 0, uniq = 0;
        size_t n_touched = 0;
        for (uint32_t i = b; i < e; i++) {
            uint32_t m = gm[i];
            if (stamp[m] != (uint32_t)g) {
                stamp[m] = (uint32_t)g;
                uniq++;
                touched[n_touched++] = m;
                msold[m] = mfoc[m] = msl[m] = mfl[m] = 0;
            }
            if (gf[i]) {
                if (__builtin_add_overflow(foc, gq[i], &foc) || __builtin_add_overflow(mfoc[m], gq[i], &mfoc[m])) goto overflow;
                nf++;
                mfl[m]++;
            } else {
                if (__builtin_add_overflow(sold, gq[i], &sold) || __builtin_add_overflow(msold[m], gq[i], &msold[m])) goto overflow;
                ns++;
                msl[m]++;
            }
        }
        size_t k0 = 0, k1 = (size_t)ns;
        for (uint32_t i = b; i < e; i++) {
            if (gf[i]) scratch[k1++] = gq[i];
            else scratch[k0++] = gq[i];
        }
        int64_t cid = cust_ids[g / n_per];
        int32_t pk = pk_of_index((int32_t)(g % n_per) + mi_min);
        s = st_column_push_i64(&a[A_CUST], cid);
        if (s == ST_OK) s = st_column_push_i32(&a[A_YEAR], pk / 100);
        if (s == ST_OK) s = st_column_push_i32(&a[A_MONTH], pk % 100);
        if (s == ST_OK) s = st_column_push_i32(&a[A_PK], pk);
        if (s == ST_OK) s = st_column_push_i64(&a[A_SOLD], sold);
        if (s == ST_OK) s = st_column_push_i64(&a[A_FOC], foc);
        int64_t tot;
        if (__builtin_add_overflow(sold, foc, &tot)) goto overflow;
        if (s == ST_OK) s = st_column_push_f64(&a[A_RATIO], tot ? (double)foc / (double)tot : 0.0);
        if (s == ST_OK) s = st_column_push_i64(&a[A_SOLD_TX], ns);
        if (s == ST_OK) s = st_column_push_i64(&a[A_FOC_TX], nf);
        if (s == ST_OK) s = ns ? st_column_push_f64(&a[A_MED_SOLD], median(scratch, (size_t)ns)) : st_column_push_null(&a[A_MED_SOLD]);
        if (s == ST_OK) s = nf ? st_column_push_f64(&a[A_MED_FOC], median(scratch + ns, (size_t)nf)) : st_column_push_null(&a[A_MED_FOC]);
        if (s == ST_OK) s = st_column_push_i64(&a[A_UNIQ], uniq);
        /* unified rows, materials in string order */
        for (size_t t = 1; t < n_touched; t++)
            for (size_t q = t; q > 0 && rank[touched[q - 1]] > rank[touched[q]]; q--) {
                uint32_t tmp = touched[q - 1];
                touched[q - 1] = touched[q];
                touched[q] = tmp;
            }
        for (size_t t = 0; t < n_touched && s == ST_OK; t++) {
            uint32_t m = touched[t];
            s = st_column_push_i64(&u[U_CUST], cid);
            if (s == ST_OK) s = st_column_push_i32(&u[U_YEAR], pk / 100);
            if (s == ST_OK) s = st_column_push_i32(&u[U_MONTH], pk % 100);
            if (s == ST_OK) s = st_column_push_i32(&u[U_PK], pk);
            if (s == ST_OK) s = st_column_push_str(&u[U_MAT], d.str[m], d.len[m]);
            if (s == ST_OK) s = st_column_push_i64(&u[U_SOLD], msold[m]);
            if (s == ST_OK) s = st_column_push_i64(&u[U_FOC], mfoc[m]);
            if (s == ST_OK) s = st_column_push_i64(&u[U_SOLD_L], msl[m]);
            if (s == ST_OK) s = st_column_push_i64(&u[U_FOC_L], mfl[m]);
        }
        /* stream the unified table out in chunks */
        if (s == ST_OK && u[0].n_rows >= ST_CHUNK_ROWS) {
            if (!wu) {
                static const char *const in_u[] = {"silver.stg_sales_transactions", "silver.stg_foc_transactions"};
                s = st_table_create(ctx, "gold", "int_transactions_unified", un_fields, U_N, in_u, 2, "", fp, NULL, 0,
                                    &wu, err);
            }
            if (s == ST_OK) s = st_writer_write(wu, u, 0, u[0].n_rows, err);
            for (int k = 0; k < U_N; k++) st_column_reset(&u[k]);
        }
        continue;
    overflow:
        free(scratch);
        s = st_error_set(err, ST_ERR_QUALITY,
                         "sum of quantities overflows int64 for customer %lld in period %d (refusing to wrap)",
                         (long long)cust_ids[g / n_per], pk_of_index((int32_t)(g % n_per) + mi_min));
        goto done;
    }
    free(scratch);
    if (s != ST_OK) {
        if (err && err->code == ST_OK) st_error_set(err, s, "out of memory computing features");
        goto done;
    }
    static const char *const in_a[] = {"silver.stg_sales_transactions", "silver.stg_foc_transactions"};
    if (!wu && (s = st_table_create(ctx, "gold", "int_transactions_unified", un_fields, U_N, in_a, 2, "", fp, NULL, 0,
                                    &wu, err)) != ST_OK)
        goto done;
    if (u[0].n_rows && (s = st_writer_write(wu, u, 0, u[0].n_rows, err)) != ST_OK) goto done;
    uint64_t n_unified = st_writer_n_rows(wu);
    s = st_writer_close(wu, err);
    wu = NULL;
    if (s != ST_OK) goto done;
    if ((s = st_table_create(ctx, "gold", "int_customer_analytics", an_fields, A_N, in_a, 2, "", fp, NULL, 0, &wa,
                             err)) != ST_OK)
        goto done;
    if ((s = st_writer_write(wa, a, 0, a[0].n_rows, err)) != ST_OK) goto done;
    s = st_writer_close(wa, err);
    wa = NULL;
    ctx->cur->rows_out = a[0].n_rows + n_unified;
    snprintf(ctx->cur->note, sizeof ctx->cur->note, "%zu customer-periods, %llu customer-period-materials",
             a[0].n_rows, (unsigned long long)n_unified);
    goto done;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "out of memory computing gold features");
done:
    st_writer_abort(wa);
    st_writer_abort(wu);
    lines_free(&l);
    mdict_free(&d);
    free(cust_ids);
    free(gq);
    free(gm);
    free(gf);
    free(gstart);
    free(order);
    free(rank);
    free(stamp);
    free(touched);
    free(msold);
    free(mfoc);
    free(msl);
    free(mfl);
    for (int k = 0; k < A_N; k++) st_column_free(&a[k]);
    for (int k = 0; k < U_N; k++) st_column_free(&u[k]);
    return s;
}
