/*
 * fuzz_wal.c: arbitrary bytes as a source's -wal file, through
 * st_source_identity() (formats/source_identity.c walks and checksums
 * the frames of a WAL it never trusts).
 *
 * The main file is a fixed 100-byte SQLite header; the input is written
 * as its -wal. Checks: nothing reads past what was read (ASan), every
 * input gives ST_OK (a WAL that does not check out is simply "no valid
 * frames"), and the identity is a function of the bytes: two calls agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/source_identity.h"

static char dir[256];

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/fuzz_wal_XXXXXX", t && *t ? t : P_tmpdir);
        if (!mkdtemp(dir)) abort();
    }
    char db[300], wal[310];
    snprintf(db, sizeof db, "%s/x.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", db);
    unsigned char hdr[100] = "SQLite format 3";
    hdr[16] = 0x10, hdr[18] = 2, hdr[19] = 2; /* page size 4096, WAL */
    if (write_file(db, hdr, sizeof hdr) != 0 || write_file(wal, data, size) != 0) abort();
    char a[512], b[512];
    uint64_t ha = 0, hb = 1;
    st_error err;
    if (st_source_identity(db, a, sizeof a, &ha, &err) != ST_OK) abort();
    if (st_source_identity(db, b, sizeof b, &hb, &err) != ST_OK) abort();
    if (ha != hb || strcmp(strstr(a, "wal="), strstr(b, "wal=")) != 0) abort();
    return 0;
}
