/*
 * agg_dense.c: st_dense, the gold features in one pass over the lines
 * (strata/agg.h).
 *
 * Where st_features (groupby.c, agg.c) stores every line and groups them
 * by a counting sort, st_dense keeps only accumulators, sized by the
 * ranges the zone maps give before any value is decoded:
 *
 *   cell        c = month index * cust_span + (customer_id - customer_id_min)
 *   blk[t][p]   month p of table t, allocated at the month's first line:
 *               uni   cust_span x cap codes (sum, lines) pairs,
 *                     customer-major (uni[dc * cap + code]), so the unified
 *                     rows of a cell, its materials, are one contiguous
 *                     run; a dictionary that grows past cap re-lays the
 *                     block out (geometric growth: rarely)
 *               hist  cust_span x span[t] uint32 counts,
 *                     span = qty_max - qty_min + 1
 *
 * Month blocks, because the silver files arrive month by month: a chunk's
 * lines (one month, as a rule) touch one block, a few hundred KiB held
 * contiguously. A table spanning every month with a stride of the whole
 * grid put each material's row of a month on its own page, at a stride
 * that mapped them all to the same L1 sets (perf: the load of the pair was
 * 38% of the loop). A line costs an add to its entry and an increment of
 * its histogram bin; sealing finds the materials with lines by their line
 * counts. Nothing is stored per line and nothing is freed and allocated
 * per chunk.
 *
 * Blocks are zeroed by writing (malloc + memset), not by calloc: a page
 * calloc leaves lazily mapped is first read by a line's `+=`, which maps
 * the shared zero page, and the write after it replaces that mapping with
 * a TLB shoot-down on every core (a quarter of the step's CPU with two
 * threads). Merging accumulators moves the months only one side has.
 *
 * Sealing a month (st_dense_seal_month as the caller's lines move past
 * it, finish for the months left) walks its blocks into per-cell totals,
 * line counts, distinct-material counts and unified rows (the (cell,
 * material) pairs with lines, in code order), and reads each median off
 * the cell's histogram: the value at index n/2 (and n/2 - 1 for an even
 * count), averaged in double as st_median_i64() does, so the medians are
 * bit for bit those of selection. Finish then lists the active cells in
 * (customer_id, period_key) order and puts each cell's rows into
 * material rank order.
 *
 * Overflow cannot go unseen: eligibility bounds |quantity| by 2^31 and
 * the line count of a table by 2^32 - 1, so every cell's sum stays below
 * 2^63 in magnitude. An entry keeps the low 32 bits of its (customer,
 * month, material) sum, added modulo 2^32, and a unified row its sums in
 * int32: exact while lines x the table's largest |quantity| stays within
 * int32, which sealing checks for every row it keeps; past it the object
 * notes it (st_dense_sums_fit) and the gold step takes the st_features
 * path.
 */
#include "agg_internal.h"
#include "strata/pool.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A (customer, material) entry of a month block: 8 bytes, so a block of
 * 100 customers x 150 materials is 120 KiB, half in the caches and half
 * the pages to fault in and zero. One word: the lines in its low 32 bits,
 * the sum's low 32 bits (modulo 2^32) in its high ones, so a line is one
 * add of (quantity << 32) + 1. The lines never carry into the sum (a
 * table has fewer than 2^32 lines: st_dense_add and st_dense_merge refuse
 * more) and the sum's carries leave the word, which is the modulo. */
typedef uint64_t dense_acc;

static inline uint32_t acc_lines(dense_acc a) { return (uint32_t)a; }
static inline uint32_t acc_sum(dense_acc a) { return (uint32_t)(a >> 32); }

typedef struct month_blk {
    dense_acc *uni; /* cust_span x cap; NULL until the month's first line */
    uint32_t *hist; /* cust_span x span[t] */
    uint32_t cap;   /* code rows of uni */
} month_blk;

/* One unified row of a sealed cell: a material with lines in either table.
 * 20 bytes: the rows of a 500K gold step are ~3.6 MB written once, page
 * by fresh page, then walked once for the codes and once per value by the
 * writers. Its sums are int32: a row whose lines times its table's
 * largest |quantity| could leave int32 is noted when sealed (sums_wide)
 * and the gold step takes the st_features path instead
 * (st_dense_sums_fit). */
typedef struct dense_urow {
    struct {
        uint32_t lines; /* the table's entry as it stands (dense_acc's halves): the two copied with one 16-byte store */
        int32_t sum;
    } t[2];
    uint32_t code;
} dense_urow;

/* The unified rows sealed into one accumulator; merging adds the other
 * side's pools to the list instead of copying them. */
typedef struct dense_pool {
    dense_urow *row;
    size_t n, cap;
} dense_pool;

/* A sealed cell's results; lines == 0 in both tables: no group. */
typedef struct dense_cell {
    int64_t sum[2];
    uint32_t lines[2];
    double med[2];
    uint32_t uniq; /* its unified rows: pool[pool].row[off, off + uniq) */
    uint32_t pool;
    size_t off;
} dense_cell;

struct st_dense {
    st_dense_dims d;
    bool failed, finished;
    bool sums_wide;         /* a unified row's sum could have left its int32 */
    int32_t month0;         /* year*12 + month-1 of period_key_min */
    uint32_t n_periods;
    uint32_t cust_span;
    uint32_t per_span;      /* period_key_max - period_key_min + 1 */
    uint32_t *per_idx;      /* per_span entries, ST_KEY_NONE = not a month */
    size_t n_cells;
    uint32_t span[2];       /* histogram bins per cell */
    uint64_t qty_bound[2];  /* the largest |quantity| of each table */
    month_blk *blk[2];      /* n_periods each */
    uint64_t n_lines[2];

    /* sealed months: their blocks reduced to cells, the blocks reused */
    uint8_t *sealed;        /* n_periods */
    dense_cell *cell;       /* n_cells, made at the first seal */
    dense_pool *pool;       /* n_pools; pool[0] is this object's own */
    uint32_t n_pools;
    uint32_t max_code;      /* 1 + the largest code with lines in a sealed cell */
    month_blk *spare[2];    /* zeroed blocks of sealed months, n_spare[t] each */
    uint32_t n_spare[2], cap_spare[2];

    /* after finish */
    uint32_t n_materials;
    size_t n_groups, n_unified;
    uint32_t *g_cell;       /* n_groups cells in output order */
    uint64_t *g_row;        /* n_groups + 1: first unified row of each group */
};

static uint64_t qty_span(const st_dense_dims *d, int t)
{
    return (uint64_t)(d->qty_max[t] - d->qty_min[t]) + 1;
}

