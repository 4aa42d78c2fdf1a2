/*
 * cli.h: the `strata` subcommands and the one argument parser they share.
 *
 * Each subcommand takes the arguments after its own name (argv[0] is the
 * subcommand name) and returns the process exit code (README.md, "Exit
 * codes"; st_status_exit_code()). Each prints its own `--help` to stdout.
 *
 * Every usage error, whatever the command, is one line on stderr,
 * "strata <cmd>: <what is wrong>", and exit code 2 (ST_ARGS_USAGE). The
 * parser (pipeline/args.c) is table driven: a command lists its flags in
 * an st_argspec array and asks st_args_next() for one argument at a time,
 * so `--flag value` and `--flag=value` are the same thing everywhere, and
 * unknown flags, missing values and flags given a value they do not take
 * are refused with the same words by every command.
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

int st_cmd_gen(int argc, char **argv);      /* pipeline/gen.c */
int st_cmd_run(int argc, char **argv);      /* pipeline/cmd_run.c */
int st_cmd_inspect(int argc, char **argv);  /* formats/cmd_inspect.c */
int st_cmd_export(int argc, char **argv);   /* formats/cmd_export.c */
int st_cmd_kmeans(int argc, char **argv);   /* ml/cmd_kmeans.c */
int st_cmd_lineage(int argc, char **argv);  /* pipeline/catalog.c */
int st_cmd_docs(int argc, char **argv);     /* pipeline/catalog.c */
int st_cmd_report(int argc, char **argv);   /* pipeline/report/report.c */
int st_cmd_score(int argc, char **argv);    /* pipeline/cmd_score.c */

/* `strata inspect DIR`: the warehouse's tables (layer, table, rows, bytes,
 * the run that built each, fingerprint), as text or one JSON object on
 * stdout. Returns the exit code. (pipeline/catalog.c) */
int st_inspect_warehouse(const char *dir, bool json);

/* The version `strata --version` prints. */
#define ST_VERSION "0.1.0"

/* Exit code of every usage error. */
#define ST_ARGS_USAGE 2

/* One flag of a command: its long name with the dashes ("--k") and
 * whether it takes a value. */
typedef struct st_argspec {
    const char *name;
    bool takes_value;
} st_argspec;

/* The parser's state over one command line. Borrows argv and the spec
 * table for its whole life; nothing to free. */
typedef struct st_args {
    const char *cmd;          /* "kmeans": the word after "strata" in messages */
    int argc;
    char **argv;
    int i;                    /* next argv index to read */
    bool flags_done;          /* after "--" everything is positional */
    const st_argspec *spec;
    int n_spec;
    const char *flag;         /* the flag st_args_next() returned last */
    void (*usage)(FILE *);    /* prints the command's --help */
} st_args;

/* What st_args_next() returns besides an index into the spec table. */
enum {
    ST_ARGS_END = -1,         /* no more arguments */
    ST_ARGS_POSITIONAL = -2,  /* *val is a positional argument */
    ST_ARGS_HELP = -3,        /* --help or -h: usage is printed on stdout; exit 0 */
    ST_ARGS_ERROR = -4        /* the usage error is already printed: exit ST_ARGS_USAGE */
};

/* usage(stdout) answers --help. */
void st_args_init(st_args *a, const char *cmd, int argc, char **argv, const st_argspec *spec, int n_spec,
                  void (*usage)(FILE *));

/* The next argument: the index of a flag in the spec (with *val its value,
 * from "--flag=value" or the next argument, or NULL for a flag without
 * one), or one of the ST_ARGS_* codes above. */
int st_args_next(st_args *a, const char **val);

/* The exit code for ST_ARGS_HELP (0) or ST_ARGS_ERROR (2): a parse loop's
 * `if (f == ST_ARGS_HELP || f == ST_ARGS_ERROR) return st_args_exit(f);`. */
int st_args_exit(int code);

/* Prints "strata <cmd>: <message>" on stderr; returns ST_ARGS_USAGE so a
 * command can `return st_args_error(...)`. */
int st_args_error(const st_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value parsers for the flag st_args_next() returned last. On a bad value
 * each prints the usage error naming the flag, the accepted values and
 * what was given, and returns false. */
bool st_args_int(const st_args *a, const char *v, long long lo, long long hi, long long *out);
/* `word` (*is_word true) or an integer in lo..hi ("--k auto|N"). */
bool st_args_int_or(const st_args *a, const char *v, const char *word, long long lo, long long hi, long long *out,
                    bool *is_word);
bool st_args_u64(const st_args *a, const char *v, uint64_t *out);
bool st_args_nonneg(const st_args *a, const char *v, double *out);
/* SIZE: bytes, or digits with K, M or G (powers of 1024), at least lo. */
bool st_args_size(const st_args *a, const char *v, uint64_t lo, uint64_t *out);
/* A..B with lo <= A <= B <= hi. */
bool st_args_range(const st_args *a, const char *v, int lo, int hi, int *out_a, int *out_b);
/* One of the '|'-separated words of `choices` ("csv|jsonl"): its index. */
bool st_args_choice(const st_args *a, const char *v, const char *choices, int *out);

#ifdef __cplusplus
}
#endif
#endif
