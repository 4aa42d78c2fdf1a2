/*
 * reader.c: st_reader, reading .strata files without trusting them.
 *
 * open: the file is mapped read-only (or a caller buffer is borrowed);
 * the tail is checked (magic, version, footer length against the file
 * size), the footer's CRC32C is verified before a single field of it is
 * parsed, then every field is parsed through a bounds-checked cursor and
 * the chunk directory is validated: blocks must tile the bytes between
 * the header and the footer exactly, row counts must add up, encodings
 * and types must be known. After open, any offset the reader uses has
 * been checked. read_block verifies the block's CRC32C before decoding,
 * bounds the decompressed size (ST_MAX_BLOCK_RAW), and the codecs never
 * read past their payload. Every failure is ST_ERR_CORRUPT with the file,
 * column and chunk in the message.
 *
 * A reader is single-threaded (it owns one decompression buffer); open
 * one reader per thread to read a file in parallel.
 *
 * A partitioned table (a manifest naming part files, manifest.c) opens
 * as one reader holding a reader per part: its chunks are the parts'
 * chunks in manifest order, and the block functions hand each chunk to
 * its part's reader (chunk_part[c], chunk_local[c]).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "format_internal.h"
#include "manifest_internal.h"

#define PART_PATH_MAX 4096 /* a part's path, as strata/warehouse.h's ST_PATH_MAX */

struct st_reader {
    char name[512];
    const uint8_t *data;
    size_t size;
    bool mapped;
    size_t resident_from;   /* mapped: bytes below this were handed back */
    int major, minor;
    size_t n_fields;
    st_field *fields;
    st_file_meta meta;
    const char **inputs;
    st_kv *kv;
    char *strings;          /* all footer strings, NUL-terminated, owned */
    uint64_t n_rows;
    size_t n_chunks;
    uint32_t *chunk_n;
    st_block_ent *blocks;
    void *zbuf;
    size_t zcap;
    ZSTD_DCtx *dctx;
    /* partitioned: fields, meta strings and kv borrowed from parts[0] */
    st_reader **parts;
    size_t n_parts;
    uint32_t *chunk_part, *chunk_local; /* per chunk: its part, its index there */
};

const char *st_encoding_name(int enc)
{
    static const char *const names[] = {"plain", "for_bitpack", "delta", "rle", "dict", "const"};
    return enc >= 0 && enc < 6 ? names[enc] : "?";
}

typedef struct cur {
    const uint8_t *p;
    size_t len, at;
    bool bad;
} cur;

static const uint8_t *need(cur *c, size_t n)
{
    if (c->bad || n > c->len - c->at) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p + c->at;
    c->at += n;
    return p;
}
static uint8_t u8(cur *c)
{
    const uint8_t *p = need(c, 1);
    return p ? p[0] : 0;
}
static uint16_t u16(cur *c)
{
    const uint8_t *p = need(c, 2);
    return p ? st_get_u16(p) : 0;
}
static uint32_t u32(cur *c)
{
    const uint8_t *p = need(c, 4);
    return p ? st_get_u32(p) : 0;
}
static uint64_t u64(cur *c)
{
    const uint8_t *p = need(c, 8);
    return p ? st_get_u64(p) : 0;
}

/* Strings are copied into one arena sized by the footer length (every
 * string is shorter than the footer, so the arena cannot overflow). */
typedef struct arena {
    char *p;
    size_t at, cap;
} arena;

static const char *str_n(cur *c, arena *a, size_t n)
{
    const uint8_t *p = need(c, n);
    if (!p || a->at + n + 1 > a->cap) {
        c->bad = true;
        return "";
    }
    char *s = a->p + a->at;
    memcpy(s, p, n);
    s[n] = '\0';
    a->at += n + 1;
    return s;
}

static st_status corrupt(st_reader *r, st_error *err, const char *what)
{
    return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged or not a strata file: %s", r->name, what);
}

