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
 * passes over all restarts (and how many of them the kept restart took),
 * and "inertia:" the kept fit's inertia (in the scaled space): bench/bench.py
 * reads both. --json prints the same facts as one JSON object.
 *
 * Under mpirun, every rank of strata-mpi runs the command: rank 0 reads
 * the file and prints, the others take their share of each fit's points
 * (ml/kmeans_dist.c), with the bits of one process.
 */
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "strata/buf.h"
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
            "                     [--log1p a,b] [--no-scale] [--json]\n"
            "\n"
            "Clusters the rows of a layer file on numeric columns (bool, int32, int64, float64)\n"
            "with k-means++ and Lloyd iterations. Rows with a NULL in a selected column are\n"
            "skipped. Features are z-scored (population std) unless --no-scale; --log1p applies\n"
            "log(1 + x) first to the named heavy-tailed columns. --k auto (default) fits every k\n"
            "of --k-range and keeps the one with the highest silhouette. Centroids are printed\n"
            "in original units. Same flags and seed give the same output for any --threads.\n"
            "  --columns a,b,c   the columns to cluster on (required; 1..16)\n"
            "  --k N|auto        clusters, or auto: every k of --k-range (default auto)\n"
            "  --k-range A..B    k range for --k auto (default 2..7)\n"
            "  --n-init N        k-means++ restarts; the lowest inertia is kept (default 10)\n"
            "  --max-iter N      Lloyd iterations per restart (default 300)\n"
            "  --tol X           relative centroid shift that stops a restart (default 1e-4)\n"
            "  --seed N          random seed (default 42)\n"
            "  --threads N       worker threads (default: online CPUs)\n"
            "  --log1p a,b       columns to transform with log(1 + x) before scaling\n"
            "  --no-scale        cluster on the raw values (no z-scores)\n"
            "  --json            print the result as one JSON object\n");
}

/* The command line, parsed. cols_arg and log_arg point into argv and are
 * split in place. */
typedef struct km_args {
    const char *path;
    char *cols_arg, *log_arg;
    bool k_auto, scale, json;
    int k, kmin, kmax;
    st_kmeans_opts o;
} km_args;

/* The selected columns, read: d names and n kept rows of each. */
typedef struct km_data {
    char *names[ST_ML_MAX_D];
    bool log1p[ST_ML_MAX_D];
    int d;
    double *vals[ST_ML_MAX_D];
    size_t n, skipped;
} km_data;

enum { K_COLUMNS, K_LOG1P, K_K, K_K_RANGE, K_N_INIT, K_MAX_ITER, K_TOL, K_SEED, K_THREADS, K_NO_SCALE, K_JSON, K_COUNT };
static const st_argspec km_flags[K_COUNT] = {
    [K_COLUMNS] = {"--columns", true}, [K_LOG1P] = {"--log1p", true},       [K_K] = {"--k", true},
    [K_K_RANGE] = {"--k-range", true}, [K_N_INIT] = {"--n-init", true},     [K_MAX_ITER] = {"--max-iter", true},
    [K_TOL] = {"--tol", true},         [K_SEED] = {"--seed", true},         [K_THREADS] = {"--threads", true},
    [K_NO_SCALE] = {"--no-scale", false}, [K_JSON] = {"--json", false},
};

