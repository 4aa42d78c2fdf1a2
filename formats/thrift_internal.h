/*
 * thrift_internal.h: the Thrift compact protocol, the encoding of every
 * Parquet footer and page header, written and read by strata's own code
 * (formats/thrift_compact.c). Only what Parquet needs: structs, lists,
 * bool, i8/i16/i32/i64 (zigzag varints), double and binary.
 *
 * Writing: an st_tc_writer appends to a caller-owned st_buf. Field ids are
 * written as deltas from the previous id of the same struct, so the writer
 * keeps one "last id" per open struct (ST_TC_MAX_DEPTH levels). Fields must
 * be written in increasing id order, as Parquet's readers expect.
 *
 * Reading: an st_tc_reader walks a caller-owned (buf, len) and never reads
 * past len. Every length and element count is checked against the bytes
 * that remain before it is used (an element takes at least one byte, so a
 * count larger than the remaining bytes is a lie). Nesting is bounded by
 * ST_TC_MAX_DEPTH, so skipping unknown fields cannot recurse without end.
 * A failure sets `bad` (sticky): later reads return zeros, and the caller
 * checks once at the end.
 */
#ifndef STRATA_THRIFT_INTERNAL_H
#define STRATA_THRIFT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"

#define ST_TC_MAX_DEPTH 16

/* Compact protocol type nibbles. */
enum {
    ST_TC_STOP = 0,
    ST_TC_TRUE = 1,
    ST_TC_FALSE = 2,
    ST_TC_I8 = 3,
    ST_TC_I16 = 4,
    ST_TC_I32 = 5,
    ST_TC_I64 = 6,
    ST_TC_DOUBLE = 7,
    ST_TC_BINARY = 8,
    ST_TC_LIST = 9,
    ST_TC_SET = 10,
    ST_TC_MAP = 11,
    ST_TC_STRUCT = 12
};

typedef struct st_tc_writer {
    st_buf *out;                      /* borrowed; failures show as !st_buf_ok(out) */
    int16_t last[ST_TC_MAX_DEPTH];    /* previous field id per open struct */
    int depth;                        /* open structs (0 = top level) */
    bool bad;                         /* nesting too deep */
} st_tc_writer;

void st_tc_writer_init(st_tc_writer *w, st_buf *out);
/* Appends v as an unsigned LEB128 varint (also the run headers of
 * Parquet's RLE/bit-packed hybrid). */
void st_uleb128_put(st_buf *out, uint64_t v);
/* Field values. */
void st_tc_bool(st_tc_writer *w, int16_t id, bool v);
void st_tc_i8(st_tc_writer *w, int16_t id, int8_t v);
void st_tc_i32(st_tc_writer *w, int16_t id, int32_t v);
void st_tc_i64(st_tc_writer *w, int16_t id, int64_t v);
void st_tc_bin(st_tc_writer *w, int16_t id, const void *p, size_t n);
void st_tc_str(st_tc_writer *w, int16_t id, const char *s);
/* A struct field: begin, its fields, end (writes the stop byte). */
void st_tc_struct_begin(st_tc_writer *w, int16_t id);
void st_tc_struct_end(st_tc_writer *w);
/* A list field of n elements of type elem, then n elements: */
void st_tc_list_begin(st_tc_writer *w, int16_t id, uint8_t elem, size_t n);
void st_tc_elem_i32(st_tc_writer *w, int32_t v);
void st_tc_elem_bin(st_tc_writer *w, const void *p, size_t n);
/* A struct element of a list: its fields, then st_tc_struct_end(). */
void st_tc_elem_struct_begin(st_tc_writer *w);
/* The stop byte that ends a top-level struct (FileMetaData, PageHeader). */
void st_tc_stop(st_tc_writer *w);

typedef struct st_tc_reader {
    const uint8_t *p;      /* next byte */
    const uint8_t *end;    /* one past the last byte */
    int16_t last[ST_TC_MAX_DEPTH];
    int depth;
    bool bad;              /* sticky: bounds, varint or nesting violated */
} st_tc_reader;

void st_tc_reader_init(st_tc_reader *r, const void *buf, size_t len);
/* Next field header of the current struct: *type (ST_TC_STOP at the end,
 * then false is returned) and *id. Booleans carry their value in *type
 * (ST_TC_TRUE / ST_TC_FALSE). Returns false at STOP or on damage. */
bool st_tc_next_field(st_tc_reader *r, uint8_t *type, int16_t *id);
/* An integer value of the given type: I8 (one raw byte), I16/I32/I64 (zigzag varints). */
int64_t st_tc_read_int_t(st_tc_reader *r, uint8_t type);
/* Binary: *n bytes at the returned pointer (borrowed), checked in bounds. */
const uint8_t *st_tc_read_bin(st_tc_reader *r, size_t *n);
/* List header: element type and count (count checked against the bytes left). */
bool st_tc_read_list(st_tc_reader *r, uint8_t *elem, size_t *n);
/* Entering a struct value (a field or list element) and leaving it after
 * st_tc_next_field() returned false. */
void st_tc_enter(st_tc_reader *r);
void st_tc_leave(st_tc_reader *r);
/* Skips one value of the given type (nested values included). */
void st_tc_skip(st_tc_reader *r, uint8_t type);
/* Bytes consumed since init (valid when !bad). */
size_t st_tc_consumed(const st_tc_reader *r, const void *start);

#endif
