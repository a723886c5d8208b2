/* test_clock.c: throughput shares' clock factor (compute_clock.c), table-driven, under ASan/UBSan. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "compute_clock.h"
#include "test_check.h"

#define MS UINT64_C(1000000)
#define T0 (1000 * MS) /* readings start here (0 is not a time a tracker sees) */
#define ONE GS_CLOCK_ONE

/* One step: from `at` to `until` ms after T0 (until 0: only at `at`), readings of mhz every
 * 5 ms while the work is queued, or (idle) the work seen not queued then; what the factor (ppm)
 * and the saturated clock must be after it. */
typedef struct step {
    unsigned at_ms, until_ms, mhz;
    bool idle;
    uint32_t want_ppm, want_saturated;
    int cap; /* the power cap at the readings: GS_CLOCK_CAP_UNKNOWN (0: the GPU does not say), UNCAPPED, CAPPED */
} step;

typedef struct row {
    const char *name;
    uint32_t fixed_mhz;
    int n;
    step s[12];
} row;

#define IDLE(at, until, ppm, sat) {at, until, 0, true, ppm, sat, 0}
#define UNCAPPED(at, until, mhz, ppm, sat) {at, until, mhz, false, ppm, sat, GS_CLOCK_UNCAPPED}
#define CAPPED(at, until, mhz, ppm, sat) {at, until, mhz, false, ppm, sat, GS_CLOCK_CAPPED}
static const row rows[] = {
    /* a GPU that says why its clock is what it is */
    {"under the power cap: learned from capped readings only, however early", 0, 3,
     {UNCAPPED(0, 50, 1900, ONE, 0), CAPPED(55, 0, 1550, ONE, 1550), UNCAPPED(60, 100, 1900, 1225806, 1550)}},
    {"never capped (compute-bound work at its clock): factor 1 however long it runs", 0, 1, {UNCAPPED(0, 500, 1980, ONE, 0)}},
    {"set by the operator: capped readings do not move it", 1500, 1, {CAPPED(0, 100, 1600, 1066666, 1500)}},
    /* a GPU that does not say (cap unknown): settled readings */
    {"a fixed saturated clock: the factor is clock / saturated at once (the fake test's 1.2x)", 1500, 3,
     {{0, 0, 1800, false, 1200000, 1500, 0}, {5, 0, 1500, false, ONE, 1500, 0}, {10, 0, 1650, false, 1100000, 1500, 0}}},
    {"fixed: not learned from settled readings", 1500, 2,
     {{0, 0, 1980, false, 1320000, 1500, 0}, {5, 200, 1980, false, 1320000, 1500, 0}}},
    {"learned: time shares (1) until the work has been busy 60 ms on end", 0, 3,
     {{0, 50, 1980, false, ONE, 0, 0}, {55, 0, 1600, false, ONE, 0, 0}, {60, 0, 1500, false, ONE, 1500, 0}}},
    /* after learning 1500: a new run starts boosted (idle in between) and is charged the boost */
    {"learned, then a boosted start of the next window is charged at clock / saturated", 0, 6,
     {{0, 55, 1900, false, ONE, 0, 0}, {60, 300, 1500, false, ONE, 1500, 0}, IDLE(305, 595, ONE, 1500),
      {600, 0, 1950, false, 1300000, 1500, 0}, {605, 0, 1800, false, 1200000, 1500, 0}, {610, 0, 1500, false, ONE, 1500, 0}}},
    {"readings 100 ms apart are not one busy run (the work was not queued between them)", 0, 3,
     {{0, 0, 1600, false, ONE, 0, 0}, {100, 0, 1500, false, ONE, 0, 0}, {200, 0, 1500, false, ONE, 0, 0}}},
    {"idle 10 ms in between: the next run starts over (not settled 60 ms after the first)", 0, 3,
     {{0, 50, 1500, false, ONE, 0, 0}, IDLE(52, 62, ONE, 0), {65, 120, 1500, false, ONE, 0, 0}}},
    {"a synchronize (the work seen not queued once) does not end the run", 0, 4,
     {{0, 30, 1500, false, ONE, 0, 0}, IDLE(32, 0, ONE, 0), {35, 55, 1500, false, ONE, 0, 0}, {60, 0, 1500, false, ONE, 1500, 0}}},
    {"learning is a slow average: one settled reading moves it by an eighth", 0, 3,
     {{0, 55, 1700, false, ONE, 0, 0}, {60, 0, 1500, false, ONE, 1500, 0}, {65, 0, 1580, false, 1046357, 1510, 0}}},
    {"the factor is bounded to [1/4, 4]", 400, 2, {{0, 0, 2000, false, 4 * ONE, 400, 0}, {5, 0, 50, false, ONE / 4, 400, 0}}},
    {"a reading of 0 MHz is not a clock: the factor stays", 1000, 2,
     {{0, 0, 1500, false, 1500000, 1000, 0}, {5, 0, 0, false, 1500000, 1000, 0}}},
};

static void run_row(const row *r)
{
    gs_clock_track t;
    gs_clock_track_init(&t, r->fixed_mhz);
    for (int i = 0; i < r->n; i++) {
        const step *s = &r->s[i];
        uint32_t f = t.factor_ppm;
        unsigned until = s->until_ms > s->at_ms ? s->until_ms : s->at_ms;
        for (unsigned at = s->at_ms; at <= until; at += 5) {
            uint64_t now = T0 + at * MS;
            if (s->idle)
                gs_clock_track_idle(&t, now);
            else
                f = gs_clock_track_reading(&t, now, s->mhz, s->cap);
        }
        /* the factor to within 1 ppm (integer division) */
        check(f + 1 >= s->want_ppm && f <= s->want_ppm + 1 && t.saturated_mhz == s->want_saturated,
              "%s: step %d (%u-%u ms, %u MHz%s): factor %u ppm, saturated %u MHz; want %u ppm, %u MHz", r->name, i,
              s->at_ms, until, s->mhz, s->idle ? ", idle" : "", f, t.saturated_mhz, s->want_ppm, s->want_saturated);
    }
}

static void t_rows(void)
{
    int n = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < n; i++)
        run_row(&rows[i]);
}

/* Due: at once when a busy run starts, then every GS_CLOCK_EVERY_NS. */
static void t_due(void)
{
    gs_clock_track t;
    gs_clock_track_init(&t, 0);
    check(gs_clock_track_due(&t, T0), "a first reading is due");
    (void)gs_clock_track_reading(&t, T0, 1500, GS_CLOCK_CAP_UNKNOWN);
    check(!gs_clock_track_due(&t, T0 + GS_CLOCK_EVERY_NS - 1), "not due before the spacing");
    check(gs_clock_track_due(&t, T0 + GS_CLOCK_EVERY_NS), "due after the spacing");
    gs_clock_track_idle(&t, T0 + MS);
    check(!gs_clock_track_due(&t, T0 + MS + 1), "one sight of an empty queue (a synchronize): not at once");
    gs_clock_track_idle(&t, T0 + MS + GS_CLOCK_IDLE_NS);
    check(gs_clock_track_due(&t, T0 + MS + GS_CLOCK_IDLE_NS + 1), "after an idle GPU, a new busy run reads at once");
}

int main(void)
{
    /* one program, both parts: run_scenario runs every entry of the name */
    static const test_scenario parts[] = {{"test_clock", t_rows}, {"test_clock", t_due}};
    scenario = parts[0].name;
    return run_scenario(parts, sizeof parts / sizeof parts[0]);
}
