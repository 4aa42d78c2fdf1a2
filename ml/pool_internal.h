/*
 * pool_internal.h: a small persistent pthread pool for the ml kernels.
 *
 * A pool runs one "job" at a time: n_tasks independent tasks numbered
 * 0..n_tasks-1, claimed by the workers (and the calling thread) through an
 * atomic counter. Which thread runs which task is not deterministic, so a
 * task must write only to its own slot of the output (per-block partials);
 * the caller reduces the slots in task order afterwards, which makes the
 * result independent of the number of threads.
 *
 * Workers sleep on a condition variable between jobs, so a Lloyd
 * iteration costs one wake-up, not a thread creation.
 */
#ifndef STRATA_ML_POOL_INTERNAL_H
#define STRATA_ML_POOL_INTERNAL_H

#include <stddef.h>

typedef struct st_pool st_pool;

/* fn(ctx, task, worker): worker is in 0..threads-1 (0 = the caller), for
 * per-thread scratch. */
typedef void (*st_pool_fn)(void *ctx, size_t task, int worker);

/* Starts threads-1 workers (threads <= 1: none; the caller does all the
 * work). Returns NULL when out of memory; a thread that fails to start is
 * simply not used, so st_pool_threads() may be lower than asked. */
st_pool *st_pool_new(int threads);
/* Threads that take part in a job, caller included (>= 1). */
int st_pool_threads(const st_pool *p);
/* Runs tasks 0..n_tasks-1 and returns when all are done. */
void st_pool_run(st_pool *p, size_t n_tasks, st_pool_fn fn, void *ctx);
/* Stops and joins the workers. NULL does nothing. */
void st_pool_free(st_pool *p);

#endif