static st_status parse(st_reader *r, st_error *err)
{
    if (r->size < ST_HEADER_BYTES + ST_TAIL_BYTES) return corrupt(r, err, "too short");
    const uint8_t *tail = r->data + r->size - ST_TAIL_BYTES;
    if (memcmp(tail + 16, ST_MAGIC, 8) != 0) return corrupt(r, err, "bad magic at the end");
    if (memcmp(r->data, ST_MAGIC, 8) != 0) return corrupt(r, err, "bad magic at the start");
    if (st_get_u32(r->data + 12) != st_crc32c(0, r->data, 12)) return corrupt(r, err, "header checksum mismatch");
    r->major = st_get_u16(tail + 12);
    r->minor = st_get_u16(tail + 14);
    if (st_get_u16(r->data + 8) != r->major || st_get_u16(r->data + 10) != r->minor)
        return corrupt(r, err, "header and tail disagree on the version");
    if (r->major > ST_FORMAT_MAJOR)
        return st_error_set(err, ST_ERR_UNSUPPORTED, "'%s' has format version %d.%d; this strata reads %d.x", r->name,
                            r->major, r->minor, ST_FORMAT_MAJOR);
    if (r->major < 1) return corrupt(r, err, "bad version");
    uint64_t flen = st_get_u64(tail);
    if (flen > r->size - ST_HEADER_BYTES - ST_TAIL_BYTES) return corrupt(r, err, "footer length exceeds the file");
    const uint8_t *fp = tail - flen;
    if (st_get_u32(tail + 8) != st_crc32c(0, fp, (size_t)flen)) return corrupt(r, err, "footer checksum mismatch");
    cur c = {fp, (size_t)flen, 0, false};
    arena a = {malloc((size_t)flen + 1), 0, (size_t)flen + 1};
    if (!a.p) return st_error_set(err, ST_ERR_NOMEM, "out of memory reading '%s'", r->name);
    r->strings = a.p;
    uint32_t nf = u32(&c);
    if (nf == 0 || nf > 65535 || (uint64_t)nf * 8 > flen) return corrupt(r, err, "bad column count");
    r->n_fields = nf;
    r->fields = calloc(nf, sizeof *r->fields);
    if (!r->fields) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0; j < nf; j++) {
        uint8_t t = u8(&c);
        uint8_t nl = u8(&c);
        if (t < ST_TYPE_BOOL || t > ST_TYPE_BYTES || nl > 1) return corrupt(r, err, "bad column type");
        r->fields[j].type = (st_type)t;
        r->fields[j].nullable = nl;
        r->fields[j].name = str_n(&c, &a, u16(&c));
        r->fields[j].description = str_n(&c, &a, u32(&c));
        if (c.bad) return corrupt(r, err, "schema truncated");
    }
    r->n_rows = u64(&c);
    r->meta.layer = str_n(&c, &a, u16(&c));
    r->meta.table = str_n(&c, &a, u16(&c));
    uint32_t ni = u32(&c);
    if (c.bad || (uint64_t)ni * 2 > flen) return corrupt(r, err, "bad lineage");
    r->inputs = calloc(ni + 1, sizeof *r->inputs);
    if (!r->inputs) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < ni; i++) r->inputs[i] = str_n(&c, &a, u16(&c));
    r->meta.inputs = r->inputs;
    r->meta.n_inputs = ni;
    r->meta.params = str_n(&c, &a, u32(&c));
    r->meta.fingerprint = u64(&c);
    uint32_t nkv = u32(&c);
    if (c.bad || (uint64_t)nkv * 6 > flen) return corrupt(r, err, "bad metadata");
    r->kv = calloc(nkv + 1, sizeof *r->kv);
    if (!r->kv) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < nkv; i++) {
        r->kv[i].key = str_n(&c, &a, u16(&c));
        r->kv[i].value = str_n(&c, &a, u32(&c));
    }
    r->meta.kv = r->kv;
    r->meta.n_kv = nkv;
    uint32_t nc = u32(&c);
    const size_t ent = 44; /* bytes per block entry (FORMAT.md) */
    if (c.bad || (uint64_t)nc * (4 + (uint64_t)nf * ent) > flen - c.at) return corrupt(r, err, "bad chunk directory");
    r->n_chunks = nc;
    r->chunk_n = calloc(nc + 1, sizeof *r->chunk_n);
    r->blocks = calloc((size_t)nc * nf + 1, sizeof *r->blocks);
    if (!r->chunk_n || !r->blocks) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    uint64_t expect = ST_HEADER_BYTES, rows = 0;
    for (uint32_t k = 0; k < nc; k++) {
        r->chunk_n[k] = u32(&c);
        if (r->chunk_n[k] == 0 || r->chunk_n[k] > ST_CHUNK_ROWS)
            return corrupt(r, err, "chunk row count outside 1..65536");
        rows += r->chunk_n[k];
        for (uint32_t j = 0; j < nf; j++) {
            st_block_ent *b = &r->blocks[(size_t)k * nf + j];
            b->offset = u64(&c);
            b->size = u32(&c);
            b->encoding = u8(&c);
            b->flags = u8(&c);
            b->has_minmax = u8(&c);
            (void)u8(&c);
            b->null_count = u32(&c);
            b->raw_bytes = u64(&c);
            b->min = u64(&c);
            b->max = u64(&c);
            if (b->offset != expect || b->size < ST_BLOCK_HEADER_BYTES ||
                b->flags > 3 || b->has_minmax > 1 || b->null_count > r->chunk_n[k])
                return corrupt(r, err, "bad block entry");
            expect += b->size;
        }
    }
    uint32_t nsec = u32(&c);
    for (uint32_t i = 0; i < nsec && !c.bad; i++) {
        (void)u32(&c);          /* tag: none known in 1.0, skip */
        (void)need(&c, u32(&c));
    }
    if (c.bad) return corrupt(r, err, "footer truncated");
    if (c.at != c.len) return corrupt(r, err, "trailing bytes in the footer");
    if (expect != (uint64_t)(fp - r->data)) return corrupt(r, err, "blocks do not tile the file");
    if (rows != r->n_rows) return corrupt(r, err, "chunk row counts do not add up");
    return ST_OK;
}

static st_status open_parts(st_reader *r, const char *path, st_reader **out, st_error *err);

static st_status finish_open(st_reader *r, st_reader **out, st_error *err)
{
    st_status s = parse(r, err);
    if (s != ST_OK) {
        st_reader_close(r);
        return s;
    }
    *out = r;
    return ST_OK;
}

/* st_reader_open; a manifest is refused unless manifest_ok (a part must
 * be a layer file: no manifest names another manifest, so opening never
 * recurses). */
