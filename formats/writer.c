/*
 * writer.c: st_writer, streaming a table into a .strata file.
 *
 * Rows are copied into one chunk's worth of column buffers; a full chunk
 * (chunk_rows rows, or ST_CHUNK_MAX_BYTES of string bytes, whichever
 * comes first) is encoded block by block and appended to a temporary file
 * in the destination directory. The footer (schema, metadata, the chunk
 * directory with zone maps) is kept in memory (a few dozen bytes per
 * block) and written at close, followed by the fixed tail; then the file
 * is fsynced and renamed over the final name and the directory fsynced
 * (with defer_fsync, renamed only: its publisher makes it durable).
 * Nothing depends on time, pointers or thread count, so equal input gives
 * equal bytes.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "format_internal.h"
#include "strata/pool.h"
#include "strata/utf8.h"

/* Payloads shorter than this are never given to zstd. */
#define ZSTD_MIN_RAW 64

/* What one thread needs to encode blocks: zstd's context, the block
 * encoder's tables and the block's bytes before and after zstd, reused
 * across blocks: a block's encoded values and zstd's output are made in
 * memory this thread has touched already, and only what is kept is
 * copied out (enc_out.keep). */
typedef struct enc_lane {
    ZSTD_CCtx *zctx;
    st_codec_scratch *scratch;
    st_buf payload;      /* the block being encoded: validity and values */
    void *zbuf;          /* zstd's output for it */
    size_t zcap;
    uint64_t *checked;   /* coded strings: one bit per dictionary string already checked; 0 between calls */
    size_t checked_words;
} enc_lane;

/* One column block encoded and not yet written: its stored bytes (a
 * buffer reused across chunks), footer entry, header fields and checksum.
 * Encoding fills it; emit_block writes it, in column order. */
typedef struct enc_out {
    uint8_t *keep;       /* the stored bytes, copied from the lane */
    size_t keep_cap;
    st_block_ent b;
    int enc;
    uint8_t flags;
    size_t stored, raw;
    uint32_t crc;
    st_status status;
    st_error err;
} enc_out;

static void lane_free(enc_lane *l)
{
    ZSTD_freeCCtx(l->zctx);
    st_codec_scratch_free(l->scratch);
    free(l->checked);
    st_buf_free(&l->payload);
    free(l->zbuf);
}

static bool lane_init(enc_lane *l)
{
    l->zctx = ZSTD_createCCtx();
    l->scratch = st_codec_scratch_new();
    return l->zctx && l->scratch;
}

static void out_free(enc_out *o) { free(o->keep); }

struct st_writer {
    char path[4096];
    char tmp[4160];
    int fd;
    size_t n_fields;
    st_field *fields;
    char **owned;          /* every string we copied */
    size_t n_owned, cap_owned;
    st_file_meta meta;
    const char **inputs;
    st_kv *kv;
    st_write_opts opts;
    uint32_t chunk_rows;
    st_column *buf;
    size_t buffered_bytes;
    uint64_t offset;
    uint64_t n_rows;
    uint32_t *chunk_n;     /* rows per chunk */
    st_block_ent *blocks;     /* n_chunks * n_fields */
    size_t n_chunks, cap_chunks;
    st_buf io;
    enc_lane lane0;        /* the calling thread's encoder state */
    enc_out out0;          /* its block, between encoding and writing */
    unsigned threads;      /* the threads of pool: lanes of a parallel flush */
    st_pool *pool;         /* st_writer_set_pool (borrowed) */
    enc_lane *lanes;       /* threads - 1 more lanes, made at the first parallel flush */
    enc_out *outs;         /* n_fields blocks of a parallel flush */
    st_status failed;
    uint64_t content_hash; /* hash of every block header (with its CRC32C) in write order */
    bool fp_content;       /* close folds content_hash into the fingerprint */
};

static char *own(st_writer *w, const char *s)
{
    if (!s) return NULL;
    if (w->n_owned == w->cap_owned) {
        size_t cap = w->cap_owned ? w->cap_owned * 2 : 32;
        char **o = realloc(w->owned, cap * sizeof *o);
        if (!o) return NULL;
        w->owned = o;
        w->cap_owned = cap;
    }
    char *c = strdup(s);
    if (c) w->owned[w->n_owned++] = c;
    return c;
}

static void writer_free(st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    for (size_t i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->fields);
    free(w->inputs);
    free(w->kv);
    if (w->buf)
        for (size_t j = 0; j < w->n_fields; j++) st_column_free(&w->buf[j]);
    free(w->buf);
    free(w->chunk_n);
    free(w->blocks);
    st_buf_free(&w->io);
    lane_free(&w->lane0);
    out_free(&w->out0);
    for (unsigned k = 0; w->lanes && k + 1 < w->threads; k++) lane_free(&w->lanes[k]);
    free(w->lanes);
    for (size_t j = 0; w->outs && j < w->n_fields; j++) out_free(&w->outs[j]);
    free(w->outs);
    free(w);
}

static st_status write_all(st_writer *w, const void *p, size_t n, st_error *err)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return st_error_set(err, ST_ERR_IO, "cannot write '%s': %s", w->path, strerror(k < 0 ? errno : ENOSPC));
        c += k;
        n -= (size_t)k;
        w->offset += (uint64_t)k;
    }
    return ST_OK;
}

