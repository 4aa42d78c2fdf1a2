/*
 * sqlite_lanes.c: setting up and closing one batch of source rows
 * (sqlite_lanes_internal.h). The per-value work is the static inline
 * lane_put_*() family of the header; this file sizes the bronze columns
 * before a batch and hands them their row counts, payload sizes and
 * validity after it.
 */
#include "sqlite_lanes_internal.h"

#include <stdlib.h>

st_status st_lanes_init(st_lanes *ls, size_t n_cols, size_t batch_rows)
{
    memset(ls, 0, sizeof *ls);
    ls->n_cols = n_cols;
    ls->batch_rows = batch_rows;
    ls->words = (batch_rows + 63) / 64;
    size_t nbits;
    if (!st_size_mul(ls->words, 2 * n_cols, &nbits) || !st_size_mul(nbits, sizeof(uint64_t), &nbits) ||
        !(ls->vbits = malloc(nbits ? nbits : 1)) || !(ls->lane = calloc(n_cols ? n_cols : 1, sizeof *ls->lane))) {
        st_lanes_free(ls);
        return ST_ERR_NOMEM;
    }
    return ST_OK;
}

void st_lanes_free(st_lanes *ls)
{
    free(ls->vbits);
    free(ls->lane);
    ls->vbits = NULL;
    ls->lane = NULL;
}

st_status st_lanes_begin(st_lanes *ls, const st_source_table *t, st_column *cols, st_error *err)
{
    for (size_t f = 0; f < t->n_fields; f++) {
        if (cols[f].type != t->fields[f].type)
            return st_error_set(err, ST_ERR_INVALID, "scanning '%s': column %zu is %s, schema says %s", t->name, f,
                                st_type_name(cols[f].type), st_type_name(t->fields[f].type));
        st_column_reset(&cols[f]);
        size_t nb = cols[f].cap_bytes ? cols[f].cap_bytes : 4096;
        if (st_column_reserve(&cols[f], ls->batch_rows, nb) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory for a batch of %zu rows", t->name,
                                ls->batch_rows);
    }
    memset(ls->vbits, 0, ls->words * 2 * ls->n_cols * sizeof(uint64_t));
    for (size_t j = 0; j < ls->n_cols; j++) {
        st_lane *L = &ls->lane[j];
        st_column *vc = &cols[st_source_field_value(j)], *rc = &cols[st_source_field_raw(j)];
        L->type = vc->type;
        L->vc = vc;
        L->val = vc->data;
        L->voff = vc->offsets;
        L->cls = (int32_t *)cols[st_source_field_class(j)].data;
        L->rc = rc;
        L->roff = rc->offsets;
        L->vb = ls->vbits + (2 * j) * ls->words;
        L->rb = L->vb + ls->words;
    }
    ls->rowids = (int64_t *)cols[0].data;
    return ST_OK;
}

/* Hands the batch's scratch bitmap to column c when it saw a NULL: the
 * bits mark present rows, or NULL rows when `nulls` (then inverted). */
static st_status finish_validity(st_column *c, const uint64_t *bits, size_t words, size_t n, bool nulls)
{
    size_t set = 0;
    size_t full = n / 64;
    uint64_t tail = (n & 63) ? (((uint64_t)1 << (n & 63)) - 1) : 0;
    for (size_t w = 0; w < full; w++) set += (size_t)__builtin_popcountll(bits[w]);
    if (tail) set += (size_t)__builtin_popcountll(bits[full] & tail);
    c->n_rows = n;
    c->null_count = nulls ? set : n - set;
    free(c->validity);
    c->validity = NULL;
    if (c->null_count == 0) return ST_OK;
    size_t cw = (c->cap_rows + 63) / 64;
    uint64_t *v = calloc(cw ? cw : 1, sizeof *v);
    if (!v) return ST_ERR_NOMEM;
    size_t m = words < cw ? words : cw;
    for (size_t w = 0; w < m; w++) {
        uint64_t x = nulls ? ~bits[w] : bits[w];
        v[w] = w < full ? x : (w == full ? x & tail : 0);
    }
    c->validity = v;
    return ST_OK;
}

st_status st_lanes_finish(st_lanes *ls, const st_source_table *t, st_column *cols, size_t n, st_error *err)
{
    cols[0].n_rows = n;
    for (size_t j = 0; j < ls->n_cols; j++) {
        st_column *vc = &cols[st_source_field_value(j)], *cc = &cols[st_source_field_class(j)];
        st_column *rc = &cols[st_source_field_raw(j)];
        const uint64_t *vb = ls->vbits + (2 * j) * ls->words;
        cc->n_rows = n;
        if (finish_validity(vc, vb, ls->words, n, true) != ST_OK ||
            finish_validity(rc, vb + ls->words, ls->words, n, false) != ST_OK)
            return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
        if (vc->type == ST_TYPE_STR) vc->n_bytes = (size_t)vc->offsets[n];
        rc->n_bytes = (size_t)rc->offsets[n];
    }
    return ST_OK;
}
