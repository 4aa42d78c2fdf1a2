/*
 * kmeans.c: k-means with k-means++ initialisation and Lloyd iterations,
 * reproducible to the bit, in one process or split by points over the
 * ranks of strata-mpi.
 *
 * Shape of a fit: the points are copied once into column-major order (so
 * a SIMD kernel loads 8 or 16 consecutive points of one feature, and
 * vectorises across points). The work is cut into fixed blocks of
 * ST_KM_BLOCK points of the whole fit, whatever the thread and rank
 * counts; a pass runs a rank's blocks on a persistent pool (pool.c), each
 * block writing its own float64 partial (sums, counts, inertia), and the
 * partials are folded in block order. Hence the same seed gives the same
 * centroids, labels and inertia for any thread count and any kernel
 * (kmeans_internal.h explains why the kernels agree bit for bit).
 *
 * Across ranks (st_km_fit_world with size > 1): each rank holds a run of
 * whole blocks (st_km_share, rank 0 first), and every value the fit needs
 * from all points is an ordered fold along the ranks (st_dist_chain):
 * rank 0 folds its blocks' partials into the running value, hands it to
 * rank 1, which goes on with its blocks, and so on; the last rank's value
 * goes to all. That is exactly the left-to-right sum over blocks one
 * process computes, add for add, so the bits do not depend on the number
 * of ranks; a reduction tree would regroup the additions. Only per-block
 * partials travel, never points: a pass sends a few hundred bytes per
 * rank, whatever the points. What is folded: Lloyd's sums, counts,
 * inertia and changed labels (one fold per pass); the k-means++ potential,
 * the D^2 draws and the candidates' potentials; the two passes of the
 * per-feature variance that scales tol. A point everybody needs (a drawn
 * centre, the point an empty cluster takes) is copied by its owner.
 *
 * Initialisation is scikit-learn's greedy k-means++: the first centre is a
 * uniformly drawn point; each further centre draws 2 + floor(ln k)
 * candidates with probability proportional to the squared distance to the
 * closest centre chosen so far, and keeps the candidate that gives the
 * lowest potential (sum of those distances). Distances are the kernel's
 * float32 ones; potentials are float64 sums, per block then in block order.
 * The draw walks the block totals, then the points of one block, so no
 * n-long cumulative sum is built; across ranks the walk itself is the
 * fold (each rank walks its blocks from the running total it receives).
 *
 * Lloyd follows scikit-learn's lloyd loop: one fused pass per iteration
 * (assign + per-cluster float64 sums), an empty cluster takes the point
 * farthest from its centre (farthest first, ties to the lowest index, the
 * point's coordinates moving out of its old cluster's sums), then new
 * centres = sums / counts. Stop when no label changed ("strict
 * convergence") or when the sum of squared centre shifts is <= tol times
 * the mean per-feature variance of the data; unless strictly converged, a
 * final assign pass makes the labels agree with the final centres. Of the
 * n_init restarts, the lowest inertia is kept (ties: the earliest); every
 * rank runs every restart on its share, and the kept restart's labels are
 * gathered on rank 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "kmeans_internal.h"
#include "strata/pool.h"
#include "strata/column.h"
#include "strata/ml.h"

#define BLOCK ST_KM_BLOCK
#define MIN_POINTS_PER_THREAD 16384
#define MAX_TRIALS 8 /* k-means++ candidates per centre: 2 + floor(ln 64) = 6 */

_Static_assert(BLOCK % 16 == 0, "BLOCK must hold whole SIMD vectors");

void st_kmeans_opts_default(st_kmeans_opts *o)
{
    o->k = 3;
    o->n_init = 10;
    o->max_iter = 300;
    o->tol = 1e-4;
    o->seed = 42;
    o->threads = 1;
}

size_t st_kmeans_distinct_points(const float *x, size_t n, size_t d, size_t limit)
{
    size_t seen[ST_ML_MAX_K], n_seen = 0;
    if (limit > ST_ML_MAX_K) limit = ST_ML_MAX_K;
    for (size_t i = 0; i < n && n_seen < limit; i++) {
        bool dup = false;
        for (size_t s = 0; s < n_seen && !dup; s++)
            dup = !memcmp(x + i * d, x + seen[s] * d, d * sizeof *x);
        if (!dup) seen[n_seen++] = i;
    }
    return n_seen;
}

void st_kmeans_result_free(st_kmeans_result *r)
{
    if (!r) return;
    free(r->centroids);
    free(r->labels);
    free(r->sizes);
    free(r);
}

/* ---- RNG: splitmix64 (small state, good enough to seed and draw) ---- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- shared state of one fit ---- */

