/*
 * gen.c: `strata gen`, the deterministic demo transaction source
 * (strata/gen.h).
 *
 * Model. Every customer gets an archetype (a seeded shuffle of the ids
 * cut into fixed shares) and a size multiplier. A (customer, month) cell
 * has a sales weight w(c, m) and a free-of-charge weight w(c, m) * p(c, m),
 * both pure functions of (seed, customer, month) built from hashed
 * uniforms, so they can be recomputed instead of stored: memory is
 * O(customers + materials) whatever the row count. Each table's rows are
 * dealt to months in proportion to the month's total weight (largest
 * remainder, so the total is exact), then within a month each row picks
 * its customer by weight, a material (a customer's favourites or the
 * global Zipf(1) popularity over a seeded ranking) and a log-normal
 * quantity with the archetype's median and spread. Rows come out in
 * period order, as a real extract would.
 *
 * Determinism. Integers come from xoshiro256** seeded by splitmix64;
 * floating point uses only +, -, *, /, floor and ldexp, which IEEE 754
 * rounds the same everywhere, plus exp() computed here from those; FP
 * contraction into FMA is disabled (clang honours the pragma; gcc does not
 * contract in ISO C mode). Normal deviates are Irwin-Hall sums of twelve
 * uniforms. So `--seed 1` produces the same rows on every platform.
 *
 * Writing. One prepared INSERT per table with bound parameters inside one
 * transaction, journal_mode=OFF and synchronous=OFF on the output file
 * (it is fresh; the CLI writes a temporary file and renames it, so a crash
 * never leaves a half file under the final name).
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "strata/gen.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "strata/buf.h"
#include "strata/cli.h"
#include "strata/column.h"
#include "progress_internal.h"

/* ---- randomness ---- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* [0, 1) with 53 random bits. */
static inline double u01(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

/* Hash of (seed, tag, a, b): a pure function feeding the cell weights. */
static uint64_t hash4(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b)
{
    uint64_t x = seed ^ (tag * 0xD6E8FEB86659FD93ull);
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0x9FB21C651E98DF25ull);
    h = splitmix64(&x);
    x = h ^ (b * 0xC2B2AE3D27D4EB4Full);
    return splitmix64(&x);
}

static inline double hu(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b) { return u01(hash4(seed, tag, a, b)); }

/* Standard normal approximation: Irwin-Hall sum of twelve uniforms - 6
 * (bounded to +-6, plenty for quantities). */
static double normal(rng *r)
{
    double s = 0;
    for (int i = 0; i < 12; i++) s += u01(rng_next(r));
    return s - 6.0;
}

/* exp() from correctly rounded operations only: x = k ln2 + r with
 * |r| <= ln2/2, e^r by its degree-13 Taylor polynomial in Horner form
 * (truncation error < 3e-16 relative), then an exact ldexp. The
 * coefficients are literal doubles, so every platform computes the same
 * bits. */
static double det_exp(double x)
{
    static const double inv_fact[14] = {1.0,
                                        1.0,
                                        0.5,
                                        1.6666666666666666e-01,
                                        4.1666666666666664e-02,
                                        8.3333333333333332e-03,
                                        1.3888888888888889e-03,
                                        1.9841269841269841e-04,
                                        2.4801587301587302e-05,
                                        2.7557319223985893e-06,
                                        2.7557319223985888e-07,
                                        2.5052108385441720e-08,
                                        2.0876756987868100e-09,
                                        1.6059043836821613e-10};
    if (x > 700) x = 700;
    if (x < -700) x = -700;
    double k = floor(x * 1.4426950408889634 + 0.5);
    double r = (x - k * 0.693145751953125) - k * 1.4286068203094172e-06;
    double p = inv_fact[13];
    for (int i = 12; i >= 0; i--) p = p * r + inv_fact[i];
    return ldexp(p, (int)k);
}

/* ---- the model ---- */

typedef struct arch_params {
    double base;        /* relative sales weight of a customer-month */
    double qty_median;  /* sales line quantity */
    double qty_sigma;
    double foc_prop;    /* FOC lines per unit of sales weight (relative) */
    double foc_median;  /* FOC line quantity */
    double foc_sigma;
} arch_params;