/* One valued flag; false after a usage error. */
static bool km_value(const st_args *a, int f, const char *v, km_args *ka)
{
    long long x;
    switch (f) {
    case K_COLUMNS: ka->cols_arg = (char *)v; return true;
    case K_LOG1P: ka->log_arg = (char *)v; return true;
    case K_K:
        x = 0;
        if (!st_args_int_or(a, v, "auto", 1, ST_ML_MAX_K, &x, &ka->k_auto)) return false;
        ka->k = (int)x;
        return true;
    case K_K_RANGE: return st_args_range(a, v, 2, ST_ML_MAX_K, &ka->kmin, &ka->kmax);
    case K_N_INIT: if (!st_args_int(a, v, 1, 1000, &x)) return false; ka->o.n_init = (int)x; return true;
    case K_MAX_ITER: if (!st_args_int(a, v, 1, 1000000, &x)) return false; ka->o.max_iter = (int)x; return true;
    case K_TOL: return st_args_nonneg(a, v, &ka->o.tol);
    case K_SEED: return st_args_u64(a, v, &ka->o.seed);
    case K_THREADS: if (!st_args_int(a, v, 1, 64, &x)) return false; ka->o.threads = (int)x; return true;
    default: return false;
    }
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

/* Splits --columns and --log1p into kd; a usage error's exit code or 0. */
static int km_columns(const st_args *a, km_args *ka, km_data *kd)
{
    char *logs[ST_ML_MAX_D];
    kd->d = split_list(ka->cols_arg, kd->names, ST_ML_MAX_D);
    if (kd->d < 1) return st_args_error(a, "--columns expects 1..16 column names, comma separated");
    int nl = ka->log_arg ? split_list(ka->log_arg, logs, ST_ML_MAX_D) : 0;
    if (nl < 0) return st_args_error(a, "--log1p expects 1..16 column names, comma separated");
    for (int q = 0; q < nl; q++) {
        int hit = -1;
        for (int j = 0; j < kd->d; j++)
            if (!strcmp(logs[q], kd->names[j])) hit = j;
        if (hit < 0) return st_args_error(a, "--log1p: '%s' is not one of --columns", logs[q]);
        kd->log1p[hit] = true;
    }
    return 0;
}

/* Parses argv: -1 to go on, else the exit code (0 after --help). */
static int parse_kmeans(int argc, char **argv, km_args *ka, km_data *kd)
{
    st_args a;
    st_args_init(&a, "kmeans", argc, argv, km_flags, K_COUNT, usage);
    const char *v;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL && ka->path)
            return st_args_error(&a, "unexpected argument '%s': one FILE (see strata kmeans --help)", v);
        if (f == ST_ARGS_POSITIONAL) ka->path = v;
        else if (f == K_NO_SCALE) ka->scale = false;
        else if (f == K_JSON) ka->json = true;
        else if (!km_value(&a, f, v, ka)) return ST_ARGS_USAGE;
    }
    if (!ka->path) return st_args_error(&a, "missing FILE (see strata kmeans --help)");
    if (!ka->cols_arg) return st_args_error(&a, "--columns is required (see strata kmeans --help)");
    int rc = km_columns(&a, ka, kd);
    return rc ? rc : -1;
}

/* Resolves the column names to field indexes; numeric types only. */
static st_status km_fields(st_reader *r, const char *path, const km_data *kd, int *fidx, st_error *err)
{
    for (int j = 0; j < kd->d; j++) {
        fidx[j] = st_reader_find(r, kd->names[j]);
        if (fidx[j] < 0) return st_error_set(err, ST_ERR_SCHEMA, "%s: no column '%s'", path, kd->names[j]);
        st_type t = st_reader_field(r, (size_t)fidx[j])->type;
        if (t != ST_TYPE_BOOL && t != ST_TYPE_I32 && t != ST_TYPE_I64 && t != ST_TYPE_F64)
            return st_error_set(err, ST_ERR_SCHEMA, "%s: column '%s' is %s, not numeric", path, kd->names[j],
                                st_type_name(t));
    }
    return ST_OK;
}

/* Appends chunk c's rows to kd->vals, keeping the rows with every
 * selected column present; col is scratch. */
