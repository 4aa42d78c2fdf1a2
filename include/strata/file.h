/*
 * file.h: the strata layer file (.strata), one table per file.
 *
 * A layer file is a sequence of row groups ("chunks") of up to
 * ST_CHUNK_ROWS rows; inside each chunk every column is one block encoded
 * with the smallest of several lightweight encodings, optionally followed
 * by zstd when that pays. A footer at the end holds the schema, per-block
 * zone maps (min/max/null count), lineage, parameters, the input
 * fingerprint and free key/value metadata. Every block and the footer
 * carry a CRC32C. The byte layout is specified in formats/FORMAT.md; this
 * header is the C API over it.
 *
 * Writing streams: the writer keeps at most one chunk of rows in memory
 * per column, encodes it when full, appends it to a temporary file, and on
 * st_writer_close() writes the footer, fsyncs, and renames over the final
 * name (atomic: a crash never leaves a half file under the final name).
 * Output is deterministic: the same rows and metadata give the same bytes.
 *
 * Reading never trusts a length: every offset and count read from the file
 * is checked against the file size before use, checksums are verified
 * before decoding, and a damaged file yields ST_ERR_CORRUPT with a message
 * naming the file, column and chunk; no function aborts on bad bytes.
 */
#ifndef STRATA_FILE_H
#define STRATA_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"
#include "strata/column.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows per chunk (row group). A power of two; fixed by the writer. */
#define ST_CHUNK_ROWS 65536u
/* A writer also ends a chunk before its string bytes pass this. */
#define ST_CHUNK_MAX_BYTES (64u << 20)

/* Format version written by this library. */
#define ST_FORMAT_MAJOR 1
#define ST_FORMAT_MINOR 0

/* One column of a schema. Strings are borrowed by the writer until
 * st_writer_close(); the reader's strings live until st_reader_close(). */
typedef struct st_field {
    const char *name;
    st_type type;
    bool nullable;
    const char *description; /* may be NULL; stored in the footer */
} st_field;

/* One key/value pair of free-form metadata (UTF-8 strings). */
typedef struct st_kv {
    const char *key;
    const char *value;
} st_kv;

/* Table-level metadata written in the footer. All strings borrowed. */
typedef struct st_file_meta {
    const char *layer;          /* "bronze", "silver", "gold", "platinum", ... */
    const char *table;          /* e.g. "stg_sales_transactions" */
    const char *const *inputs;  /* lineage: "layer.table" names, n_inputs of them */
    size_t n_inputs;
    const char *params;         /* canonical parameter string ("" if none) */
    uint64_t fingerprint;       /* hash of inputs' fingerprints + params */
    const st_kv *kv;            /* free-form metadata, n_kv pairs */
    size_t n_kv;
} st_file_meta;

/* Writer options. Zero-initialised = defaults. */
typedef struct st_write_opts {
    int zstd_level;        /* 0 = default (3); <0 disables the zstd stage */
    bool no_fsync;         /* tests only: skip fsync (rename stays atomic) */
    uint32_t chunk_rows;   /* 0 = ST_CHUNK_ROWS; tests may use smaller powers of two */
    bool defer_fsync;      /* durability is the publisher's: close starts the write-back
                            * and renames, but neither the file nor its directory is
                            * fsynced (st_warehouse_commit fsyncs every staged file and
                            * directory before it writes its journal) */
} st_write_opts;

/* Encodings, as written in block headers (values fixed by FORMAT.md). */
typedef enum st_encoding {
    ST_ENC_PLAIN = 0,
    ST_ENC_FOR_BITPACK = 1, /* frame of reference + bit packing */
    ST_ENC_DELTA = 2,       /* first value + FOR-bitpacked deltas */
    ST_ENC_RLE = 3,         /* runs of (value, length) */
    ST_ENC_DICT = 4,        /* dictionary + bitpacked codes */
    ST_ENC_CONST = 5,       /* all present values equal (or all NULL) */
} st_encoding;
const char *st_encoding_name(int enc);

typedef struct st_writer st_writer;

