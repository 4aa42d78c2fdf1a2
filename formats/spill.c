/*
 * spill.c: st_spill, the gold step's partitioned temporary file
 * (strata/spill.h).
 *
 * Writing scatters each added line into the buffer of its (partition,
 * table); a full buffer becomes one block appended at the end of the file
 * with pwrite, and one index entry. Buffers are allocated on first use, so
 * a partition that gets no lines of a table costs nothing. Reading walks
 * the index for the partition's entries in write order; every block is
 * read whole into one buffer, its header compared with the index entry
 * and its payload checksum verified before any pointer into it is handed
 * out. Nothing read from the file sizes an allocation: the read buffer is
 * sized from block_rows at creation.
 */
#include "strata/spill.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/file.h"

#define SPILL_MAGIC 0x50535453u /* "STSP" little-endian */
#define HEADER_BYTES 24u
#define ROW_BYTES 24u

typedef struct spill_ent {
    uint64_t offset;
    uint32_t part;
    uint32_t n_rows;
    uint32_t table;
    uint32_t crc;
} spill_ent;

typedef struct wbuf {
    int64_t *cust;
    int64_t *qty;
    int32_t *per;
    uint32_t *mat;
    uint32_t n;
} wbuf;

struct st_spill {
    int fd;
    char what[4200];
    uint32_t n_parts, block_rows;
    wbuf *bufs;                /* n_parts * ST_SPILL_TABLES, NULL after flush */
    uint64_t *rows;            /* n_parts * ST_SPILL_TABLES lines added */
    spill_ent *ents;
    size_t n_ents, cap_ents;
    uint64_t end;              /* bytes written */
    unsigned char *io;         /* HEADER_BYTES + block_rows * ROW_BYTES, 8-aligned */
    bool failed, flushed;
};

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

st_status st_spill_create(st_spill **out, int fd, const char *what, uint32_t n_parts, uint32_t block_rows,
                          st_error *err)
{
    *out = NULL;
    if (n_parts == 0 || block_rows == 0 || block_rows > ST_SPILL_MAX_BLOCK_ROWS) {
        if (fd >= 0) close(fd);
        return st_error_set(err, ST_ERR_INVALID, "spill: bad partition count or block size");
    }
    st_spill *sp = calloc(1, sizeof *sp);
    size_t nb = (size_t)n_parts * ST_SPILL_TABLES;
    if (sp) {
        sp->fd = fd;
        sp->bufs = calloc(nb, sizeof *sp->bufs);
        sp->rows = calloc(nb, sizeof *sp->rows);
        sp->io = malloc(HEADER_BYTES + (size_t)block_rows * ROW_BYTES);
    }
    if (!sp || !sp->bufs || !sp->rows || !sp->io) {
        if (sp) st_spill_free(sp);
        else if (fd >= 0) close(fd);
        return st_error_set(err, ST_ERR_NOMEM, "spill: out of memory");
    }
    snprintf(sp->what, sizeof sp->what, "%s", what ? what : "spill file");
    sp->n_parts = n_parts;
    sp->block_rows = block_rows;
    *out = sp;
    return ST_OK;
}

static void free_bufs(st_spill *sp)
{
    if (!sp->bufs) return;
    for (size_t i = 0; i < (size_t)sp->n_parts * ST_SPILL_TABLES; i++) {
        free(sp->bufs[i].cust);
        free(sp->bufs[i].qty);
        free(sp->bufs[i].per);
        free(sp->bufs[i].mat);
    }
    free(sp->bufs);
    sp->bufs = NULL;
}

void st_spill_free(st_spill *sp)
{
    if (!sp) return;
    free_bufs(sp);
    free(sp->rows);
    free(sp->ents);
    free(sp->io);
    if (sp->fd >= 0) close(sp->fd);
    free(sp);
}

uint64_t st_spill_rows(const st_spill *sp, uint32_t part, unsigned table)
{
    if (part >= sp->n_parts || table >= ST_SPILL_TABLES) return 0;
    return sp->rows[(size_t)part * ST_SPILL_TABLES + table];
}

uint64_t st_spill_bytes(const st_spill *sp) { return sp->end; }

static st_status write_all(st_spill *sp, const void *buf, size_t len, uint64_t off, st_error *err)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(sp->fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return st_error_set(err, ST_ERR_IO, "cannot write %s: %s", sp->what,
                                w < 0 ? strerror(errno) : "no space left");
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return ST_OK;
}

/* Appends buffer b of (part, table) as one block and empties it. */
static st_status write_block(st_spill *sp, uint32_t part, unsigned table, wbuf *b, st_error *err)
{
    if (b->n == 0) return ST_OK;
    if (sp->n_ents == sp->cap_ents) {
        size_t cap = sp->cap_ents ? 2 * sp->cap_ents : 256;
        spill_ent *e = realloc(sp->ents, cap * sizeof *e);
        if (!e) return st_error_set(err, ST_ERR_NOMEM, "spill: out of memory for the block index");
        sp->ents = e;
        sp->cap_ents = cap;
    }
    size_t n = b->n;
    unsigned char *p = sp->io + HEADER_BYTES;
    memcpy(p, b->cust, n * 8);
    memcpy(p + n * 8, b->qty, n * 8);
    memcpy(p + n * 16, b->per, n * 4);
    memcpy(p + n * 20, b->mat, n * 4);
    size_t payload = n * ROW_BYTES;
    uint32_t crc = st_crc32c(0, p, payload);
    put32(sp->io, SPILL_MAGIC);
    put32(sp->io + 4, part);
    put32(sp->io + 8, table);
    put32(sp->io + 12, (uint32_t)n);
    put32(sp->io + 16, crc);
    put32(sp->io + 20, 0);
    ST_TRY(write_all(sp, sp->io, HEADER_BYTES + payload, sp->end, err));
    sp->ents[sp->n_ents++] = (spill_ent){sp->end, part, (uint32_t)n, table, crc};
    sp->end += HEADER_BYTES + payload;
    b->n = 0;
    return ST_OK;
}

