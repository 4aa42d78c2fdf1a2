/*
 * pipeline/quality/mem.c: in-memory tables for the quality evaluator (st_qmem).
 *
 * A registered table is a list of borrowed st_columns cut into chunks of
 * chunk_rows rows. Zone maps are computed on demand with the layer-file
 * writer's rules (min/max over present values of BOOL/I32/I64 and of
 * non-NaN F64; none for strings, bytes, or a block without values), so the
 * evaluator's zone-map shortcuts are exercised by tests exactly as they
 * are on files. Reading a block copies the chunk's rows into the caller's
 * column.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quality_internal.h"

typedef struct memtable {
    char *layer, *table;
    char **names;
    const st_column *cols;
    size_t n_cols;
    size_t n_rows;
    size_t chunk_rows;
} memtable;

struct st_qmem {
    memtable *t;
    size_t n, cap;
};

st_status st_qmem_new(st_qmem **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? ST_OK : ST_ERR_NOMEM;
}

static void memtable_free(memtable *t)
{
    free(t->layer);
    free(t->table);
    if (t->names)
        for (size_t j = 0; j < t->n_cols; j++) free(t->names[j]);
    free(t->names);
}

void st_qmem_free(st_qmem *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) memtable_free(&m->t[i]);
    free(m->t);
    free(m);
}

st_status st_qmem_add(st_qmem *m, const char *layer, const char *table, const char *const *names,
                      const st_column *cols, size_t n_cols, size_t chunk_rows, st_error *err)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].layer, layer) && !strcmp(m->t[i].table, table))
            return st_error_set(err, ST_ERR_INVALID, "qmem: table %s.%s added twice", layer, table);
    size_t n_rows = n_cols ? cols[0].n_rows : 0;
    for (size_t j = 1; j < n_cols; j++)
        if (cols[j].n_rows != n_rows)
            return st_error_set(err, ST_ERR_INVALID, "qmem: %s.%s column '%s' has %zu rows, column '%s' %zu", layer,
                                table, names[j], cols[j].n_rows, names[0], n_rows);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        memtable *t = realloc(m->t, cap * sizeof *t);
        if (!t) return st_error_set(err, ST_ERR_NOMEM, "qmem: out of memory");
        m->t = t;
        m->cap = cap;
    }
    memtable *t = &m->t[m->n];
    memset(t, 0, sizeof *t);
    t->layer = strdup(layer);
    t->table = strdup(table);
    t->names = calloc(n_cols ? n_cols : 1, sizeof *t->names);
    t->n_cols = n_cols;
    bool ok = t->layer && t->table && t->names;
    for (size_t j = 0; ok && j < n_cols; j++) ok = (t->names[j] = strdup(names[j])) != NULL;
    if (!ok) {
        memtable_free(t);
        return st_error_set(err, ST_ERR_NOMEM, "qmem: out of memory");
    }
    t->cols = cols;
    t->n_rows = n_rows;
    t->chunk_rows = chunk_rows ? chunk_rows : ST_CHUNK_ROWS;
    m->n++;
    return ST_OK;
}

/* ---- the qtable vtable -------------------------------------------------------- */

static size_t mt_n_fields(void *impl) { return ((memtable *)impl)->n_cols; }
static const char *mt_field_name(void *impl, size_t i) { return ((memtable *)impl)->names[i]; }
static st_type mt_field_type(void *impl, size_t i) { return ((memtable *)impl)->cols[i].type; }
static uint64_t mt_n_rows(void *impl) { return ((memtable *)impl)->n_rows; }

static size_t mt_n_chunks(void *impl)
{
    memtable *t = impl;
    return (t->n_rows + t->chunk_rows - 1) / t->chunk_rows;
}

static uint32_t mt_chunk_rows(void *impl, size_t c)
{
    memtable *t = impl;
    size_t first = c * t->chunk_rows;
    size_t n = t->n_rows - first < t->chunk_rows ? t->n_rows - first : t->chunk_rows;
    return (uint32_t)n;
}

static st_status mt_block_info(void *impl, size_t c, size_t col, st_block_info *out, st_error *err)
{
    (void)err;
    memtable *t = impl;
    const st_column *k = &t->cols[col];
    size_t first = c * t->chunk_rows, n = mt_chunk_rows(impl, c);
    memset(out, 0, sizeof *out);
    out->n_rows = (uint32_t)n;
    out->encoding = ST_ENC_PLAIN;
    for (size_t i = first; i < first + n; i++) {
        if (!st_column_valid(k, i)) {
            out->null_count++;
            continue;
        }
        if (k->type == ST_TYPE_F64) {
            double v = st_column_f64(k)[i];
            if (isnan(v)) continue;
            if (!out->has_minmax || v < out->min_f64) out->min_f64 = v;
            if (!out->has_minmax || v > out->max_f64) out->max_f64 = v;
            out->has_minmax = true;
        } else if (k->type == ST_TYPE_BOOL || k->type == ST_TYPE_I32 || k->type == ST_TYPE_I64) {
            int64_t v = k->type == ST_TYPE_BOOL ? st_column_bool(k)[i]
                        : k->type == ST_TYPE_I32 ? st_column_i32(k)[i]
                                                 : st_column_i64(k)[i];
            if (!out->has_minmax || v < out->min_i64) out->min_i64 = v;
            if (!out->has_minmax || v > out->max_i64) out->max_i64 = v;
            out->has_minmax = true;
        }
    }
    return ST_OK;
}

static st_status mt_read_block(void *impl, size_t c, size_t col, st_column *out, st_error *err)
{
    memtable *t = impl;
    const st_column *k = &t->cols[col];
    size_t first = c * t->chunk_rows, n = mt_chunk_rows(impl, c);
    st_column_reset(out);
    for (size_t i = first; i < first + n; i++)
        if (st_column_push_from(out, k, i) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "qmem: out of memory reading %s.%s", t->layer, t->table);
    return ST_OK;
}

static void mt_close(void *impl) { (void)impl; }

static const qtable_vt mem_vt = {
    mt_n_fields, mt_field_name, mt_field_type, mt_n_rows, mt_n_chunks, mt_chunk_rows, mt_block_info, mt_read_block, NULL, NULL, mt_close,
};

static st_status mem_open(void *ctx, const char *layer, const char *table, qtable *out, st_error *err)
{
    const st_qmem *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].layer, layer) && !strcmp(m->t[i].table, table)) {
            out->impl = &m->t[i];
            out->vt = &mem_vt;
            return ST_OK;
        }
    return st_error_set(err, ST_ERR_NOTFOUND, "no in-memory table %s.%s", layer, table);
}

st_status st_suite_run_mem(const st_suite *s, const st_qmem *m, const char *layer_filter,
                           st_quality_results **out, st_error *err)
{
    qsource src = {mem_open, (void *)m};
    return st_quality_eval(s, &src, layer_filter, NULL, out, err);
}
