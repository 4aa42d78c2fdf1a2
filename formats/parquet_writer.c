/*
 * parquet_writer.c: strata's writer of Apache Parquet files (parquet.h),
 * written from the public parquet-format specification (parquet.thrift
 * and the encodings document), not from any other implementation.
 *
 * File layout: "PAR1", then per row group and per column one column
 * chunk, then the FileMetaData (Thrift compact), its length (4 bytes,
 * little-endian) and "PAR1" again. A column chunk is at most two pages:
 * a DICTIONARY_PAGE (PLAIN entries) when dictionary encoding wins, and
 * one DATA_PAGE v1 whose body is [definition levels][values]: levels
 * only for OPTIONAL columns (RLE hybrid, bit width 1, behind a 4-byte
 * length), values PLAIN or RLE_DICTIONARY (one byte of bit width, then
 * the RLE hybrid of the codes). Both candidates are compressed and the
 * smaller one is kept, so a dictionary is written only where it pays.
 *
 * Invariants: the writer keeps one column's encodings in memory at a time
 * plus, per column chunk written, a few integers and its min/max bytes for
 * the footer (a strata chunk is 65,536 rows, so that is flat in rows).
 * Offsets are absolute file positions. Nothing depends on time, pid or
 * thread count: same rows, same bytes.
 */
#include "strata/parquet.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <zstd.h>

#include "parquet_internal.h"
#include "thrift_internal.h"

/* Longest string min/max kept in statistics; longer ones are left out. */
#define STATS_MAX_BYTES 1024

typedef struct chunk_rec {
    int64_t data_page_offset;
    int64_t dict_page_offset;  /* -1: no dictionary page */
    int64_t uncompressed_bytes, compressed_bytes;
    int64_t num_values, null_count;
    bool has_minmax;
    uint8_t *min, *max;        /* owned; PLAIN bytes of the statistics */
    size_t min_n, max_n;
} chunk_rec;

struct st_pq_writer {
    FILE *f;
    char *path, *tmp;
    uint64_t offset;            /* bytes written so far */
    st_pq_opts opts;
    st_field *fields;           /* owned copies (names, descriptions) */
    size_t n_fields;
    st_kv *kv;                  /* owned key/value metadata for the footer */
    size_t n_kv;
    chunk_rec *recs;            /* n_rg * n_fields */
    int64_t *rg_rows;
    size_t n_rg, cap_rg;
    size_t next_col;            /* column expected next in the open row group */
    uint32_t rg_n_rows;
    uint64_t total_rows;
    ZSTD_CCtx *zc;
    st_buf levels, plain, dict_page, dict_data, packed, hdr;
    uint32_t *bits;             /* definition levels scratch */
    size_t cap_bits;
    st_pq_dict dict;
};

/* ---- schema mapping ---- */

static int physical_type(st_type t)
{
    switch (t) {
    case ST_TYPE_BOOL: return ST_PQ_BOOLEAN;
    case ST_TYPE_I32: return ST_PQ_INT32;
    case ST_TYPE_I64: return ST_PQ_INT64;
    case ST_TYPE_F64: return ST_PQ_DOUBLE;
    default: return ST_PQ_BYTE_ARRAY;
    }
}

static void schema_leaf(st_tc_writer *tw, const st_field *f)
{
    st_tc_elem_struct_begin(tw);
    st_tc_i32(tw, 1, physical_type(f->type));
    st_tc_i32(tw, 3, f->nullable ? 1 : 0);
    st_tc_str(tw, 4, f->name);
    if (f->type == ST_TYPE_STR) st_tc_i32(tw, 6, 0); /* UTF8 */
    if (f->type == ST_TYPE_I32 || f->type == ST_TYPE_I64) st_tc_i32(tw, 6, f->type == ST_TYPE_I32 ? 17 : 18);
    if (f->type == ST_TYPE_STR) {
        st_tc_struct_begin(tw, 10);
        st_tc_struct_begin(tw, 1); /* StringType */
        st_tc_struct_end(tw);
        st_tc_struct_end(tw);
    } else if (f->type == ST_TYPE_I32 || f->type == ST_TYPE_I64) {
        st_tc_struct_begin(tw, 10);
        st_tc_struct_begin(tw, 10); /* IntType */
        st_tc_i8(tw, 1, f->type == ST_TYPE_I32 ? 32 : 64);
        st_tc_bool(tw, 2, true);
        st_tc_struct_end(tw);
        st_tc_struct_end(tw);
    }
    st_tc_struct_end(tw);
}

