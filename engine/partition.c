/*
 * partition.c: the key histogram and range planner of strata/partition.h.
 *
 * State between passes:
 *   pending   ranges still to be counted, sorted by lo, disjoint, each
 *             with the shift that maps it onto 2^16 buckets;
 *   done      buckets that are final (cheap enough, or a single id), in
 *             no particular order until the plan sorts them.
 * A pass counts as many pending ranges as ST_KEY_HIST_PASS_BYTES of
 * counters hold (24 bytes a bucket: count, min, max; a range narrower
 * than 2^16 ids gets one bucket per id); the rest wait for the next pass,
 * so counter memory stays bounded however the keys are spread. Arithmetic on keys is done in uint64 offsets from a
 * range's lo, so the full int64 range works without overflow.
 */
#include "strata/partition.h"

#include <stdlib.h>
#include <string.h>

#include "dist.h"

#define NB ((size_t)1 << ST_KEY_HIST_BUCKET_BITS)

typedef struct pend {
    int64_t lo, hi;
    unsigned shift;   /* bucket = (key - lo) >> shift */
} pend;

struct st_key_hist {
    st_range_cost cost;
    double budget;
    pend *pending;
    size_t n_pending, cap_pending;
    st_key_range *done;
    size_t n_done, cap_done;
    /* the open pass */
    bool open;
    size_t n_counting;     /* pending[0..n_counting) are being counted */
    size_t *off;           /* n_counting + 1: range r's buckets are [off[r], off[r+1]) */
    uint64_t *counts;      /* off[n_counting] buckets */
    int64_t *mins, *maxs;  /* smallest / largest key seen per bucket */
    uint64_t n_outside;
    unsigned n_passes;
    int64_t lo, hi;
};

/* Frees the open pass's counters (none is a no-op). */
static void free_pass(st_key_hist *h)
{
    free(h->off);
    free(h->counts);
    free(h->mins);
    free(h->maxs);
    h->off = NULL;
    h->counts = NULL;
    h->mins = h->maxs = NULL;
}

double st_range_cost_of(const st_range_cost *c, uint64_t n_rows, uint64_t width)
{
    double rows = (double)n_rows;
    double w = width == 0 ? 18446744073709551616.0 : (double)width;
    double keys = rows < w ? rows : w;
    double cells = w * c->cells_per_key;
    if (cells > rows) cells = rows;
    double ids = (width != 0 && width < c->per_id_below) ? w : 0.0;
    return c->per_row * rows + c->per_key * keys + c->per_cell * cells + c->per_id * ids;
}

/* Smallest shift putting the span hi - lo into NB buckets. */
static unsigned shift_for(int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    unsigned s = 0;
    while (s < 64 && (span >> s) >= NB) s++;
    return s;
}

static st_status push_pending(st_key_hist *h, int64_t lo, int64_t hi, st_error *err)
{
    if (h->n_pending == h->cap_pending) {
        size_t cap = h->cap_pending ? 2 * h->cap_pending : 16;
        pend *p = realloc(h->pending, cap * sizeof *p);
        if (!p) return st_error_set(err, ST_ERR_NOMEM, "key histogram: out of memory");
        h->pending = p;
        h->cap_pending = cap;
    }
    h->pending[h->n_pending++] = (pend){lo, hi, shift_for(lo, hi)};
    return ST_OK;
}

static st_status push_done(st_key_hist *h, int64_t lo, int64_t hi, uint64_t n, st_error *err)
{
    if (h->n_done == h->cap_done) {
        size_t cap = h->cap_done ? 2 * h->cap_done : 1024;
        st_key_range *d = realloc(h->done, cap * sizeof *d);
        if (!d) return st_error_set(err, ST_ERR_NOMEM, "key histogram: out of memory");
        h->done = d;
        h->cap_done = cap;
    }
    h->done[h->n_done++] = (st_key_range){lo, hi, n};
    return ST_OK;
}

