/*
 * test_pool.c: the run's worker pool (strata/pool.h) runs every task of a
 * job exactly once, returns only when the job is done, and keeps doing so
 * job after job: back to back (workers polling), after the workers have
 * gone to sleep, and with a NULL pool (the caller alone, in order).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata/pool.h"

TestSuite(pool);

typedef struct counts {
    atomic_int hits[256];
    atomic_int running; /* tasks inside fn now */
    int workers;        /* threads of the pool: worker ids must stay below */
    atomic_int bad_worker;
    long spin;          /* iterations of busy work per task */
} counts;

static void count_task(void *arg, size_t task, int worker)
{
    counts *c = arg;
    atomic_fetch_add(&c->running, 1);
    if (worker < 0 || worker >= c->workers) atomic_store(&c->bad_worker, 1);
    volatile long x = 0;
    for (long i = 0; i < c->spin; i++) x += i;
    atomic_fetch_add(&c->hits[task], 1);
    atomic_fetch_sub(&c->running, 1);
}

/* Runs a job of n tasks and checks each ran once and none is still
 * running when st_pool_run returns. */
static void run_and_check(st_pool *p, counts *c, size_t n)
{
    for (size_t t = 0; t < 256; t++) atomic_store(&c->hits[t], 0);
    st_pool_run(p, n, count_task, c);
    cr_assert_eq(atomic_load(&c->running), 0, "a task still running after st_pool_run returned");
    for (size_t t = 0; t < 256; t++)
        cr_assert_eq(atomic_load(&c->hits[t]), t < n ? 1 : 0, "task %zu of %zu ran %d times", t, n,
                     atomic_load(&c->hits[t]));
    cr_assert_eq(atomic_load(&c->bad_worker), 0, "a worker id outside 0..threads-1");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(pool, every_task_runs_once_job_after_job_at_any_thread_count)
{
    for (int threads = 1; threads <= 4; threads++) {
        st_pool *p = st_pool_new(threads);
        cr_assert_not_null(p);
        cr_assert(st_pool_threads(p) >= 1 && st_pool_threads(p) <= threads);
        counts *c = calloc(1, sizeof *c);
        cr_assert_not_null(c);
        c->workers = st_pool_threads(p);
        /* back to back: the workers are still polling for the next job */
        for (size_t job = 0; job < 300; job++) {
            c->spin = (long)(job % 7) * 200;
            run_and_check(p, c, job % 256);
        }
        /* after ST_POOL_HOT_US the workers sleep: a job must still wake them */
        for (int job = 0; job < 3; job++) {
            sleep_ms(ST_POOL_HOT_US / 1000 * 3 + 2);
            c->spin = 20000;
            run_and_check(p, c, 64);
        }
        st_pool_free(p);
        free(c);
    }
}

typedef struct order {
    size_t seen[16];
    size_t n;
} order;

static void record_task(void *arg, size_t task, int worker)
{
    order *o = arg;
    cr_assert_eq(worker, 0);
    o->seen[o->n++] = task;
}

Test(pool, a_null_pool_runs_the_tasks_on_the_caller_in_order)
{
    order o;
    memset(&o, 0, sizeof o);
    cr_assert_eq(st_pool_threads(NULL), 1);
    st_pool_run(NULL, 16, record_task, &o);
    cr_assert_eq(o.n, 16);
    for (size_t t = 0; t < 16; t++) cr_assert_eq(o.seen[t], t);
    st_pool_free(NULL);
}

/* A task that runs a job of its own on a second pool: the workers of
 * both pools are separate, so it completes. */
typedef struct nested {
    st_pool *inner;
    counts *c;
} nested;

static void nested_task(void *arg, size_t task, int worker)
{
    (void)task;
    (void)worker;
    nested *n = arg;
    if (task == 0) st_pool_run(n->inner, 32, count_task, n->c);
}

Test(pool, a_task_may_drive_another_pool)
{
    st_pool *outer = st_pool_new(2), *inner = st_pool_new(2);
    cr_assert_not_null(outer);
    cr_assert_not_null(inner);
    counts *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->workers = st_pool_threads(inner);
    c->spin = 1000;
    nested n = {inner, c};
    for (int job = 0; job < 20; job++) {
        for (size_t t = 0; t < 256; t++) atomic_store(&c->hits[t], 0);
        st_pool_run(outer, 2, nested_task, &n);
        for (size_t t = 0; t < 256; t++) cr_assert_eq(atomic_load(&c->hits[t]), t < 32 ? 1 : 0);
        cr_assert_eq(atomic_load(&c->bad_worker), 0);
    }
    st_pool_free(outer);
    st_pool_free(inner);
    free(c);
}

#ifdef __linux__
#include <sched.h>

/* What the tasks of a job saw of their threads. */
typedef struct binding {
    atomic_int cpus[2]; /* CPUs the thread may use: [0] the caller, [1] a worker */
    atomic_int worker_cpu;
    atomic_int caller_cpu;
} binding;

static int thread_cpus(void)
{
    cpu_set_t s;
    return sched_getaffinity(0, sizeof s, &s) == 0 ? CPU_COUNT(&s) : -1;
}

static void binding_task(void *arg, size_t task, int worker)
{
    (void)task;
    binding *b = arg;
    atomic_store(&b->cpus[worker != 0], thread_cpus());
    atomic_store(worker ? &b->worker_cpu : &b->caller_cpu, sched_getcpu());
    volatile long x = 0;
    for (long i = 0; i < 2000000; i++) x += i;
}

/* Task t drives a pool of its own from its (bound) thread into b[t]. */
static void own_pool_task(void *arg, size_t task, int worker)
{
    (void)worker;
    binding *b = (binding *)arg + task;
    st_pool *q = st_pool_new(2);
    if (!q) return;
    st_pool_run(q, 64, binding_task, b);
    st_pool_free(q);
}

/* A pool whose threads fit the CPUs binds each worker to a CPU of its own
 * and the caller to another from its first job until the pool is freed,
 * then gives the caller its CPUs back; a pool made on a bound thread
 * still places its worker elsewhere and leaves the binding alone;
 * STRATA_THREAD_BIND=0 binds nothing. */
Test(pool, threads_that_fit_are_bound_to_cpus_of_their_own_during_a_job)
{
    int all = thread_cpus();
    if (all < 2) cr_skip_test("one CPU: nothing to bind");
    binding b;
    memset(&b, 0, sizeof b);
    st_pool *p = st_pool_new(2);
    cr_assert_not_null(p);
    cr_assert_eq(thread_cpus(), all, "bound before its first job");
    st_pool_run(p, 64, binding_task, &b);
    cr_assert_eq(atomic_load(&b.cpus[0]), 1, "the caller may use %d CPUs inside a job", atomic_load(&b.cpus[0]));
    cr_assert_eq(thread_cpus(), 1, "the caller is unbound between jobs");
    if (atomic_load(&b.cpus[1])) { /* a worker took a task */
        cr_assert_eq(atomic_load(&b.cpus[1]), 1, "a worker may use %d CPUs", atomic_load(&b.cpus[1]));
        cr_assert_neq(atomic_load(&b.worker_cpu), atomic_load(&b.caller_cpu), "worker and caller on one CPU");
    }
    binding nb[2];
    memset(nb, 0, sizeof nb);
    st_pool_run(p, 2, own_pool_task, nb);
    cr_assert_eq(thread_cpus(), 1, "a pool made inside a task unbound the caller");
    for (int t = 0; t < 2; t++)
        if (atomic_load(&nb[t].cpus[1]))
            cr_assert_neq(atomic_load(&nb[t].worker_cpu), atomic_load(&nb[t].caller_cpu),
                          "a pool made on a bound thread put its worker on that thread's CPU");
    st_pool_free(p);
    cr_assert_eq(thread_cpus(), all, "the caller did not get its CPUs back when the pool was freed");

    setenv("STRATA_THREAD_BIND", "0", 1);
    memset(&b, 0, sizeof b);
    p = st_pool_new(2);
    cr_assert_not_null(p);
    st_pool_run(p, 64, binding_task, &b);
    st_pool_free(p);
    unsetenv("STRATA_THREAD_BIND");
    cr_assert_eq(atomic_load(&b.cpus[0]), all, "STRATA_THREAD_BIND=0: the caller was bound");
    if (atomic_load(&b.cpus[1])) cr_assert_eq(atomic_load(&b.cpus[1]), all, "STRATA_THREAD_BIND=0: a worker was bound");
}
#endif
