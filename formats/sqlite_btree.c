/*
 * sqlite_btree.c: SQLite table b-tree pages, decoded directly
 * (sqlite_btree_internal.h). Written from SQLite's "Database File Format"
 * document; no SQLite code is used.
 *
 * What is read. A table b-tree has interior pages (type 5: cells of a
 * 4-byte left child page and a varint rowid key; keys in the left child
 * are <= the key; a right-most child in the page header) and leaf pages
 * (type 13: cells of a varint payload size, a varint rowid and the
 * payload, whose tail spills into a chain of overflow pages when it does
 * not fit). The payload is a record: a varint header size, one varint
 * serial type per column, then the values (types 0 NULL, 1-6 big-endian
 * integers of 1, 2, 3, 4, 6 and 8 bytes, 7 a big-endian IEEE double, 8
 * and 9 the constants 0 and 1, even N >= 12 a BLOB and odd N >= 13 a TEXT
 * of (N-12)/2 or (N-13)/2 bytes). Freelist pages, pointer-map pages and
 * the free space of a page (deleted rows) are never reached from a table
 * root, so they need no handling.
 *
 * The walk. A scan keeps one level per tree depth (a page buffer, its cell
 * count and the cell or child it is at). It starts by descending from the
 * root to the first leaf cell with rowid >= lo (binary search of each
 * page's keys), then moves forward cell by cell, climbing and descending
 * as pages run out, and stops at the first rowid > hi, or as soon as an
 * interior key says every later row is above hi. Pages are read with
 * pread() into the level's buffer (no memory map: memory stays one page
 * per level plus the record being assembled, whatever the file's size).
 *
 * Never trusting the file. A page number must lie in [2, n_pages]; each
 * page is read at most once per scan (a bit per page of the file), so a
 * cyclic or shared child or overflow pointer is reported instead of
 * looping; depth is limited to 20 levels; the cell pointer array, every
 * cell, varint and value must lie inside the usable part of its page or
 * the payload; a payload must be at most 2^31 bytes and what the file
 * could hold; rowids must rise strictly and stay <= the separator keys
 * above them. SQLite's own reading rules are followed where a value is
 * made: NaN stored as type 7 reads as NULL, an integer in a REAL-affinity
 * column reads as REAL, an INTEGER PRIMARY KEY column reads as the rowid,
 * a column missing from a short record reads as its DEFAULT (asked of the
 * caller) or NULL.
 */
#include "sqlite_btree_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BT_MAX_DEPTH 20
#define BT_MAX_PAYLOAD ((uint64_t)1 << 31)
#define BT_LEAF 13
#define BT_INTERIOR 5

typedef struct bt_level {
    uint32_t pgno;
    uint8_t *page;        /* page_size bytes, owned */
    uint32_t n_cells;
    uint32_t ptrs;        /* offset of the cell pointer array */
    uint32_t right;       /* interior: right-most child */
    uint32_t idx;         /* leaf: next cell; interior: child being read (n_cells = right-most) */
    bool leaf;
    bool has_bound;       /* keys below this page are <= bound */
    int64_t bound;
} bt_level;

struct st_bt_scan {
    st_bt_scan_spec sp;
    st_bt_geom g;
    bt_level lv[BT_MAX_DEPTH];
    int depth;            /* levels in use */
    uint64_t *visited;    /* one bit per page of the file */
    uint8_t *rec;         /* an overflowing payload, assembled */
    size_t rec_cap;
    uint8_t *ovf;         /* one overflow page */
    int64_t last;         /* last rowid returned */
    bool have_last;
    bool started, done;
    uint64_t pages;
};

/* ---- bytes ---- */

static inline uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* SQLite varint at p (never reading at or past end): 1..9 bytes, seven
 * bits each big-endian, the ninth byte whole. Returns the length, 0 when
 * it runs past end. */