static uint64_t n_months(const st_feature_dims *f)
{
    return (uint64_t)(st_period_month(f->period_key_max) - st_period_month(f->period_key_min)) + 1;
}

bool st_dense_eligible(const st_dense_dims *d)
{
    const st_feature_dims *f = &d->f;
    if (f->customer_id_min > f->customer_id_max || !st_period_valid(f->period_key_min) ||
        !st_period_valid(f->period_key_max) || f->period_key_min > f->period_key_max ||
        (int64_t)f->period_key_max - f->period_key_min >= ST_FEATURES_MAX_PERIOD_SPAN)
        return false;
    uint64_t cust = (uint64_t)f->customer_id_max - (uint64_t)f->customer_id_min;
    if (cust >= ST_DENSE_MAX_CELLS || (cust + 1) * n_months(f) > ST_DENSE_MAX_CELLS) return false;
    for (int t = 0; t < 2; t++)
        if (d->qty_min[t] > d->qty_max[t] || d->qty_min[t] < INT32_MIN || d->qty_max[t] > INT32_MAX ||
            qty_span(d, t) > ST_DENSE_MAX_QTY_SPAN)
            return false;
    return true;
}

uint64_t st_dense_slots(const st_dense_dims *d)
{
    uint64_t cells = ((uint64_t)d->f.customer_id_max - (uint64_t)d->f.customer_id_min + 1) * n_months(&d->f);
    return cells * (qty_span(d, 0) + qty_span(d, 1));
}

uint64_t st_dense_bytes(const st_dense_dims *d, uint32_t n_materials)
{
    uint64_t cells = ((uint64_t)d->f.customer_id_max - (uint64_t)d->f.customer_id_min + 1) * n_months(&d->f);
    uint64_t hist = cells * (qty_span(d, 0) + qty_span(d, 1)) * sizeof(uint32_t);
    /* sealed cells, and their unified rows: at most one per cell and
     * material, with the pool's growth slack (half) */
    uint64_t sealed = cells * sizeof(dense_cell) + cells * (uint64_t)n_materials * sizeof(dense_urow) * 3 / 2;
    return 2 * cells * (uint64_t)n_materials * sizeof(dense_acc) + hist + sealed;
}

/* Frees the zeroed blocks kept for later months. */
static void free_spares(st_dense *dn)
{
    for (int t = 0; t < 2; t++) {
        for (uint32_t k = 0; k < dn->n_spare[t]; k++) {
            free(dn->spare[t][k].uni);
            free(dn->spare[t][k].hist);
        }
        dn->n_spare[t] = 0;
    }
}

void st_dense_free(st_dense *dn)
{
    if (!dn) return;
    free(dn->per_idx);
    for (int t = 0; t < 2; t++) {
        for (uint32_t p = 0; dn->blk[t] && p < dn->n_periods; p++) {
            free(dn->blk[t][p].uni);
            free(dn->blk[t][p].hist);
        }
        free(dn->blk[t]);
    }
    free_spares(dn);
    for (int t = 0; t < 2; t++) {
        free(dn->spare[t]);
    }
    for (uint32_t k = 0; k < dn->n_pools; k++) free(dn->pool[k].row);
    free(dn->pool);
    free(dn->sealed);
    free(dn->cell);
    free(dn->g_cell);
    free(dn->g_row);
    free(dn);
}

st_status st_dense_create(st_dense **out, const st_dense_dims *d, st_error *err)
{
    *out = NULL;
    if (!d || !st_dense_eligible(d))
        return st_error_set(err, ST_ERR_INVALID, "dense features: ranges too wide or bad dimensions");
    st_dense *dn = calloc(1, sizeof *dn);
    if (!dn) goto nomem;
    dn->d = *d;
    dn->month0 = st_period_month(d->f.period_key_min);
    dn->n_periods = (uint32_t)n_months(&d->f);
    dn->cust_span = (uint32_t)((uint64_t)d->f.customer_id_max - (uint64_t)d->f.customer_id_min) + 1;
    dn->per_span = (uint32_t)(d->f.period_key_max - d->f.period_key_min) + 1;
    dn->n_cells = (size_t)dn->cust_span * dn->n_periods;
    dn->per_idx = malloc(dn->per_span * sizeof *dn->per_idx);
    if (!dn->per_idx) goto nomem;
    for (uint32_t i = 0; i < dn->per_span; i++) {
        int32_t pk = d->f.period_key_min + (int32_t)i;
        dn->per_idx[i] = st_period_valid(pk) ? (uint32_t)(st_period_month(pk) - dn->month0) : ST_KEY_NONE;
    }
    for (int t = 0; t < 2; t++) {
        dn->span[t] = (uint32_t)qty_span(d, t);
        uint64_t lo = (uint64_t)(d->qty_min[t] < 0 ? -d->qty_min[t] : d->qty_min[t]);
        uint64_t hi = (uint64_t)(d->qty_max[t] < 0 ? -d->qty_max[t] : d->qty_max[t]);
        dn->qty_bound[t] = lo > hi ? lo : hi;
        if (!(dn->blk[t] = calloc(dn->n_periods, sizeof *dn->blk[t]))) goto nomem;
    }
    if (!(dn->sealed = calloc(dn->n_periods, 1)) || !(dn->pool = calloc(1, sizeof *dn->pool))) goto nomem;
    dn->n_pools = 1;
    *out = dn;
    return ST_OK;
nomem:
    st_dense_free(dn);
    return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory creating the accumulator");
}

st_status st_dense_reserve_rows(st_dense *dn, size_t n_rows, st_error *err)
{
    dense_pool *p = &dn->pool[0];
    if (dn->failed || dn->finished || p->n || n_rows <= p->cap) return ST_OK;
    size_t bytes;
    dense_urow *r = st_size_mul(n_rows, sizeof *r, &bytes) ? malloc(bytes) : NULL;
    if (!r) return st_error_set(err, ST_ERR_NOMEM, "dense features: no room reserved for %zu unified rows", n_rows);
    free(p->row);
    p->row = r;
    p->cap = n_rows;
    return ST_OK;
}

/* Grows a month's material rows to at least `need` codes: a new block
 * with the wider stride, zeroed by writing, the old rows copied in. False
 * when out of memory. */
static bool grow_block(month_blk *b, uint32_t need, size_t cs)
{
    if (need <= b->cap) return true;
    uint64_t cap = (uint64_t)b->cap + b->cap / 2;
    if (cap < need) cap = need;
    size_t bytes;
    if (cap > UINT32_MAX || !st_size_mul((size_t)cap, cs * sizeof(dense_acc), &bytes)) return false;
    dense_acc *u = malloc(bytes ? bytes : 1);
    if (!u) return false;
    memset(u, 0, bytes);
    for (size_t dc = 0; b->uni && dc < cs; dc++)
        memcpy(u + dc * (size_t)cap, b->uni + dc * (size_t)b->cap, (size_t)b->cap * sizeof *u);
    free(b->uni);
    b->uni = u;
    b->cap = (uint32_t)cap;
    return true;
}

