/*
 * step_ml.c: gold features -> segmentation products.
 *
 *   ml_k_selection    per k of the range: inertia, silhouette, Calinski-Harabasz,
 *                     Davies-Bouldin, the knee and the chosen k
 *   ml_centroids      per cluster: persona, size, centroid scaled and in original units
 *   fct_transactions  int_customer_analytics + cluster + persona, same rows and order
 *
 * Every active customer-period is one point; the features (default:
 * total_sold_quantity, foc_ratio, total_sold_transactions) are optionally
 * log1p'd, z-scored (ml/scale.c) and clustered with k-means (ml/kmeans.c);
 * clusters are named from their centroids in original units by the rule
 * in ml/persona.c, or by the user's --persona-map file. Periods without
 * activity never reach this step: the marts call them "Not Active".
 *
 * Memory: k-means needs every point at once, nothing else does. Pass 1
 * reads gold's feature columns only, one feature at a time, chunk by
 * chunk, into that feature's doubles (8 bytes per customer-month, freed
 * before clustering) and scales them straight into the float32 points
 * (4d bytes); the scaler treats each feature on its own, so this gives the
 * bits of scaling an n x d double matrix. After the fit only the labels
 * (int32, from the fit) are kept; pass 2 re-reads gold chunk by chunk and
 * writes fct_transactions chunk by chunk (the writer cuts chunks by row
 * count, so the bytes are those of one big write). The peak is inside ml/
 * during k selection: the points, kselect.c's sample permutation (a size_t
 * per point) and, per fit, kmeans.c's column-major copy, two label arrays
 * and the distances to the closest centre: 8d + 20 bytes per
 * customer-month (44 at d = 3; 616 MB for 13.8M customer-months, where
 * holding the 12 gold columns and the output columns took 2.11 GB).
 */
#include "pipeline_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strata/ml.h"

#define MAX_FEATURES 16

static const char *const gold_names[] = {
    "customer_id", "year", "month", "period_key", "total_sold_quantity", "total_foc_quantity", "foc_ratio",
    "total_sold_transactions", "total_foc_transactions", "median_sold_order_size", "median_foc_order_size",
    "unique_materials"};
#define N_GOLD 12

/* Splits a comma list into names (pointers into buf). */
static size_t split(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (*tok) out[n++] = tok;
    }
    return n;
}

static double num_at(const st_column *c, size_t i)
{
    switch (c->type) {
    case ST_TYPE_BOOL: return st_column_bool(c)[i];
    case ST_TYPE_I32: return st_column_i32(c)[i];
    case ST_TYPE_I64: return (double)st_column_i64(c)[i];
    case ST_TYPE_F64: return st_column_f64(c)[i];
    default: return NAN;
    }
}

/* Reads column `col` of r, chunk by chunk, into v[0..n) as doubles (a NULL
 * counts as 0: a median of no lines). blk is the caller's scratch column
 * of the field's type. n must be st_reader_n_rows(r). */
static st_status read_feature(st_reader *r, size_t col, st_column *blk, double *v, size_t n, st_error *err)
{
    size_t at = 0;
    for (size_t ch = 0; ch < st_reader_n_chunks(r); ch++) {
        ST_TRY(st_reader_read_block(r, ch, col, blk, err));
        if (blk->n_rows > n - at)
            return st_error_set(err, ST_ERR_CORRUPT, "gold.int_customer_analytics: chunk %zu has more rows than the file",
                                ch);
        for (size_t i = 0; i < blk->n_rows; i++) v[at + i] = st_column_valid(blk, i) ? num_at(blk, i) : 0.0;
        at += blk->n_rows;
    }
    if (at != n)
        return st_error_set(err, ST_ERR_CORRUPT, "gold.int_customer_analytics: chunks hold %zu rows, the file says %zu",
                            at, n);
    return ST_OK;
}

/* Fits the scaler and fills xs (n x d floats, row-major) one feature at a
 * time: feature j is read from gold into v (n doubles, the caller's) and
 * scaled into column j of xs. The scaler treats every feature on its own,
 * so this gives the same bits as scaling an n x d double matrix, with one
 * feature's doubles in memory instead of d. */
