/*
 * scale.c: feature preparation: optional log1p, then z-scores with the
 * population standard deviation (as scikit-learn's StandardScaler). A
 * feature with zero variance scales to 0 (its std is stored as 1), so a
 * constant column neither divides by zero nor pulls the clustering.
 * The parameters are kept so centroids can be shown in original units.
 */
#include <math.h>

#include "strata/ml.h"

st_status st_scaler_fit_transform(st_scaler *sc, const double *x, size_t n, size_t d, const bool *log1p_flags,
                                  float *out, st_error *err)
{
    if (d < 1 || d > ST_ML_MAX_D) return st_error_set(err, ST_ERR_INVALID, "scaling: %zu features (1..16 supported)", d);
    sc->d = d;
    for (size_t j = 0; j < d; j++) {
        sc->log1p[j] = log1p_flags && log1p_flags[j];
        double m = 0;
        for (size_t i = 0; i < n; i++) {
            double v = x[i * d + j];
            if (!isfinite(v))
                return st_error_set(err, ST_ERR_INVALID, "feature %zu of row %zu is %s: clustering needs finite numbers", j,
                                    i, isnan(v) ? "NaN" : "infinite");
            if (sc->log1p[j]) {
                if (v <= -1.0)
                    return st_error_set(err, ST_ERR_INVALID, "feature %zu of row %zu is %g: log1p needs values > -1", j,
                                        i, v);
                v = log1p(v);
            }
            m += v;
        }
        m = n ? m / (double)n : 0;
        double var = 0;
        for (size_t i = 0; i < n; i++) {
            double v = sc->log1p[j] ? log1p(x[i * d + j]) : x[i * d + j];
            var += (v - m) * (v - m);
        }
        var = n ? var / (double)n : 0;
        double sd = sqrt(var);
        sc->mean[j] = m;
        sc->std[j] = sd > 0 ? sd : 1.0;
        for (size_t i = 0; i < n; i++) {
            double v = sc->log1p[j] ? log1p(x[i * d + j]) : x[i * d + j];
            out[i * d + j] = (float)((v - m) / sc->std[j]);
        }
    }
    return ST_OK;
}

void st_scaler_inverse(const st_scaler *sc, const double *scaled_row, double *orig_row)
{
    for (size_t j = 0; j < sc->d; j++) {
        double v = scaled_row[j] * sc->std[j] + sc->mean[j];
        orig_row[j] = sc->log1p[j] ? expm1(v) : v;
    }
}
