/*
 * parquet.h: strata's own writer of Apache Parquet files, and a small
 * reader of their footer and page headers.
 *
 * Writing (formats/parquet_writer.c) streams: one row group per strata
 * chunk, written column by column as st_column values arrive, so memory
 * holds one column block and its encodings, never the table. Each column
 * chunk is an optional PLAIN dictionary page plus one DATA_PAGE (v1):
 * RLE/bit-packed definition levels for nullable columns, then values in
 * PLAIN or RLE_DICTIONARY (whichever is smaller after compression), each
 * page zstd-compressed. Column chunk statistics carry min_value,
 * max_value and null_count. The footer (Thrift compact FileMetaData)
 * maps strata types to Parquet physical + logical types (docs/PARQUET.md)
 * and carries the table's lineage, fingerprint, parameters and column
 * descriptions as key-value metadata. The file is written under a
 * temporary name and renamed when complete, so no path ever holds half a
 * Parquet file. Same input, same bytes.
 *
 * Reading (formats/parquet_read.c) is for tests and tools that check what
 * was written: it locates and parses the FileMetaData and page headers of
 * any Parquet file, never trusting a length (a fuzz target covers it).
 * Parsed strings and statistics borrow the caller's buffer.
 */
#ifndef STRATA_PARQUET_H
#define STRATA_PARQUET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/column.h"
#include "strata/file.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parquet enum values used here (parquet.thrift). */
enum {
    ST_PQ_BOOLEAN = 0, ST_PQ_INT32 = 1, ST_PQ_INT64 = 2, ST_PQ_DOUBLE = 5, ST_PQ_BYTE_ARRAY = 6
};
enum { ST_PQ_ENC_PLAIN = 0, ST_PQ_ENC_RLE = 3, ST_PQ_ENC_RLE_DICTIONARY = 8 };
enum { ST_PQ_CODEC_UNCOMPRESSED = 0, ST_PQ_CODEC_ZSTD = 6 };
enum { ST_PQ_PAGE_DATA = 0, ST_PQ_PAGE_DICTIONARY = 2, ST_PQ_PAGE_DATA_V2 = 3 };

/* Writer options; zero-initialised = defaults. */
typedef struct st_pq_opts {
    int zstd_level;   /* 0 = 3; < 0 writes UNCOMPRESSED pages */
    bool no_dict;     /* never dictionary-encode */
    bool no_fsync;    /* tests only */
} st_pq_opts;

typedef struct st_pq_writer st_pq_writer;

/* Opens a writer of `path` (written as path + ".tmp-<pid>" until close)
 * for the schema fields[0..n_fields) and metadata meta (both copied).
 * Caller owns *out: end it with st_pq_writer_close() or _abort(). */
st_status st_pq_writer_open(st_pq_writer **out, const char *path, const st_field *fields, size_t n_fields,
                            const st_file_meta *meta, const st_pq_opts *opts, st_error *err) ST_MUST_USE;

/* Starts a row group of n_rows rows (> 0); then call st_pq_writer_column()
 * once per field, in schema order, each column holding exactly n_rows
 * values of the field's type. Borrows col for the call. ST_ERR_INVALID on
 * a type or row-count mismatch, ST_ERR_IO on a write failure. */
st_status st_pq_writer_row_group(st_pq_writer *w, uint32_t n_rows, st_error *err) ST_MUST_USE;
st_status st_pq_writer_column(st_pq_writer *w, const st_column *col, st_error *err) ST_MUST_USE;

/* Writes the footer, fsyncs, renames onto the final path and frees w
 * (also on failure, after removing the temporary file). */
st_status st_pq_writer_close(st_pq_writer *w, st_error *err) ST_MUST_USE;
/* Removes the temporary file and frees w. NULL does nothing. */
void st_pq_writer_abort(st_pq_writer *w);

/* Exports the layer file `src` to the Parquet file `dst`, one row group
 * per chunk, reading one column block at a time. */