static st_status open_path(st_reader **out, const char *path, bool manifest_ok, st_error *err)
{
    *out = NULL;
    st_reader *r = calloc(1, sizeof *r);
    if (!r) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        st_status s = st_error_set(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO, "cannot open '%s': %s", path,
                                   strerror(errno));
        free(r);
        return s;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        free(r);
        return st_error_set(err, ST_ERR_IO, "'%s' is not a regular file", path);
    }
    r->size = (size_t)sb.st_size;
    if (r->size > 0) {
        void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            free(r);
            return st_error_set(err, ST_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        }
        r->data = m;
        r->mapped = true;
    }
    close(fd);
    if (st_manifest_is(r->data, r->size)) {
        if (!manifest_ok) {
            st_reader_close(r);
            return st_error_set(err, ST_ERR_CORRUPT, "'%s' is a manifest, not a part file", path);
        }
        ST_TRY(open_parts(r, path, out, err));
    } else {
        ST_TRY(finish_open(r, out, err));
    }
    st_status s = st_file_check_place(st_reader_meta(*out), path, err);
    if (s != ST_OK) {
        st_reader_close(*out);
        *out = NULL;
    }
    return s;
}

st_status st_reader_open(st_reader **out, const char *path, st_error *err)
{
    return open_path(out, path, true, err);
}

st_status st_reader_open_mem(st_reader **out, const void *buf, size_t len, const char *name, st_error *err)
{
    *out = NULL;
    st_reader *r = calloc(1, sizeof *r);
    if (!r) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", name ? name : "<memory>");
    r->data = buf;
    r->size = len;
    return finish_open(r, out, err);
}

void st_reader_close(st_reader *r)
{
    if (!r) return;
    if (r->mapped) munmap((void *)r->data, r->size);
    if (r->parts) {
        for (size_t i = 0; i < r->n_parts; i++) st_reader_close(r->parts[i]);
        free(r->parts);
        free(r->chunk_part);
        free(r->chunk_local);
        free(r->chunk_n);
        free(r);
        return;
    }
    free(r->fields);
    free(r->inputs);
    free(r->kv);
    free(r->strings);
    free(r->chunk_n);
    free(r->blocks);
    free(r->zbuf);
    ZSTD_freeDCtx(r->dctx);
    free(r);
}

size_t st_reader_n_fields(const st_reader *r) { return r->n_fields; }
const st_field *st_reader_field(const st_reader *r, size_t i) { return i < r->n_fields ? &r->fields[i] : NULL; }
int st_reader_find(const st_reader *r, const char *name)
{
    for (size_t j = 0; j < r->n_fields; j++)
        if (!strcmp(r->fields[j].name, name)) return (int)j;
    return -1;
}
uint64_t st_reader_n_rows(const st_reader *r) { return r->n_rows; }
size_t st_reader_n_chunks(const st_reader *r) { return r->n_chunks; }
uint32_t st_reader_chunk_rows(const st_reader *r, size_t c) { return c < r->n_chunks ? r->chunk_n[c] : 0; }
const st_file_meta *st_reader_meta(const st_reader *r) { return &r->meta; }
void st_reader_version(const st_reader *r, int *major, int *minor)
{
    *major = r->major;
    *minor = r->minor;
}

st_status st_reader_block_info(const st_reader *r, size_t c, size_t col, st_block_info *out)
{
    if (c >= r->n_chunks || col >= r->n_fields) return ST_ERR_INVALID;
    if (r->parts) return st_reader_block_info(r->parts[r->chunk_part[c]], r->chunk_local[c], col, out);
    const st_block_ent *b = &r->blocks[c * r->n_fields + col];
    memset(out, 0, sizeof *out);
    out->n_rows = r->chunk_n[c];
    out->null_count = b->null_count;
    out->encoding = b->encoding;
    out->zstd = (b->flags & ST_BLOCK_FLAG_ZSTD) != 0;
    out->size_bytes = b->size;
    out->raw_bytes = b->raw_bytes;
    out->has_minmax = b->has_minmax;
    if (r->fields[col].type == ST_TYPE_F64) {
        memcpy(&out->min_f64, &b->min, 8);
        memcpy(&out->max_f64, &b->max, 8);
    } else {
        out->min_i64 = (int64_t)b->min;
        out->max_i64 = (int64_t)b->max;
    }
    return ST_OK;
}

/* The error for a damaged block: chunk c of column f of r. */
static st_status damaged(const st_reader *r, const st_field *f, size_t c, const char *what, st_error *err)
{
    return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged: column '%s', chunk %zu: %s", r->name, f->name, c, what);
}

/* In the block readers below, with r, f, c and err in scope. */
#define BAD(what) return damaged(r, f, c, what, err)

/* Checks block b's size and CRC32C and its header against the footer. */
static st_status block_checked(const st_reader *r, const st_field *f, size_t c, const st_block_ent *b, uint32_t n,
                               st_error *err)
{
    const uint8_t *h = r->data + b->offset;
    uint32_t stored = st_get_u32(h + 12);
    if (stored != b->size - ST_BLOCK_HEADER_BYTES) BAD("block size disagrees with the footer");
    uint32_t crc = st_crc32c(0, h, 20);
    crc = st_crc32c(crc, h + ST_BLOCK_HEADER_BYTES, stored);
    if (crc != st_get_u32(h + 20)) BAD("checksum mismatch");
    if (h[0] != b->encoding || h[1] != b->flags || st_get_u16(h + 2) != f->type || st_get_u32(h + 4) != n ||
        st_get_u32(h + 8) != b->null_count)
        BAD("block header disagrees with the footer");
    return ST_OK;
}

/* Checks block b (chunk c of column f, n rows) and decompresses it when
 * zstd into *buf (room *cap, grown: r's zbuf or a hold's): *pp, *lenp
 * are its payload (validity bitmap and values). */
