/*
 * parts_dist.c: ingest and stage across the ranks of an MPI world, one
 * part at a time, writing the parts one process writes, byte for byte.
 *
 * In `mpirun -np N strata-mpi run` (N > 1) rank 0 runs the pipeline and
 * the other ranks wait in the follower loop (ml/kmeans_dist.c). When a
 * step writes a partitioned table (bronze with --transactions shards,
 * silver from a partitioned bronze table), its parts are items
 * (parts_dist.h): fixed records that say everything a writer needs, so a
 * rank with no run context writes an item exactly as rank 0 would. Part k
 * belongs to rank k % N. Rank 0 sends a TASK whose plan is the items and
 * their owners; every follower writes its items (on up to --threads
 * threads), rank 0 meanwhile runs its step's own pool (its parts and the
 * tables that are not partitioned). Then the ranks exchange the items'
 * results (rows, the reader used, counts) with one allgather, which every
 * rank reaches whether its items failed or not, and the TASK's closing
 * st_dist_agree() gives every rank the first failing rank's status and
 * message. Rank 0 then seals the manifests as the one-process path does
 * (pipeline/parts.c), reading the parts' footers; everything is written
 * into the run's staging area, so a failed step publishes nothing.
 *
 * Why the bytes do not depend on N: an item holds every input of its
 * writer (the decided column types of untyped columns among them, one
 * byte per column, since typing reads every shard: rank 0 did it), and
 * the writers are the ones one process runs for each part.
 *
 * Test hooks: STRATA_TEST_FAIL_INGEST_RANK=R / STRATA_TEST_FAIL_STAGE_RANK=R
 * make rank R fail after writing its parts of the ingest / stage step.
 */
#include "parts_dist.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "gold_dist.h"
#include "strata/ml.h"

#define PLAN_MAGIC 0x31445053u /* "SPD1" */

typedef struct pd_header {
    uint32_t magic;
    int32_t kind, threads;
    uint32_t n;
} pd_header;

/* Rank 0's side of the task. */
typedef struct pd_sink {
    void *results;
    st_status (*local)(void *arg, st_error *err);
    void *arg;
} pd_sink;

/* A follower's items in progress. */
typedef struct pd_pool {
    int32_t kind;
    const char *items;
    const int32_t *owner;
    size_t n, next;
    char *results;
    st_status *status;
    st_error *errs;
    pthread_mutex_t mu;
} pd_pool;

static size_t item_bytes(int32_t kind) { return kind == ST_TASK_INGEST ? sizeof(st_ingest_item) : sizeof(st_stage_item); }
static size_t result_bytes(int32_t kind)
{
    return kind == ST_TASK_INGEST ? sizeof(st_ingest_result) : sizeof(st_stage_result);
}

bool st_parts_dist_wanted(void) { return st_kmeans_serving(); }

int st_parts_dist_owner(size_t index) { return (int)(index % (size_t)st_dist_size()); }

static bool terminated(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

#define TERM(f) terminated((f), sizeof(f))

/* Every string of the item ends inside its field (the plan is this
 * build's, but a length is never trusted). */
static bool item_ok(int32_t kind, const void *p)
{
    if (kind == ST_TASK_INGEST) {
        const st_ingest_item *it = p;
        return TERM(it->shard) && TERM(it->out) && TERM(it->src_table) && TERM(it->bronze) && TERM(it->table0) &&
               TERM(it->files) && TERM(it->part_source) && TERM(it->params) && it->n_cols <= ST_DIST_MAX_COLS;
    }
    const st_stage_item *it = p;
    return TERM(it->in) && TERM(it->out) && TERM(it->rejects) && TERM(it->bronze) && TERM(it->silver) &&
           TERM(it->qty_name);
}

static void *pool_worker(void *arg)
{
    pd_pool *p = arg;
    size_t ib = item_bytes(p->kind), rb = result_bytes(p->kind);
    int me = st_dist_rank();
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next;
        while (i < p->n && p->owner[i] != me) i++;
        p->next = i + 1;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n) break;
        const void *it = p->items + i * ib;
        void *res = p->results + i * rb;
        p->status[i] = p->kind == ST_TASK_INGEST ? st_ingest_item_write(it, res, NULL, NULL, &p->errs[i])
                                                 : st_stage_item_write(it, res, NULL, &p->errs[i]);
    }
    return NULL;
}

