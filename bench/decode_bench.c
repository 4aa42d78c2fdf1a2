/*
 * decode_bench.c: integer column decode speed, strata vs plain zstd.
 *
 * strata side: every chunk of every int32/int64 column of a layer file is
 * decoded with st_reader_read_block() (checksum check included, as every
 * reader pays it) into a reused st_column. Speed is decoded bytes (values
 * times their width) per second on one core.
 *
 * peer side: the very same integer arrays, cut into 64K-value chunks in
 * their native width, compressed with ZSTD_compress at level 3 and
 * decompressed with ZSTD_decompress into a reused buffer. This is what a
 * format that only had "zstd on raw little-endian values" would pay.
 *
 * Usage:
 *   decode_bench --strata FILE [--reps N]      (built with libstrata)
 *   decode_bench --sqlite DB TABLE [--reps N]  (peer only: integer columns
 *                                               of a SQLite table)
 * Prints one JSON object with per-repetition seconds for both sides.
 * When built with -DBENCH_NO_STRATA (libstrata has no reader yet) only
 * the --sqlite source and the zstd side exist.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#ifndef BENCH_NO_STRATA
#include "strata/column.h"
#include "strata/file.h"
#endif

#define MAX_COLS 64
#define MAX_REPS 64
#define ZCHUNK_VALUES 65536u

typedef struct int_col {
    char name[128];
    size_t width;    /* 4 or 8 bytes per value */
    size_t n_rows;
    void *values;    /* n_rows * width bytes */
    int file_index;  /* column index in the strata file, -1 if none */
} int_col;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int push_value(int_col *c, size_t *cap, int64_t v)
{
    if (c->n_rows == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1u << 16;
        void *p = realloc(c->values, ncap * c->width);
        if (p == NULL) return -1;
        c->values = p;
        *cap = ncap;
    }
    if (c->width == 8) ((int64_t *)c->values)[c->n_rows] = v;
    else ((int32_t *)c->values)[c->n_rows] = (int32_t)v;
    c->n_rows++;
    return 0;
}

/* Loads the INTEGER-declared columns of a SQLite table as int64 arrays
 * (non-integer values become 0). Returns the number of columns, -1 on error. */
static int load_sqlite(const char *path, const char *table, int_col *cols)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    char sql[512];
    size_t caps[MAX_COLS] = {0};
    int idx[MAX_COLS];
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) goto done;
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
    int k = 0;
    for (int i = 0; i < sqlite3_column_count(st) && k < MAX_COLS; i++) {
        const char *decl = sqlite3_column_decltype(st, i);
        if (decl == NULL || strstr(decl, "INT") == NULL) continue;
        snprintf(cols[k].name, sizeof cols[k].name, "%s", sqlite3_column_name(st, i));
        cols[k].width = 8;
        cols[k].file_index = -1;
        idx[k++] = i;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int j = 0; j < k; j++) {
            int64_t v = sqlite3_column_type(st, idx[j]) == SQLITE_INTEGER ? sqlite3_column_int64(st, idx[j]) : 0;
            if (push_value(&cols[j], &caps[j], v) != 0) goto done;
        }
    if (rc != SQLITE_DONE) goto done;
    n = k;
