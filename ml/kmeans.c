/*
 * kmeans.c: k-means with k-means++ initialisation and Lloyd iterations,
 * reproducible to the bit.
 *
 * Shape of a fit: the points are copied once into column-major order (so
 * a SIMD kernel loads 8 or 16 consecutive points of one feature); each
 * restart seeds its own RNG from (seed, restart); k-means++ is the greedy
 * variant scikit-learn uses (2 + floor(ln k) candidates per centre, the
 * one that lowers the potential most wins); each Lloyd iteration is one
 * fused pass per block of 4,096 points: the assign kernel labels the
 * block, then the block's labels, distances and per-cluster float64 sums
 * are accumulated in point order into that block's own partial. Partials
 * are reduced in block order, so the result is the same for any number of
 * threads. Convergence follows scikit-learn: stop when the sum of squared
 * centre shifts is <= tol * mean feature variance, then a last assign pass
 * makes the labels agree with the final centres. An empty cluster takes
 * the point farthest from its centre (ties: lowest index).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "strata/ml.h"

#define BLOCK 4096

void st_assign_scalar(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                      int32_t *label, float *dist)
{
    for (size_t i = i0; i < i1; i++) {
        float best = __builtin_inff();
        int32_t bi = 0;
        for (int q = 0; q < k; q++) {
            float acc = 0.0f;
            for (size_t j = 0; j < d; j++) {
                float t = xt[j * stride + i] - c[(size_t)q * d + j];
                float sq = t * t;
                acc = acc + sq;
            }
            if (acc < best) {
                best = acc;
                bi = q;
            }
        }
        label[i] = bi;
        dist[i] = best;
    }
}

static int forced_level = -1;

bool st_kmeans_force_kernel(int level)
{
    if (level == 1 && !__builtin_cpu_supports("avx2")) return false;
    if (level == 2 && !__builtin_cpu_supports("avx512f")) return false;
    forced_level = level;
    return true;
}

static int auto_level(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *f = getenv("STRATA_FORCE_SCALAR");
        if (f && *f && strcmp(f, "0")) cached = 0;
        else if (__builtin_cpu_supports("avx512f")) cached = 2;
        else if (__builtin_cpu_supports("avx2")) cached = 1;
        else cached = 0;
    }
    return cached;
}

static int level(void) { return forced_level >= 0 ? forced_level : auto_level(); }

st_assign_fn st_assign_kernel(void)
{
    switch (level()) {
    case 2: return st_assign_avx512;
    case 1: return st_assign_avx2;
    default: return st_assign_scalar;
    }
}

const char *st_kmeans_kernel_name(void)
{
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    return names[level()];
}

void st_kmeans_opts_default(st_kmeans_opts *o)
{
    o->k = 3;
    o->n_init = 10;
    o->max_iter = 300;
    o->tol = 1e-4;
    o->seed = 42;
    o->threads = 1;
}

void st_kmeans_result_free(st_kmeans_result *r)
{
    if (!r) return;
    free(r->centroids);
    free(r->labels);
    free(r->sizes);
    free(r);
}

/* ---- RNG: splitmix64 ---- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

/* ---- the fused pass over blocks, possibly threaded ---- */

typedef struct pass {
    const float *xt;
    size_t n, d, stride;
    const float *c;   /* k x d float32 centres */
    int k;
    int32_t *label;
    float *dist;
    double *psum;     /* n_blocks x k x d */
    int64_t *pcnt;    /* n_blocks x k */
    double *pinert;   /* n_blocks */
    size_t n_blocks;
    size_t next;
    pthread_mutex_t mu;
    st_assign_fn fn;
} pass;

static void run_block(pass *p, size_t b)
{
    size_t i0 = b * BLOCK, i1 = i0 + BLOCK < p->n ? i0 + BLOCK : p->n;
    p->fn(p->xt, p->stride, p->d, i0, i1, p->c, p->k, p->label, p->dist);
    double *sum = p->psum + b * (size_t)p->k * p->d;
    int64_t *cnt = p->pcnt + b * (size_t)p->k;
    memset(sum, 0, (size_t)p->k * p->d * sizeof *sum);
    memset(cnt, 0, (size_t)p->k * sizeof *cnt);
    double inert = 0;
    for (size_t i = i0; i < i1; i++) {
        int32_t q = p->label[i];
        cnt[q]++;
        inert += (double)p->dist[i];
        double *s = sum + (size_t)q * p->d;
        for (size_t j = 0; j < p->d; j++) s[j] += (double)p->xt[j * p->stride + i];
    }
    p->pinert[b] = inert;
}

