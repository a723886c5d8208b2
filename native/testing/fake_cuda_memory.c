/*
 * fake_cuda_memory.c: cuMemGetInfo and the synchronous allocators (plain, pitch, managed,
 * host), cuMemFree, and the copies/sets that let tests read and write device memory.
 *
 * Cost model (FAKE_CUDA.md): plain, pitch and managed allocations take their size rounded
 * up to `allocRounding` from the device; pitch allocations take pitch x height, with the
 * pitch rounded up to `pitchAlignment`. Managed memory is resident on the device while it
 * has room (the rest stays on the host, so it never fails for lack of device memory), or
 * on the host only with "managedResidency": "host". Host allocations cost no device memory.
 */
#include <string.h>
#include <time.h>

#include "fake_cuda_state.h"

FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuMemGetInfo_v2");
    if (r == CUDA_SUCCESS && (!free_bytes || !total))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS) {
        *free_bytes = (size_t)fake_free_bytes(ctx->device);
        *total = (size_t)fake_state()->devices[ctx->device].cfg.total_bytes;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemGetInfo(unsigned int *free_bytes, unsigned int *total)
{
    size_t f = 0, t = 0;
    CUresult r = (!free_bytes || !total) ? CUDA_ERROR_INVALID_VALUE : cuMemGetInfo_v2(&f, &t);
    if (r == CUDA_SUCCESS) {
        /* The 32-bit ABI saturates. */
        *free_bytes = f > 0xffffffffU ? 0xffffffffU : (unsigned int)f;
        *total = t > 0xffffffffU ? 0xffffffffU : (unsigned int)t;
    }
    return r;
}

/* Allocates `size` usable bytes costing `charged` device bytes; under the lock with a
 * current context. `low` asks for a 32-bit address (old ABI). */
static CUresult allocate(fake_alloc_kind_t kind, size_t size, unsigned long long charged, bool low,
                         CUdeviceptr *out)
{
    struct CUctx_st *ctx;
    CUresult r = fake_need_ctx(&ctx);
    if (r != CUDA_SUCCESS)
        return r;
    if (kind == FAKE_ALLOC_MANAGED) {
        unsigned long long room = fake_free_bytes(ctx->device);
        charged = fake_state()->config.managed_on_host ? 0 : charged < room ? charged : room;
    }
    r = fake_charge(ctx->device, charged);
    if (r != CUDA_SUCCESS)
        return r;
    size_t mapped = 0;
    uintptr_t base = low ? fake_map_space_low(size, &mapped) : fake_map_space(size, &mapped);
    fake_alloc_t *a = base ? fake_alloc_add(kind, base, size, mapped, charged, ctx->device, ctx) : NULL;
    if (!a) {
        fake_unmap_space(base, mapped);
        fake_uncharge(ctx->device, charged);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (CUdeviceptr)base;
    return CUDA_SUCCESS;
}

static unsigned long long rounded(size_t size)
{
    return fake_round_up(size, fake_state()->config.alloc_rounding);
}

FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    CUresult r = fake_enter("cuMemAlloc_v2");
    if (r == CUDA_SUCCESS && (!dptr || bytesize == 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = allocate(FAKE_ALLOC_PLAIN, bytesize, rounded(bytesize), false, dptr);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    CUdeviceptr p = 0;
    CUresult r = fake_enter("cuMemAlloc");
    if (r == CUDA_SUCCESS && (!dptr || bytesize == 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = allocate(FAKE_ALLOC_PLAIN, bytesize, rounded(bytesize), true, &p);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr_v1)p;
    return fake_leave(r);
}

static CUresult pitch_alloc(size_t width, size_t height, unsigned int elem, bool low, CUdeviceptr *dptr,
                            size_t *pitch)
{
    if (width == 0 || height == 0 || (elem != 4 && elem != 8 && elem != 16))
        return CUDA_ERROR_INVALID_VALUE;
    unsigned long long p = fake_round_up(width, fake_state()->config.pitch_alignment);
    if (p > ~0ULL / height)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = allocate(FAKE_ALLOC_PITCH, (size_t)(p * height), rounded((size_t)(p * height)), low, dptr);
    if (r == CUDA_SUCCESS)
        *pitch = (size_t)p;
    return r;
}

FAKE_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                        unsigned int ElementSizeBytes)
{
    CUresult r = fake_enter("cuMemAllocPitch_v2");
    if (r == CUDA_SUCCESS && (!dptr || !pPitch))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = pitch_alloc(WidthInBytes, Height, ElementSizeBytes, false, dptr, pPitch);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pPitch, unsigned int WidthInBytes,
                                     unsigned int Height, unsigned int ElementSizeBytes)
{
    CUdeviceptr p = 0;
    size_t pitch = 0;
    CUresult r = fake_enter("cuMemAllocPitch");
    if (r == CUDA_SUCCESS && (!dptr || !pPitch))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = pitch_alloc(WidthInBytes, Height, ElementSizeBytes, true, &p, &pitch);
    if (r == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr_v1)p;
        *pPitch = (unsigned int)pitch;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    CUresult r = fake_enter("cuMemAllocManaged");
    if (r == CUDA_SUCCESS && (!dptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = allocate(FAKE_ALLOC_MANAGED, bytesize, rounded(bytesize), false, dptr);
    return fake_leave(r);
}

static CUresult mem_free(const char *fn, CUdeviceptr dptr)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    fake_alloc_t *a = r == CUDA_SUCCESS ? fake_alloc_find((uintptr_t)dptr) : NULL;
    if (r == CUDA_SUCCESS && (!a || a->kind == FAKE_ALLOC_HOST || a->free_queued))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        fake_alloc_release(a); /* pool and graph allocations may be freed this way too */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    return mem_free("cuMemFree_v2", dptr);
}

FAKE_EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    return mem_free("cuMemFree", dptr);
}

FAKE_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuMemGetAddressRange_v2");
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    r = CUDA_ERROR_NOT_FOUND;
    FAKE_FOREACH(fake_alloc_t, a, &fake_state()->allocs)
    if (a->kind != FAKE_ALLOC_HOST && dptr >= a->base && dptr - a->base < a->size) {
        if (pbase)
            *pbase = a->base;
        if (psize)
            *psize = a->size;
        r = CUDA_SUCCESS;
        break;
    }
    return fake_leave(r);
}

/* ---- page-locked host memory -------------------------------------------------------- */
static void pin_delay(void)
{
    unsigned long long delay = fake_state()->config.host_alloc_us;
    struct timespec ts = {.tv_sec = (time_t)(delay / 1000000), .tv_nsec = (long)(delay % 1000000) * 1000};
    while (delay > 0 && nanosleep(&ts, &ts) != 0) {
    }
}

static CUresult host_alloc(const char *fn, void **pp, size_t bytesize, unsigned int flags)
{
    CUdeviceptr p = 0;
    CUresult r = fake_enter(fn);
    /* Pinning is slow on a real driver (about 0.4 s a GiB), and cuMemHostAlloc holds the
     * process's other driver calls meanwhile (an H100, 2026-12-07: a training loop beside
     * 64 MiB allocations ran at 1% of its speed): the delay is taken holding the driver's lock. */
    if (r == CUDA_SUCCESS)
        pin_delay();
    if (r == CUDA_SUCCESS && (!pp || bytesize == 0 || flags > 0x7))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = allocate(FAKE_ALLOC_HOST, bytesize, 0, false, &p);
    if (r == CUDA_SUCCESS)
        *pp = (void *)(uintptr_t)p;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return host_alloc("cuMemAllocHost_v2", pp, bytesize, 0);
}

FAKE_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    return host_alloc("cuMemHostAlloc", pp, bytesize, Flags);
}

FAKE_EXPORT CUresult cuMemFreeHost(void *p)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuMemFreeHost");
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    fake_alloc_t *a = r == CUDA_SUCCESS ? fake_alloc_find((uintptr_t)p) : NULL;
    if (r == CUDA_SUCCESS && (!a || a->kind != FAKE_ALLOC_HOST))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        fake_alloc_release(a);
    return fake_leave(r);
}