st_status st_pq_export_file(const char *src, const char *dst, const st_pq_opts *opts, st_error *err) ST_MUST_USE;

/* ---- reading ---- */

typedef struct st_pq_bytes {
    const uint8_t *p; /* borrowed from the parsed buffer; NULL when absent */
    size_t n;
} st_pq_bytes;

typedef struct st_pq_stats {
    bool has_null_count, has_min, has_max;
    int64_t null_count;
    st_pq_bytes min, max; /* min_value / max_value, PLAIN-encoded */
} st_pq_stats;

typedef struct st_pq_schema_elem {
    st_pq_bytes name;
    int type;          /* physical type, -1 for a group */
    int repetition;    /* 0 required, 1 optional, 2 repeated, -1 absent */
    int converted;     /* converted_type, -1 absent */
    int num_children;  /* -1 absent */
    int logical;       /* LogicalType union field id (1 STRING, 10 INTEGER, ...), 0 absent */
    int int_bits;      /* INTEGER: bitWidth */
    bool int_signed;   /* INTEGER: isSigned */
} st_pq_schema_elem;

typedef struct st_pq_chunk_meta {
    int type, codec;
    uint32_t encodings;        /* bit e set for each Encoding e < 32 listed */
    int64_t num_values, uncompressed_bytes, compressed_bytes;
    int64_t data_page_offset;
    int64_t dictionary_page_offset; /* -1 when absent */
    st_pq_stats stats;
} st_pq_chunk_meta;

typedef struct st_pq_kv {
    st_pq_bytes key, value;
} st_pq_kv;

typedef struct st_pq_meta {
    int32_t version;
    int64_t num_rows;
    st_pq_schema_elem *schema;   /* n_schema elements, [0] the root */
    size_t n_schema;
    size_t n_columns;            /* leaves: n_schema - 1 for a flat schema */
    size_t n_row_groups;
    int64_t *rg_rows;            /* per row group */
    st_pq_chunk_meta *chunks;    /* n_row_groups * n_columns, row group major */
    st_pq_kv *kv;
    size_t n_kv;
    st_pq_bytes created_by;
    size_t n_column_orders;
} st_pq_meta;

/* Finds the footer of a whole Parquet file in (buf, len): magic at both
 * ends, footer length inside the file. ST_ERR_CORRUPT otherwise. */
st_status st_pq_find_footer(const uint8_t *buf, size_t len, st_pq_bytes *footer, st_error *err) ST_MUST_USE;

/* Parses a FileMetaData (flat schemas only: every leaf a child of the
 * root). Borrows buf until st_pq_meta_free(). ST_ERR_CORRUPT on damage,
 * ST_ERR_UNSUPPORTED on nested schemas. */
st_status st_pq_meta_parse(const uint8_t *buf, size_t len, st_pq_meta *out, st_error *err) ST_MUST_USE;
void st_pq_meta_free(st_pq_meta *m);

typedef struct st_pq_page_header {
    int type;
    int32_t uncompressed_bytes, compressed_bytes;
    int32_t num_values;
    int encoding;               /* of the values (data or dictionary page) */
    int def_encoding;           /* data page v1: definition levels, -1 absent */
    size_t header_bytes;        /* size of the header itself */
} st_pq_page_header;

/* Parses one PageHeader at the start of (buf, len). */
st_status st_pq_page_header_parse(const uint8_t *buf, size_t len, st_pq_page_header *out, st_error *err) ST_MUST_USE;

/* Walks every page of column chunk c (row group major index) of a whole
 * file in (buf, len): headers parsed, page bytes inside the chunk's range,
 * zstd pages decompressed to exactly their stated size, and the data
 * pages' num_values summed into *n_values; *n_dict_pages counts
 * dictionary pages. ST_ERR_CORRUPT names the page that is wrong. */
st_status st_pq_check_chunk(const uint8_t *buf, size_t len, const st_pq_meta *m, size_t c, int64_t *n_values,
                            int *n_dict_pages, st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_PARQUET_H */