/* Opens a writer for `path` (written as `path` + ".tmp-<pid>" until close).
 * fields[0..n_fields) is the schema; meta is copied. Caller owns *out and
 * must end it with st_writer_close() or st_writer_abort(). */
st_status st_writer_open(st_writer **out, const char *path,
                         const st_field *fields, size_t n_fields,
                         const st_file_meta *meta, const st_write_opts *opts,
                         st_error *err) ST_MUST_USE;

/* Appends rows: cols[j] is column j of the schema (same type), all with
 * n_rows rows taken from row `first`, i.e. rows [first, first+n_rows).
 * A NULL in a non-nullable column is ST_ERR_INVALID; an invalid UTF-8
 * value in a STR column is ST_ERR_INVALID. Borrows cols for the call. */
st_status st_writer_write(st_writer *w, const st_column *cols, size_t first,
                          size_t n_rows, st_error *err) ST_MUST_USE;

/* One column block as a file stores it, borrowed from a reader
 * (st_reader_read_stored): its header fields, its stored bytes (validity
 * and values, zstd-compressed when `flags` says so) and its footer entry's
 * zone map. What st_writer_write_chunk() needs to append the block to
 * another file without decoding or encoding it. */
typedef struct st_stored_block {
    st_type type;             /* of the values, as in the block header */
    int encoding;             /* st_encoding */
    uint8_t flags;            /* zstd (1), validity (2): FORMAT.md "Blocks" */
    uint32_t n_rows, null_count;
    uint32_t raw_len;         /* payload bytes before the zstd stage */
    uint32_t stored_len;      /* bytes at `bytes` */
    uint32_t crc;             /* CRC32C of the header's first 20 bytes and the stored bytes */
    const uint8_t *bytes;
    uint64_t raw_bytes;       /* footer: decoded size of the values */
    bool has_minmax;
    uint64_t min, max;        /* footer zone map (int64 or float64 bits) */
    bool payload;             /* bytes are an encoder's payload with no checksum yet (st_writer_runs_block):
                                 the writer computes it, crc is not used */
} st_stored_block;

/* Rows appended but not yet written as a chunk (they wait for a full one
 * or for close). */
size_t st_writer_buffered_rows(const st_writer *w);

/* True when stored block b can stand as column `col`'s block of a chunk
 * of b->n_rows rows in w's file, byte for byte what encoding its values
 * would write: its type is the column's, or b holds int64 values that
 * fit the column's int32 in an encoding that does not depend on the width
 * (any but PLAIN) and stays the smallest at 4 bytes a value (then only the
 * header's type and checksum change); a block with NULLs only for a
 * nullable column; zstd frames only at the default zstd level (the one
 * every layer file uses); never while a test forces an encoding. Equal
 * bytes assume b was written by this strata's encoder and zstd library. */
bool st_writer_stored_fits(const st_writer *w, size_t col, const st_stored_block *b);

/* Column `col`'s block for a chunk whose values are n_runs runs, run r
 * being len[r] >= 1 rows of val[r] (widened to 64 bits; adjacent runs
 * differ), built from the runs without the rows: when the encoder would
 * write it RLE or CONST, and small enough that the writer would not try
 * zstd on it, *ok is true and *out is that block (its payload in *buf,
 * owned by the caller; the zone map from the runs), which
 * st_writer_write_chunk() takes as a stored block and writes with the
 * bytes encoding the rows would give. Else *ok is false: encode the rows.
 * BOOL/I32/I64 columns without NULLs. */
st_status st_writer_runs_block(const st_writer *w, size_t col, const uint64_t *val, const uint32_t *len,
                               size_t n_runs, st_buf *buf, st_stored_block *out, bool *ok, st_error *err) ST_MUST_USE;

/* Writes one chunk of n rows now: column j is stored[j] as it is (when
 * stored and stored[j] are not NULL; it must fit, st_writer_stored_fits)
 * or else cols[j], encoded (n rows from row 0; cols may be NULL when
 * every column is stored). No rows may be buffered (ST_ERR_INVALID): the
 * caller makes the chunk the one st_writer_write() would have written.
 * Same checks on cols as st_writer_write(). */
