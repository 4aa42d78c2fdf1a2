/*
 * parquet_internal.h: the Parquet value encodings shared by the writer
 * (formats/parquet_writer.c) and its tests: the RLE/bit-packed hybrid,
 * PLAIN values and dictionary building (formats/parquet_encode.c).
 * Encoders append to caller-owned st_bufs; failure shows as !st_buf_ok().
 */
#ifndef STRATA_PARQUET_INTERNAL_H
#define STRATA_PARQUET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"
#include "strata/column.h"

/* Appends v[0..n) as the RLE/bit-packed hybrid of bit width bw (1..32):
 * RLE runs for 8+ equal values starting on a group boundary, bit-packed
 * groups of 8 otherwise (the last group zero-padded). */
void st_pq_rle_hybrid(st_buf *out, const uint32_t *v, size_t n, int bw);

/* Bits needed for values 0..max_value (at least 1). */
int st_pq_bit_width(uint32_t max_value);

/* Appends the PLAIN encoding of the present values of col (NULLs are
 * left out, as Parquet stores them only in the definition levels). */
void st_pq_plain(st_buf *out, const st_column *col);

/* Dictionary scratch, reused across column chunks. */
typedef struct st_pq_dict {
    uint32_t *slots;     /* hash table of (index + 1), 0 = empty; cap_slots entries */
    size_t cap_slots;
    uint32_t *first_row; /* dictionary entry -> first row holding it */
    uint32_t *codes;     /* per present value, its dictionary index */
    size_t cap_rows;
    size_t n_entries, n_codes;
} st_pq_dict;

/* Builds the dictionary of the present values of col (not BOOL): entries
 * in order of first appearance, codes for every present value. Stops and
 * returns false (not worth it) when the entries exceed max_entries.
 * ST_ERR_NOMEM via *status. */
bool st_pq_dict_build(st_pq_dict *d, const st_column *col, size_t max_entries, st_status *status);
/* Appends the PLAIN dictionary page body (the entries' values). */
void st_pq_dict_plain(st_buf *out, const st_pq_dict *d, const st_column *col);
void st_pq_dict_free(st_pq_dict *d);

#endif
