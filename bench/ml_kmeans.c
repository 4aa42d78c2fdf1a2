/*
 * ml_kmeans.c: the strata side of the k-means comparison, through the
 * library call st_kmeans_fit() (the same code `strata run`'s ml step and
 * `strata kmeans` use), on the matrix bench/kmeans_sklearn.py wrote.
 *
 * The f64 matrix is converted once to the float32 points strata clusters
 * (untimed, as scikit-learn's input validation is outside its timing too).
 * Timed: st_kmeans_fit with n_init restarts, reps times. Then, untimed for
 * the ratio, n_init single-restart fits with seeds seed+i give the total
 * number of Lloyd iterations, for points/s/core/iter (the library reports
 * only the kept restart's count).
 *
 * Usage: ml_kmeans IN.f64 N D K THREADS REPS [N_INIT MAX_ITER TOL SEED]
 * Prints one JSON object.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "strata/ml.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: ml_kmeans IN.f64 N D K THREADS REPS [N_INIT MAX_ITER TOL SEED]\n");
        return 2;
    }
    size_t n = (size_t)strtoull(argv[2], NULL, 10), d = (size_t)strtoull(argv[3], NULL, 10);
    int k = atoi(argv[4]), threads = atoi(argv[5]), reps = atoi(argv[6]);
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    o.k = k;
    o.threads = threads;
    if (argc > 7) o.n_init = atoi(argv[7]);
    if (argc > 8) o.max_iter = atoi(argv[8]);
    if (argc > 9) o.tol = atof(argv[9]);
    if (argc > 10) o.seed = strtoull(argv[10], NULL, 10);
    if (n == 0 || d == 0 || d > ST_ML_MAX_D || reps < 1 || reps > 64) return 2;
    double *x64 = malloc(n * d * sizeof *x64);
    float *x = malloc(n * d * sizeof *x);
    FILE *in = fopen(argv[1], "rb");
    if (x64 == NULL || x == NULL || in == NULL || fread(x64, sizeof *x64, n * d, in) != n * d) {
        fprintf(stderr, "ml_kmeans: cannot read %zu x %zu doubles from %s\n", n, d, argv[1]);
        return 1;
    }
    fclose(in);
    for (size_t i = 0; i < n * d; i++) x[i] = (float)x64[i];
    free(x64);

    st_error err = {0};
    double secs[64];
    double inertia = 0;
    int kept_iter = 0;
    for (int r = 0; r < reps; r++) {
        st_kmeans_result *res = NULL;
        double t0 = now_seconds();
        if (st_kmeans_fit(x, n, d, &o, &res, &err) != ST_OK) {
            fprintf(stderr, "ml_kmeans: %s\n", err.msg);
            return 1;
        }
        secs[r] = now_seconds() - t0;
        inertia = res->inertia;
        kept_iter = res->n_iter;
        st_kmeans_result_free(res);
    }
    /* total Lloyd iterations over the restarts, as seeded single fits */
    int64_t total_iter = 0;
    double single_secs = 0;
    st_kmeans_opts one = o;
    one.n_init = 1;
    for (int i = 0; i < o.n_init; i++) {
        st_kmeans_result *res = NULL;
        one.seed = o.seed + (uint64_t)i;
        double t0 = now_seconds();
        if (st_kmeans_fit(x, n, d, &one, &res, &err) != ST_OK) {
            fprintf(stderr, "ml_kmeans: %s\n", err.msg);
            return 1;
        }
        single_secs += now_seconds() - t0;
        total_iter += res->n_iter;
        st_kmeans_result_free(res);
    }
    printf("{\"kernel\":\"%s\",\"n\":%zu,\"d\":%zu,\"k\":%d,\"threads\":%d,\"n_init\":%d,\"inertia\":%.17g,"
           "\"kept_n_iter\":%d,\"total_iters_single_fits\":%" PRId64 ",\"single_fits_seconds\":%.6f,\"seconds\":[",
           st_kmeans_kernel_name(), n, d, k, threads, o.n_init, inertia, kept_iter, total_iter, single_secs);
    for (int r = 0; r < reps; r++) printf("%s%.6f", r ? "," : "", secs[r]);
    printf("]}\n");
    free(x);
    return 0;
}
