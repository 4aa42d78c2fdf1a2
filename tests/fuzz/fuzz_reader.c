/*
 * fuzz_reader.c: libFuzzer target for the layer file reader. Any bytes
 * go to st_reader_open_mem; when they open, every block of every column
 * is decoded and the zone maps read. The reader must return a status for
 * every input: crashes, sanitizer reports and leaks are findings.
 */
#include <stddef.h>
#include <stdint.h>

#include "strata/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_reader *r = NULL;
    st_error err;
    if (st_reader_open_mem(&r, data, size, "fuzz", &err) != ST_OK) return 0;
    for (size_t j = 0; j < st_reader_n_fields(r); j++) {
        st_column c;
        st_column_init(&c, st_reader_field(r, j)->type);
        for (size_t k = 0; k < st_reader_n_chunks(r); k++) {
            st_block_info bi;
            (void)st_reader_block_info(r, k, j, &bi);
            if (st_reader_read_block(r, k, j, &c, &err) != ST_OK) break;
        }
        st_column_free(&c);
    }
    st_reader_close(r);
    return 0;
}
