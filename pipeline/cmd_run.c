/*
 * cmd_run.c: `strata run`: flags -> st_run_opts -> st_pipeline_run().
 * Under `mpirun ... strata-mpi run` every rank parses the same flags;
 * rank 0 runs the pipeline and the others serve its k-means restarts and
 * its distributed gold step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "parts_dist.h"
#include "strata/cli.h"
#include "strata/ml.h"
#include "strata/pipeline.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: strata run [flags]\n"
        "\n"
        "Runs the pipeline ingest -> validate -> stage -> intermediate -> ml -> marts -> report\n"
        "into the warehouse. Steps whose inputs and parameters are unchanged are skipped.\n"
        "\n"
        "sources:\n"
        "  --customers FILE        customer master SQLite file        (default data/chinook.db)\n"
        "  --transactions FILE[,FILE...]  transactions SQLite file, or shards of it with the same\n"
        "                          schema, read in this order          (default data/example.db)\n"
        "  --customers-table NAME  customer master table (default Customer, then customers)\n"
        "  --sales-table NAME      sales lines table                  (default sales_qty)\n"
        "  --foc-table NAME        free-of-charge lines table         (default foc_qty)\n"
        "running:\n"
        "  --warehouse DIR         where layer files go               (default warehouse)\n"
        "  --threads N             worker threads                     (default: online CPUs)\n"
        "  --only STEP             run just this step\n"
        "  --from STEP             run this step and those after it\n"
        "  --force                 rebuild even when nothing changed\n"
        "  --wait                  wait for another run's warehouse lock instead of failing\n"
        "  --suite FILE            data-quality suite                 (default: built-in default suite)\n"
        "  --no-report             skip the HTML/Markdown report\n"
        "  --quiet                 no progress or summary\n"
        "  --part-rows N           rowids per part of a transaction shard: a shard spanning more\n"
        "                          is read and staged as contiguous rowid ranges of N, in\n"
        "                          parallel across threads and ranks (default 16777216)\n"
        "  --memory-limit SIZE     gold step working set, e.g. 512M, 2G; beyond it customers are\n"
        "                          processed range by range through a spill file (default 1G)\n"
        "staging rules:\n"
        "  --year-min Y --year-max Y        accepted years            (default 1990..2100)\n"
        "  --qty-min N --qty-max N          accepted quantities       (default 0..1000000000)\n"
        "segmentation:\n"
        "  --k N|auto              clusters; auto picks by silhouette (default 3)\n"
        "  --k-range A..B          k range evaluated for selection    (default 2..7)\n"
        "  --n-init N              k-means restarts                   (default 10)\n"
        "  --max-iter N            Lloyd iterations per restart       (default 300)\n"
        "  --tol X                 relative tolerance                 (default 1e-4)\n"
        "  --seed N                random seed                        (default 42)\n"
        "  --features a,b,c        features to cluster on (default total_sold_quantity,foc_ratio,total_sold_transactions)\n"
        "  --log1p a,b             features to log1p before scaling   (default none)\n"
        "  --persona-map FILE      override persona names per cluster ('N = Name' lines)\n"
        "\n"
        "steps: ingest, validate, stage, intermediate, ml, marts, report\n"
        "exit codes: 0 ok, 2 usage, 3 bad source, 4 quality error, 5 I/O, 6 corrupt file,\n"
        "            7 warehouse locked, 8 out of memory, 9 newer format version, 1 internal error\n");
}

enum {
    F_FORCE, F_WAIT, F_QUIET, F_NO_REPORT, F_CUSTOMERS, F_TRANSACTIONS, F_CUSTOMERS_TABLE, F_SALES_TABLE,
    F_FOC_TABLE, F_WAREHOUSE, F_SUITE, F_ONLY, F_FROM, F_FEATURES, F_LOG1P, F_PERSONA_MAP, F_MEMORY_LIMIT,
    F_PART_ROWS, F_THREADS, F_YEAR_MIN, F_YEAR_MAX, F_QTY_MIN, F_QTY_MAX, F_K, F_K_RANGE, F_N_INIT, F_MAX_ITER, F_SEED, F_TOL,
    F_COUNT
};
static const st_argspec run_flags[F_COUNT] = {
    [F_FORCE] = {"--force", false},          [F_WAIT] = {"--wait", false},
    [F_QUIET] = {"--quiet", false},          [F_NO_REPORT] = {"--no-report", false},
    [F_CUSTOMERS] = {"--customers", true},   [F_TRANSACTIONS] = {"--transactions", true},
    [F_CUSTOMERS_TABLE] = {"--customers-table", true},
    [F_SALES_TABLE] = {"--sales-table", true}, [F_FOC_TABLE] = {"--foc-table", true},
    [F_WAREHOUSE] = {"--warehouse", true},   [F_SUITE] = {"--suite", true},
    [F_ONLY] = {"--only", true},             [F_FROM] = {"--from", true},
    [F_FEATURES] = {"--features", true},     [F_LOG1P] = {"--log1p", true},
    [F_PERSONA_MAP] = {"--persona-map", true}, [F_MEMORY_LIMIT] = {"--memory-limit", true},
    [F_PART_ROWS] = {"--part-rows", true},
    [F_THREADS] = {"--threads", true},       [F_YEAR_MIN] = {"--year-min", true},
    [F_YEAR_MAX] = {"--year-max", true},     [F_QTY_MIN] = {"--qty-min", true},
    [F_QTY_MAX] = {"--qty-max", true},       [F_K] = {"--k", true},
    [F_K_RANGE] = {"--k-range", true},       [F_N_INIT] = {"--n-init", true},
    [F_MAX_ITER] = {"--max-iter", true},     [F_SEED] = {"--seed", true},
    [F_TOL] = {"--tol", true},
};

#define QTY_LIMIT 4000000000000000000LL

/* Applies a flag with a numeric value to o; false after a usage error. */
static bool set_number(const st_args *a, int f, const char *v, st_run_opts *o)
{
    long long x = 0;
    switch (f) {
    case F_MEMORY_LIMIT: return st_args_size(a, v, (uint64_t)64 << 10, &o->memory_limit_bytes);
    case F_PART_ROWS:
        if (!st_args_int(a, v, 1000, (long long)1 << 62, &x)) return false;
        o->part_rows = (uint64_t)x;
        return true;
    case F_THREADS: if (!st_args_int(a, v, 1, 64, &x)) return false; o->threads = (int)x; return true;
    case F_YEAR_MIN: if (!st_args_int(a, v, 1, 9999, &x)) return false; o->year_min = x; return true;
    case F_YEAR_MAX: if (!st_args_int(a, v, 1, 9999, &x)) return false; o->year_max = x; return true;
    case F_QTY_MIN: if (!st_args_int(a, v, -QTY_LIMIT, QTY_LIMIT, &x)) return false; o->qty_min = x; return true;
    case F_QTY_MAX: if (!st_args_int(a, v, -QTY_LIMIT, QTY_LIMIT, &x)) return false; o->qty_max = x; return true;
    case F_K: {
        bool is_auto;
        if (!st_args_int_or(a, v, "auto", 1, 64, &x, &is_auto)) return false;
        o->k = is_auto ? 0 : (int)x;
        return true;
    }
    case F_K_RANGE: return st_args_range(a, v, 1, 64, &o->k_min, &o->k_max);
    case F_N_INIT: if (!st_args_int(a, v, 1, 1000, &x)) return false; o->n_init = (int)x; return true;
    case F_MAX_ITER: if (!st_args_int(a, v, 1, 100000, &x)) return false; o->max_iter = (int)x; return true;
    case F_SEED: if (!st_args_int(a, v, 0, 0x7fffffffffffffffLL, &x)) return false; o->seed = (uint64_t)x; return true;
    case F_TOL: return st_args_nonneg(a, v, &o->tol);
    default: return false;
    }
}

