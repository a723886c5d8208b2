/*
 * Why one file of over 400 lines: the green context that stands in for the primary context is
 * one refcounted state machine (retain, release, reset, get-state, create, destroy); its
 * transitions are read together.
 *
 * partition.c: GPUSHARE_ISOLATION=sm-partition. A device with a compute limit gets a fixed
 * set of SMs (limit % x SM count, rounded to the hardware's group size) through a green
 * context, and every context the program makes on that device is one of ours:
 *
 *   - cuDevicePrimaryCtxRetain hands out the CUcontext of one green context per device
 *     (refcounted like the primary context it stands in for: the last Release destroys it
 *     and what it owned, Reset destroys it at once), so the CUDA runtime and PyTorch, which
 *     retain the primary context and make it current, run their kernels in the partition;
 *   - cuDevicePrimaryCtxGetState reports that stand-in as the primary context's state;
 *   - cuCtxCreate* make a new green context from the same partition, cuCtxDestroy* destroy it.
 *
 * Where the partition cannot be made (driver older than 12.4, compute capability < 9.0, the
 * driver refusing the split), the first context-making call prints one line saying why, and
 * every context-making call on that device fails with CUDA_ERROR_NOT_SUPPORTED: a slice that
 * asked for SMs is never silently given the whole GPU. PARTITION.md has the design.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "hooks.h"
#include "log.h"
#include "partition.h"
#include "partition_round.h"
#include "state.h"
#include "track.h"

#define GS_PARTITION_MIN_DRIVER 12040 /* green contexts: CUDA 12.4 */
#define GS_PARTITION_MIN_CC_MAJOR 9   /* Hopper */

typedef enum { DEV_UNKNOWN = 0, DEV_NONE, DEV_PARTITION, DEV_REFUSED } dev_state;

/* A green context made by cuCtxCreate* (the primary's lives in part_dev). */
typedef struct created {
    CUcontext ctx;
    CUgreenCtx green;
    int dev;
    struct created *next;
} created;

typedef struct part_dev {
    dev_state state;
    unsigned int granted, total; /* SMs of the partition, of the device */
    CUdevResourceDesc desc;      /* the partition's descriptor (lives until exit, as in CUDA) */
    /* the primary context's stand-in */
    CUgreenCtx green;
    CUcontext ctx;
    int refs;
    bool pinned;          /* one reference held for the driver's own primary context (below) */
    CUcontext real_primary; /* the driver's primary context, when seen */
} part_dev;

static struct {
    pthread_mutex_t lock;
    part_dev dev[GS_REGION_MAX_DEVICES];
    created *made;
    /* The runtime may set its primary context current again whenever it finds another one
     * current (ours), so each device's swap is kept here for a lock-free answer: the driver's
     * primary (fixed per device) -> our stand-in (cleared first when it is destroyed). */
    _Atomic(CUcontext) fast_from[GS_REGION_MAX_DEVICES], fast_to[GS_REGION_MAX_DEVICES];
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* P.lock. Every caller is a hook's policy, so the thread is inside the recursion guard:
 * driver calls we make while holding it (and any of our hooks they reach) pass straight
 * through, never back into this lock. */
static void enter(void)
{
    pthread_mutex_lock(&P.lock);
}

static void leave(void)
{
    pthread_mutex_unlock(&P.lock);
}

static const char *err_name(CUresult r)
{
    static const struct {
        CUresult r;
        const char *name;
    } names[] = {
#define GS_ERR_NAME(name, value) {name, #name},
        GS_CUDA_RESULT_LIST(GS_ERR_NAME)
#undef GS_ERR_NAME
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].r == r)
            return names[i].name;
    return "an unknown CUresult";
}

/* One SM group of at least `want` SMs out of `all`, as the driver rounds it. */
static bool split_one(const CUdevResource *all, unsigned int want, CUdevResource *out)
{
    unsigned int n = 1;
    CUdevResource rest;
    return gs_real()->cuDevSmResourceSplitByCount(out, &n, all, &rest, 0, want) == CUDA_SUCCESS && n == 1;
}

/*
 * GPUSHARE_SM_OFFSET: the partition starts `offset` SMs into the driver's split order
 * instead of at its first SM, so processes given disjoint offsets (by whoever places them
 * on the GPU) get disjoint SMs. The device is split into its smallest groups; the partition
 * is `target / g` consecutive groups from group `offset / g` (*groups: calloc'ed).
 */
