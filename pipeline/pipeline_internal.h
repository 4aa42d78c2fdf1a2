/*
 * pipeline_internal.h: what the pipeline steps share. Not installed.
 *
 * A run context carries the options, the open warehouse, the thread
 * count, per-step results for the run log, and the quality results that
 * accumulate across steps. Steps are plain functions; the DAG runner in
 * run.c decides whether each runs or is skipped.
 */
#ifndef STRATA_PIPELINE_INTERNAL_H
#define STRATA_PIPELINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "strata/buf.h"
#include "strata/column.h"
#include "strata/file.h"
#include "strata/pipeline.h"
#include "strata/warehouse.h"
#include "progress_internal.h"

/* Bumped when a step's output for the same input changes (so old
 * warehouses rebuild). Part of every fingerprint. */
#define ST_PIPELINE_VERSION 3

typedef struct st_step_result {
    const char *name;
    const char *status;     /* "ok", "skipped", "failed", "not run" */
    uint64_t rows_in;
    uint64_t rows_out;
    double seconds;
    uint64_t peak_rss_bytes;
    char note[256];
} st_step_result;

typedef struct st_run_ctx {
    const st_run_opts *o;
    st_warehouse *wh;
    int threads;
    st_step_result *cur;            /* the running step's result record */
    struct st_quality_results *quality; /* accumulated over the layers checked */
    struct st_suite *suite;         /* the run's suite, owned (NULL: st_step_validate loads its own) */
    st_buf quality_summary;         /* one line per layer checked */
    int quality_warnings;
    int quality_failures;
    /* Filled by the ml/marts steps for the terminal summary. */
    st_buf persona_summary;
    /* The running step's parameters, as its fingerprint hashes them; the
     * `params` of every file it writes (st_table_create). */
    const char *params;
    st_meter meter;                 /* the running step's progress line (st_progress*) */
    /* The run's worker pool, ctx->threads threads with the caller (owned
     * by st_pipeline_run; NULL when out of memory: phases then run their
     * tasks on the calling thread). */
    struct st_pool *pool;
} st_run_ctx;

/* Steps. Each writes its outputs into staging with fingerprint `fp`. */
st_status st_step_ingest(st_run_ctx *ctx, st_error *err) ST_MUST_USE;
st_status st_step_validate(st_run_ctx *ctx, const char *layer, st_error *err) ST_MUST_USE;
/* The suite of options o (--suite FILE, else the built-in one) into *out
 * (caller owns; st_suite_free). A file that does not parse: ST_ERR_INVALID
 * naming its line. */
st_status st_step_load_suite(const st_run_opts *o, struct st_suite **out, st_error *err) ST_MUST_USE;
st_status st_step_stage(st_run_ctx *ctx, uint64_t fp, st_error *err) ST_MUST_USE;
st_status st_step_intermediate(st_run_ctx *ctx, uint64_t fp, st_error *err) ST_MUST_USE;
st_status st_step_ml(st_run_ctx *ctx, uint64_t fp, st_error *err) ST_MUST_USE;
st_status st_step_marts(st_run_ctx *ctx, uint64_t fp, st_error *err) ST_MUST_USE;

/* Fills ctx->persona_summary from platinum.marts_customer_summary. */
st_status st_marts_summarise(st_run_ctx *ctx, st_error *err) ST_MUST_USE;

/* ---- helpers shared by steps (pipeline/util.c) ---- */

/* Reads the fingerprint in the footer of <layer>.<table> as this run sees
 * it (staged or final). ST_ERR_NOTFOUND when the file is absent. */
st_status st_table_fingerprint(st_run_ctx *ctx, const char *layer, const char *table,
                               uint64_t *fp, st_error *err) ST_MUST_USE;

/* Opens <layer>.<table> for reading as this run sees it. The footer's
 * layer and table must be those asked for: a misplaced (swapped, copied)
 * file is ST_ERR_CORRUPT naming the path and what it holds (checked by
 * st_reader_open()). */
st_status st_table_open(st_run_ctx *ctx, const char *layer, const char *table,
                        st_reader **r, st_error *err) ST_MUST_USE;

/* True when <layer>.<table> (as this run sees it) is in its place,
 * carries fingerprint want_fp and every block checks out: the test a
 * step's outputs pass to be skipped. When false because the file is
 * damaged or misplaced, why gets "rebuilt: <reason>" (else untouched). */
bool st_table_current(st_run_ctx *ctx, const char *layer, const char *table, uint64_t want_fp, char *why,
                      size_t why_len);

/* ST_ERR_UNSUPPORTED naming the file when the published <layer>.<table>
 * was written by a newer major format version: a run refuses to
 * overwrite it. ST_OK otherwise (absent, readable or damaged). */
st_status st_table_refuse_newer(st_run_ctx *ctx, const char *layer, const char *table, st_error *err) ST_MUST_USE;