static st_status block_payload_into(st_reader *r, const st_field *f, size_t c, const st_block_ent *b, uint32_t n,
                                    void **buf, size_t *cap, const uint8_t **pp, size_t *lenp, st_error *err)
{
    ST_TRY(block_checked(r, f, c, b, n, err));
    const uint8_t *h = r->data + b->offset;
    uint32_t stored = st_get_u32(h + 12), raw = st_get_u32(h + 16);
    const uint8_t *p = h + ST_BLOCK_HEADER_BYTES;
    size_t len = stored;
    if (b->flags & ST_BLOCK_FLAG_ZSTD) {
        if (raw > ST_MAX_BLOCK_RAW) BAD("decoded size over the limit");
        unsigned long long fs = ZSTD_getFrameContentSize(p, stored);
        if (fs != raw) BAD("zstd frame size disagrees with the header");
        if (raw > *cap) {
            void *z = realloc(*buf, raw ? raw : 1);
            if (!z) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
            *buf = z;
            *cap = raw;
        }
        /* made at the first compressed block: a reader of zone maps or
         * plain blocks never needs one */
        if (!r->dctx && !(r->dctx = ZSTD_createDCtx())) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        size_t got = ZSTD_decompressDCtx(r->dctx, *buf, *cap, p, stored);
        if (ZSTD_isError(got) || got != raw) BAD("zstd frame does not decode");
        p = *buf;
        len = raw;
    } else if (raw != stored) {
        BAD("sizes disagree");
    }
    *pp = p;
    *lenp = len;
    return ST_OK;
}

static st_status block_payload(st_reader *r, const st_field *f, size_t c, const st_block_ent *b, uint32_t n,
                               const uint8_t **pp, size_t *lenp, st_error *err)
{
    return block_payload_into(r, f, c, b, n, &r->zbuf, &r->zcap, pp, lenp, err);
}

/* An all-NULL block (a CONST block of no values and a clear bitmap vb):
 * out gets n zeroed values or empty strings, all NULL. */
static st_status read_all_null(const st_reader *r, const st_field *f, size_t c, const st_block_ent *b, uint32_t n,
                               const uint8_t *vb, size_t len, st_column *out, st_error *err)
{
    if (!(b->flags & ST_BLOCK_FLAG_VALIDITY) || len != 0 || b->encoding != ST_ENC_CONST)
        BAD("all-NULL block with values");
    for (size_t i = 0; i < n; i++)
        if (vb[i >> 3]) BAD("all-NULL block with a present value");
    /* bulk: zeroed values / empty strings and an all-clear bitmap */
    st_status s;
    if ((s = st_column_reserve(out, n, 0)) != ST_OK) return st_error_set(err, s, "out of memory");
    if (out->type == ST_TYPE_STR || out->type == ST_TYPE_BYTES) memset(out->offsets, 0, (n + 1) * sizeof(uint64_t));
    else memset(out->data, 0, n * st_type_width(out->type));
    size_t words = (out->cap_rows + 63) / 64;
    uint64_t *v = calloc(words ? words : 1, sizeof *v);
    if (!v) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    free(out->validity);
    out->validity = v;
    out->n_rows = n;
    out->n_bytes = 0;
    out->null_count = n;
    return ST_OK;
}

/* The file's validity bitmap vb (n bits, LSB first, padding zero) as
 * out's validity; its NULLs must be b's null count, and at least one. */
static st_status read_validity(const st_reader *r, const st_field *f, size_t c, const st_block_ent *b, uint32_t n,
                               const uint8_t *vb, st_column *out, st_error *err)
{
    size_t words = (out->cap_rows + 63) / 64;
    uint64_t *v = calloc(words ? words : 1, sizeof *v);
    if (!v) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    size_t nulls = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = (vb[i >> 3] >> (i & 7)) & 1;
        if (ok) v[i >> 6] |= (uint64_t)1 << (i & 63);
        else nulls++;
    }
    /* bits past n in the last byte must be zero */
    if ((n & 7) && (vb[n >> 3] >> (n & 7))) {
        free(v);
        BAD("validity padding bits set");
    }
    free(out->validity);
    out->validity = v;
    out->null_count = nulls;
    if (nulls != b->null_count) BAD("null count disagrees with the bitmap");
    if (nulls == 0) BAD("validity bitmap without NULLs");
    return ST_OK;
}

/* Reads one block into out; with codes (STR/BYTES only) a block without
 * NULLs comes as a dictionary in out and per-row codes, else as rows with
 * codes 0..n-1. */
