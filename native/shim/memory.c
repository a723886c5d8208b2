/*
 * memory.c: allocation and free policies: plain, pitch, managed, VMM physical memory and
 * arrays. Each allocation reserves its bytes in the region before the driver is asked
 * (so two threads or processes can never both pass the limit), commits them when the
 * driver succeeded, cancels them when it failed, and remembers what it took (track.c) so
 * the free gives back exactly that. Frees of pointers we never saw pass through.
 */
#include "gs_shim.h"

/* One allocation in progress. */
typedef struct acct {
    int dev;
    CUcontext ctx;
    int st; /* 0: reserved (commit or cancel r); 1: refused; -1: not accounted */
    gs_region_reservation r;
} acct;

CUcontext gs_current_ctx(void)
{
    const gs_real_fns *R = gs_real();
    CUcontext c = NULL;
    if (R->cuCtxGetCurrent == NULL || R->cuCtxGetCurrent(&c) != CUDA_SUCCESS)
        return NULL;
    return c;
}

/* Reserves on the current context's device; false when the limit refuses. */
static bool acct_begin_ex(acct *a, gs_region_kind kind, uint64_t bytes, bool quiet)
{
    a->ctx = gs_current_ctx();
    a->dev = a->ctx != NULL ? gs_current_device() : -1;
    a->st = a->dev >= 0 ? gs_reserve_ex(a->dev, kind, bytes, &a->r, quiet) : -1;
    return a->st != 1;
}

static bool acct_begin(acct *a, gs_region_kind kind, uint64_t bytes)
{
    return acct_begin_ex(a, kind, bytes, false);
}

/* The driver answered: commit and remember `key`, or cancel. */
static void acct_end(acct *a, CUresult r, gs_space space, uint64_t key)
{
    if (a->st != 0)
        return;
    if (r != CUDA_SUCCESS) {
        gs_cancel(&a->r);
        return;
    }
    gs_commit(&a->r);
    gs_track_entry e = {.dev = a->dev, .kind = (gs_region_kind)a->r.kind, .bytes = a->r.bytes, .ctx = a->ctx};
    if (!gs_track_put(space, key, &e))
        gs_release(a->dev, e.kind, e.bytes); /* cannot remember it: do not hold it forever */
}

/*
 * The driver took `actual` bytes where we reserved a->r.bytes: settle before committing.
 * More: reserve the difference (false when the limit refuses it: the caller frees).
 * Less: commit, then give the surplus back (briefly over-counted, never under-counted).
 */
static bool acct_settle(acct *a, uint64_t actual)
{
    if (a->st != 0 || actual == a->r.bytes)
        return true;
    if (actual > a->r.bytes) {
        gs_region_reservation extra;
        int st = gs_reserve(a->dev, (gs_region_kind)a->r.kind, actual - a->r.bytes, &extra);
        if (st == 1)
            return false;
        if (st == 0)
            gs_commit(&extra);
        gs_commit(&a->r);
    } else {
        gs_commit(&a->r);
        gs_release(a->dev, (gs_region_kind)a->r.kind, a->r.bytes - actual);
    }
    a->st = 2; /* committed */
    a->r.bytes = actual;
    return true;
}

static void acct_remember(acct *a, gs_space space, uint64_t key)
{
    if (a->st == 0) {
        acct_end(a, CUDA_SUCCESS, space, key);
    } else if (a->st == 2) {
        gs_track_entry e = {.dev = a->dev, .kind = (gs_region_kind)a->r.kind, .bytes = a->r.bytes, .ctx = a->ctx};
        if (!gs_track_put(space, key, &e))
            gs_release(a->dev, e.kind, e.bytes);
    }
}

/* Gives back what `key` took once the driver freed it; on failure it stays taken. */
typedef struct untrack {
    bool known;
    gs_space space;
    uint64_t key;
    gs_track_entry e;
} untrack;

static untrack untrack_begin(gs_space space, uint64_t key)
{
    untrack u = {.space = space, .key = key};
    /* Forget first: once the driver frees it, another thread may get the same pointer. */
    u.known = gs_track_take(space, key, &u.e);
    return u;
}

static void untrack_end(const untrack *u, CUresult r)
{
    if (!u->known)
        return;
    if (r == CUDA_SUCCESS)
        gs_release(u->e.dev, u->e.kind, u->e.bytes);
    else
        (void)gs_track_put(u->space, u->key, &u->e);
}

/* ---- oversubscription: past the limit, managed memory kept on the host ---------------- */

