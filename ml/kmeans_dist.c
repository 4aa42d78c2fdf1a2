/*
 * kmeans_dist.c: k-means across the ranks of an MPI world, with the
 * result of one process to the bit.
 *
 * What is split: the n_init restarts. Restart r (its own k-means++ seed,
 * then Lloyd to convergence) runs on rank r % size; within a rank it runs
 * exactly as in one process (fixed blocks, partials reduced in block
 * order: kmeans.c), so its inertia, centroids and labels are the same bits
 * wherever it runs. The ranks then gather every restart's record, keep the
 * lowest inertia (ties: the earliest restart, the rule of one process),
 * and the owner of that restart broadcasts its labels. Nothing is summed
 * across ranks in floating point, so no order of additions can differ.
 *
 * How the ranks meet: in `strata-mpi run` rank 0 runs the pipeline and the
 * other ranks wait in st_kmeans_follow(). Each st_kmeans_fit() on rank 0
 * (st_kselect's per-k fits and the final fit) broadcasts a FIT command,
 * the options and the points; every rank then runs st_km_fit_world() and
 * meets the others in its collectives. st_kmeans_serve_end() broadcasts
 * STOP with the run's final status and message, which every follower
 * returns, so all ranks exit with the same code and words. Outside a
 * served run (another command, or the plain binary) a fit is local.
 *
 * Other work of the pipeline joins the same loop as a TASK command: a
 * kind and a plan (bytes the followers need, since they have no run
 * context), run by the handler the pipeline registered with
 * st_kmeans_on_task() (ml/ knows nothing of what the task is), and ended
 * by st_dist_agree() on every rank, so one rank failing fails the task on
 * all with its message.
 *
 * Test hooks (the MPI tests' "a rank fails / dies mid-run"):
 * STRATA_TEST_FAIL_RANK=R makes rank R report a failure when its
 * restarts are done; STRATA_TEST_KILL_RANK=R makes it die (SIGKILL) there.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "kmeans_internal.h"
#include "strata/column.h"

enum { CMD_FIT = 1, CMD_STOP = 2, CMD_TASK = 3 };

typedef struct command {
    int32_t cmd, k, n_init, max_iter, threads, code;
    uint64_t n, d, seed; /* CMD_TASK: k = the task's kind, n = its plan's bytes */
    double tol;
    char msg[ST_ERROR_MSG_MAX];
} command;

static bool g_serving; /* rank 0 of a world > 1, between serve_begin and serve_end */
static st_task_fn g_task; /* the followers' handler of CMD_TASK (st_kmeans_on_task) */

/* Rank `who` as named by an environment variable, -1 when unset. */
static int env_rank(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : -1;
}

st_status st_km_agree(bool ok, const char *stage, size_t n, size_t d, st_error *err)
{
    st_status s = ST_OK;
    int me = st_dist_rank();
    if (!ok) {
        s = st_error_set(err, ST_ERR_NOMEM, "k-means: out of memory %s %zu points x %zu features", stage, n, d);
    } else if (!strcmp(stage, "fitting") && st_dist_size() > 1) {
        if (env_rank("STRATA_TEST_KILL_RANK") == me) raise(SIGKILL);
        if (env_rank("STRATA_TEST_FAIL_RANK") == me)
            s = st_error_set(err, ST_ERR_INTERNAL, "k-means: failure injected by STRATA_TEST_FAIL_RANK while %s",
                             stage);
    }
    return st_dist_agree(s, err);
}

st_status st_km_merge_runs(int n_init, size_t kd, int size, const st_km_run *rec, const double *rec_c,
                           int32_t *best_label, st_kmeans_result *r, st_error *err)
{
    size_t one = (size_t)n_init * (sizeof *rec + kd * sizeof *rec_c);
    char *mine = malloc(one), *all = malloc(one * (size_t)size);
    double *best_c = malloc(kd * sizeof *best_c);
    bool ok = mine && all && best_c;
    st_status s = st_km_agree(ok, "merging restarts of", r->n, r->d, err);
    if (s != ST_OK) goto done;
    memcpy(mine, rec, (size_t)n_init * sizeof *rec);
    memcpy(mine + (size_t)n_init * sizeof *rec, rec_c, (size_t)n_init * kd * sizeof *rec_c);
    st_dist_allgather(mine, one, all);
    int best = -1;
    st_km_run b = {0};
    long total = 0;
    for (int run = 0; run < n_init; run++) {
        const char *slot = all + (size_t)(run % size) * one;
        st_km_run x;
        memcpy(&x, slot + (size_t)run * sizeof x, sizeof x);
        total += (long)x.total_iter;
        if (best < 0 || x.inertia < b.inertia) {
            best = run;
            b = x;
            memcpy(best_c, slot + (size_t)n_init * sizeof *rec + (size_t)run * kd * sizeof *best_c,
                   kd * sizeof *best_c);
        }
    }
    st_dist_bcast(best_label, r->n * sizeof *best_label, best % size);
    r->inertia = b.inertia;
    r->n_iter = (int)b.n_iter;
    r->total_iter = total;
    r->centroids = best_c;
    best_c = NULL;
done:
    free(mine);
    free(all);
    free(best_c);
    return s;
}

