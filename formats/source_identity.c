/*
 * source_identity.c: a SQLite source's identity for ingest's skip
 * decision (see strata/source_identity.h for what it must capture).
 *
 * Only the file header and the -wal file are read, with plain pread():
 * no SQLite connection, no lock, nothing written. The WAL walk follows
 * the file format: a 32-byte header (magic 0x377f0682/3, whose low bit
 * says the checksum words are big-endian, page size, checkpoint
 * sequence, two salts, a checksum of its first 24 bytes), then frames of
 * a 24-byte header (page number, database size after commit or 0, the
 * two salts, a running checksum) and one page. A frame is valid when its
 * salts match the header and its checksum continues the chain over its
 * first 8 header bytes and its page; the first invalid frame ends the
 * log. Frames after the last valid commit frame are not part of any
 * committed transaction and are ignored. Every length comes from the
 * file, so the page size is checked (a power of two, 512..65536) before
 * a buffer of that size is allocated, and a short read ends the walk.
 */
#include "strata/source_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata/file.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t word(const unsigned char *p, bool big)
{
    return big ? be32(p) : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* SQLite's WAL checksum over n bytes (n a multiple of 8), continuing s. */
static void wal_cksum(const unsigned char *p, size_t n, bool big, uint32_t s[2])
{
    uint32_t s0 = s[0], s1 = s[1];
    for (size_t i = 0; i + 8 <= n; i += 8) {
        s0 += word(p + i, big) + s1;
        s1 += word(p + i + 4, big) + s0;
    }
    s[0] = s0;
    s[1] = s1;
}

static const char *kind_name(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    return "not a regular file";
}

st_status st_source_check_regular(const char *path, st_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return st_error_set(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO, "cannot open source '%s': %s", path,
                            strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return st_error_set(err, ST_ERR_SQLITE, "source '%s' is %s, not a SQLite file", path, kind_name(sb.st_mode));
    return ST_OK;
}

typedef struct wal_state {
    bool present;
    uint32_t salt[2], ckpt, frames, cksum[2];
} wal_state;

/* Walks the -wal file of `path` (absent or empty: no WAL state). */
static st_status read_wal(const char *path, wal_state *w, st_error *err)
{
    memset(w, 0, sizeof *w);
    char wpath[4200];
    if (snprintf(wpath, sizeof wpath, "%s-wal", path) >= (int)sizeof wpath)
        return st_error_set(err, ST_ERR_INVALID, "source path too long: '%s'", path);
    int fd = open(wpath, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return ST_OK;
        return st_error_set(err, ST_ERR_IO, "cannot read '%s': %s", wpath, strerror(errno));
    }
    st_status s = ST_OK;
    unsigned char *page = NULL;
    unsigned char hdr[32];
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || pread(fd, hdr, 32, 0) != 32) goto done;
    uint32_t magic = be32(hdr), page_size = be32(hdr + 8);
    if ((magic & ~1u) != 0x377f0682u || page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)))
        goto done;
    bool big = magic & 1;
    uint32_t sum[2] = {0, 0};
    wal_cksum(hdr, 24, big, sum);
    if (sum[0] != be32(hdr + 24) || sum[1] != be32(hdr + 28)) goto done;
    w->present = true;
    w->ckpt = be32(hdr + 12);
    w->salt[0] = be32(hdr + 16);
    w->salt[1] = be32(hdr + 20);
    w->cksum[0] = sum[0];
    w->cksum[1] = sum[1];
    if (!(page = malloc(page_size))) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t off = 32;
    for (uint32_t n = 1; off + 24 + page_size <= (uint64_t)sb.st_size; n++, off += 24 + page_size) {
        unsigned char fh[24];
        if (pread(fd, fh, 24, (off_t)off) != 24 || pread(fd, page, page_size, (off_t)off + 24) != (ssize_t)page_size)
            break;
        if (be32(fh + 8) != w->salt[0] || be32(fh + 12) != w->salt[1]) break;
        wal_cksum(fh, 8, big, sum);
        wal_cksum(page, page_size, big, sum);
        if (sum[0] != be32(fh + 16) || sum[1] != be32(fh + 20)) break;
        if (be32(fh + 4) != 0) { /* a commit frame: everything up to here is committed */
            w->frames = n;
            w->cksum[0] = sum[0];
            w->cksum[1] = sum[1];
        }
    }
