/*
 * pipeline/step_validate.c: the pipeline's "validate" step, st_step_validate().
 *
 * Runs the expectations of one layer of the run's suite (ctx->suite, which
 * st_pipeline_run loads once before the first step; when NULL, the file
 * given with --suite, else the built-in default suite) against the files this
 * run sees (staged when the run wrote them, final otherwise), appends the
 * results to the run's accumulated results, counts warnings and failures,
 * and stops the pipeline with ST_ERR_QUALITY when an expectation of
 * severity error failed. Failed warn expectations only count.
 */
#include <stdio.h>
#include <string.h>

#include "pipeline_internal.h"
#include "strata/quality.h"

static bool staged_or_final(void *ctx, const char *layer, const char *table, char *buf, size_t cap)
{
    char path[ST_PATH_MAX];
    st_warehouse_input_path(ctx, layer, table, path);
    size_t n = strlen(path);
    if (n >= cap) return false;
    memcpy(buf, path, n + 1);
    return true;
}

st_status st_step_validate(st_run_ctx *ctx, const char *layer, st_error *err)
{
    st_suite *own = NULL, *suite = ctx->suite;
    st_quality_results *r = NULL;
    st_status s = ST_OK;
    if (!suite) s = st_step_load_suite(ctx->o, &own, err);
    if (s != ST_OK) return s;
    if (!suite) suite = own;
    s = st_suite_run_paths_on(suite, staged_or_final, ctx->wh, layer, ctx->pool, &r, err);
    if (s != ST_OK) goto done;
    size_t np, nw, nf;
    st_quality_counts(r, &np, &nw, &nf);
    ctx->quality_warnings += (int)nw;
    ctx->quality_failures += (int)nf;
    st_buf_printf(&ctx->quality_summary, "%s: %zu pass, %zu warn, %zu fail\n", layer, np, nw, nf);
    if (ctx->cur) {
        size_t len = strlen(ctx->cur->note);
        snprintf(ctx->cur->note + len, sizeof ctx->cur->note - len, "%squality %s: %zu pass, %zu warn, %zu fail",
                 len ? "; " : "", layer, np, nw, nf);
    }
    s = st_quality_check(r, err);
    if (ctx->quality) {
        st_error merr;
        st_status ms = st_quality_results_merge(ctx->quality, r, &merr);
        r = NULL;
        if (ms != ST_OK && s == ST_OK) {
            if (err) *err = merr;
            s = ms;
        }
    }
done:
    st_quality_results_free(r);
    st_suite_free(own);
    return s;
}

st_status st_step_load_suite(const st_run_opts *o, struct st_suite **out, st_error *err)
{
    return o->suite_path ? st_suite_load(out, o->suite_path, err) : st_suite_load_default(out, err);
}
