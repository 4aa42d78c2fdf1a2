/*
 * cli.h: the `strata` subcommands. Each takes the arguments after its own
 * name (argv[0] is the subcommand name) and returns the process exit code
 * (README.md, "Exit codes"; st_status_exit_code()). Each prints its own
 * `--help`. Errors go to stderr as one line: "strata <cmd>: <message>".
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#ifdef __cplusplus
extern "C" {
#endif

int st_cmd_gen(int argc, char **argv);      /* pipeline/gen.c */
int st_cmd_run(int argc, char **argv);      /* pipeline/cmd_run.c */
int st_cmd_inspect(int argc, char **argv);  /* formats/cmd_inspect.c */
int st_cmd_export(int argc, char **argv);   /* formats/cmd_inspect.c */
int st_cmd_kmeans(int argc, char **argv);   /* ml/cmd_kmeans.c */
int st_cmd_lineage(int argc, char **argv);  /* pipeline/catalog.c */
int st_cmd_docs(int argc, char **argv);     /* pipeline/catalog.c */
int st_cmd_report(int argc, char **argv);   /* pipeline/report.c */
int st_cmd_score(int argc, char **argv);    /* pipeline/cmd_score.c */

#ifdef __cplusplus
}
#endif
#endif
