/*
 * scale.c: feature preparation: optional log1p, then z-scores with the
 * population standard deviation (as scikit-learn's StandardScaler). A
 * feature with zero variance scales to 0 (its std is stored as 1), so a
 * constant column neither divides by zero nor pulls the clustering.
 * The parameters are kept so centroids can be shown in original units.
 *
 * Input comes row-major or as column arrays; both go through one reader
 * (`src`) so the checks and arithmetic are the same. Mean and variance are
 * two-pass float64 sums in row order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/ml.h"

typedef struct src {
    const double *rows;          /* row-major n x d, or NULL */
    const double *const *cols;   /* column arrays, or NULL */
    size_t d;
} src;

static double at(const src *s, size_t i, size_t j) { return s->rows ? s->rows[i * s->d + j] : s->cols[j][i]; }

static st_status prepare(st_scaler *sc, const src *in, size_t n, size_t d, const char *const *names,
                         const bool *log1p_flags, bool scale, float *out, size_t out_stride, st_error *err)
{
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "scaling: %zu features (1..16 supported)", d);
    if (out_stride < d) return st_error_set(err, ST_ERR_INVALID, "scaling: output stride %zu < %zu features", out_stride, d);
    sc->d = d;
    sc->scaled = scale;
    for (size_t j = 0; j < d; j++) {
        char fname[96];
        if (names && names[j]) snprintf(fname, sizeof fname, "feature '%s'", names[j]);
        else snprintf(fname, sizeof fname, "feature %zu", j);
        bool lg = sc->log1p[j] = log1p_flags && log1p_flags[j];
        double m = 0;
        for (size_t i = 0; i < n; i++) {
            double v = at(in, i, j);
            if (!isfinite(v))
                return st_error_set(err, ST_ERR_INVALID, "%s of row %zu is %s: clustering needs finite numbers", fname,
                                    i, isnan(v) ? "NaN" : "infinite");
            if (lg) {
                if (v <= -1.0)
                    return st_error_set(err, ST_ERR_INVALID, "%s of row %zu is %g: log1p needs values > -1", fname, i,
                                        v);
                v = log1p(v);
            }
            m += v;
        }
        m = n ? m / (double)n : 0;
        double var = 0;
        for (size_t i = 0; i < n; i++) {
            double v = lg ? log1p(at(in, i, j)) : at(in, i, j);
            var += (v - m) * (v - m);
        }
        var = n ? var / (double)n : 0;
        double sd = sqrt(var);
        sc->mean[j] = scale ? m : 0.0;
        sc->std[j] = scale && sd > 0 ? sd : 1.0;
        for (size_t i = 0; i < n; i++) {
            double v = lg ? log1p(at(in, i, j)) : at(in, i, j);
            out[i * out_stride + j] = (float)((v - sc->mean[j]) / sc->std[j]);
        }
    }
    return ST_OK;
}

st_status st_scaler_fit_transform(st_scaler *sc, const double *x, size_t n, size_t d, const bool *log1p_flags,
                                  float *out, st_error *err)
{
    src in = {x, NULL, d};
    return prepare(sc, &in, n, d, NULL, log1p_flags, true, out, d, err);
}

st_status st_scaler_fit_transform_cols(st_scaler *sc, const double *const *cols, size_t n, size_t d,
                                       const char *const *names, const bool *log1p_flags, bool scale, float *out,
                                       size_t out_stride, st_error *err)
{
    src in = {NULL, cols, d};
    return prepare(sc, &in, n, d, names, log1p_flags, scale, out, out_stride, err);
}

void st_scaler_inverse(const st_scaler *sc, const double *scaled_row, double *orig_row)
{
    for (size_t j = 0; j < sc->d; j++) {
        double v = scaled_row[j] * sc->std[j] + sc->mean[j];
        orig_row[j] = sc->log1p[j] ? expm1(v) : v;
    }
}

void st_scaler_transform_row(const st_scaler *sc, const double *x, float *out)
{
    for (size_t j = 0; j < sc->d; j++) {
        double v = sc->log1p[j] ? log1p(x[j]) : x[j];
        out[j] = (float)((v - sc->mean[j]) / sc->std[j]);
    }
}

void st_scaler_params_text(const st_scaler *sc, char *mean, char *std, char *log1p_flags)
{
    size_t a = 0, b = 0;
    mean[0] = std[0] = '\0';
    for (size_t j = 0; j < sc->d; j++) {
        a += (size_t)snprintf(mean + a, 26, "%s%.17g", j ? "," : "", sc->mean[j]);
        b += (size_t)snprintf(std + b, 26, "%s%.17g", j ? "," : "", sc->std[j]);
        snprintf(log1p_flags + (j ? 2 * j - 1 : 0), 3, "%s%c", j ? "," : "", sc->log1p[j] ? '1' : '0');
    }
    if (sc->d == 0) log1p_flags[0] = '\0';
}

/* Parses d comma-separated numbers of list into v. */
static bool parse_list(const char *list, size_t d, double *v)
{
    const char *p = list;
    for (size_t j = 0; j < d; j++) {
        char *end;
        if (!p || !*p) return false;
        v[j] = strtod(p, &end);
        if (end == p || !isfinite(v[j])) return false;
        p = end;
        if (j + 1 < d) {
            if (*p != ',') return false;
            p++;
        }
    }
    return p && *p == '\0';
}

st_status st_scaler_params_parse(st_scaler *sc, size_t d, const char *mean, const char *std,
                                 const char *log1p_flags, st_error *err)
{
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "scaler: %zu features (1..16)", d);
    memset(sc, 0, sizeof *sc);
    sc->d = d;
    sc->scaled = true;
    double lg[ST_ML_MAX_D];
    if (!parse_list(mean, d, sc->mean)) return st_error_set(err, ST_ERR_INVALID, "scaler_mean '%.200s' is not %zu numbers", mean ? mean : "", d);
    if (!parse_list(std, d, sc->std)) return st_error_set(err, ST_ERR_INVALID, "scaler_std '%.200s' is not %zu numbers", std ? std : "", d);
    if (!parse_list(log1p_flags, d, lg)) return st_error_set(err, ST_ERR_INVALID, "scaler_log1p '%.200s' is not %zu flags", log1p_flags ? log1p_flags : "", d);
    for (size_t j = 0; j < d; j++) {
        if (!(sc->std[j] > 0)) return st_error_set(err, ST_ERR_INVALID, "scaler_std of feature %zu is not positive", j);
        if (lg[j] != 0 && lg[j] != 1) return st_error_set(err, ST_ERR_INVALID, "scaler_log1p of feature %zu is not 0 or 1", j);
        sc->log1p[j] = lg[j] == 1;
    }
    return ST_OK;
}
