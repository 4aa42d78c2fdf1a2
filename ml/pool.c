/*
 * pool.c: the persistent worker pool of pool_internal.h.
 *
 * One mutex guards the job description and a generation counter; a new
 * job bumps the generation and wakes every worker. Tasks are claimed with
 * an atomic fetch-add, so the mutex is not touched per task. The caller
 * takes part, then waits until every worker has finished the generation
 * (active == 0) before returning, so the job's context may live on the
 * caller's stack.
 */
#include "pool_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define POOL_MAX 64

struct st_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* workers: a new generation or stop */
    pthread_cond_t idle;     /* caller: active dropped to 0 */
    pthread_t th[POOL_MAX];
    int n_workers;           /* started threads, caller excluded */
    unsigned long gen;       /* job generation */
    int active;              /* workers still in the current job */
    int stop;
    st_pool_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;      /* next unclaimed task */
};

typedef struct worker_arg {
    st_pool *p;
    int id;
} worker_arg;

static void drain(st_pool *p, int id)
{
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, id);
    }
}


static void *worker_main(void *arg)
{
    st_pool *p = ((worker_arg *)arg)->p;
    int id = ((worker_arg *)arg)->id;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        drain(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

st_pool *st_pool_new(int threads)
{
    st_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->next, 0);
    if (threads > POOL_MAX) threads = POOL_MAX;
    for (int t = 1; t < threads; t++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->id = p->n_workers + 1;
        if (pthread_create(&p->th[p->n_workers], NULL, worker_main, a) != 0) {
            free(a);
            break;
        }
        p->n_workers++;
    }
    return p;
}

int st_pool_threads(const st_pool *p) { return p ? p->n_workers + 1 : 1; }

void st_pool_run(st_pool *p, size_t n_tasks, st_pool_fn fn, void *ctx)
{
    if (!p || p->n_workers == 0 || n_tasks <= 1) {
        for (size_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->active = p->n_workers;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void st_pool_free(st_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_workers; t++) pthread_join(p->th[t], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
