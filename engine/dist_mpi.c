/*
 * dist_mpi.c: the rank/world layer on MPI (dist.h), linked only into
 * build/strata-mpi by `make mpi`; the plain build links dist_single.c.
 *
 * Every call is one collective on MPI_COMM_WORLD. Errors of MPI itself
 * are fatal (MPI's default handler aborts the world), which is what a
 * failed collective must do: the other ranks are blocked in it. A failure
 * of strata on one rank is agreed with st_dist_agree(): an Allreduce(MIN)
 * finds the lowest failing rank and a broadcast from it carries its code
 * and message to all, so every rank fails with the same words and exit
 * code.
 */
#include "dist.h"

#include <limits.h>
#include <stdbool.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_rank, g_size = 1;
/* Bytes this rank handed to collectives for other ranks (a broadcast's
 * root counts its buffer once per receiver): STRATA_DIST_STATS=1 prints
 * them at exit, for bench/SCALING.md. */
static uint64_t g_sent, g_calls;

static void sent(uint64_t bytes)
{
    g_sent += bytes;
    g_calls++;
}

void st_dist_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
}

void st_dist_finalize(void)
{
    const char *v = getenv("STRATA_DIST_STATS");
    if (v && *v == '1')
        fprintf(stderr, "strata rank %d/%d: %llu collectives, %llu bytes sent to other ranks\n", g_rank, g_size,
                (unsigned long long)g_calls, (unsigned long long)g_sent);
    MPI_Finalize();
}
int st_dist_rank(void) { return g_rank; }
int st_dist_size(void) { return g_size; }
const char *st_dist_kind(void) { return "mpi"; }
void st_dist_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

/* An int count for MPI, or the world ends naming what was too large. */
static int count_of(size_t n, const char *what)
{
    if (n > INT_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s of %zu elements is more than one MPI message holds", what, n);
        st_dist_abort(1, msg);
    }
    return (int)n;
}

