/* PLACEHOLDER: replaced by the module's real implementation. */
#include <stdio.h>
#include "strata/cli.h"
int st_cmd_lineage(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata lineage: not implemented yet\n"); return 1; }
int st_cmd_docs(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata docs: not implemented yet\n"); return 1; }
