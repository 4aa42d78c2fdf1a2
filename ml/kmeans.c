/*
 * kmeans.c: k-means with k-means++ initialisation and Lloyd iterations,
 * reproducible to the bit.
 *
 * Shape of a fit: the points are copied once into column-major order (so
 * a SIMD kernel loads 8 or 16 consecutive points of one feature, and
 * vectorises across points). The work is cut into fixed blocks of
 * BLOCK points whatever the thread count; a pass runs the blocks on a
 * persistent pool (pool.c), each block writing its own float64 partial
 * (sums, counts, inertia), and the partials are reduced in block order.
 * Hence the same seed gives the same centroids, labels and inertia for any
 * thread count and any kernel (kmeans_internal.h explains why the kernels
 * agree bit for bit).
 *
 * Initialisation is scikit-learn's greedy k-means++: the first centre is a
 * uniformly drawn point; each further centre draws 2 + floor(ln k)
 * candidates with probability proportional to the squared distance to the
 * closest centre chosen so far, and keeps the candidate that gives the
 * lowest potential (sum of those distances). Distances are the kernel's
 * float32 ones; potentials are float64 sums, per block then in block order.
 * The draw walks the block totals, then the points of one block, so no
 * n-long cumulative sum is built.
 *
 * Lloyd follows scikit-learn's lloyd loop: one fused pass per iteration
 * (assign + per-cluster float64 sums), an empty cluster takes the point
 * farthest from its centre (farthest first, ties to the lowest index, the
 * point's coordinates moving out of its old cluster's sums), then new
 * centres = sums / counts. Stop when no label changed ("strict
 * convergence") or when the sum of squared centre shifts is <= tol times
 * the mean per-feature variance of the data; unless strictly converged, a
 * final assign pass makes the labels agree with the final centres. Of the
 * n_init restarts, the lowest inertia is kept (ties: the earliest).
 *
 * Across the ranks of strata-mpi (kmeans_dist.c), restart r runs on rank
 * r % size exactly as here, and the ranks pick the kept restart by the same
 * rule from the gathered records: the result does not depend on the
 * number of ranks either.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmeans_internal.h"
#include "pool_internal.h"
#include "strata/column.h"
#include "strata/ml.h"

#define BLOCK 4096                /* points per block: a multiple of 16 */
#define MIN_POINTS_PER_THREAD 16384

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

typedef struct fit {
    const float *xt;  /* column-major points, stride n */
    size_t n, d, n_blocks;
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
    /* k-means++ */
    float *closest;   /* n: squared distance to the closest chosen centre */
    double *btot;     /* n_blocks: sum of closest per block */
    float cand[8][ST_ML_MAX_D]; /* candidate centres of this step */
    int n_cand;
    double *ppot;     /* n_blocks x 8: potential of each candidate per block */
    bool first;       /* closest is not set yet */
} fit;

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