static const arch_params arch[ST_ARCH_COUNT] = {
    [ST_ARCH_CHAMPION] = {10.0, 40.0, 0.6, 0.12, 2.0, 0.5},
    [ST_ARCH_PROMO] = {4.0, 14.0, 0.7, 0.80, 9.0, 0.6},
    [ST_ARCH_SMALL] = {0.6, 4.0, 0.8, 0.35, 1.0, 0.5},
    [ST_ARCH_DECLINING] = {6.0, 25.0, 0.6, 0.25, 4.0, 0.6},
    [ST_ARCH_GAPPY] = {2.5, 12.0, 0.7, 0.45, 3.0, 0.6},
};

/* Share of customers per archetype, in percent, in shuffle order. */
static const int arch_share[ST_ARCH_COUNT] = {15, 20, 30, 15, 20};

/* Mild seasonality by month of year (January first). */
static const double season[12] = {-0.30, -0.20, 0.00, 0.10, 0.10, 0.00, -0.10, -0.20, 0.10, 0.20, 0.30, 0.40};

enum { TAG_SCALE = 1, TAG_PROMO, TAG_SKIP, TAG_VAR, TAG_GAP, TAG_FAV, TAG_SHUFFLE, TAG_SALES, TAG_FOC };

const char *st_gen_archetype_name(int a)
{
    static const char *const names[ST_ARCH_COUNT] = {"champion", "promo", "small", "declining", "gappy"};
    return a >= 0 && a < ST_ARCH_COUNT ? names[a] : "?";
}

void st_gen_opts_default(st_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rows = 500000;
    o->customers = 100;
    o->months = 60;
    o->start_year = 2020;
    o->materials = 150;
    o->seed = 42;
}

st_status st_gen_check(const st_gen_opts *o, st_error *err)
{
    if (o->rows > 10000000000ull)
        return st_error_set(err, ST_ERR_INVALID, "--rows %llu is above 10000000000", (unsigned long long)o->rows);
    if (o->customers < 1 || o->customers > 10000000)
        return st_error_set(err, ST_ERR_INVALID, "--customers must be in 1..10000000");
    if (o->months < 1 || o->months > 1200) return st_error_set(err, ST_ERR_INVALID, "--months must be in 1..1200");
    if ((uint64_t)o->customers * (uint64_t)o->months > 200000000ull)
        return st_error_set(err, ST_ERR_INVALID, "--customers x --months must be at most 200000000");
    if (o->start_year < 1 || o->start_year + (o->months - 1) / 12 > 9999)
        return st_error_set(err, ST_ERR_INVALID, "--start-year must be >= 1 and the last year <= 9999");
    if (o->materials < 1 || o->materials > 1000000)
        return st_error_set(err, ST_ERR_INVALID, "--materials must be in 1..1000000");
    return ST_OK;
}

st_status st_gen_archetypes(const st_gen_opts *o, uint8_t *out, st_error *err)
{
    ST_TRY(st_gen_check(o, err));
    size_t n = (size_t)o->customers;
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) return st_error_set(err, ST_ERR_NOMEM, "out of memory for %zu customers", n);
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    rng r;
    rng_seed(&r, hash4(o->seed, TAG_SHUFFLE, 0, 0));
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(&r) % i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    /* shuffled positions [0, cut[0]) are champions, then promo, ...; cuts
     * by share, at least one per archetype while customers last */
    size_t pos = 0;
    for (int a = 0; a < ST_ARCH_COUNT; a++) {
        size_t take = n * (size_t)arch_share[a] / 100;
        if (take == 0) take = 1; /* champions always exist: every month has weight */
        if (a == ST_ARCH_COUNT - 1 || pos + take > n) take = n - pos;
        if (n >= ST_ARCH_COUNT && a < ST_ARCH_COUNT - 1 && n - pos - take < (size_t)(ST_ARCH_COUNT - 1 - a))
            take = n - pos - (size_t)(ST_ARCH_COUNT - 1 - a);
        for (size_t k = 0; k < take; k++) out[perm[pos + k]] = (uint8_t)a;
        pos += take;
    }
    free(perm);
    return ST_OK;
}

typedef struct model {
    const st_gen_opts *o;
    uint8_t *arch_of;     /* customers */
    double *scale;        /* customers: size multiplier */
    double *zipf_cum;     /* materials: cumulative 1/rank */
    uint32_t *rank_to_mat;/* materials: popularity rank -> material index */
    char *codes;          /* materials x code_width */
    size_t code_width;
} model;

static bool is_promo(const model *md, size_t c, int m) { return hu(md->o->seed, TAG_PROMO, c, (uint64_t)m) < 0.25; }

