/*
 * test_kmeans.c: segmentation. Blob recovery, SIMD kernels equal to the
 * scalar specification, determinism across threads and kernels,
 * degenerate inputs, k-selection measures against naive references,
 * persona naming and the override file parser, and how a fit's points
 * are shared among ranks (st_km_share).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "kmeans_internal.h"
#include "strata/file.h"
#include "strata/ml.h"

static void teardown(void) { st_kmeans_force_kernel(-1); }
TestSuite(kmeans, .fini = teardown, .timeout = 120);

Test(kmeans, recovers_well_separated_blobs_exactly)
{
    size_t n = 3000, d = 3;
    int k = 4;
    int *truth = malloc(n * sizeof *truth);
    float *x = fx_blobs(n, d, k, truth, 7);
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    o.k = k;
    st_kmeans_result *r;
    st_error err;
    cr_assert_eq(st_kmeans_fit(x, n, d, &o, &r, &err), ST_OK, "%s", err.msg);
    /* labels equal the truth up to a permutation */
    int map[4] = {-1, -1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        int t = truth[i], l = r->labels[i];
        if (map[t] < 0) map[t] = l;
        cr_assert_eq(map[t], l, "point %zu: blob %d split across clusters", i, t);
    }
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++) cr_assert_neq(map[a], map[b], "two blobs merged");
    for (int q = 0; q < k; q++) cr_assert_eq(r->sizes[q], (int64_t)(n / (size_t)k));
    st_kmeans_result_free(r);
    free(x);
    free(truth);
}

/* Runs one kernel over [0, n) in two blocks (as kmeans.c does) and returns
 * labels, distances and the float64 accumulators. */
typedef struct kout {
    int32_t lab[1013];
    float dist[1013];
    double sum[2][ST_KM_LANES * 64 * 16];
    int64_t cnt[2][ST_KM_LANES * 64];
    double inert[2][ST_KM_LANES];
    size_t changed[2];
} kout;

static void run_kernel(st_km_kernel_fn fn, const float *xt, size_t n, size_t d, const float *c, int k, kout *o)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < n; i++) o->lab[i] = (int32_t)(i % 3) - 1; /* some "old" labels */
    size_t cut = 512 + 5; /* second block starts off a vector boundary */
    for (int b = 0; b < 2; b++) {
        st_km_acc acc = {o->sum[b], o->cnt[b], {0}, 0};
        fn(xt, n, d, b ? cut : 0, b ? n : cut, c, k, o->lab, o->dist, &acc);
        memcpy(o->inert[b], acc.inert, sizeof acc.inert);
        o->changed[b] = acc.changed;
    }
}

Test(kmeans, simd_kernels_assign_exactly_like_scalar)
{
    size_t dims[] = {1, 2, 3, 7, 16};
    int ks[] = {1, 2, 3, 8, 64};
    static kout r0, r1;
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 5; b++) {
            size_t n = 1000 + 13, d = dims[a];
            int k = ks[b];
            fx_seed(99 + a * 10 + b);
            float *xt = malloc(n * d * sizeof *xt), *c = malloc((size_t)k * d * sizeof *c);
            for (size_t i = 0; i < n * d; i++) xt[i] = (float)(fx_gauss() * 3);
            for (size_t i = 0; i < (size_t)k * d; i++) c[i] = (float)(fx_gauss() * 3);
            /* exact ties: some points sit on a centre, some centres repeat */
            if (k > 1) memcpy(c + d, c, d * sizeof *c);
            for (size_t j = 0; j < d; j++) xt[j * n + 5] = c[j];
            for (size_t j = 0; j < d; j++) xt[j * n + 700] = c[((size_t)k - 1) * d + j];
            run_kernel(st_km_kernel_scalar, xt, n, d, c, k, &r0);
            cr_assert_eq(r0.dist[5], 0.0f);
            cr_assert_eq(r0.lab[5], 0, "tie must go to the lowest index");
            for (int level = 1; level <= 2; level++) {
                if (level == 1 && !__builtin_cpu_supports("avx2")) continue;
                if (level == 2 && !__builtin_cpu_supports("avx512f")) continue;
                run_kernel(st_km_kernel_for(level), xt, n, d, c, k, &r1);
                cr_assert(!memcmp(&r0, &r1, sizeof r0), "kernel %d differs from scalar: d=%zu k=%d", level, d, k);
            }
            free(xt);
            free(c);
        }
}