st_status st_key_hist_create(st_key_hist **out, int64_t lo, int64_t hi, const st_range_cost *cost,
                             double budget_bytes, st_error *err)
{
    *out = NULL;
    if (lo > hi || !(budget_bytes > 0) || !cost)
        return st_error_set(err, ST_ERR_INVALID, "key histogram: bad range or budget");
    st_key_hist *h = calloc(1, sizeof *h);
    if (!h) return st_error_set(err, ST_ERR_NOMEM, "key histogram: out of memory");
    h->cost = *cost;
    h->budget = budget_bytes;
    h->lo = lo;
    h->hi = hi;
    st_status s = push_pending(h, lo, hi, err);
    if (s != ST_OK) {
        st_key_hist_free(h);
        return s;
    }
    *out = h;
    return ST_OK;
}

void st_key_hist_free(st_key_hist *h)
{
    if (!h) return;
    free(h->pending);
    free(h->done);
    free_pass(h);
    free(h);
}

bool st_key_hist_pass_needed(const st_key_hist *h) { return h->n_pending > 0 && !h->open; }
uint64_t st_key_hist_n_outside(const st_key_hist *h) { return h->n_outside; }
unsigned st_key_hist_n_passes(const st_key_hist *h) { return h->n_passes; }

/* Buckets of a pending range: NB, or fewer when its span is narrower. */
static size_t n_buckets(const pend *p)
{
    uint64_t span = (uint64_t)p->hi - (uint64_t)p->lo;
    uint64_t nb = (span >> p->shift) + 1;
    return nb < NB ? (size_t)nb : NB;
}

st_status st_key_hist_begin(st_key_hist *h, st_error *err)
{
    if (h->open || h->n_pending == 0) return st_error_set(err, ST_ERR_INVALID, "key histogram: no pass to begin");
    /* as many pending ranges as ST_KEY_HIST_PASS_BYTES of counters hold (at least one) */
    size_t n = 0, buckets = 0;
    while (n < h->n_pending) {
        size_t b = n_buckets(&h->pending[n]);
        if (n > 0 && (buckets + b) * 24 > ST_KEY_HIST_PASS_BYTES) break;
        buckets += b;
        n++;
    }
    h->off = malloc((n + 1) * sizeof *h->off);
    h->counts = calloc(buckets, sizeof *h->counts);
    h->mins = malloc(buckets * sizeof *h->mins);
    h->maxs = malloc(buckets * sizeof *h->maxs);
    if (!h->off || !h->counts || !h->mins || !h->maxs) {
        free_pass(h);
        return st_error_set(err, ST_ERR_NOMEM, "key histogram: out of memory for %zu buckets", buckets);
    }
    h->off[0] = 0;
    for (size_t r = 0; r < n; r++) h->off[r + 1] = h->off[r] + n_buckets(&h->pending[r]);
    h->n_counting = n;
    h->open = true;
    return ST_OK;
}

/* Counts key k in bucket b of counted range r, keeping the bucket's
 * smallest and largest key. */
static inline void count_one(st_key_hist *h, size_t r, size_t b, int64_t k)
{
    size_t i = h->off[r] + b;
    if (h->counts[i]++ == 0) {
        h->mins[i] = h->maxs[i] = k;
    } else {
        if (k < h->mins[i]) h->mins[i] = k;
        if (k > h->maxs[i]) h->maxs[i] = k;
    }
}

void st_key_hist_count(st_key_hist *h, const int64_t *keys, size_t n)
{
    if (!h->open) return;
    const pend *p = h->pending;
    if (h->n_counting == 1) {
        /* the common case: one range */
        uint64_t lo = (uint64_t)p[0].lo, span = (uint64_t)p[0].hi - lo;
        unsigned sh = p[0].shift;
        uint64_t outside = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t d = (uint64_t)keys[i] - lo;
            if (d <= span) count_one(h, 0, (size_t)(d >> sh), keys[i]);
            else outside++;
        }
        if (h->n_passes == 0) h->n_outside += outside;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t k = keys[i];
        size_t a = 0, b = h->n_counting; /* last range with lo <= k */
        while (b - a > 1) {
            size_t m = a + (b - a) / 2;
            if (p[m].lo <= k) a = m;
            else b = m;
        }
        if (k < p[a].lo || k > p[a].hi) continue; /* final already, or outside */
        count_one(h, a, (size_t)(((uint64_t)k - (uint64_t)p[a].lo) >> p[a].shift), k);
    }
}

