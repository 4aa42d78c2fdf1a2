/*
 * source.h: reading the SQLite source tables (the only place strata talks
 * to a database engine, and only to read).
 *
 * A source is one SQLite file opened read-only through a `file:...?mode=ro`
 * URI: opening never creates or modifies a file, a missing path is
 * ST_ERR_NOTFOUND and a file whose header is not SQLite's is ST_ERR_SQLITE.
 * Table and column names are matched case-insensitively (ASCII), as SQLite
 * itself matches them, so the pipeline can ask for {"Customer",
 * "customers"} and get whichever spelling the file uses.
 *
 * A table is read into the bronze representation of docs/TABLES.md: a
 * leading `_rowid int64`, then for every source column `c` (lower-cased,
 * in source order) the triple
 *
 *   c          typed by declared affinity (INTEGER -> int64, REAL -> float64,
 *              TEXT -> string); where the affinity does not decide (BLOB,
 *              i.e. no declared type, or NUMERIC) string, or with
 *              st_source_type_by_values() the type of the column's
 *              dominant storage class; present when the value fits it,
 *   c__class   int32 storage class 0 NULL, 1 INTEGER, 2 REAL, 3 TEXT, 4 BLOB,
 *   c__raw     bytes, present when the value does not fit `c`: INTEGER as
 *              decimal text, REAL as %.17g text, TEXT/BLOB as their bytes,
 *
 * so every stored value can be reproduced exactly from bronze.
 *
 * Rowids. Scans go in rowid order over a closed range [lo, hi] so that
 * several threads can read disjoint ranges of one table, each through its
 * OWN st_source (an st_source and everything opened from it are
 * single-threaded; the SQLite connection is opened without mutexes).
 * Views and WITHOUT ROWID tables have no rowid: for them `_rowid` is the
 * 1-based ordinal of the row in the table's natural order (primary key
 * order for WITHOUT ROWID tables, SQLite's order for a view), the rowid
 * range is [1, row count], and ranges are read with LIMIT/OFFSET, so
 * splitting them across threads costs re-scanning prefixes. The same
 * fallback applies to a rowid table whose columns shadow all three names
 * rowid, _rowid_ and oid.
 *
 * Two readers, one result. A scan of a rowid table decodes the table's
 * b-tree pages itself (formats/sqlite_btree.c) when that is provably
 * safe: sqlite3 holds a read transaction for the whole scan, the file is
 * UTF-8, in rollback-journal mode or WAL mode with an empty -wal file, and
 * its header agrees with what sqlite3 reads. Otherwise (views, WITHOUT
 * ROWID, UTF-16, WAL frames, generated columns, STRATA_SOURCE_PATH=step)
 * it steps `SELECT` with sqlite3_step. Both give byte-identical bronze.
 */
#ifndef STRATA_SOURCE_H
#define STRATA_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/column.h"
#include "strata/file.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SQLite storage classes as stored in `c__class` (fixed by docs/TABLES.md). */
typedef enum st_sclass {
    ST_CLASS_NULL = 0,
    ST_CLASS_INTEGER = 1,
    ST_CLASS_REAL = 2,
    ST_CLASS_TEXT = 3,
    ST_CLASS_BLOB = 4
} st_sclass;

typedef struct st_source st_source;

/* Opens the SQLite file `path` read-only. Errors: ST_ERR_NOTFOUND
 * ("cannot open source 'x.db': no such file"), ST_ERR_SQLITE ("'x.db' is
 * not a SQLite database", also for an empty file), ST_ERR_IO for other
 * open failures. Caller owns *out; close with st_source_close(). The path
 * is copied. */
st_status st_source_open(st_source **out, const char *path, st_error *err) ST_MUST_USE;

/* Closes the connection and frees everything the source owns (resolved
 * names included). NULL does nothing. Every scan must be closed first. */
void st_source_close(st_source *src);

/* The path given to st_source_open(); owned by src. */
const char *st_source_path(const st_source *src);

