/*
 * fake_cuda_pool.c: the stream-ordered allocator (cuMemAllocAsync & co.) and its pools.
 *
 * Like the real driver, a pool takes device memory in chunks (`poolChunkBytes`, or just
 * what is missing rounded to `vmmGranularity` when a whole chunk does not fit) and keeps
 * it reserved after frees. Reserved memory above the pool's release threshold (default 0)
 * goes back to the device at synchronization points (stream, event and context
 * synchronize) and on cuMemPoolTrimTo, never below what is in use.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_cuda_state.h"

static unsigned long long pool_bytes(unsigned long long size)
{
    return fake_round_up(size, fake_state()->config.alloc_rounding);
}

static unsigned long long gran(void)
{
    return fake_state()->config.vmm_granularity;
}

struct CUmemPoolHandle_st *fake_pool_new(int device, bool is_default)
{
    struct CUmemPoolHandle_st *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->device = device;
    p->is_default = is_default;
    p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;
    fake_list_add(&fake_state()->pools, p);
    return p;
}

/* Shrinks reserved memory toward `keep`, never below what allocations use. */
static void trim(struct CUmemPoolHandle_st *p, unsigned long long keep)
{
    unsigned long long floor = fake_round_up(p->used, gran());
    unsigned long long target = keep > floor ? fake_round_up(keep, gran()) : floor;
    if (target < p->reserved) {
        fake_uncharge(p->device, p->reserved - target);
        p->reserved = target;
    }
}

static void free_pool(struct CUmemPoolHandle_st *p)
{
    fake_uncharge(p->device, p->reserved);
    free(p);
}

void fake_pool_give_back(struct CUmemPoolHandle_st *p, unsigned long long bytes)
{
    unsigned long long b = pool_bytes(bytes);
    p->used = b > p->used ? 0 : p->used - b;
    if (p->destroyed && p->used == 0)
        free_pool(p); /* destroyed with allocations outstanding: this was the last */
}

void fake_pools_on_sync(int device)
{
    FAKE_FOREACH(struct CUmemPoolHandle_st, p, &fake_state()->pools)
    if (p->device == device && p->reserved > p->release_threshold)
        trim(p, p->release_threshold);
}

static CUresult pool_alloc(struct CUmemPoolHandle_st *p, fake_stream_t *s, size_t size, CUdeviceptr *out)
{
    unsigned long long need = pool_bytes(size);
    if (p->used + need > p->reserved) {
        unsigned long long missing = p->used + need - p->reserved;
        unsigned long long grow = fake_round_up(missing, fake_state()->config.pool_chunk_bytes);
        if (grow > fake_free_bytes(p->device))
            grow = fake_round_up(missing, gran());
        CUresult r = fake_charge(p->device, grow);
        if (r != CUDA_SUCCESS)
            return r;
        p->reserved += grow;
        if (p->reserved > p->reserved_high)
            p->reserved_high = p->reserved;
    }
    size_t mapped = 0;
    uintptr_t base = fake_map_space(size, &mapped);
    fake_alloc_t *a = base ? fake_alloc_add(FAKE_ALLOC_POOL, base, size, mapped, 0, p->device, NULL) : NULL;
    if (!a) {
        fake_unmap_space(base, mapped);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    (void)s; /* the allocation is usable in stream order; the fake makes it usable at once */
    a->pool = p;
    p->used += need;
    if (p->used > p->used_high)
        p->used_high = p->used;
    *out = (CUdeviceptr)base;
    return CUDA_SUCCESS;
}

static CUresult alloc_async(const char *fn, CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (!dptr || size == 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && pool && !fake_list_has(&fake_state()->pools, pool))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS)
        r = pool_alloc(pool ? pool : fake_state()->devices[s->ctx->device].current_pool, s, size, dptr);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async("cuMemAllocAsync", dptr, bytesize, NULL, hStream);
}

FAKE_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async("cuMemAllocAsync_ptsz", dptr, bytesize, NULL, hStream);
}

