/*
 * sqlite_source.c: the read-only SQLite source reader (strata/source.h).
 *
 * This is the one place strata runs SQL, and it only reads: the file is
 * opened through a `file:<path>?mode=ro` URI with SQLITE_OPEN_READONLY, so
 * SQLite can neither create nor change it. The statements are
 * sqlite_master lookups, pragma_table_info(), count/min/max, and the scan
 * `SELECT rowid, c1, ... FROM t WHERE rowid BETWEEN ?1 AND ?2 ORDER BY
 * rowid`, which SQLite answers with a walk of the table b-tree.
 *
 * The scan is the hot path: for every value it takes the result cell once
 * with sqlite3_column_value(), reads its storage class and then the one
 * typed getter the class needs with the sqlite3_value_*() accessors, and
 * writes straight into the preallocated arrays of the batch's columns (no
 * per-value push call). The value accessors skip the per-call statement
 * checks and error bookkeeping of the sqlite3_column_*() family, which
 * makes the loop about 40% faster than the usual column_type +
 * column_int64 pattern. SQLite calls the cell an "unprotected" value: that
 * only matters when a connection is shared between threads, and a source
 * connection is opened SQLITE_OPEN_NOMUTEX and never shared. Validity bits of the value and raw columns are
 * collected in scratch bitmaps and handed to a column only when that
 * column received a NULL in the batch, so all-present columns keep the
 * validity == NULL fast path downstream.
 *
 * Lossless mapping (docs/TABLES.md): a value goes into `c` when its class
 * fits the column type (INTEGER into int64; REAL into float64; INTEGER
 * into float64 only when the double holds it exactly; valid UTF-8 TEXT
 * into string) and otherwise into `c__raw` (INTEGER as decimal text, REAL
 * as %.17g text, which round-trips a binary64, TEXT and BLOB bytes as they
 * are). `c__class` always records the storage class. The column type
 * comes from the declared affinity, or, where that does not decide (BLOB
 * or NUMERIC affinity), from st_source_type_by_values(): one counting
 * scan of the storage classes before the bronze schema is fixed (the
 * classes are the same whichever reader reads, so is the schema).
 */
#include "strata/source.h"
#include "strata/source_identity.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite_btree_internal.h"
#include "sqlite_internal.h"

struct st_source {
    sqlite3 *db;
    char *path;
    dev_t dev;          /* the file SQLite opened, to recognise it when reopened */
    int txn_scans;      /* open scans inside the read transaction the source began */
    bool own_txn;       /* that transaction was begun by a scan (COMMIT after the last) */
    ino_t ino;
    char **names;       /* resolved table names handed out, owned */
    size_t n_names;
};

/* ---- small helpers ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Appends `"name"` (quotes doubled) to buf at *len; false if it does not fit. */
static bool append_ident(char *buf, size_t cap, size_t *len, const char *name)
{
    size_t l = *len;
    if (l + 1 >= cap) return false;
    buf[l++] = '"';
    for (const char *p = name; *p; p++) {
        if (l + 2 >= cap) return false;
        if (*p == '"') buf[l++] = '"';
        buf[l++] = *p;
    }
    if (l + 1 >= cap) return false;
    buf[l++] = '"';
    buf[l] = '\0';
    *len = l;
    return true;
}

static bool append_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap) return false;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return true;
}

static st_status sqlite_fail(st_error *err, st_source *src, const char *what)
{
    return st_error_set(err, ST_ERR_SQLITE, "%s in '%s': %s", what, src->path,
                        sqlite3_errmsg(src->db));
}

/* SQLite's column affinity rules (datatype3.html, section 3.1), in
 * their order: INT, then CHAR/CLOB/TEXT, then BLOB or no type, then
 * REAL/FLOA/DOUB, else NUMERIC. */
static st_affinity affinity_of(const char *decl)
{
    char up[256];
    size_t n = 0;
    for (; decl[n] && n + 1 < sizeof up; n++) {
        char c = decl[n];
        up[n] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    up[n] = '\0';
    if (strstr(up, "INT")) return ST_AFF_INTEGER;
    if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT")) return ST_AFF_TEXT;
    if (strstr(up, "BLOB") || n == 0) return ST_AFF_BLOB;
    if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB")) return ST_AFF_REAL;
    return ST_AFF_NUMERIC;
}

/* The bronze type the affinity gives: INTEGER -> int64, REAL -> float64,
 * the rest (TEXT, and BLOB and NUMERIC until typed by values) -> string. */
static st_type affinity_type(st_affinity a)
{
    return a == ST_AFF_INTEGER ? ST_TYPE_I64 : (a == ST_AFF_REAL ? ST_TYPE_F64 : ST_TYPE_STR);
}

/* True when the affinity leaves the bronze type to the values. */
static bool affinity_undecided(st_affinity a) { return a == ST_AFF_BLOB || a == ST_AFF_NUMERIC; }

/* ---- opening ---- */

/* Builds `file:<path>?mode=ro`, percent-encoding what a URI would
 * otherwise interpret. Caller frees. */
static char *make_uri(const char *path)
{
    size_t n = strlen(path);
    size_t cap;
    if (!st_size_mul(n, 3, &cap) || !st_size_add(cap, 32, &cap)) return NULL;
    char *u = malloc(cap);
    if (!u) return NULL;
    size_t l = 0;
    memcpy(u, "file:", 5);
    l = 5;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7F) {
            u[l++] = '%';
            u[l++] = hex[c >> 4];
            u[l++] = hex[c & 15];
        } else {
            u[l++] = (char)c;
        }
    }
    memcpy(u + l, "?mode=ro", 9);
    return u;
}