/* Finds the first of candidates[0..n) naming a table or view of the file
 * (case-insensitive). *resolved receives the name as the file spells it,
 * owned by src until st_source_close(). ST_ERR_SCHEMA when none exists:
 * "no table 'Customer' or 'customers' in 'x.db'". */
st_status st_source_find_table(st_source *src, const char *const *candidates, size_t n,
                               const char **resolved, st_error *err) ST_MUST_USE;

/* SQLite's column affinity of a declared type (datatype3.html, 3.1). */
typedef enum st_affinity {
    ST_AFF_BLOB = 0,  /* no declared type, or one containing BLOB */
    ST_AFF_TEXT,
    ST_AFF_NUMERIC,
    ST_AFF_INTEGER,
    ST_AFF_REAL
} st_affinity;

/* One column of a source table. */
typedef struct st_source_col {
    char *name;       /* as declared in the file */
    char *lname;      /* ASCII lower-cased: the bronze column name */
    char *decl_type;  /* declared type, "" when none */
    st_affinity affinity;
    st_type type;     /* bronze type: ST_TYPE_I64, _F64 or _STR, by affinity
                       * (INTEGER, REAL, else string) or, after
                       * st_source_type_by_values(), by the dominant class */
    bool by_values;   /* type chosen by st_source_type_by_values() */
} st_source_col;

/* A described source table and its bronze schema. Owns every string and
 * array below; free with st_source_table_free(). */
typedef struct st_source_table {
    char *name;               /* as spelled in the file */
    char *source_path;        /* the file, for messages */
    bool is_view;
    bool has_rowid;           /* false: ordinal fallback (see top of file) */
    char *rowid_name;         /* "rowid", "_rowid_" or "oid"; NULL without rowid */
    size_t n_cols;
    st_source_col *cols;
    size_t n_fields;          /* 1 + 3 * n_cols */
    st_field *fields;         /* bronze schema; names point into owned storage */
} st_source_table;

/* Describes table `name` (any case): its columns in source order with
 * declared types, and the bronze schema (`_rowid` not nullable, `c` and
 * `c__raw` nullable, `c__class` not nullable). ST_ERR_SCHEMA when the
 * table does not exist, has no columns, has a column name that is not
 * UTF-8, or has names whose bronze columns would collide (e.g. a column
 * literally named `x__class` next to `x`). Caller owns *out. */
st_status st_source_describe(st_source *src, const char *name, st_source_table **out,
                             st_error *err) ST_MUST_USE;

void st_source_table_free(st_source_table *t);

/* Types the columns whose declared affinity does not decide (BLOB, i.e.
 * no declared type, or NUMERIC) by their values: one scan of the whole
 * table by the reader a scan chooses (pages or sqlite3_step, which give
 * the same storage classes) counts each such column's classes, and the
 * column takes the type of its most frequent non-NULL class (INTEGER ->
 * int64, REAL -> float64, TEXT or BLOB -> string; ties go to the earlier
 * of INTEGER, REAL, TEXT, BLOB; no values -> string). Updates
 * t->cols[j].type / .by_values and the bronze field's type and
 * description; on failure they stay string. *n_counted (optional)
 * receives the number of such columns; nothing is read when it is 0. The
 * counts are those of the scan's read transaction, which ends with it.
 * Errors as st_source_scan_next(). */
st_status st_source_type_by_values(st_source *src, st_source_table *t, size_t *n_counted,
                                   st_error *err) ST_MUST_USE;

/* The same over the shards of one table: ts[0..n_shards) are the same
 * table in n_shards files (same columns and affinities, in that order,
 * each described from its own srcs[k]); the classes are counted over all
 * of them and every ts[k] gets the types one file holding all their rows
 * would get. */
st_status st_source_type_by_values_shards(st_source *const *srcs, st_source_table *const *ts, size_t n_shards,
                                          size_t *n_counted, st_error *err) ST_MUST_USE;

/* Types column j as st_source_type_by_values() would have typed it
 * `type` (ST_TYPE_I64, _F64 or _STR): what a process that did not count
 * the classes (another rank) is told. False, changing nothing, when j is
 * out of range, its declared type decides, or type is not one of those. */
