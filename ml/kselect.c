/*
 * kselect.c: choosing k. Every k of the range is fitted and scored with
 * the four usual measures, defined as in scikit-learn:
 *   inertia            sum of squared distances to the assigned centroid
 *   silhouette         mean over points of (b - a) / max(a, b), a = mean
 *                      distance to the own cluster, b = to the nearest other
 *                      cluster; 0 for a point alone in its cluster. Exact up
 *                      to 20,000 points, else on a seeded sample of 20,000.
 *   Calinski-Harabasz  (between dispersion / (k - 1)) / (within / (n - k))
 *   Davies-Bouldin     mean over clusters of max_j (s_i + s_j) / |c_i - c_j|,
 *                      s = mean distance of a cluster's points to its centre
 * Cluster centres for the measures are the means of the labelled points.
 * The knee of the inertia curve: st_kselect_knee() (Kneedle).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "silhouette_internal.h"
#include "strata/ml.h"

#define SIL_MAX 20000

double st_sil_sum_scalar(const float *xt, size_t stride, size_t d, const float *p, size_t a, size_t b)
{
    double lanes[8] = {0};
    for (size_t i = a; i < b; i++) {
        float acc = 0.0f;
        for (size_t j = 0; j < d; j++) {
            float t = xt[j * stride + i] - p[j];
            float sq = t * t;
            acc = acc + sq;
        }
        lanes[(i - a) % 8] += (double)sqrtf(acc);
    }
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += lanes[l];
    return sum;
}

typedef double (*sil_fn)(const float *, size_t, size_t, const float *, size_t, size_t);

typedef struct sil_job {
    const st_sil_sample *S;
    size_t a0, a1;     /* the positions to do */
    double *s;         /* s[a - a0] for position a */
    size_t next;
    pthread_mutex_t mu;
    sil_fn fn;
} sil_job;

static void *sil_worker(void *arg)
{
    sil_job *J = arg;
    const st_sil_sample *S = J->S;
    double sumd[ST_ML_MAX_K];
    for (;;) {
        pthread_mutex_lock(&J->mu);
        size_t a0 = J->next;
        J->next += 256;
        pthread_mutex_unlock(&J->mu);
        if (a0 >= J->a1) break;
        size_t a1 = a0 + 256 < J->a1 ? a0 + 256 : J->a1;
        for (size_t a = a0; a < a1; a++) {
            float p[ST_ML_MAX_D];
            double *out = &J->s[a - J->a0];
            for (size_t j = 0; j < S->d; j++) p[j] = S->xt[j * S->m + a];
            for (int q = 0; q < S->k; q++) sumd[q] = J->fn(S->xt, S->m, S->d, p, S->off[q], S->off[q + 1]);
            int own = S->lab[a];
            size_t n_own = S->off[own + 1] - S->off[own];
            *out = 0;
            if (n_own <= 1) continue;
            double ai = sumd[own] / (double)(n_own - 1);
            double bi = INFINITY;
            for (int q = 0; q < S->k; q++) {
                size_t nq = S->off[q + 1] - S->off[q];
                if (q != own && nq > 0 && sumd[q] / (double)nq < bi) bi = sumd[q] / (double)nq;
            }
            if (!isfinite(bi)) continue;
            double mx = ai > bi ? ai : bi;
            *out = mx > 0 ? (bi - ai) / mx : 0;
        }
    }
    return NULL;
}

void st_sil_values(const st_sil_sample *S, size_t a0, size_t a1, int threads, double *s)
{
    sil_job J = {S, a0, a1, s, a0, PTHREAD_MUTEX_INITIALIZER,
                 __builtin_cpu_supports("avx2") && !getenv("STRATA_FORCE_SCALAR") ? st_sil_sum_avx2 : st_sil_sum_scalar};
    int nt = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    if (a1 - a0 < 2048) nt = 1;
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < nt; t++)
        if (pthread_create(&th[started], NULL, sil_worker, &J) == 0) started++;
    sil_worker(&J);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
}

/* Silhouette over the points idx[0..m) of x (labels lab): the sample
 * grouped by cluster, its per-point values (threads, and ranks in a
 * served run) summed in position order. */
static double silhouette(const float *x, size_t d, const size_t *idx, size_t m, const int32_t *lab, int k, int threads)
{
    if (m == 0) return 0;
    size_t *off = calloc((size_t)k + 1, sizeof *off), *pos = calloc((size_t)k + 1, sizeof *pos);
    float *xt = malloc(m * d * sizeof *xt);
    int32_t *sl = malloc(m * sizeof *sl);
    double *s = malloc(m * sizeof *s);
    double total = NAN;
    if (!off || !pos || !xt || !sl || !s) goto done;
    for (size_t a = 0; a < m; a++) off[lab[idx[a]] + 1]++;
    for (int q = 0; q < k; q++) off[q + 1] += off[q];
    memcpy(pos, off, ((size_t)k + 1) * sizeof *pos);
    for (size_t a = 0; a < m; a++) {
        size_t i = idx[a];
        size_t at = pos[lab[i]]++;
        sl[at] = lab[i];
        for (size_t j = 0; j < d; j++) xt[j * m + at] = x[i * d + j];
    }
    st_sil_sample S = {xt, m, d, off, sl, k};
    st_sil_values_world(&S, threads, s);
    total = 0;
    for (size_t a = 0; a < m; a++) total += s[a];
    total /= (double)m;
done:
    free(off);
    free(pos);
    free(xt);
    free(sl);
    free(s);
    return total;
}

