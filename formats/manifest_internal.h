/*
 * manifest_internal.h: the manifest of a partitioned layer table
 * (formats/manifest.c; byte layout in FORMAT.md, "Partitioned tables"),
 * shared by the reader, which opens a partitioned table through it, and
 * the fuzz target of its parser.
 */
#ifndef STRATA_MANIFEST_INTERNAL_H
#define STRATA_MANIFEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/file.h"

#define ST_MANIFEST_MAGIC "STRATA\x02\x00" /* 8 bytes; a layer file's is "STRATA\x01\x00" */
#define ST_MANIFEST_MAJOR 1
#define ST_MANIFEST_MINOR 0
/* magic, versions, body length, CRC32C and the smallest body (two empty
 * strings, rows, fingerprint, count, one part with a 8-byte name) */
#define ST_MANIFEST_MIN_BYTES (16 + 2 + 2 + 8 + 8 + 4 + 30 + 8 + 4)

/* One part as the manifest names it. name points into st_manifest.strings. */
typedef struct st_manifest_part {
    const char *name;     /* file name inside <table>.parts/ */
    uint64_t rows;
    uint64_t size_bytes;  /* the part file's size */
    uint32_t footer_crc;  /* the CRC32C in the part's tail (of its footer) */
    uint64_t fingerprint; /* the part footer's fingerprint */
} st_manifest_part;

/* A parsed manifest. Owns parts and strings; free with st_manifest_free(). */
typedef struct st_manifest {
    const char *layer, *table;
    uint64_t n_rows;      /* = the sum of the parts' rows (checked) */
    uint64_t fingerprint; /* the table's fingerprint, as a layer file's footer holds it */
    size_t n_parts;       /* 1..65535 */
    st_manifest_part *parts;
    char *strings;
} st_manifest;

/* True when buf starts with the manifest magic. */
bool st_manifest_is(const void *buf, size_t len);

/* Parses (buf, len), named `name` in messages, into *m (caller frees with
 * st_manifest_free(), also after a failure). ST_ERR_CORRUPT for any
 * inconsistency (never reads past len), ST_ERR_UNSUPPORTED for a newer
 * major version, ST_ERR_NOMEM. */
st_status st_manifest_parse(const void *buf, size_t len, const char *name, st_manifest *m, st_error *err) ST_MUST_USE;

void st_manifest_free(st_manifest *m);

/* The size of r's file and the footer CRC32C of its tail (a plain layer
 * file's reader; ST_ERR_INVALID for a partitioned one). */
st_status st_reader_file_tail(const st_reader *r, uint64_t *size_bytes, uint32_t *footer_crc) ST_MUST_USE;

#endif
