/*
 * cmd_run.c: `strata run`: flags -> st_run_opts -> st_pipeline_run().
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/cli.h"
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
        "  --transactions FILE     transactions SQLite file           (default data/example.db)\n"
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

/* SIZE = digits with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *flag, const char *v, uint64_t lo, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    unsigned shift = 0;
    if (end != v && *end) {
        if ((*end == 'K' || *end == 'k') && end[1] == '\0') shift = 10;
        else if ((*end == 'M' || *end == 'm') && end[1] == '\0') shift = 20;
        else if ((*end == 'G' || *end == 'g') && end[1] == '\0') shift = 30;
        else end = (char *)v; /* reject below */
    }
    /* at most 2^50 bytes (1 PiB), so the value fits with room to compute */
    if (errno || end == v || v[0] == '-' || x > ((uint64_t)1 << 50) >> shift || ((uint64_t)x << shift) < lo) {
        fprintf(stderr, "strata run: %s expects a size from %lluK to 1048576G: bytes, or a number with K, M or G, "
                "such as 512M; got '%s'\n", flag, (unsigned long long)(lo >> 10), v);
        return 0;
    }
    *out = (uint64_t)x << shift;
    return 1;
}

static int parse_i64(const char *flag, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "strata run: %s expects an integer in %lld..%lld, got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

int st_cmd_run(int argc, char **argv)
{
    st_run_opts o;
    st_run_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) { o.force = true; continue; }
        if (!strcmp(a, "--wait")) { o.wait = true; continue; }
        if (!strcmp(a, "--quiet")) { o.quiet = true; continue; }
        if (!strcmp(a, "--no-report")) { o.no_report = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "strata run: unknown flag or missing value: '%s' (see strata run --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        long long x;
        if (!strcmp(a, "--customers")) o.customers_path = v;
        else if (!strcmp(a, "--transactions")) o.transactions_path = v;
        else if (!strcmp(a, "--customers-table")) o.customers_table = v;
        else if (!strcmp(a, "--sales-table")) o.sales_table = v;
        else if (!strcmp(a, "--foc-table")) o.foc_table = v;
        else if (!strcmp(a, "--warehouse")) o.warehouse = v;
        else if (!strcmp(a, "--suite")) o.suite_path = v;
        else if (!strcmp(a, "--only")) o.only = v;
        else if (!strcmp(a, "--from")) o.from = v;
        else if (!strcmp(a, "--features")) o.features = v;
        else if (!strcmp(a, "--log1p")) o.log1p = v;
        else if (!strcmp(a, "--persona-map")) o.persona_map = v;
        else if (!strcmp(a, "--memory-limit")) {
            if (!parse_size(a, v, (uint64_t)64 << 10, &o.memory_limit_bytes)) return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_i64(a, v, 1, 64, &x)) return 2;
            o.threads = (int)x;
        } else if (!strcmp(a, "--year-min")) {
            if (!parse_i64(a, v, 1, 9999, &x)) return 2;
            o.year_min = x;
        } else if (!strcmp(a, "--year-max")) {
            if (!parse_i64(a, v, 1, 9999, &x)) return 2;
            o.year_max = x;
        } else if (!strcmp(a, "--qty-min")) {
            if (!parse_i64(a, v, -4000000000000000000LL, 4000000000000000000LL, &x)) return 2;
            o.qty_min = x;
        } else if (!strcmp(a, "--qty-max")) {
            if (!parse_i64(a, v, -4000000000000000000LL, 4000000000000000000LL, &x)) return 2;
            o.qty_max = x;
        } else if (!strcmp(a, "--k")) {
            if (!strcmp(v, "auto")) o.k = 0;
            else {
                if (!parse_i64(a, v, 1, 64, &x)) return 2;
                o.k = (int)x;
            }
        } else if (!strcmp(a, "--k-range")) {
            int lo, hi;
            char tail;
            if (sscanf(v, "%d..%d%c", &lo, &hi, &tail) != 2 || lo < 1 || hi > 64 || lo > hi) {
                fprintf(stderr, "strata run: --k-range expects A..B with 1 <= A <= B <= 64, got '%s'\n", v);
                return 2;
            }
            o.k_min = lo;
            o.k_max = hi;
        } else if (!strcmp(a, "--n-init")) {
            if (!parse_i64(a, v, 1, 1000, &x)) return 2;
            o.n_init = (int)x;
        } else if (!strcmp(a, "--max-iter")) {
            if (!parse_i64(a, v, 1, 100000, &x)) return 2;
            o.max_iter = (int)x;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_i64(a, v, 0, 0x7fffffffffffffffLL, &x)) return 2;
            o.seed = (uint64_t)x;
        } else if (!strcmp(a, "--tol")) {
            char *end;
            o.tol = strtod(v, &end);
            if (end == v || *end || !(o.tol >= 0)) {
                fprintf(stderr, "strata run: --tol expects a non-negative number, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "strata run: unknown flag '%s' (see strata run --help)\n", a);
            return 2;
        }
    }
    if (o.year_min > o.year_max || o.qty_min > o.qty_max) {
        fprintf(stderr, "strata run: empty range: --year-min/--year-max or --qty-min/--qty-max\n");
        return 2;
    }
    st_error err = {0};
    st_status s = st_pipeline_run(&o, &err);
    if (s != ST_OK) {
        fprintf(stderr, "strata run: %s\n", err.msg[0] ? err.msg : st_status_name(s));
        return st_status_exit_code(s);
    }
    return 0;
}
