/*
 * fixtures.h: the set-up the test files share, so that each test file
 * holds only what is particular to it.
 *
 *   places     a temporary directory made per suite or per test and removed
 *              after it (fx_tmpdir, fx_rmtree)
 *   commands   the CLI under test (fx_bin), a shell command's exit code
 *              (fx_sh) or its output (fx_capture)
 *   files      a whole file read back (fx_slurp, fx_read_file) or written
 *              (fx_put_file)
 *   sources    small SQLite sources: a database made from SQL (fx_make_db,
 *              fx_exec_sql) and `strata gen` with few rows (fx_gen_source)
 *   runs       a finished `strata run` over the demo customers and a
 *              generated source (fx_run_demo)
 *   numbers    one seeded random stream (fx_seed, fx_urand, fx_gauss) and
 *              points in well separated blobs (fx_blobs)
 *
 * Set-up that fails stops the test with a Criterion assertion naming what
 * failed, so a test body never checks its fixtures. Nothing here is
 * thread-safe: Criterion runs each test in its own process.
 * tests/report_fixture.h holds the report model and warehouse the report
 * tests share; its fx_ names are its own.
 */
#ifndef STRATA_TEST_FIXTURES_H
#define STRATA_TEST_FIXTURES_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The strata CLI under test: $STRATA_BIN (make test sets it), else
 * build/strata. */
const char *fx_bin(void);

/* Makes a fresh directory /tmp/<tag>XXXXXX and writes its path into dir
 * (cap bytes). Asserts. */
void fx_tmpdir(char *dir, size_t cap, const char *tag);

/* Removes dir and everything below it, first making it writable again (a
 * test may have taken the write bit away). Expects (non-fatal) success. */
void fx_rmtree(const char *dir);

/* Runs a shell command (printf format); its exit status, -1 when it did
 * not exit normally. */
int fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command (printf format, stdout and stderr together) and
 * reads up to cap - 1 bytes of its output into out (NUL-terminated);
 * its exit status as fx_sh. Asserts that it could be started. */
int fx_capture(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The whole file at path, NUL-terminated (callers search it with strstr);
 * *len (len may be NULL) its size in bytes. NULL when it cannot be
 * opened. Caller frees. */
char *fx_slurp(const char *path, size_t *len);

/* The text of dir/name (a command's captured stderr, say), at most 4095
 * bytes, "" when it cannot be read. Points into a static buffer that the
 * next call overwrites. */
const char *fx_text_of(const char *dir, const char *name);

/* The same for a file that must be there: asserts it opens and reads. */
char *fx_read_file(const char *path, size_t *len);

/* Writes len bytes of buf to path, replacing it. Asserts. */
void fx_put_file(const char *path, const void *buf, size_t len);

/* sqlite3_exec that must succeed: asserts, naming the SQL and SQLite's
 * message. */
void fx_exec_sql(sqlite3 *db, const char *sql);

/* Creates (or opens) the SQLite file at path and runs sql in it; the open
 * handle, for the caller to close. Asserts. */
sqlite3 *fx_make_db(const char *path, const char *sql);

/* `strata gen --out path --rows rows --seed seed`: a small generated
 * transactions source. Asserts exit 0. */
void fx_gen_source(const char *path, int rows, int seed);

/* Splits the transaction source src (strata gen's two tables) into n
 * shard databases dir/shard0.db.. and writes their comma-separated paths
 * into list: by_customer puts customer c in shard c % n (rows renumbered
 * from 1 in each shard, in source order), else shard k holds the k-th of
 * n contiguous rowid ranges with the source's rowids. Asserts. */
void fx_split_source(const char *src, const char *dir, int n, bool by_customer, char *list, size_t cap);

/* The layer files under dir/a/<sub> (sub: one or more folders, space
 * separated) that are missing from dir/b/<sub> or differ from them in any
 * byte, one a line: "" when all are the same. Asserts that dir/a/<sub>
 * holds some. Points into a static buffer (the next call overwrites it). */
const char *fx_differing_files(const char *dir, const char *a, const char *b, const char *sub);

/* `strata run --customers data/chinook.db --transactions tx --warehouse wh
 * --quiet --no-report extra`, stdout into dir/out.txt and stderr into
 * dir/err.txt; the exit status. */
int fx_run_demo(const char *dir, const char *tx, const char *wh, const char *extra);

/* One seeded stream of uniform doubles in [0, 1) (splitmix64) and of
 * standard normals from it (Box-Muller). */
void fx_seed(uint64_t seed);
double fx_urand(void);
double fx_gauss(void);

/* n points of d features (row-major) in k well separated blobs, from
 * seed; truth[i] is the blob of point i. Caller frees. */
float *fx_blobs(size_t n, size_t d, int k, int *truth, uint64_t seed);

/* How many times needle occurs in hay (overlapping matches count). */
size_t fx_count(const char *hay, const char *needle);

/* Checks markup: every <tag> has its </tag> in order, self-closing tags
 * close themselves, no raw '<' inside a quoted attribute, no bare '>' or
 * '&' (other than an entity) in text. With html, <meta> is a void element
 * and tag names and attribute quoting are not checked; without it (SVG,
 * XML) an empty tag name or an unquoted attribute value is an error.
 * NULL when fine, else a static message. */
const char *fx_check_markup(const char *s, bool html);

#endif
