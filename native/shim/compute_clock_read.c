/*
 * compute_clock_read.c: throughput-true shares (COMPUTE.md, "Throughput shares"), the imperative
 * part: which devices weight their busy time by the SM clock, the NVML reading at a low rate
 * (GS_CLOCK_EVERY_NS while the process's work is queued, after a reap: never per launch), and
 * the factor charge_busy (compute_state.h) applies. The factor itself is compute_clock.c's.
 *
 * They apply to a hard limit under 100% with GPUSHARE_COMPUTE_ACCOUNTING=throughput (the
 * default; its window binds it alone too: compute_windows.c) or gpu: a share process's window is everything nobody holds, and a process without a
 * limit has the whole GPU, so weighting their time would only hold them back on an idle GPU.
 * Without NVML, or a clock it cannot read, the limit is a share of GPU time, said once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "compute_state.h"
#include "log.h"
#include "state.h"

/* Why the GPU's clock is what it is (NVML's clock event reasons), resolved apart from the NVML
 * table (gs_nvml: every member or none) so that an NVML without it still reads clocks;
 * "Throttle" is the name every NVML has (12.2 added the "Event" one beside it). NULL: none. */
typedef nvmlReturn_t (*reasons_fn)(nvmlDevice_t, unsigned long long *);
static reasons_fn reasons_resolve(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD);
    reasons_fn f = h != NULL ? (reasons_fn)gs_real_dlsym(h, "nvmlDeviceGetCurrentClocksThrottleReasons") : NULL;
    if (h != NULL)
        dlclose(h); /* NOLOAD: a reference of our own, dropped; the library stays (gs_nvml holds it) */
    return f;
}

/* GS_CLOCK_CAPPED when the SW power cap holds the clock now, GS_CLOCK_UNCAPPED when not,
 * GS_CLOCK_CAP_UNKNOWN when the GPU does not say (then it is not asked again). */
static int power_capped(cdev *d)
{
    unsigned long long why = 0;
    if (d->reasons == NULL)
        return GS_CLOCK_CAP_UNKNOWN;
    nvmlReturn_t r = d->reasons(d->nvml, &why);
    if (r != NVML_SUCCESS) {
        d->reasons = NULL; /* not supported (or gone): settled readings from now on */
        return GS_CLOCK_CAP_UNKNOWN;
    }
    return (why & nvmlClocksEventReasonSwPowerCap) != 0 ? GS_CLOCK_CAPPED : GS_CLOCK_UNCAPPED;
}

/* Whether the library's NVML table can read the clock of the GPU with this UUID: its handle. */
static nvmlReturn_t open_clock(const char *uuid, nvmlDevice_t *h, unsigned *mhz)
{
    const gs_nvml_fns *f = gs_nvml_inited();
    if (f == NULL)
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    if (uuid == NULL)
        return NVML_ERROR_NOT_FOUND;
    nvmlReturn_t r = f->nvmlDeviceGetHandleByUUID(uuid, h);
    if (r != NVML_SUCCESS)
        return r;
    return f->nvmlDeviceGetClockInfo(*h, NVML_CLOCK_SM, mhz);
}

static const char *nvml_why(nvmlReturn_t r)
{
    switch (r) {
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "no usable NVML";
    case NVML_ERROR_NOT_SUPPORTED: return "not supported";
    case NVML_ERROR_NOT_FOUND: return "no NVML device with its UUID";
    case NVML_ERROR_NO_PERMISSION: return "no permission";
    case NVML_ERROR_GPU_IS_LOST: return "the GPU is lost";
    default: return "NVML error";
    }
}

void gs_clock_setup(cdev *d, int dev, const char *uuid)
{
    d->clock_on = false;
    atomic_store(&d->clock_ppm, GS_CLOCK_ONE);
    if (gs_cfg.compute_accounting == GS_ACCOUNT_TIME || d->policy != GS_REGION_POLICY_HARD || d->share_ppm >= PPM)
        return;
    unsigned mhz = 0;
    nvmlReturn_t r = open_clock(uuid, &d->nvml, &mhz);
    if (r != NVML_SUCCESS || mhz == 0) {
        gs_log(GS_LOG_WARN, "device %d: the SM clock cannot be read (%s, %d): its compute limit is a share of GPU time, "
                            "not of throughput (COMPUTE.md)", dev, r != NVML_SUCCESS ? nvml_why(r) : "0 MHz", (int)r);
        return;
    }
    gs_clock_track_init(&d->clock, gs_cfg.compute_clock_mhz);
    d->reasons = reasons_resolve();
    unsigned long long why = 0;
    if (d->reasons != NULL && d->reasons(d->nvml, &why) != NVML_SUCCESS)
        d->reasons = NULL;
    d->clock_on = true;
    if (gs_cfg.compute_clock_mhz > 0)
        gs_log(GS_LOG_INFO, "device %d: throughput shares: SM clock %u MHz now, saturated clock %u MHz (GPUSHARE_COMPUTE_CLOCK)",
               dev, mhz, gs_cfg.compute_clock_mhz);
    else
        gs_log(GS_LOG_INFO, "device %d: throughput shares: SM clock %u MHz now, saturated clock learned as the work runs (%s)",
               dev, mhz, d->reasons != NULL ? "from readings under the power cap" : "no clock reasons: from readings 60 ms into a busy run");
}

void gs_clock_sample(cdev *d, int dev, uint64_t now)
{
    if (!d->clock_on)
        return;
    if (atomic_load(&d->launches) <= atomic_load(&d->done)) {
        gs_clock_track_idle(&d->clock, now); /* nothing queued: the busy run has ended */
        return;
    }
    if (!gs_clock_track_due(&d->clock, now))
        return;
    unsigned mhz = 0;
    const gs_nvml_fns *f = gs_nvml_inited(); /* non-NULL: setup read a clock through it */
    nvmlReturn_t r = f != NULL ? f->nvmlDeviceGetClockInfo(d->nvml, NVML_CLOCK_SM, &mhz) : NVML_ERROR_LIBRARY_NOT_FOUND;
    if (r != NVML_SUCCESS) {
        /* a clock that could be read and no longer can (a lost GPU, a reset): time from now on */
        d->clock_on = false;
        atomic_store(&d->clock_ppm, GS_CLOCK_ONE);
        gs_log(GS_LOG_WARN, "device %d: the SM clock cannot be read any more (%s, %d): its compute limit is a share of "
                            "GPU time from now on", dev, nvml_why(r), (int)r);
        return;
    }
    atomic_store_explicit(&d->clock_ppm, gs_clock_track_reading(&d->clock, now, mhz, d->clock.fixed ? GS_CLOCK_CAP_UNKNOWN : power_capped(d)), memory_order_relaxed);
}