static st_status scale_features(st_reader *r, const size_t *ix, const int *fcol, const char *const *feat,
                                const bool *lg, size_t d, st_column *blk, double *v, size_t n, st_scaler *sc,
                                float *xs, st_error *err)
{
    memset(sc, 0, sizeof *sc);
    sc->d = d;
    sc->scaled = true;
    for (size_t j = 0; j < d; j++) {
        ST_TRY(read_feature(r, ix[fcol[j]], &blk[fcol[j]], v, n, err));
        st_scaler one;
        const double *cols[1] = {v};
        ST_TRY(st_scaler_fit_transform_cols(&one, cols, n, 1, &feat[j], &lg[j], true, xs + j, d, err));
        sc->mean[j] = one.mean[0];
        sc->std[j] = one.std[0];
        sc->log1p[j] = one.log1p[0];
    }
    return ST_OK;
}

/* Writes platinum.fct_transactions: gold's rows chunk by chunk, each with
 * its cluster labels[i] and that cluster's persona. Holds one chunk of the
 * 12 gold columns (g, the caller's, typed as the file) and of the two new
 * ones. n rows in all; labels may be NULL when n == 0. */
static st_status write_fct(st_run_ctx *ctx, uint64_t fp, st_reader *r, const size_t *ix, st_column *g,
                           const int32_t *labels, const char (*names)[64], int k, size_t n, st_error *err)
{
    st_field ff[N_GOLD + 2];
    for (int j = 0; j < N_GOLD; j++) ff[j] = *st_reader_field(r, ix[j]);
    ff[N_GOLD] = (st_field){"cluster", ST_TYPE_I32, false, "k-means cluster of the customer-period"};
    ff[N_GOLD + 1] = (st_field){"persona", ST_TYPE_STR, false, "persona of the cluster"};
    static const char *const in_f[] = {"gold.int_customer_analytics", "platinum.ml_centroids"};
    size_t name_len[ST_ML_MAX_K];
    for (int c = 0; c < k && c < ST_ML_MAX_K; c++) name_len[c] = strlen(names[c]);
    st_column all[N_GOLD + 2];
    st_column_init(&all[N_GOLD], ST_TYPE_I32);
    st_column_init(&all[N_GOLD + 1], ST_TYPE_STR);
    st_writer *w = NULL;
    size_t at = 0;
    st_status s = st_table_create(ctx, "platinum", "fct_transactions", ff, N_GOLD + 2, in_f, 2, "", fp, NULL, 0, &w, err);
    for (size_t ch = 0; s == ST_OK && ch < st_reader_n_chunks(r); ch++) {
        size_t rows = st_reader_chunk_rows(r, ch);
        if (rows > n - at) {
            s = st_error_set(err, ST_ERR_CORRUPT, "gold.int_customer_analytics: chunk %zu has more rows than the file", ch);
            break;
        }
        for (int j = 0; j < N_GOLD && s == ST_OK; j++) s = st_reader_read_block(r, ch, ix[j], &g[j], err);
        st_column_reset(&all[N_GOLD]);
        st_column_reset(&all[N_GOLD + 1]);
        for (size_t i = 0; i < rows && s == ST_OK; i++) {
            int c = labels[at + i];
            s = st_column_push_i32(&all[N_GOLD], c);
            if (s == ST_OK) s = st_column_push_str(&all[N_GOLD + 1], names[c], name_len[c]);
        }
        if (s != ST_OK) break;
        memcpy(all, g, N_GOLD * sizeof *g);
        s = st_writer_write(w, all, 0, rows, err);
        at += rows;
    }
    if (s == ST_OK && at != n)
        s = st_error_set(err, ST_ERR_CORRUPT, "gold.int_customer_analytics: chunks hold %zu rows, the file says %zu", at,
                         n);
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
    st_writer_abort(w);
    st_column_free(&all[N_GOLD]);
    st_column_free(&all[N_GOLD + 1]);
    return s;
}

/* The step's state: what st_step_ml owns between its parts, freed by
 * ml_free(). The feature names point into fbuf, the --log1p names into
 * lbuf. */
