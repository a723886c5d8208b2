/*
 * state.c: the slice this process is held to. The configuration is read when the library
 * loads (its problems are printed then, one line each); the region is opened at the first
 * hook that needs it, once cuInit has run, because limits given as a share of the device
 * ("50%") and per-UUID limits need the driver: every process-visible ordinal gets
 * gs_memory_limit_resolve(limit for (ordinal, UUID), cuDeviceTotalMem_v2).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "gs_common.h"
#include "log.h"
#include "state.h"

gs_config gs_cfg = {.log_level = GS_LOG_WARN};

enum { RECLAIMERS = 4 };

static struct {
    pthread_mutex_t lock;
    atomic_bool ready;
    atomic_bool broken_logged;
    int device_count;
    char uuid[GS_REGION_MAX_DEVICES][GS_CONFIG_UUID_LEN]; /* per visible ordinal, "" unknown */
    /* registered by the modules that hold memory back (pool.c, graph.c) from their
     * constructors, before any hook runs; read without a lock after that */
    gs_reclaimer reclaimers[RECLAIMERS];
    _Atomic int reclaimer_count;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static void report(void *ctx, const char *variable, const char *message)
{
    (void)ctx;
    /* Always shown: a typo in a limit is exactly what a person needs to see. */
    gs_log_level saved = gs_cfg.log_level;
    gs_cfg.log_level = GS_LOG_ERROR;
    gs_log(GS_LOG_ERROR, "%s: %s", variable, message);
    gs_cfg.log_level = saved;
}