/* One fused pass over all blocks, reduced in block order. */
static void lloyd_pass(fit *f, st_pool *pool, double *sum, int64_t *cnt, double *inertia, size_t *changed)
{
    size_t kd = (size_t)f->k * f->d;
    st_pool_run(pool, f->n_blocks, lloyd_task, f);
    memset(sum, 0, kd * sizeof *sum);
    memset(cnt, 0, (size_t)f->k * sizeof *cnt);
    *inertia = 0;
    *changed = 0;
    for (size_t b = 0; b < f->n_blocks; b++) {
        for (size_t z = 0; z < kd; z++) sum[z] += f->psum[b * kd + z];
        for (int q = 0; q < f->k; q++) cnt[q] += f->pcnt[b * (size_t)f->k + (size_t)q];
        *inertia += f->pinert[b];
        *changed += f->pchanged[b];
    }
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
        f->ppot[b * 8 + (size_t)t] = lane_sum_min(f->closest + i0, w->dist, i1 - i0, false);
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

/* Index of the point drawn for r in [0, total): the first point whose
 * running sum of closest (blocks in order, points in order) exceeds r.
 * Rounding can leave r past the last sum: then the last point with a
 * nonzero weight; all weights zero: point 0. */
static size_t draw_point(const fit *f, double r)
{
    double run = 0;
    size_t last_b = f->n_blocks;
    for (size_t b = 0; b < f->n_blocks; b++) {
        if (f->btot[b] > 0) last_b = b;
        if (run + f->btot[b] > r && f->btot[b] > 0) {
            size_t i0, i1;
            block_range(f, b, &i0, &i1);
            double s = run;
            for (size_t i = i0; i < i1; i++) {
                s += (double)f->closest[i];
                if (s > r && f->closest[i] > 0) return i;
            }
            last_b = b;
            break;
        }
        run += f->btot[b];
    }
    if (last_b == f->n_blocks) return 0;
    size_t i0, i1;
    block_range(f, last_b, &i0, &i1);
    for (size_t i = i1; i-- > i0;)
        if (f->closest[i] > 0) return i;
    return i0;
}

static void set_centre(const fit *f, size_t i, float *out)
{
    for (size_t j = 0; j < f->d; j++) out[j] = f->xt[j * f->n + i];
}

static void kmeanspp(fit *f, st_pool *pool, uint64_t *rng, float *centres)
{
    size_t d = f->d;
    int k = f->k;
    size_t first = (size_t)(next_unit(rng) * (double)f->n);
    if (first >= f->n) first = f->n - 1;
    set_centre(f, first, centres);
    memcpy(f->cand[0], centres, d * sizeof(float));
    f->first = true;
    st_pool_run(pool, f->n_blocks, update_task, f);
    f->first = false;
    double pot = 0;
    for (size_t b = 0; b < f->n_blocks; b++) pot += f->btot[b];
    int trials = 2 + (int)log((double)k);
    if (trials > 8) trials = 8;
    for (int c = 1; c < k; c++) {
        size_t ids[8];
        for (int t = 0; t < trials; t++) {
            ids[t] = draw_point(f, next_unit(rng) * pot);
            set_centre(f, ids[t], f->cand[t]);
        }
        f->n_cand = trials;
        st_pool_run(pool, f->n_blocks, trial_task, f);
        int best = 0;
        double best_pot = INFINITY;
        for (int t = 0; t < trials; t++) {
            double p = 0;
            for (size_t b = 0; b < f->n_blocks; b++) p += f->ppot[b * 8 + (size_t)t];
            if (p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        set_centre(f, ids[best], centres + (size_t)c * d);
        memcpy(f->cand[0], centres + (size_t)c * d, d * sizeof(float));
        st_pool_run(pool, f->n_blocks, update_task, f);
        pot = 0;
        for (size_t b = 0; b < f->n_blocks; b++) pot += f->btot[b];
    }
}

/* Empty clusters take the points farthest from their (old) centres,
 * farthest first, ties to the lowest index; each such point leaves its
 * old cluster's sums. dist is n floats of scratch. */
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
        size_t far = 0;
        float fd = -1.0f;
        for (size_t i = 0; i < n; i++)
            if (dist[i] > fd) {
                fd = dist[i];
                far = i;
            }
        dist[far] = -2.0f; /* taken */
        int32_t old = f->label[far];
        double *so = sum + (size_t)old * d, *sq = sum + (size_t)q * d;
        if (cnt[old] > 1) {
            for (size_t j = 0; j < d; j++) so[j] -= (double)f->xt[j * n + far];
            cnt[old]--;
        }
        for (size_t j = 0; j < d; j++) sq[j] = (double)f->xt[j * n + far];
        cnt[q] = 1;
    }
}

/* The arguments of st_kmeans_fit, checked before anything is allocated;
 * *nd = n * d. */
static st_status check_fit_args(const float *x, size_t n, size_t d, const st_kmeans_opts *o, size_t *nd,
                                st_error *err)
{
    int k = o->k;
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu features (1..16 supported)", d);
    if (k < 1 || k > ST_ML_MAX_K) return st_error_set(err, ST_ERR_INVALID, "k-means: k = %d (1..64 supported)", k);
    if (n < (size_t)k) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu points cannot make %d clusters", n, k);
    if (o->n_init < 1 || o->max_iter < 1 || !(o->tol >= 0))
        return st_error_set(err, ST_ERR_INVALID, "k-means: n_init and max_iter must be >= 1, tol >= 0");
    if (!st_size_mul(n, d, nd) || *nd > SIZE_MAX / sizeof(double))
        return st_error_set(err, ST_ERR_NOMEM, "k-means: %zu points x %zu features overflow", n, d);
    for (size_t i = 0; i < *nd; i++)
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
    float *dist;  /* n distances, allocated at the first empty cluster */
} lloyd_bufs;

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
    f->label = malloc(n * sizeof *f->label);
    f->closest = malloc(n * sizeof *f->closest);
    f->psum = malloc(n_blocks * kd * sizeof *f->psum);
    f->pcnt = malloc(n_blocks * k * sizeof *f->pcnt);
    f->pinert = malloc(n_blocks * sizeof *f->pinert);
    f->pchanged = malloc(n_blocks * sizeof *f->pchanged);
    f->btot = malloc(n_blocks * sizeof *f->btot);
    f->ppot = malloc(n_blocks * 8 * sizeof *f->ppot);
    *pool = st_pool_new(threads);
    if (!b->cf || !b->cd || !b->sum || !b->cnt || !f->label || !f->closest || !f->psum || !f->pcnt || !f->pinert ||
        !f->pchanged || !f->btot || !f->ppot || !*pool)
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
    free(b->cf);
    free(b->cd);
    free(b->sum);
    free(b->cnt);
    free(b->dist);
}