st_status st_writer_open(st_writer **out, const char *path, const st_field *fields, size_t n_fields,
                         const st_file_meta *meta, const st_write_opts *opts, st_error *err)
{
    *out = NULL;
    if (n_fields == 0 || n_fields > 65535) return st_error_set(err, ST_ERR_INVALID, "'%s': a table needs 1..65535 columns", path);
    st_writer *w = calloc(1, sizeof *w);
    if (!w) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    w->fd = -1;
    st_status s = ST_OK;
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path) {
        s = st_error_set(err, ST_ERR_INVALID, "path too long: '%s'", path);
        goto fail;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp-%ld", path, (long)getpid());
    if (opts) w->opts = *opts;
    w->chunk_rows = w->opts.chunk_rows ? w->opts.chunk_rows : ST_CHUNK_ROWS;
    if ((w->chunk_rows & (w->chunk_rows - 1)) || w->chunk_rows > ST_CHUNK_ROWS) {
        s = st_error_set(err, ST_ERR_INVALID, "chunk_rows must be a power of two <= %u", ST_CHUNK_ROWS);
        goto fail;
    }
    w->n_fields = n_fields;
    w->fields = calloc(n_fields, sizeof *w->fields);
    w->buf = calloc(n_fields, sizeof *w->buf);
    if (!w->fields || !w->buf) goto nomem;
    for (size_t j = 0; j < n_fields; j++) {
        if (!fields[j].name || st_type_width(fields[j].type) == 0 ? (fields[j].type != ST_TYPE_STR && fields[j].type != ST_TYPE_BYTES) : false) {
            s = st_error_set(err, ST_ERR_INVALID, "'%s': column %zu has no name or an unknown type", path, j);
            goto fail;
        }
        w->fields[j] = fields[j];
        w->fields[j].name = own(w, fields[j].name);
        w->fields[j].description = fields[j].description ? own(w, fields[j].description) : NULL;
        if (!w->fields[j].name) goto nomem;
        st_column_init(&w->buf[j], fields[j].type);
    }
    st_file_meta m = meta ? *meta : (st_file_meta){0};
    w->meta.layer = own(w, m.layer ? m.layer : "");
    w->meta.table = own(w, m.table ? m.table : "");
    w->meta.params = own(w, m.params ? m.params : "");
    w->meta.fingerprint = m.fingerprint;
    w->meta.n_inputs = m.n_inputs;
    w->meta.n_kv = m.n_kv;
    w->inputs = calloc(m.n_inputs + 1, sizeof *w->inputs);
    w->kv = calloc(m.n_kv + 1, sizeof *w->kv);
    if (!w->inputs || !w->kv || !w->meta.layer || !w->meta.table || !w->meta.params) goto nomem;
    for (size_t i = 0; i < m.n_inputs; i++)
        if (!(w->inputs[i] = own(w, m.inputs[i]))) goto nomem;
    for (size_t i = 0; i < m.n_kv; i++) {
        w->kv[i].key = own(w, m.kv[i].key);
        w->kv[i].value = own(w, m.kv[i].value);
        if (!w->kv[i].key || !w->kv[i].value) goto nomem;
    }
    w->meta.inputs = w->inputs;
    w->meta.kv = w->kv;
    if (!lane_init(&w->lane0)) goto nomem;
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        s = st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", w->tmp, strerror(errno));
        goto fail;
    }
    uint8_t hdr[ST_HEADER_BYTES];
    memcpy(hdr, ST_MAGIC, 8);
    st_put_u16(hdr + 8, ST_FORMAT_MAJOR);
    st_put_u16(hdr + 10, ST_FORMAT_MINOR);
    st_put_u32(hdr + 12, st_crc32c(0, hdr, 12));
    if ((s = write_all(w, hdr, sizeof hdr, err)) != ST_OK) goto fail;
    *out = w;
    return ST_OK;
nomem:
    s = st_error_set(err, ST_ERR_NOMEM, "out of memory opening '%s'", path);
fail:
    if (w->fd >= 0) unlink(w->tmp);
    writer_free(w);
    return s;
}

uint64_t st_writer_n_rows(const st_writer *w) { return w->n_rows; }

/* Zone map of a buffered column. */
static void zone(const st_column *c, st_block_ent *b)
{
    b->has_minmax = 0;
    b->min = b->max = 0;
    size_t n = c->n_rows;
    if (c->type == ST_TYPE_F64) {
        double mn = 0, mx = 0;
        bool any = false;
        const double *v = c->data;
        for (size_t i = 0; i < n; i++) {
            if (!st_column_valid(c, i) || isnan(v[i])) continue;
            if (!any || v[i] < mn) mn = v[i];
            if (!any || v[i] > mx) mx = v[i];
            any = true;
        }
        if (any) {
            b->has_minmax = 1;
            memcpy(&b->min, &mn, 8);
            memcpy(&b->max, &mx, 8);
        }
        return;
    }
    if (c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES) return;
    if (!c->validity && n && (c->type == ST_TYPE_I64 || c->type == ST_TYPE_I32)) {
        /* every row present: a branch-free loop the compiler vectorises */
        int64_t lo, hi;
        if (c->type == ST_TYPE_I64) {
            const int64_t *v = c->data;
            lo = hi = v[0];
            for (size_t i = 1; i < n; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
            }
        } else {
            const int32_t *v = c->data;
            int32_t l32 = v[0], h32 = v[0];
            for (size_t i = 1; i < n; i++) {
                l32 = v[i] < l32 ? v[i] : l32;
                h32 = v[i] > h32 ? v[i] : h32;
            }
            lo = l32;
            hi = h32;
        }
        b->has_minmax = 1;
        b->min = (uint64_t)lo;
        b->max = (uint64_t)hi;
        return;
    }
    int64_t mn = 0, mx = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!st_column_valid(c, i)) continue;
        int64_t x = c->type == ST_TYPE_I64 ? ((const int64_t *)c->data)[i]
                    : c->type == ST_TYPE_I32 ? ((const int32_t *)c->data)[i]
                                             : ((const uint8_t *)c->data)[i];
        if (!any || x < mn) mn = x;
        if (!any || x > mx) mx = x;
        any = true;
    }
    if (any) {
        b->has_minmax = 1;
        b->min = (uint64_t)mn;
        b->max = (uint64_t)mx;
    }
}

/* Appends the (n + 7) / 8 validity bytes of n rows (little-endian bit
 * order, from the words of `bits`; all zero when bits is NULL), a few
 * hundred bytes per call instead of one. */
static void append_validity(st_buf *b, const uint64_t *bits, size_t n)
{
    uint8_t tmp[512];
    size_t nbytes = (n + 7) / 8;
    for (size_t k = 0; k < nbytes; k += sizeof tmp) {
        size_t m = nbytes - k < sizeof tmp ? nbytes - k : sizeof tmp;
        for (size_t i = 0; i < m; i++)
            tmp[i] = bits ? (uint8_t)(bits[(k + i) / 8] >> (8 * ((k + i) % 8))) : 0;
        st_buf_append(b, tmp, m);
    }
}

/* A new chunk of n rows in the directory (its block entries follow). */
static st_status chunk_slot(st_writer *w, size_t n, st_error *err)
{
    if (w->n_chunks == w->cap_chunks) {
        size_t cap = w->cap_chunks ? w->cap_chunks * 2 : 16;
        uint32_t *cn = realloc(w->chunk_n, cap * sizeof *cn);
        if (!cn) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        w->chunk_n = cn;
        st_block_ent *be = realloc(w->blocks, cap * w->n_fields * sizeof *be);
        if (!be) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        w->blocks = be;
        w->cap_chunks = cap;
    }
    w->chunk_n[w->n_chunks] = (uint32_t)n;
    return ST_OK;
}

/* Writes a block: header fields (enc, flags, type, n, nulls, stored and
 * raw sizes), the CRC32C over them and the stored bytes (or `crc` as
 * given, when have_crc), then the bytes; fills b's place and encoding. */
/* The first 20 bytes of a block header (FORMAT.md "Blocks"); bytes 20..24
 * are the CRC32C of these and the stored bytes. */
static void block_header(uint8_t *hdr, int enc, uint8_t flags, st_type type, size_t n, uint32_t null_count,
                         size_t stored, size_t raw)
{
    hdr[0] = (uint8_t)enc;
    hdr[1] = flags;
    st_put_u16(hdr + 2, (uint16_t)type);
    st_put_u32(hdr + 4, (uint32_t)n);
    st_put_u32(hdr + 8, null_count);
    st_put_u32(hdr + 12, (uint32_t)stored);
    st_put_u32(hdr + 16, (uint32_t)raw);
}