typedef struct worker {
    double *lsum;    /* k x d x ST_KM_LANES */
    int64_t *lcnt;   /* k x ST_KM_LANES */
    int32_t *lab;    /* BLOCK scratch labels (k-means++) */
    float *dist;     /* BLOCK scratch distances (k-means++) */
} worker;

/* A rank's candidate for an empty cluster: its point farthest from its
 * centre (dist -1: none). */
typedef struct far_point {
    float dist;
    int32_t label;           /* the point's cluster */
    float x[ST_ML_MAX_D];    /* its coordinates */
} far_point;

typedef struct fit {
    const float *xt;  /* this rank's points, column-major, stride n */
    size_t n, d, n_blocks; /* this rank's points and blocks (local indices below) */
    size_t n_all, p0; /* the fit's points; the global index of this rank's first */
    int rank, size;   /* size 1: a local fit, no collective */
    int k;
    st_km_kernel_fn kern;
    worker *w;        /* n_workers: one per pool thread */
    int n_workers;
    /* Lloyd pass */
    const float *cf;  /* k x d float32 centres */
    int32_t *label;   /* n */
    double *psum;     /* n_blocks x k x d */
    int64_t *pcnt;    /* n_blocks x k */
    double *pinert;   /* n_blocks */
    size_t *pchanged; /* n_blocks */
    double *red;      /* the pass's fold: k x d sums, inertia, then k counts and changed as int64 */
    far_point *far;   /* size: every rank's candidate for an empty cluster */
    /* k-means++ */
    float *closest;   /* n: squared distance to the closest chosen centre */
    double *btot;     /* n_blocks: sum of closest per block */
    float cand[MAX_TRIALS][ST_ML_MAX_D]; /* candidate centres of this step */
    double draw_r[MAX_TRIALS];           /* where each candidate's draw falls in [0, potential) */
    int n_cand;
    double *ppot;     /* n_blocks x MAX_TRIALS: potential of each candidate per block */
    bool first;       /* closest is not set yet */
} fit;

void st_km_share(size_t n, int rank, int size, size_t *p0, size_t *p1)
{
    size_t nb = (n + BLOCK - 1) / BLOCK, sz = size < 1 ? 1 : (size_t)size, r = (size_t)rank;
    size_t q = nb / sz, rem = nb % sz;
    size_t b0 = r * q + (r < rem ? r : rem), b1 = b0 + q + (r < rem);
    *p0 = b0 * BLOCK < n ? b0 * BLOCK : n;
    *p1 = b1 * BLOCK < n ? b1 * BLOCK : n;
}

void st_km_shares(size_t n, int size, size_t *cnt, size_t *off)
{
    for (int r = 0; r < size; r++) {
        size_t a, z;
        st_km_share(n, r, size, &a, &z);
        cnt[r] = z - a;
        off[r] = a;
    }
}

/* The rank holding global point i. */
static int owner_of(const fit *f, size_t i)
{
    for (int r = 0; r < f->size; r++) {
        size_t a, b;
        st_km_share(f->n_all, r, f->size, &a, &b);
        if (i < b) return r;
    }
    return f->size - 1;
}

/* The collectives of a fit; a local fit (size 1) folds and keeps its own. */
static void chain(const fit *f, void *state, size_t bytes, void (*fold)(void *state, void *ctx), void *ctx)
{
    if (f->size > 1) st_dist_chain(state, bytes, fold, ctx);
    else fold(state, ctx);
}

static void bcast(const fit *f, void *buf, size_t bytes, int root)
{
    if (f->size > 1) st_dist_bcast(buf, bytes, root);
}

static void block_range(const fit *f, size_t b, size_t *i0, size_t *i1)
{
    *i0 = b * BLOCK;
    *i1 = *i0 + BLOCK < f->n ? *i0 + BLOCK : f->n;
}

static void lloyd_task(void *ctx, size_t b, int wid)
{
    fit *f = ctx;
    worker *w = &f->w[wid];
    size_t i0, i1, k = (size_t)f->k, d = f->d;
    block_range(f, b, &i0, &i1);
    memset(w->lsum, 0, ST_KM_LANES * k * d * sizeof *w->lsum);
    memset(w->lcnt, 0, ST_KM_LANES * k * sizeof *w->lcnt);
    st_km_acc acc = {w->lsum, w->lcnt, {0}, 0};
    f->kern(f->xt, f->n, d, i0, i1, f->cf, f->k, f->label, NULL, &acc);
    double *ps = f->psum + b * k * d;
    int64_t *pc = f->pcnt + b * k;
    for (size_t z = 0; z < k * d; z++) {
        const double *ls = w->lsum + z * ST_KM_LANES;
        double v = ls[0];
        for (size_t l = 1; l < ST_KM_LANES; l++) v += ls[l];
        ps[z] = v;
    }
    for (size_t q = 0; q < k; q++) {
        int64_t v = 0;
        for (size_t l = 0; l < ST_KM_LANES; l++) v += w->lcnt[q * ST_KM_LANES + l];
        pc[q] = v;
    }
    double in = acc.inert[0];
    for (size_t l = 1; l < ST_KM_LANES; l++) in += acc.inert[l];
    f->pinert[b] = in;
    f->pchanged[b] = acc.changed;
}