st_status st_source_open(st_source **out, const char *path, st_error *err)
{
    st_status s = ST_OK;
    st_source *src = NULL;
    char *uri = NULL;
    sqlite3_stmt *st = NULL;
    *out = NULL;

    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return st_error_set(err, ST_ERR_NOTFOUND, "cannot open source '%s': no such file", path);
        return st_error_set(err, ST_ERR_IO, "cannot open source '%s': %s", path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode))
        return st_error_set(err, ST_ERR_SQLITE, "cannot open source '%s': is a directory, not a SQLite database", path);

    /* The 16-byte magic settles "is it SQLite?" before SQLite is asked
     * (SQLite would accept an empty file as an empty database). */
    FILE *f = fopen(path, "rb");
    if (!f) return st_error_set(err, ST_ERR_IO, "cannot open source '%s': %s", path, strerror(errno));
    char magic[16];
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got != sizeof magic || memcmp(magic, "SQLite format 3", 16) != 0)
        return st_error_set(err, ST_ERR_SQLITE, "'%s' is not a SQLite database", path);

    src = calloc(1, sizeof *src);
    if (!src || !(src->path = dup_str(path)) || !(uri = make_uri(path))) {
        s = st_error_set(err, ST_ERR_NOMEM, "opening source '%s': out of memory", path);
        goto done;
    }
    src->dev = sb.st_dev;
    src->ino = sb.st_ino;
    int rc = sqlite3_open_v2(uri, &src->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) sqlite3_busy_timeout(src->db, st_source_busy_timeout_ms); /* a writer's lock: wait */
    if (rc != SQLITE_OK) {
        s = st_error_set(err, ST_ERR_SQLITE, "cannot open source '%s': %s", path,
                         src->db ? sqlite3_errmsg(src->db) : sqlite3_errstr(rc));
        goto done;
    }
    /* A cheap query reads page 1 and the schema: a damaged header shows
     * up here as SQLITE_NOTADB / SQLITE_CORRUPT. */
    rc = sqlite3_prepare_v2(src->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int ec = sqlite3_extended_errcode(src->db) & 0xFF;
        char hint[512];
        if (ec == SQLITE_NOTADB)
            s = st_error_set(err, ST_ERR_SQLITE, "'%s' is not a SQLite database", path);
        else if ((ec == SQLITE_READONLY || ec == SQLITE_CANTOPEN || ec == SQLITE_BUSY) &&
                 st_source_open_hint(path, ec == SQLITE_BUSY, hint, sizeof hint))
            s = st_error_set(err, ST_ERR_SQLITE, "cannot read source '%s': %s", path, hint);
        else
            s = st_error_set(err, ST_ERR_SQLITE, "cannot read source '%s': %s", path,
                             sqlite3_errmsg(src->db));
        goto done;
    }
    /* No memory map: a map saves one copy per page (ingest measured 6%
     * faster at 10M+10M rows) but every page touched stays resident in
     * this process, so RSS grew with the source file (1 GB per connection).
     * Pages read with read() live in the kernel's page cache instead, and
     * memory stays flat in rows. Explicit, whatever SQLite's build default. */
    sqlite3_exec(src->db, "PRAGMA mmap_size=0", NULL, NULL, NULL);
    *out = src;
    src = NULL;
done:
    sqlite3_finalize(st);
    free(uri);
    st_source_close(src);
    return s;
}

void st_source_close(st_source *src)
{
    if (!src) return;
    if (src->db) sqlite3_close_v2(src->db);
    for (size_t i = 0; i < src->n_names; i++) free(src->names[i]);
    free(src->names);
    free(src->path);
    free(src);
}

const char *st_source_path(const st_source *src) { return src->path; }

/* Looks `name` up in sqlite_master (tables and views, any case). On
 * success *found (malloc'd, caller frees) is the stored spelling and
 * *is_view its kind; *found stays NULL when absent. */
static st_status lookup_table(st_source *src, const char *name, char **found, bool *is_view,
                              st_error *err)
{
    st_status s = ST_OK;
    sqlite3_stmt *st = NULL;
    *found = NULL;
    if (sqlite3_prepare_v2(src->db,
                           "SELECT name, type FROM sqlite_master WHERE type IN ('table','view') "
                           "AND name = ?1 COLLATE NOCASE ORDER BY type, name LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        s = sqlite_fail(err, src, "looking up tables");
        goto done;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);
        const char *ty = (const char *)sqlite3_column_text(st, 1);
        *is_view = ty && !strcmp(ty, "view");
        if (!n || !(*found = dup_str(n))) {
            s = st_error_set(err, ST_ERR_NOMEM, "looking up table '%s': out of memory", name);
            goto done;
        }
    } else if (rc != SQLITE_DONE) {
        s = sqlite_fail(err, src, "looking up tables");
    }
done:
    sqlite3_finalize(st);
    return s;
}

st_status st_source_find_table(st_source *src, const char *const *candidates, size_t n,
                               const char **resolved, st_error *err)
{
    *resolved = NULL;
    for (size_t i = 0; i < n; i++) {
        char *found = NULL;
        bool is_view = false;
        ST_TRY(lookup_table(src, candidates[i], &found, &is_view, err));
        if (!found) continue;
        char **grown = realloc(src->names, (src->n_names + 1) * sizeof *grown);
        if (!grown) {
            free(found);
            return st_error_set(err, ST_ERR_NOMEM, "looking up tables: out of memory");
        }
        src->names = grown;
        src->names[src->n_names++] = found;
        *resolved = found;
        return ST_OK;
    }
    char list[ST_ERROR_MSG_MAX / 2];
    size_t l = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && l + 8 < sizeof list; i++) {
        int w = snprintf(list + l, sizeof list - l, "%s'%s'", i == 0 ? "" : (i + 1 == n ? " or " : ", "),
                         candidates[i]);
        if (w < 0) break;
        l += (size_t)w;
        if (l >= sizeof list) l = sizeof list - 1;
    }
    return st_error_set(err, ST_ERR_SCHEMA, "no table %s in '%s'", n ? list : "(none asked)", src->path);
}

/* ---- describing ---- */

void st_source_table_free(st_source_table *t)
{
    if (!t) return;
    for (size_t j = 0; j < t->n_cols; j++) {
        free(t->cols[j].name);
        free(t->cols[j].lname);
        free(t->cols[j].decl_type);
    }
    free(t->cols);
    if (t->fields)
        for (size_t f = 0; f < t->n_fields; f++) free((char *)t->fields[f].name);
    free(t->fields);
    free(t->name);
    free(t->source_path);
    free(t->rowid_name);
    free(t);
}

int st_source_table_find_col(const st_source_table *t, const char *name)
{
    for (size_t j = 0; j < t->n_cols; j++)
        if (name_eq_nocase(t->cols[j].name, name)) return (int)j;
    return -1;
}