static st_status emit_block(st_writer *w, st_block_ent *b, int enc, uint8_t flags, st_type type, size_t n,
                            const uint8_t *data, size_t stored, size_t raw, bool have_crc, uint32_t crc,
                            st_error *err)
{
    uint8_t hdr[ST_BLOCK_HEADER_BYTES];
    block_header(hdr, enc, flags, type, n, b->null_count, stored, raw);
    if (!have_crc) crc = st_crc32c(st_crc32c(0, hdr, 20), data, stored);
    st_put_u32(hdr + 20, crc);
    w->content_hash = st_hash64(w->content_hash, hdr, sizeof hdr);
    b->offset = w->offset;
    b->size = (uint32_t)(ST_BLOCK_HEADER_BYTES + stored);
    b->encoding = (uint8_t)enc;
    b->flags = flags;
    ST_TRY(write_all(w, hdr, sizeof hdr, err));
    return write_all(w, data, stored, err);
}

/* The end of encoding a block whose values are in l->payload: zstd when
 * it saves at least 1/16, the stored bytes copied into o->keep, and the
 * header's checksum. */
static st_status seal_payload(const st_writer *w, size_t j, st_type type, size_t n, int enc, uint8_t flags,
                              enc_lane *l, enc_out *o, st_error *err)
{
    int level = w->opts.zstd_level == 0 ? 3 : w->opts.zstd_level;
    if (!st_buf_ok(&l->payload)) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    const uint8_t *data = (const uint8_t *)l->payload.data;
    size_t raw = l->payload.len, stored = raw;
    if (raw > ST_MAX_BLOCK_RAW)
        return st_error_set(err, ST_ERR_INVALID, "'%s': block of column '%s' exceeds %u bytes", w->path,
                            w->fields[j].name, ST_MAX_BLOCK_RAW);
    if (level > 0 && raw >= ZSTD_MIN_RAW) {
        size_t bound = ZSTD_compressBound(raw);
        if (bound > l->zcap) {
            void *z = realloc(l->zbuf, bound);
            if (!z) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
            l->zbuf = z;
            l->zcap = bound;
        }
        size_t zn = ZSTD_compressCCtx(l->zctx, l->zbuf, l->zcap, data, raw, level);
        /* keep zstd only when it saves at least 1/16 */
        if (!ZSTD_isError(zn) && zn + zn / 16 < raw) {
            data = l->zbuf;
            stored = zn;
            flags |= ST_BLOCK_FLAG_ZSTD;
        }
    }
    if (stored > o->keep_cap) { /* an eighth more: chunks of a column vary a little */
        size_t cap = stored + stored / 8;
        uint8_t *k = realloc(o->keep, cap);
        if (!k) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        o->keep = k;
        o->keep_cap = cap;
    }
    if (stored) memcpy(o->keep, data, stored);
    uint8_t hdr[20];
    block_header(hdr, enc, flags, type, n, o->b.null_count, stored, raw);
    o->crc = st_crc32c(st_crc32c(0, hdr, sizeof hdr), o->keep, stored);
    o->enc = enc;
    o->flags = flags;
    o->stored = stored;
    o->raw = raw;
    return ST_OK;
}

/* Encodes column j's block c (n rows) into o with lane l, writing
 * nothing: zone map, validity, values (st_codec_encode_block), then zstd
 * when it saves at least 1/16, and the block's checksum. A block without
 * NULLs takes its integer zone map from the encoder's statistics (the
 * range of all its values) instead of a pass of its own. Reads only w's
 * options and schema, so lanes may encode columns at the same time. */
static st_status encode_into(const st_writer *w, size_t j, const st_column *c, size_t n, enc_lane *l, enc_out *o,
                             st_error *err)
{
    st_block_ent *b = &o->b;
    memset(b, 0, sizeof *b);
    bool zone_from_codec = c->null_count == 0 && c->type != ST_TYPE_F64 && c->type != ST_TYPE_STR &&
                           c->type != ST_TYPE_BYTES;
    if (!zone_from_codec) zone(c, b);
    b->null_count = (uint32_t)c->null_count;
    b->raw_bytes = c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES ? c->n_bytes : n * st_type_width(c->type);
    st_buf_reset(&l->payload);
    uint8_t flags = 0;
    int enc = ST_ENC_CONST;
    if (c->null_count == n) {
        /* all NULL: no values at all */
        enc = ST_ENC_CONST;
        flags |= ST_BLOCK_FLAG_VALIDITY;
        append_validity(&l->payload, NULL, n);
    } else {
        if (c->null_count) {
            flags |= ST_BLOCK_FLAG_VALIDITY;
            append_validity(&l->payload, c->validity, n);
        }
        st_codec_range range;
        st_status s = st_codec_encode_block(c, -1, l->scratch, &l->payload, &enc, &range);
        if (s != ST_OK) return st_error_set(err, s, "out of memory encoding '%s'", w->fields[j].name);
        if (zone_from_codec && range.has_minmax) {
            b->has_minmax = 1;
            b->min = (uint64_t)range.min;
            b->max = (uint64_t)range.max;
        }
    }
    return seal_payload(w, j, c->type, n, enc, flags, l, o, err);
}

/* Writes an encoded block as column j's (footer entry b). */
static st_status emit_out(st_writer *w, size_t j, enc_out *o, size_t n, st_block_ent *b, st_error *err)
{
    *b = o->b;
    return emit_block(w, b, o->enc, o->flags, w->fields[j].type, n, o->keep, o->stored, o->raw, true, o->crc, err);
}

/* Encodes column j's block c (n rows) into entry b and writes it. */
static st_status encode_block(st_writer *w, size_t j, const st_column *c, size_t n, st_block_ent *b, st_error *err)
{
    ST_TRY(encode_into(w, j, c, n, &w->lane0, &w->out0, err));
    return emit_out(w, j, &w->out0, n, b, err);
}

bool st_writer_stored_fits(const st_writer *w, size_t col, const st_stored_block *b)
{
    if (col >= w->n_fields || st_format_forced_encoding() >= 0 || b->encoding < 0 || b->encoding > ST_ENC_CONST)
        return false;
    const st_field *f = &w->fields[col];
    if (b->null_count && !f->nullable) return false;
    if (b->payload) /* st_writer_runs_block: written as encode_block would */
        return b->type == f->type && !b->null_count && !b->flags && b->raw_len < ZSTD_MIN_RAW &&
               b->stored_len == b->raw_len;
    if ((b->flags & ST_BLOCK_FLAG_ZSTD) && w->opts.zstd_level != 0 && w->opts.zstd_level != 3) return false;
    if (b->type == f->type) return true;
    /* int64 values re-headed as int32: the encoder widens both to 64 bits,
     * so every encoding but PLAIN has the same bytes, and only PLAIN's size
     * (n * width) depends on the width: the choice stays when the payload
     * is smaller than n * 4 (PLAIN wins ties) */
    return b->type == ST_TYPE_I64 && f->type == ST_TYPE_I32 && b->null_count == 0 && b->has_minmax &&
           (int64_t)b->min >= INT32_MIN && (int64_t)b->max <= INT32_MAX && b->encoding != ST_ENC_PLAIN &&
           (uint64_t)b->raw_len < (uint64_t)b->n_rows * 4;
}