/* The Lloyd fold's state (fit.red): bytes, and where its int64 part starts. */
static size_t red_bytes(const fit *f) { return ((size_t)f->k * f->d + 1 + (size_t)f->k + 1) * sizeof(double); }
static int64_t *red_counts(const fit *f, double *red) { return (int64_t *)(void *)(red + (size_t)f->k * f->d + 1); }

/* Adds this rank's blocks' partials, in block order, to the fold. */
static void fold_lloyd(void *state, void *ctx)
{
    const fit *f = ctx;
    size_t k = (size_t)f->k, kd = k * f->d;
    double *sum = state, *inertia = sum + kd;
    int64_t *cnt = red_counts(f, sum);
    for (size_t b = 0; b < f->n_blocks; b++) {
        for (size_t z = 0; z < kd; z++) sum[z] += f->psum[b * kd + z];
        for (size_t q = 0; q < k; q++) cnt[q] += f->pcnt[b * k + q];
        *inertia += f->pinert[b];
        cnt[k] += (int64_t)f->pchanged[b];
    }
}

/* One fused pass over all blocks, reduced in block order. */
static void lloyd_pass(fit *f, st_pool *pool, double *sum, int64_t *cnt, double *inertia, size_t *changed)
{
    size_t k = (size_t)f->k, kd = k * f->d;
    st_pool_run(pool, f->n_blocks, lloyd_task, f);
    memset(f->red, 0, red_bytes(f));
    chain(f, f->red, red_bytes(f), fold_lloyd, f);
    const int64_t *rc = red_counts(f, f->red);
    memcpy(sum, f->red, kd * sizeof *sum);
    memcpy(cnt, rc, k * sizeof *cnt);
    *inertia = f->red[kd];
    *changed = (size_t)rc[k];
}

/* k-means++ step tasks. The kernel with k = 1 gives float32 squared
 * distances to one centre, in the same float order as the Lloyd pass. */
static double lane_sum_min(const float *closest, const float *dist, size_t len, bool first)
{
    double lanes[ST_KM_LANES] = {0};
    for (size_t i = 0; i < len; i++) {
        float m = first || dist[i] < closest[i] ? dist[i] : closest[i];
        lanes[i & (ST_KM_LANES - 1)] += (double)m;
    }
    double s = 0;
    for (size_t l = 0; l < ST_KM_LANES; l++) s += lanes[l];
    return s;
}

static void trial_task(void *ctx, size_t b, int wid)
{
    fit *f = ctx;
    worker *w = &f->w[wid];
    size_t i0, i1;
    block_range(f, b, &i0, &i1);
    for (int t = 0; t < f->n_cand; t++) {
        f->kern(f->xt + i0, f->n, f->d, 0, i1 - i0, f->cand[t], 1, w->lab, w->dist, NULL);
        f->ppot[b * MAX_TRIALS + (size_t)t] = lane_sum_min(f->closest + i0, w->dist, i1 - i0, false);
    }
}

static void update_task(void *ctx, size_t b, int wid)
{
    fit *f = ctx;
    worker *w = &f->w[wid];
    size_t i0, i1;
    block_range(f, b, &i0, &i1);
    f->kern(f->xt + i0, f->n, f->d, 0, i1 - i0, f->cand[0], 1, w->lab, w->dist, NULL);
    f->btot[b] = lane_sum_min(f->closest + i0, w->dist, i1 - i0, f->first);
    float *cl = f->closest + i0;
    for (size_t i = 0; i < i1 - i0; i++)
        if (f->first || w->dist[i] < cl[i]) cl[i] = w->dist[i];
}

static void set_centre(const fit *f, size_t i, float *out)
{
    for (size_t j = 0; j < f->d; j++) out[j] = f->xt[j * f->n + i];
}

static void fold_potential(void *state, void *ctx)
{
    const fit *f = ctx;
    double *pot = state;
    for (size_t b = 0; b < f->n_blocks; b++) *pot += f->btot[b];
}

