/*
 * parts.c: writing a partitioned table (FORMAT.md "Partitioned tables")
 * into a run's staging area.
 *
 * Each part is an ordinary staged layer file, written by its own writer
 * (so parts are written in parallel, by threads or ranks) under a hidden
 * name, <table>.parts/.part-<index>.strata, which the publish never
 * lists. Sealing renames every part to part-<index>-<fingerprint>.strata,
 * a name that changes with its content, so a publish never renames over a
 * part that the published manifest still names, then writes the manifest
 * at the table's staged path. The table's fingerprint hashes the parts'
 * fingerprints in order: parts with the same content give the same
 * manifest, byte for byte, whoever wrote them. A step whose skip test
 * compares its outputs' fingerprint with its own (stage) seals with that
 * fingerprint instead (st_table_seal_parts_as); its parts all carry it, so
 * their names differ by index only, and a new part of the same name has
 * the same bytes (the step is deterministic).
 *
 * A part may be written on another rank of an MPI run: st_table_part_path
 * gives the path in the staging area (which every rank sees), and the
 * writer there opens it with st_part_writer_open (no run context); rank 0
 * seals once every rank has closed its parts.
 */
#include "pipeline_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* <staging>/<layer>/<table>.parts, created. */
static st_status parts_dir(st_run_ctx *ctx, const char *layer, const char *table, char *dir, st_error *err)
{
    char path[ST_PATH_MAX];
    ST_TRY(st_warehouse_stage_path(ctx->wh, layer, table, path, err));
    ST_TRY(st_manifest_parts_dir(path, dir, ST_PATH_MAX, err));
    return st_mkdirs(dir, err);
}

/* dir/.part-<index>.strata: where part `index` is written until sealed. */
static st_status temp_path(const char *dir, size_t index, char *buf, size_t cap, st_error *err)
{
    if ((size_t)snprintf(buf, cap, "%s/.part-%05zu.strata", dir, index) >= cap)
        return st_error_set(err, ST_ERR_INVALID, "path too long: '%s'", dir);
    return ST_OK;
}

st_status st_table_part_path(st_run_ctx *ctx, const char *layer, const char *table, size_t index, char *buf,
                             size_t cap, st_error *err)
{
    char dir[ST_PATH_MAX];
    ST_TRY(parts_dir(ctx, layer, table, dir, err));
    return temp_path(dir, index, buf, cap, err);
}

st_status st_table_create_part(st_run_ctx *ctx, const char *layer, const char *table, size_t index,
                               const st_field *fields, size_t n_fields, const char *const *inputs, size_t n_inputs,
                               const char *params, uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w,
                               st_error *err)
{
    char path[ST_PATH_MAX + 64];
    ST_TRY(st_table_part_path(ctx, layer, table, index, path, sizeof path, err));
    return st_table_create_at(ctx, path, layer, table, fields, n_fields, inputs, n_inputs, params, fp, kv, n_kv, w,
                              err);
}

/* Names parts 0..n-1 after their content and writes the manifest: its
 * fingerprint hash(seed, the parts' fingerprints) into *fp, or *fp as
 * given when keep. */
static st_status seal(st_run_ctx *ctx, const char *layer, const char *table, size_t n, uint64_t seed, bool keep,
                      uint64_t *fp, st_error *err)
{
    char dir[ST_PATH_MAX];
    ST_TRY(parts_dir(ctx, layer, table, dir, err));
    char (*names)[64] = calloc(n ? n : 1, sizeof *names);
    const char **list = calloc(n ? n : 1, sizeof *list);
    st_status s = names && list ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "out of memory");
    uint64_t h = seed;
    for (size_t i = 0; i < n && s == ST_OK; i++) {
        char from[ST_PATH_MAX + 64], to[ST_PATH_MAX + 96];
        st_reader *r = NULL;
        if ((s = temp_path(dir, i, from, sizeof from, err)) != ST_OK || (s = st_reader_open(&r, from, err)) != ST_OK)
            break;
        uint64_t pf = st_reader_meta(r)->fingerprint;
        st_reader_close(r);
        h = st_hash64(h, &pf, sizeof pf);
        snprintf(names[i], sizeof names[i], "part-%05zu-%016llx.strata", i, (unsigned long long)pf);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        if (rename(from, to) != 0) s = st_error_set(err, ST_ERR_IO, "cannot name part '%s': %s", to, strerror(errno));
        list[i] = names[i];
    }
    char path[ST_PATH_MAX];
    if (s == ST_OK) s = st_warehouse_stage_path(ctx->wh, layer, table, path, err);
    if (keep) h = *fp;
    if (s == ST_OK) s = st_manifest_write(path, list, n, h, err);
    if (s == ST_OK) *fp = h;
    free(names);
    free(list);
    return s;
}

st_status st_table_seal_parts(st_run_ctx *ctx, const char *layer, const char *table, size_t n, uint64_t seed,
                              uint64_t *fp, st_error *err)
{
    return seal(ctx, layer, table, n, seed, false, fp, err);
}

st_status st_table_seal_parts_as(st_run_ctx *ctx, const char *layer, const char *table, size_t n, uint64_t fp,
                                 st_error *err)
{
    return seal(ctx, layer, table, n, 0, true, &fp, err);
}
