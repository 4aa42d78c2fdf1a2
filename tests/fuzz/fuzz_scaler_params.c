/*
 * fuzz_scaler_params.c: arbitrary bytes as the scaler metadata of
 * platinum/ml_centroids (st_scaler_params_parse, ml/scale.c), which
 * `strata score` reads from a file it did not write.
 *
 * The first byte picks d (1..16); the rest is split at the first two NUL
 * bytes into the mean, std and log1p texts. Checks: nothing reads past
 * the input (ASan); an accepted scaler has finite means, positive finite
 * stds and 0/1 flags, and writing it back with st_scaler_params_text()
 * and parsing again gives the same parameters bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/ml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    size_t d = (size_t)(data[0] % ST_ML_MAX_D) + 1;
    char *txt = malloc(size + 2);
    if (!txt) return 0;
    memcpy(txt, data + 1, size - 1);
    txt[size - 1] = txt[size] = txt[size + 1] = '\0';
    const char *mean = txt, *std = mean + strlen(mean) + 1;
    const char *lg = std <= txt + size - 1 ? std + strlen(std) + 1 : txt + size;
    if (std > txt + size) std = txt + size;
    if (lg > txt + size + 1) lg = txt + size + 1;
    st_scaler sc;
    st_error err;
    if (st_scaler_params_parse(&sc, d, mean, std, lg, &err) == ST_OK) {
        for (size_t j = 0; j < d; j++)
            if (!isfinite(sc.mean[j]) || !(sc.std[j] > 0) || !isfinite(sc.std[j])) abort();
        char m2[ST_ML_MAX_D * 26], s2[ST_ML_MAX_D * 26], l2[ST_ML_MAX_D * 2];
        st_scaler_params_text(&sc, m2, s2, l2);
        st_scaler back;
        if (st_scaler_params_parse(&back, d, m2, s2, l2, &err) != ST_OK) abort();
        for (size_t j = 0; j < d; j++)
            if (memcmp(&back.mean[j], &sc.mean[j], sizeof(double)) || memcmp(&back.std[j], &sc.std[j], sizeof(double)) ||
                back.log1p[j] != sc.log1p[j])
                abort();
    }
    free(txt);
    return 0;
}