/* The sum of closest over every point, blocks in order. */
static double potential(fit *f)
{
    double pot = 0;
    chain(f, &pot, sizeof pot, fold_potential, f);
    return pot;
}

static void fold_trials(void *state, void *ctx)
{
    const fit *f = ctx;
    double *p = state;
    for (size_t b = 0; b < f->n_blocks; b++)
        for (int t = 0; t < f->n_cand; t++) p[t] += f->ppot[b * MAX_TRIALS + (size_t)t];
}

/* The D^2 draws of one k-means++ step, walked along the ranks. */
typedef struct draw_state {
    double run;                          /* closest summed over the blocks walked so far */
    int32_t found[MAX_TRIALS];           /* draw t fell on the point pick[t] */
    int32_t have_last;                   /* a block walked so far has a nonzero weight */
    float last[ST_ML_MAX_D];             /* the last weighted point of the last such block */
    float zero[ST_ML_MAX_D];             /* point 0, the draw when every weight is 0 */
    float pick[MAX_TRIALS][ST_ML_MAX_D];
} draw_state;

/* The last point of block b with a nonzero weight; its first point when
 * it has none. */
static size_t last_weighted(const fit *f, size_t b)
{
    size_t i0, i1;
    block_range(f, b, &i0, &i1);
    for (size_t i = i1; i-- > i0;)
        if (f->closest[i] > 0) return i;
    return i0;
}

/* The point of block b where draw r falls, the running sum entering the
 * block at run: the first whose running sum of closest exceeds r (and
 * that has a weight); rounding can leave r past the block's last sum:
 * then the block's last weighted point. */
static size_t walk_block(const fit *f, size_t b, double run, double r)
{
    size_t i0, i1;
    block_range(f, b, &i0, &i1);
    double s = run;
    for (size_t i = i0; i < i1; i++) {
        s += (double)f->closest[i];
        if (s > r && f->closest[i] > 0) return i;
    }
    return last_weighted(f, b);
}

/* Walks this rank's blocks for every draw still open: a draw falls in
 * the first block whose running total passes it (blocks of zero weight
 * never hold it). */
static void fold_draw(void *state, void *ctx)
{
    const fit *f = ctx;
    draw_state *s = state;
    size_t last_b = f->n_blocks;
    for (size_t b = 0; b < f->n_blocks; b++) {
        double bt = f->btot[b];
        if (bt > 0) last_b = b;
        for (int t = 0; t < f->n_cand; t++)
            if (!s->found[t] && s->run + bt > f->draw_r[t] && bt > 0) {
                set_centre(f, walk_block(f, b, s->run, f->draw_r[t]), s->pick[t]);
                s->found[t] = 1;
            }
        s->run += bt;
    }
    if (last_b < f->n_blocks) {
        set_centre(f, last_weighted(f, last_b), s->last);
        s->have_last = 1;
    }
}

/* Draws `trials` candidates into f->cand with probability proportional
 * to closest: draw t lands on the first point whose running sum (blocks
 * in order, points in order) exceeds r_t = u_t * pot; past the last sum
 * (rounding): the last weighted point; no weight at all: point 0. */
static void draw(fit *f, uint64_t *rng, double pot, int trials)
{
    draw_state s;
    memset(&s, 0, sizeof s);
    for (int t = 0; t < trials; t++) f->draw_r[t] = next_unit(rng) * pot;
    f->n_cand = trials;
    if (f->rank == 0) set_centre(f, 0, s.zero);
    chain(f, &s, sizeof s, fold_draw, f);
    for (int t = 0; t < trials; t++)
        memcpy(f->cand[t], s.found[t] ? s.pick[t] : s.have_last ? s.last : s.zero, f->d * sizeof(float));
}

static void kmeanspp(fit *f, st_pool *pool, uint64_t *rng, float *centres)
{
    size_t d = f->d;
    int k = f->k;
    size_t first = (size_t)(next_unit(rng) * (double)f->n_all);
    if (first >= f->n_all) first = f->n_all - 1;
    int owner = owner_of(f, first);
    if (owner == f->rank) set_centre(f, first - f->p0, centres);
    bcast(f, centres, d * sizeof *centres, owner);
    memcpy(f->cand[0], centres, d * sizeof(float));
    f->first = true;
    st_pool_run(pool, f->n_blocks, update_task, f);
    f->first = false;
    double pot = potential(f);
    int trials = 2 + (int)log((double)k);
    if (trials > MAX_TRIALS) trials = MAX_TRIALS;
    for (int c = 1; c < k; c++) {
        draw(f, rng, pot, trials);
        st_pool_run(pool, f->n_blocks, trial_task, f);
        double p[MAX_TRIALS] = {0};
        chain(f, p, sizeof p, fold_trials, f);
        int best = 0;
        double best_pot = INFINITY;
        for (int t = 0; t < trials; t++)
            if (p[t] < best_pot) {
                best_pot = p[t];
                best = t;
            }
        memcpy(centres + (size_t)c * d, f->cand[best], d * sizeof(float));
        memcpy(f->cand[0], centres + (size_t)c * d, d * sizeof(float));
        st_pool_run(pool, f->n_blocks, update_task, f);
        pot = potential(f);
    }
}

