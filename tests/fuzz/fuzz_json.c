/*
 * fuzz_json.c: the report's JSON reader on arbitrary bytes. It must
 * never read out of bounds, leak, or abort; when it accepts input, the
 * accessors must work on the tree.
 */
#include <stddef.h>
#include <stdint.h>

#include "json_read_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double walk(const st_json *v, int depth)
{
    double acc = 0;
    if (depth > ST_JSON_MAX_DEPTH + 1) return acc;
    acc += st_json_number(v, 0) + (st_json_bool(v, false) ? 1 : 0);
    const char *s = st_json_string(v, NULL);
    if (s) acc += (double)s[0];
    for (size_t i = 0; i < st_json_count(v); i++) acc += walk(&v->items[i], depth + 1);
    (void)st_json_get(v, "steps");
    (void)st_json_at(v, 0);
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_json j;
    st_error err;
    if (st_json_parse((const char *)data, size, "fuzz", &j, &err) == ST_OK) {
        volatile double d = walk(&j, 0);
        (void)d;
    }
    st_json_free(&j);
    return 0;
}
