/*
 * test_parts.c: partitioned layer tables (a manifest naming part files,
 * FORMAT.md "Partitioned tables") read as one table.
 *
 * The fixture writes one table twice: as three parts (10, 0 and 7 rows,
 * chunks of 4 rows, so chunks end inside parts and one part is empty)
 * with a manifest, and as one plain file with the same 17 rows. The naive
 * reference is the row index itself: row i holds id = i and name "r<i>"
 * (NULL when i % 5 == 0), so every reader's output can be checked value
 * by value. Then the parts are damaged one way at a time (swapped,
 * missing, replaced by another valid file, manifest byte flipped or cut)
 * and every reader must refuse with ST_ERR_CORRUPT / exit 6 naming what
 * is wrong. The publish test stages a partitioned table in a warehouse,
 * commits it, then replaces it with other parts and checks that the old
 * parts are gone and the new table reads whole.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "strata/file.h"
#include "strata/warehouse.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_parts_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(parts, .init = setup, .fini = teardown, .timeout = 120);

static const st_field fields[2] = {{"id", ST_TYPE_I64, false, "row index"}, {"name", ST_TYPE_STR, true, NULL}};

/* Writes rows [from, to) of the reference table to path. */
static void write_rows(const char *path, int from, int to, uint64_t fp)
{
    st_file_meta meta = {.layer = "bronze", .table = "t", .params = "", .fingerprint = fp};
    st_write_opts wo = {.no_fsync = true, .chunk_rows = 4};
    st_writer *w = NULL;
    st_error err;
    cr_assert_eq(st_writer_open(&w, path, fields, 2, &meta, &wo, &err), ST_OK, "%s", err.msg);
    st_column c[2];
    st_column_init(&c[0], ST_TYPE_I64);
    st_column_init(&c[1], ST_TYPE_STR);
    for (int i = from; i < to; i++) {
        char s[16];
        int n = snprintf(s, sizeof s, "r%d", i);
        cr_assert_eq(st_column_push_i64(&c[0], i), ST_OK);
        cr_assert_eq(i % 5 ? st_column_push_str(&c[1], s, (size_t)n) : st_column_push_null(&c[1]), ST_OK);
    }
    if (to > from) cr_assert_eq(st_writer_write(w, c, 0, (size_t)(to - from), &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
    st_column_free(&c[0]);
    st_column_free(&c[1]);
}

static const int cuts[4] = {0, 10, 10, 17};
static const char *const names[3] = {"part-00000.strata", "part-00001.strata", "part-00002.strata"};

/* dir/<root>/bronze/t.strata (manifest) over three parts, and the plain
 * dir/ref.strata with the same rows. */
static void make_table(const char *root, char *manifest, size_t cap)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/bronze/t.parts", dir, root);
    cr_assert_eq(fx_sh("mkdir -p %s", p), 0);
    for (int k = 0; k < 3; k++) {
        char part[700];
        snprintf(part, sizeof part, "%s/%s", p, names[k]);
        write_rows(part, cuts[k], cuts[k + 1], 100 + (uint64_t)k);
    }
    snprintf(manifest, cap, "%s/%s/bronze/t.strata", dir, root);
    st_error err;
    cr_assert_eq(st_manifest_write(manifest, names, 3, 0xfeedull, &err), ST_OK, "%s", err.msg);
    snprintf(p, sizeof p, "%s/ref.strata", dir);
    write_rows(p, 0, 17, 0xfeedull);
}

Test(parts, the_reader_reads_the_parts_as_one_table_in_manifest_order)
{
    char m[600];
    make_table("wh", m, sizeof m);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open(&r, m, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_reader_n_parts(r), 3);
    cr_assert_eq(st_reader_n_rows(r), 17);
    cr_assert_eq(st_reader_n_chunks(r), 3 + 0 + 2, "chunks of 4 rows: 10 -> 3, 0 -> 0, 7 -> 2");
    cr_assert_eq(st_reader_meta(r)->fingerprint, 0xfeedull, "the manifest's fingerprint");
    cr_assert_str_eq(st_reader_meta(r)->table, "t");
    cr_assert_eq(st_reader_n_fields(r), 2);
    /* block by block, against the row index */
    int64_t want = 0;
    st_column id, name;
    st_column_init(&id, ST_TYPE_I64);
    st_column_init(&name, ST_TYPE_STR);
    for (size_t c = 0; c < st_reader_n_chunks(r); c++) {
        cr_assert_eq(st_reader_read_block(r, c, 0, &id, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(st_reader_read_block(r, c, 1, &name, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(id.n_rows, st_reader_chunk_rows(r, c));
        st_block_info bi;
        cr_assert_eq(st_reader_block_info(r, c, 0, &bi), ST_OK);
        cr_assert_eq(bi.min_i64, want, "zone map of chunk %zu", c);
        for (size_t i = 0; i < id.n_rows; i++, want++) {
            cr_assert_eq(st_column_i64(&id)[i], want);
            cr_assert_eq(st_column_valid(&name, i), want % 5 != 0);
            if (want % 5) {
                char s[32];
                size_t len;
                snprintf(s, sizeof s, "r%lld", (long long)want);
                const char *got = st_column_str(&name, i, &len);
                cr_assert(len == strlen(s) && !memcmp(got, s, len), "row %lld", (long long)want);
            }
        }
        st_stored_block sb;
        cr_assert_eq(st_reader_read_stored(r, c, 0, &sb, &err), ST_OK, "%s", err.msg);
        cr_assert_eq(sb.n_rows, st_reader_chunk_rows(r, c));
    }
    cr_assert_eq(want, 17);
    cr_assert_eq(st_reader_verify(r, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_reader_verify_checksums(r, &err), ST_OK, "%s", err.msg);
    /* read_all goes through the same chunks */
    st_column all;
    st_column_init(&all, ST_TYPE_I64);
    size_t which = 0;
    cr_assert_eq(st_reader_read_all(r, &which, 1, &all, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(all.n_rows, 17);
    for (size_t i = 0; i < 17; i++) cr_assert_eq(st_column_i64(&all)[i], (int64_t)i);
    st_column_free(&all);
    st_column_free(&id);
    st_column_free(&name);
    st_reader_close(r);
}

Test(parts, export_and_inspect_read_a_partitioned_table_as_one)
{
    char m[600];
    make_table("wh", m, sizeof m);
    for (int f = 0; f < 2; f++) {
        const char *fmt = f ? "jsonl" : "csv";
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/a.%s", dir, fmt);
        snprintf(b, sizeof b, "%s/b.%s", dir, fmt);
        cr_assert_eq(fx_sh("%s export %s --format %s --out %s", fx_bin(), m, fmt, a), 0);
        cr_assert_eq(fx_sh("%s export %s/ref.strata --format %s --out %s", fx_bin(), dir, fmt, b), 0);
        char *x = fx_read_file(a, NULL), *y = fx_read_file(b, NULL);
        cr_assert_str_eq(x, y, "%s export of the parts differs from the one file's", fmt);
        free(x);
        free(y);
    }
    char out[16384];
    cr_assert_eq(fx_capture(out, sizeof out, "%s inspect %s", fx_bin(), m), 0, "%s", out);
    cr_assert_not_null(strstr(out, "17"), "%s", out);
    cr_assert_not_null(strstr(out, "parts: 3"), "%s", out);
    cr_assert_eq(fx_capture(out, sizeof out, "%s inspect --verify %s/wh", fx_bin(), dir), 0, "%s", out);
    cr_assert_eq(fx_capture(out, sizeof out, "%s inspect %s/wh", fx_bin(), dir), 0, "%s", out);
    cr_assert_not_null(strstr(out, "bronze"), "%s", out);
}

/* The reader's refusal of the table at m, with `want` in its message;
 * also the CLI's exit code 6. */
static void expect_refused(const char *m, const char *want)
{
    st_reader *r = NULL;
    st_error err;
    st_status s = st_reader_open(&r, m, &err);
    cr_assert_eq(s, ST_ERR_CORRUPT, "status %d: %s", s, s ? err.msg : "opened");
    cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
    cr_assert_eq(fx_sh("%s export %s >/dev/null 2>&1", fx_bin(), m), 6);
}

Test(parts, a_swapped_missing_or_replaced_part_is_refused_naming_it)
{
    char m[600], p0[700], p2[700], tmp[700];
    make_table("wh", m, sizeof m);
    snprintf(p0, sizeof p0, "%s/wh/bronze/t.parts/%s", dir, names[0]);
    snprintf(p2, sizeof p2, "%s/wh/bronze/t.parts/%s", dir, names[2]);
    snprintf(tmp, sizeof tmp, "%s/keep.strata", dir);
    /* swapped */
    cr_assert_eq(rename(p0, tmp), 0);
    cr_assert_eq(rename(p2, p0), 0);
    cr_assert_eq(rename(tmp, p2), 0);
    expect_refused(m, "part-00000.strata' is not the file the manifest names");
    cr_assert_eq(rename(p2, tmp), 0);
    cr_assert_eq(rename(p0, p2), 0);
    cr_assert_eq(rename(tmp, p0), 0);
    /* missing */
    cr_assert_eq(rename(p2, tmp), 0);
    expect_refused(m, "part-00002.strata' is missing");
    cr_assert_eq(rename(tmp, p2), 0);
    /* replaced by another valid layer file of the same table */
    cr_assert_eq(rename(p2, tmp), 0);
    write_rows(p2, 10, 16, 102);
    expect_refused(m, "part-00002.strata' is not the file the manifest names");
    cr_assert_eq(rename(tmp, p2), 0);
    /* a manifest where a part should be: refused before it is followed */
    cr_assert_eq(rename(p2, tmp), 0);
    cr_assert_eq(fx_sh("cp %s %s", m, p2), 0);
    expect_refused(m, "part-00002.strata' is a manifest, not a part file");
    cr_assert_eq(rename(tmp, p2), 0);
    /* the manifest itself: one byte flipped, cut short */
    size_t len;
    char *bytes = fx_read_file(m, &len);
    char *copy = malloc(len);
    memcpy(copy, bytes, len);
    copy[len / 2] ^= 0x20;
    fx_put_file(m, copy, len);
    expect_refused(m, "manifest checksum mismatch");
    fx_put_file(m, bytes, len - 5);
    expect_refused(m, "manifest");
    fx_put_file(m, bytes, len);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open(&r, m, &err), ST_OK, "restored: %s", err.msg);
    st_reader_close(r);
    /* a manifest moved to another table's place is misplaced */
    char other[700];
    snprintf(other, sizeof other, "%s/wh/bronze/u.strata", dir);
    cr_assert_eq(fx_sh("cp %s %s && cp -r %s/wh/bronze/t.parts %s/wh/bronze/u.parts", m, other, dir, dir), 0);
    expect_refused(other, "u.strata");
    free(bytes);
    free(copy);
}

/* The manifest parser refuses what the format forbids before use. */
Test(parts, the_manifest_parser_refuses_bad_names_counts_and_lengths)
{
    char m[600];
    make_table("wh", m, sizeof m);
    size_t len;
    char *bytes = fx_read_file(m, &len);
    /* a part name with a '/' (recomputing the CRC, so the name check is what refuses) */
    char *at = memmem(bytes, len, "part-00001", 10);
    cr_assert_not_null(at);
    at[4] = '/';
    uint32_t crc = st_crc32c(0, bytes, len - 4);
    memcpy(bytes + len - 4, &crc, 4);
    fx_put_file(m, bytes, len);
    expect_refused(m, "bad name");
    /* row counts that do not add up */
    at[4] = '-';
    memcpy(bytes + len - 4, &(uint32_t){st_crc32c(0, bytes, len - 4)}, 4);
    uint64_t rows;
    size_t rows_at = 16 + 2 + strlen("bronze") + 2 + 1;
    memcpy(&rows, bytes + rows_at, 8);
    cr_assert_eq(rows, 17);
    rows = 18;
    memcpy(bytes + rows_at, &rows, 8);
    memcpy(bytes + len - 4, &(uint32_t){st_crc32c(0, bytes, len - 4)}, 4);
    fx_put_file(m, bytes, len);
    expect_refused(m, "row counts do not add up");
    free(bytes);
}

/* Stages a partitioned bronze.t of parts (rows cut at cut[0..n]) with
 * the given part names in the open warehouse w. */
static void stage(st_warehouse *w, const char *const *pnames, const int *cut, size_t n, uint64_t fp)
{
    st_error err;
    char path[ST_PATH_MAX], parts[ST_PATH_MAX + 16];
    cr_assert_eq(st_warehouse_stage_path(w, "bronze", "t", path, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_manifest_parts_dir(path, parts, sizeof parts, &err), ST_OK);
    cr_assert_eq(fx_sh("mkdir -p %s", parts), 0);
    for (size_t k = 0; k < n; k++) {
        char p[ST_PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", parts, pnames[k]);
        write_rows(p, cut[k], cut[k + 1], fp + k);
    }
    cr_assert_eq(st_manifest_write(path, pnames, n, fp, &err), ST_OK, "%s", err.msg);
}

/* stage() in warehouse wh, then its commit. */
static void publish(const char *wh, const char *const *pnames, const int *cut, size_t n, uint64_t fp)
{
    st_warehouse *w = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&w, wh, false, &err), ST_OK, "%s", err.msg);
    stage(w, pnames, cut, n, fp);
    cr_assert_eq(st_warehouse_commit(w, &err), ST_OK, "%s", err.msg);
    st_warehouse_close(w);
}

static const char *const v1[3] = {"part-00000-a1.strata", "part-00001-a1.strata", "part-00002-a1.strata"};
static const char *const v2[2] = {"part-00000-b2.strata", "part-00001-b2.strata"};
static const int cut2[3] = {0, 3, 8};

Test(parts, publish_swaps_a_partitioned_table_whole_and_drops_the_old_parts)
{
    char wh[300], m[400];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    snprintf(m, sizeof m, "%s/bronze/t.strata", wh);
    publish(wh, v1, cuts, 3, 0xa1);
    char out[4096];
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s | wc -l", fx_bin(), m), 0);
    cr_assert_eq(atoi(out), 18, "header + 17 rows: %s", out);
    publish(wh, v2, cut2, 2, 0xb2);
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s | wc -l", fx_bin(), m), 0);
    cr_assert_eq(atoi(out), 9, "header + 8 rows: %s", out);
    cr_assert_eq(fx_capture(out, sizeof out, "ls %s/bronze/t.parts", wh), 0);
    cr_assert_str_eq(out, "part-00000-b2.strata\npart-00001-b2.strata\n", "only the new parts remain");
    cr_assert_eq(fx_sh("%s inspect --verify %s >/dev/null", fx_bin(), wh), 0);
    /* a plain file replacing the partitioned table takes its parts away */
    st_warehouse *w = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&w, wh, false, &err), ST_OK, "%s", err.msg);
    char path[ST_PATH_MAX];
    cr_assert_eq(st_warehouse_stage_path(w, "bronze", "t", path, &err), ST_OK);
    write_rows(path, 0, 5, 7);
    cr_assert_eq(st_warehouse_commit(w, &err), ST_OK, "%s", err.msg);
    st_warehouse_close(w);
    cr_assert_neq(fx_sh("test -e %s/bronze/t.parts", wh), 0, "the parts folder must be gone");
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s | wc -l", fx_bin(), m), 0);
    cr_assert_eq(atoi(out), 6, "%s", out);
}

/* A publish whose manifest rename fails (an immutable layer folder,
 * chattr +i, which stops root too) puts the new parts back: the old
 * manifest and its parts stand, and read whole. */
Test(parts, a_failed_publish_keeps_the_old_partitioned_table)
{
    char wh[300], m[400], out[4096];
    snprintf(wh, sizeof wh, "%s/wh", dir);
    snprintf(m, sizeof m, "%s/bronze/t.strata", wh);
    publish(wh, v1, cuts, 3, 0xa1);
    size_t nb, na;
    char *before = fx_read_file(m, &nb);
    st_warehouse *w = NULL;
    st_error err;
    cr_assert_eq(st_warehouse_open(&w, wh, false, &err), ST_OK, "%s", err.msg);
    stage(w, v2, cut2, 2, 0xb2);
    if (fx_sh("chattr +i %s/bronze 2>/dev/null", wh) != 0) {
        st_warehouse_close(w);
        cr_skip_test("this file system has no immutable attribute (chattr +i)");
    }
    st_status s = st_warehouse_commit(w, &err);
    (void)!fx_sh("chattr -i %s/bronze", wh);
    st_warehouse_close(w);
    cr_assert_eq(s, ST_ERR_IO, "the publish must fail: %d", s);
    cr_assert_not_null(strstr(err.msg, "previous warehouse restored"), "%s", err.msg);
    char *after = fx_read_file(m, &na);
    cr_assert(na == nb && !memcmp(after, before, na), "the old manifest must stand");
    cr_assert_eq(fx_capture(out, sizeof out, "ls %s/bronze/t.parts", wh), 0);
    cr_assert_str_eq(out, "part-00000-a1.strata\npart-00001-a1.strata\npart-00002-a1.strata\n", "%s", out);
    cr_assert_eq(fx_capture(out, sizeof out, "%s export %s | wc -l", fx_bin(), m), 0);
    cr_assert_eq(atoi(out), 18, "header + the old 17 rows: %s", out);
    cr_assert_eq(fx_sh("%s inspect --verify %s >/dev/null", fx_bin(), wh), 0);
    free(before);
    free(after);
}