/* Sends n x d points from rank 0 in messages of at most 1 GiB. */
static void bcast_points(float *x, size_t n, size_t d)
{
    size_t bytes = n * d * sizeof *x, step = (size_t)1 << 30;
    for (size_t at = 0; at < bytes; at += step)
        st_dist_bcast((char *)x + at, bytes - at < step ? bytes - at : step, 0);
}

st_status st_kmeans_fit(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_kmeans_result **out,
                        st_error *err)
{
    if (!g_serving) return st_km_fit_world(x, n, d, o, 0, 1, out, err);
    command c = {.cmd = CMD_FIT, .k = o->k, .n_init = o->n_init, .max_iter = o->max_iter, .threads = o->threads,
                 .n = n, .d = d, .seed = o->seed, .tol = o->tol};
    st_dist_bcast(&c, sizeof c, 0);
    bcast_points((float *)x, n, d);
    return st_km_fit_world(x, n, d, o, 0, st_dist_size(), out, err);
}

void st_kmeans_serve_begin(void) { g_serving = st_dist_rank() == 0 && st_dist_size() > 1; }

void st_kmeans_serve_end(st_status s, const st_error *err)
{
    if (!g_serving) return;
    g_serving = false;
    command c = {.cmd = CMD_STOP, .code = (int32_t)s};
    if (s != ST_OK && err) snprintf(c.msg, sizeof c.msg, "%s", err->msg);
    st_dist_bcast(&c, sizeof c, 0);
}

void st_kmeans_on_task(st_task_fn fn) { g_task = fn; }

bool st_kmeans_serving(void) { return g_serving; }

st_status st_kmeans_task(int32_t kind, const void *plan, size_t len, st_task_fn fn, void *arg, st_error *err)
{
    if (g_serving) {
        command c = {.cmd = CMD_TASK, .k = kind, .n = len};
        st_dist_bcast(&c, sizeof c, 0);
        st_dist_bcast((void *)plan, len, 0);
    }
    st_status s = fn(kind, plan, len, arg, err);
    return g_serving ? st_dist_agree(s, err) : s;
}

/* One TASK command on a follower: receive the plan, run the handler with
 * no context (arg NULL), agree. */
static void follow_task(const command *c)
{
    char *plan = c->n <= SIZE_MAX - 1 ? malloc((size_t)c->n + 1) : NULL;
    if (!plan) st_dist_abort(8, "out of memory for a task's plan sent to this rank");
    st_dist_bcast(plan, (size_t)c->n, 0);
    st_error err = {0};
    st_status s = g_task ? g_task(c->k, plan, (size_t)c->n, NULL, &err)
                         : st_error_set(&err, ST_ERR_INTERNAL, "task %d: this rank has no task handler", (int)c->k);
    (void)st_dist_agree(s, &err); /* rank 0 fails the run; its STOP brings the message back */
    free(plan);
}

/* One FIT command on a follower: receive the points, fit with the world. */
static st_status follow_fit(const command *c, st_error *err)
{
    size_t nd;
    if (!st_size_mul((size_t)c->n, (size_t)c->d, &nd) || nd > SIZE_MAX / sizeof(float))
        st_dist_abort(8, "k-means: the points sent to this rank overflow its memory");
    float *x = malloc(nd ? nd * sizeof *x : 1);
    if (!x) st_dist_abort(8, "k-means: out of memory for the points sent to this rank");
    bcast_points(x, (size_t)c->n, (size_t)c->d);
    st_kmeans_opts o = {.k = c->k, .n_init = c->n_init, .max_iter = c->max_iter, .tol = c->tol, .seed = c->seed,
                        .threads = c->threads};
    st_kmeans_result *r = NULL;
    st_status s = st_km_fit_world(x, (size_t)c->n, (size_t)c->d, &o, st_dist_rank(), st_dist_size(), &r, err);
    st_kmeans_result_free(r);
    free(x);
    return s;
}

st_status st_kmeans_follow(st_error *err)
{
    for (;;) {
        command c;
        st_dist_bcast(&c, sizeof c, 0);
        if (c.cmd == CMD_STOP) {
            if (c.code == ST_OK) return ST_OK;
            c.msg[sizeof c.msg - 1] = 0;
            return st_error_set(err, (st_status)c.code, "%s", c.msg);
        }
        if (c.cmd == CMD_TASK) {
            follow_task(&c);
            continue;
        }
        st_error ferr;
        /* a fit failure is agreed inside the fit; rank 0 fails the run
         * and its STOP brings the message back here */
        (void)follow_fit(&c, &ferr);
    }
}
