/*
 * groupby.c: building the st_features accumulator (strata/agg.h):
 * create, free, and the add path (group keys, line counts, row store).
 *
 * Customers get dense slots in first-seen order: through a direct table
 * over [customer_id_min, customer_id_max] when that range is at most
 * ST_FEATURES_DIRECT_IDS ids, else through an open-addressing hash
 * (linear probing, Fibonacci hashing, load <= 1/2). Slots only name grid
 * rows; output order comes from sorting the ids at finish, so first-seen
 * order never leaks into results.
 *
 * Rows are keyed ST_KEY_BATCH at a time straight into the row store. The
 * direct path runs the SIMD key kernel, which stops at the first row it
 * cannot key; that row either gets a new slot (first sight of a customer)
 * or is reported, and the kernel resumes. Counting lines per cell is a
 * scalar scatter-increment (conflicting lanes make SIMD histograms lose
 * here).
 */
#include "groupby_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const table_name[2] = {"sales", "foc"};

void st_features_free(st_features *fx)
{
    if (!fx) return;
    free(fx->per_idx);
    free(fx->cust_slot);
    free(fx->hash_id);
    free(fx->hash_slot);
    free(fx->slot_id);
    for (int t = 0; t < 2; t++) {
        free(fx->cnt[t]);
        st_row_store_release(&fx->rows[t]);
        free(fx->g_off[t]);
        free(fx->g_med[t]);
        free(fx->seg_mat[t]);
        free(fx->seg_qty[t]);
    }
    free(fx->cust_ids);
    free(fx->g_cidx);
    free(fx->g_period);
    free(fx->g_uniq);
    free(fx->rank_code);
    free(fx);
}

st_status st_features_create(st_features **out, const st_feature_dims *dims, st_error *err)
{
    st_status s = ST_OK;
    st_features *fx = NULL;
    *out = NULL;
    if (!dims || dims->customer_id_min > dims->customer_id_max ||
        !st_period_valid(dims->period_key_min) || !st_period_valid(dims->period_key_max) ||
        dims->period_key_min > dims->period_key_max ||
        (int64_t)dims->period_key_max - dims->period_key_min >= ST_FEATURES_MAX_PERIOD_SPAN) {
        s = st_error_set(err, ST_ERR_INVALID, "features: bad dimensions (customer or period range)");
        goto done;
    }
    fx = calloc(1, sizeof *fx);
    if (!fx) goto nomem;
    fx->dims = *dims;

    uint32_t per_span = (uint32_t)(dims->period_key_max - dims->period_key_min) + 1;
    fx->per_idx = malloc(per_span * sizeof *fx->per_idx);
    if (!fx->per_idx) goto nomem;
    fx->month0 = st_period_month(dims->period_key_min);
    for (uint32_t i = 0; i < per_span; i++) {
        int32_t pk = dims->period_key_min + (int32_t)i;
        fx->per_idx[i] = st_period_valid(pk) ? (uint32_t)(st_period_month(pk) - fx->month0) : ST_KEY_NONE;
    }
    fx->n_periods = (uint32_t)(st_period_month(dims->period_key_max) - fx->month0) + 1;

    uint64_t cust_range = (uint64_t)dims->customer_id_max - (uint64_t)dims->customer_id_min;
    fx->direct = cust_range < ST_FEATURES_DIRECT_IDS;
    if (fx->direct) {
        fx->cust_slot = malloc((size_t)(cust_range + 1) * sizeof *fx->cust_slot);
        if (!fx->cust_slot) goto nomem;
        memset(fx->cust_slot, 0xff, (size_t)(cust_range + 1) * sizeof *fx->cust_slot);
        fx->kc.cust_span = (uint32_t)cust_range + 1;
    } else {
        fx->hash_cap = 1024;
        fx->hash_id = malloc(fx->hash_cap * sizeof *fx->hash_id);
        fx->hash_slot = malloc(fx->hash_cap * sizeof *fx->hash_slot);
        if (!fx->hash_id || !fx->hash_slot) goto nomem;
        memset(fx->hash_slot, 0xff, fx->hash_cap * sizeof *fx->hash_slot);
    }
    fx->kc.cust_min = dims->customer_id_min;
    fx->kc.cust_slot = fx->cust_slot;
    fx->kc.per_min = dims->period_key_min;
    fx->kc.per_span = per_span;
    fx->kc.per_idx = fx->per_idx;
    fx->kc.n_periods = fx->n_periods;
    fx->keys_fn = st_keys_direct_pick(st_cpu_level());
    *out = fx;
    fx = NULL;
    goto done;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "features: out of memory creating the accumulator");
