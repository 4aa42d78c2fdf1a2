/*
 * agg.c: st_features_finish() and the result accessors (strata/agg.h).
 *
 * Finish is a counting sort followed by independent per-group work:
 *
 *  1. Customers are ordered by id; walking them and, for each, its periods
 *     in order lists the active cells (any line) as groups 0..A-1 in
 *     output order. The same walk turns each cell's line count into the
 *     write cursor of its segment (exclusive prefix sum).
 *  2. Rows scatter into their group's segment, one table at a time, the
 *     row store of a table being freed as soon as it is scattered (this
 *     bounds peak memory). Material codes become ranks on the way.
 *  3. Groups are split into n_threads contiguous ranges of about equal
 *     line counts. Per group: int64 sums (overflow is an error), medians by
 *     selection on a per-thread copy of the quantities, then each segment
 *     is sorted by material rank and the two sorted lists are merged to
 *     count distinct materials (and overflow-check per-material sums, so
 *     the unified iterator cannot fail later).
 *
 * Step 3 writes only its own groups' slots and segments, and every value
 * depends only on the group's lines, so the output is identical for any
 * thread count. If several groups overflow, the error names the first in
 * output order (threads stop at their first error; ranges are ordered).
 */
#include "groupby_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

bool st_agg_sum_i64(const int64_t *v, size_t n, int64_t *out)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (__builtin_add_overflow(s, v[i], &s)) return false;
    *out = s;
    return true;
}

static int32_t period_key_of(const st_features *fx, uint32_t pidx)
{
    int32_t m = fx->month0 + (int32_t)pidx;
    return (m / 12) * 100 + (m % 12) + 1;
}

/* ---- step 3: per-group work ------------------------------------------- */

typedef struct group_job {
    st_features *fx;
    size_t first, end;       /* groups [first, end) */
    int64_t *scratch;        /* max segment length entries */
    size_t bad_group;        /* first overflowing group, or SIZE_MAX */
    int bad_what;            /* 0 sales sum, 1 foc sum, 2 per-material sum */
} group_job;

/* Distinct ranks over two rank-sorted lists; false if a per-material sum
 * overflows. */
static bool merge_count(const uint32_t *ma, const int64_t *qa, size_t na,
                        const uint32_t *mb, const int64_t *qb, size_t nb, uint32_t *n_out)
{
    size_t i = 0, j = 0;
    uint32_t n = 0;
    while (i < na || j < nb) {
        uint32_t m = (j >= nb || (i < na && ma[i] <= mb[j])) ? ma[i] : mb[j];
        int64_t s = 0;
        for (; i < na && ma[i] == m; i++)
            if (__builtin_add_overflow(s, qa[i], &s)) return false;
        s = 0;
        for (; j < nb && mb[j] == m; j++)
            if (__builtin_add_overflow(s, qb[j], &s)) return false;
        n++;
    }
    *n_out = n;
    return true;
}

static void *group_worker(void *arg)
{
    group_job *job = arg;
    st_features *fx = job->fx;
    for (size_t a = job->first; a < job->end; a++) {
        size_t lo[2], len[2];
        for (int t = 0; t < 2; t++) {
            lo[t] = fx->g_off[t][a];
            len[t] = fx->g_off[t][a + 1] - lo[t];
            int64_t *q = fx->seg_qty[t] + lo[t];
            if (!st_agg_sum_i64(q, len[t], &fx->g_sum[t][a])) {
                job->bad_group = a;
                job->bad_what = t;
                return NULL;
            }
            if (len[t] > 0) {
                memcpy(job->scratch, q, len[t] * sizeof *q);
                fx->g_med[t][a] = st_median_i64(job->scratch, len[t]);
                st_sort_u32_i64(fx->seg_mat[t] + lo[t], q, len[t]);
            } else {
                fx->g_med[t][a] = 0.0;
            }
        }
        if (!merge_count(fx->seg_mat[0] + lo[0], fx->seg_qty[0] + lo[0], len[0],
                         fx->seg_mat[1] + lo[1], fx->seg_qty[1] + lo[1], len[1],
                         &fx->g_uniq[a])) {
            job->bad_group = a;
            job->bad_what = 2;
            return NULL;
        }
    }
    return NULL;
}

