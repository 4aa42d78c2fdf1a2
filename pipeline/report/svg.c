/*
 * pipeline/report/svg.c: the chart library behind the dashboard
 * (svg_internal.h).
 *
 * Each chart is drawn in three steps: measure the data (finite values
 * only), choose axes with nice ticks, then emit SVG elements in a fixed
 * order. Coordinates are printed with one decimal ("%.1f"), so the output
 * is a pure function of the input and diffs of two reports stay small.
 *
 * The SVG carries no xmlns, ids, scripts, gradients or links: it is meant
 * to sit inline in one self-contained HTML page, where ids would collide
 * between charts. Arrowheads and colour keys are therefore drawn as plain
 * polygons and rectangles. Styling that is common to every chart (fonts,
 * grid colour) lives in the page's CSS under the `chart` class; the
 * geometry and data colours are attributes here.
 */
#include "svg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_W 600
#define DEFAULT_H 360
#define CHAR_W 6.6      /* average glyph width at 12 px, for layout estimates */
#define MAX_TICKS 64

/* ---- text and numbers ---- */

void st_svg_escape(st_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n') rep = "";
            else if (c == 0x7f) rep = "";
            break;
        }
        if (!rep) continue;
        st_buf_append(b, s + run, i - run);
        st_buf_puts(b, rep);
        run = i + 1;
    }
    st_buf_append(b, s + run, n - run);
}

void st_svg_escape_str(st_buf *b, const char *s)
{
    if (s) st_svg_escape(b, s, strlen(s));
}

char *st_svg_fmt_num(double v, int decimals, char out[48])
{
    if (!isfinite(v)) {
        strcpy(out, "n/a");
        return out;
    }
    if (decimals < 0) decimals = 0;
    if (decimals > 9) decimals = 9;
    char raw[400];
    /* %.*f of a huge double is long but bounded (~310 digits). */
    int n = snprintf(raw, sizeof raw, "%.*f", decimals, v);
    if (n < 0 || (size_t)n >= sizeof raw) {
        snprintf(out, 48, "%.3g", v);
        return out;
    }
    const char *p = raw;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    const char *dot = strchr(p, '.');
    size_t int_len = dot ? (size_t)(dot - p) : strlen(p);
    size_t frac_len = dot ? strlen(dot) : 0; /* includes the '.' */
    /* "-0" / "-0.00" print as zero without the sign. */
    bool all_zero = true;
    for (const char *q = p; *q; q++)
        if (*q >= '1' && *q <= '9') all_zero = false;
    if (all_zero) neg = false;
    size_t need = (neg ? 1 : 0) + int_len + (int_len - 1) / 3 + frac_len + 1;
    if (need > 48) {
        snprintf(out, 48, "%.3g", v);
        return out;
    }
    size_t o = 0;
    if (neg) out[o++] = '-';
    for (size_t i = 0; i < int_len; i++) {
        if (i && (int_len - i) % 3 == 0) out[o++] = ',';
        out[o++] = p[i];
    }
    if (dot) {
        memcpy(out + o, dot, frac_len);
        o += frac_len;
    }
    out[o] = '\0';
    return out;
}

size_t st_svg_nice_ticks(double lo, double hi, size_t max_ticks, double *ticks,
                         size_t cap, double *step_out)
{
    if (step_out) *step_out = 0;
    if (!isfinite(lo) || !isfinite(hi)) return 0;
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi == lo) {
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d;
        hi += d;
        if (lo == hi) return 0; /* d lost to rounding (astronomical values) */
    }
    if (max_ticks < 2) max_ticks = 2;
    if (max_ticks < 3 && lo < 0 && hi > 0) max_ticks = 3; /* 0 must be a tick */
    double range = hi - lo;
    if (!isfinite(range)) return 0;
    double raw = range / (double)(max_ticks - 1);
    double base = pow(10.0, floor(log10(raw)));
    static const double mult[] = {1, 2, 5};
    double step = base;
    double t0 = 0, t1 = 0;
    for (int it = 0; it < 64; it++) {
        step = mult[it % 3] * base * pow(10.0, it / 3);
        t0 = floor(lo / step);
        t1 = ceil(hi / step);
        if (t1 - t0 + 1 <= (double)max_ticks) break;
    }
    if (!isfinite(step) || step <= 0) return 0;
    size_t n = 0;
    for (double t = t0; t <= t1 && n < cap; t += 1) {
        double v = t * step;
        if (fabs(v) < step * 1e-9) v = 0;
        ticks[n++] = v;
    }
    if (step_out) *step_out = step;
    return n;
}

size_t st_svg_log_ticks(double lo, double hi, double *ticks, size_t cap)
{
    if (!(lo > 0) || !isfinite(lo) || !isfinite(hi) || hi < lo) return 0;
    double e0 = floor(log10(lo)), e1 = ceil(log10(hi));
    if (e1 == e0) e1 = e0 + 1;
    size_t n = 0;
    for (double e = e0; e <= e1 && n < cap; e += 1) ticks[n++] = pow(10.0, e);
    return n;
}

const char *st_svg_palette(size_t i)
{
    static const char *const okabe_ito[8] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                             "#56B4E9", "#D55E00", "#F0E442", "#000000"};
    return okabe_ito[i % 8];
}

