/*
 * fuzz_args.c: libFuzzer target for the command-line parser
 * (pipeline/args.c): the input split on newlines is an argv (up to 64
 * arguments), parsed against a table of flags with and without values,
 * each value handed to one of the value parsers. Usage errors go to
 * stderr (run with -close_fd_mask=2 to silence them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const st_argspec spec[] = {{"--k", true},     {"--size", true}, {"--range", true}, {"--tol", true},
                                      {"--seed", true},  {"--format", true}, {"--flag", false}, {"--json", false}};
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[65];
    int argc = 0;
    argv[argc++] = "fuzz";
    for (char *p = buf; argc < 64;) {
        argv[argc++] = p;
        char *nl = memchr(p, '\n', (size_t)(buf + size - p));
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    argv[argc] = NULL;
    st_args a;
    st_args_init(&a, "fuzz", argc, argv, spec, (int)(sizeof spec / sizeof spec[0]), NULL);
    const char *v;
    int f;
    while ((f = st_args_next(&a, &v)) != ST_ARGS_END && f != ST_ARGS_ERROR) {
        long long x;
        uint64_t u;
        double d;
        int lo, hi, c;
        bool w;
        switch (f) {
        case 0: (void)st_args_int_or(&a, v, "auto", 1, 64, &x, &w); break;
        case 1: (void)st_args_size(&a, v, 1024, &u); break;
        case 2: (void)st_args_range(&a, v, 1, 64, &lo, &hi); break;
        case 3: (void)st_args_nonneg(&a, v, &d); break;
        case 4: (void)st_args_u64(&a, v, &u); break;
        case 5: (void)st_args_choice(&a, v, "csv|jsonl|parquet", &c); break;
        default: break;
        }
    }
    free(buf);
    return 0;
}