/* Writes stored block sb as column j's block (entry b): its bytes as
 * they are; a re-headed block gets its new type, sizes and checksum. */
static st_status stored_block(st_writer *w, size_t j, const st_stored_block *sb, st_block_ent *b, st_error *err)
{
    memset(b, 0, sizeof *b);
    st_type type = w->fields[j].type;
    b->null_count = sb->null_count;
    b->has_minmax = sb->has_minmax;
    b->min = sb->min;
    b->max = sb->max;
    b->raw_bytes = type == sb->type ? sb->raw_bytes : (uint64_t)sb->n_rows * st_type_width(type);
    return emit_block(w, b, sb->encoding, sb->flags, type, sb->n_rows, sb->bytes, sb->stored_len, sb->raw_len,
                      type == sb->type && !sb->payload, sb->crc, err);
}

/* The rows of n_runs runs and, as zone() takes them from the values, their
 * signed minimum and maximum. */
static uint64_t runs_zone(const uint64_t *val, const uint32_t *len, size_t n_runs, int64_t *mn, int64_t *mx)
{
    uint64_t n = 0;
    *mn = *mx = (int64_t)val[0];
    for (size_t r = 0; r < n_runs; r++) {
        int64_t x = (int64_t)val[r];
        *mn = x < *mn ? x : *mn;
        *mx = x > *mx ? x : *mx;
        n += len[r];
    }
    return n;
}

st_status st_writer_runs_block(const st_writer *w, size_t col, const uint64_t *val, const uint32_t *len,
                               size_t n_runs, st_buf *buf, st_stored_block *out, bool *ok, st_error *err)
{
    *ok = false;
    if (col >= w->n_fields) return st_error_set(err, ST_ERR_INVALID, "'%s': no column %zu", w->path, col);
    st_type t = w->fields[col].type;
    if (t != ST_TYPE_BOOL && t != ST_TYPE_I32 && t != ST_TYPE_I64) return ST_OK;
    st_buf_reset(buf);
    int enc = 0;
    bool done;
    if (st_codec_encode_runs(t, val, len, n_runs, w->lane0.scratch, buf, &enc, &done) != ST_OK)
        return st_error_set(err, ST_ERR_NOMEM, "out of memory encoding '%s'", w->fields[col].name);
    if (!done || buf->len >= ZSTD_MIN_RAW) return ST_OK;
    int64_t mn, mx;
    uint64_t n = runs_zone(val, len, n_runs, &mn, &mx);
    if (n > w->chunk_rows) return ST_OK;
    *out = (st_stored_block){.type = t, .encoding = enc, .n_rows = (uint32_t)n, .raw_len = (uint32_t)buf->len,
                             .stored_len = (uint32_t)buf->len, .bytes = (const uint8_t *)buf->data,
                             .raw_bytes = n * st_type_width(t), .has_minmax = true, .min = (uint64_t)mn,
                             .max = (uint64_t)mx, .payload = true};
    *ok = true;
    return ST_OK;
}

/* A parallel flush: lanes take the chunk's columns one at a time, in
 * column order, from a shared counter. */
typedef struct flush_job {
    st_writer *w;
    const st_column *cols; /* the chunk's columns (the caller's or w->buf) */
    size_t n;
    atomic_size_t next;
} flush_job;

typedef struct flush_lane {
    flush_job *job;
    enc_lane *lane;
} flush_lane;

/* A task of the pool: lane `task` takes columns until none is left. */
static void flush_worker(void *arg, size_t task, int worker)
{
    (void)worker;
    flush_lane *fl = (flush_lane *)arg + task;
    flush_job *fj = fl->job;
    for (size_t j; (j = atomic_fetch_add(&fj->next, 1)) < fj->w->n_fields;) {
        enc_out *o = &fj->w->outs[j];
        o->status = encode_into(fj->w, j, &fj->cols[j], fj->n, fl->lane, o, &o->err);
    }
}

/* Made at the first parallel flush: the extra lanes and the per-column
 * blocks. False when out of memory (the flush then stays serial). */
static bool parallel_ready(st_writer *w)
{
    if (w->outs) return true;
    w->lanes = calloc(w->threads - 1, sizeof *w->lanes);
    w->outs = calloc(w->n_fields, sizeof *w->outs);
    bool ok = w->lanes && w->outs;
    for (unsigned k = 0; ok && k + 1 < w->threads; k++) ok = lane_init(&w->lanes[k]);
    if (ok) return true;
    for (unsigned k = 0; w->lanes && k + 1 < w->threads; k++) lane_free(&w->lanes[k]);
    free(w->lanes);
    free(w->outs);
    w->lanes = NULL;
    w->outs = NULL;
    return false;
}

/* Encodes the chunk's columns on the pool's threads (this one included)
 * and writes the blocks in column order: the same bytes as one thread,
 * whose lane and buffers are only the encoder's state. The error is the
 * first failing column's. */
static st_status flush_parallel(st_writer *w, const st_column *cols, size_t n, st_error *err)
{
    flush_job fj = {.w = w, .cols = cols, .n = n};
    atomic_init(&fj.next, 0);
    enum { MAX_LANES = 16 };
    flush_lane fl[MAX_LANES];
    unsigned nl = w->threads < MAX_LANES ? w->threads : MAX_LANES;
    if (nl > w->n_fields) nl = (unsigned)w->n_fields;
    fl[0] = (flush_lane){&fj, &w->lane0};
    for (unsigned k = 1; k < nl; k++) fl[k] = (flush_lane){&fj, &w->lanes[k - 1]};
    /* a lane taken after another on one thread finds the columns done */
    st_pool_run(w->pool, nl, flush_worker, fl);
    st_block_ent *blocks = &w->blocks[w->n_chunks * w->n_fields];
    for (size_t j = 0; j < w->n_fields; j++) {
        if (w->outs[j].status != ST_OK) {
            if (err) *err = w->outs[j].err;
            return w->outs[j].status;
        }
        ST_TRY(emit_out(w, j, &w->outs[j], n, &blocks[j], err));
    }
    return ST_OK;
}

/* Encodes and writes one chunk: the buffered rows (cols == NULL, then
 * the buffers are reset) or the caller's columns cols[0..n_fields), all of
 * cols[0].n_rows rows (a whole chunk handed over without a copy). */