static double progress_t(const model *md, int m) { return md->o->months > 1 ? (double)m / (md->o->months - 1) : 0.0; }

/* Sales weight of customer index c (id c + 1) in month index m. */
static double sales_weight(const model *md, size_t c, int m)
{
    int a = md->arch_of[c];
    uint64_t seed = md->o->seed;
    double w = arch[a].base * md->scale[c] * (1.0 + season[m % 12] * 0.8);
    switch (a) {
    case ST_ARCH_CHAMPION: break;
    case ST_ARCH_PROMO:
        if (is_promo(md, c, m)) w *= 1.8;
        break;
    case ST_ARCH_SMALL:
        if (hu(seed, TAG_SKIP, c, (uint64_t)m) < 0.45) return 0;
        w *= 0.3 + 1.4 * hu(seed, TAG_VAR, c, (uint64_t)m);
        break;
    case ST_ARCH_DECLINING: w *= 1.0 - 0.9 * progress_t(md, m); break;
    case ST_ARCH_GAPPY:
        if (hu(seed, TAG_GAP, c, (uint64_t)(m / 3)) < 0.4) return 0;
        break;
    }
    return w;
}

static double foc_weight(const model *md, size_t c, int m)
{
    double w = sales_weight(md, c, m);
    if (w == 0) return 0;
    int a = md->arch_of[c];
    double p = arch[a].foc_prop;
    if (a == ST_ARCH_PROMO && is_promo(md, c, m)) p *= 3.5;
    if (a == ST_ARCH_DECLINING) p += 1.5 * progress_t(md, m);
    return w * p;
}

/* "MAT" + v in decimal, zero-padded to at least 4 digits, NUL-terminated
 * (v <= 10^6, so at most 11 bytes). */
static void format_code(char *out, size_t v)
{
    char d[24];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < 4) d[n++] = '0';
    memcpy(out, "MAT", 3);
    size_t l = 3;
    while (n) out[l++] = d[--n];
    out[l] = '\0';
}

static void model_free(model *md)
{
    free(md->arch_of);
    free(md->scale);
    free(md->zipf_cum);
    free(md->rank_to_mat);
    free(md->codes);
}

static st_status model_init(model *md, const st_gen_opts *o, st_error *err)
{
    memset(md, 0, sizeof *md);
    md->o = o;
    size_t n = (size_t)o->customers, nm = (size_t)o->materials;
    md->code_width = 12; /* "MAT" + up to 7 digits + NUL, padded */
    size_t code_bytes;
    if (!st_size_mul(nm, md->code_width, &code_bytes)) return st_error_set(err, ST_ERR_NOMEM, "too many materials");
    md->arch_of = malloc(n);
    md->scale = malloc(n * sizeof *md->scale);
    md->zipf_cum = malloc(nm * sizeof *md->zipf_cum);
    md->rank_to_mat = malloc(nm * sizeof *md->rank_to_mat);
    md->codes = malloc(code_bytes);
    if (!md->arch_of || !md->scale || !md->zipf_cum || !md->rank_to_mat || !md->codes) {
        model_free(md);
        return st_error_set(err, ST_ERR_NOMEM, "out of memory");
    }
    st_status s = st_gen_archetypes(o, md->arch_of, err);
    if (s != ST_OK) {
        model_free(md);
        return s;
    }
    for (size_t c = 0; c < n; c++) {
        rng r;
        rng_seed(&r, hash4(o->seed, TAG_SCALE, c, 0));
        md->scale[c] = det_exp(0.35 * normal(&r));
    }
    double acc = 0;
    for (size_t k = 0; k < nm; k++) {
        acc += 1.0 / (double)(k + 1);
        md->zipf_cum[k] = acc;
        md->rank_to_mat[k] = (uint32_t)k;
        format_code(md->codes + k * md->code_width, k + 1);
    }
    rng r;
    rng_seed(&r, hash4(o->seed, TAG_SHUFFLE, 1, 0));
    for (size_t i = nm; i > 1; i--) {
        size_t j = (size_t)(rng_next(&r) % i);
        uint32_t t = md->rank_to_mat[i - 1];
        md->rank_to_mat[i - 1] = md->rank_to_mat[j];
        md->rank_to_mat[j] = t;
    }
    return ST_OK;
}

