/*
 * ml.h: segmentation: feature scaling, k-means, choosing k, personas.
 *
 * Points are float32, row-major n x d (1 <= d <= 16); all accumulation is
 * float64. Results are deterministic: the same input, options and seed
 * give the same centroids and labels whatever the thread count and
 * whatever SIMD kernel the CPU selects (scalar, AVX2 or AVX-512; the
 * scalar kernel is the specification, STRATA_FORCE_SCALAR=1 forces it).
 */
#ifndef STRATA_ML_H
#define STRATA_ML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_ML_MAX_D 16
#define ST_ML_MAX_K 64

/* Feature preparation: an optional log1p per feature (for heavy-tailed
 * quantities), then z-scores with the population standard deviation (as
 * scikit-learn's StandardScaler). A zero-variance feature scales to 0 (its
 * std is stored as 1), never NaN. The parameters are kept so centroids can
 * be shown back in original units (st_scaler_inverse). */
typedef struct st_scaler {
    size_t d;
    double mean[ST_ML_MAX_D];   /* of the (log1p'd) feature; 0 when not scaled */
    double std[ST_ML_MAX_D];    /* population std; 1 for a constant feature or when not scaled */
    bool log1p[ST_ML_MAX_D];
    bool scaled;                /* false: only log1p was applied */
} st_scaler;

/* Fits the scaler on x (n x d doubles, row-major) and writes the scaled
 * points to out (n x d floats, row-major, caller-allocated). NaN/inf, or a
 * value <= -1 under log1p, is ST_ERR_INVALID naming the feature and row. */
st_status st_scaler_fit_transform(st_scaler *sc, const double *x, size_t n, size_t d, const bool *log1p, float *out,
                                  st_error *err) ST_MUST_USE;

/* The same from column arrays: cols[j] holds the n values of feature j
 * (borrowed for the call); names[j] (names or names[j] may be NULL) names
 * the feature in error messages. scale = false skips the z-scores (log1p
 * still applies). Output row i is out[i * out_stride .. + d), out_stride
 * >= d (padding floats are left untouched). */
st_status st_scaler_fit_transform_cols(st_scaler *sc, const double *const *cols, size_t n, size_t d,
                                       const char *const *names, const bool *log1p, bool scale, float *out,
                                       size_t out_stride, st_error *err) ST_MUST_USE;

/* Scales one point x (d doubles) with fitted parameters exactly as the fit
 * scaled its own points: log1p where set, then (v - mean) / std, rounded
 * to float32 (strata score uses it to place new points). */
void st_scaler_transform_row(const st_scaler *sc, const double *x, float *out);

/* The fitted parameters as text for a file's metadata: mean and std as
 * comma-separated %.17g (exact when read back), log1p as comma-separated
 * 0/1. Buffers: 26 * d, 26 * d and 2 * d bytes. */
void st_scaler_params_text(const st_scaler *sc, char *mean, char *std, char *log1p_flags);

/* Reads what st_scaler_params_text() wrote for d features into sc
 * (scaled = true). ST_ERR_INVALID when a list has another length or a
 * value that is not a finite number (std must be > 0). */
st_status st_scaler_params_parse(st_scaler *sc, size_t d, const char *mean, const char *std,
                                 const char *log1p_flags, st_error *err) ST_MUST_USE;

/* One scaled d-vector back to original units (inverse z-score, then expm1
 * for log1p features). */
void st_scaler_inverse(const st_scaler *sc, const double *scaled_row, double *orig_row);

typedef struct st_kmeans_opts {
    int k;          /* clusters, 1..64 (default 3) */
    int n_init;     /* restarts, best inertia kept (default 10) */
    int max_iter;   /* Lloyd iterations per restart (default 300) */
    double tol;     /* relative tolerance as in scikit-learn (default 1e-4) */
    uint64_t seed;  /* (default 42) */
    int threads;    /* worker threads (default 1) */
} st_kmeans_opts;
void st_kmeans_opts_default(st_kmeans_opts *o);

typedef struct st_kmeans_result {
    int k;
    size_t d, n;
    double *centroids;  /* k x d, scaled space */
    int32_t *labels;    /* n */
    int64_t *sizes;     /* k */
    double inertia;     /* sum of squared distances to the assigned centroid */
    int n_iter;         /* Lloyd iterations of the kept restart */
    long total_iter;    /* Lloyd passes over all restarts (final E-steps excluded) */
    int threads;        /* threads actually used */
    double init_seconds;  /* wall time in k-means++ (all restarts) */
    double lloyd_seconds; /* wall time in Lloyd iterations (all restarts) */
    double seconds;       /* wall time of the whole fit */
    const char *kernel;   /* "scalar", "avx2" or "avx512" (static string) */
} st_kmeans_result;

/* Distinct rows among the n points x[n][d], counted up to `limit` (the
 * count stops there): O(n * limit * d), no allocation beyond limit row
 * indices (ST_ERR_NOMEM-free: returns min(distinct, limit), and limit
 * capped at ST_ML_MAX_K). k-means with more clusters than distinct points
 * would leave some empty, so callers lower k to this first. */
size_t st_kmeans_distinct_points(const float *x, size_t n, size_t d, size_t limit);

/* k-means++ (greedy, 2 + floor(ln k) trials per centre) then Lloyd, n_init
 * times; keeps the lowest inertia. Caller owns *out (free with
 * st_kmeans_result_free). n < k, bad d/k, NaN in x: ST_ERR_INVALID. */
