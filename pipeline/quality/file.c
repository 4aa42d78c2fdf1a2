/*
 * pipeline/quality/file.c: the quality evaluator's tables backed by layer
 * files.
 *
 * A thin adapter from the qtable vtable to st_reader: schema, chunk row
 * counts, zone maps (st_reader_block_info) and decoded blocks
 * (st_reader_read_block, which verifies the block's checksum first). A
 * missing file is ST_ERR_NOTFOUND, which the evaluator reports as a failed
 * expectation; a file that exists but cannot be opened or is damaged is a
 * run error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quality_internal.h"
#include "strata/pool.h"

static size_t ft_n_fields(void *impl) { return st_reader_n_fields(impl); }
static const char *ft_field_name(void *impl, size_t i) { return st_reader_field(impl, i)->name; }
static st_type ft_field_type(void *impl, size_t i) { return st_reader_field(impl, i)->type; }
static uint64_t ft_n_rows(void *impl) { return st_reader_n_rows(impl); }
static size_t ft_n_chunks(void *impl) { return st_reader_n_chunks(impl); }
static uint32_t ft_chunk_rows(void *impl, size_t c) { return st_reader_chunk_rows(impl, c); }

static st_status ft_block_info(void *impl, size_t c, size_t col, st_block_info *out, st_error *err)
{
    st_status s = st_reader_block_info(impl, c, col, out);
    if (s != ST_OK)
        return st_error_set(err, s, "zone map of column '%s', chunk %zu: %s", st_reader_field(impl, col)->name, c,
                            st_status_name(s));
    return ST_OK;
}

static st_status ft_read_block(void *impl, size_t c, size_t col, st_column *out, st_error *err)
{
    return st_reader_read_block(impl, c, col, out, err);
}

static st_status ft_read_block_dict(void *impl, size_t c, size_t col, st_column *dict, uint32_t *codes, st_error *err)
{
    return st_reader_read_block_dict(impl, c, col, dict, codes, err);
}

static st_status ft_read_block_runs(void *impl, size_t c, size_t col, uint64_t *val, uint32_t *end, size_t cap,
                                    size_t *n_runs, st_error *err)
{
    return st_reader_read_block_runs(impl, c, col, val, end, cap, n_runs, err);
}

static void ft_close(void *impl) { st_reader_close(impl); }

static const qtable_vt file_vt = {
    ft_n_fields,   ft_field_name, ft_field_type,      ft_n_rows,          ft_n_chunks, ft_chunk_rows,
    ft_block_info, ft_read_block, ft_read_block_dict, ft_read_block_runs, ft_close,
};

typedef struct pathsrc {
    st_qpath_fn fn;
    void *ctx;
} pathsrc;

static st_status file_open(void *ctx, const char *layer, const char *table, qtable *out, st_error *err)
{
    pathsrc *ps = ctx;
    char path[4096];
    if (!ps->fn(ps->ctx, layer, table, path, sizeof path))
        return st_error_set(err, ST_ERR_INVALID, "path of %s.%s is too long", layer, table);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return st_error_set(err, ST_ERR_NOTFOUND, "no file %s", path);
        return st_error_set(err, ST_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    }
    st_reader *r = NULL;
    st_status s = st_reader_open(&r, path, err);
    if (s != ST_OK) return s;
    out->impl = r;
    out->vt = &file_vt;
    return ST_OK;
}

st_status st_suite_run_paths_on(const st_suite *s, st_qpath_fn path, void *ctx, const char *layer_filter,
                                st_pool *pool, st_quality_results **out, st_error *err)
{
    pathsrc ps = {path, ctx};
    qsource src = {file_open, &ps};
    return st_quality_eval(s, &src, layer_filter, pool, out, err);
}

st_status st_suite_run_paths(const st_suite *s, st_qpath_fn path, void *ctx, const char *layer_filter, int threads,
                             st_quality_results **out, st_error *err)
{
    st_pool *pool = threads > 1 ? st_pool_new(threads > 8 ? 8 : threads) : NULL;
    st_status st = st_suite_run_paths_on(s, path, ctx, layer_filter, pool, out, err);
    st_pool_free(pool);
    return st;
}

static bool warehouse_path(void *ctx, const char *layer, const char *table, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s/%s.strata", (const char *)ctx, layer, table);
    return n > 0 && (size_t)n < cap;
}

st_status st_suite_run(const st_suite *s, const char *warehouse_dir, const char *layer_filter,
                       st_quality_results **out, st_error *err)
{
    return st_suite_run_paths(s, warehouse_path, (void *)warehouse_dir, layer_filter, 1, out, err);
}