/* This rank's point farthest from its centre (dist[], ties to the lowest
 * index; taken points are at -2): rank 0 offers its point 0 when none is
 * above -1, as one process takes point 0 then. */
static far_point farthest(const fit *f, const float *dist, size_t *at)
{
    far_point p = {.dist = -1.0f};
    size_t far = f->rank == 0 ? 0 : f->n;
    for (size_t i = 0; i < f->n; i++)
        if (dist[i] > p.dist) {
            p.dist = dist[i];
            far = i;
        }
    if (far < f->n) {
        p.label = f->label[far];
        set_centre(f, far, p.x);
    }
    *at = far;
    return p;
}

/* Empty clusters take the points farthest from their (old) centres,
 * farthest first, ties to the lowest index; each such point leaves its
 * old cluster's sums. dist is n floats of scratch (closest, free during
 * Lloyd). Across ranks each rank offers its farthest point, and the
 * farthest of those (ties: the lowest rank, so the lowest index) is it. */
static void relocate_empty(fit *f, const float *cf, double *sum, int64_t *cnt, float *dist)
{
    size_t n = f->n, d = f->d;
    for (size_t i = 0; i < n; i++) {
        const float *cq = cf + (size_t)f->label[i] * d;
        float a = 0.0f;
        for (size_t j = 0; j < d; j++) {
            float t = f->xt[j * n + i] - cq[j];
            float sq = t * t;
            a = a + sq;
        }
        dist[i] = a;
    }
    for (int q = 0; q < f->k; q++) {
        if (cnt[q] != 0) continue;
        size_t at;
        far_point mine = farthest(f, dist, &at);
        if (f->size > 1) st_dist_allgather(&mine, sizeof mine, f->far);
        else f->far[0] = mine;
        int who = 0;
        for (int r = 1; r < f->size; r++)
            if (f->far[r].dist > f->far[who].dist) who = r;
        if (who == f->rank) dist[at] = -2.0f; /* taken */
        const far_point *p = &f->far[who];
        int32_t old = p->label;
        double *so = sum + (size_t)old * d, *sq = sum + (size_t)q * d;
        if (cnt[old] > 1) {
            for (size_t j = 0; j < d; j++) so[j] -= (double)p->x[j];
            cnt[old]--;
        }
        for (size_t j = 0; j < d; j++) sq[j] = (double)p->x[j];
        cnt[q] = 1;
    }
}

st_status st_km_check_args(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_error *err)
{
    int k = o->k;
    size_t nd;
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu features (1..16 supported)", d);
    if (k < 1 || k > ST_ML_MAX_K) return st_error_set(err, ST_ERR_INVALID, "k-means: k = %d (1..64 supported)", k);
    if (n < (size_t)k) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu points cannot make %d clusters", n, k);
    if (o->n_init < 1 || o->max_iter < 1 || !(o->tol >= 0))
        return st_error_set(err, ST_ERR_INVALID, "k-means: n_init and max_iter must be >= 1, tol >= 0");
    if (!st_size_mul(n, d, &nd) || nd > SIZE_MAX / sizeof(double))
        return st_error_set(err, ST_ERR_NOMEM, "k-means: %zu points x %zu features overflow", n, d);
    for (size_t i = 0; i < nd; i++)
        if (!isfinite(x[i]))
            return st_error_set(err, ST_ERR_INVALID, "k-means: point %zu, feature %zu is not a finite number", i / d,
                                i % d);
    return ST_OK;
}

/* The Lloyd state of one restart besides `fit`'s, reused by every restart. */
typedef struct lloyd_bufs {
    float *cf;    /* k x d float32 centres: what the kernels see (fit.cf) */
    double *cd;   /* k x d float64 centres */
    double *sum;  /* k x d coordinate sums of the last pass */
    int64_t *cnt; /* k counts of the last pass */
} lloyd_bufs;

/* malloc of count (at least 1) elements: a rank may hold no point. */
static void *alloc_n(size_t count, size_t each) { return malloc((count ? count : 1) * each); }

