/*
 * fuzz_persona_map.c: libFuzzer target for the persona override file
 * parser (st_persona_map_parse): any bytes, k from the first byte.
 */
#include <stddef.h>
#include <stdint.h>

#include "strata/ml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int k = 1 + data[0] % ST_ML_MAX_K;
    char names[ST_ML_MAX_K][64] = {{0}};
    st_error err;
    (void)st_persona_map_parse((const char *)data + 1, size - 1, "fuzz", k, names, &err);
    return 0;
}