typedef struct {
    st_run_ctx *ctx;
    uint64_t fp;
    char fbuf[1024], lbuf[1024];
    const char *feat[MAX_FEATURES], *logs[MAX_FEATURES];
    size_t d, nl;           /* features, --log1p names */
    int fcol[MAX_FEATURES]; /* feat[j] is gold_names[fcol[j]] */
    bool lg[MAX_FEATURES];  /* feat[j] is log1p'd */
    st_reader *r;           /* gold.int_customer_analytics */
    size_t ix[N_GOLD];      /* gold_names[j] is column ix[j] of r */
    st_column g[N_GOLD];    /* one chunk of gold, typed as the file */
    size_t n;               /* customer-periods: gold's rows */
    float *xs;              /* n x d scaled points, row-major, until the centroids are written */
    st_scaler sc;
    st_kscore *scores;      /* n_scores, one per k of the range */
    size_t n_scores;
    int k;                  /* the k fitted */
    st_kmeans_result *km;
    char (*names)[64];      /* k persona names */
} ml_step;

static void ml_free(ml_step *m)
{
    st_reader_close(m->r);
    for (int j = 0; j < N_GOLD; j++) st_column_free(&m->g[j]);
    free(m->xs);
    free(m->scores);
    free(m->names);
    st_kmeans_result_free(m->km);
}

/* Opens gold, finds its 12 columns and checks their types; sets m->n. */
static st_status open_gold(ml_step *m, st_error *err)
{
    st_status s = st_table_open(m->ctx, "gold", "int_customer_analytics", &m->r, err);
    if (s != ST_OK) return s;
    for (int j = 0; j < N_GOLD && s == ST_OK; j++) {
        s = st_table_col(m->r, "int_customer_analytics", gold_names[j], &m->ix[j], err);
        if (s == ST_OK) st_column_init(&m->g[j], st_reader_field(m->r, m->ix[j])->type);
    }
    if (s != ST_OK) return s;
    static const st_type gold_types[N_GOLD] = {ST_TYPE_I64, ST_TYPE_I32, ST_TYPE_I32, ST_TYPE_I32,
                                               ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_I64,
                                               ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_F64, ST_TYPE_I64};
    ST_TRY(st_table_expect_types(m->g, gold_names, gold_types, N_GOLD, "gold.int_customer_analytics", err));
    uint64_t n64 = st_reader_n_rows(m->r);
    if (n64 > SIZE_MAX / (MAX_FEATURES * sizeof(double)))
        return st_error_set(err, ST_ERR_NOMEM, "gold.int_customer_analytics: %llu rows do not fit in memory",
                            (unsigned long long)n64);
    m->n = (size_t)n64;
    return ST_OK;
}

/* Maps every --features name to its gold column (fcol) and marks the
 * --log1p ones (lg); a name that is not a feature, or a --log1p name that
 * is not one of the features, is ST_ERR_INVALID. */
static st_status check_features(ml_step *m, st_error *err)
{
    for (size_t j = 0; j < m->d; j++) {
        m->fcol[j] = -1;
        for (int k = 0; k < N_GOLD; k++)
            if (!strcmp(gold_names[k], m->feat[j])) m->fcol[j] = k;
        if (m->fcol[j] < 4)
            return st_error_set(err, ST_ERR_INVALID,
                                "--features: '%s' is not a feature of gold.int_customer_analytics (use e.g. "
                                "total_sold_quantity, foc_ratio, total_sold_transactions, total_foc_quantity, "
                                "total_foc_transactions, median_sold_order_size, median_foc_order_size, "
                                "unique_materials)",
                                m->feat[j]);
        m->lg[j] = false;
        for (size_t q = 0; q < m->nl; q++)
            if (!strcmp(m->logs[q], m->feat[j])) m->lg[j] = true;
    }
    for (size_t q = 0; q < m->nl; q++) {
        bool found = false;
        for (size_t j = 0; j < m->d; j++) found |= !strcmp(m->logs[q], m->feat[j]);
        if (!found) return st_error_set(err, ST_ERR_INVALID, "--log1p: '%s' is not one of the --features", m->logs[q]);
    }
    return ST_OK;
}

/* Pass 1 and the fit (n > 0): scales the features into m->xs, scores the
 * k range when there is one (m->scores), and fits the k asked for or the
 * one chosen, lowered to the number of distinct points when there are
 * fewer (noted). */