void st_key_hist_allreduce(st_key_hist *h)
{
    if (!h->open) return;
    size_t nb = h->off[h->n_counting];
    /* an empty bucket holds the identities of max: INT64_MIN as largest
     * key, and as smallest INT64_MAX, which ~ (order-reversing, and
     * without the overflow of negating INT64_MIN) makes INT64_MIN too */
    for (size_t i = 0; i < nb; i++) {
        if (h->counts[i] == 0) {
            h->mins[i] = INT64_MAX;
            h->maxs[i] = INT64_MIN;
        }
        h->mins[i] = ~h->mins[i];
    }
    st_dist_sum_u64(h->counts, nb);
    st_dist_max_i64(h->maxs, nb);
    st_dist_max_i64(h->mins, nb);
    for (size_t i = 0; i < nb; i++) h->mins[i] = ~h->mins[i];
    if (h->n_passes == 0) st_dist_sum_u64(&h->n_outside, 1);
}

static int cmp_pend(const void *a, const void *b)
{
    const pend *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

st_status st_key_hist_end(st_key_hist *h, st_error *err)
{
    if (!h->open) return st_error_set(err, ST_ERR_INVALID, "key histogram: no pass open");
    st_status s = ST_OK;
    size_t n_count = h->n_counting;
    /* the ranges counted leave the pending list; refinements join it */
    memmove(h->pending, h->pending + n_count, (h->n_pending - n_count) * sizeof *h->pending);
    h->n_pending -= n_count;
    for (size_t r = 0; r < n_count && s == ST_OK; r++) {
        for (size_t i = h->off[r]; i < h->off[r + 1] && s == ST_OK; i++) {
            uint64_t n = h->counts[i];
            if (n == 0) continue;
            /* the bucket is narrowed to the keys it actually holds */
            int64_t blo = h->mins[i], bhi = h->maxs[i];
            uint64_t width = (uint64_t)bhi - (uint64_t)blo + 1; /* < 2^48: inside one bucket */
            if (bhi > blo && st_range_cost_of(&h->cost, n, width) > h->budget)
                s = push_pending(h, blo, bhi, err);
            else
                s = push_done(h, blo, bhi, n, err);
        }
    }
    qsort(h->pending, h->n_pending, sizeof *h->pending, cmp_pend);
    free_pass(h);
    h->open = false;
    h->n_counting = 0;
    h->n_passes++;
    return s;
}

static int cmp_range(const void *a, const void *b)
{
    const st_key_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

st_status st_key_hist_plan(const st_key_hist *h, st_key_range **out, size_t *n_out, st_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (h->open || h->n_pending > 0) return st_error_set(err, ST_ERR_INVALID, "key histogram: passes remain");
    if (h->n_done == 0) return ST_OK;
    st_key_range *b = malloc(h->n_done * sizeof *b);
    if (!b) return st_error_set(err, ST_ERR_NOMEM, "key histogram: out of memory");
    memcpy(b, h->done, h->n_done * sizeof *b);
    qsort(b, h->n_done, sizeof *b, cmp_range);
    /* greedy packing in key order, in place */
    size_t n = 0;
    st_key_range cur = b[0];
    for (size_t i = 1; i < h->n_done; i++) {
        uint64_t width = (uint64_t)b[i].hi - (uint64_t)cur.lo + 1;
        if (st_range_cost_of(&h->cost, cur.n_rows + b[i].n_rows, width) <= h->budget) {
            cur.hi = b[i].hi;
            cur.n_rows += b[i].n_rows;
        } else {
            b[n++] = cur;
            cur = b[i];
        }
    }
    b[n++] = cur;
    *out = b;
    *n_out = n;
    return ST_OK;
}

void st_key_ranges_locate(const st_key_range *ranges, size_t n_ranges, const int64_t *keys, size_t n,
                          uint32_t *part)
{
    if (n_ranges == 0) {
        for (size_t i = 0; i < n; i++) part[i] = UINT32_MAX;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t k = keys[i];
        size_t a = 0, b = n_ranges; /* last range with lo <= k */
        while (b - a > 1) {
            size_t m = a + (b - a) / 2;
            if (ranges[m].lo <= k) a = m;
            else b = m;
        }
        part[i] = (k >= ranges[a].lo && k <= ranges[a].hi) ? (uint32_t)a : UINT32_MAX;
    }
}
