/*
 * pipeline/cmd_score.c: `strata score`, personas for the customer-months of
 * new transactions with a warehouse's saved model, without refitting.
 *
 * The model is what the ml step stored in platinum/ml_centroids: the
 * centroids in scaled units (the `f__scaled` columns), the persona of
 * each cluster, and in the footer metadata the features, and the scaler's
 * parameters (scaler_mean, scaler_std, scaler_log1p: docs/TABLES.md). The
 * new source goes through the pipeline's own ingest, stage and gold steps
 * (the same functions `strata run` calls, with their checks, and with the
 * stage rules the model's warehouse was built with, read from the params
 * of its silver sales table) in
 * a scratch warehouse inside the warehouse directory (`_score.XXXXXX`,
 * removed at the end), so the features are computed exactly as the model's
 * were. Each customer-month is then scaled with the saved parameters
 * (st_scaler_transform_row, the fit's own arithmetic) and labelled with
 * st_kmeans_assign (the fit's own final-assignment kernel), chunk by chunk
 * (64K rows), so memory stays flat in rows. Scoring the months the model
 * was fitted on therefore gives back their personas exactly
 * (tests/test_score.c).
 *
 * Output: one layer file (layer "score", table "personas"): the gold key
 * columns, the features in original units, cluster and persona; with
 * --format csv it is also printed to standard output through
 * `strata export`. Nothing in the warehouse itself changes.
 */
#include "pipeline_internal.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/cli.h"
#include "strata/ml.h"
#include "strata/pool.h"

typedef struct score_model {
    size_t d;
    int k;
    char feat[ST_ML_MAX_D][128];
    double cent[ST_ML_MAX_K * ST_ML_MAX_D];   /* k x d, scaled units, by cluster index */
    char persona[ST_ML_MAX_K][64];
    st_scaler sc;
} score_model;

static const char *meta_value(const st_file_meta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_kv; i++)
        if (meta->kv[i].key && !strcmp(meta->kv[i].key, key)) return meta->kv[i].value;
    return NULL;
}

/* Splits "a,b,c" into sm->feat. */
static st_status split_features(score_model *sm, const char *list, const char *what, st_error *err)
{
    sm->d = 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= sizeof sm->feat[0] || sm->d == ST_ML_MAX_D)
            return st_error_set(err, ST_ERR_CORRUPT, "%s: bad features list '%.200s'", what, list);
        memcpy(sm->feat[sm->d], p, n);
        sm->feat[sm->d++][n] = '\0';
        p = e ? e + 1 : p + n;
    }
    if (sm->d == 0) return st_error_set(err, ST_ERR_CORRUPT, "%s: no features in its metadata", what);
    return ST_OK;
}

/* Reads centroids, personas, features and scaler from <wh>/platinum/ml_centroids.strata. */
static st_status load_model(const char *wh, score_model *sm, st_error *err)
{
    char path[ST_PATH_MAX];
    snprintf(path, sizeof path, "%.4000s/platinum/ml_centroids.strata", wh);
    st_reader *r = NULL;
    st_column cols[2 + ST_ML_MAX_D];
    size_t n_cols = 0;
    memset(sm, 0, sizeof *sm);
    ST_TRY(st_reader_open(&r, path, err));
    const st_file_meta *meta = st_reader_meta(r);
    const char *feat = meta_value(meta, "features"), *mean = meta_value(meta, "scaler_mean"),
               *sd = meta_value(meta, "scaler_std"), *lg = meta_value(meta, "scaler_log1p");
    st_status s = ST_OK;
    if (!feat || !mean || !sd || !lg) {
        s = st_error_set(err, ST_ERR_INVALID,
                         "%s has no scaler parameters (written before strata score existed): rebuild it with "
                         "`strata run --only ml --force`",
                         path);
        goto done;
    }
    if ((s = split_features(sm, feat, path, err)) != ST_OK) goto done;
    if ((s = st_scaler_params_parse(&sm->sc, sm->d, mean, sd, lg, err)) != ST_OK) goto done;
    const char *names[2 + ST_ML_MAX_D];
    char scaled[ST_ML_MAX_D][160];
    names[0] = "cluster";
    names[1] = "persona";
    for (size_t j = 0; j < sm->d; j++) {
        snprintf(scaled[j], sizeof scaled[j], "%s__scaled", sm->feat[j]);
        names[2 + j] = scaled[j];
    }
    n_cols = 2 + sm->d;
    if ((s = st_table_read_named(r, "platinum.ml_centroids", names, n_cols, cols, err)) != ST_OK) {
        n_cols = 0;
        goto done;
    }
    size_t k = cols[0].n_rows;
    if (k < 1 || k > ST_ML_MAX_K || cols[0].type != ST_TYPE_I32 || cols[1].type != ST_TYPE_STR) {
        s = st_error_set(err, ST_ERR_CORRUPT, "%s: %zu clusters or unexpected column types", path, k);
        goto done;
    }
    bool seen[ST_ML_MAX_K] = {false};
    for (size_t i = 0; i < k; i++) {
        int32_t c = st_column_i32(&cols[0])[i];
        size_t len;
        const char *p = st_column_str(&cols[1], i, &len);
        if (c < 0 || (size_t)c >= k || seen[c] || len >= sizeof sm->persona[0]) {
            s = st_error_set(err, ST_ERR_CORRUPT, "%s: row %zu: cluster %d out of 0..%zu or repeated", path, i,
                             (int)c, k - 1);
            goto done;
        }
        seen[c] = true;
        memcpy(sm->persona[c], p, len);
        sm->persona[c][len] = '\0';
        for (size_t j = 0; j < sm->d; j++) {
            if (cols[2 + j].type != ST_TYPE_F64) {
                s = st_error_set(err, ST_ERR_CORRUPT, "%s: column %s is not float64", path, names[2 + j]);
                goto done;
            }
            sm->cent[(size_t)c * sm->d + j] = st_column_f64(&cols[2 + j])[i];
        }
    }
    sm->k = (int)k;
done:
    for (size_t j = 0; j < n_cols; j++) st_column_free(&cols[j]);
    st_reader_close(r);
    return s;
}

