/*
 * progress.c: the terminal progress line (progress_internal.h).
 *
 * The rate is rows done over the time from the start to the last count
 * (so it holds still while a step finishes after reading), and the ETA
 * the rows left at that rate: simple, and steady enough for steps
 * that read their input chunk by chunk at a roughly constant pace. A
 * redraw costs one clock read; st_meter_set/add return before it when the
 * line is off.
 */
#include "progress_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata/buf.h"

#define SHOW_AFTER_S 0.5 /* STRATA_PROGRESS_DELAY=<seconds> overrides it (tests use 0) */
#define REDRAW_EVERY_S 0.1
#define BAR_WIDTH 24

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds before the first line: SHOW_AFTER_S or STRATA_PROGRESS_DELAY. */
static double show_after_s(void)
{
    const char *e = getenv("STRATA_PROGRESS_DELAY");
    char *end;
    double v = e ? strtod(e, &end) : -1;
    return e && end != e && *end == '\0' && v >= 0 && v < 3600 ? v : SHOW_AFTER_S;
}

bool st_meter_tty(void) { return isatty(STDERR_FILENO) != 0; }

void st_meter_start(st_meter *m, const char *label, uint64_t total, bool on)
{
    memset(m, 0, sizeof *m);
    m->label = label;
    m->total = total;
    m->on = on;
    m->t0_s = m->last_s = m->count_s = mono_s();
    m->show_after_s = on ? show_after_s() : SHOW_AFTER_S;
}

void st_meter_expect(st_meter *m, uint64_t rows) { m->total += rows; }

/* "3.1 M" / "812.0 K" / "950": a rate or count in a few characters. */
static void short_num(double x, char *buf, size_t len)
{
    if (x >= 1e9) snprintf(buf, len, "%.1f G", x / 1e9);
    else if (x >= 1e6) snprintf(buf, len, "%.1f M", x / 1e6);
    else if (x >= 1e3) snprintf(buf, len, "%.1f K", x / 1e3);
    else snprintf(buf, len, "%.0f", x);
}

static void draw(st_meter *m, double now)
{
    double el = now - m->t0_s, counting = m->count_s - m->t0_s;
    double rate = counting > 0 ? (double)m->done / counting : 0.0;
    char done[32], total[32], r[32], bar[BAR_WIDTH + 1], tail[48];
    st_fmt_thousands((int64_t)m->done, done);
    short_num(rate, r, sizeof r);
    if (m->total > 0) {
        uint64_t d = m->done < m->total ? m->done : m->total;
        int fill = (int)((double)d / (double)m->total * BAR_WIDTH);
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        st_fmt_thousands((int64_t)m->total, total);
        /* once every row is read a step still groups, writes and checks */
        if (d < m->total && rate > 0) snprintf(tail, sizeof tail, "ETA %.0f s", (double)(m->total - d) / rate);
        else snprintf(tail, sizeof tail, "finishing, %.1f s", el);
        fprintf(stderr, "\r\033[K  %-13s [%s] %3d%%  %s / %s rows  %s rows/s  %s", m->label, bar,
                (int)(100.0 * (double)d / (double)m->total), done, total, r, tail);
    } else if (m->done > 0) {
        fprintf(stderr, "\r\033[K  %-13s %s rows  %s rows/s  %.1f s", m->label, done, r, el);
    } else {
        fprintf(stderr, "\r\033[K  %-13s running, %.1f s", m->label, el);
    }
    fflush(stderr);
    m->shown = true;
    m->last_s = now;
}

void st_meter_tick(st_meter *m)
{
    if (!m->on) return;
    double now = mono_s();
    if (now - m->t0_s < m->show_after_s || (m->shown && now - m->last_s < REDRAW_EVERY_S)) return;
    draw(m, now);
}

void st_meter_set(st_meter *m, uint64_t done)
{
    if (done != m->done && m->on) m->count_s = mono_s();
    m->done = done;
    st_meter_tick(m);
}

void st_meter_add(st_meter *m, uint64_t rows) { st_meter_set(m, m->done + rows); }

void st_meter_end(st_meter *m)
{
    if (m->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    m->shown = false;
}