done:
    st_features_free(fx);
    return s;
}

/* Gives customer `id` the next slot, growing the grid. */
static st_status new_slot(st_features *fx, int64_t id, uint32_t *slot, st_error *err)
{
    if (fx->n_slots == fx->cap_slots) {
        size_t max_slots = ((size_t)UINT32_MAX + 1) / fx->n_periods;
        if (fx->n_slots >= max_slots)
            return st_error_set(err, ST_ERR_INVALID,
                                "features: more than %zu customers x %" PRIu32 " periods",
                                max_slots, fx->n_periods);
        size_t cap = fx->cap_slots ? fx->cap_slots * 2 : 64;
        if (cap > max_slots) cap = max_slots;
        size_t cells = cap * fx->n_periods, old_cells = fx->cap_slots * fx->n_periods;
        int64_t *ids = realloc(fx->slot_id, cap * sizeof *ids);
        if (!ids) goto nomem;
        fx->slot_id = ids;
        for (int t = 0; t < 2; t++) {
            uint32_t *c = realloc(fx->cnt[t], cells * sizeof *c);
            if (!c) goto nomem;
            memset(c + old_cells, 0, (cells - old_cells) * sizeof *c);
            fx->cnt[t] = c;
        }
        fx->cap_slots = cap;
    }
    fx->slot_id[fx->n_slots] = id;
    *slot = (uint32_t)fx->n_slots++;
    return ST_OK;
nomem:
    return st_error_set(err, ST_ERR_NOMEM, "features: out of memory growing the customer grid");
}

static inline size_t hash_pos(int64_t id, size_t cap)
{
    uint64_t h = (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (cap - 1);
}

static st_status hash_grow(st_features *fx, st_error *err)
{
    size_t cap = fx->hash_cap * 2;
    int64_t *ids = malloc(cap * sizeof *ids);
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!ids || !slots) {
        free(ids);
        free(slots);
        return st_error_set(err, ST_ERR_NOMEM, "features: out of memory growing the customer hash");
    }
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t i = 0; i < fx->hash_cap; i++) {
        if (fx->hash_slot[i] == ST_KEY_NONE) continue;
        size_t p = hash_pos(fx->hash_id[i], cap);
        while (slots[p] != ST_KEY_NONE) p = (p + 1) & (cap - 1);
        ids[p] = fx->hash_id[i];
        slots[p] = fx->hash_slot[i];
    }
    free(fx->hash_id);
    free(fx->hash_slot);
    fx->hash_id = ids;
    fx->hash_slot = slots;
    fx->hash_cap = cap;
    return ST_OK;
}

/* Slot of customer id through the hash, inserting it when new. */
static inline st_status hash_slot_of(st_features *fx, int64_t id, uint32_t *slot, st_error *err)
{
    size_t mask = fx->hash_cap - 1, p = hash_pos(id, fx->hash_cap);
    for (;;) {
        uint32_t s = fx->hash_slot[p];
        if (s == ST_KEY_NONE) break;
        if (fx->hash_id[p] == id) {
            *slot = s;
            return ST_OK;
        }
        p = (p + 1) & mask;
    }
    ST_TRY(new_slot(fx, id, slot, err));
    fx->hash_id[p] = id;
    fx->hash_slot[p] = *slot;
    if (fx->n_slots * 2 > fx->hash_cap) ST_TRY(hash_grow(fx, err));
    return ST_OK;
}

