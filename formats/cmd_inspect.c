/* PLACEHOLDER: replaced by the module's real implementation. */
#include <stdio.h>
#include "strata/cli.h"
int st_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata inspect: not implemented yet\n"); return 1; }
int st_cmd_export(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata export: not implemented yet\n"); return 1; }