/* cuMemHostRegister pins pages the program already has: as slow as cuMemHostAlloc, but the
 * driver lets the process's other calls through meanwhile (the same H100 run: the loop kept
 * 96% of its speed), so the delay is taken without the lock. The range is recorded as a host
 * allocation that owns no address space (mapped 0), so unregistering gives nothing back. */
FAKE_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuMemHostRegister_v2");
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && (!p || bytesize == 0 || Flags > 0xf))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && fake_range_valid((uintptr_t)p, bytesize))
        r = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    if (r == CUDA_SUCCESS) {
        fake_unlock();
        pin_delay();
        fake_lock();
        if (!fake_alloc_add(FAKE_ALLOC_HOST, (uintptr_t)p, bytesize, 0, 0, ctx->device, NULL))
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemHostUnregister(void *p)
{
    CUresult r = fake_enter("cuMemHostUnregister");
    fake_alloc_t *a = r == CUDA_SUCCESS ? fake_alloc_find((uintptr_t)p) : NULL;
    if (r == CUDA_SUCCESS && (!a || a->kind != FAKE_ALLOC_HOST || a->mapped != 0))
        r = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    if (r == CUDA_SUCCESS)
        fake_alloc_release(a);
    return fake_leave(r);
}

/* ---- copies and sets: synchronous, after the context's default stream drains --------- */
static CUresult touch(const char *fn, uintptr_t device_ptr, size_t n)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && n && !fake_range_valid(device_ptr, n))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && ctx->default_stream)
        fake_stream_wait_idle(ctx->default_stream);
    return r;
}

