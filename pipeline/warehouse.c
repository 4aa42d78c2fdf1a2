/*
 * warehouse.c: warehouse directories, the run lock, staging and commit.
 * See strata/warehouse.h for the protocol; the invariant it keeps is that
 * a final path <root>/<layer>/<table>.strata only ever changes by one
 * rename of a complete, fsynced file, and only after the commit journal
 * listing every file of the run is durable.
 */
#include "strata/warehouse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* Renames every file listed in the journal (lines "layer/table.strata")
 * from staging into place. Missing staged files were already moved by an
 * earlier, interrupted attempt: skip them. */
static st_status apply_journal(st_warehouse *wh, st_error *err)
{
    char jpath[ST_PATH_MAX];
    ST_TRY(path_join(jpath, wh->staging, "COMMIT", err));
    FILE *f = fopen(jpath, "r");
    if (!f) return ST_OK;
    char line[ST_PATH_MAX];
    st_status s = ST_OK;
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        if (!n || strstr(line, "..") || line[0] == '/') continue;
        char from[ST_PATH_MAX], to[ST_PATH_MAX], todir[ST_PATH_MAX];
        if ((s = path_join(from, wh->staging, line, err)) != ST_OK) break;
        if ((s = path_join(to, wh->root, line, err)) != ST_OK) break;
        dir_of(to, todir);
        if ((s = st_mkdirs(todir, err)) != ST_OK) break;
        if (rename(from, to) != 0 && errno != ENOENT) {
            s = st_error_set(err, ST_ERR_IO, "cannot publish '%s': %s", to, strerror(errno));
            break;
        }
        fsync_dir(todir);
    }
    fclose(f);
    if (s == ST_OK) {
        unlink(jpath);
        fsync_dir(wh->staging);
    }
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
    if ((s = apply_journal(wh, err)) != ST_OK) goto done;
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
    remove_tree(wh->staging);
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
#ifdef O_TMPFILE
    *fd = open(wh->staging, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd >= 0) return ST_OK;
#endif
    char name[ST_PATH_MAX];
    if (snprintf(name, sizeof name, "%s/.%s-XXXXXX", wh->staging, what) >= (int)sizeof name)
        return st_error_set(err, ST_ERR_INVALID, "path too long");
    *fd = mkostemp(name, O_CLOEXEC);
    if (*fd < 0)
        return st_error_set(err, ST_ERR_IO, "cannot create a temporary file in '%s': %s", wh->staging, strerror(errno));
    unlink(name);
    return ST_OK;
}

/* Appends "layer/file" lines for every staged data file to the journal. */
static st_status list_staged(const char *staging, FILE *j, size_t *count, st_error *err)
{
    DIR *d = opendir(staging);
    if (!d) return ST_OK;
    struct dirent *e;
    st_status s = ST_OK;
    /* Sorted order is not needed for correctness; the journal is replayed
     * whole. */
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[ST_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", staging, e->d_name) >= (int)sizeof sub) continue;
        struct stat sb;
        if (stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        DIR *ld = opendir(sub);
        if (!ld) continue;
        struct dirent *f;
        while ((f = readdir(ld)) != NULL) {
            size_t n = strlen(f->d_name);
            if (n > 7 && !strcmp(f->d_name + n - 7, ".strata")) {
                if (fprintf(j, "%s/%s\n", e->d_name, f->d_name) < 0) s = st_error_set(err, ST_ERR_IO, "cannot write commit journal");
                (*count)++;
            } else if (n > 0 && f->d_name[0] != '.' && strstr(f->d_name, ".tmp-") == NULL) {
                if (fprintf(j, "%s/%s\n", e->d_name, f->d_name) < 0) s = st_error_set(err, ST_ERR_IO, "cannot write commit journal");
                (*count)++;
            }
        }
        closedir(ld);
    }
    closedir(d);
    return s;
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
    st_status s = list_staged(wh->staging, j, &count, err);
    if (fflush(j) != 0 || fsync(fileno(j)) != 0) s = st_error_set(err, ST_ERR_IO, "cannot write commit journal: %s", strerror(errno));
    fclose(j);
    if (s != ST_OK) return s;
    if (rename(jtmp, jpath) != 0) return st_error_set(err, ST_ERR_IO, "cannot write commit journal: %s", strerror(errno));
    fsync_dir(wh->staging);
    ST_TRY(apply_journal(wh, err));
    remove_tree(wh->staging);
    return ST_OK;
}