static st_status fit(ml_step *m, st_kmeans_opts *ko, st_error *err)
{
    const st_run_opts *o = m->ctx->o;
    size_t n = m->n, d = m->d;
    int kmin = o->k_min, kmax = o->k_max, best_k = o->k;
    double *x = malloc(n * sizeof *x);
    m->xs = malloc(n * d * sizeof *m->xs);
    if (!x || !m->xs) {
        free(x);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory in the ml step");
    }
    st_status s = scale_features(m->r, m->ix, m->fcol, m->feat, m->lg, d, m->g, x, n, &m->sc, m->xs, err);
    free(x);
    if (s != ST_OK) return s;
    /* more clusters than distinct points would leave some empty (and name them) */
    size_t distinct = st_kmeans_distinct_points(m->xs, n, d, (size_t)(kmax > m->k ? kmax : m->k));
    if ((size_t)kmax > distinct) kmax = (int)distinct;
    if (kmin < 2) kmin = 2;
    if (kmax >= kmin && n >= 3) {
        m->n_scores = (size_t)(kmax - kmin + 1);
        m->scores = calloc(m->n_scores, sizeof *m->scores);
        if (!m->scores) return st_error_set(err, ST_ERR_NOMEM, "out of memory in the ml step");
        ST_TRY(st_kselect(m->xs, n, d, kmin, kmax, ko, m->scores, &best_k, err));
    }
    if (m->k == 0) m->k = m->n_scores ? best_k : 1;
    if ((size_t)m->k > distinct) {
        snprintf(m->ctx->cur->note, sizeof m->ctx->cur->note,
                 "k lowered from %d to %zu (only %zu distinct points in %zu customer-periods)", m->k, distinct, distinct,
                 n);
        m->k = (int)distinct;
    }
    ko->k = m->k;
    return st_kmeans_fit(m->xs, n, d, ko, &m->km, err);
}

/* Each cluster's share of the inertia into cin[0..k) (its sum into *tot),
 * from the scaled points and the fit. */
static void cluster_inertia(const ml_step *m, double *cin, double *tot)
{
    size_t d = m->d;
    *tot = 0;
    for (size_t i = 0; i < m->n; i++) {
        int c = m->km->labels[i];
        double dd = 0;
        for (size_t j = 0; j < d; j++) {
            double t = (double)m->xs[i * d + j] - m->km->centroids[(size_t)c * d + j];
            dd += t * t;
        }
        cin[c] += dd;
        *tot += dd;
    }
}

/* Writes platinum.ml_centroids, one row per cluster: persona, size,
 * inertia share, the centroid scaled and in original units (orig, k x d). */
static st_status write_centroids(ml_step *m, const double *orig, const double *cin, double tot, st_error *err)
{
    const st_run_opts *o = m->ctx->o;
    size_t d = m->d, ncf = 4 + 2 * d;
    int k = m->k;
    st_writer *w = NULL;
    st_field *cf = calloc(ncf, sizeof *cf);
    st_column *cc = calloc(ncf, sizeof *cc);
    char (*cnames)[128] = calloc(2 * d, sizeof *cnames);
    st_status s = ST_OK;
    if (!cf || !cc || !cnames) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory in the ml step");
        goto done;
    }
    cf[0] = (st_field){"cluster", ST_TYPE_I32, false, "cluster index"};
    cf[1] = (st_field){"persona", ST_TYPE_STR, false, "business persona of the cluster"};
    cf[2] = (st_field){"size", ST_TYPE_I64, false, "customer-periods in the cluster"};
    cf[3] = (st_field){"inertia_share", ST_TYPE_F64, false, "share of the total inertia"};
    for (size_t j = 0; j < d; j++) {
        snprintf(cnames[2 * j], 128, "%s__scaled", m->feat[j]);
        snprintf(cnames[2 * j + 1], 128, "%s", m->feat[j]);
        cf[4 + 2 * j] = (st_field){cnames[2 * j], ST_TYPE_F64, false, "centroid, z-scored units"};
        cf[5 + 2 * j] = (st_field){cnames[2 * j + 1], ST_TYPE_F64, false, "centroid, original units"};
    }
    for (size_t j = 0; j < ncf; j++) st_column_init(&cc[j], cf[j].type);
    for (int c = 0; c < k && s == ST_OK; c++) {
        s = st_column_push_i32(&cc[0], c);
        if (s == ST_OK) s = st_column_push_str(&cc[1], m->names[c], strlen(m->names[c]));
        if (s == ST_OK) s = st_column_push_i64(&cc[2], m->km->sizes[c]);
        if (s == ST_OK) s = st_column_push_f64(&cc[3], tot > 0 ? cin[c] / tot : 0.0);
        for (size_t j = 0; j < d && s == ST_OK; j++) {
            s = st_column_push_f64(&cc[4 + 2 * j], m->km->centroids[(size_t)c * d + j]);
            if (s == ST_OK) s = st_column_push_f64(&cc[5 + 2 * j], orig[(size_t)c * d + j]);
        }
    }
    char kbuf[32], fl[1024];
    snprintf(kbuf, sizeof kbuf, "%d", k);
    snprintf(fl, sizeof fl, "%s", o->features);
    char sm[ST_ML_MAX_D * 26], ss[ST_ML_MAX_D * 26], sl[ST_ML_MAX_D * 2];
    st_scaler_params_text(&m->sc, sm, ss, sl);
    st_kv kv[6] = {{"persona_rule", o->persona_map ? "names from the --persona-map file" : st_persona_rule_text()},
                   {"k", kbuf},
                   {"features", fl},
                   {"scaler_mean", sm},
                   {"scaler_std", ss},
                   {"scaler_log1p", sl}};
    static const char *const in_c[] = {"gold.int_customer_analytics"};
    if (s == ST_OK) s = st_table_create(m->ctx, "platinum", "ml_centroids", cf, ncf, in_c, 1, "", m->fp, kv, 6, &w, err);
    if (s == ST_OK) s = st_writer_write(w, cc, 0, (size_t)k, err);
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
done:
    st_writer_abort(w);
    if (cc)
        for (size_t j = 0; j < ncf; j++) st_column_free(&cc[j]);
    free(cf);
    free(cc);
    free(cnames);
    return s;
}