static CUresult memset8(const char *fn, CUdeviceptr dst, unsigned char uc, size_t n)
{
    CUresult r = touch(fn, (uintptr_t)dst, n);
    if (r == CUDA_SUCCESS && n)
        memset((void *)(uintptr_t)dst, uc, n);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
    return memset8("cuMemsetD8_v2", dstDevice, uc, N);
}

FAKE_EXPORT CUresult cuMemsetD8_v2_ptds(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
    return memset8("cuMemsetD8_v2_ptds", dstDevice, uc, N);
}

FAKE_EXPORT CUresult cuMemsetD8(CUdeviceptr_v1 dstDevice, unsigned char uc, unsigned int N)
{
    return memset8("cuMemsetD8", dstDevice, uc, N);
}

static CUresult htod(const char *fn, CUdeviceptr dst, const void *src, size_t n)
{
    CUresult r = touch(fn, (uintptr_t)dst, n);
    if (r == CUDA_SUCCESS && n && !src)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && n)
        memcpy((void *)(uintptr_t)dst, src, n);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    return htod("cuMemcpyHtoD_v2", dstDevice, srcHost, ByteCount);
}

FAKE_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    return htod("cuMemcpyHtoD_v2_ptds", dstDevice, srcHost, ByteCount);
}

FAKE_EXPORT CUresult cuMemcpyHtoD(CUdeviceptr_v1 dstDevice, const void *srcHost, unsigned int ByteCount)
{
    return htod("cuMemcpyHtoD", dstDevice, srcHost, ByteCount);
}

static CUresult dtoh(const char *fn, void *dst, CUdeviceptr src, size_t n)
{
    CUresult r = touch(fn, (uintptr_t)src, n);
    if (r == CUDA_SUCCESS && n && !dst)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && n)
        memcpy(dst, (const void *)(uintptr_t)src, n);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    return dtoh("cuMemcpyDtoH_v2", dstHost, srcDevice, ByteCount);
}

FAKE_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    return dtoh("cuMemcpyDtoH_v2_ptds", dstHost, srcDevice, ByteCount);
}

FAKE_EXPORT CUresult cuMemcpyDtoH(void *dstHost, CUdeviceptr_v1 srcDevice, unsigned int ByteCount)
{
    return dtoh("cuMemcpyDtoH", dstHost, srcDevice, ByteCount);
}