/* ---- lifecycle ---- */

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static bool add_kv(st_pq_writer *w, size_t *cap, char *key, char *value)
{
    if (!key || !value) {
        free(key);
        free(value);
        return false;
    }
    if (w->n_kv == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        st_kv *n = realloc(w->kv, nc * sizeof *n);
        if (!n) {
            free(key);
            free(value);
            return false;
        }
        w->kv = n;
        *cap = nc;
    }
    w->kv[w->n_kv++] = (st_kv){key, value};
    return true;
}

static char *join_prefix(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* The footer's key-value metadata: lineage, fingerprint, params, the
 * file's own pairs and one description per described column. */
static bool build_kv(st_pq_writer *w, const st_file_meta *m)
{
    size_t cap = 0;
    st_buf in;
    st_buf_init(&in);
    st_buf_puts(&in, "[");
    for (size_t i = 0; i < m->n_inputs; i++) {
        if (i) st_buf_puts(&in, ", ");
        st_buf_json_str(&in, m->inputs[i], strlen(m->inputs[i]));
    }
    st_buf_puts(&in, "]");
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, m->fingerprint);
    bool ok = st_buf_ok(&in) && add_kv(w, &cap, strdup("strata.layer"), dup_or_empty(m->layer)) &&
              add_kv(w, &cap, strdup("strata.table"), dup_or_empty(m->table)) &&
              add_kv(w, &cap, strdup("strata.inputs"), strdup(in.data)) &&
              add_kv(w, &cap, strdup("strata.fingerprint"), strdup(fp)) &&
              add_kv(w, &cap, strdup("strata.params"), dup_or_empty(m->params));
    st_buf_free(&in);
    for (size_t i = 0; ok && i < m->n_kv; i++)
        ok = add_kv(w, &cap, join_prefix("strata.meta.", m->kv[i].key, ""), dup_or_empty(m->kv[i].value));
    for (size_t j = 0; ok && j < w->n_fields; j++)
        if (w->fields[j].description && w->fields[j].description[0])
            ok = add_kv(w, &cap, join_prefix("strata.column.", w->fields[j].name, ".description"),
                        strdup(w->fields[j].description));
    return ok;
}

static void free_writer(st_pq_writer *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    for (size_t j = 0; j < w->n_fields; j++) {
        free((char *)w->fields[j].name);
        free((char *)w->fields[j].description);
    }
    free(w->fields);
    for (size_t i = 0; i < w->n_kv; i++) {
        free((char *)w->kv[i].key);
        free((char *)w->kv[i].value);
    }
    free(w->kv);
    for (size_t i = 0; i < w->n_rg * w->n_fields; i++) {
        free(w->recs[i].min);
        free(w->recs[i].max);
    }
    free(w->recs);
    free(w->rg_rows);
    ZSTD_freeCCtx(w->zc);
    st_buf *bufs[] = {&w->levels, &w->plain, &w->dict_page, &w->dict_data, &w->packed, &w->hdr};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) st_buf_free(bufs[i]);
    free(w->bits);
    st_pq_dict_free(&w->dict);
    free(w->path);
    free(w->tmp);
    free(w);
}

static st_status write_bytes(st_pq_writer *w, const void *p, size_t n, st_error *err)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return st_error_set(err, ST_ERR_IO, "writing %s: short write (disk full?)", w->tmp);
    w->offset += n;
    return ST_OK;
}