static st_status flush_cols(st_writer *w, const st_column *cols, st_error *err)
{
    size_t n = cols ? cols[0].n_rows : w->buf[0].n_rows;
    if (n == 0) return ST_OK;
    ST_TRY(chunk_slot(w, n, err));
    if (w->threads > 1 && w->n_fields > 1 && parallel_ready(w)) {
        ST_TRY(flush_parallel(w, cols ? cols : w->buf, n, err));
    } else {
        for (size_t j = 0; j < w->n_fields; j++) {
            const st_column *c = cols ? &cols[j] : &w->buf[j];
            ST_TRY(encode_block(w, j, c, n, &w->blocks[w->n_chunks * w->n_fields + j], err));
        }
    }
    for (size_t j = 0; !cols && j < w->n_fields; j++) st_column_reset(&w->buf[j]);
    w->n_chunks++;
    if (!cols) w->buffered_bytes = 0;
    return ST_OK;
}

void st_writer_set_pool(st_writer *w, st_pool *pool)
{
    if (w && !w->outs) {
        w->pool = pool;
        w->threads = (unsigned)st_pool_threads(pool);
    }
}

static st_status flush_chunk(st_writer *w, st_error *err) { return flush_cols(w, NULL, err); }

/* True when rows [r0, r0 + n) of string column c are certainly valid
 * UTF-8: their bytes are one valid run and no row starts inside a
 * character (a byte 10xxxxxx), so every row is a valid piece of it. False
 * means "check row by row" (NULL rows' bytes are included here, so a false
 * is not yet an error). One pass over the bytes instead of a call per row. */
static bool strs_utf8_fast(const st_column *c, size_t r0, size_t n)
{
    const uint64_t *off = c->offsets;
    const char *b = c->bytes;
    if (!st_utf8_valid(b + off[r0], (size_t)(off[r0 + n] - off[r0]))) return false;
    for (size_t i = r0 + 1; i < r0 + n; i++)
        if (off[i] < off[r0 + n] && ((unsigned char)b[off[i]] & 0xC0) == 0x80) return false;
    return true;
}

/* Rows [r0, r0 + n) of column src, bound for column j: no NULL in a
 * non-nullable column, valid UTF-8 in a STR column. Row numbers in errors
 * are base + row. Reads only w's schema and path. */
static st_status rows_ok(const st_writer *w, size_t j, const st_column *src, size_t r0, size_t n, uint64_t base,
                         st_error *err)
{
    bool check = (src->validity && !w->fields[j].nullable) ||
                 (src->type == ST_TYPE_STR && !strs_utf8_fast(src, r0, n));
    for (size_t i = r0; check && i < r0 + n; i++) {
        if (!st_column_valid(src, i)) {
            if (!w->fields[j].nullable)
                return st_error_set(err, ST_ERR_INVALID, "'%s': NULL in non-nullable column '%s' at row %llu",
                                    w->path, w->fields[j].name, (unsigned long long)(base + i));
        } else if (src->type == ST_TYPE_STR) {
            size_t len;
            const char *str = st_column_str(src, i, &len);
            if (!st_utf8_valid(str, len))
                return st_error_set(err, ST_ERR_INVALID, "'%s': invalid UTF-8 in column '%s' at row %llu",
                                    w->path, w->fields[j].name, (unsigned long long)(base + i));
        }
    }
    return ST_OK;
}

/* rows_ok; a failure fails the writer. */
static st_status check_rows(st_writer *w, size_t j, const st_column *src, size_t r0, size_t n, uint64_t base,
                            st_error *err)
{
    st_status s = rows_ok(w, j, src, r0, n, base, err);
    if (s != ST_OK) w->failed = s;
    return s;
}

size_t st_writer_buffered_rows(const st_writer *w) { return w->buf[0].n_rows; }

st_status st_writer_write_chunk(st_writer *w, const st_column *cols, const st_stored_block *const *stored, size_t n,
                                st_error *err)
{
    if (w->failed) return st_error_set(err, w->failed, "writer for '%s' failed earlier", w->path);
    if (w->buf[0].n_rows)
        return st_error_set(err, ST_ERR_INVALID, "'%s': a chunk written whole while %zu rows are buffered", w->path,
                            w->buf[0].n_rows);
    if (n == 0) return ST_OK;
    if (n > w->chunk_rows) return st_error_set(err, ST_ERR_INVALID, "'%s': a chunk of %zu rows", w->path, n);
    for (size_t j = 0; j < w->n_fields; j++) {
        const st_stored_block *sb = stored ? stored[j] : NULL;
        if (sb && (sb->n_rows != n || !st_writer_stored_fits(w, j, sb)))
            return st_error_set(err, ST_ERR_INVALID, "'%s': the stored block for column '%s' does not fit", w->path,
                                w->fields[j].name);
        if (sb) continue;
        if (!cols || cols[j].type != w->fields[j].type || cols[j].n_rows != n)
            return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' needs %zu rows of %s", w->path,
                                w->fields[j].name, n, st_type_name(w->fields[j].type));
        ST_TRY(check_rows(w, j, &cols[j], 0, n, w->n_rows, err));
    }
    st_status s = chunk_slot(w, n, err);
    for (size_t j = 0; j < w->n_fields && s == ST_OK; j++) {
        st_block_ent *b = &w->blocks[w->n_chunks * w->n_fields + j];
        const st_stored_block *sb = stored ? stored[j] : NULL;
        s = sb ? stored_block(w, j, sb, b, err) : encode_block(w, j, &cols[j], n, b, err);
    }
    if (s != ST_OK) {
        w->failed = s;
        return s;
    }
    w->n_chunks++;
    w->n_rows += n;
    return ST_OK;
}

/* ---- chunks encoded on the caller's threads ---- */

struct st_enc_lane {
    enc_lane lane;
};

struct st_chunk_enc {
    enc_out *outs;      /* n_fields blocks */
    bool *done;         /* n_fields: column encoded (for rows col_first..+col_n) */
    size_t *col_n;
    uint64_t *col_first;
    size_t n_fields;
};

void st_enc_lane_free(st_enc_lane *l)
{
    if (!l) return;
    lane_free(&l->lane);
    free(l);
}

st_status st_enc_lane_create(st_enc_lane **out, st_error *err)
{
    *out = calloc(1, sizeof **out);
    if (*out && lane_init(&(*out)->lane)) return ST_OK;
    st_enc_lane_free(*out);
    *out = NULL;
    return st_error_set(err, ST_ERR_NOMEM, "out of memory for a block encoder");
}

void st_chunk_enc_free(st_chunk_enc *ce)
{
    if (!ce) return;
    for (size_t j = 0; ce->outs && j < ce->n_fields; j++) out_free(&ce->outs[j]);
    free(ce->outs);
    free(ce->done);
    free(ce->col_n);
    free(ce->col_first);
    free(ce);
}

