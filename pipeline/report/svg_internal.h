/*
 * svg_internal.h: a small chart library that writes inline SVG into an
 * st_buf, private to the report module (pipeline/report/).
 *
 * Every chart is described by a plain struct of borrowed pointers and
 * drawn by one call that appends one complete <svg>...</svg> element (no
 * scripts, no ids, no external references, so many charts can share one
 * HTML page). Output depends only on the input: numbers are printed with
 * fixed precision, so the same data give byte-identical SVG.
 *
 * Conventions shared by all charts:
 *  - width/height are pixels of the viewBox; 0 picks a default.
 *  - Non-finite values (NaN, inf) are skipped, never drawn; on a log axis
 *    values <= 0 are skipped too. Empty input draws a frame with the text
 *    "no data" rather than failing.
 *  - Colours are CSS colour strings ("#0072B2"); NULL picks the next
 *    colour of the Okabe-Ito palette (st_svg_palette()).
 *  - Every string (titles, labels, legend names) is XML-escaped.
 *  - Axes get "nice" ticks: steps of 1, 2 or 5 times a power of ten
 *    (st_svg_nice_ticks), or powers of ten on a log axis.
 *
 * Nothing here allocates except the st_buf (which records its own
 * allocation failure; check st_buf_ok() once at the end) and small scratch
 * arrays in the DAG layout, whose failure is reported as "no data".
 */
#ifndef STRATA_SVG_H
#define STRATA_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- text and numbers ---- */

/* Appends s[0..n) with & < > " ' replaced by entities; control bytes
 * other than tab/newline are dropped (they are not valid XML). */
void st_svg_escape(st_buf *b, const char *s, size_t n);
/* Same for a NUL-terminated string; NULL appends nothing. */
void st_svg_escape_str(st_buf *b, const char *s);

/* Formats v with thousands separators and `decimals` digits after the
 * point ("1,234,567.89"); NaN/inf give "n/a". decimals is clamped to 0..9.
 * out must hold 48 bytes. Returns out. */
char *st_svg_fmt_num(double v, int decimals, char out[48]);

/* Axis/label number style. */
typedef enum st_svg_fmt {
    ST_SVG_FMT_AUTO = 0,   /* thousands separators, decimals from the tick step */
    ST_SVG_FMT_PCT = 1,    /* value is a fraction: 0.25 -> "25%" */
    ST_SVG_FMT_INT = 2     /* rounded to an integer, thousands separators */
} st_svg_fmt;

/* Nice ticks over [lo, hi]: step = 1, 2 or 5 x 10^e chosen so that at
 * most max_ticks ticks (>= 2) cover the range; ticks are the multiples of
 * step from floor(lo/step)*step to ceil(hi/step)*step. Writes at most
 * `cap` ticks, returns how many, and the step through *step (may be NULL).
 * lo == hi widens the range around the value; a range crossing zero
 * gets at least 3 ticks (0 is one); non-finite input gives 0 ticks. */
size_t st_svg_nice_ticks(double lo, double hi, size_t max_ticks, double *ticks,
                         size_t cap, double *step);

/* Powers of ten covering [lo, hi] (lo > 0), at most cap; returns count. */
size_t st_svg_log_ticks(double lo, double hi, double *ticks, size_t cap);

/* The Okabe-Ito colour-blind-safe palette (8 colours, without black
 * first): colour i mod 8. */
const char *st_svg_palette(size_t i);

/* ---- charts ---- */

/* One data series. For line/scatter charts x and y hold n points (x may
 * be NULL: x = 0, 1, ..., n-1). For bar charts y holds one value per
 * category and x is ignored. */
typedef struct st_svg_series {
    const char *name;      /* legend text; NULL or "" = not in the legend */
    const char *color;     /* NULL = palette */
    const double *x;
    const double *y;
    size_t n;
} st_svg_series;

/* A vertical annotation line at x with a label (e.g. "chosen k = 4"). */
typedef struct st_svg_mark {
    double x;
    const char *label;
    const char *color;     /* NULL = dark grey */
} st_svg_mark;