/* Allocates f's per-point and per-block arrays, b's buffers, the pool of
 * `threads` and one worker per pool thread (f->n_workers). False when out
 * of memory; free_fit() releases whatever was allocated either way. */
static bool alloc_fit(fit *f, lloyd_bufs *b, int threads, st_pool **pool)
{
    size_t n = f->n, k = (size_t)f->k, kd = k * f->d, n_blocks = f->n_blocks;
    b->cf = malloc(kd * sizeof *b->cf);
    b->cd = malloc(kd * sizeof *b->cd);
    b->sum = malloc(kd * sizeof *b->sum);
    b->cnt = malloc(k * sizeof *b->cnt);
    f->label = alloc_n(n, sizeof *f->label);
    f->closest = alloc_n(n, sizeof *f->closest);
    f->psum = alloc_n(n_blocks * kd, sizeof *f->psum);
    f->pcnt = alloc_n(n_blocks * k, sizeof *f->pcnt);
    f->pinert = alloc_n(n_blocks, sizeof *f->pinert);
    f->pchanged = alloc_n(n_blocks, sizeof *f->pchanged);
    f->btot = alloc_n(n_blocks, sizeof *f->btot);
    f->ppot = alloc_n(n_blocks * MAX_TRIALS, sizeof *f->ppot);
    f->red = malloc(red_bytes(f));
    f->far = malloc((size_t)f->size * sizeof *f->far);
    *pool = st_pool_new(threads);
    if (!b->cf || !b->cd || !b->sum || !b->cnt || !f->label || !f->closest || !f->psum || !f->pcnt || !f->pinert ||
        !f->pchanged || !f->btot || !f->ppot || !f->red || !f->far || !*pool)
        return false;
    f->cf = b->cf;
    int nw = st_pool_threads(*pool);
    if (!(f->w = calloc((size_t)nw, sizeof *f->w))) return false;
    f->n_workers = nw;
    for (int t = 0; t < nw; t++) {
        f->w[t].lsum = malloc(ST_KM_LANES * kd * sizeof *f->w[t].lsum);
        f->w[t].lcnt = malloc(ST_KM_LANES * k * sizeof *f->w[t].lcnt);
        f->w[t].lab = malloc(BLOCK * sizeof *f->w[t].lab);
        f->w[t].dist = malloc(BLOCK * sizeof *f->w[t].dist);
        if (!f->w[t].lsum || !f->w[t].lcnt || !f->w[t].lab || !f->w[t].dist) return false;
    }
    return true;
}

static void free_fit(fit *f, lloyd_bufs *b, st_pool *pool)
{
    st_pool_free(pool);
    for (int t = 0; t < f->n_workers; t++) {
        free(f->w[t].lsum);
        free(f->w[t].lcnt);
        free(f->w[t].lab);
        free(f->w[t].dist);
    }
    free(f->w);
    free(f->label);
    free(f->closest);
    free(f->psum);
    free(f->pcnt);
    free(f->pinert);
    free(f->pchanged);
    free(f->btot);
    free(f->ppot);
    free(f->red);
    free(f->far);
    free(b->cf);
    free(b->cd);
    free(b->sum);
    free(b->cnt);
}

/* The variance's two folds: the per-feature sums of the points (rank by
 * rank, each feature's points in order, as one pass over all of them),
 * then the sums of squared deviations from the mean. */
typedef struct var_fold {
    const fit *f;
    const double *mean; /* d, for the second fold */
} var_fold;

static void fold_mean(void *state, void *ctx)
{
    const fit *f = ((const var_fold *)ctx)->f;
    double *m = state;
    for (size_t j = 0; j < f->d; j++)
        for (size_t i = 0; i < f->n; i++) m[j] += f->xt[j * f->n + i];
}

static void fold_deviation(void *state, void *ctx)
{
    const var_fold *c = ctx;
    const fit *f = c->f;
    double *v = state;
    for (size_t j = 0; j < f->d; j++)
        for (size_t i = 0; i < f->n; i++) {
            double t = f->xt[j * f->n + i] - c->mean[j];
            v[j] += t * t;
        }
}

/* The sum over features of each feature's (population) variance over all
 * the fit's points: tol is relative to its mean (scikit-learn). Two-pass
 * float64 sums in point order, folded along the ranks: the bits of one
 * pass over all points, for any number of ranks (and, being sequential,
 * no faster for more ranks: an O(n d) walk, small beside Lloyd). */