static st_status run_groups(st_features *fx, unsigned n_threads, size_t max_seg, st_error *err)
{
    st_status s = ST_OK;
    if (n_threads == 0) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    if (fx->n_groups < (size_t)n_threads * 64) n_threads = 1;
    group_job jobs[64];
    pthread_t tids[64];
    bool started[64] = {false};
    memset(jobs, 0, sizeof jobs);
    uint64_t total = (uint64_t)fx->rows[0].n_rows + fx->rows[1].n_rows;
    size_t a = 0;
    for (unsigned t = 0; t < n_threads; t++) {
        jobs[t].fx = fx;
        jobs[t].bad_group = SIZE_MAX;
        jobs[t].first = a;
        if (t + 1 == n_threads) {
            a = fx->n_groups;
        } else {
            uint64_t target = total * (t + 1) / n_threads;
            while (a < fx->n_groups && (uint64_t)fx->g_off[0][a] + fx->g_off[1][a] < target) a++;
        }
        jobs[t].end = a;
        jobs[t].scratch = malloc((max_seg ? max_seg : 1) * sizeof(int64_t));
        if (!jobs[t].scratch) {
            s = st_error_set(err, ST_ERR_NOMEM, "features: out of memory for median scratch");
            goto done;
        }
    }
    for (unsigned t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, group_worker, &jobs[t]) == 0;
    group_worker(&jobs[0]);
    for (unsigned t = 1; t < n_threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            group_worker(&jobs[t]); /* could not start a thread: do it here */
    }
    for (unsigned t = 0; t < n_threads; t++) {
        if (jobs[t].bad_group == SIZE_MAX) continue;
        size_t g = jobs[t].bad_group;
        static const char *const what[3] = {"total_sold_quantity", "total_foc_quantity",
                                            "a per-material quantity"};
        s = st_error_set(err, ST_ERR_INVALID,
                         "features: customer_id %" PRId64 " period_key %" PRId32
                         ": %s overflows int64",
                         fx->g_cust[g], fx->g_period[g], what[jobs[t].bad_what]);
        goto done;
    }
done:
    for (unsigned t = 0; t < n_threads; t++) free(jobs[t].scratch);
    return s;
}

/* ---- steps 1 and 2 ---------------------------------------------------- */

/* Rejects material codes outside the rank table before anything moves. */
static st_status check_materials(const st_features *fx, int t, uint32_t n_materials, st_error *err)
{
    const st_row_store *r = &fx->rows[t];
    for (size_t i = 0; i < r->n_rows; i++)
        if (r->mat[i] >= n_materials)
            return st_error_set(err, ST_ERR_INVALID,
                                "features: %s row %zu: material code %" PRIu32 " not below %" PRIu32,
                                t ? "foc" : "sales", i, r->mat[i], n_materials);
    return ST_OK;
}

typedef struct scatter_job {
    st_features *fx;
    int t;
    const uint32_t *rank;   /* NULL = identity */
} scatter_job;

/* Moves table t's rows into their segments (cursors in cnt[t]) and frees
 * its row store. The loop is bound by cache misses on the cursor grid and
 * the destinations, so it prefetches the cursor of row i + 2*PF and the
 * destination of row i + PF (using that row's current cursor, which is
 * where it lands unless the same group recurs in between). */
static void *scatter_worker(void *arg)
{
    enum { PF = 16 };
    scatter_job *job = arg;
    st_row_store *r = &job->fx->rows[job->t];
    const size_t n = r->n_rows;
    const uint32_t *restrict key = r->key;
    const uint32_t *restrict mat = r->mat;
    const int64_t *restrict qty = r->qty;
    const uint32_t *restrict rank = job->rank;
    uint32_t *restrict cur = job->fx->cnt[job->t];
    uint32_t *restrict smat = job->fx->seg_mat[job->t];
    int64_t *restrict sqty = job->fx->seg_qty[job->t];
    size_t i = 0;
    if (n > 2 * PF) {
        for (; i < n - 2 * PF; i++) {
            __builtin_prefetch(&cur[key[i + 2 * PF]], 1);
            uint32_t ahead = cur[key[i + PF]];
            __builtin_prefetch(&smat[ahead], 1);
            __builtin_prefetch(&sqty[ahead], 1);
            uint32_t p = cur[key[i]]++;
            smat[p] = rank ? rank[mat[i]] : mat[i];
            sqty[p] = qty[i];
        }
    }
    for (; i < n; i++) {
        uint32_t p = cur[key[i]]++;
        smat[p] = rank ? rank[mat[i]] : mat[i];
        sqty[p] = qty[i];
    }
    free(r->key);
    free(r->mat);
    free(r->qty);
    r->key = r->mat = NULL;
    r->qty = NULL;
    return NULL;
}

static st_status alloc_segments(st_features *fx, int t, st_error *err)
{
    size_t n = fx->rows[t].n_rows;
    fx->seg_mat[t] = malloc((n ? n : 1) * sizeof(uint32_t));
    fx->seg_qty[t] = malloc((n ? n : 1) * sizeof(int64_t));
    if (!fx->seg_mat[t] || !fx->seg_qty[t])
        return st_error_set(err, ST_ERR_NOMEM, "features: out of memory grouping %zu %s rows", n,
                            t ? "foc" : "sales");
    return ST_OK;
}

