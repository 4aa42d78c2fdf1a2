/*
 * test_spill.c: the gold step's partitioned spill file (strata/spill.h).
 *
 *  - round trip: random lines of two tables scattered into partitions come
 *    back per partition in the order they were added, with their counts,
 *    for block sizes from 1 row to more than a partition holds;
 *  - a damaged byte anywhere in a block's header or payload, and a file
 *    cut short, are ST_ERR_CORRUPT, never wrong lines;
 *  - a full disk (/dev/full) is ST_ERR_IO naming the file; bad partition
 *    and table numbers are ST_ERR_INVALID.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/spill.h"

TestSuite(spill);

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int temp_fd(void)
{
    char path[] = "/tmp/st_spill_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

typedef struct lines {
    size_t n;
    uint32_t *part;
    unsigned *table;
    int64_t *cust, *qty;
    int32_t *per;
    uint32_t *mat;
} lines;

static lines make_lines(size_t n, uint32_t n_parts, uint64_t seed)
{
    lines l = {n, malloc(n * 4), malloc(n * sizeof(unsigned)), malloc(n * 8), malloc(n * 8), malloc(n * 4), malloc(n * 4)};
    for (size_t i = 0; i < n; i++) {
        l.part[i] = (uint32_t)(rng_next(&seed) % n_parts);
        l.table[i] = (unsigned)(rng_next(&seed) & 1);
        l.cust[i] = (int64_t)rng_next(&seed);
        l.qty[i] = (int64_t)rng_next(&seed);
        l.per[i] = (int32_t)rng_next(&seed);
        l.mat[i] = (uint32_t)rng_next(&seed);
    }
    return l;
}

static void free_lines(lines *l)
{
    free(l->part);
    free(l->table);
    free(l->cust);
    free(l->qty);
    free(l->per);
    free(l->mat);
}

/* Adds l to sp table by table in batches of up to 1000 lines. */
static void add_all(st_spill *sp, const lines *l)
{
    st_error e = {0};
    uint32_t *part = malloc(l->n * 4);
    int64_t *c = malloc(l->n * 8), *q = malloc(l->n * 8);
    int32_t *p = malloc(l->n * 4);
    uint32_t *m = malloc(l->n * 4);
    for (unsigned t = 0; t < 2; t++) {
        size_t k = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (l->table[i] != t) continue;
            part[k] = l->part[i];
            c[k] = l->cust[i];
            q[k] = l->qty[i];
            p[k] = l->per[i];
            m[k] = l->mat[i];
            k++;
        }
        for (size_t i = 0; i < k; i += 1000) {
            size_t b = k - i < 1000 ? k - i : 1000;
            cr_assert_eq(st_spill_add(sp, t, part + i, c + i, p + i, m + i, q + i, b, &e), ST_OK, "%s", e.msg);
        }
    }
    free(part);
    free(c);
    free(q);
    free(p);
    free(m);
}

/* Reads every partition back and compares with l, line by line, in add
 * order per (partition, table). */
static void check_all(st_spill *sp, const lines *l, uint32_t n_parts)
{
    st_error e = {0};
    for (uint32_t p = 0; p < n_parts; p++) {
        size_t next[2] = {0, 0}; /* next index into l for each table */
        uint64_t seen[2] = {0, 0};
        st_spill_cursor cur = {0};
        for (;;) {
            st_spill_block b;
            cr_assert_eq(st_spill_next(sp, p, &cur, &b, &e), ST_OK, "%s", e.msg);
            if (b.n_rows == 0) break;
            cr_assert_lt(b.table, 2);
            for (size_t r = 0; r < b.n_rows; r++) {
                size_t *i = &next[b.table];
                while (*i < l->n && (l->part[*i] != p || l->table[*i] != b.table)) (*i)++;
                cr_assert_lt(*i, l->n, "partition %u has more lines than were added", p);
                cr_assert_eq(b.customer_id[r], l->cust[*i]);
                cr_assert_eq(b.quantity[r], l->qty[*i]);
                cr_assert_eq(b.period_key[r], l->per[*i]);
                cr_assert_eq(b.material[r], l->mat[*i]);
                (*i)++;
                seen[b.table]++;
            }
        }
        for (unsigned t = 0; t < 2; t++) {
            uint64_t want = 0;
            for (size_t i = 0; i < l->n; i++) want += l->part[i] == p && l->table[i] == t;
            cr_assert_eq(seen[t], want, "partition %u table %u: %llu lines back, %llu added", p, t,
                         (unsigned long long)seen[t], (unsigned long long)want);
            cr_assert_eq(st_spill_rows(sp, p, t), want);
        }
    }
}

