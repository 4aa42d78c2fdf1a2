/*
 * fuzz_manifest.c: libFuzzer target for the partitioned table manifest
 * parser (formats/manifest.c). Any bytes go to st_manifest_parse; when
 * they parse, every part entry is walked and its name and counts checked
 * against what the parser promises (a plain .strata file name, row counts
 * adding up to the table's). The parser must return a status for every
 * input: crashes, sanitizer reports, leaks and broken promises are
 * findings.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_manifest m;
    st_error err;
    if (st_manifest_parse(data, size, "fuzz", &m, &err) != ST_OK) {
        st_manifest_free(&m);
        return 0;
    }
    uint64_t rows = 0;
    for (size_t i = 0; i < m.n_parts; i++) {
        size_t n = strlen(m.parts[i].name);
        if (n < 8 || strchr(m.parts[i].name, '/') || strcmp(m.parts[i].name + n - 7, ".strata")) abort();
        rows += m.parts[i].rows;
    }
    if (rows != m.n_rows || m.n_parts == 0 || strlen(m.layer) > 65535) abort();
    st_manifest_free(&m);
    return 0;
}