static st_status km_chunk(st_reader *r, const char *path, size_t c, const int *fidx, km_data *kd, st_column *col,
                          uint8_t *keep, st_error *err)
{
    uint32_t rows = st_reader_chunk_rows(r, c);
    memset(keep, 1, rows);
    size_t base = kd->n;
    for (int j = 0; j < kd->d; j++) {
        st_type t = st_reader_field(r, (size_t)fidx[j])->type;
        st_column_free(col);
        st_column_init(col, t);
        ST_TRY(st_reader_read_block(r, c, (size_t)fidx[j], col, err));
        if (col->n_rows != rows)
            return st_error_set(err, ST_ERR_CORRUPT, "%s: chunk %zu of '%s' has %zu rows, expected %u", path, c,
                                kd->names[j], col->n_rows, rows);
        for (uint32_t i = 0; i < rows; i++) {
            if (!st_column_valid(col, i)) keep[i] = 0;
            kd->vals[j][base + i] = t == ST_TYPE_F64   ? st_column_f64(col)[i]
                                    : t == ST_TYPE_I64 ? (double)st_column_i64(col)[i]
                                    : t == ST_TYPE_I32 ? (double)st_column_i32(col)[i]
                                                       : (double)st_column_bool(col)[i];
        }
    }
    size_t w = base;
    for (uint32_t i = 0; i < rows; i++) {
        if (!keep[i]) {
            kd->skipped++;
            continue;
        }
        for (int j = 0; j < kd->d; j++) kd->vals[j][w] = kd->vals[j][base + i];
        w++;
    }
    kd->n = w;
    return ST_OK;
}

/* Reads the selected columns of every chunk of r into kd. */
static st_status km_load(st_reader *r, const char *path, km_data *kd, st_error *err)
{
    int fidx[ST_ML_MAX_D];
    ST_TRY(km_fields(r, path, kd, fidx, err));
    uint64_t total = st_reader_n_rows(r);
    if (total > SIZE_MAX / sizeof(double) / ST_ML_MAX_D) return st_error_set(err, ST_ERR_NOMEM, "%s: too many rows", path);
    for (int j = 0; j < kd->d; j++)
        if (!(kd->vals[j] = malloc((size_t)(total ? total : 1) * sizeof **kd->vals)))
            return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
    uint8_t *keep = malloc(ST_CHUNK_ROWS);
    if (!keep) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
    st_column col;
    st_column_init(&col, ST_TYPE_F64);
    st_status s = ST_OK;
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        uint32_t rows = st_reader_chunk_rows(r, c);
        if (rows > ST_CHUNK_ROWS || kd->n + rows > total)
            s = st_error_set(err, ST_ERR_CORRUPT, "%s: chunk %zu has %u rows, more than the file holds or a chunk may",
                             path, c, rows);
        else s = km_chunk(r, path, c, fidx, kd, &col, keep, err);
    }
    st_column_free(&col);
    free(keep);
    if (s == ST_OK && kd->n == 0)
        s = st_error_set(err, ST_ERR_INVALID, "%s: no rows to cluster (%zu skipped for NULLs)", path, kd->skipped);
    return s;
}

/* The fit: what the printers show. */
typedef struct km_fit {
    int k;
    st_kmeans_result *km;
    double *orig;       /* k x d centroids in original units */
    st_kscore *scores;  /* kmax - kmin + 1 entries with --k auto, else NULL */
} km_fit;