done:
    if (n < 0) fprintf(stderr, "decode_bench: %s: %s: %s\n", path, table, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

#ifndef BENCH_NO_STRATA
/* Loads every int32/int64 column of a layer file. Returns the count, -1 on error. */
static int load_strata(st_reader *r, int_col *cols)
{
    st_error err = {0};
    int k = 0;
    for (size_t f = 0; f < st_reader_n_fields(r) && k < MAX_COLS; f++) {
        const st_field *fd = st_reader_field(r, f);
        if (fd->type != ST_TYPE_I32 && fd->type != ST_TYPE_I64) continue;
        int_col *c = &cols[k++];
        snprintf(c->name, sizeof c->name, "%s", fd->name);
        c->width = fd->type == ST_TYPE_I64 ? 8 : 4;
        c->file_index = (int)f;
        c->values = malloc((size_t)st_reader_n_rows(r) * c->width + 1);
        if (c->values == NULL) return -1;
        st_column col;
        st_column_init(&col, fd->type);
        for (size_t ch = 0; ch < st_reader_n_chunks(r); ch++) {
            if (st_reader_read_block(r, ch, f, &col, &err) != ST_OK) {
                fprintf(stderr, "decode_bench: %s\n", err.msg);
                st_column_free(&col);
                return -1;
            }
            memcpy((char *)c->values + c->n_rows * c->width, col.data, col.n_rows * c->width);
            c->n_rows += col.n_rows;
        }
        st_column_free(&col);
    }
    return k;
}

/* One pass decoding every block of the integer columns; returns seconds
 * and keeps each column's fastest pass in best[j]. */
static double strata_pass(st_reader *r, const int_col *cols, int n_cols, st_column *scratch, uint64_t *sink,
                          double *best)
{
    st_error err = {0};
    double t0 = now_seconds();
    for (int j = 0; j < n_cols; j++) {
        double tc = now_seconds();
        for (size_t ch = 0; ch < st_reader_n_chunks(r); ch++) {
            if (st_reader_read_block(r, ch, (size_t)cols[j].file_index, &scratch[j], &err) != ST_OK) {
                fprintf(stderr, "decode_bench: %s\n", err.msg);
                return -1.0;
            }
            *sink += scratch[j].n_rows ? ((const uint8_t *)scratch[j].data)[0] : 0;
        }
        tc = now_seconds() - tc;
        if (best[j] == 0 || tc < best[j]) best[j] = tc;
    }
    return now_seconds() - t0;
}
#endif

typedef struct zchunks {
    size_t n;
    void **buf;
    size_t *len;
    size_t *raw_len;
    size_t total_bytes;
} zchunks;

static int compress_col(const int_col *c, zchunks *z)
{
    size_t vals = c->n_rows;
    z->n = (vals + ZCHUNK_VALUES - 1) / ZCHUNK_VALUES;
    z->buf = calloc(z->n + 1, sizeof *z->buf);
    z->len = calloc(z->n + 1, sizeof *z->len);
    z->raw_len = calloc(z->n + 1, sizeof *z->raw_len);
    if (!z->buf || !z->len || !z->raw_len) return -1;
    for (size_t i = 0; i < z->n; i++) {
        size_t first = i * ZCHUNK_VALUES;
        size_t cnt = vals - first < ZCHUNK_VALUES ? vals - first : ZCHUNK_VALUES;
        size_t raw = cnt * c->width;
        size_t bound = ZSTD_compressBound(raw);
        z->buf[i] = malloc(bound);
        if (z->buf[i] == NULL) return -1;
        size_t got = ZSTD_compress(z->buf[i], bound, (const char *)c->values + first * c->width, raw, 3);
        if (ZSTD_isError(got)) return -1;
        z->len[i] = got;
        z->raw_len[i] = raw;
        z->total_bytes += got;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *strata_path = NULL, *db_path = NULL, *table = NULL;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--strata") && i + 1 < argc) strata_path = argv[++i];
        else if (!strcmp(argv[i], "--sqlite") && i + 2 < argc) { db_path = argv[++i]; table = argv[++i]; }
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "usage: decode_bench --strata FILE | --sqlite DB TABLE [--reps N]\n"); return 2; }
    }
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    static int_col cols[MAX_COLS];
    int n_cols = -1;
    uint64_t sink = 0;
    double strata_s[MAX_REPS], zstd_s[MAX_REPS];
    static double best_strata[MAX_COLS], best_zstd[MAX_COLS]; /* per column, fastest pass */
    int have_strata = 0;
    uint64_t strata_stored = 0;