static bool place(const CUdevResource *all, unsigned int g, unsigned int offset, unsigned int target,
                  CUdevResource **groups, unsigned int *first, unsigned int *count, char *why, size_t len)
{
    if (g == 0 || offset % g != 0 || target % g != 0 || offset + target > all->sm.smCount) {
        (void)snprintf(why, len,
                       "GPUSHARE_SM_OFFSET=%u with %u SMs: both must be multiples of the %u-SM group and fit in %u SMs",
                       offset, target, g, all->sm.smCount);
        return false;
    }
    unsigned int n = all->sm.smCount / g;
    CUdevResource rest;
    *groups = calloc(n, sizeof **groups);
    CUresult r = *groups == NULL ? CUDA_ERROR_OUT_OF_MEMORY
                                 : gs_real()->cuDevSmResourceSplitByCount(*groups, &n, all, &rest, 0, g);
    if (r != CUDA_SUCCESS || n < (offset + target) / g) {
        (void)snprintf(why, len, "GPUSHARE_SM_OFFSET=%u: the driver splits %u SMs into %u groups of %u (%s)", offset,
                       all->sm.smCount, r == CUDA_SUCCESS ? n : 0, g, err_name(r));
        free(*groups);
        *groups = NULL;
        return false;
    }
    *first = offset / g;
    *count = target / g;
    return true;
}

static void refuse(int dev, part_dev *d, const char *why)
{
    d->state = DEV_REFUSED;
    gs_log(GS_LOG_ERROR,
           "GPUSHARE_ISOLATION=sm-partition: device %d cannot be partitioned: %s; every context on it "
           "fails with CUDA_ERROR_NOT_SUPPORTED (use GPUSHARE_ISOLATION=time-slice on this GPU)",
           dev, why);
}