/* Month p of table t with room for n_codes codes: made at its first line
 * from a sealed month's zeroed block when there is one (else histogram
 * zeroed by writing), grown when the dictionary has grown. */
static st_status month_block(st_dense *dn, int t, uint32_t p, uint32_t n_codes, month_blk **out, st_error *err)
{
    month_blk *b = &dn->blk[t][p];
    size_t cs = dn->cust_span, bytes;
    if (!b->hist && dn->n_spare[t] > 0) {
        *b = dn->spare[t][--dn->n_spare[t]];
    } else if (!b->hist) {
        if (!st_size_mul(cs * sizeof(uint32_t), dn->span[t], &bytes) || !(b->hist = malloc(bytes ? bytes : 1)))
            return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for a month's histograms");
        memset(b->hist, 0, bytes);
    }
    if (!grow_block(b, n_codes, cs))
        return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for %" PRIu32 " materials", n_codes);
    *out = b;
    return ST_OK;
}

/* First row of [0, n) outside the ranges, or n: the error path of
 * st_dense_add, once add_run has seen a bad row. */
static size_t first_bad(const st_dense *dn, int t, const int64_t *cust, const int32_t *pk,
                        const uint32_t *mat, const int64_t *qty, size_t n, uint32_t n_codes)
{
    const uint64_t cmin = (uint64_t)dn->d.f.customer_id_min, qmin = (uint64_t)dn->d.qty_min[t];
    const uint32_t pmin = (uint32_t)dn->d.f.period_key_min;
    for (size_t i = 0; i < n; i++) {
        uint32_t dp = (uint32_t)pk[i] - pmin;
        if ((uint64_t)cust[i] - cmin >= dn->cust_span || dp >= dn->per_span || dn->per_idx[dp] == ST_KEY_NONE ||
            mat[i] >= n_codes || (uint64_t)qty[i] - qmin >= dn->span[t])
            return i;
    }
    return n;
}

/* The largest of the offsets v[i] - base (i < n), as unsigned values (one
 * below base wraps to a huge one), saturated to UINT32_MAX: its high
 * halves OR-ed and its low halves max-ed, which the compiler vectorises
 * at the baseline ISA (there is no unsigned 64-bit max before AVX-512). */
static uint64_t offset_max(const int64_t *v, size_t n, uint64_t base)
{
    uint64_t hi = 0;
    uint32_t lo = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)v[i] - base;
        hi |= d >> 32;
        lo = (uint32_t)d > lo ? (uint32_t)d : lo;
    }
    return hi ? UINT32_MAX : lo;
}

/* True when every row of [0, n) is inside the ranges: customer and
 * quantity offsets below their spans (both below 2^32: eligibility), codes
 * below n_codes. Reductions the compiler vectorises, so the adding loop
 * after it needs no test per row. */
static bool rows_in_ranges(const int64_t *cust, const uint32_t *mat, const int64_t *qty, size_t n, uint64_t cmin,
                           uint64_t cspan, uint64_t qmin, uint64_t qspan, uint32_t n_codes)
{
    uint32_t m_hi = 0;
    for (size_t i = 0; i < n; i++) m_hi = mat[i] > m_hi ? mat[i] : m_hi;
    return n == 0 || (offset_max(cust, n, cmin) < cspan && offset_max(qty, n, qmin) < qspan && m_hi < n_codes);
}

/* Adds rows [0, n) of one month to its block, a slice at a time (each
 * checked by rows_in_ranges, then added while its rows are still in the
 * cache), and returns false at the first slice with a row outside the
 * ranges: the caller then fails the object and finds the row. */
static bool add_run(const st_dense *dn, int t, month_blk *b, const int64_t *cust, const uint32_t *mat,
                    const int64_t *qty, size_t n, uint32_t n_codes)
{
    enum { SLICE = 2048 };
    const uint64_t cmin = (uint64_t)dn->d.f.customer_id_min, qmin = (uint64_t)dn->d.qty_min[t];
    const uint64_t cspan = dn->cust_span, qspan = dn->span[t], cap = b->cap;
    dense_acc *restrict uni = b->uni;
    uint32_t *restrict hist = b->hist;
    for (size_t i0 = 0; i0 < n; i0 += SLICE) {
        size_t i1 = n - i0 < SLICE ? n : i0 + SLICE;
        if (!rows_in_ranges(cust + i0, mat + i0, qty + i0, i1 - i0, cmin, cspan, qmin, qspan, n_codes)) return false;
        for (size_t i = i0; i < i1; i++) {
            uint64_t dc = (uint64_t)cust[i] - cmin, dq = (uint64_t)qty[i] - qmin;
            uint32_t m = mat[i];
            uni[dc * cap + m] += ((uint64_t)(uint32_t)qty[i] << 32) + 1;
            hist[dc * qspan + dq]++;
        }
    }
    return true;
}

/* The end of the run of pk[i]'s value that starts at i: eight at a time
 * while all eight match (a loop the compiler vectorises), then one by one. */
static size_t run_end(const int32_t *pk, size_t i, size_t n)
{
    const int32_t v = pk[i];
    size_t j = i + 1;
    for (; j + 8 <= n; j += 8) {
        int same = 1;
        for (size_t k = 0; k < 8; k++) same &= pk[j + k] == v;
        if (!same) break;
    }
    while (j < n && pk[j] == v) j++;
    return j;
}

/* Adds the lines run by run of one period_key (a chunk is one month as a
 * rule); false at the first run outside the ranges. */
static st_status add_months(st_dense *dn, int t, const int64_t *cust, const int32_t *pk, const uint32_t *mat,
                            const int64_t *qty, size_t n, uint32_t n_codes, bool *ok, st_error *err)
{
    const uint32_t pmin = (uint32_t)dn->d.f.period_key_min;
    *ok = true;
    for (size_t i = 0, j; i < n; i = j) {
        j = run_end(pk, i, n);
        uint32_t dp = (uint32_t)pk[i] - pmin;
        uint32_t p = dp < dn->per_span ? dn->per_idx[dp] : ST_KEY_NONE;
        if (p == ST_KEY_NONE || dn->sealed[p]) {
            *ok = false;
            return ST_OK;
        }
        month_blk *b = NULL;
        ST_TRY(month_block(dn, t, p, n_codes, &b, err));
        if (!add_run(dn, t, b, cust + i, mat + i, qty + i, j - i, n_codes)) {
            *ok = false;
            return ST_OK;
        }
    }
    return ST_OK;
}