static st_kmeans_result *fit(const float *x, size_t n, size_t d, int k, int threads, int kernel)
{
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    o.k = k;
    o.threads = threads;
    o.n_init = 3;
    if (!st_kmeans_force_kernel(kernel)) return NULL;
    st_kmeans_result *r;
    st_error err;
    cr_assert_eq(st_kmeans_fit(x, n, d, &o, &r, &err), ST_OK, "%s", err.msg);
    return r;
}

Test(kmeans, same_result_for_every_thread_count_and_kernel)
{
    size_t n = 150000, d = 5; /* > 64K points: the threaded path is used */
    fx_seed(5);
    float *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++) x[i] = (float)fx_gauss() + (float)((i / d) % 4);
    st_kmeans_result *ref = fit(x, n, d, 6, 1, 0);
    int threads[] = {1, 2, 3};
    for (int kernel = 0; kernel <= 2; kernel++)
        for (int t = 0; t < 3; t++) {
            st_kmeans_result *r = fit(x, n, d, 6, threads[t], kernel);
            if (!r) continue; /* CPU lacks the kernel */
            cr_assert(!memcmp(r->labels, ref->labels, n * sizeof *r->labels), "labels differ: kernel %d threads %d",
                      kernel, threads[t]);
            cr_assert(!memcmp(r->centroids, ref->centroids, 6 * d * sizeof(double)), "centroids differ");
            cr_assert(r->inertia == ref->inertia, "inertia differs");
            st_kmeans_result_free(r);
        }
    st_kmeans_result_free(ref);
    free(x);
}