/* Asks the driver to keep [p, p+n) on the host and to map it for dev (so kernels read it
 * over the bus instead of migrating it). CUDA 12.2+ takes a CUmemLocation (cuMemAdvise_v2);
 * older drivers take CU_DEVICE_CPU. Advice is a hint: failures change nothing we count. */
static void keep_on_host(CUdeviceptr p, size_t n, int dev)
{
    const gs_real_fns *R = gs_real();
    CUmemLocation host = {.type = CU_MEM_LOCATION_TYPE_HOST, .id = 0};
    CUmemLocation device = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev};
    if (R->cuMemAdvise_v2(p, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host) != CUDA_SUCCESS)
        (void)R->cuMemAdvise(p, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, CU_DEVICE_CPU);
    if (R->cuMemAdvise_v2(p, n, CU_MEM_ADVISE_SET_ACCESSED_BY, device) != CUDA_SUCCESS)
        (void)R->cuMemAdvise(p, n, CU_MEM_ADVISE_SET_ACCESSED_BY, (CUdevice)dev);
}

/*
 * GPUSHARE_OVERSUBSCRIBE=1: an allocation the limit refused (`refused`: its device and
 * context) is served as managed memory advised to stay on the host, counted as kind HOST
 * (never against the limit) and freed by cuMemFree like any other pointer. When the driver
 * cannot give managed memory, the answer is the refusal: CUDA_ERROR_OUT_OF_MEMORY.
 */
static CUresult host_backed(CUdeviceptr *dptr, size_t bytes, unsigned int flags, const acct *refused)
{
    const gs_real_fns *R = gs_real();
    acct h = {.dev = refused->dev, .ctx = refused->ctx};
    h.st = gs_reserve(h.dev, GS_REGION_KIND_HOST, bytes, &h.r);
    CUresult r = h.st == 1 ? CUDA_ERROR_OUT_OF_MEMORY : R->cuMemAllocManaged(dptr, bytes, flags);
    char b[48];
    if (r != CUDA_SUCCESS) {
        acct_end(&h, r, GS_SPACE_PTR, 0);
        gs_log(GS_LOG_WARN, "device %d: %s past the limit; host-backed memory failed too (%d)", h.dev,
               gs_human_bytes(bytes, b, sizeof b), (int)r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    keep_on_host(*dptr, bytes, h.dev);
    acct_end(&h, r, GS_SPACE_PTR, (uint64_t)*dptr);
    gs_log(GS_LOG_INFO, "device %d: %s past the limit served from host memory (GPUSHARE_OVERSUBSCRIBE)", h.dev,
           gs_human_bytes(bytes, b, sizeof b));
    return CUDA_SUCCESS;
}

/* ---- plain and managed -------------------------------------------------------------- */

GS_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemAlloc_v2(dptr, bytesize);
    gs_enter();
    acct a;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (acct_begin_ex(&a, GS_REGION_KIND_ALLOC, bytesize, gs_cfg.oversubscribe)) {
        r = R->cuMemAlloc_v2(dptr, bytesize);
        acct_end(&a, r, GS_SPACE_PTR, r == CUDA_SUCCESS ? (uint64_t)*dptr : 0);
    } else if (gs_cfg.oversubscribe && dptr != NULL && bytesize > 0) {
        r = host_backed(dptr, bytesize, CU_MEM_ATTACH_GLOBAL, &a);
    }
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemAlloc(dptr, bytesize);
    gs_enter();
    acct a;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (acct_begin(&a, GS_REGION_KIND_ALLOC, bytesize)) {
        r = R->cuMemAlloc(dptr, bytesize);
        acct_end(&a, r, GS_SPACE_PTR, r == CUDA_SUCCESS ? (uint64_t)*dptr : 0);
    }
    gs_leave();
    return r;
}

/* Managed memory counts as device memory: it may all become resident. Past the limit with
 * GPUSHARE_OVERSUBSCRIBE it is the same managed memory, advised to stay on the host. */
GS_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemAllocManaged(dptr, bytesize, flags);
    gs_enter();
    acct a;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (acct_begin_ex(&a, GS_REGION_KIND_ALLOC, bytesize, gs_cfg.oversubscribe)) {
        r = R->cuMemAllocManaged(dptr, bytesize, flags);
        acct_end(&a, r, GS_SPACE_PTR, r == CUDA_SUCCESS ? (uint64_t)*dptr : 0);
    } else if (gs_cfg.oversubscribe && dptr != NULL && bytesize > 0) {
        r = host_backed(dptr, bytesize, flags, &a);
    }
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemFree_v2(dptr);
    gs_enter();
    untrack u = untrack_begin(GS_SPACE_PTR, (uint64_t)dptr);
    gs_scrub_before_free((CUdeviceptr)dptr, u.known ? &u.e : NULL);
    CUresult r = R->cuMemFree_v2(dptr);
    untrack_end(&u, r);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemFree(dptr);
    gs_enter();
    untrack u = untrack_begin(GS_SPACE_PTR, (uint64_t)dptr);
    gs_scrub_before_free((CUdeviceptr)dptr, u.known ? &u.e : NULL);
    CUresult r = R->cuMemFree(dptr);
    untrack_end(&u, r);
    gs_leave();
    return r;
}

