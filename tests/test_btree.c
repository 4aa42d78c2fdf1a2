/*
 * test_btree.c: the direct reader of SQLite table b-tree pages
 * (formats/sqlite_btree.c) against the sqlite3_step reader.
 *
 * Every fixture is built here by sqlite3 itself, covering the cases the
 * decoder must read as SQLite does: every serial type, NULLs, REAL
 * affinity over stored integers, INTEGER PRIMARY KEY (and the DESC form
 * that is not a rowid alias), short records after ALTER TABLE ADD COLUMN
 * with and without DEFAULT, page sizes 512..65536 with reserved bytes,
 * multi-megabyte overflow chains, freelist pages, auto-vacuum pointer-map
 * pages, deleted rows, and columns typed by their values (no declared
 * type, BLOB or NUMERIC). Each table is scanned twice, through the pages
 * and with STRATA_SOURCE_PATH=step, both written as bronze layer files,
 * and the files must be identical byte for byte. Fallback cases (WAL with
 * frames, UTF-16, WITHOUT ROWID, a writer's lock) check the reader named
 * and the result; damaged pages must give ST_ERR_SQLITE naming the file,
 * table and page.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "strata/file.h"
#include "strata/source.h"

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/strata_btree_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
    unsetenv("STRATA_SOURCE_PATH");
}

TestSuite(btree, .init = setup, .fini = teardown, .timeout = 120);

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmpdir, name); }

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "fixture SQL failed: %s (%s)", msg ? msg : "?", sql);
}

/* A database at path: `pre` runs before anything is written (page size,
 * encoding, auto_vacuum), then reserved bytes are set, then `sql`. */
static sqlite3 *make_db(const char *path, const char *pre, int reserved, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    if (pre) exec_ok(db, pre);
    if (reserved >= 0) {
        int r = reserved;
        cr_assert_eq(sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &r), SQLITE_OK);
    }
    exec_ok(db, sql);
    return db;
}

/* Reads table `name` of `path` through reader `mode` ("auto" or "step")
 * into a bronze layer file (small chunks, batches of `batch` rows, the
 * rowid range cut into `parts` scans) and returns its bytes; *reader gets
 * the reader the first scan used. */
static char *bronze_of(const char *path, const char *name, const char *mode, size_t batch, size_t parts,
                       size_t *len, char *reader, size_t reader_cap)
{
    if (!strcmp(mode, "step")) setenv("STRATA_SOURCE_PATH", "step", 1);
    else unsetenv("STRATA_SOURCE_PATH");
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, path, &err), ST_OK, "%s", err.msg);
    st_source_table *t = NULL;
    cr_assert_eq(st_source_describe(src, name, &t, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_type_by_values(src, t, NULL, &err), ST_OK, "%s", err.msg); /* as ingest does */
    char out[512];
    snprintf(out, sizeof out, "%s/%s.%s.strata", tmpdir, name, mode);
    st_file_meta meta = {.layer = "bronze", .table = name, .params = ""};
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 1024};
    st_writer *w = NULL;
    cr_assert_eq(st_writer_open(&w, out, t->fields, t->n_fields, &meta, &wo, &err), ST_OK, "%s", err.msg);
    st_column *cols = calloc(t->n_fields, sizeof *cols);
    for (size_t f = 0; f < t->n_fields; f++) st_column_init(&cols[f], t->fields[f].type);
    int64_t lo[8], hi[8];
    cr_assert(parts <= 8);
    cr_assert_eq(st_source_split_rowids(src, t, parts, lo, hi, &err), ST_OK, "%s", err.msg);
    if (reader) snprintf(reader, reader_cap, "(no scan)");
    for (size_t p = 0; p < parts; p++) {
        st_source_scan *sc = NULL;
        cr_assert_eq(st_source_scan_open(&sc, src, t, lo[p], hi[p], batch, &err), ST_OK, "%s", err.msg);
        if (reader && p == 0) snprintf(reader, reader_cap, "%s", st_source_scan_path(sc));
        for (;;) {
            size_t got = 0;
            cr_assert_eq(st_source_scan_next(sc, cols, &got, &err), ST_OK, "%s", err.msg);
            if (!got) break;
            cr_assert_eq(st_writer_write(w, cols, 0, got, &err), ST_OK, "%s", err.msg);
        }
        st_source_scan_close(sc);
    }
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    for (size_t f = 0; f < t->n_fields; f++) st_column_free(&cols[f]);
    free(cols);
    st_source_table_free(t);
    st_source_close(src);
    unsetenv("STRATA_SOURCE_PATH");
    FILE *f = fopen(out, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Both readers give the same bronze file; the direct one was used
 * (want_pages) or not. */
static void same_both_ways(const char *path, const char *name, bool want_pages, size_t batch, size_t parts)
{
    size_t na = 0, nb = 0;
    char reader[256], step_reader[256];
    char *a = bronze_of(path, name, "auto", batch, parts, &na, reader, sizeof reader);
    char *b = bronze_of(path, name, "step", batch, parts, &nb, step_reader, sizeof step_reader);
    cr_expect(strncmp(step_reader, "sqlite3_step", 12) == 0 || !strcmp(step_reader, "(no scan)"), "%s",
              step_reader);
    if (want_pages) cr_expect_str_eq(reader, "pages", "table %s read by %s", name, reader);
    else cr_expect(strncmp(reader, "sqlite3_step", 12) == 0, "table %s read by %s", name, reader);
    cr_expect_eq(na, nb, "table %s: %zu vs %zu bytes", name, na, nb);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "table %s: bronze differs between readers", name);
    free(a);
    free(b);
}