/* ---- shared drawing helpers ---- */

static const char *series_color(const st_svg_series *s, size_t i)
{
    return s->color ? s->color : st_svg_palette(i);
}

/* out = num + "%" (num shorter than 47 bytes, else truncated). */
static void add_pct(char out[48], const char *num)
{
    size_t n = strlen(num);
    if (n > 46) n = 46;
    memcpy(out, num, n);
    out[n] = '%';
    out[n + 1] = '\0';
}

static int decimals_for_step(double step)
{
    if (!(step > 0) || !isfinite(step)) return 0;
    int d = (int)ceil(-log10(step) - 1e-9);
    if (d < 0) d = 0;
    if (d > 6) d = 6;
    return d;
}

/* Tick label for v on an axis whose step is `step`. */
static void fmt_tick(char out[48], double v, double step, st_svg_fmt fmt)
{
    if (fmt == ST_SVG_FMT_PCT) {
        char num[48];
        st_svg_fmt_num(v * 100, decimals_for_step(step * 100), num);
        add_pct(out, num);
    } else if (fmt == ST_SVG_FMT_INT) {
        st_svg_fmt_num(round(v), 0, out);
    } else {
        st_svg_fmt_num(v, decimals_for_step(step), out);
    }
}

/* Value label of a single data value (bars, heatmap cells). */
static void fmt_value(char out[48], double v, st_svg_fmt fmt)
{
    if (fmt == ST_SVG_FMT_PCT) {
        char num[48];
        st_svg_fmt_num(v * 100, fabs(v) < 0.1 ? 1 : 0, num);
        add_pct(out, num);
    } else if (fmt == ST_SVG_FMT_INT || fabs(v) >= 100 || v == floor(v)) {
        st_svg_fmt_num(v, 0, out);
    } else if (fabs(v) >= 1) {
        st_svg_fmt_num(v, 2, out);
    } else {
        st_svg_fmt_num(v, 3, out);
    }
}

static void svg_open(st_buf *b, int w, int h, const char *title)
{
    st_buf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\"", w, h, w, h);
    if (title) {
        st_buf_puts(b, " aria-label=\"");
        st_svg_escape_str(b, title);
        st_buf_puts(b, "\"");
    }
    st_buf_puts(b, ">\n");
    if (title && *title) {
        st_buf_puts(b, "<text class=\"title\" x=\"8\" y=\"18\">");
        st_svg_escape_str(b, title);
        st_buf_puts(b, "</text>\n");
    }
}

static void text_at(st_buf *b, double x, double y, const char *anchor, const char *cls, const char *s)
{
    st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"", x, y);
    if (anchor) st_buf_printf(b, " text-anchor=\"%s\"", anchor);
    if (cls) st_buf_printf(b, " class=\"%s\"", cls);
    st_buf_puts(b, ">");
    st_svg_escape_str(b, s);
    st_buf_puts(b, "</text>\n");
}

/* One category label under an axis at y, centred on x; rotate slants it
 * by 40 degrees, ending at x, for labels too long to stand side by side. */
static void category_tick(st_buf *b, double x, double y, bool rotate, const char *s)
{
    if (rotate) {
        st_buf_printf(b, "<text class=\"tick\" text-anchor=\"end\" transform=\"translate(%.1f,%.1f) rotate(-40)\">",
                      x + 4, y + 10);
        st_svg_escape_str(b, s);
        st_buf_puts(b, "</text>\n");
    } else {
        text_at(b, x, y + 16, "middle", "tick", s);
    }
}

static void no_data(st_buf *b, int w, int h)
{
    st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"nodata\">no data</text>\n",
                  w / 2.0, h / 2.0);
}

/* Lays out legend entries left to right from (x0, y), wrapping at
 * x_max; returns the y of the last row. With `draw` false only measures. */
static double legend_rows(st_buf *b, bool draw, double x0, double y, double x_max,
                          const char *const *names, const char *const *colors, size_t n)
{
    double x = x0;
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !*names[i]) continue;
        double wi = 18 + CHAR_W * (double)strlen(names[i]) + 14;
        if (x > x0 && x + wi > x_max) {
            x = x0;
            y += 18;
        }
        if (draw) {
            st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x,
                          y - 10, colors[i]);
            text_at(b, x + 16, y, NULL, "legend", names[i]);
        }
        x += wi;
    }
    return y;
}

static bool any_named(const st_svg_series *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].name && *s[i].name) return true;
    return false;
}

/* Legend for a list of series at the top of a chart; returns the height
 * it takes (0 when no series is named). Names/colours pointer arrays are
 * built in small fixed chunks to avoid allocating. */
static double series_legend(st_buf *b, bool draw, double x0, double y, double x_max,
                            const st_svg_series *s, size_t n)
{
    if (!any_named(s, n)) return 0;
    double x = x0, y_end = y;
    for (size_t i = 0; i < n; i++) {
        const char *nm = s[i].name, *col = series_color(&s[i], i);
        if (!nm || !*nm) continue;
        double wi = 18 + CHAR_W * (double)strlen(nm) + 14;
        if (x > x0 && x + wi > x_max) {
            x = x0;
            y_end += 18;
        }
        if (draw) {
            st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x,
                          y_end - 10, col);
            text_at(b, x + 16, y_end, NULL, "legend", nm);
        }
        x += wi;
    }
    return y_end - y + 20;
}