st_status st_spill_add(st_spill *sp, unsigned table, const uint32_t *part, const int64_t *customer_id,
                       const int32_t *period_key, const uint32_t *material, const int64_t *quantity, size_t n,
                       st_error *err)
{
    if (sp->failed || sp->flushed) return st_error_set(err, ST_ERR_INVALID, "spill: add after an error or flush");
    if (table >= ST_SPILL_TABLES) return st_error_set(err, ST_ERR_INVALID, "spill: bad table %u", table);
    st_status s = ST_OK;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = part[i];
        if (p >= sp->n_parts) {
            s = st_error_set(err, ST_ERR_INVALID, "spill: line %zu has no partition", i);
            break;
        }
        size_t slot = (size_t)p * ST_SPILL_TABLES + table;
        wbuf *b = &sp->bufs[slot];
        if (!b->cust) {
            size_t r = sp->block_rows;
            b->cust = malloc(r * sizeof *b->cust);
            b->qty = malloc(r * sizeof *b->qty);
            b->per = malloc(r * sizeof *b->per);
            b->mat = malloc(r * sizeof *b->mat);
            if (!b->cust || !b->qty || !b->per || !b->mat) {
                s = st_error_set(err, ST_ERR_NOMEM, "spill: out of memory for partition buffers");
                break;
            }
        }
        b->cust[b->n] = customer_id[i];
        b->qty[b->n] = quantity[i];
        b->per[b->n] = period_key[i];
        b->mat[b->n] = material[i];
        sp->rows[slot]++;
        if (++b->n == sp->block_rows && (s = write_block(sp, p, table, b, err)) != ST_OK) break;
    }
    if (s != ST_OK) sp->failed = true;
    return s;
}

st_status st_spill_flush(st_spill *sp, st_error *err)
{
    if (sp->failed) return st_error_set(err, ST_ERR_INVALID, "spill: flush after an error");
    if (sp->flushed) return ST_OK;
    st_status s = ST_OK;
    for (uint32_t p = 0; p < sp->n_parts && s == ST_OK; p++)
        for (unsigned t = 0; t < ST_SPILL_TABLES && s == ST_OK; t++)
            s = write_block(sp, p, t, &sp->bufs[(size_t)p * ST_SPILL_TABLES + t], err);
    if (s != ST_OK) {
        sp->failed = true;
        return s;
    }
    free_bufs(sp);
    sp->flushed = true;
    return ST_OK;
}

st_status st_spill_next(st_spill *sp, uint32_t part, st_spill_cursor *cur, st_spill_block *out, st_error *err)
{
    memset(out, 0, sizeof *out);
    if (!sp->flushed) return st_error_set(err, ST_ERR_INVALID, "spill: read before flush");
    while (cur->next < sp->n_ents && sp->ents[cur->next].part != part) cur->next++;
    if (cur->next >= sp->n_ents) return ST_OK;
    const spill_ent *e = &sp->ents[cur->next++];
    if (e->n_rows == 0 || e->n_rows > sp->block_rows)
        return st_error_set(err, ST_ERR_INTERNAL, "spill: index entry with %u rows", e->n_rows);
    size_t len = HEADER_BYTES + (size_t)e->n_rows * ROW_BYTES;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(sp->fd, sp->io + got, len - got, (off_t)(e->offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return st_error_set(err, ST_ERR_IO, "cannot read %s: %s", sp->what, strerror(errno));
        if (r == 0)
            return st_error_set(err, ST_ERR_CORRUPT, "%s: block at byte %llu is cut short", sp->what,
                                (unsigned long long)e->offset);
        got += (size_t)r;
    }
    const unsigned char *h = sp->io;
    size_t n = e->n_rows;
    const unsigned char *p = sp->io + HEADER_BYTES;
    if (get32(h) != SPILL_MAGIC || get32(h + 4) != e->part || get32(h + 8) != e->table || get32(h + 12) != n ||
        get32(h + 16) != e->crc || get32(h + 20) != 0 || st_crc32c(0, p, n * ROW_BYTES) != e->crc)
        return st_error_set(err, ST_ERR_CORRUPT, "%s: block at byte %llu is damaged (header or checksum)", sp->what,
                            (unsigned long long)e->offset);
    out->table = e->table;
    out->n_rows = n;
    out->customer_id = (const int64_t *)(const void *)p;
    out->quantity = (const int64_t *)(const void *)(p + n * 8);
    out->period_key = (const int32_t *)(const void *)(p + n * 16);
    out->material = (const uint32_t *)(const void *)(p + n * 20);
    return ST_OK;
}