/* Both tables at once on two threads when allowed (more memory: both row
 * stores and both segment arrays live together), else one after the
 * other, freeing each row store before the next table's segments exist. */
static st_status scatter_all(st_features *fx, const uint32_t *rank, unsigned n_threads,
                             st_error *err)
{
    scatter_job jobs[2] = {{fx, 0, rank}, {fx, 1, rank}};
    if (n_threads >= 2) {
        ST_TRY(alloc_segments(fx, 0, err));
        ST_TRY(alloc_segments(fx, 1, err));
        pthread_t tid;
        bool started = pthread_create(&tid, NULL, scatter_worker, &jobs[1]) == 0;
        scatter_worker(&jobs[0]);
        if (started)
            pthread_join(tid, NULL);
        else
            scatter_worker(&jobs[1]);
        return ST_OK;
    }
    for (int t = 0; t < 2; t++) {
        ST_TRY(alloc_segments(fx, t, err));
        scatter_worker(&jobs[t]);
    }
    return ST_OK;
}

st_status st_features_finish(st_features *fx, const uint32_t *material_rank,
                             uint32_t n_materials, unsigned n_threads, st_error *err)
{
    st_status s = ST_OK;
    int64_t *ids = NULL;
    uint32_t *order = NULL;
    if (fx->failed || fx->finished)
        return st_error_set(err, ST_ERR_INVALID, "features: finish after %s",
                            fx->finished ? "finish" : "an earlier error");
    fx->finished = true;

    if (material_rank) {
        for (int t = 0; t < 2; t++) {
            s = check_materials(fx, t, n_materials, err);
            if (s != ST_OK) goto done;
        }
        fx->rank_code = malloc((n_materials ? n_materials : 1) * sizeof(uint32_t));
        if (!fx->rank_code) goto nomem;
        memset(fx->rank_code, 0xff, (n_materials ? n_materials : 1) * sizeof(uint32_t));
        for (uint32_t c = 0; c < n_materials; c++) {
            uint32_t r = material_rank[c];
            if (r >= n_materials || fx->rank_code[r] != ST_KEY_NONE) {
                s = st_error_set(err, ST_ERR_INVALID,
                                 "features: material rank table is not a permutation (code %" PRIu32 ")",
                                 c);
                goto done;
            }
            fx->rank_code[r] = c;
        }
    }

    /* 1. customers by id, active cells, offsets in output order */
    size_t ns = fx->n_slots, np = fx->n_periods;
    ids = malloc((ns ? ns : 1) * sizeof *ids);
    order = malloc((ns ? ns : 1) * sizeof *order);
    if (!ids || !order) goto nomem;
    for (size_t i = 0; i < ns; i++) {
        ids[i] = fx->slot_id[i];
        order[i] = (uint32_t)i;
    }
    st_sort_i64_u32(ids, order, ns);
    size_t n_groups = 0;
    for (size_t cell = 0; cell < ns * np; cell++)
        n_groups += (fx->cnt[0][cell] | fx->cnt[1][cell]) != 0;
    fx->n_groups = n_groups;
    size_t ng1 = n_groups + 1;
    fx->g_cust = malloc(ng1 * sizeof *fx->g_cust);
    fx->g_period = malloc(ng1 * sizeof *fx->g_period);
    fx->g_uniq = malloc(ng1 * sizeof *fx->g_uniq);
    if (!fx->g_cust || !fx->g_period || !fx->g_uniq) goto nomem;
    for (int t = 0; t < 2; t++) {
        fx->g_off[t] = malloc(ng1 * sizeof *fx->g_off[t]);
        fx->g_sum[t] = malloc(ng1 * sizeof *fx->g_sum[t]);
        fx->g_med[t] = malloc(ng1 * sizeof *fx->g_med[t]);
        if (!fx->g_off[t] || !fx->g_sum[t] || !fx->g_med[t]) goto nomem;
    }
    size_t a = 0, max_seg = 0;
    uint32_t run[2] = {0, 0};
    for (size_t c = 0; c < ns; c++) {
        size_t base = (size_t)order[c] * np;
        for (size_t p = 0; p < np; p++) {
            uint32_t *c0 = &fx->cnt[0][base + p], *c1 = &fx->cnt[1][base + p];
            if ((*c0 | *c1) == 0) continue;
            fx->g_cust[a] = ids[c];
            fx->g_period[a] = period_key_of(fx, (uint32_t)p);
            if (*c0 > max_seg) max_seg = *c0;
            if (*c1 > max_seg) max_seg = *c1;
            fx->g_off[0][a] = run[0];
            fx->g_off[1][a] = run[1];
            uint32_t k0 = *c0, k1 = *c1;
            *c0 = run[0];
            *c1 = run[1];
            run[0] += k0;
            run[1] += k1;
            a++;
        }
    }
    fx->g_off[0][n_groups] = run[0];
    fx->g_off[1][n_groups] = run[1];

    /* 2. counting-sort scatter */
    s = scatter_all(fx, material_rank, n_threads, err);
    if (s != ST_OK) goto done;
    free(fx->cnt[0]);
    free(fx->cnt[1]);
    fx->cnt[0] = fx->cnt[1] = NULL;
    free(fx->cust_slot);
    free(fx->hash_id);
    free(fx->hash_slot);
    fx->cust_slot = NULL;
    fx->kc.cust_slot = NULL;
    fx->hash_id = NULL;
    fx->hash_slot = NULL;

    /* 3. per-group features */
    s = run_groups(fx, n_threads, max_seg, err);
    if (s != ST_OK) goto done;
    size_t nu = 0;
    for (size_t g = 0; g < n_groups; g++) nu += fx->g_uniq[g];
    fx->n_unified = nu;
    goto done;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "features: out of memory in finish");