static void print_text(const km_args *ka, const km_data *kd, const km_fit *f)
{
    const st_kmeans_result *km = f->km;
    int d = kd->d;
    printf("file: %s: %zu rows clustered, %zu skipped (NULL in a selected column)\n", ka->path, kd->n, kd->skipped);
    printf("features: %d (%s), kernel %s, threads %d\n", d, ka->scale ? "z-scored" : "not scaled", km->kernel,
           km->threads);
    printf("iterations: %ld Lloyd passes over %d restarts (%d of them in the kept restart)\n", km->total_iter,
           ka->o.n_init, km->n_iter);
    printf("inertia: %.10g (%s space)\n", km->inertia, ka->scale ? "scaled" : "original");
    printf("k: %d%s\n", f->k, ka->k_auto ? " (highest silhouette)" : "");
    printf("time: %.3f s (k-means++ %.3f s, Lloyd %.3f s)\n", km->seconds, km->init_seconds, km->lloyd_seconds);
    if (km->lloyd_seconds > 0)
        printf("throughput: %.1f M points/s/core/iter (Lloyd)\n",
               (double)kd->n * (double)km->total_iter / km->lloyd_seconds / km->threads / 1e6);
    printf("\ncluster %10s", "size");
    for (int j = 0; j < d; j++) printf(" %14s", kd->names[j]);
    printf("\n");
    for (int q = 0; q < f->k; q++) {
        printf("%7d %10lld", q, (long long)km->sizes[q]);
        for (int j = 0; j < d; j++) printf(" %14.6g", f->orig[(size_t)q * (size_t)d + (size_t)j]);
        printf("\n");
    }
    if (!f->scores) return;
    printf("\n%3s %14s %10s %12s %10s %s\n", "k", "inertia", "silhouette", "calinski_h", "davies_b", "");
    for (int q = 0; q <= ka->kmax - ka->kmin; q++)
        printf("%3d %14.6g %10.4f %12.6g %10.4f %s%s\n", f->scores[q].k, f->scores[q].inertia, f->scores[q].silhouette,
               f->scores[q].calinski_harabasz, f->scores[q].davies_bouldin, f->scores[q].is_knee ? " knee" : "",
               f->scores[q].k == f->k ? " chosen" : "");
}

static void json_num(st_buf *b, const char *key, double v)
{
    st_buf_printf(b, ", \"%s\": ", key);
    st_buf_json_f64(b, v);
}

static void print_json(const km_args *ka, const km_data *kd, const km_fit *f)
{
    const st_kmeans_result *km = f->km;
    st_buf b;
    st_buf_init(&b);
    st_buf_puts(&b, "{\"file\": ");
    st_buf_json_str(&b, ka->path, strlen(ka->path));
    st_buf_printf(&b, ", \"rows\": %zu, \"skipped\": %zu, \"features\": [", kd->n, kd->skipped);
    for (int j = 0; j < kd->d; j++) {
        if (j) st_buf_puts(&b, ", ");
        st_buf_json_str(&b, kd->names[j], strlen(kd->names[j]));
    }
    st_buf_printf(&b, "], \"scaled\": %s, \"kernel\": \"%s\", \"threads\": %d, \"k\": %d, \"k_auto\": %s, \"n_init\": %d, "
                      "\"total_iterations\": %ld, \"kept_restart_iterations\": %d",
                  ka->scale ? "true" : "false", km->kernel, km->threads, f->k, ka->k_auto ? "true" : "false",
                  ka->o.n_init, km->total_iter, km->n_iter);
    json_num(&b, "inertia", km->inertia);
    json_num(&b, "seconds", km->seconds);
    st_buf_puts(&b, ", \"clusters\": [");
    for (int q = 0; q < f->k; q++) {
        st_buf_printf(&b, "%s{\"cluster\": %d, \"size\": %lld, \"centroid\": {", q ? ", " : "", q, (long long)km->sizes[q]);
        for (int j = 0; j < kd->d; j++) {
            if (j) st_buf_puts(&b, ", ");
            st_buf_json_str(&b, kd->names[j], strlen(kd->names[j]));
            st_buf_puts(&b, ": ");
            st_buf_json_f64(&b, f->orig[(size_t)q * (size_t)kd->d + (size_t)j]);
        }
        st_buf_puts(&b, "}}");
    }
    st_buf_puts(&b, "]");
    if (f->scores) {
        st_buf_puts(&b, ", \"k_selection\": [");
        for (int q = 0; q <= ka->kmax - ka->kmin; q++) {
            const st_kscore *sc = &f->scores[q];
            st_buf_printf(&b, "%s{\"k\": %d", q ? ", " : "", sc->k);
            json_num(&b, "inertia", sc->inertia);
            json_num(&b, "silhouette", sc->silhouette);
            json_num(&b, "calinski_harabasz", sc->calinski_harabasz);
            json_num(&b, "davies_bouldin", sc->davies_bouldin);
            st_buf_printf(&b, ", \"is_knee\": %s, \"is_chosen\": %s}", sc->is_knee ? "true" : "false",
                          sc->k == f->k ? "true" : "false");
        }
        st_buf_puts(&b, "]");
    }
    st_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    st_buf_free(&b);
}

