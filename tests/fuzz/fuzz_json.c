/*
 * fuzz_json.c: the report's JSON reader on arbitrary bytes. It must
 * never read out of bounds, leak, or abort; when it accepts input, the
 * accessors must work on the tree. The same bytes are then fed to the
 * tolerant readers of quality/results.json and _runs/latest.json and the
 * resulting model is rendered as HTML and Markdown.
 */
#include <stddef.h>
#include <stdint.h>

#include "json_read_internal.h"
#include "report_internal.h"

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
    st_report_model m;
    st_report_model_init(&m);
    if (st_report_load_quality_json(&m, (const char *)data, size, &err) == ST_OK &&
        st_report_load_run_json(&m, (const char *)data, size, &err) == ST_OK) {
        st_buf b;
        st_buf_init(&b);
        if (st_report_render(&m, ST_REPORT_HTML, &b, &err) == ST_OK) (void)st_report_render(&m, ST_REPORT_MD, &b, &err);
        st_buf_free(&b);
    }
    st_report_model_free(&m);
    return 0;
}
