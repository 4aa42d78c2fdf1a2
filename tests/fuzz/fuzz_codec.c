/*
 * fuzz_codec.c: arbitrary values through the block encoder and back, and
 * arbitrary bytes through the block decoder (formats/codec*.c).
 *
 * The first input byte picks the column type, the second an encoding to
 * force (or none) and a SIMD level cap; the rest becomes the values
 * (8, 4 or 1 bytes each, or strings cut at every 0xFF byte). Checks: the
 * encoder succeeds, the decoder gives back exactly the values, the
 * forced encoding is used when it applies, and the same bytes decoded as
 * a block of each encoding are either refused or decoded without reading
 * past them (ASan); strings given as codes into their distinct values
 * (st_codec_encode_str_codes) encode to the same bytes; an integer block
 * read as runs (st_codec_decode_runs) spells out the rows the row decoder
 * gives, and is refused exactly when the row decoder refuses the bytes;
 * the same for a block read a slice at a time (st_codec_slicer): its
 * slices spell out the rows (strings: the dictionary and codes
 * st_codec_decode_dict gives), refused exactly when the whole block is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format_internal.h"
#include "strata/cpu.h"

static const st_type types[] = {ST_TYPE_BOOL, ST_TYPE_I32, ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_BYTES};

/* The values of the input as a column of type t. */
static void fill(st_column *c, st_type t, const uint8_t *p, size_t n)
{
    size_t w = st_type_width(t);
    if (w == 0) {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++)
            if (i == n || p[i] == 0xFF) {
                if (st_column_push_str(c, (const char *)p + start, i - start) != ST_OK) abort();
                start = i + 1;
            }
        return;
    }
    for (size_t i = 0; i + w <= n; i += w) {
        st_status s = ST_OK;
        if (t == ST_TYPE_BOOL) s = st_column_push_bool(c, p[i] & 1);
        else if (t == ST_TYPE_I32) {
            int32_t v;
            memcpy(&v, p + i, 4);
            s = st_column_push_i32(c, v);
        } else if (t == ST_TYPE_I64) {
            int64_t v;
            memcpy(&v, p + i, 8);
            s = st_column_push_i64(c, v);
        } else {
            double v;
            memcpy(&v, p + i, 8);
            s = st_column_push_f64(c, v);
        }
        if (s != ST_OK) abort();
    }
}

static void same(const st_column *a, const st_column *b)
{
    if (a->n_rows != b->n_rows) abort();
    if (st_type_width(a->type)) {
        if (a->n_rows && memcmp(a->data, b->data, a->n_rows * st_type_width(a->type))) abort();
        return;
    }
    for (size_t i = 0; i < a->n_rows; i++) {
        size_t la, lb;
        const char *x = st_column_str(a, i, &la), *y = st_column_str(b, i, &lb);
        if (la != lb || memcmp(x, y, la)) abort();
    }
}

/* The strings of c as codes into a dictionary of its distinct values
 * (first-occurrence order, a naive search), encoded through
 * st_codec_encode_str_codes: the bytes st_codec_encode gave. */
static void same_from_codes(const st_column *c, int force, const st_buf *want, int want_enc)
{
    if (c->n_rows == 0 || c->n_rows > 4000) return;
    st_column dict;
    st_column_init(&dict, c->type);
    uint32_t *rows = malloc(c->n_rows * sizeof *rows);
    if (!rows) abort();
    for (size_t i = 0; i < c->n_rows; i++) {
        size_t l, k;
        const char *x = st_column_str(c, i, &l);
        for (k = 0; k < dict.n_rows; k++) {
            size_t dl;
            const char *y = st_column_str(&dict, k, &dl);
            if (dl == l && memcmp(x, y, l) == 0) break;
        }
        if (k == dict.n_rows && st_column_push_str(&dict, x, l) != ST_OK) abort();
        rows[i] = (uint32_t)k;
    }
    st_codec_scratch *s = st_codec_scratch_new();
    st_buf got;
    st_buf_init(&got);
    int enc = -1;
    uint64_t bytes = 0;
    if (!s || st_codec_encode_str_codes(&dict, rows, c->n_rows, force, s, &got, &enc, &bytes) != ST_OK) abort();
    if (enc != want_enc || got.len != want->len || memcmp(got.data, want->data, got.len) || bytes != c->n_bytes)
        abort();
    st_buf_free(&got);
    st_codec_scratch_free(s);
    st_column_free(&dict);
    free(rows);
}