st_status st_dense_add(st_dense *dn, int t, const int64_t *cust, const int32_t *pk, const uint32_t *mat,
                       const int64_t *qty, size_t n, uint32_t n_codes, st_error *err)
{
    st_status s = ST_OK;
    if (dn->failed || dn->finished || t < 0 || t > 1)
        return st_error_set(err, ST_ERR_INVALID, "dense features: add after finish or an error");
    if (n == 0) return ST_OK;
    if (n > UINT32_MAX - dn->n_lines[t]) {
        s = st_error_set(err, ST_ERR_INVALID, "dense features: more than %" PRIu32 " lines", UINT32_MAX);
        goto done;
    }
    bool ok;
    /* a code table of at least one row (n_codes == 0 is then refused below) */
    if ((s = add_months(dn, t, cust, pk, mat, qty, n, n_codes ? n_codes : 1, &ok, err)) != ST_OK) goto done;
    if (!ok || n_codes == 0) {
        size_t bad = first_bad(dn, t, cust, pk, mat, qty, n, n_codes);
        if (bad == n) { /* in range: a month sealed before */
            for (bad = 0; bad + 1 < n && !dn->sealed[dn->per_idx[(uint32_t)pk[bad] - (uint32_t)dn->d.f.period_key_min]];)
                bad++;
            s = st_error_set(err, ST_ERR_INVALID,
                             "dense features: row %zu (period_key %" PRId32 ") is in a month sealed before", bad,
                             pk[bad]);
            goto done;
        }
        s = st_error_set(err, ST_ERR_INVALID,
                         "dense features: row %zu (customer_id %" PRId64 ", period_key %" PRId32
                         ", material %" PRIu32 ", quantity %" PRId64 ") is outside the ranges",
                         bad, cust[bad], pk[bad], mat[bad], qty[bad]);
        goto done;
    }
    dn->n_lines[t] += n;
done:
    if (s != ST_OK) dn->failed = true;
    return s;
}

static bool same_dims(const st_dense_dims *a, const st_dense_dims *b)
{
    return a->f.customer_id_min == b->f.customer_id_min && a->f.customer_id_max == b->f.customer_id_max &&
           a->f.period_key_min == b->f.period_key_min && a->f.period_key_max == b->f.period_key_max &&
           a->qty_min[0] == b->qty_min[0] && a->qty_max[0] == b->qty_max[0] && a->qty_min[1] == b->qty_min[1] &&
           a->qty_max[1] == b->qty_max[1];
}

/* Adds src's month block into dst's (both made). */
static bool merge_block(month_blk *d, const month_blk *s, size_t cs, size_t span)
{
    if (!grow_block(d, s->cap, cs)) return false;
    for (size_t dc = 0; dc < cs; dc++) {
        dense_acc *restrict du = d->uni + dc * d->cap;
        const dense_acc *restrict su = s->uni + dc * s->cap;
        for (size_t k = 0; k < s->cap; k++) du[k] += su[k];
    }
    size_t nh = cs * span;
    for (size_t i = 0; i < nh; i++) d->hist[i] += s->hist[i];
    return true;
}

/* The value at index k (0-based, ascending) of a histogram with n >= k+1
 * entries; returned as an offset from the range's minimum. */
static size_t hist_at(const uint32_t *h, size_t k)
{
    size_t v = 0;
    uint64_t cum = h[0];
    while (cum <= k) cum += h[++v];
    return v;
}

static double hist_median(const uint32_t *h, int64_t qmin, size_t n)
{
    size_t k = n / 2;
    int64_t hi = qmin + (int64_t)hist_at(h, k);
    if (n & 1) return (double)hi;
    int64_t lo = qmin + (int64_t)hist_at(h, k - 1);
    return ((double)lo + (double)hi) / 2.0;
}

/* ---- sealing: a finished month's blocks reduced to cells --------------- */

static bool ensure_cells(st_dense *dn)
{
    if (!dn->cell) dn->cell = calloc(dn->n_cells ? dn->n_cells : 1, sizeof *dn->cell);
    return dn->cell != NULL;
}

/* Room for `more` rows in pool p (geometric growth). */
static bool pool_reserve(dense_pool *p, size_t more)
{
    if (p->cap - p->n >= more) return true;
    size_t cap = p->cap + p->cap / 2 + 1024;
    if (cap - p->n < more) cap = p->n + more;
    dense_urow *r = realloc(p->row, cap * sizeof *r);
    if (!r) return false;
    p->row = r;
    p->cap = cap;
    return true;
}

/* Code k's unified row (the two tables' entries x and y, either may be
 * empty) written at *r, kept (*r moves on) when it has lines, without a
 * branch: a quarter of the codes have lines, at random, and a branch on
 * it missed every few codes (the pool has room for a row per code). */
static inline void take_code(dense_urow **r, uint32_t k, dense_acc x, dense_acc y)
{
    **r = (dense_urow){.t = {{acc_lines(x), (int32_t)acc_sum(x)}, {acc_lines(y), (int32_t)acc_sum(y)}}, .code = k};
    *r += (acc_lines(x) | acc_lines(y)) != 0;
}

/* The totals of a cell's kept rows [first, r), whose entries in the
 * blocks' customer rows u0, u1 (cap0, cap1 codes) are zeroed; true when
 * every row's sums are exact: its lines times its table's largest
 * |quantity| (qb) within int32. */
static bool cell_totals(const dense_urow *first, const dense_urow *r, dense_acc *u0, uint32_t cap0, dense_acc *u1,
                        uint32_t cap1, const uint64_t qb[2], dense_cell *c)
{
    static const dense_acc none = 0;
    uint64_t most = 0;
    for (const dense_urow *q = first; q < r; q++) {
        for (int t = 0; t < 2; t++) {
            c->sum[t] += q->t[t].sum;
            c->lines[t] += q->t[t].lines;
            uint64_t b = (uint64_t)q->t[t].lines * qb[t];
            most = b > most ? b : most;
        }
        if (q->code < cap0) u0[q->code] = none;
        if (q->code < cap1) u1[q->code] = none;
    }
    return most <= INT32_MAX;
}

/* Cell dc of one month from its rows in the two tables' blocks (either may
 * have fewer codes, or none): totals, lines, medians, and its unified rows
 * appended to the object's own pool in code order. The codes with lines
 * are found by reading every entry (a block's rows are as many as the
 * entries it was zeroed with when made), and what has lines is zeroed
 * (the kept rows' entries, the histogram rows of tables with lines): the
 * cell is left as a new block's. A bit per entry set by every line cost
 * more than this read (its word's store and load chained the lines of a
 * customer). */
