/*
 * test_cli.c: the built `strata` binary answers --help for itself and for
 * every subcommand, and rejects unknown commands with exit code 2.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixtures.h"

static int run_cmd(const char *args, char *out, size_t out_len)
{
    return fx_capture(out, out_len, "%s %s 2>&1", fx_bin(), args);
}

TestSuite(cli);

Test(cli, top_level_help)
{
    static char out[65536];
    cr_assert_eq(run_cmd("--help", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "usage: strata"));
    cr_assert_not_null(strstr(out, "exit codes"));
}

Test(cli, unknown_command_is_usage_error)
{
    static char out[65536];
    cr_assert_eq(run_cmd("no-such-command", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "unknown command"));
}

Test(cli, every_subcommand_has_help)
{
    static const char *subs[] = {"run", "gen", "inspect", "export", "kmeans", "lineage", "docs", "report"};
    static char out[65536];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", subs[i]);
        int rc = run_cmd(args, out, sizeof out);
        cr_expect_eq(rc, 0, "strata %s --help exited %d: %s", subs[i], rc, out);
        cr_expect_not_null(strstr(out, "usage:"), "strata %s --help has no usage line", subs[i]);
    }
}