void st_dist_sum_u64(uint64_t *v, size_t n)
{
    sent((uint64_t)n * 8 * (uint64_t)(g_size - 1));
    if (n) MPI_Allreduce(MPI_IN_PLACE, v, count_of(n, "sum"), MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
}

void st_dist_max_i64(int64_t *v, size_t n)
{
    sent((uint64_t)n * 8 * (uint64_t)(g_size - 1));
    if (n) MPI_Allreduce(MPI_IN_PLACE, v, count_of(n, "max"), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
}

void st_dist_allgather(const void *mine, size_t bytes, void *all)
{
    sent((uint64_t)bytes * (uint64_t)(g_size - 1));
    MPI_Allgather(mine, count_of(bytes, "allgather"), MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void st_dist_bcast(void *buf, size_t bytes, int root)
{
    if (g_rank == root) sent((uint64_t)bytes * (uint64_t)(g_size - 1));
    if (bytes) MPI_Bcast(buf, count_of(bytes, "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD);
}

void st_dist_alltoallv(const void *send, const size_t *send_n, const size_t *send_off, void *recv,
                       const size_t *recv_n, const size_t *recv_off)
{
    int p = g_size;
    int *c = malloc(4 * (size_t)p * sizeof *c);
    if (!c) st_dist_abort(8, "out of memory for an all-to-all exchange");
    for (int r = 0; r < p; r++) {
        if (r != g_rank) sent(send_n[r]);
        c[r] = count_of(send_n[r], "all-to-all send");
        c[p + r] = count_of(send_off[r], "all-to-all send offset");
        c[2 * p + r] = count_of(recv_n[r], "all-to-all receive");
        c[3 * p + r] = count_of(recv_off[r], "all-to-all receive offset");
    }
    MPI_Alltoallv(send, c, c + p, MPI_BYTE, recv, c + 2 * p, c + 3 * p, MPI_BYTE, MPI_COMM_WORLD);
    free(c);
}

/* A contiguous MPI type of `unit` bytes (a row), committed; free it with
 * MPI_Type_free. */
static MPI_Datatype row_type(size_t unit)
{
    MPI_Datatype t;
    MPI_Type_contiguous(count_of(unit, "row"), MPI_BYTE, &t);
    MPI_Type_commit(&t);
    return t;
}

/* Counts and offsets as ints for a v-collective on root: c[0..p) counts,
 * c[p..2p) offsets; NULL on the other ranks. Ends the world when out of
 * memory. */
static int *v_counts(const size_t *n, const size_t *off, bool root, const char *what)
{
    if (!root) return NULL;
    int p = g_size, *c = malloc(2 * (size_t)p * sizeof *c);
    if (!c) st_dist_abort(8, "out of memory for the counts of a scatter or gather");
    for (int r = 0; r < p; r++) {
        c[r] = count_of(n[r], what);
        c[p + r] = count_of(off[r], what);
    }
    return c;
}

void st_dist_scatterv(const void *send, size_t unit, const size_t *n, const size_t *off, void *recv, int root)
{
    bool me = g_rank == root;
    int *c = v_counts(n, off, me, "scatter");
    MPI_Datatype t = row_type(unit);
    if (me) {
        uint64_t out = 0;
        for (int r = 0; r < g_size; r++)
            if (r != root) out += (uint64_t)n[r] * unit;
        sent(out);
        const void *own = (const char *)send + off[root] * unit;
        MPI_Scatterv(send, c, c + g_size, t, own == recv ? MPI_IN_PLACE : recv, c[root], t, root, MPI_COMM_WORLD);
    } else {
        MPI_Scatterv(NULL, NULL, NULL, t, recv, count_of(n[g_rank], "scatter"), t, root, MPI_COMM_WORLD);
    }
    MPI_Type_free(&t);
    free(c);
}

void st_dist_gatherv(const void *mine, size_t unit, const size_t *n, const size_t *off, void *all, int root)
{
    bool me = g_rank == root;
    int *c = v_counts(n, off, me, "gather");
    MPI_Datatype t = row_type(unit);
    if (me) {
        const void *own = (const char *)all + off[root] * unit;
        MPI_Gatherv(own == mine ? MPI_IN_PLACE : mine, c[root], t, all, c, c + g_size, t, root, MPI_COMM_WORLD);
    } else {
        sent((uint64_t)n[g_rank] * unit);
        MPI_Gatherv(mine, count_of(n[g_rank], "gather"), t, NULL, NULL, NULL, t, root, MPI_COMM_WORLD);
    }
    MPI_Type_free(&t);
    free(c);
}

/* The tag of st_dist_chain's messages: collectives never match it. */
#define CHAIN_TAG 0x5c4a

void st_dist_chain(void *state, size_t bytes, void (*fold)(void *state, void *ctx), void *ctx)
{
    int nb = count_of(bytes, "chain state");
    if (g_rank > 0) MPI_Recv(state, nb, MPI_BYTE, g_rank - 1, CHAIN_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    fold(state, ctx);
    if (g_rank + 1 < g_size) {
        sent(bytes);
        MPI_Send(state, nb, MPI_BYTE, g_rank + 1, CHAIN_TAG, MPI_COMM_WORLD);
    }
    st_dist_bcast(state, bytes, g_size - 1);
}

st_status st_dist_agree(st_status s, st_error *err)
{
    int mine = s == ST_OK ? g_size : g_rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g_size) return ST_OK;
    struct {
        int code;
        char msg[ST_ERROR_MSG_MAX];
    } m = {(int)s, ""};
    if (g_rank == first && err) snprintf(m.msg, sizeof m.msg, "%s", err->msg);
    MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, MPI_COMM_WORLD);
    if (err) {
        err->code = (st_status)m.code;
        if (g_size > 1) snprintf(err->msg, sizeof err->msg, "rank %d: %.480s", first, m.msg);
        else snprintf(err->msg, sizeof err->msg, "%s", m.msg);
    }
    return (st_status)m.code;
}

_Noreturn void st_dist_abort(int code, const char *msg)
{
    fprintf(stderr, "strata rank %d/%d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* MPI_Abort does not return; for the compiler */
}
