/*
 * gold_dist.h: the gold step by customer range across the ranks of an MPI
 * world (gold_dist.c), and the pieces of step_intermediate.c it runs on.
 * Internal to pipeline/.
 *
 * step_intermediate.c calls st_gold_dist_run() on rank 0 when
 * st_gold_dist_wanted(); the other ranks run the same task through the
 * follower loop of ml/kmeans_dist.c (cmd_run.c registers
 * st_gold_dist_task). Rank 0 writes every row through `emit`, in the
 * order one process writes them.
 */
#ifndef STRATA_GOLD_DIST_H
#define STRATA_GOLD_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/agg.h"
#include "strata/file.h"
#include "strata/partition.h"
#include "strata/spill.h"
#include "strata/status.h"
#include "strata/warehouse.h"

/* ---- from step_intermediate.c ---- */

/* A decoded chunk of a silver transaction table, reused chunk to chunk. */
typedef struct st_gold_chunk st_gold_chunk;

/* The lines of the last chunk read: borrowed from the st_gold_chunk until
 * its next read. material[] are codes of the dictionary given to the read. */
typedef struct st_gold_lines {
    const int64_t *customer_id;
    const int32_t *period_key;
    const uint32_t *material;
    const int64_t *quantity;
    size_t n;
} st_gold_lines;

st_status st_gold_chunk_create(st_gold_chunk **out, st_error *err) ST_MUST_USE;
void st_gold_chunk_free(st_gold_chunk *c);

/* Opens silver table tab (0 sales, 1 FOC) at path and checks its four
 * columns; ix gets customer_id, period_key, material_code, quantity. */
st_status st_gold_open_lines(const char *path, unsigned tab, st_reader **out, size_t ix[4],
                             st_error *err) ST_MUST_USE;
/* The silver table name of tab. */
const char *st_gold_table(unsigned tab);

/* Reads chunk ch of table tab (row0: its first row, for messages): its
 * material block's dictionary through dict, every line checked against
 * dims when dims is not NULL (the one-process step's errors). */
st_status st_gold_read_chunk(st_gold_chunk *c, st_reader *r, const size_t ix[4], size_t ch, unsigned tab,
                             uint64_t row0, st_dict *dict, const st_feature_dims *dims, st_gold_lines *out,
                             st_error *err) ST_MUST_USE;

/* The cost model of the step's customer ranges over dims (partition.h). */
st_range_cost st_gold_range_cost(const st_feature_dims *dims);

/* Partition pi of a spill through a new st_features over pd, finished with
 * dict's ranks on `threads` threads. Caller owns *out. */
st_status st_gold_spill_features(st_spill *spill, uint32_t pi, const st_feature_dims *pd, const st_dict *dict,
                                 unsigned threads, st_features **out, st_error *err) ST_MUST_USE;

/* ---- gold_dist.c ---- */

/* What rank 0 knows before the step: the zone maps' ranges, the lines,
 * the run's settings, where the silver tables are and a spill file of its
 * own in the staging area (fd, owned by st_gold_dist_run from the call;
 * tmpdir: the directory, where the other ranks make theirs). */
typedef struct st_gold_dist_in {
    st_feature_dims dims;
    uint64_t n_lines;
    int threads;
    uint64_t memory_limit;
    char silver[2][ST_PATH_MAX];
    char tmpdir[ST_PATH_MAX];
    int fd;
} st_gold_dist_in;

/* For the step's note. */
typedef struct st_gold_dist_out {
    size_t n_ranges;
    unsigned n_passes;
    uint64_t spilled;  /* bytes of every rank's spill file */
    int n_ranks;
    uint64_t n_rounds; /* of the lines' exchange */
    uint64_t moved;    /* bytes the ranks sent each other: lines, then rows to rank 0 */
} st_gold_dist_out;

/* Writes finished rows to the gold files, on rank 0, in the order given. */
typedef st_status (*st_gold_emit_fn)(void *arg, const st_feature_rows *rows, const st_dict *dict, st_error *err);

/* True on rank 0 of a served world of more than one rank (strata-mpi run). */
bool st_gold_dist_wanted(void);

/* Rank 0: the step across every rank. dict is the run's (empty; filled
 * and finished here with every rank's material strings). ST_OK only when
 * every rank succeeded; else the first failing rank's status and message. */
st_status st_gold_dist_run(st_gold_dist_in *in, st_dict *dict, st_gold_emit_fn emit, void *arg,
                           st_gold_dist_out *out, st_error *err) ST_MUST_USE;

/* The followers' task handler (st_kmeans_on_task). */
st_status st_gold_dist_task(int32_t kind, const void *plan, size_t len, void *arg, st_error *err);

/* Appends "; on N ranks (R exchange rounds, M MiB between ranks)" to the
 * step's note when d->n_ranks > 1. */
void st_gold_dist_note(char *note, size_t cap, const st_gold_dist_out *d);

#endif
