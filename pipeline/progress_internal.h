/*
 * progress_internal.h: the one progress line strata draws on a terminal
 * (`strata gen`, every step of `strata run`). Not installed.
 *
 * A meter counts rows done against rows expected and redraws a single
 * stderr line, "  label [#####.....]  45%  4,512,000 / 10,000,000 rows
 * 3.1 M rows/s  ETA 2 s" (or "running, 4.2 s" for work that counts no
 * rows), at most ten times a second and only once the
 * work has run for half a second, so short steps stay silent and a
 * redirected stderr never gets control characters (the caller passes
 * on = false when stderr is not a terminal or --quiet was given). The
 * total may grow while the work runs (st_meter_expect), for steps that
 * learn their inputs' sizes one table at a time. A meter is not thread
 * safe: callers that count from several threads hold one lock around it
 * (pipeline/util.c's st_progress_add).
 */
#ifndef STRATA_PROGRESS_INTERNAL_H
#define STRATA_PROGRESS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct st_meter {
    const char *label;    /* borrowed for the meter's life */
    uint64_t done;        /* rows done so far */
    uint64_t total;       /* rows expected; 0 = not known yet (no bar, no ETA) */
    double t0_s, last_s;  /* start and last redraw, monotonic seconds */
    double show_after_s;  /* no line before this many seconds (0.5; STRATA_PROGRESS_DELAY) */
    double count_s;       /* when `done` last grew: the rate is done / (count_s - t0_s) */
    bool on;              /* draw at all */
    bool shown;           /* a line is on the screen (st_meter_end clears it) */
} st_meter;

/* True when stderr is a terminal: the default for `on`. */
bool st_meter_tty(void);

void st_meter_start(st_meter *m, const char *label, uint64_t total, bool on);
/* Adds `rows` to the total expected. */
void st_meter_expect(st_meter *m, uint64_t rows);
/* Sets rows done to `done` / adds `rows` to them, redrawing when due. */
void st_meter_set(st_meter *m, uint64_t done);
void st_meter_add(st_meter *m, uint64_t rows);
/* Redraws when due (the same numbers, a later elapsed time): a ticker
 * calls it while a step works without counting rows. */
void st_meter_tick(st_meter *m);
/* Erases the line if one was drawn. */
void st_meter_end(st_meter *m);

#endif