/* Opens a staged writer for <layer>.<table>. inputs: "layer.table" names. */
st_status st_table_create(st_run_ctx *ctx, const char *layer, const char *table,
                          const st_field *fields, size_t n_fields,
                          const char *const *inputs, size_t n_inputs,
                          const char *params, uint64_t fp, const st_kv *kv, size_t n_kv,
                          st_writer **w, st_error *err) ST_MUST_USE;

/* The same at `path` (a part of a partitioned table, st_table_create_part). */
st_status st_table_create_at(st_run_ctx *ctx, const char *path, const char *layer, const char *table,
                             const st_field *fields, size_t n_fields, const char *const *inputs, size_t n_inputs,
                             const char *params, uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w,
                             st_error *err) ST_MUST_USE;

/* The writer of st_table_create_at without a run context (params taken
 * as given): what a follower rank, which has none, writes its parts with. */
st_status st_part_writer_open(const char *path, const char *layer, const char *table, const st_field *fields,
                              size_t n_fields, const char *const *inputs, size_t n_inputs, const char *params,
                              uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w, st_error *err) ST_MUST_USE;

/* Partitioned tables (pipeline/parts.c; FORMAT.md "Partitioned tables").
 * st_table_create_part opens a staged writer for part `index` of
 * <layer>.<table> (same arguments as st_table_create; parts may be
 * written concurrently, each by its own writer). When parts 0..n-1 are
 * all closed, st_table_seal_parts names each after its content and writes
 * the table's manifest with the fingerprint hash(seed, the parts'
 * fingerprints in order), returned in *fp. */
st_status st_table_create_part(st_run_ctx *ctx, const char *layer, const char *table, size_t index,
                               const st_field *fields, size_t n_fields, const char *const *inputs, size_t n_inputs,
                               const char *params, uint64_t fp, const st_kv *kv, size_t n_kv, st_writer **w,
                               st_error *err) ST_MUST_USE;
st_status st_table_seal_parts(st_run_ctx *ctx, const char *layer, const char *table, size_t n, uint64_t seed,
                              uint64_t *fp, st_error *err) ST_MUST_USE;
/* Where part `index` of <layer>.<table> is written in this run's staging
 * area until sealed (its folder created): the path st_table_create_part
 * opens, for a writer on another rank (st_part_writer_open). */
st_status st_table_part_path(st_run_ctx *ctx, const char *layer, const char *table, size_t index, char *buf,
                             size_t cap, st_error *err) ST_MUST_USE;
/* st_table_seal_parts with the manifest's fingerprint `fp` as given (a
 * step's fingerprint, which its skip test compares; every part carries it
 * too). */
st_status st_table_seal_parts_as(st_run_ctx *ctx, const char *layer, const char *table, size_t n, uint64_t fp,
                                 st_error *err) ST_MUST_USE;

/* Column index by name in r, or ST_ERR_SCHEMA naming table and column. */
st_status st_table_col(st_reader *r, const char *table, const char *name, size_t *idx,
                       st_error *err) ST_MUST_USE;

/* Peak resident set size of this process so far, bytes. */
uint64_t st_peak_rss_bytes(void);
double st_now_seconds(void);

/* Progress line of the running step: rows done, rate and ETA, on a
 * terminal and without --quiet (pipeline/progress.c draws it; the step
 * line of run.c erases it). Safe to call from several threads.
 * st_progress: `done` of `total` rows so far. st_progress_expect: the step
 * will read `rows` more (call once per input as it is opened);
 * st_progress_add: `rows` more are done (call once per chunk). */
void st_progress(st_run_ctx *ctx, uint64_t done, uint64_t total);
/* The runner brackets every step with these: begin starts the step's line
 * (and its ticker: the elapsed time moves on even when the step counts
 * nothing), end erases it. */
void st_progress_begin(st_run_ctx *ctx);
void st_progress_end(st_run_ctx *ctx);
void st_progress_expect(st_run_ctx *ctx, uint64_t rows);
void st_progress_add(st_run_ctx *ctx, uint64_t rows);

#endif

/* Reads whole columns `names` of table r into cols[0..n) (initialised
 * here with the file's types; caller frees them). */
st_status st_table_read_named(st_reader *r, const char *table, const char *const *names, size_t n,
                              st_column *cols, st_error *err) ST_MUST_USE;

/* ST_ERR_SCHEMA naming the column when cols[j].type != types[j]. */
st_status st_table_expect_types(const st_column *cols, const char *const *names, const st_type *types, size_t n,
                                const char *table, st_error *err) ST_MUST_USE;

/* Worker threads for a requested count: requested when > 0, else the
 * online cores; clamped to 1..64. */
static inline int st_run_threads(int requested)
{
    int t = requested > 0 ? requested : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return t < 1 ? 1 : t > 64 ? 64 : t;
}

/* Next month's period key: 202412 -> 202501. */
static inline int32_t st_period_next(int32_t pk)
{
    return (pk % 100 == 12) ? (pk / 100 + 1) * 100 + 1 : pk + 1;
}
