/*
 * fuzz_reader.c: libFuzzer target for the layer file reader. Any bytes
 * go to st_reader_open_mem; when they open, every block of every column
 * is decoded, handed out as stored bytes (st_reader_read_stored, which
 * stage copies into silver unchanged) and the zone maps read; string columns are also read as a
 * dictionary and codes, each code checked against the dictionary; integer columns as runs, each run's
 * end checked to grow and the last to be the chunk's rows. The reader must return a status for
 * every input: crashes, sanitizer reports and leaks are findings.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
        for (size_t k = 0; k < st_reader_n_chunks(r); k++) {
            st_stored_block sb;
            if (st_reader_read_stored(r, k, j, &sb, &err) != ST_OK) break;
            /* the stored bytes stage copies into silver lie inside the file */
            if (sb.bytes < data || sb.stored_len > size || sb.bytes + sb.stored_len > data + size) abort();
            volatile uint8_t sink = 0;
            for (uint32_t i = 0; i < sb.stored_len; i++) sink ^= sb.bytes[i];
            (void)sink;
        }
        st_type t = st_reader_field(r, j)->type;
        if (t == ST_TYPE_BOOL || t == ST_TYPE_I32 || t == ST_TYPE_I64) {
            uint64_t *val = malloc(ST_CHUNK_ROWS * sizeof *val);
            uint32_t *end = malloc(ST_CHUNK_ROWS * sizeof *end);
            for (size_t k = 0; val && end && k < st_reader_n_chunks(r); k++) {
                size_t n_runs = 0;
                st_status s = st_reader_read_block_runs(r, k, j, val, end, ST_CHUNK_ROWS, &n_runs, &err);
                if (s == ST_ERR_UNSUPPORTED) continue;
                if (s != ST_OK) break;
                for (size_t q = 0; q < n_runs; q++)
                    if (end[q] <= (q ? end[q - 1] : 0)) abort(); /* a run of no rows is a bug */
                if (n_runs && end[n_runs - 1] != st_reader_chunk_rows(r, k)) abort();
            }
            free(val);
            free(end);
        }
        if (t == ST_TYPE_STR || t == ST_TYPE_BYTES) {
            uint32_t *codes = malloc(ST_CHUNK_ROWS * sizeof *codes);
            for (size_t k = 0; codes && k < st_reader_n_chunks(r); k++) {
                if (st_reader_read_block_dict(r, k, j, &c, codes, &err) != ST_OK) break;
                for (uint32_t i = 0; i < st_reader_chunk_rows(r, k); i++)
                    if (codes[i] >= c.n_rows) abort(); /* a code outside the dictionary is a bug */
            }
            free(codes);
        }
        st_column_free(&c);
    }
    st_reader_close(r);
    return 0;
}