st_status st_pq_writer_open(st_pq_writer **out, const char *path, const st_field *fields, size_t n_fields,
                            const st_file_meta *meta, const st_pq_opts *opts, st_error *err)
{
    *out = NULL;
    st_status s = ST_OK;
    st_pq_writer *w = calloc(1, sizeof *w);
    if (!w) return st_error_set(err, ST_ERR_NOMEM, "parquet writer for %s: out of memory", path);
    if (opts) w->opts = *opts;
    if (w->opts.zstd_level == 0) w->opts.zstd_level = 3;
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 32);
    w->fields = calloc(n_fields ? n_fields : 1, sizeof *w->fields);
    w->zc = ZSTD_createCCtx();
    if (!w->path || !w->tmp || !w->fields || !w->zc) {
        s = st_error_set(err, ST_ERR_NOMEM, "parquet writer for %s: out of memory", path);
        goto done;
    }
    for (size_t j = 0; j < n_fields; j++, w->n_fields++) {
        w->fields[j] = fields[j];
        w->fields[j].name = strdup(fields[j].name);
        w->fields[j].description = fields[j].description ? strdup(fields[j].description) : NULL;
        if (!w->fields[j].name) {
            s = st_error_set(err, ST_ERR_NOMEM, "parquet writer for %s: out of memory", path);
            goto done;
        }
    }
    if (!build_kv(w, meta)) {
        s = st_error_set(err, ST_ERR_NOMEM, "parquet writer for %s: out of memory", path);
        goto done;
    }
    snprintf(w->tmp, strlen(path) + 32, "%s.tmp-%ld", path, (long)getpid());
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        s = st_error_set(err, ST_ERR_IO, "cannot create %s", w->tmp);
        goto done;
    }
    s = write_bytes(w, "PAR1", 4, err);
done:
    if (s != ST_OK) {
        if (w && w->f) unlink(w->tmp);
        free_writer(w);
        return s;
    }
    *out = w;
    return ST_OK;
}

void st_pq_writer_abort(st_pq_writer *w)
{
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->tmp);
    }
    free_writer(w);
}

/* ---- row groups and column chunks ---- */

st_status st_pq_writer_row_group(st_pq_writer *w, uint32_t n_rows, st_error *err)
{
    if (w->next_col != 0 && w->next_col != w->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "%s: row group %zu has %zu of %zu columns", w->path, w->n_rg - 1,
                            w->next_col, w->n_fields);
    if (n_rows == 0) return st_error_set(err, ST_ERR_INVALID, "%s: empty row group", w->path);
    if (w->n_rg == w->cap_rg) {
        size_t nc = w->cap_rg ? w->cap_rg * 2 : 8, bytes;
        if (!st_size_mul(nc, w->n_fields ? w->n_fields : 1, &bytes) || !st_size_mul(bytes, sizeof(chunk_rec), &bytes))
            return st_error_set(err, ST_ERR_NOMEM, "%s: too many row groups", w->path);
        chunk_rec *r = realloc(w->recs, bytes);
        if (r) w->recs = r;
        int64_t *g = r ? realloc(w->rg_rows, nc * sizeof *g) : NULL;
        if (!g) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
        w->rg_rows = g;
        w->cap_rg = nc;
    }
    memset(&w->recs[w->n_rg * w->n_fields], 0, w->n_fields * sizeof *w->recs);
    w->rg_rows[w->n_rg++] = n_rows;
    w->rg_n_rows = n_rows;
    w->next_col = 0;
    w->total_rows += n_rows;
    return ST_OK;
}

static bool keep_bytes(uint8_t **dst, size_t *dst_n, const void *p, size_t n)
{
    free(*dst);
    *dst = malloc(n ? n : 1);
    if (!*dst) return false;
    memcpy(*dst, p, n);
    *dst_n = n;
    return true;
}