static const char every_type_sql[] =
    "CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, u, n NUMERIC);"
    "INSERT INTO t VALUES (0, 0.0, '', x'', NULL, NULL), (1, 1.0, 'a', x'00', 1, 1),"
    " (-1, -1.5, 'hé', x'ff00', -1, '12'), (127, 2.0, NULL, NULL, 127, 3.5),"
    " (-128, 1e300, CAST(x'ff' AS TEXT), x'41', -128, 'x'), (32767, -0.0, 'tab\there', NULL, 32767, x'01'),"
    " (-32768, 4.9e-324, 'z', NULL, -32768, NULL), (8388607, 123456789.0, 'zz', NULL, 8388607, 8388607),"
    " (-8388608, 9007199254740993, 'q', NULL, -8388608, 1.0), (2147483647, 2147483648, 'w', NULL, 2147483647, 0),"
    " (-2147483648, 'text in real', 'e', NULL, 'text', -2147483648),"
    " (140737488355327, x'beef', 'r', 5, 140737488355327, 140737488355327),"
    " (-140737488355328, 0.1, 7, 7.5, -140737488355328, -140737488355328),"
    " (9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807),"
    " (-9223372036854775808, -9223372036854775808, -9223372036854775808, NULL, -9223372036854775808, -9223372036854775808),"
    " ('not int', 2.5, 'x', NULL, 2.5, 'y'), (x'0102', NULL, x'c3a9', NULL, x'', NULL);"
    "DELETE FROM t WHERE i = 127;";

Test(btree, every_serial_type_and_class)
{
    char p[400];
    path_in(p, sizeof p, "types.db");
    sqlite3_close(make_db(p, NULL, -1, every_type_sql));
    same_both_ways(p, "t", true, 3, 1);
    same_both_ways(p, "t", true, 64, 3);
}

/* Table t of path described and typed by its values, as ingest does;
 * *src the open source (caller closes), *counted the columns counted. */
static st_source_table *typed_by_values(const char *path, st_source **src, size_t *counted)
{
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(src, path, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_describe(*src, "t", &t, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_type_by_values(*src, t, counted, &err), ST_OK, "%s", err.msg);
    return t;
}

/* The naive reference of st_source_type_by_values(): every row stepped,
 * sqlite3_column_type() counted, the most frequent class wins (ties to
 * the earlier of INTEGER, REAL, TEXT, BLOB), string when all NULL. */
static st_type naive_dominant(const char *path, const char *table, const char *col)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT \"%s\" FROM \"%s\"", col, table);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    long n[6] = {0};
    while (sqlite3_step(st) == SQLITE_ROW) n[sqlite3_column_type(st, 0)]++;
    sqlite3_finalize(st);
    sqlite3_close(db);
    int best = SQLITE_INTEGER;
    for (int c = SQLITE_FLOAT; c <= SQLITE_BLOB; c++)
        if (n[c] > n[best]) best = c;
    if (n[best] == 0 || best >= SQLITE_TEXT) return ST_TYPE_STR;
    return best == SQLITE_INTEGER ? ST_TYPE_I64 : ST_TYPE_F64;
}

