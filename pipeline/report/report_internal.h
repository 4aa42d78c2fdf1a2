/*
 * report_internal.h: what the report module's files (pipeline/report/)
 * share. Not installed. html.c and md.c render a model, load.c fills one
 * from a warehouse, svg.c draws the charts (svg_internal.h), model.c owns
 * the model's lifecycle and report.c is the command and the write path.
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
