/*
 * manifest.c: the manifest of a partitioned layer table.
 *
 * A partitioned table is one table stored as several layer files (its
 * parts) that ranks or workers write side by side: the parts live in the
 * folder <table>.parts/ next to where the table's file would be, and the
 * table's own path <layer>/<table>.strata holds a small manifest naming
 * them, in row order (FORMAT.md, "Partitioned tables"). The manifest is
 * what a reader opens and what a publish swaps with one rename, so a
 * reader sees the old parts or the new ones, never a mixture.
 *
 * Invariants the parser enforces before anything is used: the magic, the
 * version, the body length equals the bytes that remain, the CRC32C of
 * everything before it matches, every length read stays inside the
 * body, there are 1..65535 parts, each part name is a plain file name
 * ending in .strata (no '/', not starting with '.', at most 255 bytes),
 * and the row counts add up to the table's. The reader (reader.c) then
 * checks every part against its entry: size, footer CRC32C, rows,
 * fingerprint, layer and table, schema; so a part swapped with another,
 * replaced, truncated or missing is refused naming the part. Nothing is
 * allocated from an unchecked count: the parts array is sized by a count
 * already bounded by the body length (each entry takes at least 38
 * bytes).
 */
#include "format_internal.h"
#include "manifest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/warehouse.h"

/* Bytes of one part entry besides its name: str16 length, rows, size, crc, fingerprint. */
#define PART_FIXED_BYTES (2 + 8 + 8 + 4 + 8)

bool st_manifest_is(const void *buf, size_t len)
{
    return len >= 8 && memcmp(buf, ST_MANIFEST_MAGIC, 8) == 0;
}

typedef struct mcur {
    const uint8_t *p, *end;
    bool bad;
} mcur;

static const uint8_t *take(mcur *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *at = c->p;
    c->p += n;
    return at;
}

static uint64_t take_u64(mcur *c)
{
    const uint8_t *p = take(c, 8);
    return p ? st_get_u64(p) : 0;
}

/* A str16 copied NUL-terminated into *at (advanced); NULL when short. */
static const char *take_str(mcur *c, char **at)
{
    const uint8_t *l = take(c, 2);
    if (!l) return NULL;
    uint16_t n = st_get_u16(l);
    const uint8_t *s = take(c, n);
    if (!s) return NULL;
    char *out = *at;
    memcpy(out, s, n);
    out[n] = '\0';
    *at += n + 1;
    return out;
}

static bool plain_part_name(const char *s)
{
    size_t n = strlen(s);
    return n > 7 && n <= 255 && s[0] != '.' && !strchr(s, '/') && !strcmp(s + n - 7, ".strata");
}

static st_status bad(const char *name, const char *what, st_error *err)
{
    return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged: manifest %s", name, what);
}

/* The entries after the part count; counts and names checked. */
static st_status parse_parts(mcur *c, st_manifest *m, char **at, const char *name, st_error *err)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < m->n_parts; i++) {
        st_manifest_part *p = &m->parts[i];
        p->name = take_str(c, at);
        p->rows = take_u64(c);
        p->size_bytes = take_u64(c);
        const uint8_t *crc = take(c, 4);
        p->footer_crc = crc ? st_get_u32(crc) : 0;
        p->fingerprint = take_u64(c);
        if (c->bad) return bad(name, "is truncated", err);
        if (!plain_part_name(p->name))
            return st_error_set(err, ST_ERR_CORRUPT, "'%s' is damaged: manifest part %zu has a bad name", name, i);
        if (p->rows > UINT64_MAX - sum) return bad(name, "row counts overflow", err);
        sum += p->rows;
    }
    if (c->p != c->end) return bad(name, "has bytes after its last part", err);
    if (sum != m->n_rows) return bad(name, "row counts do not add up", err);
    return ST_OK;
}

st_status st_manifest_parse(const void *buf, size_t len, const char *name, st_manifest *m, st_error *err)
{
    memset(m, 0, sizeof *m);
    const uint8_t *b = buf;
    if (len < ST_MANIFEST_MIN_BYTES || !st_manifest_is(buf, len)) return bad(name, "is too short or not one", err);
    uint16_t major = st_get_u16(b + 8);
    if (major > ST_MANIFEST_MAJOR)
        return st_error_set(err, ST_ERR_UNSUPPORTED, "'%s': manifest version %u is newer than this strata reads (%d)",
                            name, major, ST_MANIFEST_MAJOR);
    uint32_t body = st_get_u32(b + 12);
    if ((uint64_t)body + 20 != len) return bad(name, "length does not match its file", err);
    if (st_crc32c(0, b, 16 + (size_t)body) != st_get_u32(b + 16 + body)) return bad(name, "checksum mismatch", err);
    mcur c = {b + 16, b + 16 + body, false};
    /* every string is at most its body's bytes: one allocation holds them all */
    m->strings = malloc((size_t)body + 1);
    if (!m->strings) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    char *at = m->strings;
    m->layer = take_str(&c, &at);
    m->table = take_str(&c, &at);
    m->n_rows = take_u64(&c);
    m->fingerprint = take_u64(&c);
    const uint8_t *np = take(&c, 4);
    uint32_t n = np ? st_get_u32(np) : 0;
    st_status s = ST_OK;
    if (c.bad) s = bad(name, "is truncated", err);
    else if (n == 0 || n > 65535) s = bad(name, "has no parts or too many", err);
    else if ((size_t)(c.end - c.p) / PART_FIXED_BYTES < n) s = bad(name, "is truncated", err);
    else if (!(m->parts = calloc(n, sizeof *m->parts))) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    if (s == ST_OK) {
        m->n_parts = n;
        s = parse_parts(&c, m, &at, name, err);
    }
    if (s != ST_OK) st_manifest_free(m);
    return s;
}

