/*
 * info.c: what the program sees. Inside a slice, cuMemGetInfo reports
 * total = min(limit, physical) and free = clamp(limit - what the group uses, 0, real free);
 * cuDeviceTotalMem reports min(limit, physical). Never an error the driver did not give,
 * never an underflow (used > limit happens: another process of the group may have
 * attached with more in use than the limit).
 */
#include "gs_shim.h"

bool gs_slice_view(int dev, uint64_t physical_total, uint64_t *total, uint64_t *used)
{
    uint64_t limit = gs_limit(dev);
    if (limit == 0)
        return false;
    gs_reclaim(dev, GS_RECLAIM_SETTLE); /* pools that shrank since they were counted */
    gs_region_usage u = {0};
    if (gs_region_usage_group((uint32_t)dev, &u) != GS_REGION_OK)
        return false;
    *total = limit < physical_total ? limit : physical_total;
    *used = u.device_bytes;
    return true;
}

static void slice_info(size_t *free_b, size_t *total_b)
{
    uint64_t total, used;
    if (!gs_slice_view(gs_current_device(), *total_b, &total, &used))
        return;
    /* free is also bounded by what the device really has free (other tenants' use) */
    uint64_t free = used < total ? total - used : 0;
    if (free > *free_b)
        free = *free_b;
    *free_b = (size_t)free;
    *total_b = (size_t)total;
}

GS_EXPORT CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemGetInfo_v2(free, total);
    gs_enter();
    CUresult r = R->cuMemGetInfo_v2(free, total);
    if (r == CUDA_SUCCESS && free != NULL && total != NULL)
        slice_info(free, total);
    gs_leave();
    return r;
}

static unsigned int saturate(size_t v)
{
    return v > 0xffffffffu ? 0xffffffffu : (unsigned int)v;
}

GS_EXPORT CUresult cuMemGetInfo(unsigned int *free, unsigned int *total)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemGetInfo(free, total);
    if (free == NULL || total == NULL)
        return R->cuMemGetInfo(free, total);
    size_t f = 0, t = 0;
    CUresult r = cuMemGetInfo_v2(&f, &t);
    if (r == CUDA_SUCCESS) {
        *free = saturate(f);
        *total = saturate(t);
    }
    return r;
}

static uint64_t device_total(CUdevice dev, uint64_t physical)
{
    uint64_t limit = gs_limit((int)dev);
    return limit != 0 && limit < physical ? limit : physical;
}

GS_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuDeviceTotalMem_v2(bytes, dev);
    gs_enter();
    CUresult r = R->cuDeviceTotalMem_v2(bytes, dev);
    if (r == CUDA_SUCCESS && bytes != NULL)
        *bytes = (size_t)device_total(dev, *bytes);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || bytes == NULL)
        return R->cuDeviceTotalMem(bytes, dev);
    gs_enter();
    size_t t = 0;
    CUresult r = R->cuDeviceTotalMem_v2 ? R->cuDeviceTotalMem_v2(&t, dev) : CUDA_ERROR_NOT_FOUND;
    if (r == CUDA_SUCCESS)
        *bytes = saturate((size_t)device_total(dev, t));
    else
        r = R->cuDeviceTotalMem(bytes, dev);
    gs_leave();
    return r;
}