static double variance_sum(const fit *f)
{
    double m[ST_ML_MAX_D] = {0}, v[ST_ML_MAX_D] = {0}, var_sum = 0;
    var_fold c = {f, m};
    chain(f, m, sizeof m, fold_mean, &c);
    for (size_t j = 0; j < f->d; j++) m[j] /= (double)f->n_all;
    chain(f, v, sizeof v, fold_deviation, &c);
    for (size_t j = 0; j < f->d; j++) var_sum += v[j] / (double)f->n_all;
    return var_sum;
}

/* New centres = sums / counts, into b->cd and (as float32) b->cf; returns
 * the sum of squared shifts from the previous b->cd. */
static double move_centres(const fit *f, lloyd_bufs *b)
{
    size_t d = f->d, kd = (size_t)f->k * d;
    double shift = 0;
    for (int q = 0; q < f->k; q++)
        for (size_t j = 0; j < d; j++) {
            size_t z = (size_t)q * d + j;
            double nv = b->sum[z] / (double)b->cnt[q];
            double t = nv - b->cd[z];
            shift += t * t;
            b->cd[z] = nv;
        }
    for (size_t z = 0; z < kd; z++) b->cf[z] = (float)b->cd[z];
    return shift;
}

/* Lloyd iterations from the centres in b->cf (k-means++'s) until strict
 * convergence, a shift <= tol_abs or max_iter passes; then, unless
 * strictly converged, a final assign pass against the final centres.
 * Leaves the labels in f->label and the centres in b->cd; *inertia, the
 * iterations run (*n_iter) and *total_iter (added to). Every rank takes
 * the same branches: they depend on folded values only. */
static void lloyd(fit *f, st_pool *pool, lloyd_bufs *b, int max_iter, double tol_abs, double *inertia, int *n_iter,
                  long *total_iter)
{
    size_t kd = (size_t)f->k * f->d;
    for (size_t z = 0; z < kd; z++) b->cd[z] = b->cf[z];
    for (size_t i = 0; i < f->n; i++) f->label[i] = -1;
    int it;
    bool strict = false;
    size_t changed = 0;
    *inertia = 0;
    for (it = 1; it <= max_iter; it++) {
        lloyd_pass(f, pool, b->sum, b->cnt, inertia, &changed);
        (*total_iter)++;
        bool empty = false;
        for (int q = 0; q < f->k; q++) empty |= b->cnt[q] == 0;
        if (empty) relocate_empty(f, b->cf, b->sum, b->cnt, f->closest);
        double shift = move_centres(f, b);
        if (changed == 0 && shift == 0) {
            strict = true;
            break;
        }
        if (shift <= tol_abs) break;
    }
    if (it > max_iter) it = max_iter;
    /* final E-step: labels and inertia against the final centres */
    if (!strict) lloyd_pass(f, pool, b->sum, b->cnt, inertia, &changed);
    *n_iter = it;
}

/* The kept restart: lowest inertia, ties the earliest. */
typedef struct kept {
    double inertia;
    int n_iter;
    long total_iter;  /* Lloyd passes of every restart */
    double *c;        /* k x d centres */
    int32_t *label;   /* this rank's n labels */
    double t_init, t_lloyd;
} kept;

/* The n_init restarts, each over every rank's share, one after the
 * other; the best one into *best. */
static void all_runs(fit *f, st_pool *pool, lloyd_bufs *b, const st_kmeans_opts *o, double tol_abs, kept *best)
{
    size_t kd = (size_t)f->k * f->d;
    for (int run = 0; run < o->n_init; run++) {
        uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)run * 0xD1B54A32D192ED03ull + 1;
        double t0 = now_s();
        kmeanspp(f, pool, &rng, b->cf);
        double t1 = now_s();
        best->t_init += t1 - t0;
        double inertia;
        int it;
        lloyd(f, pool, b, o->max_iter, tol_abs, &inertia, &it, &best->total_iter);
        best->t_lloyd += now_s() - t1;
        if (run == 0 || inertia < best->inertia) {
            best->inertia = inertia;
            best->n_iter = it;
            memcpy(best->c, b->cd, kd * sizeof *b->cd);
            memcpy(best->label, f->label, f->n * sizeof *best->label);
        }
    }
}

/* Rank 0's labels of all n_all points from every rank's kept labels:
 * moved out of best for a local fit, else gathered into all (n_all
 * entries on rank 0; share: 2 x size scratch). NULL on the other ranks. */
static int32_t *gather_labels(const fit *f, size_t *share, kept *best, int32_t *all)
{
    if (f->size == 1) {
        int32_t *mine = best->label;
        best->label = NULL;
        return mine;
    }
    st_km_shares(f->n_all, f->size, share, share + f->size);
    st_dist_gatherv(best->label, sizeof *best->label, share, share + f->size, all, 0);
    return f->rank == 0 ? all : NULL;
}