st_status st_chunk_enc_create(const st_writer *w, st_chunk_enc **out, st_error *err)
{
    *out = NULL;
    st_chunk_enc *ce = calloc(1, sizeof *ce);
    size_t nf = w->n_fields ? w->n_fields : 1;
    if (ce) {
        ce->n_fields = w->n_fields;
        ce->outs = calloc(nf, sizeof *ce->outs);
        ce->done = calloc(nf, sizeof *ce->done);
        ce->col_n = calloc(nf, sizeof *ce->col_n);
        ce->col_first = calloc(nf, sizeof *ce->col_first);
    }
    if (!ce || !ce->outs || !ce->done || !ce->col_n || !ce->col_first) {
        st_chunk_enc_free(ce);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory for a chunk encoder of '%s'", w->path);
    }
    *out = ce;
    return ST_OK;
}

uint32_t st_writer_chunk_rows(const st_writer *w) { return w->chunk_rows; }

/* Column j of a chunk of n rows from first_row into ce with lane l. */
static st_status encode_column(const st_writer *w, size_t j, const st_column *c, size_t n, uint64_t first_row,
                               enc_lane *l, st_chunk_enc *ce, st_error *err)
{
    ce->done[j] = false;
    if (c->type != w->fields[j].type || c->n_rows != n)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' needs %zu rows of %s", w->path, w->fields[j].name,
                            n, st_type_name(w->fields[j].type));
    if ((c->type == ST_TYPE_STR || c->type == ST_TYPE_BYTES) && c->n_bytes > ST_CHUNK_MAX_BYTES)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' holds %zu bytes, more than one chunk takes",
                            w->path, w->fields[j].name, c->n_bytes);
    ST_TRY(rows_ok(w, j, c, 0, n, first_row, err));
    ST_TRY(encode_into(w, j, c, n, l, &ce->outs[j], err));
    ce->col_n[j] = n;
    ce->col_first[j] = first_row;
    ce->done[j] = true;
    return ST_OK;
}

static st_status chunk_args(const st_writer *w, size_t j, size_t n, const st_chunk_enc *ce, st_error *err)
{
    if (ce->n_fields != w->n_fields || j >= w->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': a chunk encoder made for another schema", w->path);
    if (n == 0 || n > w->chunk_rows) return st_error_set(err, ST_ERR_INVALID, "'%s': a chunk of %zu rows", w->path, n);
    return ST_OK;
}

st_status st_writer_encode_column(const st_writer *w, size_t j, const st_column *c, size_t n, uint64_t first_row,
                                  st_enc_lane *l, st_chunk_enc *ce, st_error *err)
{
    ST_TRY(chunk_args(w, j, n, ce, err));
    return encode_column(w, j, c, n, first_row, &l->lane, ce, err);
}

st_status st_writer_encode_runs(const st_writer *w, size_t j, const uint64_t *val, const uint32_t *len, size_t n_runs,
                                uint64_t first_row, st_enc_lane *l, st_chunk_enc *ce, bool *done, st_error *err)
{
    *done = false;
    if (ce->n_fields != w->n_fields || j >= w->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': a chunk encoder made for another schema", w->path);
    st_type t = w->fields[j].type;
    if ((t != ST_TYPE_BOOL && t != ST_TYPE_I32 && t != ST_TYPE_I64) || n_runs == 0) return ST_OK;
    int64_t mn, mx;
    uint64_t n = runs_zone(val, len, n_runs, &mn, &mx);
    ST_TRY(chunk_args(w, j, n > SIZE_MAX ? SIZE_MAX : (size_t)n, ce, err));
    enc_out *o = &ce->outs[j];
    ce->done[j] = false;
    st_buf_reset(&l->lane.payload);
    int enc = 0;
    bool made;
    if (st_codec_encode_runs(t, val, len, n_runs, l->lane.scratch, &l->lane.payload, &enc, &made) != ST_OK)
        return st_error_set(err, ST_ERR_NOMEM, "out of memory encoding '%s'", w->fields[j].name);
    if (!made) return ST_OK;
    /* the zone map encode_into takes from the encoder's range of the values */
    memset(&o->b, 0, sizeof o->b);
    o->b.has_minmax = 1;
    o->b.min = (uint64_t)mn;
    o->b.max = (uint64_t)mx;
    o->b.raw_bytes = n * st_type_width(t);
    ST_TRY(seal_payload(w, j, t, (size_t)n, enc, 0, &l->lane, o, err));
    ce->col_n[j] = (size_t)n;
    ce->col_first[j] = first_row;
    ce->done[j] = true;
    *done = true;
    return ST_OK;
}

/* Coded rows bound for column j (STR or BYTES, dict of its type): every
 * code inside dict and, for STR, every string used valid UTF-8, each
 * checked once (the lane's bitmap, cleared again, marks them); *bytes
 * gets the rows' string bytes. */
/* The first bad row of codes_ok's checks, in row order (a code outside
 * the dictionary, a string that is not UTF-8), as its error; rows [0, n)
 * are known to hold one. */
static st_status first_bad_code(const st_writer *w, size_t j, const st_column *dict, const uint32_t *rows, size_t n,
                                uint64_t first_row, st_error *err)
{
    const uint64_t *off = dict->offsets;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = rows[i];
        if (c >= dict->n_rows)
            return st_error_set(err, ST_ERR_INVALID, "'%s': code %" PRIu32 " at row %llu of column '%s' is not in its "
                                "dictionary of %zu strings", w->path, c, (unsigned long long)(first_row + i),
                                w->fields[j].name, dict->n_rows);
        if (dict->type == ST_TYPE_STR && !st_utf8_valid(dict->bytes + off[c], (size_t)(off[c + 1] - off[c])))
            return st_error_set(err, ST_ERR_INVALID, "'%s': invalid UTF-8 in column '%s' at row %llu", w->path,
                                w->fields[j].name, (unsigned long long)(first_row + i));
    }
    return st_error_set(err, ST_ERR_INTERNAL, "'%s': column '%s': no bad code found", w->path, w->fields[j].name);
}

/* Checks codes rows[0, n) into dict (every code inside it, every string
 * it takes valid UTF-8 for STR) and adds up their strings' bytes into
 * *bytes: the largest code first (a reduction the compiler vectorises),
 * then a bit per code taken (without a branch) and each string taken
 * checked once; any failure is named by first_bad_code, in row order. */
static st_status codes_ok(const st_writer *w, size_t j, const st_column *dict, const uint32_t *rows, size_t n,
                          uint64_t first_row, enc_lane *l, uint64_t *bytes, st_error *err)
{
    *bytes = 0;
    uint32_t hi = 0;
    for (size_t i = 0; i < n; i++) hi = rows[i] > hi ? rows[i] : hi;
    if (n && hi >= dict->n_rows) return first_bad_code(w, j, dict, rows, n, first_row, err);
    size_t words = (dict->n_rows + 63) / 64;
    if (words > l->checked_words) {
        uint64_t *m = calloc(words, sizeof *m);
        if (!m) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        free(l->checked);
        l->checked = m;
        l->checked_words = words;
    }
    const uint64_t *off = dict->offsets;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = rows[i];
        total += off[c + 1] - off[c];
        l->checked[c >> 6] |= (uint64_t)1 << (c & 63);
    }
    bool bad = false;
    for (size_t k = 0; n && k <= hi / 64; k++) {
        for (uint64_t m = l->checked[k]; m && dict->type == ST_TYPE_STR; m &= m - 1) {
            size_t c = k * 64 + (size_t)__builtin_ctzll(m);
            bad |= !st_utf8_valid(dict->bytes + off[c], (size_t)(off[c + 1] - off[c]));
        }
        l->checked[k] = 0;
    }
    if (bad) return first_bad_code(w, j, dict, rows, n, first_row, err);
    *bytes = total;
    return ST_OK;
}