st_status st_writer_write_chunk(st_writer *w, const st_column *cols, const st_stored_block *const *stored, size_t n,
                                st_error *err) ST_MUST_USE;

/* ---- chunks encoded on the caller's threads ----
 *
 * For a writer fed by several threads: chunks are encoded, whole
 * (st_writer_encode_chunk) or a column at a time (st_writer_encode_column),
 * into st_chunk_enc objects, each thread with its own st_enc_lane; both
 * read only w's schema and options, so any number may run at once. The
 * chunks are put into the file one at a time in row order
 * (st_writer_put_chunk, under the caller's lock). The file is the bytes
 * st_writer_write gives for the same rows when every chunk but the last
 * holds st_writer_chunk_rows() rows: put refuses a chunk out of row order
 * or after a short one. */
typedef struct st_chunk_enc st_chunk_enc;

/* A block encoder (zstd context and encoder tables), used by one thread
 * at a time. Caller owns *out: st_enc_lane_free. */
typedef struct st_enc_lane st_enc_lane;
st_status st_enc_lane_create(st_enc_lane **out, st_error *err) ST_MUST_USE;
void st_enc_lane_free(st_enc_lane *l);

/* The encoded blocks of one of w's chunks (buffers reused chunk after
 * chunk). Caller owns *out: st_chunk_enc_free. */
st_status st_chunk_enc_create(const st_writer *w, st_chunk_enc **out, st_error *err) ST_MUST_USE;
void st_chunk_enc_free(st_chunk_enc *ce);

/* Rows of each chunk but the last (ST_CHUNK_ROWS unless opts said). */
uint32_t st_writer_chunk_rows(const st_writer *w);

/* Encodes the chunk cols[0..n_fields), n rows each (1 <= n <=
 * st_writer_chunk_rows(w)), that starts at row first_row of the file,
 * into ce with lane l, checking the rows as st_writer_write does (row
 * numbers from first_row). ST_ERR_INVALID for a schema mismatch, a bad
 * row or a string column over ST_CHUNK_MAX_BYTES (write such rows with
 * st_writer_write); ce then holds nothing. Borrows cols for the call. */
st_status st_writer_encode_chunk(const st_writer *w, const st_column *cols, size_t n, uint64_t first_row,
                                 st_enc_lane *l, st_chunk_enc *ce, st_error *err) ST_MUST_USE;

/* Encodes column j (c, n rows) of the chunk starting at first_row into
 * ce with lane l, checked as st_writer_encode_chunk checks it: so the
 * columns of one chunk can be encoded on several threads at once (a
 * column of a ce by one thread at a time). The chunk can be put once
 * every column is encoded for the same rows. */
st_status st_writer_encode_column(const st_writer *w, size_t j, const st_column *c, size_t n, uint64_t first_row,
                                  st_enc_lane *l, st_chunk_enc *ce, st_error *err) ST_MUST_USE;

/* As st_writer_encode_column for a BOOL, I32 or I64 column without NULLs
 * whose rows are n_runs runs, run r being len[r] >= 1 rows of val[r]
 * (widened to 64 bits; adjacent runs differ): when the encoder would
 * write those rows RLE or CONST, the block is made from the runs, byte
 * for byte the one st_writer_encode_column writes for the rows, and
 * *done is true. Else (another encoding, runs that are not runs, another
 * type) *done is false, column j of ce holds nothing, and the caller
 * encodes the rows. */
st_status st_writer_encode_runs(const st_writer *w, size_t j, const uint64_t *val, const uint32_t *len, size_t n_runs,
                                uint64_t first_row, st_enc_lane *l, st_chunk_enc *ce, bool *done,
                                st_error *err) ST_MUST_USE;

/* As st_writer_encode_column for a STR or BYTES column whose row i is
 * dict's value rows[i] (i < n): the block st_writer_encode_column writes
 * for those rows made into a column, without making it (no string is
 * copied; the dictionary's values are measured and checked once each).
 * dict: distinct values of column j's type, no NULLs (borrowed for the
 * call). ST_ERR_INVALID for a code outside dict, invalid UTF-8 in a used
 * STR value, or rows over ST_CHUNK_MAX_BYTES; ce then holds nothing. */
