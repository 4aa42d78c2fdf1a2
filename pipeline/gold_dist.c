/*
 * gold_dist.c: the gold step by customer range across the ranks of an
 * MPI world, writing the files one process writes, byte for byte.
 *
 * In `mpirun -np N strata-mpi run` (N > 1) rank 0 runs the pipeline and
 * the others wait in the follower loop (ml/kmeans_dist.c). For the gold
 * step rank 0 sends a TASK there with a plan: the silver files' paths, the
 * zone maps' customer and period ranges, the line count, --threads,
 * --memory-limit and the staging directory. Then every rank runs
 * gold_task():
 *
 *   1. share: each table's chunks are cut into N contiguous runs; rank r
 *      reads run r (every line checked against the zone maps, as in one
 *      process), counts its customer ids into the key histogram of
 *      engine/partition.c and collects its material strings.
 *   2. plan: st_key_hist_allreduce() adds the ranks' histograms (exact
 *      sums and extremes), so every rank ends each pass with the same
 *      counters and the same planner gives every rank the same customer
 *      ranges. The budget is --memory-limit, lowered to 1/N of the whole
 *      step's cost so that there are ranges for every rank. Range g
 *      belongs to rank g % N.
 *   3. dictionary: every rank's strings go to every rank, which adds them
 *      in rank order to one st_dict: the same codes everywhere (ranked
 *      bytewise at the end, as in one process).
 *   4. exchange: the lines move to the owners of their ranges with
 *      st_dist_alltoallv, in rounds of at most R lines a rank, R chosen so
 *      that the round's buffers (its lines, what it sends, at most N * R
 *      lines received, a sorted copy) stay within half of --memory-limit.
 *      The owner adds what it receives straight into one st_features per
 *      range it owns when their costs together fit the other half; else
 *      it scatters it into a spill file of its ranges (formats/spill.c,
 *      its write buffers in the other half), as the one-process step does.
 *   5. compute and gather: in round j, rank r finishes its range j*N + r
 *      (held, or read back from the spill into st_features: range by
 *      range, each within the budget, as the one-process partitioned path
 *      does); then each rank in turn sends
 *      its rows to rank 0, in pieces of at most PIECE_ROWS rows (fewer when
 *      two pieces would take more than a quarter of the limit), and rank 0 writes
 *      them through `emit`. Ranges thus reach the files in key order, and
 *      since a range's rows depend only on the multiset of its lines, the
 *      files are those of one process whatever N is.
 *
 * Failure: a rank that fails keeps taking part in the collectives until
 * the next checkpoint (stop(): a max over every rank of "failed"), where
 * every rank stops; the TASK's closing st_dist_agree() then gives every
 * rank the first failing rank's status and message. Every local step
 * that can fail is followed by a checkpoint before the next collective,
 * so no rank waits in a collective another has left. Rows reach rank 0
 * only after the checkpoint of their round. Rank 0 writes into staging,
 * so a failed step publishes nothing.
 *
 * Test hooks: STRATA_TEST_FAIL_GOLD_RANK=R makes rank R fail after reading
 * its share; STRATA_TEST_KILL_GOLD_RANK=R makes it die there (SIGKILL).
 */
#include "gold_dist.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "strata/ml.h"

enum { GOLD_TASK = 1, PIECE_ROWS = 65536, MIN_PIECE_ROWS = 1024, LINE_BYTES = 24, UNI_BYTES = 48 };
#define PLAN_MAGIC 0x31444753u /* "SGD1" */

/* The plan on the wire (the same binary on every rank). */
typedef struct gd_plan {
    uint32_t magic;
    int32_t threads;
    st_feature_dims dims;
    uint64_t n_lines, memory_limit;
    char silver[2][ST_PATH_MAX];
    char tmpdir[ST_PATH_MAX];
} gd_plan;

/* Rank 0's side of the task. */
typedef struct gd_sink {
    st_dict *dict;
    st_gold_emit_fn emit;
    void *arg;
    st_gold_dist_out *out;
    int fd; /* its spill file until the spill takes it */
} gd_sink;

/* One rank's state during the task. */
typedef struct gd {
    const gd_plan *p;
    gd_sink *sink;          /* rank 0 only */
    int me, n;
    st_reader *r[2];
    size_t ix[2][4];
    size_t lo[2], hi[2];    /* this rank's chunks [lo, hi) of each table */
    uint64_t row0[2];       /* first row of chunk lo */
    uint64_t my_lines;
    st_gold_chunk *chunk;
    st_dict *local;         /* this rank's strings (step 1) */
    st_dict *dict;          /* every rank's strings (step 3) */
    st_key_range *ranges;
    size_t n_ranges;
    unsigned n_passes;
    size_t n_owned;         /* ranges me, me + N, ... */
    st_spill *spill;        /* their lines, partition j = range j*N + me; or */
    st_features **held;     /* n_owned: their lines in memory, when they fit */
    bool stopped;           /* a checkpoint saw a rank fail */
    uint64_t n_rounds;      /* of the exchange */
    size_t piece_rows;      /* rows a rank sends rank 0 at a time */
    uint64_t moved;         /* bytes this rank sent to other ranks (lines and rows) */
} gd;