/* Works out dev's partition once (P.lock held). */
static void settle(int dev)
{
    part_dev *d = &P.dev[dev];
    const gs_real_fns *R = gs_real();
    char uuid[GS_CONFIG_UUID_LEN] = "", why[200];
    CUuuid u;
    if (R->cuDeviceGetUuid_v2 != NULL && R->cuDeviceGetUuid_v2(&u, (CUdevice)dev) == CUDA_SUCCESS)
        gs_uuid_string(&u, uuid, sizeof uuid);
    int pct = gs_config_compute_limit(&gs_cfg, dev, uuid[0] ? uuid : NULL);
    if (pct <= 0 || pct >= 100) {
        d->state = DEV_NONE; /* no limit, or all of it: the device as it is */
        return;
    }
    int version = 0, major = 0, minor = 0, sms = 0;
    CUresult r = R->cuDriverGetVersion == NULL ? CUDA_ERROR_NOT_FOUND : R->cuDriverGetVersion(&version);
    if (r != CUDA_SUCCESS || version < GS_PARTITION_MIN_DRIVER) {
        (void)snprintf(why, sizeof why, "green contexts need CUDA driver >= 12.4, this driver is %d.%d", version / 1000,
                       version % 1000 / 10);
        refuse(dev, d, why);
        return;
    }
    if ((r = R->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, (CUdevice)dev)) != CUDA_SUCCESS ||
        (r = R->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, (CUdevice)dev)) != CUDA_SUCCESS ||
        (r = R->cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, (CUdevice)dev)) != CUDA_SUCCESS) {
        (void)snprintf(why, sizeof why, "cuDeviceGetAttribute failed with %s", err_name(r));
        refuse(dev, d, why);
        return;
    }
    if (major < GS_PARTITION_MIN_CC_MAJOR) {
        (void)snprintf(why, sizeof why, "green-context SM partitions need compute capability >= 9.0 (Hopper), this GPU is %d.%d",
                       major, minor);
        refuse(dev, d, why);
        return;
    }
    if (R->cuDeviceGetDevResource == NULL || R->cuDevSmResourceSplitByCount == NULL ||
        R->cuDevResourceGenerateDesc == NULL || R->cuGreenCtxCreate == NULL || R->cuGreenCtxDestroy == NULL ||
        R->cuCtxFromGreenCtx == NULL) {
        refuse(dev, d, "this libcuda does not export the green-context functions");
        return;
    }
    CUdevResource all, one, two;
    memset(&all, 0, sizeof all);
    if ((r = R->cuDeviceGetDevResource((CUdevice)dev, &all, CU_DEV_RESOURCE_TYPE_SM)) != CUDA_SUCCESS) {
        (void)snprintf(why, sizeof why, "cuDeviceGetDevResource(SM) failed with %s", err_name(r));
        refuse(dev, d, why);
        return;
    }
    /* The granularity as this driver splits: the smallest group, then the step above it
     * (Hopper: 8 and 8; the CUDA 13 fields minSmPartitionSize/smCoscheduledAlignment say the
     * same, but a 12.x driver leaves them 0, and the split itself is what we will get). */
    if (!split_one(&all, 1, &one)) {
        refuse(dev, d, "cuDevSmResourceSplitByCount cannot make even the smallest SM group");
        return;
    }
    unsigned int min = one.sm.smCount;
    unsigned int step = split_one(&all, min + 1, &two) && two.sm.smCount > min ? two.sm.smCount - min : min;
    unsigned int target = gs_partition_round(pct, all.sm.smCount, min, step);
    int offset = gs_config_sm_offset(&gs_cfg, dev);
    CUdevResource group;
    CUdevResource *groups = NULL;
    unsigned int first = 0, count = 1;
    if (offset < 0) {
        if (!split_one(&all, target, &group)) {
            (void)snprintf(why, sizeof why, "cuDevSmResourceSplitByCount cannot make a group of %u of %u SMs", target,
                           all.sm.smCount);
            refuse(dev, d, why);
            return;
        }
        groups = &group;
    } else if (!place(&all, min, (unsigned int)offset, target, &groups, &first, &count, why, sizeof why)) {
        refuse(dev, d, why);
        return;
    }
    r = R->cuDevResourceGenerateDesc(&d->desc, groups + first, count);
    d->granted = 0;
    for (unsigned int i = first; i < first + count; i++)
        d->granted += groups[i].sm.smCount;
    if (groups != &group)
        free(groups);
    if (r != CUDA_SUCCESS) {
        (void)snprintf(why, sizeof why, "cuDevResourceGenerateDesc failed with %s", err_name(r));
        refuse(dev, d, why);
        return;
    }
    d->total = all.sm.smCount;
    d->state = DEV_PARTITION;
    gs_log(GS_LOG_INFO, "device %d: SM partition of %u of %u SMs (%d%% asked; groups of %u, step %u)%s", dev,
           d->granted, d->total, pct, min, step, offset >= 0 ? ", placed by GPUSHARE_SM_OFFSET" : "");
}

/* dev's state, settled on first use (P.lock held). */
static dev_state state_of(CUdevice dev)
{
    if (dev < 0 || dev >= (CUdevice)GS_REGION_MAX_DEVICES)
        return DEV_NONE;
    if (P.dev[dev].state == DEV_UNKNOWN)
        settle((int)dev);
    return P.dev[dev].state;
}

bool gs_partition_mode(void)
{
    return gs_cfg.isolation == GS_ISOLATION_SM_PARTITION;
}