/* A numeric axis mapped onto pixels [p0, p1]. */
typedef struct axis {
    double lo, hi;          /* in data units (log10 units when log) */
    bool log;
    double p0, p1;
    double ticks[MAX_TICKS];
    size_t n_ticks;
    double step;
} axis;

static bool axis_fit(axis *a, double mn, double mx, bool log_scale, size_t max_ticks)
{
    a->log = log_scale;
    if (!(mn <= mx)) return false;
    if (log_scale) {
        a->n_ticks = st_svg_log_ticks(mn, mx, a->ticks, MAX_TICKS);
        if (a->n_ticks < 2) return false;
        a->lo = log10(a->ticks[0]);
        a->hi = log10(a->ticks[a->n_ticks - 1]);
        a->step = 0;
        /* Thin out decades when there are too many. */
        if (a->n_ticks > max_ticks) {
            size_t k = (a->n_ticks + max_ticks - 1) / max_ticks, m = 0;
            for (size_t i = 0; i < a->n_ticks; i += k) a->ticks[m++] = a->ticks[i];
            a->n_ticks = m;
        }
    } else {
        a->n_ticks = st_svg_nice_ticks(mn, mx, max_ticks, a->ticks, MAX_TICKS, &a->step);
        if (a->n_ticks < 2) return false;
        a->lo = a->ticks[0];
        a->hi = a->ticks[a->n_ticks - 1];
    }
    return a->hi > a->lo;
}

static double axis_map(const axis *a, double v)
{
    double u = a->log ? log10(v) : v;
    return a->p0 + (u - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static bool usable(double v, bool log_scale)
{
    return isfinite(v) && (!log_scale || v > 0);
}

static void fmt_axis_tick(char out[48], const axis *a, double v, st_svg_fmt fmt)
{
    if (a->log) {
        if (fmt == ST_SVG_FMT_PCT) {
            char num[48];
            st_svg_fmt_num(v * 100, v * 100 < 1 ? decimals_for_step(v * 100) : 0, num);
            add_pct(out, num);
        } else {
            st_svg_fmt_num(v, v < 1 ? decimals_for_step(v) : 0, out);
        }
    } else {
        fmt_tick(out, v, a->step, fmt);
    }
}

/* Draws gridlines + tick labels of the y axis and the x axis ticks. */
static void draw_y_axis(st_buf *b, const axis *y, double x0, double x1, st_svg_fmt fmt, const char *label,
                        double mid_y)
{
    for (size_t i = 0; i < y->n_ticks; i++) {
        double py = axis_map(y, y->ticks[i]);
        char t[48];
        fmt_axis_tick(t, y, y->ticks[i], fmt);
        st_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, py, x1,
                      py);
        text_at(b, x0 - 6, py + 4, "end", "tick", t);
    }
    if (label && *label) {
        st_buf_printf(b, "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(14,%.1f) rotate(-90)\">",
                      mid_y);
        st_svg_escape_str(b, label);
        st_buf_puts(b, "</text>\n");
    }
}

static void draw_x_axis(st_buf *b, const axis *x, double y0, double y1, st_svg_fmt fmt, const char *label,
                        bool integer_only, double mid_x, double label_y)
{
    for (size_t i = 0; i < x->n_ticks; i++) {
        double v = x->ticks[i];
        if (integer_only && v != floor(v)) continue;
        double px = axis_map(x, v);
        char t[48];
        fmt_axis_tick(t, x, v, fmt);
        st_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px, y0, px,
                      y1);
        text_at(b, px, y0 + 16, "middle", "tick", t);
    }
    if (label && *label) text_at(b, mid_x, label_y, "middle", "axis-label", label);
}

static void draw_frame(st_buf *b, double x0, double y0, double x1, double y1)
{
    st_buf_printf(b, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, y1, x1, y1);
    st_buf_printf(b, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, y0, x0, y1);
}

/* Opens a chart's <svg> with its title and, when any series is named, a
 * legend of the n series under it; returns the y where the plot may start. */
static double chart_open(st_buf *b, int w, int h, const char *title, const st_svg_series *series, size_t n)
{
    svg_open(b, w, h, title);
    double top = title && *title ? 30 : 10;
    double leg = series_legend(b, false, 70, top + 10, w - 10, series, n);
    if (leg > 0) {
        series_legend(b, true, 70, top + 10, w - 10, series, n);
        top += leg;
    }
    return top;
}

/* ---- line / scatter ---- */

