/*
 * dist_single.c: the rank/world layer of the plain binary: a world of
 * one rank (see dist.h). Collectives are copies or nothing, so code
 * written for many ranks runs unchanged, and identically, in one process.
 * `make mpi` links dist_mpi.c in its place.
 */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}
void st_dist_finalize(void) {}
int st_dist_rank(void) { return 0; }
int st_dist_size(void) { return 1; }
const char *st_dist_kind(void) { return "single"; }
void st_dist_barrier(void) {}

void st_dist_sum_u64(uint64_t *v, size_t n)
{
    (void)v;
    (void)n;
}

void st_dist_max_i64(int64_t *v, size_t n)
{
    (void)v;
    (void)n;
}

void st_dist_allgather(const void *mine, size_t bytes, void *all)
{
    if (bytes && all != mine) memmove(all, mine, bytes);
}

void st_dist_bcast(void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
}

void st_dist_alltoallv(const void *send, const size_t *send_n, const size_t *send_off, void *recv,
                       const size_t *recv_n, const size_t *recv_off)
{
    size_t n = send_n[0] < recv_n[0] ? send_n[0] : recv_n[0];
    if (n) memmove((char *)recv + recv_off[0], (const char *)send + send_off[0], n);
}

void st_dist_scatterv(const void *send, size_t unit, const size_t *n, const size_t *off, void *recv, int root)
{
    (void)root;
    const char *from = (const char *)send + off[0] * unit;
    if (n[0] && (const void *)from != recv) memmove(recv, from, n[0] * unit);
}

void st_dist_gatherv(const void *mine, size_t unit, const size_t *n, const size_t *off, void *all, int root)
{
    (void)root;
    char *to = (char *)all + off[0] * unit;
    if (n[0] && (const void *)to != mine) memmove(to, mine, n[0] * unit);
}

void st_dist_chain(void *state, size_t bytes, void (*fold)(void *state, void *ctx), void *ctx)
{
    (void)bytes;
    fold(state, ctx);
}

st_status st_dist_agree(st_status s, st_error *err)
{
    (void)err;
    return s;
}

_Noreturn void st_dist_abort(int code, const char *msg)
{
    fprintf(stderr, "strata: %s\n", msg);
    exit(code);
}