/* Scales kd, picks k (--k auto) and fits; fills f (caller frees it). */
static st_status km_run(km_args *ka, const km_data *kd, km_fit *f, st_error *err)
{
    size_t n = kd->n, d = (size_t)kd->d;
    float *xs = malloc(n * d * sizeof *xs);
    st_status s = ST_OK;
    st_scaler sc;
    if (!xs) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", ka->path);
    if ((s = st_scaler_fit_transform_cols(&sc, (const double *const *)kd->vals, n, d, (const char *const *)kd->names,
                                          kd->log1p, ka->scale, xs, d, err)) != ST_OK)
        goto done;
    f->k = ka->k;
    if (ka->k_auto) {
        if ((size_t)ka->kmax > n) ka->kmax = (int)n;
        if (ka->kmax < ka->kmin) {
            s = st_error_set(err, ST_ERR_INVALID, "%zu rows are too few for --k-range %d..", n, ka->kmin);
            goto done;
        }
        if (!(f->scores = calloc((size_t)(ka->kmax - ka->kmin + 1), sizeof *f->scores))) goto nomem;
        if ((s = st_kselect(xs, n, d, ka->kmin, ka->kmax, &ka->o, f->scores, &f->k, err)) != ST_OK) goto done;
    }
    ka->o.k = f->k;
    if ((s = st_kmeans_fit(xs, n, d, &ka->o, &f->km, err)) != ST_OK) goto done;
    if (!(f->orig = malloc((size_t)f->k * d * sizeof *f->orig))) goto nomem;
    for (int q = 0; q < f->k; q++) st_scaler_inverse(&sc, f->km->centroids + (size_t)q * d, f->orig + (size_t)q * d);
    goto done;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", ka->path);
done:
    free(xs);
    return s;
}

int st_cmd_kmeans(int argc, char **argv)
{
    km_args ka = {.k_auto = true, .scale = true, .kmin = 2, .kmax = 7};
    km_data kd;
    memset(&kd, 0, sizeof kd);
    st_kmeans_opts_default(&ka.o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    ka.o.threads = nproc > 0 && nproc < 64 ? (int)nproc : 1;
    int rc = parse_kmeans(argc, argv, &ka, &kd);
    if (rc >= 0) return rc;
    st_error err = {0};
    /* strata-mpi under mpirun: rank 0 reads the file and runs the command,
     * the other ranks serve its fits (ml/kmeans_dist.c) and exit with its
     * outcome once it has printed it */
    if (st_dist_rank() != 0) {
        st_status fs = st_kmeans_follow(&err);
        st_dist_barrier();
        return fs == ST_OK ? 0 : st_status_exit_code(fs);
    }
    st_kmeans_serve_begin();
    st_reader *r = NULL;
    km_fit f = {0};
    st_status s = st_warehouse_check_pending(ka.path, &err); /* never half a publish */
    if (s == ST_OK) s = st_reader_open(&r, ka.path, &err);
    if (s == ST_OK) s = km_load(r, ka.path, &kd, &err);
    if (s == ST_OK) s = km_run(&ka, &kd, &f, &err);
    if (s == ST_OK && ka.json) print_json(&ka, &kd, &f);
    else if (s == ST_OK) print_text(&ka, &kd, &f);
    for (int j = 0; j < ST_ML_MAX_D; j++) free(kd.vals[j]);
    free(f.orig);
    free(f.scores);
    st_kmeans_result_free(f.km);
    st_reader_close(r);
    st_kmeans_serve_end(s, &err);
    if (s != ST_OK) fprintf(stderr, "strata kmeans: %s\n", err.msg);
    st_dist_barrier();
    return s == ST_OK ? 0 : st_status_exit_code(s);
}