/* The stage rules (year and quantity ranges) the model's warehouse was
 * built with, from the params of its silver sales table, into o: scoring
 * with other rules would score other rows than the fit saw. */
static st_status read_stage_rules(const char *wh, st_run_opts *o, st_error *err)
{
    char path[ST_PATH_MAX];
    snprintf(path, sizeof path, "%.4000s/silver/stg_sales_transactions.strata", wh);
    st_reader *r = NULL;
    ST_TRY(st_reader_open(&r, path, err));
    const char *p = st_reader_meta(r)->params;
    long long y0, y1, q0, q1;
    int used = 0;
    st_status s = ST_OK;
    if (sscanf(p, "year=%lld..%lld;quantity=%lld..%lld%n", &y0, &y1, &q0, &q1, &used) != 4 || p[used] != '\0' ||
        y0 > y1 || q0 > q1)
        s = st_error_set(err, ST_ERR_CORRUPT, "%s: stage params '%s' are not year=A..B;quantity=C..D", path, p);
    else {
        o->year_min = y0;
        o->year_max = y1;
        o->qty_min = q0;
        o->qty_max = q1;
    }
    st_reader_close(r);
    return s;
}

/* The new source through ingest -> stage -> gold in the scratch
 * warehouse o->warehouse, published there. */
static st_status build_gold(const st_run_opts *o, st_error *err)
{
    st_run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.o = o;
    ctx.threads = st_run_threads(o->threads);
    st_step_result step;
    memset(&step, 0, sizeof step);
    ctx.cur = &step;
    ST_TRY(st_warehouse_open(&ctx.wh, o->warehouse, false, err));
    ctx.pool = st_pool_new(ctx.threads);
    st_status s = st_step_ingest(&ctx, err);
    if (s == ST_OK) s = st_step_stage(&ctx, 0, err);
    if (s == ST_OK) s = st_step_intermediate(&ctx, 0, err);
    if (s == ST_OK) s = st_warehouse_commit(ctx.wh, err);
    st_warehouse_close(ctx.wh);
    st_pool_free(ctx.pool);
    return s;
}

enum { N_KEYS = 4 };
static const char *const key_names[N_KEYS] = {"customer_id", "year", "month", "period_key"};

/* Scores one chunk: blk holds its N_KEYS + d blocks; pushes cluster and
 * persona of each row into cl / pe. x, xs: scratch for rows x d. */
static st_status score_chunk(const score_model *sm, const st_column *blk, size_t rows, double *x, float *xs,
                             int32_t *lab, st_column *cl, st_column *pe, st_error *err)
{
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < sm->d; j++) {
            const st_column *c = &blk[N_KEYS + j];
            double v = !st_column_valid(c, i)          ? NAN
                       : c->type == ST_TYPE_F64 ? st_column_f64(c)[i]
                       : c->type == ST_TYPE_I64 ? (double)st_column_i64(c)[i]
                       : c->type == ST_TYPE_I32 ? (double)st_column_i32(c)[i]
                                                : NAN;
            if (!isfinite(v) || (sm->sc.log1p[j] && v <= -1))
                return st_error_set(err, ST_ERR_INVALID, "gold.int_customer_analytics: %s of a row is not usable (%g)",
                                    sm->feat[j], v);
            x[j] = v;
        }
        st_scaler_transform_row(&sm->sc, x, xs + i * sm->d);
    }
    ST_TRY(st_kmeans_assign(xs, rows, sm->d, sm->cent, sm->k, lab, err));
    st_column_reset(cl);
    st_column_reset(pe);
    for (size_t i = 0; i < rows; i++) {
        ST_TRY(st_column_push_i32(cl, lab[i]));
        ST_TRY(st_column_push_str(pe, sm->persona[lab[i]], strlen(sm->persona[lab[i]])));
    }
    return ST_OK;
}

