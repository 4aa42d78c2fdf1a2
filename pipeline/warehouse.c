/*
 * warehouse.c: warehouse directories, the run lock, staging and commit.
 * See strata/warehouse.h for the protocol; the invariant it keeps is that
 * a final path <root>/<layer>/<table>.strata only ever changes by one
 * rename of a complete, fsynced file, and only after the commit journal
 * listing every file of the run is durable.
 *
 * Partitioned tables (a manifest at <layer>/<table>.strata naming part
 * files in <layer>/<table>.parts/, FORMAT.md) publish the same way: their
 * staged parts are journal lines of their own, sorted before the
 * manifest ('p' < 's'), so the manifest, the one file readers open, is
 * renamed last; part names carry their content's fingerprint, so a
 * publish never renames over a part the old manifest still names. After
 * a publish, parts no manifest names any more are removed.
 */
#include "strata/warehouse.h"

#include "strata/buf.h"
#include "strata/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct st_warehouse {
    char root[ST_PATH_MAX];
    char staging[ST_PATH_MAX];
    int lock_fd;
};

static st_status path_join(char *buf, const char *a, const char *b, st_error *err)
{
    int n = snprintf(buf, ST_PATH_MAX, "%s/%s", a, b);
    if (n < 0 || n >= ST_PATH_MAX)
        return st_error_set(err, ST_ERR_INVALID, "path too long: '%s/%s'", a, b);
    return ST_OK;
}

