/*
 * parquet_read.c: a reader of Parquet footers and page headers
 * (parquet.h), for the tests that read back what strata wrote and for
 * tools that check a file. It parses FileMetaData with the Thrift compact
 * decoder of thrift_compact.c and keeps only what checking needs: schema,
 * row groups, column chunk metadata with statistics, key-value metadata.
 *
 * Untrusted bytes: every count is checked by the decoder against the bytes
 * left, arrays are sized from those checked counts with overflow checks,
 * every offset and size taken from the footer is checked against the file
 * before a page is looked at, and zstd pages are decompressed into a
 * buffer of their stated size only (which is itself bounded by the file:
 * a page claiming more than 64x its stored size plus 64 KiB is refused).
 * Strings and statistics are borrowed pointers into the caller's buffer.
 */
#include "strata/parquet.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "thrift_internal.h"

static st_status corrupt(st_error *err, const char *what) { return st_error_set(err, ST_ERR_CORRUPT, "parquet: %s", what); }

st_status st_pq_find_footer(const uint8_t *buf, size_t len, st_pq_bytes *footer, st_error *err)
{
    if (len < 12 || memcmp(buf, "PAR1", 4) || memcmp(buf + len - 4, "PAR1", 4))
        return corrupt(err, "no PAR1 magic at both ends");
    const uint8_t *t = buf + len - 8;
    uint32_t n = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (n > len - 12) return corrupt(err, "footer length beyond the file");
    footer->p = buf + len - 8 - n;
    footer->n = n;
    return ST_OK;
}

static st_pq_bytes read_bytes(st_tc_reader *r)
{
    st_pq_bytes b;
    b.p = st_tc_read_bin(r, &b.n);
    return b;
}

static void read_stats(st_tc_reader *r, st_pq_stats *s)
{
    uint8_t t;
    int16_t id;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        if (id == 3 && t == ST_TC_I64) s->has_null_count = true, s->null_count = st_tc_read_int_t(r, t);
        else if (id == 6 && t == ST_TC_BINARY) s->has_min = true, s->min = read_bytes(r);
        else if (id == 5 && t == ST_TC_BINARY) s->has_max = true, s->max = read_bytes(r);
        else st_tc_skip(r, t);
    }
    st_tc_leave(r);
}

static void read_encodings(st_tc_reader *r, st_pq_chunk_meta *c)
{
    uint8_t elem;
    size_t n;
    if (!st_tc_read_list(r, &elem, &n)) return;
    for (size_t i = 0; i < n && !r->bad; i++) {
        int64_t e = st_tc_read_int_t(r, elem);
        if (e >= 0 && e < 32) c->encodings |= 1u << e;
    }
}

static void read_column_meta(st_tc_reader *r, st_pq_chunk_meta *c)
{
    uint8_t t;
    int16_t id;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        switch (id) {
        case 1: c->type = (int)st_tc_read_int_t(r, t); break;
        case 2: if (t == ST_TC_LIST) read_encodings(r, c); else st_tc_skip(r, t); break;
        case 4: c->codec = (int)st_tc_read_int_t(r, t); break;
        case 5: c->num_values = st_tc_read_int_t(r, t); break;
        case 6: c->uncompressed_bytes = st_tc_read_int_t(r, t); break;
        case 7: c->compressed_bytes = st_tc_read_int_t(r, t); break;
        case 9: c->data_page_offset = st_tc_read_int_t(r, t); break;
        case 11: c->dictionary_page_offset = st_tc_read_int_t(r, t); break;
        case 12: if (t == ST_TC_STRUCT) read_stats(r, &c->stats); else st_tc_skip(r, t); break;
        default: st_tc_skip(r, t);
        }
    }
    st_tc_leave(r);
}

static void read_int_type(st_tc_reader *r, st_pq_schema_elem *e)
{
    uint8_t t;
    int16_t id;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        if (id == 1 && t == ST_TC_I8) e->int_bits = (int)st_tc_read_int_t(r, t);
        else if (id == 2 && (t == ST_TC_TRUE || t == ST_TC_FALSE)) e->int_signed = t == ST_TC_TRUE;
        else st_tc_skip(r, t);
    }
    st_tc_leave(r);
}

