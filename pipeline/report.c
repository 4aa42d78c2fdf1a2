/* PLACEHOLDER until the dashboard lands: answers --help, otherwise says it is not built. */
#include <stdio.h>
#include <string.h>

#include "strata/cli.h"

int st_cmd_report(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: strata report [--warehouse DIR] [--format html|md]\n\n(not built in this version)\n");
        return 0;
    }
    fprintf(stderr, "strata report: the dashboard is not built in this version\n");
    return 1;
}