done:
    free(page);
    close(fd);
    return s;
}

st_status st_source_identity(const char *path, char *buf, size_t cap, uint64_t *hash, st_error *err)
{
    ST_TRY(st_source_check_regular(path, err));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return st_error_set(err, ST_ERR_IO, "cannot open source '%s': %s", path, strerror(errno));
    unsigned char hdr[100];
    memset(hdr, 0, sizeof hdr);
    struct stat sb;
    ssize_t got = pread(fd, hdr, sizeof hdr, 0);
    int fst = fstat(fd, &sb);
    close(fd);
    if (got < 0 || fst != 0) return st_error_set(err, ST_ERR_IO, "cannot read source '%s': %s", path, strerror(errno));
    wal_state w;
    ST_TRY(read_wal(path, &w, err));
    char walpart[128];
    if (w.present)
        snprintf(walpart, sizeof walpart, "wal=%08x:%08x:%u:%u:%08x:%08x", w.salt[0], w.salt[1], w.ckpt, w.frames,
                 w.cksum[0], w.cksum[1]);
    else
        snprintf(walpart, sizeof walpart, "wal=none");
    int n = snprintf(buf, cap, "size=%lld mtime=%lld.%09ld ino=%llu counter=%u %s", (long long)sb.st_size,
                     (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec, (unsigned long long)sb.st_ino,
                     got >= 28 ? be32(hdr + 24) : 0u, walpart);
    if (n < 0 || (size_t)n >= cap) return st_error_set(err, ST_ERR_INTERNAL, "source identity buffer too small");
    /* the hash leaves out inode and mtime: a copy of the same bytes is the same source */
    uint64_t h = st_hash64(0x5354524944310001ull, hdr, (size_t)(got > 0 ? got : 0));
    h = st_hash64(h, &sb.st_size, sizeof sb.st_size);
    *hash = st_hash64(h, walpart, strlen(walpart));
    return ST_OK;
}

int st_source_busy_timeout_ms = 5000;

bool st_source_open_hint(const char *path, bool busy, char *buf, size_t cap)
{
    if (busy) {
        if (st_source_busy_timeout_ms == INT_MAX)
            snprintf(buf, cap, "locked by another program's write");
        else
            snprintf(buf, cap, "locked by another program's write (waited %d ms; strata run --wait waits for it)",
                     st_source_busy_timeout_ms);
        return true;
    }
    char side[4200];
    struct stat sb;
    if (snprintf(side, sizeof side, "%s-journal", path) < (int)sizeof side && stat(side, &sb) == 0 && sb.st_size > 0) {
        snprintf(buf, cap, "it has a hot journal ('%s': a write was interrupted) that SQLite must roll back, and "
                 "strata opens sources read-only; open it once with sqlite3 where its directory is writable, or copy "
                 "both files to a writable directory", side);
        return true;
    }
    unsigned char hdr[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    ssize_t got = fd >= 0 ? pread(fd, hdr, sizeof hdr, 0) : -1;
    if (fd >= 0) close(fd);
    if (got == (ssize_t)sizeof hdr && hdr[18] == 2) { /* read version 2: WAL */
        snprintf(buf, cap, "it is in WAL mode and SQLite cannot create its '-shm' file next to it (a read-only "
                 "directory); run sqlite3 '%s' 'PRAGMA journal_mode=DELETE' where it is writable, or copy it to a "
                 "writable directory", path);
        return true;
    }
    return false;
}