Test(btree, untyped_columns_typed_by_values_both_paths)
{
    char p[400];
    path_in(p, sizeof p, "untyped.db");
    /* i: integers and one text; r: reals and integers; s: text and
     * integers; b: blobs; z: all NULL; tie: one integer, one real each
     * way (integer wins); n NUMERIC: numeric-looking text stored as
     * numbers; d BLOB declared, integer dominant; x TEXT declared (decided,
     * not counted); a short-record column added with an integer DEFAULT */
    sqlite3_close(make_db(p, "PRAGMA page_size=1024;", -1,
                          "CREATE TABLE t(i, r, s, b, z, tie, n NUMERIC, d BLOB, x TEXT);"
                          "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 3000)"
                          " INSERT INTO t SELECT CASE WHEN k = 1500 THEN 'odd' ELSE k * 7 END,"
                          " CASE WHEN k % 3 = 0 THEN k ELSE k + 0.5 END,"
                          " CASE WHEN k % 4 = 0 THEN k ELSE printf('s%d', k) END,"
                          " CASE WHEN k % 5 = 0 THEN NULL ELSE zeroblob(k % 7) END, NULL,"
                          " CASE WHEN k = 1 THEN 1 WHEN k = 2 THEN 2.5 END,"
                          " CASE WHEN k % 9 = 0 THEN 'n/a' ELSE printf('%d', k) END,"
                          " CASE WHEN k = 77 THEN x'00ff' ELSE k END, k FROM c;"
                          "ALTER TABLE t ADD COLUMN late DEFAULT 42;"
                          "INSERT INTO t(i, late) VALUES (1, 'late text');"));
    static const char *const names[] = {"i", "r", "s", "b", "z", "tie", "n", "d", "x", "late"};
    static const st_type want[] = {ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_STR, ST_TYPE_STR,
                                   ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_I64, ST_TYPE_STR, ST_TYPE_I64};
    st_source *src = NULL;
    size_t counted = 0;
    st_source_table *t = typed_by_values(p, &src, &counted);
    cr_expect_eq(counted, 9, "every column but the TEXT one is counted");
    for (size_t j = 0; j < 10; j++) {
        cr_expect_eq(t->cols[j].type, want[j], "column %s: %s", names[j], st_type_name(t->cols[j].type));
        cr_expect_eq(t->fields[st_source_field_value(j)].type, t->cols[j].type, "column %s: field type", names[j]);
        if (j != 8 && j != 9) /* 'late': the short records' DEFAULT is a value SQLite reads, which naive counts too */
            cr_expect_eq(naive_dominant(p, "t", names[j]), want[j], "column %s: the naive count", names[j]);
        cr_expect_eq(t->cols[j].by_values, j != 8, "column %s", names[j]);
    }
    cr_expect_eq(naive_dominant(p, "t", "late"), ST_TYPE_I64);
    st_source_table_free(t);
    st_source_close(src);
    same_both_ways(p, "t", true, 256, 1);
    same_both_ways(p, "t", true, 1000, 3);
}

