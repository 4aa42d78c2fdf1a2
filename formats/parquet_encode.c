/*
 * parquet_encode.c: Parquet's value encodings as strata writes them,
 * from the public encodings specification.
 *
 * RLE/bit-packed hybrid: a sequence of runs, each starting with a ULEB128
 * header. (count << 1) is an RLE run: count copies of one value stored in
 * ceil(bw / 8) little-endian bytes. (groups << 1 | 1) is a bit-packed run
 * of groups * 8 values, bw bits each, packed from the least significant
 * bit. A bit-packed run can only be padded at the very end, so RLE runs are
 * started only where the pending bit-packed values fill whole groups; the
 * encoder may pack up to 7 values of a long run to reach such a boundary.
 *
 * PLAIN: BOOLEAN bit-packed LSB first, INT32/INT64/DOUBLE little-endian,
 * BYTE_ARRAY a 4-byte little-endian length then the bytes. Only present
 * values are stored; NULLs live in the definition levels alone.
 *
 * Dictionaries are built with an open-addressing hash table over the
 * column's own values (rows are referenced, not copied), entries in order
 * of first appearance, so the output is deterministic.
 */
#include "parquet_internal.h"

#include <stdlib.h>
#include <string.h>

#include "strata/file.h"
#include "thrift_internal.h"

int st_pq_bit_width(uint32_t max_value)
{
    int bw = 1;
    while (bw < 32 && (max_value >> bw)) bw++;
    return bw;
}

/* Bit-packs v[0..n) (n <= groups * 8, rest zero) as one bit-packed run. */
static void bitpacked_run(st_buf *out, const uint32_t *v, size_t n, int bw)
{
    size_t groups = (n + 7) / 8;
    st_uleb128_put(out, (uint64_t)groups << 1 | 1u);
    uint64_t acc = 0;
    int bits = 0;
    uint8_t tmp[256];
    size_t t = 0;
    for (size_t i = 0; i < groups * 8; i++) {
        acc |= (uint64_t)(i < n ? v[i] : 0) << bits;
        bits += bw;
        while (bits >= 8) {
            tmp[t++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
            if (t == sizeof tmp) {
                st_buf_append(out, tmp, t);
                t = 0;
            }
        }
    }
    /* groups * 8 * bw is a multiple of 8: nothing remains in acc */
    st_buf_append(out, tmp, t);
}

static void rle_run(st_buf *out, uint32_t value, size_t count, int bw)
{
    st_uleb128_put(out, (uint64_t)count << 1);
    uint8_t b[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24)};
    st_buf_append(out, b, (size_t)(bw + 7) / 8);
}

static size_t run_length(const uint32_t *v, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && v[j] == v[i]) j++;
    return j - i;
}

void st_pq_rle_hybrid(st_buf *out, const uint32_t *v, size_t n, int bw)
{
    size_t start = 0, i = 0;
    while (i < n) {
        size_t run = run_length(v, n, i);
        size_t pad = (8 - (i - start) % 8) % 8;
        if (run < pad + 8) {
            i += run;
            continue;
        }
        i += pad;
        if (i > start) bitpacked_run(out, v + start, i - start, bw);
        run -= pad;
        rle_run(out, v[i], run, bw);
        i += run;
        start = i;
    }
    if (n > start) bitpacked_run(out, v + start, n - start, bw);
}

static void put_le32(st_buf *out, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    st_buf_append(out, b, 4);
}

static void plain_value(st_buf *out, const st_column *col, size_t i)
{
    size_t w = st_type_width(col->type);
    if (w) {
        st_buf_append(out, (const char *)col->data + i * w, w); /* little-endian hosts only (as the layer format) */
        return;
    }
    size_t n;
    const char *s = st_column_str(col, i, &n);
    put_le32(out, (uint32_t)n);
    st_buf_append(out, s, n);
}

static void plain_bools(st_buf *out, const st_column *col)
{
    uint8_t acc = 0;
    int bits = 0;
    const uint8_t *v = st_column_bool(col);
    for (size_t i = 0; i < col->n_rows; i++) {
        if (!st_column_valid(col, i)) continue;
        acc |= (uint8_t)((v[i] & 1u) << bits);
        if (++bits == 8) {
            st_buf_append(out, &acc, 1);
            acc = 0;
            bits = 0;
        }
    }
    if (bits) st_buf_append(out, &acc, 1);
}

