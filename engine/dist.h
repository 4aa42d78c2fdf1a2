/*
 * dist.h: the rank/world layer: what the pipeline asks of the processes
 * it runs on, as one interface with two builds.
 *
 * build/strata links dist_single.c: one rank (rank 0 of a world of 1),
 * every collective a copy or a no-op, so the plain binary never needs MPI.
 * build/strata-mpi (`make mpi`) links dist_mpi.c instead, which maps each
 * call onto an MPI collective on MPI_COMM_WORLD. Code above this layer
 * never includes <mpi.h> and never asks which build it is in: it calls
 * the collectives in the same order on every rank (SPMD), and a world of
 * one behaves exactly like the plain binary.
 *
 * Invariants: every collective here is called by every rank of the world,
 * in the same order, with the same sizes where a size is given (else the
 * MPI build deadlocks or aborts). Byte counts fit in an int per message
 * (2 GiB); larger exchanges are cut into rounds by the caller. A failure
 * on one rank is not a return code of a collective: the ranks agree on a
 * status with st_dist_agree() (every rank calls it) or, when a rank cannot
 * go on, st_dist_abort() ends the whole world with its message.
 */
#ifndef STRATA_DIST_H
#define STRATA_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "strata/status.h"

/* Starts the world (MPI_Init in the MPI build; argc/argv may be changed).
 * Call once, before anything else. */
void st_dist_init(int *argc, char ***argv);
/* Ends the world (MPI_Finalize); call once at exit, on every rank. */
void st_dist_finalize(void);

int st_dist_rank(void);
int st_dist_size(void);
/* "mpi" or "single". */
const char *st_dist_kind(void);

void st_dist_barrier(void);
/* Element-wise sums / maxima over every rank, in place. Integer sums are
 * exact, so their result is the same whatever the number of ranks. */
void st_dist_sum_u64(uint64_t *v, size_t n);
void st_dist_max_i64(int64_t *v, size_t n);
/* all[r * bytes .. (r+1) * bytes) = rank r's mine (all holds size*bytes). */
void st_dist_allgather(const void *mine, size_t bytes, void *all);
/* buf on every rank = buf of rank root. */
void st_dist_bcast(void *buf, size_t bytes, int root);
/* Personalised exchange: this rank sends send_n[r] bytes from
 * send + send_off[r] to rank r and receives recv_n[r] bytes from rank r at
 * recv + recv_off[r]. Every count fits in an int. */
void st_dist_alltoallv(const void *send, const size_t *send_n, const size_t *send_off, void *recv,
                       const size_t *recv_n, const size_t *recv_off);

/* Rows of root to every rank: rank r receives n[r] rows of `unit` bytes,
 * taken from send + off[r] * unit on root, into recv. n is read on every
 * rank (each must know its own count), send and off on root only; on root
 * recv may be send + off[root] * unit (its own rows stay where they are).
 * Every count and offset fits in an int (rows, not bytes). */
void st_dist_scatterv(const void *send, size_t unit, const size_t *n, const size_t *off, void *recv, int root);
/* The reverse: rank r's n[r] rows at mine land at all + off[r] * unit on
 * root (n on every rank, all and off on root only; on root mine may be
 * all + off[root] * unit). */
void st_dist_gatherv(const void *mine, size_t unit, const size_t *n, const size_t *off, void *all, int root);

/* A fold along the ranks in rank order: rank 0 calls fold(state, ctx) on
 * its own state, rank 1 then calls it on what rank 0's call left, and so
 * on up to the last rank, whose result every rank holds in state when
 * this returns (`bytes` bytes, the same count on every rank; the state a
 * rank above 0 passes in is overwritten). A sum folded this way adds rank
 * 0's terms, then rank 1's, one at a time in the order one process adding
 * all of them would: the same bits for any number of ranks, which no
 * reduction tree gives for floating point. Cost: size - 1 messages of
 * `bytes`, one after the other, then a broadcast. */
void st_dist_chain(void *state, size_t bytes, void (*fold)(void *state, void *ctx), void *ctx);

/* The ranks agree on one outcome: every rank passes its status and error;
 * all return the status of the lowest rank that failed (ST_OK when none
 * did) and, when one failed, *err becomes that rank's message (prefixed
 * "rank R: " in a world of more than one). */
st_status st_dist_agree(st_status s, st_error *err);

/* Ends every rank of the world with `code` after printing msg on stderr
 * (prefixed by the rank). Never returns. */
_Noreturn void st_dist_abort(int code, const char *msg);

#endif