st_status st_writer_encode_str_codes(const st_writer *w, size_t j, const st_column *dict, const uint32_t *rows,
                                     size_t n, uint64_t first_row, st_enc_lane *l, st_chunk_enc *ce, st_error *err)
{
    ST_TRY(chunk_args(w, j, n, ce, err));
    ce->done[j] = false;
    st_type t = w->fields[j].type;
    if ((t != ST_TYPE_STR && t != ST_TYPE_BYTES) || dict->type != t || dict->null_count)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' takes no codes into a dictionary of %s values "
                            "with %zu NULLs", w->path, w->fields[j].name, st_type_name(dict->type), dict->null_count);
    uint64_t bytes = 0;
    ST_TRY(codes_ok(w, j, dict, rows, n, first_row, &l->lane, &bytes, err));
    if (bytes > ST_CHUNK_MAX_BYTES)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' holds %llu bytes, more than one chunk takes",
                            w->path, w->fields[j].name, (unsigned long long)bytes);
    enc_out *o = &ce->outs[j];
    memset(&o->b, 0, sizeof o->b);
    st_buf_reset(&l->lane.payload);
    int enc = ST_ENC_CONST;
    st_status s = st_codec_encode_str_codes(dict, rows, n, -1, l->lane.scratch, &l->lane.payload, &enc, &o->b.raw_bytes);
    if (s != ST_OK) return st_error_set(err, s, "out of memory encoding '%s'", w->fields[j].name);
    ST_TRY(seal_payload(w, j, t, n, enc, 0, &l->lane, o, err));
    ce->col_n[j] = n;
    ce->col_first[j] = first_row;
    ce->done[j] = true;
    return ST_OK;
}

st_status st_writer_encode_chunk(const st_writer *w, const st_column *cols, size_t n, uint64_t first_row,
                                 st_enc_lane *l, st_chunk_enc *ce, st_error *err)
{
    for (size_t j = 0; j < ce->n_fields; j++) ce->done[j] = false; /* on failure ce holds nothing */
    for (size_t j = 0; j < w->n_fields; j++) {
        ST_TRY(chunk_args(w, j, n, ce, err));
        ST_TRY(encode_column(w, j, &cols[j], n, first_row, &l->lane, ce, err));
    }
    return ST_OK;
}

/* True when every column of ce is encoded for the same rows: *n and
 * *first_row get them. */
static bool chunk_complete(const st_chunk_enc *ce, size_t *n, uint64_t *first_row)
{
    if (ce->n_fields == 0 || !ce->done[0]) return false;
    *n = ce->col_n[0];
    *first_row = ce->col_first[0];
    for (size_t j = 1; j < ce->n_fields; j++)
        if (!ce->done[j] || ce->col_n[j] != *n || ce->col_first[j] != *first_row) return false;
    return true;
}

st_status st_writer_put_chunk(st_writer *w, st_chunk_enc *ce, st_error *err)
{
    if (w->failed) return st_error_set(err, w->failed, "writer for '%s' failed earlier", w->path);
    size_t n = 0;
    uint64_t first_row = 0;
    if (ce->n_fields != w->n_fields || !chunk_complete(ce, &n, &first_row))
        return st_error_set(err, ST_ERR_INVALID, "'%s': no encoded chunk to put", w->path);
    if (w->buf[0].n_rows)
        return st_error_set(err, ST_ERR_INVALID, "'%s': an encoded chunk put while %zu rows are buffered", w->path,
                            w->buf[0].n_rows);
    /* the chunks st_writer_write would cut: in row order, every one but
     * the last full */
    if (first_row != w->n_rows || (w->n_chunks && w->chunk_n[w->n_chunks - 1] != w->chunk_rows))
        return st_error_set(err, ST_ERR_INVALID, "'%s': the chunk of rows from %llu put after %llu rows in %zu chunks",
                            w->path, (unsigned long long)first_row, (unsigned long long)w->n_rows, w->n_chunks);
    st_status s = chunk_slot(w, n, err);
    st_block_ent *blocks = s == ST_OK ? &w->blocks[w->n_chunks * w->n_fields] : NULL;
    for (size_t j = 0; j < w->n_fields && s == ST_OK; j++) s = emit_out(w, j, &ce->outs[j], n, &blocks[j], err);
    if (s != ST_OK) {
        w->failed = s;
        return s;
    }
    w->n_chunks++;
    w->n_rows += n;
    for (size_t j = 0; j < ce->n_fields; j++) ce->done[j] = false;
    return ST_OK;
}