/* First index i in cum[0..n) with cum[i] > x (n - 1 if none). */
static size_t search_cum(const double *cum, size_t n, double x)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t zipf_material(const model *md, double u)
{
    size_t nm = (size_t)md->o->materials;
    size_t rank = search_cum(md->zipf_cum, nm, u * md->zipf_cum[nm - 1]);
    return md->rank_to_mat[rank];
}

static int64_t lognormal_qty(rng *r, double median, double sigma)
{
    double q = median * det_exp(sigma * normal(r));
    if (q > 1e9) q = 1e9;
    int64_t v = (int64_t)floor(q + 0.5);
    return v < 1 ? 1 : v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Rows of each month: proportional to the month's total weight, largest
 * remainder so the sum is exactly `rows`. quota has o->months entries. */
static void month_quotas(const model *md, bool foc, uint64_t *quota, double *frac)
{
    const st_gen_opts *o = md->o;
    double total = 0;
    for (int m = 0; m < o->months; m++) {
        double wm = 0;
        for (size_t c = 0; c < (size_t)o->customers; c++) wm += foc ? foc_weight(md, c, m) : sales_weight(md, c, m);
        frac[m] = wm;
        total += wm;
    }
    uint64_t given = 0;
    for (int m = 0; m < o->months; m++) {
        double exact = total > 0 ? (double)o->rows * (frac[m] / total) : 0;
        double fl = floor(exact);
        quota[m] = (uint64_t)fl;
        if (quota[m] > o->rows) quota[m] = o->rows;
        frac[m] = exact - fl;
        given += quota[m];
    }
    /* hand out what rounding left, largest fraction first (earlier month on ties) */
    while (given < o->rows) {
        int best = 0;
        for (int m = 1; m < o->months; m++)
            if (frac[m] > frac[best]) best = m;
        quota[best]++;
        frac[best] = -1.0;
        given++;
        bool all_used = true;
        for (int m = 0; m < o->months; m++)
            if (frac[m] >= 0) all_used = false;
        if (all_used)
            for (int m = 0; m < o->months; m++) frac[m] = 0;
    }
    while (given > o->rows) { /* cannot happen with floor, kept for safety */
        for (int m = 0; m < o->months && given > o->rows; m++)
            if (quota[m]) {
                quota[m]--;
                given--;
            }
    }
}

static st_status write_table(sqlite3 *db, const model *md, bool foc, const char *path, st_error *err)
{
    const st_gen_opts *o = md->o;
    const char *table = foc ? "foc_qty" : "sales_qty";
    st_status s = ST_OK;
    st_meter meter;
    st_meter_start(&meter, table, o->rows, o->progress);
    sqlite3_stmt *ins = NULL;
    size_t n = (size_t)o->customers;
    uint64_t *quota = malloc((size_t)o->months * sizeof *quota);
    double *frac = malloc((size_t)o->months * sizeof *frac);
    double *cum = malloc(n * sizeof *cum);
    if (!quota || !frac || !cum) {
        s = st_error_set(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    month_quotas(md, foc, quota, frac);

    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO %s(customer_id, year, month, material_code, %s) VALUES (?1, ?2, ?3, ?4, ?5)",
             table, foc ? "quantity_foc" : "quantity");
    if (sqlite3_prepare_v2(db, sql, -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        s = st_error_set(err, ST_ERR_SQLITE, "writing '%s': %s", path, sqlite3_errmsg(db));
        goto done;
    }
    rng r;
    rng_seed(&r, hash4(o->seed, foc ? TAG_FOC : TAG_SALES, 0, 0));
    uint64_t written = 0;
    for (int m = 0; m < o->months; m++) {
        if (quota[m] == 0) continue;
        double acc = 0;
        for (size_t c = 0; c < n; c++) {
            acc += foc ? foc_weight(md, c, m) : sales_weight(md, c, m);
            cum[c] = acc;
        }
        if (acc <= 0) continue; /* cannot happen: quota > 0 needs weight */
        sqlite3_bind_int64(ins, 2, o->start_year + m / 12);
        sqlite3_bind_int64(ins, 3, m % 12 + 1);
        for (uint64_t k = 0; k < quota[m]; k++) {
            size_t c = search_cum(cum, n, u01(rng_next(&r)) * acc);
            int a = md->arch_of[c];
            uint64_t pick = rng_next(&r);
            size_t mat;
            if ((pick & 0xFF) < 154) /* ~60%: one of the customer's 8 favourites */
                mat = zipf_material(md, hu(o->seed, TAG_FAV, c, (pick >> 8) & 7));
            else
                mat = zipf_material(md, u01(rng_next(&r)));
            int64_t q = foc ? lognormal_qty(&r, arch[a].foc_median, arch[a].foc_sigma)
                            : lognormal_qty(&r, arch[a].qty_median, arch[a].qty_sigma);
            const char *code = md->codes + mat * md->code_width;
            sqlite3_bind_int64(ins, 1, (int64_t)c + 1);
            sqlite3_bind_text(ins, 4, code, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 5, q);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                s = st_error_set(err, ST_ERR_SQLITE, "writing %s into '%s': %s", table, path,
                                 sqlite3_errmsg(db));
                goto done;
            }
            sqlite3_reset(ins);
            written++;
            if ((written & 0xFFFF) == 0) st_meter_set(&meter, written);
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        s = st_error_set(err, ST_ERR_SQLITE, "writing '%s': %s", path, sqlite3_errmsg(db));
        goto done;
    }
done:
    st_meter_end(&meter);
    sqlite3_finalize(ins);
    free(quota);
    free(frac);
    free(cum);
    return s;
}

st_status st_gen_write(const st_gen_opts *o, const char *path, st_error *err)
{
    st_status s = ST_OK;
    sqlite3 *db = NULL;
    model md;
    ST_TRY(st_gen_check(o, err));
    ST_TRY(model_init(&md, o, err));
    if (unlink(path) != 0 && errno != ENOENT) {
        s = st_error_set(err, ST_ERR_IO, "cannot replace '%s': %s", path, strerror(errno));
        goto done;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        s = st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;"
                     "PRAGMA cache_size=-65536;"
                     "CREATE TABLE sales_qty(customer_id INTEGER, year INTEGER, month INTEGER,"
                     " material_code TEXT, quantity INTEGER);"
                     "CREATE TABLE foc_qty(customer_id INTEGER, year INTEGER, month INTEGER,"
                     " material_code TEXT, quantity_foc INTEGER);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        s = st_error_set(err, ST_ERR_SQLITE, "creating tables in '%s': %s", path, sqlite3_errmsg(db));
        goto done;
    }
    if ((s = write_table(db, &md, false, path, err)) != ST_OK) goto done;
    if ((s = write_table(db, &md, true, path, err)) != ST_OK) goto done;
done:
    if (db && sqlite3_close(db) != SQLITE_OK && s == ST_OK)
        s = st_error_set(err, ST_ERR_SQLITE, "closing '%s' failed", path);
    model_free(&md);
    return s;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata gen [--out FILE] [--rows N] [--customers N] [--months N]\n"
            "                  [--start-year Y] [--materials N] [--seed N] [--force]\n"
            "\n"
            "Writes the demo transaction source: one SQLite file with tables\n"
            "sales_qty(customer_id, year, month, material_code, quantity) and\n"
            "foc_qty(customer_id, year, month, material_code, quantity_foc).\n"
            "Customers follow archetypes (champion, promo, small, declining, gappy);\n"
            "the same flags always give the same rows, on any platform.\n"
            "\n"
            "  --out FILE        output file (default data/example.db); written to a\n"
            "                    temporary file then renamed\n"
            "  --rows N          rows per table (default 500000)\n"
            "  --customers N     customer ids 1..N (default 100)\n"
            "  --months N        consecutive months (default 60)\n"
            "  --start-year Y    first month is January of Y (default 2020)\n"
            "  --materials N     material codes MAT0001.. (default 150)\n"
            "  --seed N          random seed (default 42)\n"
            "  --force           overwrite an existing --out (default: refuse)\n"
            "  -h, --help        this help\n");
}

enum { G_OUT, G_ROWS, G_CUSTOMERS, G_MONTHS, G_START_YEAR, G_MATERIALS, G_SEED, G_FORCE, G_COUNT };
static const st_argspec gen_flags[G_COUNT] = {
    [G_OUT] = {"--out", true},         [G_ROWS] = {"--rows", true},           [G_CUSTOMERS] = {"--customers", true},
    [G_MONTHS] = {"--months", true},   [G_START_YEAR] = {"--start-year", true}, [G_MATERIALS] = {"--materials", true},
    [G_SEED] = {"--seed", true},       [G_FORCE] = {"--force", false},
};

/* Applies one numeric flag; false after a usage error. */
static bool gen_number(const st_args *a, int f, const char *val, st_gen_opts *o)
{
    uint64_t v = 0;
    if (!st_args_u64(a, val, &v)) return false;
    static const uint64_t max[G_COUNT] = {[G_ROWS] = UINT64_MAX, [G_CUSTOMERS] = INT64_MAX, [G_MONTHS] = 100000,
                                          [G_START_YEAR] = 100000, [G_MATERIALS] = 100000000, [G_SEED] = UINT64_MAX};
    if (v > max[f]) {
        st_args_error(a, "%s expects an integer in 0..%llu, got '%s'", a->flag, (unsigned long long)max[f], val);
        return false;
    }
    switch (f) {
    case G_ROWS: o->rows = v; break;
    case G_CUSTOMERS: o->customers = (int64_t)v; break;
    case G_MONTHS: o->months = (int)v; break;
    case G_START_YEAR: o->start_year = (int)v; break;
    case G_MATERIALS: o->materials = (int)v; break;
    default: o->seed = v; break;
    }
    return true;
}

/* Parses gen's flags: -1 to go on, else the exit code (0 after --help). */
static int parse_gen(int argc, char **argv, st_gen_opts *o, const char **out, bool *force)
{
    st_args a;
    st_args_init(&a, "gen", argc, argv, gen_flags, G_COUNT, usage);
    const char *v;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL) return st_args_error(&a, "unexpected argument '%s' (see strata gen --help)", v);
        if (f == G_FORCE) *force = true;
        else if (f == G_OUT && !*v) return st_args_error(&a, "--out needs a file name");
        else if (f == G_OUT) *out = v;
        else if (!gen_number(&a, f, v, o)) return ST_ARGS_USAGE;
    }
    st_error err = {0};
    if (st_gen_check(o, &err) != ST_OK) return st_args_error(&a, "%s", err.msg);
    return -1;
}