static void scores_for(const float *x, size_t n, size_t d, const st_kmeans_result *r, const size_t *idx, size_t m,
                       int threads, st_kscore *out)
{
    int k = r->k;
    double *cen = calloc((size_t)k * d, sizeof *cen), *s = calloc((size_t)k, sizeof *s), mean[ST_ML_MAX_D] = {0};
    int64_t *cnt = calloc((size_t)k, sizeof *cnt);
    out->k = k;
    out->inertia = r->inertia;
    out->silhouette = silhouette(x, d, idx, m, r->labels, k, threads);
    if (!cen || !s || !cnt) goto done;
    for (size_t i = 0; i < n; i++) {
        int q = r->labels[i];
        cnt[q]++;
        for (size_t j = 0; j < d; j++) {
            cen[(size_t)q * d + j] += x[i * d + j];
            mean[j] += x[i * d + j];
        }
    }
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (int q = 0; q < k; q++)
        for (size_t j = 0; j < d; j++)
            if (cnt[q]) cen[(size_t)q * d + j] /= (double)cnt[q];
    double within = 0, between = 0;
    for (size_t i = 0; i < n; i++) {
        int q = r->labels[i];
        double sq = 0;
        for (size_t j = 0; j < d; j++) {
            double t = x[i * d + j] - cen[(size_t)q * d + j];
            sq += t * t;
        }
        within += sq;
        s[q] += sqrt(sq);
    }
    for (int q = 0; q < k; q++) {
        double sq = 0;
        for (size_t j = 0; j < d; j++) {
            double t = cen[(size_t)q * d + j] - mean[j];
            sq += t * t;
        }
        between += (double)cnt[q] * sq;
        if (cnt[q]) s[q] /= (double)cnt[q];
    }
    out->calinski_harabasz = within == 0 ? 1.0 : between * (double)(n - (size_t)k) / (within * (double)(k - 1));
    double db = 0;
    for (int a = 0; a < k; a++) {
        double worst = 0;
        for (int b = 0; b < k; b++) {
            if (a == b) continue;
            double sq = 0;
            for (size_t j = 0; j < d; j++) {
                double t = cen[(size_t)a * d + j] - cen[(size_t)b * d + j];
                sq += t * t;
            }
            double cdist = sqrt(sq);
            double v = cdist > 0 ? (s[a] + s[b]) / cdist : (s[a] + s[b] > 0 ? INFINITY : 0);
            if (v > worst) worst = v;
        }
        db += worst;
    }
    out->davies_bouldin = db / (double)k;
done:
    free(cen);
    free(s);
    free(cnt);
}

/* Kneedle for a decreasing convex curve: x and y are scaled to [0, 1]
 * (x_q = q / (n - 1), y_q = (y_0 - inertia_q) / (y_0 - y_last), which rises
 * from 0 to 1); the difference curve D_q = y_q - x_q measures how far the
 * point lies above the chord; the knee is the interior point with the
 * largest D (ties: the smaller k), and only if D > 1e-9 (a straight or
 * concave curve has no knee). Fewer than 3 points, or a curve that does
 * not fall, have no knee. */
void st_kselect_knee(const double *inertia, int n, bool *is_knee)
{
    for (int q = 0; q < n; q++) is_knee[q] = false;
    if (n < 3) return;
    double span = inertia[0] - inertia[n - 1];
    if (!(span > 0)) return;
    int best = -1;
    double best_d = 1e-9;
    for (int q = 1; q < n - 1; q++) {
        double xn = (double)q / (double)(n - 1);
        double yn = (inertia[0] - inertia[q]) / span;
        if (yn - xn > best_d) {
            best_d = yn - xn;
            best = q;
        }
    }
    if (best >= 0) is_knee[best] = true;
}

st_status st_kselect(const float *x, size_t n, size_t d, int k_min, int k_max, const st_kmeans_opts *o,
                     st_kscore *scores, int *best_k, st_error *err)
{
    if (k_min < 2 || k_max < k_min || (size_t)k_max > n)
        return st_error_set(err, ST_ERR_INVALID, "k range %d..%d does not fit %zu points (need 2 <= k_min <= k_max <= n)",
                            k_min, k_max, n);
    size_t m = n < SIL_MAX ? n : SIL_MAX;
    size_t *idx = malloc(n * sizeof *idx);
    if (!idx) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) idx[i] = i;
    if (m < n) {
        /* seeded partial Fisher-Yates: the first m entries are the sample */
        uint64_t st = o->seed ^ 0x5EED5EED5EED5EEDull;
        for (size_t i = 0; i < m; i++) {
            st += 0x9E3779B97F4A7C15ull;
            uint64_t z = st;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            size_t j = i + (size_t)(z % (uint64_t)(n - i));
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    int nk = k_max - k_min + 1;
    st_status s = ST_OK;
    for (int q = 0; q < nk && s == ST_OK; q++) {
        st_kmeans_opts ko = *o;
        ko.k = k_min + q;
        st_kmeans_result *r = NULL;
        s = st_kmeans_fit(x, n, d, &ko, &r, err);
        if (s == ST_OK) scores_for(x, n, d, r, idx, m, o->threads, &scores[q]);
        st_kmeans_result_free(r);
    }
    free(idx);
    if (s != ST_OK) return s;
    double y[ST_ML_MAX_K] = {0};
    bool knee[ST_ML_MAX_K];
    for (int q = 0; q < nk && q < ST_ML_MAX_K; q++) y[q] = scores[q].inertia;
    st_kselect_knee(y, nk < ST_ML_MAX_K ? nk : ST_ML_MAX_K, knee);
    for (int q = 0; q < nk; q++) scores[q].is_knee = q < ST_ML_MAX_K && knee[q];
    int bk = scores[0].k;
    double bs = -INFINITY;
    for (int q = 0; q < nk; q++)
        if (scores[q].silhouette > bs) {
            bs = scores[q].silhouette;
            bk = scores[q].k;
        }
    *best_k = bk;
    return ST_OK;
}