void st_svg_xy_chart(st_buf *b, const st_svg_xy *c)
{
    int w = c->width > 0 ? c->width : DEFAULT_W, h = c->height > 0 ? c->height : DEFAULT_H;
    double top = chart_open(b, w, h, c->title, c->series, c->n_series);
    double x0 = 70, x1 = w - 34, y0 = top + 10, y1 = h - 46;
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    for (size_t s = 0; s < c->n_series; s++) {
        const st_svg_series *se = &c->series[s];
        for (size_t i = 0; i < se->n; i++) {
            double xv = se->x ? se->x[i] : (double)i, yv = se->y[i];
            if (!usable(xv, c->log_x) || !usable(yv, c->log_y)) continue;
            if (xv < xmn) xmn = xv;
            if (xv > xmx) xmx = xv;
            if (yv < ymn) ymn = yv;
            if (yv > ymx) ymx = yv;
        }
    }
    for (size_t m = 0; m < c->n_marks; m++) {
        double xv = c->marks[m].x;
        if (!usable(xv, c->log_x) || !(xmn <= xmx)) continue;
        if (xv < xmn) xmn = xv;
        if (xv > xmx) xmx = xv;
    }
    axis ax, ay;
    if (y1 - y0 < 20 || !axis_fit(&ax, xmn, xmx, c->log_x, 9) || !axis_fit(&ay, ymn, ymx, c->log_y, 7)) {
        no_data(b, w, h);
        st_buf_puts(b, "</svg>\n");
        return;
    }
    ax.p0 = x0;
    ax.p1 = x1;
    ay.p0 = y1;
    ay.p1 = y0;
    draw_y_axis(b, &ay, x0, x1, c->y_fmt, c->y_label, (y0 + y1) / 2);
    draw_x_axis(b, &ax, y1, y0, c->x_fmt, c->x_label, c->integer_x, (x0 + x1) / 2, h - 8);
    draw_frame(b, x0, y0, x1, y1);
    double r = c->point_radius > 0 ? c->point_radius : (c->lines ? 3.5 : 2.5);
    double op = c->point_opacity > 0 && c->point_opacity < 1 ? c->point_opacity : 1;
    for (size_t s = 0; s < c->n_series; s++) {
        const st_svg_series *se = &c->series[s];
        const char *col = series_color(se, s);
        if (c->lines) {
            bool open = false;
            for (size_t i = 0; i < se->n; i++) {
                double xv = se->x ? se->x[i] : (double)i, yv = se->y[i];
                if (!usable(xv, c->log_x) || !usable(yv, c->log_y)) continue;
                if (!open) {
                    st_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
                    open = true;
                } else {
                    st_buf_puts(b, " ");
                }
                st_buf_printf(b, "%.1f,%.1f", axis_map(&ax, xv), axis_map(&ay, yv));
            }
            if (open) st_buf_puts(b, "\"/>\n");
        }
        if (c->markers || !c->lines) {
            st_buf_printf(b, "<g fill=\"%s\"", col);
            if (op < 1) st_buf_printf(b, " fill-opacity=\"%.2f\"", op);
            st_buf_puts(b, ">\n");
            for (size_t i = 0; i < se->n; i++) {
                double xv = se->x ? se->x[i] : (double)i, yv = se->y[i];
                if (!usable(xv, c->log_x) || !usable(yv, c->log_y)) continue;
                st_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n", axis_map(&ax, xv),
                              axis_map(&ay, yv), r);
            }
            st_buf_puts(b, "</g>\n");
        }
    }
    for (size_t m = 0; m < c->n_marks; m++) {
        const st_svg_mark *mk = &c->marks[m];
        if (!usable(mk->x, c->log_x)) continue;
        double px = axis_map(&ax, mk->x);
        const char *col = mk->color ? mk->color : "#444444";
        st_buf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                      "stroke-dasharray=\"5,4\"/>\n",
                      px, y0, px, y1, col);
        if (mk->label && *mk->label) {
            bool right_half = px > (x0 + x1) / 2;
            st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"mark\" fill=\"%s\">",
                          right_half ? px - 4 : px + 4, y0 + 14 + 14.0 * (double)m, right_half ? "end" : "start",
                          col);
            st_svg_escape_str(b, mk->label);
            st_buf_puts(b, "</text>\n");
        }
    }
    st_buf_puts(b, "</svg>\n");
}

/* ---- bars ---- */

static void category_labels(st_buf *b, const char *const *cats, size_t n, double x0, double band, double y,
                            bool rotate)
{
    size_t every = 1;
    double max_chars = 0;
    for (size_t i = 0; i < n; i++)
        if (cats && cats[i] && (double)strlen(cats[i]) > max_chars) max_chars = (double)strlen(cats[i]);
    if (!rotate && max_chars * CHAR_W > band * 0.95) rotate = true;
    if (rotate) {
        while (band * (double)every < 24) every++;
    }
    for (size_t i = 0; i < n; i += every) {
        const char *s = cats && cats[i] ? cats[i] : "";
        double cx = x0 + band * ((double)i + 0.5);
        category_tick(b, cx, y, rotate, s);
    }
}

static double max_label_chars(const char *const *cats, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (cats && cats[i] && (double)strlen(cats[i]) > m) m = (double)strlen(cats[i]);
    return m;
}

