/*
 * sqlite_to_strata.c: a silver-shaped layer file straight from a source
 * table, for the decode and file-size comparisons while `strata run` (which
 * writes the real silver/stg_*_transactions.strata) is not available.
 *
 * Columns are those of the silver contract (docs/TABLES.md):
 * transaction_id int64 (rowid), customer_id int64, year int32, month int32,
 * period_key int32 (year*100+month), material_code string, quantity int64,
 * written with the library's default writer options, one row per source
 * row whose values have the right storage class (the demo data has no
 * others). Rows are streamed in ST_CHUNK_ROWS chunks.
 *
 * Usage: sqlite_to_strata DB TABLE QUANTITY_COLUMN OUT.strata
 * Prints the number of rows written.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "strata/column.h"
#include "strata/file.h"

enum { C_TID, C_CUST, C_YEAR, C_MONTH, C_PERIOD, C_MAT, C_QTY, N_COLS };

static st_status push_row(st_column *c, sqlite3_stmt *st)
{
    int64_t year = sqlite3_column_int64(st, 2), month = sqlite3_column_int64(st, 3);
    const char *mat = (const char *)sqlite3_column_text(st, 4);
    int mat_len = sqlite3_column_bytes(st, 4);
    ST_TRY(st_column_push_i64(&c[C_TID], sqlite3_column_int64(st, 0)));
    ST_TRY(st_column_push_i64(&c[C_CUST], sqlite3_column_int64(st, 1)));
    ST_TRY(st_column_push_i32(&c[C_YEAR], (int32_t)year));
    ST_TRY(st_column_push_i32(&c[C_MONTH], (int32_t)month));
    ST_TRY(st_column_push_i32(&c[C_PERIOD], (int32_t)(year * 100 + month)));
    ST_TRY(st_column_push_str(&c[C_MAT], mat ? mat : "", (size_t)mat_len));
    ST_TRY(st_column_push_i64(&c[C_QTY], sqlite3_column_int64(st, 5)));
    return ST_OK;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sqlite_to_strata DB TABLE QUANTITY_COLUMN OUT.strata\n");
        return 2;
    }
    static const st_field fields[N_COLS] = {
        {"transaction_id", ST_TYPE_I64, false, NULL}, {"customer_id", ST_TYPE_I64, false, NULL},
        {"year", ST_TYPE_I32, false, NULL},           {"month", ST_TYPE_I32, false, NULL},
        {"period_key", ST_TYPE_I32, false, NULL},     {"material_code", ST_TYPE_STR, false, NULL},
        {"quantity", ST_TYPE_I64, false, NULL},
    };
    st_column cols[N_COLS];
    for (int j = 0; j < N_COLS; j++) st_column_init(&cols[j], fields[j].type);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    st_writer *w = NULL;
    st_error err = {0};
    int rc = 1;
    uint64_t n = 0;
    char sql[512];
    st_file_meta meta = {.layer = "silver", .table = argv[2], .params = ""};
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) goto done;
    snprintf(sql, sizeof sql,
             "SELECT rowid, customer_id, year, month, material_code, \"%s\" FROM \"%s\" "
             "WHERE typeof(customer_id) = 'integer' AND typeof(year) = 'integer' AND typeof(month) = 'integer' "
             "AND typeof(material_code) = 'text' AND typeof(\"%s\") = 'integer' ORDER BY rowid",
             argv[3], argv[2], argv[3]);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
    if (st_writer_open(&w, argv[4], fields, N_COLS, &meta, NULL, &err) != ST_OK) goto done;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (push_row(cols, st) != ST_OK) goto done;
        if (cols[0].n_rows == ST_CHUNK_ROWS) {
            if (st_writer_write(w, cols, 0, cols[0].n_rows, &err) != ST_OK) goto done;
            for (int j = 0; j < N_COLS; j++) st_column_reset(&cols[j]);
        }
        n++;
    }
    if (s != SQLITE_DONE) goto done;
    if (cols[0].n_rows && st_writer_write(w, cols, 0, cols[0].n_rows, &err) != ST_OK) goto done;
    st_writer *closing = w;
    w = NULL;
    if (st_writer_close(closing, &err) != ST_OK) goto done;
    printf("%" PRIu64 "\n", n);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "sqlite_to_strata: %s\n", err.msg[0] ? err.msg : (db ? sqlite3_errmsg(db) : "cannot open"));
    st_writer_abort(w);
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (int j = 0; j < N_COLS; j++) st_column_free(&cols[j]);
    return rc;
}
