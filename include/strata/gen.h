/*
 * gen.h: the demo transaction source behind `strata gen`.
 *
 * st_gen_write() writes one SQLite file with two tables,
 *
 *   sales_qty(customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity INTEGER)
 *   foc_qty  (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity_foc INTEGER)
 *
 * each with exactly `rows` rows in period order. Customers 1..customers
 * follow behavioural archetypes (st_gen_archetype) assigned from the seed,
 * so that clustering customer-months on sold quantity, FOC ratio and
 * transaction count finds real structure. The output depends only on the
 * options: the generator uses its own PRNG (xoshiro256** seeded by
 * splitmix64) and only correctly rounded floating-point operations (+, -,
 * *, /, sqrt, floor, ldexp; its own exp), so the same options give the
 * same rows on every platform.
 */
#ifndef STRATA_GEN_H
#define STRATA_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_gen_opts {
    uint64_t rows;       /* rows per table, default 500000, at most 10^10 */
    int64_t customers;   /* customer ids 1..customers, default 100, at most 10^7 */
    int months;          /* consecutive months, default 60, 1..1200 */
    int start_year;      /* first month is January of this year, default 2020 */
    int materials;       /* codes MAT0001.., default 150, 1..10^6 */
    uint64_t seed;       /* default 42 */
    bool progress;       /* progress lines on stderr (the CLI sets it for a terminal) */
} st_gen_opts;

typedef enum st_gen_archetype {
    ST_ARCH_CHAMPION = 0,   /* high volume, steady, low FOC share */
    ST_ARCH_PROMO = 1,      /* promotion-driven: bursts with a high FOC share */
    ST_ARCH_SMALL = 2,      /* small, irregular orders, skips months at random */
    ST_ARCH_DECLINING = 3,  /* volume falls over time while FOC rises */
    ST_ARCH_GAPPY = 4,      /* medium volume with multi-month gaps of no activity */
    ST_ARCH_COUNT = 5
} st_gen_archetype;

/* "champion", "promo", "small", "declining", "gappy". */
const char *st_gen_archetype_name(int a);

void st_gen_opts_default(st_gen_opts *o);

/* Checks the option ranges; ST_ERR_INVALID naming the bad option. */
st_status st_gen_check(const st_gen_opts *o, st_error *err) ST_MUST_USE;

/* Archetype of every customer: out[c - 1] for customer id c, out holding
 * o->customers entries (caller-owned). */
st_status st_gen_archetypes(const st_gen_opts *o, uint8_t *out, st_error *err) ST_MUST_USE;

/* Writes the source to `path` (created or truncated; no temp-file dance:
 * that is the CLI's job). The SQLite file is written with journal_mode=OFF
 * and synchronous=OFF, so a crash leaves a damaged file. */
st_status st_gen_write(const st_gen_opts *o, const char *path, st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_GEN_H */