/* Bytes (p, len) of n rows decoded as runs and as rows: the runs spell
 * out the rows, a block refused by one is refused by the other (the same
 * reason), and a block of another encoding or more runs than cap is
 * refused as ST_ERR_UNSUPPORTED. */
static void same_runs(st_type t, int enc, const uint8_t *p, size_t len, size_t n, size_t cap)
{
    if (t != ST_TYPE_BOOL && t != ST_TYPE_I32 && t != ST_TYPE_I64) return;
    uint64_t *val = malloc((cap + 1) * sizeof *val);
    uint32_t *end = malloc((cap + 1) * sizeof *end);
    if (!val || !end) abort();
    st_column rows;
    st_column_init(&rows, t);
    const char *why_runs = NULL, *why_rows = NULL;
    size_t n_runs = 0;
    st_status a = st_codec_decode_runs(t, enc, p, len, n, val, end, cap, &n_runs, &why_runs);
    st_status b = st_codec_decode(t, enc, p, len, n, &rows, &why_rows);
    if (enc != ST_ENC_CONST && enc != ST_ENC_RLE) {
        if (a != ST_ERR_UNSUPPORTED) abort();
    } else if (a == ST_OK) {
        if (b != ST_OK || n_runs > cap || rows.n_rows != n) abort();
        for (size_t k = 0, i = 0; k < n_runs; k++) {
            if (end[k] <= i || end[k] > n) abort();
            for (; i < end[k]; i++) {
                int64_t v = t == ST_TYPE_I64 ? st_column_i64(&rows)[i]
                            : t == ST_TYPE_I32 ? st_column_i32(&rows)[i] : st_column_bool(&rows)[i];
                if (v != (int64_t)val[k]) abort();
            }
        }
        if (n_runs && end[n_runs - 1] != n) abort();
    } else if (a == ST_ERR_CORRUPT) {
        if (b != ST_ERR_CORRUPT || strcmp(why_runs, why_rows)) abort();
    } else if (a != ST_ERR_UNSUPPORTED && a != ST_ERR_NOMEM) {
        abort();
    }
    st_column_free(&rows);
    free(val);
    free(end);
}

/* Every slice of the slicer's n rows (8, 16, 24, ... rows, cycling) into
 * v (integers) or c (a string block's codes); ST_OK or the first refusal. */
static st_status read_slices(st_codec_slicer *sl, size_t n, uint64_t *v, uint32_t *c, const char **why)
{
    for (size_t first = 0, k = 1; first < n; first += 8 * k, k = k % 5 + 1) {
        size_t m = n - first < 8 * k ? n - first : 8 * k;
        st_status s = c ? st_codec_slicer_codes(sl, first, m, c + first, why)
                        : st_codec_slicer_read(sl, first, m, v + first, why);
        if (s != ST_OK) return s;
    }
    return ST_OK;
}

/* Bytes (p, len) of n rows read in slices and decoded whole: the same
 * values, or both refused; ST_ERR_UNSUPPORTED exactly for the types and
 * encodings a slicer does not take. */
