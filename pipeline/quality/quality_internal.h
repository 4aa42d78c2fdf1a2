/*
 * quality_internal.h: what the quality suite's files share and nobody else
 * needs: a string arena, the suite's layout, and the table abstraction
 * the evaluator runs on.
 *
 * The evaluator (eval.c) never sees a file: it asks a qtable for its
 * schema, its chunks, a block's zone map and a decoded block. Two
 * implementations exist: layer files through st_reader (file.c) and
 * borrowed in-memory columns (mem.c). Keeping the reader behind this
 * vtable also keeps it out of programs that only parse suites.
 */
#ifndef STRATA_QUALITY_INTERNAL_H
#define STRATA_QUALITY_INTERNAL_H

#include "strata/file.h"
#include "strata/quality.h"

/* A bump allocator for strings and small arrays that live as long as
 * their owner (suite or results). Freed all at once. */
typedef struct st_qarena_block {
    struct st_qarena_block *next;
    size_t used, cap;
    max_align_t data[];
} st_qarena_block;

typedef struct st_qarena {
    st_qarena_block *head;
} st_qarena;

void st_qarena_free(st_qarena *a);
/* NULL on allocation failure or overflow. Memory is zeroed. */
void *st_qarena_alloc(st_qarena *a, size_t n);
char *st_qarena_strndup(st_qarena *a, const char *s, size_t n);
char *st_qarena_strdup(st_qarena *a, const char *s);

struct st_suite {
    st_qarena arena;
    char *name;
    st_expectation *exps;
    size_t n_exps, cap_exps;
};

/* One open table. */
typedef struct qtable_vt {
    size_t (*n_fields)(void *impl);
    const char *(*field_name)(void *impl, size_t i);
    st_type (*field_type)(void *impl, size_t i);
    uint64_t (*n_rows)(void *impl);
    size_t (*n_chunks)(void *impl);
    uint32_t (*chunk_rows)(void *impl, size_t c);
    st_status (*block_info)(void *impl, size_t c, size_t col, st_block_info *out, st_error *err);
    st_status (*read_block)(void *impl, size_t c, size_t col, st_column *out, st_error *err);
    /* A STR/BYTES block as a dictionary and a code per row (codes: room for
     * the chunk's rows), as st_reader_read_block_dict; NULL when the table
     * has no such reading. */
    st_status (*read_block_dict)(void *impl, size_t c, size_t col, st_column *dict, uint32_t *codes, st_error *err);
    /* An integer block as runs, as st_reader_read_block_runs (ST_ERR_UNSUPPORTED:
     * not a block of runs); NULL when the table has no such reading. */
    st_status (*read_block_runs)(void *impl, size_t c, size_t col, uint64_t *val, uint32_t *end, size_t cap,
                                 size_t *n_runs, st_error *err);
    void (*close)(void *impl);
} qtable_vt;

typedef struct qtable {
    void *impl;
    const qtable_vt *vt;
} qtable;

/* Where tables come from. open() returns ST_ERR_NOTFOUND (message naming
 * what was looked for) when the table does not exist, another failure when
 * it exists but cannot be read. */
typedef struct qsource {
    st_status (*open)(void *ctx, const char *layer, const char *table, qtable *out, st_error *err);
    void *ctx;
} qsource;

/* Accessors the report needs (pipeline/quality/eval.c). */
const char *st_quality_suite_name(const st_quality_results *r);
const char *st_quality_layers(const st_quality_results *r);

/* An instrument for tests: the most keys one keyed expectation (unique,
 * no_duplicate_keys, distinct referential orphans; not a referential
 * target) held at once while r was evaluated, the largest over the
 * expectations and over merged results. It shows the bound pipeline/quality/eval.c
 * promises: one chunk for a single integer key with disjoint chunk ranges,
 * one key for keys that arrive in order, the distinct orphan values for
 * referential. 0 for NULL. */
size_t st_quality_max_keys_held(const st_quality_results *r);

/* The evaluator: runs the selected expectations of s on tables of src,
 * a table per thread of pool at a time (NULL: on the caller; src->open
 * must be callable from several threads when the pool has more); the
 * results do not depend on the thread count. */
struct st_pool;
st_status st_quality_eval(const st_suite *s, const qsource *src, const char *layer_filter, struct st_pool *pool,
                          st_quality_results **out, st_error *err) ST_MUST_USE;

#endif