st_status st_writer_encode_str_codes(const st_writer *w, size_t j, const st_column *dict, const uint32_t *rows,
                                     size_t n, uint64_t first_row, st_enc_lane *l, st_chunk_enc *ce,
                                     st_error *err) ST_MUST_USE;

/* Writes ce's chunk as w's next (ce is then empty). ST_ERR_INVALID when
 * rows are buffered, when ce holds no chunk (a column not encoded, or
 * columns encoded for different rows), or when its first row is not
 * st_writer_n_rows(w) or the chunk before was short. */
st_status st_writer_put_chunk(st_writer *w, st_chunk_enc *ce, st_error *err) ST_MUST_USE;

/* Flushes, writes the footer, fsyncs (unless opts.defer_fsync), renames
 * to the final path, fsyncs the directory (unless opts.defer_fsync) and
 * frees w (also on failure, after removing the temporary file). */
st_status st_writer_close(st_writer *w, st_error *err) ST_MUST_USE;

/* Removes the temporary file and frees w. NULL does nothing. */
void st_writer_abort(st_writer *w);

/* Rows written so far. */
uint64_t st_writer_n_rows(const st_writer *w);

/* Encodes each chunk's columns as tasks of pool (strata/pool.h; the
 * caller's thread included; NULL = on the calling thread only), which w
 * borrows until st_writer_close or st_writer_abort. The file is the same
 * bytes whatever the threads: only where blocks are encoded changes,
 * never how, and they are written in column order. Call before the first
 * chunk is written; later calls are ignored. */
struct st_pool;
void st_writer_set_pool(st_writer *w, struct st_pool *pool);

/* Makes st_writer_close() replace the footer fingerprint given at open
 * by hash(that fingerprint, every block header in write order (each
 * carries its block's CRC32C), row count): a fingerprint derived from
 * the content written, so equal content gives equal fingerprints and
 * different content (up to hash collisions) different ones. */
void st_writer_fingerprint_content(st_writer *w);

/* ---- reading ---- */

typedef struct st_reader st_reader;

/* Zone map and physical facts of one column block in one chunk. */
typedef struct st_block_info {
    uint32_t n_rows;
    uint32_t null_count;
    int encoding;            /* st_encoding */
    bool zstd;               /* second stage applied */
    uint64_t size_bytes;     /* stored size, header included */
    uint64_t raw_bytes;      /* size of the decoded values (plain width or string bytes) */
    bool has_minmax;         /* false when all NULL, or for BYTES, or NaN-only */
    int64_t min_i64, max_i64;  /* BOOL/I32/I64 */
    double min_f64, max_f64;   /* F64 (NaN ignored) */
    /* STR: min/max are not kept (has_minmax false). */
} st_block_info;

/* Opens `path`, reads and verifies the footer (magic at both ends,
 * version, CRC32C, every offset against the file size). Caller owns *out;
 * close with st_reader_close(). A newer major version is
 * ST_ERR_UNSUPPORTED; a newer minor version is read (unknown optional
 * footer sections are skipped). A file whose footer does not match its
 * place in a warehouse is ST_ERR_CORRUPT (st_file_check_place()); a
 * FIFO or other non-regular file is refused without blocking. A reader is
 * used by one thread at a time: its zstd context (made at the first
 * compressed block read) and block buffer are its own. */
st_status st_reader_open(st_reader **out, const char *path, st_error *err) ST_MUST_USE;

/* ST_ERR_CORRUPT naming the path when `path` has a warehouse's shape
 * (.../<layer>/<table>.strata, layer one of bronze, silver, gold,
 * platinum) and the footer m names another layer or table: a swapped,
 * copied or moved file. ST_OK for any other path. st_reader_open()
 * applies it. */
st_status st_file_check_place(const st_file_meta *m, const char *path, st_error *err) ST_MUST_USE;

/* Same from a caller-owned memory buffer (borrowed until close). */
st_status st_reader_open_mem(st_reader **out, const void *buf, size_t len,
                             const char *name, st_error *err) ST_MUST_USE;