FAKE_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    return alloc_async("cuMemAllocFromPoolAsync", dptr, bytesize, pool, hStream);
}

FAKE_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                  CUstream hStream)
{
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    return alloc_async("cuMemAllocFromPoolAsync_ptsz", dptr, bytesize, pool, hStream);
}

static CUresult free_async(const char *fn, CUdeviceptr dptr, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    fake_alloc_t *a = r == CUDA_SUCCESS ? fake_alloc_find((uintptr_t)dptr) : NULL;
    if (r == CUDA_SUCCESS && (!a || a->kind == FAKE_ALLOC_HOST || a->free_queued))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS) {
        fake_op_t *op = fake_op_new(FAKE_OP_FREE);
        if (!op)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        op->alloc = a;
        a->free_queued = true; /* freed when the stream gets there */
        fake_stream_push(s, op);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    return free_async("cuMemFreeAsync", dptr, hStream);
}

FAKE_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    return free_async("cuMemFreeAsync_ptsz", dptr, hStream);
}

FAKE_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    CUresult r = fake_enter("cuMemPoolCreate");
    if (r == CUDA_SUCCESS && (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
                              props->location.type != CU_MEM_LOCATION_TYPE_DEVICE))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(props->location.id))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS) {
        *pool = fake_pool_new(props->location.id, false);
        if (!*pool)
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuMemPoolDestroy");
    if (r == CUDA_SUCCESS && (!fake_list_has(&st->pools, pool) || pool->is_default))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_device_t *d = &st->devices[pool->device];
    if (d->current_pool == pool)
        d->current_pool = d->default_pool;
    fake_list_remove(&st->pools, pool);
    if (pool->used == 0)
        free_pool(pool);
    else
        pool->destroyed = true; /* the real driver also waits for outstanding allocations */
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    CUresult r = fake_enter("cuMemPoolGetAttribute");
    if (r == CUDA_SUCCESS && (!value || !fake_list_has(&fake_state()->pools, pool)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    cuuint64_t v;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        *(int *)value = pool->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES];
        return fake_leave(CUDA_SUCCESS);
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: v = pool->release_threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: v = pool->reserved; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: v = pool->reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: v = pool->used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: v = pool->used_high; break;
    default: return fake_leave(CUDA_ERROR_INVALID_VALUE);
    }
    memcpy(value, &v, sizeof v);
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    CUresult r = fake_enter("cuMemPoolSetAttribute");
    if (r == CUDA_SUCCESS && (!value || !fake_list_has(&fake_state()->pools, pool)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    cuuint64_t v = 0;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        pool->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES] = *(const int *)value != 0;
        break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        memcpy(&pool->release_threshold, value, sizeof pool->release_threshold);
        break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        /* Only resetting a high-water mark (to the current value) is allowed. */
        memcpy(&v, value, sizeof v);
        if (v != 0)
            return fake_leave(CUDA_ERROR_INVALID_VALUE);
        if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH)
            pool->reserved_high = pool->reserved;
        else
            pool->used_high = pool->used;
        break;
    default:
        return fake_leave(CUDA_ERROR_INVALID_VALUE);
    }
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    CUresult r = fake_enter("cuMemPoolTrimTo");
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->pools, pool))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        trim(pool, minBytesToKeep);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    CUresult r = fake_enter("cuDeviceGetDefaultMemPool");
    if (r == CUDA_SUCCESS && !pool_out)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        *pool_out = fake_state()->devices[dev].default_pool;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult r = fake_enter("cuDeviceGetMemPool");
    if (r == CUDA_SUCCESS && !pool)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        *pool = fake_state()->devices[dev].current_pool;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    CUresult r = fake_enter("cuDeviceSetMemPool");
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && (!fake_list_has(&fake_state()->pools, pool) || pool->device != dev))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        fake_state()->devices[dev].current_pool = pool;
    return fake_leave(r);
}