Test(kmeans, degenerate_inputs)
{
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    st_error err;
    st_kmeans_result *r = NULL;
    float x[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* n < k */
    o.k = 5;
    cr_assert_eq(st_kmeans_fit(x, 4, 3, &o, &r, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "4 points"), "%s", err.msg);
    /* identical points, k = 2: a valid result with zero inertia */
    o.k = 2;
    cr_assert_eq(st_kmeans_fit(x, 4, 3, &o, &r, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(r->inertia, 0.0);
    st_kmeans_result_free(r);
    /* k = 1: the mean */
    float y[6] = {0, 0, 2, 2, 4, 4};
    o.k = 1;
    cr_assert_eq(st_kmeans_fit(y, 3, 2, &o, &r, &err), ST_OK);
    cr_assert_float_eq(r->centroids[0], 2.0, 1e-9);
    cr_assert_float_eq(r->inertia, 16.0, 1e-6);
    st_kmeans_result_free(r);
    /* NaN is refused with a message naming the point */
    y[3] = NAN;
    cr_assert_eq(st_kmeans_fit(y, 3, 2, &o, &r, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "point 1"), "%s", err.msg);
    /* scaling: a constant feature becomes 0, NaN is refused */
    double raw[6] = {5, 1, 5, 2, 5, 3};
    float out[6];
    st_scaler sc;
    cr_assert_eq(st_scaler_fit_transform(&sc, raw, 3, 2, NULL, out, &err), ST_OK);
    cr_assert(out[0] == 0 && out[2] == 0 && out[4] == 0, "zero-variance feature scales to 0");
    cr_assert_float_eq(out[1], -1.2247449, 1e-5);
    double back[2], sv[2] = {0, 1.2247448713915890};
    st_scaler_inverse(&sc, sv, back);
    cr_assert_float_eq(back[0], 5.0, 1e-9);
    cr_assert_float_eq(back[1], 3.0, 1e-9);
    raw[2] = NAN;
    cr_assert_eq(st_scaler_fit_transform(&sc, raw, 3, 2, NULL, out, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "row 1"), "%s", err.msg);
    bool lg[2] = {false, true};
    double neg[2] = {1, -2};
    cr_assert_eq(st_scaler_fit_transform(&sc, neg, 1, 2, lg, out, &err), ST_ERR_INVALID);
}

Test(kmeans, column_arrays_with_names_and_no_scale)
{
    double a[4] = {1, 2, 3, 4}, b[4] = {0, 0, 0, 0}, bad[4] = {1, 2, NAN, 4};
    const double *cols[2] = {a, b};
    const char *names[2] = {"qty", "flat"};
    bool lg[2] = {true, false};
    float out[4 * 4];
    st_scaler sc;
    st_error err;
    cr_assert_eq(st_scaler_fit_transform_cols(&sc, cols, 4, 2, names, lg, false, out, 4, &err), ST_OK, "%s", err.msg);
    cr_assert_float_eq(out[0], (float)log1p(1.0), 1e-6);
    cr_assert_eq(out[4 * 3 + 1], 0.0f);
    double back[2], sv[2] = {out[4 * 2], 0};
    st_scaler_inverse(&sc, sv, back);
    cr_assert_float_eq(back[0], 3.0, 1e-5);
    cols[1] = bad;
    cr_assert_eq(st_scaler_fit_transform_cols(&sc, cols, 4, 2, names, lg, true, out, 4, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "feature 'flat' of row 2 is NaN"), "%s", err.msg);
}

/* The ml step scales one feature at a time (st_scaler_fit_transform_cols
 * with d = 1, writing column j of a row-major matrix) so that it never
 * holds more than one feature's doubles; that must give the bits of
 * scaling the whole n x d matrix at once, and the same scaler. */
Test(kmeans, scaling_one_feature_at_a_time_equals_the_matrix_bit_for_bit)
{
    enum { N = 5000, D = 4 };
    static double x[N * D], col[N];
    static float whole[N * D], parts[N * D];
    uint64_t st = 7;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(st >> 11) / 9007199254740992.0;
            x[i * D + j] = j == 0 ? floor(u * 1e6) : j == 1 ? u : j == 2 ? 3.0 : floor(u * 40);
        }
    bool lg[D] = {true, false, false, true};
    st_scaler a, b;
    st_error err;
    cr_assert_eq(st_scaler_fit_transform(&a, x, N, D, lg, whole, &err), ST_OK, "%s", err.msg);
    memset(&b, 0, sizeof b);
    b.d = D;
    b.scaled = true;
    for (size_t j = 0; j < D; j++) {
        for (size_t i = 0; i < N; i++) col[i] = x[i * D + j];
        const double *cols[1] = {col};
        st_scaler one;
        cr_assert_eq(st_scaler_fit_transform_cols(&one, cols, N, 1, NULL, &lg[j], true, parts + j, D, &err), ST_OK,
                     "%s", err.msg);
        b.mean[j] = one.mean[0];
        b.std[j] = one.std[0];
        b.log1p[j] = one.log1p[0];
    }
    cr_assert(!memcmp(whole, parts, sizeof whole), "scaled points differ");
    for (size_t j = 0; j < D; j++) {
        cr_assert(!memcmp(&a.mean[j], &b.mean[j], sizeof(double)), "mean %zu", j);
        cr_assert(!memcmp(&a.std[j], &b.std[j], sizeof(double)), "std %zu", j);
        cr_assert_eq(a.log1p[j], b.log1p[j]);
    }
    cr_assert_eq(b.std[2], 1.0, "a constant feature keeps std 1");
}

/* `strata kmeans` on a layer file written here: int64 + float64 + bool
 * columns, one NULL row skipped, three obvious clusters. */
Test(kmeans, cli_on_a_layer_file)
{
    char dir[] = "/tmp/strata_kmeans_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/t.strata", dir);
    st_field fields[3] = {{"qty", ST_TYPE_I64, false, NULL}, {"ratio", ST_TYPE_F64, true, NULL},
                          {"flag", ST_TYPE_BOOL, false, NULL}};
    st_file_meta meta = {.layer = "test", .table = "t", .params = ""};
    st_write_opts wo = {.no_fsync = true};
    st_writer *w;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, fields, 3, &meta, &wo, &err), ST_OK, "%s", err.msg);
    st_column c[3];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_F64);
    st_column_init(&c[2], ST_TYPE_BOOL);
    fx_seed(3);
    for (int i = 0; i < 300; i++) {
        int g = i % 3;
        cr_assert_eq(st_column_push_i64(&c[0], g * 1000 + (int64_t)(fx_urand() * 10)), ST_OK);
        if (i == 7) cr_assert_eq(st_column_push_null(&c[1]), ST_OK);
        else cr_assert_eq(st_column_push_f64(&c[1], g * 0.3 + fx_urand() * 0.01), ST_OK);
        cr_assert_eq(st_column_push_bool(&c[2], g == 1), ST_OK);
    }
    cr_assert_eq(st_writer_write(w, c, 0, 300, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (int j = 0; j < 3; j++) st_column_free(&c[j]);
    const char *bin = fx_bin();
    char cmd[1024];
    static char out[65536];
    snprintf(cmd, sizeof cmd, "%s kmeans %s --columns qty,ratio,flag --k 3 --n-init 2 --threads 2 2>&1", bin, path);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s", out);
    cr_assert_not_null(strstr(out, "299 rows clustered, 1 skipped"), "%s", out);
    cr_assert_not_null(strstr(out, "inertia:"), "%s", out);
    cr_assert_not_null(strstr(out, "iterations:"), "%s", out);
    /* bad column name: schema error, exit code 3 */
    snprintf(cmd, sizeof cmd, "%s kmeans %s --columns qty,nope >/dev/null 2>&1", bin, path);
    int rc = system(cmd);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 3, "rc %d", rc);
    remove(path);
    rmdir(dir);
}