st_status st_mkdirs(const char *path, st_error *err)
{
    char tmp[ST_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp) return st_error_set(err, ST_ERR_INVALID, "bad directory path '%s'", path);
    memcpy(tmp, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return st_error_set(err, ST_ERR_IO, "cannot create directory '%s': %s", tmp, strerror(errno));
            tmp[i] = c;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return st_error_set(err, ST_ERR_IO, "'%s' is not a directory", path);
    return ST_OK;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* fsync_dir for the commit, where it must hold: ST_ERR_IO when the
 * directory cannot be opened or synced (EINVAL, a file system that does
 * not sync directories, counts as done). */
static st_status sync_dir(const char *dir, st_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return st_error_set(err, ST_ERR_IO, "cannot open staged directory '%s': %s", dir, strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL)
        return st_error_set(err, ST_ERR_IO, "cannot make staged directory '%s' durable: %s", dir, strerror(e));
    return ST_OK;
}

static void dir_of(const char *path, char *buf)
{
    snprintf(buf, ST_PATH_MAX, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == buf) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(buf, ST_PATH_MAX, ".");
}

st_status st_write_file_atomic(const char *path, const void *buf, size_t len, st_error *err)
{
    char tmp[ST_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return st_error_set(err, ST_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    const char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return st_error_set(err, ST_ERR_IO, "cannot write '%s': %s", path, strerror(w < 0 ? e : ENOSPC));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return st_error_set(err, ST_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return st_error_set(err, ST_ERR_IO, "cannot rename into '%s': %s", path, strerror(e));
    }
    char d[ST_PATH_MAX];
    dir_of(path, d);
    fsync_dir(d);
    return ST_OK;
}

/* rm -rf of a directory tree we own (staging). Best effort. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[ST_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(sub);
        else unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

/* Reads the journal's lines ("layer/table.strata", checked: relative, no
 * ".."). *lines is malloc'd, NUL-separated; *n entries. ST_ERR_NOTFOUND
 * when there is no journal. */
static st_status read_journal(const st_warehouse *wh, char **lines, size_t *n, st_error *err)
{
    *lines = NULL;
    *n = 0;
    char jpath[ST_PATH_MAX];
    ST_TRY(path_join(jpath, wh->staging, "COMMIT", err));
    FILE *f = fopen(jpath, "r");
    if (!f) return errno == ENOENT ? ST_ERR_NOTFOUND : st_error_set(err, ST_ERR_IO, "cannot read '%s': %s", jpath, strerror(errno));
    st_buf b;
    st_buf_init(&b);
    char line[ST_PATH_MAX];
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\n");
        line[len] = '\0';
        if (!len || strstr(line, "..") || line[0] == '/') continue;
        st_buf_append(&b, line, len + 1);
        (*n)++;
    }
    fclose(f);
    if (!st_buf_ok(&b)) {
        st_buf_free(&b);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory reading the commit journal");
    }
    *lines = b.data; /* owned by the caller now */
    return ST_OK;
}

static const char *next_line(const char *p) { return p + strlen(p) + 1; }

/* Copies file `from` to `to` in 64 KiB pieces (fsynced). ST_ERR_IO. */
static st_status copy_file(const char *from, const char *to, st_error *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
    st_status s = ST_OK;
    if (in < 0 || (out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
        s = st_error_set(err, ST_ERR_IO, "cannot keep a copy of '%s': %s", from, strerror(errno));
        goto done;
    }
    char chunk[1 << 16];
    for (;;) {
        ssize_t got = read(in, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) break;
        if (got < 0 || write(out, chunk, (size_t)got) != got) {
            s = st_error_set(err, ST_ERR_IO, "cannot keep a copy of '%s': %s", from, strerror(errno));
            goto done;
        }
    }
    if (fsync(out) != 0) s = st_error_set(err, ST_ERR_IO, "cannot keep a copy of '%s': %s", from, strerror(errno));
done:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    return s;
}

/* Puts <staging>/.old/<line> = a hard link to the published file, so the
 * old version survives its replacement until the commit is over. */
static st_status keep_old(st_warehouse *wh, const char *line, st_error *err)
{
    char to[ST_PATH_MAX], old[ST_PATH_MAX], olddir[ST_PATH_MAX];
    ST_TRY(path_join(to, wh->root, line, err));
    if (snprintf(old, sizeof old, "%s/.old/%s", wh->staging, line) >= (int)sizeof old)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    dir_of(old, olddir);
    ST_TRY(st_mkdirs(olddir, err));
    (void)unlink(old);
    if (link(to, old) == 0 || errno == ENOENT) return ST_OK;
    /* a file system without hard links: keep a copy instead */
    return copy_file(to, old, err);
}

/* Moves the new file back into staging and the old one back into place
 * (or removes a file that did not exist before). */
static st_status undo_one(st_warehouse *wh, const char *line, st_error *err)
{
    char from[ST_PATH_MAX], to[ST_PATH_MAX], old[ST_PATH_MAX];
    ST_TRY(path_join(from, wh->staging, line, err));
    ST_TRY(path_join(to, wh->root, line, err));
    if (snprintf(old, sizeof old, "%s/.old/%s", wh->staging, line) >= (int)sizeof old)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    if (rename(to, from) != 0 && errno != ENOENT)
        return st_error_set(err, ST_ERR_IO, "cannot roll back '%s': %s", to, strerror(errno));
    if (access(old, F_OK) == 0 && rename(old, to) != 0)
        return st_error_set(err, ST_ERR_IO, "cannot restore '%s': %s", to, strerror(errno));
    char todir[ST_PATH_MAX];
    dir_of(to, todir);
    fsync_dir(todir);
    return ST_OK;
}

/* Renames every file listed in the journal from staging into place.
 * Missing staged files were already moved by an earlier, interrupted
 * attempt: skip them. With `undo_on_failure`, a failed rename moves every
 * file renamed so far back (new to staging, old into place) and removes
 * the journal, so the previous warehouse stands; if even that fails the
 * journal stays for the next command to roll forward. */
static st_status apply_journal(st_warehouse *wh, bool undo_on_failure, st_error *err)
{
    char *lines = NULL;
    size_t n = 0;
    st_status s = read_journal(wh, &lines, &n, err);
    if (s == ST_ERR_NOTFOUND) return ST_OK;
    if (s != ST_OK) return s;
    const char *p = lines;
    size_t done_n = 0;
    for (size_t i = 0; i < n && s == ST_OK; i++, p = next_line(p)) {
        char from[ST_PATH_MAX], to[ST_PATH_MAX], todir[ST_PATH_MAX];
        if ((s = path_join(from, wh->staging, p, err)) != ST_OK) break;
        if ((s = path_join(to, wh->root, p, err)) != ST_OK) break;
        dir_of(to, todir);
        if ((s = st_mkdirs(todir, err)) != ST_OK) break;
        if (rename(from, to) != 0 && errno != ENOENT) {
            s = st_error_set(err, ST_ERR_IO, "cannot publish '%s': %s", to, strerror(errno));
            break;
        }
        fsync_dir(todir);
        done_n++;
    }
    char jpath[ST_PATH_MAX];
    (void)path_join(jpath, wh->staging, "COMMIT", NULL);
    if (s != ST_OK && undo_on_failure) {
        st_error uerr;
        st_status us = ST_OK;
        p = lines;
        for (size_t i = 0; i < done_n && us == ST_OK; i++, p = next_line(p)) us = undo_one(wh, p, &uerr);
        if (us == ST_OK) {
            unlink(jpath);
            fsync_dir(wh->staging);
            st_error_prefix(err, "publish failed, previous warehouse restored");
        } else {
            st_error_prefix(err, "publish failed and could not be rolled back (%s); the next strata command on "
                            "this warehouse finishes it", uerr.msg);
        }
    } else if (s == ST_OK) {
        unlink(jpath);
        fsync_dir(wh->staging);
    }
    free(lines);
    return s;
}

st_status st_warehouse_open(st_warehouse **out, const char *root, bool wait, st_error *err)
{
    *out = NULL;
    st_warehouse *wh = calloc(1, sizeof *wh);
    if (!wh) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    wh->lock_fd = -1;
    st_status s = ST_OK;
    if (snprintf(wh->root, sizeof wh->root, "%s", root) >= (int)sizeof wh->root) {
        s = st_error_set(err, ST_ERR_INVALID, "warehouse path too long");
        goto done;
    }
    if ((s = st_mkdirs(root, err)) != ST_OK) {
        st_error_prefix(err, "warehouse '%s'", root);
        goto done;
    }
    if ((s = path_join(wh->staging, root, ".staging", err)) != ST_OK) goto done;
    char lpath[ST_PATH_MAX];
    if ((s = path_join(lpath, root, ".lock", err)) != ST_OK) goto done;
    wh->lock_fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (wh->lock_fd < 0 && errno == EISDIR) {
        s = st_error_set(err, ST_ERR_IO, "'%s' is a directory: strata keeps the warehouse's run lock in a file of "
                         "that name (remove the directory)", lpath);
        goto done;
    }
    if (wh->lock_fd < 0) {
        s = st_error_set(err, ST_ERR_IO, "warehouse '%s' is not writable: %s", root, strerror(errno));
        goto done;
    }
    if (flock(wh->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            s = st_error_set(err, ST_ERR_IO, "cannot lock '%s': %s", lpath, strerror(errno));
            goto done;
        }
        if (!wait) {
            char pid[32] = "?";
            ssize_t n = pread(wh->lock_fd, pid, sizeof pid - 1, 0);
            if (n > 0) {
                pid[n] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
            }
            s = st_error_set(err, ST_ERR_LOCKED,
                             "warehouse '%s' is locked by another strata run (pid %s); use --wait to wait for it",
                             root, pid);
            goto done;
        }
        if (flock(wh->lock_fd, LOCK_EX) != 0) {
            s = st_error_set(err, ST_ERR_IO, "cannot lock '%s': %s", lpath, strerror(errno));
            goto done;
        }
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(wh->lock_fd, 0) != 0 || pwrite(wh->lock_fd, pid, (size_t)n, 0) != n) {
        s = st_error_set(err, ST_ERR_IO, "cannot write lock file '%s': %s", lpath, strerror(errno));
        goto done;
    }
    /* Recovery: finish an interrupted commit, then drop leftover staging. */
    if ((s = apply_journal(wh, false, err)) != ST_OK) {
        st_error_prefix(err, "warehouse '%s' has an unfinished publish (.staging/COMMIT) that cannot be completed",
                        root);
        goto done;
    }
    remove_tree(wh->staging);
done:
    if (s != ST_OK) {
        if (wh->lock_fd >= 0) close(wh->lock_fd);
        free(wh);
        return s;
    }
    *out = wh;
    return ST_OK;
}

void st_warehouse_close(st_warehouse *wh)
{
    if (!wh) return;
    char jpath[ST_PATH_MAX];
    /* a journal left by a publish that could not be rolled back stays for
     * the next command to roll forward; anything else staged goes */
    if (path_join(jpath, wh->staging, "COMMIT", NULL) != ST_OK || access(jpath, F_OK) != 0) remove_tree(wh->staging);
    if (wh->lock_fd >= 0) close(wh->lock_fd); /* drops the flock */
    free(wh);
}

const char *st_warehouse_root(const st_warehouse *wh) { return wh->root; }

void st_warehouse_final_path(const st_warehouse *wh, const char *layer, const char *table, char *buf)
{
    if (snprintf(buf, ST_PATH_MAX, "%s/%s/%s.strata", wh->root, layer, table) >= ST_PATH_MAX)
        buf[0] = '\0'; /* too long: an empty path fails to open, with a message */
}

st_status st_warehouse_stage_path(st_warehouse *wh, const char *layer, const char *table, char *buf,
                                  st_error *err)
{
    char dir[ST_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", wh->staging, layer) >= (int)sizeof dir)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    ST_TRY(st_mkdirs(dir, err));
    if (snprintf(buf, ST_PATH_MAX, "%s/%s.strata", dir, table) >= ST_PATH_MAX)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    return ST_OK;
}

bool st_warehouse_is_staged(const st_warehouse *wh, const char *path)
{
    if (!wh || !path) return false;
    size_t n = strlen(wh->staging);
    return strncmp(path, wh->staging, n) == 0 && path[n] == '/';
}

void st_warehouse_input_path(const st_warehouse *wh, const char *layer, const char *table, char *buf)
{
    if (snprintf(buf, ST_PATH_MAX, "%s/%s/%s.strata", wh->staging, layer, table) < ST_PATH_MAX &&
        access(buf, F_OK) == 0)
        return;
    st_warehouse_final_path(wh, layer, table, buf);
}

st_status st_warehouse_temp_file(st_warehouse *wh, const char *what, int *fd, char *path, st_error *err)
{
    *fd = -1;
    ST_TRY(st_mkdirs(wh->staging, err));
    if (snprintf(path, ST_PATH_MAX, "%s", wh->staging) >= ST_PATH_MAX)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    return st_temp_file_in(wh->staging, what, fd, err);
}

st_status st_temp_file_in(const char *dir, const char *what, int *fd, st_error *err)
{
    *fd = -1;
#ifdef O_TMPFILE
    *fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd >= 0) return ST_OK;
#endif
    char name[ST_PATH_MAX];
    if (snprintf(name, sizeof name, "%s/.%s-XXXXXX", dir, what) >= (int)sizeof name)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    *fd = mkostemp(name, O_CLOEXEC);
    if (*fd < 0) return st_error_set(err, ST_ERR_IO, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
    unlink(name);
    return ST_OK;
}

/* Order of the journal: the layers upstream first, then the rest by
 * name, so a failing publish fails at the same file on every system. */
static int layer_rank(const char *line)
{
    static const char *const order[] = {"bronze/", "silver/", "gold/", "platinum/"};
    for (int i = 0; i < 4; i++)
        if (!strncmp(line, order[i], strlen(order[i]))) return i;
    return 4;
}

static int cmp_lines(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int rx = layer_rank(x), ry = layer_rank(y);
    return rx != ry ? rx - ry : strcmp(x, y);
}

static st_status push_line(char ***out, size_t *count, size_t *cap, const char *line, st_error *err)
{
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        char **g = realloc(*out, *cap * sizeof *g);
        if (!g) return st_error_set(err, ST_ERR_NOMEM, "out of memory listing the staged files");
        *out = g;
    }
    if (!((*out)[*count] = strdup(line))) return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    (*count)++;
    return ST_OK;
}

static bool is_parts_dir(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && !strcmp(name + n - 6, ".parts");
}

/* Adds "layer/<table>.parts/<part>" for every complete staged part. */
static st_status list_parts(const char *staging, const char *rel, char ***out, size_t *count, size_t *cap,
                            st_error *err)
{
    char sub[ST_PATH_MAX];
    if (snprintf(sub, sizeof sub, "%s/%s", staging, rel) >= (int)sizeof sub) return ST_OK;
    DIR *d = opendir(sub);
    if (!d) return ST_OK;
    struct dirent *f;
    st_status s = ST_OK;
    while (s == ST_OK && (f = readdir(d)) != NULL) {
        if (f->d_name[0] == '.' || strstr(f->d_name, ".tmp-") != NULL) continue;
        char line[ST_PATH_MAX];
        if (snprintf(line, sizeof line, "%s/%s", rel, f->d_name) >= (int)sizeof line) continue;
        s = push_line(out, count, cap, line, err);
    }
    closedir(d);
    return s;
}

/* Removes from <root>/<layer>/<t>.parts/ every part the table's current
 * file does not name (all of them when it is a plain layer file or
 * gone): what a publish leaves behind of the previous parts. A part that
 * cannot be removed stays; no reader opens a part its manifest does not
 * name. */
static void drop_unnamed_parts(const char *layer_dir, const char *parts_name)
{
    char parts[ST_PATH_MAX], manifest[ST_PATH_MAX];
    size_t n = strlen(parts_name) - 6;
    if (snprintf(parts, sizeof parts, "%s/%s", layer_dir, parts_name) >= (int)sizeof parts ||
        snprintf(manifest, sizeof manifest, "%s/%.*s.strata", layer_dir, (int)n, parts_name) >= (int)sizeof manifest)
        return;
    st_reader *r = NULL;
    st_error e;
    if (access(manifest, F_OK) == 0 && st_reader_open(&r, manifest, &e) != ST_OK) return; /* keep what we cannot check */
    DIR *d = opendir(parts);
    if (!d) {
        st_reader_close(r);
        return;
    }
    struct dirent *f;
    while ((f = readdir(d)) != NULL) {
        if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..")) continue;
        bool named = false;
        for (size_t i = 0; r && i < st_reader_n_parts(r) && !named; i++) {
            const char *p = st_reader_part_path(r, i), *slash = strrchr(p, '/');
            named = !strcmp(slash ? slash + 1 : p, f->d_name);
        }
        char path[ST_PATH_MAX];
        if (!named && snprintf(path, sizeof path, "%s/%s", parts, f->d_name) < (int)sizeof path) unlink(path);
    }
    closedir(d);
    st_reader_close(r);
    rmdir(parts); /* fails, as it should, while parts remain */
}

/* drop_unnamed_parts() for every parts folder of every layer of root. */
static void drop_stale_parts(const char *root)
{
    static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};
    for (size_t l = 0; l < 4; l++) {
        char dir[ST_PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", root, layers[l]) >= (int)sizeof dir) continue;
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *f;
        while ((f = readdir(d)) != NULL)
            if (f->d_name[0] != '.' && is_parts_dir(f->d_name)) drop_unnamed_parts(dir, f->d_name);
        closedir(d);
    }
}

/* Collects "layer/file" for every staged file (not hidden, not a
 * temporary) of every staged layer folder into *out (caller frees each
 * and the array), sorted by cmp_lines. */
static st_status list_staged(const char *staging, char ***out, size_t *count, st_error *err)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(staging);
    if (!d) return ST_OK;
    struct dirent *e;
    st_status s = ST_OK;
    size_t cap = 0;
    while (s == ST_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[ST_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", staging, e->d_name) >= (int)sizeof sub) continue;
        struct stat sb;
        if (stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        DIR *ld = opendir(sub);
        if (!ld) continue;
        struct dirent *f;
        while (s == ST_OK && (f = readdir(ld)) != NULL) {
            if (f->d_name[0] == '.' || strstr(f->d_name, ".tmp-") != NULL) continue;
            char line[ST_PATH_MAX];
            if (snprintf(line, sizeof line, "%s/%s", e->d_name, f->d_name) >= (int)sizeof line) continue;
            if (is_parts_dir(f->d_name)) s = list_parts(staging, line, out, count, &cap, err);
            else s = push_line(out, count, &cap, line, err);
        }
        closedir(ld);
    }
    closedir(d);
    if (*count) qsort(*out, *count, sizeof **out, cmp_lines);
    return s;
}

/* fsyncs staged file `name` (a journal line) and, when it is the first
 * in its directory (names are sorted), that directory. ST_ERR_IO. */
static st_status make_durable(const st_warehouse *wh, const char *name, const char *prev, st_error *err)
{
    char path[ST_PATH_MAX], dir[ST_PATH_MAX], pdir[ST_PATH_MAX];
    ST_TRY(path_join(path, wh->staging, name, err));
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return st_error_set(err, ST_ERR_IO, "cannot make staged '%s' durable: %s", path, strerror(e));
    }
    close(fd);
    dir_of(path, dir);
    if (prev) {
        char pp[ST_PATH_MAX];
        ST_TRY(path_join(pp, wh->staging, prev, err));
        dir_of(pp, pdir);
    }
    return !prev || strcmp(dir, pdir) != 0 ? sync_dir(dir, err) : ST_OK;
}

st_status st_warehouse_commit(st_warehouse *wh, st_error *err)
{
    struct stat sb;
    if (stat(wh->staging, &sb) != 0) return ST_OK; /* nothing staged */
    char jtmp[ST_PATH_MAX], jpath[ST_PATH_MAX];
    ST_TRY(path_join(jpath, wh->staging, "COMMIT", err));
    ST_TRY(path_join(jtmp, wh->staging, "COMMIT.tmp", err));
    FILE *j = fopen(jtmp, "w");
    if (!j) return st_error_set(err, ST_ERR_IO, "cannot write commit journal in '%s': %s", wh->staging, strerror(errno));
    size_t count = 0;
    char **names = NULL;
    st_status s = list_staged(wh->staging, &names, &count, err);
    /* every file the journal names is durable before the journal is */
    for (size_t i = 0; i < count && s == ST_OK; i++) s = make_durable(wh, names[i], i ? names[i - 1] : NULL, err);
    if (s == ST_OK) s = sync_dir(wh->staging, err); /* the layer directories' entries */
    for (size_t i = 0; i < count; i++) {
        if (s == ST_OK && fprintf(j, "%s\n", names[i]) < 0) s = st_error_set(err, ST_ERR_IO, "cannot write commit journal");
        free(names[i]);
    }
    free(names);
    if (fflush(j) != 0 || fsync(fileno(j)) != 0) s = st_error_set(err, ST_ERR_IO, "cannot write commit journal: %s", strerror(errno));
    fclose(j);
    if (s != ST_OK) return s;
    if (rename(jtmp, jpath) != 0) return st_error_set(err, ST_ERR_IO, "cannot write commit journal: %s", strerror(errno));
    fsync_dir(wh->staging);
    /* keep every old version until the last rename has succeeded */
    char *lines = NULL;
    size_t n = 0;
    s = read_journal(wh, &lines, &n, err);
    const char *p = lines;
    for (size_t i = 0; i < n && s == ST_OK; i++, p = next_line(p)) s = keep_old(wh, p, err);
    free(lines);
    if (s != ST_OK) { /* nothing published yet: drop the journal, the old warehouse stands */
        unlink(jpath);
        return s;
    }
    ST_TRY(apply_journal(wh, true, err));
    remove_tree(wh->staging);
    drop_stale_parts(wh->root);
    return ST_OK;
}

/* Rolls forward the unfinished publish of warehouse `root`, if any. */
static st_status finish_pending(const char *root, st_error *err)
{
    char jpath[ST_PATH_MAX];
    if (snprintf(jpath, sizeof jpath, "%s/.staging/COMMIT", root) >= (int)sizeof jpath) return ST_OK;
    /* A journal with the lock held is a publish under way (a run rolls a
     * stale journal forward as soon as it holds the lock): wait up to
     * 10 s for it to end, then refuse rather than read half of it. */
    for (int tries = 0; access(jpath, F_OK) == 0; tries++) {
        st_warehouse *wh = NULL;
        st_status s = st_warehouse_open(&wh, root, false, err); /* rolls the journal forward */
        if (s == ST_OK) {
            st_warehouse_close(wh);
            return ST_OK;
        }
        if (s != ST_ERR_LOCKED) return s;
        if (tries == 100)
            return st_error_set(err, ST_ERR_LOCKED, "warehouse '%s' is being published by another strata run; "
                                "read it when that run has finished", root);
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    return ST_OK;
}

st_status st_warehouse_check_pending(const char *path, st_error *err)
{
    char p[ST_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return ST_OK;
    for (int up = 0; up < 3; up++) { /* the warehouse, a layer folder, a layer file */
        ST_TRY(finish_pending(p, err));
        char d[ST_PATH_MAX];
        dir_of(p, d);
        if (!strcmp(d, p)) break;
        memcpy(p, d, sizeof p);
    }
    return ST_OK;
}
