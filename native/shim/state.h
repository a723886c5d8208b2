/*
 * state.h: the slice this process is held to (state.c): the configuration read at load
 * time, the region opened at the first hook that needs it, the process-visible devices and
 * their limits, reservations against the limit, and the reclaimers a refusal runs first.
 */
#ifndef GS_STATE_H
#define GS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs_config.h"
#include "gs_cuda.h"
#include "gs_region.h"

extern gs_config gs_cfg; /* read once at load time, never written after */
/* Opens the region if it is not open yet (needs cuInit done); false when it cannot be
 * opened now, in which case hooks pass through without accounting. */
bool gs_ready(void);
/* gs_ready(), or when CUDA was never initialised, the devices as NVML sees them (for
 * NVML-only processes such as nvidia-smi: CUDA is not started behind their back). */
bool gs_ready_nvml(void);
/* Limit in bytes on a process-visible ordinal (0 = unlimited), after gs_ready(). */
uint64_t gs_limit(int dev);
/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from the driver's UUID bytes. */
void gs_uuid_string(const CUuuid *u, char *out, size_t len);
/* The process-visible ordinal whose device has this UUID ("GPU-..." or "MIG-...", any
 * case), or -1 (not visible to this process, or before gs_ready()). */
int gs_ordinal_of_uuid(const char *uuid);
/* The device of the calling thread's current context, or -1. */
int gs_current_device(void);
/* Whether dev may be accounted (0 <= dev < GS_REGION_MAX_DEVICES). */
bool gs_dev_ok(int dev);

/* Reserves `bytes` of `kind` on dev. Returns 0 when granted (commit or cancel r), 1 when
 * refused (the OOM line was printed unless quiet), -1 when accounting is off for dev (do
 * not commit). */
int gs_reserve_ex(int dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r, bool quiet);
static inline int gs_reserve(int dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r)
{
    return gs_reserve_ex(dev, kind, bytes, r, false);
}
void gs_commit(const gs_region_reservation *r);
void gs_cancel(const gs_region_reservation *r);
void gs_release(int dev, gs_region_kind kind, uint64_t bytes);

/* How far a reclaimer goes on a device: SETTLE notices memory given back since it was counted
 * (reads only); TRIM also asks the driver to give back what it caches for the program. */
typedef enum gs_reclaim_depth { GS_RECLAIM_SETTLE, GS_RECLAIM_TRIM } gs_reclaim_depth;
typedef void (*gs_reclaimer)(int dev, gs_reclaim_depth depth);
/* Adds a reclaimer (from a module's constructor: before any hook runs). A refusal runs them
 * all with TRIM first (gs_reserve), the slice's view with SETTLE (gs_slice_view). */
void gs_reclaimer_register(gs_reclaimer fn);
/* Runs every registered reclaimer on dev. */
void gs_reclaim(int dev, gs_reclaim_depth depth);

#endif /* GS_STATE_H */
