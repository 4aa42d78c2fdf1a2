/*
 * kmeans_dist.c: k-means across the ranks of an MPI world, with the
 * result of one process to the bit.
 *
 * What is split: the points. A fit's points are cut into the blocks of
 * kmeans.c (ST_KM_BLOCK points each, whatever the ranks), rank r holding a
 * run of whole blocks (st_km_share); every restart runs on all ranks at
 * once, each labelling and summing its own blocks, and every quantity of
 * all points is folded along the ranks in block order (kmeans.c), so the
 * centroids, labels and inertia are the bits of one process for any
 * number of ranks and threads.
 *
 * How the ranks meet: in `strata-mpi run` rank 0 runs the pipeline and the
 * other ranks wait in st_kmeans_follow(). Each st_kmeans_fit() on rank 0
 * (st_kselect's per-k fits and the final fit) checks its arguments over
 * all points, broadcasts a FIT command with the options and scatters the
 * point blocks (each rank receives only its share); every rank then runs
 * st_km_fit_world() and meets the others in its collectives, and the kept
 * restart's labels are gathered on rank 0. The k selection's silhouette
 * (kselect.c) is a SCORE command: rank 0 broadcasts the sample (at most
 * 20,000 points), each rank computes the values of a share of its
 * positions, and rank 0 gathers them and adds them in position order.
 * st_kmeans_serve_end()
 * broadcasts STOP with the run's final status and message, which every
 * follower returns, so all ranks exit with the same code and words.
 * Outside a served run (another command, or the plain binary) a fit is
 * local.
 *
 * Other work of the pipeline joins the same loop as a TASK command: a
 * kind and a plan (bytes the followers need, since they have no run
 * context), run by the handler the pipeline registered with
 * st_kmeans_on_task() (ml/ knows nothing of what the task is), and ended
 * by st_dist_agree() on every rank, so one rank failing fails the task on
 * all with its message.
 *
 * Test hooks (the MPI tests' "a rank fails / dies mid-run"):
 * STRATA_TEST_FAIL_RANK=R makes rank R report a failure when a fit's
 * restarts are done; STRATA_TEST_KILL_RANK=R makes it die (SIGKILL) there.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "kmeans_internal.h"
#include "silhouette_internal.h"
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

/* The k selection's silhouette across ranks (the end of this file): a
 * SCORE command carries the sample's points (n), d, k and threads. */
enum { CMD_SCORE = 4 };
static void score_share(const command *c, const st_sil_sample *S, double *s);

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

/* Every rank of a served fit: its share of the points from rank 0 (x:
 * all c->n points on rank 0, NULL on the others), then the fit with the
 * world. A rank that cannot hold its share fails the fit on all. */
static st_status fit_share(const command *c, const float *x, st_kmeans_result **out, st_error *err)
{
    int rank = st_dist_rank(), size = st_dist_size();
    size_t n = (size_t)c->n, d = (size_t)c->d, p0, p1;
    st_km_share(n, rank, size, &p0, &p1);
    size_t *share = malloc(2 * (size_t)size * sizeof *share);
    float *buf = rank == 0 ? NULL : malloc((p1 > p0 ? p1 - p0 : 1) * d * sizeof *buf);
    const float *mine = rank == 0 ? x : buf;
    st_status s = st_km_agree(share && mine, "receiving", n, d, err);
    if (s == ST_OK) {
        st_km_shares(n, size, share, share + size);
        /* rank 0's share is the first rows of x: it stays in place */
        st_dist_scatterv(x, d * sizeof *x, share, share + size, rank == 0 ? (void *)x : buf, 0);
        st_kmeans_opts o = {.k = c->k, .n_init = c->n_init, .max_iter = c->max_iter, .tol = c->tol,
                            .seed = c->seed, .threads = c->threads};
        s = st_km_fit_world(mine, n, d, &o, rank, size, out, err);
    }
    free(buf);
    free(share);
    return s;
}