st_status st_kmeans_fit(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_kmeans_result **out,
                        st_error *err) ST_MUST_USE;
void st_kmeans_result_free(st_kmeans_result *r);

/* k-means across the ranks of a world (ml/kmeans_dist.c; a world of one
 * in the plain binary). In `strata-mpi run` (and `kmeans`), rank 0 calls
 * st_kmeans_serve_begin() before the pipeline: from then on each of its
 * st_kmeans_fit() calls splits the points over every rank (each receives
 * its blocks of them; the labels come back to rank 0), while the other
 * ranks are in st_kmeans_follow(); st_kmeans_serve_end(s, err) ends their
 * wait, and st_kmeans_follow() returns s with err's message. The result
 * is the same bits for any number of ranks. */
void st_kmeans_serve_begin(void);
void st_kmeans_serve_end(st_status s, const st_error *err);
st_status st_kmeans_follow(st_error *err) ST_MUST_USE;

/* Other SPMD work in the same follower loop. A task is a kind and a plan
 * (len bytes from rank 0; every rank gets a copy); fn runs it on one rank:
 * with the caller's arg on rank 0, with arg NULL on the followers, and
 * returns that rank's status (it may stop early, returning ST_OK, when a
 * collective told it another rank failed). st_kmeans_on_task() registers
 * the followers' fn (call on every rank before st_kmeans_follow()).
 * st_kmeans_task() on rank 0: while serving, sends the task to the
 * followers; then runs fn here, and every rank ends with st_dist_agree():
 * the status of the lowest failing rank, with its message, everywhere.
 * Outside a served run it just runs fn. st_kmeans_serving(): rank 0 of a
 * world of more than one rank, between serve_begin and serve_end. */
typedef st_status (*st_task_fn)(int32_t kind, const void *plan, size_t len, void *arg, st_error *err);
void st_kmeans_on_task(st_task_fn fn);
bool st_kmeans_serving(void);
st_status st_kmeans_task(int32_t kind, const void *plan, size_t len, st_task_fn fn, void *arg,
                         st_error *err) ST_MUST_USE;

/* Labels n points (x row-major, n x d floats) with their nearest of the k
 * centres (k x d doubles, as st_kmeans_result.centroids and the
 * `f__scaled` columns of platinum.ml_centroids hold them), through the
 * kernel st_kmeans_fit() uses for its final assignment: centres rounded to
 * float32, float32 distances, ties to the lowest index. Points a model was
 * fitted on get the labels of the fit. labels: n entries, caller-owned.
 * ST_ERR_NOMEM, or ST_ERR_INVALID for d or k out of range. */
st_status st_kmeans_assign(const float *x, size_t n, size_t d, const double *centroids, int k, int32_t *labels,
                           st_error *err) ST_MUST_USE;

/* Kernel selection for tests: 0 scalar, 1 AVX2, 2 AVX-512, -1 automatic.
 * Returns false when the CPU lacks the requested kernel. Automatic means:
 * STRATA_FORCE_SCALAR=1 forces scalar; STRATA_KMEANS_KERNEL=scalar|avx2|
 * avx512 asks for one (when the CPU has it); else the widest the CPU has.
 * Every kernel gives bit-identical results; only speed differs. */
bool st_kmeans_force_kernel(int level);
/* Name of the kernel in use: "scalar", "avx2" or "avx512". */
const char *st_kmeans_kernel_name(void);

typedef struct st_kscore {
    int k;
    double inertia, silhouette, calinski_harabasz, davies_bouldin;
    bool is_knee;
} st_kscore;

/* Fits every k in k_min..k_max (2 <= k_min <= k_max <= n) with o's
 * n_init/max_iter/tol/seed and scores it; scores has k_max-k_min+1
 * entries. Silhouette is exact up to 20,000 points, else computed on a
 * seeded sample of 20,000. The knee is found with the Kneedle rule on the
 * inertia curve. *best_k is the k with the highest silhouette. */
st_status st_kselect(const float *x, size_t n, size_t d, int k_min, int k_max, const st_kmeans_opts *o,
                     st_kscore *scores, int *best_k, st_error *err) ST_MUST_USE;

/* Knee of a decreasing inertia curve (inertia[0..n) for consecutive k),
 * Kneedle style: both axes scaled to [0, 1], the knee is the interior
 * point farthest above the chord from the first to the last point (largest
 * difference curve value, ties to the smaller k), none if no point lies
 * above the chord or n < 3. is_knee[0..n) receives at most one true. */
void st_kselect_knee(const double *inertia, int n, bool *is_knee);

/* Names clusters from their centroids in original units (rule: see
 * st_persona_rule_text()). names[c] receives a NUL-terminated name. */
void st_persona_name(const char *const *features, size_t d, const double *centroids_orig, const int64_t *sizes, int k,
                     char names[][64]);
/* The naming rule in plain English. */
const char *st_persona_rule_text(void);
/* Override file: lines "<cluster> = <name>", '#' comments, blank lines.
 * Strict: errors name the file and line. Applies to names[0..k). */
st_status st_persona_map_parse(const char *text, size_t len, const char *fname, int k, char names[][64],
                               st_error *err) ST_MUST_USE;
st_status st_persona_map_load(const char *path, int k, char names[][64], st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
