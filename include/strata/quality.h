/*
 * quality.h: the data-quality suite, strata's take on Great Expectations.
 *
 * A suite is a plain-text file (syntax: docs/QUALITY.md) of sections, one
 * per warehouse table ("[silver.stg_customers]"), each holding one
 * expectation per line ("unique customer_id  severity=error"). The layer
 * in a section header is the stage tag: the pipeline runs the bronze
 * expectations right after ingest and the silver/gold/platinum ones after
 * their steps, by passing a layer filter to st_suite_run().
 *
 * Evaluation streams: a table is read chunk by chunk, each column block of
 * a chunk is decoded at most once whatever the number of expectations on
 * it, and zone maps (min/max/null count per block) answer whole chunks
 * without decoding when they can (not_null and completeness never decode
 * except to collect sample rows; values_between, temporal_window,
 * values_in and storage_class pass a chunk whose integer range is inside
 * the expectation). unique, no_duplicate_keys and referential keep an
 * in-memory key set (sorted arrays), which is the one place memory grows
 * with the table.
 *
 * Tables come from a "source": the warehouse directory
 * (<dir>/<layer>/<table>.strata through the layer-file reader), a path
 * callback (the pipeline passes its staged paths), or in-memory columns
 * (st_qmem, used by tests and by callers that check data before writing).
 *
 * An expectation that cannot be evaluated because its table or a column it
 * names is missing, or a column has the wrong type, is a failed
 * expectation (status warn or fail by its severity) with a message saying
 * why, never a crash and never a run error. Damaged files and I/O errors
 * are run errors: st_suite_run() returns their status.
 */
#ifndef STRATA_QUALITY_H
#define STRATA_QUALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "strata/buf.h"
#include "strata/column.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the suite --------------------------------------------------------- */

typedef enum st_qkind {
    ST_Q_ROW_COUNT_BETWEEN = 0, /* table rows within [lo, hi] */
    ST_Q_COLUMN_EXISTS,         /* every listed column exists */
    ST_Q_COLUMN_TYPE,           /* column's strata type is one of a list */
    ST_Q_NOT_NULL,              /* no NULL values (mostly applies) */
    ST_Q_COMPLETENESS,          /* non-NULL fraction >= threshold */
    ST_Q_VALUES_BETWEEN,        /* numeric values within [lo, hi] (mostly) */
    ST_Q_TEMPORAL_WINDOW,       /* the column's min..max inside [lo, hi] */
    ST_Q_VALUES_IN,             /* values belong to a set (mostly) */
    ST_Q_STORAGE_CLASS,         /* bronze <c>__class in a set of classes (mostly) */
    ST_Q_UNIQUE,                /* no value appears twice */
    ST_Q_NO_DUPLICATE_KEYS,     /* no compound key appears twice */
    ST_Q_REFERENTIAL,           /* values exist in another table's column (mostly) */
    ST_Q_REJECT_RATE,           /* rejects / bronze rows of a source table <= threshold */
    ST_Q_KIND_COUNT
} st_qkind;

/* Keyword of a kind ("values_between"); "?" if out of range. */
const char *st_qkind_name(st_qkind k);

typedef enum st_qseverity {
    ST_QSEV_WARN = 0,  /* default: a failure is reported, the run goes on */
    ST_QSEV_ERROR = 1  /* a failure stops the pipeline (ST_ERR_QUALITY) */
} st_qseverity;

/* A column reference: one or more alternative names ("customerid|customer_id");
 * the first that exists in the table is used. */
typedef struct st_qcolref {
    const char *const *names;
    size_t n_names;
} st_qcolref;

/* One parsed expectation. All strings are owned by the suite. */
typedef struct st_expectation {
    const char *id;          /* unique within the suite: "silver.stg_customers/unique/customer_id" */
    const char *layer;       /* section layer: bronze, silver, gold, platinum */
    const char *table;       /* section table */
    st_qkind kind;
    st_qseverity severity;
    double mostly;           /* required fraction of passing values, (0, 1]; 1 by default */
    const char *args;        /* canonical argument text, as written back to JSON */
    int line;                /* 1-based line in the suite file */
    /* arguments, by kind (unused ones are zero) */
    const st_qcolref *cols;  /* columns named (COLS of the grammar) */
    size_t n_cols;
    bool has_lo, has_hi;     /* bounds ('*' leaves one open) */
    double lo, hi;           /* bounds as doubles */
    bool lo_is_int, hi_is_int; /* the literal was an integer: lo_i/hi_i exact */
    int64_t lo_i, hi_i;
    double threshold;        /* completeness (>=), reject_rate (<=) */
    const char *const *values; /* values_in / column_type / storage_class lists (text) */
    size_t n_values;
    const char *ref_layer, *ref_table, *ref_column; /* referential target */
    const char *source_table;  /* reject_rate: bronze table name */
} st_expectation;

