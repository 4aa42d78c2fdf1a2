/*
 * cmd_kmeans.c: `strata kmeans FILE --columns a,b,c ...`: clusters numeric
 * columns of any layer file and prints the centroids in original units.
 *
 * Columns may be bool, int32, int64 or float64; they are read chunk by
 * chunk through the reader API (strata/file.h) into float64 columns. A row
 * with a NULL in any selected column is skipped (and counted in the
 * output), since there is no neutral value to impute for a clustering.
 * Then log1p (--log1p), z-scores (unless --no-scale), k-means (or k
 * selection with --k auto, the default) from libstrata's ml module.
 *
 * The first line starting "iterations:" gives the total number of Lloyd
 * passes over all restarts, and "inertia:" the kept fit's inertia (in the
 * scaled space): bench/bench.py reads both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/cli.h"
#include "strata/column.h"
#include "strata/file.h"
#include "strata/ml.h"
#include "strata/warehouse.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata kmeans FILE --columns a,b,c [--k N|auto] [--k-range 2..7] [--n-init 10]\n"
            "                     [--max-iter 300] [--tol 1e-4] [--seed N] [--threads N]\n"
            "                     [--log1p a,b] [--no-scale]\n"
            "\n"
            "Clusters the rows of a layer file on numeric columns (bool, int32, int64, float64)\n"
            "with k-means++ and Lloyd iterations. Rows with a NULL in a selected column are\n"
            "skipped. Features are z-scored (population std) unless --no-scale; --log1p applies\n"
            "log(1 + x) first to the named heavy-tailed columns. --k auto (default) fits every k\n"
            "of --k-range and keeps the one with the highest silhouette. Centroids are printed\n"
            "in original units. Same flags and seed give the same output for any --threads.\n");
}

static int fail(st_status s, const char *msg)
{
    fprintf(stderr, "strata kmeans: %s\n", msg);
    return st_status_exit_code(s);
}

/* Splits a comma list in place; returns the number of names (<= max) or -1. */
static int split_list(char *s, char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max || !*tok) return -1;
        out[n++] = tok;
    }
    return n;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int st_cmd_kmeans(int argc, char **argv)
{
    const char *path = NULL;
    char *cols_arg = NULL, *log_arg = NULL;
    bool k_auto = true, scale = true;
    long k = 0, kmin = 2, kmax = 7;
    st_kmeans_opts o;
    st_kmeans_opts_default(&o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = nproc > 0 && nproc < 64 ? (int)nproc : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long t;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-scale")) {
            scale = false;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!v) {
                fprintf(stderr, "strata kmeans: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--columns")) cols_arg = argv[i];
            else if (!strcmp(a, "--log1p")) log_arg = argv[i];
            else if (!strcmp(a, "--k")) {
                if (!strcmp(v, "auto")) k_auto = true;
                else if (parse_int(v, 1, ST_ML_MAX_K, &k)) k_auto = false;
                else return fail(ST_ERR_INVALID, "--k must be 1..64 or auto");
            } else if (!strcmp(a, "--k-range")) {
                const char *dots = strstr(v, "..");
                char lo[32];
                if (!dots || (size_t)(dots - v) >= sizeof lo) return fail(ST_ERR_INVALID, "--k-range must look like 2..7");
                memcpy(lo, v, (size_t)(dots - v));
                lo[dots - v] = '\0';
                if (!parse_int(lo, 2, ST_ML_MAX_K, &kmin) || !parse_int(dots + 2, 2, ST_ML_MAX_K, &kmax) || kmax < kmin)
                    return fail(ST_ERR_INVALID, "--k-range must be A..B with 2 <= A <= B <= 64");
            } else if (!strcmp(a, "--n-init")) {
                if (!parse_int(v, 1, 1000, &t)) return fail(ST_ERR_INVALID, "--n-init must be 1..1000");
                o.n_init = (int)t;
            } else if (!strcmp(a, "--max-iter")) {
                if (!parse_int(v, 1, 1000000, &t)) return fail(ST_ERR_INVALID, "--max-iter must be 1..1000000");
                o.max_iter = (int)t;
            } else if (!strcmp(a, "--tol")) {
                char *end;
                o.tol = strtod(v, &end);
                if (!*v || *end || !(o.tol >= 0)) return fail(ST_ERR_INVALID, "--tol must be a number >= 0");
            } else if (!strcmp(a, "--seed")) {
                char *end;
                o.seed = strtoull(v, &end, 10);
                if (!*v || *end) return fail(ST_ERR_INVALID, "--seed must be an unsigned integer");
            } else if (!strcmp(a, "--threads")) {
                if (!parse_int(v, 1, 64, &t)) return fail(ST_ERR_INVALID, "--threads must be 1..64");
                o.threads = (int)t;
            } else {
                fprintf(stderr, "strata kmeans: unknown flag '%s' (see --help)\n", a);
                return 2;
            }
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "strata kmeans: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path || !cols_arg) {
        usage(stderr);
        return 2;
    }
    char *names[ST_ML_MAX_D], *logs[ST_ML_MAX_D];
    int d = split_list(cols_arg, names, ST_ML_MAX_D);
    if (d < 1) return fail(ST_ERR_INVALID, "--columns must name 1..16 columns, comma separated");
    int nl = log_arg ? split_list(log_arg, logs, ST_ML_MAX_D) : 0;
    if (nl < 0) return fail(ST_ERR_INVALID, "--log1p must name 1..16 columns, comma separated");
    bool lg[ST_ML_MAX_D] = {false};
    for (int q = 0; q < nl; q++) {
        int hit = -1;
        for (int j = 0; j < d; j++)
            if (!strcmp(logs[q], names[j])) hit = j;
        if (hit < 0) {
            fprintf(stderr, "strata kmeans: --log1p: '%s' is not one of --columns\n", logs[q]);
            return 2;
        }
        lg[hit] = true;
    }

    st_error err = {0};
    st_status s = ST_OK;
    st_reader *r = NULL;
    st_column col;
    st_column_init(&col, ST_TYPE_F64);
    double *vals[ST_ML_MAX_D] = {NULL};
    float *xs = NULL;
    double *orig = NULL;
    st_kmeans_result *km = NULL;
    st_kscore *scores = NULL;
    int fidx[ST_ML_MAX_D];
    size_t n = 0, skipped = 0;
    if ((s = st_warehouse_check_pending(path, &err)) != ST_OK) goto done; /* never half a publish */
    if ((s = st_reader_open(&r, path, &err)) != ST_OK) goto done;
    for (int j = 0; j < d; j++) {
        fidx[j] = st_reader_find(r, names[j]);
        if (fidx[j] < 0) {
            s = st_error_set(&err, ST_ERR_SCHEMA, "%s: no column '%s'", path, names[j]);
            goto done;
        }
        st_type t = st_reader_field(r, (size_t)fidx[j])->type;
        if (t != ST_TYPE_BOOL && t != ST_TYPE_I32 && t != ST_TYPE_I64 && t != ST_TYPE_F64) {
            s = st_error_set(&err, ST_ERR_SCHEMA, "%s: column '%s' is %s, not numeric", path, names[j], st_type_name(t));
            goto done;
        }
    }
    uint64_t total = st_reader_n_rows(r);
    if (total > SIZE_MAX / sizeof(double) / ST_ML_MAX_D) {
        s = st_error_set(&err, ST_ERR_NOMEM, "%s: too many rows", path);
        goto done;
    }
    for (int j = 0; j < d; j++)
        if (!(vals[j] = malloc((size_t)(total ? total : 1) * sizeof **vals))) goto nomem;
    /* chunk by chunk; a row is kept when every selected column is present */
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        uint32_t rows = st_reader_chunk_rows(r, c);
        uint8_t *keep = malloc(rows ? rows : 1);
        if (!keep) goto nomem;
        memset(keep, 1, rows);
        size_t base = n;
        for (int j = 0; j < d && s == ST_OK; j++) {
            st_type t = st_reader_field(r, (size_t)fidx[j])->type;
            st_column_free(&col);
            st_column_init(&col, t);
            if ((s = st_reader_read_block(r, c, (size_t)fidx[j], &col, &err)) != ST_OK) break;
            if (col.n_rows != rows) {
                s = st_error_set(&err, ST_ERR_CORRUPT, "%s: chunk %zu of '%s' has %zu rows, expected %u", path, c,
                                 names[j], col.n_rows, rows);
                break;
            }
            size_t at = base;
            for (uint32_t i = 0; i < rows; i++) {
                if (!st_column_valid(&col, i)) keep[i] = 0;
                double v = t == ST_TYPE_F64   ? st_column_f64(&col)[i]
                           : t == ST_TYPE_I64 ? (double)st_column_i64(&col)[i]
                           : t == ST_TYPE_I32 ? (double)st_column_i32(&col)[i]
                                              : (double)st_column_bool(&col)[i];
                vals[j][at++] = v;
            }
        }
        if (s != ST_OK) {
            free(keep);
            goto done;
        }
        /* compact the kept rows of this chunk */
        size_t w = base;
        for (uint32_t i = 0; i < rows; i++) {
            if (!keep[i]) {
                skipped++;
                continue;
            }
            for (int j = 0; j < d; j++) vals[j][w] = vals[j][base + i];
            w++;
        }
        n = w;
        free(keep);
    }
    if (n == 0) {
        s = st_error_set(&err, ST_ERR_INVALID, "%s: no rows to cluster (%zu skipped for NULLs)", path, skipped);
        goto done;
    }
    if (!(xs = malloc(n * (size_t)d * sizeof *xs))) goto nomem;
    st_scaler sc;
    if ((s = st_scaler_fit_transform_cols(&sc, (const double *const *)vals, n, (size_t)d, (const char *const *)names,
                                          lg, scale, xs, (size_t)d, &err)) != ST_OK)
        goto done;
    int best_k = (int)k;
    if (k_auto) {
        if ((size_t)kmax > n) kmax = (long)n;
        if (kmax < kmin) {
            s = st_error_set(&err, ST_ERR_INVALID, "%zu rows are too few for --k-range %ld..", n, kmin);
            goto done;
        }
        if (!(scores = calloc((size_t)(kmax - kmin + 1), sizeof *scores))) goto nomem;
        if ((s = st_kselect(xs, n, (size_t)d, (int)kmin, (int)kmax, &o, scores, &best_k, &err)) != ST_OK) goto done;
    }
    o.k = best_k;
    if ((s = st_kmeans_fit(xs, n, (size_t)d, &o, &km, &err)) != ST_OK) goto done;
    if (!(orig = malloc((size_t)best_k * (size_t)d * sizeof *orig))) goto nomem;
    for (int q = 0; q < best_k; q++) st_scaler_inverse(&sc, km->centroids + (size_t)q * (size_t)d, orig + (size_t)q * (size_t)d);

    printf("file: %s: %zu rows clustered, %zu skipped (NULL in a selected column)\n", path, n, skipped);
    printf("features: %d (%s), kernel %s, threads %d\n", d, scale ? "z-scored" : "not scaled", km->kernel, km->threads);
    printf("iterations: %ld Lloyd passes over %d restarts (kept restart: %d)\n", km->total_iter, o.n_init, km->n_iter);
    printf("inertia: %.10g (%s space)\n", km->inertia, scale ? "scaled" : "original");
    printf("k: %d%s\n", best_k, k_auto ? " (highest silhouette)" : "");
    printf("time: %.3f s (k-means++ %.3f s, Lloyd %.3f s)\n", km->seconds, km->init_seconds, km->lloyd_seconds);
    if (km->lloyd_seconds > 0)
        printf("throughput: %.1f M points/s/core/iter (Lloyd)\n",
               (double)n * (double)km->total_iter / km->lloyd_seconds / km->threads / 1e6);
    printf("\ncluster %10s", "size");
    for (int j = 0; j < d; j++) printf(" %14s", names[j]);
    printf("\n");
    for (int q = 0; q < best_k; q++) {
        printf("%7d %10lld", q, (long long)km->sizes[q]);
        for (int j = 0; j < d; j++) printf(" %14.6g", orig[(size_t)q * (size_t)d + (size_t)j]);
        printf("\n");
    }
    if (k_auto) {
        printf("\n%3s %14s %10s %12s %10s %s\n", "k", "inertia", "silhouette", "calinski_h", "davies_b", "");
        for (long q = 0; q <= kmax - kmin; q++)
            printf("%3d %14.6g %10.4f %12.6g %10.4f %s%s\n", scores[q].k, scores[q].inertia, scores[q].silhouette,
                   scores[q].calinski_harabasz, scores[q].davies_bouldin, scores[q].is_knee ? " knee" : "",
                   scores[q].k == best_k ? " chosen" : "");
    }
    goto done;
nomem:
    s = st_error_set(&err, ST_ERR_NOMEM, "%s: out of memory", path);
done:
    st_column_free(&col);
    for (int j = 0; j < ST_ML_MAX_D; j++) free(vals[j]);
    free(xs);
    free(orig);
    free(scores);
    st_kmeans_result_free(km);
    st_reader_close(r);
    if (s != ST_OK) return fail(s, err.msg);
    return 0;
}