/* After the fit: names the clusters from their centroids in original
 * units (or the --persona-map file), frees the points (the labels are all
 * that pass 2 needs) and writes ml_centroids. */
static st_status name_and_write_centroids(ml_step *m, st_error *err)
{
    const st_run_opts *o = m->ctx->o;
    size_t d = m->d;
    int k = m->k;
    double *orig = NULL, *cin = NULL, tot = 0;
    st_status s = ST_OK;
    m->names = calloc((size_t)k, sizeof *m->names);
    orig = malloc((size_t)k * d * sizeof *orig);
    if (!m->names || !orig) goto nomem;
    for (int c = 0; c < k; c++) st_scaler_inverse(&m->sc, m->km->centroids + (size_t)c * d, orig + (size_t)c * d);
    st_persona_name(m->feat, d, orig, m->km->sizes, k, m->names);
    if (o->persona_map && (s = st_persona_map_load(o->persona_map, k, m->names, err)) != ST_OK) goto done;
    if (!(cin = calloc((size_t)k, sizeof *cin))) goto nomem;
    cluster_inertia(m, cin, &tot);
    free(m->xs);
    m->xs = NULL;
    s = write_centroids(m, orig, cin, tot, err);
    goto done;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "out of memory in the ml step");
done:
    free(orig);
    free(cin);
    return s;
}

/* No activity at all: an empty ml_centroids, nothing to cluster (noted). */
static st_status write_empty_centroids(ml_step *m, st_error *err)
{
    static const st_field cf0[4] = {{"cluster", ST_TYPE_I32, false, "cluster index"},
                                    {"persona", ST_TYPE_STR, false, "business persona"},
                                    {"size", ST_TYPE_I64, false, "customer-periods"},
                                    {"inertia_share", ST_TYPE_F64, false, "share of the total inertia"}};
    static const char *const in_c[] = {"gold.int_customer_analytics"};
    st_kv kv[1] = {{"persona_rule", st_persona_rule_text()}};
    st_writer *w = NULL;
    ST_TRY(st_table_create(m->ctx, "platinum", "ml_centroids", cf0, 4, in_c, 1, "", m->fp, kv, 1, &w, err));
    ST_TRY(st_writer_close(w, err));
    snprintf(m->ctx->cur->note, sizeof m->ctx->cur->note, "no active customer-periods: nothing to cluster");
    return ST_OK;
}

/* Writes platinum.ml_k_selection: one row per scored k (none when the
 * range was empty), the knee and the k fitted marked. */
