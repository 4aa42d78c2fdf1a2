/*
 * fuzz_btree.c: libFuzzer target for the SQLite table b-tree decoder
 * (formats/sqlite_btree.c). The input is a database file (seeds: small
 * databases made by sqlite3, tests/fuzz/corpus/fuzz_btree/). Its header is
 * parsed with st_bt_geom_parse; when that accepts it, the tables rooted at
 * pages 2..5 are scanned whole and over a middle rowid range, six columns
 * with every rule on (a rowid alias, REAL affinity, a DEFAULT for short
 * records), into bronze-shaped columns. The decoder must return a status
 * for every input: crashes, hangs, sanitizer reports and leaks are
 * findings.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sqlite_btree_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static st_status fixed_default(void *ctx, size_t col, int64_t rowid, st_bt_value *v, st_error *err)
{
    (void)ctx, (void)col, (void)rowid, (void)err;
    static const uint8_t text[] = "default";
    *v = (st_bt_value){.cls = ST_CLASS_TEXT, .bytes = text, .len = 7};
    return ST_OK;
}

enum { N_COLS = 6 };

static void scan(int fd, const st_bt_geom *g, uint32_t root, int64_t lo, int64_t hi, const st_source_table *t,
                 st_column *cols)
{
    static const st_bt_col rules[N_COLS] = {{.rowid_alias = true}, {0}, {.real_affinity = true}, {0},
                                            {.has_default = true}, {0}};
    st_bt_scan_spec spec = {.fd = fd, .geom = g, .root = root, .lo = lo, .hi = hi, .n_cols = N_COLS,
                            .cols = rules, .missing = fixed_default, .path = "fuzz.db", .table = "t"};
    st_bt_scan *sc = NULL;
    st_lanes ls;
    st_error err;
    if (st_lanes_init(&ls, N_COLS, 256) != ST_OK) return;
    if (st_bt_scan_open(&sc, &spec, &err) == ST_OK) {
        for (;;) {
            size_t n = 0;
            if (st_lanes_begin(&ls, t, cols, &err) != ST_OK) break;
            if (st_bt_scan_next(sc, &ls, &n, &err) != ST_OK) break;
            if (st_lanes_finish(&ls, t, cols, n, &err) != ST_OK || n == 0) break;
            for (size_t i = 1; i < n; i++)
                if (ls.rowids[i] <= ls.rowids[i - 1]) abort(); /* rowids must rise */
        }
    }
    st_bt_scan_close(sc);
    st_lanes_free(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_bt_geom g;
    st_error err;
    if (st_bt_geom_parse(&g, data, size, size, "fuzz.db", &err) != ST_OK) return 0;
    int fd = memfd_create("fuzz_btree", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    /* the bronze schema of a six-column table: int64, string, float64, string, string, int64 */
    static const st_type types[N_COLS] = {ST_TYPE_I64, ST_TYPE_STR, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_STR, ST_TYPE_I64};
    st_field fields[1 + 3 * N_COLS];
    fields[0] = (st_field){.name = "_rowid", .type = ST_TYPE_I64};
    for (size_t j = 0; j < N_COLS; j++) {
        fields[1 + 3 * j] = (st_field){.name = "c", .type = types[j], .nullable = true};
        fields[2 + 3 * j] = (st_field){.name = "c__class", .type = ST_TYPE_I32};
        fields[3 + 3 * j] = (st_field){.name = "c__raw", .type = ST_TYPE_BYTES, .nullable = true};
    }
    st_source_table t = {.name = "t", .n_cols = N_COLS, .n_fields = 1 + 3 * N_COLS, .fields = fields};
    st_column cols[1 + 3 * N_COLS];
    for (size_t f = 0; f < 1 + 3 * N_COLS; f++) st_column_init(&cols[f], fields[f].type);
    for (uint32_t root = 2; root <= 5 && root <= g.n_pages; root++) {
        scan(fd, &g, root, INT64_MIN, INT64_MAX, &t, cols);
        scan(fd, &g, root, 100, 200, &t, cols);
    }
    for (size_t f = 0; f < 1 + 3 * N_COLS; f++) st_column_free(&cols[f]);
    close(fd);
    return 0;
}