st_status st_source_require_cols(const st_source_table *t, const char *const *names, size_t n,
                                 int *idx, st_error *err)
{
    for (size_t i = 0; i < n; i++) {
        idx[i] = st_source_table_find_col(t, names[i]);
        if (idx[i] < 0)
            return st_error_set(err, ST_ERR_SCHEMA, "table '%s' in '%s' has no column '%s'", t->name,
                                t->source_path, names[i]);
    }
    return ST_OK;
}

static char *field_name(const char *lname, const char *suffix)
{
    size_t a = strlen(lname), b = strlen(suffix);
    char *d = malloc(a + b + 1);
    if (!d) return NULL;
    memcpy(d, lname, a);
    memcpy(d + a, suffix, b + 1);
    return d;
}

/* Fills t->fields from t->cols and checks bronze names are distinct. */
static st_status build_fields(st_source_table *t, st_error *err)
{
    size_t n;
    if (!st_size_mul(t->n_cols, 3, &n) || !st_size_add(n, 1, &n))
        return st_error_set(err, ST_ERR_NOMEM, "table '%s': too many columns", t->name);
    t->fields = calloc(n, sizeof *t->fields);
    if (!t->fields) return st_error_set(err, ST_ERR_NOMEM, "table '%s': out of memory", t->name);
    t->n_fields = n;
    static const char *const suffix[3] = {"", "__class", "__raw"};
    static const char *const desc[3] = {
        "the source value, typed by the column's declared affinity; NULL when it does not fit (see __raw)",
        "SQLite storage class of the value: 0 NULL, 1 INTEGER, 2 REAL, 3 TEXT, 4 BLOB",
        "the value as bytes when it does not fit the typed column (INTEGER and REAL as text)"};
    t->fields[0] = (st_field){.name = dup_str("_rowid"), .type = ST_TYPE_I64, .nullable = false,
                              .description = "SQLite rowid of the source row"};
    if (!t->fields[0].name) return st_error_set(err, ST_ERR_NOMEM, "table '%s': out of memory", t->name);
    for (size_t j = 0; j < t->n_cols; j++) {
        for (size_t k = 0; k < 3; k++) {
            st_field *f = &t->fields[1 + 3 * j + k];
            f->name = field_name(t->cols[j].lname, suffix[k]);
            if (!f->name) return st_error_set(err, ST_ERR_NOMEM, "table '%s': out of memory", t->name);
            f->type = k == 0 ? t->cols[j].type : (k == 1 ? ST_TYPE_I32 : ST_TYPE_BYTES);
            f->nullable = k != 1;
            f->description = desc[k];
        }
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (!strcmp(t->fields[a].name, t->fields[b].name))
                return st_error_set(err, ST_ERR_SCHEMA,
                                    "table '%s' in '%s': bronze column '%s' would appear twice", t->name,
                                    t->source_path, t->fields[a].name);
    return ST_OK;
}

/* Chooses the rowid alias the table's own columns do not shadow and
 * checks SQLite accepts it (it does not for views and WITHOUT ROWID). */
static st_status detect_rowid(st_source *src, st_source_table *t, st_error *err)
{
    static const char *const aliases[3] = {"rowid", "_rowid_", "oid"};
    t->has_rowid = false;
    if (t->is_view) return ST_OK;
    for (size_t a = 0; a < 3; a++) {
        if (st_source_table_find_col(t, aliases[a]) >= 0) continue;
        char sql[1024];
        size_t l = 0;
        sql[0] = '\0';
        if (!append_raw(sql, sizeof sql, &l, "SELECT ") || !append_raw(sql, sizeof sql, &l, aliases[a]) ||
            !append_raw(sql, sizeof sql, &l, " FROM ") || !append_ident(sql, sizeof sql, &l, t->name) ||
            !append_raw(sql, sizeof sql, &l, " LIMIT 0"))
            return st_error_set(err, ST_ERR_SCHEMA, "table name '%s' is too long", t->name);
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(src->db, sql, -1, &st, NULL);
        sqlite3_finalize(st);
        if (rc == SQLITE_OK) {
            t->has_rowid = true;
            t->rowid_name = dup_str(aliases[a]);
            if (!t->rowid_name) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
        }
        return ST_OK; /* the first unshadowed alias decides */
    }
    return ST_OK;
}

st_status st_source_describe(st_source *src, const char *name, st_source_table **out, st_error *err)
{
    st_status s = ST_OK;
    sqlite3_stmt *st = NULL;
    st_source_table *t = NULL;
    char *found = NULL;
    bool is_view = false;
    *out = NULL;

    ST_TRY(lookup_table(src, name, &found, &is_view, err));
    if (!found) return st_error_set(err, ST_ERR_SCHEMA, "no table '%s' in '%s'", name, src->path);
    t = calloc(1, sizeof *t);
    if (!t) {
        free(found);
        return st_error_set(err, ST_ERR_NOMEM, "describing '%s': out of memory", name);
    }
    t->name = found;
    t->is_view = is_view;
    if (!(t->source_path = dup_str(src->path))) {
        s = st_error_set(err, ST_ERR_NOMEM, "describing '%s': out of memory", name);
        goto done;
    }
    if (sqlite3_prepare_v2(src->db, "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid", -1, &st,
                           NULL) != SQLITE_OK) {
        s = sqlite_fail(err, src, "reading columns");
        goto done;
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (t->n_cols == cap) {
            size_t nc = cap ? cap * 2 : 16;
            st_source_col *g = realloc(t->cols, nc * sizeof *g);
            if (!g) {
                s = st_error_set(err, ST_ERR_NOMEM, "describing '%s': out of memory", name);
                goto done;
            }
            t->cols = g;
            cap = nc;
        }
        const char *cn = (const char *)sqlite3_column_text(st, 0);
        int cn_len = sqlite3_column_bytes(st, 0);
        const char *ct = (const char *)sqlite3_column_text(st, 1);
        st_source_col *c = &t->cols[t->n_cols++];
        memset(c, 0, sizeof *c);
        if (!cn || !utf8_ok((const uint8_t *)cn, (size_t)cn_len) || cn_len == 0) {
            s = st_error_set(err, ST_ERR_SCHEMA, "table '%s' in '%s' has a column name that is %s (column %zu)",
                             t->name, src->path, cn && cn_len == 0 ? "empty" : "not UTF-8", t->n_cols);
            goto done;
        }
        c->name = dup_str(cn);
        c->decl_type = dup_str(ct ? ct : "");
        c->lname = dup_str(cn);
        if (!c->name || !c->decl_type || !c->lname) {
            s = st_error_set(err, ST_ERR_NOMEM, "describing '%s': out of memory", name);
            goto done;
        }
        for (char *p = c->lname; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        c->affinity = affinity_of(c->decl_type);
        c->type = affinity_type(c->affinity);
    }
    if (rc != SQLITE_DONE) {
        s = sqlite_fail(err, src, "reading columns");
        goto done;
    }
    if (t->n_cols == 0) {
        s = st_error_set(err, ST_ERR_SCHEMA, "table '%s' in '%s' has no columns", t->name, src->path);
        goto done;
    }
    if ((s = detect_rowid(src, t, err)) != ST_OK) goto done;
    if ((s = build_fields(t, err)) != ST_OK) goto done;
    *out = t;
    t = NULL;
done:
    sqlite3_finalize(st);
    st_source_table_free(t);
    return s;
}

/* ---- typing by values ---- */

/* The bronze type of a column whose storage classes were counted:
 * n[0..4) the INTEGER, REAL, TEXT and BLOB counts. The most frequent class
 * wins, ties to the earlier; no values (all NULL) stays string. */
static st_type dominant_type(const int64_t n[4])
{
    static const st_type by_class[4] = {ST_TYPE_I64, ST_TYPE_F64, ST_TYPE_STR, ST_TYPE_STR};
    size_t best = 0;
    for (size_t k = 1; k < 4; k++)
        if (n[k] > n[best]) best = k;
    return n[best] > 0 ? by_class[best] : ST_TYPE_STR;
}

/* Counts the storage classes of the undecided columns of t (cnt[j][k]:
 * column j, class k + 1) with one scan of the table by the reader the
 * scan chooses: both readers give the same `c__class` (the invariant
 * tests/test_btree.c checks), so the counts do not depend on which one
 * read. The undecided value columns are int64 during the count (integers
 * then cost no formatting). */
static st_status count_classes(st_source *src, st_source_table *t, int64_t (*cnt)[4], st_error *err)
{
    st_status s = ST_OK;
    st_source_scan *sc = NULL;
    st_column *cols = calloc(t->n_fields, sizeof *cols);
    if (!cols) return st_error_set(err, ST_ERR_NOMEM, "typing '%s': out of memory", t->name);
    for (size_t j = 0; j < t->n_cols; j++)
        if (affinity_undecided(t->cols[j].affinity)) t->fields[st_source_field_value(j)].type = ST_TYPE_I64;
    for (size_t f = 0; f < t->n_fields; f++) st_column_init(&cols[f], t->fields[f].type);
    int64_t lo, hi;
    uint64_t n = 0;
    if ((s = st_source_rowid_range(src, t, &lo, &hi, &n, err)) != ST_OK || n == 0) goto done;
    if ((s = st_source_scan_open(&sc, src, t, lo, hi, (size_t)1 << 16, err)) != ST_OK) goto done;
    for (;;) {
        size_t got = 0;
        if ((s = st_source_scan_next(sc, cols, &got, err)) != ST_OK || got == 0) break;
        for (size_t j = 0; j < t->n_cols; j++) {
            if (!affinity_undecided(t->cols[j].affinity)) continue;
            const int32_t *c = (const int32_t *)cols[st_source_field_class(j)].data;
            for (size_t i = 0; i < got; i++)
                if (c[i] >= ST_CLASS_INTEGER && c[i] <= ST_CLASS_BLOB) cnt[j][c[i] - 1]++;
        }
    }
done:
    st_source_scan_close(sc);
    for (size_t f = 0; f < t->n_fields; f++) st_column_free(&cols[f]);
    free(cols);
    return s;
}

st_status st_source_type_by_values(st_source *src, st_source_table *t, size_t *n_counted, st_error *err)
{
    return st_source_type_by_values_shards(&src, &t, 1, n_counted, err);
}

/* Column j of t typed by its values as `type` (ok), or left a string. */
static void set_value_type(st_source_table *t, size_t j, st_type type, bool ok)
{
    static const char *const desc = "the source value, typed by its most frequent storage class (the declared "
                                    "type does not decide); NULL when it does not fit (see __raw)";
    st_field *f = &t->fields[st_source_field_value(j)];
    t->cols[j].type = f->type = ok ? type : ST_TYPE_STR;
    t->cols[j].by_values = ok;
    if (ok) f->description = desc;
}

bool st_source_table_set_type(st_source_table *t, size_t j, st_type type)
{
    if (j >= t->n_cols || !affinity_undecided(t->cols[j].affinity) ||
        (type != ST_TYPE_I64 && type != ST_TYPE_F64 && type != ST_TYPE_STR))
        return false;
    set_value_type(t, j, type, true);
    return true;
}

st_status st_source_type_by_values_shards(st_source *const *srcs, st_source_table *const *ts, size_t n_shards,
                                          size_t *n_counted, st_error *err)
{
    st_source_table *t = ts[0];
    size_t n = 0;
    for (size_t j = 0; j < t->n_cols; j++) n += affinity_undecided(t->cols[j].affinity);
    if (n_counted) *n_counted = n;
    if (n == 0) return ST_OK;
    int64_t (*cnt)[4] = calloc(t->n_cols, sizeof *cnt);
    if (!cnt) return st_error_set(err, ST_ERR_NOMEM, "typing '%s': out of memory", t->name);
    st_status s = ST_OK;
    /* the shards' counts add up: the types a file holding all their rows gets */
    for (size_t k = 0; k < n_shards && s == ST_OK; k++) s = count_classes(srcs[k], ts[k], cnt, err);
    for (size_t k = 0; k < n_shards; k++)
        for (size_t j = 0; j < t->n_cols; j++) {
            if (!affinity_undecided(ts[k]->cols[j].affinity)) continue;
            set_value_type(ts[k], j, s == ST_OK ? dominant_type(cnt[j]) : ST_TYPE_STR, s == ST_OK);
        }
    free(cnt);
    return s;
}

/* ---- counting and splitting ---- */

/* SELECT <expr> FROM "t" -> *v (0 when the result is NULL; *is_null, if
 * given, says which). */
static st_status table_scalar_or_null(st_source *src, const st_source_table *t, const char *e1, const char *e2,
                                      const char *e3, int64_t *v, bool *is_null, st_error *err)
{
    st_status s = ST_OK;
    sqlite3_stmt *st = NULL;
    char sql[1200];
    size_t l = 0;
    sql[0] = '\0';
    bool ok = append_raw(sql, sizeof sql, &l, "SELECT ") && append_raw(sql, sizeof sql, &l, e1) &&
              append_raw(sql, sizeof sql, &l, e2) && append_raw(sql, sizeof sql, &l, e3) &&
              append_raw(sql, sizeof sql, &l, " FROM ") && append_ident(sql, sizeof sql, &l, t->name);
    if (!ok) return st_error_set(err, ST_ERR_SCHEMA, "table name '%s' is too long", t->name);
    if (sqlite3_prepare_v2(src->db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        s = st_error_set(err, ST_ERR_SQLITE, "counting rows of '%s' in '%s': %s", t->name, src->path,
                         sqlite3_errmsg(src->db));
        goto done;
    }
    *v = sqlite3_column_int64(st, 0);
    if (is_null) *is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
done:
    sqlite3_finalize(st);
    return s;
}

static st_status table_scalar(st_source *src, const st_source_table *t, const char *e1, const char *e2,
                              const char *e3, int64_t *v, st_error *err)
{
    return table_scalar_or_null(src, t, e1, e2, e3, v, NULL, err);
}

/* The row count and, with_minmax, the rowid range. Three statements, not
 * one: `count(*)` alone is SQLite's page-count fast path and `min(rowid)`
 * / `max(rowid)` alone are one descent each, while the three together in
 * one SELECT step through every row (0.11 s per 1M rows). */
static st_status run_count_query(st_source *src, const st_source_table *t, bool with_minmax, int64_t *mn,
                                 int64_t *mx, uint64_t *n, st_error *err)
{
    int64_t cnt = 0;
    ST_TRY(table_scalar(src, t, "count(*)", "", "", &cnt, err));
    *n = cnt < 0 ? 0 : (uint64_t)cnt;
    if (!with_minmax) return ST_OK;
    if (*n == 0) {
        *mn = 1;
        *mx = 0;
    } else if (t->has_rowid) {
        ST_TRY(table_scalar(src, t, "min(", t->rowid_name, ")", mn, err));
        ST_TRY(table_scalar(src, t, "max(", t->rowid_name, ")", mx, err));
    } else {
        *mn = 1;
        *mx = cnt;
    }
    return ST_OK;
}

st_status st_source_count_rows(st_source *src, const st_source_table *t, uint64_t *n_rows, st_error *err)
{
    return run_count_query(src, t, false, NULL, NULL, n_rows, err);
}

st_status st_source_rowid_range(st_source *src, const st_source_table *t, int64_t *min_rowid,
                                int64_t *max_rowid, uint64_t *n_rows, st_error *err)
{
    return run_count_query(src, t, true, min_rowid, max_rowid, n_rows, err);
}

st_status st_source_rowid_span(st_source *src, const st_source_table *t, int64_t *min_rowid, int64_t *max_rowid,
                                bool *any, st_error *err)
{
    if (!t->has_rowid) {
        uint64_t n;
        ST_TRY(run_count_query(src, t, true, min_rowid, max_rowid, &n, err));
        *any = n > 0;
        return ST_OK;
    }
    bool empty;
    ST_TRY(table_scalar_or_null(src, t, "min(", t->rowid_name, ")", min_rowid, &empty, err));
    *any = !empty;
    if (empty) {
        *min_rowid = 1;
        *max_rowid = 0;
        return ST_OK;
    }
    return table_scalar(src, t, "max(", t->rowid_name, ")", max_rowid, err);
}

st_status st_source_split_rowids(st_source *src, const st_source_table *t, size_t n_parts, int64_t *lo,
                                 int64_t *hi, st_error *err)
{
    if (n_parts == 0) return st_error_set(err, ST_ERR_INVALID, "splitting '%s': zero parts", t->name);
    int64_t mn, mx;
    uint64_t n;
    ST_TRY(st_source_rowid_range(src, t, &mn, &mx, &n, err));
    for (size_t i = 0; i < n_parts; i++) {
        lo[i] = 1;
        hi[i] = 0;
    }
    if (n == 0 || mx < mn) return ST_OK;
    /* total = span + 1 rowids, up to 2^64: part i is [mn + floor(i*total/np),
     * mn + floor((i+1)*total/np)), computed in 128 bits. */
    unsigned __int128 total = (unsigned __int128)((uint64_t)mx - (uint64_t)mn) + 1;
    for (size_t i = 0; i < n_parts; i++) {
        unsigned __int128 a = total * i / n_parts, b = total * (i + 1) / n_parts;
        if (b == a) continue;
        lo[i] = (int64_t)((uint64_t)mn + (uint64_t)a);
        hi[i] = (int64_t)((uint64_t)mn + (uint64_t)(b - 1));
    }
    return ST_OK;
}

/* ---- scanning ---- */

/* Default of a column, as SQLite read it for a short record (cached). */
typedef struct dflt_cache {
    bool have;
    st_bt_value v;
    uint8_t *bytes;      /* owned copy of v.bytes */
} dflt_cache;

struct st_source_scan {
    st_source *src;
    const st_source_table *t;
    sqlite3_stmt *stmt;  /* the sqlite3_step path; NULL on the direct path */
    st_lanes lanes;
    uint64_t rows;       /* returned so far */
    int64_t next_ordinal; /* without rowid: ordinal of the next row */
    bool done;
    bool own_txn;        /* this scan is counted in src->txn_scans */
    /* the direct path */
    st_bt_scan *bt;
    int fd;
    st_bt_geom geom;
    st_bt_col *bcols;    /* n_cols */
    dflt_cache *dflt;    /* n_cols */
    char path_note[200]; /* "pages" or "sqlite3_step (why)" */
};

const char *st_source_scan_path(const st_source_scan *scan) { return scan->path_note; }

/* Runs a one-row query with an optional text parameter; *out receives
 * column 0 as an integer (and text into txt[0..cap) when txt). */
static st_status query_one(st_source *src, const char *sql, const char *param, int64_t *out, char *txt,
                           size_t cap, st_error *err)
{
    sqlite3_stmt *st = NULL;
    st_status s = ST_OK;
    if (sqlite3_prepare_v2(src->db, sql, -1, &st, NULL) != SQLITE_OK) {
        s = sqlite_fail(err, src, "reading the schema");
        goto done;
    }
    if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        s = sqlite_fail(err, src, "reading the schema");
        goto done;
    }
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (txt) {
        const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        snprintf(txt, cap, "%s", v ? v : "");
    }
done:
    sqlite3_finalize(st);
    return s;
}

/* Starts the read transaction that keeps every writer off the pages (a
 * SHARED lock in rollback mode, a snapshot in WAL mode) until the scan is
 * closed. The source counts the scans inside the transaction it began and
 * ends it with the last one; a transaction the caller opened is left to
 * the caller. */
static st_status begin_read(st_source_scan *sc, st_error *err)
{
    st_source *src = sc->src;
    if (sqlite3_get_autocommit(src->db)) {
        if (sqlite3_exec(src->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            return sqlite_fail(err, src, "starting a read transaction");
        src->own_txn = true;
        src->txn_scans = 0;
    }
    sc->own_txn = true; /* counted: the last scan of the source's transaction ends it */
    src->txn_scans++;
    if (sqlite3_exec(src->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_fail(err, src, "starting a read transaction");
    return ST_OK;
}

/* True when SQLite reads column j of t as the rowid (INTEGER PRIMARY KEY):
 * the bytecode of `SELECT "c" FROM "t" NOT INDEXED` asks for the Rowid
 * and no Column. */
static st_status is_rowid_alias(st_source *src, const st_source_table *t, size_t j, bool *alias, st_error *err)
{
    char sql[1400];
    size_t l = 0;
    sql[0] = '\0';
    *alias = false;
    if (!append_raw(sql, sizeof sql, &l, "EXPLAIN SELECT ") || !append_ident(sql, sizeof sql, &l, t->cols[j].name) ||
        !append_raw(sql, sizeof sql, &l, " FROM ") || !append_ident(sql, sizeof sql, &l, t->name) ||
        !append_raw(sql, sizeof sql, &l, " NOT INDEXED"))
        return ST_OK; /* names too long: not proven, the caller falls back */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(src->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return sqlite_fail(err, src, "reading the schema");
    }
    bool rowid = false, column = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *op = (const char *)sqlite3_column_text(st, 1);
        if (op && !strcmp(op, "Rowid")) rowid = true;
        if (op && !strcmp(op, "Column")) column = true;
    }
    sqlite3_finalize(st);
    *alias = rowid && !column;
    return ST_OK;
}

/* Column rules of the record (rowid alias, REAL affinity, DEFAULT) into
 * sc->bcols; *why is set when a column is of a kind the decoder does not
 * read (hidden or generated columns). */
static st_status read_col_rules(st_source_scan *sc, const char **why, st_error *err)
{
    st_source *src = sc->src;
    const st_source_table *t = sc->t;
    int64_t v = 0;
    ST_TRY(query_one(src, "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE hidden != 0", t->name, &v, NULL, 0,
                     err));
    if (v != 0) {
        *why = "hidden or generated columns";
        return ST_OK;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(src->db, "SELECT dflt_value IS NOT NULL, pk FROM pragma_table_info(?1) ORDER BY cid", -1,
                           &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return sqlite_fail(err, src, "reading columns");
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    size_t j = 0, n_pk = 0, pk_col = 0;
    while (sqlite3_step(st) == SQLITE_ROW && j < t->n_cols) {
        sc->bcols[j].has_default = sqlite3_column_int(st, 0) != 0;
        sc->bcols[j].real_affinity = t->cols[j].affinity == ST_AFF_REAL;
        if (sqlite3_column_int(st, 1) > 0) {
            n_pk++;
            pk_col = j;
        }
        j++;
    }
    sqlite3_finalize(st);
    if (j != t->n_cols) {
        *why = "the columns changed while reading";
        return ST_OK;
    }
    if (n_pk == 1 && name_eq_nocase(t->cols[pk_col].decl_type, "INTEGER"))
        ST_TRY(is_rowid_alias(src, t, pk_col, &sc->bcols[pk_col].rowid_alias, err));
    return ST_OK;
}

/* Opens the file for pread and checks its header against what SQLite says
 * (page size, page count, schema cookie, encoding) and that no WAL frame
 * can hold newer pages. *why is set when the direct path is not safe. */
static st_status check_file(st_source_scan *sc, const char **why, st_error *err)
{
    st_source *src = sc->src;
    sc->fd = open(src->path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    uint8_t hdr[100];
    if (sc->fd < 0 || fstat(sc->fd, &sb) != 0 || sb.st_dev != src->dev || sb.st_ino != src->ino ||
        pread(sc->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        *why = "the file could not be reopened as the one SQLite has open";
        return ST_OK;
    }
    st_error ignored;
    if (st_bt_geom_parse(&sc->geom, hdr, sizeof hdr, (uint64_t)sb.st_size, src->path, &ignored) != ST_OK) {
        *why = "a header the decoder does not know";
        return ST_OK;
    }
    int64_t ps = 0, pages = 0, cookie = 0;
    ST_TRY(query_one(src, "PRAGMA page_size", NULL, &ps, NULL, 0, err));
    ST_TRY(query_one(src, "PRAGMA page_count", NULL, &pages, NULL, 0, err));
    ST_TRY(query_one(src, "PRAGMA schema_version", NULL, &cookie, NULL, 0, err));
    if (ps != sc->geom.page_size || pages != sc->geom.n_pages || (uint32_t)cookie != sc->geom.schema_cookie ||
        (uint64_t)sb.st_size < (uint64_t)sc->geom.n_pages * sc->geom.page_size) {
        *why = "the file's header differs from what SQLite reads";
        return ST_OK;
    }
    if (sc->geom.encoding != 1) {
        *why = "not a UTF-8 database";
        return ST_OK;
    }
    if (sc->geom.journal == 2) {
        char wal[4096 + 8];
        snprintf(wal, sizeof wal, "%s-wal", src->path);
        struct stat wb;
        if (stat(wal, &wb) == 0 && wb.st_size > 0) *why = "WAL mode with a non-empty -wal file";
    } else if (sc->geom.journal != 1) {
        *why = "an unknown journal format";
    }
    return ST_OK;
}

/* What SQLite reads for column `col` of a record too short to hold it:
 * asked of SQLite once per column (the DEFAULT of ALTER TABLE ADD COLUMN,
 * with the column's affinity applied) and cached. */
static st_status missing_value(void *ctx, size_t col, int64_t rowid, st_bt_value *v, st_error *err)
{
    st_source_scan *sc = ctx;
    dflt_cache *dc = &sc->dflt[col];
    if (dc->have) {
        *v = dc->v;
        return ST_OK;
    }
    const st_source_table *t = sc->t;
    char sql[1400];
    size_t l = 0;
    sql[0] = '\0';
    if (!append_raw(sql, sizeof sql, &l, "SELECT ") || !append_ident(sql, sizeof sql, &l, t->cols[col].name) ||
        !append_raw(sql, sizeof sql, &l, " FROM ") || !append_ident(sql, sizeof sql, &l, t->name) ||
        !append_raw(sql, sizeof sql, &l, " WHERE ") || !append_raw(sql, sizeof sql, &l, t->rowid_name) ||
        !append_raw(sql, sizeof sql, &l, " = ?1"))
        return st_error_set(err, ST_ERR_SCHEMA, "table name '%s' is too long", t->name);
    sqlite3_stmt *st = NULL;
    st_status s = ST_OK;
    if (sqlite3_prepare_v2(sc->src->db, sql, -1, &st, NULL) != SQLITE_OK) {
        s = sqlite_fail(err, sc->src, "reading a column default");
        goto done;
    }
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        s = sqlite_fail(err, sc->src, "reading a column default");
        goto done;
    }
    sqlite3_value *sv = sqlite3_column_value(st, 0);
    dc->v = (st_bt_value){.cls = ST_CLASS_NULL};
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER: dc->v.cls = ST_CLASS_INTEGER; dc->v.i = sqlite3_value_int64(sv); break;
    case SQLITE_FLOAT: dc->v.cls = ST_CLASS_REAL; dc->v.d = sqlite3_value_double(sv); break;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        bool text = sqlite3_value_type(sv) == SQLITE_TEXT;
        const void *p = text ? (const void *)sqlite3_value_text(sv) : sqlite3_value_blob(sv);
        size_t n = (size_t)sqlite3_value_bytes(sv);
        if (!(dc->bytes = malloc(n ? n : 1))) {
            s = st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
            goto done;
        }
        if (n) memcpy(dc->bytes, p, n);
        dc->v = (st_bt_value){.cls = text ? ST_CLASS_TEXT : ST_CLASS_BLOB, .bytes = dc->bytes, .len = n};
        break;
    }
    default: break;
    }
    dc->have = true;
    *v = dc->v;
done:
    sqlite3_finalize(st);
    return s;
}

/* Decides the reader of scan sc and, for the direct path, opens the
 * decoder. sc->path_note says which and why. */
static st_status choose_path(st_source_scan *sc, int64_t lo, int64_t hi, st_error *err)
{
    const st_source_table *t = sc->t;
    const char *why = NULL, *env = getenv("STRATA_SOURCE_PATH");
    int64_t root = 0;
    if (env && !strcmp(env, "step")) why = "STRATA_SOURCE_PATH=step";
    else if (t->is_view) why = "a view";
    else if (!t->has_rowid) why = "no rowid (WITHOUT ROWID, or every rowid name shadowed)";
    ST_TRY(begin_read(sc, err));
    if (!why) {
        ST_TRY(query_one(sc->src, "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?1", t->name,
                         &root, NULL, 0, err));
        if (root < 2 || root > UINT32_MAX) why = "a virtual table";
    }
    if (!why) {
        if (!(sc->bcols = calloc(t->n_cols, sizeof *sc->bcols)) || !(sc->dflt = calloc(t->n_cols, sizeof *sc->dflt)))
            return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
        ST_TRY(read_col_rules(sc, &why, err));
    }
    if (!why) ST_TRY(check_file(sc, &why, err));
    if (why) {
        snprintf(sc->path_note, sizeof sc->path_note, "sqlite3_step (%s)", why);
        return ST_OK;
    }
    st_bt_scan_spec spec = {.fd = sc->fd, .geom = &sc->geom, .root = (uint32_t)root, .lo = lo, .hi = hi,
                            .n_cols = t->n_cols, .cols = sc->bcols, .missing = missing_value, .missing_ctx = sc,
                            .path = sc->src->path, .table = t->name};
    ST_TRY(st_bt_scan_open(&sc->bt, &spec, err));
    snprintf(sc->path_note, sizeof sc->path_note, "pages");
    return ST_OK;
}

/* Prepares the sqlite3_step path's statement: SELECT [rowid,] "c1", ...
 * FROM "t" [WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid | LIMIT ?1 OFFSET ?2]. */
static st_status prepare_step(st_source_scan *sc, int64_t rowid_lo, int64_t rowid_hi, st_error *err)
{
    const st_source_table *t = sc->t;
    st_source *src = sc->src;
    st_status s = ST_OK;
    size_t cap = 256 + strlen(t->name) * 2;
    for (size_t j = 0; j < t->n_cols; j++) cap += 4 + 2 * strlen(t->cols[j].name);
    char *sql = malloc(cap);
    if (!sql) return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
    size_t l = 0;
    sql[0] = '\0';
    bool ok = append_raw(sql, cap, &l, "SELECT ");
    if (t->has_rowid) ok = ok && append_raw(sql, cap, &l, t->rowid_name) && append_raw(sql, cap, &l, ", ");
    for (size_t j = 0; j < t->n_cols && ok; j++) {
        if (j) ok = append_raw(sql, cap, &l, ", ");
        ok = ok && append_ident(sql, cap, &l, t->cols[j].name);
    }
    ok = ok && append_raw(sql, cap, &l, " FROM ") && append_ident(sql, cap, &l, t->name);
    if (t->has_rowid) {
        ok = ok && append_raw(sql, cap, &l, " WHERE ") && append_raw(sql, cap, &l, t->rowid_name) &&
             append_raw(sql, cap, &l, " BETWEEN ?1 AND ?2 ORDER BY ") && append_raw(sql, cap, &l, t->rowid_name);
    } else {
        ok = ok && append_raw(sql, cap, &l, " LIMIT ?1 OFFSET ?2");
    }
    if (!ok) {
        s = st_error_set(err, ST_ERR_INTERNAL, "scanning '%s': query buffer too small", t->name);
        goto done;
    }
    if (sqlite3_prepare_v2(src->db, sql, -1, &sc->stmt, NULL) != SQLITE_OK) {
        s = st_error_set(err, ST_ERR_SQLITE, "scanning '%s' in '%s': %s", t->name, src->path, sqlite3_errmsg(src->db));
        goto done;
    }
    if (t->has_rowid) {
        sqlite3_bind_int64(sc->stmt, 1, rowid_lo);
        sqlite3_bind_int64(sc->stmt, 2, rowid_hi);
    } else {
        int64_t first = rowid_lo < 1 ? 1 : rowid_lo;
        if (rowid_hi < first) {
            sc->done = true;
        } else {
            sqlite3_bind_int64(sc->stmt, 1, rowid_hi - first + 1);
            sqlite3_bind_int64(sc->stmt, 2, first - 1);
            sc->next_ordinal = first;
        }
    }
done:
    free(sql);
    return s;
}

st_status st_source_scan_open(st_source_scan **out, st_source *src, const st_source_table *t,
                              int64_t rowid_lo, int64_t rowid_hi, size_t batch_rows, st_error *err)
{
    st_status s = ST_OK;
    st_source_scan *sc = NULL;
    *out = NULL;
    if (batch_rows == 0 || batch_rows > ((size_t)1 << 30))
        return st_error_set(err, ST_ERR_INVALID, "scanning '%s': batch of %zu rows", t->name, batch_rows);
    sc = calloc(1, sizeof *sc);
    if (!sc) return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
    sc->src = src;
    sc->t = t;
    sc->fd = -1;
    if (st_lanes_init(&sc->lanes, t->n_cols, batch_rows) != ST_OK) {
        s = st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
        goto done;
    }
    if ((s = choose_path(sc, rowid_lo, rowid_hi, err)) != ST_OK) goto done;
    if (rowid_hi < rowid_lo) sc->done = true;
    else if (!sc->bt && (s = prepare_step(sc, rowid_lo, rowid_hi, err)) != ST_OK) goto done;
    *out = sc;
    sc = NULL;
done:
    st_source_scan_close(sc);
    return s;
}

void st_source_scan_close(st_source_scan *scan)
{
    if (!scan) return;
    sqlite3_finalize(scan->stmt);
    st_bt_scan_close(scan->bt);
    if (scan->fd >= 0) close(scan->fd);
    if (scan->own_txn && --scan->src->txn_scans == 0 && scan->src->own_txn) {
        sqlite3_exec(scan->src->db, "COMMIT", NULL, NULL, NULL);
        scan->src->own_txn = false;
    }
    if (scan->dflt)
        for (size_t j = 0; j < scan->t->n_cols; j++) free(scan->dflt[j].bytes);
    free(scan->dflt);
    free(scan->bcols);
    st_lanes_free(&scan->lanes);
    free(scan);
}

uint64_t st_source_scan_rows(const st_source_scan *scan) { return scan->rows; }

/* The current sqlite3_step row into row n of the lanes. False: out of memory. */
static bool step_row(st_source_scan *scan, st_lanes *ls, size_t n)
{
    sqlite3_stmt *stmt = scan->stmt;
    const int off = scan->t->has_rowid ? 1 : 0;
    ls->rowids[n] = off ? sqlite3_value_int64(sqlite3_column_value(stmt, 0)) : scan->next_ordinal++;
    for (size_t j = 0; j < ls->n_cols; j++) {
        st_lane *L = &ls->lane[j];
        sqlite3_value *sv = sqlite3_column_value(stmt, (int)j + off);
        bool ok = true;
        switch (sqlite3_value_type(sv)) {
        case SQLITE_INTEGER: ok = lane_put_int(L, n, sqlite3_value_int64(sv)); break;
        case SQLITE_FLOAT: ok = lane_put_real(L, n, sqlite3_value_double(sv)); break;
        case SQLITE_TEXT: {
            const unsigned char *p = sqlite3_value_text(sv);
            ok = lane_put_text(L, n, p, p ? (size_t)sqlite3_value_bytes(sv) : 0);
            break;
        }
        case SQLITE_BLOB: {
            const void *p = sqlite3_value_blob(sv);
            ok = lane_put_blob(L, n, p, p ? (size_t)sqlite3_value_bytes(sv) : 0);
            break;
        }
        default: lane_put_null(L, n); break;
        }
        if (!ok) return false;
    }
    return true;
}

/* Up to one batch of rows through sqlite3_step. */
static st_status step_batch(st_source_scan *scan, size_t *n_rows, st_error *err)
{
    const st_source_table *t = scan->t;
    size_t n = 0;
    while (n < scan->lanes.batch_rows) {
        int rc = sqlite3_step(scan->stmt);
        if (rc == SQLITE_DONE) {
            scan->done = true;
            break;
        }
        if (rc != SQLITE_ROW)
            return st_error_set(err, ST_ERR_SQLITE, "scanning '%s' in '%s' after %llu rows: %s", t->name,
                                scan->src->path, (unsigned long long)(scan->rows + n), sqlite3_errmsg(scan->src->db));
        if (!step_row(scan, &scan->lanes, n))
            return st_error_set(err, ST_ERR_NOMEM, "scanning '%s': out of memory", t->name);
        n++;
    }
    *n_rows = n;
    return ST_OK;
}

st_status st_source_scan_next(st_source_scan *scan, st_column *cols, size_t *n_rows, st_error *err)
{
    const st_source_table *t = scan->t;
    size_t n = 0;
    *n_rows = 0;
    ST_TRY(st_lanes_begin(&scan->lanes, t, cols, err));
    if (!scan->done) {
        if (scan->bt) {
            ST_TRY(st_bt_scan_next(scan->bt, &scan->lanes, &n, err));
            if (n == 0) scan->done = true;
        } else {
            ST_TRY(step_batch(scan, &n, err));
        }
    }
    ST_TRY(st_lanes_finish(&scan->lanes, t, cols, n, err));
    scan->rows += n;
    *n_rows = n;
    return ST_OK;
}