static void *pass_worker(void *arg)
{
    pass *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t b = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (b >= p->n_blocks) break;
        run_block(p, b);
    }
    return NULL;
}

/* One fused assign + accumulate pass; sums/counts/inertia reduced in block order. */
static void fused_pass(pass *p, int threads, double *sum, int64_t *cnt, double *inertia)
{
    p->next = 0;
    int nt = threads;
    if (nt > (int)p->n_blocks) nt = (int)p->n_blocks;
    if (p->n < 65536) nt = 1; /* not worth a thread */
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < nt && t < 64; t++)
        if (pthread_create(&th[started], NULL, pass_worker, p) == 0) started++;
    pass_worker(p);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    size_t kd = (size_t)p->k * p->d;
    memset(sum, 0, kd * sizeof *sum);
    memset(cnt, 0, (size_t)p->k * sizeof *cnt);
    *inertia = 0;
    for (size_t b = 0; b < p->n_blocks; b++) {
        for (size_t z = 0; z < kd; z++) sum[z] += p->psum[b * kd + z];
        for (int q = 0; q < p->k; q++) cnt[q] += p->pcnt[b * (size_t)p->k + q];
        *inertia += p->pinert[b];
    }
}

/* ---- k-means++ (greedy) ---- */

static double sqdist_point(const float *xt, size_t stride, size_t d, size_t i, size_t j2)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double t = (double)xt[j * stride + i] - (double)xt[j * stride + j2];
        s += t * t;
    }
    return s;
}

static void kmeanspp(const float *xt, size_t n, size_t d, int k, uint64_t *rng, double *closest, double *cand_d,
                     double *cum, float *centres)
{
    size_t first = (size_t)(next_unit(rng) * (double)n);
    if (first >= n) first = n - 1;
    for (size_t j = 0; j < d; j++) centres[j] = xt[j * n + first];
    double pot = 0;
    for (size_t i = 0; i < n; i++) {
        closest[i] = sqdist_point(xt, n, d, i, first);
        pot += closest[i];
    }
    int trials = 2 + (int)floor(log((double)k));
    for (int c = 1; c < k; c++) {
        double acc = 0;
        for (size_t i = 0; i < n; i++) {
            acc += closest[i];
            cum[i] = acc;
        }
        size_t best_cand = 0;
        double best_pot = INFINITY;
        for (int t = 0; t < trials; t++) {
            double r = next_unit(rng) * pot;
            /* first index whose cumulative sum exceeds r */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cum[mid] <= r) lo = mid + 1;
                else hi = mid;
            }
            size_t cand = lo < n ? lo : n - 1;
            double p2 = 0;
            for (size_t i = 0; i < n; i++) {
                double dd = sqdist_point(xt, n, d, i, cand);
                double m = dd < closest[i] ? dd : closest[i];
                p2 += m;
            }
            if (p2 < best_pot) {
                best_pot = p2;
                best_cand = cand;
            }
        }
        for (size_t i = 0; i < n; i++) {
            double dd = sqdist_point(xt, n, d, i, best_cand);
            if (dd < closest[i]) closest[i] = dd;
        }
        (void)cand_d;
        pot = best_pot;
        for (size_t j = 0; j < d; j++) centres[(size_t)c * d + j] = xt[j * n + best_cand];
    }
}