/* The sum over features of each feature's (population) variance, from
 * the column-major points: tol is relative to its mean (scikit-learn). */
static double variance_sum(const float *xt, size_t n, size_t d)
{
    double var_sum = 0;
    for (size_t j = 0; j < d; j++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++) m += xt[j * n + i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double t = xt[j * n + i] - m;
            v += t * t;
        }
        var_sum += v / (double)n;
    }
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
 * iterations run (*n_iter) and *total_iter (added to). False when out of
 * memory. */
static bool lloyd(fit *f, st_pool *pool, lloyd_bufs *b, int max_iter, double tol_abs, double *inertia, int *n_iter,
                  long *total_iter)
{
    size_t n = f->n, kd = (size_t)f->k * f->d;
    for (size_t z = 0; z < kd; z++) b->cd[z] = b->cf[z];
    for (size_t i = 0; i < n; i++) f->label[i] = -1;
    int it;
    bool strict = false;
    size_t changed = 0;
    *inertia = 0;
    for (it = 1; it <= max_iter; it++) {
        lloyd_pass(f, pool, b->sum, b->cnt, inertia, &changed);
        (*total_iter)++;
        bool empty = false;
        for (int q = 0; q < f->k; q++) empty |= b->cnt[q] == 0;
        if (empty) {
            if (!b->dist && !(b->dist = malloc(n * sizeof *b->dist))) return false;
            relocate_empty(f, b->cf, b->sum, b->cnt, b->dist);
        }
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
    return true;
}

/* The restarts this rank owns (run % size == rank), each recorded in
 * rec[run] for st_km_merge_runs(); this rank's best labels in best_label.
 * False when out of memory. */
static bool own_runs(fit *f, st_pool *pool, lloyd_bufs *b, const st_kmeans_opts *o, double tol_abs, int rank,
                     int size, st_km_run *rec, double *rec_c, int32_t *best_label, double *t_init, double *t_lloyd)
{
    size_t kd = (size_t)f->k * f->d;
    double best_inertia = INFINITY;
    for (int run = rank; run < o->n_init; run += size) {
        uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)run * 0xD1B54A32D192ED03ull + 1;
        double t0 = now_s();
        kmeanspp(f, pool, &rng, b->cf);
        double t1 = now_s();
        *t_init += t1 - t0;
        double inertia;
        int it;
        long iters = 0;
        if (!lloyd(f, pool, b, o->max_iter, tol_abs, &inertia, &it, &iters)) return false;
        *t_lloyd += now_s() - t1;
        rec[run] = (st_km_run){.inertia = inertia, .n_iter = it, .total_iter = iters};
        memcpy(rec_c + (size_t)run * kd, b->cd, kd * sizeof *b->cd);
        if (inertia < best_inertia) { /* ties: the earliest of this rank's runs */
            best_inertia = inertia;
            memcpy(best_label, f->label, f->n * sizeof *best_label);
        }
    }
    return true;
}

