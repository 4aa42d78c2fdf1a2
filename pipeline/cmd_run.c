/* PLACEHOLDER: replaced by the module's real implementation. */
#include <stdio.h>
#include "strata/cli.h"
int st_cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata run: not implemented yet\n"); return 1; }
