/*
 * cmd_kmeans.c: `strata kmeans`: k-means on any numeric columns of any
 * layer file, for reuse and for benchmarking. Rows with a NULL in any
 * chosen column are skipped (and counted).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata/cli.h"
#include "strata/file.h"
#include "strata/ml.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: strata kmeans FILE --columns a,b,c [flags]\n"
               "\n"
               "Clusters the rows of a layer file on numeric columns (bool, int32, int64, float64).\n"
               "  --columns a,b,c   columns to cluster on (1..16, required)\n"
               "  --k N|auto        clusters, or pick by silhouette over --k-range   (default 3)\n"
               "  --k-range A..B    k range for auto                                  (default 2..7)\n"
               "  --n-init N        restarts                                          (default 10)\n"
               "  --max-iter N      Lloyd iterations per restart                      (default 300)\n"
               "  --tol X           relative tolerance                                (default 1e-4)\n"
               "  --seed N          random seed                                       (default 42)\n"
               "  --threads N       worker threads                                    (default 1)\n"
               "  --log1p a,b       columns to log1p before scaling                   (default none)\n"
               "  --no-scale        cluster raw values instead of z-scores\n"
               "Prints centroids in original units, sizes, inertia, iterations, the kernel used and\n"
               "the speed in points per second per core per iteration.\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int st_cmd_kmeans(int argc, char **argv)
{
    const char *path = NULL, *columns = NULL, *logs = "";
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    int k_auto = 0, kmin = 2, kmax = 7;
    bool scale = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-scale")) {
            scale = false;
            continue;
        }
        if (a[0] == '-' && i + 1 >= argc) {
            fprintf(stderr, "strata kmeans: %s needs a value (see strata kmeans --help)\n", a);
            return 2;
        }
        char *end = NULL;
        if (!strcmp(a, "--columns")) columns = argv[++i];
        else if (!strcmp(a, "--log1p")) logs = argv[++i];
        else if (!strcmp(a, "--k")) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) k_auto = 1;
            else o.k = (int)strtol(v, &end, 10);
        } else if (!strcmp(a, "--k-range")) {
            if (sscanf(argv[++i], "%d..%d", &kmin, &kmax) != 2 || kmin < 2 || kmax < kmin || kmax > 64) {
                fprintf(stderr, "strata kmeans: --k-range expects A..B with 2 <= A <= B <= 64\n");
                return 2;
            }
        } else if (!strcmp(a, "--n-init")) o.n_init = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(a, "--max-iter")) o.max_iter = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(a, "--tol")) o.tol = strtod(argv[++i], &end);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(argv[++i], &end, 10);
        else if (!strcmp(a, "--threads")) o.threads = (int)strtol(argv[++i], &end, 10);
        else if (a[0] == '-' || path) {
            fprintf(stderr, "strata kmeans: unexpected argument '%s' (see strata kmeans --help)\n", a);
            return 2;
        } else path = a;
        if (end && *end) {
            fprintf(stderr, "strata kmeans: bad value for %s: '%s'\n", a, argv[i]);
            return 2;
        }
    }
    if (!path || !columns) {
        usage(stderr);
        return 2;
    }
    if (o.threads < 1 || o.threads > 64 || o.n_init < 1 || o.max_iter < 1 || !(o.tol >= 0) ||
        (!k_auto && (o.k < 1 || o.k > 64))) {
        fprintf(stderr, "strata kmeans: k 1..64, threads 1..64, n-init and max-iter >= 1, tol >= 0\n");
        return 2;
    }
    st_reader *r = NULL;
    st_error err = {0};
    st_status s = st_reader_open(&r, path, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata kmeans: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    char cbuf[1024], lbuf[1024];
    snprintf(cbuf, sizeof cbuf, "%s", columns);
    snprintf(lbuf, sizeof lbuf, "%s", logs);
    const char *names[ST_ML_MAX_D];
    size_t which[ST_ML_MAX_D], d = 0;
    bool lg[ST_ML_MAX_D] = {false};
    for (char *t = strtok(cbuf, ","); t; t = strtok(NULL, ",")) {
        int c = st_reader_find(r, t);
        if (d == ST_ML_MAX_D || c < 0 || st_reader_field(r, (size_t)c)->type == ST_TYPE_STR ||
            st_reader_field(r, (size_t)c)->type == ST_TYPE_BYTES) {
            fprintf(stderr, "strata kmeans: '%s' is not a numeric column of '%s' (or more than 16 columns)\n", t, path);
            st_reader_close(r);
            return st_status_exit_code(ST_ERR_SCHEMA);
        }
        names[d] = t;
        which[d++] = (size_t)c;
    }
    for (char *t = strtok(lbuf, ","); t; t = strtok(NULL, ","))
        for (size_t j = 0; j < d; j++)
            if (!strcmp(names[j], t)) lg[j] = true;
    size_t n_all = (size_t)st_reader_n_rows(r), n = 0, skipped = 0;
    double *x = malloc((n_all ? n_all : 1) * d * sizeof *x);
    float *xs = malloc((n_all ? n_all : 1) * d * sizeof *xs);
    st_column c[ST_ML_MAX_D];
    for (size_t j = 0; j < d; j++) st_column_init(&c[j], st_reader_field(r, which[j])->type);
    int rc = 0;
    for (size_t ch = 0; ch < st_reader_n_chunks(r) && s == ST_OK; ch++) {
        for (size_t j = 0; j < d && s == ST_OK; j++) s = st_reader_read_block(r, ch, which[j], &c[j], &err);
        if (s != ST_OK) break;
        for (size_t i = 0; i < c[0].n_rows; i++) {
            bool ok = true;
            for (size_t j = 0; j < d; j++) ok &= st_column_valid(&c[j], i);
            if (!ok) {
                skipped++;
                continue;
            }
            for (size_t j = 0; j < d; j++) {
                const st_column *cc = &c[j];
                double v = cc->type == ST_TYPE_F64   ? st_column_f64(cc)[i]
                           : cc->type == ST_TYPE_I64 ? (double)st_column_i64(cc)[i]
                           : cc->type == ST_TYPE_I32 ? st_column_i32(cc)[i]
                                                     : st_column_bool(cc)[i];
                x[n * d + j] = v;
            }
            n++;
        }
    }
    st_scaler sc;
    st_kmeans_result *km = NULL;
    st_kscore *scores = NULL;
    double t0 = 0, t1 = 0;
    if (s == ST_OK) {
        if (scale) s = st_scaler_fit_transform(&sc, x, n, d, lg, xs, &err);
        else {
            sc.d = d;
            for (size_t j = 0; j < d; j++) {
                sc.mean[j] = 0;
                sc.std[j] = 1;
                sc.log1p[j] = false;
            }
            for (size_t i = 0; i < n * d; i++) xs[i] = (float)x[i];
        }
    }
    if (s == ST_OK && k_auto) {
        if ((size_t)kmax > n) kmax = (int)n;
        scores = calloc((size_t)(kmax - kmin + 1 > 0 ? kmax - kmin + 1 : 1), sizeof *scores);
        int best = 0;
        s = st_kselect(xs, n, d, kmin, kmax, &o, scores, &best, &err);
        if (s == ST_OK) {
            printf("%4s %16s %11s %18s %15s\n", "k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin");
            for (int q = 0; q <= kmax - kmin; q++)
                printf("%4d %16.6g %11.4f %18.6g %15.4f%s\n", scores[q].k, scores[q].inertia, scores[q].silhouette,
                       scores[q].calinski_harabasz, scores[q].davies_bouldin, scores[q].is_knee ? "  <- knee" : "");
            o.k = best;
        }
    }
    if (s == ST_OK) {
        t0 = now();
        s = st_kmeans_fit(xs, n, d, &o, &km, &err);
        t1 = now();
    }
    if (s == ST_OK) {
        printf("%zu points (%zu skipped for NULLs), %zu features, k = %d, kernel %s, %d thread%s\n", n, skipped, d, o.k,
               st_kmeans_kernel_name(), o.threads, o.threads == 1 ? "" : "s");
        printf("inertia %.10g, %d iterations in the best of %d restarts, %.3f s\n", km->inertia, km->n_iter, o.n_init,
               t1 - t0);
        printf("%8s %10s", "cluster", "size");
        for (size_t j = 0; j < d; j++) printf(" %20s", names[j]);
        printf("\n");
        for (int q = 0; q < o.k; q++) {
            double orig[ST_ML_MAX_D];
            st_scaler_inverse(&sc, km->centroids + (size_t)q * d, orig);
            printf("%8d %10lld", q, (long long)km->sizes[q]);
            for (size_t j = 0; j < d; j++) printf(" %20.6g", orig[j]);
            printf("\n");
        }
        printf("time %.6f s\n", t1 - t0);
    } else {
        fprintf(stderr, "strata kmeans: %s\n", err.msg);
        rc = st_status_exit_code(s);
    }
    st_kmeans_result_free(km);
    free(scores);
    for (size_t j = 0; j < d; j++) st_column_free(&c[j]);
    free(x);
    free(xs);
    st_reader_close(r);
    return rc;
}