void st_svg_bar_chart(st_buf *b, const st_svg_bars *c)
{
    int w = c->width > 0 ? c->width : DEFAULT_W, h = c->height > 0 ? c->height : DEFAULT_H;
    bool per_cat_colors = c->n_series == 1 && c->category_colors;
    double top = chart_open(b, w, h, c->title, c->series, per_cat_colors ? 0 : c->n_series);
    size_t nc = c->n_categories;
    double x0 = 70, x1 = w - 20, y0 = top + 10;
    double band = nc ? (x1 - x0) / (double)nc : 0;
    bool rotate = c->rotate_labels || (nc && max_label_chars(c->categories, nc) * CHAR_W > band * 0.95);
    double bottom = rotate ? 14 + max_label_chars(c->categories, nc) * CHAR_W * 0.65 : 26;
    if (bottom > h * 0.4) bottom = h * 0.4;
    double y1 = h - bottom - (c->x_label && *c->x_label ? 22 : 4);
    double mn = 0, mx = 0;
    bool any = false;
    for (size_t k = 0; k < nc; k++) {
        double pos = 0;
        for (size_t s = 0; s < c->n_series; s++) {
            if (k >= c->series[s].n) continue;
            double v = c->series[s].y[k];
            if (!isfinite(v)) continue;
            any = true;
            if (c->stacked) {
                if (v > 0) pos += v;
            } else {
                if (v < mn) mn = v;
                if (v > mx) mx = v;
            }
        }
        if (c->stacked && pos > mx) mx = pos;
    }
    if (c->value_labels && !c->stacked) { /* room for the labels above the bars */
        mx += (mx - mn) * 0.08;
        if (mn < 0) mn -= (mx - mn) * 0.08;
    }
    axis ay;
    if (!any || nc == 0 || y1 - y0 < 20 || !axis_fit(&ay, mn, mx, false, 6)) {
        no_data(b, w, h);
        st_buf_puts(b, "</svg>\n");
        return;
    }
    ay.p0 = y1;
    ay.p1 = y0;
    draw_y_axis(b, &ay, x0, x1, c->y_fmt, c->y_label, (y0 + y1) / 2);
    double zero = axis_map(&ay, 0);
    size_t ns = c->n_series ? c->n_series : 1;
    double gw = band * 0.8, bw = c->stacked ? gw : gw / (double)ns;
    for (size_t k = 0; k < nc; k++) {
        double gx = x0 + band * (double)k + band * 0.1, cum = 0;
        for (size_t s = 0; s < c->n_series; s++) {
            const st_svg_series *se = &c->series[s];
            if (k >= se->n || !isfinite(se->y[k])) continue;
            double v = se->y[k];
            const char *col = per_cat_colors && c->category_colors[k] ? c->category_colors[k] : series_color(se, s);
            double bx, ya, yb;
            if (c->stacked) {
                if (v <= 0) continue;
                bx = gx;
                ya = axis_map(&ay, cum + v);
                yb = axis_map(&ay, cum);
                cum += v;
            } else {
                bx = gx + bw * (double)s;
                ya = axis_map(&ay, v > 0 ? v : 0);
                yb = axis_map(&ay, v > 0 ? 0 : v);
            }
            st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">", bx, ya,
                          bw > 1.5 ? bw - 1 : bw, yb - ya, col);
            char t[48];
            fmt_value(t, v, c->y_fmt);
            st_buf_puts(b, "<title>");
            if (c->categories && c->categories[k]) st_svg_escape_str(b, c->categories[k]);
            if (se->name && *se->name) {
                st_buf_puts(b, " / ");
                st_svg_escape_str(b, se->name);
            }
            st_buf_printf(b, ": %s</title></rect>\n", t);
            if (c->value_labels && !c->stacked) text_at(b, bx + bw / 2, (v >= 0 ? ya : yb + 12) - 3, "middle", "value", t);
        }
    }
    st_buf_printf(b, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, zero, x1, zero);
    st_buf_printf(b, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, y0, x0, y1);
    category_labels(b, c->categories, nc, x0, band, y1, rotate);
    if (c->x_label && *c->x_label) text_at(b, (x0 + x1) / 2, h - 6, "middle", "axis-label", c->x_label);
    st_buf_puts(b, "</svg>\n");
}

/* ---- stacked area ---- */