void st_reader_close(st_reader *r);

size_t st_reader_n_fields(const st_reader *r);
const st_field *st_reader_field(const st_reader *r, size_t i);
/* Index of column `name` (exact match), or -1. */
int st_reader_find(const st_reader *r, const char *name);
uint64_t st_reader_n_rows(const st_reader *r);
size_t st_reader_n_chunks(const st_reader *r);
/* Rows in chunk c. */
uint32_t st_reader_chunk_rows(const st_reader *r, size_t c);
/* The footer's metadata; strings borrowed until st_reader_close(). */
const st_file_meta *st_reader_meta(const st_reader *r);
void st_reader_version(const st_reader *r, int *major, int *minor);
/* Zone map of column col in chunk c. */
st_status st_reader_block_info(const st_reader *r, size_t c, size_t col,
                               st_block_info *out) ST_MUST_USE;

/* Decodes column `col` of chunk `c` into out (reset first, then filled;
 * its type must equal the field's type, st_column_init it with that type).
 * Verifies the block's CRC32C first. ST_ERR_CORRUPT on damage. */
st_status st_reader_read_block(st_reader *r, size_t c, size_t col,
                               st_column *out, st_error *err) ST_MUST_USE;

/* Like st_reader_read_block() for a STR or BYTES column, without turning
 * a dictionary-encoded block into one string per row: `dict` (initialised
 * with the column's type; reset here) gets values and codes[i] (room for
 * st_reader_chunk_rows(r, c) entries, caller-owned) the index into dict of
 * row i's value. A dict block gives its dictionary, a const block one
 * value; any other block (and one with NULLs) gives every row's value with
 * codes 0..n-1, so dict entries need not be distinct. Same checks and
 * errors as st_reader_read_block(); ST_ERR_INVALID for other types. */
st_status st_reader_read_block_dict(st_reader *r, size_t c, size_t col, st_column *dict,
                                    uint32_t *codes, st_error *err) ST_MUST_USE;

/* Block `col` of chunk `c` of an integer column (BOOL, INT32, INT64) as
 * its runs, when it is CONST or RLE without NULLs and has at most cap
 * runs: run k is rows [end[k-1], end[k]) (end[-1] = 0) of value val[k]
 * (widened to 64 bits); *n_runs of them (val and end caller-owned, room
 * for cap). Same checks and errors as st_reader_read_block();
 * ST_ERR_UNSUPPORTED, nothing read but the footer, for any other block
 * (read its rows instead). */
st_status st_reader_read_block_runs(st_reader *r, size_t c, size_t col, uint64_t *val, uint32_t *end,
                                    size_t cap, size_t *n_runs, st_error *err) ST_MUST_USE;

/* A block held to be read a slice of rows at a time: its size, CRC32C
 * and header are checked against the footer, it is decompressed into the
 * hold's own buffer and its encoding's structure read once
 * (st_reader_hold_block); each slice then decodes and checks only its
 * rows, into a few KiB the caller keeps in cache instead of a chunk's
 * worth of fresh pages. Reading every slice makes the checks
 * st_reader_read_block() makes: a damaged block fails the hold or a
 * slice, with the same message shape (file, column, chunk). Caller-owned,
 * reused from block to block; the reader must outlive the hold. */
typedef struct st_held_block st_held_block;

st_status st_held_block_create(st_held_block **out, st_error *err) ST_MUST_USE;
void st_held_block_free(st_held_block *h);

/* Holds block `col` of chunk `c` of an INT32, INT64 or string column
 * without NULLs. A string block is held as codes: `dict` (initialised
 * with the column's type; reset here) gets its dictionary (a DICT block's
 * entries, a CONST block's one value). ST_ERR_CORRUPT on damage;
 * ST_ERR_UNSUPPORTED, with nothing held, for a block with NULLs, of
 * another type, or whose encoding cannot be sliced (DELTA, PLAIN
 * strings): read it with st_reader_read_block() instead; ST_ERR_INVALID
 * for a string column without a dictionary column of its type, or no
 * such chunk or column. */