/* More undecided columns than one counting query holds (256 a query). */
Test(btree, wide_untyped_table_counted_in_groups)
{
    char p[400];
    path_in(p, sizeof p, "wide.db");
    enum { W = 600 };
    static char create[W * 12 + 64], insert[W * 12 + 64];
    size_t lc = (size_t)snprintf(create, sizeof create, "CREATE TABLE t(");
    size_t li = (size_t)snprintf(insert, sizeof insert, "INSERT INTO t VALUES (");
    for (int k = 0; k < W; k++) {
        lc += (size_t)snprintf(create + lc, sizeof create - lc, "%sc%d", k ? ", " : "", k);
        li += (size_t)snprintf(insert + li, sizeof insert - li, k % 3 == 0 ? "%s%d" : (k % 3 == 1 ? "%s'%d'" : "%s%d.5"),
                               k ? ", " : "", k);
    }
    snprintf(create + lc, sizeof create - lc, ");");
    snprintf(insert + li, sizeof insert - li, ");");
    sqlite3 *db = make_db(p, NULL, -1, create);
    exec_ok(db, insert);
    exec_ok(db, insert);
    sqlite3_close(db);
    st_source *src = NULL;
    size_t counted = 0;
    st_source_table *t = typed_by_values(p, &src, &counted);
    cr_expect_eq(counted, W);
    for (size_t k = 0; k < W; k++) {
        st_type want = k % 3 == 0 ? ST_TYPE_I64 : (k % 3 == 1 ? ST_TYPE_STR : ST_TYPE_F64);
        cr_expect_eq(t->cols[k].type, want, "column c%zu: %s", k, st_type_name(t->cols[k].type));
    }
    st_source_table_free(t);
    st_source_close(src);
    same_both_ways(p, "t", true, 16, 1);
}

Test(btree, integer_primary_key_and_its_desc_quirk)
{
    char p[400];
    path_in(p, sizeof p, "ipk.db");
    sqlite3_close(make_db(p, NULL, -1,
                          "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT);"
                          "INSERT INTO a VALUES (-5, 'neg'), (3, 'x'), (1000000000000, 'big'), (NULL, 'auto');"
                          "CREATE TABLE d(id INTEGER PRIMARY KEY DESC, v TEXT);"
                          "INSERT INTO d VALUES (7, 'x'), (NULL, 'null pk'), (-2, 'y');"
                          "CREATE TABLE k(a TEXT, id integer primary key, b REAL);"
                          "INSERT INTO k VALUES ('p', 10, 1), ('q', 20, 2.5);"));
    same_both_ways(p, "a", true, 2, 1);
    same_both_ways(p, "d", true, 2, 2);
    same_both_ways(p, "k", true, 100, 1);
}

Test(btree, short_records_after_add_column)
{
    char p[400];
    path_in(p, sizeof p, "alter.db");
    sqlite3_close(make_db(p, NULL, -1,
                          "CREATE TABLE t(a INTEGER, b TEXT);"
                          "INSERT INTO t VALUES (1, 'one'), (2, 'two');"
                          "ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'abc';"
                          "ALTER TABLE t ADD COLUMN d REAL DEFAULT 2;"
                          "ALTER TABLE t ADD COLUMN e INTEGER;"
                          "ALTER TABLE t ADD COLUMN f TEXT DEFAULT 5;"
                          "ALTER TABLE t ADD COLUMN g BLOB DEFAULT x'0102';"
                          "ALTER TABLE t ADD COLUMN h NUMERIC DEFAULT -7.25;"
                          "INSERT INTO t VALUES (3, 'three', 'set', 9, 9, 'f', x'', 1);"
                          "INSERT INTO t(a) VALUES (4);"
                          "INSERT INTO t VALUES (5, 'five', NULL, NULL, NULL, NULL, NULL, NULL);"));
    same_both_ways(p, "t", true, 2, 1);
}

/* Page sizes 512..65536 with reserved bytes, overflow chains of several
 * MB, freelist and pointer-map pages, deleted rows. */
