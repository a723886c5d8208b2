/*
 * gs_compute.h: the compute governor (compute.c and its parts: compute_state.h lists them) as
 * the launch hooks see it (launch.c, graph.c). Design: COMPUTE.md.
 *
 * Every launch path calls gs_compute_enter before the driver's launch and gs_compute_leave
 * after it, with the stream the work goes to. When no device of the process is governed
 * (no compute limit, no priority) enter returns after one load and leave does nothing.
 */
#ifndef GS_COMPUTE_H
#define GS_COMPUTE_H

#include <stdbool.h>

#include "gs_shim.h"

/* What enter found out, for leave. */
typedef struct gs_gate {
    int dev;       /* -1: not governed, leave does nothing */
    CUcontext ctx; /* the calling thread's context */
    bool sample;   /* record a marker event after the launch */
    bool counted;  /* counted as a measured launch in enter (taken back if the launch fails) */
    bool credit;   /* counted on the thread's credit (compute_gate.c: credit_go) */
    int line;      /* when sampling: the stream's timeline in the device's state */
    int counted_line; /* the line it was counted on; -1: unlined */
    bool ptsz;     /* per-thread default stream semantics for a NULL stream */
} gs_gate;

/* Before a launch on stream s: waits (sleeps) while the process is past its share of the
 * current device's time or a higher-priority process has it. Never fails. */
void gs_compute_enter(gs_gate *g, CUstream s, bool ptsz);
/* What leave does beyond the common case (below). */
void gs_compute_leave_rest(const gs_gate *g, CUstream s, CUresult r);
/* After the launch: r is its result (only a successful launch is counted). Inline: a launch
 * that went through the fast path and succeeded needs nothing more (it was counted in enter),
 * and a call into compute_gate.c would be one more cold code line per launch. */
static inline void gs_compute_leave(const gs_gate *g, CUstream s, CUresult r)
{
    if (g->dev >= 0 && (r != CUDA_SUCCESS || !g->counted || g->sample))
        gs_compute_leave_rest(g, s, r);
}

#endif /* GS_COMPUTE_H */