static st_status read_block(st_reader *r, size_t c, size_t col, st_column *out, uint32_t *codes, st_error *err)
{
    if (c >= r->n_chunks || col >= r->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': no chunk %zu column %zu", r->name, c, col);
    const st_field *f = &r->fields[col];
    if (out->type != f->type)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s, asked to read it as %s", r->name, f->name,
                            st_type_name(f->type), st_type_name(out->type));
    const st_block_ent *b = &r->blocks[c * r->n_fields + col];
    uint32_t n = r->chunk_n[c];
    if (b->encoding > ST_ENC_CONST)
        return st_error_set(err, ST_ERR_UNSUPPORTED,
                            "'%s': column '%s', chunk %zu uses encoding %d, unknown to this strata (a newer minor version?)",
                            r->name, f->name, c, b->encoding);
    const uint8_t *p = NULL;
    size_t len = 0;
    ST_TRY(block_payload(r, f, c, b, n, &p, &len, err));
    st_column_reset(out);
    size_t vbytes = (b->flags & ST_BLOCK_FLAG_VALIDITY) ? (n + 7) / 8 : 0;
    if (vbytes > len) BAD("validity bitmap truncated");
    const uint8_t *vb = p;
    p += vbytes;
    len -= vbytes;
    st_status s;
    if (b->null_count == n && n > 0) {
        ST_TRY(read_all_null(r, f, c, b, n, vb, len, out, err));
    } else {
        const char *why = "bad values";
        if (codes && !vbytes) {
            s = st_codec_decode_dict(f->type, b->encoding, p, len, n, out, codes, &why);
            if (s == ST_ERR_CORRUPT) BAD(why);
            if (s != ST_OK) return st_error_set(err, s, "out of memory decoding '%s'", r->name);
            return ST_OK;
        }
        s = st_codec_decode(f->type, b->encoding, p, len, n, out, &why);
        if (s == ST_ERR_CORRUPT) BAD(why);
        if (s != ST_OK) return st_error_set(err, s, "out of memory decoding '%s'", r->name);
        if (out->n_rows != n) BAD("row count mismatch");
        if (vbytes) ST_TRY(read_validity(r, f, c, b, n, vb, out, err));
        else if (b->null_count) BAD("NULLs without a validity bitmap");
    }
    if (!f->nullable && out->null_count) BAD("NULL in a non-nullable column");
    if (codes)
        for (uint32_t i = 0; i < n; i++) codes[i] = i;
    return ST_OK;
}

/* Block (c, col) as runs (st_reader_read_block_runs); the footer says
 * whether it can be, before its bytes are read. */
static st_status read_runs(st_reader *r, size_t c, size_t col, uint64_t *val, uint32_t *end, size_t cap,
                           size_t *n_runs, st_error *err)
{
    *n_runs = 0;
    if (c >= r->n_chunks || col >= r->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': no chunk %zu column %zu", r->name, c, col);
    const st_field *f = &r->fields[col];
    const st_block_ent *b = &r->blocks[c * r->n_fields + col];
    uint32_t n = r->chunk_n[c];
    bool ints = f->type == ST_TYPE_BOOL || f->type == ST_TYPE_I32 || f->type == ST_TYPE_I64;
    if (!ints || (b->encoding != ST_ENC_CONST && b->encoding != ST_ENC_RLE) || b->null_count ||
        (b->flags & ST_BLOCK_FLAG_VALIDITY) || n == 0)
        return st_error_set(err, ST_ERR_UNSUPPORTED, "'%s': column '%s', chunk %zu is not a block of runs", r->name,
                            f->name, c);
    const uint8_t *p = NULL;
    size_t len = 0;
    ST_TRY(block_payload(r, f, c, b, n, &p, &len, err));
    const char *why = "bad values";
    st_status s = st_codec_decode_runs(f->type, b->encoding, p, len, n, val, end, cap, n_runs, &why);
    if (s == ST_ERR_CORRUPT) BAD(why);
    if (s == ST_ERR_UNSUPPORTED)
        return st_error_set(err, s, "'%s': column '%s', chunk %zu has more than %zu runs", r->name, f->name, c, cap);
    if (s != ST_OK) return st_error_set(err, s, "out of memory decoding '%s'", r->name);
    return ST_OK;
}
#undef BAD

/* Streaming a mapped file must not keep it resident. Every page touched
 * stays in this process's RSS until it is handed back, and on current
 * kernels one fault maps a whole page-cache folio (up to 2 MiB, several
 * chunks' worth of other columns) at once, so dropping just the block read
 * is not enough: the next fault maps it back. Instead, when a read reaches
 * chunk c, everything more than ST_READER_KEEP_BYTES before chunk c's
 * first byte is handed back (MADV_DONTNEED), in steps of at least 1 MiB.
 * No fault at or after chunk c can map those pages again (a folio holding
 * an offset X lies within 2 MiB of X). The mapping is private, read-only
 * and never written, so a later read of the same bytes (a reader going
 * back) just faults them in again from the page cache; going back also
 * moves the mark back. Resident bytes per reader: about the keep window
 * plus a chunk, whatever the file size. */
#define ST_READER_KEEP_BYTES ((size_t)4 << 20)
#define ST_READER_DROP_STEP ((size_t)1 << 20)

static void release_behind(st_reader *r, size_t c)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = (size_t)r->blocks[c * r->n_fields].offset;
    size_t keep = start > ST_READER_KEEP_BYTES ? start - ST_READER_KEEP_BYTES : 0;
    keep &= ~(page - 1);
    if (keep < r->resident_from) {
        r->resident_from = keep; /* going back: these pages will be touched again */
    } else if (keep - r->resident_from >= ST_READER_DROP_STEP) {
        (void)madvise((void *)(r->data + r->resident_from), keep - r->resident_from, MADV_DONTNEED);
        r->resident_from = keep;
    }
}

#define BAD(what) return damaged(r, f, c, what, err)
struct st_held_block {
    st_codec_slicer sl;
    void *buf; /* the decompressed payload of a zstd block */
    size_t cap;
    const st_reader *r; /* the block held: r's chunk c of column f; NULL: none */
    const st_field *f;
    size_t c;
};

/* Holds block (c, col) of r (not partitioned) in h: the checks of
 * read_block before decoding, then the slicer's structure. */
