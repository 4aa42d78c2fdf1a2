/*
 * pipeline/quality/report.c: what is done with quality results: the verdict
 * (st_quality_has_error / st_quality_check), results.json, and the
 * terminal summary.
 *
 * The JSON is built in an st_buf in suite order with fixed key order, so
 * the same data and suite give the same bytes. Numbers that are not finite
 * (a reject rate over an empty table) are written as null.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quality_internal.h"
#include "strata/warehouse.h"

const char *st_qstatus_name(st_qstatus s)
{
    switch (s) {
    case ST_QSTATUS_PASS: return "pass";
    case ST_QSTATUS_WARN: return "warn";
    case ST_QSTATUS_FAIL: return "fail";
    }
    return "?";
}

void st_quality_counts(const st_quality_results *r, size_t *n_pass, size_t *n_warn, size_t *n_fail)
{
    size_t c[3] = {0, 0, 0};
    for (size_t i = 0; i < st_quality_count(r); i++) {
        st_qstatus s = st_quality_get(r, i)->status;
        if ((int)s >= 0 && (int)s < 3) c[s]++;
    }
    if (n_pass) *n_pass = c[0];
    if (n_warn) *n_warn = c[1];
    if (n_fail) *n_fail = c[2];
}

bool st_quality_has_error(const st_quality_results *r)
{
    for (size_t i = 0; i < st_quality_count(r); i++) {
        const st_qresult *q = st_quality_get(r, i);
        if (q->severity == ST_QSEV_ERROR && q->status != ST_QSTATUS_PASS) return true;
    }
    return false;
}

static void observed_text(const st_qresult *q, char *out, size_t cap)
{
    switch (q->observed_kind) {
    case ST_QOBS_INT: snprintf(out, cap, "%" PRId64, q->observed_i); break;
    case ST_QOBS_F64: snprintf(out, cap, "%.4g", q->observed_f); break;
    case ST_QOBS_TEXT: snprintf(out, cap, "%s", q->observed_text); break;
    default: snprintf(out, cap, "-"); break;
    }
}

st_status st_quality_check(const st_quality_results *r, st_error *err)
{
    const st_qresult *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < st_quality_count(r); i++) {
        const st_qresult *q = st_quality_get(r, i);
        if (q->severity == ST_QSEV_ERROR && q->status != ST_QSTATUS_PASS) {
            if (!first) first = q;
            n++;
        }
    }
    if (!first) return ST_OK;
    char obs[100];
    observed_text(first, obs, sizeof obs);
    char more[64] = "";
    if (n > 1) snprintf(more, sizeof more, " (and %zu more severity=error failure%s)", n - 1, n == 2 ? "" : "s");
    return st_error_set(err, ST_ERR_QUALITY, "quality check failed: %s (%s line %d, severity=error): %s%s", first->id,
                        st_quality_suite_name(r), first->line, first->message[0] ? first->message : obs, more);
}

static void json_s(st_buf *b, const char *s) { st_buf_json_str(b, s ? s : "", s ? strlen(s) : 0); }

void st_quality_to_json(const st_quality_results *r, st_buf *b)
{
    size_t np, nw, nf;
    st_quality_counts(r, &np, &nw, &nf);
    st_buf_puts(b, "{\n  \"suite\": ");
    json_s(b, st_quality_suite_name(r));
    st_buf_puts(b, ",\n  \"layers\": ");
    json_s(b, st_quality_layers(r));
    st_buf_printf(b, ",\n  \"counts\": {\"pass\": %zu, \"warn\": %zu, \"fail\": %zu, \"total\": %zu},\n", np, nw, nf,
                  st_quality_count(r));
    st_buf_printf(b, "  \"has_error\": %s,\n  \"results\": [", st_quality_has_error(r) ? "true" : "false");
    for (size_t i = 0; i < st_quality_count(r); i++) {
        const st_qresult *q = st_quality_get(r, i);
        st_buf_puts(b, i ? ",\n    {" : "\n    {");
        static const char *const keys[] = {"\"id\": ", ", \"layer\": ", ", \"table\": ",
                                           ", \"column\": ", ", \"kind\": ", ", \"args\": "};
        const char *const vals[] = {q->id, q->layer, q->table, q->column, q->kind, q->args};
        st_buf_put_fields(b, keys, vals, 6, json_s);
        st_buf_printf(b, ", \"severity\": \"%s\", \"mostly\": ", q->severity == ST_QSEV_ERROR ? "error" : "warn");
        st_buf_json_f64(b, q->mostly);
        st_buf_printf(b, ", \"line\": %d, \"status\": \"%s\", \"evaluated\": %s, \"observed\": ", q->line,
                      st_qstatus_name(q->status), q->evaluated ? "true" : "false");
        switch (q->observed_kind) {
        case ST_QOBS_INT: st_buf_printf(b, "%" PRId64, q->observed_i); break;
        case ST_QOBS_F64: st_buf_json_f64(b, q->observed_f); break;
        case ST_QOBS_TEXT: json_s(b, q->observed_text); break;
        default: st_buf_puts(b, "null"); break;
        }
        st_buf_printf(b,
                      ", \"unexpected_count\": %" PRIu64 ", \"rows_checked\": %" PRIu64 ", \"chunks_skipped\": %" PRIu64
                      ", \"chunks_decoded\": %" PRIu64 ", \"sample\": [",
                      q->unexpected_count, q->rows_checked, q->chunks_skipped, q->chunks_decoded);
        for (size_t k = 0; k < q->n_sample; k++) {
            st_buf_puts(b, k ? ", {\"row\": " : "{\"row\": ");
            if (q->sample[k].row >= 0) st_buf_printf(b, "%" PRId64, q->sample[k].row);
            else st_buf_puts(b, "null");
            st_buf_puts(b, ", \"value\": ");
            json_s(b, q->sample[k].value);
            st_buf_puts(b, "}");
        }
        st_buf_puts(b, "], \"message\": ");
        json_s(b, q->message);
        st_buf_puts(b, "}");
    }
    st_buf_puts(b, st_quality_count(r) ? "\n  ]\n}\n" : "]\n}\n");
}

st_status st_quality_write_json(const st_quality_results *r, const char *path, st_error *err)
{
    char dir[ST_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof dir) return st_error_set(err, ST_ERR_INVALID, "bad results path '%s'", path);
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        ST_TRY(st_mkdirs(dir, err));
    }
    st_buf b;
    st_buf_init(&b);
    st_quality_to_json(r, &b);
    st_status s;
    if (!st_buf_ok(&b)) s = st_error_set(err, ST_ERR_NOMEM, "quality: out of memory writing %s", path);
    else s = st_write_file_atomic(path, b.data, b.len, err);
    st_buf_free(&b);
    return s;
}

/* Fits s into w columns, ending with "~" when cut. */
static void fit(const char *s, size_t w, char *out)
{
    size_t n = strlen(s);
    if (n <= w) {
        memcpy(out, s, n + 1);
        return;
    }
    memcpy(out, s, w - 1);
    out[w - 1] = '~';
    out[w] = '\0';
}