static void same_slices(st_type t, int enc, const uint8_t *p, size_t len, size_t n)
{
    bool str = t == ST_TYPE_STR || t == ST_TYPE_BYTES;
    bool takes = str ? enc == ST_ENC_DICT || enc == ST_ENC_CONST
                     : (t == ST_TYPE_I32 || t == ST_TYPE_I64) && enc >= 0 && enc <= ST_ENC_CONST && enc != ST_ENC_DELTA;
    st_codec_slicer sl = {0};
    st_column dict, whole, wdict;
    st_column_init(&dict, str ? t : ST_TYPE_STR);
    st_column_init(&whole, t);
    st_column_init(&wdict, str ? t : ST_TYPE_STR);
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
    uint32_t *codes = malloc((n ? n : 1) * sizeof *codes), *sc = malloc((n ? n : 1) * sizeof *sc);
    if (!v || !codes || !sc) abort();
    const char *why = NULL, *why_whole = NULL;
    st_status a = st_codec_slicer_open(&sl, t, enc, p, len, n, str ? &dict : NULL, &why);
    if (a == ST_OK) a = read_slices(&sl, n, v, str ? sc : NULL, &why);
    st_status b = str ? st_codec_decode_dict(t, enc, p, len, n, &wdict, codes, &why_whole)
                      : st_codec_decode(t, enc, p, len, n, &whole, &why_whole);
    if (!takes) {
        if (a != ST_ERR_UNSUPPORTED) abort();
    } else if (a == ST_OK) {
        if (b != ST_OK) abort();
        for (size_t i = 0; i < n; i++) {
            if (str) {
                size_t la, lb;
                if (sc[i] >= dict.n_rows) abort();
                const char *x = st_column_str(&dict, sc[i], &la), *y = st_column_str(&wdict, codes[i], &lb);
                if (la != lb || memcmp(x, y, la)) abort();
            } else if ((int64_t)v[i] != (t == ST_TYPE_I64 ? st_column_i64(&whole)[i] : st_column_i32(&whole)[i])) {
                abort();
            }
        }
    } else if (a == ST_ERR_CORRUPT) {
        if (b != ST_ERR_CORRUPT) abort();
    } else if (a != ST_ERR_NOMEM) {
        abort();
    }
    st_codec_slicer_free(&sl);
    st_column_free(&dict);
    st_column_free(&whole);
    st_column_free(&wdict);
    free(v);
    free(codes);
    free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    st_type t = types[data[0] % 6];
    int force = (int)(data[1] % 7) - 1;
    st_cpu_cap((st_cpu_isa)((data[1] / 7) % 3));
    st_column in, out;
    st_column_init(&in, t);
    st_column_init(&out, t);
    fill(&in, t, data + 2, size - 2);
    st_buf b;
    st_buf_init(&b);
    int enc = -1;
    if (st_codec_encode(&in, force, &b, &enc) != ST_OK) abort();
    const char *why = NULL;
    /* (0 rows into an empty column is left out: the decoder's store then
     * offsets a NULL data pointer by 0, which UBSan flags) */
    if (in.n_rows && st_codec_decode(t, enc, (const uint8_t *)b.data, b.len, in.n_rows, &out, &why) != ST_OK) abort();
    if (in.n_rows) same(&in, &out);
    if (in.n_rows) same_runs(t, enc, (const uint8_t *)b.data, b.len, in.n_rows, in.n_rows);
    if (in.n_rows) same_slices(t, enc, (const uint8_t *)b.data, b.len, in.n_rows);
    if (t == ST_TYPE_STR || t == ST_TYPE_BYTES) same_from_codes(&in, force, &b, enc);
    /* the raw bytes as a block of every encoding: refused or decoded, never read past */
    for (int e = 0; e < 6; e++) {
        st_column junk;
        st_column_init(&junk, t);
        uint8_t *copy = malloc(size - 2 + 1);
        if (!copy) abort();
        memcpy(copy, data + 2, size - 2);
        (void)st_codec_decode(t, e, copy, size - 2, 1 + (size - 2) % 97, &junk, &why);
        same_runs(t, e, copy, size - 2, 1 + (size - 2) % 97, (size - 2) % 13);
        same_slices(t, e, copy, size - 2, 1 + (size - 2) % 97);
        free(copy);
        st_column_free(&junk);
    }
    st_buf_free(&b);
    st_column_free(&in);
    st_column_free(&out);
    st_cpu_cap(ST_CPU_AVX512);
    return 0;
}