static st_status hold_block(st_reader *r, size_t c, size_t col, st_held_block *h, st_column *dict, st_error *err)
{
    h->r = NULL;
    if (c >= r->n_chunks || col >= r->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': no chunk %zu column %zu", r->name, c, col);
    const st_field *f = &r->fields[col];
    const st_block_ent *b = &r->blocks[c * r->n_fields + col];
    uint32_t n = r->chunk_n[c];
    bool str = f->type == ST_TYPE_STR || f->type == ST_TYPE_BYTES;
    if (str && (!dict || dict->type != f->type))
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s: held with a dictionary column of its type",
                            r->name, f->name, st_type_name(f->type));
    if ((f->type != ST_TYPE_I32 && f->type != ST_TYPE_I64 && !str) || b->encoding > ST_ENC_CONST || b->null_count ||
        (b->flags & ST_BLOCK_FLAG_VALIDITY))
        return st_error_set(err, ST_ERR_UNSUPPORTED, "'%s': column '%s', chunk %zu cannot be read in slices", r->name,
                            f->name, c);
    const uint8_t *p = NULL;
    size_t len = 0;
    ST_TRY(block_payload_into(r, f, c, b, n, &h->buf, &h->cap, &p, &len, err));
    if (str) st_column_reset(dict);
    const char *why = "bad values";
    st_status s = st_codec_slicer_open(&h->sl, f->type, b->encoding, p, len, n, dict, &why);
    if (s == ST_ERR_CORRUPT) BAD(why);
    if (s == ST_ERR_UNSUPPORTED)
        return st_error_set(err, s, "'%s': column '%s', chunk %zu (%s) cannot be read in slices", r->name, f->name, c,
                            st_encoding_name(b->encoding));
    if (s != ST_OK) return st_error_set(err, s, "out of memory decoding '%s'", r->name);
    h->r = r;
    h->f = f;
    h->c = c;
    return ST_OK;
}

/* ST_OK when rows [first, first + n) of the held block may be read as
 * type t (str: as codes): a block is held, of that type, and the rows are
 * a slice of it starting on a multiple of 8. */
static st_status held_slice_ok(const st_held_block *h, bool str, st_type t, size_t first, size_t n, st_error *err)
{
    if (!h->r) return st_error_set(err, ST_ERR_INVALID, "no block held");
    const st_field *f = h->f;
    bool is_str = f->type == ST_TYPE_STR || f->type == ST_TYPE_BYTES;
    if (str != is_str || (!str && f->type != t))
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s, asked to read it as %s", h->r->name,
                            f->name, st_type_name(f->type), str ? "codes" : st_type_name(t));
    if ((first & 7) || first > h->sl.n || n > h->sl.n - first)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s', chunk %zu: rows %zu..%zu are not a slice of its %zu",
                            h->r->name, f->name, h->c, first, first + n, h->sl.n);
    return ST_OK;
}

/* Rows [first, first + n) of the held block, after held_slice_ok: an
 * integer block's as 64-bit values into out, a string block's codes into
 * codes. */
static st_status held_read(st_held_block *h, size_t first, size_t n, uint64_t *out, uint32_t *codes, st_error *err)
{
    const st_reader *r = h->r;
    const st_field *f = h->f;
    size_t c = h->c;
    const char *why = "bad values";
    st_status s = codes ? st_codec_slicer_codes(&h->sl, first, n, codes, &why)
                        : st_codec_slicer_read(&h->sl, first, n, out, &why);
    if (s == ST_ERR_CORRUPT) BAD(why);
    if (s != ST_OK)
        return st_error_set(err, s, "'%s': column '%s', chunk %zu: rows %zu..%zu: %s", r->name, f->name, c, first,
                            first + n, why);
    return ST_OK;
}

st_status st_held_block_create(st_held_block **out, st_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "out of memory");
}

void st_held_block_free(st_held_block *h)
{
    if (!h) return;
    st_codec_slicer_free(&h->sl);
    free(h->buf);
    free(h);
}

st_status st_reader_hold_block(st_reader *r, size_t c, size_t col, st_held_block *h, st_column *dict, st_error *err)
{
    if (r->parts && c < r->n_chunks) return st_reader_hold_block(r->parts[r->chunk_part[c]], r->chunk_local[c], col, h, dict, err);
    if (r->mapped && c < r->n_chunks && r->n_fields > 0) release_behind(r, c);
    return hold_block(r, c, col, h, dict, err);
}

st_status st_held_block_i64(st_held_block *h, size_t first, size_t n, int64_t *out, st_error *err)
{
    ST_TRY(held_slice_ok(h, false, ST_TYPE_I64, first, n, err));
    return held_read(h, first, n, (uint64_t *)out, NULL, err);
}

/* Through a buffer of 64-bit values that stays in L1, a piece at a time
 * (first stays a multiple of 8). */
st_status st_held_block_i32(st_held_block *h, size_t first, size_t n, int32_t *out, st_error *err)
{
    enum { PIECE = 512 };
    uint64_t v[PIECE];
    ST_TRY(held_slice_ok(h, false, ST_TYPE_I32, first, n, err));
    for (size_t i = 0; i < n; i += PIECE) {
        size_t m = n - i < PIECE ? n - i : PIECE;
        ST_TRY(held_read(h, first + i, m, v, NULL, err));
        for (size_t k = 0; k < m; k++) out[i + k] = (int32_t)v[k];
    }
    return ST_OK;
}