Test(spill, round_trip_in_add_order_for_every_block_size)
{
    const uint32_t block_sizes[] = {1, 7, 256, 4096, 65536};
    for (size_t bi = 0; bi < sizeof block_sizes / sizeof *block_sizes; bi++) {
        uint32_t n_parts = 1 + (uint32_t)bi * 3;
        lines l = make_lines(20000, n_parts, 100 + bi);
        st_spill *sp = NULL;
        st_error e = {0};
        cr_assert_eq(st_spill_create(&sp, temp_fd(), "test spill", n_parts, block_sizes[bi], &e), ST_OK, "%s", e.msg);
        add_all(sp, &l);
        cr_assert_eq(st_spill_flush(sp, &e), ST_OK, "%s", e.msg);
        cr_assert_eq(st_spill_bytes(sp) % 24, 0, "24-byte headers and 24-byte lines");
        cr_assert_geq(st_spill_bytes(sp), 24 * 20000);
        check_all(sp, &l, n_parts);
        st_spill_free(sp);
        free_lines(&l);
    }
}

Test(spill, every_damaged_byte_and_a_cut_file_are_corrupt)
{
    lines l = make_lines(300, 2, 7);
    st_error e = {0};
    st_spill *sp = NULL;
    int fd = temp_fd();
    int probe = dup(fd);
    cr_assert_eq(st_spill_create(&sp, fd, "test spill", 2, 64, &e), ST_OK);
    add_all(sp, &l);
    cr_assert_eq(st_spill_flush(sp, &e), ST_OK);
    uint64_t size = st_spill_bytes(sp);
    for (uint64_t off = 0; off < size; off += 13) {
        unsigned char b, x;
        cr_assert_eq(pread(probe, &b, 1, (off_t)off), 1);
        x = b ^ 0x5a;
        cr_assert_eq(pwrite(probe, &x, 1, (off_t)off), 1);
        bool caught = false;
        for (uint32_t p = 0; p < 2 && !caught; p++) {
            st_spill_cursor cur = {0};
            for (;;) {
                st_spill_block blk;
                st_status s = st_spill_next(sp, p, &cur, &blk, &e);
                if (s != ST_OK) {
                    cr_assert_eq(s, ST_ERR_CORRUPT, "byte %llu: %s", (unsigned long long)off, e.msg);
                    cr_assert_not_null(strstr(e.msg, "test spill"), "the message names the file: %s", e.msg);
                    caught = true;
                    break;
                }
                if (blk.n_rows == 0) break;
            }
        }
        cr_assert(caught, "flipping byte %llu went unnoticed", (unsigned long long)off);
        cr_assert_eq(pwrite(probe, &b, 1, (off_t)off), 1);
    }
    check_all(sp, &l, 2);
    cr_assert_eq(ftruncate(probe, (off_t)(size - 5)), 0);
    st_status worst = ST_OK;
    for (uint32_t p = 0; p < 2; p++) {
        st_spill_cursor cur = {0};
        for (;;) {
            st_spill_block blk;
            st_status s = st_spill_next(sp, p, &cur, &blk, &e);
            if (s != ST_OK) {
                worst = s;
                break;
            }
            if (blk.n_rows == 0) break;
        }
    }
    cr_assert_eq(worst, ST_ERR_CORRUPT, "a cut file is corrupt");
    close(probe);
    st_spill_free(sp);
    free_lines(&l);
}

Test(spill, full_disk_is_an_io_error_and_bad_arguments_are_invalid)
{
    st_error e = {0};
    st_spill *sp = NULL;
    int fd = open("/dev/full", O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(st_spill_create(&sp, fd, "spill on /dev/full", 1, 4, &e), ST_OK);
    int64_t c[8] = {0};
    int32_t p[8] = {0};
    uint32_t m[8] = {0}, part[8] = {0};
    st_status s = st_spill_add(sp, 0, part, c, p, m, c, 8, &e);
    cr_assert_eq(s, ST_ERR_IO, "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "/dev/full"), "%s", e.msg);
    cr_assert_eq(st_spill_flush(sp, &e), ST_ERR_INVALID, "nothing more after a failed write");
    st_spill_free(sp);

    cr_assert_eq(st_spill_create(&sp, temp_fd(), "x", 0, 4, &e), ST_ERR_INVALID);
    cr_assert_eq(st_spill_create(&sp, temp_fd(), "x", 1, ST_SPILL_MAX_BLOCK_ROWS + 1, &e), ST_ERR_INVALID);
    cr_assert_eq(st_spill_create(&sp, temp_fd(), "x", 2, 4, &e), ST_OK);
    part[0] = 2;
    cr_assert_eq(st_spill_add(sp, 0, part, c, p, m, c, 1, &e), ST_ERR_INVALID, "partition out of range");
    st_spill_free(sp);
    cr_assert_eq(st_spill_create(&sp, temp_fd(), "x", 2, 4, &e), ST_OK);
    part[0] = 0;
    cr_assert_eq(st_spill_add(sp, 2, part, c, p, m, c, 1, &e), ST_ERR_INVALID, "table out of range");
    st_spill_block b;
    st_spill_cursor cur = {0};
    cr_assert_eq(st_spill_next(sp, 0, &cur, &b, &e), ST_ERR_INVALID, "read before flush");
    st_spill_free(sp);
    st_spill_free(NULL);
}
