/*
 * context.c: context memory, measured when a context is made (cuCtxCreate*, and the
 * first retain of a device's primary context), counted as kind CONTEXT, and given back
 * with everything the context owned when it is destroyed (cuCtxDestroy, the last primary
 * release, a primary reset).
 *
 * How it is measured, best first:
 *   1. NVML's per-process usage for our pid on the device (nvmlDeviceGetComputeRunningProcesses_v3)
 *      minus what we already count there: exact, and blind to other processes.
 *   2. NVML's device-wide used memory before and after (other processes' allocations in
 *      between would be counted; used in containers whose pids NVML cannot see).
 *   3. cuMemGetInfo before and after, when a context on the same device was current
 *      before (no NVML at all).
 * A context that would pass the limit is destroyed (released) and the call fails with
 * CUDA_ERROR_OUT_OF_MEMORY, as on a device that small.
 * In sm-partition mode each hook first offers the call to partition.c, which makes green
 * contexts instead (and counts them with gs_ctx_count).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "context.h"
#include "hooks.h"
#include "log.h"
#include "partition.h"
#include "state.h"
#include "track.h"

static struct {
    pthread_mutex_t primary_lock; /* retain/release/reset of primary contexts */
    CUcontext primary[GS_REGION_MAX_DEVICES];
    atomic_bool unmeasured_logged;
} C = {.primary_lock = PTHREAD_MUTEX_INITIALIZER};

static bool nvml_device(CUdevice dev, nvmlDevice_t *out)
{
    const gs_nvml_fns *N = gs_nvml_inited();
    const gs_real_fns *R = gs_real();
    CUuuid u;
    char uuid[64];
    if (N == NULL || R->cuDeviceGetUuid_v2 == NULL || R->cuDeviceGetUuid_v2(&u, dev) != CUDA_SUCCESS)
        return false;
    gs_uuid_string(&u, uuid, sizeof uuid);
    if (N->nvmlDeviceGetHandleByUUID(uuid, out) == NVML_SUCCESS)
        return true;
    /* a MIG device: the same 16 bytes under NVML's MIG- prefix */
    uuid[0] = 'M', uuid[1] = 'I', uuid[2] = 'G';
    return N->nvmlDeviceGetHandleByUUID(uuid, out) == NVML_SUCCESS;
}

/* This process's usage on the device as NVML sees it; false when NVML does not list us. */
static bool nvml_self_used(nvmlDevice_t d, uint64_t *used)
{
    const gs_nvml_fns *N = gs_nvml_inited();
    nvmlProcessInfo_t infos[64];
    unsigned int n = 64;
    if (N == NULL || N->nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos) != NVML_SUCCESS)
        return false;
    unsigned int pid = (unsigned int)getpid();
    for (unsigned int i = 0; i < n; i++) {
        if (infos[i].pid == pid) {
            *used = infos[i].usedGpuMemory;
            return true;
        }
    }
    return false;
}

static bool nvml_device_used(nvmlDevice_t d, uint64_t *used)
{
    const gs_nvml_fns *N = gs_nvml_inited();
    nvmlMemory_t m;
    if (N == NULL || N->nvmlDeviceGetMemoryInfo(d, &m) != NVML_SUCCESS)
        return false;
    *used = m.used;
    return true;
}

/* What we could read before the context was made. */
typedef gs_ctx_before before;

gs_ctx_before gs_ctx_measure_before(CUdevice dev)
{
    before b = {0};
    if (nvml_device(dev, &b.nd))
        b.have_nvml = nvml_device_used(b.nd, &b.nvml_used);
    size_t total;
    if (gs_current_device() == (int)dev && gs_real()->cuMemGetInfo_v2(&b.free, &total) == CUDA_SUCCESS)
        b.have_free = true;
    return b;
}

/* Bytes the new context took; ctx must be current. */
static uint64_t measure_after(CUdevice dev, const before *b)
{
    nvmlDevice_t nd;
    uint64_t used;
    if (nvml_device(dev, &nd) && nvml_self_used(nd, &used)) {
        gs_region_usage self = {0};
        (void)gs_region_usage_self((uint32_t)dev, &self);
        return used > self.device_bytes ? used - self.device_bytes : 0;
    }
    if (b->have_nvml && nvml_device_used(b->nd, &used) && used > b->nvml_used)
        return used - b->nvml_used;
    size_t f, t;
    if (b->have_free && gs_real()->cuMemGetInfo_v2(&f, &t) == CUDA_SUCCESS && b->free > f)
        return b->free - f;
    if (!atomic_exchange(&C.unmeasured_logged, true))
        gs_log(GS_LOG_WARN, "cannot measure context memory on device %d (no NVML view of this process); "
                            "contexts are not counted", (int)dev);
    return 0;
}

/* Counts a new context; false when it passes the limit (the caller undoes it). */
bool gs_ctx_count(CUcontext ctx, CUdevice dev, const before *b)
{
    if (!gs_dev_ok((int)dev))
        return true;
    uint64_t bytes = measure_after(dev, b);
    gs_region_reservation r;
    int st = gs_reserve((int)dev, GS_REGION_KIND_CONTEXT, bytes, &r);
    if (st == 1)
        return false;
    if (st == 0) {
        gs_commit(&r);
        gs_track_entry e = {.dev = (int)dev, .kind = GS_REGION_KIND_CONTEXT, .bytes = bytes, .ctx = ctx};
        if (!gs_track_put(GS_SPACE_CTX, (uint64_t)(uintptr_t)ctx, &e))
            gs_release((int)dev, GS_REGION_KIND_CONTEXT, bytes);
    }
    gs_log(GS_LOG_DEBUG, "context on device %d: %llu bytes", (int)dev, (unsigned long long)bytes);
    return true;
}