Test(btree, page_sizes_reserved_bytes_overflow_freelist_autovacuum)
{
    static const struct {
        int page_size, reserved;
        const char *vacuum;
    } cases[] = {{512, 0, "NONE"}, {512, 32, "FULL"}, {1024, 8, "INCREMENTAL"}, {4096, 0, "FULL"},
                 {8192, 40, "NONE"}, {65536, 0, "NONE"}, {65536, 255, "FULL"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[400], name[64], pre[200];
        snprintf(name, sizeof name, "ps%zu.db", i);
        path_in(p, sizeof p, name);
        snprintf(pre, sizeof pre, "PRAGMA page_size=%d; PRAGMA auto_vacuum=%s;", cases[i].page_size,
                 cases[i].vacuum);
        sqlite3 *db = make_db(p, pre, cases[i].reserved,
                              "CREATE TABLE t(id INTEGER, q INTEGER, s TEXT, b BLOB, r REAL);"
                              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)"
                              " INSERT INTO t SELECT x, x * 7919 % 1000, printf('MAT%05d', x % 150),"
                              " CASE WHEN x % 97 = 0 THEN randomblob(x % 3000) END, x / 7.0 FROM c;"
                              "INSERT INTO t VALUES (-1, 0, (SELECT group_concat('text of many bytes ', '')"
                              " FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 150000)"
                              " SELECT x FROM c)), zeroblob(3000000), 1.5);"
                              "INSERT INTO t VALUES (4000, 1, 'near the limit', randomblob(1000), 0);"
                              "DELETE FROM t WHERE id % 5 = 0 AND id > 100;"
                              "CREATE TABLE gone(x); INSERT INTO gone SELECT randomblob(600) FROM t; DROP TABLE gone;");
        int64_t fl = 0;
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db, "PRAGMA freelist_count", -1, &st, NULL);
        if (sqlite3_step(st) == SQLITE_ROW) fl = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (strcmp(cases[i].vacuum, "FULL")) cr_expect_gt(fl, 0, "case %zu has no freelist pages", i);
        sqlite3_close(db);
        same_both_ways(p, "t", true, 500, i % 2 ? 3 : 1);
    }
}

Test(btree, wal_mode_empty_wal_reads_pages_and_frames_fall_back)
{
    char p[400];
    path_in(p, sizeof p, "wal.db");
    sqlite3 *db = make_db(p, "PRAGMA journal_mode=WAL;", -1,
                          "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');");
    sqlite3_close(db); /* last connection: checkpointed, -wal removed */
    same_both_ways(p, "t", true, 10, 1);

    /* a writer keeps frames in the -wal file (no checkpoint) */
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES (3, 'in the wal'); UPDATE t SET b = 'new' WHERE a = 1;");
    size_t na = 0;
    char reader[256];
    char *a = bronze_of(p, "t", "auto", 10, 1, &na, reader, sizeof reader);
    cr_expect_str_eq(reader, "sqlite3_step (WAL mode with a non-empty -wal file)");
    free(a);
    same_both_ways(p, "t", false, 10, 1);
    sqlite3_close(db);
}

Test(btree, utf16_without_rowid_view_fall_back)
{
    char p[400];
    path_in(p, sizeof p, "u16.db");
    sqlite3_close(make_db(p, "PRAGMA encoding='UTF-16le';", -1,
                          "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'hé'), (2, NULL);"));
    size_t na = 0;
    char reader[256];
    free(bronze_of(p, "t", "auto", 10, 1, &na, reader, sizeof reader));
    cr_expect_str_eq(reader, "sqlite3_step (not a UTF-8 database)");
    same_both_ways(p, "t", false, 10, 1);

    path_in(p, sizeof p, "wr.db");
    sqlite3_close(make_db(p, NULL, -1,
                          "CREATE TABLE w(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;"
                          "INSERT INTO w VALUES ('b', 2), ('a', 1);"
                          "CREATE TABLE g(a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL);"
                          "INSERT INTO g(a) VALUES (1), (2);"
                          "CREATE VIEW v AS SELECT k, v FROM w;"));
    same_both_ways(p, "w", false, 10, 1);
    same_both_ways(p, "g", false, 10, 1);
    same_both_ways(p, "v", false, 10, 1);
}

/* A writer holding RESERVED (an open write transaction in rollback
 * mode) cannot change the file while the scan holds its SHARED lock: the
 * pages are read and show the committed rows only. A writer holding
 * EXCLUSIVE makes the scan fail cleanly. */
