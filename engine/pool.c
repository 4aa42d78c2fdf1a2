/*
 * pool.c: the persistent worker pool of strata/pool.h.
 *
 * A new job is published by storing its description, then bumping the
 * generation counter (release) under the mutex and broadcasting. A worker
 * that is hot sees the new generation by polling it (acquire); a cold one
 * sleeps on `wake` and checks the generation under the mutex, so no
 * broadcast is lost. Tasks are claimed with an atomic fetch-add. Every
 * worker leaves every generation exactly once (`active` counts them down),
 * and the caller returns only when `active` is 0: nothing of the job is
 * touched after st_pool_run returns.
 */
#include "strata/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 64

struct st_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* workers: a new generation or stop */
    pthread_cond_t idle;     /* caller: active dropped to 0 */
    pthread_t th[POOL_MAX];
    int n_workers;           /* started threads, caller excluded */
    atomic_ulong gen;        /* job generation */
    atomic_int active;       /* workers still in the current job */
    atomic_int stop;
    st_pool_fn fn;           /* the job: written before gen is bumped */
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;      /* next unclaimed task */
    bool hot;                /* poll between jobs: only when the threads fit the usable CPUs */
#ifdef __linux__
    cpu_set_t allowed;       /* the process's CPUs */
    bool placed;             /* allowed is known: workers start on a CPU other than the caller's */
    bool bound;              /* workers stay on that CPU, the caller on `home` from its first job */
    int home;                /* the caller's CPU when the pool was made: no worker's */
#endif
};

#ifdef __linux__
/* The bound pool this thread works for (its worker, or its caller from
 * its first job until the pool is freed): a pool made or driven on a
 * bound thread takes that pool's `allowed`, not the thread's one CPU, and
 * leaves the binding alone. */
static _Thread_local const st_pool *bound_by;
#endif

typedef struct worker_arg {
    st_pool *p;
    int id;
} worker_arg;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Polls until done(p, arg) or ST_POOL_HOT_US have passed; true when done.
 * It does not yield the CPU: a worker calling sched_yield() while polling
 * picked up the gold pass's job 1-4 ms late in 13 of 20 runs (the
 * scheduler moved the threads about), against 2 of 20 without. A pool
 * whose threads outnumber the CPUs the process may use tests done() once
 * and does not poll: a polling thread that shares a CPU holds it for its
 * time slice, and with --threads above the cores (or a process bound to
 * fewer CPUs, as mpirun binds ranks) every job took a time slice. */
static bool poll_hot(st_pool *p, bool (*done)(st_pool *, unsigned long), unsigned long arg)
{
    if (!p->hot) return done(p, arg);
    uint64_t t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (done(p, arg)) return true;
        cpu_relax();
        if (i % 64 == 0 && now_ns() - t0 > (uint64_t)ST_POOL_HOT_US * 1000u) return false;
    }
}

static bool new_generation(st_pool *p, unsigned long seen)
{
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->stop, memory_order_acquire);
}

static bool all_left(st_pool *p, unsigned long unused)
{
    (void)unused;
    return atomic_load_explicit(&p->active, memory_order_acquire) == 0;
}

static void drain(st_pool *p, int id)
{
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, id);
    }
}