/* ---- pitch ---------------------------------------------------------------------------- */

/* The pitch is the driver's choice (at most 512-byte alignment on current GPUs), so we
 * reserve round_up(width, 512) x height, then settle to the real pitch x height. When that
 * bound is refused but width x height would fit, we reserve that, allocate, and settle
 * (which frees and refuses if the real size does not fit). */
typedef CUresult (*pitch_call)(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                               uint64_t *actual_pitch, uint64_t *ptr);

static CUresult pitch_v2(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                         uint64_t *actual_pitch, uint64_t *ptr)
{
    CUresult r = R->cuMemAllocPitch_v2(dptr, pitch, w, h, elem);
    if (r == CUDA_SUCCESS) {
        *actual_pitch = *(size_t *)pitch;
        *ptr = *(CUdeviceptr *)dptr;
    }
    return r;
}

static CUresult pitch_v1(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                         uint64_t *actual_pitch, uint64_t *ptr)
{
    CUresult r = R->cuMemAllocPitch(dptr, pitch, (unsigned)w, (unsigned)h, elem);
    if (r == CUDA_SUCCESS) {
        *actual_pitch = *(unsigned int *)pitch;
        *ptr = *(CUdeviceptr_v1 *)dptr;
    }
    return r;
}

static CUresult pitch_alloc(pitch_call call, void *dptr, void *pitch, size_t w, size_t h, unsigned elem)
{
    const gs_real_fns *R = gs_real();
    uint64_t upper = ((uint64_t)w + 511u) / 512u * 512u, lower = (uint64_t)w;
    if (h != 0 && (upper > UINT64_MAX / h))
        upper = lower = UINT64_MAX / h; /* absurd: the driver refuses it */
    acct a;
    /* Host-backed pitched memory is linear memory at the widest pitch the driver would
     * choose (512); only for the 64-bit ABI (managed addresses do not fit 32 bits). */
    bool host_ok = gs_cfg.oversubscribe && call == pitch_v2 && w > 0 && h > 0 && (elem == 4 || elem == 8 || elem == 16) &&
                   upper * h <= SIZE_MAX;
    if (!acct_begin_ex(&a, GS_REGION_KIND_ALLOC, upper * h, true) &&
        !acct_begin_ex(&a, GS_REGION_KIND_ALLOC, lower * h, host_ok)) {
        if (!host_ok)
            return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = host_backed(dptr, (size_t)(upper * h), CU_MEM_ATTACH_GLOBAL, &a);
        if (r == CUDA_SUCCESS)
            *(size_t *)pitch = (size_t)upper;
        return r;
    }
    uint64_t p = 0, ptr = 0;
    CUresult r = call(R, dptr, pitch, w, h, elem, &p, &ptr);
    if (r != CUDA_SUCCESS) {
        acct_end(&a, r, GS_SPACE_PTR, 0);
        return r;
    }
    if (!acct_settle(&a, p * h)) {
        (void)R->cuMemFree_v2((CUdeviceptr)ptr);
        gs_cancel(&a.r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    acct_remember(&a, GS_SPACE_PTR, ptr);
    return r;
}

GS_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                      unsigned int ElementSizeBytes)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    gs_enter();
    CUresult r = dptr && pPitch ? pitch_alloc(pitch_v2, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes)
                                : R->cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pPitch, unsigned int WidthInBytes,
                                   unsigned int Height, unsigned int ElementSizeBytes)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMemAllocPitch(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    gs_enter();
    CUresult r = dptr && pPitch ? pitch_alloc(pitch_v1, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes)
                                : R->cuMemAllocPitch(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    gs_leave();
    return r;
}

/* ---- virtual memory management: physical memory only ---------------------------------- */

/* cuMemCreate takes physical memory on prop->location (address reservations and mappings
 * cost nothing); it is counted until cuMemRelease, whatever the current context. */
GS_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                               unsigned long long flags)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || prop == NULL || handle == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return R->cuMemCreate(handle, size, prop, flags);
    gs_enter();
    acct a = {.dev = prop->location.id, .ctx = NULL};
    a.st = gs_reserve(a.dev, GS_REGION_KIND_VMM, size, &a.r);
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (a.st != 1) {
        r = R->cuMemCreate(handle, size, prop, flags);
        acct_end(&a, r, GS_SPACE_VMM, r == CUDA_SUCCESS ? (uint64_t)*handle : 0);
    }
    gs_leave();
    return r;
}