st_status st_writer_write(st_writer *w, const st_column *cols, size_t first, size_t n_rows, st_error *err)
{
    if (w->failed) return st_error_set(err, w->failed, "writer for '%s' failed earlier", w->path);
    for (size_t j = 0; j < w->n_fields; j++) {
        if (cols[j].type != w->fields[j].type)
            return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s, the schema says %s", w->path,
                                w->fields[j].name, st_type_name(cols[j].type), st_type_name(w->fields[j].type));
        if (first + n_rows > cols[j].n_rows)
            return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' has %zu rows, asked for %zu..%zu", w->path,
                                w->fields[j].name, cols[j].n_rows, first, first + n_rows);
    }
    size_t done = 0;
    while (done < n_rows) {
        size_t room = w->chunk_rows - w->buf[0].n_rows;
        size_t take = n_rows - done < room ? n_rows - done : room;
        size_t r0 = first + done;
        /* string columns: cut the chunk before it holds ST_CHUNK_MAX_BYTES
         * (a single larger row still makes a chunk of its own) */
        bool cut = false;
        for (size_t j = 0; j < w->n_fields; j++) {
            const st_column *src = &cols[j];
            if (src->type != ST_TYPE_STR && src->type != ST_TYPE_BYTES) continue;
            size_t have = w->buf[j].n_bytes;
            const uint64_t *off = src->offsets;
            if (have + (off[r0 + take] - off[r0]) <= ST_CHUNK_MAX_BYTES) continue;
            size_t lo = 0, hi = take; /* largest t with have + bytes(t) <= max */
            while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;
                if (have + (off[r0 + mid] - off[r0]) <= ST_CHUNK_MAX_BYTES) lo = mid;
                else hi = mid - 1;
            }
            take = lo;
            cut = true;
        }
        if (take == 0) {
            if (w->buf[0].n_rows > 0) {
                st_status s = flush_chunk(w, err);
                if (s != ST_OK) {
                    w->failed = s;
                    return s;
                }
                continue;
            }
            take = 1; /* one row over the limit on its own */
        }
        /* a whole chunk of the caller's columns, nothing buffered: encoded
         * from them directly (same blocks, no copy) */
        bool whole = w->buf[0].n_rows == 0 && r0 == 0 && take == w->chunk_rows && !cut;
        for (size_t j = 0; whole && j < w->n_fields; j++) whole = cols[j].n_rows == take;
        for (size_t j = 0; j < w->n_fields; j++) {
            const st_column *src = &cols[j];
            st_column *dst = &w->buf[j];
            bool var = src->type == ST_TYPE_STR || src->type == ST_TYPE_BYTES;
            ST_TRY(check_rows(w, j, src, r0, take, w->n_rows - first, err));
            if (whole) continue;
            st_status s = st_column_append_range(dst, src, r0, take);
            if (s != ST_OK) return st_error_set(err, s, "out of memory");
            if (var && dst->n_bytes > w->buffered_bytes) w->buffered_bytes = dst->n_bytes;
        }
        done += take;
        w->n_rows += take;
        if (whole) {
            st_status s = flush_cols(w, cols, err);
            if (s != ST_OK) {
                w->failed = s;
                return s;
            }
            continue;
        }
        if (w->buf[0].n_rows == w->chunk_rows || w->buffered_bytes >= ST_CHUNK_MAX_BYTES || cut) {
            st_status s = flush_chunk(w, err);
            if (s != ST_OK) {
                w->failed = s;
                return s;
            }
        }
    }
    return ST_OK;
}

static void put_str16(st_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 65535) n = 65535;
    uint8_t t[2];
    st_put_u16(t, (uint16_t)n);
    st_buf_append(b, t, 2);
    st_buf_append(b, s ? s : "", n);
}
static void put_str32(st_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    st_buf_put_u32(b, (uint32_t)n);
    st_buf_append(b, s ? s : "", n);
}

static void fsync_dir_of(const char *path)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (slash == d) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(d, sizeof d, ".");
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

st_status st_writer_close(st_writer *w, st_error *err)
{
    if (!w) return ST_OK;
    st_status s = w->failed ? st_error_set(err, w->failed, "writer for '%s' failed earlier", w->path) : ST_OK;
    if (s == ST_OK) s = flush_chunk(w, err);
    if (s == ST_OK && w->fp_content) {
        uint64_t h = st_hash64(w->meta.fingerprint, &w->content_hash, sizeof w->content_hash);
        w->meta.fingerprint = st_hash64(h, &w->n_rows, sizeof w->n_rows);
    }
    if (s == ST_OK) {
        st_buf *f = &w->io;
        st_buf_reset(f);
        st_buf_put_u32(f, (uint32_t)w->n_fields);
        for (size_t j = 0; j < w->n_fields; j++) {
            st_buf_put_u8(f, (uint8_t)w->fields[j].type);
            st_buf_put_u8(f, w->fields[j].nullable ? 1 : 0);
            put_str16(f, w->fields[j].name);
            put_str32(f, w->fields[j].description ? w->fields[j].description : "");
        }
        st_buf_put_u64(f, w->n_rows);
        put_str16(f, w->meta.layer);
        put_str16(f, w->meta.table);
        st_buf_put_u32(f, (uint32_t)w->meta.n_inputs);
        for (size_t i = 0; i < w->meta.n_inputs; i++) put_str16(f, w->inputs[i]);
        put_str32(f, w->meta.params);
        st_buf_put_u64(f, w->meta.fingerprint);
        st_buf_put_u32(f, (uint32_t)w->meta.n_kv);
        for (size_t i = 0; i < w->meta.n_kv; i++) {
            put_str16(f, w->kv[i].key);
            put_str32(f, w->kv[i].value);
        }
        st_buf_put_u32(f, (uint32_t)w->n_chunks);
        for (size_t c = 0; c < w->n_chunks; c++) {
            st_buf_put_u32(f, w->chunk_n[c]);
            for (size_t j = 0; j < w->n_fields; j++) {
                const st_block_ent *b = &w->blocks[c * w->n_fields + j];
                st_buf_put_u64(f, b->offset);
                st_buf_put_u32(f, b->size);
                st_buf_put_u8(f, b->encoding);
                st_buf_put_u8(f, b->flags);
                st_buf_put_u8(f, b->has_minmax);
                st_buf_put_u8(f, 0);
                st_buf_put_u32(f, b->null_count);
                st_buf_put_u64(f, b->raw_bytes);
                st_buf_put_u64(f, b->min);
                st_buf_put_u64(f, b->max);
            }
        }
        st_buf_put_u32(f, 0); /* optional sections: none in 1.0 */
        if (!st_buf_ok(f)) s = st_error_set(err, ST_ERR_NOMEM, "out of memory writing the footer of '%s'", w->path);
        uint8_t tail[ST_TAIL_BYTES];
        if (s == ST_OK) {
            st_put_u64(tail, f->len);
            st_put_u32(tail + 8, st_crc32c(0, f->data, f->len));
            st_put_u16(tail + 12, ST_FORMAT_MAJOR);
            st_put_u16(tail + 14, ST_FORMAT_MINOR);
            memcpy(tail + 16, ST_MAGIC, 8);
            s = write_all(w, f->data, f->len, err);
        }
        if (s == ST_OK) s = write_all(w, tail, sizeof tail, err);
    }
    bool sync = !w->opts.no_fsync && !w->opts.defer_fsync;
    if (s == ST_OK && sync && fsync(w->fd) != 0)
        s = st_error_set(err, ST_ERR_IO, "cannot fsync '%s': %s", w->tmp, strerror(errno));
#ifdef SYNC_FILE_RANGE_WRITE
    /* deferred: start the write-back now, so the publisher's fsync waits less */
    if (s == ST_OK && w->opts.defer_fsync) (void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    if (s == ST_OK && close(w->fd) != 0) s = st_error_set(err, ST_ERR_IO, "cannot close '%s': %s", w->tmp, strerror(errno));
    w->fd = -1;
    if (s == ST_OK && rename(w->tmp, w->path) != 0)
        s = st_error_set(err, ST_ERR_IO, "cannot rename '%s' into place: %s", w->tmp, strerror(errno));
    if (s == ST_OK && sync) fsync_dir_of(w->path);
    if (s != ST_OK) unlink(w->tmp);
    writer_free(w);
    return s;
}

void st_writer_fingerprint_content(st_writer *w) { w->fp_content = true; }

void st_writer_abort(st_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlink(w->tmp);
    writer_free(w);
}