typedef struct st_suite st_suite;

/* Parses suite text text[0..len) (need not be NUL-terminated). `name` is
 * used in error messages ("default.suite:12:5: unknown expectation
 * 'not_nul'"). On success the caller owns *out (free with
 * st_suite_free()); on failure *out is NULL and err says where and why
 * (ST_ERR_INVALID), or ST_ERR_NOMEM. */
st_status st_suite_parse(st_suite **out, const char *text, size_t len,
                         const char *name, st_error *err) ST_MUST_USE;

/* Reads and parses the suite file at `path` (at most 16 MiB). Errors name
 * the path. ST_ERR_NOTFOUND / ST_ERR_IO when it cannot be read. */
st_status st_suite_load(st_suite **out, const char *path, st_error *err) ST_MUST_USE;

/* Parses the built-in default suite (pipeline/quality/suites/default.suite,
 * compiled in). */
st_status st_suite_load_default(st_suite **out, st_error *err) ST_MUST_USE;

/* Text of the built-in default suite (static storage, NUL-terminated). */
const char *st_suite_default_text(void);

void st_suite_free(st_suite *s);

size_t st_suite_count(const st_suite *s);
/* Expectation i (< st_suite_count), borrowed until st_suite_free(). */
const st_expectation *st_suite_get(const st_suite *s, size_t i);
/* Suite name given at parse time. */
const char *st_suite_name(const st_suite *s);

/* ---- results ----------------------------------------------------------- */

typedef enum st_qstatus {
    ST_QSTATUS_PASS = 0,
    ST_QSTATUS_WARN = 1,   /* failed, severity warn */
    ST_QSTATUS_FAIL = 2    /* failed, severity error */
} st_qstatus;

const char *st_qstatus_name(st_qstatus s); /* "pass", "warn", "fail" */

#define ST_QSAMPLE_MAX 5

typedef struct st_qsample {
    int64_t row;             /* 0-based row in the table, -1 when not a row */
    char value[80];          /* the offending value as text (truncated) */
} st_qsample;

typedef enum st_qobserved {
    ST_QOBS_NONE = 0,
    ST_QOBS_INT,
    ST_QOBS_F64,
    ST_QOBS_TEXT
} st_qobserved;

/* The outcome of one expectation. Strings are owned by the results. */
typedef struct st_qresult {
    const char *id, *layer, *table, *kind, *args;
    const char *column;      /* resolved column(s), "" for table-level kinds */
    st_qseverity severity;
    double mostly;
    int line;
    st_qstatus status;
    bool evaluated;          /* false: table/column missing or wrong type (see message) */
    st_qobserved observed_kind;
    int64_t observed_i;
    double observed_f;
    char observed_text[96];
    uint64_t unexpected_count;
    uint64_t rows_checked;   /* values looked at (NULLs excluded where they are ignored) */
    uint64_t chunks_skipped; /* chunks answered from zone maps alone */
    uint64_t chunks_decoded;
    size_t n_sample;
    st_qsample sample[ST_QSAMPLE_MAX];
    char message[256];       /* one line: why it failed, or "" */
} st_qresult;

typedef struct st_quality_results st_quality_results;

/* An empty result set, for accumulating several runs (one per layer) with
 * st_quality_results_merge(). Caller owns *out. */
st_status st_quality_results_new(st_quality_results **out, st_error *err) ST_MUST_USE;
/* Moves every result of src to the end of dst and frees src (also on
 * failure). dst's layer list becomes "<dst layers>,<src layers>". */
st_status st_quality_results_merge(st_quality_results *dst, st_quality_results *src,
                                   st_error *err) ST_MUST_USE;

/* Number of results; NULL counts as empty. st_quality_results_count is
 * the same function under the pipeline's name. */