/* cuMemRelease: vmm.c (a released handle may live on in its mappings). */

/* ---- arrays ----------------------------------------------------------------------------- */

/* Bytes of one element (all channels), or 0 for formats we cannot size (video formats):
 * those pass through uncounted. *block: 4x4 block-compressed, bytes per block. */
static uint64_t element_bytes(CUarray_format f, unsigned channels, unsigned *block)
{
    *block = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return channels;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2ull * channels;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT: return 4ull * channels;
    case CU_AD_FORMAT_UNORM_INT8X1:
    case CU_AD_FORMAT_SNORM_INT8X1: return 1;
    case CU_AD_FORMAT_UNORM_INT8X2:
    case CU_AD_FORMAT_SNORM_INT8X2:
    case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1: return 2;
    case CU_AD_FORMAT_UNORM_INT8X4:
    case CU_AD_FORMAT_SNORM_INT8X4:
    case CU_AD_FORMAT_UNORM_INT16X2:
    case CU_AD_FORMAT_SNORM_INT16X2:
    case CU_AD_FORMAT_UNORM_INT_101010_2: return 4;
    case CU_AD_FORMAT_UNORM_INT16X4:
    case CU_AD_FORMAT_SNORM_INT16X4: return 8;
    case CU_AD_FORMAT_BC1_UNORM:
    case CU_AD_FORMAT_BC1_UNORM_SRGB:
    case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM: *block = 8; return 8;
    case CU_AD_FORMAT_BC2_UNORM:
    case CU_AD_FORMAT_BC2_UNORM_SRGB:
    case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB:
    case CU_AD_FORMAT_BC5_UNORM:
    case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16:
    case CU_AD_FORMAT_BC6H_SF16:
    case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB: *block = 16; return 16;
    default: return 0;
    }
}

/* Bytes of a w x h x d array (h, d: 0 means 1); 0 when unknown or absurd. */
static uint64_t level_bytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned channels)
{
    unsigned block;
    uint64_t e = element_bytes(f, channels, &block);
    h = h ? h : 1;
    d = d ? d : 1;
    if (e == 0)
        return 0;
    uint64_t row = block ? (w + 3) / 4 * e : w * e;
    if (block)
        h = (h + 3) / 4;
    if (row != 0 && (h > UINT64_MAX / row || row * h > UINT64_MAX / d))
        return 0;
    return row * h * d;
}

/* A mipmapped array: the sum of its levels, each halving width/height (and depth, unless
 * the depth counts layers or cube faces), never below 1. */
static uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned levels)
{
    uint64_t sum = 0, w = desc->Width, h = desc->Height, d = desc->Depth;
    bool layers = (desc->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    for (unsigned l = 0; l < (levels ? levels : 1u); l++) {
        uint64_t b = level_bytes(w, h, d, desc->Format, desc->NumChannels);
        if (b == 0 || sum > UINT64_MAX - b)
            return 0;
        sum += b;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        if (!layers)
            d = d > 1 ? d / 2 : d;
    }
    return sum;
}

/* Shared by the array creators: reserve the computed size, create, commit or cancel. */
static CUresult array_alloc(uint64_t bytes, gs_space space, CUresult (*create)(const void *), const void *args,
                            uint64_t (*handle)(const void *))
{
    acct a;
    if (bytes == 0) /* a format we cannot size: let the driver decide, uncounted */
        return create(args);
    if (!acct_begin(&a, GS_REGION_KIND_ARRAY, bytes))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = create(args);
    acct_end(&a, r, space, r == CUDA_SUCCESS ? handle(args) : 0);
    return r;
}

typedef struct array_args {
    CUarray *ph;
    const CUDA_ARRAY_DESCRIPTOR *d2;
    const CUDA_ARRAY3D_DESCRIPTOR *d3;
    const CUDA_ARRAY_DESCRIPTOR_v1 *d2v1;
    const CUDA_ARRAY3D_DESCRIPTOR_v1 *d3v1;
    CUmipmappedArray *pm;
    unsigned levels;
} array_args;

static CUresult create_2d(const void *p)
{
    const array_args *a = p;
    return gs_real()->cuArrayCreate_v2(a->ph, a->d2);
}
static CUresult create_3d(const void *p)
{
    const array_args *a = p;
    return gs_real()->cuArray3DCreate_v2(a->ph, a->d3);
}
static CUresult create_2d_v1(const void *p)
{
    const array_args *a = p;
    return gs_real()->cuArrayCreate(a->ph, a->d2v1);
}
static CUresult create_3d_v1(const void *p)
{
    const array_args *a = p;
    return gs_real()->cuArray3DCreate(a->ph, a->d3v1);
}
static CUresult create_mip(const void *p)
{
    const array_args *a = p;
    return gs_real()->cuMipmappedArrayCreate(a->pm, a->d3, a->levels);
}
static uint64_t array_handle(const void *p)
{
    return (uint64_t)(uintptr_t) * ((const array_args *)p)->ph;
}
static uint64_t mip_handle(const void *p)
{
    return (uint64_t)(uintptr_t) * ((const array_args *)p)->pm;
}

GS_EXPORT CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || pHandle == NULL || pAllocateArray == NULL)
        return R->cuArrayCreate_v2(pHandle, pAllocateArray);
    gs_enter();
    array_args args = {.ph = pHandle, .d2 = pAllocateArray};
    uint64_t bytes = level_bytes(pAllocateArray->Width, pAllocateArray->Height, 1, pAllocateArray->Format,
                                 pAllocateArray->NumChannels);
    CUresult r = array_alloc(bytes, GS_SPACE_ARRAY, create_2d, &args, array_handle);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || pHandle == NULL || pAllocateArray == NULL)
        return R->cuArray3DCreate_v2(pHandle, pAllocateArray);
    gs_enter();
    array_args args = {.ph = pHandle, .d3 = pAllocateArray};
    uint64_t bytes = mipmap_bytes(pAllocateArray, 1);
    CUresult r = array_alloc(bytes, GS_SPACE_ARRAY, create_3d, &args, array_handle);
    gs_leave();
    return r;
}

/* The pre-3.2 ABI (32-bit dimensions): libcuda still exports it for old binaries. */
GS_EXPORT CUresult cuArrayCreate(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *pAllocateArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || pHandle == NULL || pAllocateArray == NULL)
        return R->cuArrayCreate(pHandle, pAllocateArray);
    gs_enter();
    array_args args = {.ph = pHandle, .d2v1 = pAllocateArray};
    uint64_t bytes = level_bytes(pAllocateArray->Width, pAllocateArray->Height, 1, pAllocateArray->Format,
                                 pAllocateArray->NumChannels);
    CUresult r = array_alloc(bytes, GS_SPACE_ARRAY, create_2d_v1, &args, array_handle);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuArray3DCreate(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *pAllocateArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || pHandle == NULL || pAllocateArray == NULL)
        return R->cuArray3DCreate(pHandle, pAllocateArray);
    gs_enter();
    array_args args = {.ph = pHandle, .d3v1 = pAllocateArray};
    CUDA_ARRAY3D_DESCRIPTOR wide = {.Width = pAllocateArray->Width, .Height = pAllocateArray->Height,
                                    .Depth = pAllocateArray->Depth, .Format = pAllocateArray->Format,
                                    .NumChannels = pAllocateArray->NumChannels, .Flags = pAllocateArray->Flags};
    CUresult r = array_alloc(mipmap_bytes(&wide, 1), GS_SPACE_ARRAY, create_3d_v1, &args, array_handle);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc,
                                          unsigned int numMipmapLevels)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested() || pHandle == NULL || pMipmappedArrayDesc == NULL)
        return R->cuMipmappedArrayCreate(pHandle, pMipmappedArrayDesc, numMipmapLevels);
    gs_enter();
    array_args args = {.pm = pHandle, .d3 = pMipmappedArrayDesc, .levels = numMipmapLevels};
    uint64_t bytes = mipmap_bytes(pMipmappedArrayDesc, numMipmapLevels);
    CUresult r = array_alloc(bytes, GS_SPACE_MIPMAP, create_mip, &args, mip_handle);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuArrayDestroy(CUarray hArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuArrayDestroy(hArray);
    gs_enter();
    untrack u = untrack_begin(GS_SPACE_ARRAY, (uint64_t)(uintptr_t)hArray);
    CUresult r = R->cuArrayDestroy(hArray);
    untrack_end(&u, r);
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuMipmappedArrayDestroy(hMipmappedArray);
    gs_enter();
    untrack u = untrack_begin(GS_SPACE_MIPMAP, (uint64_t)(uintptr_t)hMipmappedArray);
    CUresult r = R->cuMipmappedArrayDestroy(hMipmappedArray);
    untrack_end(&u, r);
    gs_leave();
    return r;
}