/* Parses argv into o: -1 to run, else the exit code (0 after --help). */
static int parse_run(int argc, char **argv, st_run_opts *o)
{
    st_args a;
    st_args_init(&a, "run", argc, argv, run_flags, F_COUNT, usage);
    const char *v;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END) {
        switch (f) {
        case ST_ARGS_HELP:
        case ST_ARGS_ERROR: return st_args_exit(f);
        case ST_ARGS_POSITIONAL: return st_args_error(&a, "unexpected argument '%s' (see strata run --help)", v);
        case F_FORCE: o->force = true; break;
        case F_WAIT: o->wait = true; break;
        case F_QUIET: o->quiet = true; break;
        case F_NO_REPORT: o->no_report = true; break;
        case F_CUSTOMERS: o->customers_path = v; break;
        case F_TRANSACTIONS: o->transactions_path = v; break;
        case F_CUSTOMERS_TABLE: o->customers_table = v; break;
        case F_SALES_TABLE: o->sales_table = v; break;
        case F_FOC_TABLE: o->foc_table = v; break;
        case F_WAREHOUSE: o->warehouse = v; break;
        case F_SUITE: o->suite_path = v; break;
        case F_ONLY: o->only = v; break;
        case F_FROM: o->from = v; break;
        case F_FEATURES: o->features = v; break;
        case F_LOG1P: o->log1p = v; break;
        case F_PERSONA_MAP: o->persona_map = v; break;
        default:
            if (!set_number(&a, f, v, o)) return ST_ARGS_USAGE;
        }
    }
    if (o->year_min > o->year_max || o->qty_min > o->qty_max)
        return st_args_error(&a, "empty range: --year-min/--year-max or --qty-min/--qty-max");
    return -1;
}

int st_cmd_run(int argc, char **argv)
{
    st_run_opts o;
    st_run_opts_default(&o);
    int rc = parse_run(argc, argv, &o);
    if (rc >= 0) return rc;
    st_error err = {0};
    st_status s;
    /* strata-mpi with more than one rank: rank 0 runs the pipeline, the
     * others serve its k-means fits until it sends the run's outcome
     * (ml/kmeans_dist.c); all ranks then exit with that code, rank 0
     * printing the message */
    st_kmeans_on_task(st_pipeline_task); /* gold by customer range, ingest and stage by part (gold_dist.c, parts_dist.c) */
    if (st_dist_rank() != 0) {
        s = st_kmeans_follow(&err);
    } else {
        st_kmeans_serve_begin();
        s = st_pipeline_run(&o, &err);
        st_kmeans_serve_end(s, &err);
        if (s != ST_OK) fprintf(stderr, "strata run: %s\n", err.msg[0] ? err.msg : st_status_name(s));
    }
    /* no rank exits (mpirun ends the others at the first non-zero exit)
     * before rank 0 has written its log and printed the outcome */
    st_dist_barrier();
    return s == ST_OK ? 0 : st_status_exit_code(s);
}