void st_svg_area_chart(st_buf *b, const st_svg_area *c)
{
    int w = c->width > 0 ? c->width : DEFAULT_W, h = c->height > 0 ? c->height : DEFAULT_H;
    double top = chart_open(b, w, h, c->title, c->series, c->n_series);
    size_t nc = c->n_categories;
    double x0 = 70, x1 = w - 20, y0 = top + 10;
    double step_px = nc > 1 ? (x1 - x0) / (double)(nc - 1) : (x1 - x0);
    bool rotate = nc && max_label_chars(c->categories, nc) * CHAR_W > step_px * 0.95;
    double bottom = rotate ? 14 + max_label_chars(c->categories, nc) * CHAR_W * 0.65 : 26;
    if (bottom > h * 0.4) bottom = h * 0.4;
    double y1 = h - bottom - (c->x_label && *c->x_label ? 22 : 4);
    /* Totals per category decide the y range (and the normalisation). */
    double mx = 0;
    bool any = false;
    for (size_t k = 0; k < nc; k++) {
        double tot = 0;
        for (size_t s = 0; s < c->n_series; s++)
            if (k < c->series[s].n && isfinite(c->series[s].y[k]) && c->series[s].y[k] > 0) {
                tot += c->series[s].y[k];
                any = true;
            }
        if (tot > mx) mx = tot;
    }
    if (c->normalise) mx = 1;
    axis ay;
    if (!any || nc == 0 || y1 - y0 < 20 || !axis_fit(&ay, 0, mx, false, 6)) {
        no_data(b, w, h);
        st_buf_puts(b, "</svg>\n");
        return;
    }
    ay.p0 = y1;
    ay.p1 = y0;
    draw_y_axis(b, &ay, x0, x1, c->normalise ? ST_SVG_FMT_PCT : ST_SVG_FMT_AUTO, c->y_label, (y0 + y1) / 2);
    /* x of category k; a single category spans the plot. */
#define AREA_X(k) (nc > 1 ? x0 + step_px * (double)(k) : ((k) == 0 ? x0 : x1))
    size_t npts = nc > 1 ? nc : 2;
    for (size_t s = 0; s < c->n_series; s++) {
        const st_svg_series *se = &c->series[s];
        st_buf_printf(b, "<polygon fill=\"%s\" fill-opacity=\"0.9\" stroke=\"#ffffff\" stroke-width=\"0.5\" points=\"",
                      series_color(se, s));
        /* upper edge left->right, lower edge right->left */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = 0; j < npts; j++) {
                size_t p = pass == 0 ? j : npts - 1 - j;
                size_t k = nc > 1 ? p : 0;
                double tot = 0, below = 0;
                for (size_t t = 0; t < c->n_series; t++) {
                    double v = k < c->series[t].n ? c->series[t].y[k] : 0;
                    if (!isfinite(v) || v < 0) v = 0;
                    tot += v;
                    if (t < s || (pass == 0 && t == s)) below += v;
                }
                if (c->normalise) below = tot > 0 ? below / tot : 0;
                st_buf_printf(b, "%s%.1f,%.1f", pass == 0 && j == 0 ? "" : " ", AREA_X(p), axis_map(&ay, below));
            }
        }
        st_buf_puts(b, "\"><title>");
        st_svg_escape_str(b, se->name);
        st_buf_puts(b, "</title></polygon>\n");
    }
    draw_frame(b, x0, y0, x1, y1);
    /* category labels under their points */
    size_t every = 1;
    double label_w = rotate ? 26 : max_label_chars(c->categories, nc) * CHAR_W + 8;
    if (nc > 1)
        while (step_px * (double)every < label_w) every++;
    for (size_t k = 0; k < nc; k += every) {
        const char *s = c->categories && c->categories[k] ? c->categories[k] : "";
        double px = nc > 1 ? AREA_X(k) : (x0 + x1) / 2;
        category_tick(b, px, y1, rotate, s);
    }
#undef AREA_X
    if (c->x_label && *c->x_label) text_at(b, (x0 + x1) / 2, h - 6, "middle", "axis-label", c->x_label);
    st_buf_puts(b, "</svg>\n");
}

/* ---- heatmap ---- */

/* Sequential blue scale (ColorBrewer "Blues"-like), t in [0, 1]. */
static void heat_color(double t, char out[8])
{
    static const int stops[3][3] = {{247, 251, 255}, {107, 174, 214}, {8, 48, 107}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    int seg = t < 0.5 ? 0 : 1;
    double u = seg == 0 ? t * 2 : (t - 0.5) * 2;
    int rgb[3];
    for (int i = 0; i < 3; i++)
        rgb[i] = (int)lround(stops[seg][i] + (stops[seg + 1][i] - stops[seg][i]) * u);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

void st_svg_heatmap_chart(st_buf *b, const st_svg_heatmap *c)
{
    int w = c->width > 0 ? c->width : DEFAULT_W, h = c->height > 0 ? c->height : DEFAULT_H;
    svg_open(b, w, h, c->title);
    double top = c->title && *c->title ? 30 : 10;
    size_t nr = c->n_rows, ncol = c->n_cols;
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; c->values && i < nr * ncol; i++) {
        double v = c->values[i];
        if (!isfinite(v)) continue;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    double left = 24 + max_label_chars(c->row_labels, nr) * CHAR_W + 10;
    if (left > w * 0.4) left = w * 0.4;
    double x0 = left, x1 = w - 20;
    double y0 = top + 8 + (c->x_label && *c->x_label ? 18 : 0) + 18; /* axis label, column labels */
    double y1 = h - 40;                                               /* colour key below */
    if (nr == 0 || ncol == 0 || !(mn <= mx) || y1 - y0 < 10) {
        no_data(b, w, h);
        st_buf_puts(b, "</svg>\n");
        return;
    }
    double cw = (x1 - x0) / (double)ncol, ch = (y1 - y0) / (double)nr;
    if (c->x_label && *c->x_label) text_at(b, (x0 + x1) / 2, top + 16, "middle", "axis-label", c->x_label);
    for (size_t j = 0; j < ncol; j++)
        text_at(b, x0 + cw * ((double)j + 0.5), y0 - 6, "middle", "tick",
                c->col_labels && c->col_labels[j] ? c->col_labels[j] : "");
    if (c->y_label && *c->y_label) {
        st_buf_printf(b, "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(14,%.1f) rotate(-90)\">",
                      (y0 + y1) / 2);
        st_svg_escape_str(b, c->y_label);
        st_buf_puts(b, "</text>\n");
    }
    double span = mx > mn ? mx - mn : 1;
    for (size_t i = 0; i < nr; i++) {
        text_at(b, x0 - 6, y0 + ch * ((double)i + 0.5) + 4, "end", "tick",
                c->row_labels && c->row_labels[i] ? c->row_labels[i] : "");
        for (size_t j = 0; j < ncol; j++) {
            double v = c->values[i * ncol + j];
            double cx = x0 + cw * (double)j, cy = y0 + ch * (double)i;
            if (!isfinite(v)) {
                st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" stroke=\"#dddddd\"/>\n",
                              cx, cy, cw, ch);
                continue;
            }
            double t = mx > mn ? (v - mn) / span : 0.5;
            char col[8], lab[48];
            heat_color(t, col);
            fmt_value(lab, v, c->fmt);
            st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#ffffff\"/>\n",
                          cx, cy, cw, ch, col);
            st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"cell\" fill=\"%s\">",
                          cx + cw / 2, cy + ch / 2 + 4, t > 0.55 ? "#ffffff" : "#111111");
            st_buf_puts(b, lab);
            st_buf_puts(b, "</text>\n");
        }
    }
    /* colour key: ten steps from min to max */
    double kx = x0, ky = h - 26, kw = 24;
    char lo[48], hi[48];
    fmt_value(lo, mn, c->fmt);
    fmt_value(hi, mx, c->fmt);
    text_at(b, kx - 6, ky + 11, "end", "tick", lo);
    for (int i = 0; i < 10; i++) {
        char col[8];
        heat_color(i / 9.0, col);
        st_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" fill=\"%s\"/>\n", kx + kw * i, ky,
                      kw, col);
    }
    text_at(b, kx + kw * 10 + 6, ky + 11, "start", "tick", hi);
    st_buf_puts(b, "</svg>\n");
}

