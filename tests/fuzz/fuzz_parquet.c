/*
 * fuzz_parquet.c: libFuzzer target for the Parquet footer and page-header
 * reader (formats/parquet_read.c). The bytes are tried three ways: as a
 * whole Parquet file (footer found, FileMetaData parsed, every column
 * chunk's pages walked and decompressed), as a bare FileMetaData and as a
 * bare PageHeader. Every input must end in a status: crashes, sanitizer
 * reports, leaks and reads past the buffer are findings. Seeds are small
 * files written by `strata export --format parquet`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_error err;
    st_pq_meta m;
    st_pq_bytes footer;
    /* a copy of exactly `size` bytes, so ASan sees any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (st_pq_find_footer(buf, size, &footer, &err) == ST_OK &&
        st_pq_meta_parse(footer.p, footer.n, &m, &err) == ST_OK) {
        for (size_t c = 0; c < m.n_row_groups * m.n_columns; c++) {
            int64_t nv;
            int nd;
            (void)st_pq_check_chunk(buf, size, &m, c, &nv, &nd, &err);
        }
        st_pq_meta_free(&m);
    }
    if (st_pq_meta_parse(buf, size, &m, &err) == ST_OK) st_pq_meta_free(&m);
    st_pq_page_header h;
    if (st_pq_page_header_parse(buf, size, &h, &err) == ST_OK && h.header_bytes > size) abort();
    free(buf);
    return 0;
}