st_status st_held_block_codes(st_held_block *h, size_t first, size_t n, uint32_t *out, st_error *err)
{
    ST_TRY(held_slice_ok(h, true, ST_TYPE_STR, first, n, err));
    return held_read(h, first, n, NULL, out, err);
}

#undef BAD

st_status st_reader_read_block(st_reader *r, size_t c, size_t col, st_column *out, st_error *err)
{
    if (r->parts && c < r->n_chunks) return st_reader_read_block(r->parts[r->chunk_part[c]], r->chunk_local[c], col, out, err);
    if (r->mapped && c < r->n_chunks && r->n_fields > 0) release_behind(r, c);
    return read_block(r, c, col, out, NULL, err);
}

st_status st_reader_read_block_dict(st_reader *r, size_t c, size_t col, st_column *dict, uint32_t *codes,
                                    st_error *err)
{
    if (col < r->n_fields && r->fields[col].type != ST_TYPE_STR && r->fields[col].type != ST_TYPE_BYTES)
        return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s, not a string column", r->name,
                            r->fields[col].name, st_type_name(r->fields[col].type));
    if (r->parts && c < r->n_chunks)
        return st_reader_read_block_dict(r->parts[r->chunk_part[c]], r->chunk_local[c], col, dict, codes, err);
    if (r->mapped && c < r->n_chunks && r->n_fields > 0) release_behind(r, c);
    return read_block(r, c, col, dict, codes, err);
}

st_status st_reader_read_block_runs(st_reader *r, size_t c, size_t col, uint64_t *val, uint32_t *end, size_t cap,
                                    size_t *n_runs, st_error *err)
{
    if (r->parts && c < r->n_chunks)
        return st_reader_read_block_runs(r->parts[r->chunk_part[c]], r->chunk_local[c], col, val, end, cap, n_runs,
                                         err);
    if (r->mapped && c < r->n_chunks && r->n_fields > 0) release_behind(r, c);
    return read_runs(r, c, col, val, end, cap, n_runs, err);
}

st_status st_reader_read_stored(st_reader *r, size_t c, size_t col, st_stored_block *out, st_error *err)
{
    if (c >= r->n_chunks || col >= r->n_fields)
        return st_error_set(err, ST_ERR_INVALID, "'%s': no chunk %zu column %zu", r->name, c, col);
    if (r->parts) return st_reader_read_stored(r->parts[r->chunk_part[c]], r->chunk_local[c], col, out, err);
    if (r->mapped && r->n_fields > 0) release_behind(r, c);
    const st_field *f = &r->fields[col];
    const st_block_ent *b = &r->blocks[c * r->n_fields + col];
    ST_TRY(block_checked(r, f, c, b, r->chunk_n[c], err));
    const uint8_t *h = r->data + b->offset;
    *out = (st_stored_block){.type = f->type, .encoding = b->encoding, .flags = b->flags, .n_rows = r->chunk_n[c],
                             .null_count = b->null_count, .raw_len = st_get_u32(h + 16),
                             .stored_len = st_get_u32(h + 12), .crc = st_get_u32(h + 20),
                             .bytes = h + ST_BLOCK_HEADER_BYTES, .raw_bytes = b->raw_bytes,
                             .has_minmax = b->has_minmax != 0, .min = b->min, .max = b->max};
    return ST_OK;
}

st_status st_reader_verify(st_reader *r, st_error *err)
{
    st_status s = ST_OK;
    for (size_t j = 0; j < r->n_fields && s == ST_OK; j++) {
        st_column c;
        st_column_init(&c, r->fields[j].type);
        for (size_t k = 0; k < r->n_chunks && s == ST_OK; k++) s = st_reader_read_block(r, k, j, &c, err);
        st_column_free(&c);
    }
    return s;
}

st_status st_reader_verify_checksums(st_reader *r, st_error *err)
{
    for (size_t i = 0; i < r->n_parts; i++) ST_TRY(st_reader_verify_checksums(r->parts[i], err));
    if (r->parts) return ST_OK;
    for (size_t c = 0; c < r->n_chunks; c++) {
        if (r->mapped && r->n_fields > 0) release_behind(r, c);
        for (size_t col = 0; col < r->n_fields; col++) {
            const st_block_ent *b = &r->blocks[c * r->n_fields + col];
            const uint8_t *h = r->data + b->offset;
            bool ok = b->size >= ST_BLOCK_HEADER_BYTES && st_get_u32(h + 12) == b->size - ST_BLOCK_HEADER_BYTES;
            if (ok) {
                uint32_t crc = st_crc32c(0, h, 20);
                ok = st_crc32c(crc, h + ST_BLOCK_HEADER_BYTES, b->size - ST_BLOCK_HEADER_BYTES) == st_get_u32(h + 20);
            }
            if (!ok)
                return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged: column '%s', chunk %zu: checksum mismatch",
                                    r->name, r->fields[col].name, c);
        }
    }
    return ST_OK;
}