/* ---- copies between any two addresses (unified addressing), synchronous or stream-ordered:
 * what the fake gave out as device memory is checked; host addresses are the caller's. After
 * the context's default stream drains (touch), and a stream-ordered one after its stream too,
 * then it returns (the ordering a program can observe is the same). ---- */
static CUresult copy_any(const char *fn, uintptr_t dst, uintptr_t src, size_t n, bool dst_dev, bool src_dev, bool ordered,
                         CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = touch(fn, dst_dev ? dst : src, dst_dev || src_dev ? n : 0);
    if (r == CUDA_SUCCESS && n && (!dst || !src || (dst_dev && src_dev && !fake_range_valid(src, n))))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && ordered && fake_stream_resolve(h, &s) == CUDA_SUCCESS && s)
        fake_stream_wait_idle(s);
    if (r == CUDA_SUCCESS && n)
        memmove((void *)dst, (const void *)src, n);
    return fake_leave(r);
}

/* One exported copy entry point (a whole function): name, parameters, copy_any's arguments. */
#define FAKE_COPY(name, params, dst, src, n, dst_dev, src_dev, ordered, h)                                             \
    FAKE_EXPORT CUresult name params                                                                                   \
    {                                                                                                                  \
        return copy_any(#name, (uintptr_t)(dst), (uintptr_t)(src), n, dst_dev, src_dev, ordered, h);                   \
    }
FAKE_COPY(cuMemcpy, (CUdeviceptr d, CUdeviceptr s, size_t n), d, s, n, false, false, false, NULL)
FAKE_COPY(cuMemcpy_ptds, (CUdeviceptr d, CUdeviceptr s, size_t n), d, s, n, false, false, false, NULL)
FAKE_COPY(cuMemcpyAsync, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h), d, s, n, false, false, true, h)
FAKE_COPY(cuMemcpyAsync_ptsz, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h), d, s, n, false, false, true, h)
FAKE_COPY(cuMemcpyDtoD_v2, (CUdeviceptr d, CUdeviceptr s, size_t n), d, s, n, true, true, false, NULL)
FAKE_COPY(cuMemcpyDtoD_v2_ptds, (CUdeviceptr d, CUdeviceptr s, size_t n), d, s, n, true, true, false, NULL)
FAKE_COPY(cuMemcpyDtoDAsync_v2, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h), d, s, n, true, true, true, h)
FAKE_COPY(cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h), d, s, n, true, true, true, h)
FAKE_COPY(cuMemcpyDtoHAsync_v2, (void *d, CUdeviceptr s, size_t n, CUstream h), d, s, n, false, true, true, h)
FAKE_COPY(cuMemcpyDtoHAsync_v2_ptsz, (void *d, CUdeviceptr s, size_t n, CUstream h), d, s, n, false, true, true, h)
FAKE_COPY(cuMemcpyHtoDAsync_v2, (CUdeviceptr d, const void *s, size_t n, CUstream h), d, s, n, true, false, true, h)
FAKE_COPY(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr d, const void *s, size_t n, CUstream h), d, s, n, true, false, true, h)

/* ---- stream-ordered set: after the stream's earlier work, before its later work ------- */
static CUresult memset8_async(const char *fn, CUdeviceptr dst, unsigned char uc, size_t n, CUstream h)
{
    struct CUctx_st *ctx;
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && n && !fake_range_valid((uintptr_t)dst, n))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    /* Simplification: the set runs once the stream drains, then returns (the ordering a
     * program can observe is the same). */
    if (r == CUDA_SUCCESS && s)
        fake_stream_wait_idle(s);
    if (r == CUDA_SUCCESS && n)
        memset((void *)(uintptr_t)dst, uc, n);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
    return memset8_async("cuMemsetD8Async", dstDevice, uc, N, hStream);
}

FAKE_EXPORT CUresult cuMemsetD8Async_ptsz(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
    return memset8_async("cuMemsetD8Async_ptsz", dstDevice, uc, N, hStream);
}

