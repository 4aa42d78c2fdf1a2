/*
 * test_marts.c: the platinum marts step over inputs larger than one chunk.
 *
 * The step streams its inputs chunk by chunk and flushes its outputs every
 * ST_CHUNK_ROWS rows, so the interesting cases sit on chunk boundaries: a
 * customer whose fct rows straddle two input chunks, a grid row that is the
 * first of an output chunk (its previous persona lives in the chunk just
 * written), master and fct ids interleaving across chunks of both inputs.
 * The test runs a small pipeline for a warehouse, replaces its
 * silver.stg_customers and platinum.fct_transactions with synthetic tables
 * of a few chunks each, reruns the marts step alone and compares every
 * output row, and the terminal persona table, with a naive whole-table
 * computation done here. Unsorted fct input must fail naming the row.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixtures.h"
#include "strata/buf.h"
#include "strata/file.h"

static char dir[256];

static void setup(void) { fx_tmpdir(dir, sizeof dir, "st_marts_"); }
static void teardown(void) { fx_rmtree(dir); }

TestSuite(marts, .init = setup, .fini = teardown, .timeout = 120);

/* Runs strata with args, stdout and stderr to files in dir; exit code. */
static int strata(const char *args)
{
    return fx_sh("%s %s 2>%s/stderr.txt >%s/stdout.txt", fx_bin(), args, dir, dir);
}

/* A file of dir, which must be there. */
static char *slurp(const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return fx_read_file(p, NULL);
}

/* A tiny source and a full run: a warehouse whose marts inputs the test
 * then replaces. */
static void base_warehouse(void)
{
    char p[400];
    sqlite3 *db;
    snprintf(p, sizeof p, "%s/customers.db", dir);
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE customers (CustomerId INTEGER NOT NULL, FirstName TEXT, LastName TEXT, Email TEXT);"
                 "INSERT INTO customers VALUES (1, 'A', 'B', 'a@b.c'), (2, 'C', 'D', 'c@d.e');");
    sqlite3_close(db);
    snprintf(p, sizeof p, "%s/tx.db", dir);
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    fx_exec_sql(db, "CREATE TABLE sales_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity INTEGER);"
                 "CREATE TABLE foc_qty (customer_id INTEGER, year INTEGER, month INTEGER, material_code TEXT, quantity_foc INTEGER);");
    fx_exec_sql(db, "BEGIN");
    for (int c = 1; c <= 6; c++)
        for (int m = 1; m <= 4; m++) {
            char sql[200];
            snprintf(sql, sizeof sql, "INSERT INTO sales_qty VALUES (%d, 2022, %d, 'M%d', %d);", c, m, c % 3, c * m);
            fx_exec_sql(db, sql);
        }
    fx_exec_sql(db, "COMMIT");
    sqlite3_close(db);
    char args[1200];
    snprintf(args, sizeof args,
             "run --customers %s/customers.db --transactions %s/tx.db --warehouse %s/wh --quiet --no-report --k 2", dir,
             dir, dir);
    cr_assert_eq(strata(args), 0, "base run failed: %s", slurp("stderr.txt"));
}