/* ---- layered DAG ---- */

typedef struct dag_pos {
    size_t node;
    double key;   /* barycentre of parents, for ordering */
    double y;     /* centre, px */
} dag_pos;

static int cmp_pos(const void *pa, const void *pb)
{
    const dag_pos *a = pa, *b = pb;
    if (a->key < b->key) return -1;
    if (a->key > b->key) return 1;
    return a->node < b->node ? -1 : a->node > b->node;
}

/* Column of layer L among nl columns (out-of-range layers clamp to the ends). */
static size_t dag_column(int L, size_t nl) { return L < 0 ? 0 : (size_t)L >= nl ? nl - 1 : (size_t)L; }

/* Geometry shared by the parts of a DAG drawing. */
typedef struct dag_geo {
    size_t nl, nn, max_col;
    double top, pitch, box_h, col_w, box_w;
    double *ypos;   /* nn centre y of each node */
} dag_geo;

/* Places columns left to right into g->ypos; a node's key is the mean y
 * of its already-placed parents (nodes without any keep input order).
 * pos is scratch of nn entries. */
static void dag_place(const st_svg_dag *c, dag_geo *g, dag_pos *pos)
{
    size_t nn = g->nn;
    for (size_t i = 0; i < nn; i++) g->ypos[i] = NAN;
    for (size_t l = 0; l < g->nl; l++) {
        size_t m = 0;
        for (size_t i = 0; i < nn; i++) {
            if (dag_column(c->nodes[i].layer, g->nl) != l) continue;
            double sum = 0;
            size_t k = 0;
            for (size_t e = 0; e < c->n_edges; e++) {
                const st_svg_dag_edge *ed = &c->edges[e];
                if (ed->to != i || ed->from >= nn || isnan(g->ypos[ed->from])) continue;
                sum += g->ypos[ed->from];
                k++;
            }
            pos[m].node = i;
            pos[m].key = k ? sum / (double)k : 1e12 + (double)i;
            m++;
        }
        qsort(pos, m, sizeof *pos, cmp_pos);
        double off = g->top + g->pitch * (double)(g->max_col - m) / 2;
        for (size_t j = 0; j < m; j++) g->ypos[pos[j].node] = off + g->pitch * ((double)j + 0.5);
    }
}

/* Edges, drawn before the boxes so boxes sit on top. Edges between
 * columns run from the right side of the source to the left side of the
 * target; edges inside one column (e.g. a mart built from another mart)
 * bend out to the right of the column and come back into the target's
 * right side. Pass 0 draws the curves, pass 1 the arrow heads. */