static void read_logical(st_tc_reader *r, st_pq_schema_elem *e)
{
    uint8_t t;
    int16_t id;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        if (t != ST_TC_STRUCT) {
            st_tc_skip(r, t);
            continue;
        }
        e->logical = id;
        if (id == 10) read_int_type(r, e);
        else st_tc_skip(r, t);
    }
    st_tc_leave(r);
}

static void read_schema_elem(st_tc_reader *r, st_pq_schema_elem *e)
{
    uint8_t t;
    int16_t id;
    *e = (st_pq_schema_elem){.type = -1, .repetition = -1, .converted = -1, .num_children = -1};
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        switch (id) {
        case 1: e->type = (int)st_tc_read_int_t(r, t); break;
        case 3: e->repetition = (int)st_tc_read_int_t(r, t); break;
        case 4: if (t == ST_TC_BINARY) e->name = read_bytes(r); else st_tc_skip(r, t); break;
        case 5: e->num_children = (int)st_tc_read_int_t(r, t); break;
        case 6: e->converted = (int)st_tc_read_int_t(r, t); break;
        case 10: if (t == ST_TC_STRUCT) read_logical(r, e); else st_tc_skip(r, t); break;
        default: st_tc_skip(r, t);
        }
    }
    st_tc_leave(r);
}

/* Allocates n elements of size sz (zeroed), n already checked by the decoder. */
static void *alloc_array(size_t n, size_t sz)
{
    size_t bytes;
    if (!st_size_mul(n ? n : 1, sz, &bytes)) return NULL;
    return calloc(1, bytes);
}

static bool read_schema(st_tc_reader *r, st_pq_meta *m)
{
    uint8_t elem;
    size_t n;
    if (!st_tc_read_list(r, &elem, &n) || elem != ST_TC_STRUCT || m->schema) return false;
    m->schema = alloc_array(n, sizeof *m->schema);
    if (!m->schema) return false;
    for (size_t i = 0; i < n && !r->bad; i++) read_schema_elem(r, &m->schema[i]);
    m->n_schema = n;
    return !r->bad;
}

/* One RowGroup: its column chunks go to m->chunks[g * n_columns ...]. */
static bool read_row_group(st_tc_reader *r, st_pq_meta *m, size_t g)
{
    uint8_t t, elem;
    int16_t id;
    size_t n, seen = 0;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        if (id == 3 && t == ST_TC_I64) {
            m->rg_rows[g] = st_tc_read_int_t(r, t);
        } else if (id == 1 && t == ST_TC_LIST && seen == 0) {
            if (!st_tc_read_list(r, &elem, &n) || elem != ST_TC_STRUCT || n != m->n_columns) return false;
            for (size_t j = 0; j < n && !r->bad; j++) {
                st_pq_chunk_meta *c = &m->chunks[g * m->n_columns + j];
                c->dictionary_page_offset = -1;
                uint8_t t2;
                int16_t id2;
                st_tc_enter(r);
                while (st_tc_next_field(r, &t2, &id2)) {
                    if (id2 == 3 && t2 == ST_TC_STRUCT) read_column_meta(r, c);
                    else st_tc_skip(r, t2);
                }
                st_tc_leave(r);
            }
            seen = 1;
        } else {
            st_tc_skip(r, t);
        }
    }
    st_tc_leave(r);
    return !r->bad && (seen || m->n_columns == 0);
}

static bool read_row_groups(st_tc_reader *r, st_pq_meta *m)
{
    uint8_t elem;
    size_t n, cells;
    if (!m->schema || m->chunks || !st_tc_read_list(r, &elem, &n) || elem != ST_TC_STRUCT) return false;
    if (!st_size_mul(n, m->n_columns, &cells)) return false;
    m->rg_rows = alloc_array(n, sizeof *m->rg_rows);
    m->chunks = alloc_array(cells, sizeof *m->chunks);
    if (!m->rg_rows || !m->chunks) return false;
    m->n_row_groups = n;
    for (size_t g = 0; g < n; g++)
        if (!read_row_group(r, m, g)) return false;
    return true;
}

