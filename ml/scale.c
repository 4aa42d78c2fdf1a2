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