static st_status row_error(const st_features *fx, int t, size_t row, int64_t cust, int32_t pk,
                           st_error *err)
{
    if (cust < fx->dims.customer_id_min || cust > fx->dims.customer_id_max)
        return st_error_set(err, ST_ERR_INVALID,
                            "features: %s row %zu: customer_id %" PRId64
                            " outside [%" PRId64 ", %" PRId64 "]",
                            table_name[t], row, cust, fx->dims.customer_id_min,
                            fx->dims.customer_id_max);
    return st_error_set(err, ST_ERR_INVALID,
                        "features: %s row %zu: period_key %" PRId32
                        " is not a month in [%" PRId32 ", %" PRId32 "]",
                        table_name[t], row, pk, fx->dims.period_key_min, fx->dims.period_key_max);
}

/* Room for n rows; grows geometrically unless `exact` (a known total). */
static st_status reserve_rows(st_row_store *r, size_t n, bool exact, st_error *err)
{
    if (n <= r->cap_rows) return ST_OK;
    size_t cap = r->cap_rows ? r->cap_rows : 4096;
    while (cap < n) cap *= 2;
    if (exact) cap = n;
    uint32_t *k = realloc(r->key, cap * sizeof *k);
    if (k) r->key = k;
    uint32_t *m = realloc(r->mat, cap * sizeof *m);
    if (m) r->mat = m;
    bool q = false;
    if (r->wide) {
        int64_t *q64 = realloc(r->q64, cap * sizeof *q64);
        if (q64) r->q64 = q64;
        q = q64 != NULL;
    } else {
        int32_t *q32 = realloc(r->q32, cap * sizeof *q32);
        if (q32) r->q32 = q32;
        q = q32 != NULL;
    }
    if (!k || !m || !q)
        return st_error_set(err, ST_ERR_NOMEM, "features: out of memory storing %zu rows", n);
    r->cap_rows = cap;
    return ST_OK;
}

/* Appends n quantities at r->n_rows (room reserved). Quantities are kept
 * as int32 until one does not fit, which then widens the whole column
 * once: silver quantities are small, and 4 bytes less per row is 80 MB
 * less at 20M rows. */
static st_status store_qty(st_row_store *r, const int64_t *qty, size_t n, st_error *err)
{
    if (!r->wide) {
        int64_t lo = 0, hi = 0;
        for (size_t i = 0; i < n; i++) {
            lo = qty[i] < lo ? qty[i] : lo;
            hi = qty[i] > hi ? qty[i] : hi;
        }
        if (lo >= INT32_MIN && hi <= INT32_MAX) {
            int32_t *dst = r->q32 + r->n_rows;
            for (size_t i = 0; i < n; i++) dst[i] = (int32_t)qty[i];
            return ST_OK;
        }
        int64_t *w = malloc(r->cap_rows * sizeof *w);
        if (!w) return st_error_set(err, ST_ERR_NOMEM, "features: out of memory widening quantities");
        for (size_t i = 0; i < r->n_rows; i++) w[i] = r->q32[i];
        free(r->q32);
        r->q32 = NULL;
        r->q64 = w;
        r->wide = true;
    }
    memcpy(r->q64 + r->n_rows, qty, n * sizeof *qty);
    return ST_OK;
}

/* Keys rows [0, n) of one batch into keys[]; base is the table row number
 * of row 0 (for messages). */