void st_pq_plain(st_buf *out, const st_column *col)
{
    if (col->type == ST_TYPE_BOOL) {
        plain_bools(out, col);
        return;
    }
    size_t w = st_type_width(col->type);
    if (w && col->null_count == 0) {
        st_buf_append(out, col->data, col->n_rows * w);
        return;
    }
    for (size_t i = 0; i < col->n_rows; i++)
        if (st_column_valid(col, i)) plain_value(out, col, i);
}

/* ---- dictionaries ---- */

static uint64_t value_hash(const st_column *col, size_t i)
{
    size_t w = st_type_width(col->type);
    if (w) {
        uint64_t x = 0;
        memcpy(&x, (const char *)col->data + i * w, w);
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        return x ^ (x >> 33);
    }
    size_t n;
    const char *s = st_column_str(col, i, &n);
    return st_hash64(0x5eed, s, n);
}

static bool value_eq(const st_column *col, size_t a, size_t b)
{
    size_t w = st_type_width(col->type);
    if (w) return !memcmp((const char *)col->data + a * w, (const char *)col->data + b * w, w);
    size_t na, nb;
    const char *sa = st_column_str(col, a, &na), *sb = st_column_str(col, b, &nb);
    return na == nb && !memcmp(sa, sb, na);
}

static st_status dict_reserve(st_pq_dict *d, size_t n_rows)
{
    size_t slots = 16;
    while (slots < n_rows * 2) slots *= 2;
    if (slots > d->cap_slots) {
        free(d->slots);
        d->slots = malloc(slots * sizeof *d->slots);
        d->cap_slots = d->slots ? slots : 0;
        if (!d->slots) return ST_ERR_NOMEM;
    }
    if (n_rows > d->cap_rows) {
        uint32_t *f = realloc(d->first_row, n_rows * sizeof *f);
        if (f) d->first_row = f;
        uint32_t *c = f ? realloc(d->codes, n_rows * sizeof *c) : NULL;
        if (!c) return ST_ERR_NOMEM;
        d->codes = c;
        d->cap_rows = n_rows;
    }
    memset(d->slots, 0, slots * sizeof *d->slots);
    return ST_OK;
}

bool st_pq_dict_build(st_pq_dict *d, const st_column *col, size_t max_entries, st_status *status)
{
    *status = ST_OK;
    d->n_entries = d->n_codes = 0;
    if (col->type == ST_TYPE_BOOL || col->n_rows == 0 || col->n_rows > UINT32_MAX) return false;
    if ((*status = dict_reserve(d, col->n_rows)) != ST_OK) return false;
    size_t slots = 16;
    while (slots < col->n_rows * 2) slots *= 2; /* same size dict_reserve cleared */
    size_t mask = slots - 1;
    for (size_t i = 0; i < col->n_rows; i++) {
        if (!st_column_valid(col, i)) continue;
        size_t h = (size_t)value_hash(col, i) & mask;
        uint32_t code;
        for (;;) {
            uint32_t e = d->slots[h];
            if (e == 0) {
                if (d->n_entries == max_entries) return false;
                code = (uint32_t)d->n_entries++;
                d->first_row[code] = (uint32_t)i;
                d->slots[h] = code + 1;
                break;
            }
            if (value_eq(col, d->first_row[e - 1], i)) {
                code = e - 1;
                break;
            }
            h = (h + 1) & mask;
        }
        d->codes[d->n_codes++] = code;
    }
    return d->n_entries > 0;
}

void st_pq_dict_plain(st_buf *out, const st_pq_dict *d, const st_column *col)
{
    for (size_t k = 0; k < d->n_entries; k++) plain_value(out, col, d->first_row[k]);
}

void st_pq_dict_free(st_pq_dict *d)
{
    if (!d) return;
    free(d->slots);
    free(d->first_row);
    free(d->codes);
    memset(d, 0, sizeof *d);
}