bool st_source_table_set_type(st_source_table *t, size_t j, st_type type);

/* Index of column `name` (ASCII case-insensitive) in t->cols, or -1. */
int st_source_table_find_col(const st_source_table *t, const char *name);

/* Looks up names[0..n) (case-insensitive) and stores their indices in
 * t->cols into idx[0..n). ST_ERR_SCHEMA for the first missing one:
 * "table 'sales_qty' in 'x.db' has no column 'quantity'". */
st_status st_source_require_cols(const st_source_table *t, const char *const *names,
                                 size_t n, int *idx, st_error *err) ST_MUST_USE;

/* Bronze field index of source column j: the value column is 1 + 3j,
 * its class 2 + 3j, its raw 3 + 3j. */
static inline size_t st_source_field_value(size_t j) { return 1 + 3 * j; }
static inline size_t st_source_field_class(size_t j) { return 2 + 3 * j; }
static inline size_t st_source_field_raw(size_t j) { return 3 + 3 * j; }

/* Number of rows of the table. */
st_status st_source_count_rows(st_source *src, const st_source_table *t, uint64_t *n_rows,
                               st_error *err) ST_MUST_USE;

/* Smallest and largest rowid (ordinals 1..n without a rowid) and the row
 * count. For an empty table *n_rows = 0, *min_rowid = 1, *max_rowid = 0
 * (an empty range). */
st_status st_source_rowid_range(st_source *src, const st_source_table *t, int64_t *min_rowid,
                                int64_t *max_rowid, uint64_t *n_rows, st_error *err) ST_MUST_USE;

/* Smallest and largest rowid without counting the rows: two descents of
 * a rowid table's b-tree, where count(*) reads every page (ordinals 1..n,
 * counted, without a rowid). *any is false for an empty table, and then
 * *min_rowid = 1, *max_rowid = 0. */
st_status st_source_rowid_span(st_source *src, const st_source_table *t, int64_t *min_rowid,
                               int64_t *max_rowid, bool *any, st_error *err) ST_MUST_USE;

/* Splits [min, max] rowid into n_parts contiguous closed ranges lo[i]..hi[i]
 * of (nearly) equal rowid width, in order, covering every rowid exactly
 * once; parts beyond the rows available are empty (lo > hi). Balanced by
 * rowid value, not by row count: gaps in rowids make parts uneven. */
st_status st_source_split_rowids(st_source *src, const st_source_table *t, size_t n_parts,
                                 int64_t *lo, int64_t *hi, st_error *err) ST_MUST_USE;

/* ---- scanning ---- */

typedef struct st_source_scan st_source_scan;

/* Opens a scan of rows with rowid in [rowid_lo, rowid_hi] (ordinals for
 * tables without rowid) in rowid order, batch_rows (>= 1) rows per call.
 * Borrows src and t until st_source_scan_close(). Caller owns *out. */
st_status st_source_scan_open(st_source_scan **out, st_source *src, const st_source_table *t,
                              int64_t rowid_lo, int64_t rowid_hi, size_t batch_rows,
                              st_error *err) ST_MUST_USE;

/* Reads the next batch into cols[0..t->n_fields), which must be columns
 * initialised with the bronze schema's types (st_column_init). Each column
 * is reset, then filled with *n_rows (<= batch_rows) rows; *n_rows == 0
 * means the range is exhausted. Columns keep their allocations between
 * calls, so reusing the same cols makes steady-state scanning
 * allocation-free. */
st_status st_source_scan_next(st_source_scan *scan, st_column *cols, size_t *n_rows,
                              st_error *err) ST_MUST_USE;

/* Which reader the scan uses, for the run log: "pages" (the table b-tree
 * decoded directly, formats/sqlite_btree.c) or "sqlite3_step (why)" (the
 * direct path was not provably safe or not asked for). Owned by scan. */
const char *st_source_scan_path(const st_source_scan *scan);

/* Rows returned so far. */
uint64_t st_source_scan_rows(const st_source_scan *scan);

void st_source_scan_close(st_source_scan *scan);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_SOURCE_H */
