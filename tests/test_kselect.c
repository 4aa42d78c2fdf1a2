/*
 * test_kselect.c: choosing k. The four measures (inertia, silhouette,
 * Calinski-Harabasz, Davies-Bouldin) against naive double-precision
 * references written here from the scikit-learn definitions, the knee of
 * the inertia curve, and the silhouette sample above 20,000 points.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "strata/ml.h"

TestSuite(kselect, .timeout = 120);

/* naive references for the k-selection measures */
static double ref_silhouette(const float *x, size_t n, size_t d, const int32_t *lab, int k)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double sum[64] = {0};
        int64_t cnt[64] = {0};
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t f = 0; f < d; f++) s += ((double)x[i * d + f] - x[j * d + f]) * ((double)x[i * d + f] - x[j * d + f]);
            sum[lab[j]] += sqrt(s);
            cnt[lab[j]]++;
        }
        if (cnt[lab[i]] <= 1) continue;
        double a = sum[lab[i]] / (double)(cnt[lab[i]] - 1), b = INFINITY;
        for (int q = 0; q < k; q++)
            if (q != lab[i] && cnt[q] && sum[q] / (double)cnt[q] < b) b = sum[q] / (double)cnt[q];
        total += (b - a) / fmax(a, b);
    }
    return total / (double)n;
}

Test(kselect, measures_match_naive_references)
{
    size_t n = 600, d = 2;
    int *truth = malloc(n * sizeof *truth);
    float *x = fx_blobs(n, d, 3, truth, 11);
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    o.n_init = 2;
    st_kscore sc[4];
    int best;
    st_error err;
    cr_assert_eq(st_kselect(x, n, d, 2, 5, &o, sc, &best, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(best, 3, "three blobs: silhouette picks k = 3");
    int knees = 0;
    for (int q = 0; q < 4; q++) knees += sc[q].is_knee;
    cr_assert_eq(knees, 1);
    cr_assert(sc[1].is_knee, "the knee of three blobs is k = 3");
    /* recompute k = 3 and compare every measure */
    o.k = 3;
    st_kmeans_result *r;
    cr_assert_eq(st_kmeans_fit(x, n, d, &o, &r, &err), ST_OK);
    double sil = ref_silhouette(x, n, d, r->labels, 3);
    cr_assert_float_eq(sc[1].silhouette, sil, 1e-5);
    cr_assert_float_eq(sc[1].inertia, r->inertia, 1e-9 * r->inertia);
    /* CH and DB by hand */
    double cen[3][2] = {{0}}, mean[2] = {0};
    int64_t cnt[3] = {0};
    for (size_t i = 0; i < n; i++) {
        cnt[r->labels[i]]++;
        for (size_t j = 0; j < d; j++) {
            cen[r->labels[i]][j] += x[i * d + j];
            mean[j] += x[i * d + j];
        }
    }
    for (int q = 0; q < 3; q++)
        for (size_t j = 0; j < d; j++) cen[q][j] /= (double)cnt[q];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    double W = 0, B = 0, s[3] = {0};
    for (size_t i = 0; i < n; i++) {
        int q = r->labels[i];
        double sq = 0;
        for (size_t j = 0; j < d; j++) sq += (x[i * d + j] - cen[q][j]) * (x[i * d + j] - cen[q][j]);
        W += sq;
        s[q] += sqrt(sq) / (double)cnt[q];
    }
    for (int q = 0; q < 3; q++) B += (double)cnt[q] * ((cen[q][0] - mean[0]) * (cen[q][0] - mean[0]) + (cen[q][1] - mean[1]) * (cen[q][1] - mean[1]));
    cr_assert_float_eq(sc[1].calinski_harabasz, B / 2.0 / (W / (double)(n - 3)), 1e-6 * sc[1].calinski_harabasz);
    double db = 0;
    for (int a = 0; a < 3; a++) {
        double worst = 0;
        for (int b = 0; b < 3; b++)
            if (a != b) worst = fmax(worst, (s[a] + s[b]) / hypot(cen[a][0] - cen[b][0], cen[a][1] - cen[b][1]));
        db += worst;
    }
    cr_assert_float_eq(sc[1].davies_bouldin, db / 3.0, 1e-9);
    st_kmeans_result_free(r);
    free(x);
    free(truth);
}

Test(kselect, knee_of_a_hand_made_curve)
{
    /* elbow at index 2 of a decreasing convex curve */
    double y[6] = {1000, 420, 150, 120, 100, 90};
    bool knee[6];
    st_kselect_knee(y, 6, knee);
    for (int q = 0; q < 6; q++) cr_assert_eq(knee[q], q == 2, "index %d", q);
    /* a straight line has no knee; fewer than 3 points neither */
    double line[4] = {4, 3, 2, 1};
    st_kselect_knee(line, 4, knee);
    for (int q = 0; q < 4; q++) cr_assert(!knee[q]);
    st_kselect_knee(y, 2, knee);
    cr_assert(!knee[0] && !knee[1]);
}

Test(kselect, bad_range_is_refused)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    st_kscore sc[8];
    int best;
    st_error err;
    cr_assert_eq(st_kselect(x, 8, 1, 1, 3, &o, sc, &best, &err), ST_ERR_INVALID);
    cr_assert_eq(st_kselect(x, 8, 1, 2, 9, &o, sc, &best, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "k range"), "%s", err.msg);
}
