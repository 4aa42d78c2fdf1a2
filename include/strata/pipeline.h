/*
 * pipeline.h: `strata run` as a library call. The DAG is
 *
 *   ingest -> validate -> stage -> intermediate -> ml -> marts -> report
 *
 * ingest:       SQLite sources -> bronze (raw_*), lossless
 * validate:     the quality suite's bronze expectations
 * stage:        bronze -> silver (stg_*), casting, rejects, invariants
 * intermediate: silver -> gold (int_transactions_unified, int_customer_analytics)
 * ml:           gold features -> k selection, k-means, personas (ml_*)
 * marts:        -> platinum (dim_customers, fct_transactions, marts_*)
 * report:       -> report/index.html
 *
 * Each data step writes its files with a fingerprint (hash of its
 * parameters and its inputs' fingerprints) in their footers; a step whose
 * outputs already carry the fingerprint it would write is skipped unless
 * `force`. Bronze fingerprints hash the ingested values themselves, and
 * ingest is skipped when the source files' identity (size, mtime, table
 * names, flags) is unchanged since the run that wrote them.
 */
#ifndef STRATA_PIPELINE_H
#define STRATA_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default rowid width of a transaction table part (2^24): a source of up
 * to 16.7M rowids per shard is one part, today's single file. */
#define ST_PART_ROWS_DEFAULT ((uint64_t)1 << 24)

typedef struct st_run_opts {
    const char *customers_path;    /* default "data/chinook.db" */
    const char *transactions_path; /* default "data/example.db" */
    const char *customers_table;   /* default "Customer" (also tries "customers") */
    const char *sales_table;       /* default "sales_qty" */
    const char *foc_table;         /* default "foc_qty" */
    const char *warehouse;         /* default "warehouse" */
    const char *suite_path;        /* NULL = built-in default suite */
    const char *only;              /* run just this step (NULL = all) */
    const char *from;              /* run from this step on (NULL = all) */
    int threads;                   /* 0 = number of online CPUs */
    bool force;                    /* rebuild even when fingerprints match */
    bool wait;                     /* wait for the warehouse lock */
    bool quiet;                    /* no progress / summary output */
    bool no_report;                /* skip the report step */
    uint64_t memory_limit_bytes;   /* gold step working-set budget; beyond it
                                      the step partitions customers through a
                                      spill file (default 1 GiB; not part of
                                      any fingerprint: output is identical) */
    uint64_t part_rows;            /* rowids per part of a transaction shard
                                      (default ST_PART_ROWS_DEFAULT): a shard
                                      whose rowids span more is cut into
                                      contiguous rowid ranges of this width,
                                      the unit of parallel ingest and stage
                                      across threads and ranks */
    int64_t year_min, year_max;    /* accepted years, default 1990..2100 */
    int64_t qty_min, qty_max;      /* accepted quantities, default 0..1e9 */
    /* segmentation */
    int k;                         /* 0 = auto (by silhouette); default 3 */
    int k_min, k_max;              /* k range for selection, default 2..7 */
    int n_init;                    /* default 10 */
    int max_iter;                  /* default 300 */
    double tol;                    /* default 1e-4 */
    uint64_t seed;                 /* default 42 */
    const char *features;          /* comma list, default the business set */
    const char *log1p;             /* comma list of features to log1p, default none */
    const char *persona_map;       /* override file, NULL = rule-based names */
} st_run_opts;

/* Fills the defaults above. */
void st_run_opts_default(st_run_opts *o);

/* Runs the pipeline. Prints progress and the persona summary to stderr /
 * stdout unless quiet. Returns the first failure. */
st_status st_pipeline_run(const st_run_opts *o, st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