static st_status write_k_selection(ml_step *m, st_error *err)
{
    static const st_field kf[7] = {
        {"k", ST_TYPE_I32, false, "number of clusters"},
        {"inertia", ST_TYPE_F64, false, "sum of squared distances to the nearest centroid (scaled space)"},
        {"silhouette", ST_TYPE_F64, false, "mean silhouette (exact up to 20,000 points, else a seeded sample)"},
        {"calinski_harabasz", ST_TYPE_F64, false, "Calinski-Harabasz index (higher is better)"},
        {"davies_bouldin", ST_TYPE_F64, false, "Davies-Bouldin index (lower is better)"},
        {"is_knee", ST_TYPE_BOOL, false, "the knee of the inertia curve"},
        {"is_chosen", ST_TYPE_BOOL, false, "the k used for the personas"}};
    const st_kscore *sc = m->scores;
    st_column kc[7];
    st_writer *w = NULL;
    st_status s = ST_OK;
    for (int j = 0; j < 7; j++) st_column_init(&kc[j], kf[j].type);
    for (size_t q = 0; q < m->n_scores && s == ST_OK; q++) {
        s = st_column_push_i32(&kc[0], sc[q].k);
        if (s == ST_OK) s = st_column_push_f64(&kc[1], sc[q].inertia);
        if (s == ST_OK) s = st_column_push_f64(&kc[2], sc[q].silhouette);
        if (s == ST_OK) s = st_column_push_f64(&kc[3], sc[q].calinski_harabasz);
        if (s == ST_OK) s = st_column_push_f64(&kc[4], sc[q].davies_bouldin);
        if (s == ST_OK) s = st_column_push_bool(&kc[5], sc[q].is_knee);
        if (s == ST_OK) s = st_column_push_bool(&kc[6], sc[q].k == m->k);
    }
    static const char *const in_k[] = {"gold.int_customer_analytics"};
    if (s == ST_OK) s = st_table_create(m->ctx, "platinum", "ml_k_selection", kf, 7, in_k, 1, "", m->fp, NULL, 0, &w, err);
    if (s == ST_OK) s = st_writer_write(w, kc, 0, kc[0].n_rows, err);
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
    st_writer_abort(w);
    for (int j = 0; j < 7; j++) st_column_free(&kc[j]);
    return s;
}

st_status st_step_ml(st_run_ctx *ctx, uint64_t fp, st_error *err)
{
    const st_run_opts *o = ctx->o;
    ml_step m = {.ctx = ctx, .fp = fp, .k = o->k};
    for (int j = 0; j < N_GOLD; j++) st_column_init(&m.g[j], ST_TYPE_I64);
    snprintf(m.fbuf, sizeof m.fbuf, "%s", o->features ? o->features : "");
    snprintf(m.lbuf, sizeof m.lbuf, "%s", o->log1p ? o->log1p : "");
    m.d = split(m.fbuf, m.feat, MAX_FEATURES);
    m.nl = split(m.lbuf, m.logs, MAX_FEATURES);
    if (m.d == 0) return st_error_set(err, ST_ERR_INVALID, "no features to cluster on (--features)");

    st_status s = open_gold(&m, err);
    if (s != ST_OK) goto done;
    ctx->cur->rows_in = m.n;
    if ((s = check_features(&m, err)) != ST_OK) goto done;
    st_kmeans_opts ko;
    st_kmeans_opts_default(&ko);
    ko.n_init = o->n_init;
    ko.max_iter = o->max_iter;
    ko.tol = o->tol;
    ko.seed = o->seed;
    ko.threads = ctx->threads;
    if (m.n > 0) {
        if ((s = fit(&m, &ko, err)) != ST_OK) goto done;
        if ((s = name_and_write_centroids(&m, err)) != ST_OK) goto done;
    } else if ((s = write_empty_centroids(&m, err)) != ST_OK) {
        goto done;
    }
    if ((s = write_k_selection(&m, err)) != ST_OK) goto done;
    /* fct_transactions: pass 2 over gold */
    s = write_fct(ctx, fp, m.r, m.ix, m.g, m.km ? m.km->labels : NULL, m.names, m.km ? m.k : 0, m.n, err);
    if (s != ST_OK) goto done;
    ctx->cur->rows_out = m.n;
    if (!ctx->cur->note[0] && m.n)
        snprintf(ctx->cur->note, sizeof ctx->cur->note, "k=%d%s, %d iterations, inertia %.6g", m.k,
                 o->k == 0 ? " (auto)" : "", m.km->n_iter, m.km->inertia);
done:
    ml_free(&m);
    return s;
}
