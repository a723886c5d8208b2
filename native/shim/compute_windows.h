/*
 * compute_windows.h: the layout of a period (COMPUTE.md, "Periods and windows"), pure: from the
 * processes that want a GPU now (their share, priority and policy, as their board slots say)
 * to each one's exclusive window in the period. Every process on the GPU computes it from the
 * same board, so all agree on the windows without any message; and the windows' part of the
 * gate's decision (whether a process may launch now, how far its work may queue; a hard process
 * with throughput accounting is confined to its own window, also alone). Tested by
 * tests/test_windows.c; used by the gate (compute_precise.c).
 */
#ifndef GS_COMPUTE_WINDOWS_H
#define GS_COMPUTE_WINDOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "gs_config.h"

/* Shares are parts per million of the period. */
#define GS_WINDOWS_PPM 1000000u
/* The most holders one layout takes (a board has GS_BOARD_SLOTS <= this: asserted where it is read). */
#define GS_WINDOWS_MAX 64

/* A process that wants the GPU, as the layout sees it. */
typedef struct gs_window_holder {
    uint32_t share_ppm; /* its share of the GPU */
    int32_t priority;   /* gs_priority: higher levels are laid out first */
    bool shares;        /* policy `share`: splits what its level leaves, with the others of its
                         * policy there, in proportion to their shares; false: `hard`, a window of
                         * share x period as far as the period lasts */
} gs_window_holder;

/* A window: [off, off + len) ns after the period's start; len 0: none. */
typedef struct gs_window {
    uint64_t off, len;
} gs_window;

/*
 * Lays out one period of period_ns for the n holders h (in board slot order): windows in
 * priority order, high first, and within a level in the holders' order; a hard holder gets
 * share x period as far as the period lasts, then the share holders of the level split all
 * that is left, so a lower level gets nothing while a share holder above it wants the GPU (it
 * yields). Time nobody holds is left over at the end. win[i] is h[i]'s window.
 * Example (period 1 s): hard 30% + share 30% at one level -> [0, 300 ms) and [300 ms, 1 s).
 * Returns 0, or -1 (win untouched) when n is not in [0, GS_WINDOWS_MAX].
 */
int gs_windows_lay_out(const gs_window_holder *h, int n, uint64_t period_ns, gs_window *win);

/*
 * Whether a holder is confined to its own window, even when time nobody holds is left: a hard
 * holder under 100% whose limit is a share of its throughput (GPUSHARE_COMPUTE_ACCOUNTING=
 * throughput; COMPUTE.md "What a share means"). Alone it then runs at its own unlimited speed,
 * CPU gaps and all, during share x period and not at all outside: share of its throughput
 * whatever part of the time it keeps the GPU busy. `gpu` and `time` accounting and the `share`
 * policy use time nobody holds as before.
 */
bool gs_windows_confined(const gs_window_holder *self, gs_compute_accounting accounting);

/* What the windows allow a holder at `phase` ns into a period of period_ns. */
typedef struct gs_window_gate {
    uint64_t wait; /* 0: it may launch now; else ns until it may (another's window ends, or, confined,
                    * its own next window starts) */
    uint64_t room; /* wait 0: ns from now its queued work may reach (the next window of another
                    * holder or, confined, its own window's end); UINT64_MAX: no window bounds it */
} gs_window_gate;

/*
 * The windows' part of the gate's decision (compute_precise.c decide(); the budget is not
 * here): a holder may launch when `phase` is in no other holder's window (others[0..n), disjoint)
 * and, when confined, inside its own window `own`; its queued work may then reach the start of
 * the next window of another (this period's or the next one's) and, confined, its own window's
 * end. Confined without a window (len 0) it waits for the next period (the layout may change
 * meanwhile: the caller naps and asks again).
 */
gs_window_gate gs_windows_gate(gs_window own, bool confined, const gs_window *others, int n, uint64_t phase,
                               uint64_t period_ns);

#endif /* GS_COMPUTE_WINDOWS_H */
