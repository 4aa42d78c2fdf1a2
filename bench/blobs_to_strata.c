/*
 * blobs_to_strata.c: writes a row-major float64 matrix (raw little-endian
 * doubles, n x d, as numpy's tofile() writes it) into a layer file with
 * columns x0..x{d-1}, so `strata kmeans` clusters exactly the matrix that
 * scikit-learn gets in bench/kmeans_sklearn.py.
 *
 * Usage: blobs_to_strata IN.f64 D OUT.strata
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/column.h"
#include "strata/file.h"

#define MAX_D 64

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: blobs_to_strata IN.f64 D OUT.strata\n");
        return 2;
    }
    int d = atoi(argv[2]);
    if (d < 1 || d > MAX_D) return 2;
    FILE *in = fopen(argv[1], "rb");
    if (in == NULL) {
        perror(argv[1]);
        return 1;
    }
    char names[MAX_D][16];
    st_field fields[MAX_D];
    st_column cols[MAX_D];
    for (int j = 0; j < d; j++) {
        snprintf(names[j], sizeof names[j], "x%d", j);
        fields[j] = (st_field){.name = names[j], .type = ST_TYPE_F64, .nullable = false, .description = NULL};
        st_column_init(&cols[j], ST_TYPE_F64);
    }
    st_file_meta meta = {.layer = "bench", .table = "blobs", .params = ""};
    st_error err = {0};
    st_writer *w = NULL;
    int rc = 1;
    double row[MAX_D];
    if (st_writer_open(&w, argv[3], fields, (size_t)d, &meta, NULL, &err) != ST_OK) goto done;
    for (;;) {
        size_t got = fread(row, sizeof(double), (size_t)d, in);
        if (got != (size_t)d) break;
        for (int j = 0; j < d; j++)
            if (st_column_push_f64(&cols[j], row[j]) != ST_OK) goto done;
        if (cols[0].n_rows == ST_CHUNK_ROWS) {
            if (st_writer_write(w, cols, 0, cols[0].n_rows, &err) != ST_OK) goto done;
            for (int j = 0; j < d; j++) st_column_reset(&cols[j]);
        }
    }
    if (cols[0].n_rows && st_writer_write(w, cols, 0, cols[0].n_rows, &err) != ST_OK) goto done;
    st_writer *closing = w;
    w = NULL;
    if (st_writer_close(closing, &err) != ST_OK) goto done;
    rc = 0;
done:
    if (rc != 0) fprintf(stderr, "blobs_to_strata: %s\n", err.msg[0] ? err.msg : "failed");
    st_writer_abort(w);
    for (int j = 0; j < d; j++) st_column_free(&cols[j]);
    fclose(in);
    return rc;
}
