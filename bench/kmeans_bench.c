/*
 * kmeans_bench.c: times st_kmeans_fit on a raw float32 matrix (row-major
 * n x d little-endian floats, as numpy's tofile() writes it), so the very
 * same numbers can be given to scikit-learn (bench/kmeans_vs_sklearn.py).
 *
 * Usage: kmeans_bench FILE.f32 D K [N_INIT MAX_ITER TOL SEED THREADS]
 * Prints one JSON object: inertia, iterations, seconds, throughput.
 */
#include <stdio.h>
#include <stdlib.h>

#include "strata/ml.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kmeans_bench FILE.f32 D K [N_INIT MAX_ITER TOL SEED THREADS]\n");
        return 2;
    }
    size_t d = (size_t)atoi(argv[2]);
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    o.k = atoi(argv[3]);
    if (argc > 4) o.n_init = atoi(argv[4]);
    if (argc > 5) o.max_iter = atoi(argv[5]);
    if (argc > 6) o.tol = atof(argv[6]);
    if (argc > 7) o.seed = strtoull(argv[7], NULL, 10);
    if (argc > 8) o.threads = atoi(argv[8]);
    FILE *f = fopen(argv[1], "rb");
    if (!f || d < 1) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)bytes / (d * sizeof(float));
    float *x = malloc(n * d * sizeof *x);
    if (!x || fread(x, sizeof *x, n * d, f) != n * d) {
        fprintf(stderr, "short read\n");
        return 1;
    }
    fclose(f);
    st_kmeans_result *r;
    st_error err;
    if (st_kmeans_fit(x, n, d, &o, &r, &err) != ST_OK) {
        fprintf(stderr, "kmeans_bench: %s\n", err.msg);
        return 1;
    }
    double pts = (double)n * (double)r->total_iter / r->lloyd_seconds / r->threads;
    printf("{\"n\": %zu, \"d\": %zu, \"k\": %d, \"inertia\": %.17g, \"n_iter\": %d, \"total_iters\": %ld, "
           "\"seconds\": %.6f, \"init_seconds\": %.6f, \"lloyd_seconds\": %.6f, \"threads\": %d, "
           "\"kernel\": \"%s\", \"lloyd_points_per_s_per_core_per_iter\": %.6g}\n",
           n, d, o.k, r->inertia, r->n_iter, r->total_iter, r->seconds, r->init_seconds, r->lloyd_seconds,
           r->threads, r->kernel, pts);
    st_kmeans_result_free(r);
    free(x);
    return 0;
}
