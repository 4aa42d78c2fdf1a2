/*
 * test_warehouse.c: the warehouse lock, staging and journaled commit.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/warehouse.h"

static char root[256];

static void setup(void) { fx_tmpdir(root, sizeof root, "st_wh_"); }
static void teardown(void) { fx_rmtree(root); }

static void put(const char *path, const char *text) { fx_put_file(path, text, strlen(text)); }

/* The start of a small file (256 bytes at most), in a static buffer;
 * NULL when it cannot be read. */
static char *slurp(const char *path)
{
    static char buf[256];
    char *s = fx_slurp(path, NULL);
    if (!s) return NULL;
    snprintf(buf, sizeof buf, "%s", s);
    free(s);
    return buf;
}

TestSuite(warehouse, .init = setup, .fini = teardown);

Test(warehouse, commit_publishes_staged_files)
{
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    char p[ST_PATH_MAX], f[ST_PATH_MAX];
    cr_assert_eq(st_warehouse_stage_path(wh, "silver", "t", p, &err), ST_OK);
    put(p, "new");
    st_warehouse_final_path(wh, "silver", "t", f);
    cr_assert_null(slurp(f), "nothing is published before commit");
    st_warehouse_input_path(wh, "silver", "t", p);
    cr_assert_str_eq(slurp(p), "new", "inputs resolve to the staged file");
    cr_assert_eq(st_warehouse_commit(wh, &err), ST_OK, "%s", err.msg);
    cr_assert_str_eq(slurp(f), "new");
    st_warehouse_close(wh);
}

Test(warehouse, staged_paths_are_told_apart_from_final_and_lookalike_ones)
{
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    char p[ST_PATH_MAX], f[ST_PATH_MAX], look[ST_PATH_MAX + 8];
    cr_assert_eq(st_warehouse_stage_path(wh, "gold", "t", p, &err), ST_OK);
    st_warehouse_final_path(wh, "gold", "t", f);
    cr_assert(st_warehouse_is_staged(wh, p), "%s is staged (its writer leaves the fsync to the commit)", p);
    cr_assert_not(st_warehouse_is_staged(wh, f), "%s is a final path", f);
    snprintf(look, sizeof look, "%s2/gold/t.strata", root);
    cr_assert_not(st_warehouse_is_staged(wh, look));
    cr_assert_not(st_warehouse_is_staged(wh, NULL));
    cr_assert_not(st_warehouse_is_staged(NULL, p));
    st_warehouse_close(wh);
}

Test(warehouse, close_without_commit_keeps_previous)
{
    st_warehouse *wh = NULL;
    st_error err;
    char p[ST_PATH_MAX], f[ST_PATH_MAX];
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    cr_assert_eq(st_warehouse_stage_path(wh, "gold", "t", p, &err), ST_OK);
    put(p, "old");
    cr_assert_eq(st_warehouse_commit(wh, &err), ST_OK);
    cr_assert_eq(st_warehouse_stage_path(wh, "gold", "t", p, &err), ST_OK);
    put(p, "half");
    st_warehouse_close(wh); /* a failed run: no commit */
    snprintf(f, sizeof f, "%s/gold/t.strata", root);
    cr_assert_str_eq(slurp(f), "old", "the previous file survives a run that did not commit");
}

Test(warehouse, interrupted_commit_rolls_forward)
{
    /* Simulate a run killed after the journal was written but before the
     * renames: the next open must finish the publish. */
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/.staging/platinum", root);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/x.strata", dir);
    put(path, "rolled");
    snprintf(path, sizeof path, "%s/.staging/COMMIT", root);
    put(path, "platinum/x.strata\n");
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK, "%s", err.msg);
    snprintf(path, sizeof path, "%s/platinum/x.strata", root);
    cr_assert_str_eq(slurp(path), "rolled");
    snprintf(path, sizeof path, "%s/.staging", root);
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "staging is gone after recovery");
    st_warehouse_close(wh);
}

Test(warehouse, leftover_staging_without_journal_is_dropped)
{
    char path[600], cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/.staging/silver' '%s/silver'", root, root);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/silver/a.strata", root);
    put(path, "previous");
    snprintf(path, sizeof path, "%s/.staging/silver/a.strata", root);
    put(path, "unfinished");
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    snprintf(path, sizeof path, "%s/silver/a.strata", root);
    cr_assert_str_eq(slurp(path), "previous");
    st_warehouse_close(wh);
}

Test(warehouse, second_opener_is_locked_out)
{
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    pid_t pid = fork();
    if (pid == 0) {
        st_warehouse *w2 = NULL;
        st_error e2;
        st_status s = st_warehouse_open(&w2, root, false, &e2);
        _exit(s == ST_ERR_LOCKED && strstr(e2.msg, "locked") && strstr(e2.msg, "pid") ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "second open must fail with ST_ERR_LOCKED naming the pid");
    st_warehouse_close(wh);
    /* released: a new opener succeeds */
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK);
    st_warehouse_close(wh);
}

Test(warehouse, lock_of_a_killed_holder_is_released)
{
    pid_t pid = fork();
    if (pid == 0) {
        st_warehouse *w = NULL;
        st_error e;
        if (st_warehouse_open(&w, root, false, &e) != ST_OK) _exit(1);
        pause();
        _exit(0);
    }
    usleep(200000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, root, false, &err), ST_OK, "%s", err.msg);
    st_warehouse_close(wh);
}

Test(warehouse, unwritable_root_is_io_error)
{
    if (geteuid() == 0) {
        /* root ignores permissions: use a path under a regular file */
        char path[600];
        snprintf(path, sizeof path, "%s/file", root);
        put(path, "x");
        snprintf(path, sizeof path, "%s/file/wh", root);
        st_warehouse *wh = NULL;
        st_error err;
        st_status s = st_warehouse_open(&wh, path, false, &err);
        cr_assert_eq(s, ST_ERR_IO, "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, "file/wh"), "message names the path: %s", err.msg);
        return;
    }
    chmod(root, 0500);
    char path[600];
    snprintf(path, sizeof path, "%s/wh", root);
    st_warehouse *wh = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&wh, path, false, &err), ST_ERR_IO);
    chmod(root, 0700);
}