#ifndef BENCH_NO_STRATA
    st_reader *r = NULL;
    st_column scratch[MAX_COLS];
    if (strata_path) {
        st_error err = {0};
        if (st_reader_open(&r, strata_path, &err) != ST_OK) {
            fprintf(stderr, "decode_bench: %s\n", err.msg);
            return 1;
        }
        n_cols = load_strata(r, cols);
        if (n_cols < 0) return 1;
        for (int j = 0; j < n_cols; j++) {
            st_column_init(&scratch[j], cols[j].width == 8 ? ST_TYPE_I64 : ST_TYPE_I32);
            for (size_t ch = 0; ch < st_reader_n_chunks(r); ch++) {
                st_block_info bi;
                if (st_reader_block_info(r, ch, (size_t)cols[j].file_index, &bi) == ST_OK)
                    strata_stored += bi.size_bytes;
            }
        }
        static double ignored[MAX_COLS];
        (void)strata_pass(r, cols, n_cols, scratch, &sink, ignored); /* warm-up */
        for (int k = 0; k < reps; k++) {
            strata_s[k] = strata_pass(r, cols, n_cols, scratch, &sink, best_strata);
            if (strata_s[k] < 0) return 1;
        }
        have_strata = 1;
    }
#else
    if (strata_path) {
        fprintf(stderr, "decode_bench: built without libstrata's reader; use --sqlite\n");
        return 3;
    }
#endif
    if (db_path) n_cols = load_sqlite(db_path, table, cols);
    if (n_cols <= 0) {
        fprintf(stderr, "decode_bench: no integer columns\n");
        return 1;
    }
    static zchunks z[MAX_COLS];
    size_t raw_bytes = 0, max_raw = 0, zstd_stored = 0;
    for (int j = 0; j < n_cols; j++) {
        if (compress_col(&cols[j], &z[j]) != 0) {
            fprintf(stderr, "decode_bench: zstd compression failed\n");
            return 1;
        }
        raw_bytes += cols[j].n_rows * cols[j].width;
        zstd_stored += z[j].total_bytes;
        if (ZCHUNK_VALUES * cols[j].width > max_raw) max_raw = ZCHUNK_VALUES * cols[j].width;
    }
    void *out = malloc(max_raw);
    if (out == NULL) return 1;
    for (int k = -1; k < reps; k++) { /* k == -1: warm-up */
        double t0 = now_seconds();
        for (int j = 0; j < n_cols; j++) {
            double tc = now_seconds();
            for (size_t i = 0; i < z[j].n; i++) {
                size_t got = ZSTD_decompress(out, max_raw, z[j].buf[i], z[j].len[i]);
                if (ZSTD_isError(got) || got != z[j].raw_len[i]) {
                    fprintf(stderr, "decode_bench: zstd decompression failed\n");
                    return 1;
                }
                sink += ((const uint8_t *)out)[0];
            }
            tc = now_seconds() - tc;
            if (k >= 0 && (best_zstd[j] == 0 || tc < best_zstd[j])) best_zstd[j] = tc;
        }
        if (k >= 0) zstd_s[k] = now_seconds() - t0;
    }
    printf("{\"source\":\"%s\",\"decoded_bytes\":%zu,\"zstd_stored_bytes\":%zu,\"strata_stored_bytes\":%" PRIu64
           ",\"columns\":[",
           strata_path ? "strata" : "sqlite", raw_bytes, zstd_stored, strata_stored);
    for (int j = 0; j < n_cols; j++)
        printf("%s{\"name\":\"%s\",\"width\":%zu,\"rows\":%zu,\"zstd_bytes\":%zu,"
               "\"best_zstd_seconds\":%.6f,\"best_strata_seconds\":%.6f}",
               j ? "," : "", cols[j].name, cols[j].width, cols[j].n_rows, z[j].total_bytes, best_zstd[j],
               best_strata[j]);
    printf("],\"zstd_seconds\":[");
    for (int k = 0; k < reps; k++) printf("%s%.6f", k ? "," : "", zstd_s[k]);
    printf("],\"strata_seconds\":[");
    for (int k = 0; have_strata && k < reps; k++) printf("%s%.6f", k ? "," : "", strata_s[k]);
    printf("],\"sink\":%" PRIu64 "}\n", sink);
#ifndef BENCH_NO_STRATA
    for (int j = 0; have_strata && j < n_cols; j++) st_column_free(&scratch[j]);
    st_reader_close(r);
#endif
    for (int j = 0; j < n_cols; j++) {
        for (size_t i = 0; i < z[j].n; i++) free(z[j].buf[i]);
        free(z[j].buf);
        free(z[j].len);
        free(z[j].raw_len);
        free(cols[j].values);
    }
    free(out);
    return 0;
}