st_status st_kmeans_fit(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_kmeans_result **out,
                        st_error *err)
{
    *out = NULL;
    int k = o->k;
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu features (1..16 supported)", d);
    if (k < 1 || k > ST_ML_MAX_K) return st_error_set(err, ST_ERR_INVALID, "k-means: k = %d (1..64 supported)", k);
    if (n < (size_t)k) return st_error_set(err, ST_ERR_INVALID, "k-means: %zu points cannot make %d clusters", n, k);
    if (o->n_init < 1 || o->max_iter < 1 || !(o->tol >= 0))
        return st_error_set(err, ST_ERR_INVALID, "k-means: n_init and max_iter must be >= 1, tol >= 0");
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return st_error_set(err, ST_ERR_INVALID, "k-means: point %zu, feature %zu is not a finite number", i / d,
                                i % d);
    size_t n_blocks = (n + BLOCK - 1) / BLOCK, kd = (size_t)k * d;
    float *xt = malloc(n * d * sizeof *xt);
    double *closest = malloc(n * sizeof *closest), *cum = malloc(n * sizeof *cum);
    int32_t *label = malloc(n * sizeof *label), *best_label = malloc(n * sizeof *best_label);
    float *dist = malloc(n * sizeof *dist);
    float *cf = malloc(kd * sizeof *cf);
    double *cd = malloc(kd * sizeof *cd), *sum = malloc(kd * sizeof *sum), *best_c = malloc(kd * sizeof *best_c);
    int64_t *cnt = malloc((size_t)k * sizeof *cnt);
    pass p = {0};
    p.psum = malloc(n_blocks * kd * sizeof *p.psum);
    p.pcnt = malloc(n_blocks * (size_t)k * sizeof *p.pcnt);
    p.pinert = malloc(n_blocks * sizeof *p.pinert);
    st_kmeans_result *r = calloc(1, sizeof *r);
    st_status s = ST_OK;
    if (!xt || !closest || !cum || !label || !best_label || !dist || !cf || !cd || !sum || !best_c || !cnt || !p.psum ||
        !p.pcnt || !p.pinert || !r) {
        s = st_error_set(err, ST_ERR_NOMEM, "k-means: out of memory for %zu points", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xt[j * n + i] = x[i * d + j];
    /* tol is relative to the mean variance of the features */
    double var_mean = 0;
    for (size_t j = 0; j < d; j++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++) m += xt[j * n + i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double t = xt[j * n + i] - m;
            v += t * t;
        }
        var_mean += v / (double)n;
    }
    double tol_abs = o->tol * var_mean / (double)d;
    p.xt = xt;
    p.n = n;
    p.d = d;
    p.stride = n;
    p.c = cf;
    p.k = k;
    p.label = label;
    p.dist = dist;
    p.n_blocks = n_blocks;
    p.fn = st_assign_kernel();
    pthread_mutex_init(&p.mu, NULL);
    double best_inertia = INFINITY;
    int best_iter = 0;
    for (int run = 0; run < o->n_init; run++) {
        uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)run * 0xD1B54A32D192ED03ull + 1;
        kmeanspp(xt, n, d, k, &rng, closest, NULL, cum, cf);
        for (size_t z = 0; z < kd; z++) cd[z] = cf[z];
        int it = 0;
        double inertia = 0;
        for (it = 1; it <= o->max_iter; it++) {
            fused_pass(&p, o->threads, sum, cnt, &inertia);
            double shift = 0;
            bool relocated = false;
            for (int q = 0; q < k; q++) {
                if (cnt[q] == 0) {
                    /* empty: take the farthest point (ties: lowest index) */
                    size_t far = 0;
                    float fd = -1;
                    for (size_t i = 0; i < n; i++)
                        if (dist[i] > fd) {
                            fd = dist[i];
                            far = i;
                        }
                    dist[far] = -1;
                    for (size_t j = 0; j < d; j++) {
                        double nv = xt[j * n + far];
                        shift += (nv - cd[(size_t)q * d + j]) * (nv - cd[(size_t)q * d + j]);
                        cd[(size_t)q * d + j] = nv;
                    }
                    relocated = true;
                    continue;
                }
                for (size_t j = 0; j < d; j++) {
                    double nv = sum[(size_t)q * d + j] / (double)cnt[q];
                    double t = nv - cd[(size_t)q * d + j];
                    shift += t * t;
                    cd[(size_t)q * d + j] = nv;
                }
            }
            for (size_t z = 0; z < kd; z++) cf[z] = (float)cd[z];
            if (!relocated && shift <= tol_abs) break;
        }
        if (it > o->max_iter) it = o->max_iter;
        /* final E-step: labels and inertia against the final centres */
        fused_pass(&p, o->threads, sum, cnt, &inertia);
        if (inertia < best_inertia) {
            best_inertia = inertia;
            best_iter = it;
            memcpy(best_c, cd, kd * sizeof *cd);
            memcpy(best_label, label, n * sizeof *label);
        }
    }
    pthread_mutex_destroy(&p.mu);
    r->k = k;
    r->d = d;
    r->n = n;
    r->inertia = best_inertia;
    r->n_iter = best_iter;
    r->centroids = best_c;
    r->labels = best_label;
    best_c = NULL;
    best_label = NULL;
    r->sizes = calloc((size_t)k, sizeof *r->sizes);
    if (!r->sizes) {
        s = st_error_set(err, ST_ERR_NOMEM, "k-means: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) r->sizes[r->labels[i]]++;
    *out = r;
    r = NULL;
done:
    free(xt);
    free(closest);
    free(cum);
    free(label);
    free(best_label);
    free(dist);
    free(cf);
    free(cd);
    free(sum);
    free(best_c);
    free(cnt);
    free(p.psum);
    free(p.pcnt);
    free(p.pinert);
    st_kmeans_result_free(r);
    return s;
}
