/*
 * source_identity.h: what a SQLite source file is, as far as "has it
 * changed since bronze was built?" is concerned.
 *
 * The identity must change with every committed transaction whatever the
 * journal mode. In rollback-journal mode each commit bumps the database
 * header's file change counter (offset 24). In WAL mode commits go to the
 * -wal file and the main file (size, mtime, counter) stays as it was
 * until a checkpoint, so the identity also describes the WAL's valid
 * frames: its salts and checkpoint sequence, the number of frames up to
 * the last valid commit frame (SQLite's mxFrame) and the running checksum
 * at that frame, found by walking the frames and checking their
 * checksums the way SQLite's recovery does. A checkpoint that resets the
 * WAL changes the salts and the main file, so it is seen too.
 *
 * The identity is taken BEFORE the source is read: a commit landing
 * between it and the read makes the next run see a newer identity and
 * re-ingest (harmless); the other order could call a stale bronze current.
 */
#ifndef STRATA_SOURCE_IDENTITY_H
#define STRATA_SOURCE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Refuses, without blocking, anything at `path` that is not a regular
 * file: ST_ERR_NOTFOUND when absent, ST_ERR_SQLITE for a FIFO, socket,
 * device or directory ("source 'x' is a FIFO, not a SQLite file"). Uses
 * stat() only: a FIFO is never opened. */
st_status st_source_check_regular(const char *path, st_error *err) ST_MUST_USE;

/* Writes the identity of the SQLite file at `path` into buf (cap bytes,
 * one line without newline: size, mtime, inode, change counter, and
 * "wal=salt1:salt2:ckpt:frames:cksum1:cksum2" or "wal=none") and its
 * hash into *hash. ST_ERR_NOTFOUND / ST_ERR_SQLITE as above, ST_ERR_IO
 * when the file or its -wal cannot be read. */
st_status st_source_identity(const char *path, char *buf, size_t cap, uint64_t *hash,
                             st_error *err) ST_MUST_USE;

/* How long (ms) a source connection waits for another program's lock
 * (SQLite's busy timeout) before failing: 5000 by default, set for the
 * whole process before sources are opened (`strata run --wait` makes it
 * unlimited). */
extern int st_source_busy_timeout_ms;

/* Explains why SQLite could not read `path` read-only when it said
 * READONLY, CANTOPEN or BUSY: a hot journal next to it, WAL mode in a
 * directory where the -shm file cannot be created, or (busy) another
 * program's write lock. Writes one sentence into buf and returns true
 * when one of these applies; false otherwise (SQLite's own message is
 * then the best there is). */
bool st_source_open_hint(const char *path, bool busy, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