st_status st_km_fit_world(const float *x, size_t n, size_t d, const st_kmeans_opts *o, int rank, int size,
                          st_kmeans_result **out, st_error *err)
{
    *out = NULL;
    size_t nd = 0;
    ST_TRY(check_fit_args(x, n, d, o, &nd, err));
    double t_start = now_s();
    int k = o->k;
    size_t kd = (size_t)k * d;
    int threads = o->threads < 1 ? 1 : o->threads;
    if ((size_t)threads > n / MIN_POINTS_PER_THREAD) threads = (int)(n / MIN_POINTS_PER_THREAD);
    if (threads < 1) threads = 1;
    st_status s = ST_OK;
    st_pool *pool = NULL;
    fit f = {.n = n, .d = d, .k = k, .n_blocks = (n + BLOCK - 1) / BLOCK};
    lloyd_bufs b = {0};
    float *xt = malloc(nd * sizeof *xt);
    int32_t *best_label = malloc(n * sizeof *best_label);
    st_km_run *rec = calloc((size_t)o->n_init, sizeof *rec);
    double *rec_c = calloc((size_t)o->n_init * kd, sizeof *rec_c);
    st_kmeans_result *r = calloc(1, sizeof *r);
    bool ok = alloc_fit(&f, &b, threads, &pool) && xt && best_label && rec && rec_c && r;
    if ((s = st_km_agree(ok, "allocating", n, d, err)) != ST_OK) goto done;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xt[j * n + i] = x[i * d + j];
    f.xt = xt;
    f.kern = st_km_kernel_for(st_km_level());
    double tol_abs = o->tol * variance_sum(xt, n, d) / (double)d, t_init = 0, t_lloyd = 0;
    ok = own_runs(&f, pool, &b, o, tol_abs, rank, size, rec, rec_c, best_label, &t_init, &t_lloyd);
    if ((s = st_km_agree(ok, "fitting", n, d, err)) != ST_OK) goto done;
    *r = (st_kmeans_result){.k = k, .d = d, .n = n, .threads = f.n_workers, .init_seconds = t_init,
                            .lloyd_seconds = t_lloyd, .kernel = st_kmeans_kernel_name()};
    if ((s = st_km_merge_runs(o->n_init, kd, size, rec, rec_c, best_label, r, err)) != ST_OK) goto done;
    r->labels = best_label;
    best_label = NULL;
    r->seconds = now_s() - t_start;
    r->sizes = calloc((size_t)k, sizeof *r->sizes);
    if (!r->sizes) {
        s = st_error_set(err, ST_ERR_NOMEM, "k-means: out of memory for %zu points x %zu features", n, d);
        goto done;
    }
    for (size_t i = 0; i < n; i++) r->sizes[r->labels[i]]++;
    *out = r;
    r = NULL;
done:
    free_fit(&f, &b, pool);
    free(xt);
    free(best_label);
    free(rec);
    free(rec_c);
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