/* Waits for a generation after `seen` (hot, then asleep); false on stop. */
static bool next_job(st_pool *p, unsigned long *seen)
{
    if (!poll_hot(p, new_generation, *seen)) {
        pthread_mutex_lock(&p->mu);
        while (!atomic_load(&p->stop) && atomic_load(&p->gen) == *seen) pthread_cond_wait(&p->wake, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(&p->stop)) return false;
    *seen = atomic_load_explicit(&p->gen, memory_order_acquire);
    return true;
}

static void *worker_main(void *arg)
{
    st_pool *p = ((worker_arg *)arg)->p;
    int id = ((worker_arg *)arg)->id;
    free(arg);
#ifdef __linux__
    if (p->bound) bound_by = p;
    else if (p->placed) (void)pthread_setaffinity_np(pthread_self(), sizeof p->allowed, &p->allowed);
#endif
    unsigned long seen = 0;
    while (next_job(p, &seen)) {
        drain(p, id);
        if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->idle);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Thread attributes that start worker t on a CPU other than the caller's
 * (when the process may use more than one): a new thread queued behind
 * its busy creator waits for the load balancer, often milliseconds. With
 * no such CPU, the process's CPUs (a thread would inherit a bound
 * caller's one CPU). Workers 1..n-1 of a pool that fits get n-1
 * different CPUs. */
static void place_worker(st_pool *p, pthread_attr_t *at, int t)
{
#ifdef __linux__
    if (!p->placed) return;
    int here = sched_getcpu(), n = CPU_COUNT(&p->allowed), pick = -1, seen = 0;
    for (int c = 0; c < CPU_SETSIZE && pick < 0 && here >= 0 && n >= 2; c++)
        if (CPU_ISSET(c, &p->allowed) && c != here && seen++ == (t - 1) % (n - 1)) pick = c;
    cpu_set_t one;
    CPU_ZERO(&one);
    if (pick >= 0) CPU_SET(pick, &one);
    (void)pthread_attr_setaffinity_np(at, sizeof one, pick >= 0 ? &one : &p->allowed);
#else
    (void)p;
    (void)at;
    (void)t;
#endif
}

#ifdef __linux__
/* STRATA_THREAD_BIND=0 leaves every thread free to move. */
static bool binding_wanted(void)
{
    const char *e = getenv("STRATA_THREAD_BIND");
    return !e || strcmp(e, "0") != 0;
}

/* Makes the pool bound: its workers stay on the CPUs they start on, and
 * the caller keeps the one it runs on now for its jobs. */
static void bind_pool(st_pool *p)
{
    int here = sched_getcpu();
    if (!p->placed || here < 0 || !CPU_ISSET(here, &p->allowed) || CPU_COUNT(&p->allowed) < 2) return;
    p->bound = true;
    p->home = here;
}

/* Binds the caller to the pool's home CPU at its first job (unless a
 * pool has bound it already), until st_pool_free: once, not per job (a
 * k-means fit runs thousands of short jobs, and two affinity calls each
 * cost its fits 15 ms in a 10M run). */
static void bind_caller(const st_pool *p)
{
    if (!p->bound || bound_by) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(p->home, &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0) bound_by = p;
}
#endif

/* Starts worker t (1-based); false when it did not start. */
static bool start_worker(st_pool *p, int t)
{
    worker_arg *a = malloc(sizeof *a);
    if (!a) return false;
    a->p = p;
    a->id = t;
    pthread_attr_t at;
    bool ok = pthread_attr_init(&at) == 0;
    if (ok) {
        place_worker(p, &at, t);
        ok = pthread_create(&p->th[p->n_workers], &at, worker_main, a) == 0;
        pthread_attr_destroy(&at);
    }
    if (!ok) free(a);
    return ok;
}

st_pool *st_pool_new(int threads)
{
    st_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->next, 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __linux__
    if (bound_by) p->allowed = bound_by->allowed;
    p->placed = bound_by || sched_getaffinity(0, sizeof p->allowed, &p->allowed) == 0;
    if (p->placed) cpus = CPU_COUNT(&p->allowed);
#endif
    if (threads > POOL_MAX) threads = POOL_MAX;
    p->hot = threads <= cpus; /* before any worker reads it */
#ifdef __linux__
    if (threads > 1 && p->hot && binding_wanted()) bind_pool(p);
#endif
    for (int t = 1; t < threads && start_worker(p, t); t++) p->n_workers++;
    return p;
}

int st_pool_threads(const st_pool *p) { return p ? p->n_workers + 1 : 1; }

void st_pool_run(st_pool *p, size_t n_tasks, st_pool_fn fn, void *ctx)
{
    if (!p || p->n_workers == 0 || n_tasks <= 1) {
        for (size_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
#ifdef __linux__
    bind_caller(p);
#endif
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n_workers);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    if (!poll_hot(p, all_left, 0)) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->active) > 0) pthread_cond_wait(&p->idle, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void st_pool_free(st_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_workers; t++) pthread_join(p->th[t], NULL);
#ifdef __linux__
    if (bound_by == p) { /* the caller gets its CPUs back */
        (void)pthread_setaffinity_np(pthread_self(), sizeof p->allowed, &p->allowed);
        bound_by = NULL;
    }
#endif
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