/* A green context on dev's partition, its CUcontext counted as context memory. */
static CUresult make_green(int dev, CUgreenCtx *pg, CUcontext *pctx)
{
    const gs_real_fns *R = gs_real();
    bool account = gs_ready();
    gs_ctx_before b = account ? gs_ctx_measure_before((CUdevice)dev) : (gs_ctx_before){0};
    CUresult r = R->cuGreenCtxCreate(pg, P.dev[dev].desc, (CUdevice)dev, CU_GREEN_CTX_DEFAULT_STREAM);
    if (r != CUDA_SUCCESS)
        return r;
    if ((r = R->cuCtxFromGreenCtx(pctx, *pg)) != CUDA_SUCCESS) {
        (void)R->cuGreenCtxDestroy(*pg);
        return r;
    }
    if (!account)
        return CUDA_SUCCESS;
    /* Measured with it current, as context.c does for a primary context. */
    bool pushed = R->cuCtxPushCurrent_v2(*pctx) == CUDA_SUCCESS;
    bool ok = gs_ctx_count(*pctx, (CUdevice)dev, &b);
    CUcontext popped;
    if (pushed)
        (void)R->cuCtxPopCurrent_v2(&popped);
    if (!ok) {
        (void)R->cuGreenCtxDestroy(*pg);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    (void)gs_region_partition_set((uint32_t)dev, P.dev[dev].granted);
    return CUDA_SUCCESS;
}

static void destroy_green(CUgreenCtx g, CUcontext ctx)
{
    (void)gs_real()->cuGreenCtxDestroy(g);
    gs_track_drop_ctx(ctx); /* the driver freed what the context owned: so do we */
}

/* The common start of a primary/context entry point: false (lock not held) when partitioning
 * is off or dev is not one it governs, so the caller passes the call through; true with the
 * lock held and *s set otherwise. */
static bool enter_dev(CUdevice dev, dev_state *s)
{
    if (!gs_partition_mode())
        return false;
    enter();
    *s = state_of(dev);
    if (*s == DEV_NONE) {
        leave();
        return false;
    }
    return true;
}

bool gs_partition_primary_retain(CUcontext *pctx, CUdevice dev, CUresult *out)
{
    dev_state s;
    if (!enter_dev(dev, &s))
        return false;
    part_dev *d = &P.dev[dev];
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    if (s == DEV_PARTITION && pctx == NULL) {
        r = CUDA_ERROR_INVALID_VALUE;
    } else if (s == DEV_PARTITION) {
        r = d->ctx != NULL ? CUDA_SUCCESS : make_green((int)dev, &d->green, &d->ctx);
        if (r == CUDA_SUCCESS) {
            d->refs++;
            *pctx = d->ctx;
        }
        gs_log(GS_LOG_DEBUG, "primary context of device %d: green context %p of %u SMs, %d references (%d)", (int)dev,
               (void *)d->ctx, d->granted, d->refs, (int)r);
    }
    leave();
    *out = r;
    return true;
}

bool gs_partition_primary_down(CUdevice dev, bool reset, CUresult *out)
{
    dev_state s;
    if (!enter_dev(dev, &s))
        return false;
    part_dev *d = &P.dev[dev];
    CUresult r = CUDA_SUCCESS;
    if (s == DEV_REFUSED) {
        r = reset ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; /* nothing was ever retained */
    } else if (!reset && d->refs == 0) {
        r = CUDA_ERROR_INVALID_CONTEXT; /* as the driver answers a release of an inactive primary */
    } else {
        /* Reset destroys the primary context whatever its count (the count starts again). */
        d->refs = reset ? 0 : d->refs - 1;
        if (d->refs == 0 && d->ctx != NULL) {
            atomic_store(&P.fast_to[dev], NULL); /* a reader now falls back to the locked path */
            destroy_green(d->green, d->ctx);
            d->green = NULL;
            d->ctx = NULL;
            d->pinned = false; /* a reset took the pin too: the next swap pins the new one */
            (void)gs_region_partition_set((uint32_t)dev, 0);
        }
    }
    leave();
    *out = r;
    return true;
}

bool gs_partition_primary_state(CUdevice dev, unsigned int *flags, int *active, CUresult *out)
{
    dev_state s;
    if (!enter_dev(dev, &s))
        return false;
    /* Flags are the real primary context's (cuDevicePrimaryCtxSetFlags passes through); the
     * active bit is our stand-in's, so "is there a primary context yet" reads true once the
     * program retained one and false before. */
    int real_active = 0;
    CUresult r = gs_real()->cuDevicePrimaryCtxGetState(dev, flags, &real_active);
    if (r == CUDA_SUCCESS && active != NULL)
        *active = P.dev[dev].ctx != NULL && P.dev[dev].refs > 0;
    leave();
    *out = r;
    return true;
}

bool gs_partition_ctx_create(CUcontext *pctx, CUdevice dev, CUresult *out)
{
    dev_state s;
    if (!enter_dev(dev, &s))
        return false;
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    created *c = NULL;
    if (s == DEV_PARTITION && pctx == NULL) {
        r = CUDA_ERROR_INVALID_VALUE;
    } else if (s == DEV_PARTITION && (c = calloc(1, sizeof *c)) == NULL) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (s == DEV_PARTITION) {
        r = make_green((int)dev, &c->green, &c->ctx);
        /* cuCtxCreate leaves the new context current (pushed on the thread's stack). */
        if (r == CUDA_SUCCESS && (r = gs_real()->cuCtxPushCurrent_v2(c->ctx)) != CUDA_SUCCESS)
            destroy_green(c->green, c->ctx);
        if (r == CUDA_SUCCESS) {
            c->dev = (int)dev;
            c->next = P.made;
            P.made = c;
            *pctx = c->ctx;
        } else {
            free(c);
        }
    }
    leave();
    *out = r;
    return true;
}

bool gs_partition_ctx_destroy(CUcontext ctx, CUresult *out)
{
    if (!gs_partition_mode() || ctx == NULL)
        return false;
    enter();
    created **pp = &P.made;
    while (*pp != NULL && (*pp)->ctx != ctx)
        pp = &(*pp)->next;
    created *c = *pp;
    if (c == NULL) {
        leave();
        return false;
    }
    *pp = c->next;
    /* cuCtxDestroy pops a context that is current on this thread; a green context's destroy
     * does not say it does, so pop it ourselves. */
    CUcontext cur = NULL;
    if (gs_real()->cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == ctx)
        (void)gs_real()->cuCtxPopCurrent_v2(&cur);
    destroy_green(c->green, c->ctx);
    free(c);
    leave();
    *out = CUDA_SUCCESS;
    return true;
}

CUresult gs_partition_primary_get_state(gs_fn_cuDevicePrimaryCtxGetState real, CUdevice dev, unsigned int *flags,
                                        int *active)
{
    CUresult r;
    if (gs_partition_primary_state(dev, flags, active, &r))
        return r;
    return real(dev, flags, active);
}

/* The handle of the driver's primary context of dev (P.lock held). It exists before the
 * context is active (the runtime makes it current while inactive), and a retain + release
 * reads it; done once per device, as the handle does not change. */
static CUcontext real_primary(int dev)
{
    const gs_real_fns *R = gs_real();
    CUcontext p = NULL;
    if (R->cuDevicePrimaryCtxRetain(&p, dev) != CUDA_SUCCESS)
        return NULL;
    (void)R->cuDevicePrimaryCtxRelease_v2(dev);
    return p;
}

/*
 * The CUDA runtime retains the primary context through our hook but then makes the
 * driver's own primary context current by a private path (seen with CUDA 13, driver 580,
 * on an H200: cudaFree(0) left the 132-SM primary current although cuDevicePrimaryCtxRetain
 * gave it our 64-SM context), and does so before it calls our retain, while the primary
 * context is still inactive. It does make it current through the public
 * cuCtxSetCurrent, so a driver primary context set current on a partitioned device is
 * replaced by our stand-in (pinned: the runtime never releases through us what it took).
 */
static CUcontext substitute(CUcontext ctx)
{
    if (!gs_partition_mode() || ctx == NULL)
        return ctx;
    for (unsigned i = 0; i < GS_REGION_MAX_DEVICES; i++) {
        if (ctx != atomic_load_explicit(&P.fast_from[i], memory_order_acquire))
            continue;
        CUcontext to = atomic_load_explicit(&P.fast_to[i], memory_order_acquire);
        if (to != NULL)
            return to;
    }
    int count = 0;
    if (gs_real()->cuDeviceGetCount(&count) != CUDA_SUCCESS)
        return ctx;
    enter();
    CUcontext out = ctx;
    /* It comes before the runtime's first cuDevicePrimaryCtxRetain: settle devices here. */
    for (int dev = 0; dev < count && dev < (int)GS_REGION_MAX_DEVICES && out == ctx; dev++) {
        part_dev *d = &P.dev[dev];
        if (state_of(dev) != DEV_PARTITION || ctx == d->ctx)
            continue;
        if (d->real_primary == NULL)
            d->real_primary = real_primary(dev);
        if (d->real_primary != ctx)
            continue;
        if (d->ctx == NULL && make_green(dev, &d->green, &d->ctx) != CUDA_SUCCESS)
            break;
        if (!d->pinned) {
            d->pinned = true;
            d->refs++;
        }
        out = d->ctx;
        atomic_store_explicit(&P.fast_to[dev], out, memory_order_release);
        atomic_store_explicit(&P.fast_from[dev], ctx, memory_order_release);
        gs_log(GS_LOG_DEBUG, "device %d: its primary context %p made current: green context %p instead", dev,
               (void *)ctx, (void *)out);
    }
    leave();
    return out;
}

/* cuCtxSetCurrent and cuCtxPushCurrent_v2. */
CUresult gs_partition_make_current(gs_fn_cuCtxSetCurrent real, CUcontext ctx)
{
    return real(substitute(ctx));
}
