/*
 * warehouse.h: the on-disk warehouse: its directory layout, the run lock,
 * and the staging area that makes a run all-or-nothing.
 *
 * Layout: <root>/<layer>/<table>.strata for data, <root>/quality/,
 * <root>/_runs/, <root>/report/, <root>/.lock, <root>/.staging/.
 *
 * A run writes every new file under <root>/.staging/<layer>/ and only
 * moves them to their final names in st_warehouse_commit(): first a
 * commit journal (.staging/COMMIT, fsynced) listing the files, then a
 * hard link to every published file it replaces (.staging/.old/), then
 * one rename per file, then the journal is removed. So a run that fails
 * or is killed before the journal exists leaves the previous warehouse
 * exactly as it was (the next run deletes the leftover staging area); a
 * rename that fails moves the files renamed so far back and restores
 * the old versions, so the previous warehouse stands (or, if even that
 * fails, the journal stays); and a journal left by a kill during the
 * renames is rolled forward by the next st_warehouse_open() or, for the
 * reading commands, st_warehouse_check_pending(). Every file is itself written atomically
 * (temporary name, rename), so no path ever holds half a file; staged
 * files are not fsynced one by one as they are written: the commit
 * fsyncs every staged file and directory before it writes the journal,
 * so the journal never names a file that is not durable.
 *
 * The lock is an flock() on <root>/.lock, which also records the holder's
 * pid for the error message; the kernel drops it when the holder dies, so
 * a killed run never leaves a stale lock.
 */
#ifndef STRATA_WAREHOUSE_H
#define STRATA_WAREHOUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_PATH_MAX 4096

typedef struct st_warehouse st_warehouse;

/* Creates <root> if needed, takes the lock (waiting for it when `wait`,
 * else ST_ERR_LOCKED naming the holder's pid), recovers from an
 * interrupted earlier run. Caller owns *out; release with
 * st_warehouse_close(). */
st_status st_warehouse_open(st_warehouse **out, const char *root, bool wait,
                            st_error *err) ST_MUST_USE;

/* Drops the staging area (if not committed; kept when it holds a journal
 * a failed roll-back left) and the lock; frees wh. */
void st_warehouse_close(st_warehouse *wh);

const char *st_warehouse_root(const st_warehouse *wh);

/* <root>/<layer>/<table>.strata into buf (ST_PATH_MAX bytes). */
void st_warehouse_final_path(const st_warehouse *wh, const char *layer,
                             const char *table, char *buf);
/* <root>/.staging/<layer>/<table>.strata, creating the directory. */
st_status st_warehouse_stage_path(st_warehouse *wh, const char *layer,
                                  const char *table, char *buf,
                                  st_error *err) ST_MUST_USE;
/* True when path lies in the staging area: a file written there is made
 * durable by st_warehouse_commit, so its writer need not fsync it. */
bool st_warehouse_is_staged(const st_warehouse *wh, const char *path);
/* Where a step should read <layer>.<table> from: the staged file when this
 * run wrote one, else the final one. */
void st_warehouse_input_path(const st_warehouse *wh, const char *layer,
                             const char *table, char *buf);

/* Opens a new, empty, read-write temporary file in the staging area that
 * has no name (O_TMPFILE, or created and unlinked at once where that is
 * unsupported): it disappears when closed or when the process dies, and
 * it is never published. `what` is put in the name while it exists.
 * Caller owns *fd; close() it. *path gets the directory (ST_PATH_MAX
 * bytes) for messages. ST_ERR_IO. */
st_status st_warehouse_temp_file(st_warehouse *wh, const char *what, int *fd, char *path,
                                 st_error *err) ST_MUST_USE;
/* The same in the existing directory `dir` (another rank's view of the
 * staging area, say). */
st_status st_temp_file_in(const char *dir, const char *what, int *fd, st_error *err) ST_MUST_USE;

/* Publishes every staged file (see the top of this file). */
st_status st_warehouse_commit(st_warehouse *wh, st_error *err) ST_MUST_USE;

/* For readers (inspect, export, report, docs, lineage), given the path
 * they read (a warehouse, a layer folder or a layer file: the path and
 * its two parents are looked at): when a warehouse there holds an
 * unfinished publish (.staging/COMMIT left by a run killed between
 * its journal and its last rename, or one whose roll-back failed), takes
 * the lock and rolls it forward, so what is read is one build. A run
 * publishing right now is waited for up to 10 s. ST_OK when there is
 * none or it was completed; ST_ERR_LOCKED when the publish outlasts the
 * wait; the roll-forward's error otherwise. */
st_status st_warehouse_check_pending(const char *path, st_error *err) ST_MUST_USE;

/* mkdir -p. */
st_status st_mkdirs(const char *path, st_error *err) ST_MUST_USE;

/* Writes `len` bytes to `path` atomically (tmp + fsync + rename). */
st_status st_write_file_atomic(const char *path, const void *buf, size_t len,
                               st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
