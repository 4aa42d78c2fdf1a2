/*
 * sqlite_btree_internal.h: a read-only decoder of SQLite table b-tree
 * pages (formats/sqlite_btree.c), the direct path of the source reader.
 * Only formats/ uses it (and its fuzz target); not installed.
 *
 * The decoder knows the bytes, not the schema: the caller (sqlite_source.c)
 * learns the geometry and the columns from sqlite3, holds a read
 * transaction for the whole scan so that no writer can change the pages,
 * and only then hands the file descriptor, the root page and the column
 * rules to st_bt_scan_open(). The decoder trusts none of the file's bytes:
 * every page number, offset, count, varint and length is checked against
 * the page and file bounds, every page is read at most once per scan (a
 * bitmap of the file's pages: cycles and shared pages are corruption), and
 * rowids must rise strictly and stay under the separators of the interior
 * pages above them. Anything else is ST_ERR_SQLITE with one line naming
 * the file, table and page.
 */
#ifndef STRATA_SQLITE_BTREE_INTERNAL_H
#define STRATA_SQLITE_BTREE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlite_lanes_internal.h"
#include "strata/status.h"

/* Geometry of a database file, from its 100-byte header. */
typedef struct st_bt_geom {
    uint32_t page_size;      /* 512..65536, a power of two */
    uint32_t reserved;       /* bytes at the end of each page (header byte 20) */
    uint32_t usable;         /* page_size - reserved, >= 480 */
    uint32_t n_pages;        /* pages of the database image */
    int journal;             /* header bytes 18/19: 1 rollback journal, 2 WAL */
    uint32_t encoding;       /* 1 UTF-8, 2 UTF-16le, 3 UTF-16be */
    uint32_t schema_cookie;  /* header offset 40 */
} st_bt_geom;

/* Parses the header hdr[0..len) of a file of file_bytes bytes into *g.
 * ST_ERR_SQLITE naming `path` when the magic, page size or reserved bytes
 * are impossible. n_pages is the in-header size when it is valid (change
 * counter == version-valid-for), else file_bytes / page_size, and never
 * more than file_bytes / page_size. */
st_status st_bt_geom_parse(st_bt_geom *g, const uint8_t *hdr, size_t len, uint64_t file_bytes,
                           const char *path, st_error *err) ST_MUST_USE;

/* One column of the record, as SQLite reads it. */
typedef struct st_bt_col {
    bool rowid_alias;        /* INTEGER PRIMARY KEY: the value is the rowid */
    bool real_affinity;      /* REAL affinity: stored integers read as REAL */
    bool has_default;        /* absent from a short record: ask `missing` */
} st_bt_col;

/* A value supplied for a column absent from a short record (ALTER TABLE
 * ADD COLUMN ... DEFAULT). cls is an st_sclass; bytes for TEXT / BLOB. */
typedef struct st_bt_value {
    int cls;
    int64_t i;
    double d;
    const uint8_t *bytes;
    size_t len;
} st_bt_value;

/* Fills *v with what SQLite reads for column `col` of the row `rowid`
 * whose record is too short to hold it. The bytes stay valid until the
 * scan is closed. Returns ST_OK or an error with err filled. */
typedef st_status (*st_bt_missing_fn)(void *ctx, size_t col, int64_t rowid, st_bt_value *v,
                                      st_error *err);

typedef struct st_bt_scan st_bt_scan;

/* What a scan reads: the table b-tree rooted at `root` of the file open
 * as `fd`, rows with rowid in [lo, hi], columns cols[0..n_cols). Every
 * pointer is borrowed until st_bt_scan_close(). */
typedef struct st_bt_scan_spec {
    int fd;
    const st_bt_geom *geom;
    uint32_t root;
    int64_t lo, hi;
    size_t n_cols;
    const st_bt_col *cols;
    st_bt_missing_fn missing;
    void *missing_ctx;
    const char *path;        /* for messages */
    const char *table;       /* for messages */
} st_bt_scan_spec;

/* Caller owns *out; close with st_bt_scan_close(). Reads nothing yet. */
st_status st_bt_scan_open(st_bt_scan **out, const st_bt_scan_spec *spec, st_error *err) ST_MUST_USE;

/* Decodes up to ls->batch_rows rows into the lanes ls (begun on the batch
 * columns) and their rowids into ls->rowids; *n_rows == 0 at the end. */
st_status st_bt_scan_next(st_bt_scan *sc, st_lanes *ls, size_t *n_rows, st_error *err) ST_MUST_USE;

/* Pages read so far (tree and overflow). */
uint64_t st_bt_scan_pages(const st_bt_scan *sc);

void st_bt_scan_close(st_bt_scan *sc);

#endif /* STRATA_SQLITE_BTREE_INTERNAL_H */