static void seal_cell(st_dense *dn, month_blk *b0, month_blk *b1, size_t dc, dense_cell *c)
{
    static const dense_acc none = 0;
    month_blk *b[2] = {b0, b1};
    dense_acc *u0 = b0->cap ? b0->uni + dc * b0->cap : NULL, *u1 = b1->cap ? b1->uni + dc * b1->cap : NULL;
    dense_pool *pool = &dn->pool[0];
    dense_urow *first = pool->row + pool->n, *r = first;
    uint32_t both = b0->cap < b1->cap ? b0->cap : b1->cap;
    for (uint32_t k = 0; k < both; k++) take_code(&r, k, u0[k], u1[k]);
    /* the codes only one table's block has (at most one has more) */
    for (uint32_t k = both; k < b0->cap; k++) take_code(&r, k, u0[k], none);
    for (uint32_t k = both; k < b1->cap; k++) take_code(&r, k, none, u1[k]);
    *c = (dense_cell){.pool = 0, .off = pool->n, .uniq = (uint32_t)(r - first)};
    if (!cell_totals(first, r, u0, b0->cap, u1, b1->cap, dn->qty_bound, c)) dn->sums_wide = true;
    pool->n += c->uniq;
    if (r > first && r[-1].code + 1 > dn->max_code) dn->max_code = r[-1].code + 1;
    for (int t = 0; t < 2; t++) {
        if (!c->lines[t]) continue;
        uint32_t *h = b[t]->hist + dc * dn->span[t];
        c->med[t] = hist_median(h, dn->d.qty_min[t], c->lines[t]);
        memset(h, 0, dn->span[t] * sizeof *h);
    }
}

/* Keeps a sealed month's block (zeroed by seal_cell) for the next month's
 * first line: the memory is mapped and cached already. */
static bool recycle(st_dense *dn, int t, month_blk *b)
{
    if (!b->hist) return true;
    if (dn->n_spare[t] == dn->cap_spare[t]) {
        uint32_t cap = dn->cap_spare[t] ? 2 * dn->cap_spare[t] : 4;
        month_blk *s = realloc(dn->spare[t], cap * sizeof *s);
        if (!s) return false;
        dn->spare[t] = s;
        dn->cap_spare[t] = cap;
    }
    dn->spare[t][dn->n_spare[t]++] = *b;
    *b = (month_blk){0};
    return true;
}

/* Month p into its cells; its blocks become spares. */
static st_status seal_month(st_dense *dn, uint32_t p, st_error *err)
{
    if (dn->sealed[p]) return ST_OK;
    month_blk *b0 = &dn->blk[0][p], *b1 = &dn->blk[1][p];
    /* cells even for a month without lines: a merge moves them */
    if (!ensure_cells(dn))
        return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for %zu cells", dn->n_cells);
    if (b0->hist || b1->hist) {
        size_t cs = dn->cust_span, cap = b0->cap > b1->cap ? b0->cap : b1->cap;
        for (size_t dc = 0; dc < cs; dc++) {
            if (!pool_reserve(&dn->pool[0], cap))
                return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for unified rows");
            seal_cell(dn, b0, b1, dc, &dn->cell[(size_t)p * cs + dc]);
        }
        if (!recycle(dn, 0, b0) || !recycle(dn, 1, b1))
            return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory");
    }
    dn->sealed[p] = 1;
    return ST_OK;
}

bool st_dense_month_sealed(const st_dense *dn, int32_t period_key)
{
    uint32_t dp = (uint32_t)period_key - (uint32_t)dn->d.f.period_key_min;
    uint32_t p = dp < dn->per_span ? dn->per_idx[dp] : ST_KEY_NONE;
    return p != ST_KEY_NONE && dn->sealed[p];
}

st_status st_dense_seal_month(st_dense *dn, int32_t period_key, st_error *err)
{
    if (dn->failed || dn->finished) return st_error_set(err, ST_ERR_INVALID, "dense features: seal after finish or an error");
    uint32_t dp = (uint32_t)period_key - (uint32_t)dn->d.f.period_key_min;
    uint32_t p = dp < dn->per_span ? dn->per_idx[dp] : ST_KEY_NONE;
    if (p == ST_KEY_NONE)
        return st_error_set(err, ST_ERR_INVALID, "dense features: period_key %" PRId32 " is outside the ranges",
                            period_key);
    st_status s = seal_month(dn, p, err);
    if (s != ST_OK) dn->failed = true;
    return s;
}

/* ---- merge ------------------------------------------------------------- */

static bool month_live(const st_dense *dn, uint32_t p) { return dn->blk[0][p].hist || dn->blk[1][p].hist; }

/* Moves src's sealed month p into dst, whose month p is empty: its cells,
 * pointing at src's pools (already in dst's list from pool_base on). */
static void move_sealed(st_dense *dst, const st_dense *src, uint32_t p, uint32_t pool_base)
{
    size_t cs = dst->cust_span;
    for (size_t dc = 0; dc < cs; dc++) {
        dense_cell c = src->cell[(size_t)p * cs + dc];
        c.pool += pool_base;
        dst->cell[(size_t)p * cs + dc] = c;
    }
    dst->sealed[p] = 1;
}

/* src's pools appended to dst's list (src keeps none). */
static bool take_pools(st_dense *dst, st_dense *src)
{
    dense_pool *p = realloc(dst->pool, (dst->n_pools + src->n_pools) * sizeof *p);
    if (!p) return false;
    dst->pool = p;
    memcpy(dst->pool + dst->n_pools, src->pool, src->n_pools * sizeof *p);
    dst->n_pools += src->n_pools;
    memset(src->pool, 0, src->n_pools * sizeof *src->pool);
    return true;
}

/* Month p of table t: src's block added to (or moved into) dst's. */
static bool merge_month(st_dense *dst, st_dense *src, int t, uint32_t p)
{
    month_blk *sb = &src->blk[t][p], *db = &dst->blk[t][p];
    if (!sb->hist) return true;
    if (!db->hist) {
        *db = *sb;
        *sb = (month_blk){0};
        return true;
    }
    return merge_block(db, sb, src->cust_span, src->span[t]);
}