Test(btree, writer_holding_a_lock)
{
    char p[400];
    path_in(p, sizeof p, "lock.db");
    sqlite3 *db = make_db(p, NULL, -1,
                          "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');");
    exec_ok(db, "BEGIN IMMEDIATE; INSERT INTO t VALUES (3, 'uncommitted'); DELETE FROM t WHERE a = 1;");
    same_both_ways(p, "t", true, 10, 1);
    st_source *src = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, p, &err), ST_OK, "%s", err.msg);
    uint64_t n = 0;
    cr_assert_eq(st_source_count_rows(src, &(st_source_table){.name = "t", .source_path = p}, &n, &err), ST_OK);
    cr_expect_eq(n, 2, "the uncommitted row is not visible");
    st_source_close(src);
    exec_ok(db, "COMMIT; BEGIN EXCLUSIVE; INSERT INTO t VALUES (4, 'locked');");
    cr_assert_eq(st_source_open(&src, p, &err), ST_ERR_SQLITE, "an exclusive lock is a clean error");
    cr_expect_not_null(strstr(err.msg, "lock.db"), "%s", err.msg);
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
}

/* ---- damaged files ---- */

static void patch(const char *path, long at, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* Scans table t of path through the pages; returns the status, err filled. */
static st_status scan_status(const char *path, st_error *err)
{
    st_source *src = NULL;
    st_source_table *t = NULL;
    st_status s = st_source_open(&src, path, err);
    if (s == ST_OK) s = st_source_describe(src, "t", &t, err);
    st_source_scan *sc = NULL;
    if (s == ST_OK) s = st_source_scan_open(&sc, src, t, INT64_MIN, INT64_MAX, 256, err);
    st_column *cols = NULL;
    if (s == ST_OK) {
        cols = calloc(t->n_fields, sizeof *cols);
        for (size_t f = 0; f < t->n_fields; f++) st_column_init(&cols[f], t->fields[f].type);
        for (size_t got = 1; s == ST_OK && got;) s = st_source_scan_next(sc, cols, &got, err);
        for (size_t f = 0; f < t->n_fields; f++) st_column_free(&cols[f]);
        free(cols);
    }
    st_source_scan_close(sc);
    st_source_table_free(t);
    st_source_close(src);
    return s;
}

static void damaged_db(char *p, size_t cap, const char *name)
{
    path_in(p, cap, name);
    sqlite3_close(make_db(p, "PRAGMA page_size=1024;", -1,
                          "CREATE TABLE t(a INTEGER, b TEXT, c BLOB);"
                          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)"
                          " INSERT INTO t SELECT x, printf('row %d', x), CASE WHEN x = 500 THEN zeroblob(5000) END"
                          " FROM c;"));
}

Test(btree, malformed_pages_are_named_errors)
{
    char p[400];
    st_error err = {0};
    /* page 2 is the root (interior): its right-most child points back to itself */
    damaged_db(p, sizeof p, "cycle.db");
    uint8_t self[4] = {0, 0, 0, 2};
    patch(p, 1024 + 8, self, 4);
    cr_assert_eq(scan_status(p, &err), ST_ERR_SQLITE);
    cr_expect_not_null(strstr(err.msg, "malformed page 2 of table 't' in '"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "cycle.db"), "%s", err.msg);

    /* a cell count larger than the page */
    damaged_db(p, sizeof p, "cells.db");
    uint8_t many[2] = {0x7F, 0xFF};
    patch(p, 1024 + 3, many, 2);
    cr_assert_eq(scan_status(p, &err), ST_ERR_SQLITE);
    cr_expect_not_null(strstr(err.msg, "malformed page 2"), "%s", err.msg);

    /* a child page number beyond the file */
    damaged_db(p, sizeof p, "far.db");
    uint8_t far[4] = {0x7F, 0, 0, 0};
    patch(p, 1024 + 8, far, 4);
    cr_assert_eq(scan_status(p, &err), ST_ERR_SQLITE);
    cr_expect_not_null(strstr(err.msg, "outside the file"), "%s", err.msg);

    /* every byte of leaf page 3's cell area trashed: an error or the same rows, never a crash */
    damaged_db(p, sizeof p, "trash.db");
    uint8_t junk[900];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    patch(p, 2 * 1024 + 100, junk, sizeof junk);
    st_status s = scan_status(p, &err);
    cr_expect(s == ST_OK || s == ST_ERR_SQLITE, "status %d: %s", s, err.msg);
}