static bool read_kv(st_tc_reader *r, st_pq_meta *m)
{
    uint8_t elem, t;
    int16_t id;
    size_t n;
    if (m->kv || !st_tc_read_list(r, &elem, &n) || elem != ST_TC_STRUCT) return false;
    m->kv = alloc_array(n, sizeof *m->kv);
    if (!m->kv) return false;
    m->n_kv = n;
    for (size_t i = 0; i < n && !r->bad; i++) {
        st_tc_enter(r);
        while (st_tc_next_field(r, &t, &id)) {
            if (id == 1 && t == ST_TC_BINARY) m->kv[i].key = read_bytes(r);
            else if (id == 2 && t == ST_TC_BINARY) m->kv[i].value = read_bytes(r);
            else st_tc_skip(r, t);
        }
        st_tc_leave(r);
    }
    return !r->bad;
}

static bool schema_is_flat(st_pq_meta *m)
{
    if (m->n_schema == 0 || m->schema[0].num_children < 0 || (size_t)m->schema[0].num_children != m->n_schema - 1)
        return false;
    for (size_t i = 1; i < m->n_schema; i++)
        if (m->schema[i].num_children > 0 || m->schema[i].type < 0) return false;
    m->n_columns = m->n_schema - 1;
    return true;
}

st_status st_pq_meta_parse(const uint8_t *buf, size_t len, st_pq_meta *m, st_error *err)
{
    memset(m, 0, sizeof *m);
    st_tc_reader r;
    st_tc_reader_init(&r, buf, len);
    uint8_t t, elem;
    int16_t id;
    size_t n;
    bool ok = true, flat = true;
    while (ok && st_tc_next_field(&r, &t, &id)) {
        switch (id) {
        case 1: m->version = (int32_t)st_tc_read_int_t(&r, t); break;
        case 2: ok = t == ST_TC_LIST && read_schema(&r, m) && (flat = schema_is_flat(m)); break;
        case 3: m->num_rows = st_tc_read_int_t(&r, t); break;
        case 4: ok = t == ST_TC_LIST && read_row_groups(&r, m); break;
        case 5: ok = t == ST_TC_LIST && read_kv(&r, m); break;
        case 6: if (t == ST_TC_BINARY) m->created_by = read_bytes(&r); else st_tc_skip(&r, t); break;
        case 7:
            if (t == ST_TC_LIST && st_tc_read_list(&r, &elem, &n)) {
                m->n_column_orders = n;
                for (size_t i = 0; i < n && !r.bad; i++) st_tc_skip(&r, elem);
            } else ok = false;
            break;
        default: st_tc_skip(&r, t);
        }
    }
    if (!flat) {
        st_pq_meta_free(m);
        return st_error_set(err, ST_ERR_UNSUPPORTED, "parquet: nested schemas are not read here");
    }
    if (!ok || r.bad || !m->schema) {
        st_pq_meta_free(m);
        return corrupt(err, "damaged FileMetaData");
    }
    return ST_OK;
}

void st_pq_meta_free(st_pq_meta *m)
{
    if (!m) return;
    free(m->schema);
    free(m->rg_rows);
    free(m->chunks);
    free(m->kv);
    memset(m, 0, sizeof *m);
}

/* ---- pages ---- */

static void read_page_sub(st_tc_reader *r, st_pq_page_header *h, bool data_v1)
{
    uint8_t t;
    int16_t id;
    st_tc_enter(r);
    while (st_tc_next_field(r, &t, &id)) {
        if (id == 1 && t == ST_TC_I32) h->num_values = (int32_t)st_tc_read_int_t(r, t);
        else if (id == 2 && t == ST_TC_I32) h->encoding = (int)st_tc_read_int_t(r, t);
        else if (id == 3 && t == ST_TC_I32 && data_v1) h->def_encoding = (int)st_tc_read_int_t(r, t);
        else st_tc_skip(r, t);
    }
    st_tc_leave(r);
}