__attribute__((constructor)) static void gs_load_config(void)
{
    gs_config c;
    (void)gs_config_load(&c, env_get, NULL, report, NULL);
    gs_cfg = c;
}

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from the driver's 16 bytes. */
void gs_uuid_string(const CUuuid *u, char *out, size_t len)
{
    const unsigned char *b = (const unsigned char *)u->bytes;
    (void)snprintf(out, len,
                   "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                   b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* What the region needs to know of one process-visible device. */
typedef struct visible_dev {
    char uuid[GS_CONFIG_UUID_LEN];
    uint64_t total;
} visible_dev;

/* The devices as CUDA numbers them; false before cuInit (try again at the next hook). */
static bool devices_from_cuda(visible_dev *v, uint32_t *n)
{
    const gs_real_fns *R = gs_real();
    int count = 0;
    if (R->cuDeviceGetCount == NULL || R->cuDeviceGetCount(&count) != CUDA_SUCCESS)
        return false;
    *n = count < (int)GS_REGION_MAX_DEVICES ? (uint32_t)count : GS_REGION_MAX_DEVICES;
    for (uint32_t d = 0; d < *n; d++) {
        CUdevice dev = (CUdevice)d;
        size_t total = 0;
        CUuuid u;
        v[d] = (visible_dev){.uuid = ""};
        if (R->cuDeviceGet != NULL)
            (void)R->cuDeviceGet(&dev, (int)d);
        if (R->cuDeviceTotalMem_v2 != NULL)
            (void)R->cuDeviceTotalMem_v2(&total, dev);
        if (R->cuDeviceGetUuid_v2 != NULL && R->cuDeviceGetUuid_v2(&u, dev) == CUDA_SUCCESS)
            gs_uuid_string(&u, v[d].uuid, sizeof v[d].uuid);
        v[d].total = total;
    }
    return true;
}

/*
 * The devices as CUDA would number them, worked out from NVML without initialising CUDA:
 * for a process that only uses NVML (nvidia-smi, a monitor), because cuInit in a process
 * that later forks breaks CUDA in its children. CUDA_VISIBLE_DEVICES is applied as the
 * driver does (indexes or UUID prefixes; the list stops at the first entry that is invalid,
 * repeated or a MIG device), and indexes are NVML's, which is PCI bus order: the order CUDA
 * uses with CUDA_DEVICE_ORDER=PCI_BUS_ID, and on machines of one GPU model also by default.
 */
static bool devices_from_nvml(visible_dev *v, uint32_t *n)
{
    const gs_nvml_fns *N = gs_nvml_inited();
    unsigned int count = 0;
    if (N == NULL || N->nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS)
        return false;
    visible_dev all[GS_REGION_MAX_DEVICES];
    uint32_t total = count < GS_REGION_MAX_DEVICES ? count : GS_REGION_MAX_DEVICES;
    for (uint32_t i = 0; i < total; i++) {
        nvmlDevice_t h;
        nvmlMemory_t m = {0};
        all[i] = (visible_dev){.uuid = ""};
        if (N->nvmlDeviceGetHandleByIndex_v2(i, &h) != NVML_SUCCESS ||
            N->nvmlDeviceGetUUID(h, all[i].uuid, sizeof all[i].uuid) != NVML_SUCCESS ||
            N->nvmlDeviceGetMemoryInfo(h, &m) != NVML_SUCCESS)
            return false;
        all[i].total = m.total;
    }
    const char *list = getenv("CUDA_VISIBLE_DEVICES");
    *n = 0;
    if (list == NULL) {
        memcpy(v, all, total * sizeof all[0]);
        *n = total;
        return true;
    }
    bool used[GS_REGION_MAX_DEVICES] = {false};
    for (const char *p = list; *p != '\0' && *n < GS_REGION_MAX_DEVICES;) {
        char item[GS_CONFIG_UUID_LEN] = "";
        size_t len = strcspn(p, ",");
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        if (len >= sizeof item)
            break;
        memcpy(item, p, len);
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            item[--len] = '\0';
        int found = -1;
        char *end;
        long idx = strtol(item, &end, 10);
        if (len > 0 && *end == '\0' && idx >= 0 && idx < (long)total) {
            found = (int)idx;
        } else if (len > 4 && strncasecmp(item, "GPU-", 4) == 0) {
            for (uint32_t i = 0; i < total; i++) {
                if (strncasecmp(all[i].uuid, item, len) == 0) {
                    if (found >= 0) { /* an ambiguous prefix ends the list, as in the driver */
                        found = -1;
                        break;
                    }
                    found = (int)i;
                }
            }
        }
        if (found < 0 || used[found])
            break;
        used[found] = true;
        v[(*n)++] = all[found];
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return true;
}

static bool open_with(const visible_dev *v, uint32_t n)
{
    gs_region_options o = {.path = gs_cfg.region_path, .has_limits = 1, .device_count = n};
    for (uint32_t d = 0; d < n; d++) {
        const char *uuid = v[d].uuid[0] ? v[d].uuid : NULL;
        memcpy(S.uuid[d], v[d].uuid, sizeof S.uuid[d]);
        uint64_t limit = gs_memory_limit_resolve(gs_config_memory_limit(&gs_cfg, (int)d, uuid), v[d].total);
        o.mem_limit[d] = limit == UINT64_MAX ? 0 : limit;
        o.core_limit_pct[d] = (uint32_t)gs_config_compute_limit(&gs_cfg, (int)d, uuid);
        o.priority[d] = (int32_t)gs_cfg.priority;
        char h[48];
        gs_log(GS_LOG_INFO, "device %u (%s): limit %s", d, v[d].uuid,
               o.mem_limit[d] ? gs_human_bytes(o.mem_limit[d], h, sizeof h) : "none");
    }
    char err[256] = "";
    int rc = gs_region_open(&o, err, sizeof err);
    if (rc == GS_REGION_LIMITS_DIFFER) {
        gs_log(GS_LOG_WARN, "region %s holds other limits than ours; the region's apply (%s)", o.path, err);
    } else if (rc == GS_REGION_EOPEN) {
        /* already open (a fork child keeps its parent's mapping) */
    } else if (rc != GS_REGION_OK) {
        gs_log(GS_LOG_ERROR, "cannot use region %s (%s); this process is limited on its own", o.path, err);
        o.path = NULL;
        if (gs_region_open(&o, err, sizeof err) != GS_REGION_OK) {
            gs_log(GS_LOG_ERROR, "cannot open a private region (%s); memory is not limited", err);
            return false;
        }
    }
    S.device_count = (int)o.device_count;
    gs_log(GS_LOG_DEBUG, "region %s: slot %d, %d devices", o.path && o.path[0] ? o.path : "(private)",
           gs_region_slot_index(), S.device_count);
    return true;
}

static bool open_locked(bool nvml_ok)
{
    visible_dev v[GS_REGION_MAX_DEVICES];
    uint32_t n = 0;
    /* CUDA's own numbering when CUDA is up; NVML's only where CUDA was never started */
    bool cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD) != NULL && devices_from_cuda(v, &n);
    if (!cuda && !(nvml_ok && devices_from_nvml(v, &n)))
        return false;
    return open_with(v, n);
}

static bool ready(bool nvml_ok)
{
    if (atomic_load_explicit(&S.ready, memory_order_acquire))
        return true;
    pthread_mutex_lock(&S.lock);
    bool ok = atomic_load(&S.ready) || open_locked(nvml_ok);
    if (ok)
        atomic_store_explicit(&S.ready, true, memory_order_release);
    pthread_mutex_unlock(&S.lock);
    return ok;
}

bool gs_ready(void)
{
    return ready(false);
}

bool gs_ready_nvml(void)
{
    return ready(true);
}

bool gs_dev_ok(int dev)
{
    return dev >= 0 && dev < (int)GS_REGION_MAX_DEVICES && gs_ready() && dev < S.device_count;
}

uint64_t gs_limit(int dev)
{
    return gs_dev_ok(dev) ? gs_region_limit((uint32_t)dev) : 0;
}

int gs_ordinal_of_uuid(const char *uuid)
{
    if (!gs_ready())
        return -1;
    for (int d = 0; d < S.device_count; d++)
        if (gs_uuid_same(S.uuid[d], uuid))
            return d;
    return -1;
}

int gs_current_device(void)
{
    const gs_real_fns *R = gs_real();
    CUdevice d = -1;
    if (R->cuCtxGetDevice == NULL || R->cuCtxGetDevice(&d) != CUDA_SUCCESS)
        return -1;
    return (int)d;
}

void gs_reclaimer_register(gs_reclaimer fn)
{
    int n = atomic_load(&S.reclaimer_count);
    if (n == RECLAIMERS) { /* a build with more reclaimers than slots: say so, loudly */
        gs_log(GS_LOG_ERROR, "more than %d reclaimers registered; one is ignored", RECLAIMERS);
        return;
    }
    S.reclaimers[n] = fn;
    atomic_store(&S.reclaimer_count, n + 1);
}

void gs_reclaim(int dev, gs_reclaim_depth depth)
{
    int n = atomic_load(&S.reclaimer_count);
    for (int i = 0; i < n; i++)
        S.reclaimers[i](dev, depth);
}

static void broken(const char *what, int rc)
{
    if (!atomic_exchange(&S.broken_logged, true))
        gs_log(GS_LOG_ERROR, "region %s failed (%s); allocations are not counted", what, gs_region_strerror(rc));
}

int gs_reserve_ex(int dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r, bool quiet)
{
    if (!gs_dev_ok(dev))
        return -1;
    gs_region_over_limit over;
    bool settled = false;
    for (;;) {
        int rc = gs_region_reserve((uint32_t)dev, kind, bytes, r, &over);
        if (rc == GS_REGION_OK)
            return 0;
        if (rc == GS_REGION_OVER_LIMIT) {
            /* Memory may have come back without a call we watch (pools shrink at
             * synchronization points) or be held by the driver as a cache (unused graph
             * memory): the reclaimers look and trim once before a refusal. Not for kind POOL:
             * pool.c reserves it while it holds its own lock, which its reclaimer takes. */
            if (!settled && kind != GS_REGION_KIND_POOL) {
                settled = true;
                gs_reclaim(dev, GS_RECLAIM_TRIM);
                continue;
            }
            if (!quiet)
                gs_log_oom(dev, bytes, &over);
            return 1;
        }
        if (rc == GS_REGION_EBUSY)
            continue; /* every lane held by our own threads mid-allocation: they finish soon */
        broken("reserve", rc);
        return -1;
    }
}

void gs_commit(const gs_region_reservation *r)
{
    int rc = gs_region_commit(r);
    if (rc != GS_REGION_OK)
        broken("commit", rc);
}

void gs_cancel(const gs_region_reservation *r)
{
    (void)gs_region_cancel(r);
}

void gs_release(int dev, gs_region_kind kind, uint64_t bytes)
{
    if (bytes == 0 || !gs_dev_ok(dev))
        return;
    int rc = gs_region_release((uint32_t)dev, kind, bytes);
    if (rc != GS_REGION_OK)
        gs_log(GS_LOG_DEBUG, "release of %llu bytes on device %d: %s", (unsigned long long)bytes, dev,
               gs_region_strerror(rc));
}