size_t st_quality_count(const st_quality_results *r);
size_t st_quality_results_count(const st_quality_results *r);
const st_qresult *st_quality_get(const st_quality_results *r, size_t i);
/* Counts by status; any pointer may be NULL. */
void st_quality_counts(const st_quality_results *r, size_t *n_pass, size_t *n_warn, size_t *n_fail);
void st_quality_results_free(st_quality_results *r);

/* True when an expectation of severity error failed. */
bool st_quality_has_error(const st_quality_results *r);
/* ST_OK, or ST_ERR_QUALITY with a message naming the first failed
 * severity=error expectation (id, suite line, observed, message) and how
 * many others failed. */
st_status st_quality_check(const st_quality_results *r, st_error *err) ST_MUST_USE;

/* Appends the results as one JSON document:
 * {"suite":..., "layers":..., "counts":{"pass":..,"warn":..,"fail":..},
 *  "results":[{"id","table","layer","column","kind","args","severity",
 *  "mostly","line","status","evaluated","observed","unexpected_count",
 *  "rows_checked","chunks_skipped","chunks_decoded","sample":[{"row","value"}],
 *  "message"}, ...]}. Deterministic. */
void st_quality_to_json(const st_quality_results *r, st_buf *out);
/* Writes st_quality_to_json() to `path` atomically, creating its directory
 * (the pipeline uses <warehouse>/quality/results.json). */
st_status st_quality_write_json(const st_quality_results *r, const char *path,
                                st_error *err) ST_MUST_USE;
/* A compact terminal summary: counts, then one row per warn/fail. */
void st_quality_print_summary(const st_quality_results *r, FILE *f);

/* ---- running ------------------------------------------------------------ */

/* Runs the expectations whose section layer equals layer_filter (NULL or
 * "" = all; a comma list like "silver,gold" selects several) against
 * <warehouse_dir>/<layer>/<table>.strata. Caller owns *out (free with
 * st_quality_results_free()); results are in suite order. Returns a
 * failure only for damaged files, I/O or memory; failed expectations are
 * results, not errors (see st_quality_check()). */
st_status st_suite_run(const st_suite *s, const char *warehouse_dir,
                       const char *layer_filter, st_quality_results **out,
                       st_error *err) ST_MUST_USE;

/* Where to read layer.table from: writes a NUL-terminated path into
 * buf[0..cap). Returns false when the path does not fit. */
typedef bool (*st_qpath_fn)(void *ctx, const char *layer, const char *table,
                            char *buf, size_t cap);

/* As st_suite_run(), with paths chosen by `path` (e.g. staged files; it
 * must answer from several threads when threads > 1), evaluating up to
 * `threads` tables at a time: the same results for any thread count. */
st_status st_suite_run_paths(const st_suite *s, st_qpath_fn path, void *ctx,
                             const char *layer_filter, int threads,
                             st_quality_results **out, st_error *err) ST_MUST_USE;
/* The same on the workers of pool (strata/pool.h; NULL: on the caller
 * alone), a table per thread at a time. */
struct st_pool;
st_status st_suite_run_paths_on(const st_suite *s, st_qpath_fn path, void *ctx,
                                const char *layer_filter, struct st_pool *pool,
                                st_quality_results **out, st_error *err) ST_MUST_USE;

/* In-memory tables: a small registry of named tables made of borrowed
 * columns, split into chunks of chunk_rows rows with zone maps computed
 * on the fly exactly as the layer-file writer keeps them. */
typedef struct st_qmem st_qmem;

st_status st_qmem_new(st_qmem **out) ST_MUST_USE;
/* Registers layer.table with n_cols columns named names[j]; the columns
 * (all of the same n_rows) are borrowed until st_qmem_free(). chunk_rows
 * 0 means the file format's chunk size. ST_ERR_INVALID on unequal column
 * lengths or a duplicate table. */
st_status st_qmem_add(st_qmem *m, const char *layer, const char *table,
                      const char *const *names, const st_column *cols,
                      size_t n_cols, size_t chunk_rows, st_error *err) ST_MUST_USE;
void st_qmem_free(st_qmem *m);

st_status st_suite_run_mem(const st_suite *s, const st_qmem *m,
                           const char *layer_filter, st_quality_results **out,
                           st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_QUALITY_H */