void st_quality_print_summary(const st_quality_results *r, FILE *f)
{
    size_t np, nw, nf;
    st_quality_counts(r, &np, &nw, &nf);
    fprintf(f, "quality [%s] %s: %zu expectations: %zu pass, %zu warn, %zu fail\n", st_quality_layers(r),
            st_quality_suite_name(r), st_quality_count(r), np, nw, nf);
    if (nw + nf == 0) return;
    fprintf(f, "  %-4s %-5s %-34s %-44s %-12s %s\n", "stat", "sev", "table", "expectation", "observed", "unexpected");
    for (size_t i = 0; i < st_quality_count(r); i++) {
        const st_qresult *q = st_quality_get(r, i);
        if (q->status == ST_QSTATUS_PASS) continue;
        char table[128], tfit[40], exp[256], efit[48], obs[100], ofit[16], unexp[32];
        snprintf(table, sizeof table, "%s.%s", q->layer, q->table);
        fit(table, 34, tfit);
        snprintf(exp, sizeof exp, "%s %s", q->kind, q->args);
        fit(exp, 44, efit);
        observed_text(q, obs, sizeof obs);
        fit(obs, 12, ofit);
        st_fmt_thousands(q->unexpected_count > INT64_MAX ? INT64_MAX : (int64_t)q->unexpected_count, unexp);
        fprintf(f, "  %-4s %-5s %-34s %-44s %-12s %s\n", st_qstatus_name(q->status),
                q->severity == ST_QSEV_ERROR ? "error" : "warn", tfit, efit, ofit, unexp);
        if (q->message[0]) fprintf(f, "       %s\n", q->message);
    }
}