st_status st_dense_merge(st_dense *dst, st_dense *src, st_error *err)
{
    if (dst->failed || dst->finished || src->failed || src->finished || !same_dims(&dst->d, &src->d))
        return st_error_set(err, ST_ERR_INVALID, "dense features: merge of unlike or finished accumulators");
    for (int t = 0; t < 2; t++)
        if (src->n_lines[t] > UINT32_MAX - dst->n_lines[t])
            return st_error_set(err, ST_ERR_INVALID, "dense features: more than %" PRIu32 " lines", UINT32_MAX);
    for (uint32_t p = 0; p < src->n_periods; p++)
        if ((src->sealed[p] && (dst->sealed[p] || month_live(dst, p))) || (dst->sealed[p] && month_live(src, p)))
            return st_error_set(err, ST_ERR_INVALID,
                                "dense features: merge of a month sealed on one side with lines on the other");
    uint32_t pool_base = dst->n_pools;
    bool any_sealed = false;
    for (uint32_t p = 0; p < src->n_periods; p++) any_sealed |= src->sealed[p] != 0;
    if (any_sealed && (!ensure_cells(dst) || !take_pools(dst, src))) goto nomem;
    /* lines split by contiguous chunk ranges of month-ordered files: most
     * months are only on one side and move without a copy */
    for (uint32_t p = 0; p < src->n_periods; p++) {
        if (src->sealed[p]) {
            move_sealed(dst, src, p, pool_base);
            continue;
        }
        for (int t = 0; t < 2; t++)
            if (!merge_month(dst, src, t, p)) goto nomem;
    }
    for (int t = 0; t < 2; t++) dst->n_lines[t] += src->n_lines[t];
    dst->max_code = src->max_code > dst->max_code ? src->max_code : dst->max_code;
    dst->sums_wide |= src->sums_wide;
    src->failed = true; /* its months may now be dst's: only free is left */
    return ST_OK;
nomem:
    dst->failed = true;
    return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory merging accumulators");
}

/* ---- finish ------------------------------------------------------------ */

/* Sorts a cell's unified rows (code order) into material rank order:
 * insertion when few, else by marking each row's rank in a bitmap over
 * the ranks and reading the bits in order (slot: rank -> row, read only
 * where a bit is set; bits: words over n_materials ranks, all zero on
 * entry and on return; tmp holds n rows). */
static void rank_rows(dense_urow *r, size_t n, const uint32_t *rank, uint32_t n_materials, uint32_t *slot,
                      uint64_t *bits, dense_urow *tmp)
{
    if (!rank || n < 2) return;
    size_t up = 1; /* already in rank order (codes handed out in string order): nothing to do */
    while (up < n && rank[r[up].code] > rank[r[up - 1].code]) up++;
    if (up == n) return;
    if (n <= 8 || n * n <= (size_t)n_materials / 16) {
        for (size_t i = 1; i < n; i++) {
            dense_urow x = r[i];
            uint32_t rx = rank[x.code];
            size_t j = i;
            for (; j > 0 && rank[r[j - 1].code] > rx; j--) r[j] = r[j - 1];
            r[j] = x;
        }
        return;
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t q = rank[r[i].code];
        slot[q] = (uint32_t)i;
        bits[q >> 6] |= (uint64_t)1 << (q & 63);
        lo = q < lo ? q : lo;
        hi = q > hi ? q : hi;
    }
    size_t k = 0;
    for (uint32_t w = lo >> 6; w <= hi >> 6; w++) {
        for (uint64_t b = bits[w]; b; b &= b - 1) tmp[k++] = r[slot[w * 64 + (uint32_t)__builtin_ctzll(b)]];
        bits[w] = 0;
    }
    memcpy(r, tmp, n * sizeof *r);
}

/* Checks material_rank is a permutation of [0, n_materials); *identity
 * is true when it maps every code to itself (or is NULL). */
static st_status check_rank(const uint32_t *material_rank, uint32_t n_materials, uint32_t *seen, bool *identity,
                            st_error *err)
{
    memset(seen, 0xff, (n_materials ? n_materials : 1) * sizeof *seen);
    *identity = true;
    for (uint32_t c = 0; material_rank && c < n_materials; c++) {
        uint32_t r = material_rank[c];
        if (r >= n_materials || seen[r] != ST_KEY_NONE)
            return st_error_set(err, ST_ERR_INVALID,
                                "dense features: material rank table is not a permutation (code %" PRIu32 ")", c);
        seen[r] = c;
        *identity &= r == c;
    }
    memset(seen, 0xff, (n_materials ? n_materials : 1) * sizeof *seen);
    return ST_OK;
}

/* Active cells in (customer_id, period_key) order: g_cell, g_row. */
static st_status list_groups(st_dense *dn, size_t *widest, st_error *err)
{
    size_t ng = 0, nu = 0;
    *widest = 1;
    for (size_t c = 0; c < dn->n_cells; c++) {
        const dense_cell *x = &dn->cell[c];
        ng += (x->lines[0] | x->lines[1]) != 0;
        nu += x->uniq;
        *widest = x->uniq > *widest ? x->uniq : *widest;
    }
    dn->g_cell = malloc((ng ? ng : 1) * sizeof *dn->g_cell);
    dn->g_row = malloc((ng + 1) * sizeof *dn->g_row);
    if (!dn->g_cell || !dn->g_row) return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory in finish");
    size_t g = 0;
    dn->g_row[0] = 0;
    for (uint32_t dc = 0; dc < dn->cust_span; dc++)
        for (uint32_t p = 0; p < dn->n_periods; p++) {
            size_t c = (size_t)p * dn->cust_span + dc;
            const dense_cell *x = &dn->cell[c];
            if ((x->lines[0] | x->lines[1]) == 0) continue;
            dn->g_row[g + 1] = dn->g_row[g] + x->uniq;
            dn->g_cell[g++] = (uint32_t)c;
        }
    dn->n_groups = ng;
    dn->n_unified = nu;
    return ST_OK;
}

/* Putting each group's unified rows in material rank order, as tasks
 * over group ranges (each with its own scratch), on the caller's pool. */
enum { RANK_TASKS_PER_THREAD = 4 };

typedef struct rank_job {
    st_dense *dn;
    const uint32_t *rank;
    size_t widest, n_tasks;
    size_t slots, words; /* a task's entries of slot and bits */
    uint32_t *slot;      /* n_tasks x slots */
    uint64_t *bits;      /* n_tasks x words, zero */
    dense_urow *tmp;     /* n_tasks x widest */
} rank_job;

static void rank_task(void *arg, size_t t, int worker)
{
    (void)worker;
    rank_job *j = arg;
    st_dense *dn = j->dn;
    size_t g0 = dn->n_groups * t / j->n_tasks, g1 = dn->n_groups * (t + 1) / j->n_tasks;
    for (size_t g = g0; g < g1; g++) {
        const dense_cell *x = &dn->cell[dn->g_cell[g]];
        rank_rows(dn->pool[x->pool].row + x->off, x->uniq, j->rank, dn->n_materials,
                  j->slot + t * j->slots, j->bits + t * j->words, j->tmp + t * j->widest);
    }
}