static st_status key_batch(st_features *fx, int t, size_t base, const int64_t *cust,
                           const int32_t *pk, size_t n, uint32_t *keys, st_error *err)
{
    if (fx->direct) {
        size_t done = 0;
        for (;;) {
            done += fx->keys_fn(&fx->kc, cust + done, pk + done, n - done, keys + done);
            if (done == n) return ST_OK;
            uint64_t dc = (uint64_t)cust[done] - (uint64_t)fx->kc.cust_min;
            uint32_t dp = (uint32_t)pk[done] - (uint32_t)fx->kc.per_min;
            if (dc >= fx->kc.cust_span || dp >= fx->kc.per_span || fx->per_idx[dp] == ST_KEY_NONE)
                return row_error(fx, t, base + done, cust[done], pk[done], err);
            uint32_t slot;
            ST_TRY(new_slot(fx, cust[done], &slot, err));
            fx->cust_slot[dc] = slot;
        }
    }
    size_t done = st_keys_period_scalar(&fx->kc, pk, n, keys);
    if (done < n) return row_error(fx, t, base + done, cust[done], pk[done], err);
    for (size_t i = 0; i < n; i++) {
        if (cust[i] < fx->dims.customer_id_min || cust[i] > fx->dims.customer_id_max)
            return row_error(fx, t, base + i, cust[i], pk[i], err);
        uint32_t slot;
        ST_TRY(hash_slot_of(fx, cust[i], &slot, err));
        keys[i] = slot * fx->n_periods + keys[i];
    }
    return ST_OK;
}

static st_status add_rows(st_features *fx, int t, const int64_t *cust, const int32_t *pk,
                          const uint32_t *mat, const int64_t *qty, size_t n, st_error *err)
{
    st_status s = ST_OK;
    if (fx->failed || fx->finished) {
        return st_error_set(err, ST_ERR_INVALID, "features: add after %s",
                            fx->finished ? "finish" : "an earlier error");
    }
    if (n == 0) return ST_OK;
    st_row_store *r = &fx->rows[t];
    if (n > (size_t)UINT32_MAX - r->n_rows) {
        s = st_error_set(err, ST_ERR_INVALID, "features: more than %" PRIu32 " %s rows",
                         UINT32_MAX, table_name[t]);
        goto done;
    }
    s = reserve_rows(r, r->n_rows + n, false, err);
    if (s != ST_OK) goto done;
    uint32_t *keys = r->key + r->n_rows;
    for (size_t b = 0; b < n; b += ST_KEY_BATCH) {
        size_t m = n - b < ST_KEY_BATCH ? n - b : ST_KEY_BATCH;
        s = key_batch(fx, t, r->n_rows + b, cust + b, pk + b, m, keys + b, err);
        if (s != ST_OK) goto done;
        st_groupby_count_u32(keys + b, m, fx->cnt[t]);
    }
    memcpy(r->mat + r->n_rows, mat, n * sizeof *mat);
    s = store_qty(r, qty, n, err);
    if (s != ST_OK) goto done;
    r->n_rows += n;
done:
    if (s != ST_OK) fx->failed = true;
    return s;
}

st_status st_features_reserve(st_features *fx, size_t n_sales, size_t n_foc, st_error *err)
{
    if (fx->failed || fx->finished) return st_error_set(err, ST_ERR_INVALID, "features: reserve after finish or an error");
    size_t want[2] = {n_sales, n_foc};
    for (int t = 0; t < 2; t++) {
        if (want[t] > UINT32_MAX)
            return st_error_set(err, ST_ERR_INVALID, "features: more than %" PRIu32 " %s rows", UINT32_MAX, table_name[t]);
        st_status s = reserve_rows(&fx->rows[t], want[t], true, err);
        if (s != ST_OK) {
            fx->failed = true;
            return s;
        }
    }
    return ST_OK;
}

st_status st_features_add_sales(st_features *fx, const int64_t *customer_id,
                                const int32_t *period_key, const uint32_t *material,
                                const int64_t *quantity, size_t n_rows, st_error *err)
{
    return add_rows(fx, 0, customer_id, period_key, material, quantity, n_rows, err);
}

st_status st_features_add_foc(st_features *fx, const int64_t *customer_id,
                              const int32_t *period_key, const uint32_t *material,
                              const int64_t *quantity, size_t n_rows, st_error *err)
{
    return add_rows(fx, 1, customer_id, period_key, material, quantity, n_rows, err);
}
