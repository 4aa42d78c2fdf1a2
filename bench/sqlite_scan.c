/*
 * sqlite_scan.c: the ingest floor. The fastest a program can pull rows out
 * of a SQLite file through the public API is a bare `SELECT rowid, *`
 * stepped with sqlite3_step, touching every value with sqlite3_column_*
 * and doing nothing else with it. strata's ingest step does that plus
 * typing, encoding and writing the bronze files, so this rate is the
 * ceiling it is measured against (bench/README.md, "Ingest floor").
 *
 * Usage: sqlite_scan DB TABLE [TABLE...]
 * One thread per table, each with its own read-only connection (SQLite's
 * own mutexes off: SQLITE_OPEN_NOMUTEX). Prints one JSON object:
 *   {"wall_seconds":..,"tables":[{"table":..,"rows":..,"seconds":..},..]}
 * The checksum keeps the compiler from dropping the column reads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct scan_job {
    const char *db_path;
    const char *table;
    uint64_t n_rows;
    uint64_t checksum;
    double seconds;
    int failed;
} scan_job;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Touches one value the way a reader must: by its storage class. */
static uint64_t touch_value(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return (uint64_t)sqlite3_column_int64(st, i);
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        return u;
    }
    case SQLITE_TEXT: {
        const unsigned char *s = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        return (uint64_t)n + (n > 0 ? s[0] : 0);
    }
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);
        return (uint64_t)n + (n > 0 ? b[0] : 0);
    }
    default:
        return 1;
    }
}

static void *scan_table(void *arg)
{
    scan_job *job = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[512];
    double t0 = now_seconds();
    job->failed = 1;
    if (sqlite3_open_v2(job->db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_scan: %s: %s\n", job->db_path, db ? sqlite3_errmsg(db) : "cannot open");
        goto done;
    }
    snprintf(sql, sizeof sql, "SELECT rowid, * FROM \"%s\"", job->table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_scan: %s: %s\n", job->table, sqlite3_errmsg(db));
        goto done;
    }
    int n_cols = sqlite3_column_count(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t h = 0;
        for (int i = 0; i < n_cols; i++) h += touch_value(st, i);
        job->checksum += h;
        job->n_rows++;
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "sqlite_scan: %s: %s\n", job->table, sqlite3_errmsg(db));
        goto done;
    }
    job->failed = 0;
done:
    job->seconds = now_seconds() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sqlite_scan DB TABLE [TABLE...]\n");
        return 2;
    }
    int n = argc - 2;
    scan_job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    if (jobs == NULL || tids == NULL) return 1;
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) {
        jobs[i].db_path = argv[1];
        jobs[i].table = argv[2 + i];
        if (pthread_create(&tids[i], NULL, scan_table, &jobs[i]) != 0) return 1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tids[i], NULL);
        failed |= jobs[i].failed;
    }
    double wall = now_seconds() - t0;
    printf("{\"wall_seconds\":%.6f,\"tables\":[", wall);
    for (int i = 0; i < n; i++)
        printf("%s{\"table\":\"%s\",\"rows\":%" PRIu64 ",\"seconds\":%.6f,\"checksum\":%" PRIu64 "}",
               i ? "," : "", jobs[i].table, jobs[i].n_rows, jobs[i].seconds, jobs[i].checksum);
    printf("]}\n");
    free(jobs);
    free(tids);
    return failed ? 1 : 0;
}