/* Line charts (lines = true) and scatter plots (lines = false). */
typedef struct st_svg_xy {
    int width, height;
    const char *title;     /* drawn above the plot; may be NULL */
    const char *x_label, *y_label;
    bool log_x, log_y;
    bool lines;            /* join points of a series in x order given */
    bool markers;          /* draw a circle at each point */
    double point_radius;   /* 0 = 3.5 for lines, 2.5 for scatter */
    double point_opacity;  /* 0 = 1.0 */
    bool integer_x;        /* ticks only at integer x (e.g. k) */
    st_svg_fmt x_fmt, y_fmt;
    const st_svg_series *series;
    size_t n_series;
    const st_svg_mark *marks;
    size_t n_marks;
} st_svg_xy;

void st_svg_xy_chart(st_buf *b, const st_svg_xy *c);

/* Bar charts: categories along x; one bar per series per category,
 * grouped side by side, or stacked when `stacked`. With a single series
 * and category_colors set, bar i takes category_colors[i]. */
typedef struct st_svg_bars {
    int width, height;
    const char *title;
    const char *x_label, *y_label;
    const char *const *categories;
    size_t n_categories;
    const char *const *category_colors;  /* may be NULL */
    const st_svg_series *series;
    size_t n_series;
    bool stacked;
    bool value_labels;     /* print each bar's value above it (grouped only) */
    bool rotate_labels;    /* slant category labels (many categories) */
    st_svg_fmt y_fmt;
} st_svg_bars;

void st_svg_bar_chart(st_buf *b, const st_svg_bars *c);

/* Stacked area over an ordered x (categories evenly spaced); series values
 * must be >= 0 (negatives count as 0). `normalise` shows shares (0..1). */
typedef struct st_svg_area {
    int width, height;
    const char *title;
    const char *x_label, *y_label;
    const char *const *categories;
    size_t n_categories;
    const st_svg_series *series;   /* y[n_categories] each */
    size_t n_series;
    bool normalise;
} st_svg_area;

void st_svg_area_chart(st_buf *b, const st_svg_area *c);

/* Heatmap of n_rows x n_cols values (row-major), cells coloured on a
 * sequential single-hue scale from the smallest to the largest finite
 * value, each cell labelled with its value; NaN cells stay blank. */
typedef struct st_svg_heatmap {
    int width, height;
    const char *title;
    const char *x_label, *y_label;       /* columns, rows */
    const char *const *row_labels;
    size_t n_rows;
    const char *const *col_labels;
    size_t n_cols;
    const double *values;
    st_svg_fmt fmt;
} st_svg_heatmap;

void st_svg_heatmap_chart(st_buf *b, const st_svg_heatmap *c);

/* Layered DAG: node i sits in column nodes[i].layer (0-based, left to
 * right); edges run from -> to (indices into nodes; out-of-range edges
 * are ignored). Within a column nodes are ordered by the mean position of
 * their parents (ties: input order), which keeps most edges straight. */
typedef struct st_svg_dag_node {
    const char *label;
    const char *sublabel;  /* second line, e.g. "12,345 rows"; may be NULL */
    int layer;
    const char *color;     /* fill; NULL = light grey */
} st_svg_dag_node;

typedef struct st_svg_dag_edge {
    size_t from, to;
} st_svg_dag_edge;

typedef struct st_svg_dag {
    int width;             /* height follows from the tallest column */
    const char *title;
    const char *const *layer_names;   /* column headings, n_layers of them */
    size_t n_layers;
    const st_svg_dag_node *nodes;
    size_t n_nodes;
    const st_svg_dag_edge *edges;
    size_t n_edges;
} st_svg_dag;

void st_svg_dag_chart(st_buf *b, const st_svg_dag *c);

/* A horizontal legend as its own small SVG (for panels sharing a key). */
void st_svg_legend(st_buf *b, int width, const char *const *names,
                   const char *const *colors, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_SVG_H */