/* The result of a fit from its kept restart (centroids moved out of
 * best), labels as gather_labels() left them, sizes counted on rank 0. */
static void fill_result(st_kmeans_result *r, const fit *f, kept *best, int32_t *labels)
{
    r->k = f->k;
    r->d = f->d;
    r->n = f->n_all;
    r->threads = f->n_workers;
    r->init_seconds = best->t_init;
    r->lloyd_seconds = best->t_lloyd;
    r->kernel = st_kmeans_kernel_name();
    r->inertia = best->inertia;
    r->n_iter = best->n_iter;
    r->total_iter = best->total_iter;
    r->centroids = best->c;
    best->c = NULL;
    r->labels = labels;
    if (labels && r->sizes)
        for (size_t i = 0; i < f->n_all; i++) r->sizes[labels[i]]++;
}

st_status st_km_fit_world(const float *x, size_t n_all, size_t d, const st_kmeans_opts *o, int rank, int size,
                          st_kmeans_result **out, st_error *err)
{
    *out = NULL;
    double t_start = now_s();
    int k = o->k;
    size_t kd = (size_t)k * d, p0, p1;
    st_km_share(n_all, rank, size, &p0, &p1);
    size_t n = p1 - p0;
    int threads = o->threads < 1 ? 1 : o->threads;
    if ((size_t)threads > n / MIN_POINTS_PER_THREAD) threads = (int)(n / MIN_POINTS_PER_THREAD);
    if (threads < 1) threads = 1;
    st_pool *pool = NULL;
    fit f = {.n = n, .d = d, .k = k, .n_blocks = (n + BLOCK - 1) / BLOCK, .n_all = n_all, .p0 = p0, .rank = rank,
             .size = size};
    lloyd_bufs b = {0};
    kept best = {.c = malloc(kd * sizeof *best.c), .label = alloc_n(n, sizeof *best.label)};
    float *xt = alloc_n(n * d, sizeof *xt);
    size_t *share = malloc(2 * (size_t)size * sizeof *share);
    bool gathered = size > 1 && rank == 0;
    int32_t *labels = gathered ? malloc(n_all * sizeof *labels) : NULL;
    st_kmeans_result *r = calloc(1, sizeof *r);
    bool ok = alloc_fit(&f, &b, threads, &pool) && best.c && best.label && xt && share && r && (!gathered || labels);
    if (ok && rank == 0) ok = (r->sizes = calloc((size_t)k, sizeof *r->sizes)) != NULL;
    st_status s = st_km_agree(ok, "allocating", n_all, d, err);
    if (s != ST_OK) goto done;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xt[j * n + i] = x[i * d + j];
    f.xt = xt;
    f.kern = st_km_kernel_for(st_km_level());
    double tol_abs = o->tol * variance_sum(&f) / (double)d;
    all_runs(&f, pool, &b, o, tol_abs, &best);
    if ((s = st_km_agree(true, "fitting", n_all, d, err)) != ST_OK) goto done;
    int32_t *mine = gather_labels(&f, share, &best, labels);
    if (mine == labels) labels = NULL;
    fill_result(r, &f, &best, mine);
    r->seconds = now_s() - t_start;
    *out = r;
    r = NULL;
done:
    free_fit(&f, &b, pool);
    free(best.c);
    free(best.label);
    free(xt);
    free(share);
    free(labels);
    st_kmeans_result_free(r);
    return s;
}

st_status st_kmeans_assign(const float *x, size_t n, size_t d, const double *centroids, int k, int32_t *labels,
                           st_error *err)
{
    if (d < 1 || d > ST_ML_MAX_D || k < 1 || k > ST_ML_MAX_K)
        return st_error_set(err, ST_ERR_INVALID, "kmeans assign: %zu features, k = %d (1..%d, 1..%d)", d, k,
                            ST_ML_MAX_D, ST_ML_MAX_K);
    if (n == 0) return ST_OK;
    size_t cells;
    if (!st_size_mul(n, d, &cells)) return st_error_set(err, ST_ERR_NOMEM, "kmeans assign: %zu points too many", n);
    float *xt = malloc(cells * sizeof *xt), cf[ST_ML_MAX_K * ST_ML_MAX_D];
    if (!xt) return st_error_set(err, ST_ERR_NOMEM, "kmeans assign: out of memory for %zu points", n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xt[j * n + i] = x[i * d + j];
    for (size_t z = 0; z < (size_t)k * d; z++) cf[z] = (float)centroids[z];
    st_km_kernel_for(st_km_level())(xt, n, d, 0, n, cf, k, labels, NULL, NULL);
    free(xt);
    return ST_OK;
}
