/*
 * compute_clock.h: throughput-true shares (COMPUTE.md, "Throughput shares"), the pure part: from
 * readings of the GPU's SM clock, taken at a low rate while the process's work is queued, the
 * factor that weights its busy time: the clock it ran at over the clock the work holds when it
 * runs unlimited (the saturated clock). A power-capped GPU left idle between a limited
 * process's windows clocks higher at the start of each window than it could sustain, so a share
 * of GPU time buys more than that share of the program's unlimited throughput; charging busy
 * time at clock / saturated clock makes the budget a share of the work instead.
 *
 * The saturated clock is learned from the readings taken while the GPU's power cap holds the
 * clock (NVML's SW power cap reason: the clock is then what the power budget sustains under
 * this work, as it is all the time when the work runs unlimited); on a GPU that does not say
 * why its clock is what it is, from the readings taken once the work has kept the GPU busy for
 * GS_CLOCK_SETTLE_NS on end. Work that never reaches the power cap runs at the clock it would
 * run at unlimited: its factor stays 1. The operator may set the saturated clock instead
 * (GPUSHARE_COMPUTE_CLOCK). Until it is known the factor is 1: time shares. Tested by tests/test_clock.c; read and applied by compute_clock_read.c.
 */
#ifndef GS_COMPUTE_CLOCK_H
#define GS_COMPUTE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define GS_CLOCK_ONE 1000000u                 /* a factor of 1, in parts per million */
#define GS_CLOCK_EVERY_NS UINT64_C(5000000)   /* a reading at most every 5 ms (an NVML call: not per launch) */
/* without power-cap reasons: busy this long on end, the clock is taken as the saturated one
 * (short enough that a 10% window of 100 ms has settled readings; a clock still falling then
 * makes shares err high, as time does) */
#define GS_CLOCK_SETTLE_NS UINT64_C(60000000)
/* readings further apart than this do not continue one busy run (the process was not reading:
 * its work was not queued in between) */
#define GS_CLOCK_GAP_NS (3 * GS_CLOCK_EVERY_NS)
/* the work seen not queued over this long ends a busy run (the GPU idled: it may boost); a
 * shorter gap, a synchronize between launches, does not */
#define GS_CLOCK_IDLE_NS UINT64_C(5000000)

typedef struct gs_clock_track {
    uint32_t saturated_mhz; /* the reference; 0: not known yet (factor 1) */
    bool fixed;             /* set by the operator: not learned */
    uint64_t run_from;      /* the first reading of the current busy run; 0: none (idle) */
    uint64_t last_at;       /* the latest reading */
    uint64_t idle_from, idle_last; /* the first and latest sight of the work not queued since the
                                    * latest reading; 0: none */
    uint32_t factor_ppm;    /* the latest factor */
} gs_clock_track;

/* A tracker with a saturated clock set by the operator (mhz > 0) or to be learned (0). */
void gs_clock_track_init(gs_clock_track *t, uint32_t fixed_mhz);
/* Whether a reading is due at `now` while the work is queued (busy): every GS_CLOCK_EVERY_NS,
 * and at once when a busy run starts. */
bool gs_clock_track_due(const gs_clock_track *t, uint64_t now);
/* The process's work is not queued at `now` (seen over GS_CLOCK_IDLE_NS, the busy run has ended). */
void gs_clock_track_idle(gs_clock_track *t, uint64_t now);
/* Whether the power cap held the clock at a reading (GS_CLOCK_CAP_UNKNOWN: the GPU does not say). */
enum { GS_CLOCK_CAP_UNKNOWN = 0, GS_CLOCK_UNCAPPED, GS_CLOCK_CAPPED };
/* A reading of mhz at `now` while the work was queued; returns the factor for busy time from
 * now on (clock / saturated clock, GS_CLOCK_ONE while the saturated clock is unknown; bounded
 * to [1/4, 4]). */
uint32_t gs_clock_track_reading(gs_clock_track *t, uint64_t now, uint32_t mhz, int capped);

#endif /* GS_COMPUTE_CLOCK_H */