static st_status rank_groups(st_dense *dn, const uint32_t *material_rank, size_t widest, st_pool *pool,
                             st_error *err)
{
    if (!material_rank || dn->n_groups == 0) return ST_OK;
    rank_job j = {.dn = dn, .rank = material_rank, .widest = widest, .slots = (size_t)dn->n_materials + 1,
                  .words = (size_t)dn->n_materials / 64 + 1};
    size_t threads = (size_t)st_pool_threads(pool), n = threads * RANK_TASKS_PER_THREAD;
    /* each task's scratch is a slot per material: one task a thread when
     * the tasks' scratch would pass 32 MiB */
    size_t per_task = j.slots * sizeof *j.slot + j.words * sizeof *j.bits + widest * sizeof *j.tmp;
    if (per_task > ((size_t)32 << 20) / n) n = threads;
    j.n_tasks = n < dn->n_groups ? n : dn->n_groups;
    j.slot = malloc(j.n_tasks * j.slots * sizeof *j.slot);
    j.bits = calloc(j.n_tasks * j.words, sizeof *j.bits);
    j.tmp = malloc(j.n_tasks * widest * sizeof *j.tmp);
    st_status s = j.slot && j.bits && j.tmp ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory in finish");
    if (s == ST_OK) st_pool_run(pool, j.n_tasks, rank_task, &j);
    free(j.slot);
    free(j.bits);
    free(j.tmp);
    return s;
}

st_status st_dense_finish_on(st_dense *dn, const uint32_t *material_rank, uint32_t n_materials, st_pool *pool,
                             st_error *err)
{
    if (dn->failed || dn->finished)
        return st_error_set(err, ST_ERR_INVALID, "dense features: finish after %s",
                            dn->finished ? "finish" : "an earlier error");
    dn->finished = true;
    dn->n_materials = n_materials;
    uint32_t *seen = malloc((n_materials ? n_materials : 1) * sizeof *seen);
    st_status s = seen && ensure_cells(dn) ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory in finish");
    bool identity = true;
    if (s == ST_OK) s = check_rank(material_rank, n_materials, seen, &identity, err);
    free(seen);
    for (uint32_t p = 0; s == ST_OK && p < dn->n_periods; p++) s = seal_month(dn, p, err);
    if (s == ST_OK && dn->max_code > n_materials)
        s = st_error_set(err, ST_ERR_INVALID, "dense features: material code %" PRIu32 " not below %" PRIu32,
                         dn->max_code - 1, n_materials);
    size_t widest = 1;
    if (s == ST_OK) s = list_groups(dn, &widest, err);
    /* a cell's rows are sealed in code order (seal_cell): when codes are
     * ranks (the dictionary took every material in string order), they
     * are in rank order already */
    if (s == ST_OK && !identity) s = rank_groups(dn, material_rank, widest, pool, err);
    free_spares(dn); /* every month is sealed: no block is needed again */
    if (s != ST_OK) dn->failed = true;
    return s;
}

st_status st_dense_finish(st_dense *dn, const uint32_t *material_rank, uint32_t n_materials, st_error *err)
{
    return st_dense_finish_on(dn, material_rank, n_materials, NULL, err);
}

bool st_dense_sums_fit(const st_dense *dn) { return !dn->sums_wide; }

size_t st_dense_n_groups(const st_dense *dn) { return dn->finished && !dn->failed ? dn->n_groups : 0; }

size_t st_dense_n_unified(const st_dense *dn) { return dn->finished && !dn->failed ? dn->n_unified : 0; }

static int64_t cell_customer(const st_dense *dn, uint32_t cell)
{
    return dn->d.f.customer_id_min + (int64_t)(cell % dn->cust_span);
}

static int32_t cell_period(const st_dense *dn, uint32_t cell)
{
    return st_month_period(dn->month0 + (int32_t)(cell / dn->cust_span));
}

void st_dense_get(const st_dense *dn, size_t i, st_feature_row *row)
{
    memset(row, 0, sizeof *row);
    uint32_t cell = dn->g_cell[i];
    const dense_cell *c = &dn->cell[cell];
    row->customer_id = cell_customer(dn, cell);
    row->period_key = cell_period(dn, cell);
    int64_t sold = c->sum[0], foc = c->sum[1];
    row->total_sold_quantity = sold;
    row->total_foc_quantity = foc;
    double den = (double)sold + (double)foc;
    row->foc_ratio = den != 0.0 ? (double)foc / den : 0.0;
    row->total_sold_transactions = c->lines[0];
    row->total_foc_transactions = c->lines[1];
    row->has_median_sold = row->total_sold_transactions > 0;
    row->has_median_foc = row->total_foc_transactions > 0;
    row->median_sold_order_size = c->med[0];
    row->median_foc_order_size = c->med[1];
    row->unique_materials = c->uniq;
}

st_status st_dense_unified_next(const st_dense *dn, st_unified_cursor *cur, const st_unified_batch *out,
                                size_t cap, size_t *n_out, st_error *err)
{
    *n_out = 0;
    if (!dn->finished || dn->failed || cap == 0)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified rows need a finished accumulator and cap > 0");
    size_t n = 0;
    while (n < cap && cur->group < dn->n_groups) {
        uint32_t cell = dn->g_cell[cur->group];
        const dense_cell *c = &dn->cell[cell];
        const dense_urow *r = dn->pool[c->pool].row + c->off + cur->sales_pos;
        size_t left = c->uniq - cur->sales_pos, take = left < cap - n ? left : cap - n;
        int64_t cust = cell_customer(dn, cell);
        int32_t pk = cell_period(dn, cell);
        for (size_t k = 0; k < take; k++) {
            out->customer_id[n + k] = cust;
            out->period_key[n + k] = pk;
            out->material[n + k] = r[k].code;
            out->sold_qty[n + k] = r[k].t[0].sum;
            out->foc_qty[n + k] = r[k].t[1].sum;
            out->sold_lines[n + k] = r[k].t[0].lines;
            out->foc_lines[n + k] = r[k].t[1].lines;
        }
        n += take;
        cur->sales_pos += take;
        if (take == left) {
            cur->group++;
            cur->sales_pos = 0;
        }
    }
    *n_out = n;
    return ST_OK;
}

st_status st_dense_unified_seek(const st_dense *dn, uint64_t row, st_unified_cursor *cur, st_error *err)
{
    memset(cur, 0, sizeof *cur);
    if (!dn->finished || dn->failed)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified rows need a finished accumulator");
    if (row > dn->n_unified)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified row %" PRIu64 " past the %zu rows", row,
                            dn->n_unified);
    /* the last group that starts at or before row */
    size_t lo = 0, hi = dn->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (dn->g_row[mid + 1] <= row) lo = mid + 1;
        else hi = mid;
    }
    cur->group = lo;
    cur->sales_pos = lo < dn->n_groups ? (size_t)(row - dn->g_row[lo]) : 0;
    return ST_OK;
}