/* Min/max of fixed-width values as int64 or double; strings by memcmp. */
static bool stats_minmax(chunk_rec *r, const st_column *c)
{
    size_t lo = SIZE_MAX, hi = SIZE_MAX;
    for (size_t i = 0; i < c->n_rows; i++) {
        if (!st_column_valid(c, i)) continue;
        if (c->type == ST_TYPE_F64 && isnan(st_column_f64(c)[i])) continue;
        if (lo == SIZE_MAX) {
            lo = hi = i;
            continue;
        }
        int lt, gt;
        switch (c->type) {
        case ST_TYPE_BOOL: lt = st_column_bool(c)[i] < st_column_bool(c)[lo]; gt = st_column_bool(c)[i] > st_column_bool(c)[hi]; break;
        case ST_TYPE_I32: lt = st_column_i32(c)[i] < st_column_i32(c)[lo]; gt = st_column_i32(c)[i] > st_column_i32(c)[hi]; break;
        case ST_TYPE_I64: lt = st_column_i64(c)[i] < st_column_i64(c)[lo]; gt = st_column_i64(c)[i] > st_column_i64(c)[hi]; break;
        case ST_TYPE_F64: lt = st_column_f64(c)[i] < st_column_f64(c)[lo]; gt = st_column_f64(c)[i] > st_column_f64(c)[hi]; break;
        default: {
            size_t n, nl, nh;
            const char *s = st_column_str(c, i, &n), *sl = st_column_str(c, lo, &nl), *sh = st_column_str(c, hi, &nh);
            int cl = memcmp(s, sl, n < nl ? n : nl), ch = memcmp(s, sh, n < nh ? n : nh);
            lt = cl < 0 || (cl == 0 && n < nl);
            gt = ch > 0 || (ch == 0 && n > nh);
        }
        }
        if (lt) lo = i;
        if (gt) hi = i;
    }
    if (lo == SIZE_MAX) return true; /* no value to bound: no min/max */
    size_t w = st_type_width(c->type), nl, nh;
    const void *pl, *ph;
    double dl, dh;
    if (c->type == ST_TYPE_F64) {
        /* the specification's rule for signed zeros: min -0.0, max +0.0 */
        dl = st_column_f64(c)[lo] == 0 ? -0.0 : st_column_f64(c)[lo];
        dh = st_column_f64(c)[hi] == 0 ? 0.0 : st_column_f64(c)[hi];
        pl = &dl, ph = &dh, nl = nh = 8;
    } else if (w) {
        pl = (const char *)c->data + lo * w, ph = (const char *)c->data + hi * w, nl = nh = w;
    } else {
        pl = st_column_str(c, lo, &nl), ph = st_column_str(c, hi, &nh);
        if (nl > STATS_MAX_BYTES || nh > STATS_MAX_BYTES) return true;
    }
    r->has_minmax = true;
    return keep_bytes(&r->min, &r->min_n, pl, nl) && keep_bytes(&r->max, &r->max_n, ph, nh);
}

/* Compresses src into dst (replacing it), or copies it when zstd is off. */
static st_status compress_page(st_pq_writer *w, const st_buf *src, st_buf *dst, st_error *err)
{
    st_buf_reset(dst);
    if (w->opts.zstd_level < 0) {
        st_buf_append(dst, src->data, src->len);
        return st_buf_ok(dst) ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    }
    size_t bound = ZSTD_compressBound(src->len);
    if (dst->cap < bound + 1) {
        char *n = realloc(dst->data, bound + 1);
        if (!n) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
        dst->data = n;
        dst->cap = bound + 1;
    }
    size_t z = ZSTD_compressCCtx(w->zc, dst->data, bound, src->data, src->len, w->opts.zstd_level);
    if (ZSTD_isError(z)) return st_error_set(err, ST_ERR_INTERNAL, "%s: zstd: %s", w->path, ZSTD_getErrorName(z));
    dst->len = z;
    return ST_OK;
}

/* Writes one page: its header, then the (compressed) body. */
static st_status write_page(st_pq_writer *w, chunk_rec *r, int page_type, size_t raw_len, const st_buf *body,
                            int32_t num_values, int encoding, st_error *err)
{
    if (raw_len > INT32_MAX || body->len > INT32_MAX)
        return st_error_set(err, ST_ERR_INVALID, "%s: a page of %zu bytes is over Parquet's 2 GiB limit", w->path, raw_len);
    st_buf_reset(&w->hdr);
    st_tc_writer tw;
    st_tc_writer_init(&tw, &w->hdr);
    st_tc_i32(&tw, 1, page_type);
    st_tc_i32(&tw, 2, (int32_t)raw_len);
    st_tc_i32(&tw, 3, (int32_t)body->len);
    st_tc_struct_begin(&tw, page_type == ST_PQ_PAGE_DICTIONARY ? 7 : 5);
    st_tc_i32(&tw, 1, num_values);
    st_tc_i32(&tw, 2, encoding);
    if (page_type == ST_PQ_PAGE_DATA) {
        st_tc_i32(&tw, 3, ST_PQ_ENC_RLE);
        st_tc_i32(&tw, 4, ST_PQ_ENC_RLE);
    }
    st_tc_struct_end(&tw);
    st_tc_stop(&tw);
    if (!st_buf_ok(&w->hdr)) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    if (page_type == ST_PQ_PAGE_DICTIONARY) r->dict_page_offset = (int64_t)w->offset;
    else r->data_page_offset = (int64_t)w->offset;
    r->uncompressed_bytes += (int64_t)(w->hdr.len + raw_len);
    r->compressed_bytes += (int64_t)(w->hdr.len + body->len);
    ST_TRY(write_bytes(w, w->hdr.data, w->hdr.len, err));
    return write_bytes(w, body->data, body->len, err);
}

