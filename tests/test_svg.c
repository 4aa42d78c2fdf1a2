/*
 * test_svg.c: the SVG chart module. Nice ticks against a naive search,
 * escaping, thousands separators, well-formed output (a tiny tag-balance
 * checker below), determinism, and degenerate data (empty, one point,
 * all-equal, NaN).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "svg_internal.h"

static void assert_wellformed(const st_buf *b)
{
    cr_assert(st_buf_ok(b));
    const char *m = fx_check_markup(b->data, false);
    cr_assert_null(m, "malformed SVG: %s\n%s", m ? m : "", b->data);
    cr_assert_null(strstr(b->data, "nan"), "NaN leaked into output");
    cr_assert_null(strstr(b->data, "inf"), "inf leaked into output");
    cr_assert_null(strstr(b->data, "http"), "URL in output");
    cr_assert_null(strstr(b->data, "<script"));
}

TestSuite(svg);

/* naive reference: the smallest 1/2/5 x 10^e step giving <= max ticks */
static double ref_step(double lo, double hi, size_t max_ticks)
{
    if (max_ticks < 3 && lo < 0 && hi > 0) max_ticks = 3;
    for (int e = -12; e <= 15; e++) {
        static const double m[] = {1, 2, 5};
        for (int i = 0; i < 3; i++) {
            double step = m[i] * pow(10, e);
            double n = ceil(hi / step) - floor(lo / step) + 1;
            if (n <= (double)max_ticks) return step;
        }
    }
    return NAN;
}

Test(svg, nice_ticks_basic)
{
    double t[64], step;
    size_t n = st_svg_nice_ticks(0, 100, 6, t, 64, &step);
    cr_assert_eq(step, 20);
    cr_assert_eq(n, 6);
    cr_assert_eq(t[0], 0);
    cr_assert_eq(t[5], 100);
    n = st_svg_nice_ticks(0.13, 0.87, 6, t, 64, &step);
    cr_assert_float_eq(step, 0.2, 1e-12);
    cr_assert_float_eq(t[0], 0, 1e-12);
    cr_assert_float_eq(t[n - 1], 1.0, 1e-12);
    n = st_svg_nice_ticks(-37, 1234, 7, t, 64, &step);
    cr_assert_eq(step, 500);
    cr_assert_eq(t[0], -500);
    cr_assert_eq(t[n - 1], 1500);
}

Test(svg, nice_ticks_match_reference)
{
    unsigned seed = 12345;
    for (int it = 0; it < 2000; it++) {
        seed = seed * 1103515245u + 12345u;
        double a = ((double)(seed >> 8) / 16777216.0 - 0.3) * pow(10, (int)(seed % 9) - 3);
        seed = seed * 1103515245u + 12345u;
        double span = ((double)(seed >> 8) / 16777216.0 + 0.001) * pow(10, (int)(seed % 9) - 3);
        size_t max_ticks = 2 + seed % 9;
        double t[64], step;
        size_t n = st_svg_nice_ticks(a, a + span, max_ticks, t, 64, &step);
        double rs = ref_step(a, a + span, max_ticks);
        cr_assert_float_eq(step, rs, rs * 1e-9, "lo %g hi %g max %zu: step %g want %g", a, a + span, max_ticks,
                           step, rs);
        cr_assert(n >= 2 && n <= (max_ticks < 3 ? 3 : max_ticks), "n=%zu max=%zu", n, max_ticks);
        cr_assert(t[0] <= a + 1e-9 * span && t[n - 1] >= a + span - 1e-9 * span);
    }
}

Test(svg, nice_ticks_degenerate)
{
    double t[64], step;
    size_t n = st_svg_nice_ticks(5, 5, 6, t, 64, &step);
    cr_assert(n >= 2);
    cr_assert(t[0] <= 5 && t[n - 1] >= 5);
    n = st_svg_nice_ticks(0, 0, 6, t, 64, &step);
    cr_assert(n >= 2 && t[0] <= 0 && t[n - 1] >= 0);
    cr_assert_eq(st_svg_nice_ticks(NAN, 1, 6, t, 64, &step), 0);
    cr_assert_eq(st_svg_nice_ticks(0, INFINITY, 6, t, 64, &step), 0);
    n = st_svg_nice_ticks(10, 0, 6, t, 64, &step); /* reversed */
    cr_assert(n >= 2 && t[0] == 0 && t[n - 1] == 10);
    cr_assert_leq(st_svg_nice_ticks(0, 100, 6, t, 3, &step), 3); /* cap respected */
}

