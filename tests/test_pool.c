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