/* A cuCtxCreate* in progress: partition.c's answer, or what was read before the driver's call. */
typedef struct creating {
    bool done;    /* sm-partition mode made (or refused) it: r */
    bool counted; /* the region is open: measure and count the new context */
    CUresult r;
    before b;
} creating;

static creating create_begin(CUcontext *pctx, CUdevice dev)
{
    creating c = {0};
    c.done = gs_partition_ctx_create(pctx, dev, &c.r);
    c.counted = !c.done && gs_ready();
    if (c.counted)
        c.b = gs_ctx_measure_before(dev);
    return c;
}

/* The driver answered r; cuCtxCreate* leave the new context current. */
static CUresult create_end(const creating *c, CUresult r, CUcontext *pctx, CUdevice dev)
{
    if (!c->counted || r != CUDA_SUCCESS || pctx == NULL || gs_ctx_count(*pctx, dev, &c->b))
        return r;
    (void)gs_real()->cuCtxDestroy_v2(*pctx);
    *pctx = NULL;
    return CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult gs_ctx_create(gs_fn_cuCtxCreate_v2 real, CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    creating c = create_begin(pctx, dev);
    return c.done ? c.r : create_end(&c, real(pctx, flags, dev), pctx, dev);
}

CUresult gs_ctx_create_v3(gs_fn_cuCtxCreate_v3 real, CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                          unsigned int flags, CUdevice dev)
{
    creating c = create_begin(pctx, dev);
    return c.done ? c.r : create_end(&c, real(pctx, paramsArray, numParams, flags, dev), pctx, dev);
}

CUresult gs_ctx_create_v4(gs_fn_cuCtxCreate_v4 real, CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                          unsigned int flags, CUdevice dev)
{
    creating c = create_begin(pctx, dev);
    return c.done ? c.r : create_end(&c, real(pctx, ctxCreateParams, flags, dev), pctx, dev);
}

/* The driver frees everything a destroyed context owned: so do we. */
CUresult gs_ctx_destroy(gs_fn_cuCtxDestroy_v2 real, CUcontext ctx)
{
    CUresult r;
    if (gs_partition_ctx_destroy(ctx, &r))
        return r;
    r = real(ctx);
    if (r == CUDA_SUCCESS)
        gs_track_drop_ctx(ctx);
    return r;
}

static bool primary_active(CUdevice dev)
{
    unsigned int flags = 0;
    int active = 0;
    const gs_real_fns *R = gs_real();
    return R->cuDevicePrimaryCtxGetState != NULL && R->cuDevicePrimaryCtxGetState(dev, &flags, &active) == CUDA_SUCCESS &&
           active != 0;
}

CUresult gs_ctx_primary_retain(gs_fn_cuDevicePrimaryCtxRetain real, CUcontext *pctx, CUdevice dev)
{
    const gs_real_fns *R = gs_real();
    CUresult pr;
    if (gs_partition_primary_retain(pctx, dev, &pr))
        return pr;
    if (!gs_ready() || dev < 0 || dev >= (CUdevice)GS_REGION_MAX_DEVICES)
        return real(pctx, dev);
    pthread_mutex_lock(&C.primary_lock);
    bool was_active = primary_active(dev);
    before b = was_active ? (before){0} : gs_ctx_measure_before(dev);
    CUresult r = real(pctx, dev);
    if (r == CUDA_SUCCESS && !was_active && pctx != NULL) {
        C.primary[dev] = *pctx;
        /* Measure with it current (cuMemGetInfo and the fakes need a current context). */
        bool pushed = R->cuCtxPushCurrent_v2(*pctx) == CUDA_SUCCESS;
        bool ok = gs_ctx_count(*pctx, dev, &b);
        CUcontext popped;
        if (pushed)
            (void)R->cuCtxPopCurrent_v2(&popped);
        if (!ok) {
            (void)R->cuDevicePrimaryCtxRelease_v2(dev);
            *pctx = NULL;
            r = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    pthread_mutex_unlock(&C.primary_lock);
    return r;
}

/* After a release or reset: once the primary context is inactive, what it held is gone. */
static CUresult primary_down(CUresult (*fn)(CUdevice), CUdevice dev, bool reset)
{
    CUresult pr;
    if (gs_partition_primary_down(dev, reset, &pr))
        return pr;
    if (dev < 0 || dev >= (CUdevice)GS_REGION_MAX_DEVICES)
        return fn(dev);
    pthread_mutex_lock(&C.primary_lock);
    CUresult r = fn(dev);
    if (r == CUDA_SUCCESS && C.primary[dev] != NULL && !primary_active(dev)) {
        gs_track_drop_ctx(C.primary[dev]);
        C.primary[dev] = NULL;
    }
    pthread_mutex_unlock(&C.primary_lock);
    return r;
}

CUresult gs_ctx_primary_release(gs_fn_cuDevicePrimaryCtxRelease_v2 real, CUdevice dev)
{
    return primary_down(real, dev, false);
}

CUresult gs_ctx_primary_reset(gs_fn_cuDevicePrimaryCtxReset_v2 real, CUdevice dev)
{
    return primary_down(real, dev, true);
}
