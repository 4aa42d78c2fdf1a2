/*
 * fuzz_reader.c: libFuzzer target for the layer file reader. Any bytes
 * go to st_reader_open_mem; when they open, every block of every column
 * is decoded, handed out as stored bytes (st_reader_read_stored, which
 * stage copies into silver unchanged) and the zone maps read; string columns are also read as a
 * dictionary and codes, each code checked against the dictionary; integer columns as runs, each run's
 * end checked to grow and the last to be the chunk's rows; integer and string blocks held and read in
 * slices (st_reader_hold_block), which must give the rows the block decoder gives and fail exactly when
 * it fails. The reader must return a status for every input: crashes, sanitizer reports and leaks are
 * findings.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/file.h"

/* Rows [first, first + m) of the held block h of type t into v (codes
 * for strings). */
static st_status held_slice(st_held_block *h, st_type t, size_t first, size_t m, int64_t *v, st_error *err)
{
    if (t == ST_TYPE_I64) return st_held_block_i64(h, first, m, v, err);
    if (t == ST_TYPE_I32) {
        int32_t w[64];
        st_status s = st_held_block_i32(h, first, m, w, err);
        for (size_t i = 0; s == ST_OK && i < m; i++) v[i] = w[i];
        return s;
    }
    uint32_t w[64];
    st_status s = st_held_block_codes(h, first, m, w, err);
    for (size_t i = 0; s == ST_OK && i < m; i++) v[i] = w[i];
    return s;
}

/* Chunk k of column j held and read 64 rows at a time against the block
 * decoder's rows (a string's code looked up in the hold's dictionary). */
static void same_slices(st_reader *r, size_t k, size_t j, st_held_block *h)
{
    st_type t = st_reader_field(r, j)->type;
    bool str = t == ST_TYPE_STR || t == ST_TYPE_BYTES;
    st_column dict, whole;
    st_column_init(&dict, str ? t : ST_TYPE_STR);
    st_column_init(&whole, t);
    st_error err;
    st_status held = st_reader_hold_block(r, k, j, h, str ? &dict : NULL, &err);
    st_status want = st_reader_read_block(r, k, j, &whole, &err);
    if (held == ST_OK) {
        size_t n = st_reader_chunk_rows(r, k);
        st_status s = ST_OK;
        for (size_t first = 0; s == ST_OK && first < n; first += 64) {
            int64_t v[64];
            size_t m = n - first < 64 ? n - first : 64;
            if ((s = held_slice(h, t, first, m, v, &err)) != ST_OK) break;
            for (size_t i = 0; want == ST_OK && i < m; i++) {
                if (!str) {
                    if (v[i] != (t == ST_TYPE_I64 ? st_column_i64(&whole)[first + i] : st_column_i32(&whole)[first + i]))
                        abort();
                    continue;
                }
                size_t la, lb;
                if ((uint64_t)v[i] >= dict.n_rows) abort(); /* a code outside the dictionary is a bug */
                const char *x = st_column_str(&dict, (size_t)v[i], &la), *y = st_column_str(&whole, first + i, &lb);
                if (la != lb || memcmp(x, y, la)) abort();
            }
        }
        /* strings decoded whole also check their decoded size: only that may fail beside good slices */
        if ((s == ST_OK) != (want == ST_OK) && !(str && s == ST_OK)) abort();
    } else if (held == ST_ERR_CORRUPT && want == ST_OK && !str) {
        abort(); /* a block the decoder takes is held */
    }
    st_column_free(&dict);
    st_column_free(&whole);
}

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
        if (t == ST_TYPE_I32 || t == ST_TYPE_I64 || t == ST_TYPE_STR || t == ST_TYPE_BYTES) {
            st_held_block *h = NULL;
            if (st_held_block_create(&h, &err) != ST_OK) abort();
            for (size_t k = 0; k < st_reader_n_chunks(r); k++) same_slices(r, k, j, h);
            st_held_block_free(h);
        }
        st_column_free(&c);
    }
    st_reader_close(r);
    return 0;
}
