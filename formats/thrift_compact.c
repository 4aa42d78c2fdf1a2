/*
 * thrift_compact.c: the Thrift compact protocol (see thrift_internal.h),
 * the subset Parquet uses, written from the protocol's public
 * specification.
 *
 * Wire rules, for reference: a field header is one byte (delta << 4 |
 * type) when the id grows by 1..15 from the previous field of the same
 * struct, else the type byte followed by the id as a zigzag varint i16.
 * Booleans as fields live in the type nibble (1 true, 2 false). Integers
 * are zigzag ULEB128 varints (i8 is one raw byte), doubles 8 bytes little
 * endian, binary a varint length then the bytes. A list header is one byte
 * (n << 4 | elem) for n < 15, else (0xF0 | elem) then n as a varint. A
 * struct ends with a 0 byte.
 *
 * The reader never trusts the bytes: varints longer than 10 bytes, lengths
 * or counts beyond what remains, nesting deeper than ST_TC_MAX_DEPTH and
 * unknown types all set the sticky `bad` flag.
 */
#include "thrift_internal.h"

#include <string.h>

static void skip_elem(st_tc_reader *r, uint8_t type);

/* ---- writing ---- */

void st_tc_writer_init(st_tc_writer *w, st_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static void put_byte(st_tc_writer *w, uint8_t b) { st_buf_append(w->out, &b, 1); }

void st_uleb128_put(st_buf *out, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    st_buf_append(out, t, n);
}

static void put_varint(st_tc_writer *w, uint64_t v) { st_uleb128_put(w->out, v); }

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void field_header(st_tc_writer *w, int16_t id, uint8_t type)
{
    int16_t delta = (int16_t)(id - w->last[w->depth]);
    if (delta > 0 && delta <= 15) {
        put_byte(w, (uint8_t)(delta << 4 | type));
    } else {
        put_byte(w, type);
        put_varint(w, zigzag(id));
    }
    w->last[w->depth] = id;
}

void st_tc_bool(st_tc_writer *w, int16_t id, bool v) { field_header(w, id, v ? ST_TC_TRUE : ST_TC_FALSE); }

void st_tc_i8(st_tc_writer *w, int16_t id, int8_t v)
{
    field_header(w, id, ST_TC_I8);
    put_byte(w, (uint8_t)v);
}

void st_tc_i32(st_tc_writer *w, int16_t id, int32_t v)
{
    field_header(w, id, ST_TC_I32);
    put_varint(w, zigzag(v));
}

void st_tc_i64(st_tc_writer *w, int16_t id, int64_t v)
{
    field_header(w, id, ST_TC_I64);
    put_varint(w, zigzag(v));
}

void st_tc_elem_bin(st_tc_writer *w, const void *p, size_t n)
{
    put_varint(w, n);
    st_buf_append(w->out, p, n);
}

void st_tc_bin(st_tc_writer *w, int16_t id, const void *p, size_t n)
{
    field_header(w, id, ST_TC_BINARY);
    st_tc_elem_bin(w, p, n);
}

void st_tc_str(st_tc_writer *w, int16_t id, const char *s) { st_tc_bin(w, id, s, strlen(s)); }

void st_tc_elem_struct_begin(st_tc_writer *w)
{
    if (w->depth + 1 >= ST_TC_MAX_DEPTH) {
        w->bad = true;
        return;
    }
    w->last[++w->depth] = 0;
}

void st_tc_struct_begin(st_tc_writer *w, int16_t id)
{
    field_header(w, id, ST_TC_STRUCT);
    st_tc_elem_struct_begin(w);
}

void st_tc_struct_end(st_tc_writer *w)
{
    put_byte(w, ST_TC_STOP);
    if (w->depth > 0) w->depth--;
}

void st_tc_stop(st_tc_writer *w) { put_byte(w, ST_TC_STOP); }

void st_tc_list_begin(st_tc_writer *w, int16_t id, uint8_t elem, size_t n)
{
    field_header(w, id, ST_TC_LIST);
    if (n < 15) {
        put_byte(w, (uint8_t)(n << 4 | elem));
    } else {
        put_byte(w, (uint8_t)(0xF0 | elem));
        put_varint(w, n);
    }
}

void st_tc_elem_i32(st_tc_writer *w, int32_t v) { put_varint(w, zigzag(v)); }

/* ---- reading ---- */

void st_tc_reader_init(st_tc_reader *r, const void *buf, size_t len)
{
    memset(r, 0, sizeof *r);
    r->p = buf;
    r->end = r->p + len;
}

size_t st_tc_consumed(const st_tc_reader *r, const void *start) { return (size_t)(r->p - (const uint8_t *)start); }

static uint8_t get_byte(st_tc_reader *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t get_varint(st_tc_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b = get_byte(r);
        if (r->bad) return 0;
        if (shift == 63 && b > 1) break;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

bool st_tc_next_field(st_tc_reader *r, uint8_t *type, int16_t *id)
{
    uint8_t b = get_byte(r);
    if (r->bad || b == ST_TC_STOP) return false;
    *type = b & 0x0F;
    uint8_t delta = b >> 4;
    int64_t fid;
    if (delta) {
        fid = r->last[r->depth] + delta;
    } else {
        fid = unzigzag(get_varint(r));
    }
    if (fid < INT16_MIN || fid > INT16_MAX || *type > ST_TC_STRUCT) {
        r->bad = true;
        return false;
    }
    r->last[r->depth] = (int16_t)fid;
    *id = (int16_t)fid;
    return !r->bad;
}

int64_t st_tc_read_int_t(st_tc_reader *r, uint8_t type)
{
    switch (type) {
    case ST_TC_I8: return (int8_t)get_byte(r);
    case ST_TC_I16:
    case ST_TC_I32:
    case ST_TC_I64: return unzigzag(get_varint(r));
    default: r->bad = true; return 0;
    }
}

const uint8_t *st_tc_read_bin(st_tc_reader *r, size_t *n)
{
    uint64_t len = get_varint(r);
    if (r->bad || len > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        *n = 0;
        return NULL;
    }
    const uint8_t *s = r->p;
    r->p += len;
    *n = (size_t)len;
    return s;
}

bool st_tc_read_list(st_tc_reader *r, uint8_t *elem, size_t *n)
{
    uint8_t b = get_byte(r);
    uint64_t count = b >> 4;
    *elem = b & 0x0F;
    if (count == 15) count = get_varint(r);
    /* every element takes at least one byte (a bool list too) */
    if (r->bad || count > (uint64_t)(r->end - r->p) || *elem == ST_TC_STOP || *elem > ST_TC_STRUCT) {
        r->bad = true;
        *n = 0;
        return false;
    }
    *n = (size_t)count;
    return true;
}

void st_tc_enter(st_tc_reader *r)
{
    if (r->depth + 1 >= ST_TC_MAX_DEPTH) {
        r->bad = true;
        return;
    }
    r->last[++r->depth] = 0;
}

void st_tc_leave(st_tc_reader *r)
{
    if (r->depth > 0) r->depth--;
}

/* A list, set or map element: a bool takes one byte there. */
static void skip_elem(st_tc_reader *r, uint8_t type)
{
    if (type == ST_TC_TRUE || type == ST_TC_FALSE) (void)get_byte(r);
    else st_tc_skip(r, type);
}

void st_tc_skip(st_tc_reader *r, uint8_t type)
{
    if (r->bad) return;
    switch (type) {
    case ST_TC_TRUE:
    case ST_TC_FALSE: break; /* a field's bool is in its header */
    case ST_TC_I8: (void)get_byte(r); break;
    case ST_TC_I16:
    case ST_TC_I32:
    case ST_TC_I64: (void)get_varint(r); break;
    case ST_TC_DOUBLE:
        if (r->end - r->p < 8) r->bad = true;
        else r->p += 8;
        break;
    case ST_TC_BINARY: {
        size_t n;
        (void)st_tc_read_bin(r, &n);
        break;
    }
    case ST_TC_LIST:
    case ST_TC_SET: {
        uint8_t elem;
        size_t n;
        if (!st_tc_read_list(r, &elem, &n)) return;
        for (size_t i = 0; i < n && !r->bad; i++) {
            skip_elem(r, elem);
        }
        break;
    }
    case ST_TC_MAP: {
        uint64_t n = get_varint(r);
        if (n == 0 || r->bad) break;
        uint8_t kv = get_byte(r);
        if (n > (uint64_t)(r->end - r->p)) {
            r->bad = true;
            break;
        }
        for (uint64_t i = 0; i < n && !r->bad; i++) {
            skip_elem(r, kv >> 4);
            skip_elem(r, kv & 0x0F);
        }
        break;
    }
    case ST_TC_STRUCT: {
        st_tc_enter(r);
        uint8_t t;
        int16_t id;
        while (!r->bad && st_tc_next_field(r, &t, &id)) st_tc_skip(r, t);
        st_tc_leave(r);
        break;
    }
    default: r->bad = true;
    }
}
