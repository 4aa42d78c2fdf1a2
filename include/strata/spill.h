/*
 * spill.h: a temporary file of transaction lines, partitioned.
 *
 * When the gold step's lines do not fit its memory budget it reads the
 * silver tables once and scatters every line (customer_id, period_key,
 * material code, quantity) into the partition that owns its customer;
 * then it reads the partitions back one at a time. st_spill is that
 * scatter: per (partition, table) a write buffer of block_rows lines that
 * is appended to one file as a block when full, and an in-memory index of
 * the blocks (24 bytes each) to read a partition's blocks back in the
 * order they were written.
 *
 * A block on disk: a 24-byte header (magic "STSP", partition, table,
 * n_rows, CRC32C of the payload, zero) and the payload: n_rows int64
 * customer ids, n_rows int64 quantities, n_rows int32 period keys, n_rows
 * uint32 material codes, native byte order. The file lives only for one
 * step of one process (it is unlinked at creation), so its format is not
 * part of FORMAT.md; reading still checks every header field against the
 * index and the checksum before use, and a mismatch is ST_ERR_CORRUPT.
 *
 * Memory: while writing, 24 * block_rows bytes per (partition, table)
 * that received a line (the gold step picks block_rows so that these fit
 * half its memory limit, but never fewer than 256 rows: 12 KiB a range);
 * while reading, one block. Plus the index, 24 bytes a block.
 * Threading: one thread at a time.
 */
#ifndef STRATA_SPILL_H
#define STRATA_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_SPILL_TABLES 2
#define ST_SPILL_MAX_BLOCK_ROWS 65536u

typedef struct st_spill st_spill;

/* One block read back: arrays borrowed until the next st_spill_next() or
 * st_spill_free(). */
typedef struct st_spill_block {
    unsigned table;
    size_t n_rows;            /* 0: no more blocks for the partition */
    const int64_t *customer_id;
    const int32_t *period_key;
    const uint32_t *material;
    const int64_t *quantity;
} st_spill_block;

typedef struct st_spill_cursor {
    size_t next;              /* index entry to look at next; start at 0 */
} st_spill_cursor;

/* Creates a spill over the open, empty, read-write file descriptor fd,
 * which it owns from now on (closed by st_spill_free(), also when this
 * fails). `what` names the file in messages (copied). block_rows is in
 * 1..ST_SPILL_MAX_BLOCK_ROWS. Caller owns *out. ST_ERR_INVALID, ST_ERR_NOMEM. */
st_status st_spill_create(st_spill **out, int fd, const char *what, uint32_t n_parts,
                          uint32_t block_rows, st_error *err) ST_MUST_USE;
void st_spill_free(st_spill *sp);

/* Appends n lines of `table` (< ST_SPILL_TABLES); line i goes to
 * partition part[i] (< n_parts, else ST_ERR_INVALID). Arrays borrowed for
 * the call. ST_ERR_IO when the file cannot be written (disk full),
 * ST_ERR_NOMEM; after an error only st_spill_free() is allowed. */
st_status st_spill_add(st_spill *sp, unsigned table, const uint32_t *part,
                       const int64_t *customer_id, const int32_t *period_key,
                       const uint32_t *material, const int64_t *quantity, size_t n,
                       st_error *err) ST_MUST_USE;

/* Writes every partly filled buffer and frees the write buffers; no adds
 * after this. ST_ERR_IO. */
st_status st_spill_flush(st_spill *sp, st_error *err) ST_MUST_USE;

/* Lines added to a partition of a table. */
uint64_t st_spill_rows(const st_spill *sp, uint32_t part, unsigned table);
/* Bytes written to the file so far. */
uint64_t st_spill_bytes(const st_spill *sp);

/* Reads the next block of partition `part` (after st_spill_flush()).
 * out->n_rows == 0 at the end. ST_ERR_IO when reading fails, ST_ERR_CORRUPT
 * when the file is shorter than what was written or a header or checksum
 * does not match it. */
st_status st_spill_next(st_spill *sp, uint32_t part, st_spill_cursor *cur,
                        st_spill_block *out, st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_SPILL_H */