/* The ranks' shares of a fit's points (kmeans_dist.c scatters them):
 * consecutive runs of whole blocks in rank order covering every point,
 * block counts differing by at most one, rank 0 holding point 0. */
Test(kmeans, rank_shares_are_whole_blocks_in_rank_order)
{
    static const size_t ns[] = {1, 4095, 4096, 4097, 3 * 4096, 60341, 1000000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int size = 1; size <= 9; size++) {
            size_t n = ns[t], at = 0, nb = (n + ST_KM_BLOCK - 1) / ST_KM_BLOCK, most = 0, least = SIZE_MAX;
            size_t cnt[9], off[9];
            st_km_shares(n, size, cnt, off);
            for (int r = 0; r < size; r++) {
                size_t p0, p1;
                st_km_share(n, r, size, &p0, &p1);
                cr_assert(p0 == at && p1 >= p0 && cnt[r] == p1 - p0 && off[r] == p0, "n %zu size %d rank %d", n, size,
                          r);
                cr_assert((p0 % ST_KM_BLOCK == 0 || p0 == n) && (p1 % ST_KM_BLOCK == 0 || p1 == n),
                          "n %zu rank %d: cut inside a block", n, r);
                size_t blocks = (p1 - p0 + ST_KM_BLOCK - 1) / ST_KM_BLOCK;
                if (blocks > most) most = blocks;
                if (blocks < least) least = blocks;
                at = p1;
            }
            cr_assert_eq(at, n, "n %zu size %d: points left over", n, size);
            cr_assert(most - least <= 1 && most == (nb + (size_t)size - 1) / (size_t)size, "n %zu size %d", n, size);
            size_t p0, p1;
            st_km_share(n, 0, size, &p0, &p1);
            cr_assert(p0 == 0 && p1 > 0, "rank 0 must hold point 0");
        }
}
