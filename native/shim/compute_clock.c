/*
 * compute_clock.c: the clock factor of throughput-true shares, pure (compute_clock.h says what
 * and why; COMPUTE.md, "Throughput shares", the numbers). Table test: tests/test_clock.c.
 */
#include "compute_clock.h"

void gs_clock_track_init(gs_clock_track *t, uint32_t fixed_mhz)
{
    *t = (gs_clock_track){.saturated_mhz = fixed_mhz, .fixed = fixed_mhz > 0, .factor_ppm = GS_CLOCK_ONE};
}

/* Whether the work was seen not queued long enough that the GPU idled: the busy run has ended. */
static bool run_ended(const gs_clock_track *t)
{
    return t->idle_from != 0 && t->idle_last - t->idle_from >= GS_CLOCK_IDLE_NS;
}

bool gs_clock_track_due(const gs_clock_track *t, uint64_t now)
{
    return t->run_from == 0 || run_ended(t) || now < t->last_at || now - t->last_at >= GS_CLOCK_EVERY_NS;
}

void gs_clock_track_idle(gs_clock_track *t, uint64_t now)
{
    if (t->idle_from == 0)
        t->idle_from = now;
    t->idle_last = now;
}

uint32_t gs_clock_track_reading(gs_clock_track *t, uint64_t now, uint32_t mhz, int capped)
{
    if (t->run_from == 0 || run_ended(t) || now < t->last_at || now - t->last_at > GS_CLOCK_GAP_NS)
        t->run_from = now != 0 ? now : 1; /* a new busy run */
    t->idle_from = t->idle_last = 0;
    t->last_at = now;
    if (mhz == 0)
        return t->factor_ppm; /* not a clock: keep the latest factor */
    bool saturated = capped == GS_CLOCK_CAPPED || (capped == GS_CLOCK_CAP_UNKNOWN && now - t->run_from >= GS_CLOCK_SETTLE_NS);
    if (!t->fixed && saturated)
        /* what the GPU sustains under this work; a slow average (the power cap's control
         * wavers around it, and the GPU's temperature moves it over minutes) */
        t->saturated_mhz = t->saturated_mhz == 0 ? mhz : (uint32_t)((7 * (uint64_t)t->saturated_mhz + mhz + 4) / 8);
    if (t->saturated_mhz == 0)
        return t->factor_ppm = GS_CLOCK_ONE;
    uint64_t f = (uint64_t)mhz * GS_CLOCK_ONE / t->saturated_mhz;
    f = f < GS_CLOCK_ONE / 4 ? GS_CLOCK_ONE / 4 : f > 4 * (uint64_t)GS_CLOCK_ONE ? 4 * (uint64_t)GS_CLOCK_ONE : f;
    return t->factor_ppm = (uint32_t)f;
}
