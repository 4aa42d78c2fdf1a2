/*
 * parts_dist.h: ingest and stage across the ranks of an MPI world, part
 * by part (parts_dist.c), and the one function per step that writes a
 * part (step_ingest.c, step_stage.c). Internal to pipeline/.
 *
 * A part is described by an item: a fixed record holding everything the
 * writer needs (paths in the staging area every rank sees, names, params,
 * fingerprint seed, decided column types), so a rank with no run context
 * writes it exactly as rank 0 or one process would: the same item gives
 * the same bytes wherever it runs. Rank 0 writes its own items in its
 * step's thread pool; st_parts_dist_run() sends the others' to them.
 */
#ifndef STRATA_PARTS_DIST_H
#define STRATA_PARTS_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"
#include "strata/warehouse.h"

/* Most source columns a distributed ingest item can type (one byte each);
 * a wider table is ingested on rank 0 alone. */
#define ST_DIST_MAX_COLS 1024

enum { ST_TASK_INGEST = 2, ST_TASK_STAGE = 3 }; /* 1 is gold_dist.c's */

/* One bronze part: one shard of a transaction table, or the rows of a
 * rowid range of one (--part-rows). */
typedef struct st_ingest_item {
    char shard[ST_PATH_MAX];  /* the SQLite file */
    char out[ST_PATH_MAX];    /* the part's staged path (st_table_part_path) */
    char src_table[256];      /* the table as spelled in the shard */
    char bronze[64];          /* bronze table name */
    char table0[256];         /* the first shard's spelling: lineage and source_table */
    char files[2048];         /* source_file: every shard's name, in order */
    char part_source[256];    /* this shard's file name */
    char params[1024];        /* the ingest step's params */
    uint64_t fp;              /* fingerprint seed (the content read is added) */
    int64_t lo, hi;           /* the rowid range read when bounded (footer part_rowids) */
    uint8_t bounded;          /* 0: the whole shard */
    uint32_t n_cols;
    uint8_t types[ST_DIST_MAX_COLS]; /* per column: 0 as declared, else the st_type its values decided */
} st_ingest_item;

typedef struct st_ingest_result {
    uint64_t rows;
    int32_t rank;             /* who wrote it */
    char reader[120];         /* st_source_scan_path(), "" when empty */
} st_ingest_result;

/* Writes the part (step_ingest.c). progress(arg, rows) after each batch
 * when not NULL. */
st_status st_ingest_item_write(const st_ingest_item *it, st_ingest_result *res, void (*progress)(void *, uint64_t),
                               void *arg, st_error *err) ST_MUST_USE;

/* One silver part: a bronze part (or a whole bronze table) staged. */
typedef struct st_stage_item {
    char in[ST_PATH_MAX];      /* the bronze part file (or table) */
    char out[ST_PATH_MAX];     /* the silver part's (or table's) staged path */
    char rejects[ST_PATH_MAX]; /* its rejected rows, a hidden file in staging */
    char bronze[64], silver[64], qty_name[32];
    uint64_t fp;               /* the step's fingerprint */
    int64_t year_min, year_max, qty_min, qty_max;
} st_stage_item;

typedef struct st_stage_result {
    uint64_t raw_rows, staged, rejected, chunks, stored;
    int32_t rank;
} st_stage_result;

struct st_run_ctx;
/* Stages the item (step_stage.c); ctx (NULL on a follower) for progress. */
st_status st_stage_item_write(const st_stage_item *it, st_stage_result *res, struct st_run_ctx *ctx,
                              st_error *err) ST_MUST_USE;

/* True on rank 0 of a served world of more than one rank. */
bool st_parts_dist_wanted(void);
/* The owner of part `index`: index % ranks. */
int st_parts_dist_owner(size_t index);

/* Rank 0: items[0..n) (of `kind`, each owned by owner[i]) written across
 * the ranks: every follower writes the items it owns on up to `threads`
 * threads, while rank 0 runs local(arg), which writes the items rank 0
 * owns into results[] (and whatever else the step does there); then
 * results[i] of every item comes from its owner. ST_OK only when every
 * rank succeeded; else the first failing rank's status and message, on
 * every rank. */
st_status st_parts_dist_run(int32_t kind, const void *items, const int32_t *owner, size_t n, int threads,
                            void *results, st_status (*local)(void *arg, st_error *err), void *arg,
                            st_error *err) ST_MUST_USE;

/* The followers' handler of every pipeline task (st_kmeans_on_task):
 * ingest and stage here, gold by kind to gold_dist.c. */
st_status st_pipeline_task(int32_t kind, const void *plan, size_t len, void *arg, st_error *err);

#endif
