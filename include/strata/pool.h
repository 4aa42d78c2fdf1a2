/*
 * pool.h: the persistent worker pool the run's parallel phases share.
 *
 * A pool runs one "job" at a time: n_tasks independent tasks numbered
 * 0..n_tasks-1, claimed by the workers (and the calling thread) through an
 * atomic counter. Which thread runs which task is not deterministic, so a
 * task must write only to its own slot of the output (per-block partials,
 * a job of its own); the caller reduces the slots in task order afterwards,
 * which makes the result independent of the number of threads.
 *
 * Why a pool and not threads per phase: on the 2-vCPU machines strata is
 * measured on, a thread created while its creator is busy was queued
 * behind it and started about 2.8 ms late, and one woken from sleep was
 * often late too: a tenth of a 500K-line gold step (bench/README,
 * "Threads that start late"). So the workers are made once per run, each
 * first placed on a CPU other than its creator's (0.15 ms to start; then
 * free to move; placed so, a sleeping worker's next job started on time
 * in 15 of 16 traced runs), and a worker that finishes a job keeps
 * polling for the next one for ST_POOL_HOT_US before it sleeps on a
 * condition variable; the caller waits for the job's end the same way,
 * so back-to-back jobs cost no wake-up. A pool with more threads than
 * the CPUs the process may use does not poll: its threads sleep at once.
 *
 * A pool whose threads fit those CPUs is bound: each worker stays on the
 * CPU it started on, and the caller, from its first job until it frees
 * the pool, on the one it ran on when it made the pool (no worker's),
 * then gets its CPUs back. Free to move, the two threads of a 500K gold step's pass often
 * ended on one vCPU (the guest kernel packs short-lived threads onto few
 * vCPUs) and waited there for each other: up to 16 ms runnable and not
 * running in a ~10 ms job. STRATA_THREAD_BIND=0 in the environment turns
 * binding off. A pool made on a bound thread (inside a task) is placed
 * among the process's CPUs, not the thread's one.
 *
 * Ownership: st_pool_new returns a pool the caller frees with
 * st_pool_free, on the thread that runs its jobs (a bound caller gets its
 * CPUs back there); a pool is driven by one thread at a time (the one calling
 * st_pool_run), and a task must not run a job on the pool it runs on (it
 * would wait for itself; another pool is fine). A job's context may live
 * on the caller's stack: the call returns only after every worker has
 * left the job.
 */
#ifndef STRATA_POOL_H
#define STRATA_POOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_pool st_pool;

/* How long an idle worker (and a caller waiting for a job's end) polls
 * before sleeping. 500K gold step, 2 threads, 31 interleaved runs: no
 * polling 30.8 ms, 200 us 29.2 ms, 5 ms 29.4 ms; a longer window only
 * holds a CPU other processes may want. */
#define ST_POOL_HOT_US 200

/* fn(ctx, task, worker): worker is in 0..threads-1 (0 = the caller), for
 * per-thread scratch. */
typedef void (*st_pool_fn)(void *ctx, size_t task, int worker);

/* Starts threads-1 workers (threads <= 1: none; the caller does all the
 * work). Returns NULL when out of memory; a thread that fails to start is
 * simply not used, so st_pool_threads() may be lower than asked. */
st_pool *st_pool_new(int threads);
/* Threads that take part in a job, caller included (>= 1; 1 for NULL). */
int st_pool_threads(const st_pool *p);
/* Runs tasks 0..n_tasks-1 and returns when all are done. NULL p: the
 * caller runs them in order. */
void st_pool_run(st_pool *p, size_t n_tasks, st_pool_fn fn, void *ctx);
/* Stops and joins the workers. NULL does nothing. */
void st_pool_free(st_pool *p);

#ifdef __cplusplus
}
#endif

#endif