/* A follower writes the items it owns; the first failure in item order. */
static st_status run_owned(pd_pool *p, int threads, st_error *err)
{
    enum { MAX_WORKERS = 16 };
    p->status = calloc(p->n ? p->n : 1, sizeof *p->status);
    p->errs = calloc(p->n ? p->n : 1, sizeof *p->errs);
    if (!p->status || !p->errs) {
        free(p->status);
        free(p->errs);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory for this rank's parts");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_t th[MAX_WORKERS];
    int started = 0;
    for (int t = 1; t < threads && t < MAX_WORKERS; t++)
        if (pthread_create(&th[started], NULL, pool_worker, p) == 0) started++;
        else break;
    pool_worker(p);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&p->mu);
    st_status s = ST_OK;
    for (size_t i = 0; i < p->n && s == ST_OK; i++)
        if (p->status[i] != ST_OK) {
            s = p->status[i];
            if (err) *err = p->errs[i];
        }
    free(p->status);
    free(p->errs);
    return s;
}

/* STRATA_TEST_FAIL_{INGEST,STAGE}_RANK names this rank: its failure. */
static st_status injected(int32_t kind, int me, st_error *err)
{
    const char *name = kind == ST_TASK_INGEST ? "STRATA_TEST_FAIL_INGEST_RANK" : "STRATA_TEST_FAIL_STAGE_RANK";
    const char *v = getenv(name);
    if (!v || !*v || atoi(v) != me) return ST_OK;
    return st_error_set(err, ST_ERR_INTERNAL, "%s: failure injected by %s after writing this rank's parts",
                        kind == ST_TASK_INGEST ? "ingest" : "stage", name);
}

/* Every rank: its items (or rank 0's step), then the results to rank 0. */
static st_status parts_task(int32_t kind, const void *plan, size_t len, pd_sink *sink, st_error *err)
{
    pd_header h;
    if (len < sizeof h) return st_error_set(err, ST_ERR_INTERNAL, "task %d: a plan of %zu bytes", (int)kind, len);
    memcpy(&h, plan, sizeof h);
    size_t ib = item_bytes(kind), rb = result_bytes(kind);
    if (h.magic != PLAN_MAGIC || h.kind != kind || len != sizeof h + (size_t)h.n * (sizeof(int32_t) + ib))
        return st_error_set(err, ST_ERR_INTERNAL, "task %d with a plan of %zu bytes is not this build's", (int)kind,
                            len);
    int me = st_dist_rank(), n_ranks = st_dist_size();
    size_t n = h.n;
    const int32_t *owner = (const int32_t *)(const void *)((const char *)plan + sizeof h);
    const char *items = (const char *)plan + sizeof h + n * sizeof(int32_t);
    char *mine = calloc(n ? n : 1, rb), *all = calloc(n ? n * (size_t)n_ranks : 1, rb);
    if (!mine || !all) st_dist_abort(8, "out of memory for the results of a task's parts");
    st_status s = ST_OK;
    for (size_t i = 0; i < n && s == ST_OK; i++)
        if (!item_ok(kind, items + i * ib) || owner[i] < 0 || owner[i] >= n_ranks)
            s = st_error_set(err, ST_ERR_INTERNAL, "task %d: item %zu of its plan is malformed", (int)kind, i);
    if (s == ST_OK) {
        pd_pool pool = {.kind = kind, .items = items, .owner = owner, .n = n, .results = mine};
        s = sink ? sink->local(sink->arg, err) : run_owned(&pool, h.threads, err);
    }
    if (s == ST_OK && n_ranks > 1) s = injected(kind, me, err);
    st_dist_allgather(mine, n * rb, all); /* every rank comes here, failed or not */
    if (sink)
        for (size_t i = 0; i < n; i++)
            if (owner[i] != 0) memcpy((char *)sink->results + i * rb, all + ((size_t)owner[i] * n + i) * rb, rb);
    free(mine);
    free(all);
    return s;
}

static st_status task_fn(int32_t kind, const void *plan, size_t len, void *arg, st_error *err)
{
    return parts_task(kind, plan, len, arg, err);
}

st_status st_parts_dist_run(int32_t kind, const void *items, const int32_t *owner, size_t n, int threads,
                            void *results, st_status (*local)(void *arg, st_error *err), void *arg, st_error *err)
{
    size_t ib = item_bytes(kind), len = sizeof(pd_header) + n * (sizeof(int32_t) + ib);
    char *plan = malloc(len);
    if (!plan) return st_error_set(err, ST_ERR_NOMEM, "out of memory for the plan of %zu parts", n);
    pd_header h = {PLAN_MAGIC, kind, threads, (uint32_t)n};
    memcpy(plan, &h, sizeof h);
    memcpy(plan + sizeof h, owner, n * sizeof *owner);
    memcpy(plan + sizeof h + n * sizeof *owner, items, n * ib);
    pd_sink sink = {results, local, arg};
    st_status s = st_kmeans_task(kind, plan, len, task_fn, &sink, err);
    free(plan);
    return s;
}

st_status st_pipeline_task(int32_t kind, const void *plan, size_t len, void *arg, st_error *err)
{
    if (kind == ST_TASK_INGEST || kind == ST_TASK_STAGE) return parts_task(kind, plan, len, arg, err);
    return st_gold_dist_task(kind, plan, len, arg, err);
}