/* Definition levels (nullable columns): 4-byte length + RLE hybrid. */
static st_status encode_levels(st_pq_writer *w, const st_column *c, st_error *err)
{
    st_buf_reset(&w->levels);
    if (!w->fields[w->next_col].nullable) return ST_OK;
    if (c->n_rows > w->cap_bits) {
        uint32_t *b = realloc(w->bits, c->n_rows * sizeof *b);
        if (!b) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
        w->bits = b;
        w->cap_bits = c->n_rows;
    }
    for (size_t i = 0; i < c->n_rows; i++) w->bits[i] = st_column_valid(c, i);
    st_buf_append(&w->levels, "\0\0\0\0", 4);
    st_pq_rle_hybrid(&w->levels, w->bits, c->n_rows, 1);
    if (!st_buf_ok(&w->levels)) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    uint32_t n = (uint32_t)(w->levels.len - 4);
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    memcpy(w->levels.data, le, 4);
    return ST_OK;
}

/* Tries the dictionary: on success w->dict_page holds the compressed
 * dictionary page, w->dict_data the compressed data page, and *raw_* their
 * uncompressed sizes. *use is false when no dictionary applies. */
static st_status try_dict(st_pq_writer *w, const st_column *c, bool *use, size_t *raw_dict, size_t *raw_data,
                          st_error *err)
{
    *use = false;
    size_t n_valid = c->n_rows - c->null_count;
    st_status s = ST_OK;
    if (w->opts.no_dict || n_valid < 2 || !st_pq_dict_build(&w->dict, c, n_valid - n_valid / 4, &s)) {
        if (s != ST_OK) return st_error_set(err, s, "%s: out of memory", w->path);
        return ST_OK;
    }
    st_buf_reset(&w->packed);
    st_pq_dict_plain(&w->packed, &w->dict, c);
    *raw_dict = w->packed.len;
    ST_TRY(compress_page(w, &w->packed, &w->dict_page, err));
    st_buf_reset(&w->packed);
    st_buf_append(&w->packed, w->levels.data, w->levels.len);
    uint8_t bw = (uint8_t)st_pq_bit_width((uint32_t)(w->dict.n_entries - 1));
    st_buf_append(&w->packed, &bw, 1);
    st_pq_rle_hybrid(&w->packed, w->dict.codes, w->dict.n_codes, bw);
    if (!st_buf_ok(&w->packed)) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    *raw_data = w->packed.len;
    ST_TRY(compress_page(w, &w->packed, &w->dict_data, err));
    *use = true;
    return ST_OK;
}

st_status st_pq_writer_column(st_pq_writer *w, const st_column *c, st_error *err)
{
    if (w->n_rg == 0 || w->next_col >= w->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "%s: column written outside a row group", w->path);
    const st_field *f = &w->fields[w->next_col];
    if (c->type != f->type || c->n_rows != w->rg_n_rows || (!f->nullable && c->null_count))
        return st_error_set(err, ST_ERR_INVALID, "%s: column %s of row group %zu: wrong type, row count or NULLs",
                            w->path, f->name, w->n_rg - 1);
    chunk_rec *r = &w->recs[(w->n_rg - 1) * w->n_fields + w->next_col];
    r->dict_page_offset = -1;
    r->num_values = (int64_t)c->n_rows;
    r->null_count = (int64_t)c->null_count;
    if (!stats_minmax(r, c)) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    ST_TRY(encode_levels(w, c, err));
    st_buf_reset(&w->packed);
    st_buf_append(&w->packed, w->levels.data, w->levels.len);
    st_pq_plain(&w->packed, c);
    if (!st_buf_ok(&w->packed)) return st_error_set(err, ST_ERR_NOMEM, "%s: out of memory", w->path);
    size_t raw_plain = w->packed.len;
    ST_TRY(compress_page(w, &w->packed, &w->plain, err));
    bool use = false;
    size_t raw_dict = 0, raw_data = 0;
    ST_TRY(try_dict(w, c, &use, &raw_dict, &raw_data, err));
    if (use && w->dict_page.len + w->dict_data.len < w->plain.len) {
        ST_TRY(write_page(w, r, ST_PQ_PAGE_DICTIONARY, raw_dict, &w->dict_page, (int32_t)w->dict.n_entries,
                          ST_PQ_ENC_PLAIN, err));
        ST_TRY(write_page(w, r, ST_PQ_PAGE_DATA, raw_data, &w->dict_data, (int32_t)c->n_rows,
                          ST_PQ_ENC_RLE_DICTIONARY, err));
    } else {
        ST_TRY(write_page(w, r, ST_PQ_PAGE_DATA, raw_plain, &w->plain, (int32_t)c->n_rows, ST_PQ_ENC_PLAIN, err));
    }
    w->next_col++;
    return ST_OK;
}