static inline size_t get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (p < end && p[0] < 0x80) {
        *v = p[0];
        return 1;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < 8; i++) {
        if (p + i >= end) return 0;
        x = (x << 7) | (p[i] & 0x7F);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    if (p + 8 >= end) return 0;
    *v = (x << 8) | p[8];
    return 9;
}

/* Bytes of a value of serial type st; UINT64_MAX for the reserved 10, 11. */
static inline uint64_t serial_size(uint64_t st)
{
    static const uint64_t small[12] = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0, UINT64_MAX, UINT64_MAX};
    if (st < 12) return small[st];
    return (st - 12) / 2;
}

/* Big-endian two's-complement integer of serial type 1..6 at v. */
static inline int64_t serial_int(uint64_t st, const uint8_t *v)
{
    switch (st) {
    case 1: return (int8_t)v[0];
    case 2: return (int16_t)(uint16_t)be16(v);
    case 3: return ((int32_t)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8)) >> 8;
    case 4: return (int32_t)be32(v);
    case 5: return (int64_t)((uint64_t)(int64_t)(int16_t)(uint16_t)be16(v) << 32 | be32(v + 2));
    default: return (int64_t)((uint64_t)be32(v) << 32 | be32(v + 4));
    }
}

static st_status bad_page(const st_bt_scan *sc, uint32_t pgno, st_error *err, const char *fmt, ...)
    ST_PRINTF(4, 5);