/* The command line: a malformed page is exit 3, one line naming it. */
Test(btree, malformed_page_exit_code_3)
{
    char p[400], wh[400], cmd[1600];
    damaged_db(p, sizeof p, "tx.db");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE sales_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT,"
                " quantity INTEGER); CREATE TABLE foc_qty(customer_id INTEGER, year INTEGER, month INTEGER,"
                " material_code TEXT, quantity_foc INTEGER);"
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)"
                " INSERT INTO sales_qty SELECT 1, 2020, 1, 'M', x FROM c;"
                "INSERT INTO foc_qty VALUES (1, 2020, 1, 'M', 1);");
    int64_t root = 0;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT rootpage FROM sqlite_master WHERE name = 'sales_qty'", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW) root = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* the first leaf's first cell (rowid 1): its record header size
     * byte, after a 1-byte payload size and a 1-byte rowid, now claims
     * more bytes than the payload has (SQLite's count(*) and min/max do
     * not read records, so the scan is the first to see it) */
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    uint8_t page[1024];
    cr_assert_eq(fseek(f, (long)(root - 1) * 1024, SEEK_SET), 0);
    cr_assert_eq(fread(page, 1, sizeof page, f), sizeof page);
    cr_assert_eq(page[0], 5, "the root is an interior page");
    unsigned cell = (unsigned)page[12] << 8 | page[13];
    long leaf = (long)((uint32_t)page[cell] << 24 | (uint32_t)page[cell + 1] << 16 | (uint32_t)page[cell + 2] << 8 |
                       page[cell + 3]);
    cr_assert_eq(fseek(f, (leaf - 1) * 1024, SEEK_SET), 0);
    cr_assert_eq(fread(page, 1, sizeof page, f), sizeof page);
    fclose(f);
    cr_assert_eq(page[0], 13, "page %ld is a leaf", leaf);
    cell = (unsigned)page[8] << 8 | page[9];
    uint8_t bad = 0x7F;
    patch(p, (leaf - 1) * 1024 + (long)cell + 2, &bad, 1);
    root = leaf;
    path_in(wh, sizeof wh, "wh");
    const char *bin = getenv("STRATA_BIN");
    cr_assert_not_null(bin);
    snprintf(cmd, sizeof cmd, "'%s' run --customers data/chinook.db --transactions '%s' --warehouse '%s' --only ingest"
             " --quiet 2>'%s/err.txt'", bin, p, wh, tmpdir);
    int rc = system(cmd);
    cr_expect(WIFEXITED(rc) && WEXITSTATUS(rc) == 3, "exit %d", WEXITSTATUS(rc));
    char ep[512], line[1024] = {0};
    snprintf(ep, sizeof ep, "%s/err.txt", tmpdir);
    f = fopen(ep, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "malformed page %lld of table 'sales_qty'", (long long)root);
    cr_expect_not_null(strstr(line, want), "%s", line);
}

/* Two scans of one source share its read transaction: closing the first
 * must not release the lock the second still reads under. */
Test(btree, read_lock_held_until_the_last_scan_closes)
{
    char p[400];
    path_in(p, sizeof p, "two.db");
    sqlite3 *w = make_db(p, NULL, -1,
                         "CREATE TABLE t(a INTEGER, b TEXT);"
                         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)"
                         " INSERT INTO t SELECT x, 'v' FROM c;");
    st_source *src = NULL;
    st_source_table *t = NULL;
    st_error err = {0};
    cr_assert_eq(st_source_open(&src, p, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_describe(src, "t", &t, &err), ST_OK, "%s", err.msg);
    st_source_scan *a = NULL, *b = NULL;
    cr_assert_eq(st_source_scan_open(&a, src, t, 1, 50, 16, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_source_scan_open(&b, src, t, 51, 100, 16, &err), ST_OK, "%s", err.msg);
    cr_expect_str_eq(st_source_scan_path(b), "pages");
    st_source_scan_close(a);
    exec_ok(w, "BEGIN IMMEDIATE; INSERT INTO t VALUES (101, 'new');");
    cr_expect_eq(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_BUSY, "the writer must wait for scan b");
    st_source_scan_close(b);
    cr_expect_eq(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK, "the lock is released after the last scan");
    st_source_table_free(t);
    st_source_close(src);
    sqlite3_close(w);
}