/* ---- the footer ---- */

static void column_meta(st_tc_writer *tw, const st_pq_writer *w, const chunk_rec *r, size_t j)
{
    const st_field *f = &w->fields[j];
    bool dict = r->dict_page_offset >= 0;
    st_tc_struct_begin(tw, 3); /* ColumnMetaData */
    st_tc_i32(tw, 1, physical_type(f->type));
    st_tc_list_begin(tw, 2, ST_TC_I32, dict ? 3 : 2);
    st_tc_elem_i32(tw, ST_PQ_ENC_PLAIN);
    st_tc_elem_i32(tw, ST_PQ_ENC_RLE);
    if (dict) st_tc_elem_i32(tw, ST_PQ_ENC_RLE_DICTIONARY);
    st_tc_list_begin(tw, 3, ST_TC_BINARY, 1);
    st_tc_elem_bin(tw, f->name, strlen(f->name));
    st_tc_i32(tw, 4, w->opts.zstd_level < 0 ? ST_PQ_CODEC_UNCOMPRESSED : ST_PQ_CODEC_ZSTD);
    st_tc_i64(tw, 5, r->num_values);
    st_tc_i64(tw, 6, r->uncompressed_bytes);
    st_tc_i64(tw, 7, r->compressed_bytes);
    st_tc_i64(tw, 9, r->data_page_offset);
    if (dict) st_tc_i64(tw, 11, r->dict_page_offset);
    st_tc_struct_begin(tw, 12); /* Statistics */
    st_tc_i64(tw, 3, r->null_count);
    if (r->has_minmax) {
        st_tc_bin(tw, 5, r->max, r->max_n);
        st_tc_bin(tw, 6, r->min, r->min_n);
    }
    st_tc_struct_end(tw);
    st_tc_struct_end(tw);
}

static void file_metadata(st_tc_writer *tw, const st_pq_writer *w)
{
    st_tc_i32(tw, 1, 1);
    st_tc_list_begin(tw, 2, ST_TC_STRUCT, w->n_fields + 1);
    st_tc_elem_struct_begin(tw);
    st_tc_str(tw, 4, "schema");
    st_tc_i32(tw, 5, (int32_t)w->n_fields);
    st_tc_struct_end(tw);
    for (size_t j = 0; j < w->n_fields; j++) schema_leaf(tw, &w->fields[j]);
    st_tc_i64(tw, 3, (int64_t)w->total_rows);
    st_tc_list_begin(tw, 4, ST_TC_STRUCT, w->n_rg);
    for (size_t g = 0; g < w->n_rg; g++) {
        const chunk_rec *recs = &w->recs[g * w->n_fields];
        int64_t total = 0, comp = 0;
        for (size_t j = 0; j < w->n_fields; j++) total += recs[j].uncompressed_bytes, comp += recs[j].compressed_bytes;
        st_tc_elem_struct_begin(tw); /* RowGroup */
        st_tc_list_begin(tw, 1, ST_TC_STRUCT, w->n_fields);
        for (size_t j = 0; j < w->n_fields; j++) {
            st_tc_elem_struct_begin(tw); /* ColumnChunk */
            st_tc_i64(tw, 2, recs[j].dict_page_offset >= 0 ? recs[j].dict_page_offset : recs[j].data_page_offset);
            column_meta(tw, w, &recs[j], j);
            st_tc_struct_end(tw);
        }
        st_tc_i64(tw, 2, total);
        st_tc_i64(tw, 3, w->rg_rows[g]);
        st_tc_i64(tw, 5, w->n_fields ? (recs[0].dict_page_offset >= 0 ? recs[0].dict_page_offset : recs[0].data_page_offset) : 4);
        st_tc_i64(tw, 6, comp);
        st_tc_struct_end(tw);
    }
    st_tc_list_begin(tw, 5, ST_TC_STRUCT, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        st_tc_elem_struct_begin(tw);
        st_tc_str(tw, 1, w->kv[i].key);
        st_tc_str(tw, 2, w->kv[i].value);
        st_tc_struct_end(tw);
    }
    st_tc_str(tw, 6, "strata");
    st_tc_list_begin(tw, 7, ST_TC_STRUCT, w->n_fields); /* ColumnOrder: TYPE_ORDER for every column */
    for (size_t j = 0; j < w->n_fields; j++) {
        st_tc_elem_struct_begin(tw);
        st_tc_struct_begin(tw, 1);
        st_tc_struct_end(tw);
        st_tc_struct_end(tw);
    }
    st_tc_stop(tw);
}