void st_unified_groups_free(st_unified_groups *g)
{
    free(g->cust);
    free(g->pk);
    free(g->rows);
    *g = (st_unified_groups){0};
}

/* Room in g for groups [cur->group, the one holding row last] (their number). */
static bool groups_room(const st_dense *dn, const st_unified_cursor *cur, uint64_t last, st_unified_groups *g)
{
    size_t lo = cur->group, hi = dn->n_groups;
    while (lo < hi) { /* the first group starting after last */
        size_t mid = lo + (hi - lo) / 2;
        if (dn->g_row[mid] <= last) lo = mid + 1;
        else hi = mid;
    }
    size_t need = lo - cur->group;
    if (need <= g->cap) return true;
    int64_t *c = realloc(g->cust, need * sizeof *c);
    if (c) g->cust = c;
    int32_t *p = c ? realloc(g->pk, need * sizeof *p) : NULL;
    if (p) g->pk = p;
    uint32_t *r = p ? realloc(g->rows, need * sizeof *r) : NULL;
    if (!r) return false;
    g->rows = r;
    g->cap = need;
    return true;
}

st_status st_dense_unified_values(const st_dense *dn, uint64_t first, size_t n, st_column *vals, uint32_t *codes,
                                  st_unified_groups *g, st_error *err)
{
    st_unified_cursor cur;
    ST_TRY(st_dense_unified_seek(dn, first, &cur, err));
    if (n == 0 || n > dn->n_unified - first)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified rows %" PRIu64 "+%zu: not within the %zu rows",
                            first, n, dn->n_unified);
    if (!groups_room(dn, &cur, first + n - 1, g))
        return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for unified groups");
    int64_t none[1];
    for (int k = 0; k < 4 && vals; k++) {
        if (vals[k].type != ST_TYPE_I64 || vals[k].validity)
            return st_error_set(err, ST_ERR_INVALID, "dense features: unified values need int64 columns without NULLs");
        if (st_column_reserve(&vals[k], vals[k].n_rows + n, 0) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for unified rows");
    }
    int64_t *v[4];
    for (int k = 0; k < 4; k++) v[k] = vals ? (int64_t *)vals[k].data + vals[k].n_rows : none;
    size_t done = 0, ng = 0;
    for (size_t gi = cur.group; done < n && gi < dn->n_groups && ng < g->cap; gi++) {
        uint32_t cell = dn->g_cell[gi];
        const dense_cell *c = &dn->cell[cell];
        size_t skip = gi == cur.group ? cur.sales_pos : 0, take = c->uniq - skip;
        take = take < n - done ? take : n - done;
        const dense_urow *r = dn->pool[c->pool].row + c->off + skip;
        for (size_t k = 0; k < take; k++) codes[done + k] = r[k].code;
        for (size_t k = 0; vals && k < take; k++) {
            v[0][done + k] = r[k].t[0].sum;
            v[1][done + k] = r[k].t[1].sum;
            v[2][done + k] = r[k].t[0].lines;
            v[3][done + k] = r[k].t[1].lines;
        }
        g->cust[ng] = cell_customer(dn, cell);
        g->pk[ng] = cell_period(dn, cell);
        g->rows[ng++] = (uint32_t)take;
        done += take;
    }
    if (done != n)
        return st_error_set(err, ST_ERR_INTERNAL, "dense features: unified rows %" PRIu64 "+%zu: %zu found", first, n,
                            done);
    for (int k = 0; k < 4 && vals; k++) vals[k].n_rows += n;
    g->n = ng;
    return ST_OK;
}

st_status st_dense_unified_column(const st_dense *dn, uint64_t first, size_t n, int field, st_column *out,
                                  st_error *err)
{
    st_unified_cursor cur;
    ST_TRY(st_dense_unified_seek(dn, first, &cur, err));
    if (n == 0 || n > dn->n_unified - first || field < 0 || field > 3)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified rows %" PRIu64 "+%zu, value %d: not within "
                            "the %zu rows and 4 values", first, n, field, dn->n_unified);
    if (out->type != ST_TYPE_I64 || out->validity)
        return st_error_set(err, ST_ERR_INVALID, "dense features: unified values need int64 columns without NULLs");
    if (st_column_reserve(out, out->n_rows + n, 0) != ST_OK)
        return st_error_set(err, ST_ERR_NOMEM, "dense features: out of memory for unified rows");
    int64_t *v = (int64_t *)out->data + out->n_rows;
    size_t done = 0;
    for (size_t gi = cur.group; done < n && gi < dn->n_groups; gi++) {
        const dense_cell *c = &dn->cell[dn->g_cell[gi]];
        size_t skip = gi == cur.group ? cur.sales_pos : 0, take = c->uniq - skip;
        take = take < n - done ? take : n - done;
        const dense_urow *r = dn->pool[c->pool].row + c->off + skip;
        if (field < 2) {
            for (size_t k = 0; k < take; k++) v[done + k] = r[k].t[field].sum;
        } else {
            for (size_t k = 0; k < take; k++) v[done + k] = r[k].t[field - 2].lines;
        }
        done += take;
    }
    if (done != n)
        return st_error_set(err, ST_ERR_INTERNAL, "dense features: unified rows %" PRIu64 "+%zu: %zu found", first, n,
                            done);
    out->n_rows += n;
    return ST_OK;
}

static void dense_get(const void *obj, size_t i, st_feature_row *row) { st_dense_get(obj, i, row); }

static st_status dense_next(const void *obj, st_unified_cursor *cur, const st_unified_batch *out, size_t cap,
                            size_t *n_out, st_error *err)
{
    return st_dense_unified_next(obj, cur, out, cap, n_out, err);
}

st_status st_dense_append_analytics(const st_dense *dn, size_t first, size_t n, st_column *cols, st_error *err)
{
    if (!dn->finished || dn->failed)
        return st_error_set(err, ST_ERR_INVALID, "int_customer_analytics: dense features not finished");
    return st_agg_append_analytics(dense_get, dn, dn->n_groups, first, n, cols, err);
}

st_status st_dense_append_unified(const st_dense *dn, st_unified_cursor *cur, const st_dict *dict, size_t cap,
                                  st_column *cols, size_t *n_out, st_error *err)
{
    return st_agg_append_unified(dense_next, dn, cur, dict, cap, cols, n_out, err);
}