static uint64_t rng = 777;
static uint64_t rnd(void)
{
    rng += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void write_table(const char *layer, const char *table, const st_field *fields, size_t n_fields,
                        const st_column *cols)
{
    char p[400];
    snprintf(p, sizeof p, "%s/wh/%s/%s.strata", dir, layer, table);
    st_file_meta meta = {.layer = layer, .table = table, .params = "", .fingerprint = 42};
    st_write_opts wo = {.no_fsync = true};
    st_writer *w = NULL;
    st_error err;
    cr_assert_eq(st_writer_open(&w, p, fields, n_fields, &meta, &wo, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_write(w, cols, 0, cols[0].n_rows, &err), ST_OK, "%s", err.msg);
    cr_assert_eq(st_writer_close(w, &err), ST_OK, "%s", err.msg);
}

static void read_cols(const char *layer, const char *table, const char *const *names, size_t n, st_column *cols)
{
    char p[400];
    snprintf(p, sizeof p, "%s/wh/%s/%s.strata", dir, layer, table);
    st_reader *r = NULL;
    st_error err;
    cr_assert_eq(st_reader_open(&r, p, &err), ST_OK, "%s", err.msg);
    size_t which[16];
    for (size_t j = 0; j < n; j++) {
        int i = st_reader_find(r, names[j]);
        cr_assert_geq(i, 0, "%s.%s has no column %s", layer, table, names[j]);
        which[j] = (size_t)i;
        st_column_init(&cols[j], st_reader_field(r, which[j])->type);
    }
    cr_assert_eq(st_reader_read_all(r, which, n, cols, &err), ST_OK, "%s", err.msg);
    st_reader_close(r);
}

static void free_cols(st_column *cols, size_t n)
{
    for (size_t j = 0; j < n; j++) st_column_free(&cols[j]);
}

static int str_eq(const st_column *c, size_t i, const char *s)
{
    size_t len;
    const char *v = st_column_str(c, i, &len);
    return len == strlen(s) && !memcmp(v, s, len);
}

/* ---- the synthetic inputs ---- */

#define N_MASTER 70000 /* master ids 0, 3, 6, ...: two chunks */
#define N_CUST 36000   /* fct customers, ~2.5 active periods each: two chunks of fct, three of the grid */
#define N_PERIODS 5 /* not a divisor of ST_CHUNK_ROWS: output chunks start inside a customer */
static const int32_t periods[N_PERIODS] = {202310, 202311, 202312, 202401, 202402};
#define N_NAMED 4
static const char *const named[N_NAMED] = {"Potentials", "Champions", "Zeta", "Loyalists"};

/* One fct row as the test made it. */
typedef struct fct_row {
    int64_t cust;
    int p;               /* index into periods */
    int64_t sold, foc, sold_tx, foc_tx, uniq;
    double ratio, med_sold, med_foc;
    int med_sold_null, med_foc_null;
    int persona;         /* index into named */
} fct_row;

static fct_row *fct;
static size_t n_fct;

static const st_field master_fields[3] = {
    {"customer_id", ST_TYPE_I64, false, NULL},
    {"first_name", ST_TYPE_STR, true, NULL},
    {"flags", ST_TYPE_STR, false, NULL},
};

static void make_master(void)
{
    st_column c[3];
    for (int j = 0; j < 3; j++) st_column_init(&c[j], master_fields[j].type);
    for (int64_t i = 0; i < N_MASTER; i++) {
        char name[32];
        snprintf(name, sizeof name, "name%lld", (long long)i);
        cr_assert_eq(st_column_push_i64(&c[0], 3 * i), ST_OK);
        if (i % 7 == 0) cr_assert_eq(st_column_push_null(&c[1]), ST_OK);
        else cr_assert_eq(st_column_push_str(&c[1], name, strlen(name)), ST_OK);
        cr_assert_eq(st_column_push_str(&c[2], i % 5 ? "" : "x", i % 5 ? 0 : 1), ST_OK);
    }
    write_table("silver", "stg_customers", master_fields, 3, c);
    free_cols(c, 3);
}

static const st_field fct_fields[14] = {
    {"customer_id", ST_TYPE_I64, false, NULL},          {"year", ST_TYPE_I32, false, NULL},
    {"month", ST_TYPE_I32, false, NULL},                {"period_key", ST_TYPE_I32, false, NULL},
    {"total_sold_quantity", ST_TYPE_I64, false, NULL},  {"total_foc_quantity", ST_TYPE_I64, false, NULL},
    {"foc_ratio", ST_TYPE_F64, false, NULL},            {"total_sold_transactions", ST_TYPE_I64, false, NULL},
    {"total_foc_transactions", ST_TYPE_I64, false, NULL}, {"median_sold_order_size", ST_TYPE_F64, true, NULL},
    {"median_foc_order_size", ST_TYPE_F64, true, NULL}, {"unique_materials", ST_TYPE_I64, false, NULL},
    {"cluster", ST_TYPE_I32, true, NULL},               {"persona", ST_TYPE_STR, true, NULL},
};

static void write_fct(void)
{
    st_column c[14];
    for (int j = 0; j < 14; j++) st_column_init(&c[j], fct_fields[j].type);
    for (size_t i = 0; i < n_fct; i++) {
        const fct_row *f = &fct[i];
        int32_t pk = periods[f->p];
        cr_assert_eq(st_column_push_i64(&c[0], f->cust), ST_OK);
        cr_assert_eq(st_column_push_i32(&c[1], pk / 100), ST_OK);
        cr_assert_eq(st_column_push_i32(&c[2], pk % 100), ST_OK);
        cr_assert_eq(st_column_push_i32(&c[3], pk), ST_OK);
        cr_assert_eq(st_column_push_i64(&c[4], f->sold), ST_OK);
        cr_assert_eq(st_column_push_i64(&c[5], f->foc), ST_OK);
        cr_assert_eq(st_column_push_f64(&c[6], f->ratio), ST_OK);
        cr_assert_eq(st_column_push_i64(&c[7], f->sold_tx), ST_OK);
        cr_assert_eq(st_column_push_i64(&c[8], f->foc_tx), ST_OK);
        if (f->med_sold_null) cr_assert_eq(st_column_push_null(&c[9]), ST_OK);
        else cr_assert_eq(st_column_push_f64(&c[9], f->med_sold), ST_OK);
        if (f->med_foc_null) cr_assert_eq(st_column_push_null(&c[10]), ST_OK);
        else cr_assert_eq(st_column_push_f64(&c[10], f->med_foc), ST_OK);
        cr_assert_eq(st_column_push_i64(&c[11], f->uniq), ST_OK);
        cr_assert_eq(st_column_push_i32(&c[12], f->persona), ST_OK);
        cr_assert_eq(st_column_push_str(&c[13], named[f->persona], strlen(named[f->persona])), ST_OK);
    }
    write_table("platinum", "fct_transactions", fct_fields, 14, c);
    free_cols(c, 14);
}

/* Customers with random gaps (some in the master, some orphans, some past
 * its last id), each active in a random non-empty set of the periods. */
static void make_fct(void)
{
    fct = calloc((size_t)N_CUST * N_PERIODS, sizeof *fct);
    n_fct = 0;
    int64_t id = 1;
    for (int k = 0; k < N_CUST; k++) {
        id += 1 + (int64_t)(rnd() % 11);
        unsigned mask = 1 + (unsigned)(rnd() % 31);
        for (int p = 0; p < N_PERIODS; p++) {
            if (!(mask >> p & 1)) continue;
            fct_row *f = &fct[n_fct++];
            f->cust = id;
            f->p = p;
            f->sold = (int64_t)(rnd() % 100);
            f->foc = (int64_t)(rnd() % 10);
            f->ratio = f->sold + f->foc ? (double)f->foc / (double)(f->sold + f->foc) : 0.0;
            f->sold_tx = 1 + (int64_t)(rnd() % 5);
            f->foc_tx = (int64_t)(rnd() % 3);
            f->med_sold_null = rnd() % 9 == 0;
            f->med_foc_null = rnd() % 4 == 0;
            f->med_sold = (double)(rnd() % 40) / 2.0;
            f->med_foc = (double)(rnd() % 20) / 2.0;
            f->uniq = 1 + (int64_t)(rnd() % 7);
            f->persona = (int)(rnd() % N_NAMED);
        }
    }
    write_fct();
}

static int run_marts(void)
{
    char args[1200];
    snprintf(args, sizeof args,
             "run --customers %s/customers.db --transactions %s/tx.db --warehouse %s/wh --only marts --force "
             "--no-report",
             dir, dir, dir);
    return strata(args);
}

/* ---- the naive reference ---- */

/* Persona of grid row (customer k, period p): index into named, or -1
 * for Not Active; fct_at[k * N_PERIODS + p] the fct row or -1. */
static long *fct_at;
static int64_t *cust_ids;
static size_t n_cust;

static void index_fct(void)
{
    cust_ids = malloc(N_CUST * sizeof *cust_ids);
    fct_at = malloc((size_t)N_CUST * N_PERIODS * sizeof *fct_at);
    n_cust = 0;
    for (size_t i = 0; i < n_fct; i++) {
        if (n_cust == 0 || cust_ids[n_cust - 1] != fct[i].cust) {
            cust_ids[n_cust] = fct[i].cust;
            for (int p = 0; p < N_PERIODS; p++) fct_at[n_cust * N_PERIODS + (size_t)p] = -1;
            n_cust++;
        }
        fct_at[(n_cust - 1) * N_PERIODS + (size_t)fct[i].p] = (long)i;
    }
}

static const char *persona_name(size_t k, int p)
{
    long i = fct_at[k * N_PERIODS + (size_t)p];
    return i < 0 ? "Not Active" : named[fct[i].persona];
}

static void check_dim(void)
{
    const char *names[4] = {"customer_id", "first_name", "flags", "is_known"};
    st_column c[4];
    read_cols("platinum", "dim_customers", names, 4, c);
    size_t row = 0, k = 0;
    int64_t m = 0; /* next master index */
    while (m < N_MASTER || k < n_cust) {
        int64_t id;
        int known;
        if (k >= n_cust || (m < N_MASTER && 3 * m <= cust_ids[k])) {
            id = 3 * m;
            known = 1;
            if (k < n_cust && cust_ids[k] == id) k++;
            m++;
        } else {
            id = cust_ids[k++];
            known = 0;
        }
        cr_assert_lt(row, c[0].n_rows, "dim_customers is short");
        cr_assert_eq(st_column_i64(&c[0])[row], id, "dim row %zu id", row);
        cr_assert_eq(st_column_bool(&c[3])[row], known, "dim row %zu is_known", row);
        if (known) {
            char name[32];
            snprintf(name, sizeof name, "name%lld", (long long)(id / 3));
            if ((id / 3) % 7 == 0) cr_assert(!st_column_valid(&c[1], row), "dim row %zu NULL name", row);
            else cr_assert(st_column_valid(&c[1], row) && str_eq(&c[1], row, name), "dim row %zu name", row);
            cr_assert(str_eq(&c[2], row, (id / 3) % 5 ? "" : "x"), "dim row %zu flags", row);
        } else {
            cr_assert(!st_column_valid(&c[1], row), "dim row %zu placeholder name", row);
            cr_assert(str_eq(&c[2], row, ""), "dim row %zu placeholder flags", row);
        }
        row++;
    }
    cr_assert_eq(row, c[0].n_rows, "dim_customers is long");
    cr_assert_gt(row, 65536u, "the fixture should span chunks");
    free_cols(c, 4);
}

static void check_grid(void)
{
    const char *names[15] = {"customer_id", "year", "month", "period_key", "total_sold_quantity",
                             "total_foc_quantity", "foc_ratio", "total_sold_transactions", "total_foc_transactions",
                             "median_sold_order_size", "median_foc_order_size", "unique_materials", "is_active",
                             "cluster", "persona"};
    st_column g[15];
    read_cols("platinum", "marts_customer_summary", names, 15, g);
    cr_assert_eq(g[0].n_rows, n_cust * N_PERIODS);
    cr_assert_gt(g[0].n_rows, 2 * 65536u);
    for (size_t k = 0; k < n_cust; k++)
        for (int p = 0; p < N_PERIODS; p++) {
            size_t row = k * N_PERIODS + (size_t)p;
            long i = fct_at[row];
            const fct_row *f = i >= 0 ? &fct[i] : NULL;
            cr_assert_eq(st_column_i64(&g[0])[row], cust_ids[k], "grid row %zu customer", row);
            cr_assert_eq(st_column_i32(&g[1])[row], periods[p] / 100, "grid row %zu year", row);
            cr_assert_eq(st_column_i32(&g[2])[row], periods[p] % 100, "grid row %zu month", row);
            cr_assert_eq(st_column_i32(&g[3])[row], periods[p], "grid row %zu period", row);
            cr_assert_eq(st_column_i64(&g[4])[row], f ? f->sold : 0, "grid row %zu sold", row);
            cr_assert_eq(st_column_i64(&g[5])[row], f ? f->foc : 0, "grid row %zu foc", row);
            cr_assert(st_column_f64(&g[6])[row] == (f ? f->ratio : 0.0), "grid row %zu ratio", row);
            cr_assert_eq(st_column_i64(&g[7])[row], f ? f->sold_tx : 0, "grid row %zu sold lines", row);
            cr_assert_eq(st_column_i64(&g[8])[row], f ? f->foc_tx : 0, "grid row %zu foc lines", row);
            int ms = f && !f->med_sold_null, mf = f && !f->med_foc_null;
            cr_assert_eq(st_column_valid(&g[9], row), ms, "grid row %zu median sold validity", row);
            if (ms) cr_assert(st_column_f64(&g[9])[row] == f->med_sold, "grid row %zu median sold", row);
            cr_assert_eq(st_column_valid(&g[10], row), mf, "grid row %zu median foc validity", row);
            if (mf) cr_assert(st_column_f64(&g[10])[row] == f->med_foc, "grid row %zu median foc", row);
            cr_assert_eq(st_column_i64(&g[11])[row], f ? f->uniq : 0, "grid row %zu unique", row);
            cr_assert_eq(st_column_bool(&g[12])[row], f != NULL, "grid row %zu is_active", row);
            cr_assert_eq(st_column_valid(&g[13], row), f != NULL, "grid row %zu cluster validity", row);
            if (f) cr_assert_eq(st_column_i32(&g[13])[row], f->persona, "grid row %zu cluster", row);
            cr_assert(str_eq(&g[14], row, persona_name(k, p)), "grid row %zu persona", row);
        }
    free_cols(g, 15);
}

static void check_status_change_and_transitions(void)
{
    const char *names[5] = {"customer_id", "period_key", "previous_persona", "persona", "changed"};
    st_column c[5];
    read_cols("platinum", "marts_persona_status_change", names, 5, c);
    cr_assert_eq(c[0].n_rows, n_cust * N_PERIODS);
    /* transition names in strcmp order: Not Active sorts among the named */
    const char *order[N_NAMED + 1] = {"Champions", "Loyalists", "Not Active", "Potentials", "Zeta"};
    int64_t counts[N_NAMED + 1][N_NAMED + 1];
    memset(counts, 0, sizeof counts);
    for (size_t k = 0; k < n_cust; k++)
        for (int p = 0; p < N_PERIODS; p++) {
            size_t row = k * N_PERIODS + (size_t)p;
            const char *now = persona_name(k, p), *prev = p ? persona_name(k, p - 1) : NULL;
            cr_assert_eq(st_column_i64(&c[0])[row], cust_ids[k], "status row %zu customer", row);
            cr_assert_eq(st_column_i32(&c[1])[row], periods[p], "status row %zu period", row);
            if (!prev) cr_assert(!st_column_valid(&c[2], row), "status row %zu: first period, NULL previous", row);
            else cr_assert(st_column_valid(&c[2], row) && str_eq(&c[2], row, prev), "status row %zu previous", row);
            cr_assert(str_eq(&c[3], row, now), "status row %zu persona", row);
            cr_assert_eq(st_column_bool(&c[4])[row], prev && strcmp(prev, now) != 0, "status row %zu changed", row);
            if (prev) {
                int a = 0, b = 0;
                while (strcmp(order[a], prev)) a++;
                while (strcmp(order[b], now)) b++;
                counts[a][b]++;
            }
        }
    free_cols(c, 5);

    const char *tn[3] = {"from_persona", "to_persona", "n"};
    st_column t[3];
    read_cols("platinum", "marts_persona_transitions", tn, 3, t);
    cr_assert_eq(t[0].n_rows, (size_t)(N_NAMED + 1) * (N_NAMED + 1));
    for (int a = 0; a <= N_NAMED; a++)
        for (int b = 0; b <= N_NAMED; b++) {
            size_t row = (size_t)a * (N_NAMED + 1) + (size_t)b;
            cr_assert(str_eq(&t[0], row, order[a]) && str_eq(&t[1], row, order[b]), "transition row %zu names", row);
            cr_assert_eq(st_column_i64(&t[2])[row], counts[a][b], "transition %s -> %s", order[a], order[b]);
        }
    free_cols(t, 3);
}

/* The terminal table: one line per persona, named ones first, Not Active
 * last, each computed here from the reference grid. */
static void check_persona_table(void)
{
    char *out = slurp("stdout.txt");
    const char *shown[N_NAMED + 1] = {"Champions", "Loyalists", "Potentials", "Zeta", "Not Active"};
    int64_t total_vol = 0;
    for (size_t i = 0; i < n_fct; i++) total_vol += fct[i].sold;
    const char *at = out;
    for (int s = 0; s <= N_NAMED; s++) {
        int64_t periods_in = 0, customers = 0, vol = 0;
        double ratio = 0.0;
        for (size_t k = 0; k < n_cust; k++) {
            int seen = 0;
            for (int p = 0; p < N_PERIODS; p++) {
                if (strcmp(persona_name(k, p), shown[s])) continue;
                long i = fct_at[k * N_PERIODS + (size_t)p];
                periods_in++;
                seen = 1;
                if (i >= 0) {
                    vol += fct[i].sold;
                    ratio += fct[i].ratio;
                }
            }
            customers += seen;
        }
        char a[32], c[32], v[32], line[256];
        st_fmt_thousands(periods_in, a);
        st_fmt_thousands(customers, c);
        st_fmt_thousands(vol, v);
        snprintf(line, sizeof line, "%-24s %16s %10s %11.1f%% %16s %8.1f%% %15.3f\n", shown[s], a, c,
                 100.0 * (double)customers / (double)n_cust, v, 100.0 * (double)vol / (double)total_vol,
                 ratio / (double)periods_in);
        const char *hit = strstr(at, line);
        cr_assert_not_null(hit, "persona line missing or out of order:\n%swanted:\n%s", out, line);
        at = hit + strlen(line);
    }
    free(out);
}

Test(marts, outputs_over_many_chunks_equal_a_naive_reference)
{
    base_warehouse();
    make_master();
    make_fct();
    cr_assert_gt(n_fct, 65536u, "fct should span chunks");
    cr_assert_eq(run_marts(), 0, "marts failed: %s", slurp("stderr.txt"));
    index_fct();
    check_dim();
    check_grid();
    check_status_change_and_transitions();
    check_persona_table();
    free(fct);
    free(fct_at);
    free(cust_ids);
}

Test(marts, unsorted_fct_is_an_error_naming_the_row)
{
    base_warehouse();
    make_master();
    /* a customer id going down at row 3 */
    static fct_row rows[4] = {{.cust = 5, .p = 0}, {.cust = 5, .p = 2}, {.cust = 9, .p = 1}, {.cust = 7, .p = 0}};
    fct = rows;
    n_fct = 4;
    write_fct();
    cr_assert_neq(run_marts(), 0);
    char *e = slurp("stderr.txt");
    cr_expect_not_null(strstr(e, "not sorted by customer_id, period_key at row 3"), "%s", e);
    free(e);
    /* a period going back within a customer at row 2 */
    rows[2] = (fct_row){.cust = 5, .p = 1};
    rows[3] = (fct_row){.cust = 8, .p = 0};
    write_fct();
    cr_assert_neq(run_marts(), 0);
    e = slurp("stderr.txt");
    cr_expect_not_null(strstr(e, "not sorted by customer_id, period_key at row 2"), "%s", e);
    free(e);
}