/* The directory `out` goes into must exist and be writable; the message
 * names `out` itself, not the temporary file beside it. */
static st_status check_out_dir(const char *out, st_error *err)
{
    const char *slash = strrchr(out, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == out) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - out) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    else return st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(ENAMETOOLONG));
    struct stat sb;
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
        return st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(EISDIR));
    if (stat(dir, &sb) != 0) return st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(ENOTDIR));
    if (access(dir, W_OK) != 0) return st_error_set(err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(errno));
    return ST_OK;
}

int st_cmd_gen(int argc, char **argv)
{
    st_gen_opts o;
    st_gen_opts_default(&o);
    const char *out = "data/example.db";
    bool force = false;
    int rc = parse_gen(argc, argv, &o, &out, &force);
    if (rc >= 0) return rc;
    st_error err = {0};
    struct stat sb;
    if (stat(out, &sb) == 0 && !force) {
        fprintf(stderr, "strata gen: '%s' already exists; pass --force to overwrite it\n", out);
        return 2;
    }
    st_status cs = check_out_dir(out, &err);
    if (cs != ST_OK) {
        fprintf(stderr, "strata gen: %s\n", err.msg);
        return st_status_exit_code(cs);
    }
    o.progress = st_meter_tty();
    size_t tl = strlen(out) + 32;
    char *tmp = malloc(tl);
    if (!tmp) {
        fprintf(stderr, "strata gen: out of memory\n");
        return st_status_exit_code(ST_ERR_NOMEM);
    }
    snprintf(tmp, tl, "%s.tmp-%ld", out, (long)getpid());
    double t0 = now_s();
    st_status s = st_gen_write(&o, tmp, &err);
    if (s == ST_OK && rename(tmp, out) != 0)
        s = st_error_set(&err, ST_ERR_IO, "cannot create '%s': %s", out, strerror(errno));
    if (s != ST_OK) {
        unlink(tmp);
        free(tmp);
        fprintf(stderr, "strata gen: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    free(tmp);
    double el = now_s() - t0;
    char rows[32];
    st_fmt_thousands((int64_t)o.rows, rows);
    int last = o.months - 1;
    printf("wrote %s: sales_qty and foc_qty with %s rows each, customers 1..%lld, %d months (%04d-01..%04d-%02d), "
           "%d materials, seed %llu in %.2f s (%.0f rows/s)\n",
           out, rows, (long long)o.customers, o.months, o.start_year, o.start_year + last / 12, last % 12 + 1,
           o.materials, (unsigned long long)o.seed, el, el > 0 ? 2.0 * (double)o.rows / el : 0.0);
    return 0;
}