/* ---- managed memory placement: advice and prefetch ---------------------------------- */

/* The managed allocation holding [p, p+n), or NULL. */
static fake_alloc_t *managed_of(uintptr_t p, size_t n)
{
    FAKE_FOREACH(fake_alloc_t, a, &fake_state()->allocs)
    if (a->kind == FAKE_ALLOC_MANAGED && p >= a->base && p - a->base < a->size && n <= a->size - (p - a->base))
        return a;
    return NULL;
}

/* Where a location points: 1 host, 0 a valid device (*dev), -1 invalid. */
static int location_kind(CUmemLocation loc, int *dev)
{
    if (loc.type == CU_MEM_LOCATION_TYPE_HOST || loc.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
        loc.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
        return 1;
    if (loc.type == CU_MEM_LOCATION_TYPE_DEVICE && fake_device_valid(loc.id)) {
        *dev = loc.id;
        return 0;
    }
    return -1;
}

/* Moves a whole managed allocation: to the host (its device bytes come back) or to its
 * device (takes what is missing, as far as there is room: managed memory never fails). */
static void place(fake_alloc_t *a, bool host)
{
    unsigned long long want = host ? 0 : fake_round_up(a->size, fake_state()->config.alloc_rounding);
    if (want < a->charged) {
        fake_uncharge(a->device, a->charged - want);
        a->charged = want;
    } else if (want > a->charged) {
        unsigned long long room = fake_free_bytes(a->device), more = want - a->charged;
        more = more < room ? more : room;
        if (more && fake_charge(a->device, more) == CUDA_SUCCESS)
            a->charged += more;
    }
}

static CUresult advise(const char *fn, CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation loc)
{
    struct CUctx_st *ctx;
    int dev = -1, kind = -1;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    fake_alloc_t *a = r == CUDA_SUCCESS ? managed_of((uintptr_t)p, n) : NULL;
    if (r == CUDA_SUCCESS && (!a || n == 0 || advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY))
        r = CUDA_ERROR_INVALID_VALUE;
    bool needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                          advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
    if (r == CUDA_SUCCESS && needs_location && (kind = location_kind(loc, &dev)) < 0)
        r = CUDA_ERROR_INVALID_DEVICE;
    /* Only whole-allocation advice moves bytes (a partial range is accepted and ignored). */
    if (r == CUDA_SUCCESS && (uintptr_t)p == a->base && n == a->size) {
        if (advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION && kind == 1) {
            a->prefer_host = true;
            place(a, true);
        } else if (advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION) {
            a->prefer_host = false;
        }
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location)
{
    return advise("cuMemAdvise_v2", devPtr, count, advice, location);
}

FAKE_EXPORT CUresult cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)
{
    CUmemLocation loc = {.type = device == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE,
                         .id = device == CU_DEVICE_CPU ? 0 : device};
    return advise("cuMemAdvise", devPtr, count, advice, loc);
}

static CUresult prefetch(const char *fn, CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int flags, CUstream h)
{
    struct CUctx_st *ctx;
    fake_stream_t *s = NULL;
    int dev = -1, kind = -1;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    fake_alloc_t *a = r == CUDA_SUCCESS ? managed_of((uintptr_t)p, n) : NULL;
    if (r == CUDA_SUCCESS && (!a || n == 0 || flags != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (kind = location_kind(loc, &dev)) < 0)
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS && (uintptr_t)p == a->base && n == a->size && (kind == 1 || dev == a->device))
        place(a, kind == 1);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags,
                                           CUstream hStream)
{
    return prefetch("cuMemPrefetchAsync_v2", devPtr, count, location, flags, hStream);
}

FAKE_EXPORT CUresult cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream)
{
    CUmemLocation loc = {.type = dstDevice == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE,
                         .id = dstDevice == CU_DEVICE_CPU ? 0 : dstDevice};
    return prefetch("cuMemPrefetchAsync", devPtr, count, loc, 0, hStream);
}