st_status st_reader_read_all(st_reader *r, const size_t *which, size_t n_which, st_column *cols, st_error *err)
{
    size_t n = which ? n_which : r->n_fields;
    st_status s = ST_OK;
    st_column tmp;
    for (size_t j = 0; j < n && s == ST_OK; j++) {
        size_t col = which ? which[j] : j;
        if (col >= r->n_fields) return st_error_set(err, ST_ERR_INVALID, "'%s': no column %zu", r->name, col);
        st_column_reset(&cols[j]);
        if (cols[j].type != r->fields[col].type)
            return st_error_set(err, ST_ERR_INVALID, "'%s': column '%s' is %s", r->name, r->fields[col].name,
                                st_type_name(r->fields[col].type));
        st_column_init(&tmp, r->fields[col].type);
        /* grow as blocks decode: the footer's row count is not trusted for an allocation */
        for (size_t k = 0; k < r->n_chunks && s == ST_OK; k++) {
            s = st_reader_read_block(r, k, col, &tmp, err);
            for (size_t i = 0; i < tmp.n_rows && s == ST_OK; i++) s = st_column_push_from(&cols[j], &tmp, i);
        }
        st_column_free(&tmp);
    }
    if (s != ST_OK && err && err->code == ST_OK) st_error_set(err, s, "out of memory reading '%s'", r->name);
    return s;
}

/* ---- partitioned tables ---- */

size_t st_reader_n_parts(const st_reader *r) { return r->n_parts; }
const char *st_reader_part_path(const st_reader *r, size_t i) { return i < r->n_parts ? r->parts[i]->name : NULL; }

st_status st_reader_file_tail(const st_reader *r, uint64_t *size_bytes, uint32_t *footer_crc)
{
    if (r->parts || r->size < ST_HEADER_BYTES + ST_TAIL_BYTES) return ST_ERR_INVALID;
    *size_bytes = r->size;
    *footer_crc = st_get_u32(r->data + r->size - ST_TAIL_BYTES + 8);
    return ST_OK;
}

/* Part i opened and checked against its manifest entry and part 0. */
static st_status open_part(st_reader *r, const st_manifest *m, const char *dir, size_t i, st_error *err)
{
    const st_manifest_part *e = &m->parts[i];
    char path[PART_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->name) >= sizeof path)
        return st_error_set(err, ST_ERR_INVALID, "path too long: '%s/%s'", dir, e->name);
    st_status s = open_path(&r->parts[i], path, false, err);
    if (s == ST_ERR_NOTFOUND) return st_error_set(err, ST_ERR_CORRUPT, "'%s': part '%s' is missing", r->name, path);
    if (s != ST_OK) return s;
    st_reader *p = r->parts[i];
    uint64_t size = 0;
    uint32_t crc = 0;
    const char *why = NULL;
    if (st_reader_file_tail(p, &size, &crc) != ST_OK) why = "is not a layer file";
    else if (size != e->size_bytes || crc != e->footer_crc || p->meta.fingerprint != e->fingerprint)
        why = "is not the file the manifest names (size, footer checksum or fingerprint differ)";
    else if (p->n_rows != e->rows) why = "has another row count than the manifest says";
    else if (strcmp(p->meta.layer, m->layer) || strcmp(p->meta.table, m->table)) why = "belongs to another table";
    else if (p->n_fields != r->parts[0]->n_fields) why = "has another schema than the first part";
    for (size_t j = 0; !why && j < p->n_fields; j++) {
        const st_field *a = &p->fields[j], *b = &r->parts[0]->fields[j];
        if (a->type != b->type || a->nullable != b->nullable || strcmp(a->name, b->name))
            why = "has another schema than the first part";
    }
    if (why) return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged: part '%s' %s", r->name, path, why);
    return ST_OK;
}

/* The chunk directory across the parts: counts, then per chunk its part,
 * its index there and its rows. */
static st_status map_chunks(st_reader *r, st_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_parts; i++) n += r->parts[i]->n_chunks;
    r->n_chunks = n;
    r->chunk_part = malloc((n ? n : 1) * sizeof *r->chunk_part);
    r->chunk_local = malloc((n ? n : 1) * sizeof *r->chunk_local);
    r->chunk_n = malloc((n ? n : 1) * sizeof *r->chunk_n);
    if (!r->chunk_part || !r->chunk_local || !r->chunk_n) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    size_t c = 0;
    for (size_t i = 0; i < r->n_parts; i++)
        for (size_t k = 0; k < r->parts[i]->n_chunks; k++, c++) {
            r->chunk_part[c] = (uint32_t)i;
            r->chunk_local[c] = (uint32_t)k;
            r->chunk_n[c] = r->parts[i]->chunk_n[k];
        }
    return ST_OK;
}

/* Opens the partitioned table whose manifest r has mapped; on success
 * *out = r, on failure r is closed. */
static st_status open_parts(st_reader *r, const char *path, st_reader **out, st_error *err)
{
    st_manifest m;
    char dir[PART_PATH_MAX];
    st_status s = st_manifest_parse(r->data, r->size, r->name, &m, err);
    if (s == ST_OK) s = st_manifest_parts_dir(path, dir, sizeof dir, err);
    if (s == ST_OK && !(r->parts = calloc(m.n_parts, sizeof *r->parts)))
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s == ST_OK) r->n_parts = m.n_parts;
    for (size_t i = 0; i < r->n_parts && s == ST_OK; i++) s = open_part(r, &m, dir, i, err);
    if (s == ST_OK) s = map_chunks(r, err);
    if (s == ST_OK) {
        const st_reader *p0 = r->parts[0];
        r->major = p0->major;
        r->minor = p0->minor;
        r->n_fields = p0->n_fields;
        r->fields = p0->fields;
        r->meta = p0->meta;
        r->meta.fingerprint = m.fingerprint;
        r->n_rows = m.n_rows;
        *out = r;
    } else st_reader_close(r);
    st_manifest_free(&m);
    return s;
}