/* Reads the scratch gold table and writes the scored layer file. */
static st_status write_scores(const score_model *sm, const char *scratch, const char *tx_path, const char *out_path,
                              st_error *err)
{
    char path[ST_PATH_MAX];
    snprintf(path, sizeof path, "%.4000s/gold/int_customer_analytics.strata", scratch);
    st_reader *r = NULL;
    st_writer *w = NULL;
    size_t nb = N_KEYS + sm->d, idx[N_KEYS + ST_ML_MAX_D];
    st_column blk[N_KEYS + ST_ML_MAX_D + 2];
    st_field fields[N_KEYS + ST_ML_MAX_D + 2];
    double *x = NULL;
    float *xs = NULL;
    int32_t *lab = NULL;
    for (size_t j = 0; j < nb + 2; j++) st_column_init(&blk[j], j == nb ? ST_TYPE_I32 : j == nb + 1 ? ST_TYPE_STR : ST_TYPE_I64);
    st_status s = st_reader_open(&r, path, err);
    if (s != ST_OK) goto done;
    for (size_t j = 0; j < nb && s == ST_OK; j++) {
        const char *nm = j < N_KEYS ? key_names[j] : sm->feat[j - N_KEYS];
        for (size_t q = 0; q < j && s == ST_OK; q++)
            if (!strcmp(fields[q].name, nm))
                s = st_error_set(err, ST_ERR_INVALID, "score: feature %s is also a key column", nm);
        if (s == ST_OK) s = st_table_col(r, "gold.int_customer_analytics", nm, &idx[j], err);
        if (s != ST_OK) goto done;
        fields[j] = *st_reader_field(r, idx[j]);
        fields[j].name = nm;
        st_column_free(&blk[j]);
        st_column_init(&blk[j], fields[j].type);
    }
    if (s != ST_OK) goto done;
    fields[nb] = (st_field){"cluster", ST_TYPE_I32, false, "cluster of the saved model nearest to the scaled features"};
    fields[nb + 1] = (st_field){"persona", ST_TYPE_STR, false, "persona of that cluster"};
    char input[ST_PATH_MAX + 16];
    snprintf(input, sizeof input, "source.%.4000s", tx_path);
    const char *inputs[2] = {input, "platinum.ml_centroids"};
    st_file_meta meta = {"score", "personas", inputs, 2, "", 0, NULL, 0};
    st_write_opts wo = {0};
    if ((s = st_writer_open(&w, out_path, fields, nb + 2, &meta, &wo, err)) != ST_OK) goto done;
    size_t cap = ST_CHUNK_ROWS;
    x = malloc(sm->d * sizeof *x);
    xs = malloc(cap * sm->d * sizeof *xs);
    lab = malloc(cap * sizeof *lab);
    if (!x || !xs || !lab) {
        s = st_error_set(err, ST_ERR_NOMEM, "score: out of memory");
        goto done;
    }
    for (size_t c = 0; c < st_reader_n_chunks(r) && s == ST_OK; c++) {
        size_t rows = st_reader_chunk_rows(r, c);
        if (rows > cap) {
            s = st_error_set(err, ST_ERR_CORRUPT, "%s: chunk %zu has %zu rows", path, c, rows);
            break;
        }
        for (size_t j = 0; j < nb && s == ST_OK; j++) s = st_reader_read_block(r, c, idx[j], &blk[j], err);
        if (s == ST_OK) s = score_chunk(sm, blk, rows, x, xs, lab, &blk[nb], &blk[nb + 1], err);
        if (s == ST_OK) s = st_writer_write(w, blk, 0, rows, err);
    }
    if (s == ST_OK) {
        s = st_writer_close(w, err);
        w = NULL;
    }
done:
    st_writer_abort(w);
    st_reader_close(r);
    for (size_t j = 0; j < nb + 2; j++) st_column_free(&blk[j]);
    free(x);
    free(xs);
    free(lab);
    return s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata score --transactions NEW.db [--warehouse DIR] [--out FILE] [--format strata|csv]\n"
            "\n"
            "Assigns personas to the customer-months of new transactions with the model a run saved in\n"
            "DIR/platinum/ml_centroids (its scaling and centroids; nothing is refitted). The new source goes\n"
            "through the pipeline's ingest, stage and gold steps in a scratch area inside DIR, which is removed\n"
            "afterwards; the warehouse itself is not changed. See docs/SCORING.md for when to refit instead.\n"
            "\n"
            "flags:\n"
            "  --warehouse DIR       warehouse with the model (default: warehouse)\n"
            "  --transactions FILE   SQLite source with the new transactions (required)\n"
            "  --customers FILE      customer master the ingest step reads (default: data/chinook.db)\n"
            "  --customers-table T   (default: Customer)   --sales-table T (sales_qty)   --foc-table T (foc_qty)\n"
            "  --out FILE            the scored layer file (default: DIR/score/personas.strata)\n"
            "  --format strata|csv   csv also prints the scored rows to standard output as CSV\n"
            "  --threads N           worker threads (default: all cores)\n"
            "  -h, --help            this help\n");
}