Test(svg, log_ticks)
{
    double t[16];
    size_t n = st_svg_log_ticks(3, 4500, t, 16);
    cr_assert_eq(n, 5);
    cr_assert_float_eq(t[0], 1, 1e-12);
    cr_assert_float_eq(t[4], 10000, 1e-9);
    cr_assert_eq(st_svg_log_ticks(0, 10, t, 16), 0);
    cr_assert_eq(st_svg_log_ticks(10, 10, t, 16), 2);
}

Test(svg, escaping)
{
    st_buf b;
    st_buf_init(&b);
    st_svg_escape_str(&b, "a<b>&\"c'\x01z");
    cr_assert_str_eq(b.data, "a&lt;b&gt;&amp;&quot;c&#39;z");
    st_buf_reset(&b);
    st_svg_escape_str(&b, NULL);
    cr_assert_eq(b.len, 0);
    st_buf_free(&b);
}

Test(svg, thousands_separators)
{
    char o[48];
    cr_assert_str_eq(st_svg_fmt_num(0, 0, o), "0");
    cr_assert_str_eq(st_svg_fmt_num(999, 0, o), "999");
    cr_assert_str_eq(st_svg_fmt_num(1000, 0, o), "1,000");
    cr_assert_str_eq(st_svg_fmt_num(1234567.891, 2, o), "1,234,567.89");
    cr_assert_str_eq(st_svg_fmt_num(-1234567, 0, o), "-1,234,567");
    cr_assert_str_eq(st_svg_fmt_num(-0.001, 1, o), "0.0");
    cr_assert_str_eq(st_svg_fmt_num(100000, 0, o), "100,000");
    cr_assert_str_eq(st_svg_fmt_num(NAN, 2, o), "n/a");
    cr_assert_str_eq(st_svg_fmt_num(INFINITY, 2, o), "n/a");
    st_svg_fmt_num(1e300, 0, o); /* too long for separators: still bounded */
    cr_assert_lt(strlen(o), 48);
}

static void draw_all(st_buf *b, const double *x, const double *y, size_t n)
{
    st_svg_series s[2] = {{"first <series>", NULL, x, y, n}, {"second & more", "#D55E00", x, y, n}};
    st_svg_mark mk = {2, "chosen k = 2", NULL};
    st_svg_xy xy = {0};
    xy.title = "Lines \"quoted\"";
    xy.x_label = "k";
    xy.y_label = "inertia";
    xy.lines = true;
    xy.markers = true;
    xy.series = s;
    xy.n_series = 2;
    xy.marks = &mk;
    xy.n_marks = 1;
    st_svg_xy_chart(b, &xy);
    xy.lines = false;
    xy.log_x = true;
    xy.title = "Scatter";
    st_svg_xy_chart(b, &xy);
    const char *cats[] = {"A<", "B", "C", "D", "E", "F", "G", "H"};
    size_t nc = n < 8 ? n : 8;
    st_svg_bars bars = {0};
    bars.title = "Bars";
    bars.categories = cats;
    bars.n_categories = nc;
    bars.series = s;
    bars.n_series = 2;
    bars.value_labels = true;
    st_svg_bar_chart(b, &bars);
    bars.stacked = true;
    st_svg_bar_chart(b, &bars);
    st_svg_area area = {0};
    area.categories = cats;
    area.n_categories = nc;
    area.series = s;
    area.n_series = 2;
    area.normalise = true;
    st_svg_area_chart(b, &area);
    st_svg_heatmap hm = {0};
    hm.row_labels = cats;
    hm.col_labels = cats;
    hm.n_rows = n < 3 ? n : 3;
    hm.n_cols = n < 3 ? n : 3;
    double vals[9];
    for (size_t i = 0; i < 9; i++) vals[i] = i < n ? y[i] : NAN;
    hm.values = vals;
    st_svg_heatmap_chart(b, &hm);
}

Test(svg, charts_wellformed_and_deterministic)
{
    double x[20], y[20];
    for (int i = 0; i < 20; i++) {
        x[i] = 1 + i * 37.5;
        y[i] = 1000.0 / (1 + i) + (i % 3);
    }
    st_buf a, b;
    st_buf_init(&a);
    st_buf_init(&b);
    draw_all(&a, x, y, 20);
    draw_all(&b, x, y, 20);
    assert_wellformed(&a);
    cr_assert_eq(a.len, b.len);
    cr_assert(memcmp(a.data, b.data, a.len) == 0);
    cr_assert_eq(fx_count(a.data, "<svg"), 6);
    cr_assert_not_null(strstr(a.data, "first &lt;series&gt;"));
    cr_assert_not_null(strstr(a.data, "chosen k = 2"));
    cr_assert_null(strstr(a.data, "no data"));
    st_buf_free(&a);
    st_buf_free(&b);
}

