/*
 * report_internal.h: what the report's files share. Not installed.
 * pipeline/report/html.c and pipeline/report/md.c render a model; pipeline/report/load.c fills one;
 * report.c is the command and the write path.
 */
#ifndef STRATA_REPORT_INTERNAL_H
#define STRATA_REPORT_INTERNAL_H

#include "strata/buf.h"
#include "strata/report.h"
#include "strata/status.h"

/* Appends the HTML page / Markdown document for m to b. */
st_status st_report_render_html(const st_report_model *m, st_buf *b, st_error *err) ST_MUST_USE;
st_status st_report_render_md(const st_report_model *m, st_buf *b, st_error *err) ST_MUST_USE;

/* Fills the quality and run-log parts of m from JSON text (already read
 * from disk); bad JSON adds a note and leaves the part unavailable. */
st_status st_report_load_quality_json(st_report_model *m, const char *buf, size_t len,
                                      st_error *err) ST_MUST_USE;
st_status st_report_load_run_json(st_report_model *m, const char *buf, size_t len,
                                  st_error *err) ST_MUST_USE;

#endif