/* Parses the flags into o / *wh / *out / *csv (strata/cli.h's parser);
 * returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, st_run_opts *o, const char **wh, const char **out, bool *csv)
{
    static const st_argspec spec[] = {{"--warehouse", true},       {"--transactions", true}, {"--customers", true},
                                      {"--customers-table", true}, {"--sales-table", true},  {"--foc-table", true},
                                      {"--out", true},             {"--format", true},       {"--threads", true}};
    st_args a;
    st_args_init(&a, "score", argc, argv, spec, 9, usage);
    const char *val;
    int f, which;
    long long n;
    while ((f = st_args_next(&a, &val)) != ST_ARGS_END) {
        if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);
        if (f == ST_ARGS_POSITIONAL) return st_args_error(&a, "unexpected argument '%s' (see strata score --help)", val);
        switch (f) {
        case 0: *wh = val; break;
        case 1: o->transactions_path = val; break;
        case 2: o->customers_path = val; break;
        case 3: o->customers_table = val; break;
        case 4: o->sales_table = val; break;
        case 5: o->foc_table = val; break;
        case 6: *out = val; break;
        case 7:
            if (!st_args_choice(&a, val, "strata|csv", &which)) return ST_ARGS_USAGE;
            *csv = which == 1;
            break;
        default:
            if (!st_args_int(&a, val, 1, 64, &n)) return ST_ARGS_USAGE;
            o->threads = (int)n;
            break;
        }
    }
    if (!o->transactions_path) return st_args_error(&a, "--transactions FILE is required");
    return -1;
}

int st_cmd_score(int argc, char **argv)
{
    st_run_opts o;
    st_run_opts_default(&o);
    o.transactions_path = NULL;
    o.quiet = true;
    const char *wh = "warehouse", *out = NULL;
    bool csv = false;
    int rc = parse_args(argc, argv, &o, &wh, &out, &csv);
    if (rc >= 0) return rc;
    st_error err;
    st_error_clear(&err);
    score_model sm;
    char scratch[ST_PATH_MAX], out_buf[ST_PATH_MAX];
    bool made = false;
    st_status s = st_warehouse_check_pending(wh, &err); /* the model of one build, never half a publish */
    if (s == ST_OK) s = load_model(wh, &sm, &err);
    if (s == ST_OK) s = read_stage_rules(wh, &o, &err);
    if (s == ST_OK && (size_t)snprintf(scratch, sizeof scratch, "%s/_score.XXXXXX", wh) >= sizeof scratch)
        s = st_error_set(&err, ST_ERR_INVALID, "warehouse path too long: %s", wh);
    if (s == ST_OK && !(made = mkdtemp(scratch) != NULL))
        s = st_error_set(&err, ST_ERR_IO, "cannot create a scratch directory in %s", wh);
    if (s == ST_OK) {
        o.warehouse = scratch;
        s = build_gold(&o, &err);
    }
    if (s == ST_OK && !out) {
        snprintf(out_buf, sizeof out_buf, "%.4000s/score", wh);
        s = st_mkdirs(out_buf, &err);
        snprintf(out_buf, sizeof out_buf, "%.4000s/score/personas.strata", wh);
        out = out_buf;
    }
    if (s == ST_OK) s = write_scores(&sm, scratch, o.transactions_path, out, &err);
    if (made) nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (s != ST_OK) {
        fprintf(stderr, "strata score: %s\n", err.msg);
        return st_status_exit_code(s);
    }
    if (csv) {
        char *ex[] = {"export", (char *)out, "--format", "csv", NULL};
        return st_cmd_export(4, ex);
    }
    return 0;
}