void st_manifest_free(st_manifest *m)
{
    if (!m) return;
    free(m->parts);
    free(m->strings);
    memset(m, 0, sizeof *m);
}

st_status st_manifest_parts_dir(const char *manifest_path, char *buf, size_t cap, st_error *err)
{
    size_t n = strlen(manifest_path);
    if (n > 7 && !strcmp(manifest_path + n - 7, ".strata")) n -= 7;
    if ((size_t)snprintf(buf, cap, "%.*s.parts", (int)n, manifest_path) >= cap)
        return st_error_set(err, ST_ERR_INVALID, "path too long: '%s'", manifest_path);
    return ST_OK;
}

static void put_str16(st_buf *b, const char *s)
{
    size_t n = strlen(s);
    uint8_t l[2];
    st_put_u16(l, (uint16_t)n);
    st_buf_append(b, l, 2);
    st_buf_append(b, s, n);
}

/* One entry from the part's own file: its footer and its tail. */
static st_status part_entry(const char *dir, const char *name, st_manifest_part *p, char *layer, char *table,
                            st_error *err)
{
    char path[ST_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return st_error_set(err, ST_ERR_INVALID, "path too long: '%s/%s'", dir, name);
    st_reader *r = NULL;
    ST_TRY(st_reader_open(&r, path, err));
    const st_file_meta *m = st_reader_meta(r);
    st_status s = ST_OK;
    if (st_reader_n_parts(r) > 0) s = st_error_set(err, ST_ERR_INVALID, "'%s' is itself a manifest", path);
    else if (!layer[0]) {
        snprintf(layer, 256, "%s", m->layer);
        snprintf(table, 256, "%s", m->table);
    } else if (strcmp(layer, m->layer) || strcmp(table, m->table))
        s = st_error_set(err, ST_ERR_INVALID, "part '%s' belongs to %s.%s, not %s.%s", path, m->layer, m->table, layer,
                         table);
    if (s == ST_OK) {
        p->name = name;
        p->rows = st_reader_n_rows(r);
        p->fingerprint = m->fingerprint;
        s = st_reader_file_tail(r, &p->size_bytes, &p->footer_crc);
    }
    st_reader_close(r);
    return s;
}

st_status st_manifest_write(const char *path, const char *const *names, size_t n, uint64_t fingerprint, st_error *err)
{
    if (n == 0 || n > 65535) return st_error_set(err, ST_ERR_INVALID, "'%s': a manifest names 1..65535 parts", path);
    char dir[ST_PATH_MAX], layer[256] = "", table[256] = "";
    ST_TRY(st_manifest_parts_dir(path, dir, sizeof dir, err));
    st_manifest_part *parts = calloc(n, sizeof *parts);
    if (!parts) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    st_status s = ST_OK;
    uint64_t rows = 0;
    for (size_t i = 0; i < n && s == ST_OK; i++) {
        if (!plain_part_name(names[i]))
            s = st_error_set(err, ST_ERR_INVALID, "'%s': bad part name '%s'", path, names[i]);
        else s = part_entry(dir, names[i], &parts[i], layer, table, err);
        rows += parts[i].rows;
    }
    st_buf b;
    st_buf_init(&b);
    if (s == ST_OK) {
        uint8_t head[16] = {0};
        memcpy(head, ST_MANIFEST_MAGIC, 8);
        st_put_u16(head + 8, ST_MANIFEST_MAJOR);
        st_put_u16(head + 10, ST_MANIFEST_MINOR);
        st_buf_append(&b, head, 16);
        put_str16(&b, layer);
        put_str16(&b, table);
        st_buf_put_u64(&b, rows);
        st_buf_put_u64(&b, fingerprint);
        st_buf_put_u32(&b, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            put_str16(&b, parts[i].name);
            st_buf_put_u64(&b, parts[i].rows);
            st_buf_put_u64(&b, parts[i].size_bytes);
            st_buf_put_u32(&b, parts[i].footer_crc);
            st_buf_put_u64(&b, parts[i].fingerprint);
        }
        if (!st_buf_ok(&b)) s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
    }
    if (s == ST_OK) {
        st_put_u32((uint8_t *)b.data + 12, (uint32_t)(b.len - 16));
        st_buf_put_u32(&b, st_crc32c(0, b.data, b.len));
        s = st_buf_ok(&b) ? st_write_file_atomic(path, b.data, b.len, err)
                          : st_error_set(err, ST_ERR_NOMEM, "out of memory");
    }
    st_buf_free(&b);
    free(parts);
    return s;
}