st_status st_pq_page_header_parse(const uint8_t *buf, size_t len, st_pq_page_header *h, st_error *err)
{
    *h = (st_pq_page_header){.type = -1, .encoding = -1, .def_encoding = -1, .uncompressed_bytes = -1,
                             .compressed_bytes = -1};
    st_tc_reader r;
    st_tc_reader_init(&r, buf, len);
    uint8_t t;
    int16_t id;
    while (st_tc_next_field(&r, &t, &id)) {
        if (id == 1 && t == ST_TC_I32) h->type = (int)st_tc_read_int_t(&r, t);
        else if (id == 2 && t == ST_TC_I32) h->uncompressed_bytes = (int32_t)st_tc_read_int_t(&r, t);
        else if (id == 3 && t == ST_TC_I32) h->compressed_bytes = (int32_t)st_tc_read_int_t(&r, t);
        else if ((id == 5 || id == 7 || id == 8) && t == ST_TC_STRUCT) read_page_sub(&r, h, id == 5);
        else st_tc_skip(&r, t);
    }
    if (r.bad || h->type < 0 || h->uncompressed_bytes < 0 || h->compressed_bytes < 0 || h->num_values < 0)
        return corrupt(err, "damaged page header");
    h->header_bytes = st_tc_consumed(&r, buf);
    return ST_OK;
}

/* Decompresses one zstd page to exactly its stated size. */
static st_status check_zstd_page(const uint8_t *p, const st_pq_page_header *h, size_t c, size_t page, st_error *err)
{
    size_t want = (size_t)h->uncompressed_bytes;
    if (want > (size_t)h->compressed_bytes * 64 + 65536)
        return st_error_set(err, ST_ERR_CORRUPT, "parquet: column chunk %zu page %zu claims %zu bytes from %d", c, page,
                            want, h->compressed_bytes);
    void *out = malloc(want ? want : 1);
    if (!out) return st_error_set(err, ST_ERR_NOMEM, "parquet: out of memory");
    size_t got = ZSTD_decompress(out, want, p, (size_t)h->compressed_bytes);
    free(out);
    if (ZSTD_isError(got) || got != want)
        return st_error_set(err, ST_ERR_CORRUPT, "parquet: column chunk %zu page %zu: zstd data does not decode to %zu bytes",
                            c, page, want);
    return ST_OK;
}

st_status st_pq_check_chunk(const uint8_t *buf, size_t len, const st_pq_meta *m, size_t c, int64_t *n_values,
                            int *n_dict_pages, st_error *err)
{
    *n_values = 0;
    *n_dict_pages = 0;
    if (c >= m->n_row_groups * m->n_columns) return st_error_set(err, ST_ERR_INVALID, "parquet: no column chunk %zu", c);
    const st_pq_chunk_meta *cm = &m->chunks[c];
    int64_t start = cm->dictionary_page_offset >= 0 ? cm->dictionary_page_offset : cm->data_page_offset;
    if (start < 4 || cm->compressed_bytes < 0 || (uint64_t)start > len - 8 ||
        (uint64_t)cm->compressed_bytes > len - 8 - (uint64_t)start)
        return st_error_set(err, ST_ERR_CORRUPT, "parquet: column chunk %zu lies outside the file", c);
    const uint8_t *p = buf + start, *end = p + cm->compressed_bytes;
    for (size_t page = 0; p < end; page++) {
        st_pq_page_header h;
        ST_TRY(st_pq_page_header_parse(p, (size_t)(end - p), &h, err));
        if ((size_t)h.compressed_bytes > (size_t)(end - p) - h.header_bytes)
            return st_error_set(err, ST_ERR_CORRUPT, "parquet: column chunk %zu page %zu runs past its chunk", c, page);
        p += h.header_bytes;
        if (cm->codec == ST_PQ_CODEC_ZSTD) ST_TRY(check_zstd_page(p, &h, c, page, err));
        else if (cm->codec == ST_PQ_CODEC_UNCOMPRESSED && h.compressed_bytes != h.uncompressed_bytes)
            return st_error_set(err, ST_ERR_CORRUPT, "parquet: column chunk %zu page %zu: sizes differ uncompressed", c, page);
        if (h.type == ST_PQ_PAGE_DICTIONARY) (*n_dict_pages)++;
        else if (h.type == ST_PQ_PAGE_DATA || h.type == ST_PQ_PAGE_DATA_V2) *n_values += h.num_values;
        p += h.compressed_bytes;
    }
    return ST_OK;
}