done:
    free(ids);
    free(order);
    if (s != ST_OK) fx->failed = true;
    return s;
}

/* ---- accessors -------------------------------------------------------- */

size_t st_features_n_groups(const st_features *fx)
{
    return fx->finished && !fx->failed ? fx->n_groups : 0;
}

size_t st_features_n_unified(const st_features *fx)
{
    return fx->finished && !fx->failed ? fx->n_unified : 0;
}

void st_features_get(const st_features *fx, size_t i, st_feature_row *row)
{
    memset(row, 0, sizeof *row);
    row->customer_id = fx->g_cust[i];
    row->period_key = fx->g_period[i];
    int64_t sold = fx->g_sum[0][i], foc = fx->g_sum[1][i];
    row->total_sold_quantity = sold;
    row->total_foc_quantity = foc;
    double den = (double)sold + (double)foc;
    row->foc_ratio = den != 0.0 ? (double)foc / den : 0.0;
    row->total_sold_transactions = (int64_t)(fx->g_off[0][i + 1] - fx->g_off[0][i]);
    row->total_foc_transactions = (int64_t)(fx->g_off[1][i + 1] - fx->g_off[1][i]);
    row->has_median_sold = row->total_sold_transactions > 0;
    row->has_median_foc = row->total_foc_transactions > 0;
    row->median_sold_order_size = fx->g_med[0][i];
    row->median_foc_order_size = fx->g_med[1][i];
    row->unique_materials = fx->g_uniq[i];
}

st_status st_features_unified_next(const st_features *fx, st_unified_cursor *cur,
                                   const st_unified_batch *out, size_t cap, size_t *n_out,
                                   st_error *err)
{
    *n_out = 0;
    if (!fx->finished || fx->failed || cap == 0)
        return st_error_set(err, ST_ERR_INVALID, "features: unified rows need a finished "
                                                 "accumulator and cap > 0");
    size_t n = 0;
    while (n < cap && cur->group < fx->n_groups) {
        size_t g = cur->group;
        size_t s0 = fx->g_off[0][g] + cur->sales_pos, s1 = fx->g_off[0][g + 1];
        size_t f0 = fx->g_off[1][g] + cur->foc_pos, f1 = fx->g_off[1][g + 1];
        if (s0 >= s1 && f0 >= f1) {
            cur->group++;
            cur->sales_pos = cur->foc_pos = 0;
            continue;
        }
        const uint32_t *sm = fx->seg_mat[0], *fm = fx->seg_mat[1];
        uint32_t m = (f0 >= f1 || (s0 < s1 && sm[s0] <= fm[f0])) ? sm[s0] : fm[f0];
        int64_t sq = 0, fq = 0;
        size_t s = s0, f = f0;
        for (; s < s1 && sm[s] == m; s++)
            if (__builtin_add_overflow(sq, fx->seg_qty[0][s], &sq)) goto internal;
        for (; f < f1 && fm[f] == m; f++)
            if (__builtin_add_overflow(fq, fx->seg_qty[1][f], &fq)) goto internal;
        out->customer_id[n] = fx->g_cust[g];
        out->period_key[n] = fx->g_period[g];
        out->material[n] = fx->rank_code ? fx->rank_code[m] : m;
        out->sold_qty[n] = sq;
        out->foc_qty[n] = fq;
        out->sold_lines[n] = (int64_t)(s - s0);
        out->foc_lines[n] = (int64_t)(f - f0);
        cur->sales_pos += s - s0;
        cur->foc_pos += f - f0;
        n++;
    }
    *n_out = n;
    return ST_OK;
internal:
    return st_error_set(err, ST_ERR_INTERNAL, "features: per-material sum overflow after finish");
}