st_status st_reader_hold_block(st_reader *r, size_t c, size_t col, st_held_block *h, st_column *dict,
                               st_error *err) ST_MUST_USE;

/* Rows [first, first + n) of the held block: first a multiple of 8,
 * first + n at most the chunk's rows (else ST_ERR_INVALID). INT64 and
 * INT32 blocks into the matching array, string blocks as uint32_t codes
 * into the hold's dictionary. ST_ERR_CORRUPT naming the file, column and
 * chunk for a value outside its type or a code outside the dictionary. */
st_status st_held_block_i64(st_held_block *h, size_t first, size_t n, int64_t *out, st_error *err) ST_MUST_USE;
st_status st_held_block_i32(st_held_block *h, size_t first, size_t n, int32_t *out, st_error *err) ST_MUST_USE;
st_status st_held_block_codes(st_held_block *h, size_t first, size_t n, uint32_t *out, st_error *err) ST_MUST_USE;

/* Block `col` of chunk `c` as stored (st_stored_block; bytes borrowed
 * until st_reader_close()), after the checks st_reader_read_block() makes
 * before decoding: its CRC32C and its header against the footer. */
st_status st_reader_read_stored(st_reader *r, size_t c, size_t col, st_stored_block *out, st_error *err) ST_MUST_USE;

/* Reads every block of the file and checks its checksum and decoding;
 * used by `strata inspect --verify`. */
st_status st_reader_verify(st_reader *r, st_error *err) ST_MUST_USE;

/* Checks every block's CRC32C (and its size against the footer) without
 * decoding: what a skip decision needs to know the stored bytes are the
 * ones written, at the cost of one pass of CRC32C over the file. */
st_status st_reader_verify_checksums(st_reader *r, st_error *err) ST_MUST_USE;

/* Convenience for small tables and tests: reads whole columns. cols must
 * hold n_fields initialised columns of the right types; projection: pass
 * NULL `which` for all columns, else which[j] = column index to load into
 * cols[j] for j < n_which. */
st_status st_reader_read_all(st_reader *r, const size_t *which, size_t n_which,
                             st_column *cols, st_error *err) ST_MUST_USE;

/* ---- partitioned tables ----
 *
 * A table may be stored as parts: layer files in the folder
 * <table>.parts/ beside <table>.strata, which then holds a manifest
 * naming the parts in row order (FORMAT.md, "Partitioned tables").
 * st_reader_open() on the manifest's path gives one reader over all the
 * parts, in that order: every function above works on it (chunks are
 * numbered across the parts; the metadata is the first part's, with the
 * manifest's fingerprint and the total row count). Opening checks every
 * part against the manifest (size, footer checksum, rows, fingerprint,
 * layer and table, schema) and fails with ST_ERR_CORRUPT naming the part
 * when one is missing, swapped or replaced. */

/* Parts of a partitioned table's reader (0 for a plain layer file), and
 * the path of part i (owned by r). */
size_t st_reader_n_parts(const st_reader *r);
const char *st_reader_part_path(const st_reader *r, size_t i);

/* Writes the manifest at `path` (<dir>/<table>.strata, atomically) for the
 * parts names[0..n) (1..65535 file names ending in .strata, in row order)
 * already complete in <dir>/<table>.parts/, all of one layer and table;
 * `fingerprint` is the table's. Reads each part's footer and tail for its
 * entry. ST_ERR_INVALID for bad names or parts of another table. */
st_status st_manifest_write(const char *path, const char *const *names, size_t n, uint64_t fingerprint,
                            st_error *err) ST_MUST_USE;

/* The parts folder of the table whose file or manifest is at
 * manifest_path: "<path minus .strata>.parts". */
st_status st_manifest_parts_dir(const char *manifest_path, char *buf, size_t cap, st_error *err) ST_MUST_USE;

/* CRC32C (Castagnoli), as used in the format. crc starts at 0. */
uint32_t st_crc32c(uint32_t crc, const void *buf, size_t len);

/* 64-bit hash used for fingerprints (deterministic across platforms). */
uint64_t st_hash64(uint64_t seed, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_FILE_H */
