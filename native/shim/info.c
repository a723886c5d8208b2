/*
 * info.c: what the program sees. Inside a slice, cuMemGetInfo reports
 * total = min(limit, physical) and free = clamp(limit - what the group uses, 0, real free);
 * cuDeviceTotalMem reports min(limit, physical). Never an error the driver did not give,
 * never an underflow (used > limit happens: another process of the group may have
 * attached with more in use than the limit).
 */
#include "hooks.h"
#include "info.h"
#include "state.h"

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

CUresult gs_info_mem_get_info(gs_fn_cuMemGetInfo_v2 real, size_t *free, size_t *total)
{
    CUresult r = real(free, total);
    if (r == CUDA_SUCCESS && free != NULL && total != NULL)
        slice_info(free, total);
    return r;
}

static unsigned int saturate(size_t v)
{
    return v > 0xffffffffu ? 0xffffffffu : (unsigned int)v;
}

CUresult gs_info_mem_get_info_v1(gs_fn_cuMemGetInfo real, unsigned int *free, unsigned int *total)
{
    if (free == NULL || total == NULL)
        return real(free, total);
    size_t f = 0, t = 0;
    CUresult r = gs_info_mem_get_info(gs_real()->cuMemGetInfo_v2, &f, &t);
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

CUresult gs_info_total_mem(gs_fn_cuDeviceTotalMem_v2 real, size_t *bytes, CUdevice dev)
{
    CUresult r = real(bytes, dev);
    if (r == CUDA_SUCCESS && bytes != NULL)
        *bytes = (size_t)device_total(dev, *bytes);
    return r;
}

/* The old ABI's 32 bits: the 64-bit answer, saturated; the driver's own when that fails. */
CUresult gs_info_total_mem_v1(gs_fn_cuDeviceTotalMem real, unsigned int *bytes, CUdevice dev)
{
    size_t t = 0;
    if (bytes == NULL || gs_real()->cuDeviceTotalMem_v2(&t, dev) != CUDA_SUCCESS)
        return real(bytes, dev);
    *bytes = saturate((size_t)device_total(dev, t));
    return CUDA_SUCCESS;
}