static st_status finish(st_pq_writer *w, st_error *err)
{
    if (w->n_rg && w->next_col != w->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "%s: last row group has %zu of %zu columns", w->path, w->next_col,
                            w->n_fields);
    st_buf_reset(&w->hdr);
    st_tc_writer tw;
    st_tc_writer_init(&tw, &w->hdr);
    file_metadata(&tw, w);
    if (!st_buf_ok(&w->hdr) || tw.bad || w->hdr.len > UINT32_MAX)
        return st_error_set(err, ST_ERR_NOMEM, "%s: footer: out of memory", w->path);
    uint32_t n = (uint32_t)w->hdr.len;
    uint8_t tail[8] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24), 'P', 'A', 'R', '1'};
    ST_TRY(write_bytes(w, w->hdr.data, w->hdr.len, err));
    ST_TRY(write_bytes(w, tail, 8, err));
    if (fflush(w->f) != 0 || (!w->opts.no_fsync && fsync(fileno(w->f)) != 0))
        return st_error_set(err, ST_ERR_IO, "writing %s: flush failed (disk full?)", w->tmp);
    int rc = fclose(w->f);
    w->f = NULL;
    if (rc != 0) return st_error_set(err, ST_ERR_IO, "closing %s failed", w->tmp);
    if (rename(w->tmp, w->path) != 0) return st_error_set(err, ST_ERR_IO, "cannot rename %s to %s", w->tmp, w->path);
    return ST_OK;
}

st_status st_pq_writer_close(st_pq_writer *w, st_error *err)
{
    st_status s = finish(w, err);
    if (s != ST_OK) {
        if (w->f) fclose(w->f);
        w->f = NULL;
        unlink(w->tmp);
    }
    free_writer(w);
    return s;
}

/* ---- a layer file to Parquet ---- */

st_status st_pq_export_file(const char *src, const char *dst, const st_pq_opts *opts, st_error *err)
{
    st_reader *r = NULL;
    st_pq_writer *w = NULL;
    st_column col;
    st_column_init(&col, ST_TYPE_I64);
    st_status s = st_reader_open(&r, src, err);
    if (s != ST_OK) goto done;
    size_t nf = st_reader_n_fields(r);
    st_field *fields = calloc(nf ? nf : 1, sizeof *fields);
    if (!fields) {
        s = st_error_set(err, ST_ERR_NOMEM, "exporting %s: out of memory", src);
        goto done;
    }
    for (size_t j = 0; j < nf; j++) fields[j] = *st_reader_field(r, j);
    s = st_pq_writer_open(&w, dst, fields, nf, st_reader_meta(r), opts, err);
    free(fields);
    for (size_t c = 0; s == ST_OK && c < st_reader_n_chunks(r); c++) {
        uint32_t rows = st_reader_chunk_rows(r, c);
        if (rows == 0) continue;
        s = st_pq_writer_row_group(w, rows, err);
        for (size_t j = 0; s == ST_OK && j < nf; j++) {
            st_column_free(&col);
            st_column_init(&col, st_reader_field(r, j)->type);
            s = st_reader_read_block(r, c, j, &col, err);
            if (s == ST_OK) s = st_pq_writer_column(w, &col, err);
        }
    }
    if (s == ST_OK) {
        s = st_pq_writer_close(w, err);
        w = NULL;
    }
done:
    st_pq_writer_abort(w);
    st_column_free(&col);
    st_reader_close(r);
    return s;
}