Test(svg, degenerate_data)
{
    double x[4] = {1, 2, 3, 4}, y_eq[4] = {7, 7, 7, 7}, y_nan[4] = {NAN, 3, NAN, 5};
    double y_allnan[4] = {NAN, NAN, NAN, NAN};
    st_buf b;
    st_buf_init(&b);
    draw_all(&b, x, y_eq, 0); /* empty */
    assert_wellformed(&b);
    cr_assert_geq(fx_count(b.data, "no data"), 5);
    st_buf_reset(&b);
    draw_all(&b, x, y_eq, 1); /* single point */
    assert_wellformed(&b);
    st_buf_reset(&b);
    draw_all(&b, x, y_eq, 4); /* all equal */
    assert_wellformed(&b);
    cr_assert_null(strstr(b.data, "no data"));
    st_buf_reset(&b);
    draw_all(&b, x, y_nan, 4); /* NaN skipped */
    assert_wellformed(&b);
    st_buf_reset(&b);
    draw_all(&b, x, y_allnan, 4);
    assert_wellformed(&b);
    st_buf_free(&b);
}

Test(svg, nan_points_are_skipped)
{
    double x[3] = {1, 2, 3}, y[3] = {1, NAN, 3};
    st_svg_series s = {"s", NULL, x, y, 3};
    st_svg_xy xy = {0};
    xy.series = &s;
    xy.n_series = 1;
    st_buf b;
    st_buf_init(&b);
    st_svg_xy_chart(&b, &xy);
    assert_wellformed(&b);
    cr_assert_eq(fx_count(b.data, "<circle"), 2);
    st_buf_free(&b);
}

Test(svg, log_axis_skips_nonpositive)
{
    double x[4] = {0, 10, 100, -5}, y[4] = {1, 2, 3, 4};
    st_svg_series s = {"s", NULL, x, y, 4};
    st_svg_xy xy = {0};
    xy.series = &s;
    xy.n_series = 1;
    xy.log_x = true;
    st_buf b;
    st_buf_init(&b);
    st_svg_xy_chart(&b, &xy);
    assert_wellformed(&b);
    cr_assert_eq(fx_count(b.data, "<circle"), 2);
    st_buf_free(&b);
}

Test(svg, dag_layout)
{
    st_svg_dag_node nodes[] = {{"raw_a", "10 rows", 0, NULL}, {"raw_b", NULL, 0, NULL}, {"stg <a>", NULL, 1, "#ccc"},
                               {"gold", "1,000 rows", 2, NULL}, {"lost", NULL, 9, NULL}};
    st_svg_dag_edge edges[] = {{0, 2}, {1, 2}, {2, 3}, {0, 3}, {7, 1}};
    const char *layers[] = {"bronze", "silver", "gold"};
    st_svg_dag d = {0};
    d.layer_names = layers;
    d.n_layers = 3;
    d.nodes = nodes;
    d.n_nodes = 5;
    d.edges = edges;
    d.n_edges = 5;
    st_buf b;
    st_buf_init(&b);
    st_svg_dag_chart(&b, &d);
    assert_wellformed(&b);
    cr_assert_eq(fx_count(b.data, "<path"), 4); /* the out-of-range edge dropped */
    cr_assert_eq(fx_count(b.data, "class=\"node\""), 5);
    cr_assert_not_null(strstr(b.data, "stg &lt;a&gt;"));
    st_buf_reset(&b);
    d.n_nodes = 0;
    st_svg_dag_chart(&b, &d);
    assert_wellformed(&b);
    cr_assert_not_null(strstr(b.data, "no data"));
    st_buf_free(&b);
}

Test(svg, legend_and_palette)
{
    const char *names[] = {"Champions", "Loyalists", "x<y"};
    const char *colors[] = {"#0072B2", "#009E73", "#999999"};
    st_buf b;
    st_buf_init(&b);
    st_svg_legend(&b, 300, names, colors, 3);
    assert_wellformed(&b);
    cr_assert_not_null(strstr(b.data, "x&lt;y"));
    cr_assert_str_eq(st_svg_palette(0), st_svg_palette(8));
    st_buf_free(&b);
}