/* The checkpoint: a collective. True (and g->stopped) when some rank's s
 * failed; then every rank leaves the task, the failed ones with their
 * status, the others with ST_OK, which the closing agreement turns into
 * the failure. */
static bool stop(gd *g, st_status s)
{
    int64_t f = s != ST_OK;
    st_dist_max_i64(&f, 1);
    if (f) g->stopped = true;
    return f != 0;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- 1. this rank's share ---- */

static st_status open_share(gd *g, st_error *err)
{
    for (unsigned t = 0; t < 2; t++) {
        ST_TRY(st_gold_open_lines(g->p->silver[t], t, &g->r[t], g->ix[t], err));
        size_t nc = st_reader_n_chunks(g->r[t]);
        g->lo[t] = nc * (size_t)g->me / (size_t)g->n;
        g->hi[t] = nc * (size_t)(g->me + 1) / (size_t)g->n;
        for (size_t ch = 0; ch < g->hi[t]; ch++) {
            uint64_t rows = st_reader_chunk_rows(g->r[t], ch);
            if (ch < g->lo[t]) g->row0[t] += rows;
            else g->my_lines += rows;
        }
    }
    ST_TRY(st_gold_chunk_create(&g->chunk, err));
    ST_TRY(st_dict_create(&g->local, err));
    if (g->sink) g->dict = g->sink->dict;
    else ST_TRY(st_dict_create(&g->dict, err));
    return ST_OK;
}

/* Counts this rank's customer ids into the open pass; the first pass
 * reads whole chunks (checking every line, collecting the strings), later
 * ones only the customer column. */
static st_status count_share(gd *g, st_key_hist *h, st_column *cust, st_error *err)
{
    bool first = st_key_hist_n_passes(h) == 0;
    for (unsigned t = 0; t < 2; t++) {
        uint64_t row0 = g->row0[t];
        for (size_t ch = g->lo[t]; ch < g->hi[t]; ch++) {
            if (first) {
                st_gold_lines l;
                ST_TRY(st_gold_read_chunk(g->chunk, g->r[t], g->ix[t], ch, t, row0, g->local, &g->p->dims, &l, err));
                st_key_hist_count(h, l.customer_id, l.n);
                row0 += l.n;
            } else {
                ST_TRY(st_reader_read_block(g->r[t], ch, g->ix[t][0], cust, err));
                st_key_hist_count(h, st_column_i64(cust), cust->n_rows);
            }
        }
    }
    const char *kill = getenv("STRATA_TEST_KILL_GOLD_RANK"), *v = getenv("STRATA_TEST_FAIL_GOLD_RANK");
    if (first && kill && *kill && atoi(kill) == g->me) raise(SIGKILL);
    if (first && v && *v && atoi(v) == g->me)
        return st_error_set(err, ST_ERR_INTERNAL,
                            "gold: failure injected by STRATA_TEST_FAIL_GOLD_RANK after reading this rank's share "
                            "of silver");
    return ST_OK;
}

/* ---- 2. the customer ranges, planned together ---- */

/* The planner's budget: --memory-limit, or less, so that every rank gets
 * ranges. */
static double range_budget(const gd *g, const st_range_cost *cost)
{
    const st_feature_dims *d = &g->p->dims;
    uint64_t width = (uint64_t)d->customer_id_max - (uint64_t)d->customer_id_min + 1;
    double all = st_range_cost_of(cost, g->p->n_lines, width) / (double)g->n;
    double lim = (double)g->p->memory_limit;
    return all > 0 && all < lim ? all : lim;
}

static st_status plan_ranges(gd *g, st_error *err)
{
    st_range_cost cost = st_gold_range_cost(&g->p->dims);
    st_key_hist *h = NULL;
    st_column cust;
    st_column_init(&cust, ST_TYPE_I64);
    st_status s = st_key_hist_create(&h, g->p->dims.customer_id_min, g->p->dims.customer_id_max, &cost,
                                     range_budget(g, &cost), err);
    if (stop(g, s)) goto done;
    while (st_key_hist_pass_needed(h)) {
        s = st_key_hist_begin(h, err);
        if (s == ST_OK) s = count_share(g, h, &cust, err);
        if (stop(g, s)) goto done;
        st_key_hist_allreduce(h);
        if (stop(g, s = st_key_hist_end(h, err))) goto done;
    }
    if (st_key_hist_n_outside(h) > 0) /* the same on every rank */
        s = st_error_set(err, ST_ERR_CORRUPT,
                         "silver.stg_sales_transactions / stg_foc_transactions: %llu customer ids outside the files' "
                         "zone maps", (unsigned long long)st_key_hist_n_outside(h));
    if (s == ST_OK) s = st_key_hist_plan(h, &g->ranges, &g->n_ranges, err);
    g->n_passes = st_key_hist_n_passes(h);
    (void)stop(g, s); /* the caller checks s: a plan's failure stops every rank here */
done:
    st_key_hist_free(h);
    st_column_free(&cust);
    return s;
}

/* ---- 3. one dictionary ---- */

/* This rank's strings as [u32 length][bytes]... (caller frees *out). */
static st_status pack_strings(const st_dict *d, char **out, size_t *len, st_error *err)
{
    size_t n = 0, at = 0;
    for (uint32_t c = 0; c < st_dict_size(d); c++) {
        size_t l;
        (void)st_dict_str(d, c, &l);
        if (l > UINT32_MAX || !st_size_add(n, 4 + l, &n))
            return st_error_set(err, ST_ERR_NOMEM, "gold: material strings too large to send");
    }
    char *b = malloc(n ? n : 1);
    if (!b) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory for the material strings");
    for (uint32_t c = 0; c < st_dict_size(d); c++) {
        size_t l;
        const char *str = st_dict_str(d, c, &l);
        uint32_t l32 = (uint32_t)l;
        memcpy(b + at, &l32, 4);
        if (l) memcpy(b + at + 4, str, l);
        at += 4 + l;
    }
    *out = b;
    *len = n;
    return ST_OK;
}

/* Adds the strings of one packed segment to d, in order. */
static st_status add_strings(st_dict *d, const char *b, size_t len, int from, st_error *err)
{
    st_column col;
    st_column_init(&col, ST_TYPE_STR);
    st_status s = ST_OK;
    for (size_t at = 0; at < len && s == ST_OK;) {
        uint32_t l;
        if (len - at < 4 || (memcpy(&l, b + at, 4), len - at - 4 < l)) {
            s = st_error_set(err, ST_ERR_CORRUPT, "gold: the material strings from rank %d are cut short", from);
            break;
        }
        s = st_column_push_str(&col, b + at + 4, l);
        at += 4 + (size_t)l;
    }
    uint32_t *codes = s == ST_OK ? malloc((col.n_rows ? col.n_rows : 1) * sizeof *codes) : NULL;
    if (s == ST_OK && !codes) s = st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    if (s == ST_OK) s = st_dict_add(d, &col, codes, "material_code", err);
    free(codes);
    st_column_free(&col);
    return s;
}

/* Every rank's strings to every rank, added in rank order. */
static st_status share_dictionary(gd *g, st_error *err)
{
    char *mine = NULL, *all = NULL;
    size_t len = 0, n = (size_t)g->n;
    uint64_t *sz = calloc(n, sizeof *sz);
    size_t *cnt = calloc(4 * n, sizeof *cnt); /* send_n, send_off, recv_n, recv_off */
    st_status s = sz && cnt ? pack_strings(g->local, &mine, &len, err)
                            : st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    if (stop(g, s)) goto done;
    uint64_t l64 = len, total = 0;
    st_dist_allgather(&l64, sizeof l64, sz);
    for (size_t r = 0; r < n; r++) {
        cnt[r] = len;
        cnt[2 * n + r] = (size_t)sz[r];
        cnt[3 * n + r] = (size_t)total;
        total += sz[r];
    }
    if (!(all = malloc(total ? (size_t)total : 1))) s = st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    if (stop(g, s)) goto done;
    st_dist_alltoallv(mine, cnt, cnt + n, all, cnt + 2 * n, cnt + 3 * n);
    for (size_t r = 0; r < n && s == ST_OK; r++) s = add_strings(g->dict, all + cnt[3 * n + r], cnt[2 * n + r], (int)r, err);
    (void)stop(g, s);
done:
    free(mine);
    free(all);
    free(sz);
    free(cnt);
    return s;
}

/* ---- 4. the lines to their owners ---- */

/* One round's lines in columns: the first n_sales are sales lines. */
typedef struct gd_round {
    int64_t *cust, *qty;
    int32_t *per;
    uint32_t *mat, *part;
    size_t n, n_sales, cap;
    char *send, *recv;
    size_t recv_cap;
    size_t *cnt;            /* 4 * N: send_n, send_off, recv_n, recv_off */
    uint64_t *mine, *all;   /* 2N lines per (rank, table) from here; N x 2N from all */
    size_t *at;             /* 2N: next line of each (rank, table) segment */
    char *tmp;              /* held, several ranges: a segment sorted by range */
    size_t *bucket;         /* held: n_owned + 1 counters */
} gd_round;

/* Where the reading of this rank's share stands. */
typedef struct gd_cursor {
    unsigned t;
    size_t ch, pos;
    uint64_t row0;
    bool have;
    st_gold_lines l;
} gd_cursor;

static void round_free(gd_round *b)
{
    free(b->cust);
    free(b->qty);
    free(b->per);
    free(b->mat);
    free(b->part);
    free(b->send);
    free(b->recv);
    free(b->cnt);
    free(b->mine);
    free(b->all);
    free(b->at);
    free(b->tmp);
    free(b->bucket);
}

/* Lines a rank takes per round: its lines, its sends, up to N ranks'
 * sends received and a sorted copy of one (LINE_BYTES each, plus 4 for
 * the range) within half of the memory limit; never fewer than 256, and
 * every exchange within an MPI message. */
static size_t round_lines(const gd *g)
{
    double r = (double)g->p->memory_limit / 2.0 / ((double)LINE_BYTES * (g->n + 3) + 4.0);
    double most = (double)INT_MAX / LINE_BYTES / (g->n + 1);
    return r < 256 ? 256 : r > most ? (size_t)most : (size_t)r;
}

static st_status round_init(gd_round *b, const gd *g, st_error *err)
{
    size_t n = (size_t)g->n, cap = round_lines(g);
    b->cap = cap;
    b->cust = malloc(cap * sizeof *b->cust);
    b->qty = malloc(cap * sizeof *b->qty);
    b->per = malloc(cap * sizeof *b->per);
    b->mat = malloc(cap * sizeof *b->mat);
    b->part = malloc(cap * sizeof *b->part);
    b->send = malloc(cap * LINE_BYTES);
    b->cnt = calloc(4 * n, sizeof *b->cnt);
    b->mine = calloc(2 * n, sizeof *b->mine);
    b->all = calloc(2 * n * n, sizeof *b->all);
    b->at = calloc(2 * n, sizeof *b->at);
    if (g->held && g->n_owned > 1) {
        b->tmp = malloc(cap * LINE_BYTES);
        b->bucket = malloc((g->n_owned + 1) * sizeof *b->bucket);
    }
    if (!b->cust || !b->qty || !b->per || !b->mat || !b->part || !b->send || !b->cnt || !b->mine || !b->all || !b->at ||
        (g->held && g->n_owned > 1 && (!b->tmp || !b->bucket)))
        return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory for the exchange of %zu lines a round", cap);
    return ST_OK;
}

/* The next lines of this rank's share, up to the round's capacity. */
static st_status fill_round(gd *g, gd_cursor *c, gd_round *b, st_error *err)
{
    b->n = b->n_sales = 0;
    while (b->n < b->cap && c->t < 2) {
        if (!c->have) {
            if (c->ch >= g->hi[c->t]) {
                if (++c->t < 2) {
                    c->ch = g->lo[c->t];
                    c->row0 = g->row0[c->t];
                }
                continue;
            }
            ST_TRY(st_gold_read_chunk(g->chunk, g->r[c->t], g->ix[c->t], c->ch, c->t, c->row0, g->dict, NULL, &c->l,
                                      err));
            c->have = true;
            c->pos = 0;
        }
        size_t k = min_size(c->l.n - c->pos, b->cap - b->n);
        memcpy(b->cust + b->n, c->l.customer_id + c->pos, k * sizeof *b->cust);
        memcpy(b->qty + b->n, c->l.quantity + c->pos, k * sizeof *b->qty);
        memcpy(b->per + b->n, c->l.period_key + c->pos, k * sizeof *b->per);
        memcpy(b->mat + b->n, c->l.material + c->pos, k * sizeof *b->mat);
        if (c->t == 0) b->n_sales += k;
        b->n += k;
        c->pos += k;
        if (c->pos == c->l.n) {
            c->have = false;
            c->row0 += c->l.n;
            c->ch++;
        }
    }
    return ST_OK;
}

/* Lines per (owner, table) of the round: b->mine, and each line's owner
 * range in b->part. */
static st_status count_round(const gd *g, gd_round *b, st_error *err)
{
    size_t n = (size_t)g->n;
    memset(b->mine, 0, 2 * n * sizeof *b->mine);
    st_key_ranges_locate(g->ranges, g->n_ranges, b->cust, b->n, b->part);
    for (size_t i = 0; i < b->n; i++) {
        if (b->part[i] == UINT32_MAX)
            return st_error_set(err, ST_ERR_INTERNAL, "gold: customer %lld is in no planned range",
                                (long long)b->cust[i]);
        b->mine[(b->part[i] % n) * 2 + (i >= b->n_sales)]++;
    }
    return ST_OK;
}

/* A segment of c lines at p, in columns: customer ids, quantities,
 * period keys, material codes. */
typedef struct gd_seg {
    int64_t *cust, *qty;
    int32_t *per;
    uint32_t *mat;
} gd_seg;

static gd_seg seg_at(char *p, size_t c)
{
    return (gd_seg){(int64_t *)p, (int64_t *)(p + 8 * c), (int32_t *)(p + 16 * c), (uint32_t *)(p + 20 * c)};
}

/* The send buffer: per owner, its sales then its FOC segment. */
static void pack_round(const gd *g, gd_round *b)
{
    size_t n = (size_t)g->n, off = 0;
    for (size_t d = 0; d < n; d++) {
        b->cnt[n + d] = off;
        b->cnt[d] = LINE_BYTES * (size_t)(b->mine[2 * d] + b->mine[2 * d + 1]);
        off += b->cnt[d];
        b->at[2 * d] = b->at[2 * d + 1] = 0;
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t d = b->part[i] % n, t = i >= b->n_sales, c = (size_t)b->mine[2 * d + t];
        gd_seg s = seg_at(b->send + b->cnt[n + d] + (t ? LINE_BYTES * (size_t)b->mine[2 * d] : 0), c);
        size_t k = b->at[2 * d + t]++;
        s.cust[k] = b->cust[i];
        s.qty[k] = b->qty[i];
        s.per[k] = b->per[i];
        s.mat[k] = b->mat[i];
    }
}

/* Receive sizes from the gathered counts; grows the receive buffer. */
static st_status recv_sizes(const gd *g, gd_round *b, st_error *err)
{
    size_t n = (size_t)g->n, me = (size_t)g->me, total = 0;
    for (size_t r = 0; r < n; r++) {
        const uint64_t *from = b->all + r * 2 * n + 2 * me;
        b->cnt[2 * n + r] = LINE_BYTES * (size_t)(from[0] + from[1]);
        b->cnt[3 * n + r] = total;
        total += b->cnt[2 * n + r];
    }
    if (total > b->recv_cap) {
        char *p = realloc(b->recv, total);
        if (!p) return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory for %zu bytes of lines received", total);
        b->recv = p;
        b->recv_cap = total;
    }
    return ST_OK;
}

static st_status add_lines(st_features *fx, unsigned t, gd_seg s, size_t c, st_error *err)
{
    return t ? st_features_add_foc(fx, s.cust, s.per, s.mat, s.qty, c, err)
             : st_features_add_sales(fx, s.cust, s.per, s.mat, s.qty, c, err);
}

/* Held: c lines of table t (b->part: their range j) into the ranges'
 * st_features, through a copy sorted by range when there are several. */
static st_status hold_lines(gd *g, gd_round *b, unsigned t, gd_seg s, size_t c, st_error *err)
{
    if (g->n_owned == 1) return add_lines(g->held[0], t, s, c, err);
    size_t *k = b->bucket;
    memset(k, 0, (g->n_owned + 1) * sizeof *k);
    for (size_t i = 0; i < c; i++) k[b->part[i] + 1]++;
    for (size_t j = 0; j < g->n_owned; j++) k[j + 1] += k[j];
    gd_seg o = seg_at(b->tmp, c);
    for (size_t i = 0; i < c; i++) {
        size_t at = k[b->part[i]]++;
        o.cust[at] = s.cust[i];
        o.qty[at] = s.qty[i];
        o.per[at] = s.per[i];
        o.mat[at] = s.mat[i];
    }
    /* k[j] is now the end of range j's run */
    for (size_t j = 0, from = 0; j < g->n_owned; from = k[j++]) {
        gd_seg run = {o.cust + from, o.qty + from, o.per + from, o.mat + from};
        if (k[j] > from) ST_TRY(add_lines(g->held[j], t, run, k[j] - from, err));
    }
    return ST_OK;
}

/* The lines received, into this rank's ranges (j: range / N): its spill,
 * or held in memory. */
static st_status take_received(gd *g, gd_round *b, st_error *err)
{
    size_t n = (size_t)g->n, me = (size_t)g->me;
    for (size_t r = 0; r < n; r++) {
        const uint64_t *from = b->all + r * 2 * n + 2 * me;
        char *p = b->recv + b->cnt[3 * n + r];
        for (unsigned t = 0; t < 2; t++) {
            size_t c = (size_t)from[t];
            gd_seg s = seg_at(p, c);
            p += LINE_BYTES * c;
            st_key_ranges_locate(g->ranges, g->n_ranges, s.cust, c, b->part);
            for (size_t i = 0; i < c; i++) {
                if (b->part[i] == UINT32_MAX || b->part[i] % n != me)
                    return st_error_set(err, ST_ERR_INTERNAL, "gold: rank %zu sent customer %lld to the wrong rank", r,
                                        (long long)s.cust[i]);
                b->part[i] /= (uint32_t)n;
            }
            if (g->held) ST_TRY(hold_lines(g, b, t, s, c, err));
            else ST_TRY(st_spill_add(g->spill, t, b->part, s.cust, s.per, s.mat, s.qty, c, err));
        }
    }
    return ST_OK;
}

/* Where this rank's ranges gather their lines: in memory, one st_features
 * a range, when their costs together fit half the memory limit (the
 * other half is the exchange's); else a spill file with a partition a
 * range, whose write buffers take that half. */
static st_status open_ranges(gd *g, st_error *err)
{
    size_t n = (size_t)g->n;
    g->n_owned = g->n_ranges > (size_t)g->me ? (g->n_ranges - (size_t)g->me + n - 1) / n : 0;
    st_range_cost cost = st_gold_range_cost(&g->p->dims);
    double held = 0;
    for (size_t gi = (size_t)g->me; gi < g->n_ranges; gi += n)
        held += st_range_cost_of(&cost, g->ranges[gi].n_rows, (uint64_t)g->ranges[gi].hi - (uint64_t)g->ranges[gi].lo + 1);
    if (g->n_owned > 0 && held <= (double)g->p->memory_limit / 2.0) {
        if (!(g->held = calloc(g->n_owned, sizeof *g->held)))
            return st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
        for (size_t j = 0; j < g->n_owned; j++) {
            const st_key_range *r = &g->ranges[j * n + (size_t)g->me];
            st_feature_dims pd = {r->lo, r->hi, g->p->dims.period_key_min, g->p->dims.period_key_max};
            ST_TRY(st_features_create(&g->held[j], &pd, err));
        }
        return ST_OK;
    }
    size_t owned = g->n_owned ? g->n_owned : 1;
    double per_buf = (double)g->p->memory_limit / 2.0 / (double)(2 * owned * LINE_BYTES);
    uint32_t block_rows = per_buf > ST_SPILL_MAX_BLOCK_ROWS ? ST_SPILL_MAX_BLOCK_ROWS
                          : per_buf < 256.0                 ? 256u
                                                            : (uint32_t)per_buf;
    int fd = -1;
    if (g->sink) {
        fd = g->sink->fd;
        g->sink->fd = -1;
    } else {
        ST_TRY(st_temp_file_in(g->p->tmpdir, "gold-spill", &fd, err));
    }
    char what[ST_PATH_MAX + 64];
    snprintf(what, sizeof what, "rank %d's gold spill file in '%.4000s'", g->me, g->p->tmpdir);
    return st_spill_create(&g->spill, fd, what, (uint32_t)owned, block_rows, err);
}

/* Every line to the rank that owns its range, round by round. */
static st_status exchange(gd *g, st_error *err)
{
    gd_round b = {0};
    gd_cursor c = {0, g->lo[0], 0, g->row0[0], false, {0}};
    st_status s = open_ranges(g, err);
    if (s == ST_OK) s = round_init(&b, g, err);
    if (stop(g, s)) goto done;
    int64_t rounds = (int64_t)((g->my_lines + b.cap - 1) / b.cap);
    st_dist_max_i64(&rounds, 1);
    g->n_rounds = (uint64_t)rounds;
    for (int64_t k = 0; k < rounds; k++) {
        if (s == ST_OK) s = fill_round(g, &c, &b, err);
        if (s == ST_OK) s = count_round(g, &b, err);
        if (stop(g, s)) goto done;
        st_dist_allgather(b.mine, 2 * (size_t)g->n * sizeof *b.mine, b.all);
        pack_round(g, &b);
        for (int d = 0; d < g->n; d++) g->moved += d == g->me ? 0 : b.cnt[d];
        if (stop(g, s = recv_sizes(g, &b, err))) goto done;
        st_dist_alltoallv(b.send, b.cnt, b.cnt + g->n, b.recv, b.cnt + 2 * g->n, b.cnt + 3 * g->n);
        s = take_received(g, &b, err); /* checked at the next checkpoint */
    }
    if (s == ST_OK && g->spill) s = st_spill_flush(g->spill, err);
    (void)stop(g, s);
done:
    round_free(&b);
    return s;
}

/* ---- 5. compute, gather to rank 0 ---- */

/* The unified rows of a piece of k rows at buf: ids, the four sums,
 * period keys, material codes (UNI_BYTES a row). */
static st_unified_batch uni_view(char *buf, size_t k)
{
    return (st_unified_batch){(int64_t *)(void *)buf,           (int32_t *)(void *)(buf + 40 * k),
                              (uint32_t *)(void *)(buf + 44 * k), (int64_t *)(void *)(buf + 8 * k),
                              (int64_t *)(void *)(buf + 16 * k),  (int64_t *)(void *)(buf + 24 * k),
                              (int64_t *)(void *)(buf + 32 * k)};
}

/* Rank `from`'s rows [off, off + k) of one kind (0 groups, 1 unified) in
 * buf, when it is this rank: groups as st_feature_row, unified rows as
 * columns (ids, four sums, period keys, material codes). */
static st_status pack_piece(const st_features *fx, int kind, size_t off, size_t k, st_unified_cursor *cur, char *buf,
                            st_error *err)
{
    if (kind == 0) {
        st_feature_row *rows = (st_feature_row *)(void *)buf;
        for (size_t i = 0; i < k; i++) st_features_get(fx, off + i, &rows[i]);
        return ST_OK;
    }
    st_unified_batch ub = uni_view(buf, k);
    size_t done = 0;
    while (done < k) {
        st_unified_batch at = {ub.customer_id + done, ub.period_key + done, ub.material + done, ub.sold_qty + done,
                               ub.foc_qty + done,     ub.sold_lines + done, ub.foc_lines + done};
        size_t got = 0;
        ST_TRY(st_features_unified_next(fx, cur, &at, k - done, &got, err));
        if (got == 0) return st_error_set(err, ST_ERR_INTERNAL, "gold: fewer unified rows than counted");
        done += got;
    }
    return ST_OK;
}

/* The rows of one piece as rank 0 received them. */
static st_feature_rows piece_rows(int kind, char *buf, size_t k)
{
    st_feature_rows fr = {0};
    if (kind == 0) {
        fr.groups = (const st_feature_row *)(const void *)buf;
        fr.n_groups = k;
    } else {
        fr.unified = uni_view(buf, k);
        fr.n_unified = k;
    }
    return fr;
}

/* One round's rows, rank by rank, piece by piece, to rank 0 and into the
 * files there. cnt: 2 per rank (groups, unified rows). *s0 keeps rank 0's
 * first write error (the rest of the round is still received). */
static void gather_round(gd *g, const st_features *fx, const uint64_t *cnt, char *sbuf, char *rbuf, size_t *io,
                         st_status *s, st_error *err)
{
    size_t n = (size_t)g->n;
    size_t *send_n = io, *send_off = io + n, *recv_n = io + 2 * n, *recv_off = io + 3 * n;
    for (size_t r = 0; r < n; r++) {
        st_unified_cursor cur = {0};
        for (int kind = 0; kind < 2; kind++) {
            size_t width = kind ? UNI_BYTES : sizeof(st_feature_row), total = (size_t)cnt[2 * r + (size_t)kind];
            for (size_t off = 0; off < total; off += g->piece_rows) {
                size_t k = min_size(g->piece_rows, total - off);
                memset(io, 0, 4 * n * sizeof *io);
                if ((size_t)g->me == r) {
                    send_n[0] = k * width;
                    g->moved += r ? k * width : 0;
                    if (*s == ST_OK) *s = pack_piece(fx, kind, off, k, &cur, r ? sbuf : rbuf, err);
                }
                if (g->me == 0) recv_n[r] = k * width;
                /* rank 0's own pieces are packed where it reads them */
                if (r) st_dist_alltoallv(sbuf, send_n, send_off, rbuf, recv_n, recv_off);
                if (g->me == 0 && *s == ST_OK) {
                    st_feature_rows fr = piece_rows(kind, rbuf, k);
                    *s = g->sink->emit(g->sink->arg, &fr, g->dict, err);
                }
            }
        }
    }
}

static st_status compute_and_gather(gd *g, st_error *err)
{
    size_t n = (size_t)g->n, rounds = (g->n_ranges + n - 1) / n;
    uint64_t *cnt = calloc(2 * n, sizeof *cnt);
    size_t *io = calloc(4 * n, sizeof *io);
    size_t width = sizeof(st_feature_row) > UNI_BYTES ? sizeof(st_feature_row) : UNI_BYTES;
    double fit = (double)g->p->memory_limit / 8.0 / (double)width; /* a send and a receive buffer */
    g->piece_rows = fit > PIECE_ROWS ? PIECE_ROWS : fit < MIN_PIECE_ROWS ? MIN_PIECE_ROWS : (size_t)fit;
    size_t piece = g->piece_rows * width;
    char *sbuf = malloc(piece), *rbuf = malloc(piece);
    st_status s = cnt && io && sbuf && rbuf ? st_dict_finish(g->dict, err)
                                   : st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    if (stop(g, s)) goto done;
    for (size_t j = 0; j < rounds; j++) {
        st_features *fx = NULL;
        size_t gi = j * n + (size_t)g->me;
        if (s == ST_OK && gi < g->n_ranges) {
            st_feature_dims pd = {g->ranges[gi].lo, g->ranges[gi].hi, g->p->dims.period_key_min,
                                  g->p->dims.period_key_max};
            if (g->held) {
                fx = g->held[j];
                g->held[j] = NULL;
                s = st_features_finish(fx, st_dict_rank(g->dict), st_dict_size(g->dict), (unsigned)g->p->threads, err);
            } else {
                s = st_gold_spill_features(g->spill, (uint32_t)j, &pd, g->dict, (unsigned)g->p->threads, &fx, err);
            }
        }
        if (stop(g, s)) {
            st_features_free(fx);
            goto done;
        }
        uint64_t mine[2] = {fx ? st_features_n_groups(fx) : 0, fx ? st_features_n_unified(fx) : 0};
        st_dist_allgather(mine, sizeof mine, cnt);
        gather_round(g, fx, cnt, sbuf, rbuf, io, &s, err);
        st_features_free(fx);
    }
    (void)stop(g, s);
done:
    free(cnt);
    free(io);
    free(sbuf);
    free(rbuf);
    return s;
}

/* ---- the task ---- */

static void gd_free(gd *g)
{
    st_reader_close(g->r[0]);
    st_reader_close(g->r[1]);
    st_gold_chunk_free(g->chunk);
    st_dict_free(g->local);
    if (!g->sink) st_dict_free(g->dict);
    free(g->ranges);
    st_spill_free(g->spill);
    for (size_t j = 0; g->held && j < g->n_owned; j++) st_features_free(g->held[j]);
    free(g->held);
}

st_status st_gold_dist_task(int32_t kind, const void *plan, size_t len, void *arg, st_error *err)
{
    gd g = {.p = plan, .sink = arg, .me = st_dist_rank(), .n = st_dist_size()};
    st_status s = ST_OK;
    if (kind != GOLD_TASK || len != sizeof(gd_plan) || g.p->magic != PLAN_MAGIC ||
        !memchr(g.p->silver[0], 0, ST_PATH_MAX) || !memchr(g.p->silver[1], 0, ST_PATH_MAX) ||
        !memchr(g.p->tmpdir, 0, ST_PATH_MAX))
        s = st_error_set(err, ST_ERR_INTERNAL, "gold: task %d with a plan of %zu bytes is not this build's", (int)kind,
                         len);
    if (s == ST_OK) s = open_share(&g, err);
    if (stop(&g, s)) goto done;
    /* each phase ends at a checkpoint: failed here, or stopped by another rank */
    if ((s = plan_ranges(&g, err)) != ST_OK || g.stopped) goto done;
    if ((s = share_dictionary(&g, err)) != ST_OK || g.stopped) goto done;
    st_dict_free(g.local);
    g.local = NULL;
    if ((s = exchange(&g, err)) != ST_OK || g.stopped) goto done;
    if ((s = compute_and_gather(&g, err)) != ST_OK || g.stopped) goto done;
    uint64_t sums[2] = {g.spill ? st_spill_bytes(g.spill) : 0, g.moved};
    st_dist_sum_u64(sums, 2);
    if (g.sink) *g.sink->out = (st_gold_dist_out){g.n_ranges, g.n_passes, sums[0], g.n, g.n_rounds, sums[1]};
done:
    gd_free(&g);
    return s;
}

bool st_gold_dist_wanted(void) { return st_kmeans_serving(); }

st_status st_gold_dist_run(st_gold_dist_in *in, st_dict *dict, st_gold_emit_fn emit, void *arg,
                           st_gold_dist_out *out, st_error *err)
{
    gd_plan *p = calloc(1, sizeof *p);
    gd_sink sink = {dict, emit, arg, out, in->fd};
    in->fd = -1;
    st_status s;
    if (!p) {
        s = st_error_set(err, ST_ERR_NOMEM, "gold: out of memory");
    } else {
        *p = (gd_plan){.magic = PLAN_MAGIC, .threads = in->threads, .dims = in->dims, .n_lines = in->n_lines,
                       .memory_limit = in->memory_limit};
        memcpy(p->silver, in->silver, sizeof p->silver);
        memcpy(p->tmpdir, in->tmpdir, sizeof p->tmpdir);
        s = st_kmeans_task(GOLD_TASK, p, sizeof *p, st_gold_dist_task, &sink, err);
    }
    if (sink.fd >= 0) close(sink.fd);
    free(p);
    return s;
}

void st_gold_dist_note(char *note, size_t cap, const st_gold_dist_out *d)
{
    size_t w = strlen(note);
    if (d->n_ranks > 1 && w < cap)
        snprintf(note + w, cap - w, "; on %d ranks (%llu exchange round%s, %.1f MiB between ranks)", d->n_ranks,
                 (unsigned long long)d->n_rounds, d->n_rounds == 1 ? "" : "s", (double)d->moved / 1048576.0);
}
