/*
 * main.c: the `strata` command-line entry point. Dispatches to the
 * subcommands declared in strata/cli.h; nothing else lives here.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "strata/cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", st_cmd_run, "run the pipeline: ingest -> validate -> stage -> intermediate -> ml -> marts -> report"},
    {"gen", st_cmd_gen, "generate the demo transaction source (SQLite: sales_qty, foc_qty)"},
    {"inspect", st_cmd_inspect, "show a layer file (schema, encodings, sizes, stats) or a warehouse's tables; --verify"},
    {"export", st_cmd_export, "write a layer file to stdout as CSV or JSON lines"},
    {"kmeans", st_cmd_kmeans, "cluster numeric columns of any layer file"},
    {"lineage", st_cmd_lineage, "print the table lineage graph of a warehouse (text tree, DOT or JSON)"},
    {"docs", st_cmd_docs, "print the warehouse catalog: tables, columns, types, rows, expectations"},
    {"report", st_cmd_report, "write the HTML (or Markdown) dashboard of a warehouse"},
    {"score", st_cmd_score, "personas for new transactions with a warehouse's saved model (no refit)"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "strata: raw sales tables to customer personas through a medallion warehouse\n"
            "\n"
            "usage: strata <command> [flags]      strata <command> --help      strata --version\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "exit codes: 0 ok, 1 internal error, 2 usage, 3 bad source (file/table/column),\n"
            "            4 quality check failed, 5 I/O, 6 corrupt layer file, 7 warehouse locked,\n"
            "            8 out of memory, 9 unsupported format version\n");
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("strata %s\n", ST_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "strata: unknown command '%s' (see strata --help)\n", argv[1]);
    return 2;
}

/* glibc's malloc, set for strata's threads, which allocate few, large
 * buffers per chunk and job:
 * - One arena for every thread. They gain nothing from arenas of their
 *   own, and each such arena kept what its thread had freed: a 10M+10M
 *   run under --memory-limit 16M peaked at 50-59 MB with two threads
 *   against 44-46 MB with one arena (and 40 MB with --threads 1), at the
 *   same speed (bench/README).
 * - Buffers up to 32 MiB from the heap, not from mmap, and freed memory
 *   trimmed only past 64 MiB. A chunk's 256-512 KiB column buffers and an
 *   encoder's 1 MiB scratch were mapped and unmapped per job: fresh pages
 *   to fault in, and with a second thread running, every munmap is a TLB
 *   shootdown (an IPI, costly in a VM). 500K gold step, 2 threads: page
 *   faults 8.2K -> 6.4K, step about 8% faster (bench/README).
 * - The heap grown 32 MiB at a time (address space: a page costs nothing
 *   until written). Grown by the default 128 KiB, the heap moved its end
 *   (brk) about a hundred times in a gold step, and each move locks the
 *   heap's mapping against the page faults of the other thread, which then
 *   slept: 3-9 voluntary context switches per pass job, 0-2 with 32 MiB
 *   (below the trim threshold, so a free does not shrink it back at once). */
static void malloc_settings(void)
{
#ifdef M_ARENA_MAX
    (void)mallopt(M_ARENA_MAX, 1);
#endif
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
#ifdef M_TOP_PAD
    (void)mallopt(M_TOP_PAD, 32 << 20);
#endif
}

/* The world (dist.h) spans the whole command: one rank in build/strata,
 * every rank of mpirun in build/strata-mpi. */
int main(int argc, char **argv)
{
    malloc_settings();
    st_dist_init(&argc, &argv);
    /* only `run` and `kmeans` are SPMD programs (every rank takes part in
     * their k-means fits); any other command of strata-mpi under mpirun
     * runs once, on rank 0, and every rank exits with its code */
    int rc = 0;
    if (st_dist_size() == 1 || (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "kmeans")))) {
        rc = dispatch(argc, argv);
    } else {
        int32_t code = 0;
        if (st_dist_rank() == 0) code = dispatch(argc, argv);
        st_dist_bcast(&code, sizeof code, 0);
        rc = code;
    }
    st_dist_finalize();
    return rc;
}
