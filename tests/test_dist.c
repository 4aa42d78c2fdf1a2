/*
 * test_dist.c: the rank/world layer of the plain binary (engine/dist.h,
 * engine/dist_single.c): a world of one whose collectives leave a single
 * rank's data exactly as a world of many would leave rank 0's when it is
 * alone. The MPI implementation is tested through strata-mpi in
 * test_mpi.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "dist.h"

TestSuite(dist);

Test(dist, a_world_of_one)
{
    cr_assert_eq(st_dist_rank(), 0);
    cr_assert_eq(st_dist_size(), 1);
    cr_assert_str_eq(st_dist_kind(), "single");
    st_dist_barrier();
}

Test(dist, reductions_of_one_rank_are_its_values)
{
    uint64_t s[3] = {1, 0, UINT64_MAX};
    int64_t m[2] = {-5, 7};
    st_dist_sum_u64(s, 3);
    st_dist_max_i64(m, 2);
    cr_assert(s[0] == 1 && s[1] == 0 && s[2] == UINT64_MAX);
    cr_assert(m[0] == -5 && m[1] == 7);
}

Test(dist, gather_broadcast_and_exchange_copy_this_ranks_bytes)
{
    char mine[6] = "abcde", all[6] = {0};
    st_dist_allgather(mine, sizeof mine, all);
    cr_assert_str_eq(all, "abcde");
    st_dist_bcast(mine, sizeof mine, 0);
    cr_assert_str_eq(mine, "abcde");
    /* rank 0 sends bytes 1..3 of send to itself, at offset 2 of recv */
    char send[8] = "0123456", recv[8] = "-------";
    size_t sn[1] = {3}, so[1] = {1}, rn[1] = {3}, ro[1] = {2};
    st_dist_alltoallv(send, sn, so, recv, rn, ro);
    cr_assert_str_eq(recv, "--123--");
}

Test(dist, agreement_of_one_rank_is_its_own_status_and_message)
{
    st_error e;
    cr_assert_eq(st_dist_agree(ST_OK, NULL), ST_OK);
    st_error_set(&e, ST_ERR_IO, "disk full writing x");
    cr_assert_eq(st_dist_agree(ST_ERR_IO, &e), ST_ERR_IO);
    cr_assert_str_eq(e.msg, "disk full writing x", "one rank: no rank prefix");
}

Test(dist, scatter_and_gather_of_one_rank_copy_its_rows_and_leave_them_in_place)
{
    /* rows of 4 bytes: rank 0 is sent rows 1..2 of send */
    char send[13] = "aaaabbbbcccc", recv[9] = {0};
    size_t n[1] = {2}, off[1] = {1};
    st_dist_scatterv(send, 4, n, off, recv, 0);
    cr_assert_str_eq(recv, "bbbbcccc");
    st_dist_scatterv(send, 4, n, off, send + 4, 0); /* in place: nothing moves */
    cr_assert_str_eq(send, "aaaabbbbcccc");
    char all[13] = "------------";
    st_dist_gatherv(recv, 4, n, off, all, 0);
    cr_assert_str_eq(all, "----bbbbcccc");
    st_dist_gatherv(all + 4, 4, n, off, all, 0);
    cr_assert_str_eq(all, "----bbbbcccc");
}

static void add_terms(void *state, void *ctx)
{
    double *s = state;
    const double *t = ctx;
    for (int i = 0; i < 3; i++) *s += t[i];
}

Test(dist, a_chain_of_one_rank_folds_once_from_the_state_given)
{
    double terms[3] = {1e16, 1.0, 1.0}, s = 0;
    st_dist_chain(&s, sizeof s, add_terms, terms);
    /* left to right, one add at a time: each 1.0 is lost against 1e16 */
    cr_assert(s == 1e16, "%.17g", s);
    /* the same terms the other way round: the 1.0s add up first */
    double back[3] = {1.0, 1.0, 1e16};
    s = 0;
    st_dist_chain(&s, sizeof s, add_terms, back);
    cr_assert(s == 1e16 + 2.0, "%.17g", s);
}