static st_status bad_page(const st_bt_scan *sc, uint32_t pgno, st_error *err, const char *fmt, ...)
{
    char what[ST_ERROR_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return st_error_set(err, ST_ERR_SQLITE, "malformed page %u of table '%s' in '%s': %s", pgno, sc->sp.table,
                        sc->sp.path, what);
}

/* ---- the header ---- */

st_status st_bt_geom_parse(st_bt_geom *g, const uint8_t *hdr, size_t len, uint64_t file_bytes, const char *path,
                           st_error *err)
{
    memset(g, 0, sizeof *g);
    if (len < 100 || memcmp(hdr, "SQLite format 3", 16) != 0)
        return st_error_set(err, ST_ERR_SQLITE, "'%s' is not a SQLite database", path);
    uint32_t ps = be16(hdr + 16);
    if (ps == 1) ps = 65536;
    if (ps < 512 || (ps & (ps - 1)) != 0)
        return st_error_set(err, ST_ERR_SQLITE, "malformed header of '%s': page size %u", path, ps);
    if (hdr[21] != 64 || hdr[22] != 32 || hdr[23] != 32 || ps - hdr[20] < 480)
        return st_error_set(err, ST_ERR_SQLITE, "malformed header of '%s': payload fractions or reserved bytes",
                            path);
    g->page_size = ps;
    g->reserved = hdr[20];
    g->usable = ps - hdr[20];
    g->journal = (hdr[18] == 1 && hdr[19] == 1) ? 1 : (hdr[18] == 2 && hdr[19] == 2) ? 2 : 0;
    g->encoding = be32(hdr + 56);
    g->schema_cookie = be32(hdr + 40);
    uint32_t in_header = be32(hdr + 28);
    uint64_t by_size = file_bytes / ps;
    if (by_size > UINT32_MAX) by_size = UINT32_MAX;
    g->n_pages = (in_header != 0 && be32(hdr + 24) == be32(hdr + 92)) ? in_header : (uint32_t)by_size;
    if (g->n_pages > by_size) g->n_pages = (uint32_t)by_size; /* never beyond the file's bytes */
    return ST_OK;
}

/* ---- pages ---- */

/* Reads page pgno into buf after checking it is in the file and not yet
 * read by this scan. */
static st_status read_page(st_bt_scan *sc, uint32_t pgno, uint8_t *buf, uint32_t from, st_error *err)
{
    if (pgno < 2 || pgno > sc->g.n_pages)
        return bad_page(sc, from, err, "points to page %u, outside the file's %u pages", pgno, sc->g.n_pages);
    uint64_t *w = &sc->visited[(pgno - 1) >> 6], bit = (uint64_t)1 << ((pgno - 1) & 63);
    if (*w & bit) return bad_page(sc, from, err, "points to page %u, which this table already used", pgno);
    *w |= bit;
    off_t at = (off_t)(pgno - 1) * sc->g.page_size;
    size_t got = 0;
    while (got < sc->g.page_size) {
        ssize_t r = pread(sc->sp.fd, buf + got, sc->g.page_size - got, at + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return st_error_set(err, ST_ERR_IO, "reading page %u of '%s': %s", pgno, sc->sp.path, strerror(errno));
        if (r == 0) return bad_page(sc, pgno, err, "the page is past the end of the file");
        got += (size_t)r;
    }
    sc->pages++;
    return ST_OK;
}

/* Loads page pgno as level d (a child of page `from`). */
static st_status load_level(st_bt_scan *sc, int d, uint32_t pgno, uint32_t from, bool has_bound, int64_t bound,
                            st_error *err)
{
    if (d >= BT_MAX_DEPTH) return bad_page(sc, from, err, "the b-tree is deeper than %d levels", BT_MAX_DEPTH);
    bt_level *L = &sc->lv[d];
    if (!L->page && !(L->page = malloc(sc->g.page_size)))
        return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", sc->sp.table);
    ST_TRY(read_page(sc, pgno, L->page, from, err));
    const uint8_t *p = L->page;
    L->pgno = pgno;
    L->leaf = p[0] == BT_LEAF;
    if (p[0] != BT_LEAF && p[0] != BT_INTERIOR)
        return bad_page(sc, pgno, err, "page type %u is not a table b-tree page", p[0]);
    L->n_cells = be16(p + 3);
    L->ptrs = L->leaf ? 8 : 12;
    if ((uint64_t)L->ptrs + 2 * (uint64_t)L->n_cells > sc->g.usable)
        return bad_page(sc, pgno, err, "%u cells do not fit the page", L->n_cells);
    L->right = L->leaf ? 0 : be32(p + 8);
    L->idx = 0;
    L->has_bound = has_bound;
    L->bound = bound;
    sc->depth = d + 1;
    return ST_OK;
}

/* Offset of cell i of level L, checked to lie after the pointer array. */
static inline st_status cell_off(const st_bt_scan *sc, const bt_level *L, uint32_t i, uint32_t *off, st_error *err)
{
    uint32_t o = be16(L->page + L->ptrs + 2 * i);
    if (o < L->ptrs + 2 * L->n_cells || o >= sc->g.usable)
        return bad_page(sc, L->pgno, err, "cell %u at offset %u is outside the cell area", i, o);
    *off = o;
    return ST_OK;
}

/* Child page and key of interior cell i. */
static st_status interior_cell(const st_bt_scan *sc, const bt_level *L, uint32_t i, uint32_t *child, int64_t *key,
                               st_error *err)
{
    uint32_t o = 0;
    ST_TRY(cell_off(sc, L, i, &o, err));
    const uint8_t *end = L->page + sc->g.usable;
    uint64_t k;
    if (o + 4 > sc->g.usable || !get_varint(L->page + o + 4, end, &k))
        return bad_page(sc, L->pgno, err, "interior cell %u runs past the page", i);
    *child = be32(L->page + o);
    *key = (int64_t)k;
    return ST_OK;
}

/* A leaf cell's rowid, payload size and where its local payload starts. */
typedef struct leaf_cell {
    int64_t rowid;
    uint64_t size;        /* whole payload */
    uint32_t at;          /* offset of the local payload in the page */
    uint32_t local;       /* bytes of it on the page */
    uint32_t overflow;    /* first overflow page, 0 when none */
} leaf_cell;

static st_status parse_leaf_cell(const st_bt_scan *sc, const bt_level *L, uint32_t i, leaf_cell *c, st_error *err)
{
    uint32_t o = 0;
    ST_TRY(cell_off(sc, L, i, &o, err));
    const uint8_t *p = L->page + o, *end = L->page + sc->g.usable;
    uint64_t rid = 0;
    size_t a = get_varint(p, end, &c->size), b = a ? get_varint(p + a, end, &rid) : 0;
    if (!b) return bad_page(sc, L->pgno, err, "leaf cell %u runs past the page", i);
    c->rowid = (int64_t)rid;
    c->at = o + (uint32_t)(a + b);
    uint64_t U = sc->g.usable, X = U - 35;
    if (c->size <= X) {
        c->local = (uint32_t)c->size;
        c->overflow = 0;
        if (c->at + c->size > U) return bad_page(sc, L->pgno, err, "leaf cell %u runs past the page", i);
        return ST_OK;
    }
    if (c->size > BT_MAX_PAYLOAD || c->size > (uint64_t)sc->g.n_pages * U)
        return bad_page(sc, L->pgno, err, "leaf cell %u has a payload of %llu bytes", i,
                        (unsigned long long)c->size);
    uint64_t M = ((U - 12) * 32 / 255) - 23, K = M + ((c->size - M) % (U - 4));
    c->local = (uint32_t)(K <= X ? K : M);
    if ((uint64_t)c->at + c->local + 4 > U) return bad_page(sc, L->pgno, err, "leaf cell %u runs past the page", i);
    c->overflow = be32(L->page + c->at + c->local);
    return ST_OK;
}

/* Assembles an overflowing payload into sc->rec. */
static st_status gather(st_bt_scan *sc, const bt_level *L, const leaf_cell *c, st_error *err)
{
    if (c->size > sc->rec_cap) {
        uint8_t *r = realloc(sc->rec, (size_t)c->size);
        if (!r) return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory for a %llu-byte row",
                                    sc->sp.table, (unsigned long long)c->size);
        sc->rec = r;
        sc->rec_cap = (size_t)c->size;
    }
    if (!sc->ovf && !(sc->ovf = malloc(sc->g.page_size)))
        return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", sc->sp.table);
    memcpy(sc->rec, L->page + c->at, c->local);
    size_t got = c->local, per = sc->g.usable - 4;
    uint32_t pg = c->overflow, from = L->pgno;
    while (got < c->size) {
        if (pg == 0) return bad_page(sc, from, err, "the overflow chain ends %llu bytes early",
                                     (unsigned long long)(c->size - got));
        ST_TRY(read_page(sc, pg, sc->ovf, from, err));
        size_t take = c->size - got < per ? (size_t)(c->size - got) : per;
        memcpy(sc->rec + got, sc->ovf + 4, take);
        got += take;
        from = pg;
        pg = be32(sc->ovf);
    }
    return ST_OK;
}

/* ---- records ---- */

/* A column the record does not hold: the rowid, the DEFAULT or NULL. */
static st_status put_missing(st_bt_scan *sc, st_lanes *ls, size_t j, size_t n, int64_t rowid, st_error *err)
{
    st_lane *L = &ls->lane[j];
    const st_bt_col *c = &sc->sp.cols[j];
    st_bt_value v = {.cls = ST_CLASS_NULL};
    if (c->rowid_alias) {
        v.cls = ST_CLASS_INTEGER;
        v.i = rowid;
    } else if (c->has_default && sc->sp.missing) {
        ST_TRY(sc->sp.missing(sc->sp.missing_ctx, j, rowid, &v, err));
    }
    bool ok = true;
    switch (v.cls) {
    case ST_CLASS_INTEGER: ok = lane_put_int(L, n, v.i); break;
    case ST_CLASS_REAL: ok = lane_put_real(L, n, v.d); break;
    case ST_CLASS_TEXT: ok = lane_put_text(L, n, v.bytes, v.len); break;
    case ST_CLASS_BLOB: ok = lane_put_blob(L, n, v.bytes, v.len); break;
    default: lane_put_null(L, n); break;
    }
    return ok ? ST_OK : st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", sc->sp.table);
}

/* One value of serial type st at v into lane L row n. False: out of memory. */
static inline bool put_value(const st_bt_col *c, st_lane *L, size_t n, uint64_t st, const uint8_t *v, uint64_t len)
{
    if (st >= 12) {
        if (st & 1) return lane_put_text(L, n, v, (size_t)len);
        return lane_put_blob(L, n, v, (size_t)len);
    }
    int64_t i;
    switch (st) {
    case 0: lane_put_null(L, n); return true;
    case 7: {
        uint64_t u = (uint64_t)be32(v) << 32 | be32(v + 4);
        double d;
        memcpy(&d, &u, sizeof d);
        if (isnan(d)) {
            lane_put_null(L, n);
            return true;
        }
        return lane_put_real(L, n, d);
    }
    case 8: i = 0; break;
    case 9: i = 1; break;
    default: i = serial_int(st, v); break;
    }
    return c->real_affinity ? lane_put_real(L, n, (double)i) : lane_put_int(L, n, i);
}

/* Decodes the record rec[0..size) of row `rowid` into row n of the lanes. */
static st_status decode_record(st_bt_scan *sc, uint32_t pgno, const uint8_t *rec, uint64_t size, int64_t rowid,
                               st_lanes *ls, size_t n, st_error *err)
{
    uint64_t hsz = 0;
    size_t k = get_varint(rec, rec + size, &hsz);
    if (!k || hsz < k || hsz > size)
        return bad_page(sc, pgno, err, "row %lld has a record header of %llu bytes in %llu", (long long)rowid,
                        (unsigned long long)hsz, (unsigned long long)size);
    const uint8_t *h = rec + k, *hend = rec + hsz;
    uint64_t body = hsz;
    const size_t nc = sc->sp.n_cols;
    for (size_t j = 0; j < nc; j++) {
        if (h >= hend) {
            ST_TRY(put_missing(sc, ls, j, n, rowid, err));
            continue;
        }
        uint64_t st = 0;
        if (*h < 0x80) {
            st = *h++;
        } else {
            size_t m = get_varint(h, hend, &st);
            if (!m) return bad_page(sc, pgno, err, "row %lld: a serial type runs past the record header",
                                    (long long)rowid);
            h += m;
        }
        uint64_t len = serial_size(st);
        if (len > size - body)
            return bad_page(sc, pgno, err, "row %lld: column %zu (serial type %llu) runs past the record",
                            (long long)rowid, j, (unsigned long long)st);
        const uint8_t *v = rec + body;
        body += len;
        const st_bt_col *c = &sc->sp.cols[j];
        if (c->rowid_alias) {
            if (!lane_put_int(&ls->lane[j], n, rowid)) goto nomem;
        } else if (!put_value(c, &ls->lane[j], n, st, v, len)) {
            goto nomem;
        }
    }
    if (h >= hend && body != size)
        return bad_page(sc, pgno, err, "row %lld: the record's values fill %llu of its %llu bytes", (long long)rowid,
                        (unsigned long long)body, (unsigned long long)size);
    return ST_OK;
nomem:
    return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", sc->sp.table);
}

/* ---- the walk ---- */

/* Descends from page pgno (level d, child of `from`) to a leaf: to the
 * first key >= lo when seeking, else to the left-most cell. */
static st_status descend(st_bt_scan *sc, int d, uint32_t pgno, uint32_t from, bool has_bound, int64_t bound,
                         bool seek, st_error *err)
{
    for (;;) {
        ST_TRY(load_level(sc, d, pgno, from, has_bound, bound, err));
        bt_level *L = &sc->lv[d];
        uint32_t lo = 0, hi = L->n_cells; /* first cell whose key >= sc->sp.lo */
        while (seek && lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            int64_t key = 0;
            if (L->leaf) {
                leaf_cell c;
                ST_TRY(parse_leaf_cell(sc, L, mid, &c, err));
                key = c.rowid;
            } else {
                uint32_t child = 0;
                ST_TRY(interior_cell(sc, L, mid, &child, &key, err));
            }
            if (key < sc->sp.lo) lo = mid + 1;
            else hi = mid;
        }
        L->idx = lo;
        if (L->leaf) return ST_OK;
        from = pgno;
        if (lo < L->n_cells) {
            ST_TRY(interior_cell(sc, L, lo, &pgno, &bound, err));
            has_bound = true;
        } else {
            pgno = L->right;
        }
        d++;
    }
}

/* The current leaf is exhausted: climbs to the next child to read and
 * descends to its first leaf, or ends the scan. */
static st_status advance(st_bt_scan *sc, st_error *err)
{
    while (sc->depth > 1) {
        sc->depth--;
        bt_level *P = &sc->lv[sc->depth - 1];
        if (P->idx < P->n_cells) {
            uint32_t child = 0;
            int64_t key = 0;
            ST_TRY(interior_cell(sc, P, P->idx, &child, &key, err));
            if (key >= sc->sp.hi) break; /* every later row is > key >= hi */
        }
        P->idx++;
        if (P->idx > P->n_cells) continue;
        uint32_t child = P->right;
        bool has_bound = P->has_bound;
        int64_t bound = P->bound;
        if (P->idx < P->n_cells) {
            ST_TRY(interior_cell(sc, P, P->idx, &child, &bound, err));
            has_bound = true;
        }
        return descend(sc, sc->depth, child, P->pgno, has_bound, bound, false, err);
    }
    sc->done = true;
    return ST_OK;
}

st_status st_bt_scan_next(st_bt_scan *sc, st_lanes *ls, size_t *n_rows, st_error *err)
{
    *n_rows = 0;
    size_t n = 0;
    if (!sc->started) {
        sc->started = true;
        if (sc->sp.lo > sc->sp.hi) sc->done = true;
        else ST_TRY(descend(sc, 0, sc->sp.root, sc->sp.root, false, 0, true, err));
    }
    while (n < ls->batch_rows && !sc->done) {
        bt_level *L = &sc->lv[sc->depth - 1];
        if (L->idx >= L->n_cells) {
            ST_TRY(advance(sc, err));
            continue;
        }
        leaf_cell c;
        ST_TRY(parse_leaf_cell(sc, L, L->idx, &c, err));
        if (c.rowid > sc->sp.hi) {
            sc->done = true;
            break;
        }
        if ((sc->have_last && c.rowid <= sc->last) || (L->has_bound && c.rowid > L->bound))
            return bad_page(sc, L->pgno, err, "rowid %lld is out of order", (long long)c.rowid);
        const uint8_t *rec = L->page + c.at;
        if (c.size > c.local) { /* spilled, whatever the overflow pointer says */
            ST_TRY(gather(sc, L, &c, err));
            rec = sc->rec;
        }
        ST_TRY(decode_record(sc, L->pgno, rec, c.size, c.rowid, ls, n, err));
        ls->rowids[n++] = c.rowid;
        sc->last = c.rowid;
        sc->have_last = true;
        L->idx++;
    }
    *n_rows = n;
    return ST_OK;
}

st_status st_bt_scan_open(st_bt_scan **out, const st_bt_scan_spec *spec, st_error *err)
{
    *out = NULL;
    st_bt_scan *sc = calloc(1, sizeof *sc);
    if (!sc) return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", spec->table);
    sc->sp = *spec;
    sc->g = *spec->geom;
    size_t words = ((size_t)sc->g.n_pages + 64) / 64;
    if (!(sc->visited = calloc(words, sizeof *sc->visited))) {
        free(sc);
        return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", spec->table);
    }
    *out = sc;
    return ST_OK;
}

uint64_t st_bt_scan_pages(const st_bt_scan *sc) { return sc->pages; }

void st_bt_scan_close(st_bt_scan *sc)
{
    if (!sc) return;
    for (int d = 0; d < BT_MAX_DEPTH; d++) free(sc->lv[d].page);
    free(sc->visited);
    free(sc->rec);
    free(sc->ovf);
    free(sc);
}