static void dag_edges(st_buf *b, const st_svg_dag *c, const dag_geo *g)
{
    double col_w = g->col_w, box_w = g->box_w;
    st_buf_puts(b, "<g class=\"edges\" fill=\"none\" stroke=\"#8a8a8a\" stroke-width=\"1.3\">\n");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) st_buf_puts(b, "</g>\n<g fill=\"#8a8a8a\">\n");
        for (size_t e = 0; e < c->n_edges; e++) {
            const st_svg_dag_edge *ed = &c->edges[e];
            if (ed->from >= g->nn || ed->to >= g->nn) continue;
            size_t lf = dag_column(c->nodes[ed->from].layer, g->nl), lt = dag_column(c->nodes[ed->to].layer, g->nl);
            double xa = col_w * ((double)lf + 0.5) + box_w / 2, ya = g->ypos[ed->from], yb = g->ypos[ed->to];
            if (lf == lt) {
                double bend = xa + 16 + fabs(yb - ya) * 0.12;
                if (bend > col_w * ((double)lf + 1) - 2) bend = col_w * ((double)lf + 1) - 2;
                double ys = ya + (yb > ya ? 8 : -8), ye = yb + (yb > ya ? -8 : 8);
                if (pass == 0)
                    st_buf_printf(b, "<path d=\"M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", xa, ys, bend, ys,
                                  bend, ye, xa + 6, ye);
                else
                    st_buf_printf(b, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", xa, ye, xa + 7,
                                  ye - 4, xa + 7, ye + 4);
                continue;
            }
            double xb = col_w * ((double)lt + 0.5) - box_w / 2;
            double xm = (xa + xb) / 2;
            if (xb <= xa) xm = xa + 40;
            if (pass == 0)
                st_buf_printf(b, "<path d=\"M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", xa, ya, xm, ya, xm, yb,
                              xb - 6, yb);
            else
                st_buf_printf(b, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n", xb, yb, xb - 7, yb - 4,
                              xb - 7, yb + 4);
        }
    }
    st_buf_puts(b, "</g>\n");
}

/* One box per node with its label (shrunk to fit) and sublabel. */
static void dag_nodes(st_buf *b, const st_svg_dag *c, const dag_geo *g)
{
    double box_w = g->box_w, box_h = g->box_h;
    for (size_t i = 0; i < g->nn; i++) {
        const st_svg_dag_node *nd = &c->nodes[i];
        size_t l = dag_column(nd->layer, g->nl);
        double cx = g->col_w * ((double)l + 0.5), cy = g->ypos[i];
        st_buf_printf(b, "<rect class=\"node\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"6\" fill=\"%s\"/>\n",
                      cx - box_w / 2, cy - box_h / 2, box_w, box_h, nd->color ? nd->color : "#eeeeee");
        const char *lab = nd->label ? nd->label : "";
        double fs = 12;
        double need = (double)strlen(lab) * CHAR_W;
        if (need > box_w - 10) fs = 12 * (box_w - 10) / need;
        if (fs < 7) fs = 7;
        bool two = nd->sublabel && *nd->sublabel;
        st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"node-label\" font-size=\"%.1f\">",
                      cx, two ? cy - 3 : cy + 4, fs);
        st_svg_escape_str(b, lab);
        st_buf_puts(b, "</text>\n");
        if (two) text_at(b, cx, cy + 13, "middle", "node-sub", nd->sublabel);
    }
}

void st_svg_dag_chart(st_buf *b, const st_svg_dag *c)
{
    int w = c->width > 0 ? c->width : 1000;
    dag_geo g = {0};
    g.nl = c->n_layers;
    g.nn = c->n_nodes;
    g.pitch = 52;
    g.box_h = 40;
    g.top = (c->title && *c->title ? 30 : 8) + 26;
    /* count nodes per column */
    size_t *count = g.nl ? calloc(g.nl, sizeof *count) : NULL;
    dag_pos *pos = g.nn ? calloc(g.nn, sizeof *pos) : NULL;
    g.ypos = g.nn ? calloc(g.nn, sizeof *g.ypos) : NULL;
    if (g.nl == 0 || g.nn == 0 || !count || !pos || !g.ypos) {
        svg_open(b, w, 120, c->title);
        no_data(b, w, 120);
        st_buf_puts(b, "</svg>\n");
        goto done;
    }
    for (size_t i = 0; i < g.nn; i++) {
        size_t l = dag_column(c->nodes[i].layer, g.nl);
        if (++count[l] > g.max_col) g.max_col = count[l];
    }
    int h = (int)(g.top + g.pitch * (double)g.max_col + 16);
    svg_open(b, w, h, c->title);
    g.col_w = (double)w / (double)g.nl;
    g.box_w = g.col_w - 44 < 220 ? g.col_w - 44 : 220;
    if (g.box_w < 40) g.box_w = 40;
    for (size_t l = 0; l < g.nl; l++)
        text_at(b, g.col_w * ((double)l + 0.5), g.top - 12, "middle", "layer",
                c->layer_names && c->layer_names[l] ? c->layer_names[l] : "");
    dag_place(c, &g, pos);
    dag_edges(b, c, &g);
    dag_nodes(b, c, &g);
    st_buf_puts(b, "</svg>\n");
done:
    free(count);
    free(pos);
    free(g.ypos);
}

/* ---- standalone legend ---- */

void st_svg_legend(st_buf *b, int width, const char *const *names, const char *const *colors, size_t n)
{
    int w = width > 0 ? width : DEFAULT_W;
    double last = legend_rows(b, false, 8, 16, w - 8, names, colors, n);
    int h = (int)(last + 8);
    svg_open(b, w, h, NULL);
    legend_rows(b, true, 8, 16, w - 8, names, colors, n);
    st_buf_puts(b, "</svg>\n");
}