st_status st_kmeans_fit(const float *x, size_t n, size_t d, const st_kmeans_opts *o, st_kmeans_result **out,
                        st_error *err)
{
    *out = NULL;
    ST_TRY(st_km_check_args(x, n, d, o, err));
    if (!g_serving) return st_km_fit_world(x, n, d, o, 0, 1, out, err);
    command c = {.cmd = CMD_FIT, .k = o->k, .n_init = o->n_init, .max_iter = o->max_iter, .threads = o->threads,
                 .n = n, .d = d, .seed = o->seed, .tol = o->tol};
    st_dist_bcast(&c, sizeof c, 0);
    return fit_share(&c, x, out, err);
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
    /* a SCORE command: this rank's share of a silhouette's values */
    if (c->cmd == CMD_SCORE) {
        score_share(c, NULL, NULL);
        return ST_OK;
    }
    st_kmeans_result *r = NULL;
    st_status s = fit_share(c, NULL, &r, err);
    st_kmeans_result_free(r);
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

/* ---- the k selection's silhouette values (kselect.c) across ranks ---- */

/* Positions [*a0, *a1) of a sample of m that rank r of size computes. */
static void score_range(size_t m, int r, int size, size_t *a0, size_t *a1)
{
    *a0 = m * (size_t)r / (size_t)size;
    *a1 = m * (size_t)(r + 1) / (size_t)size;
}

/* Every rank of a served scoring: the sample from rank 0 (S there, NULL
 * on the others), this rank's positions, their values gathered into s on
 * rank 0. When a rank cannot hold the sample, rank 0 computes every
 * value itself (the same values) and the others skip. */
static void score_share(const command *c, const st_sil_sample *S, double *s)
{
    int rank = st_dist_rank(), size = st_dist_size();
    size_t m = (size_t)c->n, d = (size_t)c->d, k = (size_t)c->k, a0, a1;
    score_range(m, rank, size, &a0, &a1);
    bool root = rank == 0;
    float *xt = root ? (float *)S->xt : malloc(m * d * sizeof *xt);
    size_t *off = root ? (size_t *)S->off : malloc((k + 1) * sizeof *off);
    int32_t *lab = root ? (int32_t *)S->lab : malloc(m * sizeof *lab);
    double *mine = root ? s + a0 : malloc((a1 > a0 ? a1 - a0 : 1) * sizeof *mine);
    size_t *share = malloc(2 * (size_t)size * sizeof *share);
    st_error err;
    if (st_km_agree(xt && off && lab && mine && share, "scoring", m, d, &err) != ST_OK) {
        if (root) st_sil_values(S, 0, m, c->threads, s);
        goto done;
    }
    st_dist_bcast(xt, m * d * sizeof *xt, 0);
    st_dist_bcast(off, (k + 1) * sizeof *off, 0);
    st_dist_bcast(lab, m * sizeof *lab, 0);
    st_sil_sample mine_s = {xt, m, d, off, lab, (int)k};
    st_sil_values(&mine_s, a0, a1, c->threads, mine);
    for (int r = 0; r < size; r++) {
        size_t b0, b1;
        score_range(m, r, size, &b0, &b1);
        share[r] = b1 - b0;
        share[size + r] = b0;
    }
    st_dist_gatherv(mine, sizeof *mine, share, share + size, s, 0);
done:
    if (!root) {
        free(xt);
        free(off);
        free(lab);
        free(mine);
    }
    free(share);
}

void st_sil_values_world(const st_sil_sample *S, int threads, double *s)
{
    if (!g_serving) {
        st_sil_values(S, 0, S->m, threads, s);
        return;
    }
    command c = {.cmd = CMD_SCORE, .k = S->k, .threads = threads, .n = S->m, .d = S->d};
    st_dist_bcast(&c, sizeof c, 0);
    score_share(&c, S, s);
}
