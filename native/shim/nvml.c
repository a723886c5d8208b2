/*
 * nvml.c: NVML reports the slice, so `nvidia-smi` and NVML users inside a slice see it:
 * nvmlDeviceGetMemoryInfo(_v2) on a device this process can see (through CUDA, with a
 * limit) answers total = min(limit, physical), used = what the slice's group has in use on
 * it (the region), free = clamp(total - used, 0, total); v2's reserved is 0 (the driver's
 * reserve is outside the slice). Everything else passes through unchanged: devices without
 * a limit, GPUs this process cannot see (NVML lists every physical GPU), errors of the real
 * call, and processes without NVML (it is resolved lazily and never required).
 *
 * NVML names devices by handle; the slice is named by CUDA ordinal, so the handle's UUID
 * (the real nvmlDeviceGetUUID) is looked up among the UUIDs of the process-visible
 * ordinals (state.c). A process that only uses NVML (nvidia-smi) never called cuInit, and
 * we do not call it for it (CUDA started in a process that later forks is broken in the
 * children): state.c numbers the devices from NVML and CUDA_VISIBLE_DEVICES instead.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hooks.h"
#include "info.h"
#include "state.h"

/* Our definitions must have NVML's exact types (gs_nvml_api.h). */
#define GS_NVML_CALL(name, params, args) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), nvmlReturn_t (*) params), \
                   #name " matches gs_nvml_api.h");
#define GS_NVML_HOOK(name, params, args, how, policy) GS_NVML_CALL(name, params, args)
#include "nvml_hooks.def"

static struct {
    pthread_once_t once, init_once;
    gs_nvml_fns fns;
    bool found, inited;
} N = {.once = PTHREAD_ONCE_INIT, .init_once = PTHREAD_ONCE_INIT};

/* The libnvidia-ml the process already uses, else loaded by us; every member or none. */
static void resolve(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
    bool all = true;
#define GS_NVML_CALL(name, params, args) \
    N.fns.name = (gs_nvml_fn_##name)gs_real_dlsym(h, #name); \
    all = all && N.fns.name != NULL;
#define GS_NVML_HOOK(name, params, args, how, policy) \
    GS_NVML_CALL(name, params, args) all = all && (void *)N.fns.name != (void *)&name;
#include "nvml_hooks.def"
    N.found = all;
}

const gs_nvml_fns *gs_nvml(void)
{
    (void)pthread_once(&N.once, resolve);
    return N.found ? &N.fns : NULL;
}

/* Stand-ins for the hooked functions when NVML cannot be used (absent, or lacking a function
 * we need): the call fails as it would without the library. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define GS_NVML_HOOK(name, params, args, how, policy) \
    static nvmlReturn_t missing_##name params { return NVML_ERROR_LIBRARY_NOT_FOUND; }
#include "nvml_hooks.def"
#pragma GCC diagnostic pop

static const gs_nvml_fns missing = {
#define GS_NVML_HOOK(name, params, args, how, policy) .name = missing_##name,
#include "nvml_hooks.def"
};

const gs_nvml_fns *gs_nvml_or_missing(void)
{
    const gs_nvml_fns *f = gs_nvml();
    return f != NULL ? f : &missing;
}

static void init_once(void)
{
    const gs_nvml_fns *f = gs_nvml();
    N.inited = f != NULL && f->nvmlInit_v2() == NVML_SUCCESS;
}

const gs_nvml_fns *gs_nvml_inited(void)
{
    (void)pthread_once(&N.init_once, init_once);
    return N.inited ? &N.fns : NULL;
}

/* The ordinal the slice knows this NVML device by, or -1: pass the real answer through. */
static int slice_ordinal(nvmlDevice_t device)
{
    const gs_nvml_fns *f = gs_nvml();
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    if (f == NULL || !gs_ready_nvml() || f->nvmlDeviceGetUUID(device, uuid, sizeof uuid) != NVML_SUCCESS)
        return -1;
    return gs_ordinal_of_uuid(uuid);
}

/* The slice's total, used and free on an NVML device; false (nothing written) when it has no
 * slice here. */
static bool slice_memory(nvmlDevice_t device, unsigned long long *total, unsigned long long *used,
                         unsigned long long *free)
{
    uint64_t t, u;
    int dev = slice_ordinal(device);
    if (dev < 0 || !gs_slice_view(dev, *total, &t, &u))
        return false;
    *total = t;
    *used = u;
    *free = u < t ? t - u : 0;
    return true;
}

nvmlReturn_t gs_nvml_memory_info(gs_nvml_fn_nvmlDeviceGetMemoryInfo real, nvmlDevice_t device, nvmlMemory_t *memory)
{
    nvmlReturn_t r = real(device, memory);
    if (r == NVML_SUCCESS && memory != NULL)
        (void)slice_memory(device, &memory->total, &memory->used, &memory->free);
    return r;
}

/* The real call checks memory->version: a struct it rejects is passed back untouched. */
nvmlReturn_t gs_nvml_memory_info_v2(gs_nvml_fn_nvmlDeviceGetMemoryInfo_v2 real, nvmlDevice_t device,
                                    nvmlMemory_v2_t *memory)
{
    nvmlReturn_t r = real(device, memory);
    if (r == NVML_SUCCESS && memory != NULL && slice_memory(device, &memory->total, &memory->used, &memory->free))
        memory->reserved = 0; /* the driver's reserve is outside the slice */
    return r;
}
